//! `offboard resume`: continue an interrupted departure from its journal.

use crate::cli::ResumeArgs;
use crate::exit::Exit;
use crate::journal::Record;

use super::{Ctx, common};

pub fn exec(ctx: &Ctx, args: ResumeArgs) -> anyhow::Result<Exit> {
    let (id, _) = common::find_departure(ctx, &args.departure)?;
    let key = common::signing_key(ctx)?;
    let driving = common::Driving::open(ctx, &id)?;
    let interactive = !args.non_interactive && common::stdin_is_terminal();
    driving.append(
        None,
        Record::RunStarted {
            command: "resume".into(),
        },
    )?;
    common::drive(ctx, &driving, &key, interactive, "resume")
}
