//! `remove_from_groups`: the user's direct memberships (`GET /users/{id}/memberOf`, paged),
//! each removed as a reference (`DELETE /groups/{gid}/members/{id}/$ref` — never without
//! `/$ref`, which addresses the user object itself). Groups Graph cannot edit are skipped and
//! named with why: dynamic groups (their rule decides), groups synced from on-premises AD (AD
//! decides), and mail-enabled security groups and distribution lists (Exchange decides).

use reqwest::StatusCode;
use serde_json::Value;

use super::EntraProvider;
use super::graph::{Resolved, after_partial, already_deleted, gone, seen, text};
use crate::providers::kit::http::Request;
use crate::providers::{
    Account, ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall, params,
};

/// `remove_from_groups`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct GroupsParams {
    /// Only these groups (by `displayName`, case-insensitive); default: every group the user
    /// is a direct member of.
    #[schemars(length(min = 1))]
    groups: Option<Vec<String>>,
}

/// One of the user's direct memberships.
pub(super) struct Membership {
    pub(super) id: String,
    pub(super) name: String,
    /// Why Graph cannot remove it, when it cannot.
    pub(super) skipped: Option<&'static str>,
}

/// What `memberOf` says about the user, groups split from the rest.
pub(super) struct Memberships {
    pub(super) groups: Vec<Membership>,
    /// Directory roles and administrative units: not groups, not touched here.
    other: Vec<String>,
}

fn has_type(g: &Value, wanted: &str) -> bool {
    g.get("groupTypes")
        .and_then(Value::as_array)
        .is_some_and(|t| {
            t.iter()
                .any(|x| x.as_str().is_some_and(|s| s.eq_ignore_ascii_case(wanted)))
        })
}

/// Why a group's members cannot be changed through Graph, if so.
fn why_skipped(g: &Value) -> Option<&'static str> {
    if has_type(g, "DynamicMembership") {
        return Some("dynamic membership: its rule decides");
    }
    if g.get("onPremisesSyncEnabled") == Some(&Value::Bool(true)) {
        return Some("synced from on-premises AD: remove the membership there");
    }
    if g.get("mailEnabled") == Some(&Value::Bool(true)) && !has_type(g, "Unified") {
        return Some(
            "mail-enabled security group or distribution list: Exchange manages it (the \
             exchange kind)",
        );
    }
    None
}

/// The pre-state of `remove_from_groups`: every group of the step's scope the user was a
/// direct member of, by id (with its name), and whether offboard could remove it.
fn groups_before(account: &Account, m: &Memberships) -> Value {
    let groups: Vec<Value> = m
        .groups
        .iter()
        .map(|g| match g.skipped {
            None => serde_json::json!({ "id": g.id, "name": g.name, "removable": true }),
            Some(why) => serde_json::json!({
                "id": g.id, "name": g.name, "removable": false, "skipped": why,
            }),
        })
        .collect();
    serde_json::json!({ "id": account.id, "groups": groups })
}

impl EntraProvider {
    fn group_filter(&self, call: &StepCall<'_>) -> Result<Option<Vec<String>>, ProviderError> {
        let p: GroupsParams = params::parse(call.action, call.params)?;
        if p.groups.as_ref().is_some_and(Vec::is_empty) {
            return Err(self.err(format!(
                "step `{}`: params.groups must be a non-empty list of group display names",
                call.step_id
            )));
        }
        Ok(p.groups)
    }

