//! The running state: the run and its progress, its pause, the estimate before it and the
//! confirmation it may ask for. Its own context ([`RunState`]); the session, storage and
//! settings it works on are the page's ([`AppState`], passed in).

use super::browser;
use super::demand::{on_demand, Unloaded};
use super::state::AppState;
use crate::charts::{Sample, Series};
use crate::client::{self, CancelToken, HttpClient};
use crate::estimate::{self, Basis, Deviation, Estimate, Pace, PromptSizes, RoundTrips};
use crate::llm::diagnose::Probe;
use crate::llm::ExchangeLog;
use crate::llm::{
    AdaptiveClient, AnyClient, CachingClient, ChatClient, ChatError, ChatRequest, ChatResponse,
    RetryPolicy, RetryingClient, RunGuard, SentCounts, Templates,
};
use crate::pipeline::{
    run_controlled_judged, PauseCause, RunControl, RunSetup, Settings, Totals, Verdict,
};
use crate::prefs::Prefs;
use crate::progress::{self, format_count, Progress};
use crate::session::Session;
use crate::stages::detect::rules::Lexicon;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// How long the page may work between yields to the browser, in milliseconds.
const SLICE_MS: f64 = 40.0;

/// How long the page measures prompts for an estimate before it lets the browser draw, in
/// milliseconds, and how many trajectories it measures between looks at the clock.
const MEASURE_MS: f64 = 12.0;
const MEASURE_BATCH: usize = 8;

/// The trajectories among those an estimate of `items` renders ([`estimate::to_measure`])
/// whose prompts `sizes` has not measured yet.
fn unmeasured(session: &Session, sizes: &mut PromptSizes, items: &[usize]) -> Vec<usize> {
    // Forgets the sizes of a session that shrank, as measuring would.
    sizes.forget_other(session);
    estimate::to_measure(session, items)
        .into_iter()
        .filter(|&i| i < session.len() && sizes.get(i).is_none())
        .collect()
}

on_demand! {
/// Measures the prompts of `items` for the estimate, a few milliseconds at a time. Rendering
/// them takes the templates (minijinja), loaded on demand.
async fn measure_prompts(run: RunState, app: AppState, items: Vec<usize>) -> () {
    let mut rest = items.as_slice();
    while !rest.is_empty() {
        browser::sleep(0).await;
        let started = browser::now_ms();
        while !rest.is_empty() && browser::now_ms() - started < MEASURE_MS {
            let (some, more) = rest.split_at(rest.len().min(MEASURE_BATCH));
            app.session.with_untracked(|s| {
                run.sizes.update_value(|sizes| sizes.ensure(s, some));
            });
            rest = more;
        }
    }
}
}

on_demand! {
/// Runs `control` with a client chain built from `prefs` (see [`RunState::launch`]): the
/// pipeline, its clients and the templates, loaded on demand.
async fn launch_engine(run: RunState, app: AppState, prefs: Prefs, control: RunControl) -> () {
    run.launch_now(app, prefs, control)
}
}

/// How often a paused run asks the endpoint whether it answers again, in milliseconds.
const RECHECK_MS: i32 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Running,
    Done,
    Stopped,
    /// The endpoint went away, or its replies could not be read: the run waits for Resume.
    Paused,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Running => "running",
            Phase::Done => "done",
            Phase::Stopped => "stopped",
            Phase::Paused => "paused",
        }
    }
}

/// Why a run paused.
#[derive(Debug, Clone, PartialEq)]
pub struct Pause {
    pub cause: PauseCause,
    /// Trajectories put back to run again.
    pub put_back: usize,
}

impl Pause {
    /// What the run panel says.
    pub fn message(&self) -> String {
        match &self.cause {
            PauseCause::EndpointAway { .. } => format!(
                "Paused: {}. {} put back to run again; none was recorded as failed. {}",
                self.cause,
                match self.put_back {
                    1 => "1 trajectory was".to_string(),
                    n => format!("{} trajectories were", format_count(n)),
                },
                self.cause.advice()
            ),
            PauseCause::Unreadable { .. } => {
                format!("Paused: {}. {}", self.cause, self.cause.advice())
            }
        }
    }
}

