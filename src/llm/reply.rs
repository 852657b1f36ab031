//! Reading the JSON replies of the four prompts.
//!
//! A reply is searched for JSON in this order: the whole reply; each fenced code block
//! (```` ```json … ``` ```` or ```` ``` … ``` ````); the span from the first `{` to the last
//! `}`. The first candidate that is a JSON object with the expected fields wins. When none
//! does, the error says what failed at each step.
//!
//! Field checks are strict on meaning and lenient only where no meaning can be lost:
//! - a number in [0, 1] may also be given as a string holding a plain number (`"0.8"`);
//!   anything outside [0, 1] is an error (`80` is not read as 80 %);
//! - a boolean may also be given as the string `"true"` or `"false"` (any case);
//! - a failure type is matched ignoring case, surrounding space, and `-` or space for `_`
//!   (`"Tool Error"` is `tool_error`); `"none"`, `""` and null mean no type;
//! - a list of strings may be given as a single string (a one-item list);
//! - free-text fields that only explain (`rationale`, `explanation`, `rejection_reason`,
//!   `limitations`) and `key_observations` default to empty when missing or null;
//! - unknown fields are ignored.

use super::schema;
use crate::model::FailureType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// The relabeler's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelabelReply {
    pub hindsight_prompt: String,
    pub is_valid_replay: bool,
    pub rationale: String,
    pub confidence: f64,
}

/// The second judge's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeReply {
    pub is_valid: bool,
    pub confidence: f64,
    pub rejection_reason: String,
}

/// The failure-detection judge's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectReply {
    pub is_failure: bool,
    pub failure_type: Option<FailureType>,
    pub severity: f64,
    pub weight: f64,
    pub recoverable: bool,
    pub explanation: String,
}

/// The outcome extractor's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractReply {
    pub actual_achievements: Vec<String>,
    pub key_observations: Vec<String>,
    pub limitations: String,
}

/// A reply type: its name, its JSON schema and how to read it from a JSON object.
pub trait Reply: Sized {
    /// The schema name sent in `response_format`.
    const NAME: &'static str;
    fn schema() -> Value;
    fn from_object(object: &Map<String, Value>) -> Result<Self, String>;
}

/// Why a reply could not be read: what failed at each step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyError {
    /// (step, what failed), e.g. ("fenced block 1", "missing field `confidence`").
    pub steps: Vec<(String, String)>,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (step, why)) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{step}: {why}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ReplyError {}

/// Reads a reply of type `R` from a model's text.
pub fn parse_reply<R: Reply>(text: &str) -> Result<R, ReplyError> {
    if text.trim().is_empty() {
        return Err(ReplyError {
            steps: vec![("whole reply".to_owned(), "empty".to_owned())],
        });
    }
    // Each step: its label and the text to try, or why there is nothing to try.
    let mut candidates: Vec<(String, Result<&str, &str>)> =
        vec![("whole reply".to_owned(), Ok(text))];
    let blocks = fenced_blocks(text);
    if blocks.is_empty() {
        candidates.push(("fenced blocks".to_owned(), Err("none")));
    }
    for (i, block) in blocks.into_iter().enumerate() {
        candidates.push((format!("fenced block {}", i + 1), Ok(block)));
    }
    candidates.push((
        "braces span".to_owned(),
        braces_span(text).ok_or("no `{ … }` in the reply"),
    ));

    let mut steps: Vec<(String, String)> = Vec::new();
    let mut tried: Vec<(&str, &str)> = Vec::new();
    for (label, candidate) in &candidates {
        let candidate = match candidate {
            Ok(c) => c.trim(),
            Err(why) => {
                steps.push((label.clone(), (*why).to_owned()));
                continue;
            }
        };
        if let Some((earlier, _)) = tried.iter().find(|(_, t)| *t == candidate) {
            steps.push((label.clone(), format!("same text as {earlier}")));
            continue;
        }
        tried.push((label, candidate));
        match read_candidate::<R>(candidate) {
            Ok(r) => return Ok(r),
            Err(why) => steps.push((label.clone(), why)),
        }
    }
    Err(ReplyError { steps })
}

