//! The pipeline: detect → gate → extract → relabel → package, with the paper's defaults.
//!
//! Every trajectory ends in exactly one [`Outcome`], with the stage it reached and why:
//! accepted, skipped by a gate, rejected (the data or the model's replies did not make a
//! sample), failed (the endpoint or the configuration did not let the stage run; worth
//! retrying), or cancelled by the user.

use crate::grounding::{self, GroundingMode};
use crate::llm::{CallKind, CallRecord, CallSettings, ChatClient, ChatError, StageError};
use crate::llm::{RunGuard, Sleep};
use crate::llm::{StructuredMode, Templates, UsageByStage};
use crate::model::{ExtractedOutcome, FailureAnalysis, Sample, SampleFormat, Trajectory};
use crate::stages::detect::rules::Lexicon;
use crate::stages::relabel::{
    relabel_judged, AttemptOutcome, Judges, RelabelDecision, RelabelReport, RelabelSettings,
};
use crate::stages::{detect, extract, package};
use futures::stream::{self, FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};

/// How a stage that has both modes runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The reference's rules: free, instant, no endpoint.
    Rules,
    /// One chat call to the endpoint.
    Llm,
}

/// Everything a run depends on. There is no API key here: the key belongs to the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Stage 1 (default: rules).
    pub detection: Mode,
    /// Stage 2 (default: LLM).
    pub extraction: Mode,
    /// The model every call uses, unless `judge_model` names another for the second judge.
    pub model: String,
    pub judge_model: Option<String>,
    /// θ: the confidence the relabeler and the second judge must reach.
    pub theta: f64,
    /// δ: trajectories whose severity weight is below it are skipped.
    pub delta: f64,
    /// K: relabel attempts per trajectory.
    pub max_attempts: u32,
    /// The first relabel attempt's temperature, and that of the LLM detect/extract calls.
    pub temperature: f64,
    /// The temperature of relabel retries.
    pub retry_temperature: f64,
    pub max_tokens: u32,
    pub structured: StructuredMode,
    /// Trajectories processed at once.
    pub concurrency: usize,
    /// What an accepted goal naming things the run never saw does (default: flag).
    pub grounding: GroundingMode,
    /// The second judge's endpoint (base URL, never a key) when it is not the relabeler's.
    pub judge_endpoint: Option<String>,
    /// Second-judge calls at once on `judge_endpoint`.
    pub judge_concurrency: usize,
    /// What the judge's endpoint charges per million tokens (0: not priced), for the report.
    pub judge_price_per_million: f64,
    /// The similarity at which two hindsight goals are near-duplicates.
    pub duplicate_threshold: f64,
    /// The similarity to the original goal at which a hindsight goal is "not a new goal".
    pub restate_threshold: f64,
}

impl Default for Settings {
    /// METHOD.md's defaults: rule-based detection, LLM extraction, θ = 0.5, δ = 0.3, K = 3,
    /// temperature 0.3 (0.7 on retries), max_tokens 2048; four trajectories at once.
    fn default() -> Self {
        Settings {
            detection: Mode::Rules,
            extraction: Mode::Llm,
            model: String::new(),
            judge_model: None,
            theta: 0.5,
            delta: 0.3,
            max_attempts: 3,
            temperature: 0.3,
            retry_temperature: 0.7,
            max_tokens: 2048,
            structured: StructuredMode::JsonSchema,
            concurrency: 4,
            grounding: GroundingMode::Flag,
            judge_endpoint: None,
            judge_concurrency: 4,
            judge_price_per_million: 0.0,
            duplicate_threshold: crate::duplicates::DEFAULT_THRESHOLD,
            restate_threshold: crate::duplicates::DEFAULT_RESTATE_THRESHOLD,
        }
    }
}

impl Settings {
    /// Checks ranges; the message names the setting and what it accepts.
    pub fn validate(&self) -> Result<(), String> {
        let unit = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be between 0 and 1, not {v}"))
            }
        };
        unit("θ", self.theta)?;
        unit("δ", self.delta)?;
        for (name, t) in [
            ("temperature", self.temperature),
            ("retry temperature", self.retry_temperature),
        ] {
            if !(0.0..=2.0).contains(&t) {
                return Err(format!("{name} must be between 0 and 2, not {t}"));
            }
        }
        if self.max_attempts == 0 {
            return Err("K (attempts) must be at least 1".into());
        }
        if self.max_tokens == 0 {
            return Err("max_tokens must be at least 1".into());
        }
        if self.concurrency == 0 {
            return Err("concurrency must be at least 1".into());
        }
        if self.judge_endpoint.is_some() && self.judge_concurrency == 0 {
            return Err("the judge's concurrency must be at least 1".into());
        }
        if !(self.judge_price_per_million >= 0.0 && self.judge_price_per_million.is_finite()) {
            return Err(format!(
                "the judge's price per million tokens must be 0 or more, not {}",
                self.judge_price_per_million
            ));
        }
        if self.model.trim().is_empty() {
            return Err("choose a model: the relabeling stage needs one".into());
        }
        Ok(())
    }

    /// The second judge's model: `judge_model`, else the relabeler's.
    pub fn judge_model_name(&self) -> &str {
        self.judge_model
            .as_deref()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or(&self.model)
    }

    /// Whether the second judge is the relabeling model itself (on the same endpoint or on
    /// another serving the same model name).
    pub fn judge_is_same_model(&self) -> bool {
        self.judge_model_name() == self.model
    }

    /// Settings of the LLM-mode detect and extract calls.
    pub fn call_settings(&self) -> CallSettings {
        CallSettings {
            model: self.model.clone(),
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            structured: self.structured,
        }
    }

    /// Settings of Algorithm 1.
    pub fn relabel_settings(&self) -> RelabelSettings {
        RelabelSettings {
            model: self.model.clone(),
            judge_model: self.judge_model.clone(),
            theta: self.theta,
            max_attempts: self.max_attempts,
            first_temperature: self.temperature,
            retry_temperature: self.retry_temperature,
            max_tokens: self.max_tokens,
            structured: self.structured,
        }
    }
}

/// The stage a trajectory's outcome was decided at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Detection,
    Gate,
    Extraction,
    Relabeling,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Detection => "detection",
            Stage::Gate => "gate",
            Stage::Extraction => "extraction",
            Stage::Relabeling => "relabeling",
        }
    }
}

/// How a trajectory ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// A hindsight goal was accepted; the trajectory yields samples.
    Accepted {
        judges: Judges,
        /// The sample's relabel confidence: (c + c2) / 2, or c for the single-judge fallback.
        confidence: f64,
        relabel_confidence: f64,
        judge_confidence: Option<f64>,
        /// The attempt (1-based) whose candidate was accepted.
        attempt: u32,
    },
    /// A gate dropped it: not a failure, not recoverable, or weight below δ.
    Skipped { stage: Stage, reason: String },
    /// The stage ran and produced nothing usable (no acceptable hindsight goal, an unreadable
    /// reply).
    Rejected { stage: Stage, reason: String },
    /// The stage could not run: the endpoint failed or a prompt template is broken. Retrying
    /// may help.
    Failed { stage: Stage, reason: String },
    /// The user stopped the run before this trajectory was decided.
    Cancelled { stage: Stage },
}

