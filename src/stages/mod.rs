//! The four AgentHER stages, each in its own module.

pub mod detect;
pub mod extract;
pub mod package;
pub mod relabel;
