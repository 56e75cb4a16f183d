//! A fake of ConnectWise Manage's REST API (3.0) as a service desk, on the fake-server kit,
//! answering as ConnectWise does (its developer documentation and the generated SDKs):
//!
//! - HTTP Basic `{company}+{publicKey}:{privateKey}` and the `clientId` header on every request;
//!   without a clientId, or with a wrong key, 401 `{"code": "Unauthorized", "message"}`;
//! - errors `{"code", "message", "errors": [{"code", "message", "resource", "field"}]}`;
//! - lists are pages (`page`, 1-based; `pageSize`, default 25, at most 1000);
//! - `GET/POST /service/tickets/{id}/notes` (`text` and at least one of the flags), 404 for an
//!   unknown ticket;
//! - `GET /system/documents?recordType=Ticket&recordId=…`, `POST /system/documents`
//!   (multipart: `recordType`, `recordId`, `title`, `privateFlag`, `file`),
//!   `GET /system/documents/{id}/download`;
//! - `PATCH /service/tickets/{id}` with a JSON Patch array; a status the board does not have is
//!   400 `InvalidObject`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Value, json};

use super::fake_kit::{
    Contract, FakeServer, Operation, QueryValue, Recorded, Reply, Req, Routes, Shape, obj,
    parse_multipart,
};

#[derive(Debug, Clone)]
pub struct FakeNote {
    pub id: u64,
    pub text: String,
    pub internal_analysis: bool,
    pub detail_description: bool,
    pub resolution: bool,
}

#[derive(Debug, Clone)]
pub struct FakeDocument {
    pub id: u64,
    pub record_type: String,
    pub record_id: u64,
    pub title: String,
    pub file_name: String,
    pub private: bool,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct FakeTicket {
    pub status: (u64, String),
    pub notes: Vec<FakeNote>,
}

/// The statuses of the ticket's board.
pub const BOARD_STATUSES: &[(u64, &str)] = &[
    (1, "New"),
    (2, "In Progress"),
    (3, "Waiting on client"),
    (4, "Closed (resolved)"),
];

#[derive(Default)]
struct State {
    tickets: BTreeMap<u64, FakeTicket>,
    documents: Vec<FakeDocument>,
    next_id: u64,
}

pub struct FakeConnectWise {
    pub server: FakeServer,
    state: Arc<Mutex<State>>,
}

fn cw_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(status, &json!({ "code": code, "message": message }))
}

fn invalid(resource: &str, field: &str, message: &str) -> Reply {
    Reply::json(
        400,
        &json!({
            "code": "InvalidObject",
            "message": format!("{resource} object is invalid"),
            "errors": [{ "code": "InvalidField", "message": message, "resource": resource, "field": field }],
        }),
    )
}