impl Outcome {
    /// "accepted", "skipped", "rejected", "failed" or "cancelled".
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Accepted { .. } => "accepted",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Rejected { .. } => "rejected",
            Outcome::Failed { .. } => "failed",
            Outcome::Cancelled { .. } => "cancelled",
        }
    }

    /// The stage the outcome was decided at (accepted trajectories went through all stages).
    pub fn stage(&self) -> Stage {
        match self {
            Outcome::Accepted { .. } => Stage::Relabeling,
            Outcome::Skipped { stage, .. }
            | Outcome::Rejected { stage, .. }
            | Outcome::Failed { stage, .. }
            | Outcome::Cancelled { stage } => *stage,
        }
    }

    /// Why it ended this way, in a sentence.
    pub fn reason(&self) -> String {
        match self {
            Outcome::Accepted {
                judges, confidence, ..
            } => match judges {
                Judges::RelabelerAndJudge => {
                    format!("accepted by the relabeler and the second judge (confidence {confidence:.2})")
                }
                Judges::SingleJudgeFallback => {
                    format!("accepted by the single-judge fallback (confidence {confidence:.2})")
                }
            },
            Outcome::Skipped { reason, .. }
            | Outcome::Rejected { reason, .. }
            | Outcome::Failed { reason, .. } => reason.clone(),
            Outcome::Cancelled { .. } => "stopped by the user".into(),
        }
    }

    pub fn is_accepted(&self) -> bool {
        matches!(self, Outcome::Accepted { .. })
    }
}

/// Everything the pipeline did for one trajectory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryResult {
    pub trajectory_id: String,
    pub analysis: Option<FailureAnalysis>,
    pub extracted: Option<ExtractedOutcome>,
    /// Stage 3's full record, every attempt with its raw reply.
    pub relabel: Option<RelabelReport>,
    /// The LLM-mode detect and extract calls (relabel and judge calls are in `relabel`).
    pub stage_calls: Vec<CallRecord>,
    pub outcome: Outcome,
}

impl TrajectoryResult {
    /// A result with no stage record, only its outcome (for tests).
    #[cfg(test)]
    pub(crate) fn bare(outcome: Outcome) -> Self {
        TrajectoryResult {
            trajectory_id: String::new(),
            analysis: None,
            extracted: None,
            relabel: None,
            stage_calls: vec![],
            outcome,
        }
    }

    /// Calls and tokens this trajectory cost, per stage.
    pub fn usage(&self) -> UsageByStage {
        let mut usage = UsageByStage::default();
        for call in self.calls() {
            usage.add(call);
        }
        usage
    }

    /// Every call made for this trajectory, in order.
    pub fn calls(&self) -> impl Iterator<Item = &CallRecord> {
        self.stage_calls
            .iter()
            .chain(self.relabel.iter().flat_map(|r| r.calls()))
    }

    /// Tries after the first over every call (requests the endpoint failed and the client
    /// retried).
    pub fn retries(&self) -> u32 {
        self.calls().map(|c| c.retries).sum()
    }

    /// The warnings its calls raised, one entry per kind, in the order first seen.
    pub fn flags(&self) -> Vec<FlagSummary> {
        let mut out: Vec<FlagSummary> = Vec::new();
        for call in self.calls() {
            for flag in &call.flags {
                match out.iter_mut().find(|s| s.kind == flag.kind()) {
                    Some(summary) => summary.calls += 1,
                    None => out.push(FlagSummary {
                        kind: flag.kind(),
                        calls: 1,
                        advice: flag.advice(),
                    }),
                }
            }
        }
        out
    }

    /// Whether the endpoint being out of reach decided this result: some call still failed
    /// after its retries with a network error, a timeout, HTTP 408, 429 or 5xx, and the
    /// outcome is not an acceptance by both judges (which stands whatever else failed). The
    /// result then says nothing about the trajectory: a run puts it back to run again.
    pub fn endpoint_unavailable(&self) -> bool {
        match &self.outcome {
            Outcome::Accepted {
                judges: Judges::RelabelerAndJudge,
                ..
            }
            | Outcome::Cancelled { .. } => false,
            _ => self
                .calls()
                .any(|c| c.error.as_ref().is_some_and(ChatError::is_transient)),
        }
    }

    /// Whether the result ended in an error of the endpoint or of the way to it: the
    /// endpoint was unavailable ([`Self::endpoint_unavailable`]), or the outcome is
    /// [`Outcome::Failed`] because a call failed (any HTTP error, an unreadable answer), not
    /// because a prompt template is broken. "Retry failed" runs these again.
    pub fn ended_in_call_error(&self) -> bool {
        self.endpoint_unavailable()
            || (matches!(self.outcome, Outcome::Failed { .. })
                && self
                    .calls()
                    .last()
                    .is_some_and(|c| c.error.as_ref().is_some_and(|e| !e.is_cancelled())))
    }

    /// The packaged sample in `format` when the trajectory was accepted. The sample's weight is
    /// Stage 1's severity weight.
    pub fn sample(&self, trajectory: &Trajectory, format: SampleFormat) -> Option<Sample> {
        let relabel = self.relabel.as_ref()?.relabel()?;
        let weight = self.analysis.as_ref()?.weight;
        Some(package::package(trajectory, relabel, weight, format))
    }
}

/// The calls of a trajectory that raised one kind of [`CallFlag`](crate::llm::CallFlag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagSummary {
    /// [`CallFlag::kind`](crate::llm::CallFlag::kind).
    pub kind: &'static str,
    pub calls: usize,
    /// The advice of the first such call.
    pub advice: String,
}

/// Why the gates drop a trajectory, or `None` when it goes on to extraction.
pub fn gate(analysis: &FailureAnalysis, delta: f64) -> Option<String> {
    if !analysis.is_failure {
        Some("not a failure".into())
    } else if !analysis.recoverable {
        Some(match analysis.failure_type {
            Some(crate::model::FailureType::ToolError) => {
                "not recoverable: a tool error, and no observation to learn from".into()
            }
            _ => "not recoverable: no step observed anything substantive".into(),
        })
    } else if analysis.weight < delta {
        Some(format!(
            "severity weight {} is below δ = {}",
            analysis.weight, delta
        ))
    } else {
        None
    }
}

/// What the free, rule-based stages say of a trajectory: shown as soon as files are loaded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleView {
    pub analysis: FailureAnalysis,
    /// The lexicon keywords that fired, per failure type (the "why" of the analysis).
    pub hits: Vec<detect::rules::TypeHits>,
    pub extracted: ExtractedOutcome,
    /// Why the gates would drop it under rule-based detection, if they would.
    pub skip_reason: Option<String>,
}

/// Runs the rule-based Stages 1 and 2 and the gates.
pub fn rule_view(trajectory: &Trajectory, lexicon: &Lexicon, delta: f64) -> RuleView {
    let (analysis, hits) = detect::rules::detect_explained(trajectory, lexicon);
    RuleView {
        hits,
        extracted: extract::rules::extract(trajectory),
        skip_reason: gate(&analysis, delta),
        analysis,
    }
}

/// What a failed LLM-mode stage call means for the trajectory.
fn stage_error_outcome(stage: Stage, error: &StageError) -> Outcome {
    match error {
        StageError::Call(record) if record.error.as_ref().is_some_and(ChatError::is_cancelled) => {
            Outcome::Cancelled { stage }
        }
        StageError::Unparseable(_) => Outcome::Rejected {
            stage,
            reason: format!("unreadable reply: {error}"),
        },
        StageError::Template(_) | StageError::Call(_) => Outcome::Failed {
            stage,
            reason: error.to_string(),
        },
    }
}

/// Runs the whole pipeline on one trajectory, every call on `client`.
pub async fn process<C: ChatClient>(
    client: &C,
    templates: &Templates,
    settings: &Settings,
    lexicon: &Lexicon,
    trajectory: &Trajectory,
) -> TrajectoryResult {
    process_judged(client, client, templates, settings, lexicon, trajectory).await
}

