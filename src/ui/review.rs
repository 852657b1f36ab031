//! Section 6: the review queue. Every trajectory a run accepted, one at a time: the original
//! and the hindsight goal side by side, the judges' verdict, then the steps, the rule analysis
//! and the extraction; Accept, Reject (with an optional reason), Edit the goal, Undo, and bulk
//! actions over the queue's filter. Keyboard first: j / k or the arrows move, a / r / e act,
//! u undoes, Esc closes a form; focus stays in the queue.
//!
//! The decisions are the session's ([`crate::review`]); this state only holds where the
//! reviewer is and what they are typing.

use super::browser;
use super::filters::{clear_button, file_filter, type_filter, Filters, ReviewFilters, TextFilter};
use super::results::{
    analysis_section, check_filter, detail_parts, extraction_section, goals_view, steps_view,
    verdict_view, MethodChecks,
};
use super::state::AppState;
use crate::checks::{CheckLine, ClusterSummary};
use crate::progress::{format_count, format_unit};
use crate::review::{Bulk, Decision, ReviewCounts};
use crate::session::{Facets, Filter, Session};
use crate::stages::relabel::{judge_goal, JudgeVerdict};
use leptos::prelude::*;

/// One call of the second judge on `goal` through `client`, with the structured-output
/// fallback from `adaptive`'s mode when the settings ask for it.
async fn judge_once(
    client: crate::llm::AnyClient<'static>,
    adaptive: Option<crate::llm::StructuredMode>,
    (templates, relabel, trajectory, goal): (
        &crate::llm::Templates,
        &crate::stages::relabel::RelabelSettings,
        &crate::model::Trajectory,
        &str,
    ),
) -> crate::stages::relabel::JudgeCall {
    match adaptive {
        Some(mode) => {
            let client = crate::llm::AnyClient::new(crate::llm::AdaptiveClient::new(client, mode));
            judge_goal(&client, templates, relabel, trajectory, goal).await
        }
        None => judge_goal(&client, templates, relabel, trajectory, goal).await,
    }
}

super::demand::on_demand! {
/// The second judge's verdict on `goal` for `trajectory`: one call to the endpoint at `url`
/// with `key` (or to the model in this page), with the templates of `prefs`; the pipeline's
/// module is loaded on demand.
async fn ask_judge(
    prefs: crate::prefs::Prefs,
    trajectory: crate::model::Trajectory,
    goal: String,
    url: String,
    key: String,
) -> crate::stages::relabel::JudgeVerdict {
    let settings = prefs.to_pipeline_settings();
    let relabel = settings.relabel_settings();
    let templates = prefs.templates().unwrap_or_default();
    let adaptive = prefs.structured.adaptive().then_some(settings.structured);
    let ask = (&templates, &relabel, &trajectory, goal.as_str());
    // The model in this page when the relabeler is that and the judge has no endpoint of its
    // own (the engine takes it after the request it is working on).
    let call = if crate::inpage::model_of(&url).is_some() {
        let page = crate::inpage::engine::InPageClient::new(
            &url,
            prefs.timeout_ms(),
            crate::client::CancelToken::new(),
        );
        judge_once(crate::llm::AnyClient::new(page), adaptive, ask).await
    } else {
        let http = crate::client::HttpClient::new(&url, &key, prefs.timeout_ms());
        judge_once(crate::llm::AnyClient::new(http), adaptive, ask).await
    };
    call.verdict
}
}

/// Items of the queue's list shown around the current one.
const LIST_WINDOW: usize = 50;

/// The selector of the review card, where focus goes after an action.
const CARD: &str = "[data-testid=review-card]";

/// What the reviewer is doing with the current item.
#[derive(Debug, Clone, PartialEq)]
pub enum Form {
    None,
    /// Writing why it is rejected.
    Reject(String),
    /// Editing its goal.
    Edit(String),
}

/// A bulk action waiting for confirmation, with the items it would decide.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingBulk {
    pub bulk: Bulk,
    pub targets: Vec<usize>,
}

/// The review queue's own state (a context of its own).
#[derive(Clone, Copy)]
pub struct ReviewQueue {
    pub filters: Filters,
    /// The entry under review.
    pub current: RwSignal<Option<usize>>,
    pub form: RwSignal<Form>,
    pub bulk: RwSignal<Option<PendingBulk>>,
    /// Why the last action could not be done.
    pub error: RwSignal<Option<String>>,
    /// The entry whose edited goal the second judge is looking at.
    pub judging: RwSignal<Option<usize>>,
    method: MethodChecks,
}

