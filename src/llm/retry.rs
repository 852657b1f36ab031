//! Trying a call again when it failed for a reason that passes.
//!
//! [`RetryingClient`] wraps any [`ChatClient`]. A call that fails with a network error, a
//! timeout, HTTP 408, 429 or 5xx ([`ChatError::is_transient`]) is tried again after a pause,
//! up to [`RetryPolicy::max_attempts`] tries in all:
//! - the pause before retry n (1-based) is `min(max_delay, base_delay × 2^(n-1))`, shortened by
//!   a random part of up to `jitter` of it, so that clients started together do not retry in
//!   step;
//! - when the server said how long to wait (`Retry-After`, in seconds or as an HTTP date, see
//!   [`parse_retry_after`]), that wait is used instead, up to `max_retry_after`;
//! - other errors (HTTP 400, 401, 404, 422..., an undecodable body) are not retried: they are
//!   the endpoint's answer, returned with its message; a cancelled call is never retried;
//! - after the last try the error is [`ChatError::Retried`] with `exhausted` set, which reads
//!   `gave up after N attempts: <last error>`.
//!
//! The pause itself is injected ([`Sleep`]): the browser waits on a timer, tests on a fake
//! clock that records the pauses. The random part comes from a small seeded generator.
//!
//! A run's calls share one [`RunGuard`]: it counts the requests as they are sent (retries
//! included, the moment they go out), and holds every request that has not gone out yet once
//! the user stops the run or one call gives up on an endpoint that is away. A held call fails
//! with [`ChatError::NotSent`] without reaching the endpoint, so a run pauses at the first call
//! that gives up instead of letting every trajectory try its next attempt with a new round of
//! retries.

use super::client::{ChatClient, ChatError};
use super::openai::{ChatRequest, ChatResponse};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

/// How often and how patiently a call is tried.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryPolicy {
    /// Tries per call, the first included (1: never retry).
    pub max_attempts: u32,
    /// The pause before the first retry, in milliseconds; it doubles on each further retry.
    pub base_delay_ms: u64,
    /// The longest backoff pause, in milliseconds.
    pub max_delay_ms: u64,
    /// The share of each backoff pause that is random, 0 to 1: the pause is
    /// `d × (1 − jitter × u)` for a uniform u in [0, 1).
    pub jitter: f64,
    /// The longest wait a server's `Retry-After` may impose, in milliseconds.
    pub max_retry_after_ms: u64,
}

impl Default for RetryPolicy {
    /// Four tries; pauses of about 1, 2 and 4 s (half of each random), at most 30 s; a
    /// server's `Retry-After` honoured up to a minute.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay_ms: 1_000,
            max_delay_ms: 30_000,
            jitter: 0.5,
            max_retry_after_ms: 60_000,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Whether a call that failed with `error` may be tried again (retries left aside).
    pub fn should_retry(&self, error: &ChatError) -> bool {
        error.is_transient() && !error.is_cancelled() && !error.is_not_sent()
    }

    /// The backoff pause before retry `retry` (1-based), with the random draw `unit` in
    /// [0, 1).
    pub fn backoff_ms(&self, retry: u32, unit: f64) -> u64 {
        let exponent = retry.saturating_sub(1).min(62);
        let full = self
            .base_delay_ms
            .saturating_mul(1u64 << exponent)
            .min(self.max_delay_ms);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        (full as f64 * (1.0 - jitter * unit)).round() as u64
    }

    /// The pause before retry `retry` after `error`: the server's `Retry-After` when it sent
    /// one (capped), else the backoff.
    pub fn delay_ms(&self, retry: u32, error: &ChatError, unit: f64) -> u64 {
        match error.retry_after_ms() {
            Some(ms) => ms.min(self.max_retry_after_ms),
            None => self.backoff_ms(retry, unit),
        }
    }
}

/// Waits a number of milliseconds. Implemented by any `Fn(u64) -> impl Future<Output = ()>`.
pub trait Sleep {
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;
}

impl<F, Fut> Sleep for F
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        self(ms)
    }
}

