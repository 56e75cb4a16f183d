//! An in-memory NinjaOne instance (public API v2) on the fake-server kit, behaving as
//! `../shared/providers.md` §10 and NinjaOne's OpenAPI description (homotechsual/NinjaOne,
//! `ninjaOne-API-core-resources.yaml`) describe:
//!
//! - `POST /ws/oauth/token` (form `grant_type=client_credentials`, `client_id`, `client_secret`,
//!   `scope`) issues `tok-1`, `tok-2`, … with `expires_in`; [`FakeNinjaOne::expire_tokens`]
//!   invalidates every token issued so far. A bad client answers 401 `{error,
//!   error_description}`; an API call without a valid token 401 with NinjaOne's error body.
//! - End users (`GET /v2/user/end-users`, `GET`/`DELETE /v2/user/end-user/{id}`, 204 / 404
//!   "User not found") with `assignedDeviceIds`.
//! - Devices (`GET /v2/device/{id}`, `GET /v2/devices-detailed` paged with `pageSize` and
//!   `after`), their custom fields (`GET`/`PATCH /v2/device/{id}/custom-fields`, 204; a field
//!   that does not exist is 400, a null clears one), asset tags (`GET /v2/tag`, `POST
//!   /v2/tag/device`, `PUT /v2/tag/device/{id}` setting exactly `tagIds`), maintenance (`PUT` and
//!   `DELETE /v2/device/{id}/maintenance`, 204) and decommissioning (`POST
//!   /v2/device/{id}/decommission`, 200; the device then answers 404).
//! - Scripts: `GET /v2/device/{id}/scripting/options`, `POST /v2/device/{id}/script/run` (204, no
//!   body) which adds a `START_REQUESTED` activity; [`FakeNinjaOne::finish_runs`] completes them
//!   as the device would (an offline device's runs stay requested). `GET
//!   /v2/device/{id}/activities` pages newest first with `pageSize` (10..1000) and `olderThan`.
//! - Errors are `{"resultCode","errorMessage","incidentId"}`; [`FakeNinjaOne::deny`] answers 403.
//!
//! [`ninjaone_contract`] is the OpenAPI description of these operations, which every request
//! must keep.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::fake_kit::{
    Contract, FakeServer, Operation, QueryValue, Recorded, Reply, Req, Routes, Shape, obj,
};

pub const CLIENT_ID: &str = "offboard-ninja-client";
pub const CLIENT_SECRET: &str = "ninja-cs-7Hq2-secret";
/// The custom fields that exist on every device.
pub const FIELDS: [&str; 2] = ["offboardingStatus", "assetNotes"];

#[derive(Debug, Clone)]
pub struct NinjaDevice {
    pub id: u64,
    pub name: String,
    pub offline: bool,
    pub owner_uid: Option<String>,
    pub last_logged_in_user: Option<String>,
    /// Asset tag ids.
    pub tags: Vec<u64>,
    pub fields: Map<String, Value>,
    /// `(status, end)` of the maintenance window.
    pub maintenance: Option<(String, f64)>,
    pub decommissioned: bool,
}

#[derive(Debug, Clone)]
pub struct NinjaEndUser {
    pub id: u64,
    pub uid: String,
    pub email: String,
    pub assigned: Vec<u64>,
}

#[derive(Debug, Clone)]
pub struct NinjaActivity {
    pub id: u64,
    pub device_id: u64,
    pub time: f64,
    pub activity_type: String,
    pub status_code: String,
    pub result: Option<String>,
    pub source_name: String,
    pub message: String,
}

/// A script run as received.
#[derive(Debug, Clone)]
pub struct NinjaRun {
    pub device_id: u64,
    pub body: Value,
}

#[derive(Default)]
struct State {
    users: Vec<NinjaEndUser>,
    devices: BTreeMap<u64, NinjaDevice>,
    tags: Vec<(u64, String)>,
    /// The scripts every device offers: (type, id or uid, name).
    scripts: Vec<(String, Value, String)>,
    activities: Vec<NinjaActivity>,
    runs: Vec<NinjaRun>,
    valid: Vec<String>,
    issued: u32,
    denied: Vec<(String, String)>,
    next: u64,
    next_activity: u64,
}

type Shared = Arc<Mutex<State>>;

pub struct FakeNinjaOne {
    pub server: FakeServer,
    state: Shared,
}

