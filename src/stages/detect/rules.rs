//! Stage 1, rule-based mode: keyword heuristics, exactly as the reference behaves.
//!
//! The text searched is the original prompt, the failure reason, the final answer and each
//! step's thought and observation, joined with single spaces and lower-cased (Python's
//! `str.lower()`). Each keyword of the lexicon counts once when it occurs as a substring. The
//! type with the most hits wins; a tie keeps the type listed first. With no hit at all the type
//! is `wrong_result` when there is a failure reason, and none otherwise.

use super::patterns::{Cursor, Patterns};
use crate::model::{FailureAnalysis, FailureType, Trajectory};
use crate::pytext;
use crate::stages::extract::rules::ERROR_MARKERS;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::rc::Rc;

/// The explanation given when the trajectory has no failure reason.
pub const DEFAULT_EXPLANATION: &str = "Detected via rule-based heuristics";

/// Severity before any keyword hit.
pub const BASE_SEVERITY: f64 = 0.3;

/// Severity added per keyword hit of the winning type.
pub const SEVERITY_PER_HIT: f64 = 0.1;

/// A step's trimmed observation must be longer than this (in code points) for the trajectory
/// to count as recoverable.
pub const RECOVERABLE_MIN_OBSERVATION: usize = 20;

/// The keywords that point at one failure type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LexiconEntry {
    pub failure_type: FailureType,
    pub keywords: Vec<String>,
}

/// The keyword lists of rule-based detection, in priority order (ties go to the earlier entry).
///
/// Keywords are matched against lower-cased text, so they are lower-cased too before matching;
/// an empty keyword never hits, and a keyword listed twice for a type counts once. The
/// reference lexicon ([`Lexicon::default`]) has none of these cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lexicon {
    pub entries: Vec<LexiconEntry>,
    /// The severity formula's inputs (the reference's unless edited).
    #[serde(default)]
    pub severity: SeverityFormula,
}

/// `severity = min(cap, base + per_hit × hits)`, hits being the winning type's keyword hits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeverityFormula {
    pub base: f64,
    pub per_hit: f64,
    pub cap: f64,
}

impl Default for SeverityFormula {
    /// The reference's: 0.3 base, 0.1 per hit, capped at 1.
    fn default() -> Self {
        SeverityFormula {
            base: BASE_SEVERITY,
            per_hit: SEVERITY_PER_HIT,
            cap: 1.0,
        }
    }
}

impl SeverityFormula {
    /// The severity of `hits` keyword hits, in the reference's floating-point order.
    pub fn of(&self, hits: usize) -> f64 {
        (self.base + self.per_hit * hits as f64).min(self.cap)
    }
}

impl Lexicon {
    /// The reference implementation's lexicon, in its order.
    pub fn reference() -> Lexicon {
        let entry = |failure_type, keywords: &[&str]| LexiconEntry {
            failure_type,
            keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
        };
        Lexicon {
            severity: SeverityFormula::default(),
            entries: vec![
                entry(
                    FailureType::ToolError,
                    &[
                        "error:",
                        "exception:",
                        "traceback",
                        "timeout",
                        "connection refused",
                        " 404 ",
                        "404 not",
                        " 500 ",
                        "500 error",
                        " 503 ",
                        "503 service",
                    ],
                ),
                entry(
                    FailureType::Incomplete,
                    &[
                        "i could not",
                        "unable to",
                        "i don't know",
                        "no results",
                        "failed to",
                    ],
                ),
                entry(
                    FailureType::Hallucination,
                    &["i believe", "i think", "probably", "it might be"],
                ),
                entry(
                    FailureType::ConstraintViolation,
                    &[
                        "exceeds",
                        "over budget",
                        "does not match",
                        "outside the range",
                    ],
                ),
            ],
        }
    }
}

impl Default for Lexicon {
    fn default() -> Self {
        Lexicon::reference()
    }
}

/// The keywords of one lexicon entry that occur in a trajectory's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeHits {
    pub failure_type: FailureType,
    /// The keywords that hit, in lexicon order, each once.
    pub keywords: Vec<String>,
}

