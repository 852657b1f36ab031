//! The built-in example loads cleanly and covers every rule-based outcome.
#![cfg(not(target_arch = "wasm32"))]

use agenther::example::{self, EXAMPLE_FILE_NAME};
use agenther::model::FailureType;
use agenther::pipeline::rule_view;
use agenther::reader::InputFormat;
use agenther::stages::detect::rules::Lexicon;
use std::collections::{BTreeMap, HashSet};

const DELTA: f64 = 0.3;

#[test]
fn loads_without_rejections() {
    let report = example::load();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.summary.format, InputFormat::Jsonl);
    assert_eq!(report.summary.file, EXAMPLE_FILE_NAME);
    assert!(
        report.summary.notes.is_empty(),
        "{:?}",
        report.summary.notes
    );
    let n = report.records.len();
    assert!((16..=20).contains(&n), "{n} trajectories");
    assert_eq!(report.summary.records, n);
}

#[test]
fn ids_are_unique_and_given() {
    let report = example::load();
    let mut ids = HashSet::new();
    for record in &report.records {
        let t = &record.trajectory;
        assert!(t.trajectory_id.starts_with("ex-"), "{}", t.trajectory_id);
        assert!(
            ids.insert(t.trajectory_id.clone()),
            "duplicate {}",
            t.trajectory_id
        );
    }
}

#[test]
fn records_are_varied() {
    let report = example::load();
    let mut domains = HashSet::new();
    let mut empty_final = 0;
    let mut empty_reason = 0;
    for record in &report.records {
        let t = &record.trajectory;
        assert!(
            (2..=6).contains(&t.steps.len()),
            "{}: {} steps",
            t.trajectory_id,
            t.steps.len()
        );
        assert_eq!(
            t.metadata.get("source").and_then(|v| v.as_str()),
            Some("example")
        );
        let domain = t.metadata.get("domain").and_then(|v| v.as_str());
        domains.insert(domain.expect("a domain").to_owned());
        for step in &t.steps {
            assert!(!step.action_name.is_empty());
            assert!(!step.action_input.is_empty(), "{}", t.trajectory_id);
        }
        empty_final += usize::from(t.final_answer.is_empty());
        empty_reason += usize::from(t.failure_reason.is_empty());
    }
    assert!(domains.len() >= 7, "{domains:?}");
    assert!(empty_final >= 2);
    assert!(empty_reason >= 2);
    for needle in ["café", "東京", "€", "Zürich"] {
        assert!(example::EXAMPLE_JSONL.contains(needle), "{needle}");
    }
}

/// Failure type (or "none") → (trajectories, of which pass the gates).
fn composition() -> BTreeMap<&'static str, (usize, usize)> {
    let lexicon = Lexicon::default();
    let mut by_type = BTreeMap::new();
    for record in example::load().records {
        let view = rule_view(&record.trajectory, &lexicon, DELTA);
        let name = view
            .analysis
            .failure_type
            .map_or("none", FailureType::as_str);
        let entry = by_type.entry(name).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += usize::from(view.skip_reason.is_none());
    }
    by_type
}

#[test]
fn covers_every_rule_outcome() {
    let by_type = composition();
    for name in [
        "tool_error",
        "incomplete",
        "hallucination",
        "constraint_violation",
        "wrong_result",
        "none",
    ] {
        assert!(by_type.contains_key(name), "no {name} in {by_type:?}");
    }
    // Rules never produce off_topic.
    assert!(!by_type.contains_key("off_topic"));
}

#[test]
fn gates_skip_some_and_pass_most() {
    let lexicon = Lexicon::default();
    let mut passing = 0;
    let mut tool_errors_skipped = 0;
    let mut short_skipped = 0;
    for record in example::load().records {
        let t = &record.trajectory;
        let view = rule_view(t, &lexicon, DELTA);
        match (&view.skip_reason, view.analysis.failure_type) {
            (None, _) => {
                passing += 1;
                // A candidate has something for extraction to report.
                assert!(
                    view.extracted.actual_achievements.len() >= 2,
                    "{}",
                    t.trajectory_id
                );
            }
            (Some(_), Some(FailureType::ToolError)) => tool_errors_skipped += 1,
            (Some(reason), _) => {
                assert!(reason.contains("no step observed"), "{reason}");
                short_skipped += 1;
            }
        }
    }
    assert!(passing >= 10, "{passing} pass the gates");
    assert!(tool_errors_skipped >= 1);
    assert!(short_skipped >= 1);
    // Every tool error is skipped.
    let by_type = composition();
    assert_eq!(by_type["tool_error"].1, 0);
}

