//! The application layer: what happens to a departure, shared by every command that drives one
//! (and by bulk runs and reminders, which reuse it).
//!
//! Commands parse their arguments, call in here, and print the outcome; nothing here parses a
//! command line or prints a summary. What a command's context provides is passed in as a
//! [`Session`] (the state dir, the printer for progress and questions, who is acting), so a
//! caller without a command context can drive a departure too.
//!
//! - [`drive`]: a departure being driven — opened under its locks after an integrity check,
//!   appended to, run by the engine, sealed.
//! - [`attach`]: the latest evidence onto the departure's service desk ticket, journaled.
//! - [`signals`]: stopping cleanly on SIGINT, SIGTERM and SIGHUP, even at a checklist question.

pub mod attach;
pub mod drive;
pub mod signals;

pub use drive::{Driven, Driving};
pub use signals::{PromptWaker, StopSignals, runtime};

use crate::state::StateDir;
use crate::ui::Printer;

/// Where and by whom a departure is driven.
pub struct Session<'a> {
    pub state: &'a StateDir,
    /// For warnings, progress and checklist questions.
    pub printer: &'a Printer,
    /// Who the journal records as acting, e.g. `Jane Doe (root@host)`.
    pub actor: String,
}
