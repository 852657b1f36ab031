//! The chat client the stages call, and a scripted one for tests and demos.

use super::openai::{ChatRequest, ChatResponse};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;

/// Why a chat call failed, in enough detail for the UI to say what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatError {
    /// The request did not reach the server or no response came back (DNS, CORS, offline).
    Network(String),
    /// No response within the time allowed.
    Timeout,
    /// The server answered with a non-success status.
    Http { status: u16, message: String },
    /// The response body was not a chat-completions response.
    Decode(String),
    /// The call was cancelled by the user.
    Cancelled,
}

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatError::Network(m) => write!(f, "network error: {m}"),
            ChatError::Timeout => write!(f, "the request timed out"),
            ChatError::Http { status, message } if message.is_empty() => {
                write!(f, "HTTP {status}")
            }
            ChatError::Http { status, message } => write!(f, "HTTP {status}: {message}"),
            ChatError::Decode(m) => write!(f, "could not read the response: {m}"),
            ChatError::Cancelled => write!(f, "cancelled"),
        }
    }
}

impl std::error::Error for ChatError {}

impl ChatError {
    /// Whether the error looks like the endpoint refusing the request's `response_format`
    /// (HTTP 400 or 422 naming it), so that the caller may retry with
    /// [`StructuredMode::fallback`](super::openai::StructuredMode::fallback).
    pub fn suggests_structured_fallback(&self) -> bool {
        match self {
            ChatError::Http { status, message } if *status == 400 || *status == 422 => {
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

/// Clients for tests and demos.
pub mod testing {
    use super::*;
    use crate::llm::openai::Usage;
    use std::cell::RefCell;
    use std::collections::VecDeque;

    type Responder = Box<dyn Fn(&ChatRequest) -> Result<String, ChatError>>;

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
                Some(Scripted::Text(text)) => return Ok(ChatResponse::from_text(text, self.usage)),
                Some(Scripted::Response(response)) => return Ok(response),
                Some(Scripted::Error(error)) => return Err(error),
                None => {}
            }
            match &self.responder {
                Some(f) => f(request).map(|text| ChatResponse::from_text(text, self.usage)),
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
    fn scripted_client_from_fn() {
        let client = ScriptedClient::from_fn(|r| Ok(format!("t={}", r.temperature)));
        let r = futures::executor::block_on(client.complete(&req(0.5))).unwrap();
        assert_eq!(r.text(), Some("t=0.5"));
    }

    #[test]
    fn structured_fallback_hint() {
        let refused = ChatError::Http {
            status: 400,
            message: "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model.".into(),
        };
        assert!(refused.suggests_structured_fallback());
        let other = ChatError::Http {
            status: 400,
            message: "maximum context length exceeded".into(),
        };
        assert!(!other.suggests_structured_fallback());
        assert!(!ChatError::Timeout.suggests_structured_fallback());
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            ChatError::Http {
                status: 401,
                message: "bad key".into()
            }
            .to_string(),
            "HTTP 401: bad key"
        );
        assert_eq!(ChatError::Timeout.to_string(), "the request timed out");
    }
}
