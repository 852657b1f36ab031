//! Checks a line, or a whole file, against the documented rules of an export target, and says
//! what breaks them: the line, the field and why.
//!
//! Every target: each line is one JSON object, with no `NaN` or `Infinity` (the loaders read
//! strict JSON). The tool layouts: no integer beyond the signed 64-bit range as a JSON number
//! (🤗 datasets cannot load such a file, "Value is too big!", or rounds the value; inside a
//! JSON string it is fine). Then, per target:
//! - LLaMA-Factory ShareGPT: `conversations` of `from` / `value` turns, an optional leading
//!   `system` turn, then human or observation turns at even positions and gpt or function_call
//!   turns at odd ones, an even number of turns, opening with human and ending with gpt; an
//!   observation right after each function call and only there; human and gpt values not blank;
//!   a function_call value is JSON (after an optional `<think>` block) naming the function and
//!   giving its arguments as an object (or a list of such calls); `system` a string; `tools` a
//!   string holding a JSON array of functions with `name` and `parameters.properties`, which
//!   declares every function called; `weight` a number in [0, 1].
//! - TRL SFT (`messages`) and preference (`prompt` / `chosen` / `rejected`): roles system
//!   (first only; its content may be empty), user, assistant, tool; the first non-system
//!   message is the user's, not blank; an assistant message either answers (non-blank
//!   `content`) or calls tools (`tool_calls` of `{"type": "function", "function": {"name",
//!   "arguments"}}`, the arguments an object); each call is answered, in order, by a `tool`
//!   message with the call's `name` before anything else happens; the conversation ends with
//!   an assistant answer; `tools` (an array, or a string holding one, both of which TRL reads)
//!   lists `{"type": "function", "function": {"name", ...}}` and declares every function
//!   called. A preference row has an explicit, non-empty `prompt` (TRL's dataset preparation
//!   stops on an empty one) and `chosen` and `rejected` that continue it: each of `prompt` +
//!   `chosen` and `prompt` + `rejected` is a conversation under the rules above; both sides
//!   open with the user's goal, the two goals differ, and everything after them is the same.
//! - OpenAI chat fine-tuning: top-level keys `messages`, `tools`, `parallel_tool_calls` only;
//!   message keys `role`, `content`, `name`, `weight`, `tool_calls`, `tool_call_id` only; roles
//!   system (first only), user, assistant, tool; `weight` only on assistant messages and only 0
//!   or 1; tool calls `{"id", "type": "function", "function": {"name", "arguments"}}` with
//!   unique ids and the arguments a string holding a JSON object; every call answered by a
//!   `tool` message with its `tool_call_id` before the next assistant message, and no tool
//!   message answering anything else; non-blank user, system and final assistant content; the
//!   conversation ends with an assistant answer and trains on at least one assistant message;
//!   `tools` as for TRL.

