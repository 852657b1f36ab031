//! Property tests over hostile input: the trajectory reader and the reply parser never panic,
//! whatever the bytes and however they are cut; the reader's result does not depend on the
//! chunking; Algorithm 1 and the pipeline end every trajectory in an outcome whatever the
//! endpoint replies; the Retry-After reader and the request key behave on any input.
#![cfg(not(target_arch = "wasm32"))]

use agenther::llm::exchange::{canonical_request, request_key};
use agenther::llm::retry::{parse_http_date, parse_retry_after};
use agenther::llm::testing::ScriptedClient;
use agenther::llm::{
    parse_reply, ChatMessage, ChatRequest, DetectReply, ExtractReply, JudgeReply, RelabelReply,
    Templates,
};
use agenther::model::{ExtractedOutcome, Step, Trajectory};
use agenther::pipeline::{process, Mode, Outcome, Settings};
use agenther::reader::{FileSummary, ReadEvent, Reader};
use agenther::stages::detect::rules::Lexicon;
use agenther::stages::relabel::{relabel, AttemptOutcome, RelabelDecision, RelabelSettings};
use futures::executor::block_on;
use proptest::prelude::*;
use serde_json::{json, Value};

mod support;

/// Reads `bytes` pushed in pieces cut at `cuts` (positions, any order, any repeats).
fn read_cut(bytes: &[u8], cuts: &[prop::sample::Index]) -> (Vec<ReadEvent>, FileSummary) {
    let points = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    support::read_cut(Reader::new("fuzz.jsonl"), bytes, points)
}

fn read_whole(bytes: &[u8]) -> (Vec<ReadEvent>, FileSummary) {
    read_cut(bytes, &[])
}

/// Text that may hold anything: escapes, quotes, braces, line and paragraph separators,
/// astral characters, controls.
fn wild_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<char>().prop_map(String::from),
            2 => prop::sample::select(vec![
                "\"", "\\", "{", "}", "[", "]", ",", ":", "\n", "\r\n", "\u{2028}", "\u{85}",
                "\u{feff}", "\t", "```", "```json\n", "null", "true", "1e400", "-0", "\\u0000",
                "\\ud800", "😀",
            ])
            .prop_map(String::from),
            1 => "[a-z ]{0,12}",
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

/// A record of the native schema, as a JSON value, with wild strings in it.
fn record() -> impl Strategy<Value = Value> {
    let step = (wild_text(), "[a-z_]{1,10}", wild_text(), any::<bool>()).prop_map(
        |(thought, action, observation, with_input)| {
            let mut s =
                json!({"thought": thought, "action_name": action, "observation": observation});
            if with_input {
                s["action_input"] = json!({"q": observation, "n": 1.5, "deep": [[{"x": null}]]});
            }
            s
        },
    );
    (
        proptest::option::of("[a-z0-9-]{1,12}"),
        wild_text(),
        prop::collection::vec(step, 1..4),
        wild_text(),
    )
        .prop_map(|(id, prompt, steps, reason)| {
            let mut r =
                json!({"original_prompt": prompt, "steps": steps, "failure_reason": reason});
            if let Some(id) = id {
                r["trajectory_id"] = json!(id);
            }
            r
        })
}

/// The file layouts the reader knows: JSONL, a JSON array, pretty-printed values.
fn layout(records: &[Value], kind: usize) -> String {
    match kind {
        0 => records.iter().map(|r| format!("{r}\n")).collect(),
        1 => serde_json::to_string_pretty(&Value::Array(records.to_vec())).unwrap(),
        _ => records
            .iter()
            .map(|r| serde_json::to_string_pretty(r).unwrap() + "\n")
            .collect(),
    }
}

/// A change that breaks well-formed text in the ways files get broken.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(prop::sample::Index, usize),
    Insert(prop::sample::Index, &'static str),
    Duplicate(prop::sample::Index, usize),
    Flip(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1usize..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<prop::sample::Index>(),
            prop::sample::select(vec![
                "{",
                "}",
                "[",
                "]",
                ",",
                "\"",
                "\\",
                "\n",
                ":",
                "null",
                "\u{feff}",
                "\u{2028}",
                "\"steps\": 5",
                "\"original_prompt\": {}",
                "]]]]",
                "{{{{",
            ])
        )
            .prop_map(|(i, s)| Mutation::Insert(i, s)),
        (any::<prop::sample::Index>(), 1usize..40).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        match m {
            Mutation::Delete(i, n) => {
                let at = i.index(len + 1);
                let end = (at + n).min(len);
                bytes.drain(at..end);
            }
            Mutation::Insert(i, s) => {
                let at = i.index(len + 1);
                bytes.splice(at..at, s.bytes());
            }
            Mutation::Duplicate(i, n) => {
                let at = i.index(len + 1);
                let piece: Vec<u8> = bytes[at..(at + n).min(len)].to_vec();
                bytes.splice(at..at, piece);
            }
            Mutation::Flip(i, b) if len > 0 => {
                let at = i.index(len);
                bytes[at] = *b;
            }
            Mutation::Flip(..) => {}
            Mutation::Truncate(i) => bytes.truncate(i.index(len + 1)),
        }
    }
    bytes
}

