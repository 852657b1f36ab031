//! What several host test files share.

use agenther::reader::{FileSummary, ReadEvent, Reader};

/// Reads `bytes` with `reader`, pushed in pieces cut at the byte positions `cuts` (any order,
/// repeats allowed, each at most `bytes.len()`), and returns every event and the summary.
pub fn read_cut(
    mut reader: Reader,
    bytes: &[u8],
    mut cuts: Vec<usize>,
) -> (Vec<ReadEvent>, FileSummary) {
    cuts.sort_unstable();
    let mut events = Vec::new();
    let mut from = 0;
    for cut in cuts {
        reader.push(&bytes[from..cut], &mut events);
        from = cut;
    }
    reader.push(&bytes[from..], &mut events);
    let summary = reader.finish(&mut events);
    (events, summary)
}