/// The current or last run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    pub phase: Phase,
    /// What was run: "Run", "Pilot: the first 10", ...
    pub label: String,
    pub done: usize,
    pub total: usize,
    /// Totals of the results the run kept from before.
    pub base: Totals,
    /// Totals of this run's results.
    pub this_run: Totals,
    pub started_ms: f64,
    /// The last time the progress was refreshed (or the end of the run).
    pub now_ms: f64,
    /// Set while the run is paused.
    pub pause: Option<Pause>,
    /// The estimate the run started with.
    pub estimate: Option<Estimate>,
    /// The requests this run sent (retries included), counted as they went out.
    pub sent: SentCounts,
    /// Trajectories a stop left unstarted.
    pub not_started: usize,
    /// Trajectories running at once (for the time per call).
    pub lanes: usize,
    /// Requests sent and tokens received over the time of the run.
    pub series: Series,
}

impl Default for RunView {
    fn default() -> Self {
        RunView {
            phase: Phase::Idle,
            label: String::new(),
            done: 0,
            total: 0,
            base: Totals::default(),
            this_run: Totals::default(),
            started_ms: 0.0,
            now_ms: 0.0,
            pause: None,
            estimate: None,
            sent: SentCounts::default(),
            not_started: 0,
            lanes: 1,
            series: Series::default(),
        }
    }
}

impl RunView {
    pub fn progress(&self) -> Progress {
        let mut totals = self.base.clone();
        progress::merge_totals(&mut totals, &self.this_run);
        // Done means decided: a trajectory a stop cancelled is counted apart.
        let finished = self.done.saturating_sub(self.this_run.cancelled);
        let mut p = Progress::new(finished, self.total, &totals, self.started_ms, self.now_ms);
        // Retries as they happen, not when a trajectory ends.
        p.retries = p
            .retries
            .max(self.base.retries() + self.sent.retries as u32);
        p
    }

    pub fn elapsed_ms(&self) -> Option<f64> {
        (self.phase != Phase::Idle).then(|| (self.now_ms - self.started_ms).max(0.0))
    }

    /// How this run compared with its estimate.
    pub fn deviation(&self) -> Option<Deviation> {
        self.estimate
            .as_ref()
            .map(|e| Deviation::new(e, &self.this_run.usage))
    }

    /// Takes a reading of the requests sent and the tokens received for the chart.
    pub fn sample(&mut self) {
        let usage = self.this_run.usage.total();
        self.series.push(Sample {
            ms: (self.now_ms - self.started_ms).max(0.0),
            calls: self.sent.sent,
            tokens: usage.prompt_tokens + usage.completion_tokens,
        });
    }

    /// How fast this run went at its concurrency, with the server's time for a request on its
    /// own (`single_ms`, from the round trips).
    pub fn pace(&self, single_ms: Option<f64>) -> Option<Pace> {
        let elapsed = self.elapsed_ms()?;
        (self.sent.sent >= 4 && elapsed > 0.0).then(|| Pace {
            lanes: self.lanes,
            ms_between: elapsed / self.sent.sent as f64,
            single_ms,
        })
    }
}

/// A run that waits for the user to confirm its estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRun {
    pub items: Vec<usize>,
    pub label: String,
    pub estimate: Estimate,
}

/// What the page found when it asked a paused run's endpoint again.
#[derive(Debug, Clone, PartialEq)]
pub struct Recheck {
    pub answering: bool,
    pub at_ms: f64,
    pub detail: String,
}

