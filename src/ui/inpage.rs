//! The endpoint choice of section 2 (an HTTP endpoint, or a model in this page), the in-page
//! model's panel (pick, drop or download a GGUF file; kept models), and the speed of its
//! replies during a run.

use super::browser;
use super::drop::DropZone;
use super::state::AppState;
use crate::inpage::engine::{self, InPage, Loaded};
use crate::inpage::{format_bytes, model_of, SCHEME};
use crate::prefs::DEFAULT_BASE_URL;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The localStorage key of the last HTTP base URL, restored when the user switches back.
const HTTP_URL_KEY: &str = "agenther.http_base_url";

/// Whether the settings point at the in-page endpoint.
pub fn chosen(state: AppState) -> bool {
    state.draft.with(|d| model_of(&d.base_url).is_some())
}

/// Points the settings at `loaded`.
fn use_model(state: AppState, loaded: &Loaded) {
    let key = loaded.card.endpoint();
    let model = loaded.card.file_name.clone();
    state.draft.update(|d| {
        d.base_url = key;
        d.model = model;
    });
}

/// Imports the engine and reads the kept models, once the in-page endpoint is chosen.
fn prepare() {
    spawn_local(async {
        let inpage = InPage::get();
        if inpage.env.get_untracked().is_some() {
            return;
        }
        if let Err(e) = engine::environment().await {
            inpage.error.set(Some(e.message));
            return;
        }
        if let Err(e) = engine::refresh_kept().await {
            inpage
                .error
                .set(Some(format!("The kept models cannot be listed: {e}")));
        }
    });
}

fn switch(state: AppState, to_page: bool) {
    if to_page == chosen(state) {
        return;
    }
    if to_page {
        let http = state.draft.with_untracked(|d| d.base_url.clone());
        browser::save(HTTP_URL_KEY, &http);
        match InPage::get().loaded.get_untracked() {
            Some(loaded) => use_model(state, &loaded),
            None => state.draft.update(|d| {
                d.base_url = SCHEME.to_owned();
                d.model = String::new();
            }),
        }
        prepare();
    } else {
        let http = browser::load(HTTP_URL_KEY).unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        state.draft.update(|d| {
            d.base_url = http;
            d.model = String::new();
        });
    }
}

fn load_file(state: AppState, file: web_sys::File, keep: bool) {
    spawn_local(async move {
        let name = file.name();
        if let Ok(loaded) = engine::load(file.into(), &name, keep).await {
            use_model(state, &loaded);
        }
    });
}

