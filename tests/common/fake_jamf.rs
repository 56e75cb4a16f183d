//! An in-memory Jamf Pro instance (the Jamf Pro API) on the fake-server kit, behaving as
//! `../shared/providers.md` §7 and Jamf's API reference describe:
//!
//! - `POST /api/oauth/token` (form `grant_type=client_credentials`, `client_id`,
//!   `client_secret`) issues a new bearer token each time (`tok-1`, `tok-2`, …) with
//!   `expires_in`; [`FakeJamf::expire_tokens`] makes every token issued so far invalid, as an
//!   expiry would. Any other `Authorization` answers 401 `{"httpStatus":401,"errors":[]}`.
//! - `GET /api/v1/computers-inventory` with an RSQL `filter` (`field=="value"`, `;` for and) on
//!   `userAndLocation.username` or `.email`, `page` (0-based), `page-size` and `section`s, answering
//!   `{"totalCount","results":[{"id","general":{"name","managementId"},"userAndLocation":{…}}]}`.
//! - `GET /api/v2/mobile-devices/detail` the same way for iPhones and iPads, filtered on
//!   `username` or `emailAddress`, answering `{"totalCount","results":[{"mobileDeviceId",
//!   "deviceType","general":{"displayName","managementId"},"userAndLocation":{…}}]}`;
//!   [`FakeJamf::hide_mobile_management_ids`] leaves `general.managementId` out (where the real
//!   inventory carries it is unconfirmed), and `GET /api/v2/mobile-devices/{id}` (MobileDeviceV2)
//!   always carries `managementId`.
//! - `POST /api/v2/mdm/commands` records a command per `clientData` entry (a computer's or a
//!   mobile device's) as `PENDING` and answers 201 `[{"id","href"}]`; [`FakeJamf::set_state`]
//!   moves it on (as the device checking in would).
//! - `GET /api/v2/mdm/commands` with a `filter` on `clientManagementId` and `command` (paged).
//! - A privilege can be withheld ([`FakeJamf::deny`]): the call answers 403 with Jamf's body.
//!
//! [`jamf_contract`] is Jamf's description of these operations, which every request must keep.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::fake_kit::{
    Contract, FakeServer, Operation, QueryValue, Recorded, Reply, Req, Routes, Shape, obj,
};

pub const CLIENT_ID: &str = "offboard-api-client";
pub const CLIENT_SECRET: &str = "jamf-cs-9f8Qz-secret";

#[derive(Debug, Clone)]
pub struct JamfComputer {
    pub id: String,
    pub name: String,
    pub management_id: Option<String>,
    pub username: String,
    pub email: String,
}

#[derive(Debug, Clone)]
pub struct JamfCommand {
    pub uuid: String,
    pub management_id: String,
    /// `COMPUTER` or `MOBILE_DEVICE`: whose management id it was sent to.
    pub client_type: String,
    pub command_type: String,
    pub state: String,
    pub date_sent: String,
    pub date_completed: Option<String>,
    /// `commandData` as received (the PIN included: tests check it arrived).
    pub data: Value,
}

#[derive(Default)]
struct State {
    computers: Vec<JamfComputer>,
    /// iPhones and iPads (the same fields as a computer).
    mobiles: Vec<JamfComputer>,
    /// The mobile inventory leaves `general.managementId` out.
    hide_mobile_mids: bool,
    commands: Vec<JamfCommand>,
    /// Tokens accepted now.
    valid: Vec<String>,
    issued: u32,
    expires_in: u64,
    /// Every API request answers 401, whatever token it carries (the API client was disabled
    /// after its token was issued).
    reject_all: bool,
    /// Privileges withheld: (method, path prefix) answered 403.
    denied: Vec<(String, String)>,
    next: u32,
    clock: u32,
}

type Shared = Arc<Mutex<State>>;

pub struct FakeJamf {
    pub server: FakeServer,
    state: Shared,
}

/// Jamf Pro API's error body.
pub fn jamf_error(status: u16, code: &str, description: &str) -> Reply {
    Reply::json(
        status,
        &json!({
            "httpStatus": status,
            "errors": [{ "code": code, "field": null, "description": description, "id": "0" }],
        }),
    )
}

