//! A run's progress as the page shows it, and the small formatting the page needs (counts,
//! durations, time stamps). Times come in as milliseconds, so everything here is pure.

use crate::llm::{CallKind, StageUsage};
use crate::pipeline::{Outcome, Totals};
use crate::session::Session;

/// Where a run stands.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Trajectories this run has decided, of `total`.
    pub done: usize,
    pub total: usize,
    /// Counts over the whole session (earlier runs included).
    pub accepted: usize,
    pub rejected: usize,
    pub skipped: usize,
    pub failed: usize,
    pub cancelled: usize,
    pub calls: u32,
    /// Tries the client retried after the endpoint failed them.
    pub retries: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Calls and tokens per stage: detect, extract, relabel, judge.
    pub stages: Vec<(CallKind, StageUsage)>,
    pub elapsed_ms: f64,
    /// Time left at the pace so far; `None` before the first result or once done.
    pub eta_ms: Option<f64>,
}

/// Adds `b` to `a`.
pub fn merge_totals(a: &mut Totals, b: &Totals) {
    a.done += b.done;
    a.accepted += b.accepted;
    a.accepted_two_judges += b.accepted_two_judges;
    a.accepted_single_judge += b.accepted_single_judge;
    a.skipped += b.skipped;
    a.rejected += b.rejected;
    a.failed += b.failed;
    a.cancelled += b.cancelled;
    a.usage.merge(&b.usage);
}

/// Totals over the results a new run keeps: everything but what [`Session::to_run`] would run
/// again (failed and cancelled trajectories).
pub fn settled_totals(session: &Session) -> Totals {
    let mut totals = Totals::default();
    for r in session.entries.iter().filter_map(|e| e.result.as_ref()) {
        if !matches!(
            r.outcome,
            Outcome::Failed { .. } | Outcome::Cancelled { .. }
        ) {
            totals.add(r);
        }
    }
    totals
}

/// Totals over the results of every entry but those at `indexes` (which a run is about to
/// replace).
pub fn totals_except(session: &Session, indexes: &[usize]) -> Totals {
    let skip: std::collections::HashSet<usize> = indexes.iter().copied().collect();
    let mut totals = Totals::default();
    for (i, e) in session.entries.iter().enumerate() {
        if let (false, Some(r)) = (skip.contains(&i), e.result.as_ref()) {
            totals.add(r);
        }
    }
    totals
}

/// What "Reset results" deletes, for the question it asks first: the results and the log of
/// paid answers (`logged` exchanges), which a later run would have to pay for again.
pub fn reset_summary(session: &Session, logged: usize) -> String {
    let results = session
        .entries
        .iter()
        .filter(|e| e.result.is_some())
        .count();
    let accepted = session
        .entries
        .iter()
        .filter(|e| e.result.as_ref().is_some_and(|r| r.outcome.is_accepted()))
        .count();
    let answers = match logged {
        0 => "the log of answers is empty".to_string(),
        1 => "the log of 1 answer the endpoint gave (a new run sends that request again, and \
              pays for it)"
            .to_string(),
        n => format!(
            "the log of {} answers the endpoint gave (a new run sends those requests again, \
             and pays for them)",
            format_count(n)
        ),
    };
    format!(
        "Reset results deletes the results of {} {} ({} accepted, with their samples and every \
         call's record) and {answers}. The loaded trajectories and the settings stay.",
        format_count(results),
        if results == 1 {
            "trajectory"
        } else {
            "trajectories"
        },
        format_count(accepted),
    )
}

impl Progress {
    /// The progress of a run of `total` trajectories that has decided `done` of them, started
    /// at `started_ms` and observed at `now_ms`; `totals` counts the whole session.
    pub fn new(done: usize, total: usize, totals: &Totals, started_ms: f64, now_ms: f64) -> Self {
        let elapsed_ms = (now_ms - started_ms).max(0.0);
        // No estimate before any time has passed (a restored session's view, not a run's).
        let eta_ms = (done > 0 && done < total && elapsed_ms > 0.0)
            .then(|| elapsed_ms / done as f64 * (total - done) as f64);
        let all = totals.usage.total();
        Progress {
            done,
            total,
            accepted: totals.accepted,
            rejected: totals.rejected,
            skipped: totals.skipped,
            failed: totals.failed,
            cancelled: totals.cancelled,
            calls: all.calls,
            retries: all.retries,
            prompt_tokens: all.prompt_tokens,
            completion_tokens: all.completion_tokens,
            stages: CallKind::ALL
                .iter()
                .map(|k| (*k, *totals.usage.stage(*k)))
                .collect(),
            elapsed_ms,
            eta_ms,
        }
    }

