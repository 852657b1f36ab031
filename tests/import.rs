//! Importers end to end: sample files of every source format read through the reader, mapped
//! onto exact trajectories, with the detected format, successes kept apart, forced formats,
//! rejections and chunked reading.
#![cfg(not(target_arch = "wasm32"))]

use agenther::import::{detect, react, SourceFormat, UNKNOWN_FAILURE};
use agenther::json::parse;
use agenther::model::Trajectory;
use agenther::reader::{
    read_all, read_all_as, FileSummary, InputFormat, ReadEvent, ReadReport, Reader, Rejected,
};
use agenther::session::{Session, Status};
use agenther::stages::detect::rules::Lexicon;
use std::process::Command;

mod support;
#[path = "support/texts.rs"]
mod texts;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/import");

/// Every sample file, with the format it is in and its counts of runs and successes.
const FIXTURES: [(&str, SourceFormat, usize, usize); 10] = [
    ("openai_messages.jsonl", SourceFormat::OpenAiMessages, 4, 1),
    ("tau_bench.json", SourceFormat::TauBench, 3, 1),
    ("sharegpt.json", SourceFormat::ShareGpt, 3, 1),
    ("react.txt", SourceFormat::React, 4, 1),
    (
        "toolbench/G1_12_ChatGPT_DFS_woFilter_w2.json",
        SourceFormat::ToolBench,
        1,
        0,
    ),
    (
        "toolbench/G1_57_ChatGPT_DFS_woFilter_w2.json",
        SourceFormat::ToolBench,
        1,
        1,
    ),
    (
        "toolbench/G2_69_ChatGPT_CoT@1.json",
        SourceFormat::ToolBench,
        1,
        0,
    ),
    ("atif/flat_white_failed.json", SourceFormat::Atif, 1, 0),
    ("atif/hello_resolved.json", SourceFormat::Atif, 1, 1),
    (
        "atif/unicode_paths_unresolved.json",
        SourceFormat::Atif,
        1,
        0,
    ),
];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn read(name: &str) -> ReadReport {
    read_all(name, &fixture(name))
}

fn trajectories(report: &ReadReport) -> Vec<&Trajectory> {
    report.records.iter().map(|r| &r.trajectory).collect()
}

fn expected(json: &str) -> Trajectory {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad expected trajectory: {e}"))
}

/// Asserts `got` equals `want` but for a generated id, which must have the generated form.
fn assert_same_but_generated_id(got: &Trajectory, want: &Trajectory) {
    let id = &got.trajectory_id;
    assert!(
        id.len() == "traj-".len() + 12 && id.starts_with("traj-"),
        "not a generated id: {id}"
    );
    let mut got = got.clone();
    got.trajectory_id = want.trajectory_id.clone();
    assert_eq!(&got, want);
}

fn only_rejection(report: &ReadReport) -> &Rejected {
    assert_eq!(report.rejected.len(), 1, "{:#?}", report.rejected);
    &report.rejected[0]
}

/// `(line, field, reason)` of every rejection.
fn rejections(report: &ReadReport) -> Vec<(usize, Option<&str>, &str)> {
    report
        .rejected
        .iter()
        .map(|r| (r.line, r.field.as_deref(), r.reason.as_str()))
        .collect()
}

fn ids(report: &ReadReport) -> Vec<&str> {
    report
        .records
        .iter()
        .map(|r| r.trajectory.trajectory_id.as_str())
        .collect()
}

#[test]
fn every_sample_file_is_detected_and_read_whole() {
    for (name, format, runs, successes) in FIXTURES {
        let report = read(name);
        let s = &report.summary;
        assert!(report.rejected.is_empty(), "{name}: {:#?}", report.rejected);
        assert_eq!(s.source_format, format, "{name}");
        assert!(!s.source_format_forced, "{name}");
        assert_eq!((s.records, s.successes), (runs, successes), "{name}");
        let succeeded = report
            .records
            .iter()
            .filter(|r| r.trajectory.succeeded())
            .count();
        assert_eq!(succeeded, successes, "{name}");
        for t in trajectories(&report) {
            let origin = t.origin.as_ref().expect("imported runs keep their origin");
            assert_eq!(origin.format, format.id(), "{name}");
            // Successes carry no failure reason; failures always carry one.
            assert_eq!(t.failure_reason.is_empty(), t.succeeded(), "{name}");
        }
    }
    assert_eq!(
        read("openai_messages.jsonl").summary.format,
        InputFormat::Jsonl
    );
    assert_eq!(
        read("tau_bench.json").summary.format,
        InputFormat::JsonArray
    );
    assert_eq!(read("react.txt").summary.format, InputFormat::Text);
    assert_eq!(
        read("atif/hello_resolved.json").summary.format,
        InputFormat::JsonValues
    );
}

/// Every sample file keeps at least 99% of its texts (system prompt, user turns, assistant
/// texts and reasoning, calls and arguments, tool results) in the trajectories.
#[test]
fn every_sample_file_keeps_its_texts() {
    for (name, format, _, _) in FIXTURES {
        let report = read(name);
        let (ratio, lost) = texts::preserved(format, &fixture(name), &report);
        assert!(ratio >= 0.99, "{name}: {ratio} preserved, lost {lost:#?}");
    }
}

