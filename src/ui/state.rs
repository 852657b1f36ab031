//! The page's state (signals) and the actions the buttons trigger. Components only read and
//! write these; the work itself is done by the core (session, reader, pipeline, export).

use super::browser;
use super::demand::{on_demand, Unloaded};
use super::filters::Filters;
use super::pool::{self, Pool};
pub use super::running::{Phase, RunState, RunView};
use super::templates::TemplateCheck;
use crate::client::HttpClient;
use crate::llm::diagnose::{diagnose, pre_check, Diagnosis};
use crate::llm::ExchangeLog;
use crate::persist::{self, Journal, Restored, SessionRecord};
use crate::pipeline::Totals;
use crate::prefs::{self, Draft, Prefs};
use crate::reader::{ReadEvent, Reader};
use crate::session::Session;
use crate::store::{Db, StoreError};
use crate::wire::RuleSetup;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::rc::Rc;

/// Rows of the results table per page.
pub const PAGE_SIZE: usize = 50;

/// How often the page says how far a file has been read, in milliseconds.
const LOAD_PUBLISH_MS: f64 = 250.0;

/// A file being read. While it is, the page says how far it got, and the session's views
/// (counts, table, charts, checks: each a pass over every trajectory) wait until it is read:
/// redrawing them as the session grows would make the page's work grow with the square of
/// the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Loading {
    pub file: String,
    pub read: u64,
    pub size: u64,
    /// Trajectories read from it so far.
    pub found: usize,
}

/// The background readers, as far as the page knows.
#[derive(Clone, Default)]
pub enum Workers {
    #[default]
    NotStarted,
    Ready(Rc<Pool>),
    /// They could not start: files are read on the page.
    Unavailable,
}

/// Takes what the background readers send into the session, as it comes.
struct Taker {
    state: AppState,
    /// What the readers computed the rule-based views with.
    lexicon: crate::stages::detect::rules::Lexicon,
    delta: f64,
    rejected: Vec<crate::reader::Rejected>,
    progress: Progress,
}

impl pool::Sink for Taker {
    fn take(&mut self, items: Vec<crate::wire::Item>, read: u64) {
        let state = self.state;
        let before = state.session.with_untracked(Session::len);
        state.session.update_untracked(|s| {
            s.add_items(items, &self.lexicon, self.delta, &mut self.rejected)
        });
        self.progress.read = read;
        self.progress.found += state.session.with_untracked(Session::len) - before;
    }

    fn due(&self) -> bool {
        self.progress.due()
    }

    /// Says how far the file got, and saves the session: a write per slice would cost the
    /// page a transaction each, for a session record that only counts more trajectories.
    fn show(&mut self) {
        self.progress.show();
        self.state.save_session();
    }
}

/// How far a file being read has got, said on the page at most every [`LOAD_PUBLISH_MS`].
struct Progress {
    state: AppState,
    file: String,
    size: u64,
    read: u64,
    found: usize,
    shown: f64,
}

impl Progress {
    /// Starts saying how far `file` got: nothing read yet.
    fn start(state: AppState, file: &str, size: u64) -> Self {
        let mut progress = Progress {
            state,
            file: file.to_owned(),
            size,
            read: 0,
            found: 0,
            shown: 0.0,
        };
        progress.show();
        progress
    }

    fn due(&self) -> bool {
        browser::now_ms() - self.shown >= LOAD_PUBLISH_MS
    }

    fn show(&mut self) {
        self.state.loading.set(Some(Loading {
            file: self.file.clone(),
            read: self.read,
            size: self.size,
            found: self.found,
        }));
        self.shown = browser::now_ms();
    }
}

/// Takes the trajectories of a saved session's kept file, read again, into the session being
/// restored: the first `left` of them.
struct Restorer<'a> {
    saved: &'a mut persist::Saved,
    left: usize,
    lexicon: &'a crate::stages::detect::rules::Lexicon,
    delta: f64,
    progress: Progress,
}

