//! Stage 3: relabeling with confidence gating (Algorithm 1 of the paper, METHOD.md).
//!
//! For k = 1..K the relabeler is asked for a hindsight prompt ĝ (temperature 0.3 on the first
//! attempt, 0.7 on retries) and answers (ĝ, b = is_valid_replay, c = confidence):
//! - a failed call or an unparseable reply is a failed attempt: recorded, and the loop goes on;
//! - b false: the attempt gives no candidate;
//! - b and c ≥ θ: a second judge sees only ĝ and the trajectory (actions, observations, final
//!   answer; not the original prompt, not the agent's thoughts) at temperature 0. When it says
//!   is_valid with confidence c2 ≥ θ, ĝ is accepted with confidence (c + c2) / 2 and the loop
//!   stops. When it says not valid, or valid with c2 < θ, the candidate is discarded for good:
//!   it can never be the fallback;
//! - b and c < θ: the candidate is remembered when its c is the best so far.
//!
//! After K attempts without acceptance, the remembered candidate with the highest c (the
//! earliest on ties) is accepted as single-judge when c ≥ 0.8 θ; otherwise the trajectory is
//! rejected, with a reason that counts what happened to each attempt.
//!
//! A judge call that fails, or whose reply cannot be read, gives no verdict: the candidate is
//! not accepted by the judge, but it was not rejected either. Since only judge-rejected
//! candidates are excluded from the fallback, such a candidate stays eligible for it, ranked by
//! its own c like the others (it reached θ, so it clears 0.8 θ); if it wins it is flagged
//! single-judge. The loop goes on meanwhile, so a later two-judge acceptance is still preferred.
//!
//! A call cancelled by the user stops the loop at once ([`RelabelDecision::Cancelled`]).

use crate::llm::{
    build_request, call_json, CallKind, CallRecord, ChatClient, ChatError, JudgeReply,
    RelabelReply, StructuredMode, Templates, UsageByStage,
};
use crate::model::{ExtractedOutcome, Relabel, Trajectory};
use serde::Serialize;

/// The settings of Algorithm 1.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RelabelSettings {
    /// The relabeler's model.
    pub model: String,
    /// The second judge's model; `None` uses `model`. (The paper pairs two different models.)
    pub judge_model: Option<String>,
    /// θ: the confidence both the relabeler and the judge must reach.
    pub theta: f64,
    /// K: how many relabel calls at most.
    pub max_attempts: u32,
    pub first_temperature: f64,
    pub retry_temperature: f64,
    pub max_tokens: u32,
    pub structured: StructuredMode,
}

impl RelabelSettings {
    /// The paper's defaults: θ = 0.5, K = 3, temperatures 0.3 then 0.7, 2048 tokens.
    pub fn new(model: impl Into<String>) -> Self {
        RelabelSettings {
            model: model.into(),
            judge_model: None,
            theta: 0.5,
            max_attempts: 3,
            first_temperature: 0.3,
            retry_temperature: 0.7,
            max_tokens: 2048,
            structured: StructuredMode::JsonSchema,
        }
    }

    /// The single-judge fallback's floor, 0.8 θ.
    pub fn fallback_floor(&self) -> f64 {
        0.8 * self.theta
    }

    /// The temperature of attempt `k` (1-based).
    pub fn temperature(&self, k: u32) -> f64 {
        if k <= 1 {
            self.first_temperature
        } else {
            self.retry_temperature
        }
    }

    fn judge_model(&self) -> &str {
        self.judge_model.as_deref().unwrap_or(&self.model)
    }
}

/// The temperature of every second-judge call.
pub const JUDGE_TEMPERATURE: f64 = 0.0;

/// Which judges accepted a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Judges {
    /// The relabeler reached θ and the second judge agreed with confidence ≥ θ.
    RelabelerAndJudge,
    /// No candidate passed both; the best one the judge never rejected had c ≥ 0.8 θ.
    SingleJudgeFallback,
}