impl ReviewQueue {
    pub fn new(method: MethodChecks) -> Self {
        ReviewQueue {
            method,
            filters: Filters::new("review-filter"),
            current: RwSignal::new(None),
            form: RwSignal::new(Form::None),
            bulk: RwSignal::new(None),
            error: RwSignal::new(None),
            judging: RwSignal::new(None),
        }
    }

    /// The queue's filter: its own, over accepted trajectories only.
    fn filter(&self) -> Filter {
        let mut filter = self.filters.filter();
        filter.status = Some(crate::session::Status::Accepted);
        filter
    }

    /// The entries in the queue, in order (tracked).
    pub fn items(&self, session: RwSignal<Session>) -> Vec<usize> {
        let filter = self.filter();
        let matching = session.with(|s| s.matching(&filter));
        self.method.filter(session, matching, self.filters.checks)
    }

    /// How many entries of the queue each choice of its type and file filters would show.
    pub fn facets(&self, session: RwSignal<Session>) -> Facets {
        self.method
            .facets(session, &self.filter(), self.filters.checks)
    }

    /// Shows entry `index`: in the queue as filtered, else after clearing the filters.
    fn show(&self, state: AppState, index: usize) {
        if !self.items_untracked(state).contains(&index) {
            self.filters.reset();
        }
        self.current.set(Some(index));
        self.form.set(Form::None);
        self.error.set(None);
        self.refocus();
    }

    /// The current entry if it is in `items`, else the first.
    fn current_in(&self, items: &[usize]) -> Option<usize> {
        let current = self.current.get_untracked();
        current
            .filter(|c| items.contains(c))
            .or_else(|| items.first().copied())
    }

    /// Moves `by` items along the queue.
    fn step(&self, state: AppState, by: isize) {
        let items = self.items_untracked(state);
        let Some(current) = self.current_in(&items) else {
            return;
        };
        let at = items.iter().position(|i| *i == current).unwrap_or(0) as isize;
        let to = (at + by).clamp(0, items.len() as isize - 1) as usize;
        self.current.set(Some(items[to]));
        self.form.set(Form::None);
        self.error.set(None);
    }

    fn items_untracked(&self, state: AppState) -> Vec<usize> {
        untrack(|| self.items(state.session))
    }

    /// Records `decision` on the current item, saves it, and moves to the next one.
    fn decide(&self, state: AppState, decision: Decision) {
        let items = self.items_untracked(state);
        let Some(current) = self.current_in(&items) else {
            return;
        };
        let at = items.iter().position(|i| *i == current).unwrap_or(0);
        let next = items.get(at + 1).copied();
        let mut changed = false;
        state
            .session
            .update(|s| changed = s.decide(current, Some(decision)));
        if changed {
            state.decisions_changed(&[current]);
        }
        self.form.set(Form::None);
        self.error.set(None);
        let after = self.items_untracked(state);
        self.current.set(
            next.filter(|n| after.contains(n))
                .or_else(|| after.contains(&current).then_some(current))
                .or_else(|| after.get(at.min(after.len().saturating_sub(1))).copied()),
        );
        self.refocus();
    }

    pub fn accept(&self, state: AppState) {
        self.decide(state, Decision::Accepted);
    }

    pub fn reject(&self, state: AppState, reason: &str) {
        self.decide(state, Decision::rejected(reason));
    }

    /// Saves the edited goal of the current item.
    pub fn save_edit(&self, state: AppState, goal: &str) {
        let items = self.items_untracked(state);
        let Some(current) = self.current_in(&items) else {
            return;
        };
        let model = state
            .session
            .with_untracked(|s| s.accepted(current).map(|a| a.model_goal.to_owned()));
        let Some(model) = model else { return };
        match Decision::edited(goal, &model) {
            Ok(decision) => self.decide(state, decision),
            Err(e) => self.error.set(Some(e)),
        }
    }

