//! Stage 2, rule-based mode: what each step's observation shows, exactly as the reference
//! behaves. Lengths are in code points, trimming is Python's `str.strip()`.

use crate::json::Decimal;
use crate::model::{ExtractedOutcome, Trajectory};
use crate::pytext;
use crate::stages::detect::rules::{reference_compiled, RuleScan};

/// A trimmed observation shorter than this (in code points) is skipped.
pub const MIN_OBSERVATION_CHARS: usize = 15;

/// An observation whose lower-cased form contains one of these is an error and is skipped.
pub const ERROR_MARKERS: [&str; 5] = [
    "traceback",
    "error:",
    "exception:",
    "errno",
    "status code: 5",
];

/// Observations longer than this (in code points) are shortened in the achievement.
pub const SUMMARY_MAX_CHARS: usize = 200;

/// Appended to a shortened summary.
pub const ELLIPSIS: &str = "...";

/// At most this many numbers are quoted per key observation.
pub const MAX_NUMBERS: usize = 5;

/// The achievement listed when no step produced one.
pub const NO_ACHIEVEMENT: &str = "Agent attempted actions but produced no substantive results";

/// The limitations when the trajectory has no failure reason.
pub const DEFAULT_LIMITATIONS: &str = "Original goal was not met";

/// The observation as quoted in an achievement: whole when it has at most 200 code points;
/// otherwise its first 200 code points, cut back to before the last space among them when
/// there is one, followed by `...`.
pub fn summarize(obs: &str) -> String {
    let mut out = String::new();
    push_summary(obs, &mut out);
    out
}

/// Appends [`summarize`] of `obs` to `out`.
fn push_summary(obs: &str, out: &mut String) {
    // More bytes than code points always: a short one is whole without counting.
    if obs.len() <= SUMMARY_MAX_CHARS || pytext::char_len(obs) <= SUMMARY_MAX_CHARS {
        out.push_str(obs);
        return;
    }
    let head = pytext::prefix(obs, SUMMARY_MAX_CHARS);
    let head = match head.rfind(' ') {
        Some(i) => &head[..i],
        None => head,
    };
    out.push_str(head);
    out.push_str(ELLIPSIS);
}

/// Rule-based Stage 2.
pub fn extract(t: &Trajectory) -> ExtractedOutcome {
    let mut scan = RuleScan::new();
    scan.run(t, &reference_compiled());
    extract_scanned(t, &scan)
}

