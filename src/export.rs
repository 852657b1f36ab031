//! What the user downloads: the accepted samples in each native envelope (JSONL) and a run
//! report (JSON). Nothing here knows the API key: it is never part of a session or settings.

use crate::llm::Templates;
use crate::model::SampleFormat;
use crate::pipeline::{Outcome, Settings};
use crate::session::Session;
use crate::stages::package::sample_to_json_line;
use serde_json::{json, Map, Value};

/// The accepted samples of `session` in `format`, one JSON object per line, in load order.
pub fn samples_jsonl(session: &Session, format: SampleFormat) -> String {
    let mut out = String::new();
    for e in &session.entries {
        if let Some(sample) = e
            .result
            .as_ref()
            .and_then(|r| r.sample(&e.trajectory, format))
        {
            out.push_str(&sample_to_json_line(&sample));
            out.push('\n');
        }
    }
    out
}

/// How many samples [`samples_jsonl`] writes.
pub fn accepted_count(session: &Session) -> usize {
    session
        .entries
        .iter()
        .filter(|e| e.result.as_ref().is_some_and(|r| r.outcome.is_accepted()))
        .count()
}

/// A download's file name: `agenther-{what}-{stamp}.{ext}`, where `stamp` is a compact UTC
/// time such as `20261122-153005`.
pub fn file_name(what: &str, stamp: &str, ext: &str) -> String {
    format!("agenther-{what}-{stamp}.{ext}")
}

/// The file name of the samples in `format`.
pub fn samples_file_name(format: SampleFormat, stamp: &str) -> String {
    file_name(format.as_str(), stamp, "jsonl")
}

/// What a run report says about the run itself, beside the session.
#[derive(Debug, Clone)]
pub struct RunContext<'a> {
    /// The endpoint's base URL (never with credentials).
    pub endpoint: &'a str,
    pub settings: &'a Settings,
    pub templates: &'a Templates,
    /// When the report was made, ISO 8601.
    pub created_at: &'a str,
    /// Wall-clock time the run took, in milliseconds, when a run happened.
    pub elapsed_ms: Option<f64>,
}

