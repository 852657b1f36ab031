//! Stage 3 (Algorithm 1) against a scripted chat client.
#![cfg(not(target_arch = "wasm32"))]

use agenther::llm::testing::ScriptedClient;
use agenther::llm::{
    CallKind, ChatError, ChatRequest, ResponseFormat, StructuredMode, Templates, Usage,
};
use agenther::model::{ExtractedOutcome, Step, Trajectory};
use agenther::stages::relabel::{
    relabel, AttemptOutcome, JudgeVerdict, Judges, RelabelDecision, RelabelReport, RelabelSettings,
};
use futures::executor::block_on;

const ORIGINAL: &str = "Order two tickets for the 8pm showing of Dune on Friday, under $30 total.";
const THOUGHT: &str = "The user wants Dune tickets; let me check the schedule first.";

fn trajectory() -> Trajectory {
    let mut input = agenther::json::JsonObject::new();
    input.insert("movie", agenther::json::Json::from("Dune"));
    input.insert("day", agenther::json::Json::from("Friday"));
    Trajectory {
        trajectory_id: "cinema-1".into(),
        original_prompt: ORIGINAL.into(),
        steps: vec![
            Step {
                thought: THOUGHT.into(),
                action_name: "showtimes".into(),
                action_input: input,
                observation: "Dune, Friday: 5:30pm ($14.50), 8:00pm ($16.00), 10:45pm ($12.00)"
                    .into(),
                call: None,
                kind: Default::default(),
            },
            Step {
                thought: "Two tickets at 8pm would be $32, over budget.".into(),
                action_name: "finish".into(),
                action_input: Default::default(),
                observation: String::new(),
                call: None,
                kind: Default::default(),
            },
        ],
        final_answer: "The 8pm showing costs $32 for two, which is over your budget.".into(),
        failure_reason: "Budget exceeded".into(),
        metadata: Default::default(),
        origin: None,
    }
}

fn outcome() -> ExtractedOutcome {
    ExtractedOutcome {
        actual_achievements: vec!["Retrieved Friday showtimes and prices for Dune".into()],
        key_observations: vec!["8:00pm showing costs $16.00 per ticket".into()],
        limitations: "No tickets were ordered".into(),
    }
}

const HINDSIGHT: &str = "What are Friday's showtimes for Dune, and how much is a ticket for each?";

fn relabel_reply(valid: bool, confidence: f64) -> String {
    format!(
        r#"{{"hindsight_prompt": "{HINDSIGHT}", "is_valid_replay": {valid}, "rationale": "The showtimes call lists every Friday showing with its price.", "confidence": {confidence}}}"#
    )
}

fn judge_reply(valid: bool, confidence: f64) -> String {
    format!(
        r#"{{"is_valid": {valid}, "confidence": {confidence}, "rejection_reason": "{}"}}"#,
        if valid {
            ""
        } else {
            "prices are not per showing"
        }
    )
}

fn run(client: &ScriptedClient, settings: &RelabelSettings) -> RelabelReport {
    block_on(relabel(
        client,
        &Templates::defaults(),
        settings,
        &trajectory(),
        &outcome(),
    ))
}

fn settings() -> RelabelSettings {
    RelabelSettings::new("relabel-model")
}

fn temperatures(client: &ScriptedClient) -> Vec<f64> {
    client.requests().iter().map(|r| r.temperature).collect()
}