    /// Takes back the last decision or bulk action, and shows (the first of) what it changed.
    pub fn undo(&self, state: AppState) {
        let mut changed = None;
        state.session.update(|s| changed = s.review.undo());
        if let Some(changed) = changed {
            state.decisions_changed(&changed);
            if let Some(first) = changed.first() {
                self.current.set(Some(*first));
            }
            self.form.set(Form::None);
            self.error.set(None);
            self.refocus();
        }
    }

    /// Asks the second judge, with one call to its endpoint (the relabeling one when it has
    /// none of its own) and the templates of the settings, about the edited goal of entry
    /// `index`, and records its verdict with the edit.
    pub fn rejudge(&self, state: AppState, index: usize) {
        let goal = state.session.with_untracked(|s| {
            s.decision(index)
                .and_then(Decision::goal)
                .map(str::to_owned)
        });
        let Some(goal) = goal else { return };
        let prefs = match state.prefs() {
            Ok(p) => p,
            Err(_) => return self.error.set(Some("Fix the settings first.".into())),
        };
        if let Some(reason) = state.templates.blocker(&prefs) {
            return self
                .error
                .set(Some(format!("The judge cannot be asked: {reason}.")));
        }
        let Some(trajectory) = state
            .session
            .with_untracked(|s| s.entries.get(index).map(|e| e.trajectory()))
        else {
            return;
        };
        let queue = *self;
        // The second judge's own endpoint and key when it has one, and the templates in use.
        let (url, key) = match prefs.judge_endpoint() {
            Some(url) => (url, state.judge_api_key.get_untracked()),
            None => (prefs.base_url.clone(), state.api_key.get_untracked()),
        };
        queue.judging.set(Some(index));
        queue.error.set(None);
        leptos::task::spawn_local(async move {
            let verdict = match ask_judge(prefs, trajectory, goal.clone(), url, key).await {
                Ok(verdict) => verdict,
                Err(e) => {
                    queue
                        .error
                        .set(Some(format!("The judge was not asked: {e}.")));
                    queue.judging.set(None);
                    return;
                }
            };
            let mut changed = false;
            state
                .session
                .update(|s| changed = s.review.set_judged(index, &goal, verdict));
            if changed {
                state.decisions_changed(&[index]);
            }
            queue.judging.set(None);
            queue.refocus();
        });
    }

    /// Counts what `bulk` would decide over the queue's filter, to confirm first.
    pub fn propose(&self, state: AppState, bulk: Bulk) {
        let items = self.items_untracked(state);
        let targets = state
            .session
            .with_untracked(|s| s.bulk_targets(&items, bulk));
        self.bulk.set(Some(PendingBulk { bulk, targets }));
        browser::focus_soon("[data-testid=bulk-confirm]".into());
    }

    /// Applies the confirmed bulk action, as one undo step.
    pub fn confirm_bulk(&self, state: AppState) {
        let Some(pending) = self.bulk.get_untracked() else {
            return;
        };
        let mut changed = Vec::new();
        state.session.update(|s| {
            changed = s.review.apply(
                pending
                    .targets
                    .iter()
                    .map(|i| (*i, Some(pending.bulk.decision())))
                    .collect(),
            )
        });
        state.decisions_changed(&changed);
        self.bulk.set(None);
        self.refocus();
    }

    pub fn cancel_bulk(&self) {
        self.bulk.set(None);
        self.refocus();
    }

    /// Opens the reject or edit form of the current item.
    fn open_form(&self, state: AppState, form: Form) {
        let items = self.items_untracked(state);
        if self.current_in(&items).is_none() {
            return;
        }
        let field = match form {
            Form::Edit(_) => "[data-testid=review-edit-input]",
            _ => "[data-testid=review-reason]",
        };
        self.form.set(form);
        browser::focus_soon(field.into());
    }

    /// Closes a form and brings focus back to the card.
    fn close_form(&self) {
        self.form.set(Form::None);
        self.error.set(None);
        self.refocus();
    }

    fn refocus(&self) {
        browser::focus_soon(CARD.into());
    }

