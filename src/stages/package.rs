//! Stage 4: packaging a relabeled trajectory as the reference's three sample envelopes (sft,
//! dpo, sharegpt), and the replay line used for differential testing against the reference.

use crate::json::{
    write_f64, write_python, write_python_str, write_str_contents, write_str_styled, write_styled,
    Decimal, Json, JsonObject, Number, Style,
};
use crate::model::{Message, Relabel, Sample, SampleFormat, Step, Trajectory};
use crate::pytext;

/// Observations are quoted in the rebuilt response up to this many code points.
pub const RESULT_MAX_CHARS: usize = 300;

/// `action_input` as Python's `json.dumps(..., ensure_ascii=False)` writes it: keys in their
/// order, `", "` and `": "` separators, numbers as Python writes them.
pub fn action_input_json(input: &JsonObject) -> String {
    let mut out = String::new();
    write_action_input(input, &mut out);
    out
}

/// Appends [`action_input_json`] of `input` to `out`.
fn write_action_input(input: &JsonObject, out: &mut String) {
    out.push('{');
    for (i, (key, value)) in input.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_python_str(key, out);
        out.push_str(": ");
        write_python(value, out);
    }
    out.push('}');
}

/// The assistant response rebuilt from the trajectory: per step `Step {i}: {thought}`,
/// `  Action: {name}({input})`, `  Result: {first 300 code points of the observation}`, then
/// `\nFinal Answer: {final answer}` when there is one, all joined by `\n`.
pub fn render_response(t: &Trajectory) -> String {
    render(t, Content::Response)
}

/// A message's content, described rather than built: [`package`] renders it into a string,
/// [`EnvelopeText`] writes its pieces straight into the JSON line.
#[derive(Clone, Copy)]
enum Content<'a> {
    Text(&'a str),
    /// [`render_response`].
    Response,
    /// A step's ShareGPT assistant turn: `**Thought:**`, `**Action:**`, and `**Input:**` when
    /// the input is non-empty.
    Turn(&'a Step),
}

/// Hands the text of `content` to `piece` in pieces; `scratch` holds the action inputs.
fn content_pieces(
    t: &Trajectory,
    content: Content,
    scratch: &mut String,
    piece: &mut dyn FnMut(&str),
) {
    let mut input = |step: &Step, piece: &mut dyn FnMut(&str)| {
        scratch.clear();
        write_action_input(&step.action_input, scratch);
        piece(scratch);
    };
    match content {
        Content::Text(text) => piece(text),
        Content::Response => {
            for (i, step) in t.steps.iter().enumerate() {
                piece(if i == 0 { "Step " } else { "\nStep " });
                piece(Decimal::new(i as u64 + 1).as_str());
                piece(": ");
                piece(&step.thought);
                piece("\n  Action: ");
                piece(&step.action_name);
                piece("(");
                input(step, piece);
                piece(")\n  Result: ");
                piece(pytext::prefix(&step.observation, RESULT_MAX_CHARS));
            }
            if !t.final_answer.is_empty() {
                piece(if t.steps.is_empty() {
                    "\nFinal Answer: "
                } else {
                    "\n\nFinal Answer: "
                });
                piece(&t.final_answer);
            }
        }
        Content::Turn(step) => {
            piece("**Thought:** ");
            piece(&step.thought);
            piece("\n**Action:** ");
            piece(&step.action_name);
            if !step.action_input.is_empty() {
                piece("\n**Input:** ");
                input(step, piece);
            }
        }
    }
}

fn render(t: &Trajectory, content: Content) -> String {
    let mut text = String::new();
    content_pieces(t, content, &mut String::new(), &mut |p| text.push_str(p));
    text
}

/// A metadata value of an envelope.
enum Meta<'a> {
    Text(&'a str),
    Float(f64),
    Count(usize),
}

/// The two lists of messages of an envelope.
#[derive(Clone, Copy)]
enum Side {
    Chosen,
    Rejected,
}

impl Side {
    fn key(self) -> &'static str {
        match self {
            Side::Chosen => "chosen",
            Side::Rejected => "rejected",
        }
    }
}

