//! Stage 4: packaging a relabeled trajectory as the reference's three sample envelopes (sft,
//! dpo, sharegpt), and the replay line used for differential testing against the reference.

use crate::json::{write_python, write_python_str, Json, JsonObject};
use crate::model::{Message, Relabel, Sample, SampleFormat, Trajectory};
use crate::pytext;
use serde_json::{Map, Value};

/// Observations are quoted in the rebuilt response up to this many code points.
pub const RESULT_MAX_CHARS: usize = 300;

/// `action_input` as Python's `json.dumps(..., ensure_ascii=False)` writes it: keys in their
/// order, `", "` and `": "` separators, numbers as Python writes them.
pub fn action_input_json(input: &JsonObject) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in input.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_python_str(key, &mut out);
        out.push_str(": ");
        write_python(value, &mut out);
    }
    out.push('}');
    out
}

/// The assistant response rebuilt from the trajectory: per step `Step {i}: {thought}`,
/// `  Action: {name}({input})`, `  Result: {first 300 code points of the observation}`, then
/// `\nFinal Answer: {final answer}` when there is one, all joined by `\n`.
pub fn render_response(t: &Trajectory) -> String {
    let mut lines: Vec<String> = Vec::with_capacity(3 * t.steps.len() + 1);
    for (i, step) in t.steps.iter().enumerate() {
        lines.push(format!("Step {}: {}", i + 1, step.thought));
        lines.push(format!(
            "  Action: {}({})",
            step.action_name,
            action_input_json(&step.action_input)
        ));
        lines.push(format!(
            "  Result: {}",
            pytext::prefix(&step.observation, RESULT_MAX_CHARS)
        ));
    }
    if !t.final_answer.is_empty() {
        lines.push(format!("\nFinal Answer: {}", t.final_answer));
    }
    lines.join("\n")
}

/// The ShareGPT conversation: the hindsight prompt, then per step an assistant turn
/// (`**Thought:**`, `**Action:**`, and `**Input:**` when the input is non-empty) and an
/// `observation` turn, then the final answer as an assistant turn when there is one.
fn sharegpt_turns(t: &Trajectory, hindsight_prompt: &str) -> Vec<Message> {
    let mut turns = Vec::with_capacity(2 * t.steps.len() + 2);
    turns.push(Message::new("user", hindsight_prompt));
    for step in &t.steps {
        let mut content = format!(
            "**Thought:** {}\n**Action:** {}",
            step.thought, step.action_name
        );
        if !step.action_input.is_empty() {
            content.push_str("\n**Input:** ");
            content.push_str(&action_input_json(&step.action_input));
        }
        turns.push(Message::new("assistant", content));
        turns.push(Message::new("observation", step.observation.as_str()));
    }
    if !t.final_answer.is_empty() {
        turns.push(Message::new("assistant", t.final_answer.as_str()));
    }
    turns
}

/// One sample envelope of the reference, for a trajectory relabeled with `relabel` and
/// weighted with `weight`.
pub fn package(t: &Trajectory, relabel: &Relabel, weight: f64, format: SampleFormat) -> Sample {
    let hindsight = relabel.hindsight_prompt.as_str();
    let mut metadata = Map::new();
    metadata.insert(
        "original_prompt".to_owned(),
        Value::from(t.original_prompt.as_str()),
    );
    metadata.insert(
        "relabel_confidence".to_owned(),
        Value::from(relabel.confidence),
    );
    let (chosen, rejected) = match format {
        SampleFormat::Sft => {
            metadata.insert("num_steps".to_owned(), Value::from(t.steps.len()));
            let response = render_response(t);
            (
                vec![
                    Message::new("user", hindsight),
                    Message::new("assistant", response),
                ],
                Vec::new(),
            )
        }
        SampleFormat::Dpo => {
            metadata.insert(
                "rationale".to_owned(),
                Value::from(relabel.rationale.as_str()),
            );
            let response = render_response(t);
            (
                vec![
                    Message::new("user", hindsight),
                    Message::new("assistant", response.clone()),
                ],
                vec![
                    Message::new("user", t.original_prompt.as_str()),
                    Message::new("assistant", response),
                ],
            )
        }
        SampleFormat::Sharegpt => (sharegpt_turns(t, hindsight), Vec::new()),
    };
    Sample {
        source_trajectory_id: t.trajectory_id.clone(),
        format,
        hindsight_prompt: relabel.hindsight_prompt.clone(),
        weight,
        chosen,
        rejected,
        metadata,
    }
}

