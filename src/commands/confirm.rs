//! `offboard confirm`.

use crate::cli::ConfirmArgs;
use crate::exit::Exit;

use super::Ctx;

pub fn exec(_ctx: &Ctx, _args: ConfirmArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("not built yet")
}
