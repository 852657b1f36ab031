//! Whether the edited prompt templates render: a state of its own, checked in the background
//! because the template engine is loaded on demand. Run and the review queue's judge read it
//! ([`TemplateCheck::blocker`]); the decision itself is [`TemplateStatus`], a core type.

use super::demand::on_demand;
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
    /// Where a check that could not run is said.
    notice: RwSignal<Option<String>>,
}

impl TemplateCheck {
    pub fn new(notice: RwSignal<Option<String>>) -> Self {
        TemplateCheck {
            status: RwSignal::new(TemplateStatus::default()),
            notice,
        }
    }

    /// What stops a run with `prefs`: its settings, or edited templates that do not render or
    /// are not checked yet (tracked).
    pub fn blocker(&self, prefs: &Prefs) -> Option<String> {
        self.status.with(|t| prefs.settings_blocker(t))
    }

    /// Checks the templates of `draft` whenever they are edited.
    pub fn follow(self, draft: RwSignal<Draft>) {
        Effect::new(move |_| {
            let edited = draft.with(|d| {
                (d.templates != TemplateSources::defaults()).then(|| d.templates.clone())
            });
            if let Some(sources) = edited {
                spawn_local(self.check(sources));
            }
        });
    }

    /// Checks `sources` unless their check is known. Afterwards it is known, unless the
    /// template engine could not be loaded: that is said in the notice, Run waits, and the
    /// next edit or call checks again. Two calls for the same texts may both compile them;
    /// each ends with the check known.
    pub async fn check(self, sources: TemplateSources) {
        let fingerprint = sources.fingerprint();
        if self.status.with_untracked(|t| t.knows(&fingerprint)) {
            return;
        }
        match compile(sources).await {
            Ok(problem) => self.status.update(|t| t.record(fingerprint, problem)),
            Err(e) => self
                .notice
                .set(Some(format!("The edited templates were not checked: {e}."))),
        }
    }
}
