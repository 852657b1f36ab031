//! Importers: failed agent runs in the formats people have, mapped onto the native schema.
//!
//! The reader ([`crate::reader`]) cuts a file into records; this module says which format a
//! record is in ([`detect`]) and turns it into a [`Trajectory`] ([`import`], and
//! [`react::parse_run`] for plain-text ReAct logs). A file's format is decided once, from its
//! first record that shows one (see [`detect`]), unless the caller forces one.
//!
//! # Formats
//! | id | what | one record is |
//! |---|---|---|
//! | `native` | the AgentHER schema (METHOD.md, "Input record") | an object |
//! | `openai_messages` | OpenAI chat messages with tool calls | `{messages, tools?, id?, reward?, success?, ...}`, or a bare array of messages (the reader takes a file that is one such array as one run) |
//! | `tau_bench` | tau-bench results | `{task_id, reward, info, traj, trial}` |
//! | `sharegpt` | LLaMA-Factory ShareGPT | `{conversations: [{from, value}], system?, tools?}` |
//! | `react` | ReAct plain-text logs | a run of `Thought:` / `Action:` / `Observation:` blocks |
//! | `toolbench` | ToolBench answer files | `{answer_generation: {train_messages, final_answer, function, query}, win?}` |
//! | `atif` | Harbor's Agent Trajectory Interchange Format | `{schema_version, session_id, agent, steps}` |
//!
//! # Mapping rules (all chat formats)
//! Every text of a run lands in the trajectory in source order: the goal, the system prompt,
//! each user turn, each assistant text and reasoning, each call with its arguments and each
//! tool result.
//! - The first user message is the goal (`original_prompt`); tau-bench and ToolBench too. A
//!   user message that follows another one with nothing said in between continues it (joined
//!   by a blank line).
//! - An assistant text followed by a user message is a reply to the user: a step of kind
//!   [`StepKind::Respond`] (tau-bench's `respond` action), named `respond`, with input
//!   `{"content": text}`, the reasoning before it as its thought, and the user's message as its
//!   observation. A run of talk only is a run of such steps.
//! - A user message right after a tool result (nothing said to the user in between, as in
//!   ToolBench's restart prompts) is a reply with no text whose observation is that message,
//!   so the message stays where it was; the exports write it as the user's turn alone.
//! - System messages (joined by a blank line) and the declared tool schemas go into
//!   [`Origin`]; tools become OpenAI function tools `{type: function, function: {name,
//!   description?, parameters}}` (a bare `{name, description, parameters}` schema, or one with
//!   Anthropic's `input_schema`, is wrapped; a missing `parameters` becomes an empty object
//!   schema).
//! - Other assistant text becomes the thought of the next step (several texts are joined by a
//!   blank line; reasoning text, when the source keeps it apart, comes first).
//! - Each tool call is one step: its name, its arguments parsed into `action_input` when they
//!   are a JSON object, and [`ToolCall`] keeping the call id, the arguments as given and the
//!   index of the assistant turn (parallel calls share it; only the first of them carries the
//!   thought). Arguments that are not a JSON object are kept whole as `{"input": value}` (a
//!   text that is not JSON as that string); empty arguments give `{}`. Sources that store the
//!   arguments as an object get them written back as Python's `json.dumps` does.
//! - A tool result goes to the call with its id; without an id (or with an id no call has) to
//!   the oldest call still without a result. A result no call is waiting for, or a second
//!   result for the same call, rejects the record. One result for several calls (a message
//!   holding a list of results) goes whole to the first of them.
//! - The assistant text after the last step is the final answer; the reasoning there is the
//!   final thought ([`Origin::final_thought`]). A run needs a goal and something the agent
//!   did: a step, a final answer or a final thought.
//! - `failure_reason` comes from the data when it says why the run failed (a `failure_reason`
//!   or `error` field, reward details, an expected answer, a give-up); otherwise it is
//!   [`UNKNOWN_FAILURE`]. A run the source marks as successful gets `origin.succeeded = true`
//!   and an empty `failure_reason`: it is kept apart, never relabeled.
//! - The verdict: the format's own (tau-bench's reward, ToolBench's answer status, the ReAct
//!   and Reflexion evaluations), else the generic signals below, else a stated failure (a
//!   `failure_reason` or `error`). A run whose source gives none is a failure marked
//!   [`Origin::verdict_unknown`].
//! - Success signals, where a format has no field of its own: a boolean `success`,
//!   `succeeded`, `resolved`, `is_resolved` or `passed`, else a number `reward` (success when
//!   at least 1).
//! - `trajectory_id` comes from the data (`trajectory_id` / `id`, tau-bench's task and trial,
//!   ATIF's `session_id`, ...); otherwise the reader generates one as for native records.
//! - Text is kept exactly as given (no trimming inside chat formats, Unicode untouched).

