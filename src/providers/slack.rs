//! Slack: SCIM (Business+ and Enterprise Grid) and the Web API.
//!
//! The person is found over SCIM with `GET {base_url}/Users?filter=<user_attribute> eq
//! "<login>"` (`userName` or `emails.value`), through the `scim` kind's own lookup; the SCIM
//! `id` is the Slack user id (`U…`/`W…`), which names the account from then on.
//! - `deactivate_user`: `DELETE {base_url}/Users/{id}`, which in Slack deactivates the user
//!   (it does not delete them). Check: `GET {base_url}/Users/{id}` reports `active: false`, or
//!   answers 404 (gone).
//! - `reset_sessions`: `POST {api_url}/admin.users.session.reset` with `{"user_id": id}` (JSON,
//!   as the method documents besides form data). Slack answers failures with HTTP 200 and
//!   `{"ok": false, "error": "<code>"}`: a failure, transient or permanent by its code, never
//!   done. A deactivated user is left alone: Slack signs a deactivated user out everywhere.
//!   Slack offers no way to read a user's sessions back, so the check holds only when this
//!   process saw `ok: true` for that user, or the user is deactivated; otherwise it cannot
//!   confirm. Not a revocation `verify` can re-check (`revokes: false`).
//!
//! Rollback: both actions record `{"id", "active"}` before they change anything.
//! `deactivate_user` is undone by `PATCH {base_url}/Users/{id}` with `active: true` (the same
//! Slack user id, never a new account); `reset_sessions` cannot be undone (the person signs in
//! again).
//!
//! One token serves both APIs: an admin's user token (`xoxp-…`) with the `admin` scope (SCIM)
//! and `admin.users:write` (session reset), sent as `Authorization: Bearer`. A 429 is retried
//! after its `Retry-After` on both APIs.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::kit::http::{HttpClient, Request, RetryPolicy};
use super::scim::{ScimProvider, User};
use super::{
    Account, ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, NO_PARAMS,
    ParamsSpec, Provider, ProviderError, RequestLine, RequestRecord, RestoreCheck, SettingSpec,
    SettingType, StepCall, SystemConfig, params,
};

pub static KIND: KindSpec = KindSpec {
    name: "slack",
    summary: "Slack (Business+ / Enterprise Grid): SCIM deactivation and the Web API's session \
              reset, with an admin user token (`xoxp-…`)",
    actions: &[
        ActionSpec {
            name: "deactivate_user",
            summary: "SCIM `DELETE /Users/{id}` (in Slack this deactivates, it does not delete); \
                      the check reads `active` by id (false, or 404, is revoked). Needs the \
                      `admin` scope",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "reactivate the Slack user (SCIM PATCH active=true on the same id); sessions \
                 are not revived (they sign in again), and channel and user-group memberships \
                 come back only as far as Slack keeps them on reactivation",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "reset_sessions",
            summary: "`admin.users.session.reset` (Enterprise Grid) with the Slack user id; an \
                      `ok: false` answer fails with Slack's error code; a deactivated user \
                      (signed out by Slack) is left alone. Slack cannot list a \
                      user's sessions, so the check holds only after this run's `ok: true` or \
                      when the user is deactivated. Needs `admin.users:write`",
            destructive: false,
            alerts_user: false,
            revokes: false,
            inverse: Inverse::None("reset sessions cannot be revived: the person signs in again"),
            params: ParamsSpec::of::<ResetParams>(),
        },
    ],
    settings: &[
        SettingSpec {
            name: "user_attribute",
            ty: SettingType::String,
            required: false,
            summary: "the SCIM attribute the person is found by: `userName` (default) or \
                      `emails.value`",
        },
        SettingSpec {
            name: "api_url",
            ty: SettingType::String,
            required: false,
            summary: "the Web API's base (default `https://slack.com/api`); `base_url` is the \
                      SCIM base (default `https://api.slack.com/scim/v2`)",
        },
        super::kit::http::ALLOW_PLAIN,
    ],
    needs_base_url: false,
    url_schemes: &["https", "http"],
    needs_token: true,
    connect,
    check_action: None,
};

