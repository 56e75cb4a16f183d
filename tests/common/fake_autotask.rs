//! A fake of Autotask PSA's REST API (v1.0) as a service desk, on the fake-server kit, answering
//! as Autotask does (Datto's developer help, and what integrators observe of it):
//!
//! - three headers on every request, `ApiIntegrationCode`, `UserName`, `Secret`: a wrong secret
//!   is 401, but an unknown user or integration code is **500** `{"errors": ["…"]}`;
//! - validation failures are 500 `{"errors": ["…"]}` too (a missing title, data that is not
//!   base64, a picklist value that does not exist);
//! - `GET /v1.0/Tickets/query?search={"filter": […]}` (by ticket number), `GET /v1.0/Tickets/{id}`
//!   → `{"item": …}` (`{"item": null}` when there is no such ticket, and its child lists are
//!   then empty); `PATCH /v1.0/Tickets {"id", "status"}` → `{"itemId"}`;
//! - `GET /v1.0/Tickets/{id}/Attachments` and `/Notes`: `{"items", "pageDetails": {…,
//!   "nextPageUrl"}}` a page at a time; `GET /v1.0/Tickets/{id}/Attachments/{aid}` → the
//!   attachment with its base64 `data`;
//! - `POST /v1.0/Tickets/{id}/Attachments` (JSON, base64 `data`) and `/Notes` → `{"itemId"}`;
//!   a file over 6,000,000 bytes, or more than 10,000,000 bytes in the window, is refused;
//! - `GET /v1.0/Tickets/entityInformation/fields`: the status picklist.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::fake_kit::{
    Contract, FakeServer, Operation, QueryValue, Recorded, Reply, Req, Routes, Shape, obj,
};

