//! `offboard rollback` for the `google` kind: the actions declared `Restore` put back the
//! pre-state their apply recorded with [`CallCtx::before`], on the recorded user id.
//!
//! | action | pre-state (`before`) | restore |
//! | --- | --- | --- |
//! | `suspend_user` | `{id, suspended}` | `PATCH users/{id}` `{"suspended": false}` |
//! | `move_to_ou` | `{id, orgUnitPath}` | `PATCH users/{id}` with the old `orgUnitPath` |
//! | `remove_from_groups` | `{id, email, groups: [{id, email, role, delivery_settings?}]}` | `POST groups/{id}/members` per group, with the old role |
//! | `remove_licenses` | `{id, email, assignments: [{productId, skuId, skuName}]}` | `POST …/product/{p}/sku/{s}/user` per assignment |
//! | `set_auto_reply` | `{id, vacation: {VacationSettings}}` | as the user, `PUT settings/vacation` with the old settings |
//! | `set_forwarding` | `{id, autoForwarding: {enabled, emailAddress, disposition}, forwardingAddress: {address, existed}}` | as the user, `PUT settings/autoForwarding` with the old one, then `DELETE settings/forwardingAddresses/{address}` when offboard added it |
//!
//! Rollback runs in reverse order: a user suspended after its Gmail settings were changed is
//! unsuspended first, so Gmail can act as the user again.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::gmail::{forwarding_fields, vacation_fields};
use super::{Api, GoogleProvider, Resolved, User, done, scopes};
use crate::providers::kit::http::{HttpClient, Request};
use crate::providers::{
    Account, ApplyOutcome, CallCtx, ProviderError, RequestLine, RequestRecord, RestoreCheck,
    StepCall,
};

pub(super) const NO_UNDO_SIGN_OUT: &str =
    "ended sessions cannot be revived: the person signs in again";
pub(super) const NO_UNDO_TOKENS: &str = "revoked OAuth tokens cannot be revived: each app asks \
     the person to grant access again";
pub(super) const NO_UNDO_ASPS: &str = "deleted app passwords cannot be restored (Google shows \
     one only when it is made): the person makes new ones";
pub(super) const NO_UNDO_CODES: &str = "invalidated backup codes cannot be restored: the person \
     generates new ones";
pub(super) const NO_UNDO_2SV: &str = "an admin cannot turn 2-step verification back on for a \
     user: the person enrolls again (or the org unit's enforcement makes them)";
pub(super) const NO_UNDO_TRANSFER: &str = "files stay with the new owner; move them back by hand";

