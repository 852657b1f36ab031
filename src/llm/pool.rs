//! Replicas of one model, and the page's own request queue.
//!
//! A browser opens at most [`BROWSER_PER_HOST`] connections to one host over HTTP/1.1 (the
//! protocol of Ollama, llama.cpp and vLLM); requests past that wait in the browser's queue, where
//! the page cannot tell them from requests on the wire, so their timeout would run while they
//! wait. The page therefore keeps its own queue: a request is handed to `fetch` only when its
//! endpoint has a free connection, and its timeout starts then.
//!
//! Past six requests in flight the page needs more hosts: a list of base URLs that serve the
//! same model ([`Replica`], each with its own limit). The [`Scheduler`] sends each request to
//! the least-loaded replica that has room; a replica that stops answering (a network error or a
//! timeout) is taken out for a while and tried again later with one request; answers bring it
//! back. A replica is taken out only while another is in, so that a single endpoint behaves as
//! it always did. [`Pooled`] is the chat client over the replicas' clients.
//!
//! Which replica answered is no part of an exchange's key: the exchange log keys requests by
//! the first base URL (see [`super::exchange::CachingClient`], built outside the pool), so a run
//! resumed or replayed gets its logged answers whichever replica gave them.

use super::client::{ChatClient, ChatError};
use super::diagnose::normalize_base_url;
use super::openai::{ChatRequest, ChatResponse};
use futures::channel::oneshot;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// Connections a browser opens to one host over HTTP/1.1 (Chromium, Firefox and Safari alike).
pub const BROWSER_PER_HOST: usize = 6;

/// The most requests one endpoint may be given at once.
pub const MAX_LIMIT: usize = 64;

/// How long a replica that stopped answering stays out the first time, in milliseconds; each
/// further failure in a row doubles it, up to [`MAX_OUT_MS`].
pub const FIRST_OUT_MS: f64 = 2_000.0;
pub const MAX_OUT_MS: f64 = 60_000.0;

/// One base URL serving the model, and how many requests it takes at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replica {
    pub base_url: String,
    pub limit: usize,
}

/// `scheme://host:port` of a URL, lower-cased, with the scheme's default port written out: what
/// a browser counts connections by. `None` when the URL has no `http://` or `https://`.
pub fn origin_of(url: &str) -> Option<String> {
    let url = normalize_base_url(url);
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (format!("[{host}]"), after.strip_prefix(':'))
        }
        None => match host_port.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (host_port.to_owned(), None),
        },
    };
    if host.is_empty() {
        return None;
    }
    let port = port.filter(|p| !p.is_empty()).unwrap_or(default_port);
    Some(format!("{scheme}://{}:{port}", host.to_ascii_lowercase()))
}

/// Reads the replica list as typed: one base URL a line, optionally followed by blanks and the
/// number of requests it takes at once (`default_limit` otherwise). Blank lines are skipped.
/// Errors name the line.
pub fn parse_replicas(text: &str, default_limit: usize) -> Result<Vec<Replica>, Vec<String>> {
    let mut replicas = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let Some(url) = words.next() else { continue };
        let limit = match (words.next(), words.next()) {
            (None, _) => Some(default_limit),
            (Some(l), None) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l)),
            _ => None,
        };
        match (origin_of(url), limit) {
            (None, _) => errors.push(format!(
                "replicas, line {}: {url} should start with http:// or https://",
                n + 1
            )),
            (_, None) => errors.push(format!(
                "replicas, line {}: write a base URL, then optionally the requests it takes at \
                 once (1 to {MAX_LIMIT})",
                n + 1
            )),
            (Some(_), Some(limit)) => replicas.push(Replica {
                base_url: normalize_base_url(url),
                limit,
            }),
        }
    }
    if errors.is_empty() {
        Ok(replicas)
    } else {
        Err(errors)
    }
}