/// NinjaOne's error body.
pub fn ninja_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({ "resultCode": code, "errorMessage": message, "incidentId": "inc-7f3a" }),
    )
}

fn now() -> f64 {
    chrono::Utc::now().timestamp() as f64
}

fn render_device(d: &NinjaDevice, tags: &[(u64, String)]) -> Value {
    let mut v = json!({
        "id": d.id,
        "uid": format!("dev-uid-{}", d.id),
        "organizationId": 1,
        "locationId": 1,
        "nodeClass": "WINDOWS_WORKSTATION",
        "approvalStatus": "APPROVED",
        "offline": d.offline,
        "displayName": d.name,
        "systemName": d.name.to_uppercase(),
        "lastContact": 1_796_000_000.0,
        "assignedOwnerUid": d.owner_uid,
        "tags": d.tags.iter().filter_map(|t| tags.iter().find(|(id, _)| id == t).map(|(_, n)| n.clone())).collect::<Vec<_>>(),
    });
    if let Some((status, end)) = &d.maintenance {
        v["maintenance"] = json!({ "status": status, "start": 1_796_000_000.0, "end": end });
    }
    if let Some(u) = &d.last_logged_in_user {
        v["lastLoggedInUser"] = json!(u);
    }
    v
}

fn render_user(u: &NinjaEndUser) -> Value {
    json!({
        "id": u.id, "uid": u.uid, "enabled": true, "firstName": "J", "lastName": "Doe",
        "email": u.email, "organizationId": 1, "fullPortalAccess": false, "scimUser": false,
        "authType": "NATIVE", "invitationStatus": "REGISTERED",
        "assignedDeviceIds": u.assigned, "accessibleDeviceIds": u.assigned,
    })
}

fn render_activity(a: &NinjaActivity) -> Value {
    json!({
        "id": a.id, "activityTime": a.time, "deviceId": a.device_id, "severity": "NONE",
        "priority": "NONE", "activityType": a.activity_type, "statusCode": a.status_code,
        "status": a.status_code, "activityResult": a.result, "sourceName": a.source_name,
        "subject": a.source_name, "message": a.message, "type": a.activity_type,
    })
}

