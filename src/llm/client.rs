//! The chat client the stages call, and a scripted one for tests and demos.

use super::openai::{ChatRequest, ChatResponse};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;

/// Why a chat call failed, in enough detail for the UI to say what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatError {
    /// The request did not reach the server or no response came back (DNS, CORS, offline, a
    /// connection dropped mid-response).
    Network(String),
    /// No response within the time allowed.
    Timeout,
    /// The server answered with a non-success status.
    Http {
        status: u16,
        /// The endpoint's own message (from its JSON error body when it sent one).
        message: String,
        /// How long the server asked to wait before trying again (its `Retry-After` header,
        /// read when the response arrived), in milliseconds.
        #[serde(default)]
        retry_after_ms: Option<u64>,
    },
    /// The response body was not a chat-completions response.
    Decode(String),
    /// The call was cancelled by the user.
    Cancelled,
    /// The call was tried more than once (see [`RetryingClient`](super::retry::RetryingClient));
    /// `last` is the error of the last try.
    Retried {
        /// Tries after the first.
        retries: u32,
        /// True when the last error could have been retried but the tries ran out.
        exhausted: bool,
        last: Box<ChatError>,
    },
    /// The request was never sent: the run was stopped or paused before it went out (see
    /// [`RunGuard`](super::retry::RunGuard)). `cause` is why (a stop, or the error that paused
    /// the run). Such a call costs nothing and is not counted as a call.
    NotSent { cause: Box<ChatError> },
}

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatError::Network(m) => write!(f, "network error: {m}"),
            ChatError::Timeout => write!(f, "the request timed out"),
            ChatError::Http {
                status, message, ..
            } if message.is_empty() => {
                write!(f, "HTTP {status}")
            }
            ChatError::Http {
                status, message, ..
            } => write!(f, "HTTP {status}: {message}"),
            ChatError::Decode(m) => write!(f, "could not read the response: {m}"),
            ChatError::Cancelled => write!(f, "cancelled"),
            ChatError::Retried {
                retries,
                exhausted: true,
                last,
            } => write!(f, "gave up after {} attempts: {last}", retries + 1),
            ChatError::Retried { retries, last, .. } => write!(
                f,
                "{last} (after {retries} {})",
                if *retries == 1 { "retry" } else { "retries" }
            ),
            ChatError::NotSent { cause } if cause.is_cancelled() => {
                write!(f, "not sent: the run was stopped")
            }
            ChatError::NotSent { cause } => {
                write!(f, "not sent: the run was paused ({cause})")
            }
        }
    }
}

impl std::error::Error for ChatError {}

impl ChatError {
    /// An HTTP error without a `Retry-After`.
    pub fn http(status: u16, message: impl Into<String>) -> Self {
        ChatError::Http {
            status,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// The error of the last try, looking through [`ChatError::Retried`].
    pub fn root(&self) -> &ChatError {
        match self {
            ChatError::Retried { last, .. } => last.root(),
            ChatError::NotSent { cause } => cause.root(),
            other => other,
        }
    }

    /// Tries after the first that the call took before it failed.
    pub fn retries(&self) -> u32 {
        match self {
            ChatError::Retried { retries, .. } => *retries,
            _ => 0,
        }
    }

    /// Whether the call never went out (see [`ChatError::NotSent`]).
    pub fn is_not_sent(&self) -> bool {
        matches!(self, ChatError::NotSent { .. })
    }

    /// Whether the user cancelled the call.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.root(), ChatError::Cancelled)
    }

    /// Whether the error says the endpoint is (for now) unreachable or overloaded, rather
    /// than that the request is wrong: a network error, a timeout, HTTP 408, 429 or 5xx.
    /// Such errors are worth retrying later; other 4xx and undecodable answers are not.
    pub fn is_transient(&self) -> bool {
        match self.root() {
            ChatError::Network(_) | ChatError::Timeout => true,
            ChatError::Http { status, .. } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }

    /// The `Retry-After` the server sent with the last try, in milliseconds.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self.root() {
            ChatError::Http { retry_after_ms, .. } => *retry_after_ms,
            _ => None,
        }
    }

