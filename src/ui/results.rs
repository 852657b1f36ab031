//! Section 5: the results table, its filters and paging, and the trajectory detail panel.

use super::state::{status_slug, AppState, PAGE_SIZE};
use crate::llm::CallRecord;
use crate::model::{ExtractedOutcome, FailureAnalysis, FailureType};
use crate::progress::{format_count, format_unit};
use crate::session::{Entry, Row, Status};
use crate::stages::relabel::{JudgeVerdict, RelabelAttempt};
use leptos::prelude::*;

/// What the "verdict unknown" badge means.
const VERDICT_UNKNOWN: &str =
    "Verdict unknown: the source does not say whether this run succeeded; it is treated as a failure.";

fn row_view(state: AppState, row: Row) -> impl IntoView {
    let index = row.index;
    let status = status_slug(row.status);
    let outcome = if row.reason.is_empty() {
        row.status.as_str().to_string()
    } else {
        format!("{}: {}", row.status.as_str(), row.reason)
    };
    let confidence = match (row.relabel_confidence, row.judge_confidence) {
        (Some(c), Some(c2)) => format!("c {} · c2 {}", format_unit(c), format_unit(c2)),
        (Some(c), None) => format!("c {}", format_unit(c)),
        _ => row.confidence.map(format_unit).unwrap_or_default(),
    };
    let open = move || state.selected.set(Some(index));
    let id = row.trajectory_id.clone();
    view! {
        <tr
            data-testid="result-row"
            data-id=id
            data-status=status.clone()
            tabindex="0"
            class:selected=move || state.selected.get() == Some(index)
            on:click=move |_| open()
            on:keydown=move |ev| {
                if ev.key() == "Enter" || ev.key() == " " {
                    ev.prevent_default();
                    open();
                }
            }
        >
            <td data-testid="cell-id" class="mono">{row.trajectory_id}</td>
            <td data-testid="cell-type">{row.failure_type.map_or("—", |t| t.as_str())}</td>
            <td data-testid="cell-severity" class="num">
                {if row.severity == row.weight {
                    format_unit(row.severity)
                } else {
                    format!("{} / {}", format_unit(row.severity), format_unit(row.weight))
                }}
            </td>
            <td data-testid="cell-recoverable">{if row.recoverable { "yes" } else { "no" }}</td>
            <td data-testid="cell-outcome">
                <span class=format!("badge status-{status}")>{row.status.as_str()}</span>
                {row
                    .verdict_unknown
                    .then(|| {
                        view! {
                            <span
                                class="badge verdict-unknown"
                                data-testid="verdict-unknown"
                                title=VERDICT_UNKNOWN
                            >
                                "verdict unknown"
                            </span>
                        }
                    })}
                <span class="reason" title=outcome.clone()>
                    {row.reason}
                </span>
            </td>
            <td data-testid="cell-hindsight">{row.hindsight_prompt.unwrap_or_default()}</td>
            <td data-testid="cell-confidence" class="num">{confidence}</td>
            <td data-testid="cell-judges">{row.judges.unwrap_or("")}</td>
        </tr>
    }
}

