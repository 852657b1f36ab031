//! The prompts, as minijinja templates: one system and one user template per prompt.
//!
//! Templates render with [`UndefinedBehavior::Strict`]: a field the context does not have is
//! an error, never an empty string. The context each prompt gets is its contract with
//! user-edited templates:
//!
//! | prompt | context |
//! |---|---|
//! | detect, extract | `trajectory` {`id`, `original_prompt`, `failure_reason`, `final_answer`, `final_thought`, `step_count`, `steps`}, `reply_schema`; detect also `failure_types` |
//! | relabel | `original_prompt`, `actual_achievements`, `key_observations`, `limitations`, `step_count`, `reply_schema` |
//! | judge | `hindsight_prompt`, `steps`, `step_count`, `final_answer`, `reply_schema` |
//!
//! A step of `trajectory.steps` has `number` (1-based), `thought`, `action_name`,
//! `action_input` (the input as JSON text), `observation`, `reply` (true for a reply to the
//! user, whose observation is the user's next message) and `reply_text` (the reply, "" for a
//! tool call). `final_thought` is the reasoning that came with the final answer. The judge's steps have no
//! `thought`, and the judge's context has no original prompt at all: the second judge sees
//! only the hindsight prompt and what the agent did and found, so no template can leak the
//! original goal to it. `reply_schema` is the reply's JSON schema, pretty-printed.
//!
//! Observations are rendered in full.

use super::openai::ChatMessage;
use super::reply::{DetectReply, ExtractReply, JudgeReply, RelabelReply, Reply};
use super::schema;
use crate::json::Json;
use crate::model::{ExtractedOutcome, Step, Trajectory};
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The version of the built-in templates, recorded in run manifests.
pub const DEFAULT_VERSION: &str = "agenther-prompts-2";

/// The four prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptKind {
    Detect,
    Extract,
    Relabel,
    Judge,
}

impl PromptKind {
    pub const ALL: [PromptKind; 4] = [
        PromptKind::Detect,
        PromptKind::Extract,
        PromptKind::Relabel,
        PromptKind::Judge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PromptKind::Detect => "detect",
            PromptKind::Extract => "extract",
            PromptKind::Relabel => "relabel",
            PromptKind::Judge => "judge",
        }
    }

    /// The template's file name: `{kind}_system.j2` or `{kind}_user.j2`.
    pub fn file_name(self, system: bool) -> &'static str {
        match (self, system) {
            (PromptKind::Detect, true) => "detect_system.j2",
            (PromptKind::Detect, false) => "detect_user.j2",
            (PromptKind::Extract, true) => "extract_system.j2",
            (PromptKind::Extract, false) => "extract_user.j2",
            (PromptKind::Relabel, true) => "relabel_system.j2",
            (PromptKind::Relabel, false) => "relabel_user.j2",
            (PromptKind::Judge, true) => "judge_system.j2",
            (PromptKind::Judge, false) => "judge_user.j2",
        }
    }

    fn template_name(self, part: Part) -> &'static str {
        match (self, part) {
            (PromptKind::Detect, Part::System) => "detect/system",
            (PromptKind::Detect, Part::User) => "detect/user",
            (PromptKind::Extract, Part::System) => "extract/system",
            (PromptKind::Extract, Part::User) => "extract/user",
            (PromptKind::Relabel, Part::System) => "relabel/system",
            (PromptKind::Relabel, Part::User) => "relabel/user",
            (PromptKind::Judge, Part::System) => "judge/system",
            (PromptKind::Judge, Part::User) => "judge/user",
        }
    }
}

#[derive(Clone, Copy)]
enum Part {
    System,
    User,
}

/// The source text of one prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptSource {
    /// May render to nothing, in which case no system message is sent.
    pub system: String,
    pub user: String,
}

/// The source text of every prompt, with a version: what a user edits and saves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSources {
    pub version: String,
    pub detect: PromptSource,
    pub extract: PromptSource,
    pub relabel: PromptSource,
    pub judge: PromptSource,
}

