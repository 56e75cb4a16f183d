//! `offboard rollback` for the `entra` kind: the actions declared `Restore` put back the
//! pre-state their apply recorded with [`CallCtx::before`], acting on the recorded object id.
//!
//! | action | pre-state (`before`) | restore |
//! | --- | --- | --- |
//! | `disable_sign_in` | `{id, accountEnabled}` | `PATCH /users/{id}` `{"accountEnabled": true}` |
//! | `clear_immutable_id` | `{id, onPremisesImmutableId}` | `PATCH /users/{id}` with the old anchor |
//! | `remove_from_groups` | `{id, groups: [{id, name, removable, skipped?}]}` | `POST /groups/{gid}/members/$ref` per removable group |
//! | `remove_licenses` | `{id, direct: [{skuId, disabledPlans}], inherited: [{skuId, group}]}` | `POST /users/{id}/assignLicense` with the direct SKUs |
//! | `set_auto_reply` | `{id, automaticRepliesSetting: {status, externalAudience, …}}` | `PATCH /users/{id}/mailboxSettings` with the old setting |
//! | `remove_inbox_rules`, `remove_forwarding_rules` | `{id, rules: [{displayName, sequence, isEnabled, conditions, actions, exceptions, formerId}]}` | `POST …/inbox/messageRules` per rule not there (new ids) |
//! | `grant_onedrive_access` | `{id, driveId, recipient: {id, addresses}, permissionIds}` | `DELETE /drives/{drive}/root/permissions/{id}` for each grant to the recipient not held before |
//! | `delete_user` | `{id, userPrincipalName, exists}` | `POST /directory/deletedItems/{id}/restore` (within 30 days) |
//!
//! For the other actions a user deleted since (404 by id) is an error: the `delete_user`
//! step's restore (which runs first: rollback goes in reverse order) brings it back.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::EntraProvider;
use super::directory::{ANCHOR, ENABLED};
use super::graph::{Resolved, after_partial, text};
use super::licenses::{FIELDS as LICENCE_FIELDS, disabled_plans, licences};
use super::mail::{REPLY_FIELDS, plain, reply_fields, rule_body, same_rule};
use crate::providers::kit::http::Request;
use crate::providers::{
    Account, ApplyOutcome, CallCtx, ProviderError, RequestLine, RequestRecord, RestoreCheck,
    StepCall,
};

/// What rollback says for the actions that cannot be undone or whose undo is not offboard's.
pub(super) const NO_UNDO_SESSIONS: &str = "revoked sessions and refresh tokens cannot be revived: \
     the person signs in again once sign-in is back";
pub(super) const NO_UNDO_PASSWORD: &str =
    "the old password cannot be restored (offboard never knew it): set a new one and hand it over";
pub(super) const NO_UNDO_METHODS: &str = "deleted authentication methods cannot be undeleted: \
     the person registers MFA again (issue a Temporary Access Pass to let them)";
pub(super) const NO_UNDO_DEVICES: &str =
    "a retired or wiped device stays so: it is enrolled again by hand";

impl EntraProvider {
    /// The user of the step, read by the recorded id, for a restore (a deleted one is an
    /// error: it must come back from deleted items first).
    async fn restore_target(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        fields: &[&str],
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Result<(Value, Account), Account>, ProviderError> {
        let Some(known) = call.account else {
            return Err(self.err(format!(
                "step `{}`: rollback needs the account the apply identified; none recorded",
                call.step_id
            )));
        };
        if let Some(id) = text(before, "id")
            && !id.eq_ignore_ascii_case(&known.id)
        {
            return Err(self.err(format!(
                "step `{}`: the recorded pre-state is of user {id}, not of {}; refusing to \
                 restore it onto another account",
                call.step_id, known.id
            )));
        }
        Ok(match self.resolve(call, fields, ctx, records).await? {
            Resolved::Live(user, account) => Ok((user, account)),
            Resolved::Gone(account) => Err(account),
        })
    }

    fn deleted_error(&self, account: &Account) -> ProviderError {
        self.err(format!(
            "user {} no longer exists (404 by id): restore it from deleted items (within 30 \
             days of the delete) before rolling back this step",
            account.id
        ))
    }

    fn deleted_check(account: Account) -> RestoreCheck {
        RestoreCheck {
            after: json!({ "id": account.id, "exists": false }),
            restored: false,
            observed: format!(
                "user {} no longer exists (404 by id): nothing of it can come back until it is \
                 restored from deleted items",
                account.id
            ),
            account: Some(account),
        }
    }

    pub(super) async fn restore_call(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "disable_sign_in" => self.restore_field(call, before, ctx, ENABLED).await,
            "clear_immutable_id" => self.restore_field(call, before, ctx, ANCHOR).await,
            "remove_from_groups" => self.restore_groups(call, before, ctx).await,
            "remove_licenses" => self.restore_licences(call, before, ctx).await,
            "set_auto_reply" => self.restore_auto_reply(call, before, ctx).await,
            "delete_user" => self.undelete(call, before, ctx).await,
            "grant_onedrive_access" => self.revoke_onedrive_grant(call, before, ctx).await,
            "remove_inbox_rules" | "remove_forwarding_rules" => {
                self.recreate_rules(call, before, ctx).await
            }
            other => Err(self.err(format!(
                "action `{other}` cannot be undone by offboard (see the rollback plan)"
            ))),
        }
    }