fn request_text(r: &ChatRequest) -> String {
    r.messages
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn accepted_on_the_first_try() {
    let client = ScriptedClient::with_replies([
        Ok::<_, ChatError>(relabel_reply(true, 0.8)),
        Ok(judge_reply(true, 0.9)),
    ]);
    let report = run(&client, &settings());
    match &report.decision {
        RelabelDecision::Accepted {
            relabel,
            judges,
            attempt,
            relabel_confidence,
            judge_confidence,
        } => {
            assert_eq!(relabel.hindsight_prompt, HINDSIGHT);
            assert!(relabel.is_valid_replay);
            assert!((relabel.confidence - 0.85).abs() < 1e-12);
            assert_eq!(*judges, Judges::RelabelerAndJudge);
            assert_eq!(*attempt, 1);
            assert_eq!(*relabel_confidence, 0.8);
            assert_eq!(*judge_confidence, Some(0.9));
        }
        other => panic!("expected acceptance, got {other:?}"),
    }
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(report.attempts[0].outcome, AttemptOutcome::Accepted);
    assert_eq!(temperatures(&client), [0.3, 0.0]);

    let requests = client.requests();
    // The relabeler sees the outcome, the original prompt as a style sample, the step count.
    let relabel_text = request_text(&requests[0]);
    assert!(relabel_text.contains(ORIGINAL));
    assert!(relabel_text.contains("Retrieved Friday showtimes and prices for Dune"));
    assert!(relabel_text.contains("8:00pm showing costs $16.00 per ticket"));
    assert!(relabel_text.contains("2 steps"));
    // The judge sees the hindsight prompt and the trajectory, never the original prompt.
    let judge_text = request_text(&requests[1]);
    assert!(judge_text.contains(HINDSIGHT));
    assert!(judge_text.contains("showtimes({\"movie\": \"Dune\", \"day\": \"Friday\"})"));
    assert!(judge_text.contains("8:00pm ($16.00)"));
    assert!(judge_text.contains("which is over your budget"));
    assert!(!judge_text.contains(ORIGINAL));
    assert!(!judge_text.contains("under $30"));
    assert!(!judge_text.contains(THOUGHT));
    assert!(!judge_text.contains("Budget exceeded"));
    let judge = report.attempts[0].judge.as_ref().unwrap();
    assert_eq!(judge.verdict, JudgeVerdict::Accepted { confidence: 0.9 });
    assert_eq!(judge.call.as_ref().unwrap().kind, CallKind::Judge);
}

#[test]
fn retries_at_higher_temperature_and_judge_at_zero() {
    let client = ScriptedClient::with_replies([
        Ok::<_, ChatError>("I cannot answer in JSON today.".to_owned()),
        Ok(relabel_reply(true, 0.3)),
        Ok(relabel_reply(true, 0.7)),
        Ok(judge_reply(true, 0.6)),
    ]);
    let report = run(&client, &settings());
    assert!(report.is_accepted());
    assert_eq!(temperatures(&client), [0.3, 0.7, 0.7, 0.0]);
    let outcomes: Vec<_> = report.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [
            AttemptOutcome::Unparseable,
            AttemptOutcome::BelowTheta,
            AttemptOutcome::Accepted
        ]
    );
    let ks: Vec<_> = report
        .attempts
        .iter()
        .map(|a| (a.k, a.temperature))
        .collect();
    assert_eq!(ks, [(1, 0.3), (2, 0.7), (3, 0.7)]);
    assert!((report.relabel().unwrap().confidence - 0.65).abs() < 1e-12);
}

