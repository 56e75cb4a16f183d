//! Intune: `retire_devices` and `wipe_devices` on the user's managed devices
//! (`GET /users/{id}/managedDevices`, paged). Intune carries a device action out when the device
//! next checks in, so a request is not a result: the check reads each device's
//! `managementState` and `deviceActionResults` and counts a device only once its action is
//! `done` (or the device is gone from the user's devices, which Intune does after a completed
//! wipe or retire). A queued wipe is reported as pending, with when it was requested, and is
//! not revoked, so `verify` and `resume` keep asking.

use serde_json::{Value, json};

use super::EntraProvider;
use super::graph::{Resolved, after_partial, seen, text};
use crate::providers::kit::http::Request;
use crate::providers::{
    Account, ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall, params,
};

/// The fields a check needs (`$select` keeps the answer small).
const FIELDS: &[&str] = &[
    "id",
    "deviceName",
    "operatingSystem",
    "managementState",
    "deviceActionResults",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Retire,
    Wipe,
}

impl Kind {
    fn verb(self) -> &'static str {
        match self {
            Kind::Retire => "retire",
            Kind::Wipe => "wipe",
        }
    }

    /// The device actions that settle this one: a wipe also removes what a retire would.
    fn settled_by(self) -> &'static [&'static str] {
        match self {
            Kind::Retire => &["retire", "wipe"],
            Kind::Wipe => &["wipe"],
        }
    }
}

/// `retire_devices`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RetireParams {
    /// Only devices with these operating systems (`operatingSystem`, case-insensitive), e.g.
    /// `["iOS", "Android"]`; default: every managed device of the user.
    #[schemars(length(min = 1))]
    operating_systems: Option<Vec<String>>,
}

/// `wipe_devices`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct WipeParams {
    /// Only devices with these operating systems (`operatingSystem`, case-insensitive), e.g.
    /// `["Windows"]`; default: every managed device of the user.
    #[schemars(length(min = 1))]
    operating_systems: Option<Vec<String>>,
    /// Keep the device enrolled in Intune after the reset (default false).
    keep_enrollment_data: Option<bool>,
    /// Keep the user's data on the device (default false).
    keep_user_data: Option<bool>,
    /// Keep the device's eSIM data plan (default false).
    persist_esim_data_plan: Option<bool>,
}

/// Where a device stands for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Carried out: nothing left to do.
    Done(String),
    /// Requested and not carried out yet.
    Pending(String),
    /// Tried and failed or cancelled: to request again.
    Failed(String),
    /// Never requested.
    NotStarted(String),
}

/// One managed device.
struct Device {
    id: String,
    name: String,
    os: String,
    state: State,
}

impl Device {
    fn label(&self) -> String {
        format!("{} ({})", self.name, self.os)
    }
}

/// The device's state for `kind`, from `deviceActionResults` (the latest result of an action
/// that settles it) and `managementState`.
fn state_of(dev: &Value, kind: Kind) -> State {
    let names = kind.settled_by();
    let latest = dev
        .get("deviceActionResults")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| {
            text(r, "actionName").is_some_and(|n| names.iter().any(|w| n.eq_ignore_ascii_case(w)))
        })
        .max_by_key(|r| text(r, "startDateTime").unwrap_or("").to_string());
    let management = text(dev, "managementState").unwrap_or("");
    if let Some(r) = latest {
        let action = text(r, "actionName")
            .unwrap_or("action")
            .to_ascii_lowercase();
        let started = text(r, "startDateTime").unwrap_or("an unreported time");
        let updated = text(r, "lastUpdatedDateTime").unwrap_or(started);
        match text(r, "actionState").unwrap_or("") {
            "done" => return State::Done(format!("{action} done at {updated}")),
            "pending" | "active" => {
                return State::Pending(format!("{action} pending (requested at {started})"));
            }
            s @ ("failed" | "canceled" | "notSupported") => {
                return State::Failed(format!("{action} {s} (requested at {started})"));
            }
            _ => {}
        }
    }
    let pending: &[&str] = match kind {
        Kind::Wipe => &["wipePending", "wipeIssued"],
        Kind::Retire => &["retirePending", "retireIssued", "wipePending", "wipeIssued"],
    };
    if pending.contains(&management) {
        let what = management
            .trim_end_matches("Pending")
            .trim_end_matches("Issued");
        return State::Pending(format!("{what} pending (managementState={management})"));
    }
    if matches!(
        management,
        "wipeFailed" | "retireFailed" | "wipeCanceled" | "retireCanceled"
    ) {
        return State::Failed(format!("managementState={management}"));
    }
    State::NotStarted(format!(
        "no {} requested (managementState={})",
        kind.verb(),
        if management.is_empty() {
            "not reported"
        } else {
            management
        }
    ))
}

