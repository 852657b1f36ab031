//! Near-duplicate goals: known clusters found, thresholds respected, both methods agreeing,
//! the goal kept per cluster, and goals that restate the original one.

use agenther::duplicates::{
    clusters, clusters_with, memberships, restates, similarity, Method, DEFAULT_THRESHOLD,
};

const GOALS: [&str; 9] = [
    "Find the price of the Dell XPS 13 laptop with 16 GB RAM",
    "Find the price of the Dell XPS-13 laptop with 16 GB RAM.",
    "find the price of the dell xps 13 laptop with 16 gb ram please",
    "Book a table for two at Luigi's on Friday at 7 pm",
    "Book a table for two at Luigi's on Friday at 8 pm",
    "List the open GitHub issues labelled bug in the repository",
    "Summarise the failing CI job's error log",
    "List the open GitHub issues labelled bug in the repo",
    "Summarise the failing CI job's error log",
];

#[test]
fn known_clusters_are_found() {
    let found = clusters(&GOALS, DEFAULT_THRESHOLD);
    assert_eq!(
        found,
        vec![vec![0, 1, 2], vec![3], vec![4], vec![5, 7], vec![6, 8]],
        "similarities: {:?}",
        [
            similarity(GOALS[0], GOALS[2]),
            similarity(GOALS[3], GOALS[4]),
            similarity(GOALS[5], GOALS[7]),
        ]
    );
}

#[test]
fn the_threshold_is_respected() {
    // 3 and 4 differ in one word of twelve: 10 of 14 shingles shared.
    let s = similarity(GOALS[3], GOALS[4]);
    assert!((s - 10.0 / 14.0).abs() < 1e-12, "{s}");
    // "repository" and "repo": 8 of 10, exactly the default threshold.
    assert_eq!(similarity(GOALS[5], GOALS[7]), 0.8);
    assert_eq!(
        clusters(&GOALS[3..5], s),
        vec![vec![0, 1]],
        "at the similarity: together"
    );
    assert_eq!(
        clusters(&GOALS[3..5], s + 1e-6),
        vec![vec![0], vec![1]],
        "above it: apart"
    );
    // A threshold of 0 puts goals sharing nothing together too; 1 only identical word lists.
    assert!(clusters(&GOALS, 1.0).contains(&vec![6, 8]));
    assert_eq!(
        clusters(&GOALS, 1.0).len(),
        7,
        "0 and 1 differ only in punctuation"
    );
    for pair in clusters(&GOALS, 0.6) {
        for &a in &pair {
            assert!(pair
                .iter()
                .any(|&b| a == b || similarity(GOALS[a], GOALS[b]) >= 0.6));
        }
    }
}

#[test]
fn single_linkage_chains_clusters() {
    let words: Vec<String> = (1..=20).map(|i| format!("w{i}")).collect();
    let first = words.join(" ");
    let second = first.replace("w20", "end");
    let third = second.replace("w10 ", "middle ");
    let chain = [first.as_str(), second.as_str(), third.as_str()];
    assert!(similarity(chain[0], chain[2]) < 0.8);
    assert!(similarity(chain[0], chain[1]) >= 0.8 && similarity(chain[1], chain[2]) >= 0.8);
    assert_eq!(clusters(&chain, 0.8), vec![vec![0, 1, 2]]);
    assert_eq!(clusters(&[chain[0], chain[2]], 0.8), vec![vec![0], vec![1]]);
}

/// Goals the way a relabeler writes thousands of them: a few phrasings over many products,
/// cities and numbers, deterministic.
fn generated(n: usize) -> Vec<String> {
    let verbs = ["Find", "Look up", "Check", "Compare", "Report"];
    let things = [
        "laptop",
        "phone",
        "hotel room",
        "flight",
        "monitor",
        "desk chair",
    ];
    let places = [
        "Paris", "Lyon", "Boston", "Austin", "Osaka", "Cairo", "Lima", "Oslo",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|_| {
            let r = next();
            let base = format!(
                "{} the price of the {} model {} in {} under ${}",
                verbs[(r % 5) as usize],
                things[((r >> 8) % 6) as usize],
                (r >> 16) % 2000,
                places[((r >> 28) % 8) as usize],
                100 + (r >> 36) % 900,
            );
            if (r >> 50) % 3 == 0 {
                format!("{base} and tell me the delivery date")
            } else {
                base
            }
        })
        .collect()
}

