//! The OpenAI-compatible chat-completions wire types.
//!
//! Requests serialize to the body of `POST /v1/chat/completions`; responses are read
//! tolerantly, because "OpenAI-compatible" servers differ in what they add or leave out.

use serde::de::{Deserializer, Error as _};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// One chat message of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.to_owned(),
            content: content.into(),
        }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
}

/// How a structured (JSON) reply is asked for. In every mode the prompt itself also states
/// the JSON shape expected; the modes differ in what the endpoint is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StructuredMode {
    /// `response_format: {"type": "json_schema", ...}` with the reply's schema, strict.
    #[default]
    JsonSchema,
    /// `response_format: {"type": "json_object"}`.
    JsonObject,
    /// No `response_format`: the prompt alone asks for JSON.
    PromptOnly,
}

impl StructuredMode {
    pub const ALL: [StructuredMode; 3] = [
        StructuredMode::JsonSchema,
        StructuredMode::JsonObject,
        StructuredMode::PromptOnly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StructuredMode::JsonSchema => "json_schema",
            StructuredMode::JsonObject => "json_object",
            StructuredMode::PromptOnly => "prompt_only",
        }
    }

    /// The next, less demanding mode to try when an endpoint refuses this one.
    pub fn fallback(self) -> Option<StructuredMode> {
        match self {
            StructuredMode::JsonSchema => Some(StructuredMode::JsonObject),
            StructuredMode::JsonObject => Some(StructuredMode::PromptOnly),
            StructuredMode::PromptOnly => None,
        }
    }

    /// The `response_format` this mode sends for a reply with the given schema.
    pub fn response_format(self, name: &str, schema: &serde_json::Value) -> Option<ResponseFormat> {
        match self {
            StructuredMode::JsonSchema => Some(ResponseFormat::JsonSchema {
                name: name.to_owned(),
                schema: schema.clone(),
                strict: true,
            }),
            StructuredMode::JsonObject => Some(ResponseFormat::JsonObject),
            StructuredMode::PromptOnly => None,
        }
    }
}

/// The `response_format` field of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    /// `{"type":"json_schema","json_schema":{"name":…,"schema":…,"strict":…}}`
    JsonSchema {
        name: String,
        schema: serde_json::Value,
        strict: bool,
    },
    /// `{"type":"json_object"}`
    JsonObject,
}

impl Serialize for ResponseFormat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Inner<'a> {
            name: &'a str,
            schema: &'a serde_json::Value,
            strict: bool,
        }
        match self {
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            } => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("type", "json_schema")?;
                map.serialize_entry(
                    "json_schema",
                    &Inner {
                        name,
                        schema,
                        strict: *strict,
                    },
                )?;
                map.end()
            }
            ResponseFormat::JsonObject => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("type", "json_object")?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for ResponseFormat {
    /// Reads what [`Serialize`] writes (a stored request is read back exactly).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Inner {
            name: String,
            schema: serde_json::Value,
            #[serde(default)]
            strict: bool,
        }
        #[derive(Deserialize)]
        struct Outer {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            json_schema: Option<Inner>,
        }
        let outer = Outer::deserialize(d)?;
        match (outer.kind.as_str(), outer.json_schema) {
            ("json_object", _) => Ok(ResponseFormat::JsonObject),
            ("json_schema", Some(inner)) => Ok(ResponseFormat::JsonSchema {
                name: inner.name,
                schema: inner.schema,
                strict: inner.strict,
            }),
            ("json_schema", None) => Err(D::Error::custom("json_schema without its schema")),
            (other, _) => Err(D::Error::custom(format!(
                "unknown response_format type {other:?}"
            ))),
        }
    }
}

/// A chat-completions request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub temperature: f64,
    pub max_tokens: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
}

impl ChatRequest {
    /// The request body as JSON text, ready to POST.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a chat request always serializes")
    }
}

