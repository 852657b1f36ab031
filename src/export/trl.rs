//! TRL's conversational layouts: language-modeling SFT (`messages`) and preference with an
//! implicit prompt (`chosen` / `rejected`), both with a `tools` column.
//!
//! Messages follow TRL's tool-calling example: an assistant message with `tool_calls`
//! (`{"type": "function", "function": {"name", "arguments"}}`, the arguments an object), one
//! `tool` message per call with the tool's `name` and its result, and a final assistant message
//! with the closing answer. Parallel calls share one assistant message. The assistant's
//! reasoning is the `content` of its tool-call message when [`ExportOptions::thoughts`] is on,
//! and left out otherwise. `weight` and `provenance` are extra columns when asked (TRL's
//! trainers use only the columns they know).
//!
//! The preference row is the paper's goal-contrastive pair: the same trajectory twice, `chosen`
//! opening with the hindsight goal it achieves and `rejected` with the original goal it failed.
//! The two conversations differ only in that user message, so there is no prompt shared by
//! both sides to write as an explicit `prompt`: the prompt is implicit.

use super::dialogue::Dialogue;
use super::{tools, ExportItem, ExportOptions};
use crate::json::{Json, JsonObject};

fn message(role: &str, content: &str) -> JsonObject {
    let mut o = JsonObject::new();
    o.insert("role", Json::from(role));
    o.insert("content", Json::from(content));
    o
}

/// The conversation of `item` opening with `goal`.
pub fn messages(item: &ExportItem, goal: &str, options: &ExportOptions) -> Vec<Json> {
    let dialogue = Dialogue::of(item.trajectory);
    let mut out = Vec::with_capacity(3 + 2 * dialogue.turns.len());
    if let Some(system) = dialogue.system {
        out.push(Json::Object(message("system", system)));
    }
    out.push(Json::Object(message("user", goal)));
    for turn in &dialogue.turns {
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
                function.insert("arguments", Json::Object(call.arguments.clone()));
                let mut c = JsonObject::new();
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
            tool.insert("name", Json::from(call.name));
            tool.insert("content", Json::from(call.result));
            out.push(Json::Object(tool));
        }
    }
    out.push(Json::Object(message("assistant", &dialogue.closing.text)));
    out
}

fn tools_column(item: &ExportItem) -> Json {
    Json::Array(
        tools::functions(item.trajectory)
            .into_iter()
            .map(tools::wrap)
            .collect(),
    )
}

fn extras(o: &mut JsonObject, item: &ExportItem, options: &ExportOptions) {
    if options.provenance {
        o.insert("weight", Json::from(item.weight));
        o.insert("provenance", item.provenance.to_json());
    }
}

/// The SFT row: `messages` opening with the item's goal, `tools`.
pub fn sft_row(item: &ExportItem, options: &ExportOptions) -> Json {
    let mut o = JsonObject::new();
    o.insert("messages", Json::Array(messages(item, item.goal, options)));
    o.insert("tools", tools_column(item));
    extras(&mut o, item, options);
    Json::Object(o)
}

/// The preference row: `chosen` opens with the item's goal (the hindsight goal), `rejected`
/// with the trajectory's original prompt; everything else is the same on both sides.
pub fn preference_row(item: &ExportItem, options: &ExportOptions) -> Json {
    let mut o = JsonObject::new();
    o.insert("chosen", Json::Array(messages(item, item.goal, options)));
    o.insert(
        "rejected",
        Json::Array(messages(item, &item.trajectory.original_prompt, options)),
    );
    o.insert("tools", tools_column(item));
    extras(&mut o, item, options);
    Json::Object(o)
}