/// One sample envelope of the reference, described: its messages and metadata, in order.
struct Envelope<'a> {
    t: &'a Trajectory,
    relabel: &'a Relabel,
    format: SampleFormat,
}

impl<'a> Envelope<'a> {
    /// The messages of one side, roles and contents.
    fn messages(&self, side: Side, message: &mut dyn FnMut(&'static str, Content<'a>)) {
        match side {
            Side::Chosen => self.chosen(message),
            Side::Rejected => self.rejected(message),
        }
    }

    /// The `chosen` messages.
    fn chosen(&self, message: &mut dyn FnMut(&'static str, Content<'a>)) {
        let (t, hindsight) = (self.t, self.relabel.hindsight_prompt.as_str());
        message("user", Content::Text(hindsight));
        match self.format {
            SampleFormat::Sft | SampleFormat::Dpo => message("assistant", Content::Response),
            // The ShareGPT conversation: per step an assistant turn and an `observation` turn,
            // then the final answer as an assistant turn when there is one.
            SampleFormat::Sharegpt => {
                for step in &t.steps {
                    message("assistant", Content::Turn(step));
                    message("observation", Content::Text(&step.observation));
                }
                if !t.final_answer.is_empty() {
                    message("assistant", Content::Text(&t.final_answer));
                }
            }
        }
    }

    /// The `rejected` messages: DPO's original prompt with the same response.
    fn rejected(&self, message: &mut dyn FnMut(&'static str, Content<'a>)) {
        if self.format == SampleFormat::Dpo {
            message("user", Content::Text(&self.t.original_prompt));
            message("assistant", Content::Response);
        }
    }

    /// The metadata, in order.
    fn metadata(&self) -> impl Iterator<Item = (&'static str, Meta<'a>)> {
        let last = match self.format {
            SampleFormat::Sft => Some(("num_steps", Meta::Count(self.t.steps.len()))),
            SampleFormat::Dpo => Some(("rationale", Meta::Text(&self.relabel.rationale))),
            SampleFormat::Sharegpt => None,
        };
        [
            ("original_prompt", Meta::Text(&self.t.original_prompt)),
            ("relabel_confidence", Meta::Float(self.relabel.confidence)),
        ]
        .into_iter()
        .chain(last)
    }
}

/// One sample envelope of the reference, for a trajectory relabeled with `relabel` and
/// weighted with `weight`.
pub fn package(t: &Trajectory, relabel: &Relabel, weight: f64, format: SampleFormat) -> Sample {
    let envelope = Envelope { t, relabel, format };
    let messages = |side| {
        let mut messages = Vec::new();
        envelope.messages(side, &mut |role, content| {
            messages.push(Message::new(role, render(t, content)))
        });
        messages
    };
    let mut metadata = JsonObject::new();
    for (key, value) in envelope.metadata() {
        let value = match value {
            Meta::Text(text) => Json::from(text),
            // Written as the envelopes always were: a number that is not finite as null.
            Meta::Float(f) if f.is_finite() => Json::from(f),
            Meta::Float(_) => Json::Null,
            Meta::Count(n) => Json::Number(Number::from(n as u64)),
        };
        metadata.insert(key, value);
    }
    Sample {
        source_trajectory_id: t.trajectory_id.clone(),
        format,
        hindsight_prompt: relabel.hindsight_prompt.clone(),
        weight,
        chosen: messages(Side::Chosen),
        rejected: messages(Side::Rejected),
        metadata,
    }
}

/// Buffers for writing a trajectory's envelopes as JSONL lines without building the samples:
/// the rebuilt response, which three of the messages hold, is escaped once per trajectory and
/// copied where it recurs. Reused from one trajectory to the next.
#[derive(Debug, Default)]
pub struct EnvelopeText {
    /// [`render_response`], escaped as the inside of a string literal.
    response: String,
    /// The action inputs, while they are written.
    scratch: String,
}