/// The Gmail scopes a restore of this action needs.
fn gmail_scopes(action: &str) -> &'static [&'static str] {
    match action {
        "set_forwarding" => scopes::GMAIL_SHARING,
        _ => scopes::GMAIL_BASIC,
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

impl GoogleProvider {
    /// The recorded user, read by id: `Err(account)` when it is gone (deleted since).
    async fn restore_target(
        &self,
        http: &HttpClient,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Result<User, Account>, ProviderError> {
        let Some(known) = call.account else {
            return Err(self.err(format!(
                "step `{}`: rollback needs the account the apply identified; none recorded",
                call.step_id
            )));
        };
        if let Some(id) = text(before, "id")
            && id != known.id
        {
            return Err(self.err(format!(
                "step `{}`: the recorded pre-state is of Google user {id}, not of {}; refusing \
                 to restore it onto another account",
                call.step_id, known.id
            )));
        }
        Ok(match self.resolve(http, call, ctx, records).await? {
            Resolved::Live(u) => Ok(u),
            Resolved::Gone(a) => Err(a),
        })
    }

    fn deleted_error(&self, account: &Account) -> ProviderError {
        self.err(format!(
            "Google user {} no longer exists (404 by id): restore it in the Admin console \
             (within 20 days of the delete) before rolling back this step",
            account.id
        ))
    }

    fn deleted_check(account: Account) -> RestoreCheck {
        RestoreCheck {
            after: json!({ "id": account.id, "exists": false }),
            restored: false,
            observed: format!(
                "Google user {} no longer exists (404 by id): nothing of it can come back until \
                 it is restored",
                account.id
            ),
            account: Some(account),
        }
    }

    fn admin_scopes(action: &str) -> &'static [&'static str] {
        match action {
            "remove_from_groups" => scopes::GROUPS,
            "remove_licenses" => scopes::LICENSING,
            _ => scopes::USER,
        }
    }

    pub(super) async fn restore_call(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        if call.action == "delete_user" {
            return self.undelete(call, before, ctx).await;
        }
        let field = match call.action {
            "suspend_user" => "suspended",
            "move_to_ou" => "orgUnitPath",
            "remove_from_groups" | "remove_licenses" | "set_auto_reply" | "set_forwarding" => "",
            other => {
                return Err(self.err(format!(
                    "action `{other}` cannot be undone by offboard (see the rollback plan)"
                )));
            }
        };
        let admin = self.as_admin(Api::Admin, Self::admin_scopes(call.action))?;
        let mut records = Vec::new();
        let user = match self
            .restore_target(&admin, call, before, ctx, &mut records)
            .await?
        {
            Ok(u) => u,
            Err(gone) => return Err(self.deleted_error(&gone)),
        };
        match call.action {
            "remove_from_groups" => self.readd_groups(&admin, &user, before, ctx, records).await,
            "remove_licenses" => self.reassign(&user, before, ctx, records).await,
            "set_auto_reply" | "set_forwarding" => {
                self.restore_gmail(call.action, &user, before, ctx, records)
                    .await
            }
            _ => {
                self.restore_field(&admin, &user, field, before, ctx, records)
                    .await
            }
        }
    }

    pub(super) async fn check_restored_call(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        if call.action == "delete_user" {
            let admin = self.as_admin(Api::Admin, scopes::USER)?;
            let mut records = Vec::new();
            return Ok(
                match self
                    .restore_target(&admin, call, before, ctx, &mut records)
                    .await?
                {
                    Ok(u) => RestoreCheck {
                        after: json!({
                            "id": u.id,
                            "primaryEmail": u.email,
                            "orgUnitPath": u.org_unit,
                            "exists": true,
                        }),
                        restored: true,
                        observed: format!("Google user {} exists again (read by id)", u.id),
                        account: Some(u.account()),
                    },
                    Err(gone) => Self::deleted_check(gone),
                },
            );
        }
        if !matches!(
            call.action,
            "suspend_user"
                | "move_to_ou"
                | "remove_from_groups"
                | "remove_licenses"
                | "set_auto_reply"
                | "set_forwarding"
        ) {
            return Err(self.err(format!(
                "action `{}` cannot be undone by offboard (see the rollback plan)",
                call.action
            )));
        }
        let admin = self.as_admin(Api::Admin, Self::admin_scopes(call.action))?;
        let mut records = Vec::new();
        let user = match self
            .restore_target(&admin, call, before, ctx, &mut records)
            .await?
        {
            Ok(u) => u,
            Err(gone) => return Ok(Self::deleted_check(gone)),
        };
        let account = user.account();
        let (after, missing) = match call.action {
            "suspend_user" => {
                let want = before.get("suspended") == Some(&Value::Bool(false));
                let back = !want || user.suspended == Some(false);
                (
                    json!({ "id": user.id, "suspended": user.suspended }),
                    (!back).then(|| {
                        format!(
                            "suspended={:?}, not false as before offboard",
                            user.suspended
                        )
                    }),
                )
            }
            "move_to_ou" => {
                let want = text(before, "orgUnitPath");
                let back = want.is_none_or(|w| user.org_unit.as_deref() == Some(w));
                (
                    json!({ "id": user.id, "orgUnitPath": user.org_unit }),
                    (!back).then(|| {
                        format!(
                            "orgUnitPath={}, not {} as before offboard",
                            user.org_unit.as_deref().unwrap_or("not reported"),
                            want.unwrap_or("")
                        )
                    }),
                )
            }
            "remove_from_groups" => {
                let mut now = Vec::new();
                let mut missing = Vec::new();
                for g in recorded_groups(before) {
                    match self
                        .member(&admin, &g.id, &user.id, ctx, &mut records)
                        .await?
                    {
                        Some(role) if role == g.role => {
                            now.push(json!({ "id": g.id, "email": g.email, "role": role }));
                        }
                        Some(role) => {
                            missing.push(format!("{} as {role}, not {}", g.email, g.role));
                            now.push(json!({ "id": g.id, "email": g.email, "role": role }));
                        }
                        None => missing.push(format!("{} ({}): not a member", g.email, g.id)),
                    }
                }
                (
                    json!({ "id": user.id, "email": user.email, "groups": now }),
                    (!missing.is_empty()).then(|| missing.join("; ")),
                )
            }
            "remove_licenses" => {
                let http = self.as_admin(Api::Licensing, scopes::LICENSING)?;
                let mut now = Vec::new();
                let mut missing = Vec::new();
                for (product, sku, _) in recorded_assignments(before) {
                    if self
                        .assigned(&http, &product, &sku, &user.email, ctx, &mut records)
                        .await?
                    {
                        now.push(json!({ "productId": product, "skuId": sku }));
                    } else {
                        missing.push(format!("{product}/{sku}"));
                    }
                }
                (
                    json!({ "id": user.id, "email": user.email, "assignments": now }),
                    (!missing.is_empty())
                        .then(|| format!("not assigned again: {}", missing.join(", "))),
                )
            }
            _ => {
                let http = self.client(Api::Gmail, &user.email, gmail_scopes(call.action))?;
                let (key, url, fields): (&str, _, fn(&Value) -> Value) =
                    if call.action == "set_auto_reply" {
                        ("vacation", self.gmail(&["vacation"])?, vacation_fields)
                    } else {
                        (
                            "autoForwarding",
                            self.gmail(&["autoForwarding"])?,
                            forwarding_fields,
                        )
                    };
                let now = self
                    .get_json(&http, url, ctx, &mut records)
                    .await?
                    .ok_or_else(|| self.err(format!("GET settings/{key} answered 404")))?;
                let want = recorded_settings(before, key)
                    .ok_or_else(|| self.err(format!("the recorded pre-state holds no `{key}`")))?;
                let mut diff = settings_diff(&fields(&now), &want);
                let mut after = json!({ "id": user.id, key: fields(&now) });
                if call.action == "set_forwarding"
                    && let Some(addr) = added_address(before)
                {
                    let still = self
                        .get_json(
                            &http,
                            self.gmail(&["forwardingAddresses", addr])?,
                            ctx,
                            &mut records,
                        )
                        .await?
                        .is_some();
                    after["forwardingAddress"] = json!({ "address": addr, "present": still });
                    if still {
                        diff.push(format!(
                            "forwarding address {addr} offboard added is still there"
                        ));
                    }
                }
                (after, (!diff.is_empty()).then(|| diff.join("; ")))
            }
        };
        Ok(RestoreCheck {
            after,
            restored: missing.is_none(),
            observed: missing.unwrap_or_else(|| "as before offboard".into()),
            account: Some(account),
        })
    }

    pub(super) fn describe_restore_call(
        &self,
        call: &StepCall<'_>,
        before: &Value,
    ) -> Vec<RequestLine> {
        let Some(account) = call.account else {
            return Vec::new();
        };
        let line = |method: &str, url: Result<url::Url, ProviderError>| {
            url.ok().map(|u| RequestLine {
                method: method.into(),
                url: u.to_string(),
            })
        };
        let id = account.id.as_str();
        let email = text(before, "email").unwrap_or("{email}");
        let mut lines = vec![line("GET", self.directory(&["users", id]))];
        match call.action {
            "suspend_user" | "move_to_ou" => {
                lines.push(line("PATCH", self.directory(&["users", id])));
            }
            "delete_user" => {
                lines.push(line("POST", self.directory(&["users", id, "undelete"])));
            }
            "remove_from_groups" => {
                for g in recorded_groups(before) {
                    lines.push(line(
                        "GET",
                        self.directory(&["groups", &g.id, "members", id]),
                    ));
                    lines.push(line("POST", self.directory(&["groups", &g.id, "members"])));
                }
            }
            "remove_licenses" => {
                for (product, sku, _) in recorded_assignments(before) {
                    lines.push(line(
                        "GET",
                        self.licensing(&[&product, "sku", &sku, "user", email]),
                    ));
                    lines.push(line(
                        "POST",
                        self.licensing(&[&product, "sku", &sku, "user"]),
                    ));
                }
            }
            "set_auto_reply" => {
                lines.push(line("GET", self.gmail(&["vacation"])));
                lines.push(line("PUT", self.gmail(&["vacation"])));
            }
            "set_forwarding" => {
                lines.push(line("GET", self.gmail(&["autoForwarding"])));
                lines.push(line("PUT", self.gmail(&["autoForwarding"])));
                if let Some(addr) = added_address(before) {
                    lines.push(line("DELETE", self.gmail(&["forwardingAddresses", addr])));
                }
            }
            _ => return Vec::new(),
        }
        lines.into_iter().flatten().collect()
    }

    // -----------------------------------------------------------------------------------------

    /// `POST users/{id}/undelete` into the recorded org unit, within Google's 20 days.
    /// UNCONFIRMED: whether Google answers 404 or 400 for a user past the 20 days (404 is read
    /// as that, any other refusal is reported in Google's words), and whether the user comes
    /// back suspended (the suspend step's own restore, which runs after this one, decides).
    async fn undelete(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let admin = self.as_admin(Api::Admin, scopes::USER)?;
        let mut records = Vec::new();
        let gone = match self
            .restore_target(&admin, call, before, ctx, &mut records)
            .await?
        {
            Ok(u) => {
                return Ok(done(
                    false,
                    format!(
                        "Google user {} exists (not deleted): nothing to restore",
                        u.id
                    ),
                    records,
                    u.account(),
                ));
            }
            Err(gone) => gone,
        };
        let ou = text(before, "orgUnitPath").unwrap_or("/");
        let req = Request::post(self.directory(&["users", &gone.id, "undelete"])?)
            .json(&json!({ "orgUnitPath": ou }), "application/json")
            .allow(StatusCode::NOT_FOUND);
        let resp = self
            .send(&admin, req, ctx, &mut records)
            .await
            .map_err(super::not_the_person)?;
        if resp.status == StatusCode::NOT_FOUND {
            return Err(self.err(format!(
                "Google user {} can no longer be restored (deleted more than 20 days ago, or \
                 for good): it cannot come back",
                gone.id
            )));
        }
        Ok(done(
            true,
            format!("restored the deleted Google user {gone} into org unit {ou}"),
            records,
            gone,
        ))
    }

    async fn restore_field(
        &self,
        http: &HttpClient,
        user: &User,
        field: &'static str,
        before: &Value,
        ctx: &CallCtx,
        mut records: Vec<RequestRecord>,
    ) -> Result<ApplyOutcome, ProviderError> {
        let account = user.account();
        let (want, live) = match field {
            "suspended" => (
                (before.get(field) == Some(&Value::Bool(false))).then_some(json!(false)),
                json!(user.suspended),
            ),
            _ => (text(before, field).map(|s| json!(s)), json!(user.org_unit)),
        };
        let Some(want) = want else {
            return Ok(done(
                false,
                format!(
                    "nothing to put back on Google user {}: before offboard {field} was {}",
                    user.id,
                    before.get(field).unwrap_or(&Value::Null)
                ),
                records,
                account,
            ));
        };
        if live == want {
            return Ok(done(
                false,
                format!("{field} of Google user {} is already {want}", user.id),
                records,
                account,
            ));
        }
        let req = Request::patch(self.directory(&["users", &user.id])?)
            .json(&json!({ field: want }), "application/json");
        self.send(http, req, ctx, &mut records).await?;
        Ok(done(
            true,
            format!(
                "put back {field} of Google user {} ({live} → {want})",
                user.id
            ),
            records,
            account,
        ))
    }

    /// The user's role in a group (`GET groups/{g}/members/{id}`), `None` when not a member.
    async fn member(
        &self,
        http: &HttpClient,
        group: &str,
        user_id: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<String>, ProviderError> {
        let req = Request::get(self.directory(&["groups", group, "members", user_id])?)
            .allow(StatusCode::NOT_FOUND);
        let resp = self
            .send(http, req, ctx, records)
            .await
            .map_err(super::not_the_person)?;
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let m: Value = resp.json()?;
        Ok(Some(text(&m, "role").unwrap_or("MEMBER").to_string()))
    }

    async fn readd_groups(
        &self,
        http: &HttpClient,
        user: &User,
        before: &Value,
        ctx: &CallCtx,
        mut records: Vec<RequestRecord>,
    ) -> Result<ApplyOutcome, ProviderError> {
        if user.email.is_empty() {
            return Err(self.err(format!(
                "GET users/{} answered without `primaryEmail`, which a group member needs",
                user.id
            )));
        }
        let mut added: Vec<String> = Vec::new();
        let mut lost = Vec::new();
        for g in recorded_groups(before) {
            if self
                .member(http, &g.id, &user.id, ctx, &mut records)
                .await?
                .is_some()
            {
                continue;
            }
            let mut body = json!({ "email": user.email, "role": g.role, "type": "USER" });
            if let Some(d) = &g.delivery {
                body["delivery_settings"] = json!(d);
            }
            let req = Request::post(self.directory(&["groups", &g.id, "members"])?)
                .json(&body, "application/json")
                .allow(StatusCode::NOT_FOUND);
            let resp = self
                .send(http, req, ctx, &mut records)
                .await
                .map_err(|e| after_readding(e, &added))?;
            if resp.status == StatusCode::NOT_FOUND {
                lost.push(format!("{} ({})", g.email, g.id));
            } else {
                added.push(format!("{} as {}", g.email, g.role));
            }
        }
        if !lost.is_empty() {
            let done_part = if added.is_empty() {
                String::new()
            } else {
                format!("re-added Google user {} to {}; ", user.id, added.join(", "))
            };
            return Err(self.err(format!(
                "{done_part}group(s) {} no longer exist (404): those memberships cannot come back",
                lost.join(", ")
            )));
        }
        Ok(done(
            !added.is_empty(),
            if added.is_empty() {
                format!(
                    "Google user {} is already in every group offboard removed it from",
                    user.id
                )
            } else {
                format!(
                    "re-added Google user {} to {} group(s): {}",
                    user.id,
                    added.len(),
                    added.join(", ")
                )
            },
            records,
            user.account(),
        ))
    }

    /// Whether (product, sku) is assigned to `email` (`GET …/sku/{s}/user/{email}`).
    async fn assigned(
        &self,
        http: &HttpClient,
        product: &str,
        sku: &str,
        email: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<bool, ProviderError> {
        let url = self.licensing(&[product, "sku", sku, "user", email])?;
        let resp = self
            .send(
                http,
                Request::get(url).allow(StatusCode::NOT_FOUND),
                ctx,
                records,
            )
            .await
            .map_err(super::not_the_person)?;
        Ok(resp.status != StatusCode::NOT_FOUND)
    }

    async fn reassign(
        &self,
        user: &User,
        before: &Value,
        ctx: &CallCtx,
        mut records: Vec<RequestRecord>,
    ) -> Result<ApplyOutcome, ProviderError> {
        if user.email.is_empty() {
            return Err(self.err(format!(
                "GET users/{} answered without `primaryEmail`, which the Licensing API needs",
                user.id
            )));
        }
        let http = self.as_admin(Api::Licensing, scopes::LICENSING)?;
        let mut added: Vec<String> = Vec::new();
        for (product, sku, name) in recorded_assignments(before) {
            if self
                .assigned(&http, &product, &sku, &user.email, ctx, &mut records)
                .await?
            {
                continue;
            }
            let label = match &name {
                Some(n) => format!("{product}/{sku} ({n})"),
                None => format!("{product}/{sku}"),
            };
            let req = Request::post(self.licensing(&[&product, "sku", &sku, "user"])?)
                .json(&json!({ "userId": user.email }), "application/json");
            self.send(&http, req, ctx, &mut records)
                .await
                .map_err(|e| {
                    // Google's words say why (no licence left, a SKU no longer sold); the
                    // assignment says which.
                    let e = after_readding(e, &added);
                    match e {
                        ProviderError::Permanent(m) => {
                            self.err(format!("re-assigning {label} to {}: {m}", user.email))
                        }
                        other => other,
                    }
                })?;
            added.push(label);
        }
        Ok(done(
            !added.is_empty(),
            if added.is_empty() {
                format!(
                    "Google user {} already holds every licence offboard removed",
                    user.email
                )
            } else {
                format!(
                    "re-assigned {} licence(s) to Google user {}: {}",
                    added.len(),
                    user.email,
                    added.join(", ")
                )
            },
            records,
            user.account(),
        ))
    }

    async fn restore_gmail(
        &self,
        action: &str,
        user: &User,
        before: &Value,
        ctx: &CallCtx,
        mut records: Vec<RequestRecord>,
    ) -> Result<ApplyOutcome, ProviderError> {
        if user.email.is_empty() {
            return Err(self.err(format!(
                "GET users/{} answered without `primaryEmail`: cannot act as the user",
                user.id
            )));
        }
        let http = self.client(Api::Gmail, &user.email, gmail_scopes(action))?;
        let (key, url, fields): (&str, _, fn(&Value) -> Value) = if action == "set_auto_reply" {
            ("vacation", self.gmail(&["vacation"])?, vacation_fields)
        } else {
            (
                "autoForwarding",
                self.gmail(&["autoForwarding"])?,
                forwarding_fields,
            )
        };
        let want = recorded_settings(before, key).ok_or_else(|| {
            self.err(format!(
                "the recorded pre-state holds no `{key}` to put back"
            ))
        })?;
        let now = self
            .get_json(&http, url.clone(), ctx, &mut records)
            .await?
            .unwrap_or(Value::Null);
        let mut changed = Vec::new();
        if !settings_diff(&fields(&now), &want).is_empty() {
            self.send(
                &http,
                Request::put(url).json(&want, "application/json"),
                ctx,
                &mut records,
            )
            .await
            .map_err(super::not_the_person)?;
            changed.push(format!("put back settings/{key}"));
        }
        if let Some(addr) = added_address(before) {
            let one = self.gmail(&["forwardingAddresses", addr])?;
            if self
                .get_json(&http, one.clone(), ctx, &mut records)
                .await?
                .is_some()
            {
                let req = Request::delete(one).allow(StatusCode::NOT_FOUND);
                let resp = self
                    .send(&http, req, ctx, &mut records)
                    .await
                    .map_err(super::not_the_person)?;
                if resp.status != StatusCode::NOT_FOUND {
                    changed.push(format!(
                        "removed the forwarding address {addr} offboard added"
                    ));
                }
            }
        }
        Ok(done(
            !changed.is_empty(),
            if changed.is_empty() {
                format!(
                    "Gmail {key} of {} is already as before offboard",
                    user.email
                )
            } else {
                format!("Gmail of {}: {}", user.email, changed.join("; "))
            },
            records,
            user.account(),
        ))
    }
}

/// The recorded Gmail settings under `key`, with the switch Gmail leaves out when it is off
/// made explicit (`{}` recorded is "off": `enableAutoReply`/`enabled` false), so that putting
/// them back turns off what offboard turned on.
fn recorded_settings(before: &Value, key: &str) -> Option<Value> {
    let mut v = before.get(key).filter(|v| v.is_object()).cloned()?;
    let switch = if key == "vacation" {
        "enableAutoReply"
    } else {
        "enabled"
    };
    if v.get(switch).is_none_or(Value::is_null) {
        v[switch] = json!(false);
    }
    Some(v)
}

/// One group of a `remove_from_groups` pre-state.
struct RecordedGroup {
    id: String,
    email: String,
    role: String,
    delivery: Option<String>,
}

fn recorded_groups(before: &Value) -> Vec<RecordedGroup> {
    before
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|g| {
            let id = text(g, "id")?.to_string();
            Some(RecordedGroup {
                email: text(g, "email").unwrap_or(&id).to_string(),
                role: text(g, "role").unwrap_or("MEMBER").to_string(),
                delivery: text(g, "delivery_settings").map(str::to_string),
                id,
            })
        })
        .collect()
}

/// (productId, skuId, skuName) of a `remove_licenses` pre-state.
fn recorded_assignments(before: &Value) -> Vec<(String, String, Option<String>)> {
    before
        .get("assignments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            Some((
                text(a, "productId")?.to_string(),
                text(a, "skuId")?.to_string(),
                text(a, "skuName").map(str::to_string),
            ))
        })
        .collect()
}

