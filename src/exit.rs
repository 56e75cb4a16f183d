//! Exit statuses and the user-facing error type.
//!
//! Everything below the commands returns `anyhow::Error` (with context) or a typed error; a
//! command turns what the user must act on into a [`CliError`] carrying the exit status and
//! "hint:" lines telling them what to do next.

use std::fmt;

/// The process exit statuses, as documented in `offboard --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Failure = 1,
    Usage = 2,
    Incomplete = 3,
    Drift = 4,
    InvalidEvidence = 5,
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// An error meant for the person at the terminal: what went wrong, what status to exit with, and
/// what to do about it.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub error: anyhow::Error,
    pub hints: Vec<String>,
    /// Already rendered (e.g. a runbook diagnostic with a snippet): print as is.
    pub rendered: bool,
}

impl CliError {
    pub fn new(exit: Exit, error: impl Into<anyhow::Error>) -> Self {
        CliError {
            exit,
            error: error.into(),
            hints: Vec::new(),
            rendered: false,
        }
    }

    pub fn usage(msg: impl fmt::Display) -> Self {
        Self::new(Exit::Usage, anyhow::anyhow!("{msg}"))
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for CliError {}

/// Shorthand for building a usage error with a hint.
pub fn usage(msg: impl fmt::Display, hint: impl Into<String>) -> anyhow::Error {
    CliError::usage(msg).hint(hint).into()
}
