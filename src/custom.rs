//! What the user may change of the method without rebuilding the app: the prompt templates and
//! the rule-based lexicon (each failure type's keywords and the severity formula's inputs).
//!
//! Both are saved with the settings ([`crate::prefs::Prefs`]) and so in saved sessions; the
//! manifest and the run report carry their full text and a SHA-256 fingerprint
//! ([`describe`]); the `replay` command reads the same templates from a directory of `.j2`
//! files and the lexicon from a JSON file.
//!
//! # The lexicon file
//!
//! One JSON object:
//!
//! ```json
//! {
//!   "entries": [
//!     {"failure_type": "tool_error", "keywords": ["error:", " 404 "]},
//!     {"failure_type": "incomplete", "keywords": ["unable to"]}
//!   ],
//!   "severity": {"base": 0.3, "per_hit": 0.1, "cap": 1.0}
//! }
//! ```
//!
//! - `entries` in priority order (a tie in hits goes to the earlier entry); `failure_type` one
//!   of `constraint_violation`, `wrong_result`, `incomplete`, `tool_error`, `hallucination`,
//!   `off_topic`, each at most once; `keywords` strings matched as lower-cased substrings of
//!   the run's text, spaces included (`" 404 "` does not match `"404."`).
//! - `severity` optional (the reference's when absent): `min(cap, base + per_hit × hits)`,
//!   each between 0 and 1.
//!
//! [`lexicon_json`] writes the built-in lexicon in this format.

use crate::json::{object, to_json, Json};
use crate::llm::templates::hex;
use crate::llm::{PromptKind, TemplateError, TemplateSources, Templates};
use crate::model::{FailureType, Trajectory};
use crate::stages::detect::rules::{Lexicon, SeverityFormula};

use sha2::{Digest, Sha256};

/// The lexicon in the file format, pretty-printed.
pub fn lexicon_json(lexicon: &Lexicon) -> String {
    serde_json::to_string_pretty(lexicon).expect("a lexicon always serializes")
}

/// SHA-256 (hex) of the lexicon's compact JSON (entries in order, then the severity formula).
pub fn lexicon_fingerprint(lexicon: &Lexicon) -> String {
    let text = serde_json::to_string(lexicon).expect("a lexicon always serializes");
    hex(&Sha256::digest(text.as_bytes()))
}

/// Reads a lexicon file; the error says where and what is wrong.
pub fn parse_lexicon(text: &str) -> Result<Lexicon, String> {
    let lexicon: Lexicon = serde_json::from_str(text).map_err(|e| {
        format!(
            "line {} column {}: {}",
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        )
    })?;
    check_lexicon(&lexicon)?;
    Ok(lexicon)
}

fn strip_position(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |at| &message[..at])
}

/// The rules a lexicon must follow beyond its JSON shape.
pub fn check_lexicon(lexicon: &Lexicon) -> Result<(), String> {
    for (i, entry) in lexicon.entries.iter().enumerate() {
        if lexicon.entries[..i]
            .iter()
            .any(|e| e.failure_type == entry.failure_type)
        {
            return Err(format!(
                "entries[{i}]: {} is listed twice",
                entry.failure_type.as_str()
            ));
        }
    }
    check_severity(&lexicon.severity)
}

/// Each input of the severity formula between 0 and 1.
pub fn check_severity(s: &SeverityFormula) -> Result<(), String> {
    for (name, v) in [("base", s.base), ("per_hit", s.per_hit), ("cap", s.cap)] {
        if !(0.0..=1.0).contains(&v) {
            return Err(format!("severity.{name} must be between 0 and 1, not {v}"));
        }
    }
    Ok(())
}

/// Keywords as the settings form shows them: one per line, exactly as matched.
pub fn keywords_text(keywords: &[String]) -> String {
    keywords.join("\n")
}

