//! The charts, drawn as inline SVG: the funnel, failure types by severity, the histograms of c
//! and c2 with θ, the accept rate per failure type, and calls and tokens over the run. Every
//! bar is a button that filters the results table to its rows (Enter or Space when focused);
//! every chart has a title and its numbers in a table under it.

use super::running::RunState;
use super::state::AppState;
use crate::charts::{self, AcceptRate, Histogram, Measure, Pick, Sample, Step, SEVERITY_BINS};
use crate::model::FailureType;
use crate::progress::{format_count, format_duration};
use crate::session::{Filter, Status};
use leptos::prelude::*;

/// The width of every chart's drawing (it scales to the page).
const W: f64 = 480.0;
/// Horizontal bars: where the bars start and how long the longest is.
const BAR_X: f64 = 150.0;
const BAR_W: f64 = 260.0;
const ROW_H: f64 = 26.0;
const BINS: usize = 10;

/// What a bar filters the results by: the other filters of the results table are cleared, so
/// the table shows exactly the bar's rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub status: Option<Status>,
    pub failure_type: Option<Option<FailureType>>,
    pub pick: Option<Pick>,
}

impl Choice {
    fn step(step: Step) -> Self {
        match step {
            Step::Loaded => Choice::all(),
            Step::Accepted => Choice {
                status: Some(Status::Accepted),
                ..Choice::all()
            },
            s => Choice {
                pick: Some(Pick::Step(s)),
                ..Choice::all()
            },
        }
    }

    fn all() -> Self {
        Choice {
            status: None,
            failure_type: None,
            pick: None,
        }
    }

    /// The failures of one type (what the load summary's chips count).
    pub fn failures_of(t: Option<FailureType>) -> Self {
        Choice {
            status: None,
            failure_type: Some(t),
            pick: Some(Pick::Step(Step::Failures)),
        }
    }

    /// The results table's filter it stands for.
    fn filter(self) -> Filter {
        Filter {
            status: self.status,
            failure_type: self.failure_type,
            pick: self.pick,
            ..Filter::default()
        }
    }
}

fn type_slug(t: Option<FailureType>) -> &'static str {
    t.map_or("none", |t| t.as_str())
}

fn type_name(t: Option<FailureType>) -> &'static str {
    t.map_or("no type", |t| t.as_str())
}

/// Sets the results table's filters to `choice`.
pub fn apply(state: AppState, choice: Choice) {
    state.table.set(&choice.filter());
}

/// Whether the results table is filtered by `choice` now (tracked).
pub fn is_applied(state: AppState, choice: Choice) -> bool {
    state.table.is(&choice.filter())
}

/// A bar: a focusable button of the drawing that applies `choice`.
fn bar_button(
    state: AppState,
    choice: Choice,
    name: String,
    testid: &'static str,
    key: String,
    count: usize,
    children: impl IntoView + 'static,
) -> impl IntoView {
    let label = name.clone();
    view! {
        <g
            class="bar-button"
            role="button"
            tabindex="0"
            data-testid=testid
            data-key=key
            data-count=count
            aria-label=label
            aria-pressed=move || is_applied(state, choice).to_string()
            on:click=move |_| apply(state, choice)
            on:keydown=move |ev| {
                if ev.key() == "Enter" || ev.key() == " " {
                    ev.prevent_default();
                    apply(state, choice);
                }
            }
        >
            <title>{name}</title>
            {children}
        </g>
    }
}

