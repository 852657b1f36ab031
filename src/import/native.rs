//! The native schema (METHOD.md, "Input record"), checked by hand field by field in the
//! schema's order, so that a rejection names the field path (`steps[2].observation`).
//!
//! Stricter than the foreign formats: `null` is not an absent field here.

use super::{expected, path, Invalid, MISSING};
use crate::json::{Json, JsonObject};
use crate::model::{Step, Trajectory};

/// A string member: `Ok(None)` when absent and not `required`.
fn string_field(
    o: &JsonObject,
    prefix: &str,
    key: &str,
    required: bool,
) -> Result<Option<String>, Invalid> {
    match o.get(key) {
        None if required => Err(Invalid::at(path(prefix, key), MISSING)),
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Invalid::at(path(prefix, key), expected("a string", other))),
    }
}

fn required_string(o: &JsonObject, prefix: &str, key: &str) -> Result<String, Invalid> {
    Ok(string_field(o, prefix, key, true)?.unwrap_or_default())
}

/// An optional object member, empty when absent.
fn object_field(o: &JsonObject, prefix: &str, key: &str) -> Result<JsonObject, Invalid> {
    match o.get(key) {
        None => Ok(JsonObject::new()),
        Some(Json::Object(v)) => Ok(v.clone()),
        Some(other) => Err(Invalid::at(path(prefix, key), expected("an object", other))),
    }
}

/// Checks a record against the native schema.
pub(super) fn trajectory(value: &Json) -> Result<Trajectory, Invalid> {
    let Json::Object(o) = value else {
        return Err(Invalid::whole(expected("an object", value)));
    };
    let trajectory_id = string_field(o, "", "trajectory_id", false)?.unwrap_or_default();
    let original_prompt = required_string(o, "", "original_prompt")?;
    let steps = match o.get("steps") {
        None => return Err(Invalid::at("steps", MISSING)),
        Some(Json::Array(items)) if items.is_empty() => {
            return Err(Invalid::at(
                "steps",
                "expected at least one step, found an empty array",
            ))
        }
        Some(Json::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| step(item, &format!("steps[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => return Err(Invalid::at("steps", expected("an array", other))),
    };
    let final_answer = string_field(o, "", "final_answer", false)?.unwrap_or_default();
    let failure_reason = required_string(o, "", "failure_reason")?;
    let metadata = object_field(o, "", "metadata")?;
    Ok(Trajectory {
        trajectory_id,
        original_prompt,
        steps,
        final_answer,
        failure_reason,
        metadata,
        origin: None,
    })
}

fn step(value: &Json, prefix: &str) -> Result<Step, Invalid> {
    let Json::Object(o) = value else {
        return Err(Invalid::at(prefix, expected("an object", value)));
    };
    Ok(Step {
        thought: required_string(o, prefix, "thought")?,
        action_name: required_string(o, prefix, "action_name")?,
        action_input: object_field(o, prefix, "action_input")?,
        observation: required_string(o, prefix, "observation")?,
        call: None,
        kind: Default::default(),
    })
}
