//! The saved copy of a session: what the browser keeps in IndexedDB while the user works, and
//! how the session is rebuilt from it after a reload.
//!
//! # Layout
//!
//! One database, [`DB_NAME`], at version [`SCHEMA_VERSION`], with seven object stores. Every
//! key is an array that starts with the session's id, so each session's records sit together
//! and a key range over `[id]` … `[id, []]` selects (or deletes) all of them. Every value is
//! JSON text but those of `sources`, which hold the file itself.
//!
//! | store          | key                      | value                                          |
//! |----------------|--------------------------|------------------------------------------------|
//! | `sessions`     | `[id]`                   | [`SessionRecord`]: settings (no API key), counts, times |
//! | `files`        | `[id, file]`             | a loaded file's summary and rejected records   |
//! | `trajectories` | `[id, index]`            | a trajectory as read, its source position and which duplicate of its id it is |
//! | `sources`      | `[id, index]`            | a loaded file (a `File`, kept whole by the browser), the name and format it was read in ([`Source`]): the trajectories from `index` on were read from it |
//! | `results`      | `[id, index]`            | the pipeline's [`TrajectoryResult`]            |
//! | `exchanges`    | `[id, seq]`              | a completed chat [`Exchange`] of the exchange log, in the order saved |
//! | `reviews`      | `[id, index]`            | a reviewer's [`Decision`] on that trajectory     |
//!
//! Records are written in small batches as the session grows ([`Journal::batch`]): each loaded
//! file once, as it starts to be read, into `sources` (the browser keeps a copy of the file:
//! the page neither encodes nor writes its trajectories one by one, and a session is restored
//! by reading its files again, with the same reader, [`Saved`]); trajectories that came from
//! no saved file one record each into `trajectories`, the results of each slice of a run, and
//! the exchanges the exchange log took in as soon as they complete ([`Journal::exchanges`]), and
//! each review decision as it is made (an undone one is deleted). The rule-based views are not
//! stored: they are recomputed from the trajectories. Review's undo history is not stored: after
//! a reload the decisions stand and undo starts afresh.
//!
//! # Versions
//!
//! When the layout changes, [`SCHEMA_VERSION`] goes up; opening the database at the new version
//! creates the stores it lacks. A session record whose `format` is in [`READABLE_FORMATS`] is
//! read, any other is not (the page says it was saved by another version).
//!
//! - 1: the first five stores.
//! - 2: `reviews` added; the session record counts the decisions (`reviewed`, 0 when absent).
//!   A session saved at format 1 opens with no decisions and is saved at 2 from then on.
//! - 3: `sources` added. A session saved at format 1 or 2 has its trajectories in
//!   `trajectories` only; files loaded into it later are saved in `sources`, and restoring
//!   takes both in index order.

use crate::json::{Json, JsonObject};
use crate::llm::exchange::Exchange;
use crate::model::Trajectory;
use crate::pipeline::{Outcome, TrajectoryResult};
use crate::prefs::Prefs;
use crate::reader::SourcePos;
use crate::review::Decision;
use crate::session::{Entry, LoadedFile, Session};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The IndexedDB database's name.
pub const DB_NAME: &str = "agenther";

/// The version of the layout: the database's IndexedDB version and every session record's
/// `format`.
pub const SCHEMA_VERSION: u32 = 3;

/// The session formats this version reads: its own, and those it only adds stores to.
pub const READABLE_FORMATS: std::ops::RangeInclusive<u32> = 1..=SCHEMA_VERSION;

/// Trajectories or results written per batch at most.
pub const BATCH_RECORDS: usize = 500;

/// The object stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Store {
    Sessions,
    Files,
    Trajectories,
    Results,
    Exchanges,
    Reviews,
    Sources,
}

impl Store {
    pub const ALL: [Store; 7] = [
        Store::Sessions,
        Store::Files,
        Store::Trajectories,
        Store::Results,
        Store::Exchanges,
        Store::Reviews,
        Store::Sources,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Store::Sessions => "sessions",
            Store::Files => "files",
            Store::Trajectories => "trajectories",
            Store::Results => "results",
            Store::Exchanges => "exchanges",
            Store::Reviews => "reviews",
            Store::Sources => "sources",
        }
    }
}

/// A record's key: `[session, ...path]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub session: String,
    pub path: Vec<u32>,
}

impl Key {
    fn new(session: &str, path: Vec<u32>) -> Self {
        Key {
            session: session.to_owned(),
            path,
        }
    }
}

/// Writes `value` at `key` of `store`.
#[derive(Debug, Clone, PartialEq)]
pub struct Put {
    pub store: Store,
    pub key: Key,
    pub value: Value,
}

/// A record's value: JSON text, or a loaded file (the `sources` store), which the page holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Source(Source),
}

impl Value {
    /// The text of a JSON value.
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(text) => Some(text),
            Value::Source(_) => None,
        }
    }
}

/// A loaded file kept in the session (a `sources` record, with the file beside it): the
/// session's trajectories from `first` on were read from it, named `name`, in `format`
/// (`None`: detected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub first: usize,
    pub name: String,
    pub format: Option<crate::import::SourceFormat>,
}

/// Every record of `store` whose key starts with `key` (`[session, ...path]`): the key range
/// from `[session, ...path]` to `[session, ...path, []]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Prefix {
    pub store: Store,
    pub key: Key,
}

/// One write transaction: the deletions first, then the puts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub deletes: Vec<Prefix>,
    pub puts: Vec<Put>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.deletes.is_empty() && self.puts.is_empty()
    }

    /// The stores it touches, each once.
    pub fn stores(&self) -> Vec<Store> {
        let set: BTreeSet<Store> = self
            .deletes
            .iter()
            .map(|d| d.store)
            .chain(self.puts.iter().map(|p| p.store))
            .collect();
        set.into_iter().collect()
    }
}

/// Why a saved session could not be read back.
#[derive(Debug, Clone, PartialEq)]
pub enum PersistError {
    /// Saved by a version of the app with another layout.
    Version { found: u32 },
    /// A record is not what this layout writes.
    Corrupt { store: Store, reason: String },
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PersistError::Version { found } => write!(
                f,
                "it was saved by another version of the app (format {found}, this one reads {SCHEMA_VERSION})"
            ),
            PersistError::Corrupt { store, reason } => {
                write!(f, "a record of {} cannot be read: {reason}", store.name())
            }
        }
    }
}

impl std::error::Error for PersistError {}

fn corrupt(store: Store, e: impl fmt::Display) -> PersistError {
    PersistError::Corrupt {
        store,
        reason: e.to_string(),
    }
}

/// The `sessions` record: what a saved session is, at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// [`SCHEMA_VERSION`] when written.
    pub format: u32,
    pub id: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: f64,
    pub saved_ms: f64,
    /// The settings (never the API key).
    pub prefs: Prefs,
    /// Whether an API key was set when the settings were saved (the key itself never is).
    pub used_key: bool,
    /// Whether the second judge, on an endpoint of its own, had a key of its own then.
    #[serde(default)]
    pub used_judge_key: bool,
    /// A run was going on: the page was closed or reloaded before it ended.
    pub running: bool,
    pub files: usize,
    pub trajectories: usize,
    /// Trajectories with a result a run keeps (anything but failed or cancelled).
    pub done: usize,
    /// Review decisions (none in format 1).
    #[serde(default)]
    pub reviewed: usize,
}

impl SessionRecord {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a session record serializes")
    }

    /// Reads a record, refusing one of another format.
    pub fn from_json(text: &str) -> Result<SessionRecord, PersistError> {
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let format = serde_json::from_str::<Format>(text)
            .map_err(|e| corrupt(Store::Sessions, e))?
            .format;
        if !READABLE_FORMATS.contains(&format) {
            return Err(PersistError::Version { found: format });
        }
        serde_json::from_str(text).map_err(|e| corrupt(Store::Sessions, e))
    }

    /// What the session holds, in a phrase: "8 trajectories in 2 files, 5 done" (and ", 3
    /// reviewed" when review decided some).
    pub fn summary(&self) -> String {
        use crate::progress::plural;
        let mut text = format!(
            "{} in {}, {} done",
            plural(self.trajectories, "trajectory", "trajectories"),
            plural(self.files, "file", "files"),
            crate::progress::format_count(self.done)
        );
        if self.reviewed > 0 {
            text.push_str(&format!(
                ", {} reviewed",
                crate::progress::format_count(self.reviewed)
            ));
        }
        text
    }
}