/// The run report: product and version, settings (no key), templates, files read and the
/// records they rejected, totals with calls and tokens per stage, and one entry per
/// trajectory with its outcome.
pub fn run_report(session: &Session, ctx: &RunContext) -> Value {
    let files: Vec<Value> = session
        .files
        .iter()
        .map(|f| {
            json!({
                "file": f.summary.file,
                "format": f.summary.format,
                "bytes": f.summary.bytes,
                "records": f.summary.records,
                "rejected": f.summary.rejected,
                "blank_lines": f.summary.blank_lines,
                "notes": f.summary.notes,
                "rejected_records": f.rejected.iter().map(|r| json!({
                    "line": r.line,
                    "index": r.index,
                    "field": r.field,
                    "reason": r.reason,
                    "trajectory_id": r.trajectory_id,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();

    let trajectories: Vec<Value> = session
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let row = session.row(i).expect("index in range");
            let mut t = Map::new();
            t.insert("trajectory_id".into(), json!(row.trajectory_id));
            t.insert("file".into(), json!(row.file));
            t.insert("line".into(), json!(row.line));
            t.insert("status".into(), json!(row.status.as_str()));
            t.insert("failure_type".into(), json!(row.failure_type));
            t.insert("severity".into(), json!(row.severity));
            t.insert("weight".into(), json!(row.weight));
            t.insert("recoverable".into(), json!(row.recoverable));
            if let Some(r) = &e.result {
                t.insert("stage".into(), json!(r.outcome.stage().as_str()));
                t.insert("reason".into(), json!(r.outcome.reason()));
                if let Outcome::Accepted { attempt, .. } = r.outcome {
                    t.insert("accepted_attempt".into(), json!(attempt));
                }
                t.insert("hindsight_prompt".into(), json!(row.hindsight_prompt));
                t.insert("confidence".into(), json!(row.confidence));
                t.insert("relabel_confidence".into(), json!(row.relabel_confidence));
                t.insert("judge_confidence".into(), json!(row.judge_confidence));
                t.insert("judges".into(), json!(row.judges));
                let usage = r.usage();
                let total = usage.total();
                t.insert(
                    "relabel_attempts".into(),
                    json!(r.relabel.as_ref().map_or(0, |rep| rep.attempts.len())),
                );
                t.insert("calls".into(), json!(total.calls));
                t.insert("failed_calls".into(), json!(total.failed_calls));
                t.insert("retries".into(), json!(total.retries));
                t.insert("calls_from_log".into(), json!(total.from_log));
                let flags: Vec<Value> = r
                    .flags()
                    .iter()
                    .map(|f| json!({"flag": f.kind, "calls": f.calls, "advice": f.advice}))
                    .collect();
                if !flags.is_empty() {
                    t.insert("flags".into(), json!(flags));
                }
                if r.endpoint_unavailable() {
                    t.insert("endpoint_unavailable".into(), json!(true));
                }
                t.insert("prompt_tokens".into(), json!(total.prompt_tokens));
                t.insert("completion_tokens".into(), json!(total.completion_tokens));
            } else if !row.reason.is_empty() {
                t.insert("reason".into(), json!(row.reason));
            }
            Value::Object(t)
        })
        .collect();

    json!({
        "product": "agenther",
        "version": crate::version(),
        "created_at": ctx.created_at,
        "endpoint": ctx.endpoint,
        "settings": ctx.settings,
        "templates": {
            "version": ctx.templates.version(),
            "fingerprint": ctx.templates.fingerprint(),
        },
        "elapsed_ms": ctx.elapsed_ms,
        "loaded": {
            "files": session.files.len(),
            "trajectories": session.len(),
            "rejected_records": session.rejected_count(),
        },
        "totals": session.totals(),
        "retries": session.totals().retries(),
        "samples_per_format": accepted_count(session),
        "files": files,
        "trajectories": trajectories,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::testing::ScriptedClient;
    use crate::pipeline::{process, Mode};
    use crate::reader::read_all;
    use crate::stages::detect::rules::Lexicon;
    use futures::executor::block_on;

    const FILE: &str = concat!(
        r#"{"trajectory_id":"a","original_prompt":"Buy shoes under $50","steps":[{"thought":"search","action_name":"search","action_input":{"q":"shoes","max":50.0},"observation":"Found Nike Pegasus for $89 and Adidas Run for $95"}],"failure_reason":"Price exceeds budget"}"#,
        "\n",
        r#"{"trajectory_id":"b","original_prompt":"Get the weather","steps":[{"thought":"call","action_name":"weather","observation":"error: 503 service unavailable"}],"failure_reason":""}"#,
        "\n",
        "{broken\n"
    );

    fn run_session() -> (Session, Settings) {
        let mut session = Session::new(Lexicon::default(), 0.3);
        session.add_report(read_all("f.jsonl", FILE.as_bytes()));
        let settings = Settings {
            model: "m".into(),
            extraction: Mode::Rules,
            ..Settings::default()
        };
        let client = ScriptedClient::with_replies([
            Ok(
                r#"{"hindsight_prompt":"List running shoes with prices","is_valid_replay":true,"rationale":"r","confidence":0.9}"#,
            ),
            Ok(r#"{"is_valid":true,"confidence":0.8,"rejection_reason":""}"#),
        ]);
        let templates = Templates::defaults();
        for i in 0..session.len() {
            let t = session.entries[i].trajectory.clone();
            let r = block_on(process(
                &client,
                &templates,
                &settings,
                &Lexicon::default(),
                &t,
            ));
            session.set_result(i, r);
        }
        (session, settings)
    }

    #[test]
    fn samples_are_written_for_accepted_trajectories_only() {
        let (session, _) = run_session();
        for format in SampleFormat::ALL {
            let text = samples_jsonl(&session, format);
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 1, "{format:?}");
            let v: Value = serde_json::from_str(lines[0]).unwrap();
            assert_eq!(v["source_trajectory_id"], "a");
            assert_eq!(v["format"], format.as_str());
            assert_eq!(v["hindsight_prompt"], "List running shoes with prices");
            assert_eq!(v["weight"], 0.4);
        }
        assert_eq!(accepted_count(&session), 1);
        assert_eq!(
            samples_file_name(SampleFormat::Dpo, "20261122-101500"),
            "agenther-dpo-20261122-101500.jsonl"
        );
    }

    #[test]
    fn report_accounts_for_every_trajectory_and_record() {
        let (session, settings) = run_session();
        let templates = Templates::defaults();
        let report = run_report(
            &session,
            &RunContext {
                endpoint: "http://127.0.0.1:9/v1",
                settings: &settings,
                templates: &templates,
                created_at: "2026-11-22T10:15:00Z",
                elapsed_ms: Some(1234.0),
            },
        );
        assert_eq!(report["loaded"]["trajectories"], 2);
        assert_eq!(report["loaded"]["rejected_records"], 1);
        assert_eq!(report["files"][0]["rejected_records"][0]["line"], 3);
        assert_eq!(report["totals"]["accepted"], 1);
        assert_eq!(report["totals"]["skipped"], 1);
        assert_eq!(report["totals"]["usage"]["relabel"]["calls"], 1);
        assert_eq!(report["totals"]["usage"]["judge"]["calls"], 1);
        let ts = report["trajectories"].as_array().unwrap();
        assert_eq!(ts.len(), 2);
        assert_eq!(ts[0]["status"], "accepted");
        assert_eq!(ts[0]["judges"], "relabeler + judge");
        assert_eq!(ts[0]["confidence"], (0.9 + 0.8) / 2.0);
        assert_eq!(ts[1]["status"], "skipped");
        assert_eq!(ts[1]["stage"], "gate");
        assert_eq!(report["settings"]["theta"], 0.5);
        assert!(report["settings"].get("api_key").is_none());
    }

    #[test]
    fn report_counts_retries_and_shows_flags() {
        use crate::llm::openai::{ChatResponse, Usage};
        use crate::llm::{ChatError, FakeClock, RetryPolicy, RetryingClient};
        let mut session = Session::new(Lexicon::default(), 0.3);
        session.add_report(read_all("f.jsonl", FILE.as_bytes()));
        let settings = Settings {
            model: "m".into(),
            extraction: Mode::Rules,
            ..Settings::default()
        };
        let inner = ScriptedClient::new();
        inner.push_error(ChatError::http(503, "busy"));
        inner.push_error(ChatError::Timeout);
        let mut cut = ChatResponse::from_text(r#"{"hindsight_prompt": "Li"#, Usage::default());
        cut.choices[0].finish_reason = Some("length".into());
        inner.push_response(cut);
        inner.push_error(ChatError::http(429, "slow down"));
        inner.push_text(
            r#"{"hindsight_prompt":"List running shoes with prices","is_valid_replay":true,"rationale":"r","confidence":0.9}"#,
        );
        inner.push_text(r#"{"is_valid":true,"confidence":0.8,"rejection_reason":""}"#);
        let client = RetryingClient::new(&inner, RetryPolicy::default(), FakeClock::new());
        let templates = Templates::defaults();
        for i in 0..session.len() {
            let t = session.entries[i].trajectory.clone();
            let r = block_on(process(
                &client,
                &templates,
                &settings,
                &Lexicon::default(),
                &t,
            ));
            session.set_result(i, r);
        }
        assert_eq!(inner.remaining(), 0);
        let report = run_report(
            &session,
            &RunContext {
                endpoint: "http://127.0.0.1:9/v1",
                settings: &settings,
                templates: &templates,
                created_at: "2026-11-22T10:15:00Z",
                elapsed_ms: None,
            },
        );
        assert_eq!(report["retries"], 3);
        assert_eq!(report["totals"]["usage"]["relabel"]["retries"], 3);
        assert_eq!(report["totals"]["usage"]["relabel"]["flagged_calls"], 1);
        let ts = report["trajectories"].as_array().unwrap();
        assert_eq!(ts[0]["status"], "accepted");
        assert_eq!(ts[0]["retries"], 3);
        assert_eq!(ts[0]["relabel_attempts"], 2);
        assert_eq!(ts[0]["flags"][0]["flag"], "reply_truncated");
        assert_eq!(ts[0]["flags"][0]["calls"], 1);
        assert!(ts[0]["flags"][0]["advice"]
            .as_str()
            .unwrap()
            .contains("raise max_tokens"));
        assert!(ts[0].get("endpoint_unavailable").is_none());
        assert!(ts[1].get("flags").is_none());
        assert_eq!(ts[1]["retries"], 0, "skipped before any call");
    }
}
