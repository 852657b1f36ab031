//! Reading verdicts and rewards: the generic success signals of the JSON formats, tau-bench's
//! reward and its `info` details.

use super::{number_text, opt_bool, opt_number, opt_string, Invalid};
use crate::json::{python_dumps, Json, JsonObject, Number};

/// Whether the source marks the run as successful, from the generic signals (see the module
/// documentation of [`super`]); `None` when it does not say. `prefix` names where `o` is.
pub(super) fn success_signal(o: &JsonObject, prefix: &str) -> Result<Option<bool>, Invalid> {
    for key in ["success", "succeeded", "resolved", "is_resolved", "passed"] {
        if let Some(b) = opt_bool(o, prefix, key)? {
            return Ok(Some(b));
        }
    }
    Ok(opt_number(o, prefix, "reward")?.map(reward_succeeded))
}

/// The verdict of the generic signals, else `Some(false)` when the data states a failure (a
/// non-empty `failure_reason` or `error`), else `None`: the source gives no verdict.
pub(super) fn verdict(o: &JsonObject, prefix: &str) -> Result<Option<bool>, Invalid> {
    if let Some(v) = success_signal(o, prefix)? {
        return Ok(Some(v));
    }
    for key in ["failure_reason", "error"] {
        if opt_string(o, prefix, key)?.is_some_and(|r| !r.trim().is_empty()) {
            return Ok(Some(false));
        }
    }
    Ok(None)
}

/// A reward counts as success when it reaches 1 (allowing for rounding).
pub(super) fn reward_succeeded(reward: &Number) -> bool {
    reward.as_f64() >= 1.0 - 1e-6
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    #[test]
    fn success_signals() {
        let s = |t: &str| success_signal(parse(t).unwrap().as_object().unwrap(), "");
        assert_eq!(s(r#"{"success": true, "reward": 0}"#).unwrap(), Some(true));
        assert_eq!(s(r#"{"reward": 1.0}"#).unwrap(), Some(true));
        assert_eq!(s(r#"{"reward": 0.9999999}"#).unwrap(), Some(true));
        assert_eq!(s(r#"{"reward": 0.5}"#).unwrap(), Some(false));
        assert_eq!(s(r#"{"resolved": false}"#).unwrap(), Some(false));
        assert_eq!(s(r#"{"reward": null}"#).unwrap(), None);
        assert_eq!(
            s(r#"{"success": "yes"}"#).unwrap_err(),
            Invalid::at("success", "expected a boolean, found a string")
        );
    }
}
