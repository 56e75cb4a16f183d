//! A small kit the provider fakes stand on: an axum server on 127.0.0.1 that routes requests to
//! handlers by method and path template, records every request as received, answers queued
//! faults instead of the handler (429 in each rate-limit header style, 5xx, a closed connection,
//! a hang), and checks every recorded request against a declared [`Contract`], so a provider test
//! fails on a malformed request even when the fake would have answered it.
//!
//! Secrets stay out of the record: `Authorization` is kept as its scheme only
//! (`Bearer <redacted>`), and each header declared with [`Routes::secret_header`] as whether it
//! carried the expected value (`<redacted: expected>` / `<redacted: other>`).
//!
//! Path templates are `/`-separated: a literal segment matches itself (compared after
//! percent-decoding), `{name}` matches exactly one non-empty percent-encoded segment (so a raw `/`
//! inside an id makes the path unknown), and a final `{*name}` matches one or more segments. `.`
//! and `..` segments (raw or encoded) and empty segments never match a parameter.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::extract::connect_info::Connected;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use futures::StreamExt;
use serde_json::Value;
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------------------
// Answers and handlers

/// What a handler (or a `Fault::Reply`) answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn header(mut self, name: &str, value: impl fmt::Display) -> Reply {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    fn into_response(self) -> Response {
        let mut r = Response::new(axum::body::Body::from(self.body));
        *r.status_mut() = StatusCode::from_u16(self.status).expect("a valid status");
        for (n, v) in self.headers {
            r.headers_mut().append(
                HeaderName::try_from(n).expect("a valid header name"),
                HeaderValue::try_from(v).expect("a valid header value"),
            );
        }
        r
    }
}

/// A request as a handler sees it (the full headers, secrets included, so it can check them).
pub struct Req<'a> {
    pub method: &'a str,
    /// Still percent-encoded, exactly as sent.
    pub raw_path: &'a str,
    /// Path parameters of the matched route, percent-decoded (a `{*rest}` joins its decoded
    /// segments with `/`). Empty for the fallback.
    pub params: BTreeMap<String, String>,
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub json: Option<&'a Value>,
}

impl Req<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn param(&self, name: &str) -> &str {
        self.params
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no path parameter {name}"))
    }
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub type Handler = Arc<dyn Fn(&Req<'_>) -> Reply + Send + Sync>;
type ErrorReply = Arc<dyn Fn(u16, &str) -> Reply + Send + Sync>;
/// Decides a fault for a request no queued fault answered: `(method, raw_path, raw_query)`.
pub type FaultPolicy = Arc<dyn Fn(&str, &str, Option<&str>) -> Option<Fault> + Send + Sync>;

/// The routes of a fake: a handler per method and path template (first match wins), a fallback,
/// the headers to redact, and how an error answer (no route, a fault) looks for this service.
pub struct Routes {
    routes: Vec<(String, Template, Handler)>,
    fallback: Option<Handler>,
    secret_headers: Vec<(String, String)>,
    error_reply: ErrorReply,
    fault_policy: Option<FaultPolicy>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes::new()
    }
}

