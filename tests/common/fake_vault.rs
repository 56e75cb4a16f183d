//! A small Vault-shaped fake: `X-Vault-Token` auth (a wrong token gets Vault's 403
//! `{"errors":["permission denied"]}`), canned answers per method and raw path, Vault's bare 404
//! `{"errors":[]}` for anything else, and queued faults (429 with `Retry-After`, 503, any status
//! with a Vault error body). Every request is recorded as received.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Still percent-encoded, exactly as sent.
    pub raw_path: String,
    pub raw_query: Option<String>,
    pub body: Option<Value>,
    /// `X-Vault-Token` was the expected token.
    pub token_ok: bool,
    pub namespace: Option<String>,
    pub has_authorization: bool,
}

#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub body: Option<Value>,
    pub retry_after: Option<u64>,
}

impl Canned {
    pub fn ok(body: Value) -> Canned {
        Canned {
            status: 200,
            body: Some(body),
            retry_after: None,
        }
    }
    pub fn no_content() -> Canned {
        Canned {
            status: 204,
            body: None,
            retry_after: None,
        }
    }
    pub fn errors(status: u16, errors: &[&str]) -> Canned {
        Canned {
            status,
            body: Some(json!({ "errors": errors })),
            retry_after: None,
        }
    }
    pub fn too_many(retry_after: u64) -> Canned {
        Canned {
            status: 429,
            body: Some(json!({"errors": ["request path \"x\": rate limit quota exceeded"]})),
            retry_after: Some(retry_after),
        }
    }
}

#[derive(Default)]
struct State {
    token: String,
    routes: BTreeMap<(String, String), Canned>,
    faults: VecDeque<Canned>,
    requests: Vec<Recorded>,
}

#[derive(Clone)]
pub struct FakeVault {
    pub base_url: String,
    state: Arc<Mutex<State>>,
}

impl FakeVault {
    pub async fn start(token: &str) -> FakeVault {
        let state = Arc::new(Mutex::new(State {
            token: token.into(),
            ..Default::default()
        }));
        let st = state.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let st = st.clone();
                async move { handle(st, method, uri, headers, body) }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeVault {
            base_url: format!("http://{addr}"),
            state,
        }
    }

    /// Answer `method raw_path` (e.g. `GET /v1/secret/metadata/team/db`) with `canned`.
    pub fn route(&self, method: &str, raw_path: &str, canned: Canned) {
        self.state
            .lock()
            .unwrap()
            .routes
            .insert((method.into(), raw_path.into()), canned);
    }

    /// The next requests answer these, in order, whatever they ask.
    pub fn fail_next(&self, faults: &[Canned]) {
        self.state
            .lock()
            .unwrap()
            .faults
            .extend(faults.iter().cloned());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn handle(
    st: Arc<Mutex<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut s = st.lock().unwrap();
    let token_ok = text("x-vault-token").as_deref() == Some(s.token.as_str());
    s.requests.push(Recorded {
        method: method.to_string(),
        raw_path: uri.path().to_string(),
        raw_query: uri.query().map(str::to_string),
        body: serde_json::from_slice(&body).ok(),
        token_ok,
        namespace: text("x-vault-namespace"),
        has_authorization: headers.contains_key(header::AUTHORIZATION),
    });
    let canned = if let Some(f) = s.faults.pop_front() {
        f
    } else if !token_ok {
        Canned::errors(403, &["permission denied"])
    } else {
        s.routes
            .get(&(method.to_string(), uri.path().to_string()))
            .cloned()
            .unwrap_or_else(|| Canned::errors(404, &[]))
    };
    drop(s);
    let mut r = match canned.body {
        Some(b) => (
            StatusCode::from_u16(canned.status).unwrap(),
            [(header::CONTENT_TYPE, "application/json")],
            b.to_string(),
        )
            .into_response(),
        None => StatusCode::from_u16(canned.status).unwrap().into_response(),
    };
    if let Some(ra) = canned.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, ra.to_string().parse().unwrap());
    }
    r
}

/// A `SystemConfig` for a vault system at `base_url`.
pub fn system_config(base_url: &str, token: Option<&str>) -> offboard::providers::SystemConfig {
    offboard::providers::SystemConfig {
        name: "bao".into(),
        kind: "vault".into(),
        base_url: Some(base_url.into()),
        token: token.map(|t| secrecy::SecretString::from(t.to_string())),
        settings: Default::default(),
        secrets: Default::default(),
        timeout: Duration::from_secs(10),
        max_concurrency: 4,
        rate_limit: None,
        state_dir: std::env::temp_dir(),
    }
}
