//! What the page and its background readers (Web Workers) say to each other, in a compact
//! binary encoding: requests to read a file's head, count a slice or parse it, and replies with
//! trajectories (with their rule-based view), rejections and summaries. The page takes a reply
//! in by decoding bytes, without parsing any JSON text.
//!
//! Integers and lengths are LEB128 varints, floats their 8 bytes little-endian, strings their
//! length and UTF-8 bytes, options a 0/1 byte before the value. Decoding checks every length,
//! tag and string and fails with [`WireError`] instead of panicking.

use crate::json::{Json, JsonObject, Number};
use crate::model::{
    ExtractedOutcome, FailureAnalysis, FailureType, Origin, Step, StepKind, ToolCall, Trajectory,
};
use crate::packed::{Chunk, Packed, Packer};
use crate::pipeline::RuleView;
use crate::reader::{
    FileSummary, InputFormat, ReadEvent, Rejected, Resume, SourceFormat, SourcePos,
};
use crate::slices::{Count, Split};
use crate::stages::detect::rules::TypeHits;
use std::fmt;
use std::sync::Arc;

/// Bytes that are not what [`Writer`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a message from the background reader is damaged: {}",
            self.0
        )
    }
}

type Result<T> = std::result::Result<T, WireError>;

fn bad<T>(what: &str) -> Result<T> {
    Err(WireError(what.to_owned()))
}

/// Writes values one after another.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

/// A writer that goes on after `buf`'s bytes.
impl From<Vec<u8>> for Writer {
    fn from(buf: Vec<u8>) -> Self {
        Writer { buf }
    }
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Bytes as they are (no length before them).
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub fn usize(&mut self, v: usize) {
        self.u64(v as u64);
    }

    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    pub fn str(&mut self, s: &str) {
        self.usize(s.len());
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.usize(b.len());
        self.buf.extend_from_slice(b);
    }

