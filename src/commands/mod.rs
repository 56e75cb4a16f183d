//! One module per subcommand, each with an `exec` over the library; `run` parses, dispatches and
//! maps errors to exit statuses.

use std::ffi::OsString;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, GlobalArgs};
use crate::exit::{CliError, Exit};
use crate::state::StateDir;
use crate::ui::Printer;

pub mod approve;
pub mod attach;
pub mod bulk;
pub mod common;
pub mod confirm;
pub mod demo;
pub mod evidence;
pub mod hold;
pub mod intake;
pub mod keys;
pub mod plan;
pub mod preflight;
pub mod remind;
pub mod report;
pub mod resume;
pub mod rollback;
pub mod runbook;
pub mod start;
pub mod state;
pub mod status;
pub mod sweep;
pub mod verify;

/// What every command gets.
pub struct Ctx {
    pub printer: Printer,
    pub global: GlobalArgs,
    pub state: StateDir,
    /// The person acting (`--by`, `OFFBOARD_OPERATOR`), recorded beside the login.
    pub operator: Option<String>,
    /// Attach the evidence to the service desk ticket at the end (start, resume, confirm and
    /// verify, unless `--no-attach`).
    pub auto_attach: bool,
}

/// Parse `args`, run the command, and return the process exit status.
pub fn run(args: impl IntoIterator<Item = OsString>) -> i32 {
    // A run reuses the HTTP client its preflight built (one, not one per system).
    crate::providers::kit::http::share_clients();
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage.code()
            } else {
                0
            };
        }
    };
    let printer = Printer::new(&cli.global);
    init_logging(&cli.global);
    let state = match StateDir::resolve(cli.global.state_dir.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            printer.error(&e, &[]);
            return Exit::Usage.code();
        }
    };
    // `--state postgres://…` (or the runbook's `[state]` table): the shared database, its
    // departures cached under the state dir. Commands that read no departure (and `state`,
    // which names its own) do not connect.
    let state = match select_state(&printer, &cli, state) {
        Ok(s) => s,
        Err(e) => return report(&printer, e).code(),
    };
    let ctx = Ctx {
        printer,
        global: cli.global,
        state,
        operator: cli.command.operator().map(str::to_string),
        auto_attach: cli.command.auto_attach(),
    };
    match dispatch(&ctx, cli.command) {
        Ok(exit) => exit.code(),
        Err(err) => report(&ctx.printer, err).code(),
    }
}

/// Where this command's departures are kept. One rule: `--state` (or `OFFBOARD_STATE`), else
/// the `[state]` table of the runbook the command uses (its `-r`, else `OFFBOARD_RUNBOOK`, else
/// `./offboard.toml`, also for commands that read nothing else from a runbook), else the local
/// state dir. `demo` never takes a runbook's table: it runs the sandbox.
fn select_state(printer: &Printer, cli: &Cli, state: StateDir) -> anyhow::Result<StateDir> {
    let operator = cli.command.operator();
    if matches!(
        cli.command,
        Command::Completions { .. } | Command::Runbook(_) | Command::Keys(_) | Command::State(_)
    ) {
        return Ok(state);
    }
    if let Some(url) = cli.global.state.as_deref().filter(|u| !u.is_empty()) {
        return crate::store::select(state, Some(url), operator);
    }
    if matches!(cli.command, Command::Demo(_)) {
        return Ok(state);
    }
    let Some(path) = state_runbook(&cli.command) else {
        return Ok(state);
    };
    // A runbook that is not there is the command's to report (or not its concern).
    if !path.is_file() {
        return Ok(state);
    }
    let def = match crate::runbook::state_of_file(&path) {
        Ok(Some(def)) => def,
        Ok(None) => return Ok(state),
        Err(e) => {
            let mut err = CliError::new(Exit::Usage, anyhow::anyhow!(e.render(printer.color)));
            err.rendered = true;
            return Err(err.into());
        }
    };
    let target = crate::store::target_from_table(&def, &path)?;
    crate::store::select_target(state, target, operator).map_err(|mut e| {
        if let Some(c) = e.downcast_mut::<CliError>() {
            c.hints.push(format!(
                "this database is the [state] table of {} (--state or OFFBOARD_STATE would override it)",
                path.display()
            ));
        }
        e
    })
}