/// What Stage 3 decided for a trajectory.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum RelabelDecision {
    Accepted {
        /// `relabel.confidence` is (c + c2) / 2, or c for the single-judge fallback.
        relabel: Relabel,
        judges: Judges,
        /// The attempt (1-based) whose candidate was accepted.
        attempt: u32,
        /// c, the relabeler's own confidence.
        relabel_confidence: f64,
        /// c2, the second judge's confidence, when it accepted.
        judge_confidence: Option<f64>,
    },
    Rejected {
        reason: String,
    },
    /// A call was cancelled; no further call was made.
    Cancelled,
}

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The relabel call failed.
    CallFailed,
    /// The relabel reply could not be read.
    Unparseable,
    /// The relabeler said no valid replay exists (b false).
    NotValidReplay,
    /// b, but c < θ: a fallback candidate.
    BelowTheta,
    /// The second judge rejected the candidate: discarded for good.
    JudgeRejected,
    /// The second judge gave no verdict (failed call or unreadable reply): a fallback
    /// candidate.
    JudgeUnavailable,
    /// Accepted by the relabeler and the second judge.
    Accepted,
    /// The relabel or judge call was cancelled.
    Cancelled,
}

/// The second judge's verdict on a candidate.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum JudgeVerdict {
    /// is_valid and c2 ≥ θ.
    Accepted { confidence: f64 },
    /// Not valid, or valid with c2 < θ.
    Rejected { reason: String },
    /// No verdict: the prompt did not render, the call failed or the reply was unreadable.
    Unavailable { reason: String },
}

/// One second-judge call.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct JudgeCall {
    /// `None` when the judge prompt could not be rendered.
    pub call: Option<CallRecord>,
    pub reply: Option<JudgeReply>,
    pub verdict: JudgeVerdict,
}

/// One relabel attempt.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RelabelAttempt {
    /// 1-based.
    pub k: u32,
    pub temperature: f64,
    pub call: CallRecord,
    pub reply: Option<RelabelReply>,
    pub judge: Option<JudgeCall>,
    pub outcome: AttemptOutcome,
}

/// Everything Stage 3 did for one trajectory.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RelabelReport {
    pub decision: RelabelDecision,
    pub attempts: Vec<RelabelAttempt>,
    pub theta: f64,
    pub fallback_floor: f64,
    /// The grounding check of the accepted goal, when it ran ([`crate::grounding`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grounding: Option<crate::grounding::Grounding>,
}

impl RelabelReport {
    pub fn is_accepted(&self) -> bool {
        matches!(self.decision, RelabelDecision::Accepted { .. })
    }

    /// The accepted relabeling, if any.
    pub fn relabel(&self) -> Option<&Relabel> {
        match &self.decision {
            RelabelDecision::Accepted { relabel, .. } => Some(relabel),
            _ => None,
        }
    }

    /// Every call made, relabel and judge, in order.
    pub fn calls(&self) -> impl Iterator<Item = &CallRecord> {
        self.attempts.iter().flat_map(|a| {
            std::iter::once(&a.call).chain(a.judge.as_ref().and_then(|j| j.call.as_ref()))
        })
    }

    /// Calls and tokens, under `relabel` and `judge`.
    pub fn usage(&self) -> UsageByStage {
        let mut usage = UsageByStage::default();
        for call in self.calls() {
            usage.add(call);
        }
        usage
    }
}

/// Runs Algorithm 1 on `trajectory`, whose outcome Stage 2 extracted, with the second judge
/// on the same client.
pub async fn relabel<C: ChatClient>(
    client: &C,
    templates: &Templates,
    settings: &RelabelSettings,
    trajectory: &Trajectory,
    outcome: &ExtractedOutcome,
) -> RelabelReport {
    relabel_judged(client, client, templates, settings, trajectory, outcome).await
}