/// Runs the whole pipeline on one trajectory, the second judge's calls on `judge` and every
/// other call on `client`.
pub async fn process_judged<C: ChatClient, J: ChatClient>(
    client: &C,
    judge: &J,
    templates: &Templates,
    settings: &Settings,
    lexicon: &Lexicon,
    trajectory: &Trajectory,
) -> TrajectoryResult {
    let mut result = TrajectoryResult {
        trajectory_id: trajectory.trajectory_id.clone(),
        analysis: None,
        extracted: None,
        relabel: None,
        stage_calls: Vec::new(),
        outcome: Outcome::Cancelled {
            stage: Stage::Detection,
        },
    };

    // Stage 1.
    let analysis = match settings.detection {
        Mode::Rules => detect::rules::detect_with(trajectory, lexicon),
        Mode::Llm => {
            match detect::llm::detect(client, templates, &settings.call_settings(), trajectory)
                .await
            {
                Ok((analysis, call)) => {
                    result.stage_calls.push(call);
                    analysis
                }
                Err(e) => {
                    result.stage_calls.extend(e.call().cloned());
                    result.outcome = stage_error_outcome(Stage::Detection, &e);
                    return result;
                }
            }
        }
    };
    let skip = gate(&analysis, settings.delta);
    result.analysis = Some(analysis);
    if let Some(reason) = skip {
        result.outcome = Outcome::Skipped {
            stage: Stage::Gate,
            reason,
        };
        return result;
    }

    // Stage 2.
    let extracted = match settings.extraction {
        Mode::Rules => extract::rules::extract(trajectory),
        Mode::Llm => {
            match extract::llm::extract(client, templates, &settings.call_settings(), trajectory)
                .await
            {
                Ok((extracted, call)) => {
                    result.stage_calls.push(call);
                    extracted
                }
                Err(e) => {
                    result.stage_calls.extend(e.call().cloned());
                    result.outcome = stage_error_outcome(Stage::Extraction, &e);
                    return result;
                }
            }
        }
    };

    // Stage 3.
    let report = relabel_judged(
        client,
        judge,
        templates,
        &settings.relabel_settings(),
        trajectory,
        &extracted,
    )
    .await;
    let mut report = report;
    check_grounding(&mut report, trajectory, settings.grounding);
    result.extracted = Some(extracted);
    result.outcome = relabel_outcome(&report);
    result.relabel = Some(report);
    result
}

/// The grounding check after Algorithm 1's acceptance: recorded with the report, and in
/// [`GroundingMode::Reject`] an ungrounded goal turns the acceptance into a rejection that
/// says why (the attempts stay as they were).
pub fn check_grounding(report: &mut RelabelReport, trajectory: &Trajectory, mode: GroundingMode) {
    if mode == GroundingMode::Off {
        return;
    }
    let Some(goal) = report.relabel().map(|r| r.hindsight_prompt.clone()) else {
        return;
    };
    let check = grounding::check(&goal, trajectory);
    if mode == GroundingMode::Reject {
        if let Some(reason) = check.reason() {
            report.decision = RelabelDecision::Rejected {
                reason: format!("accepted goal rejected by the grounding check: {reason}"),
            };
        }
    }
    report.grounding = Some(check);
}

fn relabel_outcome(report: &RelabelReport) -> Outcome {
    let stage = Stage::Relabeling;
    match &report.decision {
        RelabelDecision::Accepted {
            relabel,
            judges,
            attempt,
            relabel_confidence,
            judge_confidence,
        } => Outcome::Accepted {
            judges: *judges,
            confidence: relabel.confidence,
            relabel_confidence: *relabel_confidence,
            judge_confidence: *judge_confidence,
            attempt: *attempt,
        },
        RelabelDecision::Cancelled => Outcome::Cancelled { stage },
        RelabelDecision::Rejected { reason } => {
            // No attempt got through to the model: the endpoint, not the data, decided.
            let all_calls_failed = !report.attempts.is_empty()
                && report
                    .attempts
                    .iter()
                    .all(|a| a.outcome == AttemptOutcome::CallFailed);
            if all_calls_failed || report.attempts.is_empty() {
                // The last call that went out says why (later ones may have been held back).
                let last_error = report
                    .attempts
                    .iter()
                    .rev()
                    .find(|a| !a.call.not_sent())
                    .or(report.attempts.last())
                    .and_then(|a| a.call.problem())
                    .unwrap_or_else(|| reason.clone());
                Outcome::Failed {
                    stage,
                    reason: if report.attempts.is_empty() {
                        reason.clone()
                    } else {
                        format!("every relabel call failed; last: {last_error}")
                    },
                }
            } else {
                Outcome::Rejected {
                    stage,
                    reason: reason.clone(),
                }
            }
        }
    }
}

/// Counts over a run's results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub done: usize,
    pub accepted: usize,
    /// Accepted with the second judge's agreement.
    pub accepted_two_judges: usize,
    /// Accepted by the single-judge fallback.
    pub accepted_single_judge: usize,
    pub skipped: usize,
    pub rejected: usize,
    pub failed: usize,
    pub cancelled: usize,
    pub usage: UsageByStage,
}

impl Totals {
    pub fn add(&mut self, result: &TrajectoryResult) {
        self.done += 1;
        match &result.outcome {
            Outcome::Accepted { judges, .. } => {
                self.accepted += 1;
                match judges {
                    Judges::RelabelerAndJudge => self.accepted_two_judges += 1,
                    Judges::SingleJudgeFallback => self.accepted_single_judge += 1,
                }
            }
            Outcome::Skipped { .. } => self.skipped += 1,
            Outcome::Rejected { .. } => self.rejected += 1,
            Outcome::Failed { .. } => self.failed += 1,
            Outcome::Cancelled { .. } => self.cancelled += 1,
        }
        self.usage.merge(&result.usage());
    }

    /// Calls made, all stages.
    pub fn calls(&self) -> u32 {
        CallKind::ALL
            .iter()
            .map(|k| self.usage.stage(*k).calls)
            .sum()
    }

    /// Retried tries, all stages.
    pub fn retries(&self) -> u32 {
        self.usage.total().retries
    }
}

/// What to do with a finished trajectory's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep it: it is the trajectory's outcome.
    Record,
    /// Drop it and run the trajectory again later: the endpoint was out of reach
    /// ([`TrajectoryResult::endpoint_unavailable`]). The run pauses.
    PutBack,
}

/// How many unreadable replies in a row of one stage pause a run (see [`Breaker`]).
pub const BREAKER_REPLIES: usize = 10;

/// Why a run paused.
#[derive(Debug, Clone, PartialEq)]
pub enum PauseCause {
    /// A call still failed after its retries with a network error, a timeout, HTTP 408, 429 or
    /// 5xx: the endpoint is away.
    EndpointAway { error: String },
    /// The last `replies` replies of `stage` could not be read (prose, cut-off JSON, fields
    /// that break the schema): going on would only spend tokens.
    Unreadable {
        stage: CallKind,
        replies: usize,
        /// The parse error of the last one.
        parse_error: String,
    },
}

impl PauseCause {
    /// What to change before resuming.
    pub fn advice(&self) -> String {
        match self {
            PauseCause::EndpointAway { .. } => "Check the endpoint (Check connection helps), \
                 then Resume."
                .into(),
            PauseCause::Unreadable { parse_error, .. } => {
                let mut advice = String::from(
                    "Try another model (small models often cannot follow the reply format), \
                     set Structured output to json_schema (or json_object when the endpoint \
                     refuses json_schema)",
                );
                if parse_error.contains("finish reason: length") || parse_error.contains("EOF") {
                    advice.push_str(", and raise max_tokens: the replies were cut off");
                } else {
                    advice.push_str(", or raise max_tokens if the replies are cut off");
                }
                advice.push_str("; then Resume.");
                advice
            }
        }
    }
}

impl std::fmt::Display for PauseCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PauseCause::EndpointAway { error } => {
                write!(f, "the endpoint stopped answering ({error})")
            }
            PauseCause::Unreadable {
                stage,
                replies,
                parse_error,
            } => write!(
                f,
                "the last {replies} {} replies could not be read; the last one: {parse_error}",
                stage.as_str()
            ),
        }
    }
}

