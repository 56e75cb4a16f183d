//! Signed evidence. Temporary stub; replaced by the evidence module.

use std::path::PathBuf;

use crate::journal::Journal;
use crate::keys::SigningKey;
use crate::state::StateDir;

pub struct Sealed {
    pub json_path: PathBuf,
    pub sig_path: PathBuf,
    pub revision: u32,
    pub sha256: String,
}

pub fn seal(
    _state: &StateDir,
    _journal: &mut Journal,
    _key: &SigningKey,
) -> anyhow::Result<Sealed> {
    anyhow::bail!("evidence not built yet")
}