#[test]
fn openai_messages_map_exactly() {
    let report = read("openai_messages.jsonl");
    let t = trajectories(&report);
    assert_eq!(ids(&report)[..2], ["run-weather-001", "run-booking-002"]);
    // Parallel calls answered out of order (matched by id), nested arguments, declared tools.
    assert_eq!(
        t[0],
        &expected(
            r#"{
        "trajectory_id": "run-weather-001",
        "original_prompt": "Compare today's weather in 東京 and Paris for my café tour ☕",
        "steps": [
          {"thought": "I'll check both cities at once.", "action_name": "get_weather",
           "action_input": {"location": {"city": "東京", "country": "JP"}, "units": "metric"},
           "observation": "{\"temp\": 21.5, \"sky\": \"sunny ☀️\"}",
           "call": {"id": "call_tokyo", "arguments": "{\"location\": {\"city\": \"東京\", \"country\": \"JP\"}, \"units\": \"metric\"}", "turn": 0}},
          {"thought": "", "action_name": "get_weather",
           "action_input": {"location": {"city": "Paris", "country": "FR"}, "units": "imperial"},
           "observation": "{\"temp\": 64.4, \"sky\": \"light rain 🌧\"}",
           "call": {"id": "call_paris", "arguments": "{\"location\": {\"city\": \"Paris\", \"country\": \"FR\"}, \"units\": \"imperial\"}", "turn": 0}}
        ],
        "final_answer": "東京: 21.5 °C and sunny ☀️. Paris: 64.4 °F with light rain 🌧 — bring an umbrella to the café!",
        "failure_reason": "The user asked for Celsius; the answer gave Paris in Fahrenheit.",
        "metadata": {"reward": 0.0},
        "origin": {
          "format": "openai_messages",
          "system": "You are a travel assistant. Always answer in Celsius.",
          "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a place", "parameters": {"type": "object", "properties": {"location": {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}}, "required": ["city"]}, "units": {"type": "string", "enum": ["metric", "imperial"]}}, "required": ["location"]}}},
            {"type": "function", "function": {"name": "convert_temperature", "parameters": {"type": "object", "properties": {"value": {"type": "number"}, "to": {"type": "string", "enum": ["C", "F"]}}, "required": ["value", "to"]}}}
          ],
          "succeeded": false
        }
      }"#
        )
    );
    // Content parts, reasoning, a result matched by order, arguments that are not an object,
    // a question to the user and its answer, no id, no reason.
    assert_same_but_generated_id(
        t[2],
        &expected(
            r#"{
        "trajectory_id": "",
        "original_prompt": "How far is Lyon from Paris?\nBy train, please 🚄",
        "steps": [
          {"thought": "Need the distance first.", "action_name": "distance",
           "action_input": {"input": "Lyon"}, "observation": "465 km",
           "call": {"id": "d1", "arguments": "\"Lyon\"", "turn": 0}},
          {"thought": "", "action_name": "respond",
           "action_input": {"content": "Which station do you leave from?"},
           "observation": "Gare de Lyon.", "kind": "respond"},
          {"thought": "Checking trains.", "action_name": "train_search",
           "action_input": {"input": "from=Paris Gare de Lyon&to=Lyon"},
           "observation": "Error: timeout while contacting the rail API",
           "call": {"id": "t1", "arguments": "from=Paris Gare de Lyon&to=Lyon", "turn": 2}}
        ],
        "final_answer": "I could not reach the train service.",
        "failure_reason": "Unknown: the source does not say why the run failed.",
        "metadata": {"source": "support-bot", "session": 7},
        "origin": {"format": "openai_messages", "system": "Answer briefly.", "succeeded": false,
                   "verdict_unknown": true}
      }"#,
        ),
    );
    assert_eq!(t[2].failure_reason, UNKNOWN_FAILURE);
    // The success, and a bare message list with the older function-call layout.
    assert!(t[1].succeeded());
    assert_eq!(t[1].failure_reason, "");
    assert_eq!(
        t[1].steps[0].action_input.keys().collect::<Vec<_>>(),
        ["restaurant", "city", "party", "time"]
    );
    assert_eq!(t[3].steps[0].action_name, "calculator");
    assert_eq!(t[3].steps[0].observation, "391");
    assert_eq!(t[3].steps[0].call.as_ref().unwrap().id, "");
    assert_eq!(t[3].final_answer, "17 × 23 = 391");
    assert_ne!(t[2].trajectory_id, t[3].trajectory_id);
}

const TAU_POLICY: &str = "# Retail agent policy\nAs a retail agent, you can help users cancel or modify pending orders, return or exchange delivered orders, modify their default user address, or provide information about their own profile, orders, and related products.\n- Before taking consequential actions that update the database, you must obtain explicit user confirmation (yes).";

#[test]
fn tau_bench_results_map_exactly() {
    let report = read("tau_bench.json");
    let t = trajectories(&report);
    assert_eq!(
        ids(&report),
        ["task-3-trial-0", "task-4-trial-0", "task-3-trial-1"]
    );
    let mut want = expected(
        r####"{
      "trajectory_id": "task-3-trial-0",
      "original_prompt": "Hi! I'd like to cancel the order with the café grinder ☕, my email is zoe.moreau@example.fr.",
      "steps": [
        {"thought": "", "action_name": "find_user_id_by_email", "action_input": {"email": "zoe.moreau@example.fr"},
         "observation": "zoe_moreau_5522",
         "call": {"id": "call_a1", "arguments": "{\"email\": \"zoe.moreau@example.fr\"}", "turn": 0}},
        {"thought": "", "action_name": "get_user_details", "action_input": {"user_id": "zoe_moreau_5522"},
         "observation": "{\"name\": {\"first_name\": \"Zo\\u00e9\", \"last_name\": \"Moreau\"}, \"address\": {\"address1\": \"12 rue de la Paix\", \"city\": \"Paris\", \"country\": \"France\", \"zip\": \"75002\"}, \"orders\": [\"#W2378156\", \"#W4817420\"]}",
         "call": {"id": "call_a2", "arguments": "{\"user_id\": \"zoe_moreau_5522\"}", "turn": 1}},
        {"thought": "", "action_name": "respond",
         "action_input": {"content": "I found two orders, #W2378156 and #W4817420. Which one holds the grinder?"},
         "observation": "The first one, #W2378156. Reason: ordered by mistake.", "kind": "respond"},
        {"thought": "", "action_name": "respond",
         "action_input": {"content": "To confirm: cancel #W2378156 because it was ordered by mistake. Shall I proceed (yes/no)?"},
         "observation": "yes", "kind": "respond"},
        {"thought": "", "action_name": "cancel_pending_order", "action_input": {"order_id": "#W2378156", "reason": "ordered by mistake"},
         "observation": "{\"order_id\": \"#W2378156\", \"status\": \"cancelled\", \"items\": [{\"name\": \"Caf\\u00e9 grinder\", \"price\": 89.5}]}",
         "call": {"id": "call_a3", "arguments": "{\"order_id\": \"#W2378156\", \"reason\": \"ordered by mistake\"}", "turn": 4}},
        {"thought": "", "action_name": "respond",
         "action_input": {"content": "Done: order #W2378156 is cancelled and 89.50 € will be refunded."},
         "observation": "###STOP###", "kind": "respond"}
      ],
      "final_answer": "",
      "failure_reason": "Reward 0.0 (below 1): the final database state differs from the one the expected actions produce (r_actions 0.0); expected actions: find_user_id_by_email({\"email\": \"zoe.moreau@example.fr\"}); cancel_pending_order({\"order_id\": \"#W2378156\", \"reason\": \"no longer needed\"}).",
      "metadata": {
        "task_id": 3, "trial": 0, "reward": 0.0,
        "task_instruction": "You are Zoé Moreau (zoe.moreau@example.fr). Cancel the order of the café grinder because you no longer need it."
      },
      "origin": {"format": "tau_bench", "succeeded": false}
    }"####,
    );
    want.origin.as_mut().unwrap().system = Some(TAU_POLICY.to_owned());
    assert_eq!(t[0], &want);
    // Reward 1: a success; \u escapes (a surrogate pair too) decode to the characters.
    assert!(t[1].succeeded());
    // The agent's last reply, answered by the user's closing message, is a step.
    let last = t[1].steps.last().unwrap();
    assert!(last.is_respond());
    assert_eq!(
        last.reply(),
        "Your address is now 1-2-3 Shibuya, 東京 150-0002. 🏠"
    );
    assert_eq!(t[1].final_answer, "");
    assert_eq!(t[1].steps[0].action_input.get("city"), Some(&"東京".into()));
    // Parallel calls share a turn; the outputs check names what is missing.
    assert_eq!(
        t[2].steps
            .iter()
            .filter(|s| !s.is_respond())
            .map(|s| s.call.as_ref().unwrap().turn)
            .collect::<Vec<_>>(),
        [0, 0]
    );
    assert_eq!(
        t[2].failure_reason,
        "Reward 0.0 (below 1): the replies did not give the expected output(s): 1040."
    );
}