    fn opt<T>(&mut self, v: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                write(self, v);
            }
        }
    }

    pub fn opt_str(&mut self, s: Option<&str>) {
        self.opt(s, |w, s| w.str(s));
    }

    fn strings(&mut self, v: &[String]) {
        self.usize(v.len());
        for s in v {
            self.str(s);
        }
    }

    pub fn json(&mut self, v: &Json) {
        match v {
            Json::Null => self.u8(0),
            Json::Bool(b) => self.u8(1 + u8::from(*b)),
            Json::Number(Number::Int(digits)) => {
                self.u8(3);
                self.str(digits);
            }
            Json::Number(Number::Float(f)) => {
                self.u8(4);
                self.f64(*f);
            }
            Json::String(s) => {
                self.u8(5);
                self.str(s);
            }
            Json::Array(items) => {
                self.u8(6);
                self.usize(items.len());
                for item in items {
                    self.json(item);
                }
            }
            Json::Object(o) => {
                self.u8(7);
                self.object(o);
            }
        }
    }

    pub fn object(&mut self, o: &JsonObject) {
        self.usize(o.len());
        for (k, v) in o.iter() {
            self.str(k);
            self.json(v);
        }
    }

    pub fn trajectory(&mut self, t: &Trajectory) {
        self.str(&t.trajectory_id);
        self.str(&t.original_prompt);
        self.usize(t.steps.len());
        for s in &t.steps {
            self.str(&s.thought);
            self.str(&s.action_name);
            self.object(&s.action_input);
            self.str(&s.observation);
            self.opt(s.call.as_ref(), |w, c| {
                w.str(&c.id);
                w.str(&c.arguments);
                w.u64(u64::from(c.turn));
            });
            self.u8(match s.kind {
                StepKind::Tool => 0,
                StepKind::Respond => 1,
            });
        }
        self.str(&t.final_answer);
        self.str(&t.failure_reason);
        self.object(&t.metadata);
        self.opt(t.origin.as_ref(), |w, o| {
            w.str(&o.format);
            w.opt_str(o.system.as_deref());
            w.usize(o.tools.len());
            for tool in &o.tools {
                w.json(tool);
            }
            w.bool(o.succeeded);
            w.bool(o.verdict_unknown);
            w.str(&o.final_thought);
        });
    }

    fn failure_type(&mut self, t: Option<FailureType>) {
        self.u8(t.map_or(0, |t| {
            1 + FailureType::ALL.iter().position(|x| *x == t).unwrap_or(0) as u8
        }));
    }

    pub fn rules(&mut self, r: &RuleView) {
        self.analysis(&r.analysis);
        self.details(&r.hits, &r.extracted);
        self.opt_str(r.skip_reason.as_deref());
    }

    pub fn analysis(&mut self, a: &FailureAnalysis) {
        self.bool(a.is_failure);
        self.failure_type(a.failure_type);
        self.f64(a.severity);
        self.f64(a.weight);
        self.bool(a.recoverable);
        self.str(&a.explanation);
    }

    /// The parts of a rule view only a detailed view needs: the keywords that hit and the
    /// extracted outcome.
    pub fn details(&mut self, hits: &[TypeHits], extracted: &ExtractedOutcome) {
        self.usize(hits.len());
        for h in hits {
            self.failure_type(Some(h.failure_type));
            self.strings(&h.keywords);
        }
        self.strings(&extracted.actual_achievements);
        self.strings(&extracted.key_observations);
        self.str(&extracted.limitations);
    }

    /// A rejection, without its file (the page knows which file it reads).
    pub fn rejected(&mut self, r: &Rejected) {
        self.usize(r.line);
        self.opt(r.index, |w, i| w.usize(i));
        self.opt_str(r.field.as_deref());
        self.str(&r.reason);
        self.opt_str(r.trajectory_id.as_deref());
        self.str(&r.excerpt);
    }

    /// Events in order, each record with its rule-based view (`rules` computes it), packed
    /// ([`crate::packed`]): the blocks first, then the events.
    pub fn events(&mut self, events: &[ReadEvent], mut rules: impl FnMut(&Trajectory) -> RuleView) {
        let mut packer = Packer::new();
        for event in events {
            if let ReadEvent::Record(r) = event {
                packer.push(&r.trajectory, rules(&r.trajectory));
            }
        }
        let packed = packer.finish();
        let mut chunks: Vec<&Arc<Chunk>> = Vec::new();
        let mut chunk_of = Vec::with_capacity(packed.len());
        for p in &packed {
            if !chunks.last().is_some_and(|c| Arc::ptr_eq(c, p.chunk())) {
                chunks.push(p.chunk());
            }
            chunk_of.push(chunks.len() - 1);
        }
        self.usize(chunks.len());
        for c in chunks {
            self.bytes(c.packed());
        }
        self.usize(events.len());
        let mut records = packed.iter().zip(chunk_of);
        for event in events {
            match event {
                ReadEvent::Record(r) => {
                    self.u8(0);
                    self.usize(r.source.line);
                    self.usize(r.source.index);
                    let (p, chunk) = records.next().expect("a packed trajectory per record");
                    p.write(self, chunk);
                }
                ReadEvent::Rejected(r) => {
                    self.u8(1);
                    self.rejected(r);
                }
            }
        }
    }

    pub fn format(&mut self, f: Option<SourceFormat>) {
        self.u8(f.map_or(0, |f| {
            1 + SourceFormat::ALL.iter().position(|x| *x == f).unwrap_or(0) as u8
        }));
    }

    /// A file's summary, without its file name.
    pub fn summary(&mut self, s: &FileSummary) {
        self.u8(match s.format {
            InputFormat::Jsonl => 0,
            InputFormat::JsonArray => 1,
            InputFormat::JsonValues => 2,
            InputFormat::Text => 3,
            InputFormat::Empty => 4,
            InputFormat::Binary => 5,
        });
        self.format(Some(s.source_format));
        self.bool(s.source_format_forced);
        self.usize(s.records);
        self.usize(s.successes);
        self.usize(s.rejected);
        self.usize(s.blank_lines);
        self.u64(s.bytes);
        self.strings(&s.notes);
    }

    pub fn resume(&mut self, r: &Resume) {
        self.usize(r.line);
        self.usize(r.index);
        self.format(r.format);
    }
}

