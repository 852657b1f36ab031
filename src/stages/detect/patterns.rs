//! Many substrings found in one pass: an Aho–Corasick automaton over bytes, built at run time
//! from any list of patterns (the lexicon is data the user may edit) and turned into a full
//! transition table over byte classes, so that matching costs one table load per byte of
//! text whatever the number of patterns.
//!
//! Patterns are byte strings; a UTF-8 pattern found in UTF-8 text is a substring match of the
//! `str`s. Every occurrence is reported once, overlapping ones included. A long text is read
//! as two halves in step (the second from a little before its start, so that no occurrence
//! across the cut is lost), which keeps two independent chains of table loads in flight.

use std::collections::VecDeque;

/// A compiled set of patterns.
#[derive(Debug, Clone)]
pub struct Patterns {
    /// The class of each byte: bytes that occur in no pattern share class 0.
    classes: [u8; 256],
    classes_len: usize,
    /// `next[row + class]`: the state after reading a byte of `class` in the state whose row
    /// starts at `row`. A state is known by the start of its row (its index times
    /// `classes_len`), with [`HAS_OUTPUT`] set when patterns end there.
    next: Vec<u32>,
    /// The patterns that end at each state: `outputs[output_at[s]..output_at[s + 1]]`.
    output_at: Vec<u32>,
    outputs: Vec<u32>,
    /// Each pattern's length in bytes.
    lens: Vec<usize>,
    /// The longest pattern's length.
    max_len: usize,
}

/// The bit of a state that says patterns end there.
const HAS_OUTPUT: u32 = 1 << 31;

/// Where a scan stands between two pieces of text fed to [`Patterns::feed`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    state: u32,
    /// Bytes read so far.
    pub offset: usize,
}

impl Patterns {
    /// Compiles `patterns`; pattern `i` is reported as `i`. An empty pattern never matches.
    pub fn new<P: AsRef<[u8]>>(patterns: &[P]) -> Patterns {
        Self::build(patterns, false)
    }

    /// As [`Patterns::new`], matching as if patterns and text were ASCII-lower-cased: `A`–`Z`
    /// read as `a`–`z`, every other byte as it is. Text then needs no lower-casing of its ASCII
    /// letters before it is fed.
    pub fn ignoring_ascii_case<P: AsRef<[u8]>>(patterns: &[P]) -> Patterns {
        let lowered: Vec<Vec<u8>> = patterns
            .iter()
            .map(|p| p.as_ref().to_ascii_lowercase())
            .collect();
        Self::build(&lowered, true)
    }

    fn build<P: AsRef<[u8]>>(patterns: &[P], fold: bool) -> Patterns {
        let mut used = [false; 256];
        for p in patterns {
            for &b in p.as_ref() {
                used[usize::from(b)] = true;
            }
        }
        let mut classes = [0u8; 256];
        let classes_len = if used.iter().all(|&u| u) {
            // No byte is "other": each is its own class.
            for (b, class) in classes.iter_mut().enumerate() {
                *class = b as u8;
            }
            256
        } else {
            let mut len = 1;
            for b in (0..256).filter(|&b| used[b]) {
                classes[b] = len as u8;
                len += 1;
            }
            len
        };
        if fold {
            // Patterns hold no upper-case ASCII letters here: each reads as its lower case.
            for b in b'A'..=b'Z' {
                classes[usize::from(b)] = classes[usize::from(b.to_ascii_lowercase())];
            }
        }

        // The trie: edges per state (few per state), and the patterns ending at each state.
        let mut edges: Vec<Vec<(u8, u32)>> = vec![Vec::new()];
        let mut ends: Vec<Vec<u32>> = vec![Vec::new()];
        for (id, p) in patterns.iter().enumerate() {
            let p = p.as_ref();
            if p.is_empty() {
                continue;
            }
            let mut s = 0usize;
            for &b in p {
                let class = classes[usize::from(b)];
                s = match edges[s].iter().find(|(c, _)| *c == class) {
                    Some(&(_, to)) => to as usize,
                    None => {
                        let to = edges.len();
                        edges.push(Vec::new());
                        ends.push(Vec::new());
                        edges[s].push((class, to as u32));
                        to
                    }
                };
            }
            ends[s].push(id as u32);
        }

        // Breadth first: each state's failure link and full row of transitions, and its
        // outputs with those of its failure link.
        let states = edges.len();
        let mut next = vec![0u32; states * classes_len];
        let mut fail = vec![0u32; states];
        let mut queue = VecDeque::new();
        for &(class, to) in &edges[0] {
            next[usize::from(class)] = to;
            queue.push_back(to as usize);
        }
        while let Some(s) = queue.pop_front() {
            let f = fail[s] as usize;
            let inherited = ends[f].clone();
            ends[s].extend(inherited);
            for class in 0..classes_len {
                next[s * classes_len + class] = next[f * classes_len + class];
            }
            for &(class, to) in &edges[s] {
                let class = usize::from(class);
                fail[to as usize] = next[f * classes_len + class];
                next[s * classes_len + class] = to;
                queue.push_back(to as usize);
            }
        }
        let mut output_at = Vec::with_capacity(states + 1);
        let mut outputs = Vec::new();
        for e in &ends {
            output_at.push(outputs.len() as u32);
            outputs.extend_from_slice(e);
        }
        output_at.push(outputs.len() as u32);
        assert!(
            states * classes_len < HAS_OUTPUT as usize,
            "too many patterns for one automaton"
        );
        for to in &mut next {
            let state = *to as usize;
            *to = (state * classes_len) as u32;
            if !ends[state].is_empty() {
                *to |= HAS_OUTPUT;
            }
        }
        Patterns {
            classes,
            classes_len,
            next,
            output_at,
            outputs,
            lens: patterns.iter().map(|p| p.as_ref().len()).collect(),
            max_len: patterns.iter().map(|p| p.as_ref().len()).max().unwrap_or(0),
        }
    }