mod atif;
mod chat;
mod messages;
mod native;
mod openai;
pub mod react;
mod reward;
mod sharegpt;
mod tau;
mod toolbench;

use crate::json::{python_dumps, Json, JsonObject, Number};
use crate::model::Trajectory;
#[cfg(doc)]
use crate::model::{Origin, StepKind, ToolCall};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The failure reason of a run whose source does not say why it failed.
pub const UNKNOWN_FAILURE: &str = "Unknown: the source does not say why the run failed.";

/// The formats the reader takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceFormat {
    #[serde(rename = "native")]
    Native,
    #[serde(rename = "openai_messages")]
    OpenAiMessages,
    #[serde(rename = "tau_bench")]
    TauBench,
    #[serde(rename = "sharegpt")]
    ShareGpt,
    #[serde(rename = "react")]
    React,
    #[serde(rename = "toolbench")]
    ToolBench,
    #[serde(rename = "atif")]
    Atif,
}

impl SourceFormat {
    pub const ALL: [SourceFormat; 7] = [
        SourceFormat::Native,
        SourceFormat::OpenAiMessages,
        SourceFormat::TauBench,
        SourceFormat::ShareGpt,
        SourceFormat::React,
        SourceFormat::ToolBench,
        SourceFormat::Atif,
    ];

    /// The format's id (`native`, `openai_messages`, `tau_bench`, `sharegpt`, `react`,
    /// `toolbench`, `atif`), as written in [`crate::model::Origin::format`].
    pub fn id(self) -> &'static str {
        match self {
            SourceFormat::Native => "native",
            SourceFormat::OpenAiMessages => "openai_messages",
            SourceFormat::TauBench => "tau_bench",
            SourceFormat::ShareGpt => "sharegpt",
            SourceFormat::React => "react",
            SourceFormat::ToolBench => "toolbench",
            SourceFormat::Atif => "atif",
        }
    }

    /// A human name.
    pub fn label(self) -> &'static str {
        match self {
            SourceFormat::Native => "AgentHER native",
            SourceFormat::OpenAiMessages => "OpenAI chat messages",
            SourceFormat::TauBench => "tau-bench results",
            SourceFormat::ShareGpt => "LLaMA-Factory ShareGPT",
            SourceFormat::React => "ReAct text log",
            SourceFormat::ToolBench => "ToolBench answers",
            SourceFormat::Atif => "Harbor ATIF",
        }
    }

    /// The format with this id.
    pub fn parse(id: &str) -> Option<SourceFormat> {
        Self::ALL.into_iter().find(|f| f.id() == id)
    }

    /// Whether records of this format are JSON values (all but ReAct logs).
    pub fn is_json(self) -> bool {
        self != SourceFormat::React
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Why a record does not fit its format: the field at fault (`None`: the record as a whole)
/// and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: Option<String>,
    pub reason: String,
}

impl Invalid {
    pub(crate) fn at(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Invalid {
            field: Some(field.into()),
            reason: reason.into(),
        }
    }

    pub(crate) fn whole(reason: impl Into<String>) -> Self {
        Invalid {
            field: None,
            reason: reason.into(),
        }
    }
}

