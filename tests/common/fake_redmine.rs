//! A fake of Redmine 5's REST API as a service desk, on the fake-server kit, answering as the
//! real one does (checked against Redmine 5.0.4 from Debian): the key in `X-Redmine-API-Key`
//! (else 401 with an empty body and `WWW-Authenticate: Basic realm="Redmine API"`);
//! `GET /issues/{id}.json?include=attachments,journals` (404 with an empty body for an unknown
//! issue); `POST /uploads.json?filename=…` with `application/octet-stream` bytes (406 for
//! another type, 422 `{"errors": […]}` over the size limit) answering
//! `{"upload": {"id", "token": "<id>.<sha256>"}}`; `PUT /issues/{id}.json` with `notes`,
//! `private_notes`, `uploads` and `status_id` (204; an unknown token fails the whole update with
//! 422 `{"errors":["1 file(s) could not be saved."]}`; an unknown status id is ignored, as
//! Redmine's workflow does); `GET /attachments/download/{id}`; `GET /issue_statuses.json`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::fake_kit::{
    Contract, FakeServer, Operation, QueryValue, Recorded, Reply, Req, Routes, Shape, obj,
};

/// An attachment on an issue.
#[derive(Debug, Clone)]
pub struct FakeAttachment {
    pub id: u64,
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A journal entry: a note (maybe private) and the attachments it added.
#[derive(Debug, Clone)]
pub struct FakeJournal {
    pub notes: String,
    pub private_notes: bool,
    pub attachments: Vec<u64>,
}

#[derive(Debug, Clone)]
pub struct FakeIssue {
    pub status_id: u64,
    pub attachments: Vec<FakeAttachment>,
    pub journals: Vec<FakeJournal>,
}

#[derive(Default)]
struct State {
    issues: BTreeMap<u64, FakeIssue>,
    /// Uploaded, not yet attached: token → attachment.
    uploads: BTreeMap<String, FakeAttachment>,
    next_attachment: u64,
    next_issue: u64,
    max_size: usize,
    /// The next issue update finds every upload token expired.
    expire_before_update: bool,
}

const STATUSES: &[(u64, &str, bool)] = &[
    (1, "New", false),
    (2, "In Progress", false),
    (3, "Resolved", false),
    (4, "Feedback", false),
    (5, "Closed", true),
    (6, "Rejected", true),
];

pub struct FakeRedmine {
    pub server: FakeServer,
    pub key: String,
    state: Arc<Mutex<State>>,
}

fn errors(status: u16, msgs: &[&str]) -> Reply {
    Reply::json(status, &json!({ "errors": msgs }))
}

fn unauthorized() -> Reply {
    Reply::empty(401)
        .header("content-type", "application/json")
        .header("www-authenticate", "Basic realm=\"Redmine API\"")
}

fn status_json(id: u64) -> Value {
    let (id, name, closed) = STATUSES
        .iter()
        .find(|s| s.0 == id)
        .copied()
        .unwrap_or((id, "?", false));
    json!({ "id": id, "name": name, "is_closed": closed })
}

/// `12.json` → 12.
fn issue_id(file: &str) -> Option<u64> {
    file.strip_suffix(".json")?.parse().ok()
}

impl FakeRedmine {
    pub async fn start(key: &str) -> FakeRedmine {
        let state = Arc::new(Mutex::new(State {
            next_attachment: 1,
            next_issue: 1,
            max_size: 5 * 1024 * 1024,
            ..State::default()
        }));
        let base: Arc<std::sync::OnceLock<String>> = Arc::default();
        let key_s = key.to_string();
        let authed = move |r: &Req<'_>| r.header("x-redmine-api-key") == Some(key_s.as_str());
        let (a1, a2, a3, a4, a5) = (
            authed.clone(),
            authed.clone(),
            authed.clone(),
            authed.clone(),
            authed,
        );
        let (s1, s2, s3, s4) = (state.clone(), state.clone(), state.clone(), state.clone());
        let b = base.clone();
        let routes = Routes::new()
            .secret_header("x-redmine-api-key", key)
            .error_reply(|status, msg| errors(status, &[msg]))
            .route("GET", "/issues/{file}", move |r| {
                if !a1(r) {
                    return unauthorized();
                }
                let st = s1.lock().unwrap();
                let Some((id, issue)) = issue_id(r.param("file"))
                    .and_then(|id| st.issues.get(&id).map(|i| (id, i)))
                else {
                    return Reply::empty(404);
                };
                let include = r.query("include").unwrap_or("");
                let mut v = json!({
                    "id": id,
                    "project": { "id": 1, "name": "Offboarding" },
                    "subject": format!("Offboard #{id}"),
                    "status": status_json(issue.status_id),
                });
                if include.split(',').any(|i| i == "attachments") {
                    v["attachments"] = issue
                        .attachments
                        .iter()
                        .map(|a| {
                            json!({
                                "id": a.id,
                                "filename": a.filename,
                                "filesize": a.bytes.len(),
                                "content_type": a.content_type,
                                "description": "",
                                "content_url": format!(
                                    "{}/attachments/download/{}/{}",
                                    b.get().unwrap(),
                                    a.id,
                                    a.filename
                                ),
                                "author": { "id": 1, "name": "Redmine Admin" },
                            })
                        })
                        .collect();
                }
                if include.split(',').any(|i| i == "journals") {
                    let mut journals = Vec::new();
                    for j in &issue.journals {
                        // Redmine writes the attachment details and a private note as two
                        // journal entries.
                        if !j.attachments.is_empty() && j.private_notes {
                            journals.push(json!({"notes": null, "private_notes": false, "details": j.attachments.iter().map(|a| json!({"property": "attachment", "name": a.to_string()})).collect::<Vec<_>>()}));
                            journals.push(json!({"notes": j.notes, "private_notes": true, "details": []}));
                        } else {
                            journals.push(json!({"notes": j.notes, "private_notes": j.private_notes, "details": []}));
                        }
                    }
                    v["journals"] = Value::Array(journals);
                }
                Reply::json(200, &json!({ "issue": v }))
            })
            .route("POST", "/uploads.json", move |r| {
                if !a2(r) {
                    return unauthorized();
                }
                if r.header("content-type") != Some("application/octet-stream") {
                    return Reply::empty(406);
                }
                let mut st = s2.lock().unwrap();
                if r.body.len() > st.max_size {
                    let msg = format!(
                        "This file cannot be uploaded because it exceeds the maximum allowed file size ({})",
                        st.max_size
                    );
                    return errors(422, &[&msg]);
                }
                let id = st.next_attachment;
                st.next_attachment += 1;
                let token = format!("{id}.{}", offboard::journal::sha256_hex(r.body));
                st.uploads.insert(
                    token.clone(),
                    FakeAttachment {
                        id,
                        filename: r.query("filename").unwrap_or("").to_string(),
                        content_type: "application/octet-stream".into(),
                        bytes: r.body.to_vec(),
                    },
                );
                Reply::json(201, &json!({ "upload": { "id": id, "token": token } }))
            })
            .route("PUT", "/issues/{file}", move |r| {
                if !a3(r) {
                    return unauthorized();
                }
                let mut st = s3.lock().unwrap();
                if std::mem::take(&mut st.expire_before_update) {
                    st.uploads.clear();
                }
                let Some(id) = issue_id(r.param("file")).filter(|id| st.issues.contains_key(id))
                else {
                    return Reply::empty(404);
                };
                let issue_v = r.json.map(|j| j["issue"].clone()).unwrap_or(Value::Null);
                let uploads: Vec<Value> = issue_v["uploads"].as_array().cloned().unwrap_or_default();
                let mut attached = Vec::new();
                let mut unknown = 0;
                for u in &uploads {
                    match u["token"].as_str().and_then(|t| st.uploads.get(t)) {
                        Some(a) => {
                            let mut a = a.clone();
                            if let Some(f) = u["filename"].as_str() {
                                a.filename = f.to_string();
                            }
                            if let Some(ct) = u["content_type"].as_str() {
                                a.content_type = ct.to_string();
                            }
                            attached.push(a);
                        }
                        None => unknown += 1,
                    }
                }
                if unknown > 0 {
                    return errors(422, &[&format!("{unknown} file(s) could not be saved.")]);
                }
                for u in &uploads {
                    st.uploads.remove(u["token"].as_str().unwrap());
                }
                let issue = st.issues.get_mut(&id).unwrap();
                if let Some(s) = issue_v["status_id"].as_u64()
                    && STATUSES.iter().any(|(i, ..)| *i == s)
                {
                    issue.status_id = s;
                }
                let notes = issue_v["notes"].as_str().unwrap_or("").to_string();
                if !notes.is_empty() || !attached.is_empty() {
                    issue.journals.push(FakeJournal {
                        notes,
                        private_notes: issue_v["private_notes"].as_bool().unwrap_or(false),
                        attachments: attached.iter().map(|a| a.id).collect(),
                    });
                }
                issue.attachments.extend(attached);
                Reply::empty(204)
            })
            .route("GET", "/attachments/download/{id}", move |r| {
                if !a4(r) {
                    return unauthorized();
                }
                let st = s4.lock().unwrap();
                let found = r.param("id").parse::<u64>().ok().and_then(|id| {
                    st.issues
                        .values()
                        .flat_map(|i| &i.attachments)
                        .find(|a| a.id == id)
                });
                match found {
                    Some(a) => Reply {
                        status: 200,
                        headers: vec![("content-type".into(), a.content_type.clone())],
                        body: a.bytes.clone(),
                    },
                    None => Reply::empty(404),
                }
            })
            .route("GET", "/issue_statuses.json", move |r| {
                if !a5(r) {
                    return unauthorized();
                }
                let all: Vec<Value> = STATUSES.iter().map(|s| status_json(s.0)).collect();
                Reply::json(200, &json!({ "issue_statuses": all }))
            });
        let server = FakeServer::start(routes).await;
        base.set(server.base_url.clone()).unwrap();
        FakeRedmine {
            server,
            key: key.to_string(),
            state,
        }
    }

