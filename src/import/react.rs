//! ReAct plain-text logs: runs of `Thought:` / `Action:` / `Action Input:` / `Observation:`
//! blocks, as LangChain agents print them or as the ReAct paper writes them (`Thought 1:`,
//! `Action 1: Search[...]`, `Observation 1:`).
//!
//! # Lines
//! A block starts at a line that begins (in its first column) with a marker: one of
//! `Question`, `Task`, `Claim` (the goal), `Thought`, `Action`, `Action Input`, `Observation`,
//! `Final Answer`, `Correct Answer` / `Gold Answer` / `Expected Answer` (the expected answer),
//! `Reward`; optionally followed by a space and a number; then `:`. The block's text runs to
//! the next marker line and is trimmed. Terminal colour codes are dropped, and so are
//! LangChain's chain banners (`> Entering new ...`, `> Finished chain.`).
//!
//! # Runs
//! A file holds one or more runs. A run ends:
//! - at a separator line: three or more `-`, or three or more `=`, alone on the line;
//! - before a goal line (`Question:` / `Task:` / `Claim:`) when the run already has a goal or a
//!   step block (`Thought`, `Action`, `Action Input`, `Observation`, `Final Answer`);
//! - before a line that is no marker and follows two or more blank lines, when the run already
//!   has a step block (a new run without a goal marker).
//!
//! Blank lines between runs belong to neither; the reader keeps one run in memory at a time.
//!
//! # Mapping
//! - The goal is the `Question` / `Task` / `Claim` text; the text before it, if any, is kept as
//!   the system prompt. Without a goal marker, the text before the first block is the goal.
//! - `Action: name` followed by `Action Input: ...` is one step; `Action: Name[argument]` is one
//!   step with the argument as input. The input follows the common arguments rule (a JSON
//!   object as it is, anything else as `{"input": ...}`); [`ToolCall`] keeps the input text,
//!   no id, and the step's index as its turn.
//! - `Thought` text is the thought of the next step; a thought after the last step is kept in
//!   `metadata.final_thought`. `Observation` text is the observation of the last step.
//! - `Final Answer: ...` or `Action: Finish[...]` is the final answer.
//! - A `Reward` of at least 1 marks a success (the number is kept in the metadata); an expected
//!   answer gives the failure reason `The expected answer is: ...`; otherwise the reason is
//!   unknown.
//!
//! [`ToolCall`]: crate::model::ToolCall

use super::chat::{arguments, Args};
use super::{Invalid, SourceFormat, UNKNOWN_FAILURE};
use crate::json::{Json, JsonObject, Number};
use crate::model::{Origin, Step, ToolCall, Trajectory};
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Question,
    Task,
    Claim,
    Thought,
    Action,
    ActionInput,
    Observation,
    FinalAnswer,
    Expected,
    Reward,
}

impl Marker {
    fn is_goal(self) -> bool {
        matches!(self, Marker::Question | Marker::Task | Marker::Claim)
    }

    fn is_step(self) -> bool {
        matches!(
            self,
            Marker::Thought
                | Marker::Action
                | Marker::ActionInput
                | Marker::Observation
                | Marker::FinalAnswer
        )
    }
}

/// Marker words, longer ones before their prefixes.
const MARKERS: [(&str, Marker); 12] = [
    ("Question", Marker::Question),
    ("Task", Marker::Task),
    ("Claim", Marker::Claim),
    ("Thought", Marker::Thought),
    ("Action Input", Marker::ActionInput),
    ("Action", Marker::Action),
    ("Observation", Marker::Observation),
    ("Final Answer", Marker::FinalAnswer),
    ("Correct Answer", Marker::Expected),
    ("Gold Answer", Marker::Expected),
    ("Expected Answer", Marker::Expected),
    ("Reward", Marker::Reward),
];

