//! tau-bench results: a list of `{task_id, reward, info, traj, trial}`, `traj` being the run's
//! OpenAI messages (system policy, simulated user, assistant tool calls, tool results).
//!
//! The goal is the first user message; the id is `task-{task_id}-trial-{trial}`. A reward
//! below 1 marks a failure; the reason is built from `info` when it holds details (an `error`,
//! `reward_info.info` with `r_actions` or `r_outputs` / `outputs`, the expected actions of
//! `reward_info.actions` or `task.actions`, the expected `task.outputs`). The metadata keeps
//! `task_id`, `trial`, `reward` and the simulated user's `task.instruction`.

use super::chat::{assemble, Conversation, Outcome};
use super::{
    function_tools, member, number_text, object, openai, opt_array, opt_id, opt_number, opt_object,
    reward_succeeded, Invalid, SourceFormat,
};
use crate::json::{python_dumps, Json, JsonObject, Number};
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
    openai::read_messages(traj, "traj", &mut conv)?;
    let parts = conv.finish("traj")?;
    let task_id = opt_id(o, "", "task_id")?;
    let trial = opt_id(o, "", "trial")?;
    let trajectory_id = match (&task_id, &trial) {
        (Some(t), Some(r)) => format!("task-{t}-trial-{r}"),
        (Some(t), None) => format!("task-{t}"),
        _ => String::new(),
    };
    let reward = opt_number(o, "", "reward")?;
    let succeeded = reward.is_some_and(reward_succeeded);
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
            succeeded,
            reason,
            tools: function_tools(member(o, "tools"), "tools")?,
            metadata,
        },
    ))
}

/// Why a run failed, from tau-bench's `info` (see the module documentation); `None` when it
/// holds no details. Shapes it does not know inside `info` are passed over, not rejected.
pub(super) fn reward_reason(reward: Option<&Number>, info: &JsonObject) -> Option<String> {
    let obj = |o: &JsonObject, key: &str| o.get(key).and_then(Json::as_object).cloned();
    let mut details = Vec::new();
    if let Some(error) = info.get("error").and_then(Json::as_str) {
        if !error.trim().is_empty() {
            details.push(format!("error: {error}"));
        }
    }
    let reward_info = obj(info, "reward_info");
    let task = obj(info, "task");
    let mut outputs_checked = false;
    if let Some(inner) = reward_info.as_ref().and_then(|r| obj(r, "info")) {
        if let Some(Json::Number(r)) = inner.get("r_actions") {
            if r.as_f64() < 1.0 {
                details.push(format!(
                    "the final database state differs from the one the expected actions produce \
                     (r_actions {})",
                    number_text(r)
                ));
            }
        }
        if let Some(outputs) = obj(&inner, "outputs") {
            outputs_checked = true;
            let missing: Vec<&str> = outputs
                .iter()
                .filter(|(_, v)| matches!(v, Json::Bool(false)))
                .map(|(k, _)| k)
                .collect();
            if !missing.is_empty() {
                details.push(format!(
                    "the replies did not give the expected output(s): {}",
                    missing.join(", ")
                ));
            }
        }
    }
    let actions = reward_info
        .as_ref()
        .and_then(|r| r.get("actions"))
        .or_else(|| task.as_ref().and_then(|t| t.get("actions")))
        .and_then(Json::as_array);
    if let Some(actions) = actions.filter(|a| !a.is_empty()) {
        let calls: Vec<String> = actions.iter().map(action_text).collect();
        details.push(format!("expected actions: {}", calls.join("; ")));
    }
    if !outputs_checked {
        if let Some(outputs) = task
            .as_ref()
            .and_then(|t| t.get("outputs"))
            .and_then(Json::as_array)
            .filter(|o| !o.is_empty())
        {
            let texts: Vec<String> = outputs
                .iter()
                .map(|v| v.as_str().map_or_else(|| python_dumps(v), str::to_owned))
                .collect();
            details.push(format!("expected outputs: {}", texts.join(", ")));
        }
    }
    if details.is_empty() {
        return None;
    }
    let head = match reward {
        Some(r) => format!("Reward {} (below 1)", number_text(r)),
        None => "The run failed".to_owned(),
    };
    Some(format!("{head}: {}.", details.join("; ")))
}

/// `name({"kwarg": value})` for an expected action `{name, kwargs}`.
fn action_text(action: &Json) -> String {
    match action.as_object() {
        Some(a) => {
            let name = a.get("name").and_then(Json::as_str).unwrap_or("?");
            let kwargs = a
                .get("kwargs")
                .map_or_else(|| "{}".to_owned(), python_dumps);
            format!("{name}({kwargs})")
        }
        None => python_dumps(action),
    }
}
