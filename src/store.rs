//! IndexedDB, as the saved session uses it (the layout is [`crate::persist`]'s): open the
//! database, apply a [`Batch`] in one transaction, read a session's records, delete them.
//!
//! Every IndexedDB request and transaction is turned into a future by handing the `resolve` and
//! `reject` functions of a JS promise to its event handlers.

use crate::persist::{
    Batch, Key, Prefix, Source, Store, StoredParts, Value, DB_NAME, SCHEMA_VERSION,
};
use js_sys::{Array, Function, Promise};
use std::fmt;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    DomException, IdbDatabase, IdbKeyRange, IdbObjectStore, IdbOpenDbRequest, IdbRequest,
    IdbTransaction, IdbTransactionMode,
};

/// Why storage did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No IndexedDB here, or the browser refuses it (private windows, blocked storage).
    Unavailable(String),
    /// The browser's storage quota for this site is used up.
    QuotaExceeded,
    /// Anything else IndexedDB reported.
    Failed(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(f, "the browser offers no storage here ({why})"),
            StoreError::QuotaExceeded => write!(f, "the browser's storage quota is used up"),
            StoreError::Failed(why) => write!(f, "storage failed ({why})"),
        }
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    /// The error a DOMException stands for.
    pub fn from_exception(e: &DomException) -> StoreError {
        match e.name().as_str() {
            "QuotaExceededError" => StoreError::QuotaExceeded,
            "SecurityError" | "InvalidStateError" => {
                StoreError::Unavailable(format!("{}: {}", e.name(), e.message()))
            }
            name => StoreError::Failed(format!("{name}: {}", e.message())),
        }
    }

    fn from_js(value: &JsValue) -> StoreError {
        match value.dyn_ref::<DomException>() {
            Some(e) => StoreError::from_exception(e),
            None => StoreError::Failed(
                value
                    .as_string()
                    .or_else(|| {
                        value
                            .dyn_ref::<js_sys::Error>()
                            .map(|e| String::from(e.message()))
                    })
                    .unwrap_or_else(|| "unknown error".into()),
            ),
        }
    }
}

/// A promise settled by the handlers `attach` installs.
fn settled_by(attach: impl FnOnce(&Function, &Function)) -> JsFuture {
    let mut attach = Some(attach);
    JsFuture::from(Promise::new(&mut |resolve, reject| {
        if let Some(attach) = attach.take() {
            attach(&resolve, &reject);
        }
    }))
}

/// The result of `request` once it succeeds.
async fn finished(request: &IdbRequest) -> Result<JsValue, StoreError> {
    let done = settled_by(|resolve, reject| {
        request.set_onsuccess(Some(resolve));
        request.set_onerror(Some(reject));
    });
    let outcome = done.await;
    request.set_onsuccess(None);
    request.set_onerror(None);
    match outcome {
        Ok(_) => request.result().map_err(|e| StoreError::from_js(&e)),
        Err(_) => Err(match request.error() {
            Ok(Some(e)) => StoreError::from_exception(&e),
            _ => StoreError::Failed("a request failed".into()),
        }),
    }
}

/// Resolves when `tx` commits; fails with why it aborted.
fn committed(tx: &IdbTransaction) -> impl std::future::Future<Output = Result<(), StoreError>> {
    let done = settled_by(|resolve, reject| {
        tx.set_oncomplete(Some(resolve));
        tx.set_onerror(Some(reject));
        tx.set_onabort(Some(reject));
    });
    let tx = tx.clone();
    async move {
        let outcome = done.await;
        match outcome {
            Ok(_) => Ok(()),
            Err(_) => Err(match tx.error() {
                Some(e) => StoreError::from_exception(&e),
                None => StoreError::Failed("the transaction was aborted".into()),
            }),
        }
    }
}

fn key_value(key: &Key) -> JsValue {
    let parts = Array::new();
    parts.push(&JsValue::from_str(&key.session));
    for p in &key.path {
        parts.push(&JsValue::from(*p));
    }
    parts.into()
}

/// The key range of a prefix: `[session, ...path]` to `[session, ...path, []]` (an array sorts
/// after every number and string).
fn prefix_range(key: &Key) -> Result<IdbKeyRange, StoreError> {
    let lower = key_value(key);
    let upper: Array = Array::from(&lower);
    upper.push(&Array::new());
    IdbKeyRange::bound(&lower, &upper).map_err(|e| StoreError::from_js(&e))
}

fn path_of(key: &JsValue) -> Vec<u32> {
    Array::from(key)
        .iter()
        .skip(1)
        .filter_map(|v| v.as_f64())
        .map(|v| v as u32)
        .collect()
}

/// An open database.
pub struct Db {
    db: IdbDatabase,
}

impl Db {
    /// Opens the app's database, creating its stores the first time.
    pub async fn open() -> Result<Db, StoreError> {
        Db::open_named(DB_NAME).await
    }