    pub(super) async fn check_restored_call(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        match call.action {
            "disable_sign_in" => self.check_field(call, before, ctx, ENABLED).await,
            "clear_immutable_id" => self.check_field(call, before, ctx, ANCHOR).await,
            "remove_from_groups" => self.check_groups_restored(call, before, ctx).await,
            "remove_licenses" => self.check_licences_restored(call, before, ctx).await,
            "set_auto_reply" => self.check_auto_reply_restored(call, before, ctx).await,
            "delete_user" => self.check_undeleted(call, before, ctx).await,
            "grant_onedrive_access" => self.check_onedrive_revoked(call, before, ctx).await,
            "remove_inbox_rules" | "remove_forwarding_rules" => {
                self.check_rules_restored(call, before, ctx).await
            }
            other => Err(self.err(format!(
                "action `{other}` cannot be undone by offboard (see the rollback plan)"
            ))),
        }
    }

    pub(super) fn describe_restore_call(
        &self,
        call: &StepCall<'_>,
        before: &Value,
    ) -> Vec<RequestLine> {
        let Some(account) = call.account else {
            return Vec::new();
        };
        let line = |method: &str, segments: &[&str]| {
            self.url(segments).ok().map(|u| RequestLine {
                method: method.into(),
                url: u.to_string(),
            })
        };
        let user = line("GET", &["users", &account.id]);
        let rest: Vec<Option<RequestLine>> =
            match call.action {
                "disable_sign_in" | "clear_immutable_id" => {
                    vec![line("PATCH", &["users", &account.id])]
                }
                "remove_from_groups" => {
                    let mut v = vec![line("GET", &["users", &account.id, "memberOf"])];
                    for g in removable_groups(before) {
                        v.push(self.ref_url(&["groups", &g.0, "members"]).ok().map(|u| {
                            RequestLine {
                                method: "POST".into(),
                                url: u.to_string(),
                            }
                        }));
                    }
                    v
                }
                "remove_licenses" => {
                    vec![line("POST", &["users", &account.id, "assignLicense"])]
                }
                "remove_inbox_rules" | "remove_forwarding_rules" => {
                    let rules = ["users", &account.id, "mailFolders", "inbox", "messageRules"];
                    vec![line("GET", &rules), line("POST", &rules)]
                }
                "grant_onedrive_access" => {
                    let drive = text(before, "driveId").unwrap_or_default();
                    let perms = line("GET", &["drives", drive, "root", "permissions"]);
                    let delete = perms.as_ref().map(|l| RequestLine {
                        method: "DELETE".into(),
                        url: format!("{}/{{permission_id}}", l.url),
                    });
                    vec![line("GET", &["users", &account.id, "drive"]), perms, delete]
                }
                "delete_user" => vec![line(
                    "POST",
                    &["directory", "deletedItems", &account.id, "restore"],
                )],
                "set_auto_reply" => vec![
                    line("GET", &["users", &account.id, "mailboxSettings"]),
                    line("PATCH", &["users", &account.id, "mailboxSettings"]),
                ],
                _ => return Vec::new(),
            };
        std::iter::once(user).chain(rest).flatten().collect()
    }

    // -----------------------------------------------------------------------------------------
    // Inbox rules, made again