    /// The number of patterns compiled (empty ones included).
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// The length in bytes of pattern `id`.
    pub fn pattern_len(&self, id: usize) -> usize {
        self.lens[id]
    }

    /// Reads `text` on from `cursor`, calling `found(id, end)` once for each occurrence of a
    /// pattern that ends in `text` (in no particular order), with `end` the offset just after
    /// it counted from the first byte ever fed at this cursor. Text fed in pieces matches as if
    /// it were one.
    pub fn feed(&self, cursor: &mut Cursor, text: &[u8], mut found: impl FnMut(usize, usize)) {
        let base = cursor.offset;
        let overlap = self.max_len.saturating_sub(1);
        let mut report = |state: u32, end: usize| {
            let index = (state & !HAS_OUTPUT) as usize / self.classes_len;
            let (from, to) = (self.output_at[index], self.output_at[index + 1]);
            for &id in &self.outputs[from as usize..to as usize] {
                found(id as usize, base + end);
            }
        };
        let mut state = cursor.state;
        if text.len() >= 2 * overlap + SPLIT_AT_LEAST {
            // The first half goes on from the cursor's state; the second starts from the root
            // `overlap` bytes before the cut, and reports only what ends after the cut (what
            // ends at or before it is the first half's). After `overlap` bytes (and at least
            // one more) a scan is in the state any scan reaching that point would be in.
            let mid = text.len() / 2;
            let second_from = mid - overlap;
            let (first, second) = (&text[..mid], &text[second_from..]);
            let mut other = 0u32;
            for (i, (&a, &b)) in first.iter().zip(second).enumerate() {
                state = self.step(state, a);
                other = self.step(other, b);
                if state & HAS_OUTPUT != 0 {
                    report(state, i + 1);
                }
                if other & HAS_OUTPUT != 0 && second_from + i >= mid {
                    report(other, second_from + i + 1);
                }
            }
            for (i, &b) in second.iter().enumerate().skip(first.len()) {
                other = self.step(other, b);
                if other & HAS_OUTPUT != 0 {
                    report(other, second_from + i + 1);
                }
            }
            state = other;
        } else {
            for (i, &b) in text.iter().enumerate() {
                state = self.step(state, b);
                if state & HAS_OUTPUT != 0 {
                    report(state, i + 1);
                }
            }
        }
        cursor.state = state;
        cursor.offset += text.len();
    }

    /// The state after reading `b` in `state`.
    #[inline(always)]
    fn step(&self, state: u32, b: u8) -> u32 {
        let class = usize::from(self.classes[usize::from(b)]);
        self.next[(state & !HAS_OUTPUT) as usize + class]
    }
}

