//! AgentHER: turn failed LLM-agent trajectories into training data.
//!
//! The core (everything but `ui` and `client`) knows nothing of the browser: it builds and is
//! tested on the host with `cargo test`.

pub mod example;
pub mod json;
pub mod llm;
pub mod model;
pub mod pipeline;
pub mod pytext;
pub mod reader;
pub mod stages;

/// The product's version, as built.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
