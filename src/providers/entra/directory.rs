//! The user object itself: sign-in (`accountEnabled`), sessions (`revokeSignInSessions`), the
//! password (`passwordProfile`), the on-premises anchor (`onPremisesImmutableId`), and deletion.

use chrono::Utc;
use rand::Rng;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::EntraProvider;
use super::graph::{Marker, Resolved, already_deleted, gone, seen, show, text, when};
use crate::providers::kit::http::Request;
use crate::providers::{
    Account, ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall,
};

pub(super) const ENABLED: &str = "accountEnabled";
const SESSIONS: &str = "signInSessionsValidFromDateTime";
const PASSWORD: &str = "lastPasswordChangeDateTime";
pub(super) const ANCHOR: &str = "onPremisesImmutableId";
const SYNCED: &str = "onPremisesSyncEnabled";

/// A random password Entra accepts (8–256 characters, three of four classes): 32 characters
/// with all four, from the OS's generator. It lives only in the request body.
fn random_password() -> SecretString {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"!#%+-./:=?@^_~";
    let mut rng = rand::rngs::OsRng;
    let all: Vec<u8> = [UPPER, LOWER, DIGIT, SYMBOL].concat();
    let mut chars: Vec<u8> = [UPPER, LOWER, DIGIT, SYMBOL]
        .iter()
        .map(|set| set[rng.gen_range(0..set.len())])
        .collect();
    while chars.len() < 32 {
        chars.push(all[rng.gen_range(0..all.len())]);
    }
    for i in (1..chars.len()).rev() {
        chars.swap(i, rng.gen_range(0..=i));
    }
    SecretString::from(String::from_utf8(chars).expect("ASCII"))
}