/// `reset_sessions`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ResetParams {
    /// Only expire mobile sessions (default: every session).
    mobile_only: Option<bool>,
    /// Only expire web sessions (default: every session).
    web_only: Option<bool>,
}

const SCIM_URL: &str = "https://api.slack.com/scim/v2";
const API_URL: &str = "https://slack.com/api";
const RESET: &str = "admin.users.session.reset";
/// Web API error codes that say "try again later" rather than "this will never work".
const TRANSIENT_CODES: &[&str] = &[
    "ratelimited",
    "fatal_error",
    "internal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
];

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(Arc::new(SlackProvider::new(cfg)?))
}

/// A connected Slack organisation.
#[derive(Debug)]
pub struct SlackProvider {
    scim: ScimProvider,
    web: HttpClient,
    system: String,
    token: Option<SecretString>,
    /// Slack user ids whose sessions `admin.users.session.reset` reset (`ok: true`) in this
    /// process: the only evidence of a reset there is.
    reset: Mutex<HashSet<String>>,
}

impl SlackProvider {
    /// Build from the system's configuration. No I/O; works without a token (planning).
    pub fn new(cfg: &SystemConfig) -> anyhow::Result<SlackProvider> {
        let text = |key: &str, default: &str| -> anyhow::Result<String> {
            match cfg.settings.get(key) {
                None => Ok(default.to_string()),
                Some(toml::Value::String(s)) => Ok(s.clone()),
                Some(other) => anyhow::bail!(
                    "system `{}`: {key} must be a string, not {}",
                    cfg.name,
                    other.type_str()
                ),
            }
        };
        let attribute = text("user_attribute", "userName")?;
        if !matches!(attribute.as_str(), "userName" | "emails.value") {
            anyhow::bail!(
                "system `{}`: user_attribute `{attribute}`: Slack's SCIM API finds users by \
                 `userName` or `emails.value`",
                cfg.name
            );
        }
        let mut scim_cfg = cfg.clone();
        scim_cfg.base_url = Some(cfg.base_url.clone().unwrap_or_else(|| SCIM_URL.into()));
        scim_cfg
            .settings
            .insert("user_attribute".into(), toml::Value::String(attribute));
        let scim = ScimProvider::new(&scim_cfg)?;
        let mut api_cfg = cfg.clone();
        api_cfg.base_url = Some(text("api_url", API_URL)?);
        let web = HttpClient::new(&api_cfg)
            .map_err(|e| anyhow::anyhow!("{e:#} (api_url)"))?
            .with_accept("application/json")
            .with_error_parser(web_error_code)
            .with_forbidden_hint("Slack refused the token");
        Ok(SlackProvider {
            scim,
            web,
            system: cfg.name.clone(),
            token: cfg.token.clone(),
            reset: Mutex::new(HashSet::new()),
        })
    }

    /// Replace the retry policy of both APIs (tests use tiny budgets).
    pub fn with_retry(mut self, retry: RetryPolicy) -> SlackProvider {
        self.scim = self.scim.with_retry(retry.clone());
        self.web = self.web.with_retry(retry);
        self
    }

    fn account(user: &User, login: &str) -> Account {
        Account::new(
            user.id.clone(),
            "Slack user id",
            user.user_name.clone().unwrap_or_else(|| login.to_string()),
        )
    }

