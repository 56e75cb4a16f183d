//! An in-memory Snipe-IT (REST API v1) on the fake-server kit, behaving as Snipe-IT's API
//! reference and its `routes/api.php` describe:
//!
//! - every call needs `Authorization: Bearer <token>`; another answers 401
//!   `{"message":"Unauthenticated."}` (Laravel's answer);
//! - `GET /api/v1/users?search=` finds users whose `username`, `email` or name contains the
//!   search (ignoring case), paged by `offset`/`limit` (default 50 here), answering
//!   `{"total","rows":[{"id","username","email","name",…}]}`;
//! - `GET /api/v1/users/{id}/assets` lists the hardware checked out to the user, paged the same
//!   way; an unknown user answers HTTP 200 `{"status":"error","messages":"User not found"}`
//!   (Snipe-IT answers many failures with 200 and this body);
//! - `POST /api/v1/hardware/{id}/checkin` (`note`, `status_id`, `location_id`, `name`) checks
//!   the asset in: 200 `{"status":"success","messages":"Asset checked in successfully.",…}`; an
//!   unknown asset, one not checked out, or a `status_id` that names no status label answer 200
//!   with `"status":"error"` too;
//! - `POST /api/v1/hardware/{id}/checkout` (`checkout_to_type: "user"`, `assigned_user`,
//!   `status_id`, `note`, `expected_checkin`) checks a checked-in asset out to a user; one
//!   checked out already answers 200 `"status":"error"` ("That asset is not available for
//!   checkout!");
//! - `GET /api/v1/hardware/{id}` reads an asset back (`assigned_to` null when checked in);
//! - a permission can be withheld ([`FakeSnipeIt::deny`]): 403
//!   `{"status":"error","messages":"Forbidden","payload":null}` (the body is UNCONFIRMED: what
//!   Snipe-IT's API sends for a missing permission, beyond its status).
//!
//! [`snipeit_contract`] is Snipe-IT's description of these operations.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::fake_kit::{
    Contract, FakeServer, Operation, QueryValue, Recorded, Reply, Req, Routes, Shape, obj,
};

pub const TOKEN: &str = "snipe-api-token-7Hq2x";

/// The status labels the instance knows (id → name).
pub const STATUSES: &[(u64, &str)] = &[(2, "Ready to Deploy"), (4, "Pending inspection")];

