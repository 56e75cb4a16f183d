//! Providers: one file per system kind, each implementing [`Provider`] and publishing a
//! [`KindSpec`]. The engine, journal and evidence never name a provider; adding one is a new
//! file here plus one line in [`KINDS`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

pub mod entra;
pub mod exchange;
pub mod github;
pub mod google;
pub mod http;
pub mod jamf;
pub mod kit;
pub mod ldap;
pub mod ninjaone;
pub mod okta;
pub mod params;
pub mod sandbox;
pub mod scim;
pub mod slack;
pub mod snipeit;
pub mod vault;

pub use params::{NO_PARAMS, ParamsSpec};

/// Every kind offboard knows. One line per provider.
pub static KINDS: &[&KindSpec] = &[
    &scim::KIND,
    &ldap::KIND,
    &vault::KIND,
    &http::KIND,
    &entra::KIND,
    &exchange::KIND,
    &okta::KIND,
    &github::KIND,
    &google::KIND,
    &slack::KIND,
    &jamf::KIND,
    &ninjaone::KIND,
    &snipeit::KIND,
    &sandbox::KIND,
];

pub fn find_kind(name: &str) -> Option<&'static KindSpec> {
    KINDS.iter().copied().find(|k| k.name == name)
}

#[cfg(test)]
mod inverse_tests {
    use super::*;

    /// Every action of every kind says how `offboard rollback` undoes it, or why it cannot:
    /// none is left with the placeholder, and no declaration is empty.
    #[test]
    fn every_action_declares_its_inverse() {
        for kind in KINDS {
            for a in kind.actions {
                let text = match a.inverse {
                    Inverse::Restore(t) => t,
                    Inverse::None(t) => {
                        assert_ne!(t, UNDO_NOT_BUILT, "{}.{}", kind.name, a.name);
                        t
                    }
                };
                assert!(text.trim().len() > 10, "{}.{}: {text:?}", kind.name, a.name);
            }
        }
    }
}

/// What a kind offers, for validation, planning and documentation.
pub struct KindSpec {
    pub name: &'static str,
    pub summary: &'static str,
    pub actions: &'static [ActionSpec],
    /// Kind-specific settings allowed beside the common system keys.
    pub settings: &'static [SettingSpec],
    /// `base_url` must be set.
    pub needs_base_url: bool,
    /// The URL schemes `base_url` may use, preferred first.
    pub url_schemes: &'static [&'static str],
    /// Credentials must be set: `token`, or an `auth` table when the kind accepts one.
    pub needs_token: bool,
    /// Build a provider for one configured system. Must not do I/O: `plan` calls it with no
    /// secret to describe requests.
    pub connect: fn(&SystemConfig) -> anyhow::Result<Arc<dyn Provider>>,
    /// Rules beyond the catalogue: whether this configured system can do `action` (an LDAP
    /// flavor offers only some actions). No I/O; `runbook check` reports a refusal at the
    /// step's `action`, before anything runs.
    pub check_action: Option<ActionRule>,
}

/// A kind's rule on which actions a configured system can do; `Err` says why not.
pub type ActionRule = fn(&SystemConfig, &str) -> Result<(), String>;

impl KindSpec {
    pub fn action(&self, name: &str) -> Option<&'static ActionSpec> {
        self.actions.iter().find(|a| a.name == name)
    }
}

pub struct ActionSpec {
    pub name: &'static str,
    pub summary: &'static str,
    /// Deletes or wipes something: blocked by legal hold.
    pub destructive: bool,
    /// Could alert the person: held back until every `cut` step is done when involuntary.
    pub alerts_user: bool,
    /// The type of the action's `params` table: the loader, the schema, `plan` and the
    /// reference are derived from it (see [`params`]).
    pub params: params::ParamsSpec,
    /// Its check proves that access is gone (a revocation `verify` re-checks). False for
    /// actions whose effect is not access, such as sending a notice.
    pub revokes: bool,
    /// How `offboard rollback` undoes it: [`Inverse::Restore`] (the provider's
    /// [`Provider::restore`] puts back the pre-state the apply recorded with
    /// [`CallCtx::before`]) or [`Inverse::None`] with the reason it cannot be undone.
    pub inverse: Inverse,
}

