//! Jamf Pro (the Jamf Pro API, `{base_url}/api/…`): lock and erase the person's Macs, iPhones
//! and iPads by MDM command.
//!
//! Requests carry a bearer token from Jamf's OAuth client credentials endpoint
//! (`POST {base_url}/api/oauth/token`, form `grant_type=client_credentials`, `client_id`,
//! `client_secret`; an API client and its role, Jamf Pro 10.49+), cached and fetched again a
//! minute before `expires_in` runs out or once after a 401 (the kit's `ClientCredentials`).
//!
//! - The person's computers: `GET /api/v1/computers-inventory?section=GENERAL&section=
//!   USER_AND_LOCATION&filter=userAndLocation.username=="…"` (or `userAndLocation.email`, with
//!   `match = "email"`), the value quoted and escaped as RSQL wants, every page read (`page`
//!   0-based, `page-size`, until `totalCount`). An MDM command names a computer by its
//!   `general.managementId`, not its inventory `id`; both are listed in the summary.
//! - The person's mobile devices (iPhone, iPad, and whatever else Jamf lists there): `GET
//!   /api/v2/mobile-devices/detail?section=GENERAL&section=USER_AND_LOCATION&filter=username==
//!   "…"` (or `emailAddress`), paged the same way. Where the inventory record carries the
//!   management id is UNCONFIRMED (likely `general.managementId`, read when present); `GET
//!   /api/v2/mobile-devices/{id}` (MobileDeviceV2) is CONFIRMED to carry `managementId` and is
//!   read for each device whose inventory record lacks it.
//! - `lock_mobile_device` / `erase_mobile_device`: the same commands, one family each: a
//!   computer action never touches a phone and the other way round. A mobile lock has no PIN
//!   (`message`, `phoneNumber` only); a mobile erase may send `preserveDataPlan`,
//!   `disallowProximitySetup` and `returnToService.enabled`, each a property of Jamf's
//!   EraseDeviceCommand description (Jamf's privileges: Read Mobile Devices, Send Mobile Device
//!   Remote Lock Command, Send Mobile Device Remote Wipe Command).
//! - `lock_computer`: `POST /api/v2/mdm/commands` with `DEVICE_LOCK` and the PIN;
//!   `erase_computer` (destructive): the same with `ERASE_DEVICE`. A computer whose last command
//!   of that type is pending or acknowledged is not sent another.
//! - The check reads each computer's commands back: `GET /api/v2/mdm/commands?filter=
//!   clientManagementId=="…";command==DEVICE_LOCK` (paged). The Mac carries a command out when it
//!   next checks in, so only `ACKNOWLEDGED` counts as done; `PENDING` and `NOT_NOW` are
//!   "requested, not yet done" (not revoked, with when it was sent), `ERROR` is a failure (and
//!   apply sends the command again).
//!
//! Rollback: none of the four can be undone (a lock is lifted with the PIN or passcode at the
//! device, an erase is final). Each apply still records the pre-state before the first
//! command: `{"command", "devices": [{"id", "name", "managementId", "last_command":
//! "none"|"pending"|"acknowledged"|"error"|"unmanaged", "seen"}]}`, never the PIN.
//!
//! The PIN is a secret: the params hold a reference to it (`pin = { env = "…" }`), read when the
//! step runs. The step's params are journaled as written, and the journal only ever records a
//! request's method, URL and status, so the PIN never reaches the journal, the evidence or a
//! plan.
//!
//! Jamf Pro has no rate-limit headers and asks for at most five concurrent connections: a
//! system's `max_concurrency` is capped at [`MAX_CONNECTIONS`]. 429 and 503 are retried with
//! backoff by the kit. Errors read `code: description` from Jamf's
//! `{"httpStatus":…,"errors":[{"code","field","description","id"}]}`.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use url::Url;

use super::kit::auth::{ClientAuth, ClientCredentials, token_client};
use super::kit::http::{ALLOW_PLAIN, HttpClient, Request, RetryPolicy, with_query};
use super::kit::paging::{self, Paging};
use super::{
    Account, ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, ParamsSpec,
    Provider, ProviderError, RequestLine, RequestRecord, SettingSpec, SettingType, StepCall,
    SystemConfig, params,
};
use crate::runbook::SecretRef;

/// Jamf asks API clients for at most this many concurrent connections.
pub const MAX_CONNECTIONS: usize = 5;

/// Items per page of an inventory or command list.
const PAGE_SIZE: usize = 100;