impl Routes {
    pub fn new() -> Routes {
        Routes {
            routes: Vec::new(),
            fallback: None,
            secret_headers: Vec::new(),
            error_reply: Arc::new(|status, msg| {
                Reply::json(status, &serde_json::json!({ "error": msg }))
            }),
            fault_policy: None,
        }
    }
    /// Answer `method template` with `handler`, e.g. `("GET", "/v1/identity/entity/id/{id}")`.
    pub fn route(
        mut self,
        method: &str,
        template: &str,
        handler: impl Fn(&Req<'_>) -> Reply + Send + Sync + 'static,
    ) -> Routes {
        self.routes
            .push((method.into(), Template::parse(template), Arc::new(handler)));
        self
    }
    /// Answer every request no route matched (default: a 404 error answer).
    pub fn fallback(
        mut self,
        handler: impl Fn(&Req<'_>) -> Reply + Send + Sync + 'static,
    ) -> Routes {
        self.fallback = Some(Arc::new(handler));
        self
    }
    /// Record this header only as whether it carried `expected`.
    pub fn secret_header(mut self, name: &str, expected: &str) -> Routes {
        self.secret_headers
            .push((name.to_ascii_lowercase(), expected.into()));
        self
    }
    /// Consult `policy` for every request no queued fault answered (e.g. seeded random faults);
    /// it runs under the server's lock, in arrival order, after the latency.
    pub fn fault_policy(
        mut self,
        policy: impl Fn(&str, &str, Option<&str>) -> Option<Fault> + Send + Sync + 'static,
    ) -> Routes {
        self.fault_policy = Some(Arc::new(policy));
        self
    }
    /// How this service answers an error (no route, 5xx and 429 faults, a hang's late answer).
    pub fn error_reply(mut self, f: impl Fn(u16, &str) -> Reply + Send + Sync + 'static) -> Routes {
        self.error_reply = Arc::new(f);
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Faults

/// How a 429 (or a 5xx) says when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfterStyle {
    /// No hint at all.
    Nothing,
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <IMF-fixdate>`, this many seconds from now.
    HttpDate(u64),
    /// Okta: `X-Rate-Limit-Limit`, `X-Rate-Limit-Remaining: 0`, `X-Rate-Limit-Reset: <epoch>`
    /// this many seconds from now.
    OktaReset(u64),
    /// GitHub: `X-RateLimit-Limit`, `X-RateLimit-Remaining: 0`, `X-RateLimit-Used`,
    /// `X-RateLimit-Reset: <epoch>` this many seconds from now.
    GitHubReset(u64),
}

impl RetryAfterStyle {
    fn headers(self) -> Vec<(String, String)> {
        let epoch_in = |secs: u64| {
            (SystemTime::now() + Duration::from_secs(secs))
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                .to_string()
        };
        let h = |n: &str, v: String| (n.to_string(), v);
        match self {
            RetryAfterStyle::Nothing => Vec::new(),
            RetryAfterStyle::Seconds(s) => vec![h("retry-after", s.to_string())],
            RetryAfterStyle::HttpDate(s) => vec![h(
                "retry-after",
                httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(s)),
            )],
            RetryAfterStyle::OktaReset(s) => vec![
                h("x-rate-limit-limit", "600".into()),
                h("x-rate-limit-remaining", "0".into()),
                h("x-rate-limit-reset", epoch_in(s)),
            ],
            RetryAfterStyle::GitHubReset(s) => vec![
                h("x-ratelimit-limit", "5000".into()),
                h("x-ratelimit-remaining", "0".into()),
                h("x-ratelimit-used", "5000".into()),
                h("x-ratelimit-reset", epoch_in(s)),
            ],
        }
    }
}

/// What a request answers instead of its handler. Each queued fault is consumed by one request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 with the service's error body and the given hint.
    TooMany { retry_after: RetryAfterStyle },
    /// A 5xx (500, 502, 503, …) with the service's error body and optionally a hint.
    Status {
        status: u16,
        retry_after: Option<RetryAfterStyle>,
    },
    /// Exactly this answer.
    Reply(Reply),
    /// Close the connection without an answer.
    Reset,
    /// Send the status line and headers, then break the connection mid-body.
    BreakBody,
    /// Say nothing for this long, then answer 503 (a client with a shorter timeout gives up).
    Hang(Duration),
    /// Wait this long, then answer as the handler would.
    Slow(Duration),
}

impl Fault {
    pub fn server_error() -> Fault {
        Fault::Status {
            status: 500,
            retry_after: None,
        }
    }
    pub fn bad_gateway() -> Fault {
        Fault::Status {
            status: 502,
            retry_after: None,
        }
    }
    pub fn unavailable(retry_after: Option<RetryAfterStyle>) -> Fault {
        Fault::Status {
            status: 503,
            retry_after,
        }
    }
    pub fn too_many(retry_after: RetryAfterStyle) -> Fault {
        Fault::TooMany { retry_after }
    }
    fn label(&self) -> String {
        match self {
            Fault::TooMany { retry_after } => format!("429 ({retry_after:?})"),
            Fault::Status {
                status,
                retry_after: Some(r),
            } => format!("{status} ({r:?})"),
            Fault::Status { status, .. } => status.to_string(),
            Fault::Reply(r) => format!("reply {}", r.status),
            Fault::Reset => "reset".into(),
            Fault::BreakBody => "broken body".into(),
            Fault::Hang(d) => format!("hang {} ms", d.as_millis()),
            Fault::Slow(d) => format!("slow {} ms", d.as_millis()),
        }
    }
}

/// A fault the server injected: which, and on what request (`#seq METHOD raw_path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub seq: usize,
    pub fault: String,
    pub on: String,
}

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on #{} {}", self.fault, self.seq, self.on)
    }
}

// ---------------------------------------------------------------------------------------------
// Recording

/// A request as the server received it, secrets redacted.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// 0-based, in arrival order.
    pub seq: usize,
    pub method: String,
    /// Still percent-encoded, exactly as sent.
    pub raw_path: String,
    pub raw_query: Option<String>,
    /// The query, decoded, in order.
    pub query: Vec<(String, String)>,
    /// Lowercase name and value, in order; `authorization` as `<scheme> <redacted>`, secret
    /// headers as `<redacted: expected>` or `<redacted: other>`.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body parsed, when it is JSON.
    pub json: Option<Value>,
    /// The fault that answered instead of the handler, if any.
    pub fault: Option<String>,
}

