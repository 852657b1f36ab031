//! Section 5: the results table (sortable, filtered, navigable with the arrow keys) and the
//! detail of a trajectory in a panel beside its row (a dialog on narrow screens). The pieces of
//! the detail (goals, verdict, steps, analysis, extraction) are shared with the review queue.

use super::browser;
use super::filters::{
    clear_button, file_filter, status_filter, status_slug, type_filter, Filters, TextFilter,
};
use super::state::{AppState, Phase};
use crate::checks::{CheckFilter, GoalChecks};
use crate::duplicates::{Clusters, DEFAULT_RESTATE_THRESHOLD, DEFAULT_THRESHOLD};
use crate::grounding::Grounding;
use crate::llm::CallRecord;
use crate::model::{ExtractedOutcome, FailureAnalysis, Trajectory};
use crate::pipeline::RuleView;
use crate::progress::{format_count, format_unit, plural};
use crate::review::Decision;
use crate::session::{Entry, Facets, Filter, Row, Session, SortKey};
use crate::stages::relabel::{JudgeVerdict, Judges, RelabelAttempt};
use leptos::prelude::*;

/// Rows of the results table per page.
pub const PAGE_SIZE: usize = 50;

/// The results table's filters (a context of its own).
#[derive(Clone, Copy)]
pub struct TableFilters(pub Filters);

/// The selector of the table row of entry `index`.
fn row_selector(index: usize) -> String {
    format!("tr[data-testid=result-row][data-index=\"{index}\"]")
}

/// Opens the detail of entry `index` beside its row and moves focus into it.
fn open_detail(state: AppState, index: usize) {
    state.selected.set(Some(index));
    browser::focus_soon("#detail-title".into());
}

/// Closes the detail and gives focus back to its row.
fn close_detail(state: AppState) {
    if let Some(index) = state.selected.get_untracked() {
        state.selected.set(None);
        browser::focus_soon(row_selector(index));
    }
}

/// Arrow keys on a row: focus the row above or below (and show its detail when one is open).
fn move_focus(state: AppState, ev: &web_sys::KeyboardEvent, down: bool) {
    use wasm_bindgen::JsCast;
    let Some(row) = ev
        .current_target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
    else {
        return;
    };
    let next = if down {
        row.next_element_sibling()
    } else {
        row.previous_element_sibling()
    };
    if let Some(next) = next.and_then(|n| n.dyn_into::<web_sys::HtmlElement>().ok()) {
        ev.prevent_default();
        let _ = next.focus();
        let index = next
            .get_attribute("data-index")
            .and_then(|i| i.parse::<usize>().ok());
        if state.selected.get_untracked().is_some() {
            state.selected.set(index);
        }
    }
}

fn confidence_text(row: &Row) -> String {
    match (row.relabel_confidence, row.judge_confidence) {
        (Some(c), Some(c2)) => format!("c {} · c2 {}", format_unit(c), format_unit(c2)),
        (Some(c), None) => format!("c {}", format_unit(c)),
        _ => row.confidence.map(format_unit).unwrap_or_default(),
    }
}

/// What the "verdict unknown" badge means.
const VERDICT_UNKNOWN: &str =
    "Verdict unknown: the source does not say whether this run succeeded; it is treated as a failure.";

/// The near-duplicate clusters of the accepted goals and the "not a new goal" threshold, shared
/// by the results table and the review queue (a context of its own). The clusters are not
/// recomputed while a run goes on.
#[derive(Clone, Copy)]
pub struct MethodChecks {
    clusters: Memo<Option<Clusters>>,
    restate: Memo<f64>,
}

impl MethodChecks {
    pub fn new(state: AppState) -> Self {
        let thresholds = move || {
            state
                .prefs()
                .map_or((DEFAULT_THRESHOLD, DEFAULT_RESTATE_THRESHOLD), |p| {
                    (p.duplicate_threshold, p.restate_threshold)
                })
        };
        let running = Memo::new(move |_| state.running.run.with(|r| r.phase == Phase::Running));
        let duplicate = Memo::new(move |_| thresholds().0);
        let clusters = Memo::new(move |_| {
            if running.get() {
                return None;
            }
            let threshold = duplicate.get();
            Some(state.session.with(|s| Clusters::of_session(s, threshold)))
        });
        MethodChecks {
            clusters,
            restate: Memo::new(move |_| thresholds().1),
        }
    }

