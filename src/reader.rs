//! Reading trajectory files: leniently, and a chunk at a time.
//!
//! A bad record never sinks the file: every good record is kept, every rejected one is reported
//! with its file, line, position, the field at fault and the reason. Input arrives in chunks of
//! any size (a browser file stream); the reader keeps only the record it is assembling.
//!
//! Formats, decided from the first non-whitespace byte (after an optional UTF-8 byte-order
//! mark):
//! - `[`: a JSON array of records. An incremental splitter cuts elements at top-level commas, so
//!   a broken element costs only itself.
//! - anything else: JSONL, one record per line. When the first record is not complete on its
//!   line but completes as one value over several lines (a pretty-printed object, or several
//!   concatenated ones), the file is read as whitespace-separated JSON values instead.
//!
//! Records are checked against the native schema (METHOD.md, "Input record") by hand, so a
//! rejection names the field path (`steps[2].observation`).

use crate::json::{parse_with, Json, JsonObject, Limits, ParseError};
use crate::model::{Step, Trajectory};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What the reader found: a record, or a rejection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReadEvent {
    Record(Record),
    Rejected(Rejected),
}

/// A record that passed the schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub trajectory: Trajectory,
    pub source: SourcePos,
}

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourcePos {
    pub file: String,
    /// 1-based line where the record starts.
    pub line: usize,
    /// 0-based position among the file's records (JSONL: non-blank lines; array: element
    /// index; values: value index).
    pub index: usize,
}

/// A record (or a piece of the file) that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub file: String,
    /// 1-based line where the record starts.
    pub line: usize,
    /// The record's position, as in [`SourcePos::index`]; `None` for what is not a record
    /// (data after an array's closing `]`).
    pub index: Option<usize>,
    /// The field at fault, e.g. `steps[2].observation`; `None` when the record as a whole is
    /// (not JSON, not an object).
    pub field: Option<String>,
    pub reason: String,
    /// The record's `trajectory_id`, when it can be read.
    pub trajectory_id: Option<String>,
    /// The start of the raw record (lossy UTF-8), to recognise it by.
    pub excerpt: String,
}

impl fmt::Display for Rejected {
    /// `bad.jsonl:4: metadata: expected an object, found an array`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// How the file was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// One record per line.
    Jsonl,
    /// One JSON array of records.
    JsonArray,
    /// One or more whitespace-separated JSON values spanning lines, e.g. a single
    /// pretty-printed object.
    JsonValues,
    /// Nothing but whitespace (or nothing at all).
    Empty,
}

/// What the reader made of a whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSummary {
    pub file: String,
    pub format: InputFormat,
    pub records: usize,
    pub rejected: usize,
    /// Blank or whitespace-only lines (JSONL and empty files only).
    pub blank_lines: usize,
    pub bytes: u64,
    /// Things worth knowing that are not rejections ("the file is empty", "missing closing
    /// ']'", "a UTF-8 byte-order mark was skipped").
    pub notes: Vec<String>,
}

/// A whole file read at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadReport {
    pub records: Vec<Record>,
    pub rejected: Vec<Rejected>,
    pub summary: FileSummary,
}

