//! Writing JSON the way Python's `json.dumps(value, ensure_ascii=False)` does, for the
//! project's [`Json`] values and, through [`PythonFormatter`], for any `Serialize` type written
//! with `serde_json`: one string escaper and one float writer serve both.

use super::number::PyFloat;
use super::Json;
use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};
use std::convert::Infallible;
use std::io;

/// How string literals are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Exactly `json.dumps(value, ensure_ascii=False)`: non-ASCII characters as they are.
    Python,
    /// As [`Style::Python`], except that U+0085, U+2028 and U+2029 are written as `\u` escapes,
    /// so that no line splitter that knows Unicode line breaks cuts a JSONL line (the reference
    /// fixtures have them so).
    Line,
}

/// `json.dumps(value, ensure_ascii=False)`: `", "` and `": "` separators, keys in order,
/// non-ASCII characters as they are.
pub fn python_dumps(value: &Json) -> String {
    let mut out = String::new();
    write_python(value, &mut out);
    out
}

/// Appends [`python_dumps`] of `value` to `out`. Iterative, so any depth is safe.
pub fn write_python(value: &Json, out: &mut String) {
    write_styled(value, Style::Python, out)
}

/// Appends `value` written in `style` to `out`. Iterative, so any depth is safe.
pub fn write_styled(value: &Json, style: Style, out: &mut String) {
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
                write_str_styled(k, style, out);
                out.push_str(": ");
            }
            Task::Value(v) => match v {
                Json::Null => out.push_str("null"),
                Json::Bool(true) => out.push_str("true"),
                Json::Bool(false) => out.push_str("false"),
                Json::Number(n) => n.write_python(out),
                Json::String(s) => write_str_styled(s, style, out),
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
                    let first = stack.len();
                    for (i, (k, v)) in o.iter().enumerate() {
                        if i > 0 {
                            stack.push(Task::Text(", "));
                        }
                        stack.push(Task::Key(k));
                        stack.push(Task::Value(v));
                    }
                    stack[first..].reverse();
                }
            },
        }
    }
}

/// A JSON string literal as Python writes it with `ensure_ascii=False`: `"` and `\` escaped,
/// `\n \r \t \b \f` by name, other characters below U+0020 as `\u00XX`, everything else as is.
pub fn write_python_str(s: &str, out: &mut String) {
    write_str_styled(s, Style::Python, out)
}

/// A JSON string literal in `style`.
pub fn write_str_styled(s: &str, style: Style, out: &mut String) {
    out.reserve(s.len() + 2);
    out.push('"');
    let table = match style {
        Style::Python => &PYTHON,
        Style::Line => &LINE,
    };
    let _ = escape_runs::<Infallible>(s, table, |piece| {
        out.push_str(piece);
        Ok(())
    });
    out.push('"');
}

/// What a byte of a string's UTF-8 needs: 0 nothing, [`ESC`] an escape of its own (JSON's
/// quote, backslash and control characters), [`LEAD`] a look at the character it starts (it
/// may be one of the Unicode line breaks).
const ESC: u8 = 1;
const LEAD: u8 = 2;

const fn escape_table(line_breaks: bool) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = ESC;
        b += 1;
    }
    t[b'"' as usize] = ESC;
    t[b'\\' as usize] = ESC;
    if line_breaks {
        // U+0085 is C2 85; U+2028 and U+2029 are E2 80 A8 and E2 80 A9.
        t[0xC2] = LEAD;
        t[0xE2] = LEAD;
    }
    t
}

static PYTHON: [u8; 256] = escape_table(false);
static LINE: [u8; 256] = escape_table(true);
/// Only the Unicode line breaks: for string pieces whose JSON escapes are already done.
static LINE_BREAKS_ONLY: [u8; 256] = {
    let mut t = [0u8; 256];
    t[0xC2] = LEAD;
    t[0xE2] = LEAD;
    t
};

/// The escape of a Unicode line break starting at `bytes[0]`, if one starts there.
fn line_break_escape(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0xC2, 0x85, ..] => Some("\\u0085"),
        [0xE2, 0x80, 0xA8, ..] => Some("\\u2028"),
        [0xE2, 0x80, 0xA9, ..] => Some("\\u2029"),
        _ => None,
    }
}

/// Hands `s` to `emit` in pieces, each either a run of `s` to copy or an escape, as `table`
/// says. One pass over the bytes; runs are copied whole.
fn escape_runs<E>(
    s: &str,
    table: &[u8; 256],
    mut emit: impl FnMut(&str) -> Result<(), E>,
) -> Result<(), E> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut run_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match table[b as usize] {
            0 => {
                i += 1;
                continue;
            }
            LEAD => match line_break_escape(&bytes[i..]) {
                Some(escape) => {
                    // Both ends are character boundaries: a lead byte starts a character.
                    emit(&s[run_start..i])?;
                    emit(escape)?;
                    i += if b == 0xC2 { 2 } else { 3 };
                    run_start = i;
                }
                None => i += 1,
            },
            _ => {
                emit(&s[run_start..i])?;
                let named = match b {
                    b'"' => "\\\"",
                    b'\\' => "\\\\",
                    b'\n' => "\\n",
                    b'\r' => "\\r",
                    b'\t' => "\\t",
                    0x08 => "\\b",
                    0x0c => "\\f",
                    _ => "",
                };
                if named.is_empty() {
                    let code = [
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 0xF)],
                    ];
                    emit(std::str::from_utf8(&code).expect("ASCII"))?;
                } else {
                    emit(named)?;
                }
                i += 1;
                run_start = i;
            }
        }
    }
    emit(&s[run_start..])
}

/// A `serde_json` formatter that writes what Python's `json.dumps(value, ensure_ascii=False)`
/// writes: `", "` and `": "` separators and floats as Python's `repr` (`1e-07`, `100.0`). With
/// [`Style::Line`] it also escapes the Unicode line breaks inside strings.
///
/// `serde_json` writes non-finite floats as `null` before a formatter sees them (Python would
/// write `NaN`): use it for values whose floats are finite, and [`write_styled`] for [`Json`]
/// values, which keep `NaN` and integers of any size.
#[derive(Debug, Clone, Copy)]
pub struct PythonFormatter {
    pub style: Style,
}

impl Formatter for PythonFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(PyFloat::new(value).as_str().as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(value))
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        match self.style {
            Style::Python => w.write_all(fragment.as_bytes()),
            Style::Line => escape_runs(fragment, &LINE_BREAKS_ONLY, |piece| {
                w.write_all(piece.as_bytes())
            }),
        }
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        // serde_json's escapes are Python's, except that Python never escapes '/'.
        match escape {
            CharEscape::Solidus => w.write_all(b"/"),
            other => serde_json::ser::CompactFormatter.write_char_escape(w, other),
        }
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

/// Appends `value` written with [`PythonFormatter`] in `style` to `out`.
pub fn write_serialize<T: Serialize + ?Sized>(
    value: &T,
    style: Style,
    out: &mut Vec<u8>,
) -> serde_json::Result<()> {
    let mut ser = Serializer::with_formatter(out, PythonFormatter { style });
    value.serialize(&mut ser)
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
