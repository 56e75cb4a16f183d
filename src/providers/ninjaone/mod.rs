//! NinjaOne RMM (the public API v2, `https://{region}.ninjarmm.com/v2/…`): tag the person's
//! devices, run a script on them, put them in maintenance, decommission them, and remove the
//! person's NinjaOne end-user login.
//!
//! Requests carry a bearer token from NinjaOne's OAuth 2.0 client credentials grant (`POST
//! {host}/ws/oauth/token`, form `grant_type=client_credentials`, `client_id`, `client_secret`,
//! `scope=monitoring management control`), cached and fetched again a minute before
//! `expires_in` runs out or once after a 401 (the kit's `ClientCredentials`). The host is the
//! instance's region (`app`/`us`, `eu`, `oc`, `ca`, `us2`, `fed`); `base_url` overrides it.
//!
//! - **The person** is a NinjaOne end user: `GET /v2/user/end-users` (the whole list, no paging
//!   in the API), matched on `email` (case-insensitive); the account is the end user's numeric
//!   `id`, read again by `GET /v2/user/end-user/{id}` once recorded (404: gone).
//! - **Their devices** are the end user's `assignedDeviceIds`, each read by `GET
//!   /v2/device/{id}`; one whose `assignedOwnerUid` names someone else now is listed and left
//!   alone. Or, with `find = "last_logged_on_user"`, every device of `GET
//!   /v2/devices-detailed` (paged with `pageSize` and `after` = the last device id) whose
//!   `lastLoggedInUser` is the login (case-insensitive, also as `DOMAIN\login`; the value's
//!   format is UNCONFIRMED). The devices found are listed in every summary and check, so the
//!   evidence names them.
//! - `tag_devices`: `PATCH /v2/device/{id}/custom-fields` with the fields that differ (read first
//!   with `GET …/custom-fields`; the fields must exist and allow API writes), and asset tags by
//!   name (`GET /v2/tag`, then `POST /v2/tag/device` `{assetIds, tagIdsToAdd}`). The check reads
//!   both back (asset tags from the device's `tags`, which is UNCONFIRMED to list asset tags).
//! - `run_script`: the script by name from `GET /v2/device/{id}/scripting/options`, then `POST
//!   /v2/device/{id}/script/run` `{type, id|uid, parameters, runAs}`. NinjaOne answers 204 with
//!   no run id, so the result is read from the device's activities (`GET
//!   /v2/device/{id}/activities?activityType=ACTION`, paged back with `olderThan`): the latest
//!   activity whose `sourceName` carries the script's name (after `since`, and after the
//!   request when this process made it) decides. `COMPLETED` with `activityResult` `SUCCESS` is
//!   done, another result a failure (with the script's `message`, and apply runs it again);
//!   anything else, or a device that is offline, is "requested, not yet done" and `verify` /
//!   `resume` keep reading.
//! - `set_maintenance`: `PUT /v2/device/{id}/maintenance` `{disabledFeatures, end,
//!   reasonMessage}`, `end` in epoch seconds as NinjaOne's own scripts send it (the spec says
//!   milliseconds or ISO-8601: UNCONFIRMED; a read-back value above 10^11 is taken as
//!   milliseconds); the check reads `maintenance` from `GET /v2/device/{id}`.
//! - `remove_end_user` (destructive): `DELETE /v2/user/end-user/{id}` (204; 404 is gone). Not on
//!   the `fed` instance, which lacks the endpoint: `runbook check` refuses it there.
//! - `decommission_device` (destructive, IRREVERSIBLE: the API has no way back): `POST
//!   /v2/device/{id}/decommission` (200); a device that answers 404 afterwards is counted as
//!   decommissioned (what `GET /v2/device/{id}` answers for a decommissioned device is
//!   UNCONFIRMED).
//!
//! Rollback: every apply records the pre-state of what it changes before changing it.
//! `tag_devices` records `{"devices": [{"id", "name", "tags": [{"id", "name"}] | null,
//! "custom_fields": {field: old value | null} | null}]}` (tags and fields only when the step
//! sets them; tag ids from `GET /v2/tag`), and restore puts the exact old tag set back with `PUT
//! /v2/tag/device/{id}` `{tagIds}` (§10.3: it removes every other tag; success status
//! UNCONFIRMED) and the old field values with `PATCH …/custom-fields` (null for a field that was
//! unset: UNCONFIRMED that NinjaOne clears it). `set_maintenance` records `{"devices": [{"id",
//! "name", "maintenance": {status, start, end} | null}]}`; restore ends the maintenance with
//! `DELETE /v2/device/{id}/maintenance` where there was none before, and names a window the
//! device had before (its disabled features cannot be read back) instead of guessing it.
//! Restores act on the recorded device ids, read again one by one. `run_script` (`{"script",
//! "devices": [{"id", "name", "offline"}]}`), `remove_end_user` (`{"end_user": {id, uid, email,
//! firstName, lastName, organizationId, fullPortalAccess, assignedDeviceIds} | null}`) and
//! `decommission_device` (`{"devices": [{"id", "name", "nodeClass", "approvalStatus"}]}`) record
//! theirs for the evidence but cannot be undone.
//!
//! Errors read NinjaOne's `{resultCode, errorMessage, incidentId}` (and the token endpoint's
//! `{error, error_description}`). No rate-limit figures are published; 429 and 5xx are retried
//! by the kit, honouring `Retry-After`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use url::Url;