pub static KIND: KindSpec = KindSpec {
    name: "jamf",
    summary: "Jamf Pro (Jamf Pro API, OAuth API client): lock or erase the person's Macs, iPhones \
              and iPads by MDM command",
    actions: &[
        ActionSpec {
            name: "lock_computer",
            summary: "finds the person's computers (`GET /api/v1/computers-inventory`, filtered \
                      on `userAndLocation.username` or `.email`, every page), then `POST \
                      /api/v2/mdm/commands` `DEVICE_LOCK` with the PIN to each one not already \
                      locked or pending; the check reads the commands back (`GET \
                      /api/v2/mdm/commands`) and holds once every computer acknowledged it \
                      (pending is requested, not done)",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(
                "a locked Mac is unlocked with its PIN at the Mac, by hand: there is no \
                 command that undoes a lock",
            ),
            params: ParamsSpec::of::<LockParams>(),
        },
        ActionSpec {
            name: "erase_computer",
            summary: "IRREVERSIBLE: `POST /api/v2/mdm/commands` `ERASE_DEVICE` to each of the \
                      person's computers (found as for `lock_computer`) not already erased or \
                      pending; the check holds once every computer acknowledged the erase",
            destructive: true,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(
                "an erased Mac stays erased: its data cannot be brought back (restore it from \
                 a backup and enroll it again by hand)",
            ),
            params: ParamsSpec::of::<EraseParams>(),
        },
        ActionSpec {
            name: "lock_mobile_device",
            summary: "finds the person's mobile devices (`GET /api/v2/mobile-devices/detail`, \
                      filtered on `username` or `emailAddress`, every page; the management id \
                      from `general.managementId`, else `GET /api/v2/mobile-devices/{id}`), then \
                      `POST /api/v2/mdm/commands` `DEVICE_LOCK` (no PIN) to each one not already \
                      locked or pending; the check holds once every device acknowledged it",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(
                "a locked iPhone or iPad is unlocked with its passcode on the device, by hand: \
                 there is no command that undoes a lock",
            ),
            params: ParamsSpec::of::<MobileLockParams>(),
        },
        ActionSpec {
            name: "erase_mobile_device",
            summary: "IRREVERSIBLE: `POST /api/v2/mdm/commands` `ERASE_DEVICE` to each of the \
                      person's mobile devices (found as for `lock_mobile_device`) not already \
                      erased or pending; the check holds once every device acknowledged the \
                      erase",
            destructive: true,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(
                "an erased iPhone or iPad stays erased: its data cannot be brought back \
                 (restore it from a backup and enroll it again by hand)",
            ),
            params: ParamsSpec::of::<MobileEraseParams>(),
        },
    ],
    settings: &[
        SettingSpec {
            name: "client_id",
            ty: SettingType::String,
            required: true,
            summary: "the Jamf Pro API client's id (Settings > API roles and clients); its role \
                      needs View MDM command information in Jamf Pro API, and for Macs Read \
                      Computers and Send Computer Remote Lock Command / Send Computer Remote Wipe \
                      Command, for iPhones and iPads Read Mobile Devices and Send Mobile Device \
                      Remote Lock Command / Send Mobile Device Remote Wipe Command",
        },
        SettingSpec {
            name: "client_secret",
            ty: SettingType::Secret,
            required: true,
            summary: "the API client's secret, by reference; tokens come from \
                      `{base_url}/api/oauth/token`",
        },
        ALLOW_PLAIN,
    ],
    needs_base_url: true,
    url_schemes: &["https", "http"],
    needs_token: false,
    connect,
    check_action: None,
};

/// How the person is found among the devices' user assignments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Match {
    /// The device's assigned username equals the person's login.
    #[default]
    Username,
    /// The device's assigned user's email equals the person's login.
    Email,
}

impl Match {
    /// The RSQL field of `family`'s inventory that holds it.
    fn field(self, family: Family) -> &'static str {
        match (family, self) {
            (Family::Computer, Match::Username) => "userAndLocation.username",
            (Family::Computer, Match::Email) => "userAndLocation.email",
            (Family::Mobile, Match::Username) => "username",
            (Family::Mobile, Match::Email) => "emailAddress",
        }
    }

    fn id_kind(self) -> &'static str {
        match self {
            Match::Username => "Jamf username",
            Match::Email => "Jamf user email",
        }
    }

    /// The match a recorded account was found with.
    fn of(account: &Account) -> Match {
        if account.id_kind == Match::Email.id_kind() {
            Match::Email
        } else {
            Match::Username
        }
    }
}

/// A PIN, by reference: the same shapes as any secret reference (read by [`SecretRef`]), shown
/// in the schema and the reference as one table, `{ env = "…" }`, `{ file = "…" }` or
/// `{ command = […] }`.
#[derive(Debug, serde::Deserialize)]
#[serde(transparent)]
struct PinRef(SecretRef);

impl schemars::JsonSchema for PinRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PinRef".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "properties": {
                "env": { "type": "string", "description": "an environment variable" },
                "file": { "type": "string", "description": "a file (its first line)" },
                "command": {
                    "type": "array",
                    "items": { "type": "string" },
                    "description": "a command and its arguments (its output, trimmed)"
                }
            },
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": false
        })
    }
}

/// `lock_computer`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct LockParams {
    /// The 6-digit PIN that unlocks the Mac, by reference (`{ env = "…" }`, `{ file = "…" }`,
    /// `{ command = […] }`), read when the step runs: a PIN written here would be kept in the
    /// journal with the step.
    pin: PinRef,
    /// Shown on the locked Mac's screen.
    message: Option<String>,
    /// A phone number shown on the locked Mac's screen.
    phone_number: Option<String>,
    /// Which user field of the computer inventory holds the person's login: `username`
    /// (default) or `email`.
    #[serde(rename = "match")]
    matching: Option<Match>,
}

/// What an erase does when the Mac cannot be erased by Erase All Content and Settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
enum Obliteration {
    /// Jamf's and Apple's default.
    Default,
    /// Do not fall back to obliteration.
    DoNotObliterate,
    /// Obliterate, with a warning.
    ObliterateWithWarning,
    /// Always obliterate.
    Always,
}

impl Obliteration {
    fn as_str(self) -> &'static str {
        match self {
            Obliteration::Default => "Default",
            Obliteration::DoNotObliterate => "DoNotObliterate",
            Obliteration::ObliterateWithWarning => "ObliterateWithWarning",
            Obliteration::Always => "Always",
        }
    }
}

/// `erase_computer`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct EraseParams {
    /// The 6-digit Find My PIN older (Intel, no T2) Macs ask for after an erase, by reference
    /// (`{ env = "…" }`, `{ file = "…" }`, `{ command = […] }`); Macs with Apple silicon or a T2
    /// chip ignore it.
    pin: Option<PinRef>,
    /// `Default` (default), `DoNotObliterate`, `ObliterateWithWarning` or `Always`.
    obliteration_behavior: Option<Obliteration>,
    /// Which user field of the computer inventory holds the person's login: `username`
    /// (default) or `email`.
    #[serde(rename = "match")]
    matching: Option<Match>,
}

/// `lock_mobile_device`'s parameters (an iPhone or iPad lock takes no PIN: the device's own
/// passcode unlocks it).
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct MobileLockParams {
    /// Shown on the locked device's screen.
    message: Option<String>,
    /// A phone number shown on the locked device's screen.
    phone_number: Option<String>,
    /// Which user field of the mobile device inventory holds the person's login: `username`
    /// (default) or `email` (`emailAddress`).
    #[serde(rename = "match")]
    matching: Option<Match>,
}

