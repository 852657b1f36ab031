//! `replay`: the native differential and benchmark command.
//!
//! Reads a trajectory file (JSON array or JSONL, in the native schema or one of the import
//! formats, or a ReAct text log), runs rule-based Stage 1 and Stage 2 and packages the three
//! sample envelopes with the fixed relabeling of the reference fixtures, writing one line per
//! failed trajectory shaped like `tests/fixtures/reference/expected.jsonl`; or, with
//! `--export FORMAT`, one row per failed trajectory in a training tool's layout, each row
//! checked against that layout's rules.

use agenther::export::{self, ExportItem, ExportOptions, Provenance, SampleKind, Target};
use agenther::import::SourceFormat;
use agenther::reader::{self, ReadEvent, Record};
use agenther::stages::detect;
use agenther::stages::package::replay::{fixed_relabel, Replayer, CONFIDENCE};
use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

const USAGE: &str = "\
Usage: replay INPUT [--out FILE] [--format ID] [--export FORMAT] [--jobs N]

Reads INPUT (a JSON array of trajectories, JSONL, or a ReAct text log), runs rule-based failure
detection and outcome extraction, packages the sft, dpo and sharegpt samples with a fixed
relabeling (hindsight prompt \"HINDSIGHT::\" + id, confidence 0.75, weight = severity) and
writes one JSON line per failed trajectory to FILE, or to standard output. Runs the source
marks as successful are counted but not written: only failures are relabeled.

Rejected records are reported on standard error, followed by a line naming the source format
(detected or forced) with the counts of failures, successes and rejected records, and a
summary line.

Options:
  --out FILE        write the lines to FILE instead of standard output
  --format ID       read INPUT in this format instead of detecting it: auto (the default),
                    native, openai_messages, tau_bench, sharegpt, react, toolbench or atif
  --export FORMAT   what to write, with the same relabeling and weight = severity:
                      native          the replay lines above (the default)
                      llamafactory    LLaMA-Factory ShareGPT with function_call turns
                      trl-sft         TRL conversational SFT (messages, tools)
                      trl-preference  TRL preference pairs (chosen, rejected)
                      openai          OpenAI chat fine-tuning (messages, tools)
                    Each row is checked against the format's rules; a row that breaks one
                    is left out and reported on standard error.
  --jobs N          replay lines written by N threads while the input is read (default: one
                    per core; 1 does everything in one thread); the lines keep their order
  -h, --help        print this help

Exit status: 0 when INPUT was read (even with rejected records), 2 on a usage error or when
INPUT or FILE cannot be opened, 1 when writing fails.";

struct Args {
    input: String,
    out: Option<String>,
    /// `None`: detect the format.
    format: Option<SourceFormat>,
    /// `None`: the native replay lines.
    export: Option<Target>,
    /// `None`: one per core.
    jobs: Option<usize>,
}

/// The `--export` formats: `native`, or a training tool's layout.
fn parse_export(id: &str) -> Result<Option<Target>, String> {
    match id {
        "native" => Ok(None),
        _ => Target::TOOLS
            .into_iter()
            .find(|t| t.id() == id)
            .map(Some)
            .ok_or_else(|| format!("unknown export format {id:?}")),
    }
}

/// The number of `--jobs`: a whole number of at least 1.
fn parse_jobs(n: Option<&str>) -> Result<usize, String> {
    match n {
        None => Err("--jobs needs a number".to_owned()),
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!(
                "--jobs needs a whole number of at least 1, not {n:?}"
            )),
        },
    }
}

enum Parsed {
    Run(Args),
    Help,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut input = None;
    let mut out = None;
    let mut format = None;
    let mut export: Option<Option<Target>> = None;
    let mut jobs = None;
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
            "--export" => match args.next() {
                Some(id) if export.is_none() => export = Some(parse_export(&id)?),
                Some(_) => return Err("--export given twice".to_owned()),
                None => return Err("--export needs a format".to_owned()),
            },
            s if s.starts_with("--export=") => {
                if export.is_some() {
                    return Err("--export given twice".to_owned());
                }
                export = Some(parse_export(&s["--export=".len()..])?);
            }
            "--jobs" => jobs = Some(parse_jobs(args.next().as_deref())?),
            s if s.starts_with("--jobs=") => jobs = Some(parse_jobs(Some(&s["--jobs=".len()..]))?),
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
        Some(input) => Ok(Parsed::Run(Args {
            input,
            out,
            format,
            export: export.flatten(),
            jobs,
        })),
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
    let sink: Box<dyn Write + Send> = match &args.out {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Box::new(BufWriter::new(file)),
            Err(e) => {
                eprintln!("replay: cannot create {path}: {e}");
                return ExitCode::from(2);
            }
        },
        None => Box::new(BufWriter::new(io::stdout())),
    };

    // The input is streamed through the chunked reader: memory holds one chunk and the
    // records of that chunk, whatever the file's size.
    let mut reader = reader::Reader::with_format(args.input.clone(), args.format);
    let jobs = args
        .jobs
        .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()));
    let mut out = if args.export.is_none() && jobs > 1 {
        Output::Parallel(Pool::start(jobs, sink))
    } else {
        Output::Inline {
            sink,
            export: args.export,
            replayer: Replayer::new(),
            counts: Counts::default(),
        }
    };
    let mut events = Vec::new();
    let mut chunk = vec![0u8; CHUNK_BYTES];
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
        if let Err(e) = out.take(&mut events) {
            eprintln!("replay: write failed: {e}");
            return ExitCode::from(1);
        }
    }
    let summary = reader.finish(&mut events);
    let counts = match out.take(&mut events).and_then(|_| out.finish()) {
        Ok(counts) => counts,
        Err(e) => {
            eprintln!("replay: write failed: {e}");
            return ExitCode::from(1);
        }
    };
    let elapsed = started.elapsed();
    let left_out = match args.export {
        Some(target) => format!(", {} {} rows left out", counts.left_out, target.id()),
        None => String::new(),
    };
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
        "replay: {}: {} records, {} rejected, {} lines written{} in {:.3} s",
        summary.file,
        summary.records,
        summary.rejected,
        counts.written,
        left_out,
        elapsed.as_secs_f64()
    );
    ExitCode::SUCCESS
}

