//! LDAP directories: Active Directory (and Samba AD DC), OpenLDAP with the ppolicy overlay, and
//! 389 Directory Server.
//!
//! The server is `base_url` (`ldaps://dc1.corp.example` or `ldap://…` with `start_tls = true`;
//! plain `ldap://` without TLS only with `allow_plain = true`). Each call opens a connection,
//! binds as `bind_dn` with `bind_password`, finds the person with
//! `(&<object filter>(<user_attribute>=<login>))` under `base_dn` (the login escaped as RFC 4515
//! asks), acts on the DN the server returned, and unbinds. DNs are never built from input: the
//! person's DN, group DNs and the RDN kept by `move_to_ou` all come from the server.
//!
//! Actions, by flavor:
//! - `active_directory`: `disable_account` (userAccountControl |= 0x2, other bits kept),
//!   `remove_from_groups` (memberOf, or `params.groups`), `reset_password` (a random unicodePwd,
//!   never stored or shown; LDAPS/StartTLS only), `move_to_ou` (to `disabled_ou`),
//!   `set_description` (`params.text`, literally).
//! - `openldap`: `lock_account` (`pwdAccountLockedTime: 000001010000Z`, ppolicy's permanent
//!   lock), `remove_from_groups` (groupOfNames/groupOfUniqueNames holding the DN).
//! - `389ds`: `lock_account` (`nsAccountLock: true`), `remove_from_groups`.
//!
//! A check never knows the person's password, so it reads the attribute that makes binds fail.
//! For `reset_password` the check compares the live `pwdLastSet` with the value this machine
//! recorded right after the reset (under the state dir, keyed by objectGUID, no secret): the
//! password counts as reset while `pwdLastSet` is at least that value. Every earlier password
//! stops working for LDAP binds once it changes; a later reset by anyone also passes the check.
//!
//! Rollback (`restore.rs`): every apply records the pre-state it is about to change, read from
//! the entry by its id just before the change (the UAC value, the groups with their own ids,
//! the old attribute values, the old container), and `restore` puts it back by the account's
//! id: the ACCOUNTDISABLE bit as it was, each group found again by its objectGUID / entryUUID /
//! nsUniqueId (a deleted group is reported as not restorable), the lock attribute or
//! description as it was (removed when it was absent), the entry moved back. `reset_password`
//! has no inverse: the old password cannot come back.
//!
//! The code is split by concern: `config.rs` reads the settings (flavor, transport), `conn.rs`
//! connects, binds and runs the LDAP operations with their request records and readable errors,
//! `identify.rs` finds the person and names the account by its id, `dn.rs` takes DNs apart,
//! `run.rs` is one call (retries in fresh sessions, the dispatch of apply / check / preflight),
//! `ad.rs`, `password.rs`, `groups.rs` and `lock.rs` hold the actions, `restore.rs` their
//! pre-states and inverses, and `describe.rs` the request lines `plan` shows.

mod ad;
mod config;
mod conn;
mod describe;
mod dn;
mod groups;
mod identify;
mod lock;
mod password;
mod restore;
mod run;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use url::Url;

use super::{
    ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, NO_PARAMS, ParamsSpec,
    Provider, ProviderError, RequestLine, RestoreCheck, SettingSpec, SettingType, StepCall,
    SystemConfig,
};
use config::Transport;
use run::Mode;

pub use ad::{UAC_ACCOUNTDISABLE, parse_uac, uac_disabled, uac_is_disabled};
pub use config::Flavor;
pub use dn::split_dn;
pub use identify::{escape_filter_value, guid_bytes, guid_string};
pub use lock::PERMANENT_LOCK;

/// `remove_from_groups`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct GroupsParams {
    /// Only these groups (DNs or CNs); default: every group the person is in.
    #[schemars(length(min = 1))]
    pub(super) groups: Option<Vec<String>>,
}

/// `set_description`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DescriptionParams {
    /// The description, e.g. `"offboarded {{ departure.effective_at | date }} ticket
    /// {{ departure.ticket }}"` (a template, rendered when the departure is planned).
    #[schemars(length(min = 1))]
    pub(super) text: String,
}

