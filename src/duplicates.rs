//! Near-duplicate hindsight goals.
//!
//! Relabeling thousands of similar failures writes many goals that say the same thing; left
//! in, they tilt a training set towards a few requests. Two goals are near-duplicates when the
//! Jaccard similarity of their word shingles reaches a threshold (0.8 by default):
//!
//! - a goal is normalised to its words: lower case, letters and digits only, every other
//!   character a separator ("Find the Dell XPS-13!" is `find the dell xps 13`);
//! - its shingles are the runs of [`SHINGLE_WORDS`] consecutive words (a goal of fewer words
//!   is one shingle of all of them), as a set;
//! - J(A, B) = |A ∩ B| / |A ∪ B|.
//!
//! Clusters are the connected groups of the "near-duplicate" relation (single linkage): A ~ B
//! and B ~ C put A, B and C together even when A and C are further apart. Each cluster is
//! listed with its members in input order; goals with no near-duplicate are clusters of one.
//!
//! Two ways of finding the pairs give the same clusters up to MinHash's misses:
//! [`Method::Exact`], an inverted index over the rarest shingles of each goal (prefix
//! filtering: two sets with J ≥ t must share one of the first |A| − ⌈t·|A|⌉ + 1 shingles of
//! each in a common order, rarest first), every candidate verified; and [`Method::MinHash`],
//! 128 min-hashes in 16 bands of 8 rows, candidates from a shared band verified exactly. The
//! exact one finds every pair; BENCHMARKS.md has which is faster at 100,000 goals, and
//! [`clusters`] uses that one.
//!
//! [`restates`] tells a hindsight goal that merely repeats the original goal ("not a new goal").

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Words per shingle.
pub const SHINGLE_WORDS: usize = 2;

/// The default similarity at which two goals are near-duplicates.
pub const DEFAULT_THRESHOLD: f64 = 0.8;

/// The default similarity to the original goal above which a hindsight goal is "not a new
/// goal".
pub const DEFAULT_RESTATE_THRESHOLD: f64 = 0.8;

/// How the near-duplicate pairs are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Inverted index with prefix filtering; every pair at or above the threshold.
    Exact,
    /// MinHash with banding, candidates verified: may miss a pair, never adds one.
    MinHash,
}