use super::llamafactory::{THINK_CLOSE, THINK_OPEN};
use super::numbers::first_wide_integer;
use super::Target;
use crate::json::{parse, Json, JsonObject, Number};
use serde::Serialize;
use std::fmt;

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// 1-based line of the file (for an export: the row's position among the rows it built).
    pub line: usize,
    /// The sample's trajectory, when an exporter reports the violation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trajectory_id: Option<String>,
    /// Where in the line, e.g. `messages[2].tool_calls[0].function.arguments`; empty for the
    /// line as a whole.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Violation {
    /// `line 3: messages[1].weight: weight must be 0 or 1, not 2`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        if let Some(id) = &self.trajectory_id {
            write!(f, "{id}: ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Checks one line (without its newline) against `target`'s rules.
pub fn validate_line(target: Target, line: usize, text: &str) -> Vec<Violation> {
    let mut c = Check {
        line,
        out: Vec::new(),
    };
    let value = match parse(text) {
        Ok(v) => v,
        Err(e) => {
            c.fail("", format!("not JSON: {e}"));
            return c.out;
        }
    };
    let Json::Object(row) = &value else {
        c.fail(
            "",
            format!("expected a JSON object, found {}", value.kind()),
        );
        return c.out;
    };
    if let Some(path) = non_finite(&value) {
        c.fail(
            path,
            "NaN and Infinity are not JSON: the training tools cannot read them",
        );
    }
    if !matches!(target, Target::Native(_)) {
        if let Some(wide) = first_wide_integer(&value, "") {
            c.fail(
                wide.field,
                format!(
                    "the integer {} is beyond the signed 64-bit range: 🤗 datasets cannot load                      a file holding it as a JSON number (\"Value is too big!\") or rounds it; \
                     write it as a string",
                    wide.digits
                ),
            );
        }
    }
    match target {
        Target::Native(_) => native(row, &mut c),
        Target::LlamaFactory => llamafactory(row, &mut c),
        Target::TrlSft => trl_sft(row, &mut c),
        Target::TrlPreference => trl_preference(row, &mut c),
        Target::OpenAi => openai(row, &mut c),
    }
    c.out
}

/// Checks a whole JSONL file: every line as [`validate_line`] does, and no blank lines (a
/// final newline is fine).
pub fn validate_file(target: Target, text: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return out;
    }
    for (i, line) in body.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            out.push(Violation {
                line: i + 1,
                trajectory_id: None,
                field: String::new(),
                message: "blank line: every line must hold one JSON object".into(),
            });
        } else {
            out.extend(validate_line(target, i + 1, line));
        }
    }
    out
}

struct Check {
    line: usize,
    out: Vec<Violation>,
}

impl Check {
    fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.out.push(Violation {
            line: self.line,
            trajectory_id: None,
            field: field.into(),
            message: message.into(),
        });
    }
}

/// The path of the first NaN or infinite number in `v`, if any.
fn non_finite(v: &Json) -> Option<String> {
    let mut stack: Vec<(String, &Json)> = vec![(String::new(), v)];
    while let Some((path, v)) = stack.pop() {
        match v {
            Json::Number(Number::Float(f)) if !f.is_finite() => return Some(path),
            Json::Array(items) => {
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push((format!("{path}[{i}]"), item));
                }
            }
            Json::Object(o) => {
                let entries: Vec<_> = o.iter().collect();
                for (k, item) in entries.into_iter().rev() {
                    let p = if path.is_empty() {
                        k.to_owned()
                    } else {
                        format!("{path}.{k}")
                    };
                    stack.push((p, item));
                }
            }
            _ => {}
        }
    }
    None
}

fn is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

fn field(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A required member of the kind `pick` accepts (`what` names it, e.g. "a string"): reports
/// and returns `None` when it is missing or of another kind.
fn member<'a, T: ?Sized>(
    o: &'a JsonObject,
    path: &str,
    key: &str,
    what: &str,
    pick: fn(&'a Json) -> Option<&'a T>,
    c: &mut Check,
) -> Option<&'a T> {
    match o.get(key) {
        Some(v) => {
            let picked = pick(v);
            if picked.is_none() {
                c.fail(
                    field(path, key),
                    format!("must be {what}, not {}", v.kind()),
                );
            }
            picked
        }
        None => {
            c.fail(field(path, key), "missing");
            None
        }
    }
}

/// A required string member.
fn string<'a>(o: &'a JsonObject, path: &str, key: &str, c: &mut Check) -> Option<&'a str> {
    member(o, path, key, "a string", Json::as_str, c)
}

/// A required array member.
fn array<'a>(o: &'a JsonObject, path: &str, key: &str, c: &mut Check) -> Option<&'a [Json]> {
    let pick = |v: &'a Json| match v {
        Json::Array(a) => Some(a.as_slice()),
        _ => None,
    };
    member(o, path, key, "an array", pick, c)
}

/// The sample weight, an extra column some targets keep: a number in [0, 1].
fn weight_column(row: &JsonObject, c: &mut Check) {
    match row.get("weight") {
        None => {}
        Some(Json::Number(n)) if (0.0..=1.0).contains(&n.as_f64()) => {}
        Some(other) => c.fail(
            "weight",
            format!("must be a number between 0 and 1, not {other}"),
        ),
    }
}

