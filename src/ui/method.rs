//! The method beyond the paper, as settings: the second judge's endpoint, the grounding check,
//! near-duplicate thresholds, and the prompt templates and lexicon the user edits (with a live
//! preview on the selected trajectory). Everything is kept in the settings form
//! ([`crate::prefs::Draft`]) and so saved with the preferences and in saved sessions.

use super::settings::{
    connection_view, endpoint_fields, number, number_fields, Choice, Endpoint, Number,
};
use super::state::{AppState, Connection};
use crate::custom;
use crate::grounding::GroundingMode;
use crate::llm::TemplateSources;
use crate::prefs::{Draft, Prefs};
use crate::stages::detect::rules::Lexicon;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;

/// How long after the last keystroke an edited template or keyword list reaches the settings.
const SETTLE: Duration = Duration::from_millis(300);

/// Puts a text into one slot of the settings form (a template by name, a keyword list by type).
type SetSlot = fn(&mut Draft, &str, String);

/// A large text field whose edits reach the settings [`SETTLE`] after the last keystroke, or at
/// once when it loses focus: everything computed from the settings (the rule-based analysis of
/// every trajectory, the template preview, the estimate, the saved preferences) then runs once
/// per pause in typing, not once per keystroke.
#[derive(Clone, Copy)]
struct Settled {
    timer: StoredValue<Option<TimeoutHandle>, LocalStorage>,
    /// The text typed and not yet in the settings, with where it goes.
    pending: StoredValue<Option<(String, SetSlot, String)>, LocalStorage>,
    draft: RwSignal<Draft>,
}

impl Settled {
    fn new(draft: RwSignal<Draft>) -> Self {
        Settled {
            timer: StoredValue::new_local(None),
            pending: StoredValue::new_local(None),
            draft,
        }
    }

    /// A keystroke: `value` goes to `set(draft, slot, value)` once typing pauses.
    fn input(self, slot: String, set: SetSlot, value: String) {
        self.cancel();
        self.pending.set_value(Some((slot, set, value)));
        let timer = set_timeout_with_handle(move || self.flush(), SETTLE).ok();
        self.timer.set_value(timer);
    }

    /// Puts what is pending into the settings now (on blur, and when the pause is over).
    fn flush(self) {
        self.cancel();
        if let Some((slot, set, value)) = self.pending.try_update_value(Option::take).flatten() {
            self.draft.update(|d| set(d, &slot, value));
        }
    }

    fn cancel(self) {
        if let Some(timer) = self.timer.try_update_value(Option::take).flatten() {
            timer.clear();
        }
    }
}

/// The second judge's concurrency and price.
const JUDGE: [Number; 2] = [
    number!(
        "Judge concurrency",
        "judge-concurrency",
        judge_concurrency,
        "judge calls at once"
    ),
    number!(
        "Judge price / M tokens",
        "judge-price",
        judge_price_per_million,
        "0: not priced"
    ),
];

/// The near-duplicate and "not a new goal" thresholds.
const DUPLICATES: [Number; 2] = [
    number!(
        "Near-duplicate similarity",
        "duplicate-threshold",
        duplicate_threshold,
        "Jaccard of word pairs, 0 to 1"
    ),
    number!(
        "\"Not a new goal\" similarity",
        "restate-threshold",
        restate_threshold,
        "to the original goal, 0 to 1"
    ),
];

/// The severity formula's inputs.
const SEVERITY: [Number; 3] = [
    number!(
        "Severity base",
        "severity-base",
        severity_base,
        "0.3 in the reference"
    ),
    number!(
        "Severity per hit",
        "severity-per-hit",
        severity_per_hit,
        "0.1 in the reference"
    ),
    number!(
        "Severity cap",
        "severity-cap",
        severity_cap,
        "1 in the reference"
    ),
];

/// The second judge, the grounding check and the near-duplicate thresholds.
#[component]
pub fn MethodSection() -> impl IntoView {
    let state = expect_context::<AppState>();
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
                    key_hint: "None for a local server. Kept in memory only, unless \"Remember the keys on this device\" is ticked under Endpoint.",
                    model: (|d| &d.judge_model, |d, v| d.judge_model = v),
                    model_hint: "empty: the relabeling model",
                    models: state.judge_models,
                },
            )}
            <div class="grid numbers">
                {number_fields(&JUDGE)}
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
                <Choice
                    label="Ungrounded goals"
                    testid="grounding-mode"
                    get=|d| &d.grounding
                    set=|d, v| d.grounding = v
                    options=GroundingMode::ALL.iter().map(|m| (m.as_str(), m.as_str())).collect()
                    help="A goal naming a number, date, name or quoted text the run never observed: reject it, flag it for review, or do not check."
                />
                {number_fields(&DUPLICATES)}
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
        Some((e.trajectory(), goal))
    })
}

