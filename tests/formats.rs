//! The export layouts: exact rows for hand-built trajectories, every row passing its layout's
//! validator, the validators catching hand-made violations, the OpenAI round trip of ids,
//! argument strings and results, `build` and the manifest.
#![cfg(not(target_arch = "wasm32"))]

use agenther::export::{
    self, build, checked_line, llamafactory, manifest, manifest_file_name, validate_file,
    validate_line, ExportItem, ExportOptions, IntegerAsText, Provenance, RunContext, SampleKind,
    Target,
};
use agenther::json::{parse, Json, JsonObject};
use agenther::llm::Templates;
use agenther::model::{Origin, Relabel, SampleFormat, Step, ToolCall, Trajectory};
use agenther::pipeline::{Outcome, Settings, TrajectoryResult};
use agenther::reader::SourcePos;
use agenther::session::Session;
use agenther::stages::detect::rules::{detect, Lexicon};
use agenther::stages::relabel::{Judges, RelabelDecision, RelabelReport};
use serde_json::Value;

fn object(text: &str) -> JsonObject {
    match parse(text).expect("test JSON parses") {
        Json::Object(o) => o,
        other => panic!("expected an object, found {}", other.kind()),
    }
}

fn step(thought: &str, name: &str, input: &str, observation: &str) -> Step {
    Step {
        thought: thought.into(),
        action_name: name.into(),
        action_input: object(input),
        observation: observation.into(),
        call: None,
        kind: Default::default(),
    }
}

/// A run read in the native schema: no `call`, no `origin`.
fn native_run() -> Trajectory {
    Trajectory {
        trajectory_id: "shop-1".into(),
        original_prompt: "Buy running shoes under $50".into(),
        steps: vec![
            step(
                "Search the catalogue first.",
                "search",
                r#"{"q": "running shoes", "max_price": 50, "big": 123456789012345678901234567890}"#,
                "Found: Pegasus $89, Run $95",
            ),
            step("", "finish", "{}", ""),
        ],
        final_answer: "Nothing under $50; the cheapest is the Pegasus at $89.".into(),
        failure_reason: "over budget".into(),
        metadata: Default::default(),
        origin: None,
    }
}

