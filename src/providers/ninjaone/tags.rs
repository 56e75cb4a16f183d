//! `tag_devices`: device custom fields and asset tags, and what is still to set.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::client::not_the_person;
use super::devices::Device;
use super::{NinjaOneProvider, TagParams};
use crate::providers::kit::http::{Request, with_query};
use crate::providers::{
    ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall, params,
};

/// What `tag_gaps` found on one device.
pub(super) struct Gaps {
    /// Custom fields still to set, with the wanted value.
    pub(super) fields: BTreeMap<String, String>,
    /// Asset tags still to add, by name.
    pub(super) tags: Vec<String>,
    /// What was seen, for the check.
    pub(super) seen: Vec<String>,
    /// The asked fields' values now (null: unset), for the pre-state.
    pub(super) old: serde_json::Map<String, Value>,
}

/// A device's asset tags as `[{id, name}]`, the ids from `GET /v2/tag` (null when no tag of
/// that name is listed).
pub(super) fn tag_set(d: &Device, list: &[Value]) -> Value {
    Value::Array(
        d.tags()
            .iter()
            .map(|name| {
                let id = list
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some(*name))
                    .and_then(|t| t.get("id").cloned())
                    .unwrap_or(Value::Null);
                json!({ "id": id, "name": name })
            })
            .collect(),
    )
}

