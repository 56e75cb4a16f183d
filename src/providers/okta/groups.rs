//! `remove_from_groups`: the user's groups (Link-paged), the removals, and the check.

use serde_json::Value;

use super::apps::Unlinked;
use super::users::{Resolved, gone, not_the_person};
use super::{GroupsParams, OktaProvider, done};
use crate::providers::kit::paging::{self, Paging};
use crate::providers::{
    ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall, params,
};

/// What offboard reads of an Okta group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Group {
    pub(super) id: String,
    pub(super) name: String,
    /// `OKTA_GROUP`, `APP_GROUP` or `BUILT_IN`.
    pub(super) kind: String,
}

impl Group {
    pub(super) fn from_json(v: &Value) -> Option<Group> {
        let id = v.get("id")?.as_str()?.to_string();
        let name = v
            .pointer("/profile/name")
            .and_then(Value::as_str)
            .unwrap_or(&id)
            .to_string();
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        Some(Group { id, name, kind })
    }
}

impl OktaProvider {
    pub(super) fn group_names(
        &self,
        call: &StepCall<'_>,
    ) -> Result<Option<Vec<String>>, ProviderError> {
        let p: GroupsParams = params::parse(call.action, call.params)?;
        Ok(p.groups)
    }

    /// Every group of the user (Link pages followed), those listed only.
    pub(super) async fn groups(
        &self,
        id: &str,
        only: Option<&[String]>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Group>, ProviderError> {
        let url = self.url(&["users", id, "groups"])?;
        let (found, made) = paging::get_all(&self.http, url, Paging::LinkHeader, "", ctx)
            .await
            .map_err(not_the_person)?;
        records.extend(made);
        let mut out = Vec::new();
        for g in &found {
            let Some(group) = Group::from_json(g) else {
                return Err(ProviderError::Permanent(format!(
                    "system `{}`: GET /api/v1/users/{id}/groups answered a group without an id",
                    self.system
                )));
            };
            if let Some(only) = only
                && !only.iter().any(|o| o.eq_ignore_ascii_case(&group.name))
            {
                continue;
            }
            out.push(group);
        }
        out.sort_by_key(|g| g.name.to_lowercase());
        out.dedup_by(|a, b| a.id == b.id);
        Ok(out)
    }

    pub(super) async fn remove_from_groups(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let only = self.group_names(call)?;
        let mut records = Vec::new();
        let (user, account) = match self.live(call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        let groups = self
            .groups(&user.id, only.as_deref(), ctx, &mut records)
            .await?;
        ctx.before(&serde_json::json!({
            "id": user.id,
            "groups": groups
                .iter()
                .map(|g| serde_json::json!({ "id": g.id, "name": g.name, "type": g.kind }))
                .collect::<Vec<_>>(),
        }));
        let mut removed = Vec::new();
        let mut manual = Vec::new();
        for g in &groups {
            match g.kind.as_str() {
                "OKTA_GROUP" => {}
                "APP_GROUP" => {
                    manual.push(format!(
                        "{} (APP_GROUP: remove the membership in the directory it is imported from)",
                        g.name
                    ));
                    continue;
                }
                // BUILT_IN: Everyone, which every user is in.
                _ => continue,
            }
            let url = self.url(&["groups", &g.id, "users", &user.id])?;
            match self.unlink(url, ctx, &mut records, &removed).await? {
                Unlinked::Refused(said) => manual.push(format!(
                    "{} (Okta refused: {said}; a group rule may hold the membership)",
                    g.name
                )),
                // Not a member any more: gone meanwhile.
                Unlinked::Gone => {}
                Unlinked::Removed => removed.push(g.name.clone()),
            }
        }
        let mut summary = if removed.is_empty() {
            format!("Okta user {} is in no OKTA_GROUP to remove", user.id)
        } else {
            format!(
                "removed Okta user {} from {} group(s): {}",
                user.id,
                removed.len(),
                removed.join(", ")
            )
        };
        if let Some(o) = &only {
            summary.push_str(&format!(" (of the listed: {})", o.join(", ")));
        }
        if !manual.is_empty() {
            summary.push_str(&format!("; manual follow-up: {}", manual.join("; ")));
        }
        Ok(done(!removed.is_empty(), summary, records, account))
    }

    pub(super) async fn check_groups(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let only = self.group_names(call)?;
        let mut records = Vec::new();
        let user = match self.resolve(call, ctx, &mut records).await? {
            Resolved::Live(u) => u,
            Resolved::Gone(account) => return Ok(gone(account)),
        };
        let account = Some(self.account(&user, call.login));
        let groups = self
            .groups(&user.id, only.as_deref(), ctx, &mut records)
            .await?;
        let names = |kind: &str| {
            groups
                .iter()
                .filter(|g| g.kind == kind)
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
        };
        let okta = names("OKTA_GROUP");
        let app = names("APP_GROUP");
        let app_note = if app.is_empty() {
            String::new()
        } else {
            format!(
                "; APP_GROUP memberships (managed by their import, a manual follow-up): {}",
                app.join(", ")
            )
        };
        Ok(CheckOutcome {
            revoked: okta.is_empty(),
            observed: if okta.is_empty() {
                format!("member of no OKTA_GROUP{app_note}")
            } else {
                format!("still member of: {}{app_note}", okta.join(", "))
            },
            account,
        })
    }
}
