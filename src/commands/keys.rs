//! `offboard keys`.

use crate::cli::KeysCommand;
use crate::exit::Exit;

use super::Ctx;

pub fn exec(_ctx: &Ctx, _cmd: KeysCommand) -> anyhow::Result<Exit> {
    anyhow::bail!("not built yet")
}