/// The runbook whose `[state]` table applies: the command's `-r` (which already falls back to
/// `OFFBOARD_RUNBOOK` where the command has one), else `OFFBOARD_RUNBOOK`, else
/// `./offboard.toml`.
fn state_runbook(command: &Command) -> Option<std::path::PathBuf> {
    use crate::cli::IntakeCommand;
    let named = match command {
        Command::Start(a) => a.input.runbook.runbook.clone(),
        Command::Plan(a) | Command::Preflight(a) => a.input.runbook.runbook.clone(),
        Command::Rollback(a) => a.runbook.clone(),
        Command::Attach(a) => a.runbook.clone(),
        Command::Remind(a) => a.runbook.runbook.clone(),
        Command::Verify(a) => a.runbook.clone(),
        Command::Intake(IntakeCommand::Parse(a)) => a.runbook.runbook.clone(),
        Command::Intake(IntakeCommand::Poll(a)) => a.runbook.runbook.clone(),
        Command::Intake(IntakeCommand::Due(a)) => a.runbook.clone(),
        _ => None,
    };
    named
        .or_else(|| {
            std::env::var_os("OFFBOARD_RUNBOOK")
                .filter(|v| !v.is_empty())
                .map(Into::into)
        })
        .or_else(|| Some("offboard.toml".into()))
}

fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Start(args) => start::exec(ctx, args),
        Command::Plan(args) => plan::exec(ctx, args),
        Command::Approve(args) => approve::exec(ctx, args),
        Command::Rollback(args) => rollback::exec(ctx, args),
        Command::Preflight(args) => preflight::exec(ctx, args),
        Command::Resume(args) => resume::exec(ctx, args),
        Command::Confirm(args) => confirm::exec(ctx, args),
        Command::Attach(args) => attach::exec(ctx, args),
        Command::Report(args) => report::exec(ctx, args),
        Command::Remind(args) => remind::exec(ctx, args),
        Command::Hold(args) => hold::exec_hold(ctx, args),
        Command::Release(args) => hold::exec_release(ctx, args),
        Command::Status(args) => status::exec(ctx, args),
        Command::Verify(args) => verify::exec(ctx, args),
        Command::Evidence(cmd) => evidence::exec(ctx, cmd),
        Command::State(cmd) => state::exec(ctx, cmd),
        Command::Runbook(cmd) => runbook::exec(ctx, cmd),
        Command::Keys(cmd) => keys::exec(ctx, cmd),
        Command::Intake(cmd) => intake::exec(ctx, cmd),
        Command::Demo(args) => demo::exec(ctx, args),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "offboard",
                &mut std::io::stdout(),
            );
            Ok(Exit::Ok)
        }
    }
}

/// Print an error the way a person at 2 a.m. needs it, and choose the exit status.
fn report(printer: &Printer, err: anyhow::Error) -> Exit {
    if let Some(cli) = err.downcast_ref::<CliError>() {
        if cli.rendered {
            eprint!("{:#}", cli.error);
        } else {
            printer.error(&cli.error, &cli.hints);
        }
        return cli.exit;
    }
    // A CliError deeper in the chain (wrapped with context) still decides the status.
    let exit = err
        .chain()
        .find_map(|c| c.downcast_ref::<CliError>().map(|c| c.exit))
        .unwrap_or(Exit::Failure);
    printer.error(&err, &io_hints(&err));
    exit
}

/// What to do about the file-system errors an operator can fix.
fn io_hints(err: &anyhow::Error) -> Vec<String> {
    use std::io::ErrorKind;
    let kind = err
        .chain()
        .find_map(|c| c.downcast_ref::<std::io::Error>().map(|e| e.kind()));
    let hint = match kind {
        Some(ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge) => {
            "the disk is full: every event before this one is safe in the journal; free some space, then run `offboard resume <DEPARTURE>`"
        }
        Some(ErrorKind::ReadOnlyFilesystem) => {
            "the state dir is on a read-only file system: remount it read-write, or point --state-dir (OFFBOARD_STATE_DIR) at a writable place"
        }
        Some(ErrorKind::PermissionDenied) => {
            "check who owns the state dir (--state-dir, OFFBOARD_STATE_DIR); offboard keeps it private to its user"
        }
        _ => return Vec::new(),
    };
    vec![hint.to_string()]
}

fn init_logging(g: &GlobalArgs) {
    let default = match g.verbose {
        0 => "warn",
        1 => "offboard=info",
        _ => "offboard=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("OFFBOARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}