/// Rule-based Stage 2 from a [`RuleScan`] of `t` (with any lexicon: the error markers are
/// always part of the scan).
///
/// A step counts when its trimmed observation has at least 15 code points and, lower-cased,
/// holds none of the [`ERROR_MARKERS`].
pub fn extract_scanned(t: &Trajectory, scan: &RuleScan) -> ExtractedOutcome {
    let mut actual_achievements = Vec::new();
    let mut key_observations = Vec::new();
    for (i, step) in t.steps.iter().enumerate() {
        if scan.observation_chars(i) < MIN_OBSERVATION_CHARS || scan.has_error_marker(i) {
            continue;
        }
        let n = Decimal::new(i as u64 + 1);
        let obs = pytext::strip(&step.observation);
        // "Step {n} ({action}): {summary}", put together at its final size.
        let mut achievement = String::with_capacity(
            "Step  (): ".len()
                + n.as_str().len()
                + step.action_name.len()
                + obs.len().min(4 * SUMMARY_MAX_CHARS)
                + ELLIPSIS.len(),
        );
        for piece in ["Step ", n.as_str(), " (", &step.action_name, "): "] {
            achievement.push_str(piece);
        }
        push_summary(obs, &mut achievement);
        actual_achievements.push(achievement);
        let mut numbers = pytext::numbers(obs).take(MAX_NUMBERS).peekable();
        if numbers.peek().is_some() {
            let mut line = String::with_capacity(64);
            line.push_str("Numeric data found in step ");
            line.push_str(n.as_str());
            line.push_str(": ");
            for (j, number) in numbers.enumerate() {
                if j > 0 {
                    line.push_str(", ");
                }
                line.push_str(number);
            }
            key_observations.push(line);
        }
    }
    if actual_achievements.is_empty() {
        actual_achievements.push(NO_ACHIEVEMENT.to_owned());
    }
    let limitations = if t.failure_reason.is_empty() {
        DEFAULT_LIMITATIONS.to_owned()
    } else {
        t.failure_reason.clone()
    };
    ExtractedOutcome {
        actual_achievements,
        key_observations,
        limitations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Step;

    fn traj(reason: &str, observations: &[&str]) -> Trajectory {
        Trajectory {
            trajectory_id: "t".to_owned(),
            original_prompt: "p".to_owned(),
            steps: observations
                .iter()
                .enumerate()
                .map(|(i, o)| Step {
                    thought: String::new(),
                    action_name: format!("a{}", i + 1),
                    action_input: Default::default(),
                    observation: (*o).to_owned(),
                    call: None,
                    kind: Default::default(),
                })
                .collect(),
            final_answer: String::new(),
            failure_reason: reason.to_owned(),
            metadata: Default::default(),
            origin: None,
        }
    }

    #[test]
    fn empty_observations_give_the_no_achievement_sentence() {
        let o = extract(&traj("", &["", "   ", "\u{1c}\u{85}"]));
        assert_eq!(o.actual_achievements, vec![NO_ACHIEVEMENT]);
        assert!(o.key_observations.is_empty());
        assert_eq!(o.limitations, DEFAULT_LIMITATIONS);
    }

    #[test]
    fn error_observations_are_skipped() {
        let o = extract(&traj(
            "it broke",
            &[
                "Traceback (most recent call last): 12",
                "ERROR: disk full on /dev/sda1",
                "java.lang.Exception: boom 1",
                "OSError: [Errno 2] no such file",
                "Request failed with status code: 502 Bad Gateway",
            ],
        ));
        assert_eq!(o.actual_achievements, vec![NO_ACHIEVEMENT]);
        assert!(o.key_observations.is_empty());
        assert_eq!(o.limitations, "it broke");
        // "status code: 4" is not an error marker.
        let o = extract(&traj("", &["Request failed with status code: 404"]));
        assert_eq!(
            o.actual_achievements,
            vec!["Step 1 (a1): Request failed with status code: 404"]
        );
        assert_eq!(
            o.key_observations,
            vec!["Numeric data found in step 1: 404"]
        );
    }

    #[test]
    fn fifteen_code_points_is_enough() {
        let fourteen = "ü".repeat(14);
        let fifteen = "ü".repeat(15);
        let o = extract(&traj("", &[&fourteen, &format!("  {fifteen}\n")]));
        assert_eq!(
            o.actual_achievements,
            vec![format!("Step 2 (a2): {fifteen}")]
        );
    }

    #[test]
    fn summaries_are_cut_at_two_hundred_code_points() {
        let exact = "é".repeat(200);
        assert_eq!(summarize(&exact), exact);
        // 201 code points, no space: the first 200 then "...".
        let long = "é".repeat(201);
        assert_eq!(summarize(&long), format!("{}...", "é".repeat(200)));
        // A space inside the first 200: cut before the last one.
        let spaced = format!("{} {} tail", "a".repeat(100), "b".repeat(120));
        assert_eq!(summarize(&spaced), format!("{}...", "a".repeat(100)));
        // A space just after the first 200 does not count.
        let late = format!("{} {}", "c".repeat(200), "d");
        assert_eq!(summarize(&late), format!("{}...", "c".repeat(200)));
        // Only an ASCII space cuts, not other whitespace.
        let nbsp = format!("{}\u{a0}{}", "x".repeat(50), "y".repeat(160));
        assert_eq!(
            summarize(&nbsp),
            format!("{}...", pytext::prefix(&nbsp, 200))
        );
    }

    #[test]
    fn numbers_quote_the_first_five_matches() {
        let o = extract(&traj(
            "",
            &["Prices: $1,234.56, 7, 8.5, and 9 then 10 and 11"],
        ));
        assert_eq!(
            o.key_observations,
            vec!["Numeric data found in step 1: $1,234.56, ,, 7,, 8.5, ,"]
        );
    }

    #[test]
    fn non_ascii_digits_count_as_numbers() {
        let o = extract(&traj(
            "",
            &["السعر ١٢٣ ريال و ٤٥", "no digits in here at all"],
        ));
        assert_eq!(
            o.key_observations,
            vec!["Numeric data found in step 1: ١٢٣, ٤٥"]
        );
        assert_eq!(o.actual_achievements.len(), 2);
    }
}