#[derive(Debug, Clone)]
pub struct SnipeUser {
    pub id: u64,
    pub username: String,
    pub email: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct SnipeAsset {
    pub id: u64,
    pub asset_tag: String,
    pub serial: String,
    pub assigned_to: Option<u64>,
    pub status_id: u64,
    pub location_id: Option<u64>,
    /// The notes of each check-in, in order.
    pub checkin_notes: Vec<String>,
    /// The notes of each check-out through the API, in order.
    pub checkout_notes: Vec<String>,
}

#[derive(Default)]
struct State {
    users: Vec<SnipeUser>,
    assets: Vec<SnipeAsset>,
    next: u64,
    /// (method, path prefix) answered 403.
    denied: Vec<(String, String)>,
    /// Every check-in answers 200 with this error message.
    refuse_checkins: Option<String>,
}

type Shared = Arc<Mutex<State>>;

pub struct FakeSnipeIt {
    pub server: FakeServer,
    state: Shared,
}

fn error_200(messages: Value) -> Reply {
    Reply::json(
        200,
        &json!({ "status": "error", "messages": messages, "payload": null }),
    )
}

/// One page of `items` as Snipe-IT pages: `offset`, `limit`.
fn page(r: &Req<'_>, items: Vec<Value>) -> Reply {
    let offset: usize = r.query("offset").and_then(|p| p.parse().ok()).unwrap_or(0);
    let limit: usize = r.query("limit").and_then(|p| p.parse().ok()).unwrap_or(50);
    let total = items.len();
    let rows: Vec<Value> = items.into_iter().skip(offset).take(limit).collect();
    Reply::json(200, &json!({ "total": total, "rows": rows }))
}

fn render_asset(a: &SnipeAsset, users: &[SnipeUser]) -> Value {
    let assigned = a
        .assigned_to
        .and_then(|id| users.iter().find(|u| u.id == id))
        .map(|u| json!({ "id": u.id, "username": u.username, "name": u.name, "type": "user" }));
    let status = STATUSES
        .iter()
        .find(|(id, _)| *id == a.status_id)
        .map_or("?", |s| s.1);
    json!({
        "id": a.id,
        "asset_tag": a.asset_tag,
        "serial": a.serial,
        "assigned_to": assigned,
        "status_label": { "id": a.status_id, "name": status,
                          "status_meta": if a.assigned_to.is_some() { "deployed" } else { "deployable" } },
    })
}

impl FakeSnipeIt {
    pub async fn start() -> FakeSnipeIt {
        let state: Shared = Arc::new(Mutex::new(State {
            next: 1,
            ..State::default()
        }));
        let mut routes = Routes::new().error_reply(|status, msg| {
            Reply::json(
                status,
                &json!({ "status": "error", "messages": msg, "payload": null }),
            )
        });
        let mut add =
            |method: &'static str, template: &str, f: fn(&mut State, &Req<'_>) -> Reply| {
                let st = state.clone();
                routes = std::mem::take(&mut routes).route(method, template, move |r| {
                    let mut s = st.lock().unwrap();
                    if r.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
                        return Reply::json(401, &json!({ "message": "Unauthenticated." }));
                    }
                    if s.denied
                        .iter()
                        .any(|(m, p)| m == method && r.raw_path.starts_with(p.as_str()))
                    {
                        return Reply::json(
                            403,
                            &json!({ "status": "error", "messages": "Forbidden", "payload": null }),
                        );
                    }
                    f(&mut s, r)
                });
            };
        add("GET", "/api/v1/users", |s, r| {
            let q = r.query("search").unwrap_or("").to_lowercase();
            let items: Vec<Value> = s
                .users
                .iter()
                .filter(|u| {
                    [&u.username, &u.email, &u.name]
                        .iter()
                        .any(|v| v.to_lowercase().contains(&q))
                })
                .map(|u| {
                    json!({ "id": u.id, "username": u.username, "email": u.email,
                            "name": u.name, "assets_count": 0 })
                })
                .collect();
            page(r, items)
        });
        add("GET", "/api/v1/users/{id}/assets", |s, r| {
            let Some(id) = r
                .param("id")
                .parse::<u64>()
                .ok()
                .filter(|id| s.users.iter().any(|u| u.id == *id))
            else {
                return error_200(json!("User not found"));
            };
            let items: Vec<Value> = s
                .assets
                .iter()
                .filter(|a| a.assigned_to == Some(id))
                .map(|a| render_asset(a, &s.users))
                .collect();
            page(r, items)
        });
        add("GET", "/api/v1/hardware/{id}", |s, r| {
            let id: u64 = r.param("id").parse().unwrap_or(0);
            match s.assets.iter().find(|a| a.id == id) {
                Some(a) => Reply::json(200, &render_asset(a, &s.users)),
                None => error_200(json!("Asset does not exist.")),
            }
        });
        add("POST", "/api/v1/hardware/{id}/checkin", |s, r| {
            if let Some(m) = s.refuse_checkins.clone() {
                return error_200(json!(m));
            }
            let id: u64 = r.param("id").parse().unwrap_or(0);
            let Some(body) = r.json else {
                return error_200(json!("the body is not JSON"));
            };
            let status = body["status_id"].as_u64();
            if status.is_some_and(|st| !STATUSES.iter().any(|(i, _)| *i == st)) {
                return error_200(json!({ "status_id": ["The selected status id is invalid."] }));
            }
            let Some(a) = s.assets.iter_mut().find(|a| a.id == id) else {
                return error_200(json!("Asset does not exist."));
            };
            if a.assigned_to.is_none() {
                return error_200(json!("This asset is not checked out."));
            }
            a.assigned_to = None;
            if let Some(st) = status {
                a.status_id = st;
            }
            if let Some(l) = body["location_id"].as_u64() {
                a.location_id = Some(l);
            }
            a.checkin_notes
                .push(body["note"].as_str().unwrap_or("").to_string());
            let tag = a.asset_tag.clone();
            Reply::json(
                200,
                &json!({ "status": "success", "messages": "Asset checked in successfully.",
                         "payload": { "asset": tag } }),
            )
        });
        add("POST", "/api/v1/hardware/{id}/checkout", |s, r| {
            let id: u64 = r.param("id").parse().unwrap_or(0);
            let Some(body) = r.json.cloned() else {
                return error_200(json!("the body is not JSON"));
            };
            if body["checkout_to_type"].as_str() != Some("user") {
                return error_200(
                    json!({ "checkout_to_type": ["The checkout to type field is required."] }),
                );
            }
            let Some(user) = body["assigned_user"]
                .as_u64()
                .filter(|u| s.users.iter().any(|x| x.id == *u))
            else {
                return error_200(
                    json!({ "assigned_user": ["The selected assigned user is invalid."] }),
                );
            };
            let status = body["status_id"].as_u64();
            if status.is_some_and(|st| !STATUSES.iter().any(|(i, _)| *i == st)) {
                return error_200(json!({ "status_id": ["The selected status id is invalid."] }));
            }
            let Some(a) = s.assets.iter_mut().find(|a| a.id == id) else {
                return error_200(json!("Asset does not exist."));
            };
            if a.assigned_to.is_some() {
                return error_200(json!("That asset is not available for checkout!"));
            }
            a.assigned_to = Some(user);
            if let Some(st) = status {
                a.status_id = st;
            }
            a.checkout_notes
                .push(body["note"].as_str().unwrap_or("").to_string());
            let tag = a.asset_tag.clone();
            Reply::json(
                200,
                &json!({ "status": "success", "messages": "Asset checked out successfully.",
                         "payload": { "asset": tag } }),
            )
        });
        let server = FakeServer::start(routes).await;
        FakeSnipeIt { server, state }
    }

    pub fn add_user(&self, username: &str, email: &str) -> u64 {
        let mut s = self.state.lock().unwrap();
        let id = s.next;
        s.next += 1;
        s.users.push(SnipeUser {
            id,
            username: username.into(),
            email: email.into(),
            name: username.into(),
        });
        id
    }

    /// An asset checked out to `user` (or in stock with `None`).
    pub fn add_asset(&self, tag: &str, user: Option<u64>) -> u64 {
        let mut s = self.state.lock().unwrap();
        let id = 1000 + s.next;
        s.next += 1;
        s.assets.push(SnipeAsset {
            id,
            asset_tag: tag.into(),
            serial: format!("SN-{tag}"),
            assigned_to: user,
            status_id: 2,
            location_id: None,
            checkin_notes: Vec::new(),
            checkout_notes: Vec::new(),
        });
        id
    }

    pub fn asset(&self, id: u64) -> SnipeAsset {
        let s = self.state.lock().unwrap();
        s.assets.iter().find(|a| a.id == id).cloned().unwrap()
    }

    /// Check an asset out to someone, behind the tool's back.
    pub fn checkout(&self, asset: u64, user: u64) {
        let mut s = self.state.lock().unwrap();
        s.assets
            .iter_mut()
            .find(|a| a.id == asset)
            .unwrap()
            .assigned_to = Some(user);
    }

    /// Change an asset behind the tool's back.
    pub fn with_asset(&self, asset: u64, f: impl FnOnce(&mut SnipeAsset)) {
        let mut s = self.state.lock().unwrap();
        f(s.assets.iter_mut().find(|a| a.id == asset).unwrap())
    }

    pub fn refuse_checkins(&self, message: &str) {
        self.state.lock().unwrap().refuse_checkins = Some(message.into());
    }

    pub fn deny(&self, method: &str, path: &str) {
        self.state
            .lock()
            .unwrap()
            .denied
            .push((method.into(), path.into()));
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
        self.server.assert_contract(&snipeit_contract());
    }
}

