//! `offboard demo`: a whole departure against the built-in sandbox.

use std::path::Path;

use crate::cli::DemoArgs;
use crate::exit::{CliError, Exit};

use super::{Ctx, common};

/// The runbook the demo runs (also in `runbooks/demo.toml`).
pub const DEMO_RUNBOOK: &str = include_str!("../../runbooks/demo.toml");

/// The path the demo's departures record for their runbook.
pub const DEMO_RUNBOOK_PATH: &str = "builtin:runbooks/demo.toml";

pub fn exec(ctx: &Ctx, args: DemoArgs) -> anyhow::Result<Exit> {
    let p = &ctx.printer;
    let runbook = crate::runbook::load_str(Path::new(DEMO_RUNBOOK_PATH), DEMO_RUNBOOK.to_string())
        .map_err(|e| common::invalid_runbook(ctx, e))?;
    let interactive = !args.non_interactive && common::stdin_is_terminal();
    p.info(p.bold("offboard demo"));
    p.info(format!(
        "{} {} departure of {} against the sandbox: a simulated identity provider, SaaS app, MDM, vault and mail server, kept in {}. Nothing real is touched.",
        match args.departure_type {
            crate::departure::DepartureType::Involuntary => "An",
            crate::departure::DepartureType::Voluntary => "A",
        },
        args.departure_type.as_str(),
        crate::ui::safe(&args.user),
        ctx.state.sandbox_dir().display()
    ));
    if !interactive {
        p.info("No terminal (or --non-interactive): manual steps stay pending with their owner and deadline.");
    }
    let input = crate::cli::DepartureInput {
        user: Some(args.user.clone()),
        runbook: crate::cli::RunbookArg { runbook: None },
        departure_type: args.departure_type,
        effective_at: None,
        set: vec![
            "manager=manager@example.com".into(),
            "asset_tag=LT-0042".into(),
        ],
        ticket: Some("DEMO-1".into()),
        legal_hold: false,
    };
    let req = common::departure_request(ctx, &input, &runbook, false)?;
    let facts = crate::plan::build(&runbook, &req, ctx.state.root())
        .map_err(|e| CliError::new(Exit::Usage, e))?;
    let id = facts.id.clone();
    p.info(super::plan::render(ctx, &facts));
    ctx.state.ensure()?;
    let person =
        crate::person::PersonLock::acquire(&ctx.state, &facts.runbook.name, &facts.user, &id)?;
    // The same read-only look `start` takes before cutting anything.
    let found = super::preflight::look(ctx, &facts)?;
    super::preflight::report(ctx, &facts, &found, false);
    let exit = common::start_departure(ctx, facts, person, interactive, "demo", Some(found))?;
    p.info("");
    p.info(p.bold("Next, try:"));
    p.info(format!("  offboard status {id}"));
    p.info(format!(
        "  offboard verify {id}            # re-check that access is still revoked"
    ));
    p.info(format!(
        "  offboard rollback {id} --out rollback.json   # undo it (a rescinded termination)"
    ));
    p.info(
        "  offboard start --plan rollback.json          # re-enable what can be, say what cannot",
    );
    p.info(format!(
        "  offboard evidence verify {}",
        ctx.state
            .departure_dir(&id)
            .join(format!("{id}.json"))
            .display()
    ));
    Ok(exit)
}
