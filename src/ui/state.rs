//! The page's state (signals) and the actions the buttons trigger. Components only read and
//! write these; the work itself is done by the core (session, reader, pipeline, export).

use super::browser;
use crate::client::{CancelToken, HttpClient};
use crate::llm::diagnose::{diagnose, pre_check, Diagnosis};
use crate::llm::{
    AdaptiveClient, CachingClient, ChatClient, ExchangeLog, RetryPolicy, RetryingClient, Templates,
};
use crate::pipeline::{run_controlled, RunControl, RunSetup, Settings, Totals, Verdict};
use crate::prefs::{self, Draft, Prefs};
use crate::progress::{self, Progress};
use crate::reader::{ReadEvent, Reader};
use crate::session::{Filter, Row, Session, Status};
use crate::stages::detect::rules::Lexicon;
use leptos::prelude::*;

/// Rows of the results table per page.
pub const PAGE_SIZE: usize = 50;

/// How long the page may work between yields to the browser, in milliseconds.
const SLICE_MS: f64 = 40.0;

/// A file being read.
#[derive(Debug, Clone, PartialEq)]
pub struct Loading {
    pub file: String,
    pub read: u64,
    pub size: u64,
}

/// What "Check connection" found.
#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    Checking,
    Done {
        ok: bool,
        title: String,
        advice: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Running,
    Done,
    Stopped,
    /// The endpoint went away: the run waits for Resume.
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
    /// The error that outlasted the retries.
    pub reason: String,
    /// Trajectories put back to run again.
    pub put_back: usize,
}

impl Pause {
    /// What the run panel says.
    pub fn message(&self) -> String {
        format!(
            "Paused: the endpoint stopped answering ({}). {} put back to run again; none was \
             recorded as failed. Check the endpoint (Check connection helps), then Resume.",
            self.reason,
            match self.put_back {
                1 => "1 trajectory was".to_string(),
                n => format!("{n} trajectories were"),
            }
        )
    }
}

/// The current or last run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    pub phase: Phase,
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
}

impl Default for RunView {
    fn default() -> Self {
        RunView {
            phase: Phase::Idle,
            done: 0,
            total: 0,
            base: Totals::default(),
            this_run: Totals::default(),
            started_ms: 0.0,
            now_ms: 0.0,
            pause: None,
        }
    }
}

impl RunView {
    pub fn progress(&self) -> Progress {
        let mut totals = self.base.clone();
        progress::merge_totals(&mut totals, &self.this_run);
        Progress::new(self.done, self.total, &totals, self.started_ms, self.now_ms)
    }

    pub fn elapsed_ms(&self) -> Option<f64> {
        (self.phase != Phase::Idle).then(|| (self.now_ms - self.started_ms).max(0.0))
    }
}

/// Every signal of the page.
#[derive(Clone, Copy)]
pub struct AppState {
    /// Changed in place (untracked) while loading or running; `notify` tells the page.
    pub session: RwSignal<Session>,
    pub loading: RwSignal<Option<Loading>>,
    pub load_error: RwSignal<Option<String>>,
    pub draft: RwSignal<Draft>,
    /// In memory only, unless `remember_key`.
    pub api_key: RwSignal<String>,
    pub remember_key: RwSignal<bool>,
    pub models: RwSignal<Vec<String>>,
    pub connection: RwSignal<Option<Connection>>,
    pub run: RwSignal<RunView>,
    pub cancel: StoredValue<Option<CancelToken>, LocalStorage>,
    /// A paused run's control, kept for Resume.
    pub paused_run: StoredValue<Option<RunControl>, LocalStorage>,
    /// Every chat response of this page, by request: a run taken up again (Run after a stop,
    /// Resume, Retry failed) replays what it already has instead of sending it again.
    /// Persistence stores [`ExchangeLog::take_new`] and restores with
    /// [`ExchangeLog::insert_loaded`]; the handle is shared, so clones see the same log.
    pub exchanges: StoredValue<ExchangeLog, LocalStorage>,
    /// When files were last added to the session (ms since the epoch; 0 before any).
    pub loaded_ms: StoredValue<f64>,
    pub filter_status: RwSignal<String>,
    pub filter_type: RwSignal<String>,
    pub filter_text: RwSignal<String>,
    pub page: RwSignal<usize>,
    pub selected: RwSignal<Option<usize>>,
    pub notice: RwSignal<Option<String>>,
}

/// `will skip` → `will-skip`, the form the DOM uses.
pub fn status_slug(status: Status) -> String {
    status.as_str().replace(' ', "-")
}