/// A run imported from OpenAI messages: a system prompt, a declared tool, two parallel calls
/// in its first turn, a call without an id in its second, nested arguments, no final answer.
fn imported_run() -> Trajectory {
    let mut t = Trajectory {
        trajectory_id: "imp-1".into(),
        original_prompt: "Buy boots under €40".into(),
        steps: vec![
            step(
                "Two lookups at once",
                "search",
                r#"{"q": "ботинки 🥾"}"#,
                "3 results: A1 €45, B2 €52, C3 €39",
            ),
            step(
                "",
                "price",
                r#"{"sku": "A1", "opts": {"currency": "EUR", "tax": [true, null]}}"#,
                "A1: €45.00",
            ),
            step("", "price", r#"{"sku": "B2"}"#, "   "),
        ],
        final_answer: String::new(),
        failure_reason: "over budget".into(),
        metadata: Default::default(),
        origin: Some(Origin {
            format: "openai_messages".into(),
            system: Some("You are a shopping agent.".into()),
            tools: vec![parse(
                r#"{"type": "function", "function": {"name": "search", "description": "Search the catalogue",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}"#,
            )
            .unwrap()],
            succeeded: false,
            ..Default::default()
        }),
    };
    let calls = [
        ("call_abc", r#"{"q":"ботинки 🥾"}"#, 1),
        (
            "call_def",
            r#"{"sku":"A1","opts":{"currency":"EUR","tax":[true,null]}}"#,
            1,
        ),
        ("", r#"{"sku": "B2"}"#, 2),
    ];
    for (s, (id, arguments, turn)) in t.steps.iter_mut().zip(calls) {
        s.call = Some(ToolCall {
            id: id.into(),
            arguments: arguments.into(),
            turn,
        });
    }
    t
}

fn relabel(goal: &str) -> Relabel {
    Relabel {
        hindsight_prompt: goal.into(),
        is_valid_replay: true,
        rationale: "r".into(),
        confidence: 0.85,
    }
}

fn provenance(t: &Trajectory) -> Provenance {
    Provenance {
        kind: SampleKind::Relabeled,
        source_file: "runs.jsonl".into(),
        source_line: 3,
        trajectory_id: t.trajectory_id.clone(),
        import_format: t.origin.as_ref().map(|o| o.format.clone()),
        original_prompt: t.original_prompt.clone(),
        confidence: Some(0.85),
        relabel_confidence: Some(0.9),
        judge_confidence: Some(0.8),
        judges: Some("relabeler + judge".into()),
        relabel_model: Some("qwen2.5:7b".into()),
        judge_model: Some("llama3.1:8b".into()),
        model_goal: None,
        review: None,
        edited_goal: None,
    }
}

const NATIVE_GOAL: &str = "Find the cheapest running shoe in the catalogue";
const IMPORTED_GOAL: &str = "Look up boots and the prices of A1 and B2";

fn line(target: Target, t: &Trajectory, goal: &str, options: &ExportOptions) -> String {
    let r = relabel(goal);
    let item = ExportItem::relabeled(t, &r, 0.4, provenance(t));
    match checked_line(target, 1, &item, options) {
        Some(Ok(line)) => line.text,
        Some(Err(v)) => panic!("{} row breaks its rules: {v:?}", target.id()),
        None => panic!("{} has no row", target.id()),
    }
}

const NATIVE_PROVENANCE: &str = r#""provenance": {"kind": "relabeled", "source_file": "runs.jsonl", "source_line": 3, "trajectory_id": "shop-1", "import_format": null, "original_prompt": "Buy running shoes under $50", "confidence": 0.85, "relabel_confidence": 0.9, "judge_confidence": 0.8, "judges": "relabeler + judge", "relabel_model": "qwen2.5:7b", "judge_model": "llama3.1:8b", "model_goal": null, "review": null, "edited_goal": null}"#;
const IMPORTED_PROVENANCE: &str = r#""provenance": {"kind": "relabeled", "source_file": "runs.jsonl", "source_line": 3, "trajectory_id": "imp-1", "import_format": "openai_messages", "original_prompt": "Buy boots under €40", "confidence": 0.85, "relabel_confidence": 0.9, "judge_confidence": 0.8, "judges": "relabeler + judge", "relabel_model": "qwen2.5:7b", "judge_model": "llama3.1:8b", "model_goal": null, "review": null, "edited_goal": null}"#;

/// The provenance of a TRL row: `base` with the fields whose integers were written as
/// strings.
fn trl_provenance(base: &str, integers_as_strings: &[&str]) -> String {
    let fields: Vec<String> = integers_as_strings
        .iter()
        .map(|f| format!("\"{f}\""))
        .collect();
    format!(
        "{}, \"integers_as_strings\": [{}]}}",
        base.strip_suffix('}').expect("an object"),
        fields.join(", ")
    )
}

/// `text` as a JSON string literal (TRL's `tools` column holds the array as text).
fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

#[test]
fn llamafactory_row_of_a_native_run() {
    let expected = [
        r#"{"conversations": ["#,
        r#"{"from": "human", "value": "Find the cheapest running shoe in the catalogue"}, "#,
        r#"{"from": "function_call", "value": "{\"name\": \"search\", \"arguments\": {\"q\": \"running shoes\", \"max_price\": 50, \"big\": 123456789012345678901234567890}}"}, "#,
        r#"{"from": "observation", "value": "Found: Pegasus $89, Run $95"}, "#,
        r#"{"from": "function_call", "value": "{\"name\": \"finish\", \"arguments\": {}}"}, "#,
        r#"{"from": "observation", "value": ""}, "#,
        r#"{"from": "gpt", "value": "Nothing under $50; the cheapest is the Pegasus at $89."}], "#,
        r#""system": "", "#,
        r#""tools": "[{\"name\": \"search\", \"parameters\": {\"type\": \"object\", \"properties\": {\"q\": {\"type\": \"string\"}, \"max_price\": {\"type\": \"integer\"}, \"big\": {\"type\": \"integer\"}}, \"required\": [\"q\", \"max_price\", \"big\"]}}, {\"name\": \"finish\", \"parameters\": {\"type\": \"object\", \"properties\": {}, \"required\": []}}]", "#,
        r#""weight": 0.4, "#,
        NATIVE_PROVENANCE,
        "}",
    ]
    .concat();
    assert_eq!(
        line(
            Target::LlamaFactory,
            &native_run(),
            NATIVE_GOAL,
            &ExportOptions::default()
        ),
        expected
    );
}

#[test]
fn llamafactory_row_of_an_imported_run_splits_parallel_calls_and_keeps_thoughts_when_asked() {
    let options = ExportOptions {
        thoughts: true,
        provenance: false,
        ..ExportOptions::default()
    };
    let expected = [
        r#"{"conversations": ["#,
        r#"{"from": "human", "value": "Look up boots and the prices of A1 and B2"}, "#,
        r#"{"from": "function_call", "value": "<think>\nTwo lookups at once\n</think>\n\n{\"name\": \"search\", \"arguments\": {\"q\": \"ботинки 🥾\"}}"}, "#,
        r#"{"from": "observation", "value": "3 results: A1 €45, B2 €52, C3 €39"}, "#,
        r#"{"from": "function_call", "value": "{\"name\": \"price\", \"arguments\": {\"sku\": \"A1\", \"opts\": {\"currency\": \"EUR\", \"tax\": [true, null]}}}"}, "#,
        r#"{"from": "observation", "value": "A1: €45.00"}, "#,
        r#"{"from": "function_call", "value": "{\"name\": \"price\", \"arguments\": {\"sku\": \"B2\"}}"}, "#,
        r#"{"from": "observation", "value": "   "}, "#,
        r#"{"from": "gpt", "value": "A1: €45.00"}], "#,
        r#""system": "You are a shopping agent.", "#,
        r#""tools": "[{\"name\": \"search\", \"description\": \"Search the catalogue\", \"parameters\": {\"type\": \"object\", \"properties\": {\"q\": {\"type\": \"string\"}}, \"required\": [\"q\"]}}, {\"name\": \"price\", \"parameters\": {\"type\": \"object\", \"properties\": {\"sku\": {\"type\": \"string\"}, \"opts\": {\"type\": \"object\"}}, \"required\": [\"sku\"]}}]"}"#,
    ]
    .concat();
    assert_eq!(
        line(
            Target::LlamaFactory,
            &imported_run(),
            IMPORTED_GOAL,
            &options
        ),
        expected
    );
    // Without thoughts the value is the call's JSON alone.
    let plain = line(
        Target::LlamaFactory,
        &imported_run(),
        IMPORTED_GOAL,
        &ExportOptions::default(),
    );
    assert!(!plain.contains("<think>"));
    assert!(plain.contains(r#"{"from": "function_call", "value": "{\"name\": \"search\""#));
}

#[test]
fn trl_sft_row_of_an_imported_run() {
    let expected = [
        r#"{"messages": ["#,
        r#"{"role": "system", "content": "You are a shopping agent."}, "#,
        r#"{"role": "user", "content": "Look up boots and the prices of A1 and B2"}, "#,
        r#"{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "search", "arguments": {"q": "ботинки 🥾"}}}, {"type": "function", "function": {"name": "price", "arguments": {"sku": "A1", "opts": {"currency": "EUR", "tax": [true, null]}}}}]}, "#,
        r#"{"role": "tool", "name": "search", "content": "3 results: A1 €45, B2 €52, C3 €39"}, "#,
        r#"{"role": "tool", "name": "price", "content": "A1: €45.00"}, "#,
        r#"{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "price", "arguments": {"sku": "B2"}}}]}, "#,
        r#"{"role": "tool", "name": "price", "content": "   "}, "#,
        r#"{"role": "assistant", "content": "A1: €45.00"}], "#,
        r#""tools": "#,
        &json_string(
            r#"[{"type": "function", "function": {"name": "search", "description": "Search the catalogue", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}, {"type": "function", "function": {"name": "price", "parameters": {"type": "object", "properties": {"sku": {"type": "string"}, "opts": {"type": "object"}}, "required": ["sku"]}}}]"#,
        ),
        r#", "weight": 0.4, "#,
        &trl_provenance(IMPORTED_PROVENANCE, &[]),
        "}",
    ]
    .concat();
    assert_eq!(
        line(
            Target::TrlSft,
            &imported_run(),
            IMPORTED_GOAL,
            &ExportOptions::default()
        ),
        expected
    );
    // With thoughts, the reasoning is the content of the tool-call message it came with.
    let thoughtful = line(
        Target::TrlSft,
        &imported_run(),
        IMPORTED_GOAL,
        &ExportOptions {
            thoughts: true,
            ..ExportOptions::default()
        },
    );
    assert!(thoughtful.contains(
        r#"{"role": "assistant", "content": "Two lookups at once", "tool_calls": [{"type": "function", "function": {"name": "search""#
    ));
}

/// The native run's trajectory after its user goal, as TRL messages: its integer beyond 64 bits
/// written as a string.
const NATIVE_TRL_TURNS: &str = concat!(
    r#"{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "search", "arguments": {"q": "running shoes", "max_price": 50, "big": "123456789012345678901234567890"}}}]}, "#,
    r#"{"role": "tool", "name": "search", "content": "Found: Pegasus $89, Run $95"}, "#,
    r#"{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "finish", "arguments": {}}}]}, "#,
    r#"{"role": "tool", "name": "finish", "content": ""}, "#,
    r#"{"role": "assistant", "content": "Nothing under $50; the cheapest is the Pegasus at $89."}"#,
);

const NATIVE_TRL_TOOLS: &str = r#"[{"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {"q": {"type": "string"}, "max_price": {"type": "integer"}, "big": {"type": "integer"}}, "required": ["q", "max_price", "big"]}}}, {"type": "function", "function": {"name": "finish", "parameters": {"type": "object", "properties": {}, "required": []}}}]"#;

#[test]
fn trl_preference_pair_has_an_explicit_prompt_and_differs_only_in_the_goal() {
    let side =
        |goal: &str| format!(r#"[{{"role": "user", "content": "{goal}"}}, {NATIVE_TRL_TURNS}]"#);
    // No system prompt in the run: the prompt is an empty system message, never empty.
    let expected = [
        r#"{"prompt": [{"role": "system", "content": ""}], "chosen": "#,
        &side(NATIVE_GOAL),
        r#", "rejected": "#,
        &side("Buy running shoes under $50"),
        r#", "tools": "#,
        &json_string(NATIVE_TRL_TOOLS),
        r#", "weight": 0.4, "#,
        &trl_provenance(
            NATIVE_PROVENANCE,
            &[
                "chosen[1].tool_calls[0].function.arguments.big",
                "rejected[1].tool_calls[0].function.arguments.big",
            ],
        ),
        "}",
    ]
    .concat();
    assert_eq!(
        line(
            Target::TrlPreference,
            &native_run(),
            NATIVE_GOAL,
            &ExportOptions::default()
        ),
        expected
    );
    // A run with a system prompt: the prompt is that message, the sides start at the goal.
    let r = relabel(IMPORTED_GOAL);
    let imported = imported_run();
    let item = ExportItem::relabeled(&imported, &r, 0.4, provenance(&imported));
    let row = export::trl::preference_row(&item, &ExportOptions::default());
    assert_eq!(
        row.value
            .as_object()
            .unwrap()
            .get("prompt")
            .unwrap()
            .to_python_json(),
        r#"[{"role": "system", "content": "You are a shopping agent."}]"#
    );
    for (key, goal) in [
        ("chosen", IMPORTED_GOAL),
        ("rejected", "Buy boots under €40"),
    ] {
        let side = row
            .value
            .as_object()
            .unwrap()
            .get(key)
            .unwrap()
            .as_array()
            .unwrap();
        assert_eq!(
            side[0].to_python_json(),
            format!(r#"{{"role": "user", "content": "{goal}"}}"#)
        );
        assert_eq!(
            side.len(),
            7,
            "{key}: the goal, two turns with their results, the answer"
        );
    }
    assert!(row.integers_as_text.is_empty());
}

#[test]
fn trl_sft_writes_integers_beyond_64_bits_as_strings_and_says_so() {
    let r = relabel(NATIVE_GOAL);
    let t = native_run();
    let item = ExportItem::relabeled(&t, &r, 0.4, provenance(&t));
    let row = export::trl::sft_row(&item, &ExportOptions::default());
    assert_eq!(
        row.integers_as_text,
        [IntegerAsText {
            field: "messages[1].tool_calls[0].function.arguments.big".into(),
            digits: "123456789012345678901234567890".into(),
        }]
    );
    let text = line(Target::TrlSft, &t, NATIVE_GOAL, &ExportOptions::default());
    assert!(text.starts_with(&format!(
        r#"{{"messages": [{{"role": "user", "content": "{NATIVE_GOAL}"}}, {NATIVE_TRL_TURNS}], "tools": {}"#,
        json_string(NATIVE_TRL_TOOLS)
    )));
    // Inside JSON strings the digits stay a number: LLaMA-Factory's call and OpenAI's
    // arguments.
    for target in [Target::LlamaFactory, Target::OpenAi] {
        let item = ExportItem::relabeled(&t, &r, 0.4, provenance(&t));
        let row = export::row(target, &item, &ExportOptions::default()).unwrap();
        assert!(row.integers_as_text.is_empty(), "{}", target.id());
        let text = line(target, &t, NATIVE_GOAL, &ExportOptions::default());
        assert!(
            text.contains(r#"\"big\": 123456789012345678901234567890"#),
            "{}: {text}",
            target.id()
        );
    }
}

#[test]
fn openai_row_of_an_imported_run_keeps_its_calls() {
    let expected = [
        r#"{"messages": ["#,
        r#"{"role": "system", "content": "You are a shopping agent."}, "#,
        r#"{"role": "user", "content": "Look up boots and the prices of A1 and B2"}, "#,
        r#"{"role": "assistant", "tool_calls": [{"id": "call_abc", "type": "function", "function": {"name": "search", "arguments": "{\"q\":\"ботинки 🥾\"}"}}, {"id": "call_def", "type": "function", "function": {"name": "price", "arguments": "{\"sku\":\"A1\",\"opts\":{\"currency\":\"EUR\",\"tax\":[true,null]}}"}}]}, "#,
        r#"{"role": "tool", "tool_call_id": "call_abc", "content": "3 results: A1 €45, B2 €52, C3 €39"}, "#,
        r#"{"role": "tool", "tool_call_id": "call_def", "content": "A1: €45.00"}, "#,
        r#"{"role": "assistant", "tool_calls": [{"id": "call_3", "type": "function", "function": {"name": "price", "arguments": "{\"sku\": \"B2\"}"}}]}, "#,
        r#"{"role": "tool", "tool_call_id": "call_3", "content": "   "}, "#,
        r#"{"role": "assistant", "content": "A1: €45.00", "weight": 0}], "#,
        r#""tools": [{"type": "function", "function": {"name": "search", "description": "Search the catalogue", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}, {"type": "function", "function": {"name": "price", "parameters": {"type": "object", "properties": {"sku": {"type": "string"}, "opts": {"type": "object"}}, "required": ["sku"]}}}]}"#,
    ]
    .concat();
    assert_eq!(
        line(
            Target::OpenAi,
            &imported_run(),
            IMPORTED_GOAL,
            &ExportOptions::default()
        ),
        expected
    );
}

#[test]
fn openai_row_of_a_native_run_generates_ids_and_argument_strings() {
    let expected = [
        r#"{"messages": ["#,
        r#"{"role": "user", "content": "Find the cheapest running shoe in the catalogue"}, "#,
        r#"{"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "search", "arguments": "{\"q\": \"running shoes\", \"max_price\": 50, \"big\": 123456789012345678901234567890}"}}]}, "#,
        r#"{"role": "tool", "tool_call_id": "call_1", "content": "Found: Pegasus $89, Run $95"}, "#,
        r#"{"role": "assistant", "tool_calls": [{"id": "call_2", "type": "function", "function": {"name": "finish", "arguments": "{}"}}]}, "#,
        r#"{"role": "tool", "tool_call_id": "call_2", "content": ""}, "#,
        r#"{"role": "assistant", "content": "Nothing under $50; the cheapest is the Pegasus at $89."}], "#,
        r#""tools": [{"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {"q": {"type": "string"}, "max_price": {"type": "integer"}, "big": {"type": "integer"}}, "required": ["q", "max_price", "big"]}}}, {"type": "function", "function": {"name": "finish", "parameters": {"type": "object", "properties": {}, "required": []}}}]}"#,
    ]
    .concat();
    let options = ExportOptions {
        thoughts: true,
        ..ExportOptions::default()
    };
    let with_thoughts = line(Target::OpenAi, &native_run(), NATIVE_GOAL, &options);
    assert!(with_thoughts.contains(
        r#"{"role": "assistant", "content": "Search the catalogue first.", "tool_calls": [{"id": "call_1""#
    ));
    // Provenance never goes into an OpenAI row.
    let plain = line(
        Target::OpenAi,
        &native_run(),
        NATIVE_GOAL,
        &ExportOptions::default(),
    );
    assert_eq!(plain, expected);
}

#[test]
fn openai_round_trip_keeps_ids_arguments_and_results() {
    let t = imported_run();
    let text = line(Target::OpenAi, &t, IMPORTED_GOAL, &ExportOptions::default());
    let row: Value = serde_json::from_str(&text).unwrap();
    let messages = row["messages"].as_array().unwrap();
    let mut calls = Vec::new();
    let mut results = Vec::new();
    let mut call_messages = 0;
    for m in messages {
        if let Some(tc) = m["tool_calls"].as_array() {
            call_messages += 1;
            for c in tc {
                calls.push((
                    c["id"].as_str().unwrap().to_owned(),
                    c["function"]["name"].as_str().unwrap().to_owned(),
                    c["function"]["arguments"].as_str().unwrap().to_owned(),
                ));
            }
        }
        if m["role"] == "tool" {
            results.push((
                m["tool_call_id"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            ));
        }
    }
    // One assistant message per source turn; every call with its source id and argument text.
    assert_eq!(call_messages, 2);
    let expected_calls: Vec<(String, String, String)> = t
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let c = s.call.as_ref().unwrap();
            let id = if c.id.is_empty() {
                format!("call_{}", i + 1)
            } else {
                c.id.clone()
            };
            (id, s.action_name.clone(), c.arguments.clone())
        })
        .collect();
    assert_eq!(calls, expected_calls);
    let expected_results: Vec<(String, String)> = expected_calls
        .iter()
        .zip(&t.steps)
        .map(|((id, _, _), s)| (id.clone(), s.observation.clone()))
        .collect();
    assert_eq!(results, expected_results);
    assert_eq!(messages[0]["content"], "You are a shopping agent.");
}

/// Trajectories that stress the layouts: unicode line breaks, quotes and backslashes, a run
/// with nothing observed and no answer, a run of parallel calls only.
fn awkward_runs() -> Vec<Trajectory> {
    let mut odd = native_run();
    odd.trajectory_id = "odd".into();
    odd.steps[0].thought = "line\u{2028}break \"quoted\" back\\slash".into();
    odd.steps[0].observation = "x\u{85}y\u{2029}z <b>markup</b>".into();
    odd.final_answer = "  ".into();
    let mut silent = native_run();
    silent.trajectory_id = "silent".into();
    for s in &mut silent.steps {
        s.observation = String::new();
    }
    silent.final_answer = String::new();
    let mut parallel = imported_run();
    parallel.trajectory_id = "parallel".into();
    for s in &mut parallel.steps {
        s.call.as_mut().unwrap().turn = 7;
    }
    parallel.origin.as_mut().unwrap().system = None;
    vec![native_run(), imported_run(), odd, silent, parallel]
}

#[test]
fn every_row_passes_its_validator() {
    for t in awkward_runs() {
        for thoughts in [false, true] {
            for provenance in [false, true] {
                let options = ExportOptions {
                    thoughts,
                    provenance,
                    include_successes: false,
                    ..ExportOptions::default()
                };
                for target in Target::TOOLS {
                    let text = line(target, &t, "Report what the catalogue lists", &options);
                    assert!(!text.contains('\n') && !text.contains('\u{2028}'));
                    let v: Value = serde_json::from_str(&text).expect("strict JSON");
                    assert!(v.is_object());
                }
            }
        }
    }
    // A derived closing answer: the last observation, not trained on in OpenAI's layout.
    let silent = &awkward_runs()[3];
    let text = line(Target::OpenAi, silent, "Look", &ExportOptions::default());
    assert!(text.ends_with(r#"{"role": "assistant", "content": "Done.", "weight": 0}], "tools": [{"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {"q": {"type": "string"}, "max_price": {"type": "integer"}, "big": {"type": "integer"}}, "required": ["q", "max_price", "big"]}}}, {"type": "function", "function": {"name": "finish", "parameters": {"type": "object", "properties": {}, "required": []}}}]}"#));
}

/// (target, line, the field the violation names, a piece of its message).
const VIOLATIONS: &[(Target, &str, &str, &str)] = &[
    (Target::OpenAi, "not json", "", "not JSON"),
    (Target::TrlSft, "[1, 2]", "", "expected a JSON object"),
    (
        Target::TrlSft,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "weight": NaN}"#,
        "weight",
        "NaN and Infinity",
    ),
    // LLaMA-Factory
    (
        Target::LlamaFactory,
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "thinking"}, {"from": "function_call", "value": "{\"name\": \"s\", \"arguments\": {}}"}, {"from": "observation", "value": "r"}, {"from": "gpt", "value": "a"}]}"#,
        "conversations[2].from",
        "\"function_call\" at an even position",
    ),
    (
        Target::LlamaFactory,
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}, {"from": "human", "value": "more"}]}"#,
        "conversations",
        "3 turns after the system turn",
    ),
    (
        Target::LlamaFactory,
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}, {"from": "observation", "value": "r"}, {"from": "function_call", "value": "{\"name\": \"s\", \"arguments\": {}}"}]}"#,
        "conversations[3].from",
        "must end with a gpt turn",
    ),
    (
        Target::LlamaFactory,
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}, {"from": "observation", "value": "r"}, {"from": "gpt", "value": "b"}]}"#,
        "conversations[2].from",
        "must answer the function_call turn",
    ),
    (
        Target::LlamaFactory,
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "{\"name\": \"s\", \"arguments\": \"{\\\"q\\\": 1}\"}"}, {"from": "observation", "value": "r"}, {"from": "gpt", "value": "a"}]}"#,
        "conversations[1].value",
        "arguments must be an object, not a string",
    ),
    (
        Target::LlamaFactory,
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "s(q=1)"}, {"from": "observation", "value": "r"}, {"from": "gpt", "value": "a"}]}"#,
        "conversations[1].value",
        "must be a JSON function call",
    ),
    (
        Target::LlamaFactory,
        r#"{"conversations": [{"from": "human", "value": " "}, {"from": "gpt", "value": "a"}]}"#,
        "conversations[0].value",
        "must not be blank",
    ),
    (
        Target::LlamaFactory,
        r#"{"conversations": [{"from": "user", "value": "q"}, {"from": "gpt", "value": "a"}]}"#,
        "conversations[0].from",
        "unknown role",
    ),
    (
        Target::LlamaFactory,
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "tools": [{"name": "s"}]}"#,
        "tools",
        "must be a string holding a JSON array",
    ),
    (
        Target::LlamaFactory,
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "tools": "[{\"name\": \"s\""}"#,
        "tools",
        "does not hold JSON",
    ),
    (
        Target::LlamaFactory,
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "tools": "[{\"name\": \"s\"}]"}"#,
        "tools[0].parameters",
        "`properties` object",
    ),
    (
        Target::LlamaFactory,
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "{\"name\": \"t\", \"arguments\": {}}"}, {"from": "observation", "value": "r"}, {"from": "gpt", "value": "a"}], "tools": "[{\"name\": \"s\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}]"}"#,
        "conversations[1].value",
        "calls \"t\", which tools does not declare",
    ),
    (
        Target::LlamaFactory,
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "weight": 2}"#,
        "weight",
        "between 0 and 1",
    ),
    // TRL SFT
    (
        Target::TrlSft,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "s", "arguments": "{\"q\": 1}"}}]}, {"role": "tool", "name": "s", "content": "r"}, {"role": "assistant", "content": "a"}]}"#,
        "messages[1].tool_calls[0].function.arguments",
        "must be an object",
    ),
    (
        Target::TrlSft,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "tool", "name": "s", "content": "r"}, {"role": "assistant", "content": "a"}]}"#,
        "messages[1].role",
        "without a tool call to answer",
    ),
    (
        Target::TrlSft,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "s", "arguments": {}}}]}, {"role": "tool", "name": "t", "content": "r"}, {"role": "assistant", "content": "a"}]}"#,
        "messages[2].name",
        "\"t\" answers the call to \"s\"",
    ),
    (
        Target::TrlSft,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "s", "arguments": {}}}]}, {"role": "assistant", "content": "a"}]}"#,
        "messages[2]",
        "not answered by a tool message",
    ),
    (
        Target::TrlSft,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "s", "arguments": {}}}]}, {"role": "tool", "name": "s", "content": "r"}]}"#,
        "messages[2]",
        "must end with an assistant answer",
    ),
    (
        Target::TrlSft,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}"#,
        "messages[1].role",
        "may only open the conversation",
    ),
    (
        Target::TrlSft,
        r#"{"prompt": [], "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#,
        "prompt",
        "only `messages`",
    ),
    (
        Target::TrlSft,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "s", "arguments": {}}}]}, {"role": "tool", "name": "s", "content": "r"}, {"role": "assistant", "content": "a"}], "tools": [{"type": "function", "function": {"name": "t"}}]}"#,
        "messages[1].tool_calls[0].function.name",
        "which tools does not declare",
    ),
    (
        Target::TrlSft,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "s", "arguments": {"n": 1180591620717411303424}}}]}, {"role": "tool", "name": "s", "content": "r"}, {"role": "assistant", "content": "a"}]}"#,
        "messages[1].tool_calls[0].function.arguments.n",
        "the integer 1180591620717411303424 is beyond the signed 64-bit range",
    ),
    (
        Target::TrlSft,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tools": "{\"name\": \"s\"}"}"#,
        "tools",
        "must hold a JSON array, not an object",
    ),
    (
        Target::TrlSft,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tools": 3}"#,
        "tools",
        "must be an array or a string holding one",
    ),
    // TRL preference
    (
        Target::TrlPreference,
        r#"{"prompt": [{"role": "system", "content": ""}], "chosen": [{"role": "user", "content": "B"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "other"}]}"#,
        "rejected[1]",
        "may differ only in the user's goal",
    ),
    (
        Target::TrlPreference,
        r#"{"prompt": [{"role": "system", "content": ""}], "chosen": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "a"}]}"#,
        "rejected[0]",
        "contrasts nothing",
    ),
    (
        // An implicit prompt with no system message: TRL 1.16 extracts an empty prompt and
        // stops ("Cannot apply chat template to an empty conversation").
        Target::TrlPreference,
        r#"{"chosen": [{"role": "user", "content": "B"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "a"}]}"#,
        "prompt",
        "missing",
    ),
    (
        Target::TrlPreference,
        r#"{"prompt": [], "chosen": [{"role": "user", "content": "B"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "a"}]}"#,
        "prompt",
        "Cannot apply chat template to an empty conversation",
    ),
    (
        // The goal in the prompt: both completions are the same tokens, nothing to prefer.
        Target::TrlPreference,
        r#"{"prompt": [{"role": "user", "content": "B"}], "chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "a"}]}"#,
        "chosen[0]",
        "must be the user's goal",
    ),
    (
        Target::TrlPreference,
        r#"{"prompt": [{"role": "system", "content": ""}], "chosen": [{"role": "user", "content": "B"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "A"}]}"#,
        "rejected[0]",
        "must end with an assistant answer",
    ),
    (
        Target::TrlPreference,
        r#"{"prompt": [{"role": "system", "content": ""}], "chosen": [{"role": "user", "content": "B"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}], "rejected": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "a"}]}"#,
        "rejected",
        "has 2 messages and chosen 4",
    ),
    (
        Target::TrlPreference,
        r#"{"prompt": [{"role": "system", "content": ""}], "messages": [], "chosen": [{"role": "user", "content": "B"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "a"}]}"#,
        "messages",
        "only `prompt`, `chosen` and `rejected`",
    ),
    (
        Target::TrlPreference,
        r#"{"prompt": [{"role": "system", "content": ""}], "chosen": [{"role": "system", "content": "s"}, {"role": "user", "content": "B"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "a"}]}"#,
        "chosen[0].role",
        "may only open the conversation",
    ),
    (
        Target::TrlPreference,
        r#"{"prompt": [{"role": "system", "content": ""}], "chosen": [{"role": "user", "content": "B"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "s", "arguments": {"id": -9223372036854775809}}}]}, {"role": "tool", "name": "s", "content": "r"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "A"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "s", "arguments": {"id": -9223372036854775809}}}]}, {"role": "tool", "name": "s", "content": "r"}, {"role": "assistant", "content": "a"}]}"#,
        "chosen[1].tool_calls[0].function.arguments.id",
        "beyond the signed 64-bit range",
    ),
    // OpenAI
    (
        Target::OpenAi,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 2}]}"#,
        "messages[1].weight",
        "must be 0 or 1, not 2",
    ),
    (
        Target::OpenAi,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 1.0}]}"#,
        "messages[1].weight",
        "must be 0 or 1, not 1.0",
    ),
    (
        Target::OpenAi,
        r#"{"messages": [{"role": "user", "content": "q", "weight": 1}, {"role": "assistant", "content": "a"}]}"#,
        "messages[0].weight",
        "only assistant messages",
    ),
    (
        Target::OpenAi,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 0}]}"#,
        "messages",
        "nothing to train on",
    ),
    (
        Target::OpenAi,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "s", "arguments": {"q": 1}}}]}, {"role": "tool", "tool_call_id": "c1", "content": "r"}, {"role": "assistant", "content": "a"}]}"#,
        "messages[1].tool_calls[0].function.arguments",
        "must be a string holding JSON",
    ),
    (
        Target::OpenAi,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "s", "arguments": "[1]"}}]}, {"role": "tool", "tool_call_id": "c1", "content": "r"}, {"role": "assistant", "content": "a"}]}"#,
        "messages[1].tool_calls[0].function.arguments",
        "must hold a JSON object, not an array",
    ),
    (
        Target::OpenAi,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "s", "arguments": "{\"x\": NaN}"}}]}, {"role": "tool", "tool_call_id": "c1", "content": "r"}, {"role": "assistant", "content": "a"}]}"#,
        "messages[1].tool_calls[0].function.arguments",
        "NaN or Infinity at x",
    ),
    (
        Target::OpenAi,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "s", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c2", "content": "r"}, {"role": "assistant", "content": "a"}]}"#,
        "messages[2].tool_call_id",
        "\"c2\" answers no pending tool call",
    ),
    (
        Target::OpenAi,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "s", "arguments": "{}"}}, {"id": "c2", "type": "function", "function": {"name": "s", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c2", "content": "r"}, {"role": "assistant", "content": "a"}]}"#,
        "messages[3]",
        "tool call(s) c1 not answered",
    ),
    (
        Target::OpenAi,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "s", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c1", "content": "r"}, {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "s", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "c1", "content": "r"}, {"role": "assistant", "content": "a"}]}"#,
        "messages[3].tool_calls[0].id",
        "used by an earlier call",
    ),
    (
        Target::OpenAi,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "weight": 0.4}"#,
        "weight",
        "unknown key",
    ),
    (
        Target::OpenAi,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "thought": "t"}]}"#,
        "messages[1].thought",
        "unknown message key",
    ),
    (
        Target::OpenAi,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "function", "name": "s", "content": "r"}, {"role": "assistant", "content": "a"}]}"#,
        "messages[1].role",
        "unknown role \"function\"",
    ),
    (
        Target::OpenAi,
        r#"{"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]}"#,
        "messages[0].content",
        "must not be blank",
    ),
    (
        Target::OpenAi,
        r#"{"messages": [{"role": "assistant", "content": "a"}]}"#,
        "messages[0].role",
        "before the user's goal",
    ),
];