pub const REDACTED_EXPECTED: &str = "<redacted: expected>";
pub const REDACTED_OTHER: &str = "<redacted: other>";

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
    /// The `Authorization` scheme (`Bearer`, `Basic`, …), when the header was sent.
    pub fn auth_scheme(&self) -> Option<&str> {
        self.header("authorization")
            .map(|v| v.split_whitespace().next().unwrap_or(""))
    }
    /// A header declared secret carried the expected value.
    pub fn secret_ok(&self, name: &str) -> bool {
        self.header(name) == Some(REDACTED_EXPECTED)
    }
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// `METHOD raw_path[?raw_query]`.
    pub fn line(&self) -> String {
        match &self.raw_query {
            Some(q) => format!("{} {}?{q}", self.method, self.raw_path),
            None => format!("{} {}", self.method, self.raw_path),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server

#[derive(Default)]
struct KitState {
    requests: Vec<Recorded>,
    faults: VecDeque<Fault>,
    route_faults: Vec<(String, Template, VecDeque<Fault>)>,
    injected: Vec<Injected>,
    latency: Duration,
    bucket: Option<TokenBucket>,
    /// When each request the bucket let through arrived.
    admitted: Vec<std::time::Instant>,
    /// Requests the bucket refused with 429.
    throttled: usize,
}

/// A token-bucket rate limit as providers run them: `rate` tokens a second, at most `burst`
/// saved up; a request without a token is answered 429 with `Retry-After` (whole seconds until
/// the next token), before it is recorded or acted on.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    pub rate: f64,
    pub burst: f64,
    tokens: f64,
    at: std::time::Instant,
}

impl TokenBucket {
    pub fn new(rate_per_sec: f64, burst: u32) -> TokenBucket {
        TokenBucket {
            rate: rate_per_sec,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            at: std::time::Instant::now(),
        }
    }

    /// Take a token, or say how many whole seconds until one is there.
    fn take(&mut self) -> Result<(), u64> {
        let now = std::time::Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / self.rate).ceil() as u64).max(1))
        }
    }
}

struct Inner {
    routes: Routes,
    state: Mutex<KitState>,
}

/// A running fake. The server task ends when the test's runtime does.
#[derive(Clone)]
pub struct FakeServer {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub base_url: String,
    inner: Arc<Inner>,
}

/// A duplicate of the connection's socket, so a handler can close it without an answer.
#[derive(Clone)]
struct Conn(Arc<std::net::TcpStream>);

impl Connected<IncomingStream<'_, TcpListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        let fd = stream
            .io()
            .as_fd()
            .try_clone_to_owned()
            .expect("duplicate the connection's socket");
        Conn(Arc::new(std::net::TcpStream::from(fd)))
    }
}

