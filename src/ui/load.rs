//! Section 1: loading trajectory files.

use super::browser;
use super::charts::{apply, is_applied, Choice};
use super::drop::DropZone;
use super::state::AppState;
use crate::import::SourceFormat;
use crate::progress::{format_count, plural};
use crate::reader::{FileSummary, InputFormat};
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
        InputFormat::Binary => "not text",
    }
}

/// How a file was read: its source format (detected or chosen), its layout and size.
fn read_as(sum: &FileSummary) -> String {
    if sum.format == InputFormat::Binary {
        return format!("not text, {} bytes", format_count(sum.bytes as usize));
    }
    format!(
        "{} ({}), {}, {} bytes",
        sum.source_format.label(),
        if sum.source_format_forced {
            "chosen"
        } else {
            "detected"
        },
        format_name(sum.format),
        format_count(sum.bytes as usize)
    )
}

#[component]
pub fn LoadSection() -> impl IntoView {
    let state = expect_context::<AppState>();
    // The format files are read in: "auto" (detect each file's) or a format id.
    let format = RwSignal::new("auto".to_owned());
    let chosen = move || SourceFormat::parse(&format.get_untracked());
    let on_drop = Callback::new(move |files: Vec<web_sys::File>| {
        spawn_local(state.load_files(files, chosen()));
    });
    let on_pick = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let files = browser::files_of(input.files());
        // The same file may be picked again later.
        input.set_value("");
        spawn_local(state.load_files(files, chosen()));
    };
    let format_options = std::iter::once(("auto", "Detect each file's format"))
        .chain(SourceFormat::ALL.iter().map(|f| (f.id(), f.label())))
        .map(|(id, label)| view! { <option value=id>{label}</option> })
        .collect_view();

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
                    let successes = (sum.successes > 0).then(|| {
                        view! {
                            <span data-testid="file-successes">
                                {format!("{} kept apart", plural(sum.successes, "success", "successes"))}
                            </span>
                        }
                    });
                    view! {
                        <li class="file-row" data-testid="file-row">
                            <span class="file-name">{sum.file.clone()}</span>
                            <span>{plural(sum.records, "trajectory", "trajectories")}</span>
                            {successes}
                            <span class={if sum.rejected > 0 { "bad" } else { "" }}>
                                {format!("{} rejected", format_count(sum.rejected))}
                            </span>
                            <span class="muted" data-testid="file-format">
                                {format!("{}{}", read_as(sum), notes)}
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
                    let choice = Choice::failures_of(t);
                    view! {
                        <li>
                            <button
                                class="chip"
                                data-testid="type-count"
                                data-type=t.map_or("none", |t| t.as_str())
                                title=format!("Show the {name} failures in the results")
                                aria-pressed=move || is_applied(state, choice).to_string()
                                on:click=move |_| apply(state, choice)
                            >
                                <span>{name}</span>
                                <b>{format_count(n)}</b>
                            </button>
                        </li>
                    }
                })
                .collect_view()
        })
    };

    view! {
        <section class="card step-section" id="step-data" aria-labelledby="load-title">
            <h2 id="load-title">"Data"</h2>
            <DropZone class="drop-zone" testid="drop-zone" on_files=on_drop>
                <p>
                    "Drop " <code>".json"</code> ", " <code>".jsonl"</code> " or " <code>".txt"</code>
                    " files here (AgentHER, OpenAI messages, tau-bench, ShareGPT, ReAct logs, ToolBench or ATIF), or"
                </p>
                <div class="buttons">
                    <label class="button primary file-button">
                        "Choose files…"
                        <input
                            type="file"
                            multiple
                            accept=".json,.jsonl,.txt,.log,application/json,text/plain"
                            data-testid="file-input"
                            class="visually-hidden"
                            on:change=on_pick
                        />
                    </label>
                    <label class="read-as">
                        "Read as "
                        <select
                            data-testid="read-as"
                            prop:value=move || format.get()
                            on:change=move |ev| format.set(event_target_value(&ev))
                        >
                            {format_options}
                        </select>
                    </label>
                    <button data-testid="load-example" on:click=move |_| state.load_example()>
                        "Try the example"
                    </button>
                    <button
                        data-testid="clear-session"
                        disabled=move || {
                            state.running.run.with(|r| r.phase == super::state::Phase::Running)
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
                                <p class="loading" role="status" data-testid="loading">
                                    {format!(
                                        "Reading {}: {} of {} bytes, {} so far",
                                        l.file,
                                        format_count(l.read as usize),
                                        format_count(l.size as usize),
                                        plural(l.found, "trajectory", "trajectories"),
                                    )}
                                </p>
                            }
                        })
                }}
                {move || state.load_error.get().map(|e| view! { <p class="error">{e}</p> })}
            </DropZone>
            <Show when=move || state.session.with(|s| !s.files.is_empty())>
                <ul class="files">{files}</ul>
                <p class="summary">
                    {move || {
                        state
                            .session
                            .with(|s| {
                                let successes = match s.success_count() {
                                    0 => String::new(),
                                    n => format!(" ({} kept apart)", plural(n, "success", "successes")),
                                };
                                format!(
                                    "{}{} in {}; failures by rule-based type:",
                                    plural(s.len(), "trajectory", "trajectories"),
                                    successes,
                                    plural(s.files.len(), "file", "files"),
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
                        <ul class="rejected-list" tabindex="0" aria-label="Rejected records">{rejected}</ul>
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
