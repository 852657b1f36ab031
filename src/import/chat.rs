//! Building a trajectory from a conversation, turn by turn: the mapping rules every chat
//! format shares (see the module documentation of [`super`]).

use super::{Invalid, SourceFormat, UNKNOWN_FAILURE};
use crate::json::{parse, python_dumps, Json, JsonObject};
use crate::model::{Origin, Step, ToolCall, Trajectory};

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
    answered: Vec<bool>,
    /// Assistant texts since the last tool call; `true` marks reasoning text.
    pending: Vec<(bool, String)>,
    turns: u32,
    user_turns: Vec<Json>,
}

/// What a conversation made.
#[derive(Debug)]
pub(super) struct Parts {
    pub goal: String,
    pub system: Option<String>,
    pub steps: Vec<Step>,
    pub final_answer: String,
    /// `user_turns` and `final_thought`, when there are any.
    pub metadata: JsonObject,
}

impl Conversation {
    pub fn system(&mut self, text: String) {
        if !text.trim().is_empty() {
            self.system.push(text);
        }
    }

    /// A user message: the first is the goal, later ones are kept in `user_turns`.
    pub fn user(&mut self, text: String) {
        if self.goal.is_none() {
            self.goal = Some(text);
        } else {
            let mut turn = JsonObject::new();
            turn.insert("before_turn", Json::from(i64::from(self.turns)));
            turn.insert("content", Json::String(text));
            self.user_turns.push(Json::Object(turn));
        }
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
        if self.steps.is_empty() {
            return Err(Invalid::at(
                field,
                "no tool call: the run has no step to relabel",
            ));
        }
        let mut metadata = JsonObject::new();
        if !self.user_turns.is_empty() {
            metadata.insert("user_turns", Json::Array(self.user_turns));
        }
        let (reasoning, answer): (Vec<_>, Vec<_>) = self.pending.into_iter().partition(|p| p.0);
        let final_answer: Vec<String> = answer.into_iter().map(|(_, t)| t).collect();
        let final_thought: Vec<String> = reasoning.into_iter().map(|(_, t)| t).collect();
        if !final_thought.is_empty() {
            metadata.insert("final_thought", Json::String(final_thought.join("\n\n")));
        }
        Ok(Parts {
            goal,
            system: (!self.system.is_empty()).then(|| self.system.join("\n\n")),
            steps: self.steps,
            final_answer: final_answer.join("\n\n"),
            metadata,
        })
    }
}

/// How an importer fills in the rest of a trajectory.
pub(super) struct Outcome {
    pub trajectory_id: String,
    pub succeeded: bool,
    /// The reason the data gives, if any (ignored for successes).
    pub reason: Option<String>,
    pub tools: Vec<serde_json::Value>,
    /// Source fields to keep; the conversation's own (`user_turns`, ...) are added after.
    pub metadata: JsonObject,
}

/// The trajectory made of `parts` and `outcome`.
pub(super) fn assemble(format: SourceFormat, parts: Parts, outcome: Outcome) -> Trajectory {
    let mut metadata = outcome.metadata;
    for (k, v) in parts.metadata.iter() {
        metadata.insert(k, v.clone());
    }
    let failure_reason = if outcome.succeeded {
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
        metadata,
        origin: Some(Origin {
            format: format.id().to_owned(),
            system: parts.system,
            tools: outcome.tools,
            succeeded: outcome.succeeded,
        }),
    }
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
    fn texts_without_calls_join_the_next_thought_and_later_users_are_kept() {
        let mut c = Conversation::default();
        c.system("sys".into());
        c.user("goal".into());
        c.assistant(None, "Which order?".into(), vec![]);
        c.user("Order #1".into());
        c.assistant(
            Some("plan".into()),
            "Looking.".into(),
            vec![call("", "f", "")],
        );
        c.assistant(Some("why".into()), "Here.".into(), vec![]);
        let p = c.finish("m").unwrap();
        assert_eq!(p.steps[0].thought, "Which order?\n\nplan\n\nLooking.");
        assert_eq!(p.steps[0].call.as_ref().unwrap().turn, 1);
        assert_eq!(p.final_answer, "Here.");
        assert_eq!(
            python_dumps(&Json::Object(p.metadata)),
            r#"{"user_turns": [{"before_turn": 1, "content": "Order #1"}], "final_thought": "why"}"#
        );
        assert_eq!(p.system.as_deref(), Some("sys"));
    }

    #[test]
    fn a_run_needs_a_goal_and_a_step() {
        let c = Conversation::default();
        assert_eq!(
            c.finish("messages").unwrap_err(),
            Invalid::at("messages", "no user message: the run has no goal")
        );
        let mut c = Conversation::default();
        c.user("g".into());
        c.assistant(None, "answer".into(), vec![]);
        assert_eq!(
            c.finish("messages").unwrap_err().reason,
            "no tool call: the run has no step to relabel"
        );
    }
}