/// The text rule-based detection searches: original prompt, failure reason, final answer, then
/// each step's thought and observation, joined with single spaces and lower-cased.
///
/// [`RuleScan`] reads the same text without building it: lower-casing the parts one by one and
/// joining them gives this text, as a space ends any final-sigma context.
pub fn detection_text(t: &Trajectory) -> String {
    let mut text = String::new();
    for (i, part) in detection_parts(t).enumerate() {
        if i > 0 {
            text.push(' ');
        }
        pytext::lower_into(part.text(), &mut text);
    }
    text
}

/// A part of the detection text.
#[derive(Clone, Copy)]
enum Part<'a> {
    Field(&'a str),
    Thought(&'a str),
    Observation(usize, &'a str),
}

impl<'a> Part<'a> {
    fn text(self) -> &'a str {
        match self {
            Part::Field(s) | Part::Thought(s) | Part::Observation(_, s) => s,
        }
    }
}

fn detection_parts(t: &Trajectory) -> impl Iterator<Item = Part<'_>> {
    [&t.original_prompt, &t.failure_reason, &t.final_answer]
        .into_iter()
        .map(|s| Part::Field(s))
        .chain(t.steps.iter().enumerate().flat_map(|(i, step)| {
            [
                Part::Thought(&step.thought),
                Part::Observation(i, &step.observation),
            ]
        }))
}

/// A lexicon compiled for matching: its keywords lower-cased and deduplicated per entry, and
/// one automaton that finds them all, with Stage 2's error markers, in a single pass over a
/// trajectory's lower-cased text. Compile once per lexicon, use for every trajectory.
#[derive(Debug, Clone)]
pub struct CompiledLexicon {
    /// Per lexicon entry, in order: its type and its keywords' pattern ids, in order.
    entries: Vec<(FailureType, Vec<usize>)>,
    /// Pattern id → keyword (lower-cased). The error markers follow the keywords.
    keywords: Vec<String>,
    patterns: Patterns,
    /// The severity formula's inputs.
    severity: SeverityFormula,
}

impl Lexicon {
    /// Compiles the lexicon for [`RuleScan`].
    pub fn compile(&self) -> CompiledLexicon {
        let mut keywords: Vec<String> = Vec::new();
        let entries = self
            .entries
            .iter()
            .map(|entry| {
                let mut ids: Vec<usize> = Vec::new();
                for keyword in &entry.keywords {
                    let keyword = pytext::lower(keyword);
                    if keyword.is_empty() || ids.iter().any(|&id| keywords[id] == keyword) {
                        continue;
                    }
                    let id = match keywords.iter().position(|k| *k == keyword) {
                        Some(id) => id,
                        None => {
                            keywords.push(keyword);
                            keywords.len() - 1
                        }
                    };
                    ids.push(id);
                }
                (entry.failure_type, ids)
            })
            .collect();
        let mut all: Vec<&str> = keywords.iter().map(String::as_str).collect();
        all.extend(ERROR_MARKERS);
        CompiledLexicon {
            patterns: Patterns::ignoring_ascii_case(&all),
            entries,
            keywords,
            severity: self.severity,
        }
    }
}

thread_local! {
    static REFERENCE: Rc<CompiledLexicon> = Rc::new(Lexicon::reference().compile());
    /// The lexicon compiled last, for the calls that pass a [`Lexicon`].
    static LAST: RefCell<Option<(Lexicon, Rc<CompiledLexicon>)>> = const { RefCell::new(None) };
}

/// The reference lexicon, compiled once per thread.
pub fn reference_compiled() -> Rc<CompiledLexicon> {
    REFERENCE.with(Rc::clone)
}

/// `lexicon` compiled; compiled again only when it differs from the last one asked for, so a
/// run over many trajectories with one lexicon compiles it once.
pub fn compiled(lexicon: &Lexicon) -> Rc<CompiledLexicon> {
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((seen, compiled)) if seen == lexicon => Rc::clone(compiled),
            _ => {
                let compiled = Rc::new(lexicon.compile());
                *last = Some((lexicon.clone(), Rc::clone(&compiled)));
                compiled
            }
        }
    })
}

