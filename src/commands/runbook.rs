//! `offboard runbook`.

use crate::cli::RunbookCommand;
use crate::exit::Exit;

use super::Ctx;

pub fn exec(_ctx: &Ctx, _cmd: RunbookCommand) -> anyhow::Result<Exit> {
    anyhow::bail!("not built yet")
}
