//! One structured chat call, what it leaves on record, and per-stage accounting.

use super::client::{ChatClient, ChatError};
use super::openai::{ChatMessage, ChatRequest, StructuredMode, Usage};
use super::reply::{parse_reply, Reply, ReplyError};
use super::templates::TemplateError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which stage a call belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    Detect,
    Extract,
    Relabel,
    Judge,
}

impl CallKind {
    pub const ALL: [CallKind; 4] = [
        CallKind::Detect,
        CallKind::Extract,
        CallKind::Relabel,
        CallKind::Judge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Detect => "detect",
            CallKind::Extract => "extract",
            CallKind::Relabel => "relabel",
            CallKind::Judge => "judge",
        }
    }
}

/// Model and sampling settings of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSettings {
    pub model: String,
    pub temperature: f64,
    pub max_tokens: u32,
    pub structured: StructuredMode,
}

impl CallSettings {
    /// METHOD.md's defaults: temperature 0.3, 2048 tokens; replies asked for by JSON schema.
    pub fn new(model: impl Into<String>) -> Self {
        CallSettings {
            model: model.into(),
            temperature: 0.3,
            max_tokens: 2048,
            structured: StructuredMode::JsonSchema,
        }
    }
}

/// Builds the request for a reply of type `R`.
pub fn build_request<R: Reply>(
    model: &str,
    messages: Vec<ChatMessage>,
    temperature: f64,
    max_tokens: u32,
    structured: StructuredMode,
) -> ChatRequest {
    ChatRequest {
        model: model.to_owned(),
        messages,
        temperature,
        max_tokens,
        response_format: structured.response_format(R::NAME, &R::schema()),
    }
}

/// Everything about one chat call: what was sent, what came back, and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    pub kind: CallKind,
    pub request: ChatRequest,
    /// The reply's text; `None` when the call failed or the content was null.
    pub reply: Option<String>,
    pub finish_reason: Option<String>,
    /// Set when the call itself failed (no usable response).
    pub error: Option<ChatError>,
    /// Set when a reply came back but could not be read.
    pub parse_error: Option<String>,
    pub usage: Usage,
}

impl CallRecord {
    /// The call failed (no response, an HTTP error, an undecodable body).
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// A response came back but its reply could not be read.
    pub fn unparseable(&self) -> bool {
        self.error.is_none() && self.parse_error.is_some()
    }

    /// Why this call gave no usable reply, if it did not.
    pub fn problem(&self) -> Option<String> {
        if let Some(e) = &self.error {
            Some(format!("call failed: {e}"))
        } else {
            self.parse_error
                .as_ref()
                .map(|e| format!("unparseable reply: {e}"))
        }
    }
}

/// Sends `request` and reads a reply of type `R`. Never fails: the record says what happened.
pub async fn call_json<C: ChatClient, R: Reply>(
    client: &C,
    kind: CallKind,
    request: ChatRequest,
) -> (CallRecord, Option<R>) {
    let mut record = CallRecord {
        kind,
        request,
        reply: None,
        finish_reason: None,
        error: None,
        parse_error: None,
        usage: Usage::default(),
    };
    let response = match client.complete(&record.request).await {
        Ok(r) => r,
        Err(e) => {
            record.error = Some(e);
            return (record, None);
        }
    };
    record.usage = response.usage_or_zero();
    record.finish_reason = response.finish_reason().map(str::to_owned);
    if response.choices.is_empty() {
        record.error = Some(ChatError::Decode("the response has no choices".to_owned()));
        return (record, None);
    }
    record.reply = response.text().map(str::to_owned);
    let parsed = match &record.reply {
        Some(text) => parse_reply::<R>(text).map_err(|e: ReplyError| e.to_string()),
        None => Err(match response.refusal() {
            Some(refusal) => format!("the model refused: {refusal}"),
            None => "the reply has no content".to_owned(),
        }),
    };
    match parsed {
        Ok(r) => (record, Some(r)),
        Err(mut e) => {
            if let Some(reason) = record.finish_reason.as_deref().filter(|r| *r != "stop") {
                e.push_str(&format!(" (finish reason: {reason})"));
            }
            record.parse_error = Some(e);
            (record, None)
        }
    }
}

/// Why an LLM-judge stage (detect or extract) produced no result.
#[derive(Debug, Clone, PartialEq)]
pub enum StageError {
    /// The prompt could not be rendered; no call was made.
    Template(TemplateError),
    /// The call failed; the record has the error.
    Call(CallRecord),
    /// The reply could not be read; the record has the reply and the parse error.
    Unparseable(CallRecord),
}

impl StageError {
    /// The call made, if one was.
    pub fn call(&self) -> Option<&CallRecord> {
        match self {
            StageError::Template(_) => None,
            StageError::Call(r) | StageError::Unparseable(r) => Some(r),
        }
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageError::Template(e) => write!(f, "{e}"),
            StageError::Call(r) | StageError::Unparseable(r) => {
                write!(f, "{}", r.problem().unwrap_or_default())
            }
        }
    }
}

impl std::error::Error for StageError {}

/// Renders nothing itself: runs one structured call of `kind` and maps its outcome.
pub(crate) async fn run_stage_call<C: ChatClient, R: Reply>(
    client: &C,
    kind: CallKind,
    settings: &CallSettings,
    messages: Result<Vec<ChatMessage>, TemplateError>,
) -> Result<(R, CallRecord), StageError> {
    let messages = messages.map_err(StageError::Template)?;
    let request = build_request::<R>(
        &settings.model,
        messages,
        settings.temperature,
        settings.max_tokens,
        settings.structured,
    );
    let (record, reply) = call_json::<C, R>(client, kind, request).await;
    match reply {
        Some(r) => Ok((r, record)),
        None if record.failed() => Err(StageError::Call(record)),
        None => Err(StageError::Unparseable(record)),
    }
}

