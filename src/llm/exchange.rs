//! The exchange log: every completed chat response, under a stable key of its request, so that
//! a run taken up again (after a stop, a pause or a reload) does not pay twice for an answer it
//! already has.
//!
//! The request key ([`request_key`]) is the SHA-256, in hex, of a canonical serialization
//! ([`canonical_request`]) of what decides the answer: the endpoint's base URL, the model, the
//! messages, the temperature, `max_tokens` and the response format. The canonical form is
//! compact JSON with object keys sorted, so that it depends on values only, never on the order
//! fields were built in.
//!
//! The same request can be sent more than once on purpose: Algorithm 1's relabel retries at
//! temperature 0.7 are identical requests that must each get a fresh sample. So the log keys
//! an answer by request key *and occurrence*: the n-th time one client (one run) sends a
//! request, it gets the n-th answer recorded for it ([`exchange_key`]). A run replaying the same
//! trajectories thus gets the same answers in the same order, and asks the endpoint only for
//! what it never answered.
//!
//! [`ExchangeLog`] is a shared handle (`Rc<RefCell<…>>` inside): clones see the same log. The
//! page keeps one; [`CachingClient`] answers from it and records into it; persistence takes
//! what is new with [`ExchangeLog::take_new`] and puts back what storage held with
//! [`ExchangeLog::insert_loaded`].

use super::client::{ChatClient, ChatError};
use super::diagnose::normalize_base_url;
use super::openai::{ChatRequest, ChatResponse, Delivery};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Names the canonical form; a change of form changes every key.
pub const KEY_VERSION: &str = "agenther-exchange-1";

/// The canonical serialization a request key hashes: compact JSON, object keys sorted, of
/// `[KEY_VERSION, base_url, model, [[role, content], …], temperature, max_tokens,
/// response_format or null]`. The base URL is normalized as the client normalizes it (trimmed,
/// no trailing `/`).
pub fn canonical_request(base_url: &str, request: &ChatRequest) -> String {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| json!([m.role, m.content]))
        .collect();
    let format = request.response_format.as_ref().map_or(Value::Null, |f| {
        serde_json::to_value(f).unwrap_or(Value::Null)
    });
    let value = json!([
        KEY_VERSION,
        normalize_base_url(base_url),
        request.model,
        messages,
        request.temperature,
        request.max_tokens,
        format,
    ]);
    sorted(value).to_string()
}

/// `value` with every object's keys in sorted order.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(object) => {
            let mut entries: Vec<(String, Value)> = object.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Map::new();
            for (k, v) in entries {
                out.insert(k, sorted(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The request's key: SHA-256 of [`canonical_request`], 64 lower-case hex digits.
pub fn request_key(base_url: &str, request: &ChatRequest) -> String {
    let digest = Sha256::digest(canonical_request(base_url, request).as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from_digit(u32::from(b >> 4), 16).expect("a hex digit"));
        hex.push(char::from_digit(u32::from(b & 0xf), 16).expect("a hex digit"));
    }
    hex
}

/// The log key of the `occurrence`-th (0-based) sending of the request keyed `request_key`:
/// `{request_key}-{occurrence}`.
pub fn exchange_key(request_key: &str, occurrence: u32) -> String {
    format!("{request_key}-{occurrence}")
}

/// One logged exchange, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// See [`exchange_key`].
    pub key: String,
    pub response: ChatResponse,
}

#[derive(Debug, Default)]
struct LogState {
    responses: HashMap<String, ChatResponse>,
    /// Keys recorded since the last [`ExchangeLog::take_new`], in order.
    fresh: Vec<String>,
}

/// Completed responses by exchange key. A handle: clones share one log.
#[derive(Debug, Clone, Default)]
pub struct ExchangeLog(Rc<RefCell<LogState>>);

impl ExchangeLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.0.borrow().responses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The response logged under `key`.
    pub fn get(&self, key: &str) -> Option<ChatResponse> {
        self.0.borrow().responses.get(key).cloned()
    }

    /// Logs a completed response (what the server sent, not how it was delivered). A key
    /// already logged keeps its first response.
    pub fn record(&self, key: String, response: ChatResponse) {
        let mut state = self.0.borrow_mut();
        if state.responses.contains_key(&key) {
            return;
        }
        let response = ChatResponse {
            delivery: Delivery::default(),
            ..response
        };
        state.responses.insert(key.clone(), response);
        state.fresh.push(key);
    }

    /// The entries recorded since the last call, in the order they were recorded; entries
    /// from [`Self::insert_loaded`] are not among them.
    pub fn take_new(&self) -> Vec<Exchange> {
        let mut state = self.0.borrow_mut();
        let keys = std::mem::take(&mut state.fresh);
        keys.into_iter()
            .filter_map(|key| {
                let response = state.responses.get(&key)?.clone();
                Some(Exchange { key, response })
            })
            .collect()
    }

    /// Adds entries read back from storage. Keys already logged keep their response. Returns
    /// how many entries were added.
    pub fn insert_loaded(&self, entries: impl IntoIterator<Item = Exchange>) -> usize {
        let mut state = self.0.borrow_mut();
        let mut added = 0;
        for Exchange { key, response } in entries {
            if let std::collections::hash_map::Entry::Vacant(slot) = state.responses.entry(key) {
                slot.insert(ChatResponse {
                    delivery: Delivery::default(),
                    ..response
                });
                added += 1;
            }
        }
        added
    }

    /// Forgets every entry (and what was new).
    pub fn clear(&self) {
        let mut state = self.0.borrow_mut();
        state.responses.clear();
        state.fresh.clear();
    }

    /// Every entry, sorted by key.
    pub fn entries(&self) -> Vec<Exchange> {
        let state = self.0.borrow();
        let mut all: Vec<Exchange> = state
            .responses
            .iter()
            .map(|(key, response)| Exchange {
                key: key.clone(),
                response: response.clone(),
            })
            .collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }
}

