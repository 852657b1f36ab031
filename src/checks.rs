//! What the method's checks say of an entry's accepted goal, as the results table and the
//! review queue show and filter them: the grounding check's result, whether the goal merely
//! restates the original one ("not a new goal"), and its near-duplicate cluster.

use crate::duplicates::{restates, Clusters, Membership};
use crate::grounding::Grounding;
use crate::session::Session;

/// The checks of one entry's accepted goal (all empty for an entry without one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GoalChecks {
    /// The grounding check's result, when the run checked (not with grounding off).
    pub grounding: Option<Grounding>,
    /// The goal restates the original goal.
    pub restates: bool,
    /// Where the goal stands among the near-duplicates (`None` while they are not known).
    pub cluster: Option<Membership>,
}

impl GoalChecks {
    /// The grounding check found tokens the run never observed.
    pub fn is_ungrounded(&self) -> bool {
        self.grounding.as_ref().is_some_and(|g| !g.is_grounded())
    }

    /// The goal has at least one near-duplicate.
    pub fn in_cluster(&self) -> bool {
        self.cluster.is_some_and(|m| m.size > 1)
    }

    /// "One per cluster" keeps this goal.
    pub fn kept(&self) -> bool {
        self.cluster.is_some_and(|m| m.kept)
    }
}

/// Which goals a list keeps by their checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckFilter {
    #[default]
    All,
    /// In a near-duplicate cluster.
    Clustered,
    /// The goal "one per cluster" keeps (every goal without a near-duplicate too).
    Kept,
    Ungrounded,
    NotNew,
}

impl CheckFilter {
    pub const ALL: [CheckFilter; 5] = [
        CheckFilter::All,
        CheckFilter::Clustered,
        CheckFilter::Kept,
        CheckFilter::Ungrounded,
        CheckFilter::NotNew,
    ];

    /// The value the page's filter uses.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckFilter::All => "all",
            CheckFilter::Clustered => "clustered",
            CheckFilter::Kept => "kept",
            CheckFilter::Ungrounded => "ungrounded",
            CheckFilter::NotNew => "not-new",
        }
    }

    /// What the page's filter says.
    pub fn label(self) -> &'static str {
        match self {
            CheckFilter::All => "all goals",
            CheckFilter::Clustered => "in a near-duplicate cluster",
            CheckFilter::Kept => "one per cluster",
            CheckFilter::Ungrounded => "ungrounded",
            CheckFilter::NotNew => "not a new goal",
        }
    }

    /// The filter a value names (`all` for anything else).
    pub fn parse(text: &str) -> CheckFilter {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == text)
            .unwrap_or_default()
    }

    pub fn matches(self, checks: &GoalChecks) -> bool {
        match self {
            CheckFilter::All => true,
            CheckFilter::Clustered => checks.in_cluster(),
            CheckFilter::Kept => checks.kept(),
            CheckFilter::Ungrounded => checks.is_ungrounded(),
            CheckFilter::NotNew => checks.restates,
        }
    }
}

impl Session {
    /// The checks of entry `index`'s accepted goal: its grounding, whether it restates the
    /// original goal at `restate_threshold`, and its membership in `clusters` (when known).
    pub fn goal_checks(
        &self,
        index: usize,
        clusters: Option<&Clusters>,
        restate_threshold: f64,
    ) -> GoalChecks {
        let Some(e) = self.entries.get(index) else {
            return GoalChecks::default();
        };
        let report = e.result.as_ref().and_then(|r| r.relabel.as_ref());
        let goal = report
            .and_then(|r| r.relabel())
            .map(|r| r.hindsight_prompt.as_str());
        GoalChecks {
            grounding: report.and_then(|r| r.grounding.clone()),
            restates: goal
                .is_some_and(|g| restates(&e.trajectory.original_prompt, g, restate_threshold)),
            cluster: clusters.and_then(|c| c.membership(index)),
        }
    }

