//! The lenient trajectory reader on the reference fixtures and on hand-written files.
#![cfg(not(target_arch = "wasm32"))]

use agenther::json::{parse, parse_bytes, Limits};
use agenther::reader::{read_all, InputFormat, ReadEvent, ReadReport, Reader, Rejected};
use proptest::prelude::*;
use serde_json::Value;

const BAD: &[u8] = include_bytes!("fixtures/reference/bad.jsonl");
const MANIFEST: &str = include_str!("fixtures/reference/bad.jsonl.manifest.json");
const CORPUS: &str = include_str!("fixtures/reference/corpus.jsonl");

mod support;

/// All events and the summary, feeding `bytes` in chunks of `size` (0: whole).
fn events_in_chunks(
    name: &str,
    bytes: &[u8],
    size: usize,
) -> (Vec<ReadEvent>, agenther::reader::FileSummary) {
    let cuts = match size {
        0 => Vec::new(),
        _ => (size..bytes.len()).step_by(size).collect(),
    };
    support::read_cut(Reader::new(name), bytes, cuts)
}

fn read_str(name: &str, text: &str) -> ReadReport {
    read_all(name, text.as_bytes())
}

fn only_rejection(report: &ReadReport) -> &Rejected {
    assert_eq!(report.rejected.len(), 1, "{:#?}", report.rejected);
    &report.rejected[0]
}