#[test]
fn a_judge_rejected_candidate_never_wins_the_fallback() {
    // The rejected candidate (0.95) outranks every other, yet the fallback takes the 0.45 one.
    let client = ScriptedClient::with_replies([
        Ok::<_, ChatError>(relabel_reply(true, 0.95)),
        Ok(judge_reply(false, 0.9)),
        Ok(relabel_reply(true, 0.45)),
        Ok(relabel_reply(true, 0.42)),
    ]);
    let report = run(&client, &settings());
    match &report.decision {
        RelabelDecision::Accepted {
            relabel,
            judges,
            attempt,
            judge_confidence,
            ..
        } => {
            assert_eq!(*judges, Judges::SingleJudgeFallback);
            assert_eq!(*attempt, 2);
            assert_eq!(relabel.confidence, 0.45);
            assert_eq!(*judge_confidence, None);
        }
        other => panic!("expected fallback acceptance, got {other:?}"),
    }
    assert_eq!(report.attempts[0].outcome, AttemptOutcome::JudgeRejected);
    match &report.attempts[0].judge.as_ref().unwrap().verdict {
        JudgeVerdict::Rejected { reason } => {
            assert_eq!(
                reason,
                "judge found it invalid (confidence 0.9): prices are not per showing"
            )
        }
        other => panic!("{other:?}"),
    }

    // With nothing else, a judge-rejected candidate means rejection.
    let client = ScriptedClient::with_replies([
        Ok::<_, ChatError>(relabel_reply(true, 0.95)),
        Ok(judge_reply(false, 0.9)),
        Ok("???".to_owned()),
        Ok("still no json".to_owned()),
    ]);
    let report = run(&client, &settings());
    assert_eq!(
        report.decision,
        RelabelDecision::Rejected {
            reason: "no valid candidate in 3 attempts: 2 unparseable replies, 1 judge rejection"
                .into()
        }
    );
}