/// `erase_mobile_device`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct MobileEraseParams {
    /// Keep the data plan of an iPhone or iPad with an eSIM (iOS 11+; default false).
    preserve_data_plan: Option<bool>,
    /// Skip Proximity Setup on the next start (iOS 11+; default false).
    disallow_proximity_setup: Option<bool>,
    /// Return to Service (iOS 17+, Jamf Pro 10.50+): the device enrolls again by itself after
    /// the erase (sent as `returnToService.enabled`, without profile data: UNCONFIRMED that
    /// Jamf then supplies the enrollment and Wi-Fi profiles itself).
    return_to_service: Option<bool>,
    /// Which user field of the mobile device inventory holds the person's login: `username`
    /// (default) or `email` (`emailAddress`).
    #[serde(rename = "match")]
    matching: Option<Match>,
}

/// The kind of device an action addresses: each action reads one inventory and sends to that
/// family only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// Macs: `GET /api/v1/computers-inventory`.
    Computer,
    /// iPhones, iPads (and other devices Jamf lists as mobile): `GET
    /// /api/v2/mobile-devices/detail`.
    Mobile,
}

impl Family {
    fn inventory_path(self) -> &'static [&'static str] {
        match self {
            Family::Computer => &["api", "v1", "computers-inventory"],
            Family::Mobile => &["api", "v2", "mobile-devices", "detail"],
        }
    }

    /// The inventory, as written in messages.
    fn inventory(self) -> &'static str {
        match self {
            Family::Computer => "GET /api/v1/computers-inventory",
            Family::Mobile => "GET /api/v2/mobile-devices/detail",
        }
    }

    /// The inventory record's id.
    fn id_pointer(self) -> &'static str {
        match self {
            Family::Computer => "/id",
            Family::Mobile => "/mobileDeviceId",
        }
    }

    /// The inventory record's name (for a mobile device `general.displayName`, UNCONFIRMED;
    /// the id stands in when it is missing).
    fn name_pointer(self) -> &'static str {
        match self {
            Family::Computer => "/general/name",
            Family::Mobile => "/general/displayName",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Family::Computer => "computer",
            Family::Mobile => "mobile device",
        }
    }

    /// What carries a command out, in a sentence.
    fn device(self) -> &'static str {
        match self {
            Family::Computer => "Mac",
            Family::Mobile => "iPhone or iPad",
        }
    }

    fn read_privilege(self) -> &'static str {
        match self {
            Family::Computer => "Read Computers",
            Family::Mobile => "Read Mobile Devices",
        }
    }
}

/// The MDM command an action sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Lock,
    Erase,
}

impl Command {
    /// The device family and command of an action.
    fn of(action: &str) -> Option<(Family, Command)> {
        match action {
            "lock_computer" => Some((Family::Computer, Command::Lock)),
            "erase_computer" => Some((Family::Computer, Command::Erase)),
            "lock_mobile_device" => Some((Family::Mobile, Command::Lock)),
            "erase_mobile_device" => Some((Family::Mobile, Command::Erase)),
            _ => None,
        }
    }

    fn jamf(self) -> &'static str {
        match self {
            Command::Lock => "DEVICE_LOCK",
            Command::Erase => "ERASE_DEVICE",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Command::Lock => "lock",
            Command::Erase => "erase",
        }
    }

    /// The Jamf privilege that sending it to `family` needs.
    fn privilege(self, family: Family) -> &'static str {
        match (family, self) {
            (Family::Computer, Command::Lock) => "Send Computer Remote Lock Command",
            (Family::Computer, Command::Erase) => {
                "Send Computer Remote Wipe Command (on newer Jamf Pro also the \
                 destructive-device-actions privilege)"
            }
            (Family::Mobile, Command::Lock) => "Send Mobile Device Remote Lock Command",
            (Family::Mobile, Command::Erase) => {
                "Send Mobile Device Remote Wipe Command (on newer Jamf Pro also the \
                 destructive-device-actions privilege)"
            }
        }
    }
}

const FORBIDDEN_HINT: &str = "the API client's role lacks a privilege this call needs (Settings \
                              > API roles and clients)";

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(Arc::new(JamfProvider::new(cfg)?))
}

/// A connected Jamf Pro instance.
pub struct JamfProvider {
    http: HttpClient,
    system: String,
    page_size: usize,
}

impl std::fmt::Debug for JamfProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JamfProvider")
            .field("system", &self.system)
            .finish_non_exhaustive()
    }
}

/// One device (computer or mobile device) of the person's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Device {
    id: String,
    name: String,
    /// The management id: what an MDM command names. `None` for a device Jamf does not manage
    /// by MDM.
    management_id: Option<String>,
}

impl Device {
    fn label(&self) -> String {
        match &self.management_id {
            Some(m) => format!("{} (id {}, managementId {m})", self.name, self.id),
            None => format!("{} (id {})", self.name, self.id),
        }
    }
}

/// Where a computer stands for one command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Acknowledged by the device.
    Done(String),
    /// Sent, not carried out yet (Pending, NotNow).
    Pending(String),
    /// The device answered Error: to send again.
    Failed(String),
    /// Never sent.
    NotStarted(String),
    /// No management id: no MDM command can reach it.
    Unmanaged(String),
}

impl State {
    /// The state's name in a pre-state record.
    fn kind(&self) -> &'static str {
        match self {
            State::Done(_) => "acknowledged",
            State::Pending(_) => "pending",
            State::Failed(_) => "error",
            State::NotStarted(_) => "none",
            State::Unmanaged(_) => "unmanaged",
        }
    }

    fn text(&self) -> &str {
        match self {
            State::Done(s)
            | State::Pending(s)
            | State::Failed(s)
            | State::NotStarted(s)
            | State::Unmanaged(s) => s,
        }
    }
}