const SHAREGPT_TOOLS: &str = r#"[
  {"type": "function", "function": {"name": "search_hotels", "description": "Search hotels in a city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "dates": {"type": "object", "properties": {"check_in": {"type": "string"}, "nights": {"type": "integer"}}}, "filters": {"type": "object", "properties": {"max_price": {"type": "number"}, "amenities": {"type": "array", "items": {"type": "string"}}}}}, "required": ["city", "dates"]}}},
  {"type": "function", "function": {"name": "currency_convert", "description": "Convert an amount", "parameters": {"type": "object", "properties": {"amount": {"type": "number"}, "from": {"type": "string"}, "to": {"type": "string"}}, "required": ["amount", "from", "to"]}}}
]"#;

#[test]
fn sharegpt_conversations_map_exactly() {
    let report = read("sharegpt.json");
    let t = trajectories(&report);
    let tools = parse(SHAREGPT_TOOLS).unwrap().as_array().unwrap().to_vec();
    let mut want = expected(
        r#"{
      "trajectory_id": "",
      "original_prompt": "Find me a hotel in 東京 for 3 nights from 2025-04-02 under ¥20000 with breakfast 🍳",
      "steps": [
        {"thought": "", "action_name": "search_hotels",
         "action_input": {"city": "東京", "dates": {"check_in": "2025-04-02", "nights": 3}, "filters": {"max_price": 20000, "amenities": ["breakfast", "wifi"]}},
         "observation": "{\"results\": [{\"name\": \"Hotel Sakura\", \"price\": 23500, \"breakfast\": true}, {\"name\": \"Café Inn Asakusa\", \"price\": 18900, \"breakfast\": false}]}",
         "call": {"arguments": "{\"city\": \"東京\", \"dates\": {\"check_in\": \"2025-04-02\", \"nights\": 3}, \"filters\": {\"max_price\": 20000, \"amenities\": [\"breakfast\", \"wifi\"]}}", "turn": 0}}
      ],
      "final_answer": "Hotel Sakura (¥23500, breakfast included) is the best match.",
      "failure_reason": "Unknown: the source does not say why the run failed.",
      "metadata": {},
      "origin": {"format": "sharegpt", "system": "You are a booking assistant. Respect the user's budget.", "succeeded": false,
                 "verdict_unknown": true}
    }"#,
    );
    want.origin.as_mut().unwrap().tools = tools.clone();
    assert_same_but_generated_id(t[0], &want);

    // Parallel calls in one function_call turn, answered by two observations in order.
    let mut want = expected(
        r#"{
      "trajectory_id": "sg-fx-0002",
      "original_prompt": "How much is 250 € in yen and in dollars?",
      "steps": [
        {"thought": "", "action_name": "currency_convert", "action_input": {"amount": 250, "from": "EUR", "to": "JPY"},
         "observation": "40125 JPY", "call": {"arguments": "{\"amount\": 250, \"from\": \"EUR\", \"to\": \"JPY\"}", "turn": 0}},
        {"thought": "", "action_name": "currency_convert", "action_input": {"amount": 250, "from": "EUR", "to": "USD"},
         "observation": "271.5 USD", "call": {"arguments": "{\"amount\": 250, \"from\": \"EUR\", \"to\": \"USD\"}", "turn": 0}}
      ],
      "final_answer": "250 € is about ¥40125 or $271.50.",
      "failure_reason": "",
      "metadata": {},
      "origin": {"format": "sharegpt", "succeeded": true}
    }"#,
    );
    want.origin.as_mut().unwrap().tools = tools;
    assert_eq!(t[1], &want);

    // A gpt turn before the call is its thought; arguments given as a JSON string.
    assert_eq!(t[2].trajectory_id, "sg-0003");
    assert_eq!(
        t[2].steps[0].thought,
        "Let me search the hotels' listings around the Louvre for cafés."
    );
    assert_eq!(t[2].steps[0].call.as_ref().unwrap().turn, 1);
    assert_eq!(
        t[2].steps[0].call.as_ref().unwrap().arguments,
        r#"{"city": "Paris", "dates": {"check_in": "2025-05-01", "nights": 1}}"#
    );
}

