//! LLaMA-Factory's ShareGPT layout: `{conversations: [{from, value}], system?, tools?}`.
//!
//! `from` is `human` (or `user`), `gpt` (or `assistant`), `function_call`, `observation` (or
//! `tool`) or `system`. A `function_call` value is JSON text: one `{"name", "arguments"}`
//! object, or a list of them for parallel calls (one turn). An `observation` is the result of
//! the oldest call still waiting for one. `tools` is a JSON string (or an array) of
//! `{name, description, parameters}` schemas. Ids, success and reason follow the generic rules
//! (`trajectory_id` / `id`; the generic success signals; `failure_reason` / `error` / an
//! expected answer); `metadata` is kept.

use super::chat::{assemble, calls_in_text, Conversation, Outcome};
use super::reward::verdict;
use super::{
    function_tools, member, object, opt_id, opt_string, path, req_array, req_string,
    source_metadata, stated_reason, Invalid, SourceFormat,
};
use crate::json::Json;
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
                let calls = calls_in_text(&text, &path(&field, "value"))?;
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
            verdict: verdict(o, "")?,
            reason: stated_reason(o, "")?,
            tools: function_tools(member(o, "tools"), "tools")?,
            metadata: source_metadata(o, "")?,
        },
    ))
}
