//! The floor for `replay`'s speed: reads a JSONL file and parses each non-blank line into a
//! `serde_json::Value`, nothing more. `tests/e2e/bench/replay.sh` times it against `replay` on
//! the same file.
//!
//! Usage: serde_parse FILE

use std::io::{BufRead, BufReader};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: serde_parse FILE");
        return ExitCode::from(2);
    };
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("serde_parse: cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let (mut values, mut errors) = (0usize, 0usize);
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("serde_parse: cannot read {path}: {e}");
                return ExitCode::from(2);
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(&line) {
            Ok(_) => values += 1,
            Err(_) => errors += 1,
        }
    }
    eprintln!(
        "serde_parse: {path}: {values} values, {errors} not JSON, in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}