/// A client that answers from an [`ExchangeLog`] when it holds the answer (sending nothing)
/// and logs every response `inner` completes. Occurrences are counted per client: make one
/// per run.
pub struct CachingClient<C> {
    inner: C,
    log: ExchangeLog,
    base_url: String,
    occurrences: RefCell<HashMap<String, u32>>,
}

impl<C: ChatClient> CachingClient<C> {
    /// `base_url` is the endpoint's, part of every key.
    pub fn new(inner: C, log: ExchangeLog, base_url: &str) -> Self {
        CachingClient {
            inner,
            log,
            base_url: normalize_base_url(base_url),
            occurrences: RefCell::new(HashMap::new()),
        }
    }

    pub fn log(&self) -> &ExchangeLog {
        &self.log
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// The log key this request gets now, counting it as sent.
    fn next_key(&self, request: &ChatRequest) -> String {
        let key = request_key(&self.base_url, request);
        let mut occurrences = self.occurrences.borrow_mut();
        let n = occurrences.entry(key.clone()).or_insert(0);
        let occurrence = *n;
        *n += 1;
        exchange_key(&key, occurrence)
    }
}

impl<C: ChatClient> ChatClient for CachingClient<C> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
        let key = self.next_key(request);
        if let Some(mut response) = self.log.get(&key) {
            response.delivery = Delivery {
                retries: 0,
                from_log: true,
            };
            return Ok(response);
        }
        let response = self.inner.complete(request).await?;
        self.log.record(key, response.clone());
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::openai::{ChatMessage, ResponseFormat, StructuredMode, Usage};
    use crate::llm::testing::ScriptedClient;
    use futures::executor::block_on;

    const BASE: &str = "http://localhost:11434/v1";

