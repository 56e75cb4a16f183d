//! `offboard status`.

use crate::cli::StatusArgs;
use crate::exit::Exit;

use super::Ctx;

pub fn exec(_ctx: &Ctx, _args: StatusArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("not built yet")
}
