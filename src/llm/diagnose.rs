//! "Check connection": what is wrong with an endpoint, said plainly, with how to fix it.
//!
//! The browser tells a page very little when a request fails: an unreachable server and a
//! server that does not allow the page's origin (CORS) both end in the same network error. The
//! client therefore probes twice: a normal request to `/models`, and when that fails, an opaque
//! (`no-cors`) request to the same address, which succeeds whenever the server answers at all.
//! This module turns those observations into a diagnosis; it does no I/O itself.

use serde::Serialize;

/// What the client observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// `/models` answered with this status and body.
    Answered { status: u16, body: String },
    /// The normal request failed at the network level. `reachable` is what the opaque retry
    /// found: `Some(true)` the server answered (so CORS blocked the page), `Some(false)` it did
    /// not, `None` not tried.
    NetworkError {
        message: String,
        reachable: Option<bool>,
    },
    /// No answer in time.
    Timeout,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Diagnosis {
    /// The endpoint answered with a model list.
    Ok {
        models: Vec<String>,
        /// Whether the chosen model is in the list (`None`: no model chosen yet).
        model_found: Option<bool>,
    },
    /// The base URL is not an http(s) URL.
    BadUrl {
        reason: String,
    },
    /// An https page may not call a plain-http endpoint that is not on this machine.
    MixedContent,
    /// Nothing answered at that address.
    Unreachable,
    /// The server answered but did not allow this page's origin.
    Cors {
        origin: String,
    },
    /// The server refused the credentials.
    Unauthorized {
        status: u16,
        message: String,
    },
    /// `/models` does not exist there: probably a wrong base URL.
    NotFound,
    /// The endpoint works but does not serve the chosen model.
    UnknownModel {
        model: String,
        models: Vec<String>,
    },
    /// Any other HTTP error.
    HttpError {
        status: u16,
        message: String,
    },
    /// The answer was not an OpenAI-compatible model list.
    NotOpenAiCompatible {
        detail: String,
    },
    Timeout,
}

impl Diagnosis {
    /// Whether the endpoint can be used as configured.
    pub fn is_ok(&self) -> bool {
        matches!(self, Diagnosis::Ok { model_found, .. } if *model_found != Some(false))
    }

    /// A one-line verdict.
    pub fn title(&self) -> String {
        match self {
            Diagnosis::Ok { models, .. } => format!(
                "Connected: the endpoint serves {} model{}",
                models.len(),
                if models.len() == 1 { "" } else { "s" }
            ),
            Diagnosis::BadUrl { reason } => format!("The base URL is not usable: {reason}"),
            Diagnosis::MixedContent => {
                "Blocked: this page is served over https and the endpoint is plain http".into()
            }
            Diagnosis::Unreachable => "Nothing answers at this address".into(),
            Diagnosis::Cors { origin } => {
                format!("The endpoint answered, but does not allow requests from {origin} (CORS)")
            }
            Diagnosis::Unauthorized { status, .. } => {
                format!("The endpoint refused the API key (HTTP {status})")
            }
            Diagnosis::NotFound => "No /models at this address (HTTP 404)".into(),
            Diagnosis::UnknownModel { model, .. } => {
                format!("The endpoint does not serve the model \"{model}\"")
            }
            Diagnosis::HttpError { status, .. } => format!("The endpoint answered HTTP {status}"),
            Diagnosis::NotOpenAiCompatible { .. } => {
                "The answer is not an OpenAI-compatible model list".into()
            }
            Diagnosis::Timeout => "The endpoint did not answer in time".into(),
        }
    }

