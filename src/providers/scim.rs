//! Generic SCIM 2.0 (RFC 7643 / 7644).

use std::sync::Arc;

use super::{ActionSpec, KindSpec, Provider, SettingSpec, SettingType, SystemConfig};

pub static KIND: KindSpec = KindSpec {
    name: "scim",
    summary: "Any SCIM 2.0 service provider (RFC 7643/7644)",
    actions: &[
        ActionSpec {
            name: "deactivate_user",
            summary: "PATCH the user active=false; check reads active (a deleted user counts as revoked)",
            destructive: false,
            alerts_user: false,
            params: &[],
        },
        ActionSpec {
            name: "delete_user",
            summary: "DELETE the user; check expects 404",
            destructive: true,
            alerts_user: false,
            params: &[],
        },
    ],
    settings: &[SettingSpec {
        name: "user_attribute",
        ty: SettingType::String,
        required: false,
        summary: "the attribute the person is found by (default userName)",
    }],
    needs_base_url: true,
    needs_token: true,
    connect,
};

fn connect(_cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    anyhow::bail!("scim: not built yet")
}