/// Reads a whole in-memory file.
pub fn read_all(file_name: &str, bytes: &[u8]) -> ReadReport {
    let mut reader = Reader::new(file_name);
    let mut events = Vec::new();
    reader.push(bytes, &mut events);
    let summary = reader.finish(&mut events);
    let mut records = Vec::new();
    let mut rejected = Vec::new();
    for event in events {
        match event {
            ReadEvent::Record(r) => records.push(r),
            ReadEvent::Rejected(r) => rejected.push(r),
        }
    }
    ReadReport {
        records,
        rejected,
        summary,
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Characters of a raw record kept in [`Rejected::excerpt`].
const EXCERPT_CHARS: usize = 120;

/// An incremental, lenient reader of one trajectory file.
#[derive(Debug)]
pub struct Reader {
    sink: Sink,
    state: State,
    /// The first bytes, while it is not yet known whether they are a byte-order mark.
    bom: Option<Vec<u8>>,
    bytes: u64,
}

impl Reader {
    /// A reader for the file called `file_name` (used in reports and generated ids), with the
    /// default [`Limits`].
    pub fn new(file_name: impl Into<String>) -> Self {
        Self::with_limits(file_name, Limits::default())
    }

    /// A reader with explicit parsing limits.
    pub fn with_limits(file_name: impl Into<String>, limits: Limits) -> Self {
        Reader {
            sink: Sink {
                file: file_name.into(),
                limits,
                records: 0,
                rejected: 0,
                blank_lines: 0,
                notes: Vec::new(),
            },
            state: State::Start(Start::default()),
            bom: Some(Vec::new()),
            bytes: 0,
        }
    }

    /// Feeds the next chunk; completed records/rejections are appended to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<ReadEvent>) {
        self.bytes += chunk.len() as u64;
        let Some(mut head) = self.bom.take() else {
            self.feed(chunk, out);
            return;
        };
        let take = (BOM.len() - head.len()).min(chunk.len());
        head.extend_from_slice(&chunk[..take]);
        if head.len() < BOM.len() && BOM.starts_with(&head) {
            self.bom = Some(head);
            return;
        }
        if head == BOM {
            self.sink.note("a UTF-8 byte-order mark was skipped");
        } else {
            self.feed(&head, out);
        }
        self.feed(&chunk[take..], out);
    }

    /// End of input: flushes the last record and returns the file's summary.
    pub fn finish(mut self, out: &mut Vec<ReadEvent>) -> FileSummary {
        if let Some(head) = self.bom.take() {
            // Fewer than three bytes, all a prefix of the byte-order mark: ordinary data.
            self.feed(&head, out);
        }
        let mut state = std::mem::replace(&mut self.state, State::Start(Start::default()));
        if let State::Detect(detect) = state {
            // The first line was complete JSON or garbage only if it ended; a first value still
            // open over several lines at the end of input is one (truncated) value.
            let mode = if detect.first_line_done {
                Mode::Values
            } else {
                Mode::Jsonl
            };
            state = self.replay(detect, mode, out);
        }
        let format = match state {
            State::Start(start) => {
                self.sink.blank_lines += start.blank_lines + usize::from(!start.pending.is_empty());
                let only_bom = self.bytes == BOM.len() as u64 && !self.sink.notes.is_empty();
                self.sink.note(if self.bytes == 0 || only_bom {
                    "the file is empty"
                } else {
                    "the file holds only whitespace"
                });
                InputFormat::Empty
            }
            State::Detect(_) => InputFormat::Jsonl,
            State::Jsonl(mut jsonl) => {
                jsonl.finish(&mut self.sink, out);
                InputFormat::Jsonl
            }
            State::Split(split) => split.finish(&mut self.sink, out),
        };
        FileSummary {
            file: self.sink.file,
            format,
            records: self.sink.records,
            rejected: self.sink.rejected,
            blank_lines: self.sink.blank_lines,
            bytes: self.bytes,
            notes: self.sink.notes,
        }
    }

    /// Feeds bytes that follow the byte-order mark check.
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<ReadEvent>) {
        while !input.is_empty() {
            match &mut self.state {
                State::Start(start) => match start.feed(input, &mut self.sink) {
                    None => return,
                    Some((used, next)) => {
                        self.state = next;
                        input = &input[used..];
                    }
                },
                State::Detect(detect) => match detect.feed(input, &self.sink.limits) {
                    None => return,
                    Some((used, mode)) => {
                        let State::Detect(detect) =
                            std::mem::replace(&mut self.state, State::Start(Start::default()))
                        else {
                            return;
                        };
                        self.state = self.replay(detect, mode, out);
                        input = &input[used..];
                    }
                },
                State::Jsonl(jsonl) => {
                    jsonl.feed(input, &mut self.sink, out);
                    return;
                }
                State::Split(split) => {
                    split.feed(input, &mut self.sink, out);
                    return;
                }
            }
        }
    }

    /// Leaves detection for `mode`, reading the held bytes again in that mode.
    fn replay(&mut self, detect: Detect, mode: Mode, out: &mut Vec<ReadEvent>) -> State {
        match mode {
            Mode::Jsonl => {
                self.sink.blank_lines += detect.blank_lines;
                let mut jsonl = Jsonl::new(detect.start_line);
                jsonl.feed(&detect.held, &mut self.sink, out);
                State::Jsonl(jsonl)
            }
            Mode::Values => {
                self.sink.note(
                    "records span several lines: the file was read as a sequence of JSON \
                     values (e.g. pretty-printed objects), not as one record per line",
                );
                let mut split = Splitter::new(false, detect.start_line, 0);
                split.feed(&detect.held, &mut self.sink, out);
                State::Split(split)
            }
        }
    }
}