#[component]
pub fn ResultsSection() -> impl IntoView {
    let state = expect_context::<AppState>();
    // The indexes that match the filters; rows are built only for the page shown.
    let rows = Memo::new(move |_| state.matching());
    let pages = move || rows.with(|r| r.len().div_ceil(PAGE_SIZE)).max(1);
    // A filter change goes back to the first page.
    Effect::new(move |_| {
        state.filter_status.track();
        state.filter_type.track();
        state.filter_text.track();
        state.page.set(0);
    });
    let page = move || state.page.get().min(pages() - 1);
    let page_rows = move || {
        let start = page() * PAGE_SIZE;
        let shown: Vec<Row> = rows.with(|r| {
            state.session.with(|s| {
                r.iter()
                    .skip(start)
                    .take(PAGE_SIZE)
                    .filter_map(|&i| s.row(i))
                    .collect()
            })
        });
        shown
            .into_iter()
            .map(|row| row_view(state, row))
            .collect_view()
    };
    let status_options = std::iter::once(("all".to_string(), "all statuses".to_string()))
        .chain(
            Status::ALL
                .into_iter()
                .map(|s| (status_slug(s), s.as_str().to_string())),
        )
        .map(|(v, l)| view! { <option value=v>{l}</option> })
        .collect_view();
    let type_options = [("all", "all types"), ("none", "no type")]
        .into_iter()
        .chain(
            FailureType::ALL
                .into_iter()
                .map(|t| (t.as_str(), t.as_str())),
        )
        .map(|(v, l)| view! { <option value=v>{l}</option> })
        .collect_view();

    view! {
        <section class="card" aria-labelledby="results-title">
            <h2 id="results-title">"5. Results"</h2>
            <div class="filters">
                <select
                    data-testid="filter-status"
                    aria-label="Status"
                    prop:value=move || state.filter_status.get()
                    on:change=move |ev| state.filter_status.set(event_target_value(&ev))
                >
                    {status_options}
                </select>
                <select
                    data-testid="filter-type"
                    aria-label="Failure type"
                    prop:value=move || state.filter_type.get()
                    on:change=move |ev| state.filter_type.set(event_target_value(&ev))
                >
                    {type_options}
                </select>
                <input
                    type="search"
                    data-testid="filter-text"
                    placeholder="Search id or prompt"
                    aria-label="Search"
                    prop:value=move || state.filter_text.get()
                    on:input=move |ev| state.filter_text.set(event_target_value(&ev))
                />
            </div>
            <div class="table-wrap">
                <table class="results" data-testid="results-table">
                    <thead>
                        <tr>
                            <th>"Id"</th>
                            <th>"Failure type"</th>
                            <th>"Severity / weight"</th>
                            <th>"Recoverable"</th>
                            <th>"Outcome"</th>
                            <th>"Hindsight prompt"</th>
                            <th>"Confidence"</th>
                            <th>"Judges"</th>
                        </tr>
                    </thead>
                    <tbody>{page_rows}</tbody>
                </table>
            </div>
            <div class="pager">
                <button
                    data-testid="page-prev"
                    disabled=move || page() == 0
                    on:click=move |_| state.page.set(page().saturating_sub(1))
                >
                    "‹ Previous"
                </button>
                <span data-testid="page-info">
                    {move || {
                        let n = rows.with(Vec::len);
                        if n == 0 {
                            "No rows".to_string()
                        } else {
                            let start = page() * PAGE_SIZE;
                            format!(
                                "Rows {}–{} of {} · page {} of {}",
                                format_count(start + 1),
                                format_count((start + PAGE_SIZE).min(n)),
                                format_count(n),
                                page() + 1,
                                pages(),
                            )
                        }
                    }}
                </span>
                <button
                    data-testid="page-next"
                    disabled=move || { page() + 1 >= pages() }
                    on:click=move |_| state.page.set(page() + 1)
                >
                    "Next ›"
                </button>
            </div>
            {move || {
                state
                    .selected
                    .get()
                    .and_then(|i| state.session.with(|s| s.entries.get(i).cloned()))
                    .map(|e| detail(state, e))
            }}
        </section>
    }
}

fn analysis_view(a: &FailureAnalysis) -> impl IntoView {
    view! {
        <dl class="kv">
            <dt>"Failure type"</dt>
            <dd>{a.failure_type.map_or("none", |t| t.as_str())}</dd>
            <dt>"Severity / weight"</dt>
            <dd>{format!("{} / {}", format_unit(a.severity), format_unit(a.weight))}</dd>
            <dt>"Recoverable"</dt>
            <dd>{if a.recoverable { "yes" } else { "no" }}</dd>
            <dt>"Explanation"</dt>
            <dd>{a.explanation.clone()}</dd>
        </dl>
    }
}

fn outcome_view(o: &ExtractedOutcome) -> impl IntoView {
    let list = |items: &[String]| {
        items
            .iter()
            .map(|s| view! { <li>{s.clone()}</li> })
            .collect_view()
    };
    view! {
        <div class="kv-block">
            <p class="label">"Achievements"</p>
            <ul>{list(&o.actual_achievements)}</ul>
            <p class="label">"Key observations"</p>
            <ul>{list(&o.key_observations)}</ul>
            <p class="label">"Limitations"</p>
            <p>{o.limitations.clone()}</p>
        </div>
    }
}

