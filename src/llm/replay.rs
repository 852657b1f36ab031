//! Replaying a trajectory's completed chat exchanges instead of sending them again.
//!
//! Every exchange that completes (a response came back) is handed to an [`ExchangeSink`]
//! before its reply is used, so a run interrupted at any point (a reload, a closed tab, a stop)
//! has kept every answer it got. When the trajectory runs again, [`ReplayClient`] answers each
//! request matching a kept exchange with the kept response and sends only the others. The
//! pipeline is deterministic given its replies, so the trajectory takes the same path and ends
//! as an uninterrupted run would have.
//!
//! Matching counts repeats: a trajectory may send the same request more than once (relabel
//! retries at the same temperature), and each time is a fresh sample. The n-th time a request
//! is made it is answered by the n-th kept exchange with its key, if there is one.

use super::client::{ChatClient, ChatError};
use super::openai::{ChatMessage, ChatRequest, ChatResponse, ResponseFormat};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::future::Future;

/// What identifies a request for replay: 32 hex digits hashing the endpoint, the model, the
/// messages, the temperature and the response format.
pub fn request_key(endpoint: &str, request: &ChatRequest) -> String {
    #[derive(Serialize)]
    struct Keyed<'a> {
        endpoint: &'a str,
        model: &'a str,
        messages: &'a [ChatMessage],
        temperature: f64,
        response_format: &'a Option<ResponseFormat>,
    }
    let text = serde_json::to_string(&Keyed {
        endpoint,
        model: &request.model,
        messages: &request.messages,
        temperature: request.temperature,
        response_format: &request.response_format,
    })
    .expect("a request always serializes");
    format!("{:032x}", fnv1a_128(text.as_bytes()))
}

/// FNV-1a, 128 bits: stable across builds and platforms, unlike the standard library's hasher.
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    bytes.iter().fold(OFFSET, |hash, b| {
        (hash ^ u128::from(*b)).wrapping_mul(PRIME)
    })
}

/// One completed exchange of a trajectory: its place among the trajectory's exchanges, the
/// request's key and the response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub seq: u32,
    pub key: String,
    pub response: ChatResponse,
}

/// Where completed exchanges are kept.
pub trait ExchangeSink {
    /// Keeps `exchange` of the trajectory at `index`; resolves once it is kept (or keeping it
    /// failed, which the sink reports its own way: the run goes on).
    fn keep(&self, index: usize, exchange: &Exchange) -> impl Future<Output = ()>;
}

/// A sink that keeps nothing.
pub struct Forget;

impl ExchangeSink for Forget {
    fn keep(&self, _index: usize, _exchange: &Exchange) -> impl Future<Output = ()> {
        std::future::ready(())
    }
}

/// A sink that keeps exchanges in memory, in order (for tests).
#[derive(Default)]
pub struct MemorySink(pub RefCell<Vec<(usize, Exchange)>>);

impl ExchangeSink for MemorySink {
    fn keep(&self, index: usize, exchange: &Exchange) -> impl Future<Output = ()> {
        self.0.borrow_mut().push((index, exchange.clone()));
        std::future::ready(())
    }
}

/// The client one trajectory runs with: kept exchanges first, then `inner`, keeping what
/// `inner` answers.
pub struct ReplayClient<'a, C, S> {
    inner: &'a C,
    sink: &'a S,
    endpoint: &'a str,
    index: usize,
    /// The kept exchanges in order; `None` once replayed.
    kept: RefCell<Vec<Option<Exchange>>>,
    next_seq: Cell<u32>,
    replayed: Cell<usize>,
    sent: Cell<usize>,
}

impl<'a, C: ChatClient, S: ExchangeSink> ReplayClient<'a, C, S> {
    /// The client of the trajectory at `index`, calling `endpoint` through `inner`, with the
    /// exchanges kept for it so far (in any order).
    pub fn new(
        inner: &'a C,
        sink: &'a S,
        endpoint: &'a str,
        index: usize,
        mut kept: Vec<Exchange>,
    ) -> Self {
        kept.sort_by_key(|e| e.seq);
        let next_seq = kept.last().map_or(0, |e| e.seq + 1);
        ReplayClient {
            inner,
            sink,
            endpoint,
            index,
            kept: RefCell::new(kept.into_iter().map(Some).collect()),
            next_seq: Cell::new(next_seq),
            replayed: Cell::new(0),
            sent: Cell::new(0),
        }
    }

    /// Requests answered from kept exchanges so far.
    pub fn replayed(&self) -> usize {
        self.replayed.get()
    }

    /// Requests sent to `inner` so far.
    pub fn sent(&self) -> usize {
        self.sent.get()
    }

    fn take(&self, key: &str) -> Option<Exchange> {
        let mut kept = self.kept.borrow_mut();
        let slot = kept
            .iter_mut()
            .find(|slot| slot.as_ref().is_some_and(|e| e.key == key))?;
        slot.take()
    }
}

