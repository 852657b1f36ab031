//! A strict JSON reader producing [`Json`].
//!
//! RFC 8259, plus the three literals Python's `json.loads` accepts (`NaN`, `Infinity`,
//! `-Infinity`). Integer literals stay exact at any size; other numbers are doubles (`1E400` is
//! infinity, as in Python). A repeated key keeps its first place and takes the last value.
//!
//! The parser keeps its own stack of open arrays and objects instead of recursing, so no input
//! can overflow the machine stack, however deep; [`Limits::max_depth`] bounds the nesting it
//! accepts.

use super::{Json, JsonObject, Number};
use std::collections::HashMap;

/// Limits that keep hostile input from costing more than its own record.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Deepest nesting of arrays and objects accepted.
    ///
    /// The parser itself is safe at any depth, but a [`Json`] value drops, clones and compares
    /// recursively: raising this far beyond the default lets callers build values too deep for
    /// those operations.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 200 }
    }
}

/// Why a text is not JSON, and where: 1-based line and column (in characters) within the text.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.message, self.line, self.column
        )
    }
}

impl std::error::Error for ParseError {}

/// Parses `text` with the default [`Limits`].
pub fn parse(text: &str) -> Result<Json, ParseError> {
    parse_with(text, &Limits::default())
}

/// Parses `text`, which must hold exactly one JSON value (whitespace around it is allowed).
pub fn parse_with(text: &str, limits: &Limits) -> Result<Json, ParseError> {
    parse_reusing(text, limits, &mut ParseBuffers::default())
}

/// Room the parser reuses from one text to the next: its stack of open arrays and objects,
/// their members, and the buffer for strings with escapes. Reading many records with one
/// spares the allocator a round of growing buffers per record.
#[derive(Debug, Default)]
pub struct ParseBuffers {
    stack: Vec<Frame>,
    items: Vec<Json>,
    members: Vec<(String, Json)>,
    scratch: String,
}

/// [`parse_with`], with `buffers` for room.
pub fn parse_reusing(
    text: &str,
    limits: &Limits,
    buffers: &mut ParseBuffers,
) -> Result<Json, ParseError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        max_depth: limits.max_depth,
        scratch: std::mem::take(&mut buffers.scratch),
    };
    let result = parser.run(&mut buffers.stack, &mut buffers.items, &mut buffers.members);
    // After an error, what was open is dropped here.
    buffers.stack.clear();
    buffers.items.clear();
    buffers.members.clear();
    buffers.scratch = parser.scratch;
    result
}

/// Like [`parse_with`], for bytes that should be UTF-8: invalid UTF-8 is an error naming its
/// 0-based byte offset ("invalid UTF-8 at byte 17"), with the line and column where it occurs.
pub fn parse_bytes(bytes: &[u8], limits: &Limits) -> Result<Json, ParseError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_with(text, limits),
        Err(e) => {
            let at = e.valid_up_to();
            let (line, column) = line_column(bytes, at);
            Err(ParseError {
                line,
                column,
                message: format!("invalid UTF-8 at byte {at}"),
            })
        }
    }
}

/// The 1-based line and column (counted in characters) of byte `offset` of `bytes`.
fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    // Count characters by their first bytes (UTF-8 continuation bytes are 0b10xxxxxx).
    let column = before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count()
        + 1;
    (line, column)
}

/// Objects narrower than this find repeated keys by a linear scan; wider ones get an index.
const INDEXED_WIDTH: usize = 16;

/// An open array or object. Their members wait on the parser's two shared stacks (`items`
/// and `members`) from `start` on, and move into a list of their exact size when it closes:
/// no list grows member by member.
#[derive(Debug)]
enum Frame {
    Array {
        start: usize,
    },
    Object {
        start: usize,
        /// Key → position among the object's members, once it is wide.
        index: Option<HashMap<String, usize>>,
        /// The key whose value is being read.
        key: String,
    },
}