impl FakeServer {
    /// Start on 127.0.0.1 with a free port.
    pub async fn start(routes: Routes) -> FakeServer {
        let inner = Arc::new(Inner {
            routes,
            state: Mutex::new(KitState::default()),
        });
        let i = inner.clone();
        // Uploads to service desks run to several MB (axum's default limit is 2 MB).
        let app = Router::new()
            .fallback(
                move |ConnectInfo(conn): ConnectInfo<Conn>,
                      method: Method,
                      uri: Uri,
                      headers: HeaderMap,
                      body: Bytes| {
                    let i = i.clone();
                    async move { handle(i, conn, method, uri, headers, body).await }
                },
            )
            .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<Conn>())
                .await
                .unwrap();
        });
        FakeServer {
            base_url: format!("http://{addr}"),
            inner,
        }
    }

    /// `base_url` + `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }

    /// The next request, whatever it asks, answers `fault` (after those already queued).
    pub fn fail_next(&self, fault: Fault) {
        self.state().faults.push_back(fault);
    }

    /// The next request matching `method template` answers `fault` (after those already queued
    /// for it). Route faults come before global ones.
    pub fn fail_next_on(&self, method: &str, template: &str, fault: Fault) {
        let t = Template::parse(template);
        let mut s = self.state();
        if let Some((_, _, q)) = s
            .route_faults
            .iter_mut()
            .find(|(m, tt, _)| m == method && tt.source == t.source)
        {
            q.push_back(fault);
        } else {
            s.route_faults
                .push((method.into(), t, VecDeque::from([fault])));
        }
    }

    /// Faults still queued (global and per route).
    pub fn pending_faults(&self) -> usize {
        let s = self.state();
        s.faults.len()
            + s.route_faults
                .iter()
                .map(|(_, _, q)| q.len())
                .sum::<usize>()
    }

    /// Delay every request by `d` before it is recorded or acted on (a client that gives up
    /// meanwhile leaves no trace, as with a server that never got the request).
    pub fn set_latency(&self, d: Duration) {
        self.state().latency = d;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// From now on, admit requests through a token bucket (see [`TokenBucket`]).
    pub fn token_bucket(&self, rate_per_sec: f64, burst: u32) {
        self.state().bucket = Some(TokenBucket::new(rate_per_sec, burst));
    }

    /// When each admitted request arrived, and how many the bucket refused.
    pub fn admitted(&self) -> (Vec<std::time::Instant>, usize) {
        let s = self.state();
        (s.admitted.clone(), s.throttled)
    }

    pub fn clear_requests(&self) {
        self.state().requests.clear();
    }

    /// The faults injected so far, in order.
    pub fn injected(&self) -> Vec<Injected> {
        self.state().injected.clone()
    }

    /// Every recorded request that broke `contract`, one readable line each.
    pub fn contract_violations(&self, contract: &Contract) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(|r| {
                contract
                    .check(r)
                    .err()
                    .map(|v| format!("#{} {}: {}", r.seq, r.line(), v.join("; ")))
            })
            .collect()
    }

    /// Panic with the list of every recorded request that matched no declared operation of
    /// `contract` or broke its shape.
    #[track_caller]
    pub fn assert_contract(&self, contract: &Contract) {
        let bad = self.contract_violations(contract);
        if !bad.is_empty() {
            panic!(
                "{} of {} requests broke the {} contract:\n  {}",
                bad.len(),
                self.state().requests.len(),
                contract.name,
                bad.join("\n  ")
            );
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, KitState> {
        self.inner.state.lock().unwrap()
    }
}

fn error_response(
    inner: &Inner,
    status: u16,
    msg: &str,
    hint: Option<RetryAfterStyle>,
) -> Response {
    let mut reply = (inner.routes.error_reply)(status, msg);
    if let Some(h) = hint {
        reply.headers.extend(h.headers());
    }
    reply.into_response()
}

async fn handle(
    inner: Arc<Inner>,
    conn: Conn,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = inner.state.lock().unwrap().latency;
    if !latency.is_zero() {
        // Dropped here when the client goes away: the request leaves no trace.
        tokio::time::sleep(latency).await;
    }
    {
        let mut s = inner.state.lock().unwrap();
        let refused = s.bucket.as_mut().and_then(|b| b.take().err());
        if let Some(wait) = refused {
            s.throttled += 1;
            drop(s);
            return error_response(
                &inner,
                429,
                "rate limit exceeded",
                Some(RetryAfterStyle::Seconds(wait)),
            );
        }
        s.admitted.push(std::time::Instant::now());
    }
    let raw_path = uri.path().to_string();
    let raw_query = uri.query().map(str::to_string);
    let query: Vec<(String, String)> = raw_query
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let method_s = method.to_string();

    let fault = {
        let mut s = inner.state.lock().unwrap();
        let seq = s.requests.len();
        let route_fault = s
            .route_faults
            .iter_mut()
            .find(|(m, t, q)| *m == method_s && !q.is_empty() && t.matches(&raw_path).is_some())
            .and_then(|(_, _, q)| q.pop_front());
        let fault = route_fault.or_else(|| s.faults.pop_front()).or_else(|| {
            let policy = inner.routes.fault_policy.as_ref()?;
            policy(&method_s, &raw_path, raw_query.as_deref())
        });
        s.requests.push(Recorded {
            seq,
            method: method_s.clone(),
            raw_path: raw_path.clone(),
            raw_query: raw_query.clone(),
            query: query.clone(),
            headers: redact(&headers, &inner.routes.secret_headers),
            body: body.to_vec(),
            json: json.clone(),
            fault: fault.as_ref().map(Fault::label),
        });
        if let Some(f) = &fault {
            s.injected.push(Injected {
                seq,
                fault: f.label(),
                on: format!("{method_s} {raw_path}"),
            });
        }
        fault
    };

    match fault {
        None => {}
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        Some(Fault::TooMany { retry_after }) => {
            return error_response(&inner, 429, "too many requests", Some(retry_after));
        }
        Some(Fault::Status {
            status,
            retry_after,
        }) => return error_response(&inner, status, "injected server error", retry_after),
        Some(Fault::Reply(r)) => return r.into_response(),
        Some(Fault::Reset) => {
            // FIN both ways before any byte of an answer: the client reads an early EOF.
            let _ = conn.0.shutdown(Shutdown::Both);
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        Some(Fault::BreakBody) => {
            // A first chunk makes the head go out; then the body breaks.
            let broken = futures::stream::iter([Ok(Bytes::from_static(b"{\"partial\":"))]).chain(
                futures::stream::once(async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Err::<Bytes, std::io::Error>(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "injected reset",
                    ))
                }),
            );
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                axum::body::Body::from_stream(broken),
            )
                .into_response();
        }
        Some(Fault::Hang(d)) => {
            tokio::time::sleep(d).await;
            return error_response(&inner, 503, "hung", None);
        }
    }

    let req = |params| Req {
        method: &method_s,
        raw_path: &raw_path,
        params,
        query: &query,
        headers: &headers,
        body: &body,
        json: json.as_ref(),
    };
    for (m, t, h) in &inner.routes.routes {
        if *m == method_s
            && let Some(params) = t.matches(&raw_path)
        {
            return h(&req(params)).into_response();
        }
    }
    match &inner.routes.fallback {
        Some(h) => h(&req(BTreeMap::new())).into_response(),
        None => error_response(&inner, 404, "no such route", None),
    }
}