impl EnvelopeText {
    pub fn new() -> Self {
        Self::default()
    }

    /// Escapes the response of `t`; the result writes its envelopes.
    pub fn of<'a>(&'a mut self, t: &'a Trajectory) -> TrajectoryText<'a> {
        self.response.clear();
        let response = &mut self.response;
        content_pieces(t, Content::Response, &mut self.scratch, &mut |piece| {
            write_str_contents(piece, Style::Line, response)
        });
        TrajectoryText {
            t,
            response: &self.response,
            scratch: &mut self.scratch,
        }
    }
}

/// A trajectory with its response escaped (see [`EnvelopeText`]).
pub struct TrajectoryText<'a> {
    t: &'a Trajectory,
    response: &'a str,
    scratch: &'a mut String,
}

impl TrajectoryText<'_> {
    /// Appends `content` escaped as the inside of a string literal.
    fn write_content(&mut self, content: Content, out: &mut String) {
        match content {
            Content::Response => out.push_str(self.response),
            _ => content_pieces(self.t, content, self.scratch, &mut |piece| {
                write_str_contents(piece, Style::Line, out)
            }),
        }
    }

    /// Appends the JSONL line of [`package`]'s sample to `out`: every message's content
    /// written piece by piece into its string literal.
    pub fn write_envelope(
        &mut self,
        relabel: &Relabel,
        weight: f64,
        format: SampleFormat,
        out: &mut String,
    ) {
        let t = self.t;
        let envelope = Envelope { t, relabel, format };
        let head = Head {
            id: &t.trajectory_id,
            format,
            hindsight_prompt: &relabel.hindsight_prompt,
            weight,
        };
        write_sample_with(
            head,
            |side, out| {
                let mut first = true;
                envelope.messages(side, &mut |role, content| {
                    write_message(role, &mut first, out, |out| {
                        self.write_content(content, out)
                    })
                });
            },
            |out| {
                for (i, (key, value)) in envelope.metadata().enumerate() {
                    write_key(key, i == 0, out);
                    match value {
                        Meta::Text(s) => write_str_styled(s, Style::Line, out),
                        Meta::Float(f) => write_f64(f, out),
                        Meta::Count(n) => out.push_str(Decimal::new(n as u64).as_str()),
                    }
                }
            },
            out,
        );
    }
}

/// The scalar fields of a sample.
struct Head<'a> {
    id: &'a str,
    format: SampleFormat,
    hindsight_prompt: &'a str,
    weight: f64,
}

/// A sample's line: the fields of [`Sample`] in their order, the messages of each side written
/// by `messages` and the metadata members by `metadata`. A weight that is not finite is
/// `null`, as in a `serde_json` value.
fn write_sample_with(
    head: Head,
    mut messages: impl FnMut(Side, &mut String),
    metadata: impl FnOnce(&mut String),
    out: &mut String,
) {
    out.push_str("{\"source_trajectory_id\": ");
    write_str_styled(head.id, Style::Line, out);
    out.push_str(", \"format\": ");
    write_str_styled(head.format.as_str(), Style::Line, out);
    out.push_str(", \"hindsight_prompt\": ");
    write_str_styled(head.hindsight_prompt, Style::Line, out);
    out.push_str(", \"weight\": ");
    write_f64(head.weight, out);
    for side in [Side::Chosen, Side::Rejected] {
        out.push_str(", \"");
        out.push_str(side.key());
        out.push_str("\": [");
        messages(side, out);
        out.push(']');
    }
    out.push_str(", \"metadata\": {");
    metadata(out);
    out.push_str("}}");
}

/// One message of a list: `{"role": ..., "content": ...}`, the content's characters written by
/// `content` between the quotes.
fn write_message(
    role: &str,
    first: &mut bool,
    out: &mut String,
    content: impl FnOnce(&mut String),
) {
    out.push_str(if *first {
        "{\"role\": "
    } else {
        ", {\"role\": "
    });
    *first = false;
    write_str_styled(role, Style::Line, out);
    out.push_str(", \"content\": \"");
    content(out);
    out.push_str("\"}");
}