/// A `trajectories` record.
#[derive(Serialize, Deserialize)]
struct StoredTrajectory {
    trajectory: Trajectory,
    source: SourcePos,
    occurrence: usize,
    /// Objects whose numbers serde cannot carry exactly (NaN, infinities, integers wider than
    /// 64 bits), as Python JSON text: they replace what `trajectory` holds for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    exact: Vec<ExactObject>,
}

/// A `trajectories` record as written: [`StoredTrajectory`] borrowing the entry's parts, so
/// that saving does not copy every trajectory first.
#[derive(Serialize)]
struct StoredTrajectoryRef<'a> {
    trajectory: &'a Trajectory,
    source: &'a SourcePos,
    occurrence: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exact: Vec<ExactObject>,
}

#[derive(Serialize, Deserialize)]
struct ExactObject {
    /// The step whose `action_input` this is; `None` (and no `tool`): the trajectory's
    /// `metadata`.
    step: Option<usize>,
    /// The tool schema (in `origin.tools`) this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool: Option<usize>,
    json: String,
}

/// Whether serde (as JSON) carries every number of `value` exactly.
fn serde_exact(value: &Json) -> bool {
    match value {
        Json::Number(crate::json::Number::Float(f)) => f.is_finite(),
        Json::Number(crate::json::Number::Int(text)) => {
            text.parse::<i64>().is_ok() || text.parse::<u64>().is_ok()
        }
        Json::Array(items) => items.iter().all(serde_exact),
        Json::Object(o) => object_exact(o),
        Json::Null | Json::Bool(_) | Json::String(_) => true,
    }
}

fn object_exact(o: &JsonObject) -> bool {
    o.iter().all(|(_, v)| serde_exact(v))
}

fn python_text(o: &JsonObject) -> String {
    crate::json::python_dumps(&Json::Object(o.clone()))
}

/// Where an [`ExactObject`] goes back.
enum ExactPart {
    Metadata,
    Step(usize),
    Tool(usize),
}

fn trajectory_json(entry: &Entry) -> String {
    let t = &entry.trajectory();
    let mut exact = Vec::new();
    if !object_exact(&t.metadata) {
        exact.push(ExactObject {
            step: None,
            tool: None,
            json: python_text(&t.metadata),
        });
    }
    for (i, step) in t.steps.iter().enumerate() {
        if !object_exact(&step.action_input) {
            exact.push(ExactObject {
                step: Some(i),
                tool: None,
                json: python_text(&step.action_input),
            });
        }
    }
    let tools = t.origin.iter().flat_map(|o| o.tools.iter().enumerate());
    for (i, tool) in tools.filter(|(_, tool)| !serde_exact(tool)) {
        exact.push(ExactObject {
            step: None,
            tool: Some(i),
            json: crate::json::python_dumps(tool),
        });
    }
    serde_json::to_string(&StoredTrajectoryRef {
        trajectory: t,
        source: &entry.source,
        occurrence: entry.occurrence,
        exact,
    })
    .expect("a trajectory serializes")
}

fn trajectory_from_json(text: &str) -> Result<StoredTrajectory, PersistError> {
    let bad = |e: String| corrupt(Store::Trajectories, e);
    let mut stored: StoredTrajectory =
        serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    for exact in std::mem::take(&mut stored.exact) {
        let part = match (exact.step, exact.tool) {
            (None, None) => ExactPart::Metadata,
            (Some(i), None) => ExactPart::Step(i),
            (None, Some(i)) => ExactPart::Tool(i),
            (Some(_), Some(_)) => return Err(bad("an exact value of a step and a tool".into())),
        };
        let value = crate::json::parse(&exact.json).map_err(|e| bad(e.to_string()))?;
        let object = |value: Json| match value {
            Json::Object(o) => Ok(o),
            other => Err(bad(format!("expected an object, found {}", other.kind()))),
        };
        let t = &mut stored.trajectory;
        match part {
            ExactPart::Metadata => t.metadata = object(value)?,
            ExactPart::Step(i) => {
                let object = object(value)?;
                match t.steps.get_mut(i) {
                    Some(step) => step.action_input = object,
                    None => return Err(bad(format!("no step {i}"))),
                }
            }
            ExactPart::Tool(i) => match t.origin.as_mut().and_then(|o| o.tools.get_mut(i)) {
                Some(tool) => *tool = value,
                None => return Err(bad(format!("no tool {i}"))),
            },
        }
    }
    Ok(stored)
}

/// Whether a run keeps this result (anything but failed or cancelled, which it runs again).
fn settled(result: &TrajectoryResult) -> bool {
    !matches!(
        result.outcome,
        Outcome::Failed { .. } | Outcome::Cancelled { .. }
    )
}

fn index_key(i: usize) -> u32 {
    u32::try_from(i).expect("fewer than 2^32 trajectories")
}

/// What of a session is in storage, and what to write next.
#[derive(Debug, Clone, PartialEq)]
pub struct Journal {
    record: SessionRecord,
    /// Files and trajectories already written (they are only ever appended).
    files: usize,
    trajectories: usize,
    /// Results to write (or delete, when the entry has none).
    results: BTreeSet<usize>,
    /// Review decisions to write (or delete, when the entry has none).
    reviews: BTreeSet<usize>,
    /// Results and exchanges were all dropped since the last batch.
    cleared: bool,
    /// The `seq` of the next exchange saved.
    next_exchange: u32,
    /// The loaded files kept whole, in order (see [`Journal::source`]).
    sources: Vec<Kept>,
    /// Kept files that gave no trajectory, to delete (by their first index).
    forget: Vec<usize>,
    /// The trajectories the session record's `done` counts (the first ones), so that a batch
    /// with no results counts only those written since.
    counted: usize,
}

/// A loaded file kept whole, as the journal knows it.
#[derive(Debug, Clone, PartialEq)]
struct Kept {
    source: Source,
    /// Where its trajectories end (`None`: it is still being read).
    end: Option<usize>,
    written: bool,
}

impl Journal {
    /// A session not stored yet, named `id`.
    pub fn new(id: &str, now_ms: f64, prefs: Prefs, used_key: bool) -> Self {
        Journal {
            record: SessionRecord {
                format: SCHEMA_VERSION,
                id: id.to_owned(),
                created_ms: now_ms,
                saved_ms: now_ms,
                prefs,
                used_key,
                used_judge_key: false,
                running: false,
                files: 0,
                trajectories: 0,
                done: 0,
                reviewed: 0,
            },
            files: 0,
            trajectories: 0,
            results: BTreeSet::new(),
            reviews: BTreeSet::new(),
            cleared: false,
            next_exchange: 0,
            sources: Vec::new(),
            forget: Vec::new(),
            counted: 0,
        }
    }

    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// The session record as last written (or about to be).
    pub fn record(&self) -> &SessionRecord {
        &self.record
    }

    /// The settings to save with the next batch, and which keys they used: the relabeling
    /// endpoint's, and the second judge's on an endpoint of its own.
    pub fn set_prefs(&mut self, prefs: Prefs, used_key: bool, used_judge_key: bool) {
        self.record.prefs = prefs;
        self.record.used_key = used_key;
        self.record.used_judge_key = used_judge_key;
    }

    /// Whether a run is going on, saved with the next batch.
    pub fn set_running(&mut self, running: bool) {
        self.record.running = running;
    }

    /// The result of entry `index` changed: the next batch writes it.
    pub fn result_changed(&mut self, index: usize) {
        self.results.insert(index);
    }

    /// The review decision on entry `index` changed (made, changed or undone): the next batch
    /// writes it.
    pub fn review_changed(&mut self, index: usize) {
        self.reviews.insert(index);
    }

    /// A file starts to be read into the session, its first trajectory to be entry
    /// `source.first`: the next batch keeps the file (the page hands it to the write), and its
    /// trajectories are not written one by one. They end where [`Journal::source_read`] says,
    /// or where the next file starts.
    pub fn source(&mut self, source: Source) {
        if source.first < self.trajectories {
            return;
        }
        self.source_read(source.first);
        self.sources.push(Kept {
            source,
            end: None,
            written: false,
        });
    }