fn native(row: &JsonObject, c: &mut Check) {
    for key in ["source_trajectory_id", "format", "hindsight_prompt"] {
        string(row, "", key, c);
    }
    for key in ["chosen", "rejected"] {
        array(row, "", key, c);
    }
}

/// The JSON array a `tools` string holds, or `None` (reported) when it holds something else.
fn tools_text(text: &str, c: &mut Check) -> Option<Json> {
    let parsed = match parse(text) {
        Ok(v) => v,
        Err(e) => {
            c.fail("tools", format!("does not hold JSON: {e}"));
            return None;
        }
    };
    if let Some(p) = non_finite(&parsed) {
        c.fail(
            "tools",
            format!("holds NaN or Infinity at {p}, which is not JSON"),
        );
    }
    if !matches!(parsed, Json::Array(_)) {
        c.fail(
            "tools",
            format!("must hold a JSON array, not {}", parsed.kind()),
        );
        return None;
    }
    Some(parsed)
}

// --- LLaMA-Factory -------------------------------------------------------------------------

const LF_ROLES: [&str; 5] = ["human", "gpt", "observation", "function_call", "system"];

fn llamafactory(row: &JsonObject, c: &mut Check) {
    weight_column(row, c);
    if let Some(system) = row.get("system") {
        if !matches!(system, Json::String(_)) {
            c.fail("system", format!("must be a string, not {}", system.kind()));
        }
    }
    let declared = match row.get("tools") {
        None => None,
        Some(Json::String(text)) => lf_tools(text, c),
        Some(other) => {
            c.fail(
                "tools",
                format!(
                    "must be a string holding a JSON array, not {}",
                    other.kind()
                ),
            );
            None
        }
    };
    let Some(turns) = array(row, "", "conversations", c) else {
        return;
    };
    if turns.is_empty() {
        c.fail("conversations", "is empty");
        return;
    }
    let mut roles: Vec<(usize, &str, &str)> = Vec::with_capacity(turns.len());
    for (i, t) in turns.iter().enumerate() {
        let path = format!("conversations[{i}]");
        let Json::Object(t) = t else {
            c.fail(path, format!("must be an object, not {}", t.kind()));
            return;
        };
        let (Some(from), Some(value)) = (string(t, &path, "from", c), string(t, &path, "value", c))
        else {
            return;
        };
        if !LF_ROLES.contains(&from) {
            c.fail(
                field(&path, "from"),
                format!("unknown role {from:?} (human, gpt, observation, function_call, system)"),
            );
            return;
        }
        roles.push((i, from, value));
    }
    let body = match roles.first() {
        Some((_, "system", _)) => &roles[1..],
        _ => &roles[..],
    };
    if body.is_empty() {
        c.fail("conversations", "has no turn after the system turn");
        return;
    }
    for (pos, &(i, from, value)) in body.iter().enumerate() {
        let path = format!("conversations[{i}]");
        let even = pos % 2 == 0;
        let fits = if even {
            matches!(from, "human" | "observation")
        } else {
            matches!(from, "gpt" | "function_call")
        };
        if !fits {
            c.fail(
                field(&path, "from"),
                format!(
                    "{from:?} at an {} position: LLaMA-Factory wants human or observation turns \
                     at even positions and gpt or function_call turns at odd ones, and drops the \
                     example otherwise",
                    if even { "even" } else { "odd" }
                ),
            );
        }
        let previous = pos.checked_sub(1).map(|p| body[p].1);
        if from == "observation" && previous != Some("function_call") {
            c.fail(
                field(&path, "from"),
                "an observation must answer the function_call turn right before it",
            );
        }
        if previous == Some("function_call") && from != "observation" {
            c.fail(
                field(&path, "from"),
                "a function_call turn must be followed by its observation",
            );
        }
        match from {
            "human" | "gpt" if is_blank(value) => c.fail(
                field(&path, "value"),
                format!("a {from} turn must not be blank"),
            ),
            "function_call" => lf_call(value, &field(&path, "value"), declared.as_deref(), c),
            "system" => c.fail(
                field(&path, "from"),
                "a system turn may only open the conversation",
            ),
            _ => {}
        }
    }
    if body[0].1 != "human" {
        c.fail(
            format!("conversations[{}].from", body[0].0),
            "the conversation must open with a human turn",
        );
    }
    if body.len() % 2 != 0 {
        c.fail(
            "conversations",
            format!(
                "{} turns after the system turn: LLaMA-Factory needs an even number",
                body.len()
            ),
        );
    }
    let (last_i, last_from, _) = body[body.len() - 1];
    if last_from != "gpt" {
        c.fail(
            format!("conversations[{last_i}].from"),
            format!("the conversation must end with a gpt turn, not {last_from:?}"),
        );
    }
}