#[test]
fn react_logs_map_exactly() {
    let report = read("react.txt");
    let t = trajectories(&report);
    let lines: Vec<usize> = report.records.iter().map(|r| r.source.line).collect();
    assert_eq!(lines, [1, 13, 24, 41]);
    // The ReAct paper's layout: numbered blocks, Name[argument] actions, Finish, a reward.
    assert_same_but_generated_id(
        t[0],
        &expected(
            r#"{
      "trajectory_id": "",
      "original_prompt": "What is the elevation range for the area that the eastern sector of the Colorado orogeny extends into?",
      "steps": [
        {"thought": "I need to search Colorado orogeny, find the area that the eastern sector of the Colorado orogeny extends into, then find the elevation range of the area.",
         "action_name": "Search", "action_input": {"input": "Colorado orogeny"},
         "observation": "The Colorado orogeny was an episode of mountain building (an orogeny) in Colorado and surrounding areas.",
         "call": {"arguments": "Colorado orogeny", "turn": 0}},
        {"thought": "It does not mention the eastern sector. So I need to look up eastern sector.",
         "action_name": "Lookup", "action_input": {"input": "eastern sector"},
         "observation": "(Result 1 / 1) The eastern sector extends into the High Plains and is called the Central Plains orogeny.",
         "call": {"arguments": "eastern sector", "turn": 1}}
      ],
      "final_answer": "1,800 to 7,000 ft",
      "failure_reason": "",
      "metadata": {"reward": 1},
      "origin": {"format": "react", "succeeded": true,
                 "final_thought": "The High Plains rise in elevation from around 1,800 to 7,000 ft, so the answer is 1,800 to 7,000 ft."}
    }"#,
        ),
    );
    // LangChain's layout: colour codes and chain banners dropped, JSON action input, an
    // observation over several lines with a blank line inside.
    assert_same_but_generated_id(
        t[2],
        &expected(
            r#"{
      "trajectory_id": "",
      "original_prompt": "What's the weather in Zürich in °C, and what is it squared? 🌡",
      "steps": [
        {"thought": "I should look up the weather first.", "action_name": "weather_lookup",
         "action_input": {"location": {"city": "Zürich", "country": "CH"}, "units": "metric"},
         "observation": "12 °C, overcast\n\nwith wind from the west.",
         "call": {"arguments": "{\"location\": {\"city\": \"Zürich\", \"country\": \"CH\"}, \"units\": \"metric\"}", "turn": 0}},
        {"thought": "Now I square the temperature.", "action_name": "calculator",
         "action_input": {"input": "12^2"}, "observation": "144",
         "call": {"arguments": "12^2", "turn": 1}}
      ],
      "final_answer": "It is 12 °C in Zürich; squared that is 144.",
      "failure_reason": "Unknown: the source does not say why the run failed.",
      "metadata": {},
      "origin": {"format": "react", "succeeded": false, "verdict_unknown": true,
                 "final_thought": "I now know the final answer"}
    }"#,
        ),
    );
    // The expected answer is the failure reason; a run after a blank-line group takes its
    // first line as the goal.
    assert_eq!(t[1].failure_reason, "The expected answer is: Peter Cat");
    assert_eq!(t[1].final_answer, "Café Kokubunji");
    assert!(t[1].steps[0].observation.contains("村上 春樹"));
    assert_eq!(
        t[3].original_prompt,
        "Find the cheapest flight from Lisbon to Kraków on 2025-03-14 ✈️"
    );
    assert_eq!(t[3].final_answer, "");
    assert_eq!(
        t[3].final_thought(),
        "The service is down; I cannot finish the search."
    );
}

#[test]
fn toolbench_answers_map_exactly() {
    let give_up = read("toolbench/G1_12_ChatGPT_DFS_woFilter_w2.json");
    let t = trajectories(&give_up)[0];
    let system = t.origin.as_ref().unwrap().system.clone();
    assert!(
        system.as_deref().is_some_and(
            |s| s.starts_with("You are AutoGPT") && s.ends_with("by city and features\n")
        )
    );
    let tools = t.origin.as_ref().unwrap().tools.clone();
    assert_eq!(
        tools
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [
            "search_cafes_for_cafe_finder",
            "cafe_details_for_cafe_finder",
            "Finish"
        ]
    );
    // ToolBench's schema keeps its own keys inside the OpenAI function tool.
    assert_eq!(tools[0]["type"].as_str(), Some("function"));
    assert_eq!(
        tools[0]["function"]["parameters"]["optional"],
        parse(r#"["features"]"#).unwrap()
    );
    let mut want = expected(
        r#"{
      "trajectory_id": "",
      "original_prompt": "I'm visiting Montréal next week. Can you find cafés with wifi and a terrace, and tell me their opening hours? ☕",
      "steps": [
        {"thought": "", "action_name": "search_cafes_for_cafe_finder",
         "action_input": {"city": "Montréal", "features": {"wifi": true, "terrace": true}},
         "observation": "{\"error\": \"\", \"response\": \"[{'id': 'c-101', 'name': 'Café Olimpico'}, {'id': 'c-102', 'name': 'Le Vestibule'}]\"}",
         "call": {"arguments": "{\n  \"city\": \"Montr\\u00e9al\",\n  \"features\": {\n    \"wifi\": true,\n    \"terrace\": true\n  }\n}", "turn": 0}},
        {"thought": "", "action_name": "cafe_details_for_cafe_finder", "action_input": {"cafe_id": "c-101"},
         "observation": "{\"error\": \"Rate limit error: 429 Too Many Requests\", \"response\": \"\"}",
         "call": {"arguments": "{\n  \"cafe_id\": \"c-101\"\n}", "turn": 1}}
      ],
      "final_answer": "",
      "failure_reason": "The agent gave up and asked to restart (Finish: give_up_and_restart).",
      "metadata": {"finish_type": "give_up", "win": false},
      "origin": {"format": "toolbench", "succeeded": false,
                 "final_thought": "The details endpoint keeps failing, so I cannot get the opening hours."}
    }"#,
    );
    let origin = want.origin.as_mut().unwrap();
    origin.system = system;
    origin.tools = tools;
    assert_same_but_generated_id(t, &want);

    let won = read("toolbench/G1_57_ChatGPT_DFS_woFilter_w2.json");
    let t = trajectories(&won)[0];
    assert!(t.succeeded());
    assert_eq!(t.final_answer, "Café A Brasileira opens first, at 08:00.");
    assert!(t.steps.iter().all(|s| s.action_name != "Finish"));

    let lost = read("toolbench/G2_69_ChatGPT_CoT@1.json");
    let t = trajectories(&lost)[0];
    assert!(!t.succeeded());
    assert_eq!(t.failure_reason, UNKNOWN_FAILURE);
    assert_eq!(t.final_answer, "Café Norden is open on Sundays.");
    assert_eq!(
        t.steps[0].thought,
        "Thought: search cafés open late on Sunday."
    );
    assert_eq!(
        t.steps[0].action_input.get("features"),
        Some(&parse(r#"{"open": {"day": "sunday", "after": "18:00"}}"#).unwrap())
    );
}

#[test]
fn atif_trajectories_map_exactly() {
    let failed = read("atif/flat_white_failed.json");
    assert_eq!(
        trajectories(&failed)[0],
        &expected(
            r#"{
      "trajectory_id": "8C0D2E4A-1F7B-4C2D-9E11-3A5B6C7D8E9F",
      "original_prompt": "Compare the price of a flat white at Café de Flore (Paris) and Blue Bottle (東京) 🤔",
      "steps": [
        {"thought": "Two independent lookups: run them in parallel.\n\nLooking up both menus.", "action_name": "menu_lookup",
         "action_input": {"venue": {"name": "Café de Flore", "city": "Paris"}, "items": ["flat white"], "currency": "EUR"},
         "observation": "flat white: 7,50 €",
         "call": {"id": "call_menu_paris", "arguments": "{\"venue\": {\"name\": \"Café de Flore\", \"city\": \"Paris\"}, \"items\": [\"flat white\"], \"currency\": \"EUR\"}", "turn": 0}},
        {"thought": "", "action_name": "menu_lookup",
         "action_input": {"venue": {"name": "Blue Bottle", "city": "東京"}, "items": ["flat white"], "currency": "JPY"},
         "observation": "flat white: ¥650",
         "call": {"id": "call_menu_tokyo", "arguments": "{\"venue\": {\"name\": \"Blue Bottle\", \"city\": \"東京\"}, \"items\": [\"flat white\"], \"currency\": \"JPY\"}", "turn": 0}}
      ],
      "final_answer": "A flat white costs 7,50 € at Café de Flore and 650 € at Blue Bottle.",
      "failure_reason": "Unknown: the source does not say why the run failed.",
      "metadata": {
        "agent": {"name": "harbor-agent", "version": "1.0.0", "model_name": "gemini-2.5-flash", "extra": {}},
        "schema_version": "ATIF-v1.4"
      },
      "origin": {"format": "atif", "system": "You are a shopping assistant. Quote prices in euros.", "succeeded": false,
                 "verdict_unknown": true, "final_thought": "I have both prices."}
    }"#
        )
    );
    let resolved = read("atif/hello_resolved.json");
    let t = trajectories(&resolved)[0];
    assert_eq!(t.trajectory_id, "resolved-3b1f");
    assert!(t.succeeded());
    assert_eq!(t.steps.len(), 2);
    assert_eq!(t.steps[1].observation, "Hello, world!");

    // A result without a tool call (an action written in the message), a reason in `extra`.
    let unresolved = read("atif/unicode_paths_unresolved.json");
    let t = trajectories(&unresolved)[0];
    assert!(!t.succeeded());
    assert_eq!(
        t.failure_reason,
        "Tests failed: test_unicode_paths (expected 'naïve_東京.txt', got 'na?ve_??.txt')."
    );
    assert_eq!(t.steps[0].action_name, "message");
    assert_eq!(
        t.steps[0].action_input.get("text"),
        Some(&"```bash\ngrep -n encode export.py\n```".into())
    );
    assert_eq!(t.steps[0].thought, "THOUGHT: find where names are encoded.");
    assert_eq!(t.steps[0].call, None);
    assert_eq!(t.steps[1].call.as_ref().unwrap().turn, 1);
    assert_eq!(t.steps[1].observation, "error: file is read-only");
}

/// A small deterministic generator of chunk sizes.
fn chunk_sizes(seed: u64) -> impl Iterator<Item = usize> {
    let mut x = seed.max(1);
    std::iter::from_fn(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Some(1 + (x % 97) as usize)
    })
}