    /// Done as a fraction of the total, 0 to 1 (1 for an empty run).
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            (self.done as f64 / self.total as f64).min(1.0)
        }
    }

    /// "D / T".
    pub fn done_text(&self) -> String {
        format!("{} / {}", format_count(self.done), format_count(self.total))
    }

    /// "P prompt + C completion".
    pub fn tokens_text(&self) -> String {
        format!(
            "{} prompt + {} completion",
            format_count(self.prompt_tokens as usize),
            format_count(self.completion_tokens as usize)
        )
    }
}

/// A count with thousands separators: `12,345`.
pub fn format_count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count and its noun: `1 file`, `2 files`, `12,345 files`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", format_count(n), if n == 1 { one } else { many })
}

/// A duration for people: `0:07`, `12:30`, `1:02:03` (whole seconds, rounded down).
pub fn format_duration(ms: f64) -> String {
    let secs = if ms.is_finite() && ms > 0.0 {
        (ms / 1000.0) as u64
    } else {
        0
    };
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// A confidence or weight with two decimals.
pub fn format_unit(v: f64) -> String {
    format!("{v:.2}")
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn parts(epoch_ms: f64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = (epoch_ms / 1000.0).floor() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, mo, d) = civil(days);
    let rest = rest as u32;
    (y, mo, d, rest / 3600, rest / 60 % 60, rest % 60)
}

/// A UTC stamp for file names: `20261122-153005`.
pub fn file_stamp(epoch_ms: f64) -> String {
    let (y, mo, d, h, mi, s) = parts(epoch_ms);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

/// An ISO 8601 UTC time: `2026-11-22T15:30:05Z`.
pub fn iso_time(epoch_ms: f64) -> String {
    let (y, mo, d, h, mi, s) = parts(epoch_ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Usage;

    fn totals() -> Totals {
        let mut t = Totals {
            done: 3,
            accepted: 1,
            rejected: 1,
            skipped: 1,
            ..Totals::default()
        };
        t.usage.relabel = StageUsage {
            calls: 2,
            prompt_tokens: 1000,
            completion_tokens: 200,
            ..StageUsage::default()
        };
        t.usage.judge = StageUsage {
            calls: 1,
            prompt_tokens: 500,
            completion_tokens: 20,
            ..StageUsage::default()
        };
        t
    }

    #[test]
    fn progress_counts_and_eta() {
        let p = Progress::new(2, 10, &totals(), 1_000.0, 5_000.0);
        assert_eq!(p.done_text(), "2 / 10");
        assert_eq!((p.accepted, p.rejected, p.skipped, p.failed), (1, 1, 1, 0));
        assert_eq!(p.calls, 3);
        assert_eq!((p.prompt_tokens, p.completion_tokens), (1500, 220));
        assert_eq!(p.tokens_text(), "1,500 prompt + 220 completion");
        assert_eq!(p.elapsed_ms, 4_000.0);
        // 2 s per trajectory, 8 left.
        assert_eq!(p.eta_ms, Some(16_000.0));
        assert_eq!(p.fraction(), 0.2);
        let stages: Vec<_> = p
            .stages
            .iter()
            .map(|(k, u)| (k.as_str(), u.calls))
            .collect();
        assert_eq!(
            stages,
            [("detect", 0), ("extract", 0), ("relabel", 2), ("judge", 1)]
        );
    }

    #[test]
    fn counts_take_their_noun_in_the_singular_only_for_one() {
        assert_eq!(plural(1, "success", "successes"), "1 success");
        assert_eq!(plural(0, "file", "files"), "0 files");
        assert_eq!(
            plural(12_345, "trajectory", "trajectories"),
            "12,345 trajectories"
        );
    }

    #[test]
    fn no_eta_before_the_first_result_or_after_the_last() {
        let t = Totals::default();
        assert_eq!(Progress::new(0, 5, &t, 0.0, 100.0).eta_ms, None);
        assert_eq!(Progress::new(5, 5, &t, 0.0, 100.0).eta_ms, None);
        // A view with no time behind it (a restored session's) gives no estimate.
        assert_eq!(Progress::new(2, 5, &t, 0.0, 0.0).eta_ms, None);
        assert_eq!(Progress::new(0, 0, &t, 0.0, 0.0).fraction(), 1.0);
        // A clock going backwards never gives a negative time.
        assert_eq!(Progress::new(0, 5, &t, 100.0, 0.0).elapsed_ms, 0.0);
    }

    #[test]
    fn totals_merge() {
        let mut a = totals();
        let mut b = totals();
        b.failed = 2;
        b.usage.detect.add(&crate::llm::CallRecord::counted(
            CallKind::Detect,
            Usage::new(7, 3),
            2,
        ));
        merge_totals(&mut a, &b);
        assert_eq!((a.done, a.accepted, a.failed), (6, 2, 2));
        assert_eq!(a.retries(), 2);
        assert_eq!(Progress::new(6, 6, &a, 0.0, 1.0).retries, 2);
        assert_eq!(a.usage.relabel.calls, 4);
        assert_eq!(a.usage.detect.prompt_tokens, 7);
    }

    #[test]
    fn settled_totals_leave_out_what_runs_again() {
        use crate::pipeline::{Outcome, Stage, TrajectoryResult};
        let report = crate::reader::read_all(
            "f.jsonl",
            concat!(
                r#"{"original_prompt":"a","steps":[{"thought":"","action_name":"x","observation":"o"}],"failure_reason":"r"}"#,
                "\n",
                r#"{"original_prompt":"b","steps":[{"thought":"","action_name":"x","observation":"o"}],"failure_reason":"r"}"#,
                "\n"
            )
            .as_bytes(),
        );
        let mut s = Session::new(Default::default(), 0.3);
        s.add_report(report);
        let result = TrajectoryResult::bare;
        s.set_result(
            0,
            result(Outcome::Skipped {
                stage: Stage::Gate,
                reason: "r".into(),
            }),
        );
        s.set_result(
            1,
            result(Outcome::Cancelled {
                stage: Stage::Extraction,
            }),
        );
        let t = settled_totals(&s);
        assert_eq!((t.done, t.skipped, t.cancelled), (1, 1, 0));
        assert_eq!(s.to_run(), vec![1]);
        let t = totals_except(&s, &[0]);
        assert_eq!((t.done, t.skipped, t.cancelled), (1, 0, 1));
        assert_eq!(totals_except(&s, &[]).done, 2);
        s.clear_result(1);
        assert!(s.entries[1].result.is_none());
        assert_eq!(s.to_run(), vec![1]);
    }

    #[test]
    fn reset_says_what_it_deletes() {
        let mut s = Session::new(Default::default(), 0.3);
        s.add_report(crate::reader::read_all(
            "f.jsonl",
            r#"{"original_prompt":"a","steps":[{"thought":"","action_name":"x","observation":"o"}],"failure_reason":"r"}"#.as_bytes(),
        ));
        s.set_result(
            0,
            crate::pipeline::TrajectoryResult::bare(Outcome::Skipped {
                stage: crate::pipeline::Stage::Gate,
                reason: "r".into(),
            }),
        );
        let text = reset_summary(&s, 1234);
        assert!(
            text.contains("results of 1 trajectory (0 accepted"),
            "{text}"
        );
        assert!(text.contains("log of 1,234 answers"), "{text}");
        assert!(text.contains("pays for them"), "{text}");
        assert!(reset_summary(&s, 0).contains("log of answers is empty"));
    }

    #[test]
    fn counts_get_separators() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1000), "1,000");
        assert_eq!(format_count(1234567), "1,234,567");
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(0.0), "0:00");
        assert_eq!(format_duration(7_900.0), "0:07");
        assert_eq!(format_duration(750_000.0), "12:30");
        assert_eq!(format_duration(3_723_000.0), "1:02:03");
        assert_eq!(format_duration(f64::NAN), "0:00");
        assert_eq!(format_duration(-5.0), "0:00");
    }

    #[test]
    fn stamps_are_utc() {
        assert_eq!(file_stamp(0.0), "19700101-000000");
        assert_eq!(iso_time(0.0), "1970-01-01T00:00:00Z");
        // 2026-11-22 15:30:05 UTC.
        let t = 1_795_361_405_000.0;
        assert_eq!(file_stamp(t), "20261122-153005");
        assert_eq!(iso_time(t + 999.0), "2026-11-22T15:30:05Z");
        // A leap day.
        assert_eq!(iso_time(951_782_400_000.0), "2000-02-29T00:00:00Z");
    }
}
