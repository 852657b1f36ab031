//! Reading one file in slices, on several threads, with the result of reading it whole.
//!
//! A file is read from its start by one reader, the *head* ([`Head`]), until it has shown one
//! record per line (JSONL) and stands at the start of a line ([`Reader::resume_point`]). Any
//! other layout (a JSON array, values spread over lines, a ReAct log, a binary file) is read
//! whole by the head: where an element or a run ends depends on everything before it.
//!
//! The rest of a JSONL file is cut into byte ranges of about the same size ([`plan`]). A slice
//! owns the lines that start in its range ([`owned_lines`]), so a line that crosses a boundary
//! belongs to the slice it starts in. A slice is first *counted* ([`count`]: its line breaks and
//! records, a byte scan), which gives every later slice its first line number and record index;
//! then it is *parsed* by a reader resumed there ([`parse_slice`]).
//!
//! The source format is detected from the first record that shows one, so how a slice is read
//! depends on whether an earlier slice detected one. A slice is parsed with the format known
//! when it is handed out, and [`Assembly`] takes the results in file order, checking that each
//! was parsed with the format the slices before it ended in; one that was not is parsed again
//! (in practice the head has decided the format, and nothing is parsed twice).
//! [`read_sliced`] runs the whole scheme on one thread, in any order: its result equals
//! [`crate::reader::read_all_as`]'s.

use crate::reader::{is_blank, FileSummary, ReadEvent, ReadReport, Reader, Resume, SourceFormat};

/// Slices of this many bytes unless told otherwise: small enough that taking in one slice's
/// results is a short task for the page, large enough that the messages cost little.
pub const SLICE_BYTES: u64 = 512 * 1024;

/// The reader of a file's start.
#[derive(Debug)]
pub struct Head {
    reader: Reader,
    consumed: u64,
    /// The file has shown a layout that cannot be sliced: it is read whole.
    whole: bool,
}

/// Where the head stopped: the rest of the file, from byte `offset`, is JSONL read on from
/// `resume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub offset: u64,
    pub resume: Resume,
}

impl Head {
    /// The head of the file called `file_name`, read in `format` (`None`: detect it).
    pub fn new(file_name: &str, format: Option<SourceFormat>) -> Self {
        Head {
            reader: Reader::with_format(file_name, format),
            consumed: 0,
            whole: false,
        }
    }

    /// Feeds the next bytes of the file. Returns where the rest can be sliced as soon as it
    /// can; the bytes of `chunk` after [`Split::offset`] are then not read.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<ReadEvent>) -> Option<Split> {
        if self.whole {
            self.reader.push(chunk, out);
            self.consumed += chunk.len() as u64;
            return None;
        }
        let mut rest = chunk;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            self.reader.push(&rest[..=nl], out);
            self.consumed += nl as u64 + 1;
            rest = &rest[nl + 1..];
            if let Some(resume) = self.reader.resume_point() {
                return Some(Split {
                    offset: self.consumed,
                    resume,
                });
            }
            if self.reader.beyond_jsonl() {
                self.whole = true;
                return self.push(rest, out);
            }
        }
        self.reader.push(rest, out);
        self.consumed += rest.len() as u64;
        None
    }

    /// The summary of what the head read: the whole file's when [`Head::push`] never split
    /// it, else the counts of the head alone.
    pub fn finish(self, out: &mut Vec<ReadEvent>) -> FileSummary {
        self.reader.finish(out)
    }
}

/// The byte ranges `[start, end)` that cut `[offset, size)` into slices of `slice_bytes` (the
/// last one shorter).
pub fn plan(offset: u64, size: u64, slice_bytes: u64) -> Vec<(u64, u64)> {
    let step = slice_bytes.max(1);
    let mut out = Vec::new();
    let mut start = offset;
    while start < size {
        let end = start.saturating_add(step).min(size);
        out.push((start, end));
        start = end;
    }
    out
}