/// Sets the text of template `name`.
fn set_template(d: &mut Draft, name: &str, text: String) {
    if let Some(slot) = d.templates.file_mut(name) {
        *slot = text;
    }
}

/// Sets the keywords of the failure type named `name`.
fn set_keywords(d: &mut Draft, name: &str, text: String) {
    if let Some(slot) = d.keywords.iter_mut().find(|(t, _)| t.as_str() == name) {
        slot.1 = text;
    }
}

#[component]
fn TemplateEditor() -> impl IntoView {
    let state = expect_context::<AppState>();
    let settled = Settled::new(state.draft);
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
    // The preview, or the error of the first template that does not render; how many times
    // it was rendered is on the page (`data-renders`), for the tests of the debounce.
    let renders = StoredValue::new(0u32);
    // Rendered again only when the templates, the file shown or the trajectory change, not
    // for every other change of the settings or the session.
    let sources = Memo::new(move |_| state.draft.with(|d| d.templates.clone()));
    let entry = Memo::new(move |_| preview_entry(state));
    // Rendered in the background (the template engine is loaded when first needed); only the
    // latest rendering is shown.
    let rendered = RwSignal::new(None::<Result<String, (String, String)>>);
    // Not before the editor is in view: the preview is what loads the template engine.
    let editor = NodeRef::<leptos::html::Div>::new();
    let in_view = RwSignal::new(false);
    Effect::new(move |_| {
        if let Some(element) = editor.get() {
            super::browser::when_visible(&element, move || in_view.set(true));
        }
    });
    Effect::new(move |_| {
        if !in_view.get() {
            return;
        }
        renders.update_value(|n| *n += 1);
        let ticket = renders.get_value();
        let job = render_preview(sources.get(), file.get(), entry.get());
        leptos::task::spawn_local(async move {
            let shown = job
                .await
                .unwrap_or_else(|e| Err((String::new(), format!("Not rendered: {e}."))));
            if renders.get_value() == ticket {
                rendered.set(Some(shown));
            }
        });
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
        <div class="template-editor" node_ref=editor>
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
                    settled.input(file.get_untracked(), set_template, event_target_value(&ev))
                }
                on:blur=move |_| settled.flush()
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
                None => ().into_any(),
                Some(Ok(text)) => {
                    view! {
                        <pre
                            class="raw preview"
                            data-testid="template-preview"
                            data-renders=renders.get_value()
                            tabindex="0"
                            aria-label="Rendered prompt"
                        >
                            {text}
                        </pre>
                    }
                        .into_any()
                }
                Some(Err((file, message))) => {
                    view! {
                        <p
                            class="error"
                            role="alert"
                            data-testid="template-error"
                            data-file=file
                            data-renders=renders.get_value()
                        >
                            {message}
                        </p>
                    }
                        .into_any()
                }
            }}
        </div>
    }
}

super::demand::on_demand! {
/// The template in file `name` rendered on the previewed trajectory, or, with no trajectory,
/// whether every template compiles; the error is the first template's that does not, with its
/// file. The template engine is loaded on demand.
async fn render_preview(
    sources: TemplateSources,
    name: String,
    entry: Option<(crate::model::Trajectory, Option<String>)>,
) -> Result<String, (String, String)> {
    match entry {
        Some((t, goal)) => custom::preview(&sources, &name, &t, goal.as_deref())
            .map_err(|e| (custom::error_file(&e), custom::error_text(&e))),
        None => match custom::check(&sources) {
            None => Ok("Load a trajectory to see this template rendered on it.".to_string()),
            Some(problem) => Err(problem),
        },
    }
}
}

#[component]
fn LexiconEditor() -> impl IntoView {
    let state = expect_context::<AppState>();
    let settled = Settled::new(state.draft);
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
                            settled.input(name.to_owned(), set_keywords, event_target_value(&ev))
                        }
                        on:blur=move |_| settled.flush()
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
        <div class="grid lexicon" data-testid="lexicon" data-recomputed=move || state.lexicon_applied.get()>
            {lists}
        </div>
        <div class="grid numbers">
            {number_fields(&SEVERITY)}
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
