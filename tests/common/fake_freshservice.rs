//! A fake of Freshservice's API v2 as a service desk, on the fake-server kit, answering as
//! Freshservice does (api.freshservice.com):
//!
//! - HTTP Basic with the API key as the user and `X` as the password, else 401
//!   `{"code": "invalid_credentials", "message"}`;
//! - `GET /api/v2/tickets/{id}` → `{"ticket": {…, "attachments": [{id, name, size,
//!   content_type, attachment_url}]}}`, the URL a signed one on another host;
//! - `PUT /api/v2/tickets/{id}`: as `multipart/form-data`, each `attachments[]` part appended to
//!   the ticket; as JSON, its fields (`status`: 2–5, else 400 `Validation failed`); either way
//!   the ticket is the answer;
//! - `GET /api/v2/tickets/{id}/conversations?per_page=…&page=…` → `{"conversations": […]}` with
//!   `body` (HTML) and `body_text`, `Link: <…>; rel="next"` while there are more;
//! - `POST /api/v2/tickets/{id}/notes {"body", "private"}` → 201 `{"conversation": …}`;
//! - 429 with `Retry-After` and `X-Ratelimit-*` when asked to.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Value, json};

use super::fake_kit::{
    Contract, FakeServer, Operation, QueryValue, Recorded, Reply, Req, Routes, Shape, obj,
    parse_multipart,
};

#[derive(Debug, Clone)]
pub struct FakeAttachment {
    pub id: u64,
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct FakeConversation {
    pub id: u64,
    pub body: String,
    pub private: bool,
}

#[derive(Debug, Clone)]
pub struct FakeTicket {
    pub status: u64,
    pub attachments: Vec<FakeAttachment>,
    pub conversations: Vec<FakeConversation>,
}

#[derive(Default)]
struct State {
    tickets: BTreeMap<u64, FakeTicket>,
    next_id: u64,
    /// Times a multipart PUT was received (each appends its attachments).
    uploads: usize,
}

pub struct FakeFreshservice {
    pub server: FakeServer,
    state: Arc<Mutex<State>>,
}

fn not_found() -> Reply {
    Reply::json(
        404,
        &json!({ "code": "not_found", "message": "Record not found" }),
    )
}

fn validation(field: &str, message: &str, code: &str) -> Reply {
    Reply::json(
        400,
        &json!({ "description": "Validation failed", "errors": [{ "field": field, "message": message, "code": code }] }),
    )
}

/// What Freshservice keeps as a note's text: tags dropped, `<br>` as new lines, entities read.
fn body_text(html: &str) -> String {
    let with_lines = html.replace("<br>", "\n");
    let mut out = String::new();
    let mut in_tag = false;
    for c in with_lines.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn ticket_json(id: u64, t: &FakeTicket) -> Value {
    json!({ "ticket": {
        "id": id, "subject": "Offboard alice", "status": t.status, "priority": 1,
        "attachments": t.attachments.iter().map(|a| json!({
            "id": a.id, "name": a.name, "size": a.bytes.len(), "content_type": a.content_type,
            "attachment_url": format!("https://s3.amazonaws.com/cdn.freshservice.com/data/helpdesk/attachments/{}/{}?X-Amz-Signature=abc", a.id, a.name),
            "created_at": "2026-11-23T17:00:00Z", "updated_at": "2026-11-23T17:00:00Z",
        })).collect::<Vec<_>>(),
    }})
}

impl FakeFreshservice {
    pub async fn start(api_key: &str) -> FakeFreshservice {
        let state = Arc::new(Mutex::new(State {
            next_id: 7000,
            ..State::default()
        }));
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{api_key}:X"))
        );
        let auth = Arc::new(move |r: &Req<'_>| -> Option<Reply> {
            (r.header("authorization") != Some(basic.as_str())).then(|| {
                Reply::json(
                    401,
                    &json!({ "code": "invalid_credentials", "message": "You have to be logged in to perform this action." }),
                )
            })
        });
        let base: Arc<std::sync::OnceLock<String>> = Arc::default();
        let id_of = |r: &Req<'_>| r.param("id").parse::<u64>().ok();

        let (a, s) = (auth.clone(), state.clone());
        let get = move |r: &Req<'_>| {
            if let Some(e) = a(r) {
                return e;
            }
            let st = s.lock().unwrap();
            match id_of(r).and_then(|id| st.tickets.get(&id).map(|t| (id, t))) {
                Some((id, t)) => Reply::json(200, &ticket_json(id, t)),
                None => not_found(),
            }
        };