/// "An HTTP endpoint" / "In this page", and the in-page panel when chosen.
#[component]
pub fn EndpointChoice() -> impl IntoView {
    let state = expect_context::<AppState>();
    let inpage = InPage::get();
    // A restored session or stored settings may already point here.
    Effect::new(move |_| {
        if chosen(state) {
            prepare();
        }
    });
    let keep = RwSignal::new(false);
    let url = RwSignal::new(String::new());
    let idle = move || {
        inpage.busy.with(Option::is_none)
            && state
                .running
                .run
                .with(|r| r.phase != super::running::Phase::Running)
    };

    let on_pick = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let file = input.files().and_then(|f| f.get(0));
        input.set_value("");
        if let Some(file) = file {
            load_file(state, file, keep.get_untracked());
        }
    };
    let on_drop = Callback::new(move |files: Vec<web_sys::File>| {
        if let Some(file) = files.into_iter().next() {
            load_file(state, file, keep.get_untracked());
        }
    });
    let on_download = move |_| {
        let url = url.get_untracked().trim().to_owned();
        if url.is_empty() {
            return;
        }
        spawn_local(async move {
            if let Ok(loaded) = engine::load_url(&url, keep.get_untracked()).await {
                use_model(state, &loaded);
            }
        });
    };

    let threads = move || {
        inpage.env.get().map(|env| {
            let text = if env.isolated {
                format!(
                    "This page is cross-origin isolated: the model runs multi-threaded, one thread per core ({} cores).",
                    env.cores
                )
            } else {
                "This page is not cross-origin isolated, so the model runs single-threaded (the host must send the COOP and COEP headers for threads: see the README).".to_string()
            };
            view! {
                <p class="muted" data-testid="inpage-threads" data-isolated=env.isolated.to_string()>
                    {text}
                </p>
            }
        })
    };

    let kept = move || {
        inpage
            .kept
            .get()
            .into_iter()
            .map(|(name, size)| {
                let use_name = name.clone();
                let remove_name = name.clone();
                view! {
                    <li class="file-row" data-testid="kept-model">
                        <span class="file-name">{name.clone()}</span>
                        <span>{format_bytes(size)}</span>
                        <button
                            class="small"
                            disabled=move || !idle()
                            on:click=move |_| {
                                let name = use_name.clone();
                                spawn_local(async move {
                                    if let Ok(loaded) = engine::load_kept(&name).await {
                                        use_model(state, &loaded);
                                    }
                                });
                            }
                        >
                            "Use"
                        </button>
                        <button
                            class="small"
                            data-testid="remove-kept"
                            disabled=move || !idle()
                            on:click=move |_| {
                                let name = remove_name.clone();
                                spawn_local(async move {
                                    if let Err(e) = engine::remove_kept(&name).await {
                                        inpage.error.set(Some(format!("Could not remove {name}: {e}")));
                                    }
                                });
                            }
                        >
                            "Remove"
                        </button>
                    </li>
                }
            })
            .collect_view()
    };

    view! {
        <div class="endpoint-choice" role="radiogroup" aria-label="Endpoint">
            <label class="check">
                <input
                    type="radio"
                    name="endpoint-kind"
                    data-testid="endpoint-http"
                    prop:checked=move || !chosen(state)
                    on:change=move |_| switch(state, false)
                />
                "An HTTP endpoint (Ollama, llama.cpp, vLLM, OpenAI, …)"
            </label>
            <label class="check">
                <input
                    type="radio"
                    name="endpoint-kind"
                    data-testid="endpoint-inpage"
                    prop:checked=move || chosen(state)
                    on:change=move |_| switch(state, true)
                />
                "In this page: a GGUF model run by llama.cpp in your browser, no server"
            </label>
        </div>
        <Show when=move || chosen(state)>
            <DropZone class="drop-zone inpage" testid="inpage-panel" on_files=on_drop>
                <p>
                    "Drop a " <code>".gguf"</code>
                    " model file here or choose one: it is read from your disk and never uploaded. Or paste a URL the browser can fetch (a Hugging Face “resolve” link works)."
                </p>
                <div class="buttons">
                    <label class="button primary file-button">
                        "Choose a model…"
                        <input
                            type="file"
                            accept=".gguf"
                            data-testid="model-file"
                            class="visually-hidden"
                            disabled=move || !idle()
                            on:change=on_pick
                        />
                    </label>
                    <input
                        type="url"
                        data-testid="model-url"
                        placeholder="https://…/model.gguf"
                        prop:value=move || url.get()
                        on:input=move |ev| url.set(event_target_value(&ev))
                    />
                    <button data-testid="model-download" disabled=move || !idle() on:click=on_download>
                        "Download"
                    </button>
                    <label class="check">
                        <input
                            type="checkbox"
                            data-testid="keep-model"
                            prop:checked=move || keep.get()
                            on:change=move |ev| keep.set(event_target_checked(&ev))
                        />
                        "Keep the model in this browser"
                    </label>
                </div>
                {threads}
                {move || {
                    inpage.busy.get().map(|b| view! { <p class="loading" role="status" data-testid="inpage-busy">{b}</p> })
                }}
                {move || {
                    inpage
                        .error
                        .get()
                        .map(|e| view! { <p class="error" role="alert" data-testid="inpage-error">{e}</p> })
                }}
                {move || {
                    inpage
                        .loaded
                        .get()
                        .map(|l| {
                            view! {
                                <p class="status status-ok" data-testid="inpage-model" data-endpoint=l.card.endpoint()>
                                    {format!(
                                        "Loaded: {} — {}, context {} tokens, about {} of memory.",
                                        l.card.summary(),
                                        l.threading(),
                                        l.card.context(),
                                        format_bytes(l.card.memory_needed()),
                                    )}
                                </p>
                            }
                        })
                }}
                <Show when=move || inpage.kept.with(|k| !k.is_empty())>
                    <p class="label">"Kept in this browser"</p>
                    <ul class="files">{kept}</ul>
                </Show>
            </DropZone>
        </Show>
    }
}

/// The in-page model's speed, shown under the run while it is the endpoint.
#[component]
pub fn RunSpeed() -> impl IntoView {
    let state = expect_context::<AppState>();
    let inpage = InPage::get();
    view! {
        <Show when=move || chosen(state) && inpage.speed.with(|s| s.replies > 0)>
            <p class="card muted" role="status" data-testid="inpage-speed">
                {move || {
                    let threading = inpage
                        .loaded
                        .get()
                        .map(|l| format!(", {}", l.threading()))
                        .unwrap_or_default();
                    format!("In this page{threading}: {}", inpage.speed.get().summary())
                }}
            </p>
        </Show>
    }
}
