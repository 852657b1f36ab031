//! The sticky stepper over the workspace: each step's state, links to its section, and the
//! one thing to do next.

use super::running::Phase;
use super::state::{AppState, Connection};
use crate::workspace::{Facts, Link, Step};
use leptos::prelude::*;

#[component]
pub fn Stepper() -> impl IntoView {
    let state = expect_context::<AppState>();
    let facts = Memo::new(move |_| {
        let link = match state.connection.get() {
            None => Link::Unchecked,
            Some(Connection::Checking) => Link::Checking,
            Some(Connection::Done { ok: true, .. }) => Link::Ok,
            Some(Connection::Done { ok: false, .. }) => Link::Failed,
        };
        let running = state.running.run.with(|r| r.phase == Phase::Running);
        state.session.with(|s| {
            let totals = s.totals();
            Facts {
                trajectories: s.len(),
                failures: s.failure_count(),
                link,
                running,
                done: totals.done,
                accepted: totals.accepted,
            }
        })
    });
    let next = Memo::new(move |_| facts.with(Facts::next));
    let steps = Step::ALL
        .into_iter()
        .enumerate()
        .map(|(i, step)| {
            let current = move || next.with(|(s, _)| *s == step);
            view! {
                <li
                    class="stepper-item"
                    class:current=current
                    class:complete=move || facts.with(|f| f.complete(step))
                >
                    <a
                        href=format!("#{}", step.anchor())
                        data-testid=format!("step-{}", step.anchor().trim_start_matches("step-"))
                        aria-current=move || current().then_some("step")
                    >
                        <span class="step-number" aria-hidden="true">{i + 1}</span>
                        <span class="step-text">
                            <span class="step-name">{step.label()}</span>
                            <span class="step-status">{move || facts.with(|f| f.status(step))}</span>
                        </span>
                    </a>
                </li>
            }
        })
        .collect_view();
    view! {
        <nav class="stepper" aria-label="Steps">
            <ol class="steps-list">{steps}</ol>
            <p class="next" data-testid="next-step">
                <b>"Next: "</b>
                {move || next.with(|(_, text)| text.clone())}
            </p>
        </nav>
    }
}