    /// Whether the error looks like the endpoint refusing the request's `response_format`
    /// (HTTP 400 or 422 naming it), so that the caller may retry with
    /// [`StructuredMode::fallback`](super::openai::StructuredMode::fallback).
    pub fn suggests_structured_fallback(&self) -> bool {
        match self.root() {
            ChatError::Http {
                status, message, ..
            } if *status == 400 || *status == 422 => {
                let m = message.to_ascii_lowercase();
                [
                    "response_format",
                    "json_schema",
                    "json_object",
                    "structured output",
                ]
                .iter()
                .any(|needle| m.contains(needle))
            }
            _ => false,
        }
    }
}

/// Something that answers chat-completions requests.
///
/// The future need not be `Send`: in the browser it runs on the single JS thread.
pub trait ChatClient {
    fn complete(
        &self,
        request: &ChatRequest,
    ) -> impl Future<Output = Result<ChatResponse, ChatError>>;
}

impl<C: ChatClient> ChatClient for &C {
    fn complete(
        &self,
        request: &ChatRequest,
    ) -> impl Future<Output = Result<ChatResponse, ChatError>> {
        (**self).complete(request)
    }
}

/// Any chat client behind one type.
///
/// The stages and the pipeline are generic over their client, so every distinct chain of
/// clients (the page's queue or the model in the page, with or without the structured-output
/// fallback, a second judge or not) would build its own copy of the whole pipeline in the web
/// build. The page erases its chains into this type instead: one copy, for one boxed future
/// per request, which is nothing next to the request itself.
pub struct AnyClient<'a>(Box<dyn Erased + 'a>);

impl<'a> AnyClient<'a> {
    pub fn new(client: impl ChatClient + 'a) -> Self {
        AnyClient(Box::new(client))
    }
}

type BoxedReply<'r> = std::pin::Pin<Box<dyn Future<Output = Result<ChatResponse, ChatError>> + 'r>>;

/// [`ChatClient`] in a form a trait object can have.
trait Erased {
    fn complete_boxed<'r>(&'r self, request: &'r ChatRequest) -> BoxedReply<'r>;
}

impl<C: ChatClient> Erased for C {
    fn complete_boxed<'r>(&'r self, request: &'r ChatRequest) -> BoxedReply<'r> {
        Box::pin(self.complete(request))
    }
}

impl ChatClient for AnyClient<'_> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
        self.0.complete_boxed(request).await
    }
}

/// Clients for tests and demos.
pub mod testing {
    use super::*;
    use crate::llm::openai::Usage;
    use std::cell::RefCell;
    use std::collections::VecDeque;

    type Responder = Box<dyn Fn(&ChatRequest) -> Result<String, ChatError>>;
    type Metering = Box<dyn Fn(&ChatRequest) -> Usage>;

    enum Scripted {
        Text(String),
        Response(ChatResponse),
        Error(ChatError),
    }

    /// A client that answers from a queue of scripted replies (or from a function of the
    /// request) and records every request it receives.
    ///
    /// When the queue is empty it answers `ChatError::Network("no scripted reply left")`.
    pub struct ScriptedClient {
        queue: RefCell<VecDeque<Scripted>>,
        responder: Option<Responder>,
        requests: RefCell<Vec<ChatRequest>>,
        usage: Usage,
        metering: Option<Metering>,
    }

    impl Default for ScriptedClient {
        fn default() -> Self {
            Self::new()
        }
    }

    impl ScriptedClient {
        /// An empty script; every reply carries the usage given by [`Self::with_usage`]
        /// (zero by default).
        pub fn new() -> Self {
            ScriptedClient {
                queue: RefCell::new(VecDeque::new()),
                responder: None,
                requests: RefCell::new(Vec::new()),
                usage: Usage::default(),
                metering: None,
            }
        }

        /// A client whose replies come from `replies`, in order.
        pub fn with_replies<I, S>(replies: I) -> Self
        where
            I: IntoIterator<Item = Result<S, ChatError>>,
            S: Into<String>,
        {
            let client = Self::new();
            for r in replies {
                match r {
                    Ok(text) => client.push_text(text),
                    Err(e) => client.push_error(e),
                }
            }
            client
        }

