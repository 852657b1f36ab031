//! The numbers behind the charts: the funnel from loaded trajectories to the samples review
//! keeps, failure types by severity, histograms of the confidences c and c2, the accept rate per
//! failure type, and calls and tokens over the time of a run. Every bar knows the filter that
//! shows its rows ([`Pick`]), and that filter counts exactly what the bar counts.

use crate::model::{FailureAnalysis, FailureType};
use crate::pipeline::Outcome;
use crate::review::Decision;
use crate::session::{Entry, Session};
use crate::stages::relabel::{JudgeVerdict, RelabelAttempt};

/// A step of the funnel. Each step holds only trajectories the step before it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Loaded,
    /// The source does not mark the run as a success.
    Failures,
    /// Detection calls it a failure that is recoverable with a weight of at least δ: run and
    /// not skipped, or not run yet and the rule-based gates let it through.
    PassedGates,
    /// The relabeler proposed a hindsight goal it calls a valid replay.
    Relabeled,
    /// The second judge accepted a candidate, or the single-judge fallback took one.
    JudgedValid,
    Accepted,
    /// Accepted, and a reviewer did not reject the sample (unreviewed, accepted or edited).
    KeptByReview,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::Loaded,
        Step::Failures,
        Step::PassedGates,
        Step::Relabeled,
        Step::JudgedValid,
        Step::Accepted,
        Step::KeptByReview,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Step::Loaded => "loaded",
            Step::Failures => "failures",
            Step::PassedGates => "passed the gates",
            Step::Relabeled => "relabeled",
            Step::JudgedValid => "judged valid",
            Step::Accepted => "accepted",
            Step::KeptByReview => "kept by review",
        }
    }

    /// The form used in the DOM and in tests.
    pub fn slug(self) -> &'static str {
        match self {
            Step::Loaded => "loaded",
            Step::Failures => "failures",
            Step::PassedGates => "passed-gates",
            Step::Relabeled => "relabeled",
            Step::JudgedValid => "judged-valid",
            Step::Accepted => "accepted",
            Step::KeptByReview => "kept-by-review",
        }
    }

    fn before(self) -> Option<Step> {
        let i = Step::ALL.iter().position(|s| *s == self)?;
        i.checked_sub(1).map(|j| Step::ALL[j])
    }

    /// Whether the session's entry `index` reached this step.
    pub fn holds(self, session: &Session, index: usize) -> bool {
        session.entries.get(index).is_some_and(|e| {
            self.before().is_none_or(|s| s.holds(session, index)) && self.own(session, index, e)
        })
    }

    fn own(self, session: &Session, index: usize, e: &Entry) -> bool {
        let outcome = e.result.as_ref().map(|r| &r.outcome);
        match self {
            Step::Loaded => true,
            Step::Failures => !e.succeeded(),
            Step::PassedGates => match outcome {
                Some(o) => !matches!(o, Outcome::Skipped { .. }),
                None => e.skip_reason().is_none(),
            },
            Step::Relabeled => attempts(e).iter().any(|a| {
                a.reply
                    .as_ref()
                    .is_some_and(|r| r.is_valid_replay && !r.hindsight_prompt.trim().is_empty())
            }),
            Step::JudgedValid => {
                matches!(outcome, Some(Outcome::Accepted { .. }))
                    || attempts(e).iter().any(|a| {
                        matches!(
                            a.judge.as_ref().map(|j| &j.verdict),
                            Some(JudgeVerdict::Accepted { .. })
                        )
                    })
            }
            Step::Accepted => matches!(outcome, Some(Outcome::Accepted { .. })),
            Step::KeptByReview => session.decision(index).is_none_or(Decision::keeps),
        }
    }
}

/// Which confidence a histogram counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    /// c, the relabeler's confidence.
    Relabel,
    /// c2, the second judge's confidence.
    Judge,
}

