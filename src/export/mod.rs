//! What the user downloads: the accepted samples in each native envelope and in the layouts
//! real training tools read (LLaMA-Factory, TRL, OpenAI fine-tuning), each row checked against
//! that layout's rules before it is written; a manifest of every download set; and a run
//! report. Nothing here knows the API key: it is never part of a session or settings.
//!
//! The tool layouts are built by pure functions from one [`ExportItem`] (trajectory, goal,
//! weight, provenance) to one JSON row: [`llamafactory::row`], [`trl::sft_row`],
//! [`trl::preference_row`], [`openai::row`]. [`build`] turns a whole session into a file,
//! validating every row ([`validate`]) and leaving out, and reporting, any row that breaks a
//! rule.

pub mod dialogue;
pub mod llamafactory;
pub mod manifest;
pub mod numbers;
pub mod openai;
pub mod tools;
pub mod trl;
pub mod validate;

pub use manifest::{manifest, manifest_file_name};
pub use numbers::IntegerAsText;
pub use validate::{validate_file, validate_line, Violation};

use crate::json::{object, to_json, Json, JsonObject};
use crate::llm::TemplateSources;
use crate::model::{Relabel, SampleFormat, Trajectory};
use crate::pipeline::{Outcome, Settings};
use crate::review::{Decision, DecisionKind, ReviewCounts};
use crate::session::{Entry, Session};
use crate::stages::detect::rules::Lexicon;
use crate::stages::package::{json_to_line, sample_to_json_line};
use crate::stages::relabel::Judges;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// What a download holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// One of the reference's envelopes (`sft`, `dpo`, `sharegpt`).
    Native(SampleFormat),
    /// LLaMA-Factory ShareGPT with function_call / observation turns.
    LlamaFactory,
    /// TRL conversational language modeling (`messages`, `tools`), for `SFTTrainer`.
    TrlSft,
    /// TRL preference with an explicit prompt (`prompt`, `chosen`, `rejected`), the
    /// goal-contrastive pair.
    TrlPreference,
    /// OpenAI chat fine-tuning (`messages`, `tools`).
    OpenAi,
}

impl Target {
    /// The layouts of training tools, in the order the app offers them.
    pub const TOOLS: [Target; 4] = [
        Target::LlamaFactory,
        Target::TrlSft,
        Target::TrlPreference,
        Target::OpenAi,
    ];

    /// Every target: the native envelopes, then the tool layouts.
    pub const ALL: [Target; 7] = [
        Target::Native(SampleFormat::Sft),
        Target::Native(SampleFormat::Dpo),
        Target::Native(SampleFormat::Sharegpt),
        Target::LlamaFactory,
        Target::TrlSft,
        Target::TrlPreference,
        Target::OpenAi,
    ];

    /// The id used in file names, the manifest and the `replay` command: `sft`, `dpo`,
    /// `sharegpt`, `llamafactory`, `trl-sft`, `trl-preference`, `openai`.
    pub fn id(self) -> &'static str {
        match self {
            Target::Native(format) => format.as_str(),
            Target::LlamaFactory => "llamafactory",
            Target::TrlSft => "trl-sft",
            Target::TrlPreference => "trl-preference",
            Target::OpenAi => "openai",
        }
    }

    pub fn parse(id: &str) -> Option<Target> {
        Self::ALL.into_iter().find(|t| t.id() == id)
    }

    /// The file name of this target's samples: `agenther-{id}-{stamp}.jsonl`.
    pub fn file_name(self, stamp: &str) -> String {
        file_name(self.id(), stamp, "jsonl")
    }
}

/// Choices that shape the tool layouts (the native envelopes are the reference's and ignore
/// them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportOptions {
    /// Also write the runs the source marked as successful, unchanged: goal = their original
    /// prompt, weight 1 (not in the preference layout, which needs a goal to contrast).
    pub include_successes: bool,
    /// Keep the agent's reasoning (see each layout for where it goes). Off by default: the
    /// thoughts were written for the original goal, and the second judge that accepted the
    /// hindsight goal saw the actions, observations and final answer, not the thoughts.
    pub thoughts: bool,
    /// Write the sample weight and provenance as extra columns where the layout tolerates them
    /// (LLaMA-Factory, TRL; never OpenAI). On by default.
    pub provenance: bool,
    /// Of each cluster of near-duplicate goals ([`crate::duplicates`]), write only the sample
    /// with the highest confidence. Off by default; applies to every target.
    pub one_per_cluster: bool,
    /// The similarity at which goals are near-duplicates (the run's setting).
    pub duplicate_threshold: f64,
    /// Only the samples a reviewer accepted or edited (in every layout, the native envelopes
    /// included). Rejected samples are left out whatever this says.
    pub reviewed_only: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            include_successes: false,
            thoughts: false,
            provenance: true,
            one_per_cluster: false,
            duplicate_threshold: crate::duplicates::DEFAULT_THRESHOLD,
            reviewed_only: false,
        }
    }
}

impl ExportOptions {
    /// Which entries' relabeled samples are written: all, or the one kept per cluster.
    fn kept(&self, session: &Session) -> Vec<bool> {
        if !self.one_per_cluster {
            return vec![true; session.entries.len()];
        }
        crate::duplicates::session_memberships(session, self.duplicate_threshold)
            .into_iter()
            .map(|m| m.is_none_or(|m| m.kept))
            .collect()
    }
}

/// Why a row exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleKind {
    /// A failed run relabeled with the hindsight goal it demonstrates.
    Relabeled,
    /// A run the source marked as successful, kept with its own goal.
    Success,
}

