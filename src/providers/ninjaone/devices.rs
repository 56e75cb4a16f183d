//! The person's devices (assigned owner or last logged-on user), how they are listed in
//! summaries and checks, and `decommission_device`.

use serde_json::{Value, json};

use super::client::not_the_person;
use super::{Find, FindParams, LOGON_KIND, NinjaOneProvider};
use crate::providers::kit::http::Request;
use crate::providers::kit::paging::{self, Paging};
use crate::providers::{
    Account, ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall, params,
};

/// One device of the person's.
#[derive(Debug, Clone)]
pub(super) struct Device {
    pub(super) id: u64,
    pub(super) name: String,
    pub(super) offline: bool,
    pub(super) last_contact: Option<f64>,
    pub(super) raw: Value,
}

impl Device {
    pub(super) fn of(v: &Value) -> Option<Device> {
        let id = v.get("id")?.as_u64()?;
        let name = ["/displayName", "/systemName", "/dnsName"]
            .iter()
            .find_map(|p| {
                v.pointer(p)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            })
            .map_or_else(|| format!("device {id}"), str::to_string);
        Some(Device {
            id,
            name,
            offline: v.get("offline").and_then(Value::as_bool).unwrap_or(false),
            last_contact: v.get("lastContact").and_then(Value::as_f64),
            raw: v.clone(),
        })
    }

    pub(super) fn label(&self) -> String {
        format!("{} (device {})", self.name, self.id)
    }

    pub(super) fn tags(&self) -> Vec<&str> {
        self.raw
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

/// The person and their devices as read now.
pub(super) struct Holdings {
    pub(super) account: Account,
    /// `None`: the recorded end user is gone (404), so their devices cannot be listed.
    pub(super) devices: Option<Vec<Device>>,
    /// Devices listed for the person that answered 404.
    pub(super) gone: Vec<u64>,
    /// Devices listed for the person whose `assignedOwnerUid` names someone else now: left alone.
    pub(super) reassigned: Vec<String>,
}

/// Whether a device's `lastLoggedInUser` is the login (as is, or as `DOMAIN\login`).
pub(super) fn logon_matches(value: &str, login: &str) -> bool {
    let v = value.trim();
    let bare = v.rsplit('\\').next().unwrap_or(v);
    !login.is_empty() && (v.eq_ignore_ascii_case(login) || bare.eq_ignore_ascii_case(login))
}

impl NinjaOneProvider {
    /// The person and their devices.
    pub(super) async fn holdings(
        &self,
        call: &StepCall<'_>,
        find: Find,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Holdings, ProviderError> {
        let by_logon = match call.account {
            Some(a) => a.id_kind == LOGON_KIND,
            None => find == Find::LastLoggedOnUser,
        };
        if by_logon {
            let login = match call.account {
                Some(a) => a.id.clone(),
                None => call.login.trim().to_string(),
            };
            if login.is_empty() {
                return Err(self.err("the login to look up is empty"));
            }
            let url = self.url(&["devices-detailed"])?;
            let (all, made) = paging::get_all(
                &self.http,
                url,
                Paging::AfterLastId {
                    size: self.page_size,
                    size_param: "pageSize",
                    param: "after",
                    id_pointer: "/id",
                },
                "",
                ctx,
            )
            .await
            .map_err(not_the_person)?;
            records.extend(made);
            let devices: Vec<Device> = all
                .iter()
                .filter(|d| {
                    d.get("lastLoggedInUser")
                        .and_then(Value::as_str)
                        .is_some_and(|u| logon_matches(u, &login))
                })
                .filter_map(Device::of)
                .collect();
            if devices.is_empty() && call.account.is_none() {
                return Err(ProviderError::NotFound(format!(
                    "system `{}`: no NinjaOne device has {login:?} as its last logged-on user \
                     (GET /v2/devices-detailed, {} devices)",
                    self.system,
                    all.len()
                )));
            }
            let account = call
                .account
                .cloned()
                .unwrap_or_else(|| Account::new(login.clone(), LOGON_KIND, login.clone()));
            return Ok(Holdings {
                account,
                devices: Some(devices),
                gone: Vec::new(),
                reassigned: Vec::new(),
            });
        }
        let (account, user) = self.end_user(call, ctx, records).await?;
        let Some(user) = user else {
            return Ok(Holdings {
                account,
                devices: None,
                gone: Vec::new(),
                reassigned: Vec::new(),
            });
        };
        let ids: Vec<u64> = user
            .get("assignedDeviceIds")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let mut devices = Vec::new();
        let mut gone = Vec::new();
        let mut reassigned = Vec::new();
        let uid = user
            .get("uid")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty());
        for id in ids {
            let url = self.url(&["device", &id.to_string()])?;
            match self
                .get_json(url, ctx, records)
                .await
                .map_err(not_the_person)?
            {
                Some(d) => {
                    let device = Device::of(&d).ok_or_else(|| {
                        self.err(format!(
                            "GET /v2/device/{id} answered a device without an id"
                        ))
                    })?;
                    // The end user's list and the device's owner disagree: the device says who
                    // owns it now, and someone else's device is never touched.
                    let owner = d.get("assignedOwnerUid").and_then(Value::as_str);
                    match (owner, uid) {
                        (Some(o), Some(u)) if !o.is_empty() && o != u => {
                            reassigned.push(format!("{} (owner {o})", device.label()))
                        }
                        _ => devices.push(device),
                    }
                }
                None => gone.push(id),
            }
        }
        Ok(Holdings {
            account,
            devices: Some(devices),
            gone,
            reassigned,
        })
    }

    /// The devices, or why there are none to act on.
    pub(super) fn devices_or<'h>(&self, h: &'h Holdings) -> Result<&'h [Device], ProviderError> {
        h.devices.as_deref().ok_or_else(|| {
            self.err(format!(
                "cannot confirm: the end user {} is gone from NinjaOne, so its devices can no \
                 longer be listed (run `remove_end_user` after the device steps)",
                h.account
            ))
        })
    }

