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
