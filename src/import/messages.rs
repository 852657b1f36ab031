//! Reading OpenAI chat messages (OpenAI messages records, tau-bench's `traj`, ToolBench's
//! `train_messages`) into a [`Conversation`].
//!
//! Roles: `system` / `developer` (system prompt), `user`, `assistant` (text, optional
//! `reasoning_content` / `reasoning`, `tool_calls` of `{id, function: {name, arguments}}`, or
//! the older single `function_call`), `tool` (a result with its `tool_call_id`) and the older
//! `function` / `ipython` (a result, matched by order). Content is a string, null, or a list of
//! parts: strings, `{type: text, text}` (OpenAI), or LLaMA-Factory's `{type, value}` parts of
//! type `text`, `reasoning` (the assistant's reasoning) and `tool_call` (a JSON text
//! `{"name", "arguments"}`, one call of the turn); parts of other types (images) carry no text.

use super::chat::{calls_in_text, Args, Call, Conversation};
use super::{expected, member, object, opt_id, opt_object, opt_string, path, req_string, Invalid};
use crate::json::{Json, JsonObject};

/// What a message's content holds: its text, and for an assistant its reasoning and calls
/// written as content parts.
#[derive(Debug, Default)]
struct Content {
    text: Vec<String>,
    reasoning: Vec<String>,
    calls: Vec<Call>,
}

/// The content of a message at `field`.
fn content(value: Option<&Json>, field: &str) -> Result<Content, Invalid> {
    let mut out = Content::default();
    match value {
        None | Some(Json::Null) => {}
        Some(Json::String(s)) => out.text.push(s.clone()),
        Some(Json::Array(parts)) => {
            for (i, part) in parts.iter().enumerate() {
                let at = format!("{field}[{i}]");
                match part {
                    Json::String(s) => out.text.push(s.clone()),
                    Json::Object(p) => {
                        let kind = opt_string(p, &at, "type")?;
                        let text = match opt_string(p, &at, "text")? {
                            Some(t) => Some(t),
                            None => opt_string(p, &at, "value")?,
                        };
                        match (kind.as_deref(), text) {
                            (Some("reasoning" | "thinking"), Some(t)) => out.reasoning.push(t),
                            (Some("tool_call"), Some(t)) => {
                                out.calls.extend(calls_in_text(&t, &path(&at, "value"))?)
                            }
                            (_, Some(t)) => out.text.push(t),
                            (_, None) => {}
                        }
                    }
                    other => {
                        return Err(Invalid::at(
                            at,
                            expected("a content part (a string or an object)", other),
                        ))
                    }
                }
            }
        }
        Some(other) => {
            return Err(Invalid::at(
                field,
                expected("a string, null or a list of content parts", other),
            ))
        }
    }
    Ok(out)
}

impl Content {
    fn joined(&self) -> String {
        self.text.join("\n")
    }
}

/// The text of a content (see the module documentation): its text parts joined by line
/// breaks.
pub(super) fn content_text(value: Option<&Json>, field: &str) -> Result<String, Invalid> {
    Ok(content(value, field)?.joined())
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
        let content = content(m.get("content"), &path(&field, "content"))?;
        match role.as_str() {
            "system" | "developer" => conv.system(content.joined()),
            "user" => conv.user(content.joined()),
            "assistant" => {
                let mut reasoning = content.reasoning.clone();
                for key in ["reasoning_content", "reasoning"] {
                    if let Some(r) = opt_string(m, &field, key)? {
                        reasoning.insert(0, r);
                        break;
                    }
                }
                let mut calls = content.calls;
                calls.extend(tool_calls(m, &field)?);
                let reasoning = (!reasoning.is_empty()).then(|| reasoning.join("\n\n"));
                conv.assistant(reasoning, content.text.join("\n"), calls);
            }
            "tool" | "function" | "ipython" => {
                let id = opt_string(m, &field, "tool_call_id")?;
                conv.result(id.as_deref(), content.joined())
                    .map_err(|reason| Invalid::at(field.clone(), reason))?;
            }
            other => {
                return Err(Invalid::at(
                    path(&field, "role"),
                    format!(
                        "unknown role '{other}' (expected system, user, assistant, tool or \
                         function)"
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// The tool calls of an assistant message.
fn tool_calls(m: &JsonObject, field: &str) -> Result<Vec<Call>, Invalid> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    #[test]
    fn content_parts_join_their_texts() {
        let parts = parse(
            r#"["a", {"type": "text", "text": "b"}, {"type": "text", "value": "c"}, {"type": "image_url", "image_url": {}}]"#,
        )
        .unwrap();
        assert_eq!(content_text(Some(&parts), "c").unwrap(), "a\nb\nc");
        assert_eq!(content_text(Some(&Json::Null), "c").unwrap(), "");
        assert_eq!(
            content_text(Some(&Json::from(3)), "c").unwrap_err().reason,
            "expected a string, null or a list of content parts, found a number"
        );
    }
}
