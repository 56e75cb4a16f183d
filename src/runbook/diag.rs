//! Runbook diagnostics: `file:line:column`, a caret snippet and a hint.

use std::ops::Range;

/// One problem in a runbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    /// Byte range in the source, when known.
    pub span: Option<Range<usize>>,
    /// What to do about it.
    pub hint: Option<String>,
}

/// A runbook that could not be loaded: every diagnostic, with the source to render them against.
#[derive(Debug, Clone)]
pub struct RunbookError {
    pub path: String,
    pub source: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl std::fmt::Display for RunbookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for d in &self.diagnostics {
            writeln!(f, "{}: {}", self.path, d.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for RunbookError {}

impl RunbookError {
    /// Temporary plain rendering; replaced by the snippet renderer.
    pub fn render(&self, _color: bool) -> String {
        self.to_string()
    }
}