    /// The user as Slack has it now: by the recorded id (`Gone` on 404), else by the SCIM
    /// filter (nobody is `NotFound`), re-read by id since a filter may come from an index
    /// that lags.
    async fn resolve(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Resolved, ProviderError> {
        if let Some(known) = call.account {
            return Ok(match self.scim.get_user(&known.id, ctx, records).await? {
                Some(u) => Resolved::Live(u),
                None => Resolved::Gone(known.clone()),
            });
        }
        let Some(found) = self.scim.find(call.login, ctx, records).await? else {
            return Err(ProviderError::NotFound(format!(
                "system `{}`: Slack's SCIM API finds no user for {:?} ({})",
                self.system,
                call.login,
                self.scim.filter_for(call.login)
            )));
        };
        match self.scim.get_user(&found.id, ctx, records).await? {
            Some(u) => Ok(Resolved::Live(u)),
            None => Err(ProviderError::Transient(format!(
                "system `{}`: the SCIM filter finds user {} but reading it by id answers 404; \
                 cannot tell which account this is",
                self.system, found.id
            ))),
        }
    }

    async fn deactivate(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let user = match self.resolve(call, ctx, &mut records).await? {
            Resolved::Live(u) => u,
            Resolved::Gone(account) => return Ok(gone_apply(account, records)),
        };
        let account = Self::account(&user, call.login);
        ctx.identified(&account);
        ctx.before(&pre_state(&user));
        if user.active == Some(false) {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("Slack user {} already deactivated (active=false)", user.id),
                requests: records,
                account: Some(account),
            });
        }
        let resp = self
            .scim
            .http()
            .send(
                Request::delete(self.scim.user_url(&user.id)?).allow(StatusCode::NOT_FOUND),
                ctx,
            )
            .await?;
        records.push(resp.record.clone());
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(gone_apply(account, records));
        }
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "deactivated Slack user {} (SCIM DELETE; active: {} → false)",
                user.id,
                user.active
                    .map_or("not reported".to_string(), |a| a.to_string())
            ),
            requests: records,
            account: Some(account),
        })
    }

    async fn check_deactivated(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let user = match self.resolve(call, ctx, &mut records).await? {
            Resolved::Live(u) => u,
            Resolved::Gone(account) => return Ok(gone_check(account)),
        };
        let account = Some(Self::account(&user, call.login));
        match user.active {
            Some(active) => Ok(CheckOutcome {
                revoked: !active,
                observed: format!("active={active}"),
                account,
            }),
            None => Err(ProviderError::Permanent(format!(
                "system `{}`: Slack's SCIM user {} does not report `active`; cannot tell \
                 whether it is deactivated",
                self.system, user.id
            ))),
        }
    }

    fn reset_params(&self, call: &StepCall<'_>) -> Result<ResetParams, ProviderError> {
        let p: ResetParams = params::parse(call.action, call.params)?;
        if p.mobile_only == Some(true) && p.web_only == Some(true) {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: step `{}`: mobile_only and web_only together would reset only \
                 what both name; leave both out to reset every session",
                self.system, call.step_id
            )));
        }
        Ok(p)
    }

    async fn reset_sessions(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let p = self.reset_params(call)?;
        let mut records = Vec::new();
        let user = match self.resolve(call, ctx, &mut records).await? {
            Resolved::Live(u) => u,
            Resolved::Gone(account) => return Ok(gone_apply(account, records)),
        };
        let account = Self::account(&user, call.login);
        ctx.identified(&account);
        ctx.before(&pre_state(&user));
        if user.active == Some(false) {
            // What the check accepts as proof; Slack may refuse a reset for such a user.
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!(
                    "Slack user {} is deactivated (active=false): signed out everywhere, no \
                     reset needed",
                    user.id
                ),
                requests: records,
                account: Some(account),
            });
        }
        let mut body = json!({ "user_id": user.id });
        if let Some(m) = p.mobile_only {
            body["mobile_only"] = json!(m);
        }
        if let Some(w) = p.web_only {
            body["web_only"] = json!(w);
        }
        // Wiping sessions twice wipes nothing more: safe to send again.
        let req = Request::post(self.web.endpoint(&[RESET])?)
            .json(&body, "application/json; charset=utf-8")
            .resend_safe();
        let resp = self.web.send(req, ctx).await?;
        records.push(resp.record.clone());
        let answer: Value = resp.json()?;
        match answer.get("ok").and_then(Value::as_bool) {
            Some(true) => {}
            Some(false) => return Err(self.web_failure(RESET, &answer, &user.id)),
            None => {
                return Err(ProviderError::Permanent(format!(
                    "system `{}`: {RESET} answered without `ok`; cannot tell whether the \
                     sessions were reset",
                    self.system
                )));
            }
        }
        self.reset
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user.id.clone());
        let which = match (p.mobile_only, p.web_only) {
            (Some(true), _) => "mobile sessions",
            (_, Some(true)) => "web sessions",
            _ => "every session",
        };
        Ok(ApplyOutcome {
            changed: true,
            summary: format!("reset {which} of Slack user {} ({RESET}: ok)", user.id),
            requests: records,
            account: Some(account),
        })
    }

    async fn check_reset(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let user = match self.resolve(call, ctx, &mut records).await? {
            Resolved::Live(u) => u,
            Resolved::Gone(account) => return Ok(gone_check(account)),
        };
        let account = Some(Self::account(&user, call.login));
        let reset_here = self
            .reset
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&user.id);
        if user.active == Some(false) {
            return Ok(CheckOutcome {
                revoked: true,
                observed: "active=false (a deactivated Slack user is signed out everywhere)".into(),
                account,
            });
        }
        if reset_here {
            return Ok(CheckOutcome {
                revoked: true,
                observed: format!(
                    "{RESET} answered ok for {} in this run (Slack cannot list sessions)",
                    user.id
                ),
                account,
            });
        }
        Err(ProviderError::Transient(format!(
            "system `{}`: Slack cannot list a user's sessions and user {} is still active; no \
             {RESET} answered ok for it in this run, so nothing proves a reset (apply again to \
             reset them)",
            self.system, user.id
        )))
    }

    /// A Web API answer with `ok: false`: Slack's error code, and what it means where that
    /// helps the operator (the scope a token lacks).
    fn web_failure(&self, method: &str, answer: &Value, user_id: &str) -> ProviderError {
        let field = |k: &str| {
            answer
                .get(k)
                .and_then(Value::as_str)
                .map(|s| self.redact(s))
        };
        let code = field("error").unwrap_or_else(|| "no error code".into());
        let hint = match code.as_str() {
            "missing_scope" => format!(
                ": the token lacks the scope {} (it has: {})",
                field("needed").unwrap_or_else(|| "admin.users:write".into()),
                field("provided").unwrap_or_else(|| "not said".into())
            ),
            "not_authed" => ": no token reached Slack".into(),
            "invalid_auth" | "token_revoked" | "token_expired" | "account_inactive" => {
                ": Slack does not accept the token".into()
            }
            "not_an_admin" | "not_an_enterprise" | "feature_not_enabled" => {
                ": needs an Org Owner or Admin token on Enterprise Grid".into()
            }
            "user_not_found" => format!(": Slack knows no user {user_id}"),
            _ => String::new(),
        };
        let msg = format!("system `{}`: {method} failed: {code}{hint}", self.system);
        if TRANSIENT_CODES.contains(&code.as_str()) {
            ProviderError::Transient(msg)
        } else {
            ProviderError::Permanent(msg)
        }
    }

    /// The token cut out of anything Slack echoes back.
    fn redact(&self, s: &str) -> String {
        match &self.token {
            Some(t) if !t.expose_secret().is_empty() => s.replace(t.expose_secret(), "[redacted]"),
            _ => s.to_string(),
        }
    }

    fn nothing_recorded(&self, call: &StepCall<'_>) -> ProviderError {
        ProviderError::Permanent(format!(
            "system `{}`: step `{}`: no Slack user was recorded for this step; nothing to \
             restore",
            self.system, call.step_id
        ))
    }

    /// The recorded user, read by its id: rollback acts on nobody else.
    async fn recorded_user(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(Account, User), ProviderError> {
        let Some(known) = call.account else {
            return Err(self.nothing_recorded(call));
        };
        match self.scim.get_user(&known.id, ctx, records).await? {
            Some(u) => Ok((Self::account(&u, call.login), u)),
            None => Err(ProviderError::Permanent(format!(
                "system `{}`: Slack user {} no longer exists (404 by id): it cannot be \
                 reactivated",
                self.system, known.id
            ))),
        }
    }

    /// Undo `deactivate_user`: `PATCH /Users/{id}` with `active: true`, when the recorded
    /// pre-state was active and the user is not active now.
    async fn reactivate(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (account, user) = self.recorded_user(call, ctx, &mut records).await?;
        let was_active = before.get("active").and_then(Value::as_bool) == Some(true);
        if !was_active || user.active == Some(true) {
            return Ok(ApplyOutcome {
                changed: false,
                summary: if was_active {
                    format!("Slack user {} is active already", user.id)
                } else {
                    format!(
                        "Slack user {} was not active before (active={}); nothing to put back",
                        user.id, before["active"]
                    )
                },
                requests: records,
                account: Some(account),
            });
        }
        // Slack's SCIM reference: PATCH updates the attributes given; `active: true` on a
        // deactivated user reactivates it (UNCONFIRMED against a live Slack org: the reference
        // documents DELETE as "deactivate" and PATCH as "overwriting specified values").
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "path": "active", "value": true }],
        });
        let resp = self
            .scim
            .http()
            .send(
                Request::patch(self.scim.user_url(&user.id)?).json(&body, "application/json"),
                ctx,
            )
            .await?;
        records.push(resp.record.clone());
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "reactivated Slack user {} (SCIM PATCH; active: false → true)",
                user.id
            ),
            requests: records,
            account: Some(account),
        })
    }

    fn unknown_action(&self, action: &str) -> ProviderError {
        ProviderError::Permanent(format!(
            "system `{}`: the slack kind has no action `{action}`",
            self.system
        ))
    }
}

