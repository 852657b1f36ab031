//! JSON schemas of the four replies, used in `response_format` and quoted in the prompts.
//!
//! They follow the strict structured-output rules: every property required, no additional
//! properties. Optional meaning is expressed with empty values ("" or []).

use crate::model::FailureType;
use serde_json::{json, Value};

/// The failure type names a detection reply may use: the taxonomy, then `none`.
pub fn failure_type_names() -> Vec<&'static str> {
    FailureType::ALL
        .iter()
        .map(|t| t.as_str())
        .chain(["none"])
        .collect()
}

fn unit(description: &str) -> Value {
    json!({"type": "number", "minimum": 0, "maximum": 1, "description": description})
}

/// Schema of [`super::reply::DetectReply`].
pub fn detect() -> Value {
    json!({
        "type": "object",
        "properties": {
            "is_failure": {"type": "boolean", "description": "Whether the agent failed its goal."},
            "failure_type": {
                "type": "string",
                "enum": failure_type_names(),
                "description": "The main kind of failure, or none."
            },
            "severity": unit("How badly the original goal was missed: 0 = barely, 1 = completely."),
            "weight": unit("How much the trajectory is worth as a demonstration: 1 = sound steps, below 0.3 = major flaws."),
            "recoverable": {"type": "boolean", "description": "Whether the steps achieved something real and useful despite the failure."},
            "explanation": {"type": "string", "description": "One or two sentences on what went wrong."}
        },
        "required": ["is_failure", "failure_type", "severity", "weight", "recoverable", "explanation"],
        "additionalProperties": false
    })
}

/// Schema of [`super::reply::ExtractReply`].
pub fn extract() -> Value {
    json!({
        "type": "object",
        "properties": {
            "actual_achievements": {
                "type": "array",
                "items": {"type": "string"},
                "description": "What the agent really accomplished, one fact per item."
            },
            "key_observations": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Concrete data the agent obtained (names, numbers, states)."
            },
            "limitations": {"type": "string", "description": "What was not achieved."}
        },
        "required": ["actual_achievements", "key_observations", "limitations"],
        "additionalProperties": false
    })
}

/// Schema of [`super::reply::RelabelReply`].
pub fn relabel() -> Value {
    json!({
        "type": "object",
        "properties": {
            "hindsight_prompt": {"type": "string", "description": "The user request this trajectory fully satisfies."},
            "is_valid_replay": {"type": "boolean", "description": "Whether such a request exists."},
            "rationale": {"type": "string", "description": "Why the trajectory satisfies the request."},
            "confidence": unit("Confidence that the trajectory fully satisfies the request.")
        },
        "required": ["hindsight_prompt", "is_valid_replay", "rationale", "confidence"],
        "additionalProperties": false
    })
}

/// Schema of [`super::reply::JudgeReply`].
pub fn judge() -> Value {
    json!({
        "type": "object",
        "properties": {
            "is_valid": {"type": "boolean", "description": "Whether the trajectory fully and correctly satisfies the request."},
            "confidence": unit("Confidence in this verdict."),
            "rejection_reason": {"type": "string", "description": "Why not, when is_valid is false; otherwise empty."}
        },
        "required": ["is_valid", "confidence", "rejection_reason"],
        "additionalProperties": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_strict() {
        for s in [detect(), extract(), relabel(), judge()] {
            let props = s["properties"].as_object().unwrap();
            let required: Vec<&str> = s["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(
                props.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
                required
            );
            assert_eq!(s["additionalProperties"], false);
        }
        assert_eq!(failure_type_names().len(), 7);
    }
}