#[test]
fn validators_reject_hand_made_violations() {
    for (target, text, field, message) in VIOLATIONS {
        let found = validate_line(*target, 7, text);
        assert!(
            found
                .iter()
                .any(|v| v.line == 7 && v.field == *field && v.message.contains(message)),
            "{} {text}: expected {field}: …{message}…, found {found:#?}",
            target.id()
        );
    }
}

#[test]
fn the_minimal_valid_rows_pass() {
    let valid = [
        (
            Target::LlamaFactory,
            r#"{"conversations": [{"from": "system", "value": "s"}, {"from": "human", "value": "q"}, {"from": "function_call", "value": "[{\"name\": \"s\", \"arguments\": {}}, {\"name\": \"s\", \"arguments\": {\"k\": 1}}]"}, {"from": "observation", "value": ""}, {"from": "gpt", "value": "a"}], "tools": "[{\"type\": \"function\", \"function\": {\"name\": \"s\", \"parameters\": {\"type\": \"object\", \"properties\": {}}}}]"}"#,
        ),
        (
            Target::OpenAi,
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "a", "type": "function", "function": {"name": "s", "arguments": "{}"}}, {"id": "b", "type": "function", "function": {"name": "s", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "b", "content": ""}, {"role": "tool", "tool_call_id": "a", "content": "r"}, {"role": "assistant", "content": "a", "weight": 1}], "parallel_tool_calls": true}"#,
        ),
        (
            Target::TrlSft,
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#,
        ),
        (
            Target::TrlSft,
            r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "s", "arguments": {"n": 9223372036854775807, "m": "1180591620717411303424"}}}]}, {"role": "tool", "name": "s", "content": "r"}, {"role": "assistant", "content": "a"}], "tools": "[{\"type\": \"function\", \"function\": {\"name\": \"s\", \"parameters\": {\"max\": 1180591620717411303424}}}]"}"#,
        ),
        (
            Target::TrlPreference,
            r#"{"prompt": [{"role": "system", "content": ""}], "chosen": [{"role": "user", "content": "B"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "thanks"}, {"role": "assistant", "content": "b"}], "rejected": [{"role": "user", "content": "A"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "thanks"}, {"role": "assistant", "content": "b"}], "tools": []}"#,
        ),
    ];
    for (target, text) in valid {
        assert_eq!(validate_line(target, 1, text), vec![], "{}", target.id());
    }
}

