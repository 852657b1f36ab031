//! The in-page endpoint: a GGUF model run by llama.cpp compiled to WebAssembly, in the
//! browser's own workers, behind the same [`ChatClient`](crate::llm::ChatClient) as an HTTP
//! endpoint.
//!
//! This module is the part the host tests: the endpoint id (`inpage://<model>`, the base URL
//! the settings, the exchange log and a saved session keep), what the page shows of a model
//! file, whether it fits in the memory the browser gives WebAssembly, the speed meter, and how
//! the engine's errors become [`ChatError`]s. The browser side is [`engine`] (wasm only).

pub mod gguf;

#[cfg(target_arch = "wasm32")]
pub mod engine;

use crate::llm::ChatError;

/// The scheme of the in-page endpoint's base URL.
pub const SCHEME: &str = "inpage://";

/// The most memory the engine's WebAssembly module can have: its memory is declared with a
/// maximum of 65,536 pages of 64 KiB.
pub const WASM_MEMORY_LIMIT: u64 = 4 << 30;

/// The context the engine is loaded with, at most (tokens); smaller when the model's own is.
pub const MAX_CONTEXT: u64 = 8192;

/// The base URL that names the in-page endpoint running `model`.
pub fn endpoint_id(model: &str) -> String {
    format!("{SCHEME}{}", model.trim())
}

/// The model of an in-page base URL; `None` for any other endpoint.
pub fn model_of(base_url: &str) -> Option<&str> {
    base_url.trim().strip_prefix(SCHEME)
}

/// `1.2 GB`, `270 MB`, `12 KB` (decimal units, as file managers show sizes).
pub fn format_bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.0} MB", n / 1e6)
    } else {
        format!("{:.0} KB", (n / 1e3).max(1.0))
    }
}

/// What the page knows of a model file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelCard {
    pub file_name: String,
    pub size: u64,
    /// `general.name`, else the file name without `.gguf`.
    pub name: String,
    pub architecture: Option<String>,
    /// `general.size_label`, e.g. `135M`.
    pub size_label: Option<String>,
    pub quantisation: Option<String>,
    pub context_length: Option<u64>,
    pub layers: Option<u64>,
    pub embedding: Option<u64>,
    pub heads: Option<u64>,
    pub heads_kv: Option<u64>,
}

impl ModelCard {
    /// The card of `file_name` (`size` bytes) whose first bytes are `head`.
    pub fn read(file_name: &str, size: u64, head: &[u8]) -> Result<ModelCard, gguf::GgufError> {
        let h = gguf::parse(head)?;
        let stem = file_name
            .rsplit('/')
            .next()
            .unwrap_or(file_name)
            .trim_end_matches(".gguf");
        Ok(ModelCard {
            file_name: file_name.to_owned(),
            size,
            name: h
                .get_str("general.name")
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(stem)
                .trim()
                .to_owned(),
            architecture: h.get_str("general.architecture").map(str::to_owned),
            size_label: h.get_str("general.size_label").map(str::to_owned),
            quantisation: h
                .quantisation()
                .map(str::to_owned)
                .or_else(|| gguf::quantisation_in_name(file_name)),
            context_length: h.arch_u64("context_length"),
            layers: h.arch_u64("block_count"),
            embedding: h.arch_u64("embedding_length"),
            heads: h.arch_u64("attention.head_count"),
            heads_kv: h
                .arch_u64("attention.head_count_kv")
                .or(h.arch_u64("attention.head_count")),
        })
    }

    /// The id of the endpoint running this model: its file name, which tells quantisations
    /// apart where `general.name` does not.
    pub fn endpoint(&self) -> String {
        endpoint_id(&self.file_name)
    }

    /// The context it is loaded with: its own, at most [`MAX_CONTEXT`].
    pub fn context(&self) -> u64 {
        self.context_length.unwrap_or(4096).clamp(512, MAX_CONTEXT)
    }

    /// One line for the page: `SmolLM2 135M Instruct · 135M · Q4_1 · 101 MB · llama`.
    pub fn summary(&self) -> String {
        let mut parts = vec![self.name.clone()];
        parts.extend(self.size_label.clone());
        parts.extend(self.quantisation.clone());
        parts.push(format_bytes(self.size));
        parts.extend(self.architecture.clone());
        parts.join(" · ")
    }

