//! The `replay` command end to end: it streams a file through the reader and writes exactly the
//! reference's lines.
#![cfg(not(target_arch = "wasm32"))]

use std::process::Command;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/reference");

fn replay(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(args)
        .output()
        .expect("replay runs")
}

#[test]
fn corpus_output_is_byte_identical_to_the_reference() {
    let out = std::env::temp_dir().join(format!("agenther-replay-{}.jsonl", std::process::id()));
    let run = replay(&[
        &format!("{FIXTURES}/corpus.jsonl"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let written = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).ok();
    let expected = std::fs::read(format!("{FIXTURES}/expected.jsonl")).unwrap();
    assert!(
        written == expected,
        "replay output differs from expected.jsonl"
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("400 records, 0 rejected, 400 lines written"),
        "{stderr}"
    );
}

#[test]
fn bad_records_go_to_stderr_and_good_ones_to_stdout() {
    let run = replay(&[&format!("{FIXTURES}/bad.jsonl")]);
    assert!(run.status.success());
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 68);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let rejected: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("replay:") && l.contains("bad.jsonl:"))
        .collect();
    assert_eq!(rejected.len(), 31, "{stderr}");
    assert!(
        stderr.contains("bad.jsonl:18: steps: expected an array"),
        "{stderr}"
    );
    assert!(stderr.contains("68 records, 31 rejected"));
}

#[test]
fn usage_errors_exit_with_2() {
    assert_eq!(replay(&[]).status.code(), Some(2));
    assert_eq!(replay(&["/nonexistent/file.jsonl"]).status.code(), Some(2));
    let help = replay(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: replay INPUT"));
}

#[test]
fn every_export_format_writes_a_valid_row_per_trajectory() {
    use agenther::export::{validate_file, Target};
    for target in Target::TOOLS {
        let out = std::env::temp_dir().join(format!(
            "agenther-replay-{}-{}.jsonl",
            target.id(),
            std::process::id()
        ));
        let run = replay(&[
            &format!("{FIXTURES}/corpus.jsonl"),
            "--export",
            target.id(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{stderr}");
        let written = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).ok();
        assert_eq!(written.lines().count(), 400, "{}", target.id());
        assert_eq!(validate_file(target, &written), vec![], "{}", target.id());
        assert!(
            stderr.contains(&format!(
                "400 records, 0 rejected, 400 lines written, 0 {} rows left out",
                target.id()
            )),
            "{stderr}"
        );
        // The corpus's arguments hold six integers beyond the signed 64-bit range (three
        // rows): the TRL rows write them as strings and say where, once per conversation.
        let rewrites: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains(" row written with "))
            .collect();
        let expected = match target {
            Target::TrlSft => 6,
            Target::TrlPreference => 12,
            _ => 0,
        };
        assert_eq!(rewrites.len(), expected, "{}: {stderr}", target.id());
        if target == Target::TrlSft {
            assert!(rewrites[3].ends_with(
                "corpus.jsonl:259: trav-7-0000258: trl-sft row written with \
                 messages[13].tool_calls[0].function.arguments.int_big: the integer \
                 123456789012345678901234567890 is beyond the signed 64-bit range that \
                 Arrow-based loaders (🤗 datasets) read; written as the string \
                 \"123456789012345678901234567890\""
            ));
        }
        if target == Target::TrlPreference {
            // Every pair has a prompt that is not empty: TRL cannot train one without.
            for line in written.lines() {
                let row: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(row["prompt"].as_array().map(Vec::len), Some(1));
                assert_eq!(row["prompt"][0]["role"], "system");
                assert_eq!(row["chosen"][0]["role"], "user");
            }
        }
        // The fixed relabeling: hindsight goal, confidence, weight = severity.
        let first: serde_json::Value =
            serde_json::from_str(written.lines().next().unwrap()).unwrap();
        let text = first.to_string();
        assert!(text.contains("HINDSIGHT::"), "{}", target.id());
        if target != Target::OpenAi {
            assert_eq!(first["provenance"]["confidence"], 0.75);
            assert_eq!(first["provenance"]["judges"], "fixed relabeling");
            assert!(first["weight"].as_f64().unwrap() >= 0.3);
        }
    }
}

#[test]
fn export_rows_that_break_a_rule_are_reported_and_left_out() {
    // The bad-input corpus has one record whose arguments hold NaN.
    let run = replay(&[&format!("{FIXTURES}/bad.jsonl"), "--export", "openai"]);
    assert!(run.status.success());
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 67);
    assert!(!stdout.contains("NaN"));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains(
            "bad.jsonl:87: bad-nan_literal-8-0024: openai row left out: \
             messages[1].tool_calls[0].function.arguments: holds NaN or Infinity at score"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("68 records, 31 rejected, 67 lines written, 1 openai rows left out"));
    // Native output keeps every record.
    let native = replay(&[&format!("{FIXTURES}/bad.jsonl"), "--export=native"]);
    assert_eq!(
        String::from_utf8(native.stdout).unwrap().lines().count(),
        68
    );
}

#[test]
fn unknown_export_format_is_a_usage_error() {
    let run = replay(&[&format!("{FIXTURES}/corpus.jsonl"), "--export", "csv"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("unknown export format \"csv\""));
    let help = replay(&["--help"]);
    let usage = String::from_utf8_lossy(&help.stdout);
    for id in [
        "native",
        "llamafactory",
        "trl-sft",
        "trl-preference",
        "openai",
    ] {
        assert!(usage.contains(id), "{id} missing from the usage");
    }
}

#[test]
fn any_number_of_threads_writes_the_same_lines_in_order() {
    // The corpus, then the bad file (rejections between records), then the corpus again: more
    // records than one batch, with gaps.
    let mut input = std::fs::read(format!("{FIXTURES}/corpus.jsonl")).unwrap();
    input.extend(std::fs::read(format!("{FIXTURES}/bad.jsonl")).unwrap());
    input.extend(std::fs::read(format!("{FIXTURES}/corpus.jsonl")).unwrap());
    let path = std::env::temp_dir().join(format!("agenther-jobs-{}.jsonl", std::process::id()));
    std::fs::write(&path, &input).unwrap();
    let path = path.to_str().unwrap();
    let one = replay(&[path, "--jobs", "1"]);
    assert!(one.status.success());
    let expected = std::fs::read(format!("{FIXTURES}/expected.jsonl")).unwrap();
    assert!(one.stdout.starts_with(&expected) && one.stdout.ends_with(&expected));
    for jobs in ["2", "5"] {
        let many = replay(&[path, "--jobs", jobs]);
        assert!(many.status.success());
        assert!(many.stdout == one.stdout, "--jobs {jobs} wrote other lines");
        let summary = |stderr: &[u8]| {
            let text = String::from_utf8_lossy(stderr).into_owned();
            // The same rejections in the same order; only the timing differs.
            text.lines()
                .map(|l| l.split(" in ").next().unwrap_or(l).to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(summary(&many.stderr), summary(&one.stderr));
    }
    std::fs::remove_file(path).ok();
    let refused = replay(&[path, "--jobs", "0"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--jobs needs a whole number"));
}
