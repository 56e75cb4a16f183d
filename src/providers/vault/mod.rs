//! HashiCorp Vault and OpenBao (the same HTTP API, `/v1/...`), authenticated with a token sent as
//! `X-Vault-Token` (and `X-Vault-Namespace` when `namespace` is set).
//!
//! The person is known by their userpass username (`StepCall.login`; userpass lowercases it).
//! Their identity entity is found with `POST /v1/identity/lookup/entity` by alias name on the
//! userpass mount's accessor (from `GET /v1/sys/auth`), falling back to an entity *named* like
//! the login (`GET /v1/identity/entity/name/{login}`).
//!
//! - `rotate_secret` (`paths = ["team/db", …]`): for each KV v2 path, read the metadata and the
//!   current data, write every key (or the `keys` listed) with a new random value as a new
//!   version (check-and-set on the version read), then record in the secret's
//!   `custom_metadata` under `offboard_rotated:<login>` the versions `from=N to=M` and the time.
//!   Old versions stay (for audit). No value is ever logged, journaled or put in a message: only
//!   version numbers. Apply is idempotent per person: a path whose marker for this login
//!   exists and whose current version is at least the marker's `to` is left alone. If the
//!   process dies between the write and the marker, the next apply rotates once more (harmless).
//!   Check, per path: the marker for this login exists, `current_version >= to`, and the current
//!   data differs from version `from` (the one the person knew) when that version is still
//!   readable — so a rollback (re-writing the old value as a new version) counts as drift.
//! - `revoke_tokens`: scan token accessors (`LIST /v1/auth/token/accessors` + `POST
//!   /v1/auth/token/lookup-accessor`) for tokens whose `entity_id` is the person's entity, then
//!   `PUT /v1/sys/leases/revoke-prefix/auth/{userpass_mount}/login/{login}` and `POST
//!   /v1/auth/token/revoke-accessor` for each token found (tokens from any auth method of that
//!   entity). Check: the same scan finds no live token. The scan needs `sudo` on
//!   `auth/token/accessors` and costs one request per live token in the whole Vault.
//! - `disable_entity`: `POST /v1/identity/entity/id/{id}` `{"disabled":true}`; check reads
//!   `disabled`. Disabling alone makes existing tokens answer 403, but re-enabling revives them:
//!   pair it with `revoke_tokens`.
//! - `delete_userpass_user`: `DELETE /v1/auth/{userpass_mount}/users/{login}`; check expects
//!   `GET` to answer 404 (destructive).
//!
//! Rollback: each apply records its pre-state just before the change, never a secret or a
//! token accessor (`disable_entity`: `entity_id`, `name`, `disabled`; `revoke_tokens`:
//! `entity_id` and how many `live_tokens`; `rotate_secret`: each secret's `path` and
//! `current_version`, the version a rollback by hand would read back; `delete_userpass_user`:
//! the user's path and its settings as Vault reads them, without the password). Only
//! `disable_entity` is restored (`disabled` back to its recorded value, by entity id); revoked
//! tokens cannot be revived, a rotated secret is retired on purpose and a deleted userpass user
//! would need a new password.
//!
//! Vault errors are `{"errors":["…"]}`; a 403 is Vault's answer both to a missing policy and to an
//! invalid token.
//!
//! The code is split by concern: `client.rs` holds the Vault HTTP specifics (settings, URLs,
//! error bodies), `kv.rs` `rotate_secret`, `identity.rs` the entity and its tokens
//! (`revoke_tokens`, `disable_entity`), `userpass.rs` the userpass user
//! (`delete_userpass_user`).

mod client;
mod identity;
mod kv;
mod userpass;

use std::sync::Arc;

use async_trait::async_trait;
use url::Url;

use super::kit::http::{HttpClient, with_query};
use super::{
    ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, NO_PARAMS, ParamsSpec,
    Provider, ProviderError, RequestLine, RestoreCheck, SettingSpec, SettingType, StepCall,
    SystemConfig,
};

pub use client::{split_path, vault_error_message};
pub use kv::{MARKER_PREFIX, Marker, marker_key};

/// `rotate_secret`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateInput {
    /// KV v2 paths under `kv_mount` the person knew, e.g. `["team/db"]`.
    #[schemars(length(min = 1))]
    pub(super) paths: Vec<String>,
    /// Only these keys get a new value (the others are kept); default: every key of the
    /// current version.
    #[schemars(length(min = 1))]
    pub(super) keys: Option<Vec<String>>,
    /// Length of each new random value, letters and digits (default 32).
    #[schemars(range(min = 16, max = 256))]
    pub(super) length: Option<u16>,
}