/// Texts shorter than this (beyond twice the overlap) are read in one scan.
const SPLIT_AT_LEAST: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (pattern, end) by brute force.
    fn naive(patterns: &[&str], text: &str) -> Vec<(usize, usize)> {
        let mut found = Vec::new();
        for end in 1..=text.len() {
            for (id, p) in patterns.iter().enumerate() {
                if !p.is_empty() && text.as_bytes()[..end].ends_with(p.as_bytes()) {
                    found.push((id, end));
                }
            }
        }
        found.sort_unstable();
        found
    }

    fn scan(patterns: &[&str], pieces: &[&str]) -> Vec<(usize, usize)> {
        let compiled = Patterns::new(patterns);
        let mut cursor = Cursor::default();
        let mut found = Vec::new();
        for piece in pieces {
            compiled.feed(&mut cursor, piece.as_bytes(), |id, end| {
                found.push((id, end))
            });
        }
        found.sort_unstable();
        found
    }

    #[test]
    fn finds_every_occurrence_overlaps_included() {
        let patterns = ["he", "she", "his", "hers", "", "e", "ß", "ss"];
        for text in ["ushers", "", "hishershe", "aßss hers", "eeee", "xyz"] {
            assert_eq!(
                scan(&patterns, &[text]),
                naive(&patterns, text),
                "in {text:?}"
            );
        }
    }

    #[test]
    fn pieces_match_as_one_text() {
        let patterns = [" 404 ", "error:", "i don't know", "status code: 5"];
        let text = "got 404 then error: status code: 503, i don't know";
        let whole = scan(&patterns, &[text]);
        assert_eq!(whole, naive(&patterns, text));
        for cut in 0..=text.len() {
            assert_eq!(
                scan(&patterns, &[&text[..cut], &text[cut..]]),
                whole,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn repeated_patterns_are_each_reported() {
        assert_eq!(scan(&["ab", "ab", "b"], &["cab"]), [(0, 3), (1, 3), (2, 3)]);
    }

    #[test]
    fn any_byte_can_be_in_a_pattern() {
        let all: Vec<u8> = (0..=255).collect();
        let patterns = [all.clone(), vec![0, 255], vec![255, 255]];
        let compiled = Patterns::new(&patterns);
        let mut text = all.clone();
        text.extend([255, 255, 0, 255]);
        let mut found = Vec::new();
        compiled.feed(&mut Cursor::default(), &text, |id, end| {
            found.push((id, end))
        });
        found.sort_unstable_by_key(|&(id, end)| (end, id));
        assert_eq!(found, [(0, 256), (2, 257), (2, 258), (1, 260)]);
    }

    #[test]
    fn long_texts_read_in_halves_report_each_occurrence_once() {
        let patterns = [
            "he",
            "she",
            "his",
            "hers",
            "e",
            "a longer pattern: here",
            "ab",
        ];
        let words = [
            "she",
            "hers",
            "x",
            "a longer pattern: here",
            "ab",
            "h",
            "e",
            " ",
        ];
        let mut text = String::new();
        let mut seed = 7u32;
        for _ in 0..300 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            text.push_str(words[(seed >> 16) as usize % words.len()]);
        }
        for len in (0..text.len()).step_by(5) {
            let t = &text[..len];
            let expected = naive(&patterns, t);
            assert_eq!(scan(&patterns, &[t]), expected, "length {len}");
            let cut = len / 3;
            assert_eq!(scan(&patterns, &[&t[..cut], &t[cut..]]), expected);
        }
    }

    #[test]
    fn ignoring_ascii_case_matches_the_lower_cased_text() {
        let patterns = ["Error:", "ab", "é", "x Y"];
        let lowered: Vec<String> = patterns.iter().map(|p| p.to_ascii_lowercase()).collect();
        let lowered: Vec<&str> = lowered.iter().map(String::as_str).collect();
        let compiled = Patterns::ignoring_ascii_case(&patterns);
        for text in ["ERROR: AB error: aB É é X y", &"x Y ab É".repeat(40)] {
            let mut found = Vec::new();
            compiled.feed(&mut Cursor::default(), text.as_bytes(), |id, end| {
                found.push((id, end))
            });
            found.sort_unstable();
            assert_eq!(found, naive(&lowered, &text.to_ascii_lowercase()), "{text}");
        }
    }
}