impl TemplateSources {
    /// The built-in prompts.
    pub fn defaults() -> Self {
        TemplateSources {
            version: DEFAULT_VERSION.to_owned(),
            detect: PromptSource {
                system: include_str!("templates/detect_system.j2").to_owned(),
                user: include_str!("templates/detect_user.j2").to_owned(),
            },
            extract: PromptSource {
                system: include_str!("templates/extract_system.j2").to_owned(),
                user: include_str!("templates/extract_user.j2").to_owned(),
            },
            relabel: PromptSource {
                system: include_str!("templates/relabel_system.j2").to_owned(),
                user: include_str!("templates/relabel_user.j2").to_owned(),
            },
            judge: PromptSource {
                system: include_str!("templates/judge_system.j2").to_owned(),
                user: include_str!("templates/judge_user.j2").to_owned(),
            },
        }
    }

    /// SHA-256 (hex) over each template in file order (`detect_system.j2`, `detect_user.j2`,
    /// `extract_…`, `relabel_…`, `judge_…`): its file name, a NUL, its text, a NUL. The version
    /// is not part of it: the same texts give the same fingerprint.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for (file, text) in self.files() {
            hash.update(file.as_bytes());
            hash.update([0]);
            hash.update(text.as_bytes());
            hash.update([0]);
        }
        crate::llm::templates::hex(&hash.finalize())
    }

    /// Each template's file name (as in `src/llm/templates/`) and text, in order.
    pub fn files(&self) -> Vec<(&'static str, &str)> {
        PromptKind::ALL
            .into_iter()
            .flat_map(|kind| {
                let s = self.get(kind);
                [
                    (kind.file_name(true), s.system.as_str()),
                    (kind.file_name(false), s.user.as_str()),
                ]
            })
            .collect()
    }

    /// The text of the template in file `name` (`relabel_user.j2`), to edit.
    pub fn file_mut(&mut self, name: &str) -> Option<&mut String> {
        let kind = PromptKind::ALL
            .into_iter()
            .find(|k| name == k.file_name(true) || name == k.file_name(false))?;
        let system = name == kind.file_name(true);
        let source = self.get_mut(kind);
        Some(if system {
            &mut source.system
        } else {
            &mut source.user
        })
    }

    pub fn get(&self, kind: PromptKind) -> &PromptSource {
        match kind {
            PromptKind::Detect => &self.detect,
            PromptKind::Extract => &self.extract,
            PromptKind::Relabel => &self.relabel,
            PromptKind::Judge => &self.judge,
        }
    }

    pub fn get_mut(&mut self, kind: PromptKind) -> &mut PromptSource {
        match kind {
            PromptKind::Detect => &mut self.detect,
            PromptKind::Extract => &mut self.extract,
            PromptKind::Relabel => &mut self.relabel,
            PromptKind::Judge => &mut self.judge,
        }
    }
}

/// A template that does not compile or does not render.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateError {
    /// e.g. "relabel/user".
    pub template: String,
    pub message: String,
    /// The line of the template the error is at, when minijinja knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template {}: {}", self.template, self.message)
    }
}

impl std::error::Error for TemplateError {}

fn template_error(name: &str, e: &minijinja::Error) -> TemplateError {
    let mut message = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(line) = e.line() {
        message.push_str(&format!(" (line {line})"));
    }
    TemplateError {
        template: name.to_owned(),
        message,
        line: e.line(),
    }
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compiled, validated prompt templates.
#[derive(Clone)]
pub struct Templates {
    sources: TemplateSources,
    env: Environment<'static>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates")
            .field("version", &self.sources.version)
            .finish_non_exhaustive()
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::defaults()
    }
}

impl Templates {
    /// The built-in prompts.
    pub fn defaults() -> Self {
        Self::new(TemplateSources::defaults()).expect("the built-in templates are valid")
    }