/// The format a JSON record shows by its keys, if any.
///
/// In this order: `original_prompt` → native; `answer_generation` → ToolBench;
/// `schema_version` with `steps` → ATIF; `traj` → tau-bench; `conversations` → ShareGPT;
/// `messages` → OpenAI messages; `steps` whose first element has `step_id` or `source` → ATIF,
/// other `steps` → native; `trajectory_id`, `failure_reason` or `final_answer` → native. An
/// array whose first element is an object with a `role` is a bare OpenAI message list.
pub fn detect(value: &Json) -> Option<SourceFormat> {
    match value {
        Json::Object(o) => {
            let has = |key: &str| o.get(key).is_some();
            if has("original_prompt") {
                Some(SourceFormat::Native)
            } else if has("answer_generation") {
                Some(SourceFormat::ToolBench)
            } else if has("schema_version") && has("steps") {
                Some(SourceFormat::Atif)
            } else if has("traj") {
                Some(SourceFormat::TauBench)
            } else if has("conversations") {
                Some(SourceFormat::ShareGpt)
            } else if has("messages") {
                Some(SourceFormat::OpenAiMessages)
            } else if let Some(steps) = o.get("steps") {
                let atif = steps
                    .as_array()
                    .and_then(|s| s.first())
                    .and_then(Json::as_object)
                    .is_some_and(|s| s.get("step_id").is_some() || s.get("source").is_some());
                Some(if atif {
                    SourceFormat::Atif
                } else {
                    SourceFormat::Native
                })
            } else if has("trajectory_id") || has("failure_reason") || has("final_answer") {
                Some(SourceFormat::Native)
            } else {
                None
            }
        }
        Json::Array(items) => items
            .first()
            .and_then(Json::as_object)
            .filter(|m| m.get("role").is_some())
            .map(|_| SourceFormat::OpenAiMessages),
        _ => None,
    }
}

/// Maps one JSON record of `format` onto a trajectory. An empty `trajectory_id` means the data
/// has none (the reader generates one). ReAct logs are text: see [`react::parse_run`].
pub fn import(format: SourceFormat, value: &Json) -> Result<Trajectory, Invalid> {
    match format {
        SourceFormat::Native => native::trajectory(value),
        SourceFormat::OpenAiMessages => openai::trajectory(value),
        SourceFormat::TauBench => tau::trajectory(value),
        SourceFormat::ShareGpt => sharegpt::trajectory(value),
        SourceFormat::ToolBench => toolbench::trajectory(value),
        SourceFormat::Atif => atif::trajectory(value),
        SourceFormat::React => Err(Invalid::whole(
            "a ReAct log is plain text, not JSON records",
        )),
    }
}

/// As [`import`], taking the record: the native schema moves the strings and objects it keeps
/// out of it instead of copying them. A rejected record is handed back whole with the reason.
pub fn import_owned(format: SourceFormat, value: Json) -> Result<Trajectory, (Invalid, Json)> {
    match format {
        SourceFormat::Native => native::into_trajectory(value),
        _ => import(format, &value).map_err(|invalid| (invalid, value)),
    }
}

// Field helpers shared by the importers. Absent and `null` members are the same thing for
// optional fields of the foreign formats (Python tools write `None` for what they lack);
// the native schema keeps its stricter rules in `native`.

pub(crate) const MISSING: &str = "required field is missing";

pub(crate) fn path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

pub(crate) fn expected(what: &str, found: &Json) -> String {
    format!("expected {what}, found {}", found.kind())
}

/// A member that is present and not null.
fn member<'a>(o: &'a JsonObject, key: &str) -> Option<&'a Json> {
    o.get(key).filter(|v| !matches!(v, Json::Null))
}

/// The record as an object.
fn object<'a>(value: &'a Json, field: &str) -> Result<&'a JsonObject, Invalid> {
    match value {
        Json::Object(o) => Ok(o),
        other if field.is_empty() => Err(Invalid::whole(expected("an object", other))),
        other => Err(Invalid::at(field, expected("an object", other))),
    }
}

/// An optional string member.
fn opt_string(o: &JsonObject, prefix: &str, key: &str) -> Result<Option<String>, Invalid> {
    match member(o, key) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Invalid::at(path(prefix, key), expected("a string", other))),
    }
}

/// A required string member.
fn req_string(o: &JsonObject, prefix: &str, key: &str) -> Result<String, Invalid> {
    opt_string(o, prefix, key)?.ok_or_else(|| Invalid::at(path(prefix, key), MISSING))
}

/// An optional object member.
fn opt_object<'a>(
    o: &'a JsonObject,
    prefix: &str,
    key: &str,
) -> Result<Option<&'a JsonObject>, Invalid> {
    match member(o, key) {
        None => Ok(None),
        Some(Json::Object(v)) => Ok(Some(v)),
        Some(other) => Err(Invalid::at(path(prefix, key), expected("an object", other))),
    }
}

/// An optional array member.
fn opt_array<'a>(
    o: &'a JsonObject,
    prefix: &str,
    key: &str,
) -> Result<Option<&'a [Json]>, Invalid> {
    match member(o, key) {
        None => Ok(None),
        Some(Json::Array(v)) => Ok(Some(v)),
        Some(other) => Err(Invalid::at(path(prefix, key), expected("an array", other))),
    }
}

