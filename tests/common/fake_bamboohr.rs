//! A fake of BambooHR's employee API for polling (providers.md §11.1), on the fake-server kit:
//! Basic auth with the API key as user and `x` as password (else 401, empty body, the reason in
//! `x-bamboohr-error-message`); `GET /api/v1/employees/changed?since=` (400 when `since` is
//! missing or has fractional seconds, which BambooHR rejects) answering `{latest, employees:
//! {"<id>": {id, action, lastChanged}}}` for changes after `since`; `GET /api/v1/employees/{id}?
//! fields=…&onlyCurrent=` answering only the fields asked for (null when unset), where a
//! termination dated after the fake's today is hidden unless `onlyCurrent=false`; XML unless
//! `Accept: application/json`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::fake_kit::{FakeServer, Reply, Req, Routes};

pub struct Employee {
    pub fields: Map<String, Value>,
    pub action: &'static str,
    pub last_changed: DateTime<Utc>,
}

#[derive(Default)]
pub struct State {
    pub employees: BTreeMap<String, Employee>,
    /// The server's clock: `latest`, and what counts as future-dated.
    pub now: Option<DateTime<Utc>>,
}

pub type Shared = Arc<Mutex<State>>;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

impl State {
    pub fn put(&mut self, id: &str, action: &'static str, changed: &str, fields: Value) {
        let Value::Object(fields) = fields else {
            panic!("fields must be an object")
        };
        self.employees.insert(
            id.into(),
            Employee {
                fields,
                action,
                last_changed: t(changed),
            },
        );
    }
}

fn error(status: u16, msg: &str) -> Reply {
    Reply::empty(status).header("x-bamboohr-error-message", msg)
}

fn authorised(r: &Req<'_>, key: &str) -> bool {
    use base64::Engine;
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:x"))
    );
    r.header("authorization") == Some(want.as_str())
}

fn json_only(r: &Req<'_>) -> Option<Reply> {
    if r.header("accept") != Some("application/json") {
        return Some(Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/xml".into())],
            body: b"<employees/>".to_vec(),
        });
    }
    None
}

pub async fn start(key: &str, state: Shared) -> FakeServer {
    let (k1, s1) = (key.to_string(), state.clone());
    let (k2, s2) = (key.to_string(), state);
    let routes = Routes::new()
        .route("GET", "/api/v1/employees/changed", move |r| {
            if !authorised(r, &k1) {
                return error(401, "Invalid API key");
            }
            if let Some(x) = json_only(r) {
                return x;
            }
            let Some(since) = r.query("since") else {
                return error(400, "since is required");
            };
            if since.contains('.') {
                return error(400, "Invalid since");
            }
            let Ok(since) = DateTime::parse_from_rfc3339(since) else {
                return error(400, "Invalid since");
            };
            let st = s1.lock().unwrap();
            let mut employees = Map::new();
            for (id, e) in &st.employees {
                if e.last_changed > since {
                    employees.insert(
                        id.clone(),
                        json!({"id": id, "action": e.action, "lastChanged": e.last_changed.to_rfc3339()}),
                    );
                }
            }
            let latest = st.now.expect("fake now").format("%Y-%m-%dT%H:%M:%S+00:00").to_string();
            Reply::json(200, &json!({"latest": latest, "employees": employees}))
        })
        .route("GET", "/api/v1/employees/{id}", move |r| {
            if !authorised(r, &k2) {
                return error(401, "Invalid API key");
            }
            if let Some(x) = json_only(r) {
                return x;
            }
            let st = s2.lock().unwrap();
            let Some(e) = st.employees.get(r.param("id")) else {
                return error(404, "Employee not found");
            };
            let Some(fields) = r.query("fields") else {
                return error(400, "fields is required");
            };
            let today = st.now.expect("fake now").date_naive().to_string();
            let hide_future = r.query("onlyCurrent") != Some("false");
            let future = e
                .fields
                .get("terminationDate")
                .and_then(Value::as_str)
                .is_some_and(|d| d > today.as_str());
            let mut out = Map::new();
            out.insert("id".into(), json!(r.param("id")));
            for f in fields.split(',') {
                let mut v = e.fields.get(f).cloned().unwrap_or(Value::Null);
                if hide_future && future {
                    v = match f {
                        "terminationDate" | "terminationType" => Value::Null,
                        "status" => json!("Active"),
                        _ => v,
                    };
                }
                out.insert(f.to_string(), v);
            }
            Reply::json(200, &Value::Object(out))
        });
    FakeServer::start(routes).await
}