pub static KIND: KindSpec = KindSpec {
    name: "ldap",
    summary: "LDAP directories: Active Directory / Samba AD (flavor active_directory), OpenLDAP \
              with ppolicy (openldap), 389 Directory Server (389ds). The server is base_url: \
              ldaps://host[:636], or ldap://host with start_tls = true, or plain ldap:// only \
              with allow_plain = true",
    actions: &[
        ActionSpec {
            name: "disable_account",
            summary: "AD: sets `userAccountControl` bit 0x2 (ACCOUNTDISABLE), keeping the other bits; \
                      the check reads the bit",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "set ACCOUNTDISABLE back to what it was before (an account disabled before \
                 offboard stays disabled), the other userAccountControl bits as they are now",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "remove_from_groups",
            summary: "removes the person from their groups (AD: `memberOf`; OpenLDAP/389-DS: groups \
                      whose `member`/`uniqueMember` is them); the summary lists every group removed; \
                      the check finds none left",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "re-add the person to each group the step removed, found by its objectGUID / \
                 entryUUID / nsUniqueId (renamed or moved groups too); a group deleted since \
                 cannot be",
            ),
            params: ParamsSpec::of::<GroupsParams>(),
        },
        ActionSpec {
            name: "reset_password",
            summary: "AD: sets a random password that is never stored or shown (LDAPS/StartTLS only); \
                      the check wants `pwdLastSet` no older than the reset. Disable the account too: \
                      AD accepts the old password for a while after a reset (`old password allowed \
                      period`, 60 minutes by default)",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(
                "the old password cannot be restored: set a new one and give it to the person",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "move_to_ou",
            summary: "AD: moves the entry under `disabled_ou`; the check reads where it is",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "move the entry back into the container it was in, keeping its RDN",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "set_description",
            summary: "AD: sets `description` to the text (a template, e.g. `offboarded {{ \
                      departure.effective_at }} ticket {{ departure.ticket }}`); the check compares it",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore("put the old description back (remove it if there was none)"),
            params: ParamsSpec::of::<DescriptionParams>(),
        },
        ActionSpec {
            name: "lock_account",
            summary: "OpenLDAP: `pwdAccountLockedTime: 000001010000Z` (a permanent ppolicy lock); \
                      389-DS: `nsAccountLock: true`; the check reads the attribute",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "put the lock attribute back as it was before (removed if it was absent, so a \
                 lock set before offboard stays)",
            ),
            params: NO_PARAMS,
        },
    ],
    settings: &[
        SettingSpec {
            name: "flavor",
            ty: SettingType::String,
            required: true,
            summary: "`active_directory` (also Samba AD), `openldap` (with the ppolicy overlay) or \
                      `389ds`",
        },
        SettingSpec {
            name: "bind_dn",
            ty: SettingType::String,
            required: true,
            summary: "who offboard binds as (AD also takes `user@realm`)",
        },
        SettingSpec {
            name: "bind_password",
            ty: SettingType::Secret,
            required: true,
            summary: "the bind password, by reference",
        },
        SettingSpec {
            name: "base_dn",
            ty: SettingType::String,
            required: true,
            summary: "where people are searched (subtree), e.g. `DC=corp,DC=example`",
        },
        SettingSpec {
            name: "start_tls",
            ty: SettingType::Bool,
            required: false,
            summary: "upgrade an `ldap://` connection with StartTLS (default false)",
        },
        SettingSpec {
            name: "ca_file",
            ty: SettingType::String,
            required: false,
            summary: "PEM file of the CA(s) that signed the server certificate (default: the system's)",
        },
        SettingSpec {
            name: "allow_plain",
            ty: SettingType::Bool,
            required: false,
            summary: "allow `ldap://` without TLS",
        },
        SettingSpec {
            name: "user_attribute",
            ty: SettingType::String,
            required: false,
            summary: "the attribute the login is matched against (default `userPrincipalName` for AD, \
                      e.g. also `mail` or `sAMAccountName`; `mail` for OpenLDAP and 389-DS)",
        },
        SettingSpec {
            name: "disabled_ou",
            ty: SettingType::String,
            required: false,
            summary: "where `move_to_ou` moves people, e.g. `OU=Disabled Users,DC=corp,DC=example`",
        },
        SettingSpec {
            name: "groups_base",
            ty: SettingType::String,
            required: false,
            summary: "OpenLDAP / 389-DS: where groups are searched (default `base_dn`)",
        },
    ],
    needs_base_url: true,
    url_schemes: &["ldaps", "ldap"],
    needs_token: false,
    connect,
    check_action: Some(check_action),
};

/// The actions a flavor offers (`lock_account` is not Active Directory's, `disable_account` not
/// OpenLDAP's).
fn check_action(cfg: &SystemConfig, action: &str) -> Result<(), String> {
    let Some(flavor) = cfg
        .settings
        .get("flavor")
        .and_then(|v| v.as_str())
        .and_then(Flavor::parse)
    else {
        // A missing or unknown flavor is reported at the system.
        return Ok(());
    };
    if flavor.supports(action) {
        return Ok(());
    }
    let offered: Vec<&str> = KIND
        .actions
        .iter()
        .map(|a| a.name)
        .filter(|a| flavor.supports(a))
        .collect();
    Err(format!(
        "the ldap kind with flavor {} has no action `{action}` (it offers: {})",
        flavor.as_str(),
        offered.join(", ")
    ))
}

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(Arc::new(LdapProvider::new(cfg)?))
}

/// A connected LDAP directory.
pub struct LdapProvider {
    system: String,
    flavor: Flavor,
    url: Url,
    /// `ldaps://host:port`, for request lines.
    origin: String,
    transport: Transport,
    bind_dn: String,
    bind_password: Option<SecretString>,
    base_dn: String,
    ca_file: Option<PathBuf>,
    user_attribute: String,
    disabled_ou: Option<String>,
    groups_base: Option<String>,
    timeout: Duration,
    state_dir: PathBuf,
    retry: RetryPolicy,
}