/// The page of `items` the query asks for.
fn page(r: &Req<'_>, items: Vec<Value>) -> Reply {
    let n: usize = r
        .query("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let size: usize = r
        .query("pageSize")
        .and_then(|p| p.parse().ok())
        .unwrap_or(25)
        .clamp(1, 1000);
    let chunk: Vec<Value> = items.into_iter().skip((n - 1) * size).take(size).collect();
    Reply::json(200, &Value::Array(chunk))
}

fn ticket_json(id: u64, t: &FakeTicket) -> Value {
    json!({
        "id": id,
        "summary": "Offboard alice",
        "board": { "id": 1, "name": "Help Desk" },
        "status": { "id": t.status.0, "name": t.status.1 },
    })
}

impl FakeConnectWise {
    pub async fn start(
        company: &str,
        public: &str,
        private: &str,
        client_id: &str,
    ) -> FakeConnectWise {
        let state = Arc::new(Mutex::new(State {
            next_id: 500,
            ..State::default()
        }));
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{company}+{public}:{private}"))
        );
        let client_id = client_id.to_string();
        let auth = Arc::new(move |r: &Req<'_>| -> Option<Reply> {
            if r.header("clientid") != Some(client_id.as_str()) {
                return Some(cw_error(
                    401,
                    "Unauthorized",
                    "A valid clientId header is required.",
                ));
            }
            if r.header("authorization") != Some(basic.as_str()) {
                return Some(cw_error(
                    401,
                    "Unauthorized",
                    "Authentication failed: invalid company, public or private key.",
                ));
            }
            None
        });
        let ticket_of = |r: &Req<'_>| r.param("id").parse::<u64>().ok();
        let not_found = |r: &Req<'_>| {
            cw_error(
                404,
                "NotFound",
                &format!("Ticket ID {} not found.", r.param("id")),
            )
        };

        let (a, s) = (auth.clone(), state.clone());
        let get_notes = move |r: &Req<'_>| {
            if let Some(e) = a(r) {
                return e;
            }
            let st = s.lock().unwrap();
            let Some(t) = ticket_of(r).and_then(|id| st.tickets.get(&id)) else {
                return not_found(r);
            };
            let items = t
                .notes
                .iter()
                .map(|n| {
                    json!({
                        "id": n.id, "ticketId": ticket_of(r), "text": n.text,
                        "internalAnalysisFlag": n.internal_analysis,
                        "detailDescriptionFlag": n.detail_description,
                        "resolutionFlag": n.resolution,
                    })
                })
                .collect();
            page(r, items)
        };

        let (a, s) = (auth.clone(), state.clone());
        let post_note = move |r: &Req<'_>| {
            if let Some(e) = a(r) {
                return e;
            }
            let body = r.json.cloned().unwrap_or(Value::Null);
            let text = body["text"].as_str().unwrap_or("");
            if text.is_empty() {
                return invalid("ticketNote", "text", "text may not be empty");
            }
            let flag = |f: &str| body[f].as_bool().unwrap_or(false);
            let (ia, dd, rf) = (
                flag("internalAnalysisFlag"),
                flag("detailDescriptionFlag"),
                flag("resolutionFlag"),
            );
            if !(ia || dd || rf) {
                return invalid(
                    "ticketNote",
                    "detailDescriptionFlag",
                    "At least one of detailDescriptionFlag, internalAnalysisFlag or resolutionFlag must be set.",
                );
            }
            let mut st = s.lock().unwrap();
            let id = st.next_id;
            st.next_id += 1;
            let Some(t) = ticket_of(r).and_then(|tid| st.tickets.get_mut(&tid)) else {
                return not_found(r);
            };
            t.notes.push(FakeNote {
                id,
                text: text.into(),
                internal_analysis: ia,
                detail_description: dd,
                resolution: rf,
            });
            Reply::json(
                201,
                &json!({ "id": id, "ticketId": ticket_of(r), "text": text, "internalAnalysisFlag": ia }),
            )
        };

        let (a, s) = (auth.clone(), state.clone());
        let list_documents = move |r: &Req<'_>| {
            if let Some(e) = a(r) {
                return e;
            }
            let (Some(rt), Some(rid)) = (
                r.query("recordType"),
                r.query("recordId").and_then(|v| v.parse::<u64>().ok()),
            ) else {
                return invalid(
                    "document",
                    "recordType",
                    "recordType and recordId are required.",
                );
            };
            let st = s.lock().unwrap();
            let items = st
                .documents
                .iter()
                .filter(|d| d.record_type == rt && d.record_id == rid)
                .map(|d| {
                    json!({
                        "id": d.id, "title": d.title, "fileName": d.file_name,
                        "serverFileName": format!("{}.dat", d.id), "owner": "offboard",
                        "linkFlag": false, "imageFlag": false, "publicFlag": !d.private,
                        "readOnlyFlag": false, "size": d.bytes.len(), "urlFlag": false,
                        "createdOnDate": "2026-11-23T17:00:00Z",
                    })
                })
                .collect();
            page(r, items)
        };

        let (a, s) = (auth.clone(), state.clone());
        let upload = move |r: &Req<'_>| {
            if let Some(e) = a(r) {
                return e;
            }
            let parts = match parse_multipart(r.header("content-type").unwrap_or(""), r.body) {
                Ok(p) => p,
                Err(e) => {
                    return invalid(
                        "document",
                        "file",
                        &format!("The request is not a valid multipart form: {e}"),
                    );
                }
            };
            let field = |n: &str| parts.iter().find(|p| p.name == n);
            let Some(file) = field("file").filter(|f| f.filename.is_some()) else {
                return invalid("document", "file", "A file is required.");
            };
            let (Some(rt), Some(rid)) = (
                field("recordType").map(|p| p.text()),
                field("recordId").and_then(|p| p.text().parse::<u64>().ok()),
            ) else {
                return invalid(
                    "document",
                    "recordId",
                    "recordType and recordId are required.",
                );
            };
            let mut st = s.lock().unwrap();
            if rt == "Ticket" && !st.tickets.contains_key(&rid) {
                return invalid(
                    "document",
                    "recordId",
                    &format!("Ticket {rid} was not found."),
                );
            }
            let id = st.next_id;
            st.next_id += 1;
            let d = FakeDocument {
                id,
                record_type: rt,
                record_id: rid,
                title: field("title").map(|p| p.text()).unwrap_or_default(),
                file_name: file.filename.clone().unwrap(),
                private: field("privateFlag").map(|p| p.text()) == Some("true".into()),
                bytes: file.bytes.clone(),
            };
            let v = json!({ "id": id, "title": d.title, "fileName": d.file_name, "serverFileName": format!("{id}.dat"), "size": d.bytes.len() });
            st.documents.push(d);
            Reply::json(201, &v)
        };

        let (a, s) = (auth.clone(), state.clone());
        let download = move |r: &Req<'_>| {
            if let Some(e) = a(r) {
                return e;
            }
            let st = s.lock().unwrap();
            match st
                .documents
                .iter()
                .find(|d| d.id.to_string() == r.param("id"))
            {
                Some(d) => Reply {
                    status: 200,
                    headers: vec![
                        ("content-type".into(), "application/octet-stream".into()),
                        (
                            "content-disposition".into(),
                            format!("attachment; filename=\"{}\"", d.file_name),
                        ),
                    ],
                    body: d.bytes.clone(),
                },
                None => cw_error(
                    404,
                    "NotFound",
                    &format!("Document ID {} not found.", r.param("id")),
                ),
            }
        };

        let (a, s) = (auth, state.clone());
        let patch = move |r: &Req<'_>| {
            if let Some(e) = a(r) {
                return e;
            }
            let Some(ops) = r.json.and_then(Value::as_array) else {
                return cw_error(
                    400,
                    "InvalidObject",
                    "The request body must be a JSON Patch array.",
                );
            };
            let mut st = s.lock().unwrap();
            let Some(id) = ticket_of(r).filter(|id| st.tickets.contains_key(id)) else {
                return not_found(r);
            };
            let t = st.tickets.get_mut(&id).unwrap();
            for op in ops {
                if op["op"] != "replace" || op["path"] != "status" {
                    return invalid(
                        "ticket",
                        op["path"].as_str().unwrap_or(""),
                        "Only the status can be patched here.",
                    );
                }
                let v = &op["value"];
                let found = BOARD_STATUSES.iter().find(|(sid, name)| {
                    v["id"].as_u64() == Some(*sid)
                        || v["name"]
                            .as_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case(name))
                });
                match found {
                    Some((sid, name)) => t.status = (*sid, name.to_string()),
                    None => {
                        return invalid(
                            "ticket",
                            "status",
                            "The status is not valid for this board.",
                        );
                    }
                }
            }
            Reply::json(200, &ticket_json(id, t))
        };

        let routes = Routes::new()
            .error_reply(|status, msg| cw_error(status, "ConnectWiseApi", msg))
            .route("GET", "/service/tickets/{id}/notes", get_notes)
            .route("POST", "/service/tickets/{id}/notes", post_note)
            .route("GET", "/system/documents", list_documents)
            .route("POST", "/system/documents", upload)
            .route("GET", "/system/documents/{id}/download", download)
            .route("PATCH", "/service/tickets/{id}", patch);
        let server = FakeServer::start(routes).await;
        FakeConnectWise { server, state }
    }

    /// A new ticket on the Help Desk board, status New; its number.
    pub fn add_ticket(&self) -> String {
        let mut st = self.state.lock().unwrap();
        let id = 4700 + st.tickets.len() as u64 + 11;
        st.tickets.insert(
            id,
            FakeTicket {
                status: (1, "New".into()),
                notes: Vec::new(),
            },
        );
        id.to_string()
    }

    /// `n` notes a technician wrote on the ticket (they come before offboard's in the lists).
    pub fn add_notes(&self, ticket: &str, n: usize) {
        let mut st = self.state.lock().unwrap();
        let first = st.next_id;
        st.next_id += n as u64;
        let t = st.tickets.get_mut(&ticket.parse().unwrap()).unwrap();
        for i in 0..n as u64 {
            t.notes.push(FakeNote {
                id: first + i,
                text: format!("Called the user ({i})"),
                internal_analysis: false,
                detail_description: true,
                resolution: false,
            });
        }
    }

    pub fn ticket(&self, id: &str) -> FakeTicket {
        self.state.lock().unwrap().tickets[&id.parse::<u64>().unwrap()].clone()
    }

    /// The documents whose record is ticket `id`.
    pub fn documents(&self, id: &str) -> Vec<FakeDocument> {
        let rid: u64 = id.parse().unwrap();
        self.state
            .lock()
            .unwrap()
            .documents
            .iter()
            .filter(|d| d.record_type == "Ticket" && d.record_id == rid)
            .cloned()
            .collect()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    #[track_caller]
    pub fn assert_contract(&self) {
        self.server.assert_contract(&connectwise_contract());
    }
}