/// Where the reader is in the file.
#[derive(Debug)]
enum State {
    /// Nothing but whitespace so far.
    Start(Start),
    /// The first record started on a line that has not yet shown whether the file is JSONL.
    Detect(Detect),
    Jsonl(Jsonl),
    Split(Splitter),
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Jsonl,
    Values,
}

fn is_json_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Blank for JSONL purposes: ASCII whitespace, including form feed.
fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace() || *b == 0x0b)
}

#[derive(Debug, Default)]
struct Start {
    /// Completed whitespace-only lines.
    blank_lines: usize,
    /// The whitespace of the current line.
    pending: Vec<u8>,
}

impl Start {
    fn line(&self) -> usize {
        self.blank_lines + 1
    }

    fn feed(&mut self, input: &[u8], sink: &mut Sink) -> Option<(usize, State)> {
        for (i, &b) in input.iter().enumerate() {
            match b {
                b'\n' => {
                    self.blank_lines += 1;
                    self.pending.clear();
                }
                b'[' => {
                    let col = self.pending.len() + 1;
                    let split = Splitter::new(true, self.line(), col);
                    return Some((i + 1, State::Split(split)));
                }
                _ if b.is_ascii_whitespace() || b == 0x0b => self.pending.push(b),
                _ => {
                    let mut held = std::mem::take(&mut self.pending);
                    held.push(b);
                    let mut detect = Detect {
                        held: Vec::new(),
                        start_line: self.line(),
                        blank_lines: self.blank_lines,
                        first_line_done: false,
                        depth: 0,
                        in_str: false,
                        esc: false,
                        line_start: 0,
                    };
                    // The whitespace before the value cannot decide anything.
                    let _ = detect.feed(&held, &sink.limits);
                    return Some((i + 1, State::Detect(detect)));
                }
            }
        }
        None
    }
}

/// Holds the first record's line(s) until it is clear whether the file is JSONL (the first line
/// is complete, or broken inside a string) or a sequence of values spread over lines (the first
/// value closes on a later line).
#[derive(Debug)]
struct Detect {
    held: Vec<u8>,
    start_line: usize,
    /// Blank lines before the first record (counted if the file turns out to be JSONL).
    blank_lines: usize,
    first_line_done: bool,
    depth: usize,
    in_str: bool,
    esc: bool,
    /// Where the current line starts in `held`.
    line_start: usize,
}

impl Detect {
    /// Returns how many bytes of `input` were used when the mode is decided.
    fn feed(&mut self, input: &[u8], limits: &Limits) -> Option<(usize, Mode)> {
        for (i, &b) in input.iter().enumerate() {
            self.held.push(b);
            if self.in_str {
                if self.esc {
                    self.esc = false;
                } else if b == b'\\' {
                    self.esc = true;
                } else if b == b'"' {
                    self.in_str = false;
                } else if b == b'\n' {
                    // A raw line break cannot be inside a JSON string: a broken line.
                    return Some((i + 1, Mode::Jsonl));
                }
                continue;
            }
            match b {
                b'"' => self.in_str = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    if self.depth == 0 && self.first_line_done {
                        return Some((i + 1, Mode::Values));
                    }
                }
                b'\n' => {
                    if !self.first_line_done {
                        if self.depth == 0 {
                            return Some((i + 1, Mode::Jsonl));
                        }
                        self.first_line_done = true;
                    } else {
                        let line = &self.held[self.line_start..self.held.len() - 1];
                        if looks_like_a_jsonl_record(line, limits) {
                            // The first line was a broken record and this one is whole.
                            return Some((i + 1, Mode::Jsonl));
                        }
                    }
                    self.line_start = self.held.len();
                }
                _ => {}
            }
        }
        None
    }
}

