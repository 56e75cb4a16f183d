//! A fake of HaloPSA's REST API as a service desk, on the fake-server kit, from the facts in
//! ../shared/providers.md §8 and the public HaloAPI PowerShell module: the authorisation server
//! at `/auth/token` (`?tenant=` for hosted instances) granting client credentials with scope
//! `all` (400 `{"error": "invalid_client"}` for a wrong secret), a bearer token on every `/api`
//! request (401 with an empty body otherwise; tokens can be revoked to force a renewal);
//! `GET /api/Tickets/{id}`; `GET /api/Attachment?ticket_id=` (`{"record_count", "attachments"}`)
//! and `GET /api/Attachment/{id}` (the bytes); `GET /api/Actions?ticket_id=`
//! (`{"record_count", "actions"}`); and the writes, each a POST of a JSON *array* to the
//! collection: `/api/Attachment [{ticket_id, filename, data_base64}]`,
//! `/api/Actions [{ticket_id, outcome, note, hiddenfromuser}]`, `/api/Tickets [{id, status_id}]`
//! (an update: the id is given). Halo does not document its error bodies; this fake answers a
//! JSON string (what Halo instances are seen to send), e.g. 404 `"Ticket not found"`, and a
//! configurable attachment size limit with 400.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::fake_kit::{
    Contract, FakeServer, Operation, QueryValue, Recorded, Reply, Req, Routes, Shape, obj,
};

