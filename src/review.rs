//! Review of the relabeled samples before they are exported: a reviewer's decision per
//! trajectory (accept, reject with an optional reason, or edit the goal while keeping the
//! model's), an undo history in which a bulk action is one step, and the queries the review
//! queue and the exports need. Decisions are data of the [`Session`]: saved with it, restored
//! after a reload, honoured by every export, and never touched by a run.
//!
//! Only trajectories a run accepted (a hindsight goal the gates, the relabeler and the judges
//! let through) can be reviewed; decisions are keyed by the entry's index in the session, which
//! a saved session keeps.

use crate::pipeline::Outcome;
use crate::session::Session;
use crate::stages::relabel::{JudgeVerdict, Judges};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a reviewer decided for one trajectory. No decision means unreviewed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// The model's goal is kept.
    Accepted,
    /// Left out of every export.
    Rejected {
        /// Why, when the reviewer said ("" otherwise).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    /// Kept with the reviewer's goal instead of the model's.
    Edited {
        goal: String,
        /// The model's hindsight goal the edit replaced.
        model_goal: String,
        /// The second judge's verdict on `goal`, when the reviewer asked for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        judged: Option<JudgeVerdict>,
    },
}

impl Decision {
    /// A rejection, with the reason trimmed.
    pub fn rejected(reason: &str) -> Decision {
        Decision::Rejected {
            reason: reason.trim().to_owned(),
        }
    }

    /// The reviewer's goal `goal` for a sample whose model goal is `model_goal`: an edit, or an
    /// acceptance when it is the model's goal after all. A blank goal is refused.
    pub fn edited(goal: &str, model_goal: &str) -> Result<Decision, String> {
        let goal = goal.trim();
        if goal.is_empty() {
            return Err("The goal cannot be empty: write the request this run fulfils.".into());
        }
        Ok(if goal == model_goal.trim() {
            Decision::Accepted
        } else {
            Decision::Edited {
                goal: goal.to_owned(),
                model_goal: model_goal.to_owned(),
                judged: None,
            }
        })
    }

    pub fn kind(&self) -> DecisionKind {
        match self {
            Decision::Accepted => DecisionKind::Accepted,
            Decision::Rejected { .. } => DecisionKind::Rejected,
            Decision::Edited { .. } => DecisionKind::Edited,
        }
    }

    /// Whether the sample goes into the exports.
    pub fn keeps(&self) -> bool {
        !matches!(self, Decision::Rejected { .. })
    }

    /// The goal the reviewer wrote, if any.
    pub fn goal(&self) -> Option<&str> {
        match self {
            Decision::Edited { goal, .. } => Some(goal),
            _ => None,
        }
    }
}

/// The kind of a decision, without its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Accepted,
    Rejected,
    Edited,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Accepted => "accepted",
            DecisionKind::Rejected => "rejected",
            DecisionKind::Edited => "edited",
        }
    }
}

/// Which review state a filter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewState {
    Unreviewed,
    Reviewed,
    Decided(DecisionKind),
}

impl ReviewState {
    pub const ALL: [ReviewState; 5] = [
        ReviewState::Unreviewed,
        ReviewState::Reviewed,
        ReviewState::Decided(DecisionKind::Accepted),
        ReviewState::Decided(DecisionKind::Edited),
        ReviewState::Decided(DecisionKind::Rejected),
    ];

    /// The value the page's filter uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Unreviewed => "unreviewed",
            ReviewState::Reviewed => "reviewed",
            ReviewState::Decided(k) => k.as_str(),
        }
    }

    pub fn parse(text: &str) -> Option<ReviewState> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn matches(self, decision: Option<&Decision>) -> bool {
        match self {
            ReviewState::Unreviewed => decision.is_none(),
            ReviewState::Reviewed => decision.is_some(),
            ReviewState::Decided(k) => decision.is_some_and(|d| d.kind() == k),
        }
    }
}

