//! Reading trajectory files: leniently, and a chunk at a time.
//!
//! A bad record never sinks the file: every good record is kept, every rejected one is reported
//! with its file, line, position, the field at fault and the reason. Input arrives in chunks of
//! any size (a browser file stream); the reader keeps only the record it is assembling.
//!
//! Layouts, decided from the first non-whitespace byte (after an optional UTF-8 byte-order
//! mark):
//! - `[`: a JSON array of records. An incremental splitter cuts elements at top-level commas, so
//!   a broken element costs only itself.
//! - `{`: JSONL, one record per line. When the first record is not complete on its line but
//!   completes as one value over several lines (a pretty-printed object, or several
//!   concatenated ones), the file is read as whitespace-separated JSON values instead.
//! - anything else: the reader looks at the first lines. When one starts a ReAct block
//!   (`Thought:`, `Action:`, `Observation:`, ... see [`crate::import::react`]) before any line
//!   starting with `{` or `[` (and within the first 1 MiB), the file is a ReAct
//!   text log, cut into runs; otherwise it is read as JSONL (whose first lines are then
//!   rejected).
//!
//! Each JSON record is then read in the file's source format ([`SourceFormat`]): the one the
//! caller forced ([`Reader::with_format`]), or the one the first record showing one has (see
//! [`crate::import::detect`]); records before it, and files where none shows one, are read in
//! the native schema (METHOD.md, "Input record"). A forced format that does not fit a record
//! rejects it with a reason naming the format. A JSON array whose first element is a lone chat
//! message (`{"role": ...}`) is one conversation: one OpenAI-messages run. Rejections name the
//! field path (`steps[2].observation`, `messages[3].tool_calls[0].function.name`).

pub use crate::import::SourceFormat;
use crate::import::{self, react, Invalid};
use crate::json::{parse_reusing, Json, Limits, ParseBuffers, ParseError};
use crate::model::Trajectory;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
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
    /// Plain text: a ReAct log, one run after another.
    Text,
    /// Nothing but whitespace (or nothing at all).
    Empty,
    /// Not text: a binary or compressed file, refused as a whole.
    Binary,
}

/// What the reader made of a whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSummary {
    pub file: String,
    pub format: InputFormat,
    /// The format the records were read in: forced by the caller, or detected (native when
    /// nothing showed another).
    pub source_format: SourceFormat,
    /// Whether `source_format` was forced rather than detected.
    pub source_format_forced: bool,
    /// Trajectories read, successes included.
    pub records: usize,
    /// Those of `records` the source marks as successful runs (kept apart, not relabeled).
    pub successes: usize,
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

/// Reads a whole in-memory file, detecting its format.
pub fn read_all(file_name: &str, bytes: &[u8]) -> ReadReport {
    read_all_as(file_name, bytes, None)
}

/// Reads a whole in-memory file in `format` (`None`: detect it).
pub fn read_all_as(file_name: &str, bytes: &[u8], format: Option<SourceFormat>) -> ReadReport {
    let mut reader = Reader::with_format(file_name, format);
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
    gate: Gate,
}

/// How many first bytes decide whether a file is text (fewer when the file is shorter).
const GATE_BYTES: usize = 1024;

/// Whether the file has shown to be text.
#[derive(Debug, PartialEq, Eq)]
enum Gate {
    /// The first bytes, held until there are [`GATE_BYTES`] of them or the input ends.
    Holding(Vec<u8>),
    Open,
    /// Binary: every further byte is only counted.
    Refused,
}

impl Reader {
    /// A reader for the file called `file_name` (used in reports and generated ids), with the
    /// default [`Limits`].
    pub fn new(file_name: impl Into<String>) -> Self {
        Self::with_limits(file_name, Limits::default())
    }

    /// A reader with explicit parsing limits.
    pub fn with_limits(file_name: impl Into<String>, limits: Limits) -> Self {
        Self::with_options(file_name, limits, None)
    }

