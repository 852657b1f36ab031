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

use super::dialogue::{ChatDialect, Dialogue};
use super::{tools, ExportItem, ExportOptions};
use crate::json::{Json, JsonObject};

/// The conversation of `item` opening with `goal`.
pub fn messages(item: &ExportItem, goal: &str, options: &ExportOptions) -> Vec<Json> {
    Dialogue::of(item.trajectory).chat_messages(goal, options, ChatDialect::Trl)
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
    o.insert("tools", tools::column(item.trajectory));
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
    o.insert("tools", tools::column(item.trajectory));
    extras(&mut o, item, options);
    Json::Object(o)
}
