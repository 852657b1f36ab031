//! Importers against real agent logs (`tests/fixtures/real/`, see its README for provenance
//! and licences) and the preservation property: the texts of a source (system prompt, user
//! turns, assistant texts and reasoning, calls with their arguments, tool results) reach the
//! trajectory, in fields the stages and exports read.
#![cfg(not(target_arch = "wasm32"))]

use agenther::json::Json;
use agenther::model::Trajectory;
use agenther::reader::{read_all, ReadReport, SourceFormat};
use proptest::prelude::*;

#[path = "support/texts.rs"]
mod texts;
use texts::preserved;

const REAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/real");

fn load(dir: &str, name: &str) -> (Vec<u8>, ReadReport) {
    let bytes = std::fs::read(format!("{dir}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"));
    let report = read_all(name, &bytes);
    (bytes, report)
}

/// Counts of a report: runs, successes, failures, verdict unknown (among the failures),
/// rejected.
fn counts(report: &ReadReport) -> [usize; 5] {
    let ts: Vec<&Trajectory> = report.records.iter().map(|r| &r.trajectory).collect();
    [
        ts.len(),
        ts.iter().filter(|t| t.succeeded()).count(),
        ts.iter().filter(|t| !t.succeeded()).count(),
        ts.iter().filter(|t| t.verdict_unknown()).count(),
        report.rejected.len(),
    ]
}

/// Reads a file and checks what the brief of the real excerpts asks: its format, exact counts
/// (runs, successes, failures, failures whose verdict is unknown, rejected records) and at
/// least 99% of its text in the trajectories. Returns the report.
fn check(dir: &str, name: &str, format: SourceFormat, want: [usize; 5]) -> ReadReport {
    let (bytes, report) = load(dir, name);
    assert_eq!(report.summary.source_format, format, "{name}");
    assert_eq!(counts(&report), want, "{name}: {:#?}", report.rejected);
    let (ratio, lost) = preserved(format, &bytes, &report);
    assert!(ratio >= 0.99, "{name}: {ratio} preserved, lost {lost:#?}");
    report
}

fn record(report: &ReadReport, i: usize) -> &Trajectory {
    &report.records[i].trajectory
}

/// The kinds of a run's steps: `t` a tool call, `r` a reply to the user, `u` a user message
/// that came right after a tool result.
fn shape(t: &Trajectory) -> String {
    t.steps
        .iter()
        .map(|s| match (s.is_respond(), s.reply().is_empty()) {
            (false, _) => 't',
            (true, false) => 'r',
            (true, true) => 'u',
        })
        .collect()
}

#[test]
fn tau_bench_airline_runs_keep_every_user_turn_and_reply() {
    let r = check(
        REAL,
        "tau_bench_airline_excerpt.json",
        SourceFormat::TauBench,
        [7, 2, 5, 0, 0],
    );
    let ids: Vec<&str> = r
        .records
        .iter()
        .map(|r| r.trajectory.trajectory_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "task-0-trial-0",
            "task-1-trial-0",
            "task-2-trial-0",
            "task-6-trial-0",
            "task-8-trial-0",
            "task-12-trial-0",
            "task-16-trial-0"
        ]
    );
    // Rewards 1 (tasks 6 and 12) are the successes.
    let ok: Vec<bool> = r.records.iter().map(|r| r.trajectory.succeeded()).collect();
    assert_eq!(ok, [false, false, false, true, false, true, false]);
    let t = record(&r, 0);
    assert_eq!(shape(t), "rrttrtrtrtttrtr");
    assert_eq!(
        t.steps[0].reply(),
        "To assist you with booking a flight, I'll need your user ID. Could you please provide that?"
    );
    assert_eq!(t.steps[0].observation, "Sure, my user ID is mia_li_3668.");
    assert_eq!(t.steps[0].thought, "");
    assert_eq!(t.steps[2].action_name, "get_user_details");
    assert_eq!(
        t.steps.last().unwrap().observation,
        "Thank you so much for your help! ###STOP###"
    );
    // Runs where the agent only talked are runs of replies.
    for (i, replies) in [(1, 5), (4, 8), (6, 6)] {
        assert_eq!(shape(record(&r, i)), "r".repeat(replies));
    }
}

#[test]
fn glaive_conversations_keep_every_human_turn() {
    let r = check(
        REAL,
        "glaive_toolcall_en_excerpt.json",
        SourceFormat::ShareGpt,
        [12, 0, 12, 12, 0],
    );
    let t = record(&r, 0);
    assert_eq!(shape(t), "rtr");
    assert_eq!(
        t.steps[0].observation,
        "I have chicken, bell peppers, and rice."
    );
    assert_eq!(t.steps[1].action_name, "search_recipes");
    assert!(t.verdict_unknown() && !t.succeeded());
    // A conversation with no call is a run of replies and a final answer.
    assert_eq!(shape(record(&r, 1)), "rrrr");
    assert!(!record(&r, 1).final_answer.is_empty());
}

