//! Rollback: restoring the asset tags and custom fields `tag_devices` changed, and the
//! maintenance window `set_maintenance` set, from the recorded pre-state.

use serde_json::{Value, json};

use super::devices::Device;
use super::maintenance::{maintenance_of, window_on};
use super::tags::tag_set;
use super::{NinjaOneProvider, when};
use crate::providers::kit::http::{Request, with_query};
use crate::providers::{
    Account, ApplyOutcome, CallCtx, ProviderError, RequestRecord, RestoreCheck, StepCall,
};

impl NinjaOneProvider {
    /// The recorded devices of a pre-state.
    pub(super) fn recorded_devices(before: &Value) -> Vec<Value> {
        before
            .get("devices")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// Each device `before` recorded, read again by its id, beside its recorded entry. A device
    /// gone since is left out and said in `gone` ("device N is gone (404)").
    pub(super) async fn recorded_devices_now(
        &self,
        recorded: Vec<Value>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
        gone: &mut Vec<String>,
    ) -> Result<Vec<(Value, Device)>, ProviderError> {
        let mut found = Vec::new();
        for rd in recorded {
            let Some(id) = rd.get("id").and_then(Value::as_u64) else {
                continue;
            };
            match self.device_by_id(id, ctx, records).await? {
                Some(d) => found.push((rd, d)),
                None => gone.push(format!("device {id} is gone (404)")),
            }
        }
        Ok(found)
    }

    /// The account rollback acts for: the one the apply recorded.
    pub(super) fn recorded_account(&self, call: &StepCall<'_>) -> Result<Account, ProviderError> {
        call.account.cloned().ok_or_else(|| {
            self.err(format!(
                "step `{}`: no account was recorded for this step; nothing to restore",
                call.step_id
            ))
        })
    }

    /// `GET /v2/device/{id}`: `None` when gone (404).
    pub(super) async fn device_by_id(
        &self,
        id: u64,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<Device>, ProviderError> {
        let url = self.url(&["device", &id.to_string()])?;
        match self.get_json(url, ctx, records).await? {
            None => Ok(None),
            Some(raw) => Device::of(&raw)
                .map(Some)
                .ok_or_else(|| self.err(format!("GET /v2/device/{id} answered without an id"))),
        }
    }

    /// The device's custom fields now (`withInheritance=false`).
    pub(super) async fn fields_now(
        &self,
        id: u64,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<serde_json::Map<String, Value>, ProviderError> {
        let url = with_query(
            self.url(&["device", &id.to_string(), "custom-fields"])?,
            &[("withInheritance", "false")],
        );
        let resp = self.http.send(Request::get(url), ctx).await?;
        records.push(resp.record.clone());
        let v: Value = resp.json()?;
        Ok(v.as_object().cloned().unwrap_or_default())
    }

    /// The names of a recorded tag set.
    pub(super) fn tag_names(tags: &[Value]) -> std::collections::BTreeSet<String> {
        tags.iter()
            .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_string))
            .collect()
    }

    pub(super) async fn restore_tags(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let account = self.recorded_account(call)?;
        let mut records = Vec::new();
        let mut done = Vec::new();
        let mut notes = Vec::new();
        for (rd, d) in self
            .recorded_devices_now(
                Self::recorded_devices(before),
                ctx,
                &mut records,
                &mut notes,
            )
            .await?
        {
            let id = d.id;
            let mut what = Vec::new();
            if let Some(old) = rd.get("tags").and_then(Value::as_array) {
                let want = Self::tag_names(old);
                let have: std::collections::BTreeSet<String> =
                    d.tags().iter().map(|t| t.to_string()).collect();
                if want != have {
                    let ids: Vec<u64> = old
                        .iter()
                        .filter_map(|t| t.get("id").and_then(Value::as_u64))
                        .collect();
                    for t in old
                        .iter()
                        .filter(|t| t.get("id").is_none_or(Value::is_null))
                    {
                        notes.push(format!(
                            "{}: tag {} had no id in GET /v2/tag; not put back",
                            d.label(),
                            t["name"]
                        ));
                    }
                    // Sets exactly these tags and removes every other (providers.md §10.3;
                    // the success status is UNCONFIRMED: any 2xx).
                    let url = self.url(&["tag", "device", &id.to_string()])?;
                    let resp = self
                        .http
                        .send(
                            Request::put(url).json(&json!({ "tagIds": ids }), "application/json"),
                            ctx,
                        )
                        .await?;
                    records.push(resp.record.clone());
                    what.push(format!(
                        "tags [{}]",
                        want.iter().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            if let Some(old) = rd.get("custom_fields").and_then(Value::as_object) {
                let have = self.fields_now(id, ctx, &mut records).await?;
                let differ: serde_json::Map<String, Value> = old
                    .iter()
                    .filter(|(k, v)| have.get(*k).unwrap_or(&Value::Null) != *v)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !differ.is_empty() {
                    // Null clears a field that was unset (UNCONFIRMED against a live instance).
                    let url = self.url(&["device", &id.to_string(), "custom-fields"])?;
                    let resp = self
                        .http
                        .send(
                            Request::patch(url)
                                .json(&Value::Object(differ.clone()), "application/json"),
                            ctx,
                        )
                        .await?;
                    records.push(resp.record.clone());
                    what.push(
                        differ
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    );
                }
            }
            if !what.is_empty() {
                done.push(format!("{}: {}", d.label(), what.join("; ")));
            }
        }
        let mut summary = if done.is_empty() {
            "every recorded device has its old tags and fields already".to_string()
        } else {
            format!("put back {}", done.join("; "))
        };
        if !notes.is_empty() {
            summary.push_str(&format!("; not put back: {}", notes.join("; ")));
        }
        Ok(ApplyOutcome {
            changed: !done.is_empty(),
            summary,
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_tags_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let account = self.recorded_account(call)?;
        let mut records = Vec::new();
        let devices = Self::recorded_devices(before);
        let any_tags = devices
            .iter()
            .any(|d| d.get("tags").is_some_and(Value::is_array));
        let list = if any_tags {
            self.tag_list(ctx, &mut records).await?
        } else {
            Vec::new()
        };
        let mut after = Vec::new();
        let mut missing = Vec::new();
        for (rd, d) in self
            .recorded_devices_now(devices, ctx, &mut records, &mut missing)
            .await?
        {
            let id = d.id;
            let mut now =
                json!({ "id": d.id, "name": d.name, "tags": null, "custom_fields": null });
            if let Some(old) = rd.get("tags").and_then(Value::as_array) {
                let tags = tag_set(&d, &list);
                let have = Self::tag_names(tags.as_array().map_or(&[][..], Vec::as_slice));
                let want = Self::tag_names(old);
                if have != want {
                    missing.push(format!(
                        "{}: tags [{}], were [{}]",
                        d.label(),
                        have.iter().cloned().collect::<Vec<_>>().join(", "),
                        want.iter().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
                now["tags"] = tags;
            }
            if let Some(old) = rd.get("custom_fields").and_then(Value::as_object) {
                let have = self.fields_now(id, ctx, &mut records).await?;
                let mut fields = serde_json::Map::new();
                for (k, v) in old {
                    let h = have.get(k).cloned().unwrap_or(Value::Null);
                    if &h != v {
                        missing.push(format!("{}: {k}={h}, was {v}", d.label()));
                    }
                    fields.insert(k.clone(), h);
                }
                now["custom_fields"] = Value::Object(fields);
            }
            after.push(now);
        }
        let n = after.len();
        Ok(RestoreCheck {
            after: json!({ "devices": after }),
            restored: missing.is_empty(),
            observed: if missing.is_empty() {
                format!("{n} device(s) with their old tags and fields")
            } else {
                format!("not back: {}", missing.join("; "))
            },
            account: Some(account),
        })
    }

    /// What a device's maintenance should be after a restore: the recorded window when it is
    /// still on (`Some`), else none.
    pub(super) fn wanted_window(rd: &Value) -> Option<Value> {
        rd.get("maintenance")
            .filter(|m| m.is_object() && window_on(m))
            .cloned()
    }

    pub(super) async fn restore_maintenance(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let account = self.recorded_account(call)?;
        let mut records = Vec::new();
        let mut done = Vec::new();
        let mut notes = Vec::new();
        for (rd, d) in self
            .recorded_devices_now(
                Self::recorded_devices(before),
                ctx,
                &mut records,
                &mut notes,
            )
            .await?
        {
            let id = d.id;
            let now = maintenance_of(&d)["maintenance"].clone();
            let now_on = now.is_object() && window_on(&now);
            match Self::wanted_window(&rd) {
                None if now_on => {
                    let url = self.url(&["device", &id.to_string(), "maintenance"])?;
                    let resp = self.http.send(Request::delete(url), ctx).await?;
                    records.push(resp.record.clone());
                    done.push(d.label());
                }
                None => {}
                Some(old) if now.get("end") == old.get("end") => {}
                Some(old) => notes.push(format!(
                    "{} had maintenance {} until {} before offboard: put it back by hand (its \
                     disabled features cannot be read back)",
                    d.label(),
                    old["status"].as_str().unwrap_or("?"),
                    old["end"].as_f64().map_or("?".to_string(), when)
                )),
            }
        }
        let mut summary = if done.is_empty() {
            "no maintenance of offboard's left to end".to_string()
        } else {
            format!("ended maintenance on {}", done.join(", "))
        };
        if !notes.is_empty() {
            summary.push_str(&format!("; not put back: {}", notes.join("; ")));
        }
        Ok(ApplyOutcome {
            changed: !done.is_empty(),
            summary,
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_maintenance_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let account = self.recorded_account(call)?;
        let mut records = Vec::new();
        let mut after = Vec::new();
        let mut missing = Vec::new();
        for (rd, d) in self
            .recorded_devices_now(
                Self::recorded_devices(before),
                ctx,
                &mut records,
                &mut missing,
            )
            .await?
        {
            let now = maintenance_of(&d);
            let m = &now["maintenance"];
            let now_on = m.is_object() && window_on(m);
            match Self::wanted_window(&rd) {
                None if now_on => missing.push(format!(
                    "{}: still in maintenance {} until {}",
                    d.label(),
                    m["status"].as_str().unwrap_or("?"),
                    m["end"].as_f64().map_or("?".to_string(), when)
                )),
                Some(old) if m.get("end") != old.get("end") => missing.push(format!(
                    "{}: had maintenance until {} before offboard; now {}",
                    d.label(),
                    old["end"].as_f64().map_or("?".to_string(), when),
                    if now_on {
                        format!("until {}", m["end"].as_f64().map_or("?".to_string(), when))
                    } else {
                        "none".to_string()
                    }
                )),
                _ => {}
            }
            after.push(now);
        }
        let n = after.len();
        Ok(RestoreCheck {
            after: json!({ "devices": after }),
            restored: missing.is_empty(),
            observed: if missing.is_empty() {
                format!("{n} device(s) with their maintenance as before")
            } else {
                format!("not back: {}", missing.join("; "))
            },
            account: Some(account),
        })
    }
}