        /// A client that answers each request with `f(request)`, once its queue is empty.
        /// Useful when calls are made in an order the test does not fix.
        pub fn from_fn(f: impl Fn(&ChatRequest) -> Result<String, ChatError> + 'static) -> Self {
            let mut client = Self::new();
            client.responder = Some(Box::new(f));
            client
        }

        /// The usage every text reply reports, including replies queued before this call.
        pub fn with_usage(mut self, usage: Usage) -> Self {
            self.usage = usage;
            self
        }

        /// The usage of each text reply as a function of its request (instead of one fixed
        /// usage), e.g. prompt tokens from the prompt's length as a server counts them.
        pub fn with_usage_fn(mut self, f: impl Fn(&ChatRequest) -> Usage + 'static) -> Self {
            self.metering = Some(Box::new(f));
            self
        }

        fn usage_for(&self, request: &ChatRequest) -> Usage {
            self.metering.as_ref().map_or(self.usage, |f| f(request))
        }

        pub fn push_text(&self, text: impl Into<String>) {
            self.queue
                .borrow_mut()
                .push_back(Scripted::Text(text.into()));
        }

        pub fn push_error(&self, error: ChatError) {
            self.queue.borrow_mut().push_back(Scripted::Error(error));
        }

        /// Queues a whole response (e.g. null content, another finish reason, no usage).
        pub fn push_response(&self, response: ChatResponse) {
            self.queue
                .borrow_mut()
                .push_back(Scripted::Response(response));
        }

        /// Every request received so far, in order.
        pub fn requests(&self) -> Vec<ChatRequest> {
            self.requests.borrow().clone()
        }

        pub fn request_count(&self) -> usize {
            self.requests.borrow().len()
        }

        /// How many queued replies have not been used.
        pub fn remaining(&self) -> usize {
            self.queue.borrow().len()
        }

        fn answer(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
            self.requests.borrow_mut().push(request.clone());
            let next = self.queue.borrow_mut().pop_front();
            match next {
                Some(Scripted::Text(text)) => {
                    return Ok(ChatResponse::from_text(text, self.usage_for(request)))
                }
                Some(Scripted::Response(response)) => return Ok(response),
                Some(Scripted::Error(error)) => return Err(error),
                None => {}
            }
            match &self.responder {
                Some(f) => {
                    f(request).map(|text| ChatResponse::from_text(text, self.usage_for(request)))
                }
                None => Err(ChatError::Network("no scripted reply left".to_owned())),
            }
        }
    }

    impl ChatClient for ScriptedClient {
        fn complete(
            &self,
            request: &ChatRequest,
        ) -> impl Future<Output = Result<ChatResponse, ChatError>> {
            let answer = self.answer(request);
            std::future::ready(answer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::ScriptedClient;
    use super::*;
    use crate::llm::openai::{ChatMessage, Usage};

    fn req(t: f64) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages: vec![ChatMessage::user("hi")],
            temperature: t,
            max_tokens: 10,
            response_format: None,
        }
    }

    #[test]
    fn scripted_client_answers_in_order_and_records() {
        let client = ScriptedClient::with_replies([Ok("a"), Err(ChatError::Timeout)])
            .with_usage(Usage::new(3, 4));
        let r = futures::executor::block_on(client.complete(&req(0.1))).unwrap();
        assert_eq!(r.text(), Some("a"));
        assert_eq!(r.usage_or_zero(), Usage::new(3, 4));
        let e = futures::executor::block_on(client.complete(&req(0.2))).unwrap_err();
        assert_eq!(e, ChatError::Timeout);
        let e = futures::executor::block_on(client.complete(&req(0.3))).unwrap_err();
        assert!(matches!(e, ChatError::Network(_)));
        let temps: Vec<f64> = client.requests().iter().map(|r| r.temperature).collect();
        assert_eq!(temps, [0.1, 0.2, 0.3]);
    }

