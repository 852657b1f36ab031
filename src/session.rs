//! A working session: the files a user loaded, every trajectory with what the free rule-based
//! stages say of it, and the pipeline's results as they arrive. The UI keeps one of these and
//! only displays it; everything here is plain data, testable on the host.

use crate::model::{FailureType, Trajectory};
use crate::packed::{pack, Packed, Packer};
use crate::pipeline::{rule_view, Outcome, RuleView, Totals, TrajectoryResult};
use crate::reader::{FileSummary, ReadEvent, ReadReport, Record, Rejected, SourcePos};
use crate::review::{DecisionKind, Review, ReviewState};
use crate::stages::detect::rules::Lexicon;
use crate::wire::Item;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One loaded file: its summary and the records it rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadedFile {
    pub summary: FileSummary,
    pub rejected: Vec<Rejected>,
}

/// One trajectory of the session, kept packed ([`crate::packed`]): its id, goal, verdicts and
/// rule-based analysis at hand, the rest opened when asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub packed: Packed,
    pub source: SourcePos,
    /// The pipeline's result, once the trajectory has been run (boxed: most entries have
    /// none, and the session holds many entries).
    pub result: Option<Box<TrajectoryResult>>,
    /// Which trajectory with the same id as read this is: 1 for the first, n for the one
    /// renamed `id#n`.
    pub occurrence: usize,
}

impl Entry {
    /// The trajectory's id in the session (`id#n` for the n-th with the same id).
    pub fn id(&self) -> &str {
        &self.packed.id
    }

    /// The original goal.
    pub fn goal(&self) -> &str {
        &self.packed.goal
    }

    /// Whether the source marked the run as a success.
    pub fn succeeded(&self) -> bool {
        self.packed.succeeded
    }

    /// The source gave no verdict.
    pub fn verdict_unknown(&self) -> bool {
        self.packed.verdict_unknown
    }

    /// The rule-based Stage 1 analysis (computed when the trajectory was loaded).
    pub fn rule_analysis(&self) -> &crate::model::FailureAnalysis {
        &self.packed.analysis
    }

    /// Why the gates would drop it under rule-based detection, if they would.
    pub fn skip_reason(&self) -> Option<&str> {
        self.packed.skip_reason.as_deref()
    }

    /// The import format the trajectory names (`origin.format`), if any.
    pub fn import_format(&self) -> Option<String> {
        self.packed.import_format()
    }

    /// The whole trajectory, opened from its block.
    pub fn trajectory(&self) -> Trajectory {
        self.packed.trajectory()
    }

    /// The whole rule-based view: Stages 1 and 2 and the gates.
    pub fn rules(&self) -> RuleView {
        self.packed.rules()
    }
}

/// Where a trajectory stands, for filtering and display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not run yet; the rule-based gates would let it through.
    Pending,
    /// Not run yet; the rule-based gates would skip it.
    WillSkip,
    Accepted,
    Skipped,
    Rejected,
    Failed,
    Cancelled,
    /// The source marks the run as successful: kept apart, never run.
    Success,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Pending,
        Status::WillSkip,
        Status::Accepted,
        Status::Skipped,
        Status::Rejected,
        Status::Failed,
        Status::Cancelled,
        Status::Success,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::WillSkip => "will skip",
            Status::Accepted => "accepted",
            Status::Skipped => "skipped",
            Status::Rejected => "rejected",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Success => "success",
        }
    }

    fn of(outcome: &Outcome) -> Status {
        match outcome {
            Outcome::Accepted { .. } => Status::Accepted,
            Outcome::Skipped { .. } => Status::Skipped,
            Outcome::Rejected { .. } => Status::Rejected,
            Outcome::Failed { .. } => Status::Failed,
            Outcome::Cancelled { .. } => Status::Cancelled,
        }
    }
}

/// The reason shown for a success.
pub const SUCCESS_REASON: &str =
    "the source marks this run as successful: kept apart, not relabeled";

/// A row of the results table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub index: usize,
    pub trajectory_id: String,
    pub file: String,
    pub line: usize,
    pub failure_type: Option<FailureType>,
    pub severity: f64,
    pub weight: f64,
    pub recoverable: bool,
    pub status: Status,
    /// Why it stands where it does ("" for pending trajectories).
    pub reason: String,
    pub hindsight_prompt: Option<String>,
    pub confidence: Option<f64>,
    pub relabel_confidence: Option<f64>,
    pub judge_confidence: Option<f64>,
    /// "relabeler + judge" or "single judge" for accepted trajectories.
    pub judges: Option<&'static str>,
    /// The goal the run failed.
    pub original_prompt: String,
    /// What review decided, for an accepted trajectory.
    pub review: Option<DecisionKind>,
    /// The reviewer's goal, when the model's was edited.
    pub edited_goal: Option<String>,
    /// The source gives no verdict: the run is taken for a failure without the source saying
    /// so.
    pub verdict_unknown: bool,
}

/// What the table shows. `None` fields match everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub status: Option<Status>,
    /// `Some(None)` matches trajectories without a failure type.
    pub failure_type: Option<Option<FailureType>>,
    /// Case-insensitive substring of the id, the original prompt, the hindsight prompt or the
    /// reviewer's goal.
    pub text: String,
    /// The file the trajectory was read from.
    pub file: Option<String>,
    /// Accepted trajectories in this review state (the others never match).
    pub review: Option<ReviewState>,
    /// Accepted by the single-judge fallback only.
    pub fallback: bool,
    /// Accepted with a confidence ((c + c2) / 2, or c for a fallback) below this.
    pub confidence_below: Option<f64>,
    /// A chart's bar: a step of the funnel or a range of a confidence.
    pub pick: Option<crate::charts::Pick>,
}

impl Filter {
    /// Whether it filters nothing out (what "Clear filters" leaves).
    pub fn is_cleared(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether it looks only at accepted trajectories.
    fn needs_acceptance(&self) -> bool {
        self.review.is_some() || self.fallback || self.confidence_below.is_some()
    }
}

/// How many rows each choice of a filter would show given the other filters
/// ([`Session::facets`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facets {
    /// Every status, in [`Status::ALL`] order.
    pub status: Vec<(Status, usize)>,
    /// Every failure type in taxonomy order, then no type (`None`).
    pub failure_type: Vec<(Option<FailureType>, usize)>,
    /// Every loaded file, in load order.
    pub file: Vec<(String, usize)>,
}