/// The function names a LLaMA-Factory `tools` string declares, or `None` when it is broken.
fn lf_tools(text: &str, c: &mut Check) -> Option<Vec<String>> {
    let Json::Array(tools) = tools_text(text, c)? else {
        return None;
    };
    let mut names = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let path = format!("tools[{i}]");
        let Json::Object(tool) = tool else {
            c.fail(path, format!("must be an object, not {}", tool.kind()));
            return None;
        };
        let function = match (tool.get("type"), tool.get("function")) {
            (Some(Json::String(t)), Some(Json::Object(f))) if t == "function" => f,
            _ => tool,
        };
        let name = string(function, &path, "name", c)?;
        let has_properties = matches!(
            function.get("parameters"),
            Some(Json::Object(p)) if matches!(p.get("properties"), Some(Json::Object(_)))
        );
        if !has_properties {
            c.fail(
                field(&path, "parameters"),
                "must be an object with a `properties` object (LLaMA-Factory's tool formatter \
                 reads it)",
            );
        }
        names.push(name.to_owned());
    }
    Some(names)
}

/// A function_call turn's value: optionally a `<think>` block, then JSON naming the function
/// and giving its arguments as an object (or a list of such calls).
fn lf_call(value: &str, path: &str, declared: Option<&[String]>, c: &mut Check) {
    let mut json_text = value;
    if let Some(rest) = value.strip_prefix(THINK_OPEN) {
        match rest.find(THINK_CLOSE) {
            Some(end) => json_text = &rest[end + THINK_CLOSE.len()..],
            None => {
                c.fail(path, "a <think> block that is never closed");
                return;
            }
        }
    }
    let parsed = match parse(json_text) {
        Ok(v) => v,
        Err(e) => {
            c.fail(
                path,
                format!("must be a JSON function call, LLaMA-Factory cannot read it: {e}"),
            );
            return;
        }
    };
    if let Some(p) = non_finite(&parsed) {
        c.fail(
            path,
            format!("holds NaN or Infinity at {p}, which is not JSON"),
        );
    }
    let calls: Vec<&Json> = match &parsed {
        Json::Array(items) if !items.is_empty() => items.iter().collect(),
        Json::Array(_) => {
            c.fail(path, "an empty list of calls");
            return;
        }
        other => vec![other],
    };
    for call in calls {
        let Json::Object(call) = call else {
            c.fail(
                path,
                format!(
                    "a call must be an object with name and arguments, not {}",
                    call.kind()
                ),
            );
            continue;
        };
        let name = match call.get("name") {
            Some(Json::String(n)) if !n.is_empty() => Some(n.as_str()),
            _ => {
                c.fail(path, "the call's name must be a non-empty string");
                None
            }
        };
        match call.get("arguments") {
            Some(Json::Object(_)) => {}
            Some(Json::String(_)) => c.fail(
                path,
                "the call's arguments must be an object, not a string holding JSON",
            ),
            Some(other) => c.fail(
                path,
                format!(
                    "the call's arguments must be an object, not {}",
                    other.kind()
                ),
            ),
            None => c.fail(path, "the call has no arguments"),
        }
        if let (Some(name), Some(declared)) = (name, declared) {
            if !declared.iter().any(|d| d == name) {
                c.fail(
                    path,
                    format!("calls {name:?}, which tools does not declare"),
                );
            }
        }
    }
}

