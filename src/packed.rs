//! Trajectories kept compressed. A session holds, per trajectory, what its lists, filters,
//! counts and gates read (id, goal, verdicts, the rule-based analysis) and keeps the rest (the
//! steps, the answer, the metadata, the keywords that hit, the extracted outcome) in LZ4 blocks
//! of about [`CHUNK_BYTES`] shared by neighbouring trajectories: about a third of the input's
//! size instead of twice it. A trajectory is opened again when a detailed view, a prompt or an
//! export needs it; the last block opened stays open, so a pass in order opens each block once.
//!
//! A block holds each trajectory in the wire encoding: the length of its rule details, the
//! details ([`Writer::details`]), then the trajectory ([`Writer::trajectory`]).

use crate::import::SourceFormat;
use crate::model::{FailureAnalysis, Trajectory};
use crate::pipeline::RuleView;
use crate::wire::{Reader, WireError, Writer};
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A block is closed once it holds this many bytes before compression.
pub const CHUNK_BYTES: usize = 128 * 1024;

/// One compressed block.
pub struct Chunk {
    /// Unique for the life of the program: names the block in the open-block cache.
    id: u64,
    /// LZ4 block format, the uncompressed length first (4 bytes, little-endian).
    packed: Box<[u8]>,
}

static NEXT_CHUNK: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The last block opened: its id and bytes.
    static OPEN: RefCell<(u64, Vec<u8>)> = const { RefCell::new((0, Vec::new())) };
}

impl Chunk {
    fn compress(raw: &[u8]) -> Chunk {
        Chunk::new(lz4_flex::block::compress_prepend_size(raw).into_boxed_slice())
    }

    fn new(packed: Box<[u8]>) -> Chunk {
        Chunk {
            id: NEXT_CHUNK.fetch_add(1, Ordering::Relaxed),
            packed,
        }
    }

    /// A block as [`Chunk::packed`] gave it (from a background reader).
    pub fn from_packed(packed: Vec<u8>) -> Result<Chunk, WireError> {
        if packed.len() < 4 {
            return Err(WireError(
                "a block of trajectories without its length".into(),
            ));
        }
        let chunk = Chunk::new(packed.into_boxed_slice());
        // LZ4 cannot grow bytes more than 255 times: a larger length is damage, which would
        // otherwise ask for a huge allocation when the block is opened.
        if chunk.raw_len() > (chunk.packed.len() - 4).saturating_mul(255) + 16 {
            return Err(WireError(
                "a block of trajectories with an impossible length".into(),
            ));
        }
        Ok(chunk)
    }

    /// The compressed bytes.
    pub fn packed(&self) -> &[u8] {
        &self.packed
    }

    /// How many bytes the block holds uncompressed.
    pub fn raw_len(&self) -> usize {
        let mut n = [0u8; 4];
        n.copy_from_slice(&self.packed[..4]);
        u32::from_le_bytes(n) as usize
    }

    /// Runs `f` on the block's bytes, opening it unless it is the last one opened.
    fn with_raw<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R, WireError> {
        OPEN.with(|open| {
            let mut open = open.borrow_mut();
            if open.0 != self.id {
                let raw = lz4_flex::block::decompress_size_prepended(&self.packed)
                    .map_err(|e| WireError(format!("a block of trajectories is damaged: {e}")))?;
                *open = (self.id, raw);
            }
            Ok(f(&open.1))
        })
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chunk({} bytes packed)", self.packed.len())
    }
}

/// One trajectory's place in a block.
#[derive(Clone)]
struct Body {
    chunk: Arc<Chunk>,
    start: u32,
    len: u32,
}

impl Body {
    fn with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R, WireError> {
        let (start, end) = (self.start as usize, self.start as usize + self.len as usize);
        self.chunk
            .with_raw(|raw| raw.get(start..end).map(f))?
            .ok_or_else(|| WireError("a trajectory past the end of its block".into()))
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Body({}+{})", self.start, self.len)
    }
}