/// The lines a slice owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// Where its first line starts in the file (the next slice's start when it owns none).
    pub start: u64,
    /// Where the line after its last one starts (or the end of the file).
    pub end: u64,
    pub bytes: Vec<u8>,
}

/// Bytes read at a time past a slice's end while looking for the end of its last line.
const READ_ON: u64 = 64 * 1024;

/// The lines that start in `[start, end)` of a file of `size` bytes whose part from `from` (a
/// line start) is being sliced; `read(a, b)` reads bytes `[a, b)` of the file. Reads the byte
/// before `start` and, when the last line goes on past `end`, the bytes up to its end.
pub fn owned_lines<E>(
    from: u64,
    start: u64,
    end: u64,
    size: u64,
    mut read: impl FnMut(u64, u64) -> Result<Vec<u8>, E>,
) -> Result<Owned, E> {
    let end = end.min(size);
    let base = if start > from { start - 1 } else { start };
    let mut buf = read(base, end)?;
    let mut top = base + buf.len() as u64;
    // The first line start at or after `x`, if the bytes read so far show it.
    let line_start = |buf: &[u8], x: u64| -> Option<u64> {
        if x <= from {
            return Some(from);
        }
        let i = (x - 1 - base) as usize;
        buf.get(i..)?
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| base + (i + p) as u64 + 1)
    };
    let mut more = READ_ON;
    let stop = loop {
        if end >= size {
            break size;
        }
        if let Some(at) = line_start(&buf, end) {
            break at;
        }
        if top >= size {
            break size;
        }
        let next = top.saturating_add(more).min(size);
        let bytes = read(top, next)?;
        if bytes.is_empty() {
            break top;
        }
        top += bytes.len() as u64;
        buf.extend_from_slice(&bytes);
        more = more.saturating_mul(2);
    };
    let begin = line_start(&buf, start).unwrap_or(stop).min(stop);
    buf.truncate((stop - base) as usize);
    buf.drain(..(begin - base) as usize);
    Ok(Owned {
        start: begin,
        end: stop,
        bytes: buf,
    })
}

/// How many bytes a background reader reads from the file at a time: a read costs the browser
/// about as much for a few hundred kilobytes as for a few megabytes, so slices are read a
/// block at a time ([`Blocks`]), and the slices of one block go to the same reader ([`owner`]).
pub const READ_BLOCK: u64 = 4 * 1024 * 1024;

/// The reader (of `workers`) that slice `k` goes to when slices are `slice_bytes` long: runs
/// of slices that fill a [`READ_BLOCK`] go to one reader, the runs to each reader in turn.
pub fn owner(k: usize, slice_bytes: u64, workers: usize) -> usize {
    (k / slices_per_block(slice_bytes)) % workers.max(1)
}

/// How many slices of `slice_bytes` fill a [`READ_BLOCK`] (at least one).
pub fn slices_per_block(slice_bytes: u64) -> usize {
    (READ_BLOCK / slice_bytes.max(1)).max(1) as usize
}

/// The last block read from a file, which serves the reads that fall inside it.
#[derive(Debug, Default)]
pub struct Blocks {
    start: u64,
    bytes: Vec<u8>,
}

impl Blocks {
    /// Forgets the block (another file is being read).
    pub fn clear(&mut self) {
        *self = Blocks::default();
    }

    /// Bytes `[a, b)` of a file of `size` bytes, from the block when it holds them, else from
    /// `read` (which is asked for a whole [`READ_BLOCK`] from `a` when `[a, b)` is shorter).
    /// Fewer bytes when the file is shorter than it said.
    pub fn read<E>(
        &mut self,
        a: u64,
        b: u64,
        size: u64,
        read: impl FnOnce(u64, u64) -> Result<Vec<u8>, E>,
    ) -> Result<Vec<u8>, E> {
        let b = b.min(size);
        if a >= b {
            return Ok(Vec::new());
        }
        let held = self.start + self.bytes.len() as u64;
        if a < self.start || b > held {
            let to = b.max(a.saturating_add(READ_BLOCK)).min(size);
            self.bytes = read(a, to)?;
            self.start = a;
        }
        let from = ((a - self.start) as usize).min(self.bytes.len());
        let to = ((b - self.start) as usize).min(self.bytes.len());
        Ok(self.bytes[from..to].to_vec())
    }
}

