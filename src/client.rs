//! The browser's chat client: the only code that talks to the network.
//!
//! It calls the endpoint the user chose, `{base}/models` and `{base}/chat/completions`,
//! sending `Authorization: Bearer …` only when a key is set and no other custom header, so the
//! CORS preflight is as plain as it can be. Each request has a timeout; a run's requests share
//! a [`CancelToken`] that aborts them all when the user stops. A run reaches its endpoints
//! through [`pooled`]: the page's own queue over the base URL and its replicas (see
//! [`crate::llm::pool`]).
//!
//! An error answer's `Retry-After` header is passed on in [`ChatError::Http`]. A cross-origin
//! page can read it only when the endpoint lists it in `Access-Control-Expose-Headers`;
//! otherwise the retry backoff applies.

use crate::llm::diagnose::{error_message, normalize_base_url, Probe};
use crate::llm::pool::{Pooled, Replica};
use crate::llm::{parse_retry_after, ChatClient, ChatError, ChatRequest, ChatResponse};
use gloo_net::http::{Request, RequestBuilder};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{AbortController, RequestMode};

#[derive(Default)]
struct CancelState {
    cancelled: bool,
    in_flight: Vec<AbortController>,
    /// Run once, on cancelling (e.g. to drop the requests waiting in a queue).
    hooks: Vec<Box<dyn FnOnce()>>,
}