    /// Compiles `sources` and checks that every template renders against a sample context.
    pub fn new(sources: TemplateSources) -> Result<Self, TemplateError> {
        if sources.version.trim().is_empty() {
            return Err(TemplateError {
                template: "version".to_owned(),
                message: "the version must not be empty".to_owned(),
                line: None,
            });
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("the default delimiters are valid");
        env.set_syntax(syntax);
        for kind in PromptKind::ALL {
            let source = sources.get(kind);
            for (part, text) in [(Part::System, &source.system), (Part::User, &source.user)] {
                let name = kind.template_name(part);
                env.add_template_owned(name, text.clone())
                    .map_err(|e| template_error(name, &e))?;
            }
        }
        let templates = Templates { sources, env };
        templates.validate()?;
        Ok(templates)
    }

    fn validate(&self) -> Result<(), TemplateError> {
        let (trajectory, outcome) = sample();
        let rendered = [
            (PromptKind::Detect, self.render_detect(&trajectory)?),
            (PromptKind::Extract, self.render_extract(&trajectory)?),
            (
                PromptKind::Relabel,
                self.render_relabel(&trajectory, &outcome)?,
            ),
            (
                PromptKind::Judge,
                self.render_judge(&trajectory, "Sample request")?,
            ),
        ];
        for (kind, messages) in rendered {
            let user = messages.last().expect("a user message is always present");
            if user.content.is_empty() {
                return Err(TemplateError {
                    template: kind.template_name(Part::User).to_owned(),
                    message: "renders to empty text".to_owned(),
                    line: None,
                });
            }
        }
        Ok(())
    }

    pub fn version(&self) -> &str {
        &self.sources.version
    }

    pub fn sources(&self) -> &TemplateSources {
        &self.sources
    }

    /// The SHA-256 (hex) of every template's text, so that a run manifest can tell edited
    /// templates apart even when their version was not changed ([`TemplateSources::fingerprint`]).
    pub fn fingerprint(&self) -> String {
        self.sources.fingerprint()
    }

    fn render(&self, kind: PromptKind, context: Value) -> Result<Vec<ChatMessage>, TemplateError> {
        let mut messages = Vec::with_capacity(2);
        for part in [Part::System, Part::User] {
            let name = kind.template_name(part);
            let template = self
                .env
                .get_template(name)
                .map_err(|e| template_error(name, &e))?;
            let text = template
                .render(context.clone())
                .map_err(|e| template_error(name, &e))?;
            let text = text.trim();
            match part {
                Part::System if text.is_empty() => {}
                Part::System => messages.push(ChatMessage::system(text)),
                Part::User => messages.push(ChatMessage::user(text)),
            }
        }
        Ok(messages)
    }

    /// The failure-detection prompt for `trajectory`.
    pub fn render_detect(
        &self,
        trajectory: &Trajectory,
    ) -> Result<Vec<ChatMessage>, TemplateError> {
        let context = DetectContext {
            trajectory: TrajectoryView::new(trajectory),
            failure_types: schema::failure_type_names(),
            reply_schema: schema_text::<DetectReply>(),
        };
        self.render(PromptKind::Detect, Value::from(Serde(context)))
    }

    /// The outcome-extraction prompt for `trajectory`.
    pub fn render_extract(
        &self,
        trajectory: &Trajectory,
    ) -> Result<Vec<ChatMessage>, TemplateError> {
        let context = ExtractContext {
            trajectory: TrajectoryView::new(trajectory),
            reply_schema: schema_text::<ExtractReply>(),
        };
        self.render(PromptKind::Extract, Value::from(Serde(context)))
    }

    /// The relabel prompt: the outcome, the original prompt as a style sample, the step count.
    pub fn render_relabel(
        &self,
        trajectory: &Trajectory,
        outcome: &ExtractedOutcome,
    ) -> Result<Vec<ChatMessage>, TemplateError> {
        let context = RelabelContext {
            original_prompt: &trajectory.original_prompt,
            actual_achievements: &outcome.actual_achievements,
            key_observations: &outcome.key_observations,
            limitations: &outcome.limitations,
            step_count: trajectory.steps.len(),
            reply_schema: schema_text::<RelabelReply>(),
        };
        self.render(PromptKind::Relabel, Value::from(Serde(context)))
    }

    /// The second judge's prompt: the hindsight prompt and what the agent did and found.
    pub fn render_judge(
        &self,
        trajectory: &Trajectory,
        hindsight_prompt: &str,
    ) -> Result<Vec<ChatMessage>, TemplateError> {
        let context = JudgeContext {
            hindsight_prompt,
            steps: trajectory
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| JudgeStepView {
                    number: i + 1,
                    action_name: &s.action_name,
                    action_input: action_input_text(s),
                    observation: &s.observation,
                    reply: s.is_respond(),
                    reply_text: s.reply(),
                })
                .collect(),
            step_count: trajectory.steps.len(),
            final_answer: &trajectory.final_answer,
            reply_schema: schema_text::<JudgeReply>(),
        };
        self.render(PromptKind::Judge, Value::from(Serde(context)))
    }
}

