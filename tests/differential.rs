//! Differential test against the reference implementation: every trajectory of the reference
//! corpus must give, field for field, the output the reference gave (floats bit for bit).
#![cfg(not(target_arch = "wasm32"))]

use agenther::reader;
use agenther::stages::package::replay::replay_line_text;
use serde_json::Value;

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/reference/corpus.jsonl"
);
const EXPECTED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/reference/expected.jsonl"
);

/// The path of the first place where `got` and `want` differ, with both values shortened.
fn first_difference(got: &Value, want: &Value, path: &str) -> Option<String> {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let gk: Vec<&String> = g.keys().collect();
            let wk: Vec<&String> = w.keys().collect();
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => {
                        if let Some(d) = first_difference(gv, wv, &format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{path}.{k}: missing")),
                }
            }
            if gk != wk {
                return Some(format!("{path}: keys {gk:?}, expected {wk:?}"));
            }
            None
        }
        (Value::Array(g), Value::Array(w)) => {
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                if let Some(d) = first_difference(gv, wv, &format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            if g.len() != w.len() {
                return Some(format!("{path}: {} items, expected {}", g.len(), w.len()));
            }
            None
        }
        (Value::Number(g), Value::Number(w)) => {
            let same = match (g.as_f64(), w.as_f64()) {
                _ if g.is_f64() != w.is_f64() => false,
                (Some(a), Some(b)) if g.is_f64() => a.to_bits() == b.to_bits(),
                _ => g == w,
            };
            (!same).then(|| format!("{path}: {g}, expected {w}"))
        }
        (Value::String(g), Value::String(w)) => (g != w).then(|| {
            let at = g.chars().zip(w.chars()).take_while(|(a, b)| a == b).count();
            let show = |s: &str| {
                s.chars()
                    .skip(at.saturating_sub(20))
                    .take(60)
                    .collect::<String>()
            };
            format!(
                "{path}: differs at char {at}: {:?}, expected {:?}",
                show(g),
                show(w)
            )
        }),
        _ => (got != want).then(|| format!("{path}: {got}, expected {want}")),
    }
}

#[test]
fn corpus_matches_reference_output() {
    let corpus = std::fs::read(CORPUS).expect("corpus fixture");
    let expected = std::fs::read_to_string(EXPECTED).expect("expected fixture");
    let report = reader::read_all("corpus.jsonl", &corpus);
    let rejected: Vec<String> = report.rejected.iter().map(|r| r.to_string()).collect();
    assert!(
        rejected.is_empty(),
        "corpus records rejected: {rejected:#?}"
    );
    let expected_lines: Vec<&str> = expected.lines().collect();
    assert_eq!(report.records.len(), 400);
    assert_eq!(expected_lines.len(), 400);

    let mut failures = Vec::new();
    let mut text_differs = Vec::new();
    for (record, line) in report.records.iter().zip(&expected_lines) {
        let t = &record.trajectory;
        let want: Value = serde_json::from_str(line).expect("expected line is JSON");
        let text = replay_line_text(t);
        let got: Value = serde_json::from_str(&text).expect("a replay line is JSON");
        if let Some(diff) = first_difference(&got, &want, "") {
            failures.push(format!("{}: {diff}", t.trajectory_id));
        } else if text != *line {
            // Same values, different text: the writer is off somewhere.
            text_differs.push(t.trajectory_id.clone());
        }
    }
    let matched = 400 - failures.len();
    assert!(
        failures.is_empty(),
        "{matched}/400 records match; differences:\n{}",
        failures.join("\n")
    );
    assert!(
        text_differs.is_empty(),
        "same values but different text for {text_differs:?}"
    );
}
