//! Numbers that the training tools' loaders cannot hold, and what the exports write instead.
//!
//! 🤗 datasets reads a JSONL file into Arrow columns: it parses the lines with `ujson` (which
//! stops at an integer beyond 64 bits with "Value is too big!") and types every column with
//! `pyarrow` (signed 64-bit integers; a column mixing such an integer with a negative one
//! becomes `float64`, which rounds it). One such value sinks the whole file, or changes it
//! without a word. So where a layout writes the source's values as JSON (not inside a JSON
//! string), an integer outside the signed 64-bit range is written as a string of its digits,
//! and every such rewrite is reported with the row and the field (see [`IntegerAsText`]).
//! Values inside JSON strings (LLaMA-Factory's calls and tools, OpenAI's arguments, TRL's
//! `tools`) are kept exactly. NaN and Infinity are not rewritten: a row holding one is left
//! out by the validators.

use crate::json::{Json, JsonObject, Number};
use serde::Serialize;
use std::fmt;

/// An integer written as a string because it lies outside the signed 64-bit range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntegerAsText {
    /// Where in the row, e.g. `messages[1].tool_calls[0].function.arguments.id`.
    pub field: String,
    /// The integer's digits, as the source wrote them (canonical form).
    pub digits: String,
}

impl fmt::Display for IntegerAsText {
    /// `messages[1].tool_calls[0].function.arguments.id: the integer 123… is beyond the signed
    /// 64-bit range of Arrow-based loaders; written as the string "123…"`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: the integer {} is beyond the signed 64-bit range that Arrow-based loaders \
             (🤗 datasets) read; written as the string \"{}\"",
            self.field, self.digits, self.digits
        )
    }
}

/// Whether `n` is an integer that a signed 64-bit column cannot hold.
pub fn is_wide_integer(n: &Number) -> bool {
    matches!(n, Number::Int(_)) && n.as_i64().is_none()
}

/// `v` with every integer outside the signed 64-bit range written as a string of its digits;
/// each rewrite is added to `found` with its field (`path` names `v` itself).
pub fn integers_as_text(v: &Json, path: &str, found: &mut Vec<IntegerAsText>) -> Json {
    match v {
        Json::Number(n @ Number::Int(digits)) if is_wide_integer(n) => {
            found.push(IntegerAsText {
                field: path.to_owned(),
                digits: digits.clone(),
            });
            Json::String(digits.clone())
        }
        Json::Array(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| integers_as_text(item, &format!("{path}[{i}]"), found))
                .collect(),
        ),
        Json::Object(o) => Json::Object(
            o.iter()
                .map(|(k, item)| {
                    let p = if path.is_empty() {
                        k.to_owned()
                    } else {
                        format!("{path}.{k}")
                    };
                    let item = integers_as_text(item, &p, found);
                    (k.to_owned(), item)
                })
                .collect::<JsonObject>(),
        ),
        other => other.clone(),
    }
}

/// The first integer in `v` outside the signed 64-bit range: its path and digits.
pub fn first_wide_integer(v: &Json, path: &str) -> Option<IntegerAsText> {
    let mut found = Vec::new();
    integers_as_text(v, path, &mut found);
    found.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    #[test]
    fn only_integers_beyond_64_bits_become_text() {
        let v = parse(
            r#"{"a": [9223372036854775807, -9223372036854775808, 9223372036854775808], "b": {"c": -123456789012345678901234567890, "d": 2.5e+20, "e": "9223372036854775808"}}"#,
        )
        .unwrap();
        let mut found = Vec::new();
        let out = integers_as_text(&v, "args", &mut found);
        assert_eq!(
            out.to_python_json(),
            r#"{"a": [9223372036854775807, -9223372036854775808, "9223372036854775808"], "b": {"c": "-123456789012345678901234567890", "d": 2.5e+20, "e": "9223372036854775808"}}"#
        );
        assert_eq!(
            found,
            [
                IntegerAsText {
                    field: "args.a[2]".into(),
                    digits: "9223372036854775808".into()
                },
                IntegerAsText {
                    field: "args.b.c".into(),
                    digits: "-123456789012345678901234567890".into()
                }
            ]
        );
        assert_eq!(
            first_wide_integer(&v, "").map(|w| w.field),
            Some("a[2]".to_owned())
        );
        assert_eq!(first_wide_integer(&out, ""), None);
    }
}