#[derive(Debug, Clone)]
pub struct FakeAttachment {
    pub id: u64,
    pub title: String,
    pub full_path: String,
    pub content_type: String,
    pub publish: i64,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct FakeNote {
    pub id: u64,
    pub title: String,
    pub description: String,
    pub note_type: i64,
    pub publish: i64,
}

#[derive(Debug, Clone)]
pub struct FakeTicket {
    pub number: String,
    pub status: i64,
    pub attachments: Vec<FakeAttachment>,
    pub notes: Vec<FakeNote>,
}

/// The ticket status picklist: (value, label, active).
pub const STATUSES: &[(i64, &str, bool)] = &[
    (1, "New", true),
    (5, "Complete", true),
    (7, "Waiting Customer", true),
    (8, "In Progress", true),
    (12, "Retired status", false),
];

pub struct Credentials {
    pub username: String,
    pub integration_code: String,
    pub secret: String,
}

struct State {
    tickets: BTreeMap<u64, FakeTicket>,
    next_id: u64,
    next_ticket: u64,
    page_size: usize,
    window_bytes: usize,
}

pub struct FakeAutotask {
    pub server: FakeServer,
    state: Arc<Mutex<State>>,
}

fn refused(msgs: &[&str]) -> Reply {
    Reply::json(500, &json!({ "errors": msgs }))
}

/// One page of `items` starting at `page` (1-based), with Autotask's page details.
fn page(items: Vec<Value>, page: usize, size: usize, next_base: &str) -> Reply {
    let start = (page - 1) * size;
    let chunk: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
    let next = (start + size < items.len()).then(|| format!("{next_base}?page={}", page + 1));
    let prev = (page > 1).then(|| format!("{next_base}?page={}", page - 1));
    Reply::json(
        200,
        &json!({
            "items": chunk,
            "pageDetails": {"count": chunk.len(), "requestCount": size, "prevPageUrl": prev, "nextPageUrl": next},
        }),
    )
}

impl FakeAutotask {
    pub async fn start(creds: Credentials) -> FakeAutotask {
        let state = Arc::new(Mutex::new(State {
            tickets: BTreeMap::new(),
            next_id: 900,
            next_ticket: 28512,
            page_size: 500,
            window_bytes: 0,
        }));
        let secret_headers = Routes::new()
            .secret_header("apiintegrationcode", &creds.integration_code)
            .secret_header("secret", &creds.secret);
        let creds = Arc::new(creds);
        // Autotask checks the user, then the integration code, then the secret.
        let auth = move |r: &Req<'_>| -> Option<Reply> {
            if r.header("username") != Some(creds.username.as_str()) {
                return Some(refused(&[
                    "Unable to find the API user with the supplied UserName.",
                ]));
            }
            if r.header("apiintegrationcode") != Some(creds.integration_code.as_str()) {
                return Some(refused(&["The API integration code is not valid."]));
            }
            if r.header("secret") != Some(creds.secret.as_str()) {
                return Some(Reply::empty(401));
            }
            None
        };
        let auth = Arc::new(auth);
        let base: Arc<std::sync::OnceLock<String>> = Arc::default();
        let s = state.clone();
        let (a1, a2, a3, a4, a5, a6, a7, a8, a9) = (
            auth.clone(),
            auth.clone(),
            auth.clone(),
            auth.clone(),
            auth.clone(),
            auth.clone(),
            auth.clone(),
            auth.clone(),
            auth,
        );
        let (s1, s2, s3, s4, s5, s6, s7, s8) = (
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s,
        );
        let (b1, b2) = (base.clone(), base.clone());
        let ticket_id = |r: &Req<'_>| r.param("id").parse::<u64>().ok();
        let routes = secret_headers
            .error_reply(|status, msg| Reply::json(status, &json!({ "errors": [msg] })))
            .route("GET", "/v1.0/Tickets/query", move |r| {
                if let Some(e) = a1(r) {
                    return e;
                }
                let Some(search) = r
                    .query("search")
                    .and_then(|q| serde_json::from_str::<Value>(q).ok())
                else {
                    return refused(&["The search parameter is not valid JSON."]);
                };
                let want = search
                    .pointer("/filter/0/value")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let st = s1.lock().unwrap();
                let items: Vec<Value> = st
                    .tickets
                    .iter()
                    .filter(|(_, t)| t.number == want)
                    .map(|(id, t)| json!({ "id": id, "ticketNumber": t.number, "status": t.status }))
                    .collect();
                page(items, 1, 500, "")
            })
            .route("GET", "/v1.0/Tickets/entityInformation/fields", move |r| {
                if let Some(e) = a2(r) {
                    return e;
                }
                let values: Vec<Value> = STATUSES
                    .iter()
                    .map(|(v, l, active)| json!({ "value": v.to_string(), "label": l, "isActive": active, "isDefaultValue": *v == 1 }))
                    .collect();
                Reply::json(
                    200,
                    &json!({ "fields": [
                        { "name": "id", "dataType": "long", "isPickList": false },
                        { "name": "status", "dataType": "integer", "isPickList": true, "picklistValues": values },
                    ]}),
                )
            })
            .route("GET", "/v1.0/Tickets/{id}", move |r| {
                if let Some(e) = a3(r) {
                    return e;
                }
                let st = s2.lock().unwrap();
                match ticket_id(r).and_then(|id| st.tickets.get(&id).map(|t| (id, t))) {
                    Some((id, t)) => Reply::json(
                        200,
                        &json!({ "item": { "id": id, "ticketNumber": t.number, "status": t.status, "title": "Offboard alice" } }),
                    ),
                    None => Reply::json(200, &json!({ "item": null })),
                }
            })
            .route("PATCH", "/v1.0/Tickets", move |r| {
                if let Some(e) = a4(r) {
                    return e;
                }
                let body = r.json.cloned().unwrap_or(Value::Null);
                let mut st = s3.lock().unwrap();
                let Some(t) = body["id"].as_u64().and_then(|id| st.tickets.get_mut(&id)) else {
                    return refused(&["Unable to find the Ticket entity with the supplied id."]);
                };
                if let Some(s) = body.get("status") {
                    let s = s.as_i64().unwrap_or(-1);
                    if !STATUSES.iter().any(|(v, _, active)| *v == s && *active) {
                        return refused(&[&format!("Value {s} for field status is not a valid picklist value.")]);
                    }
                    t.status = s;
                }
                Reply::json(200, &json!({ "itemId": body["id"] }))
            })
            .route("GET", "/v1.0/Tickets/{id}/Attachments", move |r| {
                if let Some(e) = a5(r) {
                    return e;
                }
                let st = s4.lock().unwrap();
                // A ticket that does not exist has no children: an empty list.
                let Some((id, t)) = ticket_id(r).and_then(|id| st.tickets.get(&id).map(|t| (id, t))) else {
                    return page(Vec::new(), 1, st.page_size, "");
                };
                let items = t
                    .attachments
                    .iter()
                    .map(|a| json!({
                        "id": a.id, "parentID": id, "parentType": 4, "title": a.title,
                        "fullPath": a.full_path, "contentType": a.content_type,
                        "attachmentType": "FILE_ATTACHMENT", "publish": a.publish,
                        "fileSize": a.bytes.len() as f64, "attachDate": "2026-11-23T17:00:00Z",
                    }))
                    .collect();
                let n = r.query("page").and_then(|p| p.parse().ok()).unwrap_or(1);
                page(items, n, st.page_size, &format!("{}{}", b1.get().unwrap(), r.raw_path))
            })
            .route("GET", "/v1.0/Tickets/{id}/Attachments/{aid}", move |r| {
                if let Some(e) = a6(r) {
                    return e;
                }
                let st = s5.lock().unwrap();
                let found = ticket_id(r)
                    .and_then(|id| st.tickets.get(&id))
                    .and_then(|t| t.attachments.iter().find(|a| a.id.to_string() == r.param("aid")));
                match found {
                    Some(a) => Reply::json(
                        200,
                        &json!({ "items": [{
                            "id": a.id, "title": a.title, "fullPath": a.full_path,
                            "contentType": a.content_type, "attachmentType": "FILE_ATTACHMENT",
                            "publish": a.publish, "fileSize": a.bytes.len() as f64,
                            "data": STANDARD.encode(&a.bytes),
                        }]}),
                    ),
                    None => Reply::json(200, &json!({ "items": [] })),
                }
            })
            .route("POST", "/v1.0/Tickets/{id}/Attachments", move |r| {
                if let Some(e) = a7(r) {
                    return e;
                }
                let body = r.json.cloned().unwrap_or(Value::Null);
                let mut errors = Vec::new();
                if body["attachmentType"] != "FILE_ATTACHMENT" {
                    errors.push("Value for field attachmentType is not valid.".to_string());
                }
                for f in ["title", "fullPath"] {
                    if body[f].as_str().is_none_or(str::is_empty) {
                        errors.push(format!("Value for field {f} is required."));
                    }
                }
                if !matches!(body["publish"].as_i64(), Some(1 | 2 | 4)) {
                    errors.push("Value for field publish is not a valid picklist value.".into());
                }
                let bytes = match body["data"].as_str().map(|d| STANDARD.decode(d)) {
                    Some(Ok(b)) => b,
                    _ => {
                        errors.push("The attachment data is not valid base64.".into());
                        Vec::new()
                    }
                };
                if !errors.is_empty() {
                    return refused(&errors.iter().map(String::as_str).collect::<Vec<_>>());
                }
                let mut st = s6.lock().unwrap();
                if bytes.len() > 6_000_000 {
                    return refused(&["The attachment exceeds the maximum file size."]);
                }
                if st.window_bytes + bytes.len() > 10_000_000 {
                    return refused(&["Attachment upload threshold exceeded: 10,000,000 bytes in five minutes."]);
                }
                st.window_bytes += bytes.len();
                let id = st.next_id;
                st.next_id += 1;
                let Some(t) = ticket_id(r).and_then(|tid| st.tickets.get_mut(&tid)) else {
                    return refused(&["Unable to find the parent Ticket entity."]);
                };
                t.attachments.push(FakeAttachment {
                    id,
                    title: body["title"].as_str().unwrap().into(),
                    full_path: body["fullPath"].as_str().unwrap().into(),
                    content_type: body["contentType"].as_str().unwrap_or("").into(),
                    publish: body["publish"].as_i64().unwrap(),
                    bytes,
                });
                Reply::json(200, &json!({ "itemId": id }))
            })
            .route("GET", "/v1.0/Tickets/{id}/Notes", move |r| {
                if let Some(e) = a8(r) {
                    return e;
                }
                let st = s7.lock().unwrap();
                let Some((id, t)) = ticket_id(r).and_then(|id| st.tickets.get(&id).map(|t| (id, t))) else {
                    return page(Vec::new(), 1, st.page_size, "");
                };
                let items = t
                    .notes
                    .iter()
                    .map(|n| json!({
                        "id": n.id, "ticketID": id, "title": n.title, "description": n.description,
                        "noteType": n.note_type, "publish": n.publish,
                    }))
                    .collect();
                let n = r.query("page").and_then(|p| p.parse().ok()).unwrap_or(1);
                page(items, n, st.page_size, &format!("{}{}", b2.get().unwrap(), r.raw_path))
            })
            .route("POST", "/v1.0/Tickets/{id}/Notes", move |r| {
                if let Some(e) = a9(r) {
                    return e;
                }
                let body = r.json.cloned().unwrap_or(Value::Null);
                let mut errors = Vec::new();
                for f in ["title", "description"] {
                    if body[f].as_str().is_none_or(str::is_empty) {
                        errors.push(format!("Value for field {f} is required."));
                    }
                }
                for f in ["noteType", "publish"] {
                    if body[f].as_i64().is_none() {
                        errors.push(format!("Value for field {f} is required."));
                    }
                }
                if !errors.is_empty() {
                    return refused(&errors.iter().map(String::as_str).collect::<Vec<_>>());
                }
                let mut st = s8.lock().unwrap();
                let id = st.next_id;
                st.next_id += 1;
                let Some(t) = ticket_id(r).and_then(|tid| st.tickets.get_mut(&tid)) else {
                    return refused(&["Unable to find the parent Ticket entity."]);
                };
                t.notes.push(FakeNote {
                    id,
                    title: body["title"].as_str().unwrap().into(),
                    description: body["description"].as_str().unwrap().into(),
                    note_type: body["noteType"].as_i64().unwrap(),
                    publish: body["publish"].as_i64().unwrap(),
                });
                Reply::json(200, &json!({ "itemId": id }))
            });
        let server = FakeServer::start(routes).await;
        base.set(server.base_url.clone()).unwrap();
        FakeAutotask { server, state }
    }