/// A required array member.
fn req_array<'a>(o: &'a JsonObject, prefix: &str, key: &str) -> Result<&'a [Json], Invalid> {
    opt_array(o, prefix, key)?.ok_or_else(|| Invalid::at(path(prefix, key), MISSING))
}

/// An optional number member.
fn opt_number<'a>(
    o: &'a JsonObject,
    prefix: &str,
    key: &str,
) -> Result<Option<&'a Number>, Invalid> {
    match member(o, key) {
        None => Ok(None),
        Some(Json::Number(n)) => Ok(Some(n)),
        Some(other) => Err(Invalid::at(path(prefix, key), expected("a number", other))),
    }
}

/// An optional boolean member.
fn opt_bool(o: &JsonObject, prefix: &str, key: &str) -> Result<Option<bool>, Invalid> {
    match member(o, key) {
        None => Ok(None),
        Some(Json::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(Invalid::at(path(prefix, key), expected("a boolean", other))),
    }
}

/// An id written as a string or an integer.
fn opt_id(o: &JsonObject, prefix: &str, key: &str) -> Result<Option<String>, Invalid> {
    match member(o, key) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(Json::Number(n @ Number::Int(_))) => Ok(Some(python_dumps(&Json::Number(n.clone())))),
        Some(other) => Err(Invalid::at(
            path(prefix, key),
            expected("a string or an integer", other),
        )),
    }
}

/// A number as Python prints it (`0.0`, `1`), for reasons and ids.
fn number_text(n: &Number) -> String {
    python_dumps(&Json::Number(n.clone()))
}

/// What the data says about why the run failed: a non-empty `failure_reason` or `error`
/// string, else an expected answer (`expected_answer`, `gold_answer`, `ground_truth`).
fn stated_reason(o: &JsonObject, prefix: &str) -> Result<Option<String>, Invalid> {
    for key in ["failure_reason", "error"] {
        if let Some(r) = opt_string(o, prefix, key)?.filter(|r| !r.trim().is_empty()) {
            return Ok(Some(r));
        }
    }
    for key in ["expected_answer", "gold_answer", "ground_truth"] {
        match member(o, key) {
            None => {}
            Some(Json::String(s)) if s.trim().is_empty() => {}
            Some(Json::String(s)) => return Ok(Some(format!("The expected answer is: {s}"))),
            Some(other) => {
                return Ok(Some(format!(
                    "The expected answer is: {}",
                    python_dumps(other)
                )))
            }
        }
    }
    Ok(None)
}

/// The source's own `metadata` object, if it has one, as the start of the trajectory's.
fn source_metadata(o: &JsonObject, prefix: &str) -> Result<JsonObject, Invalid> {
    Ok(opt_object(o, prefix, "metadata")?
        .cloned()
        .unwrap_or_default())
}

/// A declared tool as an OpenAI function tool `{type: function, function: {...}}`.
fn function_tool(value: &Json, field: &str) -> Result<Json, Invalid> {
    let o = object(value, field)?;
    let kind = opt_string(o, field, "type")?;
    let wrapped =
        if let (Some("function"), Some(f)) = (kind.as_deref(), opt_object(o, field, "function")?) {
            // Already an OpenAI function tool.
            req_string(f, &path(field, "function"), "name")?;
            value.clone()
        } else {
            let name = req_string(o, field, "name")?;
            let mut function = JsonObject::new();
            function.insert("name", Json::String(name));
            if let Some(description) = member(o, "description") {
                function.insert("description", description.clone());
            }
            let parameters = member(o, "parameters")
                .or_else(|| member(o, "input_schema"))
                .cloned()
                .unwrap_or_else(|| {
                    let mut empty = JsonObject::new();
                    empty.insert("type", Json::from("object"));
                    empty.insert("properties", Json::Object(JsonObject::new()));
                    Json::Object(empty)
                });
            function.insert("parameters", parameters);
            let mut tool = JsonObject::new();
            tool.insert("type", Json::from("function"));
            tool.insert("function", Json::Object(function));
            Json::Object(tool)
        };
    Ok(wrapped)
}