    /// A reader that reads every record in `format`, or detects the format (`None`).
    pub fn with_format(file_name: impl Into<String>, format: Option<SourceFormat>) -> Self {
        Self::with_options(file_name, Limits::default(), format)
    }

    /// A reader with explicit parsing limits and format (`None`: detect it).
    pub fn with_options(
        file_name: impl Into<String>,
        limits: Limits,
        format: Option<SourceFormat>,
    ) -> Self {
        Reader {
            sink: Sink::new(file_name.into(), limits, format, format.is_some()),
            state: State::Start(Start {
                text: match format {
                    None => Text::Sniff,
                    Some(SourceFormat::React) => Text::React,
                    Some(_) => Text::Json,
                },
                ..Start::default()
            }),
            bom: Some(Vec::new()),
            bytes: 0,
            gate: Gate::Holding(Vec::new()),
        }
    }

    /// Feeds the next chunk; completed records/rejections are appended to `out`.
    ///
    /// The first bytes are held until they show whether the file is text at all: a binary or
    /// compressed file is refused as a whole with one rejection that says what it is, instead
    /// of a rejection per "line" of noise.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<ReadEvent>) {
        match &mut self.gate {
            Gate::Open => self.push_text(chunk, out),
            Gate::Refused => self.bytes += chunk.len() as u64,
            Gate::Holding(head) => {
                head.extend_from_slice(chunk);
                if head.len() >= GATE_BYTES {
                    self.open_gate(out);
                }
            }
        }
    }

    /// Decides on the held first bytes: refuse the file or read them.
    fn open_gate(&mut self, out: &mut Vec<ReadEvent>) {
        if !matches!(self.gate, Gate::Holding(_)) {
            return;
        }
        let Gate::Holding(head) = std::mem::replace(&mut self.gate, Gate::Open) else {
            return;
        };
        let probe = &head[..head.len().min(GATE_BYTES)];
        match binary_kind(probe) {
            Some(what) => {
                self.gate = Gate::Refused;
                self.bytes += head.len() as u64;
                let reason = format!("this is {what}: nothing was read from it");
                self.sink.note(&reason);
                let r = Rejected {
                    file: self.sink.file.clone(),
                    line: 1,
                    index: None,
                    field: None,
                    reason,
                    trajectory_id: None,
                    excerpt: excerpt(probe),
                };
                self.sink.reject(r, out);
            }
            None => self.push_text(&head, out),
        }
    }

    fn push_text(&mut self, chunk: &[u8], out: &mut Vec<ReadEvent>) {
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

    /// From now on, JSONL records whose source format is known (forced, or detected from an
    /// earlier record) are not read here: their lines are handed over raw, in batches of
    /// `batch` lines, for [`Reader::take_lines`] to give out and [`RawLines::read`] to read,
    /// on any thread, exactly as this reader would have read them. Everything else (format
    /// detection, the first records, other layouts, blank lines) stays here.
    pub fn hand_over_lines(&mut self, batch: usize) {
        self.sink.hand_over = Some(HandOver {
            batch: batch.max(1),
            full: VecDeque::new(),
            open: None,
        });
    }

    /// The next batch of lines handed over, in file order (the last one may be short).
    /// Take them all after each [`Reader::push`]: the events that push gave come before them,
    /// and the records of later pushes after. [`Reader::finish`] reads any still held itself.
    pub fn take_lines(&mut self) -> Option<RawLines> {
        let hand_over = self.sink.hand_over.as_mut()?;
        hand_over.full.pop_front().or_else(|| hand_over.open.take())
    }

    /// End of input: flushes the last record and returns the file's summary.
    pub fn finish(mut self, out: &mut Vec<ReadEvent>) -> FileSummary {
        if let Some(mut hand_over) = self.sink.hand_over.take() {
            for lines in hand_over.full.drain(..).chain(hand_over.open.take()) {
                let tally = lines.read(out);
                self.sink.records += tally.records;
                self.sink.successes += tally.successes;
                self.sink.rejected += tally.rejected;
            }
        }
        self.open_gate(out);
        if self.gate == Gate::Refused {
            return FileSummary {
                file: self.sink.file,
                format: InputFormat::Binary,
                source_format: self.sink.format.unwrap_or(SourceFormat::Native),
                source_format_forced: self.sink.forced,
                records: 0,
                successes: 0,
                rejected: self.sink.rejected,
                blank_lines: 0,
                bytes: self.bytes,
                notes: self.sink.notes,
            };
        }
        if let Some(head) = self.bom.take() {
            // Fewer than three bytes, all a prefix of the byte-order mark: ordinary data.
            self.feed(&head, out);
        }
        let mut state = std::mem::replace(&mut self.state, State::Start(Start::default()));
        if let State::Sniff(sniff) = state {
            let react = sniff.ends_in_react();
            self.leave_sniff(sniff, react, out);
            state = std::mem::replace(&mut self.state, State::Start(Start::default()));
        }
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
            State::Split(split) => {
                let format = split.finish(&mut self.sink, out);
                self.sink.flush_messages(out);
                format
            }
            State::React(mut runs) => {
                let mut raw = Vec::new();
                runs.finish(&mut raw);
                self.sink.runs(raw, out);
                InputFormat::Text
            }
            // Left above.
            State::Sniff(_) => InputFormat::Empty,
        };
        FileSummary {
            file: self.sink.file,
            format,
            source_format: self.sink.format.unwrap_or(SourceFormat::Native),
            source_format_forced: self.sink.forced,
            records: self.sink.records,
            successes: self.sink.successes,
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
                State::Sniff(sniff) => match sniff.feed(input) {
                    None => return,
                    Some((used, react)) => {
                        let State::Sniff(sniff) =
                            std::mem::replace(&mut self.state, State::Start(Start::default()))
                        else {
                            return;
                        };
                        self.leave_sniff(sniff, react, out);
                        input = &input[used..];
                    }
                },
                State::React(runs) => {
                    let mut raw = Vec::new();
                    runs.feed(input, &mut raw);
                    self.sink.runs(raw, out);
                    return;
                }
            }
        }
    }

    /// Leaves sniffing: the held lines are a ReAct log, or JSON read from the start again.
    fn leave_sniff(&mut self, sniff: Sniff, react: bool, out: &mut Vec<ReadEvent>) {
        if react {
            self.sink.format = Some(SourceFormat::React);
            let mut runs = react::Splitter::new(sniff.start_line);
            let mut raw = Vec::new();
            runs.feed(&sniff.held, &mut raw);
            self.sink.runs(raw, out);
            self.state = State::React(runs);
        } else {
            self.state = State::Start(Start {
                blank_lines: sniff.blank_lines,
                pending: Vec::new(),
                text: Text::Json,
            });
            self.feed(&sniff.held, out);
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
    /// The first line is not JSON: looking for ReAct markers.
    Sniff(Sniff),
    /// A ReAct text log.
    React(react::Splitter),
}

/// What a first byte other than `[` or `{` (or any first byte, for a forced ReAct log)
/// starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Text {
    /// JSON (JSONL or values), whatever it looks like: a forced JSON format.
    #[default]
    Json,
    /// Detect ReAct logs.
    Sniff,
    /// A forced ReAct log.
    React,
}