#[test]
fn file_validation_numbers_lines_and_refuses_blank_ones() {
    let good = r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#;
    let bad = r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 2}]}"#;
    assert_eq!(
        validate_file(Target::OpenAi, &format!("{good}\n{good}\r\n")),
        vec![]
    );
    let found = validate_file(Target::OpenAi, &format!("{good}\n\n{bad}\n"));
    let summary: Vec<String> = found.iter().map(|v| v.to_string()).collect();
    assert_eq!(
        summary,
        [
            "line 2: blank line: every line must hold one JSON object",
            "line 3: messages[1].weight: must be 0 or 1, not 2",
        ]
    );
    assert_eq!(validate_file(Target::OpenAi, ""), vec![]);
}

#[test]
fn dataset_info_registers_the_file_with_its_tags() {
    let text = llamafactory::dataset_info("agenther", "agenther-llamafactory-1.jsonl");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"agenther": {
            "file_name": "agenther-llamafactory-1.jsonl",
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                     "assistant_tag": "gpt", "observation_tag": "observation",
                     "function_tag": "function_call", "system_tag": "system"}
        }})
    );
    assert_eq!(llamafactory::DATASET_INFO_FILE, "dataset_info.json");
}

// --- build and manifest over a session --------------------------------------------------

fn accepted(t: &Trajectory, goal: &str) -> TrajectoryResult {
    let analysis = detect(t);
    TrajectoryResult {
        trajectory_id: t.trajectory_id.clone(),
        analysis: Some(analysis),
        extracted: None,
        relabel: Some(RelabelReport {
            decision: RelabelDecision::Accepted {
                relabel: Relabel {
                    hindsight_prompt: goal.into(),
                    is_valid_replay: true,
                    rationale: "r".into(),
                    confidence: 0.85,
                },
                judges: Judges::RelabelerAndJudge,
                attempt: 1,
                relabel_confidence: 0.9,
                judge_confidence: Some(0.8),
            },
            attempts: Vec::new(),
            theta: 0.5,
            fallback_floor: 0.4,
            grounding: None,
        }),
        stage_calls: Vec::new(),
        outcome: Outcome::Accepted {
            judges: Judges::RelabelerAndJudge,
            confidence: 0.85,
            relabel_confidence: 0.9,
            judge_confidence: Some(0.8),
            attempt: 1,
        },
    }
}

