//! The user's preferences: endpoint, model and run settings, as the page edits and stores them.
//!
//! Stored as JSON (the browser keeps it in localStorage). Every field has a default, so JSON
//! written by an older version, or only part of it, still loads. There is no API key here: the
//! key lives in memory, and only in its own storage slot when the user asks for it.

use crate::grounding::GroundingMode;
use crate::llm::pool::{
    check_distinct, parse_replicas, replicas_text, Replica, BROWSER_PER_HOST, MAX_LIMIT,
};
use crate::llm::{StructuredMode, TemplateError, TemplateSources, Templates};
use crate::model::FailureType;
use crate::pipeline::{Mode, Settings};
use crate::stages::detect::rules::{Lexicon, SeverityFormula};
use serde::{Deserialize, Serialize};

/// The localStorage key of the preferences.
pub const STORAGE_KEY: &str = "agenther.prefs";
/// The localStorage key of the API key, only when the user chose "Remember on this device".
pub const KEY_STORAGE_KEY: &str = "agenther.api_key";
/// The localStorage key of the second judge's API key, under the same choice.
pub const JUDGE_KEY_STORAGE_KEY: &str = "agenther.judge_api_key";

/// The endpoint a fresh page points at (Ollama's OpenAI-compatible API).
pub const DEFAULT_BASE_URL: &str = "http://localhost:11434/v1";

/// How replies are asked to be JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Structured {
    /// `json_schema`, stepping down to `json_object` then prompt-only when the endpoint refuses.
    #[default]
    Auto,
    JsonSchema,
    JsonObject,
    PromptOnly,
}

impl Structured {
    pub const ALL: [Structured; 4] = [
        Structured::Auto,
        Structured::JsonSchema,
        Structured::JsonObject,
        Structured::PromptOnly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Structured::Auto => "auto",
            Structured::JsonSchema => "json_schema",
            Structured::JsonObject => "json_object",
            Structured::PromptOnly => "prompt_only",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Structured::Auto => "auto (json_schema, falling back)",
            Structured::JsonSchema => "json_schema",
            Structured::JsonObject => "json_object",
            Structured::PromptOnly => "prompt only",
        }
    }

    pub fn parse(s: &str) -> Option<Structured> {
        Structured::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// The mode requests start with.
    pub fn mode(self) -> StructuredMode {
        match self {
            Structured::Auto | Structured::JsonSchema => StructuredMode::JsonSchema,
            Structured::JsonObject => StructuredMode::JsonObject,
            Structured::PromptOnly => StructuredMode::PromptOnly,
        }
    }

    /// Whether the client should step down when the endpoint refuses the mode.
    pub fn adaptive(self) -> bool {
        self == Structured::Auto
    }
}

/// `rules` or `llm`.
pub fn mode_str(mode: Mode) -> &'static str {
    match mode {
        Mode::Rules => "rules",
        Mode::Llm => "llm",
    }
}

pub fn parse_mode(s: &str) -> Option<Mode> {
    match s {
        "rules" => Some(Mode::Rules),
        "llm" => Some(Mode::Llm),
        _ => None,
    }
}

/// The preferences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prefs {
    pub base_url: String,
    pub model: String,
    pub theta: f64,
    pub delta: f64,
    pub max_attempts: u32,
    pub temperature: f64,
    pub max_tokens: u32,
    pub concurrency: usize,
    /// Per request, in seconds.
    pub timeout_secs: u32,
    pub detection: Mode,
    pub extraction: Mode,
    pub structured: Structured,
    /// What the grounding check does with an accepted goal naming things the run never saw.
    pub grounding: GroundingMode,
    /// The similarity at which hindsight goals are near-duplicates ([`crate::duplicates`]).
    pub duplicate_threshold: f64,
    /// The similarity to the original goal at which a hindsight goal is "not a new goal".
    pub restate_threshold: f64,
    /// Edited prompt templates; `None`: the built-in ones. Kept even when they do not render
    /// (then Run is blocked with the error, see [`Prefs::run_blocker`]).
    pub templates: Option<TemplateSources>,
    /// An edited lexicon; `None`: the reference's.
    pub lexicon: Option<Lexicon>,
    /// The second judge's endpoint; empty: the relabeler's.
    pub judge_base_url: String,
    /// The second judge's model; empty: the relabeler's.
    pub judge_model: String,
    /// Second-judge calls at once on its own endpoint.
    pub judge_concurrency: usize,
    /// The judge endpoint's price per million tokens (0: not priced).
    pub judge_price_per_million: f64,
    /// Requests the base URL takes at once, and each replica without a limit of its own.
    pub connections: usize,
    /// Other base URLs serving the same model (see [`crate::llm::pool`]).
    pub replicas: Vec<Replica>,
    /// What the endpoint charges per million prompt (input) tokens; 0 for a local endpoint.
    pub price_input: f64,
    /// What the endpoint charges per million completion (output) tokens.
    pub price_output: f64,
    /// Runs of more trajectories than this at a non-zero price ask for confirmation first.
    pub confirm_above: usize,
}

