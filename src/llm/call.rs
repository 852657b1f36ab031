//! One structured chat call, what it leaves on record, and per-stage accounting.

use super::client::{ChatClient, ChatError};
use super::openai::{ChatMessage, ChatRequest, ChatResponse, StructuredMode, Usage};
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

/// Prompts estimated below this many tokens are never flagged as truncated: too short for the
/// estimate to mean anything, and shorter than any server's context.
pub const MIN_PROMPT_ESTIMATE: u64 = 256;

/// The prompt's size in tokens as this product estimates it: the characters (code points) of
/// every message's role and content, divided by 4, rounded up. Four characters a token is the
/// usual figure for English text with current tokenizers; text in other scripts and code
/// usually takes more tokens, so the estimate errs low, which is the safe side for
/// [`CallFlag::PromptTruncated`].
pub fn estimate_prompt_tokens(request: &ChatRequest) -> u64 {
    let chars: usize = request
        .messages
        .iter()
        .map(|m| m.role.chars().count() + m.content.chars().count())
        .sum();
    (chars as u64).div_ceil(4)
}

/// Something worth a warning about a call that otherwise went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "flag", rename_all = "snake_case")]
pub enum CallFlag {
    /// `finish_reason: "length"`: the reply hit `max_tokens` and was cut off.
    ReplyTruncated { max_tokens: u32 },
    /// The server counted less than half the prompt tokens the prompt should have (see
    /// [`estimate_prompt_tokens`]; only for estimates of at least [`MIN_PROMPT_ESTIMATE`]):
    /// it most likely cut the prompt to fit a small context, as Ollama does silently.
    PromptTruncated {
        reported_tokens: u64,
        estimated_tokens: u64,
    },
}

impl CallFlag {
    /// `reply_truncated` or `prompt_truncated`.
    pub fn kind(&self) -> &'static str {
        match self {
            CallFlag::ReplyTruncated { .. } => "reply_truncated",
            CallFlag::PromptTruncated { .. } => "prompt_truncated",
        }
    }

    /// What the flag means and what to do about it.
    pub fn advice(&self) -> String {
        match self {
            CallFlag::ReplyTruncated { max_tokens } => {
                format!("The reply was cut off at max_tokens ({max_tokens}): raise max_tokens.")
            }
            CallFlag::PromptTruncated {
                reported_tokens,
                estimated_tokens,
            } => format!(
                "The server counted {reported_tokens} prompt tokens for a prompt of about \
                 {estimated_tokens}: the server truncated the prompt: raise its context size, \
                 e.g. Ollama's num_ctx / OLLAMA_CONTEXT_LENGTH."
            ),
        }
    }

    /// The flags a response to `request` deserves.
    pub fn of(request: &ChatRequest, response: &ChatResponse) -> Vec<CallFlag> {
        let mut flags = Vec::new();
        if response.finish_reason() == Some("length") {
            flags.push(CallFlag::ReplyTruncated {
                max_tokens: request.max_tokens,
            });
        }
        let reported = response.usage_or_zero().prompt_tokens;
        let estimated = estimate_prompt_tokens(request);
        // 0 means the server did not count (or did not say).
        if reported > 0 && estimated >= MIN_PROMPT_ESTIMATE && reported * 2 < estimated {
            flags.push(CallFlag::PromptTruncated {
                reported_tokens: reported,
                estimated_tokens: estimated,
            });
        }
        flags
    }
}

/// Everything about one chat call: what was sent, what came back, and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Tries after the first that the call took (failed tries the client retried).
    pub retries: u32,
    /// The response came from the exchange log: nothing was sent.
    pub from_log: bool,
    /// Warnings about the response (a cut-off reply, a truncated prompt).
    pub flags: Vec<CallFlag>,
}

#[cfg(test)]
impl CallRecord {
    /// A call of `kind` that used `usage` after `retries` retries and brought back no reply
    /// (for tests that only count).
    pub(crate) fn counted(kind: CallKind, usage: Usage, retries: u32) -> Self {
        CallRecord {
            kind,
            request: build_request::<super::reply::DetectReply>(
                "m",
                vec![],
                0.0,
                1,
                StructuredMode::PromptOnly,
            ),
            reply: None,
            finish_reason: None,
            error: None,
            parse_error: None,
            usage,
            retries,
            from_log: false,
            flags: Vec::new(),
        }
    }
}

