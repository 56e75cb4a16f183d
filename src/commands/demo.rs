//! `offboard demo`.

use crate::cli::DemoArgs;
use crate::exit::Exit;

use super::Ctx;

pub fn exec(_ctx: &Ctx, _args: DemoArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("not built yet")
}