impl Measure {
    pub fn label(self) -> &'static str {
        match self {
            Measure::Relabel => "c",
            Measure::Judge => "c2",
        }
    }

    /// The entry's value: the accepted candidate's, else the highest any attempt got; `None`
    /// when no attempt gave one (or it is not a number).
    pub fn of(self, e: &Entry) -> Option<f64> {
        let accepted = match e.result.as_ref().map(|r| &r.outcome) {
            Some(Outcome::Accepted {
                relabel_confidence,
                judge_confidence,
                ..
            }) => match self {
                Measure::Relabel => Some(*relabel_confidence),
                Measure::Judge => *judge_confidence,
            },
            _ => None,
        };
        let value = accepted.or_else(|| {
            attempts(e)
                .iter()
                .filter_map(|a| match self {
                    Measure::Relabel => a.reply.as_ref().map(|r| r.confidence),
                    Measure::Judge => a.judge.as_ref()?.reply.as_ref().map(|r| r.confidence),
                })
                .filter(|v| v.is_finite())
                .reduce(f64::max)
        });
        value.filter(|v| v.is_finite())
    }
}

/// A range of a confidence: `lo ≤ value < hi`, or `≤ hi` for the last bin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub measure: Measure,
    pub lo: f64,
    pub hi: f64,
    pub closed: bool,
}

impl Band {
    pub fn contains(&self, value: f64) -> bool {
        value >= self.lo && (value < self.hi || (self.closed && value <= self.hi))
    }

    /// "c 0.8–0.9".
    pub fn label(&self) -> String {
        format!("{} {:.1}–{:.1}", self.measure.label(), self.lo, self.hi)
    }
}

/// What a click on a chart filters the results by, beyond a status or a failure type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pick {
    Step(Step),
    Band(Band),
}

impl Pick {
    /// Whether the session's entry `index` is among the bar's rows.
    pub fn holds(&self, session: &Session, index: usize) -> bool {
        match self {
            Pick::Step(s) => s.holds(session, index),
            Pick::Band(b) => session
                .entries
                .get(index)
                .and_then(|e| b.measure.of(e))
                .is_some_and(|v| b.contains(v)),
        }
    }

    /// What the filter shows, in words.
    pub fn label(&self) -> String {
        match self {
            Pick::Step(s) => format!("funnel: {}", s.label()),
            Pick::Band(b) => b.label(),
        }
    }
}

/// The analysis the page shows for an entry: the run's, else the rule-based one.
fn analysis(e: &Entry) -> &FailureAnalysis {
    e.result
        .as_ref()
        .and_then(|r| r.analysis.as_ref())
        .unwrap_or(e.rule_analysis())
}

fn attempts(e: &Entry) -> &[RelabelAttempt] {
    e.result
        .as_ref()
        .and_then(|r| r.relabel.as_ref())
        .map_or(&[], |r| &r.attempts)
}

/// The funnel: how many trajectories reached each step.
pub fn funnel(session: &Session) -> Vec<(Step, usize)> {
    Step::ALL
        .into_iter()
        .map(|s| {
            let n = (0..session.len()).filter(|&i| s.holds(session, i)).count();
            (s, n)
        })
        .collect()
}

/// The entries the source does not mark as a success.
fn failures(session: &Session) -> impl Iterator<Item = &Entry> {
    (0..session.len())
        .filter(|&i| Step::Failures.holds(session, i))
        .map(|i| &session.entries[i])
}

/// The severity bins: [0, 0.25), [0.25, 0.5), [0.5, 0.75), [0.75, 1].
pub const SEVERITY_BINS: [(f64, f64); 4] = [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)];

/// The bin of a severity (out-of-range values go to the nearest end; not a number to the
/// first).
pub fn severity_bin(severity: f64) -> usize {
    if severity.is_nan() {
        return 0;
    }
    SEVERITY_BINS
        .iter()
        .position(|(_, hi)| severity < *hi)
        .unwrap_or(SEVERITY_BINS.len() - 1)
}

/// Failures per failure type (`None`: no type), split by severity bin; types with no failure
/// are left out, in the order of [`FailureType::ALL`] with "no type" last.
pub fn types_by_severity(session: &Session) -> Vec<(Option<FailureType>, [usize; 4])> {
    let mut rows: Vec<(Option<FailureType>, [usize; 4])> = FailureType::ALL
        .into_iter()
        .map(Some)
        .chain([None])
        .map(|t| (t, [0; 4]))
        .collect();
    for e in failures(session) {
        let a = analysis(e);
        if let Some(row) = rows.iter_mut().find(|(t, _)| *t == a.failure_type) {
            row.1[severity_bin(a.severity)] += 1;
        }
    }
    rows.retain(|(_, bins)| bins.iter().sum::<usize>() > 0);
    rows
}

/// A histogram of one confidence over `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub measure: Measure,
    pub counts: Vec<usize>,
    /// Trajectories that have no value (never relabeled or judged, or not a number).
    pub missing: usize,
}