/// What a run sends through, over `base` (a queue of endpoints): retries sharing the run's
/// `guard` and stopped by `token`, the exchange log keyed by `log_url`, then the session's
/// saving.
fn stack<C: ChatClient>(
    app: AppState,
    token: &CancelToken,
    guard: &RunGuard,
    log: &ExchangeLog,
    base: C,
    log_url: &str,
    seed: u64,
) -> Saving<CachingClient<RetryingClient<C, browser::RetrySleep>>> {
    let retrying = RetryingClient::new(
        base,
        RetryPolicy::default(),
        browser::RetrySleep(token.clone(), guard.clone()),
    )
    .with_seed(seed)
    .with_guard(guard.clone());
    Saving {
        inner: CachingClient::new(retrying, log.clone(), log_url),
        app,
    }
}

/// Saves the exchanges the log took in before their replies are used: the client right
/// outside [`CachingClient`], so that a reload loses no answer the page has seen.
struct Saving<C> {
    inner: C,
    app: AppState,
}

impl<C: ChatClient> ChatClient for Saving<C> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
        let result = self.inner.complete(request).await;
        if let Some(write) = self.app.save_exchanges() {
            if let Err(e) = write.await {
                self.app.storage_failed(e);
            }
        }
        result
    }
}

/// Takes the round trip of every request to the endpoint, for the next estimate's time.
struct Timed<C> {
    inner: C,
    trips: StoredValue<RoundTrips, LocalStorage>,
}

impl<C: ChatClient> ChatClient for Timed<C> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
        let trip = self.trips.try_update_value(|t| t.begin(browser::now_ms()));
        let result = self.inner.complete(request).await;
        if let Some(trip) = trip {
            let answered = result.is_ok();
            self.trips
                .update_value(|t| t.end(trip, browser::now_ms(), answered));
        }
        result
    }
}

/// The templates and lexicon a run uses (the settings' own, edited or built-in).
struct Method {
    templates: Templates,
    lexicon: Lexicon,
}

/// The running state's signals.
#[derive(Clone, Copy)]
pub struct RunState {
    pub run: RwSignal<RunView>,
    cancel: StoredValue<Option<CancelToken>, LocalStorage>,
    /// The requests of the run going on (or paused).
    guard: StoredValue<RunGuard, LocalStorage>,
    /// A paused run's control, kept for Resume.
    paused_run: StoredValue<Option<RunControl>, LocalStorage>,
    sizes: StoredValue<PromptSizes, LocalStorage>,
    /// Bumped each time the prompts an estimate needs have been measured in the background.
    measured: RwSignal<u64>,
    /// Whether prompts are being measured in the background.
    measuring: StoredValue<bool>,
    /// How fast the last run went.
    pace: StoredValue<Option<Pace>>,
    /// The round trips of the run going on.
    trips: StoredValue<RoundTrips, LocalStorage>,
    /// A run that asks for confirmation first.
    pub pending: RwSignal<Option<PendingRun>>,
    /// "Reset results" asked, and waits for an answer.
    pub confirm_reset: RwSignal<bool>,
    /// While paused: whether the endpoint answers again.
    pub recheck: RwSignal<Option<Recheck>>,
    /// N of "Run the first N", as typed.
    pub pilot_size: RwSignal<String>,
}

impl RunState {
    pub fn new() -> Self {
        RunState {
            run: RwSignal::new(RunView::default()),
            cancel: StoredValue::new_local(None),
            guard: StoredValue::new_local(RunGuard::new()),
            paused_run: StoredValue::new_local(None),
            sizes: StoredValue::new_local(PromptSizes::new()),
            measured: RwSignal::new(0),
            measuring: StoredValue::new(false),
            pace: StoredValue::new(None),
            trips: StoredValue::new_local(RoundTrips::default()),
            pending: RwSignal::new(None),
            confirm_reset: RwSignal::new(false),
            recheck: RwSignal::new(None),
            pilot_size: RwSignal::new("10".into()),
        }
    }

    pub fn is_busy(&self) -> bool {
        self.run.with_untracked(|r| r.phase == Phase::Running)
    }