/// A line that is a whole JSON object starting in its first column: pretty-printers indent
/// everything inside a value, so this is a JSONL record.
fn looks_like_a_jsonl_record(line: &[u8], limits: &Limits) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.first() == Some(&b'{')
        && matches!(crate::json::parse_bytes(line, limits), Ok(Json::Object(_)))
}

/// One record per line.
#[derive(Debug)]
struct Jsonl {
    buf: Vec<u8>,
    /// The line `buf` holds.
    line: usize,
    index: usize,
}

impl Jsonl {
    fn new(line: usize) -> Self {
        Jsonl {
            buf: Vec::new(),
            line,
            index: 0,
        }
    }

    fn feed(&mut self, mut input: &[u8], sink: &mut Sink, out: &mut Vec<ReadEvent>) {
        while let Some(nl) = input.iter().position(|&b| b == b'\n') {
            self.buf.extend_from_slice(&input[..nl]);
            self.end_line(sink, out);
            input = &input[nl + 1..];
        }
        self.buf.extend_from_slice(input);
    }

    fn end_line(&mut self, sink: &mut Sink, out: &mut Vec<ReadEvent>) {
        let line = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
        if is_blank(line) {
            sink.blank_lines += 1;
        } else {
            sink.record(line, self.line, 1, self.index, out);
            self.index += 1;
        }
        self.buf.clear();
        self.line += 1;
    }

