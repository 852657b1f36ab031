//! Building a trajectory from a conversation, turn by turn: the mapping rules every chat
//! format shares (see the module documentation of [`super`]).

use super::{Invalid, SourceFormat, UNKNOWN_FAILURE};
use crate::json::{parse, python_dumps, Json, JsonObject};
use crate::model::{Origin, Step, StepKind, ToolCall, Trajectory};

/// A tool call's arguments as the source holds them.
#[derive(Debug, Clone)]
pub(super) enum Args {
    /// A string, normally JSON text (OpenAI's layout).
    Text(String),
    /// A JSON value (ATIF, ShareGPT's parsed call).
    Value(Json),
}

/// One tool call of an assistant turn.
#[derive(Debug, Clone)]
pub(super) struct Call {
    pub id: String,
    pub name: String,
    pub arguments: Args,
}

/// The arguments as given (a string) and as an action input (an object).
pub(super) fn arguments(args: Args) -> (String, JsonObject) {
    match args {
        Args::Text(text) => {
            if text.trim().is_empty() {
                return (text, JsonObject::new());
            }
            let input = match parse(&text) {
                Ok(Json::Object(o)) => o,
                Ok(other) => single_input(other),
                Err(_) => single_input(Json::String(text.clone())),
            };
            (text, input)
        }
        Args::Value(Json::String(text)) => arguments(Args::Text(text)),
        Args::Value(Json::Null) => (String::new(), JsonObject::new()),
        Args::Value(Json::Object(o)) => {
            let raw = python_dumps(&Json::Object(o.clone()));
            (raw, o)
        }
        Args::Value(other) => (python_dumps(&other), single_input(other)),
    }
}

fn single_input(value: Json) -> JsonObject {
    let mut o = JsonObject::new();
    o.insert("input", value);
    o
}

/// A conversation being turned into a trajectory.
#[derive(Debug, Default)]
pub(super) struct Conversation {
    goal: Option<String>,
    system: Vec<String>,
    steps: Vec<Step>,
    /// Per step: whether it has its observation (a reply to the user always has one).
    answered: Vec<bool>,
    /// Assistant texts since the last step; `true` marks reasoning text.
    pending: Vec<(bool, String)>,
    turns: u32,
}

/// What a conversation made.
#[derive(Debug)]
pub(super) struct Parts {
    pub goal: String,
    pub system: Option<String>,
    pub steps: Vec<Step>,
    pub final_answer: String,
    /// The reasoning that came with the final answer.
    pub final_thought: String,
}

impl Conversation {
    pub fn system(&mut self, text: String) {
        if !text.trim().is_empty() {
            self.system.push(text);
        }
    }

