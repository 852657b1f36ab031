//! ToolBench answer files: `{answer_generation: {train_messages, final_answer, function,
//! query, finish_type, ...}, win?, ...}`.
//!
//! `train_messages` lists growing prefixes of the run (OpenAI messages with the older
//! `function_call` / `function` roles); the last, longest one is read (a flat message list is
//! taken as is). The goal is `query` (else the first user message); the tools are `function`.
//! The `Finish` call is not a step: its `final_answer` is the final answer (else
//! `answer_generation.final_answer`, JSON text or plain text), its thought goes to
//! `metadata.final_thought`. A run is a failure when `win` is false or it gave up (a `Finish`
//! with `return_type: give_up_and_restart`, or `finish_type` `give_up` /
//! `give_up_and_restart`); otherwise it is a success. The id is `query_id` or `id` when there
//! is one; the metadata keeps `finish_type` and `win`.

use super::chat::{assemble, Conversation, Outcome};
use super::{
    expected, function_tools, member, object, openai, opt_bool, opt_id, opt_object, opt_string,
    req_array, stated_reason, Invalid, SourceFormat, MISSING,
};
use crate::json::{parse, Json, JsonObject};
use crate::model::Trajectory;

/// The failure reason of a run that gave up.
const GAVE_UP: &str = "The agent gave up and asked to restart (Finish: give_up_and_restart).";

pub(super) fn trajectory(value: &Json) -> Result<Trajectory, Invalid> {
    let o = object(value, "")?;
    let ag = opt_object(o, "", "answer_generation")?
        .ok_or_else(|| Invalid::at("answer_generation", MISSING))?;
    let prefix = "answer_generation";
    let chains = req_array(ag, prefix, "train_messages")?;
    let (messages, field): (&[Json], String) = match chains.last() {
        None => {
            return Err(Invalid::at(
                "answer_generation.train_messages",
                "no messages: the run is empty",
            ))
        }
        Some(Json::Object(_)) => (chains, "answer_generation.train_messages".to_owned()),
        Some(Json::Array(messages)) => (
            messages,
            format!("answer_generation.train_messages[{}]", chains.len() - 1),
        ),
        Some(other) => {
            return Err(Invalid::at(
                format!("answer_generation.train_messages[{}]", chains.len() - 1),
                expected("a list of messages", other),
            ))
        }
    };
    let mut conv = Conversation::default();
    openai::read_messages(messages, &field, &mut conv)?;
    let mut parts = conv.finish(&field)?;
    if let Some(query) = opt_string(ag, prefix, "query")? {
        parts.goal = query;
    }

    let mut finish = None;
    parts.steps.retain(|s| {
        let keep = s.action_name != "Finish";
        if !keep {
            finish = Some(s.clone());
        }
        keep
    });
    if parts.steps.is_empty() {
        return Err(Invalid::at(
            field,
            "no tool call besides Finish: the run has no step to relabel",
        ));
    }
    let finish_input = match &finish {
        Some(step) => step.action_input.clone(),
        None => match opt_string(ag, prefix, "final_answer")? {
            Some(text) => match parse(&text) {
                Ok(Json::Object(o)) => o,
                _ if text.trim().is_empty() => JsonObject::new(),
                _ => {
                    let mut o = JsonObject::new();
                    o.insert("final_answer", Json::String(text));
                    o
                }
            },
            None => JsonObject::new(),
        },
    };
    let return_type = finish_input.get("return_type").and_then(Json::as_str);
    if let Some(answer) = finish_input.get("final_answer").and_then(Json::as_str) {
        if !answer.is_empty() {
            parts.final_answer = answer.to_owned();
        }
    }
    if let Some(thought) = finish.map(|s| s.thought).filter(|t| !t.trim().is_empty()) {
        let joined = match parts.metadata.get("final_thought").and_then(Json::as_str) {
            Some(rest) => format!("{thought}\n\n{rest}"),
            None => thought,
        };
        parts.metadata.insert("final_thought", Json::String(joined));
    }

    let finish_type = opt_string(ag, prefix, "finish_type")?;
    let gave_up = return_type == Some("give_up_and_restart")
        || matches!(
            finish_type.as_deref(),
            Some("give_up" | "give_up_and_restart")
        );
    let win = opt_bool(o, "", "win")?;
    let succeeded = !gave_up && win != Some(false);
    let reason = if gave_up {
        Some(GAVE_UP.to_owned())
    } else {
        stated_reason(o, "")?
    };
    let mut trajectory_id = String::new();
    for (obj, at, key) in [(o, "", "query_id"), (ag, prefix, "query_id"), (o, "", "id")] {
        if let Some(id) = opt_id(obj, at, key)? {
            trajectory_id = id;
            break;
        }
    }
    let mut metadata = JsonObject::new();
    if let Some(t) = finish_type {
        metadata.insert("finish_type", Json::String(t));
    }
    if let Some(w) = win {
        metadata.insert("win", Json::Bool(w));
    }
    Ok(assemble(
        SourceFormat::ToolBench,
        parts,
        Outcome {
            trajectory_id,
            succeeded,
            reason,
            tools: function_tools(member(ag, "function"), "answer_generation.function")?,
            metadata,
        },
    ))
}