fn schema_text<R: Reply>() -> String {
    serde_json::to_string_pretty(&R::schema()).expect("schemas serialize")
}

fn action_input_text(step: &Step) -> String {
    Json::Object(step.action_input.clone()).to_python_json()
}

#[derive(Serialize)]
struct StepView<'a> {
    number: usize,
    thought: &'a str,
    action_name: &'a str,
    action_input: String,
    observation: &'a str,
    reply: bool,
    reply_text: &'a str,
}

#[derive(Serialize)]
struct TrajectoryView<'a> {
    id: &'a str,
    original_prompt: &'a str,
    failure_reason: &'a str,
    final_answer: &'a str,
    final_thought: &'a str,
    step_count: usize,
    steps: Vec<StepView<'a>>,
}

impl<'a> TrajectoryView<'a> {
    fn new(t: &'a Trajectory) -> Self {
        TrajectoryView {
            id: &t.trajectory_id,
            original_prompt: &t.original_prompt,
            failure_reason: &t.failure_reason,
            final_answer: &t.final_answer,
            final_thought: t.final_thought(),
            step_count: t.steps.len(),
            steps: t
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| StepView {
                    number: i + 1,
                    thought: &s.thought,
                    action_name: &s.action_name,
                    action_input: action_input_text(s),
                    observation: &s.observation,
                    reply: s.is_respond(),
                    reply_text: s.reply(),
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct DetectContext<'a> {
    trajectory: TrajectoryView<'a>,
    failure_types: Vec<&'static str>,
    reply_schema: String,
}

#[derive(Serialize)]
struct ExtractContext<'a> {
    trajectory: TrajectoryView<'a>,
    reply_schema: String,
}

#[derive(Serialize)]
struct RelabelContext<'a> {
    original_prompt: &'a str,
    actual_achievements: &'a [String],
    key_observations: &'a [String],
    limitations: &'a str,
    step_count: usize,
    reply_schema: String,
}

#[derive(Serialize)]
struct JudgeStepView<'a> {
    number: usize,
    action_name: &'a str,
    action_input: String,
    observation: &'a str,
    reply: bool,
    reply_text: &'a str,
}

#[derive(Serialize)]
struct JudgeContext<'a> {
    hindsight_prompt: &'a str,
    steps: Vec<JudgeStepView<'a>>,
    step_count: usize,
    final_answer: &'a str,
    reply_schema: String,
}