#[test]
fn llama_factory_typed_parts_give_reasoning_calls_and_texts() {
    let r = check(
        REAL,
        "lf_reason_tool_use_excerpt.jsonl",
        SourceFormat::OpenAiMessages,
        [8, 0, 8, 8, 0],
    );
    let shapes: Vec<String> = r.records.iter().map(|r| shape(&r.trajectory)).collect();
    assert_eq!(shapes, ["", "trt", "ttrttt", "", "t", "", "tt", "tt"]);
    let t = record(&r, 1);
    assert_eq!(t.steps[0].action_name, "get_movie_details");
    assert_eq!(
        t.steps[0].observation,
        r#"[{"title": "Inception", "director": "Christopher Nolan", "release_year": 2010, "genre": "Science fiction", "rating": 8.8}]"#
    );
    assert!(t.steps[0]
        .thought
        .starts_with("Alright, the user wants information"));
    assert!(t
        .final_thought()
        .starts_with("The user asked about \"The Dark Knight\""));
    // Reasoning and an answer, no call: the answer with its reasoning.
    let t = record(&r, 0);
    assert!(t
        .final_answer
        .starts_with("I'm sorry, but the available tools"));
    assert!(t
        .final_thought()
        .starts_with("Okay, the user is asking for schools"));
    assert!(t.origin.as_ref().unwrap().system.is_some());
}

#[test]
fn reflexion_sections_and_evaluations_give_the_verdicts() {
    let r = check(
        REAL,
        "reflexion_hotpotqa_excerpt.txt",
        SourceFormat::React,
        [5, 5, 0, 0, 0],
    );
    let t = record(&r, 0);
    assert_eq!(
        t.original_prompt,
        "Which of Jonny Craig and Pete Doherty has been a member of more bands ?"
    );
    // The trial banner is no system prompt.
    assert_eq!(t.origin.as_ref().unwrap().system, None);
    assert_eq!(shape(t), "tt");
    assert_eq!(t.final_answer, "Jonny Craig");
    assert_eq!(
        t.final_thought(),
        "Pete Doherty has been a member of three bands. So Jonny Craig has been a member of more bands than Pete Doherty."
    );
    assert_eq!(
        t.metadata.get("evaluation").and_then(Json::as_str),
        Some("Answer is CORRECT")
    );
    // The excerpt ends inside a run of the correct section: it only thought so far.
    let last = record(&r, 4);
    assert!(last.steps.is_empty() && last.succeeded());
}

#[test]
fn fever_rewards_stats_and_timing_lines_belong_to_their_run() {
    let r = check(
        REAL,
        "react_fever_excerpt.txt",
        SourceFormat::React,
        [4, 2, 2, 1, 0],
    );
    let verdicts: Vec<(bool, bool)> = r
        .records
        .iter()
        .map(|r| (r.trajectory.succeeded(), r.trajectory.verdict_unknown()))
        .collect();
    assert_eq!(
        verdicts,
        [(true, false), (true, false), (false, false), (false, true)]
    );
    let t = record(&r, 0);
    assert_eq!(t.original_prompt, "Paramore is not from Tennessee.");
    assert_eq!(t.final_answer, "REFUTES");
    assert_eq!(
        t.final_thought(),
        "The observation says that the band is \"from Franklin, Tennessee\", so the claim is false."
    );
    let lines = t
        .metadata
        .get("log_lines")
        .and_then(Json::as_array)
        .unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1].as_str(), Some("1 1 1.0 4.081380128860474"));
    assert_eq!(
        record(&r, 2).failure_reason,
        "The evaluation said: Episode finished, reward = 0"
    );
    // The action written after a blank line, and the blank lines inside the run, keep it whole.
    let t = record(&r, 3);
    assert_eq!(shape(t), "tt");
    assert_eq!(t.steps[1].action_name, "Lookup");
    assert_eq!(t.final_answer, "NOT ENOUGH INFO");
}