impl Default for Prefs {
    /// The paper's defaults (see [`Settings::default`]), Ollama's local endpoint, four
    /// trajectories at once and two minutes per request.
    fn default() -> Self {
        let s = Settings::default();
        Prefs {
            base_url: DEFAULT_BASE_URL.into(),
            model: String::new(),
            theta: s.theta,
            delta: s.delta,
            max_attempts: s.max_attempts,
            temperature: s.temperature,
            max_tokens: s.max_tokens,
            concurrency: s.concurrency,
            timeout_secs: 120,
            detection: s.detection,
            extraction: s.extraction,
            structured: Structured::Auto,
            grounding: s.grounding,
            duplicate_threshold: crate::duplicates::DEFAULT_THRESHOLD,
            restate_threshold: crate::duplicates::DEFAULT_RESTATE_THRESHOLD,
            templates: None,
            lexicon: None,
            judge_base_url: String::new(),
            judge_model: String::new(),
            judge_concurrency: s.judge_concurrency,
            judge_price_per_million: 0.0,
            connections: BROWSER_PER_HOST,
            replicas: Vec::new(),
            price_input: 0.0,
            price_output: 0.0,
            confirm_above: crate::estimate::CONFIRM_ABOVE,
        }
    }
}

impl Prefs {
    /// Reads stored JSON; anything unreadable gives the defaults, missing fields their default.
    pub fn from_json(json: &str) -> Prefs {
        serde_json::from_str(json).unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("preferences always serialize")
    }

    /// The pipeline settings these preferences give.
    pub fn to_pipeline_settings(&self) -> Settings {
        Settings {
            detection: self.detection,
            extraction: self.extraction,
            model: self.model.trim().to_owned(),
            theta: self.theta,
            delta: self.delta,
            max_attempts: self.max_attempts,
            temperature: self.temperature,
            max_tokens: self.max_tokens,
            structured: self.structured.mode(),
            concurrency: self.concurrency,
            grounding: self.grounding,
            judge_model: Some(self.judge_model.trim().to_owned()).filter(|m| !m.is_empty()),
            judge_endpoint: self.judge_endpoint().map(|u| endpoint_for_report(&u)),
            judge_concurrency: self.judge_concurrency,
            judge_price_per_million: self.judge_price_per_million,
            duplicate_threshold: self.duplicate_threshold,
            restate_threshold: self.restate_threshold,
            ..Settings::default()
        }
    }

    /// The second judge's own endpoint, when it has one other than the relabeler's.
    pub fn judge_endpoint(&self) -> Option<String> {
        let url = self.judge_base_url.trim();
        let normalize = crate::llm::diagnose::normalize_base_url;
        (!url.is_empty() && normalize(url) != normalize(&self.base_url)).then(|| url.to_owned())
    }

    /// The second judge's own endpoint with its concurrency as its limit in the page's queue,
    /// when it has one.
    pub fn judge_replica(&self) -> Option<Replica> {
        self.judge_endpoint().map(|base_url| Replica {
            base_url,
            limit: self.judge_concurrency.max(1),
        })
    }

    /// What the page says of the second judge: on which endpoint, which model, and whether it
    /// is the relabeling model itself.
    pub fn judge_note(&self) -> String {
        let settings = self.to_pipeline_settings();
        let model = settings.judge_model_name();
        let model = if model.is_empty() {
            "the relabeling model"
        } else {
            model
        };
        let place = match self.judge_endpoint() {
            Some(url) => format!("on {}", endpoint_for_report(&url)),
            None => "on the relabeling endpoint".to_owned(),
        };
        if settings.judge_is_same_model() {
            format!(
                "The second judge is the relabeling model itself ({model}, {place}) at temperature 0: it is not an independent judge. Name another model to make it one."
            )
        } else {
            format!("The second judge is {model}, {place}, at temperature 0.")
        }
    }

