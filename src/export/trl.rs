//! TRL's conversational layouts: language modeling for `SFTTrainer` (`messages`) and
//! preference with an explicit prompt for `DPOTrainer` (`prompt` / `chosen` / `rejected`), both
//! with `tools` as a JSON string.
//!
//! Messages follow TRL's tool-calling example: an assistant message with `tool_calls`
//! (`{"type": "function", "function": {"name", "arguments"}}`, the arguments an object, which
//! the chat templates render with `tojson`), one `tool` message per call with the tool's `name`
//! and its result, and a final assistant message with the closing answer. Parallel calls share
//! one assistant message. The assistant's reasoning is the `content` of its tool-call message
//! when [`ExportOptions::thoughts`] is on, and left out otherwise. `weight` and `provenance`
//! are extra columns when asked (TRL's trainers use only the columns they know).
//!
//! `tools` is the list of `{"type": "function", "function": {...}}` schemas written as a JSON
//! string: TRL's trainers read it with `json.loads` when it is a string (`SFTTrainer` and
//! `DPOTrainer` tokenization), and a string column is never retyped by 🤗 datasets (no keys
//! padded with null, no date strings turned into datetimes, numbers exact).
//!
//! Integers beyond 64 bits in the messages are written as strings (see [`super::numbers`]);
//! the row's provenance lists them under `integers_as_strings`.
//!
//! The preference row is the paper's goal-contrastive pair: the same trajectory twice, once
//! under the hindsight goal it achieves (`chosen`) and once under the original goal it failed
//! (`rejected`). The two conversations are equal up to the user's goal, so the explicit
//! `prompt` is the conversation before it: the run's system message, or a system message with
//! empty content when the run had none (TRL needs a non-empty prompt: with an empty one its
//! dataset preparation stops, "Cannot apply chat template to an empty conversation"). `chosen`
//! and `rejected` start with the user's goal and go on with the same agent turns.

use super::dialogue::{ChatDialect, Dialogue};
use super::numbers::{integers_as_text, IntegerAsText};
use super::{tools, ExportItem, ExportOptions, Row};
use crate::json::{python_dumps, Json, JsonObject};

/// The conversation of `item` opening with `goal`.
pub fn messages(item: &ExportItem, goal: &str, options: &ExportOptions) -> Vec<Json> {
    Dialogue::of(&item.trajectory).chat_messages(goal, options, ChatDialect::Trl)
}

/// The `tools` column: the tool schemas as a JSON string.
pub fn tools_text(item: &ExportItem) -> Json {
    Json::from(python_dumps(&tools::column(&item.trajectory)))
}

/// Puts `column` into `o` with its wide integers as text, collecting them in `found`.
fn insert_column(o: &mut JsonObject, key: &str, column: Vec<Json>, found: &mut Vec<IntegerAsText>) {
    o.insert(key, integers_as_text(&Json::Array(column), key, found));
}

/// The `tools`, `weight` and `provenance` columns (the last two when asked), and the row.
fn finish(
    mut o: JsonObject,
    item: &ExportItem,
    options: &ExportOptions,
    found: Vec<IntegerAsText>,
) -> Row {
    o.insert("tools", tools_text(item));
    if options.provenance {
        o.insert("weight", Json::from(item.weight));
        let mut provenance = item.provenance.to_object();
        let fields = found.iter().map(|w| Json::from(w.field.as_str())).collect();
        provenance.insert("integers_as_strings", Json::Array(fields));
        o.insert("provenance", Json::Object(provenance));
    }
    Row {
        value: Json::Object(o),
        integers_as_text: found,
    }
}

/// The SFT row: `messages` opening with the item's goal, `tools`.
pub fn sft_row(item: &ExportItem, options: &ExportOptions) -> Row {
    let mut o = JsonObject::new();
    let mut found = Vec::new();
    insert_column(
        &mut o,
        "messages",
        messages(item, item.goal, options),
        &mut found,
    );
    finish(o, item, options, found)
}

/// The preference row: `prompt` (the system message, or an empty one), `chosen` opening with
/// the item's goal (the hindsight goal) and `rejected` with the trajectory's original prompt,
/// the rest of both the same trajectory; `tools`.
pub fn preference_row(item: &ExportItem, options: &ExportOptions) -> Row {
    let mut chosen = messages(item, item.goal, options);
    let mut rejected = messages(item, &item.trajectory.original_prompt, options);
    let is_user = |m: &Json| matches!(m, Json::Object(o) if o.get("role").and_then(Json::as_str) == Some("user"));
    let goal_at = chosen.iter().position(is_user).unwrap_or(0);
    let mut prompt: Vec<Json> = chosen.drain(..goal_at).collect();
    rejected.drain(..goal_at);
    if prompt.is_empty() {
        let mut system = JsonObject::new();
        system.insert("role", Json::from("system"));
        system.insert("content", Json::from(""));
        prompt.push(Json::Object(system));
    }
    let mut o = JsonObject::new();
    let mut found = Vec::new();
    insert_column(&mut o, "prompt", prompt, &mut found);
    insert_column(&mut o, "chosen", chosen, &mut found);
    insert_column(&mut o, "rejected", rejected, &mut found);
    finish(o, item, options, found)
}
