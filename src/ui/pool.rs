//! The page's background readers: a pool of Web Workers (`agenther-worker`, see
//! [`crate::worker`]), one per core the page may use, and the loading of one file through
//! them. The page hands out the head, the slices to count and the slices to parse
//! ([`crate::slices`]), and takes the results in file order, decoding them
//! ([`crate::wire`]); it never parses the file.

use super::browser;
use crate::slices::{owner, plan, slices_per_block, Assembly, Parsed, Split};
use crate::wire::{decode_events, decode_summary, Item, Reply, Request, RuleSetup};
use crate::worker::describe;
use futures::channel::mpsc;
use futures::lock::Mutex;
use futures::StreamExt;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{File, MessageEvent, Worker};

/// The script that starts a worker (Trunk's loader for the `agenther-worker` binary).
const WORKER_SCRIPT: &str = "./agenther-worker_loader.js";

/// How long the workers may take to start before the page reads files itself.
const START_MS: f64 = 20_000.0;

/// Most workers started, whatever the number of cores.
const MAX_WORKERS: usize = 8;

/// localStorage keys that change how files are read (tests use them): the number of workers
/// (0: read on the page), and the size of a slice in bytes.
pub const WORKERS_KEY: &str = "agenther-workers";
pub const SLICE_KEY: &str = "agenther-slice-bytes";

/// Slices handed out beyond the last one taken, per worker, at least: enough to keep every
/// worker busy while the page takes results in, few enough that the workers hold little. A
/// worker is handed the slices of a read block in a row ([`crate::slices::owner`]), so this
/// is at least a block's slices and one more.
const AHEAD_PER_WORKER: usize = 3;

/// A message from a worker: which one, and its reply (`Err`: the worker failed).
type Message = (usize, Result<Reply, String>);
type Inbox = mpsc::UnboundedReceiver<Message>;

pub struct Pool {
    workers: Vec<Worker>,
    /// The workers' messages. Whoever holds the lock has the pool to itself: one file is
    /// loaded at a time, and a second load waits for the first.
    inbox: Mutex<Inbox>,
    // Kept alive as long as the workers.
    _handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

/// How many workers to start: the test setting, or one per core but one, at least one.
pub fn workers_wanted() -> usize {
    if let Some(n) = browser::load(WORKERS_KEY).and_then(|v| v.trim().parse::<usize>().ok()) {
        return n.min(MAX_WORKERS);
    }
    let cores = web_sys::window()
        .map(|w| w.navigator().hardware_concurrency())
        .unwrap_or(1.0) as usize;
    cores.saturating_sub(1).clamp(1, MAX_WORKERS)
}

/// The size of a slice: the test setting, or [`crate::slices::SLICE_BYTES`].
pub fn slice_bytes() -> u64 {
    browser::load(SLICE_KEY)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(crate::slices::SLICE_BYTES)
}

impl Pool {
    /// Starts `n` workers and waits until each says it is ready.
    pub async fn start(n: usize) -> Result<Pool, String> {
        let (tx, rx) = mpsc::unbounded::<Message>();
        let mut workers = Vec::new();
        let mut handlers = Vec::new();
        for id in 0..n {
            let worker = Worker::new(WORKER_SCRIPT).map_err(|e| describe(&e))?;
            let sender = tx.clone();
            let on_message = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
                let ev: MessageEvent = ev.unchecked_into();
                // The worker sends a Uint8Array (its buffer transferred): read it in place, as
                // `new Uint8Array(array)` would copy it first.
                let bytes = ev.data().unchecked_into::<js_sys::Uint8Array>().to_vec();
                let reply = Reply::decode(&bytes).map_err(|e| e.to_string());
                let _ = sender.unbounded_send((id, reply));
            });
            let sender = tx.clone();
            let on_error = Closure::<dyn FnMut(JsValue)>::new(move |ev: JsValue| {
                let message = ev
                    .dyn_ref::<web_sys::ErrorEvent>()
                    .map(|e| e.message())
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "the background reader stopped".into());
                let _ = sender.unbounded_send((id, Err(message)));
            });
            worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
            handlers.push(on_message);
            handlers.push(on_error);
            workers.push(worker);
        }
        let pool = Pool {
            workers,
            inbox: Mutex::new(rx),
            _handlers: handlers,
        };
        let started = browser::now_ms();
        let mut ready = vec![false; n];
        let mut inbox = pool.inbox.lock().await;
        while ready.contains(&false) {
            let left = START_MS - (browser::now_ms() - started);
            if left <= 0.0 {
                pool.stop();
                return Err("the background readers did not start in time".into());
            }
            match next_within(&mut inbox, left).await {
                Some((id, Ok(Reply::Ready))) => ready[id] = true,
                Some((_, Err(e))) => {
                    pool.stop();
                    return Err(e);
                }
                Some(_) | None => {}
            }
        }
        drop(inbox);
        Ok(pool)
    }

    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Ends every worker.
    pub fn stop(&self) {
        for w in &self.workers {
            w.terminate();
        }
    }

    fn send(&self, worker: usize, file: &File, request: &Request) -> Result<(), String> {
        let bytes = js_sys::Uint8Array::from(request.encode().as_slice());
        let message = js_sys::Array::of2(file, &bytes);
        let transfer = js_sys::Array::of1(&bytes.buffer());
        self.workers[worker]
            .post_message_with_transfer(&message, &transfer)
            .map_err(|e| describe(&e))
    }
}

