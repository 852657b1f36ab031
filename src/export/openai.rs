//! OpenAI's chat fine-tuning JSONL: `messages` and `tools`, nothing else (the fine-tuning
//! service refuses keys it does not know, so the sample weight and provenance stay in the run
//! report and the manifest).
//!
//! An assistant message carries the `tool_calls` of one source turn (parallel calls together),
//! each `{"id", "type": "function", "function": {"name", "arguments"}}` with the arguments as a
//! JSON string: the source's own id and argument text when the run was imported with them, so
//! an OpenAI-messages import comes back call for call, otherwise `call_<n>` and the arguments
//! written as JSON. Each call is answered by a `tool` message with its `tool_call_id`. The last
//! message is the assistant's closing answer; when it was derived from the last observation
//! rather than written by the agent, it has `"weight": 0` so that it is not trained on.

use super::dialogue::Dialogue;
use super::{tools, ExportItem, ExportOptions};
use crate::json::{Json, JsonObject};

/// The row of one sample.
pub fn row(item: &ExportItem, options: &ExportOptions) -> Json {
    let dialogue = Dialogue::of(item.trajectory);
    let mut messages = Vec::with_capacity(3 + 2 * dialogue.turns.len());
    let text = |role: &str, content: &str| {
        let mut o = JsonObject::new();
        o.insert("role", Json::from(role));
        o.insert("content", Json::from(content));
        o
    };
    if let Some(system) = dialogue.system {
        messages.push(Json::Object(text("system", system)));
    }
    messages.push(Json::Object(text("user", item.goal)));
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
                function.insert("arguments", Json::from(call.arguments_text.as_str()));
                let mut c = JsonObject::new();
                c.insert("id", Json::from(call.id.as_str()));
                c.insert("type", Json::from("function"));
                c.insert("function", Json::Object(function));
                Json::Object(c)
            })
            .collect();
        assistant.insert("tool_calls", Json::Array(calls));
        messages.push(Json::Object(assistant));
        for call in &turn.calls {
            let mut tool = JsonObject::new();
            tool.insert("role", Json::from("tool"));
            tool.insert("tool_call_id", Json::from(call.id.as_str()));
            tool.insert("content", Json::from(call.result));
            messages.push(Json::Object(tool));
        }
    }
    let mut last = text("assistant", &dialogue.closing.text);
    if dialogue.closing.derived {
        last.insert("weight", Json::from(0));
    }
    messages.push(Json::Object(last));

    let mut o = JsonObject::new();
    o.insert("messages", Json::Array(messages));
    o.insert(
        "tools",
        Json::Array(
            tools::functions(item.trajectory)
                .into_iter()
                .map(tools::wrap)
                .collect(),
        ),
    );
    Json::Object(o)
}
