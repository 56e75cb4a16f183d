//! A fake of Jira Service Management Cloud's REST APIs as a service desk, on the fake-server kit,
//! answering as Jira does (Atlassian's platform v3 and service desk API documentation):
//!
//! - HTTP Basic `email:api_token`; anything else gets 401 with Jira's plain-text
//!   `Client must be authenticated to access this resource.`;
//! - `GET /rest/api/3/issue/{key}?fields=…&expand=transitions`: the fields asked for
//!   (`attachment`, `comment` with ADF bodies, `status`) and the transitions open from the
//!   issue's status; an unknown issue is 404 `{"errorMessages": […], "errors": {}}`;
//! - `POST /rest/api/3/issue/{key}/attachments`: multipart, one attachment per `file` part,
//!   answering the array of attachments; without `X-Atlassian-Token: no-check` Jira refuses it
//!   with 403 `XSRF check failed`;
//! - `GET /rest/api/3/attachment/content/{id}`: the bytes with `redirect=false`, else a 303 to
//!   the media store (another host);
//! - `POST /rest/servicedeskapi/request/{key}/comment {"body", "public"}` → 201 (the service
//!   desk API's errors are `{"errorMessage", "i18nErrorMessage"}`);
//! - `POST /rest/api/3/issue/{key}/transitions {"transition": {"id"}}` → 204, or 400 for a
//!   transition not open from the issue's status.

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
    pub filename: String,
    pub mime_type: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct FakeComment {
    pub id: u64,
    pub body: String,
    pub public: bool,
}

#[derive(Debug, Clone)]
pub struct FakeIssue {
    pub id: u64,
    pub status: String,
    pub attachments: Vec<FakeAttachment>,
    pub comments: Vec<FakeComment>,
}

/// A transition: its id, its name, the status it leads to.
type Transition = (&'static str, &'static str, &'static str);

/// The service desk workflow: from each status, the transitions open.
const WORKFLOW: &[(&str, &[Transition])] = &[
    (
        "Waiting for support",
        &[
            ("11", "Resolve this issue", "Resolved"),
            ("21", "Close", "Closed"),
        ],
    ),
    (
        "Resolved",
        &[
            ("31", "Reopen", "Waiting for support"),
            ("21", "Close", "Closed"),
        ],
    ),
    ("Closed", &[("31", "Reopen", "Waiting for support")]),
];

fn transitions(status: &str) -> &'static [Transition] {
    WORKFLOW
        .iter()
        .find(|(s, _)| *s == status)
        .map(|(_, t)| *t)
        .unwrap_or(&[])
}

#[derive(Default)]
struct State {
    issues: BTreeMap<String, FakeIssue>,
    next_id: u64,
    next_issue: u64,
}

pub struct FakeJira {
    pub server: FakeServer,
    state: Arc<Mutex<State>>,
}

fn platform_error(status: u16, msg: &str) -> Reply {
    Reply::json(status, &json!({ "errorMessages": [msg], "errors": {} }))
}

fn unauthorized() -> Reply {
    Reply {
        status: 401,
        headers: vec![
            ("content-type".into(), "text/plain;charset=UTF-8".into()),
            (
                "www-authenticate".into(),
                "Basic realm=\"protected-area\"".into(),
            ),
        ],
        body: b"Client must be authenticated to access this resource.".to_vec(),
    }
}

fn no_issue() -> Reply {
    platform_error(
        404,
        "Issue does not exist or you do not have permission to see it.",
    )
}

/// A plain text as Atlassian Document Format, a paragraph per line.
fn adf(text: &str) -> Value {
    let paragraphs: Vec<Value> = text
        .lines()
        .map(|l| {
            if l.is_empty() {
                json!({ "type": "paragraph", "content": [] })
            } else {
                json!({ "type": "paragraph", "content": [{ "type": "text", "text": l }] })
            }
        })
        .collect();
    json!({ "type": "doc", "version": 1, "content": paragraphs })
}