    #[test]
    fn any_client_passes_requests_and_answers_through() {
        let scripted = ScriptedClient::with_replies([Ok("a"), Err(ChatError::Timeout)]);
        let chains = [
            AnyClient::new(&scripted),
            AnyClient::new(AnyClient::new(&scripted)),
        ];
        let first = futures::executor::block_on(chains[0].complete(&req(0.1))).unwrap();
        assert_eq!(first.text(), Some("a"));
        let second = futures::executor::block_on(chains[1].complete(&req(0.2))).unwrap_err();
        assert_eq!(second, ChatError::Timeout);
        let temps: Vec<f64> = scripted.requests().iter().map(|r| r.temperature).collect();
        assert_eq!(temps, [0.1, 0.2]);
    }

    #[test]
    fn scripted_client_from_fn() {
        let client = ScriptedClient::from_fn(|r| Ok(format!("t={}", r.temperature)));
        let r = futures::executor::block_on(client.complete(&req(0.5))).unwrap();
        assert_eq!(r.text(), Some("t=0.5"));
    }

    #[test]
    fn structured_fallback_hint() {
        let refused = ChatError::http(
            400,
            "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.",
        );
        assert!(refused.suggests_structured_fallback());
        let other = ChatError::http(400, "maximum context length exceeded");
        assert!(!other.suggests_structured_fallback());
        assert!(!ChatError::Timeout.suggests_structured_fallback());
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            ChatError::http(401, "bad key").to_string(),
            "HTTP 401: bad key"
        );
        assert_eq!(ChatError::Timeout.to_string(), "the request timed out");
        let gave_up = ChatError::Retried {
            retries: 3,
            exhausted: true,
            last: Box::new(ChatError::http(503, "overloaded")),
        };
        assert_eq!(
            gave_up.to_string(),
            "gave up after 4 attempts: HTTP 503: overloaded"
        );
        let then_refused = ChatError::Retried {
            retries: 1,
            exhausted: false,
            last: Box::new(ChatError::http(404, "model not found")),
        };
        assert_eq!(
            then_refused.to_string(),
            "HTTP 404: model not found (after 1 retry)"
        );
    }

    #[test]
    fn classification_looks_through_retries() {
        let wrap = |e: ChatError| ChatError::Retried {
            retries: 2,
            exhausted: true,
            last: Box::new(e),
        };
        for transient in [
            ChatError::Network("refused".into()),
            ChatError::Timeout,
            ChatError::http(408, ""),
            ChatError::http(429, "slow down"),
            ChatError::http(500, ""),
            ChatError::http(503, ""),
            ChatError::http(599, ""),
        ] {
            assert!(transient.is_transient(), "{transient:?}");
            assert!(wrap(transient).is_transient());
        }
        for lasting in [
            ChatError::http(400, "bad"),
            ChatError::http(401, "key"),
            ChatError::http(404, "model"),
            ChatError::http(422, ""),
            ChatError::Decode("x".into()),
            ChatError::Cancelled,
        ] {
            assert!(!lasting.is_transient(), "{lasting:?}");
            assert!(!wrap(lasting).is_transient());
        }
        assert!(wrap(ChatError::Cancelled).is_cancelled());
        assert_eq!(wrap(ChatError::Timeout).retries(), 2);
        assert_eq!(ChatError::Timeout.retries(), 0);
        let busy = ChatError::Http {
            status: 429,
            message: String::new(),
            retry_after_ms: Some(2000),
        };
        assert_eq!(wrap(busy).retry_after_ms(), Some(2000));
        let refused = wrap(ChatError::http(400, "response_format is not supported"));
        assert!(refused.suggests_structured_fallback());
    }

    #[test]
    fn errors_round_trip_through_json() {
        let e = ChatError::Retried {
            retries: 1,
            exhausted: false,
            last: Box::new(ChatError::Http {
                status: 429,
                message: "m".into(),
                retry_after_ms: Some(1000),
            }),
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<ChatError>(&json).unwrap(), e);
        // Errors written before `retry_after_ms` existed still read.
        let old: ChatError =
            serde_json::from_str(r#"{"Http":{"status":500,"message":"x"}}"#).unwrap();
        assert_eq!(old, ChatError::http(500, "x"));
    }
}