/// The user this step acted on, as it stands now.
enum Resolved {
    Live(User),
    /// Read by its recorded id and answered 404.
    Gone(Account),
}

/// The pre-state both actions record: `{"id", "active"}` (`active` null when Slack does not
/// report it).
fn pre_state(user: &User) -> Value {
    json!({ "id": user.id, "active": user.active })
}

fn gone_apply(account: Account, requests: Vec<RequestRecord>) -> ApplyOutcome {
    ApplyOutcome {
        changed: false,
        summary: format!("Slack user {} no longer exists (404 by id)", account.id),
        requests,
        account: Some(account),
    }
}

fn gone_check(account: Account) -> CheckOutcome {
    CheckOutcome {
        revoked: true,
        observed: format!("Slack user {} no longer exists (404 by id)", account.id),
        account: Some(account),
    }
}

/// A Web API error body's `error` code (`{"ok": false, "error": "ratelimited"}`), or a SCIM
/// error's text.
fn web_error_code(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    match v.get("error").and_then(Value::as_str) {
        Some(code) if !code.is_empty() => Some(code.to_string()),
        _ => super::scim::scim_error_message(body),
    }
}

#[async_trait]
impl Provider for SlackProvider {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        let line = |method: &str, url: String| RequestLine {
            method: method.into(),
            url,
        };
        let (Ok(find), Ok(by_id)) = (self.scim.find_url(call.login), self.scim.user_url("{id}"))
        else {
            return Vec::new();
        };
        let by_id = by_id.to_string().replace("%7Bid%7D", "{id}");
        match call.action {
            "deactivate_user" => vec![
                line("GET", find.to_string()),
                line("GET", by_id.clone()),
                line("DELETE", by_id),
            ],
            "reset_sessions" => match self.web.endpoint(&[RESET]) {
                Ok(u) => vec![
                    line("GET", find.to_string()),
                    line("GET", by_id),
                    line("POST", u.to_string()),
                ],
                Err(_) => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "deactivate_user" => self.deactivate(call, ctx).await,
            "reset_sessions" => self.reset_sessions(call, ctx).await,
            other => Err(self.unknown_action(other)),
        }
    }

