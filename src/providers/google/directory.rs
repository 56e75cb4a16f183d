//! The Directory API's actions: suspension, sign-out, OAuth tokens, app passwords, backup
//! codes, 2-step verification, group memberships, the org unit and deletion. Everything acts
//! as `admin`, on `users/{id}`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Api, GoogleProvider, User, done, list, not_the_person, partly, scopes};
use crate::providers::kit::http::Request;
use crate::providers::kit::paging::{self, Paging};
use crate::providers::{ApplyOutcome, CallCtx, CheckOutcome, ProviderError, StepCall, params};

/// `remove_from_groups`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct GroupsParams {
    /// Only these groups (by email address, case-insensitive); default: every group the user
    /// is a direct member of.
    #[schemars(length(min = 1))]
    groups: Option<Vec<String>>,
}

/// `move_to_ou`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct OuParams {
    /// The organizational unit to move the user to, as a full path, e.g. `/Suspended`.
    #[schemars(length(min = 1))]
    org_unit_path: String,
}

/// A per-user list whose items are removed one by one (OAuth tokens, app passwords).
pub(super) struct Each {
    /// The path segment after `users/{id}`.
    what: &'static str,
    /// The item's key, used in the DELETE path.
    id_field: &'static str,
    /// The item's name for humans.
    label_field: &'static str,
    noun: &'static str,
}

pub(super) const TOKENS: Each = Each {
    what: "tokens",
    id_field: "clientId",
    label_field: "displayText",
    noun: "OAuth client",
};

pub(super) const ASPS: Each = Each {
    what: "asps",
    id_field: "codeId",
    label_field: "name",
    noun: "app password",
};

