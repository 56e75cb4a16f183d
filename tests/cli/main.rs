//! The `offboard` binary as a user runs it: whole departures against the sandbox and fakes, crash
//! and signal safety, evidence, runbook checks, prompts under a PTY, state files and secrets.
//!
//! One test binary, one module per area: each links once.

#[path = "../common/mod.rs"]
mod common;

mod approve_cli;
mod assets_cli;
mod attach_cli;
mod attach_psa_cli;
mod auth_cli;
mod bulk_cli;
mod bundle_cli;
mod crash_resume;
mod entra_cli;
mod evidence_cli;
mod exchange_cli;
mod flow_cli;
mod fuzz_runbook;
mod google_cli;
mod intake_cli;
mod prompt_pty;
mod reliability_cli;
mod remind_cli;
mod report_cli;
mod rollback_cli;
mod runbook_cli;
mod scheduling_docs;
mod secrets_cli;
mod shared_state_cli;
mod snapshots_cli;
mod state_files;
mod sweep_cli;