    /// The checks of entry `index` (tracked).
    pub fn of(&self, s: &Session, index: usize) -> GoalChecks {
        let restate = self.restate.get();
        self.clusters
            .with(|c| s.goal_checks(index, c.as_ref(), restate))
    }

    /// The entries among `indexes` that `filter` (a [`CheckFilter`] value) keeps (tracked).
    pub fn filter(
        &self,
        session: RwSignal<Session>,
        indexes: Vec<usize>,
        filter: RwSignal<String>,
    ) -> Vec<usize> {
        let filter = filter.with(|f| CheckFilter::parse(f));
        if filter == CheckFilter::All {
            return indexes;
        }
        let restate = self.restate.get();
        self.clusters
            .with(|c| session.with(|s| s.filter_checks(indexes, filter, c.as_ref(), restate)))
    }

    /// The faceted counts of `session` under `filter` and the goal checks `check` (a
    /// [`CheckFilter`] value), tracked.
    pub fn facets(
        &self,
        session: RwSignal<Session>,
        filter: &Filter,
        check: RwSignal<String>,
    ) -> Facets {
        let check = check.with(|f| CheckFilter::parse(f));
        let restate = self.restate.get();
        self.clusters.with(|c| {
            session.with(|s| {
                s.facets(filter, |i| {
                    check == CheckFilter::All
                        || check.matches(&s.goal_checks(i, c.as_ref(), restate))
                })
            })
        })
    }

    /// The clusters, when known (tracked).
    pub fn with_clusters<T>(&self, f: impl FnOnce(Option<&Clusters>) -> T) -> T {
        self.clusters.with(|c| f(c.as_ref()))
    }
}

/// The select of the goal checks filter (`testid`), over `filter` (a [`CheckFilter`] value).
pub fn check_filter(testid: &'static str, filter: RwSignal<String>) -> impl IntoView {
    let options = CheckFilter::ALL
        .into_iter()
        .map(|f| view! { <option value=f.as_str()>{f.label()}</option> })
        .collect_view();
    view! {
        <select
            data-testid=testid
            aria-label="Goal checks"
            prop:value=move || filter.get()
            on:change=move |ev| filter.set(event_target_value(&ev))
        >
            {options}
        </select>
    }
}

/// `goal` with the tokens the run never observed marked (each `<mark>` tells screen readers
/// what it marks, see the style sheet), or plain without a grounding check.
pub fn marked_goal(goal: &str, grounding: Option<&Grounding>) -> Vec<AnyView> {
    let Some(g) = grounding else {
        return vec![goal.to_owned().into_any()];
    };
    g.parts(goal)
        .into_iter()
        .map(|p| match p.ungrounded {
            None => p.text.to_owned().into_any(),
            Some(kind) => view! {
                <mark
                    class="ungrounded"
                    data-testid="ungrounded-token"
                    data-kind=kind.as_str()
                    title=format!("A {} the run never observed", kind.as_str())
                >
                    {p.text.to_owned()}
                </mark>
            }
            .into_any(),
        })
        .collect()
}