    /// Finds the person and reads them: `reset_sessions`'s check needs a reset that has not
    /// happened yet, so preflight only looks.
    async fn preflight(&self, call: &StepCall<'_>, ctx: &CallCtx) -> Result<String, ProviderError> {
        match call.action {
            "reset_sessions" => {
                self.reset_params(call)?;
                let mut records = Vec::new();
                match self.resolve(call, ctx, &mut records).await? {
                    Resolved::Live(u) => Ok(format!("found {}", Self::account(&u, call.login))),
                    Resolved::Gone(a) => Ok(format!("{a} no longer exists (404 by id)")),
                }
            }
            _ => {
                let c = self.check(call, ctx).await?;
                Ok(c.account.map_or(c.observed, |a| format!("found {a}")))
            }
        }
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        match call.action {
            "deactivate_user" => self.check_deactivated(call, ctx).await,
            "reset_sessions" => self.check_reset(call, ctx).await,
            other => Err(self.unknown_action(other)),
        }
    }

    fn describe_restore(&self, call: &StepCall<'_>, before: &Value) -> Vec<RequestLine> {
        let Ok(by_id) = self.scim.user_url("{id}") else {
            return Vec::new();
        };
        let by_id = by_id.to_string().replace("%7Bid%7D", "{id}");
        let line = |method: &str| RequestLine {
            method: method.into(),
            url: by_id.clone(),
        };
        match call.action {
            "deactivate_user" if before.get("active").and_then(Value::as_bool) == Some(true) => {
                vec![line("GET"), line("PATCH")]
            }
            "deactivate_user" => vec![line("GET")],
            _ => Vec::new(),
        }
    }