/// Re-indents compact JSON text (as the corpus writes it) the way a pretty-printer would, with
/// two spaces per level, leaving every token as it is (numbers stay exact).
fn pretty(compact: &str, base: usize) -> String {
    let mut out = String::new();
    let mut depth = base;
    let mut in_str = false;
    let mut esc = false;
    let mut chars = compact.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                if matches!(chars.peek(), Some('}' | ']')) {
                    out.push(chars.next().unwrap());
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth -= 1;
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                if chars.peek() == Some(&' ') {
                    chars.next();
                }
                newline(&mut out, depth);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The first `count` corpus records as a pretty-printed JSON array.
fn pretty_array(count: usize) -> String {
    let items: Vec<String> = CORPUS
        .lines()
        .take(count)
        .map(|l| format!("  {}", pretty(l, 1)))
        .collect();
    format!("[\n{}\n]\n", items.join(",\n"))
}

/// The first `count` corpus records as pretty-printed objects one after another.
fn pretty_values(count: usize) -> String {
    CORPUS
        .lines()
        .take(count)
        .map(|l| pretty(l, 0) + "\n")
        .collect()
}

/// A small valid record as one line of JSON.
fn record(id: &str) -> String {
    format!(
        r#"{{"trajectory_id": "{id}", "original_prompt": "p {id}", "steps": [{{"thought": "t", "action_name": "a", "action_input": {{"q": 1}}, "observation": "o"}}], "final_answer": "f", "failure_reason": "r", "metadata": {{"m": 1}}}}"#
    )
}

fn ids(report: &ReadReport) -> Vec<&str> {
    report
        .records
        .iter()
        .map(|r| r.trajectory.trajectory_id.as_str())
        .collect()
}

#[test]
fn bad_jsonl_matches_the_manifest() {
    let manifest: Value = serde_json::from_str(MANIFEST).unwrap();
    let report = read_all("bad.jsonl", BAD);
    let expected_valid = manifest["expected_valid_count"].as_u64().unwrap() as usize;
    assert_eq!(report.records.len(), expected_valid);

    let entries = manifest["bad_entries"].as_array().unwrap();
    let expected_rejections = entries
        .iter()
        .filter(|e| e["expect_valid"] == Value::Bool(false))
        .count();
    assert_eq!(report.rejected.len(), expected_rejections);

    for entry in entries {
        let line = entry["line"].as_u64().unwrap() as usize;
        let id = entry["trajectory_id"].as_str();
        let kind = entry["kind"].as_str().unwrap();
        match entry["expect_valid"].as_bool() {
            Some(false) => {
                let r = report
                    .rejected
                    .iter()
                    .find(|r| r.line == line)
                    .unwrap_or_else(|| panic!("{kind} at line {line} not rejected"));
                if let Some(id) = id {
                    assert_eq!(r.trajectory_id.as_deref(), Some(id), "{kind}");
                }
                assert!(!r.excerpt.is_empty(), "{kind}");
            }
            Some(true) => {
                let r = report
                    .records
                    .iter()
                    .find(|r| r.source.line == line)
                    .unwrap_or_else(|| panic!("{kind} at line {line} not loaded"));
                match id {
                    Some(id) => assert_eq!(r.trajectory.trajectory_id, id, "{kind}"),
                    None => {
                        let generated = &r.trajectory.trajectory_id;
                        let hex = generated.strip_prefix("traj-").unwrap();
                        assert_eq!(hex.len(), 12, "{generated}");
                        assert!(hex
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                    }
                }
            }
            None => {
                // Blank lines: counted, never reported.
                let count = entry["lines"].as_u64().unwrap() as usize;
                for l in line..line + count {
                    assert!(report.rejected.iter().all(|r| r.line != l));
                    assert!(report.records.iter().all(|r| r.source.line != l));
                }
                assert_eq!(report.summary.blank_lines, count);
            }
        }
    }

    let summary = &report.summary;
    assert_eq!(summary.format, InputFormat::Jsonl);
    assert_eq!(summary.records, expected_valid);
    assert_eq!(summary.rejected, expected_rejections);
    assert_eq!(summary.bytes, BAD.len() as u64);
    assert_eq!(summary.notes, vec!["a UTF-8 byte-order mark was skipped"]);
    let physical = manifest["physical_lines"].as_u64().unwrap() as usize;
    assert_eq!(
        summary.records + summary.rejected + summary.blank_lines,
        physical
    );

    // Indexes count non-blank lines.
    let last = report.records.last().unwrap();
    assert_eq!((last.source.line, last.source.index), (103, 98));
    assert_eq!(report.records[0].source.index, 0);
}

#[test]
fn bad_jsonl_reasons_name_the_field() {
    let report = read_all("bad.jsonl", BAD);
    let at = |line: usize| {
        report
            .rejected
            .iter()
            .find(|r| r.line == line)
            .unwrap_or_else(|| panic!("line {line}"))
    };
    assert_eq!(
        at(4).to_string(),
        "bad.jsonl:4: metadata: expected an object, found an array"
    );
    let field = |line: usize| at(line).field.clone();
    assert!(field(5).unwrap().ends_with(".action_input"));
    assert_eq!(at(5).reason, "expected an object, found a string");
    assert_eq!(at(7).reason, "expected an object, found null");
    assert!(field(9).unwrap().ends_with(".observation"));
    assert_eq!(at(9).reason, "required field is missing");
    assert_eq!(field(17).as_deref(), Some("failure_reason"));
    assert_eq!(field(18).as_deref(), Some("steps"));
    assert_eq!(at(18).reason, "expected an array, found a string");
    assert_eq!(
        at(25).reason.split(" at ").next(),
        Some("nesting deeper than 200 levels")
    );
    assert_eq!(at(31).reason, "expected an object, found null");
    assert_eq!(field(31), None);
    assert_eq!(field(33).as_deref(), Some("original_prompt"));
    assert!(at(34)
        .reason
        .starts_with("invalid UTF-8 at line 34 column "));
    assert!(field(35).unwrap().ends_with(".observation"));
    assert_eq!(at(35).reason, "expected a string, found a number");
    assert_eq!(field(38).as_deref(), Some("final_answer"));
    assert!(at(39)
        .reason
        .starts_with("nesting deeper than 200 levels at line 39"));
    assert!(at(57).field.as_deref().unwrap().ends_with(".thought"));
    assert_eq!(at(57).reason, "expected a string, found null");
    assert!(at(58).reason.starts_with("lone surrogate \\ud800"));
    assert!(at(59)
        .reason
        .starts_with("raw control character U+0009 in a string"));
    assert_eq!(
        at(61).reason,
        "expected at least one step, found an empty array"
    );
    assert_eq!(field(65).as_deref(), Some("trajectory_id"));
    assert_eq!(at(65).reason, "expected a string, found a number");
    assert_eq!(at(65).trajectory_id, None);
    assert_eq!(field(67).as_deref(), Some("steps[0]"));
    assert_eq!(at(67).reason, "expected an object, found a string");
    assert!(at(70).reason.starts_with("unexpected end of input"));
    assert_eq!(at(73).reason, "expected an object, found an array");
    assert!(at(79)
        .reason
        .starts_with("extra data after the value at line 79 column "));
    assert!(at(84).reason.starts_with("extra data after the value"));
    assert_eq!(field(86).as_deref(), Some("original_prompt"));
    for r in &report.rejected {
        assert!(r.excerpt.chars().count() <= 121, "{}", r.excerpt);
    }
}

#[test]
fn bad_jsonl_special_records_load_faithfully() {
    let report = read_all("bad.jsonl", BAD);
    let by_line = |line: usize| {
        &report
            .records
            .iter()
            .find(|r| r.source.line == line)
            .unwrap()
            .trajectory
    };
    let huge = by_line(14);
    assert!(huge
        .steps
        .iter()
        .any(|s| s.observation.chars().count() >= 5_242_880));
    let nan = by_line(87);
    let input = &nan.steps[0].action_input;
    assert_eq!(input.get("score").unwrap().to_string(), "NaN");
    assert_eq!(input.get("limit").unwrap().to_string(), "Infinity");
    let crlf = by_line(95);
    assert!(!crlf.failure_reason.ends_with('\r'));
    let separators = by_line(103);
    let text = serde_json::to_string(separators).unwrap();
    assert!(text.contains('\u{2028}') || text.contains('\u{2029}') || text.contains('\u{85}'));
    // The generated id is stable.
    let again = read_all("bad.jsonl", BAD);
    assert_eq!(
        by_line(99).trajectory_id,
        again
            .records
            .iter()
            .find(|r| r.source.line == 99)
            .unwrap()
            .trajectory
            .trajectory_id
    );
}

#[test]
fn chunk_size_does_not_change_the_events() {
    let (whole, whole_summary) = events_in_chunks("bad.jsonl", BAD, 0);
    for size in [1, 7, 4096] {
        let (events, summary) = events_in_chunks("bad.jsonl", BAD, size);
        assert!(events == whole, "chunks of {size}");
        assert_eq!(summary, whole_summary, "chunks of {size}");
    }
}

#[test]
fn corpus_loads_as_jsonl_and_as_a_pretty_array() {
    let jsonl = read_str("corpus.jsonl", CORPUS);
    assert_eq!(jsonl.records.len(), 400);
    assert!(jsonl.rejected.is_empty());
    assert_eq!(jsonl.summary.format, InputFormat::Jsonl);
    assert!(jsonl.summary.notes.is_empty());

    let pretty = pretty_array(400);
    let array = read_str("corpus.json", &pretty);
    assert_eq!(array.summary.format, InputFormat::JsonArray);
    assert!(array.rejected.is_empty(), "{:?}", array.rejected.first());
    assert!(array.summary.notes.is_empty(), "{:?}", array.summary.notes);
    assert_eq!(array.records.len(), 400);
    for (i, (a, b)) in array.records.iter().zip(&jsonl.records).enumerate() {
        assert_eq!(a.trajectory, b.trajectory);
        assert_eq!(a.source.index, i);
    }
    // Each element starts on its own line of the pretty text.
    let lines: Vec<&str> = pretty.lines().collect();
    for r in &array.records {
        assert_eq!(lines[r.source.line - 1], "  {");
    }

    // The same objects pretty-printed one after another: whitespace-separated values.
    let concatenated = pretty_values(400);
    let seq = read_str("corpus.json", &concatenated);
    assert_eq!(seq.summary.format, InputFormat::JsonValues);
    assert!(seq.rejected.is_empty());
    assert_eq!(seq.records.len(), 400);
    for (i, (a, b)) in seq.records.iter().zip(&jsonl.records).enumerate() {
        assert_eq!(a.trajectory, b.trajectory);
        assert_eq!(a.source.index, i);
    }
    assert_eq!(seq.summary.notes.len(), 1);
}

#[test]
fn empty_and_whitespace_files() {
    let empty = read_all("e.jsonl", b"");
    assert_eq!(empty.summary.format, InputFormat::Empty);
    assert_eq!(empty.summary.notes, vec!["the file is empty"]);
    assert!(empty.records.is_empty() && empty.rejected.is_empty());

    let bom_only = read_all("e.jsonl", b"\xEF\xBB\xBF");
    assert_eq!(bom_only.summary.format, InputFormat::Empty);
    assert_eq!(bom_only.summary.notes.last().unwrap(), "the file is empty");

    let blank = read_str("w.jsonl", " \n\t\n\r\n  ");
    assert_eq!(blank.summary.format, InputFormat::Empty);
    assert_eq!(blank.summary.blank_lines, 4);
    assert_eq!(blank.summary.notes, vec!["the file holds only whitespace"]);
    assert!(blank.rejected.is_empty());
}

#[test]
fn a_single_pretty_printed_object() {
    let value: Value = serde_json::from_str(&record("one")).unwrap();
    let text = format!("\n{}\n\n", serde_json::to_string_pretty(&value).unwrap());
    let report = read_str("one.json", &text);
    assert_eq!(report.summary.format, InputFormat::JsonValues);
    assert_eq!(ids(&report), vec!["one"]);
    assert_eq!(
        (
            report.records[0].source.line,
            report.records[0].source.index
        ),
        (2, 0)
    );
    assert!(report.rejected.is_empty());

    // Truncated: one rejection, not one per line.
    let cut = &text[..text.len() / 2];
    let report = read_str("cut.json", cut);
    assert_eq!(report.summary.format, InputFormat::JsonValues);
    let r = only_rejection(&report);
    assert_eq!(r.line, 2);
    assert!(
        r.reason.starts_with("unexpected end of input"),
        "{}",
        r.reason
    );
    assert_eq!(r.trajectory_id.as_deref(), Some("one"));
}

#[test]
fn jsonl_whose_first_line_is_truncated_stays_jsonl() {
    let first = record("a");
    let text = format!(
        "{}\n{}\n{}\n",
        &first[..first.len() - 40],
        record("b"),
        record("c")
    );
    let report = read_str("t.jsonl", &text);
    assert_eq!(report.summary.format, InputFormat::Jsonl);
    assert_eq!(ids(&report), vec!["b", "c"]);
    let r = only_rejection(&report);
    assert_eq!((r.line, r.index), (1, Some(0)));
    assert_eq!(r.trajectory_id.as_deref(), Some("a"));
    assert!(report.summary.notes.is_empty());

    // Broken inside a string.
    let text = format!("{}\n{}\n", &first[..30], record("b"));
    let report = read_str("t.jsonl", &text);
    assert_eq!(report.summary.format, InputFormat::Jsonl);
    assert_eq!(ids(&report), vec!["b"]);
    assert_eq!(
        only_rejection(&report).reason,
        "unexpected end of input inside a string at line 1 column 31"
    );
}

#[test]
fn arrays_with_a_bad_element_or_no_closing_bracket() {
    let text = format!(
        "[\n{},\n{{\"trajectory_id\": \"bad\", \"steps\": [1,]}},\n  {},\n  42,\n{}\n]\n",
        record("a"),
        record("b"),
        record("c")
    );
    let report = read_str("a.json", &text);
    assert_eq!(report.summary.format, InputFormat::JsonArray);
    assert_eq!(ids(&report), vec!["a", "b", "c"]);
    let indexes: Vec<usize> = report.records.iter().map(|r| r.source.index).collect();
    assert_eq!(indexes, vec![0, 2, 4]);
    assert_eq!(report.records[1].source.line, 4);
    assert_eq!(report.rejected.len(), 2);
    let bad = &report.rejected[0];
    assert_eq!((bad.line, bad.index), (3, Some(1)));
    assert_eq!(bad.trajectory_id.as_deref(), Some("bad"));
    assert_eq!(
        bad.reason,
        "expected a value, found ']' at line 3 column 38"
    );
    let number = &report.rejected[1];
    assert_eq!((number.line, number.index), (5, Some(3)));
    assert_eq!(number.reason, "expected an object, found a number");
    assert!(report.summary.notes.is_empty());

    // No closing bracket: every element kept, and a note.
    let text = format!("[{}, {}\n", record("a"), record("b"));
    let report = read_str("a.json", &text);
    assert_eq!(ids(&report), vec!["a", "b"]);
    assert!(report.rejected.is_empty());
    assert_eq!(report.summary.notes, vec!["missing closing ']'"]);

    // Cut inside an element: that element is lost, the others are kept.
    let text = format!("[{}, {}", record("a"), &record("b")[..50]);
    let report = read_str("a.json", &text);
    assert_eq!(ids(&report), vec!["a"]);
    assert_eq!(only_rejection(&report).index, Some(1));

    // A broken string does not swallow the next element.
    let text = format!("[\n{{\"x\": \"open\n}},\n{}\n]", record("a"));
    let report = read_str("a.json", &text);
    assert_eq!(ids(&report), vec!["a"]);
    assert_eq!(only_rejection(&report).line, 2);

    // Data after the closing bracket, a trailing comma, an empty element.
    let text = format!("[{},,{},]\n  trailing stuff\n", record("a"), record("b"));
    let report = read_str("a.json", &text);
    assert_eq!(ids(&report), vec!["a", "b"]);
    assert_eq!(report.rejected.len(), 2);
    assert_eq!(report.rejected[0].reason, "empty array element");
    assert_eq!(report.rejected[0].index, Some(1));
    assert_eq!(
        report.rejected[1].reason,
        "unexpected data after the closing ']'"
    );
    assert_eq!(
        (report.rejected[1].line, report.rejected[1].index),
        (2, None)
    );
    assert_eq!(report.rejected[1].excerpt, "trailing stuff");
    assert_eq!(
        report.summary.notes,
        vec!["a trailing comma before the closing ']' was ignored"]
    );

    let empty = read_str("a.json", " [ ] ");
    assert_eq!(empty.summary.format, InputFormat::JsonArray);
    assert_eq!(empty.summary.notes, vec!["the array has no elements"]);
}

#[test]
fn crlf_bom_and_invalid_utf8_lines() {
    let bad_line = {
        let mut l = record("b").into_bytes();
        let at = l.windows(3).position(|w| w == b"p b").unwrap();
        l.insert(at + 2, 0xFF);
        l
    };
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(record("a").as_bytes());
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes.extend_from_slice(&bad_line);
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(record("c").as_bytes());
    bytes.extend_from_slice(b"\r\n");
    let report = read_all("m.jsonl", &bytes);
    assert_eq!(report.summary.format, InputFormat::Jsonl);
    assert_eq!(ids(&report), vec!["a", "c"]);
    assert_eq!(report.records[1].source.line, 4);
    assert_eq!(report.records[1].source.index, 2);
    assert_eq!(report.summary.blank_lines, 1);
    let r = only_rejection(&report);
    assert_eq!((r.line, r.index), (3, Some(1)));
    assert!(
        r.reason.starts_with("invalid UTF-8 at line 3 column "),
        "{}",
        r.reason
    );
    assert_eq!(r.trajectory_id.as_deref(), Some("b"));
    assert!(r.excerpt.contains('\u{FFFD}'));
    assert_eq!(
        report.summary.notes,
        vec!["a UTF-8 byte-order mark was skipped"]
    );
    assert_eq!(report.records[0].trajectory.failure_reason, "r");
}

#[test]
fn nan_literals_and_duplicate_keys() {
    let line = record("n").replace(r#"{"q": 1}"#, r#"{"q": NaN, "r": -Infinity, "q": 2}"#);
    let line = line.replace(
        r#""final_answer": "f""#,
        r#""final_answer": "f", "final_answer": "g""#,
    );
    let report = read_str("n.jsonl", &line);
    assert!(report.rejected.is_empty());
    let t = &report.records[0].trajectory;
    assert_eq!(t.final_answer, "g");
    assert_eq!(
        agenther::json::Json::Object(t.steps[0].action_input.clone()).to_string(),
        r#"{"q": 2, "r": -Infinity}"#
    );
}

#[test]
fn deep_nesting_is_rejected_without_a_crash() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let line = record("d").replace(r#"{"q": 1}"#, &format!(r#"{{"q": {deep}}}"#));
    let text = format!("{line}\n{}\n", record("e"));
    let report = read_str("d.jsonl", &text);
    assert_eq!(ids(&report), vec!["e"]);
    let r = only_rejection(&report);
    assert!(r
        .reason
        .starts_with("nesting deeper than 200 levels at line 1 column "));
    assert_eq!(r.trajectory_id.as_deref(), Some("d"));

    // A whole file of open brackets, as an array and as JSONL.
    let report = read_all("deep.json", "[".repeat(100_000).as_bytes());
    assert_eq!(report.summary.format, InputFormat::JsonArray);
    assert_eq!(report.rejected.len(), 1);
    let report = read_all("deep.jsonl", "{\"a\":".repeat(100_000).as_bytes());
    assert_eq!(report.rejected.len(), 1);

    // The limit is configurable.
    let mut reader = Reader::with_limits("l.jsonl", Limits { max_depth: 4 });
    let mut out = Vec::new();
    reader.push(record("x").as_bytes(), &mut out);
    reader.finish(&mut out);
    assert!(matches!(&out[..], [ReadEvent::Record(_)]));
    let mut reader = Reader::with_limits("l.jsonl", Limits { max_depth: 3 });
    let mut out = Vec::new();
    reader.push(record("x").as_bytes(), &mut out);
    reader.finish(&mut out);
    assert!(matches!(&out[..], [ReadEvent::Rejected(_)]));
}

#[test]
fn each_wrong_type_names_its_field() {
    let base: Value = serde_json::from_str(&record("w")).unwrap();
    let cases: &[(&str, Value, &str, &str)] = &[
        (
            "/trajectory_id",
            Value::from(7),
            "trajectory_id",
            "expected a string, found a number",
        ),
        (
            "/original_prompt",
            Value::Null,
            "original_prompt",
            "expected a string, found null",
        ),
        (
            "/steps",
            Value::from("s"),
            "steps",
            "expected an array, found a string",
        ),
        (
            "/steps",
            serde_json::json!([]),
            "steps",
            "expected at least one step, found an empty array",
        ),
        (
            "/steps/0",
            Value::from(true),
            "steps[0]",
            "expected an object, found a boolean",
        ),
        (
            "/steps/0/thought",
            Value::from(1.5),
            "steps[0].thought",
            "expected a string, found a number",
        ),
        (
            "/steps/0/action_name",
            serde_json::json!({}),
            "steps[0].action_name",
            "expected a string, found an object",
        ),
        (
            "/steps/0/action_input",
            serde_json::json!([1]),
            "steps[0].action_input",
            "expected an object, found an array",
        ),
        (
            "/steps/0/observation",
            Value::Null,
            "steps[0].observation",
            "expected a string, found null",
        ),
        (
            "/final_answer",
            Value::from(3),
            "final_answer",
            "expected a string, found a number",
        ),
        (
            "/failure_reason",
            Value::Null,
            "failure_reason",
            "expected a string, found null",
        ),
        (
            "/metadata",
            serde_json::json!(["x"]),
            "metadata",
            "expected an object, found an array",
        ),
    ];
    for (pointer, wrong, field, reason) in cases {
        let mut value = base.clone();
        *value.pointer_mut(pointer).unwrap() = wrong.clone();
        let report = read_str("w.jsonl", &value.to_string());
        let r = only_rejection(&report);
        assert_eq!(r.field.as_deref(), Some(*field), "{pointer}");
        assert_eq!(r.reason, *reason, "{pointer}");
        assert_eq!(r.to_string(), format!("w.jsonl:1: {field}: {reason}"));
    }

    // Missing fields.
    for (key, field) in [
        ("original_prompt", "original_prompt"),
        ("steps", "steps"),
        ("failure_reason", "failure_reason"),
    ] {
        let mut value = base.clone();
        value.as_object_mut().unwrap().remove(key);
        let report = read_str("w.jsonl", &value.to_string());
        let r = only_rejection(&report);
        assert_eq!(r.field.as_deref(), Some(field));
        assert_eq!(r.reason, "required field is missing");
    }
    let mut value = base.clone();
    value["steps"][0]
        .as_object_mut()
        .unwrap()
        .remove("action_name");
    let report = read_str("w.jsonl", &value.to_string());
    assert_eq!(
        only_rejection(&report).field.as_deref(),
        Some("steps[0].action_name")
    );

    // Optional fields may be absent; unknown ones are ignored.
    let mut value = base.clone();
    let o = value.as_object_mut().unwrap();
    o.remove("final_answer");
    o.remove("metadata");
    o.remove("trajectory_id");
    o.insert("extra".into(), Value::from("ignored"));
    value["steps"][0]
        .as_object_mut()
        .unwrap()
        .remove("action_input");
    let text = value.to_string();
    let report = read_str("w.jsonl", &text);
    assert!(report.rejected.is_empty());
    let t = &report.records[0].trajectory;
    assert_eq!(t.final_answer, "");
    assert!(t.metadata.is_empty() && t.steps[0].action_input.is_empty());
    assert!(t.trajectory_id.starts_with("traj-"));
    // The generated id depends on the file name, the index and the bytes.
    let again = read_str("w.jsonl", &text);
    assert_eq!(again.records[0].trajectory.trajectory_id, t.trajectory_id);
    let other_file = read_str("v.jsonl", &text);
    assert_ne!(
        other_file.records[0].trajectory.trajectory_id,
        t.trajectory_id
    );
    let other_index = read_str("w.jsonl", &format!("{}\n{text}", record("z")));
    assert_ne!(
        other_index.records[1].trajectory.trajectory_id,
        t.trajectory_id
    );
}

#[test]
fn jsonl_lines_that_are_not_one_object() {
    let text = format!(
        "[1]\nnull\n42\n{} {}\n{}x\n{}\n",
        record("a"),
        record("b"),
        record("c"),
        record("d")
    );
    // A file starting with '[' is an array; start with a record instead.
    let text = format!("{}\n{text}", record("first"));
    let report = read_str("j.jsonl", &text);
    assert_eq!(report.summary.format, InputFormat::Jsonl);
    assert_eq!(ids(&report), vec!["first", "d"]);
    let reasons: Vec<&str> = report.rejected.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons[0], "expected an object, found an array");
    assert_eq!(reasons[1], "expected an object, found null");
    assert_eq!(reasons[2], "expected an object, found a number");
    assert!(reasons[3].starts_with("extra data after the value at line 5 column "));
    assert!(reasons[4].starts_with("extra data after the value at line 6 column "));
}

#[test]
fn line_separators_inside_strings_do_not_split() {
    let line = record("s").replace("p s", "p \u{2028} \u{2029} \u{85} s");
    let text = format!("{line}\n{}\n", record("t"));
    let report = read_str("s.jsonl", &text);
    assert_eq!(ids(&report), vec!["s", "t"]);
    assert_eq!(report.records[1].source.line, 2);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), cut in 1usize..64) {
        let _ = parse_bytes(&bytes, &Limits::default());
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = parse(text);
        }
        let (whole, summary) = events_in_chunks("p", &bytes, 0);
        let (chunked, chunked_summary) = events_in_chunks("p", &bytes, cut);
        prop_assert!(whole == chunked);
        prop_assert_eq!(summary, chunked_summary);
    }

    #[test]
    fn json_like_bytes_never_panic(parts in proptest::collection::vec(
        prop::sample::select(vec![
            "[", "]", "{", "}", ",", ":", "\"", "\\", "\n", " ", "\r", "a", "1", "-", ".", "e",
            "null", "NaN", "\"k\"", "\\u", "d800", "\u{feff}", "\u{2028}", "\t",
        ]),
        0..200,
    ), cut in 1usize..32) {
        let text: String = parts.concat();
        let _ = parse(&text);
        let (whole, summary) = events_in_chunks("p", text.as_bytes(), 0);
        let (chunked, chunked_summary) = events_in_chunks("p", text.as_bytes(), cut);
        prop_assert!(whole == chunked);
        prop_assert_eq!(summary, chunked_summary);
    }

    #[test]
    fn splitting_valid_input_anywhere_gives_the_same_events(
        layout in 0usize..3,
        count in 1usize..6,
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let text = match layout {
            0 => CORPUS.lines().take(count).map(|l| l.to_owned() + "\n").collect::<String>(),
            1 => pretty_array(count),
            _ => pretty_values(count),
        };
        let bytes = text.as_bytes();
        let (whole, summary) = events_in_chunks("v", bytes, 0);
        prop_assert_eq!(summary.records, count);
        let points = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        let (events, chunked_summary) = support::read_cut(Reader::new("v"), bytes, points);
        prop_assert!(whole == events);
        prop_assert_eq!(summary, chunked_summary);
    }
}

