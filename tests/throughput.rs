//! Throughput of the core stages, for BENCHMARKS.md. Not a pass/fail test (no timing is
//! asserted); run it with
//!
//! ```sh
//! cargo test --release --test throughput -- --ignored --nocapture
//! ```
//!
//! It repeats the reference corpus (400 trajectories, 1.8 MB) `AGENTHER_BENCH_REPEAT` times
//! (default 10) with fresh ids, then times reading (parse + schema checks, fed in 1 MB chunks),
//! the rule-based Stages 1 and 2 with the gates, and packaging the three envelopes.
#![cfg(not(target_arch = "wasm32"))]

use agenther::model::{Relabel, SampleFormat};
use agenther::pipeline::rule_view;
use agenther::reader::{ReadEvent, Reader};
use agenther::stages::detect::rules::Lexicon;
use agenther::stages::package::{package, sample_to_json_line};
use std::time::Instant;

#[test]
#[ignore = "a benchmark: run it on purpose, in release mode"]
fn stage_throughput() {
    let corpus = include_str!("fixtures/reference/corpus.jsonl");
    let repeat: usize = std::env::var("AGENTHER_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut input = String::with_capacity(corpus.len() * repeat + repeat * 8 * 400);
    for r in 0..repeat {
        for line in corpus.lines() {
            input.push_str(&line.replacen(
                "\"trajectory_id\": \"",
                &format!("\"trajectory_id\": \"r{r}-"),
                1,
            ));
            input.push('\n');
        }
    }
    let mb = input.len() as f64 / 1e6;

    let t = Instant::now();
    let mut reader = Reader::new("bench.jsonl");
    let mut events = Vec::new();
    for chunk in input.as_bytes().chunks(1 << 20) {
        reader.push(chunk, &mut events);
    }
    let summary = reader.finish(&mut events);
    let read = t.elapsed().as_secs_f64();
    let trajectories: Vec<_> = events
        .into_iter()
        .filter_map(|e| match e {
            ReadEvent::Record(r) => Some(r.trajectory),
            ReadEvent::Rejected(_) => None,
        })
        .collect();
    assert_eq!(trajectories.len(), 400 * repeat);
    assert_eq!(summary.rejected, 0);
    let n = trajectories.len() as f64;

    let lexicon = Lexicon::default();
    let t = Instant::now();
    let passing = trajectories
        .iter()
        .filter(|t| rule_view(t, &lexicon, 0.3).skip_reason.is_none())
        .count();
    let rules = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut bytes = 0usize;
    for tr in &trajectories {
        let relabel = Relabel {
            hindsight_prompt: format!("HINDSIGHT::{}", tr.trajectory_id),
            is_valid_replay: true,
            rationale: "r".into(),
            confidence: 0.75,
        };
        for format in SampleFormat::ALL {
            bytes += sample_to_json_line(&package(tr, &relabel, 0.5, format)).len();
        }
    }
    let pack = t.elapsed().as_secs_f64();

    println!("input: {n} trajectories, {mb:.1} MB ({passing} pass the gates)");
    for (what, secs) in [
        ("read", read),
        ("rules (stages 1-2 + gates)", rules),
        ("package (3 envelopes)", pack),
    ] {
        println!(
            "{what:>28}: {secs:7.3} s  {:8.1} µs/trajectory  {:9.0} trajectories/s",
            secs * 1e6 / n,
            n / secs
        );
    }
    println!("packaged output: {:.1} MB", bytes as f64 / 1e6);
}