/// Reads what [`Writer`] wrote.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Whether everything was read.
    pub fn at_end(&self) -> bool {
        self.buf.is_empty()
    }

    /// Fails unless everything was read.
    pub fn end(&self) -> Result<()> {
        if self.at_end() {
            Ok(())
        } else {
            bad("unexpected bytes at the end")
        }
    }

    pub fn u8(&mut self) -> Result<u8> {
        let (&b, rest) = self
            .buf
            .split_first()
            .ok_or_else(|| WireError("cut short".into()))?;
        self.buf = rest;
        Ok(b)
    }

    pub fn u64(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        bad("an integer too long")
    }

    pub fn usize(&mut self) -> Result<usize> {
        usize::try_from(self.u64()?).map_err(|_| WireError("a length too large".into()))
    }

    /// A count of items that each take at least one byte: never more than the bytes left, so
    /// a damaged count cannot ask for a huge allocation.
    fn len(&mut self) -> Result<usize> {
        let n = self.usize()?;
        if n > self.buf.len() {
            return bad("a length past the end");
        }
        Ok(n)
    }

    pub fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => bad("a boolean that is neither 0 nor 1"),
        }
    }

    pub fn f64(&mut self) -> Result<f64> {
        if self.buf.len() < 8 {
            return bad("cut short");
        }
        let (head, rest) = self.buf.split_at(8);
        self.buf = rest;
        let mut bytes = [0; 8];
        bytes.copy_from_slice(head);
        Ok(f64::from_bits(u64::from_le_bytes(bytes)))
    }

    /// Passes over `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<()> {
        if n > self.buf.len() {
            return bad("a length past the end");
        }
        self.buf = &self.buf[n..];
        Ok(())
    }

    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.len()?;
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub fn str(&mut self) -> Result<String> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| WireError("a string that is not UTF-8".into()))
    }

    fn opt<T>(&mut self, read: impl FnOnce(&mut Self) -> Result<T>) -> Result<Option<T>> {
        match self.u8()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            _ => bad("an option tag that is neither 0 nor 1"),
        }
    }

    pub fn opt_str(&mut self) -> Result<Option<String>> {
        self.opt(Self::str)
    }

    fn strings(&mut self) -> Result<Vec<String>> {
        let n = self.len()?;
        (0..n).map(|_| self.str()).collect()
    }

    pub fn json(&mut self) -> Result<Json> {
        Ok(match self.u8()? {
            0 => Json::Null,
            1 => Json::Bool(false),
            2 => Json::Bool(true),
            3 => Json::Number(Number::Int(self.str()?)),
            4 => Json::Number(Number::Float(self.f64()?)),
            5 => Json::String(self.str()?),
            6 => {
                let n = self.len()?;
                Json::Array((0..n).map(|_| self.json()).collect::<Result<_>>()?)
            }
            7 => Json::Object(self.object()?),
            _ => return bad("an unknown JSON tag"),
        })
    }

    pub fn object(&mut self) -> Result<JsonObject> {
        let n = self.len()?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.str()?;
            let v = self.json()?;
            entries.push((k, v));
        }
        // The writer wrote an object's distinct keys.
        Ok(JsonObject::from_unique_entries(entries))
    }

    pub fn trajectory(&mut self) -> Result<Trajectory> {
        let trajectory_id = self.str()?;
        let original_prompt = self.str()?;
        let n = self.len()?;
        let mut steps = Vec::with_capacity(n);
        for _ in 0..n {
            steps.push(Step {
                thought: self.str()?,
                action_name: self.str()?,
                action_input: self.object()?,
                observation: self.str()?,
                call: self.opt(|r| {
                    Ok(ToolCall {
                        id: r.str()?,
                        arguments: r.str()?,
                        turn: u32::try_from(r.u64()?)
                            .map_err(|_| WireError("a turn too large".into()))?,
                    })
                })?,
                kind: match self.u8()? {
                    0 => StepKind::Tool,
                    1 => StepKind::Respond,
                    _ => return bad("an unknown step kind"),
                },
            });
        }
        Ok(Trajectory {
            trajectory_id,
            original_prompt,
            steps,
            final_answer: self.str()?,
            failure_reason: self.str()?,
            metadata: self.object()?,
            origin: self.opt(|r| {
                Ok(Origin {
                    format: r.str()?,
                    system: r.opt_str()?,
                    tools: {
                        let n = r.len()?;
                        (0..n).map(|_| r.json()).collect::<Result<_>>()?
                    },
                    succeeded: r.bool()?,
                    verdict_unknown: r.bool()?,
                    final_thought: r.str()?,
                })
            })?,
        })
    }

    fn failure_type(&mut self) -> Result<Option<FailureType>> {
        match self.u8()? {
            0 => Ok(None),
            n => FailureType::ALL
                .get(usize::from(n) - 1)
                .copied()
                .map(Some)
                .ok_or_else(|| WireError("an unknown failure type".into())),
        }
    }

    pub fn rules(&mut self) -> Result<RuleView> {
        let analysis = self.analysis()?;
        let (hits, extracted) = self.details()?;
        Ok(RuleView {
            analysis,
            hits,
            extracted,
            skip_reason: self.opt_str()?,
        })
    }

    pub fn analysis(&mut self) -> Result<FailureAnalysis> {
        Ok(FailureAnalysis {
            is_failure: self.bool()?,
            failure_type: self.failure_type()?,
            severity: self.f64()?,
            weight: self.f64()?,
            recoverable: self.bool()?,
            explanation: self.str()?,
        })
    }

    /// What [`Writer::details`] wrote.
    pub fn details(&mut self) -> Result<(Vec<TypeHits>, ExtractedOutcome)> {
        let n = self.len()?;
        let mut hits = Vec::with_capacity(n);
        for _ in 0..n {
            let failure_type = self
                .failure_type()?
                .ok_or_else(|| WireError("hits without a failure type".into()))?;
            hits.push(TypeHits {
                failure_type,
                keywords: self.strings()?,
            });
        }
        Ok((
            hits,
            ExtractedOutcome {
                actual_achievements: self.strings()?,
                key_observations: self.strings()?,
                limitations: self.str()?,
            },
        ))
    }

    pub fn rejected(&mut self, file: &str) -> Result<Rejected> {
        Ok(Rejected {
            file: file.to_owned(),
            line: self.usize()?,
            index: self.opt(Self::usize)?,
            field: self.opt_str()?,
            reason: self.str()?,
            trajectory_id: self.opt_str()?,
            excerpt: self.str()?,
        })
    }

    /// What [`Writer::events`] wrote, for the file called `file`.
    pub fn events(&mut self, file: &str) -> Result<Vec<Item>> {
        let n = self.len()?;
        let mut chunks = Vec::with_capacity(n);
        for _ in 0..n {
            chunks.push(Arc::new(Chunk::from_packed(self.bytes()?.to_vec())?));
        }
        let n = self.len()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(match self.u8()? {
                0 => {
                    let line = self.usize()?;
                    let index = self.usize()?;
                    let packed = Box::new(Packed::read(self, &chunks)?);
                    Item::Record(
                        packed,
                        SourcePos {
                            file: file.to_owned(),
                            line,
                            index,
                        },
                    )
                }
                1 => Item::Rejected(self.rejected(file)?),
                _ => return bad("an unknown event tag"),
            });
        }
        Ok(out)
    }

    pub fn format(&mut self) -> Result<Option<SourceFormat>> {
        match self.u8()? {
            0 => Ok(None),
            n => SourceFormat::ALL
                .get(usize::from(n) - 1)
                .copied()
                .map(Some)
                .ok_or_else(|| WireError("an unknown source format".into())),
        }
    }

    pub fn summary(&mut self, file: &str) -> Result<FileSummary> {
        Ok(FileSummary {
            file: file.to_owned(),
            format: match self.u8()? {
                0 => InputFormat::Jsonl,
                1 => InputFormat::JsonArray,
                2 => InputFormat::JsonValues,
                3 => InputFormat::Text,
                4 => InputFormat::Empty,
                5 => InputFormat::Binary,
                _ => return bad("an unknown layout"),
            },
            source_format: self
                .format()?
                .ok_or_else(|| WireError("a summary without a format".into()))?,
            source_format_forced: self.bool()?,
            records: self.usize()?,
            successes: self.usize()?,
            rejected: self.usize()?,
            blank_lines: self.usize()?,
            bytes: self.u64()?,
            notes: self.strings()?,
        })
    }

    pub fn resume(&mut self) -> Result<Resume> {
        Ok(Resume {
            line: self.usize()?,
            index: self.usize()?,
            format: self.format()?,
        })
    }
}

