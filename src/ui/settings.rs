//! Sections 2 and 3: endpoint and run settings, and "Check connection".

use super::state::{AppState, Connection};
use crate::prefs::{Draft, Structured};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// One text or number field of the settings form.
fn field(
    state: AppState,
    label: &'static str,
    testid: &'static str,
    kind: &'static str,
    get: fn(&Draft) -> &String,
    set: fn(&mut Draft, String),
    hint: &'static str,
) -> impl IntoView {
    view! {
        <label class="field">
            <span class="label">{label}</span>
            <input
                type=kind
                step="any"
                data-testid=testid
                title=hint
                prop:value=move || state.draft.with(|d| get(d).clone())
                on:input=move |ev| {
                    let v = event_target_value(&ev);
                    state.draft.update(|d| set(d, v));
                }
            />
        </label>
    }
}

/// A `rules` / `llm` select.
fn mode_select(
    state: AppState,
    label: &'static str,
    testid: &'static str,
    get: fn(&Draft) -> &String,
    set: fn(&mut Draft, String),
) -> impl IntoView {
    let is = move |v: &'static str| move || state.draft.with(|d| get(d) == v);
    view! {
        <label class="field">
            <span class="label">{label}</span>
            <select
                data-testid=testid
                prop:value=move || state.draft.with(|d| get(d).clone())
                on:change=move |ev| {
                    let v = event_target_value(&ev);
                    state.draft.update(|d| set(d, v));
                }
            >
                <option value="rules" selected=is("rules")>
                    "rules (free)"
                </option>
                <option value="llm" selected=is("llm")>
                    "LLM"
                </option>
            </select>
        </label>
    }
}

