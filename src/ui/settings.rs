//! Sections 2 and 3: endpoint and run settings, and "Check connection".

use super::bound::{BoundCheck, BoundInput};
use super::state::{AppState, Connection};
use crate::prefs::{Draft, Structured};
use crate::workspace::{Preset, PRESETS};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// One text or number field of the settings form, with its help in plain words under it.
#[component]
pub(super) fn Field(
    label: &'static str,
    testid: &'static str,
    get: fn(&Draft) -> &String,
    set: fn(&mut Draft, String),
    help: &'static str,
    #[prop(default = "number")] kind: &'static str,
) -> impl IntoView {
    let state = expect_context::<AppState>();
    let help_id = format!("{testid}-help");
    view! {
        <label class="field">
            <span class="label">{label}</span>
            <input
                type=kind
                step="any"
                data-testid=testid
                aria-describedby=help_id.clone()
                prop:value=move || state.draft.with(|d| get(d).clone())
                on:input=move |ev| {
                    let v = event_target_value(&ev);
                    state.draft.update(|d| set(d, v));
                }
            />
            <small class="help" id=help_id>{help}</small>
        </label>
    }
}

/// A select of the settings form: `options` are (value, label) pairs.
#[component]
pub(super) fn Choice(
    label: &'static str,
    testid: &'static str,
    get: fn(&Draft) -> &String,
    set: fn(&mut Draft, String),
    options: Vec<(&'static str, &'static str)>,
    help: &'static str,
) -> impl IntoView {
    let state = expect_context::<AppState>();
    let help_id = format!("{testid}-help");
    let options = options
        .into_iter()
        .map(|(value, text)| {
            view! {
                <option value=value selected=move || state.draft.with(|d| get(d) == value)>
                    {text}
                </option>
            }
        })
        .collect_view();
    view! {
        <label class="field">
            <span class="label">{label}</span>
            <select
                data-testid=testid
                aria-describedby=help_id.clone()
                prop:value=move || state.draft.with(|d| get(d).clone())
                on:change=move |ev| {
                    let v = event_target_value(&ev);
                    state.draft.update(|d| set(d, v));
                }
            >
                {options}
            </select>
            <small class="help" id=help_id>{help}</small>
        </label>
    }
}

/// A number field of the advanced settings.
pub(super) struct Number {
    pub label: &'static str,
    pub testid: &'static str,
    pub get: fn(&Draft) -> &String,
    pub set: fn(&mut Draft, String),
    pub help: &'static str,
}

/// A [`Number`] for the draft's field of that name: `number!(label, testid, field, help)`.
macro_rules! number {
    ($label:expr, $testid:expr, $field:ident, $help:expr) => {
        Number {
            label: $label,
            testid: $testid,
            get: |d| &d.$field,
            set: |d, v| d.$field = v,
            help: $help,
        }
    };
}
pub(super) use number;

/// How the relabeling is gated and sampled.
const RELABELING: [Number; 5] = [
    number!("θ (confidence)", "theta", theta, "0 to 1. A relabel is kept only when the model is at least this sure; higher keeps fewer, cleaner rows."),
    number!("δ (severity weight)", "delta", delta, "0 to 1. How much a failure's severity counts against relabeling it."),
    number!("K (attempts)", "max-attempts", max_attempts, "1 to 20. How many times a trajectory is relabeled before giving up."),
    number!("Temperature", "temperature", temperature, "0 to 2. Randomness of the first attempt; retries use 0.7."),
    number!("max_tokens", "max-tokens", max_tokens, "The longest reply a call may get."),
];

/// How fast a run goes and what it may cost.
const SPEED_AND_COST: [Number; 6] = [
    number!("Concurrency", "concurrency", concurrency, "Trajectories worked on at once."),
    number!("Timeout (s)", "timeout", timeout_secs, "How long one request may take once sent, in seconds."),
    number!("Requests per endpoint", "connections", connections, "At once, for the base URL and each replica without its own number; a browser opens 6 connections to one host over HTTP/1.1."),
    number!("Input price (per 1M tokens)", "price-input", price_input, "What the endpoint charges per million prompt tokens; 0 for a local endpoint."),
    number!("Output price (per 1M tokens)", "price-output", price_output, "What the endpoint charges per million completion tokens; 0 for a local endpoint."),
    number!("Ask before runs over", "confirm-above", confirm_above, "Trajectories; a larger run at a non-zero price shows its estimate and asks first."),
];

/// Number fields, one after the other.
pub(super) fn number_fields(fields: &'static [Number]) -> impl IntoView {
    fields
        .iter()
        .map(|f| view! { <Field label=f.label testid=f.testid get=f.get set=f.set help=f.help /> })
        .collect_view()
}

/// A fieldset of number fields.
fn numbers(legend: &'static str, fields: &'static [Number]) -> impl IntoView {
    let fields = number_fields(fields);
    view! {
        <fieldset>
            <legend>{legend}</legend>
            <div class="grid numbers">{fields}</div>
        </fieldset>
    }
}

