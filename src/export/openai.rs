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
//! An integer beyond 64 bits in a declared tool schema is written as a string (see
//! [`super::numbers`]); the arguments are strings already and keep every digit.

use super::dialogue::{ChatDialect, Dialogue};
use super::numbers::integers_as_text;
use super::{tools, ExportItem, ExportOptions, Row};
use crate::json::{Json, JsonObject};

/// The row of one sample.
pub fn row(item: &ExportItem, options: &ExportOptions) -> Row {
    let messages =
        Dialogue::of(&item.trajectory).chat_messages(item.goal, options, ChatDialect::OpenAi);
    let mut o = JsonObject::new();
    let mut found = Vec::new();
    o.insert("messages", Json::Array(messages));
    o.insert(
        "tools",
        integers_as_text(&tools::column(&item.trajectory), "tools", &mut found),
    );
    Row {
        value: Json::Object(o),
        integers_as_text: found,
    }
}
