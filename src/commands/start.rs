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
            if interactive && common::ask_yes_no(ctx, &question, true)? {
                return super::resume::exec(
                    ctx,
                    crate::cli::ResumeArgs {
                        departure: id,
                        non_interactive: args.non_interactive,
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
    common::start_departure(ctx, facts, interactive, "start")
}