    /// The file being read ended: the session's trajectories from `end` on came from no kept
    /// file (until the next one). A file that gave no trajectory is not kept (a file of
    /// another kind dropped by mistake would fill the storage for nothing); its summary and
    /// rejections are saved as any file's.
    pub fn source_read(&mut self, end: usize) {
        let Some(last) = self.sources.last_mut() else {
            return;
        };
        if last.end.is_some() {
            return;
        }
        if end > last.source.first {
            last.end = Some(end);
            return;
        }
        let empty = self.sources.pop().expect("just seen");
        if empty.written {
            self.forget.push(empty.source.first);
        }
    }

    /// Where the trajectories of the written kept file holding entry `i` end, if one does,
    /// in a session of `len` entries.
    fn kept_until(&self, i: usize, len: usize) -> Option<usize> {
        self.sources
            .iter()
            .filter(|k| k.written && k.source.first <= i)
            .map(|k| k.end.unwrap_or(len))
            .find(|&end| i < end)
    }

    /// Every result was dropped, and the exchange log emptied: the next batch deletes the
    /// stored results and exchanges.
    pub fn results_cleared(&mut self) {
        self.cleared = true;
        self.results.clear();
    }

    /// Whether `session` has anything not written yet (beyond the session record).
    pub fn behind(&self, session: &Session) -> bool {
        self.cleared
            || !self.results.is_empty()
            || !self.reviews.is_empty()
            || self.files < session.files.len()
            || self.trajectories < session.len()
            || self.sources.iter().any(|k| !k.written)
            || !self.forget.is_empty()
    }

    /// The next write that brings storage up to date with `session`, with the session record:
    /// files and trajectories added since the last batch, then results marked as changed, at
    /// most [`BATCH_RECORDS`] trajectories and results. Call again while [`Journal::behind`].
    pub fn batch(&mut self, session: &Session, now_ms: f64) -> Batch {
        let id = self.record.id.clone();
        let mut batch = Batch::default();
        let results_changed = self.cleared || !self.results.is_empty();
        if std::mem::take(&mut self.cleared) {
            for store in [Store::Results, Store::Exchanges] {
                batch.deletes.push(Prefix {
                    store,
                    key: Key::new(&id, Vec::new()),
                });
            }
        }
        let len = session.len();
        // Deletions go before the puts: a file kept after an empty one has its first index.
        for first in self.forget.drain(..) {
            batch.deletes.push(Prefix {
                store: Store::Sources,
                key: Key::new(&id, vec![index_key(first)]),
            });
        }
        // Files are kept as they start to be read, in the transaction that first counts
        // their trajectories as saved.
        for kept in self.sources.iter_mut().filter(|k| !k.written) {
            if kept.source.first <= len {
                batch.puts.push(Put {
                    store: Store::Sources,
                    key: Key::new(&id, vec![index_key(kept.source.first)]),
                    value: Value::Source(kept.source.clone()),
                });
                kept.written = true;
            }
        }
        let mut budget = BATCH_RECORDS;
        while budget > 0 && self.trajectories < len {
            if let Some(end) = self.kept_until(self.trajectories, len) {
                self.trajectories = end.min(len);
                continue;
            }
            let next_kept = self
                .sources
                .iter()
                .map(|k| k.source.first)
                .filter(|&first| first > self.trajectories)
                .min()
                .unwrap_or(usize::MAX);
            let end = len.min(self.trajectories + budget).min(next_kept);
            for (i, entry) in session.entries[self.trajectories..end].iter().enumerate() {
                batch.puts.push(Put {
                    store: Store::Trajectories,
                    key: Key::new(&id, vec![index_key(self.trajectories + i)]),
                    value: Value::Text(trajectory_json(entry)),
                });
            }
            budget -= end - self.trajectories;
            self.trajectories = end;
        }
        // A file's record goes with its last trajectories: files are recorded once read.
        if self.trajectories == session.len() {
            for (i, file) in session.files.iter().enumerate().skip(self.files) {
                batch.puts.push(Put {
                    store: Store::Files,
                    key: Key::new(&id, vec![index_key(i)]),
                    value: Value::Text(
                        serde_json::to_string(file).expect("a file summary serializes"),
                    ),
                });
            }
            self.files = session.files.len();
        }
        budget = drain(
            &mut self.results,
            budget,
            &mut batch,
            &id,
            Store::Results,
            |i| {
                session
                    .entries
                    .get(i)
                    .and_then(|e| e.result.as_ref())
                    .map(|result| serde_json::to_string(result).expect("a result serializes"))
            },
        );
        drain(
            &mut self.reviews,
            budget,
            &mut batch,
            &id,
            Store::Reviews,
            |i| {
                session
                    .review
                    .get(i)
                    .map(|d| serde_json::to_string(d).expect("a decision serializes"))
            },
        );
        self.record.saved_ms = now_ms;
        self.record.format = SCHEMA_VERSION;
        self.record.reviewed = session.review.len();
        self.record.files = self.files;
        self.record.trajectories = self.trajectories;
        let kept = |entries: &[Entry]| {
            entries
                .iter()
                .filter(|e| e.result.as_deref().is_some_and(settled))
                .count()
        };
        if results_changed || self.counted > self.trajectories {
            self.record.done = kept(&session.entries[..self.trajectories]);
        } else {
            self.record.done += kept(&session.entries[self.counted..self.trajectories]);
        }
        self.counted = self.trajectories;
        batch.puts.push(Put {
            store: Store::Sessions,
            key: Key::new(&id, Vec::new()),
            value: Value::Text(self.record.to_json()),
        });
        batch
    }

    /// The write of completed exchanges, after those written before.
    pub fn exchanges(&mut self, exchanges: &[Exchange]) -> Batch {
        let mut batch = Batch::default();
        for exchange in exchanges {
            batch.puts.push(Put {
                store: Store::Exchanges,
                key: Key::new(&self.record.id, vec![self.next_exchange]),
                value: Value::Text(
                    serde_json::to_string(exchange).expect("an exchange serializes"),
                ),
            });
            self.next_exchange += 1;
        }
        batch
    }

    /// The deletion of everything stored for this session.
    pub fn delete(&self) -> Batch {
        delete_session(&self.record.id)
    }
}

/// Moves up to `budget` of the entries marked in `changed` into `batch`: a put in `store` of
/// `value(i)`, or a deletion when it is `None`. Returns what is left of the budget.
fn drain(
    changed: &mut BTreeSet<usize>,
    mut budget: usize,
    batch: &mut Batch,
    id: &str,
    store: Store,
    value: impl Fn(usize) -> Option<String>,
) -> usize {
    while budget > 0 {
        let Some(i) = changed.pop_first() else {
            break;
        };
        let key = Key::new(id, vec![index_key(i)]);
        match value(i) {
            Some(value) => batch.puts.push(Put {
                store,
                key,
                value: Value::Text(value),
            }),
            None => batch.deletes.push(Prefix { store, key }),
        }
        budget -= 1;
    }
    budget
}

/// The deletion of everything stored for session `id`.
pub fn delete_session(id: &str) -> Batch {
    Batch {
        deletes: Store::ALL
            .iter()
            .map(|store| Prefix {
                store: *store,
                key: Key::new(id, Vec::new()),
            })
            .collect(),
        puts: Vec::new(),
    }
}

/// A stored session's records as read: each key's path (the key without the session id) and
/// value. The kept files' records without the files themselves, which the page holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredParts {
    pub record: String,
    pub files: Vec<(Vec<u32>, String)>,
    pub trajectories: Vec<(Vec<u32>, String)>,
    pub results: Vec<(Vec<u32>, String)>,
    pub exchanges: Vec<(Vec<u32>, String)>,
    pub reviews: Vec<(Vec<u32>, String)>,
    pub sources: Vec<Source>,
}

/// A session rebuilt from storage.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    pub record: SessionRecord,
    pub session: Session,
    /// The saved exchanges, in the order they were saved (for the exchange log).
    pub exchanges: Vec<Exchange>,
    /// Storage holds all of `session`.
    pub journal: Journal,
}