/// Every reply type, read from `text`: the parser must answer, never panic.
fn parse_all(text: &str) {
    let _ = parse_reply::<RelabelReply>(text);
    let _ = parse_reply::<JudgeReply>(text);
    let _ = parse_reply::<DetectReply>(text);
    let _ = parse_reply::<ExtractReply>(text);
}

/// Reply-like text: prose, fences, braces, field names and values of every kind.
fn near_reply() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(vec![
                "{", "}", "[", "]", ",", ":", "\"", "```", "```json\n", "\n```", "\n",
                "\"hindsight_prompt\"", "\"is_valid_replay\"", "\"confidence\"", "\"rationale\"",
                "\"is_valid\"", "\"rejection_reason\"", "\"is_failure\"", "\"failure_type\"",
                "\"severity\"", "\"weight\"", "\"recoverable\"", "\"explanation\"",
                "\"actual_achievements\"", "\"key_observations\"", "\"limitations\"",
                "true", "false", "null", "0.9", "\"0.8\"", "1.5", "-1", "1e308", "NaN",
                "\"tool error\"", "\"none\"", "\"x\"", "[\"a\", \"b\"]", "Sure! ",
            ])
            .prop_map(String::from),
            1 => wild_text(),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

fn trajectory() -> Trajectory {
    Trajectory {
        trajectory_id: "fuzz".into(),
        original_prompt: "Find a laptop under $500".into(),
        steps: vec![Step {
            thought: "look".into(),
            action_name: "search".into(),
            action_input: Default::default(),
            observation: "Found Dell XPS 13 for $899 with 16 GB RAM and 512 GB SSD".into(),
            call: None,
            kind: Default::default(),
        }],
        final_answer: String::new(),
        failure_reason: "The laptop exceeds the budget".into(),
        metadata: Default::default(),
        origin: None,
    }
}

/// An IMF-fixdate for seconds since the epoch (the form servers send).
fn imf_fixdate(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_reader_takes_any_bytes_in_any_chunks(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..16),
    ) {
        let whole = read_whole(&bytes);
        let cut = read_cut(&bytes, &cuts);
        prop_assert!(whole == cut);
        prop_assert_eq!(whole.1.bytes, bytes.len() as u64);
    }

    #[test]
    fn the_reader_keeps_every_well_formed_record_however_cut(
        records in prop::collection::vec(record(), 1..5),
        kind in 0usize..3,
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..16),
    ) {
        let text = layout(&records, kind);
        let (events, summary) = read_cut(text.as_bytes(), &cuts);
        prop_assert_eq!(summary.records, records.len(), "{}", text);
        prop_assert_eq!(summary.rejected, 0);
        prop_assert!((events, summary) == read_whole(text.as_bytes()));
    }

    #[test]
    fn the_reader_survives_broken_near_json_and_chunking_changes_nothing(
        records in prop::collection::vec(record(), 1..4),
        kind in 0usize..3,
        mutations in prop::collection::vec(mutation(), 1..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..16),
    ) {
        let bytes = mutate(layout(&records, kind).into_bytes(), &mutations);
        let whole = read_whole(&bytes);
        let cut = read_cut(&bytes, &cuts);
        // Every record the file holds is either read or reported.
        let events = whole.0.len();
        prop_assert_eq!(events, whole.1.records + whole.1.rejected);
        prop_assert!(whole == cut);
    }

    #[test]
    fn the_reply_parser_takes_any_text(text in any::<String>()) {
        parse_all(&text);
    }

    #[test]
    fn the_reply_parser_takes_near_json(text in near_reply()) {
        parse_all(&text);
    }

    #[test]
    fn a_reply_is_found_whatever_prose_surrounds_it(
        before in "[A-Za-z .,!?\n]{0,80}",
        after in "[A-Za-z .,!?\n]{0,80}",
        fenced in any::<bool>(),
        confidence in 0.0f64..=1.0,
    ) {
        let json = json!({
            "hindsight_prompt": "List the laptops and their prices",
            "is_valid_replay": true,
            "rationale": "the search lists them",
            "confidence": confidence,
        })
        .to_string();
        let text = if fenced {
            format!("{before}\n```json\n{json}\n```\n{after}")
        } else {
            format!("{before}{json}{after}")
        };
        let reply = parse_reply::<RelabelReply>(&text);
        prop_assert!(reply.is_ok(), "{:?}", reply);
        prop_assert_eq!(reply.unwrap().confidence, confidence);
    }

    #[test]
    fn retry_after_takes_any_text(text in any::<String>(), now in any::<f64>()) {
        let _ = parse_retry_after(&text, now);
        let _ = parse_http_date(&text);
    }

    #[test]
    fn retry_after_reads_back_every_http_date(
        secs in 0i64..8_000_000_000,
        ahead in 0u64..100_000,
    ) {
        let date = imf_fixdate(secs);
        prop_assert_eq!(parse_http_date(&date), Some(secs as f64 * 1000.0), "{}", date);
        let now = secs as f64 * 1000.0 - ahead as f64;
        prop_assert_eq!(parse_retry_after(&date, now), Some(ahead));
        prop_assert_eq!(parse_retry_after(&ahead.to_string(), now), Some(ahead * 1000));
    }

    #[test]
    fn request_keys_are_canonical_and_tell_requests_apart(
        content in any::<String>(),
        other in any::<String>(),
        temperature in 0.0f64..2.0,
        max_tokens in 1u32..10_000,
    ) {
        let request = |c: &str| ChatRequest {
            model: "m".into(),
            messages: vec![ChatMessage::user(c)],
            temperature,
            max_tokens,
            response_format: None,
        };
        let a = request(&content);
        let key = request_key("http://h/v1", &a);
        prop_assert_eq!(key.len(), 64);
        prop_assert_eq!(&key, &request_key("http://h/v1/", &a.clone()));
        // The canonical form is valid JSON that holds the content as it is.
        let v: Value = serde_json::from_str(&canonical_request("http://h/v1", &a)).unwrap();
        prop_assert_eq!(v[3][0][1].as_str(), Some(content.as_str()));
        if other != content {
            prop_assert_ne!(key, request_key("http://h/v1", &request(&other)));
        }
    }
}