impl pool::Sink for Restorer<'_> {
    fn take(&mut self, items: Vec<crate::wire::Item>, read: u64) {
        let records: Vec<_> = items
            .into_iter()
            .filter(|i| matches!(i, crate::wire::Item::Record(..)))
            .take(self.left)
            .collect();
        self.left -= records.len();
        self.progress.found += records.len();
        self.progress.read = read;
        // Rejections are in the saved file summaries already.
        self.saved
            .session_mut()
            .add_items(records, self.lexicon, self.delta, &mut Vec::new());
    }

    fn due(&self) -> bool {
        self.progress.due()
    }

    fn show(&mut self) {
        self.progress.show();
    }
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

impl Connection {
    fn settings_error(errors: Vec<String>) -> Self {
        Connection::Done {
            ok: false,
            title: "Fix the settings first".into(),
            advice: errors.join("; "),
        }
    }

    fn of(diagnosis: &Diagnosis) -> Self {
        Connection::Done {
            ok: diagnosis.is_ok(),
            title: diagnosis.title(),
            advice: diagnosis.advice(),
        }
    }
}

on_demand! {
/// What `{url}/models` says of the endpoint and of `model`, asked with `key` and a timeout of
/// `timeout_ms`, with the endpoint client loaded on demand.
async fn probe_endpoint(url: String, key: String, timeout_ms: u32, model: String) -> Diagnosis {
    let origin = browser::origin();
    match pre_check(&url, &origin) {
        Some(d) => d,
        None => {
            let probe = HttpClient::new(&url, &key, timeout_ms).probe().await;
            diagnose(&probe, &origin, &model)
        }
    }
}
}

/// What a connection check says when the client could not be loaded.
fn unchecked(e: Unloaded) -> Connection {
    Connection::Done {
        ok: false,
        title: "Not checked".into(),
        advice: format!("The check did not run: {e}."),
    }
}