/// The marker a line starts with, the marker as written (`Observation 2`) and the text after
/// its colon.
fn marker(line: &str) -> Option<(Marker, &str, &str)> {
    MARKERS.iter().find_map(|&(word, m)| {
        let rest = line.strip_prefix(word)?;
        let after_number = match rest.strip_prefix(' ') {
            Some(r) if r.starts_with(|c: char| c.is_ascii_digit()) => {
                r.trim_start_matches(|c: char| c.is_ascii_digit())
            }
            _ => rest,
        };
        let body = after_number.strip_prefix(':')?;
        let label = &line[..line.len() - body.len() - 1];
        Some((m, label, body))
    })
}

/// The line without terminal colour codes (`ESC [ ... letter`) and stray escapes.
fn strip_ansi(line: &str) -> Cow<'_, str> {
    if !line.contains('\u{1b}') {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) {
                    break;
                }
            }
        }
    }
    Cow::Owned(out)
}

fn is_banner(line: &str) -> bool {
    line.starts_with("> Entering new ") || line.starts_with("> Finished chain")
}

fn is_separator(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 3 && (t.bytes().all(|b| b == b'-') || t.bytes().all(|b| b == b'='))
}

/// What a line is, for cutting runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Blank,
    Separator,
    Banner,
    Goal,
    Step,
    /// `Reward`, expected answer.
    Note,
    Other,
}

fn line_kind(raw: &[u8]) -> LineKind {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return LineKind::Blank;
    }
    let lossy = String::from_utf8_lossy(raw);
    let line = strip_ansi(&lossy);
    if is_separator(&line) {
        LineKind::Separator
    } else if is_banner(&line) {
        LineKind::Banner
    } else {
        match marker(&line) {
            Some((m, _, _)) if m.is_goal() => LineKind::Goal,
            Some((m, _, _)) if m.is_step() => LineKind::Step,
            Some(_) => LineKind::Note,
            None if line.trim().is_empty() => LineKind::Blank,
            None => LineKind::Other,
        }
    }
}

/// Whether a line starts a step block (`Thought:`, `Action:`, ...): what makes a text file a
/// ReAct log.
pub(crate) fn is_step_line(line: &[u8]) -> bool {
    line_kind(line) == LineKind::Step
}

/// One run's raw text and where it starts.
#[derive(Debug)]
pub(crate) struct RawRun {
    /// 1-based line of its first line.
    pub line: usize,
    /// 0-based position among the file's runs.
    pub index: usize,
    pub bytes: Vec<u8>,
}

#[derive(Debug)]
struct RunBuf {
    line: usize,
    bytes: Vec<u8>,
    has_goal: bool,
    has_step: bool,
}

/// Cuts a text into runs, a chunk at a time (see "Runs" above).
#[derive(Debug)]
pub(crate) struct Splitter {
    /// The current, unfinished line.
    partial: Vec<u8>,
    /// The number of the line in `partial`.
    line: usize,
    run: Option<RunBuf>,
    /// Blank lines since the run's last line, and how many.
    blank_tail: Vec<u8>,
    blanks: usize,
    index: usize,
}