    /// The entries among `indexes` whose checks `filter` keeps, in order.
    pub fn filter_checks(
        &self,
        indexes: Vec<usize>,
        filter: CheckFilter,
        clusters: Option<&Clusters>,
        restate_threshold: f64,
    ) -> Vec<usize> {
        if filter == CheckFilter::All {
            return indexes;
        }
        indexes
            .into_iter()
            .filter(|&i| filter.matches(&self.goal_checks(i, clusters, restate_threshold)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duplicates::{DEFAULT_RESTATE_THRESHOLD, DEFAULT_THRESHOLD};
    use crate::llm::testing::ScriptedClient;
    use crate::llm::ChatRequest;
    use crate::pipeline::{Mode, Settings};
    use crate::reader::read_all;
    use crate::stages::detect::rules::Lexicon;

    /// Four shopping runs that observed Nike and Adidas shoes: "a" and "b" get the same goal
    /// (b more confidently), "c" a goal naming a brand and price the run never saw, "d" a goal
    /// that repeats its original goal.
    fn checked_session() -> Session {
        let line = |id: &str, goal: &str| {
            format!(
                r#"{{"trajectory_id":"{id}","original_prompt":"{goal}","steps":[{{"thought":"search","action_name":"search","action_input":{{"q":"x"}},"observation":"Found Nike Pegasus for $89 and Adidas Run for $95"}}],"failure_reason":"Price exceeds budget"}}"#
            )
        };
        let text = [
            line("a", "Buy shoes under $50"),
            line("b", "Buy socks under $5"),
            line("c", "Buy a hat under $9"),
            line("d", "List the running shoes in stock with their prices"),
        ]
        .join("\n");
        let mut s = Session::new(Lexicon::default(), 0.3);
        s.add_report(read_all("shop.jsonl", text.as_bytes()));
        let client = ScriptedClient::from_fn(|req: &ChatRequest| {
            let text: String = req.messages.iter().map(|m| m.content.as_str()).collect();
            if text.contains("rejection_reason") {
                return Ok(r#"{"is_valid":true,"confidence":0.9,"rejection_reason":""}"#.into());
            }
            let (goal, c) = if text.contains("Buy shoes") {
                (
                    "List the Nike and Adidas running shoes with their prices",
                    0.8,
                )
            } else if text.contains("Buy socks") {
                (
                    "List the Nike and Adidas running shoes with their prices",
                    0.9,
                )
            } else if text.contains("Buy a hat") {
                ("Find Puma shoes for $120", 0.85)
            } else {
                ("List the running shoes in stock with their prices", 0.85)
            };
            Ok(format!(
                r#"{{"hindsight_prompt":"{goal}","is_valid_replay":true,"rationale":"r","confidence":{c}}}"#
            ))
        });
        let settings = Settings {
            model: "m".into(),
            extraction: Mode::Rules,
            ..Settings::default()
        };
        s.run_all(&client, &settings);
        s
    }

    #[test]
    fn checks_of_accepted_goals_and_the_filters_over_them() {
        let s = checked_session();
        assert!((0..4).all(|i| s.reviewable(i)), "every run is accepted");
        let clusters = Clusters::of_session(&s, DEFAULT_THRESHOLD);
        let checks: Vec<GoalChecks> = (0..4)
            .map(|i| s.goal_checks(i, Some(&clusters), DEFAULT_RESTATE_THRESHOLD))
            .collect();
        assert!(checks[0].in_cluster() && checks[1].in_cluster());
        assert!(!checks[0].kept() && checks[1].kept(), "b is more confident");
        assert_eq!(clusters.kept(0), Some(1));
        assert_eq!(clusters.others(1).collect::<Vec<_>>(), [0]);
        assert!(checks[2].is_ungrounded());
        let ungrounded: Vec<&str> = checks[2]
            .grounding
            .as_ref()
            .unwrap()
            .ungrounded
            .iter()
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(ungrounded, ["Puma", "$120"]);
        assert!(!checks[0].is_ungrounded() && checks[0].grounding.is_some());
        assert!(checks[3].restates && !checks[0].restates);

        let all: Vec<usize> = (0..4).collect();
        let keep = |f: CheckFilter| s.filter_checks(all.clone(), f, Some(&clusters), 0.8);
        assert_eq!(keep(CheckFilter::All), [0, 1, 2, 3]);
        assert_eq!(keep(CheckFilter::Clustered), [0, 1]);
        assert_eq!(keep(CheckFilter::Kept), [1, 2, 3]);
        assert_eq!(keep(CheckFilter::Ungrounded), [2]);
        assert_eq!(keep(CheckFilter::NotNew), [3]);
        // Clusters not known (a run going on): no goal is in one.
        assert!(s
            .filter_checks(all.clone(), CheckFilter::Clustered, None, 0.8)
            .is_empty());
        // A stricter restatement threshold, and an entry that does not exist.
        assert!(s
            .filter_checks(all, CheckFilter::NotNew, None, 1.01)
            .is_empty());
        assert_eq!(
            s.goal_checks(9, Some(&clusters), 0.8),
            GoalChecks::default()
        );
    }

    #[test]
    fn filter_values_round_trip() {
        for f in CheckFilter::ALL {
            assert_eq!(CheckFilter::parse(f.as_str()), f);
            assert!(!f.label().is_empty());
        }
        assert_eq!(CheckFilter::parse("nonsense"), CheckFilter::All);
    }
}