    async fn recreate_rules(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let account = match self
            .restore_target(call, before, &[], ctx, &mut records)
            .await?
        {
            Ok((_, a)) => a,
            Err(gone) => return Err(self.deleted_error(&gone)),
        };
        let live = self.rules(&account, false, ctx, &mut records).await?;
        let url = self.url(&["users", &account.id, "mailFolders", "inbox", "messageRules"])?;
        let mut made: Vec<String> = Vec::new();
        for want in recorded_rules(before) {
            if live.iter().any(|r| same_rule(r.raw(), &want)) {
                continue;
            }
            let name = text(&want, "displayName")
                .unwrap_or("(unnamed)")
                .to_string();
            self.send(
                Request::post(url.clone()).json(&want, "application/json"),
                ctx,
                &mut records,
            )
            .await
            .map_err(|e| after_partial("made again", &made, e))?;
            made.push(format!("\"{name}\""));
        }
        Ok(ApplyOutcome {
            changed: !made.is_empty(),
            summary: if made.is_empty() {
                format!("{account} has every Inbox rule offboard deleted")
            } else {
                format!(
                    "made {} Inbox rule(s) of {account} again (with new ids): {}",
                    made.len(),
                    made.join(", ")
                )
            },
            requests: records,
            account: Some(account),
        })
    }