    /// A new ticket (status New): its id and its number.
    pub fn add_ticket(&self) -> (String, String) {
        let mut st = self.state.lock().unwrap();
        let id = st.next_ticket;
        st.next_ticket += 1;
        let number = format!("T20261123.{:04}", id - 28500);
        st.tickets.insert(
            id,
            FakeTicket {
                number: number.clone(),
                status: 1,
                attachments: Vec::new(),
                notes: Vec::new(),
            },
        );
        (id.to_string(), number)
    }

    pub fn ticket(&self, id: &str) -> FakeTicket {
        self.state.lock().unwrap().tickets[&id.parse::<u64>().unwrap()].clone()
    }

    /// Lists answer this many items per page (Autotask: 500).
    pub fn set_page_size(&self, n: usize) {
        self.state.lock().unwrap().page_size = n;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    #[track_caller]
    pub fn assert_contract(&self) {
        self.server.assert_contract(&autotask_contract());
    }
}

/// The part of Autotask's REST API a service desk kind may use.
pub fn autotask_contract() -> Contract {
    let page = |op: Operation| op.query("page", false, QueryValue::Integer);
    Contract::new("Autotask REST")
        .every_request_header("apiintegrationcode")
        .every_request_header("username")
        .every_request_header("secret")
        .op(Operation::new("GET", "/v1.0/Tickets/query").query("search", true, QueryValue::Any))
        .op(Operation::new(
            "GET",
            "/v1.0/Tickets/entityInformation/fields",
        ))
        .op(Operation::new("GET", "/v1.0/Tickets/{id}"))
        .op(Operation::new("PATCH", "/v1.0/Tickets").json_body(
            obj()
                .req("id", Shape::Integer)
                .req("status", Shape::Integer),
        ))
        .op(page(Operation::new(
            "GET",
            "/v1.0/Tickets/{id}/Attachments",
        )))
        .op(Operation::new(
            "GET",
            "/v1.0/Tickets/{id}/Attachments/{attachmentId}",
        ))
        .op(
            Operation::new("POST", "/v1.0/Tickets/{id}/Attachments").json_body(
                obj()
                    .req("attachmentType", Shape::one_of(&["FILE_ATTACHMENT"]))
                    .req("title", Shape::String)
                    .req("fullPath", Shape::String)
                    .req("publish", Shape::Integer)
                    .req("data", Shape::String)
                    .opt("contentType", Shape::String),
            ),
        )
        .op(page(Operation::new("GET", "/v1.0/Tickets/{id}/Notes")))
        .op(
            Operation::new("POST", "/v1.0/Tickets/{id}/Notes").json_body(
                obj()
                    .req("title", Shape::String)
                    .req("description", Shape::String)
                    .req("noteType", Shape::Integer)
                    .req("publish", Shape::Integer),
            ),
        )
}