impl Frame {
    fn end_of_input_message(&self) -> &'static str {
        match self {
            Frame::Array { .. } => "unexpected end of input inside an array",
            Frame::Object { .. } => "unexpected end of input inside an object",
        }
    }
}

/// Adds the pending member `key: value` to the object whose members are `members[start..]`;
/// a repeated key keeps its first place and takes the new value.
fn finish_member(
    members: &mut Vec<(String, Json)>,
    start: usize,
    index: &mut Option<HashMap<String, usize>>,
    key: String,
    value: Json,
) {
    let open = &mut members[start..];
    let existing = match index {
        Some(index) => index.get(&key).copied(),
        None => open.iter().position(|(k, _)| *k == key),
    };
    if let Some(at) = existing {
        open[at].1 = value;
        return;
    }
    if let Some(index) = index {
        index.insert(key.clone(), open.len());
    }
    members.push((key, value));
    let width = members.len() - start;
    if index.is_none() && width >= INDEXED_WIDTH {
        let keys = members[start..].iter().enumerate();
        *index = Some(keys.map(|(i, (k, _))| (k.clone(), i)).collect());
    }
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    max_depth: usize,
    /// The text of a string with escapes, while it is read.
    scratch: String,
}

impl Parser<'_> {
    fn run(
        &mut self,
        stack: &mut Vec<Frame>,
        items: &mut Vec<Json>,
        members: &mut Vec<(String, Json)>,
    ) -> Result<Json, ParseError> {
        'value: loop {
            // Read one value. An array or object that has members opens a frame and goes back
            // to read its first member.
            self.skip_ws();
            let mut value = match self.peek() {
                None => {
                    let message = match stack.last() {
                        Some(frame) => frame.end_of_input_message(),
                        None => "unexpected end of input, expected a value",
                    };
                    return Err(self.error(message));
                }
                Some(b'[') => {
                    self.check_depth(stack.len())?;
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        Json::Array(Vec::new())
                    } else {
                        stack.push(Frame::Array { start: items.len() });
                        continue 'value;
                    }
                }
                Some(b'{') => {
                    self.check_depth(stack.len())?;
                    self.pos += 1;
                    self.skip_ws();
                    match self.peek() {
                        Some(b'}') => {
                            self.pos += 1;
                            Json::Object(JsonObject::new())
                        }
                        Some(b'"') => {
                            let key = self.key()?;
                            stack.push(Frame::Object {
                                start: members.len(),
                                index: None,
                                key,
                            });
                            continue 'value;
                        }
                        None => return Err(self.error("unexpected end of input inside an object")),
                        Some(_) => return Err(self.error("expected a string key or '}' after '{'")),
                    }
                }
                Some(b'"') => Json::String(self.string()?),
                Some(_) => self.scalar()?,
            };

            // Hand the value to the open container, closing containers as they end.
            loop {
                let Some(frame) = stack.last_mut() else {
                    self.skip_ws();
                    if self.pos < self.bytes.len() {
                        return Err(self.error("extra data after the value"));
                    }
                    return Ok(value);
                };
                match frame {
                    Frame::Array { start } => {
                        let start = *start;
                        items.push(value);
                        self.skip_ws();
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                continue 'value;
                            }
                            Some(b']') => {
                                self.pos += 1;
                                stack.pop();
                                value = Json::Array(items.drain(start..).collect());
                            }
                            None => {
                                return Err(self.error("unexpected end of input inside an array"))
                            }
                            Some(_) => {
                                return Err(self.error("expected ',' or ']' after an array element"))
                            }
                        }
                    }
                    Frame::Object { start, index, key } => {
                        let start = *start;
                        finish_member(members, start, index, std::mem::take(key), value);
                        self.skip_ws();
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                match self.peek() {
                                    Some(b'"') => {
                                        let next = self.key()?;
                                        if let Some(Frame::Object { key, .. }) = stack.last_mut() {
                                            *key = next;
                                        }
                                        continue 'value;
                                    }
                                    None => {
                                        return Err(
                                            self.error("unexpected end of input inside an object")
                                        )
                                    }
                                    Some(_) => {
                                        return Err(self.error("expected a string key after ','"))
                                    }
                                }
                            }
                            Some(b'}') => {
                                self.pos += 1;
                                stack.pop();
                                let entries = members.drain(start..).collect();
                                value = Json::Object(JsonObject::from_unique_entries(entries));
                            }
                            None => {
                                return Err(self.error("unexpected end of input inside an object"))
                            }
                            Some(_) => {
                                return Err(self.error("expected ',' or '}' after an object member"))
                            }
                        }
                    }
                }
            }
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, offset: usize, message: impl Into<String>) -> ParseError {
        let (line, column) = line_column(self.bytes, offset);
        ParseError {
            line,
            column,
            message: message.into(),
        }
    }

    /// `open` is the number of arrays and objects already open around the one at `pos`.
    fn check_depth(&self, open: usize) -> Result<(), ParseError> {
        if open >= self.max_depth {
            Err(self.error(format!("nesting deeper than {} levels", self.max_depth)))
        } else {
            Ok(())
        }
    }

    /// The character at `pos`, described for an error message.
    fn describe_here(&self) -> String {
        match self
            .text
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
        {
            Some(c) if (c as u32) < 0x20 || c == '\u{7f}' => format!("U+{:04X}", c as u32),
            Some(c) => format!("'{c}'"),
            None => "the end of the input".to_owned(),
        }
    }

    /// An object key (at its opening quote) and the ':' after it.
    fn key(&mut self) -> Result<String, ParseError> {
        let key = self.string()?;
        self.skip_ws();
        match self.peek() {
            Some(b':') => {
                self.pos += 1;
                Ok(key)
            }
            None => Err(self.error("unexpected end of input inside an object")),
            Some(_) => Err(self.error("expected ':' after an object key")),
        }
    }

    /// A string, from its opening quote at `pos`. A string without escapes is copied once
    /// into a string of its size; one with escapes is put together in the reused `scratch`
    /// first.
    fn string(&mut self) -> Result<String, ParseError> {
        self.pos += 1;
        let run = self.pos;
        self.pos = super::write::next_special(self.bytes, self.pos, false);
        if self.peek() == Some(b'"') {
            // The run stops only at ASCII bytes, so it ends on a character boundary.
            let s = self.text[run..self.pos].to_owned();
            self.pos += 1;
            return Ok(s);
        }
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        out.push_str(&self.text[run..self.pos]);
        let result = self.string_rest(&mut out);
        self.scratch = out;
        result
    }

    /// The rest of a string whose first run is in `out`, from the byte after that run.
    fn string_rest(&mut self, out: &mut String) -> Result<String, ParseError> {
        loop {
            match self.peek() {
                None => return Err(self.error("unexpected end of input inside a string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out.as_str().to_owned());
                }
                Some(b'\\') => out.push(self.escape()?),
                Some(b) => {
                    return Err(self.error(format!("raw control character U+{b:04X} in a string")))
                }
            }
            let run = self.pos;
            self.pos = super::write::next_special(self.bytes, self.pos, false);
            out.push_str(&self.text[run..self.pos]);
        }
    }

    /// An escape sequence, from its backslash at `pos`.
    fn escape(&mut self) -> Result<char, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let Some(b) = self.peek() else {
            return Err(self.error("unexpected end of input inside a string"));
        };
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{08}',
            b'f' => '\u{0c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                self.pos += 1;
                return self.unicode_escape(start);
            }
            _ => {
                let message = match self.text.get(self.pos..).and_then(|r| r.chars().next()) {
                    Some(c) if !c.is_control() => format!("invalid escape '\\{c}' in a string"),
                    _ => format!("invalid escape: '\\' followed by {}", self.describe_here()),
                };
                return Err(self.error_at(start, message));
            }
        };
        self.pos += 1;
        Ok(c)
    }

    /// The rest of a `\u` escape (`pos` is after the `u`), combining a surrogate pair.
    fn unicode_escape(&mut self, start: usize) -> Result<char, ParseError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                let rest = &self.bytes[self.pos..];
                let low = if rest.starts_with(b"\\u") {
                    let save = self.pos;
                    self.pos += 2;
                    let low = self.hex4()?;
                    if (0xDC00..=0xDFFF).contains(&low) {
                        Some(low)
                    } else {
                        self.pos = save;
                        None
                    }
                } else {
                    None
                };
                match low {
                    Some(low) => 0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00),
                    None => return Err(self.lone_surrogate(start, first)),
                }
            }
            0xDC00..=0xDFFF => return Err(self.lone_surrogate(start, first)),
            _ => first,
        };
        char::from_u32(code).ok_or_else(|| self.error_at(start, "invalid \\u escape"))
    }

    fn lone_surrogate(&self, start: usize, code: u32) -> ParseError {
        self.error_at(start, format!("lone surrogate \\u{code:04x}"))
    }

    /// Four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u32, ParseError> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = match self.peek() {
                None => return Err(self.error("unexpected end of input inside a string")),
                Some(b) => match (b as char).to_digit(16) {
                    Some(d) => d,
                    None => {
                        return Err(self.error(format!(
                            "expected 4 hex digits after '\\u', found {}",
                            self.describe_here()
                        )))
                    }
                },
            };
            code = code * 16 + digit;
            self.pos += 1;
        }
        Ok(code)
    }

    /// A literal or a number.
    fn scalar(&mut self) -> Result<Json, ParseError> {
        const LITERALS: [(&str, Json); 6] = [
            ("true", Json::Bool(true)),
            ("false", Json::Bool(false)),
            ("null", Json::Null),
            ("NaN", Json::Number(Number::Float(f64::NAN))),
            ("Infinity", Json::Number(Number::Float(f64::INFINITY))),
            ("-Infinity", Json::Number(Number::Float(f64::NEG_INFINITY))),
        ];
        let rest = &self.bytes[self.pos..];
        for (literal, value) in LITERALS {
            if rest.starts_with(literal.as_bytes()) {
                self.pos += literal.len();
                return Ok(value);
            }
        }
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.error(format!("expected a value, found {}", self.describe_here()))),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Json, ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => {
                return Err(self.error(format!(
                    "expected a digit after '-', found {}",
                    self.describe_here()
                )))
            }
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            integer = false;
            if self.digits() == 0 {
                return Err(self.error(format!(
                    "expected a digit after '.', found {}",
                    self.describe_here()
                )));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            integer = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error(format!(
                    "expected a digit in the exponent, found {}",
                    self.describe_here()
                )));
            }
        }
        let literal = &self.text[start..self.pos];
        let number = if integer {
            Number::int_from_literal(literal)
        } else {
            literal.parse::<f64>().ok().map(Number::Float)
        };
        number
            .map(Json::Number)
            .ok_or_else(|| self.error_at(start, format!("invalid number {literal}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ParseError {
        parse(text).expect_err(text)
    }

    fn int(s: &str) -> Json {
        Json::Number(Number::Int(s.to_owned()))
    }

    #[test]
    fn scalars() {
        assert_eq!(parse("true").unwrap(), Json::Bool(true));
        assert_eq!(parse(" false ").unwrap(), Json::Bool(false));
        assert_eq!(parse("\r\n\tnull\n").unwrap(), Json::Null);
        assert_eq!(parse("\"hi\"").unwrap(), Json::from("hi"));
        assert_eq!(parse("0").unwrap(), int("0"));
        assert_eq!(parse("-0").unwrap(), int("0"));
        assert_eq!(parse("-12").unwrap(), int("-12"));
        assert_eq!(parse("100.0").unwrap(), Json::from(100.0));
        assert_eq!(parse("1e2").unwrap(), Json::from(100.0));
        assert_eq!(parse("-2.5E-3").unwrap(), Json::from(-0.0025));
        assert_eq!(parse("1E+2").unwrap(), Json::from(100.0));
    }

    #[test]
    fn integers_of_any_size_are_exact() {
        let big = "123456789012345678901234567890123456789";
        assert_eq!(parse(big).unwrap(), int(big));
        assert_eq!(parse(&format!("-{big}")).unwrap(), int(&format!("-{big}")));
    }

    #[test]
    fn huge_exponents_are_infinite_as_in_python() {
        assert_eq!(parse("1E400").unwrap(), Json::from(f64::INFINITY));
        assert_eq!(parse("-1e400").unwrap(), Json::from(f64::NEG_INFINITY));
        assert_eq!(parse("1e-400").unwrap(), Json::from(0.0));
    }

    #[test]
    fn python_literals() {
        assert_eq!(parse("NaN").unwrap(), Json::from(f64::NAN));
        assert_eq!(parse("Infinity").unwrap(), Json::from(f64::INFINITY));
        assert_eq!(parse("-Infinity").unwrap(), Json::from(f64::NEG_INFINITY));
        let v = parse(r#"{"score": NaN, "limit": -Infinity}"#).unwrap();
        assert_eq!(v.to_python_json(), r#"{"score": NaN, "limit": -Infinity}"#);
        assert!(parse("nan").is_err());
        assert!(parse("-NaN").is_err());
        assert!(parse("Inf").is_err());
    }

    #[test]
    fn bad_numbers() {
        assert_eq!(
            err("-").message,
            "expected a digit after '-', found the end of the input"
        );
        assert_eq!(
            err("1.").message,
            "expected a digit after '.', found the end of the input"
        );
        assert_eq!(err("1.e3").message, "expected a digit after '.', found 'e'");
        assert_eq!(
            err("1e").message,
            "expected a digit in the exponent, found the end of the input"
        );
        assert_eq!(err("+1").message, "expected a value, found '+'");
        assert_eq!(err(".5").message, "expected a value, found '.'");
        // A leading zero ends the number; what follows is extra.
        assert_eq!(err("01").message, "extra data after the value");
        assert_eq!(
            err("[01]").message,
            "expected ',' or ']' after an array element"
        );
    }

    #[test]
    fn containers_keep_order() {
        let v = parse(r#" { "z" : [1, {"a": []}, {}], "a" : "x" } "#).unwrap();
        assert_eq!(v.to_python_json(), r#"{"z": [1, {"a": []}, {}], "a": "x"}"#);
        assert_eq!(parse("[]").unwrap(), Json::Array(vec![]));
        assert_eq!(parse("[ ]").unwrap(), Json::Array(vec![]));
        assert_eq!(parse("{ }").unwrap(), Json::Object(JsonObject::new()));
    }

    #[test]
    fn duplicate_keys_keep_first_place_and_last_value() {
        let v = parse(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap();
        assert_eq!(v.to_python_json(), r#"{"a": 3, "b": 2}"#);
    }

    #[test]
    fn wide_objects_with_duplicates() {
        let mut text = String::from("{");
        for i in 0..2000 {
            text.push_str(&format!("\"k{i}\": {i}, "));
        }
        for i in (0..2000).step_by(7) {
            text.push_str(&format!("\"k{i}\": \"again\", "));
        }
        text.push_str("\"last\": true}");
        let v = parse(&text).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), 2001);
        assert_eq!(o.keys().next(), Some("k0"));
        assert_eq!(o.get("k0"), Some(&Json::from("again")));
        assert_eq!(o.get("k1"), Some(&int("1")));
        assert_eq!(o.get("k14"), Some(&Json::from("again")));
        assert_eq!(o.keys().nth(14), Some("k14"));
        assert_eq!(o.keys().last(), Some("last"));
    }

    #[test]
    fn escapes() {
        let v = parse(r#""a\"b\\c\/d\be\ff\ng\rh\ti\u00e9\u4e2d""#).unwrap();
        assert_eq!(
            v,
            Json::from("a\"b\\c/d\u{8}e\u{c}f\ng\rh\ti\u{e9}\u{4e2d}")
        );
        assert_eq!(parse(r#""\ud83d\ude00""#).unwrap(), Json::from("😀"));
        assert_eq!(parse(r#""\uD83D\uDE00x""#).unwrap(), Json::from("😀x"));
        assert_eq!(parse(r#""\u0000""#).unwrap(), Json::from("\u{0}"));
        // Raw non-ASCII, including the characters some line splitters break on.
        assert_eq!(
            parse("\"é\u{2028}\u{2029}\u{85}😀\"").unwrap(),
            Json::from("é\u{2028}\u{2029}\u{85}😀")
        );
    }

    #[test]
    fn bad_escapes() {
        assert_eq!(err(r#""\x""#).message, "invalid escape '\\x' in a string");
        assert_eq!(
            err("\"\\\u{1}\"").message,
            "invalid escape: '\\' followed by U+0001"
        );
        assert_eq!(
            err(r#""\u12""#).message,
            "expected 4 hex digits after '\\u', found '\"'"
        );
        assert_eq!(
            err(r#""\u+123""#).message,
            "expected 4 hex digits after '\\u', found '+'"
        );
        assert_eq!(
            err(r#""\u12"#).message,
            "unexpected end of input inside a string"
        );
        assert_eq!(
            err("\"\\").message,
            "unexpected end of input inside a string"
        );
    }

    #[test]
    fn lone_surrogates_are_rejected() {
        let e = err(r#"{"a": "x\ud800"}"#);
        assert_eq!(e.message, "lone surrogate \\ud800");
        assert_eq!((e.line, e.column), (1, 9));
        assert_eq!(err(r#""\ud800x""#).message, "lone surrogate \\ud800");
        assert_eq!(err(r#""\ud800\u0041""#).message, "lone surrogate \\ud800");
        assert_eq!(err(r#""\ud800\ud800""#).message, "lone surrogate \\ud800");
        assert_eq!(err(r#""\udc00""#).message, "lone surrogate \\udc00");
        assert_eq!(err(r#""\uDFFF\uD800""#).message, "lone surrogate \\udfff");
    }

    #[test]
    fn raw_control_characters_are_rejected() {
        let e = err("{\"a\": \"x\ty\"}");
        assert_eq!(e.message, "raw control character U+0009 in a string");
        assert_eq!((e.line, e.column), (1, 9));
        assert_eq!(
            err("\"a\nb\"").message,
            "raw control character U+000A in a string"
        );
        assert_eq!(
            err("\"\u{1f}\"").message,
            "raw control character U+001F in a string"
        );
        // DEL and C1 controls are ordinary characters in JSON.
        assert!(parse("\"\u{7f}\u{85}\"").is_ok());
    }

    #[test]
    fn only_json_whitespace() {
        assert!(parse(" \t\r\n1 \t\r\n").is_ok());
        assert_eq!(err("\u{c}1").message, "expected a value, found U+000C");
        assert_eq!(err("1\u{a0}").message, "extra data after the value");
        assert_eq!(
            err("\u{feff}1").message,
            "expected a value, found '\u{feff}'"
        );
    }

    #[test]
    fn structural_errors_and_positions() {
        let e = err("");
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (1, 1, "unexpected end of input, expected a value")
        );
        let e = err("{\"a\": 1 \"b\": 2}");
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (1, 9, "expected ',' or '}' after an object member")
        );
        let e = err("[1,\n  2\n  3]");
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (3, 3, "expected ',' or ']' after an array element")
        );
        let e = err("{\"é😀\": \"ü\" x}");
        assert_eq!((e.line, e.column), (1, 12));
        assert_eq!(err("{\"a\" 1}").message, "expected ':' after an object key");
        assert_eq!(
            err("{1: 2}").message,
            "expected a string key or '}' after '{'"
        );
        assert_eq!(
            err("{\"a\": 1,}").message,
            "expected a string key after ','"
        );
        assert_eq!(err("[1,]").message, "expected a value, found ']'");
        assert_eq!(err("[1").message, "unexpected end of input inside an array");
        assert_eq!(
            err("[1,").message,
            "unexpected end of input inside an array"
        );
        assert_eq!(err("{").message, "unexpected end of input inside an object");
        assert_eq!(
            err("{\"a\"").message,
            "unexpected end of input inside an object"
        );
        assert_eq!(
            err("{\"a\":").message,
            "unexpected end of input inside an object"
        );
        assert_eq!(
            err("{\"a\": 1").message,
            "unexpected end of input inside an object"
        );
        assert_eq!(
            err("{\"a\": \"b").message,
            "unexpected end of input inside a string"
        );
        assert_eq!(err("tru").message, "expected a value, found 't'");
        assert_eq!(err("]").message, "expected a value, found ']'");
        let e = err("{} {}");
        assert_eq!(
            (e.column, e.message.as_str()),
            (4, "extra data after the value")
        );
        assert_eq!(err("{}x").message, "extra data after the value");
        assert_eq!(err("truex").message, "extra data after the value");
    }

    #[test]
    fn depth_limit() {
        let ok = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(201), "]".repeat(201));
        let e = err(&deep);
        assert_eq!(
            (e.column, e.message.as_str()),
            (201, "nesting deeper than 200 levels")
        );
        let objects = format!("{}1{}", "{\"a\":".repeat(201), "}".repeat(201));
        assert_eq!(err(&objects).message, "nesting deeper than 200 levels");
        let limits = Limits { max_depth: 2 };
        assert!(parse_with("[[1]]", &limits).is_ok());
        assert!(parse_with("[[[1]]]", &limits).is_err());
        assert!(parse_with("1", &Limits { max_depth: 0 }).is_ok());
        assert!(parse_with("[]", &Limits { max_depth: 0 }).is_err());
    }

    #[test]
    fn very_deep_input_never_overflows() {
        let deep = "[".repeat(1_000_000);
        assert_eq!(err(&deep).message, "nesting deeper than 200 levels");
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(err(&deep).message, "nesting deeper than 200 levels");
        // Without a limit the explicit stack takes it all, then reports the missing ends.
        let unlimited = Limits {
            max_depth: usize::MAX,
        };
        let open = "[{\"a\":".repeat(500_000);
        let e = parse_with(&open, &unlimited).unwrap_err();
        assert_eq!(e.message, "unexpected end of input inside an object");
    }

    #[test]
    fn bytes_must_be_utf8() {
        let limits = Limits::default();
        assert_eq!(
            parse_bytes(b"[\"\xc3\xa9\"]", &limits).unwrap(),
            Json::Array(vec![Json::from("é")])
        );
        let e = parse_bytes(b"{\"a\":\n \"\xc3\xa9\xff\"}", &limits).unwrap_err();
        assert_eq!(e.message, "invalid UTF-8 at byte 10");
        assert_eq!((e.line, e.column), (2, 4));
        // A truncated multi-byte character.
        assert_eq!(
            parse_bytes(b"\"\xe4\xb8\"", &limits).unwrap_err().message,
            "invalid UTF-8 at byte 1"
        );
        assert!(parse_bytes(b"1", &limits).is_ok());
    }

    #[test]
    fn display() {
        assert_eq!(
            err("[1 2]").to_string(),
            "expected ',' or ']' after an array element at line 1 column 4"
        );
    }
}