    /// Opens (creating as needed) the database `name` with the app's layout.
    pub async fn open_named(name: &str) -> Result<Db, StoreError> {
        let window =
            web_sys::window().ok_or_else(|| StoreError::Unavailable("no window".into()))?;
        let factory = match window.indexed_db() {
            Ok(Some(f)) => f,
            Ok(None) => return Err(StoreError::Unavailable("no IndexedDB".into())),
            Err(e) => return Err(unavailable(&e)),
        };
        let request: IdbOpenDbRequest = factory
            .open_with_u32(name, SCHEMA_VERSION)
            .map_err(|e| unavailable(&e))?;
        let upgrade = Closure::<dyn FnMut(web_sys::Event)>::new({
            let request = request.clone();
            move |_| {
                let Ok(result) = request.result() else { return };
                let db: IdbDatabase = result.unchecked_into();
                let existing = db.object_store_names();
                for store in Store::ALL {
                    if !existing.contains(store.name()) {
                        let _ = db.create_object_store(store.name());
                    }
                }
            }
        });
        request.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
        let opened = finished(&request).await;
        request.set_onupgradeneeded(None);
        drop(upgrade);
        let db: IdbDatabase = opened
            .map_err(|e| match e {
                StoreError::Failed(why) => StoreError::Unavailable(why),
                other => other,
            })?
            .unchecked_into();
        // Let another tab (or a newer version of the app) upgrade the database.
        let close = Closure::<dyn FnMut()>::new({
            let db = db.clone();
            move || db.close()
        });
        db.set_onversionchange(Some(close.as_ref().unchecked_ref()));
        close.forget();
        Ok(Db { db })
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.db.close();
    }

    fn transaction(
        &self,
        stores: &[Store],
        mode: IdbTransactionMode,
    ) -> Result<IdbTransaction, StoreError> {
        let names = Array::new();
        for s in stores {
            names.push(&JsValue::from_str(s.name()));
        }
        self.db
            .transaction_with_str_sequence_and_mode(&names, mode)
            .map_err(|e| StoreError::from_js(&e))
    }

    fn object_store(tx: &IdbTransaction, store: Store) -> Result<IdbObjectStore, StoreError> {
        tx.object_store(store.name())
            .map_err(|e| StoreError::from_js(&e))
    }

