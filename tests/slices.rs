//! Reading a file in slices (what the page's workers do) gives what reading it whole gives:
//! every fixture, any slice size, any order in which slices are counted and parsed, forced
//! formats, and generated JSONL with blank lines, broken records, `\r\n` and formats detected
//! late.
#![cfg(not(target_arch = "wasm32"))]

use agenther::reader::{read_all_as, SourceFormat};
use agenther::slices::read_sliced;
use proptest::prelude::*;
use std::path::Path;

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if !path.to_string_lossy().ends_with(".md") {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    assert!(out.len() >= 20, "the fixtures are there");
    out
}

/// Counting orders for `n` slices: in order, reversed, and interleaved.
fn orders(n: usize) -> Vec<Vec<usize>> {
    let forward: Vec<usize> = (0..n).collect();
    let reverse: Vec<usize> = (0..n).rev().collect();
    let odd_first: Vec<usize> = (0..n)
        .filter(|k| k % 2 == 1)
        .chain((0..n).filter(|k| k % 2 == 0))
        .collect();
    vec![forward, reverse, odd_first]
}

#[test]
fn every_fixture_read_in_slices_equals_the_whole_read() {
    for (name, bytes) in fixtures() {
        let whole = read_all_as(&name, &bytes, None);
        for slice in [1, 2, 7, 64, 1000, 100_000, 1 << 20] {
            let n = bytes.len() / slice + 1;
            // The megabytes of the reference files in small slices would only take long.
            let large = bytes.len() > 200_000;
            if large && slice < 100_000 {
                continue;
            }
            let mut orders = orders(n);
            if large {
                orders.truncate(2);
            }
            for order in orders {
                let sliced = read_sliced(&name, &bytes, None, slice as u64, &order);
                assert_eq!(sliced, whole, "{name}, slices of {slice}");
            }
        }
    }
}

#[test]
fn forced_formats_read_in_slices_equal_the_whole_read() {
    let (name, bytes) = fixtures()
        .into_iter()
        .find(|(n, _)| n == "openai_messages.jsonl")
        .unwrap();
    for format in SourceFormat::ALL {
        let whole = read_all_as(&name, &bytes, Some(format));
        for slice in [1, 13, 500] {
            assert_eq!(
                read_sliced(&name, &bytes, Some(format), slice, &[]),
                whole,
                "{format:?}, slices of {slice}"
            );
        }
    }
}

#[test]
fn the_reference_corpus_in_slices_keeps_every_line_and_index() {
    let (name, bytes) = fixtures()
        .into_iter()
        .find(|(n, _)| n == "corpus.jsonl")
        .unwrap();
    let sliced = read_sliced(&name, &bytes, None, 4096, &[]);
    assert_eq!(sliced.records.len(), 400);
    for (i, r) in sliced.records.iter().enumerate() {
        assert_eq!((r.source.index, r.source.line), (i, i + 1));
    }
}

/// Lines a generated JSONL file is made of: records in several formats, records without an id
/// (their id is generated from the index), blank lines, broken JSON and Unicode.
const LINES: [&str; 12] = [
    r#"{"trajectory_id":"a","original_prompt":"p","steps":[{"thought":"t","action_name":"x","observation":"error: no"}],"failure_reason":"r"}"#,
    r#"{"original_prompt":"ünï","steps":[],"failure_reason":"timeout"}"#,
    r#"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"ok"}]}"#,
    r#"{"conversations":[{"from":"human","value":"q"},{"from":"gpt","value":"a"}]}"#,
    r#"{"x": 1}"#,
    "",
    "   \t",
    "\r",
    r#"{"trajectory_id":"b", "steps": [1,"#,
    "not json at all",
    r#"[{"trajectory_id":"c"}]"#,
    r#"{"trajectory_id":"d","original_prompt":"p","steps":[],"failure_reason":"r","final_answer":"Ω"}"#,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn generated_jsonl_in_any_slices_equals_the_whole_read(
        picks in prop::collection::vec((0..LINES.len(), any::<bool>()), 0..60),
        slice in 1u64..400,
        seed in any::<u64>(),
        forced in prop::option::of(0..SourceFormat::ALL.len()),
    ) {
        let mut text = String::new();
        for (i, crlf) in picks {
            text.push_str(LINES[i]);
            text.push_str(if crlf { "\r\n" } else { "\n" });
        }
        let format = forced.map(|i| SourceFormat::ALL[i]);
        let whole = read_all_as("g.jsonl", text.as_bytes(), format);
        // A permutation of the slices from the seed.
        let n = text.len().div_ceil(slice as usize).max(1);
        let mut order: Vec<usize> = (0..n).collect();
        let mut s = seed | 1;
        for i in (1..n).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            order.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let sliced = read_sliced("g.jsonl", text.as_bytes(), format, slice, &order);
        prop_assert_eq!(sliced, whole);
    }
}