fn redact(headers: &HeaderMap, secret: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            let name = n.as_str().to_string();
            let text = String::from_utf8_lossy(v.as_bytes()).to_string();
            let value = if name == "authorization" {
                match text.split_once(' ') {
                    Some((scheme, _)) => format!("{scheme} <redacted>"),
                    None => "<redacted>".into(),
                }
            } else if let Some((_, expected)) = secret.iter().find(|(s, _)| *s == name) {
                if text == *expected {
                    REDACTED_EXPECTED.into()
                } else {
                    REDACTED_OTHER.into()
                }
            } else {
                text
            };
            (name, value)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Path templates

#[derive(Debug, Clone)]
enum Seg {
    Lit(String),
    Param(String),
    Rest(String),
}

#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    segs: Vec<Seg>,
}

impl Template {
    pub fn parse(source: &str) -> Template {
        assert!(
            source.starts_with('/'),
            "a path template starts with /: {source}"
        );
        let parts: Vec<&str> = source[1..].split('/').collect();
        let segs = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if let Some(name) = p.strip_prefix("{*").and_then(|p| p.strip_suffix('}')) {
                    assert!(
                        i + 1 == parts.len(),
                        "{{*{name}}} must end the template: {source}"
                    );
                    Seg::Rest(name.into())
                } else if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Seg::Param(name.into())
                } else {
                    Seg::Lit((*p).into())
                }
            })
            .collect();
        Template {
            source: source.into(),
            segs,
        }
    }

    /// The decoded parameters when `raw_path` (still percent-encoded) matches.
    pub fn matches(&self, raw_path: &str) -> Option<BTreeMap<String, String>> {
        let rest = raw_path.strip_prefix('/')?;
        let raw: Vec<&str> = rest.split('/').collect();
        let mut params = BTreeMap::new();
        let mut i = 0;
        for seg in &self.segs {
            match seg {
                Seg::Lit(l) => {
                    if decode(raw.get(i)?)? != *l {
                        return None;
                    }
                    i += 1;
                }
                Seg::Param(name) => {
                    params.insert(name.clone(), param_segment(raw.get(i)?)?);
                    i += 1;
                }
                Seg::Rest(name) => {
                    if i >= raw.len() {
                        return None;
                    }
                    let parts: Option<Vec<String>> =
                        raw[i..].iter().map(|s| param_segment(s)).collect();
                    params.insert(name.clone(), parts?.join("/"));
                    i = raw.len();
                }
            }
        }
        (i == raw.len()).then_some(params)
    }
}

fn decode(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// One parameter segment: non-empty, not `.`/`..`, only RFC 3986 pchars and well-formed `%HH`.
fn param_segment(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if i + 2 >= b.len() {
                return None;
            }
            if !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return None;
            }
            i += 3;
            continue;
        }
        let ok = c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&c);
        if !ok {
            return None;
        }
        i += 1;
    }
    let d = decode(raw)?;
    (!d.is_empty() && d != "." && d != "..").then_some(d)
}

// ---------------------------------------------------------------------------------------------
// Contracts

/// A JSON shape: the minimal checker a contract's bodies need.
#[derive(Debug, Clone)]
pub enum Shape {
    Any,
    String,
    Integer,
    Number,
    Bool,
    Null,
    /// A string, one of these.
    Enum(Vec<String>),
    /// An array whose every item has this shape.
    Array(Box<Shape>),
    /// An object with any keys whose every value has this shape.
    Map(Box<Shape>),
    Object(ObjectShape),
    /// This shape or `null`.
    Nullable(Box<Shape>),
}

#[derive(Debug, Clone, Default)]
pub struct ObjectShape {
    pub required: Vec<(String, Shape)>,
    pub optional: Vec<(String, Shape)>,
    /// Other properties are allowed.
    pub additional: bool,
}

/// An object shape, to build with `.req(…)`, `.opt(…)`, `.additional(…)`.
pub fn obj() -> ObjectShape {
    ObjectShape::default()
}

impl ObjectShape {
    pub fn req(mut self, name: &str, shape: impl Into<Shape>) -> ObjectShape {
        self.required.push((name.into(), shape.into()));
        self
    }
    pub fn opt(mut self, name: &str, shape: impl Into<Shape>) -> ObjectShape {
        self.optional.push((name.into(), shape.into()));
        self
    }
    pub fn additional(mut self, yes: bool) -> ObjectShape {
        self.additional = yes;
        self
    }
}