/// Token counts of one call. Missing or null counts read as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, deserialize_with = "count_or_null")]
    pub prompt_tokens: u64,
    #[serde(default, deserialize_with = "count_or_null")]
    pub completion_tokens: u64,
    #[serde(default, deserialize_with = "count_or_null")]
    pub total_tokens: u64,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
    }
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(mut self, other: Usage) -> Usage {
        self += other;
        self
    }
}

fn count_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    // Some servers send floats ("12.0") or null here.
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(0),
        Some(serde_json::Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                Ok(u)
            } else {
                match n.as_f64() {
                    Some(f) if f >= 0.0 && f.fract() == 0.0 => Ok(f as u64),
                    _ => Err(D::Error::custom(format!("invalid token count {n}"))),
                }
            }
        }
        Some(other) => Err(D::Error::custom(format!("invalid token count {other}"))),
    }
}

/// A chat-completions response. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatResponse {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default, deserialize_with = "vec_or_null")]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<Usage>,
    /// How this response reached the caller; set by the client chain, never on the wire.
    #[serde(skip)]
    pub delivery: Delivery,
}

/// How a response was obtained: not part of what the server sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Delivery {
    /// Failed tries before this response (see [`RetryingClient`](super::retry::RetryingClient)).
    pub retries: u32,
    /// Answered from the exchange log, without a request (see
    /// [`CachingClient`](super::exchange::CachingClient)).
    pub from_log: bool,
}

/// One choice of a response.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub message: ResponseMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// The message of a choice. `content` may be null (e.g. a refusal or a cut-off reply); a
/// content given as a list of parts is joined from its text parts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResponseMessage {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default, deserialize_with = "content_text")]
    pub content: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
}

fn vec_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Choice>, D::Error> {
    Ok(Option::<Vec<Choice>>::deserialize(d)?.unwrap_or_default())
}

fn content_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(serde_json::Value::Array(parts)) => {
            let mut text = String::new();
            for part in parts {
                match part {
                    serde_json::Value::String(s) => text.push_str(&s),
                    serde_json::Value::Object(o) => {
                        if let Some(serde_json::Value::String(s)) = o.get("text") {
                            text.push_str(s);
                        }
                    }
                    _ => {}
                }
            }
            Ok(Some(text))
        }
        Some(other) => Err(D::Error::custom(format!(
            "message content is neither text nor a list of parts: {other}"
        ))),
    }
}

impl ChatResponse {
    /// A response with one choice holding `text`, as a server would send it.
    pub fn from_text(text: impl Into<String>, usage: Usage) -> Self {
        ChatResponse {
            id: None,
            model: None,
            choices: vec![Choice {
                index: Some(0),
                message: ResponseMessage {
                    role: Some("assistant".to_owned()),
                    content: Some(text.into()),
                    refusal: None,
                },
                finish_reason: Some("stop".to_owned()),
            }],
            usage: Some(usage),
            delivery: Delivery::default(),
        }
    }

    /// The first choice's text, when there is a choice and its content is not null.
    pub fn text(&self) -> Option<&str> {
        self.choices.first()?.message.content.as_deref()
    }

    /// The first choice's finish reason ("stop", "length", ...), when given.
    pub fn finish_reason(&self) -> Option<&str> {
        self.choices.first()?.finish_reason.as_deref()
    }

    /// The first choice's refusal message, when the server sent one.
    pub fn refusal(&self) -> Option<&str> {
        self.choices.first()?.message.refusal.as_deref()
    }

    /// The usage counts, zero when the server sent none.
    pub fn usage_or_zero(&self) -> Usage {
        self.usage.unwrap_or_default()
    }
}

/// The body of `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelList {
    #[serde(default)]
    pub data: Vec<ModelEntry>,
}

/// One model of a [`ModelList`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    pub id: String,
    #[serde(default)]
    pub owned_by: Option<String>,
}