    /// Forgets the run (a new session, or one restored), keeping `base` as the session's
    /// totals.
    /// Shows a restored session as it stands until a run starts: its settled results over the
    /// trajectories a run can take (what the offer to resume counted as done).
    pub fn restored_view(&self, session: &crate::session::Session) {
        let base = progress::settled_totals(session);
        let done = base.done;
        self.reset_view(base);
        self.run.update(|r| {
            r.done = done;
            r.total = session.failure_count();
        });
    }

    pub fn reset_view(&self, base: Totals) {
        self.paused_run.set_value(None);
        self.pending.set(None);
        self.recheck.set(None);
        self.run.set(RunView {
            base,
            ..RunView::default()
        });
    }

    /// Why Run cannot start now, if it cannot.
    pub fn run_blocker(&self, app: AppState) -> Option<String> {
        let prefs = match app.prefs() {
            Ok(p) => p,
            Err(_) => return Some("Fix the settings above first.".into()),
        };
        if let Some(reason) = app.templates.blocker(&prefs) {
            return Some(format!("Cannot run: {reason}."));
        }
        if app.loading.with(Option::is_some) {
            return Some("Wait until the files are read.".into());
        }
        let (empty, nothing) = app.session.with(|s| (s.is_empty(), s.to_run().is_empty()));
        if empty {
            Some("Load trajectories first.".into())
        } else if nothing {
            Some("Every trajectory has a result: Reset results to run again.".into())
        } else {
            None
        }
    }

    /// What "Run" would run: everything without a result (or failed, or cancelled).
    pub fn all_items(&self, app: AppState) -> Vec<usize> {
        app.session.with(Session::to_run)
    }

    /// The pilot size typed, when it is a whole number of at least 1.
    pub fn pilot_n(&self) -> Option<usize> {
        self.pilot_size
            .with(|s| s.trim().parse::<usize>().ok())
            .filter(|n| *n >= 1)
    }

    /// What "Run the first N" would run.
    pub fn first_items(&self, app: AppState) -> Vec<usize> {
        let mut items = self.all_items(app);
        items.truncate(self.pilot_n().unwrap_or(0));
        items
    }

    /// What "Run the filtered rows" would run: the rows the results filter shows that have no
    /// result yet.
    pub fn filtered_items(&self, app: AppState) -> Vec<usize> {
        let shown: std::collections::HashSet<usize> = app.matching().into_iter().collect();
        self.all_items(app)
            .into_iter()
            .filter(|i| shown.contains(i))
            .collect()
    }

    /// The estimate for running `items` with the settings as typed (`None` while they are
    /// invalid or files are loading), from the prompts measured so far ([`RunState::measured`]).
    pub fn estimate(&self, app: AppState, items: &[usize]) -> Option<Estimate> {
        let prefs = app.prefs().ok()?;
        if app.loading.with(Option::is_some) {
            return None;
        }
        let settings = prefs.to_pipeline_settings();
        let basis = Basis {
            settings: &settings,
            prices: prefs.prices(),
            latency_ms: app.latency_ms.get(),
        };
        let pace = self.pace.get_value();
        app.session.with(|s| {
            self.sizes.try_update_value(|sizes| {
                sizes.forget_other(s);
                estimate::estimate_measured(s, sizes, items, basis, pace)
            })
        })
    }

    /// The estimate the page shows for `items` (tracked): as [`RunState::estimate`], once the
    /// prompts it renders have been measured. Rendering them (up to [`estimate::SAMPLE`]
    /// trajectories, four prompts each) takes longer than a frame for a large file, so the
    /// trajectories not measured yet are measured in the background, a few milliseconds at a
    /// time, and the estimate shows when they are all measured.
    pub fn estimate_shown(&self, app: AppState, items: &[usize]) -> Option<Estimate> {
        self.measured.track();
        if app.loading.with(Option::is_some) {
            return None;
        }
        let missing = app.session.with(|s| self.unmeasured(s, items));
        if missing.is_empty() {
            return self.estimate(app, items);
        }
        self.measure(app, missing);
        None
    }

