//! The page's state (signals) and the actions the buttons trigger. Components only read and
//! write these; the work itself is done by the core (session, reader, pipeline, export).

use super::browser;
use crate::client::{CancelToken, HttpClient};
use crate::llm::diagnose::{diagnose, pre_check, Diagnosis};
use crate::llm::{AdaptiveClient, ChatClient, Templates};
use crate::model::Trajectory;
use crate::pipeline::{process, Settings, Totals};
use crate::prefs::{self, Draft, Prefs};
use crate::progress::{self, Progress};
use crate::reader::{ReadEvent, Reader};
use crate::session::{Filter, Row, Session, Status};
use crate::stages::detect::rules::Lexicon;
use futures::stream::{self, StreamExt};
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
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Running => "running",
            Phase::Done => "done",
            Phase::Stopped => "stopped",
        }
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
        let Ok(prefs) = self.prefs() else { return };
        let (items, base) = self.session.with_untracked(|s| {
            let items: Vec<(usize, Trajectory)> = s
                .to_run()
                .into_iter()
                .map(|i| (i, s.entries[i].trajectory.clone()))
                .collect();
            (items, progress::settled_totals(s))
        });
        let token = CancelToken::new();
        self.cancel.set_value(Some(token.clone()));
        let now = browser::now_ms();
        self.run.set(RunView {
            phase: Phase::Running,
            done: 0,
            total: items.len(),
            base,
            this_run: Totals::default(),
            started_ms: now,
            now_ms: now,
        });
        let client = HttpClient::new(&prefs.base_url, &self.api_key.get_untracked(), {
            prefs.timeout_ms()
        })
        .with_cancel(token.clone());
        let settings = prefs.to_pipeline_settings();
        leptos::task::spawn_local(async move {
            if prefs.structured.adaptive() {
                let client = AdaptiveClient::new(client, settings.structured);
                self.drive(&client, &settings, items).await;
            } else {
                self.drive(&client, &settings, items).await;
            }
            let stopped = token.is_cancelled();
            self.run.update(|r| {
                r.phase = if stopped { Phase::Stopped } else { Phase::Done };
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

    async fn drive<C: ChatClient>(
        self,
        client: &C,
        settings: &Settings,
        items: Vec<(usize, Trajectory)>,
    ) {
        let templates = Templates::defaults();
        let lexicon = Lexicon::default();
        let (templates, lexicon) = (&templates, &lexicon);
        let mut results =
            stream::iter(items)
                .map(|(i, t)| async move {
                    (i, process(client, templates, settings, lexicon, &t).await)
                })
                .buffer_unordered(settings.concurrency.max(1));
        let mut pending = Totals::default();
        let mut pending_done = 0;
        let mut last = browser::now_ms();
        while let Some((i, result)) = results.next().await {
            pending.add(&result);
            pending_done += 1;
            self.session.update_untracked(|s| s.set_result(i, result));
            let now = browser::now_ms();
            if now - last >= SLICE_MS {
                self.publish(&mut pending, &mut pending_done, now);
                browser::sleep(0).await;
                last = browser::now_ms();
            }
        }
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

    /// "Reset results".
    pub fn reset_results(self) {
        if self.is_busy() {
            return;
        }
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