/// Where a sample comes from and how much to trust it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    pub kind: SampleKind,
    pub source_file: String,
    /// 1-based line of the record in its file.
    pub source_line: usize,
    pub trajectory_id: String,
    /// The import format of a non-native source (`origin.format`).
    pub import_format: Option<String>,
    pub original_prompt: String,
    /// The accepted relabeling's confidence: (c + c2) / 2, or c for the single-judge fallback.
    pub confidence: Option<f64>,
    /// c, the relabeler's own confidence.
    pub relabel_confidence: Option<f64>,
    /// c2, the second judge's confidence.
    pub judge_confidence: Option<f64>,
    /// Who accepted it: `relabeler + judge`, `single judge`, or how else it was labeled.
    pub judges: Option<String>,
    /// The model that wrote the accepted goal (as its call named it).
    pub relabel_model: Option<String>,
    /// The model that judged it (none for the single-judge fallback).
    pub judge_model: Option<String>,
    /// The model's hindsight goal, when the sample is a relabeling from a run.
    pub model_goal: Option<String>,
    /// What review decided (accepted or edited; rejected samples are not exported), `None`
    /// when unreviewed.
    pub review: Option<DecisionKind>,
    /// The reviewer's goal, used instead of the model's, when review edited it.
    pub edited_goal: Option<String>,
}

impl Provenance {
    /// As a JSON object, every field present (null when unknown) so that every row of a file
    /// has the same columns.
    pub fn to_json(&self) -> Json {
        Json::Object(self.to_object())
    }

    /// [`Provenance::to_json`]'s object.
    pub fn to_object(&self) -> JsonObject {
        let opt_f = |v: Option<f64>| v.map_or(Json::Null, Json::from);
        let opt_s = |v: &Option<String>| v.as_deref().map_or(Json::Null, Json::from);
        let mut o = JsonObject::new();
        o.insert(
            "kind",
            Json::from(match self.kind {
                SampleKind::Relabeled => "relabeled",
                SampleKind::Success => "success",
            }),
        );
        o.insert("source_file", Json::from(self.source_file.as_str()));
        o.insert("source_line", Json::from(self.source_line as i64));
        o.insert("trajectory_id", Json::from(self.trajectory_id.as_str()));
        o.insert("import_format", opt_s(&self.import_format));
        o.insert("original_prompt", Json::from(self.original_prompt.as_str()));
        o.insert("confidence", opt_f(self.confidence));
        o.insert("relabel_confidence", opt_f(self.relabel_confidence));
        o.insert("judge_confidence", opt_f(self.judge_confidence));
        o.insert("judges", opt_s(&self.judges));
        o.insert("relabel_model", opt_s(&self.relabel_model));
        o.insert("judge_model", opt_s(&self.judge_model));
        o.insert("model_goal", opt_s(&self.model_goal));
        o.insert(
            "review",
            self.review.map_or(Json::Null, |k| Json::from(k.as_str())),
        );
        o.insert("edited_goal", opt_s(&self.edited_goal));
        o
    }
}

/// One sample to export: a trajectory, the goal it is a demonstration of, its weight and
/// where it comes from.
#[derive(Debug, Clone)]
pub struct ExportItem<'a> {
    /// Borrowed, or opened from a session for this row.
    pub trajectory: Cow<'a, Trajectory>,
    /// The user message the row opens with: the hindsight goal, or a success's own prompt.
    pub goal: &'a str,
    /// Stage 1's severity weight for a relabeled run; 1 for a success.
    pub weight: f64,
    pub provenance: Provenance,
}

impl<'a> ExportItem<'a> {
    /// A relabeled failure: the accepted relabeling's hindsight goal and `weight`.
    pub fn relabeled(
        trajectory: &'a Trajectory,
        relabel: &'a Relabel,
        weight: f64,
        provenance: Provenance,
    ) -> Self {
        ExportItem {
            trajectory: Cow::Borrowed(trajectory),
            goal: &relabel.hindsight_prompt,
            weight,
            provenance,
        }
    }

    /// A success, unchanged: its original prompt, weight 1.
    pub fn success(trajectory: &'a Trajectory, provenance: Provenance) -> Self {
        ExportItem {
            trajectory: Cow::Borrowed(trajectory),
            goal: &trajectory.original_prompt,
            weight: 1.0,
            provenance,
        }
    }
}

/// A row of a tool layout, with the integers it had to write as strings (see [`numbers`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub value: Json,
    pub integers_as_text: Vec<IntegerAsText>,
}

/// The row of `item` in a tool layout, or `None` when the layout has no row for it (a native
/// envelope, or a success in the preference layout).
pub fn row(target: Target, item: &ExportItem, options: &ExportOptions) -> Option<Row> {
    match target {
        Target::Native(_) => None,
        Target::LlamaFactory => Some(llamafactory::row(item, options)),
        Target::TrlSft => Some(trl::sft_row(item, options)),
        Target::TrlPreference => (item.provenance.kind == SampleKind::Relabeled)
            .then(|| trl::preference_row(item, options)),
        Target::OpenAi => Some(openai::row(item, options)),
    }
}

/// A row written as a JSONL line that keeps its layout's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedLine {
    /// The line, without its newline.
    pub text: String,
    /// What the row wrote differently from the source, each with its line and trajectory.
    pub rewrites: Vec<Rewrite>,
}

/// A value written differently from the source, so that the training tools can load it: an
/// integer beyond 64 bits written as a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rewrite {
    /// The row's line (1-based).
    pub line: usize,
    pub trajectory_id: String,
    #[serde(flatten)]
    pub integer: IntegerAsText,
}

impl std::fmt::Display for Rewrite {
    /// `line 3: trav-7: messages[2].…: the integer … written as the string "…"`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: {}: {}",
            self.line, self.trajectory_id, self.integer
        )
    }
}

/// The row of `item` as a JSONL line (no newline), checked against the target's rules:
/// `Ok(line)` when it keeps them (with what it wrote differently from the source),
/// `Err(violations)` when it breaks one (each violation carries `line` and the item's
/// trajectory id), `None` when the layout has no row for the item.
pub fn checked_line(
    target: Target,
    line: usize,
    item: &ExportItem,
    options: &ExportOptions,
) -> Option<Result<CheckedLine, Vec<Violation>>> {
    let row = row(target, item, options)?;
    let text = json_to_line(&row.value);
    let violations = validate_line(target, line, &text);
    Some(if violations.is_empty() {
        Ok(CheckedLine {
            text,
            rewrites: row
                .integers_as_text
                .into_iter()
                .map(|integer| Rewrite {
                    line,
                    trajectory_id: item.provenance.trajectory_id.clone(),
                    integer,
                })
                .collect(),
        })
    } else {
        Err(violations
            .into_iter()
            .map(|v| Violation {
                trajectory_id: Some(item.provenance.trajectory_id.clone()),
                ..v
            })
            .collect())
    })
}

