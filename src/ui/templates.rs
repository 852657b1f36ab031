//! Whether the edited prompt templates render: a state of its own, checked in the background
//! because the template engine is loaded on demand. Run and the review queue's judge read it
//! ([`TemplateCheck::blocker`]); the decision itself is [`TemplateStatus`], a core type.

use super::demand::{on_demand, Unloaded};
use crate::custom::{TemplateProblem, TemplateStatus};
use crate::llm::TemplateSources;
use crate::prefs::{Draft, Prefs};
use leptos::prelude::*;
use leptos::task::spawn_local;

on_demand! {
/// Compiles edited templates ([`crate::custom::check`]), with the template engine loaded on
/// demand.
async fn compile(sources: TemplateSources) -> TemplateProblem {
    crate::custom::check(&sources)
}
}

#[derive(Clone, Copy)]
pub struct TemplateCheck {
    status: RwSignal<TemplateStatus>,
    /// The fingerprint of the templates being checked.
    checking: StoredValue<Option<String>>,
}

impl TemplateCheck {
    pub fn new() -> Self {
        TemplateCheck {
            status: RwSignal::new(TemplateStatus::default()),
            checking: StoredValue::new(None),
        }
    }

    /// What stops a run with `prefs`: its settings, or edited templates that do not render or
    /// are not checked yet (tracked).
    pub fn blocker(&self, prefs: &Prefs) -> Option<String> {
        self.status.with(|t| prefs.settings_blocker(t))
    }

    /// Checks the templates of `draft` whenever they are edited; a check that could not run
    /// is said in `notice`.
    pub fn follow(self, draft: RwSignal<Draft>, notice: RwSignal<Option<String>>) {
        Effect::new(move |_| {
            let edited = draft.with(|d| {
                (d.templates != TemplateSources::defaults()).then(|| d.templates.clone())
            });
            if let Some(sources) = edited {
                spawn_local(async move {
                    if let Err(e) = self.check(sources).await {
                        notice.set(Some(format!("The edited templates were not checked: {e}.")));
                    }
                });
            }
        });
    }

    /// Checks `sources` unless their check is known or under way. Not known afterwards only
    /// when the template engine could not be loaded (Run then waits, and the next edit or
    /// call checks again).
    pub async fn check(self, sources: TemplateSources) -> Result<(), Unloaded> {
        let fingerprint = sources.fingerprint();
        let known = self.status.with_untracked(|t| t.knows(&fingerprint));
        if known || self.checking.get_value().as_deref() == Some(fingerprint.as_str()) {
            return Ok(());
        }
        self.checking.set_value(Some(fingerprint.clone()));
        let problem = compile(sources).await;
        self.checking.set_value(None);
        let problem = problem?;
        self.status.update(|t| t.record(fingerprint, problem));
        Ok(())
    }
}

impl Default for TemplateCheck {
    fn default() -> Self {
        Self::new()
    }
}