/// The kit's retry policy (shared with the HTTP kinds); an LDAP call is retried whole, in a
/// fresh session.
pub use super::kit::retry::RetryPolicy;

impl std::fmt::Debug for LdapProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapProvider")
            .field("system", &self.system)
            .field("flavor", &self.flavor)
            .field("origin", &self.origin)
            .field("bind_dn", &self.bind_dn)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Provider for LdapProvider {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        if !self.flavor.supports(call.action) {
            return Vec::new();
        }
        self.lines(call)
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        self.run(call, ctx, Mode::Apply).await
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        self.run(call, ctx, Mode::Check).await
    }

    /// Bind and find the person: the check of `reset_password` needs a record of a reset
    /// that has not happened yet, so preflight only looks.
    async fn preflight(&self, call: &StepCall<'_>, ctx: &CallCtx) -> Result<String, ProviderError> {
        let c: CheckOutcome = self.run(call, ctx, Mode::Look).await?;
        Ok(c.observed)
    }

    async fn restore(
        &self,
        call: &StepCall<'_>,
        before: &serde_json::Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        if !self.flavor.supports(call.action) {
            return Err(self.unsupported(call.action));
        }
        let pre = self.parse_before(call, before)?;
        self.run_with(call, ctx, Mode::Restore, Some(&pre)).await
    }

    fn describe_restore(
        &self,
        call: &StepCall<'_>,
        before: &serde_json::Value,
    ) -> Vec<RequestLine> {
        if !self.flavor.supports(call.action) {
            return Vec::new();
        }
        self.restore_lines(call, before)
    }

    async fn check_restored(
        &self,
        call: &StepCall<'_>,
        before: &serde_json::Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        if !self.flavor.supports(call.action) {
            return Err(self.unsupported(call.action));
        }
        let pre = self.parse_before(call, before)?;
        self.run_with(call, ctx, Mode::CheckRestored, Some(&pre))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    pub(super) fn cfg(url: &str, flavor: &str) -> SystemConfig {
        let mut settings = BTreeMap::new();
        for (k, v) in [
            ("flavor", flavor),
            ("bind_dn", "CN=svc-offboard,CN=Users,DC=corp,DC=test"),
            ("base_dn", "DC=corp,DC=test"),
            ("disabled_ou", "OU=Disabled Users,DC=corp,DC=test"),
        ] {
            settings.insert(k.to_string(), toml::Value::String(v.into()));
        }
        SystemConfig {
            name: "ad".into(),
            kind: "ldap".into(),
            base_url: Some(url.into()),
            token: None,
            auth: None,
            settings,
            secrets: BTreeMap::new(),
            timeout: Duration::from_secs(5),
            max_concurrency: 4,
            rate_limit: None,
            state_dir: std::env::temp_dir(),
        }
    }

    pub(super) fn call<'a>(
        action: &'a str,
        login: &'a str,
        params: &'a serde_json::Map<String, serde_json::Value>,
    ) -> StepCall<'a> {
        StepCall {
            step_id: "s",
            action,
            login,
            params,
            account: None,
        }
    }

    #[test]
    fn describe_shows_verbs_and_no_secret() {
        let mut c = cfg("ldaps://127.0.0.1", "active_directory");
        c.secrets.insert(
            "bind_password".into(),
            SecretString::from("hunter2-secret".to_string()),
        );
        let p = (KIND.connect)(&c).unwrap();
        let params = serde_json::Map::new();
        let lines: Vec<String> = p
            .describe(&call("disable_account", "alice@corp.test", &params))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines.last().unwrap(),
            "MODIFY ldaps://127.0.0.1:636/<dn of (&(objectCategory=person)(objectClass=user)\
             (userPrincipalName=alice@corp.test))> userAccountControl |= 0x2"
        );
        for action in [
            "disable_account",
            "remove_from_groups",
            "reset_password",
            "move_to_ou",
            "set_description",
        ] {
            let lines = p.describe(&call(action, "alice@corp.test", &params));
            assert!(lines.len() >= 3, "{action}");
            assert!(
                lines.iter().all(|l| !l.to_string().contains("hunter2")),
                "{action}"
            );
        }
        assert!(p.describe(&call("lock_account", "a", &params)).is_empty());
    }

    #[tokio::test]
    async fn wrong_flavor_action_and_missing_password_are_clear() {
        let p = LdapProvider::new(&cfg("ldaps://127.0.0.1:9", "openldap")).unwrap();
        let params = serde_json::Map::new();
        let err = p
            .apply(&call("disable_account", "a", &params), &CallCtx::silent())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Permanent(m) if m.contains("lock_account")),
            "{err:?}"
        );
        let err = p
            .apply(&call("lock_account", "a", &params), &CallCtx::silent())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Permanent(m) if m.contains("no bind_password")),
            "{err:?}"
        );
    }
}
