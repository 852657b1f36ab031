//! A trajectory seen as a tool-calling conversation, the shape every structured export starts
//! from: the system prompt, assistant turns that each carry one or more tool calls with their
//! results or a reply to the user with the user's answer, and a closing answer.
//!
//! A reply to the user (a step of kind respond) is an assistant message followed by the
//! user's message, never a function call. A reply with no text (a user message that came
//! right after a tool result) is the user's message alone. When the run has no final answer
//! and its last step is a reply, that reply is the closing answer, and the user's last message
//! after it (tau-bench's `###STOP###`) is not written: the conversation ends with the
//! assistant.

use super::ExportOptions;
use crate::json::{Json, JsonObject};
use crate::model::Trajectory;
use crate::pytext;
use crate::stages::package::{action_input_json, RESULT_MAX_CHARS};
use std::collections::HashSet;

/// The closing answer written when the run left no final answer and observed nothing.
pub const EMPTY_CLOSING: &str = "Done.";

/// One tool call and its result.
#[derive(Debug, Clone, PartialEq)]
pub struct Call<'a> {
    /// The source's call id, or a generated `call_<n>` (n = the step's 1-based position).
    pub id: String,
    pub name: &'a str,
    /// The arguments as an object (the step's `action_input`).
    pub arguments: &'a JsonObject,
    /// The arguments as a JSON string: the source's text when the step came from an import
    /// that kept it, otherwise `action_input` written as JSON.
    pub arguments_text: String,
    pub result: &'a str,
}

/// One assistant turn: the reasoning that came with it and either the calls it made (several
/// when the source made parallel calls) or its reply to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn<'a> {
    /// The non-empty thoughts of the turn's steps, joined by newlines ("" when none).
    pub thought: String,
    /// The tool calls (none for a reply).
    pub calls: Vec<Call<'a>>,
    /// The reply to the user and the user's answer, for a step of kind respond.
    pub reply: Option<Reply<'a>>,
}

/// A reply to the user and what the user said next.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<'a> {
    /// The assistant's text ("" when the user spoke right after a tool result).
    pub text: &'a str,
    pub user: &'a str,
}

/// The assistant's last message.
#[derive(Debug, Clone, PartialEq)]
pub struct Closing {
    pub text: String,
    /// The reasoning that came with it ("" when none).
    pub thought: String,
    /// True when the run had no final answer and the text was derived from its last
    /// observation (or is [`EMPTY_CLOSING`]); such text was never produced by the agent.
    pub derived: bool,
}

impl Closing {
    /// The text, after the reasoning and a blank line when `thoughts` is on and there is one.
    pub fn with_thought(&self, thoughts: bool) -> String {
        with_thought(&self.thought, &self.text, thoughts)
    }
}

impl Reply<'_> {
    /// The text, after the turn's reasoning and a blank line when `thoughts` is on.
    pub fn with_thought(&self, thought: &str, thoughts: bool) -> String {
        with_thought(thought, self.text, thoughts)
    }
}

fn with_thought(thought: &str, text: &str, thoughts: bool) -> String {
    if !thoughts || thought.trim().is_empty() {
        return text.to_owned();
    }
    if text.is_empty() {
        return thought.to_owned();
    }
    format!("{thought}\n\n{text}")
}

/// Whether `text` is a JSON object, as OpenAI requires of a call's `arguments` string.
fn holds_object(text: &str) -> bool {
    matches!(crate::json::parse(text), Ok(crate::json::Json::Object(_)))
}

/// A trajectory as a tool-calling conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Dialogue<'a> {
    /// The imported run's system prompt, when it had a non-blank one.
    pub system: Option<&'a str>,
    pub turns: Vec<Turn<'a>>,
    pub closing: Closing,
}

