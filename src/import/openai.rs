//! OpenAI chat messages with tool calls: one record per run, `{messages, tools?, ...}` (or a
//! bare list of messages).
//!
//! Roles: `system` / `developer` (system prompt), `user`, `assistant` (text, optional
//! `reasoning_content` / `reasoning`, `tool_calls` of `{id, function: {name, arguments}}`, or
//! the older single `function_call`), `tool` (a result with its `tool_call_id`) and the older
//! `function` (a result, matched by order). Record fields: `trajectory_id` / `id` /
//! `conversation_id` for the id; `tools` (or the older `functions`); the generic success
//! signals; `failure_reason` / `error` / an expected answer, or a tau-bench style `info` with
//! reward details, for the reason; `metadata` and `reward` are kept in the metadata.

use super::chat::{assemble, Args, Call, Conversation, Outcome};
use super::{
    content_text, function_tools, member, object, opt_id, opt_number, opt_object, opt_string, path,
    req_array, req_string, source_metadata, stated_reason, success_signal, tau, Invalid,
    SourceFormat,
};
use crate::json::{Json, JsonObject};
use crate::model::Trajectory;

pub(super) fn trajectory(value: &Json) -> Result<Trajectory, Invalid> {
    let empty = JsonObject::new();
    let (o, messages) = match value {
        Json::Array(items) => (&empty, items.as_slice()),
        other => {
            let o = object(other, "")?;
            (o, req_array(o, "", "messages")?)
        }
    };
    let mut conv = Conversation::default();
    read_messages(messages, "messages", &mut conv)?;
    let parts = conv.finish("messages")?;
    let mut tools = function_tools(member(o, "tools"), "tools")?;
    if tools.is_empty() {
        tools = function_tools(member(o, "functions"), "functions")?;
    }
    let mut trajectory_id = String::new();
    for key in ["trajectory_id", "id", "conversation_id"] {
        if let Some(id) = opt_id(o, "", key)? {
            trajectory_id = id;
            break;
        }
    }
    let succeeded = success_signal(o, "")?.unwrap_or(false);
    let reward = opt_number(o, "", "reward")?;
    let reason = match stated_reason(o, "")? {
        Some(r) => Some(r),
        None => match opt_object(o, "", "info")? {
            Some(info) => tau::reward_reason(reward, info),
            None => None,
        },
    };
    let mut metadata = source_metadata(o, "")?;
    if let Some(r) = reward {
        metadata.insert("reward", Json::Number(r.clone()));
    }
    Ok(assemble(
        SourceFormat::OpenAiMessages,
        parts,
        Outcome {
            trajectory_id,
            succeeded,
            reason,
            tools,
            metadata,
        },
    ))
}

/// Feeds a list of OpenAI messages (at `prefix`) to `conv`.
pub(super) fn read_messages(
    messages: &[Json],
    prefix: &str,
    conv: &mut Conversation,
) -> Result<(), Invalid> {
    for (i, message) in messages.iter().enumerate() {
        let field = format!("{prefix}[{i}]");
        let m = object(message, &field)?;
        let role = req_string(m, &field, "role")?;
        let content = || content_text(m.get("content"), &path(&field, "content"));
        match role.as_str() {
            "system" | "developer" => conv.system(content()?),
            "user" => conv.user(content()?),
            "assistant" => {
                let reasoning = match opt_string(m, &field, "reasoning_content")? {
                    Some(r) => Some(r),
                    None => opt_string(m, &field, "reasoning")?,
                };
                let calls = calls(m, &field)?;
                conv.assistant(reasoning, content()?, calls);
            }
            "tool" | "function" | "ipython" => {
                let id = opt_string(m, &field, "tool_call_id")?;
                conv.result(id.as_deref(), content()?)
                    .map_err(|reason| Invalid::at(field.clone(), reason))?;
            }
            other => {
                return Err(Invalid::at(
                    path(&field, "role"),
                    format!(
                    "unknown role '{other}' (expected system, user, assistant, tool or function)"
                ),
                ))
            }
        }
    }
    Ok(())
}

/// The tool calls of an assistant message.
fn calls(m: &JsonObject, field: &str) -> Result<Vec<Call>, Invalid> {
    let mut calls = Vec::new();
    if let Some(items) = super::opt_array(m, field, "tool_calls")? {
        for (j, item) in items.iter().enumerate() {
            let at = format!("{field}.tool_calls[{j}]");
            let c = object(item, &at)?;
            let id = opt_id(c, &at, "id")?.unwrap_or_default();
            let f = opt_object(c, &at, "function")?
                .ok_or_else(|| Invalid::at(path(&at, "function"), super::MISSING))?;
            calls.push(function(f, &path(&at, "function"), id)?);
        }
    }
    if let Some(f) = opt_object(m, field, "function_call")? {
        calls.push(function(f, &path(field, "function_call"), String::new())?);
    }
    Ok(calls)
}

/// `{name, arguments}`: the arguments a string as OpenAI sends them, or already a value.
fn function(f: &JsonObject, at: &str, id: String) -> Result<Call, Invalid> {
    let name = req_string(f, at, "name")?;
    let arguments = match member(f, "arguments") {
        None => Args::Text(String::new()),
        Some(Json::String(s)) => Args::Text(s.clone()),
        Some(other) => Args::Value(other.clone()),
    };
    Ok(Call {
        id,
        name,
        arguments,
    })
}
