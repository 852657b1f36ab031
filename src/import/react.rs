//! ReAct plain-text logs: runs of `Thought:` / `Action:` / `Action Input:` / `Observation:`
//! blocks, as LangChain agents print them, as the ReAct paper writes them (`Thought 1:`,
//! `Action 1: Search[...]`, `Observation 1:`) and as the ReAct and Reflexion logs record them
//! (FEVER, HotpotQA, WebShop).
//!
//! # Lines
//! A block starts at a line that begins (in its first column) with a marker, in any case: one
//! of `Question`, `Task`, `Claim` (the goal; a number and a space may come before it, as in
//! FEVER's `3687 Claim:`), `Thought`, `Action`, `Action Input`, `Observation`, `Final Answer`,
//! `Correct Answer` / `Gold Answer` / `Expected Answer` (the expected answer), `Reward`;
//! optionally followed by a space and a number; then `:`. The block's text runs to the next
//! marker line and is trimmed. Terminal colour codes are dropped, and so are LangChain's chain
//! banners (`> Entering new ...`, `> Finished chain.`). Two kinds of lines are a run's
//! evaluation output and belong to the run before them: a Python dict line (`{'steps': 2, ...,
//! 'reward': 1}`) and a line of numbers only (a timing line, `1 1 1.0 4.08`).
//!
//! # Runs
//! A file holds one or more runs. A run ends:
//! - at a separator line: three or more `-`, or three or more `=`, alone on the line;
//! - at a banner line, which belongs to no run: a line of three or more `#`, `BEGIN TRIAL ...`,
//!   `Trial summary: ...`, and Reflexion's section headers (`--- BEGIN CORRECT AGENTS ---`,
//!   `INCORRECT`, `HALTED`), which also give the verdict of the runs that follow;
//! - before a goal line when the run already has a goal or a step block (`Thought`, `Action`,
//!   `Action Input`, `Observation`, `Final Answer`);
//! - before a line that is no marker and follows two or more blank lines, when the run already
//!   ended (a final answer, `Finish[...]`, or a verdict): a new run without a goal marker. Blank
//!   lines inside a run (paragraphs of an observation, an action written after a blank line)
//!   do not cut it.
//!
//! Blank lines between runs belong to neither; the reader keeps one run in memory at a time.
//!
//! # Mapping
//! - The goal is the `Question` / `Task` / `Claim` text; the text before it, if any, is kept as
//!   the system prompt. Without a goal marker, the goal is the WebShop instruction (the text
//!   after `Instruction:` in the text before the first block or in the first observation, up
//!   to `[SEP]` or `[Search]`), else the text before the first block. A text before the first
//!   block that is only a number is the run's index in the log (kept as `metadata.index`).
//! - `Action: name` followed by `Action Input: ...` is one step; `Action: Name[argument]` is one
//!   step with the argument as input. The input follows the common arguments rule (a JSON
//!   object as it is, anything else as `{"input": ...}`); [`ToolCall`] keeps the input text,
//!   no id, and the step's index as its turn.
//! - `Thought` text is the thought of the next step; the thoughts after the last step (the one
//!   before `Finish[...]` included) are the final thought. `Observation` text is the
//!   observation of the last step.
//! - `Final Answer: ...` or `Action: Finish[...]` is the final answer. The observation that
//!   answers a `Finish` (`Answer is CORRECT`, `Episode finished, reward = 1`) is the
//!   environment's evaluation: it goes into the failure reason of a failure, and into
//!   `metadata.evaluation` with the dict and timing lines (`metadata.log_lines`).
//! - The verdict, first found of: the evaluation's `Answer is CORRECT` / `Answer is INCORRECT`;
//!   a reward (`reward = N` in the evaluation, the dict line's `'reward': N`, a `Reward:` line;
//!   success when at least 1); the Reflexion section the run is in. With none, the run is a
//!   failure whose verdict is unknown. An expected answer gives the failure reason `The
//!   expected answer is: ...`; otherwise the reason is unknown.
//!
//! [`ToolCall`]: crate::model::ToolCall

use super::chat::{arguments, Args};
use super::reward::reward_succeeded;
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
    /// An evaluation line: a Python dict of run statistics, or a line of numbers.
    Stats,
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

/// `line` without a leading ASCII `word`, in any case.
fn strip_word<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let head = line.get(..word.len())?;
    head.eq_ignore_ascii_case(word).then(|| &line[word.len()..])
}