    /// A user message: the first is the goal; a later one answers the assistant's reply
    /// before it (a step of kind respond, see the module documentation of [`super`]).
    pub fn user(&mut self, text: String) {
        if self.goal.is_none() {
            self.goal = Some(text);
            return;
        }
        let spoke = self.pending.iter().any(|(reasoning, _)| !reasoning);
        if !spoke && self.pending.is_empty() {
            // Nothing said since the last user text: this message continues it.
            if let Some(goal) = self.goal.as_mut().filter(|_| self.steps.is_empty()) {
                join(goal, &text);
                return;
            }
            if let Some(last) = self.steps.last_mut().filter(|s| s.is_respond()) {
                join(&mut last.observation, &text);
                return;
            }
        }
        let (reasoning, said): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|p| p.0);
        let texts = |parts: Vec<(bool, String)>| {
            parts
                .into_iter()
                .map(|(_, t)| t)
                .collect::<Vec<_>>()
                .join("\n\n")
        };
        self.steps
            .push(Step::respond(texts(reasoning), texts(said), text));
        self.answered.push(true);
    }

    /// An assistant turn: its reasoning (when the source keeps it apart), its text and its
    /// tool calls.
    pub fn assistant(&mut self, reasoning: Option<String>, text: String, calls: Vec<Call>) {
        let turn = self.turns;
        self.turns += 1;
        if let Some(r) = reasoning.filter(|r| !r.trim().is_empty()) {
            self.pending.push((true, r));
        }
        if !text.trim().is_empty() {
            self.pending.push((false, text));
        }
        if calls.is_empty() {
            return;
        }
        let thought = self.take_thought();
        for (i, call) in calls.into_iter().enumerate() {
            let (raw, action_input) = arguments(call.arguments);
            self.steps.push(Step {
                thought: if i == 0 {
                    thought.clone()
                } else {
                    String::new()
                },
                action_name: call.name,
                action_input,
                observation: String::new(),
                call: Some(ToolCall {
                    id: call.id,
                    arguments: raw,
                    turn,
                }),
                kind: StepKind::Tool,
            });
            self.answered.push(false);
        }
    }

    /// An action the source records without a tool call (ATIF allows it): one step named
    /// `name` with `input`, and its observation.
    pub fn bare_action(
        &mut self,
        reasoning: Option<String>,
        name: &str,
        input: JsonObject,
        observation: String,
    ) {
        self.turns += 1;
        if let Some(r) = reasoning.filter(|r| !r.trim().is_empty()) {
            self.pending.push((true, r));
        }
        let thought = self.take_thought();
        self.steps.push(Step {
            thought,
            action_name: name.to_owned(),
            action_input: input,
            observation,
            call: None,
            kind: StepKind::Tool,
        });
        self.answered.push(true);
    }

    fn take_thought(&mut self) -> String {
        let texts: Vec<String> = self.pending.drain(..).map(|(_, t)| t).collect();
        texts.join("\n\n")
    }

    /// A tool result for the call `id` (see the matching rule); `Err` says why no call can
    /// take it.
    pub fn result(&mut self, id: Option<&str>, content: String) -> Result<(), String> {
        let id = id.filter(|id| !id.is_empty());
        let with_id = |answered: bool| {
            id.and_then(|id| {
                (0..self.steps.len()).find(|&i| {
                    self.answered[i] == answered
                        && self.steps[i].call.as_ref().is_some_and(|c| c.id == id)
                })
            })
        };
        let slot = match with_id(false) {
            Some(i) => i,
            None => {
                if let (Some(id), Some(_)) = (id, with_id(true)) {
                    return Err(format!("a second result for tool call {id}"));
                }
                match self.answered.iter().position(|a| !a) {
                    Some(i) => i,
                    None => return Err("no tool call is waiting for this result".to_owned()),
                }
            }
        };
        self.answered[slot] = true;
        self.steps[slot].observation = content;
        Ok(())
    }

    /// The parts, or why there are none: `field` names where the messages are.
    pub fn finish(self, field: &str) -> Result<Parts, Invalid> {
        let Some(goal) = self.goal else {
            return Err(Invalid::at(field, "no user message: the run has no goal"));
        };
        let (reasoning, answer): (Vec<_>, Vec<_>) = self.pending.into_iter().partition(|p| p.0);
        let final_answer: Vec<String> = answer.into_iter().map(|(_, t)| t).collect();
        let final_thought: Vec<String> = reasoning.into_iter().map(|(_, t)| t).collect();
        if self.steps.is_empty() && final_answer.is_empty() && final_thought.is_empty() {
            return Err(Invalid::at(
                field,
                "no assistant message: the agent did nothing to relabel",
            ));
        }
        Ok(Parts {
            goal,
            system: (!self.system.is_empty()).then(|| self.system.join("\n\n")),
            steps: self.steps,
            final_answer: final_answer.join("\n\n"),
            final_thought: final_thought.join("\n\n"),
        })
    }
}

/// Appends a continuation to a user text, after a blank line.
fn join(text: &mut String, more: &str) {
    if !text.is_empty() && !more.is_empty() {
        text.push_str("\n\n");
    }
    text.push_str(more);
}

/// How an importer fills in the rest of a trajectory.
pub(super) struct Outcome {
    pub trajectory_id: String,
    /// What the source says: success, failure, or nothing (`None`: a failure whose verdict is
    /// unknown).
    pub verdict: Option<bool>,
    /// The reason the data gives, if any (ignored for successes).
    pub reason: Option<String>,
    pub tools: Vec<Json>,
    /// Source fields to keep.
    pub metadata: JsonObject,
}

/// The trajectory made of `parts` and `outcome`.
pub(super) fn assemble(format: SourceFormat, parts: Parts, outcome: Outcome) -> Trajectory {
    let succeeded = outcome.verdict == Some(true);
    let failure_reason = if succeeded {
        String::new()
    } else {
        outcome.reason.unwrap_or_else(|| UNKNOWN_FAILURE.to_owned())
    };
    Trajectory {
        trajectory_id: outcome.trajectory_id,
        original_prompt: parts.goal,
        steps: parts.steps,
        final_answer: parts.final_answer,
        failure_reason,
        metadata: outcome.metadata,
        origin: Some(Origin {
            format: format.id().to_owned(),
            system: parts.system,
            tools: outcome.tools,
            succeeded,
            verdict_unknown: outcome.verdict.is_none(),
            final_thought: parts.final_thought,
        }),
    }
}