#[test]
fn every_rule_view_is_explained() {
    let lexicon = Lexicon::default();
    for record in example::load().records {
        let t = &record.trajectory;
        let view = rule_view(t, &lexicon, DELTA);
        let fired: usize = view
            .hits
            .iter()
            .map(|h| h.keywords.len())
            .max()
            .unwrap_or(0);
        match view.analysis.failure_type {
            None => assert!(t.failure_reason.is_empty() && fired == 0),
            Some(FailureType::WrongResult) => assert_eq!(fired, 0, "{}", t.trajectory_id),
            Some(_) => assert!(fired >= 1),
        }
    }
}

// The scripted end-to-end endpoint (tests/e2e/support/endpoint.mjs) relies on the rendered
// prompts: it recognizes each call from quoted field names, reads the first action from
// `Action: name(` lines or `Step 1 (name)` achievements, and finds scenario markers put at the
// start of an observation. These tests keep the prompts and that endpoint in step.

mod scripted_endpoint {
    use agenther::example;
    use agenther::llm::templates::Templates;
    use agenther::stages::extract;

    const MARKER: &str = "[[scenario:retry]]";

    fn text(messages: &[agenther::llm::openai::ChatMessage]) -> String {
        messages
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn marked() -> agenther::model::Trajectory {
        let mut t = example::load().records[0].trajectory.clone();
        let first = &mut t.steps[0].observation;
        *first = format!("{MARKER} {first}");
        t
    }

    #[test]
    fn markers_reach_the_relabel_and_judge_prompts() {
        let templates = Templates::defaults();
        let t = marked();
        let outcome = extract::rules::extract(&t);
        let relabel = text(&templates.render_relabel(&t, &outcome).unwrap());
        assert!(relabel.contains(MARKER));
        assert!(relabel.contains(&format!("Step 1 ({})", t.steps[0].action_name)));
        let judge = text(
            &templates
                .render_judge(&t, "Summarize what the search_products step found")
                .unwrap(),
        );
        assert!(judge.contains(MARKER));
        assert!(judge.contains(&format!("Action: {}(", t.steps[0].action_name)));
        assert!(judge.contains(&format!(
            "<step number=\"1\">\nAction: {}(",
            t.steps[0].action_name
        )));
        let extract = text(&templates.render_extract(&t).unwrap());
        assert!(extract.contains(MARKER));
        assert!(extract.contains("Result:\n"));
    }

    #[test]
    fn calls_are_recognizable_without_a_schema_name() {
        let templates = Templates::defaults();
        let t = marked();
        let outcome = extract::rules::extract(&t);
        let relabel = text(&templates.render_relabel(&t, &outcome).unwrap());
        let judge = text(&templates.render_judge(&t, "Do it").unwrap());
        let detect = text(&templates.render_detect(&t).unwrap());
        let extract = text(&templates.render_extract(&t).unwrap());
        // The endpoint checks in this order: relabel, judge, detection, extraction.
        let relabel_marks = ["\"is_valid_replay\"", "<style_sample>"];
        let judge_marks = ["\"rejection_reason\"", "Does this run satisfy the request?"];
        let detect_marks = ["\"is_failure\"", "Give your assessment"];
        let extract_marks = [
            "\"actual_achievements\"",
            "List what the run actually achieved",
        ];
        let has = |s: &str, marks: &[&str]| marks.iter().all(|m| s.contains(m));
        let any = |s: &str, marks: &[&str]| marks.iter().any(|m| s.contains(m));
        assert!(has(&relabel, &relabel_marks));
        assert!(has(&judge, &judge_marks) && !any(&judge, &relabel_marks));
        assert!(has(&detect, &detect_marks));
        assert!(!any(&detect, &relabel_marks) && !any(&detect, &judge_marks));
        assert!(has(&extract, &extract_marks));
        for marks in [&relabel_marks, &judge_marks, &detect_marks] {
            assert!(!any(&extract, marks));
        }
    }
}
