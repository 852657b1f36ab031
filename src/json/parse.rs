//! A strict JSON reader producing [`Json`]. (Implementation in progress.)

use super::Json;

/// Limits that keep hostile input from costing more than its own record.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Deepest nesting of arrays and objects accepted.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 200 }
    }
}

/// Why a text is not JSON, and where: 1-based line and column (in characters) within the text.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.message, self.line, self.column
        )
    }
}

impl std::error::Error for ParseError {}

pub fn parse(text: &str) -> Result<Json, ParseError> {
    parse_with(text, &Limits::default())
}

pub fn parse_with(_text: &str, _limits: &Limits) -> Result<Json, ParseError> {
    unimplemented!()
}