proptest! {
    // Each case renders prompts and runs whole trajectories: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn algorithm_1_ends_in_a_decision_whatever_the_replies(
        replies in prop::collection::vec(
            prop_oneof![near_reply(), any::<String>(), Just(r#"{"hindsight_prompt": "Find laptops", "is_valid_replay": true, "rationale": "r", "confidence": 0.9}"#.to_string())],
            0..8,
        ),
        k in 1u32..5,
    ) {
        let client = ScriptedClient::with_replies(replies.into_iter().map(Ok::<_, agenther::llm::ChatError>));
        let settings = RelabelSettings { max_attempts: k, ..RelabelSettings::new("m") };
        let outcome = ExtractedOutcome {
            actual_achievements: vec!["Found a laptop".into()],
            key_observations: vec![],
            limitations: String::new(),
        };
        let report = block_on(relabel(&client, &Templates::defaults(), &settings, &trajectory(), &outcome));
        prop_assert!(report.attempts.len() as u32 <= k);
        prop_assert!(!report.attempts.is_empty());
        let accepted = matches!(report.decision, RelabelDecision::Accepted { .. });
        prop_assert!(accepted || report.attempts.len() as u32 == k, "stopped early without acceptance");
        let cancelled = matches!(report.decision, RelabelDecision::Cancelled);
        prop_assert!(!cancelled);
        for a in &report.attempts {
            if a.outcome == AttemptOutcome::Unparseable {
                prop_assert!(a.call.parse_error.is_some());
            }
        }
    }

    #[test]
    fn every_trajectory_gets_an_outcome_whatever_the_endpoint_says(
        replies in prop::collection::vec(prop_oneof![near_reply(), any::<String>()], 0..12),
        llm_detection in any::<bool>(),
    ) {
        let client = ScriptedClient::with_replies(replies.into_iter().map(Ok::<_, agenther::llm::ChatError>));
        let settings = Settings {
            model: "m".into(),
            detection: if llm_detection { Mode::Llm } else { Mode::Rules },
            extraction: Mode::Llm,
            ..Settings::default()
        };
        let result = block_on(process(&client, &Templates::defaults(), &settings, &Lexicon::default(), &trajectory()));
        prop_assert_eq!(result.trajectory_id.as_str(), "fuzz");
        let cancelled = matches!(result.outcome, Outcome::Cancelled { .. });
        prop_assert!(!cancelled, "{:?}", result.outcome);
        prop_assert!(!result.outcome.reason().is_empty());
        prop_assert_eq!(result.calls().count(), client.request_count());
    }
}