impl EntraProvider {
    /// `PATCH /users/{id}` with `body`; a 404 means the user was deleted meanwhile.
    pub(super) async fn patch_user(
        &self,
        account: &Account,
        body: &Value,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<bool, ProviderError> {
        let req = Request::patch(self.url(&["users", &account.id])?)
            .json(body, "application/json")
            .allow(StatusCode::NOT_FOUND);
        let resp = self.send(req, ctx, records).await?;
        Ok(resp.status != StatusCode::NOT_FOUND)
    }

    pub(super) async fn disable_sign_in(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.resolve(call, &[ENABLED], ctx, &mut records).await? {
            Resolved::Live(u, a) => (u, a),
            Resolved::Gone(a) => return Ok(already_deleted(a, records)),
        };
        ctx.identified(&account);
        let before = user.get(ENABLED).cloned().unwrap_or(Value::Null);
        ctx.before(&json!({ "id": account.id, ENABLED: before }));
        if before == Value::Bool(false) {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("sign-in of {account} already blocked (accountEnabled=false)"),
                requests: records,
                account: Some(account),
            });
        }
        let body = json!({ ENABLED: false });
        if !self.patch_user(&account, &body, ctx, &mut records).await? {
            return Ok(already_deleted(account, records));
        }
        Ok(ApplyOutcome {
            changed: true,
            summary: format!("blocked sign-in of {account} (accountEnabled: {before} → false)"),
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_sign_in(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.resolve(call, &[ENABLED], ctx, &mut records).await? {
            Resolved::Live(u, a) => (u, a),
            Resolved::Gone(a) => return Ok(gone(a)),
        };
        match user.get(ENABLED).and_then(Value::as_bool) {
            Some(enabled) => Ok(seen(
                !enabled,
                format!("accountEnabled={enabled}"),
                &account,
            )),
            None => Err(self.err(format!(
                "GET /users/{} does not report accountEnabled; cannot tell whether sign-in is \
                 blocked",
                account.id
            ))),
        }
    }

    /// `revoke_sessions` and `reset_password` share one shape: read the timestamp, make the
    /// change, record the value from before, so the check can want a later one.
    async fn change_with_record(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        field: &'static str,
        what: &str,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.resolve(call, &[field], ctx, &mut records).await? {
            Resolved::Live(u, a) => (u, a),
            Resolved::Gone(a) => return Ok(already_deleted(a, records)),
        };
        ctx.identified(&account);
        let live = when(&user, field);
        if let Some(m) = self.read_marker(call.action, &account.id)?
            && m.is_recent()
            && m.holds(live)
        {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!(
                    "{what} of {account} already done by offboard ({field}: {} → {})",
                    show(m.before),
                    show(live)
                ),
                requests: records,
                account: Some(account),
            });
        }
        // Recorded before the change: a crash right after it still leaves the comparison.
        let marker = Marker {
            before: live,
            recorded_at: Utc::now(),
        };
        self.write_marker(call.action, &account.id, &marker)?;
        let done = match field {
            SESSIONS => {
                let url = self.url(&["users", &account.id, "revokeSignInSessions"])?;
                let resp = self
                    .send(
                        Request::post(url).allow(StatusCode::NOT_FOUND),
                        ctx,
                        &mut records,
                    )
                    .await?;
                if resp.status == StatusCode::NOT_FOUND {
                    return Ok(already_deleted(account, records));
                }
                // Graph answers 200 `{"value": true}` where its docs promise 204: any 2xx is
                // success, but an explicit `false` is not.
                if !resp.body.is_empty()
                    && let Ok(v) = resp.json::<Value>()
                    && v.get("value") == Some(&Value::Bool(false))
                {
                    return Err(self.err(format!(
                        "POST /users/{}/revokeSignInSessions answered value=false: the sessions \
                         were not revoked",
                        account.id
                    )));
                }
                true
            }
            _ => {
                let password = random_password();
                let body = json!({
                    "passwordProfile": {
                        "password": password.expose_secret(),
                        "forceChangePasswordNextSignIn": true,
                    }
                });
                self.patch_user(&account, &body, ctx, &mut records).await?
            }
        };
        if !done {
            return Ok(already_deleted(account, records));
        }
        // Read back: the summary says what Graph now holds.
        let after = match self
            .get_user(&account.id, &[field], ctx, &mut records)
            .await?
        {
            Some(u) => when(&u, field),
            None => return Ok(already_deleted(account, records)),
        };
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "{what} of {account} ({field}: {} → {}){}",
                show(live),
                show(after),
                if field == PASSWORD {
                    ": a random password nobody knows, never stored"
                } else {
                    ": refresh tokens and session cookies issued before are void (takes effect \
                     within minutes)"
                }
            ),
            requests: records,
            account: Some(account),
        })
    }

    /// The live timestamp against what this machine recorded before its change.
    async fn check_record(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        field: &'static str,
        what: &str,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.resolve(call, &[field], ctx, &mut records).await? {
            Resolved::Live(u, a) => (u, a),
            Resolved::Gone(a) => return Ok(gone(a)),
        };
        let live = when(&user, field);
        match self.read_marker(call.action, &account.id)? {
            None => Err(self.err(format!(
                "no record of a {what} of {account} by offboard on this machine (in {}); \
                 {field} is {}: cannot tell whether it happened after the departure",
                self.marker_dir().display(),
                show(live)
            ))),
            Some(m) => Ok(seen(
                m.holds(live),
                format!(
                    "{field}={} (before offboard's {what}: {})",
                    show(live),
                    show(m.before)
                ),
                &account,
            )),
        }
    }

    pub(super) async fn revoke_sessions(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        self.change_with_record(call, ctx, SESSIONS, "revoked the sessions")
            .await
    }

    pub(super) async fn check_revoked(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        self.check_record(call, ctx, SESSIONS, "session revocation")
            .await
    }

    pub(super) async fn reset_password(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        self.change_with_record(call, ctx, PASSWORD, "reset the password")
            .await
    }

    pub(super) async fn check_password(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        self.check_record(call, ctx, PASSWORD, "password reset")
            .await
    }

    pub(super) async fn clear_immutable_id(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self
            .resolve(call, &[ANCHOR, SYNCED], ctx, &mut records)
            .await?
        {
            Resolved::Live(u, a) => (u, a),
            Resolved::Gone(a) => return Ok(already_deleted(a, records)),
        };
        ctx.identified(&account);
        ctx.before(&json!({ "id": account.id, ANCHOR: text(&user, ANCHOR) }));
        let Some(anchor) = text(&user, ANCHOR) else {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("{account} has no onPremisesImmutableId (cloud-only)"),
                requests: records,
                account: Some(account),
            });
        };
        if user.get(SYNCED) == Some(&Value::Bool(true)) {
            return Err(self.err(format!(
                "{account} is still synced from on-premises AD (onPremisesSyncEnabled=true): \
                 Entra keeps the anchor of a synced user. Move the AD account out of the sync \
                 scope (or disable it there) and let a sync cycle run first"
            )));
        }
        let body = json!({ ANCHOR: null });
        if !self.patch_user(&account, &body, ctx, &mut records).await? {
            return Ok(already_deleted(account, records));
        }
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "cleared onPremisesImmutableId of {account} (was {anchor}): directory sync no \
                 longer matches it to an AD account"
            ),
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_immutable_id(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.resolve(call, &[ANCHOR], ctx, &mut records).await? {
            Resolved::Live(u, a) => (u, a),
            Resolved::Gone(a) => return Ok(gone(a)),
        };
        Ok(match text(&user, ANCHOR) {
            None => seen(true, "onPremisesImmutableId=null".into(), &account),
            Some(a) => seen(false, format!("onPremisesImmutableId={a}"), &account),
        })
    }

    pub(super) async fn delete_user(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let account = match self.resolve(call, &[], ctx, &mut records).await? {
            Resolved::Live(_, a) => a,
            Resolved::Gone(a) => return Ok(already_deleted(a, records)),
        };
        ctx.identified(&account);
        ctx.before(&json!({
            "id": account.id,
            "userPrincipalName": account.name,
            "exists": true,
        }));
        let req = Request::delete(self.url(&["users", &account.id])?).allow(StatusCode::NOT_FOUND);
        let resp = self.send(req, ctx, &mut records).await?;
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(already_deleted(account, records));
        }
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "deleted {account}: a soft delete, restorable with its mailbox, licences and \
                 groups from deleted items for 30 days (until {}), then permanent",
                (Utc::now() + chrono::Duration::days(30)).format("%Y-%m-%d")
            ),
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_deleted(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        match self.resolve(call, &[ENABLED], ctx, &mut records).await? {
            Resolved::Gone(a) => Ok(gone(a)),
            Resolved::Live(user, account) => Ok(seen(
                false,
                format!(
                    "user {} still exists (accountEnabled={})",
                    account.id,
                    user.get(ENABLED)
                        .map_or("not reported".into(), Value::to_string)
                ),
                &account,
            )),
        }
    }
}