pub static KIND: KindSpec = KindSpec {
    name: "vault",
    summary: "HashiCorp Vault / OpenBao: rotate shared KV v2 secrets, revoke tokens, disable the \
              identity entity, delete the userpass user",
    actions: &[
        ActionSpec {
            name: "rotate_secret",
            summary: "writes a new random value as a new version of each path (old versions stay, for \
                      audit; values are never logged or journaled, only version numbers) and marks the \
                      secret's `custom_metadata` `offboard_rotated:<login>` = `from=N to=M`; the check \
                      wants the marker, the current version ≥ M and a value different from version N",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(
                "the old secret value is retired on purpose; KV v2 keeps it as an older version \
                 (the pre-state names it), readable for a rollback by hand while max_versions \
                 keeps it",
            ),
            params: ParamsSpec::of::<RotateInput>(),
        },
        ActionSpec {
            name: "revoke_tokens",
            summary: "revokes the person's tokens: the userpass login lease prefix and every live \
                      token of their entity, by accessor; the check scans accessors and finds none \
                      left (needs `sudo` on `auth/token/accessors`)",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None("revoked tokens cannot be revived; the person logs in again"),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "disable_entity",
            summary: "sets the identity entity `disabled=true`; the check reads it back",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "set the identity entity's `disabled` back to what it was (an entity disabled \
                 before offboard stays disabled)",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "delete_userpass_user",
            summary: "deletes the userpass user; the check expects 404",
            destructive: true,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(
                "a deleted userpass user cannot be brought back with its password; create it \
                 again with a new one (the pre-state keeps its policies and token settings)",
            ),
            params: NO_PARAMS,
        },
    ],
    settings: &[
        SettingSpec {
            name: "kv_mount",
            ty: SettingType::String,
            required: false,
            summary: "mount path of the KV v2 secrets engine (default `secret`)",
        },
        SettingSpec {
            name: "userpass_mount",
            ty: SettingType::String,
            required: false,
            summary: "mount path of the userpass auth method (default `userpass`)",
        },
        SettingSpec {
            name: "ca_file",
            ty: SettingType::String,
            required: false,
            summary: "PEM file of the CA that signed the server's certificate",
        },
        SettingSpec {
            name: "namespace",
            ty: SettingType::String,
            required: false,
            summary: "Vault Enterprise / OpenBao namespace, sent as `X-Vault-Namespace`",
        },
        super::kit::http::ALLOW_PLAIN,
    ],
    needs_base_url: true,
    url_schemes: &["https", "http"],
    needs_token: true,
    connect,
    check_action: None,
};

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(Arc::new(VaultProvider::new(cfg)?))
}

/// A connected Vault / OpenBao server.
#[derive(Debug)]
pub struct VaultProvider {
    http: HttpClient,
    system: String,
    /// `["v1"]`, or nothing when base_url already ends in `/v1`.
    api: Vec<String>,
    kv_mount: Vec<String>,
    userpass_mount: Vec<String>,
}

