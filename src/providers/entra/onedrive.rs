//! `grant_onedrive_access`: the manager (or another user) gets edit rights on the leaver's
//! OneDrive root through a sharing grant (`POST /drives/{drive}/root/invite`, signed-in access
//! only, no e-mail sent), and the OneDrive's URL goes into the summary for the handoff. The
//! check reads the root's permissions (`GET /drives/{drive}/root/permissions`) for a grant to
//! that user.

use serde_json::{Value, json};

use super::EntraProvider;
use super::graph::{Resolved, items, seen, text};
use crate::providers::kit::http::Request;
use crate::providers::{
    Account, ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall, params,
};

/// `grant_onedrive_access`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct OneDriveParams {
    /// Who gets access: a user principal name or object id in this tenant, e.g.
    /// `"{{ user.manager }}"`; default: the user's manager in Entra (`manager`).
    #[schemars(length(min = 1))]
    to: Option<String>,
    /// `"write"` (default) or `"read"`.
    role: Option<Role>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Role {
    Read,
    Write,
}

impl Role {
    fn graph(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
        }
    }

    /// A permission with these roles gives at least this one.
    fn met_by(self, roles: &[&str]) -> bool {
        roles.iter().any(|r| {
            r.eq_ignore_ascii_case("owner")
                || r.eq_ignore_ascii_case("write")
                || (self == Role::Read && r.eq_ignore_ascii_case("read"))
        })
    }
}

/// The user who gets access.
struct Recipient {
    id: String,
    /// `mail`, then `userPrincipalName`: where a grant is addressed.
    addresses: Vec<String>,
}

impl Recipient {
    fn from(v: &Value) -> Option<Recipient> {
        let id = text(v, "id")?.to_string();
        let addresses: Vec<String> = ["mail", "userPrincipalName"]
            .iter()
            .filter_map(|k| text(v, k).map(str::to_string))
            .collect();
        (!addresses.is_empty()).then_some(Recipient { id, addresses })
    }

    fn shown(&self) -> &str {
        &self.addresses[0]
    }

    /// `identity` (a `user` or `siteUser` of a permission) is this recipient.
    fn is(&self, identity: &Value) -> bool {
        if text(identity, "id").is_some_and(|i| i.eq_ignore_ascii_case(&self.id)) {
            return true;
        }
        let email = text(identity, "email");
        // SharePoint names people by claim: `i:0#.f|membership|alice@contoso.com`.
        let login = text(identity, "loginName").and_then(|l| l.rsplit('|').next());
        self.addresses.iter().any(|a| {
            email.is_some_and(|e| e.eq_ignore_ascii_case(a))
                || login.is_some_and(|l| l.eq_ignore_ascii_case(a))
        })
    }
}

/// The OneDrive of the user.
struct Drive {
    id: String,
    web_url: String,
}

/// `permission` grants `recipient` at least `role`.
fn grants(permission: &Value, recipient: &Recipient, role: Role) -> bool {
    let roles: Vec<&str> = permission
        .get("roles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !role.met_by(&roles) {
        return false;
    }
    let mut identities: Vec<&Value> = Vec::new();
    for set in ["grantedToV2", "grantedTo"] {
        for who in ["user", "siteUser"] {
            if let Some(i) = permission.get(set).and_then(|s| s.get(who)) {
                identities.push(i);
            }
        }
    }
    for set in ["grantedToIdentitiesV2", "grantedToIdentities"] {
        for entry in permission
            .get(set)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(i) = entry.get("user") {
                identities.push(i);
            }
        }
    }
    if let Some(i) = permission.get("invitation") {
        identities.push(i);
    }
    identities.into_iter().any(|i| recipient.is(i))
}

/// The ids of the permissions that give `recipient` any access.
fn held_by(permissions: &[Value], recipient: &Recipient) -> Vec<String> {
    permissions
        .iter()
        .filter(|p| grants(p, recipient, Role::Read))
        .filter_map(|p| text(p, "id").map(str::to_string))
        .collect()
}

/// A permission with the `owner` role (the drive's own: never taken back).
fn is_owner(p: &Value) -> bool {
    p.get("roles")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|x| x.as_str() == Some("owner")))
}

