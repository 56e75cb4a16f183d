//! `remove_licenses`: every licence assigned to the user directly, in one `assignLicense` call
//! (`addLicenses: []` is sent although empty: Graph answers 400 without it). Licences the user
//! inherits from a group cannot be removed from the user (Graph answers 400): they are reported
//! with the group that assigns them, not failed. The SKUs freed are named by part number and
//! skuId for the licence report, in the summary and, structured, through
//! [`CallCtx::freed_licences`] (journaled as `applied.licences_freed`, read by `offboard report`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::EntraProvider;
use super::graph::{Resolved, already_deleted, gone, items, seen, text};
use crate::providers::kit::http::Request;
use crate::providers::{
    Account, ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall,
};

pub(super) const FIELDS: &[&str] = &["assignedLicenses", "licenseAssignmentStates"];

/// The user's licences, split by how they are assigned.
#[derive(Debug, Default)]
pub(super) struct Licences {
    /// skuIds assigned to the user directly.
    pub(super) direct: Vec<String>,
    /// (skuId, the group that assigns it).
    pub(super) inherited: Vec<(String, String)>,
}

/// Read from `licenseAssignmentStates` (which says `assignedByGroup`); a user object without
/// it falls back to `assignedLicenses`, every one taken as direct.
pub(super) fn licences(user: &Value) -> Licences {
    let mut out = Licences::default();
    match user
        .get("licenseAssignmentStates")
        .and_then(Value::as_array)
    {
        Some(states) => {
            for s in states {
                let Some(sku) = text(s, "skuId") else {
                    continue;
                };
                match text(s, "assignedByGroup") {
                    Some(group) => out.inherited.push((sku.to_string(), group.to_string())),
                    None => out.direct.push(sku.to_string()),
                }
            }
        }
        None => {
            for l in user
                .get("assignedLicenses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(sku) = text(l, "skuId") {
                    out.direct.push(sku.to_string());
                }
            }
        }
    }
    out.direct.sort();
    out.direct.dedup();
    out.inherited.sort();
    out.inherited.dedup();
    out
}

/// skuId (lower case) → the service plans disabled in it (`assignedLicenses[].disabledPlans`).
pub(super) fn disabled_plans(user: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for l in user
        .get("assignedLicenses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(sku) = text(l, "skuId") {
            let mut plans: Vec<String> = l
                .get("disabledPlans")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect();
            plans.sort();
            out.insert(sku.to_ascii_lowercase(), plans);
        }
    }
    out
}

/// The pre-state of `remove_licenses`: the direct licences by skuId with their disabled
/// plans (what comes back), and the inherited ones with the group assigning them (never
/// removed by offboard, recorded for the reader).
pub(super) fn licences_before(account: &Account, user: &Value, l: &Licences) -> Value {
    let plans = disabled_plans(user);
    let direct: Vec<Value> = l
        .direct
        .iter()
        .map(|sku| {
            json!({
                "skuId": sku,
                "disabledPlans": plans.get(&sku.to_ascii_lowercase()).cloned().unwrap_or_default(),
            })
        })
        .collect();
    let inherited: Vec<Value> = l
        .inherited
        .iter()
        .map(|(sku, group)| json!({ "skuId": sku, "group": group }))
        .collect();
    json!({ "id": account.id, "direct": direct, "inherited": inherited })
}

/// `PART_NUMBER (skuId)`, or the skuId alone when the part number is unknown.
fn named(sku: &str, parts: &BTreeMap<String, String>) -> String {
    match parts.get(&sku.to_ascii_lowercase()) {
        Some(p) => format!("{p} ({sku})"),
        None => sku.to_string(),
    }
}

impl EntraProvider {
    /// skuId → skuPartNumber for the user's licences (`GET /users/{id}/licenseDetails`).
    async fn part_numbers(
        &self,
        account: &Account,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        let url = self.url(&["users", &account.id, "licenseDetails"])?;
        let resp = self.send(Request::get(url), ctx, records).await?;
        let body: Value = resp.json()?;
        Ok(items(&body)
            .into_iter()
            .flatten()
            .filter_map(|d| {
                Some((
                    text(d, "skuId")?.to_ascii_lowercase(),
                    text(d, "skuPartNumber")?.to_string(),
                ))
            })
            .collect())
    }

    pub(super) async fn remove_licenses(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.resolve(call, FIELDS, ctx, &mut records).await? {
            Resolved::Live(u, a) => (u, a),
            Resolved::Gone(a) => {
                // A deleted user holds no licence: nothing left to free.
                ctx.freed_licences(&[]);
                return Ok(already_deleted(a, records));
            }
        };
        ctx.identified(&account);
        let l = licences(&user);
        ctx.before(&licences_before(&account, &user, &l));
        if l.direct.is_empty() {
            ctx.freed_licences(&[]);
        }
        if l.direct.is_empty() && l.inherited.is_empty() {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("{account} holds no licence"),
                requests: records,
                account: Some(account),
            });
        }
        let parts = self.part_numbers(&account, ctx, &mut records).await?;
        let inherited: Vec<String> = l
            .inherited
            .iter()
            .map(|(sku, group)| format!("{} via group {group}", named(sku, &parts)))
            .collect();
        let inherited_note = if inherited.is_empty() {
            String::new()
        } else {
            format!(
                "; inherited from a group, not removable from the user (remove the membership \
                 to free it): {}",
                inherited.join(", ")
            )
        };
        if l.direct.is_empty() {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("{account} has no directly assigned licence{inherited_note}"),
                requests: records,
                account: Some(account),
            });
        }
        let url = self.url(&["users", &account.id, "assignLicense"])?;
        let body = json!({ "addLicenses": [], "removeLicenses": l.direct });
        self.send(
            Request::post(url).json(&body, "application/json"),
            ctx,
            &mut records,
        )
        .await?;
        let freed: Vec<String> = l.direct.iter().map(|s| named(s, &parts)).collect();
        ctx.freed_licences(&freed);
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "freed {} licence(s) of {account}: {}{inherited_note}",
                freed.len(),
                freed.join(", ")
            ),
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_licenses(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.resolve(call, FIELDS, ctx, &mut records).await? {
            Resolved::Live(u, a) => (u, a),
            Resolved::Gone(a) => return Ok(gone(a)),
        };
        if user.get("licenseAssignmentStates").is_none() && user.get("assignedLicenses").is_none() {
            return Err(self.err(format!(
                "GET /users/{} reports neither licenseAssignmentStates nor assignedLicenses; \
                 cannot tell which licences remain",
                account.id
            )));
        }
        let l = licences(&user);
        let mut observed = if l.direct.is_empty() {
            "no directly assigned licence".to_string()
        } else {
            format!("directly assigned: {}", l.direct.join(", "))
        };
        if !l.inherited.is_empty() {
            let via: Vec<String> = l
                .inherited
                .iter()
                .map(|(sku, g)| format!("{sku} via group {g}"))
                .collect();
            observed.push_str(&format!("; inherited: {}", via.join(", ")));
        }
        Ok(seen(l.direct.is_empty(), observed, &account))
    }
}