/// The part of ConnectWise Manage's REST API a service desk kind may use.
pub fn connectwise_contract() -> Contract {
    let paged = |op: Operation| {
        op.query("page", false, QueryValue::Integer)
            .query("pageSize", false, QueryValue::Integer)
    };
    Contract::new("ConnectWise Manage")
        .every_request_header("authorization: Basic")
        .every_request_header("clientid")
        .op(paged(Operation::new("GET", "/service/tickets/{id}/notes")))
        .op(
            Operation::new("POST", "/service/tickets/{id}/notes").json_body(
                obj()
                    .req("text", Shape::String)
                    .opt("internalAnalysisFlag", Shape::Bool)
                    .opt("detailDescriptionFlag", Shape::Bool)
                    .opt("resolutionFlag", Shape::Bool),
            ),
        )
        .op(paged(
            Operation::new("GET", "/system/documents")
                .query("recordType", true, QueryValue::Exact("Ticket".into()))
                .query("recordId", true, QueryValue::Integer),
        ))
        .op(Operation::new("POST", "/system/documents").multipart_body(
            &["recordType", "recordId", "title", "file"],
            &["privateFlag", "readOnlyFlag"],
            &["file"],
        ))
        .op(Operation::new("GET", "/system/documents/{id}/download"))
        .op(
            Operation::new("PATCH", "/service/tickets/{id}").json_body(Shape::array(
                obj()
                    .req("op", Shape::one_of(&["replace"]))
                    .req("path", Shape::String)
                    .req("value", Shape::Any),
            )),
        )
}