    /// The templates a run uses (the edited ones, else the built-in), or the first error.
    pub fn templates(&self) -> Result<Templates, TemplateError> {
        match &self.templates {
            Some(sources) => Templates::new(sources.clone()),
            None => Ok(Templates::defaults()),
        }
    }

    /// The template sources, edited or built-in.
    pub fn template_sources(&self) -> TemplateSources {
        self.templates
            .clone()
            .unwrap_or_else(TemplateSources::defaults)
    }

    /// The lexicon rule-based detection uses (the edited one, else the reference's).
    pub fn lexicon(&self) -> Lexicon {
        self.lexicon.clone().unwrap_or_default()
    }

    /// Every endpoint of a run, the base URL first. The model in this page is one endpoint that
    /// answers one request at a time, without replicas.
    pub fn endpoints(&self) -> Vec<Replica> {
        if crate::inpage::model_of(&self.base_url).is_some() {
            return vec![Replica {
                base_url: self.base_url.trim().to_owned(),
                limit: 1,
            }];
        }
        let mut all = vec![Replica {
            base_url: crate::llm::diagnose::normalize_base_url(&self.base_url),
            limit: self.connections.max(1),
        }];
        all.extend(self.replicas.iter().cloned());
        all
    }

    /// The prices entered, for estimates and costs.
    pub fn prices(&self) -> crate::estimate::Prices {
        crate::estimate::Prices {
            input_per_million: self.price_input,
            output_per_million: self.price_output,
        }
    }

    /// The request timeout in milliseconds.
    pub fn timeout_ms(&self) -> u32 {
        self.timeout_secs.saturating_mul(1000)
    }

    /// What stops a run with these preferences, if anything (ranges, templates that do not
    /// render, then a missing model).
    pub fn run_blocker(&self) -> Option<String> {
        let mut status = crate::custom::TemplateStatus::default();
        if let Some(sources) = &self.templates {
            status.record(sources.fingerprint(), crate::custom::check(sources));
        }
        self.settings_blocker(&status)
    }

    /// As [`Prefs::run_blocker`], with the templates' check as `templates` knows it (the page
    /// checks edited templates in the background).
    pub fn settings_blocker(&self, templates: &crate::custom::TemplateStatus) -> Option<String> {
        if self.timeout_secs == 0 {
            return Some("the request timeout must be at least 1 second".into());
        }
        if let Some(reason) = templates.blocker(self.templates.as_ref()) {
            return Some(reason);
        }
        self.to_pipeline_settings().validate().err()
    }
}

/// The settings form as typed: numbers stay text until they parse, so a half-typed value is
/// not lost and an invalid one can be pointed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub base_url: String,
    pub model: String,
    pub theta: String,
    pub delta: String,
    pub max_attempts: String,
    pub temperature: String,
    pub max_tokens: String,
    pub concurrency: String,
    pub timeout_secs: String,
    pub detection: String,
    pub extraction: String,
    pub structured: String,
    pub grounding: String,
    pub duplicate_threshold: String,
    pub restate_threshold: String,
    /// The templates as edited (checked when a run starts, not here: a template being typed
    /// is kept as it is).
    pub templates: TemplateSources,
    /// Each failure type's keywords, one per line, in priority order.
    pub keywords: Vec<(FailureType, String)>,
    pub severity_base: String,
    pub severity_per_hit: String,
    pub severity_cap: String,
    pub judge_base_url: String,
    pub judge_model: String,
    pub judge_concurrency: String,
    pub judge_price_per_million: String,
    pub connections: String,
    pub replicas: String,
    pub price_input: String,
    pub price_output: String,
    pub confirm_above: String,
}