impl From<ObjectShape> for Shape {
    fn from(o: ObjectShape) -> Shape {
        Shape::Object(o)
    }
}

impl Shape {
    pub fn array(item: impl Into<Shape>) -> Shape {
        Shape::Array(Box::new(item.into()))
    }
    pub fn map(value: impl Into<Shape>) -> Shape {
        Shape::Map(Box::new(value.into()))
    }
    pub fn one_of(values: &[&str]) -> Shape {
        Shape::Enum(values.iter().map(|s| s.to_string()).collect())
    }
    pub fn nullable(s: impl Into<Shape>) -> Shape {
        Shape::Nullable(Box::new(s.into()))
    }

    fn name(&self) -> String {
        match self {
            Shape::Any => "anything".into(),
            Shape::String => "string".into(),
            Shape::Integer => "integer".into(),
            Shape::Number => "number".into(),
            Shape::Bool => "bool".into(),
            Shape::Null => "null".into(),
            Shape::Enum(v) => format!("one of {v:?}"),
            Shape::Array(_) => "array".into(),
            Shape::Map(_) | Shape::Object(_) => "object".into(),
            Shape::Nullable(s) => format!("{} or null", s.name()),
        }
    }

    /// Push a line per place `v` breaks this shape (`at` is the JSON path so far, e.g. `$`).
    pub fn check(&self, v: &Value, at: &str, out: &mut Vec<String>) {
        let bad = |out: &mut Vec<String>| {
            let mut got = v.to_string();
            if got.len() > 40 {
                got.truncate(40);
                got.push('…');
            }
            out.push(format!("{at}: expected {}, got {got}", self.name()));
        };
        match (self, v) {
            (Shape::Any, _)
            | (Shape::String, Value::String(_))
            | (Shape::Number, Value::Number(_))
            | (Shape::Bool, Value::Bool(_))
            | (Shape::Null, Value::Null) => {}
            (Shape::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => {}
            (Shape::Enum(vals), Value::String(s)) if vals.contains(s) => {}
            (Shape::Nullable(_), Value::Null) => {}
            (Shape::Nullable(s), _) => s.check(v, at, out),
            (Shape::Array(item), Value::Array(items)) => {
                for (i, x) in items.iter().enumerate() {
                    item.check(x, &format!("{at}[{i}]"), out);
                }
            }
            (Shape::Map(value), Value::Object(m)) => {
                for (k, x) in m {
                    value.check(x, &format!("{at}.{k}"), out);
                }
            }
            (Shape::Object(o), Value::Object(m)) => {
                for (k, s) in &o.required {
                    match m.get(k) {
                        Some(x) => s.check(x, &format!("{at}.{k}"), out),
                        None => out.push(format!("{at}: missing property {k} ({})", s.name())),
                    }
                }
                for (k, s) in &o.optional {
                    if let Some(x) = m.get(k) {
                        s.check(x, &format!("{at}.{k}"), out);
                    }
                }
                if !o.additional {
                    for k in m.keys() {
                        let declared = o.required.iter().chain(&o.optional).any(|(n, _)| n == k);
                        if !declared {
                            out.push(format!("{at}: undeclared property {k}"));
                        }
                    }
                }
            }
            _ => bad(out),
        }
    }
}

/// What a query parameter's value must be.
#[derive(Debug, Clone)]
pub enum QueryValue {
    Any,
    Exact(String),
    Integer,
    /// A comma-separated list whose every item is one of these (OData's `$select`).
    EachOf(Vec<String>),
}

impl QueryValue {
    /// [`QueryValue::EachOf`] these names.
    pub fn each_of(names: &[&str]) -> QueryValue {
        QueryValue::EachOf(names.iter().map(|s| s.to_string()).collect())
    }
}

#[derive(Debug, Clone)]
pub struct QueryRule {
    pub name: String,
    pub required: bool,
    pub value: QueryValue,
}

/// One declared operation: method, path template, required headers (`name` or
/// `name: media/type`), query parameters, body shape (`None`: no body at all).
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: String,
    pub path_template: String,
    pub required_headers: Vec<String>,
    pub query: Vec<QueryRule>,
    /// Query parameters other than those declared are allowed.
    pub extra_query: bool,
    pub body: Option<Shape>,
    /// With a `body` shape: an empty body is allowed too.
    pub body_optional: bool,
    /// A non-empty body that is not JSON (an upload's bytes); its content type is a header rule.
    pub raw_body: bool,
    /// A `multipart/form-data` body with these fields.
    pub multipart: Option<FormRule>,
}

