//! The LLM layer: OpenAI-compatible wire types, the client trait, prompt templates, reply
//! parsing and per-call accounting. Pure Rust; the browser supplies the HTTP client.

pub mod adaptive;
pub mod call;
pub mod client;
pub mod diagnose;
pub mod exchange;
pub mod openai;
pub mod pool;
pub mod reply;
pub mod retry;
pub mod schema;
pub mod templates;

pub use adaptive::AdaptiveClient;
pub use call::{
    build_request, call_json, estimate_prompt_tokens, CallFlag, CallKind, CallRecord, CallSettings,
    StageError, StageUsage, UsageByStage,
};
pub use client::{testing, AnyClient, ChatClient, ChatError};
pub use exchange::{request_key, CachingClient, Exchange, ExchangeLog};
pub use openai::{
    ChatMessage, ChatRequest, ChatResponse, Delivery, ModelList, ResponseFormat, StructuredMode,
    Usage,
};
pub use reply::{
    parse_reply, DetectReply, ExtractReply, JudgeReply, RelabelReply, Reply, ReplyError,
};
pub use retry::{
    parse_retry_after, FakeClock, RetryPolicy, RetryingClient, RunGuard, SentCounts, Sleep,
};
pub use templates::{PromptKind, PromptSource, TemplateError, TemplateSources, Templates};