/// The words of a goal, normalised.
pub fn words(goal: &str) -> Vec<String> {
    goal.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn hash_bytes(bytes: &[u8], seed: u64) -> u64 {
    // FNV-1a, then a final mix so that nearby inputs spread over all bits.
    let mut h = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// A goal's shingles as sorted, distinct hashes.
pub fn shingles(goal: &str) -> Vec<u64> {
    let w = words(goal);
    let mut out: Vec<u64> = if w.is_empty() {
        Vec::new()
    } else if w.len() <= SHINGLE_WORDS {
        vec![hash_bytes(w.join(" ").as_bytes(), 0)]
    } else {
        w.windows(SHINGLE_WORDS)
            .map(|s| hash_bytes(s.join(" ").as_bytes(), 0))
            .collect()
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// Jaccard similarity of two sorted, distinct sets (1 for two empty sets).
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let (mut i, mut j, mut shared) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    shared as f64 / (a.len() + b.len() - shared) as f64
}

/// The similarity of two goals.
pub fn similarity(a: &str, b: &str) -> f64 {
    jaccard(&shingles(a), &shingles(b))
}

/// Whether `goal` merely restates `original` (similarity at or above `threshold`).
pub fn restates(original: &str, goal: &str, threshold: f64) -> bool {
    similarity(original, goal) >= threshold
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            self.0[hi] = lo;
        }
    }
}

/// The groups of near-duplicates among `goals`: each cluster's member indexes in input order,
/// clusters ordered by their first member. Every goal is in exactly one cluster.
pub fn clusters(goals: &[&str], threshold: f64) -> Vec<Vec<usize>> {
    clusters_with(goals, threshold, Method::Exact)
}

/// [`clusters`] with a chosen method.
pub fn clusters_with(goals: &[&str], threshold: f64, method: Method) -> Vec<Vec<usize>> {
    let sets: Vec<Vec<u64>> = goals.iter().map(|g| shingles(g)).collect();
    let pairs = match method {
        Method::Exact => pairs_exact(&sets, threshold),
        Method::MinHash => pairs_minhash(&sets, threshold),
    };
    let mut uf = UnionFind((0..goals.len()).collect());
    for (a, b) in pairs {
        uf.union(a, b);
    }
    let mut by_root: HashMap<usize, usize> = HashMap::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    for i in 0..goals.len() {
        let root = uf.find(i);
        let slot = *by_root.entry(root).or_insert_with(|| {
            out.push(Vec::new());
            out.len() - 1
        });
        out[slot].push(i);
    }
    out
}

/// Every pair (i < j) with J ≥ threshold, by prefix filtering.
fn pairs_exact(sets: &[Vec<u64>], threshold: f64) -> Vec<(usize, usize)> {
    let threshold = threshold.clamp(f64::MIN_POSITIVE, 1.0);
    // Order shingles rarest first (ties by value), so that prefixes hit short lists.
    let mut frequency: HashMap<u64, u32> = HashMap::new();
    for set in sets {
        for s in set {
            *frequency.entry(*s).or_default() += 1;
        }
    }
    let ordered: Vec<Vec<u64>> = sets
        .iter()
        .map(|set| {
            let mut v = set.clone();
            v.sort_unstable_by_key(|s| (frequency[s], *s));
            v
        })
        .collect();
    let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut pairs = Vec::new();
    let mut seen: Vec<usize> = vec![usize::MAX; sets.len()];
    let mut empty: Option<usize> = None;
    for (i, set) in ordered.iter().enumerate() {
        if set.is_empty() {
            // Goals with no word are all alike.
            match empty {
                Some(first) => pairs.push((first, i)),
                None => empty = Some(i),
            }
            continue;
        }
        let n = set.len();
        // The least overlap a match can have with this set (a hair under, for rounding).
        let least = ((threshold * n as f64) - 1e-9).ceil().max(1.0) as usize;
        let prefix = n - least.min(n) + 1;
        for s in &set[..prefix.min(n)] {
            if let Some(list) = index.get(s) {
                for &j in list {
                    if seen[j] == i {
                        continue;
                    }
                    seen[j] = i;
                    // Sizes too far apart cannot reach the threshold.
                    let (m, k) = (sets[j].len() as f64, n as f64);
                    if m.min(k) < threshold * m.max(k) - 1e-9 {
                        continue;
                    }
                    if jaccard(&sets[j], &sets[i]) >= threshold {
                        pairs.push((j, i));
                    }
                }
            }
            index.entry(*s).or_default().push(i);
        }
    }
    pairs
}

const MINHASH_BANDS: usize = 16;
const MINHASH_ROWS: usize = 8;

/// Pairs from MinHash bands (16 bands of 8 rows: a pair at J = 0.8 shares a band with
/// probability 0.9990, one at J = 0.4 with 0.0068), each verified exactly.
fn pairs_minhash(sets: &[Vec<u64>], threshold: f64) -> Vec<(usize, usize)> {
    let hashes = MINHASH_BANDS * MINHASH_ROWS;
    let seeds: Vec<u64> = (0..hashes as u64)
        .map(|k| mix(k.wrapping_add(0x9e37_79b9)))
        .collect();
    let mut buckets: HashMap<(usize, u64), Vec<usize>> = HashMap::new();
    let mut signature = vec![0u64; hashes];
    let mut seen: Vec<usize> = vec![usize::MAX; sets.len()];
    let mut pairs = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        for (k, seed) in seeds.iter().enumerate() {
            signature[k] = set.iter().map(|s| mix(s ^ seed)).min().unwrap_or(0);
        }
        for band in 0..MINHASH_BANDS {
            let rows = &signature[band * MINHASH_ROWS..(band + 1) * MINHASH_ROWS];
            let mut key = band as u64;
            for r in rows {
                key = mix(key ^ r);
            }
            let bucket = buckets.entry((band, key)).or_default();
            for &j in bucket.iter() {
                if seen[j] != i {
                    seen[j] = i;
                    if jaccard(&sets[j], set) >= threshold {
                        pairs.push((j, i));
                    }
                }
            }
            bucket.push(i);
        }
    }
    pairs
}

