//! Writing JSON the way Python's `json.dumps(value, ensure_ascii=False)` does.

use super::Json;
use std::fmt::Write;

/// `json.dumps(value, ensure_ascii=False)`: `", "` and `": "` separators, keys in order,
/// non-ASCII characters as they are.
pub fn python_dumps(value: &Json) -> String {
    let mut out = String::new();
    write_python(value, &mut out);
    out
}

/// Appends [`python_dumps`] of `value` to `out`. Iterative, so any depth is safe.
pub fn write_python(value: &Json, out: &mut String) {
    enum Task<'a> {
        Value(&'a Json),
        Text(&'static str),
        Key(&'a str),
    }
    let mut stack = vec![Task::Value(value)];
    while let Some(task) = stack.pop() {
        match task {
            Task::Text(t) => out.push_str(t),
            Task::Key(k) => {
                write_python_str(k, out);
                out.push_str(": ");
            }
            Task::Value(v) => match v {
                Json::Null => out.push_str("null"),
                Json::Bool(true) => out.push_str("true"),
                Json::Bool(false) => out.push_str("false"),
                Json::Number(n) => n.write_python(out),
                Json::String(s) => write_python_str(s, out),
                Json::Array(items) => {
                    out.push('[');
                    stack.push(Task::Text("]"));
                    for (i, item) in items.iter().enumerate().rev() {
                        stack.push(Task::Value(item));
                        if i > 0 {
                            stack.push(Task::Text(", "));
                        }
                    }
                }
                Json::Object(o) => {
                    out.push('{');
                    stack.push(Task::Text("}"));
                    let entries: Vec<_> = o.iter().collect();
                    for (i, (k, v)) in entries.into_iter().enumerate().rev() {
                        stack.push(Task::Value(v));
                        stack.push(Task::Key(k));
                        if i > 0 {
                            stack.push(Task::Text(", "));
                        }
                    }
                }
            },
        }
    }
}

/// A JSON string literal as Python writes it with `ensure_ascii=False`: `"` and `\` escaped,
/// `\n \r \t \b \f` by name, other characters below U+0020 as `\u00XX`, everything else as is.
pub fn write_python_str(s: &str, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    // Every character that needs an escape is ASCII, so runs between them can be copied
    // whole: slicing at an ASCII byte is always on a character boundary.
    let mut run_start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[run_start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escape);
        }
        run_start = i + 1;
    }
    out.push_str(&s[run_start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{JsonObject, Number};

    #[test]
    fn writes_like_python() {
        let mut inner = JsonObject::new();
        inner.insert("max", Json::from(74.0));
        inner.insert(
            "big",
            Json::Number(Number::int_from_literal("123456789012345678901234567890").unwrap()),
        );
        let mut o = JsonObject::new();
        o.insert("q", Json::from("naïve \"x\"\n\u{1}"));
        o.insert("f", Json::Object(inner));
        o.insert(
            "l",
            Json::Array(vec![Json::Null, Json::Bool(false), Json::from(1e-7)]),
        );
        o.insert("e", Json::Object(JsonObject::new()));
        o.insert("a", Json::Array(vec![]));
        assert_eq!(
            python_dumps(&Json::Object(o)),
            "{\"q\": \"naïve \\\"x\\\"\\n\\u0001\", \"f\": {\"max\": 74.0, \"big\": 123456789012345678901234567890}, \"l\": [null, false, 1e-07], \"e\": {}, \"a\": []}"
        );
    }

    #[test]
    fn deep_values_do_not_overflow_the_stack() {
        let mut v = Json::Null;
        for _ in 0..100_000 {
            v = Json::Array(vec![v]);
        }
        let s = python_dumps(&v);
        assert_eq!(s.len(), 100_000 * 2 + 4);
        // Dropping a deep value recursively would overflow too; unwind it by hand.
        let mut cur = v;
        while let Json::Array(mut items) = cur {
            cur = items.pop().unwrap_or(Json::Null);
        }
    }
}
