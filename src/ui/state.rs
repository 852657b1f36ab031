//! The page's state (signals) and the actions the buttons trigger. Components only read and
//! write these; the work itself is done by the core (session, reader, pipeline, export).

use super::browser;
use crate::client::{CancelToken, HttpClient};
use crate::llm::diagnose::{diagnose, pre_check, Diagnosis};
use crate::llm::{
    AdaptiveClient, CachingClient, ChatClient, ChatError, ChatRequest, ChatResponse, ExchangeLog,
    RetryPolicy, RetryingClient, Templates,
};
use crate::persist::{self, Journal, Restored, SessionRecord};
use crate::pipeline::{run_controlled, RunControl, RunSetup, Settings, Totals, Verdict};
use crate::prefs::{self, Draft, Prefs};
use crate::progress::{self, Progress};
use crate::reader::{ReadEvent, Reader};
use crate::session::{Filter, Session, Status};
use crate::stages::detect::rules::Lexicon;
use crate::store::{Db, StoreError};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::rc::Rc;

/// Rows of the results table per page.
pub const PAGE_SIZE: usize = 50;

/// How often the page redraws the session's views while a file loads, in milliseconds.
const LOAD_PUBLISH_MS: f64 = 250.0;

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

/// Where saving the session in the browser stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Storage {
    /// Opening the database.
    Opening,
    /// Saving as the session grows.
    Ready,
    /// Not saving; what the page tells the user about it.
    Off(String),
}

/// The saved session the page offers to resume.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub record: SessionRecord,
    /// Other saved sessions (older ones, or unreadable by this version).
    pub others: usize,
    /// Reading it back.
    pub restoring: bool,
}

/// Saves the exchanges the log took in before their replies are used: the client right
/// outside [`CachingClient`], so that a reload loses no answer the page has seen.
struct Saving<C> {
    inner: C,
    state: AppState,
}