/// Where each goal stands among its near-duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// 1-based number of the cluster, in order of first member.
    pub cluster: usize,
    /// How many goals the cluster has (1: no near-duplicate).
    pub size: usize,
    /// Whether this goal is the one kept when keeping one per cluster.
    pub kept: bool,
}

/// Clusters of goals with a confidence each, as memberships: the member kept is the one with
/// the highest confidence (the first in input order on ties). Clusters are numbered over the
/// clusters of more than one goal first (1, 2, …), then the rest.
pub fn memberships(goals: &[(&str, f64)], threshold: f64) -> Vec<Membership> {
    let texts: Vec<&str> = goals.iter().map(|(g, _)| *g).collect();
    let groups = clusters(&texts, threshold);
    let mut out = vec![
        Membership {
            cluster: 0,
            size: 1,
            kept: true,
        };
        goals.len()
    ];
    let (many, single): (Vec<_>, Vec<_>) = groups.into_iter().partition(|g| g.len() > 1);
    for (index, group) in many.iter().chain(single.iter()).enumerate() {
        let number = index + 1;
        let best = group
            .iter()
            .copied()
            .fold(None::<usize>, |best, i| match best {
                Some(b) if goals[b].1 >= goals[i].1 => Some(b),
                _ => Some(i),
            })
            .expect("a cluster has a member");
        for &i in group {
            out[i] = Membership {
                cluster: number,
                size: group.len(),
                kept: i == best,
            };
        }
    }
    out
}

/// The accepted hindsight goal of each entry of `session` with its confidence, as the exports
/// write it: a goal review rejected is not there, an edited one is the reviewer's.
fn accepted_goals(session: &crate::session::Session) -> Vec<Option<(&str, f64)>> {
    session
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let r = e.result.as_ref()?;
            let goal = r.relabel.as_ref()?.relabel()?;
            let decision = session.review.get(i);
            if decision.is_some_and(|d| !d.keeps()) {
                return None;
            }
            let goal = decision
                .and_then(|d| d.goal())
                .unwrap_or(goal.hindsight_prompt.as_str());
            match r.outcome {
                crate::pipeline::Outcome::Accepted { confidence, .. } => Some((goal, confidence)),
                _ => None,
            }
        })
        .collect()
}

/// For each entry of `session`, where its accepted goal stands among the other accepted
/// goals (`None` for an entry without an accepted goal).
pub fn session_memberships(
    session: &crate::session::Session,
    threshold: f64,
) -> Vec<Option<Membership>> {
    let goals = accepted_goals(session);
    let present: Vec<(&str, f64)> = goals.iter().flatten().copied().collect();
    let mut found = memberships(&present, threshold).into_iter();
    goals.iter().map(|g| g.and_then(|_| found.next())).collect()
}

/// The near-duplicate clusters of a session's accepted goals, looked up by entry: where an
/// entry stands, the other members of its cluster, and the one "one per cluster" keeps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Clusters {
    /// Per entry (`None`: no accepted goal).
    memberships: Vec<Option<Membership>>,
    /// The entries of each cluster of more than one goal, in entry order; cluster `n` at `n - 1`.
    members: Vec<Vec<usize>>,
}

impl Clusters {
    /// The clusters of the accepted goals of `session` at `threshold`.
    pub fn of_session(session: &crate::session::Session, threshold: f64) -> Self {
        Self::from_memberships(session_memberships(session, threshold))
    }

    /// Lookups over memberships by entry, as [`session_memberships`] gives them.
    pub fn from_memberships(memberships: Vec<Option<Membership>>) -> Self {
        let mut members: Vec<Vec<usize>> = Vec::new();
        for (i, m) in memberships.iter().enumerate() {
            let Some(m) = m.filter(|m| m.size > 1 && m.cluster > 0) else {
                continue;
            };
            if members.len() < m.cluster {
                members.resize(m.cluster, Vec::new());
            }
            members[m.cluster - 1].push(i);
        }
        Clusters {
            memberships,
            members,
        }
    }