#[test]
fn binary_files_are_refused_as_a_whole_with_what_they_are() {
    let mut noise: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    noise[7] = 0;
    let gzip = [&[0x1f, 0x8b, 0x08, 0x00][..], &noise[..500]].concat();
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain("[{\"a\": 1}]".encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let cases: [(&[u8], &str); 3] = [
        (&noise, "binary file (it holds NUL bytes)"),
        (&gzip, "gzip-compressed file: decompress it first"),
        (&utf16, "UTF-16 text: save it as UTF-8"),
    ];
    for (bytes, what) in cases {
        for size in [0, 1, 7, 1000, 4096] {
            let (events, summary) = events_in_chunks("x.bin", bytes, size);
            assert_eq!(
                summary.format,
                InputFormat::Binary,
                "{what}, chunks of {size}"
            );
            assert_eq!(summary.bytes, bytes.len() as u64);
            assert_eq!((summary.records, summary.rejected), (0, 1));
            let [ReadEvent::Rejected(r)] = &events[..] else {
                panic!("one rejection expected for {what}: {events:#?}");
            };
            assert!(r.reason.contains(what), "{}", r.reason);
            assert!(
                r.reason.ends_with("nothing was read from it"),
                "{}",
                r.reason
            );
            assert_eq!((r.line, r.index, r.field.as_deref()), (1, None, None));
        }
    }
}

#[test]
fn text_that_merely_starts_like_nothing_known_is_still_read() {
    // Short files and files whose first kilobyte is plain text go through the gate.
    let short = read_str("short.jsonl", &record("s1"));
    assert_eq!(ids(&short), ["s1"]);
    let long: String = (0..40).map(|i| record(&format!("r{i}")) + "\n").collect();
    let (events, summary) = events_in_chunks("long.jsonl", long.as_bytes(), 3);
    assert_eq!(summary.format, InputFormat::Jsonl);
    assert_eq!(summary.records, 40);
    assert_eq!(events.len(), 40);
}

#[test]
fn an_object_wrapping_the_runs_says_where_they_are() {
    let text = format!("{{\"version\": 2, \"data\": [{}]}}", record("w1"));
    let report = read_str("wrapped.json", &text);
    let r = only_rejection(&report);
    assert!(
        r.reason
            .contains("this object is not a run: it holds a list under \"data\""),
        "{}",
        r.reason
    );
}