/// The replicas as written back into the form: one a line, the limit after the URL when it is
/// not `default_limit`.
pub fn replicas_text(replicas: &[Replica], default_limit: usize) -> String {
    replicas
        .iter()
        .map(|r| match r.limit == default_limit {
            true => r.base_url.clone(),
            false => format!("{} {}", r.base_url, r.limit),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks that no two endpoints share a host and port: the browser would share one set of
/// connections between them, so they would add nothing.
pub fn check_distinct(endpoints: &[Replica]) -> Result<(), String> {
    for (i, a) in endpoints.iter().enumerate() {
        let Some(origin) = origin_of(&a.base_url) else {
            continue;
        };
        if let Some(b) = endpoints[..i]
            .iter()
            .find(|b| origin_of(&b.base_url).as_ref() == Some(&origin))
        {
            return Err(format!(
                "replicas: {} has the same host and port as {}; the browser shares its \
                 connections between them (name the server under another host name, e.g. \
                 127.0.0.1 and localhost, or another port)",
                a.base_url, b.base_url
            ));
        }
    }
    Ok(())
}

/// What the run panel says when `concurrency` asks for more than the endpoints take at once,
/// when an endpoint is given more than the browser opens over HTTP/1.1, or when the second
/// judge's own endpoint (`judge`, with its queue's limit) shares a host and port with one of
/// them and the two limits together pass what the browser opens.
pub fn connection_note(
    concurrency: usize,
    endpoints: &[Replica],
    judge: Option<&Replica>,
) -> Option<String> {
    if endpoints
        .first()
        .is_some_and(|e| crate::inpage::model_of(&e.base_url).is_some())
    {
        return (concurrency > 1).then(|| {
            format!(
                "The model in this page answers one request at a time: at concurrency \
                 {concurrency} the other requests wait in the page's queue, and each one's \
                 timeout starts when the model starts on it."
            )
        });
    }
    let total: usize = endpoints.iter().map(|e| e.limit).sum();
    let mut notes = Vec::new();
    if concurrency > total {
        notes.push(format!(
            "Concurrency {concurrency} is more than the {total} requests the {} take at once: \
             a browser opens at most {BROWSER_PER_HOST} connections to one host over HTTP/1.1, \
             the protocol of Ollama, llama.cpp and vLLM. The other trajectories wait in the \
             page's queue (their timeout starts only when their request is sent). To go further, \
             add replicas: other servers, or the same one under another host name.",
            if endpoints.len() == 1 {
                "endpoint".to_owned()
            } else {
                format!("{} endpoints", endpoints.len())
            }
        ));
    }
    let wide: Vec<&str> = endpoints
        .iter()
        .filter(|e| e.limit > BROWSER_PER_HOST)
        .map(|e| e.base_url.as_str())
        .collect();
    if !wide.is_empty() && concurrency > BROWSER_PER_HOST {
        notes.push(format!(
            "{} may be given more than {BROWSER_PER_HOST} requests at once; that helps only over \
             HTTP/2 (https): over HTTP/1.1 the browser holds the rest back and their timeout \
             runs while they wait.",
            wide.join(", ")
        ));
    }
    let shared = judge.and_then(|j| {
        let origin = origin_of(&j.base_url)?;
        let e = endpoints
            .iter()
            .find(|e| origin_of(&e.base_url).as_ref() == Some(&origin))?;
        (j.limit + e.limit > BROWSER_PER_HOST).then_some((j, e))
    });
    if let Some((j, e)) = shared {
        notes.push(format!(
            "The second judge's endpoint {} has the same host and port as {}: over HTTP/1.1 the \
             browser's {BROWSER_PER_HOST} connections are shared by both, and the {} requests \
             they may be given together wait there with their timeout running. Keep the judge's \
             concurrency and the requests per endpoint at {BROWSER_PER_HOST} together, or name \
             the judge's server under another host name.",
            j.base_url,
            e.base_url,
            j.limit + e.limit
        ));
    }
    (!notes.is_empty()).then(|| notes.join(" "))
}

/// How a request sent to a replica ended, as far as the replica's health goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An answer came (any HTTP status): the replica is there.
    Answered,
    /// No answer: a network error or a timeout.
    Unreachable,
    /// Stopped by the page; says nothing of the replica.
    Cancelled,
}

impl Outcome {
    pub fn of<T>(result: &Result<T, ChatError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Answered,
            Err(e) => match e.root() {
                ChatError::Cancelled => Outcome::Cancelled,
                ChatError::Network(_) | ChatError::Timeout => Outcome::Unreachable,
                _ => Outcome::Answered,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Health {
    In,
    /// Taken out until this time (ms).
    Out(f64),
    /// Back after being out: one request at a time until one is answered.
    Trial,
}

#[derive(Debug, Clone)]
struct Slot {
    limit: usize,
    in_flight: usize,
    failures: u32,
    health: Health,
}

/// Which replica a request goes to: least-loaded first, each within its limit; replicas that
/// stopped answering out for a while. Plain bookkeeping, no I/O; times in milliseconds.
#[derive(Debug, Clone)]
pub struct Scheduler {
    slots: Vec<Slot>,
}

impl Scheduler {
    /// One slot per limit (each at least 1), in the order given.
    pub fn new(limits: impl IntoIterator<Item = usize>) -> Self {
        let slots: Vec<Slot> = limits
            .into_iter()
            .map(|limit| Slot {
                limit: limit.max(1),
                in_flight: 0,
                failures: 0,
                health: Health::In,
            })
            .collect();
        assert!(!slots.is_empty(), "a scheduler needs at least one endpoint");
        Scheduler { slots }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Requests the replicas take at once when all are in.
    pub fn capacity(&self) -> usize {
        self.slots.iter().map(|s| s.limit).sum()
    }

    pub fn in_flight(&self, i: usize) -> usize {
        self.slots[i].in_flight
    }

    pub fn total_in_flight(&self) -> usize {
        self.slots.iter().map(|s| s.in_flight).sum()
    }

    /// Whether replica `i` is out at `now`.
    pub fn is_out(&self, i: usize, now: f64) -> bool {
        matches!(self.slots[i].health, Health::Out(until) if until > now)
    }

    /// Returns the replicas whose time out is over (at `now`) on trial.
    fn bring_back(&mut self, now: f64) {
        for s in &mut self.slots {
            if matches!(s.health, Health::Out(until) if until <= now) {
                s.health = Health::Trial;
            }
        }
    }

    /// The replica the next request goes to, counted as in flight there; `None` when every
    /// replica that may be used is at its limit (the request waits for a [`Self::release`]).
    pub fn acquire(&mut self, now: f64) -> Option<usize> {
        self.bring_back(now);
        let all_out = self
            .slots
            .iter()
            .all(|s| matches!(s.health, Health::Out(_)));
        let room = |s: &Slot| match s.health {
            Health::In => s.limit,
            Health::Trial => 1,
            // Out, but every replica is: as if it were in (a lone endpoint is never out).
            Health::Out(_) if all_out => s.limit,
            Health::Out(_) => 0,
        };
        let best = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.in_flight < room(s))
            // Least-loaded: the lowest share of its limit in use, the first listed on a tie.
            .min_by(|(_, a), (_, b)| (a.in_flight * b.limit).cmp(&(b.in_flight * a.limit)))
            .map(|(i, _)| i)?;
        self.slots[best].in_flight += 1;
        Some(best)
    }

    /// Replica `i` finished a request with `outcome` at `now`.
    pub fn release(&mut self, i: usize, outcome: Outcome, now: f64) {
        let others_in = self
            .slots
            .iter()
            .enumerate()
            .any(|(j, s)| j != i && !matches!(s.health, Health::Out(u) if u > now));
        let s = &mut self.slots[i];
        s.in_flight = s.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Cancelled => {}
            Outcome::Answered => {
                s.failures = 0;
                s.health = Health::In;
            }
            Outcome::Unreachable => {
                s.failures = s.failures.saturating_add(1);
                if others_in {
                    let wait = FIRST_OUT_MS * 2f64.powi(s.failures.min(16) as i32 - 1);
                    s.health = Health::Out(now + wait.min(MAX_OUT_MS));
                }
            }
        }
    }
}

struct Shared {
    scheduler: RefCell<Scheduler>,
    waiting: RefCell<VecDeque<oneshot::Sender<()>>>,
    cancelled: Cell<bool>,
    peak: Cell<usize>,
}

impl Shared {
    /// Wakes the first request still waiting.
    fn wake_one(&self) {
        let mut waiting = self.waiting.borrow_mut();
        while let Some(tx) = waiting.pop_front() {
            if tx.send(()).is_ok() {
                return;
            }
        }
    }
}

/// Stops the requests waiting in a [`Pooled`] queue: they end as cancelled without being sent.
#[derive(Clone)]
pub struct QueueCanceller(Rc<Shared>);

impl QueueCanceller {
    pub fn cancel(&self) {
        self.0.cancelled.set(true);
        // Dropping the senders wakes every waiting request, which then sees the flag.
        self.0.waiting.borrow_mut().clear();
    }
}

/// A chat client over replicas: each request waits in the page's queue until a replica has
/// room, then goes to the least-loaded one (see [`Scheduler`]).
pub struct Pooled<C> {
    clients: Vec<C>,
    shared: Rc<Shared>,
    now: Rc<dyn Fn() -> f64>,
}

/// Gives a replica's slot back when a request ends, also when its future is dropped.
struct Held<'a> {
    shared: &'a Shared,
    now: &'a dyn Fn() -> f64,
    index: usize,
    outcome: Outcome,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.shared
            .scheduler
            .borrow_mut()
            .release(self.index, self.outcome, (self.now)());
        self.shared.wake_one();
    }
}

impl<C: ChatClient> Pooled<C> {
    /// `replicas` pairs each client with its limit; `now` is the clock in milliseconds.
    pub fn new(replicas: Vec<(C, usize)>, now: Rc<dyn Fn() -> f64>) -> Self {
        let (clients, limits): (Vec<C>, Vec<usize>) = replicas.into_iter().unzip();
        Pooled {
            clients,
            shared: Rc::new(Shared {
                scheduler: RefCell::new(Scheduler::new(limits)),
                waiting: RefCell::new(VecDeque::new()),
                cancelled: Cell::new(false),
                peak: Cell::new(0),
            }),
            now,
        }
    }

    pub fn canceller(&self) -> QueueCanceller {
        QueueCanceller(self.shared.clone())
    }

    pub fn clients(&self) -> &[C] {
        &self.clients
    }

    /// The most requests that were in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak.get()
    }

    /// Requests waiting in the queue now.
    pub fn waiting(&self) -> usize {
        self.shared.waiting.borrow().len()
    }
}

impl<C: ChatClient> ChatClient for Pooled<C> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
        let shared = &*self.shared;
        let index = loop {
            if shared.cancelled.get() {
                return Err(ChatError::Cancelled);
            }
            let got = shared.scheduler.borrow_mut().acquire((self.now)());
            if let Some(i) = got {
                break i;
            }
            let (tx, rx) = oneshot::channel();
            shared.waiting.borrow_mut().push_back(tx);
            // Woken by a release (a slot may be free) or by cancelling (the sender dropped).
            let _ = rx.await;
        };
        let total = shared.scheduler.borrow().total_in_flight();
        shared.peak.set(shared.peak.get().max(total));
        let mut held = Held {
            shared,
            now: &*self.now,
            index,
            outcome: Outcome::Cancelled,
        };
        let result = self.clients[index].complete(request).await;
        held.outcome = Outcome::of(&result);
        drop(held);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::exchange::{exchange_key, request_key, CachingClient, ExchangeLog};
    use crate::llm::openai::ChatMessage;
    use crate::llm::testing::ScriptedClient;
    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;

    fn replicas(limits: &[usize]) -> Vec<Replica> {
        limits
            .iter()
            .enumerate()
            .map(|(i, &limit)| Replica {
                base_url: format!("http://127.0.0.{}:8080/v1", i + 1),
                limit,
            })
            .collect()
    }

    #[test]
    fn origins_are_what_the_browser_counts_connections_by() {
        assert_eq!(
            origin_of(" HTTP://LocalHost:11434/v1/ ").as_deref(),
            Some("http://localhost:11434")
        );
        assert_eq!(
            origin_of("https://u:p@h.example/v1").as_deref(),
            Some("https://h.example:443")
        );
        assert_eq!(
            origin_of("http://[::1]/v1").as_deref(),
            Some("http://[::1]:80")
        );
        assert_eq!(origin_of("ftp://h/v1"), None);
        assert_eq!(origin_of("localhost:8080"), None);
        assert_eq!(origin_of("http:///v1"), None);
    }

    #[test]
    fn replica_lists_parse_with_their_limits_and_errors_name_the_line() {
        let text = "http://localhost:8080/v1/\n\n  http://127.0.0.1:8080/v1 12\n";
        let parsed = parse_replicas(text, 6).unwrap();
        assert_eq!(
            parsed,
            vec![
                Replica {
                    base_url: "http://localhost:8080/v1".into(),
                    limit: 6
                },
                Replica {
                    base_url: "http://127.0.0.1:8080/v1".into(),
                    limit: 12
                },
            ]
        );
        assert_eq!(
            parse_replicas(&replicas_text(&parsed, 6), 6).unwrap(),
            parsed
        );
        assert_eq!(
            replicas_text(&parsed, 6),
            "http://localhost:8080/v1\nhttp://127.0.0.1:8080/v1 12"
        );

        let errors = parse_replicas(
            "http://a/v1 0\nlocalhost:1\nhttp://b/v1 3 4\nhttp://c/v1 x",
            6,
        )
        .unwrap_err();
        assert_eq!(errors.len(), 4);
        assert!(errors[0].contains("line 1"), "{errors:?}");
        assert!(errors[1].contains("line 2") && errors[1].contains("http://"));
        assert!(errors[2].contains("line 3"));
        assert!(errors[3].contains("line 4"));
        assert_eq!(parse_replicas("", 6).unwrap(), vec![]);
    }

    #[test]
    fn endpoints_on_one_host_and_port_are_refused() {
        let mut list = replicas(&[6, 6]);
        assert!(check_distinct(&list).is_ok());
        list.push(Replica {
            base_url: "http://127.0.0.1:8080/other/v1".into(),
            limit: 6,
        });
        let error = check_distinct(&list).unwrap_err();
        assert!(error.contains("same host and port"), "{error}");
        // Another host name for the same server counts as another host.
        list[2].base_url = "http://localhost:8080/v1".into();
        assert!(check_distinct(&list).is_ok());
    }

    #[test]
    fn the_note_says_when_the_browser_opens_fewer_connections_than_asked() {
        assert_eq!(connection_note(6, &replicas(&[6]), None), None);
        let one = connection_note(16, &replicas(&[6]), None).unwrap();
        assert!(
            one.contains("Concurrency 16") && one.contains(" 6 requests"),
            "{one}"
        );
        assert!(
            one.contains("HTTP/1.1") && one.contains("replicas"),
            "{one}"
        );
        assert_eq!(connection_note(16, &replicas(&[6, 6, 6]), None), None);
        let three = connection_note(20, &replicas(&[6, 6, 6]), None).unwrap();
        assert!(three.contains("18 requests the 3 endpoints"), "{three}");
        let wide = connection_note(10, &replicas(&[10]), None).unwrap();
        assert!(
            wide.contains("HTTP/2") && !wide.contains("Concurrency"),
            "{wide}"
        );
        // The judge on its own port has connections of its own; on the host and port of an
        // endpoint it shares them, which matters only past six together.
        let judge = |url: &str, limit| Replica {
            base_url: url.into(),
            limit,
        };
        let eps = vec![judge("http://localhost:8080/v1", 4)];
        let apart = judge("http://localhost:8081/v1", 4);
        assert_eq!(connection_note(4, &eps, Some(&apart)), None);
        let within = judge("http://LOCALHOST:8080/judge/v1", 2);
        assert_eq!(connection_note(4, &eps, Some(&within)), None);
        // The model in the page: one at a time, and no word of HTTP.
        let page = vec![judge("inpage://smol.gguf", 1)];
        assert_eq!(connection_note(1, &page, None), None);
        let queued = connection_note(4, &page, None).unwrap();
        assert!(
            queued.contains("one request at a time") && !queued.contains("HTTP"),
            "{queued}"
        );
        let past = judge("http://localhost:8080/judge/v1", 4);
        let shared = connection_note(4, &eps, Some(&past)).unwrap();
        assert!(
            shared.contains("same host and port as http://localhost:8080/v1")
                && shared.contains("the 8 requests"),
            "{shared}"
        );
    }

    #[test]
    fn requests_go_to_the_least_loaded_replica_within_its_limit() {
        let mut s = Scheduler::new([2, 4]);
        assert_eq!(s.capacity(), 6);
        let order: Vec<Option<usize>> = (0..7).map(|_| s.acquire(0.0)).collect();
        // 0/2 vs 0/4 → first; 1/2 vs 0/4 → second; 1/2 vs 1/4 → second; 1/2 vs 2/4 → first
        // (tie, first listed); then the second until full.
        assert_eq!(
            order,
            vec![Some(0), Some(1), Some(1), Some(0), Some(1), Some(1), None]
        );
        assert_eq!(s.total_in_flight(), 6);
        s.release(0, Outcome::Answered, 1.0);
        assert_eq!(s.acquire(1.0), Some(0));
        assert_eq!(s.acquire(1.0), None);
    }

    #[test]
    fn a_replica_that_stops_answering_is_taken_out_then_tried_again() {
        let mut s = Scheduler::new([2, 2]);
        assert_eq!(s.acquire(0.0), Some(0));
        s.release(0, Outcome::Unreachable, 100.0);
        assert!(s.is_out(0, 100.0));
        // While out, everything goes to the other one, up to its limit.
        assert_eq!(s.acquire(200.0), Some(1));
        assert_eq!(s.acquire(200.0), Some(1));
        assert_eq!(s.acquire(200.0), None);
        // Back after FIRST_OUT_MS, on trial: one request at a time.
        let back = 100.0 + FIRST_OUT_MS;
        assert!(!s.is_out(0, back));
        assert_eq!(s.acquire(back), Some(0));
        assert_eq!(s.acquire(back), None);
        // Failing again doubles the time out.
        s.release(0, Outcome::Unreachable, back);
        assert!(s.is_out(0, back + 2.0 * FIRST_OUT_MS - 1.0));
        let again = back + 2.0 * FIRST_OUT_MS;
        assert_eq!(s.acquire(again), Some(0));
        // An answer brings it fully back.
        s.release(0, Outcome::Answered, again);
        assert_eq!(s.acquire(again), Some(0));
        assert_eq!(s.acquire(again), Some(0));
        assert_eq!(s.acquire(again), None);
        // A cancelled request says nothing of the replica's health.
        s.release(1, Outcome::Cancelled, again);
        assert!(!s.is_out(1, again));
    }

    #[test]
    fn the_time_out_has_a_ceiling() {
        let mut s = Scheduler::new([1, 1]);
        let mut now = 0.0;
        let mut expected = FIRST_OUT_MS;
        for _ in 0..30 {
            assert_eq!(s.acquire(now), Some(0));
            s.release(0, Outcome::Unreachable, now);
            assert!(s.is_out(0, now + expected - 1.0));
            assert!(!s.is_out(0, now + expected));
            // The other one takes the traffic meanwhile.
            assert_eq!(s.acquire(now + 1.0), Some(1));
            s.release(1, Outcome::Answered, now + 1.0);
            now += expected;
            expected = (expected * 2.0).min(MAX_OUT_MS);
        }
        assert_eq!(expected, MAX_OUT_MS);
    }

    #[test]
    fn a_lone_endpoint_is_never_taken_out() {
        let mut s = Scheduler::new([3]);
        for _ in 0..3 {
            assert_eq!(s.acquire(0.0), Some(0));
        }
        for _ in 0..3 {
            s.release(0, Outcome::Unreachable, 0.0);
        }
        assert!(!s.is_out(0, 0.0));
        assert_eq!(s.acquire(0.0), Some(0));
        // Two replicas both failing: the last one in stays in.
        let mut s = Scheduler::new([1, 1]);
        assert_eq!(s.acquire(0.0), Some(0));
        assert_eq!(s.acquire(0.0), Some(1));
        s.release(0, Outcome::Unreachable, 0.0);
        s.release(1, Outcome::Unreachable, 0.0);
        assert!(s.is_out(0, 0.0) && !s.is_out(1, 0.0));
        assert_eq!(s.acquire(0.0), Some(1));
    }

    type Answer = oneshot::Sender<Result<ChatResponse, ChatError>>;

    /// A client whose answers wait until the test lets them go.
    #[derive(Clone, Default)]
    struct Gate {
        held: Rc<RefCell<Vec<Answer>>>,
        sent: Rc<Cell<usize>>,
    }

    impl ChatClient for Gate {
        async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
            self.sent.set(self.sent.get() + 1);
            let _ = request;
            let (tx, rx) = oneshot::channel();
            self.held.borrow_mut().push(tx);
            rx.await.unwrap_or(Err(ChatError::Cancelled))
        }
    }

    impl Gate {
        fn answer_all(&self, with: impl Fn() -> Result<ChatResponse, ChatError>) -> usize {
            let held = std::mem::take(&mut *self.held.borrow_mut());
            let n = held.len();
            for tx in held {
                let _ = tx.send(with());
            }
            n
        }
    }

    fn ask(text: &str) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![ChatMessage::user(text)],
            temperature: 0.0,
            max_tokens: 10,
            response_format: None,
        }
    }

    fn ok() -> Result<ChatResponse, ChatError> {
        Ok(ChatResponse::from_text("{}", Default::default()))
    }

    fn clock() -> (Rc<Cell<f64>>, Rc<dyn Fn() -> f64>) {
        let t = Rc::new(Cell::new(0.0));
        let c = t.clone();
        (t, Rc::new(move || c.get()))
    }

    #[test]
    fn the_queue_holds_requests_past_the_limits_and_sends_them_as_slots_free() {
        let gates = [Gate::default(), Gate::default(), Gate::default()];
        let (_, now) = clock();
        let pooled = Rc::new(Pooled::new(
            gates.iter().map(|g| (g.clone(), 2)).collect(),
            now,
        ));
        let mut pool = LocalPool::new();
        let done = Rc::new(Cell::new(0));
        for i in 0..10 {
            let (p, d) = (pooled.clone(), done.clone());
            pool.spawner()
                .spawn_local(async move {
                    assert!(p.complete(&ask(&format!("q{i}"))).await.is_ok());
                    d.set(d.get() + 1);
                })
                .unwrap();
        }
        pool.run_until_stalled();
        // Two on each replica, four in the page's queue: none sent past a limit.
        assert_eq!(
            gates.iter().map(|g| g.sent.get()).collect::<Vec<_>>(),
            [2, 2, 2]
        );
        assert_eq!(pooled.waiting(), 4);
        assert_eq!(gates[1].answer_all(ok), 2);
        pool.run_until_stalled();
        assert_eq!(done.get(), 2);
        assert_eq!(gates[1].sent.get(), 4);
        for _ in 0..3 {
            for g in &gates {
                g.answer_all(ok);
            }
            pool.run_until_stalled();
        }
        assert_eq!(done.get(), 10);
        assert_eq!(pooled.peak_in_flight(), 6);
        assert_eq!(gates.iter().map(|g| g.sent.get()).sum::<usize>(), 10);
    }

    #[test]
    fn cancelling_drops_queued_requests_without_sending_them() {
        let gate = Gate::default();
        let (_, now) = clock();
        let pooled = Rc::new(Pooled::new(vec![(gate.clone(), 2)], now));
        let canceller = pooled.canceller();
        let mut pool = LocalPool::new();
        let errors = Rc::new(RefCell::new(Vec::new()));
        for i in 0..5 {
            let (p, e) = (pooled.clone(), errors.clone());
            pool.spawner()
                .spawn_local(async move {
                    if let Err(err) = p.complete(&ask(&format!("q{i}"))).await {
                        e.borrow_mut().push(err);
                    }
                })
                .unwrap();
        }
        pool.run_until_stalled();
        assert_eq!(gate.sent.get(), 2);
        canceller.cancel();
        pool.run_until_stalled();
        // The three queued ones end as cancelled, never sent; the two on the wire go on
        // until the client's own cancelling ends them.
        assert_eq!(errors.borrow().len(), 3);
        assert!(errors.borrow().iter().all(|e| *e == ChatError::Cancelled));
        assert_eq!(gate.sent.get(), 2);
        gate.answer_all(|| Err(ChatError::Cancelled));
        pool.run_until_stalled();
        assert_eq!(errors.borrow().len(), 5);
        // Later requests are not sent either.
        let later = futures::executor::block_on(pooled.complete(&ask("late")));
        assert_eq!(later.unwrap_err(), ChatError::Cancelled);
        assert_eq!(gate.sent.get(), 2);
    }

    #[test]
    fn a_replica_gone_away_is_skipped_and_the_others_answer() {
        let up = ScriptedClient::from_fn(|_| Ok("{}".into()));
        let down = ScriptedClient::from_fn(|_| Err(ChatError::Network("refused".into())));
        let (t, now) = clock();
        let pooled = Pooled::new(vec![(down, 6), (up, 6)], now);
        // The first request finds the dead one (first listed), which is then out.
        let first = futures::executor::block_on(pooled.complete(&ask("a")));
        assert!(matches!(first, Err(ChatError::Network(_))));
        for i in 0..20 {
            t.set(f64::from(i));
            assert!(futures::executor::block_on(pooled.complete(&ask("b"))).is_ok());
        }
        assert_eq!(pooled.clients()[0].request_count(), 1);
        assert_eq!(pooled.clients()[1].request_count(), 20);
        // Tried again once its time out is over.
        t.set(FIRST_OUT_MS + 1.0);
        let _ = futures::executor::block_on(pooled.complete(&ask("c")));
        assert_eq!(pooled.clients()[0].request_count(), 2);
    }

    #[test]
    fn exchange_keys_do_not_depend_on_the_replica_that_answered() {
        let first = "http://127.0.0.1:8080/v1";
        let answers = |tag: &'static str| {
            ScriptedClient::from_fn(move |_| Ok(format!("{{\"from\":\"{tag}\"}}")))
        };
        let (_, now) = clock();
        let log = ExchangeLog::new();
        // Only the second replica is reachable: every answer comes from it.
        let down = ScriptedClient::from_fn(|_| Err(ChatError::Network("refused".into())));
        let pooled = Pooled::new(vec![(down, 1), (answers("b"), 1)], now.clone());
        let caching = CachingClient::new(pooled, log.clone(), first);
        let _ = futures::executor::block_on(caching.complete(&ask("x")));
        let got = futures::executor::block_on(caching.complete(&ask("x"))).unwrap();
        assert!(got.text().unwrap().contains("\"b\""));
        let key = request_key(first, &ask("x"));
        assert!(log.get(&exchange_key(&key, 1)).is_some());
        // Replayed with the replicas in another order (the other one answering now), the
        // logged answer is found under the same key and nothing is sent.
        let replay = CachingClient::new(
            Pooled::new(vec![(answers("a"), 1), (answers("b"), 1)], now),
            log.clone(),
            first,
        );
        let _ = futures::executor::block_on(replay.complete(&ask("x")));
        let again = futures::executor::block_on(replay.complete(&ask("x"))).unwrap();
        assert!(again.delivery.from_log && again.text().unwrap().contains("\"b\""));
        assert_eq!(replay.inner().clients()[0].request_count(), 1);
        assert_eq!(replay.inner().clients()[1].request_count(), 0);
    }
}