impl ModelList {
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.data.iter().map(|m| m.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(mode: StructuredMode) -> ChatRequest {
        let schema = json!({"type": "object"});
        ChatRequest {
            model: "m".into(),
            messages: vec![ChatMessage::system("s"), ChatMessage::user("u")],
            temperature: 0.3,
            max_tokens: 2048,
            response_format: mode.response_format("reply", &schema),
        }
    }

    #[test]
    fn request_bodies_per_mode() {
        let body: serde_json::Value =
            serde_json::from_str(&request(StructuredMode::JsonSchema).to_json()).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
                "temperature": 0.3,
                "max_tokens": 2048,
                "response_format": {"type": "json_schema", "json_schema": {
                    "name": "reply", "schema": {"type": "object"}, "strict": true}}
            })
        );
        let body = serde_json::to_value(request(StructuredMode::JsonObject)).unwrap();
        assert_eq!(body["response_format"], json!({"type": "json_object"}));
        let body = serde_json::to_value(request(StructuredMode::PromptOnly)).unwrap();
        assert!(body.get("response_format").is_none());
    }

    #[test]
    fn fallback_chain() {
        assert_eq!(
            StructuredMode::JsonSchema.fallback(),
            Some(StructuredMode::JsonObject)
        );
        assert_eq!(
            StructuredMode::JsonObject.fallback(),
            Some(StructuredMode::PromptOnly)
        );
        assert_eq!(StructuredMode::PromptOnly.fallback(), None);
    }

    #[test]
    fn requests_read_back_as_written() {
        for mode in StructuredMode::ALL {
            let r = request(mode);
            let back: ChatRequest = serde_json::from_str(&r.to_json()).unwrap();
            assert_eq!(back, r, "{mode:?}");
        }
        let bad = r#"{"model":"m","messages":[],"temperature":0,"max_tokens":1,"response_format":{"type":"xml"}}"#;
        assert!(serde_json::from_str::<ChatRequest>(bad).is_err());
        let bad = r#"{"model":"m","messages":[],"temperature":0,"max_tokens":1,"response_format":{"type":"json_schema"}}"#;
        assert!(serde_json::from_str::<ChatRequest>(bad).is_err());
    }

    #[test]
    fn tolerant_response() {
        let r: ChatResponse = serde_json::from_str(
            r#"{"id":"x","object":"chat.completion","created":1,"system_fingerprint":null,
                "choices":[{"index":0,"message":{"role":"assistant","content":"hi","tool_calls":[]},
                "logprobs":null,"finish_reason":"stop"}],
                "usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,
                "prompt_tokens_details":{"cached_tokens":0}}}"#,
        )
        .unwrap();
        assert_eq!(r.text(), Some("hi"));
        assert_eq!(r.finish_reason(), Some("stop"));
        assert_eq!(r.usage_or_zero(), Usage::new(5, 2));

        let r: ChatResponse =
            serde_json::from_str(r#"{"choices":[{"message":{"content":null}}]}"#).unwrap();
        assert_eq!(r.text(), None);
        assert_eq!(r.finish_reason(), None);
        assert_eq!(r.usage_or_zero(), Usage::default());

        let r: ChatResponse = serde_json::from_str(
            r#"{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
                "finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":null}}"#,
        )
        .unwrap();
        assert_eq!(r.text(), Some("ab"));
        assert_eq!(r.finish_reason(), Some("length"));
        assert_eq!(r.usage_or_zero().prompt_tokens, 3);
        assert_eq!(r.usage_or_zero().completion_tokens, 0);

        let r: ChatResponse = serde_json::from_str(r#"{"choices":null}"#).unwrap();
        assert_eq!(r.text(), None);
    }

    #[test]
    fn model_list() {
        let l: ModelList = serde_json::from_str(
            r#"{"object":"list","data":[{"id":"a","object":"model"},{"id":"b","owned_by":"me"}]}"#,
        )
        .unwrap();
        assert_eq!(l.ids().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn usage_sums() {
        let mut u = Usage::new(1, 2);
        u += Usage::new(10, 20);
        assert_eq!(u, Usage::new(11, 22));
        assert_eq!(u.total_tokens, 33);
    }
}
