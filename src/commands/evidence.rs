//! `offboard evidence`.

use crate::cli::EvidenceCommand;
use crate::exit::Exit;

use super::Ctx;

pub fn exec(_ctx: &Ctx, _cmd: EvidenceCommand) -> anyhow::Result<Exit> {
    anyhow::bail!("not built yet")
}
