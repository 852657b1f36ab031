//! The tool schemas an export declares: the ones an imported run carried, and for every action
//! they do not cover a schema inferred from the calls themselves.

use crate::json::{Json, JsonObject};
use crate::model::Trajectory;

/// The functions the trajectory's tools offer, as bare function objects (`name`,
/// `description` when known, `parameters`), in this order: the source's declared tools
/// (`origin.tools`, unwrapped from `{"type": "function", "function": ...}`, each name once),
/// then an inferred schema for every action name they do not declare, in order of first use.
pub fn functions(t: &Trajectory) -> Vec<JsonObject> {
    let mut out: Vec<JsonObject> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    if let Some(origin) = &t.origin {
        for tool in &origin.tools {
            let Json::Object(tool) = tool else {
                continue;
            };
            let function = match (tool.get("type"), tool.get("function")) {
                (Some(Json::String(kind)), Some(Json::Object(f))) if kind == "function" => {
                    f.clone()
                }
                _ => tool.clone(),
            };
            let Some(Json::String(name)) = function.get("name") else {
                continue;
            };
            if name.is_empty() || names.contains(name) {
                continue;
            }
            names.push(name.clone());
            out.push(function);
        }
    }
    for step in t.steps.iter().filter(|s| !s.is_respond()) {
        if !names.contains(&step.action_name) {
            names.push(step.action_name.clone());
            out.push(infer(t, &step.action_name));
        }
    }
    out
}

/// A function object wrapped as an OpenAI / TRL tool: `{"type": "function", "function": f}`.
pub fn wrap(function: JsonObject) -> Json {
    let mut tool = JsonObject::new();
    tool.insert("type", Json::from("function"));
    tool.insert("function", Json::Object(function));
    Json::Object(tool)
}

/// The `tools` column of the chat layouts: every function of `t`, wrapped.
pub fn column(t: &Trajectory) -> Json {
    Json::Array(functions(t).into_iter().map(wrap).collect())
}

/// A schema for `name` from its calls in `t`: `parameters` is a JSON-schema object whose
/// properties are the argument keys seen (in order of first appearance), each typed from the
/// values seen for it, and whose `required` lists the keys present in every call.
pub fn infer(t: &Trajectory, name: &str) -> JsonObject {
    struct Key {
        name: String,
        types: Vec<&'static str>,
        items: Vec<&'static str>,
        calls: usize,
    }
    let mut keys: Vec<Key> = Vec::new();
    let mut calls = 0;
    for step in t.steps.iter().filter(|s| s.action_name == name) {
        calls += 1;
        for (k, v) in step.action_input.iter() {
            let i = match keys.iter().position(|key| key.name == k) {
                Some(i) => i,
                None => {
                    keys.push(Key {
                        name: k.to_owned(),
                        types: Vec::new(),
                        items: Vec::new(),
                        calls: 0,
                    });
                    keys.len() - 1
                }
            };
            let key = &mut keys[i];
            key.calls += 1;
            add_type(&mut key.types, type_name(v));
            if let Json::Array(elements) = v {
                for e in elements {
                    add_type(&mut key.items, type_name(e));
                }
            }
        }
    }
    let mut properties = JsonObject::new();
    let mut required = Vec::new();
    for key in &keys {
        let mut schema = JsonObject::new();
        schema.insert("type", type_value(&key.types));
        if key.types == ["array"] && key.items.len() == 1 {
            let mut items = JsonObject::new();
            items.insert("type", type_value(&key.items));
            schema.insert("items", Json::Object(items));
        }
        properties.insert(key.name.clone(), Json::Object(schema));
        if key.calls == calls {
            required.push(Json::from(key.name.as_str()));
        }
    }
    let mut parameters = JsonObject::new();
    parameters.insert("type", Json::from("object"));
    parameters.insert("properties", Json::Object(properties));
    parameters.insert("required", Json::Array(required));
    let mut function = JsonObject::new();
    function.insert("name", Json::from(name));
    function.insert("parameters", Json::Object(parameters));
    function
}

/// The JSON-schema type of a value.
fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(crate::json::Number::Int(_)) => "integer",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// Adds a type to the types seen, integers and numbers together being numbers.
fn add_type(types: &mut Vec<&'static str>, t: &'static str) {
    if types.contains(&t) || (t == "integer" && types.contains(&"number")) {
        return;
    }
    if t == "number" {
        if let Some(slot) = types.iter_mut().find(|x| **x == "integer") {
            *slot = "number";
            return;
        }
    }
    types.push(t);
}