/// What the rule-based Stages 1 and 2 need of one trajectory's text, found in one pass over
/// its lower-cased text: which keywords occur, which observations hold an error marker, and
/// each observation's length once trimmed. Reusable: [`RuleScan::run`] keeps its buffers.
#[derive(Debug, Clone, Default)]
pub struct RuleScan {
    /// Per pattern id: whether it occurs.
    found: Vec<bool>,
    /// Per step: whether its observation (lower-cased) holds an error marker.
    error_marker: Vec<bool>,
    /// Per step: the code points of its observation trimmed as Python's `strip()` trims.
    observation_chars: Vec<usize>,
}

impl RuleScan {
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans `t` with `lexicon`; the results replace those of the previous run.
    pub fn run(&mut self, t: &Trajectory, lexicon: &CompiledLexicon) {
        let patterns = &lexicon.patterns;
        let markers_from = lexicon.keywords.len();
        self.found.clear();
        self.found.resize(patterns.len(), false);
        self.error_marker.clear();
        self.error_marker.resize(t.steps.len(), false);
        self.observation_chars.clear();
        let mut cursor = Cursor::default();
        for (i, part) in detection_parts(t).enumerate() {
            if i > 0 {
                let found = &mut self.found;
                patterns.feed(&mut cursor, b" ", |id, _| found[id] = true);
            }
            let start = cursor.offset;
            let (found, error_marker) = (&mut self.found, &mut self.error_marker);
            // The automaton reads ASCII letters in either case: only the other cased
            // characters are lowered.
            pytext::lower_but_ascii(part.text(), &mut |piece| {
                patterns.feed(&mut cursor, piece.as_bytes(), |id, end| {
                    found[id] = true;
                    if let (true, Part::Observation(step, _)) = (id >= markers_from, part) {
                        // A marker counts only inside the observation. The markers neither
                        // start nor end with whitespace, so one in the observation is also in
                        // it trimmed.
                        if end - patterns.pattern_len(id) >= start {
                            error_marker[step] = true;
                        }
                    }
                })
            });
            if let Part::Observation(_, observation) = part {
                self.observation_chars
                    .push(pytext::char_len(pytext::strip(observation)));
            }
        }
    }

    /// Whether step `step`'s observation, lower-cased, holds one of [`ERROR_MARKERS`].
    pub fn has_error_marker(&self, step: usize) -> bool {
        self.error_marker[step]
    }

    /// The length in code points of step `step`'s observation, trimmed.
    pub fn observation_chars(&self, step: usize) -> usize {
        self.observation_chars[step]
    }

    /// Per lexicon entry, the number of its keywords that occur.
    fn counts<'a>(
        &'a self,
        lexicon: &'a CompiledLexicon,
    ) -> impl Iterator<Item = (FailureType, usize)> + 'a {
        lexicon.entries.iter().map(|(failure_type, ids)| {
            let hits = ids.iter().filter(|&&id| self.found[id]).count();
            (*failure_type, hits)
        })
    }

    /// For each lexicon entry, in lexicon order, the keywords found (see [`keyword_hits`]).
    pub fn hits(&self, lexicon: &CompiledLexicon) -> Vec<TypeHits> {
        lexicon
            .entries
            .iter()
            .map(|(failure_type, ids)| TypeHits {
                failure_type: *failure_type,
                keywords: ids
                    .iter()
                    .filter(|&&id| self.found[id])
                    .map(|&id| lexicon.keywords[id].clone())
                    .collect(),
            })
            .collect()
    }
}

/// For each lexicon entry, in lexicon order, the keywords found in `t`'s detection text (an
/// entry with no hit is listed with an empty list). This is the "why" of [`detect_with`].
pub fn keyword_hits(t: &Trajectory, lexicon: &Lexicon) -> Vec<TypeHits> {
    let lexicon = compiled(lexicon);
    let mut scan = RuleScan::new();
    scan.run(t, &lexicon);
    scan.hits(&lexicon)
}

/// `min(1.0, 0.3 + 0.1 × hits)`, in that floating-point order (3 hits give
/// 0.6000000000000001, as in Python).
pub fn severity_for_hits(hits: usize) -> f64 {
    SeverityFormula::default().of(hits)
}

/// Rule-based Stage 1 with the reference lexicon.
pub fn detect(t: &Trajectory) -> FailureAnalysis {
    let lexicon = reference_compiled();
    let mut scan = RuleScan::new();
    scan.run(t, &lexicon);
    detect_scanned(t, &lexicon, &scan)
}