impl Operation {
    pub fn new(method: &str, path_template: &str) -> Operation {
        Template::parse(path_template); // a malformed template fails here, at declaration
        Operation {
            method: method.into(),
            path_template: path_template.into(),
            required_headers: Vec::new(),
            query: Vec::new(),
            extra_query: false,
            body: None,
            body_optional: false,
            raw_body: false,
            multipart: None,
        }
    }
    pub fn header(mut self, spec: &str) -> Operation {
        self.required_headers.push(spec.into());
        self
    }
    pub fn query(mut self, name: &str, required: bool, value: QueryValue) -> Operation {
        self.query.push(QueryRule {
            name: name.into(),
            required,
            value,
        });
        self
    }
    /// A JSON body of this shape (and `content-type: application/json`).
    pub fn json_body(mut self, shape: impl Into<Shape>) -> Operation {
        self.body = Some(shape.into());
        self.header("content-type: application/json")
    }
    /// A body of raw bytes (not empty) with this `content-type`.
    pub fn raw_body(mut self, content_type: &str) -> Operation {
        self.raw_body = true;
        self.header(&format!("content-type: {content_type}"))
    }
    /// A `multipart/form-data` body: each of `required` present, nothing but `required` and
    /// `optional`, and the fields named in `files` (and only those) carrying a file name.
    pub fn multipart_body(
        mut self,
        required: &[&str],
        optional: &[&str],
        files: &[&str],
    ) -> Operation {
        let names = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        self.multipart = Some(FormRule {
            required: names(required),
            optional: names(optional),
            files: names(files),
        });
        self.header("content-type: multipart/form-data")
    }
    /// A JSON body of this shape or none at all.
    pub fn optional_json_body(mut self, shape: impl Into<Shape>) -> Operation {
        self.body = Some(shape.into());
        self.body_optional = true;
        self
    }

    fn violations(&self, common: &[String], r: &Recorded) -> Vec<String> {
        let mut out = Vec::new();
        for spec in common.iter().chain(&self.required_headers) {
            let (name, want) = match spec.split_once(':') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (spec.trim(), None),
            };
            match (r.header(name), want) {
                (None, _) => out.push(format!("missing header {name}")),
                (Some(got), Some(want)) => {
                    // A media type is compared without its parameters; Authorization by scheme.
                    let got = got.split([';', ' ']).next().unwrap_or("").trim();
                    if !got.eq_ignore_ascii_case(want) {
                        out.push(format!("header {name} is {got:?}, expected {want:?}"));
                    }
                }
                (Some(_), None) => {}
            }
        }
        for rule in &self.query {
            match (r.query_param(&rule.name), &rule.value) {
                (None, _) if rule.required => {
                    out.push(format!("missing query parameter {}", rule.name))
                }
                (None, _) | (Some(_), QueryValue::Any) => {}
                (Some(v), QueryValue::Exact(w)) if v == w => {}
                (Some(v), QueryValue::Integer) if v.parse::<i64>().is_ok() => {}
                (Some(v), QueryValue::EachOf(names))
                    if v.split(',').all(|item| names.iter().any(|n| n == item)) => {}
                (Some(v), want) => out.push(format!(
                    "query parameter {}={v:?} is not {want:?}",
                    rule.name
                )),
            }
        }
        if !self.extra_query {
            for (k, _) in &r.query {
                if !self.query.iter().any(|q| q.name == *k) {
                    out.push(format!("undeclared query parameter {k}"));
                }
            }
        }
        if let Some(rule) = &self.multipart {
            rule.check(r, &mut out);
            return out;
        }
        match (&self.body, r.body.is_empty()) {
            (None, false) if self.raw_body => {}
            (None, true) if self.raw_body => out.push("missing body".into()),
            (None, true) => {}
            (None, false) => out.push(format!("unexpected body ({} bytes)", r.body.len())),
            (Some(_), true) if self.body_optional => {}
            (Some(_), true) => out.push("missing JSON body".into()),
            (Some(shape), false) => match &r.json {
                None => out.push("body is not JSON".into()),
                Some(v) => shape.check(v, "$", &mut out),
            },
        }
        out
    }
}

/// The fields a `multipart/form-data` body must and may have.
#[derive(Debug, Clone)]
pub struct FormRule {
    pub required: Vec<String>,
    pub optional: Vec<String>,
    /// The fields that are files (a `filename` in their Content-Disposition).
    pub files: Vec<String>,
}