    async fn check_rules_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let mut records = Vec::new();
        let account = match self
            .restore_target(call, before, &[], ctx, &mut records)
            .await?
        {
            Ok((_, a)) => a,
            Err(gone) => return Ok(Self::deleted_check(gone)),
        };
        let live = self.rules(&account, false, ctx, &mut records).await?;
        let missing: Vec<String> = recorded_rules(before)
            .iter()
            .filter(|want| !live.iter().any(|r| same_rule(r.raw(), want)))
            .map(|want| format!("\"{}\"", text(want, "displayName").unwrap_or("(unnamed)")))
            .collect();
        Ok(RestoreCheck {
            after: json!({
                "id": account.id,
                "rules": live.iter().map(|r| rule_body(r.raw())).collect::<Vec<_>>(),
            }),
            restored: missing.is_empty(),
            observed: if missing.is_empty() {
                "every Inbox rule offboard deleted is there again".into()
            } else {
                format!("Inbox rule(s) not there again: {}", missing.join(", "))
            },
            account: Some(account),
        })
    }

    // -----------------------------------------------------------------------------------------
    // A deleted user, from deleted items

    async fn undelete(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let gone = match self
            .restore_target(call, before, &[], ctx, &mut records)
            .await?
        {
            Ok((_, account)) => {
                return Ok(ApplyOutcome {
                    changed: false,
                    summary: format!("{account} exists (not deleted): nothing to restore"),
                    requests: records,
                    account: Some(account),
                });
            }
            Err(gone) => gone,
        };
        let url = self.url(&["directory", "deletedItems", &gone.id, "restore"])?;
        let resp = self
            .send(
                Request::post(url).allow(StatusCode::NOT_FOUND),
                ctx,
                &mut records,
            )
            .await?;
        if resp.status == StatusCode::NOT_FOUND {
            return Err(self.err(format!(
                "user {} is not in deleted items any more (deleted more than 30 days ago, or \
                 deleted for good): it cannot come back",
                gone.id
            )));
        }
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "restored {gone} from deleted items (Entra brings back its licences and group \
                 memberships with it)"
            ),
            requests: records,
            account: Some(gone),
        })
    }

    async fn check_undeleted(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let mut records = Vec::new();
        Ok(
            match self
                .restore_target(call, before, &[], ctx, &mut records)
                .await?
            {
                Ok((user, account)) => RestoreCheck {
                    after: json!({
                        "id": account.id,
                        "userPrincipalName": text(&user, "userPrincipalName"),
                        "exists": true,
                    }),
                    restored: true,
                    observed: format!("user {} exists again (read by id)", account.id),
                    account: Some(account),
                },
                Err(gone) => Self::deleted_check(gone),
            },
        )
    }

    // -----------------------------------------------------------------------------------------
    // One property of the user: accountEnabled, onPremisesImmutableId

    /// The value `field` must get back: `None` when the pre-state shows nothing to put back
    /// (sign-in already blocked, no anchor).
    fn wanted_back(field: &str, before: &Value) -> Option<Value> {
        let v = before.get(field)?;
        match field {
            ENABLED => (v == &Value::Bool(true)).then(|| v.clone()),
            _ => v.as_str().filter(|s| !s.is_empty()).map(|_| v.clone()),
        }
    }

    async fn restore_field(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
        field: &'static str,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self
            .restore_target(call, before, &[field], ctx, &mut records)
            .await?
        {
            Ok(live) => live,
            Err(gone) => return Err(self.deleted_error(&gone)),
        };
        let live = user.get(field).cloned().unwrap_or(Value::Null);
        let Some(want) = Self::wanted_back(field, before) else {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!(
                    "nothing to put back on {account}: before offboard {field} was {}",
                    before.get(field).unwrap_or(&Value::Null)
                ),
                requests: records,
                account: Some(account),
            });
        };
        if live == want {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("{field} of {account} is already {want}"),
                requests: records,
                account: Some(account),
            });
        }
        if field == ANCHOR && !live.is_null() {
            return Err(self.err(format!(
                "{account} now holds another onPremisesImmutableId ({live}) than before \
                 offboard ({want}): not overwritten; decide which AD account it belongs to"
            )));
        }
        if !self
            .patch_user(&account, &json!({ field: want }), ctx, &mut records)
            .await?
        {
            return Err(self.deleted_error(&account));
        }
        Ok(ApplyOutcome {
            changed: true,
            summary: format!("put back {field} of {account} ({live} → {want})"),
            requests: records,
            account: Some(account),
        })
    }

    async fn check_field(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
        field: &'static str,
    ) -> Result<RestoreCheck, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self
            .restore_target(call, before, &[field], ctx, &mut records)
            .await?
        {
            Ok(live) => live,
            Err(gone) => return Ok(Self::deleted_check(gone)),
        };
        let live = user.get(field).cloned().unwrap_or(Value::Null);
        let want = Self::wanted_back(field, before);
        let restored = want.as_ref().is_none_or(|w| *w == live);
        let observed = match &want {
            None => format!("{field}={live} (nothing to put back)"),
            Some(w) if restored => format!("{field}={live}, as before offboard"),
            Some(w) => format!("{field}={live}, not {w} as before offboard"),
        };
        Ok(RestoreCheck {
            after: json!({ "id": account.id, field: live }),
            restored,
            observed,
            account: Some(account),
        })
    }

    // -----------------------------------------------------------------------------------------
    // Groups

    async fn restore_groups(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let account = match self
            .restore_target(call, before, &[], ctx, &mut records)
            .await?
        {
            Ok((_, a)) => a,
            Err(gone) => return Err(self.deleted_error(&gone)),
        };
        let now = self.memberships(&account, None, ctx, &mut records).await?;
        let mut added = Vec::new();
        let mut lost = Vec::new();
        for (gid, name) in removable_groups(before) {
            if now.groups.iter().any(|g| g.id.eq_ignore_ascii_case(&gid)) {
                continue;
            }
            let url = self.ref_url(&["groups", &gid, "members"])?;
            let member = self.url(&["directoryObjects", &account.id])?.to_string();
            let resp = self
                .send(
                    Request::post(url)
                        .json(&json!({ "@odata.id": member }), "application/json")
                        .allow(StatusCode::NOT_FOUND),
                    ctx,
                    &mut records,
                )
                .await
                .map_err(|e| after_partial("re-added to", &added, e))?;
            if resp.status == StatusCode::NOT_FOUND {
                lost.push(format!("{name} ({gid})"));
            } else {
                added.push(name);
            }
        }
        if !lost.is_empty() {
            let done = if added.is_empty() {
                String::new()
            } else {
                format!("re-added {account} to {}; ", added.join(", "))
            };
            return Err(self.err(format!(
                "{done}group(s) {} no longer exist (404): those memberships cannot come back",
                lost.join(", ")
            )));
        }
        Ok(ApplyOutcome {
            changed: !added.is_empty(),
            summary: if added.is_empty() {
                format!("{account} is already in every group offboard removed it from")
            } else {
                format!(
                    "re-added {account} to {} group(s): {}",
                    added.len(),
                    added.join(", ")
                )
            },
            requests: records,
            account: Some(account),
        })
    }

    async fn check_groups_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let mut records = Vec::new();
        let account = match self
            .restore_target(call, before, &[], ctx, &mut records)
            .await?
        {
            Ok((_, a)) => a,
            Err(gone) => return Ok(Self::deleted_check(gone)),
        };
        let now = self.memberships(&account, None, ctx, &mut records).await?;
        let missing: Vec<String> = removable_groups(before)
            .into_iter()
            .filter(|(gid, _)| !now.groups.iter().any(|g| g.id.eq_ignore_ascii_case(gid)))
            .map(|(gid, name)| format!("{name} ({gid})"))
            .collect();
        let groups: Vec<Value> = now
            .groups
            .iter()
            .map(|g| json!({ "id": g.id, "name": g.name }))
            .collect();
        Ok(RestoreCheck {
            after: json!({ "id": account.id, "groups": groups }),
            restored: missing.is_empty(),
            observed: if missing.is_empty() {
                "a member again of every group offboard removed it from".into()
            } else {
                format!(
                    "not a member of {} (re-add by hand, or the group no longer exists)",
                    missing.join(", ")
                )
            },
            account: Some(account),
        })
    }

    // -----------------------------------------------------------------------------------------
    // Licences

    async fn restore_licences(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self
            .restore_target(call, before, LICENCE_FIELDS, ctx, &mut records)
            .await?
        {
            Ok(live) => live,
            Err(gone) => return Err(self.deleted_error(&gone)),
        };
        let live = licences(&user);
        let add: Vec<Value> = recorded_direct(before)
            .into_iter()
            .filter(|(sku, _)| !live.direct.iter().any(|d| d.eq_ignore_ascii_case(sku)))
            .map(|(sku, plans)| json!({ "skuId": sku, "disabledPlans": plans }))
            .collect();
        if add.is_empty() {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!(
                    "{account} already holds every licence offboard removed (or it removed none)"
                ),
                requests: records,
                account: Some(account),
            });
        }
        let skus: Vec<&str> = add.iter().filter_map(|a| text(a, "skuId")).collect();
        let url = self.url(&["users", &account.id, "assignLicense"])?;
        let body = json!({ "addLicenses": add, "removeLicenses": [] });
        self.send(
            Request::post(url).json(&body, "application/json"),
            ctx,
            &mut records,
        )
        .await
        .map_err(|e| match e {
            // Graph's own words say why (no licence left in the subscription, no usage
            // location...); the SKUs say which.
            ProviderError::Permanent(m) => self.err(format!(
                "re-assigning licence(s) {} to {account}: {m}",
                skus.join(", ")
            )),
            other => other,
        })?;
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "re-assigned {} licence(s) to {account} with their disabled plans: {}",
                skus.len(),
                skus.join(", ")
            ),
            requests: records,
            account: Some(account),
        })
    }

    async fn check_licences_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self
            .restore_target(call, before, LICENCE_FIELDS, ctx, &mut records)
            .await?
        {
            Ok(live) => live,
            Err(gone) => return Ok(Self::deleted_check(gone)),
        };
        let live = licences(&user);
        let plans = disabled_plans(&user);
        let mut missing = Vec::new();
        let mut other_plans = Vec::new();
        for (sku, want) in recorded_direct(before) {
            if !live.direct.iter().any(|d| d.eq_ignore_ascii_case(&sku)) {
                missing.push(sku);
                continue;
            }
            let now = plans
                .get(&sku.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default();
            if now != want {
                other_plans.push(format!("{sku} (disabled plans now {now:?}, were {want:?})"));
            }
        }
        let direct: Vec<Value> = live
            .direct
            .iter()
            .map(|sku| {
                json!({
                    "skuId": sku,
                    "disabledPlans": plans.get(&sku.to_ascii_lowercase()).cloned().unwrap_or_default(),
                })
            })
            .collect();
        let mut observed = Vec::new();
        if !missing.is_empty() {
            observed.push(format!("not assigned again: {}", missing.join(", ")));
        }
        if !other_plans.is_empty() {
            observed.push(format!(
                "assigned with other plans: {}",
                other_plans.join(", ")
            ));
        }
        Ok(RestoreCheck {
            after: json!({ "id": account.id, "direct": direct }),
            restored: observed.is_empty(),
            observed: if observed.is_empty() {
                "every licence offboard removed is assigned again, with its disabled plans".into()
            } else {
                observed.join("; ")
            },
            account: Some(account),
        })
    }

    // -----------------------------------------------------------------------------------------
    // Automatic replies

    async fn restore_auto_reply(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let want = recorded_reply(before).ok_or_else(|| {
            self.err("the recorded pre-state holds no automaticRepliesSetting to put back")
        })?;
        let mut records = Vec::new();
        let account = match self
            .restore_target(call, before, &[], ctx, &mut records)
            .await?
        {
            Ok((_, a)) => a,
            Err(gone) => return Err(self.deleted_error(&gone)),
        };
        let now = self.auto_reply(&account, ctx, &mut records).await?;
        if same_reply(&now, &want) {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!(
                    "automatic replies of {account} are already as before offboard (status={})",
                    text(&want, "status").unwrap_or("not reported")
                ),
                requests: records,
                account: Some(account),
            });
        }
        let url = self.url(&["users", &account.id, "mailboxSettings"])?;
        self.send(
            Request::patch(url).json(
                &json!({ "automaticRepliesSetting": want }),
                "application/json",
            ),
            ctx,
            &mut records,
        )
        .await?;
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "put back the automatic replies of {account} as before offboard (status={}, \
                 externalAudience={})",
                text(&want, "status").unwrap_or("not reported"),
                text(&want, "externalAudience").unwrap_or("not reported")
            ),
            requests: records,
            account: Some(account),
        })
    }

    async fn check_auto_reply_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let want = recorded_reply(before).ok_or_else(|| {
            self.err("the recorded pre-state holds no automaticRepliesSetting to compare with")
        })?;
        let mut records = Vec::new();
        let account = match self
            .restore_target(call, before, &[], ctx, &mut records)
            .await?
        {
            Ok((_, a)) => a,
            Err(gone) => return Ok(Self::deleted_check(gone)),
        };
        let now = self.auto_reply(&account, ctx, &mut records).await?;
        let restored = same_reply(&now, &want);
        let status = text(&now, "status").unwrap_or("not reported");
        Ok(RestoreCheck {
            after: json!({ "id": account.id, "automaticRepliesSetting": reply_fields(&now) }),
            restored,
            observed: if restored {
                format!("automatic replies as before offboard (status={status})")
            } else {
                format!(
                    "automatic replies differ from before offboard (status={status}, was {})",
                    text(&want, "status").unwrap_or("not reported")
                )
            },
            account: Some(account),
        })
    }
}