/// A session: an accepted native run, a success (never relabeled), an accepted run whose
/// arguments hold NaN, a rejected run.
fn session() -> Session {
    let mut s = Session::new(Lexicon::default(), 0.3);
    let pos = |line| SourcePos {
        file: "runs.jsonl".into(),
        line,
        index: line - 1,
    };
    s.add_trajectory(native_run(), pos(1));
    let mut success = imported_run();
    success.trajectory_id = "won".into();
    success.origin.as_mut().unwrap().succeeded = true;
    success.final_answer = "Boots C3 cost €39.".into();
    s.add_trajectory(success, pos(2));
    let mut nan = native_run();
    nan.trajectory_id = "nan".into();
    nan.steps[0]
        .action_input
        .insert("score", Json::from(f64::NAN));
    s.add_trajectory(nan, pos(3));
    let mut rejected = native_run();
    rejected.trajectory_id = "no".into();
    s.add_trajectory(rejected, pos(4));
    let r = accepted(&s.entries[0].trajectory(), NATIVE_GOAL);
    s.set_result(0, r);
    let r = accepted(&s.entries[2].trajectory(), NATIVE_GOAL);
    s.set_result(2, r);
    let mut r = accepted(&s.entries[3].trajectory(), NATIVE_GOAL);
    r.relabel = None;
    r.outcome = Outcome::Rejected {
        stage: agenther::pipeline::Stage::Relabeling,
        reason: "no valid replay".into(),
    };
    s.set_result(3, r);
    s
}