    /// A new issue (status New); its number.
    pub fn add_issue(&self) -> String {
        let mut st = self.state.lock().unwrap();
        let id = st.next_issue;
        st.next_issue += 1;
        st.issues.insert(
            id,
            FakeIssue {
                status_id: 1,
                attachments: Vec::new(),
                journals: Vec::new(),
            },
        );
        id.to_string()
    }

    pub fn issue(&self, id: &str) -> FakeIssue {
        self.state.lock().unwrap().issues[&id.parse::<u64>().unwrap()].clone()
    }

    /// Uploads larger than this are refused (Redmine's `attachment_max_size`; default 5 MiB).
    pub fn set_max_size(&self, bytes: usize) {
        self.state.lock().unwrap().max_size = bytes;
    }

    /// The next issue update finds every upload token not yet attached gone (as if they had
    /// expired between the uploads and the update).
    pub fn expire_uploads_before_next_update(&self) {
        self.state.lock().unwrap().expire_before_update = true;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    pub fn assert_contract(&self) {
        self.server.assert_contract(&redmine_contract());
    }
}

/// The part of Redmine's REST API a service desk kind may use.
pub fn redmine_contract() -> Contract {
    let upload = obj()
        .req("token", Shape::String)
        .req("filename", Shape::String)
        .opt("content_type", Shape::String);
    Contract::new("Redmine REST")
        .every_request_header("x-redmine-api-key")
        .op(Operation::new("GET", "/issues/{file}").query("include", false, QueryValue::Any))
        .op(Operation::new("POST", "/uploads.json")
            .query("filename", true, QueryValue::Any)
            .raw_body("application/octet-stream"))
        .op(Operation::new("PUT", "/issues/{file}").json_body(
            obj().req(
                "issue",
                obj()
                    .opt("notes", Shape::String)
                    .opt("private_notes", Shape::Bool)
                    .opt("status_id", Shape::Integer)
                    .opt("uploads", Shape::array(upload)),
            ),
        ))
        .op(Operation::new("GET", "/attachments/download/{id}"))
        .op(Operation::new("GET", "/issue_statuses.json"))
}