/// The sample every template must render against.
fn sample() -> (Trajectory, ExtractedOutcome) {
    let mut input = crate::json::JsonObject::new();
    input.insert("query", Json::from("quiet mechanical keyboard"));
    input.insert("max_price", Json::from(80.0));
    let trajectory = Trajectory {
        trajectory_id: "sample-1".to_owned(),
        original_prompt: "Buy a quiet mechanical keyboard under $80.".to_owned(),
        steps: vec![
            Step {
                thought: "Search the catalogue.".to_owned(),
                action_name: "search".to_owned(),
                action_input: input,
                observation: "1) KeyQuiet 87, $95.00, 4.6 stars\n2) SilentType Pro, $120.00"
                    .to_owned(),
                call: None,
                kind: Default::default(),
            },
            Step::respond(
                String::new(),
                "Both are over $80. Should I look further?".to_owned(),
                "No, thanks.".to_owned(),
            ),
            Step {
                thought: String::new(),
                action_name: "finish".to_owned(),
                action_input: crate::json::JsonObject::new(),
                observation: String::new(),
                call: None,
                kind: Default::default(),
            },
        ],
        final_answer: "No keyboard under $80 was found.".to_owned(),
        failure_reason: "Budget constraint not met.".to_owned(),
        metadata: crate::json::JsonObject::new(),
        origin: Some(crate::model::Origin {
            format: "openai_messages".to_owned(),
            final_thought: "Nothing fits the budget.".to_owned(),
            ..Default::default()
        }),
    };
    let outcome = ExtractedOutcome {
        actual_achievements: vec!["Found two quiet mechanical keyboards with prices".to_owned()],
        key_observations: vec!["KeyQuiet 87 costs $95.00".to_owned()],
        limitations: "Nothing under $80 was found.".to_owned(),
    };
    (trajectory, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_render_every_field() {
        let t = Templates::defaults();
        let (trajectory, outcome) = sample();

        let m = t.render_detect(&trajectory).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].role, "system");
        assert_eq!(m[1].role, "user");
        assert!(m[0].content.contains("\"failure_type\""));
        for needle in [
            "Buy a quiet mechanical keyboard under $80.",
            "<step number=\"1\">",
            "Thought: Search the catalogue.",
            "search({\"query\": \"quiet mechanical keyboard\", \"max_price\": 80.0})",
            "2) SilentType Pro, $120.00",
            "finish({})",
            "No keyboard under $80 was found.",
            "Budget constraint not met.",
            "3 steps",
            "Reply to the user: Both are over $80. Should I look further?",
            "The user's next message:\nNo, thanks.",
            "<final_thought>\nNothing fits the budget.\n</final_thought>",
        ] {
            assert!(m[1].content.contains(needle), "detect misses {needle}");
        }
        assert!(!m[1].content.contains("respond("));
        // A step with an empty thought gets no "Thought:" line.
        assert_eq!(m[1].content.matches("Thought:").count(), 1);

        let m = t.render_extract(&trajectory).unwrap();
        assert!(m[0].content.contains("actual_achievements"));
        assert!(m[1].content.contains("KeyQuiet 87, $95.00"));

        let m = t.render_relabel(&trajectory, &outcome).unwrap();
        for needle in [
            "Buy a quiet mechanical keyboard under $80.",
            "- Found two quiet mechanical keyboards with prices",
            "- KeyQuiet 87 costs $95.00",
            "3 steps",
        ] {
            assert!(m[1].content.contains(needle), "relabel misses {needle}");
        }
        assert!(m[0].content.contains("\"hindsight_prompt\""));

        let m = t
            .render_judge(&trajectory, "Which keyboards cost under $100?")
            .unwrap();
        let all = format!("{}\n{}", m[0].content, m[1].content);
        assert!(all.contains("Which keyboards cost under $100?"));
        assert!(all.contains("KeyQuiet 87, $95.00"));
        assert!(all.contains("No keyboard under $80 was found."));
        assert!(all.contains("Reply to the user: Both are over $80."));
        assert!(!all.contains("Nothing fits the budget."));
        assert!(!all.contains("Buy a quiet mechanical keyboard"));
        assert!(!all.contains("Search the catalogue."));
        assert!(!all.contains("Budget constraint not met."));
    }

    #[test]
    fn schema_is_quoted_in_every_system_prompt() {
        let t = Templates::defaults();
        let (trajectory, outcome) = sample();
        let systems = [
            t.render_detect(&trajectory).unwrap()[0].content.clone(),
            t.render_extract(&trajectory).unwrap()[0].content.clone(),
            t.render_relabel(&trajectory, &outcome).unwrap()[0]
                .content
                .clone(),
            t.render_judge(&trajectory, "x").unwrap()[0].content.clone(),
        ];
        for s in systems {
            assert!(s.contains("\"additionalProperties\": false"));
            assert!(!s.contains("{{"));
        }
    }

    #[test]
    fn empty_lists_render_placeholders() {
        let t = Templates::defaults();
        let (trajectory, _) = sample();
        let outcome = ExtractedOutcome {
            actual_achievements: vec![],
            key_observations: vec![],
            limitations: String::new(),
        };
        let m = t.render_relabel(&trajectory, &outcome).unwrap();
        assert!(m[1].content.contains("- (nothing recorded)"));
        assert!(m[1].content.contains("- (none recorded)"));
    }

    #[test]
    fn missing_field_is_an_error_not_empty_text() {
        let mut sources = TemplateSources::defaults();
        sources
            .relabel
            .user
            .push_str("\n{{ original_prompt_typo }}");
        let e = Templates::new(sources).unwrap_err();
        assert_eq!(e.template, "relabel/user");
        assert!(e.message.contains("undefined"), "{e}");

        // The judge cannot see the original prompt, whatever its template says.
        let mut sources = TemplateSources::defaults();
        sources.judge.user = "{{ original_prompt }}".to_owned();
        let e = Templates::new(sources).unwrap_err();
        assert_eq!(e.template, "judge/user");

        let mut sources = TemplateSources::defaults();
        sources.detect.user = "{% for s in trajectory.steps %}{{ s.missing }}{% endfor %}".into();
        assert_eq!(Templates::new(sources).unwrap_err().template, "detect/user");
    }

    #[test]
    fn syntax_errors_and_empty_templates() {
        let mut sources = TemplateSources::defaults();
        sources.extract.system = "{% if %}".to_owned();
        let e = Templates::new(sources).unwrap_err();
        assert_eq!(e.template, "extract/system");
        assert!(
            e.to_string()
                .starts_with("template extract/system: syntax error"),
            "{e}"
        );

        let mut sources = TemplateSources::defaults();
        sources.judge.user = "  {# nothing #}  ".to_owned();
        let e = Templates::new(sources).unwrap_err();
        assert_eq!(e.to_string(), "template judge/user: renders to empty text");

        let mut sources = TemplateSources::defaults();
        sources.version = " ".to_owned();
        assert!(Templates::new(sources).is_err());
    }

    #[test]
    fn each_template_stands_alone() {
        // No macros and no templates pulling in others: the build leaves them out, and a
        // template that uses them gets a syntax error at its line, not a silent empty text.
        for (text, line) in [
            ("Goal:\n{% macro row(s) %}{{ s }}{% endmacro %}", 2),
            ("{% include \"detect/user\" %}", 1),
            ("x\ny\n{% extends \"judge/user\" %}", 3),
        ] {
            let mut sources = TemplateSources::defaults();
            sources.relabel.user = text.to_owned();
            let e = Templates::new(sources).unwrap_err();
            assert_eq!(e.template, "relabel/user");
            assert!(e.message.starts_with("syntax error"), "{e}");
            assert_eq!(e.line, Some(line), "{e}");
        }
        // Filters and tests are there.
        let mut sources = TemplateSources::defaults();
        sources.relabel.user =
            "{{ original_prompt | upper | replace('QUIET', 'calm') }} {{ 3 is odd }}".to_owned();
        let t = Templates::new(sources).unwrap();
        let (trajectory, outcome) = sample();
        let m = t.render_relabel(&trajectory, &outcome).unwrap();
        assert_eq!(
            m[1].content,
            "BUY A calm MECHANICAL KEYBOARD UNDER $80. True"
        );
    }

    #[test]
    fn user_templates_and_empty_system() {
        let mut sources = TemplateSources::defaults();
        sources.version = "mine-2".to_owned();
        sources.relabel.system = String::new();
        sources.relabel.user =
            "Goal sample: {{ original_prompt }}; {{ actual_achievements | length }} achievements"
                .to_owned();
        let t = Templates::new(sources).unwrap();
        assert_eq!(t.version(), "mine-2");
        assert_ne!(t.fingerprint(), Templates::defaults().fingerprint());
        let (trajectory, outcome) = sample();
        let m = t.render_relabel(&trajectory, &outcome).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(
            m[0].content,
            "Goal sample: Buy a quiet mechanical keyboard under $80.; 1 achievements"
        );
    }

    #[test]
    fn default_version_and_stable_fingerprint() {
        let t = Templates::defaults();
        assert_eq!(t.version(), DEFAULT_VERSION);
        assert_eq!(t.fingerprint(), Templates::defaults().fingerprint());
        assert_eq!(t.fingerprint().len(), 64);
        let mut edited = TemplateSources::defaults();
        edited.judge.user.push(' ');
        assert_ne!(edited.fingerprint(), t.fingerprint());
        edited.version = "other".into();
        let mut same = TemplateSources::defaults();
        same.judge.user.push(' ');
        assert_eq!(
            edited.fingerprint(),
            same.fingerprint(),
            "the version is not hashed"
        );
    }
}