/// A figure: the title, the drawing and its numbers as a table.
fn figure(
    id: &'static str,
    title: &'static str,
    note: String,
    height: f64,
    drawing: impl IntoView + 'static,
    head: &'static [&'static str],
    rows: Vec<Vec<String>>,
) -> impl IntoView {
    let title_id = format!("chart-{id}-title");
    let body = rows
        .into_iter()
        .map(|cells| {
            view! {
                <tr>
                    {cells.into_iter().map(|c| view! { <td>{c}</td> }).collect_view()}
                </tr>
            }
        })
        .collect_view();
    view! {
        <figure class="chart" data-testid=format!("chart-{id}")>
            <figcaption id=title_id.clone()>
                <strong>{title}</strong>
                <span class="chart-note">{note}</span>
            </figcaption>
            <svg
                viewBox=format!("0 0 {W} {height}")
                role="group"
                aria-labelledby=title_id
                preserveAspectRatio="xMinYMin meet"
            >
                <title>{title}</title>
                {drawing}
            </svg>
            <details class="chart-numbers">
                <summary>"Numbers"</summary>
                <table data-testid=format!("chart-{id}-table")>
                    <thead>
                        <tr>{head.iter().map(|h| view! { <th>{*h}</th> }).collect_view()}</tr>
                    </thead>
                    <tbody>{body}</tbody>
                </table>
            </details>
        </figure>
    }
}