    /// The queue's keys, on the card and the list (not in a text field).
    fn key(&self, state: AppState, ev: &web_sys::KeyboardEvent) {
        if ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        let in_field = ev
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
            .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
        if in_field {
            return;
        }
        let handled = match ev.key().as_str() {
            "j" | "ArrowDown" => {
                self.step(state, 1);
                true
            }
            "k" | "ArrowUp" => {
                self.step(state, -1);
                true
            }
            "a" => {
                self.accept(state);
                true
            }
            "r" => {
                self.open_form(state, Form::Reject(String::new()));
                true
            }
            "e" => {
                let items = self.items_untracked(state);
                let goal = self.current_in(&items).and_then(|i| {
                    state
                        .session
                        .with_untracked(|s| s.goal(i).map(str::to_owned))
                });
                if let Some(goal) = goal {
                    self.open_form(state, Form::Edit(goal));
                }
                true
            }
            "u" => {
                self.undo(state);
                true
            }
            "Escape" => {
                self.form.set(Form::None);
                self.bulk.set(None);
                true
            }
            _ => false,
        };
        if handled {
            ev.prevent_default();
        }
    }
}

/// The bulk action buttons, and the confirmation with its count.
fn bulk_view(queue: ReviewQueue, state: AppState) -> impl IntoView {
    let confident = Bulk::AcceptConfident { hundredths: 90 };
    view! {
        <div class="buttons bulk" role="group" aria-label="Bulk actions on this filter">
            <button
                data-testid="bulk-reject-fallbacks"
                on:click=move |_| queue.propose(state, Bulk::RejectFallbacks)
            >
                "Reject the fallbacks…"
            </button>
            <button
                data-testid="bulk-accept-confident"
                on:click=move |_| queue.propose(state, confident)
            >
                "Accept c and c2 ≥ 0.9…"
            </button>
        </div>
        {move || {
            queue
                .bulk
                .get()
                .map(|pending| {
                    let n = pending.targets.len();
                    let what = match pending.bulk {
                        Bulk::RejectFallbacks => "Reject",
                        Bulk::AcceptConfident { .. } => "Accept",
                    };
                    let which = match pending.bulk {
                        Bulk::RejectFallbacks => "single-judge fallbacks",
                        Bulk::AcceptConfident { .. } => "samples with c and c2 ≥ 0.9",
                    };
                    let question = format!(
                        "{what} {} unreviewed {which} in this filter? Decisions already made are kept; Undo takes the whole action back.",
                        format_count(n)
                    );
                    view! {
                        <div class="bulk-confirm" role="alertdialog" aria-label="Confirm the bulk action" data-testid="bulk-pending" data-count=n.to_string()>
                            <p>{question}</p>
                            <div class="buttons">
                                <button
                                    class="primary"
                                    data-testid="bulk-confirm"
                                    disabled=n == 0
                                    on:click=move |_| queue.confirm_bulk(state)
                                    on:keydown=move |ev| {
                                        if ev.key() == "Escape" {
                                            queue.cancel_bulk();
                                        }
                                    }
                                >
                                    {format!("{what} {}", format_count(n))}
                                </button>
                                <button data-testid="bulk-cancel" on:click=move |_| queue.cancel_bulk()>
                                    "Cancel"
                                </button>
                            </div>
                        </div>
                    }
                })
        }}
    }
}

/// The form under the goals: the reason of a rejection, or the edited goal. Enter submits
/// (Shift+Enter starts a new line of a goal), Esc closes it.
fn form_view(queue: ReviewQueue, state: AppState) -> impl IntoView {
    let submit = move || match queue.form.get_untracked() {
        Form::Reject(reason) => queue.reject(state, &reason),
        Form::Edit(goal) => queue.save_edit(state, &goal),
        Form::None => {}
    };
    let keys = move |ev: web_sys::KeyboardEvent| match ev.key().as_str() {
        "Escape" => {
            ev.prevent_default();
            queue.close_form();
        }
        "Enter" if !ev.shift_key() => {
            ev.prevent_default();
            submit();
        }
        _ => {}
    };
    // Redrawn when the kind of form changes, not as the reviewer types.
    let kind = Memo::new(move |_| {
        queue.form.with(|f| match f {
            Form::None => 0,
            Form::Reject(_) => 1,
            Form::Edit(_) => 2,
        })
    });
    move || {
        // Read, not only tracked: a memo nobody reads is never computed, so never changes.
        let _ = kind.get();
        let (label, submit_label, testid, field) = match queue.form.get_untracked() {
            Form::None => return None,
            Form::Reject(reason) => (
                "Why reject it? (optional)",
                "Reject (Enter)",
                "review-reject-confirm",
                view! {
                    <input
                        type="text"
                        data-testid="review-reason"
                        prop:value=reason
                        on:input=move |ev| queue.form.set(Form::Reject(event_target_value(&ev)))
                        on:keydown=keys
                    />
                }
                .into_any(),
            ),
            Form::Edit(goal) => (
                "The goal this run achieves (exported instead of the model's)",
                "Save goal (Enter)",
                "review-edit-save",
                view! {
                    <textarea
                        data-testid="review-edit-input"
                        rows="3"
                        prop:value=goal
                        on:input=move |ev| queue.form.set(Form::Edit(event_target_value(&ev)))
                        on:keydown=keys
                    ></textarea>
                }
                .into_any(),
            ),
        };
        Some(view! {
            <form
                class="review-form"
                on:submit=move |ev| {
                    ev.prevent_default();
                    submit();
                }
            >
                <label class="field">
                    <span class="label">{label}</span>
                    {field}
                </label>
                <div class="buttons">
                    <button type="submit" class="primary" data-testid=testid>
                        {submit_label}
                    </button>
                    <button type="button" on:click=move |_| queue.close_form()>
                        "Cancel (Esc)"
                    </button>
                </div>
            </form>
        })
    }
}