/// Runs Algorithm 1 with the relabel calls sent to `client` and the second judge's to `judge`
/// (another endpoint, or the same client).
pub async fn relabel_judged<C: ChatClient, J: ChatClient>(
    client: &C,
    judge: &J,
    templates: &Templates,
    settings: &RelabelSettings,
    trajectory: &Trajectory,
    outcome: &ExtractedOutcome,
) -> RelabelReport {
    let theta = settings.theta;
    let floor = settings.fallback_floor();
    let mut report = RelabelReport {
        decision: RelabelDecision::Rejected {
            reason: String::new(),
        },
        attempts: Vec::new(),
        theta,
        fallback_floor: floor,
        grounding: None,
    };
    let messages = match templates.render_relabel(trajectory, outcome) {
        Ok(m) => m,
        Err(e) => {
            report.decision = RelabelDecision::Rejected {
                reason: format!("could not render the relabel prompt: {e}"),
            };
            return report;
        }
    };

    // Index of the remembered fallback candidate in `report.attempts`.
    let mut best: Option<usize> = None;
    for k in 1..=settings.max_attempts {
        let temperature = settings.temperature(k);
        let request = build_request::<RelabelReply>(
            &settings.model,
            messages.clone(),
            temperature,
            settings.max_tokens,
            settings.structured,
        );
        let (call, reply) = call_json::<C, RelabelReply>(client, CallKind::Relabel, request).await;
        let mut attempt = RelabelAttempt {
            k,
            temperature,
            outcome: AttemptOutcome::CallFailed,
            call,
            reply: None,
            judge: None,
        };
        let Some(reply) = reply else {
            attempt.outcome = if attempt
                .call
                .error
                .as_ref()
                .is_some_and(ChatError::is_cancelled)
            {
                AttemptOutcome::Cancelled
            } else if attempt.call.failed() {
                AttemptOutcome::CallFailed
            } else {
                AttemptOutcome::Unparseable
            };
            let cancelled = attempt.outcome == AttemptOutcome::Cancelled;
            report.attempts.push(attempt);
            if cancelled {
                report.decision = RelabelDecision::Cancelled;
                return report;
            }
            continue;
        };
        let c = reply.confidence;
        let mut candidate = false;
        if !reply.is_valid_replay {
            attempt.outcome = AttemptOutcome::NotValidReplay;
        } else if c >= theta {
            let judge = second_judge(judge, templates, settings, trajectory, &reply).await;
            match &judge.verdict {
                JudgeVerdict::Accepted { confidence } => {
                    report.decision = RelabelDecision::Accepted {
                        relabel: Relabel {
                            hindsight_prompt: reply.hindsight_prompt.clone(),
                            is_valid_replay: true,
                            rationale: reply.rationale.clone(),
                            confidence: (c + confidence) / 2.0,
                        },
                        judges: Judges::RelabelerAndJudge,
                        attempt: k,
                        relabel_confidence: c,
                        judge_confidence: Some(*confidence),
                    };
                    attempt.outcome = AttemptOutcome::Accepted;
                }
                JudgeVerdict::Rejected { .. } => attempt.outcome = AttemptOutcome::JudgeRejected,
                JudgeVerdict::Unavailable { .. } => {
                    let cancelled = judge.call.as_ref().is_some_and(|call| {
                        call.error.as_ref().is_some_and(ChatError::is_cancelled)
                    });
                    if cancelled {
                        attempt.outcome = AttemptOutcome::Cancelled;
                        report.decision = RelabelDecision::Cancelled;
                    } else {
                        attempt.outcome = AttemptOutcome::JudgeUnavailable;
                        candidate = true;
                    }
                }
            }
            attempt.judge = Some(judge);
        } else {
            attempt.outcome = AttemptOutcome::BelowTheta;
            candidate = true;
        }
        attempt.reply = Some(reply);
        let done = matches!(
            attempt.outcome,
            AttemptOutcome::Accepted | AttemptOutcome::Cancelled
        );
        report.attempts.push(attempt);
        if done {
            return report;
        }
        if candidate {
            let index = report.attempts.len() - 1;
            let better = match best {
                None => true,
                Some(b) => c > confidence_of(&report.attempts[b]),
            };
            if better {
                best = Some(index);
            }
        }
    }

    report.decision = match best {
        Some(b) if confidence_of(&report.attempts[b]) >= floor => {
            let attempt = &report.attempts[b];
            let reply = attempt.reply.as_ref().expect("a candidate has a reply");
            RelabelDecision::Accepted {
                relabel: Relabel {
                    hindsight_prompt: reply.hindsight_prompt.clone(),
                    is_valid_replay: true,
                    rationale: reply.rationale.clone(),
                    confidence: reply.confidence,
                },
                judges: Judges::SingleJudgeFallback,
                attempt: attempt.k,
                relabel_confidence: reply.confidence,
                judge_confidence: None,
            }
        }
        _ => RelabelDecision::Rejected {
            reason: rejection_reason(&report.attempts, best, floor),
        },
    };
    report
}