impl Facets {
    /// The count of one choice (0 when it is not listed).
    pub fn count<K: PartialEq>(choices: &[(K, usize)], key: &K) -> usize {
        choices
            .iter()
            .find(|(k, _)| k == key)
            .map_or(0, |(_, n)| *n)
    }

    /// What "all" shows: the sum over a facet's choices.
    pub fn total<K>(choices: &[(K, usize)]) -> usize {
        choices.iter().map(|(_, n)| n).sum()
    }
}

/// A column the results table sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    Id,
    File,
    FailureType,
    Severity,
    Status,
    OriginalGoal,
    HindsightGoal,
    Confidence,
    Review,
}

impl SortKey {
    pub const ALL: [SortKey; 9] = [
        SortKey::Id,
        SortKey::File,
        SortKey::FailureType,
        SortKey::Severity,
        SortKey::Status,
        SortKey::OriginalGoal,
        SortKey::HindsightGoal,
        SortKey::Confidence,
        SortKey::Review,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Id => "id",
            SortKey::File => "file",
            SortKey::FailureType => "type",
            SortKey::Severity => "severity",
            SortKey::Status => "status",
            SortKey::OriginalGoal => "original",
            SortKey::HindsightGoal => "hindsight",
            SortKey::Confidence => "confidence",
            SortKey::Review => "review",
        }
    }
}

/// An order of the table: a column and its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

/// The session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Session {
    pub files: Vec<LoadedFile>,
    pub entries: Vec<Entry>,
    /// What review decided, by entry index: never changed by a run.
    pub review: Review,
    lexicon: Lexicon,
    delta: f64,
    id_counts: HashMap<String, usize>,
    /// The source files of the entries, in the order they first appear, and each entry's
    /// among them: the views count by file without comparing a file name per entry.
    file_names: Vec<String>,
    entry_files: Vec<usize>,
}

impl Session {
    /// An empty session whose rule views use `lexicon` and the gate δ.
    pub fn new(lexicon: Lexicon, delta: f64) -> Self {
        Session {
            lexicon,
            delta,
            ..Session::default()
        }
    }

    /// Adds a whole file's report.
    pub fn add_report(&mut self, report: ReadReport) {
        let mut events: Vec<ReadEvent> =
            report.records.into_iter().map(ReadEvent::Record).collect();
        events.extend(report.rejected.into_iter().map(ReadEvent::Rejected));
        self.add_file_events(report.summary, events);
    }

    /// Adds a file read incrementally: its summary and the events the reader produced.
    pub fn add_file_events(&mut self, summary: FileSummary, events: Vec<ReadEvent>) {
        let mut rejected = Vec::new();
        self.add_events(events, &mut rejected);
        self.add_file(summary, rejected);
    }

    /// Adds the trajectories among `events` as they arrive, collecting the rejections into
    /// `rejected` for [`Session::add_file`] once the file is read.
    pub fn add_events(
        &mut self,
        events: impl IntoIterator<Item = ReadEvent>,
        rejected: &mut Vec<Rejected>,
    ) {
        let mut packer = Packer::new();
        let mut records = Vec::new();
        for event in events {
            match event {
                ReadEvent::Record(record) => {
                    let (trajectory, occurrence) = self.name(record.trajectory);
                    let rules = rule_view(&trajectory, &self.lexicon, self.delta);
                    packer.push(&trajectory, rules);
                    records.push((record.source, occurrence));
                }
                ReadEvent::Rejected(r) => rejected.push(r),
            }
        }
        for (packed, (source, occurrence)) in packer.finish().into_iter().zip(records) {
            self.push_packed(packed, source, occurrence, None);
        }
    }

    /// Adds what a background reader found, as [`Session::add_events`] does. Records come with
    /// their rule-based view, computed with `lexicon` and `delta`: kept when the session still
    /// uses those, computed again otherwise.
    pub fn add_items(
        &mut self,
        items: impl IntoIterator<Item = Item>,
        lexicon: &Lexicon,
        delta: f64,
        rejected: &mut Vec<Rejected>,
    ) {
        let current = *lexicon == self.lexicon && delta.to_bits() == self.delta.to_bits();
        for item in items {
            match item {
                Item::Record(packed, source) => self.add_packed(*packed, source, current),
                Item::Rejected(r) => rejected.push(r),
            }
        }
    }

    /// Adds a trajectory a background reader packed (its id not renamed yet), named as
    /// [`Session::add_trajectory`] names it, its rule view kept when `current` (computed with
    /// the session's lexicon and δ).
    fn add_packed(&mut self, mut packed: Packed, source: SourcePos, current: bool) {
        let occurrence = self.name_id(&mut packed.id);
        if !current {
            let trajectory = packed.trajectory();
            let rules = rule_view(&trajectory, &self.lexicon, self.delta);
            packed = pack(&trajectory, rules);
        }
        self.push_packed(packed, source, occurrence, None);
    }

    /// Records a file that has been read: its summary and its rejected records (listed in line
    /// order).
    pub fn add_file(&mut self, summary: FileSummary, mut rejected: Vec<Rejected>) {
        rejected.sort_by_key(|r| r.line);
        self.files.push(LoadedFile { summary, rejected });
    }

    /// Adds one trajectory. An id already in the session gets a `#2`, `#3`... suffix so that
    /// every sample names its source unambiguously.
    pub fn add_trajectory(&mut self, trajectory: Trajectory, source: SourcePos) {
        let (trajectory, occurrence) = self.name(trajectory);
        self.push_entry(trajectory, source, occurrence, None);
    }

    /// Counts the trajectory's id and renames it when it is taken: the trajectory and which
    /// occurrence of its id it is.
    fn name(&mut self, mut trajectory: Trajectory) -> (Trajectory, usize) {
        let occurrence = self.name_id(&mut trajectory.trajectory_id);
        (trajectory, occurrence)
    }

    /// Counts one more trajectory read with the id `id`, renaming it `id#n` when it is the
    /// n-th: which occurrence of it this is.
    fn name_id(&mut self, id: &mut String) -> usize {
        let count = match self.id_counts.get_mut(id.as_str()) {
            Some(count) => count,
            None => self.id_counts.entry(id.clone()).or_insert(0),
        };
        *count += 1;
        let occurrence = *count;
        if occurrence > 1 {
            *id = format!("{id}#{occurrence}");
        }
        occurrence
    }