/// What a slice holds, for the slices after it: its line breaks and its records (non-blank
/// lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count {
    pub lines: usize,
    pub records: usize,
}

/// Counts the lines of a slice's bytes (see [`owned_lines`]).
pub fn count(owned: &[u8]) -> Count {
    let mut c = Count::default();
    for (i, line) in owned.split(|&b| b == b'\n').enumerate() {
        c.lines += usize::from(i > 0);
        c.records += usize::from(!is_blank(line));
    }
    c
}

/// A slice read: the format it was read with and the one it ended in, its summary and what it
/// found (`P`: events, or their encoding).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<P> {
    pub from: Option<SourceFormat>,
    pub to: Option<SourceFormat>,
    pub summary: FileSummary,
    pub events: P,
}

/// Reads a slice's bytes from `at` (its first line, its first record's index and the format
/// assumed so far), for a file read in `forced` (`None`: detected).
pub fn parse_slice(
    file_name: &str,
    forced: Option<SourceFormat>,
    at: Resume,
    bytes: &[u8],
) -> Parsed<Vec<ReadEvent>> {
    let mut reader = Reader::resumed(file_name, forced, at);
    let mut events = Vec::new();
    reader.push(bytes, &mut events);
    let to = reader.format_so_far();
    let summary = reader.finish(&mut events);
    Parsed {
        from: at.format,
        to,
        summary,
        events,
    }
}

/// A slice to parse, from `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    pub slice: usize,
    pub at: Resume,
}

/// Puts a sliced file back together: hands out the slices to parse once the counts before them
/// are known, and takes their results in file order.
#[derive(Debug)]
pub struct Assembly<P> {
    summary: FileSummary,
    /// Each slice's first line and record index, once known.
    starts: Vec<Option<(usize, usize)>>,
    counts: Vec<Option<Count>>,
    /// Slices before it are all counted; `cursor` is where it starts.
    counted: usize,
    cursor: (usize, usize),
    results: Vec<Option<Parsed<P>>>,
    /// Slices before it are all taken.
    taken: usize,
    /// The format the taken slices ended in.
    format: Option<SourceFormat>,
    /// The format slices are handed out with.
    guess: Option<SourceFormat>,
}

impl<P> Assembly<P> {
    /// After the head read `head` (its summary) and split the file at `split`, into `slices`
    /// slices.
    pub fn new(head: FileSummary, split: Split, slices: usize) -> Self {
        Assembly {
            summary: head,
            starts: vec![None; slices],
            counts: vec![None; slices],
            counted: 0,
            cursor: (split.resume.line, split.resume.index),
            results: (0..slices).map(|_| None).collect(),
            taken: 0,
            format: split.resume.format,
            guess: split.resume.format,
        }
    }

    /// How many slices there are.
    pub fn slices(&self) -> usize {
        self.counts.len()
    }

    /// Slice `k` was counted: returns the slices that can now be parsed.
    pub fn counted(&mut self, k: usize, count: Count) -> Vec<Task> {
        if let Some(slot) = self.counts.get_mut(k) {
            *slot = Some(count);
        }
        let mut tasks = Vec::new();
        while let Some(Some(c)) = self.counts.get(self.counted).copied() {
            let k = self.counted;
            self.starts[k] = Some(self.cursor);
            tasks.push(self.task(k, self.guess));
            self.cursor.0 += c.lines;
            self.cursor.1 += c.records;
            self.counted += 1;
        }
        tasks
    }