/// A record with its rule-based view (packed), or a rejection, as the page takes them in.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Record(Box<Packed>, SourcePos),
    Rejected(Rejected),
}

/// What the page asks of a worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Read the file from its start until it can be sliced, or whole; reads of `chunk` bytes.
    Head {
        file: String,
        format: Option<SourceFormat>,
        chunk: u64,
        rules: RuleSetup,
    },
    /// Find and count the lines of slice `slice`, `[start, end)` of a file of `size` bytes
    /// sliced from `from`, and keep them for [`Request::Parse`].
    Count {
        slice: usize,
        from: u64,
        start: u64,
        end: u64,
        size: u64,
    },
    /// Parse slice `slice` (`[start, end)`, already cut at lines) from `at`.
    Parse {
        slice: usize,
        file: String,
        forced: Option<SourceFormat>,
        start: u64,
        end: u64,
        at: Resume,
        rules: RuleSetup,
    },
}

/// What the worker needs for the rule-based stages: the lexicon (as the JSON the preferences
/// save) and δ.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSetup {
    pub lexicon: String,
    pub delta: f64,
}

/// What a worker answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The worker has started and takes requests.
    Ready,
    /// Events of the head, in order (`read`: bytes of the file read so far).
    Events { read: u64, events: Vec<u8> },
    /// The head is done: the file's summary when it was read whole (`split` is `None`), else
    /// the head's, with where the rest is sliced.
    HeadDone {
        summary: Vec<u8>,
        split: Option<Split>,
    },
    Counted {
        slice: usize,
        start: u64,
        end: u64,
        count: Count,
    },
    Parsed {
        slice: usize,
        from: Option<SourceFormat>,
        to: Option<SourceFormat>,
        summary: Vec<u8>,
        events: Vec<u8>,
    },
    /// The request could not be done (the file could not be read, ...).
    Failed { message: String },
}