impl<'a> Dialogue<'a> {
    pub fn of(t: &'a Trajectory) -> Dialogue<'a> {
        let ids = call_ids(t);
        let closing = closed(t);
        let mut turns: Vec<Turn<'a>> = Vec::new();
        let mut last_turn: Option<u32> = None;
        // A last reply that became the closing answer is not a turn.
        let written = t.steps.len() - usize::from(closing.from_reply);
        for (step, id) in t.steps[..written].iter().zip(ids) {
            if step.is_respond() {
                last_turn = None;
                turns.push(Turn {
                    thought: step.thought.clone(),
                    calls: Vec::new(),
                    reply: Some(Reply {
                        text: step.reply(),
                        user: &step.observation,
                    }),
                });
                continue;
            }
            // The source's own argument string when it holds a JSON object (so an import
            // round-trips byte for byte); otherwise (ReAct's `Search[...]`, free text) the
            // parsed arguments, which every layout accepts.
            let arguments_text = match &step.call {
                Some(call) if holds_object(&call.arguments) => call.arguments.clone(),
                _ => action_input_json(&step.action_input),
            };
            let call = Call {
                id,
                name: &step.action_name,
                arguments: &step.action_input,
                arguments_text,
                result: &step.observation,
            };
            let turn_no = step.call.as_ref().map(|c| c.turn);
            let joins = turn_no.is_some() && turn_no == last_turn && !turns.is_empty();
            last_turn = turn_no;
            if !joins {
                turns.push(Turn {
                    thought: String::new(),
                    calls: Vec::new(),
                    reply: None,
                });
            }
            let turn = turns.last_mut().expect("a turn was just pushed");
            if !step.thought.trim().is_empty() {
                if !turn.thought.is_empty() {
                    turn.thought.push('\n');
                }
                turn.thought.push_str(&step.thought);
            }
            turn.calls.push(call);
        }
        Dialogue {
            system: t
                .origin
                .as_ref()
                .and_then(|o| o.system.as_deref())
                .filter(|s| !s.trim().is_empty()),
            turns,
            closing: closing.closing,
        }
    }
}

/// The two chat layouts built from a [`Dialogue`]: they differ only in how a call and its
/// answer are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatDialect {
    /// OpenAI fine-tuning: calls with their `id` and the arguments as a JSON string, answers
    /// with `tool_call_id`, a derived closing answer with `weight: 0`.
    OpenAi,
    /// TRL: calls without ids and the arguments as an object, answers with the tool's `name`.
    Trl,
}

impl Dialogue<'_> {
    /// The conversation as chat messages opening with `goal`: the system prompt when there is
    /// one, the user goal, per turn an assistant message with the turn's `tool_calls` (and its
    /// reasoning as `content` when [`ExportOptions::thoughts`]) followed by one `tool` message
    /// per call, then the closing answer.
    pub fn chat_messages(
        &self,
        goal: &str,
        options: &ExportOptions,
        dialect: ChatDialect,
    ) -> Vec<Json> {
        let text = |role: &str, content: &str| {
            let mut o = JsonObject::new();
            o.insert("role", Json::from(role));
            o.insert("content", Json::from(content));
            o
        };
        let mut out = Vec::with_capacity(3 + 2 * self.turns.len());
        if let Some(system) = self.system {
            out.push(Json::Object(text("system", system)));
        }
        out.push(Json::Object(text("user", goal)));
        for turn in &self.turns {
            if let Some(reply) = &turn.reply {
                let said = reply.with_thought(&turn.thought, options.thoughts);
                if !said.is_empty() {
                    out.push(Json::Object(text("assistant", &said)));
                }
                out.push(Json::Object(text("user", reply.user)));
                continue;
            }
            let mut assistant = JsonObject::new();
            assistant.insert("role", Json::from("assistant"));
            if options.thoughts && !turn.thought.is_empty() {
                assistant.insert("content", Json::from(turn.thought.as_str()));
            }
            let calls = turn
                .calls
                .iter()
                .map(|call| {
                    let mut function = JsonObject::new();
                    function.insert("name", Json::from(call.name));
                    let mut c = JsonObject::new();
                    match dialect {
                        ChatDialect::OpenAi => {
                            function.insert("arguments", Json::from(call.arguments_text.as_str()));
                            c.insert("id", Json::from(call.id.as_str()));
                        }
                        ChatDialect::Trl => {
                            function.insert("arguments", Json::Object(call.arguments.clone()));
                        }
                    }
                    c.insert("type", Json::from("function"));
                    c.insert("function", Json::Object(function));
                    Json::Object(c)
                })
                .collect();
            assistant.insert("tool_calls", Json::Array(calls));
            out.push(Json::Object(assistant));
            for call in &turn.calls {
                let mut tool = JsonObject::new();
                tool.insert("role", Json::from("tool"));
                match dialect {
                    ChatDialect::OpenAi => {
                        tool.insert("tool_call_id", Json::from(call.id.as_str()))
                    }
                    ChatDialect::Trl => tool.insert("name", Json::from(call.name)),
                };
                tool.insert("content", Json::from(call.result));
                out.push(Json::Object(tool));
            }
        }
        let mut last = text("assistant", &self.closing.with_thought(options.thoughts));
        if dialect == ChatDialect::OpenAi && self.closing.derived {
            last.insert("weight", Json::from(0));
        }
        out.push(Json::Object(last));
        out
    }
}