fn read_candidate<R: Reply>(text: &str) -> Result<R, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    match &value {
        Value::Object(o) => R::from_object(o),
        other => Err(format!("expected a JSON object, found {}", kind(other))),
    }
}

/// The contents of each fenced code block, in order. An unclosed fence runs to the end.
pub fn fenced_blocks(text: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        // The info string ("json", "JSON", ...) runs to the end of the line.
        let body_start = match after.find('\n') {
            Some(nl) => nl + 1,
            None => break,
        };
        let body = &after[body_start..];
        match body.find("```") {
            Some(close) => {
                blocks.push(&body[..close]);
                rest = &body[close + 3..];
            }
            None => {
                blocks.push(body);
                break;
            }
        }
    }
    blocks
}

/// The text from the first `{` to the last `}`, when there is such a span.
pub fn braces_span(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    (end > start).then(|| &text[start..=end])
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn present<'a>(o: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    o.get(field).filter(|v| !v.is_null())
}

fn required<'a>(o: &'a Map<String, Value>, field: &str) -> Result<&'a Value, String> {
    present(o, field).ok_or_else(|| format!("missing field `{field}`"))
}

fn get_bool(o: &Map<String, Value>, field: &str) -> Result<bool, String> {
    match required(o, field)? {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
        other => Err(format!(
            "field `{field}`: expected a boolean, found {}",
            kind(other)
        )),
    }
}

fn get_unit(o: &Map<String, Value>, field: &str) -> Result<f64, String> {
    let v = required(o, field)?;
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    };
    match n {
        Some(n) if (0.0..=1.0).contains(&n) => Ok(n),
        Some(n) => Err(format!("field `{field}`: {n} is outside [0, 1]")),
        None => Err(format!(
            "field `{field}`: expected a number in [0, 1], found {}",
            match v {
                Value::String(s) => format!("the string {s:?}"),
                other => kind(other).to_owned(),
            }
        )),
    }
}

fn get_string(o: &Map<String, Value>, field: &str) -> Result<String, String> {
    match required(o, field)? {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "field `{field}`: expected a string, found {}",
            kind(other)
        )),
    }
}

fn get_optional_string(o: &Map<String, Value>, field: &str) -> Result<String, String> {
    match present(o, field) {
        None => Ok(String::new()),
        Some(_) => get_string(o, field),
    }
}

fn get_string_list(o: &Map<String, Value>, field: &str) -> Result<Vec<String>, String> {
    match required(o, field)? {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!(
                    "field `{field}`: item {} is {}, expected a string",
                    i + 1,
                    kind(other)
                )),
            })
            .collect(),
        other => Err(format!(
            "field `{field}`: expected a list of strings, found {}",
            kind(other)
        )),
    }
}

fn get_optional_string_list(o: &Map<String, Value>, field: &str) -> Result<Vec<String>, String> {
    match present(o, field) {
        None => Ok(Vec::new()),
        Some(_) => get_string_list(o, field),
    }
}

/// Reads a failure type leniently (see the module documentation).
pub fn read_failure_type(s: &str) -> Option<Option<FailureType>> {
    let norm: String = s
        .trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    if norm.is_empty() || norm == "none" || norm == "null" {
        return Some(None);
    }
    FailureType::parse(&norm).map(Some)
}

fn get_failure_type(o: &Map<String, Value>, field: &str) -> Result<Option<FailureType>, String> {
    if !o.contains_key(field) {
        return Err(format!("missing field `{field}`"));
    }
    match &o[field] {
        Value::Null => Ok(None),
        Value::String(s) => read_failure_type(s).ok_or_else(|| {
            format!(
                "field `{field}`: {s:?} is not one of {}",
                schema::failure_type_names().join(", ")
            )
        }),
        other => Err(format!(
            "field `{field}`: expected a string, found {}",
            kind(other)
        )),
    }
}