    fn task(&self, slice: usize, format: Option<SourceFormat>) -> Task {
        let (line, index) = self.starts[slice].unwrap_or(self.cursor);
        Task {
            slice,
            at: Resume {
                line,
                index,
                format,
            },
        }
    }

    /// Slice `k` was parsed.
    pub fn parsed(&mut self, k: usize, parsed: Parsed<P>) {
        if self.guess.is_none() && parsed.to.is_some() {
            self.guess = parsed.to;
        }
        if let Some(slot) = self.results.get_mut(k) {
            *slot = Some(parsed);
        }
    }

    /// The results that can be taken now, in file order, and the slices to parse again
    /// because they were read with another format than the one the file has there.
    pub fn take(&mut self) -> (Vec<P>, Vec<Task>) {
        let mut ready = Vec::new();
        let mut again = Vec::new();
        while let Some(slot) = self.results.get_mut(self.taken) {
            let Some(parsed) = slot.take() else { break };
            if parsed.from != self.format {
                if self.format.is_some() {
                    self.guess = self.format;
                }
                again.push(self.task(self.taken, self.format));
                break;
            }
            let s = &mut self.summary;
            s.records += parsed.summary.records;
            s.successes += parsed.summary.successes;
            s.rejected += parsed.summary.rejected;
            s.blank_lines += parsed.summary.blank_lines;
            s.bytes += parsed.summary.bytes;
            s.source_format = parsed.summary.source_format;
            self.format = parsed.to;
            ready.push(parsed.events);
            self.taken += 1;
        }
        (ready, again)
    }

    /// Every slice has been taken.
    pub fn done(&self) -> bool {
        self.taken == self.slices()
    }

    /// The whole file's summary (once [`Assembly::done`]).
    pub fn summary(&self) -> &FileSummary {
        &self.summary
    }
}