/// The closing answer, and whether it is the run's last reply (which is then no turn).
struct Closed {
    closing: Closing,
    from_reply: bool,
}

/// The final answer (with the reasoning that came with it); or, when the run gave none and its
/// last step is a reply to the user with text, that reply; or the reasoning the run ended on;
/// or the last non-blank observation (trimmed and cut to [`RESULT_MAX_CHARS`] code points, as
/// the native response cuts results); or [`EMPTY_CLOSING`] when nothing was observed.
fn closed(t: &Trajectory) -> Closed {
    let thought = t.final_thought().to_owned();
    if !t.final_answer.trim().is_empty() {
        return Closed {
            closing: Closing {
                text: t.final_answer.clone(),
                thought,
                derived: false,
            },
            from_reply: false,
        };
    }
    if let Some(last) = t
        .steps
        .last()
        .filter(|s| s.is_respond() && !s.reply().trim().is_empty())
    {
        return Closed {
            closing: Closing {
                text: last.reply().to_owned(),
                thought: last.thought.clone(),
                derived: false,
            },
            from_reply: true,
        };
    }
    if !thought.trim().is_empty() {
        // The run ended on the agent's reasoning: its last words.
        return Closed {
            closing: Closing {
                text: thought,
                thought: String::new(),
                derived: false,
            },
            from_reply: false,
        };
    }
    let last = t
        .steps
        .iter()
        .rev()
        .map(|s| pytext::strip(&s.observation))
        .find(|o| !o.is_empty());
    Closed {
        closing: Closing {
            text: match last {
                Some(o) => pytext::prefix(o, RESULT_MAX_CHARS).to_owned(),
                None => EMPTY_CLOSING.to_owned(),
            },
            thought,
            derived: true,
        },
        from_reply: false,
    }
}

/// The closing answer of a trajectory: its final answer, its last reply, the reasoning it
/// ended on, its last observation, or [`EMPTY_CLOSING`] (see the module documentation).
pub fn closing(t: &Trajectory) -> Closing {
    closed(t).closing
}