fn row_view(state: AppState, row: Row, checks: GoalChecks) -> impl IntoView {
    let index = row.index;
    let status = status_slug(row.status);
    let outcome = if row.reason.is_empty() {
        row.status.as_str().to_string()
    } else {
        format!("{}: {}", row.status.as_str(), row.reason)
    };
    let confidence = confidence_text(&row);
    let selected = move || state.selected.get() == Some(index);
    let review = row.review.map(|k| k.as_str());
    let hindsight = match (&row.edited_goal, &row.hindsight_prompt) {
        (Some(edit), _) => edit.clone(),
        (None, model) => model.clone().unwrap_or_default(),
    };
    let id = row.trajectory_id.clone();
    view! {
        <tr
            data-testid="result-row"
            data-id=id
            data-index=index.to_string()
            data-status=status.clone()
            data-review=review.unwrap_or("")
            tabindex="0"
            aria-selected=move || selected().to_string()
            class:selected=selected
            on:click=move |_| open_detail(state, index)
            on:keydown=move |ev| match ev.key().as_str() {
                "Enter" | " " => {
                    ev.prevent_default();
                    open_detail(state, index);
                }
                "ArrowDown" => move_focus(state, &ev, true),
                "ArrowUp" => move_focus(state, &ev, false),
                "Escape" => close_detail(state),
                _ => {}
            }
        >
            <td data-testid="cell-id" data-label="Id" class="mono">{row.trajectory_id}</td>
            <td data-testid="cell-type" data-label="Failure type">{row.failure_type.map_or("—", |t| t.as_str())}</td>
            <td data-testid="cell-severity" data-label="Severity / weight" class="num">
                {if row.severity == row.weight {
                    format_unit(row.severity)
                } else {
                    format!("{} / {}", format_unit(row.severity), format_unit(row.weight))
                }}
            </td>
            <td data-testid="cell-recoverable" data-label="Recoverable">{if row.recoverable { "yes" } else { "no" }}</td>
            <td data-testid="cell-outcome" data-label="Outcome">
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
            <td data-testid="cell-original" data-label="Original goal" class="goal">{row.original_prompt}</td>
            <td data-testid="cell-hindsight" data-label="Hindsight goal" class="goal">
                {marked_goal(
                    &hindsight,
                    checks.grounding.as_ref().filter(|_| row.edited_goal.is_none()),
                )}
            </td>
            <td data-testid="cell-checks" data-label="Checks">
                {checks
                    .grounding
                    .as_ref()
                    .and_then(Grounding::reason)
                    .map(|reason| {
                        view! {
                            <span class="badge flag" data-testid="badge-ungrounded" title=reason>
                                "ungrounded"
                            </span>
                        }
                    })}
                {checks
                    .restates
                    .then(|| {
                        view! {
                            <span
                                class="badge flag"
                                data-testid="badge-not-new"
                                title="The hindsight goal restates the original goal"
                            >
                                "not a new goal"
                            </span>
                        }
                    })}
                {checks
                    .cluster
                    .filter(|_| checks.in_cluster())
                    .map(|m| {
                        view! {
                            <span
                                class="badge cluster"
                                data-testid="badge-cluster"
                                data-cluster=m.cluster
                                data-kept=m.kept.to_string()
                                title=format!(
                                    "{} near-duplicate goals{}",
                                    m.size,
                                    if m.kept { "; this one is kept one per cluster" } else { "" },
                                )
                            >
                                {format!("#{} · {}{}", m.cluster, m.size, if m.kept { " ★" } else { "" })}
                            </span>
                        }
                    })}
            </td>
            <td data-testid="cell-confidence" data-label="Confidence" class="num">{confidence}</td>
            <td data-testid="cell-judges" data-label="Judges">{row.judges.unwrap_or("")}</td>
            <td data-testid="cell-review" data-label="Review">
                {review.map(|r| view! { <span class=format!("badge review-{r}")>{r}</span> })}
            </td>
        </tr>
    }
}

/// A header that sorts its column.
fn sort_header(filters: Filters, key: SortKey, label: &'static str) -> impl IntoView {
    view! {
        <th aria-sort=move || filters.aria_sort(key) scope="col">
            <button
                class="sort"
                data-testid=format!("sort-{}", key.as_str())
                on:click=move |_| filters.toggle_sort(key)
            >
                {label}
                <span aria-hidden="true" class="sort-mark">
                    {move || match filters.aria_sort(key) {
                        "ascending" => "▲",
                        "descending" => "▼",
                        _ => "",
                    }}
                </span>
            </button>
        </th>
    }
}