impl CallRecord {
    /// The call failed (no response, an HTTP error, an undecodable body).
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// The request never went out (the run was stopped or paused first).
    pub fn not_sent(&self) -> bool {
        self.error.as_ref().is_some_and(ChatError::is_not_sent)
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
        retries: 0,
        from_log: false,
        flags: Vec::new(),
    };
    let response = match client.complete(&record.request).await {
        Ok(r) => r,
        Err(e) => {
            record.retries = e.retries();
            record.error = Some(e);
            return (record, None);
        }
    };
    record.retries = response.delivery.retries;
    record.from_log = response.delivery.from_log;
    record.flags = CallFlag::of(&record.request, &response);
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
    /// Tries after the first, over all calls (each one a request the endpoint failed).
    #[serde(default)]
    pub retries: u32,
    /// Calls answered from the exchange log (their tokens are counted as recorded).
    #[serde(default)]
    pub from_log: u32,
    /// Calls with at least one [`CallFlag`].
    #[serde(default)]
    pub flagged_calls: u32,
    /// Calls held back by a stop or a pause before their request went out
    /// ([`ChatError::NotSent`]): not counted in `calls`.
    #[serde(default)]
    pub not_sent: u32,
}

impl StageUsage {
    pub fn add(&mut self, record: &CallRecord) {
        if record.not_sent() {
            self.not_sent += 1;
            return;
        }
        self.calls += 1;
        self.failed_calls += u32::from(record.failed());
        self.unparseable_replies += u32::from(record.unparseable());
        self.prompt_tokens += record.usage.prompt_tokens;
        self.completion_tokens += record.usage.completion_tokens;
        self.retries += record.retries;
        self.from_log += u32::from(record.from_log);
        self.flagged_calls += u32::from(!record.flags.is_empty());
    }

