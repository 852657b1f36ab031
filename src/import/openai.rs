//! OpenAI chat messages with tool calls: one record per run, `{messages, tools?, ...}` (or a
//! bare list of messages).
//!
//! The messages are read as [`super::messages`] says (roles, content parts, LLaMA-Factory's
//! typed `{type, value}` parts with reasoning and tool calls). Record fields: `trajectory_id` / `id` /
//! `conversation_id` for the id; `tools` (or the older `functions`); the generic success
//! signals (else a stated failure, else the verdict is unknown); `failure_reason` / `error` /
//! an expected answer, or a tau-bench style `info` with reward details, for the reason;
//! `metadata` and `reward` are kept in the metadata.

use super::chat::{assemble, Conversation, Outcome};
use super::messages::read_messages;
use super::reward::{reward_reason, verdict};
use super::{
    function_tools, member, object, opt_id, opt_number, opt_object, req_array, source_metadata,
    stated_reason, Invalid, SourceFormat,
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
    let verdict = verdict(o, "")?;
    let reward = opt_number(o, "", "reward")?;
    let reason = match stated_reason(o, "")? {
        Some(r) => Some(r),
        None => match opt_object(o, "", "info")? {
            Some(info) => reward_reason(reward, info),
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
            verdict,
            reason,
            tools,
            metadata,
        },
    ))
}
