//! The native schema (METHOD.md, "Input record"), checked by hand field by field in the
//! schema's order, so that a rejection names the field path (`steps[2].observation`).
//!
//! Stricter than the foreign formats: `null` is not an absent field here.
//!
//! A record is checked first, by reference, so that a rejected record is still whole for the
//! rejection's excerpt and explanation; a record that passes is then taken apart, its strings
//! and objects moved into the trajectory rather than copied.

use super::{expected, path, Invalid, MISSING};
use crate::json::{Json, JsonObject};
use crate::model::{Step, Trajectory};

/// Checks a string member: absent is an error only when `required`.
fn check_string(o: &JsonObject, prefix: &str, key: &str, required: bool) -> Result<(), Invalid> {
    match o.get(key) {
        None if required => Err(Invalid::at(path(prefix, key), MISSING)),
        None | Some(Json::String(_)) => Ok(()),
        Some(other) => Err(Invalid::at(path(prefix, key), expected("a string", other))),
    }
}

/// Checks an optional object member.
fn check_object(o: &JsonObject, prefix: &str, key: &str) -> Result<(), Invalid> {
    match o.get(key) {
        None | Some(Json::Object(_)) => Ok(()),
        Some(other) => Err(Invalid::at(path(prefix, key), expected("an object", other))),
    }
}

/// Checks a record against the native schema, reporting the first field at fault.
fn check(value: &Json) -> Result<(), Invalid> {
    let Json::Object(o) = value else {
        return Err(Invalid::whole(expected("an object", value)));
    };
    check_string(o, "", "trajectory_id", false)?;
    check_string(o, "", "original_prompt", true)?;
    match o.get("steps") {
        None => return Err(Invalid::at("steps", MISSING)),
        Some(Json::Array(items)) if items.is_empty() => {
            return Err(Invalid::at(
                "steps",
                "expected at least one step, found an empty array",
            ))
        }
        Some(Json::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                check_step(item, i)?;
            }
        }
        Some(other) => return Err(Invalid::at("steps", expected("an array", other))),
    }
    check_string(o, "", "final_answer", false)?;
    check_string(o, "", "failure_reason", true)?;
    check_object(o, "", "metadata")
}

fn check_step(value: &Json, i: usize) -> Result<(), Invalid> {
    let Json::Object(o) = value else {
        return Err(Invalid::at(
            format!("steps[{i}]"),
            expected("an object", value),
        ));
    };
    // The field's path is written only for a rejection.
    let fields = || {
        check_string(o, "", "thought", true)?;
        check_string(o, "", "action_name", true)?;
        check_object(o, "", "action_input")?;
        check_string(o, "", "observation", true)
    };
    fields().map_err(|e| Invalid {
        field: e.field.map(|f| format!("steps[{i}].{f}")),
        ..e
    })
}

/// Takes a checked record apart. Members outside the schema are dropped.
fn take(value: Json) -> Trajectory {
    let mut t = Trajectory {
        trajectory_id: String::new(),
        original_prompt: String::new(),
        steps: Vec::new(),
        final_answer: String::new(),
        failure_reason: String::new(),
        metadata: JsonObject::new(),
        origin: None,
    };
    let Json::Object(o) = value else {
        return t;
    };
    for (key, value) in o.into_entries() {
        match (key.as_str(), value) {
            ("trajectory_id", Json::String(s)) => t.trajectory_id = s,
            ("original_prompt", Json::String(s)) => t.original_prompt = s,
            ("steps", Json::Array(items)) => t.steps = items.into_iter().map(take_step).collect(),
            ("final_answer", Json::String(s)) => t.final_answer = s,
            ("failure_reason", Json::String(s)) => t.failure_reason = s,
            ("metadata", Json::Object(m)) => t.metadata = m,
            _ => {}
        }
    }
    t
}

fn take_step(value: Json) -> Step {
    let mut step = Step {
        thought: String::new(),
        action_name: String::new(),
        action_input: JsonObject::new(),
        observation: String::new(),
        call: None,
        kind: Default::default(),
    };
    if let Json::Object(o) = value {
        for (key, value) in o.into_entries() {
            match (key.as_str(), value) {
                ("thought", Json::String(s)) => step.thought = s,
                ("action_name", Json::String(s)) => step.action_name = s,
                ("action_input", Json::Object(m)) => step.action_input = m,
                ("observation", Json::String(s)) => step.observation = s,
                _ => {}
            }
        }
    }
    step
}

/// Checks a record against the native schema and maps it onto a trajectory, copying what it
/// keeps.
pub(super) fn trajectory(value: &Json) -> Result<Trajectory, Invalid> {
    check(value)?;
    Ok(take(value.clone()))
}

/// As [`trajectory`], moving what it keeps out of `value`; a rejected record is handed back
/// whole.
pub(super) fn into_trajectory(value: Json) -> Result<Trajectory, (Invalid, Json)> {
    match check(&value) {
        Ok(()) => Ok(take(value)),
        Err(invalid) => Err((invalid, value)),
    }
}