/// A row of a horizontal bar chart: its label, its segments (fraction of the full length and
/// class) and the figure at its end.
fn hbar_row(
    y: f64,
    label: String,
    segments: Vec<(f64, &'static str, String)>,
    value: String,
) -> impl IntoView {
    let mut x = BAR_X;
    let rects = segments
        .into_iter()
        .filter(|(f, _, _)| *f > 0.0)
        .map(|(f, class, tip)| {
            let w = (f * BAR_W).max(1.5);
            let r = view! {
                <rect class=class x=x y=y + 4.0 width=w height=ROW_H - 8.0 rx="2">
                    <title>{tip}</title>
                </rect>
            };
            x += w;
            r
        })
        .collect_view();
    view! {
        <rect class="bar-hit" x="0" y=y width=W height=ROW_H />
        <text class="chart-label" x=BAR_X - 8.0 y=y + ROW_H / 2.0 text-anchor="end" dominant-baseline="middle">
            {label}
        </text>
        <rect class="bar-track" x=BAR_X y=y + 4.0 width=BAR_W height=ROW_H - 8.0 rx="2" />
        {rects}
        <text class="chart-value" x=x + 6.0 y=y + ROW_H / 2.0 dominant-baseline="middle">
            {value}
        </text>
    }
}

fn funnel_chart(state: AppState) -> impl IntoView {
    let data = Memo::new(move |_| state.session.with(charts::funnel));
    move || {
        let steps = data.get();
        let top = steps.first().map_or(0, |s| s.1).max(1) as f64;
        let height = steps.len() as f64 * ROW_H + 4.0;
        let bars = steps
            .iter()
            .enumerate()
            .map(|(i, (step, n))| {
                let name = format!("{}: {} — show these rows", step.label(), format_count(*n));
                bar_button(
                    state,
                    Choice::step(*step),
                    name,
                    "funnel-bar",
                    step.slug().into(),
                    *n,
                    hbar_row(
                        i as f64 * ROW_H,
                        step.label().into(),
                        vec![(
                            *n as f64 / top,
                            "bar",
                            format!("{} {}", format_count(*n), step.label()),
                        )],
                        format_count(*n),
                    ),
                )
            })
            .collect_view();
        let rows = steps
            .iter()
            .map(|(s, n)| {
                vec![
                    s.label().to_string(),
                    format_count(*n),
                    pct(*n, steps.first().map_or(0, |s| s.1)),
                ]
            })
            .collect();
        figure(
            "funnel",
            "From loaded runs to training samples",
            "Each step keeps what the step before it kept.".into(),
            height,
            bars,
            &["Step", "Trajectories", "Of loaded"],
            rows,
        )
    }
}

fn pct(n: usize, of: usize) -> String {
    if of == 0 {
        "—".into()
    } else {
        format!("{:.0}%", n as f64 * 100.0 / of as f64)
    }
}

const SEVERITY_CLASSES: [&str; 4] = ["sev sev-1", "sev sev-2", "sev sev-3", "sev sev-4"];

fn severity_chart(state: AppState) -> impl IntoView {
    let data = Memo::new(move |_| state.session.with(charts::types_by_severity));
    move || {
        let rows = data.get();
        let top = rows
            .iter()
            .map(|(_, b)| b.iter().sum::<usize>())
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let legend_y = rows.len() as f64 * ROW_H + 8.0;
        let bars = rows
            .iter()
            .enumerate()
            .map(|(i, (t, bins))| {
                let total: usize = bins.iter().sum();
                let segments = bins
                    .iter()
                    .zip(SEVERITY_BINS)
                    .zip(SEVERITY_CLASSES)
                    .map(|((n, (lo, hi)), class)| {
                        (
                            *n as f64 / top,
                            class,
                            format!(
                                "{}: {} with severity {lo}–{hi}",
                                type_name(*t),
                                format_count(*n)
                            ),
                        )
                    })
                    .collect();
                let name = format!(
                    "{}: {} failures ({}) — show these rows",
                    type_name(*t),
                    format_count(total),
                    bins.iter()
                        .zip(SEVERITY_BINS)
                        .filter(|(n, _)| **n > 0)
                        .map(|(n, (lo, hi))| format!("{} at severity {lo}–{hi}", format_count(*n)))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
                bar_button(
                    state,
                    Choice::failures_of(*t),
                    name,
                    "severity-bar",
                    type_slug(*t).into(),
                    total,
                    hbar_row(
                        i as f64 * ROW_H,
                        type_name(*t).into(),
                        segments,
                        format_count(total),
                    ),
                )
            })
            .collect_view();
        let legend = SEVERITY_BINS
            .iter()
            .zip(SEVERITY_CLASSES)
            .enumerate()
            .map(|(i, ((lo, hi), class))| {
                let x = BAR_X + i as f64 * 72.0;
                view! {
                    <rect class=class x=x y=legend_y width="12" height="12" rx="2" />
                    <text class="chart-axis" x=x + 16.0 y=legend_y + 10.0>
                        {format!("{lo}–{hi}")}
                    </text>
                }
            })
            .collect_view();
        let table = rows
            .iter()
            .map(|(t, b)| {
                std::iter::once(type_name(*t).to_string())
                    .chain(b.iter().map(|n| format_count(*n)))
                    .chain([format_count(b.iter().sum())])
                    .collect()
            })
            .collect();
        figure(
            "severity",
            "Failure types by severity",
            if rows.is_empty() {
                "No failures loaded.".into()
            } else {
                "Darker is more severe.".into()
            },
            legend_y + 16.0,
            view! {
                {bars}
                <text class="chart-axis" x=BAR_X - 8.0 y=legend_y + 10.0 text-anchor="end">
                    "severity"
                </text>
                {legend}
            },
            &[
                "Failure type",
                "0–0.25",
                "0.25–0.5",
                "0.5–0.75",
                "0.75–1",
                "All",
            ],
            table,
        )
    }
}

fn rate_chart(state: AppState) -> impl IntoView {
    let data = Memo::new(move |_| state.session.with(charts::accept_rates));
    move || {
        let rates: Vec<AcceptRate> = data.get();
        let bars = rates
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let rate = r.rate().unwrap_or(0.0);
                let value = format!(
                    "{:.0}% ({} / {})",
                    rate * 100.0,
                    format_count(r.accepted),
                    format_count(r.decided)
                );
                let name = format!(
                    "{}: {value} accepted — show these rows",
                    type_name(r.failure_type)
                );
                bar_button(
                    state,
                    Choice::failures_of(r.failure_type),
                    name,
                    "rate-bar",
                    type_slug(r.failure_type).into(),
                    r.accepted,
                    hbar_row(
                        i as f64 * ROW_H,
                        type_name(r.failure_type).into(),
                        vec![(rate, "bar", value.clone())],
                        value,
                    ),
                )
            })
            .collect_view();
        let table = rates
            .iter()
            .map(|r| {
                vec![
                    type_name(r.failure_type).to_string(),
                    format_count(r.accepted),
                    format_count(r.decided),
                    pct(r.accepted, r.decided),
                ]
            })
            .collect();
        figure(
            "rates",
            "Accept rate per failure type",
            if rates.is_empty() {
                "Nothing decided yet: run the pipeline.".into()
            } else {
                "Of the runs decided (accepted, rejected or skipped).".into()
            },
            (rates.len() as f64 * ROW_H).max(ROW_H) + 4.0,
            bars,
            &["Failure type", "Accepted", "Decided", "Rate"],
            table,
        )
    }
}