#[test]
fn toolbench_tree_and_restarts() {
    let r = check(
        REAL,
        "toolbench_G1_69_answer.json",
        SourceFormat::ToolBench,
        [1, 0, 1, 0, 0],
    );
    let t = record(&r, 0);
    let names: Vec<&str> = t.steps.iter().map(|s| s.action_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "latest_news_for_currents_news",
            "authenticate_authentication_system",
            "check_authentication_token",
            "latest_news_for_currents_news",
            "search_for_currents_news"
        ]
    );
    assert!(t.steps[1]
        .thought
        .starts_with("Since I received an authentication error"));

    let r = check(
        REAL,
        "toolbench_G2_119_answer.json",
        SourceFormat::ToolBench,
        [1, 0, 1, 0, 0],
    );
    let t = record(&r, 0);
    assert_eq!(shape(t), "ttu");
    assert!(t.steps[2]
        .observation
        .starts_with("This is not the first time you try this task"));
    assert!(t
        .final_thought()
        .starts_with("Based on the previous actions and their failures"));
    assert_eq!(
        t.failure_reason,
        "The agent gave up and asked to restart (Finish: give_up_and_restart)."
    );
}

#[test]
fn atif_keeps_the_last_reasoning() {
    let r = check(
        REAL,
        "atif_rfc_example.json",
        SourceFormat::Atif,
        [1, 0, 1, 1, 0],
    );
    let t = record(&r, 0);
    assert_eq!(shape(t), "tt");
    assert!(t.final_thought().starts_with("The previous step retrieved"));
}

/// One message of a generated conversation.
#[derive(Debug, Clone)]
enum Event {
    User(String),
    Say(String),
    Think(String),
    Call(String, String),
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Zé東 ]{0,6}[a-zA-Z0-9]{4,8}[a-z .!?]{0,10}"
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => text().prop_map(Event::User),
        3 => text().prop_map(Event::Say),
        1 => text().prop_map(Event::Think),
        3 => (text(), text()).prop_map(|(q, r)| Event::Call(q, r)),
    ]
}

/// The events as OpenAI messages (reasoning on the next assistant message) and as ShareGPT
/// turns (reasoning dropped: ShareGPT has no place for it).
fn render(goal: &str, events: &[Event]) -> (String, String) {
    let mut messages = vec![serde_json::json!({"role": "user", "content": goal})];
    let mut turns = vec![serde_json::json!({"from": "human", "value": goal})];
    let mut reasoning: Option<&str> = None;
    for (i, e) in events.iter().enumerate() {
        match e {
            Event::User(t) => {
                messages.push(serde_json::json!({"role": "user", "content": t}));
                turns.push(serde_json::json!({"from": "human", "value": t}));
            }
            Event::Say(t) => {
                messages.push(serde_json::json!({"role": "assistant", "content": t,
                    "reasoning_content": reasoning.take()}));
                turns.push(serde_json::json!({"from": "gpt", "value": t}));
            }
            Event::Think(t) => reasoning = Some(t),
            Event::Call(q, r) => {
                let id = format!("c{i}");
                let args = serde_json::json!({"q": q}).to_string();
                messages.push(serde_json::json!({"role": "assistant", "content": null,
                    "reasoning_content": reasoning.take(),
                    "tool_calls": [{"id": id, "type": "function",
                        "function": {"name": "lookup", "arguments": args}}]}));
                messages
                    .push(serde_json::json!({"role": "tool", "tool_call_id": id, "content": r}));
                turns.push(serde_json::json!({"from": "function_call",
                    "value": serde_json::json!({"name": "lookup", "arguments": {"q": q}}).to_string()}));
                turns.push(serde_json::json!({"from": "observation", "value": r}));
            }
        }
    }
    if let Some(r) = reasoning {
        messages
            .push(serde_json::json!({"role": "assistant", "content": "", "reasoning_content": r}));
    }
    (
        serde_json::json!({"messages": messages}).to_string(),
        serde_json::json!({"conversations": turns}).to_string(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever the order of user turns, replies, reasoning and calls, every text of the
    /// conversation reaches the trajectory.
    #[test]
    fn every_text_of_a_conversation_reaches_the_trajectory(
        goal in text(),
        events in proptest::collection::vec(event(), 1..14),
    ) {
        let (openai, sharegpt) = render(&goal, &events);
        for (format, line) in [
            (SourceFormat::OpenAiMessages, openai),
            (SourceFormat::ShareGpt, sharegpt),
        ] {
            let report = read_all("gen.jsonl", format!("{line}\n").as_bytes());
            let agent_did_something = events
                .iter()
                .any(|e| matches!(e, Event::Say(_) | Event::Call(..)))
                || (format == SourceFormat::OpenAiMessages
                    && events.iter().any(|e| matches!(e, Event::Think(_))));
            if !agent_did_something {
                continue;
            }
            prop_assert_eq!(report.records.len(), 1, "{:?}", report.rejected);
            let (ratio, lost) = preserved(format, line.as_bytes(), &report);
            prop_assert!(ratio == 1.0, "{:?}: lost {:?}", format, lost);
        }
    }
}