/// A clock for tests: sleeping returns at once and records the pause. Clones share the
/// record.
#[derive(Debug, Clone, Default)]
pub struct FakeClock(Rc<RefCell<Vec<u64>>>);

impl FakeClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every pause asked for so far, in milliseconds, in order.
    pub fn pauses(&self) -> Vec<u64> {
        self.0.borrow().clone()
    }

    /// The sum of the pauses: the time the calls would have waited.
    pub fn waited_ms(&self) -> u64 {
        self.0.borrow().iter().sum()
    }
}

impl Sleep for FakeClock {
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        self.0.borrow_mut().push(ms);
        std::future::ready(())
    }
}

/// SplitMix64: a tiny, well-mixed generator, plenty for spreading pauses.
fn splitmix64(state: &Cell<u64>) -> u64 {
    let s = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
    state.set(s);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Debug, Default)]
struct GuardState {
    stopped: bool,
    /// The error of the call that gave up on an unreachable endpoint.
    gave_up: Option<ChatError>,
    sent: u64,
    retries: u64,
}

/// What a [`RunGuard`] has counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SentCounts {
    /// Requests that went out, retries included.
    pub sent: u64,
    /// Of those, the retries.
    pub retries: u64,
}

/// The shared state of a run's calls: the requests sent so far and whether new ones may go
/// out. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct RunGuard(Rc<RefCell<GuardState>>);

impl RunGuard {
    pub fn new() -> Self {
        Self::default()
    }

    /// The user stopped the run: no request goes out any more.
    pub fn stop(&self) {
        self.0.borrow_mut().stopped = true;
    }

    pub fn is_stopped(&self) -> bool {
        self.0.borrow().stopped
    }

    /// A call gave up on the endpoint with `error`: hold every request until [`Self::resume`].
    /// The first such error is kept.
    pub fn give_up(&self, error: &ChatError) {
        let mut state = self.0.borrow_mut();
        if state.gave_up.is_none() {
            state.gave_up = Some(error.clone());
        }
    }

    /// The error that made a call give up, while requests are held for it.
    pub fn gave_up(&self) -> Option<ChatError> {
        self.0.borrow().gave_up.clone()
    }

    /// Requests may go out again (the endpoint is back).
    pub fn resume(&self) {
        self.0.borrow_mut().gave_up = None;
    }

    /// Why a request may not go out now: [`ChatError::Cancelled`] after a stop, the error that
    /// paused the run while it is paused.
    pub fn hold(&self) -> Option<ChatError> {
        let state = self.0.borrow();
        if state.stopped {
            Some(ChatError::Cancelled)
        } else {
            state.gave_up.clone()
        }
    }

    /// A request goes out; `retry` when it is a call's second or later try.
    fn sent(&self, retry: bool) {
        let mut state = self.0.borrow_mut();
        state.sent += 1;
        state.retries += u64::from(retry);
    }

    /// The requests sent so far.
    pub fn counts(&self) -> SentCounts {
        let state = self.0.borrow();
        SentCounts {
            sent: state.sent,
            retries: state.retries,
        }
    }
}

/// A client that retries transient failures of `inner`, pausing with `S`.
pub struct RetryingClient<C, S> {
    inner: C,
    policy: RetryPolicy,
    sleep: S,
    rng: Cell<u64>,
    guard: RunGuard,
}

impl<C: ChatClient, S: Sleep> RetryingClient<C, S> {
    /// The jitter generator starts from a fixed seed; see [`Self::with_seed`].
    pub fn new(inner: C, policy: RetryPolicy, sleep: S) -> Self {
        RetryingClient {
            inner,
            policy,
            sleep,
            rng: Cell::new(0x5eed),
            guard: RunGuard::new(),
        }
    }

    /// Shares `guard` with the run's other calls (each client has its own otherwise).
    pub fn with_guard(mut self, guard: RunGuard) -> Self {
        self.guard = guard;
        self
    }

    pub fn guard(&self) -> &RunGuard {
        &self.guard
    }

    /// Seeds the jitter (the browser seeds it from the clock).
    pub fn with_seed(self, seed: u64) -> Self {
        self.rng.set(seed);
        self
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }

    fn unit(&self) -> f64 {
        // 53 random bits: a uniform double in [0, 1).
        (splitmix64(&self.rng) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl<C: ChatClient, S: Sleep> ChatClient for RetryingClient<C, S> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
        let max_attempts = self.policy.max_attempts.max(1);
        let mut retries: u32 = 0;
        let mut attempts: u32 = 0;
        // The error of the last try, once there was one.
        let mut previous: Option<ChatError> = None;
        loop {
            if let Some(held) = self.guard.hold() {
                return Err(match previous {
                    // Held before anything went out: nothing was sent for this call.
                    None => ChatError::NotSent {
                        cause: Box::new(held),
                    },
                    // Held between tries: the call ends with what it has (a stop cancels it).
                    Some(last) => {
                        let last = if held.is_cancelled() { held } else { last };
                        let exhausted = last.is_transient();
                        if retries == 0 {
                            last
                        } else {
                            ChatError::Retried {
                                retries,
                                exhausted,
                                last: Box::new(last),
                            }
                        }
                    }
                });
            }
            attempts += 1;
            if attempts > 1 {
                retries += 1;
            }
            self.guard.sent(attempts > 1);
            let error = match self.inner.complete(request).await {
                Ok(mut response) => {
                    response.delivery.retries += retries;
                    return Ok(response);
                }
                Err(e) => e,
            };
            // A client further in may have retried too: count its tries, keep its last error.
            retries += error.retries();
            let last = match error {
                ChatError::Retried { last, .. } => *last,
                e => e,
            };
            let retryable = self.policy.should_retry(&last);
            if !retryable || attempts >= max_attempts {
                let error = if retries == 0 {
                    last
                } else {
                    ChatError::Retried {
                        retries,
                        exhausted: retryable,
                        last: Box::new(last),
                    }
                };
                if retryable {
                    // The endpoint outlasted the retries: the run's other calls hold.
                    self.guard.give_up(&error);
                }
                return Err(error);
            }
            let pause = self.policy.delay_ms(attempts, &last, self.unit());
            previous = Some(last);
            self.sleep.sleep(pause).await;
        }
    }
}

/// Reads a `Retry-After` header value: a number of seconds (`"120"`; a fraction is accepted)
/// or an HTTP date (`"Sun, 06 Nov 1994 08:49:37 GMT"`, or the obsolete RFC 850 and asctime
/// forms), taken relative to `now_ms` (milliseconds since the Unix epoch). Returns the wait in
/// milliseconds (0 for a date already past), or `None` when the value is neither.
pub fn parse_retry_after(value: &str, now_ms: f64) -> Option<u64> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = v.parse().ok()?;
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        return Some((secs * 1000.0).ceil().min(u64::MAX as f64) as u64);
    }
    let at = parse_http_date(v)?;
    if !now_ms.is_finite() {
        return None;
    }
    Some((at - now_ms).max(0.0).ceil() as u64)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// An HTTP date (RFC 9110 section 5.6.7: IMF-fixdate, RFC 850, asctime) as milliseconds since