impl FakeJira {
    pub async fn start(email: &str, token: &str) -> FakeJira {
        let state = Arc::new(Mutex::new(State {
            next_id: 10000,
            next_issue: 1,
            ..State::default()
        }));
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{email}:{token}"))
        );
        let authed = Arc::new(move |r: &Req<'_>| r.header("authorization") == Some(basic.as_str()));
        let base: Arc<std::sync::OnceLock<String>> = Arc::default();

        let (a, s, b) = (authed.clone(), state.clone(), base.clone());
        let get_issue = move |r: &Req<'_>| {
            if !a(r) {
                return unauthorized();
            }
            let st = s.lock().unwrap();
            let Some((key, issue)) = find(&st, r.param("key")) else {
                return no_issue();
            };
            let fields: Vec<&str> = r.query("fields").unwrap_or("*all").split(',').collect();
            let want = |f: &str| fields.contains(&f) || fields.contains(&"*all");
            let mut fv = serde_json::Map::new();
            if want("attachment") {
                fv.insert(
                    "attachment".into(),
                    issue
                        .attachments
                        .iter()
                        .map(|a| {
                            json!({
                                "id": a.id.to_string(),
                                "filename": a.filename,
                                "size": a.bytes.len(),
                                "mimeType": a.mime_type,
                                "content": format!("{}/rest/api/3/attachment/content/{}", b.get().unwrap(), a.id),
                                "created": "2026-11-23T17:00:00.000+0000",
                            })
                        })
                        .collect(),
                );
            }
            if want("comment") {
                let comments: Vec<Value> = issue
                    .comments
                    .iter()
                    .map(|c| json!({ "id": c.id.to_string(), "body": adf(&c.body), "jsdPublic": c.public }))
                    .collect();
                fv.insert(
                    "comment".into(),
                    json!({ "comments": comments, "maxResults": comments.len(), "total": comments.len(), "startAt": 0 }),
                );
            }
            if want("status") {
                fv.insert("status".into(), json!({ "id": "1", "name": issue.status }));
            }
            let mut v = json!({ "id": issue.id.to_string(), "key": key, "fields": fv });
            if r.query("expand")
                .unwrap_or("")
                .split(',')
                .any(|e| e == "transitions")
            {
                v["transitions"] = transitions(&issue.status)
                    .iter()
                    .map(|(id, name, to)| json!({ "id": id, "name": name, "to": { "id": "9", "name": to } }))
                    .collect();
            }
            Reply::json(200, &v)
        };