    /// Puts back a trajectory saved from a session: its id already renamed as
    /// [`Session::add_trajectory`] did (`occurrence` says how), its result if it had one. Entries
    /// restored in their order give the session they were saved from, which goes on naming later
    /// duplicates the same way.
    pub fn restore_entry(
        &mut self,
        trajectory: Trajectory,
        source: SourcePos,
        occurrence: usize,
        result: Option<TrajectoryResult>,
    ) {
        let occurrence = occurrence.max(1);
        let id = &trajectory.trajectory_id;
        let suffix = format!("#{occurrence}");
        let base = match id.strip_suffix(&suffix) {
            Some(base) if occurrence > 1 => base,
            _ => id.as_str(),
        };
        let count = self.id_counts.entry(base.to_owned()).or_insert(0);
        *count = (*count).max(occurrence);
        self.push_entry(trajectory, source, occurrence, result);
    }

    /// Puts back trajectories read again from a kept file, as they were read (their ids not
    /// renamed yet): named as [`Session::add_trajectory`] names them, and packed together as a
    /// file's records are.
    pub fn restore_records(&mut self, records: impl IntoIterator<Item = Record>) {
        self.add_events(records.into_iter().map(ReadEvent::Record), &mut Vec::new());
    }

    fn push_entry(
        &mut self,
        trajectory: Trajectory,
        source: SourcePos,
        occurrence: usize,
        result: Option<TrajectoryResult>,
    ) {
        let rules = rule_view(&trajectory, &self.lexicon, self.delta);
        self.push_packed(pack(&trajectory, rules), source, occurrence, result);
    }

    fn push_packed(
        &mut self,
        packed: Packed,
        source: SourcePos,
        occurrence: usize,
        result: Option<TrajectoryResult>,
    ) {
        let file = match self.file_names.last() {
            Some(last) if *last == source.file => self.file_names.len() - 1,
            _ => match self.file_names.iter().position(|f| *f == source.file) {
                Some(k) => k,
                None => {
                    self.file_names.push(source.file.clone());
                    self.file_names.len() - 1
                }
            },
        };
        self.entry_files.push(file);
        self.entries.push(Entry {
            packed,
            source,
            result: result.map(Box::new),
            occurrence,
        });
    }

    /// Changes the trajectory of the entry at `index` with `edit` (its id stays the session's)
    /// and computes its rule view again.
    pub fn edit_trajectory(&mut self, index: usize, edit: impl FnOnce(&mut Trajectory)) {
        let Some(e) = self.entries.get_mut(index) else {
            return;
        };
        let mut trajectory = e.trajectory();
        edit(&mut trajectory);
        trajectory.trajectory_id = e.packed.id.clone();
        let rules = rule_view(&trajectory, &self.lexicon, self.delta);
        e.packed = pack(&trajectory, rules);
    }

    /// δ, the gate the rule views use.
    pub fn delta(&self) -> f64 {
        self.delta
    }

    /// Forgets everything loaded, and every review decision.
    pub fn clear(&mut self) {
        let (lexicon, delta) = (std::mem::take(&mut self.lexicon), self.delta);
        *self = Session::new(lexicon, delta);
    }

    /// The lexicon the rule views use.
    pub fn lexicon(&self) -> &Lexicon {
        &self.lexicon
    }

    /// Changes the lexicon and recomputes every rule view (results of runs stay as they are).
    pub fn set_lexicon(&mut self, lexicon: Lexicon) {
        if lexicon == self.lexicon {
            return;
        }
        self.lexicon = lexicon;
        let mut packer = Packer::new();
        for e in &self.entries {
            let trajectory = e.trajectory();
            packer.push(
                &trajectory,
                rule_view(&trajectory, &self.lexicon, self.delta),
            );
        }
        for (e, packed) in self.entries.iter_mut().zip(packer.finish()) {
            e.packed = packed;
        }
    }

