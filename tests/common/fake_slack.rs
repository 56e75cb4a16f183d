//! A fake Slack on the fake-server kit: the SCIM v2 API under `/scim/v2` and the Web API under
//! `/api`, as ../shared/providers.md §4 describes them.
//!
//! SCIM: bearer token with the `admin` scope (else 401 / 403 with an error body: the RFC shape,
//! or Slack's legacy `{"Errors": {"description", "code"}}` with `legacy_errors`), `GET
//! /Users?filter=userName eq "…"` or `emails.value eq "…"` (a ListResponse), `GET /Users/{id}`
//! (404 when unknown), `DELETE /Users/{id}` (204: deactivates, the user stays readable with
//! `active: false`), `PATCH /Users/{id}` replacing `active` (200 with the user: reactivates). Web API: `POST /api/admin.users.session.reset` (JSON or form) answering HTTP
//! 200 with `{"ok": true}` or `{"ok": false, "error": …}` (`not_authed` without a token,
//! `invalid_auth` with another, `missing_scope` with `needed`/`provided` when the token lacks
//! `admin.users:write`, `user_not_found`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::fake_kit::{
    Contract, FakeServer, Operation, QueryValue, Recorded, Reply, Req, Routes, Shape, obj,
};

#[derive(Debug, Clone)]
pub struct SlackUser {
    pub user_name: String,
    pub email: String,
    pub active: bool,
    /// How many times `admin.users.session.reset` wiped this user's sessions.
    pub resets: u32,
}

#[derive(Default)]
struct State {
    users: BTreeMap<String, SlackUser>,
    /// The scopes the token carries.
    scopes: Vec<String>,
    legacy_errors: bool,
    /// PATCH requests that changed a user.
    patches: u32,
    next: u32,
}

pub struct FakeSlack {
    pub server: FakeServer,
    pub token: String,
    state: Arc<Mutex<State>>,
}

const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

fn scim_error(state: &State, status: u16, detail: &str) -> Reply {
    if state.legacy_errors {
        Reply::json(
            status,
            &json!({ "Errors": { "description": detail, "code": status } }),
        )
    } else {
        Reply::json(
            status,
            &json!({ "schemas": [ERROR], "status": status.to_string(), "detail": detail }),
        )
    }
}

fn render(id: &str, u: &SlackUser) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": id,
        "userName": u.user_name,
        "emails": [{ "value": u.email, "primary": true }],
        "active": u.active,
    })
}

/// `Some(reply)` when the request is not let through: no or another token (401), or a token
/// without `scope` (403 for SCIM).
fn scim_auth(r: &Req<'_>, token: &str, state: &State) -> Option<Reply> {
    if r.header("authorization") != Some(format!("Bearer {token}").as_str()) {
        return Some(scim_error(state, 401, "invalid_authentication"));
    }
    if !state.scopes.iter().any(|s| s == "admin") {
        return Some(scim_error(state, 403, "missing_scope: admin"));
    }
    None
}

fn web(ok: bool, error: Option<&str>) -> Reply {
    match error {
        None => Reply::json(200, &json!({ "ok": ok })),
        Some(e) => Reply::json(200, &json!({ "ok": false, "error": e })),
    }
}

