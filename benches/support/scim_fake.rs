//! The in-process SCIM-like fake the benches talk to: systems on 127.0.0.1 (`<base>/<n>/scim/v2`
//! is system n) that wait a configurable latency before answering, and spend a token of their
//! own token bucket on every request, answering 429 with Retry-After when the budget is spent.
//! It counts what it saw per system: requests, 429s, and the requests it served each second.
//!
//! Shared by `benches/latency.rs` and `benches/bulk.rs` (each uses a part of it).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

pub const TOKEN: &str = "bench-token";

/// A token bucket: `rate` requests per second on average, `burst` at once.
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn new(per_minute: f64, burst: f64) -> Bucket {
        Bucket {
            rate: per_minute / 60.0,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    /// Take a token, or say how many seconds until one is there.
    fn take(&mut self) -> Result<(), u64> {
        let now = Instant::now();
        self.tokens = (self.tokens + (now - self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - self.tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

/// One SCIM-like system: its users (`id` → userName, active), its limit, what it saw.
pub struct System {
    users: HashMap<String, (String, bool)>,
    /// userName → id.
    by_name: HashMap<String, String>,
    bucket: Bucket,
    requests: usize,
    throttled: usize,
    /// When the first and the last request it served (not 429) reached its bucket.
    first: Option<Instant>,
    last: Option<Instant>,
    /// Requests served (not 429), by whole second since the fake was made.
    per_second: Vec<u32>,
}

impl System {
    /// A system holding `users` as (id, userName), all active.
    pub fn new(users: impl IntoIterator<Item = (String, String)>, bucket: Bucket) -> System {
        let mut s = System {
            users: HashMap::new(),
            by_name: HashMap::new(),
            bucket,
            requests: 0,
            throttled: 0,
            first: None,
            last: None,
            per_second: Vec::new(),
        };
        for (id, name) in users {
            s.by_name.insert(name.clone(), id.clone());
            s.users.insert(id, (name, true));
        }
        s
    }
}

/// What one system saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Every request, 429s included.
    pub requests: usize,
    /// Those answered 429.
    pub throttled: usize,
    /// From the first to the last request served.
    pub span: Duration,
    /// The most requests served in one second (of the fake's clock).
    pub busiest_second: u32,
}

#[derive(Clone)]
pub struct Fake {
    latency: Duration,
    born: Instant,
    systems: Arc<Vec<Mutex<System>>>,
}

impl Fake {
    pub fn new(latency: Duration, systems: Vec<System>) -> Fake {
        Fake {
            latency,
            born: Instant::now(),
            systems: Arc::new(systems.into_iter().map(Mutex::new).collect()),
        }
    }

    /// Every request waits `latency`, then spends a token of its system's bucket (429 with
    /// Retry-After when there is none), then is answered.
    async fn admit(&self, sys: usize, headers: &HeaderMap) -> Result<(), Response> {
        tokio::time::sleep(self.latency).await;
        let Some(system) = self.systems.get(sys) else {
            return Err(StatusCode::NOT_FOUND.into_response());
        };
        let mut s = system.lock().unwrap();
        s.requests += 1;
        if headers.get("authorization").and_then(|v| v.to_str().ok())
            != Some(&format!("Bearer {TOKEN}"))
        {
            return Err(StatusCode::UNAUTHORIZED.into_response());
        }
        if let Err(wait) = s.bucket.take() {
            s.throttled += 1;
            return Err((
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", wait.to_string())],
                Json(scim_error(429, "too many requests")),
            )
                .into_response());
        }
        let now = Instant::now();
        s.first.get_or_insert(now);
        s.last = Some(now);
        let second = (now - self.born).as_secs() as usize;
        if s.per_second.len() <= second {
            s.per_second.resize(second + 1, 0);
        }
        s.per_second[second] += 1;
        Ok(())
    }

    pub fn requests(&self) -> usize {
        self.systems
            .iter()
            .map(|s| s.lock().unwrap().requests)
            .sum()
    }

    pub fn throttled(&self) -> usize {
        self.systems
            .iter()
            .map(|s| s.lock().unwrap().throttled)
            .sum()
    }

    /// What each system saw, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.systems
            .iter()
            .map(|s| {
                let s = s.lock().unwrap();
                Seen {
                    requests: s.requests,
                    throttled: s.throttled,
                    span: match (s.first, s.last) {
                        (Some(a), Some(b)) => b - a,
                        _ => Duration::ZERO,
                    },
                    busiest_second: s.per_second.iter().copied().max().unwrap_or(0),
                }
            })
            .collect()
    }
}

fn scim_error(status: u16, detail: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.to_string(),
        "detail": detail,
    })
}

fn user(id: &str, name: &str, active: bool) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": id,
        "userName": name,
        "active": active,
    })
}

async fn find(
    State(fake): State<Fake>,
    UrlPath(sys): UrlPath<usize>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = fake.admit(sys, &headers).await {
        return r;
    }
    // `userName eq "<login>"`, the login a JSON string literal.
    let wanted = q
        .get("filter")
        .and_then(|f| f.strip_prefix("userName eq "))
        .and_then(|l| serde_json::from_str::<String>(l).ok());
    let s = fake.systems[sys].lock().unwrap();
    let found: Vec<Value> = wanted
        .and_then(|name| s.by_name.get(&name))
        .and_then(|id| {
            s.users
                .get(id)
                .map(|(name, active)| user(id, name, *active))
        })
        .into_iter()
        .collect();
    Json(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": found.len(),
        "startIndex": 1,
        "itemsPerPage": found.len(),
        "Resources": found,
    }))
    .into_response()
}

async fn read(
    State(fake): State<Fake>,
    UrlPath((sys, id)): UrlPath<(usize, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = fake.admit(sys, &headers).await {
        return r;
    }
    let s = fake.systems[sys].lock().unwrap();
    match s.users.get(&id) {
        Some((name, active)) => Json(user(&id, name, *active)).into_response(),
        None => (StatusCode::NOT_FOUND, Json(scim_error(404, "no such user"))).into_response(),
    }
}

/// A PatchOp `replace active=<bool>`: answers 200 with the resource.
async fn patch(
    State(fake): State<Fake>,
    UrlPath((sys, id)): UrlPath<(usize, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = fake.admit(sys, &headers).await {
        return r;
    }
    let mut s = fake.systems[sys].lock().unwrap();
    let Some((name, active)) = s.users.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, Json(scim_error(404, "no such user"))).into_response();
    };
    for op in body["Operations"].as_array().into_iter().flatten() {
        if op["path"] == "active"
            && let Some(v) = op["value"].as_bool()
        {
            *active = v;
        }
    }
    Json(user(&id, name, *active)).into_response()
}

/// Start the fake on its own runtime thread; its base URL (`<base>/<n>/scim/v2` is system n).
pub fn serve(fake: Fake) -> String {
    let app = Router::new()
        .route("/{sys}/scim/v2/Users", get(find))
        .route("/{sys}/scim/v2/Users/{id}", get(read).patch(patch))
        .with_state(fake);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}
