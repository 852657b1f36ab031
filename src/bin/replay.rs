//! `replay`: the native differential and benchmark command.
//!
//! Reads a trajectory file (JSON array or JSONL, in the native schema or one of the import
//! formats, or a ReAct text log), runs rule-based Stage 1 and Stage 2 and packages the three
//! sample envelopes with the fixed relabeling of the reference fixtures, writing one line per
//! failed trajectory shaped like `tests/fixtures/reference/expected.jsonl`; or, with
//! `--export FORMAT`, one row per failed trajectory in a training tool's layout, each row
//! checked against that layout's rules.

use agenther::custom;
use agenther::export::{self, ExportItem, ExportOptions, Provenance, SampleKind, Target};
use agenther::import::SourceFormat;
use agenther::llm::{TemplateSources, Templates};
use agenther::model::Trajectory;
use agenther::reader::{self, RawLines, ReadEvent, Record, Tally};
use agenther::stages::detect;
use agenther::stages::detect::rules::Lexicon;
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
              [--templates DIR] [--lexicon FILE]

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
                      prompts         the messages each prompt template renders for the
                                      trajectory (detect, extract, relabel, and judge
                                      with the fixed hindsight prompt)
                    Each row is checked against the format's rules; a row that breaks one
                    is left out and reported on standard error.
  --jobs N          JSONL records read and replay lines written by N threads while the input
                    is split into lines (default: one per core; 1 does everything in one
                    thread); the lines and the rejections keep their order
  --templates DIR   prompt templates: each file DIR/NAME.j2 (detect_system.j2, detect_user.j2,
                    extract_..., relabel_..., judge_...) replaces that built-in template; a
                    template that does not render stops the command with its file and line
  --lexicon FILE    the rule-based lexicon, a JSON file: {\"entries\": [{\"failure_type\",
                    \"keywords\"}, ...], \"severity\": {\"base\", \"per_hit\", \"cap\"}}
                    (see the README); detection and the sample weight use it
  -h, --help        print this help

Exit status: 0 when INPUT was read (even with rejected records), 2 on a usage error or when
INPUT or FILE cannot be opened, 1 when writing fails.";

struct Args {
    input: String,
    out: Option<String>,
    /// `None`: detect the format.
    format: Option<SourceFormat>,
    /// `None`: the native replay lines.
    export: Option<Export>,
    /// `None`: one per core.
    jobs: Option<usize>,
    /// A directory of `.j2` templates.
    templates: Option<String>,
    /// A lexicon file.
    lexicon: Option<String>,
}

/// What `--export` writes besides the native lines.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Export {
    Layout(Target),
    Prompts,
}

/// The templates and lexicon a run of the command uses.
struct Method {
    templates: Templates,
    lexicon: Lexicon,
}

/// Reads the `.j2` files of `dir` (other files are ignored).
fn read_templates(dir: &str) -> Result<TemplateSources, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {dir}: {e}"))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("cannot read {dir}: {e}"))?.path();
        if path.extension().is_some_and(|x| x == "j2") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            files.push((name, text));
        }
    }
    files.sort();
    custom::templates_from_files(files).map_err(|e| format!("{dir}: {e}"))
}

fn load_method(args: &Args) -> Result<Method, String> {
    let lexicon = match &args.lexicon {
        None => Lexicon::reference(),
        Some(file) => {
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
            custom::parse_lexicon(&text).map_err(|e| format!("{file}: {e}"))?
        }
    };
    let templates = match &args.templates {
        None => Templates::defaults(),
        Some(dir) => Templates::new(read_templates(dir)?)
            .map_err(|e| format!("{dir}: {}", custom::error_text(&e)))?,
    };
    Ok(Method { templates, lexicon })
}