/// The models an endpoint listed, when it answered.
fn listed_models(diagnosis: &Diagnosis) -> Option<&[String]> {
    match diagnosis {
        Diagnosis::Ok { models, .. } | Diagnosis::UnknownModel { models, .. } => Some(models),
        _ => None,
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
    /// The second judge's key: in memory only, unless `remember_key` (like the main key).
    pub judge_api_key: RwSignal<String>,
    pub judge_models: RwSignal<Vec<String>>,
    pub judge_connection: RwSignal<Option<Connection>>,
    /// The run: its progress, pause, estimate and controls (also its own context).
    pub running: RunState,
    /// The round trip of the last successful "Check connection", in milliseconds.
    pub latency_ms: RwSignal<Option<f64>>,
    /// Every chat response of this page, by request: a run taken up again (Run after a stop,
    /// Resume, Retry failed) replays what it already has instead of sending it again.
    /// Persistence stores [`ExchangeLog::take_new`] and restores with
    /// [`ExchangeLog::insert_loaded`]; the handle is shared, so clones see the same log.
    pub exchanges: StoredValue<ExchangeLog, LocalStorage>,
    /// When files were last added to the session (ms since the epoch; 0 before any).
    pub loaded_ms: StoredValue<f64>,
    /// The results table's filters, order and page (a state of their own, also given to the
    /// table as its context).
    pub table: Filters,
    pub selected: RwSignal<Option<usize>>,
    pub notice: RwSignal<Option<String>>,
    pub storage: RwSignal<Storage>,
    pub offer: RwSignal<Option<Offer>>,
    /// How many times the rule-based analysis was recomputed for an edited lexicon (shown on
    /// the page for the tests of the lexicon editor).
    pub lexicon_applied: RwSignal<u32>,
    /// Whether the edited prompt templates render, checked in the background (a state of its
    /// own).
    pub templates: TemplateCheck,
    db: StoredValue<Option<Rc<Db>>, LocalStorage>,
    /// What of the session is saved; `None` until the user loads something or runs.
    journal: StoredValue<Option<Journal>, LocalStorage>,
    pool: StoredValue<Workers, LocalStorage>,
    /// Loaded files the saved session keeps, by the index of their first trajectory, until
    /// the write that keeps them has started.
    kept: StoredValue<std::collections::HashMap<usize, web_sys::File>, LocalStorage>,
}

impl AppState {
    /// Changes the journal of the saved session, when the session is being saved.
    pub(super) fn with_journal(&self, f: impl FnOnce(&mut Journal)) {
        self.journal.update_value(|j| {
            if let Some(j) = j {
                f(j);
            }
        });
    }
}

impl AppState {
    /// Fresh state with the stored preferences (and the key, when the user chose to keep it).
    pub fn new() -> Self {
        let prefs = browser::load(prefs::STORAGE_KEY)
            .map(|json| Prefs::from_json(&json))
            .unwrap_or_default();
        let stored_key = browser::load(prefs::KEY_STORAGE_KEY);
        let stored_judge_key = browser::load(prefs::JUDGE_KEY_STORAGE_KEY);
        let notice = RwSignal::new(None);
        AppState {
            session: RwSignal::new(Session::new(prefs.lexicon(), prefs.delta)),
            loading: RwSignal::new(None),
            load_error: RwSignal::new(None),
            draft: RwSignal::new(Draft::from(&prefs)),
            api_key: RwSignal::new(stored_key.clone().unwrap_or_default()),
            remember_key: RwSignal::new(stored_key.is_some() || stored_judge_key.is_some()),
            models: RwSignal::new(Vec::new()),
            connection: RwSignal::new(None),
            judge_api_key: RwSignal::new(stored_judge_key.unwrap_or_default()),
            judge_models: RwSignal::new(Vec::new()),
            judge_connection: RwSignal::new(None),
            running: RunState::new(),
            latency_ms: RwSignal::new(None),
            exchanges: StoredValue::new_local(ExchangeLog::new()),
            loaded_ms: StoredValue::new(0.0),
            table: Filters::new("filter"),
            selected: RwSignal::new(None),
            notice,
            storage: RwSignal::new(Storage::Opening),
            offer: RwSignal::new(None),
            lexicon_applied: RwSignal::new(0),
            templates: TemplateCheck::new(notice),
            db: StoredValue::new_local(None),
            journal: StoredValue::new_local(None),
            pool: StoredValue::new_local(Workers::NotStarted),
            kept: StoredValue::new_local(Default::default()),
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
    pub(super) fn storage_failed(self, error: StoreError) {
        self.journal.set_value(None);
        self.kept.update_value(|kept| kept.clear());
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

    pub(super) fn has_key(&self) -> bool {
        !self.api_key.get_untracked().trim().is_empty()
    }

    /// Whether the second judge is on an endpoint of its own and has a key for it.
    pub(super) fn has_judge_key(&self, prefs: &Prefs) -> bool {
        prefs.judge_endpoint().is_some() && !self.judge_api_key.get_untracked().trim().is_empty()
    }

    /// Starts saving the session, if storage allows and it is not saved already.
    pub(super) fn begin_saving(self) {
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
    pub(super) fn save_session(self) {
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
        // A kept file is handed to the write that keeps it, and needed no more.
        let writes = self.kept.try_update_value(|kept| {
            let writes = batches
                .iter()
                .map(|b| db.write_keeping(b, &|first| kept.get(&first).cloned()))
                .collect::<Vec<_>>();
            for put in batches.iter().flat_map(|b| &b.puts) {
                if let persist::Value::Source(source) = &put.value {
                    kept.remove(&source.first);
                }
            }
            writes
        });
        let writes = writes.unwrap_or_default();
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
    pub(super) fn save_exchanges(
        self,
    ) -> Option<impl std::future::Future<Output = Result<(), StoreError>>> {
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

    /// `file` starts to be read into the session, in `format` (`None`: detected): the saved
    /// session keeps it, and reads it again when restored, rather than storing its
    /// trajectories one by one.
    fn keep(&self, file: &web_sys::File, format: Option<crate::import::SourceFormat>) {
        if self.journal.with_value(Option::is_none) {
            return;
        }
        let first = self.session.with_untracked(Session::len);
        self.kept
            .update_value(|kept| _ = kept.insert(first, file.clone()));
        self.with_journal(|j| {
            j.source(persist::Source {
                first,
                name: file.name(),
                format,
            })
        });
    }

    /// The file being read has ended (read whole, or stopped by an error).
    fn kept_read(&self) {
        let end = self.session.with_untracked(Session::len);
        self.with_journal(|j| j.source_read(end));
        // A file that gave no trajectory is not kept (it started at `end`); a file that gave
        // some is not under that index.
        self.kept.update_value(|kept| _ = kept.remove(&end));
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
        self.kept.update_value(|kept| kept.clear());
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
            let (parts, files) = match db.read_session_kept(&offer.record.id).await {
                Ok(read) => read,
                Err(e) => return self.storage_failed(e),
            };
            let restored = read_back(self, parts, files).await;
            self.loading.set(None);
            match restored {
                Ok(Ok(restored)) => self.restore(restored),
                // The part of the page that reads it back could not be fetched: the offer
                // stays, to try again.
                Err(e) => {
                    self.offer.update(|o| {
                        if let Some(o) = o {
                            o.restoring = false;
                        }
                    });
                    self.notice
                        .set(Some(format!("The saved session was not restored: {e}.")));
                }
                Ok(Err(e)) => {
                    self.offer.set(None);
                    self.notice.set(Some(format!(
                        "The saved session could not be restored: {e}. Start fresh, or delete the saved sessions."
                    )));
                }
            }
        });
    }

    /// Rebuilds a saved session, reading the files it keeps again as files are read: in the
    /// background readers, or on the page when they cannot start.
    async fn read_back_now(
        self,
        parts: persist::StoredParts,
        files: std::collections::HashMap<usize, web_sys::File>,
    ) -> Result<Restored, String> {
        let mut saved = persist::Saved::open(parts).map_err(|e| e.to_string())?;
        let prefs = &saved.record().prefs;
        let (lexicon, delta) = (prefs.lexicon(), prefs.delta);
        let rules = RuleSetup {
            lexicon: serde_json::to_string(&lexicon).expect("a lexicon serializes"),
            delta,
        };
        while let Some((source, count)) = saved.next_file().map_err(|e| e.to_string())? {
            let file = files
                .get(&source.first)
                .ok_or_else(|| format!("the saved copy of {} is missing", source.name))?;
            let progress = Progress::start(self, &source.name, file.size() as u64);
            match self.pool().await {
                Some(pool) => {
                    let mut sink = Restorer {
                        saved: &mut saved,
                        left: count,
                        lexicon: &lexicon,
                        delta,
                        progress,
                    };
                    let format = source.format;
                    pool::load(&pool, file, format, &rules, pool::slice_bytes(), &mut sink)
                        .await
                        .map_err(|e| format!("{}: {e}", source.name))?;
                }
                None => {
                    let records = read_kept_on_page(file.clone(), source.format)
                        .await
                        .map_err(|e| format!("{}: {e}", source.name))?
                        .map_err(|e| format!("{}: {e}", source.name))?;
                    saved
                        .session_mut()
                        .restore_records(records.into_iter().take(count));
                }
            }
        }
        saved.finish().map_err(|e| e.to_string())
    }

    fn restore(self, restored: Restored) {
        let Restored {
            record,
            session,
            exchanges,
            journal,
        } = restored;
        self.selected.set(None);
        self.running.restored_view(&session);
        self.draft.set(Draft::from(&record.prefs));
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
        } else if record.used_judge_key && !self.has_judge_key(&record.prefs) {
            format!(
                "{restored} Enter the second judge's API key, then Run to finish the interrupted run."
            )
        } else {
            // Edited templates are checked, and the estimate's prompts measured, first.
            let edited = record.prefs.templates.clone();
            self.notice.set(Some(restored.clone()));
            spawn_local(async move {
                if let Some(sources) = edited {
                    self.templates.check(sources).await;
                }
                let message = if let Some(blocker) = self.running.run_blocker(self) {
                    format!("{restored} The interrupted run cannot go on yet: {blocker}")
                } else if self.running.start_run(self).await {
                    format!(
                        "{restored} What remains of the interrupted run costs money: see its estimate under Run and start it there."
                    )
                } else {
                    format!("{restored} The interrupted run goes on.")
                };
                self.notice.set(Some(message));
            });
            return;
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
            let lexicon = p.lexicon();
            if self.session.with_untracked(|s| *s.lexicon() != lexicon) {
                self.session.update(|s| s.set_lexicon(lexicon));
                self.lexicon_applied.update(|n| *n += 1);
            }
            // The saved session keeps the settings as they are, but a run's own while it goes.
            let used_key = self.has_key();
            let used_judge_key = self.has_judge_key(&p);
            let delta = p.delta;
            let changed = self
                .journal
                .try_update_value(|j| match j {
                    Some(j) if !j.record().running && j.record().prefs != p => {
                        j.set_prefs(p, used_key, used_judge_key);
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
        for (slot, key) in [
            (prefs::KEY_STORAGE_KEY, self.api_key),
            (prefs::JUDGE_KEY_STORAGE_KEY, self.judge_api_key),
        ] {
            Effect::new(move |_| {
                let key = key.get();
                if self.remember_key.get() {
                    browser::save(slot, &key);
                } else {
                    browser::remove(slot);
                }
            });
        }
    }

    pub fn is_busy(&self) -> bool {
        self.running.is_busy()
    }

    /// Adds the built-in example dataset.
    pub fn load_example(self) {
        spawn_local(async move {
            let report = match read_example().await {
                Ok(report) => report,
                Err(e) => {
                    return self
                        .notice
                        .set(Some(format!("The example was not loaded: {e}.")))
                }
            };
            self.loaded_ms.set_value(browser::now_ms());
            self.begin_saving();
            // Kept as the file it would have been, so that the saved session reads it back
            // like any other.
            match example_file() {
                Ok(file) => self.keep(&file, None),
                Err(e) => web_sys::console::warn_1(&e),
            }
            self.session.update(|s| s.add_report(report));
            self.kept_read();
            self.save_session();
        });
    }

    /// Empties the session.
    pub fn clear(self) {
        if self.is_busy() {
            return;
        }
        self.selected.set(None);
        self.running.reset_view(Totals::default());
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
            self.keep(&file, format);
            match self.pool().await {
                Some(pool) => self.load_in_background(&pool, file, format).await,
                None => {
                    let name = file.name();
                    if let Err(e) = read_on_page(self, file, format).await {
                        self.load_error.set(Some(format!("{name}: not read: {e}.")));
                    }
                }
            }
            self.kept_read();
        }
        self.save_session();
        self.loading.set(None);
    }

    /// The background readers, started on first use; `None` when files are read on the page
    /// (the readers could not start, which the page says once, or the test setting).
    async fn pool(&self) -> Option<Rc<Pool>> {
        let wanted = pool::workers_wanted();
        if wanted == 0 {
            return None;
        }
        match self.pool.with_value(|p| p.clone()) {
            Workers::Ready(pool) if pool.len() == wanted => return Some(pool),
            Workers::Ready(pool) => pool.stop(),
            Workers::Unavailable => return None,
            Workers::NotStarted => {}
        }
        match Pool::start(wanted).await {
            Ok(pool) => {
                let pool = Rc::new(pool);
                self.pool.set_value(Workers::Ready(pool.clone()));
                Some(pool)
            }
            Err(e) => {
                self.pool.set_value(Workers::Unavailable);
                self.notice.set(Some(format!(
                    "Files are read on this page, which may stop responding while a large file \
                     loads: the background readers could not start ({e})."
                )));
                None
            }
        }
    }

    /// Reads a file in the background readers: the page only takes in what they send.
    async fn load_in_background(
        &self,
        pool: &Pool,
        file: web_sys::File,
        format: Option<crate::import::SourceFormat>,
    ) {
        let name = file.name();
        let progress = Progress::start(*self, &name, file.size() as u64);
        let (lexicon, delta) = self
            .session
            .with_untracked(|s| (s.lexicon().clone(), s.delta()));
        let rules = RuleSetup {
            lexicon: serde_json::to_string(&lexicon).expect("a lexicon serializes"),
            delta,
        };
        let mut sink = Taker {
            state: *self,
            lexicon,
            delta,
            rejected: Vec::new(),
            progress,
        };
        let result = pool::load(pool, &file, format, &rules, pool::slice_bytes(), &mut sink).await;
        let rejected = std::mem::take(&mut sink.rejected);
        match result {
            Ok(summary) => {
                // The whole session's views are drawn in a task of their own.
                browser::sleep(0).await;
                self.session.update(|s| s.add_file(summary, rejected));
                self.save_session();
            }
            Err(e) => {
                self.load_error.set(Some(format!("{name}: {e}")));
                // A worker that failed may be in any state: start afresh next time.
                pool.stop();
                self.pool.set_value(Workers::NotStarted);
                self.session.notify();
            }
        }
    }

    /// Reads a file on the page itself, a chunk at a time.
    async fn load_on_page(&self, file: web_sys::File, format: Option<crate::import::SourceFormat>) {
        let name = file.name();
        let size = file.size();
        let mut reader = Reader::with_format(name.clone(), format);
        let mut events = Vec::new();
        let mut rejected = Vec::new();
        let mut offset = 0.0;
        let before = self.session.with_untracked(Session::len);
        let mut progress = Progress::start(*self, &name, size as u64);
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
            progress.read = offset as u64;
            progress.found = self.session.with_untracked(Session::len) - before;
            if progress.due() {
                progress.show();
            }
            browser::sleep(0).await;
        }
        let summary = reader.finish(&mut events);
        self.absorb(&mut events, &mut rejected);
        self.session.update(|s| s.add_file(summary, rejected));
        self.save_session();
    }

    /// Adds what the reader found to the session, without redrawing its views (see
    /// [`Loading`]), and saves it.
    fn absorb(&self, events: &mut Vec<ReadEvent>, rejected: &mut Vec<crate::reader::Rejected>) {
        if events.is_empty() {
            return;
        }
        self.session
            .update_untracked(|s| s.add_events(events.drain(..), rejected));
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

    /// The preferences for a connection check, or `None` after `status` says to fix them.
    fn prefs_for_check(&self, status: RwSignal<Option<Connection>>) -> Option<Prefs> {
        self.prefs()
            .map_err(|errors| status.set(Some(Connection::settings_error(errors))))
            .ok()
    }

    /// "Check connection".
    pub async fn check_connection(self) {
        let Some(prefs) = self.prefs_for_check(self.connection) else {
            return;
        };
        if crate::inpage::model_of(&prefs.base_url).is_some() {
            return self
                .connection
                .set(Some(crate::inpage::engine::connection(&prefs.base_url)));
        }
        self.connection.set(Some(Connection::Checking));
        let key = self.api_key.get_untracked();
        let asked = browser::now_ms();
        let diagnosis = match probe_endpoint(
            prefs.base_url.clone(),
            key,
            prefs.timeout_ms(),
            prefs.model.clone(),
        )
        .await
        {
            Ok(d) => d,
            Err(e) => return self.connection.set(Some(unchecked(e))),
        };
        if diagnosis.is_ok() {
            self.latency_ms.set(Some(browser::now_ms() - asked));
        }
        if let Some(models) = listed_models(&diagnosis) {
            self.models.set(models.to_vec());
            if prefs.model.is_empty() && models.len() == 1 {
                let only = models[0].clone();
                self.draft.update(|d| d.model = only);
            }
        }
        self.connection.set(Some(Connection::of(&diagnosis)));
    }

    /// "Check connection" of the second judge's endpoint, with its own key.
    pub async fn check_judge_connection(self) {
        let Some(prefs) = self.prefs_for_check(self.judge_connection) else {
            return;
        };
        let Some(url) = prefs.judge_endpoint() else {
            self.judge_connection.set(Some(Connection::Done {
                ok: true,
                title: "The judge uses the relabeling endpoint".into(),
                advice: "Enter another base URL to put the judge on its own endpoint.".into(),
            }));
            return;
        };
        let model = prefs.to_pipeline_settings().judge_model_name().to_owned();
        self.judge_connection.set(Some(Connection::Checking));
        let key = self.judge_api_key.get_untracked();
        let diagnosis = match probe_endpoint(url, key, prefs.timeout_ms(), model.clone()).await {
            Ok(d) => d,
            Err(e) => return self.judge_connection.set(Some(unchecked(e))),
        };
        if let Some(models) = listed_models(&diagnosis) {
            self.judge_models.set(models.to_vec());
        }
        self.judge_connection.set(Some(Connection::of(&diagnosis)));
    }

    /// The indexes of the entries the results table shows, in its order.
    pub fn matching(&self) -> Vec<usize> {
        self.table.matching(self.session)
    }

    /// Review decided (or undid) the decisions on `indexes`: saves them.
    pub fn decisions_changed(self, indexes: &[usize]) {
        if indexes.is_empty() {
            return;
        }
        self.begin_saving();
        self.with_journal(|j| {
            for &i in indexes {
                j.review_changed(i);
            }
        });
        self.save_session();
    }
}

impl Default for AppState {
    fn default() -> Self {
        Self::new()
    }
}

on_demand! {
/// Reads a file on the page itself ([`AppState::load_on_page`]), when the background readers
/// cannot start, with the readers and importers loaded on demand.
async fn read_on_page(
    state: AppState,
    file: web_sys::File,
    format: Option<crate::import::SourceFormat>,
) -> () {
    state.load_on_page(file, format).await
}
}

/// The example as a file.
fn example_file() -> Result<web_sys::File, wasm_bindgen::JsValue> {
    let parts = js_sys::Array::of1(&crate::example::EXAMPLE_JSONL.into());
    web_sys::File::new_with_str_sequence(&parts, crate::example::EXAMPLE_FILE_NAME)
}

on_demand! {
/// Rebuilds a saved session ([`AppState::read_back_now`]), with the code that reads it back
/// loaded on demand: only a resume needs it.
async fn read_back(
    state: AppState,
    parts: persist::StoredParts,
    files: std::collections::HashMap<usize, web_sys::File>,
) -> Result<Restored, String> {
    state.read_back_now(parts, files).await
}
}

on_demand! {
/// The trajectories of a saved session's kept file, read on the page (when the background
/// readers cannot start), with the reader and importers loaded on demand.
async fn read_kept_on_page(
    file: web_sys::File,
    format: Option<crate::import::SourceFormat>,
) -> Result<Vec<crate::reader::Record>, String> {
    let bytes = browser::read_slice(&file, 0.0, file.size()).await?;
    Ok(crate::reader::read_all_as(&file.name(), &bytes, format).records)
}
}

on_demand! {
/// The example, read as if the user had dropped it, with the reader and importers loaded on
/// demand.
async fn read_example() -> crate::reader::ReadReport {
    crate::example::load()
}
}