    /// Bytes of the key-value cache at `context` tokens (16-bit keys and values), when the
    /// header gives the shapes.
    pub fn kv_cache(&self, context: u64) -> Option<u64> {
        let (layers, embedding, heads, heads_kv) =
            (self.layers?, self.embedding?, self.heads?, self.heads_kv?);
        let kv_width = embedding / heads.max(1) * heads_kv;
        Some(2 * layers * context * kv_width * 2)
    }

    /// About how much memory the engine needs for this model at its context: the weights, the
    /// key-value cache (a quarter of the weights when the header lacks the shapes) and
    /// working buffers.
    pub fn memory_needed(&self) -> u64 {
        let kv = self.kv_cache(self.context()).unwrap_or(self.size / 4);
        let buffers = (64 << 20) + self.size / 10;
        self.size + kv + buffers
    }

    /// Whether it fits in the memory WebAssembly can have; the error says why not.
    pub fn check_fits(&self) -> Result<(), String> {
        let need = self.memory_needed();
        if need <= WASM_MEMORY_LIMIT {
            return Ok(());
        }
        Err(format!(
            "{} is too big to run in a browser page: with a context of {} tokens it needs about \
             {} of memory, and the browser gives WebAssembly at most {}. Choose a smaller or \
             more quantised model (a file under about 2.5 GB, e.g. a 1-3B model in Q4_K_M), or \
             use an HTTP endpoint.",
            self.name,
            self.context(),
            format_bytes(need),
            format_bytes(WASM_MEMORY_LIMIT),
        ))
    }
}

/// Tokens per second of the replies generated in the page.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Speed {
    pub replies: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Time spent generating, in milliseconds (prompt and reply).
    pub busy_ms: f64,
    /// The last reply's completion tokens per second of its generation time.
    pub last: Option<f64>,
}

impl Speed {
    /// Counts a reply of `completion` tokens (after a prompt of `prompt`) that took `ms`;
    /// `decode_ms` is the engine's own time for the reply tokens, when it reports it.
    pub fn add(&mut self, prompt: u64, completion: u64, ms: f64, decode_ms: Option<f64>) {
        self.replies += 1;
        self.prompt_tokens += prompt;
        self.completion_tokens += completion;
        self.busy_ms += ms.max(0.0);
        let span = decode_ms.filter(|d| *d > 0.0).unwrap_or(ms);
        self.last = (span > 0.0 && completion > 0).then(|| completion as f64 * 1000.0 / span);
    }

    /// Completion tokens per second of busy time, over every reply.
    pub fn average(&self) -> Option<f64> {
        (self.busy_ms > 0.0 && self.completion_tokens > 0)
            .then(|| self.completion_tokens as f64 * 1000.0 / self.busy_ms)
    }

    /// What the page shows, e.g. `12 replies · 1,530 tokens · 41.2 tokens/s (last 45.0)`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} {} · {} tokens generated",
            self.replies,
            if self.replies == 1 {
                "reply"
            } else {
                "replies"
            },
            self.completion_tokens
        );
        if let Some(avg) = self.average() {
            s.push_str(&format!(" · {avg:.1} tokens/s"));
        }
        if let Some(last) = self.last {
            s.push_str(&format!(" (last reply {last:.1})"));
        }
        s
    }
}