    /// What of `session` an estimate of `items` needs measured and is not ([`unmeasured`]).
    fn unmeasured(&self, session: &Session, items: &[usize]) -> Vec<usize> {
        self.sizes
            .try_update_value(|sizes| unmeasured(session, sizes, items))
            .unwrap_or_default()
    }

    /// Measures the prompts of `items` in the background, then tells the estimate.
    fn measure(&self, app: AppState, items: Vec<usize>) {
        if self.measuring.get_value() {
            return;
        }
        self.measuring.set_value(true);
        let this = *self;
        spawn_local(async move {
            let done = measure_prompts(this, app, items).await;
            this.measuring.set_value(false);
            match done {
                Ok(()) => this.measured.update(|n| *n += 1),
                // The estimate waits; the next look at it tries again.
                Err(e) => app.notice.set(Some(format!("No estimate: {e}."))),
            }
        });
    }

    /// Measures what an estimate of `items` needs and has not measured yet; `false` (said on
    /// the page) when the module that measures could not be loaded.
    async fn measured(&self, app: AppState, items: &[usize]) -> bool {
        let missing = app.session.with_untracked(|s| self.unmeasured(s, items));
        if missing.is_empty() {
            return true;
        }
        let done = measure_prompts(*self, app, missing).await;
        if let Err(e) = done {
            app.notice.set(Some(format!("Nothing was started: {e}.")));
        }
        done.is_ok()
    }

    /// "Run", "Run the first N", "Run the filtered rows": starts `items`, or asks first when
    /// the run is large and costs money.
    pub fn request(&self, app: AppState, items: Vec<usize>, label: String) {
        let this = *self;
        spawn_local(async move {
            this.request_measured(app, items, label).await;
        });
    }

    /// As [`RunState::request`], once the prompts its estimate needs are measured.
    async fn request_measured(&self, app: AppState, items: Vec<usize>, label: String) {
        if self.is_busy() || self.run_blocker(app).is_some() || items.is_empty() {
            return;
        }
        if !self.measured(app, &items).await || self.is_busy() || self.run_blocker(app).is_some() {
            return;
        }
        let Ok(prefs) = app.prefs() else { return };
        let Some(estimate) = self.estimate(app, &items) else {
            return;
        };
        if estimate.needs_confirmation(prefs.confirm_above) {
            self.pending.set(Some(PendingRun {
                items,
                label,
                estimate,
            }));
        } else {
            self.start(app, items, label, Some(estimate));
        }
    }

    /// "Start the run" of the confirmation.
    pub fn confirm(&self, app: AppState) {
        if let Some(p) = self.pending.try_update(Option::take).flatten() {
            self.start(app, p.items, p.label, Some(p.estimate));
        }
    }

    /// Goes on with everything not done (a run a reload interrupted), asking first as Run does
    /// when what remains is large and costs money. Returns whether it waits for that answer.
    pub async fn start_run(&self, app: AppState) -> bool {
        let items = self.all_items(app);
        self.request_measured(app, items, "Run, resumed after the reload".into())
            .await;
        self.pending.with_untracked(Option::is_some)
    }

    /// How many results "Retry failed" would run again.
    pub fn retry_failed_count(&self, app: AppState) -> usize {
        app.session.with(|s| s.retry_failed().len())
    }

    /// "Retry failed": runs again only the trajectories whose result ended in an error of the
    /// endpoint or of the way to it.
    pub fn retry_failed(&self, app: AppState) {
        let blocked = move |this: &Self| {
            this.is_busy()
                || app
                    .prefs()
                    .map_or(true, |p| app.templates.blocker(&p).is_some())
        };
        if blocked(self) {
            return;
        }
        let items = app.session.with_untracked(Session::retry_failed);
        if items.is_empty() {
            return;
        }
        let this = *self;
        spawn_local(async move {
            if this.measured(app, &items).await && !blocked(&this) {
                let estimate = this.estimate(app, &items);
                this.start(app, items, "Retry failed".into(), estimate);
            }
        });
    }