/// The second judge on an edited goal: its verdict, or the button that asks for it.
fn rejudge_view(
    queue: ReviewQueue,
    state: AppState,
    index: usize,
    decision: Option<&Decision>,
) -> Option<impl IntoView> {
    let Some(Decision::Edited { judged, .. }) = decision else {
        return None;
    };
    let verdict = judged.as_ref().map(|v| match v {
        JudgeVerdict::Accepted { confidence } => format!(
            "The second judge accepts your goal (c2 {}).",
            format_unit(*confidence)
        ),
        JudgeVerdict::Rejected { reason } => {
            format!("The second judge rejects your goal: {reason}.")
        }
        JudgeVerdict::Unavailable { reason } => format!("No verdict on your goal: {reason}."),
    });
    Some(view! {
        <div class="rejudge">
            {verdict.map(|v| view! { <p data-testid="rejudge-verdict">{v}</p> })}
            <button
                data-testid="review-rejudge"
                disabled=move || queue.judging.get().is_some()
                on:click=move |_| queue.rejudge(state, index)
            >
                {move || if queue.judging.get() == Some(index) {
                    "Asking the judge…"
                } else {
                    "Re-judge the edited goal (1 call)"
                }}
            </button>
        </div>
    })
}

/// What the method's checks say of the goal under review (the core's lines), and the other
/// members of its near-duplicate cluster, each a button that shows it in the queue.
fn checks_view(
    queue: ReviewQueue,
    state: AppState,
    lines: Vec<CheckLine>,
    cluster: Option<ClusterSummary>,
) -> impl IntoView {
    let lines = lines
        .into_iter()
        .map(|l| {
            let hidden = l.badge.is_empty();
            view! {
                <p data-testid=l.testid data-value=l.value>
                    <span class=format!("badge {}", l.kind) hidden=hidden>{l.badge}</span>
                    " "
                    {l.text}
                </p>
            }
        })
        .collect_view();
    let members = cluster
        .map(|c| c.others)
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let index = m.index;
            let label = format!("Show {} in the queue", m.id);
            let kept = if m.kept { "kept · " } else { "" };
            let data_id = m.id.clone();
            view! {
                <li data-testid="cluster-member" data-id=data_id data-kept=m.kept.to_string()>
                    <button
                        type="button"
                        class="small mono"
                        data-testid="cluster-jump"
                        aria-label=label
                        on:click=move |_| queue.show(state, index)
                    >
                        {m.id}
                    </button>
                    <span class="item-goal">{kept} {m.goal}</span>
                </li>
            }
        })
        .collect_view();
    view! {
        <section class="goal-checks" aria-label="Goal checks" data-testid="review-checks">
            {lines}
            <ul class="cluster-members">{members}</ul>
        </section>
    }
}

/// The decision badge of an item.
fn decision_badge(d: Option<&Decision>) -> impl IntoView {
    let kind = d.map_or("unreviewed", |d| d.kind().as_str());
    view! { <span class=format!("badge review-{kind}") data-testid="review-state">{kind}</span> }
}