fn sorted(mut records: Vec<(Vec<u32>, String)>) -> Vec<(Vec<u32>, String)> {
    records.sort_by(|a, b| a.0.cmp(&b.0));
    records
}

fn first(path: &[u32], store: Store) -> Result<usize, PersistError> {
    path.first()
        .map(|i| *i as usize)
        .ok_or_else(|| corrupt(store, "a key without an index"))
}

/// A saved session being read back. What was stored one trajectory at a time is put back as
/// it was; a kept file is read again, with the same reader and format, which gives the same
/// trajectories in the same order ([`Saved::next_file`]); then results, review decisions, file
/// summaries and exchanges go back on top ([`Saved::finish`]). Trajectories are taken up to
/// the first one missing (a session saved while a batch failed, or a kept file that now gives
/// fewer): results, decisions and exchanges of trajectories not taken are left out.
#[derive(Debug)]
pub struct Saved {
    record: SessionRecord,
    session: Session,
    texts: BTreeMap<usize, String>,
    sources: BTreeMap<usize, Source>,
    /// The kept files handed out by [`Saved::next_file`], in order, with where their trajectories
    /// ended (`None`: the last one, being read).
    read: Vec<(Source, Option<usize>)>,
    results: BTreeMap<usize, TrajectoryResult>,
    reviews: Vec<(usize, Decision)>,
    files: Vec<LoadedFile>,
    exchanges: Vec<Exchange>,
    next_exchange: u32,
}

impl Saved {
    /// Reads everything but the kept files' contents.
    pub fn open(parts: StoredParts) -> Result<Saved, PersistError> {
        let record = SessionRecord::from_json(&parts.record)?;
        let session = Session::new(record.prefs.lexicon(), record.prefs.delta);
        let mut results = BTreeMap::new();
        for (path, text) in parts.results {
            let i = first(&path, Store::Results)?;
            let result = serde_json::from_str(&text).map_err(|e| corrupt(Store::Results, e))?;
            results.insert(i, result);
        }
        let mut texts = BTreeMap::new();
        for (path, text) in parts.trajectories {
            texts.insert(first(&path, Store::Trajectories)?, text);
        }
        let sources = parts.sources.into_iter().map(|s| (s.first, s)).collect();
        let mut reviews = Vec::new();
        for (path, text) in parts.reviews {
            let i = first(&path, Store::Reviews)?;
            let decision: Decision =
                serde_json::from_str(&text).map_err(|e| corrupt(Store::Reviews, e))?;
            reviews.push((i, decision));
        }
        let mut files = Vec::new();
        for (_, text) in sorted(parts.files) {
            files.push(serde_json::from_str(&text).map_err(|e| corrupt(Store::Files, e))?);
        }
        let mut exchanges = Vec::new();
        let mut next_exchange = 0;
        for (path, text) in sorted(parts.exchanges) {
            next_exchange = next_exchange.max(first(&path, Store::Exchanges)? as u32 + 1);
            exchanges.push(serde_json::from_str(&text).map_err(|e| corrupt(Store::Exchanges, e))?);
        }
        Ok(Saved {
            record,
            session,
            texts,
            sources,
            read: Vec::new(),
            results,
            reviews,
            files,
            exchanges,
            next_exchange,
        })
    }

    /// The session record.
    pub fn record(&self) -> &SessionRecord {
        &self.record
    }

