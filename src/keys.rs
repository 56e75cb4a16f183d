//! The evidence signing key (OpenSSH Ed25519). Temporary stub; replaced by the keys module.

use std::path::{Path, PathBuf};

use crate::state::StateDir;

pub struct SigningKey {
    path: PathBuf,
}

impl SigningKey {
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn fingerprint(&self) -> String {
        String::new()
    }
}

pub fn load_or_create(key: Option<&Path>, state: &StateDir) -> anyhow::Result<(SigningKey, bool)> {
    let path = key
        .map(Path::to_path_buf)
        .unwrap_or_else(|| state.default_key_path());
    Ok((SigningKey { path }, false))
}
