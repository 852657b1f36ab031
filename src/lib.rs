//! AgentHER: turn failed LLM-agent trajectories into training data.
//!
//! The core (everything but `ui` and `client`) knows nothing of the browser: it builds and is
//! tested on the host with `cargo test`.

pub mod charts;
pub mod checks;
#[cfg(target_arch = "wasm32")]
pub mod client;
pub mod custom;
pub mod duplicates;
pub mod estimate;
pub mod example;
pub mod export;
pub mod grounding;
pub mod import;
pub mod inpage;
pub mod json;
pub mod llm;
pub mod model;
pub mod packed;
pub mod persist;
pub mod pipeline;
pub mod prefs;
pub mod progress;
pub mod pytext;
pub mod reader;
pub mod review;
pub mod session;
pub mod slices;
pub mod stages;
#[cfg(target_arch = "wasm32")]
pub mod store;
#[cfg(target_arch = "wasm32")]
pub mod ui;
pub mod wire;
#[cfg(target_arch = "wasm32")]
pub mod worker;
pub mod workspace;

/// The product's version, as built.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