/// One LLM call: settings, raw reply, what went wrong, usage.
fn call_view(title: String, call: &CallRecord, parsed: Option<String>) -> impl IntoView {
    let usage = format!(
        "{} prompt + {} completion tokens{}{}{}",
        call.usage.prompt_tokens,
        call.usage.completion_tokens,
        call.finish_reason
            .as_deref()
            .map(|f| format!(", finish: {f}"))
            .unwrap_or_default(),
        match call.retries {
            0 => String::new(),
            1 => " · retried once".to_string(),
            n => format!(" · retried {n} times"),
        },
        if call.from_log {
            " · answered from the exchange log"
        } else {
            ""
        },
    );
    let flags = call
        .flags
        .iter()
        .map(|f| view! { <p class="flag" data-flag=f.kind()>{f.advice()}</p> })
        .collect_view();
    let format = call
        .request
        .response_format
        .as_ref()
        .and_then(|f| serde_json::to_value(f).ok())
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "prompt only".into());
    view! {
        <div class="call">
            <p class="call-title">
                <b>{title}</b>
                {format!(
                    " · model {} · temperature {} · {}",
                    call.request.model,
                    call.request.temperature,
                    format,
                )}
            </p>
            {call.error.as_ref().map(|e| view! { <p class="error">{format!("Call failed: {e}")}</p> })}
            {call
                .parse_error
                .as_ref()
                .map(|e| view! { <p class="error">{format!("Unreadable reply: {e}")}</p> })}
            {call
                .reply
                .as_ref()
                .map(|r| view! { <pre class="raw" data-testid="raw-reply">{r.clone()}</pre> })}
            {parsed.map(|p| view! { <p class="parsed">{p}</p> })}
            {flags}
            <p class="muted">{usage}</p>
        </div>
    }
}