impl FakeNinjaOne {
    pub async fn start() -> FakeNinjaOne {
        let state: Shared = Arc::new(Mutex::new(State {
            next: 100,
            next_activity: 5000,
            tags: vec![(7, "Offboarding".into()), (8, "Repurpose".into())],
            scripts: vec![
                ("SCRIPT".into(), json!(41), "Disable local user".into()),
                (
                    "ACTION".into(),
                    json!("3f2b8c1e-9d4a-4e6b-8c2d-1a2b3c4d5e6f"),
                    "Restart Device".into(),
                ),
            ],
            ..State::default()
        }));
        let st = state.clone();
        let mut routes = Routes::new()
            .error_reply(|status, msg| ninja_error(status, "FAILURE", msg))
            .route("POST", "/ws/oauth/token", move |r| {
                let form: BTreeMap<String, String> =
                    url::form_urlencoded::parse(r.body).into_owned().collect();
                let get = |k: &str| form.get(k).map(String::as_str);
                if get("grant_type") != Some("client_credentials") {
                    return Reply::json(400, &json!({ "error": "unsupported_grant_type" }));
                }
                if get("client_id") != Some(CLIENT_ID) || get("client_secret") != Some(CLIENT_SECRET) {
                    return Reply::json(
                        401,
                        &json!({ "error": "invalid_client", "error_description": "Bad client credentials" }),
                    );
                }
                if get("scope") != Some("monitoring management control") {
                    return Reply::json(400, &json!({ "error": "invalid_scope" }));
                }
                let mut s = st.lock().unwrap();
                s.issued += 1;
                let token = format!("tok-{}", s.issued);
                s.valid.push(token.clone());
                Reply::json(
                    200,
                    &json!({ "access_token": token, "token_type": "Bearer", "expires_in": 3600,
                             "scope": "monitoring management control" }),
                )
            });
        let mut add =
            |method: &'static str, template: &str, f: fn(&mut State, &Req<'_>) -> Reply| {
                let st = state.clone();
                routes = std::mem::take(&mut routes).route(method, template, move |r| {
                    let mut s = st.lock().unwrap();
                    let ok = r
                        .header("authorization")
                        .and_then(|h| h.strip_prefix("Bearer "))
                        .is_some_and(|t| s.valid.iter().any(|v| v == t));
                    if !ok {
                        return ninja_error(401, "UNAUTHORIZED", "Invalid or expired token");
                    }
                    if s.denied
                        .iter()
                        .any(|(m, p)| m == method && r.raw_path.starts_with(p.as_str()))
                    {
                        return ninja_error(
                            403,
                            "FORBIDDEN",
                            "Insufficient permissions to perform operation",
                        );
                    }
                    f(&mut s, r)
                });
            };
        add("GET", "/v2/user/end-users", |s, _| {
            Reply::json(
                200,
                &Value::Array(s.users.iter().map(render_user).collect()),
            )
        });
        add("GET", "/v2/user/end-user/{id}", |s, r| {
            match s.users.iter().find(|u| u.id.to_string() == r.param("id")) {
                Some(u) => Reply::json(200, &render_user(u)),
                None => ninja_error(404, "NOT_FOUND", "User not found"),
            }
        });
        add("DELETE", "/v2/user/end-user/{id}", |s, r| {
            let before = s.users.len();
            s.users.retain(|u| u.id.to_string() != r.param("id"));
            if s.users.len() == before {
                return ninja_error(404, "NOT_FOUND", "User not found");
            }
            Reply::empty(204)
        });
        fn device<'s>(s: &'s mut State, r: &Req<'_>) -> Result<&'s mut NinjaDevice, Reply> {
            s.devices
                .get_mut(&r.param("id").parse::<u64>().unwrap_or(0))
                .filter(|d| !d.decommissioned)
                .ok_or_else(|| ninja_error(404, "NOT_FOUND", "Device not found"))
        }
        add("GET", "/v2/device/{id}", |s, r| {
            let tags = s.tags.clone();
            match device(s, r) {
                Ok(d) => Reply::json(200, &render_device(d, &tags)),
                Err(e) => e,
            }
        });
        add("GET", "/v2/devices-detailed", |s, r| {
            let size: usize = r
                .query("pageSize")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000);
            let after: u64 = r.query("after").and_then(|v| v.parse().ok()).unwrap_or(0);
            let page: Vec<Value> = s
                .devices
                .values()
                .filter(|d| !d.decommissioned && d.id > after)
                .take(size)
                .map(|d| render_device(d, &s.tags))
                .collect();
            Reply::json(200, &Value::Array(page))
        });
        add(
            "GET",
            "/v2/device/{id}/custom-fields",
            |s, r| match device(s, r) {
                Ok(d) => Reply::json(200, &Value::Object(d.fields.clone())),
                Err(e) => e,
            },
        );
        add("PATCH", "/v2/device/{id}/custom-fields", |s, r| {
            let Some(Value::Object(body)) = r.json.cloned() else {
                return ninja_error(400, "BAD_REQUEST", "the body is not a JSON object");
            };
            let d = match device(s, r) {
                Ok(d) => d,
                Err(e) => return e,
            };
            if let Some(k) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
                return ninja_error(
                    400,
                    "INVALID_FIELD",
                    &format!("Custom field {k} does not exist"),
                );
            }
            // A null clears the field (UNCONFIRMED on a live instance).
            for (k, v) in body {
                if v.is_null() {
                    d.fields.remove(&k);
                } else {
                    d.fields.insert(k, v);
                }
            }
            Reply::empty(204)
        });
        add("GET", "/v2/tag", |s, _| {
            let tags: Vec<Value> = s
                .tags
                .iter()
                .map(|(id, n)| json!({ "id": id, "name": n, "description": "", "createTime": 1.7e9 }))
                .collect();
            Reply::json(200, &json!({ "tags": tags }))
        });
        add("POST", "/v2/tag/{assetType}", |s, r| {
            if r.param("assetType") != "device" {
                return ninja_error(400, "BAD_REQUEST", "assetType must be device");
            }
            let body = r.json.cloned().unwrap_or(Value::Null);
            let ids = |k: &str| -> Vec<u64> {
                body.get(k)
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_u64).collect())
                    .unwrap_or_default()
            };
            let (assets, add) = (ids("assetIds"), ids("tagIdsToAdd"));
            for t in &add {
                if !s.tags.iter().any(|(id, _)| id == t) {
                    return ninja_error(400, "BAD_REQUEST", &format!("Tag {t} not found"));
                }
            }
            for a in assets {
                let Some(d) = s.devices.get_mut(&a) else {
                    return ninja_error(400, "BAD_REQUEST", &format!("Asset {a} not found"));
                };
                for t in &add {
                    if !d.tags.contains(t) {
                        d.tags.push(*t);
                    }
                }
            }
            Reply::json(200, &json!({}))
        });
        add("GET", "/v2/device/{id}/scripting/options", |s, r| {
            let scripts: Vec<Value> = s
                .scripts
                .iter()
                .map(|(t, id, n)| {
                    let key = if t == "ACTION" { "uid" } else { "id" };
                    json!({ "type": t, key: id, "name": n, "language": "powershell",
                            "architecture": ["64"], "categoryId": 1 })
                })
                .collect();
            if let Err(e) = device(s, r) {
                return e;
            }
            Reply::json(
                200,
                &json!({ "categories": [{ "id": 1, "name": "Offboarding", "internal": false }],
                         "scripts": scripts, "credentials": { "roles": ["system"], "credentials": [] } }),
            )
        });
        add("POST", "/v2/device/{id}/script/run", |s, r| {
            let body = r.json.cloned().unwrap_or(Value::Null);
            let id = match device(s, r) {
                Ok(d) => d.id,
                Err(e) => return e,
            };
            let name = s
                .scripts
                .iter()
                .find(|(t, sid, _)| {
                    body["type"].as_str() == Some(t.as_str())
                        && (body["id"] == *sid || body["uid"] == *sid)
                })
                .map(|(_, _, n)| n.clone());
            let Some(name) = name else {
                return ninja_error(400, "BAD_REQUEST", "Script not found");
            };
            s.runs.push(NinjaRun {
                device_id: id,
                body,
            });
            s.next_activity += 1;
            let aid = s.next_activity;
            s.activities.push(NinjaActivity {
                id: aid,
                device_id: id,
                time: now(),
                activity_type: "ACTION".into(),
                status_code: "START_REQUESTED".into(),
                result: None,
                source_name: format!("Run {name}"),
                message: String::new(),
            });
            Reply::empty(204)
        });
        add("GET", "/v2/device/{id}/activities", |s, r| {
            let id = match device(s, r) {
                Ok(d) => d.id,
                Err(e) => return e,
            };
            let size: usize = r
                .query("pageSize")
                .and_then(|v| v.parse().ok())
                .unwrap_or(200);
            if !(10..=1000).contains(&size) {
                return ninja_error(400, "BAD_REQUEST", "pageSize must be 10..1000");
            }
            let older: u64 = r
                .query("olderThan")
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX);
            let kind = r.query("activityType");
            let mut acts: Vec<&NinjaActivity> = s
                .activities
                .iter()
                .filter(|a| {
                    a.device_id == id && a.id < older && kind.is_none_or(|k| a.activity_type == k)
                })
                .collect();
            acts.sort_by_key(|a| std::cmp::Reverse(a.id));
            let page: Vec<Value> = acts.into_iter().take(size).map(render_activity).collect();
            let last = s
                .activities
                .iter()
                .filter(|a| a.device_id == id)
                .map(|a| a.id)
                .max();
            Reply::json(
                200,
                &json!({ "lastActivityId": s.next_activity, "lastNodeActivityId": last, "activities": page }),
            )
        });
        // Sets exactly these tags on the device, removing every other (providers.md §10.3).
        add("PUT", "/v2/tag/{assetType}/{id}", |s, r| {
            if r.param("assetType") != "device" {
                return ninja_error(400, "BAD_REQUEST", "assetType must be device");
            }
            let Some(ids) = r
                .json
                .and_then(|b| b.get("tagIds"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_u64).collect::<Vec<u64>>())
            else {
                return ninja_error(400, "BAD_REQUEST", "tagIds is required");
            };
            if let Some(t) = ids.iter().find(|t| !s.tags.iter().any(|(id, _)| id == *t)) {
                return ninja_error(400, "BAD_REQUEST", &format!("Tag {t} not found"));
            }
            match device(s, r) {
                Ok(d) => {
                    d.tags = ids;
                    Reply::empty(204)
                }
                Err(e) => e,
            }
        });
        add(
            "DELETE",
            "/v2/device/{id}/maintenance",
            |s, r| match device(s, r) {
                Ok(d) => {
                    d.maintenance = None;
                    Reply::empty(204)
                }
                Err(e) => e,
            },
        );
        add("PUT", "/v2/device/{id}/maintenance", |s, r| {
            let body = r.json.cloned().unwrap_or(Value::Null);
            let Some(end) = body.get("end").and_then(Value::as_f64) else {
                return ninja_error(400, "BAD_REQUEST", "end is required");
            };
            match device(s, r) {
                Ok(d) => {
                    d.maintenance = Some(("PENDING".into(), end));
                    Reply::empty(204)
                }
                Err(e) => e,
            }
        });
        add(
            "POST",
            "/v2/device/{id}/decommission",
            |s, r| match device(s, r) {
                Ok(d) => {
                    d.decommissioned = true;
                    Reply::empty(200)
                }
                Err(e) => e,
            },
        );
        let server = FakeServer::start(routes).await;
        FakeNinjaOne { server, state }
    }

    /// Add an end user with this email; their id.
    pub fn add_end_user(&self, email: &str) -> u64 {
        let mut s = self.state.lock().unwrap();
        s.next += 1;
        let id = s.next;
        s.users.push(NinjaEndUser {
            id,
            uid: format!("0e1f2a3b-0000-4000-8000-{id:012}"),
            email: email.into(),
            assigned: Vec::new(),
        });
        id
    }

    /// Add a device owned by end user `owner` (if any) with `logon` as last logged-on user.
    pub fn add_device(&self, name: &str, owner: Option<u64>, logon: Option<&str>) -> u64 {
        let mut s = self.state.lock().unwrap();
        s.next += 1;
        let id = s.next;
        let uid = owner.and_then(|o| {
            let u = s.users.iter_mut().find(|u| u.id == o)?;
            u.assigned.push(id);
            Some(u.uid.clone())
        });
        s.devices.insert(
            id,
            NinjaDevice {
                id,
                name: name.into(),
                offline: false,
                owner_uid: uid,
                last_logged_in_user: logon.map(str::to_string),
                tags: Vec::new(),
                fields: Map::new(),
                maintenance: None,
                decommissioned: false,
            },
        );
        id
    }

    pub fn device(&self, id: u64) -> NinjaDevice {
        self.state.lock().unwrap().devices[&id].clone()
    }

    /// Change a device behind offboard's back.
    pub fn edit_device(&self, id: u64, f: impl FnOnce(&mut NinjaDevice)) {
        f(self
            .state
            .lock()
            .unwrap()
            .devices
            .get_mut(&id)
            .expect("device"))
    }

    pub fn end_user_exists(&self, id: u64) -> bool {
        self.state.lock().unwrap().users.iter().any(|u| u.id == id)
    }

    /// `n` unrelated activities on a device (for paging), older than any run.
    pub fn add_noise(&self, device: u64, n: usize) {
        let mut s = self.state.lock().unwrap();
        for i in 0..n {
            s.next_activity += 1;
            let id = s.next_activity;
            s.activities.push(NinjaActivity {
                id,
                device_id: device,
                time: now() - 86_400.0 + i as f64,
                activity_type: "ACTION".into(),
                status_code: "COMPLETED".into(),
                result: Some("SUCCESS".into()),
                source_name: format!("Run Patch scan {i}"),
                message: String::new(),
            });
        }
    }

    /// An old, completed run of `script` (a previous owner's), `age` seconds ago.
    pub fn add_old_run(&self, device: u64, script: &str, age: f64, result: &str) {
        let mut s = self.state.lock().unwrap();
        s.next_activity += 1;
        let id = s.next_activity;
        s.activities.push(NinjaActivity {
            id,
            device_id: device,
            time: now() - age,
            activity_type: "ACTION".into(),
            status_code: "COMPLETED".into(),
            result: Some(result.into()),
            source_name: format!("Run {script}"),
            message: "old run".into(),
        });
    }

    /// Complete every requested run on an online `device` with `result` and `message` (as the
    /// agent would). Returns how many were completed.
    pub fn finish_runs(&self, device: u64, result: &str, message: &str) -> usize {
        let mut s = self.state.lock().unwrap();
        if s.devices[&device].offline {
            return 0;
        }
        let mut n = 0;
        for a in s
            .activities
            .iter_mut()
            .filter(|a| a.device_id == device && a.status_code == "START_REQUESTED")
        {
            a.status_code = "COMPLETED".into();
            a.result = Some(result.into());
            a.message = message.into();
            n += 1;
        }
        n
    }

    pub fn runs(&self) -> Vec<NinjaRun> {
        self.state.lock().unwrap().runs.clone()
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
        self.server.assert_contract(&ninjaone_contract());
    }
}