impl AppState {
    /// Fresh state with the stored preferences (and the key, when the user chose to keep it).
    pub fn new() -> Self {
        let prefs = browser::load(prefs::STORAGE_KEY)
            .map(|json| Prefs::from_json(&json))
            .unwrap_or_default();
        let stored_key = browser::load(prefs::KEY_STORAGE_KEY);
        AppState {
            session: RwSignal::new(Session::new(Lexicon::default(), prefs.delta)),
            loading: RwSignal::new(None),
            load_error: RwSignal::new(None),
            draft: RwSignal::new(Draft::from(&prefs)),
            api_key: RwSignal::new(stored_key.clone().unwrap_or_default()),
            remember_key: RwSignal::new(stored_key.is_some()),
            models: RwSignal::new(Vec::new()),
            connection: RwSignal::new(None),
            run: RwSignal::new(RunView::default()),
            cancel: StoredValue::new_local(None),
            paused_run: StoredValue::new_local(None),
            exchanges: StoredValue::new_local(ExchangeLog::new()),
            loaded_ms: StoredValue::new(0.0),
            filter_status: RwSignal::new("all".into()),
            filter_type: RwSignal::new("all".into()),
            filter_text: RwSignal::new(String::new()),
            page: RwSignal::new(0),
            selected: RwSignal::new(None),
            notice: RwSignal::new(None),
        }
    }

    /// The preferences as typed, when they are valid.
    pub fn prefs(&self) -> Result<Prefs, Vec<String>> {
        self.draft.with(Draft::parse)
    }

    /// Keeps the preferences (never the key) and the session's δ in step with the form, and
    /// the key in storage only while the user asks for it. Called once by the app.
    pub fn persist(self) {
        Effect::new(move |last_delta: Option<f64>| {
            let Ok(p) = self.prefs() else {
                return last_delta.unwrap_or(f64::NAN);
            };
            browser::save(prefs::STORAGE_KEY, &p.to_json());
            if last_delta != Some(p.delta) {
                self.session.update_untracked(|s| s.set_delta(p.delta));
                self.session.notify();
            }
            p.delta
        });
        Effect::new(move |_| {
            let key = self.api_key.get();
            if self.remember_key.get() {
                browser::save(prefs::KEY_STORAGE_KEY, &key);
            } else {
                browser::remove(prefs::KEY_STORAGE_KEY);
            }
        });
    }

    pub fn is_busy(&self) -> bool {
        self.run.with_untracked(|r| r.phase == Phase::Running)
    }

    /// Adds the built-in example dataset.
    pub fn load_example(self) {
        self.loaded_ms.set_value(browser::now_ms());
        let report = crate::example::load();
        self.session.update(|s| s.add_report(report));
    }

    /// Empties the session.
    pub fn clear(self) {
        if self.is_busy() {
            return;
        }
        self.selected.set(None);
        self.page.set(0);
        self.paused_run.set_value(None);
        self.run.set(RunView::default());
        self.session.update(Session::clear);
    }

    /// Reads `files` one after the other, a chunk at a time, adding each trajectory to the
    /// session as it arrives; in `format`, or detecting each file's format (`None`).
    pub async fn load_files(
        self,
        files: Vec<web_sys::File>,
        format: Option<crate::import::SourceFormat>,
    ) {
        self.load_error.set(None);
        self.loaded_ms.set_value(browser::now_ms());
        for file in files {
            let name = file.name();
            let size = file.size();
            let mut reader = Reader::with_format(name.clone(), format);
            let mut events = Vec::new();
            let mut rejected = Vec::new();
            let mut offset = 0.0;
            self.loading.set(Some(Loading {
                file: name.clone(),
                read: 0,
                size: size as u64,
            }));
            while offset < size {
                let end = (offset + browser::CHUNK_BYTES).min(size);
                match browser::read_slice(&file, offset, end).await {
                    Ok(bytes) => reader.push(&bytes, &mut events),
                    Err(e) => {
                        self.load_error.set(Some(format!("{name}: {e}")));
                        break;
                    }
                }
                offset = end;
                self.absorb(&mut events, &mut rejected);
                self.loading.set(Some(Loading {
                    file: name.clone(),
                    read: offset as u64,
                    size: size as u64,
                }));
                browser::sleep(0).await;
            }
            let summary = reader.finish(&mut events);
            self.absorb(&mut events, &mut rejected);
            self.session.update(|s| s.add_file(summary, rejected));
        }
        self.loading.set(None);
    }

    fn absorb(&self, events: &mut Vec<ReadEvent>, rejected: &mut Vec<crate::reader::Rejected>) {
        if events.is_empty() {
            return;
        }
        self.session
            .update(|s| s.add_events(events.drain(..), rejected));
    }