    /// A check over the person's devices: what was seen on each (or the listing, when there is
    /// none), holding only if it held on every one.
    pub(super) fn per_device(
        h: &Holdings,
        devices: &[Device],
        ok: bool,
        each: Vec<String>,
    ) -> CheckOutcome {
        CheckOutcome {
            revoked: ok,
            observed: if each.is_empty() {
                Self::listing(h, devices)
            } else {
                each.join("; ")
            },
            account: Some(h.account.clone()),
        }
    }

    pub(super) fn listing(h: &Holdings, devices: &[Device]) -> String {
        let mut s = format!(
            "{} device(s) of {} in NinjaOne: {}",
            devices.len(),
            h.account,
            if devices.is_empty() {
                "none".to_string()
            } else {
                devices
                    .iter()
                    .map(Device::label)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        if !h.reassigned.is_empty() {
            s.push_str(&format!(
                "; listed but owned by someone else now (left alone): {}",
                h.reassigned.join(", ")
            ));
        }
        if !h.gone.is_empty() {
            let ids: Vec<String> = h.gone.iter().map(u64::to_string).collect();
            s.push_str(&format!(
                "; listed but gone (404): device {}",
                ids.join(", device ")
            ));
        }
        s
    }

    // ---- tag_devices ----------------------------------------------------------------------

    pub(super) async fn decommission(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let p: FindParams = params::parse(call.action, call.params)?;
        let mut records = Vec::new();
        let h = self
            .holdings(call, p.find.unwrap_or_default(), ctx, &mut records)
            .await?;
        let Some(devices) = h.devices.clone() else {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!(
                    "the end user {} is gone from NinjaOne; no device to decommission",
                    h.account
                ),
                requests: records,
                account: Some(h.account),
            });
        };
        ctx.identified(&h.account);
        ctx.before(&json!({
            "devices": devices
                .iter()
                .map(|d| {
                    json!({
                        "id": d.id,
                        "name": d.name,
                        "nodeClass": d.raw.get("nodeClass"),
                        "approvalStatus": d.raw.get("approvalStatus"),
                    })
                })
                .collect::<Vec<_>>(),
        }));
        let mut done = Vec::new();
        for d in &devices {
            let url = self.url(&["device", &d.id.to_string(), "decommission"])?;
            let resp = self.http.send(Request::post(url), ctx).await.map_err(|e| {
                let e = not_the_person(e);
                if done.is_empty() {
                    e
                } else {
                    self.err(format!("decommissioned {}; then {e}", done.join(", ")))
                }
            })?;
            records.push(resp.record.clone());
            done.push(d.label());
        }
        let mut summary = Self::listing(&h, &devices);
        if done.is_empty() {
            summary.push_str("; nothing left to decommission");
        } else {
            summary.push_str(&format!(
                "; decommissioned (irreversible) {}",
                done.join(", ")
            ));
        }
        Ok(ApplyOutcome {
            changed: !done.is_empty(),
            summary,
            requests: records,
            account: Some(h.account),
        })
    }

    pub(super) async fn check_decommission(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let p: FindParams = params::parse(call.action, call.params)?;
        let mut records = Vec::new();
        let h = self
            .holdings(call, p.find.unwrap_or_default(), ctx, &mut records)
            .await?;
        let devices = self.devices_or(&h)?;
        let mut observed = Self::listing(&h, devices);
        if devices.is_empty() {
            observed.push_str("; no managed device left");
        } else {
            observed.push_str("; still managed (not decommissioned)");
        }
        Ok(CheckOutcome {
            revoked: devices.is_empty(),
            observed,
            account: Some(h.account),
        })
    }

    // ---- rollback ---------------------------------------------------------------------------
    //
    // Restores act on the devices the pre-state names, each read again by id: the end user may
    // be gone by then (a later `remove_end_user`), and a device given to someone else since is
    // still the device offboard changed.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logons_match_with_or_without_the_domain() {
        assert!(logon_matches("CORP\\jdoe", "jdoe"));
        assert!(logon_matches("jdoe", "JDoe"));
        assert!(logon_matches("jdoe@corp.example", "jdoe@corp.example"));
        assert!(!logon_matches("CORP\\jdoe2", "jdoe"));
        assert!(!logon_matches("", ""));
    }
}