/// A built download.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportFile {
    pub target: Target,
    /// `agenther-{id}-{stamp}.jsonl`.
    pub name: String,
    /// The rows that passed, one per line, each ending with a newline (empty when they were
    /// written to an [`Out`] by [`build_into`]).
    pub text: String,
    /// How many rows `text` holds.
    pub rows: usize,
    /// Every rule a left-out row broke. `line` is the row's position among the rows built
    /// (1-based), `trajectory_id` names its source.
    pub violations: Vec<Violation>,
    /// How many rows were left out because they broke a rule.
    pub left_out: usize,
    /// Every value a written row holds differently from the source (integers beyond 64 bits
    /// written as strings), with the row's line and trajectory.
    pub rewrites: Vec<Rewrite>,
}

/// The samples of `session` to export, in load order: each accepted trajectory with its goal
/// (the reviewer's edit, else the model's hindsight goal) and Stage 1 weight, and, when
/// `options.include_successes`, each run the source marked as successful with its own prompt
/// (a success that was also relabeled gives both rows). Samples review rejected are left out,
/// and so are unreviewed ones when `options.reviewed_only`.
pub fn items<'a>(
    session: &'a Session,
    options: &'a ExportOptions,
) -> impl Iterator<Item = ExportItem<'a>> + 'a {
    let kept = options.kept(session);
    session
        .entries
        .iter()
        .enumerate()
        .flat_map(move |(i, e)| entry_items(session, options, kept[i], i, e))
}

/// The samples of entry `i` ([`items`]): none, one or two. Its trajectory is opened only when
/// there is one.
fn entry_items<'a>(
    session: &'a Session,
    options: &ExportOptions,
    kept: bool,
    i: usize,
    e: &'a Entry,
) -> Vec<ExportItem<'a>> {
    let mut out = Vec::new();
    let base = |kind| Provenance {
        kind,
        source_file: e.source.file.clone(),
        source_line: e.source.line,
        trajectory_id: e.id().to_owned(),
        import_format: e.import_format(),
        original_prompt: e.goal().to_owned(),
        confidence: None,
        relabel_confidence: None,
        judge_confidence: None,
        judges: None,
        relabel_model: None,
        judge_model: None,
        model_goal: None,
        review: None,
        edited_goal: None,
    };
    if let (Some(accepted), Some(weight)) = (
        session.accepted(i),
        e.result
            .as_ref()
            .and_then(|r| r.analysis.as_ref())
            .map(|a| a.weight),
    ) {
        let decision = session.decision(i);
        if kept && exported(decision, options) {
            let edited = decision.and_then(Decision::goal);
            let (relabel_model, judge_model) =
                e.result.as_deref().map(accepted_models).unwrap_or_default();
            let provenance = Provenance {
                confidence: Some(accepted.confidence),
                relabel_confidence: Some(accepted.relabel_confidence),
                judge_confidence: accepted.judge_confidence,
                judges: Some(judges_label(accepted.judges).to_owned()),
                relabel_model,
                judge_model,
                model_goal: Some(accepted.model_goal.to_owned()),
                review: decision.map(Decision::kind),
                edited_goal: edited.map(str::to_owned),
                ..base(SampleKind::Relabeled)
            };
            out.push((edited.unwrap_or(accepted.model_goal), weight, provenance));
        }
    }
    if options.include_successes && e.succeeded() {
        out.push((e.goal(), 1.0, base(SampleKind::Success)));
    }
    if out.is_empty() {
        return Vec::new();
    }
    // Opened once: cloned for a first row, moved into the last.
    let mut t = Some(e.trajectory());
    let rows = out.len();
    out.into_iter()
        .enumerate()
        .map(|(k, (goal, weight, provenance))| {
            let trajectory = if k + 1 == rows { t.take() } else { t.clone() };
            ExportItem {
                trajectory: Cow::Owned(trajectory.expect("opened above")),
                goal,
                weight,
                provenance,
            }
        })
        .collect()
}

/// The models of the accepted attempt's relabel call and of the judge call that accepted it,
/// as the requests named them.
pub fn accepted_models(r: &crate::pipeline::TrajectoryResult) -> (Option<String>, Option<String>) {
    let Some(report) = &r.relabel else {
        return (None, None);
    };
    let attempt = match &report.decision {
        crate::stages::relabel::RelabelDecision::Accepted { attempt, .. } => *attempt,
        _ => return (None, None),
    };
    let Some(a) = report.attempts.iter().find(|a| a.k == attempt) else {
        return (None, None);
    };
    let judge = a
        .judge
        .as_ref()
        .filter(|j| {
            matches!(
                j.verdict,
                crate::stages::relabel::JudgeVerdict::Accepted { .. }
            )
        })
        .and_then(|j| j.call.as_ref())
        .map(|c| c.request.model.clone());
    (Some(a.call.request.model.clone()), judge)
}

/// Whether a relabeled sample with review `decision` is exported under `options`.
fn exported(decision: Option<&Decision>, options: &ExportOptions) -> bool {
    match decision {
        Some(d) => d.keeps(),
        None => !options.reviewed_only,
    }
}

/// How the results table names who accepted a relabeling.
pub fn judges_label(judges: Judges) -> &'static str {
    match judges {
        Judges::RelabelerAndJudge => "relabeler + judge",
        Judges::SingleJudgeFallback => "single judge",
    }
}

/// The download of `session` in `target`. The native envelopes are written as
/// [`samples_jsonl`] writes them; the tool layouts row by row, each row validated and left out
/// (and reported in `violations`) when it breaks a rule of its layout.
pub fn build(
    session: &Session,
    target: Target,
    options: &ExportOptions,
    stamp: &str,
) -> ExportFile {
    let mut text = String::new();
    let file = build_rows(session, target, options, stamp, usize::MAX, &mut text);
    ExportFile { text, ..file }
}