/// Lines held until they show whether the file is a ReAct log (a step marker line) or JSON (a
/// line starting with `{` or `[`, or nothing decisive within the limits).
#[derive(Debug)]
struct Sniff {
    held: Vec<u8>,
    start_line: usize,
    /// Blank lines before the held ones (counted if the file turns out to be JSONL).
    blank_lines: usize,
    lines: usize,
    /// Where the current line starts in `held`.
    line_start: usize,
}

/// Bytes looked at before deciding a text is not a ReAct log: logs often open with long
/// banners, prompts or reflections before their first step marker.
const SNIFF_BYTES: usize = 1024 * 1024;

impl Sniff {
    /// Returns how many bytes of `input` were used, and whether the file is a ReAct log, once
    /// it is decided.
    fn feed(&mut self, input: &[u8]) -> Option<(usize, bool)> {
        for (i, &b) in input.iter().enumerate() {
            self.held.push(b);
            if b != b'\n' {
                continue;
            }
            let line = &self.held[self.line_start..self.held.len() - 1];
            if react::is_step_line(line) {
                return Some((i + 1, true));
            }
            let first = line.iter().find(|b| !b.is_ascii_whitespace());
            // A Python dict printed by a log (`{'steps': 2, ...}`) is no JSON.
            if matches!(first, Some(b'{' | b'[')) && !react::is_python_dict_line(line) {
                return Some((i + 1, false));
            }
            self.lines += 1;
            self.line_start = self.held.len();
            if self.held.len() >= SNIFF_BYTES {
                return Some((i + 1, false));
            }
        }
        None
    }

