//! Generic SCIM 2.0 (RFC 7643 / 7644).

use std::sync::Arc;

use super::{KindSpec, Provider, SystemConfig};

pub static KIND: KindSpec = KindSpec {
    name: "scim",
    summary: "Any SCIM 2.0 service provider (RFC 7643/7644)",
    actions: &[],
    settings: &[],
    needs_base_url: true,
    needs_token: true,
    connect,
};

fn connect(_cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    anyhow::bail!("scim: not built yet")
}