/// The first `rows` rows [`build`] would write for `target`, one line each: what a download
/// would hold, to look at before downloading.
pub fn preview(
    session: &Session,
    target: Target,
    options: &ExportOptions,
    rows: usize,
) -> Vec<String> {
    let mut text = String::new();
    build_rows(session, target, options, "preview", rows, &mut text);
    text.lines().map(str::to_owned).collect()
}

/// Where an export's text goes as it is written: a `String`, or the parts of a download that
/// leave the page's memory as they fill ([`build_into`]).
pub trait Out {
    fn push_str(&mut self, text: &str);
}

impl Out for String {
    fn push_str(&mut self, text: &str) {
        String::push_str(self, text);
    }
}

/// An [`Out`] that keeps nothing: for the counts and checks of a file without its text.
pub struct Discard;

impl Out for Discard {
    fn push_str(&mut self, _: &str) {}
}

/// [`build`], the rows written to `out` as they are built instead of kept in the file's
/// `text` (which stays empty): a large export never sits whole in memory.
pub fn build_into(
    session: &Session,
    target: Target,
    options: &ExportOptions,
    stamp: &str,
    out: &mut dyn Out,
) -> ExportFile {
    build_rows(session, target, options, stamp, usize::MAX, out)
}

/// [`build_into`], stopping after `limit` rows written.
fn build_rows(
    session: &Session,
    target: Target,
    options: &ExportOptions,
    stamp: &str,
    limit: usize,
    out: &mut dyn Out,
) -> ExportFile {
    let mut file = ExportFile {
        target,
        name: target.file_name(stamp),
        text: String::new(),
        rows: 0,
        violations: Vec::new(),
        left_out: 0,
        rewrites: Vec::new(),
    };
    if let Target::Native(format) = target {
        for line in native_lines(session, format, options).take(limit) {
            out.push_str(&line);
            out.push_str("\n");
            file.rows += 1;
        }
        return file;
    }
    let mut built = 0;
    for item in items(session, options) {
        if file.rows >= limit {
            break;
        }
        let Some(checked) = checked_line(target, built + 1, &item, options) else {
            continue;
        };
        built += 1;
        match checked {
            Ok(line) => {
                out.push_str(&line.text);
                out.push_str("\n");
                file.rows += 1;
                file.rewrites.extend(line.rewrites);
            }
            Err(violations) => {
                file.left_out += 1;
                file.violations.extend(violations);
            }
        }
    }
    file
}

/// The accepted samples of `session` in `format`, one JSON object per line, in load order,
/// as review left them (see [`native_lines`]).
pub fn samples_jsonl(session: &Session, format: SampleFormat, options: &ExportOptions) -> String {
    native_lines(session, format, options).fold(String::new(), |mut out, line| {
        out.push_str(&line);
        out.push('\n');
        out
    })
}

/// The native envelope lines of the accepted samples: the reference's, except that a sample
/// review edited opens with the reviewer's goal and its `metadata` adds `review` and
/// `model_hindsight_prompt` (the model's goal), and a reviewed one adds `review`. Samples review
/// rejected are left out, and unreviewed ones too when `options.reviewed_only`.
fn native_lines<'a>(
    session: &'a Session,
    format: SampleFormat,
    options: &'a ExportOptions,
) -> impl Iterator<Item = String> + 'a {
    let kept = options.kept(session);
    session
        .entries
        .iter()
        .enumerate()
        .filter_map(move |(i, e)| {
            let result = e.result.as_ref()?;
            let decision = session.decision(i);
            if !kept[i] || !exported(decision, options) {
                return None;
            }
            let mut sample = match decision.and_then(Decision::goal) {
                Some(goal) => {
                    let mut relabel = result.relabel.as_ref()?.relabel()?.clone();
                    relabel.hindsight_prompt = goal.to_owned();
                    let weight = result.analysis.as_ref()?.weight;
                    let mut sample =
                        crate::stages::package::package(&e.trajectory(), &relabel, weight, format);
                    sample.metadata.insert(
                        "model_hindsight_prompt".to_owned(),
                        Json::from(session.accepted(i)?.model_goal),
                    );
                    sample
                }
                None => result.sample(&e.trajectory(), format)?,
            };
            if let Some(d) = decision {
                sample
                    .metadata
                    .insert("review", Json::from(d.kind().as_str()));
            }
            Some(sample_to_json_line(&sample))
        })
}

/// How many trajectories a run accepted.
pub fn accepted_count(session: &Session) -> usize {
    session
        .entries
        .iter()
        .filter(|e| e.result.as_ref().is_some_and(|r| r.outcome.is_accepted()))
        .count()
}

/// How many relabeled samples the exports write under `options`: the accepted ones, less what
/// review rejected (and, with `reviewed_only`, what it has not seen).
pub fn sample_count(session: &Session, options: &ExportOptions) -> usize {
    (0..session.len())
        .filter(|&i| session.reviewable(i) && exported(session.decision(i), options))
        .count()
}

/// A download's file name: `agenther-{what}-{stamp}.{ext}`, where `stamp` is a compact UTC
/// time such as `20261122-153005`.
pub fn file_name(what: &str, stamp: &str, ext: &str) -> String {
    format!("agenther-{what}-{stamp}.{ext}")
}

/// The file name of the samples in `format`.
pub fn samples_file_name(format: SampleFormat, stamp: &str) -> String {
    file_name(format.as_str(), stamp, "jsonl")
}

/// Which models relabeled and judged, and where: `relabel`, `judge`, `judge_endpoint` (null:
/// the relabeler's) and `judge_same_model` (the judge is the relabeling model itself).
pub fn models(settings: &Settings) -> Json {
    object([
        ("relabel", Json::from(settings.model.as_str())),
        ("judge", Json::from(settings.judge_model_name())),
        (
            "judge_endpoint",
            Json::from(settings.judge_endpoint.as_deref()),
        ),
        (
            "judge_same_model",
            Json::from(settings.judge_is_same_model()),
        ),
    ])
}