/// One undo step: the decisions it replaced, by index (`None`: there was none).
type Step = Vec<(usize, Option<Decision>)>;

/// Every decision of a session, and the history to undo them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Review {
    decisions: BTreeMap<usize, Decision>,
    history: Vec<Step>,
}

/// How many samples review has seen and what it decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReviewCounts {
    /// Trajectories a run accepted: what can be reviewed.
    pub reviewable: usize,
    pub accepted: usize,
    pub edited: usize,
    pub rejected: usize,
}

impl ReviewCounts {
    pub fn reviewed(&self) -> usize {
        self.accepted + self.edited + self.rejected
    }

    pub fn unreviewed(&self) -> usize {
        self.reviewable - self.reviewed()
    }

    /// "Reviewed 120 / 900".
    pub fn summary(&self) -> String {
        format!(
            "Reviewed {} / {}",
            crate::progress::format_count(self.reviewed()),
            crate::progress::format_count(self.reviewable)
        )
    }
}

impl Review {
    pub fn get(&self, index: usize) -> Option<&Decision> {
        self.decisions.get(&index)
    }

    /// Every decision, by index.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Decision)> + '_ {
        self.decisions.iter().map(|(i, d)| (*i, d))
    }

    pub fn len(&self) -> usize {
        self.decisions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty()
    }

    /// Sets (or, with `None`, removes) the decisions of `changes` as one undo step. Returns the
    /// indexes whose decision changed; nothing is recorded when none did.
    pub fn apply(&mut self, changes: Vec<(usize, Option<Decision>)>) -> Vec<usize> {
        let mut step = Step::new();
        for (index, decision) in changes {
            if self.decisions.get(&index) == decision.as_ref()
                || step.iter().any(|(i, _)| *i == index)
            {
                continue;
            }
            let before = match decision {
                Some(d) => self.decisions.insert(index, d),
                None => self.decisions.remove(&index),
            };
            step.push((index, before));
        }
        let changed = step.iter().map(|(i, _)| *i).collect();
        if !step.is_empty() {
            self.history.push(step);
        }
        changed
    }

    /// One decision, as one undo step. Returns whether it changed anything.
    pub fn decide(&mut self, index: usize, decision: Option<Decision>) -> bool {
        !self.apply(vec![(index, decision)]).is_empty()
    }

    /// Whether there is a step to undo.
    pub fn can_undo(&self) -> bool {
        !self.history.is_empty()
    }

    /// Takes back the last step (a single decision or a whole bulk action). Returns the indexes
    /// it changed back, in the order they were decided.
    pub fn undo(&mut self) -> Option<Vec<usize>> {
        let step = self.history.pop()?;
        let mut changed = Vec::with_capacity(step.len());
        for (index, before) in step.into_iter().rev() {
            match before {
                Some(d) => self.decisions.insert(index, d),
                None => self.decisions.remove(&index),
            };
            changed.push(index);
        }
        changed.reverse();
        Some(changed)
    }

    /// Records the second judge's `verdict` on the edited goal `goal` of entry `index`, when that
    /// is still its decision (not an undo step: it adds to the edit). Returns whether it did.
    pub fn set_judged(&mut self, index: usize, goal: &str, verdict: JudgeVerdict) -> bool {
        match self.decisions.get_mut(&index) {
            Some(Decision::Edited {
                goal: edited,
                judged,
                ..
            }) if edited == goal => {
                *judged = Some(verdict);
                true
            }
            _ => false,
        }
    }

    /// Puts back a decision read from storage, outside the history.
    pub fn restore(&mut self, index: usize, decision: Decision) {
        self.decisions.insert(index, decision);
    }

    /// Forgets every decision and the history.
    pub fn clear(&mut self) {
        *self = Review::default();
    }
}