    fn request(text: &str, temperature: f64) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![ChatMessage::system("s"), ChatMessage::user(text)],
            temperature,
            max_tokens: 100,
            response_format: StructuredMode::JsonSchema.response_format(
                "reply",
                &json!({"type": "object", "properties": {"b": {}, "a": {}}}),
            ),
        }
    }

    #[test]
    fn keys_are_stable_and_hex() {
        let key = request_key(BASE, &request("hi", 0.3));
        assert_eq!(key.len(), 64);
        assert!(key
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(key, request_key(BASE, &request("hi", 0.3)));
        // The same endpoint written with a trailing slash or spaces is the same endpoint.
        assert_eq!(
            key,
            request_key(" http://localhost:11434/v1/ ", &request("hi", 0.3))
        );
        // A fixed request has a fixed key, whatever the build: the log outlives versions.
        let fixed = ChatRequest {
            model: "m".into(),
            messages: vec![ChatMessage::user("u")],
            temperature: 0.0,
            max_tokens: 1,
            response_format: None,
        };
        assert_eq!(
            canonical_request("http://h/v1", &fixed),
            r#"["agenther-exchange-1","http://h/v1","m",[["user","u"]],0.0,1,null]"#
        );
    }

    #[test]
    fn every_part_of_the_request_changes_the_key() {
        let base = request("hi", 0.3);
        let key = |b: &str, r: &ChatRequest| request_key(b, r);
        let k0 = key(BASE, &base);
        let mut variants = vec![key("http://other/v1", &base)];
        let mut r = base.clone();
        r.model = "n".into();
        variants.push(key(BASE, &r));
        variants.push(key(BASE, &request("hi!", 0.3)));
        let mut r = base.clone();
        r.messages[0].role = "user".into();
        variants.push(key(BASE, &r));
        variants.push(key(BASE, &request("hi", 0.7)));
        let mut r = base.clone();
        r.max_tokens = 101;
        variants.push(key(BASE, &r));
        let mut r = base.clone();
        r.response_format = Some(ResponseFormat::JsonObject);
        variants.push(key(BASE, &r));
        r.response_format = None;
        variants.push(key(BASE, &r));
        // Messages are not merely concatenated: moving text between them changes the key.
        let mut r = base.clone();
        r.messages = vec![ChatMessage::system("sh"), ChatMessage::user("i")];
        variants.push(key(BASE, &r));
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(*v, k0, "variant {i}");
        }
        let mut all = variants.clone();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), variants.len());
    }

    #[test]
    fn object_key_order_does_not_matter() {
        let a = request("x", 0.3);
        let mut b = a.clone();
        b.response_format = StructuredMode::JsonSchema.response_format(
            "reply",
            &json!({"properties": {"a": {}, "b": {}}, "type": "object"}),
        );
        assert_eq!(request_key(BASE, &a), request_key(BASE, &b));
    }

    #[test]
    fn answers_from_the_log_without_sending() {
        let inner =
            ScriptedClient::with_replies([Ok("first"), Ok("second")]).with_usage(Usage::new(7, 3));
        let log = ExchangeLog::new();
        let client = CachingClient::new(&inner, log.clone(), BASE);
        let r = block_on(client.complete(&request("a", 0.3))).unwrap();
        assert_eq!(r.text(), Some("first"));
        assert!(!r.delivery.from_log);
        assert_eq!(log.len(), 1);

        // A new run (a new client) over the same log: the answer comes from the log.
        let again = CachingClient::new(&inner, log.clone(), BASE);
        let r = block_on(again.complete(&request("a", 0.3))).unwrap();
        assert_eq!(r.text(), Some("first"));
        assert!(r.delivery.from_log);
        assert_eq!(r.usage_or_zero(), Usage::new(7, 3));
        assert_eq!(inner.request_count(), 1, "nothing was sent");
    }

    #[test]
    fn repeated_requests_get_fresh_answers_and_replay_in_order() {
        let inner = ScriptedClient::with_replies([Ok("one"), Ok("two"), Ok("three")]);
        let log = ExchangeLog::new();
        let run = CachingClient::new(&inner, log.clone(), BASE);
        let texts = |c: &CachingClient<&ScriptedClient>| -> Vec<String> {
            (0..2)
                .map(|_| {
                    block_on(c.complete(&request("same", 0.7)))
                        .unwrap()
                        .text()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        };
        assert_eq!(texts(&run), ["one", "two"]);
        let replay = CachingClient::new(&inner, log.clone(), BASE);
        assert_eq!(texts(&replay), ["one", "two"]);
        assert_eq!(inner.request_count(), 2);
        // A third sending in the replaying run is new.
        let r = block_on(replay.complete(&request("same", 0.7))).unwrap();
        assert_eq!(r.text(), Some("three"));
        assert_eq!(log.len(), 3);
    }

    #[test]
    fn failures_are_not_logged() {
        let inner = ScriptedClient::with_replies([Err(ChatError::Timeout), Ok("late")]);
        let log = ExchangeLog::new();
        let client = CachingClient::new(&inner, log.clone(), BASE);
        assert!(block_on(client.complete(&request("a", 0.3))).is_err());
        assert!(log.is_empty());
        let client = CachingClient::new(&inner, log.clone(), BASE);
        let r = block_on(client.complete(&request("a", 0.3))).unwrap();
        assert_eq!(r.text(), Some("late"));
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn take_new_hands_out_each_entry_once_and_loaded_entries_never() {
        let inner = ScriptedClient::from_fn(|r| Ok(format!("re: {}", r.messages[1].content)));
        let log = ExchangeLog::new();
        let client = CachingClient::new(&inner, log.clone(), BASE);
        block_on(client.complete(&request("a", 0.3))).unwrap();
        block_on(client.complete(&request("b", 0.3))).unwrap();
        let first = log.take_new();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].response.text(), Some("re: a"));
        assert_eq!(first[1].response.text(), Some("re: b"));
        assert!(log.take_new().is_empty());

        // Stored and read back (as JSON), into a fresh page's log.
        let stored = serde_json::to_string(&first).unwrap();
        let loaded: Vec<Exchange> = serde_json::from_str(&stored).unwrap();
        assert_eq!(loaded, first);
        let fresh = ExchangeLog::new();
        assert_eq!(fresh.insert_loaded(loaded.clone()), 2);
        assert_eq!(fresh.insert_loaded(loaded), 0, "already there");
        assert!(fresh.take_new().is_empty(), "loaded entries are not new");
        let client = CachingClient::new(&inner, fresh.clone(), BASE);
        let r = block_on(client.complete(&request("b", 0.3))).unwrap();
        assert!(r.delivery.from_log);
        assert_eq!(r.text(), Some("re: b"));
        assert_eq!(inner.request_count(), 2);

        fresh.clear();
        assert!(fresh.is_empty());
    }

    #[test]
    fn delivery_is_not_logged() {
        let log = ExchangeLog::new();
        let mut response = ChatResponse::from_text("x", Usage::new(1, 1));
        response.delivery.retries = 2;
        log.record("k-0".into(), response);
        assert_eq!(log.get("k-0").unwrap().delivery, Delivery::default());
        let json = serde_json::to_value(&log.entries()[0]).unwrap();
        assert!(json["response"].get("delivery").is_none());
    }
}