    async fn restore(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "deactivate_user" => self.reactivate(call, before, ctx).await,
            other => Err(ProviderError::Permanent(format!(
                "system `{}`: action `{other}` cannot be undone",
                self.system
            ))),
        }
    }

    async fn check_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        if call.action != "deactivate_user" {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: action `{}` cannot be undone",
                self.system, call.action
            )));
        }
        let mut records = Vec::new();
        let Some(known) = call.account else {
            return Err(self.nothing_recorded(call));
        };
        let Some(user) = self.scim.get_user(&known.id, ctx, &mut records).await? else {
            return Ok(RestoreCheck {
                after: json!({ "id": known.id, "active": null }),
                restored: false,
                observed: format!(
                    "Slack user {} no longer exists (404 by id): it cannot be reactivated",
                    known.id
                ),
                account: Some(known.clone()),
            });
        };
        let account = Self::account(&user, call.login);
        let was_active = before.get("active").and_then(Value::as_bool) == Some(true);
        let restored = !was_active || user.active == Some(true);
        let now = user
            .active
            .map_or("not reported".to_string(), |a| a.to_string());
        Ok(RestoreCheck {
            after: pre_state(&user),
            restored,
            observed: if restored {
                format!("active={now}")
            } else {
                format!(
                    "active={now}, was true: Slack user {} is not reactivated",
                    user.id
                )
            },
            account: Some(account),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(
        action: &'a str,
        login: &'a str,
        params: &'a serde_json::Map<String, Value>,
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
    fn describe_defaults_without_token() {
        let p = (KIND.connect)(&SystemConfig::new("slack", "slack", None)).unwrap();
        let params = serde_json::Map::new();
        let lines: Vec<String> = p
            .describe(&call("reset_sessions", "ana@corp.test", &params))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "GET https://api.slack.com/scim/v2/Users?filter=userName%20eq%20%22ana%40corp.test%22",
                "GET https://api.slack.com/scim/v2/Users/{id}",
                "POST https://slack.com/api/admin.users.session.reset",
            ]
        );
        let lines = p.describe(&call("deactivate_user", "ana", &params));
        assert_eq!(
            lines[2].to_string(),
            "DELETE https://api.slack.com/scim/v2/Users/{id}"
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut c = SystemConfig::new("slack", "slack", None);
        c.settings
            .insert("user_attribute".into(), toml::Value::String("id".into()));
        assert!((KIND.connect)(&c).is_err());
        let mut c = SystemConfig::new("slack", "slack", None);
        c.settings.insert(
            "api_url".into(),
            toml::Value::String("http://slack.example/api".into()),
        );
        assert!((KIND.connect)(&c).is_err());
    }

    #[test]
    fn web_errors_read_well() {
        assert_eq!(
            web_error_code(br#"{"ok":false,"error":"ratelimited"}"#).as_deref(),
            Some("ratelimited")
        );
        assert_eq!(
            web_error_code(br#"{"Errors":{"description":"no such user","code":404}}"#).as_deref(),
            Some("no such user")
        );
    }
}