fn histogram_chart(state: AppState, measure: Measure) -> impl IntoView {
    let data = Memo::new(move |_| state.session.with(|s| Histogram::new(s, measure, BINS)));
    let theta = Memo::new(move |_| {
        state
            .prefs()
            .map_or(crate::prefs::Prefs::default().theta, |p| p.theta)
    });
    let (left, right, top, bottom) = (40.0, W - 10.0, 16.0, 150.0);
    move || {
        let h = data.get();
        let theta = theta.get();
        let n = h.counts.len();
        let max = charts::nice_max(h.counts.iter().copied().max().unwrap_or(0) as f64);
        let bw = (right - left) / n as f64;
        let y_of = |v: f64| bottom - v / max * (bottom - top);
        let bars = h
            .counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let band = h.band(i);
                let x = left + i as f64 * bw;
                let name = format!(
                    "{} {}: {} — show these rows",
                    measure.label(),
                    h.range_label(i),
                    format_count(*c)
                );
                let bar_y = y_of(*c as f64);
                bar_button(
                    state,
                    Choice {
                        pick: Some(Pick::Band(band)),
                        ..Choice::all()
                    },
                    name,
                    "histogram-bar",
                    format!("{}-{i}", measure.label()),
                    *c,
                    view! {
                        <rect class="bar-hit" x=x y=top width=bw height=bottom - top />
                        <rect
                            class="bar"
                            x=x + 1.5
                            y=bar_y
                            width=bw - 3.0
                            height=(bottom - bar_y).max(if *c > 0 { 1.5 } else { 0.0 })
                        />
                        {(*c > 0)
                            .then(|| {
                                view! {
                                    <text class="chart-value" x=x + bw / 2.0 y=bar_y - 4.0 text-anchor="middle">
                                        {format_count(*c)}
                                    </text>
                                }
                            })}
                    },
                )
            })
            .collect_view();
        let tx = left + theta.clamp(0.0, 1.0) * (right - left);
        let axis = view! {
            <line class="chart-axis-line" x1=left y1=bottom x2=right y2=bottom />
            <text class="chart-axis" x=left y=bottom + 16.0 text-anchor="middle">"0"</text>
            <text class="chart-axis" x=(left + right) / 2.0 y=bottom + 16.0 text-anchor="middle">"0.5"</text>
            <text class="chart-axis" x=right y=bottom + 16.0 text-anchor="end">"1"</text>
            <text class="chart-axis" x=left - 6.0 y=top + 4.0 text-anchor="end">{format!("{max}")}</text>
            <text class="chart-axis" x=left - 6.0 y=bottom text-anchor="end">"0"</text>
            <line class="theta" x1=tx y1=top - 6.0 x2=tx y2=bottom data-testid="theta-mark">
                <title>{format!("θ = {theta}: the acceptance threshold")}</title>
            </line>
            <text class="theta-label" x=tx + 4.0 y=top - 2.0>{format!("θ {theta}")}</text>
        };
        let table = h
            .counts
            .iter()
            .enumerate()
            .map(|(i, c)| vec![h.range_label(i), format_count(*c)])
            .chain([vec!["no value".to_string(), format_count(h.missing)]])
            .collect();
        let (id, title) = match measure {
            Measure::Relabel => ("c", "c: the relabeler's confidence"),
            Measure::Judge => ("c2", "c2: the second judge's confidence"),
        };
        let note = format!(
            "{} with a value, {} without; θ marks the threshold.",
            format_count(h.total()),
            format_count(h.missing)
        );
        figure(
            id,
            title,
            note,
            bottom + 22.0,
            view! {
                {axis}
                {bars}
            },
            &["Range", "Trajectories"],
            table,
        )
    }
}