mod wire {
    use super::fixtures;
    use agenther::packed::pack;
    use agenther::pipeline::rule_view;
    use agenther::reader::{read_all, ReadEvent, Resume, SourceFormat};
    use agenther::slices::{Count, Split};
    use agenther::stages::detect::rules::Lexicon;
    use agenther::wire::{
        decode_events, decode_summary, encode_events, encode_summary, Item, Reply, Request,
        RuleSetup,
    };
    use proptest::prelude::*;

    #[test]
    fn every_fixture_survives_the_wire_with_its_rule_views() {
        let lexicon = Lexicon::default();
        let mut records = 0;
        for (name, bytes) in fixtures() {
            let report = read_all(&name, &bytes);
            let mut events: Vec<ReadEvent> = report
                .records
                .iter()
                .cloned()
                .map(ReadEvent::Record)
                .collect();
            events.extend(report.rejected.iter().cloned().map(ReadEvent::Rejected));
            let encoded = encode_events(&events, |t| rule_view(t, &lexicon, 0.3));
            let decoded = decode_events(&encoded, &name).unwrap();
            let expected: Vec<Item> = events
                .into_iter()
                .map(|e| match e {
                    ReadEvent::Record(r) => {
                        let rules = rule_view(&r.trajectory, &lexicon, 0.3);
                        Item::Record(Box::new(pack(&r.trajectory, rules)), r.source)
                    }
                    ReadEvent::Rejected(r) => Item::Rejected(r),
                })
                .collect();
            assert_eq!(decoded, expected, "{name}");
            // Opened again, each record is the trajectory and rule view that was read.
            for (item, r) in decoded
                .iter()
                .filter_map(|i| match i {
                    Item::Record(p, _) => Some(p),
                    Item::Rejected(_) => None,
                })
                .zip(&report.records)
            {
                assert_eq!(item.trajectory(), r.trajectory, "{name}");
                assert_eq!(
                    item.rules(),
                    rule_view(&r.trajectory, &lexicon, 0.3),
                    "{name}"
                );
            }
            let summary = encode_summary(&report.summary);
            assert_eq!(decode_summary(&summary, &name).unwrap(), report.summary);
            records += report.records.len();
        }
        assert!(records > 400);
    }

    #[test]
    fn requests_and_replies_survive_the_wire() {
        let rules = RuleSetup {
            lexicon: "{\"entries\": []}".into(),
            delta: 0.25,
        };
        let at = Resume {
            line: 7,
            index: 3,
            format: Some(SourceFormat::TauBench),
        };
        let requests = [
            Request::Head {
                file: "ä.jsonl".into(),
                format: None,
                chunk: 1 << 20,
                rules: rules.clone(),
            },
            Request::Count {
                slice: 4,
                from: 12,
                start: 300,
                end: u64::MAX,
                size: 1 << 40,
            },
            Request::Parse {
                slice: 9,
                file: "f".into(),
                forced: Some(SourceFormat::Atif),
                start: 1,
                end: 2,
                at,
                rules,
            },
        ];
        for r in requests {
            assert_eq!(Request::decode(&r.encode()).unwrap(), r);
        }
        let replies = [
            Reply::Ready,
            Reply::Events {
                read: 5,
                events: vec![1, 2, 3],
            },
            Reply::HeadDone {
                summary: vec![9],
                split: Some(Split {
                    offset: 10,
                    resume: at,
                }),
            },
            Reply::HeadDone {
                summary: vec![],
                split: None,
            },
            Reply::Counted {
                slice: 2,
                start: 3,
                end: 4,
                count: Count {
                    lines: 5,
                    records: 6,
                },
            },
            Reply::Parsed {
                slice: 1,
                from: None,
                to: Some(SourceFormat::Native),
                summary: vec![0; 3],
                events: vec![7; 300],
            },
            Reply::Failed {
                message: "could not read".into(),
            },
        ];
        for r in replies {
            assert_eq!(Reply::decode(&r.encode()).unwrap(), r);
        }
    }