    fn finish(&mut self, sink: &mut Sink, out: &mut Vec<ReadEvent>) {
        if !self.buf.is_empty() {
            self.end_line(sink, out);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// Between elements or values.
    Between,
    /// Inside one.
    Inside,
    /// After an array's closing `]`.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    /// An array element: ends at a top-level `,` or `]`.
    Element,
    /// A top-level array or object value: ends where its brackets balance.
    Container,
    /// A top-level string value: ends at its closing quote.
    Str,
    /// A top-level number or literal: ends before whitespace or punctuation.
    Bare,
}

/// Cuts a JSON array into elements, or a sequence of values into values, byte by byte: it
/// tracks strings, escapes and a bracket depth counter, nothing more. Each piece is then
/// parsed on its own, so a broken piece costs only itself (as far as its brackets can tell
/// where it ends).
#[derive(Debug)]
struct Splitter {
    array: bool,
    phase: Phase,
    token: Token,
    depth: usize,
    in_str: bool,
    esc: bool,
    buf: Vec<u8>,
    /// Position of the next byte: its line, and the characters before it on that line.
    line: usize,
    col: usize,
    start_line: usize,
    start_col: usize,
    index: usize,
    /// A `,` came after the last element.
    after_comma: bool,
    /// What follows the closing `]`: its line and first bytes.
    garbage: Option<(usize, Vec<u8>)>,
    commas_noted: bool,
}

impl Splitter {
    fn new(array: bool, line: usize, col: usize) -> Self {
        Splitter {
            array,
            phase: Phase::Between,
            token: Token::Element,
            depth: 0,
            in_str: false,
            esc: false,
            buf: Vec::new(),
            line,
            col,
            start_line: line,
            start_col: 1,
            index: 0,
            after_comma: false,
            garbage: None,
            commas_noted: false,
        }
    }

    fn feed(&mut self, input: &[u8], sink: &mut Sink, out: &mut Vec<ReadEvent>) {
        for &b in input {
            match self.phase {
                Phase::Between => self.between(b, sink, out),
                Phase::Inside => self.inside(b, sink, out),
                Phase::Closed => self.closed(b),
            }
            if b == b'\n' {
                self.line += 1;
                self.col = 0;
            } else if b & 0xC0 != 0x80 {
                self.col += 1;
            }
        }
    }

    fn between(&mut self, b: u8, sink: &mut Sink, out: &mut Vec<ReadEvent>) {
        match b {
            _ if is_json_ws(b) => {}
            b']' if self.array => {
                if self.after_comma {
                    sink.note("a trailing comma before the closing ']' was ignored");
                }
                self.phase = Phase::Closed;
            }
            b',' if self.array => {
                sink.reject(
                    Rejected {
                        file: sink.file.clone(),
                        line: self.line,
                        index: Some(self.index),
                        field: None,
                        reason: "empty array element".to_owned(),
                        trajectory_id: None,
                        excerpt: String::new(),
                    },
                    out,
                );
                self.index += 1;
                self.after_comma = true;
            }
            b',' => {
                if !self.commas_noted {
                    sink.note("commas between top-level values were ignored");
                    self.commas_noted = true;
                }
            }
            _ => self.start(b, sink, out),
        }
    }

    fn start(&mut self, b: u8, sink: &mut Sink, out: &mut Vec<ReadEvent>) {
        self.buf.clear();
        self.start_line = self.line;
        self.start_col = self.col + 1;
        self.after_comma = false;
        self.depth = 0;
        self.in_str = false;
        self.esc = false;
        self.phase = Phase::Inside;
        self.token = if self.array {
            Token::Element
        } else {
            match b {
                b'{' | b'[' => Token::Container,
                b'"' => Token::Str,
                b'}' | b']' => {
                    // A stray closing bracket: a value of its own, and a broken one.
                    self.buf.push(b);
                    self.emit(sink, out);
                    return;
                }
                _ => Token::Bare,
            }
        };
        self.inside(b, sink, out);
    }

    fn inside(&mut self, b: u8, sink: &mut Sink, out: &mut Vec<ReadEvent>) {
        if self.in_str {
            if self.esc {
                self.esc = false;
            } else if b == b'\\' {
                self.esc = true;
            } else if b == b'"' {
                self.in_str = false;
                if self.token == Token::Str {
                    self.buf.push(b);
                    self.emit(sink, out);
                    return;
                }
            } else if b == b'\n' {
                // A raw line break cannot be inside a JSON string: end the string here, so a
                // missing quote does not swallow what follows.
                self.in_str = false;
                if self.token == Token::Str {
                    self.emit(sink, out);
                    return;
                }
            }
            self.buf.push(b);
            return;
        }
        match self.token {
            Token::Bare => {
                if is_json_ws(b) || matches!(b, b'{' | b'[' | b'"' | b']' | b'}' | b',') {
                    self.emit(sink, out);
                    self.between(b, sink, out);
                } else {
                    self.buf.push(b);
                }
            }
            Token::Element if self.depth == 0 && b == b',' => {
                self.emit(sink, out);
                self.after_comma = true;
            }
            Token::Element if self.depth == 0 && b == b']' => {
                self.emit(sink, out);
                self.phase = Phase::Closed;
            }
            _ => {
                self.buf.push(b);
                match b {
                    b'"' => self.in_str = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth = self.depth.saturating_sub(1);
                        if self.depth == 0 && self.token == Token::Container {
                            self.emit(sink, out);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn closed(&mut self, b: u8) {
        if let Some((_, bytes)) = &mut self.garbage {
            if bytes.len() < EXCERPT_CHARS * 4 {
                bytes.push(b);
            }
        } else if !is_json_ws(b) {
            self.garbage = Some((self.line, vec![b]));
        }
    }

    /// Hands the current piece to the sink and goes back to `Between`.
    fn emit(&mut self, sink: &mut Sink, out: &mut Vec<ReadEvent>) {
        while self.buf.last().is_some_and(|&b| is_json_ws(b)) {
            self.buf.pop();
        }
        sink.record(&self.buf, self.start_line, self.start_col, self.index, out);
        self.index += 1;
        self.buf.clear();
        self.phase = Phase::Between;
    }

    fn finish(mut self, sink: &mut Sink, out: &mut Vec<ReadEvent>) -> InputFormat {
        if self.phase == Phase::Inside {
            self.emit(sink, out);
        }
        if !self.array {
            return InputFormat::JsonValues;
        }
        match self.garbage.take() {
            _ if self.phase != Phase::Closed => sink.note("missing closing ']'"),
            Some((line, mut bytes)) => {
                while bytes.last().is_some_and(|&b| is_json_ws(b)) {
                    bytes.pop();
                }
                sink.reject(
                    Rejected {
                        file: sink.file.clone(),
                        line,
                        index: None,
                        field: None,
                        reason: "unexpected data after the closing ']'".to_owned(),
                        trajectory_id: None,
                        excerpt: excerpt(&bytes),
                    },
                    out,
                )
            }
            None => {}
        }
        if self.index == 0 {
            sink.note("the array has no elements");
        }
        InputFormat::JsonArray
    }
}

/// Turns raw records into events and keeps the counts.
#[derive(Debug)]
struct Sink {
    file: String,
    limits: Limits,
    records: usize,
    rejected: usize,
    blank_lines: usize,
    notes: Vec<String>,
}

impl Sink {
    fn note(&mut self, note: &str) {
        self.notes.push(note.to_owned());
    }

    fn reject(&mut self, rejected: Rejected, out: &mut Vec<ReadEvent>) {
        self.rejected += 1;
        out.push(ReadEvent::Rejected(rejected));
    }

    /// Reads one raw record that starts at `line`, `col` of the file.
    fn record(
        &mut self,
        raw: &[u8],
        line: usize,
        col: usize,
        index: usize,
        out: &mut Vec<ReadEvent>,
    ) {
        let rejected =
            |field: Option<String>, reason: String, trajectory_id: Option<String>| Rejected {
                file: self.file.clone(),
                line,
                index: Some(index),
                field,
                reason,
                trajectory_id,
                excerpt: excerpt(raw),
            };
        // The position in the file of a position in the record.
        let at = |(l, c): (usize, usize)| {
            let column = if l == 1 { col + c - 1 } else { c };
            format!("line {} column {}", line + l - 1, column)
        };
        let text = match std::str::from_utf8(raw) {
            Ok(text) => text,
            Err(e) => {
                let reason = format!("invalid UTF-8 at {}", at(line_column(raw, e.valid_up_to())));
                let r = rejected(None, reason, sniff_trajectory_id(raw));
                self.reject(r, out);
                return;
            }
        };
        let value = match parse_with(text, &self.limits) {
            Ok(value) => value,
            Err(ParseError {
                line: l,
                column: c,
                message,
            }) => {
                let reason = format!("{message} at {}", at((l, c)));
                let r = rejected(None, reason, sniff_trajectory_id(raw));
                self.reject(r, out);
                return;
            }
        };
        match trajectory(&value) {
            Ok(mut trajectory) => {
                if trajectory.trajectory_id.is_empty() {
                    trajectory.trajectory_id = generated_id(&self.file, index, raw);
                }
                self.records += 1;
                out.push(ReadEvent::Record(Record {
                    trajectory,
                    source: SourcePos {
                        file: self.file.clone(),
                        line,
                        index,
                    },
                }));
            }
            Err(Invalid { field, reason }) => {
                let id = match &value {
                    Json::Object(o) => o
                        .get("trajectory_id")
                        .and_then(Json::as_str)
                        .map(str::to_owned),
                    // Not a record, but it may wrap one (an array on a JSONL line).
                    _ => sniff_trajectory_id(raw),
                };
                let r = rejected(field, reason, id);
                self.reject(r, out);
            }
        }
    }
}

/// The 1-based line and column (in characters) of byte `offset` of `bytes`.
fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count()
        + 1;
    (line, column)
}

/// The first characters of a raw record, for recognising it.
fn excerpt(raw: &[u8]) -> String {
    let head = &raw[..raw.len().min(EXCERPT_CHARS * 4)];
    let text = String::from_utf8_lossy(head);
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() || head.len() < raw.len() {
        out.push('…');
    }
    out
}

/// The `trajectory_id` of a record that is not valid JSON, if its text shows one.
fn sniff_trajectory_id(raw: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"trajectory_id\"";
    let at = raw.windows(KEY.len()).position(|w| w == KEY)?;
    let mut rest = &raw[at + KEY.len()..];
    let skip_ws = |r: &mut &[u8]| {
        while r.first().is_some_and(|&b| is_json_ws(b)) {
            *r = &r[1..];
        }
    };
    skip_ws(&mut rest);
    rest = rest.strip_prefix(b":")?;
    skip_ws(&mut rest);
    if rest.first() != Some(&b'"') {
        return None;
    }
    let mut escaped = false;
    let end = rest.iter().enumerate().skip(1).find_map(|(i, &b)| {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            return Some(i);
        }
        None
    })?;
    match crate::json::parse_bytes(&rest[..=end], &Limits::default()) {
        Ok(Json::String(id)) if !id.is_empty() => Some(id),
        _ => None,
    }
}

/// A deterministic id for a record without one: `traj-` and 12 hex digits of an FNV-1a hash
/// of the file name, the record's index and its raw bytes.
fn generated_id(file: &str, index: usize, raw: &[u8]) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let index = (index as u64).to_le_bytes();
    let parts: [&[u8]; 4] = [file.as_bytes(), &[0], &index, raw];
    let mut hash = OFFSET;
    for byte in parts.into_iter().flatten() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    format!("traj-{:012x}", (hash ^ (hash >> 48)) & 0xffff_ffff_ffff)
}

/// Why a record does not fit the schema.
struct Invalid {
    field: Option<String>,
    reason: String,
}

impl Invalid {
    fn at(field: String, reason: impl Into<String>) -> Self {
        Invalid {
            field: Some(field),
            reason: reason.into(),
        }
    }
}

const MISSING: &str = "required field is missing";

fn path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn expected(what: &str, found: &Json) -> String {
    format!("expected {what}, found {}", found.kind())
}

/// A string member: `Ok(None)` when absent and not `required`.
fn string_field(
    o: &JsonObject,
    prefix: &str,
    key: &str,
    required: bool,
) -> Result<Option<String>, Invalid> {
    match o.get(key) {
        None if required => Err(Invalid::at(path(prefix, key), MISSING)),
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Invalid::at(path(prefix, key), expected("a string", other))),
    }
}

fn required_string(o: &JsonObject, prefix: &str, key: &str) -> Result<String, Invalid> {
    Ok(string_field(o, prefix, key, true)?.unwrap_or_default())
}

/// An optional object member, empty when absent.
fn object_field(o: &JsonObject, prefix: &str, key: &str) -> Result<JsonObject, Invalid> {
    match o.get(key) {
        None => Ok(JsonObject::new()),
        Some(Json::Object(v)) => Ok(v.clone()),
        Some(other) => Err(Invalid::at(path(prefix, key), expected("an object", other))),
    }
}

/// Checks a record against the native schema, field by field in the schema's order.
fn trajectory(value: &Json) -> Result<Trajectory, Invalid> {
    let Json::Object(o) = value else {
        return Err(Invalid {
            field: None,
            reason: expected("an object", value),
        });
    };
    let trajectory_id = string_field(o, "", "trajectory_id", false)?.unwrap_or_default();
    let original_prompt = required_string(o, "", "original_prompt")?;
    let steps = match o.get("steps") {
        None => return Err(Invalid::at("steps".into(), MISSING)),
        Some(Json::Array(items)) if items.is_empty() => {
            return Err(Invalid::at(
                "steps".into(),
                "expected at least one step, found an empty array",
            ))
        }
        Some(Json::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| step(item, &format!("steps[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(Invalid::at("steps".into(), expected("an array", other))),
    };
    let final_answer = string_field(o, "", "final_answer", false)?.unwrap_or_default();
    let failure_reason = required_string(o, "", "failure_reason")?;
    let metadata = object_field(o, "", "metadata")?;
    Ok(Trajectory {
        trajectory_id,
        original_prompt,
        steps,
        final_answer,
        failure_reason,
        metadata,
        origin: None,
    })
}

fn step(value: &Json, prefix: &str) -> Result<Step, Invalid> {
    let Json::Object(o) = value else {
        return Err(Invalid::at(prefix.to_owned(), expected("an object", value)));
    };
    Ok(Step {
        thought: required_string(o, prefix, "thought")?,
        action_name: required_string(o, prefix, "action_name")?,
        action_input: object_field(o, prefix, "action_input")?,
        observation: required_string(o, prefix, "observation")?,
        call: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(bytes: &[u8]) -> (Vec<ReadEvent>, FileSummary) {
        let mut reader = Reader::new("t");
        let mut out = Vec::new();
        reader.push(bytes, &mut out);
        let summary = reader.finish(&mut out);
        (out, summary)
    }

    #[test]
    fn generated_ids_are_stable_and_distinct() {
        let id = generated_id("f.jsonl", 3, b"{}");
        assert_eq!(id, generated_id("f.jsonl", 3, b"{}"));
        assert_eq!(id.len(), "traj-".len() + 12);
        assert!(id["traj-".len()..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(id, generated_id("g.jsonl", 3, b"{}"));
        assert_ne!(id, generated_id("f.jsonl", 4, b"{}"));
        assert_ne!(id, generated_id("f.jsonl", 3, b"{ }"));
    }

    #[test]
    fn sniffing_an_id_from_broken_text() {
        assert_eq!(
            sniff_trajectory_id(br#"{"trajectory_id" : "a\"b", "x": [1,"#).as_deref(),
            Some("a\"b")
        );
        assert_eq!(sniff_trajectory_id(br#"{"trajectory_id": 7}"#), None);
        assert_eq!(
            sniff_trajectory_id(br#"{"trajectory_id": "unterminated"#),
            None
        );
        assert_eq!(
            sniff_trajectory_id(b"\xff{\"trajectory_id\": \"z\"").as_deref(),
            Some("z")
        );
        assert_eq!(sniff_trajectory_id(b"nothing"), None);
    }

    #[test]
    fn excerpts_are_short_and_lossy() {
        assert_eq!(excerpt(b"abc"), "abc");
        let long = "é".repeat(300);
        let e = excerpt(long.as_bytes());
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
        assert_eq!(excerpt(b"a\xffb"), "a\u{FFFD}b");
    }

    #[test]
    fn detection_of_the_format() {
        assert_eq!(events(b"{}\n").1.format, InputFormat::Jsonl);
        assert_eq!(events(b"{}").1.format, InputFormat::Jsonl);
        assert_eq!(events(b"\n\n  [").1.format, InputFormat::JsonArray);
        assert_eq!(events(b"{\n}").1.format, InputFormat::JsonValues);
        assert_eq!(events(b"{\n").1.format, InputFormat::JsonValues);
        assert_eq!(events(b"{\"a\n}").1.format, InputFormat::Jsonl);
        assert_eq!(
            events(b"{\"a\": [\n{\"b\": 1}\n").1.format,
            InputFormat::Jsonl
        );
        assert_eq!(events(b"  \n\t").1.format, InputFormat::Empty);
    }

    #[test]
    fn values_mode_cuts_scalars_and_strays() {
        let (out, summary) = events(b"{\n}\n12 \"s\" ] null,{}");
        assert_eq!(summary.format, InputFormat::JsonValues);
        let reasons: Vec<String> = out
            .iter()
            .map(|e| match e {
                ReadEvent::Rejected(r) => r.reason.clone(),
                ReadEvent::Record(_) => "record".into(),
            })
            .collect();
        assert_eq!(
            reasons,
            vec![
                "required field is missing".to_owned(),
                "expected an object, found a number".into(),
                "expected an object, found a string".into(),
                "expected a value, found ']' at line 3 column 8".into(),
                "expected an object, found null".into(),
                "required field is missing".into(),
            ]
        );
        assert!(summary.notes.iter().any(|n| n.contains("commas")));
    }

    #[test]
    fn byte_order_mark_split_across_chunks() {
        let mut reader = Reader::new("t");
        let mut out = Vec::new();
        for b in b"\xEF\xBB\xBF  \n" {
            reader.push(&[*b], &mut out);
        }
        let summary = reader.finish(&mut out);
        assert_eq!(summary.notes[0], "a UTF-8 byte-order mark was skipped");
        assert_eq!(summary.blank_lines, 1);
        // A partial mark is data.
        let (out, summary) = events(b"\xEF\xBB");
        assert_eq!(summary.format, InputFormat::Jsonl);
        assert_eq!(out.len(), 1);
    }
}