/// Keywords from the form: one per line, kept as typed (spaces count); blank lines dropped.
pub fn parse_keywords(text: &str) -> Vec<String> {
    text.split('\n')
        .map(|k| k.strip_suffix('\r').unwrap_or(k))
        .filter(|k| !k.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every failure type with its keywords in `lexicon`'s priority order, then the types it does
/// not list (with no keyword), as the form edits them.
pub fn keyword_lists(lexicon: &Lexicon) -> Vec<(FailureType, String)> {
    let mut out: Vec<(FailureType, String)> = lexicon
        .entries
        .iter()
        .map(|e| (e.failure_type, keywords_text(&e.keywords)))
        .collect();
    for t in FailureType::ALL {
        if !out.iter().any(|(ft, _)| *ft == t) {
            out.push((t, String::new()));
        }
    }
    out
}

/// The lexicon the form's lists give: the types with at least one keyword, in order.
pub fn lexicon_from_lists(lists: &[(FailureType, String)], severity: SeverityFormula) -> Lexicon {
    Lexicon {
        entries: lists
            .iter()
            .filter_map(|(t, text)| {
                let keywords = parse_keywords(text);
                (!keywords.is_empty()).then_some(crate::stages::detect::rules::LexiconEntry {
                    failure_type: *t,
                    keywords,
                })
            })
            .collect(),
        severity,
    }
}

/// Prompt templates from `(file name, text)` pairs (`relabel_user.j2`, ...): each file
/// replaces that built-in template, the others stay. The version is `custom` when any file is
/// given. An unknown file name is an error that lists the known ones.
pub fn templates_from_files(
    files: impl IntoIterator<Item = (String, String)>,
) -> Result<TemplateSources, String> {
    let mut sources = TemplateSources::defaults();
    let mut any = false;
    for (name, text) in files {
        match sources.file_mut(&name) {
            Some(slot) => *slot = text,
            None => {
                let known: Vec<&str> = sources.files().into_iter().map(|(f, _)| f).collect();
                return Err(format!(
                    "{name}: not a template of this app; the templates are {}",
                    known.join(", ")
                ));
            }
        }
        any = true;
    }
    if any {
        sources.version = "custom".to_owned();
    }
    Ok(sources)
}

/// The file a template error is in (`relabel/user` is `relabel_user.j2`).
pub fn error_file(error: &TemplateError) -> String {
    format!("{}.j2", error.template.replace('/', "_"))
}

/// A template error as the page and the Run button say it: file, line, message.
pub fn error_text(error: &TemplateError) -> String {
    let message = match error.line {
        Some(line) => error
            .message
            .strip_suffix(&format!(" (line {line})"))
            .unwrap_or(&error.message),
        None => &error.message,
    };
    match error.line {
        Some(line) => format!("{}, line {line}: {message}", error_file(error)),
        None => format!("{}: {message}", error_file(error)),
    }
}

/// Whether edited templates render: the first error's file and text ([`error_file`],
/// [`error_text`]), or `None`.
pub type TemplateProblem = Option<(String, String)>;

/// Compiles every template of `sources` (no trajectory needed): the first error, if any.
pub fn check(sources: &TemplateSources) -> TemplateProblem {
    Templates::new(sources.clone())
        .err()
        .map(|e| (error_file(&e), error_text(&e)))
}

/// What is known of the edited templates' check, which the page runs in the background
/// ([`check`] needs the template engine, which the page loads when first needed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateStatus {
    /// The fingerprint ([`TemplateSources::fingerprint`]) of the sources last checked, and
    /// what the check found.
    checked: Option<(String, TemplateProblem)>,
}

impl TemplateStatus {
    /// Records the check of the sources with this fingerprint.
    pub fn record(&mut self, fingerprint: String, problem: TemplateProblem) {
        self.checked = Some((fingerprint, problem));
    }

    /// Whether the templates with this fingerprint were checked.
    pub fn knows(&self, fingerprint: &str) -> bool {
        matches!(&self.checked, Some((f, _)) if f == fingerprint)
    }

    /// What stops a run with `edited` templates (`None`: the built-in ones, which render):
    /// an error, or a check not done yet for these texts.
    pub fn blocker(&self, edited: Option<&TemplateSources>) -> Option<String> {
        let sources = edited?;
        match &self.checked {
            Some((fingerprint, problem)) if *fingerprint == sources.fingerprint() => problem
                .as_ref()
                .map(|(_, text)| format!("the prompt template {text} does not render")),
            _ => Some("the edited prompt templates are still being checked".into()),
        }
    }
}

/// The messages the template in file `name` gives for `trajectory`, as the endpoint would
/// receive them, or the first error of any template. The relabel preview uses the rule-based
/// outcome; the judge preview judges `goal` (the trajectory's accepted goal when there is one,
/// else its original prompt).
pub fn preview(
    sources: &TemplateSources,
    name: &str,
    trajectory: &Trajectory,
    goal: Option<&str>,
) -> Result<String, TemplateError> {
    let templates = Templates::new(sources.clone())?;
    let kind = PromptKind::ALL
        .into_iter()
        .find(|k| name == k.file_name(true) || name == k.file_name(false))
        .unwrap_or(PromptKind::Relabel);
    let messages = match kind {
        PromptKind::Detect => templates.render_detect(trajectory)?,
        PromptKind::Extract => templates.render_extract(trajectory)?,
        PromptKind::Relabel => {
            let outcome = crate::stages::extract::rules::extract(trajectory);
            templates.render_relabel(trajectory, &outcome)?
        }
        PromptKind::Judge => {
            templates.render_judge(trajectory, goal.unwrap_or(&trajectory.original_prompt))?
        }
    };
    Ok(messages
        .iter()
        .map(|m| format!("[{}]\n{}", m.role, m.content))
        .collect::<Vec<_>>()
        .join("\n\n"))
}

/// What the manifest and the run report say of the templates and the lexicon used: version,
/// fingerprint and every file's full text; the lexicon's fingerprint and content.
pub fn describe(templates: &TemplateSources, lexicon: &Lexicon) -> Json {
    let files = object(
        templates
            .files()
            .into_iter()
            .map(|(name, text)| (name, Json::from(text))),
    );
    object([
        (
            "templates",
            object([
                ("version", Json::from(templates.version.as_str())),
                ("fingerprint", Json::from(templates.fingerprint())),
                (
                    "default",
                    Json::from(*templates == TemplateSources::defaults()),
                ),
                ("files", files),
            ]),
        ),
        (
            "lexicon",
            object([
                ("fingerprint", Json::from(lexicon_fingerprint(lexicon))),
                ("default", Json::from(*lexicon == Lexicon::default())),
                ("content", to_json(lexicon)),
            ]),
        ),
    ])
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_run_waits_for_the_check_of_edited_templates_and_stops_at_an_error() {
        let mut status = TemplateStatus::default();
        // The built-in templates need no check.
        assert_eq!(status.blocker(None), None);
        let mut edited = TemplateSources::defaults();
        *edited.file_mut("judge_user.j2").unwrap() = "{{ goal ".into();
        let waiting = status.blocker(Some(&edited)).unwrap();
        assert!(waiting.contains("still being checked"), "{waiting}");
        let problem = check(&edited);
        let (file, text) = problem.clone().expect("an unclosed tag does not compile");
        assert_eq!(file, "judge_user.j2");
        status.record(edited.fingerprint(), problem);
        assert!(status.knows(&edited.fingerprint()));
        assert_eq!(
            status.blocker(Some(&edited)),
            Some(format!("the prompt template {text} does not render"))
        );
        // Fixed: checked again, it renders; a check of other texts does not count.
        let fixed = TemplateSources::defaults();
        assert!(!status.knows(&fixed.fingerprint()));
        assert!(status.blocker(Some(&fixed)).is_some());
        status.record(fixed.fingerprint(), check(&fixed));
        assert_eq!(status.blocker(Some(&fixed)), None);
        assert_eq!(
            status.blocker(Some(&edited)).as_deref(),
            Some("the edited prompt templates are still being checked")
        );
    }

    use super::*;

    #[test]
    fn keyword_lists_round_trip_the_default_lexicon() {
        let lexicon = Lexicon::default();
        let lists = keyword_lists(&lexicon);
        assert_eq!(lists.len(), FailureType::ALL.len());
        assert!(lists[0].1.contains(" 404 "), "spaces are kept");
        assert_eq!(lexicon_from_lists(&lists, lexicon.severity), lexicon);
    }
}