    pub fn merge(&mut self, other: &StageUsage) {
        self.calls += other.calls;
        self.failed_calls += other.failed_calls;
        self.unparseable_replies += other.unparseable_replies;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.retries += other.retries;
        self.from_log += other.from_log;
        self.flagged_calls += other.flagged_calls;
        self.not_sent += other.not_sent;
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

    fn response(text: &str, finish: &str, usage: Usage) -> ChatResponse {
        let mut r = ChatResponse::from_text(text, usage);
        r.choices[0].finish_reason = Some(finish.into());
        r
    }

    fn long_request(chars: usize) -> ChatRequest {
        build_request::<JudgeReply>(
            "m",
            vec![ChatMessage::user("x".repeat(chars))],
            0.0,
            100,
            StructuredMode::JsonObject,
        )
    }

    #[test]
    fn the_estimate_counts_characters_of_roles_and_contents() {
        // "user" + 96 characters = 100 → 25 tokens; "é" is one character.
        let r = long_request(96);
        assert_eq!(estimate_prompt_tokens(&r), 25);
        let r = build_request::<JudgeReply>(
            "m",
            vec![ChatMessage::system("é"), ChatMessage::user("abc")],
            0.0,
            1,
            StructuredMode::PromptOnly,
        );
        assert_eq!(estimate_prompt_tokens(&r), 4); // 6 + 1 + 4 + 3 = 14 → 4
    }

    #[test]
    fn cut_off_replies_and_truncated_prompts_are_flagged() {
        // About 1,001 tokens sent (4,000 characters + "user").
        let request = long_request(4000);
        let ok = JUDGE_JSON;
        let client = ScriptedClient::new();
        client.push_response(response(ok, "stop", Usage::new(990, 20)));
        client.push_response(response(
            r#"{"is_valid": tr"#,
            "length",
            Usage::new(990, 100),
        ));
        client.push_response(response(ok, "stop", Usage::new(480, 20)));
        client.push_response(response(ok, "stop", Usage::new(0, 0)));
        let call = || {
            block_on(call_json::<_, JudgeReply>(
                &client,
                CallKind::Judge,
                request.clone(),
            ))
            .0
        };

        assert!(call().flags.is_empty(), "a full count of a full prompt");
        let cut = call();
        assert_eq!(cut.flags, [CallFlag::ReplyTruncated { max_tokens: 100 }]);
        assert!(cut.unparseable());
        assert_eq!(
            cut.flags[0].advice(),
            "The reply was cut off at max_tokens (100): raise max_tokens."
        );
        let truncated = call();
        assert_eq!(
            truncated.flags,
            [CallFlag::PromptTruncated {
                reported_tokens: 480,
                estimated_tokens: 1001
            }]
        );
        assert!(!truncated.unparseable(), "the reply itself was fine");
        assert_eq!(
            truncated.flags[0].advice(),
            "The server counted 480 prompt tokens for a prompt of about 1001: the server \
             truncated the prompt: raise its context size, e.g. Ollama's num_ctx / \
             OLLAMA_CONTEXT_LENGTH."
        );
        assert!(call().flags.is_empty(), "no count: no verdict");

        let mut usage = StageUsage::default();
        usage.add(&cut);
        usage.add(&truncated);
        assert_eq!(usage.flagged_calls, 2);
    }

    #[test]
    fn short_prompts_are_never_flagged_as_truncated() {
        // 1,000 characters: about 251 tokens, under the floor, even with 1 token reported.
        let client = ScriptedClient::new();
        client.push_response(response(JUDGE_JSON, "stop", Usage::new(1, 20)));
        let (rec, _) = block_on(call_json::<_, JudgeReply>(
            &client,
            CallKind::Judge,
            long_request(1000),
        ));
        assert!(rec.flags.is_empty());
    }

    #[test]
    fn retries_and_replays_are_on_the_record() {
        use crate::llm::exchange::{CachingClient, ExchangeLog};
        use crate::llm::retry::{FakeClock, RetryPolicy, RetryingClient};
        let inner = ScriptedClient::with_replies([
            Err(ChatError::http(503, "busy")),
            Ok(JUDGE_JSON),
            Err(ChatError::Timeout),
            Err(ChatError::Timeout),
        ]);
        let log = ExchangeLog::new();
        let retrying = RetryingClient::new(&inner, RetryPolicy::default(), FakeClock::new());
        let client = CachingClient::new(&retrying, log.clone(), "http://h/v1");
        let (rec, reply) = block_on(call_json::<_, JudgeReply>(
            &client,
            CallKind::Judge,
            request(),
        ));
        assert!(reply.is_some());
        assert_eq!((rec.retries, rec.from_log), (1, false));

        // The same request again in a later run: from the log, no retry, nothing sent.
        let client = CachingClient::new(&retrying, log.clone(), "http://h/v1");
        let (rec, reply) = block_on(call_json::<_, JudgeReply>(
            &client,
            CallKind::Judge,
            request(),
        ));
        assert!(reply.is_some());
        assert_eq!((rec.retries, rec.from_log), (0, true));
        assert_eq!(inner.request_count(), 2);

        // A call that fails after a retry counts that retry too.
        let retrying = RetryingClient::new(
            &inner,
            RetryPolicy {
                max_attempts: 2,
                ..RetryPolicy::default()
            },
            FakeClock::new(),
        );
        let (rec, _) = block_on(call_json::<_, JudgeReply>(
            &retrying,
            CallKind::Judge,
            request(),
        ));
        assert!(rec.failed());
        assert_eq!(rec.retries, 1);
        assert_eq!(
            rec.problem().unwrap(),
            "call failed: gave up after 2 attempts: the request timed out"
        );
        let mut usage = UsageByStage::default();
        usage.add(&rec);
        assert_eq!(usage.judge.retries, 1);
        assert_eq!(usage.total().retries, 1);
    }

    const JUDGE_JSON: &str = r#"{"is_valid": true, "confidence": 0.9, "rejection_reason": ""}"#;

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
