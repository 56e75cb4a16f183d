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
//!
//! The code lives by concern: `client` (the HTTP client and NinjaOne's errors), `end_users`
//! (the person, `remove_end_user`), `devices` (finding the devices, `decommission_device`),
//! `tags` (`tag_devices`), `scripts` (`run_script`), `maintenance` (`set_maintenance`) and
//! `undo` (the restores); this file holds the action table and the `Provider` dispatch.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::kit::http::{ALLOW_PLAIN, HttpClient};
use super::{
    ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, NO_PARAMS, ParamsSpec,
    Provider, ProviderError, RequestLine, RestoreCheck, SettingSpec, SettingType, StepCall,
    SystemConfig, params,
};

mod client;
mod devices;
mod end_users;
mod maintenance;
mod scripts;
mod tags;
mod undo;

pub use client::ninjaone_error_message;

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

impl NinjaOneProvider {
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
