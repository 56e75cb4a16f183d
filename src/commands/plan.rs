//! `offboard plan`.

use crate::cli::PlanArgs;
use crate::exit::Exit;

use super::Ctx;

pub fn exec(_ctx: &Ctx, _args: PlanArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("not built yet")
}
