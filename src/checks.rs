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

/// A member of a near-duplicate cluster, as the review queue lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterMember {
    pub index: usize,
    pub id: String,
    /// The model's hindsight goal (what was clustered).
    pub goal: String,
    /// "One per cluster" keeps this member.
    pub kept: bool,
}

/// The near-duplicate cluster of one entry's accepted goal.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSummary {
    pub number: usize,
    pub size: usize,
    /// The id of the member "one per cluster" keeps, when it is not the entry itself.
    pub kept_other: Option<String>,
    /// The other members, in entry order.
    pub others: Vec<ClusterMember>,
}

/// One line of what the checks say of a goal under review: a badge (empty: none) of a kind
/// (`flag`, `cluster`), a sentence, and a value for the page (`data-value`).
#[derive(Debug, Clone, PartialEq)]
pub struct CheckLine {
    /// `review-grounding`, `review-not-new` or `review-cluster`.
    pub testid: &'static str,
    /// Grounding: `true`, `false` or `off`; not new: `true`; cluster: its size.
    pub value: String,
    pub kind: &'static str,
    pub badge: String,
    pub text: String,
}

impl GoalChecks {
    /// What the checks say, line by line: the grounding check, "not a new goal" when the goal
    /// restates the original one, and the near-duplicate cluster when the clusters are known.
    pub fn lines(&self, cluster: Option<&ClusterSummary>) -> Vec<CheckLine> {
        let mut lines = Vec::new();
        let line = |testid, value: &str, kind, badge: &str, text: String| CheckLine {
            testid,
            value: value.to_owned(),
            kind,
            badge: badge.to_owned(),
            text,
        };
        lines.push(match &self.grounding {
            Some(g) if !g.is_grounded() => line(
                "review-grounding",
                "false",
                "flag",
                "ungrounded",
                format!("{} They are marked in the goal.", g.describe()),
            ),
            Some(g) => line("review-grounding", "true", "", "", g.describe()),
            None => line(
                "review-grounding",
                "off",
                "",
                "",
                "The grounding check did not look at this goal (it was off for the run).".into(),
            ),
        });
        if self.restates {
            lines.push(line(
                "review-not-new",
                "true",
                "flag",
                "not a new goal",
                "The hindsight goal restates the original goal: the sample teaches little the \
                 failed run was not already asked."
                    .into(),
            ));
        }
        if let Some(c) = cluster {
            lines.push(if c.size <= 1 {
                line(
                    "review-cluster",
                    "1",
                    "",
                    "",
                    "No near-duplicate among the accepted goals.".into(),
                )
            } else {
                let others = c.size - 1;
                line(
                    "review-cluster",
                    &c.size.to_string(),
                    "cluster",
                    &format!("cluster #{} · {} goals", c.number, c.size),
                    format!(
                        "A near-duplicate of {} other accepted goal{}; one per cluster keeps {} \
                         (the highest confidence).",
                        crate::progress::format_count(others),
                        if others == 1 { "" } else { "s" },
                        c.kept_other.as_deref().unwrap_or("this one"),
                    ),
                )
            });
        }
        lines
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
            restates: goal.is_some_and(|g| restates(e.goal(), g, restate_threshold)),
            cluster: clusters.and_then(|c| c.membership(index)),
        }
    }

    /// The near-duplicate cluster of entry `index` in `clusters` (`None` without an accepted
    /// goal).
    pub fn cluster_summary(&self, index: usize, clusters: &Clusters) -> Option<ClusterSummary> {
        let m = clusters.membership(index)?;
        let id = |i: usize| self.entries[i].id().to_owned();
        Some(ClusterSummary {
            number: m.cluster,
            size: m.size,
            kept_other: clusters.kept(index).filter(|&k| k != index).map(id),
            others: clusters
                .others(index)
                .map(|i| ClusterMember {
                    index: i,
                    id: id(i),
                    goal: self
                        .accepted(i)
                        .map(|a| a.model_goal.to_owned())
                        .unwrap_or_default(),
                    kept: clusters.kept(i) == Some(i),
                })
                .collect(),
        })
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
    use crate::review::tests::{judge_reply, relabel_reply, scripted_session, shop_line};

    /// Four shopping runs that observed Nike and Adidas shoes: "a" and "b" get the same goal
    /// (b more confidently), "c" a goal naming a brand and price the run never saw, "d" a goal
    /// that repeats its original goal.
    fn checked_session() -> Session {
        let text = [
            shop_line("a", "Buy shoes under $50"),
            shop_line("b", "Buy socks under $5"),
            shop_line("c", "Buy a hat under $9"),
            shop_line("d", "List the running shoes in stock with their prices"),
        ]
        .join("\n");
        scripted_session(&text, |text| {
            let shoes = "List the Nike and Adidas running shoes with their prices";
            if text.contains("rejection_reason") {
                judge_reply(0.9)
            } else if text.contains("Buy shoes") {
                relabel_reply(shoes, 0.8)
            } else if text.contains("Buy socks") {
                relabel_reply(shoes, 0.9)
            } else if text.contains("Buy a hat") {
                relabel_reply("Find Puma shoes for $120", 0.85)
            } else {
                relabel_reply("List the running shoes in stock with their prices", 0.85)
            }
        })
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
    fn the_lines_the_review_queue_shows() {
        let s = checked_session();
        let clusters = Clusters::of_session(&s, DEFAULT_THRESHOLD);
        let lines = |i: usize| {
            let summary = s.cluster_summary(i, &clusters);
            s.goal_checks(i, Some(&clusters), DEFAULT_RESTATE_THRESHOLD)
                .lines(summary.as_ref())
        };
        let summary = |l: &CheckLine| (l.testid, l.value.clone(), l.badge.clone());

        // "a": grounded, one near-duplicate ("b", which is kept).
        let a = lines(0);
        assert_eq!(
            a.iter().map(summary).collect::<Vec<_>>(),
            [
                ("review-grounding", "true".into(), String::new()),
                ("review-cluster", "2".into(), "cluster #1 · 2 goals".into()),
            ]
        );
        assert!(a[0].text.starts_with("Grounded: all 2 "), "{}", a[0].text);
        assert_eq!(
            a[1].text,
            "A near-duplicate of 1 other accepted goal; one per cluster keeps b (the highest confidence)."
        );
        let c = s.cluster_summary(0, &clusters).unwrap();
        assert_eq!(c.others.len(), 1);
        assert_eq!((c.others[0].index, c.others[0].id.as_str()), (1, "b"));
        assert!(c.others[0].kept);
        assert_eq!(
            c.others[0].goal,
            "List the Nike and Adidas running shoes with their prices"
        );
        assert!(lines(1)[1]
            .text
            .ends_with("keeps this one (the highest confidence)."));

        // "c": ungrounded, no near-duplicate.
        let c = lines(2);
        assert_eq!(
            c.iter().map(summary).collect::<Vec<_>>(),
            [
                ("review-grounding", "false".into(), "ungrounded".into()),
                ("review-cluster", "1".into(), String::new()),
            ]
        );
        assert_eq!(
            c[0].text,
            "The goal names “Puma” (name) and “$120” (amount), which the run never observed. \
             They are marked in the goal."
        );
        assert_eq!(c[0].kind, "flag");
        // "d": not a new goal.
        let d = lines(3);
        assert_eq!(d[1].testid, "review-not-new");
        assert_eq!(d[1].badge, "not a new goal");
        // Clusters not known yet, grounding off: the grounding line alone, saying so.
        let mut checks = s.goal_checks(3, None, 1.01);
        checks.grounding = None;
        let off = checks.lines(None);
        assert_eq!(off.len(), 1);
        assert_eq!((off[0].value.as_str(), off[0].badge.as_str()), ("off", ""));
        assert!(s.cluster_summary(9, &clusters).is_none());
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
