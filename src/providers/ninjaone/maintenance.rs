//! `set_maintenance`: the maintenance window, its end, and the check.

use serde_json::{Value, json};

use super::client::not_the_person;
use super::devices::Device;
use super::{Feature, MaintenanceParams, NinjaOneProvider, now_secs, parse_time, when};
use crate::providers::kit::http::Request;
use crate::providers::{ApplyOutcome, CallCtx, CheckOutcome, ProviderError, StepCall, params};

/// A device's maintenance window as the pre-state records it: `{id, name, maintenance:
/// {status, start, end} | null}`.
pub(super) fn maintenance_of(d: &Device) -> Value {
    let m = d.raw.get("maintenance").filter(|m| m.is_object()).map(
        |m| json!({ "status": m.get("status"), "start": m.get("start"), "end": m.get("end") }),
    );
    json!({ "id": d.id, "name": d.name, "maintenance": m })
}

/// A window that is on (pending or in progress) and not yet over.
pub(super) fn window_on(m: &Value) -> bool {
    let status = m.get("status").and_then(Value::as_str).unwrap_or("");
    let end = m
        .get("end")
        .and_then(Value::as_f64)
        .map(|t| if t > 1e11 { t / 1000.0 } else { t });
    matches!(status, "PENDING" | "IN_MAINTENANCE") && end.is_none_or(|e| e > now_secs() as f64)
}

impl NinjaOneProvider {
    /// The wanted end (epoch seconds), and whether any active window counts (`hours`).
    pub(super) fn maintenance_end(
        &self,
        p: &MaintenanceParams,
    ) -> Result<(i64, bool), ProviderError> {
        match (&p.until, p.hours) {
            (Some(u), None) => parse_time(u).map(|t| (t, false)).ok_or_else(|| {
                self.err(format!(
                    "params.until {u:?} is not an RFC 3339 time or a date"
                ))
            }),
            (None, Some(h)) => Ok((now_secs() + i64::from(h) * 3600, true)),
            _ => Err(self.err("set_maintenance needs exactly one of `until` and `hours`")),
        }
    }

    /// Whether the device's maintenance window covers the wanted end; and what it is.
    pub(super) fn maintenance_holds(d: &Device, end: i64, any: bool) -> (bool, String) {
        let m = d.raw.get("maintenance").cloned().unwrap_or(Value::Null);
        let status = m.get("status").and_then(Value::as_str).unwrap_or("");
        let until = m
            .get("end")
            .and_then(Value::as_f64)
            .map(|t| if t > 1e11 { t / 1000.0 } else { t });
        let active = matches!(status, "PENDING" | "IN_MAINTENANCE");
        let holds = active
            && until.is_some_and(|u| u > now_secs() as f64 && (any || u >= (end - 60) as f64));
        let seen = match (status, until) {
            ("", _) => "no maintenance".to_string(),
            (s, Some(u)) => format!("maintenance {s} until {}", when(u)),
            (s, None) => format!("maintenance {s}, no end reported"),
        };
        (holds, seen)
    }

    pub(super) async fn maintain(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let p: MaintenanceParams = params::parse(call.action, call.params)?;
        let (end, any) = self.maintenance_end(&p)?;
        let mut records = Vec::new();
        let h = self
            .holdings(call, p.find.unwrap_or_default(), ctx, &mut records)
            .await?;
        let Some(devices) = h.devices.clone() else {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!(
                    "the end user {} is gone from NinjaOne; no device to maintain",
                    h.account
                ),
                requests: records,
                account: Some(h.account),
            });
        };
        ctx.identified(&h.account);
        let features: Vec<&str> = p
            .disabled_features
            .as_deref()
            .unwrap_or(&[Feature::Alerts])
            .iter()
            .map(|f| f.ninja())
            .collect();
        ctx.before(&json!({
            "devices": devices.iter().map(maintenance_of).collect::<Vec<_>>(),
        }));
        let mut set = Vec::new();
        for d in &devices {
            if Self::maintenance_holds(d, end, any).0 {
                continue;
            }
            let url = self.url(&["device", &d.id.to_string(), "maintenance"])?;
            let mut body = json!({ "disabledFeatures": features, "end": end });
            if let Some(r) = &p.reason {
                body["reasonMessage"] = json!(r);
            }
            let resp = self
                .http
                .send(Request::put(url).json(&body, "application/json"), ctx)
                .await
                .map_err(not_the_person)?;
            records.push(resp.record.clone());
            set.push(d.label());
        }
        let mut summary = Self::listing(&h, &devices);
        if set.is_empty() {
            summary.push_str("; every device already in maintenance");
        } else {
            summary.push_str(&format!(
                "; maintenance ({}) until {} set on {}",
                features.join(", "),
                when(end as f64),
                set.join(", ")
            ));
        }
        Ok(ApplyOutcome {
            changed: !set.is_empty(),
            summary,
            requests: records,
            account: Some(h.account),
        })
    }

    pub(super) async fn check_maintenance(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let p: MaintenanceParams = params::parse(call.action, call.params)?;
        let (end, any) = self.maintenance_end(&p)?;
        let mut records = Vec::new();
        let h = self
            .holdings(call, p.find.unwrap_or_default(), ctx, &mut records)
            .await?;
        let devices = self.devices_or(&h)?;
        let mut ok = true;
        let mut each = Vec::new();
        for d in devices {
            let (holds, seen) = Self::maintenance_holds(d, end, any);
            ok &= holds;
            each.push(format!("{}: {seen}", d.label()));
        }
        Ok(Self::per_device(&h, devices, ok, each))
    }

    // ---- remove_end_user --------------------------------------------------------------------
}