/// A bulk action over the current filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bulk {
    /// Reject the unreviewed samples accepted by the single-judge fallback.
    RejectFallbacks,
    /// Accept the unreviewed samples whose c and c2 are both at least the given hundredths.
    AcceptConfident { hundredths: u8 },
}

impl Bulk {
    /// The decision it makes.
    pub fn decision(self) -> Decision {
        match self {
            Bulk::RejectFallbacks => Decision::rejected("single-judge fallback"),
            Bulk::AcceptConfident { .. } => Decision::Accepted,
        }
    }
}

/// What review needs of an accepted trajectory.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted<'a> {
    /// The model's hindsight goal.
    pub model_goal: &'a str,
    pub judges: Judges,
    pub confidence: f64,
    /// c, the relabeler's.
    pub relabel_confidence: f64,
    /// c2, the second judge's (none for a fallback the judge never answered).
    pub judge_confidence: Option<f64>,
}

impl Session {
    /// The accepted relabeling of entry `index`, when a run accepted it: what review looks at.
    pub fn accepted(&self, index: usize) -> Option<Accepted<'_>> {
        let e = self.entries.get(index)?;
        if e.succeeded() {
            return None;
        }
        let r = e.result.as_ref()?;
        let relabel = r.relabel.as_ref()?.relabel()?;
        match r.outcome {
            Outcome::Accepted {
                judges,
                confidence,
                relabel_confidence,
                judge_confidence,
                ..
            } => Some(Accepted {
                model_goal: &relabel.hindsight_prompt,
                judges,
                confidence,
                relabel_confidence,
                judge_confidence,
            }),
            _ => None,
        }
    }

    /// Whether entry `index` can be reviewed (a run accepted it).
    pub fn reviewable(&self, index: usize) -> bool {
        self.accepted(index).is_some()
    }

    /// The decision on entry `index`, if it is reviewable and has one. A decision on an entry
    /// no longer accepted (after Reset results) is kept but has no effect until a run accepts
    /// it again.
    pub fn decision(&self, index: usize) -> Option<&Decision> {
        self.review.get(index).filter(|_| self.reviewable(index))
    }

    /// The goal the exports use for entry `index`: the reviewer's edit, else the model's.
    pub fn goal(&self, index: usize) -> Option<&str> {
        let model = self.accepted(index)?.model_goal;
        Some(
            self.decision(index)
                .and_then(Decision::goal)
                .unwrap_or(model),
        )
    }

    /// What review has decided so far, over the reviewable entries.
    pub fn review_counts(&self) -> ReviewCounts {
        let mut counts = ReviewCounts::default();
        for i in 0..self.len() {
            if !self.reviewable(i) {
                continue;
            }
            counts.reviewable += 1;
            match self.review.get(i).map(Decision::kind) {
                Some(DecisionKind::Accepted) => counts.accepted += 1,
                Some(DecisionKind::Edited) => counts.edited += 1,
                Some(DecisionKind::Rejected) => counts.rejected += 1,
                None => {}
            }
        }
        counts
    }

    /// The entries among `indexes` that `bulk` would decide: reviewable, unreviewed (a bulk
    /// action never overrides a decision made one by one), and selected by the action.
    pub fn bulk_targets(&self, indexes: &[usize], bulk: Bulk) -> Vec<usize> {
        indexes
            .iter()
            .copied()
            .filter(|&i| self.review.get(i).is_none())
            .filter(|&i| {
                self.accepted(i).is_some_and(|a| match bulk {
                    Bulk::RejectFallbacks => a.judges == Judges::SingleJudgeFallback,
                    Bulk::AcceptConfident { hundredths } => {
                        let at_least = f64::from(hundredths) / 100.0;
                        a.relabel_confidence >= at_least
                            && a.judge_confidence.is_some_and(|c2| c2 >= at_least)
                    }
                })
            })
            .collect()
    }

    /// Applies `bulk` to its targets among `indexes`, as one undo step. Returns the indexes
    /// decided.
    pub fn apply_bulk(&mut self, indexes: &[usize], bulk: Bulk) -> Vec<usize> {
        let targets = self.bulk_targets(indexes, bulk);
        let decision = bulk.decision();
        self.review.apply(
            targets
                .into_iter()
                .map(|i| (i, Some(decision.clone())))
                .collect(),
        )
    }

    /// Records `decision` for entry `index` (one undo step), when it is reviewable. Returns
    /// whether anything changed.
    pub fn decide(&mut self, index: usize, decision: Option<Decision>) -> bool {
        self.reviewable(index) && self.review.decide(index, decision)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::llm::testing::ScriptedClient;
    use crate::llm::ChatRequest;
    use crate::pipeline::{Mode, Settings};
    use crate::reader::read_all;
    use crate::stages::detect::rules::Lexicon;

    /// A failed shopping run `id` asked for `goal` that observed Nike and Adidas shoes, as a
    /// JSONL line.
    pub(crate) fn shop_line(id: &str, goal: &str) -> String {
        format!(
            r#"{{"trajectory_id":"{id}","original_prompt":"{goal}","steps":[{{"thought":"search","action_name":"search","action_input":{{"q":"x"}},"observation":"Found Nike Pegasus for $89 and Adidas Run for $95"}}],"failure_reason":"Price exceeds budget"}}"#
        )
    }

    /// A session of the runs of `jsonl`, run with rule-based extraction against a scripted
    /// endpoint that answers each request's text with `reply`.
    pub(crate) fn scripted_session(
        jsonl: &str,
        reply: impl Fn(&str) -> String + 'static,
    ) -> Session {
        let mut s = Session::new(Lexicon::default(), 0.3);
        s.add_report(read_all("shop.jsonl", jsonl.as_bytes()));
        let client = ScriptedClient::from_fn(move |req: &ChatRequest| {
            let text: String = req.messages.iter().map(|m| m.content.as_str()).collect();
            Ok(reply(&text))
        });
        let settings = Settings {
            model: "m".into(),
            extraction: Mode::Rules,
            ..Settings::default()
        };
        s.run_all(&client, &settings);
        s
    }

    /// The relabeler's reply with `goal` at confidence `c`.
    pub(crate) fn relabel_reply(goal: &str, c: f64) -> String {
        format!(
            r#"{{"hindsight_prompt":"{goal}","is_valid_replay":true,"rationale":"r","confidence":{c}}}"#
        )
    }

    /// The second judge's acceptance at confidence `c2`.
    pub(crate) fn judge_reply(c2: f64) -> String {
        format!(r#"{{"is_valid":true,"confidence":{c2},"rejection_reason":""}}"#)
    }

    /// Three shopping runs: "a" accepted by both judges (c 0.95, c2 0.92), "b" by the
    /// single-judge fallback, "c" by both judges with c2 0.6; "d" is skipped by the gates.
    pub(crate) fn reviewed_session() -> Session {
        let mut text = [
            shop_line("a", "Buy shoes under $50"),
            shop_line("b", "Buy socks under $5"),
            shop_line("c", "Buy a hat under $9"),
        ]
        .join("\n");
        text.push('\n');
        text.push_str(r#"{"trajectory_id":"d","original_prompt":"Weather","steps":[{"thought":"t","action_name":"weather","observation":"error: 503 service unavailable"}],"failure_reason":""}"#);
        scripted_session(&text, |text| {
            if text.contains("rejection_reason") {
                // The second judge sees the hindsight goal, not the original one.
                judge_reply(if text.contains("running shoes") {
                    0.92
                } else {
                    0.6
                })
            } else if text.contains("Buy shoes") {
                relabel_reply("List running shoes with prices", 0.95)
            } else if text.contains("Buy socks") {
                relabel_reply("Find socks", 0.45)
            } else {
                relabel_reply("Find a hat", 0.93)
            }
        })
    }

    #[test]
    fn the_fixture_has_each_kind_of_acceptance() {
        let s = reviewed_session();
        let judges: Vec<_> = (0..4).map(|i| s.accepted(i).map(|a| a.judges)).collect();
        assert_eq!(
            judges,
            [
                Some(Judges::RelabelerAndJudge),
                Some(Judges::SingleJudgeFallback),
                Some(Judges::RelabelerAndJudge),
                None
            ]
        );
        assert_eq!(
            s.review_counts(),
            ReviewCounts {
                reviewable: 3,
                ..ReviewCounts::default()
            }
        );
    }

    #[test]
    fn decisions_change_counts_goals_and_undo_one_at_a_time() {
        let mut s = reviewed_session();
        assert!(s.decide(0, Some(Decision::Accepted)));
        assert!(!s.decide(0, Some(Decision::Accepted)), "no change, no step");
        let edit = Decision::edited("  Compare two running shoes  ", "Find a hat").unwrap();
        assert!(s.decide(2, Some(edit.clone())));
        assert!(s.decide(1, Some(Decision::rejected(" vague "))));
        assert!(!s.decide(3, Some(Decision::Accepted)), "not reviewable");
        assert_eq!(
            s.review.get(1),
            Some(&Decision::Rejected {
                reason: "vague".into()
            })
        );
        assert_eq!(s.goal(2), Some("Compare two running shoes"));
        assert_eq!(s.goal(0), Some("List running shoes with prices"));
        let counts = s.review_counts();
        assert_eq!(
            (
                counts.accepted,
                counts.edited,
                counts.rejected,
                counts.unreviewed()
            ),
            (1, 1, 1, 0)
        );
        assert_eq!(counts.summary(), "Reviewed 3 / 3");

        assert_eq!(s.review.undo(), Some(vec![1]));
        assert_eq!(s.review.get(1), None);
        assert_eq!(s.review.undo(), Some(vec![2]));
        assert_eq!(s.goal(2), Some("Find a hat"));
        assert_eq!(s.review.undo(), Some(vec![0]));
        assert_eq!(s.review.undo(), None);
        assert!(s.review.is_empty());
    }

    #[test]
    fn an_edit_equal_to_the_model_goal_is_an_acceptance_and_a_blank_one_is_refused() {
        assert_eq!(
            Decision::edited(" Find a hat ", "Find a hat"),
            Ok(Decision::Accepted)
        );
        assert!(Decision::edited("   ", "Find a hat").is_err());
        let d = Decision::edited("Find two hats", "Find a hat").unwrap();
        assert_eq!(d.goal(), Some("Find two hats"));
        assert!(d.keeps());
        assert!(!Decision::rejected("").keeps());
    }

    #[test]
    fn a_bulk_action_counts_first_skips_decided_rows_and_undoes_in_one_step() {
        let mut s = reviewed_session();
        let all: Vec<usize> = (0..s.len()).collect();
        assert_eq!(s.bulk_targets(&all, Bulk::RejectFallbacks), vec![1]);
        assert_eq!(
            s.bulk_targets(&all, Bulk::AcceptConfident { hundredths: 90 }),
            vec![0],
            "c2 0.6 and a fallback are not both ≥ 0.9"
        );
        s.decide(0, Some(Decision::rejected("")));
        assert!(s
            .bulk_targets(&all, Bulk::AcceptConfident { hundredths: 90 })
            .is_empty());
        // Over a filter: only the rows given.
        assert!(s.bulk_targets(&[0, 2], Bulk::RejectFallbacks).is_empty());
        s.review.undo();
        let low = Bulk::AcceptConfident { hundredths: 50 };
        assert_eq!(s.apply_bulk(&all, low), vec![0, 2]);
        assert_eq!(s.review_counts().accepted, 2);
        assert_eq!(s.review.undo(), Some(vec![0, 2]));
        assert!(s.review.is_empty());
        assert!(!s.review.can_undo());
    }

    #[test]
    fn a_later_run_leaves_decisions_alone() {
        let mut s = reviewed_session();
        s.decide(1, Some(Decision::rejected("vague")));
        let edit = Decision::edited("Compare shoes", "List running shoes with prices").unwrap();
        s.decide(0, Some(edit.clone()));
        let before = s.review.clone();
        // Reset results and run again: the same decisions, applying again once accepted.
        let fresh = reviewed_session();
        s.clear_results();
        assert_eq!(s.decision(0), None, "no effect while not accepted");
        assert_eq!(s.review, before);
        for i in 0..s.len() {
            s.set_result(i, *fresh.entries[i].result.clone().unwrap());
        }
        assert_eq!(s.review, before);
        assert_eq!(s.decision(0), Some(&edit));
        assert_eq!(s.goal(0), Some("Compare shoes"));
    }

    #[test]
    fn review_states_filter_decisions() {
        let rejected = Decision::rejected("x");
        for (state, none, accepted, rej) in [
            (ReviewState::Unreviewed, true, false, false),
            (ReviewState::Reviewed, false, true, true),
            (
                ReviewState::Decided(DecisionKind::Rejected),
                false,
                false,
                true,
            ),
        ] {
            assert_eq!(state.matches(None), none);
            assert_eq!(state.matches(Some(&Decision::Accepted)), accepted);
            assert_eq!(state.matches(Some(&rejected)), rej);
            assert_eq!(ReviewState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn decisions_serialize_tagged() {
        let d = Decision::edited("New", "Old").unwrap();
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(
            text,
            r#"{"decision":"edited","goal":"New","model_goal":"Old"}"#
        );
        assert_eq!(serde_json::from_str::<Decision>(&text).unwrap(), d);
        assert_eq!(
            serde_json::to_string(&Decision::rejected("")).unwrap(),
            r#"{"decision":"rejected"}"#
        );
    }

    #[test]
    fn an_edited_goal_can_be_judged_once_more() {
        use crate::llm::{testing::ScriptedClient, Templates};
        use crate::stages::relabel::judge_goal;
        let mut s = reviewed_session();
        let goal = "Compare two running shoes by price";
        s.decide(
            0,
            Some(Decision::edited(goal, "List running shoes with prices").unwrap()),
        );
        let client = ScriptedClient::with_replies([Ok(
            r#"{"is_valid":true,"confidence":0.85,"rejection_reason":""}"#,
        )]);
        let settings = Settings {
            model: "m".into(),
            ..Settings::default()
        }
        .relabel_settings();
        let call = futures::executor::block_on(judge_goal(
            &client,
            &Templates::defaults(),
            &settings,
            &s.entries[0].trajectory(),
            goal,
        ));
        let sent: String = client.requests()[0]
            .messages
            .iter()
            .map(|m| m.content.as_str())
            .collect();
        assert!(sent.contains(goal), "the judge sees the edited goal");
        assert!(
            !sent.contains("Buy shoes under $50"),
            "and not the original one"
        );
        assert_eq!(call.verdict, JudgeVerdict::Accepted { confidence: 0.85 });
        assert!(!s.review.set_judged(0, "another goal", call.verdict.clone()));
        assert!(s.review.set_judged(0, goal, call.verdict.clone()));
        assert!(
            !s.review.set_judged(1, goal, call.verdict.clone()),
            "not an edit"
        );
        let Some(Decision::Edited { judged, .. }) = s.review.get(0) else {
            panic!("an edit")
        };
        assert_eq!(judged, &Some(JudgeVerdict::Accepted { confidence: 0.85 }));
        let text = serde_json::to_string(s.review.get(0).unwrap()).unwrap();
        assert!(text.contains(r#""judged":{"#), "{text}");
        // One undo takes back the edit, verdict and all.
        assert_eq!(s.review.undo(), Some(vec![0]));
        assert_eq!(s.review.get(0), None);
    }
}