/// An item's key: a string or (app passwords) an integer.
fn key(v: &Value, field: &str) -> Option<String> {
    match v.get(field)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl GoogleProvider {
    pub(super) async fn suspend(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let http = self.as_admin(Api::Admin, scopes::USER)?;
        let mut records = Vec::new();
        let (user, account) = match self.live(&http, call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        ctx.before(&json!({ "id": user.id, "suspended": user.suspended }));
        if user.suspended == Some(true) {
            return Ok(done(
                false,
                format!("Google user {} already suspended", user.id),
                records,
                account,
            ));
        }
        let req = Request::patch(self.directory(&["users", &user.id])?)
            .json(&json!({ "suspended": true }), "application/json");
        self.send(&http, req, ctx, &mut records).await?;
        Ok(done(
            true,
            format!(
                "suspended Google user {} (suspended: false → true)",
                user.id
            ),
            records,
            account,
        ))
    }

    pub(super) async fn check_suspended(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        self.check_user_field(call, ctx, "suspended", |u| {
            u.suspended.map(|s| (s, format!("suspended={s}")))
        })
        .await
    }

    /// Read the user by id and judge one field of it: `judge` says whether the revocation holds
    /// and what was seen, or `None` when Google left the field out (nothing is confirmed then).
    async fn check_user_field(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        field: &str,
        judge: impl Fn(&User) -> Option<(bool, String)>,
    ) -> Result<CheckOutcome, ProviderError> {
        let http = self.as_admin(Api::Admin, scopes::USER)?;
        let user = match self.read(&http, call, ctx).await? {
            Ok(u) => u,
            Err(gone) => return Ok(gone),
        };
        let Some((revoked, observed)) = judge(&user) else {
            return Err(self.err(format!(
                "GET users/{} answered without `{field}`: cannot confirm",
                user.id
            )));
        };
        Ok(CheckOutcome {
            revoked,
            observed,
            account: Some(user.account()),
        })
    }

    pub(super) async fn sign_out(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let http = self.as_admin(Api::Admin, scopes::SECURITY)?;
        let mut records = Vec::new();
        let (user, account) = match self.live(&http, call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        // Sessions cannot be read back, so nothing shows it is already done: sent each time
        // (ending sessions again is harmless).
        let req = Request::post(self.directory(&["users", &user.id, "signOut"])?);
        self.send(&http, req, ctx, &mut records)
            .await
            .map_err(not_the_person)?;
        Ok(done(
            true,
            format!(
                "signed Google user {} out of every web and device session (signOut)",
                user.id
            ),
            records,
            account,
        ))
    }

    /// Like Okta's `clear_sessions`: the API cannot read sessions back, so only a deleted
    /// user proves them gone.
    pub(super) async fn check_signed_out(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        // Only a deleted user (404 by id, answered by the read) proves the sessions gone.
        self.check_user_field(call, ctx, "id", |u| {
            Some((
                false,
                format!(
                    "suspended={}: Google's Directory API cannot read a user's sessions back, so \
                     signing out cannot be confirmed (the signOut answer is in the journal)",
                    u.suspended
                        .map_or_else(|| "unknown".to_string(), |s| s.to_string())
                ),
            ))
        })
        .await
    }

    /// `GET users/{id}/{what}`: the items (the key is left out when there are none).
    async fn items(
        &self,
        http: &crate::providers::kit::http::HttpClient,
        id: &str,
        what: &str,
        ctx: &CallCtx,
        records: &mut Vec<crate::providers::RequestRecord>,
    ) -> Result<Vec<Value>, ProviderError> {
        let req = Request::get(self.directory(&["users", id, what])?);
        let resp = self
            .send(http, req, ctx, records)
            .await
            .map_err(not_the_person)?;
        let v: Value = resp.json()?;
        Ok(list(&v, "items").to_vec())
    }

    pub(super) async fn remove_each(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        each: Each,
    ) -> Result<ApplyOutcome, ProviderError> {
        let http = self.as_admin(Api::Admin, scopes::SECURITY)?;
        let mut records = Vec::new();
        let (user, account) = match self.live(&http, call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        let items = self
            .items(&http, &user.id, each.what, ctx, &mut records)
            .await?;
        let mut removed = Vec::new();
        for item in &items {
            let Some(k) = key(item, each.id_field) else {
                return Err(self.err(format!(
                    "GET users/{}/{} answered an item without `{}`",
                    user.id, each.what, each.id_field
                )));
            };
            let label = item
                .get(each.label_field)
                .and_then(Value::as_str)
                .map_or_else(|| k.clone(), |l| format!("{l} ({k})"));
            let req = Request::delete(self.directory(&["users", &user.id, each.what, &k])?)
                .allow(StatusCode::NOT_FOUND);
            let resp = self
                .send(&http, req, ctx, &mut records)
                .await
                .map_err(|e| partly(e, &removed))?;
            if resp.status != StatusCode::NOT_FOUND {
                removed.push(label);
            }
        }
        Ok(if removed.is_empty() {
            done(
                false,
                format!("Google user {} has no {} left", user.id, each.noun),
                records,
                account,
            )
        } else {
            done(
                true,
                format!(
                    "removed {} {}(s) of Google user {}: {}",
                    removed.len(),
                    each.noun,
                    user.id,
                    removed.join(", ")
                ),
                records,
                account,
            )
        })
    }

    pub(super) async fn check_each(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        each: Each,
    ) -> Result<CheckOutcome, ProviderError> {
        let http = self.as_admin(Api::Admin, scopes::SECURITY)?;
        let user = match self.read(&http, call, ctx).await? {
            Ok(u) => u,
            Err(gone) => return Ok(gone),
        };
        let items = self
            .items(&http, &user.id, each.what, ctx, &mut Vec::new())
            .await?;
        let labels: Vec<String> = items
            .iter()
            .map(|i| {
                i.get(each.label_field)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| key(i, each.id_field))
                    .unwrap_or_else(|| "?".into())
            })
            .collect();
        Ok(CheckOutcome {
            revoked: items.is_empty(),
            observed: if items.is_empty() {
                format!("no {} left", each.noun)
            } else {
                format!(
                    "{} {}(s) left: {}",
                    items.len(),
                    each.noun,
                    labels.join(", ")
                )
            },
            account: Some(user.account()),
        })
    }

    /// Backup codes can be invalidated before the user is suspended; nothing here requires
    /// either order. UNCONFIRMED: whether Google still lists codes for a suspended user.
    pub(super) async fn invalidate_codes(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let http = self.as_admin(Api::Admin, scopes::SECURITY)?;
        let mut records = Vec::new();
        let (user, account) = match self.live(&http, call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        let codes = self
            .items(&http, &user.id, "verificationCodes", ctx, &mut records)
            .await?;
        if codes.is_empty() {
            return Ok(done(
                false,
                format!("Google user {} has no valid backup code", user.id),
                records,
                account,
            ));
        }
        let req = Request::post(self.directory(&[
            "users",
            &user.id,
            "verificationCodes",
            "invalidate",
        ])?);
        self.send(&http, req, ctx, &mut records)
            .await
            .map_err(not_the_person)?;
        // The codes themselves are secrets: only their number is said.
        Ok(done(
            true,
            format!(
                "invalidated the {} backup verification code(s) of Google user {}",
                codes.len(),
                user.id
            ),
            records,
            account,
        ))
    }

    pub(super) async fn check_codes(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let http = self.as_admin(Api::Admin, scopes::SECURITY)?;
        let user = match self.read(&http, call, ctx).await? {
            Ok(u) => u,
            Err(gone) => return Ok(gone),
        };
        let codes = self
            .items(&http, &user.id, "verificationCodes", ctx, &mut Vec::new())
            .await?;
        Ok(CheckOutcome {
            revoked: codes.is_empty(),
            observed: if codes.is_empty() {
                "no valid backup code".into()
            } else {
                format!("{} backup code(s) still valid", codes.len())
            },
            account: Some(user.account()),
        })
    }

    pub(super) async fn turn_off_2sv(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let http = self.as_admin(Api::Admin, scopes::SECURITY)?;
        let mut records = Vec::new();
        let (user, account) = match self.live(&http, call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        match user.enrolled_2sv {
            Some(false) => {
                // Google refuses turnOff for a user not enrolled: read first, send nothing.
                return Ok(done(
                    false,
                    format!(
                        "Google user {} is not enrolled in 2-step verification",
                        user.id
                    ),
                    records,
                    account,
                ));
            }
            None => {
                return Err(self.err(format!(
                    "GET users/{} answered without `isEnrolledIn2Sv`",
                    user.id
                )));
            }
            Some(true) => {}
        }
        let req = Request::post(self.directory(&[
            "users",
            &user.id,
            "twoStepVerification",
            "turnOff",
        ])?);
        if let Err(e) = self.send(&http, req, ctx, &mut records).await {
            let e = not_the_person(e);
            return Err(match (e, user.enforced_2sv) {
                (ProviderError::Permanent(m), Some(true)) => ProviderError::Permanent(format!(
                    "{m}; the user's org unit enforces 2-step verification \
                     (isEnforcedIn2Sv: true), so Google will not turn it off: suspend the user, \
                     or move them to an org unit without enforcement first"
                )),
                (e, _) => e,
            });
        }
        Ok(done(
            true,
            format!(
                "turned off 2-step verification of Google user {} (its second steps removed)",
                user.id
            ),
            records,
            account,
        ))
    }

    pub(super) async fn check_2sv(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        self.check_user_field(call, ctx, "isEnrolledIn2Sv", |u| {
            u.enrolled_2sv.map(|e| (!e, format!("isEnrolledIn2Sv={e}")))
        })
        .await
    }

    /// The user's direct groups (every page), as (id, email), filtered by `only`.
    pub(super) async fn groups(
        &self,
        http: &crate::providers::kit::http::HttpClient,
        user_id: &str,
        only: Option<&[String]>,
        ctx: &CallCtx,
        records: &mut Vec<crate::providers::RequestRecord>,
    ) -> Result<Vec<(String, String)>, ProviderError> {
        let first = crate::providers::kit::http::with_query(
            self.directory(&["groups"])?,
            &[("userKey", user_id)],
        );
        let (items, recs) = paging::get_all(http, first, Paging::PageToken, "/groups", ctx)
            .await
            .map_err(not_the_person)?;
        records.extend(recs);
        let mut out = Vec::new();
        for g in items {
            let Some(id) = g.get("id").and_then(Value::as_str) else {
                return Err(self.err("GET groups?userKey= answered a group without an id"));
            };
            let email = g
                .get("email")
                .and_then(Value::as_str)
                .unwrap_or(id)
                .to_string();
            if only.is_none_or(|o| o.iter().any(|w| w.eq_ignore_ascii_case(&email))) {
                out.push((id.to_string(), email));
            }
        }
        Ok(out)
    }

    pub(super) async fn remove_from_groups(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let p: GroupsParams = params::parse(call.action, call.params)?;
        let http = self.as_admin(Api::Admin, scopes::GROUPS)?;
        let mut records = Vec::new();
        let (user, account) = match self.live(&http, call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        let groups = self
            .groups(&http, &user.id, p.groups.as_deref(), ctx, &mut records)
            .await?;
        // Each membership's role (an owner or manager comes back as one), read before anything
        // is removed: the pre-state rollback puts back.
        let mut recorded = Vec::new();
        for (gid, email) in &groups {
            let req = Request::get(self.directory(&["groups", gid, "members", &user.id])?)
                .allow(StatusCode::NOT_FOUND);
            let resp = self
                .send(&http, req, ctx, &mut records)
                .await
                .map_err(not_the_person)?;
            if resp.status == StatusCode::NOT_FOUND {
                continue;
            }
            let m: Value = resp.json()?;
            let mut g = json!({
                "id": gid,
                "email": email,
                "role": m.get("role").and_then(Value::as_str).unwrap_or("MEMBER"),
            });
            if let Some(d) = m.get("delivery_settings").and_then(Value::as_str) {
                g["delivery_settings"] = json!(d);
            }
            recorded.push(g);
        }
        ctx.before(&json!({ "id": user.id, "email": user.email, "groups": recorded }));
        let mut removed = Vec::new();
        for (gid, email) in &groups {
            let req = Request::delete(self.directory(&["groups", gid, "members", &user.id])?)
                .allow(StatusCode::NOT_FOUND);
            let resp = self
                .send(&http, req, ctx, &mut records)
                .await
                .map_err(|e| partly(e, &removed))?;
            // 404 "Resource Not Found: memberKey": already gone.
            if resp.status != StatusCode::NOT_FOUND {
                removed.push(email.clone());
            }
        }
        Ok(if removed.is_empty() {
            done(
                false,
                format!(
                    "Google user {} is a member of no group (of those listed)",
                    user.id
                ),
                records,
                account,
            )
        } else {
            done(
                true,
                format!(
                    "removed Google user {} from {} group(s): {}",
                    user.id,
                    removed.len(),
                    removed.join(", ")
                ),
                records,
                account,
            )
        })
    }

    pub(super) async fn check_groups(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let p: GroupsParams = params::parse(call.action, call.params)?;
        let http = self.as_admin(Api::Admin, scopes::GROUPS)?;
        let user = match self.read(&http, call, ctx).await? {
            Ok(u) => u,
            Err(gone) => return Ok(gone),
        };
        let groups = self
            .groups(&http, &user.id, p.groups.as_deref(), ctx, &mut Vec::new())
            .await?;
        let names: Vec<&str> = groups.iter().map(|(_, e)| e.as_str()).collect();
        Ok(CheckOutcome {
            revoked: groups.is_empty(),
            observed: if groups.is_empty() {
                "member of no group (of those listed)".into()
            } else {
                format!("still member of: {}", names.join(", "))
            },
            account: Some(user.account()),
        })
    }

    pub(super) async fn move_to_ou(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let p: OuParams = params::parse(call.action, call.params)?;
        let http = self.as_admin(Api::Admin, scopes::USER)?;
        let mut records = Vec::new();
        let (user, account) = match self.live(&http, call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        ctx.before(&json!({ "id": user.id, "orgUnitPath": user.org_unit }));
        let before = user.org_unit.clone().unwrap_or_default();
        if before == p.org_unit_path {
            return Ok(done(
                false,
                format!("Google user {} already in {before}", user.id),
                records,
                account,
            ));
        }
        let req = Request::patch(self.directory(&["users", &user.id])?).json(
            &json!({ "orgUnitPath": p.org_unit_path }),
            "application/json",
        );
        self.send(&http, req, ctx, &mut records).await?;
        Ok(done(
            true,
            format!(
                "moved Google user {} to org unit {} (was {before})",
                user.id, p.org_unit_path
            ),
            records,
            account,
        ))
    }

    pub(super) async fn check_ou(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let p: OuParams = params::parse(call.action, call.params)?;
        self.check_user_field(call, ctx, "orgUnitPath", |u| {
            u.org_unit
                .as_ref()
                .map(|ou| (*ou == p.org_unit_path, format!("orgUnitPath={ou}")))
        })
        .await
    }

    pub(super) async fn delete_user(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let http = self.as_admin(Api::Admin, scopes::USER)?;
        let mut records = Vec::new();
        let (user, account) = match self.live(&http, call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        ctx.before(&json!({
            "id": user.id,
            "primaryEmail": user.email,
            "orgUnitPath": user.org_unit,
            "exists": true,
        }));
        let req =
            Request::delete(self.directory(&["users", &user.id])?).allow(StatusCode::NOT_FOUND);
        let resp = self.send(&http, req, ctx, &mut records).await?;
        let changed = resp.status != StatusCode::NOT_FOUND;
        Ok(done(
            changed,
            if changed {
                format!("deleted Google user {} ({})", user.id, user.email)
            } else {
                format!("Google user {} already deleted (404)", user.id)
            },
            records,
            account,
        ))
    }

    pub(super) async fn check_deleted(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        // A 404 by id is the read's answer (revoked); a user still read is not deleted.
        self.check_user_field(call, ctx, "id", |u| {
            Some((
                false,
                format!(
                    "Google user {} still exists (suspended={})",
                    u.id,
                    u.suspended
                        .map_or_else(|| "unknown".to_string(), |s| s.to_string())
                ),
            ))
        })
        .await
    }
}
