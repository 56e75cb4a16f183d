//! offboard: take a person out of an organisation safely.
//!
//! The binary (`main.rs`) parses arguments and hands them to [`run`]; every subcommand lives in
//! [`commands`], which parse, call the application layer [`app`] (driving a departure: locks,
//! integrity check, engine run, sealing) and print; both sit over the library modules below.

pub mod app;
pub mod approval;
pub mod assets;
pub mod batch;
pub mod cli;
pub mod commands;
pub mod core;
pub mod departure;
pub mod engine;
pub mod evidence;
pub mod exit;
pub mod intake;
pub mod integrity;
pub mod journal;
pub mod keys;
pub mod limits;
pub mod notify;
pub mod person;
pub mod plan;
pub mod providers;
pub mod report;
pub mod rollback;
pub mod runbook;
pub mod secrets;
pub mod state;
pub mod store;
pub mod ticketing;
pub mod ui;

pub use commands::run;
