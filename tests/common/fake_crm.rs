//! A fake of a typical REST SaaS ("Acme CRM") for the declarative `http` kind, on the fake-server
//! kit: bearer auth (401 with a JSON error otherwise), `GET /v2/users?email=` (an exact,
//! case-insensitive search answering `{"data": [...]}`), `GET /v2/users?page=N` (every user, two
//! per page, the next page in a `Link` header), `GET /v2/users/{id}` (404 once deleted),
//! `PATCH /v2/users/{id}` with `{"status": "active"|"disabled"}`, and `DELETE /v2/users/{id}`
//! (204, then 404).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::fake_kit::{
    Contract, FakeServer, Operation, QueryValue, Recorded, Reply, Routes, Shape, obj,
};

#[derive(Debug, Clone)]
pub struct CrmUser {
    pub email: String,
    pub status: String,
}

pub struct FakeCrm {
    pub server: FakeServer,
    pub token: String,
    users: Arc<Mutex<BTreeMap<String, CrmUser>>>,
    next: Arc<Mutex<u32>>,
}

fn error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({ "error": { "code": status, "message": message } }),
    )
}

fn render(id: &str, u: &CrmUser) -> Value {
    json!({ "id": id, "email": u.email, "status": u.status })
}

impl FakeCrm {
    pub async fn start(token: &str) -> FakeCrm {
        let users: Arc<Mutex<BTreeMap<String, CrmUser>>> = Arc::default();
        let base: Arc<std::sync::OnceLock<String>> = Arc::default();
        let want = format!("Bearer {token}");
        let authed =
            move |r: &super::fake_kit::Req<'_>| r.header("authorization") == Some(want.as_str());
        let (a1, a2, a3, a4) = (authed.clone(), authed.clone(), authed.clone(), authed);
        let (u1, u2, u3, u4) = (users.clone(), users.clone(), users.clone(), users.clone());
        let b = base.clone();
        let routes = Routes::new()
            .error_reply(error)
            .route("GET", "/v2/users", move |r| {
                if !a1(r) {
                    return error(401, "invalid or missing API token");
                }
                let users = u1.lock().unwrap();
                if let Some(email) = r.query("email") {
                    let found: Vec<Value> = users
                        .iter()
                        .filter(|(_, u)| u.email.eq_ignore_ascii_case(email))
                        .map(|(id, u)| render(id, u))
                        .collect();
                    return Reply::json(200, &json!({ "data": found }));
                }
                let page: usize = r.query("page").unwrap_or("0").parse().unwrap_or(0);
                let all: Vec<Value> = users.iter().map(|(id, u)| render(id, u)).collect();
                let chunk: Vec<Value> = all.iter().skip(page * 2).take(2).cloned().collect();
                let mut reply = Reply::json(200, &json!({ "data": chunk }));
                if (page + 1) * 2 < all.len() {
                    let next = format!("{}/v2/users?page={}", b.get().unwrap(), page + 1);
                    reply = reply.header("link", format!("<{next}>; rel=\"next\""));
                }
                reply
            })
            .route("GET", "/v2/users/{id}", move |r| {
                if !a2(r) {
                    return error(401, "invalid or missing API token");
                }
                match u2.lock().unwrap().get(r.param("id")) {
                    Some(u) => Reply::json(200, &render(r.param("id"), u)),
                    None => error(404, "user not found"),
                }
            })
            .route("PATCH", "/v2/users/{id}", move |r| {
                if !a3(r) {
                    return error(401, "invalid or missing API token");
                }
                let status = r
                    .json
                    .and_then(|j| j["status"].as_str())
                    .map(str::to_string);
                let mut users = u3.lock().unwrap();
                let Some(u) = users.get_mut(r.param("id")) else {
                    return error(404, "user not found");
                };
                match status.as_deref() {
                    Some("active" | "disabled") => {
                        u.status = status.unwrap();
                        Reply::json(200, &render(r.param("id"), u))
                    }
                    _ => error(422, "status must be active or disabled"),
                }
            })
            .route("DELETE", "/v2/users/{id}", move |r| {
                if !a4(r) {
                    return error(401, "invalid or missing API token");
                }
                match u4.lock().unwrap().remove(r.param("id")) {
                    Some(_) => Reply::empty(204),
                    None => error(404, "user not found"),
                }
            });
        let server = FakeServer::start(routes).await;
        base.set(server.base_url.clone()).unwrap();
        FakeCrm {
            server,
            token: token.to_string(),
            users,
            next: Arc::new(Mutex::new(17)),
        }
    }

    /// Add a user; its id (`u-17`, `u-18`, …).
    pub fn add_user(&self, email: &str, status: &str) -> String {
        let mut n = self.next.lock().unwrap();
        let id = format!("u-{n}");
        *n += 1;
        self.users.lock().unwrap().insert(
            id.clone(),
            CrmUser {
                email: email.into(),
                status: status.into(),
            },
        );
        id
    }

    pub fn user(&self, id: &str) -> Option<CrmUser> {
        self.users.lock().unwrap().get(id).cloned()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    /// Every request the `http` kind sent must be one this API documents.
    pub fn assert_contract(&self) {
        self.server.assert_contract(&crm_contract());
    }
}

/// The API as documented: bearer auth on every request, the search by `email` or `page`, reads,
/// a PATCH of `status` only, and DELETE by id.
pub fn crm_contract() -> Contract {
    Contract::new("Acme CRM v2")
        .every_request_header("authorization: Bearer")
        .op(Operation::new("GET", "/v2/users").query("email", true, QueryValue::Any))
        .op(Operation::new("GET", "/v2/users").query("page", false, QueryValue::Integer))
        .op(Operation::new("GET", "/v2/users/{id}"))
        .op(Operation::new("PATCH", "/v2/users/{id}")
            .json_body(obj().req("status", Shape::one_of(&["active", "disabled"]))))
        .op(Operation::new("DELETE", "/v2/users/{id}"))
}