async fn next(inbox: &mut Inbox) -> Result<(usize, Reply), String> {
    match inbox.next().await {
        Some((id, reply)) => reply.map(|r| (id, r)),
        None => Err("the background readers are gone".into()),
    }
}

/// The next message, or `None` after `ms` milliseconds.
async fn next_within(inbox: &mut Inbox, ms: f64) -> Option<Message> {
    use futures::future::{select, Either};
    let timer = Box::pin(browser::sleep(ms.ceil() as i32));
    match select(inbox.next(), timer).await {
        Either::Left((message, _)) => message,
        Either::Right(_) => None,
    }
}

/// How long the page may go on taking in results before it lets the browser draw and answer
/// input: a task of its own for each slice would cost a timer's delay per slice, and a task of
/// 50 ms or more is one the user notices.
const TASK_MS: f64 = 40.0;

/// When the page lets the browser draw while it takes in results: before a result that would
/// take its task past [`TASK_MS`], judging by how long results took so far.
struct Pace {
    /// When the page last let the browser draw.
    since: f64,
    /// How long taking in a result takes (a moving average), in milliseconds.
    take_ms: f64,
    started: f64,
}

impl Pace {
    fn new() -> Self {
        let now = browser::now_ms();
        Pace {
            since: now,
            take_ms: 0.0,
            started: now,
        }
    }

    /// Lets the browser draw first if the next result would make the task too long.
    async fn before_take(&mut self) {
        if browser::now_ms() - self.since + self.take_ms >= TASK_MS {
            browser::sleep(0).await;
            self.since = browser::now_ms();
        }
        self.started = browser::now_ms();
    }

    /// A result was taken in.
    fn taken(&mut self) {
        let ms = browser::now_ms() - self.started;
        self.take_ms = if self.take_ms == 0.0 {
            ms
        } else {
            0.7 * self.take_ms + 0.3 * ms
        };
    }
}

/// What [`load`] reports as it goes: the items read, in file order, and the bytes read so far.
pub trait Sink {
    fn take(&mut self, items: Vec<Item>, read: u64);
    /// Whether the page should say how far the file has got.
    fn due(&self) -> bool;
    /// Says it (called in a task of its own, see [`show`]).
    fn show(&mut self);
}

/// Has `sink` say how far the file has got when it is due, in a task of its own rather than
/// added to the taking in of results.
async fn show(sink: &mut dyn Sink, pace: &mut Pace) {
    if !sink.due() {
        return;
    }
    browser::sleep(0).await;
    sink.show();
    // The page is drawn when the task that changed it ends.
    browser::sleep(0).await;
    pace.since = browser::now_ms();
}