#[async_trait]
impl Provider for VaultProvider {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        let line = |method: &str, url: Result<Url, ProviderError>| {
            url.ok().map(|u| RequestLine {
                method: method.into(),
                url: u.to_string().replace("%7B", "{").replace("%7D", "}"),
            })
        };
        let name = self
            .username(call.login)
            .unwrap_or_else(|_| "{login}".into());
        let ph = |s: &str| vec![s.to_string()];
        let find = [
            line("GET", self.url(&[&Self::s(&["sys", "auth"])])),
            line(
                "POST",
                self.url(&[&Self::s(&["identity", "lookup", "entity"])]),
            ),
        ];
        let lines: Vec<Option<RequestLine>> = match call.action {
            "rotate_secret" => {
                let mut v = Vec::new();
                if let Ok(p) = self.rotate_params(call) {
                    for (_, path) in &p.paths {
                        v.push(line("GET", self.metadata_url(path)));
                        v.push(line("GET", self.data_url(path)));
                        v.push(line("POST", self.data_url(path)));
                        v.push(line("POST", self.metadata_url(path)));
                    }
                }
                v
            }
            "revoke_tokens" => {
                let mut v = find.to_vec();
                v.push(line(
                    "GET",
                    self.url(&[&Self::s(&["auth", "token", "accessors"])])
                        .map(|u| with_query(u, &[("list", "true")])),
                ));
                v.push(line(
                    "POST",
                    self.url(&[&Self::s(&["auth", "token", "lookup-accessor"])]),
                ));
                v.push(line("PUT", self.prefix_url(&name)));
                v.push(line(
                    "POST",
                    self.url(&[&Self::s(&["auth", "token", "revoke-accessor"])]),
                ));
                v
            }
            "disable_entity" => {
                let mut v = find.to_vec();
                v.push(line(
                    "POST",
                    self.url(&[&Self::s(&["identity", "entity", "id"]), &ph("{id}")]),
                ));
                v
            }
            "delete_userpass_user" => vec![
                line("GET", self.user_url(&name)),
                line("DELETE", self.user_url(&name)),
            ],
            _ => Vec::new(),
        };
        lines.into_iter().flatten().collect()
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "rotate_secret" => self.rotate(call, ctx).await,
            "revoke_tokens" => self.revoke_tokens(call, ctx).await,
            "disable_entity" => self.disable_entity(call, ctx).await,
            "delete_userpass_user" => self.delete_user(call, ctx).await,
            other => Err(self.unknown_action(other)),
        }
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        match call.action {
            "rotate_secret" => self.check_rotated(call, ctx).await,
            "revoke_tokens" => self.check_tokens(call, ctx).await,
            "disable_entity" => self.check_entity(call, ctx).await,
            "delete_userpass_user" => self.check_user_deleted(call, ctx).await,
            other => Err(self.unknown_action(other)),
        }
    }

    /// Only `disable_entity` has an inverse (see the action table for why the others do not).
    async fn restore(
        &self,
        call: &StepCall<'_>,
        before: &serde_json::Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "disable_entity" => self.restore_entity(call, before, ctx).await,
            other => Err(self.no_restore(other)),
        }
    }

    fn describe_restore(
        &self,
        call: &StepCall<'_>,
        before: &serde_json::Value,
    ) -> Vec<RequestLine> {
        match call.action {
            "disable_entity" => self.describe_restore_entity(call, before),
            _ => Vec::new(),
        }
    }

    async fn check_restored(
        &self,
        call: &StepCall<'_>,
        before: &serde_json::Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        match call.action {
            "disable_entity" => self.check_entity_restored(call, before, ctx).await,
            other => Err(self.no_restore(other)),
        }
    }
}

impl VaultProvider {
    fn no_restore(&self, action: &str) -> ProviderError {
        match KIND.actions.iter().find(|a| a.name == action) {
            Some(a) => match a.inverse {
                Inverse::None(why) => self.perm(format!("{action} cannot be undone: {why}")),
                Inverse::Restore(_) => self.unknown_action(action),
            },
            None => self.unknown_action(action),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};
    use std::time::Duration;

    pub(super) fn cfg(base: &str) -> SystemConfig {
        SystemConfig {
            timeout: Duration::from_secs(5),
            ..SystemConfig::new("vault", "vault", Some(base))
        }
    }

    #[test]
    fn describe_without_token() {
        let mut c = cfg("https://vault.example:8200/");
        c.settings
            .insert("kv_mount".into(), toml::Value::String("kv/shared/".into()));
        let p = VaultProvider::new(&c).unwrap();
        let mut params = Map::new();
        params.insert("paths".into(), json!(["team/db"]));
        let call = StepCall {
            step_id: "s",
            action: "rotate_secret",
            login: "alice",
            params: &params,
            account: None,
        };
        let lines: Vec<String> = p.describe(&call).iter().map(ToString::to_string).collect();
        assert_eq!(
            lines[..2],
            [
                "GET https://vault.example:8200/v1/kv/shared/metadata/team/db",
                "GET https://vault.example:8200/v1/kv/shared/data/team/db",
            ]
        );
        let empty = Map::new();
        let call = StepCall {
            step_id: "s",
            action: "delete_userpass_user",
            login: "Alice@corp",
            params: &empty,
            account: None,
        };
        assert_eq!(
            p.describe(&call)[1].to_string(),
            "DELETE https://vault.example:8200/v1/auth/userpass/users/alice%40corp"
        );
        let call = StepCall {
            step_id: "s",
            action: "disable_entity",
            login: "alice",
            params: &empty,
            account: None,
        };
        assert_eq!(
            p.describe(&call)[2].to_string(),
            "POST https://vault.example:8200/v1/identity/entity/id/{id}"
        );
    }
}
