//! `run_script`: the run request and its state, read from the device's activities.

use serde_json::{Value, json};

use super::client::not_the_person;
use super::devices::Device;
use super::{CLOCK_SKEW, NinjaOneProvider, ScriptParams, now_secs, parse_time, when};
use crate::providers::kit::http::{Request, with_query};
use crate::providers::kit::paging::{self, Paging};
use crate::providers::{
    ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall, params,
};

/// Where a script run stands on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Run {
    Done(String),
    Pending(String),
    Failed(String),
    NotStarted(String),
}

/// The state of `script` from the device's activities (newest first or not: the highest id
/// decides), counting only activities at or after `bound` (epoch seconds).
pub(super) fn run_state(activities: &[Value], script: &str, bound: Option<i64>) -> Run {
    let latest = activities
        .iter()
        .filter(|a| {
            a.get("sourceName")
                .and_then(Value::as_str)
                .is_some_and(|n| n.contains(script))
        })
        .filter(|a| {
            bound.is_none_or(|b| {
                a.get("activityTime")
                    .and_then(Value::as_f64)
                    .is_some_and(|t| (if t > 1e11 { t / 1000.0 } else { t }) >= b as f64)
            })
        })
        .max_by_key(|a| a.get("id").and_then(Value::as_u64).unwrap_or(0));
    let Some(a) = latest else {
        return Run::NotStarted(format!("no run of {script:?} in the device's activities"));
    };
    let at = a
        .get("activityTime")
        .and_then(Value::as_f64)
        .map_or_else(|| "an unreported time".to_string(), when);
    let message = a
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(|m| format!(": {}", m.trim()))
        .unwrap_or_default();
    let status = a.get("statusCode").and_then(Value::as_str).unwrap_or("");
    let result = a
        .get("activityResult")
        .and_then(Value::as_str)
        .unwrap_or("");
    match (status, result) {
        ("COMPLETED", "SUCCESS") => Run::Done(format!("{script:?} succeeded at {at}{message}")),
        ("COMPLETED", r) => Run::Failed(format!(
            "{script:?} failed at {at} (result {}){message}",
            if r.is_empty() { "not reported" } else { r }
        )),
        ("CANCELLED" | "CANCEL_REQUESTED", _) => {
            Run::Failed(format!("{script:?} was cancelled at {at}{message}"))
        }
        (s, _) => Run::Pending(format!(
            "{script:?} pending (requested at {at}; NinjaOne status {})",
            if s.is_empty() { "not reported" } else { s }
        )),
    }
}