    pub(super) async fn memberships(
        &self,
        account: &Account,
        only: Option<&[String]>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Memberships, ProviderError> {
        let url = self.url(&["users", &account.id, "memberOf"])?;
        let all = self.get_all(url, ctx, records).await?;
        let mut out = Memberships {
            groups: Vec::new(),
            other: Vec::new(),
        };
        for item in &all {
            let Some(id) = text(item, "id") else {
                return Err(self.err(format!(
                    "GET /users/{}/memberOf answered an object without an id",
                    account.id
                )));
            };
            let name = text(item, "displayName").unwrap_or(id).to_string();
            let odata_type = text(item, "@odata.type").unwrap_or("");
            if !odata_type.eq_ignore_ascii_case("#microsoft.graph.group") {
                let kind = odata_type.trim_start_matches("#microsoft.graph.");
                out.other.push(format!("{name} ({kind})"));
                continue;
            }
            if let Some(only) = only
                && !only.iter().any(|o| o.eq_ignore_ascii_case(&name))
            {
                continue;
            }
            out.groups.push(Membership {
                id: id.to_string(),
                name,
                skipped: why_skipped(item),
            });
        }
        out.groups.sort_by_key(|g| g.name.to_lowercase());
        out.groups.dedup_by(|a, b| a.id == b.id);
        Ok(out)
    }

    pub(super) async fn remove_from_groups(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let only = self.group_filter(call)?;
        let mut records = Vec::new();
        let account = match self.resolve(call, &[], ctx, &mut records).await? {
            Resolved::Live(_, a) => a,
            Resolved::Gone(a) => return Ok(already_deleted(a, records)),
        };
        ctx.identified(&account);
        let m = self
            .memberships(&account, only.as_deref(), ctx, &mut records)
            .await?;
        ctx.before(&groups_before(&account, &m));
        let mut removed = Vec::new();
        let mut skipped = Vec::new();
        for g in &m.groups {
            if let Some(why) = g.skipped {
                skipped.push(format!("{} ({why})", g.name));
                continue;
            }
            let url = self.ref_url(&["groups", &g.id, "members", &account.id])?;
            // 404: the membership is already gone (removed meanwhile): done.
            let resp = self
                .send(
                    Request::delete(url).allow(StatusCode::NOT_FOUND),
                    ctx,
                    &mut records,
                )
                .await
                .map_err(|e| after_partial("removed from", &removed, e))?;
            if resp.status != StatusCode::NOT_FOUND {
                removed.push(g.name.clone());
            }
        }
        let scope = match &only {
            Some(o) => format!(" (of the listed: {})", o.join(", ")),
            None => String::new(),
        };
        let mut summary = if removed.is_empty() {
            format!("{account} is in no group offboard can edit{scope}: nothing to remove")
        } else {
            format!(
                "removed {account} from {} group(s){scope}: {}",
                removed.len(),
                removed.join(", ")
            )
        };
        if !skipped.is_empty() {
            summary.push_str(&format!("; skipped: {}", skipped.join("; ")));
        }
        if !m.other.is_empty() {
            summary.push_str(&format!(
                "; also a member of (not groups, left alone): {}",
                m.other.join(", ")
            ));
        }
        Ok(ApplyOutcome {
            changed: !removed.is_empty(),
            summary,
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_groups(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let only = self.group_filter(call)?;
        let mut records = Vec::new();
        let account = match self.resolve(call, &[], ctx, &mut records).await? {
            Resolved::Live(_, a) => a,
            Resolved::Gone(a) => return Ok(gone(a)),
        };
        let m = self
            .memberships(&account, only.as_deref(), ctx, &mut records)
            .await?;
        let left: Vec<&str> = m
            .groups
            .iter()
            .filter(|g| g.skipped.is_none())
            .map(|g| g.name.as_str())
            .collect();
        let skipped: Vec<String> = m
            .groups
            .iter()
            .filter_map(|g| g.skipped.map(|why| format!("{} ({why})", g.name)))
            .collect();
        let mut observed = if left.is_empty() {
            "member of no group offboard can edit".to_string()
        } else {
            format!("still member of: {}", left.join(", "))
        };
        if !skipped.is_empty() {
            observed.push_str(&format!("; not editable here: {}", skipped.join("; ")));
        }
        Ok(seen(left.is_empty(), observed, &account))
    }
}