#[test]
fn a_judge_that_is_not_confident_enough_rejects() {
    let client = ScriptedClient::with_replies([
        Ok::<_, ChatError>(relabel_reply(true, 0.9)),
        Ok(judge_reply(true, 0.4)),
        Ok(relabel_reply(false, 0.1)),
        Ok(relabel_reply(false, 0.1)),
    ]);
    let report = run(&client, &settings());
    assert!(!report.is_accepted());
    assert_eq!(report.attempts[0].outcome, AttemptOutcome::JudgeRejected);
    match &report.attempts[0].judge.as_ref().unwrap().verdict {
        JudgeVerdict::Rejected { reason } => {
            assert_eq!(
                reason,
                "judge found it valid but with confidence 0.4 < θ 0.5"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_fallback_accepts_at_eight_tenths_of_theta() {
    let client = ScriptedClient::with_replies([
        Ok::<_, ChatError>(relabel_reply(true, 0.2)),
        Ok(relabel_reply(true, 0.4)),
        Ok(relabel_reply(true, 0.35)),
    ]);
    let report = run(&client, &settings());
    match &report.decision {
        RelabelDecision::Accepted {
            relabel,
            judges,
            attempt,
            relabel_confidence,
            judge_confidence,
        } => {
            assert_eq!(*judges, Judges::SingleJudgeFallback);
            assert_eq!(*attempt, 2);
            assert_eq!(relabel.confidence, 0.4);
            assert_eq!(*relabel_confidence, 0.4);
            assert_eq!(*judge_confidence, None);
            assert_eq!(relabel.hindsight_prompt, HINDSIGHT);
        }
        other => panic!("expected fallback acceptance, got {other:?}"),
    }
    // No candidate reached θ, so the judge was never called.
    assert_eq!(temperatures(&client), [0.3, 0.7, 0.7]);
    assert!(report.attempts.iter().all(|a| a.judge.is_none()));
}

#[test]
fn below_eight_tenths_of_theta_rejects() {
    let client = ScriptedClient::with_replies([
        Ok::<_, ChatError>(relabel_reply(true, 0.39)),
        Ok(relabel_reply(true, 0.1)),
        Ok(relabel_reply(false, 0.9)),
    ]);
    let report = run(&client, &settings());
    assert_eq!(
        report.decision,
        RelabelDecision::Rejected {
            reason: "no valid candidate in 3 attempts: 1 reply with no valid replay, \
                     2 candidates below θ; best fallback confidence 0.39 < 0.4 (0.8 θ)"
                .into()
        }
    );
}

#[test]
fn no_valid_replay_skips_the_candidate() {
    // High confidence in "no valid replay" neither calls the judge nor makes a fallback.
    let client = ScriptedClient::with_replies([
        Ok::<_, ChatError>(relabel_reply(false, 0.95)),
        Ok(relabel_reply(false, 0.9)),
        Ok(relabel_reply(false, 0.8)),
    ]);
    let report = run(&client, &settings());
    assert!(!report.is_accepted());
    assert_eq!(client.request_count(), 3);
    assert!(report
        .attempts
        .iter()
        .all(|a| a.outcome == AttemptOutcome::NotValidReplay && a.judge.is_none()));
    match &report.decision {
        RelabelDecision::Rejected { reason } => {
            assert_eq!(
                reason,
                "no valid candidate in 3 attempts: 3 replies with no valid replay"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unparseable_replies_and_failed_calls_are_failed_attempts() {
    let client = ScriptedClient::with_replies([
        Err(ChatError::http(500, "upstream error")),
        Ok("Sorry, here is my answer: hindsight_prompt = ...".to_owned()),
        Err(ChatError::Timeout),
    ]);
    let report = run(&client, &settings());
    assert_eq!(client.request_count(), 3);
    assert_eq!(
        report.decision,
        RelabelDecision::Rejected {
            reason: "no valid candidate in 3 attempts: 2 failed calls, 1 unparseable reply".into()
        }
    );
    let a = &report.attempts;
    assert_eq!(a[0].outcome, AttemptOutcome::CallFailed);
    assert_eq!(
        a[0].call.error,
        Some(ChatError::http(500, "upstream error"))
    );
    assert_eq!(a[1].outcome, AttemptOutcome::Unparseable);
    assert_eq!(
        a[1].call.reply.as_deref(),
        Some("Sorry, here is my answer: hindsight_prompt = ...")
    );
    let why = a[1].call.parse_error.as_deref().unwrap();
    assert!(why.starts_with("whole reply: "), "{why}");
    assert!(why.contains("fenced blocks: none"), "{why}");
    assert!(
        why.contains("braces span: no `{ … }` in the reply"),
        "{why}"
    );
    assert_eq!(a[2].call.error, Some(ChatError::Timeout));

    // A failed attempt does not stop a later success.
    let client = ScriptedClient::with_replies([
        Err(ChatError::Network("connection reset".into())),
        Ok(relabel_reply(true, 0.6)),
        Ok(judge_reply(true, 0.7)),
    ]);
    let report = run(&client, &settings());
    assert!(report.is_accepted());
    assert_eq!(temperatures(&client), [0.3, 0.7, 0.0]);
}

/// Replies that are not a relabel reply: cut short, the wrong fields, values out of range or of
/// the wrong type, not an object, nested past any sane depth.
fn bad_relabel_replies() -> Vec<String> {
    let mut bad: Vec<String> = [
        "",
        "   \n\t ",
        "null",
        "[]",
        "42",
        "\"a string\"",
        r#"{"hindsight_prompt": "What are Friday's showtimes"#,
        r#"```json
{"hindsight_prompt": "x", "is_valid_replay": true,
```"#,
        r#"{"answer": "yes", "score": 7}"#,
        r#"{"hindsight_prompt": "x", "is_valid_replay": true, "rationale": "r"}"#,
        r#"{"hindsight_prompt": "x", "is_valid_replay": true, "rationale": "r", "confidence": 1.7}"#,
        r#"{"hindsight_prompt": "x", "is_valid_replay": true, "rationale": "r", "confidence": -0.1}"#,
        r#"{"hindsight_prompt": "x", "is_valid_replay": true, "rationale": "r", "confidence": "high"}"#,
        r#"{"hindsight_prompt": "x", "is_valid_replay": true, "rationale": "r", "confidence": 1e999}"#,
        r#"{"hindsight_prompt": "x", "is_valid_replay": 1, "rationale": "r", "confidence": 0.9}"#,
        r#"{"hindsight_prompt": null, "is_valid_replay": true, "rationale": "r", "confidence": 0.9}"#,
        r#"{"hindsight_prompt": "", "is_valid_replay": true, "rationale": "r", "confidence": 0.9}"#,
        r#"{"hindsight_prompt": ["x"], "is_valid_replay": true, "rationale": "r", "confidence": 0.9}"#,
        r#"{"hindsight_prompt": "x", "is_valid_replay": true, "rationale": "r", "confidence": NaN}"#,
        "I think the run shows the showtimes. {not: json}",
        "}{",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    bad.push(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)));
    bad.push(format!(
        r#"{{"hindsight_prompt": {}"x"{}, "is_valid_replay": true, "rationale": "r", "confidence": 0.9}}"#,
        "[".repeat(5_000),
        "]".repeat(5_000)
    ));
    bad.push("{".repeat(100_000));
    bad
}

#[test]
fn schema_violating_replies_are_failed_attempts_and_the_loop_goes_on() {
    for bad in bad_relabel_replies() {
        let client = ScriptedClient::with_replies([
            Ok::<_, ChatError>(bad.clone()),
            Ok(bad.clone()),
            Ok(relabel_reply(true, 0.8)),
            Ok(judge_reply(true, 0.9)),
        ]);
        let report = run(&client, &settings());
        let shown: String = bad.chars().take(60).collect();
        assert_eq!(client.remaining(), 0, "{shown}");
        assert_eq!(report.attempts.len(), 3, "{shown}");
        for a in &report.attempts[..2] {
            assert_eq!(a.outcome, AttemptOutcome::Unparseable, "{shown}");
            assert!(a.reply.is_none());
            assert!(a.call.unparseable());
            assert!(!a.call.parse_error.as_deref().unwrap_or("").is_empty());
            assert_eq!(a.call.reply.as_deref(), Some(bad.as_str()));
        }
        match &report.decision {
            RelabelDecision::Accepted { attempt, .. } => assert_eq!(*attempt, 3, "{shown}"),
            other => panic!("{shown}: {other:?}"),
        }
    }
}

#[test]
fn schema_violating_judge_replies_give_no_verdict() {
    for bad in [
        r#"{"is_valid": true}"#,
        r#"{"is_valid": "perhaps", "confidence": 0.9, "rejection_reason": ""}"#,
        r#"{"is_valid": true, "confidence": 2, "rejection_reason": ""}"#,
        r#"{"is_valid": true, "confidence": 0.9, "rejection_reason": "#,
        "Looks valid to me.",
    ] {
        let client = ScriptedClient::with_replies([
            Ok::<_, ChatError>(relabel_reply(true, 0.8)),
            Ok(bad.to_owned()),
            Ok(relabel_reply(false, 0.1)),
            Ok(relabel_reply(false, 0.1)),
        ]);
        let report = run(&client, &settings());
        assert_eq!(
            report.attempts[0].outcome,
            AttemptOutcome::JudgeUnavailable,
            "{bad}"
        );
        let judge = report.attempts[0].judge.as_ref().unwrap();
        assert!(judge.call.as_ref().unwrap().unparseable(), "{bad}");
        assert!(matches!(judge.verdict, JudgeVerdict::Unavailable { .. }));
        // The candidate the judge could not rule on is the single-judge fallback.
        assert!(matches!(
            report.decision,
            RelabelDecision::Accepted {
                judges: Judges::SingleJudgeFallback,
                attempt: 1,
                ..
            }
        ));
    }
}

#[test]
fn fenced_and_embedded_json_are_read() {
    let client = ScriptedClient::with_replies([
        Ok::<_, ChatError>(format!(
            "Here is the relabeling:\n```json\n{}\n```\nHope this helps!",
            relabel_reply(true, 0.7)
        )),
        Ok(format!(
            "My verdict is {} and that is final.",
            judge_reply(true, 0.8)
        )),
    ]);
    let report = run(&client, &settings());
    assert!(report.is_accepted());
    assert_eq!(report.relabel().unwrap().hindsight_prompt, HINDSIGHT);
    assert!((report.relabel().unwrap().confidence - 0.75).abs() < 1e-12);
}

#[test]
fn a_judge_without_verdict_leaves_a_fallback_candidate() {
    // The judge call fails: the candidate was not rejected, so it may still be the fallback.
    let client = ScriptedClient::with_replies([
        Ok::<_, ChatError>(relabel_reply(true, 0.7)),
        Err(ChatError::Timeout),
        Ok(relabel_reply(true, 0.45)),
        Ok(relabel_reply(true, 0.3)),
    ]);
    let report = run(&client, &settings());
    assert_eq!(report.attempts[0].outcome, AttemptOutcome::JudgeUnavailable);
    match &report.attempts[0].judge.as_ref().unwrap().verdict {
        JudgeVerdict::Unavailable { reason } => {
            assert_eq!(reason, "call failed: the request timed out")
        }
        other => panic!("{other:?}"),
    }
    match &report.decision {
        RelabelDecision::Accepted {
            judges,
            attempt,
            relabel,
            judge_confidence,
            ..
        } => {
            assert_eq!(*judges, Judges::SingleJudgeFallback);
            assert_eq!(*attempt, 1);
            assert_eq!(relabel.confidence, 0.7);
            assert_eq!(*judge_confidence, None);
        }
        other => panic!("{other:?}"),
    }

    // An unreadable judge reply is the same; a later two-judge acceptance still wins.
    let client = ScriptedClient::with_replies([
        Ok::<_, ChatError>(relabel_reply(true, 0.9)),
        Ok("VALID".to_owned()),
        Ok(relabel_reply(true, 0.6)),
        Ok(judge_reply(true, 0.8)),
    ]);
    let report = run(&client, &settings());
    match &report.decision {
        RelabelDecision::Accepted {
            judges, attempt, ..
        } => {
            assert_eq!(*judges, Judges::RelabelerAndJudge);
            assert_eq!(*attempt, 2);
        }
        other => panic!("{other:?}"),
    }
    let judge = report.attempts[0].judge.as_ref().unwrap();
    assert!(judge.call.as_ref().unwrap().unparseable());
    assert!(matches!(judge.verdict, JudgeVerdict::Unavailable { .. }));
}

#[test]
fn cancellation_stops_the_loop() {
    let client = ScriptedClient::with_replies([
        Ok::<_, ChatError>(relabel_reply(true, 0.3)),
        Err(ChatError::Cancelled),
        Ok(relabel_reply(true, 0.9)),
    ]);
    let report = run(&client, &settings());
    assert_eq!(report.decision, RelabelDecision::Cancelled);
    assert_eq!(client.request_count(), 2);
    assert_eq!(report.attempts[1].outcome, AttemptOutcome::Cancelled);
}

#[test]
fn requests_carry_the_settings_and_the_structured_mode() {
    for mode in StructuredMode::ALL {
        let client = ScriptedClient::with_replies([
            Ok::<_, ChatError>(relabel_reply(true, 0.8)),
            Ok(judge_reply(true, 0.9)),
        ]);
        let mut s = settings();
        s.structured = mode;
        s.max_tokens = 512;
        s.judge_model = Some("judge-model".into());
        let report = run(&client, &s);
        assert!(report.is_accepted());
        let requests = client.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].model, "relabel-model");
        assert_eq!(requests[1].model, "judge-model");
        for (r, name) in requests.iter().zip(["relabel_reply", "judge_reply"]) {
            assert_eq!(r.max_tokens, 512);
            assert_eq!(r.messages.len(), 2);
            assert_eq!(r.messages[0].role, "system");
            assert_eq!(r.messages[1].role, "user");
            // The prompt states the JSON shape in every mode.
            assert!(r.messages[0].content.contains("\"confidence\""));
            match (mode, &r.response_format) {
                (
                    StructuredMode::JsonSchema,
                    Some(ResponseFormat::JsonSchema {
                        name: n,
                        schema,
                        strict,
                    }),
                ) => {
                    assert_eq!(n, name);
                    assert!(*strict);
                    assert!(schema["properties"]["confidence"].is_object());
                }
                (StructuredMode::JsonObject, Some(ResponseFormat::JsonObject)) => {}
                (StructuredMode::PromptOnly, None) => {}
                (mode, other) => panic!("{mode:?} sent {other:?}"),
            }
            let body: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
            assert_eq!(body["model"], r.model.as_str());
            assert_eq!(body["max_tokens"], 512);
        }
        assert_eq!(temperatures(&client), [0.3, 0.0]);
    }
}

#[test]
fn usage_is_summed_per_stage() {
    let client = ScriptedClient::with_replies([
        Ok::<_, ChatError>(relabel_reply(true, 0.6)),
        Ok(judge_reply(false, 0.7)),
        Err(ChatError::Timeout),
        Ok(relabel_reply(true, 0.7)),
        Ok(judge_reply(true, 0.7)),
    ])
    .with_usage(Usage::new(120, 30));
    let report = run(&client, &settings());
    assert!(report.is_accepted());
    assert_eq!(report.calls().count(), 5);
    let usage = report.usage();
    assert_eq!(usage.relabel.calls, 3);
    assert_eq!(usage.relabel.failed_calls, 1);
    assert_eq!(usage.relabel.prompt_tokens, 240);
    assert_eq!(usage.relabel.completion_tokens, 60);
    assert_eq!(usage.judge.calls, 2);
    assert_eq!(usage.judge.prompt_tokens, 240);
    assert_eq!(usage.detect.calls + usage.extract.calls, 0);
    let total = usage.total();
    assert_eq!(total.calls, 5);
    assert_eq!(total.total_tokens(), 600);
}

#[test]
fn theta_and_attempts_are_settings() {
    let client = ScriptedClient::with_replies([
        Ok::<_, ChatError>(relabel_reply(true, 0.75)),
        Ok(relabel_reply(true, 0.65)),
    ]);
    let mut s = settings();
    s.theta = 0.8;
    s.max_attempts = 2;
    let report = run(&client, &s);
    // 0.75 < θ = 0.8, and 0.75 ≥ 0.64 = 0.8 θ: single-judge fallback after two attempts.
    assert_eq!(client.request_count(), 2);
    match &report.decision {
        RelabelDecision::Accepted {
            judges, attempt, ..
        } => {
            assert_eq!(*judges, Judges::SingleJudgeFallback);
            assert_eq!(*attempt, 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(report.theta, 0.8);
    assert!((report.fallback_floor - 0.64).abs() < 1e-12);
}

#[test]
fn a_relabel_template_that_fails_on_real_data_rejects_without_calls() {
    let mut sources = agenther::llm::TemplateSources::defaults();
    // Renders on the validation sample (one achievement) but not with an empty list.
    sources.relabel.user = "First: {{ actual_achievements[0] | upper }}".into();
    let templates = Templates::new(sources).unwrap();
    let client = ScriptedClient::new();
    let empty = ExtractedOutcome {
        actual_achievements: vec![],
        key_observations: vec![],
        limitations: String::new(),
    };
    let report = block_on(relabel(
        &client,
        &templates,
        &settings(),
        &trajectory(),
        &empty,
    ));
    assert_eq!(client.request_count(), 0);
    match &report.decision {
        RelabelDecision::Rejected { reason } => {
            assert!(
                reason.starts_with("could not render the relabel prompt: template relabel/user:"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_report_serializes_for_the_run_log() {
    let client = ScriptedClient::with_replies([
        Ok::<_, ChatError>(relabel_reply(true, 0.8)),
        Ok(judge_reply(true, 0.9)),
    ]);
    let report = run(&client, &settings());
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(v["decision"]["decision"], "accepted");
    assert_eq!(v["decision"]["judges"], "relabeler_and_judge");
    assert_eq!(v["attempts"][0]["outcome"], "accepted");
    assert_eq!(v["attempts"][0]["judge"]["verdict"]["verdict"], "accepted");
    assert_eq!(v["attempts"][0]["call"]["request"]["temperature"], 0.3);
}