fn ids_of(file: &export::ExportFile) -> Vec<String> {
    file.text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["provenance"]["trajectory_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Each finding as the check table shows it.
fn texts(findings: &[impl ToString]) -> Vec<String> {
    findings.iter().map(ToString::to_string).collect()
}

#[test]
fn build_validates_rows_and_reports_the_ones_left_out() {
    let s = session();
    let file = build(
        &s,
        Target::TrlSft,
        &ExportOptions::default(),
        "20261122-101500",
    );
    assert_eq!(file.name, "agenther-trl-sft-20261122-101500.jsonl");
    assert_eq!(ids_of(&file), ["shop-1"]);
    assert_eq!(file.rows, 1);
    assert_eq!(file.left_out, 1);
    assert_eq!(
        texts(&file.violations),
        ["line 2: nan: messages[1].tool_calls[0].function.arguments.score: NaN and Infinity are not JSON: the training tools cannot read them"]
    );
    assert_eq!(validate_file(Target::TrlSft, &file.text), vec![]);
    // The written row's integer beyond 64 bits: a string, said in the file's findings and in
    // the row's provenance.
    assert_eq!(
        texts(&file.rewrites),
        ["line 1: shop-1: messages[1].tool_calls[0].function.arguments.big: the integer 123456789012345678901234567890 is beyond the signed 64-bit range that Arrow-based loaders (🤗 datasets) read; written as the string \"123456789012345678901234567890\""]
    );
    let v: Value = serde_json::from_str(file.text.lines().next().unwrap()).unwrap();
    assert_eq!(
        v["messages"][1]["tool_calls"][0]["function"]["arguments"]["big"],
        "123456789012345678901234567890"
    );
    assert_eq!(
        v["provenance"]["integers_as_strings"],
        serde_json::json!(["messages[1].tool_calls[0].function.arguments.big"])
    );
    assert_eq!(v["weight"], 0.4);
    assert_eq!(v["provenance"]["source_line"], 1);
    assert_eq!(v["provenance"]["judges"], "relabeler + judge");
    assert_eq!(v["provenance"]["judge_confidence"], 0.8);

    // The native envelopes are the reference's, unchecked and unchanged.
    let native = build(
        &s,
        Target::Native(SampleFormat::Dpo),
        &ExportOptions::default(),
        "s",
    );
    assert_eq!(
        native.text,
        export::samples_jsonl(&s, SampleFormat::Dpo, &ExportOptions::default())
    );
    assert_eq!(native.rows, 2);
    assert_eq!(native.name, "agenther-dpo-s.jsonl");
}

#[test]
fn successes_are_included_only_when_asked() {
    let s = session();
    let asked = ExportOptions {
        include_successes: true,
        ..ExportOptions::default()
    };
    for target in [Target::LlamaFactory, Target::TrlSft] {
        assert_eq!(
            ids_of(&build(&s, target, &ExportOptions::default(), "s")),
            ["shop-1"]
        );
        assert_eq!(ids_of(&build(&s, target, &asked, "s")), ["shop-1", "won"]);
    }
    let file = build(&s, Target::TrlSft, &asked, "s");
    let success: Value = serde_json::from_str(file.text.lines().nth(1).unwrap()).unwrap();
    assert_eq!(success["weight"], 1.0);
    assert_eq!(success["provenance"]["kind"], "success");
    assert_eq!(success["provenance"]["confidence"], Value::Null);
    assert_eq!(success["messages"][1]["content"], "Buy boots under €40");
    assert_eq!(
        success["messages"].as_array().unwrap().last().unwrap()["content"],
        "Boots C3 cost €39."
    );
    // OpenAI rows carry neither weight nor provenance: look at the user goals instead.
    let openai = build(&s, Target::OpenAi, &asked, "s");
    let goals: Vec<Value> = openai
        .text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let messages = v["messages"].as_array().unwrap().clone();
            let user = messages.into_iter().find(|m| m["role"] == "user").unwrap();
            user["content"].clone()
        })
        .collect();
    assert_eq!(
        goals,
        [Value::from(NATIVE_GOAL), Value::from("Buy boots under €40")]
    );
    // A success has no goal to contrast: the preference layout never holds one.
    let pairs = build(&s, Target::TrlPreference, &asked, "s");
    assert_eq!(ids_of(&pairs), ["shop-1"]);
}