/// Stops every request of a run at once.
#[derive(Clone, Default)]
pub struct CancelToken(Rc<RefCell<CancelState>>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// Aborts the requests in flight; later requests fail with [`ChatError::Cancelled`].
    pub fn cancel(&self) {
        let (controllers, hooks) = {
            let mut state = self.0.borrow_mut();
            state.cancelled = true;
            (
                std::mem::take(&mut state.in_flight),
                std::mem::take(&mut state.hooks),
            )
        };
        for hook in hooks {
            hook();
        }
        for c in controllers {
            c.abort();
        }
    }

    /// Runs `hook` when the token is cancelled (at once when it already is).
    pub fn on_cancel(&self, hook: impl FnOnce() + 'static) {
        if self.is_cancelled() {
            hook();
        } else {
            self.0.borrow_mut().hooks.push(Box::new(hook));
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.borrow().cancelled
    }

    pub(crate) fn register(&self, c: &AbortController) {
        self.0.borrow_mut().in_flight.push(c.clone());
    }

    pub(crate) fn unregister(&self, c: &AbortController) {
        self.0.borrow_mut().in_flight.retain(|x| x != c);
    }
}

/// The clients of a run's endpoints (the base URL, then its replicas) behind the page's own
/// queue: at most each endpoint's limit in flight, so that the browser sends every request at
/// once and a request's timeout starts when it is sent. Cancelling `token` also ends the
/// requests still waiting in the queue, unsent.
pub fn pooled(
    endpoints: &[Replica],
    api_key: &str,
    timeout_ms: u32,
    token: &CancelToken,
) -> Pooled<HttpClient> {
    let clients = endpoints
        .iter()
        .map(|e| {
            let client =
                HttpClient::new(&e.base_url, api_key, timeout_ms).with_cancel(token.clone());
            (client, e.limit)
        })
        .collect();
    queued(clients, token)
}

/// Any clients, each with its limit, behind the page's queue; cancelling `token` ends the
/// requests still waiting, unsent.
pub fn queued<C: ChatClient>(clients: Vec<(C, usize)>, token: &CancelToken) -> Pooled<C> {
    let pool = Pooled::new(clients, Rc::new(js_sys::Date::now));
    let queue = pool.canceller();
    token.on_cancel(move || queue.cancel());
    pool
}

/// How a request ended at the network level.
enum Sent {
    Response(gloo_net::http::Response),
    TimedOut,
    Cancelled,
    Failed(String),
}

/// An OpenAI-compatible endpoint reached with `fetch`.
#[derive(Clone)]
pub struct HttpClient {
    base_url: String,
    api_key: Option<String>,
    timeout_ms: u32,
    cancel: CancelToken,
}

impl HttpClient {
    /// `base_url` like `http://localhost:11434/v1`; an empty `api_key` sends no Authorization.
    pub fn new(base_url: &str, api_key: &str, timeout_ms: u32) -> Self {
        let key = api_key.trim();
        HttpClient {
            base_url: normalize_base_url(base_url),
            api_key: (!key.is_empty()).then(|| key.to_owned()),
            timeout_ms,
            cancel: CancelToken::new(),
        }
    }

    /// Shares `token` with other clients so one stop aborts them all.
    pub fn with_cancel(mut self, token: CancelToken) -> Self {
        self.cancel = token;
        self
    }

    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn authorize(&self, b: RequestBuilder) -> RequestBuilder {
        match &self.api_key {
            Some(key) => b.header("Authorization", &format!("Bearer {key}")),
            None => b,
        }
    }

    /// Sends a request built by `build` with this client's timeout and cancel token.
    async fn send(
        &self,
        build: impl FnOnce(RequestBuilder) -> Result<Request, gloo_net::Error>,
        builder: RequestBuilder,
    ) -> Sent {
        if self.cancel.is_cancelled() {
            return Sent::Cancelled;
        }
        let controller = match AbortController::new() {
            Ok(c) => c,
            Err(_) => return Sent::Failed("this browser cannot abort requests".into()),
        };
        let timed_out = Rc::new(RefCell::new(false));
        let on_timeout = {
            let controller = controller.clone();
            let timed_out = timed_out.clone();
            Closure::once(move || {
                *timed_out.borrow_mut() = true;
                controller.abort();
            })
        };
        let window = web_sys::window().expect("a window");
        let timer = window
            .set_timeout_with_callback_and_timeout_and_arguments_0(
                on_timeout.as_ref().unchecked_ref(),
                self.timeout_ms as i32,
            )
            .ok();
        self.cancel.register(&controller);

        let signal = controller.signal();
        let result = match build(builder.abort_signal(Some(&signal))) {
            Ok(request) => request.send().await,
            Err(e) => Err(e),
        };

        if let Some(t) = timer {
            window.clear_timeout_with_handle(t);
        }
        drop(on_timeout);
        self.cancel.unregister(&controller);
        match result {
            Ok(response) => Sent::Response(response),
            Err(_) if *timed_out.borrow() => Sent::TimedOut,
            Err(_) if self.cancel.is_cancelled() => Sent::Cancelled,
            Err(e) => Sent::Failed(e.to_string()),
        }
    }

    /// Probes `{base}/models` for "Check connection". When the request fails at the network
    /// level, an opaque `no-cors` request tells an unreachable server from one that CORS hides.
    pub async fn probe(&self) -> Probe {
        let url = format!("{}/models", self.base_url);
        let sent = self
            .send(|b| b.build(), self.authorize(Request::get(&url)))
            .await;
        match sent {
            Sent::Response(r) => Probe::Answered {
                status: r.status(),
                body: r.text().await.unwrap_or_default(),
            },
            Sent::TimedOut => Probe::Timeout,
            Sent::Cancelled => Probe::NetworkError {
                message: "cancelled".into(),
                reachable: None,
            },
            Sent::Failed(message) => {
                let opaque = self
                    .send(|b| b.build(), Request::get(&url).mode(RequestMode::NoCors))
                    .await;
                Probe::NetworkError {
                    message,
                    reachable: Some(matches!(opaque, Sent::Response(_))),
                }
            }
        }
    }
}

impl ChatClient for HttpClient {
    async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
        let url = format!("{}/chat/completions", self.base_url);
        let body = request.to_json();
        let builder = self
            .authorize(Request::post(&url))
            .header("Content-Type", "application/json");
        match self.send(move |b| b.body(body), builder).await {
            Sent::Cancelled => Err(ChatError::Cancelled),
            Sent::TimedOut => Err(ChatError::Timeout),
            Sent::Failed(m) => Err(ChatError::Network(format!(
                "{m} (the endpoint is unreachable or does not allow this page's origin: use Check connection)"
            ))),
            Sent::Response(r) => {
                let status = r.status();
                // Read before the body: the wait counts from the moment the answer came.
                let retry_after_ms = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| parse_retry_after(&v, js_sys::Date::now()));
                // Reading the body fails only when the connection breaks (text decoding
                // replaces bad bytes): a network error, worth retrying.
                let text = r.text().await.map_err(|e| {
                    ChatError::Network(format!(
                        "the connection broke while the response was read ({e})"
                    ))
                })?;
                if !(200..300).contains(&status) {
                    return Err(ChatError::Http {
                        status,
                        message: error_message(&text),
                        retry_after_ms,
                    });
                }
                serde_json::from_str::<ChatResponse>(&text).map_err(|e| {
                    ChatError::Decode(format!("not a chat-completions response ({e})"))
                })
            }
        }
    }
}
