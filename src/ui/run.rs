//! Section 4: the estimate, the run and its progress.

use super::bound::BoundInput;
use super::running::{Phase, RunState};
use super::state::AppState;
use crate::estimate::{format_error, format_money, relative_error, Estimate, StageFigures};
use crate::llm::pool::connection_note;
use crate::llm::CallKind;
use crate::progress::{format_count, format_duration};
use leptos::prelude::*;

fn count(v: f64) -> String {
    format_count(v.max(0.0).round() as usize)
}

/// The head of a table of calls and tokens per stage.
fn figures_head() -> impl IntoView {
    view! {
        <thead>
            <tr>
                <th scope="col">"Stage"</th>
                <th scope="col">"Calls"</th>
                <th scope="col">"Prompt tokens"</th>
                <th scope="col">"Completion tokens"</th>
            </tr>
        </thead>
    }
}

/// The estimate, stage by stage.
fn estimate_table(e: &Estimate) -> impl IntoView {
    let rows = CallKind::ALL
        .iter()
        .map(|k| {
            let s = e.stage(*k);
            view! {
                <tr data-stage=k.as_str()>
                    <td>{k.as_str()}</td>
                    <td data-testid="estimate-calls">{count(s.calls)}</td>
                    <td>{count(s.prompt_tokens)}</td>
                    <td>{count(s.completion_tokens)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="stages" data-testid="estimate-table">
            <caption class="muted">"Expected calls and tokens per stage"</caption>
            {figures_head()}
            <tbody>{rows}</tbody>
        </table>
    }
}

/// One stage's "estimated → actual (off by)" cell.
fn versus(estimated: f64, actual: f64) -> String {
    format!(
        "{} → {} ({})",
        count(estimated),
        count(actual),
        format_error(relative_error(estimated, actual))
    )
}

#[component]
pub fn RunSection() -> impl IntoView {
    let state = expect_context::<AppState>();
    let run = expect_context::<RunState>();
    let progress = Memo::new(move |_| run.run.with(|r| r.progress()));
    let phase = move || run.run.with(|r| r.phase);
    let running = move || phase() == Phase::Running;
    let paused = move || phase() == Phase::Paused;
    let retry_failed = move || run.retry_failed_count(state);
    let blocker = move || run.run_blocker(state);
    let all_items = Memo::new(move |_| run.all_items(state));
    let first_items = Memo::new(move |_| run.first_items(state));
    let filtered_items = Memo::new(move |_| run.filtered_items(state));
    // The estimate for "Run", while no run goes on.
    let estimate = Memo::new(move |_| {
        if running() {
            return None;
        }
        all_items.with(|items| (!items.is_empty()).then(|| run.estimate_shown(state, items)))?
    });
    let cost_shown = move || state.prefs().is_ok_and(|p| !p.prices().is_free());
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
    let busy_or_blocked = move || running() || blocker().is_some();

    view! {
        <section
            class="card step-section"
            id="step-run"
            aria-labelledby="run-title"
            data-testid="run-panel"
            data-state=move || phase().as_str()
        >
            <h2 id="run-title">"Run"</h2>
            <div class="estimate" data-testid="estimate" aria-live="polite">
                {move || {
                    estimate
                        .get()
                        .map(|e| {
                            let note = if e.calibrated {
                                "Refined by the results so far (calls per trajectory, tokens the endpoint reported, time per call)."
                            } else {
                                "From the rendered prompts and the paper's acceptance rates; a pilot run refines it."
                            };
                            let range = e
                                .time_uncertain()
                                .then_some(
                                    " The time is a range: how many requests the server answers at once is not known yet; a run at this concurrency measures it.",
                                );
                            let skipped = (e.skipped_by_rules > 0)
                                .then(|| {
                                    format!(
                                        " {} of them the rule-based gates skip without a call.",
                                        format_count(e.skipped_by_rules),
                                    )
                                });
                            view! {
                                <h3>"Estimate for Run"</h3>
                                <p
                                    data-testid="estimate-summary"
                                    data-calls=e.calls().to_string()
                                    data-tokens=(e.prompt_tokens() + e.completion_tokens()).to_string()
                                    data-cost=e.cost().to_string()
                                    data-ms=e.ms.to_string()
                                    data-ms-max=e.ms_max.to_string()
                                >
                                    {e.summary()}
                                    "."
                                    {skipped}
                                    {range}
                                </p>
                                {estimate_table(&e)}
                                <p class="muted">{note}</p>
                            }
                        })
                }}
            </div>
            <div class="buttons">
                <button
                    class="primary"
                    data-testid="run"
                    disabled=busy_or_blocked
                    on:click=move |_| run.request(state, all_items.get_untracked(), "Run".into())
                >
                    "Run"
                </button>
                <label class="inline">
                    <span>"Pilot: the first"</span>
                    <BoundInput
                        value=run.pilot_size
                        testid="pilot-size"
                        kind="number"
                        min="1"
                        narrow=true
                        label="How many trajectories the pilot runs"
                    />
                </label>
                <button
                    data-testid="run-first"
                    disabled=move || busy_or_blocked() || first_items.with(Vec::is_empty)
                    on:click=move |_| {
                        let items = first_items.get_untracked();
                        let label = format!("Pilot: the first {}", format_count(items.len()));
                        run.request(state, items, label)
                    }
                >
                    {move || format!("Run the first {}", format_count(first_items.with(Vec::len)))}
                </button>
                <button
                    data-testid="run-filtered"
                    title="Run the rows the results filter below shows that have no result yet"
                    disabled=move || busy_or_blocked() || filtered_items.with(Vec::is_empty)
                    on:click=move |_| {
                        let items = filtered_items.get_untracked();
                        let label = format!("The filtered rows ({})", format_count(items.len()));
                        run.request(state, items, label)
                    }
                >
                    {move || {
                        format!("Run the filtered rows ({})", format_count(filtered_items.with(Vec::len)))
                    }}
                </button>
                {move || {
                    paused()
                        .then(|| {
                            view! {
                                <button
                                    class="primary"
                                    data-testid="resume"
                                    on:click=move |_| run.resume(state)
                                >
                                    "Resume"
                                </button>
                            }
                        })
                }}
                <button data-testid="stop" disabled=move || !running() on:click=move |_| run.stop()>
                    "Stop"
                </button>
                <button
                    data-testid="retry-failed"
                    title="Run again only the trajectories that ended in an error of the endpoint \
                           or of the network"
                    disabled=move || running() || retry_failed() == 0
                    on:click=move |_| run.retry_failed(state)
                >
                    {move || match retry_failed() {
                        0 => "Retry failed".to_string(),
                        n => format!("Retry failed ({})", format_count(n)),
                    }}
                </button>
                <button
                    data-testid="reset-results"
                    disabled=move || {
                        running()
                            || state.session.with(|s| s.entries.iter().all(|e| e.result.is_none()))
                    }
                    on:click=move |_| run.confirm_reset.set(true)
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
                    .and_then(|p| connection_note(p.concurrency, &p.endpoints(), p.judge_replica().as_ref()))
                    .map(|m| view! { <p class="muted" data-testid="connection-note">{m}</p> })
            }}
            {move || {
                run.pending
                    .get()
                    .map(|p| {
                        view! {
                            <div class="confirm" role="alertdialog" aria-labelledby="confirm-run-text" data-testid="confirm-run">
                                <p id="confirm-run-text">
                                    {format!(
                                        "{}: this run costs money. {}. Start it?",
                                        p.label,
                                        p.estimate.summary(),
                                    )}
                                </p>
                                {estimate_table(&p.estimate)}
                                <div class="buttons">
                                    <button class="primary" data-testid="confirm-run-start" on:click=move |_| run.confirm(state)>
                                        "Start the run"
                                    </button>
                                    <button data-testid="confirm-run-cancel" on:click=move |_| run.pending.set(None)>
                                        "Cancel"
                                    </button>
                                </div>
                            </div>
                        }
                    })
            }}
            <Show when=move || run.confirm_reset.get()>
                <div class="confirm" role="alertdialog" aria-labelledby="confirm-reset-text" data-testid="confirm-reset">
                    <p id="confirm-reset-text">{move || run.reset_summary(state)}</p>
                    <div class="buttons">
                        <button class="danger" data-testid="confirm-reset-delete" on:click=move |_| run.reset_results(state)>
                            "Delete the results and the log"
                        </button>
                        <button data-testid="confirm-reset-keep" on:click=move |_| run.confirm_reset.set(false)>
                            "Keep them"
                        </button>
                    </div>
                </div>
            </Show>
            {move || {
                run.run
                    .with(|r| r.pause.as_ref().map(|p| p.message()))
                    .map(|m| {
                        view! {
                            <p class="run-message paused" data-testid="run-message" role="status">
                                {m}
                            </p>
                        }
                    })
            }}
            {move || {
                paused()
                    .then(|| {
                        let line = run
                            .recheck
                            .get()
                            .map_or_else(
                                || "The page asks the endpoint every 5 seconds whether it answers again.".to_string(),
                                |c| {
                                    format!(
                                        "{} ({}, checked at {}).",
                                        if c.answering {
                                            "The endpoint answers again: Resume"
                                        } else {
                                            "The endpoint does not answer yet"
                                        },
                                        c.detail,
                                        super::browser::local_time(c.at_ms),
                                    )
                                },
                            );
                        let answering = run.recheck.with(|c| c.as_ref().is_some_and(|c| c.answering));
                        view! {
                            <p class="muted" data-testid="recheck" data-answering=answering.to_string() role="status">
                                {line}
                            </p>
                        }
                    })
            }}
            <p class="visually-hidden" role="status" data-testid="progress-announce">
                {move || {
                    let tenths = progress.with(|p| (p.fraction() * 10.0).floor() as u32);
                    match phase() {
                        Phase::Idle => String::new(),
                        Phase::Running => format!("Run: {}% done", tenths * 10),
                        other => format!("Run {}: {}", other.as_str(), progress.with(|p| p.done_text())),
                    }
                }}
            </p>
            <progress
                max="1"
                aria-label="Run progress"
                prop:value=move || progress.with(|p| p.fraction())
                class:hidden=move || phase() == Phase::Idle
            ></progress>
            <div class="stats">
                {stat("Done", "progress-done", text(|p| p.done_text()))}
                {stat("Accepted", "progress-accepted", text(|p| format_count(p.accepted)))}
                {stat("Rejected", "progress-rejected", text(|p| format_count(p.rejected)))}
                {stat("Skipped", "progress-skipped", text(|p| format_count(p.skipped)))}
                {stat("Failed", "progress-failed", text(|p| format_count(p.failed)))}
                {stat("Cancelled", "progress-cancelled", text(|p| format_count(p.cancelled)))}
                {stat(
                    "Never started",
                    "progress-not-started",
                    Signal::derive(move || run.run.with(|r| format_count(r.not_started))),
                )}
                {stat("Calls", "progress-calls", text(|p| format_count(p.calls as usize)))}
                {stat(
                    "Requests sent",
                    "progress-sent",
                    Signal::derive(move || run.run.with(|r| format_count(r.sent.sent as usize))),
                )}
                {stat("Retries", "progress-retries", text(|p| format_count(p.retries as usize)))}
                {stat("Tokens", "progress-tokens", text(|p| p.tokens_text()))}
                {move || {
                    cost_shown()
                        .then(|| {
                            let cost = Signal::derive(move || {
                                let prices = state.prefs().map(|p| p.prices()).unwrap_or_default();
                                progress
                                    .with(|p| {
                                        format_money(prices.cost(p.prompt_tokens as f64, p.completion_tokens as f64))
                                    })
                            });
                            stat("Cost", "progress-cost", cost)
                        })
                }}
                {stat("Elapsed", "progress-elapsed", text(|p| format_duration(p.elapsed_ms)))}
                {stat("ETA", "progress-eta", text(|p| p.eta_ms.map_or("–".into(), format_duration)))}
            </div>
            {move || {
                (phase() == Phase::Stopped)
                    .then(|| {
                        let line = run
                            .run
                            .with(|r| {
                                format!(
                                    "Stopped: {} finished, {} cancelled in flight, {} never started. Run takes up what is left.",
                                    format_count(r.done.saturating_sub(r.this_run.cancelled)),
                                    format_count(r.this_run.cancelled),
                                    format_count(r.not_started),
                                )
                            });
                        view! { <p class="run-message" data-testid="stop-summary" role="status">{line}</p> }
                    })
            }}
            <div class="table-scroll" tabindex="0" role="region" aria-label="Calls per stage">
            <table class="stages">
                <caption class="muted">"Calls per stage (requests sent; answers replayed from the log included)"</caption>
                <thead>
                    <tr>
                        <th scope="col">"Stage"</th>
                        <th scope="col">"Calls"</th>
                        <th scope="col">"Failed"</th>
                        <th scope="col">"Unreadable"</th>
                        <th scope="col">"Retries"</th>
                        <th scope="col">"Not sent"</th>
                        <th scope="col">"Prompt tokens"</th>
                        <th scope="col">"Completion tokens"</th>
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
                                                <td data-testid="stage-calls">{format_count(u.calls as usize)}</td>
                                                <td>{format_count(u.failed_calls as usize)}</td>
                                                <td data-testid="stage-unreadable">{format_count(u.unparseable_replies as usize)}</td>
                                                <td>{format_count(u.retries as usize)}</td>
                                                <td>{format_count(u.not_sent as usize)}</td>
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
            </div>
            {move || {
                run.run
                    .with(|r| r.deviation().map(|d| (d, r.label.clone(), r.phase)))
                    .map(|(d, label, phase)| {
                        let rows = CallKind::ALL
                            .iter()
                            .map(|k| {
                                let (e, a): (&StageFigures, &StageFigures) = d.stage(*k);
                                view! {
                                    <tr data-stage=k.as_str() data-testid="deviation-stage">
                                        <td>{k.as_str()}</td>
                                        <td data-testid="deviation-stage-calls">{versus(e.calls, a.calls)}</td>
                                        <td data-testid="deviation-stage-prompt">{versus(e.prompt_tokens, a.prompt_tokens)}</td>
                                        <td>{versus(e.completion_tokens, a.completion_tokens)}</td>
                                    </tr>
                                }
                            })
                            .collect_view();
                        let so_far = if phase == Phase::Done { "" } else { " (so far: the run is not over)" };
                        let cost = (!d.prices.is_free())
                            .then(|| {
                                format!(
                                    " Cost: estimated {}, actual {}.",
                                    format_money(d.estimated_cost()),
                                    format_money(d.actual_cost()),
                                )
                            });
                        view! {
                            <div class="deviation" data-testid="deviation">
                                <h3>{format!("{label}: estimate → actual{so_far}")}</h3>
                                <p>
                                    "Calls off by "
                                    <b data-testid="deviation-calls">{format_error(d.calls_error())}</b>
                                    ", tokens off by "
                                    <b data-testid="deviation-tokens">{format_error(d.tokens_error())}</b>
                                    "."
                                    {cost}
                                </p>
                                <table class="stages">
                                    {figures_head()}
                                    <tbody>{rows}</tbody>
                                </table>
                            </div>
                        }
                    })
            }}
        </section>
    }
}
