//! `replay`: the native differential and benchmark command.
//!
//! Reads a trajectory file (JSON array or JSONL), runs rule-based Stage 1 and Stage 2 and
//! packages the three sample envelopes with the fixed relabeling of the reference fixtures,
//! writing one line per trajectory shaped like `tests/fixtures/reference/expected.jsonl`.

use agenther::reader::{self, ReadEvent};
use agenther::stages::package::replay::replay_line_text;
use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "\
Usage: replay INPUT [--out FILE]

Reads INPUT (a JSON array of trajectories, or JSONL), runs rule-based failure detection and
outcome extraction, packages the sft, dpo and sharegpt samples with a fixed relabeling
(hindsight prompt \"HINDSIGHT::\" + id, confidence 0.75, weight = severity) and writes one
JSON line per trajectory to FILE, or to standard output.

Rejected records are reported on standard error, followed by a summary line.

Options:
  --out FILE   write the lines to FILE instead of standard output
  -h, --help   print this help

Exit status: 0 when INPUT was read (even with rejected records), 2 on a usage error or when
INPUT or FILE cannot be opened, 1 when writing fails.";

struct Args {
    input: String,
    out: Option<String>,
}

enum Parsed {
    Run(Args),
    Help,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut input = None;
    let mut out = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--out" => match args.next() {
                Some(file) if out.is_none() => out = Some(file),
                Some(_) => return Err("--out given twice".to_owned()),
                None => return Err("--out needs a file name".to_owned()),
            },
            s if s.starts_with("--out=") => {
                if out.is_some() {
                    return Err("--out given twice".to_owned());
                }
                out = Some(s["--out=".len()..].to_owned());
            }
            s if s.starts_with('-') && s != "-" => {
                return Err(format!("unknown option {s}"));
            }
            _ if input.is_none() => input = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    match input {
        Some(input) => Ok(Parsed::Run(Args { input, out })),
        None => Err("missing INPUT".to_owned()),
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("replay: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut input = match std::fs::File::open(&args.input) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("replay: cannot read {}: {e}", args.input);
            return ExitCode::from(2);
        }
    };
    let mut sink: Box<dyn Write> = match &args.out {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Box::new(BufWriter::new(file)),
            Err(e) => {
                eprintln!("replay: cannot create {path}: {e}");
                return ExitCode::from(2);
            }
        },
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };

    // The input is streamed through the chunked reader: memory holds one chunk and the
    // records of that chunk, whatever the file's size.
    let mut reader = reader::Reader::new(args.input.clone());
    let mut events = Vec::new();
    let mut chunk = vec![0u8; CHUNK_BYTES];
    let mut written = 0usize;
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("replay: cannot read {}: {e}", args.input);
                return ExitCode::from(2);
            }
        };
        reader.push(&chunk[..n], &mut events);
        if let Err(e) = drain(&mut events, &mut sink, &mut written) {
            eprintln!("replay: write failed: {e}");
            return ExitCode::from(1);
        }
    }
    let summary = reader.finish(&mut events);
    if let Err(e) = drain(&mut events, &mut sink, &mut written).and_then(|_| sink.flush()) {
        eprintln!("replay: write failed: {e}");
        return ExitCode::from(1);
    }
    drop(sink);
    let elapsed = started.elapsed();
    eprintln!(
        "replay: {}: {} records, {} rejected, {} lines written in {:.3} s",
        summary.file,
        summary.records,
        summary.rejected,
        written,
        elapsed.as_secs_f64()
    );
    ExitCode::SUCCESS
}

/// Bytes read from the input at a time.
const CHUNK_BYTES: usize = 1 << 20;

/// Writes the replay line of each record in `events` to `sink` and each rejection to stderr.
fn drain(events: &mut Vec<ReadEvent>, sink: &mut dyn Write, written: &mut usize) -> io::Result<()> {
    for event in events.drain(..) {
        match event {
            ReadEvent::Record(record) => {
                writeln!(sink, "{}", replay_line_text(&record.trajectory))?;
                *written += 1;
            }
            ReadEvent::Rejected(rejected) => eprintln!("{rejected}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn arguments() {
        match parse(&["in.jsonl", "--out", "o.jsonl"]) {
            Ok(Parsed::Run(a)) => {
                assert_eq!(a.input, "in.jsonl");
                assert_eq!(a.out.as_deref(), Some("o.jsonl"));
            }
            _ => panic!("expected a run"),
        }
        match parse(&["--out=o", "in"]) {
            Ok(Parsed::Run(a)) => {
                assert_eq!((a.input.as_str(), a.out.as_deref()), ("in", Some("o")))
            }
            _ => panic!("expected a run"),
        }
        assert!(matches!(parse(&["--help"]), Ok(Parsed::Help)));
        assert!(matches!(parse(&["x", "-h"]), Ok(Parsed::Help)));
        assert!(parse(&[]).is_err());
        assert!(parse(&["a", "b"]).is_err());
        assert!(parse(&["a", "--out"]).is_err());
        assert!(parse(&["a", "--bogus"]).is_err());
        assert!(parse(&["a", "--out", "x", "--out", "y"]).is_err());
    }
}