#[test]
fn manifest_lists_settings_templates_and_files_without_a_key() {
    let s = session();
    let options = ExportOptions {
        thoughts: true,
        ..ExportOptions::default()
    };
    let files: Vec<export::ExportFile> = Target::ALL
        .into_iter()
        .map(|t| build(&s, t, &options, "20261122-101500"))
        .collect();
    let settings = Settings {
        model: "qwen2.5:7b".into(),
        judge_model: Some("llama3.1:8b".into()),
        ..Settings::default()
    };
    let templates = Templates::defaults();
    let ctx = RunContext {
        endpoint: "http://localhost:11434/v1",
        settings: &settings,
        templates: templates.sources(),
        lexicon: &agenther::stages::detect::rules::Lexicon::default(),
        created_at: "2026-11-22T10:15:00Z",
        elapsed_ms: None,
        review: agenther::review::ReviewCounts::default(),
    };
    let refs: Vec<&export::ExportFile> = files.iter().collect();
    let m = serde_json::to_value(manifest(&ctx, &options, &refs)).unwrap();
    assert_eq!(m["product"], "agenther");
    assert_eq!(m["version"], agenther::version());
    assert_eq!(m["created_at"], "2026-11-22T10:15:00Z");
    assert_eq!(m["model"], "qwen2.5:7b");
    assert_eq!(m["judge_model"], "llama3.1:8b");
    assert_eq!(m["settings"]["theta"], 0.5);
    assert_eq!(m["templates"]["version"], templates.version());
    assert_eq!(m["templates"]["fingerprint"], templates.fingerprint());
    assert_eq!(m["templates"]["default"], true);
    assert_eq!(
        m["templates"]["files"]["relabel_user.j2"],
        templates.sources().relabel.user.as_str()
    );
    assert_eq!(m["lexicon"]["content"]["severity"]["base"], 0.3);
    assert_eq!(m["lexicon"]["fingerprint"].as_str().unwrap().len(), 64);
    assert_eq!(m["models"]["relabel"], "qwen2.5:7b");
    assert_eq!(m["models"]["judge"], "llama3.1:8b");
    assert_eq!(m["models"]["judge_same_model"], false);
    assert_eq!(m["export_options"]["thoughts"], true);
    assert_eq!(
        m["formats"],
        serde_json::json!([
            "sft",
            "dpo",
            "sharegpt",
            "llamafactory",
            "trl-sft",
            "trl-preference",
            "openai"
        ])
    );
    let listed: Vec<(String, u64, u64)> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_owned(),
                f["rows"].as_u64().unwrap(),
                f["left_out"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed[0],
        ("agenther-sft-20261122-101500.jsonl".into(), 2, 0)
    );
    assert_eq!(
        listed[3],
        ("agenther-llamafactory-20261122-101500.jsonl".into(), 1, 1)
    );
    assert_eq!(
        listed[6],
        ("agenther-openai-20261122-101500.jsonl".into(), 1, 1)
    );
    // What was written differently from the source, file by file.
    assert_eq!(m["files"][3]["rewrites"], serde_json::json!([]));
    assert_eq!(
        m["files"][4]["rewrites"],
        serde_json::json!([{
            "line": 1,
            "trajectory_id": "shop-1",
            "field": "messages[1].tool_calls[0].function.arguments.big",
            "digits": "123456789012345678901234567890"
        }])
    );
    assert_eq!(m["files"][5]["rewrites"].as_array().unwrap().len(), 2);
    assert_eq!(manifest_file_name("x"), "agenther-manifest-x.json");
    // No key anywhere: not as a field, not as a value.
    let text = serde_json::to_string(&m).unwrap();
    assert!(!text.to_lowercase().contains("api_key") && !text.contains("Bearer"));
    fn no_key_fields(v: &Value) -> bool {
        match v {
            Value::Object(o) => o
                .iter()
                // The lexicon's keyword lists are the one field named so.
                .all(|(k, v)| {
                    (k == "keywords" || !k.to_lowercase().contains("key")) && no_key_fields(v)
                }),
            Value::Array(a) => a.iter().all(no_key_fields),
            _ => true,
        }
    }
    assert!(no_key_fields(&m));
}

