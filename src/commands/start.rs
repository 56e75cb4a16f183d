//! `offboard start`.

use crate::cli::StartArgs;
use crate::exit::Exit;

use super::Ctx;

pub fn exec(_ctx: &Ctx, _args: StartArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("not built yet")
}