/// One type as a string, several as an array of strings.
fn type_value(types: &[&'static str]) -> Json {
    match types {
        [one] => Json::from(*one),
        many => Json::Array(many.iter().map(|t| Json::from(*t)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;
    use crate::model::{Origin, Step};

    fn step(name: &str, input: &str) -> Step {
        Step {
            thought: String::new(),
            action_name: name.into(),
            action_input: match parse(input).unwrap() {
                Json::Object(o) => o,
                _ => panic!("not an object"),
            },
            observation: String::new(),
            call: None,
            kind: Default::default(),
        }
    }

    fn traj(steps: Vec<Step>) -> Trajectory {
        Trajectory {
            trajectory_id: "t".into(),
            original_prompt: "p".into(),
            steps,
            final_answer: String::new(),
            failure_reason: String::new(),
            metadata: Default::default(),
            origin: None,
        }
    }

    #[test]
    fn schemas_are_inferred_from_every_call() {
        let t = traj(vec![
            step("s", r#"{"q": "a", "n": 1, "tags": ["x"], "mixed": 1}"#),
            step("other", r#"{}"#),
            step(
                "s",
                r#"{"q": "b", "n": 2.5, "tags": [], "mixed": "one", "opt": {"k": null}}"#,
            ),
            step("s", r#"{"q": "c", "n": 3, "tags": ["y", 2]}"#),
        ]);
        let fs = functions(&t);
        assert_eq!(
            Json::Array(fs.into_iter().map(Json::Object).collect()).to_python_json(),
            concat!(
                r#"[{"name": "s", "parameters": {"type": "object", "properties": {"#,
                r#""q": {"type": "string"}, "n": {"type": "number"}, "#,
                r#""tags": {"type": "array"}, "mixed": {"type": ["integer", "string"]}, "#,
                r#""opt": {"type": "object"}}, "required": ["q", "n", "tags"]}}, "#,
                r#"{"name": "other", "parameters": {"type": "object", "properties": {}, "#,
                r#""required": []}}]"#
            )
        );
        let t = traj(vec![step("s", r#"{"ids": [1, 2.0]}"#)]);
        assert_eq!(
            Json::Object(infer(&t, "s")).to_python_json(),
            r#"{"name": "s", "parameters": {"type": "object", "properties": {"ids": {"type": "array", "items": {"type": "number"}}}, "required": ["ids"]}}"#
        );
    }

    #[test]
    fn declared_tools_come_first_unwrapped_once_each() {
        let mut t = traj(vec![
            step("search", r#"{"q": "a"}"#),
            step("open", r#"{"id": 1}"#),
        ]);
        t.origin = Some(Origin {
            format: "openai_messages".into(),
            system: None,
            tools: vec![
                crate::json::parse(r#"{"type": "function", "function": {"name": "search", "description": "d", "parameters": {"type": "object", "properties": {}}}}"#).unwrap(),
                crate::json::parse(r#"{"name": "search", "description": "second"}"#).unwrap(),
                crate::json::parse(r#"{"name": "bare"}"#).unwrap(),
                crate::json::parse(r#""not a tool""#).unwrap(),
                crate::json::parse(r#"{"type": "function"}"#).unwrap(),
            ],
            succeeded: false,
            ..Default::default()
        });
        let names: Vec<String> = functions(&t)
            .iter()
            .map(|f| f.get("name").and_then(Json::as_str).unwrap().to_owned())
            .collect();
        assert_eq!(names, ["search", "bare", "open"]);
        assert_eq!(
            functions(&t)[0].get("description").and_then(Json::as_str),
            Some("d")
        );
        assert_eq!(
            wrap(functions(&t).remove(1)).to_python_json(),
            r#"{"type": "function", "function": {"name": "bare"}}"#
        );
    }

    #[test]
    fn declared_schemas_are_written_as_the_source_wrote_them() {
        let schema = r#"{"name": "pick", "parameters": {"type": "object", "properties": {"n": {"type": "integer", "maximum": 123456789012345678901234567890, "default": 1.0, "scale": Infinity}}}}"#;
        let mut t = traj(vec![step("pick", r#"{"n": 2}"#)]);
        t.origin = Some(Origin {
            format: "sharegpt".into(),
            tools: vec![crate::json::parse(schema).unwrap()],
            ..Default::default()
        });
        assert_eq!(
            column(&t).to_python_json(),
            format!(r#"[{{"type": "function", "function": {schema}}}]"#)
        );
    }
}
