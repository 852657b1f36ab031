//! The method beyond the paper, as settings: the second judge's endpoint, the grounding check,
//! near-duplicate thresholds, and the prompt templates and lexicon the user edits (with a live
//! preview on the selected trajectory). Everything is kept in the settings form
//! ([`crate::prefs::Draft`]) and so saved with the preferences and in saved sessions.

use super::settings::{connection_view, endpoint_fields, field, Endpoint};
use super::state::{AppState, Connection};
use crate::custom;
use crate::grounding::GroundingMode;
use crate::llm::TemplateSources;
use crate::prefs::{Draft, Prefs};
use crate::stages::detect::rules::Lexicon;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The second judge, the grounding check and the near-duplicate thresholds.
#[component]
pub fn MethodSection() -> impl IntoView {
    let state = expect_context::<AppState>();
    let grounding_options = GroundingMode::ALL
        .into_iter()
        .map(|m| {
            view! {
                <option
                    value=m.as_str()
                    selected=move || state.draft.with(|d| d.grounding == m.as_str())
                >
                    {m.as_str()}
                </option>
            }
        })
        .collect_view();
    let judge_note = move || {
        state
            .prefs()
            .map(|p| p.judge_note())
            .unwrap_or_else(|_| "Fix the settings to see who judges.".into())
    };
    view! {
        <section class="card" aria-labelledby="method-title">
            <h2 id="method-title">"Second judge, grounding and duplicates"</h2>
            <h3 class="subtle">"Second judge"</h3>
            {endpoint_fields(
                state,
                Endpoint {
                    judge: true,
                    url_hint: "empty: the relabeling endpoint",
                    url: (|d| &d.judge_base_url, |d, v| d.judge_base_url = v),
                    key: state.judge_api_key,
                    key_hint: "none (kept in memory only)",
                    model: (|d| &d.judge_model, |d, v| d.judge_model = v),
                    model_hint: "empty: the relabeling model",
                    models: state.judge_models,
                },
            )}
            <div class="grid numbers">
                {field(
                    state,
                    "Judge concurrency",
                    "judge-concurrency",
                    "number",
                    |d| &d.judge_concurrency,
                    |d, v| d.judge_concurrency = v,
                    "judge calls at once",
                )}
                {field(
                    state,
                    "Judge price / M tokens",
                    "judge-price",
                    "number",
                    |d| &d.judge_price_per_million,
                    |d, v| d.judge_price_per_million = v,
                    "0: not priced",
                )}
            </div>
            <p class="muted" data-testid="judge-note">
                {judge_note}
            </p>
            <div class="buttons">
                <button
                    data-testid="check-judge-connection"
                    disabled=move || matches!(state.judge_connection.get(), Some(Connection::Checking))
                    on:click=move |_| spawn_local(state.check_judge_connection())
                >
                    "Check judge connection"
                </button>
            </div>
            {move || connection_view(state.judge_connection.get(), "judge-connection-status")}
            <h3 class="subtle">"Grounding and duplicates"</h3>
            <div class="grid numbers">
                <label class="field">
                    <span class="label">"Ungrounded goals"</span>
                    <select
                        data-testid="grounding-mode"
                        title="A goal naming a number, date, name or quoted text the run never observed"
                        prop:value=move || state.draft.with(|d| d.grounding.clone())
                        on:change=move |ev| {
                            let v = event_target_value(&ev);
                            state.draft.update(|d| d.grounding = v);
                        }
                    >
                        {grounding_options}
                    </select>
                </label>
                {field(
                    state,
                    "Near-duplicate similarity",
                    "duplicate-threshold",
                    "number",
                    |d| &d.duplicate_threshold,
                    |d, v| d.duplicate_threshold = v,
                    "Jaccard of word pairs, 0 to 1",
                )}
                {field(
                    state,
                    "\"Not a new goal\" similarity",
                    "restate-threshold",
                    "number",
                    |d| &d.restate_threshold,
                    |d, v| d.restate_threshold = v,
                    "to the original goal, 0 to 1",
                )}
            </div>
            <TemplateEditor />
            <LexiconEditor />
        </section>
    }
}

/// The trajectory previews render on: the selected one, else the first loaded.
fn preview_entry(state: AppState) -> Option<(crate::model::Trajectory, Option<String>)> {
    let index = state.selected.get().unwrap_or(0);
    state.session.with(|s| {
        let e = s.entries.get(index).or_else(|| s.entries.first())?;
        let goal = e
            .result
            .as_ref()
            .and_then(|r| r.relabel.as_ref())
            .and_then(|r| r.relabel())
            .map(|r| r.hindsight_prompt.clone());
        Some((e.trajectory.clone(), goal))
    })
}

