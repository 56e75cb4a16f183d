//! `offboard resume`: continue an interrupted departure from its journal.

use crate::cli::ResumeArgs;
use crate::exit::Exit;
use crate::journal::Record;

use super::{Ctx, common, hold};

pub fn exec(ctx: &Ctx, args: ResumeArgs) -> anyhow::Result<Exit> {
    let reason = match (&args.legal_hold, &args.reason) {
        (true, Some(r)) => Some(hold::reason(r)?),
        _ => None,
    };
    if args.from.is_some() || args.batch.is_some() {
        return super::bulk::resume(ctx, args);
    }
    let wanted = args.departure.as_deref().unwrap_or_default();
    let (id, _) = common::find_departure(ctx, wanted)?;
    let key = common::signing_key(ctx)?;
    let driving = common::open_departure(ctx, &id, &key)?;
    let interactive = !args.non_interactive && common::stdin_is_terminal();
    if let Some(reason) = reason {
        match driving.state().hold.current() {
            // Already in force: the run is held as asked; a second hold would record nothing new.
            Some(h) => ctx.printer.warn(format!(
                "departure {id} is already under legal hold (placed {} by {}: {}); it stays in force",
                crate::ui::table::short(&h.at),
                crate::ui::safe(&h.by),
                crate::ui::safe(&h.reason)
            )),
            None => hold::place(ctx, &driving, &id, reason)?,
        }
    }
    // A departure being rolled back goes on with its rollback, never with its cut.
    let rolling_back = {
        let j = driving.journal.lock().unwrap_or_else(|p| p.into_inner());
        crate::rollback::RollbackRun::replay(j.events()).is_some()
    };
    if rolling_back {
        return super::rollback::continue_rollback(ctx, &driving, &key);
    }
    // Approvals given since (new `.sig` files beside the approved plan) unblock their steps.
    super::approve::pick_up(ctx, &driving)?;
    driving.append(
        None,
        Record::RunStarted {
            command: "resume".into(),
        },
    )?;
    common::drive(ctx, &driving, &key, interactive, "resume")
}
