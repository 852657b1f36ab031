//! The data model: failed trajectories in the native schema and what each stage says of them.

use crate::json::JsonObject;
use serde::{Deserialize, Serialize};

/// One agent run that failed its goal (METHOD.md, "Input record").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    pub trajectory_id: String,
    pub original_prompt: String,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub final_answer: String,
    pub failure_reason: String,
    #[serde(default)]
    pub metadata: JsonObject,
    /// What an importer kept of a non-native source (format, system prompt, tool schemas,
    /// whether the run succeeded); `None` for records read in the native schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

impl Trajectory {
    /// Whether the source marked this run as a success (kept apart from the failures).
    pub fn succeeded(&self) -> bool {
        self.origin.as_ref().is_some_and(|o| o.succeeded)
    }

    /// The source gave no verdict: the run counts as a failure without the source saying so.
    pub fn verdict_unknown(&self) -> bool {
        self.origin.as_ref().is_some_and(|o| o.verdict_unknown)
    }

    /// The reasoning that came with the final answer ("" when there is none).
    pub fn final_thought(&self) -> &str {
        self.origin
            .as_ref()
            .map_or("", |o| o.final_thought.as_str())
    }
}

/// The parts of an imported run that the native schema has no place for, kept so that the
/// exports can rebuild the source's structure.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Origin {
    /// The import format's id (`openai_messages`, `tau_bench`, `sharegpt`, `react`,
    /// `toolbench`, `atif`).
    pub format: String,
    /// The run's system prompt, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Tool schemas as the source declared them (OpenAI function-tool objects), if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<crate::json::Json>,
    /// The source marked the run as successful (reward 1, `win: true`, ...).
    #[serde(default)]
    pub succeeded: bool,
    /// The source gives no verdict at all: the run is kept as a failure, but nothing says it
    /// failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verdict_unknown: bool,
    /// The reasoning that came with the final answer (after the last step), when the source
    /// kept it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub final_thought: String,
}

/// What a step is: a tool call answered by its result, or a reply to the user answered by the
/// user's next message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A tool call (`action_name`, `action_input`), its result the observation.
    #[default]
    Tool,
    /// A message to the user (tau-bench's `respond` action): `action_name` is [`RESPOND`],
    /// `action_input` is `{"content": text}` and the observation is the user's next message.
    Respond,
}

impl StepKind {
    pub fn is_tool(&self) -> bool {
        *self == StepKind::Tool
    }
}

/// The action name of a reply to the user.
pub const RESPOND: &str = "respond";

/// One thought → action → observation step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub thought: String,
    pub action_name: String,
    #[serde(default)]
    pub action_input: JsonObject,
    pub observation: String,
    /// The source's tool call this step came from, when imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<ToolCall>,
    /// A tool call (the native schema's only kind) or a reply to the user.
    #[serde(default, skip_serializing_if = "StepKind::is_tool")]
    pub kind: StepKind,
}

impl Step {
    /// A reply to the user: `content` as the action input, the user's answer as the
    /// observation.
    pub fn respond(thought: String, content: String, answer: String) -> Step {
        let mut input = JsonObject::new();
        input.insert("content", crate::json::Json::String(content));
        Step {
            thought,
            action_name: RESPOND.to_owned(),
            action_input: input,
            observation: answer,
            call: None,
            kind: StepKind::Respond,
        }
    }

    pub fn is_respond(&self) -> bool {
        self.kind == StepKind::Respond
    }

    /// The text of a reply to the user ("" for a tool call).
    pub fn reply(&self) -> &str {
        match self.kind {
            StepKind::Respond => self
                .action_input
                .get("content")
                .and_then(crate::json::Json::as_str)
                .unwrap_or(""),
            StepKind::Tool => "",
        }
    }
}

/// A tool call as the source wrote it: its id, its arguments exactly as given (a JSON string
/// in OpenAI's layout) and the assistant turn it belonged to (parallel calls share a turn).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ToolCall {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub arguments: String,
    pub turn: u32,
}

/// The failure taxonomy of Stage 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureType {
    ConstraintViolation,
    WrongResult,
    Incomplete,
    ToolError,
    Hallucination,
    OffTopic,
}

impl FailureType {
    pub const ALL: [FailureType; 6] = [
        FailureType::ConstraintViolation,
        FailureType::WrongResult,
        FailureType::Incomplete,
        FailureType::ToolError,
        FailureType::Hallucination,
        FailureType::OffTopic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureType::ConstraintViolation => "constraint_violation",
            FailureType::WrongResult => "wrong_result",
            FailureType::Incomplete => "incomplete",
            FailureType::ToolError => "tool_error",
            FailureType::Hallucination => "hallucination",
            FailureType::OffTopic => "off_topic",
        }
    }

    pub fn parse(s: &str) -> Option<FailureType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Stage 1's verdict on a trajectory.
///
/// `severity` is the reference's number (rule-based: `min(1, 0.3 + 0.1 × hits)`); `weight` is
/// the paper's severity weight w in [0, 1], used for the δ gate and as the sample weight. In
/// rule-based mode the two are equal; an LLM judge returns both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureAnalysis {
    pub is_failure: bool,
    /// `None` when no rule fired and there is no failure reason (the reference writes null).
    pub failure_type: Option<FailureType>,
    pub severity: f64,
    pub weight: f64,
    pub recoverable: bool,
    pub explanation: String,
}

/// Stage 2: what the agent actually achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractedOutcome {
    pub actual_achievements: Vec<String>,
    pub key_observations: Vec<String>,
    pub limitations: String,
}

/// Stage 3's accepted relabeling of a trajectory: the hindsight goal it demonstrates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relabel {
    pub hindsight_prompt: String,
    pub is_valid_replay: bool,
    pub rationale: String,
    /// The confidence the sample carries: (c + c2) / 2 when the second judge agreed, the
    /// relabeler's own c when accepted by the single-judge fallback.
    pub confidence: f64,
}

/// A chat message of a packaged sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Message {
            role: role.to_owned(),
            content: content.into(),
        }
    }
}

/// The three native sample envelopes of Stage 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleFormat {
    Sft,
    Dpo,
    Sharegpt,
}

impl SampleFormat {
    pub const ALL: [SampleFormat; 3] =
        [SampleFormat::Sft, SampleFormat::Dpo, SampleFormat::Sharegpt];

    pub fn as_str(self) -> &'static str {
        match self {
            SampleFormat::Sft => "sft",
            SampleFormat::Dpo => "dpo",
            SampleFormat::Sharegpt => "sharegpt",
        }
    }
}

/// One packaged training sample (one JSONL line), field order as the reference writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub source_trajectory_id: String,
    pub format: SampleFormat,
    pub hindsight_prompt: String,
    pub weight: f64,
    pub chosen: Vec<Message>,
    pub rejected: Vec<Message>,
    /// Format-specific fields, in the reference's order.
    pub metadata: JsonObject,
}