    /// Every rejected record, one per line, as the page lists them.
    pub fn rejected_text(&self) -> String {
        self.session.with_untracked(|s| {
            s.files
                .iter()
                .flat_map(|f| f.rejected.iter().map(|r| format!("{r}\n")))
                .collect()
        })
    }

    pub async fn copy_rejected(self) {
        let text = self.rejected_text();
        let message = match browser::copy(&text).await {
            Ok(()) => "Copied the rejected records.".to_string(),
            Err(e) => format!("Could not copy: {e}"),
        };
        self.notice.set(Some(message));
    }

    /// "Check connection".
    pub async fn check_connection(self) {
        let prefs = match self.prefs() {
            Ok(p) => p,
            Err(errors) => {
                self.connection.set(Some(Connection::Done {
                    ok: false,
                    title: "Fix the settings first".into(),
                    advice: errors.join("; "),
                }));
                return;
            }
        };
        let origin = browser::origin();
        self.connection.set(Some(Connection::Checking));
        let diagnosis = match pre_check(&prefs.base_url, &origin) {
            Some(d) => d,
            None => {
                let key = self.api_key.get_untracked();
                let client = HttpClient::new(&prefs.base_url, &key, prefs.timeout_ms());
                let probe = client.probe().await;
                diagnose(&probe, &origin, &prefs.model)
            }
        };
        if let Diagnosis::Ok { models, .. } | Diagnosis::UnknownModel { models, .. } = &diagnosis {
            self.models.set(models.clone());
            if prefs.model.is_empty() && models.len() == 1 {
                let only = models[0].clone();
                self.draft.update(|d| d.model = only);
            }
        }
        self.connection.set(Some(Connection::Done {
            ok: diagnosis.is_ok(),
            title: diagnosis.title(),
            advice: diagnosis.advice(),
        }));
    }

    /// Why Run cannot start now, if it cannot.
    pub fn run_blocker(&self) -> Option<String> {
        let prefs = match self.prefs() {
            Ok(p) => p,
            Err(_) => return Some("Fix the settings above first.".into()),
        };
        if let Some(reason) = prefs.run_blocker() {
            return Some(format!("Cannot run: {reason}."));
        }
        if self.loading.with(Option::is_some) {
            return Some("Wait until the files are read.".into());
        }
        let (empty, nothing) = self.session.with(|s| (s.is_empty(), s.to_run().is_empty()));
        if empty {
            Some("Load trajectories first.".into())
        } else if nothing {
            Some("Every trajectory has a result: Reset results to run again.".into())
        } else {
            None
        }
    }

    /// "Run": processes what has no result yet (or failed, or was cancelled).
    pub fn start_run(self) {
        if self.is_busy() || self.run_blocker().is_some() {
            return;
        }
        let items = self.session.with_untracked(Session::to_run);
        self.start(items);
    }

    /// How many results "Retry failed" would run again.
    pub fn retry_failed_count(&self) -> usize {
        self.session.with(|s| s.retry_failed().len())
    }

    /// "Retry failed": runs again only the trajectories whose result ended in an error of the
    /// endpoint or of the way to it.
    pub fn retry_failed(self) {
        if self.is_busy() || self.prefs().map_or(true, |p| p.run_blocker().is_some()) {
            return;
        }
        let items = self.session.with_untracked(Session::retry_failed);
        if !items.is_empty() {
            self.start(items);
        }
    }

    /// A fresh run over `items` (session indexes).
    fn start(self, items: Vec<usize>) {
        let Ok(prefs) = self.prefs() else { return };
        let base = self
            .session
            .with_untracked(|s| progress::totals_except(s, &items));
        let now = browser::now_ms();
        self.paused_run.set_value(None);
        self.run.set(RunView {
            phase: Phase::Running,
            done: 0,
            total: items.len(),
            base,
            this_run: Totals::default(),
            started_ms: now,
            now_ms: now,
            pause: None,
        });
        let control = RunControl::new(items, prefs.to_pipeline_settings().concurrency);
        self.launch(prefs, control);
    }

    /// "Resume": continues a paused run with what it put back, then what it never started.
    pub fn resume(self) {
        if self.run.with_untracked(|r| r.phase != Phase::Paused) {
            return;
        }
        let Ok(prefs) = self.prefs() else { return };
        let Some(mut control) = self.paused_run.try_update_value(Option::take).flatten() else {
            return;
        };
        control.resume();
        control.set_concurrency(prefs.to_pipeline_settings().concurrency);
        self.run.update(|r| {
            r.phase = Phase::Running;
            r.pause = None;
            r.now_ms = browser::now_ms();
        });
        self.launch(prefs, control);
    }

