//! One module per subcommand; `run` parses and dispatches.

use std::ffi::OsString;

use clap::Parser;

use crate::cli::Cli;

pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    let _cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    1
}
