//! The built-in example: a small set of failed trajectories to try the product without a file.
//!
//! The trajectories are written in the native schema, one per line, and cover every outcome
//! of rule-based detection: each failure type the rules produce (and one with no type), runs
//! the gates skip (tool errors, which are never recoverable, and a run whose observations are
//! all too short), and a majority of good relabeling candidates, runs that clearly achieved
//! something other than what was asked.

use crate::reader::{read_all, ReadReport};

/// The name the example is shown and reported under.
pub const EXAMPLE_FILE_NAME: &str = "agenther-example.jsonl";

/// The example file, as JSONL.
pub const EXAMPLE_JSONL: &str = include_str!("example/trajectories.jsonl");

/// Reads the example as if the user had dropped it.
pub fn load() -> ReadReport {
    read_all(EXAMPLE_FILE_NAME, EXAMPLE_JSONL.as_bytes())
}
