//! Falling back to a less demanding structured-output mode when an endpoint refuses one.
//!
//! Endpoints differ: vLLM, llama.cpp and OpenAI take `json_schema`; some servers only take
//! `json_object` (or, like LM Studio, only `json_schema`); others reject `response_format`
//! outright. [`AdaptiveClient`] sends each request with the current mode and, when the endpoint
//! answers that it refuses the response format, steps down (json_schema → json_object →
//! prompt-only) for this request and every later one. The prompts state the JSON shape in every
//! mode, so replies stay parseable.

use super::client::{ChatClient, ChatError};
use super::openai::{ChatRequest, ChatResponse, ResponseFormat, StructuredMode};
use std::cell::Cell;

/// A client that lowers the structured-output mode when the endpoint refuses it.
pub struct AdaptiveClient<C> {
    inner: C,
    mode: Cell<StructuredMode>,
}

impl<C: ChatClient> AdaptiveClient<C> {
    /// Starts at `mode`; requests asking for more than the current mode are sent with less.
    pub fn new(inner: C, mode: StructuredMode) -> Self {
        AdaptiveClient {
            inner,
            mode: Cell::new(mode),
        }
    }

    /// The mode in force now.
    pub fn mode(&self) -> StructuredMode {
        self.mode.get()
    }

    pub fn inner(&self) -> &C {
        &self.inner
    }

    fn lower(request: &ChatRequest, mode: StructuredMode) -> ChatRequest {
        let mut r = request.clone();
        r.response_format = match (mode, r.response_format.take()) {
            (StructuredMode::PromptOnly, _) | (_, None) => None,
            (StructuredMode::JsonObject, Some(_)) => Some(ResponseFormat::JsonObject),
            (StructuredMode::JsonSchema, Some(f)) => Some(f),
        };
        r
    }
}

impl<C: ChatClient> ChatClient for AdaptiveClient<C> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
        loop {
            let mode = self.mode.get();
            let result = self.inner.complete(&Self::lower(request, mode)).await;
            match result {
                Err(e) if e.suggests_structured_fallback() && request.response_format.is_some() => {
                    // Another request may have stepped down meanwhile; only step from the mode
                    // this one used.
                    let next = match mode.fallback() {
                        Some(next) => next,
                        None => return Err(e),
                    };
                    if self.mode.get() == mode {
                        self.mode.set(next);
                    }
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::testing::ScriptedClient;
    use crate::llm::{build_request, ChatMessage, RelabelReply};
    use futures::executor::block_on;

    fn request() -> ChatRequest {
        build_request::<RelabelReply>(
            "m",
            vec![ChatMessage::user("hi")],
            0.3,
            100,
            StructuredMode::JsonSchema,
        )
    }

    fn refusal(what: &str) -> ChatError {
        ChatError::http(400, format!("{what} is not supported by this server"))
    }

    #[test]
    fn steps_down_and_remembers() {
        let inner = ScriptedClient::with_replies([
            Err(refusal("response_format json_schema")),
            Err(refusal("response_format json_object")),
            Ok("{}"),
            Ok("{}"),
        ]);
        let client = AdaptiveClient::new(&inner, StructuredMode::JsonSchema);
        assert!(block_on(client.complete(&request())).is_ok());
        assert_eq!(client.mode(), StructuredMode::PromptOnly);
        assert!(block_on(client.complete(&request())).is_ok());
        let sent = inner.requests();
        assert_eq!(sent.len(), 4);
        assert!(matches!(
            sent[0].response_format,
            Some(ResponseFormat::JsonSchema { .. })
        ));
        assert_eq!(sent[1].response_format, Some(ResponseFormat::JsonObject));
        assert_eq!(sent[2].response_format, None);
        assert_eq!(
            sent[3].response_format, None,
            "the lower mode is remembered"
        );
    }

    #[test]
    fn other_errors_pass_through_untouched() {
        let inner = ScriptedClient::with_replies([Err::<&str, _>(ChatError::http(
            400,
            "context length exceeded",
        ))]);
        let client = AdaptiveClient::new(&inner, StructuredMode::JsonSchema);
        assert!(block_on(client.complete(&request())).is_err());
        assert_eq!(client.mode(), StructuredMode::JsonSchema);
        assert_eq!(inner.request_count(), 1);
    }

    #[test]
    fn a_fixed_lower_mode_is_applied() {
        let inner = ScriptedClient::with_replies([Ok("{}")]);
        let client = AdaptiveClient::new(&inner, StructuredMode::JsonObject);
        block_on(client.complete(&request())).unwrap();
        assert_eq!(
            inner.requests()[0].response_format,
            Some(ResponseFormat::JsonObject)
        );
    }
}