/// Watches the replies of each stage and trips when the last `limit` of one stage were all
/// unreadable. Calls that failed (no reply) and calls held back leave the count as it is; a
/// readable reply starts it again. A limit of 0 never trips.
///
/// The same unreadable reply to the same request counts once in a streak: a model that
/// answers one prompt with the same prose on every try (temperature 0, a relabel attempt
/// sent again) says nothing new about the other prompts, so a few such prompts in a row do
/// not pause a run whose other replies read well.
#[derive(Debug, Clone, PartialEq)]
pub struct Breaker {
    limit: usize,
    streak: [Vec<u64>; 4],
}

impl Breaker {
    pub fn new(limit: usize) -> Self {
        Breaker {
            limit,
            streak: Default::default(),
        }
    }

    fn slot(kind: CallKind) -> usize {
        CallKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
    }

    /// The request as the exchange log keys it (the same request is the same key there),
    /// with the reply.
    fn fingerprint(call: &CallRecord) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        crate::llm::exchange::request_key("", &call.request).hash(&mut h);
        call.reply.hash(&mut h);
        h.finish()
    }

    /// Takes in one call; returns the cause when this reply trips the breaker.
    pub fn observe(&mut self, call: &CallRecord) -> Option<PauseCause> {
        let slot = Self::slot(call.kind);
        if call.failed() {
            return None;
        }
        match &call.parse_error {
            None => {
                self.streak[slot].clear();
                None
            }
            Some(error) => {
                let seen = &mut self.streak[slot];
                let print = Self::fingerprint(call);
                if !seen.contains(&print) {
                    seen.push(print);
                }
                (self.limit > 0 && seen.len() >= self.limit).then(|| PauseCause::Unreadable {
                    stage: call.kind,
                    replies: seen.len(),
                    parse_error: error.clone(),
                })
            }
        }
    }

    /// Forgets the streaks (on resuming with new settings).
    pub fn reset(&mut self) {
        self.streak = Default::default();
    }
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new(BREAKER_REPLIES)
    }
}

/// The decisions of a run loop that pauses when the endpoint goes away.
///
/// The loop asks [`RunControl::start_next`] for trajectories to start (at most `concurrency` at a
/// time, none once paused or stopped) and reports each result to [`RunControl::finished`],
/// which says whether to record it. The first result that found the endpoint out of reach
/// pauses the run: nothing new starts, the trajectories still in flight finish (and are put
/// back too if they fail the same way), and the loop ends when none is left in flight. So does
/// the [`Breaker`] when a stage's replies keep being unreadable (those results are kept: the
/// model did answer). [`RunControl::resume`] then continues with the put-back trajectories
/// first and the never-started ones after. With a [`RunGuard`] shared with the client, nothing
/// new starts once the guard holds requests (a stop, a call that gave up).
#[derive(Debug, Clone)]
pub struct RunControl {
    queue: std::collections::VecDeque<usize>,
    in_flight: usize,
    concurrency: usize,
    paused: Option<PauseCause>,
    put_back: Vec<usize>,
    breaker: Breaker,
    guard: Option<RunGuard>,
}

impl RunControl {
    /// A run over `items` (session indexes), `concurrency` at a time (at least one).
    pub fn new(items: impl IntoIterator<Item = usize>, concurrency: usize) -> Self {
        RunControl {
            queue: items.into_iter().collect(),
            in_flight: 0,
            concurrency: concurrency.max(1),
            paused: None,
            put_back: Vec::new(),
            breaker: Breaker::default(),
            guard: None,
        }
    }

    /// Watches the run's requests through `guard` (the one the client shares).
    pub fn with_guard(mut self, guard: RunGuard) -> Self {
        self.guard = Some(guard);
        self
    }

    /// Pauses after `limit` unreadable replies in a row of one stage (0: never).
    pub fn with_breaker(mut self, limit: usize) -> Self {
        self.breaker = Breaker::new(limit);
        self
    }

    fn held(&self) -> bool {
        self.guard.as_ref().is_some_and(|g| g.hold().is_some())
    }

    /// Whether the user stopped the run.
    pub fn is_stopped(&self) -> bool {
        self.guard.as_ref().is_some_and(RunGuard::is_stopped)
    }

    /// The next trajectory to start now, if any: none while paused, stopped or at full
    /// concurrency.
    pub fn start_next(&mut self) -> Option<usize> {
        if self.paused.is_some() || self.held() || self.in_flight >= self.concurrency {
            return None;
        }
        let item = self.queue.pop_front()?;
        self.in_flight += 1;
        Some(item)
    }