/// An object member's key (after a separator unless `first`) and the `": "` after it.
fn write_key(key: &str, first: bool, out: &mut String) {
    if !first {
        out.push_str(", ");
    }
    write_str_styled(key, Style::Line, out);
    out.push_str(": ");
}

/// A [`Json`] value written as one JSONL line (no newline): Python's
/// `json.dumps(value, ensure_ascii=False)`, except that U+0085, U+2028 and U+2029 are written
/// as `\u` escapes (as the reference fixtures have them), so that no line splitter that knows
/// Unicode line breaks cuts the line. Floats are written as Python writes them.
pub fn json_to_line(json: &Json) -> String {
    let mut out = String::new();
    write_styled(json, Style::Line, &mut out);
    out
}

/// A sample as one JSONL line (no newline), written as [`json_to_line`] writes lines.
pub fn sample_to_json_line(s: &Sample) -> String {
    let mut out = String::new();
    write_sample(s, &mut out);
    out
}

/// Appends [`sample_to_json_line`] of `s` to `out`, written straight from the struct.
pub fn write_sample(s: &Sample, out: &mut String) {
    let head = Head {
        id: &s.source_trajectory_id,
        format: s.format,
        hindsight_prompt: &s.hindsight_prompt,
        weight: s.weight,
    };
    write_sample_with(
        head,
        |side, out| {
            let list = match side {
                Side::Chosen => &s.chosen,
                Side::Rejected => &s.rejected,
            };
            let mut first = true;
            for m in list {
                write_message(&m.role, &mut first, out, |out| {
                    write_str_contents(&m.content, Style::Line, out)
                });
            }
        },
        |out| {
            for (i, (key, value)) in s.metadata.iter().enumerate() {
                write_key(key, i == 0, out);
                write_styled(value, Style::Line, out);
            }
        },
        out,
    );
}

/// The differential replay: rule-based Stage 1 and Stage 2 and the three envelopes packaged
/// with a fixed relabeling, one line per trajectory, shaped like the reference fixture
/// `tests/fixtures/reference/expected.jsonl`. Used by the `replay` command and the
/// differential test.
pub mod replay {
    use super::EnvelopeText;
    use crate::json::{write_f64, write_str_styled, Style};
    use crate::model::{ExtractedOutcome, FailureAnalysis, Relabel, SampleFormat, Trajectory};
    use crate::stages::detect::rules::{CompiledLexicon, RuleScan};
    use crate::stages::{detect, extract};
    use std::rc::Rc;

    /// Prefix of the fixed hindsight prompt (followed by the trajectory id).
    pub const HINDSIGHT_PREFIX: &str = "HINDSIGHT::";
    /// Rationale of the fixed relabeling.
    pub const RATIONALE: &str = "r";
    /// Confidence of the fixed relabeling.
    pub const CONFIDENCE: f64 = 0.75;

    /// The fixed relabeling of the reference fixtures.
    pub fn fixed_relabel(t: &Trajectory) -> Relabel {
        Relabel {
            hindsight_prompt: format!("{HINDSIGHT_PREFIX}{}", t.trajectory_id),
            is_valid_replay: true,
            rationale: RATIONALE.to_owned(),
            confidence: CONFIDENCE,
        }
    }

    /// The replay record of one trajectory, written as the fixture writes it (no newline):
    /// `trajectory_id`, `analysis`, `outcome`, `sft`, `dpo`, `sharegpt`, with the sample
    /// weight = the Stage 1 severity.
    pub fn replay_line_text(t: &Trajectory) -> String {
        let mut out = String::new();
        Replayer::new().write_line(t, &mut out);
        out
    }

    /// Writes replay lines for many trajectories: the reference lexicon compiled once, and
    /// one [`RuleScan`] of each trajectory's text shared by Stages 1 and 2.
    pub struct Replayer {
        lexicon: Rc<CompiledLexicon>,
        scan: RuleScan,
        text: EnvelopeText,
    }

