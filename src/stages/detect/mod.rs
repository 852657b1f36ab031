//! Stage 1: failure detection.

pub mod llm;
pub mod patterns;
pub mod rules;