impl FormRule {
    fn check(&self, r: &Recorded, out: &mut Vec<String>) {
        let parts = match parse_multipart(r.header("content-type").unwrap_or(""), &r.body) {
            Ok(p) => p,
            Err(e) => {
                out.push(format!("multipart body: {e}"));
                return;
            }
        };
        for name in &self.required {
            if !parts.iter().any(|p| p.name == *name) {
                out.push(format!("multipart body: missing field {name}"));
            }
        }
        for p in &parts {
            if !self.required.contains(&p.name) && !self.optional.contains(&p.name) {
                out.push(format!("multipart body: undeclared field {}", p.name));
            }
            match (self.files.contains(&p.name), &p.filename) {
                (true, None) => {
                    out.push(format!("multipart body: field {} has no file name", p.name))
                }
                (false, Some(_)) => {
                    out.push(format!("multipart body: field {} is not a file", p.name))
                }
                _ => {}
            }
        }
    }
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormPart {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

impl FormPart {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// The parts of a `multipart/form-data` body (RFC 7578) as a server reads them: the boundary
/// from `content_type`, each part's Content-Disposition `name` and `filename` (with `%22`,
/// `%0D`, `%0A` decoded, as browsers encode them) and Content-Type, its bytes exactly.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<FormPart>, String> {
    let mut params = content_type.split(';');
    let media = params.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return Err(format!("content type {media:?} is not multipart/form-data"));
    }
    let boundary = params
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty())
        .ok_or("no boundary in the content type")?;
    let delim = format!("--{boundary}").into_bytes();
    let find = |from: usize, needle: &[u8]| {
        body.get(from..)
            .and_then(|rest| rest.windows(needle.len()).position(|w| w == needle))
            .map(|i| from + i)
    };
    if !body.starts_with(&delim) {
        return Err("the body does not start with the boundary".into());
    }
    let mut next_delim = delim.clone();
    next_delim.splice(0..0, *b"\r\n");
    let mut at = delim.len();
    let mut parts = Vec::new();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Ok(parts);
        }
        if body.get(at..at + 2) != Some(b"\r\n") {
            return Err("a boundary is not followed by CRLF".into());
        }
        at += 2;
        let end = find(at, &next_delim).ok_or("a part is not closed by the boundary")?;
        let part = &body[at..end];
        let split = part
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("a part has no blank line after its headers")?;
        let head = String::from_utf8_lossy(&part[..split]).into_owned();
        let mut fp = FormPart {
            name: String::new(),
            filename: None,
            content_type: None,
            bytes: part[split + 4..].to_vec(),
        };
        let mut disposition = false;
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                return Err(format!("a part header without a colon: {line:?}"));
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                disposition = true;
                let mut ps = v.split(';');
                if ps.next().map(str::trim) != Some("form-data") {
                    return Err(format!("a part is not form-data: {v:?}"));
                }
                for p in ps {
                    let Some((pk, pv)) = p.trim().split_once('=') else {
                        continue;
                    };
                    let pv = pv
                        .trim()
                        .trim_matches('"')
                        .replace("%22", "\"")
                        .replace("%0D", "\r")
                        .replace("%0A", "\n");
                    match pk.trim() {
                        "name" => fp.name = pv,
                        "filename" => fp.filename = Some(pv),
                        _ => {}
                    }
                }
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                fp.content_type = Some(v.trim().to_string());
            }
        }
        if !disposition || fp.name.is_empty() {
            return Err("a part has no Content-Disposition name".into());
        }
        parts.push(fp);
        at = end + next_delim.len();
    }
}

/// The operations a service accepts; every recorded request must match one of them.
#[derive(Debug, Clone)]
pub struct Contract {
    pub name: String,
    /// Headers every operation requires.
    pub common_headers: Vec<String>,
    pub operations: Vec<Operation>,
}

impl Contract {
    pub fn new(name: &str) -> Contract {
        Contract {
            name: name.into(),
            common_headers: Vec::new(),
            operations: Vec::new(),
        }
    }
    pub fn every_request_header(mut self, spec: &str) -> Contract {
        self.common_headers.push(spec.into());
        self
    }
    pub fn op(mut self, op: Operation) -> Contract {
        self.operations.push(op);
        self
    }

    /// `Ok` when `r` matches a declared operation in every respect; else what is wrong.
    pub fn check(&self, r: &Recorded) -> Result<(), Vec<String>> {
        let on_path: Vec<&Operation> = self
            .operations
            .iter()
            .filter(|o| {
                Template::parse(&o.path_template)
                    .matches(&r.raw_path)
                    .is_some()
            })
            .collect();
        if on_path.is_empty() {
            return Err(vec!["no declared operation has this path".into()]);
        }
        let same: Vec<&&Operation> = on_path.iter().filter(|o| o.method == r.method).collect();
        if same.is_empty() {
            let declared: Vec<String> = on_path
                .iter()
                .map(|o| format!("{} {}", o.method, o.path_template))
                .collect();
            return Err(vec![format!(
                "method {} not declared for this path (declared: {})",
                r.method,
                declared.join(", ")
            )]);
        }
        let mut first = None;
        for op in same {
            let v = op.violations(&self.common_headers, r);
            if v.is_empty() {
                return Ok(());
            }
            first.get_or_insert_with(|| {
                let mut v = v;
                v.push(format!(
                    "checked against {} {}",
                    op.method, op.path_template
                ));
                v
            });
        }
        Err(first.unwrap_or_default())
    }
}