#[derive(Debug, Clone)]
pub struct HaloAttachment {
    pub id: u64,
    pub filename: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct HaloAction {
    pub id: u64,
    pub outcome: String,
    pub note: String,
    pub hidden_from_user: bool,
}

#[derive(Debug, Clone)]
pub struct HaloTicket {
    pub status_id: u64,
    pub attachments: Vec<HaloAttachment>,
    pub actions: Vec<HaloAction>,
}

struct State {
    client_id: String,
    secret: String,
    tenant: Option<String>,
    tokens: Vec<String>,
    issued: u32,
    tickets: BTreeMap<u64, HaloTicket>,
    next_id: u64,
    max_size: usize,
}

/// Halo's default statuses (1 New … 9 Closed).
const STATUSES: &[u64] = &[1, 2, 3, 4, 5, 8, 9, 21, 22, 23];

pub struct FakeHalo {
    pub server: FakeServer,
    state: Arc<Mutex<State>>,
}

fn text(status: u16, msg: &str) -> Reply {
    Reply::json(status, &json!(msg))
}

fn records(v: Option<&Value>) -> Result<Vec<Value>, Reply> {
    match v {
        Some(Value::Array(items)) if !items.is_empty() => Ok(items.clone()),
        _ => Err(text(
            400,
            "The request body must be a JSON array of records",
        )),
    }
}

impl FakeHalo {
    /// A Halo instance for the API application `client_id` / `secret`; `tenant` when hosted.
    pub async fn start(client_id: &str, secret: &str, tenant: Option<&str>) -> FakeHalo {
        let state = Arc::new(Mutex::new(State {
            client_id: client_id.into(),
            secret: secret.into(),
            tenant: tenant.map(str::to_string),
            tokens: Vec::new(),
            issued: 0,
            tickets: BTreeMap::new(),
            next_id: 100,
            max_size: 10 * 1024 * 1024,
        }));
        let st = state.clone();
        let authed = move |r: &Req<'_>| {
            let s = st.lock().unwrap();
            r.header("authorization")
                .and_then(|h| h.strip_prefix("Bearer "))
                .is_some_and(|t| s.tokens.iter().any(|k| k == t))
        };
        let s = state.clone();
        let routes = Routes::new()
            .error_reply(text)
            .route("POST", "/auth/token", move |r| {
                let form: BTreeMap<String, String> =
                    url::form_urlencoded::parse(r.body).into_owned().collect();
                let mut st = s.lock().unwrap();
                if st.tenant.as_deref() != r.query("tenant") {
                    return Reply::json(
                        400,
                        &json!({"error": "invalid_request", "error_description": "unknown tenant"}),
                    );
                }
                if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
                    return Reply::json(400, &json!({"error": "unsupported_grant_type"}));
                }
                if form.get("client_id") != Some(&st.client_id)
                    || form.get("client_secret") != Some(&st.secret)
                {
                    return Reply::json(400, &json!({"error": "invalid_client"}));
                }
                if !form
                    .get("scope")
                    .is_some_and(|s| s.split(' ').any(|x| x == "all"))
                {
                    return Reply::json(400, &json!({"error": "invalid_scope"}));
                }
                st.issued += 1;
                let token = format!("halo-at-{}", st.issued);
                st.tokens.push(token.clone());
                Reply::json(
                    200,
                    &json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600}),
                )
            });
        let api = |routes: Routes,
                   method: &str,
                   path: &str,
                   state: Arc<Mutex<State>>,
                   authed: Arc<dyn Fn(&Req<'_>) -> bool + Send + Sync>,
                   f: fn(&mut State, &Req<'_>) -> Reply| {
            routes.route(method, path, move |r| {
                if !authed(r) {
                    return Reply::empty(401);
                }
                f(&mut state.lock().unwrap(), r)
            })
        };
        let authed: Arc<dyn Fn(&Req<'_>) -> bool + Send + Sync> = Arc::new(authed);
        let routes = api(
            routes,
            "GET",
            "/api/Tickets/{id}",
            state.clone(),
            authed.clone(),
            |st, r| match r
                .param("id")
                .parse::<u64>()
                .ok()
                .and_then(|id| st.tickets.get(&id).map(|t| (id, t)))
            {
                Some((id, t)) => Reply::json(
                    200,
                    &json!({"id": id, "summary": format!("Offboard #{id}"), "status_id": t.status_id}),
                ),
                None => text(404, "Ticket not found"),
            },
        );
        let routes = api(
            routes,
            "GET",
            "/api/Attachment",
            state.clone(),
            authed.clone(),
            |st, r| {
                let id = r.query("ticket_id").and_then(|t| t.parse::<u64>().ok());
                let list: Vec<Value> = id
                .and_then(|id| st.tickets.get(&id))
                .map(|t| {
                    t.attachments
                        .iter()
                        .map(|a| json!({"id": a.id, "ticket_id": id, "filename": a.filename, "filesize": a.bytes.len()}))
                        .collect()
                })
                .unwrap_or_default();
                Reply::json(
                    200,
                    &json!({"record_count": list.len(), "attachments": list}),
                )
            },
        );
        let routes = api(
            routes,
            "GET",
            "/api/Attachment/{id}",
            state.clone(),
            authed.clone(),
            |st, r| {
                let id = r.param("id").parse::<u64>().ok();
                match st
                    .tickets
                    .values()
                    .flat_map(|t| &t.attachments)
                    .find(|a| Some(a.id) == id)
                {
                    Some(a) => Reply {
                        status: 200,
                        headers: vec![
                            ("content-type".into(), "application/octet-stream".into()),
                            (
                                "content-disposition".into(),
                                format!("attachment; filename=\"{}\"", a.filename),
                            ),
                        ],
                        body: a.bytes.clone(),
                    },
                    None => text(404, "Attachment not found"),
                }
            },
        );
        let routes = api(
            routes,
            "GET",
            "/api/Actions",
            state.clone(),
            authed.clone(),
            |st, r| {
                let id = r.query("ticket_id").and_then(|t| t.parse::<u64>().ok());
                let list: Vec<Value> = id
                .and_then(|id| st.tickets.get(&id))
                .map(|t| {
                    t.actions
                        .iter()
                        .map(|a| json!({"id": a.id, "ticket_id": id, "outcome": a.outcome, "note": a.note, "hiddenfromuser": a.hidden_from_user}))
                        .collect()
                })
                .unwrap_or_default();
                Reply::json(200, &json!({"record_count": list.len(), "actions": list}))
            },
        );
        let routes = api(
            routes,
            "POST",
            "/api/Attachment",
            state.clone(),
            authed.clone(),
            |st, r| {
                let recs = match records(r.json) {
                    Ok(v) => v,
                    Err(e) => return e,
                };
                let mut made = Vec::new();
                for rec in recs {
                    let Some(tid) = rec["ticket_id"]
                        .as_u64()
                        .filter(|t| st.tickets.contains_key(t))
                    else {
                        return text(400, "Invalid ticket_id");
                    };
                    let Some(bytes) = rec["data_base64"]
                        .as_str()
                        .and_then(|d| STANDARD.decode(d).ok())
                    else {
                        return text(400, "data_base64 is not valid base64");
                    };
                    if bytes.len() > st.max_size {
                        return text(
                            400,
                            &format!(
                                "The attachment is larger than the maximum allowed size of {} bytes",
                                st.max_size
                            ),
                        );
                    }
                    st.next_id += 1;
                    let a = HaloAttachment {
                        id: st.next_id,
                        filename: rec["filename"].as_str().unwrap_or("").into(),
                        bytes,
                    };
                    made.push(json!({"id": a.id, "ticket_id": tid, "filename": a.filename, "filesize": a.bytes.len()}));
                    st.tickets.get_mut(&tid).unwrap().attachments.push(a);
                }
                Reply::json(201, &made[0])
            },
        );
        let routes = api(
            routes,
            "POST",
            "/api/Actions",
            state.clone(),
            authed.clone(),
            |st, r| {
                let recs = match records(r.json) {
                    Ok(v) => v,
                    Err(e) => return e,
                };
                let rec = &recs[0];
                let Some(tid) = rec["ticket_id"]
                    .as_u64()
                    .filter(|t| st.tickets.contains_key(t))
                else {
                    return text(400, "Invalid ticket_id");
                };
                st.next_id += 1;
                let a = HaloAction {
                    id: st.next_id,
                    outcome: rec["outcome"].as_str().unwrap_or("").into(),
                    note: rec["note"].as_str().unwrap_or("").into(),
                    hidden_from_user: rec["hiddenfromuser"].as_bool().unwrap_or(false),
                };
                let out = json!({"id": a.id, "ticket_id": tid, "outcome": a.outcome, "note": a.note, "hiddenfromuser": a.hidden_from_user});
                st.tickets.get_mut(&tid).unwrap().actions.push(a);
                Reply::json(201, &out)
            },
        );
        let routes = api(
            routes,
            "POST",
            "/api/Tickets",
            state.clone(),
            authed,
            |st, r| {
                let recs = match records(r.json) {
                    Ok(v) => v,
                    Err(e) => return e,
                };
                let rec = &recs[0];
                let Some(id) = rec["id"].as_u64() else {
                    return text(400, "creating tickets is not part of this fake");
                };
                let Some(t) = st.tickets.get_mut(&id) else {
                    return text(404, "Ticket not found");
                };
                if let Some(s) = rec["status_id"].as_u64().filter(|s| STATUSES.contains(s)) {
                    t.status_id = s;
                }
                Reply::json(201, &json!({"id": id, "status_id": t.status_id}))
            },
        );
        let server = FakeServer::start(routes).await;
        FakeHalo { server, state }
    }

    /// A new ticket (status 1, New); its id.
    pub fn add_ticket(&self) -> String {
        let mut st = self.state.lock().unwrap();
        st.next_id += 1;
        let id = st.next_id;
        st.tickets.insert(
            id,
            HaloTicket {
                status_id: 1,
                attachments: Vec::new(),
                actions: Vec::new(),
            },
        );
        id.to_string()
    }

    pub fn ticket(&self, id: &str) -> HaloTicket {
        self.state.lock().unwrap().tickets[&id.parse::<u64>().unwrap()].clone()
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> u32 {
        self.state.lock().unwrap().issued
    }

    /// Every token issued so far stops working (as after an expiry Halo decided early).
    pub fn revoke_tokens(&self) {
        self.state.lock().unwrap().tokens.clear();
    }

    pub fn set_max_size(&self, bytes: usize) {
        self.state.lock().unwrap().max_size = bytes;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    pub fn assert_contract(&self) {
        self.server.assert_contract(&halo_contract());
    }
}

/// The part of Halo's API a service desk kind may use: the token request, reads by ticket, and
/// writes as arrays of records.
pub fn halo_contract() -> Contract {
    let write = |record: super::fake_kit::ObjectShape| Shape::array(record);
    Contract::new("HaloPSA")
        .op(Operation::new("POST", "/auth/token")
            .query("tenant", false, QueryValue::Any)
            .raw_body("application/x-www-form-urlencoded"))
        .op(Operation::new("GET", "/api/Tickets/{id}").header("authorization: Bearer"))
        .op(Operation::new("GET", "/api/Attachment")
            .header("authorization: Bearer")
            .query("ticket_id", true, QueryValue::Integer))
        .op(Operation::new("GET", "/api/Attachment/{id}").header("authorization: Bearer"))
        .op(Operation::new("GET", "/api/Actions")
            .header("authorization: Bearer")
            .query("ticket_id", true, QueryValue::Integer)
            .query("excludesys", false, QueryValue::Exact("true".into())))
        .op(Operation::new("POST", "/api/Attachment")
            .header("authorization: Bearer")
            .json_body(write(
                obj()
                    .req("ticket_id", Shape::Integer)
                    .req("filename", Shape::String)
                    .req("data_base64", Shape::String),
            )))
        .op(Operation::new("POST", "/api/Actions")
            .header("authorization: Bearer")
            .json_body(write(
                obj()
                    .req("ticket_id", Shape::Integer)
                    .req("outcome", Shape::String)
                    .req("note", Shape::String)
                    .req("hiddenfromuser", Shape::Bool),
            )))
        .op(Operation::new("POST", "/api/Tickets")
            .header("authorization: Bearer")
            .json_body(write(
                obj()
                    .req("id", Shape::Integer)
                    .req("status_id", Shape::Integer),
            )))
}