impl Histogram {
    /// Counts `measure` over the session's failures in `bins` equal bins (at least one).
    pub fn new(session: &Session, measure: Measure, bins: usize) -> Self {
        let bins = bins.max(1);
        let mut h = Histogram {
            measure,
            counts: vec![0; bins],
            missing: 0,
        };
        for e in failures(session) {
            match measure.of(e) {
                Some(v) => {
                    let i = ((v.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
                    h.counts[i] += 1;
                }
                None => h.missing += 1,
            }
        }
        h
    }

    /// The range of bin `i`, as a filter (the value clamped like the counting does).
    pub fn band(&self, i: usize) -> Band {
        let n = self.counts.len() as f64;
        let last = i + 1 == self.counts.len();
        Band {
            measure: self.measure,
            lo: if i == 0 {
                f64::NEG_INFINITY
            } else {
                i as f64 / n
            },
            hi: if last {
                f64::INFINITY
            } else {
                (i + 1) as f64 / n
            },
            closed: last,
        }
    }

    /// The bin's range as shown: "0.8–0.9".
    pub fn range_label(&self, i: usize) -> String {
        let n = self.counts.len() as f64;
        format!("{:.1}–{:.1}", i as f64 / n, (i + 1) as f64 / n)
    }

    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }
}

/// Of a failure type's trajectories that a run decided (accepted, rejected or skipped), how
/// many were accepted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AcceptRate {
    pub failure_type: Option<FailureType>,
    pub accepted: usize,
    pub decided: usize,
}

impl AcceptRate {
    /// 0 to 1; `None` when nothing was decided.
    pub fn rate(&self) -> Option<f64> {
        (self.decided > 0).then(|| self.accepted as f64 / self.decided as f64)
    }
}

/// The accept rate per failure type, for the types with a decided failure.
pub fn accept_rates(session: &Session) -> Vec<AcceptRate> {
    let mut rates: Vec<AcceptRate> = FailureType::ALL
        .into_iter()
        .map(Some)
        .chain([None])
        .map(|failure_type| AcceptRate {
            failure_type,
            accepted: 0,
            decided: 0,
        })
        .collect();
    for e in failures(session) {
        let Some(outcome) = e.result.as_ref().map(|r| &r.outcome) else {
            continue;
        };
        let decided = matches!(
            outcome,
            Outcome::Accepted { .. } | Outcome::Rejected { .. } | Outcome::Skipped { .. }
        );
        let t = analysis(e).failure_type;
        if let (true, Some(r)) = (decided, rates.iter_mut().find(|r| r.failure_type == t)) {
            r.decided += 1;
            r.accepted += usize::from(outcome.is_accepted());
        }
    }
    rates.retain(|r| r.decided > 0);
    rates
}

/// One reading of a run's counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Since the run started.
    pub ms: f64,
    /// Requests sent, retries included.
    pub calls: u64,
    /// Prompt and completion tokens of the replies so far.
    pub tokens: u64,
}

/// Calls and tokens over the time of a run, at most [`Series::MAX`] samples: when full, every
/// other sample is dropped, so the series keeps covering the whole run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    samples: Vec<Sample>,
}

impl Series {
    pub const MAX: usize = 240;

    /// Adds a reading; one at the same time as the last replaces it, and one that goes back
    /// in time is ignored.
    pub fn push(&mut self, s: Sample) {
        match self.samples.last_mut() {
            Some(last) if s.ms == last.ms => *last = s,
            Some(last) if s.ms < last.ms => {}
            _ => {
                if self.samples.len() >= Self::MAX {
                    let last = self.samples.len() - 1;
                    let mut i = 0;
                    // Keep the first and last samples, and every other one between.
                    self.samples.retain(|_| {
                        let keep = i % 2 == 0 || i == last;
                        i += 1;
                        keep
                    });
                }
                self.samples.push(s);
            }
        }
    }

    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    pub fn last(&self) -> Option<Sample> {
        self.samples.last().copied()
    }
}