#[component]
pub fn ReviewSection() -> impl IntoView {
    let state = expect_context::<AppState>();
    let queue = expect_context::<ReviewQueue>();
    let session = state.session;
    let items = Memo::new(move |_| queue.items(session));
    let facets = Memo::new(move |_| queue.facets(session));
    let counts = Memo::new(move |_| session.with(Session::review_counts));
    let current = Memo::new(move |_| {
        let current = queue.current.get();
        items.with(|items| {
            current
                .filter(|c| items.contains(c))
                .or_else(|| items.first().copied())
        })
    });
    // What is shown is where the reviewer is: a filter that hid the item under review moves
    // them to the first one it shows, and they stay there when the filter changes back.
    // (Until the reviewer picks one, the first item is shown, also as a run adds items.)
    Effect::new(move |_| {
        let shown = current.get();
        if shown.is_some()
            && queue
                .current
                .get_untracked()
                .is_some_and(|c| Some(c) != shown)
        {
            queue.current.set(shown);
        }
    });
    let position = move || {
        current
            .get()
            .and_then(|c| items.with(|items| items.iter().position(|i| *i == c)))
    };
    let list = move || {
        let pos = position().unwrap_or(0);
        let start = pos.saturating_sub(LIST_WINDOW / 2);
        let shown: Vec<(usize, String, Option<Decision>, bool)> = items.with(|items| {
            session.with(|s| {
                items
                    .iter()
                    .skip(start)
                    .take(LIST_WINDOW)
                    .map(|&i| {
                        let fallback = s.accepted(i).is_some_and(|a| {
                            a.judges == crate::stages::relabel::Judges::SingleJudgeFallback
                        });
                        (
                            i,
                            s.goal(i).unwrap_or_default().to_owned(),
                            s.decision(i).cloned(),
                            fallback,
                        )
                    })
                    .collect()
            })
        });
        let ids: Vec<String> = session.with(|s| {
            shown
                .iter()
                .map(|(i, ..)| s.entries[*i].id().to_owned())
                .collect()
        });
        shown
            .into_iter()
            .zip(ids)
            .map(|((i, goal, decision, fallback), id)| {
                let selected = move || current.get() == Some(i);
                let data_id = id.clone();
                view! {
                    <li
                        role="option"
                        id=format!("review-item-{i}")
                        data-testid="review-item"
                        data-id=data_id
                        data-review=decision.as_ref().map_or("unreviewed", |d| d.kind().as_str())
                        aria-selected=move || selected().to_string()
                        class:current=selected
                        on:click=move |_| {
                            queue.current.set(Some(i));
                            queue.form.set(Form::None);
                            queue.refocus();
                        }
                    >
                        <span class="mono item-id">{id}</span>
                        {decision_badge(decision.as_ref())}
                        {fallback.then(|| view! { <span class="badge judges fallback">"fallback"</span> })}
                        <span class="item-goal">{goal}</span>
                    </li>
                }
            })
            .collect_view()
    };
    let card = move || {
        let Some(index) = current.get() else {
            return view! {
                <p class="muted empty" data-testid="review-empty">
                    {move || if counts.get().reviewable == 0 {
                        "Nothing to review yet: run the relabeling (section 4), and every trajectory it accepts comes here."
                    } else {
                        "No accepted trajectory matches these filters: change them to see more."
                    }}
                </p>
            }
            .into_any();
        };
        let Some(parts) = session.with(|s| detail_parts(s, index)) else {
            return ().into_any();
        };
        let e = parts.entry.clone();
        let (lines, cluster) = session.with(|s| {
            let cluster = queue
                .method
                .with_clusters(|c| c.and_then(|c| s.cluster_summary(index, c)));
            (queue.method.of(s, index).lines(cluster.as_ref()), cluster)
        });
        let total = items.with(Vec::len);
        let at = position().map_or(0, |p| p + 1);
        view! {
            <div class="card-head">
                <h3 class="mono" data-testid="review-id">{e.id().to_owned()}</h3>
                <span class="muted">{format!("{}:{}", e.source.file, e.source.line)}</span>
                {decision_badge(parts.decision.as_ref())}
                <span class="muted position">{format!("{} of {}", format_count(at), format_count(total))}</span>
            </div>
            {goals_view(&parts)}
            {checks_view(queue, state, lines, cluster)}
            {parts.verdict.as_ref().map(verdict_view)}
            {parts.decision.as_ref().and_then(|d| match d {
                Decision::Rejected { reason } if !reason.is_empty() => Some(view! {
                    <p class="muted" data-testid="review-reason-shown">{format!("Rejected: {reason}")}</p>
                }),
                _ => None,
            })}
            <div class="buttons actions" role="group" aria-label="Decision">
                <button class="primary" data-testid="review-accept" aria-keyshortcuts="a" on:click=move |_| queue.accept(state)>
                    "Accept " <kbd>"a"</kbd>
                </button>
                <button data-testid="review-reject" aria-keyshortcuts="r" on:click=move |_| queue.open_form(state, Form::Reject(String::new()))>
                    "Reject… " <kbd>"r"</kbd>
                </button>
                <button
                    data-testid="review-edit"
                    aria-keyshortcuts="e"
                    on:click=move |_| {
                        if let Some(goal) = session.with_untracked(|s| s.goal(index).map(str::to_owned)) {
                            queue.open_form(state, Form::Edit(goal));
                        }
                    }
                >
                    "Edit goal… " <kbd>"e"</kbd>
                </button>
                <button
                    data-testid="review-undo"
                    aria-keyshortcuts="u"
                    disabled=move || session.with(|s| !s.review.can_undo())
                    on:click=move |_| queue.undo(state)
                >
                    "Undo " <kbd>"u"</kbd>
                </button>
            </div>
            {rejudge_view(queue, state, index, parts.decision.as_ref())}
            {form_view(queue, state)}
            {move || queue.error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {steps_view(&parts.trajectory, false)}
            {analysis_section(&e, &parts.rules)}
            {extraction_section(&e, &parts.rules)}
        }
        .into_any()
    };
    view! {
        <section class="card review" aria-labelledby="review-title" data-testid="review-section">
            <div class="review-top">
                <h2 id="review-title">"Review queue"</h2>
                <p class="review-progress" data-testid="review-progress" aria-live="polite">
                    {move || counts.get().summary()}
                    {move || {
                        let c: ReviewCounts = counts.get();
                        (c.reviewed() > 0).then(|| format!(
                            " · {} accepted, {} edited, {} rejected",
                            format_count(c.accepted),
                            format_count(c.edited),
                            format_count(c.rejected)
                        ))
                    }}
                </p>
                <progress
                    aria-label="Reviewed"
                    max=move || counts.get().reviewable.max(1).to_string()
                    value=move || counts.get().reviewed().to_string()
                ></progress>
            </div>
            <p class="muted">
                "Look at every goal before it becomes training data. Keys: "
                <kbd>"j"</kbd>" / "<kbd>"k"</kbd>" or the arrows move, "
                <kbd>"a"</kbd>" accepts, "<kbd>"r"</kbd>" rejects, "<kbd>"e"</kbd>
                " edits the goal, "<kbd>"u"</kbd>" undoes, "<kbd>"Esc"</kbd>" closes a form."
            </p>
            <div class="filters review-filters">
                <ReviewFilters filters=queue.filters />
                {check_filter("review-filter-checks", queue.filters.checks)}
                {type_filter(queue.filters, facets)}
                {file_filter(queue.filters, facets)}
                <TextFilter filters=queue.filters />
                {clear_button(queue.filters)}
            </div>
            <p class="muted count" data-testid="review-count">
                {move || format!("{} in this filter", format_count(items.with(Vec::len)))}
            </p>
            {bulk_view(queue, state)}
            <div class="review-body">
                <Show when=move || items.with(|i| !i.is_empty())>
                    <ol
                        class="review-list"
                        role="listbox"
                        tabindex="0"
                        aria-label="Review queue"
                        data-testid="review-list"
                        aria-activedescendant=move || current.get().map(|i| format!("review-item-{i}"))
                        on:keydown=move |ev| queue.key(state, &ev)
                    >
                        {list}
                    </ol>
                </Show>
                <article
                    class="review-card"
                    data-testid="review-card"
                    tabindex="0"
                    aria-label="Trajectory under review"
                    aria-keyshortcuts="j k a r e u"
                    on:keydown=move |ev| queue.key(state, &ev)
                >
                    {card}
                </article>
            </div>
        </section>
    }
}