/// A trajectory with its rule-based view, kept compressed but for what the lists read.
#[derive(Debug, Clone)]
pub struct Packed {
    /// The trajectory's id (renamed `id#n` by the session when the id was taken).
    pub id: String,
    /// The original goal.
    pub goal: String,
    pub succeeded: bool,
    pub verdict_unknown: bool,
    /// The rule-based Stage 1 analysis and the gates' verdict (which changes with δ).
    pub analysis: FailureAnalysis,
    pub skip_reason: Option<String>,
    format: Format,
    body: Body,
}

/// The import format a trajectory names (its `origin.format`), kept in a byte when it is one
/// of the readers' formats.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    None,
    Known(SourceFormat),
    /// Another name: read from the trajectory when asked for.
    Other,
}

impl Format {
    fn of(t: &Trajectory) -> Format {
        match &t.origin {
            None => Format::None,
            Some(o) => SourceFormat::parse(&o.format).map_or(Format::Other, Format::Known),
        }
    }

    fn write(self, w: &mut Writer) {
        w.u8(match self {
            Format::None => 0,
            Format::Known(f) => {
                1 + SourceFormat::ALL.iter().position(|x| *x == f).unwrap_or(0) as u8
            }
            Format::Other => u8::MAX,
        });
    }

    fn read(r: &mut Reader) -> Result<Format, WireError> {
        Ok(match r.u8()? {
            0 => Format::None,
            u8::MAX => Format::Other,
            n => Format::Known(
                *SourceFormat::ALL
                    .get(usize::from(n) - 1)
                    .ok_or_else(|| WireError("an unknown import format".into()))?,
            ),
        })
    }
}

/// Equal when what they hold is: the same trajectory (opened) and rule view, wherever kept.
impl PartialEq for Packed {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.goal == other.goal
            && self.succeeded == other.succeeded
            && self.verdict_unknown == other.verdict_unknown
            && self.analysis == other.analysis
            && self.skip_reason == other.skip_reason
            && self.format == other.format
            && self.try_trajectory().ok() == other.try_trajectory().ok()
            && self.rules() == other.rules()
    }
}

impl Packed {
    /// The whole trajectory (under [`Packed::id`]).
    ///
    /// # Panics
    /// When the block was damaged in memory: blocks are made and checked by this program.
    pub fn trajectory(&self) -> Trajectory {
        self.try_trajectory()
            .unwrap_or_else(|e| panic!("trajectory {}: {e}", self.id))
    }

    pub fn try_trajectory(&self) -> Result<Trajectory, WireError> {
        let mut t = self.body.with(|bytes| {
            let mut r = Reader::new(bytes);
            let details = r.usize()?;
            r.skip(details)?;
            let t = r.trajectory()?;
            r.end()?;
            Ok::<_, WireError>(t)
        })??;
        t.trajectory_id.clone_from(&self.id);
        Ok(t)
    }

    /// The import format the trajectory names (`origin.format`), if any.
    pub fn import_format(&self) -> Option<String> {
        match self.format {
            Format::None => None,
            Format::Known(f) => Some(f.id().to_owned()),
            Format::Other => self.trajectory().origin.map(|o| o.format),
        }
    }

    /// The whole rule-based view.
    ///
    /// # Panics
    /// As [`Packed::trajectory`].
    pub fn rules(&self) -> RuleView {
        let (hits, extracted) = self
            .body
            .with(|bytes| {
                let mut r = Reader::new(bytes);
                r.usize()?;
                r.details()
            })
            .and_then(|d| d)
            .unwrap_or_else(|e| panic!("trajectory {}: {e}", self.id));
        RuleView {
            analysis: self.analysis.clone(),
            hits,
            extracted,
            skip_reason: self.skip_reason.clone(),
        }
    }