    /// Changes δ and recomputes the rule views' gate verdicts.
    pub fn set_delta(&mut self, delta: f64) {
        if delta == self.delta {
            return;
        }
        self.delta = delta;
        for e in &mut self.entries {
            e.packed.skip_reason = crate::pipeline::gate(&e.packed.analysis, delta);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many records the loaded files rejected.
    pub fn rejected_count(&self) -> usize {
        self.files.iter().map(|f| f.rejected.len()).sum()
    }

    pub fn trajectories(&self) -> Vec<Trajectory> {
        self.entries.iter().map(Entry::trajectory).collect()
    }

    /// Records a result for the entry at `index`.
    pub fn set_result(&mut self, index: usize, result: TrajectoryResult) {
        if let Some(e) = self.entries.get_mut(index) {
            e.result = Some(Box::new(result));
        }
    }

    /// Drops the result of the entry at `index`: it is not run (a run put it back).
    pub fn clear_result(&mut self, index: usize) {
        if let Some(e) = self.entries.get_mut(index) {
            e.result = None;
        }
    }

    /// Drops every result (to run again from scratch).
    pub fn clear_results(&mut self) {
        for e in &mut self.entries {
            e.result = None;
        }
    }

    /// The runs the sources mark as successful, in load order: never run, not counted among
    /// the failures, available to exports as they are.
    pub fn successes(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.entries.iter().filter(|e| e.succeeded())
    }

    /// How many runs the sources mark as successful.
    pub fn success_count(&self) -> usize {
        self.successes().count()
    }

    /// The failed runs (everything but the successes), in load order.
    pub fn failures(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.entries.iter().filter(|e| !e.succeeded())
    }

    /// How many failed runs were loaded.
    pub fn failure_count(&self) -> usize {
        self.len() - self.success_count()
    }

    /// Indexes that a run should process: failures with no result yet, or whose last run
    /// failed or was cancelled. Successes are never run.
    pub fn to_run(&self) -> Vec<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.succeeded())
            .filter(|(_, e)| match &e.result {
                None => true,
                Some(r) => matches!(
                    r.outcome,
                    Outcome::Failed { .. } | Outcome::Cancelled { .. }
                ),
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Indexes of the entries that have a result, in load order.
    pub fn with_results(&self) -> Vec<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.result.is_some())
            .map(|(i, _)| i)
            .collect()
    }

    /// Indexes whose result ended in an error of the endpoint or of the way to it
    /// ([`TrajectoryResult::ended_in_call_error`]): what "Retry failed" runs again.
    pub fn retry_failed(&self) -> Vec<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.result.as_ref().is_some_and(|r| r.ended_in_call_error()))
            .map(|(i, _)| i)
            .collect()
    }

    /// Counts and usage over the results so far (successes have none).
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for r in self.failures().filter_map(|e| e.result.as_ref()) {
            totals.add(r);
        }
        totals
    }

    /// How many failed trajectories the rule-based stages classify under each failure type
    /// (`None`: no type), in taxonomy order, types with no trajectory left out. Successes are
    /// not counted.
    pub fn failure_type_counts(&self) -> Vec<(Option<FailureType>, usize)> {
        let mut counts: Vec<(Option<FailureType>, usize)> = FailureType::ALL
            .iter()
            .map(|t| (Some(*t), 0))
            .chain(std::iter::once((None, 0)))
            .collect();
        for e in self.failures() {
            let t = self.analysis(e).failure_type;
            if let Some(slot) = counts.iter_mut().find(|(k, _)| *k == t) {
                slot.1 += 1;
            }
        }
        counts.retain(|(_, n)| *n > 0);
        counts
    }

    /// The analysis to show for an entry: the run's when it ran, the rules' before.
    fn analysis<'a>(&self, e: &'a Entry) -> &'a crate::model::FailureAnalysis {
        e.result
            .as_ref()
            .and_then(|r| r.analysis.as_ref())
            .unwrap_or(e.rule_analysis())
    }

    /// The table row of the entry at `index`.
    pub fn row(&self, index: usize) -> Option<Row> {
        let e = self.entries.get(index)?;
        let analysis = self.analysis(e);
        let (status, reason) = match &e.result {
            _ if e.succeeded() => (Status::Success, SUCCESS_REASON.to_owned()),
            Some(r) => (Status::of(&r.outcome), r.outcome.reason()),
            None => match e.skip_reason() {
                Some(reason) => (Status::WillSkip, reason.to_owned()),
                None => (Status::Pending, String::new()),
            },
        };
        let relabel = e
            .result
            .as_ref()
            .and_then(|r| r.relabel.as_ref())
            .and_then(|r| r.relabel());
        let (relabel_confidence, judge_confidence, judges) =
            match e.result.as_ref().map(|r| &r.outcome) {
                Some(Outcome::Accepted {
                    relabel_confidence,
                    judge_confidence,
                    judges,
                    ..
                }) => (
                    Some(*relabel_confidence),
                    *judge_confidence,
                    Some(match judges {
                        crate::stages::relabel::Judges::RelabelerAndJudge => "relabeler + judge",
                        crate::stages::relabel::Judges::SingleJudgeFallback => "single judge",
                    }),
                ),
                _ => (None, None, None),
            };
        Some(Row {
            index,
            trajectory_id: e.id().to_owned(),
            file: e.source.file.clone(),
            line: e.source.line,
            failure_type: analysis.failure_type,
            severity: analysis.severity,
            weight: analysis.weight,
            recoverable: analysis.recoverable,
            status,
            reason,
            hindsight_prompt: relabel.map(|r| r.hindsight_prompt.clone()),
            confidence: relabel.map(|r| r.confidence),
            relabel_confidence,
            judge_confidence,
            judges,
            original_prompt: e.goal().to_owned(),
            review: self.decision(index).map(|d| d.kind()),
            edited_goal: self
                .decision(index)
                .and_then(|d| d.goal())
                .map(str::to_owned),
            verdict_unknown: e.verdict_unknown(),
        })
    }

    /// The rows that match `filter`, in load order.
    pub fn rows(&self, filter: &Filter) -> Vec<Row> {
        self.matching(filter)
            .into_iter()
            .filter_map(|i| self.row(i))
            .collect()
    }

    /// Where the entry at `index` stands (what its row's status says), without building the
    /// row.
    pub fn status(&self, index: usize) -> Option<Status> {
        let e = self.entries.get(index)?;
        Some(match &e.result {
            _ if e.succeeded() => Status::Success,
            Some(r) => Status::of(&r.outcome),
            None if e.skip_reason().is_some() => Status::WillSkip,
            None => Status::Pending,
        })
    }

    /// The indexes of the entries whose rows match `filter`, in load order. Only the status,
    /// type, file and review are looked at unless the filter has text, so a page of the table
    /// costs the rows it shows, not a row per entry.
    pub fn matching(&self, filter: &Filter) -> Vec<usize> {
        let needle = filter.text.trim().to_lowercase();
        (0..self.entries.len())
            .filter(|&i| {
                self.parts(i, filter) == [true; 3] && self.rest_matches(i, filter, &needle)
            })
            .collect()
    }

    /// Whether entry `i` passes the status, failure type and file parts of `filter`.
    fn parts(&self, i: usize, filter: &Filter) -> [bool; 3] {
        let e = &self.entries[i];
        [
            filter.status.is_none_or(|s| Some(s) == self.status(i)),
            filter
                .failure_type
                .is_none_or(|t| t == self.analysis(e).failure_type),
            filter.file.as_ref().is_none_or(|f| *f == e.source.file),
        ]
    }

    /// Whether entry `i` passes the parts of `filter` that are not a facet: the chart's bar,
    /// the review part and the text (`needle`, lowercased).
    fn rest_matches(&self, i: usize, filter: &Filter, needle: &str) -> bool {
        let e = &self.entries[i];
        let contains = |text: &str| text.to_lowercase().contains(needle);
        filter.pick.is_none_or(|p| p.holds(self, i))
            && (!filter.needs_acceptance() || self.accepted_matches(i, filter))
            && (needle.is_empty()
                || contains(e.id())
                || contains(e.goal())
                || e.result
                    .as_ref()
                    .and_then(|r| r.relabel.as_ref())
                    .and_then(|r| r.relabel())
                    .is_some_and(|r| contains(&r.hindsight_prompt))
                || self
                    .decision(i)
                    .and_then(|d| d.goal())
                    .is_some_and(contains))
    }

    /// How many rows each choice of the status, failure type and file filters would show,
    /// given the other filters of `filter` and `keep` (what a filter outside [`Filter`] lets
    /// through, such as the goal checks): faceted counts, in one pass over the entries.
    pub fn facets(&self, filter: &Filter, keep: impl Fn(usize) -> bool) -> Facets {
        let needle = filter.text.trim().to_lowercase();
        let mut status = [0usize; Status::ALL.len()];
        let mut types = [0usize; FailureType::ALL.len() + 1];
        let mut files: Vec<(String, usize)> = Vec::new();
        // The entries' files in the order they first appear (as `file_names` has them).
        let mut slots = vec![usize::MAX; self.file_names.len()];
        for (i, e) in self.entries.iter().enumerate() {
            let named = self.entry_files.get(i).copied();
            let slot = match named.and_then(|k| slots.get(k).map(|&slot| (k, slot))) {
                Some((_, slot)) if slot != usize::MAX => slot,
                Some((k, _)) => {
                    files.push((self.file_names[k].clone(), 0));
                    slots[k] = files.len() - 1;
                    files.len() - 1
                }
                None => match files.iter().position(|(f, _)| *f == e.source.file) {
                    Some(slot) => slot,
                    None => {
                        files.push((e.source.file.clone(), 0));
                        files.len() - 1
                    }
                },
            };
            let [s, t, f] = self.parts(i, filter);
            // Each facet counts the entries that pass every other part.
            if u8::from(s) + u8::from(t) + u8::from(f) < 2
                || !keep(i)
                || !self.rest_matches(i, filter, &needle)
            {
                continue;
            }
            if t && f {
                if let Some(st) = self.status(i) {
                    status[Status::ALL.iter().position(|x| *x == st).unwrap_or(0)] += 1;
                }
            }
            if s && f {
                let k = self
                    .analysis(e)
                    .failure_type
                    .and_then(|t| FailureType::ALL.iter().position(|x| *x == t))
                    .unwrap_or(FailureType::ALL.len());
                types[k] += 1;
            }
            if s && t {
                files[slot].1 += 1;
            }
        }
        Facets {
            status: Status::ALL.into_iter().zip(status).collect(),
            failure_type: FailureType::ALL
                .into_iter()
                .map(Some)
                .chain(std::iter::once(None))
                .zip(types)
                .collect(),
            file: files,
        }
    }

    /// The review part of `filter`, for entry `i`: accepted, and in the state it asks for.
    fn accepted_matches(&self, i: usize, filter: &Filter) -> bool {
        let Some(a) = self.accepted(i) else {
            return false;
        };
        filter
            .review
            .is_none_or(|state| state.matches(self.decision(i)))
            && (!filter.fallback || a.judges == crate::stages::relabel::Judges::SingleJudgeFallback)
            && filter.confidence_below.is_none_or(|x| a.confidence < x)
    }

    /// Orders `indexes` by `sort` (ties keep load order; rows without a value come last in
    /// either direction).
    pub fn sort(&self, indexes: &mut [usize], sort: Sort) {
        use std::cmp::Ordering;
        let text = |i: usize| -> Option<String> {
            let e = &self.entries[i];
            Some(match sort.key {
                SortKey::Id => e.id().to_owned(),
                SortKey::File => format!("{}\0{:012}", e.source.file, e.source.line),
                SortKey::FailureType => self.analysis(e).failure_type?.as_str().to_owned(),
                SortKey::Status => self.status(i)?.as_str().to_owned(),
                SortKey::OriginalGoal => e.goal().to_lowercase(),
                SortKey::HindsightGoal => self.goal(i)?.to_lowercase(),
                SortKey::Review => match self.decision(i) {
                    Some(d) => d.kind().as_str().to_owned(),
                    None if self.reviewable(i) => "unreviewed".to_owned(),
                    None => return None,
                },
                SortKey::Severity | SortKey::Confidence => return None,
            })
        };
        let number = |i: usize| -> Option<f64> {
            match sort.key {
                SortKey::Severity => Some(self.analysis(&self.entries[i]).weight),
                SortKey::Confidence => self.accepted(i).map(|a| a.confidence),
                _ => None,
            }
        };
        let numeric = matches!(sort.key, SortKey::Severity | SortKey::Confidence);
        let cmp = |a: &usize, b: &usize| -> Ordering {
            let order = if numeric {
                match (number(*a), number(*b)) {
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    (x, y) => return x.is_none().cmp(&y.is_none()),
                }
            } else {
                match (text(*a), text(*b)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (x, y) => return x.is_none().cmp(&y.is_none()),
                }
            };
            if sort.descending {
                order.reverse()
            } else {
                order
            }
        };
        indexes.sort_by(cmp);
    }
}