// --- TRL ------------------------------------------------------------------------------------

fn trl_sft(row: &JsonObject, c: &mut Check) {
    for key in ["prompt", "completion", "chosen", "rejected"] {
        if row.get(key).is_some() {
            c.fail(
                key,
                "a language-modeling row has only `messages` (TRL refuses mixed layouts)",
            );
        }
    }
    weight_column(row, c);
    let declared = tools_list(row, Dialect::Trl, c);
    if let Some(messages) = array(row, "", "messages", c) {
        conversation(
            &[("messages", messages)],
            Dialect::Trl,
            declared.as_deref(),
            c,
        );
    }
}

fn trl_preference(row: &JsonObject, c: &mut Check) {
    for key in ["messages", "completion"] {
        if row.get(key).is_some() {
            c.fail(
                key,
                "a preference row has only `prompt`, `chosen` and `rejected` (TRL refuses mixed \
                 layouts)",
            );
        }
    }
    weight_column(row, c);
    let declared = tools_list(row, Dialect::Trl, c);
    let prompt = array(row, "", "prompt", c);
    let chosen = array(row, "", "chosen", c);
    let rejected = array(row, "", "rejected", c);
    let Some(prompt) = prompt else {
        return;
    };
    if prompt.is_empty() {
        c.fail(
            "prompt",
            "is empty: TRL's DPOTrainer stops on an empty prompt (\"Cannot apply chat template \
             to an empty conversation\"); it holds the conversation before the goal",
        );
        return;
    }
    for (key, side) in [("chosen", chosen), ("rejected", rejected)] {
        if let Some(side) = side {
            conversation(
                &[("prompt", prompt), (key, side)],
                Dialect::Trl,
                declared.as_deref(),
                c,
            );
        }
    }
    let (Some(chosen), Some(rejected)) = (chosen, rejected) else {
        return;
    };
    let role = |m: Option<&Json>| match m {
        Some(Json::Object(o)) => o.get("role").and_then(Json::as_str).map(str::to_owned),
        _ => None,
    };
    for (key, side) in [("chosen", chosen), ("rejected", rejected)] {
        if role(side.first()).as_deref() != Some("user") {
            c.fail(
                format!("{key}[0]"),
                "must be the user's goal: the pair contrasts two goals for one trajectory",
            );
            return;
        }
    }
    if chosen[0] == rejected[0] {
        c.fail(
            "rejected[0]",
            "has the same user goal as chosen: the pair contrasts nothing",
        );
    }
    if chosen.len() != rejected.len() {
        c.fail(
            "rejected",
            format!(
                "has {} messages and chosen {}: the pair must be the same trajectory",
                rejected.len(),
                chosen.len()
            ),
        );
        return;
    }
    for (i, (a, b)) in chosen.iter().zip(rejected).enumerate().skip(1) {
        if a != b {
            c.fail(
                format!("rejected[{i}]"),
                "differs from chosen: the pair may differ only in the user's goal",
            );
        }
    }
}

