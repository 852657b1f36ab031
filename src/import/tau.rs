//! tau-bench results: a list of `{task_id, reward, info, traj, trial}`, `traj` being the run's
//! OpenAI messages (system policy, simulated user, assistant tool calls, tool results).
//!
//! The goal is the first user message; the id is `task-{task_id}-trial-{trial}`. A reward
//! below 1 marks a failure; the reason is built from `info` when it holds details (an `error`,
//! `reward_info.info` with `r_actions` or `r_outputs` / `outputs`, the expected actions of
//! `reward_info.actions` or `task.actions`, the expected `task.outputs`). The metadata keeps
//! `task_id`, `trial`, `reward` and the simulated user's `task.instruction`.

use super::chat::{assemble, Conversation, Outcome};
use super::messages::read_messages;
use super::reward::{reward_reason, reward_succeeded};
use super::{
    function_tools, member, object, opt_array, opt_id, opt_number, opt_object, Invalid,
    SourceFormat,
};
use crate::json::{Json, JsonObject};
use crate::model::Trajectory;

pub(super) fn trajectory(value: &Json) -> Result<Trajectory, Invalid> {
    let o = object(value, "")?;
    let traj = opt_array(o, "", "traj")?.ok_or_else(|| Invalid::at("traj", super::MISSING))?;
    let info = opt_object(o, "", "info")?;
    if traj.is_empty() {
        let error = info
            .and_then(|i| i.get("error"))
            .and_then(Json::as_str)
            .map(|e| format!(" (info.error: {e})"))
            .unwrap_or_default();
        return Err(Invalid::at(
            "traj",
            format!("the run has no messages{error}"),
        ));
    }
    let mut conv = Conversation::default();
    read_messages(traj, "traj", &mut conv)?;
    let parts = conv.finish("traj")?;
    let task_id = opt_id(o, "", "task_id")?;
    let trial = opt_id(o, "", "trial")?;
    let trajectory_id = match (&task_id, &trial) {
        (Some(t), Some(r)) => format!("task-{t}-trial-{r}"),
        (Some(t), None) => format!("task-{t}"),
        _ => String::new(),
    };
    let reward = opt_number(o, "", "reward")?;
    let verdict = reward.map(reward_succeeded);
    let reason = info.and_then(|i| reward_reason(reward, i));
    let mut metadata = JsonObject::new();
    for key in ["task_id", "trial", "reward"] {
        if let Some(v) = member(o, key) {
            metadata.insert(key, v.clone());
        }
    }
    if let Some(instruction) = info
        .and_then(|i| i.get("task"))
        .and_then(Json::as_object)
        .and_then(|t| t.get("instruction"))
        .and_then(Json::as_str)
    {
        metadata.insert("task_instruction", Json::from(instruction));
    }
    Ok(assemble(
        SourceFormat::TauBench,
        parts,
        Outcome {
            trajectory_id,
            verdict,
            reason,
            tools: function_tools(member(o, "tools"), "tools")?,
            metadata,
        },
    ))
}