use super::kit::auth::{ClientAuth, ClientCredentials, token_client};
use super::kit::http::{ALLOW_PLAIN, HttpClient, Request, RetryPolicy, with_query};
use super::kit::paging::{self, Paging};
use super::{
    Account, ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, NO_PARAMS,
    ParamsSpec, Provider, ProviderError, RequestLine, RequestRecord, RestoreCheck, SettingSpec,
    SettingType, StepCall, SystemConfig, params,
};

/// The scopes a token is asked for: which one script runs need is UNCONFIRMED, so all three.
pub const SCOPES: [&str; 3] = ["monitoring", "management", "control"];

/// What a recorded end user's id is.
pub const ID_KIND: &str = "NinjaOne end user id";
/// What a person found by the devices' last logged-on user is recorded as.
pub const LOGON_KIND: &str = "NinjaOne last logged-on user";

/// The instances: region name and host.
pub const REGIONS: &[(&str, &str)] = &[
    ("app", "https://app.ninjarmm.com"),
    ("us", "https://app.ninjarmm.com"),
    ("eu", "https://eu.ninjarmm.com"),
    ("oc", "https://oc.ninjarmm.com"),
    ("ca", "https://ca.ninjarmm.com"),
    ("us2", "https://us2.ninjarmm.com"),
    ("fed", "https://fed.ninjarmm.com"),
];

/// How far NinjaOne's clock may be behind this machine's, in seconds.
const CLOCK_SKEW: i64 = 300;

/// Devices (or activities) per page.
const PAGE_SIZE: usize = 200;

pub static KIND: KindSpec = KindSpec {
    name: "ninjaone",
    summary: "NinjaOne RMM (public API v2, OAuth client credentials): tag, script, maintain and \
              decommission the person's devices, remove their end-user login",
    actions: &[
        ActionSpec {
            name: "tag_devices",
            summary: "finds the person's devices (the end user's `assignedDeviceIds`, or the last \
                      logged-on user), then `PATCH /v2/device/{id}/custom-fields` with the fields \
                      that differ and `POST /v2/tag/device` with the asset tags missing; the \
                      check reads both back",
            destructive: false,
            alerts_user: false,
            revokes: false,
            inverse: Inverse::Restore(
                "put back each device's old asset tag set exactly (PUT /v2/tag/device/{id} \
                 with the recorded tag ids: tags added since are removed too) and the old \
                 values of the custom fields it set (PATCH …/custom-fields; an unset field is \
                 sent as null)",
            ),
            params: ParamsSpec::of::<TagParams>(),
        },
        ActionSpec {
            name: "run_script",
            summary: "runs a script from each device's scripting options (`POST \
                      /v2/device/{id}/script/run`, 204 without a run id); the check reads the \
                      device's activities for that script's result (`GET \
                      /v2/device/{id}/activities`): requested or offline is not done, a failure \
                      carries the script's message",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(
                "a script that ran cannot be un-run: undo what it did on the device by hand \
                 (or with another script)",
            ),
            params: ParamsSpec::of::<ScriptParams>(),
        },
        ActionSpec {
            name: "set_maintenance",
            summary: "`PUT /v2/device/{id}/maintenance` with an end time (alerts muted while the \
                      device is recovered); the check reads `maintenance` back from `GET \
                      /v2/device/{id}`",
            destructive: false,
            alerts_user: false,
            revokes: false,
            inverse: Inverse::Restore(
                "end the maintenance offboard set on each device (DELETE \
                 /v2/device/{id}/maintenance); a window a device already had before is named \
                 for putting back by hand (its disabled features cannot be read back)",
            ),
            params: ParamsSpec::of::<MaintenanceParams>(),
        },
        ActionSpec {
            name: "remove_end_user",
            summary: "`DELETE /v2/user/end-user/{id}` (the person's NinjaOne end-user login; not \
                      reversible: a new one gets a new id); the check holds once `GET \
                      /v2/user/end-user/{id}` answers 404",
            destructive: true,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(
                "a deleted NinjaOne end user cannot be brought back: creating one again gives \
                 a new id and uid, and its device ownership must be set again by hand",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "decommission_device",
            summary: "IRREVERSIBLE: `POST /v2/device/{id}/decommission` for each of the person's \
                      devices (NinjaOne has no way back); the check holds once each device is \
                      gone (404)",
            destructive: true,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(
                "NinjaOne has no recommission endpoint: a decommissioned device stays \
                 decommissioned until its agent is installed and approved again by hand",
            ),
            params: ParamsSpec::of::<FindParams>(),
        },
    ],
    settings: &[
        SettingSpec {
            name: "region",
            ty: SettingType::String,
            required: false,
            summary: "the instance: `app` (or `us`, default), `eu`, `oc`, `ca`, `us2` or `fed` \
                      (`https://{region}.ninjarmm.com`); `base_url` overrides it",
        },
        SettingSpec {
            name: "client_id",
            ty: SettingType::String,
            required: true,
            summary: "the API client's id (Administration > Apps > API > Client app IDs; client \
                      credentials grant, scopes Monitoring, Management and Control)",
        },
        SettingSpec {
            name: "client_secret",
            ty: SettingType::Secret,
            required: true,
            summary: "the API client's secret, by reference; tokens come from \
                      `{host}/ws/oauth/token`",
        },
        ALLOW_PLAIN,
    ],
    needs_base_url: false,
    url_schemes: &["https", "http"],
    needs_token: false,
    connect,
    check_action: Some(check_action),
};

/// The `fed` instance lacks `DELETE /v2/user/end-user/{id}`.
fn check_action(cfg: &SystemConfig, action: &str) -> Result<(), String> {
    let region = cfg.settings.get("region").and_then(toml::Value::as_str);
    if action == "remove_end_user" && region == Some("fed") && cfg.base_url.is_none() {
        return Err(
            "the NinjaOne `fed` instance has no `DELETE /v2/user/end-user/{id}`: remove the \
             end user by hand (a manual step)"
                .into(),
        );
    }
    Ok(())
}

/// How the person's devices are found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Find {
    /// The devices NinjaOne records the end user (found by email) as owner of
    /// (`assignedDeviceIds`, `assignedOwnerUid`).
    #[default]
    AssignedOwner,
    /// The devices whose last logged-on user is the login (`lastLoggedInUser`, also as
    /// `DOMAIN\login`).
    LastLoggedOnUser,
}