fn read_in_chunks(
    name: &str,
    bytes: &[u8],
    sizes: impl Iterator<Item = usize>,
) -> (Vec<ReadEvent>, FileSummary) {
    read_in_chunks_as(name, bytes, sizes, None)
}

fn read_in_chunks_as(
    name: &str,
    bytes: &[u8],
    sizes: impl Iterator<Item = usize>,
    format: Option<SourceFormat>,
) -> (Vec<ReadEvent>, FileSummary) {
    let cuts = sizes
        .scan(0, |at, size| {
            *at += size;
            Some(*at)
        })
        .take_while(|&at| at < bytes.len())
        .collect();
    support::read_cut(Reader::with_format(name, format), bytes, cuts)
}

#[test]
fn any_chunking_gives_the_same_events() {
    for (name, ..) in FIXTURES {
        let bytes = fixture(name);
        let whole = read_in_chunks(name, &bytes, std::iter::once(bytes.len()));
        let bytewise = read_in_chunks(name, &bytes, std::iter::repeat(1));
        assert!(whole == bytewise, "{name}: one byte at a time");
        for seed in 1..=8 {
            let random = read_in_chunks(name, &bytes, chunk_sizes(seed * 7919));
            assert!(whole == random, "{name}: random chunks, seed {seed}");
        }
    }
}

#[test]
fn a_forced_format_reads_like_the_detected_one() {
    for (name, format, ..) in FIXTURES {
        let bytes = fixture(name);
        let auto = read_all(name, &bytes);
        let forced = read_all_as(name, &bytes, Some(format));
        assert_eq!(forced.records, auto.records, "{name}");
        assert!(forced.summary.source_format_forced);
        assert_eq!(forced.summary.source_format, format);
    }
}

#[test]
fn a_forced_format_that_does_not_fit_names_it() {
    let bytes = fixture("openai_messages.jsonl");
    let report = read_all_as("o.jsonl", &bytes, Some(SourceFormat::ShareGpt));
    assert_eq!(report.records.len(), 0);
    assert_eq!(report.summary.source_format, SourceFormat::ShareGpt);
    assert_eq!(
        rejections(&report)[0],
        (
            1,
            Some("conversations"),
            "not in the LLaMA-Factory ShareGPT format (it looks like OpenAI chat messages): \
             required field is missing"
        )
    );
    assert_eq!(report.rejected.len(), 4);
    assert_eq!(report.rejected[0].trajectory_id, None);

    let report = read_all_as(
        "t.json",
        &fixture("tau_bench.json"),
        Some(SourceFormat::Native),
    );
    assert_eq!(report.rejected.len(), 3);
    assert_eq!(
        rejections(&report)[1],
        (
            156,
            Some("original_prompt"),
            "not in the AgentHER native format (it looks like tau-bench results): required \
             field is missing"
        )
    );

    // A JSON file read as a ReAct log is one run without actions.
    let report = read_all_as(
        "s.json",
        &fixture("sharegpt.json"),
        Some(SourceFormat::React),
    );
    assert_eq!(report.summary.format, InputFormat::Text);
    let r = only_rejection(&report);
    assert_eq!(
        (r.line, r.field.as_deref(), r.reason.as_str()),
        (
            1,
            Some("Action"),
            "not in the ReAct text log format: no Thought:, Action: or Final Answer: line: the agent did nothing to relabel"
        )
    );

    // A ReAct log read as JSON: every line is rejected, saying how the file was read.
    let text = fixture("react.txt");
    let report = read_all_as("r.txt", &text, Some(SourceFormat::OpenAiMessages));
    assert_eq!(report.summary.format, InputFormat::Jsonl);
    assert_eq!(report.records.len(), 0);
    let lines = String::from_utf8(text).unwrap();
    assert_eq!(
        report.rejected.len(),
        lines.lines().filter(|l| !l.trim().is_empty()).count()
    );
    assert!(
        report.rejected[0]
            .reason
            .ends_with("(the file is read as OpenAI chat messages, whose records are JSON)"),
        "{}",
        report.rejected[0].reason
    );
}