#[component]
fn TemplateEditor() -> impl IntoView {
    let state = expect_context::<AppState>();
    let file = RwSignal::new("relabel_user.j2".to_string());
    let names: Vec<&'static str> = TemplateSources::defaults()
        .files()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let options = names
        .into_iter()
        .map(|n| view! { <option value=n selected=move || file.get() == n>{n}</option> })
        .collect_view();
    let text = move || {
        let name = file.get();
        state.draft.with(|d| {
            d.templates
                .files()
                .into_iter()
                .find(|(f, _)| *f == name)
                .map(|(_, t)| t.to_owned())
                .unwrap_or_default()
        })
    };
    // The preview, or the error of the first template that does not render.
    let rendered = Memo::new(move |_| {
        let sources = state.draft.with(|d| d.templates.clone());
        let name = file.get();
        match preview_entry(state) {
            Some((t, goal)) => custom::preview(&sources, &name, &t, goal.as_deref())
                .map_err(|e| (custom::error_file(&e), custom::error_text(&e))),
            None => check_templates(&sources)
                .map(|()| "Load a trajectory to see this template rendered on it.".to_string()),
        }
    });
    let edited = move || {
        state
            .draft
            .with(|d| d.templates != TemplateSources::defaults())
    };
    view! {
        <h3 class="subtle">"Prompt templates"</h3>
        <p class="muted">
            "minijinja templates; a field the template uses that its prompt does not have is an error. "
            "A template that does not render blocks Run with its error."
        </p>
        <div class="template-editor">
            <label class="field">
                <span class="label">"Template"</span>
                <select
                    data-testid="template-file"
                    prop:value=move || file.get()
                    on:change=move |ev| file.set(event_target_value(&ev))
                >
                    {options}
                </select>
            </label>
            <textarea
                class="mono template-text"
                data-testid="template-text"
                rows="14"
                spellcheck="false"
                aria-label="Template text"
                prop:value=text
                on:input=move |ev| {
                    let v = event_target_value(&ev);
                    let name = file.get_untracked();
                    state
                        .draft
                        .update(|d| {
                            if let Some(slot) = d.templates.file_mut(&name) {
                                *slot = v;
                            }
                        });
                }
            ></textarea>
            <div class="buttons">
                <button
                    data-testid="template-reset"
                    on:click=move |_| {
                        let name = file.get_untracked();
                        let default = TemplateSources::defaults()
                            .files()
                            .into_iter()
                            .find(|(f, _)| *f == name)
                            .map(|(_, t)| t.to_owned())
                            .unwrap_or_default();
                        state
                            .draft
                            .update(|d| {
                                if let Some(slot) = d.templates.file_mut(&name) {
                                    *slot = default;
                                }
                            });
                    }
                >
                    "Reset this template"
                </button>
                <button
                    data-testid="templates-reset-all"
                    disabled=move || !edited()
                    on:click=move |_| state.draft.update(|d| d.templates = TemplateSources::defaults())
                >
                    "Reset all templates"
                </button>
                <span class="muted" data-testid="templates-fingerprint">
                    {move || {
                        let fp = state.draft.with(|d| d.templates.fingerprint());
                        format!(
                            "{} · sha256 {}",
                            if edited() { "edited" } else { "built-in" },
                            &fp[..12],
                        )
                    }}
                </span>
            </div>
            {move || match rendered.get() {
                Ok(text) => {
                    view! {
                        <pre class="raw preview" data-testid="template-preview">
                            {text}
                        </pre>
                    }
                        .into_any()
                }
                Err((file, message)) => {
                    view! {
                        <p class="error" role="alert" data-testid="template-error" data-file=file>
                            {message}
                        </p>
                    }
                        .into_any()
                }
            }}
        </div>
    }
}

/// Compiles and checks every template (no trajectory needed).
fn check_templates(sources: &TemplateSources) -> Result<(), (String, String)> {
    crate::llm::Templates::new(sources.clone())
        .map(|_| ())
        .map_err(|e| (custom::error_file(&e), custom::error_text(&e)))
}

#[component]
fn LexiconEditor() -> impl IntoView {
    let state = expect_context::<AppState>();
    let count = state.draft.with_untracked(|d| d.keywords.len());
    let lists = (0..count)
        .map(|i| {
            let name = state
                .draft
                .with_untracked(|d| d.keywords.get(i).map(|(t, _)| t.as_str()).unwrap_or(""));
            view! {
                <label class="field keywords">
                    <span class="label">{name}</span>
                    <textarea
                        class="mono"
                        rows="5"
                        data-testid=format!("keywords-{name}")
                        spellcheck="false"
                        prop:value=move || {
                            state.draft.with(|d| d.keywords.get(i).map(|(_, k)| k.clone()).unwrap_or_default())
                        }
                        on:input=move |ev| {
                            let v = event_target_value(&ev);
                            state.draft.update(|d| {
                                if let Some(slot) = d.keywords.get_mut(i) {
                                    slot.1 = v;
                                }
                            });
                        }
                    ></textarea>
                </label>
            }
        })
        .collect_view();
    let edited = move || {
        state
            .prefs()
            .map(|p: Prefs| p.lexicon.is_some())
            .unwrap_or(true)
    };
    view! {
        <h3 class="subtle">"Failure lexicon (rule-based detection)"</h3>
        <p class="muted">
            "One keyword per line, matched in the lower-cased text of the run; spaces count (\" 404 \" keeps its spaces). "
            "Types are tried in this order, a tie going to the earlier one. "
            "Severity = min(cap, base + per hit × hits)."
        </p>
        <div class="grid lexicon">{lists}</div>
        <div class="grid numbers">
            {field(
                state,
                "Severity base",
                "severity-base",
                "number",
                |d| &d.severity_base,
                |d, v| d.severity_base = v,
                "0.3 in the reference",
            )}
            {field(
                state,
                "Severity per hit",
                "severity-per-hit",
                "number",
                |d| &d.severity_per_hit,
                |d, v| d.severity_per_hit = v,
                "0.1 in the reference",
            )}
            {field(
                state,
                "Severity cap",
                "severity-cap",
                "number",
                |d| &d.severity_cap,
                |d, v| d.severity_cap = v,
                "1 in the reference",
            )}
        </div>
        <div class="buttons">
            <button
                data-testid="lexicon-reset"
                disabled=move || !edited()
                on:click=move |_| {
                    let fresh = Draft::from(&Prefs {
                        lexicon: Some(Lexicon::default()),
                        ..Prefs::default()
                    });
                    state
                        .draft
                        .update(|d| {
                            d.keywords = fresh.keywords;
                            d.severity_base = fresh.severity_base;
                            d.severity_per_hit = fresh.severity_per_hit;
                            d.severity_cap = fresh.severity_cap;
                        });
                }
            >
                "Reset the lexicon"
            </button>
        </div>
    }
}