    proptest! {
        #[test]
        fn damaged_messages_are_errors_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = Request::decode(&bytes);
            let _ = Reply::decode(&bytes);
            let _ = decode_events(&bytes, "f");
            let _ = decode_summary(&bytes, "f");
        }

        #[test]
        fn cut_messages_are_errors(cut in 0usize..1000) {
            let report = read_all("f.jsonl", include_bytes!("fixtures/import/openai_messages.jsonl"));
            let events: Vec<ReadEvent> = report.records.into_iter().map(ReadEvent::Record).collect();
            let lexicon = Lexicon::default();
            let encoded = encode_events(&events, |t| rule_view(t, &lexicon, 0.3));
            let cut = cut % encoded.len();
            prop_assert!(decode_events(&encoded[..cut], "f").is_err());
        }
    }
}

mod blocks {
    use agenther::slices::{
        owned_lines, owner, plan, slices_per_block, Blocks, READ_BLOCK, SLICE_BYTES,
    };
    use proptest::prelude::*;
    use std::cell::Cell;

    proptest! {
        #[test]
        fn reads_through_the_block_give_the_file_s_bytes(
            file in proptest::collection::vec(any::<u8>(), 0..20_000),
            reads in proptest::collection::vec((0u64..22_000, 0u64..9_000), 1..40),
        ) {
            let size = file.len() as u64;
            let mut blocks = Blocks::default();
            for (a, len) in reads {
                let b = a + len;
                let got = blocks
                    .read(a, b, size, |x, y| -> Result<_, ()> {
                        Ok(file[x as usize..y as usize].to_vec())
                    })
                    .unwrap();
                let want = if a >= size { &[][..] } else { &file[a as usize..b.min(size) as usize] };
                prop_assert_eq!(&got[..], want);
            }
        }
    }

    #[test]
    fn slices_read_in_a_row_cost_a_read_per_block_and_own_the_same_lines() {
        let line = b"{\"trajectory_id\": \"x\", \"observation\": \"0123456789\"}\n";
        let file: Vec<u8> = line
            .iter()
            .copied()
            .cycle()
            .take(3 * READ_BLOCK as usize + 777)
            .collect();
        let size = file.len() as u64;
        let reads = Cell::new(0);
        let plain = |a: u64, b: u64| -> Result<Vec<u8>, ()> {
            Ok(file[a as usize..b.min(size) as usize].to_vec())
        };
        let mut blocks = Blocks::default();
        for (start, end) in plan(0, size, SLICE_BYTES) {
            let through = owned_lines(0, start, end, size, |a, b| {
                blocks.read(a, b, size, |x, y| {
                    reads.set(reads.get() + 1);
                    plain(x, y)
                })
            })
            .unwrap();
            assert_eq!(through, owned_lines(0, start, end, size, plain).unwrap());
        }
        // One read per block, and one more where a slice's last line runs into the next block.
        let blocks_in_file = size.div_ceil(READ_BLOCK) as usize;
        assert!(reads.get() <= 2 * blocks_in_file, "{} reads", reads.get());
        assert!(reads.get() >= blocks_in_file);
    }

    #[test]
    fn a_block_s_slices_go_to_one_reader_and_blocks_to_each_in_turn() {
        let run = slices_per_block(SLICE_BYTES);
        assert_eq!(run as u64, READ_BLOCK / SLICE_BYTES);
        let owners: Vec<usize> = (0..3 * run).map(|k| owner(k, SLICE_BYTES, 2)).collect();
        assert!(owners[..run].iter().all(|&w| w == 0));
        assert!(owners[run..2 * run].iter().all(|&w| w == 1));
        assert!(owners[2 * run..].iter().all(|&w| w == 0));
        // Slices larger than a block: each its own run; no workers still gives one.
        assert_eq!(slices_per_block(2 * READ_BLOCK), 1);
        assert_eq!(
            (0..4)
                .map(|k| owner(k, 2 * READ_BLOCK, 3))
                .collect::<Vec<_>>(),
            vec![0, 1, 2, 0]
        );
        assert_eq!(owner(5, 7, 0), 0);
    }
}