/// The marker a line starts with, the marker as written (`Observation 2`) and the text after
/// its colon.
fn marker(line: &str) -> Option<(Marker, &str, &str)> {
    if is_stats(line) {
        return Some((Marker::Stats, "", line));
    }
    // FEVER numbers its claims: `3687 Claim: ...`.
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let numbered = (digits > 0)
        .then(|| line[digits..].strip_prefix(' '))
        .flatten();
    if let Some(rest) = numbered {
        let (m, label, body) = marker(rest)?;
        return m.is_goal().then_some((m, label, body));
    }
    MARKERS.iter().find_map(|&(word, m)| {
        let rest = strip_word(line, word)?;
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

/// A run's evaluation output: a Python dict line (`{'steps': 2, ...}`) or a line of three or
/// more numbers only, one of them with a decimal point (a timing line, `1 1 1.0 4.08`).
fn is_stats(line: &str) -> bool {
    if is_python_dict_line(line.as_bytes()) {
        return true;
    }
    let t = line.trim();
    let words: Vec<&str> = t.split_whitespace().collect();
    words.len() >= 3
        && words.iter().any(|w| w.contains('.'))
        && words
            .iter()
            .all(|w| w.parse::<f64>().is_ok_and(f64::is_finite))
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

/// LangChain's chain banners, skipped wherever they are.
fn is_chain_banner(line: &str) -> bool {
    line.starts_with("> Entering new ") || line.starts_with("> Finished chain")
}

fn is_separator(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 3 && (t.bytes().all(|b| b == b'-') || t.bytes().all(|b| b == b'='))
}

/// A trial banner line (`#####`, `BEGIN TRIAL 1`, `Trial summary: ...`), or a Reflexion
/// section header with the verdict of the runs under it.
fn trial_banner(line: &str) -> Option<Option<bool>> {
    let t = line.trim();
    if t.len() >= 3 && t.bytes().all(|b| b == b'#') {
        return Some(None);
    }
    if strip_word(t, "BEGIN TRIAL").is_some() || strip_word(t, "Trial summary:").is_some() {
        return Some(None);
    }
    let inner = t.trim_matches(|c: char| c == '-' || c == '=' || c == '#' || c.is_whitespace());
    if inner.len() == t.len() {
        return None;
    }
    let section = strip_word(inner, "BEGIN ")?;
    let words: Vec<&str> = section.split_whitespace().collect();
    match words.as_slice() {
        [kind, agents] if agents.eq_ignore_ascii_case("agents") => {
            if kind.eq_ignore_ascii_case("correct") {
                Some(Some(true))
            } else if kind.eq_ignore_ascii_case("incorrect") || kind.eq_ignore_ascii_case("halted")
            {
                Some(Some(false))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// What a line is, for cutting runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Blank,
    Separator,
    ChainBanner,
    /// A trial banner or a section header (with its verdict).
    Banner(Option<bool>),
    Goal,
    Step,
    /// `Reward`, expected answer, evaluation lines.
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
    } else if is_chain_banner(&line) {
        LineKind::ChainBanner
    } else if let Some(section) = trial_banner(&line) {
        LineKind::Banner(section)
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

/// Whether a line is a Python dict a log printed (`{'steps': 2, ...}`), which no JSON file
/// holds.
pub(crate) fn is_python_dict_line(line: &[u8]) -> bool {
    let t = String::from_utf8_lossy(line);
    let t = t.trim();
    t.starts_with("{'") && t.ends_with('}')
}

/// Whether a line starts a step block (`Thought:`, `Action:`, ...): what makes a text file a
/// ReAct log.
pub(crate) fn is_step_line(line: &[u8]) -> bool {
    line_kind(line) == LineKind::Step
}

/// Whether a run's line ends it: a final answer, a `Finish[...]` action or a verdict.
fn ends_run(raw: &[u8]) -> bool {
    let lossy = String::from_utf8_lossy(raw);
    let line = strip_ansi(&lossy);
    match marker(&line) {
        Some((Marker::FinalAnswer | Marker::Reward | Marker::Stats, _, _)) => true,
        Some((Marker::Action, _, body)) => finish_argument(body.trim()).is_some(),
        Some((Marker::Observation, _, body)) => evaluation_verdict(body).is_some(),
        _ => finish_argument(line.trim()).is_some(),
    }
}

/// One run's raw text and where it starts.
#[derive(Debug)]
pub(crate) struct RawRun {
    /// 1-based line of its first line.
    pub line: usize,
    /// 0-based position among the file's runs.
    pub index: usize,
    pub bytes: Vec<u8>,
    /// The verdict of the Reflexion section the run is in, if any.
    pub section: Option<bool>,
}

#[derive(Debug)]
struct RunBuf {
    line: usize,
    bytes: Vec<u8>,
    has_goal: bool,
    has_step: bool,
    ended: bool,
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
    section: Option<bool>,
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
            section: None,
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
            LineKind::ChainBanner => {}
            LineKind::Banner(section) => {
                self.close(out);
                if section.is_some() {
                    self.section = section;
                }
            }
            LineKind::Separator => self.close(out),
            LineKind::Goal => {
                if self.run.as_ref().is_some_and(|r| r.has_goal || r.has_step) {
                    self.close(out);
                }
                self.append(&line).has_goal = true;
            }
            LineKind::Step => {
                let ended = ends_run(&line);
                let run = self.append(&line);
                run.has_step = true;
                run.ended |= ended;
            }
            LineKind::Note => {
                let ended = ends_run(&line);
                self.append(&line).ended |= ended;
            }
            LineKind::Other => {
                if self.blanks >= 2 && self.run.as_ref().is_some_and(|r| r.has_step && r.ended) {
                    self.close(out);
                }
                let ended = ends_run(&line);
                self.append(&line).ended |= ended;
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
                ended: false,
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
                section: self.section,
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
        if is_chain_banner(&line) {
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

/// The argument of a `Finish[...]` action.
fn finish_argument(text: &str) -> Option<&str> {
    bracket_call(text)
        .filter(|(name, _)| name.eq_ignore_ascii_case("finish"))
        .map(|(_, argument)| argument)
}

/// The number after `reward` and `=` or `:` (optionally quoted, as in a dict line), if any.
fn reward_in(text: &str) -> Option<Number> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("reward") {
        let rest = &text[from + at + "reward".len()..];
        let rest = rest.trim_start_matches(['\'', '"']).trim_start();
        if let Some(value) = rest.strip_prefix(['=', ':']) {
            let value = value.trim_start();
            let end = value
                .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
                .unwrap_or(value.len());
            if let Some(n) = number(&value[..end]) {
                return Some(n);
            }
        }
        from += at + "reward".len();
    }
    None
}

fn number(text: &str) -> Option<Number> {
    Number::int_from_literal(text).or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Number::Float)
    })
}

/// The verdict an evaluation text states: `Answer is CORRECT` / `INCORRECT` (any case), or a
/// reward.
fn evaluation_verdict(text: &str) -> Option<bool> {
    let lower = text.to_ascii_lowercase();
    if lower.contains("answer is incorrect") {
        Some(false)
    } else if lower.contains("answer is correct") {
        Some(true)
    } else {
        reward_in(text).map(|r| reward_succeeded(&r))
    }
}

/// The WebShop instruction in a text: what follows `Instruction:` up to `[SEP]` or `[Search]`
/// (the first non-empty such piece), trimmed.
fn instruction(text: &str) -> Option<String> {
    let at = text.to_ascii_lowercase().find("instruction:")?;
    let rest = &text[at + "instruction:".len()..];
    rest.split("[SEP]")
        .map(|piece| piece.split("[Search]").next().unwrap_or("").trim())
        .find(|piece| !piece.is_empty())
        .map(str::to_owned)
}

/// Maps one run's text onto a trajectory (empty `trajectory_id`: the reader generates one).
/// `section` is the verdict of the Reflexion section the run is in, if any.
pub fn parse_run(text: &str, section: Option<bool>) -> Result<Trajectory, Invalid> {
    let mut goal: Option<String> = None;
    let mut preamble: Option<String> = None;
    let mut steps: Vec<Step> = Vec::new();
    let mut thoughts: Vec<String> = Vec::new();
    let mut final_answer: Option<String> = None;
    let mut expected: Option<String> = None;
    let mut reward: Option<Number> = None;
    let mut evaluation: Vec<String> = Vec::new();
    let mut log_lines: Vec<String> = Vec::new();
    // The last step came from `Action: name` and waits for its `Action Input:`.
    let mut awaiting_input = false;
    // `Finish[...]` was the last action: an observation now is its evaluation.
    let mut finished = false;
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
                if let Some(argument) = finish_argument(&body) {
                    final_answer = Some(argument.to_owned());
                    finished = true;
                    continue;
                }
                finished = false;
                let (name, raw) = match bracket_call(&body) {
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
                    kind: Default::default(),
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
            Marker::Observation if finished => {
                if !body.is_empty() {
                    evaluation.push(body);
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
            Marker::FinalAnswer => {
                final_answer = Some(body);
                finished = true;
            }
            Marker::Expected => expected = Some(body),
            Marker::Reward => {
                reward = Some(
                    number(&body)
                        .ok_or_else(|| Invalid::at(block.label.clone(), "expected a number"))?,
                );
            }
            Marker::Stats => {
                if reward.is_none() {
                    reward = reward_in(&body);
                }
                log_lines.push(body);
            }
        }
    }
    let mut metadata = JsonObject::new();
    let (original_prompt, system) = match goal {
        Some(goal) => (goal, preamble),
        None => {
            let index = preamble
                .as_deref()
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if let Some(i) = index {
                metadata.insert("index", Json::from(i));
            }
            let webshop = preamble
                .as_deref()
                .and_then(instruction)
                .or_else(|| steps.first().and_then(|s| instruction(&s.observation)));
            match (webshop, index) {
                (Some(goal), None) => (goal, preamble),
                (Some(goal), Some(_)) => (goal, None),
                (None, None) if preamble.is_some() => (preamble.unwrap_or_default(), None),
                (None, _) => {
                    return Err(Invalid::at(
                        "Question",
                        "the run has no goal: expected a Question:, Task: or Claim: line, a \
                         WebShop Instruction:, or a first line stating the task",
                    ))
                }
            }
        }
    };
    if steps.is_empty() && final_answer.is_none() && thoughts.is_empty() {
        return Err(Invalid::at(
            "Action",
            "no Thought:, Action: or Final Answer: line: the agent did nothing to relabel",
        ));
    }
    let verdict = evaluation
        .iter()
        .find_map(|e| evaluation_verdict(e))
        .or_else(|| reward.as_ref().map(reward_succeeded))
        .or(section);
    let succeeded = verdict == Some(true);
    if let Some(r) = reward {
        metadata.insert("reward", Json::Number(r));
    }
    let evaluation = evaluation.join("\n");
    if !evaluation.is_empty() {
        metadata.insert("evaluation", Json::String(evaluation.clone()));
    }
    if !log_lines.is_empty() {
        metadata.insert(
            "log_lines",
            Json::Array(log_lines.into_iter().map(Json::String).collect()),
        );
    }
    let failure_reason = if succeeded {
        String::new()
    } else {
        let mut parts = Vec::new();
        if !evaluation.is_empty() {
            parts.push(format!("The evaluation said: {evaluation}"));
        }
        if let Some(e) = expected {
            parts.push(format!("The expected answer is: {e}"));
        }
        if parts.is_empty() {
            UNKNOWN_FAILURE.to_owned()
        } else {
            parts.join(". ")
        }
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
            verdict_unknown: verdict.is_none(),
            final_thought: thoughts.join("\n"),
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
        assert_eq!(
            marker("thought: lower case"),
            Some((Marker::Thought, "thought", " lower case"))
        );
        assert_eq!(
            marker("3687 Claim: numbered"),
            Some((Marker::Claim, "Claim", " numbered"))
        );
        assert_eq!(marker("3687 Thought: no"), None);
        assert_eq!(
            marker("1 1 1.0 4.081380128860474").map(|m| m.0),
            Some(Marker::Stats)
        );
        assert_eq!(
            marker("{'steps': 2, 'reward': 1}").map(|m| m.0),
            Some(Marker::Stats)
        );
        assert_eq!(marker("2 3 apples"), None);
        assert_eq!(marker("12 34"), None);
        assert_eq!(marker("Thought 1 : spaced"), None);
        assert_eq!(
            strip_ansi("\u{1b}[32;1m\u{1b}[1;3mThought: x\u{1b}[0m"),
            "Thought: x"
        );
        assert_eq!(line_kind(b"-----\r"), LineKind::Separator);
        assert_eq!(line_kind(b"--"), LineKind::Other);
        assert_eq!(line_kind(b"> Finished chain."), LineKind::ChainBanner);
        assert!(is_step_line(b"Observation 3: done"));
        assert!(!is_step_line(b"Question: why"));
    }

    #[test]
    fn runs_are_cut_at_goals_separators_and_blank_groups() {
        let text = "Question: a\nThought: t\nAction: x\n\nObservation: o\n\n\
                    Question: b\nAction: y\n---\n\n\nfree goal c\nAction: Finish[z]\n\n\nfree goal d\n\
                    Thought: u\n\n\nThought: still d\nAction: w\nObservation: first\n\n\nparagraph\n";
        let got = runs(text);
        let starts: Vec<usize> = got.iter().map(|r| r.0).collect();
        assert_eq!(starts, vec![1, 7, 12, 16]);
        assert_eq!(
            got[0].1,
            "Question: a\nThought: t\nAction: x\n\nObservation: o\n"
        );
        // A run that has not ended keeps the text after a blank-line group.
        assert_eq!(
            got[3].1,
            "free goal d\nThought: u\n\n\nThought: still d\nAction: w\nObservation: first\n\n\nparagraph\n"
        );
    }

    #[test]
    fn banners_sections_and_evaluation_lines() {
        let text = "####\nBEGIN TRIAL 1\nTrial summary: Correct: 1\n####\n\
                    ----- BEGIN CORRECT AGENTS -----\n\nQuestion: a\nAction 1: Finish[x]\n\
                    Observation 1: Answer is CORRECT\n\n\
                    ----- BEGIN INCORRECT AGENTS -----\n\n7 Claim: b\nAction 1: Search[y]\n\n\n\
                    {'steps': 1, 'reward': 0}\n\n1 1 0.5 2.25\n---\n";
        let mut s = Splitter::new(1);
        let mut out = Vec::new();
        s.feed(text.as_bytes(), &mut out);
        s.finish(&mut out);
        let got: Vec<(usize, Option<bool>)> = out.iter().map(|r| (r.line, r.section)).collect();
        assert_eq!(got, [(7, Some(true)), (13, Some(false))]);
        let t = parse_run(std::str::from_utf8(&out[1].bytes).unwrap(), out[1].section).unwrap();
        assert_eq!(t.original_prompt, "b");
        assert_eq!(t.origin.as_ref().unwrap().system, None);
        assert_eq!(t.steps[0].observation, "");
        assert!(!t.succeeded() && !t.verdict_unknown());
        assert_eq!(
            crate::json::python_dumps(&Json::Object(t.metadata.clone())),
            r#"{"reward": 0, "log_lines": ["{'steps': 1, 'reward': 1}", "1 1 0.5 2.25"]}"#
                .replace("'reward': 1", "'reward': 0")
        );
        let t = parse_run(std::str::from_utf8(&out[0].bytes).unwrap(), out[0].section).unwrap();
        assert!(t.succeeded());
        // The evaluation wins over the section.
        let t = parse_run(
            "Question: q\nAction: Finish[x]\nObservation: answer is incorrect\n",
            Some(true),
        )
        .unwrap();
        assert!(!t.succeeded());
        assert_eq!(t.failure_reason, "The evaluation said: answer is incorrect");
        let t = parse_run(
            "Claim: c\nAction: Finish[x]\nObservation: Episode finished, reward = 1\n",
            None,
        )
        .unwrap();
        assert!(t.succeeded());
        assert_eq!(
            t.metadata.get("evaluation"),
            Some(&Json::from("Episode finished, reward = 1"))
        );
    }

    #[test]
    fn webshop_goal_comes_from_its_instruction() {
        let t = parse_run(
            "0\nAction: reset\nObservation: WebShop [SEP] Instruction: [SEP] i need a red mug [SEP] Search\n\
             Action: search[red mug]\nObservation: results\n",
            None,
        )
        .unwrap();
        assert_eq!(t.original_prompt, "i need a red mug");
        assert_eq!(t.metadata.get("index"), Some(&Json::from("0")));
        assert_eq!(t.origin.unwrap().system, None);
        let t = parse_run(
            "WebShop\nInstruction:\ni would like a lamp\n[Search]\nAction: search[lamp]\n",
            None,
        )
        .unwrap();
        assert_eq!(t.original_prompt, "i would like a lamp");
    }

    #[test]
    fn a_preamble_then_a_goal_stays_one_run() {
        let got = runs("You answer questions.\nUse tools.\nQuestion: q\nAction: a\n");
        assert_eq!(got.len(), 1);
        let t = parse_run(&got[0].1, None).unwrap();
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
            None,
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
        assert_eq!(t.final_thought(), "Enough.");
    }

    #[test]
    fn rejections_name_the_block() {
        let e = parse_run("Question: q\nObservation: o\n", None).unwrap_err();
        assert_eq!(
            e,
            Invalid::at("Observation", "an observation with no action before it")
        );
        let e = parse_run("Task: q\nThought: t\nAction Input 2: {}\n", None).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("Action Input 2"));
        let e = parse_run("Question: q\n", None).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("Action"));
        let e = parse_run("Thought: t\nAction: a\n", None).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("Question"));
        let e = parse_run("Question: q\nAction: a\nReward: lots\n", None).unwrap_err();
        assert_eq!(e, Invalid::at("Reward", "expected a number"));
    }
}
