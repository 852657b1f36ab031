//! LLaMA-Factory's ShareGPT layout with agent turns, and its `dataset_info.json` entry.
//!
//! A row: `conversations` (`from` / `value` turns), `system`, `tools` (a JSON string) and,
//! when asked, `weight` and `provenance` (LLaMA-Factory reads only the columns its
//! `dataset_info.json` entry maps, so extra columns are left alone).
//!
//! Turns: `human` (the goal), then for every tool call a `function_call` turn whose value is
//! the JSON string `{"name": ..., "arguments": {...}}` and an `observation` turn with the
//! result, then a `gpt` turn with the closing answer. LLaMA-Factory requires human and
//! observation turns at even positions and gpt and function_call turns at odd ones, so:
//! - parallel calls are written one call per function_call / observation pair, in order: the
//!   function formatter would take a list of calls in one turn, but some templates (GLM-4)
//!   refuse several calls, and a single observation turn would have to hold every result;
//! - the assistant's reasoning cannot be a gpt turn of its own between the goal and a call. It
//!   is left out by default; with [`ExportOptions::thoughts`] it is put in front of the call's
//!   JSON as `<think>\n…\n</think>\n\n`, the thought words LLaMA-Factory's function formatter
//!   cuts off before it reads the JSON (recent versions only);
//! - the conversation always ends with a gpt turn (see [`super::dialogue::closing`]).
//!
//! `system` is always written (empty when the run had none): the `dataset_info.json` entry
//! maps the column, and a column no row has would not exist at all.

use super::dialogue::Dialogue;
use super::{tools, ExportItem, ExportOptions, Row};
use crate::json::{python_dumps, Json, JsonObject};

/// The name of LLaMA-Factory's dataset registry file.
pub const DATASET_INFO_FILE: &str = "dataset_info.json";

/// What a thought is wrapped in when it is kept.
pub const THINK_OPEN: &str = "<think>\n";
pub const THINK_CLOSE: &str = "\n</think>\n\n";

fn turn(from: &str, value: impl Into<String>) -> Json {
    let mut o = JsonObject::new();
    o.insert("from", Json::from(from));
    o.insert("value", Json::from(value.into()));
    Json::Object(o)
}

/// The row of one sample. Every value of the source is inside a JSON string here (the calls,
/// `tools`), so no number is ever rewritten.
pub fn row(item: &ExportItem, options: &ExportOptions) -> Row {
    let dialogue = Dialogue::of(&item.trajectory);
    let mut conversations = vec![turn("human", item.goal)];
    let think = |thought: &str, value: &mut String| {
        if options.thoughts && !thought.is_empty() {
            value.push_str(THINK_OPEN);
            value.push_str(thought);
            value.push_str(THINK_CLOSE);
        }
    };
    for t in &dialogue.turns {
        if let Some(reply) = &t.reply {
            if reply.text.is_empty() {
                // The user spoke right after a tool result: LLaMA-Factory wants a gpt or
                // function_call turn there, so the message joins the turn before it.
                if let Some(Json::Object(last)) = conversations.last_mut() {
                    let before = last.get("value").and_then(Json::as_str).unwrap_or("");
                    let joined = format!("{before}\n\n{}", reply.user);
                    last.insert("value", Json::from(joined));
                }
                continue;
            }
            let mut value = String::new();
            think(&t.thought, &mut value);
            value.push_str(reply.text);
            conversations.push(turn("gpt", value));
            conversations.push(turn("human", reply.user));
            continue;
        }
        for (i, call) in t.calls.iter().enumerate() {
            let mut value_obj = JsonObject::new();
            value_obj.insert("name", Json::from(call.name));
            value_obj.insert("arguments", Json::Object(call.arguments.clone()));
            let mut value = String::new();
            if i == 0 {
                think(&t.thought, &mut value);
            }
            value.push_str(&python_dumps(&Json::Object(value_obj)));
            conversations.push(turn("function_call", value));
            conversations.push(turn("observation", call.result));
        }
    }
    let mut closing = String::new();
    think(&dialogue.closing.thought, &mut closing);
    closing.push_str(&dialogue.closing.text);
    conversations.push(turn("gpt", closing));

    let functions: Vec<Json> = tools::functions(&item.trajectory)
        .into_iter()
        .map(|f| Json::Object(with_properties(f)))
        .collect();

    let mut o = JsonObject::new();
    o.insert("conversations", Json::Array(conversations));
    o.insert("system", Json::from(dialogue.system.unwrap_or("")));
    o.insert("tools", Json::from(python_dumps(&Json::Array(functions))));
    if options.provenance {
        o.insert("weight", Json::from(item.weight));
        o.insert("provenance", item.provenance.to_json());
    }
    Row {
        value: Json::Object(o),
        integers_as_text: Vec::new(),
    }
}

/// LLaMA-Factory's tool formatter reads `parameters.properties` of every tool: a declared tool
/// without them gets an empty object schema.
fn with_properties(mut function: JsonObject) -> JsonObject {
    let mut parameters = match function.get("parameters") {
        Some(Json::Object(p)) => p.clone(),
        _ => JsonObject::new(),
    };
    if matches!(parameters.get("properties"), Some(Json::Object(_))) {
        return function;
    }
    if !matches!(parameters.get("type"), Some(Json::String(_))) {
        parameters.insert("type", Json::from("object"));
    }
    parameters.insert("properties", Json::Object(JsonObject::new()));
    function.insert("parameters", Json::Object(parameters));
    function
}

/// The `dataset_info.json` entry for `file_name`: ShareGPT formatting, the `conversations` /
/// `system` / `tools` columns and the role tags above.
pub fn dataset_info_entry(file_name: &str) -> Json {
    let pairs = |entries: &[(&str, &str)]| {
        let mut o = JsonObject::new();
        for (k, v) in entries {
            o.insert(*k, Json::from(*v));
        }
        Json::Object(o)
    };
    let mut entry = JsonObject::new();
    entry.insert("file_name", Json::from(file_name));
    entry.insert("formatting", Json::from("sharegpt"));
    entry.insert(
        "columns",
        pairs(&[
            ("messages", "conversations"),
            ("system", "system"),
            ("tools", "tools"),
        ]),
    );
    entry.insert(
        "tags",
        pairs(&[
            ("role_tag", "from"),
            ("content_tag", "value"),
            ("user_tag", "human"),
            ("assistant_tag", "gpt"),
            ("observation_tag", "observation"),
            ("function_tag", "function_call"),
            ("system_tag", "system"),
        ]),
    );
    Json::Object(entry)
}

/// A whole `dataset_info.json` registering `file_name` as `dataset_name`, pretty-printed.
pub fn dataset_info(dataset_name: &str, file_name: &str) -> String {
    let mut o = JsonObject::new();
    o.insert(dataset_name, dataset_info_entry(file_name));
    let mut text =
        serde_json::to_string_pretty(&Json::Object(o)).expect("a dataset_info entry serializes");
    text.push('\n');
    text
}
