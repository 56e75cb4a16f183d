//! `offboard start`: plan, then run a departure.

use crate::cli::StartArgs;
use crate::exit::{CliError, Exit};

use super::{Ctx, common};

pub fn exec(ctx: &Ctx, args: StartArgs) -> anyhow::Result<Exit> {
    if args.dry_run {
        return super::plan::show(ctx, &args.input);
    }
    let runbook = common::load_runbook(ctx, args.input.runbook.runbook.as_deref())?;
    let interactive = !args.non_interactive && common::stdin_is_terminal();
    let req = common::departure_request(ctx, &args.input, &runbook, interactive)?;
    if let Some((id, events)) = ctx.state.find_departure(&req.user)?
        && let Some(state) = crate::departure::DepartureState::replay(&events)
        && !state.is_complete()
    {
        let user = crate::ui::safe(&req.user);
        // Cut off: the last run that began (start, resume) has no `run_finished` after it.
        let crashed = events
            .iter()
            .rev()
            .find_map(|e| match e.record {
                crate::journal::Record::RunFinished { .. } => Some(false),
                crate::journal::Record::RunStarted { .. } => Some(true),
                _ => None,
            })
            .unwrap_or(true);
        if crashed {
            // The last run never reached its end: a second departure would act on the same
            // accounts with no memory of what the first one did.
            let question = format!(
                "{user} has an unfinished departure, {id}, whose last run was cut off. Resume it instead?"
            );
            if interactive && common::ask_yes_no(&question, true)? {
                return super::resume::exec(
                    ctx,
                    crate::cli::ResumeArgs {
                        departure: id,
                        non_interactive: args.non_interactive,
                        operator: args.operator.clone(),
                    },
                );
            }
            return Err(CliError::new(
                Exit::Failure,
                anyhow::anyhow!(
                    "{user} already has an unfinished departure, {id}, whose last run was cut off"
                ),
            )
            .hint(format!("continue it with `offboard resume {id}`"))
            .into());
        }
        ctx.printer.warn(format!(
            "{user} already has an open departure, {id} (steps still pending); starting a second one. `offboard status {id}` shows the first."
        ));
    }
    let facts = crate::plan::build(&runbook, &req, ctx.state.root())
        .map_err(|e| CliError::new(Exit::Usage, e))?;
    if !wait_until_effective(ctx, req.effective_at)? {
        return Ok(Exit::Interrupted);
    }
    common::start_departure(ctx, facts, interactive, "start")
}

/// Hold the run until the departure takes effect. Returns false when Ctrl-C ended the wait
/// (nothing was done).
fn wait_until_effective(ctx: &Ctx, at: chrono::DateTime<chrono::Utc>) -> anyhow::Result<bool> {
    let wait = at - crate::journal::now();
    let Ok(wait) = wait.to_std() else {
        return Ok(true);
    };
    if wait > std::time::Duration::from_secs(24 * 3600) {
        return Err(CliError::usage(format!(
            "the departure takes effect at {}, more than 24 hours from now",
            crate::journal::timestamp(at)
        ))
        .hint("run `offboard start` closer to that time (e.g. from cron or `at`), or check it now with `offboard plan`")
        .into());
    }
    ctx.printer.info(format!(
        "Waiting until {} ({} min) before cutting access. Ctrl-C stops the wait; nothing has been done yet.",
        crate::journal::timestamp(at),
        wait.as_secs().div_ceil(60)
    ));
    let rt = common::runtime()?;
    let reached = rt.block_on(async {
        let mut stop = common::StopSignals::listen()?;
        Ok::<_, anyhow::Error>(tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = stop.recv() => false,
        })
    })?;
    if !reached {
        ctx.printer
            .warn("stopped before the departure took effect; nothing was done");
    }
    Ok(reached)
}