impl RuleSetup {
    fn write(&self, w: &mut Writer) {
        w.str(&self.lexicon);
        w.f64(self.delta);
    }

    fn read(r: &mut Reader) -> Result<Self> {
        Ok(RuleSetup {
            lexicon: r.str()?,
            delta: r.f64()?,
        })
    }
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Request::Head {
                file,
                format,
                chunk,
                rules,
            } => {
                w.u8(0);
                w.str(file);
                w.format(*format);
                w.u64(*chunk);
                rules.write(&mut w);
            }
            Request::Count {
                slice,
                from,
                start,
                end,
                size,
            } => {
                w.u8(1);
                w.usize(*slice);
                for v in [from, start, end, size] {
                    w.u64(*v);
                }
            }
            Request::Parse {
                slice,
                file,
                forced,
                start,
                end,
                at,
                rules,
            } => {
                w.u8(2);
                w.usize(*slice);
                w.str(file);
                w.format(*forced);
                w.u64(*start);
                w.u64(*end);
                w.resume(at);
                rules.write(&mut w);
            }
        }
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let request = match r.u8()? {
            0 => Request::Head {
                file: r.str()?,
                format: r.format()?,
                chunk: r.u64()?,
                rules: RuleSetup::read(&mut r)?,
            },
            1 => Request::Count {
                slice: r.usize()?,
                from: r.u64()?,
                start: r.u64()?,
                end: r.u64()?,
                size: r.u64()?,
            },
            2 => Request::Parse {
                slice: r.usize()?,
                file: r.str()?,
                forced: r.format()?,
                start: r.u64()?,
                end: r.u64()?,
                at: r.resume()?,
                rules: RuleSetup::read(&mut r)?,
            },
            _ => return bad("an unknown request"),
        };
        r.end()?;
        Ok(request)
    }
}

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Reply::Ready => w.u8(0),
            Reply::Events { read, events } => {
                w.u8(1);
                w.u64(*read);
                w.bytes(events);
            }
            Reply::HeadDone { summary, split } => {
                w.u8(2);
                w.bytes(summary);
                w.opt(split.as_ref(), |w, s| {
                    w.u64(s.offset);
                    w.resume(&s.resume);
                });
            }
            Reply::Counted {
                slice,
                start,
                end,
                count,
            } => {
                w.u8(3);
                w.usize(*slice);
                w.u64(*start);
                w.u64(*end);
                w.usize(count.lines);
                w.usize(count.records);
            }
            Reply::Parsed {
                slice,
                from,
                to,
                summary,
                events,
            } => {
                w.u8(4);
                w.usize(*slice);
                w.format(*from);
                w.format(*to);
                w.bytes(summary);
                w.bytes(events);
            }
            Reply::Failed { message } => {
                w.u8(5);
                w.str(message);
            }
        }
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let reply = match r.u8()? {
            0 => Reply::Ready,
            1 => Reply::Events {
                read: r.u64()?,
                events: r.bytes()?.to_vec(),
            },
            2 => Reply::HeadDone {
                summary: r.bytes()?.to_vec(),
                split: r.opt(|r| {
                    Ok(Split {
                        offset: r.u64()?,
                        resume: r.resume()?,
                    })
                })?,
            },
            3 => Reply::Counted {
                slice: r.usize()?,
                start: r.u64()?,
                end: r.u64()?,
                count: Count {
                    lines: r.usize()?,
                    records: r.usize()?,
                },
            },
            4 => Reply::Parsed {
                slice: r.usize()?,
                from: r.format()?,
                to: r.format()?,
                summary: r.bytes()?.to_vec(),
                events: r.bytes()?.to_vec(),
            },
            5 => Reply::Failed { message: r.str()? },
            _ => return bad("an unknown reply"),
        };
        r.end()?;
        Ok(reply)
    }
}

/// Encodes `events` with the rule-based view each record gets from `rules`.
pub fn encode_events(events: &[ReadEvent], rules: impl FnMut(&Trajectory) -> RuleView) -> Vec<u8> {
    let mut w = Writer::new();
    w.events(events, rules);
    w.into_bytes()
}

/// Decodes what [`encode_events`] wrote, for the file called `file`.
pub fn decode_events(bytes: &[u8], file: &str) -> Result<Vec<Item>> {
    let mut r = Reader::new(bytes);
    let items = r.events(file)?;
    r.end()?;
    Ok(items)
}

/// Encodes a file summary (without its name).
pub fn encode_summary(summary: &FileSummary) -> Vec<u8> {
    let mut w = Writer::new();
    w.summary(summary);
    w.into_bytes()
}

/// Decodes what [`encode_summary`] wrote, for the file called `file`.
pub fn decode_summary(bytes: &[u8], file: &str) -> Result<FileSummary> {
    let mut r = Reader::new(bytes);
    let summary = r.summary(file)?;
    r.end()?;
    Ok(summary)
}