#[component]
pub fn SettingsSection() -> impl IntoView {
    let state = expect_context::<AppState>();
    let errors = move || state.prefs().err();
    let structured_options = Structured::ALL
        .into_iter()
        .map(|m| {
            view! {
                <option
                    value=m.as_str()
                    selected=move || state.draft.with(|d| d.structured == m.as_str())
                >
                    {m.label()}
                </option>
            }
        })
        .collect_view();

    view! {
        <section class="card" aria-labelledby="settings-title">
            <h2 id="settings-title">"2. Endpoint and settings"</h2>
            <super::inpage::EndpointChoice />
            <Show when=move || !super::inpage::chosen(state)>
            <div class="grid endpoint">
                {field(
                    state,
                    "Base URL",
                    "base-url",
                    "url",
                    |d| &d.base_url,
                    |d, v| d.base_url = v,
                    "An OpenAI-compatible API, e.g. http://localhost:11434/v1",
                )}
                <label class="field">
                    <span class="label">"API key"</span>
                    <input
                        type="password"
                        autocomplete="off"
                        data-testid="api-key"
                        placeholder="none"
                        prop:value=move || state.api_key.get()
                        on:input=move |ev| state.api_key.set(event_target_value(&ev))
                    />
                </label>
                <label class="field">
                    <span class="label">"Model"</span>
                    <input
                        type="text"
                        list="model-list"
                        data-testid="model"
                        placeholder="check the connection to list models"
                        prop:value=move || state.draft.with(|d| d.model.clone())
                        on:input=move |ev| {
                            let v = event_target_value(&ev);
                            state.draft.update(|d| d.model = v);
                        }
                    />
                    <datalist id="model-list">
                        {move || {
                            state
                                .models
                                .get()
                                .into_iter()
                                .map(|m| view! { <option value=m></option> })
                                .collect_view()
                        }}
                    </datalist>
                </label>
            </div>
            <label class="check">
                <input
                    type="checkbox"
                    data-testid="remember-key"
                    prop:checked=move || state.remember_key.get()
                    on:change=move |ev| state.remember_key.set(event_target_checked(&ev))
                />
                "Remember the key on this device"
            </label>
            <Show when=move || state.remember_key.get()>
                <p class="warning" role="note">
                    "The key is stored unencrypted in this browser's local storage: anyone using this browser profile can read it."
                </p>
            </Show>
            </Show>
            <div class="grid numbers">
                {field(state, "θ (confidence)", "theta", "number", |d| &d.theta, |d, v| d.theta = v, "0 to 1")}
                {field(state, "δ (severity weight)", "delta", "number", |d| &d.delta, |d, v| d.delta = v, "0 to 1")}
                {field(
                    state,
                    "K (attempts)",
                    "max-attempts",
                    "number",
                    |d| &d.max_attempts,
                    |d, v| d.max_attempts = v,
                    "1 to 20",
                )}
                {field(
                    state,
                    "Temperature",
                    "temperature",
                    "number",
                    |d| &d.temperature,
                    |d, v| d.temperature = v,
                    "0 to 2; retries use 0.7",
                )}
                {field(
                    state,
                    "max_tokens",
                    "max-tokens",
                    "number",
                    |d| &d.max_tokens,
                    |d, v| d.max_tokens = v,
                    "per call",
                )}
                {field(
                    state,
                    "Concurrency",
                    "concurrency",
                    "number",
                    |d| &d.concurrency,
                    |d, v| d.concurrency = v,
                    "trajectories at once",
                )}
                {field(
                    state,
                    "Timeout (s)",
                    "timeout",
                    "number",
                    |d| &d.timeout_secs,
                    |d, v| d.timeout_secs = v,
                    "per request, in seconds",
                )}
                {field(
                    state,
                    "Input price (per 1M tokens)",
                    "price-input",
                    "number",
                    |d| &d.price_input,
                    |d, v| d.price_input = v,
                    "what the endpoint charges per million prompt tokens; 0 for a local endpoint",
                )}
                {field(
                    state,
                    "Output price (per 1M tokens)",
                    "price-output",
                    "number",
                    |d| &d.price_output,
                    |d, v| d.price_output = v,
                    "what the endpoint charges per million completion tokens; 0 for a local endpoint",
                )}
                {field(
                    state,
                    "Ask before runs over",
                    "confirm-above",
                    "number",
                    |d| &d.confirm_above,
                    |d, v| d.confirm_above = v,
                    "trajectories; a larger run at a non-zero price shows its estimate and asks first",
                )}
                {mode_select(
                    state,
                    "Stage 1: detection",
                    "detection-mode",
                    |d| &d.detection,
                    |d, v| d.detection = v,
                )}
                {mode_select(
                    state,
                    "Stage 2: extraction",
                    "extraction-mode",
                    |d| &d.extraction,
                    |d, v| d.extraction = v,
                )}
                <label class="field">
                    <span class="label">"Structured output"</span>
                    <select
                        data-testid="structured-mode"
                        prop:value=move || state.draft.with(|d| d.structured.clone())
                        on:change=move |ev| {
                            let v = event_target_value(&ev);
                            state.draft.update(|d| d.structured = v);
                        }
                    >
                        {structured_options}
                    </select>
                </label>
            </div>
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
        </section>
        <section class="card" aria-labelledby="check-title">
            <h2 id="check-title">"3. Check the connection"</h2>
            <div class="buttons">
                <button
                    data-testid="check-connection"
                    disabled=move || matches!(state.connection.get(), Some(Connection::Checking))
                    on:click=move |_| spawn_local(state.check_connection())
                >
                    "Check connection"
                </button>
            </div>
            {move || {
                state
                    .connection
                    .get()
                    .map(|c| {
                        let (status, title, advice) = match c {
                            Connection::Checking => {
                                ("checking", "Checking…".to_string(), String::new())
                            }
                            Connection::Done { ok, title, advice } => {
                                (if ok { "ok" } else { "error" }, title, advice)
                            }
                        };
                        view! {
                            <div
                                class=format!("status status-{status}")
                                role="status"
                                data-testid="connection-status"
                                data-status=status
                            >
                                <p class="title">{title}</p>
                                {(!advice.is_empty())
                                    .then(|| view! { <p class="advice">{advice}</p> })}
                            </div>
                        }
                    })
            }}
        </section>
    }
}