/// Bytes read from the input at a time.
const CHUNK_BYTES: usize = 1 << 20;

/// Lines written and rows left out so far.
#[derive(Default)]
struct Counts {
    written: usize,
    left_out: usize,
}

/// Where the records go.
enum Output {
    /// Everything on this thread, in order.
    Inline {
        sink: Box<dyn Write>,
        export: Option<Target>,
        replayer: Replayer,
        counts: Counts,
    },
    /// Replay lines written by worker threads.
    Parallel(Pool),
}

impl Output {
    /// Hands on the records in `events` and reports each rejection on stderr.
    fn take(&mut self, events: &mut Vec<ReadEvent>) -> io::Result<()> {
        match self {
            Output::Inline {
                sink,
                export,
                replayer,
                counts,
            } => drain(events, *export, replayer, sink, counts),
            Output::Parallel(pool) => pool.take(events),
        }
    }

    /// Waits for every line to be written and flushed.
    fn finish(self) -> io::Result<Counts> {
        match self {
            Output::Inline {
                mut sink, counts, ..
            } => sink.flush().map(|_| counts),
            Output::Parallel(pool) => pool.finish(),
        }
    }
}

/// Writes the line of each failed record in `events` to `sink` (the replay line, or the row in
/// `export`'s layout; successes are left out) and each rejection, and each rule a row broke,
/// to stderr.
fn drain(
    events: &mut Vec<ReadEvent>,
    export: Option<Target>,
    replayer: &mut Replayer,
    sink: &mut dyn Write,
    counts: &mut Counts,
) -> io::Result<()> {
    let mut line = String::new();
    for event in events.drain(..) {
        match event {
            ReadEvent::Record(record) if record.trajectory.succeeded() => {}
            ReadEvent::Record(record) => {
                line.clear();
                match export {
                    None => replayer.write_line(&record.trajectory, &mut line),
                    Some(target) => match export_line(target, &record, counts.written + 1) {
                        Some(text) => line.push_str(&text),
                        None => {
                            counts.left_out += 1;
                            continue;
                        }
                    },
                }
                line.push('\n');
                sink.write_all(line.as_bytes())?;
                counts.written += 1;
            }
            ReadEvent::Rejected(rejected) => eprintln!("{rejected}"),
        }
    }
    Ok(())
}

/// Records handed to a worker at a time.
const BATCH: usize = 64;

/// A batch of records and its place in the input.
type Work = (u64, Vec<Record>);
/// A batch's lines, all written, and how many there are.
type Done = (u64, String, usize);

/// Worker threads that write the replay lines of batches of records, and a writer thread that
/// puts the batches back in input order. The channels are bounded, so memory stays a few
/// batches per thread whatever the file's size.
struct Pool {
    work: Option<SyncSender<Work>>,
    batch: Vec<Record>,
    next_batch: u64,
    workers: Vec<thread::JoinHandle<()>>,
    writer: Option<thread::JoinHandle<io::Result<Counts>>>,
}

impl Pool {
    fn start(jobs: usize, mut sink: Box<dyn Write + Send>) -> Pool {
        let (work, work_rx) = mpsc::sync_channel::<Work>(2 * jobs);
        let (done, done_rx) = mpsc::sync_channel::<Done>(2 * jobs);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let workers = (0..jobs)
            .map(|_| {
                let (work_rx, done) = (Arc::clone(&work_rx), done.clone());
                thread::spawn(move || Self::work(&work_rx, &done))
            })
            .collect();
        drop(done);
        let writer = thread::spawn(move || -> io::Result<Counts> {
            let mut counts = Counts::default();
            let mut waiting = BTreeMap::new();
            let mut next = 0u64;
            for (seq, lines, written) in done_rx {
                waiting.insert(seq, (lines, written));
                while let Some((lines, written)) = waiting.remove(&next) {
                    sink.write_all(lines.as_bytes())?;
                    counts.written += written;
                    next += 1;
                }
            }
            sink.flush()?;
            Ok(counts)
        });
        Pool {
            work: Some(work),
            batch: Vec::with_capacity(BATCH),
            next_batch: 0,
            workers,
            writer: Some(writer),
        }
    }