/// Rule-based Stage 1 with the given lexicon.
pub fn detect_with(t: &Trajectory, lexicon: &Lexicon) -> FailureAnalysis {
    let lexicon = compiled(lexicon);
    let mut scan = RuleScan::new();
    scan.run(t, &lexicon);
    detect_scanned(t, &lexicon, &scan)
}

/// Rule-based Stage 1 and its "why": the analysis and the keywords that hit per type.
pub fn detect_explained(t: &Trajectory, lexicon: &Lexicon) -> (FailureAnalysis, Vec<TypeHits>) {
    let lexicon = compiled(lexicon);
    let mut scan = RuleScan::new();
    scan.run(t, &lexicon);
    (detect_scanned(t, &lexicon, &scan), scan.hits(&lexicon))
}

/// Rule-based Stage 1 from a [`RuleScan`] of `t` with `lexicon`.
pub fn detect_scanned(
    t: &Trajectory,
    lexicon: &CompiledLexicon,
    scan: &RuleScan,
) -> FailureAnalysis {
    let mut winner: Option<FailureType> = None;
    let mut best = 0;
    for (failure_type, hits) in scan.counts(lexicon) {
        // Strictly more hits: a tie keeps the earlier type.
        if hits > best {
            best = hits;
            winner = Some(failure_type);
        }
    }
    if winner.is_none() && !t.failure_reason.is_empty() {
        winner = Some(FailureType::WrongResult);
    }
    let severity = lexicon.severity.of(best);
    let long_observation =
        (0..t.steps.len()).any(|i| scan.observation_chars(i) > RECOVERABLE_MIN_OBSERVATION);
    let recoverable = long_observation && winner != Some(FailureType::ToolError);
    let explanation = if t.failure_reason.is_empty() {
        DEFAULT_EXPLANATION.to_owned()
    } else {
        t.failure_reason.clone()
    };
    FailureAnalysis {
        is_failure: true,
        failure_type: winner,
        severity,
        weight: severity,
        recoverable,
        explanation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Step;

    fn step(thought: &str, observation: &str) -> Step {
        Step {
            thought: thought.to_owned(),
            action_name: "act".to_owned(),
            action_input: Default::default(),
            observation: observation.to_owned(),
            call: None,
            kind: Default::default(),
        }
    }

    fn traj(prompt: &str, reason: &str, answer: &str, steps: Vec<Step>) -> Trajectory {
        Trajectory {
            trajectory_id: "t".to_owned(),
            original_prompt: prompt.to_owned(),
            steps,
            final_answer: answer.to_owned(),
            failure_reason: reason.to_owned(),
            metadata: Default::default(),
            origin: None,
        }
    }

    #[test]
    fn no_hits_and_no_reason_has_no_type() {
        let a = detect(&traj("find a hotel", "", "", vec![step("", "")]));
        assert_eq!(a.failure_type, None);
        assert_eq!(a.severity, 0.3);
        assert_eq!(a.weight, 0.3);
        assert!(a.is_failure);
        assert!(!a.recoverable);
        assert_eq!(a.explanation, DEFAULT_EXPLANATION);
    }

    #[test]
    fn no_hits_with_reason_is_wrong_result() {
        let a = detect(&traj(
            "find a hotel",
            "picked the wrong one",
            "",
            vec![step("", "")],
        ));
        assert_eq!(a.failure_type, Some(FailureType::WrongResult));
        assert_eq!(a.severity, 0.3);
        assert_eq!(a.explanation, "picked the wrong one");
    }

    #[test]
    fn each_keyword_counts_once_and_severity_uses_python_arithmetic() {
        let t = traj(
            "x",
            "",
            "",
            vec![step(
                "I think, probably. I THINK it might be",
                "i think i think",
            )],
        );
        let a = detect(&t);
        assert_eq!(a.failure_type, Some(FailureType::Hallucination));
        assert_eq!(a.severity, 0.6000000000000001);
        let hits = keyword_hits(&t, &Lexicon::default());
        assert_eq!(hits[2].keywords, vec!["i think", "probably", "it might be"]);
        assert!(hits[0].keywords.is_empty());
    }

    #[test]
    fn severity_is_capped_at_one() {
        assert_eq!(severity_for_hits(0), 0.3);
        assert_eq!(severity_for_hits(1), 0.4);
        assert_eq!(severity_for_hits(2), 0.5);
        assert_eq!(severity_for_hits(3), 0.6000000000000001);
        assert_eq!(severity_for_hits(4), 0.7);
        assert_eq!(severity_for_hits(6), 0.9000000000000001);
        assert_eq!(severity_for_hits(7), 1.0);
        assert_eq!(severity_for_hits(11), 1.0);
    }

    #[test]
    fn tie_keeps_the_earlier_type() {
        // One incomplete hit and one hallucination hit: incomplete is listed first.
        let t = traj("x", "", "probably", vec![step("unable to", "")]);
        assert_eq!(detect(&t).failure_type, Some(FailureType::Incomplete));
        // One tool_error hit ties with one constraint hit: tool_error wins.
        let t = traj("exceeds", "", "", vec![step("", "Timeout")]);
        assert_eq!(detect(&t).failure_type, Some(FailureType::ToolError));
    }

    #[test]
    fn tool_error_is_never_recoverable() {
        let t = traj(
            "x",
            "",
            "",
            vec![step("", "Error: connection refused by the upstream server")],
        );
        let a = detect(&t);
        assert_eq!(a.failure_type, Some(FailureType::ToolError));
        assert_eq!(a.severity, 0.5);
        assert!(!a.recoverable);
    }

    #[test]
    fn recoverable_needs_more_than_twenty_code_points_after_strip() {
        let twenty = "é".repeat(20);
        let t = traj(
            "x",
            "",
            "",
            vec![step("", &format!("  \u{1c}{twenty}\u{85} "))],
        );
        assert!(!detect(&t).recoverable);
        let t = traj(
            "x",
            "",
            "",
            vec![step("", &format!("{twenty}!")), step("", "")],
        );
        assert!(detect(&t).recoverable);
    }

    #[test]
    fn parts_are_joined_with_spaces() {
        // " 404 " only hits thanks to the joining spaces around an exact "404" observation.
        let t = traj("x", "", "", vec![step("status", "404"), step("next", "")]);
        assert_eq!(detection_text(&t), "x   status 404 next ");
        assert_eq!(detect(&t).failure_type, Some(FailureType::ToolError));
    }

    #[test]
    fn lower_casing_follows_python() {
        // The Kelvin sign lower-cases to an ASCII k: "\u{212a}" + "nown" does not matter, but
        // "I DON'T \u{212a}NOW" becomes "i don't know".
        let t = traj("I DON'T \u{212a}NOW", "", "", vec![step("", "")]);
        assert_eq!(detect(&t).failure_type, Some(FailureType::Incomplete));
    }

    #[test]
    fn custom_lexicon_keywords_are_lower_cased_and_deduplicated() {
        let lexicon = Lexicon {
            entries: vec![LexiconEntry {
                failure_type: FailureType::OffTopic,
                keywords: vec!["Weather".into(), "weather".into(), String::new()],
            }],
            severity: SeverityFormula::default(),
        };
        let t = traj("what's the weather", "", "", vec![step("", "")]);
        let a = detect_with(&t, &lexicon);
        assert_eq!(a.failure_type, Some(FailureType::OffTopic));
        assert_eq!(a.severity, 0.4);
        let steeper = Lexicon {
            severity: SeverityFormula {
                base: 0.5,
                per_hit: 0.25,
                cap: 0.7,
            },
            ..lexicon
        };
        assert_eq!(detect_with(&t, &steeper).severity, 0.7);
        assert_eq!(detect_with(&t, &steeper).weight, 0.7);
    }

    #[test]
    fn lexicon_round_trips_through_serde() {
        let lexicon = Lexicon::default();
        let text = serde_json::to_string(&lexicon).unwrap();
        assert!(
            text.starts_with(r#"{"entries":[{"failure_type":"tool_error","keywords":["error:""#)
        );
        let back: Lexicon = serde_json::from_str(&text).unwrap();
        assert_eq!(back, lexicon);
    }
}
