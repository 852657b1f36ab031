//! Thin wrappers over browser APIs: storage, clock, yielding, downloads, clipboard, files.

use crate::client::CancelToken;
use crate::llm::{RunGuard, Sleep};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

fn window() -> web_sys::Window {
    web_sys::window().expect("a window")
}

fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

/// A localStorage value, if storage is available and the key is set.
pub fn load(key: &str) -> Option<String> {
    storage()?.get_item(key).ok().flatten()
}

/// Stores a value; storage that is full or disabled is ignored.
pub fn save(key: &str, value: &str) {
    if let Some(s) = storage() {
        let _ = s.set_item(key, value);
    }
}

pub fn remove(key: &str) {
    if let Some(s) = storage() {
        let _ = s.remove_item(key);
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// A time as the user's locale writes it, e.g. `22/11/2026, 15:30:05`.
pub fn local_time(epoch_ms: f64) -> String {
    js_sys::Date::new(&JsValue::from_f64(epoch_ms))
        .to_locale_string("default", &JsValue::UNDEFINED)
        .into()
}

/// The page's origin, e.g. `http://localhost:8080`.
pub fn origin() -> String {
    window().location().origin().unwrap_or_default()
}

/// Waits `ms` milliseconds (0: lets the browser render and handle input first).
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

/// Longest single timer of [`sleep_unless_cancelled`]: how late a stop may be noticed.
const CANCEL_CHECK_MS: u64 = 100;

/// Waits `ms` milliseconds, or less when `token` is cancelled or `guard` starts holding
/// requests (a stop, a call that gave up) meanwhile.
pub async fn sleep_unless_cancelled(ms: u64, token: &CancelToken, guard: &RunGuard) {
    let end = now_ms() + ms as f64;
    loop {
        if token.is_cancelled() || guard.hold().is_some() {
            return;
        }
        let left = end - now_ms();
        if left <= 0.0 {
            return;
        }
        sleep(left.min(CANCEL_CHECK_MS as f64).ceil() as i32).await;
    }
}

/// The retry client's pause in the browser: a timer that a stop, or another call giving up,
/// cuts short (the retried call then ends at once, without another request).
#[derive(Clone)]
pub struct RetrySleep(pub CancelToken, pub RunGuard);

impl Sleep for RetrySleep {
    fn sleep(&self, ms: u64) -> impl std::future::Future<Output = ()> {
        let (token, guard) = (self.0.clone(), self.1.clone());
        async move { sleep_unless_cancelled(ms, &token, &guard).await }
    }
}

/// Offers `text` as a file download named `name`.
pub fn download(name: &str, mime: &str, text: &str) -> Result<(), JsValue> {
    let parts = Parts::new();
    parts.parts.push(&JsValue::from_str(text));
    parts.download(name, mime)
}

/// A file being written for a download: its text leaves the wasm memory a part at a time
/// (JavaScript strings the Blob is made of), so a large export never sits whole in the page's
/// memory.
pub struct Parts {
    parts: js_sys::Array,
    /// Bytes not handed over yet; always whole characters once [`Parts::flush`] has run.
    buf: Vec<u8>,
}

/// A part is handed over once this many bytes are waiting.
const PART_BYTES: usize = 1 << 20;

impl Parts {
    pub fn new() -> Self {
        Parts {
            parts: js_sys::Array::new(),
            buf: Vec::new(),
        }
    }

    /// Adds `bytes`, handing a part over once enough wait.
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= PART_BYTES {
            self.flush();
        }
    }

    /// Hands the waiting whole characters over as a part.
    fn flush(&mut self) {
        let whole = match std::str::from_utf8(&self.buf) {
            Ok(_) => self.buf.len(),
            Err(e) => e.valid_up_to(),
        };
        if whole == 0 {
            return;
        }
        let text = std::str::from_utf8(&self.buf[..whole]).expect("checked above");
        self.parts.push(&JsValue::from_str(text));
        self.buf.drain(..whole);
    }

    /// Offers what was written as a file download named `name`.
    pub fn download(mut self, name: &str, mime: &str) -> Result<(), JsValue> {
        self.flush();
        let parts = self.parts;
        let options = web_sys::BlobPropertyBag::new();
        options.set_type(mime);
        let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)?;
        let url = web_sys::Url::create_object_url_with_blob(&blob)?;
        let document = window().document().expect("a document");
        let a: web_sys::HtmlAnchorElement = document.create_element("a")?.unchecked_into();
        a.set_href(&url);
        a.set_download(name);
        a.set_hidden(true);
        let body = document.body().expect("a body");
        body.append_child(&a)?;
        a.click();
        body.remove_child(&a)?;
        // Revoke after the browser has started the download.
        wasm_bindgen_futures::spawn_local(async move {
            sleep(1000).await;
            let _ = web_sys::Url::revoke_object_url(&url);
        });
        Ok(())
    }
}