/// The calls a JSON text holds: one `{"name", "arguments"}` object, or a list of them
/// (ShareGPT's `function_call` turn, LLaMA-Factory's `tool_call` content part).
pub(super) fn calls_in_text(text: &str, field: &str) -> Result<Vec<Call>, Invalid> {
    let value = parse(text)
        .map_err(|e| Invalid::at(field, format!("the function call is not valid JSON: {e}")))?;
    let (items, listed): (Vec<&Json>, bool) = match &value {
        Json::Array(items) => (items.iter().collect(), true),
        other => (vec![other], false),
    };
    if items.is_empty() {
        return Err(Invalid::at(field, "the function call list is empty"));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(j, item)| {
            let at = if listed {
                format!("{field}[{j}]")
            } else {
                field.to_owned()
            };
            let Json::Object(c) = item else {
                return Err(Invalid::at(
                    at,
                    super::expected("a function call object {\"name\", \"arguments\"}", item),
                ));
            };
            Ok(Call {
                id: super::opt_id(c, &at, "id")?.unwrap_or_default(),
                name: super::req_string(c, &at, "name")?,
                arguments: match super::member(c, "arguments") {
                    None => Args::Text(String::new()),
                    Some(Json::String(s)) => Args::Text(s.clone()),
                    Some(v) => Args::Value(v.clone()),
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, name: &str, args: &str) -> Call {
        Call {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments: Args::Text(args.to_owned()),
        }
    }

    #[test]
    fn arguments_rules() {
        let (raw, input) = arguments(Args::Text(r#"{"b": 1, "a": [2]}"#.into()));
        assert_eq!(raw, r#"{"b": 1, "a": [2]}"#);
        assert_eq!(input.keys().collect::<Vec<_>>(), ["b", "a"]);
        let (_, input) = arguments(Args::Text("[1, 2]".into()));
        assert_eq!(python_dumps(&Json::Object(input)), r#"{"input": [1, 2]}"#);
        let (_, input) = arguments(Args::Text("not json".into()));
        assert_eq!(
            python_dumps(&Json::Object(input)),
            r#"{"input": "not json"}"#
        );
        let (raw, input) = arguments(Args::Text("  ".into()));
        assert_eq!((raw.as_str(), input.len()), ("  ", 0));
        let (raw, input) = arguments(Args::Value(
            crate::json::parse(r#"{"q":"é","n":1.0}"#).unwrap(),
        ));
        assert_eq!(raw, r#"{"q": "é", "n": 1.0}"#);
        assert_eq!(input.len(), 2);
        let (raw, input) = arguments(Args::Value(Json::from(7)));
        assert_eq!(
            (raw.as_str(), python_dumps(&Json::Object(input)).as_str()),
            ("7", r#"{"input": 7}"#)
        );
    }

    #[test]
    fn results_by_id_then_by_order() {
        let mut c = Conversation::default();
        c.user("goal".into());
        c.assistant(
            None,
            "think".into(),
            vec![call("a", "f", "{}"), call("b", "g", "{}")],
        );
        c.result(Some("b"), "B".into()).unwrap();
        assert_eq!(
            c.result(Some("b"), "again".into()).unwrap_err(),
            "a second result for tool call b"
        );
        c.result(None, "A".into()).unwrap();
        assert_eq!(
            c.result(Some("zz"), "x".into()).unwrap_err(),
            "no tool call is waiting for this result"
        );
        c.assistant(None, "done".into(), vec![]);
        let p = c.finish("messages").unwrap();
        assert_eq!(p.steps[0].observation, "A");
        assert_eq!(p.steps[1].observation, "B");
        assert_eq!(p.steps[0].thought, "think");
        assert_eq!(p.steps[1].thought, "");
        assert_eq!(p.steps[1].call.as_ref().unwrap().turn, 0);
        assert_eq!(p.final_answer, "done");
    }

    #[test]
    fn replies_to_the_user_are_steps_answered_by_the_user() {
        let mut c = Conversation::default();
        c.system("sys".into());
        c.user("goal".into());
        c.user("more of the goal".into());
        c.assistant(Some("ask".into()), "Which order?".into(), vec![]);
        c.user("Order #1".into());
        c.user("the blue one".into());
        c.assistant(
            Some("plan".into()),
            "Looking.".into(),
            vec![call("", "f", "")],
        );
        c.result(None, "found".into()).unwrap();
        // A user message right after a tool result: a reply with no text.
        c.user("hurry".into());
        c.assistant(Some("why".into()), "Here.".into(), vec![]);
        let p = c.finish("m").unwrap();
        assert_eq!(p.goal, "goal\n\nmore of the goal");
        assert_eq!(p.steps.len(), 3);
        assert!(p.steps[0].is_respond());
        assert_eq!(p.steps[0].thought, "ask");
        assert_eq!(p.steps[0].reply(), "Which order?");
        assert_eq!(p.steps[0].observation, "Order #1\n\nthe blue one");
        assert_eq!(p.steps[1].thought, "plan\n\nLooking.");
        assert_eq!(p.steps[1].call.as_ref().unwrap().turn, 1);
        assert!(p.steps[2].is_respond());
        assert_eq!(
            (p.steps[2].reply(), p.steps[2].observation.as_str()),
            ("", "hurry")
        );
        assert_eq!(p.final_answer, "Here.");
        assert_eq!(p.final_thought, "why");
        assert_eq!(p.system.as_deref(), Some("sys"));
    }

    #[test]
    fn a_run_needs_a_goal_and_an_assistant_message() {
        let c = Conversation::default();
        assert_eq!(
            c.finish("messages").unwrap_err(),
            Invalid::at("messages", "no user message: the run has no goal")
        );
        let mut c = Conversation::default();
        c.user("g".into());
        assert_eq!(
            c.finish("messages").unwrap_err().reason,
            "no assistant message: the agent did nothing to relabel"
        );
        // Talk only: the answer is the final answer, and there is no step.
        let mut c = Conversation::default();
        c.user("g".into());
        c.assistant(None, "answer".into(), vec![]);
        let p = c.finish("messages").unwrap();
        assert!(p.steps.is_empty());
        assert_eq!(p.final_answer, "answer");
    }
}