/// A sample as a JSON value, fields in the reference's order.
pub fn sample_to_value(s: &Sample) -> Value {
    serde_json::to_value(s).expect("a sample always serializes")
}

/// A JSON value written as one JSONL line (no newline): Python's
/// `json.dumps(value, ensure_ascii=False)`, except that U+0085, U+2028 and U+2029 are written
/// as `\u` escapes (as the reference fixtures have them), so that no line splitter that knows
/// Unicode line breaks cuts the line. Floats are written as Python writes them.
pub fn value_to_json_line(v: &Value) -> String {
    value_into_json_line(v.clone())
}

fn value_into_json_line(v: Value) -> String {
    let json: Json = serde_json::from_value(v).expect("any JSON value converts");
    escape_unicode_line_breaks(json.to_python_json())
}

/// A [`Json`] value as one JSONL line (no newline), written as [`value_to_json_line`] writes
/// lines: Python's `json.dumps` style, with U+0085, U+2028 and U+2029 escaped.
pub fn json_to_line(json: &Json) -> String {
    escape_unicode_line_breaks(json.to_python_json())
}

/// A sample as one JSONL line (no newline); see [`value_to_json_line`].
pub fn sample_to_json_line(s: &Sample) -> String {
    value_into_json_line(sample_to_value(s))
}

/// Replaces U+0085, U+2028 and U+2029 with their JSON escapes. In JSON text these characters
/// only occur inside strings, where the escape means the same character.
fn escape_unicode_line_breaks(line: String) -> String {
    if !line.contains(['\u{85}', '\u{2028}', '\u{2029}']) {
        return line;
    }
    let mut out = String::with_capacity(line.len() + 16);
    for c in line.chars() {
        match c {
            '\u{85}' => out.push_str("\\u0085"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The differential replay: rule-based Stage 1 and Stage 2 and the three envelopes packaged
/// with a fixed relabeling, one line per trajectory, shaped like the reference fixture
/// `tests/fixtures/reference/expected.jsonl`. Used by the `replay` command and the
/// differential test.
pub mod replay {
    use super::{package, sample_to_value, value_into_json_line};
    use crate::model::{Relabel, SampleFormat, Trajectory};
    use crate::stages::{detect, extract};
    use serde_json::{json, Value};

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

    /// The replay record of one trajectory: `trajectory_id`, `analysis`, `outcome`, `sft`,
    /// `dpo`, `sharegpt`, with the sample weight = the Stage 1 severity.
    pub fn replay_line(t: &Trajectory) -> Value {
        let analysis = detect::rules::detect(t);
        let outcome = extract::rules::extract(t);
        let relabel = fixed_relabel(t);
        let envelope = |format| sample_to_value(&package(t, &relabel, analysis.severity, format));
        json!({
            "trajectory_id": t.trajectory_id,
            "analysis": {
                "is_failure": analysis.is_failure,
                "failure_type": analysis.failure_type.map(|f| f.as_str()),
                "severity": analysis.severity,
                "explanation": analysis.explanation,
                "recoverable": analysis.recoverable,
            },
            "outcome": {
                "actual_achievements": outcome.actual_achievements,
                "key_observations": outcome.key_observations,
                "limitations": outcome.limitations,
            },
            "sft": envelope(SampleFormat::Sft),
            "dpo": envelope(SampleFormat::Dpo),
            "sharegpt": envelope(SampleFormat::Sharegpt),
        })
    }

    /// [`replay_line`] written as the fixture writes it (no newline).
    pub fn replay_line_text(t: &Trajectory) -> String {
        value_into_json_line(replay_line(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Number;
    use crate::model::Step;

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
        let v = replay::replay_line(&t);
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
        assert_eq!(
            replay::replay_line(&t)["analysis"]["failure_type"],
            Value::Null
        );
    }
}
