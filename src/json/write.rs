//! Writing JSON the way Python's `json.dumps(value, ensure_ascii=False)` does, for the
//! project's [`Json`] values and for `serde_json` values: one string escaper and one float
//! writer serve both, and write straight into the output (no intermediate tree, no second
//! pass for the line-break escapes).

use super::number::PyFloat;
use super::Json;
use std::convert::Infallible;

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
    match value {
        Json::Array(_) | Json::Object(_) => {}
        // A scalar needs no stack.
        Json::Null => return out.push_str("null"),
        Json::Bool(true) => return out.push_str("true"),
        Json::Bool(false) => return out.push_str("false"),
        Json::Number(n) => return n.write_python(out),
        Json::String(s) => return write_str_styled(s, style, out),
    }
    let mut stack = Vec::with_capacity(16);
    stack.push(Task::Value(value));
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
    write_str_contents(s, style, out);
    out.push('"');
}

/// Appends the contents of a string literal of `s` (no quotes) in `style` to `out`: a string
/// given in pieces is written as one literal by writing each piece so.
pub fn write_str_contents(s: &str, style: Style, out: &mut String) {
    let table = match style {
        Style::Python => &PYTHON,
        Style::Line => &LINE,
    };
    let _ = escape_runs::<Infallible>(s, table, |piece| {
        out.push_str(piece);
        Ok(())
    });
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
/// says. One pass over the bytes, eight at a time up to the next byte that may need one; runs
/// are copied whole.
fn escape_runs<E>(
    s: &str,
    table: &[u8; 256],
    mut emit: impl FnMut(&str) -> Result<(), E>,
) -> Result<(), E> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let line_breaks = table[0xC2] == LEAD;
    let mut run_start = 0;
    let mut i = 0;
    loop {
        i = next_special(bytes, i, line_breaks);
        let Some(&b) = bytes.get(i) else {
            break;
        };
        match table[usize::from(b)] {
            0 => i += 1,
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

/// The position of the first byte from `i` on that a JSON string cannot carry as is (`"`,
/// `\`, below U+0020) or, with `line_breaks`, that may start U+0085, U+2028 or U+2029 (0xC2,
/// 0xE2); `bytes.len()` when there is none. Reads eight bytes at a time.
pub(crate) fn next_special(bytes: &[u8], mut i: usize, line_breaks: bool) -> usize {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    // The top bit of each zero byte of `v`, and maybe of bytes above the lowest zero byte: so
    // the lowest bit set marks the first zero byte exactly.
    let zeros = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    while let Some(word) = bytes.get(i..i + 8) {
        let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let mut special = (w.wrapping_sub(ONES * 0x20) & !w & HIGHS)
            | zeros(w ^ (ONES * u64::from(b'"')))
            | zeros(w ^ (ONES * u64::from(b'\\')));
        if line_breaks {
            special |= zeros(w ^ (ONES * 0xC2)) | zeros(w ^ (ONES * 0xE2));
        }
        if special != 0 {
            return i + (special.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b < 0x20 || b == b'"' || b == b'\\' || (line_breaks && (b == 0xC2 || b == 0xE2)) {
            return i;
        }
        i += 1;
    }
    i
}

/// A float as `serde_json` values carry them: Python's form when finite, `null` otherwise
/// (a `serde_json` value cannot hold `NaN`).
pub fn write_f64(f: f64, out: &mut String) {
    if f.is_finite() {
        out.push_str(PyFloat::new(f).as_str());
    } else {
        out.push_str("null");
    }
}

/// An integer written in decimal, on the stack.
pub struct Decimal {
    buf: [u8; 20],
    at: usize,
}

impl Decimal {
    pub fn new(n: u64) -> Decimal {
        let mut d = Decimal {
            buf: [b'-'; 20],
            at: 20,
        };
        let mut m = n;
        loop {
            d.at -= 1;
            d.buf[d.at] = b'0' + (m % 10) as u8;
            m /= 10;
            if m == 0 {
                return d;
            }
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[self.at..]).expect("ASCII digits")
    }
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

    /// Each character escaped on its own, the plain way.
    fn escaped_char_by_char(s: &str, style: Style) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                '\u{85}' | '\u{2028}' | '\u{2029}' if style == Style::Line => {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn strings_escape_as_char_by_char_at_any_offset() {
        let pieces = [
            "a", "\"", "\\", "\n", "\u{1}", "\u{1f}", " ", "é", "\u{85}", "\u{2028}", "\u{2029}",
            "\u{2027}", "\u{2030}", "\u{84}", "\u{86}", "€", "🎮", "\u{7f}", "/", "xxxxxxxx",
        ];
        // Every piece at every offset within an eight-byte word, before and after others.
        for (i, a) in pieces.iter().enumerate() {
            for b in &pieces[i..] {
                for pad in 0..9 {
                    let s = format!("{}{a}{}{b}{}", "p".repeat(pad), "q".repeat(pad), "r");
                    for style in [Style::Python, Style::Line] {
                        let mut out = String::new();
                        write_str_styled(&s, style, &mut out);
                        assert_eq!(out, escaped_char_by_char(&s, style), "{s:?} {style:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn values_from_serde_are_written_as_python_writes_them() {
        let value = serde_json::json!({
            "i": -3, "u": u64::MAX, "f": 0.1, "w": 100.0, "e": 1e-7, "s": "x\u{2028}\"",
            "a": [null, true, false, [], {}], "n": {"k": [1.5]}
        });
        let json: Json = serde_json::from_value(value).unwrap();
        let mut out = String::new();
        write_styled(&json, Style::Line, &mut out);
        assert_eq!(
            out,
            "{\"i\": -3, \"u\": 18446744073709551615, \"f\": 0.1, \"w\": 100.0, \"e\": 1e-07, \
             \"s\": \"x\\u2028\\\"\", \"a\": [null, true, false, [], {}], \"n\": {\"k\": [1.5]}}"
        );
        let mut python = String::new();
        write_styled(&json, Style::Python, &mut python);
        assert_eq!(python, out.replace("\\u2028", "\u{2028}"));
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