    /// Writes what [`Packed::read`] reads back, the block named by its index among `chunks`
    /// (blocks are written once, before the trajectories that use them).
    pub fn write(&self, w: &mut Writer, chunk: usize) {
        w.str(&self.id);
        w.str(&self.goal);
        w.bool(self.succeeded);
        w.bool(self.verdict_unknown);
        w.analysis(&self.analysis);
        w.opt_str(self.skip_reason.as_deref());
        self.format.write(w);
        w.usize(chunk);
        w.u64(u64::from(self.body.start));
        w.u64(u64::from(self.body.len));
    }

    /// What [`Packed::write`] wrote; `chunks` are the blocks read before.
    pub fn read(r: &mut Reader, chunks: &[Arc<Chunk>]) -> Result<Packed, WireError> {
        let id = r.str()?;
        let goal = r.str()?;
        let succeeded = r.bool()?;
        let verdict_unknown = r.bool()?;
        let analysis = r.analysis()?;
        let skip_reason = r.opt_str()?;
        let format = Format::read(r)?;
        let chunk = chunks
            .get(r.usize()?)
            .ok_or_else(|| WireError("a trajectory in a block that is not there".into()))?;
        let start = r.u64()?;
        let len = r.u64()?;
        if start + len > chunk.raw_len() as u64 {
            return Err(WireError("a trajectory past the end of its block".into()));
        }
        Ok(Packed {
            id,
            goal,
            succeeded,
            verdict_unknown,
            analysis,
            skip_reason,
            format,
            body: Body {
                chunk: Arc::clone(chunk),
                start: start as u32,
                len: len as u32,
            },
        })
    }

    /// The block that keeps it (blocks shared by several trajectories are written once).
    pub fn chunk(&self) -> &Arc<Chunk> {
        &self.body.chunk
    }
}

/// Packs trajectories in order into shared blocks.
#[derive(Default)]
pub struct Packer {
    raw: Vec<u8>,
    /// The trajectories of the open block: what stays at hand, and where each is in `raw`.
    open: Vec<(Head, u32, u32)>,
    done: Vec<Packed>,
}

struct Head {
    format: Format,
    id: String,
    goal: String,
    succeeded: bool,
    verdict_unknown: bool,
    analysis: FailureAnalysis,
    skip_reason: Option<String>,
}

impl Packer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a trajectory with its rule-based view.
    pub fn push(&mut self, t: &Trajectory, rules: RuleView) {
        let start = self.raw.len();
        let mut details = Writer::new();
        details.details(&rules.hits, &rules.extracted);
        let details = details.into_bytes();
        let mut w = Writer::from(std::mem::take(&mut self.raw));
        w.usize(details.len());
        w.raw(&details);
        w.trajectory(t);
        self.raw = w.into_bytes();
        self.open.push((
            Head {
                format: Format::of(t),
                id: t.trajectory_id.clone(),
                goal: t.original_prompt.clone(),
                succeeded: t.succeeded(),
                verdict_unknown: t.verdict_unknown(),
                analysis: rules.analysis,
                skip_reason: rules.skip_reason,
            },
            start as u32,
            (self.raw.len() - start) as u32,
        ));
        if self.raw.len() >= CHUNK_BYTES {
            self.seal();
        }
    }

    fn seal(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let chunk = Arc::new(Chunk::compress(&self.raw));
        self.raw.clear();
        for (head, start, len) in self.open.drain(..) {
            self.done.push(Packed {
                id: head.id,
                goal: head.goal,
                succeeded: head.succeeded,
                verdict_unknown: head.verdict_unknown,
                analysis: head.analysis,
                skip_reason: head.skip_reason,
                format: head.format,
                body: Body {
                    chunk: Arc::clone(&chunk),
                    start,
                    len,
                },
            });
        }
    }

    /// Everything pushed, in order.
    pub fn finish(mut self) -> Vec<Packed> {
        self.seal();
        self.done
    }
}

/// Packs one trajectory on its own.
pub fn pack(t: &Trajectory, rules: RuleView) -> Packed {
    let mut p = Packer::new();
    p.push(t, rules);
    p.finish().pop().expect("one trajectory was pushed")
}