/// How an action is undone, declared in the kind's action table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inverse {
    /// [`Provider::restore`] puts back the recorded pre-state; the text says what comes back,
    /// in the plan's words ("re-enable the account", "re-add the groups it was removed from").
    Restore(&'static str),
    /// It cannot be undone; the text says why, for the rollback plan and the evidence ("the
    /// old password cannot be restored", "a wiped device stays wiped").
    None(&'static str),
}

/// The reason given by an action whose undo is not built yet: an honest "cannot be undone by
/// offboard", never a pretended restore.
pub const UNDO_NOT_BUILT: &str = "offboard cannot undo this action yet: restore it by hand";

/// What [`Provider::check_restored`] read after a restore.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreCheck {
    /// The live state now, in the shape of the pre-state snapshot (for the evidence's
    /// before/after).
    pub after: serde_json::Value,
    /// Everything in the pre-state that can come back is back.
    pub restored: bool,
    /// What was seen, and what is not back and why when `restored` is false.
    pub observed: String,
    /// The account whose live state was read (by the system's id).
    pub account: Option<Account>,
}

pub struct SettingSpec {
    pub name: &'static str,
    pub ty: SettingType,
    pub required: bool,
    pub summary: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingType {
    String,
    Integer,
    Bool,
    StringList,
    /// A secret reference (`{ env = … }` / `{ file = … }` / `{ command = […] }`), never inline.
    Secret,
    /// A secret reference read whole (a PEM key and certificate, a JSON key file), where
    /// [`SettingType::Secret`] keeps only the first line.
    SecretDocument,
    /// The `auth` table ([`kit::auth::AuthSpec`]): a kind that lists [`kit::auth::SETTING`]
    /// among its settings accepts it in place of `token`.
    Auth,
}

/// A configured system, ready to connect: secrets resolved (or absent, for planning).
#[derive(Clone)]
pub struct SystemConfig {
    /// The system's name in the runbook.
    pub name: String,
    pub kind: String,
    pub base_url: Option<String>,
    pub token: Option<SecretString>,
    /// The `auth` table, resolved (kinds that accept it; `None` when planning). Build the
    /// requests' [`kit::Auth`] with [`kit::auth::for_system`], which also covers `token`.
    pub auth: Option<kit::auth::AuthConfig>,
    pub settings: BTreeMap<String, toml::Value>,
    /// Secret settings (kind-specific `Secret` settings), resolved.
    pub secrets: BTreeMap<String, SecretString>,
    pub timeout: Duration,
    pub max_concurrency: usize,
    /// `rate_limit`: request starts per period, shared process-wide (see [`crate::limits`]).
    pub rate_limit: Option<crate::limits::RateLimit>,
    /// The state dir, for providers that keep local state (the sandbox).
    pub state_dir: PathBuf,
}

impl SystemConfig {
    /// A configuration with the defaults a runbook would give (30 s per request, 4 requests in
    /// flight, no settings, no secret), for building a provider directly.
    pub fn new(name: &str, kind: &str, base_url: Option<&str>) -> SystemConfig {
        SystemConfig {
            name: name.to_string(),
            kind: kind.to_string(),
            base_url: base_url.map(str::to_string),
            token: None,
            auth: None,
            settings: BTreeMap::new(),
            secrets: BTreeMap::new(),
            timeout: Duration::from_secs(30),
            max_concurrency: 4,
            rate_limit: None,
            state_dir: std::env::temp_dir(),
        }
    }