    /// Applies `batch` in one transaction: all of it or, on failure, nothing. The transaction
    /// is started before this returns, so batches apply in the order this is called. A batch
    /// that keeps a file fails: see [`Db::write_keeping`].
    pub fn write(
        &self,
        batch: &Batch,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> {
        self.write_keeping(batch, &|_| None)
    }

    /// [`Db::write`], taking the files the batch keeps from `files` (by the index of their
    /// first trajectory).
    pub fn write_keeping(
        &self,
        batch: &Batch,
        files: &dyn Fn(usize) -> Option<web_sys::File>,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> {
        let started = if batch.is_empty() {
            Ok(None)
        } else {
            self.start_write(batch, files).map(Some)
        };
        async move {
            match started {
                Ok(Some(done)) => done.await,
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            }
        }
    }

    fn start_write(
        &self,
        batch: &Batch,
        files: &dyn Fn(usize) -> Option<web_sys::File>,
    ) -> Result<impl std::future::Future<Output = Result<(), StoreError>>, StoreError> {
        let tx = self.transaction(&batch.stores(), IdbTransactionMode::Readwrite)?;
        let done = committed(&tx);
        let queued = (|| {
            for Prefix { store, key } in &batch.deletes {
                let range = prefix_range(key)?;
                Db::object_store(&tx, *store)?
                    .delete(&range)
                    .map_err(|e| StoreError::from_js(&e))?;
            }
            for put in &batch.puts {
                let value = match &put.value {
                    Value::Text(text) => JsValue::from_str(text),
                    Value::Source(source) => {
                        let file = files(source.first).ok_or_else(|| {
                            StoreError::Failed(format!("{} is not at hand to keep", source.name))
                        })?;
                        source_value(source, &file)?
                    }
                };
                Db::object_store(&tx, put.store)?
                    .put_with_key(&value, &key_value(&put.key))
                    .map_err(|e| StoreError::from_js(&e))?;
            }
            Ok(())
        })();
        match queued {
            Ok(()) => Ok(done),
            Err(e) => {
                let _ = tx.abort();
                Err(e)
            }
        }
    }

    /// Every session record, as stored.
    pub async fn session_records(&self) -> Result<Vec<String>, StoreError> {
        let tx = self.transaction(&[Store::Sessions], IdbTransactionMode::Readonly)?;
        let request = Db::object_store(&tx, Store::Sessions)?
            .get_all()
            .map_err(|e| StoreError::from_js(&e))?;
        let values = finished(&request).await?;
        Ok(Array::from(&values)
            .iter()
            .filter_map(|v| v.as_string())
            .collect())
    }

    /// Every record of session `id`, read in one transaction. `record` is empty when there is
    /// no such session.
    pub async fn read_session(&self, id: &str) -> Result<StoredParts, StoreError> {
        self.read_session_kept(id).await.map(|(parts, _)| parts)
    }

    /// [`Db::read_session`], with the files the session keeps, by the index of their first
    /// trajectory.
    pub async fn read_session_kept(
        &self,
        id: &str,
    ) -> Result<(StoredParts, std::collections::HashMap<usize, web_sys::File>), StoreError> {
        let tx = self.transaction(&Store::ALL, IdbTransactionMode::Readonly)?;
        let whole = prefix_range(&Key {
            session: id.to_owned(),
            path: Vec::new(),
        })?;
        // Every request is made before the first is awaited: the transaction stays active.
        let mut requests = Vec::new();
        for store in Store::ALL {
            let os = Db::object_store(&tx, store)?;
            let keys = os
                .get_all_keys_with_key(&whole)
                .map_err(|e| StoreError::from_js(&e))?;
            let values = os
                .get_all_with_key(&whole)
                .map_err(|e| StoreError::from_js(&e))?;
            requests.push((store, keys, values));
        }
        let mut parts = StoredParts::default();
        let mut files = std::collections::HashMap::new();
        for (store, keys, values) in requests {
            let keys = Array::from(&finished(&keys).await?);
            let values = Array::from(&finished(&values).await?);
            if store == Store::Sources {
                for (k, v) in keys.iter().zip(values.iter()) {
                    let (source, file) = source_of(&path_of(&k), &v)?;
                    files.insert(source.first, file);
                    parts.sources.push(source);
                }
                continue;
            }
            let records: Vec<(Vec<u32>, String)> = keys
                .iter()
                .zip(values.iter())
                .map(|(k, v)| (path_of(&k), v.as_string().unwrap_or_default()))
                .collect();
            match store {
                Store::Sessions => {
                    parts.record = records.into_iter().next().map(|r| r.1).unwrap_or_default()
                }
                Store::Files => parts.files = records,
                Store::Trajectories => parts.trajectories = records,
                Store::Results => parts.results = records,
                Store::Exchanges => parts.exchanges = records,
                Store::Reviews => parts.reviews = records,
                Store::Sources => {}
            }
        }
        Ok((parts, files))
    }

    /// Deletes every stored session.
    pub async fn clear(&self) -> Result<(), StoreError> {
        let tx = self.transaction(&Store::ALL, IdbTransactionMode::Readwrite)?;
        let done = committed(&tx);
        for store in Store::ALL {
            Db::object_store(&tx, store)?
                .clear()
                .map_err(|e| StoreError::from_js(&e))?;
        }
        done.await
    }
}

fn unavailable(e: &JsValue) -> StoreError {
    match StoreError::from_js(e) {
        StoreError::Failed(why) => StoreError::Unavailable(why),
        other => other,
    }
}

/// Deletes the database `name` (tests start from nothing with it).
pub async fn delete_database(name: &str) -> Result<(), StoreError> {
    let factory = web_sys::window()
        .and_then(|w| w.indexed_db().ok().flatten())
        .ok_or_else(|| StoreError::Unavailable("no IndexedDB".into()))?;
    let request = factory
        .delete_database(name)
        .map_err(|e| StoreError::from_js(&e))?;
    finished(&request).await.map(|_| ())
}

/// The `sources` value of a kept file: `{name, format, file}` (format: a format id, or null
/// when it was detected).
fn source_value(source: &Source, file: &web_sys::File) -> Result<JsValue, StoreError> {
    let value = js_sys::Object::new();
    let set = |key: &str, v: &JsValue| {
        js_sys::Reflect::set(&value, &JsValue::from_str(key), v)
            .map(|_| ())
            .map_err(|e| StoreError::from_js(&e))
    };
    set("name", &JsValue::from_str(&source.name))?;
    set(
        "format",
        &source
            .format
            .map_or(JsValue::NULL, |f| JsValue::from_str(f.id())),
    )?;
    set("file", file)?;
    Ok(value.into())
}

/// A kept file's record as read: what it is, and the file.
fn source_of(path: &[u32], value: &JsValue) -> Result<(Source, web_sys::File), StoreError> {
    let damaged = |why: &str| StoreError::Failed(format!("a record of sources is damaged: {why}"));
    let get = |key: &str| js_sys::Reflect::get(value, &JsValue::from_str(key)).ok();
    let first = *path
        .first()
        .ok_or_else(|| damaged("a key without an index"))? as usize;
    let name = get("name")
        .and_then(|v| v.as_string())
        .ok_or_else(|| damaged("no name"))?;
    let format = match get("format").and_then(|v| v.as_string()) {
        None => None,
        Some(id) => Some(
            crate::import::SourceFormat::parse(&id)
                .ok_or_else(|| damaged(&format!("an unknown format {id}")))?,
        ),
    };
    let file = get("file")
        .and_then(|v| v.dyn_into::<web_sys::File>().ok())
        .ok_or_else(|| damaged("no file"))?;
    Ok((
        Source {
            first,
            name,
            format,
        },
        file,
    ))
}