    /// The session put back so far: the trajectories of the kept file [`Saved::next_file`] handed
    /// out are added to it as read, with [`Session::restore_records`] or [`Session::add_items`].
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Puts back the trajectories stored one by one from where the session stands, up to the
    /// next kept file; returns that file and how many of its trajectories to take, or `None`
    /// when everything there is has been put back.
    pub fn next_file(&mut self) -> Result<Option<(Source, usize)>, PersistError> {
        self.ended();
        loop {
            let at = self.session.len();
            if let Some(text) = self.texts.remove(&at) {
                let stored = trajectory_from_json(&text)?;
                self.session.restore_entry(
                    stored.trajectory,
                    stored.source,
                    stored.occurrence,
                    None,
                );
                continue;
            }
            let Some(source) = self.sources.remove(&at) else {
                return Ok(None);
            };
            // Its trajectories end where the next stored ones start, or with the session.
            let next = [
                self.texts.range(at + 1..).next().map(|(&i, _)| i),
                self.sources.range(at + 1..).next().map(|(&i, _)| i),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(usize::MAX);
            let end = next.min(self.record.trajectories.max(at));
            self.read.push((source.clone(), None));
            return Ok(Some((source, end - at)));
        }
    }

    /// Notes where the kept file read last ended.
    fn ended(&mut self) {
        let len = self.session.len();
        if let Some((_, end @ None)) = self.read.last_mut() {
            *end = Some(len);
        }
    }

    /// The session with its results, review decisions, file summaries and exchanges, and the
    /// journal that goes on saving it. A result saved for another trajectory than the one read
    /// back at its place (a kept file that reads differently) is refused.
    pub fn finish(mut self) -> Result<Restored, PersistError> {
        self.ended();
        let Saved {
            record,
            mut session,
            results,
            reviews,
            files,
            exchanges,
            next_exchange,
            read,
            ..
        } = self;
        for (i, result) in results {
            let Some(entry) = session.entries.get(i) else {
                continue;
            };
            if entry.id() != result.trajectory_id {
                return Err(corrupt(
                    Store::Results,
                    format!(
                        "the result of trajectory {} is for {}, but {} was read there",
                        i + 1,
                        result.trajectory_id,
                        entry.id()
                    ),
                ));
            }
            session.set_result(i, result);
        }
        for (i, decision) in reviews {
            if i < session.len() {
                session.review.restore(i, decision);
            }
        }
        session.files = files;
        let len = session.len();
        let journal = Journal {
            record: SessionRecord {
                format: SCHEMA_VERSION,
                files: session.files.len(),
                trajectories: len,
                reviewed: session.review.len(),
                done: session
                    .entries
                    .iter()
                    .filter(|e| e.result.as_deref().is_some_and(settled))
                    .count(),
                ..record.clone()
            },
            files: session.files.len(),
            trajectories: len,
            results: BTreeSet::new(),
            reviews: BTreeSet::new(),
            cleared: false,
            next_exchange,
            sources: read
                .into_iter()
                .map(|(source, end)| Kept {
                    source,
                    end: Some(end.unwrap_or(len)),
                    written: true,
                })
                .collect(),
            forget: Vec::new(),
            counted: len,
        };
        Ok(Restored {
            record,
            session,
            exchanges,
            journal,
        })
    }
}

/// Rebuilds a saved session, reading its kept files with `read` (the file and how many
/// trajectories to take; it may give more, which are left out).
pub fn rebuild_with(
    parts: StoredParts,
    mut read: impl FnMut(&Source, usize) -> Result<Vec<crate::reader::Record>, String>,
) -> Result<Restored, PersistError> {
    let mut saved = Saved::open(parts)?;
    while let Some((source, count)) = saved.next_file()? {
        let records = read(&source, count)
            .map_err(|e| corrupt(Store::Sources, format!("{}: {e}", source.name)))?;
        saved
            .session_mut()
            .restore_records(records.into_iter().take(count));
    }
    saved.finish()
}

/// Rebuilds a saved session that keeps no file (its trajectories stored one by one).
pub fn rebuild(parts: StoredParts) -> Result<Restored, PersistError> {
    rebuild_with(parts, |_, _| Err("the file is not at hand".into()))
}

/// The saved session to offer when the page opens: the most recently saved one that this
/// version reads, other than `except` (the page's own), with how many others there are
/// (readable or not, `except` left out).
pub fn latest(records: &[String], except: Option<&str>) -> (Option<SessionRecord>, usize) {
    let records: Vec<&String> = records
        .iter()
        .filter(|r| except.is_none() || record_id(r).as_deref() != except)
        .collect();
    let mut readable: Vec<SessionRecord> = records
        .iter()
        .filter_map(|r| SessionRecord::from_json(r).ok())
        .collect();
    readable.sort_by(|a, b| a.saved_ms.total_cmp(&b.saved_ms));
    let latest = readable.pop();
    let others = records.len() - usize::from(latest.is_some());
    (latest, others)
}

/// The id of a session record of any format.
pub fn record_id(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_str::<Id>(text).ok().map(|r| r.id)
}

/// A new session id: the time and a random-looking suffix, unique enough for one browser.
pub fn session_id(now_ms: f64, salt: u64) -> String {
    format!("s{:013}-{:08x}", now_ms.max(0.0) as u64, salt & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::testing::ScriptedClient;
    use crate::llm::{ChatError, ChatRequest, ChatResponse, Templates, Usage};
    use crate::pipeline::{run, Mode, Settings};
    use crate::reader::read_all;
    use crate::stages::detect::rules::Lexicon;
    use futures::executor::block_on;

    /// IndexedDB as far as this layout uses it: ordered keys, prefix deletions, transactions
    /// applied whole.
    #[derive(Default)]
    struct MemoryDb(BTreeMap<(Store, Key), Value>);

    impl MemoryDb {
        fn apply(&mut self, batch: &Batch) {
            for d in &batch.deletes {
                self.0.retain(|(store, key), _| {
                    !(*store == d.store
                        && key.session == d.key.session
                        && key.path.starts_with(&d.key.path))
                });
            }
            for p in &batch.puts {
                self.0.insert((p.store, p.key.clone()), p.value.clone());
            }
        }

        fn records(&self, store: Store, id: &str) -> Vec<(Vec<u32>, String)> {
            self.0
                .iter()
                .filter(|((s, k), _)| *s == store && k.session == id)
                .filter_map(|((_, k), v)| Some((k.path.clone(), v.text()?.to_owned())))
                .collect()
        }

        fn sources(&self, id: &str) -> Vec<Source> {
            self.0
                .iter()
                .filter(|((s, k), _)| *s == Store::Sources && k.session == id)
                .filter_map(|((_, k), v)| match v {
                    Value::Source(source) => {
                        assert_eq!(k.path, vec![source.first as u32]);
                        Some(source.clone())
                    }
                    Value::Text(_) => None,
                })
                .collect()
        }

        fn parts(&self, id: &str) -> StoredParts {
            StoredParts {
                record: self.records(Store::Sessions, id)[0].1.clone(),
                files: self.records(Store::Files, id),
                trajectories: self.records(Store::Trajectories, id),
                results: self.records(Store::Results, id),
                exchanges: self.records(Store::Exchanges, id),
                reviews: self.records(Store::Reviews, id),
                sources: self.sources(id),
            }
        }

        /// Writes everything `journal` is behind on.
        fn sync(&mut self, journal: &mut Journal, session: &Session) -> usize {
            let mut batches = 0;
            loop {
                let batch = journal.batch(session, 1000.0 + batches as f64);
                self.apply(&batch);
                batches += 1;
                if !journal.behind(session) {
                    return batches;
                }
            }
        }
    }

    const OTHER: &str = concat!(
        r#"{"trajectory_id":"ex-shop-headphones","original_prompt":"Buy shoes under $50","steps":[{"thought":"search","action_name":"search","action_input":{"q":"shoes","n":12345678901234567890123,"w":-0.0},"observation":"Found Nike Pegasus for $89 and Adidas Run for $95"}],"failure_reason":"Price exceeds budget","metadata":{"reward":NaN,"best":Infinity,"list":[1,2.5,-Infinity],"ok":true}}"#,
        "\n",
        "not json\n",
        r#"{"trajectory_id":"b","original_prompt":"Get the weather","steps":[{"thought":"call","action_name":"weather","observation":"error: 503 service unavailable"}],"failure_reason":""}"#,
        "\n",
    );

    fn prefs() -> Prefs {
        Prefs {
            model: "m".into(),
            theta: 0.6,
            ..Prefs::default()
        }
    }

    fn loaded() -> Session {
        let mut s = Session::new(Lexicon::default(), prefs().delta);
        s.add_report(crate::example::load());
        s.add_report(read_all("other.jsonl", OTHER.as_bytes()));
        s
    }

    /// An endpoint that accepts some trajectories, garbles others and fails a few.
    fn endpoint() -> ScriptedClient {
        ScriptedClient::from_fn(|req: &ChatRequest| {
            let text: String = req.messages.iter().map(|m| m.content.as_str()).collect();
            let h = text.len() % 4;
            if text.contains("\"rejection_reason\"") || req.temperature == 0.0 {
                return Ok(r#"{"is_valid": true, "confidence": 0.8, "rejection_reason": ""}"#.into());
            }
            match h {
                0 => Err(ChatError::Http {
                    status: 503,
                    message: "busy".into(),
                    retry_after_ms: Some(1500),
                }),
                1 => Ok("prose".into()),
                _ => Ok(format!(
                    r#"{{"hindsight_prompt": "Goal {h}", "is_valid_replay": true, "rationale": "r", "confidence": 0.{h}7}}"#
                )),
            }
        })
        .with_usage(Usage::new(11, 7))
    }

    fn ran() -> Session {
        let mut s = loaded();
        let settings = Settings {
            extraction: Mode::Rules,
            ..prefs().to_pipeline_settings()
        };
        s.run_all(&endpoint(), &settings);
        s
    }

    #[test]
    fn a_session_round_trips_exactly() {
        let session = ran();
        let statuses: BTreeSet<&str> = session
            .entries
            .iter()
            .filter_map(|e| e.result.as_ref().map(|r| r.outcome.status()))
            .collect();
        assert!(statuses.len() >= 3, "a mix of outcomes: {statuses:?}");
        assert!(session.rejected_count() > 0);
        assert!(session
            .entries
            .iter()
            .any(|e| e.id() == "ex-shop-headphones#2"));

        let mut db = MemoryDb::default();
        let mut journal = Journal::new("s1", 5.0, prefs(), true);
        for i in 0..session.len() {
            journal.result_changed(i);
        }
        db.sync(&mut journal, &session);
        let restored = rebuild(db.parts("s1")).unwrap();
        assert_eq!(restored.session, session);
        let record = &restored.record;
        assert_eq!(record.prefs, prefs());
        assert!(record.used_key);
        assert!(!record.used_judge_key);
        assert_eq!(record.created_ms, 5.0);
        assert_eq!(record.trajectories, session.len());
        assert_eq!(record.files, 2);
        assert_eq!(record.done, session.len() - session.to_run().len());
        assert_eq!(restored.journal, journal);

        // Which keys a run used is kept (never the keys), and a record written before the
        // second judge had a key of its own reads as not having used one.
        journal.set_prefs(prefs(), false, true);
        db.sync(&mut journal, &session);
        let record = rebuild(db.parts("s1")).unwrap().record;
        assert!(!record.used_key && record.used_judge_key);
        let older = record.to_json().replace(",\"used_judge_key\":true", "");
        assert!(!older.contains("used_judge_key"), "{older}");
        assert!(!SessionRecord::from_json(&older).unwrap().used_judge_key);

        // The odd numbers survived exactly.
        let t = &restored.session.entries[session.len() - 2].trajectory();
        assert!(Json::Object(t.metadata.clone()).to_string().contains("NaN"));
        let Json::Number(n) = t.steps[0].action_input.get("n").unwrap() else {
            panic!("a number")
        };
        assert_eq!(
            n,
            &crate::json::Number::Int("12345678901234567890123".into())
        );
    }

    #[test]
    fn tool_schemas_keep_numbers_serde_cannot_carry() {
        let mut session = ran();
        let tool = crate::json::parse(
            r#"{"type": "function", "function": {"name": "pick", "parameters": {"type": "object", "properties": {"n": {"type": "integer", "maximum": 123456789012345678901234567890, "default": 1.0, "scale": -Infinity}}}}}"#,
        )
        .unwrap();
        let plain =
            crate::json::parse(r#"{"type": "function", "function": {"name": "look"}}"#).unwrap();
        session.edit_trajectory(0, |t| {
            t.origin = Some(crate::model::Origin {
                format: "sharegpt".into(),
                tools: vec![plain, tool.clone()],
                ..Default::default()
            });
        });
        let mut db = MemoryDb::default();
        let mut journal = Journal::new("s1", 5.0, prefs(), true);
        db.sync(&mut journal, &session);
        let restored = rebuild(db.parts("s1")).unwrap().session;
        assert!(restored.entries[0].trajectory() == session.entries[0].trajectory());
        let t = restored.entries[0].trajectory();
        let tools = &t.origin.as_ref().unwrap().tools;
        assert_eq!(
            crate::json::python_dumps(&tools[1]),
            crate::json::python_dumps(&tool)
        );
        assert!(crate::json::python_dumps(&tools[1]).contains("123456789012345678901234567890"));
    }

    /// Files kept whole, by name, as the browser keeps them.
    type Files = BTreeMap<String, String>;

    /// Reads `text` into `session` as the page reads a file it keeps, telling `journal`;
    /// `stop` after that many trajectories (a page closed while the file was read).
    fn load_kept(
        session: &mut Session,
        journal: &mut Journal,
        files: &mut Files,
        name: &str,
        text: &str,
        stop: Option<usize>,
    ) {
        files.insert(name.into(), text.into());
        journal.source(Source {
            first: session.len(),
            name: name.into(),
            format: None,
        });
        let report = read_all(name, text.as_bytes());
        match stop {
            None => session.add_report(report),
            Some(n) => {
                for record in report.records.into_iter().take(n) {
                    session.add_trajectory(record.trajectory, record.source);
                }
                return;
            }
        }
        journal.source_read(session.len());
    }

    /// Reads the kept files back, as the page does.
    fn reading(
        files: &Files,
    ) -> impl FnMut(&Source, usize) -> Result<Vec<crate::reader::Record>, String> + '_ {
        |source, _| {
            let text = files.get(&source.name).ok_or("no such file")?;
            Ok(crate::reader::read_all_as(&source.name, text.as_bytes(), source.format).records)
        }
    }

    #[test]
    fn a_kept_file_is_read_again_to_restore_the_session() {
        let mut session = Session::new(Lexicon::default(), prefs().delta);
        let mut journal = Journal::new("s1", 5.0, prefs(), true);
        let mut files = Files::new();
        // The example stored one trajectory at a time, then a kept file whose first
        // trajectory has an id the example has too.
        session.add_report(crate::example::load());
        let example = session.len();
        load_kept(
            &mut session,
            &mut journal,
            &mut files,
            "other.jsonl",
            OTHER,
            None,
        );
        assert!(session
            .entries
            .iter()
            .any(|e| e.id() == "ex-shop-headphones#2"));
        let settings = Settings {
            extraction: Mode::Rules,
            ..prefs().to_pipeline_settings()
        };
        session.run_all(&endpoint(), &settings);
        for i in 0..session.len() {
            journal.result_changed(i);
        }
        journal.review_changed(example);

        let mut db = MemoryDb::default();
        db.sync(&mut journal, &session);
        assert_eq!(db.records(Store::Trajectories, "s1").len(), example);
        assert_eq!(
            db.sources("s1"),
            vec![Source {
                first: example,
                name: "other.jsonl".into(),
                format: None
            }]
        );
        let restored = rebuild_with(db.parts("s1"), reading(&files)).unwrap();
        assert_eq!(restored.session, session);
        assert_eq!(restored.record.trajectories, session.len());
        assert_eq!(restored.journal, journal);

        // Another kept file after a reload: kept after what was restored, read back in order.
        let mut session = restored.session;
        let mut journal = restored.journal;
        load_kept(
            &mut session,
            &mut journal,
            &mut files,
            "again.jsonl",
            OTHER,
            None,
        );
        assert!(session
            .entries
            .iter()
            .any(|e| e.id() == "ex-shop-headphones#3"));
        db.sync(&mut journal, &session);
        assert_eq!(db.sources("s1").len(), 2);
        assert_eq!(db.records(Store::Trajectories, "s1").len(), example);
        let again = rebuild_with(db.parts("s1"), reading(&files)).unwrap();
        assert_eq!(again.session, session);
        assert_eq!(again.journal, journal);

        // Without the files at hand, the session cannot be rebuilt, and says which file.
        let err = rebuild(db.parts("s1")).unwrap_err();
        assert!(matches!(
            err,
            PersistError::Corrupt {
                store: Store::Sources,
                ..
            }
        ));
        assert!(err.to_string().contains("other.jsonl"), "{err}");
    }

    #[test]
    fn a_file_read_only_in_part_is_restored_as_far_as_it_was_read() {
        let mut session = Session::new(Lexicon::default(), prefs().delta);
        let mut journal = Journal::new("s1", 5.0, prefs(), true);
        let mut files = Files::new();
        let text = crate::example::EXAMPLE_JSONL;
        load_kept(
            &mut session,
            &mut journal,
            &mut files,
            "big.jsonl",
            text,
            Some(3),
        );
        let mut db = MemoryDb::default();
        db.sync(&mut journal, &session);
        // The page was closed here: the whole file is kept, three trajectories were counted.
        let restored = rebuild_with(db.parts("s1"), reading(&files)).unwrap();
        assert_eq!(restored.session.len(), 3);
        assert_eq!(restored.session, session);
    }

    #[test]
    fn a_file_that_gave_no_trajectory_is_not_kept() {
        let mut session = Session::new(Lexicon::default(), prefs().delta);
        let mut journal = Journal::new("s1", 5.0, prefs(), true);
        let mut files = Files::new();
        let mut db = MemoryDb::default();
        load_kept(
            &mut session,
            &mut journal,
            &mut files,
            "one.jsonl",
            OTHER,
            None,
        );
        // Not records at all; saved while it was read, so its copy was written first.
        let first = session.len();
        journal.source(Source {
            first,
            name: "photo.jpg".into(),
            format: None,
        });
        db.sync(&mut journal, &session);
        assert_eq!(db.sources("s1").len(), 2);
        session.add_report(read_all("photo.jpg", b"\xff\xd8\xff\xe0 not text"));
        journal.source_read(session.len());
        // Another file that starts where it did, and one that gives nothing, never written.
        load_kept(
            &mut session,
            &mut journal,
            &mut files,
            "two.jsonl",
            OTHER,
            None,
        );
        load_kept(
            &mut session,
            &mut journal,
            &mut files,
            "empty.jsonl",
            "\n\n",
            None,
        );
        db.sync(&mut journal, &session);
        let kept: Vec<String> = db.sources("s1").into_iter().map(|s| s.name).collect();
        assert_eq!(kept, ["one.jsonl", "two.jsonl"]);
        assert_eq!(
            db.records(Store::Files, "s1").len(),
            4,
            "every file's summary"
        );
        let restored = rebuild_with(db.parts("s1"), reading(&files)).unwrap();
        assert_eq!(restored.session, session);
        assert_eq!(restored.journal, journal);
    }

    #[test]
    fn a_kept_file_that_reads_differently_is_refused_or_cut_short() {
        let mut session = Session::new(Lexicon::default(), prefs().delta);
        let mut journal = Journal::new("s1", 5.0, prefs(), true);
        let mut files = Files::new();
        load_kept(
            &mut session,
            &mut journal,
            &mut files,
            "other.jsonl",
            OTHER,
            None,
        );
        session.add_report(read_all("page.jsonl", OTHER.as_bytes()));
        let settings = Settings {
            extraction: Mode::Rules,
            ..prefs().to_pipeline_settings()
        };
        session.run_all(&endpoint(), &settings);
        for i in 0..session.len() {
            journal.result_changed(i);
        }
        let mut db = MemoryDb::default();
        db.sync(&mut journal, &session);
        assert_eq!(db.records(Store::Trajectories, "s1").len(), 2);

        // Other trajectories at the same places: their results are not put on them.
        let mut swapped = files.clone();
        let lines: Vec<&str> = OTHER.lines().collect();
        swapped.insert(
            "other.jsonl".into(),
            format!("{}\n{}\n", lines[2], lines[0]),
        );
        let err = rebuild_with(db.parts("s1"), reading(&swapped)).unwrap_err();
        assert!(
            matches!(
                err,
                PersistError::Corrupt {
                    store: Store::Results,
                    ..
                }
            ),
            "{err}"
        );

        // Fewer: the session ends where the file does, and nothing after it is put back.
        let mut shorter = files.clone();
        shorter.insert("other.jsonl".into(), format!("{}\n", lines[0]));
        let restored = rebuild_with(db.parts("s1"), reading(&shorter)).unwrap();
        assert_eq!(restored.session.len(), 1);
        assert_eq!(restored.session.entries[..], session.entries[..1]);
        assert_eq!(restored.record.trajectories, session.len());
        assert_eq!(restored.journal.record().trajectories, 1);
    }

    #[test]
    fn no_api_key_is_ever_stored() {
        let mut journal = Journal::new("s1", 5.0, prefs(), true);
        let batch = journal.batch(&ran(), 6.0);
        for put in &batch.puts {
            let text = put.value.text().unwrap();
            assert!(!text.contains("api_key"), "{text}");
        }
    }

    #[test]
    fn batches_stay_small_and_files_follow_their_trajectories() {
        let mut s = Session::new(Lexicon::default(), 0.3);
        let line = r#"{"trajectory_id":"t","original_prompt":"p","steps":[{"thought":"t","action_name":"a","observation":"o"}],"failure_reason":"r"}"#;
        let text = format!("{line}\n").repeat(BATCH_RECORDS * 2 + 10);
        s.add_report(read_all("big.jsonl", text.as_bytes()));
        let mut db = MemoryDb::default();
        let mut journal = Journal::new("s", 0.0, Prefs::default(), false);
        let first = journal.batch(&s, 1.0);
        assert_eq!(
            first.puts.len(),
            BATCH_RECORDS + 1,
            "trajectories and the record"
        );
        assert_eq!(first.stores(), vec![Store::Sessions, Store::Trajectories]);
        db.apply(&first);
        assert_eq!(db.sync(&mut journal, &s), 2);
        assert_eq!(db.records(Store::Files, "s").len(), 1);
        let restored = rebuild(db.parts("s")).unwrap();
        assert_eq!(restored.session, s);
        assert_eq!(
            restored.session.entries.last().unwrap().id(),
            format!("t#{}", BATCH_RECORDS * 2 + 10)
        );
        // Nothing new: only the record.
        let again = journal.batch(&s, 2.0);
        assert_eq!(again.puts.len(), 1);
        assert!(again.deletes.is_empty());
    }

    #[test]
    fn results_are_written_as_they_change_and_cleared_with_the_exchanges() {
        let session = ran();
        let mut db = MemoryDb::default();
        let mut journal = Journal::new("s", 0.0, prefs(), false);
        let mut bare = session.clone();
        bare.clear_results();
        db.sync(&mut journal, &bare);
        assert!(db.records(Store::Results, "s").is_empty());
        journal.result_changed(3);
        db.sync(&mut journal, &session);
        assert_eq!(db.records(Store::Results, "s").len(), 1);
        let exchange = |key: &str| Exchange {
            key: key.into(),
            response: ChatResponse::from_text(format!("reply {key}"), Usage::new(1, 2)),
        };
        db.apply(&journal.exchanges(&[exchange("b"), exchange("a")]));
        db.apply(&journal.exchanges(&[exchange("c")]));
        assert_eq!(db.records(Store::Exchanges, "s").len(), 3);
        let restored = rebuild(db.parts("s")).unwrap();
        assert_eq!(
            restored.exchanges,
            vec![exchange("b"), exchange("a"), exchange("c")],
            "in the order saved"
        );
        // A restored journal saves later exchanges after those.
        let mut again = restored.journal;
        db.apply(&again.exchanges(&[exchange("d")]));
        assert_eq!(rebuild(db.parts("s")).unwrap().exchanges.len(), 4);

        journal.results_cleared();
        assert!(journal.behind(&bare));
        db.sync(&mut journal, &bare);
        assert!(db.records(Store::Results, "s").is_empty());
        assert!(db.records(Store::Exchanges, "s").is_empty());
        assert_eq!(rebuild(db.parts("s")).unwrap().session, bare);
    }

    /// An endpoint whose replies depend on how often it has seen a prompt, as a sampling
    /// model's do: the first two relabel replies of a prompt are prose, later ones valid.
    fn stateful_endpoint() -> ScriptedClient {
        let seen = std::cell::RefCell::new(std::collections::HashMap::<String, usize>::new());
        ScriptedClient::from_fn(move |req: &ChatRequest| {
            let text: String = req.messages.iter().map(|m| m.content.as_str()).collect();
            let n = {
                let mut seen = seen.borrow_mut();
                let slot = seen.entry(text.clone()).or_insert(0);
                *slot += 1;
                *slot
            };
            let name = match &req.response_format {
                Some(crate::llm::ResponseFormat::JsonSchema { name, .. }) => name.as_str(),
                _ => "",
            };
            Ok(match name {
                "extracted_outcome" => r#"{"actual_achievements": ["Step 1: found what was asked"], "key_observations": ["a price"], "limitations": "not all of it"}"#.to_owned(),
                "relabel_reply" if n <= 2 => "Here is a goal: find it.".to_owned(),
                "relabel_reply" => format!(r#"{{"hindsight_prompt": "Find it, take {n}", "is_valid_replay": true, "rationale": "found", "confidence": 0.9}}"#),
                "judge_reply" => r#"{"is_valid": true, "confidence": 0.8, "rejection_reason": ""}"#.to_owned(),
                other => format!("unexpected call {other}"),
            })
        })
    }

    /// Answers `limit` calls through `inner`, then cancels every later one (a reload).
    struct CutOff<'a> {
        inner: &'a ScriptedClient,
        limit: usize,
        calls: std::cell::Cell<usize>,
    }

    impl crate::llm::ChatClient for CutOff<'_> {
        async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
            self.calls.set(self.calls.get() + 1);
            if self.calls.get() > self.limit {
                return Err(ChatError::Cancelled);
            }
            self.inner.complete(request).await
        }
    }

    /// Runs the trajectories `indexes` of `session` through `client`, recording the results.
    fn run_over<C: crate::llm::ChatClient>(client: &C, session: &mut Session, indexes: &[usize]) {
        let settings = Settings {
            extraction: Mode::Llm,
            concurrency: 2,
            ..prefs().to_pipeline_settings()
        };
        let trajectories: Vec<_> = indexes
            .iter()
            .map(|i| session.entries[*i].trajectory())
            .collect();
        let mut results = Vec::new();
        block_on(run(
            client,
            &Templates::defaults(),
            &settings,
            &Lexicon::default(),
            &trajectories,
            |j, r| results.push((indexes[j], r)),
        ));
        for (i, r) in results {
            session.set_result(i, r);
        }
    }

    /// A result as JSON, without whether its calls were answered from the log.
    fn sent_or_not(result: &TrajectoryResult) -> serde_json::Value {
        fn strip(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(o) => {
                    o.remove("from_log");
                    o.values_mut().for_each(strip);
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
                _ => {}
            }
        }
        let mut v = serde_json::to_value(result).unwrap();
        strip(&mut v);
        v
    }

    fn sorted_requests(client: &ScriptedClient) -> Vec<String> {
        let mut all: Vec<String> = client.requests().iter().map(|r| r.to_json()).collect();
        all.sort();
        all
    }

    #[test]
    fn a_run_cut_off_anywhere_resumes_from_storage_to_the_uninterrupted_results() {
        use crate::llm::{CachingClient, ExchangeLog};
        const BASE: &str = "http://h/v1";
        let mut expected = loaded();
        let endpoint = stateful_endpoint();
        let all: Vec<usize> = expected.to_run();
        run_over(
            &CachingClient::new(&endpoint, ExchangeLog::new(), BASE),
            &mut expected,
            &all,
        );
        let calls = sorted_requests(&endpoint);
        assert!(calls.len() > 40, "{}", calls.len());
        assert!(expected
            .entries
            .iter()
            .any(|e| e.result.as_ref().is_some_and(|r| r.outcome.is_accepted())));

        for cut in (0..calls.len()).step_by(7) {
            // The first page: cut off after `cut` answers, saving as it goes.
            let endpoint = stateful_endpoint();
            let mut session = loaded();
            let mut db = MemoryDb::default();
            let mut journal = Journal::new("s", 0.0, prefs(), false);
            let log = ExchangeLog::new();
            let first = CutOff {
                inner: &endpoint,
                limit: cut,
                calls: std::cell::Cell::new(0),
            };
            run_over(
                &CachingClient::new(&first, log.clone(), BASE),
                &mut session,
                &all,
            );
            db.apply(&journal.exchanges(&log.take_new()));
            for i in 0..session.len() {
                journal.result_changed(i);
            }
            db.sync(&mut journal, &session);

            // The page after the reload: the session and the log from storage.
            let restored = rebuild(db.parts("s")).unwrap();
            assert_eq!(restored.session, session);
            assert_eq!(restored.exchanges.len(), cut);
            let log = ExchangeLog::new();
            log.insert_loaded(restored.exchanges);
            let mut resumed = restored.session;
            let rest = resumed.to_run();
            run_over(
                &CachingClient::new(&endpoint, log, BASE),
                &mut resumed,
                &rest,
            );

            for (a, b) in resumed.entries.iter().zip(&expected.entries) {
                assert_eq!(
                    a.result.as_deref().map(sent_or_not),
                    b.result.as_deref().map(sent_or_not),
                    "cut after {cut}: {}",
                    a.id()
                );
            }
            assert_eq!(
                sorted_requests(&endpoint),
                calls,
                "cut after {cut}: every call once"
            );
        }
    }

    #[test]
    fn deleting_a_session_leaves_the_others() {
        let session = loaded();
        let mut db = MemoryDb::default();
        let mut a = Journal::new("a", 0.0, prefs(), false);
        let mut b = Journal::new("b", 1.0, prefs(), false);
        db.sync(&mut a, &session);
        db.sync(&mut b, &session);
        db.apply(&a.delete());
        assert!(db.0.keys().all(|(_, k)| k.session == "b"));
        assert_eq!(rebuild(db.parts("b")).unwrap().session, session);
    }

    #[test]
    fn other_formats_and_broken_records_are_refused() {
        let session = loaded();
        let mut db = MemoryDb::default();
        let mut journal = Journal::new("s", 0.0, prefs(), false);
        db.sync(&mut journal, &session);

        let mut parts = db.parts("s");
        parts.record = parts
            .record
            .replace(&format!("\"format\":{SCHEMA_VERSION}"), "\"format\":99");
        assert_eq!(
            rebuild(parts).unwrap_err(),
            PersistError::Version { found: 99 }
        );
        let mut parts = db.parts("s");
        parts.trajectories[2].1 = "{".into();
        let err = rebuild(parts).unwrap_err();
        assert!(matches!(
            err,
            PersistError::Corrupt {
                store: Store::Trajectories,
                ..
            }
        ));
        assert!(err.to_string().contains("trajectories"), "{err}");
        // A missing trajectory ends the session there.
        let mut parts = db.parts("s");
        parts.trajectories.remove(5);
        let restored = rebuild(parts).unwrap();
        assert_eq!(restored.session.len(), 5);
        assert_eq!(restored.session.entries[..], session.entries[..5]);
    }

    #[test]
    fn the_latest_readable_session_is_offered() {
        let record = |id: &str, saved_ms: f64, format: u32| {
            let mut j = Journal::new(id, 0.0, Prefs::default(), false);
            let mut r = j
                .batch(&Session::default(), saved_ms)
                .puts
                .pop()
                .unwrap()
                .value
                .text()
                .unwrap()
                .to_owned();
            if format != SCHEMA_VERSION {
                r = r.replace(
                    &format!("\"format\":{SCHEMA_VERSION}"),
                    &format!("\"format\":{format}"),
                );
            }
            r
        };
        let records = vec![
            record("old", 10.0, 1),
            record("future", 30.0, SCHEMA_VERSION + 1),
            record("new", 20.0, SCHEMA_VERSION),
        ];
        let (first, others) = latest(&records, None);
        assert_eq!(first.unwrap().id, "new");
        assert_eq!(others, 2);
        let (first, others) = latest(&records, Some("new"));
        assert_eq!(first.unwrap().id, "old");
        assert_eq!(others, 1);
        assert_eq!(record_id(&records[1]).as_deref(), Some("future"));
        assert_eq!(latest(&[], None), (None, 0));
        assert_eq!(latest(&["junk".to_string()], Some("x")), (None, 1));
    }

    #[test]
    fn a_record_sums_itself_up() {
        let mut journal = Journal::new("s", 0.0, prefs(), false);
        let session = ran();
        for i in 0..session.len() {
            journal.result_changed(i);
        }
        journal.batch(&session, 1.0);
        let record = journal.record();
        assert_eq!(
            record.summary(),
            format!(
                "{} trajectories in 2 files, {} done",
                session.len(),
                session.len() - session.to_run().len()
            )
        );
        let one = SessionRecord {
            trajectories: 1,
            files: 1,
            done: 1,
            ..record.clone()
        };
        assert_eq!(one.summary(), "1 trajectory in 1 file, 1 done");
    }

    #[test]
    fn session_ids_sort_by_time() {
        let a = session_id(1_700_000_000_000.0, 0xdead_beef_1234);
        let b = session_id(1_700_000_000_001.0, 1);
        assert_eq!(a, "s1700000000000-beef1234");
        assert!(a < b);
    }

    #[test]
    fn review_decisions_are_saved_as_made_and_undone_ones_deleted() {
        use crate::review::Decision;
        let mut session = crate::review::tests::reviewed_session();
        let mut db = MemoryDb::default();
        let mut journal = Journal::new("s", 0.0, prefs(), false);
        for i in 0..session.len() {
            journal.result_changed(i);
        }
        db.sync(&mut journal, &session);
        let edit = Decision::edited("Compare two shoes", "List running shoes with prices").unwrap();
        for (i, d) in [
            (0, edit.clone()),
            (1, Decision::rejected("vague")),
            (2, Decision::Accepted),
        ] {
            session.decide(i, Some(d));
            journal.review_changed(i);
        }
        db.sync(&mut journal, &session);
        assert_eq!(db.records(Store::Reviews, "s").len(), 3);
        assert_eq!(journal.record().reviewed, 3);
        assert!(journal.record().summary().ends_with(", 3 reviewed"));
        // Undo deletes the stored decision.
        assert_eq!(session.review.undo(), Some(vec![2]));
        journal.review_changed(2);
        db.sync(&mut journal, &session);
        let restored = rebuild(db.parts("s")).unwrap();
        let decisions: Vec<_> = restored
            .session
            .review
            .iter()
            .map(|(i, d)| (i, d.clone()))
            .collect();
        assert_eq!(decisions, vec![(0, edit), (1, Decision::rejected("vague"))]);
        assert!(
            !restored.session.review.can_undo(),
            "the history is not stored"
        );
        assert_eq!(restored.session.goal(0), Some("Compare two shoes"));
        assert_eq!(restored.journal.record().reviewed, 2);
        // Reset results keeps the decisions, which a run never touches.
        journal.results_cleared();
        session.clear_results();
        db.sync(&mut journal, &session);
        assert_eq!(db.records(Store::Reviews, "s").len(), 2);
        // A broken decision is reported with its store.
        let mut parts = db.parts("s");
        parts.reviews[0].1 = r#"{"decision":"maybe"}"#.into();
        let err = rebuild(parts).unwrap_err();
        assert!(err.to_string().contains("reviews"), "{err}");
    }

    #[test]
    fn a_session_saved_at_format_1_still_opens_and_is_saved_at_the_current_format() {
        let session = ran();
        let mut db = MemoryDb::default();
        let mut journal = Journal::new("old", 5.0, prefs(), false);
        for i in 0..session.len() {
            journal.result_changed(i);
        }
        db.sync(&mut journal, &session);
        // What format 1 wrote: the record without `reviewed`, no reviews store.
        let mut parts = db.parts("old");
        let mut record: serde_json::Value = serde_json::from_str(&parts.record).unwrap();
        record["format"] = 1.into();
        record.as_object_mut().unwrap().remove("reviewed");
        parts.record = record.to_string();
        assert!(parts.reviews.is_empty());
        assert_eq!(
            latest(std::slice::from_ref(&parts.record), None)
                .0
                .unwrap()
                .id,
            "old"
        );
        let restored = rebuild(parts).unwrap();
        assert_eq!(restored.record.format, 1);
        assert_eq!(restored.session, session);
        let mut journal = restored.journal;
        let batch = journal.batch(&restored.session, 9.0);
        let written =
            SessionRecord::from_json(batch.puts.last().unwrap().value.text().unwrap()).unwrap();
        assert_eq!((written.format, written.reviewed), (SCHEMA_VERSION, 0));
    }
}