#[test]
fn target_ids_round_trip() {
    for t in Target::ALL {
        assert_eq!(Target::parse(t.id()), Some(t));
    }
    assert_eq!(Target::parse("csv"), None);
}

#[test]
fn openai_row_of_a_call_whose_source_arguments_are_not_an_object_uses_the_parsed_ones() {
    // A ReAct step `Search[Colorado orogeny]` keeps its raw text, which is no JSON object.
    let mut t = native_run();
    t.steps.truncate(1);
    t.steps[0] = Step {
        call: Some(ToolCall {
            id: String::new(),
            arguments: "Colorado orogeny".into(),
            turn: 0,
        }),
        ..step(
            "",
            "Search",
            r#"{"input": "Colorado orogeny"}"#,
            "The Colorado orogeny was...",
        )
    };
    let text = line(
        Target::OpenAi,
        &t,
        "Look up the Colorado orogeny",
        &ExportOptions::default(),
    );
    assert_eq!(validate_line(Target::OpenAi, 1, &text), vec![]);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["messages"][1]["tool_calls"][0]["function"]["arguments"],
        r#"{"input": "Colorado orogeny"}"#
    );
}

/// A run with replies to the user: a question answered, a call, a user message right after its
/// result, and a last reply the user closed with `###STOP###`.
fn conversation_run() -> Trajectory {
    Trajectory {
        trajectory_id: "talk-1".into(),
        original_prompt: "Book a table for tonight".into(),
        steps: vec![
            Step::respond("ask first".into(), "For how many?".into(), "Four.".into()),
            step(
                "look",
                "search",
                r#"{"q": "table for 4"}"#,
                "Table 5 is free",
            ),
            Step::respond(String::new(), String::new(), "Make it quick.".into()),
            Step::respond("done".into(), "Booked table 5.".into(), "###STOP###".into()),
        ],
        final_answer: String::new(),
        failure_reason: "wrong time".into(),
        metadata: Default::default(),
        origin: Some(Origin {
            format: "tau_bench".into(),
            ..Default::default()
        }),
    }
}

fn roles_and_texts(messages: &Value) -> Vec<(String, String)> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let role = m["role"].as_str().or(m["from"].as_str()).unwrap();
            let text = match (&m["content"], &m["value"], &m["tool_calls"]) {
                (Value::String(c), _, _) if !c.is_empty() => c.clone(),
                (_, Value::String(v), _) => v.clone(),
                (_, _, Value::Array(calls)) => format!("call {}", calls[0]["function"]["name"]),
                _ => String::new(),
            };
            (role.to_owned(), text)
        })
        .collect()
}

#[test]
fn replies_to_the_user_are_messages_not_calls() {
    let t = conversation_run();
    let off = ExportOptions::default();
    let on = ExportOptions {
        thoughts: true,
        ..ExportOptions::default()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    for target in [Target::TrlSft, Target::OpenAi] {
        let row: Value = serde_json::from_str(&line(target, &t, "Book a table", &off)).unwrap();
        assert_eq!(
            roles_and_texts(&row["messages"]),
            pairs(&[
                ("user", "Book a table"),
                ("assistant", "For how many?"),
                ("user", "Four."),
                ("assistant", "call \"search\""),
                ("tool", "Table 5 is free"),
                ("user", "Make it quick."),
                ("assistant", "Booked table 5."),
            ]),
            "{}",
            target.id()
        );
        // The tools declare the tool called, and no `respond` function.
        let tools = row["tools"].to_string();
        assert!(tools.contains("search") && !tools.contains("respond"));
        let row: Value = serde_json::from_str(&line(target, &t, "Book a table", &on)).unwrap();
        let texts = roles_and_texts(&row["messages"]);
        assert_eq!(texts[1].1, "ask first\n\nFor how many?");
        assert_eq!(texts[6].1, "done\n\nBooked table 5.");
    }
    let row: Value = serde_json::from_str(&line(Target::LlamaFactory, &t, "Book", &off)).unwrap();
    assert_eq!(
        roles_and_texts(&row["conversations"]),
        pairs(&[
            ("human", "Book"),
            ("gpt", "For how many?"),
            ("human", "Four."),
            (
                "function_call",
                r#"{"name": "search", "arguments": {"q": "table for 4"}}"#
            ),
            ("observation", "Table 5 is free\n\nMake it quick."),
            ("gpt", "Booked table 5."),
        ])
    );
    let row: Value = serde_json::from_str(&line(Target::LlamaFactory, &t, "Book", &on)).unwrap();
    let texts = roles_and_texts(&row["conversations"]);
    assert_eq!(texts[1].1, "<think>\nask first\n</think>\n\nFor how many?");
    let pair: Value =
        serde_json::from_str(&line(Target::TrlPreference, &t, "Book a table", &off)).unwrap();
    assert_eq!(pair["rejected"][0]["content"], "Book a table for tonight");
    assert_eq!(pair["chosen"][2]["content"], "Four.");
}

/// Every run of the real logs (`tests/fixtures/real`) gives a valid row in every layout.
#[test]
fn every_real_run_passes_every_validator() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/real");
    let mut rows = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            continue;
        }
        let report = agenther::reader::read_all(&name, &std::fs::read(&path).unwrap());
        for r in &report.records {
            for thoughts in [false, true] {
                let options = ExportOptions {
                    thoughts,
                    ..ExportOptions::default()
                };
                for target in Target::TOOLS {
                    line(target, &r.trajectory, "Say what the run did", &options);
                    rows += 1;
                }
            }
        }
    }
    assert_eq!(rows, 39 * 2 * Target::TOOLS.len());
}