    /// At the end of input: whether the unfinished last line makes the text a ReAct log.
    fn ends_in_react(&self) -> bool {
        react::is_step_line(&self.held[self.line_start..])
    }
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
    text: Text,
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
                b'[' if self.text != Text::React => {
                    sink.in_array = true;
                    let col = self.pending.len() + 1;
                    let split = Splitter::new(true, self.line(), col);
                    return Some((i + 1, State::Split(split)));
                }
                _ if b.is_ascii_whitespace() || b == 0x0b => self.pending.push(b),
                _ => {
                    let mut held = std::mem::take(&mut self.pending);
                    held.push(b);
                    match self.text {
                        Text::React => {
                            let mut runs = react::Splitter::new(self.line());
                            // No line is complete yet: no run can end.
                            runs.feed(&held, &mut Vec::new());
                            return Some((i + 1, State::React(runs)));
                        }
                        Text::Sniff if b != b'{' => {
                            let sniff = Sniff {
                                held,
                                start_line: self.line(),
                                blank_lines: self.blank_lines,
                                lines: 0,
                                line_start: 0,
                            };
                            return Some((i + 1, State::Sniff(sniff)));
                        }
                        Text::Sniff | Text::Json => {}
                    }
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
        while let Some(nl) = memchr::memchr(b'\n', input) {
            if self.buf.is_empty() {
                // A whole line in this chunk is read where it lies.
                self.line_ends(&input[..nl], sink, out);
            } else {
                self.buf.extend_from_slice(&input[..nl]);
                self.end_line(sink, out);
            }
            input = &input[nl + 1..];
        }
        self.buf.extend_from_slice(input);
    }

    /// Ends the line held in `buf`.
    fn end_line(&mut self, sink: &mut Sink, out: &mut Vec<ReadEvent>) {
        let mut buf = std::mem::take(&mut self.buf);
        self.line_ends(&buf, sink, out);
        buf.clear();
        self.buf = buf;
    }

    fn line_ends(&mut self, line: &[u8], sink: &mut Sink, out: &mut Vec<ReadEvent>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if is_blank(line) {
            sink.blank_lines += 1;
        } else {
            if !sink.hand_over(line, self.line, self.index) {
                sink.record(line, self.line, 1, self.index, out);
            }
            self.index += 1;
        }
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
    /// The file is a JSON array.
    in_array: bool,
    /// The messages of a file that is one array of chat messages, while it is read.
    messages: Option<MessageList>,
    /// The source format: forced, or detected from the first record that shows one.
    format: Option<SourceFormat>,
    forced: bool,
    records: usize,
    successes: usize,
    rejected: usize,
    blank_lines: usize,
    notes: Vec<String>,
    /// JSONL lines handed over raw (see [`Reader::hand_over_lines`]).
    hand_over: Option<HandOver>,
    /// The parser's room, reused from record to record.
    buffers: ParseBuffers,
}

/// The lines handed over and not yet taken.
#[derive(Debug)]
struct HandOver {
    batch: usize,
    full: VecDeque<RawLines>,
    open: Option<RawLines>,
}

/// JSONL lines a [`Reader`] handed over raw (see [`Reader::hand_over_lines`]), with what it
/// takes to read them as that reader would have.
#[derive(Debug)]
pub struct RawLines {
    /// A copy of the reader's sink, with nothing counted.
    sink: Box<Sink>,
    bytes: Vec<u8>,
    /// Per line: where it ends in `bytes`, its line number and its record index.
    lines: Vec<(usize, usize, usize)>,
}

/// What reading [`RawLines`] counted, to add to the file's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub records: usize,
    pub successes: usize,
    pub rejected: usize,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.records += other.records;
        self.successes += other.successes;
        self.rejected += other.rejected;
    }
}