/// The judge's tokens and, when its endpoint has a price, what they cost.
fn judge_cost(totals: &crate::pipeline::Totals, settings: &Settings) -> Json {
    let judge = totals.usage.stage(crate::llm::CallKind::Judge);
    let tokens = judge.prompt_tokens + judge.completion_tokens;
    object([
        ("calls", Json::from(judge.calls)),
        ("tokens", Json::from(tokens)),
        (
            "price_per_million",
            Json::from(settings.judge_price_per_million),
        ),
        (
            "cost",
            Json::from(
                (settings.judge_price_per_million > 0.0)
                    .then(|| tokens as f64 * settings.judge_price_per_million / 1e6),
            ),
        ),
    ])
}

/// What a run report says about the run itself, beside the session.
#[derive(Debug, Clone)]
pub struct RunContext<'a> {
    /// The endpoint's base URL (never with credentials).
    pub endpoint: &'a str,
    pub settings: &'a Settings,
    /// The prompt templates the run used.
    pub templates: &'a TemplateSources,
    /// The lexicon of rule-based detection.
    pub lexicon: &'a Lexicon,
    /// When the report was made, ISO 8601.
    pub created_at: &'a str,
    /// Wall-clock time the run took, in milliseconds, when a run happened.
    pub elapsed_ms: Option<f64>,
    /// What review decided ([`Session::review_counts`]).
    pub review: ReviewCounts,
}

/// The run report: product and version, settings (no key), templates, files read and the
/// records they rejected, totals with calls and tokens per stage, and one entry per
/// trajectory with its outcome and each sample's provenance: source file and line, import
/// format, severity weight, confidences and judges.
///
/// Serialized, its trajectories are made and written one at a time, so that a large
/// session's report never sits in memory as a tree.
pub struct RunReport<'a> {
    session: &'a Session,
    ctx: &'a RunContext<'a>,
    clusters: Vec<Option<crate::duplicates::Membership>>,
}

impl<'a> RunReport<'a> {
    pub fn new(session: &'a Session, ctx: &'a RunContext<'a>) -> Self {
        RunReport {
            session,
            ctx,
            clusters: crate::duplicates::session_memberships(
                session,
                ctx.settings.duplicate_threshold,
            ),
        }
    }

    fn files(&self) -> Json {
        let files = self.session.files.iter().map(|f| {
            let rejected: Vec<Json> = f
                .rejected
                .iter()
                .map(|r| {
                    object([
                        ("line", Json::from(r.line)),
                        ("index", Json::from(r.index)),
                        ("field", Json::from(r.field.as_deref())),
                        ("reason", Json::from(r.reason.as_str())),
                        ("trajectory_id", Json::from(r.trajectory_id.as_deref())),
                    ])
                })
                .collect();
            object([
                ("file", Json::from(f.summary.file.as_str())),
                ("format", to_json(&f.summary.format)),
                ("bytes", Json::from(f.summary.bytes)),
                ("records", Json::from(f.summary.records)),
                ("rejected", Json::from(f.summary.rejected)),
                ("blank_lines", Json::from(f.summary.blank_lines)),
                ("notes", to_json(&f.summary.notes)),
                ("rejected_records", Json::from(rejected)),
            ])
        });
        Json::from(files.collect::<Vec<_>>())
    }

    /// The report's row of entry `i`.
    fn row(&self, i: usize) -> Json {
        let (session, ctx, clusters) = (self.session, self.ctx, &self.clusters);
        let e = &session.entries[i];
        let row = session.row(i).expect("index in range");
        let mut t = JsonObject::new();
        t.insert("trajectory_id", Json::from(row.trajectory_id));
        t.insert("file", Json::from(row.file));
        t.insert("line", Json::from(row.line));
        t.insert("status", Json::from(row.status.as_str()));
        t.insert(
            "failure_type",
            Json::from(row.failure_type.map(|t| t.as_str())),
        );
        t.insert("severity", Json::from(row.severity));
        t.insert("weight", Json::from(row.weight));
        t.insert("recoverable", Json::from(row.recoverable));
        t.insert("import_format", Json::from(e.import_format()));
        t.insert("succeeded", Json::from(e.succeeded()));
        t.insert("verdict_unknown", Json::from(e.verdict_unknown()));
        if let Some(r) = &e.result {
            t.insert("stage", Json::from(r.outcome.stage().as_str()));
            t.insert("reason", Json::from(r.outcome.reason()));
            if let Outcome::Accepted { attempt, .. } = r.outcome {
                t.insert("accepted_attempt", Json::from(attempt));
            }
            t.insert("hindsight_prompt", Json::from(row.hindsight_prompt.clone()));
            t.insert("confidence", Json::from(row.confidence));
            t.insert("relabel_confidence", Json::from(row.relabel_confidence));
            t.insert("judge_confidence", Json::from(row.judge_confidence));
            t.insert("judges", Json::from(row.judges));
            let (relabel_model, judge_model) = accepted_models(r);
            t.insert("relabel_model", Json::from(relabel_model));
            t.insert("judge_model", Json::from(judge_model));
            if let Some(g) = r.relabel.as_ref().and_then(|rep| rep.grounding.as_ref()) {
                t.insert("grounding", to_json(g));
            }
            if let Some(Some(m)) = clusters.get(i) {
                t.insert("duplicate_cluster", to_json(m));
            }
            if row.hindsight_prompt.as_deref().is_some_and(|g| {
                crate::duplicates::restates(e.goal(), g, ctx.settings.restate_threshold)
            }) {
                t.insert("not_a_new_goal", Json::from(true));
            }
            if let Some(d) = session.decision(i) {
                let mut review = JsonObject::new();
                review.insert("decision", Json::from(d.kind().as_str()));
                match d {
                    Decision::Accepted => {}
                    Decision::Rejected { reason } => {
                        review.insert("reason", Json::from(reason.as_str()));
                    }
                    Decision::Edited {
                        goal,
                        model_goal,
                        judged,
                    } => {
                        review.insert("goal", Json::from(goal.as_str()));
                        review.insert("model_goal", Json::from(model_goal.as_str()));
                        if let Some(verdict) = judged {
                            review.insert("judged", to_json(verdict));
                        }
                    }
                }
                t.insert("review", Json::Object(review));
            } else if session.reviewable(i) {
                t.insert("review", object([("decision", Json::from("unreviewed"))]));
            }
            let total = r.usage().total();
            t.insert(
                "relabel_attempts",
                Json::from(r.relabel.as_ref().map_or(0, |rep| rep.attempts.len())),
            );
            t.insert("calls", Json::from(total.calls));
            t.insert("failed_calls", Json::from(total.failed_calls));
            t.insert("retries", Json::from(total.retries));
            t.insert("calls_from_log", Json::from(total.from_log));
            let flags: Vec<Json> = r
                .flags()
                .iter()
                .map(|f| {
                    object([
                        ("flag", Json::from(f.kind)),
                        ("calls", Json::from(f.calls)),
                        ("advice", Json::from(f.advice.as_str())),
                    ])
                })
                .collect();
            if !flags.is_empty() {
                t.insert("flags", Json::from(flags));
            }
            if r.endpoint_unavailable() {
                t.insert("endpoint_unavailable", Json::from(true));
            }
            t.insert("prompt_tokens", Json::from(total.prompt_tokens));
            t.insert("completion_tokens", Json::from(total.completion_tokens));
        } else if !row.reason.is_empty() {
            t.insert("reason", Json::from(row.reason));
        }
        Json::Object(t)
    }
}