impl EntraProvider {
    fn operating_systems(
        &self,
        call: &StepCall<'_>,
        kind: Kind,
    ) -> Result<Option<Vec<String>>, ProviderError> {
        let only = match kind {
            Kind::Retire => {
                params::parse::<RetireParams>(call.action, call.params)?.operating_systems
            }
            Kind::Wipe => params::parse::<WipeParams>(call.action, call.params)?.operating_systems,
        };
        if only.as_ref().is_some_and(Vec::is_empty) {
            return Err(self.err(format!(
                "step `{}`: params.operating_systems must not be empty",
                call.step_id
            )));
        }
        Ok(only)
    }

    /// The user's managed devices (of the listed operating systems), with their state.
    async fn devices(
        &self,
        call: &StepCall<'_>,
        kind: Kind,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(Account, Vec<Device>), ProviderError> {
        let only = self.operating_systems(call, kind)?;
        let account = match self.resolve(call, &[], ctx, records).await? {
            Resolved::Live(_, a) => a,
            // Deleting a user does not wipe or retire its devices, and they can no longer be
            // listed through it: nothing proves the action either way.
            Resolved::Gone(a) => {
                return Err(self.err(format!(
                    "{a} no longer exists (404 by id): its devices cannot be listed through the \
                     user any more; check them in the Intune admin center"
                )));
            }
        };
        let url = Self::select(self.url(&["users", &account.id, "managedDevices"])?, FIELDS);
        let all = self.get_all(url, ctx, records).await?;
        let mut out = Vec::new();
        for d in &all {
            let Some(id) = text(d, "id") else {
                return Err(self.err(format!(
                    "GET /users/{}/managedDevices answered a device without an id",
                    account.id
                )));
            };
            let os = text(d, "operatingSystem")
                .unwrap_or("unknown OS")
                .to_string();
            if let Some(only) = &only
                && !only.iter().any(|o| o.eq_ignore_ascii_case(&os))
            {
                continue;
            }
            out.push(Device {
                id: id.to_string(),
                name: text(d, "deviceName").unwrap_or(id).to_string(),
                os,
                state: state_of(d, kind),
            });
        }
        Ok((account, out))
    }

    fn action_body(&self, call: &StepCall<'_>, kind: Kind) -> Result<Option<Value>, ProviderError> {
        if kind == Kind::Retire {
            return Ok(None);
        }
        let p: WipeParams = params::parse(call.action, call.params)?;
        let mut body = json!({
            "keepEnrollmentData": p.keep_enrollment_data.unwrap_or(false),
            "keepUserData": p.keep_user_data.unwrap_or(false),
        });
        if let Some(keep) = p.persist_esim_data_plan {
            body["persistEsimDataPlan"] = Value::Bool(keep);
        }
        Ok(Some(body))
    }

    pub(super) async fn device_action(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        kind: Kind,
    ) -> Result<ApplyOutcome, ProviderError> {
        let body = self.action_body(call, kind)?;
        let mut records = Vec::new();
        let (account, devices) = self.devices(call, kind, ctx, &mut records).await?;
        ctx.identified(&account);
        let verb = kind.verb();
        let mut requested = Vec::new();
        let mut pending = Vec::new();
        let mut done = Vec::new();
        for d in &devices {
            match &d.state {
                State::Done(s) => {
                    done.push(format!("{}: {s}", d.label()));
                    continue;
                }
                State::Pending(s) => {
                    pending.push(format!("{}: {s}", d.label()));
                    continue;
                }
                State::Failed(_) | State::NotStarted(_) => {}
            }
            let url = self.url(&["deviceManagement", "managedDevices", &d.id, verb])?;
            let mut req = Request::post(url);
            if let Some(b) = &body {
                req = req.json(b, "application/json");
            }
            self.send(req, ctx, &mut records)
                .await
                .map_err(|e| after_partial(&format!("{verb} requested for"), &requested, e))?;
            requested.push(d.label());
        }
        let mut parts = Vec::new();
        if devices.is_empty() {
            parts.push(format!("{account} has no Intune-managed device"));
        }
        if !requested.is_empty() {
            parts.push(format!(
                "{verb} requested for {} device(s) of {account}: {} (requested, not yet done: \
                 Intune acts when each device checks in; the check counts only a completed \
                 {verb})",
                requested.len(),
                requested.join(", ")
            ));
        }
        if !pending.is_empty() {
            parts.push(format!("already requested: {}", pending.join("; ")));
        }
        if !done.is_empty() {
            parts.push(format!("already done: {}", done.join("; ")));
        }
        Ok(ApplyOutcome {
            changed: !requested.is_empty(),
            summary: parts.join("; "),
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_devices(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        kind: Kind,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let (account, devices) = self.devices(call, kind, ctx, &mut records).await?;
        if devices.is_empty() {
            return Ok(seen(
                true,
                "no Intune-managed device left for the user".into(),
                &account,
            ));
        }
        let all_done = devices.iter().all(|d| matches!(d.state, State::Done(_)));
        let each: Vec<String> = devices
            .iter()
            .map(|d| {
                let s = match &d.state {
                    State::Done(s)
                    | State::Pending(s)
                    | State::Failed(s)
                    | State::NotStarted(s) => s,
                };
                format!("{}: {s}", d.label())
            })
            .collect();
        Ok(seen(all_done, each.join("; "), &account))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_not_a_result() {
        let queued = json!({
            "managementState": "wipePending",
            "deviceActionResults": [{
                "actionName": "wipe", "actionState": "pending",
                "startDateTime": "2026-12-01T10:00:00Z", "lastUpdatedDateTime": "2026-12-01T10:00:00Z"
            }]
        });
        assert_eq!(
            state_of(&queued, Kind::Wipe),
            State::Pending("wipe pending (requested at 2026-12-01T10:00:00Z)".into())
        );
        // A pending wipe also keeps a retire open.
        assert!(matches!(state_of(&queued, Kind::Retire), State::Pending(_)));
        let done = json!({
            "managementState": "managed",
            "deviceActionResults": [
                {"actionName": "wipe", "actionState": "failed", "startDateTime": "2026-12-01T09:00:00Z"},
                {"actionName": "wipe", "actionState": "done", "startDateTime": "2026-12-01T10:00:00Z",
                 "lastUpdatedDateTime": "2026-12-01T12:00:00Z"}
            ]
        });
        assert_eq!(
            state_of(&done, Kind::Wipe),
            State::Done("wipe done at 2026-12-01T12:00:00Z".into())
        );
        let issued = json!({ "managementState": "wipeIssued" });
        assert!(matches!(state_of(&issued, Kind::Wipe), State::Pending(_)));
        let managed = json!({ "managementState": "managed", "deviceActionResults": [] });
        assert!(matches!(
            state_of(&managed, Kind::Wipe),
            State::NotStarted(_)
        ));
        let retired = json!({ "managementState": "retireFailed" });
        assert!(matches!(state_of(&retired, Kind::Retire), State::Failed(_)));
    }
}