#[test]
fn detection_waits_for_a_record_that_shows_a_format() {
    let sharegpt = r#"{"id": "g", "conversations": [{"from": "human", "value": "hi"}, {"from": "function_call", "value": "{\"name\": \"f\", \"arguments\": {}}"}, {"from": "observation", "value": "ok"}]}"#;
    let native = r#"{"original_prompt": "p", "steps": [{"thought": "", "action_name": "a", "observation": "o"}], "failure_reason": "r"}"#;
    let text = format!("{{\"x\": 1}}\nnot json\n{sharegpt}\n{native}\n{sharegpt}\n");
    let report = read_all("mixed.jsonl", text.as_bytes());
    assert_eq!(report.summary.source_format, SourceFormat::ShareGpt);
    assert_eq!(ids(&report), ["g", "g"]);
    let got = rejections(&report);
    // Before detection, records are read as native ones.
    assert_eq!(
        got[0],
        (1, Some("original_prompt"), "required field is missing")
    );
    assert_eq!(got[1].0, 2);
    assert_eq!(
        got[2],
        (
            4,
            Some("conversations"),
            "not in the LLaMA-Factory ShareGPT format (it looks like AgentHER native): \
             required field is missing"
        )
    );
    assert_eq!(
        detect(&parse(sharegpt).unwrap()),
        Some(SourceFormat::ShareGpt)
    );
}

#[test]
fn a_file_that_is_one_message_list_is_one_run() {
    let text = "[\n  {\"role\": \"system\", \"content\": \"s\"},\n  {\"role\": \"user\", \"content\": \"Find the café\"},\n  {\"role\": \"assistant\", \"tool_calls\": [{\"id\": \"a\", \"type\": \"function\", \"function\": {\"name\": \"search\", \"arguments\": \"{\\\"q\\\": \\\"café\\\"}\"}}]},\n  {\"role\": \"tool\", \"tool_call_id\": \"a\", \"content\": \"Café Central\"}\n]\n";
    let report = read_all("one.json", text.as_bytes());
    assert!(report.rejected.is_empty(), "{:#?}", report.rejected);
    assert_eq!(report.summary.source_format, SourceFormat::OpenAiMessages);
    assert_eq!(report.summary.format, InputFormat::JsonArray);
    let t = &report.records[0].trajectory;
    assert_eq!(report.records[0].source.line, 2);
    assert_eq!(t.original_prompt, "Find the café");
    assert_eq!(t.steps[0].observation, "Café Central");
    assert_eq!(t.origin.as_ref().unwrap().system.as_deref(), Some("s"));
    let again = read_in_chunks("one.json", text.as_bytes(), std::iter::repeat(3));
    assert_eq!(again.1, report.summary);

    // A broken element costs the run, which names it.
    let broken = text.replace("\"content\": \"Café Central\"", "\"content\": Café");
    let report = read_all("one.json", broken.as_bytes());
    assert_eq!(
        rejections(&report),
        [(
            2,
            Some("messages[3]"),
            "expected a value, found 'C' at line 5 column 52"
        )]
    );

    // Lone messages elsewhere (one per JSONL line) say how to give runs.
    let lines = "{\"role\": \"user\", \"content\": \"q\"}\n";
    let report = read_all("lines.jsonl", lines.as_bytes());
    assert_eq!(
        report.rejected[0].reason,
        "required field is missing (this is a single chat message: give each run as \
         {\"messages\": [...]}, one per line, or a whole file as one list of messages)"
    );
}

#[test]
fn text_files_without_react_markers_stay_jsonl() {
    let native = r#"{"original_prompt": "p", "steps": [{"thought": "", "action_name": "a", "observation": "o"}], "failure_reason": "r"}"#;
    let report = read_all("j.jsonl", format!("hello\n\n{native}\n").as_bytes());
    assert_eq!(report.summary.format, InputFormat::Jsonl);
    assert_eq!(report.summary.source_format, SourceFormat::Native);
    assert_eq!(report.records.len(), 1);
    assert_eq!(report.records[0].source.line, 3);
    assert_eq!(only_rejection(&report).line, 1);
    assert_eq!(report.summary.blank_lines, 1);

    // Markers past the first MiB do not make a log.
    let lines = 1024 * 1024 / 10;
    let late = format!("{}Thought: t\nAction: a\n", "some text\n".repeat(lines + 1));
    let report = read_all("late.txt", late.as_bytes());
    assert_eq!(report.summary.format, InputFormat::Jsonl);
    assert_eq!(report.rejected.len(), lines + 3);
    // A Python dict a log printed is no JSON line.
    let stats = "Claim: c\n{'steps': 1, 'reward': 0}\nThought: t\nAction: Finish[x]\n";
    let report = read_all("stats.txt", stats.as_bytes());
    assert_eq!(report.summary.source_format, SourceFormat::React);
    assert_eq!(report.records.len(), 1);
    // Markers after a long preamble (a Reflexion log opening with its reflections) still do.
    let early = format!("{}Thought: t\nAction: a\n", "some text\n".repeat(300));
    let report = read_all("early.txt", early.as_bytes());
    assert_eq!(report.summary.format, InputFormat::Text);
    assert_eq!(report.records.len(), 1);
    assert_eq!(
        report.records[0].trajectory.original_prompt,
        "some text\n".repeat(300).trim()
    );
}

#[test]
fn a_log_without_trailing_newline_and_with_crlf() {
    let text = "Task: Rename the file\r\nThought: use mv\r\nAction: shell\r\nAction Input: mv a b\r\nObservation: done\r\nFinal Answer: renamed";
    let report = read_all("crlf.log", text.as_bytes());
    assert_eq!(report.summary.source_format, SourceFormat::React);
    let t = &report.records[0].trajectory;
    assert_eq!(t.original_prompt, "Rename the file");
    assert_eq!(t.steps[0].observation, "done");
    assert_eq!(t.steps[0].call.as_ref().unwrap().arguments, "mv a b");
    assert_eq!(t.final_answer, "renamed");
    // The last line alone decides at the end of input.
    let report = read_all("one.log", b"Question: q\nAction: Search[x]");
    assert_eq!(report.summary.format, InputFormat::Text);
    assert_eq!(report.records[0].trajectory.steps[0].action_name, "Search");
}