impl Reply for RelabelReply {
    const NAME: &'static str = "relabel_reply";
    fn schema() -> Value {
        schema::relabel()
    }
    fn from_object(o: &Map<String, Value>) -> Result<Self, String> {
        let is_valid_replay = get_bool(o, "is_valid_replay")?;
        let confidence = get_unit(o, "confidence")?;
        let hindsight_prompt = if is_valid_replay {
            get_string(o, "hindsight_prompt")?
        } else {
            get_optional_string(o, "hindsight_prompt")?
        };
        if is_valid_replay && hindsight_prompt.trim().is_empty() {
            return Err("field `hindsight_prompt` is empty while `is_valid_replay` is true".into());
        }
        Ok(RelabelReply {
            hindsight_prompt: hindsight_prompt.trim().to_owned(),
            is_valid_replay,
            rationale: get_optional_string(o, "rationale")?,
            confidence,
        })
    }
}

impl Reply for JudgeReply {
    const NAME: &'static str = "judge_reply";
    fn schema() -> Value {
        schema::judge()
    }
    fn from_object(o: &Map<String, Value>) -> Result<Self, String> {
        Ok(JudgeReply {
            is_valid: get_bool(o, "is_valid")?,
            confidence: get_unit(o, "confidence")?,
            rejection_reason: get_optional_string(o, "rejection_reason")?,
        })
    }
}

impl Reply for DetectReply {
    const NAME: &'static str = "failure_analysis";
    fn schema() -> Value {
        schema::detect()
    }
    fn from_object(o: &Map<String, Value>) -> Result<Self, String> {
        Ok(DetectReply {
            is_failure: get_bool(o, "is_failure")?,
            failure_type: get_failure_type(o, "failure_type")?,
            severity: get_unit(o, "severity")?,
            weight: get_unit(o, "weight")?,
            recoverable: get_bool(o, "recoverable")?,
            explanation: get_optional_string(o, "explanation")?,
        })
    }
}