impl<C: ChatClient, S: ExchangeSink> ChatClient for ReplayClient<'_, C, S> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
        let key = request_key(self.endpoint, request);
        if let Some(kept) = self.take(&key) {
            self.replayed.set(self.replayed.get() + 1);
            return Ok(kept.response);
        }
        self.sent.set(self.sent.get() + 1);
        let response = self.inner.complete(request).await?;
        let exchange = Exchange {
            seq: self.next_seq.get(),
            key,
            response,
        };
        self.next_seq.set(exchange.seq + 1);
        self.sink.keep(self.index, &exchange).await;
        Ok(exchange.response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::testing::ScriptedClient;
    use crate::llm::{build_request, RelabelReply, StructuredMode, Usage};
    use futures::executor::block_on;

    fn request(temperature: f64, text: &str) -> ChatRequest {
        build_request::<RelabelReply>(
            "m",
            vec![ChatMessage::user(text)],
            temperature,
            100,
            StructuredMode::JsonSchema,
        )
    }

    #[test]
    fn keys_tell_requests_apart() {
        let base = request(0.3, "hi");
        let key = request_key("http://h/v1", &base);
        assert_eq!(key.len(), 32);
        assert_eq!(key, request_key("http://h/v1", &base.clone()));
        assert_ne!(key, request_key("http://other/v1", &base));
        assert_ne!(key, request_key("http://h/v1", &request(0.7, "hi")));
        assert_ne!(key, request_key("http://h/v1", &request(0.3, "hi!")));
        let mut other_model = base.clone();
        other_model.model = "n".into();
        assert_ne!(key, request_key("http://h/v1", &other_model));
        let mut object = base.clone();
        object.response_format = Some(ResponseFormat::JsonObject);
        assert_ne!(key, request_key("http://h/v1", &object));
        // A stable value: stored keys stay valid from one build to the next.
        assert_eq!(
            format!("{:032x}", fnv1a_128(b"")),
            "6c62272e07bb014262b821756295c58d"
        );
        assert_eq!(
            format!("{:032x}", fnv1a_128(b"a")),
            "d228cb696f1a8caf78912b704e4a8964"
        );
    }

    #[test]
    fn completed_exchanges_are_kept_in_order_and_errors_are_not() {
        let inner = ScriptedClient::with_replies([Ok("one"), Err(ChatError::Timeout), Ok("two")]);
        let sink = MemorySink::default();
        let client = ReplayClient::new(&inner, &sink, "e", 4, Vec::new());
        let a = block_on(client.complete(&request(0.3, "a"))).unwrap();
        assert_eq!(a.text(), Some("one"));
        assert!(block_on(client.complete(&request(0.3, "b"))).is_err());
        block_on(client.complete(&request(0.3, "b"))).unwrap();
        let kept = sink.0.borrow();
        let seqs: Vec<_> = kept.iter().map(|(i, e)| (*i, e.seq)).collect();
        assert_eq!(seqs, [(4, 0), (4, 1)]);
        assert_eq!(kept[1].1.key, request_key("e", &request(0.3, "b")));
        assert_eq!(kept[1].1.response.text(), Some("two"));
        assert_eq!((client.sent(), client.replayed()), (3, 0));
    }

    #[test]
    fn kept_exchanges_answer_repeats_in_order_then_the_endpoint_does() {
        let same = request(0.7, "retry");
        let key = request_key("e", &same);
        let kept = vec![
            Exchange {
                seq: 1,
                key: key.clone(),
                response: ChatResponse::from_text("second", Usage::new(1, 1)),
            },
            Exchange {
                seq: 0,
                key: key.clone(),
                response: ChatResponse::from_text("first", Usage::new(1, 1)),
            },
        ];
        let inner = ScriptedClient::with_replies([Ok("third")]);
        let sink = MemorySink::default();
        let client = ReplayClient::new(&inner, &sink, "e", 0, kept);
        let texts: Vec<String> = (0..3)
            .map(|_| {
                let r = block_on(client.complete(&same)).unwrap();
                r.text().unwrap().to_owned()
            })
            .collect();
        assert_eq!(texts, ["first", "second", "third"]);
        assert_eq!(inner.request_count(), 1);
        assert_eq!((client.sent(), client.replayed()), (1, 2));
        // The new exchange comes after the kept ones.
        assert_eq!(sink.0.borrow()[0].1.seq, 2);
    }

    #[test]
    fn a_request_not_kept_goes_to_the_endpoint() {
        let kept = vec![Exchange {
            seq: 0,
            key: request_key("e", &request(0.3, "old settings")),
            response: ChatResponse::from_text("stale", Usage::default()),
        }];
        let inner = ScriptedClient::with_replies([Ok("fresh")]);
        let client = ReplayClient::new(&inner, &Forget, "e", 0, kept);
        let r = block_on(client.complete(&request(0.3, "new settings"))).unwrap();
        assert_eq!(r.text(), Some("fresh"));
        assert_eq!(client.replayed(), 0);
    }

    /// An endpoint whose replies depend on how often it has seen a request, as a sampling
    /// model's do: the first two relabel replies of a prompt are prose, later ones valid.
    fn stateful_endpoint() -> ScriptedClient {
        let seen = RefCell::new(std::collections::HashMap::<String, usize>::new());
        ScriptedClient::from_fn(move |req: &ChatRequest| {
            let text: String = req.messages.iter().map(|m| m.content.as_str()).collect();
            let n = {
                let mut seen = seen.borrow_mut();
                let slot = seen.entry(text.clone()).or_insert(0);
                *slot += 1;
                *slot
            };
            let name = match &req.response_format {
                Some(ResponseFormat::JsonSchema { name, .. }) => name.as_str(),
                _ => "",
            };
            Ok(match name {
                "extracted_outcome" => r#"{"actual_achievements": ["Step 1 (search): found the Dell XPS 13 for $899"], "key_observations": ["$899"], "limitations": "over budget"}"#.to_owned(),
                "relabel_reply" if n <= 2 => "Here is a goal: find the laptop.".to_owned(),
                "relabel_reply" => r#"{"hindsight_prompt": "Find the price of the Dell XPS 13", "is_valid_replay": true, "rationale": "found", "confidence": 0.9}"#.to_owned(),
                "judge_reply" => r#"{"is_valid": true, "confidence": 0.8, "rejection_reason": ""}"#.to_owned(),
                other => format!("unexpected call {other}"),
            })
        })
    }

    /// Answers `limit` calls through `inner`, then cancels every later one (a reload).
    struct CutOff<'a> {
        inner: &'a ScriptedClient,
        limit: usize,
        calls: Cell<usize>,
    }

    impl ChatClient for CutOff<'_> {
        async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
            self.calls.set(self.calls.get() + 1);
            if self.calls.get() > self.limit {
                return Err(ChatError::Cancelled);
            }
            self.inner.complete(request).await
        }
    }

    #[test]
    fn an_interrupted_trajectory_resumes_to_the_uninterrupted_result_without_repeating_a_call() {
        use crate::llm::Templates;
        use crate::model::{Step, Trajectory};
        use crate::pipeline::{process, Mode, Settings};
        use crate::stages::detect::rules::Lexicon;

        let trajectory = Trajectory {
            trajectory_id: "t".into(),
            original_prompt: "Find a laptop under $500".into(),
            steps: vec![Step {
                thought: "look".into(),
                action_name: "search".into(),
                action_input: Default::default(),
                observation: "Found Dell XPS 13 for $899 with 16 GB RAM and 512 GB SSD".into(),
                call: None,
            }],
            final_answer: String::new(),
            failure_reason: "The laptop exceeds the budget".into(),
            metadata: Default::default(),
            origin: None,
        };
        let settings = Settings {
            model: "m".into(),
            extraction: Mode::Llm,
            ..Settings::default()
        };
        let (templates, lexicon) = (Templates::defaults(), Lexicon::default());

        let endpoint = stateful_endpoint();
        let client = ReplayClient::new(&endpoint, &Forget, "e", 0, Vec::new());
        let expected = block_on(process(
            &client,
            &templates,
            &settings,
            &lexicon,
            &trajectory,
        ));
        assert!(expected.outcome.is_accepted(), "{:?}", expected.outcome);
        let calls = endpoint.requests();
        assert_eq!(calls.len(), 5, "extract, three relabel attempts, one judge");

        for cut in 0..calls.len() {
            let endpoint = stateful_endpoint();
            let sink = MemorySink::default();
            let first = CutOff {
                inner: &endpoint,
                limit: cut,
                calls: Cell::new(0),
            };
            let client = ReplayClient::new(&first, &sink, "e", 0, Vec::new());
            let interrupted = block_on(process(
                &client,
                &templates,
                &settings,
                &lexicon,
                &trajectory,
            ));
            assert_eq!(interrupted.outcome.status(), "cancelled", "cut after {cut}");
            let kept: Vec<Exchange> = sink.0.take().into_iter().map(|(_, e)| e).collect();
            assert_eq!(kept.len(), cut);
            let client = ReplayClient::new(&endpoint, &Forget, "e", 0, kept);
            let resumed = block_on(process(
                &client,
                &templates,
                &settings,
                &lexicon,
                &trajectory,
            ));
            assert_eq!(resumed, expected, "cut after {cut}");
            assert_eq!(
                endpoint.requests(),
                calls,
                "cut after {cut}: every call once"
            );
            assert_eq!(client.replayed(), cut);
        }
    }
}