impl Splitter {
    /// A splitter whose first byte is at the start of line `line`.
    pub fn new(line: usize) -> Self {
        Splitter {
            partial: Vec::new(),
            line,
            run: None,
            blank_tail: Vec::new(),
            blanks: 0,
            index: 0,
        }
    }

    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<RawRun>) {
        while let Some(nl) = input.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&input[..nl]);
            self.end_line(out);
            input = &input[nl + 1..];
        }
        self.partial.extend_from_slice(input);
    }

    pub fn finish(&mut self, out: &mut Vec<RawRun>) {
        if !self.partial.is_empty() {
            self.end_line(out);
        }
        self.close(out);
    }

    fn end_line(&mut self, out: &mut Vec<RawRun>) {
        let line = std::mem::take(&mut self.partial);
        match line_kind(&line) {
            LineKind::Blank => {
                if self.run.is_some() {
                    self.blank_tail.extend_from_slice(&line);
                    self.blank_tail.push(b'\n');
                    self.blanks += 1;
                }
            }
            LineKind::Banner => {}
            LineKind::Separator => self.close(out),
            LineKind::Goal => {
                if self.run.as_ref().is_some_and(|r| r.has_goal || r.has_step) {
                    self.close(out);
                }
                self.append(&line).has_goal = true;
            }
            LineKind::Step => self.append(&line).has_step = true,
            LineKind::Note => {
                self.append(&line);
            }
            LineKind::Other => {
                if self.blanks >= 2 && self.run.as_ref().is_some_and(|r| r.has_step) {
                    self.close(out);
                }
                self.append(&line);
            }
        }
        self.partial = line;
        self.partial.clear();
        self.line += 1;
    }

    fn append(&mut self, line: &[u8]) -> &mut RunBuf {
        let run = match &mut self.run {
            Some(run) => {
                run.bytes.extend_from_slice(&self.blank_tail);
                run
            }
            none => none.insert(RunBuf {
                line: self.line,
                bytes: Vec::new(),
                has_goal: false,
                has_step: false,
            }),
        };
        self.blank_tail.clear();
        self.blanks = 0;
        run.bytes.extend_from_slice(line);
        run.bytes.push(b'\n');
        run
    }

    fn close(&mut self, out: &mut Vec<RawRun>) {
        self.blank_tail.clear();
        self.blanks = 0;
        if let Some(run) = self.run.take() {
            out.push(RawRun {
                line: run.line,
                index: self.index,
                bytes: run.bytes,
            });
            self.index += 1;
        }
    }
}

/// A block of a run: its marker (`None`: text before the first marker), the marker as
/// written, and its text.
struct Block {
    marker: Option<Marker>,
    label: String,
    lines: Vec<String>,
}

impl Block {
    fn text(&self) -> String {
        self.lines.join("\n").trim().to_owned()
    }
}

fn blocks(text: &str) -> Vec<Block> {
    let mut blocks = vec![Block {
        marker: None,
        label: String::new(),
        lines: Vec::new(),
    }];
    for raw in text.lines() {
        let line = strip_ansi(raw);
        if is_banner(&line) {
            continue;
        }
        match marker(&line) {
            Some((m, label, body)) => blocks.push(Block {
                marker: Some(m),
                label: label.to_owned(),
                lines: vec![body.to_owned()],
            }),
            None => {
                if let Some(last) = blocks.last_mut() {
                    last.lines.push(line.into_owned());
                }
            }
        }
    }
    blocks
}

/// `Name[argument]`: the name (no spaces) and the argument.
fn bracket_call(text: &str) -> Option<(&str, &str)> {
    let body = text.strip_suffix(']')?;
    let open = body.find('[')?;
    let name = &body[..open];
    (!name.is_empty() && !name.contains(char::is_whitespace)).then(|| (name, &body[open + 1..]))
}