    /// A started trajectory ended with `result`.
    pub fn finished(&mut self, item: usize, result: &TrajectoryResult) -> Verdict {
        self.in_flight = self.in_flight.saturating_sub(1);
        if result.endpoint_unavailable() {
            if self.paused.is_none() {
                let error = self
                    .guard
                    .as_ref()
                    .and_then(RunGuard::gave_up)
                    .map(|e| e.to_string())
                    .or_else(|| {
                        result
                            .calls()
                            .filter_map(|c| c.error.as_ref())
                            .filter(|e| e.is_transient() && !e.is_not_sent())
                            .last()
                            .map(ToString::to_string)
                    })
                    .unwrap_or_else(|| result.outcome.reason());
                self.paused = Some(PauseCause::EndpointAway { error });
            }
            self.put_back.push(item);
            Verdict::PutBack
        } else {
            for call in result.calls() {
                if let Some(cause) = self.breaker.observe(call) {
                    self.paused.get_or_insert(cause);
                }
            }
            Verdict::Record
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused.is_some()
    }

    /// Why the run paused.
    pub fn pause_cause(&self) -> Option<&PauseCause> {
        self.paused.as_ref()
    }

    /// The reason the run paused, in words.
    pub fn pause_reason(&self) -> Option<String> {
        self.paused.as_ref().map(ToString::to_string)
    }

    /// Nothing in flight and nothing more will start: the loop may end.
    pub fn is_settled(&self) -> bool {
        self.in_flight == 0 && (self.paused.is_some() || self.held() || self.queue.is_empty())
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The trajectories put back since the run (or its last resume) started.
    pub fn put_back(&self) -> &[usize] {
        &self.put_back
    }

    /// Trajectories that were never started (so far).
    pub fn not_started(&self) -> usize {
        self.queue.len()
    }

    /// What is left to run: the put-back trajectories, then those never started.
    pub fn remaining(&self) -> Vec<usize> {
        self.put_back
            .iter()
            .chain(self.queue.iter())
            .copied()
            .collect()
    }

    /// Changes how many trajectories may run at once (e.g. on resuming with new settings).
    pub fn set_concurrency(&mut self, concurrency: usize) {
        self.concurrency = concurrency.max(1);
    }

    /// Continues after a pause: the put-back trajectories run first, requests go out again
    /// and the breaker starts counting afresh.
    pub fn resume(&mut self) {
        self.paused = None;
        self.breaker.reset();
        if let Some(guard) = &self.guard {
            guard.resume();
        }
        for item in self.put_back.drain(..).rev() {
            self.queue.push_front(item);
        }
    }
}

/// Runs the pipeline over `trajectories`, `settings.concurrency` at a time, and hands each
/// result to `on_result` with its index as soon as it is decided (in completion order).
/// Dropping the returned future stops the run: calls in flight are abandoned.
pub async fn run<C, F>(
    client: &C,
    templates: &Templates,
    settings: &Settings,
    lexicon: &Lexicon,
    trajectories: &[Trajectory],
    mut on_result: F,
) where
    C: ChatClient,
    F: FnMut(usize, TrajectoryResult),
{
    let concurrency = settings.concurrency.max(1);
    let mut results = stream::iter(trajectories.iter().enumerate())
        .map(|(i, t)| async move { (i, process(client, templates, settings, lexicon, t).await) })
        .buffer_unordered(concurrency);
    while let Some((i, result)) = results.next().await {
        on_result(i, result);
    }
}

/// What a controlled run needs besides the client.
#[derive(Debug, Clone, Copy)]
pub struct RunSetup<'a> {
    pub templates: &'a Templates,
    pub settings: &'a Settings,
    pub lexicon: &'a Lexicon,
}

/// Runs the pipeline under `control` until it settles (everything ran, or the run paused and
/// what was in flight finished). `load` gives the trajectory of a session index when it
/// starts. Each result goes to `on_result` with the control's verdict; when `on_result`
/// returns true the loop lets others run (`yield_now.sleep(0)`) before going on.
pub async fn run_controlled<C, S, L, F>(
    client: &C,
    setup: RunSetup<'_>,
    control: &mut RunControl,
    load: L,
    yield_now: &S,
    on_result: F,
) where
    C: ChatClient,
    S: Sleep,
    L: FnMut(usize) -> Trajectory,
    F: FnMut(usize, Verdict, TrajectoryResult) -> bool,
{
    run_controlled_judged(client, client, setup, control, load, yield_now, on_result).await
}

/// [`run_controlled`] with the second judge's calls on `judge`.
pub async fn run_controlled_judged<C, J, S, L, F>(
    client: &C,
    judge: &J,
    setup: RunSetup<'_>,
    control: &mut RunControl,
    mut load: L,
    yield_now: &S,
    mut on_result: F,
) where
    C: ChatClient,
    J: ChatClient,
    S: Sleep,
    L: FnMut(usize) -> Trajectory,
    F: FnMut(usize, Verdict, TrajectoryResult) -> bool,
{
    let mut running = FuturesUnordered::new();
    loop {
        while let Some(item) = control.start_next() {
            let trajectory = load(item);
            running.push(async move {
                let result = process_judged(
                    client,
                    judge,
                    setup.templates,
                    setup.settings,
                    setup.lexicon,
                    &trajectory,
                )
                .await;
                (item, result)
            });
        }
        let Some((item, result)) = running.next().await else {
            break;
        };
        let verdict = control.finished(item, &result);
        if on_result(item, verdict, result) {
            yield_now.sleep(0).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::testing::ScriptedClient;
    use crate::llm::ChatRequest;
    use crate::model::{FailureType, Step};
    use futures::executor::block_on;

    fn step(obs: &str) -> Step {
        Step {
            thought: "look".into(),
            action_name: "search".into(),
            action_input: Default::default(),
            observation: obs.into(),
            call: None,
            kind: Default::default(),
        }
    }

    fn trajectory(id: &str, failure_reason: &str, obs: &str) -> Trajectory {
        Trajectory {
            trajectory_id: id.into(),
            original_prompt: "Find a laptop under $500".into(),
            steps: vec![step(obs)],
            final_answer: String::new(),
            failure_reason: failure_reason.into(),
            metadata: Default::default(),
            origin: None,
        }
    }

    fn good() -> Trajectory {
        // "exceeds" → constraint_violation, severity 0.4; a substantive observation.
        trajectory(
            "good",
            "The laptop exceeds the budget",
            "Found Dell XPS 13 for $899 with 16 GB RAM and 512 GB SSD",
        )
    }

    fn settings() -> Settings {
        Settings {
            model: "m".into(),
            extraction: Mode::Rules,
            concurrency: 1,
            ..Settings::default()
        }
    }

    const RELABEL_OK: &str = r#"{"hindsight_prompt": "Find the price and specs of the Dell XPS 13", "is_valid_replay": true, "rationale": "the search shows it", "confidence": 0.9}"#;
    const JUDGE_OK: &str = r#"{"is_valid": true, "confidence": 0.7, "rejection_reason": ""}"#;

    fn run_one(client: &ScriptedClient, s: &Settings, t: &Trajectory) -> TrajectoryResult {
        block_on(process(
            client,
            &Templates::defaults(),
            s,
            &Lexicon::default(),
            t,
        ))
    }

    #[test]
    fn defaults_are_the_papers() {
        let s = Settings::default();
        assert_eq!((s.theta, s.delta, s.max_attempts), (0.5, 0.3, 3));
        assert_eq!((s.temperature, s.max_tokens), (0.3, 2048));
        assert_eq!((s.detection, s.extraction), (Mode::Rules, Mode::Llm));
        assert!(s.validate().is_err(), "no model chosen yet");
        assert!(settings().validate().is_ok());
        let bad = Settings {
            theta: 1.5,
            ..settings()
        };
        assert!(bad.validate().unwrap_err().contains("θ"));
    }

    #[test]
    fn accepted_trajectory_yields_samples_weighted_by_severity() {
        let client = ScriptedClient::with_replies([Ok(RELABEL_OK), Ok(JUDGE_OK)]);
        let t = good();
        let r = run_one(&client, &settings(), &t);
        match &r.outcome {
            Outcome::Accepted {
                judges,
                confidence,
                judge_confidence,
                ..
            } => {
                assert_eq!(*judges, Judges::RelabelerAndJudge);
                assert_eq!(*confidence, (0.9 + 0.7) / 2.0);
                assert_eq!(*judge_confidence, Some(0.7));
            }
            other => panic!("expected acceptance, got {other:?}"),
        }
        let sft = r.sample(&t, SampleFormat::Sft).unwrap();
        assert_eq!(
            sft.hindsight_prompt,
            "Find the price and specs of the Dell XPS 13"
        );
        assert_eq!(sft.weight, r.analysis.as_ref().unwrap().weight);
        assert_eq!(sft.weight, 0.4);
        assert_eq!(r.usage().stage(CallKind::Relabel).calls, 1);
        assert_eq!(r.usage().stage(CallKind::Judge).calls, 1);
    }

    #[test]
    fn gates_skip_without_calling_the_endpoint() {
        let client = ScriptedClient::new();
        // Tool error: never recoverable.
        let tool = trajectory(
            "tool",
            "",
            "Traceback (most recent call last): error: boom and more text",
        );
        let r = run_one(&client, &settings(), &tool);
        assert_eq!(r.outcome.status(), "skipped");
        assert!(r.outcome.reason().contains("tool error"), "{:?}", r.outcome);
        // Nothing substantive observed.
        let thin = trajectory("thin", "wrong answer", "ok");
        let r = run_one(&client, &settings(), &thin);
        assert!(r.outcome.reason().contains("not recoverable"));
        // Weight below δ: 0.4 < 0.5.
        let s = Settings {
            delta: 0.5,
            ..settings()
        };
        let r = run_one(&client, &s, &good());
        assert_eq!(
            r.outcome,
            Outcome::Skipped {
                stage: Stage::Gate,
                reason: "severity weight 0.4 is below δ = 0.5".into()
            }
        );
        assert_eq!(client.request_count(), 0);
    }

    #[test]
    fn llm_detection_can_declare_no_failure() {
        let client = ScriptedClient::with_replies([Ok(
            r#"{"is_failure": false, "failure_type": null, "severity": 0.0, "weight": 0.0, "recoverable": true, "explanation": "goal met"}"#,
        )]);
        let s = Settings {
            detection: Mode::Llm,
            ..settings()
        };
        let r = run_one(&client, &s, &good());
        assert_eq!(r.outcome.reason(), "not a failure");
        assert_eq!(r.stage_calls.len(), 1);
        assert_eq!(r.usage().stage(CallKind::Detect).calls, 1);
    }

    #[test]
    fn llm_extraction_errors_are_failed_or_rejected() {
        let s = Settings {
            extraction: Mode::Llm,
            ..settings()
        };
        let client =
            ScriptedClient::with_replies([Err::<&str, _>(ChatError::http(503, "overloaded"))]);
        let r = run_one(&client, &s, &good());
        assert!(matches!(
            r.outcome,
            Outcome::Failed {
                stage: Stage::Extraction,
                ..
            }
        ));
        assert!(r.outcome.reason().contains("503"));

        let client = ScriptedClient::with_replies([Ok("I cannot help with that.")]);
        let r = run_one(&client, &s, &good());
        assert!(matches!(
            r.outcome,
            Outcome::Rejected {
                stage: Stage::Extraction,
                ..
            }
        ));
        assert_eq!(r.stage_calls.len(), 1);
    }

    #[test]
    fn relabeling_that_never_reached_the_model_is_failed_not_rejected() {
        let err = || Err::<&str, _>(ChatError::Network("connection refused".into()));
        let client = ScriptedClient::with_replies([err(), err(), err()]);
        let r = run_one(&client, &settings(), &good());
        match &r.outcome {
            Outcome::Failed { stage, reason } => {
                assert_eq!(*stage, Stage::Relabeling);
                assert!(reason.contains("connection refused"), "{reason}");
            }
            other => panic!("expected failure, got {other:?}"),
        }
        // One garbled reply among failed calls: the model was reached, so it is a rejection.
        let client = ScriptedClient::with_replies([err(), Ok("nonsense"), err()]);
        let r = run_one(&client, &settings(), &good());
        assert_eq!(r.outcome.status(), "rejected");
    }

    #[test]
    fn cancelled_calls_cancel_the_trajectory() {
        let client = ScriptedClient::with_replies([Err::<&str, _>(ChatError::Cancelled)]);
        let r = run_one(&client, &settings(), &good());
        assert_eq!(
            r.outcome,
            Outcome::Cancelled {
                stage: Stage::Relabeling
            }
        );
    }

    #[test]
    fn run_accounts_for_every_trajectory_once() {
        // Answer by request so the order of concurrent calls does not matter.
        let client = ScriptedClient::from_fn(|req: &ChatRequest| {
            let system = &req.messages[0].content;
            if req.temperature == 0.0 {
                Ok(JUDGE_OK.to_string())
            } else if system.contains("hindsight") || system.contains("relabel") {
                Ok(RELABEL_OK.to_string())
            } else {
                Err(ChatError::Network("unexpected call".into()))
            }
        });
        let mut ts: Vec<Trajectory> = (0..10)
            .map(|i| {
                let mut t = good();
                t.trajectory_id = format!("t{i}");
                t
            })
            .collect();
        ts[3].steps[0].observation = "ok".into(); // not recoverable
        ts[7].steps[0].observation = "error: 500 internal".into(); // tool error
        let s = Settings {
            concurrency: 4,
            ..settings()
        };
        let mut seen = vec![0; ts.len()];
        let mut totals = Totals::default();
        block_on(run(
            &client,
            &Templates::defaults(),
            &s,
            &Lexicon::default(),
            &ts,
            |i, r| {
                seen[i] += 1;
                assert_eq!(r.trajectory_id, ts[i].trajectory_id);
                totals.add(&r);
            },
        ));
        assert!(seen.iter().all(|n| *n == 1), "{seen:?}");
        assert_eq!(totals.done, 10);
        assert_eq!(totals.accepted, 8);
        assert_eq!(totals.accepted_two_judges, 8);
        assert_eq!(totals.skipped, 2);
        assert_eq!(totals.calls(), 16);
    }

    /// A client that answers like `run_accounts_for_every_trajectory_once`'s, or fails with
    /// `down` (through the given retry policy) while `up` is false.
    fn switchable(
        up: std::rc::Rc<std::cell::Cell<bool>>,
        down: ChatError,
    ) -> crate::llm::RetryingClient<ScriptedClient, crate::llm::FakeClock> {
        let inner = ScriptedClient::from_fn(move |req: &ChatRequest| {
            if !up.get() {
                Err(down.clone())
            } else if req.temperature == 0.0 {
                Ok(JUDGE_OK.to_string())
            } else {
                Ok(RELABEL_OK.to_string())
            }
        });
        crate::llm::RetryingClient::new(
            inner,
            crate::llm::RetryPolicy::default(),
            crate::llm::FakeClock::new(),
        )
    }

    fn with_id(i: usize) -> Trajectory {
        let mut t = good();
        t.trajectory_id = format!("t{i}");
        t
    }

    #[test]
    fn results_the_endpoint_decided_are_told_apart() {
        let up = std::rc::Rc::new(std::cell::Cell::new(false));
        let refused = ChatError::Network("connection refused".into());
        let client = switchable(up.clone(), refused);
        let r = run_one_with(&client, &settings(), &good());
        assert_eq!(r.outcome.status(), "failed");
        assert!(r.endpoint_unavailable());
        assert!(r.ended_in_call_error());
        assert_eq!(
            r.retries(),
            3,
            "the first relabel call gives up after three retries; the others are held back"
        );
        let usage = r.usage();
        assert_eq!((usage.relabel.calls, usage.relabel.not_sent), (1, 2));
        assert!(
            r.outcome.reason().contains("gave up after 4 attempts"),
            "{}",
            r.outcome.reason()
        );

        // 503 and 429 that outlast the retries are the endpoint being away too.
        for status in [503, 429] {
            let client = switchable(up.clone(), ChatError::http(status, "busy"));
            assert!(run_one_with(&client, &settings(), &good()).endpoint_unavailable());
        }

        // A wrong key is the endpoint's answer: failed, worth retrying once fixed, no pause.
        let client = ScriptedClient::from_fn(|_| Err(ChatError::http(401, "Incorrect API key")));
        let r = run_one(&client, &settings(), &good());
        assert_eq!(r.outcome.status(), "failed");
        assert!(!r.endpoint_unavailable());
        assert!(r.ended_in_call_error());

        // The judge out of reach: the candidate wins the single-judge fallback, but only
        // because the judge could not answer: put back.
        let client = ScriptedClient::from_fn(|req: &ChatRequest| {
            if req.temperature == 0.0 {
                Err(ChatError::Timeout)
            } else {
                Ok(RELABEL_OK.to_string())
            }
        });
        let r = run_one(&client, &settings(), &good());
        assert!(matches!(
            r.outcome,
            Outcome::Accepted {
                judges: Judges::SingleJudgeFallback,
                ..
            }
        ));
        assert!(r.endpoint_unavailable());

        // Accepted by both judges after a failed attempt: that stands.
        let client =
            ScriptedClient::with_replies([Err(ChatError::Timeout), Ok(RELABEL_OK), Ok(JUDGE_OK)]);
        let r = run_one(&client, &settings(), &good());
        assert!(r.outcome.is_accepted());
        assert!(!r.endpoint_unavailable());
        assert!(!r.ended_in_call_error());

        // Unreadable replies and cancellations are neither.
        let client = ScriptedClient::from_fn(|_| Ok("no JSON here".into()));
        let r = run_one(&client, &settings(), &good());
        assert_eq!(r.outcome.status(), "rejected");
        assert!(!r.endpoint_unavailable() && !r.ended_in_call_error());
        let client = ScriptedClient::with_replies([Err::<&str, _>(ChatError::Cancelled)]);
        let r = run_one(&client, &settings(), &good());
        assert!(!r.endpoint_unavailable() && !r.ended_in_call_error());

        // A failure without a failed call (a broken template) is not the endpoint's.
        let broken = TrajectoryResult {
            trajectory_id: "x".into(),
            analysis: None,
            extracted: None,
            relabel: None,
            stage_calls: vec![],
            outcome: Outcome::Failed {
                stage: Stage::Relabeling,
                reason: "could not render the relabel prompt".into(),
            },
        };
        assert!(!broken.endpoint_unavailable() && !broken.ended_in_call_error());
    }

    fn run_one_with<C: ChatClient>(client: &C, s: &Settings, t: &Trajectory) -> TrajectoryResult {
        block_on(process(
            client,
            &Templates::defaults(),
            s,
            &Lexicon::default(),
            t,
        ))
    }

    #[test]
    fn flags_are_summed_up_per_trajectory() {
        use crate::llm::openai::{ChatResponse, Usage};
        let client = ScriptedClient::new();
        let mut cut =
            ChatResponse::from_text(r#"{"hindsight_prompt": "Find"#, Usage::new(900, 2048));
        cut.choices[0].finish_reason = Some("length".into());
        client.push_response(cut.clone());
        client.push_response(cut);
        client.push_response(ChatResponse::from_text(RELABEL_OK, Usage::new(3, 40)));
        client.push_text(JUDGE_OK);
        let r = run_one(&client, &settings(), &good());
        assert!(r.outcome.is_accepted());
        let flags = r.flags();
        assert_eq!(flags.len(), 2, "{flags:?}");
        assert_eq!((flags[0].kind, flags[0].calls), ("reply_truncated", 2));
        assert!(flags[0].advice.contains("raise max_tokens"));
        assert_eq!((flags[1].kind, flags[1].calls), ("prompt_truncated", 1));
        assert!(flags[1].advice.contains("OLLAMA_CONTEXT_LENGTH"));
        let prompt_chars: usize = client.requests()[2]
            .messages
            .iter()
            .map(|m| m.content.chars().count())
            .sum();
        assert!(
            prompt_chars >= 1024,
            "the relabel prompt is long enough to judge"
        );
        // The third relabel reply reported 3 prompt tokens for a prompt of about a thousand.
        let attempts = &r.relabel.as_ref().unwrap().attempts;
        assert_eq!(attempts[2].call.flags[0].kind(), "prompt_truncated");
    }

    #[test]
    fn run_control_starts_at_most_concurrency_and_pauses_on_an_unreachable_endpoint() {
        let ok = TrajectoryResult {
            trajectory_id: String::new(),
            analysis: None,
            extracted: None,
            relabel: None,
            stage_calls: vec![],
            outcome: Outcome::Skipped {
                stage: Stage::Gate,
                reason: "r".into(),
            },
        };
        let up = std::rc::Rc::new(std::cell::Cell::new(false));
        let away = run_one_with(
            &switchable(up, ChatError::Network("connection refused".into())),
            &settings(),
            &good(),
        );
        let mut c = RunControl::new(0..6, 2);
        assert_eq!(
            (c.start_next(), c.start_next(), c.start_next()),
            (Some(0), Some(1), None)
        );
        assert_eq!(c.finished(0, &ok), Verdict::Record);
        assert_eq!(c.start_next(), Some(2));
        assert_eq!(c.finished(1, &away), Verdict::PutBack);
        assert!(c.is_paused());
        assert!(c.pause_reason().unwrap().contains("connection refused"));
        assert_eq!(c.start_next(), None, "nothing new starts once paused");
        assert!(!c.is_settled(), "2 is still in flight");
        assert_eq!(c.finished(2, &away), Verdict::PutBack);
        assert!(c.is_settled());
        assert_eq!(c.put_back(), [1, 2]);
        assert_eq!(c.remaining(), [1, 2, 3, 4, 5]);
        c.resume();
        c.set_concurrency(0);
        assert!(!c.is_paused());
        assert_eq!(c.put_back(), [] as [usize; 0]);
        let mut order = Vec::new();
        while let Some(i) = c.start_next() {
            assert_eq!(c.start_next(), None, "one at a time");
            order.push(i);
            c.finished(i, &ok);
        }
        assert_eq!(order, [1, 2, 3, 4, 5]);
        assert!(c.is_settled());
        assert_eq!(
            RunControl::new(0..1, 0).start_next(),
            Some(0),
            "concurrency is at least 1"
        );
    }

    #[test]
    fn a_run_pauses_when_the_endpoint_goes_away_and_resumes_to_the_end() {
        let ts: Vec<Trajectory> = (0..8).map(with_id).collect();
        let up = std::rc::Rc::new(std::cell::Cell::new(true));
        let client = switchable(up.clone(), ChatError::Network("connection refused".into()));
        let s = Settings {
            concurrency: 3,
            ..settings()
        };
        let (templates, lexicon) = (Templates::defaults(), Lexicon::default());
        let setup = RunSetup {
            templates: &templates,
            settings: &s,
            lexicon: &lexicon,
        };
        let mut recorded: Vec<Option<TrajectoryResult>> = vec![None; ts.len()];
        let mut put_back = Vec::new();
        let yields = crate::llm::FakeClock::new();
        let mut control =
            RunControl::new(0..ts.len(), s.concurrency).with_guard(client.guard().clone());
        {
            let mut on_result = |i: usize, verdict: Verdict, r: TrajectoryResult| {
                match verdict {
                    Verdict::Record => {
                        assert!(recorded[i].is_none(), "{i} recorded twice");
                        recorded[i] = Some(r);
                    }
                    Verdict::PutBack => put_back.push(i),
                }
                // The endpoint goes away after the second result.
                if recorded.iter().flatten().count() == 2 {
                    up.set(false);
                }
                true
            };
            block_on(run_controlled(
                &client,
                setup,
                &mut control,
                |i| ts[i].clone(),
                &yields,
                &mut on_result,
            ));
        }
        assert!(control.is_paused());
        assert!(control.is_settled());
        let done = recorded.iter().flatten().count();
        assert_eq!(done, 2);
        assert!(!put_back.is_empty());
        assert_eq!(control.put_back(), &put_back[..]);
        let left = control.remaining();
        assert_eq!(
            left.len(),
            ts.len() - done,
            "everything not recorded is left"
        );
        assert!(
            recorded.iter().flatten().all(|r| r.outcome.is_accepted()),
            "nothing was recorded as failed"
        );
        assert_eq!(yields.pauses().len(), done + put_back.len());

        // The endpoint is back: resume runs what is left, once each.
        up.set(true);
        control.resume();
        block_on(run_controlled(
            &client,
            setup,
            &mut control,
            |i| ts[i].clone(),
            &yields,
            |i, verdict, r| {
                assert_eq!(verdict, Verdict::Record);
                assert!(recorded[i].is_none(), "{i} recorded twice");
                recorded[i] = Some(r);
                false
            },
        ));
        assert!(control.is_settled() && !control.is_paused());
        assert!(control.remaining().is_empty());
        assert!(recorded
            .iter()
            .all(|r| r.as_ref().is_some_and(|r| r.outcome.is_accepted())));
    }

    #[test]
    fn an_ungrounded_goal_is_flagged_or_rejected_as_set() {
        const UNGROUNDED: &str = r#"{"hindsight_prompt": "Find the Lenovo ThinkPad for $649", "is_valid_replay": true, "rationale": "r", "confidence": 0.9}"#;
        let replies = || ScriptedClient::with_replies([Ok(UNGROUNDED), Ok(JUDGE_OK)]);
        let flagged = run_one(&replies(), &settings(), &good());
        assert!(flagged.outcome.is_accepted(), "flag is the default");
        let g = flagged.relabel.as_ref().unwrap().grounding.clone().unwrap();
        let texts: Vec<&str> = g.ungrounded.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["Lenovo ThinkPad", "$649"]);

        let reject = Settings {
            grounding: GroundingMode::Reject,
            ..settings()
        };
        let rejected = run_one(&replies(), &reject, &good());
        match &rejected.outcome {
            Outcome::Rejected { stage, reason } => {
                assert_eq!(*stage, Stage::Relabeling);
                assert!(reason.contains("grounding check"), "{reason}");
                assert!(reason.contains("“Lenovo ThinkPad” (name)"), "{reason}");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        assert!(rejected.sample(&good(), SampleFormat::Sft).is_none());
        assert_eq!(rejected.relabel.as_ref().unwrap().attempts.len(), 1);

        // A grounded goal passes in every mode; off records nothing.
        let grounded = || ScriptedClient::with_replies([Ok(RELABEL_OK), Ok(JUDGE_OK)]);
        let r = run_one(&grounded(), &reject, &good());
        assert!(r.outcome.is_accepted());
        assert!(r
            .relabel
            .as_ref()
            .unwrap()
            .grounding
            .as_ref()
            .unwrap()
            .is_grounded());
        let off = Settings {
            grounding: GroundingMode::Off,
            ..settings()
        };
        let r = run_one(&replies(), &off, &good());
        assert!(r.outcome.is_accepted() && r.relabel.unwrap().grounding.is_none());
    }

    #[test]
    fn a_stop_starts_nothing_new_and_tells_what_never_started() {
        let guard = RunGuard::new();
        let mut c = RunControl::new(0..6, 2).with_guard(guard.clone());
        assert_eq!((c.start_next(), c.start_next()), (Some(0), Some(1)));
        guard.stop();
        assert!(c.is_stopped());
        assert_eq!(c.start_next(), None);
        assert!(!c.is_settled(), "two still in flight");
        let cancelled = TrajectoryResult::bare(Outcome::Cancelled {
            stage: Stage::Relabeling,
        });
        assert_eq!(c.finished(0, &cancelled), Verdict::Record);
        assert_eq!(c.finished(1, &cancelled), Verdict::Record);
        assert!(c.is_settled() && !c.is_paused());
        assert_eq!(c.not_started(), 4);
    }

    #[test]
    fn a_call_held_by_a_stop_is_cancelled_and_not_counted() {
        let inner = ScriptedClient::from_fn(|_| Ok(RELABEL_OK.to_string()));
        let client = crate::llm::RetryingClient::new(
            &inner,
            crate::llm::RetryPolicy::default(),
            crate::llm::FakeClock::new(),
        );
        client.guard().stop();
        let r = run_one_with(&client, &settings(), &good());
        assert_eq!(
            r.outcome,
            Outcome::Cancelled {
                stage: Stage::Relabeling
            }
        );
        assert_eq!(inner.request_count(), 0);
        let usage = r.usage();
        assert_eq!((usage.total().calls, usage.relabel.not_sent), (0, 1));
        assert_eq!(client.guard().counts().sent, 0);
    }

    #[test]
    fn the_breaker_trips_on_a_stage_whose_replies_never_parse() {
        let call = |kind: CallKind, reply: Result<&str, &str>| CallRecord {
            kind,
            request: crate::llm::build_request::<crate::llm::RelabelReply>(
                "m",
                vec![],
                0.3,
                10,
                crate::llm::StructuredMode::PromptOnly,
            ),
            reply: reply.ok().map(str::to_owned),
            finish_reason: None,
            error: None,
            parse_error: reply.err().map(str::to_owned),
            usage: Default::default(),
            retries: 0,
            from_log: false,
            flags: vec![],
        };
        let mut b = Breaker::new(3);
        // Unreadable replies, each to a request of its own.
        let bad = |n: u32| {
            let mut c = call(CallKind::Relabel, Err("no JSON object found"));
            c.request.messages = vec![crate::llm::ChatMessage::new("user", format!("goal {n}"))];
            c
        };
        assert_eq!(b.observe(&bad(1)), None);
        assert_eq!(b.observe(&bad(2)), None);
        // A readable reply of the stage starts the count again; other stages do not.
        assert_eq!(b.observe(&call(CallKind::Relabel, Ok("{}"))), None);
        assert_eq!(b.observe(&bad(3)), None);
        assert_eq!(b.observe(&call(CallKind::Judge, Ok("{}"))), None);
        let mut failed = bad(4);
        failed.error = Some(ChatError::Timeout);
        assert_eq!(b.observe(&failed), None, "a failed call is no reply");
        assert_eq!(b.observe(&bad(5)), None);
        let cause = b
            .observe(&bad(6))
            .expect("three unreadable replies in a row");
        assert_eq!(
            cause,
            PauseCause::Unreadable {
                stage: CallKind::Relabel,
                replies: 3,
                parse_error: "no JSON object found".into()
            }
        );
        assert!(cause.to_string().contains("last 3 relabel replies"));
        assert!(cause.advice().contains("max_tokens"));
        assert!(cause.advice().contains("json_schema"));
        assert_eq!(Breaker::new(0).observe(&bad(7)), None, "0 never trips");

        // The same prose to the same request is one piece of evidence, however often it
        // comes; the same prose to other requests, or other prose to the same one, is more.
        let mut b = Breaker::new(3);
        let to = |prompt: &str, reply: &str| {
            let mut c = call(CallKind::Extract, Err("no JSON object found"));
            c.request.messages = vec![crate::llm::ChatMessage::new("user", prompt)];
            c.reply = Some(reply.to_owned());
            c
        };
        for _ in 0..5 {
            assert_eq!(b.observe(&to("first", "Sure!")), None);
        }
        assert_eq!(b.observe(&to("first", "Of course!")), None);
        assert!(b.observe(&to("second", "Sure!")).is_some());
        b.reset();
        assert_eq!(b.observe(&to("second", "Sure!")), None, "reset forgets");

        // In a run: K = 3 relabel tries per trajectory, the first at the first temperature and
        // the two others (the same request) at the retry temperature, all answered with the
        // same prose: two count per trajectory, the fifth trips the breaker and nothing starts
        // after it.
        let client = ScriptedClient::from_fn(|_| Ok("Sure! Here is a goal for you.".into()));
        let ts: Vec<Trajectory> = (0..12)
            .map(|i| {
                let mut t = with_id(i);
                t.original_prompt = format!("{} (order {i})", t.original_prompt);
                t
            })
            .collect();
        let s = Settings {
            concurrency: 1,
            ..settings()
        };
        let (templates, lexicon) = (Templates::defaults(), Lexicon::default());
        let setup = RunSetup {
            templates: &templates,
            settings: &s,
            lexicon: &lexicon,
        };
        let mut control = RunControl::new(0..ts.len(), 1);
        let mut recorded = 0;
        block_on(run_controlled(
            &client,
            setup,
            &mut control,
            |i| ts[i].clone(),
            &crate::llm::FakeClock::new(),
            |_, verdict, r| {
                assert_eq!(verdict, Verdict::Record);
                assert_eq!(r.outcome.status(), "rejected");
                recorded += 1;
                false
            },
        ));
        assert_eq!(recorded, 5);
        assert_eq!(client.request_count(), 15);
        assert!(control.is_settled());
        match control.pause_cause() {
            Some(PauseCause::Unreadable {
                stage: CallKind::Relabel,
                replies: 10,
                parse_error,
            }) => assert!(!parse_error.is_empty()),
            other => panic!("expected the breaker, got {other:?}"),
        }
        assert_eq!(control.remaining(), (5..12).collect::<Vec<_>>());
        control.resume();
        assert!(!control.is_paused());
    }

    #[test]
    fn rule_view_explains_the_analysis() {
        let v = rule_view(&good(), &Lexicon::default(), 0.3);
        assert_eq!(
            v.analysis.failure_type,
            Some(FailureType::ConstraintViolation)
        );
        assert!(v.skip_reason.is_none());
        let fired: Vec<_> = v.hits.iter().filter(|h| !h.keywords.is_empty()).collect();
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].failure_type, FailureType::ConstraintViolation);
        assert_eq!(fired[0].keywords, vec!["exceeds".to_string()]);
        assert!(v.extracted.actual_achievements[0].starts_with("Step 1 (search): Found Dell"));
    }
}