        let (a, s) = (auth.clone(), state.clone());
        let put = move |r: &Req<'_>| {
            if let Some(e) = a(r) {
                return e;
            }
            let mut st = s.lock().unwrap();
            let Some(id) = id_of(r).filter(|id| st.tickets.contains_key(id)) else {
                return not_found();
            };
            let ct = r.header("content-type").unwrap_or("");
            if ct.starts_with("multipart/form-data") {
                let parts = match parse_multipart(ct, r.body) {
                    Ok(p) => p,
                    Err(e) => return validation("attachments", &e, "invalid_value"),
                };
                st.uploads += 1;
                for p in parts {
                    if p.name != "attachments[]" {
                        return validation(
                            &p.name,
                            "Unexpected/invalid field in request",
                            "invalid_field",
                        );
                    }
                    let aid = st.next_id;
                    st.next_id += 1;
                    st.tickets
                        .get_mut(&id)
                        .unwrap()
                        .attachments
                        .push(FakeAttachment {
                            id: aid,
                            name: p.filename.clone().unwrap_or_default(),
                            content_type: p.content_type.clone().unwrap_or_default(),
                            bytes: p.bytes,
                        });
                }
            } else {
                let body = r.json.cloned().unwrap_or(Value::Null);
                if let Some(status) = body.get("status") {
                    match status.as_u64() {
                        Some(n @ 2..=5) => st.tickets.get_mut(&id).unwrap().status = n,
                        _ => {
                            return validation(
                                "status",
                                "It should be one of these values: '2,3,4,5'",
                                "invalid_value",
                            );
                        }
                    }
                }
            }
            Reply::json(200, &ticket_json(id, &st.tickets[&id]))
        };

        let (a, s, b) = (auth.clone(), state.clone(), base.clone());
        let conversations = move |r: &Req<'_>| {
            if let Some(e) = a(r) {
                return e;
            }
            let st = s.lock().unwrap();
            let Some((id, t)) = id_of(r).and_then(|id| st.tickets.get(&id).map(|t| (id, t))) else {
                return not_found();
            };
            let per: usize = r
                .query("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(30)
                .clamp(1, 100);
            let page: usize = r
                .query("page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1);
            let all = &t.conversations;
            let chunk: Vec<Value> = all
                .iter()
                .skip((page - 1) * per)
                .take(per)
                .map(|c| json!({
                    "id": c.id, "body": c.body, "body_text": body_text(&c.body), "private": c.private,
                    "incoming": false, "ticket_id": id, "created_at": "2026-11-23T17:00:00Z",
                }))
                .collect();
            let mut reply = Reply::json(200, &json!({ "conversations": chunk }));
            if page * per < all.len() {
                reply = reply.header(
                    "link",
                    format!(
                        "<{}/api/v2/tickets/{id}/conversations?per_page={per}&page={}>; rel=\"next\"",
                        b.get().unwrap(),
                        page + 1
                    ),
                );
            }
            reply
        };

        let (a, s) = (auth, state.clone());
        let note = move |r: &Req<'_>| {
            if let Some(e) = a(r) {
                return e;
            }
            let body = r.json.cloned().unwrap_or(Value::Null);
            let Some(text) = body["body"].as_str().filter(|t| !t.is_empty()) else {
                return validation("body", "It should be a/an String", "missing_field");
            };
            let mut st = s.lock().unwrap();
            let cid = st.next_id;
            st.next_id += 1;
            let Some(t) = id_of(r).and_then(|id| st.tickets.get_mut(&id)) else {
                return not_found();
            };
            let private = body["private"].as_bool().unwrap_or(true);
            t.conversations.push(FakeConversation {
                id: cid,
                body: text.into(),
                private,
            });
            Reply::json(
                201,
                &json!({ "conversation": { "id": cid, "body": text, "body_text": body_text(text), "private": private } }),
            )
        };

        let routes = Routes::new()
            .error_reply(|status, msg| {
                Reply::json(status, &json!({ "code": "error", "message": msg }))
            })
            .route("GET", "/api/v2/tickets/{id}", get)
            .route("PUT", "/api/v2/tickets/{id}", put)
            .route("GET", "/api/v2/tickets/{id}/conversations", conversations)
            .route("POST", "/api/v2/tickets/{id}/notes", note);
        let server = FakeServer::start(routes).await;
        base.set(server.base_url.clone()).unwrap();
        FakeFreshservice { server, state }
    }

    /// A new ticket, status Open; its number.
    pub fn add_ticket(&self) -> String {
        let mut st = self.state.lock().unwrap();
        let id = 40 + st.tickets.len() as u64 + 2;
        st.tickets.insert(
            id,
            FakeTicket {
                status: 2,
                attachments: Vec::new(),
                conversations: Vec::new(),
            },
        );
        id.to_string()
    }

    /// `n` replies already on the ticket (they come before offboard's note).
    pub fn add_replies(&self, ticket: &str, n: usize) {
        let mut st = self.state.lock().unwrap();
        let first = st.next_id;
        st.next_id += n as u64;
        let t = st.tickets.get_mut(&ticket.parse().unwrap()).unwrap();
        for i in 0..n as u64 {
            t.conversations.push(FakeConversation {
                id: first + i,
                body: format!("<div>Reply {i}</div>"),
                private: false,
            });
        }
    }

    pub fn ticket(&self, id: &str) -> FakeTicket {
        self.state.lock().unwrap().tickets[&id.parse::<u64>().unwrap()].clone()
    }

    /// How many multipart updates were received.
    pub fn uploads(&self) -> usize {
        self.state.lock().unwrap().uploads
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    #[track_caller]
    pub fn assert_contract(&self) {
        self.server.assert_contract(&freshservice_contract());
    }
}

/// The part of Freshservice's API v2 a service desk kind may use.
pub fn freshservice_contract() -> Contract {
    Contract::new("Freshservice v2")
        .every_request_header("authorization: Basic")
        .op(Operation::new("GET", "/api/v2/tickets/{id}"))
        .op(
            Operation::new("PUT", "/api/v2/tickets/{id}").multipart_body(
                &["attachments[]"],
                &[],
                &["attachments[]"],
            ),
        )
        .op(Operation::new("PUT", "/api/v2/tickets/{id}")
            .json_body(obj().req("status", Shape::Integer)))
        .op(Operation::new("GET", "/api/v2/tickets/{id}/conversations")
            .query("per_page", false, QueryValue::Integer)
            .query("page", false, QueryValue::Integer))
        .op(Operation::new("POST", "/api/v2/tickets/{id}/notes")
            .json_body(obj().req("body", Shape::String).req("private", Shape::Bool)))
}