impl Serialize for RunReport<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (session, ctx) = (self.session, self.ctx);
        let method = crate::custom::describe(ctx.templates, ctx.lexicon);
        let totals = session.totals();
        let mut m = serializer.serialize_map(None)?;
        m.serialize_entry("product", "agenther")?;
        m.serialize_entry("version", crate::version())?;
        m.serialize_entry("created_at", ctx.created_at)?;
        m.serialize_entry("endpoint", ctx.endpoint)?;
        m.serialize_entry("models", &models(ctx.settings))?;
        m.serialize_entry("settings", ctx.settings)?;
        m.serialize_entry("templates", &method["templates"])?;
        m.serialize_entry("lexicon", &method["lexicon"])?;
        m.serialize_entry("elapsed_ms", &ctx.elapsed_ms)?;
        m.serialize_entry(
            "loaded",
            &object([
                ("files", Json::from(session.files.len())),
                ("trajectories", Json::from(session.len())),
                ("rejected_records", Json::from(session.rejected_count())),
                (
                    "verdict_unknown",
                    Json::from(
                        session
                            .entries
                            .iter()
                            .filter(|e| e.verdict_unknown())
                            .count(),
                    ),
                ),
            ]),
        )?;
        m.serialize_entry("totals", &totals)?;
        m.serialize_entry("judge_cost", &judge_cost(&totals, ctx.settings))?;
        m.serialize_entry("retries", &totals.retries())?;
        m.serialize_entry(
            "samples_per_format",
            &sample_count(session, &ExportOptions::default()),
        )?;
        m.serialize_entry("review", &review_json(&session.review_counts()))?;
        m.serialize_entry("files", &self.files())?;
        m.serialize_entry("trajectories", &Rows(self))?;
        m.end()
    }
}

/// The report's trajectories, each made as it is written.
struct Rows<'a, 'b>(&'b RunReport<'a>);

impl Serialize for Rows<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((0..self.0.session.len()).map(|i| self.0.row(i)))
    }
}

