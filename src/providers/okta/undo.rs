//! Rollback: the pre-state `suspend_user` and `remove_from_groups` record, unsuspending the
//! user and adding the groups back, and the checks of both.

use reqwest::StatusCode;
use serde_json::Value;

use super::users::{Resolved, User};
use super::{NO_UNDO_DEACTIVATE, OktaProvider, after_some, done};
use crate::providers::kit::http::Request;
use crate::providers::{
    Account, ApplyOutcome, CallCtx, ProviderError, RequestRecord, RestoreCheck, StepCall,
};

/// The pre-state of a lifecycle action: the user's status (and a transition under way).
pub(super) fn status_before(user: &User) -> Value {
    serde_json::json!({
        "id": user.id,
        "status": user.status,
        "transitioningToStatus": user.transitioning,
    })
}

/// The OKTA_GROUPs of a `remove_from_groups` pre-state (the only ones offboard removes):
/// (id, name).
pub(super) fn okta_groups_before(before: &Value) -> Vec<(String, String)> {
    before
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|g| g.get("type").and_then(Value::as_str) == Some("OKTA_GROUP"))
        .filter_map(|g| {
            let id = g
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())?;
            let name = g.get("name").and_then(Value::as_str).unwrap_or(id);
            Some((id.to_string(), name.to_string()))
        })
        .collect()
}

impl OktaProvider {
    pub(super) fn no_restore(&self, action: &str) -> ProviderError {
        ProviderError::Permanent(format!(
            "system `{}`: action `{action}` cannot be undone by offboard (see the rollback plan)",
            self.system
        ))
    }