/// Maps one run's text onto a trajectory (empty `trajectory_id`: the reader generates one).
pub fn parse_run(text: &str) -> Result<Trajectory, Invalid> {
    let mut goal: Option<String> = None;
    let mut preamble: Option<String> = None;
    let mut steps: Vec<Step> = Vec::new();
    let mut thoughts: Vec<String> = Vec::new();
    let mut final_answer: Option<String> = None;
    let mut expected: Option<String> = None;
    let mut reward: Option<Number> = None;
    // The last step came from `Action: name` and waits for its `Action Input:`.
    let mut awaiting_input = false;
    for block in blocks(text) {
        let body = block.text();
        let Some(m) = block.marker else {
            if !body.is_empty() {
                preamble = Some(body);
            }
            continue;
        };
        match m {
            Marker::Question | Marker::Task | Marker::Claim => {
                if goal.is_some() {
                    return Err(Invalid::at(block.label, "a second goal in one run"));
                }
                goal = Some(body);
            }
            Marker::Thought => {
                if !body.is_empty() {
                    thoughts.push(body);
                }
            }
            Marker::Action => {
                awaiting_input = false;
                let (name, raw) = match bracket_call(&body) {
                    Some((name, argument)) if name.eq_ignore_ascii_case("finish") => {
                        final_answer = Some(argument.to_owned());
                        continue;
                    }
                    Some((name, argument)) => (name.to_owned(), argument.to_owned()),
                    None if body.is_empty() => {
                        return Err(Invalid::at(block.label, "the action has no name"))
                    }
                    None => {
                        awaiting_input = true;
                        (body, String::new())
                    }
                };
                let (arguments, action_input) = arguments(Args::Text(raw));
                let turn = u32::try_from(steps.len()).unwrap_or(u32::MAX);
                steps.push(Step {
                    thought: std::mem::take(&mut thoughts).join("\n"),
                    action_name: name,
                    action_input,
                    observation: String::new(),
                    call: Some(ToolCall {
                        id: String::new(),
                        arguments,
                        turn,
                    }),
                });
            }
            Marker::ActionInput => {
                let step = steps.last_mut().filter(|_| awaiting_input).ok_or_else(|| {
                    Invalid::at(
                        block.label.clone(),
                        "an action input with no `Action:` line before it",
                    )
                })?;
                awaiting_input = false;
                let (arguments, action_input) = arguments(Args::Text(body));
                step.action_input = action_input;
                if let Some(call) = &mut step.call {
                    call.arguments = arguments;
                }
            }
            Marker::Observation => {
                let step = steps.last_mut().ok_or_else(|| {
                    Invalid::at(
                        block.label.clone(),
                        "an observation with no action before it",
                    )
                })?;
                if step.observation.is_empty() {
                    step.observation = body;
                } else if !body.is_empty() {
                    step.observation = format!("{}\n{body}", step.observation);
                }
            }
            Marker::FinalAnswer => final_answer = Some(body),
            Marker::Expected => expected = Some(body),
            Marker::Reward => {
                reward = Some(
                    Number::int_from_literal(&body)
                        .or_else(|| {
                            body.parse::<f64>()
                                .ok()
                                .filter(|f| f.is_finite())
                                .map(Number::Float)
                        })
                        .ok_or_else(|| Invalid::at(block.label.clone(), "expected a number"))?,
                );
            }
        }
    }
    let (original_prompt, system) = match goal {
        Some(goal) => (goal, preamble),
        None => match preamble {
            Some(first) => (first, None),
            None => {
                return Err(Invalid::at(
                    "Question",
                    "the run has no goal: expected a Question:, Task: or Claim: line, or a \
                     first line stating the task",
                ))
            }
        },
    };
    if steps.is_empty() {
        return Err(Invalid::at(
            "Action",
            "no Action: line: the run has no step to relabel",
        ));
    }
    let succeeded = reward.as_ref().is_some_and(super::reward_succeeded);
    let mut metadata = JsonObject::new();
    if let Some(r) = reward {
        metadata.insert("reward", Json::Number(r));
    }
    if !thoughts.is_empty() {
        metadata.insert("final_thought", Json::String(thoughts.join("\n")));
    }
    let failure_reason = if succeeded {
        String::new()
    } else {
        expected.map_or_else(
            || UNKNOWN_FAILURE.to_owned(),
            |e| format!("The expected answer is: {e}"),
        )
    };
    Ok(Trajectory {
        trajectory_id: String::new(),
        original_prompt,
        steps,
        final_answer: final_answer.unwrap_or_default(),
        failure_reason,
        metadata,
        origin: Some(Origin {
            format: SourceFormat::React.id().to_owned(),
            system,
            tools: Vec::new(),
            succeeded,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(text: &str) -> Vec<(usize, String)> {
        let mut s = Splitter::new(1);
        let mut out = Vec::new();
        s.feed(text.as_bytes(), &mut out);
        s.finish(&mut out);
        out.into_iter()
            .map(|r| (r.line, String::from_utf8(r.bytes).unwrap()))
            .collect()
    }

    #[test]
    fn markers() {
        assert_eq!(
            marker("Action 12: Search[x]"),
            Some((Marker::Action, "Action 12", " Search[x]"))
        );
        assert_eq!(
            marker("Action Input: {}"),
            Some((Marker::ActionInput, "Action Input", " {}"))
        );
        assert_eq!(marker("Actions: x"), None);
        assert_eq!(marker(" Thought: indented"), None);
        assert_eq!(marker("thought: lower case"), None);
        assert_eq!(marker("Thought 1 : spaced"), None);
        assert_eq!(
            strip_ansi("\u{1b}[32;1m\u{1b}[1;3mThought: x\u{1b}[0m"),
            "Thought: x"
        );
        assert_eq!(line_kind(b"-----\r"), LineKind::Separator);
        assert_eq!(line_kind(b"--"), LineKind::Other);
        assert_eq!(line_kind(b"> Finished chain."), LineKind::Banner);
        assert!(is_step_line(b"Observation 3: done"));
        assert!(!is_step_line(b"Question: why"));
    }

    #[test]
    fn runs_are_cut_at_goals_separators_and_blank_groups() {
        let text = "Question: a\nThought: t\nAction: x\n\nObservation: o\n\n\
                    Question: b\nAction: y\n---\n\n\nfree goal c\nAction: z\n\n\nfree goal d\n\
                    Thought: u\n\n\nThought: still d\n";
        let got = runs(text);
        let starts: Vec<usize> = got.iter().map(|r| r.0).collect();
        assert_eq!(starts, vec![1, 7, 12, 16]);
        assert_eq!(
            got[0].1,
            "Question: a\nThought: t\nAction: x\n\nObservation: o\n"
        );
        assert_eq!(got[3].1, "free goal d\nThought: u\n\n\nThought: still d\n");
    }

    #[test]
    fn a_preamble_then_a_goal_stays_one_run() {
        let got = runs("You answer questions.\nUse tools.\nQuestion: q\nAction: a\n");
        assert_eq!(got.len(), 1);
        let t = parse_run(&got[0].1).unwrap();
        assert_eq!(t.original_prompt, "q");
        assert_eq!(
            t.origin.unwrap().system.as_deref(),
            Some("You answer questions.\nUse tools.")
        );
    }

    #[test]
    fn paper_style_run() {
        let t = parse_run(
            "Claim: Nikolaj Coster-Waldau worked with the Fox Broadcasting Company.\n\
             Thought 1: I need to search Nikolaj Coster-Waldau.\n\
             Action 1: Search[Nikolaj Coster-Waldau]\n\
             Observation 1: Nikolaj William Coster-Waldau is a Danish actor.\n\
             Thought 2: Enough.\nAction 2: Finish[SUPPORTS]\nCorrect Answer: REFUTES\n",
        )
        .unwrap();
        assert_eq!(t.steps.len(), 1);
        assert_eq!(t.steps[0].action_name, "Search");
        assert_eq!(
            crate::json::python_dumps(&Json::Object(t.steps[0].action_input.clone())),
            r#"{"input": "Nikolaj Coster-Waldau"}"#
        );
        assert_eq!(t.final_answer, "SUPPORTS");
        assert_eq!(t.failure_reason, "The expected answer is: REFUTES");
        assert_eq!(
            t.metadata.get("final_thought"),
            Some(&Json::from("Enough."))
        );
    }

    #[test]
    fn rejections_name_the_block() {
        let e = parse_run("Question: q\nObservation: o\n").unwrap_err();
        assert_eq!(
            e,
            Invalid::at("Observation", "an observation with no action before it")
        );
        let e = parse_run("Task: q\nThought: t\nAction Input 2: {}\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("Action Input 2"));
        let e = parse_run("Question: q\nThought: nothing done\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("Action"));
        let e = parse_run("Thought: t\nAction: a\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("Question"));
        let e = parse_run("Question: q\nAction: a\nReward: lots\n").unwrap_err();
        assert_eq!(e, Invalid::at("Reward", "expected a number"));
    }
}