/// The function names a `tools` array declares (`None` when there is no array, or it is
/// broken). TRL also reads the array from a JSON string.
fn tools_list(row: &JsonObject, dialect: Dialect, c: &mut Check) -> Option<Vec<String>> {
    let parsed;
    let tools = match (row.get("tools"), dialect) {
        (None, _) => return None,
        (Some(Json::Array(tools)), _) => tools,
        (Some(Json::String(text)), Dialect::Trl) => {
            parsed = tools_text(text, c)?;
            parsed.as_array()?
        }
        (Some(other), Dialect::Trl) => {
            c.fail(
                "tools",
                format!(
                    "must be an array or a string holding one, not {}",
                    other.kind()
                ),
            );
            return None;
        }
        (Some(other), Dialect::OpenAi) => {
            c.fail("tools", format!("must be an array, not {}", other.kind()));
            return None;
        }
    };
    let mut names = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let path = format!("tools[{i}]");
        let Json::Object(tool) = tool else {
            c.fail(path, format!("must be an object, not {}", tool.kind()));
            return None;
        };
        if !matches!(tool.get("type"), Some(Json::String(t)) if t == "function") {
            c.fail(field(&path, "type"), "must be \"function\"");
        }
        let Some(Json::Object(function)) = tool.get("function") else {
            c.fail(field(&path, "function"), "must be an object");
            return None;
        };
        let fpath = field(&path, "function");
        let name = string(function, &fpath, "name", c)?;
        if let Some(p) = function.get("parameters") {
            if !matches!(p, Json::Object(_)) {
                c.fail(
                    field(&fpath, "parameters"),
                    format!("must be a JSON-schema object, not {}", p.kind()),
                );
            }
        }
        names.push(name.to_owned());
    }
    Some(names)
}

#[derive(Clone, Copy, PartialEq)]
enum Dialect {
    Trl,
    OpenAi,
}

const OPENAI_MESSAGE_KEYS: [&str; 6] = [
    "role",
    "content",
    "name",
    "weight",
    "tool_calls",
    "tool_call_id",
];

/// A conversation's messages under TRL's or OpenAI's rules. The conversation may be held by
/// several columns one after the other (`parts`: each column's name and messages), as a
/// preference row's `prompt` and `chosen`.
fn conversation(
    parts: &[(&str, &[Json])],
    dialect: Dialect,
    declared: Option<&[String]>,
    c: &mut Check,
) {
    let path = parts.first().map_or("messages", |(name, _)| name);
    let messages: Vec<(String, &Json)> = parts
        .iter()
        .flat_map(|(name, part)| {
            part.iter()
                .enumerate()
                .map(move |(i, m)| (format!("{name}[{i}]"), m))
        })
        .collect();
    if messages.is_empty() {
        c.fail(path, "is empty");
        return;
    }
    // Calls of the last assistant message not answered yet: (id or name, name).
    let mut pending: Vec<(String, String)> = Vec::new();
    let mut seen_ids: Vec<String> = Vec::new();
    let mut seen_user = false;
    let mut trained = false;
    let mut last_was_answer = false;
    for (i, (mpath, m)) in messages.iter().enumerate() {
        let mpath = mpath.as_str();
        let Json::Object(m) = m else {
            c.fail(mpath, format!("must be an object, not {}", m.kind()));
            return;
        };
        if dialect == Dialect::OpenAi {
            for key in m.keys() {
                if !OPENAI_MESSAGE_KEYS.contains(&key) {
                    c.fail(
                        field(mpath, key),
                        "unknown message key: OpenAI's fine-tuning refuses it",
                    );
                }
            }
        }
        let Some(role) = string(m, mpath, "role", c) else {
            return;
        };
        if let Some(w) = m.get("weight") {
            if dialect == Dialect::OpenAi {
                if role != "assistant" {
                    c.fail(
                        field(mpath, "weight"),
                        "only assistant messages may have a weight",
                    );
                }
                match w {
                    Json::Number(Number::Int(n)) if n == "0" || n == "1" => {}
                    other => c.fail(
                        field(mpath, "weight"),
                        format!("must be 0 or 1, not {other}"),
                    ),
                }
            }
        }
        last_was_answer = false;
        match role {
            "system" => {
                if i != 0 {
                    c.fail(
                        field(mpath, "role"),
                        "a system message may only open the conversation",
                    );
                }
                match dialect {
                    // TRL renders an empty system message; OpenAI wants content.
                    Dialect::Trl => {
                        string(m, mpath, "content", c);
                    }
                    Dialect::OpenAi => content_text(m, mpath, c),
                }
            }
            "user" => {
                unanswered(&mut pending, mpath, c);
                seen_user = true;
                content_text(m, mpath, c);
            }
            "assistant" => {
                unanswered(&mut pending, mpath, c);
                if !seen_user {
                    c.fail(
                        field(mpath, "role"),
                        "the assistant speaks before the user's goal",
                    );
                }
                if !matches!(m.get("weight"), Some(Json::Number(Number::Int(n))) if n == "0") {
                    trained = true;
                }
                match m.get("tool_calls") {
                    Some(calls) => {
                        match m.get("content") {
                            None | Some(Json::Null) | Some(Json::String(_)) => {}
                            Some(other) => c.fail(
                                field(mpath, "content"),
                                format!("must be a string, not {}", other.kind()),
                            ),
                        }
                        pending = tool_calls(
                            calls,
                            &field(mpath, "tool_calls"),
                            dialect,
                            declared,
                            &mut seen_ids,
                            c,
                        );
                    }
                    None => {
                        content_text(m, mpath, c);
                        last_was_answer = true;
                    }
                }
            }
            "tool" => {
                match m.get("content") {
                    Some(Json::String(_)) => {}
                    Some(other) => c.fail(
                        field(mpath, "content"),
                        format!("must be a string, not {}", other.kind()),
                    ),
                    None => c.fail(field(mpath, "content"), "missing"),
                }
                answer(m, mpath, dialect, &mut pending, c);
            }
            other => {
                c.fail(
                    field(mpath, "role"),
                    format!("unknown role {other:?} (system, user, assistant, tool)"),
                );
                return;
            }
        }
    }
    let end = messages[messages.len() - 1].0.as_str();
    unanswered(&mut pending, end, c);
    if !last_was_answer {
        c.fail(
            end,
            "the conversation must end with an assistant answer (content, no tool calls)",
        );
    }
    if !seen_user {
        c.fail(path, "has no user message");
    }
    if dialect == Dialect::OpenAi && !trained {
        c.fail(
            path,
            "every assistant message has weight 0: there is nothing to train on",
        );
    }
}

