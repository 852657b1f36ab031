//! Stage 2: outcome extraction.

pub mod llm;
pub mod rules;