    /// What to do about it (empty when nothing needs doing).
    pub fn advice(&self) -> String {
        match self {
            Diagnosis::Ok {
                model_found: None, ..
            } => "Pick a model from the list.".into(),
            Diagnosis::Ok { .. } => String::new(),
            Diagnosis::BadUrl { .. } => "Use the server's OpenAI-compatible base URL, for example \
                http://localhost:11434/v1 (Ollama), http://localhost:8080/v1 (llama.cpp), \
                http://localhost:8000/v1 (vLLM) or https://api.openai.com/v1."
                .into(),
            Diagnosis::MixedContent => "Browsers only let an https page call plain http on this \
                machine (localhost or 127.0.0.1). Serve the endpoint over https, use \
                http://localhost with a local server or tunnel, or open this app from http://localhost."
                .into(),
            Diagnosis::Unreachable => "Check that the server is running and listening on this \
                host and port, and that the base URL (including /v1) is right. Ollama: `ollama \
                serve`; llama.cpp: `llama-server --port 8080`; vLLM: `vllm serve MODEL`."
                .into(),
            Diagnosis::Cors { origin } => format!(
                "Allow this page's origin on the server, then check again. \
                Ollama: restart it with OLLAMA_ORIGINS=\"{origin}\" (localhost pages are allowed by default). \
                llama.cpp server: add --cors-origins \"{origin}\" (or *). \
                vLLM: add --allowed-origins '[\"{origin}\"]'. \
                LM Studio: start the server with --cors (or enable CORS in its server settings). \
                Behind a proxy: make it answer OPTIONS preflights and send Access-Control-Allow-Origin."
            ),
            Diagnosis::Unauthorized { message, .. } => {
                let mut s = String::from(
                    "Check the API key (it is sent as \"Authorization: Bearer …\"). Local servers \
                     usually need none: leave the field empty.",
                );
                if !message.is_empty() {
                    s.push_str(&format!(" The server said: {message}"));
                }
                s
            }
            Diagnosis::NotFound => "The base URL should end where /models and /chat/completions \
                begin, usually with /v1 (e.g. http://localhost:11434/v1)."
                .into(),
            Diagnosis::UnknownModel { models, .. } => {
                if models.is_empty() {
                    "The endpoint lists no models: load one on the server first.".into()
                } else {
                    format!("Choose one of: {}.", models.join(", "))
                }
            }
            Diagnosis::HttpError { message, .. } => {
                if message.is_empty() {
                    "Check the server's log.".into()
                } else {
                    format!("The server said: {message}")
                }
            }
            Diagnosis::NotOpenAiCompatible { detail } => format!(
                "Point the app at the server's OpenAI-compatible API (usually the /v1 path). {detail}"
            ),
            Diagnosis::Timeout => "The server may be busy loading a model; try again, or check \
                that nothing between the browser and the server holds the request."
                .into(),
        }
    }
}

/// Parts of a URL the checks need.
struct UrlParts<'a> {
    scheme: &'a str,
    host: &'a str,
}

fn url_parts(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    Some(UrlParts { scheme, host })
}

/// Whether `host` is this machine, which browsers let https pages call over plain http.
pub fn is_local_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost") || host == "::1" || host.starts_with("127.")
}

/// The base URL with surrounding blanks and trailing slashes removed.
pub fn normalize_base_url(base_url: &str) -> String {
    base_url.trim().trim_end_matches('/').to_owned()
}

/// Checks the base URL before any request: its form, and mixed content against the page's
/// origin (e.g. `https://app.example` or `http://localhost:8080`).
pub fn pre_check(base_url: &str, page_origin: &str) -> Option<Diagnosis> {
    let url = normalize_base_url(base_url);
    let Some(parts) = url_parts(&url) else {
        return Some(Diagnosis::BadUrl {
            reason: "it should start with http:// or https://".into(),
        });
    };
    let scheme = parts.scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Some(Diagnosis::BadUrl {
            reason: format!("\"{}\" is not http or https", parts.scheme),
        });
    }
    if parts.host.is_empty() {
        return Some(Diagnosis::BadUrl {
            reason: "it has no host".into(),
        });
    }
    if url.contains(char::is_whitespace) {
        return Some(Diagnosis::BadUrl {
            reason: "it contains spaces".into(),
        });
    }
    let page_https = page_origin.to_ascii_lowercase().starts_with("https:");
    if page_https && scheme == "http" && !is_local_host(parts.host) {
        return Some(Diagnosis::MixedContent);
    }
    None
}

/// The message of an OpenAI-style error body (`{"error": {"message": ...}}` or
/// `{"error": "..."}`), or the body itself, shortened.
pub fn error_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        let msg = v
            .get("error")
            .and_then(|e| e.get("message").or(Some(e)))
            .and_then(|m| m.as_str())
            .or_else(|| v.get("message").and_then(|m| m.as_str()))
            .or_else(|| v.get("detail").and_then(|m| m.as_str()));
        if let Some(m) = msg {
            return m.trim().to_owned();
        }
    }
    let body = body.trim();
    match body.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_owned(),
    }
}

