//! `replay`: the native differential and benchmark command.
//!
//! Reads a trajectory file (JSON array or JSONL, in the native schema or one of the import
//! formats, or a ReAct text log), runs rule-based Stage 1 and Stage 2 and packages the three
//! sample envelopes with the fixed relabeling of the reference fixtures, writing one line per
//! failed trajectory shaped like `tests/fixtures/reference/expected.jsonl`.

use agenther::import::SourceFormat;
use agenther::reader::{self, ReadEvent};
use agenther::stages::package::replay::replay_line_text;
use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "\
Usage: replay INPUT [--out FILE] [--format ID]

Reads INPUT (a JSON array of trajectories, JSONL, or a ReAct text log), runs rule-based failure
detection and outcome extraction, packages the sft, dpo and sharegpt samples with a fixed
relabeling (hindsight prompt \"HINDSIGHT::\" + id, confidence 0.75, weight = severity) and
writes one JSON line per failed trajectory to FILE, or to standard output. Runs the source
marks as successful are counted but not written: only failures are relabeled.

Rejected records are reported on standard error, followed by a line naming the source format
(detected or forced) with the counts of failures, successes and rejected records, and a
summary line.

Options:
  --out FILE    write the lines to FILE instead of standard output
  --format ID   read INPUT in this format instead of detecting it: auto (the default),
                native, openai_messages, tau_bench, sharegpt, react, toolbench or atif
  -h, --help    print this help

Exit status: 0 when INPUT was read (even with rejected records), 2 on a usage error or when
INPUT or FILE cannot be opened, 1 when writing fails.";

struct Args {
    input: String,
    out: Option<String>,
    /// `None`: detect the format.
    format: Option<SourceFormat>,
}

enum Parsed {
    Run(Args),
    Help,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut input = None;
    let mut out = None;
    let mut format = None;
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
            "--format" => format = Some(args.next().ok_or("--format needs an id")?),
            s if s.starts_with("--format=") => format = Some(s["--format=".len()..].to_owned()),
            s if s.starts_with('-') && s != "-" => {
                return Err(format!("unknown option {s}"));
            }
            _ if input.is_none() => input = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    let format = match format.as_deref() {
        None | Some("auto") => None,
        Some(id) => Some(SourceFormat::parse(id).ok_or_else(|| {
            let ids: Vec<&str> = SourceFormat::ALL.iter().map(|f| f.id()).collect();
            format!("unknown format {id} (expected auto, {})", ids.join(", "))
        })?),
    };
    match input {
        Some(input) => Ok(Parsed::Run(Args { input, out, format })),
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
    let mut reader = reader::Reader::with_format(args.input.clone(), args.format);
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
        "replay: {}: read as {} ({}, {}): {} failures, {} successes, {} rejected",
        summary.file,
        summary.source_format.label(),
        summary.source_format.id(),
        if summary.source_format_forced {
            "forced"
        } else {
            "detected"
        },
        summary.records - summary.successes,
        summary.successes,
        summary.rejected
    );
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

/// Writes the replay line of each failed record in `events` to `sink` (successes are left
/// out) and each rejection to stderr.
fn drain(events: &mut Vec<ReadEvent>, sink: &mut dyn Write, written: &mut usize) -> io::Result<()> {
    for event in events.drain(..) {
        match event {
            ReadEvent::Record(record) if record.trajectory.succeeded() => {}
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

    #[test]
    fn format_argument() {
        let format = |args: &[&str]| match parse(args) {
            Ok(Parsed::Run(a)) => Ok(a.format),
            Ok(Parsed::Help) => Err("help".to_owned()),
            Err(e) => Err(e),
        };
        assert_eq!(format(&["in"]), Ok(None));
        assert_eq!(format(&["in", "--format", "auto"]), Ok(None));
        assert_eq!(
            format(&["--format", "sharegpt", "in"]),
            Ok(Some(SourceFormat::ShareGpt))
        );
        assert_eq!(
            format(&["in", "--format=tau_bench"]),
            Ok(Some(SourceFormat::TauBench))
        );
        assert_eq!(
            format(&["in", "--format", "csv"]),
            Err("unknown format csv (expected auto, native, openai_messages, tau_bench, sharegpt, react, toolbench, atif)".to_owned())
        );
        assert!(format(&["in", "--format"]).is_err());
    }
}