impl Default for Parts {
    fn default() -> Self {
        Self::new()
    }
}

impl crate::export::Out for Parts {
    fn push_str(&mut self, text: &str) {
        self.push(text.as_bytes());
    }
}

/// For `serde_json` writers (the run report): bytes that may end inside a character wait for
/// the rest of it.
impl std::io::Write for Parts {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.push(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Copies `text` to the clipboard.
pub async fn copy(text: &str) -> Result<(), String> {
    let clipboard = window().navigator().clipboard();
    JsFuture::from(clipboard.write_text(text))
        .await
        .map(|_| ())
        .map_err(|e| {
            e.as_string()
                .unwrap_or_else(|| "the clipboard refused".into())
        })
}

/// Bytes read from a file at a time.
pub const CHUNK_BYTES: f64 = 1024.0 * 1024.0;

/// The bytes of `file` from `start` to `end`.
pub async fn read_slice(file: &web_sys::File, start: f64, end: f64) -> Result<Vec<u8>, String> {
    let blob = file
        .slice_with_f64_and_f64(start, end)
        .map_err(|_| "cannot slice the file".to_string())?;
    let buffer = JsFuture::from(blob.array_buffer())
        .await
        .map_err(|_| "the browser could not read the file".to_string())?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// The files of a file list, in order.
pub fn files_of(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    let Some(list) = list else {
        return Vec::new();
    };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// Focuses the first element matching `selector`, after the page has drawn what the last
/// change rendered. Returns at once; does nothing when there is no such element.
pub fn focus_soon(selector: String) {
    leptos::prelude::request_animation_frame(move || {
        let element = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.query_selector(&selector).ok().flatten())
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
        if let Some(element) = element {
            let _ = element.focus();
        }
    });
}

/// Calls `f` once, the first time `element` comes into the viewport (at once when it is in
/// it already). For work the page should not do before the user looks at its result: the
/// template preview loads the template engine, which is not part of the first load.
pub fn when_visible(element: &web_sys::Element, f: impl FnOnce() + 'static) {
    let mut f = Some(f);
    let on_change = wasm_bindgen::closure::Closure::<
        dyn FnMut(js_sys::Array, web_sys::IntersectionObserver),
    >::new(
        move |entries: js_sys::Array, observer: web_sys::IntersectionObserver| {
            let seen = entries.iter().any(|e| {
                e.dyn_into::<web_sys::IntersectionObserverEntry>()
                    .is_ok_and(|e| e.is_intersecting())
            });
            if seen {
                observer.disconnect();
                if let Some(f) = f.take() {
                    f();
                }
            }
        },
    );
    if let Ok(observer) = web_sys::IntersectionObserver::new(on_change.as_ref().unchecked_ref()) {
        observer.observe(element);
        // Kept for the page's life: one small closure per element watched.
        on_change.forget();
    }
}

/// Follows `when`, but turns true a task after it does (and false at once): a part of the page
/// it shows is then built in a task of its own, not in the one that made it appear. Loading a
/// file makes the file's row, the counts, the run panel, the results, the charts and the
/// review appear together; with a large session, building all of them at once would hold the
/// page for longer than a frame should take.
pub fn later(when: impl Fn() -> bool + Copy + 'static) -> leptos::prelude::Signal<bool> {
    use leptos::prelude::*;
    let shown = RwSignal::new(false);
    Effect::new(move |_| {
        if !when() {
            shown.set(false);
        } else if !shown.get_untracked() {
            leptos::task::spawn_local(async move {
                sleep(0).await;
                // Still wanted (it may have turned false meanwhile).
                if untrack(when) {
                    shown.set(true);
                }
            });
        }
    });
    shown.into()
}