/// The `--export` formats: `native`, `prompts`, or a training tool's layout.
fn parse_export(id: &str) -> Result<Option<Export>, String> {
    match id {
        "native" => Ok(None),
        "prompts" => Ok(Some(Export::Prompts)),
        _ => Target::TOOLS
            .into_iter()
            .find(|t| t.id() == id)
            .map(|t| Some(Export::Layout(t)))
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
    let mut export: Option<Option<Export>> = None;
    let mut jobs = None;
    let mut templates = None;
    let mut lexicon = None;
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
            "--templates" => match args.next() {
                Some(dir) if templates.is_none() => templates = Some(dir),
                Some(_) => return Err("--templates given twice".to_owned()),
                None => return Err("--templates needs a directory".to_owned()),
            },
            "--lexicon" => match args.next() {
                Some(file) if lexicon.is_none() => lexicon = Some(file),
                Some(_) => return Err("--lexicon given twice".to_owned()),
                None => return Err("--lexicon needs a file".to_owned()),
            },
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
            templates,
            lexicon,
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
    let method = match load_method(&args) {
        Ok(m) => m,
        Err(message) => {
            eprintln!("replay: {message}");
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
        // JSONL records are read on the worker threads: this one only finds the lines.
        reader.hand_over_lines(BATCH);
        Output::Parallel(Pool::start(jobs, sink, &method.lexicon))
    } else {
        Output::Inline {
            sink,
            export: args.export,
            replayer: Replayer::with_lexicon(&method.lexicon),
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
        let taken = out
            .take(&mut events, &method)
            .and_then(|_| out.take_lines(&mut reader));
        if let Err(e) = taken {
            eprintln!("replay: write failed: {e}");
            return ExitCode::from(1);
        }
    }
    let mut summary = reader.finish(&mut events);
    let counts = match out.take(&mut events, &method).and_then(|_| out.finish()) {
        Ok(counts) => counts,
        Err(e) => {
            eprintln!("replay: write failed: {e}");
            return ExitCode::from(1);
        }
    };
    summary.add(counts.tally);
    let elapsed = started.elapsed();
    let left_out = match args.export {
        Some(Export::Layout(target)) => {
            format!(", {} {} rows left out", counts.left_out, target.id())
        }
        _ => String::new(),
    };
    if args.templates.is_some() || args.lexicon.is_some() {
        eprintln!(
            "replay: templates {} sha256:{}, lexicon sha256:{}",
            method.templates.version(),
            method.templates.fingerprint(),
            custom::lexicon_fingerprint(&method.lexicon)
        );
    }
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

/// Lines written and rows left out so far, and what the worker threads counted reading the
/// lines the reader handed over.
#[derive(Default)]
struct Counts {
    written: usize,
    left_out: usize,
    tally: Tally,
}

/// Where the records go.
enum Output {
    /// Everything on this thread, in order.
    Inline {
        sink: Box<dyn Write>,
        export: Option<Export>,
        replayer: Replayer,
        counts: Counts,
    },
    /// Replay lines written by worker threads.
    Parallel(Pool),
}

impl Output {
    /// Hands on the records in `events` and reports each rejection on stderr.
    fn take(&mut self, events: &mut Vec<ReadEvent>, method: &Method) -> io::Result<()> {
        match self {
            Output::Inline {
                sink,
                export,
                replayer,
                counts,
            } => drain(events, *export, method, replayer, sink, counts),
            Output::Parallel(pool) => pool.take(events),
        }
    }

    /// Hands on the lines the reader handed over since the last call.
    fn take_lines(&mut self, reader: &mut reader::Reader) -> io::Result<()> {
        if let Output::Parallel(pool) = self {
            while let Some(lines) = reader.take_lines() {
                pool.lines(lines)?;
            }
        }
        Ok(())
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
    export: Option<Export>,
    method: &Method,
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
                    Some(Export::Prompts) => {
                        line.push_str(&prompts_line(&record.trajectory, method))
                    }
                    Some(Export::Layout(target)) => {
                        match export_line(target, &record, counts.written + 1, &method.lexicon) {
                            Some(text) => line.push_str(&text),
                            None => {
                                counts.left_out += 1;
                                continue;
                            }
                        }
                    }
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

/// Records (or JSONL lines) handed to a worker at a time.
const BATCH: usize = 64;

/// What a worker reads and writes: events the reader gave on this thread, or lines it handed
/// over raw.
enum Work {
    Events(Vec<ReadEvent>),
    Lines(RawLines),
}

/// A batch's output: its place in the input, its replay lines, how many there are, its
/// rejections (for stderr), and what reading its lines counted.
struct Done {
    seq: u64,
    lines: String,
    written: usize,
    rejections: String,
    tally: Tally,
}

/// Worker threads that read JSONL lines (handed over raw by the reader) and write their replay
/// lines, in batches, and a writer thread that puts the batches back in input order (the
/// lines on the sink, the rejections on stderr). The channels are bounded, so memory stays a
/// few batches per thread whatever the file's size.
struct Pool {
    work: Option<SyncSender<(u64, Work)>>,
    batch: Vec<ReadEvent>,
    next_batch: u64,
    workers: Vec<thread::JoinHandle<()>>,
    writer: Option<thread::JoinHandle<io::Result<Counts>>>,
}

impl Pool {
    fn start(jobs: usize, mut sink: Box<dyn Write + Send>, lexicon: &Lexicon) -> Pool {
        let (work, work_rx) = mpsc::sync_channel::<(u64, Work)>(2 * jobs);
        let (done, done_rx) = mpsc::sync_channel::<Done>(2 * jobs);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let workers = (0..jobs)
            .map(|_| {
                let (work_rx, done) = (Arc::clone(&work_rx), done.clone());
                let lexicon = lexicon.clone();
                thread::spawn(move || Self::work(&work_rx, &done, &lexicon))
            })
            .collect();
        drop(done);
        let writer = thread::spawn(move || -> io::Result<Counts> {
            let mut counts = Counts::default();
            let mut waiting = BTreeMap::new();
            let mut next = 0u64;
            for done in done_rx {
                waiting.insert(done.seq, done);
                while let Some(done) = waiting.remove(&next) {
                    sink.write_all(done.lines.as_bytes())?;
                    if !done.rejections.is_empty() {
                        eprint!("{}", done.rejections);
                    }
                    counts.written += done.written;
                    counts.tally.add(done.tally);
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

    fn work(work: &Mutex<Receiver<(u64, Work)>>, done: &SyncSender<Done>, lexicon: &Lexicon) {
        let mut replayer = Replayer::with_lexicon(lexicon);
        // Each batch's lines start with room for as much as the last batch wrote.
        let mut room = 0;
        let mut events = Vec::new();
        loop {
            let next = work.lock().map(|rx| rx.recv());
            let Ok(Ok((seq, work))) = next else {
                return;
            };
            let tally = match work {
                Work::Events(batch) => {
                    events = batch;
                    Tally::default()
                }
                Work::Lines(raw) => {
                    events.clear();
                    raw.read(&mut events)
                }
            };
            let mut lines = String::with_capacity(room);
            let (mut written, mut rejections) = (0, String::new());
            for event in events.drain(..) {
                match event {
                    ReadEvent::Record(record) if record.trajectory.succeeded() => {}
                    ReadEvent::Record(record) => {
                        replayer.write_line(&record.trajectory, &mut lines);
                        lines.push('\n');
                        written += 1;
                    }
                    ReadEvent::Rejected(rejected) => {
                        rejections.push_str(&rejected.to_string());
                        rejections.push('\n');
                    }
                }
            }
            room = lines.len();
            let output = Done {
                seq,
                lines,
                written,
                rejections,
                tally,
            };
            if done.send(output).is_err() {
                return;
            }
        }
    }

    /// Queues the reader's events, in order.
    fn take(&mut self, events: &mut Vec<ReadEvent>) -> io::Result<()> {
        for event in events.drain(..) {
            self.batch.push(event);
            if self.batch.len() == BATCH {
                self.send_events()?;
            }
        }
        Ok(())
    }

    /// Queues lines the reader handed over, after the events queued before them.
    fn lines(&mut self, lines: RawLines) -> io::Result<()> {
        if !self.batch.is_empty() {
            self.send_events()?;
        }
        self.send(Work::Lines(lines))
    }

    fn send_events(&mut self) -> io::Result<()> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        self.send(Work::Events(batch))
    }

    fn send(&mut self, work: Work) -> io::Result<()> {
        let sent = self
            .work
            .as_ref()
            .is_some_and(|tx| tx.send((self.next_batch, work)).is_ok());
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
            self.send_events()?;
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

/// The messages each template renders for `t` as one JSON line (a template error in place of
/// the messages of a prompt that does not render for this trajectory).
fn prompts_line(t: &Trajectory, method: &Method) -> String {
    let templates = &method.templates;
    let outcome = agenther::stages::extract::rules::extract(t);
    let goal = fixed_relabel(t).hindsight_prompt;
    let rendered = [
        ("detect", templates.render_detect(t)),
        ("extract", templates.render_extract(t)),
        ("relabel", templates.render_relabel(t, &outcome)),
        ("judge", templates.render_judge(t, &goal)),
    ];
    let mut line = serde_json::Map::new();
    line.insert("trajectory_id".into(), t.trajectory_id.clone().into());
    for (name, messages) in rendered {
        let value = match messages {
            Ok(m) => serde_json::to_value(m).expect("messages serialize"),
            Err(e) => serde_json::json!({"error": custom::error_text(&e)}),
        };
        line.insert(name.into(), value);
    }
    serde_json::Value::Object(line).to_string()
}

/// The record's row in `target`'s layout with the fixed relabeling, or `None` after reporting
/// on stderr every rule the row broke.
fn export_line(target: Target, record: &Record, line: usize, lexicon: &Lexicon) -> Option<String> {
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
        relabel_model: None,
        judge_model: None,
        model_goal: Some(relabel.hindsight_prompt.clone()),
        review: None,
        edited_goal: None,
    };
    let weight = detect::rules::detect_with(t, lexicon).severity;
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
            let layout = Ok(Some(Export::Layout(target)));
            assert_eq!(export(&["in", "--export", target.id()]), layout);
            let joined = format!("--export={}", target.id());
            assert_eq!(export(&[&joined, "in"]), layout);
        }
        assert_eq!(
            export(&["in", "--export", "prompts"]),
            Ok(Some(Export::Prompts))
        );
        assert!(export(&["in", "--export", "sft"])
            .unwrap_err()
            .contains("unknown export"));
        assert!(export(&["in", "--export"]).is_err());
        assert!(export(&["in", "--export", "openai", "--export=native"]).is_err());
    }
}
