//! Section 1: loading trajectory files.

use super::browser;
use super::state::AppState;
use crate::progress::format_count;
use crate::reader::InputFormat;
use leptos::ev::DragEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// Rejected records listed on the page (all of them are copied).
const REJECTED_SHOWN: usize = 500;

fn format_name(f: InputFormat) -> &'static str {
    match f {
        InputFormat::Jsonl => "JSONL",
        InputFormat::JsonArray => "JSON array",
        InputFormat::JsonValues => "JSON values",
        InputFormat::Text => "text",
        InputFormat::Empty => "empty",
    }
}

#[component]
pub fn LoadSection() -> impl IntoView {
    let state = expect_context::<AppState>();
    let dragging = RwSignal::new(false);
    let on_drop = move |ev: DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        let files = browser::files_of(ev.data_transfer().and_then(|dt| dt.files()));
        if !files.is_empty() {
            spawn_local(state.load_files(files));
        }
    };
    let on_pick = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let files = browser::files_of(input.files());
        // The same file may be picked again later.
        input.set_value("");
        spawn_local(state.load_files(files));
    };

    let files = move || {
        state.session.with(|s| {
            s.files
                .iter()
                .map(|f| {
                    let sum = &f.summary;
                    let notes = if sum.notes.is_empty() {
                        String::new()
                    } else {
                        format!(" — {}", sum.notes.join("; "))
                    };
                    view! {
                        <li class="file-row" data-testid="file-row">
                            <span class="file-name">{sum.file.clone()}</span>
                            <span>{format!("{} trajectories", format_count(sum.records))}</span>
                            <span class={if sum.rejected > 0 { "bad" } else { "" }}>
                                {format!("{} rejected", format_count(sum.rejected))}
                            </span>
                            <span class="muted">
                                {format!("{}, {} bytes{}", format_name(sum.format), format_count(sum.bytes as usize), notes)}
                            </span>
                        </li>
                    }
                })
                .collect_view()
        })
    };

    let rejected = move || {
        state.session.with(|s| {
            s.files
                .iter()
                .flat_map(|f| f.rejected.iter())
                .take(REJECTED_SHOWN)
                .map(|r| view! { <li data-testid="rejected-item">{r.to_string()}</li> })
                .collect_view()
        })
    };
    let rejected_count = move || state.session.with(|s| s.rejected_count());

    let type_counts = move || {
        state.session.with(|s| {
            s.failure_type_counts()
                .into_iter()
                .map(|(t, n)| {
                    let name = t.map_or("no type", |t| t.as_str());
                    view! {
                        <li class="chip" data-testid="type-count" data-type=t.map_or("none", |t| t.as_str())>
                            <span>{name}</span>
                            <b>{format_count(n)}</b>
                        </li>
                    }
                })
                .collect_view()
        })
    };

    view! {
        <section class="card" aria-labelledby="load-title">
            <h2 id="load-title">"1. Load trajectories"</h2>
            <div
                class="drop-zone"
                class:dragging=move || dragging.get()
                data-testid="drop-zone"
                on:dragover=move |ev: DragEvent| {
                    ev.prevent_default();
                    dragging.set(true);
                }
                on:dragleave=move |_| dragging.set(false)
                on:drop=on_drop
            >
                <p>"Drop " <code>".json"</code> " or " <code>".jsonl"</code> " files here, or"</p>
                <div class="buttons">
                    <label class="button primary file-button">
                        "Choose files…"
                        <input
                            type="file"
                            multiple
                            accept=".json,.jsonl,application/json"
                            data-testid="file-input"
                            class="visually-hidden"
                            on:change=on_pick
                        />
                    </label>
                    <button data-testid="load-example" on:click=move |_| state.load_example()>
                        "Try the example"
                    </button>
                    <button
                        data-testid="clear-session"
                        disabled=move || {
                            state.run.with(|r| r.phase == super::state::Phase::Running)
                                || state.session.with(|s| s.files.is_empty())
                        }
                        on:click=move |_| state.clear()
                    >
                        "Clear"
                    </button>
                </div>
                {move || {
                    state
                        .loading
                        .get()
                        .map(|l| {
                            view! {
                                <p class="loading" role="status">
                                    {format!(
                                        "Reading {}: {} of {} bytes",
                                        l.file,
                                        format_count(l.read as usize),
                                        format_count(l.size as usize),
                                    )}
                                </p>
                            }
                        })
                }}
                {move || state.load_error.get().map(|e| view! { <p class="error">{e}</p> })}
            </div>
            <Show when=move || state.session.with(|s| !s.files.is_empty())>
                <ul class="files">{files}</ul>
                <p class="summary">
                    {move || {
                        state
                            .session
                            .with(|s| {
                                format!(
                                    "{} trajectories in {} file{}; by rule-based failure type:",
                                    format_count(s.len()),
                                    s.files.len(),
                                    if s.files.len() == 1 { "" } else { "s" },
                                )
                            })
                    }}
                </p>
                <ul class="chips">{type_counts}</ul>
                <Show when=move || { rejected_count() > 0 }>
                    <details class="rejected" open>
                        <summary>
                            {move || format!("{} rejected records", format_count(rejected_count()))}
                        </summary>
                        <button
                            class="small"
                            data-testid="copy-rejected"
                            on:click=move |_| spawn_local(state.copy_rejected())
                        >
                            "Copy"
                        </button>
                        <ul class="rejected-list">{rejected}</ul>
                        <Show when=move || { rejected_count() > REJECTED_SHOWN }>
                            <p class="muted">
                                {move || {
                                    format!(
                                        "…and {} more (Copy gets them all).",
                                        format_count(rejected_count() - REJECTED_SHOWN),
                                    )
                                }}
                            </p>
                        </Show>
                    </details>
                </Show>
            </Show>
        </section>
    }
}