    impl Default for Replayer {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Replayer {
        pub fn new() -> Self {
            Self::compiled(detect::rules::reference_compiled())
        }

        /// A replayer whose rule-based detection uses `lexicon`.
        pub fn with_lexicon(lexicon: &detect::rules::Lexicon) -> Self {
            Self::compiled(detect::rules::compiled(lexicon))
        }

        fn compiled(lexicon: Rc<CompiledLexicon>) -> Self {
            Replayer {
                lexicon,
                scan: RuleScan::new(),
                text: EnvelopeText::new(),
            }
        }

        /// Appends [`replay_line_text`] of `t` to `out`.
        pub fn write_line(&mut self, t: &Trajectory, out: &mut String) {
            self.scan.run(t, &self.lexicon);
            let analysis = detect::rules::detect_scanned(t, &self.lexicon, &self.scan);
            let outcome = extract::rules::extract_scanned(t, &self.scan);
            write_record(t, &analysis, &outcome, &mut self.text, out);
        }
    }

    /// The replay record, fields in the fixture's order.
    fn write_record(
        t: &Trajectory,
        analysis: &FailureAnalysis,
        outcome: &ExtractedOutcome,
        text: &mut EnvelopeText,
        out: &mut String,
    ) {
        let string = |s: &str, out: &mut String| write_str_styled(s, Style::Line, out);
        let strings = |items: &[String], out: &mut String| {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                string(item, out);
            }
            out.push(']');
        };
        out.push_str("{\"trajectory_id\": ");
        string(&t.trajectory_id, out);
        out.push_str(", \"analysis\": {\"is_failure\": ");
        out.push_str(bool_text(analysis.is_failure));
        out.push_str(", \"failure_type\": ");
        match analysis.failure_type {
            Some(f) => string(f.as_str(), out),
            None => out.push_str("null"),
        }
        out.push_str(", \"severity\": ");
        write_f64(analysis.severity, out);
        out.push_str(", \"explanation\": ");
        string(&analysis.explanation, out);
        out.push_str(", \"recoverable\": ");
        out.push_str(bool_text(analysis.recoverable));
        out.push_str("}, \"outcome\": {\"actual_achievements\": ");
        strings(&outcome.actual_achievements, out);
        out.push_str(", \"key_observations\": ");
        strings(&outcome.key_observations, out);
        out.push_str(", \"limitations\": ");
        string(&outcome.limitations, out);
        out.push('}');
        let relabel = fixed_relabel(t);
        let mut text = text.of(t);
        for format in SampleFormat::ALL {
            out.push_str(", \"");
            out.push_str(format.as_str());
            out.push_str("\": ");
            text.write_envelope(&relabel, analysis.severity, format, out);
        }
        out.push('}');
    }