/// Declared tools: an array of schemas, or (ShareGPT, ToolBench) a JSON string holding one.
fn function_tools(value: Option<&Json>, field: &str) -> Result<Vec<Json>, Invalid> {
    let parsed;
    let items: &[Json] = match value {
        None | Some(Json::Null) => return Ok(Vec::new()),
        Some(Json::Array(items)) => items,
        Some(Json::String(text)) if text.trim().is_empty() => return Ok(Vec::new()),
        Some(Json::String(text)) => {
            parsed = crate::json::parse(text)
                .map_err(|e| Invalid::at(field, format!("the tool list is not valid JSON: {e}")))?;
            match &parsed {
                Json::Array(items) => items,
                other => return Err(Invalid::at(field, expected("a list of tools", other))),
            }
        }
        Some(other) => {
            return Err(Invalid::at(
                field,
                expected("a list of tools (or a JSON string of one)", other),
            ))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, t)| function_tool(t, &format!("{field}[{i}]")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    #[test]
    fn ids_labels_and_parse_agree() {
        for f in SourceFormat::ALL {
            assert_eq!(SourceFormat::parse(f.id()), Some(f));
            assert_eq!(
                serde_json::to_value(f).unwrap(),
                serde_json::Value::from(f.id())
            );
            assert!(!f.label().is_empty());
        }
        assert_eq!(SourceFormat::parse("auto"), None);
        assert_eq!(SourceFormat::parse("OpenAI"), None);
    }

    #[test]
    fn detection_by_keys() {
        let d = |t: &str| detect(&parse(t).unwrap());
        assert_eq!(
            d(r#"{"original_prompt": "x", "messages": []}"#),
            Some(SourceFormat::Native)
        );
        assert_eq!(
            d(r#"{"answer_generation": {}}"#),
            Some(SourceFormat::ToolBench)
        );
        assert_eq!(
            d(r#"{"schema_version": "ATIF-v1.4", "steps": []}"#),
            Some(SourceFormat::Atif)
        );
        assert_eq!(
            d(r#"{"steps": [{"step_id": 1}]}"#),
            Some(SourceFormat::Atif)
        );
        assert_eq!(
            d(r#"{"steps": [{"thought": ""}]}"#),
            Some(SourceFormat::Native)
        );
        assert_eq!(
            d(r#"{"task_id": 1, "traj": []}"#),
            Some(SourceFormat::TauBench)
        );
        assert_eq!(d(r#"{"conversations": []}"#), Some(SourceFormat::ShareGpt));
        assert_eq!(d(r#"{"messages": []}"#), Some(SourceFormat::OpenAiMessages));
        assert_eq!(
            d(r#"[{"role": "user", "content": "hi"}]"#),
            Some(SourceFormat::OpenAiMessages)
        );
        assert_eq!(d(r#"{"failure_reason": ""}"#), Some(SourceFormat::Native));
        assert_eq!(d(r#"{"x": 1}"#), None);
        assert_eq!(d("[1]"), None);
        assert_eq!(d("3"), None);
    }

    #[test]
    fn tools_are_wrapped_as_function_tools() {
        let tools = parse(
            r#"[{"name": "f", "description": "d", "parameters": {"type": "object"}},
                {"type": "function", "function": {"name": "g", "parameters": {}}},
                {"name": "h", "input_schema": {"type": "object", "properties": {"a": {}}}},
                {"name": "k"}]"#,
        )
        .unwrap();
        let got = function_tools(Some(&tools), "tools").unwrap();
        assert_eq!(
            Json::Array(got),
            parse(
                r#"[
                {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}},
                {"type": "function", "function": {"name": "g", "parameters": {}}},
                {"type": "function", "function": {"name": "h", "parameters": {"type": "object", "properties": {"a": {}}}}},
                {"type": "function", "function": {"name": "k", "parameters": {"type": "object", "properties": {}}}}
            ]"#
            )
            .unwrap()
        );
        let text = Json::from(r#"[{"name": "f"}]"#);
        assert_eq!(function_tools(Some(&text), "tools").unwrap().len(), 1);
        let bad = parse(r#"[{"description": "no name"}]"#).unwrap();
        assert_eq!(
            function_tools(Some(&bad), "tools").unwrap_err(),
            Invalid::at("tools[0].name", MISSING)
        );
        let broken = Json::from("[{");
        let e = function_tools(Some(&broken), "tools").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("tools"));
        assert!(
            e.reason.starts_with("the tool list is not valid JSON"),
            "{e:?}"
        );
    }
}