    fn work(work: &Mutex<Receiver<Work>>, done: &SyncSender<Done>) {
        let mut replayer = Replayer::new();
        // Each batch's lines start with room for as much as the last batch wrote.
        let mut room = 0;
        loop {
            let next = work.lock().map(|rx| rx.recv());
            let Ok(Ok((seq, records))) = next else {
                return;
            };
            let mut lines = String::with_capacity(room);
            for record in &records {
                replayer.write_line(&record.trajectory, &mut lines);
                lines.push('\n');
            }
            room = lines.len();
            if done.send((seq, lines, records.len())).is_err() {
                return;
            }
        }
    }

    fn take(&mut self, events: &mut Vec<ReadEvent>) -> io::Result<()> {
        for event in events.drain(..) {
            match event {
                ReadEvent::Record(record) if record.trajectory.succeeded() => {}
                ReadEvent::Record(record) => {
                    self.batch.push(record);
                    if self.batch.len() == BATCH {
                        self.send()?;
                    }
                }
                ReadEvent::Rejected(rejected) => eprintln!("{rejected}"),
            }
        }
        Ok(())
    }

    fn send(&mut self) -> io::Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let sent = self
            .work
            .as_ref()
            .is_some_and(|work| work.send((self.next_batch, batch)).is_ok());
        self.next_batch += 1;
        if sent {
            Ok(())
        } else {
            // The workers stopped because the writer did: its error says why.
            self.join_writer()
                .and(Err(io::Error::other("the writer thread stopped")))
        }
    }

    fn join_writer(&mut self) -> io::Result<Counts> {
        match self.writer.take() {
            Some(writer) => writer
                .join()
                .map_err(|_| io::Error::other("the writer thread failed"))?,
            None => Err(io::Error::other("the writer thread stopped")),
        }
    }

    fn finish(mut self) -> io::Result<Counts> {
        if !self.batch.is_empty() {
            self.send()?;
        }
        drop(self.work.take());
        for worker in std::mem::take(&mut self.workers) {
            worker
                .join()
                .map_err(|_| io::Error::other("a worker thread failed"))?;
        }
        self.join_writer()
    }
}

/// The record's row in `target`'s layout with the fixed relabeling, or `None` after reporting
/// on stderr every rule the row broke.
fn export_line(target: Target, record: &Record, line: usize) -> Option<String> {
    let t = &record.trajectory;
    let relabel = fixed_relabel(t);
    let provenance = Provenance {
        kind: SampleKind::Relabeled,
        source_file: record.source.file.clone(),
        source_line: record.source.line,
        trajectory_id: t.trajectory_id.clone(),
        import_format: t.origin.as_ref().map(|o| o.format.clone()),
        original_prompt: t.original_prompt.clone(),
        confidence: Some(CONFIDENCE),
        relabel_confidence: Some(CONFIDENCE),
        judge_confidence: None,
        judges: Some("fixed relabeling".to_owned()),
    };
    let weight = detect::rules::detect(t).severity;
    let item = ExportItem::relabeled(t, &relabel, weight, provenance);
    match export::checked_line(target, line, &item, &ExportOptions::default())? {
        Ok(checked) => {
            for r in &checked.rewrites {
                eprintln!(
                    "{}:{}: {}: {} row written with {}",
                    record.source.file,
                    record.source.line,
                    t.trajectory_id,
                    target.id(),
                    r.integer
                );
            }
            Some(checked.text)
        }
        Err(violations) => {
            for v in violations {
                let field = if v.field.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", v.field)
                };
                eprintln!(
                    "{}:{}: {}: {} row left out: {}{}",
                    record.source.file,
                    record.source.line,
                    t.trajectory_id,
                    target.id(),
                    field,
                    v.message
                );
            }
            None
        }
    }
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
        match parse(&["in", "--format", "react", "--export", "openai"]) {
            Ok(Parsed::Run(a)) => {
                assert_eq!(a.format, Some(SourceFormat::React));
                assert!(a.export.is_some());
            }
            _ => panic!("expected a run"),
        }
    }

    #[test]
    fn export_argument() {
        let export = |args: &[&str]| match parse(args) {
            Ok(Parsed::Run(a)) => Ok(a.export),
            Ok(Parsed::Help) => Err("help".to_owned()),
            Err(e) => Err(e),
        };
        assert_eq!(export(&["in"]), Ok(None));
        assert_eq!(export(&["in", "--export", "native"]), Ok(None));
        for target in Target::TOOLS {
            assert_eq!(export(&["in", "--export", target.id()]), Ok(Some(target)));
            let joined = format!("--export={}", target.id());
            assert_eq!(export(&[&joined, "in"]), Ok(Some(target)));
        }
        assert!(export(&["in", "--export", "sft"])
            .unwrap_err()
            .contains("unknown export"));
        assert!(export(&["in", "--export"]).is_err());
        assert!(export(&["in", "--export", "openai", "--export=native"]).is_err());
    }
}
