//! The browser side of the in-page endpoint: the engine's JS module (`public/inpage/engine.js`,
//! imported on first use), the model the page has loaded, the models kept in the browser, and
//! [`InPageClient`], the [`ChatClient`] that answers with the loaded model.
//!
//! Inference runs in the engine's Web Worker (and, when the page is cross-origin isolated, its
//! thread workers); this thread only passes requests and replies.

use super::{engine_error, ModelCard, Speed};
use crate::client::CancelToken;
use crate::llm::{ChatClient, ChatError, ChatRequest, ChatResponse};
use js_sys::{Function, Promise, Reflect};
use leptos::prelude::*;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortController;

#[wasm_bindgen(module = "/src/inpage/import.js")]
extern "C" {
    #[wasm_bindgen(js_name = importEngine)]
    fn import_engine(path: &str) -> Promise;
}

/// Where the engine's module is, relative to the page.
const MODULE_PATH: &str = "inpage/engine.js";

/// Bytes read from the start of a model file for its header (the tokenizer's arrays can come
/// before the shapes).
const HEAD_BYTES: f64 = 16.0 * 1024.0 * 1024.0;

thread_local! {
    static MODULE: RefCell<Option<JsValue>> = const { RefCell::new(None) };
    static STATE: InPage = InPage::new();
}

/// An engine failure: its kind and message (see [`engine_error`]).
#[derive(Debug, Clone)]
pub struct Fail {
    pub kind: String,
    pub message: String,
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Fail {
    fn new(kind: &str, message: impl Into<String>) -> Self {
        Fail {
            kind: kind.to_owned(),
            message: message.into(),
        }
    }

    fn from_js(v: JsValue) -> Self {
        let text = |key: &str| {
            Reflect::get(&v, &key.into())
                .ok()
                .and_then(|x| x.as_string())
        };
        match (text("kind"), text("message")) {
            (Some(kind), Some(message)) => Fail { kind, message },
            _ => Fail::new(
                "unknown_error",
                text("message")
                    .or_else(|| v.as_string())
                    .unwrap_or_else(|| format!("{v:?}")),
            ),
        }
    }
}

/// What the browser offers the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Env {
    /// Cross-origin isolated: threads can share memory.
    pub isolated: bool,
    pub cores: u32,
    /// The origin private file system, where models are kept.
    pub opfs: bool,
}

/// The model loaded in the page.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub card: ModelCard,
    pub threads: u32,
    pub multi_thread: bool,
}

impl Loaded {
    /// `multi-threaded (2 threads)` or `single-threaded`.
    pub fn threading(&self) -> String {
        if self.multi_thread {
            format!("multi-threaded ({} threads)", self.threads)
        } else {
            "single-threaded".to_owned()
        }
    }
}

/// The in-page endpoint's signals, one set per page.
#[derive(Clone, Copy)]
pub struct InPage {
    pub env: RwSignal<Option<Env>>,
    pub loaded: RwSignal<Option<Loaded>>,
    /// What is under way (`Reading the header…`, `Loading…`), if anything.
    pub busy: RwSignal<Option<String>>,
    pub error: RwSignal<Option<String>>,
    /// Models kept in the browser: name and size.
    pub kept: RwSignal<Vec<(String, u64)>>,
    pub speed: RwSignal<Speed>,
}

impl InPage {
    fn new() -> Self {
        InPage {
            env: RwSignal::new(None),
            loaded: RwSignal::new(None),
            busy: RwSignal::new(None),
            error: RwSignal::new(None),
            kept: RwSignal::new(Vec::new()),
            speed: RwSignal::new(Speed::default()),
        }
    }

    /// The page's in-page endpoint state.
    pub fn get() -> Self {
        STATE.with(|s| *s)
    }
}

/// The engine's module, imported on first use.
async fn module() -> Result<JsValue, Fail> {
    if let Some(m) = MODULE.with(|m| m.borrow().clone()) {
        return Ok(m);
    }
    let m = JsFuture::from(import_engine(MODULE_PATH))
        .await
        .map_err(|e| {
            Fail::new(
                "load_error",
                format!("the engine could not be loaded: {}", Fail::from_js(e)),
            )
        })?;
    MODULE.with(|slot| *slot.borrow_mut() = Some(m.clone()));
    Ok(m)
}