#[test]
fn minhash_never_adds_a_pair_and_finds_these_clusters() {
    let goals = generated(3000);
    let refs: Vec<&str> = goals.iter().map(String::as_str).collect();
    let exact = clusters_with(&refs, 0.8, Method::Exact);
    let minhash = clusters_with(&refs, 0.8, Method::MinHash);
    // Every MinHash cluster lies inside one exact cluster.
    let mut cluster_of = vec![0; refs.len()];
    for (c, members) in exact.iter().enumerate() {
        for &i in members {
            cluster_of[i] = c;
        }
    }
    for members in &minhash {
        assert!(members
            .iter()
            .all(|&i| cluster_of[i] == cluster_of[members[0]]));
    }
    assert!(
        exact.iter().any(|c| c.len() > 1),
        "the generator makes near-duplicates"
    );
    // Brute force over all pairs agrees with the exact method on a sample.
    let small = &refs[..400];
    let exact_small = clusters_with(small, 0.8, Method::Exact);
    let mut root: Vec<usize> = (0..small.len()).collect();
    fn find(root: &mut [usize], x: usize) -> usize {
        if root[x] == x {
            x
        } else {
            let r = find(root, root[x]);
            root[x] = r;
            r
        }
    }
    for a in 0..small.len() {
        for b in a + 1..small.len() {
            if similarity(small[a], small[b]) >= 0.8 {
                let (ra, rb) = (find(&mut root, a), find(&mut root, b));
                root[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    let mut brute: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for i in 0..small.len() {
        let r = find(&mut root, i);
        brute.entry(r).or_default().push(i);
    }
    let mut brute: Vec<Vec<usize>> = brute.into_values().collect();
    brute.sort();
    let mut exact_sorted = exact_small.clone();
    exact_sorted.sort();
    assert_eq!(exact_sorted, brute);
}

#[test]
fn one_per_cluster_keeps_the_highest_confidence() {
    let goals: Vec<(&str, f64)> = vec![
        (GOALS[0], 0.7),
        (GOALS[3], 0.9),
        (GOALS[1], 0.95),
        (GOALS[2], 0.95),
    ];
    let m = memberships(&goals, DEFAULT_THRESHOLD);
    assert_eq!((m[0].cluster, m[0].size, m[0].kept), (1, 3, false));
    assert_eq!(
        (m[2].cluster, m[2].kept),
        (1, true),
        "the first of the highest"
    );
    assert_eq!((m[3].cluster, m[3].kept), (1, false));
    assert_eq!((m[1].cluster, m[1].size, m[1].kept), (2, 1, true));
}

#[test]
fn a_goal_restating_the_original_is_not_new() {
    let original = "Buy the cheapest Dell XPS 13 laptop under $500";
    assert!(restates(
        original,
        "Buy the cheapest Dell XPS 13 laptop under $500.",
        0.8
    ));
    assert!(restates(
        original,
        "buy the cheapest dell xps 13 laptop under 500",
        0.8
    ));
    assert!(!restates(
        original,
        "Find the price of the Dell XPS 13 laptop",
        0.8
    ));
    let s = similarity(original, "Buy the cheapest Dell XPS 13 laptop under $900");
    assert!(restates(
        original,
        "Buy the cheapest Dell XPS 13 laptop under $900",
        s
    ));
    assert!(!restates(
        original,
        "Buy the cheapest Dell XPS 13 laptop under $900",
        s + 1e-6
    ));
}

/// For BENCHMARKS.md: the two methods on 100,000 generated goals, five runs each.
#[test]
#[ignore = "a benchmark: run it on purpose, in release mode"]
fn benchmark_100k_goals() {
    let n: usize = std::env::var("AGENTHER_BENCH_GOALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let goals = generated(n);
    let refs: Vec<&str> = goals.iter().map(String::as_str).collect();
    let mut times = [Vec::new(), Vec::new()];
    let mut sizes = [0, 0];
    for _ in 0..5 {
        for (k, method) in [Method::Exact, Method::MinHash].into_iter().enumerate() {
            let t = std::time::Instant::now();
            let c = clusters_with(&refs, DEFAULT_THRESHOLD, method);
            times[k].push(t.elapsed().as_secs_f64());
            sizes[k] = c.iter().filter(|c| c.len() > 1).map(Vec::len).sum();
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (e, m) = (median(&mut times[0]), median(&mut times[1]));
    println!(
        "{n} goals: exact {e:.3} s, minhash {m:.3} s (minhash / exact = {:.2})",
        m / e
    );
    println!(
        "goals in clusters of 2 or more: exact {}, minhash {}",
        sizes[0], sizes[1]
    );
}

mod export {
    use agenther::duplicates::{session_memberships, DEFAULT_THRESHOLD};
    use agenther::export::{build, ExportOptions, Target};
    use agenther::llm::testing::ScriptedClient;
    use agenther::llm::Templates;
    use agenther::pipeline::{process, Mode, Settings};
    use agenther::reader::read_all;
    use agenther::session::Session;
    use agenther::stages::detect::rules::Lexicon;
    use futures::executor::block_on;

    /// Four runs relabeled with three near-identical goals and one other, at confidences
    /// 0.8, 0.9, 0.7 (cluster) and 0.9.
    fn session() -> Session {
        let line = |id: &str| {
            format!(
                r#"{{"trajectory_id":"{id}","original_prompt":"Buy shoes under $50","steps":[{{"thought":"s","action_name":"search","action_input":{{"q":"shoes"}},"observation":"Found Nike Pegasus for $89 and Adidas Run for $95"}}],"failure_reason":"Price exceeds budget"}}"#
            )
        };
        let text = ["a", "b", "c", "d"].map(line).join("\n");
        let mut session = Session::new(Lexicon::default(), 0.3);
        session.add_report(read_all("f.jsonl", text.as_bytes()));
        let settings = Settings {
            model: "m".into(),
            extraction: Mode::Rules,
            ..Settings::default()
        };
        let goals = [
            (
                "List running shoes from Nike and Adidas with their prices",
                0.8,
            ),
            (
                "List running shoes from Nike and Adidas with their prices.",
                1.0,
            ),
            (
                "list running shoes from nike and adidas with their prices",
                0.6,
            ),
            ("Compare the Nike Pegasus with the Adidas Run", 1.0),
        ];
        for (i, (goal, c)) in goals.into_iter().enumerate() {
            let client = ScriptedClient::with_replies([
                Ok(format!(
                    r#"{{"hindsight_prompt":"{goal}","is_valid_replay":true,"rationale":"r","confidence":{c}}}"#
                )),
                Ok(r#"{"is_valid":true,"confidence":0.8,"rejection_reason":""}"#.to_owned()),
            ]);
            let t = session.entries[i].trajectory();
            let r = block_on(process(
                &client,
                &Templates::defaults(),
                &settings,
                &Lexicon::default(),
                &t,
            ));
            assert!(r.outcome.is_accepted(), "{:?}", r.outcome);
            session.set_result(i, r);
        }
        session
    }

    #[test]
    fn one_per_cluster_exports_the_most_confident_goal_of_each() {
        let session = session();
        let m: Vec<_> = session_memberships(&session, DEFAULT_THRESHOLD)
            .into_iter()
            .map(|m| m.map(|m| (m.cluster, m.size, m.kept)))
            .collect();
        assert_eq!(
            m,
            [
                Some((1, 3, false)),
                Some((1, 3, true)),
                Some((1, 3, false)),
                Some((2, 1, true))
            ]
        );
        let all = ExportOptions::default();
        let one = ExportOptions {
            one_per_cluster: true,
            ..ExportOptions::default()
        };
        for target in Target::ALL {
            let every = build(&session, target, &all, "s");
            let kept = build(&session, target, &one, "s");
            assert_eq!((every.rows, kept.rows), (4, 2), "{}", target.id());
            assert!(kept.text.contains("Compare the Nike Pegasus"));
            assert!(kept.text.contains("with their prices."), "{}", target.id());
            assert!(
                !kept.text.contains("with their prices\""),
                "{}",
                target.id()
            );
        }
    }

    #[test]
    fn one_per_cluster_follows_review() {
        use agenther::review::Decision;
        let kept_of = |s: &Session| -> Vec<Option<(usize, bool)>> {
            session_memberships(s, DEFAULT_THRESHOLD)
                .into_iter()
                .map(|m| m.map(|m| (m.size, m.kept)))
                .collect()
        };
        let one = ExportOptions {
            one_per_cluster: true,
            ..ExportOptions::default()
        };
        // The reviewer rejects the cluster's most confident goal: the next one is kept, so the
        // cluster still has its one row.
        let mut s = session();
        assert!(s.review.decide(1, Some(Decision::rejected("too vague"))));
        assert_eq!(
            kept_of(&s),
            [Some((2, true)), None, Some((2, false)), Some((1, true))]
        );
        for target in Target::ALL {
            let out = build(&s, target, &one, "s");
            assert_eq!(out.rows, 2, "{}", target.id());
            assert!(out.text.contains("with their prices\""), "{}", target.id());
        }
        // An edited goal is clustered as the reviewer wrote it: this one is no longer a
        // near-duplicate, and is written beside the cluster's kept goal.
        let mut s = session();
        let edit = Decision::edited(
            "Which of Nike's and Adidas's running shoes cost less than $90?",
            "List running shoes from Nike and Adidas with their prices.",
        )
        .unwrap();
        assert!(s.review.decide(1, Some(edit)));
        assert_eq!(
            kept_of(&s),
            [
                Some((2, true)),
                Some((1, true)),
                Some((2, false)),
                Some((1, true))
            ]
        );
        for target in Target::ALL {
            let out = build(&s, target, &one, "s");
            assert_eq!(out.rows, 3, "{}", target.id());
            assert!(out.text.contains("cost less than $90?"), "{}", target.id());
        }
    }
}