const MODES: [(&str, &str); 2] = [("rules", "rules (free)"), ("llm", "LLM")];

/// The preset buttons, and what to start on the server of the one the base URL matches.
fn presets(state: AppState) -> impl IntoView {
    let matching = move || state.draft.with(|d| Preset::matching(&d.base_url));
    let buttons = PRESETS
        .iter()
        .map(|p| {
            view! {
                <button
                    type="button"
                    class="small preset"
                    data-testid=format!("preset-{}", p.id)
                    aria-pressed=move || matching().is_some_and(|m| m.id == p.id).to_string()
                    on:click=move |_| {
                        state.draft.update(|d| d.base_url = p.base_url.to_owned());
                        state.connection.set(None);
                    }
                >
                    {p.name}
                </button>
            }
        })
        .collect_view();
    view! {
        <div class="presets" role="group" aria-labelledby="presets-label">
            <span class="label" id="presets-label">"Presets"</span>
            {buttons}
        </div>
        <p class="muted preset-hint" data-testid="preset-hint">
            {move || {
                matching()
                    .map_or(
                        "Any OpenAI-compatible server works: pick a preset or enter its base URL.",
                        |p| p.start,
                    )
            }}
        </p>
    }
}

/// Reads and writes one text field of the settings form.
pub(super) type Accessor = (fn(&Draft) -> &String, fn(&mut Draft, String));

/// The fields of an endpoint: base URL, API key and model (with the models it listed).
pub(super) struct Endpoint {
    /// The judge's endpoint (labels "Judge base URL", ..., test ids `judge-base-url`, ...), or
    /// the relabeling one.
    pub judge: bool,
    pub url_hint: &'static str,
    pub url: Accessor,
    pub key: RwSignal<String>,
    pub key_hint: &'static str,
    pub model: Accessor,
    pub model_hint: &'static str,
    pub models: RwSignal<Vec<String>>,
}

/// An endpoint's base URL, key and model: the model typed, or picked from the list the
/// endpoint's `/models` returned.
pub(super) fn endpoint_fields(state: AppState, e: Endpoint) -> impl IntoView {
    // Label and test id of the base URL, the key, the model and the list of models.
    let [url, key, model, list] = if e.judge {
        [
            ("Judge base URL", "judge-base-url"),
            ("Judge API key", "judge-api-key"),
            ("Judge model", "judge-model"),
            ("Models the judge's endpoint lists", "judge-model-select"),
        ]
    } else {
        [
            ("Base URL", "base-url"),
            ("API key", "api-key"),
            ("Model", "model"),
            ("Models the endpoint lists", "model-select"),
        ]
    };
    let (get_model, set_model) = e.model;
    let models = e.models;
    let key_help = format!("{}-help", key.1);
    let model_help = format!("{}-help", model.1);
    let model_help2 = model_help.clone();
    let model_options = move || {
        models
            .get()
            .into_iter()
            .map(|m| {
                let value = m.clone();
                let text = m.clone();
                view! {
                    <option value=m selected=move || state.draft.with(|d| *get_model(d) == value)>
                        {text}
                    </option>
                }
            })
            .collect_view()
    };
    view! {
        <div class="grid endpoint">
            <Field label=url.0 testid=url.1 kind="url" get=e.url.0 set=e.url.1 help=e.url_hint />
            <label class="field">
                <span class="label">{key.0}</span>
                <BoundInput
                    value=e.key
                    testid=key.1
                    kind="password"
                    autocomplete="off"
                    placeholder="none"
                    describedby=key_help.clone()
                />
                <small class="help" id=key_help>{e.key_hint}</small>
            </label>
            <div class="field">
                <label class="label" for=model.1>{model.0}</label>
                <input
                    id=model.1
                    type="text"
                    data-testid=model.1
                    aria-describedby=model_help.clone()
                    prop:value=move || state.draft.with(|d| get_model(d).clone())
                    on:input=move |ev| {
                        let v = event_target_value(&ev);
                        state.draft.update(|d| set_model(d, v));
                    }
                />
                <Show
                    when=move || models.with(|m| !m.is_empty())
                    fallback=move || {
                        view! {
                            <small class="help" id=model_help2.clone()>{e.model_hint}</small>
                        }
                    }
                >
                    <select
                        data-testid=list.1
                        aria-label=list.0
                        on:change=move |ev| {
                            let v = event_target_value(&ev);
                            if !v.is_empty() {
                                state.draft.update(|d| set_model(d, v));
                            }
                        }
                    >
                        <option
                            value=""
                            selected=move || {
                                state.draft.with(|d| models.with(|m| !m.contains(get_model(d))))
                            }
                        >
                            "Pick one of the listed models…"
                        </option>
                        {model_options}
                    </select>
                    <small class="help" id=model_help.clone()>
                        "Pick a listed model, or type any name above."
                    </small>
                </Show>
            </div>
        </div>
    }
}