    /// A fresh run over `items` (session indexes).
    fn start(&self, app: AppState, items: Vec<usize>, label: String, estimate: Option<Estimate>) {
        let Ok(prefs) = app.prefs() else { return };
        let base = app
            .session
            .with_untracked(|s| progress::totals_except(s, &items));
        let now = browser::now_ms();
        let concurrency = prefs.to_pipeline_settings().concurrency;
        self.paused_run.set_value(None);
        self.pending.set(None);
        self.recheck.set(None);
        let guard = RunGuard::new();
        self.guard.set_value(guard.clone());
        self.trips.set_value(RoundTrips::default());
        self.run.set(RunView {
            phase: Phase::Running,
            label,
            done: 0,
            total: items.len(),
            base,
            started_ms: now,
            now_ms: now,
            estimate,
            lanes: concurrency
                .clamp(1, estimate::BROWSER_CONNECTIONS)
                .min(items.len().max(1)),
            ..RunView::default()
        });
        // The time chart starts at zero.
        self.run.update(RunView::sample);
        app.begin_saving();
        let used_key = app.has_key();
        let used_judge_key = app.has_judge_key(&prefs);
        app.with_journal(|j| {
            j.set_prefs(prefs.clone(), used_key, used_judge_key);
            j.set_running(true);
        });
        app.save_session();
        let control = RunControl::new(items, concurrency).with_guard(guard);
        self.launch(app, prefs, control);
    }

    /// "Resume": continues a paused run with what it put back, then what it never started.
    pub fn resume(&self, app: AppState) {
        if self.run.with_untracked(|r| r.phase != Phase::Paused) {
            return;
        }
        let Ok(prefs) = app.prefs() else { return };
        let Some(mut control) = self.paused_run.try_update_value(Option::take).flatten() else {
            return;
        };
        control.resume();
        control.set_concurrency(prefs.to_pipeline_settings().concurrency);
        self.recheck.set(None);
        self.run.update(|r| {
            r.phase = Phase::Running;
            r.pause = None;
            r.now_ms = browser::now_ms();
        });
        self.launch(app, prefs, control);
    }

    /// Runs `control` to its end, its pause or a stop with a client chain built from `prefs`:
    /// the page's request queue, retries (sharing the run's guard), the exchange log, then the
    /// structured-mode fallback. The queue is over the base URL and its replicas, or over the
    /// model loaded in this page, which answers one request at a time.
    fn launch(&self, app: AppState, prefs: Prefs, control: RunControl) {
        let this = *self;
        spawn_local(async move {
            if let Err(e) = launch_engine(this, app, prefs, control).await {
                this.not_launched(app, e);
            }
        });
    }

    /// The run could not start: its module could not be loaded. Nothing was sent, and every
    /// trajectory it was to run is still to run.
    fn not_launched(&self, app: AppState, e: Unloaded) {
        self.paused_run.set_value(None);
        self.run.update(|r| {
            r.phase = Phase::Stopped;
            r.pause = None;
            r.not_started = r.total.saturating_sub(r.done);
            r.now_ms = browser::now_ms();
        });
        app.with_journal(|j| j.set_running(false));
        app.save_session();
        app.notice.set(Some(format!("The run did not start: {e}.")));
    }

    /// What [`RunState::launch`] does, once the pipeline's module is loaded.
    fn launch_now(&self, app: AppState, prefs: Prefs, control: RunControl) {
        let token = CancelToken::new();
        self.cancel.set_value(Some(token.clone()));
        if crate::inpage::model_of(&prefs.base_url).is_some() {
            let page = crate::inpage::engine::InPageClient::new(
                &prefs.base_url,
                prefs.timeout_ms(),
                token.clone(),
            );
            let queued = client::queued(vec![(page, 1)], &token);
            return self.launch_with(app, prefs, control, token, AnyClient::new(queued));
        }
        let http = client::pooled(
            &prefs.endpoints(),
            &app.api_key.get_untracked(),
            prefs.timeout_ms(),
            &token,
        );
        self.launch_with(app, prefs, control, token, AnyClient::new(http));
    }