    /// Where entry `index` stands (`None`: it has no accepted goal).
    pub fn membership(&self, index: usize) -> Option<Membership> {
        self.memberships.get(index).copied().flatten()
    }

    /// Every entry's membership.
    pub fn memberships(&self) -> &[Option<Membership>] {
        &self.memberships
    }

    /// The entries of the cluster of `index`, itself included, in entry order; empty when it
    /// has no near-duplicate.
    pub fn members(&self, index: usize) -> &[usize] {
        self.membership(index)
            .filter(|m| m.size > 1)
            .and_then(|m| self.members.get(m.cluster.checked_sub(1)?))
            .map_or(&[], Vec::as_slice)
    }

    /// The other members of the cluster of `index`, in entry order.
    pub fn others(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        self.members(index)
            .iter()
            .copied()
            .filter(move |&i| i != index)
    }

    /// The member of the cluster of `index` that "one per cluster" keeps (`index` itself when
    /// it has no near-duplicate; `None` without an accepted goal).
    pub fn kept(&self, index: usize) -> Option<usize> {
        let m = self.membership(index)?;
        if m.size <= 1 {
            return Some(index);
        }
        self.members(index)
            .iter()
            .copied()
            .find(|&i| self.membership(i).is_some_and(|m| m.kept))
    }

    /// How many clusters have more than one goal.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_shingles() {
        assert_eq!(
            words("Find the Dell XPS-13!"),
            ["find", "the", "dell", "xps", "13"]
        );
        assert_eq!(shingles("Find the Dell XPS-13!").len(), 4);
        assert_eq!(shingles("hello"), shingles("HELLO!"));
        assert!(shingles("  ").is_empty());
        assert_eq!(similarity("a b c", "a b c"), 1.0);
        assert_eq!(similarity("", ""), 1.0);
        assert_eq!(similarity("a b", ""), 0.0);
    }

    fn member(cluster: usize, size: usize, kept: bool) -> Option<Membership> {
        Some(Membership {
            cluster,
            size,
            kept,
        })
    }

    #[test]
    fn cluster_lookups_by_entry() {
        // Entries 0, 3, 5 form cluster 1 (5 kept), 1 and 4 cluster 2 (1 kept), 2 has no
        // accepted goal, 6 has no near-duplicate.
        let c = Clusters::from_memberships(vec![
            member(1, 3, false),
            member(2, 2, true),
            None,
            member(1, 3, false),
            member(2, 2, false),
            member(1, 3, true),
            member(3, 1, true),
        ]);
        assert_eq!(c.len(), 2);
        assert_eq!(c.members(3), [0, 3, 5]);
        assert_eq!(c.others(3).collect::<Vec<_>>(), [0, 5]);
        assert_eq!(c.others(4).collect::<Vec<_>>(), [1]);
        assert_eq!(c.kept(0), Some(5));
        assert_eq!(c.kept(5), Some(5));
        assert_eq!(c.kept(4), Some(1));
        assert!(c.members(6).is_empty() && c.others(6).next().is_none());
        assert_eq!(c.kept(6), Some(6));
        assert!(c.members(2).is_empty());
        assert_eq!(c.kept(2), None);
        assert_eq!(c.membership(2), None);
        assert!(c.members(99).is_empty() && c.kept(99).is_none());
        assert!(Clusters::default().is_empty());
    }

    #[test]
    fn clusters_agree_with_memberships() {
        let goals = [
            ("Find the cheapest flight from Oslo to Rome", 0.7),
            ("Compare recipes for a vegan lasagna", 0.9),
            ("Find the cheapest flight from Oslo to Rome today", 0.95),
            ("Find the cheapest flight from Oslo to Rome", 0.8),
        ];
        let found = memberships(&goals, DEFAULT_THRESHOLD);
        let c = Clusters::from_memberships(found.iter().copied().map(Some).collect());
        assert_eq!(c.members(0), [0, 2, 3]);
        assert_eq!(c.kept(3), Some(2), "the highest confidence");
        assert!(c.members(1).is_empty());
    }
}