/// A non-blank string `content`.
fn content_text(m: &JsonObject, path: &str, c: &mut Check) {
    if let Some(s) = string(m, path, "content", c) {
        if is_blank(s) {
            c.fail(field(path, "content"), "must not be blank");
        }
    }
}

/// Reports the calls still waiting for their tool message when the conversation moves on.
fn unanswered(pending: &mut Vec<(String, String)>, path: &str, c: &mut Check) {
    if !pending.is_empty() {
        let ids: Vec<&str> = pending.iter().map(|(id, _)| id.as_str()).collect();
        c.fail(
            path,
            format!(
                "tool call(s) {} not answered by a tool message before this point",
                ids.join(", ")
            ),
        );
        pending.clear();
    }
}

/// Checks an assistant message's `tool_calls` and returns the calls it leaves pending: (id,
/// name) for OpenAI, (name, name) for TRL.
fn tool_calls(
    calls: &Json,
    path: &str,
    dialect: Dialect,
    declared: Option<&[String]>,
    seen_ids: &mut Vec<String>,
    c: &mut Check,
) -> Vec<(String, String)> {
    let Json::Array(calls) = calls else {
        c.fail(path, format!("must be an array, not {}", calls.kind()));
        return Vec::new();
    };
    if calls.is_empty() {
        c.fail(path, "is empty (leave it out when there is no call)");
    }
    let mut pending = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        let cpath = format!("{path}[{i}]");
        let Json::Object(call) = call else {
            c.fail(cpath, format!("must be an object, not {}", call.kind()));
            continue;
        };
        if !matches!(call.get("type"), Some(Json::String(t)) if t == "function") {
            c.fail(field(&cpath, "type"), "must be \"function\"");
        }
        let id = if dialect == Dialect::OpenAi {
            match call.get("id") {
                Some(Json::String(id)) if !id.is_empty() => {
                    if seen_ids.contains(id) {
                        c.fail(
                            field(&cpath, "id"),
                            format!("{id:?} is used by an earlier call"),
                        );
                    }
                    seen_ids.push(id.clone());
                    Some(id.clone())
                }
                _ => {
                    c.fail(field(&cpath, "id"), "must be a non-empty string");
                    None
                }
            }
        } else {
            None
        };
        let Some(Json::Object(function)) = call.get("function") else {
            c.fail(field(&cpath, "function"), "must be an object");
            continue;
        };
        let fpath = field(&cpath, "function");
        let name = match function.get("name") {
            Some(Json::String(n)) if !n.is_empty() => n.clone(),
            _ => {
                c.fail(field(&fpath, "name"), "must be a non-empty string");
                continue;
            }
        };
        if let Some(declared) = declared {
            if !declared.contains(&name) {
                c.fail(
                    field(&fpath, "name"),
                    format!("calls {name:?}, which tools does not declare"),
                );
            }
        }
        let apath = field(&fpath, "arguments");
        match (dialect, function.get("arguments")) {
            (Dialect::Trl, Some(Json::Object(_))) => {}
            (Dialect::Trl, Some(Json::String(_))) => c.fail(
                apath,
                "must be an object (TRL hands it to the chat template as a mapping), not a \
                 string holding JSON",
            ),
            (Dialect::OpenAi, Some(Json::String(text))) => match parse(text) {
                Ok(Json::Object(args)) => {
                    if let Some(p) = non_finite(&Json::Object(args)) {
                        c.fail(
                            apath,
                            format!("holds NaN or Infinity at {p}, which is not JSON"),
                        );
                    }
                }
                Ok(other) => c.fail(
                    apath,
                    format!("must hold a JSON object, not {}", other.kind()),
                ),
                Err(e) => c.fail(apath, format!("does not hold JSON: {e}")),
            },
            (Dialect::OpenAi, Some(Json::Object(_))) => c.fail(
                apath,
                "must be a string holding JSON (OpenAI's layout), not an object",
            ),
            (_, Some(other)) => c.fail(apath, format!("has the wrong type: {}", other.kind())),
            (_, None) => c.fail(apath, "missing"),
        }
        pending.push((id.unwrap_or_else(|| name.clone()), name));
    }
    pending
}