/// Snipe-IT's description of the operations offboard uses.
pub fn snipeit_contract() -> Contract {
    let list = |op: Operation| {
        op.header("authorization: Bearer")
            .header("accept: application/json")
            .query("offset", false, QueryValue::Integer)
            .query("limit", false, QueryValue::Integer)
            .query("sort", false, QueryValue::Any)
            .query("order", false, QueryValue::Any)
    };
    Contract::new("Snipe-IT API v1")
        .op(list(Operation::new("GET", "/api/v1/users")).query("search", false, QueryValue::Any))
        .op(list(Operation::new("GET", "/api/v1/users/{id}/assets")))
        .op(Operation::new("GET", "/api/v1/hardware/{id}")
            .header("authorization: Bearer")
            .header("accept: application/json"))
        .op(Operation::new("POST", "/api/v1/hardware/{id}/checkin")
            .header("authorization: Bearer")
            .json_body(
                obj()
                    .req("status_id", Shape::Integer)
                    .opt("note", Shape::String)
                    .opt("location_id", Shape::Integer)
                    .opt("name", Shape::String),
            ))
        .op(Operation::new("POST", "/api/v1/hardware/{id}/checkout")
            .header("authorization: Bearer")
            .json_body(
                obj()
                    .req(
                        "checkout_to_type",
                        Shape::one_of(&["user", "asset", "location"]),
                    )
                    .opt("assigned_user", Shape::Integer)
                    .opt("assigned_asset", Shape::Integer)
                    .opt("assigned_location", Shape::Integer)
                    .opt("status_id", Shape::Integer)
                    .opt("expected_checkin", Shape::String)
                    .opt("checkout_at", Shape::String)
                    .opt("note", Shape::String)
                    .opt("name", Shape::String),
            ))
}

/// A snipeit system for this fake (the token resolved).
pub fn system_config(base_url: &str) -> offboard::providers::SystemConfig {
    let mut c = offboard::providers::SystemConfig {
        timeout: std::time::Duration::from_secs(10),
        ..offboard::providers::SystemConfig::new("assets", "snipeit", Some(base_url))
    };
    c.token = Some(secrecy::SecretString::from(TOKEN.to_string()));
    c
}