/// A string field of a JSON object.
fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// An RSQL argument: double-quoted, with `"` and `\` escaped.
fn rsql_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The state of a computer for `cmd` from its commands of that type (the latest sent decides).
fn state_of(commands: &[Value], cmd: Command) -> State {
    let verb = cmd.jamf();
    let latest = commands
        .iter()
        .filter(|c| text(c, "/commandType").is_none_or(|t| t == verb))
        .max_by_key(|c| text(c, "/dateSent").unwrap_or("").to_string());
    let Some(c) = latest else {
        return State::NotStarted(format!("no {verb} sent"));
    };
    let sent = text(c, "/dateSent").unwrap_or("an unreported time");
    let raw = text(c, "/commandState").unwrap_or("");
    // Jamf's description lists PENDING, ACKNOWLEDGED, NOT_NOW and ERROR; other sources write
    // Pending, Acknowledged, NotNow, Error. Both are read. UNCONFIRMED: which casing a given
    // Jamf Pro version sends.
    let norm: String = raw
        .chars()
        .filter(|c| *c != '_')
        .collect::<String>()
        .to_ascii_uppercase();
    match norm.as_str() {
        "ACKNOWLEDGED" => {
            let done = text(c, "/dateCompleted").unwrap_or(sent);
            State::Done(format!("{verb} acknowledged at {done}"))
        }
        "PENDING" => State::Pending(format!("{verb} pending (requested at {sent})")),
        "NOTNOW" => State::Pending(format!(
            "{verb} pending: the device answered NotNow (requested at {sent})"
        )),
        "ERROR" => {
            // UNCONFIRMED: the field that carries the device's error text; these are tried.
            let why = ["/errorMessage", "/error", "/statusMessage"]
                .iter()
                .find_map(|p| text(c, p))
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            State::Failed(format!("{verb} failed (requested at {sent}){why}"))
        }
        _ => State::Pending(format!(
            "{verb} sent at {sent}, state {raw:?} not known to offboard: not counted as done"
        )),
    }
}

/// Jamf Pro API's error body: `code: description (field)` for each error.
pub fn jamf_error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let errors = v.get("errors")?.as_array()?;
    let each: Vec<String> = errors
        .iter()
        .filter_map(|e| {
            let code = text(e, "/code");
            let desc = text(e, "/description");
            let mut s = match (code, desc) {
                (Some(c), Some(d)) => format!("{c}: {d}"),
                (Some(c), None) => c.to_string(),
                (None, Some(d)) => d.to_string(),
                (None, None) => return None,
            };
            if let Some(f) = text(e, "/field") {
                s.push_str(&format!(" (field {f})"));
            }
            Some(s)
        })
        .collect();
    (!each.is_empty()).then(|| each.join("; "))
}

/// A 404 inside a list read is no verdict on the person: only the lookup may say `NotFound`.
fn not_the_person(e: ProviderError) -> ProviderError {
    match e {
        ProviderError::NotFound(m) => ProviderError::Permanent(m),
        e => e,
    }
}

/// A 403 with the Jamf privilege the call needs named (Jamf's own body says only Forbidden).
fn with_privilege(e: ProviderError, privilege: &str) -> ProviderError {
    match e {
        ProviderError::Permanent(m) if m.contains("→ 403") => {
            ProviderError::Permanent(format!("{m}; this call needs the privilege {privilege}"))
        }
        e => not_the_person(e),
    }
}

impl JamfProvider {
    /// Build from the system's configuration. No I/O; works without the secret (planning).
    pub fn new(cfg: &SystemConfig) -> anyhow::Result<JamfProvider> {
        let client_id = match cfg.settings.get("client_id") {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(toml::Value::String(_)) | None => {
                anyhow::bail!("system `{}`: `client_id` is required", cfg.name)
            }
            Some(other) => anyhow::bail!(
                "system `{}`: `client_id` must be a string, not {}",
                cfg.name,
                other.type_str()
            ),
        };
        let mut capped = cfg.clone();
        capped.max_concurrency = cfg.max_concurrency.clamp(1, MAX_CONNECTIONS);
        let mut http = HttpClient::new(&capped)?
            .with_accept("application/json")
            .with_error_parser(jamf_error_message)
            .with_forbidden_hint(FORBIDDEN_HINT);
        if let Some(secret) = cfg.secrets.get("client_secret") {
            let token_url = http
                .endpoint(&["api", "oauth", "token"])
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let creds = ClientCredentials::new(
                token_client(cfg).map_err(|e| anyhow::anyhow!("system `{}`: {e}", cfg.name))?,
                token_url.as_str(),
                &client_id,
                ClientAuth::SecretPost(secret.clone()),
            )
            .map_err(|e| anyhow::anyhow!("system `{}`: {e}", cfg.name))?;
            http = http.with_auth(Arc::new(creds));
        }
        Ok(JamfProvider {
            http,
            system: cfg.name.clone(),
            page_size: PAGE_SIZE,
        })
    }

    /// Replace the retry policy (tests use tiny budgets).
    pub fn with_retry(mut self, retry: RetryPolicy) -> JamfProvider {
        self.http = self.http.with_retry(retry);
        self
    }

    /// Items per page of a list (default 100; tests use small pages to see paging followed).
    pub fn with_page_size(mut self, size: usize) -> JamfProvider {
        self.page_size = size.max(1);
        self
    }

    fn err(&self, msg: impl std::fmt::Display) -> ProviderError {
        ProviderError::Permanent(format!("system `{}`: {msg}", self.system))
    }

    fn inventory_url(&self, family: Family, m: Match, value: &str) -> Result<Url, ProviderError> {
        let url = self.http.endpoint(family.inventory_path())?;
        let filter = format!("{}=={}", m.field(family), rsql_quote(value));
        Ok(with_query(
            url,
            &[
                ("section", "GENERAL"),
                ("section", "USER_AND_LOCATION"),
                ("filter", &filter),
            ],
        ))
    }

    fn commands_url(&self, management_id: &str, cmd: Command) -> Result<Url, ProviderError> {
        let url = self.http.endpoint(&["api", "v2", "mdm", "commands"])?;
        // UNCONFIRMED beyond Jamf's reference page: `clientManagementId` and `command` as the
        // RSQL fields of this list (the page lists uuid, clientManagementId, command, status,
        // clientType, dateSent, validAfter, dateCompleted, profileId, profileIdentifier, active).
        let filter = format!(
            "clientManagementId=={};command=={}",
            rsql_quote(management_id),
            cmd.jamf()
        );
        Ok(with_query(url, &[("filter", &filter)]))
    }