/// `decommission_device`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct FindParams {
    /// How the person's devices are found: `assigned_owner` (default) or `last_logged_on_user`.
    find: Option<Find>,
}

/// `tag_devices`' parameters (at least one of `custom_fields` and `tags`).
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct TagParams {
    /// Device custom fields to set, by field name, e.g. `{ offboardingStatus = "pending-wipe"
    /// }`; each field must exist in NinjaOne with API write access.
    custom_fields: Option<BTreeMap<String, String>>,
    /// Asset tags to add, by name (each must exist in NinjaOne: `GET /v2/tag`).
    #[schemars(length(min = 1))]
    tags: Option<Vec<String>>,
    /// How the person's devices are found: `assigned_owner` (default) or `last_logged_on_user`.
    find: Option<Find>,
}

/// Whom a script runs as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
enum RunAs {
    /// The system account (`system`, default).
    #[default]
    System,
    /// The user logged on to the device (`loggedonuser`).
    LoggedOnUser,
    /// The device's local administrator credential (`SR_LOCAL_ADMINISTRATOR`).
    LocalAdministrator,
    /// The domain administrator credential (`SR_DOMAIN_ADMINISTRATOR`).
    DomainAdministrator,
}

impl RunAs {
    fn ninja(self) -> &'static str {
        match self {
            RunAs::System => "system",
            RunAs::LoggedOnUser => "loggedonuser",
            RunAs::LocalAdministrator => "SR_LOCAL_ADMINISTRATOR",
            RunAs::DomainAdministrator => "SR_DOMAIN_ADMINISTRATOR",
        }
    }
}

/// `run_script`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ScriptParams {
    /// The script's (or built-in action's) name as the device's scripting options list it.
    #[schemars(length(min = 1))]
    script: String,
    /// The script's command-line parameters, one string (templates allowed, e.g.
    /// `"-User {{ user.login }}"`).
    parameters: Option<String>,
    /// `system` (default), `logged_on_user`, `local_administrator` or `domain_administrator`.
    run_as: Option<RunAs>,
    /// Runs of this script before this time (RFC 3339, e.g. `"{{ departure.effective_at }}"`)
    /// are not this departure's: ignored by the check and by apply's "already run" test (so a
    /// run made before it is made again by the next apply once the time has passed).
    since: Option<String>,
    /// How the person's devices are found: `assigned_owner` (default) or `last_logged_on_user`.
    find: Option<Find>,
}

/// A feature maintenance mode turns off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Feature {
    /// Alerts (conditions).
    Alerts,
    /// Patching.
    Patching,
    /// Antivirus scans.
    Avscans,
    /// Scheduled tasks.
    Tasks,
}

impl Feature {
    fn ninja(self) -> &'static str {
        match self {
            Feature::Alerts => "ALERTS",
            Feature::Patching => "PATCHING",
            Feature::Avscans => "AVSCANS",
            Feature::Tasks => "TASKS",
        }
    }
}

/// `set_maintenance`'s parameters (`until` or `hours`).
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct MaintenanceParams {
    /// When maintenance ends: an RFC 3339 time, or a `YYYY-MM-DD` date (midnight UTC).
    until: Option<String>,
    /// Or: how many hours from when the step runs.
    #[schemars(range(min = 1, max = 8760))]
    hours: Option<u32>,
    /// What is turned off: `ALERTS` (default), `PATCHING`, `AVSCANS`, `TASKS`.
    #[schemars(length(min = 1))]
    disabled_features: Option<Vec<Feature>>,
    /// Shown in NinjaOne as the maintenance reason.
    reason: Option<String>,
    /// How the person's devices are found: `assigned_owner` (default) or `last_logged_on_user`.
    find: Option<Find>,
}

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(Arc::new(NinjaOneProvider::new(cfg)?))
}