/// A form or JSON body's fields, as Slack reads them.
fn fields(r: &Req<'_>) -> BTreeMap<String, String> {
    if let Some(Value::Object(m)) = r.json {
        return m
            .iter()
            .map(|(k, v)| {
                let s = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                (k.clone(), s)
            })
            .collect();
    }
    url::form_urlencoded::parse(r.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

impl FakeSlack {
    pub async fn start(token: &str) -> FakeSlack {
        let state: Arc<Mutex<State>> = Arc::new(Mutex::new(State {
            scopes: vec!["admin".into(), "admin.users:write".into()],
            next: 1,
            ..State::default()
        }));
        let t = token.to_string();
        let (s1, s2, s3, s4) = (state.clone(), state.clone(), state.clone(), state.clone());
        let s5 = state.clone();
        let (t1, t2, t3, t4) = (t.clone(), t.clone(), t.clone(), t.clone());
        let t5 = t;
        let routes = Routes::new()
            .error_reply(|status, msg| {
                Reply::json(
                    status,
                    &json!({ "schemas": [ERROR], "status": status.to_string(), "detail": msg }),
                )
            })
            .route("GET", "/scim/v2/Users", move |r| {
                let st = s1.lock().unwrap();
                if let Some(no) = scim_auth(r, &t1, &st) {
                    return no;
                }
                let filter = r.query("filter").unwrap_or("");
                let Some((attr, value)) = filter.split_once(" eq ") else {
                    return scim_error(&st, 400, "invalid_filter");
                };
                let Ok(value) = serde_json::from_str::<String>(value) else {
                    return scim_error(&st, 400, "invalid_filter");
                };
                let found: Vec<Value> = st
                    .users
                    .iter()
                    .filter(|(_, u)| match attr {
                        "userName" => u.user_name.eq_ignore_ascii_case(&value),
                        "emails.value" => u.email.eq_ignore_ascii_case(&value),
                        _ => false,
                    })
                    .map(|(id, u)| render(id, u))
                    .collect();
                Reply::json(
                    200,
                    &json!({
                        "schemas": [LIST],
                        "totalResults": found.len(),
                        "itemsPerPage": found.len(),
                        "startIndex": 1,
                        "Resources": found,
                    }),
                )
            })
            .route("GET", "/scim/v2/Users/{id}", move |r| {
                let st = s2.lock().unwrap();
                if let Some(no) = scim_auth(r, &t2, &st) {
                    return no;
                }
                match st.users.get(r.param("id")) {
                    Some(u) => Reply::json(200, &render(r.param("id"), u)),
                    None => scim_error(&st, 404, "User not found"),
                }
            })
            .route("DELETE", "/scim/v2/Users/{id}", move |r| {
                let mut st = s3.lock().unwrap();
                if let Some(no) = scim_auth(r, &t3, &st) {
                    return no;
                }
                let id = r.param("id").to_string();
                match st.users.get_mut(&id) {
                    Some(u) => {
                        u.active = false;
                        Reply::empty(204)
                    }
                    None => scim_error(&st, 404, "User not found"),
                }
            })
            .route("PATCH", "/scim/v2/Users/{id}", move |r| {
                let mut st = s5.lock().unwrap();
                if let Some(no) = scim_auth(r, &t5, &st) {
                    return no;
                }
                let id = r.param("id").to_string();
                let Some(ops) = r.json.and_then(|b| b["Operations"].as_array()).cloned() else {
                    return scim_error(&st, 400, "invalid_syntax");
                };
                let Some(u) = st.users.get_mut(&id) else {
                    return scim_error(&st, 404, "User not found");
                };
                for op in ops {
                    let path = op["path"].as_str().unwrap_or("");
                    match (op["op"].as_str(), path, op["value"].as_bool()) {
                        (Some(o), "active", Some(v)) if o.eq_ignore_ascii_case("replace") => {
                            u.active = v
                        }
                        _ => return scim_error(&st, 400, "invalid_path"),
                    }
                }
                let u = u.clone();
                st.patches += 1;
                Reply::json(200, &render(&id, &u))
            })
            .route("POST", "/api/admin.users.session.reset", move |r| {
                let mut st = s4.lock().unwrap();
                match r.header("authorization") {
                    None => return web(false, Some("not_authed")),
                    Some(h) if h != format!("Bearer {t4}") => {
                        return web(false, Some("invalid_auth"));
                    }
                    Some(_) => {}
                }
                if !st.scopes.iter().any(|s| s == "admin.users:write") {
                    return Reply::json(
                        200,
                        &json!({
                            "ok": false,
                            "error": "missing_scope",
                            "needed": "admin.users:write",
                            "provided": st.scopes.join(","),
                        }),
                    );
                }
                let f = fields(r);
                let Some(id) = f.get("user_id") else {
                    return web(false, Some("invalid_arguments"));
                };
                match st.users.get_mut(id) {
                    Some(u) => {
                        u.resets += 1;
                        web(true, None)
                    }
                    None => web(false, Some("user_not_found")),
                }
            });
        let server = FakeServer::start(routes).await;
        FakeSlack {
            server,
            token: token.to_string(),
            state,
        }
    }

    /// The SCIM base (`…/scim/v2`).
    pub fn scim_url(&self) -> String {
        self.server.url("/scim/v2")
    }

    /// The Web API base (`…/api`).
    pub fn api_url(&self) -> String {
        self.server.url("/api")
    }

    /// Add an active user; its id (`W0001`, `W0002`, …).
    pub fn add_user(&self, user_name: &str, email: &str) -> String {
        let mut st = self.state.lock().unwrap();
        let id = format!("W{:04}", st.next);
        st.next += 1;
        st.users.insert(
            id.clone(),
            SlackUser {
                user_name: user_name.into(),
                email: email.into(),
                active: true,
                resets: 0,
            },
        );
        id
    }

    pub fn user(&self, id: &str) -> Option<SlackUser> {
        self.state.lock().unwrap().users.get(id).cloned()
    }

    /// An admin re-activates the user behind the tool's back.
    /// How many SCIM PATCH requests were served.
    pub fn patches(&self) -> u32 {
        self.state.lock().unwrap().patches
    }

    pub fn reactivate(&self, id: &str) {
        self.state.lock().unwrap().users.get_mut(id).unwrap().active = true;
    }

    /// The user is gone from the organisation (SCIM answers 404 by id).
    pub fn remove(&self, id: &str) {
        self.state.lock().unwrap().users.remove(id);
    }

    /// The token carries exactly these scopes from now on.
    pub fn set_scopes(&self, scopes: &[&str]) {
        self.state.lock().unwrap().scopes = scopes.iter().map(|s| s.to_string()).collect();
    }

    /// SCIM errors in Slack's legacy `Errors` shape from now on.
    pub fn legacy_errors(&self) {
        self.state.lock().unwrap().legacy_errors = true;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    /// Every request sent must be one Slack documents.
    pub fn assert_contract(&self) {
        self.server.assert_contract(&slack_contract());
    }
}

/// Slack's SCIM v2 user operations offboard may use, and `admin.users.session.reset` with its
/// documented parameters (`user_id`, `mobile_only`, `web_only`), all with a bearer token.
pub fn slack_contract() -> Contract {
    Contract::new("Slack SCIM v2 + Web API")
        .every_request_header("authorization: Bearer")
        .op(Operation::new("GET", "/scim/v2/Users")
            .query("filter", true, QueryValue::Any)
            .query("startIndex", false, QueryValue::Integer)
            .query("count", false, QueryValue::Integer))
        .op(Operation::new("GET", "/scim/v2/Users/{id}"))
        .op(Operation::new("DELETE", "/scim/v2/Users/{id}"))
        .op(Operation::new("PATCH", "/scim/v2/Users/{id}").json_body(
            obj().req("schemas", Shape::array(Shape::String)).req(
                "Operations",
                Shape::array(
                    obj()
                        .req("op", Shape::String)
                        .opt("path", Shape::String)
                        .opt("value", Shape::Any),
                ),
            ),
        ))
        .op(
            Operation::new("POST", "/api/admin.users.session.reset").json_body(
                obj()
                    .req("user_id", Shape::String)
                    .opt("mobile_only", Shape::Bool)
                    .opt("web_only", Shape::Bool),
            ),
        )
}