    /// Runs `control` to its end or its pause with a client chain built from `prefs`:
    /// fetch, retries, the exchange log, then the structured-mode fallback.
    fn launch(self, prefs: Prefs, mut control: RunControl) {
        let token = CancelToken::new();
        self.cancel.set_value(Some(token.clone()));
        let http = HttpClient::new(&prefs.base_url, &self.api_key.get_untracked(), {
            prefs.timeout_ms()
        })
        .with_cancel(token.clone());
        let retrying = RetryingClient::new(
            http,
            RetryPolicy::default(),
            browser::RetrySleep(token.clone()),
        )
        .with_seed(browser::now_ms().to_bits());
        let log = self.exchanges.get_value();
        let client = CachingClient::new(retrying, log, &prefs.base_url);
        let settings = prefs.to_pipeline_settings();
        leptos::task::spawn_local(async move {
            if prefs.structured.adaptive() {
                let client = AdaptiveClient::new(client, settings.structured);
                self.drive(&client, &settings, &mut control).await;
            } else {
                self.drive(&client, &settings, &mut control).await;
            }
            let stopped = token.is_cancelled();
            let pause = control.pause_reason().map(|reason| Pause {
                reason: reason.to_owned(),
                put_back: control.put_back().len(),
            });
            if pause.is_some() && !stopped {
                self.paused_run.set_value(Some(control));
            }
            self.run.update(|r| {
                r.phase = match (&pause, stopped) {
                    (_, true) => Phase::Stopped,
                    (Some(_), false) => Phase::Paused,
                    (None, false) => Phase::Done,
                };
                r.pause = if stopped { None } else { pause };
                r.now_ms = browser::now_ms();
            });
            self.cancel.set_value(None);
        });
        // The clock of the progress panel.
        leptos::task::spawn_local(async move {
            loop {
                browser::sleep(1000).await;
                if !self.is_busy() {
                    break;
                }
                self.run.update(|r| r.now_ms = browser::now_ms());
            }
        });
    }

    async fn drive<C: ChatClient>(self, client: &C, settings: &Settings, control: &mut RunControl) {
        let templates = Templates::defaults();
        let lexicon = Lexicon::default();
        let setup = RunSetup {
            templates: &templates,
            settings,
            lexicon: &lexicon,
        };
        let mut pending = Totals::default();
        let mut pending_done = 0;
        let mut last = browser::now_ms();
        let yield_now = |ms: u64| browser::sleep(ms as i32);
        run_controlled(
            client,
            setup,
            control,
            |i| {
                self.session
                    .with_untracked(|s| s.entries[i].trajectory.clone())
            },
            &yield_now,
            |i, verdict, result| {
                match verdict {
                    Verdict::Record => {
                        pending.add(&result);
                        pending_done += 1;
                        self.session.update_untracked(|s| s.set_result(i, result));
                    }
                    // Not run after all: it goes back to pending, to run again on Resume.
                    Verdict::PutBack => self.session.update_untracked(|s| s.clear_result(i)),
                }
                let now = browser::now_ms();
                if now - last >= SLICE_MS {
                    self.publish(&mut pending, &mut pending_done, now);
                    last = now;
                    true
                } else {
                    false
                }
            },
        )
        .await;
        self.publish(&mut pending, &mut pending_done, browser::now_ms());
    }

    fn publish(&self, pending: &mut Totals, done: &mut usize, now: f64) {
        let add = std::mem::take(pending);
        let n = std::mem::take(done);
        self.run.update(|r| {
            progress::merge_totals(&mut r.this_run, &add);
            r.done += n;
            r.now_ms = now;
        });
        self.session.notify();
    }

    /// "Stop": aborts the requests in flight; what is left ends as cancelled.
    pub fn stop(self) {
        if let Some(token) = self.cancel.get_value() {
            token.cancel();
        }
    }

    /// "Reset results": every trajectory back to pending, and the exchange log emptied, so
    /// that the next run asks the endpoint afresh.
    pub fn reset_results(self) {
        if self.is_busy() {
            return;
        }
        self.paused_run.set_value(None);
        self.exchanges.with_value(ExchangeLog::clear);
        self.run.set(RunView::default());
        self.session.update(Session::clear_results);
    }

    pub fn filter(&self) -> Filter {
        let status = self.filter_status.get();
        let failure_type = self.filter_type.get();
        Filter {
            status: Status::ALL.into_iter().find(|s| status_slug(*s) == status),
            failure_type: match failure_type.as_str() {
                "all" => None,
                "none" => Some(None),
                t => crate::model::FailureType::parse(t).map(Some),
            },
            text: self.filter_text.get(),
        }
    }

    /// The rows matching the filters.
    pub fn rows(&self) -> Vec<Row> {
        let filter = self.filter();
        self.session.with(|s| s.rows(&filter))
    }
}

impl Default for AppState {
    fn default() -> Self {
        Self::new()
    }
}