/// Calls the module's function `name` with `args`, awaiting it when it returns a promise.
async fn call(name: &str, args: &[JsValue]) -> Result<JsValue, Fail> {
    let m = module().await?;
    let f: Function = Reflect::get(&m, &name.into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or_else(|| Fail::new("load_error", format!("the engine has no {name}()")))?;
    let array: js_sys::Array = args.iter().collect();
    let out = f.apply(&JsValue::NULL, &array).map_err(Fail::from_js)?;
    match out.dyn_into::<Promise>() {
        Ok(p) => JsFuture::from(p).await.map_err(Fail::from_js),
        Err(v) => Ok(v),
    }
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// Reads what the browser offers (importing the engine's module).
pub async fn environment() -> Result<Env, Fail> {
    let e = call("environment", &[]).await?;
    let env = Env {
        isolated: get(&e, "isolated").is_truthy(),
        cores: get(&e, "cores").as_f64().unwrap_or(1.0) as u32,
        opfs: get(&e, "opfs").is_truthy(),
    };
    InPage::get().env.set(Some(env.clone()));
    Ok(env)
}

/// The card of a model file, from its header.
pub async fn read_card(file: &web_sys::Blob, name: &str) -> Result<ModelCard, Fail> {
    let end = file.size().min(HEAD_BYTES);
    let head = call("head", &[file.into(), end.into()]).await?;
    let bytes = js_sys::Uint8Array::new(&head).to_vec();
    ModelCard::read(name, file.size() as u64, &bytes)
        .map_err(|e| Fail::new("load_error", format!("{name}: {e}")))
}

/// Loads `file` (a model named `name`) into the engine; keeps it in the browser when `keep`.
/// The page's state follows: busy while it works, then the model or the error.
pub async fn load(file: web_sys::Blob, name: &str, keep: bool) -> Result<Loaded, Fail> {
    let state = InPage::get();
    state.error.set(None);
    let result = load_inner(&file, name, keep).await;
    state.busy.set(None);
    match &result {
        Ok(loaded) => state.loaded.set(Some(loaded.clone())),
        Err(e) => state.error.set(Some(e.message.clone())),
    }
    result
}

async fn load_inner(file: &web_sys::Blob, name: &str, keep: bool) -> Result<Loaded, Fail> {
    let state = InPage::get();
    state.busy.set(Some(format!("Reading {name}…")));
    let env = match state.env.get_untracked() {
        Some(env) => env,
        None => environment().await?,
    };
    let card = read_card(file, name).await?;
    card.check_fits().map_err(|why| Fail::new("too_big", why))?;
    state.busy.set(Some(format!(
        "Loading {} ({})…",
        card.name,
        super::format_bytes(card.size)
    )));
    let key = card.endpoint();
    let info = call(
        "load",
        &[key.into(), file.into(), (card.context() as f64).into()],
    )
    .await
    .map_err(|e| explain_load_failure(e, &card))?;
    if keep && env.opfs {
        state
            .busy
            .set(Some(format!("Keeping {name} in this browser…")));
        call("keep", &[name.into(), file.into()]).await?;
        refresh_kept().await?;
    }
    Ok(Loaded {
        card,
        threads: get(&info, "threads").as_f64().unwrap_or(1.0) as u32,
        multi_thread: get(&info, "multiThread").is_truthy(),
    })
}

/// A load that failed for want of memory says so plainly.
fn explain_load_failure(e: Fail, card: &ModelCard) -> Fail {
    let lower = e.message.to_ascii_lowercase();
    if lower.contains("memory") || lower.contains("allocat") || lower.contains("out of bounds") {
        Fail::new(
            "too_big",
            format!(
                "{} did not fit in the memory this browser gives the page (it needs about {}): {}. Close other tabs, or choose a smaller or more quantised model.",
                card.name,
                super::format_bytes(card.memory_needed()),
                e.message
            ),
        )
    } else {
        e
    }
}

/// Downloads a model from `url` into memory (the browser's own request), then loads it.
pub async fn load_url(url: &str, keep: bool) -> Result<Loaded, Fail> {
    let state = InPage::get();
    state.error.set(None);
    state.busy.set(Some(format!("Downloading {url}…")));
    let progress = Closure::<dyn FnMut(f64, f64)>::new(move |got: f64, total: f64| {
        let text = if total > 0.0 {
            format!(
                "Downloading… {:.0}% of {}",
                got * 100.0 / total,
                super::format_bytes(total as u64)
            )
        } else {
            format!("Downloading… {}", super::format_bytes(got as u64))
        };
        state.busy.set(Some(text));
    });
    let fetched = call("download", &[url.into(), progress.as_ref().clone()]).await;
    drop(progress);
    let file = match fetched {
        Ok(f) => f.unchecked_into::<web_sys::File>(),
        Err(e) => {
            state.busy.set(None);
            state
                .error
                .set(Some(format!("Could not download the model: {}", e.message)));
            return Err(e);
        }
    };
    let name = file.name();
    load(file.into(), &name, keep).await
}

/// Loads the model kept in the browser as `name`.
pub async fn load_kept(name: &str) -> Result<Loaded, Fail> {
    let file = call("open", &[name.into()]).await?;
    if file.is_null() {
        return Err(Fail::new(
            "model_not_loaded",
            format!("{name} is not kept in this browser"),
        ));
    }
    load(file.unchecked_into(), name, false).await
}

/// Re-reads the list of kept models.
pub async fn refresh_kept() -> Result<(), Fail> {
    let list = call("kept", &[]).await?;
    let items = js_sys::Array::from(&list)
        .iter()
        .filter_map(|v| {
            Some((
                get(&v, "name").as_string()?,
                get(&v, "size").as_f64()? as u64,
            ))
        })
        .collect();
    InPage::get().kept.set(items);
    Ok(())
}

/// Deletes the kept model `name`.
pub async fn remove_kept(name: &str) -> Result<(), Fail> {
    call("remove", &[name.into()]).await?;
    refresh_kept().await
}

/// Makes sure the model of endpoint `key` is loaded: waits for a load under way, or loads it
/// from the browser's storage when it is kept there.
async fn ensure(key: &str) -> Result<(), ChatError> {
    let now = call("settled", &[])
        .await
        .map_err(|e| engine_error(&e.kind, &e.message))?;
    if now.as_string().as_deref() == Some(key) {
        return Ok(());
    }
    let name = super::model_of(key).unwrap_or(key);
    match load_kept(name).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind == "model_not_loaded" => Err(engine_error(
            "model_not_loaded",
            &format!("{name} is neither loaded nor kept in this browser"),
        )),
        Err(e) => Err(engine_error(&e.kind, &e.message)),
    }
}

/// The in-page endpoint: answers chat requests with the model loaded in the page.
pub struct InPageClient {
    /// The endpoint id, `inpage://<file name>`.
    key: String,
    timeout_ms: u32,
    cancel: CancelToken,
}

impl InPageClient {
    pub fn new(key: &str, timeout_ms: u32, cancel: CancelToken) -> Self {
        InPageClient {
            key: key.trim().to_owned(),
            timeout_ms,
            cancel,
        }
    }
}

impl ChatClient for InPageClient {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
        if self.cancel.is_cancelled() {
            return Err(ChatError::Cancelled);
        }
        ensure(&self.key).await?;
        let controller = AbortController::new()
            .map_err(|_| ChatError::Network("this browser cannot abort requests".into()))?;
        self.cancel.register(&controller);
        let out = call(
            "chat",
            &[
                request.to_json().into(),
                controller.signal().into(),
                f64::from(self.timeout_ms).into(),
            ],
        )
        .await;
        self.cancel.unregister(&controller);
        let out = match out {
            Ok(out) => out,
            Err(_) if self.cancel.is_cancelled() => return Err(ChatError::Cancelled),
            Err(e) => return Err(engine_error(&e.kind, &e.message)),
        };
        let body = get(&out, "body").as_string().unwrap_or_default();
        let response: ChatResponse = serde_json::from_str(&body)
            .map_err(|e| ChatError::Decode(format!("not a chat-completions response ({e})")))?;
        let usage = response.usage_or_zero();
        let ms = get(&out, "ms").as_f64().unwrap_or(0.0);
        let decode_ms = get(&out, "decodeMs").as_f64();
        InPage::get()
            .speed
            .update(|s| s.add(usage.prompt_tokens, usage.completion_tokens, ms, decode_ms));
        Ok(response)
    }
}

/// What "Check connection" says of the in-page endpoint `base_url`.
pub fn connection(base_url: &str) -> crate::ui::state::Connection {
    let state = InPage::get();
    let loaded = state.loaded.get_untracked();
    let name = super::model_of(base_url).unwrap_or_default();
    let kept = state
        .kept
        .with_untracked(|k| k.iter().any(|(n, _)| n == name));
    let (ok, title, advice) = match loaded {
        Some(l) if l.card.endpoint() == base_url.trim() => (
            true,
            format!("The model runs in this page: {}", l.card.summary()),
            format!("{}; nothing is sent over the network.", l.threading()),
        ),
        _ if kept => (
            true,
            format!("{name} is kept in this browser"),
            "It is loaded when the run starts.".to_owned(),
        ),
        _ => (
            false,
            "No model is loaded in this page".to_owned(),
            "Choose a .gguf file, drop one, or download one in section 2.".to_owned(),
        ),
    };
    crate::ui::state::Connection::Done { ok, title, advice }
}
