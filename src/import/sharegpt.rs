//! LLaMA-Factory's ShareGPT layout: `{conversations: [{from, value}], system?, tools?}`.
//!
//! `from` is `human` (or `user`), `gpt` (or `assistant`), `function_call`, `observation` (or
//! `tool`) or `system`. A `function_call` value is JSON text: one `{"name", "arguments"}`
//! object, or a list of them for parallel calls (one turn). An `observation` is the result of
//! the oldest call still waiting for one. `tools` is a JSON string (or an array) of
//! `{name, description, parameters}` schemas. Ids, success and reason follow the generic rules
//! (`trajectory_id` / `id`; the generic success signals; `failure_reason` / `error` / an
//! expected answer); `metadata` is kept.

use super::chat::{assemble, Args, Call, Conversation, Outcome};
use super::{
    expected, function_tools, member, object, opt_id, opt_string, path, req_array, req_string,
    source_metadata, stated_reason, success_signal, Invalid, SourceFormat,
};
use crate::json::{parse, Json};
use crate::model::Trajectory;

pub(super) fn trajectory(value: &Json) -> Result<Trajectory, Invalid> {
    let o = object(value, "")?;
    let turns = req_array(o, "", "conversations")?;
    let mut conv = Conversation::default();
    if let Some(system) = opt_string(o, "", "system")? {
        conv.system(system);
    }
    for (i, turn) in turns.iter().enumerate() {
        let field = format!("conversations[{i}]");
        let t = object(turn, &field)?;
        let from = req_string(t, &field, "from")?;
        let text = req_string(t, &field, "value")?;
        match from.as_str() {
            "human" | "user" => conv.user(text),
            "gpt" | "assistant" => conv.assistant(None, text, Vec::new()),
            "function_call" => {
                let calls = calls(&text, &path(&field, "value"))?;
                conv.assistant(None, String::new(), calls);
            }
            "observation" | "tool" => conv
                .result(None, text)
                .map_err(|reason| Invalid::at(field.clone(), reason))?,
            "system" => conv.system(text),
            other => {
                return Err(Invalid::at(
                    path(&field, "from"),
                    format!(
                        "unknown role '{other}' (expected human, gpt, function_call, \
                         observation or system)"
                    ),
                ))
            }
        }
    }
    let parts = conv.finish("conversations")?;
    let mut trajectory_id = String::new();
    for key in ["trajectory_id", "id"] {
        if let Some(id) = opt_id(o, "", key)? {
            trajectory_id = id;
            break;
        }
    }
    Ok(assemble(
        SourceFormat::ShareGpt,
        parts,
        Outcome {
            trajectory_id,
            succeeded: success_signal(o, "")?.unwrap_or(false),
            reason: stated_reason(o, "")?,
            tools: function_tools(member(o, "tools"), "tools")?,
            metadata: source_metadata(o, "")?,
        },
    ))
}

/// The calls of a `function_call` turn's value.
fn calls(text: &str, field: &str) -> Result<Vec<Call>, Invalid> {
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
                    expected("a function call object {\"name\", \"arguments\"}", item),
                ));
            };
            Ok(Call {
                id: opt_id(c, &at, "id")?.unwrap_or_default(),
                name: req_string(c, &at, "name")?,
                arguments: match member(c, "arguments") {
                    None => Args::Text(String::new()),
                    Some(Json::String(s)) => Args::Text(s.clone()),
                    Some(v) => Args::Value(v.clone()),
                },
            })
        })
        .collect()
}