/// A tool message: it must answer a pending call (OpenAI: by `tool_call_id`, any order; TRL:
/// the next call, by `name`).
fn answer(
    m: &JsonObject,
    path: &str,
    dialect: Dialect,
    pending: &mut Vec<(String, String)>,
    c: &mut Check,
) {
    match dialect {
        Dialect::OpenAi => {
            let Some(id) = string(m, path, "tool_call_id", c) else {
                return;
            };
            match pending.iter().position(|(p, _)| p == id) {
                Some(i) => {
                    pending.remove(i);
                }
                None => c.fail(
                    field(path, "tool_call_id"),
                    format!("{id:?} answers no pending tool call of the assistant message before"),
                ),
            }
        }
        Dialect::Trl => {
            let Some(name) = string(m, path, "name", c) else {
                return;
            };
            if pending.is_empty() {
                c.fail(
                    field(path, "role"),
                    "a tool message without a tool call to answer",
                );
                return;
            }
            let (_, expected) = pending.remove(0);
            if name != expected {
                c.fail(
                    field(path, "name"),
                    format!("{name:?} answers the call to {expected:?}"),
                );
            }
        }
    }
}

// --- OpenAI ---------------------------------------------------------------------------------

fn openai(row: &JsonObject, c: &mut Check) {
    for key in row.keys() {
        if !matches!(key, "messages" | "tools" | "parallel_tool_calls") {
            c.fail(key, "unknown key: OpenAI's fine-tuning refuses it");
        }
    }
    if let Some(p) = row.get("parallel_tool_calls") {
        if !matches!(p, Json::Bool(_)) {
            c.fail("parallel_tool_calls", "must be true or false");
        }
    }
    let declared = tools_list(row, Dialect::OpenAi, c);
    if let Some(messages) = array(row, "", "messages", c) {
        conversation(
            &[("messages", messages)],
            Dialect::OpenAi,
            declared.as_deref(),
            c,
        );
    }
}