impl Reply for ExtractReply {
    const NAME: &'static str = "extracted_outcome";
    fn schema() -> Value {
        schema::extract()
    }
    fn from_object(o: &Map<String, Value>) -> Result<Self, String> {
        Ok(ExtractReply {
            actual_achievements: get_string_list(o, "actual_achievements")?,
            key_observations: get_optional_string_list(o, "key_observations")?,
            limitations: get_optional_string(o, "limitations")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELABEL: &str = r#"{"hindsight_prompt": "Find X", "is_valid_replay": true, "rationale": "r", "confidence": 0.8}"#;

    #[test]
    fn whole_reply() {
        let r: RelabelReply = parse_reply(RELABEL).unwrap();
        assert_eq!(r.hindsight_prompt, "Find X");
        assert!(r.is_valid_replay);
        assert_eq!(r.confidence, 0.8);
    }

    #[test]
    fn fenced_block() {
        let text = format!("Here you go:\n```json\n{RELABEL}\n```\nThanks.");
        let r: RelabelReply = parse_reply(&text).unwrap();
        assert_eq!(r.rationale, "r");
        let text = format!("```\n{RELABEL}\n```");
        assert!(parse_reply::<RelabelReply>(&text).is_ok());
    }

    #[test]
    fn second_fenced_block_wins_when_first_is_not_json() {
        let text = format!("```text\nnot json\n```\nthen\n```JSON\n{RELABEL}\n```");
        assert!(parse_reply::<RelabelReply>(&text).is_ok());
    }

    #[test]
    fn embedded_braces() {
        let text = format!("Sure! {RELABEL} Let me know if you need more.");
        let r: RelabelReply = parse_reply(&text).unwrap();
        assert_eq!(r.confidence, 0.8);
    }

    #[test]
    fn error_lists_every_step() {
        let text =
            "I think:\n```json\n{\"hindsight_prompt\": \"x\", \"is_valid_replay\": true}\n```\n";
        let e = parse_reply::<RelabelReply>(text).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("whole reply: expected value at line 1 column 1; "),
            "{msg}"
        );
        assert!(
            msg.contains("fenced block 1: missing field `confidence`"),
            "{msg}"
        );
        assert!(
            msg.contains("braces span: same text as fenced block 1"),
            "{msg}"
        );
        assert_eq!(e.steps.len(), 3);

        let e = parse_reply::<JudgeReply>("no json here").unwrap_err();
        assert_eq!(
            e.to_string(),
            "whole reply: expected ident at line 1 column 2; fenced blocks: none; \
             braces span: no `{ … }` in the reply"
        );
        assert_eq!(
            parse_reply::<JudgeReply>("  \n").unwrap_err().to_string(),
            "whole reply: empty"
        );
    }

    #[test]
    fn ranges_and_types() {
        let e = parse_reply::<JudgeReply>(r#"{"is_valid": true, "confidence": 80}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("field `confidence`: 80 is outside [0, 1]"),
            "{e}"
        );
        let e = parse_reply::<JudgeReply>(r#"{"is_valid": 1, "confidence": 0.5}"#).unwrap_err();
        assert!(e
            .to_string()
            .contains("field `is_valid`: expected a boolean, found a number"));
        let e = parse_reply::<JudgeReply>(r#"[1, 2]"#).unwrap_err();
        assert!(e
            .to_string()
            .contains("expected a JSON object, found an array"));
        let e =
            parse_reply::<JudgeReply>(r#"{"is_valid": true, "confidence": "high"}"#).unwrap_err();
        assert!(e.to_string().contains("found the string \"high\""), "{e}");
    }

    #[test]
    fn harmless_leniency() {
        let r: JudgeReply = parse_reply(
            r#"{"is_valid": "True", "confidence": " 0.75 ", "rejection_reason": null}"#,
        )
        .unwrap();
        assert!(r.is_valid);
        assert_eq!(r.confidence, 0.75);
        assert_eq!(r.rejection_reason, "");

        let r: ExtractReply =
            parse_reply(r#"{"actual_achievements": "Found the price", "extra": 1}"#).unwrap();
        assert_eq!(r.actual_achievements, ["Found the price"]);
        assert!(r.key_observations.is_empty());
        assert_eq!(r.limitations, "");
    }

    #[test]
    fn invalid_replay_may_have_empty_prompt_but_valid_may_not() {
        let r: RelabelReply =
            parse_reply(r#"{"hindsight_prompt": "", "is_valid_replay": false, "confidence": 0.1}"#)
                .unwrap();
        assert!(!r.is_valid_replay);
        let e = parse_reply::<RelabelReply>(
            r#"{"hindsight_prompt": "  ", "is_valid_replay": true, "confidence": 0.9}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("`hindsight_prompt` is empty"));
    }

    #[test]
    fn failure_types() {
        let d: DetectReply = parse_reply(
            r#"{"is_failure": true, "failure_type": "Tool Error", "severity": 0.5,
                "weight": 0.7, "recoverable": true, "explanation": "e"}"#,
        )
        .unwrap();
        assert_eq!(d.failure_type, Some(FailureType::ToolError));
        assert_eq!(read_failure_type("none"), Some(None));
        assert_eq!(
            read_failure_type("off-topic"),
            Some(Some(FailureType::OffTopic))
        );
        assert_eq!(read_failure_type("timeout"), None);
        let e = parse_reply::<DetectReply>(
            r#"{"is_failure": true, "failure_type": "timeout", "severity": 0.5,
                "weight": 0.7, "recoverable": true}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("\"timeout\" is not one of constraint_violation"),
            "{e}"
        );
        let e = parse_reply::<DetectReply>(
            r#"{"is_failure": true, "severity": 0.5, "weight": 0.7, "recoverable": true}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("missing field `failure_type`"));
    }

    #[test]
    fn fences_and_spans() {
        assert_eq!(
            fenced_blocks("a ```json\n{}\n``` b ```\nx\n```"),
            ["{}\n", "x\n"]
        );
        assert_eq!(fenced_blocks("```json\n{\"a\":1}"), ["{\"a\":1}"]);
        assert!(fenced_blocks("no fences").is_empty());
        assert_eq!(braces_span("x {a} y {b} z"), Some("{a} y {b}"));
        assert_eq!(braces_span("} {"), None);
    }
}