/// the Unix epoch. Read leniently: the weekday is ignored, the zone must be GMT or UTC when
/// given.
pub fn parse_http_date(text: &str) -> Option<f64> {
    let mut month = None;
    let mut time = None;
    let mut numbers: Vec<&str> = Vec::new();
    for token in text
        .split(|c: char| c.is_whitespace() || c == ',' || c == '-')
        .filter(|t| !t.is_empty())
    {
        if token.contains(':') {
            if time.is_some() {
                return None;
            }
            let mut parts = token.split(':');
            let mut field = |max: u32| -> Option<u32> {
                let p = parts.next()?;
                if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                p.parse().ok().filter(|v| *v <= max)
            };
            let (h, m, s) = (field(23)?, field(59)?, field(60)?);
            if parts.next().is_some() {
                return None;
            }
            time = Some((h, m, s));
        } else if token.bytes().all(|b| b.is_ascii_digit()) {
            numbers.push(token);
        } else if token.eq_ignore_ascii_case("gmt") || token.eq_ignore_ascii_case("utc") {
            continue;
        } else if let Some(i) = MONTHS.iter().position(|m| token.eq_ignore_ascii_case(m)) {
            if month.is_some() {
                return None;
            }
            month = Some(i as u32 + 1);
        } else if WEEKDAYS
            .iter()
            .any(|d| token.eq_ignore_ascii_case(d) || token.eq_ignore_ascii_case(&d[..3]))
        {
            // The weekday: implied by the date, ignored.
            continue;
        } else {
            return None;
        }
    }
    let (month, (h, mi, s)) = (month?, time?);
    let [day, year] = numbers[..] else {
        return None;
    };
    let day: u32 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let year: i64 = match year.len() {
        // RFC 850's two-digit years: RFC 9110 reads them as the most recent such year; this
        // takes 70–99 as 19xx and 00–69 as 20xx.
        2 => {
            let y: i64 = year.parse().ok()?;
            if y >= 70 {
                1900 + y
            } else {
                2000 + y
            }
        }
        4 => year.parse().ok()?,
        _ => return None,
    };
    if day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s);
    Some(secs as f64 * 1000.0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::openai::{ChatMessage, Usage};
    use crate::llm::testing::ScriptedClient;
    use futures::executor::block_on;

    fn request() -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![ChatMessage::user("hi")],
            temperature: 0.3,
            max_tokens: 10,
            response_format: None,
        }
    }

    fn no_jitter() -> RetryPolicy {
        RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        }
    }

    fn busy(retry_after_ms: Option<u64>) -> ChatError {
        ChatError::Http {
            status: 429,
            message: "Rate limit reached".into(),
            retry_after_ms,
        }
    }

    #[test]
    fn transient_failures_are_retried_with_exponential_backoff() {
        let inner = ScriptedClient::with_replies([
            Err(ChatError::Network("connection refused".into())),
            Err(ChatError::Timeout),
            Err(ChatError::http(503, "overloaded")),
            Ok("fine"),
        ])
        .with_usage(Usage::new(4, 2));
        let clock = FakeClock::new();
        let client = RetryingClient::new(&inner, no_jitter(), clock.clone());
        let response = block_on(client.complete(&request())).unwrap();
        assert_eq!(response.text(), Some("fine"));
        assert_eq!(response.delivery.retries, 3);
        assert_eq!(clock.pauses(), [1_000, 2_000, 4_000]);
        assert_eq!(inner.request_count(), 4);
        assert!(inner.requests().iter().all(|r| *r == request()));
    }

    #[test]
    fn the_first_call_that_gives_up_holds_the_others_and_requests_are_counted_as_sent() {
        let down = ScriptedClient::from_fn(|_| Err(ChatError::Network("refused".into())));
        let guard = RunGuard::new();
        let a = RetryingClient::new(&down, no_jitter(), FakeClock::new()).with_guard(guard.clone());
        let b = RetryingClient::new(&down, no_jitter(), FakeClock::new()).with_guard(guard.clone());
        let error = block_on(a.complete(&request())).unwrap_err();
        assert!(error.to_string().starts_with("gave up after 4 attempts"));
        assert_eq!(
            guard.counts(),
            SentCounts {
                sent: 4,
                retries: 3
            }
        );
        assert!(guard.gave_up().is_some_and(|e| e.is_transient()));
        // The other call is held: nothing goes out, and the error says why.
        let held = block_on(b.complete(&request())).unwrap_err();
        assert!(held.is_not_sent() && held.is_transient(), "{held:?}");
        assert_eq!(
            held.to_string(),
            "not sent: the run was paused (gave up after 4 attempts: network error: refused)"
        );
        assert_eq!(down.request_count(), 4);
        assert_eq!(guard.counts().sent, 4);
        // Back: requests go out again.
        guard.resume();
        let up = ScriptedClient::with_replies([Ok("fine")]);
        let c = RetryingClient::new(&up, no_jitter(), FakeClock::new()).with_guard(guard.clone());
        assert!(block_on(c.complete(&request())).is_ok());
        assert_eq!(
            guard.counts(),
            SentCounts {
                sent: 5,
                retries: 3
            }
        );
        // A stop holds too, as a cancellation.
        guard.stop();
        let stopped = block_on(c.complete(&request())).unwrap_err();
        assert!(stopped.is_not_sent() && stopped.is_cancelled());
        assert_eq!(stopped.to_string(), "not sent: the run was stopped");
    }

    #[test]
    fn a_stop_between_tries_ends_the_call_as_cancelled_without_another_request() {
        let inner = ScriptedClient::from_fn(|_| Err(ChatError::Timeout));
        let guard = RunGuard::new();
        let stop = guard.clone();
        let sleep = move |_ms: u64| {
            stop.stop();
            std::future::ready(())
        };
        let client = RetryingClient::new(&inner, no_jitter(), sleep).with_guard(guard.clone());
        let error = block_on(client.complete(&request())).unwrap_err();
        assert!(error.is_cancelled() && !error.is_not_sent(), "{error:?}");
        assert_eq!(inner.request_count(), 1);
        assert_eq!(
            guard.counts(),
            SentCounts {
                sent: 1,
                retries: 0
            }
        );
    }

    #[test]
    fn gives_up_after_the_last_attempt_with_the_last_error() {
        let inner = ScriptedClient::with_replies(
            (0..5).map(|i| Err::<&str, _>(ChatError::http(500 + i, "down"))),
        );
        let clock = FakeClock::new();
        let client = RetryingClient::new(&inner, no_jitter(), clock.clone());
        let error = block_on(client.complete(&request())).unwrap_err();
        assert_eq!(
            error.to_string(),
            "gave up after 4 attempts: HTTP 503: down"
        );
        assert_eq!(error.retries(), 3);
        assert!(error.is_transient());
        assert_eq!(inner.request_count(), 4);
        assert_eq!(inner.remaining(), 1);
        assert_eq!(clock.pauses().len(), 3);
    }

    #[test]
    fn client_errors_are_not_retried_and_keep_the_endpoint_message() {
        for status in [400, 401, 403, 404, 422] {
            let inner =
                ScriptedClient::with_replies([Err::<&str, _>(ChatError::http(status, "why"))]);
            let clock = FakeClock::new();
            let client = RetryingClient::new(&inner, no_jitter(), clock.clone());
            let error = block_on(client.complete(&request())).unwrap_err();
            assert_eq!(error, ChatError::http(status, "why"));
            assert_eq!(inner.request_count(), 1);
            assert!(clock.pauses().is_empty());
        }
        let inner = ScriptedClient::with_replies([Err::<&str, _>(ChatError::Decode("x".into()))]);
        let client = RetryingClient::new(&inner, no_jitter(), FakeClock::new());
        assert!(matches!(
            block_on(client.complete(&request())),
            Err(ChatError::Decode(_))
        ));
    }

    #[test]
    fn a_lasting_error_after_retries_says_how_many() {
        let inner = ScriptedClient::with_replies([
            Err::<&str, _>(ChatError::http(502, "bad gateway")),
            Err(ChatError::http(401, "Incorrect API key")),
        ]);
        let client = RetryingClient::new(&inner, no_jitter(), FakeClock::new());
        let error = block_on(client.complete(&request())).unwrap_err();
        assert_eq!(error.root(), &ChatError::http(401, "Incorrect API key"));
        assert_eq!(error.retries(), 1);
        assert!(!error.is_transient());
        assert_eq!(
            error.to_string(),
            "HTTP 401: Incorrect API key (after 1 retry)"
        );
    }

    #[test]
    fn cancellation_is_never_retried() {
        let inner = ScriptedClient::with_replies([Err::<&str, _>(ChatError::Cancelled), Ok("x")]);
        let clock = FakeClock::new();
        let client = RetryingClient::new(&inner, no_jitter(), clock.clone());
        assert_eq!(
            block_on(client.complete(&request())).unwrap_err(),
            ChatError::Cancelled
        );
        assert_eq!(inner.request_count(), 1);

        // Cancelled while waiting to retry: the next try reports it, and that is the end.
        let inner = ScriptedClient::with_replies([
            Err::<&str, _>(ChatError::Timeout),
            Err(ChatError::Cancelled),
            Ok("x"),
        ]);
        let client = RetryingClient::new(&inner, no_jitter(), clock.clone());
        let error = block_on(client.complete(&request())).unwrap_err();
        assert!(error.is_cancelled());
        assert_eq!(inner.request_count(), 2);
    }

    #[test]
    fn retry_after_is_honoured_within_its_cap() {
        let inner = ScriptedClient::with_replies([
            Err(busy(Some(1_000))),
            Err(busy(Some(600_000))),
            Err(busy(None)),
            Ok("ok"),
        ]);
        let clock = FakeClock::new();
        let client = RetryingClient::new(&inner, no_jitter(), clock.clone());
        let response = block_on(client.complete(&request())).unwrap();
        assert_eq!(response.delivery.retries, 3);
        // The server's 1 s; its 10 minutes capped at one; then the backoff of the third retry.
        assert_eq!(clock.pauses(), [1_000, 60_000, 4_000]);
    }

    #[test]
    fn jitter_shortens_pauses_within_bounds_and_follows_the_seed() {
        let policy = RetryPolicy::default();
        let pauses = |seed| {
            let inner =
                ScriptedClient::with_replies((0..4).map(|_| Err::<&str, _>(ChatError::Timeout)));
            let clock = FakeClock::new();
            let client = RetryingClient::new(&inner, policy, clock.clone()).with_seed(seed);
            let _ = block_on(client.complete(&request()));
            clock.pauses()
        };
        let a = pauses(1);
        assert_eq!(a.len(), 3);
        for (i, p) in a.iter().enumerate() {
            let full = 1_000u64 << i;
            assert!((full / 2..=full).contains(p), "pause {i}: {p}");
        }
        assert_eq!(a, pauses(1), "the same seed gives the same pauses");
        assert_ne!(a, pauses(2), "another seed spreads them differently");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = no_jitter();
        let steps: Vec<u64> = (1..=7).map(|n| p.backoff_ms(n, 0.5)).collect();
        assert_eq!(steps, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        assert_eq!(p.backoff_ms(200, 0.0), 30_000);
        let half = RetryPolicy::default();
        assert_eq!(half.backoff_ms(1, 0.0), 1_000);
        assert_eq!(half.backoff_ms(1, 0.5), 750);
        assert_eq!(half.backoff_ms(1, 0.999_999), 500);
        assert_eq!(half.backoff_ms(1, f64::NAN), 1_000);
    }

    #[test]
    fn one_attempt_means_no_retry() {
        let inner = ScriptedClient::with_replies([Err::<&str, _>(ChatError::Timeout), Ok("x")]);
        let client = RetryingClient::new(&inner, RetryPolicy::never(), FakeClock::new());
        let error = block_on(client.complete(&request())).unwrap_err();
        assert_eq!(error, ChatError::Timeout);
        assert_eq!(inner.request_count(), 1);
    }

    #[test]
    fn retry_after_values() {
        // 2026-11-22T15:30:05Z.
        let now = 1_795_361_405_000.0;
        assert_eq!(parse_retry_after("1", now), Some(1_000));
        assert_eq!(parse_retry_after(" 120 ", now), Some(120_000));
        assert_eq!(parse_retry_after("0", now), Some(0));
        assert_eq!(parse_retry_after("1.5", now), Some(1_500));
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 15:30:35 GMT", now),
            Some(30_000)
        );
        assert_eq!(
            parse_retry_after("Sunday, 22-Nov-26 15:31:05 GMT", now),
            Some(60_000)
        );
        assert_eq!(
            parse_retry_after("Sun Nov 22 15:30:06 2026", now),
            Some(1_000)
        );
        // A date already past: no wait.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(0)
        );
        for bad in [
            "",
            "soon",
            "-5",
            "1e3",
            "Sun, 31 Feb 2026 10:00:00 GMT",
            "Sun, 22 Nov 2026 25:00:00 GMT",
            "Sun, 22 Nov 2026 15:30:35 CET",
            "Sun, 22 Foo 2026 15:30:35 GMT",
            "22 Nov 15:30:35 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn http_dates_are_utc_epoch_times() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0.0));
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777_000.0)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400_000.0)
        );
        assert_eq!(parse_http_date("Wed, 29 Feb 2001 00:00:00 GMT"), None);
    }
}