#[test]
fn malformed_chat_records_are_rejected_and_good_ones_kept() {
    let good = r#"{"id": "good", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "a", "content": "r"}]}"#;
    let lines = [
        good,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"arguments": "{}"}}]}]}"#,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "tool", "tool_call_id": "x", "content": "r"}]}"#,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "robot", "content": "r"}]}"#,
        r#"{"messages": [{"role": "user", "content": 5}]}"#,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f"}}]}, {"role": "tool", "tool_call_id": "a", "content": "1"}, {"role": "tool", "tool_call_id": "a", "content": "2"}]}"#,
        r#"{"messages": [{"role": "system", "content": "s"}]}"#,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "no tools needed"}]}"#,
        r#"{"tools": "not a list", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f"}}]}]}"#,
        r#"{"success": "yes", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f"}}]}]}"#,
        r#"{"messages": "hello"}"#,
        good,
    ];
    let report = read_all("bad.jsonl", (lines.join("\n") + "\n").as_bytes());
    // A run of talk only is a run: its answer is the final answer.
    assert_eq!(ids(&report)[0], "good");
    assert_eq!(ids(&report)[2], "good");
    assert_eq!(report.records[1].trajectory.final_answer, "no tools needed");
    assert!(report.records[1].trajectory.steps.is_empty());
    assert_eq!(
        rejections(&report),
        vec![
            (
                2,
                Some("messages[1].tool_calls[0].function.name"),
                "required field is missing"
            ),
            (
                3,
                Some("messages[1]"),
                "no tool call is waiting for this result"
            ),
            (
                4,
                Some("messages[1].role"),
                "unknown role 'robot' (expected system, user, assistant, tool or function)"
            ),
            (
                5,
                Some("messages[0].content"),
                "expected a string, null or a list of content parts, found a number"
            ),
            (6, Some("messages[3]"), "a second result for tool call a"),
            (7, Some("messages"), "no user message: the run has no goal"),
            (
                9,
                Some("tools"),
                "the tool list is not valid JSON: expected a value, found 'n' at line 1 column 1"
            ),
            (10, Some("success"), "expected a boolean, found a string"),
            (11, Some("messages"), "expected an array, found a string"),
        ]
    );
    assert_eq!(report.rejected[0].index, Some(1));
}

#[test]
fn malformed_records_of_the_other_formats() {
    // ShareGPT: a call that is not JSON, an unknown role, a value that is not text.
    let sharegpt = [
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "{name: f}"}]}"#,
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "bot", "value": "x"}]}"#,
        r#"{"conversations": [{"from": "human", "value": ["q"]}]}"#,
        r#"{"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "[{\"name\": \"f\"}, 3]"}]}"#,
    ];
    let report = read_all("s.jsonl", sharegpt.join("\n").as_bytes());
    let got = rejections(&report);
    assert_eq!(got[0].1, Some("conversations[1].value"));
    assert!(
        got[0]
            .2
            .starts_with("the function call is not valid JSON: "),
        "{}",
        got[0].2
    );
    assert_eq!(
        got[1..],
        [
            (
                2,
                Some("conversations[1].from"),
                "unknown role 'bot' (expected human, gpt, function_call, observation or system)"
            ),
            (
                3,
                Some("conversations[0].value"),
                "expected a string, found an array"
            ),
            (
                4,
                Some("conversations[1].value[1]"),
                "expected a function call object {\"name\", \"arguments\"}, found a number"
            ),
        ]
    );

    // tau-bench: a run that crashed before any message.
    let tau = r#"[{"task_id": 9, "reward": 0.0, "info": {"error": "litellm.Timeout", "traceback": "..."}, "traj": [], "trial": 2}]"#;
    let report = read_all("tau.json", tau.as_bytes());
    assert_eq!(
        rejections(&report),
        [(
            1,
            Some("traj"),
            "the run has no messages (info.error: litellm.Timeout)"
        )]
    );

    // ATIF: an unknown source, a call without a name.
    let atif = [
        r#"{"schema_version": "ATIF-v1.4", "session_id": "a", "agent": {}, "steps": [{"step_id": 1, "source": "robot", "message": "x"}]}"#,
        r#"{"schema_version": "ATIF-v1.4", "session_id": "b", "agent": {}, "steps": [{"step_id": 1, "source": "user", "message": "q"}, {"step_id": 2, "source": "agent", "message": "", "tool_calls": [{"tool_call_id": "c", "arguments": {}}]}]}"#,
    ];
    let report = read_all("atif.jsonl", atif.join("\n").as_bytes());
    assert_eq!(
        rejections(&report),
        [
            (
                1,
                Some("steps[0].source"),
                "unknown source 'robot' (expected system, user or agent)"
            ),
            (
                2,
                Some("steps[1].tool_calls[0].function_name"),
                "required field is missing"
            ),
        ]
    );

    // ToolBench: nothing but the Finish call.
    let toolbench = r#"{"win": false, "answer_generation": {"query": "q", "train_messages": [[{"role": "user", "content": "q"}, {"role": "assistant", "content": null, "function_call": {"name": "Finish", "arguments": "{\"return_type\": \"give_up_and_restart\"}"}}]]}}"#;
    let report = read_all("tb.json", toolbench.as_bytes());
    assert_eq!(
        rejections(&report),
        [(
            1,
            Some("answer_generation.train_messages[0]"),
            "no tool call besides Finish and no answer: the agent did nothing to relabel"
        )]
    );

    // ReAct: an observation before any action, a run where the agent did nothing, broken
    // UTF-8; the good runs between them are kept (a run that only thought is one).
    let log = b"Question: a\nObservation: too early\n---\nQuestion: b\nThought: t\nAction: Search[x]\nObservation: y\n---\nQuestion: c\nThought: only thinking\n---\nQuestion: e\n---\nQuestion: d \xff\nAction: x\n";
    let report = read_all("log.txt", log);
    assert_eq!(report.records.len(), 2);
    assert_eq!(report.records[0].source.line, 4);
    assert_eq!(report.records[0].source.index, 1);
    assert_eq!(
        report.records[1].trajectory.final_thought(),
        "only thinking"
    );
    assert!(report.records[1].trajectory.verdict_unknown());
    assert_eq!(
        rejections(&report),
        [
            (
                1,
                Some("Observation"),
                "an observation with no action before it"
            ),
            (
                12,
                Some("Action"),
                "no Thought:, Action: or Final Answer: line: the agent did nothing to relabel"
            ),
            (14, None, "invalid UTF-8 at line 14 column 13"),
        ]
    );
    assert_eq!(report.rejected[2].index, Some(4));
}