impl From<&Prefs> for Draft {
    fn from(p: &Prefs) -> Self {
        let lexicon = p.lexicon();
        Draft {
            base_url: p.base_url.clone(),
            model: p.model.clone(),
            theta: p.theta.to_string(),
            delta: p.delta.to_string(),
            max_attempts: p.max_attempts.to_string(),
            temperature: p.temperature.to_string(),
            max_tokens: p.max_tokens.to_string(),
            concurrency: p.concurrency.to_string(),
            timeout_secs: p.timeout_secs.to_string(),
            detection: mode_str(p.detection).into(),
            extraction: mode_str(p.extraction).into(),
            structured: p.structured.as_str().into(),
            grounding: p.grounding.as_str().into(),
            duplicate_threshold: p.duplicate_threshold.to_string(),
            restate_threshold: p.restate_threshold.to_string(),
            templates: p.template_sources(),
            keywords: crate::custom::keyword_lists(&lexicon),
            severity_base: lexicon.severity.base.to_string(),
            severity_per_hit: lexicon.severity.per_hit.to_string(),
            severity_cap: lexicon.severity.cap.to_string(),
            judge_base_url: p.judge_base_url.clone(),
            judge_model: p.judge_model.clone(),
            judge_concurrency: p.judge_concurrency.to_string(),
            judge_price_per_million: p.judge_price_per_million.to_string(),
            connections: p.connections.to_string(),
            replicas: replicas_text(&p.replicas, p.connections),
            price_input: p.price_input.to_string(),
            price_output: p.price_output.to_string(),
            confirm_above: p.confirm_above.to_string(),
        }
    }
}

fn unit(name: &str, text: &str, errors: &mut Vec<String>) -> f64 {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => v,
        _ => {
            errors.push(format!("{name}: enter a number from 0 to 1"));
            0.0
        }
    }
}

fn price(name: &str, text: &str, errors: &mut Vec<String>) -> f64 {
    let text = text.trim();
    if text.is_empty() {
        return 0.0;
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => v,
        _ => {
            errors.push(format!(
                "{name}: enter a price per million tokens (0 or more; 0 for a local endpoint)"
            ));
            0.0
        }
    }
}

fn count(name: &str, text: &str, min: u64, max: u64, errors: &mut Vec<String>) -> u64 {
    match text.trim().parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) => v,
        _ => {
            errors.push(format!("{name}: enter a whole number from {min} to {max}"));
            min
        }
    }
}

impl Draft {
    /// The preferences, or one message per invalid field. A missing model is not an error
    /// here (see [`Prefs::run_blocker`]).
    pub fn parse(&self) -> Result<Prefs, Vec<String>> {
        let mut errors = Vec::new();
        let base_url = self.base_url.trim().to_owned();
        if base_url.is_empty() {
            errors.push("base URL: enter the endpoint's address".into());
        }
        let theta = unit("θ", &self.theta, &mut errors);
        let delta = unit("δ", &self.delta, &mut errors);
        let max_attempts = count("K (attempts)", &self.max_attempts, 1, 20, &mut errors) as u32;
        let temperature = match self.temperature.trim().parse::<f64>() {
            Ok(v) if (0.0..=2.0).contains(&v) => v,
            _ => {
                errors.push("temperature: enter a number from 0 to 2".into());
                0.0
            }
        };
        let max_tokens = count("max_tokens", &self.max_tokens, 1, 1_000_000, &mut errors) as u32;
        let concurrency = count("concurrency", &self.concurrency, 1, 64, &mut errors) as usize;
        let timeout_secs = count("timeout", &self.timeout_secs, 1, 3600, &mut errors) as u32;
        let detection = parse_mode(&self.detection).unwrap_or_else(|| {
            errors.push("Stage 1 mode: choose rules or LLM".into());
            Mode::Rules
        });
        let extraction = parse_mode(&self.extraction).unwrap_or_else(|| {
            errors.push("Stage 2 mode: choose rules or LLM".into());
            Mode::Llm
        });
        let structured = Structured::parse(&self.structured).unwrap_or_else(|| {
            errors.push("structured output: choose one of the listed modes".into());
            Structured::Auto
        });
        let grounding = GroundingMode::parse(&self.grounding).unwrap_or_else(|| {
            errors.push("grounding check: choose reject, flag or off".into());
            GroundingMode::Flag
        });
        let duplicate_threshold = unit(
            "near-duplicate similarity",
            &self.duplicate_threshold,
            &mut errors,
        );
        let restate_threshold = unit(
            "\"not a new goal\" similarity",
            &self.restate_threshold,
            &mut errors,
        );
        let severity = SeverityFormula {
            base: unit("severity base", &self.severity_base, &mut errors),
            per_hit: unit("severity per hit", &self.severity_per_hit, &mut errors),
            cap: unit("severity cap", &self.severity_cap, &mut errors),
        };
        let lexicon = crate::custom::lexicon_from_lists(&self.keywords, severity);
        let judge_concurrency = count(
            "judge concurrency",
            &self.judge_concurrency,
            1,
            MAX_LIMIT as u64,
            &mut errors,
        ) as usize;
        let judge_price_per_million = match self.judge_price_per_million.trim().parse::<f64>() {
            Ok(v) if v >= 0.0 && v.is_finite() => v,
            _ => {
                errors.push("judge price per million tokens: enter 0 or more".into());
                0.0
            }
        };
        let connections = count(
            "requests per endpoint",
            &self.connections,
            1,
            MAX_LIMIT as u64,
            &mut errors,
        ) as usize;
        let replicas = parse_replicas(&self.replicas, connections).unwrap_or_else(|e| {
            errors.extend(e);
            Vec::new()
        });
        let mut endpoints = vec![Replica {
            base_url: base_url.clone(),
            limit: connections,
        }];
        endpoints.extend(replicas.iter().cloned());
        if let Err(e) = check_distinct(&endpoints) {
            errors.push(e);
        }
        if let Some(e) = judge_in_page_error(&base_url, &self.judge_base_url) {
            errors.push(e);
        }
        let price_input = price("input price", &self.price_input, &mut errors);
        let price_output = price("output price", &self.price_output, &mut errors);
        let confirm_above = count(
            "confirm above",
            &self.confirm_above,
            0,
            10_000_000,
            &mut errors,
        ) as usize;
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Prefs {
            base_url,
            model: self.model.trim().to_owned(),
            theta,
            delta,
            max_attempts,
            temperature,
            max_tokens,
            concurrency,
            timeout_secs,
            detection,
            extraction,
            structured,
            grounding,
            duplicate_threshold,
            restate_threshold,
            templates: (self.templates != TemplateSources::defaults())
                .then(|| self.templates.clone()),
            lexicon: (lexicon != Lexicon::default()).then_some(lexicon),
            judge_base_url: self.judge_base_url.trim().to_owned(),
            judge_model: self.judge_model.trim().to_owned(),
            judge_concurrency,
            judge_price_per_million,
            connections,
            replicas,
            price_input,
            price_output,
            confirm_above,
        })
    }
}