/// Reads `bytes` as the file `file_name` the way the page's workers do: the head, then slices
/// of `slice_bytes`, counted in the order `count_order` gives (a permutation of the slices, or
/// any order when it is not one) and parsed last handed out first, so that results arrive out
/// of order. The report equals [`crate::reader::read_all_as`]'s.
pub fn read_sliced(
    file_name: &str,
    bytes: &[u8],
    format: Option<SourceFormat>,
    slice_bytes: u64,
    count_order: &[usize],
) -> ReadReport {
    let size = bytes.len() as u64;
    let mut events = Vec::new();
    let mut head = Head::new(file_name, format);
    // The head is fed a slice at a time, as the page's head worker reads the file.
    let mut split = None;
    for chunk in bytes.chunks(slice_bytes.clamp(1, usize::MAX as u64) as usize) {
        split = head.push(chunk, &mut events);
        if split.is_some() {
            break;
        }
    }
    let summary = head.finish(&mut events);
    let Some(split) = split else {
        return ReadReport::new(events, summary);
    };
    let ranges = plan(split.offset, size, slice_bytes);
    let read = |a: u64, b: u64| Ok::<_, ()>(bytes[a as usize..b as usize].to_vec());
    let owned: Vec<Owned> = ranges
        .iter()
        .map(|&(a, b)| {
            owned_lines(split.offset, a, b, size, read).unwrap_or_else(|()| unreachable!())
        })
        .collect();
    let mut assembly = Assembly::new(summary, split, owned.len());
    let mut order: Vec<usize> = count_order
        .iter()
        .copied()
        .filter(|&k| k < owned.len())
        .collect();
    order.sort_unstable();
    order.dedup();
    let order = if order.len() == owned.len() && count_order.len() == owned.len() {
        count_order.to_vec()
    } else {
        (0..owned.len()).collect()
    };
    let mut tasks = Vec::new();
    for k in order {
        tasks.extend(assembly.counted(k, count(&owned[k].bytes)));
    }
    while let Some(task) = tasks.pop() {
        let parsed = parse_slice(file_name, format, task.at, &owned[task.slice].bytes);
        assembly.parsed(task.slice, parsed);
        let (ready, again) = assembly.take();
        events.extend(ready.into_iter().flatten());
        tasks.extend(again);
    }
    debug_assert!(assembly.done());
    ReadReport::new(events, assembly.summary().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::read_all_as;

    fn slices_of(bytes: &[u8], from: u64, slice: u64) -> Vec<Owned> {
        let size = bytes.len() as u64;
        plan(from, size, slice)
            .into_iter()
            .map(|(a, b)| {
                owned_lines(from, a, b, size, |x, y| {
                    Ok::<_, ()>(bytes[x as usize..y as usize].to_vec())
                })
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn slices_own_the_lines_that_start_in_them() {
        let text = b"aa\nbbbbbbbb\n\nc\ndd";
        for slice in 1..=text.len() as u64 + 1 {
            let owned = slices_of(text, 0, slice);
            let joined: Vec<u8> = owned.iter().flat_map(|o| o.bytes.clone()).collect();
            assert_eq!(joined, text, "slice {slice}");
            for w in owned.windows(2) {
                assert_eq!(w[0].end, w[1].start);
            }
            for o in &owned {
                // Every owned piece is whole lines: it starts a line and ends one (or the file).
                let len = text.len() as u64;
                assert!(o.start == 0 || o.start == len || text[o.start as usize - 1] == b'\n');
                assert!(o.end == text.len() as u64 || text[o.end as usize - 1] == b'\n');
            }
        }
        // A line longer than a slice: the slices inside it own nothing.
        let owned = slices_of(text, 3, 2);
        assert_eq!(owned[0].bytes, b"bbbbbbbb\n");
        assert!(owned[1].bytes.is_empty() && owned[1].start == owned[1].end);
    }

    #[test]
    fn counts_lines_and_records() {
        assert_eq!(count(b""), Count::default());
        assert_eq!(
            count(b"{}\n"),
            Count {
                lines: 1,
                records: 1
            }
        );
        assert_eq!(
            count(b"{}\n \r\n\n{"),
            Count {
                lines: 3,
                records: 2
            }
        );
        assert_eq!(
            count(b"\x0b\x0c\n"),
            Count {
                lines: 1,
                records: 0
            }
        );
    }

    #[test]
    fn plans_cover_the_rest() {
        assert_eq!(plan(3, 10, 4), vec![(3, 7), (7, 10)]);
        assert_eq!(plan(10, 10, 4), vec![]);
        assert_eq!(plan(0, 2, 0), vec![(0, 1), (1, 2)]);
    }

    #[test]
    fn the_head_reads_other_layouts_whole() {
        for text in [
            &b"[{}, {}]\n"[..],
            b"{\n}\n{}\n",
            b"Thought: x\nAction: y\n",
        ] {
            let mut head = Head::new("f", None);
            assert_eq!(head.push(text, &mut Vec::new()), None);
        }
        let mut head = Head::new("f", None);
        let text = format!("{}\n{{}}\n", " ".repeat(2000));
        let split = head.push(text.as_bytes(), &mut Vec::new()).unwrap();
        assert_eq!(split.offset, 2001 + 3);
        assert_eq!(split.resume.line, 3);
        assert_eq!(split.resume.index, 1);
    }

    #[test]
    fn a_format_detected_late_is_read_again_after_it() {
        // Records that show no format, then a ShareGPT one: the slices after it must be read
        // as ShareGPT even when they were parsed before the detection was known.
        let mut text = String::new();
        for _ in 0..40 {
            text.push_str("{\"x\": 1}\n");
        }
        text.push_str("{\"conversations\": []}\n");
        for _ in 0..40 {
            text.push_str("{\"y\": 2}\n");
        }
        let whole = read_all_as("f.jsonl", text.as_bytes(), None);
        for slice in [1, 9, 30, 100] {
            assert_eq!(
                read_sliced("f.jsonl", text.as_bytes(), None, slice, &[]),
                whole
            );
        }
        assert_eq!(whole.summary.source_format, SourceFormat::ShareGpt);
    }
}