#[test]
fn successes_are_kept_apart_in_a_session() {
    let mut session = Session::new(Lexicon::default(), 0.3);
    let mut runs = 0;
    let mut successes = 0;
    for (name, _, n, s) in FIXTURES {
        session.add_report(read(name));
        runs += n;
        successes += s;
    }
    assert_eq!(session.len(), runs);
    assert_eq!(session.success_count(), successes);
    assert_eq!(session.failure_count(), runs - successes);
    let to_run = session.to_run();
    assert_eq!(to_run.len(), runs - successes);
    assert!(to_run.iter().all(|&i| !session.entries[i].succeeded()));
    for e in session.successes() {
        assert!(e.succeeded());
        assert_eq!(e.trajectory().failure_reason, "");
    }
    let counted: usize = session.failure_type_counts().iter().map(|(_, n)| n).sum();
    assert_eq!(counted, runs - successes);
    let success_rows = session.rows(&agenther::session::Filter {
        status: Some(Status::Success),
        ..Default::default()
    });
    assert_eq!(success_rows.len(), successes);
}

#[test]
fn the_react_parser_reads_a_run_on_its_own() {
    let t = react::parse_run(
        "You are a helpful agent.\nTask: Put the mug in the café fridge\nAction: go to fridge 1\nObservation: The fridge 1 is closed.\nAction: open fridge 1\nObservation: You open the fridge 1.\n",
        None,
    )
    .unwrap();
    assert_eq!(t.original_prompt, "Put the mug in the café fridge");
    assert_eq!(
        t.origin.unwrap().system.as_deref(),
        Some("You are a helpful agent.")
    );
    assert_eq!(
        t.steps
            .iter()
            .map(|s| s.action_name.as_str())
            .collect::<Vec<_>>(),
        ["go to fridge 1", "open fridge 1"]
    );
    assert!(t.steps.iter().all(|s| s.action_input.is_empty()));
}

fn replay(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_replay"))
        .args(args)
        .output()
        .expect("replay runs")
}

#[test]
fn replay_reports_the_format_and_writes_failures_only() {
    let path = format!("{DIR}/openai_messages.jsonl");
    let run = replay(&[&path]);
    assert!(run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains(
            "read as OpenAI chat messages (openai_messages, detected): 3 failures, 1 successes, \
             0 rejected"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("4 records, 0 rejected, 3 lines written"),
        "{stderr}"
    );
    let stdout = String::from_utf8(run.stdout).unwrap();
    let written: Vec<String> = stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["trajectory_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(written.len(), 3);
    assert_eq!(written[0], "run-weather-001");
    assert!(!written.iter().any(|id| id == "run-booking-002"));

    let run = replay(&[&format!("{DIR}/react.txt"), "--format", "react"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains(
            "read as ReAct text log (react, forced): 3 failures, 1 successes, 0 rejected"
        ),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout).lines().count(), 3);

    let run = replay(&[&path, "--format=sharegpt"]);
    assert!(run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("(sharegpt, forced): 0 failures, 0 successes, 4 rejected"),
        "{stderr}"
    );
    assert!(run.stdout.is_empty());

    // With --export, the rows are failures only too.
    let run = replay(&[
        &format!("{DIR}/sharegpt.json"),
        "--format",
        "sharegpt",
        "--export",
        "llamafactory",
    ]);
    assert!(run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("(sharegpt, forced): 2 failures, 1 successes, 0 rejected"),
        "{stderr}"
    );
    let rows: Vec<serde_json::Value> = String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    // Each row's prompt is the fixed relabeling of its run: the success (sg-fx-0002) has none.
    let prompts: Vec<&str> = rows
        .iter()
        .map(|r| r["conversations"][0]["value"].as_str().unwrap())
        .collect();
    assert!(prompts[0].starts_with("HINDSIGHT::traj-"), "{prompts:?}");
    assert_eq!(prompts[1], "HINDSIGHT::sg-0003");

    let run = replay(&[&path, "--format", "yaml"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("unknown format yaml"));
    let help = replay(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("--format ID"));
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    /// Keys the importers look at, so that random records reach deep into them.
    const KEYS: [&str; 34] = [
        "messages",
        "role",
        "content",
        "tool_calls",
        "id",
        "function",
        "name",
        "arguments",
        "tool_call_id",
        "function_call",
        "reasoning_content",
        "tools",
        "reward",
        "success",
        "info",
        "reward_info",
        "traj",
        "task_id",
        "trial",
        "conversations",
        "from",
        "value",
        "answer_generation",
        "train_messages",
        "final_answer",
        "win",
        "steps",
        "source",
        "message",
        "observation",
        "results",
        "source_call_id",
        "function_name",
        "session_id",
    ];
    const WORDS: [&str; 16] = [
        "user",
        "assistant",
        "tool",
        "system",
        "function",
        "human",
        "gpt",
        "function_call",
        "observation",
        "agent",
        "Finish",
        "give_up_and_restart",
        "{\"a\": 1}",
        "[1, 2]",
        "é",
        "",
    ];

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..3).prop_map(Value::from),
            prop::sample::select(&WORDS[..]).prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(&KEYS[..]), inner), 0..6).prop_map(
                    |entries| {
                        Value::Object(
                            entries
                                .into_iter()
                                .map(|(k, v)| (k.to_owned(), v))
                                .collect::<Map<_, _>>(),
                        )
                    }
                ),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_records_never_panic_any_importer(v in value()) {
            let json = parse(&v.to_string()).unwrap();
            let _ = detect(&json);
            for format in SourceFormat::ALL {
                if let Ok(t) = agenther::import::import(format, &json) {
                    // What an importer returns is a trajectory the pipeline can take.
                    prop_assert!(!t.steps.is_empty());
                    prop_assert_eq!(t.failure_reason.is_empty(), t.succeeded());
                }
            }
        }

        #[test]
        fn react_like_text_reads_the_same_in_any_chunks(
            parts in prop::collection::vec(prop::sample::select(vec![
                "Question: q", "Task: t", "Thought 1: t", "Thought: t", "Action: a",
                "Action 2: Search[x]", "Action: Finish[y]", "Action Input: {\"a\": [1]}",
                "Observation: o", "Observation 2:", "Final Answer: f", "Reward: 1",
                "Correct Answer: c", "---", "===", "> Finished chain.", "\u{1b}[1m", "free text",
                "\n", "\n", "\n", "\r\n", " ", "é", "{", "[", "\u{feff}", "\u{2028}",
            ]), 0..120),
            cut in 1usize..40,
        ) {
            let text: String = parts.concat();
            let bytes = text.as_bytes();
            let whole = read_in_chunks("p", bytes, std::iter::once(bytes.len().max(1)));
            let chunked = read_in_chunks("p", bytes, std::iter::repeat(cut));
            prop_assert!(whole == chunked);
            let react = Some(SourceFormat::React);
            let forced = read_in_chunks_as("p", bytes, std::iter::once(bytes.len().max(1)), react);
            let chunked = read_in_chunks_as("p", bytes, std::iter::repeat(cut), react);
            prop_assert!(forced == chunked);
        }
    }
}