/// NinjaOne's OpenAPI description of the operations offboard uses (`ninjaOne-API-core-
/// resources.yaml`, info.version 2.0.9-draft): paths, methods, query parameters and the bodies'
/// property names, types and enums.
pub fn ninjaone_contract() -> Contract {
    let bearer = |op: Operation| op.header("authorization: Bearer");
    let id_list = || Shape::array(Shape::Integer);
    Contract::new("NinjaOne public API v2")
        .op(Operation::new("POST", "/ws/oauth/token").raw_body("application/x-www-form-urlencoded"))
        .op(bearer(Operation::new("GET", "/v2/user/end-users")).query(
            "includeRoles",
            false,
            QueryValue::Any,
        ))
        .op(bearer(Operation::new("GET", "/v2/user/end-user/{id}")))
        .op(bearer(Operation::new("DELETE", "/v2/user/end-user/{id}")))
        .op(bearer(Operation::new("GET", "/v2/device/{id}")))
        .op(bearer(Operation::new("GET", "/v2/devices-detailed"))
            .query("df", false, QueryValue::Any)
            .query("pageSize", false, QueryValue::Integer)
            .query("after", false, QueryValue::Integer))
        .op(
            bearer(Operation::new("GET", "/v2/device/{id}/custom-fields")).query(
                "withInheritance",
                false,
                QueryValue::each_of(&["true", "false"]),
            ),
        )
        .op(
            bearer(Operation::new("PATCH", "/v2/device/{id}/custom-fields"))
                .json_body(Shape::map(Shape::Any)),
        )
        .op(bearer(Operation::new("GET", "/v2/tag")))
        .op(
            bearer(Operation::new("POST", "/v2/tag/{assetType}")).json_body(
                obj()
                    .opt("assetIds", id_list())
                    .opt("tagIdsToAdd", id_list())
                    .opt("tagIdsToRemove", id_list()),
            ),
        )
        .op(
            bearer(Operation::new("GET", "/v2/device/{id}/scripting/options")).query(
                "lang",
                false,
                QueryValue::Any,
            ),
        )
        .op(
            bearer(Operation::new("POST", "/v2/device/{id}/script/run")).json_body(
                obj()
                    .opt("type", Shape::one_of(&["ACTION", "SCRIPT"]))
                    .opt("id", Shape::Integer)
                    .opt("uid", Shape::String)
                    .opt("parameters", Shape::String)
                    .opt("runAs", Shape::String),
            ),
        )
        .op(bearer(Operation::new("GET", "/v2/device/{id}/activities"))
            .query("olderThan", false, QueryValue::Integer)
            .query("newerThan", false, QueryValue::Integer)
            .query("activityType", false, QueryValue::Any)
            .query("status", false, QueryValue::Any)
            .query("seriesUid", false, QueryValue::Any)
            .query("pageSize", false, QueryValue::Integer)
            .query("lang", false, QueryValue::Any)
            .query("tz", false, QueryValue::Any))
        .op(
            bearer(Operation::new("PUT", "/v2/device/{id}/maintenance")).json_body(
                obj()
                    .opt(
                        "disabledFeatures",
                        Shape::array(Shape::one_of(&["ALERTS", "PATCHING", "AVSCANS", "TASKS"])),
                    )
                    .opt("start", Shape::Number)
                    .opt("end", Shape::Number)
                    .opt("reasonMessage", Shape::String),
            ),
        )
        .op(bearer(Operation::new(
            "POST",
            "/v2/device/{id}/decommission",
        )))
        .op(bearer(Operation::new("PUT", "/v2/tag/{assetType}/{id}"))
            .json_body(obj().req("tagIds", id_list())))
        .op(bearer(Operation::new(
            "DELETE",
            "/v2/device/{id}/maintenance",
        )))
}

/// A ninjaone system for this fake (the API client's secret resolved).
pub fn system_config(base_url: &str) -> offboard::providers::SystemConfig {
    let mut c = offboard::providers::SystemConfig {
        timeout: std::time::Duration::from_secs(10),
        ..offboard::providers::SystemConfig::new("rmm", "ninjaone", Some(base_url))
    };
    c.settings
        .insert("client_id".into(), toml::Value::String(CLIENT_ID.into()));
    c.secrets.insert(
        "client_secret".into(),
        secrecy::SecretString::from(CLIENT_SECRET.to_string()),
    );
    c
}
