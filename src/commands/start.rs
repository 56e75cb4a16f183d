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
        && !events
            .iter()
            .any(|e| matches!(e.record, crate::journal::Record::RunFinished { .. }))
    {
        return Err(CliError::new(
            Exit::Failure,
            anyhow::anyhow!(
                "{} already has an unfinished departure, {id}, that did not reach its end",
                crate::ui::safe(&req.user)
            ),
        )
        .hint(format!("continue it with `offboard resume {id}`"))
        .into());
    }
    let facts = crate::plan::build(&runbook, &req, ctx.state.root())
        .map_err(|e| CliError::new(Exit::Usage, e))?;
    common::start_departure(ctx, facts, interactive, "start")
}
