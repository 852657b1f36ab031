//! The session keeps trajectories packed (compressed blocks shared by neighbours): everything
//! read comes back whole, in any order, and takes a fraction of the input's size.

use agenther::packed::{pack, Packer, CHUNK_BYTES};
use agenther::pipeline::rule_view;
use agenther::reader::{read_all, ReadEvent};
use agenther::session::Session;
use agenther::stages::detect::rules::Lexicon;
use agenther::wire::{decode_events, encode_events, Item};
use std::collections::HashSet;
use std::sync::Arc;

fn corpus() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/reference/corpus.jsonl"
    ))
    .unwrap()
}

fn real(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/real/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn every_trajectory_opens_back_whole_in_any_order() {
    let bytes = corpus();
    let report = read_all("corpus.jsonl", &bytes);
    let lexicon = Lexicon::default();
    let mut packer = Packer::new();
    for r in &report.records {
        packer.push(&r.trajectory, rule_view(&r.trajectory, &lexicon, 0.3));
    }
    let packed = packer.finish();
    assert_eq!(packed.len(), report.records.len());
    // Blocks are shared: far fewer blocks than trajectories, each holding about CHUNK_BYTES.
    let blocks: HashSet<*const _> = packed.iter().map(|p| Arc::as_ptr(p.chunk())).collect();
    assert!(
        blocks.len() > 1 && blocks.len() * 10 < packed.len(),
        "{}",
        blocks.len()
    );
    for p in &packed[..packed.len() - 1] {
        let raw = p.chunk().raw_len();
        assert!(
            (CHUNK_BYTES..CHUNK_BYTES * 2).contains(&raw)
                || Arc::ptr_eq(p.chunk(), packed.last().unwrap().chunk()),
            "{raw}"
        );
    }
    // In order, backwards and jumping between blocks: the same trajectories and views.
    let order: Vec<usize> = (0..packed.len())
        .chain((0..packed.len()).rev())
        .chain((0..packed.len()).map(|i| (i * 7919) % packed.len()))
        .collect();
    for i in order {
        let t = &report.records[i].trajectory;
        assert_eq!(packed[i].trajectory(), *t, "trajectory {i}");
        assert_eq!(
            packed[i].rules(),
            rule_view(t, &lexicon, 0.3),
            "trajectory {i}"
        );
        assert_eq!(packed[i].id, t.trajectory_id);
        assert_eq!(packed[i].goal, t.original_prompt);
    }
}

#[test]
fn the_packed_session_holds_a_fraction_of_the_input() {
    // The generated corpus and real logs: the compressed blocks against the file's bytes.
    for (name, bytes, most) in [
        ("corpus.jsonl", corpus(), 0.45),
        (
            "tau_bench_airline_excerpt.json",
            real("tau_bench_airline_excerpt.json"),
            0.3,
        ),
        (
            "lf_reason_tool_use_excerpt.jsonl",
            real("lf_reason_tool_use_excerpt.jsonl"),
            0.5,
        ),
    ] {
        let mut s = Session::new(Lexicon::default(), 0.3);
        s.add_report(read_all(name, &bytes));
        assert!(!s.is_empty(), "{name}");
        let mut seen = HashSet::new();
        let packed: usize = s
            .entries
            .iter()
            .filter(|e| seen.insert(Arc::as_ptr(e.packed.chunk())))
            .map(|e| e.packed.chunk().packed().len())
            .sum();
        let ratio = packed as f64 / bytes.len() as f64;
        assert!(ratio < most, "{name}: {ratio:.3} of the input");
    }
}

#[test]
fn a_reader_s_packed_records_make_the_session_a_whole_read_makes() {
    let bytes = corpus();
    let report = read_all("corpus.jsonl", &bytes);
    let lexicon = Lexicon::default();
    let events: Vec<ReadEvent> = report
        .records
        .iter()
        .cloned()
        .map(ReadEvent::Record)
        .collect();
    let encoded = encode_events(&events, |t| rule_view(t, &lexicon, 0.3));
    // The message carries the blocks, not the trajectories' text: smaller than the input.
    assert!(
        encoded.len() * 2 < bytes.len(),
        "{} of {}",
        encoded.len(),
        bytes.len()
    );
    let items = decode_events(&encoded, "corpus.jsonl").unwrap();
    let mut from_items = Session::new(Lexicon::default(), 0.3);
    from_items.add_items(items, &lexicon, 0.3, &mut Vec::new());
    let mut whole = Session::new(Lexicon::default(), 0.3);
    whole.add_events(events, &mut Vec::new());
    assert_eq!(from_items.entries, whole.entries);
}

#[test]
fn damaged_blocks_are_errors_never_panics() {
    let bytes = corpus();
    let report = read_all("corpus.jsonl", &bytes);
    let events: Vec<ReadEvent> = report.records[..40]
        .iter()
        .cloned()
        .map(ReadEvent::Record)
        .collect();
    let lexicon = Lexicon::default();
    let encoded = encode_events(&events, |t| rule_view(t, &lexicon, 0.3));
    // Every byte of the message changed in turn: decoding fails, or what it gives opens or
    // fails with an error.
    let step = (encoded.len() / 3000).max(1);
    for at in (0..encoded.len()).step_by(step) {
        let mut bad = encoded.clone();
        bad[at] ^= 0x5a;
        if let Ok(items) = decode_events(&bad, "corpus.jsonl") {
            for item in items {
                if let Item::Record(p, _) = item {
                    let _ = p.try_trajectory();
                }
            }
        }
    }
    // Cut short anywhere: an error.
    for cut in (0..encoded.len()).step_by(step) {
        assert!(
            decode_events(&encoded[..cut], "corpus.jsonl").is_err(),
            "{cut}"
        );
    }
}

#[test]
fn a_changed_trajectory_is_packed_again_with_its_new_view() {
    let bytes = corpus();
    let mut s = Session::new(Lexicon::default(), 0.3);
    s.add_report(read_all("corpus.jsonl", &bytes));
    let before = s.entries[1].trajectory();
    s.edit_trajectory(1, |t| {
        t.failure_reason = "the tool timed out".into();
        t.trajectory_id = "ignored".into();
    });
    let after = s.entries[1].trajectory();
    assert_eq!(after.failure_reason, "the tool timed out");
    assert_eq!(after.trajectory_id, before.trajectory_id);
    assert_eq!(after.steps, before.steps);
    assert_eq!(
        s.entries[1].rules(),
        rule_view(&after, &Lexicon::default(), 0.3)
    );
    // One on its own, as a restore packs it.
    let p = pack(&before, rule_view(&before, &Lexicon::default(), 0.3));
    assert_eq!(p.trajectory(), before);
}

#[test]
fn the_import_format_is_at_hand_and_an_unknown_one_is_read_back() {
    let lexicon = Lexicon::default();
    for name in [
        "tau_bench_airline_excerpt.json",
        "lf_reason_tool_use_excerpt.jsonl",
    ] {
        let report = read_all(name, &real(name));
        for r in &report.records {
            let p = pack(&r.trajectory, rule_view(&r.trajectory, &lexicon, 0.3));
            let want = r.trajectory.origin.as_ref().map(|o| o.format.clone());
            assert!(want.is_some(), "{name}");
            assert_eq!(p.import_format(), want, "{name}");
        }
    }
    let native = read_all("corpus.jsonl", &corpus())
        .records
        .remove(0)
        .trajectory;
    assert_eq!(
        pack(&native, rule_view(&native, &lexicon, 0.3)).import_format(),
        None
    );
    let mut other = native;
    other.origin = Some(agenther::model::Origin {
        format: "my_own_logs".into(),
        ..Default::default()
    });
    let p = pack(&other, rule_view(&other, &lexicon, 0.3));
    assert_eq!(p.import_format().as_deref(), Some("my_own_logs"));
    // Through the wire too.
    let events = vec![ReadEvent::Record(agenther::reader::Record {
        trajectory: other,
        source: agenther::reader::SourcePos {
            file: "f.jsonl".into(),
            line: 1,
            index: 0,
        },
    })];
    let encoded = encode_events(&events, |t| rule_view(t, &lexicon, 0.3));
    let Item::Record(back, _) = decode_events(&encoded, "f.jsonl").unwrap().remove(0) else {
        panic!("a record")
    };
    assert_eq!(back.import_format().as_deref(), Some("my_own_logs"));
}