fn confidence_of(attempt: &RelabelAttempt) -> f64 {
    attempt.reply.as_ref().map_or(0.0, |r| r.confidence)
}

async fn second_judge<C: ChatClient>(
    client: &C,
    templates: &Templates,
    settings: &RelabelSettings,
    trajectory: &Trajectory,
    candidate: &RelabelReply,
) -> JudgeCall {
    let messages = match templates.render_judge(trajectory, &candidate.hindsight_prompt) {
        Ok(m) => m,
        Err(e) => {
            return JudgeCall {
                call: None,
                reply: None,
                verdict: JudgeVerdict::Unavailable {
                    reason: format!("could not render the judge prompt: {e}"),
                },
            }
        }
    };
    let request = build_request::<JudgeReply>(
        settings.judge_model(),
        messages,
        JUDGE_TEMPERATURE,
        settings.max_tokens,
        settings.structured,
    );
    let (call, reply) = call_json::<C, JudgeReply>(client, CallKind::Judge, request).await;
    let theta = settings.theta;
    let verdict = match &reply {
        None => JudgeVerdict::Unavailable {
            reason: call.problem().unwrap_or_default(),
        },
        Some(r) if r.is_valid && r.confidence >= theta => JudgeVerdict::Accepted {
            confidence: r.confidence,
        },
        Some(r) if r.is_valid => JudgeVerdict::Rejected {
            reason: format!(
                "judge found it valid but with confidence {} < θ {}",
                num(r.confidence),
                num(theta)
            ),
        },
        Some(r) => JudgeVerdict::Rejected {
            reason: if r.rejection_reason.trim().is_empty() {
                format!("judge found it invalid (confidence {})", num(r.confidence))
            } else {
                format!(
                    "judge found it invalid (confidence {}): {}",
                    num(r.confidence),
                    r.rejection_reason.trim()
                )
            },
        },
    };
    JudgeCall {
        call: Some(call),
        reply,
        verdict,
    }
}

/// A number for messages: at most three decimals, no trailing zeros.
fn num(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

fn rejection_reason(attempts: &[RelabelAttempt], best: Option<usize>, floor: f64) -> String {
    let count = |o: AttemptOutcome| attempts.iter().filter(|a| a.outcome == o).count();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut parts = Vec::new();
    for (outcome, one, many) in [
        (AttemptOutcome::CallFailed, "failed call", "failed calls"),
        (
            AttemptOutcome::Unparseable,
            "unparseable reply",
            "unparseable replies",
        ),
        (
            AttemptOutcome::NotValidReplay,
            "reply with no valid replay",
            "replies with no valid replay",
        ),
        (
            AttemptOutcome::BelowTheta,
            "candidate below θ",
            "candidates below θ",
        ),
        (
            AttemptOutcome::JudgeRejected,
            "judge rejection",
            "judge rejections",
        ),
        (
            AttemptOutcome::JudgeUnavailable,
            "judge without verdict",
            "judges without verdict",
        ),
    ] {
        let n = count(outcome);
        if n > 0 {
            parts.push(plural(n, one, many));
        }
    }
    let n = attempts.len();
    let mut reason = format!(
        "no valid candidate in {}: {}",
        plural(n, "attempt", "attempts"),
        if parts.is_empty() {
            "no attempt made".to_owned()
        } else {
            parts.join(", ")
        }
    );
    if let Some(b) = best {
        reason.push_str(&format!(
            "; best fallback confidence {} < {} (0.8 θ)",
            num(confidence_of(&attempts[b])),
            num(floor)
        ));
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_messages() {
        assert_eq!(num(0.4), "0.4");
        assert_eq!(num(0.30000000000000004), "0.3");
        assert_eq!(num(1.0), "1");
        assert_eq!(num(0.125), "0.125");
    }

    #[test]
    fn settings_defaults() {
        let s = RelabelSettings::new("m");
        assert_eq!((s.theta, s.max_attempts, s.max_tokens), (0.5, 3, 2048));
        assert_eq!(
            (s.temperature(1), s.temperature(2), s.temperature(3)),
            (0.3, 0.7, 0.7)
        );
        assert_eq!(s.fallback_floor(), 0.4);
        assert_eq!(s.judge_model(), "m");
    }
}
