//! The sandbox: simulated systems, in-process.

use std::sync::Arc;

use super::{ActionSpec, KindSpec, Provider, SettingSpec, SettingType, SystemConfig};

pub static KIND: KindSpec = KindSpec {
    name: "sandbox",
    summary: "Simulated systems for the demo and for trying runbooks",
    actions: &ACTIONS,
    settings: &[SettingSpec {
        name: "latency_ms",
        ty: SettingType::Integer,
        required: false,
        summary: "simulated time each request takes (default 300)",
    }],
    needs_base_url: false,
    needs_token: false,
    connect,
};

fn connect(_cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    anyhow::bail!("sandbox: not built yet")
}

const fn action(name: &'static str, summary: &'static str) -> ActionSpec {
    ActionSpec {
        name,
        summary,
        destructive: false,
        alerts_user: false,
        params: &[],
    }
}

static ACTIONS: [ActionSpec; 9] = [
    action(
        "suspend_user",
        "identity provider: suspend the account; check reads its status",
    ),
    action(
        "revoke_sessions",
        "identity provider: end every session; check counts live sessions",
    ),
    action(
        "reset_mfa",
        "identity provider: remove every MFA factor; check counts factors",
    ),
    action(
        "remove_seat",
        "SaaS: take back the licence seat; check reads the seat",
    ),
    action(
        "lock_device",
        "MDM: lock the person's devices; check reads the lock state",
    ),
    ActionSpec {
        destructive: true,
        ..action(
            "wipe_device",
            "MDM: erase the person's devices; check reads the wipe state",
        )
    },
    ActionSpec {
        params: &[SettingSpec {
            name: "path",
            ty: SettingType::String,
            required: true,
            summary: "the shared secret to rotate",
        }],
        ..action(
            "rotate_secret",
            "vault: write a new version of a shared secret the person knew",
        )
    },
    ActionSpec {
        destructive: true,
        ..action(
            "delete_user",
            "identity provider: delete the account; check expects it gone",
        )
    },
    ActionSpec {
        alerts_user: true,
        ..action(
            "send_notice",
            "mail: send the person their end-of-access notice",
        )
    },
];