/// What a connection check found, as the page shows it.
pub(super) fn connection_view(
    c: Option<Connection>,
    testid: &'static str,
) -> Option<impl IntoView> {
    c.map(|c| {
        let (status, title, advice) = match c {
            Connection::Checking => ("checking", "Checking…".to_string(), String::new()),
            Connection::Done { ok, title, advice } => {
                (if ok { "ok" } else { "error" }, title, advice)
            }
        };
        view! {
            <div
                class=format!("status status-{status}")
                role="status"
                data-testid=testid
                data-status=status
            >
                <p class="title">{title}</p>
                {(!advice.is_empty()).then(|| view! { <p class="advice">{advice}</p> })}
            </div>
        }
    })
}

#[component]
pub fn SettingsSection() -> impl IntoView {
    let state = expect_context::<AppState>();
    let errors = move || state.prefs().err();
    let structured: Vec<_> = Structured::ALL
        .into_iter()
        .map(|m| (m.as_str(), m.label()))
        .collect();

    view! {
        <section class="card step-section" id="step-endpoint" aria-labelledby="settings-title">
            <h2 id="settings-title">"Endpoint"</h2>
            <p class="intro">
                "The relabeling calls a model through an OpenAI-compatible API, on this machine or a hosted one, or runs one in this page."
            </p>
            <super::inpage::EndpointChoice />
            <Show when=move || !super::inpage::chosen(state)>
            {presets(state)}
            {endpoint_fields(
                state,
                Endpoint {
                    judge: false,
                    url_hint: "Ends in /v1 for most servers.",
                    url: (|d| &d.base_url, |d, v| d.base_url = v),
                    key: state.api_key,
                    key_hint: "Leave empty for a local server.",
                    model: (|d| &d.model, |d, v| d.model = v),
                    model_hint: "Check connection lists the server's models here.",
                    models: state.models,
                },
            )}
            <BoundCheck
                checked=state.remember_key
                testid="remember-key"
                text="Remember the keys on this device"
            />
            <Show when=move || state.remember_key.get()>
                <p class="warning" role="note">
                    "The keys (this one and the second judge's) are stored unencrypted in this browser's local storage: anyone using this browser profile can read them."
                </p>
            </Show>
            </Show>
            <details class="advanced" data-testid="advanced-settings">
                <summary>"Advanced settings"</summary>
                <p class="muted">
                    "The defaults follow the paper; change them to trade quality, speed and cost."
                </p>
                {numbers("Relabeling", &RELABELING)}
                <fieldset>
                    <legend>"Stages"</legend>
                    <div class="grid numbers">
                        <Choice
                            label="Stage 1: detection"
                            testid="detection-mode"
                            get=|d| &d.detection
                            set=|d, v| d.detection = v
                            options=MODES.to_vec()
                            help="Rules are free and instant; the LLM reads the whole run."
                        />
                        <Choice
                            label="Stage 2: extraction"
                            testid="extraction-mode"
                            get=|d| &d.extraction
                            set=|d, v| d.extraction = v
                            options=MODES.to_vec()
                            help="What the run achieved: by rules, or asked of the LLM."
                        />
                        <Choice
                            label="Structured output"
                            testid="structured-mode"
                            get=|d| &d.structured
                            set=|d, v| d.structured = v
                            options=structured
                            help="How replies are held to the JSON the stages read; change it when replies do not parse."
                        />
                    </div>
                </fieldset>
                {numbers("Speed and cost", &SPEED_AND_COST)}
                <label class="field replicas">
                    <span class="label">"Replicas (optional)"</span>
                    <textarea
                        data-testid="replicas"
                        rows="2"
                        spellcheck="false"
                        placeholder="http://127.0.0.1:11434/v1\nhttp://other-server:11434/v1 4"
                        aria-describedby="replicas-help"
                        prop:value=move || state.draft.with(|d| d.replicas.clone())
                        on:input=move |ev| {
                            let v = event_target_value(&ev);
                            state.draft.update(|d| d.replicas = v);
                        }
                    ></textarea>
                    <small class="help" id="replicas-help">
                        "Other base URLs serving the same model, one a line, optionally followed by the requests it takes at once. Past 6 requests in flight a browser needs more hosts: other servers, or the same one under another host name (localhost and 127.0.0.1)."
                    </small>
                </label>
            </details>
            {move || {
                errors()
                    .map(|errors| {
                        view! {
                            <div class="error" role="alert" data-testid="settings-error">
                                <ul>
                                    {errors.into_iter().map(|e| view! { <li>{e}</li> }).collect_view()}
                                </ul>
                            </div>
                        }
                    })
            }}
            <h3 id="check-title">"Check the connection"</h3>
            <div class="buttons">
                <button
                    data-testid="check-connection"
                    disabled=move || matches!(state.connection.get(), Some(Connection::Checking))
                    on:click=move |_| spawn_local(state.check_connection())
                >
                    "Check connection"
                </button>
            </div>
            {move || connection_view(state.connection.get(), "connection-status")}
        </section>
    }
}