impl EntraProvider {
    /// Rollback of `grant_onedrive_access`: the permissions that give the recorded recipient
    /// access now but did not before offboard's grant (by id), owner's left alone. `None`: the
    /// drive is not reachable through the user (deleted).
    async fn grants_since(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(Account, Drive, Vec<String>), ProviderError> {
        let account = match self.resolve(call, &[], ctx, records).await? {
            Resolved::Live(_, a) => a,
            Resolved::Gone(a) => {
                return Err(self.err(format!(
                    "{a} no longer exists (404 by id): its OneDrive cannot be reached through \
                     the user; restore the user first"
                )));
            }
        };
        let r = before.get("recipient").unwrap_or(&Value::Null);
        let recipient = Recipient {
            id: text(r, "id").unwrap_or_default().to_string(),
            addresses: r
                .get("addresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect(),
        };
        if recipient.id.is_empty() && recipient.addresses.is_empty() {
            return Err(self.err("the recorded pre-state names no recipient"));
        }
        let held: Vec<&str> = before
            .get("permissionIds")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let drive = self.drive(&account, ctx, records).await?;
        let permissions = self.root_permissions(&drive, ctx, records).await?;
        let new: Vec<String> = permissions
            .iter()
            .filter(|p| grants(p, &recipient, Role::Read) && !is_owner(p))
            .filter_map(|p| text(p, "id"))
            .filter(|id| !held.contains(id))
            .map(str::to_string)
            .collect();
        Ok((account, drive, new))
    }

    pub(super) async fn revoke_onedrive_grant(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (account, drive, new) = self.grants_since(call, before, ctx, &mut records).await?;
        let who = before
            .pointer("/recipient/addresses/0")
            .and_then(Value::as_str)
            .unwrap_or("the recipient")
            .to_string();
        let mut removed = Vec::new();
        for id in &new {
            let url = self.url(&["drives", &drive.id, "root", "permissions", id])?;
            let resp = self
                .send(
                    Request::delete(url).allow(reqwest::StatusCode::NOT_FOUND),
                    ctx,
                    &mut records,
                )
                .await?;
            if resp.status != reqwest::StatusCode::NOT_FOUND {
                removed.push(id.clone());
            }
        }
        Ok(ApplyOutcome {
            changed: !removed.is_empty(),
            summary: if removed.is_empty() {
                format!("{who} holds no access to the OneDrive of {account} that offboard gave")
            } else {
                format!(
                    "took back the access offboard gave {who} to the OneDrive of {account} \
                     (permission {})",
                    removed.join(", ")
                )
            },
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_onedrive_revoked(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<crate::providers::RestoreCheck, ProviderError> {
        let mut records = Vec::new();
        let (account, drive, new) = self.grants_since(call, before, ctx, &mut records).await?;
        Ok(crate::providers::RestoreCheck {
            after: json!({
                "id": account.id,
                "driveId": drive.id,
                "recipient": before.get("recipient").cloned().unwrap_or(Value::Null),
                "grantedSince": new,
            }),
            restored: new.is_empty(),
            observed: if new.is_empty() {
                "no access left that offboard gave".into()
            } else {
                format!(
                    "access offboard gave still there (permission {})",
                    new.join(", ")
                )
            },
            account: Some(account),
        })
    }

    fn drive_params(&self, call: &StepCall<'_>) -> Result<(Option<String>, Role), ProviderError> {
        let p: OneDriveParams = params::parse(call.action, call.params)?;
        let to = p.to.map(|t| t.trim().to_string());
        if to.as_ref().is_some_and(String::is_empty) {
            return Err(self.err(format!("step `{}`: params.to is empty", call.step_id)));
        }
        Ok((to, p.role.unwrap_or(Role::Write)))
    }

    /// The user who gets access: `to`, or the manager.
    async fn recipient(
        &self,
        account: &Account,
        to: Option<&str>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Recipient, ProviderError> {
        let (found, asked) = match to {
            Some(to) => (
                self.get_user(to, &["id", "userPrincipalName", "mail"], ctx, records)
                    .await?,
                format!("params.to {to:?}"),
            ),
            None => {
                let url = self.url(&["users", &account.id, "manager"])?;
                let resp = self
                    .send(
                        Request::get(url).allow(reqwest::StatusCode::NOT_FOUND),
                        ctx,
                        records,
                    )
                    .await?;
                if resp.status == reqwest::StatusCode::NOT_FOUND {
                    return Err(self.err(format!(
                        "{account} has no manager in Entra: set params.to (e.g. \"{{{{ \
                         user.manager }}}}\") to say who gets the OneDrive"
                    )));
                }
                (Some(resp.json()?), "the manager".to_string())
            }
        };
        found.as_ref().and_then(Recipient::from).ok_or_else(|| {
            self.err(format!(
                "{asked} is not a user of this tenant with an address"
            ))
        })
    }

    /// `GET /users/{id}/drive`.
    async fn drive(
        &self,
        account: &Account,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Drive, ProviderError> {
        let url = self.url(&["users", &account.id, "drive"])?;
        let resp = self.send(Request::get(url), ctx, records).await?;
        let v: Value = resp.json()?;
        match (text(&v, "id"), text(&v, "webUrl")) {
            (Some(id), Some(web)) => Ok(Drive {
                id: id.to_string(),
                web_url: web.to_string(),
            }),
            _ => Err(self.err(format!(
                "GET /users/{}/drive answered a drive without `id` or `webUrl`",
                account.id
            ))),
        }
    }

    /// The root's permissions.
    async fn root_permissions(
        &self,
        drive: &Drive,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Value>, ProviderError> {
        let url = self.url(&["drives", &drive.id, "root", "permissions"])?;
        self.get_all(url, ctx, records).await
    }

    /// The user, the recipient and the drive, read live.
    async fn drive_state(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(Account, Recipient, Drive, Role), ProviderError> {
        let (to, role) = self.drive_params(call)?;
        let account = match self.resolve(call, &[], ctx, records).await? {
            Resolved::Live(_, a) => a,
            // Deleting the user keeps the OneDrive for its retention period, but it can no
            // longer be found through the user: nothing proves the grant either way.
            Resolved::Gone(a) => {
                return Err(self.err(format!(
                    "{a} no longer exists (404 by id): its OneDrive cannot be reached through \
                     the user any more; check in the SharePoint admin center"
                )));
            }
        };
        let recipient = self
            .recipient(&account, to.as_deref(), ctx, records)
            .await?;
        let drive = self.drive(&account, ctx, records).await?;
        Ok((account, recipient, drive, role))
    }

    pub(super) async fn grant_onedrive_access(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (account, recipient, drive, role) = self.drive_state(call, ctx, &mut records).await?;
        ctx.identified(&account);
        let permissions = self.root_permissions(&drive, ctx, &mut records).await?;
        // The recipient's grants before: rollback takes back only one offboard made.
        ctx.before(&json!({
            "id": account.id,
            "driveId": drive.id,
            "recipient": { "id": recipient.id, "addresses": recipient.addresses },
            "permissionIds": held_by(&permissions, &recipient),
        }));
        if permissions.iter().any(|p| grants(p, &recipient, role)) {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!(
                    "{} already has {} access to the OneDrive of {account}: {}",
                    recipient.shown(),
                    role.graph(),
                    drive.web_url
                ),
                requests: records,
                account: Some(account),
            });
        }
        let url = self.url(&["drives", &drive.id, "root", "invite"])?;
        let body = json!({
            "recipients": [{ "email": recipient.shown() }],
            "roles": [role.graph()],
            "requireSignIn": true,
            "sendInvitation": false,
        });
        let resp = self
            .send(
                Request::post(url).json(&body, "application/json"),
                ctx,
                &mut records,
            )
            .await?;
        let answered: Value = resp.json().unwrap_or(Value::Null);
        if items(&answered).is_some_and(|v| v.is_empty()) {
            return Err(self.err(format!(
                "POST /drives/{}/root/invite answered no permission: {} was not granted access",
                drive.id,
                recipient.shown()
            )));
        }
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "gave {} {} access to the OneDrive of {account} (no e-mail sent): {}",
                recipient.shown(),
                role.graph(),
                drive.web_url
            ),
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_onedrive_access(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let (account, recipient, drive, role) = self.drive_state(call, ctx, &mut records).await?;
        let permissions = self.root_permissions(&drive, ctx, &mut records).await?;
        let has = permissions.iter().any(|p| grants(p, &recipient, role));
        Ok(seen(
            has,
            format!(
                "{} {} {} access to {}",
                recipient.shown(),
                if has { "has" } else { "does not have" },
                role.graph(),
                drive.web_url
            ),
            &account,
        ))
    }
}