/// One id per step: the source's id when it has one that no earlier step used, otherwise
/// `call_<n>` with n the step's 1-based position (suffixed `_2`, `_3`... in the rare case that
/// a source id already took that name). Deterministic, and unique within the trajectory.
fn call_ids(t: &Trajectory) -> Vec<String> {
    let mut taken: HashSet<&str> = HashSet::new();
    let kept: Vec<Option<&str>> = t
        .steps
        .iter()
        .map(|s| {
            s.call
                .as_ref()
                .map(|c| c.id.as_str())
                .filter(|id| !id.is_empty() && taken.insert(id))
        })
        .collect();
    let mut used: HashSet<String> = taken.iter().map(|s| (*s).to_owned()).collect();
    kept.into_iter()
        .enumerate()
        .map(|(i, id)| match id {
            Some(id) => id.to_owned(),
            None => {
                let base = format!("call_{}", i + 1);
                let mut candidate = base.clone();
                let mut k = 2;
                while used.contains(&candidate) {
                    candidate = format!("{base}_{k}");
                    k += 1;
                }
                used.insert(candidate.clone());
                candidate
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Step, ToolCall};

    fn step(thought: &str, name: &str, observation: &str, call: Option<(&str, u32)>) -> Step {
        Step {
            thought: thought.into(),
            action_name: name.into(),
            action_input: JsonObject::new(),
            observation: observation.into(),
            call: call.map(|(id, turn)| ToolCall {
                id: id.into(),
                arguments: "{}".into(),
                turn,
            }),
            kind: Default::default(),
        }
    }

    fn traj(steps: Vec<Step>, final_answer: &str) -> Trajectory {
        Trajectory {
            trajectory_id: "t".into(),
            original_prompt: "p".into(),
            steps,
            final_answer: final_answer.into(),
            failure_reason: String::new(),
            metadata: Default::default(),
            origin: None,
        }
    }

    #[test]
    fn consecutive_calls_of_one_turn_share_it() {
        let t = traj(
            vec![
                step("plan", "a", "1", Some(("x", 0))),
                step("  ", "b", "2", Some(("y", 0))),
                step("more", "c", "3", Some(("z", 0))),
                step("", "d", "4", Some(("", 1))),
                step("", "e", "5", Some(("", 0))),
                step("", "f", "6", None),
                step("", "g", "7", None),
            ],
            "ok",
        );
        let d = Dialogue::of(&t);
        let shape: Vec<Vec<&str>> = d
            .turns
            .iter()
            .map(|turn| turn.calls.iter().map(|c| c.name).collect())
            .collect();
        assert_eq!(
            shape,
            [
                vec!["a", "b", "c"],
                vec!["d"],
                vec!["e"],
                vec!["f"],
                vec!["g"]
            ]
        );
        assert_eq!(d.turns[0].thought, "plan\nmore");
        assert_eq!(d.turns[1].thought, "");
    }

    #[test]
    fn ids_are_the_source_s_or_generated_and_unique() {
        let t = traj(
            vec![
                step("", "a", "", Some(("call_2", 0))),
                step("", "b", "", Some(("", 1))),
                step("", "c", "", Some(("dup", 2))),
                step("", "d", "", Some(("dup", 3))),
                step("", "e", "", None),
            ],
            "ok",
        );
        let ids: Vec<String> = Dialogue::of(&t)
            .turns
            .into_iter()
            .flat_map(|turn| turn.calls.into_iter().map(|c| c.id))
            .collect();
        assert_eq!(ids, ["call_2", "call_2_2", "dup", "call_4", "call_5"]);
    }

    #[test]
    fn arguments_text_is_the_source_s_or_written_as_json() {
        let mut t = traj(vec![step("", "a", "", None)], "ok");
        t.steps[0]
            .action_input
            .insert("n", crate::json::Json::from(2.0));
        assert_eq!(
            Dialogue::of(&t).turns[0].calls[0].arguments_text,
            "{\"n\": 2.0}"
        );
        t.steps[0].call = Some(ToolCall {
            id: "c".into(),
            arguments: "{\"n\":2}".into(),
            turn: 0,
        });
        assert_eq!(
            Dialogue::of(&t).turns[0].calls[0].arguments_text,
            "{\"n\":2}"
        );
    }

    #[test]
    fn closing_is_the_final_answer_or_derived() {
        let t = traj(vec![step("", "a", "seen", None)], "answer");
        assert_eq!(
            closing(&t),
            Closing {
                text: "answer".into(),
                thought: String::new(),
                derived: false
            }
        );
        let long = format!("  {}tail  ", "ж".repeat(RESULT_MAX_CHARS));
        let t = traj(
            vec![step("", "a", &long, None), step("", "b", " \n ", None)],
            "  ",
        );
        assert_eq!(
            closing(&t),
            Closing {
                text: "ж".repeat(RESULT_MAX_CHARS),
                thought: String::new(),
                derived: true
            }
        );
        let t = traj(vec![step("", "a", "", None)], "");
        assert_eq!(closing(&t).text, EMPTY_CLOSING);
        assert!(closing(&t).derived);
    }
}