/// A time on the run's axis: tenths of a second under a minute, else `m:ss`.
fn run_time(ms: f64) -> String {
    if ms < 60_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format_duration(ms)
    }
}

/// One line of the time chart: `value` of each sample against time.
fn line_chart(
    samples: &[Sample],
    value: fn(&Sample) -> u64,
    title: &'static str,
    id: &'static str,
) -> impl IntoView {
    let (left, right, top, bottom) = (52.0, W - 10.0, 10.0, 110.0);
    let end_ms = samples.last().map_or(0.0, |s| s.ms).max(1.0);
    let max = charts::nice_max(samples.iter().map(value).max().unwrap_or(0) as f64);
    let points = samples
        .iter()
        .map(|s| {
            format!(
                "{:.1},{:.1}",
                left + s.ms / end_ms * (right - left),
                bottom - value(s) as f64 / max * (bottom - top)
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let last = samples.last().map_or(0, value);
    let step = (samples.len() / 12).max(1);
    let rows = samples
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i + 1 == samples.len())
        .map(|(_, s)| vec![run_time(s.ms), format_count(value(s) as usize)])
        .collect();
    figure(
        id,
        title,
        format!(
            "{} so far, over {}.",
            format_count(last as usize),
            run_time(end_ms)
        ),
        bottom + 22.0,
        view! {
            <line class="chart-axis-line" x1=left y1=bottom x2=right y2=bottom />
            <text class="chart-axis" x=left - 6.0 y=top + 4.0 text-anchor="end">
                {format_count(max as usize)}
            </text>
            <text class="chart-axis" x=left - 6.0 y=bottom text-anchor="end">"0"</text>
            <text class="chart-axis" x=left y=bottom + 16.0>"0 s"</text>
            <text class="chart-axis" x=right y=bottom + 16.0 text-anchor="end">
                {run_time(end_ms)}
            </text>
            <polyline class="series" points=points />
        },
        &["Time", "Total"],
        rows,
    )
}

fn time_charts() -> impl IntoView {
    let running = expect_context::<RunState>();
    let samples = Memo::new(move |_| running.run.with(|r| r.series.samples().to_vec()));
    move || {
        let s = samples.get();
        (s.len() >= 2).then(|| {
            view! {
                {line_chart(&s, |s| s.calls, "Requests sent over the run", "calls")}
                {line_chart(&s, |s| s.tokens, "Tokens over the run", "tokens")}
            }
        })
    }
}

/// The charts section.
#[component]
pub fn ChartsSection() -> impl IntoView {
    let state = expect_context::<AppState>();
    // Built a task after the session fills: the file's row and counts show first.
    let shown = super::browser::later(move || state.session.with(|s| !s.is_empty()));
    view! {
        <Show when=move || shown.get()>
            <section class="card" aria-labelledby="charts-title" data-testid="charts">
                <h2 id="charts-title">"Charts"</h2>
                <p class="chart-hint">
                    "Click a bar, or focus it and press Enter, to show its rows in the results."
                </p>
                <div class="charts">
                    {funnel_chart(state)}
                    {severity_chart(state)}
                    {histogram_chart(state, Measure::Relabel)}
                    {histogram_chart(state, Measure::Judge)}
                    {rate_chart(state)}
                    {time_charts()}
                </div>
            </section>
        </Show>
    }
}