    pub fn with_token(mut self, token: &str) -> SystemConfig {
        self.token = Some(SecretString::from(token.to_string()));
        self
    }
}

/// One call of an action for one person.
#[derive(Debug, Clone)]
pub struct StepCall<'a> {
    pub step_id: &'a str,
    pub action: &'a str,
    /// How the person is known in this system.
    pub login: &'a str,
    pub params: &'a serde_json::Map<String, serde_json::Value>,
    /// The account an earlier call of this step identified. When set, `apply` and `check` act
    /// on and read *this* account by its id, never whoever the login finds now (a rename, a
    /// new account with the same email, a filter that finds nobody).
    pub account: Option<&'a Account>,
}

// The plain records a provider returns are shared with the journal and the departure; they live
// in `crate::core` and keep their names here.
pub use crate::core::{Account, RequestLine, RequestRecord, RetryNote};

/// The result of applying an action.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyOutcome {
    /// False when the change was already in place (idempotent apply).
    pub changed: bool,
    /// One line for humans, e.g. "deactivated user 2819c223 (active: true → false)".
    pub summary: String,
    pub requests: Vec<RequestRecord>,
    /// The account acted on (`None` only for actions on no account of the person's).
    pub account: Option<Account>,
}

/// The result of checking an action against the live state.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOutcome {
    /// The revocation holds.
    pub revoked: bool,
    /// What was seen, e.g. "active=false" or "404 (user deleted)".
    pub observed: String,
    /// The account whose live state was read. A check that names no account proves nothing:
    /// the engine treats "revoked" without one as "cannot confirm".
    pub account: Option<Account>,
}

/// Why a provider call failed. The message is the provider's own, made readable, and never
/// contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Worth retrying later (budget exhausted, timeouts, 5xx, 429).
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help: fix the configuration or permissions.
    #[error("{0}")]
    Permanent(String),
    /// The person does not exist in this system.
    #[error("{0}")]
    NotFound(String),
}

/// Hooks the engine gives a provider call.
#[derive(Clone)]
pub struct CallCtx {
    on_retry: Arc<dyn Fn(RetryNote) + Send + Sync>,
    on_account: Arc<dyn Fn(&Account) + Send + Sync>,
    /// The licences an apply said it freed ([`CallCtx::freed_licences`]).
    licences_freed: Arc<std::sync::Mutex<Option<Vec<String>>>>,
    on_before: Arc<dyn Fn(&serde_json::Value) + Send + Sync>,
    just_found: bool,
}

impl CallCtx {
    pub fn new(on_retry: impl Fn(RetryNote) + Send + Sync + 'static) -> CallCtx {
        CallCtx {
            on_retry: Arc::new(on_retry),
            on_account: Arc::new(|_| {}),
            licences_freed: Arc::default(),
            on_before: Arc::new(|_| {}),
            just_found: false,
        }
    }

    /// `call.account` was found by this run's preflight moments ago (by the person's login,
    /// read-only): an apply may act on it by id without reading it again first. The check that
    /// follows still reads it by id.
    pub fn found_just_now(mut self) -> CallCtx {
        self.just_found = true;
        self
    }

    /// See [`CallCtx::found_just_now`].
    pub fn account_found_just_now(&self) -> bool {
        self.just_found
    }

    /// Also be told which account a call identified, before it changes anything.
    pub fn on_account(mut self, f: impl Fn(&Account) + Send + Sync + 'static) -> CallCtx {
        self.on_account = Arc::new(f);
        self
    }

    /// Tell the engine which account this call is about to change (journaled before the
    /// change, so a crash right after it still leaves the account's id on record).
    pub fn identified(&self, account: &Account) {
        (self.on_account)(account)
    }

    /// Also be told the pre-state an apply records, before it changes anything.
    pub fn on_before(mut self, f: impl Fn(&serde_json::Value) + Send + Sync + 'static) -> CallCtx {
        self.on_before = Arc::new(f);
        self
    }