/// Calls and tokens of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StageUsage {
    pub calls: u32,
    /// Calls that failed outright.
    pub failed_calls: u32,
    /// Calls whose reply could not be read.
    pub unparseable_replies: u32,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl StageUsage {
    pub fn add(&mut self, record: &CallRecord) {
        self.calls += 1;
        self.failed_calls += u32::from(record.failed());
        self.unparseable_replies += u32::from(record.unparseable());
        self.prompt_tokens += record.usage.prompt_tokens;
        self.completion_tokens += record.usage.completion_tokens;
    }

    pub fn merge(&mut self, other: &StageUsage) {
        self.calls += other.calls;
        self.failed_calls += other.failed_calls;
        self.unparseable_replies += other.unparseable_replies;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }

    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// Calls and tokens per stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UsageByStage {
    pub detect: StageUsage,
    pub extract: StageUsage,
    pub relabel: StageUsage,
    pub judge: StageUsage,
}

impl UsageByStage {
    pub fn stage(&self, kind: CallKind) -> &StageUsage {
        match kind {
            CallKind::Detect => &self.detect,
            CallKind::Extract => &self.extract,
            CallKind::Relabel => &self.relabel,
            CallKind::Judge => &self.judge,
        }
    }

    pub fn stage_mut(&mut self, kind: CallKind) -> &mut StageUsage {
        match kind {
            CallKind::Detect => &mut self.detect,
            CallKind::Extract => &mut self.extract,
            CallKind::Relabel => &mut self.relabel,
            CallKind::Judge => &mut self.judge,
        }
    }

    /// Counts `record` under its stage.
    pub fn add(&mut self, record: &CallRecord) {
        self.stage_mut(record.kind).add(record);
    }

    pub fn merge(&mut self, other: &UsageByStage) {
        for kind in CallKind::ALL {
            self.stage_mut(kind).merge(other.stage(kind));
        }
    }

    /// All stages together.
    pub fn total(&self) -> StageUsage {
        let mut total = StageUsage::default();
        for kind in CallKind::ALL {
            total.merge(self.stage(kind));
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::client::testing::ScriptedClient;
    use crate::llm::openai::{ChatResponse, Choice, ResponseMessage};
    use crate::llm::reply::JudgeReply;
    use futures::executor::block_on;

    fn request() -> ChatRequest {
        build_request::<JudgeReply>(
            "m",
            vec![ChatMessage::user("u")],
            0.0,
            100,
            StructuredMode::JsonObject,
        )
    }

    #[test]
    fn records_success_failure_and_unparseable() {
        let client = ScriptedClient::with_replies([
            Ok(r#"{"is_valid": true, "confidence": 0.9, "rejection_reason": ""}"#),
            Ok("not json"),
            Err(ChatError::http(429, "slow down")),
        ])
        .with_usage(Usage::new(10, 5));
        let mut usage = UsageByStage::default();

        let (rec, reply) = block_on(call_json::<_, JudgeReply>(
            &client,
            CallKind::Judge,
            request(),
        ));
        assert!(reply.unwrap().is_valid);
        assert!(!rec.failed() && !rec.unparseable());
        usage.add(&rec);

        let (rec, reply) = block_on(call_json::<_, JudgeReply>(
            &client,
            CallKind::Judge,
            request(),
        ));
        assert!(reply.is_none());
        assert!(rec.unparseable());
        assert_eq!(rec.reply.as_deref(), Some("not json"));
        assert!(rec
            .problem()
            .unwrap()
            .starts_with("unparseable reply: whole reply:"));
        usage.add(&rec);

        let (rec, reply) = block_on(call_json::<_, JudgeReply>(
            &client,
            CallKind::Relabel,
            request(),
        ));
        assert!(reply.is_none());
        assert!(rec.failed());
        assert_eq!(rec.problem().unwrap(), "call failed: HTTP 429: slow down");
        assert_eq!(rec.usage, Usage::default());
        usage.add(&rec);

        assert_eq!(usage.judge.calls, 2);
        assert_eq!(usage.judge.unparseable_replies, 1);
        assert_eq!(usage.judge.prompt_tokens, 20);
        assert_eq!(usage.judge.completion_tokens, 10);
        assert_eq!(usage.relabel.failed_calls, 1);
        let total = usage.total();
        assert_eq!((total.calls, total.total_tokens()), (3, 30));
    }

    #[test]
    fn null_content_and_no_choices() {
        let client = ScriptedClient::new();
        client.push_response(ChatResponse {
            choices: vec![Choice {
                index: Some(0),
                message: ResponseMessage::default(),
                finish_reason: Some("length".into()),
            }],
            ..ChatResponse::default()
        });
        client.push_response(ChatResponse::default());
        let (rec, _) = block_on(call_json::<_, JudgeReply>(
            &client,
            CallKind::Judge,
            request(),
        ));
        assert_eq!(
            rec.parse_error.as_deref(),
            Some("the reply has no content (finish reason: length)")
        );
        let (rec, _) = block_on(call_json::<_, JudgeReply>(
            &client,
            CallKind::Judge,
            request(),
        ));
        assert!(rec.failed());
    }
}