impl FileSummary {
    /// Counts in what reading handed-over lines found.
    pub fn add(&mut self, tally: Tally) {
        self.records += tally.records;
        self.successes += tally.successes;
        self.rejected += tally.rejected;
    }
}

impl RawLines {
    /// The number of lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Reads the lines in order, appending their records and rejections to `out` as the
    /// reader that handed them over would have; returns what it counted.
    pub fn read(mut self, out: &mut Vec<ReadEvent>) -> Tally {
        let mut start = 0;
        for &(end, line, index) in &self.lines {
            self.sink
                .record(&self.bytes[start..end], line, 1, index, out);
            start = end;
        }
        Tally {
            records: self.sink.records,
            successes: self.sink.successes,
            rejected: self.sink.rejected,
        }
    }
}

/// A file that is one list of chat messages: one OpenAI-messages run.
#[derive(Debug)]
struct MessageList {
    line: usize,
    items: Vec<Json>,
    /// The first element that is not JSON: its index and why.
    broken: Option<(usize, String)>,
}

impl Sink {
    /// Reads the run of a file that is one list of chat messages, at the end of the array.
    fn flush_messages(&mut self, out: &mut Vec<ReadEvent>) {
        let Some(list) = self.messages.take() else {
            return;
        };
        self.format.get_or_insert(SourceFormat::OpenAiMessages);
        let value = Json::Array(list.items);
        let raw = crate::json::python_dumps(&value);
        let result = match list.broken {
            Some((i, reason)) => Err(Invalid::at(format!("messages[{i}]"), reason)),
            None => import::import(SourceFormat::OpenAiMessages, &value),
        };
        match result {
            Ok(trajectory) => self.accept(trajectory, raw.as_bytes(), list.line, 0, out),
            Err(Invalid { field, reason }) => {
                let r = Rejected {
                    file: self.file.clone(),
                    line: list.line,
                    index: Some(0),
                    field,
                    reason,
                    trajectory_id: None,
                    excerpt: excerpt(raw.as_bytes()),
                };
                self.reject(r, out);
            }
        }
    }

    /// Hands a JSONL record's line over raw, when lines are handed over and the format is
    /// known; `false` (nothing done) otherwise.
    fn hand_over(&mut self, raw: &[u8], line: usize, index: usize) -> bool {
        if self.format.is_none() {
            return false;
        }
        let Some(mut hand_over) = self.hand_over.take() else {
            return false;
        };
        let open = hand_over.open.get_or_insert_with(|| RawLines {
            sink: Box::new(self.reading_copy()),
            bytes: Vec::new(),
            lines: Vec::with_capacity(hand_over.batch),
        });
        open.bytes.extend_from_slice(raw);
        open.lines.push((open.bytes.len(), line, index));
        if open.lines.len() >= hand_over.batch {
            hand_over.full.extend(hand_over.open.take());
        }
        self.hand_over = Some(hand_over);
        true
    }

    /// A sink for `file` that has counted nothing yet.
    fn new(file: String, limits: Limits, format: Option<SourceFormat>, forced: bool) -> Sink {
        Sink {
            file,
            limits,
            in_array: false,
            messages: None,
            format,
            forced,
            records: 0,
            successes: 0,
            rejected: 0,
            blank_lines: 0,
            notes: Vec::new(),
            hand_over: None,
            buffers: ParseBuffers::default(),
        }
    }