    /// Record the state an apply is about to change, read live from the account it acts on,
    /// just before the change (journaled as `before`; `offboard rollback` restores from the
    /// first one recorded for the step). Ids, not display names: group ids, SKU ids, the old
    /// flag values. Never a secret. An apply that finds the change already in place records
    /// the state it found too, so that rollback knows there was nothing to put back.
    pub fn before(&self, state: &serde_json::Value) {
        (self.on_before)(state)
    }

    /// Tell the engine which licences (SKUs, by name) this apply freed, none included: they
    /// are journaled with `applied` (`licences_freed`) for `offboard report`. An action that
    /// frees licences says so even when it freed none, so that "none" is not "not recorded".
    pub fn freed_licences(&self, skus: &[String]) {
        let mut freed = self
            .licences_freed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        freed.get_or_insert_with(Vec::new).extend_from_slice(skus);
    }

    /// The licences the call said it freed (`None`: it said nothing), and forget them.
    pub fn take_freed_licences(&self) -> Option<Vec<String>> {
        self.licences_freed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// A context that drops retry notes (tests, planning).
    pub fn silent() -> CallCtx {
        CallCtx::new(|_| {})
    }

    /// Tell the engine a transient failure is being retried (journaled).
    pub fn retrying(&self, note: RetryNote) {
        (self.on_retry)(note)
    }
}

/// A connected system.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The requests `apply` will make, for the plan. No I/O.
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine>;

    /// Make the change. Idempotent: applying twice is not an error (`changed: false`).
    ///
    /// The contract every kind keeps:
    /// - With `call.account` set, act on that account (read by its id); if it is gone, say so
    ///   (`changed: false`, it was seen before). Without it, find the person by `call.login`;
    ///   nobody found is [`ProviderError::NotFound`], never "already done".
    /// - Call [`CallCtx::identified`] with the account before changing it, and return it in
    ///   [`ApplyOutcome::account`].
    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError>;

    /// Look before anything is cut, changing nothing: the credentials work, the person is
    /// found, and the rights suffice where the API can tell. Returns what was found, for the
    /// operator. The default runs [`Provider::check`], which is read-only by contract; a kind
    /// whose check needs state from an earlier apply overrides this.
    async fn preflight(&self, call: &StepCall<'_>, ctx: &CallCtx) -> Result<String, ProviderError> {
        let c = self.check(call, ctx).await?;
        Ok(match c.account {
            Some(a) => format!("found {a}"),
            None => c.observed,
        })
    }

    /// Read the live state and say whether the revocation holds.
    ///
    /// With `call.account` set, read that account by its id: gone by id is revoked (deleted);
    /// a rename or a new account under the same login changes nothing. Without it, find the
    /// person by login; nobody found is [`ProviderError::NotFound`] (nothing proves a
    /// revocation of someone never seen). Name the account read in [`CheckOutcome::account`].
    /// When the state cannot be established, return an error: "cannot confirm", never revoked.
    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError>;

    /// Undo `call.action` on `call.account` (always set: rollback acts only on an account an
    /// apply identified), putting back `before`, the pre-state that apply recorded with
    /// [`CallCtx::before`]. Idempotent: restoring twice is not an error (`changed: false`).
    /// Only actions declared [`Inverse::Restore`] are ever restored.
    async fn restore(
        &self,
        call: &StepCall<'_>,
        before: &serde_json::Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let _ = (before, ctx);
        Err(ProviderError::Permanent(format!(
            "action {} has no restore in this kind",
            call.action
        )))
    }

    /// The requests `restore` will make, for the rollback plan. No I/O.
    fn describe_restore(
        &self,
        call: &StepCall<'_>,
        before: &serde_json::Value,
    ) -> Vec<RequestLine> {
        let _ = (call, before);
        Vec::new()
    }

    /// Read the live state of `call.account` by its id and say whether `before` is back.
    async fn check_restored(
        &self,
        call: &StepCall<'_>,
        before: &serde_json::Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let _ = (before, ctx);
        Err(ProviderError::Permanent(format!(
            "action {} has no restore in this kind",
            call.action
        )))
    }
}