    /// Every chain is erased to [`AnyClient`], so the web build holds one copy of the
    /// pipeline whatever the endpoint, the judge and the structured-output mode.
    fn launch_with(
        &self,
        app: AppState,
        prefs: Prefs,
        mut control: RunControl,
        token: CancelToken,
        base: AnyClient<'static>,
    ) {
        let this = *self;
        let guard = self.guard.get_value();
        let log = app.exchanges.get_value();
        let seed = browser::now_ms().to_bits();
        let base = AnyClient::new(Timed {
            inner: base,
            trips: self.trips,
        });
        let client = stack(app, &token, &guard, &log, base, &prefs.base_url, seed);
        // The second judge on its own endpoint: its own key, retries and queue (with the
        // judge's concurrency as its limit); its answers go to the same exchange log (keyed by
        // its base URL).
        let judge = prefs.judge_replica().map(|replica| {
            let key = app.judge_api_key.get_untracked();
            let http = client::pooled(
                std::slice::from_ref(&replica),
                &key,
                prefs.timeout_ms(),
                &token,
            );
            let http = AnyClient::new(http);
            stack(app, &token, &guard, &log, http, &replica.base_url, seed ^ 1)
        });
        let settings = prefs.to_pipeline_settings();
        let method = Method {
            templates: prefs.templates().unwrap_or_default(),
            lexicon: prefs.lexicon(),
        };
        spawn_local(async move {
            let mode = settings.structured;
            let run = (&method, &settings, &mut control);
            let adaptive = prefs.structured.adaptive();
            let erase = |client| match adaptive {
                true => AnyClient::new(AdaptiveClient::new(client, mode)),
                false => AnyClient::new(client),
            };
            let client = erase(client);
            // Without a judge of its own, the relabeling client judges too (and shares what
            // the structured-output fallback learned).
            match judge.map(erase) {
                Some(judge) => this.drive(app, &client, &judge, run).await,
                None => this.drive(app, &client, &client, run).await,
            }
            let stopped = token.is_cancelled() || control.is_stopped();
            let pause = control.pause_cause().map(|cause| Pause {
                cause: cause.clone(),
                put_back: control.put_back().len(),
            });
            let not_started = control.remaining().len();
            if pause.is_some() && !stopped {
                this.paused_run.set_value(Some(control));
            }
            this.run.update(|r| {
                r.phase = match (&pause, stopped) {
                    (_, true) => Phase::Stopped,
                    (Some(_), false) => Phase::Paused,
                    (None, false) => Phase::Done,
                };
                r.pause = if stopped { None } else { pause };
                r.not_started = if stopped { not_started } else { 0 };
                r.sent = guard.counts();
                r.now_ms = browser::now_ms();
                r.sample();
            });
            let single = this.trips.with_value(RoundTrips::single_ms);
            if let Some(pace) = this.run.with_untracked(|r| r.pace(single)) {
                this.pace.set_value(Some(pace));
            }
            this.cancel.set_value(None);
            // A paused run is still going on: after a reload it goes on.
            let paused = this.run.with_untracked(|r| r.phase == Phase::Paused);
            app.with_journal(|j| j.set_running(paused));
            app.save_session();
            // The in-page endpoint is not probed: Resume loads its model again.
            if paused && crate::inpage::model_of(&prefs.base_url).is_none() {
                this.watch_endpoint(prefs, app);
            }
        });
        // The clock of the progress panel, and the requests sent so far.
        let guard = self.guard.get_value();
        spawn_local(async move {
            loop {
                browser::sleep(1000).await;
                if !this.is_busy() {
                    break;
                }
                this.run.update(|r| {
                    r.now_ms = browser::now_ms();
                    r.sent = guard.counts();
                    r.sample();
                });
            }
        });
    }