/// The base URL as a report may show it: normalized, without any `user:password@`.
pub fn endpoint_for_report(base_url: &str) -> String {
    let url = crate::llm::diagnose::normalize_base_url(base_url);
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url;
    };
    let authority_end = url[start..].find('/').map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..start], &url[start + at + 1..]),
        None => url,
    }
}

/// Why the second judge cannot be the model in this page at `judge_base_url`, if it cannot.
/// The page runs one model, and only as the relabeling endpoint: a judge on that same address
/// shares its one-at-a-time queue; any other in-page address would have no model to answer.
fn judge_in_page_error(base_url: &str, judge_base_url: &str) -> Option<String> {
    let judge = judge_base_url.trim();
    crate::inpage::model_of(judge)?;
    let normalize = crate::llm::diagnose::normalize_base_url;
    if normalize(judge) == normalize(base_url) {
        return None;
    }
    Some(if crate::inpage::model_of(base_url).is_some() {
        format!(
            "second judge's endpoint: the page runs one model, the relabeling endpoint's ({}), so {judge} cannot judge; leave the judge's endpoint empty (the same model then judges, one request at a time) or give it an HTTP endpoint",
            base_url.trim()
        )
    } else {
        format!(
            "second judge's endpoint: a model in this page ({judge}) can judge only when it also relabels; choose \"In this page\" as the endpoint, or give the judge an HTTP endpoint"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers() {
        let p = Prefs::default();
        assert_eq!(p.base_url, "http://localhost:11434/v1");
        assert_eq!((p.theta, p.delta, p.max_attempts), (0.5, 0.3, 3));
        assert_eq!((p.temperature, p.max_tokens, p.concurrency), (0.3, 2048, 4));
        assert_eq!((p.detection, p.extraction), (Mode::Rules, Mode::Llm));
        assert_eq!(p.structured, Structured::Auto);
        assert_eq!(p.grounding, GroundingMode::Flag);
    }

    #[test]
    fn edited_templates_and_lexicon_are_kept_and_checked() {
        let p = Prefs {
            model: "m".into(),
            ..Prefs::default()
        };
        let mut d = Draft::from(&p);
        assert_eq!(d.parse().unwrap(), p, "unedited: nothing stored");
        *d.templates.file_mut("judge_user.j2").unwrap() =
            "Goal: {{ hindsight_prompt }}\n{% for s in steps %}\n{{ s.nope }}\n{% endfor %}".into();
        d.keywords[1].1.push_str("\ngave up");
        d.severity_per_hit = "0.2".into();
        let edited = d.parse().expect("a broken template is kept, not refused");
        let blocker = edited.run_blocker().unwrap();
        assert!(
            blocker.starts_with("the prompt template judge_user.j2, line 3: "),
            "{blocker}"
        );
        let lexicon = edited.lexicon();
        assert!(lexicon.entries[1].keywords.contains(&"gave up".to_string()));
        assert_eq!(lexicon.severity.per_hit, 0.2);
        // Saved and read back: the same preferences, and the form shows them again.
        let back = Prefs::from_json(&edited.to_json());
        assert_eq!(back, edited);
        assert_eq!(Draft::from(&back), d);
        // Reset to defaults: nothing stored again.
        let reset = Draft::from(&Prefs {
            templates: None,
            lexicon: None,
            ..back
        });
        assert_eq!(reset.parse().unwrap(), p);
        d.severity_cap = "2".into();
        assert!(d.parse().unwrap_err()[0].starts_with("severity cap"));
    }

    #[test]
    fn a_judge_on_another_endpoint() {
        let p = Prefs {
            model: "relabeler".into(),
            ..Prefs::default()
        };
        assert!(
            p.judge_note()
                .contains("relabeling model itself (relabeler"),
            "{}",
            p.judge_note()
        );
        let same_url = Prefs {
            judge_base_url: "http://localhost:11434/v1/".into(),
            ..p.clone()
        };
        assert_eq!(
            same_url.judge_endpoint(),
            None,
            "the same endpoint written otherwise"
        );
        let other = Prefs {
            judge_base_url: "http://judge:9/v1".into(),
            judge_model: " judge-model ".into(),
            judge_concurrency: 2,
            judge_price_per_million: 0.6,
            ..p.clone()
        };
        let s = other.to_pipeline_settings();
        assert_eq!(s.judge_endpoint.as_deref(), Some("http://judge:9/v1"));
        assert_eq!(
            (s.judge_model_name(), s.judge_is_same_model()),
            ("judge-model", false)
        );
        assert_eq!((s.judge_concurrency, s.judge_price_per_million), (2, 0.6));
        assert_eq!(
            other.judge_note(),
            "The second judge is judge-model, on http://judge:9/v1, at temperature 0."
        );
        // The same model name on another endpoint is still the same model.
        let twin = Prefs {
            judge_model: "relabeler".into(),
            ..other.clone()
        };
        assert!(twin.judge_note().contains("not an independent judge"));
        assert_eq!(
            Draft::from(&other).parse().unwrap(),
            Prefs {
                judge_model: "judge-model".into(),
                ..other
            }
        );
        let mut d = Draft::from(&p);
        d.judge_price_per_million = "-1".into();
        assert!(d.parse().unwrap_err()[0].starts_with("judge price"));
    }

    #[test]
    fn grounding_mode_is_a_setting() {
        let mut d = Draft::from(&Prefs::default());
        d.grounding = "reject".into();
        let p = d.parse().unwrap();
        assert_eq!(p.to_pipeline_settings().grounding, GroundingMode::Reject);
        assert_eq!(
            Prefs::from_json(&p.to_json()).grounding,
            GroundingMode::Reject
        );
        d.grounding = "sometimes".into();
        assert!(d.parse().unwrap_err()[0].starts_with("grounding check"));
    }

    #[test]
    fn json_round_trips_and_partial_json_loads() {
        let p = Prefs {
            model: "qwen".into(),
            theta: 0.7,
            structured: Structured::JsonObject,
            detection: Mode::Llm,
            ..Prefs::default()
        };
        assert_eq!(Prefs::from_json(&p.to_json()), p);
        let partial = Prefs::from_json(r#"{"model":"m","theta":0.9,"unknown_field":1}"#);
        assert_eq!(partial.model, "m");
        assert_eq!(partial.theta, 0.9);
        assert_eq!(partial.delta, 0.3);
        assert_eq!(partial.base_url, DEFAULT_BASE_URL);
        assert_eq!(Prefs::from_json("not json"), Prefs::default());
        assert_eq!(Prefs::from_json(r#"{"theta":"high"}"#), Prefs::default());
    }

    #[test]
    fn stored_json_never_has_a_key() {
        let json = Prefs::default().to_json();
        assert!(!json.contains("key"), "{json}");
    }

    #[test]
    fn pipeline_settings_follow_the_prefs() {
        let p = Prefs {
            model: " m ".into(),
            theta: 0.6,
            structured: Structured::PromptOnly,
            concurrency: 2,
            ..Prefs::default()
        };
        let s = p.to_pipeline_settings();
        assert_eq!(s.model, "m");
        assert_eq!(s.theta, 0.6);
        assert_eq!(s.structured, StructuredMode::PromptOnly);
        assert_eq!(s.concurrency, 2);
        assert_eq!(s.retry_temperature, 0.7);
        assert_eq!(
            Structured::Auto.mode(),
            StructuredMode::JsonSchema,
            "auto starts with json_schema"
        );
        assert!(Structured::Auto.adaptive() && !Structured::JsonSchema.adaptive());
    }

    #[test]
    fn run_blocker_names_the_missing_model() {
        assert!(Prefs::default().run_blocker().unwrap().contains("model"));
        let p = Prefs {
            model: "m".into(),
            ..Prefs::default()
        };
        assert_eq!(p.run_blocker(), None);
    }

    #[test]
    fn draft_round_trips() {
        let p = Prefs {
            model: "m".into(),
            ..Prefs::default()
        };
        assert_eq!(Draft::from(&p).parse(), Ok(p));
        for s in Structured::ALL {
            assert_eq!(Structured::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn draft_reports_each_invalid_field() {
        let mut d = Draft::from(&Prefs::default());
        d.theta = "1.5".into();
        d.concurrency = "0".into();
        d.temperature = "abc".into();
        d.structured = "xml".into();
        let errors = d.parse().unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].starts_with("θ"));
        assert!(errors.iter().any(|e| e.starts_with("concurrency")));
        assert!(errors.iter().any(|e| e.starts_with("temperature")));
        assert!(errors.iter().any(|e| e.starts_with("structured output")));
    }

    #[test]
    fn report_endpoint_has_no_credentials() {
        assert_eq!(
            endpoint_for_report("https://user:secret@api.example/v1/"),
            "https://api.example/v1"
        );
        assert_eq!(
            endpoint_for_report("http://localhost:11434/v1"),
            "http://localhost:11434/v1"
        );
        assert_eq!(
            endpoint_for_report("http://h/v1?a=b@c"),
            "http://h/v1?a=b@c"
        );
        assert_eq!(endpoint_for_report("nonsense"), "nonsense");
    }

    #[test]
    fn prices_are_kept_with_the_settings() {
        let p = Prefs {
            model: "m".into(),
            price_input: 0.15,
            price_output: 0.6,
            confirm_above: 50,
            ..Prefs::default()
        };
        assert_eq!(Prefs::from_json(&p.to_json()), p);
        assert_eq!(Draft::from(&p).parse(), Ok(p.clone()));
        assert_eq!(p.prices().cost(1e6, 1e6), 0.75);
        let old = Prefs::from_json(r#"{"model":"m"}"#);
        assert!(old.prices().is_free(), "older settings have no price");
        assert_eq!(old.confirm_above, 200);
        let mut d = Draft::from(&p);
        d.price_input = " ".into();
        assert_eq!(d.parse().unwrap().price_input, 0.0, "blank is free");
        d.price_output = "-1".into();
        d.confirm_above = "x".into();
        let errors = d.parse().unwrap_err();
        assert!(errors[0].starts_with("output price"), "{errors:?}");
        assert!(errors[1].starts_with("confirm above"), "{errors:?}");
    }

    #[test]
    fn draft_trims_blanks() {
        let mut d = Draft::from(&Prefs::default());
        d.theta = " 0.25 ".into();
        d.base_url = "  http://h/v1 ".into();
        let p = d.parse().unwrap();
        assert_eq!(p.theta, 0.25);
        assert_eq!(p.base_url, "http://h/v1");
    }

    #[test]
    fn the_model_in_the_page_takes_one_request_at_a_time_without_replicas() {
        let mut d = Draft::from(&Prefs::default());
        d.base_url = crate::inpage::endpoint_id("smol.gguf");
        d.replicas = "http://127.0.0.1:8080/v1".into();
        let p = d.parse().unwrap();
        assert_eq!(
            p.endpoints(),
            vec![Replica {
                base_url: "inpage://smol.gguf".into(),
                limit: 1
            }]
        );
    }

    #[test]
    fn the_judge_in_the_page_is_the_relabeling_model_or_refused() {
        let page = crate::inpage::endpoint_id("smol.gguf");
        let mut d = Draft::from(&Prefs::default());
        d.base_url = page.clone();
        // The same in-page address: accepted, and the judge shares the relabeler's queue of one.
        d.judge_base_url = format!(" {page}/ ");
        let p = d.parse().unwrap();
        assert_eq!(p.judge_replica(), None);
        assert_eq!(
            p.endpoints(),
            vec![Replica {
                base_url: page.clone(),
                limit: 1
            }]
        );
        // Another model in the page: nothing would answer it.
        d.judge_base_url = crate::inpage::endpoint_id("other.gguf");
        let errors = d.parse().unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("second judge's endpoint")
                && errors[0].contains("inpage://other.gguf cannot judge")
                && errors[0].contains("inpage://smol.gguf"),
            "{errors:?}"
        );
        // A relabeler over HTTP with a judge in the page: refused as well.
        d.base_url = "http://localhost:8080/v1".into();
        d.judge_base_url = page;
        let errors = d.parse().unwrap_err();
        assert!(
            errors[0].contains("can judge only when it also relabels"),
            "{errors:?}"
        );
        // An HTTP judge beside the model in the page stays allowed.
        d.base_url = crate::inpage::endpoint_id("smol.gguf");
        d.judge_base_url = "http://localhost:9090/v1".into();
        assert!(d.parse().unwrap().judge_replica().is_some());
    }

    #[test]
    fn the_judge_has_a_queue_of_its_own_only_on_another_endpoint() {
        let mut p = Prefs {
            base_url: "http://localhost:8080/v1".into(),
            judge_concurrency: 3,
            ..Prefs::default()
        };
        assert_eq!(p.judge_replica(), None);
        p.judge_base_url = "http://localhost:8080/v1/".into();
        assert_eq!(p.judge_replica(), None, "the relabeler's endpoint");
        p.judge_base_url = " http://localhost:9090/v1 ".into();
        assert_eq!(
            p.judge_replica(),
            Some(Replica {
                base_url: "http://localhost:9090/v1".into(),
                limit: 3
            })
        );
    }

    #[test]
    fn replicas_round_trip_and_their_errors_are_reported() {
        let mut d = Draft::from(&Prefs::default());
        d.base_url = "http://localhost:8080/v1".into();
        d.connections = "4".into();
        d.replicas = "http://127.0.0.1:8080/v1\nhttp://127.0.0.2:8080/v1 8\n".into();
        let p = d.parse().unwrap();
        assert_eq!(p.connections, 4);
        assert_eq!(
            p.endpoints(),
            vec![
                Replica {
                    base_url: "http://localhost:8080/v1".into(),
                    limit: 4
                },
                Replica {
                    base_url: "http://127.0.0.1:8080/v1".into(),
                    limit: 4
                },
                Replica {
                    base_url: "http://127.0.0.2:8080/v1".into(),
                    limit: 8
                },
            ]
        );
        assert_eq!(Draft::from(&p).parse(), Ok(p.clone()));
        assert_eq!(Prefs::from_json(&p.to_json()), p);
        // Stored preferences from before replicas existed load with none.
        let old = Prefs::from_json(r#"{"model":"m"}"#);
        assert_eq!((old.connections, old.replicas.len()), (6, 0));

        d.replicas = "http://localhost:8080/other/v1\nnot a url".into();
        d.connections = "0".into();
        let errors = d.parse().unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("requests per endpoint")),
            "{errors:?}"
        );
        assert!(errors.iter().any(|e| e.contains("line 2")), "{errors:?}");
        d.replicas = "http://localhost:8080/other/v1".into();
        d.connections = "6".into();
        let errors = d.parse().unwrap_err();
        assert!(errors[0].contains("same host and port"), "{errors:?}");
    }
}