/// The diagnosis for what the client observed. `model` is the chosen model ("" for none).
pub fn diagnose(probe: &Probe, page_origin: &str, model: &str) -> Diagnosis {
    match probe {
        Probe::Timeout => Diagnosis::Timeout,
        Probe::NetworkError { reachable, .. } => match reachable {
            Some(true) => Diagnosis::Cors {
                origin: page_origin.to_owned(),
            },
            _ => Diagnosis::Unreachable,
        },
        Probe::Answered { status, body } => match *status {
            200..=299 => match serde_json::from_str::<super::ModelList>(body) {
                Ok(list) => {
                    let models: Vec<String> = list.ids().map(str::to_owned).collect();
                    let model = model.trim();
                    if model.is_empty() {
                        Diagnosis::Ok {
                            models,
                            model_found: None,
                        }
                    } else if models.iter().any(|m| m == model) {
                        Diagnosis::Ok {
                            models,
                            model_found: Some(true),
                        }
                    } else {
                        Diagnosis::UnknownModel {
                            model: model.to_owned(),
                            models,
                        }
                    }
                }
                Err(e) => Diagnosis::NotOpenAiCompatible {
                    detail: format!("({e})"),
                },
            },
            401 | 403 => Diagnosis::Unauthorized {
                status: *status,
                message: error_message(body),
            },
            404 => Diagnosis::NotFound,
            s => Diagnosis::HttpError {
                status: s,
                message: error_message(body),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODELS: &str =
        r#"{"object":"list","data":[{"id":"llama3.2","object":"model"},{"id":"qwen2.5:7b"}]}"#;

    #[test]
    fn urls_are_checked_before_any_request() {
        assert!(matches!(
            pre_check("localhost:11434/v1", "http://localhost:8080"),
            Some(Diagnosis::BadUrl { .. })
        ));
        assert!(matches!(
            pre_check("ftp://x/v1", "http://localhost:8080"),
            Some(Diagnosis::BadUrl { .. })
        ));
        assert_eq!(
            pre_check("http://192.168.1.20:11434/v1", "https://app.example"),
            Some(Diagnosis::MixedContent)
        );
        for ok in [
            "http://localhost:11434/v1/",
            "http://127.0.0.1:8080/v1",
            "http://[::1]:8000/v1",
        ] {
            assert_eq!(pre_check(ok, "https://app.example"), None, "{ok}");
        }
        assert_eq!(
            pre_check("http://10.0.0.5:8000/v1", "http://localhost:8080"),
            None
        );
        assert_eq!(
            pre_check(" https://api.openai.com/v1 ", "https://app.example"),
            None
        );
    }

    #[test]
    fn network_errors_split_into_cors_and_unreachable() {
        let origin = "http://127.0.0.1:8080";
        let cors = diagnose(
            &Probe::NetworkError {
                message: "Failed to fetch".into(),
                reachable: Some(true),
            },
            origin,
            "",
        );
        assert_eq!(
            cors,
            Diagnosis::Cors {
                origin: origin.into()
            }
        );
        let advice = cors.advice();
        for fix in [
            "OLLAMA_ORIGINS",
            "--cors-origins",
            "--allowed-origins",
            "--cors",
        ] {
            assert!(advice.contains(fix), "{fix} missing from {advice}");
        }
        assert!(advice.contains(origin));
        assert_eq!(
            diagnose(
                &Probe::NetworkError {
                    message: "Failed to fetch".into(),
                    reachable: Some(false)
                },
                origin,
                ""
            ),
            Diagnosis::Unreachable
        );
    }

    #[test]
    fn answers_are_classified() {
        let o = "http://localhost:8080";
        let ok = diagnose(
            &Probe::Answered {
                status: 200,
                body: MODELS.into(),
            },
            o,
            "llama3.2",
        );
        assert!(ok.is_ok());
        assert!(ok.title().contains("2 models"));
        let unknown = diagnose(
            &Probe::Answered {
                status: 200,
                body: MODELS.into(),
            },
            o,
            "gpt-4o",
        );
        assert!(!unknown.is_ok());
        assert!(unknown.advice().contains("llama3.2, qwen2.5:7b"));
        let denied = diagnose(
            &Probe::Answered {
                status: 401,
                body: r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#.into(),
            },
            o,
            "",
        );
        assert_eq!(
            denied,
            Diagnosis::Unauthorized {
                status: 401,
                message: "Incorrect API key provided".into()
            }
        );
        assert_eq!(
            diagnose(
                &Probe::Answered {
                    status: 404,
                    body: "Not Found".into()
                },
                o,
                ""
            ),
            Diagnosis::NotFound
        );
        assert!(matches!(
            diagnose(
                &Probe::Answered {
                    status: 200,
                    body: "<html>hello</html>".into()
                },
                o,
                ""
            ),
            Diagnosis::NotOpenAiCompatible { .. }
        ));
        assert_eq!(
            diagnose(
                &Probe::Answered {
                    status: 500,
                    body: r#"{"error":"model failed to load"}"#.into()
                },
                o,
                ""
            ),
            Diagnosis::HttpError {
                status: 500,
                message: "model failed to load".into()
            }
        );
        assert_eq!(diagnose(&Probe::Timeout, o, ""), Diagnosis::Timeout);
    }
}