#[cfg(test)]
impl Session {
    /// Runs every trajectory through the pipeline with `client` and records the results.
    pub(crate) fn run_all<C: crate::llm::ChatClient>(
        &mut self,
        client: &C,
        settings: &crate::pipeline::Settings,
    ) {
        let trajectories = self.trajectories();
        let mut results = Vec::new();
        futures::executor::block_on(crate::pipeline::run(
            client,
            &crate::llm::Templates::defaults(),
            settings,
            &Lexicon::default(),
            &trajectories,
            |i, r| results.push((i, r)),
        ));
        for (i, r) in results {
            self.set_result(i, r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::read_all;

    const FILE: &str = concat!(
        r#"{"trajectory_id":"a","original_prompt":"Buy shoes under $50","steps":[{"thought":"search","action_name":"search","action_input":{"q":"shoes"},"observation":"Found Nike Pegasus for $89 and Adidas Run for $95"}],"failure_reason":"Price exceeds budget"}"#,
        "\n",
        r#"{"trajectory_id":"b","original_prompt":"Get the weather","steps":[{"thought":"call","action_name":"weather","observation":"error: 503 service unavailable"}],"failure_reason":""}"#,
        "\n",
        r#"{"trajectory_id":"a","original_prompt":"Buy socks","steps":[{"thought":"t","action_name":"search","observation":"Found wool socks for $12, cotton socks for $8"}],"failure_reason":"wrong colour"}"#,
        "\n",
        "not json\n"
    );

    fn session() -> Session {
        let mut s = Session::new(Lexicon::default(), 0.3);
        s.add_report(read_all("f.jsonl", FILE.as_bytes()));
        s
    }

    #[test]
    fn loading_keeps_every_record_and_reports_rejections() {
        let s = session();
        assert_eq!(s.len(), 3);
        assert_eq!(s.rejected_count(), 1);
        assert_eq!(s.files[0].rejected[0].line, 4);
        let ids: Vec<_> = s.entries.iter().map(|e| e.id()).collect();
        assert_eq!(ids, ["a", "b", "a#2"]);
    }

    #[test]
    fn the_file_facet_counts_each_file_once_in_the_order_files_first_appear() {
        let mut s = Session::new(Lexicon::default(), 0.3);
        s.add_report(read_all("b.jsonl", FILE.as_bytes()));
        s.add_report(read_all("a.jsonl", FILE.as_bytes()));
        // The same name again (a file loaded twice) counts with the first.
        s.add_report(read_all("b.jsonl", FILE.as_bytes()));
        let files = s.facets(&Filter::default(), |_| true).file;
        assert_eq!(files, vec![("b.jsonl".into(), 6), ("a.jsonl".into(), 3)]);
        // With another file chosen, each file still counts what it would show.
        let filter = Filter {
            file: Some("a.jsonl".into()),
            ..Filter::default()
        };
        assert_eq!(s.facets(&filter, |_| true).file, files);
        assert_eq!(Facets::total(&s.facets(&filter, |_| true).status), 3);
        // Only what `keep` lets through is counted; a file with nothing kept still shows.
        let kept = s.facets(&Filter::default(), |i| i < 3).file;
        assert_eq!(kept, vec![("b.jsonl".into(), 3), ("a.jsonl".into(), 0)]);
        s.clear();
        assert!(s.facets(&Filter::default(), |_| true).file.is_empty());
    }

    /// What a background reader sends for FILE: its records with rule views computed with
    /// `lexicon`, and its rejections.
    fn items(lexicon: &Lexicon) -> (Vec<Item>, FileSummary) {
        let report = read_all("f.jsonl", FILE.as_bytes());
        let mut items: Vec<Item> = report
            .records
            .into_iter()
            .map(|r| {
                let rules = rule_view(&r.trajectory, lexicon, 0.3);
                Item::Record(Box::new(pack(&r.trajectory, rules)), r.source)
            })
            .collect();
        items.extend(report.rejected.into_iter().map(Item::Rejected));
        (items, report.summary)
    }

    #[test]
    fn items_from_a_background_reader_make_the_same_session() {
        let (items, summary) = items(&Lexicon::default());
        let mut s = Session::new(Lexicon::default(), 0.3);
        let mut rejected = Vec::new();
        s.add_items(items, &Lexicon::default(), 0.3, &mut rejected);
        s.add_file(summary, rejected);
        assert_eq!(s, session());
        assert_eq!(s.entries[2].id(), "a#2");
    }

    #[test]
    fn rule_views_made_with_another_lexicon_are_made_again() {
        // The views were computed with an empty lexicon: no keyword hits anywhere.
        let empty = Lexicon {
            entries: Vec::new(),
            ..Lexicon::default()
        };
        let (items, summary) = items(&empty);
        let mut s = Session::new(Lexicon::default(), 0.3);
        let mut rejected = Vec::new();
        s.add_items(items.clone(), &empty, 0.3, &mut rejected);
        s.add_file(summary.clone(), rejected);
        assert_eq!(s, session(), "the session's own lexicon is used");
        // Another δ too.
        let mut s = Session::new(Lexicon::default(), 0.3);
        let (items, _) = self::items(&Lexicon::default());
        s.add_items(items, &Lexicon::default(), 0.9, &mut Vec::new());
        assert_eq!(s.entries, session().entries);
    }

    #[test]
    fn rows_before_a_run_show_the_rules_verdict() {
        let s = session();
        let rows = s.rows(&Filter::default());
        assert_eq!(rows[0].status, Status::Pending);
        assert_eq!(rows[0].failure_type, Some(FailureType::ConstraintViolation));
        assert_eq!(rows[1].status, Status::WillSkip);
        assert!(rows[1].reason.contains("tool error"));
        assert_eq!(rows[2].failure_type, Some(FailureType::WrongResult));
        assert_eq!(s.to_run(), vec![0, 1, 2]);
    }

    #[test]
    fn filters_combine() {
        let s = session();
        let only = |f: Filter| -> Vec<usize> { s.rows(&f).iter().map(|r| r.index).collect() };
        assert_eq!(
            only(Filter {
                status: Some(Status::WillSkip),
                ..Filter::default()
            }),
            vec![1]
        );
        assert_eq!(
            only(Filter {
                failure_type: Some(Some(FailureType::WrongResult)),
                ..Filter::default()
            }),
            vec![2]
        );
        assert_eq!(
            only(Filter {
                text: "SOCKS".into(),
                ..Filter::default()
            }),
            vec![2]
        );
        assert_eq!(
            only(Filter {
                failure_type: Some(None),
                ..Filter::default()
            }),
            Vec::<usize>::new()
        );
    }

    #[test]
    fn restoring_entries_in_order_gives_the_same_session() {
        let mut s = session();
        s.add_report(read_all("g.jsonl", FILE.as_bytes()));
        let occurrences: Vec<_> = s.entries.iter().map(|e| e.occurrence).collect();
        assert_eq!(occurrences, [1, 1, 2, 3, 2, 4]);
        let mut back = Session::new(Lexicon::default(), 0.3);
        for e in &s.entries {
            back.restore_entry(e.trajectory(), e.source.clone(), e.occurrence, None);
        }
        back.files = s.files.clone();
        assert_eq!(back, s);
        // Both go on naming duplicates alike.
        for x in [&mut s, &mut back] {
            x.add_report(read_all("h.jsonl", FILE.as_bytes()));
        }
        assert_eq!(back, s);
        assert_eq!(s.entries[6].id(), "a#5");
    }

    #[test]
    fn delta_changes_the_rule_gate() {
        let mut s = session();
        s.set_delta(0.45);
        // "a" has weight 0.4: below the new δ.
        assert_eq!(s.row(0).unwrap().status, Status::WillSkip);
        assert!(s.row(0).unwrap().reason.contains("below δ = 0.45"));
    }

    #[test]
    fn an_edited_lexicon_redoes_the_rule_views() {
        let mut s = session();
        assert_eq!(s.row(0).unwrap().severity, 0.4);
        let mut lexicon = Lexicon::default();
        lexicon.severity.per_hit = 0.3;
        lexicon.entries[3].keywords.push("budget".into());
        s.set_lexicon(lexicon.clone());
        assert_eq!(s.lexicon(), &lexicon);
        // "exceeds" and "budget": two hits at 0.3 each over the 0.3 base.
        assert!((s.row(0).unwrap().severity - 0.9).abs() < 1e-12);
        assert_eq!(s.entries[0].rules().hits[3].keywords, ["exceeds", "budget"]);
    }

    #[test]
    fn successes_are_kept_apart() {
        let file = concat!(
            r#"{"id": "ok", "success": true, "messages": [{"role": "user", "content": "Find tea"}, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "search", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c", "content": "Found green tea for $4"}, {"role": "assistant", "content": "Green tea, $4."}]}"#,
            "\n",
            r#"{"id": "bad", "reward": 0, "messages": [{"role": "user", "content": "Find coffee"}, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "search", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c", "content": "error: 503 service unavailable"}]}"#,
            "\n",
        );
        let mut s = session();
        s.add_report(read_all("chat.jsonl", file.as_bytes()));
        assert_eq!(s.len(), 5);
        assert_eq!(s.success_count(), 1);
        assert_eq!(s.failure_count(), 4);
        let ids: Vec<_> = s.successes().map(|e| e.id()).collect();
        assert_eq!(ids, ["ok"]);
        assert_eq!(s.failures().count(), 4);
        // Never run, shown and filterable as a success.
        assert_eq!(s.to_run(), vec![0, 1, 2, 4]);
        let row = s.row(3).unwrap();
        assert_eq!(
            (row.status, row.reason.as_str()),
            (Status::Success, SUCCESS_REASON)
        );
        let only: Vec<usize> = s
            .rows(&Filter {
                status: Some(Status::Success),
                ..Filter::default()
            })
            .iter()
            .map(|r| r.index)
            .collect();
        assert_eq!(only, vec![3]);
        // Not counted among the failures.
        assert_eq!(
            s.failure_type_counts(),
            vec![
                (Some(FailureType::ConstraintViolation), 1),
                (Some(FailureType::WrongResult), 1),
                (Some(FailureType::ToolError), 2),
            ]
        );
        // A result recorded against a success (no run makes one) is neither shown nor
        // counted; one for a failure is.
        let cancelled = || TrajectoryResult {
            trajectory_id: String::new(),
            analysis: None,
            extracted: None,
            relabel: None,
            stage_calls: vec![],
            outcome: Outcome::Cancelled {
                stage: crate::pipeline::Stage::Extraction,
            },
        };
        s.set_result(3, cancelled());
        assert_eq!(s.row(3).unwrap().status, Status::Success);
        assert_eq!(s.totals(), Totals::default());
        s.set_result(4, cancelled());
        assert_eq!(s.totals().cancelled, 1);
        assert_eq!(s.to_run(), vec![0, 1, 2, 4]);
    }

    #[test]
    fn failure_type_counts_follow_the_taxonomy() {
        let s = session();
        assert_eq!(
            s.failure_type_counts(),
            vec![
                (Some(FailureType::ConstraintViolation), 1),
                (Some(FailureType::WrongResult), 1),
                (Some(FailureType::ToolError), 1),
            ]
        );
    }

    #[test]
    fn retry_failed_picks_what_the_endpoint_decided() {
        use crate::pipeline::{Outcome, Stage, TrajectoryResult};
        let mut s = session();
        let failed = |reason: &str| TrajectoryResult {
            trajectory_id: String::new(),
            analysis: None,
            extracted: None,
            relabel: None,
            stage_calls: vec![],
            outcome: Outcome::Failed {
                stage: Stage::Relabeling,
                reason: reason.into(),
            },
        };
        // A failure no call caused (a broken template) is not retried.
        s.set_result(0, failed("could not render the relabel prompt"));
        // One whose extraction call the endpoint refused is.
        let mut refused = failed("HTTP 404: model not found");
        refused.outcome = Outcome::Failed {
            stage: Stage::Extraction,
            reason: "call failed: HTTP 404".into(),
        };
        let request = crate::llm::build_request::<crate::llm::ExtractReply>(
            "m",
            vec![],
            0.3,
            10,
            crate::llm::StructuredMode::PromptOnly,
        );
        let client = crate::llm::testing::ScriptedClient::with_replies([Err::<&str, _>(
            crate::llm::ChatError::http(404, "model not found"),
        )]);
        let (record, _) =
            futures::executor::block_on(crate::llm::call_json::<_, crate::llm::ExtractReply>(
                &client,
                crate::llm::CallKind::Extract,
                request,
            ));
        refused.stage_calls.push(record);
        s.set_result(2, refused);
        assert_eq!(s.retry_failed(), vec![2]);
    }

    #[test]
    fn matching_and_status_agree_with_the_rows() {
        let s = session();
        for i in 0..s.len() {
            assert_eq!(s.status(i), s.row(i).map(|r| r.status));
        }
        assert_eq!(s.status(s.len()), None);
        let statuses = std::iter::once(None).chain(Status::ALL.into_iter().map(Some));
        for status in statuses {
            let types = std::iter::once(None)
                .chain(std::iter::once(Some(None)))
                .chain(FailureType::ALL.into_iter().map(|t| Some(Some(t))));
            for failure_type in types {
                for text in ["", "SHOES", "no such text", "t2"] {
                    let filter = Filter {
                        status,
                        failure_type,
                        text: text.into(),
                        ..Filter::default()
                    };
                    let expected: Vec<usize> = (0..s.len())
                        .filter_map(|i| s.row(i))
                        .filter(|r| status.is_none_or(|st| st == r.status))
                        .filter(|r| failure_type.is_none_or(|t| t == r.failure_type))
                        .filter(|r| {
                            let t = text.to_lowercase();
                            t.is_empty()
                                || r.trajectory_id.to_lowercase().contains(&t)
                                || s.entries[r.index].goal().to_lowercase().contains(&t)
                        })
                        .map(|r| r.index)
                        .collect();
                    assert_eq!(s.matching(&filter), expected, "{filter:?}");
                }
            }
        }
    }

    #[test]
    fn each_choice_counts_what_picking_it_would_show_given_the_other_filters() {
        let mut s = session();
        s.add_report(read_all("g.jsonl", FILE.as_bytes()));
        let files = [
            None,
            Some("f.jsonl".to_string()),
            Some("g.jsonl".to_string()),
        ];
        let statuses = std::iter::once(None).chain(Status::ALL.into_iter().map(Some));
        let types: Vec<Option<Option<FailureType>>> = std::iter::once(None)
            .chain(std::iter::once(Some(None)))
            .chain(FailureType::ALL.into_iter().map(|t| Some(Some(t))))
            .collect();
        // Whatever the other filters, and an outside filter that drops entry 1.
        let keep = |i: usize| i != 1;
        let shown = |f: &Filter| s.matching(f).into_iter().filter(|&i| keep(i)).count();
        let mut checked = 0;
        for status in statuses {
            for failure_type in types.iter().copied() {
                for file in &files {
                    for text in ["", "shoes", "weather"] {
                        let filter = Filter {
                            status,
                            failure_type,
                            file: file.clone(),
                            text: text.into(),
                            ..Filter::default()
                        };
                        let facets = s.facets(&filter, keep);
                        for (st, n) in &facets.status {
                            let pick = Filter {
                                status: Some(*st),
                                ..filter.clone()
                            };
                            assert_eq!(*n, shown(&pick), "{pick:?}");
                        }
                        for (t, n) in &facets.failure_type {
                            let pick = Filter {
                                failure_type: Some(*t),
                                ..filter.clone()
                            };
                            assert_eq!(*n, shown(&pick), "{pick:?}");
                        }
                        for (f, n) in &facets.file {
                            let pick = Filter {
                                file: Some(f.clone()),
                                ..filter.clone()
                            };
                            assert_eq!(*n, shown(&pick), "{pick:?}");
                        }
                        // "All" of a facet shows what the other filters let through.
                        let any_status = Filter {
                            status: None,
                            ..filter.clone()
                        };
                        assert_eq!(Facets::total(&facets.status), shown(&any_status));
                        assert_eq!(facets.file.len(), 2, "every file is listed");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100);
        // The counts follow the other filters: with the text "weather" only its rows count.
        let narrowed = s.facets(
            &Filter {
                text: "weather".into(),
                ..Filter::default()
            },
            |_| true,
        );
        let everything = s.facets(&Filter::default(), |_| true);
        assert!(Facets::total(&narrowed.status) < Facets::total(&everything.status));
        assert_eq!(Facets::total(&narrowed.status), 2);
    }

    #[test]
    fn a_cleared_filter_lets_every_row_through() {
        let s = session();
        let cleared = Filter::default();
        assert!(cleared.is_cleared());
        assert_eq!(s.matching(&cleared).len(), s.len());
        let set = [
            Filter {
                status: Some(Status::Pending),
                ..Filter::default()
            },
            Filter {
                failure_type: Some(None),
                ..Filter::default()
            },
            Filter {
                text: "x".into(),
                ..Filter::default()
            },
            Filter {
                file: Some("f.jsonl".into()),
                ..Filter::default()
            },
            Filter {
                review: Some(ReviewState::Unreviewed),
                ..Filter::default()
            },
            Filter {
                fallback: true,
                ..Filter::default()
            },
            Filter {
                confidence_below: Some(0.5),
                ..Filter::default()
            },
            Filter {
                pick: Some(crate::charts::Pick::Step(crate::charts::Step::Failures)),
                ..Filter::default()
            },
        ];
        for f in set {
            assert!(!f.is_cleared(), "{f:?}");
        }
    }

    #[test]
    fn files_filter_and_sorting_orders_rows() {
        let mut s = session();
        s.add_report(read_all("g.jsonl", FILE.as_bytes()));
        let all = s.facets(&Filter::default(), |_| true);
        assert_eq!(
            all.file,
            vec![("f.jsonl".to_string(), 3), ("g.jsonl".to_string(), 3)]
        );
        assert_eq!(Facets::count(&all.status, &Status::Pending), 4);
        assert_eq!(Facets::count(&all.status, &Status::WillSkip), 2);
        assert_eq!(Facets::total(&all.status), 6);
        let in_g = s.matching(&Filter {
            file: Some("g.jsonl".into()),
            ..Filter::default()
        });
        assert_eq!(in_g, vec![3, 4, 5]);
        let mut all: Vec<usize> = (0..s.len()).collect();
        let by = |key, descending| Sort { key, descending };
        s.sort(&mut all, by(SortKey::OriginalGoal, false));
        // "Buy shoes", "Buy socks", "Get the weather", each twice, ties in load order.
        assert_eq!(all, vec![0, 3, 2, 5, 1, 4]);
        s.sort(&mut all, by(SortKey::Severity, true));
        let weights: Vec<f64> = all.iter().map(|&i| s.row(i).unwrap().weight).collect();
        assert!(weights.windows(2).all(|w| w[0] >= w[1]), "{weights:?}");
        s.sort(&mut all, by(SortKey::Id, true));
        let ids: Vec<String> = all
            .iter()
            .map(|&i| s.row(i).unwrap().trajectory_id)
            .collect();
        assert_eq!(ids, ["b#2", "b", "a#4", "a#3", "a#2", "a"]);
        // No confidence before a run: every row compares equal, load order stays.
        let mut again: Vec<usize> = (0..s.len()).collect();
        s.sort(&mut again, by(SortKey::Confidence, true));
        assert_eq!(again, (0..s.len()).collect::<Vec<_>>());
    }

    #[test]
    fn review_filters_keep_only_accepted_trajectories() {
        use crate::review::{Decision, DecisionKind};
        let mut s = crate::review::tests::reviewed_session();
        let only = |s: &Session, f: Filter| s.matching(&f);
        let unreviewed = Filter {
            review: Some(ReviewState::Unreviewed),
            ..Filter::default()
        };
        assert_eq!(only(&s, unreviewed.clone()), vec![0, 1, 2]);
        assert_eq!(
            only(
                &s,
                Filter {
                    fallback: true,
                    ..Filter::default()
                }
            ),
            vec![1]
        );
        let low = Filter {
            confidence_below: Some(0.8),
            ..Filter::default()
        };
        // a: (0.95 + 0.92) / 2; b: 0.45 alone; c: (0.93 + 0.6) / 2.
        assert_eq!(only(&s, low), vec![1, 2]);
        s.decide(
            2,
            Some(Decision::edited("Find a red hat", "Find a hat").unwrap()),
        );
        assert_eq!(only(&s, unreviewed), vec![0, 1]);
        assert_eq!(
            only(
                &s,
                Filter {
                    review: Some(ReviewState::Decided(DecisionKind::Edited)),
                    ..Filter::default()
                }
            ),
            vec![2]
        );
        assert_eq!(
            only(
                &s,
                Filter {
                    text: "RED HAT".into(),
                    ..Filter::default()
                }
            ),
            vec![2]
        );
        let row = s.row(2).unwrap();
        assert_eq!(row.review, Some(DecisionKind::Edited));
        assert_eq!(row.edited_goal.as_deref(), Some("Find a red hat"));
        assert_eq!(row.hindsight_prompt.as_deref(), Some("Find a hat"));
        assert_eq!(row.original_prompt, "Buy a hat under $9");
        let mut all: Vec<usize> = (0..s.len()).collect();
        s.sort(
            &mut all,
            Sort {
                key: SortKey::Confidence,
                descending: true,
            },
        );
        assert_eq!(all, vec![0, 2, 1, 3], "the skipped one last");
    }
}