    /// While the run is paused, asks the endpoint now and then whether it answers again.
    fn watch_endpoint(&self, prefs: Prefs, app: AppState) {
        let this = *self;
        spawn_local(async move {
            loop {
                browser::sleep(RECHECK_MS).await;
                if this.run.with_untracked(|r| r.phase != Phase::Paused) {
                    break;
                }
                let client = HttpClient::new(
                    &prefs.base_url,
                    &app.api_key.get_untracked(),
                    prefs.timeout_ms().min(10_000),
                );
                let (answering, detail) = match client.probe().await {
                    Probe::Answered { status, .. } if (200..300).contains(&status) => {
                        (true, "the endpoint answers again".to_string())
                    }
                    Probe::Answered { status, .. } => (
                        status < 500,
                        format!("the endpoint answers with HTTP {status}"),
                    ),
                    Probe::Timeout => (false, "no answer in time".into()),
                    Probe::NetworkError { message, .. } => (false, message),
                };
                if this.run.with_untracked(|r| r.phase != Phase::Paused) {
                    break;
                }
                this.recheck.set(Some(Recheck {
                    answering,
                    at_ms: browser::now_ms(),
                    detail,
                }));
            }
        });
    }

    async fn drive(
        &self,
        app: AppState,
        client: &AnyClient<'static>,
        judge: &AnyClient<'static>,
        (method, settings, control): (&Method, &Settings, &mut RunControl),
    ) {
        let setup = RunSetup {
            templates: &method.templates,
            settings,
            lexicon: &method.lexicon,
        };
        let mut pending = Totals::default();
        let mut pending_done = 0;
        let mut last = browser::now_ms();
        let yield_now = |ms: u64| browser::sleep(ms as i32);
        run_controlled_judged(
            client,
            judge,
            setup,
            control,
            |i| app.session.with_untracked(|s| s.entries[i].trajectory()),
            &yield_now,
            |i, verdict, result| {
                match verdict {
                    Verdict::Record => {
                        pending.add(&result);
                        pending_done += 1;
                        app.session.update_untracked(|s| s.set_result(i, result));
                    }
                    // Not run after all: it goes back to pending, to run again on Resume.
                    Verdict::PutBack => app.session.update_untracked(|s| s.clear_result(i)),
                }
                app.with_journal(|j| j.result_changed(i));
                let now = browser::now_ms();
                if now - last >= SLICE_MS {
                    self.publish(app, &mut pending, &mut pending_done, now);
                    last = now;
                    true
                } else {
                    false
                }
            },
        )
        .await;
        self.publish(app, &mut pending, &mut pending_done, browser::now_ms());
    }

    fn publish(&self, app: AppState, pending: &mut Totals, done: &mut usize, now: f64) {
        let add = std::mem::take(pending);
        let n = std::mem::take(done);
        let sent = self.guard.with_value(RunGuard::counts);
        self.run.update(|r| {
            progress::merge_totals(&mut r.this_run, &add);
            r.done += n;
            r.now_ms = now;
            r.sent = sent;
            r.sample();
        });
        app.session.notify();
        app.save_session();
    }

    /// "Stop": aborts the requests in flight and holds the rest; nothing new starts.
    pub fn stop(&self) {
        self.guard.with_value(RunGuard::stop);
        if let Some(token) = self.cancel.get_value() {
            token.cancel();
        }
    }

    /// What "Reset results" would delete.
    pub fn reset_summary(&self, app: AppState) -> String {
        let logged = app.exchanges.with_value(|log| log.len());
        app.session
            .with_untracked(|s| progress::reset_summary(s, logged))
    }

    /// "Reset results", once confirmed: every trajectory back to pending, and the exchange log
    /// emptied, so that the next run asks the endpoint afresh.
    pub fn reset_results(&self, app: AppState) {
        self.confirm_reset.set(false);
        if self.is_busy() {
            return;
        }
        app.exchanges.with_value(crate::llm::ExchangeLog::clear);
        self.reset_view(Totals::default());
        app.session.update(Session::clear_results);
        app.with_journal(|j| j.results_cleared());
        app.save_session();
    }
}

impl Default for RunState {
    fn default() -> Self {
        Self::new()
    }
}
