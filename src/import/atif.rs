//! Harbor's Agent Trajectory Interchange Format: `{schema_version, session_id, agent, steps,
//! final_metrics?, extra?}`.
//!
//! Steps by `source`: `system` (system prompt), `user` (the first is the goal), `agent`
//! (`message`, `reasoning_content`, `tool_calls` of `{tool_call_id, function_name, arguments}`
//! and `observation.results` of `{source_call_id, content}`). An agent step with results but
//! no tool call (an action outside tool calling) becomes one step named `message` with input
//! `{"text": message}`. The id is `session_id`. Success comes from the generic signals in
//! `extra`, `final_metrics.extra` or `final_metrics` (in that order); when none says, the run is
//! a failure whose verdict is unknown, with the unknown reason unless `extra` states one. Tools come from
//! `agent.tool_definitions` when present; the metadata keeps `agent` and `schema_version`.

use super::chat::{assemble, Args, Call, Conversation, Outcome};
use super::messages::content_text;
use super::reward::verdict;
use super::{
    function_tools, member, object, opt_array, opt_id, opt_object, opt_string, path, req_array,
    req_string, stated_reason, Invalid, SourceFormat,
};
use crate::json::{Json, JsonObject};
use crate::model::Trajectory;

pub(super) fn trajectory(value: &Json) -> Result<Trajectory, Invalid> {
    let o = object(value, "")?;
    let steps = req_array(o, "", "steps")?;
    let mut conv = Conversation::default();
    for (i, step) in steps.iter().enumerate() {
        let field = format!("steps[{i}]");
        let s = object(step, &field)?;
        let source = req_string(s, &field, "source")?;
        let message = content_text(s.get("message"), &path(&field, "message"))?;
        match source.as_str() {
            "system" => conv.system(message),
            "user" => conv.user(message),
            "agent" => agent_step(s, &field, message, &mut conv)?,
            other => {
                return Err(Invalid::at(
                    path(&field, "source"),
                    format!("unknown source '{other}' (expected system, user or agent)"),
                ))
            }
        }
    }
    let parts = conv.finish("steps")?;
    let extra = opt_object(o, "", "extra")?;
    let metrics = opt_object(o, "", "final_metrics")?;
    let metrics_extra = match metrics {
        Some(m) => opt_object(m, "final_metrics", "extra")?,
        None => None,
    };
    let mut succeeded = None;
    let mut reason = None;
    for (obj, at) in [
        (extra, "extra"),
        (metrics_extra, "final_metrics.extra"),
        (metrics, "final_metrics"),
    ] {
        if let Some(obj) = obj {
            if succeeded.is_none() {
                succeeded = verdict(obj, at)?;
            }
            if reason.is_none() {
                reason = stated_reason(obj, at)?;
            }
        }
    }
    let agent = opt_object(o, "", "agent")?;
    let tools = match agent {
        Some(a) => function_tools(member(a, "tool_definitions"), "agent.tool_definitions")?,
        None => Vec::new(),
    };
    let mut metadata = JsonObject::new();
    if let Some(a) = agent {
        metadata.insert("agent", Json::Object(a.clone()));
    }
    if let Some(v) = member(o, "schema_version") {
        metadata.insert("schema_version", v.clone());
    }
    Ok(assemble(
        SourceFormat::Atif,
        parts,
        Outcome {
            trajectory_id: opt_id(o, "", "session_id")?.unwrap_or_default(),
            verdict: succeeded,
            reason,
            tools,
            metadata,
        },
    ))
}

fn agent_step(
    s: &JsonObject,
    field: &str,
    message: String,
    conv: &mut Conversation,
) -> Result<(), Invalid> {
    let reasoning = opt_string(s, field, "reasoning_content")?;
    let mut calls = Vec::new();
    for (j, item) in opt_array(s, field, "tool_calls")?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let at = format!("{field}.tool_calls[{j}]");
        let c = object(item, &at)?;
        calls.push(Call {
            id: opt_id(c, &at, "tool_call_id")?.unwrap_or_default(),
            name: req_string(c, &at, "function_name")?,
            arguments: match member(c, "arguments") {
                None => Args::Text(String::new()),
                Some(Json::String(text)) => Args::Text(text.clone()),
                Some(v) => Args::Value(v.clone()),
            },
        });
    }
    let mut results = Vec::new();
    if let Some(obs) = opt_object(s, field, "observation")? {
        let at = path(field, "observation");
        for (k, item) in opt_array(obs, &at, "results")?
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let at = format!("{at}.results[{k}]");
            let r = object(item, &at)?;
            let id = opt_id(r, &at, "source_call_id")?;
            let content = content_text(r.get("content"), &path(&at, "content"))?;
            results.push((at, id, content));
        }
    }
    if calls.is_empty() && !results.is_empty() {
        let contents: Vec<String> = results.into_iter().map(|(_, _, c)| c).collect();
        let mut input = JsonObject::new();
        input.insert("text", Json::String(message));
        conv.bare_action(reasoning, "message", input, contents.join("\n"));
        return Ok(());
    }
    conv.assistant(reasoning, message, calls);
    for (at, id, content) in results {
        conv.result(id.as_deref(), content)
            .map_err(|reason| Invalid::at(at, reason))?;
    }
    Ok(())
}