/// What review decided, as the report and the manifest write it.
pub fn review_json(counts: &ReviewCounts) -> Json {
    object([
        ("reviewable", Json::from(counts.reviewable)),
        ("reviewed", Json::from(counts.reviewed())),
        ("accepted", Json::from(counts.accepted)),
        ("edited", Json::from(counts.edited)),
        ("rejected", Json::from(counts.rejected)),
        ("unreviewed", Json::from(counts.unreviewed())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// What the tests' reports say of the run: a fixed endpoint and time, no run time, no
    /// review.
    fn context<'a>(
        settings: &'a Settings,
        templates: &'a Templates,
        lexicon: &'a Lexicon,
    ) -> RunContext<'a> {
        RunContext {
            endpoint: "http://127.0.0.1:9/v1",
            settings,
            templates: templates.sources(),
            lexicon,
            created_at: "2026-11-22T10:15:00Z",
            elapsed_ms: None,
            review: ReviewCounts::default(),
        }
    }

    /// The run report as a tree, to look into.
    fn run_report(session: &Session, ctx: &RunContext) -> Value {
        serde_json::to_value(RunReport::new(session, ctx)).expect("a report serializes")
    }
    use crate::llm::testing::ScriptedClient;
    use crate::llm::{ChatClient, Templates};
    use crate::pipeline::{process, Mode};
    use crate::reader::read_all;
    use crate::stages::detect::rules::Lexicon;
    use futures::executor::block_on;

    const FILE: &str = concat!(
        r#"{"trajectory_id":"a","original_prompt":"Buy shoes under $50","steps":[{"thought":"search","action_name":"search","action_input":{"q":"shoes","max":50.0},"observation":"Found Nike Pegasus for $89 and Adidas Run for $95"}],"failure_reason":"Price exceeds budget"}"#,
        "\n",
        r#"{"trajectory_id":"b","original_prompt":"Get the weather","steps":[{"thought":"call","action_name":"weather","observation":"error: 503 service unavailable"}],"failure_reason":""}"#,
        "\n",
        "{broken\n"
    );

    fn run_session() -> (Session, Settings) {
        let mut session = Session::new(Lexicon::default(), 0.3);
        session.add_report(read_all("f.jsonl", FILE.as_bytes()));
        let settings = Settings {
            model: "m".into(),
            extraction: Mode::Rules,
            ..Settings::default()
        };
        let client = ScriptedClient::with_replies([
            Ok(
                r#"{"hindsight_prompt":"List running shoes with prices","is_valid_replay":true,"rationale":"r","confidence":0.9}"#,
            ),
            Ok(r#"{"is_valid":true,"confidence":0.8,"rejection_reason":""}"#),
        ]);
        run_all(&mut session, &client, &settings);
        (session, settings)
    }

    /// Runs every trajectory of `session` through the pipeline with `client`.
    fn run_all(session: &mut Session, client: &impl ChatClient, settings: &Settings) {
        let templates = Templates::defaults();
        for i in 0..session.len() {
            let t = session.entries[i].trajectory();
            let r = block_on(process(
                client,
                &templates,
                settings,
                &Lexicon::default(),
                &t,
            ));
            session.set_result(i, r);
        }
    }

    #[test]
    fn samples_are_written_for_accepted_trajectories_only() {
        let (session, _) = run_session();
        for format in SampleFormat::ALL {
            let text = samples_jsonl(&session, format, &ExportOptions::default());
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 1, "{format:?}");
            let v: Value = serde_json::from_str(lines[0]).unwrap();
            assert_eq!(v["source_trajectory_id"], "a");
            assert_eq!(v["format"], format.as_str());
            assert_eq!(v["hindsight_prompt"], "List running shoes with prices");
            assert_eq!(v["weight"], 0.4);
        }
        assert_eq!(accepted_count(&session), 1);
        assert_eq!(
            samples_file_name(SampleFormat::Dpo, "20261122-101500"),
            "agenther-dpo-20261122-101500.jsonl"
        );
    }

    #[test]
    fn report_accounts_for_every_trajectory_and_record() {
        let (session, settings) = run_session();
        let templates = Templates::defaults();
        let lexicon = Lexicon::default();
        let report = run_report(
            &session,
            &RunContext {
                elapsed_ms: Some(1234.0),
                ..context(&settings, &templates, &lexicon)
            },
        );
        assert_eq!(report["loaded"]["trajectories"], 2);
        assert_eq!(report["loaded"]["rejected_records"], 1);
        assert_eq!(report["files"][0]["rejected_records"][0]["line"], 3);
        assert_eq!(report["totals"]["accepted"], 1);
        assert_eq!(report["totals"]["skipped"], 1);
        assert_eq!(report["totals"]["usage"]["relabel"]["calls"], 1);
        assert_eq!(report["totals"]["usage"]["judge"]["calls"], 1);
        let ts = report["trajectories"].as_array().unwrap();
        assert_eq!(ts.len(), 2);
        assert_eq!(ts[0]["status"], "accepted");
        assert_eq!(ts[0]["judges"], "relabeler + judge");
        assert_eq!(ts[0]["confidence"], (0.9 + 0.8) / 2.0);
        assert_eq!(ts[0]["weight"], 0.4);
        assert_eq!(ts[0]["file"], "f.jsonl");
        assert_eq!(ts[0]["import_format"], Value::Null);
        assert_eq!(ts[0]["succeeded"], false);
        assert_eq!(ts[1]["status"], "skipped");
        assert_eq!(ts[1]["stage"], "gate");
        assert_eq!(report["settings"]["theta"], 0.5);
        assert!(report["settings"].get("api_key").is_none());
    }

    #[test]
    fn a_report_written_as_it_goes_is_the_report() {
        let (session, settings) = run_session();
        let templates = Templates::defaults();
        let lexicon = Lexicon::default();
        let ctx = RunContext {
            elapsed_ms: Some(1234.0),
            ..context(&settings, &templates, &lexicon)
        };
        let tree = serde_json::to_string_pretty(&run_report(&session, &ctx)).unwrap();
        let mut streamed = Vec::new();
        serde_json::to_writer_pretty(&mut streamed, &RunReport::new(&session, &ctx)).unwrap();
        assert_eq!(String::from_utf8(streamed).unwrap(), tree);
        assert!(tree.contains("\"trajectories\": ["), "{tree}");
    }

    #[test]
    fn an_export_written_out_is_the_file_built_in_memory() {
        let session = crate::review::tests::reviewed_session();
        let options = ExportOptions {
            include_successes: true,
            ..ExportOptions::default()
        };
        for target in Target::ALL {
            let built = build(&session, target, &options, "s");
            let mut text = String::new();
            let written = build_into(&session, target, &options, "s", &mut text);
            assert_eq!(text, built.text, "{target:?}");
            assert!(written.text.is_empty());
            assert_eq!(
                (written.rows, written.left_out, written.violations.len()),
                (built.rows, built.left_out, built.violations.len()),
                "{target:?}"
            );
            let counted = build_into(&session, target, &options, "s", &mut Discard);
            assert_eq!(counted.rows, built.rows, "{target:?}");
            assert_eq!(built.text.lines().count(), built.rows, "{target:?}");
        }
        assert!(build(&session, Target::ALL[0], &options, "s").rows > 0);
    }

    #[test]
    fn report_counts_retries_and_shows_flags() {
        use crate::llm::openai::{ChatResponse, Usage};
        use crate::llm::{ChatError, FakeClock, RetryPolicy, RetryingClient};
        let mut session = Session::new(Lexicon::default(), 0.3);
        session.add_report(read_all("f.jsonl", FILE.as_bytes()));
        let settings = Settings {
            model: "m".into(),
            extraction: Mode::Rules,
            ..Settings::default()
        };
        let inner = ScriptedClient::new();
        inner.push_error(ChatError::http(503, "busy"));
        inner.push_error(ChatError::Timeout);
        let mut cut = ChatResponse::from_text(r#"{"hindsight_prompt": "Li"#, Usage::default());
        cut.choices[0].finish_reason = Some("length".into());
        inner.push_response(cut);
        inner.push_error(ChatError::http(429, "slow down"));
        inner.push_text(
            r#"{"hindsight_prompt":"List running shoes with prices","is_valid_replay":true,"rationale":"r","confidence":0.9}"#,
        );
        inner.push_text(r#"{"is_valid":true,"confidence":0.8,"rejection_reason":""}"#);
        let client = RetryingClient::new(&inner, RetryPolicy::default(), FakeClock::new());
        run_all(&mut session, &client, &settings);
        let templates = Templates::defaults();
        let lexicon = Lexicon::default();
        assert_eq!(inner.remaining(), 0);
        let report = run_report(&session, &context(&settings, &templates, &lexicon));
        assert_eq!(report["retries"], 3);
        assert_eq!(report["totals"]["usage"]["relabel"]["retries"], 3);
        assert_eq!(report["totals"]["usage"]["relabel"]["flagged_calls"], 1);
        let ts = report["trajectories"].as_array().unwrap();
        assert_eq!(ts[0]["status"], "accepted");
        assert_eq!(ts[0]["retries"], 3);
        assert_eq!(ts[0]["relabel_attempts"], 2);
        assert_eq!(ts[0]["flags"][0]["flag"], "reply_truncated");
        assert_eq!(ts[0]["flags"][0]["calls"], 1);
        assert!(ts[0]["flags"][0]["advice"]
            .as_str()
            .unwrap()
            .contains("raise max_tokens"));
        assert!(ts[0].get("endpoint_unavailable").is_none());
        assert!(ts[1].get("flags").is_none());
        assert_eq!(ts[1]["retries"], 0, "skipped before any call");
    }

    #[test]
    fn every_export_honours_review() {
        let mut session = crate::review::tests::reviewed_session();
        let edit = Decision::edited(
            "Compare two running shoes",
            "List running shoes with prices",
        )
        .unwrap();
        session.decide(0, Some(edit));
        session.decide(1, Some(Decision::rejected("vague")));
        let all = ExportOptions::default();
        let reviewed = ExportOptions {
            reviewed_only: true,
            ..ExportOptions::default()
        };
        let goal_of = |target: Target, line: &str| -> String {
            let v: Value = serde_json::from_str(line).unwrap();
            match target {
                Target::Native(_) => v["hindsight_prompt"].as_str().unwrap().to_owned(),
                Target::LlamaFactory => v["conversations"][0]["value"].as_str().unwrap().to_owned(),
                Target::TrlPreference => v["chosen"][0]["content"].as_str().unwrap().to_owned(),
                Target::TrlSft | Target::OpenAi => v["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| m["role"] == "user")
                    .unwrap()["content"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            }
        };
        for target in Target::ALL {
            let file = build(&session, target, &all, "s");
            assert!(
                file.violations.is_empty(),
                "{target:?}: {:?}",
                file.violations
            );
            let goals: Vec<String> = file.text.lines().map(|l| goal_of(target, l)).collect();
            assert_eq!(
                goals,
                ["Compare two running shoes", "Find a hat"],
                "{target:?}: the rejected sample left out, the edit used"
            );
            let only = build(&session, target, &reviewed, "s");
            assert_eq!(only.rows, 1, "{target:?}: reviewed rows only");
            assert_eq!(
                preview(&session, target, &all, 1),
                vec![file.text.lines().next().unwrap().to_owned()],
                "{target:?}: the preview is the file's first row"
            );
        }
        // Provenance names the model's goal and the edit.
        let trl = build(&session, Target::TrlSft, &all, "s");
        let first: Value = serde_json::from_str(trl.text.lines().next().unwrap()).unwrap();
        assert_eq!(
            first["provenance"]["model_goal"],
            "List running shoes with prices"
        );
        assert_eq!(
            first["provenance"]["edited_goal"],
            "Compare two running shoes"
        );
        assert_eq!(first["provenance"]["review"], "edited");
        let second: Value = serde_json::from_str(trl.text.lines().nth(1).unwrap()).unwrap();
        assert_eq!(second["provenance"]["review"], Value::Null);
        assert_eq!(second["provenance"]["edited_goal"], Value::Null);
        assert_eq!(second["provenance"]["model_goal"], "Find a hat");
        // So does the native envelope's metadata; an unreviewed one is the reference's.
        let sft = samples_jsonl(&session, SampleFormat::Sft, &all);
        let lines: Vec<Value> = sft
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0]["chosen"][0]["content"],
            "Compare two running shoes"
        );
        assert_eq!(
            lines[0]["metadata"]["model_hindsight_prompt"],
            "List running shoes with prices"
        );
        assert_eq!(lines[0]["metadata"]["review"], "edited");
        assert!(lines[1]["metadata"].get("review").is_none());
        assert_eq!(sample_count(&session, &all), 2);
        assert_eq!(sample_count(&session, &reviewed), 1);
        assert_eq!(accepted_count(&session), 3);

        // The report counts review and shows each decision.
        let settings = Settings::default();
        let templates = Templates::defaults();
        let lexicon = Lexicon::default();
        let ctx = RunContext {
            review: session.review_counts(),
            ..context(&settings, &templates, &lexicon)
        };
        let report = run_report(&session, &ctx);
        assert_eq!(
            report["review"],
            json!({"reviewable": 3, "reviewed": 2, "accepted": 0, "edited": 1, "rejected": 1, "unreviewed": 1})
        );
        assert_eq!(report["samples_per_format"], 2);
        let ts = &report["trajectories"];
        assert_eq!(
            ts[0]["review"],
            json!({"decision": "edited", "goal": "Compare two running shoes", "model_goal": "List running shoes with prices"})
        );
        assert_eq!(ts[0]["hindsight_prompt"], "List running shoes with prices");
        assert_eq!(
            ts[1]["review"],
            json!({"decision": "rejected", "reason": "vague"})
        );
        assert_eq!(ts[2]["review"], json!({"decision": "unreviewed"}));
        assert!(ts[3].get("review").is_none(), "skipped: nothing to review");
        let files = [build(&session, Target::TrlSft, &all, "s")];
        let m =
            serde_json::to_value(manifest(&ctx, &all, &files.iter().collect::<Vec<_>>())).unwrap();
        assert_eq!(m["review"], report["review"]);
        assert_eq!(m["export_options"]["reviewed_only"], false);
    }
}