    /// Every page of a Jamf list (`results`), the requests recorded.
    async fn list(
        &self,
        url: Url,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Value>, ProviderError> {
        let (items, made) = paging::get_all(
            &self.http,
            url,
            Paging::PageNumber {
                size: self.page_size,
            },
            "/results",
            ctx,
        )
        .await?;
        records.extend(made);
        Ok(items)
    }

    /// The person's devices of `family`, by the recorded account or by login.
    async fn devices(
        &self,
        call: &StepCall<'_>,
        family: Family,
        m: Match,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(Account, Vec<Device>), ProviderError> {
        let (m, value) = match call.account {
            Some(a) => (Match::of(a), a.id.clone()),
            None => {
                let login = call.login.trim();
                if login.is_empty() {
                    return Err(self.err("the login to look up is empty"));
                }
                (m, login.to_string())
            }
        };
        let url = self.inventory_url(family, m, &value)?;
        let all = self
            .list(url, ctx, records)
            .await
            .map_err(|e| with_privilege(e, family.read_privilege()))?;
        let mut out = Vec::new();
        for c in &all {
            let Some(id) = c.pointer(family.id_pointer()).and_then(|i| {
                i.as_str()
                    .map(str::to_string)
                    .or_else(|| i.as_u64().map(|n| n.to_string()))
            }) else {
                return Err(self.err(format!(
                    "{} answered a {} without an id",
                    family.inventory(),
                    family.noun()
                )));
            };
            let mut management_id = text(c, "/general/managementId").map(str::to_string);
            if management_id.is_none() && family == Family::Mobile {
                management_id = self.mobile_management_id(&id, ctx, records).await?;
            }
            out.push(Device {
                name: text(c, family.name_pointer()).unwrap_or(&id).to_string(),
                management_id,
                id,
            });
        }
        let account = call
            .account
            .cloned()
            .unwrap_or_else(|| Account::new(value.clone(), m.id_kind(), value.clone()));
        Ok((account, out))
    }

    /// A mobile device's management id from `GET /api/v2/mobile-devices/{id}` (MobileDeviceV2:
    /// `managementId` is CONFIRMED there), for an inventory record that does not carry it
    /// (where the inventory carries it is UNCONFIRMED; `general.managementId` is read first).
    async fn mobile_management_id(
        &self,
        id: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<String>, ProviderError> {
        let url = self.http.endpoint(&["api", "v2", "mobile-devices", id])?;
        let resp = self
            .http
            .send(Request::get(url), ctx)
            .await
            .map_err(|e| with_privilege(e, Family::Mobile.read_privilege()))?;
        records.push(resp.record.clone());
        let v: Value = resp.json().unwrap_or(Value::Null);
        Ok(text(&v, "/managementId").map(str::to_string))
    }

    /// Where one device stands for `cmd`.
    async fn state(
        &self,
        c: &Device,
        cmd: Command,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<State, ProviderError> {
        let Some(mid) = &c.management_id else {
            return Ok(State::Unmanaged(
                "no managementId: not managed by MDM, no command can reach it (a manual \
                 follow-up)"
                    .into(),
            ));
        };
        let url = self.commands_url(mid, cmd)?;
        let commands = self
            .list(url, ctx, records)
            .await
            .map_err(|e| with_privilege(e, "View MDM command information in Jamf Pro API"))?;
        Ok(state_of(&commands, cmd))
    }

    fn not_found(&self, family: Family, m: Match, login: &str) -> ProviderError {
        ProviderError::NotFound(format!(
            "system `{}`: no {noun} in Jamf Pro has {} == {login:?} ({} found none): the person \
             is not known to Jamf, or has no {noun} assigned to them",
            self.system,
            m.field(family),
            family.inventory(),
            noun = family.noun(),
        ))
    }

    fn matching(
        &self,
        call: &StepCall<'_>,
        family: Family,
        cmd: Command,
    ) -> Result<Match, ProviderError> {
        let (action, p) = (call.action, call.params);
        Ok(match (family, cmd) {
            (Family::Computer, Command::Lock) => params::parse::<LockParams>(action, p)?.matching,
            (Family::Computer, Command::Erase) => params::parse::<EraseParams>(action, p)?.matching,
            (Family::Mobile, Command::Lock) => {
                params::parse::<MobileLockParams>(action, p)?.matching
            }
            (Family::Mobile, Command::Erase) => {
                params::parse::<MobileEraseParams>(action, p)?.matching
            }
        }
        .unwrap_or_default())
    }

    /// The `commandData` to send, the PIN (Macs only) read from its reference.
    fn command_data(
        &self,
        call: &StepCall<'_>,
        family: Family,
        cmd: Command,
    ) -> Result<Value, ProviderError> {
        let mut data = json!({ "commandType": cmd.jamf() });
        let lock_text = |data: &mut Value, message: Option<String>, phone: Option<String>| {
            if let Some(msg) = message {
                data["message"] = Value::String(msg);
            }
            if let Some(phone) = phone {
                data["phoneNumber"] = Value::String(phone);
            }
        };
        let pin_ref = match (family, cmd) {
            (Family::Computer, Command::Lock) => {
                let p: LockParams = params::parse(call.action, call.params)?;
                lock_text(&mut data, p.message, p.phone_number);
                Some(p.pin.0)
            }
            (Family::Computer, Command::Erase) => {
                let p: EraseParams = params::parse(call.action, call.params)?;
                if let Some(o) = p.obliteration_behavior {
                    data["obliterationBehavior"] = Value::String(o.as_str().into());
                }
                p.pin.map(|p| p.0)
            }
            (Family::Mobile, Command::Lock) => {
                let p: MobileLockParams = params::parse(call.action, call.params)?;
                lock_text(&mut data, p.message, p.phone_number);
                None
            }
            (Family::Mobile, Command::Erase) => {
                let p: MobileEraseParams = params::parse(call.action, call.params)?;
                if let Some(b) = p.preserve_data_plan {
                    data["preserveDataPlan"] = Value::Bool(b);
                }
                if let Some(b) = p.disallow_proximity_setup {
                    data["disallowProximitySetup"] = Value::Bool(b);
                }
                if let Some(b) = p.return_to_service {
                    data["returnToService"] = json!({ "enabled": b });
                }
                None
            }
        };
        if let Some(r) = pin_ref {
            let pin = crate::secrets::resolve(&r).map_err(|e| {
                self.err(format!("step `{}`: params.pin ({r}): {e:#}", call.step_id))
            })?;
            let pin = pin.expose_secret().trim();
            if pin.len() != 6 || !pin.bytes().all(|b| b.is_ascii_digit()) {
                return Err(self.err(format!(
                    "step `{}`: params.pin ({r}) must be exactly 6 digits",
                    call.step_id
                )));
            }
            data["pin"] = Value::String(pin.to_string());
        }
        Ok(data)
    }

    async fn send_command(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        family: Family,
        cmd: Command,
    ) -> Result<ApplyOutcome, ProviderError> {
        let m = self.matching(call, family, cmd)?;
        // Read (and check) the PIN before anything is sent.
        let data = self.command_data(call, family, cmd)?;
        let mut records = Vec::new();
        let (account, devices) = self.devices(call, family, m, ctx, &mut records).await?;
        if devices.is_empty() {
            return match call.account {
                None => Err(self.not_found(family, m, call.login)),
                Some(_) => Ok(ApplyOutcome {
                    changed: false,
                    summary: format!(
                        "no {} in Jamf Pro is assigned to {account} any more; nothing to {}",
                        family.noun(),
                        cmd.verb()
                    ),
                    requests: records,
                    account: Some(account),
                }),
            };
        }
        ctx.identified(&account);
        // Every device's standing first: the step's pre-state, recorded before any command.
        let mut states = Vec::new();
        for c in &devices {
            states.push(self.state(c, cmd, ctx, &mut records).await?);
        }
        ctx.before(&json!({
            "command": cmd.jamf(),
            "devices": devices
                .iter()
                .zip(&states)
                .map(|(c, st)| {
                    json!({
                        "id": c.id,
                        "name": c.name,
                        "managementId": c.management_id,
                        "last_command": st.kind(),
                        "seen": st.text(),
                    })
                })
                .collect::<Vec<_>>(),
        }));
        let url = self.http.endpoint(&["api", "v2", "mdm", "commands"])?;
        let mut sent = Vec::new();
        let mut pending = Vec::new();
        let mut done = Vec::new();
        let mut manual = Vec::new();
        for (c, st) in devices.iter().zip(states) {
            match st {
                State::Done(s) => done.push(format!("{}: {s}", c.label())),
                State::Pending(s) => pending.push(format!("{}: {s}", c.label())),
                State::Unmanaged(s) => manual.push(format!("{}: {s}", c.label())),
                State::Failed(_) | State::NotStarted(_) => {
                    let mid = c.management_id.as_deref().unwrap_or_default();
                    let body = json!({
                        "clientData": [{ "managementId": mid }],
                        "commandData": data,
                    });
                    let resp = self
                        .http
                        .send(
                            Request::post(url.clone()).json(&body, "application/json"),
                            ctx,
                        )
                        .await
                        .map_err(|e| {
                            without_pin(
                                partly(with_privilege(e, cmd.privilege(family)), cmd, &sent),
                                &data,
                            )
                        })?;
                    records.push(resp.record.clone());
                    let answer: Value = resp.json().unwrap_or(Value::Null);
                    let command = answer
                        .pointer("/0/id")
                        .and_then(Value::as_str)
                        .map(|id| format!(", command {id}"))
                        .unwrap_or_default();
                    sent.push(format!("{}{command}", c.label()));
                }
            }
        }
        let mut parts = vec![format!(
            "{} {}(s) of {account} in Jamf Pro",
            devices.len(),
            family.noun()
        )];
        if !sent.is_empty() {
            parts.push(format!(
                "{} sent to {}: {} (requested, not yet done: each {} acts when it next checks \
                 in; the check counts only an acknowledged command)",
                cmd.jamf(),
                sent.len(),
                sent.join("; "),
                family.device()
            ));
        }
        if !pending.is_empty() {
            parts.push(format!("already requested: {}", pending.join("; ")));
        }
        if !done.is_empty() {
            parts.push(format!("already done: {}", done.join("; ")));
        }
        if !manual.is_empty() {
            parts.push(format!("manual follow-up: {}", manual.join("; ")));
        }
        Ok(ApplyOutcome {
            changed: !sent.is_empty(),
            summary: parts.join("; "),
            requests: records,
            account: Some(account),
        })
    }

    async fn check_command(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        family: Family,
        cmd: Command,
    ) -> Result<CheckOutcome, ProviderError> {
        let m = self.matching(call, family, cmd)?;
        let mut records = Vec::new();
        let (account, devices) = self.devices(call, family, m, ctx, &mut records).await?;
        if devices.is_empty() {
            return match call.account {
                None => Err(self.not_found(family, m, call.login)),
                Some(_) => Ok(CheckOutcome {
                    revoked: true,
                    observed: format!(
                        "no {} in Jamf Pro is assigned to {account} any more",
                        family.noun()
                    ),
                    account: Some(account),
                }),
            };
        }
        let mut all_done = true;
        let mut each = Vec::new();
        for c in &devices {
            let s = self.state(c, cmd, ctx, &mut records).await?;
            all_done &= matches!(s, State::Done(_));
            each.push(format!("{}: {}", c.label(), s.text()));
        }
        Ok(CheckOutcome {
            revoked: all_done,
            observed: each.join("; "),
            account: Some(account),
        })
    }

    fn unknown_action(&self, action: &str) -> ProviderError {
        self.err(format!("the jamf kind has no action `{action}`"))
    }
}

/// `e` with the PIN cut out: a server may echo the body it refused (`"pin": "123456"`), and the
/// error text is journaled.
fn without_pin(e: ProviderError, data: &Value) -> ProviderError {
    let Some(pin) = data
        .get("pin")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
    else {
        return e;
    };
    let cut = |m: String| m.replace(pin, "<redacted PIN>");
    match e {
        ProviderError::Transient(m) => ProviderError::Transient(cut(m)),
        ProviderError::Permanent(m) => ProviderError::Permanent(cut(m)),
        ProviderError::NotFound(m) => ProviderError::NotFound(cut(m)),
    }
}

/// An error after some commands were sent: say which.
fn partly(e: ProviderError, cmd: Command, sent: &[String]) -> ProviderError {
    if sent.is_empty() {
        return e;
    }
    let done = format!("{} sent to {}; then ", cmd.jamf(), sent.join("; "));
    match e {
        ProviderError::Transient(m) => ProviderError::Transient(done + &m),
        ProviderError::Permanent(m) | ProviderError::NotFound(m) => {
            ProviderError::Permanent(done + &m)
        }
    }
}

#[async_trait]
impl Provider for JamfProvider {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        let Some((family, cmd)) = Command::of(call.action) else {
            return Vec::new();
        };
        let m = self.matching(call, family, cmd).unwrap_or_default();
        let Ok(find) = self.inventory_url(family, m, call.login) else {
            return Vec::new();
        };
        let Ok(commands) = self.http.endpoint(&["api", "v2", "mdm", "commands"]) else {
            return Vec::new();
        };
        let size = self.page_size;
        let line = |method: &str, url: String| RequestLine {
            method: method.into(),
            url,
        };
        let mut lines = vec![line(
            "GET",
            format!("{find}&page={{page}}&page-size={size}"),
        )];
        if family == Family::Mobile
            && let Ok(devices) = self.http.endpoint(&["api", "v2", "mobile-devices"])
        {
            lines.push(line(
                "GET",
                format!("{devices}/{{id}} (only for a device whose inventory lacks general.managementId)"),
            ));
        }
        lines.push(line(
            "GET",
            format!(
                "{commands}?filter=clientManagementId==\"{{managementId}}\";command=={}&page={{page}}&page-size={size}",
                cmd.jamf()
            ),
        ));
        // A Mac's lock carries a PIN (an erase may); a mobile device's command never does.
        let post = match family {
            Family::Computer => format!("{commands} ({}, PIN <redacted>)", cmd.jamf()),
            Family::Mobile => format!("{commands} ({})", cmd.jamf()),
        };
        lines.push(line("POST", post));
        lines
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match Command::of(call.action) {
            Some((family, cmd)) => self.send_command(call, ctx, family, cmd).await,
            None => Err(self.unknown_action(call.action)),
        }
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        match Command::of(call.action) {
            Some((family, cmd)) => self.check_command(call, ctx, family, cmd).await,
            None => Err(self.unknown_action(call.action)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(
        action: &'a str,
        login: &'a str,
        params: &'a serde_json::Map<String, Value>,
    ) -> StepCall<'a> {
        StepCall {
            step_id: "s",
            action,
            login,
            params,
            account: None,
        }
    }

    fn cfg() -> SystemConfig {
        let mut c = SystemConfig::new("mac", "jamf", Some("https://acme.jamfcloud.com"));
        c.settings
            .insert("client_id".into(), toml::Value::String("offboard".into()));
        c
    }

    fn runbook(params: &str) -> Result<crate::runbook::Runbook, crate::runbook::RunbookError> {
        let src = format!(
            r#"[runbook]
name = "t"

[systems.mac]
kind = "jamf"
base_url = "https://acme.jamfcloud.com"
client_id = "offboard"
client_secret = {{ env = "JAMF_CLIENT_SECRET" }}

[[step]]
id = "lock"
lane = "it"
system = "mac"
action = "lock_computer"
params = {params}
"#
        );
        crate::runbook::load_str(std::path::Path::new("t.toml"), src)
    }

    #[test]
    fn the_pin_is_a_reference_never_written_in_the_runbook() {
        runbook(r#"{ pin = { env = "JAMF_LOCK_PIN" }, match = "email" }"#).unwrap();
        runbook(r#"{ pin = { command = ["pass", "show", "jamf-pin"] } }"#).unwrap();
        for bad in [
            r#"{ pin = "123456" }"#,
            r#"{ pin = { value = "123456" } }"#,
            r#"{ message = "x" }"#,
            r#"{ pin = { env = "P" }, match = "serial" }"#,
        ] {
            let e = runbook(bad).unwrap_err();
            assert!(!e.diagnostics.is_empty(), "{bad}");
        }
        let erase = KIND.action("erase_computer").unwrap();
        let lock = KIND.action("lock_computer").unwrap();
        assert!(erase.destructive && !lock.destructive);
        assert!(erase.revokes && lock.revokes);
    }

    #[test]
    fn mobile_actions_take_no_pin_and_erase_is_destructive() {
        let lock = KIND.action("lock_mobile_device").unwrap();
        let erase = KIND.action("erase_mobile_device").unwrap();
        assert!(erase.destructive && !lock.destructive);
        assert!(erase.revokes && lock.revokes);
        let params =
            |v: Value| -> serde_json::Map<String, Value> { serde_json::from_value(v).unwrap() };
        let p = JamfProvider::new(&cfg()).unwrap();
        let ok = params(json!({ "message": "Call IT", "phone_number": "+1 555 0100",
                                "match": "email" }));
        let data = p
            .command_data(
                &call("lock_mobile_device", "j", &ok),
                Family::Mobile,
                Command::Lock,
            )
            .unwrap();
        assert_eq!(
            data,
            json!({ "commandType": "DEVICE_LOCK", "message": "Call IT",
                    "phoneNumber": "+1 555 0100" })
        );
        // A PIN is a Mac's: refused for an iPhone rather than silently dropped.
        let pin = params(json!({ "pin": { "env": "P" } }));
        assert!(
            p.command_data(
                &call("lock_mobile_device", "j", &pin),
                Family::Mobile,
                Command::Lock
            )
            .is_err()
        );
        let erase = params(
            json!({ "preserve_data_plan": true, "disallow_proximity_setup": false,
                                   "return_to_service": true }),
        );
        let data = p
            .command_data(
                &call("erase_mobile_device", "j", &erase),
                Family::Mobile,
                Command::Erase,
            )
            .unwrap();
        assert_eq!(
            data,
            json!({ "commandType": "ERASE_DEVICE", "preserveDataPlan": true,
                    "disallowProximitySetup": false, "returnToService": { "enabled": true } })
        );
        let mac_only = params(json!({ "obliteration_behavior": "Always" }));
        assert!(
            p.command_data(
                &call("erase_mobile_device", "j", &mac_only),
                Family::Mobile,
                Command::Erase
            )
            .is_err()
        );
    }

    #[test]
    fn rsql_values_are_quoted_and_escaped() {
        assert_eq!(rsql_quote("jdoe"), r#""jdoe""#);
        assert_eq!(rsql_quote(r#"a"b\c;d==e"#), r#""a\"b\\c;d==e""#);
    }

    #[test]
    fn describe_lists_every_request_without_the_pin() {
        let p = (KIND.connect)(&cfg()).unwrap();
        let params: serde_json::Map<String, Value> =
            serde_json::from_value(json!({ "pin": { "env": "JAMF_PIN" } })).unwrap();
        let lines: Vec<String> = p
            .describe(&call("lock_computer", "j\"doe;x", &params))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "GET https://acme.jamfcloud.com/api/v1/computers-inventory?section=GENERAL&section=USER_AND_LOCATION&filter=userAndLocation.username%3D%3D%22j%5C%22doe%3Bx%22&page={page}&page-size=100",
                "GET https://acme.jamfcloud.com/api/v2/mdm/commands?filter=clientManagementId==\"{managementId}\";command==DEVICE_LOCK&page={page}&page-size=100",
                "POST https://acme.jamfcloud.com/api/v2/mdm/commands (DEVICE_LOCK, PIN <redacted>)",
            ]
        );
        let params: serde_json::Map<String, Value> =
            serde_json::from_value(json!({ "match": "email" })).unwrap();
        let erase: Vec<String> = p
            .describe(&call("erase_computer", "j@corp.example", &params))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(erase[0].contains("userAndLocation.email%3D%3D%22j%40corp.example%22"));
        assert!(erase[1].contains("command==ERASE_DEVICE"));
        assert_eq!(erase.len(), 3);
        let none = serde_json::Map::new();
        let mobile: Vec<String> = p
            .describe(&call("lock_mobile_device", "j\"doe", &none))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            mobile,
            [
                "GET https://acme.jamfcloud.com/api/v2/mobile-devices/detail?section=GENERAL&section=USER_AND_LOCATION&filter=username%3D%3D%22j%5C%22doe%22&page={page}&page-size=100",
                "GET https://acme.jamfcloud.com/api/v2/mobile-devices/{id} (only for a device whose inventory lacks general.managementId)",
                "GET https://acme.jamfcloud.com/api/v2/mdm/commands?filter=clientManagementId==\"{managementId}\";command==DEVICE_LOCK&page={page}&page-size=100",
                "POST https://acme.jamfcloud.com/api/v2/mdm/commands (DEVICE_LOCK)",
            ]
        );
        let params: serde_json::Map<String, Value> =
            serde_json::from_value(json!({ "match": "email" })).unwrap();
        let erase: Vec<String> = p
            .describe(&call("erase_mobile_device", "j@corp.example", &params))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(erase[0].contains("filter=emailAddress%3D%3D%22j%40corp.example%22"));
        assert!(erase[3].ends_with("(ERASE_DEVICE)"), "{erase:?}");
    }

    #[test]
    fn connect_wants_a_client_id() {
        let e = JamfProvider::new(&SystemConfig::new(
            "mac",
            "jamf",
            Some("https://acme.jamfcloud.com"),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("client_id"), "{e}");
    }

    #[test]
    fn a_command_sent_is_not_a_command_done() {
        let cmd = |state: &str, sent: &str| {
            json!({"uuid": "u", "commandState": state, "commandType": "DEVICE_LOCK",
                   "dateSent": sent, "dateCompleted": "2026-12-01T12:00:00Z",
                   "client": {"managementId": "m", "clientType": "COMPUTER"}})
        };
        assert_eq!(
            state_of(&[], Command::Lock),
            State::NotStarted("no DEVICE_LOCK sent".into())
        );
        assert_eq!(
            state_of(&[cmd("PENDING", "2026-12-01T10:00:00Z")], Command::Lock),
            State::Pending("DEVICE_LOCK pending (requested at 2026-12-01T10:00:00Z)".into())
        );
        assert!(matches!(
            state_of(&[cmd("NotNow", "t")], Command::Lock),
            State::Pending(_)
        ));
        // The latest decides: an error, then an acknowledged retry.
        assert_eq!(
            state_of(
                &[
                    cmd("ERROR", "2026-12-01T09:00:00Z"),
                    cmd("Acknowledged", "2026-12-01T10:00:00Z")
                ],
                Command::Lock
            ),
            State::Done("DEVICE_LOCK acknowledged at 2026-12-01T12:00:00Z".into())
        );
        let mut failed = cmd("ERROR", "2026-12-01T09:00:00Z");
        failed["errorMessage"] = json!("The device is not supervised");
        assert_eq!(
            state_of(&[failed], Command::Lock),
            State::Failed(
                "DEVICE_LOCK failed (requested at 2026-12-01T09:00:00Z): The device is not supervised"
                    .into()
            )
        );
    }

    #[test]
    fn jamf_errors_read_well() {
        let body = br#"{"httpStatus":404,"errors":[{"code":"INVALID_ID","field":null,"description":"Computer not found","id":"0"}]}"#;
        assert_eq!(
            jamf_error_message(body).as_deref(),
            Some("INVALID_ID: Computer not found")
        );
        let field = br#"{"httpStatus":400,"errors":[{"code":"INVALID_FIELD","field":"pin","description":"must be 6 digits","id":"0"}]}"#;
        assert_eq!(
            jamf_error_message(field).as_deref(),
            Some("INVALID_FIELD: must be 6 digits (field pin)")
        );
        assert_eq!(
            jamf_error_message(br#"{"httpStatus":401,"errors":[]}"#),
            None
        );
        assert_eq!(jamf_error_message(b"<html>"), None);
    }
}
