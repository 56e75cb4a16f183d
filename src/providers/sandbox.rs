//! The sandbox: simulated systems, in-process.

use std::sync::Arc;

use super::{KindSpec, Provider, SystemConfig};

pub static KIND: KindSpec = KindSpec {
    name: "sandbox",
    summary: "Simulated systems for the demo and for trying runbooks",
    actions: &[],
    settings: &[],
    needs_base_url: false,
    needs_token: false,
    connect,
};

fn connect(_cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    anyhow::bail!("sandbox: not built yet")
}