impl NinjaOneProvider {
    /// The ids of the named asset tags, in `tags` (from `GET /v2/tag`).
    pub(super) fn tag_ids(
        &self,
        names: &[String],
        tags: &[Value],
    ) -> Result<BTreeMap<String, u64>, ProviderError> {
        let mut out = BTreeMap::new();
        for name in names {
            let id = tags
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some(name.as_str()))
                .and_then(|t| t.get("id").and_then(Value::as_u64))
                .ok_or_else(|| {
                    self.err(format!(
                        "NinjaOne has no asset tag named {name:?} (GET /v2/tag): create it first"
                    ))
                })?;
            out.insert(name.clone(), id);
        }
        Ok(out)
    }

    /// Every asset tag (`GET /v2/tag`): `{id, name, …}`.
    pub(super) async fn tag_list(
        &self,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Value>, ProviderError> {
        let url = self.url(&["tag"])?;
        let resp = self
            .http
            .send(Request::get(url), ctx)
            .await
            .map_err(not_the_person)?;
        records.push(resp.record.clone());
        let body: Value = resp.json()?;
        Ok(body
            .get("tags")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// The fields and tags still to set on one device.
    pub(super) async fn tag_gaps(
        &self,
        d: &Device,
        p: &TagParams,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Gaps, ProviderError> {
        let mut fields = BTreeMap::new();
        let mut seen = Vec::new();
        let mut old = serde_json::Map::new();
        if let Some(want) = &p.custom_fields {
            let url = with_query(
                self.url(&["device", &d.id.to_string(), "custom-fields"])?,
                &[("withInheritance", "false")],
            );
            let resp = self
                .http
                .send(Request::get(url), ctx)
                .await
                .map_err(not_the_person)?;
            records.push(resp.record.clone());
            let have: Value = resp.json()?;
            for (k, v) in want {
                old.insert(k.clone(), have.get(k).cloned().unwrap_or(Value::Null));
                let now = match have.get(k) {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Null) | None => None,
                    Some(other) => Some(other.to_string()),
                };
                seen.push(format!(
                    "{k}={}",
                    now.as_deref()
                        .map_or("(unset)".to_string(), |s| format!("{s:?}"))
                ));
                if now.as_deref() != Some(v.as_str()) {
                    fields.insert(k.clone(), v.clone());
                }
            }
        }
        let have = d.tags();
        let tags: Vec<String> = p
            .tags
            .iter()
            .flatten()
            .filter(|t| !have.contains(&t.as_str()))
            .cloned()
            .collect();
        if p.tags.is_some() {
            seen.push(format!("tags {have:?}"));
        }
        Ok(Gaps {
            fields,
            tags,
            seen,
            old,
        })
    }

    pub(super) async fn tag(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let p: TagParams = params::parse(call.action, call.params)?;
        if p.custom_fields.as_ref().is_none_or(BTreeMap::is_empty) && p.tags.is_none() {
            return Err(self.err(format!(
                "step `{}`: tag_devices needs `custom_fields` or `tags`",
                call.step_id
            )));
        }
        let mut records = Vec::new();
        let h = self
            .holdings(call, p.find.unwrap_or_default(), ctx, &mut records)
            .await?;
        let devices = match &h.devices {
            Some(d) => d.clone(),
            None => {
                return Ok(ApplyOutcome {
                    changed: false,
                    summary: format!(
                        "the end user {} is gone from NinjaOne; nothing to tag",
                        h.account
                    ),
                    requests: records,
                    account: Some(h.account),
                });
            }
        };
        ctx.identified(&h.account);
        let (tag_list, tag_ids) = match &p.tags {
            Some(names) if !devices.is_empty() => {
                let list = self.tag_list(ctx, &mut records).await?;
                let ids = self.tag_ids(names, &list)?;
                (list, ids)
            }
            _ => (Vec::new(), BTreeMap::new()),
        };
        // Every device's pre-state first (one record for the step), then the changes.
        let mut gaps = Vec::new();
        let mut snapshot = Vec::new();
        for d in &devices {
            let g = self.tag_gaps(d, &p, ctx, &mut records).await?;
            snapshot.push(json!({
                "id": d.id,
                "name": d.name,
                "tags": p.tags.as_ref().map(|_| tag_set(d, &tag_list)),
                "custom_fields": p.custom_fields.as_ref().map(|_| Value::Object(g.old.clone())),
            }));
            gaps.push(g);
        }
        ctx.before(&json!({ "devices": snapshot }));
        let mut changed = Vec::new();
        for (d, g) in devices.iter().zip(gaps) {
            let Gaps { fields, tags, .. } = g;
            let mut what = Vec::new();
            if !fields.is_empty() {
                let url = self.url(&["device", &d.id.to_string(), "custom-fields"])?;
                let body =
                    Value::Object(fields.iter().map(|(k, v)| (k.clone(), json!(v))).collect());
                let resp = self
                    .http
                    .send(Request::patch(url).json(&body, "application/json"), ctx)
                    .await
                    .map_err(not_the_person)?;
                records.push(resp.record.clone());
                what.push(
                    fields
                        .iter()
                        .map(|(k, v)| format!("{k}={v:?}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
            }
            if !tags.is_empty() {
                let ids: Vec<u64> = tags
                    .iter()
                    .filter_map(|t| tag_ids.get(t).copied())
                    .collect();
                let url = self.url(&["tag", "device"])?;
                let body = json!({ "assetIds": [d.id], "tagIdsToAdd": ids });
                let resp = self
                    .http
                    .send(
                        Request::post(url)
                            .json(&body, "application/json")
                            .resend_safe(),
                        ctx,
                    )
                    .await
                    .map_err(not_the_person)?;
                records.push(resp.record.clone());
                what.push(format!("tags {}", tags.join(", ")));
            }
            if !what.is_empty() {
                changed.push(format!("{}: {}", d.label(), what.join("; ")));
            }
        }
        let mut summary = Self::listing(&h, &devices);
        if changed.is_empty() {
            summary.push_str("; every device already tagged");
        } else {
            summary.push_str(&format!("; set {}", changed.join("; ")));
        }
        Ok(ApplyOutcome {
            changed: !changed.is_empty(),
            summary,
            requests: records,
            account: Some(h.account),
        })
    }

    pub(super) async fn check_tag(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let p: TagParams = params::parse(call.action, call.params)?;
        let mut records = Vec::new();
        let h = self
            .holdings(call, p.find.unwrap_or_default(), ctx, &mut records)
            .await?;
        let devices = self.devices_or(&h)?;
        let mut ok = true;
        let mut each = Vec::new();
        for d in devices {
            let Gaps {
                fields, tags, seen, ..
            } = self.tag_gaps(d, &p, ctx, &mut records).await?;
            ok &= fields.is_empty() && tags.is_empty();
            let mut s = format!("{}: {}", d.label(), seen.join(", "));
            if !fields.is_empty() || !tags.is_empty() {
                let mut missing: Vec<String> = fields.keys().cloned().collect();
                missing.extend(tags.iter().map(|t| format!("tag {t}")));
                s.push_str(&format!(" (not as asked: {})", missing.join(", ")));
            }
            each.push(s);
        }
        Ok(Self::per_device(&h, devices, ok, each))
    }

    // ---- run_script -----------------------------------------------------------------------
}