/// A connected NinjaOne instance.
pub struct NinjaOneProvider {
    http: HttpClient,
    system: String,
    page_size: usize,
    /// Script runs this process requested: (device id, script) → epoch seconds.
    requested: Mutex<HashMap<(u64, String), i64>>,
}

impl std::fmt::Debug for NinjaOneProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NinjaOneProvider")
            .field("system", &self.system)
            .finish_non_exhaustive()
    }
}

/// One device of the person's.
#[derive(Debug, Clone)]
struct Device {
    id: u64,
    name: String,
    offline: bool,
    last_contact: Option<f64>,
    raw: Value,
}

impl Device {
    fn of(v: &Value) -> Option<Device> {
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

    fn label(&self) -> String {
        format!("{} (device {})", self.name, self.id)
    }

    fn tags(&self) -> Vec<&str> {
        self.raw
            .get("tags")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
}

/// The person and their devices as read now.
struct Holdings {
    account: Account,
    /// `None`: the recorded end user is gone (404), so their devices cannot be listed.
    devices: Option<Vec<Device>>,
    /// Devices listed for the person that answered 404.
    gone: Vec<u64>,
    /// Devices listed for the person whose `assignedOwnerUid` names someone else now: left alone.
    reassigned: Vec<String>,
}

/// Where a script run stands on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Run {
    Done(String),
    Pending(String),
    Failed(String),
    NotStarted(String),
}

/// What `tag_gaps` found on one device.
struct Gaps {
    /// Custom fields still to set, with the wanted value.
    fields: BTreeMap<String, String>,
    /// Asset tags still to add, by name.
    tags: Vec<String>,
    /// What was seen, for the check.
    seen: Vec<String>,
    /// The asked fields' values now (null: unset), for the pre-state.
    old: serde_json::Map<String, Value>,
}

/// A device's asset tags as `[{id, name}]`, the ids from `GET /v2/tag` (null when no tag of
/// that name is listed).
fn tag_set(d: &Device, list: &[Value]) -> Value {
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

/// A device's maintenance window as the pre-state records it: `{id, name, maintenance:
/// {status, start, end} | null}`.
fn maintenance_of(d: &Device) -> Value {
    let m = d.raw.get("maintenance").filter(|m| m.is_object()).map(
        |m| json!({ "status": m.get("status"), "start": m.get("start"), "end": m.get("end") }),
    );
    json!({ "id": d.id, "name": d.name, "maintenance": m })
}

/// A window that is on (pending or in progress) and not yet over.
fn window_on(m: &Value) -> bool {
    let status = m.get("status").and_then(Value::as_str).unwrap_or("");
    let end = m
        .get("end")
        .and_then(Value::as_f64)
        .map(|t| if t > 1e11 { t / 1000.0 } else { t });
    matches!(status, "PENDING" | "IN_MAINTENANCE") && end.is_none_or(|e| e > now_secs() as f64)
}

/// Epoch seconds (or milliseconds, above 10^11) as RFC 3339.
fn when(t: f64) -> String {
    let secs = if t > 1e11 { t / 1000.0 } else { t };
    chrono::DateTime::from_timestamp(secs as i64, 0).map_or_else(
        || format!("{t}"),
        |d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An RFC 3339 time or a `YYYY-MM-DD` date (midnight UTC) as epoch seconds.
fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
}

/// Whether a device's `lastLoggedInUser` is the login (as is, or as `DOMAIN\login`).
fn logon_matches(value: &str, login: &str) -> bool {
    let v = value.trim();
    let bare = v.rsplit('\\').next().unwrap_or(v);
    !login.is_empty() && (v.eq_ignore_ascii_case(login) || bare.eq_ignore_ascii_case(login))
}

/// The state of `script` from the device's activities (newest first or not: the highest id
/// decides), counting only activities at or after `bound` (epoch seconds).
fn run_state(activities: &[Value], script: &str, bound: Option<i64>) -> Run {
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

/// NinjaOne's error body: `errorMessage (resultCode, incident …)`, or OAuth's
/// `error: error_description`.
pub fn ninjaone_error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let Some(m) = s("errorMessage") {
        let mut out = m.to_string();
        match (s("resultCode"), s("incidentId")) {
            (Some(c), Some(i)) => out.push_str(&format!(" ({c}, incident {i})")),
            (Some(c), None) => out.push_str(&format!(" ({c})")),
            (None, Some(i)) => out.push_str(&format!(" (incident {i})")),
            (None, None) => {}
        }
        return Some(out);
    }
    if let Some(c) = s("resultCode") {
        return Some(c.to_string());
    }
    match (s("error"), s("error_description")) {
        (Some(e), Some(d)) => Some(format!("{e}: {d}")),
        (Some(e), None) => Some(e.to_string()),
        _ => None,
    }
}

const FORBIDDEN_HINT: &str = "the API client lacks a scope or the technician role behind it \
                              lacks a permission this call needs (Administration > Apps > API)";

/// A 404 inside a device read is no verdict on the person: only the lookup may say `NotFound`.
fn not_the_person(e: ProviderError) -> ProviderError {
    match e {
        ProviderError::NotFound(m) => ProviderError::Permanent(m),
        e => e,
    }
}

impl NinjaOneProvider {
    /// Build from the system's configuration. No I/O; works without the secret (planning).
    pub fn new(cfg: &SystemConfig) -> anyhow::Result<NinjaOneProvider> {
        let client_id = match cfg.settings.get("client_id") {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            _ => anyhow::bail!("system `{}`: `client_id` is required (a string)", cfg.name),
        };
        let mut cfg = cfg.clone();
        if cfg.base_url.is_none() {
            let region = match cfg.settings.get("region") {
                None => "app",
                Some(toml::Value::String(r)) => r.as_str(),
                Some(other) => anyhow::bail!(
                    "system `{}`: `region` must be a string, not {}",
                    cfg.name,
                    other.type_str()
                ),
            };
            let Some((_, host)) = REGIONS.iter().find(|(r, _)| *r == region) else {
                anyhow::bail!(
                    "system `{}`: unknown NinjaOne region `{region}` (one of app, us, eu, oc, ca, \
                     us2, fed; or set base_url)",
                    cfg.name
                );
            };
            cfg.base_url = Some((*host).to_string());
        }
        let mut http = HttpClient::new(&cfg)?
            .with_accept("application/json")
            .with_error_parser(ninjaone_error_message)
            .with_forbidden_hint(FORBIDDEN_HINT);
        if let Some(secret) = cfg.secrets.get("client_secret") {
            let token_url = http
                .endpoint(&["ws", "oauth", "token"])
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let creds = ClientCredentials::new(
                token_client(&cfg).map_err(|e| anyhow::anyhow!("system `{}`: {e}", cfg.name))?,
                token_url.as_str(),
                &client_id,
                ClientAuth::SecretPost(secret.clone()),
            )
            .map_err(|e| anyhow::anyhow!("system `{}`: {e}", cfg.name))?
            .with_scopes(SCOPES);
            http = http.with_auth(Arc::new(creds));
        }
        Ok(NinjaOneProvider {
            http,
            system: cfg.name.clone(),
            page_size: PAGE_SIZE,
            requested: Mutex::default(),
        })
    }

    /// Replace the retry policy (tests use tiny budgets).
    pub fn with_retry(mut self, retry: RetryPolicy) -> NinjaOneProvider {
        self.http = self.http.with_retry(retry);
        self
    }

    /// Devices or activities per page (default 200; NinjaOne takes 10 to 1000 activities).
    pub fn with_page_size(mut self, size: usize) -> NinjaOneProvider {
        self.page_size = size.max(1);
        self
    }

    fn err(&self, msg: impl std::fmt::Display) -> ProviderError {
        ProviderError::Permanent(format!("system `{}`: {msg}", self.system))
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut all = vec!["v2"];
        all.extend_from_slice(segments);
        self.http.endpoint(&all)
    }

    async fn get_json(
        &self,
        url: Url,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<Value>, ProviderError> {
        let resp = self
            .http
            .send(Request::get(url).allow(reqwest::StatusCode::NOT_FOUND), ctx)
            .await?;
        records.push(resp.record.clone());
        if resp.status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        resp.json().map(Some)
    }

    /// The end user whose email is the login, from `GET /v2/user/end-users`.
    async fn end_user_by_email(
        &self,
        login: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Value, ProviderError> {
        let login = login.trim();
        if login.is_empty() {
            return Err(self.err("the login to look up is empty"));
        }
        let url = self.url(&["user", "end-users"])?;
        let resp = self.http.send(Request::get(url), ctx).await?;
        records.push(resp.record.clone());
        let all: Vec<Value> = resp.json()?;
        let found: Vec<&Value> = all
            .iter()
            .filter(|u| {
                u.get("email")
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.trim().eq_ignore_ascii_case(login))
            })
            .collect();
        match found.as_slice() {
            [] => Err(ProviderError::NotFound(format!(
                "system `{}`: no NinjaOne end user has the email {login:?} (GET \
                 /v2/user/end-users, {} end users)",
                self.system,
                all.len()
            ))),
            [u] => Ok((*u).clone()),
            _ => Err(self.err(format!(
                "{} NinjaOne end users have the email {login:?}; refusing to guess",
                found.len()
            ))),
        }
    }

    fn account_of(&self, user: &Value, login: &str) -> Result<Account, ProviderError> {
        let id = user
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| self.err("GET /v2/user/end-users answered an end user without an id"))?;
        let email = user.get("email").and_then(Value::as_str).unwrap_or(login);
        Ok(Account::new(id.to_string(), ID_KIND, email))
    }

    /// The end user: by the recorded id (`None` when gone) or by email.
    async fn end_user(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(Account, Option<Value>), ProviderError> {
        match call.account {
            Some(a) => {
                if a.id_kind != ID_KIND || a.id.parse::<u64>().is_err() {
                    return Err(self.err(format!(
                        "the recorded account {a} is not a NinjaOne end user id"
                    )));
                }
                let url = self.url(&["user", "end-user", &a.id])?;
                let user = self.get_json(url, ctx, records).await?;
                Ok((a.clone(), user))
            }
            None => {
                let user = self.end_user_by_email(call.login, ctx, records).await?;
                Ok((self.account_of(&user, call.login)?, Some(user)))
            }
        }
    }

    /// The person and their devices.
    async fn holdings(
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
    fn devices_or<'h>(&self, h: &'h Holdings) -> Result<&'h [Device], ProviderError> {
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
    fn per_device(h: &Holdings, devices: &[Device], ok: bool, each: Vec<String>) -> CheckOutcome {
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

    fn listing(h: &Holdings, devices: &[Device]) -> String {
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

    /// The ids of the named asset tags, in `tags` (from `GET /v2/tag`).
    fn tag_ids(
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
    async fn tag_list(
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
    async fn tag_gaps(
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

    async fn tag(&self, call: &StepCall<'_>, ctx: &CallCtx) -> Result<ApplyOutcome, ProviderError> {
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

    async fn check_tag(
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

    /// The device's activities of type ACTION (every page, newest first).
    async fn activities(
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
    async fn script_state(
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

    async fn run_script(
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
    async fn run_body(
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

    async fn check_script(
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

    /// The wanted end (epoch seconds), and whether any active window counts (`hours`).
    fn maintenance_end(&self, p: &MaintenanceParams) -> Result<(i64, bool), ProviderError> {
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
    fn maintenance_holds(d: &Device, end: i64, any: bool) -> (bool, String) {
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

    async fn maintain(
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

    async fn check_maintenance(
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

    async fn remove_end_user(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (account, user) = self.end_user(call, ctx, &mut records).await?;
        let Some(user) = user else {
            ctx.before(&json!({ "end_user": null }));
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("the end user {account} is already gone from NinjaOne (404)"),
                requests: records,
                account: Some(account),
            });
        };
        ctx.identified(&account);
        let keep = [
            "id",
            "uid",
            "email",
            "firstName",
            "lastName",
            "organizationId",
            "fullPortalAccess",
            "assignedDeviceIds",
        ];
        let kept: serde_json::Map<String, Value> = keep
            .iter()
            .filter_map(|k| user.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        ctx.before(&json!({ "end_user": kept }));
        let url = self.url(&["user", "end-user", &account.id])?;
        let resp = self
            .http
            .send(
                Request::delete(url).allow(reqwest::StatusCode::NOT_FOUND),
                ctx,
            )
            .await?;
        records.push(resp.record.clone());
        let gone_already = resp.status == reqwest::StatusCode::NOT_FOUND;
        Ok(ApplyOutcome {
            changed: !gone_already,
            summary: if gone_already {
                format!("the end user {account} was already gone (404)")
            } else {
                format!(
                    "removed the NinjaOne end user {account} (DELETE → {})",
                    resp.status.as_u16()
                )
            },
            requests: records,
            account: Some(account),
        })
    }

    async fn check_end_user(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let (account, user) = self.end_user(call, ctx, &mut records).await?;
        Ok(match user {
            None => CheckOutcome {
                revoked: true,
                observed: "404 (end user deleted)".into(),
                account: Some(account),
            },
            Some(u) => CheckOutcome {
                revoked: false,
                observed: format!(
                    "the end user still exists (enabled: {}, {} assigned device(s))",
                    u.get("enabled")
                        .map_or("not reported".to_string(), Value::to_string),
                    u.get("assignedDeviceIds")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                ),
                account: Some(account),
            },
        })
    }

    // ---- decommission_device ----------------------------------------------------------------

    async fn decommission(
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

    async fn check_decommission(
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

    /// The recorded devices of a pre-state.
    fn recorded_devices(before: &Value) -> Vec<Value> {
        before
            .get("devices")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// The account rollback acts for: the one the apply recorded.
    fn recorded_account(&self, call: &StepCall<'_>) -> Result<Account, ProviderError> {
        call.account.cloned().ok_or_else(|| {
            self.err(format!(
                "step `{}`: no account was recorded for this step; nothing to restore",
                call.step_id
            ))
        })
    }

    /// `GET /v2/device/{id}`: `None` when gone (404).
    async fn device_by_id(
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
    async fn fields_now(
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
    fn tag_names(tags: &[Value]) -> std::collections::BTreeSet<String> {
        tags.iter()
            .filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_string))
            .collect()
    }

    async fn restore_tags(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let account = self.recorded_account(call)?;
        let mut records = Vec::new();
        let mut done = Vec::new();
        let mut notes = Vec::new();
        for rd in Self::recorded_devices(before) {
            let Some(id) = rd.get("id").and_then(Value::as_u64) else {
                continue;
            };
            let Some(d) = self.device_by_id(id, ctx, &mut records).await? else {
                notes.push(format!("device {id} is gone (404)"));
                continue;
            };
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

    async fn check_tags_restored(
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
        for rd in devices {
            let Some(id) = rd.get("id").and_then(Value::as_u64) else {
                continue;
            };
            let Some(d) = self.device_by_id(id, ctx, &mut records).await? else {
                missing.push(format!("device {id} is gone (404)"));
                continue;
            };
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
    fn wanted_window(rd: &Value) -> Option<Value> {
        rd.get("maintenance")
            .filter(|m| m.is_object() && window_on(m))
            .cloned()
    }

    async fn restore_maintenance(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let account = self.recorded_account(call)?;
        let mut records = Vec::new();
        let mut done = Vec::new();
        let mut notes = Vec::new();
        for rd in Self::recorded_devices(before) {
            let Some(id) = rd.get("id").and_then(Value::as_u64) else {
                continue;
            };
            let Some(d) = self.device_by_id(id, ctx, &mut records).await? else {
                notes.push(format!("device {id} is gone (404)"));
                continue;
            };
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

    async fn check_maintenance_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let account = self.recorded_account(call)?;
        let mut records = Vec::new();
        let mut after = Vec::new();
        let mut missing = Vec::new();
        for rd in Self::recorded_devices(before) {
            let Some(id) = rd.get("id").and_then(Value::as_u64) else {
                continue;
            };
            let Some(d) = self.device_by_id(id, ctx, &mut records).await? else {
                missing.push(format!("device {id} is gone (404)"));
                continue;
            };
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

    fn unknown_action(&self, action: &str) -> ProviderError {
        self.err(format!("the ninjaone kind has no action `{action}`"))
    }

    fn find_of(call: &StepCall<'_>) -> Find {
        call.params
            .get("find")
            .and_then(Value::as_str)
            .and_then(|f| serde_json::from_value(json!(f)).ok())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Provider for NinjaOneProvider {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        let base = self
            .http
            .base_url()
            .as_str()
            .trim_end_matches('/')
            .to_string();
        let line = |method: &str, path: &str| RequestLine {
            method: method.into(),
            url: format!("{base}{path}"),
        };
        let mut lines = Vec::new();
        if call.action == "remove_end_user" {
            lines.push(line(
                "GET",
                "/v2/user/end-users (the end user whose email is the login)",
            ));
            lines.push(line("DELETE", "/v2/user/end-user/{id}"));
            return lines;
        }
        match Self::find_of(call) {
            Find::AssignedOwner => {
                lines.push(line(
                    "GET",
                    "/v2/user/end-users (the end user whose email is the login: assignedDeviceIds)",
                ));
                lines.push(line("GET", "/v2/device/{id} (each assigned device)"));
            }
            Find::LastLoggedOnUser => lines.push(line(
                "GET",
                &format!(
                    "/v2/devices-detailed?pageSize={}&after={{lastId}} (devices whose lastLoggedInUser is the login)",
                    self.page_size
                ),
            )),
        }
        match call.action {
            "tag_devices" => {
                let p: Option<TagParams> = params::parse(call.action, call.params).ok();
                let fields = p.as_ref().and_then(|p| p.custom_fields.as_ref());
                let tags = p.as_ref().and_then(|p| p.tags.as_ref());
                if let Some(f) = fields {
                    lines.push(line("GET", "/v2/device/{id}/custom-fields?withInheritance=false"));
                    let keys: Vec<String> = f.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                    lines.push(line(
                        "PATCH",
                        &format!("/v2/device/{{id}}/custom-fields ({}; only fields that differ)", keys.join(", ")),
                    ));
                }
                if let Some(t) = tags {
                    lines.push(line("GET", "/v2/tag"));
                    lines.push(line(
                        "POST",
                        &format!("/v2/tag/device (add tags {}; only those missing)", t.join(", ")),
                    ));
                }
            }
            "run_script" => {
                let p: Option<ScriptParams> = params::parse(call.action, call.params).ok();
                let script = p.as_ref().map_or("?", |p| p.script.as_str());
                let run_as = p.as_ref().and_then(|p| p.run_as).unwrap_or_default().ninja();
                lines.push(line(
                    "GET",
                    &format!(
                        "/v2/device/{{id}}/activities?activityType=ACTION&pageSize={}&olderThan={{lastId}} (runs of {script:?})",
                        self.page_size.clamp(10, 1000)
                    ),
                ));
                lines.push(line("GET", "/v2/device/{id}/scripting/options"));
                lines.push(line(
                    "POST",
                    &format!("/v2/device/{{id}}/script/run ({script:?} as {run_as}; 204, no run id)"),
                ));
            }
            "set_maintenance" => lines.push(line(
                "PUT",
                "/v2/device/{id}/maintenance (disabledFeatures, end; only devices not already in maintenance)",
            )),
            "decommission_device" => lines.push(line(
                "POST",
                "/v2/device/{id}/decommission (IRREVERSIBLE: cannot be undone)",
            )),
            _ => {}
        }
        lines
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "tag_devices" => self.tag(call, ctx).await,
            "run_script" => self.run_script(call, ctx).await,
            "set_maintenance" => self.maintain(call, ctx).await,
            "remove_end_user" => self.remove_end_user(call, ctx).await,
            "decommission_device" => self.decommission(call, ctx).await,
            other => Err(self.unknown_action(other)),
        }
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        match call.action {
            "tag_devices" => self.check_tag(call, ctx).await,
            "run_script" => self.check_script(call, ctx).await,
            "set_maintenance" => self.check_maintenance(call, ctx).await,
            "remove_end_user" => self.check_end_user(call, ctx).await,
            "decommission_device" => self.check_decommission(call, ctx).await,
            other => Err(self.unknown_action(other)),
        }
    }

    fn describe_restore(&self, call: &StepCall<'_>, before: &Value) -> Vec<RequestLine> {
        let base = self
            .http
            .base_url()
            .as_str()
            .trim_end_matches('/')
            .to_string();
        let line = |method: &str, path: String| RequestLine {
            method: method.into(),
            url: format!("{base}{path}"),
        };
        let mut lines = Vec::new();
        for rd in Self::recorded_devices(before) {
            let Some(id) = rd.get("id").and_then(Value::as_u64) else {
                continue;
            };
            lines.push(line("GET", format!("/v2/device/{id}")));
            match call.action {
                "tag_devices" => {
                    if let Some(t) = rd.get("tags").and_then(Value::as_array) {
                        let ids: Vec<String> = t.iter().map(|t| t["id"].to_string()).collect();
                        lines.push(line(
                            "PUT",
                            format!(
                                "/v2/tag/device/{id} (tagIds [{}]; only if the set differs)",
                                ids.join(", ")
                            ),
                        ));
                    }
                    if let Some(f) = rd.get("custom_fields").and_then(Value::as_object) {
                        lines.push(line(
                            "GET",
                            format!("/v2/device/{id}/custom-fields?withInheritance=false"),
                        ));
                        let kv: Vec<String> = f.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        lines.push(line(
                            "PATCH",
                            format!(
                                "/v2/device/{id}/custom-fields ({}; only fields that differ)",
                                kv.join(", ")
                            ),
                        ));
                    }
                }
                "set_maintenance" if Self::wanted_window(&rd).is_none() => lines.push(line(
                    "DELETE",
                    format!("/v2/device/{id}/maintenance (if in maintenance)"),
                )),
                _ => {}
            }
        }
        lines
    }

    async fn restore(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "tag_devices" => self.restore_tags(call, before, ctx).await,
            "set_maintenance" => self.restore_maintenance(call, before, ctx).await,
            other => Err(self.err(format!("action `{other}` cannot be undone"))),
        }
    }

    async fn check_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        match call.action {
            "tag_devices" => self.check_tags_restored(call, before, ctx).await,
            "set_maintenance" => self.check_maintenance_restored(call, before, ctx).await,
            other => Err(self.err(format!("action `{other}` cannot be undone"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ninjaone_errors_read_well() {
        let body =
            br#"{"resultCode":"FAILURE","errorMessage":"Device not found","incidentId":"a1b2"}"#;
        assert_eq!(
            ninjaone_error_message(body).as_deref(),
            Some("Device not found (FAILURE, incident a1b2)")
        );
        let oauth = br#"{"error":"invalid_client","error_description":"Bad client credentials"}"#;
        assert_eq!(
            ninjaone_error_message(oauth).as_deref(),
            Some("invalid_client: Bad client credentials")
        );
        assert_eq!(ninjaone_error_message(b"<html>"), None);
    }

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

    #[test]
    fn logons_match_with_or_without_the_domain() {
        assert!(logon_matches("CORP\\jdoe", "jdoe"));
        assert!(logon_matches("jdoe", "JDoe"));
        assert!(logon_matches("jdoe@corp.example", "jdoe@corp.example"));
        assert!(!logon_matches("CORP\\jdoe2", "jdoe"));
        assert!(!logon_matches("", ""));
    }

    #[test]
    fn regions_pick_the_host_and_fed_cannot_remove_end_users() {
        let mut c = SystemConfig::new("rmm", "ninjaone", None);
        c.settings
            .insert("client_id".into(), toml::Value::String("cid".into()));
        c.settings
            .insert("region".into(), toml::Value::String("eu".into()));
        let p = NinjaOneProvider::new(&c).unwrap();
        assert_eq!(p.http.base_url().as_str(), "https://eu.ninjarmm.com/");
        c.settings
            .insert("region".into(), toml::Value::String("mars".into()));
        let e = NinjaOneProvider::new(&c).unwrap_err();
        assert!(
            e.to_string().contains("unknown NinjaOne region `mars`"),
            "{e}"
        );
        c.settings
            .insert("region".into(), toml::Value::String("fed".into()));
        assert!(check_action(&c, "remove_end_user").is_err());
        assert!(check_action(&c, "run_script").is_ok());
        let dec = KIND.action("decommission_device").unwrap();
        let rm = KIND.action("remove_end_user").unwrap();
        assert!(dec.destructive && rm.destructive);
        assert!(!KIND.action("tag_devices").unwrap().destructive);
    }

    #[test]
    fn times_read_as_rfc3339_or_dates() {
        assert_eq!(parse_time("2026-12-01T10:00:00Z"), Some(1_796_119_200));
        assert_eq!(parse_time("2026-12-01"), Some(1_796_083_200));
        assert_eq!(parse_time("tomorrow"), None);
    }
}