#[component]
pub fn ResultsSection() -> impl IntoView {
    let state = expect_context::<AppState>();
    let TableFilters(filters) = expect_context::<TableFilters>();
    let checks = expect_context::<MethodChecks>();
    // The indexes that match the filters, in order; rows are built only for the page shown.
    let rows = Memo::new(move |_| {
        let matching = filters.matching(state.session);
        checks.filter(state.session, matching, filters.checks)
    });
    let facets =
        Memo::new(move |_| checks.facets(state.session, &filters.filter(), filters.checks));
    let pages = move || rows.with(|r| r.len().div_ceil(PAGE_SIZE)).max(1);
    // A filter change goes back to the first page.
    Effect::new(move |_| {
        filters.filter();
        filters.checks.track();
        filters.page.set(0);
    });
    let page = move || filters.page.get().min(pages() - 1);
    let page_rows = move || {
        let start = page() * PAGE_SIZE;
        let shown: Vec<(Row, GoalChecks)> = rows.with(|r| {
            state.session.with(|s| {
                r.iter()
                    .skip(start)
                    .take(PAGE_SIZE)
                    .filter_map(|&i| Some((s.row(i)?, checks.of(s, i))))
                    .collect()
            })
        });
        shown
            .into_iter()
            .map(|(row, checks)| row_view(state, row, checks))
            .collect_view()
    };
    let session = state.session;
    view! {
        <section class="card step-section" id="step-review" aria-labelledby="results-title">
            <h2 id="results-title">"Results"</h2>
            <div class="filters">
                {status_filter(filters, facets)}
                {type_filter(filters, facets)}
                {file_filter(filters, facets)}
                {check_filter("filter-checks", filters.checks)}
                <TextFilter filters=filters />
                {clear_button(filters)}
                {move || {
                    filters
                        .pick
                        .get()
                        .map(|p| {
                            view! {
                                <button
                                    class="chip filter-pick"
                                    data-testid="filter-pick"
                                    aria-label=format!("Filtered by {}: clear", p.label())
                                    on:click=move |_| filters.pick.set(None)
                                >
                                    {p.label()}
                                    <span aria-hidden="true">" ✕"</span>
                                </button>
                            }
                        })
                }}
            </div>
            <p class="muted count" data-testid="filter-count" aria-live="polite">
                {move || {
                    let n = rows.with(Vec::len);
                    let total = session.with(Session::len);
                    if n == total {
                        plural(total, "trajectory", "trajectories")
                    } else {
                        format!("{} of {} trajectories match", format_count(n), format_count(total))
                    }
                }}
            </p>
            <div class="results-layout" class:with-detail=move || state.selected.with(Option::is_some)>
                <div class="table-wrap" tabindex="0" role="region" aria-label="Results table">
                    <table class="results" data-testid="results-table" role="grid" aria-labelledby="results-title">
                        <thead>
                            <tr>
                                {sort_header(filters, SortKey::Id, "Id")}
                                {sort_header(filters, SortKey::FailureType, "Failure type")}
                                {sort_header(filters, SortKey::Severity, "Severity / weight")}
                                <th scope="col">"Recoverable"</th>
                                {sort_header(filters, SortKey::Status, "Outcome")}
                                {sort_header(filters, SortKey::OriginalGoal, "Original goal")}
                                {sort_header(filters, SortKey::HindsightGoal, "Hindsight goal")}
                                <th scope="col">"Checks"</th>
                                {sort_header(filters, SortKey::Confidence, "Confidence")}
                                <th scope="col">"Judges"</th>
                                {sort_header(filters, SortKey::Review, "Review")}
                            </tr>
                        </thead>
                        <tbody>{page_rows}</tbody>
                    </table>
                </div>
                {move || {
                    state
                        .selected
                        .get()
                        .and_then(|i| state.session.with(|s| detail_parts(s, i)))
                        .map(|parts| detail(state, parts))
                }}
            </div>
            <div class="pager">
                <button
                    data-testid="page-prev"
                    disabled=move || page() == 0
                    on:click=move |_| filters.page.set(page().saturating_sub(1))
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
                    on:click=move |_| filters.page.set(page() + 1)
                >
                    "Next ›"
                </button>
            </div>
        </section>
    }
}

/// What the detail of one entry shows, taken out of the session.
#[derive(Clone)]
pub struct DetailParts {
    pub entry: Entry,
    /// The entry's trajectory and rule view, opened for the detail.
    pub trajectory: Trajectory,
    pub rules: RuleView,
    pub model_goal: Option<String>,
    pub decision: Option<Decision>,
    /// Who accepted it and with what confidences.
    pub verdict: Option<Verdict>,
    /// The grounding check of the model's goal, when it ran.
    pub grounding: Option<Grounding>,
}

