//! `offboard verify`.

use crate::cli::VerifyArgs;
use crate::exit::Exit;

use super::Ctx;

pub fn exec(_ctx: &Ctx, _args: VerifyArgs) -> anyhow::Result<Exit> {
    anyhow::bail!("not built yet")
}