/// The removable groups of a `remove_from_groups` pre-state: (id, name).
fn removable_groups(before: &Value) -> Vec<(String, String)> {
    before
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|g| g.get("removable") == Some(&Value::Bool(true)))
        .filter_map(|g| {
            let id = text(g, "id")?;
            Some((id.to_string(), text(g, "name").unwrap_or(id).to_string()))
        })
        .collect()
}

/// The rules of a `remove_*_rules` pre-state, as they are written back.
fn recorded_rules(before: &Value) -> Vec<Value> {
    before
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(rule_body)
        .collect()
}

/// The direct licences of a `remove_licenses` pre-state: skuId → disabled plans (sorted).
fn recorded_direct(before: &Value) -> BTreeMap<String, Vec<String>> {
    before
        .get("direct")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let sku = text(l, "skuId")?;
            let mut plans: Vec<String> = l
                .get("disabledPlans")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect();
            plans.sort();
            Some((sku.to_string(), plans))
        })
        .collect()
}

/// The recorded automatic-replies setting, cut to what offboard writes back.
fn recorded_reply(before: &Value) -> Option<Value> {
    let v = before.get("automaticRepliesSetting")?;
    v.is_object().then(|| reply_fields(v))
}

/// The live setting is the recorded one: the same status and audience, the same text (as
/// text: Exchange hands it back as HTML), and the same schedule when it was scheduled.
fn same_reply(now: &Value, want: &Value) -> bool {
    let field = |v: &Value, k: &str| text(v, k).unwrap_or("").to_string();
    let scheduled = field(want, "status") == "scheduled";
    REPLY_FIELDS.iter().all(|k| match *k {
        "internalReplyMessage" | "externalReplyMessage" => {
            plain(&field(now, k)) == plain(&field(want, k))
        }
        "scheduledStartDateTime" | "scheduledEndDateTime" => {
            !scheduled || now.get(*k) == want.get(*k)
        }
        _ => field(now, k) == field(want, k),
    })
}
