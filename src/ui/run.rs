//! Section 4: run and progress.

use super::state::{AppState, Phase};
use crate::llm::pool::connection_note;
use crate::progress::{format_count, format_duration};
use leptos::prelude::*;

#[component]
pub fn RunSection() -> impl IntoView {
    let state = expect_context::<AppState>();
    let progress = Memo::new(move |_| state.run.with(|r| r.progress()));
    let phase = move || state.run.with(|r| r.phase);
    let running = move || phase() == Phase::Running;
    let paused = move || phase() == Phase::Paused;
    let retry_failed = move || state.retry_failed_count();
    let blocker = move || state.run_blocker();
    let stat = move |label: &'static str, testid: &'static str, value: Signal<String>| {
        view! {
            <div class="stat">
                <span class="label">{label}</span>
                <b data-testid=testid>{value}</b>
            </div>
        }
    };
    let text =
        |f: fn(&crate::progress::Progress) -> String| Signal::derive(move || progress.with(f));

    view! {
        <section
            class="card"
            aria-labelledby="run-title"
            data-testid="run-panel"
            data-state=move || phase().as_str()
        >
            <h2 id="run-title">"4. Run"</h2>
            <div class="buttons">
                <button
                    class="primary"
                    data-testid="run"
                    disabled=move || running() || blocker().is_some()
                    on:click=move |_| state.start_run()
                >
                    "Run"
                </button>
                {move || {
                    paused()
                        .then(|| {
                            view! {
                                <button
                                    class="primary"
                                    data-testid="resume"
                                    on:click=move |_| state.resume()
                                >
                                    "Resume"
                                </button>
                            }
                        })
                }}
                <button
                    data-testid="stop"
                    disabled=move || !running()
                    on:click=move |_| state.stop()
                >
                    "Stop"
                </button>
                <button
                    data-testid="retry-failed"
                    title="Run again only the trajectories that ended in an error of the endpoint \
                           or of the network"
                    disabled=move || running() || retry_failed() == 0
                    on:click=move |_| state.retry_failed()
                >
                    {move || match retry_failed() {
                        0 => "Retry failed".to_string(),
                        n => format!("Retry failed ({})", format_count(n)),
                    }}
                </button>
                <button
                    data-testid="reset-results"
                    disabled=move || {
                        running() || state.session.with(|s| s.entries.iter().all(|e| e.result.is_none()))
                    }
                    on:click=move |_| state.reset_results()
                >
                    "Reset results"
                </button>
                {move || {
                    (!running())
                        .then(blocker)
                        .flatten()
                        .map(|b| view! { <span class="muted reason">{b}</span> })
                }}
            </div>
            {move || {
                state
                    .prefs()
                    .ok()
                    .and_then(|p| connection_note(p.concurrency, &p.endpoints()))
                    .map(|m| view! { <p class="muted" data-testid="connection-note">{m}</p> })
            }}
            {move || {
                state
                    .run
                    .with(|r| r.pause.as_ref().map(|p| p.message()))
                    .map(|m| {
                        view! {
                            <p class="run-message paused" data-testid="run-message" role="status">
                                {m}
                            </p>
                        }
                    })
            }}
            <progress
                max="1"
                prop:value=move || progress.with(|p| p.fraction())
                class:hidden=move || phase() == Phase::Idle
            ></progress>
            <div class="stats">
                {stat("Done", "progress-done", text(|p| p.done_text()))}
                {stat("Accepted", "progress-accepted", text(|p| format_count(p.accepted)))}
                {stat("Rejected", "progress-rejected", text(|p| format_count(p.rejected)))}
                {stat("Skipped", "progress-skipped", text(|p| format_count(p.skipped)))}
                {stat("Failed", "progress-failed", text(|p| format_count(p.failed)))}
                {stat("Calls", "progress-calls", text(|p| format_count(p.calls as usize)))}
                {stat("Retries", "progress-retries", text(|p| format_count(p.retries as usize)))}
                {stat("Tokens", "progress-tokens", text(|p| p.tokens_text()))}
                {stat("Elapsed", "progress-elapsed", text(|p| format_duration(p.elapsed_ms)))}
                {stat("ETA", "progress-eta", text(|p| p.eta_ms.map_or("–".into(), format_duration)))}
            </div>
            <table class="stages">
                <thead>
                    <tr>
                        <th>"Stage"</th>
                        <th>"Calls"</th>
                        <th>"Failed"</th>
                        <th>"Retries"</th>
                        <th>"Prompt tokens"</th>
                        <th>"Completion tokens"</th>
                    </tr>
                </thead>
                <tbody>
                    {move || {
                        progress
                            .with(|p| {
                                p.stages
                                    .iter()
                                    .map(|(k, u)| {
                                        view! {
                                            <tr data-stage=k.as_str()>
                                                <td>{k.as_str()}</td>
                                                <td>{format_count(u.calls as usize)}</td>
                                                <td>{format_count(u.failed_calls as usize)}</td>
                                                <td>{format_count(u.retries as usize)}</td>
                                                <td>{format_count(u.prompt_tokens as usize)}</td>
                                                <td>{format_count(u.completion_tokens as usize)}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()
                            })
                    }}
                </tbody>
            </table>
        </section>
    }
}