    /// A sink that reads records as this one does, with nothing counted.
    fn reading_copy(&self) -> Sink {
        let file = self.file.clone();
        Sink {
            in_array: self.in_array,
            ..Sink::new(file, self.limits.clone(), self.format, self.forced)
        }
    }

    fn note(&mut self, note: &str) {
        self.notes.push(note.to_owned());
    }

    fn reject(&mut self, rejected: Rejected, out: &mut Vec<ReadEvent>) {
        self.rejected += 1;
        out.push(ReadEvent::Rejected(rejected));
    }

    /// Parses one raw record that starts at `line`, `col` of the file; `Err` is the reason.
    fn parse_raw(&mut self, raw: &[u8], line: usize, col: usize) -> Result<Json, String> {
        // The position in the file of a position in the record.
        let at = |(l, c): (usize, usize)| {
            let column = if l == 1 { col + c - 1 } else { c };
            format!("line {} column {}", line + l - 1, column)
        };
        let text = std::str::from_utf8(raw)
            .map_err(|e| format!("invalid UTF-8 at {}", at(line_column(raw, e.valid_up_to()))))?;
        parse_reusing(text, &self.limits, &mut self.buffers).map_err(
            |ParseError {
                 line: l,
                 column: c,
                 message,
             }| {
                let mut reason = format!("{message} at {}", at((l, c)));
                if let Some(format) = self.format.filter(|_| self.forced) {
                    reason.push_str(&format!(
                        " (the file is read as {}, whose records are JSON)",
                        format.label()
                    ));
                }
                reason
            },
        )
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
        let parsed = self.parse_raw(raw, line, col);
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
        if let Some(list) = &mut self.messages {
            match parsed {
                Ok(value) => list.items.push(value),
                Err(reason) => {
                    list.broken.get_or_insert((index, reason));
                }
            }
            return;
        }
        let value = match parsed {
            Ok(value) => value,
            Err(reason) => {
                let r = rejected(None, reason, sniff_trajectory_id(raw));
                self.reject(r, out);
                return;
            }
        };
        let lone_message = matches!(&value, Json::Object(o) if o.get("role").is_some())
            && import::detect(&value).is_none();
        if lone_message
            && self.in_array
            && index == 0
            && matches!(self.format, None | Some(SourceFormat::OpenAiMessages))
        {
            // The whole array is one conversation.
            self.messages = Some(MessageList {
                line,
                items: vec![value],
                broken: None,
            });
            return;
        }
        let format = match self.format {
            Some(format) => format,
            None => match import::detect(&value) {
                Some(format) => {
                    self.format = Some(format);
                    format
                }
                None => SourceFormat::Native,
            },
        };
        match import::import_owned(format, value) {
            Ok(trajectory) => self.accept(trajectory, raw, line, index, out),
            Err((Invalid { field, reason }, value)) => {
                let reason = self.explain(format, &value, reason);
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

    /// Counts a trajectory read from `raw` and hands it on, with a generated id when the data
    /// has none.
    fn accept(
        &mut self,
        mut trajectory: Trajectory,
        raw: &[u8],
        line: usize,
        index: usize,
        out: &mut Vec<ReadEvent>,
    ) {
        if trajectory.trajectory_id.is_empty() {
            trajectory.trajectory_id = generated_id(&self.file, index, raw);
        }
        self.records += 1;
        self.successes += usize::from(trajectory.succeeded());
        out.push(ReadEvent::Record(Record {
            trajectory,
            source: SourcePos {
                file: self.file.clone(),
                line,
                index,
            },
        }));
    }

    /// A rejection's reason, naming the format when the record does not look like it: always
    /// for formats other than the native one and for a forced native format (a detected native
    /// file keeps the native schema's reasons).
    fn explain(&self, format: SourceFormat, value: &Json, reason: String) -> String {
        let seen = import::detect(value);
        if seen.is_none() && matches!(value, Json::Object(o) if o.get("role").is_some()) {
            return format!(
                "{reason} (this is a single chat message: give each run as {{\"messages\": \
                 [...]}}, one per line, or a whole file as one list of messages)"
            );
        }
        if seen.is_none() {
            if let Some(key) = wrapped_list(value) {
                return format!(
                    "{reason} (this object is not a run: it holds a list under \"{key}\"; give \
                     the runs themselves, as a JSON array or one per line)"
                );
            }
        }
        if format == SourceFormat::Native && !self.forced {
            return reason;
        }
        match seen {
            Some(seen) if seen == format => reason,
            Some(seen) => format!(
                "not in the {} format (it looks like {}): {reason}",
                format.label(),
                seen.label()
            ),
            None => format!("not in the {} format: {reason}", format.label()),
        }
    }

    /// Reads ReAct runs.
    fn runs(&mut self, runs: Vec<react::RawRun>, out: &mut Vec<ReadEvent>) {
        for run in runs {
            let rejected = |field: Option<String>, reason: String| Rejected {
                file: self.file.clone(),
                line: run.line,
                index: Some(run.index),
                field,
                reason,
                trajectory_id: None,
                excerpt: excerpt(&run.bytes),
            };
            let text = match std::str::from_utf8(&run.bytes) {
                Ok(text) => text,
                Err(e) => {
                    let (l, c) = line_column(&run.bytes, e.valid_up_to());
                    let reason = format!("invalid UTF-8 at line {} column {c}", run.line + l - 1);
                    let r = rejected(None, reason);
                    self.reject(r, out);
                    continue;
                }
            };
            match react::parse_run(text, run.section) {
                Ok(trajectory) => self.accept(trajectory, &run.bytes, run.line, run.index, out),
                Err(Invalid { field, mut reason }) => {
                    if self.forced && !text.lines().any(|l| react::is_step_line(l.as_bytes())) {
                        reason = format!(
                            "not in the {} format: {reason}",
                            SourceFormat::React.label()
                        );
                    }
                    let r = rejected(field, reason);
                    self.reject(r, out);
                }
            }
        }
    }
}

/// The key of an object's field that holds a list of objects (`{"data": [{...}, ...]}`), the
/// usual way an export wraps its records.
fn wrapped_list(value: &Json) -> Option<&str> {
    let Json::Object(o) = value else { return None };
    o.iter().find_map(|(k, v)| match v {
        Json::Array(items) if matches!(items.first(), Some(Json::Object(_))) => Some(k),
        _ => None,
    })
}

/// Why the first bytes of a file show it is no text at all, or `None` when they may be text.
///
/// Known binary and compressed formats are named (so the message can say what to do), and any
/// other NUL byte marks a binary file: no JSON or log text holds one.
pub fn binary_kind(head: &[u8]) -> Option<&'static str> {
    const MAGIC: [(&[u8], &str); 10] = [
        (
            b"\x1f\x8b",
            "a gzip-compressed file: decompress it first (gunzip)",
        ),
        (
            b"PK\x03\x04",
            "a zip archive: extract the trajectory files from it first",
        ),
        (
            b"BZh",
            "a bzip2-compressed file: decompress it first (bunzip2)",
        ),
        (
            b"\xfd7zXZ\x00",
            "an xz-compressed file: decompress it first (unxz)",
        ),
        (
            b"\x28\xb5\x2f\xfd",
            "a zstd-compressed file: decompress it first (unzstd)",
        ),
        (
            b"7z\xbc\xaf\x27\x1c",
            "a 7z archive: extract the trajectory files from it first",
        ),
        (b"PAR1", "a Parquet file: convert it to JSONL first"),
        (b"%PDF", "a PDF document, not a trajectory file"),
        (b"\x89PNG", "a PNG image, not a trajectory file"),
        (
            b"SQLite format 3\x00",
            "an SQLite database: export its rows as JSONL first",
        ),
    ];
    if let Some((_, what)) = MAGIC.iter().find(|(magic, _)| head.starts_with(magic)) {
        return Some(what);
    }
    if head.starts_with(b"\xff\xfe") || head.starts_with(b"\xfe\xff") {
        return Some("UTF-16 text: save it as UTF-8 and load it again");
    }
    head.contains(&0)
        .then_some("a binary file (it holds NUL bytes), not JSON, JSONL or a text log")
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

    /// Reads `bytes` in chunks of `chunk` bytes, handing lines over in batches of `batch` when
    /// `batch` is not zero and reading each batch as soon as it is taken.
    fn chunked_events(
        bytes: &[u8],
        chunk: usize,
        format: Option<SourceFormat>,
        batch: usize,
    ) -> (Vec<ReadEvent>, FileSummary) {
        let mut reader = Reader::with_format("t", format);
        if batch > 0 {
            reader.hand_over_lines(batch);
        }
        let (mut out, mut tally) = (Vec::new(), Tally::default());
        for piece in bytes.chunks(chunk) {
            reader.push(piece, &mut out);
            while let Some(lines) = reader.take_lines() {
                assert!(lines.len() <= batch && !lines.is_empty());
                tally.add(lines.read(&mut out));
            }
        }
        let mut summary = reader.finish(&mut out);
        summary.add(tally);
        (out, summary)
    }

    #[test]
    fn lines_handed_over_read_as_the_reader_reads_them() {
        // Long records, as the reader holds its first 1,024 bytes before it reads any.
        let long = "o".repeat(600);
        let native = format!(
            r#"{{"trajectory_id": "a", "original_prompt": "p", "steps": [{{"thought": "t", "action_name": "n", "observation": "{long}"}}], "failure_reason": "f"}}"#
        );
        let success = format!(
            r#"{{"messages": [{{"role": "user", "content": "hi"}}, {{"role": "assistant", "content": "{long}"}}], "success": true}}"#
        );
        let files = [
            format!("{native}\n\n{{\"steps\": 3}}\nnot json\n\r\n{native}\r\n{native}"),
            format!("{{\"x\": 1}}\n{native}\n{{\"x\": \"INVALID\"}}\n{native}\n"),
            format!("{success}\n{success}\n{{\"messages\": 4}}\n{success}\n"),
            format!("\n\n{native}\n[1, 2]\n{native}\n{native}\n{native}\n"),
            format!("[{native}, {native}]"),
            format!("Thought: {long}\nAction: y\n{long}\nThought: z\n"),
        ];
        let mut seen = Vec::new();
        for file in &files {
            // A byte that is not UTF-8 in place of the marker.
            let mut file = file.replace("INVALID", "\u{1}").into_bytes();
            for b in file.iter_mut().filter(|b| **b == 1) {
                *b = 0xFF;
            }
            let file = &file;
            for format in [None, Some(SourceFormat::Native)] {
                let mut reader = Reader::with_format("t", format);
                reader.hand_over_lines(1);
                reader.push(file, &mut Vec::new());
                let mut handed_over = 0;
                while let Some(lines) = reader.take_lines() {
                    handed_over += lines.len();
                }
                seen.push(handed_over);
                let expected = chunked_events(file, file.len(), format, 0);
                for chunk in [1, 7, 64, file.len()] {
                    for batch in [1, 2, 64] {
                        let got = chunked_events(file, chunk, format, batch);
                        let text = String::from_utf8_lossy(file);
                        assert_eq!(got, expected, "{text:?} {format:?} {chunk} {batch}");
                    }
                }
            }
        }
        // Lines handed over per file and format (None, then native): not the first record
        // when the format is detected, nor the unfinished last line, nor other layouts.
        assert_eq!(seen, [3, 4, 2, 4, 3, 4, 4, 5, 0, 0, 0, 4]);
    }
}