    /// The recorded user, read by id for a restore: `Err(account)` when deleted since.
    pub(super) async fn restore_target(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Result<(User, Account), Account>, ProviderError> {
        let Some(known) = call.account else {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: step `{}`: rollback needs the account the apply identified; none \
                 recorded",
                self.system, call.step_id
            )));
        };
        if let Some(id) = before.get("id").and_then(Value::as_str)
            && id != known.id
        {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: step `{}`: the recorded pre-state is of Okta user {id}, not of {}; \
                 refusing to restore it onto another account",
                self.system, call.step_id, known.id
            )));
        }
        Ok(match self.resolve(call, ctx, records).await? {
            Resolved::Live(u) => {
                let account = self.account(&u, call.login);
                Ok((u, account))
            }
            Resolved::Gone(a) => Err(a),
        })
    }

    pub(super) fn deleted_error(&self, account: &Account) -> ProviderError {
        ProviderError::Permanent(format!(
            "system `{}`: Okta user {} no longer exists (404 by id): a deleted Okta user cannot \
             come back",
            self.system, account.id
        ))
    }

    pub(super) fn deleted_check(account: Account) -> RestoreCheck {
        RestoreCheck {
            after: serde_json::json!({ "id": account.id, "exists": false }),
            restored: false,
            observed: format!(
                "Okta user {} no longer exists (404 by id): nothing of it can come back",
                account.id
            ),
            account: Some(account),
        }
    }

    pub(super) async fn unsuspend(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.restore_target(call, before, ctx, &mut records).await? {
            Ok(x) => x,
            Err(gone) => return Err(self.deleted_error(&gone)),
        };
        let was = before.get("status").and_then(Value::as_str).unwrap_or("");
        if was != "ACTIVE" {
            return Ok(done(
                false,
                format!(
                    "nothing to put back: Okta user {} was {} before offboard suspended nothing",
                    user.id,
                    if was.is_empty() { "not reported" } else { was }
                ),
                records,
                account,
            ));
        }
        match user.status.as_str() {
            "ACTIVE" => {
                return Ok(done(
                    false,
                    format!("Okta user {} is already ACTIVE", user.id),
                    records,
                    account,
                ));
            }
            "SUSPENDED" => {}
            "DEPROVISIONED" => {
                return Err(ProviderError::Permanent(format!(
                    "system `{}`: Okta user {} was deactivated since it was suspended: unsuspend \
                     cannot bring it back ({NO_UNDO_DEACTIVATE})",
                    self.system, user.id
                )));
            }
            other => {
                return Err(ProviderError::Permanent(format!(
                    "system `{}`: Okta user {} is {other}, not SUSPENDED: Okta unsuspends only \
                     suspended users; put it back by hand",
                    self.system, user.id
                )));
            }
        }
        let url = self.url(&["users", &user.id, "lifecycle", "unsuspend"])?;
        self.send(Request::post(url), ctx, &mut records).await?;
        Ok(done(
            true,
            format!(
                "unsuspended Okta user {} (status SUSPENDED → ACTIVE)",
                user.id
            ),
            records,
            account,
        ))
    }

    pub(super) async fn check_unsuspended(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.restore_target(call, before, ctx, &mut records).await? {
            Ok(x) => x,
            Err(gone) => return Ok(Self::deleted_check(gone)),
        };
        let was = before.get("status").and_then(Value::as_str).unwrap_or("");
        let restored = was != "ACTIVE" || (user.status == "ACTIVE" && user.transitioning.is_none());
        Ok(RestoreCheck {
            after: status_before(&user),
            restored,
            observed: if was != "ACTIVE" {
                format!(
                    "status={} (it was {was} before offboard: nothing to put back)",
                    user.status
                )
            } else if restored {
                "status=ACTIVE, as before offboard".into()
            } else {
                format!("status={}, not ACTIVE as before offboard", user.status)
            },
            account: Some(account),
        })
    }

    pub(super) async fn readd_groups(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.restore_target(call, before, ctx, &mut records).await? {
            Ok(x) => x,
            Err(gone) => return Err(self.deleted_error(&gone)),
        };
        let now = self.groups(&user.id, None, ctx, &mut records).await?;
        let mut added: Vec<String> = Vec::new();
        let mut lost = Vec::new();
        for (gid, name) in okta_groups_before(before) {
            if now.iter().any(|g| g.id == gid) {
                continue;
            }
            let url = self.url(&["groups", &gid, "users", &user.id])?;
            let resp = self
                .send(
                    Request::put(url).allow(StatusCode::NOT_FOUND),
                    ctx,
                    &mut records,
                )
                .await
                .map_err(|e| after_some("re-added to", e, &added))?;
            if resp.status == StatusCode::NOT_FOUND {
                lost.push(format!("{name} ({gid})"));
            } else {
                added.push(name);
            }
        }
        if !lost.is_empty() {
            let done_part = if added.is_empty() {
                String::new()
            } else {
                format!("re-added Okta user {} to {}; ", user.id, added.join(", "))
            };
            return Err(ProviderError::Permanent(format!(
                "system `{}`: {done_part}group(s) {} no longer exist (404): those memberships \
                 cannot come back",
                self.system,
                lost.join(", ")
            )));
        }
        Ok(done(
            !added.is_empty(),
            if added.is_empty() {
                format!(
                    "Okta user {} is already in every group offboard removed it from",
                    user.id
                )
            } else {
                format!(
                    "re-added Okta user {} to {} group(s): {}",
                    user.id,
                    added.len(),
                    added.join(", ")
                )
            },
            records,
            account,
        ))
    }

    pub(super) async fn check_groups_back(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.restore_target(call, before, ctx, &mut records).await? {
            Ok(x) => x,
            Err(gone) => return Ok(Self::deleted_check(gone)),
        };
        let now = self.groups(&user.id, None, ctx, &mut records).await?;
        let missing: Vec<String> = okta_groups_before(before)
            .into_iter()
            .filter(|(gid, _)| !now.iter().any(|g| g.id == *gid))
            .map(|(gid, name)| format!("{name} ({gid})"))
            .collect();
        Ok(RestoreCheck {
            after: serde_json::json!({
                "id": user.id,
                "groups": now
                    .iter()
                    .map(|g| serde_json::json!({ "id": g.id, "name": g.name, "type": g.kind }))
                    .collect::<Vec<_>>(),
            }),
            restored: missing.is_empty(),
            observed: if missing.is_empty() {
                "a member again of every OKTA_GROUP offboard removed it from".into()
            } else {
                format!(
                    "not a member of {} (re-add by hand, or the group no longer exists)",
                    missing.join(", ")
                )
            },
            account: Some(account),
        })
    }
}