/// Why a run accepted a hindsight goal.
#[derive(Clone)]
pub struct Verdict {
    pub judges: Judges,
    pub confidence: f64,
    pub c: f64,
    pub c2: Option<f64>,
}

pub fn detail_parts(s: &Session, index: usize) -> Option<DetailParts> {
    let entry = s.entries.get(index)?.clone();
    let accepted = s.accepted(index);
    Some(DetailParts {
        model_goal: accepted.as_ref().map(|a| a.model_goal.to_owned()),
        decision: s.decision(index).cloned(),
        grounding: entry
            .result
            .as_ref()
            .and_then(|r| r.relabel.as_ref())
            .and_then(|r| r.grounding.clone()),
        verdict: accepted.map(|a| Verdict {
            judges: a.judges,
            confidence: a.confidence,
            c: a.relabel_confidence,
            c2: a.judge_confidence,
        }),
        trajectory: entry.trajectory(),
        rules: entry.rules(),
        entry,
    })
}

/// The original goal and the hindsight goal side by side (and the reviewer's, when edited).
pub fn goals_view(parts: &DetailParts) -> impl IntoView {
    let edited = parts
        .decision
        .as_ref()
        .and_then(Decision::goal)
        .map(str::to_owned);
    let hindsight = parts.model_goal.clone();
    view! {
        <div class="goals">
            <div class="goal-box">
                <p class="label">"Original goal (failed)"</p>
                <p data-testid="goal-original">{parts.entry.goal().to_owned()}</p>
            </div>
            <div class="goal-box hindsight">
                <p class="label">
                    {if edited.is_some() { "Hindsight goal (model)" } else { "Hindsight goal" }}
                </p>
                <p data-testid="goal-hindsight">
                    {match hindsight {
                        Some(goal) => marked_goal(&goal, parts.grounding.as_ref()),
                        None => vec!["— none yet: no run accepted a goal".into_any()],
                    }}
                </p>
            </div>
            {edited.map(|goal| {
                view! {
                    <div class="goal-box edited">
                        <p class="label">"Reviewer's goal (exported)"</p>
                        <p data-testid="goal-edited">{goal}</p>
                    </div>
                }
            })}
        </div>
    }
}

/// The judges' verdict: c, c2, and why the goal was accepted.
pub fn verdict_view(verdict: &Verdict) -> impl IntoView {
    let c2 = verdict.c2.map_or_else(|| "none".to_string(), format_unit);
    let why = match verdict.judges {
        Judges::RelabelerAndJudge => {
            "Accepted by both judges: the relabeler reached θ and the second judge, seeing only \
             the new goal and the run, agreed."
        }
        Judges::SingleJudgeFallback => {
            "Single-judge fallback: no candidate passed both judges; this one reached 0.8 θ and \
             the second judge never rejected it. Check it closely."
        }
    };
    let fallback = verdict.judges == Judges::SingleJudgeFallback;
    view! {
        <div class="verdict" class:fallback=fallback data-testid="verdict">
            <p class="scores">
                <span class="score">"c "<b data-testid="verdict-c">{format_unit(verdict.c)}</b></span>
                <span class="score">"c2 "<b data-testid="verdict-c2">{c2}</b></span>
                <span class="score">"confidence "<b>{format_unit(verdict.confidence)}</b></span>
                <span class=if fallback { "badge judges fallback" } else { "badge judges both" } data-testid="verdict-judges">
                    {if fallback { "single judge" } else { "both judges" }}
                </span>
            </p>
            <p class="why">{why}</p>
        </div>
    }
}

/// The steps, folded.
pub fn steps_view(t: &Trajectory, open: bool) -> impl IntoView {
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
    view! {
        <details class="fold" open=open>
            <summary>{format!("Steps ({})", t.steps.len())}</summary>
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
                        <p class="muted" data-testid="detail-verdict-unknown">{VERDICT_UNKNOWN}</p>
                    }
                })}
            <p><span class="k">"Failure reason: "</span>{t.failure_reason.clone()}</p>
        </details>
    }
}