    fn bool_text(b: bool) -> &'static str {
        if b {
            "true"
        } else {
            "false"
        }
    }

    /// [`replay_line_text`] with rule-based detection using `lexicon`.
    pub fn replay_line_text_with(t: &Trajectory, lexicon: &detect::rules::Lexicon) -> String {
        let mut out = String::new();
        Replayer::with_lexicon(lexicon).write_line(t, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Number;
    use crate::model::Step;
    use serde_json::Value;

    /// A sample as a tree, to look into.
    fn sample_to_value(s: &Sample) -> Value {
        serde_json::to_value(s).expect("a sample always serializes")
    }

    /// A replay line as a tree, to look into.
    fn replay_line(t: &Trajectory) -> Value {
        serde_json::from_str(&replay::replay_line_text(t)).expect("a replay line is JSON")
    }

    fn step(thought: &str, name: &str, input: JsonObject, observation: &str) -> Step {
        Step {
            thought: thought.to_owned(),
            action_name: name.to_owned(),
            action_input: input,
            observation: observation.to_owned(),
            call: None,
            kind: Default::default(),
        }
    }

    fn traj(steps: Vec<Step>, final_answer: &str) -> Trajectory {
        Trajectory {
            trajectory_id: "id-1".to_owned(),
            original_prompt: "Book a room".to_owned(),
            steps,
            final_answer: final_answer.to_owned(),
            failure_reason: String::new(),
            metadata: Default::default(),
            origin: None,
        }
    }

    fn input() -> JsonObject {
        let mut o = JsonObject::new();
        o.insert("q", Json::from("naïve"));
        o.insert("max", Json::from(74.0));
        o.insert("tiny", Json::from(1e-7));
        o.insert(
            "big",
            Json::Number(Number::int_from_literal("123456789012345678901234567890").unwrap()),
        );
        o
    }

    fn relabel() -> Relabel {
        Relabel {
            hindsight_prompt: "Find rooms".to_owned(),
            is_valid_replay: true,
            rationale: "because".to_owned(),
            confidence: 0.75,
        }
    }

    #[test]
    fn response_lists_steps_and_final_answer() {
        let t = traj(
            vec![
                step("look", "search", input(), "found"),
                step("", "noop", JsonObject::new(), ""),
            ],
            "done",
        );
        assert_eq!(
            render_response(&t),
            "Step 1: look\n  Action: search({\"q\": \"naïve\", \"max\": 74.0, \"tiny\": 1e-07, \
             \"big\": 123456789012345678901234567890})\n  Result: found\n\
             Step 2: \n  Action: noop({})\n  Result: \n\nFinal Answer: done"
        );
    }

    #[test]
    fn result_is_cut_at_three_hundred_code_points() {
        let exact = "ж".repeat(300);
        let t = traj(vec![step("", "a", JsonObject::new(), &exact)], "");
        assert!(render_response(&t).ends_with(&format!("Result: {exact}")));
        let long = format!("{exact}xyz");
        let t = traj(vec![step("", "a", JsonObject::new(), &long)], "");
        assert!(render_response(&t).ends_with(&format!("Result: {exact}")));
        // Raw observation, not trimmed.
        let t = traj(vec![step("", "a", JsonObject::new(), "  x  ")], "");
        assert!(render_response(&t).ends_with("Result:   x  "));
    }

    #[test]
    fn envelopes_have_the_reference_shape() {
        let t = traj(
            vec![
                step("look", "search", input(), "found"),
                step("t2", "noop", JsonObject::new(), "obs2"),
            ],
            "done",
        );
        let r = relabel();
        let sft = package(&t, &r, 0.5, SampleFormat::Sft);
        let response = render_response(&t);
        let line = sample_to_json_line(&sft);
        assert!(line.starts_with(
            "{\"source_trajectory_id\": \"id-1\", \"format\": \"sft\", \
             \"hindsight_prompt\": \"Find rooms\", \"weight\": 0.5, \"chosen\": [{\"role\": \"user\""
        ));
        assert!(line.ends_with(
            "\"rejected\": [], \"metadata\": {\"original_prompt\": \"Book a room\", \
             \"relabel_confidence\": 0.75, \"num_steps\": 2}}"
        ));
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            back,
            serde_json::json!({
                "source_trajectory_id": "id-1", "format": "sft", "hindsight_prompt": "Find rooms",
                "weight": 0.5,
                "chosen": [{"role": "user", "content": "Find rooms"},
                           {"role": "assistant", "content": response}],
                "rejected": [],
                "metadata": {"original_prompt": "Book a room", "relabel_confidence": 0.75,
                             "num_steps": 2}
            })
        );
        let dpo = sample_to_value(&package(&t, &r, 0.5, SampleFormat::Dpo));
        assert_eq!(dpo["rejected"][0]["content"], "Book a room");
        assert_eq!(dpo["rejected"][1]["content"], dpo["chosen"][1]["content"]);
        assert_eq!(
            dpo["metadata"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            vec!["original_prompt", "relabel_confidence", "rationale"]
        );
        let share = package(&t, &r, 0.5, SampleFormat::Sharegpt);
        let roles: Vec<&str> = share.chosen.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(
            roles,
            [
                "user",
                "assistant",
                "observation",
                "assistant",
                "observation",
                "assistant"
            ]
        );
        assert!(share.chosen[1].content.starts_with(
            "**Thought:** look\n**Action:** search\n**Input:** {\"q\": \"naïve\", \"max\": 74.0"
        ));
        assert_eq!(share.chosen[3].content, "**Thought:** t2\n**Action:** noop");
        assert_eq!(share.chosen[5].content, "done");
        assert!(share.rejected.is_empty());
        assert_eq!(share.metadata.len(), 2);
    }

    #[test]
    fn envelopes_written_in_pieces_are_the_packaged_samples() {
        let cases = [
            traj(
                vec![
                    step("look\u{2028}", "search", input(), "found \"x\"\u{85}"),
                    step("", "noop", JsonObject::new(), &"é".repeat(400)),
                ],
                "done\n",
            ),
            traj(vec![step("a", "b", JsonObject::new(), "c")], ""),
            traj(Vec::new(), "only an answer"),
            traj(Vec::new(), ""),
        ];
        let mut text = EnvelopeText::new();
        for t in &cases {
            let mut text = text.of(t);
            for (weight, format) in [(0.5, SampleFormat::Sft), (1e-7, SampleFormat::Dpo)]
                .into_iter()
                .chain([(f64::NAN, SampleFormat::Sharegpt), (1.0, SampleFormat::Sft)])
            {
                let sample = package(t, &relabel(), weight, format);
                let mut written = String::new();
                text.write_envelope(&relabel(), weight, format, &mut written);
                assert_eq!(written, sample_to_json_line(&sample), "{format:?}");
                assert_eq!(
                    serde_json::from_str::<Value>(&written).unwrap(),
                    sample_to_value(&sample)
                );
            }
        }
    }

    #[test]
    fn no_final_answer_means_no_final_turn() {
        let t = traj(vec![step("a", "b", JsonObject::new(), "c")], "");
        assert!(!render_response(&t).contains("Final Answer"));
        let share = package(&t, &relabel(), 0.3, SampleFormat::Sharegpt);
        assert_eq!(share.chosen.len(), 3);
    }

    #[test]
    fn lines_escape_unicode_line_breaks_and_write_python_floats() {
        let t = traj(
            vec![step(
                "a\u{2028}b",
                "n",
                JsonObject::new(),
                "x\u{85}y\u{2029}",
            )],
            "",
        );
        let line = sample_to_json_line(&package(&t, &relabel(), 1e-7, SampleFormat::Sft));
        assert!(line.contains("a\\u2028b"));
        assert!(line.contains("x\\u0085y\\u2029"));
        assert!(line.contains("\"weight\": 1e-07"));
        assert!(!line.contains('\n'));
        let back: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["chosen"][1]["content"], render_response(&t));
    }

    #[test]
    fn replay_line_uses_the_fixed_relabeling() {
        let mut t = traj(vec![step("i think", "n", JsonObject::new(), "")], "");
        t.failure_reason = String::new();
        let v = replay_line(&t);
        assert_eq!(v["analysis"]["failure_type"], "hallucination");
        assert_eq!(v["analysis"]["severity"], 0.4);
        assert_eq!(v["sft"]["weight"], 0.4);
        assert_eq!(v["sft"]["hindsight_prompt"], "HINDSIGHT::id-1");
        assert_eq!(v["dpo"]["metadata"]["rationale"], "r");
        assert_eq!(v["sharegpt"]["metadata"]["relabel_confidence"], 0.75);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "trajectory_id",
                "analysis",
                "outcome",
                "sft",
                "dpo",
                "sharegpt"
            ]
        );
        let t = traj(vec![step("", "n", JsonObject::new(), "")], "");
        assert_eq!(replay_line(&t)["analysis"]["failure_type"], Value::Null);
    }
}