/// The [`ChatError`] of an engine failure: `kind` is the engine's error type
/// (`model_not_loaded`, `kv_cache_full`, `inference_error`, `abort`, ...), `message` its
/// text.
///
/// A model that is not loaded is a transient error: the run pauses, and Resume goes on once the
/// model is loaded again. A prompt too long for the context is a refused request, as a server's
/// HTTP 400; other failures of the engine count as server errors, retried.
pub fn engine_error(kind: &str, message: &str) -> ChatError {
    let lower = message.to_ascii_lowercase();
    match kind {
        "abort" => ChatError::Cancelled,
        "timeout" => ChatError::Timeout,
        "model_not_loaded" => ChatError::Network(format!(
            "the model is not loaded in this page ({message}): load it in section 2, then Resume"
        )),
        "kv_cache_full" => ChatError::http(
            400,
            format!("the prompt does not fit the context: {message}"),
        ),
        _ if lower.contains("context")
            && (lower.contains("exceed") || lower.contains("too long")) =>
        {
            ChatError::http(400, message.to_owned())
        }
        _ if lower.contains("memory") || lower.contains("out of bounds") => ChatError::http(
            507,
            format!("the page ran out of memory: {message} (a smaller model or context may help)"),
        ),
        _ => ChatError::http(500, format!("the in-page engine failed: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::gguf::tests::{gguf, s, u32v};
    use super::*;

    fn smol() -> Vec<u8> {
        gguf(&[
            ("general.architecture", 8, s("llama")),
            ("general.name", 8, s("SmolLM2 135M Instruct")),
            ("general.size_label", 8, s("135M")),
            ("general.file_type", 4, u32v(3)),
            ("llama.context_length", 4, u32v(8192)),
            ("llama.block_count", 4, u32v(30)),
            ("llama.embedding_length", 4, u32v(576)),
            ("llama.attention.head_count", 4, u32v(9)),
            ("llama.attention.head_count_kv", 4, u32v(3)),
        ])
    }

    #[test]
    fn endpoint_ids_round_trip() {
        assert_eq!(endpoint_id(" m.gguf "), "inpage://m.gguf");
        assert_eq!(model_of("inpage://m.gguf"), Some("m.gguf"));
        assert_eq!(model_of("http://localhost:11434/v1"), None);
    }

    #[test]
    fn a_card_from_the_header() {
        let card = ModelCard::read("SmolLM2-135M-Instruct.Q4_1.gguf", 98_000_000, &smol()).unwrap();
        assert_eq!(card.name, "SmolLM2 135M Instruct");
        assert_eq!(card.quantisation.as_deref(), Some("Q4_1"));
        assert_eq!(
            card.summary(),
            "SmolLM2 135M Instruct · 135M · Q4_1 · 98 MB · llama"
        );
        assert_eq!(card.endpoint(), "inpage://SmolLM2-135M-Instruct.Q4_1.gguf");
        assert_eq!(card.context(), 8192);
        // 30 layers × 8192 positions × (576 / 9 × 3) values, keys and values, 2 bytes each.
        assert_eq!(card.kv_cache(8192), Some(2 * 30 * 8192 * 192 * 2));
        assert!(card.check_fits().is_ok());
    }

    #[test]
    fn a_header_without_names_falls_back_to_the_file_name() {
        let card = ModelCard::read("models/tiny-q8_0.gguf", 2_000, &gguf(&[])).unwrap();
        assert_eq!(card.name, "tiny-q8_0");
        assert_eq!(card.quantisation.as_deref(), Some("Q8_0"));
        assert_eq!(card.context(), 4096);
        assert_eq!(card.kv_cache(4096), None);
        assert!(ModelCard::read("notes.txt", 10, b"hello there, world").is_err());
    }

    #[test]
    fn too_big_for_webassembly_says_so() {
        let mut card = ModelCard::read("big.Q4_K_M.gguf", 4_700_000_000, &smol()).unwrap();
        let why = card.check_fits().unwrap_err();
        assert!(why.contains("too big"), "{why}");
        assert!(why.contains("4.3 GB"), "{why}");
        card.size = 2_000_000_000;
        assert!(card.check_fits().is_ok(), "{:?}", card.memory_needed());
    }

    #[test]
    fn speed_of_replies() {
        let mut speed = Speed::default();
        assert_eq!(speed.average(), None);
        speed.add(100, 50, 1000.0, Some(500.0));
        assert_eq!(speed.last, Some(100.0));
        speed.add(100, 30, 1000.0, None);
        assert_eq!(speed.last, Some(30.0));
        assert_eq!(speed.average(), Some(40.0));
        assert_eq!(
            speed.summary(),
            "2 replies · 80 tokens generated · 40.0 tokens/s (last reply 30.0)"
        );
        speed.add(100, 0, 10.0, None);
        assert_eq!(speed.last, None);
    }

    #[test]
    fn engine_errors_become_chat_errors() {
        assert!(engine_error("abort", "aborted").is_cancelled());
        assert_eq!(engine_error("timeout", ""), ChatError::Timeout);
        let gone = engine_error("model_not_loaded", "loadModel() is not yet called");
        assert!(
            gone.is_transient(),
            "the run pauses until the model is back"
        );
        let full = engine_error("kv_cache_full", "n_ctx 8192");
        assert!(!full.is_transient());
        let long = engine_error(
            "inference_error",
            "the request exceeds the available context size",
        );
        assert!(matches!(long, ChatError::Http { status: 400, .. }));
        let oom = engine_error("unknown_error", "Out of memory");
        assert!(
            matches!(oom, ChatError::Http { status: 507, .. }),
            "{oom:?}"
        );
        assert!(engine_error("unknown_error", "boom").is_transient());
        assert_eq!(format_bytes(101_000_000), "101 MB");
        assert_eq!(format_bytes(1_500_000_000), "1.5 GB");
        assert_eq!(format_bytes(12), "1 KB");
    }
}