fn attempt_view(a: &RelabelAttempt) -> impl IntoView {
    let outcome = serde_json::to_value(a.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
        .replace('_', " ");
    let parsed = a.reply.as_ref().map(|r| {
        format!(
            "Hindsight prompt: {} · valid replay: {} · confidence {} · rationale: {}",
            r.hindsight_prompt,
            if r.is_valid_replay { "yes" } else { "no" },
            format_unit(r.confidence),
            r.rationale
        )
    });
    let relabel = call_view(
        format!(
            "Relabel attempt {} (temperature {}): {outcome}",
            a.k, a.temperature
        ),
        &a.call,
        parsed,
    );
    let judge = a.judge.as_ref().map(|j| {
        let verdict = match &j.verdict {
            JudgeVerdict::Accepted { confidence } => {
                format!("accepted (c2 {})", format_unit(*confidence))
            }
            JudgeVerdict::Rejected { reason } => format!("rejected: {reason}"),
            JudgeVerdict::Unavailable { reason } => format!("no verdict: {reason}"),
        };
        let parsed = j.reply.as_ref().map(|r| {
            format!(
                "valid: {} · confidence {} · {}",
                if r.is_valid { "yes" } else { "no" },
                format_unit(r.confidence),
                r.rejection_reason
            )
        });
        match &j.call {
            Some(call) => call_view(format!("Second judge: {verdict}"), call, parsed).into_any(),
            None => view! { <p class="error">{format!("Second judge: {verdict}")}</p> }.into_any(),
        }
    });
    view! {
        <div class="attempt" data-testid="detail-attempt">
            {relabel}
            {judge}
        </div>
    }
}

fn detail(state: AppState, e: Entry) -> impl IntoView {
    let t = &e.trajectory;
    let steps = t
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if s.is_respond() {
                return view! {
                    <li class="step reply" data-testid="detail-step">
                        <p class="label">{format!("Step {}: reply to the user", i + 1)}</p>
                        <p><span class="k">"Thought: "</span>{s.thought.clone()}</p>
                        <p><span class="k">"Reply: "</span>{s.reply().to_owned()}</p>
                        <p><span class="k">"The user: "</span>{s.observation.clone()}</p>
                    </li>
                }
                .into_any();
            }
            let input = serde_json::to_string(&s.action_input).unwrap_or_default();
            view! {
                <li class="step" data-testid="detail-step">
                    <p class="label">{format!("Step {}", i + 1)}</p>
                    <p><span class="k">"Thought: "</span>{s.thought.clone()}</p>
                    <p class="mono">
                        <span class="k">"Action: "</span>
                        {format!("{}({input})", s.action_name)}
                    </p>
                    <pre class="obs">{s.observation.clone()}</pre>
                </li>
            }
            .into_any()
        })
        .collect_view();
    let hits = e
        .rules
        .hits
        .iter()
        .map(|h| {
            view! {
                <li>
                    <b>{h.failure_type.as_str()}</b>
                    {format!(": {}", h.keywords.join(", "))}
                </li>
            }
        })
        .collect_view();
    let result = e.result.as_ref();
    let calls = result.map(|r| {
        let stage_calls = r
            .stage_calls
            .iter()
            .map(|c| {
                view! {
                    <div class="attempt" data-testid="detail-attempt">
                        {call_view(format!("{} call", c.kind.as_str()), c, None)}
                    </div>
                }
            })
            .collect_view();
        let attempts = r
            .relabel
            .as_ref()
            .map(|rep| rep.attempts.iter().map(attempt_view).collect_view());
        view! {
            {stage_calls}
            {attempts}
        }
    });
    let flags = result.map(|r| {
        r.flags()
            .into_iter()
            .map(|f| {
                let calls = match f.calls {
                    1 => "1 call".to_string(),
                    n => format!("{n} calls"),
                };
                view! {
                    <li class="flag" data-testid="call-flag" data-flag=f.kind>
                        <b>{format!("{} ({calls}): ", f.kind.replace('_', " "))}</b>
                        {f.advice}
                    </li>
                }
            })
            .collect_view()
    });
    let outcome = match result {
        _ if e.trajectory.succeeded() => format!("success: {}", crate::session::SUCCESS_REASON),
        Some(r) => format!("{}: {}", r.outcome.status(), r.outcome.reason()),
        None => match &e.rules.skip_reason {
            Some(reason) => format!("not run yet; the gates would skip it: {reason}"),
            None => "not run yet".into(),
        },
    };
    let run_analysis = result
        .and_then(|r| r.analysis.as_ref())
        .filter(|a| **a != e.rules.analysis)
        .map(|a| {
            view! {
                <h4>"Stage 1 of the run"</h4>
                {analysis_view(a)}
            }
        });
    let extracted = result.and_then(|r| r.extracted.as_ref()).map(|o| {
        view! {
            <h4>"Extracted outcome (run)"</h4>
            {outcome_view(o)}
        }
    });
    view! {
        <aside class="detail" data-testid="trajectory-detail" aria-label="Trajectory detail">
            <div class="detail-head">
                <h3 class="mono">{t.trajectory_id.clone()}</h3>
                <span class="muted">{format!("{}:{}", e.source.file, e.source.line)}</span>
                <button
                    class="small"
                    data-testid="close-detail"
                    on:click=move |_| state.selected.set(None)
                >
                    "Close"
                </button>
            </div>
            <p class="outcome"><b>"Outcome: "</b>{outcome}</p>
            <ul class="flags">{flags}</ul>
            <div class="detail-cols">
                <div>
                    <h4>"Trajectory"</h4>
                    <p><span class="k">"Prompt: "</span>{t.original_prompt.clone()}</p>
                    <ol class="steps">{steps}</ol>
                    <p><span class="k">"Final answer: "</span>{t.final_answer.clone()}</p>
                    {(!t.final_thought().is_empty())
                        .then(|| {
                            view! {
                                <p>
                                    <span class="k">"Final thought: "</span>
                                    {t.final_thought().to_owned()}
                                </p>
                            }
                        })}
                    {t
                        .verdict_unknown()
                        .then(|| {
                            view! {
                                <p class="muted" data-testid="detail-verdict-unknown">
                                    {VERDICT_UNKNOWN}
                                </p>
                            }
                        })}
                    <p><span class="k">"Failure reason: "</span>{t.failure_reason.clone()}</p>
                </div>
                <div>
                    <h4>"Rule-based analysis"</h4>
                    {analysis_view(&e.rules.analysis)}
                    <p class="label">"Keywords that fired"</p>
                    <ul>{hits}</ul>
                    <h4>"Rule-based extracted outcome"</h4>
                    {outcome_view(&e.rules.extracted)}
                    {run_analysis}
                    {extracted}
                </div>
            </div>
            <h4>"LLM calls"</h4>
            {if calls.is_none() {
                Some(view! { <p class="muted">"No calls yet."</p> })
            } else {
                None
            }}
            {calls}
        </aside>
    }
}