impl NinjaOneProvider {
    /// The device's activities of type ACTION (every page, newest first).
    pub(super) async fn activities(
        &self,
        d: &Device,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Value>, ProviderError> {
        let url = with_query(
            self.url(&["device", &d.id.to_string(), "activities"])?,
            &[("activityType", "ACTION")],
        );
        let (items, made) = paging::get_all(
            &self.http,
            url,
            Paging::AfterLastId {
                size: self.page_size.clamp(10, 1000),
                size_param: "pageSize",
                param: "olderThan",
                id_pointer: "/id",
            },
            "/activities",
            ctx,
        )
        .await
        .map_err(not_the_person)?;
        records.extend(made);
        Ok(items)
    }

    /// Where the script stands on one device, offline devices and this process's own requests
    /// taken into account.
    pub(super) async fn script_state(
        &self,
        d: &Device,
        p: &ScriptParams,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Run, ProviderError> {
        let since = match &p.since {
            Some(s) => Some(parse_time(s).ok_or_else(|| {
                self.err(format!(
                    "params.since {s:?} is not an RFC 3339 time or a date"
                ))
            })?),
            None => None,
        };
        let mine = self
            .requested
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(d.id, p.script.clone()))
            .copied();
        // NinjaOne's clock may run behind this machine's: a run requested here counts from a
        // few minutes before the request.
        let mine_bound = mine.map(|t| t - CLOCK_SKEW);
        let bound = match (since, mine_bound) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let acts = self.activities(d, ctx, records).await?;
        let state = run_state(&acts, &p.script, bound);
        let offline = || {
            format!(
                "the device is offline (last contact {}): waiting for it",
                d.last_contact.map_or_else(|| "not reported".into(), when)
            )
        };
        Ok(match state {
            Run::NotStarted(_) if mine.is_some() => {
                let at = when(mine.unwrap_or_default() as f64);
                let mut s = format!("{:?} requested at {at}, no activity yet", p.script);
                if d.offline {
                    s = format!("{s}; {}", offline());
                }
                Run::Pending(s)
            }
            Run::Pending(s) if d.offline => Run::Pending(format!("{s}; {}", offline())),
            other => other,
        })
    }

    pub(super) async fn run_script(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let p: ScriptParams = params::parse(call.action, call.params)?;
        let mut records = Vec::new();
        let h = self
            .holdings(call, p.find.unwrap_or_default(), ctx, &mut records)
            .await?;
        let Some(devices) = h.devices.clone() else {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!(
                    "the end user {} is gone from NinjaOne; no device to run {:?} on",
                    h.account, p.script
                ),
                requests: records,
                account: Some(h.account),
            });
        };
        ctx.identified(&h.account);
        ctx.before(&json!({
            "script": p.script,
            "devices": devices
                .iter()
                .map(|d| json!({ "id": d.id, "name": d.name, "offline": d.offline }))
                .collect::<Vec<_>>(),
        }));
        let mut sent = Vec::new();
        let mut pending = Vec::new();
        let mut done = Vec::new();
        for d in &devices {
            match self.script_state(d, &p, ctx, &mut records).await? {
                Run::Done(s) => done.push(format!("{}: {s}", d.label())),
                Run::Pending(s) => pending.push(format!("{}: {s}", d.label())),
                Run::Failed(_) | Run::NotStarted(_) => {
                    let body = self.run_body(d, &p, ctx, &mut records).await?;
                    let url = self.url(&["device", &d.id.to_string(), "script", "run"])?;
                    let at = now_secs();
                    let resp = self
                        .http
                        .send(Request::post(url).json(&body, "application/json"), ctx)
                        .await
                        .map_err(|e| {
                            let e = not_the_person(e);
                            if sent.is_empty() {
                                e
                            } else {
                                self.err(format!(
                                    "{:?} requested on {}; then {e}",
                                    p.script,
                                    sent.join(", ")
                                ))
                            }
                        })?;
                    records.push(resp.record.clone());
                    self.requested
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert((d.id, p.script.clone()), at);
                    let mut s = d.label();
                    if d.offline {
                        s.push_str(" (offline: waiting for the device)");
                    }
                    sent.push(s);
                }
            }
        }
        let mut parts = vec![Self::listing(&h, &devices)];
        if !sent.is_empty() {
            parts.push(format!(
                "{:?} requested on {} (requested, not yet done: NinjaOne gives no run id; the \
                 check reads the device's activities for the result)",
                p.script,
                sent.join(", ")
            ));
        }
        if !pending.is_empty() {
            parts.push(format!("already requested: {}", pending.join("; ")));
        }
        if !done.is_empty() {
            parts.push(format!("already done: {}", done.join("; ")));
        }
        Ok(ApplyOutcome {
            changed: !sent.is_empty(),
            summary: parts.join("; "),
            requests: records,
            account: Some(h.account),
        })
    }

    /// The `RunScriptRequest` for one device, the script found in its scripting options.
    pub(super) async fn run_body(
        &self,
        d: &Device,
        p: &ScriptParams,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Value, ProviderError> {
        let url = self.url(&["device", &d.id.to_string(), "scripting", "options"])?;
        let resp = self
            .http
            .send(Request::get(url), ctx)
            .await
            .map_err(not_the_person)?;
        records.push(resp.record.clone());
        let opts: Value = resp.json()?;
        let scripts = opts
            .get("scripts")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let name_of = |s: &Value| s.get("name").and_then(Value::as_str).map(str::to_string);
        let script = scripts
            .iter()
            .find(|s| name_of(s).as_deref() == Some(p.script.as_str()))
            .ok_or_else(|| {
                self.err(format!(
                    "{} offers no script or action named {:?} (GET \
                     /v2/device/{}/scripting/options lists {} scripts): check the name and the \
                     script's OS and architecture",
                    d.label(),
                    p.script,
                    d.id,
                    scripts.len()
                ))
            })?;
        let mut body = match script.get("type").and_then(Value::as_str) {
            Some("ACTION") => {
                json!({ "type": "ACTION", "uid": script.get("uid").cloned().unwrap_or(Value::Null) })
            }
            _ => {
                json!({ "type": "SCRIPT", "id": script.get("id").cloned().unwrap_or(Value::Null) })
            }
        };
        if let Some(params) = &p.parameters {
            body["parameters"] = json!(params);
        }
        body["runAs"] = json!(p.run_as.unwrap_or_default().ninja());
        Ok(body)
    }

    pub(super) async fn check_script(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let p: ScriptParams = params::parse(call.action, call.params)?;
        let mut records = Vec::new();
        let h = self
            .holdings(call, p.find.unwrap_or_default(), ctx, &mut records)
            .await?;
        let devices = self.devices_or(&h)?;
        if devices.is_empty() {
            return Ok(CheckOutcome {
                revoked: true,
                observed: Self::listing(&h, devices),
                account: Some(h.account),
            });
        }
        let mut all_done = true;
        let mut each = Vec::new();
        for d in devices {
            let s = self.script_state(d, &p, ctx, &mut records).await?;
            all_done &= matches!(s, Run::Done(_));
            let (Run::Done(t) | Run::Pending(t) | Run::Failed(t) | Run::NotStarted(t)) = s;
            each.push(format!("{}: {t}", d.label()));
        }
        Ok(CheckOutcome {
            revoked: all_done,
            observed: each.join("; "),
            account: Some(h.account),
        })
    }

    // ---- set_maintenance --------------------------------------------------------------------
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requested_run_is_not_a_done_run() {
        let act = |id: u64, t: f64, status: &str, result: &str, msg: &str| {
            json!({"id": id, "activityTime": t, "activityType": "ACTION", "statusCode": status,
                   "activityResult": result, "sourceName": "Run Disable local user",
                   "message": msg})
        };
        assert!(matches!(
            run_state(&[], "Disable local user", None),
            Run::NotStarted(_)
        ));
        assert_eq!(
            run_state(
                &[act(5, 1_764_583_200.0, "START_REQUESTED", "", "")],
                "Disable local user",
                None
            ),
            Run::Pending(
                "\"Disable local user\" pending (requested at 2025-12-01T10:00:00Z; NinjaOne status START_REQUESTED)"
                    .into()
            )
        );
        // The latest decides: a failure, then a success.
        let both = [
            act(5, 1_764_583_200.0, "COMPLETED", "FAILURE", "exit 1"),
            act(9, 1_764_586_800.0, "COMPLETED", "SUCCESS", "disabled"),
        ];
        assert!(matches!(
            run_state(&both, "Disable local user", None),
            Run::Done(_)
        ));
        let failed = [act(
            5,
            1_764_583_200.0,
            "COMPLETED",
            "FAILURE",
            "Access denied",
        )];
        assert_eq!(
            run_state(&failed, "Disable local user", None),
            Run::Failed(
                "\"Disable local user\" failed at 2025-12-01T10:00:00Z (result FAILURE): Access denied"
                    .into()
            )
        );
        // A run before the bound is another departure's.
        assert!(matches!(
            run_state(&both, "Disable local user", Some(1_764_590_000)),
            Run::NotStarted(_)
        ));
        // Milliseconds are read as such.
        assert!(matches!(
            run_state(
                &[act(1, 1_764_586_800_000.0, "COMPLETED", "SUCCESS", "")],
                "Disable local user",
                Some(1_764_586_000)
            ),
            Run::Done(_)
        ));
    }
}