impl<C: ChatClient> ChatClient for Saving<C> {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
        let result = self.inner.complete(request).await;
        if let Some(write) = self.state.save_exchanges() {
            if let Err(e) = write.await {
                self.state.storage_failed(e);
            }
        }
        result
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
    pub storage: RwSignal<Storage>,
    pub offer: RwSignal<Option<Offer>>,
    db: StoredValue<Option<Rc<Db>>, LocalStorage>,
    /// What of the session is saved; `None` until the user loads something or runs.
    journal: StoredValue<Option<Journal>, LocalStorage>,
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
            storage: RwSignal::new(Storage::Opening),
            offer: RwSignal::new(None),
            db: StoredValue::new_local(None),
            journal: StoredValue::new_local(None),
        }
    }

    /// Opens the browser's storage: says so when there is none, and offers the session saved
    /// last, if any. Called once by the app.
    pub fn open_storage(self) {
        spawn_local(async move {
            let db = match Db::open().await {
                Ok(db) => Rc::new(db),
                Err(e) => return self.storage_failed(e),
            };
            self.db.set_value(Some(db.clone()));
            self.storage.set(Storage::Ready);
            // Anything loaded meanwhile is saved now.
            self.save_session();
            match db.session_records().await {
                Ok(records) => {
                    let live = self
                        .journal
                        .with_value(|j| j.as_ref().map(|j| j.id().to_owned()));
                    let (latest, others) = persist::latest(&records, live.as_deref());
                    self.offer.set(latest.map(|record| Offer {
                        record,
                        others,
                        restoring: false,
                    }));
                }
                Err(e) => self.storage_failed(e),
            }
        });
    }

    /// Stops saving, and tells the user why; the session goes on in memory.
    fn storage_failed(self, error: StoreError) {
        self.journal.set_value(None);
        self.offer.set(None);
        if matches!(self.storage.get_untracked(), Storage::Off(_)) {
            return;
        }
        let message = match &error {
            StoreError::QuotaExceeded => "The browser's storage for this page is full, so this \
                 session is no longer saved: it stays in memory until the page is closed. \
                 Download your results before leaving."
                .to_string(),
            StoreError::Unavailable(why) => format!(
                "This browser does not let the page save the session ({why}): it stays in \
                 memory until the page is closed. Downloads work as usual."
            ),
            StoreError::Failed(why) => format!(
                "Saving the session failed ({why}), so it is no longer saved: it stays in \
                 memory until the page is closed. Download your results before leaving."
            ),
        };
        self.storage.set(Storage::Off(message));
    }

    /// `f(db, journal)` when the session is being saved.
    fn with_store<T>(&self, f: impl FnOnce(&Db, &Journal) -> T) -> Option<T> {
        if self.storage.get_untracked() != Storage::Ready {
            return None;
        }
        let db = self.db.get_value()?;
        self.journal.with_value(|j| j.as_ref().map(|j| f(&db, j)))
    }

    /// The settings to save with the session: the form's, or the last valid ones.
    fn saved_prefs(&self) -> Prefs {
        self.prefs().unwrap_or_else(|_| {
            browser::load(prefs::STORAGE_KEY)
                .map(|json| Prefs::from_json(&json))
                .unwrap_or_default()
        })
    }

    fn has_key(&self) -> bool {
        !self.api_key.get_untracked().trim().is_empty()
    }

    /// Starts saving the session, if storage allows and it is not saved already.
    fn begin_saving(self) {
        if matches!(self.storage.get_untracked(), Storage::Off(_))
            || self.journal.with_value(Option::is_some)
        {
            return;
        }
        let now = browser::now_ms();
        let id = persist::session_id(now, (js_sys::Math::random() * 4_294_967_296.0) as u64);
        let journal = Journal::new(&id, now, self.saved_prefs(), self.has_key());
        self.journal.set_value(Some(journal));
    }

    /// Writes what the saved copy lacks, in batches (each its own transaction, applied in
    /// order).
    fn save_session(self) {
        if self.storage.get_untracked() != Storage::Ready {
            return;
        }
        let Some(db) = self.db.get_value() else {
            return;
        };
        let now = browser::now_ms();
        let batches = self
            .session
            .with_untracked(|s| {
                self.journal.try_update_value(|j| {
                    let Some(j) = j.as_mut() else {
                        return Vec::new();
                    };
                    let mut batches = vec![j.batch(s, now)];
                    while j.behind(s) {
                        batches.push(j.batch(s, now));
                    }
                    batches
                })
            })
            .unwrap_or_default();
        let writes = batches.iter().map(|b| db.write(b)).collect::<Vec<_>>();
        let exchanges = self.save_exchanges();
        spawn_local(async move {
            for write in writes {
                if let Err(e) = write.await {
                    return self.storage_failed(e);
                }
            }
            if let Some(write) = exchanges {
                if let Err(e) = write.await {
                    self.storage_failed(e);
                }
            }
        });
    }

    /// The write of the exchanges the log took in since the last one, when the session is
    /// being saved and there are any.
    fn save_exchanges(self) -> Option<impl std::future::Future<Output = Result<(), StoreError>>> {
        if self.storage.get_untracked() != Storage::Ready {
            return None;
        }
        let db = self.db.get_value()?;
        let log = self.exchanges.get_value();
        let batch = self
            .journal
            .try_update_value(|j| {
                let j = j.as_mut()?;
                let new = log.take_new();
                (!new.is_empty()).then(|| j.exchanges(&new))
            })
            .flatten()?;
        Some(db.write(&batch))
    }

    /// Deletes the saved copy of the page's session; later changes are not saved until the
    /// user loads or runs again.
    fn forget_saved(self) {
        if let Some(write) = self.with_store(|db, journal| db.write(&journal.delete())) {
            spawn_local(async move {
                if let Err(e) = write.await {
                    self.storage_failed(e);
                }
            });
        }
        self.journal.set_value(None);
        self.exchanges.with_value(ExchangeLog::clear);
    }

    /// "Resume" of a saved session: reads it back and puts it in place of the page's; a run
    /// the reload interrupted goes on when nothing stops it.
    pub fn resume_saved(self) {
        let Some(offer) = self.offer.get_untracked() else {
            return;
        };
        if offer.restoring || self.is_busy() || self.loading.with_untracked(Option::is_some) {
            return;
        }
        let Some(db) = self.db.get_value() else {
            return;
        };
        self.offer.update(|o| {
            if let Some(o) = o {
                o.restoring = true;
            }
        });
        spawn_local(async move {
            let parts = match db.read_session(&offer.record.id).await {
                Ok(parts) => parts,
                Err(e) => return self.storage_failed(e),
            };
            match persist::rebuild(parts) {
                Ok(restored) => self.restore(restored),
                Err(e) => {
                    self.offer.set(None);
                    self.notice.set(Some(format!(
                        "The saved session could not be restored: {e}. Start fresh, or delete the saved sessions."
                    )));
                }
            }
        });
    }

    fn restore(self, restored: Restored) {
        let Restored {
            record,
            session,
            exchanges,
            journal,
        } = restored;
        self.selected.set(None);
        self.page.set(0);
        self.run.set(RunView {
            base: progress::settled_totals(&session),
            ..RunView::default()
        });
        self.draft.set(Draft::from(&record.prefs));
        self.paused_run.set_value(None);
        self.exchanges.with_value(|log| {
            log.clear();
            log.insert_loaded(exchanges);
        });
        self.journal.set_value(Some(journal));
        self.loaded_ms.set_value(browser::now_ms());
        self.session.set(session);
        self.offer.set(None);
        let restored = format!(
            "Restored the session saved {}: {}.",
            browser::local_time(record.saved_ms),
            record.summary()
        );
        let unfinished = self.session.with_untracked(|s| !s.to_run().is_empty());
        let message = if !record.running || !unfinished {
            restored
        } else if record.used_key && !self.has_key() {
            format!("{restored} Enter the API key, then Run to finish the interrupted run.")
        } else if let Some(blocker) = self.run_blocker() {
            format!("{restored} The interrupted run cannot go on yet: {blocker}")
        } else {
            self.start_run();
            format!("{restored} The interrupted run goes on.")
        };
        self.notice.set(Some(message));
    }

    /// "Start fresh": deletes the offered session.
    pub fn discard_offer(self) {
        let Some(offer) = self.offer.get_untracked() else {
            return;
        };
        self.offer.set(None);
        let Some(db) = self.db.get_value() else {
            return;
        };
        let write = db.write(&persist::delete_session(&offer.record.id));
        spawn_local(async move {
            if let Err(e) = write.await {
                self.storage_failed(e);
            }
        });
    }

    /// Deletes every saved session but the page's own.
    pub fn delete_saved_sessions(self) {
        self.offer.set(None);
        let Some(db) = self.db.get_value() else {
            return;
        };
        let live = self
            .journal
            .with_value(|j| j.as_ref().map(|j| j.id().to_owned()));
        spawn_local(async move {
            let done = match live {
                None => db.clear().await,
                Some(live) => match db.session_records().await {
                    Ok(records) => {
                        let mut result = Ok(());
                        for id in records.iter().filter_map(|r| persist::record_id(r)) {
                            if id != live {
                                result = result.and(db.write(&persist::delete_session(&id)).await);
                            }
                        }
                        result
                    }
                    Err(e) => Err(e),
                },
            };
            match done {
                Ok(()) => self
                    .notice
                    .set(Some("Deleted the saved sessions.".to_string())),
                Err(e) => self.storage_failed(e),
            }
        });
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
            // The saved session keeps the settings as they are, but a run's own while it goes.
            let used_key = self.has_key();
            let delta = p.delta;
            let changed = self
                .journal
                .try_update_value(|j| match j {
                    Some(j) if !j.record().running && j.record().prefs != p => {
                        j.set_prefs(p, used_key);
                        true
                    }
                    _ => false,
                })
                .unwrap_or(false);
            if changed {
                self.save_session();
            }
            delta
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
        self.begin_saving();
        self.session.update(|s| s.add_report(report));
        self.save_session();
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
        self.forget_saved();
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
        if !files.is_empty() {
            self.begin_saving();
        }
        for file in files {
            let name = file.name();
            let size = file.size();
            let mut reader = Reader::with_format(name.clone(), format);
            let mut events = Vec::new();
            let mut rejected = Vec::new();
            let mut offset = 0.0;
            let mut shown = browser::now_ms();
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
                self.absorb(&mut events, &mut rejected, &mut shown);
                self.loading.set(Some(Loading {
                    file: name.clone(),
                    read: offset as u64,
                    size: size as u64,
                }));
                browser::sleep(0).await;
            }
            let summary = reader.finish(&mut events);
            self.absorb(&mut events, &mut rejected, &mut shown);
            self.session.update(|s| s.add_file(summary, rejected));
            self.save_session();
        }
        self.loading.set(None);
    }

    /// Adds what the reader found to the session, telling the page at most every
    /// [`LOAD_PUBLISH_MS`] (`shown` is when it last did): with hundreds of thousands of
    /// trajectories, redrawing the views after every chunk would cost more than reading.
    fn absorb(
        &self,
        events: &mut Vec<ReadEvent>,
        rejected: &mut Vec<crate::reader::Rejected>,
        shown: &mut f64,
    ) {
        if events.is_empty() {
            return;
        }
        self.session
            .update_untracked(|s| s.add_events(events.drain(..), rejected));
        let now = browser::now_ms();
        if now - *shown >= LOAD_PUBLISH_MS {
            *shown = now;
            self.session.notify();
        }
        self.save_session();
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
        if crate::inpage::model_of(&prefs.base_url).is_some() {
            return self
                .connection
                .set(Some(crate::inpage::engine::connection(&prefs.base_url)));
        }
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
        self.begin_saving();
        let used_key = self.has_key();
        self.journal.update_value(|j| {
            if let Some(j) = j {
                j.set_prefs(prefs.clone(), used_key);
                j.set_running(true);
            }
        });
        self.save_session();
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
    fn launch(self, prefs: Prefs, control: RunControl) {
        let token = CancelToken::new();
        self.cancel.set_value(Some(token.clone()));
        if crate::inpage::model_of(&prefs.base_url).is_some() {
            let page = crate::inpage::engine::InPageClient::new(
                &prefs.base_url,
                prefs.timeout_ms(),
                token.clone(),
            );
            return self.launch_with(prefs, control, token, page);
        }
        let http = HttpClient::new(&prefs.base_url, &self.api_key.get_untracked(), {
            prefs.timeout_ms()
        })
        .with_cancel(token.clone());
        self.launch_with(prefs, control, token, http);
    }

    fn launch_with<C: ChatClient + 'static>(
        self,
        prefs: Prefs,
        mut control: RunControl,
        token: CancelToken,
        base: C,
    ) {
        let retrying = RetryingClient::new(
            base,
            RetryPolicy::default(),
            browser::RetrySleep(token.clone()),
        )
        .with_seed(browser::now_ms().to_bits());
        let log = self.exchanges.get_value();
        let client = Saving {
            inner: CachingClient::new(retrying, log, &prefs.base_url),
            state: self,
        };
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
            // A paused run is still going on: after a reload it goes on.
            let paused = self.run.with_untracked(|r| r.phase == Phase::Paused);
            self.journal.update_value(|j| {
                if let Some(j) = j {
                    j.set_running(paused);
                }
            });
            self.save_session();
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
                self.journal.update_value(|j| {
                    if let Some(j) = j {
                        j.result_changed(i);
                    }
                });
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
        self.save_session();
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
        self.journal.update_value(|j| {
            if let Some(j) = j {
                j.results_cleared();
            }
        });
        self.save_session();
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

    /// The indexes of the entries matching the filters.
    pub fn matching(&self) -> Vec<usize> {
        let filter = self.filter();
        self.session.with(|s| s.matching(&filter))
    }
}

impl Default for AppState {
    fn default() -> Self {
        Self::new()
    }
}