/// Reads `file` through the pool: the head on the first worker, then the slices of a JSONL
/// file on all of them. Items reach `sink` in file order; returns the file's summary.
pub async fn load(
    pool: &Pool,
    file: &File,
    format: Option<crate::import::SourceFormat>,
    rules: &RuleSetup,
    slice: u64,
    sink: &mut dyn Sink,
) -> Result<crate::reader::FileSummary, String> {
    let name = file.name();
    let size = file.size() as u64;
    let mut inbox = pool.inbox.lock().await;
    let inbox = &mut *inbox;
    let decode_items = |bytes: &[u8]| decode_events(bytes, &name).map_err(|e| e.to_string());
    let mut pace = Pace::new();
    pool.send(
        0,
        file,
        &Request::Head {
            file: name.clone(),
            format,
            chunk: slice,
            rules: rules.clone(),
        },
    )?;
    let (summary, split): (_, Option<Split>) = loop {
        match next(inbox).await? {
            (_, Reply::Events { read, events }) => {
                pace.before_take().await;
                sink.take(decode_items(&events)?, read);
                pace.taken();
                show(sink, &mut pace).await;
            }
            (_, Reply::HeadDone { summary, split }) => {
                break (
                    decode_summary(&summary, &name).map_err(|e| e.to_string())?,
                    split,
                )
            }
            (_, Reply::Failed { message }) => return Err(message),
            _ => {}
        }
    };
    let Some(split) = split else {
        return Ok(summary);
    };
    let ranges = plan(split.offset, size, slice);
    let mut assembly: Assembly<Vec<u8>> = Assembly::new(summary, split, ranges.len());
    let mut bounds = vec![(0, 0); ranges.len()];
    let owner = |k: usize| owner(k, slice, pool.len());
    let ahead = AHEAD_PER_WORKER.max(slices_per_block(slice) + 1) * pool.len();
    let mut handed = 0;
    let mut taken = 0;
    let parse = |task: crate::slices::Task, bounds: &[(u64, u64)]| {
        let (start, end) = bounds[task.slice];
        pool.send(
            owner(task.slice),
            file,
            &Request::Parse {
                slice: task.slice,
                file: name.clone(),
                forced: format,
                start,
                end,
                at: task.at,
                rules: rules.clone(),
            },
        )
    };
    while !assembly.done() {
        while handed < ranges.len() && handed < taken + ahead {
            let (start, end) = ranges[handed];
            pool.send(
                owner(handed),
                file,
                &Request::Count {
                    slice: handed,
                    from: split.offset,
                    start,
                    end,
                    size,
                },
            )?;
            handed += 1;
        }
        match next(inbox).await? {
            (
                _,
                Reply::Counted {
                    slice,
                    start,
                    end,
                    count,
                },
            ) => {
                if let Some(b) = bounds.get_mut(slice) {
                    *b = (start, end);
                }
                for task in assembly.counted(slice, count) {
                    parse(task, &bounds)?;
                }
            }
            (
                _,
                Reply::Parsed {
                    slice,
                    from,
                    to,
                    summary,
                    events,
                },
            ) => {
                let summary = decode_summary(&summary, &name).map_err(|e| e.to_string())?;
                assembly.parsed(
                    slice,
                    Parsed {
                        from,
                        to,
                        summary,
                        events,
                    },
                );
                let (ready, again) = assembly.take();
                for events in ready {
                    let read = bounds[taken].1;
                    taken += 1;
                    pace.before_take().await;
                    sink.take(decode_items(&events)?, read);
                    pace.taken();
                    show(sink, &mut pace).await;
                }
                for task in again {
                    parse(task, &bounds)?;
                }
            }
            (_, Reply::Failed { message }) => return Err(message),
            _ => {}
        }
    }
    Ok(assembly.summary().clone())
}