/// A round upper bound for an axis of values up to `max`: 1, 2 or 5 times a power of ten.
pub fn nice_max(max: f64) -> f64 {
    if !max.is_finite() || max <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Stage, TrajectoryResult};
    use crate::reader;

    fn session(text: &str) -> Session {
        let mut s = Session::new(crate::stages::detect::rules::Lexicon::default(), 0.3);
        s.add_report(reader::read_all("t.jsonl", text.as_bytes()));
        s
    }

    #[test]
    fn an_empty_session_has_empty_charts() {
        let s = session("");
        assert!(funnel(&s).iter().all(|(_, n)| *n == 0));
        assert!(types_by_severity(&s).is_empty());
        assert!(accept_rates(&s).is_empty());
        let h = Histogram::new(&s, Measure::Relabel, 10);
        assert_eq!((h.total(), h.missing, h.counts.len()), (0, 0, 10));
    }

    #[test]
    fn severity_bins_cover_zero_to_one() {
        assert_eq!(severity_bin(0.0), 0);
        assert_eq!(severity_bin(0.249), 0);
        assert_eq!(severity_bin(0.25), 1);
        assert_eq!(severity_bin(0.75), 3);
        assert_eq!(severity_bin(1.0), 3);
        assert_eq!(severity_bin(7.0), 3);
        assert_eq!(severity_bin(-1.0), 0);
        assert_eq!(severity_bin(f64::NAN), 0);
    }

    #[test]
    fn bands_split_zero_to_one_without_gaps() {
        let h = Histogram {
            measure: Measure::Judge,
            counts: vec![0; 10],
            missing: 0,
        };
        for v in [0.0, 0.05, 0.1, 0.5, 0.89, 0.9, 0.95, 1.0] {
            let holding: Vec<usize> = (0..10).filter(|&i| h.band(i).contains(v)).collect();
            let expected = ((v * 10.0) as usize).min(9);
            assert_eq!(holding, vec![expected], "{v}");
        }
        assert_eq!(h.range_label(8), "0.8–0.9");
        assert_eq!(h.band(8).label(), "c2 0.8–0.9");
        let one = Histogram {
            measure: Measure::Relabel,
            counts: vec![0],
            missing: 0,
        };
        assert!(one.band(0).contains(0.0) && one.band(0).contains(1.0));
    }

    #[test]
    fn nice_maxima() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(f64::NAN), 1.0);
        assert_eq!(nice_max(1.0), 1.0);
        assert_eq!(nice_max(3.0), 5.0);
        assert_eq!(nice_max(12.0), 20.0);
        assert_eq!(nice_max(947.0), 1000.0);
    }

    #[test]
    fn the_series_keeps_its_ends_and_stays_bounded() {
        let mut s = Series::default();
        for i in 0..1000u64 {
            s.push(Sample {
                ms: i as f64 * 10.0,
                calls: i,
                tokens: i * 100,
            });
        }
        assert!(s.samples().len() <= Series::MAX);
        assert!(s.samples().len() > Series::MAX / 2);
        assert_eq!(s.samples()[0].calls, 0);
        assert_eq!(s.last().unwrap().calls, 999);
        assert!(s.samples().windows(2).all(|w| w[0].ms < w[1].ms));
        // Same time replaces, earlier time is ignored.
        let n = s.samples().len();
        s.push(Sample {
            ms: 9990.0,
            calls: 1000,
            tokens: 0,
        });
        s.push(Sample {
            ms: 1.0,
            calls: 5,
            tokens: 0,
        });
        assert_eq!(s.samples().len(), n);
        assert_eq!(s.last().unwrap().calls, 1000);
    }

    // The rest of the tests build results by hand on the example's trajectories.
    use crate::llm::reply::{JudgeReply, RelabelReply};
    use crate::llm::{CallKind, CallRecord};
    use crate::stages::relabel::{
        AttemptOutcome, JudgeCall, Judges, RelabelDecision, RelabelReport,
    };

    fn example() -> Session {
        session(crate::example::EXAMPLE_JSONL)
    }

    fn attempt(c: f64, judge: Option<(bool, f64)>) -> RelabelAttempt {
        RelabelAttempt {
            k: 1,
            temperature: 0.0,
            call: CallRecord::counted(CallKind::Relabel, crate::llm::Usage::new(0, 0), 0),
            reply: Some(RelabelReply {
                hindsight_prompt: "do what was done".into(),
                is_valid_replay: true,
                rationale: String::new(),
                confidence: c,
            }),
            judge: judge.map(|(valid, c2)| JudgeCall {
                call: None,
                reply: Some(JudgeReply {
                    is_valid: valid,
                    confidence: c2,
                    rejection_reason: String::new(),
                }),
                verdict: if valid {
                    JudgeVerdict::Accepted { confidence: c2 }
                } else {
                    JudgeVerdict::Rejected {
                        reason: "no".into(),
                    }
                },
            }),
            outcome: AttemptOutcome::JudgeRejected,
        }
    }

    fn result(outcome: Outcome, attempts: Vec<RelabelAttempt>) -> TrajectoryResult {
        let mut r = TrajectoryResult::bare(outcome);
        r.relabel = Some(RelabelReport {
            decision: RelabelDecision::Rejected {
                reason: String::new(),
            },
            attempts,
            theta: 0.7,
            fallback_floor: 0.5,
            grounding: None,
        });
        r
    }

    fn accepted(c: f64, c2: Option<f64>) -> Outcome {
        Outcome::Accepted {
            judges: if c2.is_some() {
                Judges::RelabelerAndJudge
            } else {
                Judges::SingleJudgeFallback
            },
            confidence: c2.map_or(c, |c2| (c + c2) / 2.0),
            relabel_confidence: c,
            judge_confidence: c2,
            attempt: 1,
        }
    }

    /// The indexes of the example's entries that the rules let through.
    fn through(s: &Session) -> Vec<usize> {
        (0..s.entries.len())
            .filter(|&i| Step::PassedGates.holds(s, i))
            .collect()
    }

    #[test]
    fn the_funnel_narrows_step_by_step_and_its_filters_count_the_same() {
        let mut s = example();
        // The source marks the last run a success: kept apart, out of the failures.
        s.edit_trajectory(s.len() - 1, |t| {
            t.origin = Some(
                serde_json::from_value(
                    serde_json::json!({"format": "sharegpt", "succeeded": true}),
                )
                .unwrap(),
            );
        });
        let open = through(&s);
        assert!(open.len() >= 4, "{open:?}");
        // One accepted by both judges, one by the fallback, one whose candidate the judge
        // rejected, one the relabeler found no replay for.
        s.entries[open[0]].result = Some(Box::new(result(
            accepted(0.9, Some(0.8)),
            vec![attempt(0.9, Some((true, 0.8)))],
        )));
        s.entries[open[1]].result = Some(Box::new(result(
            accepted(0.6, None),
            vec![attempt(0.6, None)],
        )));
        s.entries[open[2]].result = Some(Box::new(result(
            Outcome::Rejected {
                stage: Stage::Relabeling,
                reason: "judge".into(),
            },
            vec![attempt(0.95, Some((false, 0.2)))],
        )));
        let mut no_replay = attempt(0.1, None);
        no_replay.reply.as_mut().unwrap().is_valid_replay = false;
        s.entries[open[3]].result = Some(Box::new(result(
            Outcome::Rejected {
                stage: Stage::Relabeling,
                reason: "none".into(),
            },
            vec![no_replay],
        )));
        let f = funnel(&s);
        let count = |step| f.iter().find(|(s, _)| *s == step).unwrap().1;
        assert_eq!(count(Step::Loaded), s.entries.len());
        assert_eq!(count(Step::PassedGates), open.len());
        assert_eq!(count(Step::Relabeled), 3);
        assert_eq!(count(Step::JudgedValid), 2);
        assert_eq!(count(Step::Accepted), 2);
        assert!(f.windows(2).all(|w| w[0].1 >= w[1].1), "{f:?}");
        let successes = s.entries.iter().filter(|e| e.succeeded()).count();
        assert_eq!(successes, 1);
        assert_eq!(count(Step::Failures), count(Step::Loaded) - 1);
        // The filter of each step shows as many rows as the step counts.
        for (step, n) in &f {
            let filter = crate::session::Filter {
                pick: Some(Pick::Step(*step)),
                ..Default::default()
            };
            assert_eq!(s.matching(&filter).len(), *n, "{step:?}");
        }

        // c: the accepted candidate's, else the best attempt's; c2 likewise.
        let c = Histogram::new(&s, Measure::Relabel, 10);
        assert_eq!(c.counts[9], 2); // 0.9 and 0.95
        assert_eq!(c.counts[6], 1); // 0.6
        assert_eq!(c.counts[1], 1); // 0.1
        assert_eq!(c.total(), 4);
        let c2 = Histogram::new(&s, Measure::Judge, 10);
        assert_eq!((c2.counts[8], c2.counts[2], c2.total()), (1, 1, 2));
        assert_eq!(c2.missing, count(Step::Failures) - 2);
        // A bin's filter shows the bin's rows.
        for (i, n) in c.counts.iter().enumerate() {
            let filter = crate::session::Filter {
                pick: Some(Pick::Band(c.band(i))),
                ..Default::default()
            };
            assert_eq!(s.matching(&filter).len(), *n, "bin {i}");
        }
        // Accept rates over what was decided.
        let rates = accept_rates(&s);
        assert_eq!(rates.iter().map(|r| r.decided).sum::<usize>(), 4);
        assert_eq!(rates.iter().map(|r| r.accepted).sum::<usize>(), 2);
        // Failure types by severity count every failure once.
        let by_type = types_by_severity(&s);
        let total: usize = by_type.iter().map(|(_, b)| b.iter().sum::<usize>()).sum();
        assert_eq!(total, count(Step::Failures));
    }

    #[test]
    fn the_last_step_leaves_out_what_review_rejected() {
        let mut s = crate::review::tests::reviewed_session();
        let count = |s: &Session, step| funnel(s).iter().find(|(x, _)| *x == step).unwrap().1;
        let shown = |s: &Session, step| {
            s.matching(&crate::session::Filter {
                pick: Some(Pick::Step(step)),
                ..Default::default()
            })
        };
        assert_eq!(count(&s, Step::Accepted), 3);
        assert_eq!(
            count(&s, Step::KeptByReview),
            3,
            "unreviewed samples are kept"
        );
        assert!(s.decide(0, Some(Decision::Accepted)));
        let edit = Decision::edited("Compare two hats", "Find a hat").unwrap();
        assert!(s.decide(2, Some(edit)));
        assert_eq!(
            count(&s, Step::KeptByReview),
            3,
            "accepted and edited are kept"
        );
        assert!(s.decide(1, Some(Decision::rejected("vague"))));
        assert_eq!(count(&s, Step::Accepted), 3);
        assert_eq!(count(&s, Step::KeptByReview), 2);
        assert_eq!(shown(&s, Step::KeptByReview), vec![0, 2]);
        let f = funnel(&s);
        assert_eq!(f.last().map(|(step, _)| *step), Some(Step::KeptByReview));
        assert!(f.windows(2).all(|w| w[0].1 >= w[1].1), "{f:?}");
        for (step, n) in &f {
            assert_eq!(shown(&s, *step).len(), *n, "{step:?}");
        }
        // Undo brings the sample back; a decision on a trajectory no run accepted any more
        // (Reset results) does not count.
        assert!(s.review.undo().is_some());
        assert_eq!(count(&s, Step::KeptByReview), 3);
        assert!(s.decide(1, Some(Decision::rejected(""))));
        for e in &mut s.entries {
            e.result = None;
        }
        assert_eq!(count(&s, Step::Accepted), 0);
        assert_eq!(count(&s, Step::KeptByReview), 0);
    }

    #[test]
    fn confidences_that_are_not_numbers_count_as_missing() {
        let mut s = example();
        let open = through(&s);
        for &i in &open {
            s.entries[i].result = Some(Box::new(result(
                Outcome::Rejected {
                    stage: Stage::Relabeling,
                    reason: String::new(),
                },
                vec![attempt(f64::NAN, Some((false, f64::NAN)))],
            )));
        }
        for m in [Measure::Relabel, Measure::Judge] {
            let h = Histogram::new(&s, m, 10);
            assert_eq!(h.total(), 0);
            assert_eq!(h.missing, Histogram::new(&example(), m, 10).missing);
        }
        // One bin holds every value.
        s.entries[open[0]].result = Some(Box::new(result(
            accepted(1.0, Some(0.0)),
            vec![attempt(1.0, Some((true, 0.0)))],
        )));
        let one = Histogram::new(&s, Measure::Judge, 1);
        assert_eq!(one.counts, vec![1]);
        let zero = Histogram::new(&s, Measure::Relabel, 0);
        assert_eq!(zero.counts, vec![1]);
        // The skipped and the run-but-failed are not decided.
        s.entries[open[1]].result = Some(Box::new(TrajectoryResult::bare(Outcome::Failed {
            stage: Stage::Extraction,
            reason: "down".into(),
        })));
        let rates = accept_rates(&s);
        assert_eq!(
            rates.iter().map(|r| r.decided).sum::<usize>(),
            open.len() - 1
        );
        assert!(rates.iter().all(|r| r.rate().is_some()));
    }
}