/// The forwarding address `set_forwarding` added (it did not exist before), if any.
fn added_address(before: &Value) -> Option<&str> {
    let f = before.get("forwardingAddress")?;
    (f.get("existed") == Some(&Value::Bool(false)))
        .then(|| text(f, "address"))
        .flatten()
}

/// The recorded settings' fields that differ now (`want`'s fields only; a field Gmail left
/// out counts as `false`/empty, as Gmail leaves out defaults).
fn settings_diff(now: &Value, want: &Value) -> Vec<String> {
    let Some(want) = want.as_object() else {
        return vec!["no recorded settings".into()];
    };
    let norm = |v: Option<&Value>| match v {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Bool(false)) => Value::Null,
        Some(Value::String(s)) if s.is_empty() => Value::Null,
        Some(v) => v.clone(),
    };
    want.iter()
        .filter(|(k, w)| norm(now.get(k.as_str())) != norm(Some(w)))
        .map(|(k, w)| {
            format!(
                "{k} is {}, was {w}",
                now.get(k.as_str()).unwrap_or(&Value::Null)
            )
        })
        .collect()
}

/// An error after re-adding some of `done`: say which (as `partly` does for removals).
fn after_readding(e: ProviderError, done: &[String]) -> ProviderError {
    let e = super::not_the_person(e);
    if done.is_empty() {
        return e;
    }
    let prefix = format!("re-added {}; then ", done.join(", "));
    match e {
        ProviderError::Transient(m) => ProviderError::Transient(prefix + &m),
        ProviderError::Permanent(m) | ProviderError::NotFound(m) => {
            ProviderError::Permanent(prefix + &m)
        }
    }
}