        let (a, s) = (authed.clone(), state.clone());
        let attach = move |r: &Req<'_>| {
            if !a(r) {
                return unauthorized();
            }
            if r.header("x-atlassian-token") != Some("no-check") {
                return Reply {
                    status: 403,
                    headers: vec![("content-type".into(), "text/plain".into())],
                    body: b"XSRF check failed".to_vec(),
                };
            }
            let parts = match parse_multipart(r.header("content-type").unwrap_or(""), r.body) {
                Ok(p) => p,
                Err(e) => return platform_error(400, &format!("bad multipart body: {e}")),
            };
            let mut st = s.lock().unwrap();
            let Some(key) = find(&st, r.param("key")).map(|(k, _)| k) else {
                return no_issue();
            };
            let mut created = Vec::new();
            for p in parts.iter().filter(|p| p.name == "file") {
                let id = st.next_id;
                st.next_id += 1;
                let a = FakeAttachment {
                    id,
                    filename: p.filename.clone().unwrap_or_default(),
                    mime_type: p.content_type.clone().unwrap_or_default(),
                    bytes: p.bytes.clone(),
                };
                created.push(json!({
                    "id": id.to_string(),
                    "filename": a.filename,
                    "size": a.bytes.len(),
                    "mimeType": a.mime_type,
                }));
                st.issues.get_mut(&key).unwrap().attachments.push(a);
            }
            Reply::json(200, &Value::Array(created))
        };

        let (a, s) = (authed.clone(), state.clone());
        let content = move |r: &Req<'_>| {
            if !a(r) {
                return unauthorized();
            }
            let st = s.lock().unwrap();
            let id = r.param("id").parse::<u64>().ok();
            let Some(att) = st
                .issues
                .values()
                .flat_map(|i| &i.attachments)
                .find(|x| Some(x.id) == id)
            else {
                return platform_error(404, "The attachment with id does not exist.");
            };
            if r.query("redirect") != Some("false") {
                return Reply::empty(303).header(
                    "location",
                    format!("https://api.media.atlassian.com/file/{}/binary", att.id),
                );
            }
            Reply {
                status: 200,
                headers: vec![("content-type".into(), att.mime_type.clone())],
                body: att.bytes.clone(),
            }
        };

        let (a, s) = (authed.clone(), state.clone());
        let comment = move |r: &Req<'_>| {
            if !a(r) {
                return unauthorized();
            }
            let mut st = s.lock().unwrap();
            let Some(key) = find(&st, r.param("key")).map(|(k, _)| k) else {
                return Reply::json(
                    404,
                    &json!({"errorMessage": "Request does not exist or you do not have access to it.", "i18nErrorMessage": {"i18nKey": "sd.request.not.found", "parameters": []}}),
                );
            };
            let (Some(body), Some(public)) = (
                r.json.and_then(|j| j["body"].as_str()),
                r.json.and_then(|j| j["public"].as_bool()),
            ) else {
                return Reply::json(
                    400,
                    &json!({"errorMessage": "The comment body is required."}),
                );
            };
            let id = st.next_id;
            st.next_id += 1;
            st.issues.get_mut(&key).unwrap().comments.push(FakeComment {
                id,
                body: body.to_string(),
                public,
            });
            Reply::json(
                201,
                &json!({ "id": id.to_string(), "body": body, "public": public, "created": {"iso8601": "2026-11-23T17:00:00+0000"} }),
            )
        };

        let (a, s) = (authed, state.clone());
        let transition = move |r: &Req<'_>| {
            if !a(r) {
                return unauthorized();
            }
            let mut st = s.lock().unwrap();
            let Some(key) = find(&st, r.param("key")).map(|(k, _)| k) else {
                return no_issue();
            };
            let id = r
                .json
                .and_then(|j| j.pointer("/transition/id"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let issue = st.issues.get_mut(&key).unwrap();
            match transitions(&issue.status).iter().find(|t| t.0 == id) {
                Some((_, _, to)) => {
                    issue.status = to.to_string();
                    Reply::empty(204)
                }
                None => platform_error(
                    400,
                    &format!("Transition id '{id}' is not valid for this issue."),
                ),
            }
        };

        let routes = Routes::new()
            .error_reply(platform_error)
            .route("GET", "/rest/api/3/issue/{key}", get_issue)
            .route("POST", "/rest/api/3/issue/{key}/attachments", attach)
            .route("GET", "/rest/api/3/attachment/content/{id}", content)
            .route(
                "POST",
                "/rest/servicedeskapi/request/{key}/comment",
                comment,
            )
            .route("POST", "/rest/api/3/issue/{key}/transitions", transition);
        let server = FakeServer::start(routes).await;
        base.set(server.base_url.clone()).unwrap();
        FakeJira { server, state }
    }

    /// A new request in project HR, waiting for support; its key.
    pub fn add_issue(&self) -> String {
        let mut st = self.state.lock().unwrap();
        let n = st.next_issue;
        st.next_issue += 1;
        let key = format!("HR-{n}");
        st.issues.insert(
            key.clone(),
            FakeIssue {
                id: 20000 + n,
                status: "Waiting for support".into(),
                attachments: Vec::new(),
                comments: Vec::new(),
            },
        );
        key
    }

    pub fn issue(&self, key: &str) -> FakeIssue {
        self.state.lock().unwrap().issues[key].clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    #[track_caller]
    pub fn assert_contract(&self) {
        self.server.assert_contract(&jira_contract());
    }
}

/// An issue by key (case-insensitively, as Jira looks keys up) or by id.
fn find<'a>(st: &'a State, key: &str) -> Option<(String, &'a FakeIssue)> {
    st.issues
        .iter()
        .find(|(k, i)| k.eq_ignore_ascii_case(key) || i.id.to_string() == key)
        .map(|(k, i)| (k.clone(), i))
}

/// The requests a service desk kind may send to Jira, as the platform v3 OpenAPI description
/// and the service desk API documentation declare them.
pub fn jira_contract() -> Contract {
    Contract::new("Jira Cloud")
        .every_request_header("authorization: Basic")
        .op(Operation::new("GET", "/rest/api/3/issue/{issueIdOrKey}")
            .query(
                "fields",
                false,
                QueryValue::each_of(&["attachment", "comment", "status"]),
            )
            .query("expand", false, QueryValue::Exact("transitions".into())))
        .op(
            Operation::new("POST", "/rest/api/3/issue/{issueIdOrKey}/attachments")
                .header("x-atlassian-token: no-check")
                .multipart_body(&["file"], &[], &["file"]),
        )
        .op(
            Operation::new("GET", "/rest/api/3/attachment/content/{id}").query(
                "redirect",
                true,
                QueryValue::Exact("false".into()),
            ),
        )
        .op(Operation::new(
            "POST",
            "/rest/servicedeskapi/request/{issueIdOrKey}/comment",
        )
        .json_body(obj().req("body", Shape::String).req("public", Shape::Bool)))
        .op(
            Operation::new("POST", "/rest/api/3/issue/{issueIdOrKey}/transitions")
                .json_body(obj().req("transition", obj().req("id", Shape::String))),
        )
}