/// The rule-based analysis and the keywords that fired, and the run's when it differs.
pub fn analysis_section(e: &Entry, rules: &RuleView) -> impl IntoView {
    let fired: Vec<_> = rules
        .hits
        .iter()
        .filter(|h| !h.keywords.is_empty())
        .collect();
    let hits = if fired.is_empty() {
        view! { <p data-testid="keywords-none">"None: no failure keyword appears in the run."</p> }
            .into_any()
    } else {
        let items = fired
            .into_iter()
            .map(|h| {
                view! {
                    <li>
                        <b>{h.failure_type.as_str()}</b>
                        {format!(": {}", h.keywords.join(", "))}
                    </li>
                }
            })
            .collect_view();
        view! { <ul data-testid="keywords-fired">{items}</ul> }.into_any()
    };
    let run_analysis = e
        .result
        .as_ref()
        .and_then(|r| r.analysis.as_ref())
        .filter(|a| *a != e.rule_analysis())
        .map(|a| {
            view! {
                <h4>"Stage 1 of the run"</h4>
                {analysis_view(a)}
            }
        });
    view! {
        <details class="fold" open>
            <summary>"Rule analysis"</summary>
            {analysis_view(e.rule_analysis())}
            <p class="label">"Keywords that fired"</p>
            {hits}
            {run_analysis}
        </details>
    }
}

/// The extracted outcome: the run's, else the rule-based one.
pub fn extraction_section(e: &Entry, rules: &RuleView) -> impl IntoView {
    let (title, outcome) = match e.result.as_ref().and_then(|r| r.extracted.as_ref()) {
        Some(o) => ("Extracted outcome (run)", o.clone()),
        None => ("Extracted outcome (rules)", rules.extracted.clone()),
    };
    view! {
        <details class="fold" open>
            <summary>{title}</summary>
            {outcome_view(&outcome)}
        </details>
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
                .map(|r| view! { <pre class="raw" data-testid="raw-reply" tabindex="0" aria-label="Raw reply">{r.clone()}</pre> })}
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

fn detail(state: AppState, parts: DetailParts) -> impl IntoView {
    let e = &parts.entry;
    let t = &parts.trajectory;
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
        _ if e.succeeded() => format!("success: {}", crate::session::SUCCESS_REASON),
        Some(r) => format!("{}: {}", r.outcome.status(), r.outcome.reason()),
        None => match e.skip_reason() {
            Some(reason) => format!("not run yet; the gates would skip it: {reason}"),
            None => "not run yet".into(),
        },
    };
    let review = parts.decision.as_ref().map(|d| {
        let text = match d {
            Decision::Rejected { reason } if !reason.is_empty() => {
                format!("rejected: {reason}")
            }
            d => d.kind().as_str().to_string(),
        };
        view! { <p><b>"Review: "</b><span data-testid="detail-review">{text}</span></p> }
    });
    let has_calls = calls.is_some();
    view! {
        <aside
            class="detail"
            data-testid="trajectory-detail"
            role="dialog"
            aria-modal="false"
            aria-labelledby="detail-title"
            on:keydown=move |ev| {
                if ev.key() == "Escape" {
                    ev.prevent_default();
                    close_detail(state);
                }
            }
        >
            <div class="detail-head">
                <h3 class="mono" id="detail-title" tabindex="-1">{t.trajectory_id.clone()}</h3>
                <span class="muted">{format!("{}:{}", e.source.file, e.source.line)}</span>
                <button
                    class="small"
                    data-testid="close-detail"
                    aria-label="Close the detail (Esc)"
                    on:click=move |_| close_detail(state)
                >
                    "Close"
                </button>
            </div>
            {goals_view(&parts)}
            {parts.verdict.as_ref().map(verdict_view)}
            <p class="outcome"><b>"Outcome: "</b>{outcome}</p>
            {review}
            <ul class="flags">{flags}</ul>
            {steps_view(t, true)}
            {analysis_section(e, &parts.rules)}
            {extraction_section(e, &parts.rules)}
            <details class="fold" open=has_calls>
                <summary>"LLM calls"</summary>
                {if has_calls { None } else { Some(view! { <p class="muted">"No calls yet."</p> }) }}
                {calls}
            </details>
        </aside>
    }
}