/// `field=="value"` (or `field==value`) clauses joined by `;`, as RSQL writes them.
pub fn parse_rsql(filter: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut chars = filter.chars().peekable();
    loop {
        let mut field = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            field.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || chars.next() != Some('=') {
            return None;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ';' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.insert(field, value);
        match chars.next() {
            None => return Some(out),
            Some(';') => {}
            Some(_) => return None,
        }
    }
}

/// One page of `items` as Jamf pages: `page` 0-based, `page-size`.
fn page(r: &Req<'_>, items: Vec<Value>) -> Reply {
    let n: usize = r.query("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let size: usize = r
        .query("page-size")
        .and_then(|p| p.parse().ok())
        .unwrap_or(100);
    let total = items.len();
    let results: Vec<Value> = items.into_iter().skip(n * size).take(size).collect();
    Reply::json(200, &json!({ "totalCount": total, "results": results }))
}

fn render_command(c: &JamfCommand) -> Value {
    json!({
        "uuid": c.uuid,
        "client": { "managementId": c.management_id, "clientType": c.client_type },
        "commandState": c.state,
        "commandType": c.command_type,
        "dateSent": c.date_sent,
        "dateCompleted": c.date_completed,
    })
}

impl FakeJamf {
    pub async fn start() -> FakeJamf {
        let state: Shared = Arc::new(Mutex::new(State {
            expires_in: 1199,
            next: 1,
            ..State::default()
        }));
        let base: Arc<std::sync::OnceLock<String>> = Arc::default();
        let st = state.clone();
        let mut routes = Routes::new()
            .error_reply(|status, msg| jamf_error(status, "SERVER_ERROR", msg))
            .route("POST", "/api/oauth/token", move |r| {
                let form: BTreeMap<String, String> = url::form_urlencoded::parse(r.body)
                    .into_owned()
                    .collect();
                let get = |k: &str| form.get(k).map(String::as_str);
                if get("grant_type") != Some("client_credentials") {
                    return Reply::json(400, &json!({ "error": "unsupported_grant_type" }));
                }
                if get("client_id") != Some(CLIENT_ID) || get("client_secret") != Some(CLIENT_SECRET)
                {
                    return Reply::json(
                        401,
                        &json!({ "error": "invalid_client", "error_description": "Client authentication failed" }),
                    );
                }
                let mut s = st.lock().unwrap();
                s.issued += 1;
                let token = format!("tok-{}", s.issued);
                s.valid.push(token.clone());
                Reply::json(
                    200,
                    &json!({
                        "access_token": token,
                        "scope": "api-role:1",
                        "token_type": "Bearer",
                        "expires_in": s.expires_in,
                    }),
                )
            });
        // Each API handler: the bearer token first, then a withheld privilege, then the state.
        let mut add =
            |method: &'static str, template: &str, f: fn(&mut State, &Req<'_>, &str) -> Reply| {
                let (st, b) = (state.clone(), base.clone());
                routes = std::mem::take(&mut routes).route(method, template, move |r| {
                    let mut s = st.lock().unwrap();
                    let ok = r
                        .header("authorization")
                        .and_then(|h| h.strip_prefix("Bearer "))
                        .is_some_and(|t| s.valid.iter().any(|v| v == t));
                    if !ok || s.reject_all {
                        return Reply::json(401, &json!({ "httpStatus": 401, "errors": [] }));
                    }
                    if s.denied
                        .iter()
                        .any(|(m, p)| m == method && r.raw_path.starts_with(p.as_str()))
                    {
                        return jamf_error(403, "INVALID_PRIVILEGE", "Forbidden");
                    }
                    f(&mut s, r, b.get().unwrap())
                });
            };
        add("GET", "/api/v1/computers-inventory", |s, r, _| {
            let Some(filter) = r.query("filter").and_then(parse_rsql) else {
                return jamf_error(400, "INVALID_FILTER", "the filter is not valid RSQL");
            };
            let items: Vec<Value> = s
                .computers
                .iter()
                .filter(|c| {
                    filter.iter().all(|(k, v)| match k.as_str() {
                        "userAndLocation.username" => c.username == *v,
                        "userAndLocation.email" => c.email.eq_ignore_ascii_case(v),
                        _ => false,
                    })
                })
                .map(|c| {
                    json!({
                        "id": c.id,
                        "udid": format!("udid-{}", c.id),
                        "general": { "name": c.name, "managementId": c.management_id,
                                     "platform": "Mac" },
                        "userAndLocation": { "username": c.username, "email": c.email,
                                             "realname": c.username },
                    })
                })
                .collect();
            page(r, items)
        });
        add("GET", "/api/v2/mobile-devices/detail", |s, r, _| {
            let Some(filter) = r.query("filter").and_then(parse_rsql) else {
                return jamf_error(400, "INVALID_FILTER", "the filter is not valid RSQL");
            };
            let hide = s.hide_mobile_mids;
            let items: Vec<Value> = s
                .mobiles
                .iter()
                .filter(|c| {
                    filter.iter().all(|(k, v)| match k.as_str() {
                        "username" => c.username == *v,
                        "emailAddress" => c.email.eq_ignore_ascii_case(v),
                        _ => false,
                    })
                })
                .map(|c| {
                    let mut general = json!({ "displayName": c.name, "osVersion": "18.1" });
                    if !hide {
                        general["managementId"] = json!(c.management_id);
                    }
                    json!({
                        "mobileDeviceId": c.id,
                        "deviceType": "iOS",
                        "general": general,
                        "userAndLocation": { "username": c.username, "emailAddress": c.email,
                                             "realName": c.username },
                    })
                })
                .collect();
            page(r, items)
        });
        add("GET", "/api/v2/mobile-devices/{id}", |s, r, _| {
            let Some(c) = s.mobiles.iter().find(|c| c.id == r.param("id")) else {
                return jamf_error(404, "INVALID_ID", "Mobile device not found");
            };
            Reply::json(
                200,
                &json!({
                    "id": c.id,
                    "name": c.name,
                    "serialNumber": format!("SN{}", c.id),
                    "udid": format!("udid-{}", c.id),
                    "username": c.username,
                    "type": "ios",
                    "managementId": c.management_id,
                }),
            )
        });
        add("GET", "/api/v2/mdm/commands", |s, r, _| {
            let Some(filter) = r.query("filter").and_then(parse_rsql) else {
                return jamf_error(400, "INVALID_FILTER", "the filter is not valid RSQL");
            };
            let items: Vec<Value> = s
                .commands
                .iter()
                .filter(|c| {
                    filter.iter().all(|(k, v)| match k.as_str() {
                        "clientManagementId" => c.management_id == *v,
                        "command" => c.command_type == *v,
                        "uuid" => c.uuid == *v,
                        _ => false,
                    })
                })
                .map(render_command)
                .collect();
            page(r, items)
        });
        add("POST", "/api/v2/mdm/commands", |s, r, base| {
            let Some(body) = r.json else {
                return jamf_error(400, "INVALID_BODY", "the body is not JSON");
            };
            let data = body["commandData"].clone();
            let kind = data["commandType"].as_str().unwrap_or("").to_string();
            let mut out = Vec::new();
            for client in body["clientData"].as_array().cloned().unwrap_or_default() {
                let mid = client["managementId"].as_str().unwrap_or("").to_string();
                let is = |list: &[JamfComputer]| {
                    list.iter()
                        .any(|c| c.management_id.as_deref() == Some(mid.as_str()))
                };
                let client_type = if is(&s.computers) {
                    "COMPUTER"
                } else if is(&s.mobiles) {
                    "MOBILE_DEVICE"
                } else {
                    return jamf_error(400, "INVALID_MANAGEMENT_ID", "Unknown management id");
                };
                s.clock += 1;
                let uuid = format!("cmd-{}", s.next);
                s.next += 1;
                s.commands.push(JamfCommand {
                    uuid: uuid.clone(),
                    management_id: mid,
                    client_type: client_type.into(),
                    command_type: kind.clone(),
                    state: "PENDING".into(),
                    date_sent: format!("2026-12-01T10:{:02}:00Z", s.clock % 60),
                    date_completed: None,
                    data: data.clone(),
                });
                out.push(
                    json!({ "id": uuid, "href": format!("{base}/api/v2/mdm/commands/{uuid}") }),
                );
            }
            Reply::json(201, &Value::Array(out))
        });
        let server = FakeServer::start(routes).await;
        base.set(server.base_url.clone()).unwrap();
        FakeJamf { server, state }
    }

    /// Add a computer assigned to `username` (email `username@corp.example`); its inventory id.
    pub fn add_computer(&self, username: &str, name: &str) -> String {
        let mut s = self.state.lock().unwrap();
        let id = s.next.to_string();
        s.next += 1;
        s.computers.push(JamfComputer {
            management_id: Some(format!("0b7c2f4e-{id:0>4}-4c1a-9d1e-5f6a7b8c9d0e")),
            id: id.clone(),
            name: name.into(),
            username: username.into(),
            email: format!("{username}@corp.example"),
        });
        id
    }

    pub fn computer(&self, id: &str) -> JamfComputer {
        let s = self.state.lock().unwrap();
        s.computers.iter().find(|c| c.id == id).cloned().unwrap()
    }

    /// Add an iPhone or iPad assigned to `username` (email `username@corp.example`); its
    /// mobile device id (ids are unique across computers and mobile devices).
    pub fn add_mobile_device(&self, username: &str, name: &str) -> String {
        let mut s = self.state.lock().unwrap();
        let id = s.next.to_string();
        s.next += 1;
        s.mobiles.push(JamfComputer {
            management_id: Some(format!("6d1e8a2b-{id:0>4}-4f3c-8b2a-1c2d3e4f5a6b")),
            id: id.clone(),
            name: name.into(),
            username: username.into(),
            email: format!("{username}@corp.example"),
        });
        id
    }

    pub fn mobile(&self, id: &str) -> JamfComputer {
        let s = self.state.lock().unwrap();
        s.mobiles.iter().find(|c| c.id == id).cloned().unwrap()
    }

    /// Change a mobile device behind offboard's back.
    pub fn edit_mobile(&self, id: &str, f: impl FnOnce(&mut JamfComputer)) {
        let mut s = self.state.lock().unwrap();
        f(s.mobiles
            .iter_mut()
            .find(|c| c.id == id)
            .expect("mobile device"))
    }

    /// The mobile inventory stops carrying `general.managementId` (only `GET
    /// /api/v2/mobile-devices/{id}` has it).
    pub fn hide_mobile_management_ids(&self) {
        self.state.lock().unwrap().hide_mobile_mids = true;
    }

    /// Change a computer behind offboard's back.
    pub fn edit(&self, id: &str, f: impl FnOnce(&mut JamfComputer)) {
        let mut s = self.state.lock().unwrap();
        f(s.computers
            .iter_mut()
            .find(|c| c.id == id)
            .expect("computer"))
    }

    pub fn commands(&self) -> Vec<JamfCommand> {
        self.state.lock().unwrap().commands.clone()
    }

    /// Move every command of `command_type` for computer or mobile device `id` to `state` (as
    /// the device would).
    pub fn set_state(&self, id: &str, command_type: &str, state: &str) {
        let mut s = self.state.lock().unwrap();
        let mid = s
            .computers
            .iter()
            .chain(s.mobiles.iter())
            .find(|c| c.id == id)
            .and_then(|c| c.management_id.clone())
            .expect("a managed device");
        for c in s
            .commands
            .iter_mut()
            .filter(|c| c.management_id == mid && c.command_type == command_type)
        {
            c.state = state.into();
            if state == "ACKNOWLEDGED" {
                c.date_completed = Some("2026-12-01T11:00:00Z".into());
            }
        }
    }

    /// Answer 403 to `method` on paths starting with `path`.
    pub fn deny(&self, method: &str, path: &str) {
        self.state
            .lock()
            .unwrap()
            .denied
            .push((method.into(), path.into()));
    }

    /// Every token issued so far stops working (they expired).
    pub fn expire_tokens(&self) {
        self.state.lock().unwrap().valid.clear();
    }

    /// Every API request answers 401 from now on, even with a fresh token.
    pub fn reject_all_tokens(&self) {
        self.state.lock().unwrap().reject_all = true;
    }

    pub fn tokens_issued(&self) -> u32 {
        self.state.lock().unwrap().issued
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    /// Method and path (with query) of each request, in order.
    pub fn lines(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| match &r.raw_query {
                Some(q) => format!("{} {}?{q}", r.method, r.raw_path),
                None => format!("{} {}", r.method, r.raw_path),
            })
            .collect()
    }

    pub fn assert_contract(&self) {
        self.server.assert_contract(&jamf_contract());
    }
}

/// Jamf's description of the operations offboard uses (Jamf Pro API reference: computers
/// inventory v1, mobile devices v2, MDM commands v2, the OAuth token endpoint): paths, methods,
/// query parameters and the body's property names, types and enums. `section` may repeat
/// (Jamf's array parameter); the kit checks its first value.
pub fn jamf_contract() -> Contract {
    let sections = QueryValue::each_of(&[
        "ALL",
        "GENERAL",
        "DISK_ENCRYPTION",
        "PURCHASING",
        "APPLICATIONS",
        "STORAGE",
        "USER_AND_LOCATION",
        "CONFIGURATION_PROFILES",
        "PRINTERS",
        "SERVICES",
        "HARDWARE",
        "LOCAL_USER_ACCOUNTS",
        "CERTIFICATES",
        "ATTACHMENTS",
        "PLUGINS",
        "PACKAGE_RECEIPTS",
        "FONTS",
        "SECURITY",
        "OPERATING_SYSTEM",
        "LICENSED_SOFTWARE",
        "IBEACONS",
        "SOFTWARE_UPDATES",
        "EXTENSION_ATTRIBUTES",
        "CONTENT_CACHING",
        "GROUP_MEMBERSHIPS",
    ]);
    let command_data = obj()
        .req(
            "commandType",
            Shape::one_of(&["DEVICE_LOCK", "ERASE_DEVICE"]),
        )
        .opt("pin", Shape::String)
        .opt("message", Shape::String)
        .opt("phoneNumber", Shape::String)
        .opt(
            "obliterationBehavior",
            Shape::one_of(&[
                "Default",
                "DoNotObliterate",
                "ObliterateWithWarning",
                "Always",
            ]),
        )
        .opt("preserveDataPlan", Shape::Bool)
        .opt("disallowProximitySetup", Shape::Bool)
        .opt(
            "returnToService",
            obj()
                .opt("enabled", Shape::Bool)
                .opt("mdmProfileData", Shape::String)
                .opt("wifiProfileData", Shape::String),
        );
    let mobile_sections = QueryValue::each_of(&[
        "GENERAL",
        "HARDWARE",
        "USER_AND_LOCATION",
        "PURCHASING",
        "SECURITY",
        "APPLICATIONS",
        "EBOOKS",
        "NETWORK",
        "SERVICE_SUBSCRIPTIONS",
        "CERTIFICATES",
        "PROFILES",
        "USER_PROFILES",
        "PROVISIONING_PROFILES",
        "SHARED_USERS",
        "EXTENSION_ATTRIBUTES",
    ]);
    Contract::new("Jamf Pro API")
        .op(Operation::new("POST", "/api/oauth/token")
            .raw_body("application/x-www-form-urlencoded"))
        .op(Operation::new("GET", "/api/v1/computers-inventory")
            .header("authorization: Bearer")
            .header("accept: application/json")
            .query("section", false, sections)
            .query("page", false, QueryValue::Integer)
            .query("page-size", false, QueryValue::Integer)
            .query("sort", false, QueryValue::Any)
            .query("filter", false, QueryValue::Any))
        .op(Operation::new("GET", "/api/v2/mobile-devices/detail")
            .header("authorization: Bearer")
            .header("accept: application/json")
            .query("section", false, mobile_sections)
            .query("page", false, QueryValue::Integer)
            .query("page-size", false, QueryValue::Integer)
            .query("sort", false, QueryValue::Any)
            .query("filter", false, QueryValue::Any))
        .op(Operation::new("GET", "/api/v2/mobile-devices/{id}")
            .header("authorization: Bearer")
            .header("accept: application/json"))
        .op(Operation::new("GET", "/api/v2/mdm/commands")
            .header("authorization: Bearer")
            .header("accept: application/json")
            .query("page", false, QueryValue::Integer)
            .query("page-size", false, QueryValue::Integer)
            .query("sort", false, QueryValue::Any)
            .query("filter", true, QueryValue::Any))
        .op(Operation::new("POST", "/api/v2/mdm/commands")
            .header("authorization: Bearer")
            .json_body(
                obj()
                    .req(
                        "clientData",
                        Shape::array(obj().req("managementId", Shape::String)),
                    )
                    .req("commandData", command_data),
            ))
}

/// A jamf system for this fake (the API client's secret resolved).
pub fn system_config(base_url: &str) -> offboard::providers::SystemConfig {
    let mut c = offboard::providers::SystemConfig {
        timeout: std::time::Duration::from_secs(10),
        ..offboard::providers::SystemConfig::new("mac", "jamf", Some(base_url))
    };
    c.settings
        .insert("client_id".into(), toml::Value::String(CLIENT_ID.into()));
    c.secrets.insert(
        "client_secret".into(),
        secrecy::SecretString::from(CLIENT_SECRET.to_string()),
    );
    c
}
