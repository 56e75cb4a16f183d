//! The HTTP client every REST provider shares: auth, timeouts, retries with backoff and jitter,
//! `Retry-After` and rate-limit headers, readable provider errors.
//!
//! A provider builds one [`HttpClient`] in `connect` (no I/O happens there), builds URLs with
//! [`HttpClient::endpoint`] / [`with_query`] (every piece of user input percent-encoded, never
//! concatenated raw), and sends [`Request`]s with [`HttpClient::send`]:
//!
//! - 2xx (and any status the request [allows](Request::allow)) come back as an [`HttpResponse`]
//!   with a [`RequestRecord`] for the journal;
//! - connection errors, timeouts, 429, 500, 502, 503 and 504 are retried under a [`RetryPolicy`]
//!   (exponential backoff with full jitter; `Retry-After` and rate-limit reset headers win), each
//!   retry reported through [`CallCtx::retrying`]; when the budget runs out the error is
//!   [`ProviderError::Transient`];
//! - other statuses fail at once: 404 as [`ProviderError::NotFound`], the rest as
//!   [`ProviderError::Permanent`], with the provider's own message extracted by its
//!   [`ErrorParser`].
//!
//! Messages name the method and the URL path only (never the host's query or a header) and any
//! occurrence of the token is redacted as a last line of defence.
//!
//! Retries are a small loop rather than `backon`: the wait often comes from the server
//! (`Retry-After`, reset epochs) rather than from the backoff schedule, the decision depends on
//! the response, and each wait must be reported to the engine; a loop says all of that plainly.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{Auth, StaticToken};
use crate::providers::{
    CallCtx, ProviderError, RequestRecord, RetryNote, SettingSpec, SettingType, SystemConfig,
};

/// The setting every kind built on [`HttpClient`] lists among its settings: without it, an
/// `http://` base_url to a host other than this machine is refused, so the token never leaves
/// in clear by accident.
pub const ALLOW_PLAIN: SettingSpec = SettingSpec {
    name: "allow_plain",
    ty: SettingType::Bool,
    required: false,
    summary: "allow an `http://` base_url to another machine: the token crosses the network in \
              clear (default false; `http://` to 127.0.0.0/8, `::1` or `localhost` is always \
              allowed)",
};

/// Whether `url` points at this machine: 127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z) or
/// `localhost`. Only then may plain `http://` carry a token without `allow_plain = true`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Some(url::Host::Domain(d)) => {
            let d = d.strip_suffix('.').unwrap_or(d);
            d.eq_ignore_ascii_case("localhost")
        }
        None => false,
    }
}

/// `allow_plain` from a system's settings (default false).
fn allow_plain(cfg: &SystemConfig) -> anyhow::Result<bool> {
    match cfg.settings.get(ALLOW_PLAIN.name) {
        None => Ok(false),
        Some(toml::Value::Boolean(b)) => Ok(*b),
        Some(other) => anyhow::bail!(
            "system `{}`: allow_plain must be true or false, not {}",
            cfg.name,
            other.type_str()
        ),
    }
}

/// Characters left as they are in a path segment or a query component: RFC 3986 unreserved.
/// Everything else (space, quotes, `/`, `%`, `?`, `#`, `&`, `=`, `+`, non-ASCII…) is encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encode one path segment or query component (RFC 3986; space is `%20`, never `+`).
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// `url` with its query replaced by `pairs`, each key and value percent-encoded.
pub fn with_query(mut url: Url, pairs: &[(&str, &str)]) -> Url {
    if pairs.is_empty() {
        url.set_query(None);
        return url;
    }
    let q = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect::<Vec<_>>()
        .join("&");
    url.set_query(Some(&q));
    url
}

/// Turns an error response body into the provider's message, e.g. SCIM's `detail`. `None` when
/// the body says nothing useful; the client then falls back to a short excerpt of the body.
pub type ErrorParser = Arc<dyn Fn(&[u8]) -> Option<String> + Send + Sync>;

/// Whether an answer with a status that is normally retried (500, 503…) is in fact the
/// service refusing the request, judging by its status and body.
pub type Refusal = Arc<dyn Fn(StatusCode, &[u8]) -> bool + Send + Sync>;

/// Tells a throttle among answers whose status is not normally retried.
pub type Throttle = Arc<dyn Fn(StatusCode, &HeaderMap, &[u8]) -> bool + Send + Sync>;

pub use super::retry::RetryPolicy;
use super::retry::{jitter, secs};

/// One request to send. Cheap to clone: it is rebuilt for each attempt.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    body: Option<(HeaderValue, Vec<u8>)>,
    allowed: Vec<StatusCode>,
    record_query: bool,
    resend_safe: bool,
    adds: bool,
    accept: Option<HeaderValue>,
}

impl Request {
    pub fn new(method: Method, url: Url) -> Request {
        Request {
            method,
            url,
            body: None,
            allowed: Vec::new(),
            record_query: true,
            resend_safe: false,
            adds: false,
            accept: None,
        }
    }

    pub fn get(url: Url) -> Request {
        Request::new(Method::GET, url)
    }

    pub fn delete(url: Url) -> Request {
        Request::new(Method::DELETE, url)
    }

    pub fn patch(url: Url) -> Request {
        Request::new(Method::PATCH, url)
    }

    pub fn post(url: Url) -> Request {
        Request::new(Method::POST, url)
    }

    pub fn put(url: Url) -> Request {
        Request::new(Method::PUT, url)
    }

    /// A JSON body with the given media type (e.g. `application/scim+json`).
    pub fn json(mut self, value: &serde_json::Value, content_type: &'static str) -> Request {
        let bytes = serde_json::to_vec(value).expect("a JSON value always serialises");
        self.body = Some((HeaderValue::from_static(content_type), bytes));
        self
    }

    /// A body of raw bytes with the given media type (a file upload).
    pub fn bytes(mut self, body: Vec<u8>, content_type: &'static str) -> Request {
        self.body = Some((HeaderValue::from_static(content_type), body));
        self
    }

    /// A body whose media type is known only now, e.g. `multipart/form-data; boundary=…`
    /// (see [`super::multipart::Form`]).
    pub fn body(mut self, body: Vec<u8>, content_type: HeaderValue) -> Request {
        self.body = Some((content_type, body));
        self
    }

    /// Ask for this media type instead of the client's `Accept` (a file download).
    pub fn accept(mut self, accept: &'static str) -> Request {
        self.accept = Some(HeaderValue::from_static(accept));
        self
    }

    /// Hand this non-2xx status back as a response instead of an error (e.g. 404 on a check).
    pub fn allow(mut self, status: StatusCode) -> Request {
        self.allowed.push(status);
        self
    }

    /// Leave the query out of the journal record (for APIs that put secrets in queries).
    pub fn redact_query(mut self) -> Request {
        self.record_query = false;
        self
    }

    /// This POST may be sent again after it may have reached the server: it only reads, or
    /// sets a value (an RPC-style API that reads through POST, such as Exchange's
    /// `InvokeCommand`). It is then retried on 500, 502, 504 and broken connections as a GET is.
    pub fn resend_safe(mut self) -> Request {
        self.resend_safe = true;
        self
    }

    /// This request adds something each time it is sent, whatever its method (Freshservice
    /// appends the attachments of a `PUT`): like a POST, it is not sent again once it may have
    /// reached the server.
    pub fn adds(mut self) -> Request {
        self.adds = true;
        self
    }

    /// Safe to resend after it may have reached the server (timeouts, resets mid-response).
    fn idempotent(&self) -> bool {
        !self.adds && (self.resend_safe || self.method != Method::POST)
    }

    fn record_url(&self) -> String {
        let mut u = self.url.clone();
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.set_fragment(None);
        if !self.record_query {
            u.set_query(None);
        }
        u.to_string()
    }
}

/// A response: status, headers, body, and the record of the request for the journal.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub record: RequestRecord,
    what: String,
}

impl HttpResponse {
    /// Parse the body as JSON. An empty body or bad JSON is a permanent error.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ProviderError::Permanent(format!(
                "{}: {} answered a body that is not the expected JSON: {e}",
                self.what, self.status
            ))
        })
    }
}

/// The shared client. One per configured system.
pub struct HttpClient {
    client: reqwest::Client,
    /// A CA file to trust, read when the first request is made (planning never reads it).
    ca_file: Option<std::path::PathBuf>,
    ca_client: std::sync::OnceLock<Result<reqwest::Client, String>>,
    system: String,
    base_url: Url,
    /// `allow_plain = true`: the token may go over `http://` to another machine.
    allow_plain: bool,
    /// The configured token, kept only to cut it out of anything a server echoes back.
    token: Option<SecretString>,
    /// The `auth` table's secrets a server could echo back (a header token, a password, a
    /// client secret), cut out likewise.
    echoable: Vec<SecretString>,
    /// What authorises each request (the kit's [`Auth`]): by default the token as
    /// `Authorization: Bearer …`; `with_auth_scheme`, `with_token_header` and `with_auth`
    /// choose otherwise.
    auth: Option<Arc<dyn Auth>>,
    /// Set when `auth` could not be built from the token (a character no header may carry):
    /// reported by the first request, never at planning.
    auth_error: Option<String>,
    extra_headers: HeaderMap,
    forbidden_hint: &'static str,
    accept: HeaderValue,
    retry: RetryPolicy,
    timeout: Duration,
    error_parser: ErrorParser,
    /// Tells a definite refusal among retryable statuses (Autotask answers a request it
    /// refuses with 500 and its reasons): such an answer fails at once, as a 400 would.
    refusal: Option<Refusal>,
    /// Tells a throttle among statuses not normally retried (GitHub's rate limits come as
    /// 403): such an answer is waited out and retried as a 429 would be.
    throttle: Option<Throttle>,
    /// The system's process-wide limits: each request waits for its turn under `rate_limit`.
    limits: std::sync::Arc<crate::limits::SystemLimits>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("system", &self.system)
            .field("base_url", &self.base_url.as_str())
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Build from a system's configuration. No I/O. `base_url` must be set and be http(s); the
    /// token may be absent (planning), in which case [`send`](Self::send) fails as permanent.
    pub fn new(cfg: &SystemConfig) -> anyhow::Result<HttpClient> {
        let raw = cfg
            .base_url
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("system `{}`: base_url is required", cfg.name))?;
        let base_url = Url::parse(raw).map_err(|e| {
            anyhow::anyhow!("system `{}`: base_url `{raw}` is not a URL: {e}", cfg.name)
        })?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            anyhow::bail!(
                "system `{}`: base_url `{raw}` must be an http:// or https:// URL",
                cfg.name
            );
        }
        if !base_url.username().is_empty() || base_url.password().is_some() {
            anyhow::bail!(
                "system `{}`: base_url must not carry credentials; use `token`",
                cfg.name
            );
        }
        let allow_plain = allow_plain(cfg)?;
        if base_url.scheme() != "https" && !allow_plain && !is_loopback(&base_url) {
            anyhow::bail!(
                "system `{}`: base_url `{raw}` is plain HTTP to a host other than this machine: \
                 the token would cross the network in clear. Use https://, or (only on a \
                 trusted network) allow_plain = true",
                cfg.name
            );
        }
        let client = if SHARE_CLIENTS.load(std::sync::atomic::Ordering::Relaxed) {
            shared_client(&cfg.name, cfg.timeout)?
        } else {
            build_client(&cfg.name, cfg.timeout, Vec::new())?
        };
        let limits = crate::limits::for_system(&cfg.name, cfg.max_concurrency, cfg.rate_limit);
        let mut http = HttpClient {
            limits,
            client,
            ca_file: None,
            ca_client: std::sync::OnceLock::new(),
            system: cfg.name.clone(),
            base_url,
            allow_plain,
            token: cfg.token.clone(),
            echoable: cfg
                .auth
                .as_ref()
                .map(|a| a.echoable_secrets().into_iter().cloned().collect())
                .unwrap_or_default(),
            auth: None,
            auth_error: None,
            extra_headers: HeaderMap::new(),
            forbidden_hint: "the token lacks permission for this call; grant the API client the \
                             needed scope or role",
            accept: HeaderValue::from_static("application/scim+json, application/json"),
            retry: RetryPolicy::default(),
            timeout: cfg.timeout,
            error_parser: Arc::new(|_| None),
            refusal: None,
            throttle: None,
        };
        http.set_token_auth(StaticToken::bearer);
        Ok(http)
    }

    /// The `Accept` header (default `application/scim+json, application/json`).
    pub fn with_accept(mut self, accept: &'static str) -> HttpClient {
        self.accept = HeaderValue::from_static(accept);
        self
    }

    /// The `Authorization` scheme put before the token (default `Bearer`; Okta uses `SSWS`).
    pub fn with_auth_scheme(mut self, scheme: &'static str) -> HttpClient {
        self.set_token_auth(|t| StaticToken::scheme(scheme, t));
        self
    }

    /// Send the bare token in this header instead of `Authorization: <scheme> <token>` (Vault:
    /// `X-Vault-Token`).
    pub fn with_token_header(mut self, name: &'static str) -> HttpClient {
        self.set_token_auth(|t| StaticToken::header(name, t));
        self
    }

    /// Send this header with every request (e.g. Vault's `X-Vault-Namespace`). Not for secrets.
    pub fn with_header(mut self, name: &'static str, value: &str) -> anyhow::Result<HttpClient> {
        let v = HeaderValue::from_str(value).map_err(|_| {
            anyhow::anyhow!(
                "system `{}`: {value:?} is not a valid value for the {name} header",
                self.system
            )
        })?;
        self.extra_headers
            .insert(header::HeaderName::from_static(name), v);
        Ok(self)
    }

    /// Trust the CA certificates of this PEM file (besides the system's roots): for servers
    /// with a private CA. Reads the file now.
    pub fn with_ca_file(mut self, path: &std::path::Path) -> anyhow::Result<HttpClient> {
        self.ca_file = Some(path.to_path_buf());
        Ok(self)
    }

    /// The client to send with: the one trusting `ca_file` once it has been read.
    fn client(&self) -> Result<&reqwest::Client, ProviderError> {
        let Some(path) = &self.ca_file else {
            return Ok(&self.client);
        };
        self.ca_client
            .get_or_init(|| {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("reading ca_file {}: {e}", path.display()))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    format!(
                        "ca_file {} holds no usable PEM certificate: {e}",
                        path.display()
                    )
                })?;
                if certs.is_empty() {
                    return Err(format!(
                        "ca_file {} holds no PEM certificate",
                        path.display()
                    ));
                }
                build_client(&self.system, self.timeout, certs).map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(|e| ProviderError::Permanent(format!("system `{}`: {e}", self.system)))
    }

    /// What a 403 means for this API, said before the server's own message.
    pub fn with_forbidden_hint(mut self, hint: &'static str) -> HttpClient {
        self.forbidden_hint = hint;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> HttpClient {
        self.retry = retry;
        self
    }

    pub fn with_error_parser(
        mut self,
        parser: impl Fn(&[u8]) -> Option<String> + Send + Sync + 'static,
    ) -> HttpClient {
        self.error_parser = Arc::new(parser);
        self
    }

    /// Fail at once, without retrying, on an answer `refused` says is a refusal although its
    /// status is one that is normally retried (Autotask's validation errors come as 500).
    pub fn with_refusal(
        mut self,
        refused: impl Fn(StatusCode, &[u8]) -> bool + Send + Sync + 'static,
    ) -> HttpClient {
        self.refusal = Some(Arc::new(refused));
        self
    }

    /// Retry, as a 429, an answer `throttled` says is a rate limit although its status is not
    /// normally retried (GitHub's primary and secondary limits answer 403): `Retry-After` and
    /// the rate-limit reset header say how long to wait.
    pub fn with_throttle(
        mut self,
        throttled: impl Fn(StatusCode, &HeaderMap, &[u8]) -> bool + Send + Sync + 'static,
    ) -> HttpClient {
        self.throttle = Some(Arc::new(throttled));
        self
    }

    /// Send this secret header with every request (e.g. Autotask's `ApiIntegrationCode`,
    /// beside the credential the [`Auth`] sends): marked sensitive, and cut out of anything a
    /// server echoes back, as the token is.
    pub fn with_secret_header(
        mut self,
        name: &'static str,
        value: &SecretString,
    ) -> anyhow::Result<HttpClient> {
        let mut v = HeaderValue::from_str(value.expose_secret()).map_err(|_| {
            anyhow::anyhow!(
                "system `{}`: the {name} secret contains characters not allowed in an HTTP \
                 header (a stray newline?)",
                self.system
            )
        })?;
        v.set_sensitive(true);
        self.extra_headers
            .insert(header::HeaderName::from_static(name), v);
        self.echoable.push(value.clone());
        Ok(self)
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some() || self.auth.is_some()
    }

    /// Authorise requests with `auth` (OAuth client credentials, a service account…) instead
    /// of the configured token.
    pub fn with_auth(mut self, auth: Arc<dyn Auth>) -> HttpClient {
        self.auth = Some(auth);
        self.auth_error = None;
        self
    }

    /// Build the token's [`Auth`] with `make` (no I/O; a bad token is reported when used).
    fn set_token_auth(
        &mut self,
        make: impl FnOnce(&SecretString) -> Result<StaticToken, crate::providers::kit::AuthError>,
    ) {
        if let Some(t) = &self.token {
            match make(t) {
                Ok(a) => {
                    self.auth = Some(Arc::new(a));
                    self.auth_error = None;
                }
                Err(_) => {
                    self.auth = None;
                    self.auth_error =
                        Some("the token contains characters not allowed in an HTTP header".into());
                }
            }
        }
    }

    /// The header for the next attempt, from the kit's [`Auth`].
    async fn credentials(&self, what: &str) -> Result<(HeaderName, HeaderValue), ProviderError> {
        if let Some(e) = &self.auth_error {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: {e}",
                self.system
            )));
        }
        let Some(auth) = &self.auth else {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: no token configured, cannot call {what}",
                self.system
            )));
        };
        auth.header().await.map_err(|e| {
            // The endpoint's words first: a preflight line shows 200 characters.
            let msg = self.redact(&format!(
                "system `{}`: no credentials for {what}: {e} (using {})",
                self.system,
                auth.describe()
            ));
            if e.is_transient() {
                ProviderError::Transient(msg)
            } else {
                ProviderError::Permanent(msg)
            }
        })
    }

    /// `base_url` followed by `segments`, each percent-encoded as one path segment (a `/` in a
    /// segment becomes `%2F`). Empty, `.` and `..` segments are refused: no URL can carry them.
    pub fn endpoint(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut path = self.base_url.path().trim_end_matches('/').to_string();
        for seg in segments {
            if seg.is_empty() || *seg == "." || *seg == ".." {
                return Err(ProviderError::Permanent(format!(
                    "system `{}`: refusing to put {seg:?} in a URL path",
                    self.system
                )));
            }
            path.push('/');
            path.push_str(&encode_component(seg));
        }
        let mut url = self.base_url.clone();
        url.set_path(&path);
        url.set_query(None);
        url.set_fragment(None);
        Ok(url)
    }

    /// Send `req`, retrying transient failures; see the module docs for what comes back.
    pub async fn send(&self, req: Request, ctx: &CallCtx) -> Result<HttpResponse, ProviderError> {
        let mut sent = None;
        self.send_as(req, ctx, &mut sent)
            .await
            .map_err(|e| self.scrub(e, sent.as_ref()))
    }

    /// [`send`](Self::send), keeping in `sent` the credential the last attempt carried (an
    /// access token, Basic's encoded pair), which the error text must not hold either.
    async fn send_as(
        &self,
        req: Request,
        ctx: &CallCtx,
        sent: &mut Option<HeaderValue>,
    ) -> Result<HttpResponse, ProviderError> {
        let what = format!("{} {}", req.method, req.url.path());
        // Checked again for every request, whatever URL a provider built: the token never goes
        // over plain HTTP to another machine unless the runbook says so.
        if req.url.scheme() != "https" && !self.allow_plain && !is_loopback(&req.url) {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: refusing to send the token over plain HTTP to {} ({what}); use \
                 https://, or (only on a trusted network) allow_plain = true",
                self.system,
                req.url.host_str().unwrap_or("?")
            )));
        }
        let mut auth = self.credentials(&what).await?;
        *sent = Some(auth.1.clone());
        let client = self.client()?;
        // One fresh credential after a 401, outside the retry budget, when the source can
        // fetch one (a token that expired early or was revoked).
        let mut renewed = false;

        let mut attempt: u32 = 0;
        let mut waited = Duration::ZERO;
        loop {
            attempt += 1;
            // Retries count against the rate limit too: each is a request the system sees.
            self.limits.pace().await;
            let failure = match self.attempt(client, &req, &auth).await {
                Ok((status, _, _))
                    if status == StatusCode::UNAUTHORIZED
                        && !renewed
                        && self.auth.as_ref().is_some_and(|a| a.refreshable()) =>
                {
                    renewed = true;
                    attempt -= 1;
                    if let Some(a) = &self.auth {
                        a.invalidate(&auth.1);
                    }
                    auth = self.credentials(&what).await?;
                    *sent = Some(auth.1.clone());
                    continue;
                }
                Ok((status, headers, body)) => {
                    if status != StatusCode::TOO_MANY_REQUESTS {
                        self.limits.answered(budget(&headers));
                    }
                    if status.is_success() || req.allowed.contains(&status) {
                        return Ok(HttpResponse {
                            status,
                            headers,
                            body,
                            record: RequestRecord {
                                method: req.method.to_string(),
                                url: req.record_url(),
                                status: status.as_u16(),
                            },
                            what,
                        });
                    }
                    let throttled = !status.is_success()
                        && self
                            .throttle
                            .as_ref()
                            .is_some_and(|t| t(status, &headers, &body));
                    if !throttled
                        && (!is_retryable_status(status, req.idempotent())
                            || self.refusal.as_ref().is_some_and(|r| r(status, &body)))
                    {
                        return Err(self.fail(&what, status, &body));
                    }
                    let hint = server_wait(status, &headers, throttled);
                    if throttled || status == StatusCode::TOO_MANY_REQUESTS {
                        // Everyone on this system waits, not only this request.
                        self.limits.throttled(hint);
                    }
                    let reason = match hint {
                        Some(w) => format!(
                            "{} (server asks to wait {} s)",
                            status_text(status),
                            secs(w)
                        ),
                        None => status_text(status),
                    };
                    Failure {
                        reason,
                        hint,
                        final_detail: self.provider_message(&body),
                    }
                }
                Err(e) => {
                    let (reason, retry) = describe_transport_error(&e, self.timeout);
                    if !retry || (!req.idempotent() && !e.is_connect()) {
                        return Err(self.transient(&what, &reason));
                    }
                    Failure {
                        reason,
                        hint: None,
                        final_detail: None,
                    }
                }
            };

            let give_up = |why: String| {
                let mut msg = format!("{why}; last error: {}", failure.reason);
                if let Some(d) = &failure.final_detail {
                    msg.push_str(": ");
                    msg.push_str(d);
                }
                Err(self.transient(&what, &msg))
            };
            if attempt >= self.retry.max_attempts {
                return give_up(format!("gave up after {attempt} attempts"));
            }
            let wait = match failure.hint {
                Some(w) if w > self.retry.max_wait => {
                    return give_up(format!(
                        "the server asks to wait {} s, longer than the {} s limit",
                        secs(w),
                        secs(self.retry.max_wait)
                    ));
                }
                Some(w) => w,
                None => jitter(self.retry.ceiling(attempt)),
            };
            if waited + wait > self.retry.max_total {
                return give_up(format!(
                    "retry budget of {} s used up after {attempt} attempts",
                    secs(self.retry.max_total)
                ));
            }
            ctx.retrying(RetryNote {
                attempt,
                reason: self.redact(&failure.reason),
                wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            });
            tracing::debug!(system = %self.system, %what, attempt, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
            waited += wait;
        }
    }

    async fn attempt(
        &self,
        client: &reqwest::Client,
        req: &Request,
        auth: &(HeaderName, HeaderValue),
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), reqwest::Error> {
        let mut b = client
            .request(req.method.clone(), req.url.clone())
            .timeout(self.timeout)
            .headers(self.extra_headers.clone())
            .header(auth.0.clone(), auth.1.clone())
            .header(
                header::ACCEPT,
                req.accept.clone().unwrap_or_else(|| self.accept.clone()),
            );
        if let Some((ct, bytes)) = &req.body {
            b = b
                .header(header::CONTENT_TYPE, ct.clone())
                .body(bytes.clone());
        }
        let resp = b.send().await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?.to_vec();
        Ok((status, headers, body))
    }

    fn fail(&self, what: &str, status: StatusCode, body: &[u8]) -> ProviderError {
        let detail = self.provider_message(body);
        let with_detail = |s: String| match &detail {
            Some(d) => format!("{s} (server said: {d})"),
            None => s,
        };
        let head = format!("system `{}`: {what} → {}", self.system, status_text(status));
        let msg = match status {
            StatusCode::UNAUTHORIZED => with_detail(format!(
                "{head}: the token was rejected; check the token reference for system `{}` \
                 (expired, revoked, or for another tenant?)",
                self.system
            )),
            StatusCode::FORBIDDEN => with_detail(format!("{head}: {}", self.forbidden_hint)),
            _ => match &detail {
                Some(d) => format!("{head}: {d}"),
                None => head,
            },
        };
        let msg = self.redact(&msg);
        if status == StatusCode::NOT_FOUND {
            ProviderError::NotFound(msg)
        } else {
            ProviderError::Permanent(msg)
        }
    }

    fn transient(&self, what: &str, reason: &str) -> ProviderError {
        ProviderError::Transient(
            self.redact(&format!("system `{}`: {what}: {reason}", self.system)),
        )
    }

    /// The provider's message from an error body, or a short excerpt of a text body.
    fn provider_message(&self, body: &[u8]) -> Option<String> {
        let msg = (self.error_parser)(body).or_else(|| generic_message(body))?;
        Some(self.redact(&one_line(&msg, 300)))
    }

    /// Never let the token through, whatever a server echoes back.
    fn redact(&self, s: &str) -> String {
        let mut out = s.to_string();
        for t in self.token.iter().chain(&self.echoable) {
            let t = t.expose_secret();
            if t.len() >= 4 && out.contains(t) {
                out = out.replace(t, "[redacted]");
            }
        }
        out
    }

    /// `e` without the credential a request carried: the whole header value and the part
    /// after its scheme (an access token, Basic's encoded pair), whatever a server echoed.
    fn scrub(&self, e: ProviderError, sent: Option<&HeaderValue>) -> ProviderError {
        let Some(value) = sent.and_then(|v| v.to_str().ok()) else {
            return e;
        };
        let credential = value.split_once(' ').map_or(value, |(_, c)| c.trim());
        let cut = |m: String| {
            let mut m = m;
            for s in [value, credential] {
                if s.len() >= 8 && m.contains(s) {
                    m = m.replace(s, "[redacted]");
                }
            }
            m
        };
        match e {
            ProviderError::Transient(m) => ProviderError::Transient(cut(m)),
            ProviderError::Permanent(m) => ProviderError::Permanent(cut(m)),
            ProviderError::NotFound(m) => ProviderError::NotFound(cut(m)),
        }
    }
}

/// Whether [`HttpClient::new`] shares one client (so one connection pool) per system and
/// server for the whole process: see [`share_clients`].
static SHARE_CLIENTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, every [`HttpClient`] with the same timeout in this process sends through one
/// client, built once (TLS set-up included) instead of once per system for the preflight and
/// again for the run; its pool keeps connections per server. The CLI turns it on; tests that
/// build many clients against short-lived fake servers leave it off. (Pooled connections live
/// on the runtime that opened them: the preflight's, on a runtime of its own, are not reused
/// by the run.)
pub fn share_clients() {
    SHARE_CLIENTS.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn shared_client(system: &str, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    // One client per timeout: its pool keeps connections per server, so systems on different
    // servers do not share them, and TLS is set up once, not once per system.
    type Key = Duration;
    static CLIENTS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<Key, reqwest::Client>>,
    > = std::sync::OnceLock::new();
    let key = timeout;
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(c) = clients.get(&key) {
        return Ok(c.clone());
    }
    let client = build_client(system, timeout, Vec::new())?;
    clients.insert(key, client.clone());
    Ok(client)
}

fn build_client(
    system: &str,
    timeout: Duration,
    extra_roots: Vec<reqwest::Certificate>,
) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .user_agent(concat!("offboard/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout);
    if !extra_roots.is_empty() {
        b = b.tls_certs_merge(extra_roots);
    }
    b.build()
        .map_err(|e| anyhow::anyhow!("system `{system}`: building the HTTP client: {e}"))
}

struct Failure {
    reason: String,
    hint: Option<Duration>,
    final_detail: Option<String>,
}

fn is_retryable_status(status: StatusCode, idempotent: bool) -> bool {
    match status.as_u16() {
        429 | 503 => true,
        500 | 502 | 504 => idempotent,
        _ => false,
    }
}

/// The wait a server asks for: `Retry-After` (seconds or HTTP-date) on any retryable status;
/// on 429 also a rate-limit reset header, in epoch seconds (Okta, GitHub) or as an ISO-8601
/// time (Jira). On a [throttle](HttpClient::with_throttle) the reset header counts only when no
/// requests remain (`x-ratelimit-remaining: 0`): GitHub sends it on every answer, and its
/// secondary limit without `Retry-After` is waited out by backoff, not until the hour's reset.
fn server_wait(status: StatusCode, headers: &HeaderMap, throttled: bool) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(v) = text("retry-after") {
        if let Ok(n) = v.parse::<u64>() {
            return Some(Duration::from_secs(n));
        }
        if let Ok(when) = httpdate::parse_http_date(v) {
            return Some(
                when.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
            );
        }
    }
    let exhausted = ["x-ratelimit-remaining", "x-rate-limit-remaining"]
        .iter()
        .any(|h| text(h) == Some("0"));
    if status == StatusCode::TOO_MANY_REQUESTS || (throttled && exhausted) {
        for name in ["x-rate-limit-reset", "x-ratelimit-reset"] {
            let Some(v) = text(name) else { continue };
            if let Ok(epoch) = v.parse::<u64>() {
                let when = SystemTime::UNIX_EPOCH + Duration::from_secs(epoch);
                // A reset second has passed once the clock reaches the next one.
                return Some(
                    when.duration_since(SystemTime::now())
                        .map(|d| d + Duration::from_secs(1))
                        .unwrap_or(Duration::ZERO),
                );
            }
            if let Ok(when) = chrono::DateTime::parse_from_rfc3339(v) {
                let when = SystemTime::from(when.with_timezone(&chrono::Utc));
                return Some(
                    when.duration_since(SystemTime::now())
                        .unwrap_or(Duration::ZERO),
                );
            }
        }
    }
    None
}

/// What an answer's headers say is left of the system's request budget: the requests remaining
/// and the time until the budget resets (`X-Rate-Limit-Remaining`/`-Reset` as Okta sends them,
/// `x-ratelimit-remaining`/`-reset` as GitHub and others do; a reset is epoch seconds, or
/// seconds from now when it is small).
fn budget(headers: &HeaderMap) -> Option<(u64, Duration)> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let (remaining, reset) = [
        ("x-rate-limit-remaining", "x-rate-limit-reset"),
        ("x-ratelimit-remaining", "x-ratelimit-reset"),
    ]
    .iter()
    .find_map(|(r, t)| Some((text(r)?.parse::<u64>().ok()?, text(t)?.parse::<u64>().ok()?)))?;
    let reset = if reset > 1_000_000_000 {
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(reset);
        // A reset second has passed once the clock reaches the next one.
        when.duration_since(SystemTime::now())
            .map(|d| d + Duration::from_secs(1))
            .unwrap_or(Duration::ZERO)
    } else {
        Duration::from_secs(reset)
    };
    Some((remaining, reset))
}

fn describe_transport_error(e: &reqwest::Error, timeout: Duration) -> (String, bool) {
    if e.is_builder() {
        return ("could not build the request".to_string(), false);
    }
    if e.is_timeout() {
        return (
            format!("no answer within {} s (timed out)", secs(timeout)),
            true,
        );
    }
    let kind = if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the connection broke while reading the answer"
    } else {
        "the connection failed"
    };
    // The innermost cause says what happened (refused, reset, DNS…); none of them hold a URL,
    // and the URL of reqwest's own error is dropped.
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let root = cause.to_string();
    let shown = e.to_string();
    let detail = if std::ptr::addr_eq(cause, e as &dyn std::error::Error) || root == shown {
        String::new()
    } else {
        format!(": {root}")
    };
    (format!("{kind}{detail}"), true)
}

fn generic_message(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in [
            "detail",
            "message",
            "error_description",
            "errorSummary",
            "error",
        ] {
            match v.get(key) {
                Some(serde_json::Value::String(s)) if !s.is_empty() => return Some(s.clone()),
                Some(serde_json::Value::Object(o)) => {
                    if let Some(serde_json::Value::String(s)) = o.get("message") {
                        return Some(s.clone());
                    }
                }
                _ => {}
            }
        }
        return None;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() || text.starts_with('<') {
        None
    } else {
        Some(text.to_string())
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}…")
    } else {
        flat.to_string()
    }
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(r) => format!("{} {r}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_encoded_per_rfc3986() {
        assert_eq!(
            encode_component(r#"userName eq "a\"b""#),
            "userName%20eq%20%22a%5C%22b%22"
        );
        assert_eq!(
            encode_component("../x%2F/é+&="),
            "..%2Fx%252F%2F%C3%A9%2B%26%3D"
        );
    }

    #[test]
    fn backoff_ceiling_doubles_and_caps() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            max_wait: Duration::from_millis(500),
            max_total: Duration::from_secs(10),
        };
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(3), Duration::from_millis(400));
        assert_eq!(p.ceiling(4), Duration::from_millis(500));
        assert_eq!(p.ceiling(40), Duration::from_millis(500));
    }

    #[test]
    fn the_budget_left_is_read_from_either_family_of_headers() {
        let h = |pairs: &[(&'static str, String)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        let soon = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 10;
        let (left, reset) = budget(&h(&[
            ("x-rate-limit-remaining", "0".into()),
            ("x-rate-limit-reset", soon.to_string()),
        ]))
        .unwrap();
        assert_eq!(left, 0);
        assert!(reset > Duration::from_secs(8) && reset <= Duration::from_secs(11));
        assert_eq!(
            budget(&h(&[
                ("x-ratelimit-remaining", "7".into()),
                ("x-ratelimit-reset", "30".into()),
            ])),
            Some((7, Duration::from_secs(30)))
        );
        assert_eq!(budget(&h(&[("x-ratelimit-remaining", "7".into())])), None);
    }

    #[test]
    fn retry_after_and_reset_headers() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(
            server_wait(StatusCode::SERVICE_UNAVAILABLE, &h, false),
            Some(Duration::from_secs(7))
        );

        let later = SystemTime::now() + Duration::from_secs(30);
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let w = server_wait(StatusCode::TOO_MANY_REQUESTS, &h, false).unwrap();
        assert!(
            w > Duration::from_secs(27) && w <= Duration::from_secs(30),
            "{w:?}"
        );

        let past = SystemTime::now() - Duration::from_secs(30);
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_str(&httpdate::fmt_http_date(past)).unwrap(),
        );
        assert_eq!(
            server_wait(StatusCode::TOO_MANY_REQUESTS, &h, false),
            Some(Duration::ZERO)
        );

        let reset = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 10;
        let mut h = HeaderMap::new();
        h.insert(
            "x-rate-limit-reset",
            HeaderValue::from_str(&reset.to_string()).unwrap(),
        );
        let w = server_wait(StatusCode::TOO_MANY_REQUESTS, &h, false).unwrap();
        assert!(
            w > Duration::from_secs(9) && w <= Duration::from_secs(11),
            "{w:?}"
        );
        // A reset header on something other than 429 is not a wait instruction.
        assert_eq!(
            server_wait(StatusCode::SERVICE_UNAVAILABLE, &h, false),
            None
        );

        // Jira: the reset as an ISO-8601 time.
        let at = chrono::Utc::now() + chrono::Duration::seconds(20);
        let mut h = HeaderMap::new();
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap(),
        );
        let w = server_wait(StatusCode::TOO_MANY_REQUESTS, &h, false).unwrap();
        assert!(
            w > Duration::from_secs(18) && w <= Duration::from_secs(20),
            "{w:?}"
        );
    }

    #[test]
    fn a_throttle_waits_for_the_reset_only_when_nothing_remains() {
        let reset = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 10;
        let mut h = HeaderMap::new();
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_str(&reset.to_string()).unwrap(),
        );
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("4990"));
        // GitHub's secondary limit without Retry-After: backoff, not the hour's reset.
        assert_eq!(server_wait(StatusCode::FORBIDDEN, &h, true), None);
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        let w = server_wait(StatusCode::FORBIDDEN, &h, true).unwrap();
        assert!(
            w > Duration::from_secs(9) && w <= Duration::from_secs(11),
            "{w:?}"
        );
        // Not a throttle: no wait read from the headers.
        assert_eq!(server_wait(StatusCode::FORBIDDEN, &h, false), None);
    }

    #[test]
    fn retryable_statuses() {
        for s in [429, 500, 502, 503, 504] {
            assert!(
                is_retryable_status(StatusCode::from_u16(s).unwrap(), true),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 409, 412, 501] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(s).unwrap(), true),
                "{s}"
            );
        }
        assert!(!is_retryable_status(
            StatusCode::INTERNAL_SERVER_ERROR,
            false
        ));
        assert!(is_retryable_status(StatusCode::TOO_MANY_REQUESTS, false));
    }

    fn plain(url: &str, allow: Option<bool>) -> anyhow::Result<HttpClient> {
        let mut cfg = SystemConfig::new("app", "scim", Some(url)).with_token("T0KEN-in-clear");
        if let Some(b) = allow {
            cfg.settings
                .insert("allow_plain".into(), toml::Value::Boolean(b));
        }
        HttpClient::new(&cfg)
    }

    #[test]
    fn plain_http_to_another_machine_is_refused_unless_allowed() {
        for url in [
            "http://scim.corp.example/scim/v2",
            "http://10.0.0.5:8080",
            "http://[2001:db8::1]/v1",
            "http://localhost.corp.example",
            "http://128.0.0.1",
        ] {
            for allow in [None, Some(false)] {
                let err = format!("{:#}", plain(url, allow).unwrap_err());
                assert!(
                    err.starts_with("system `app`: base_url")
                        && err.contains("plain HTTP")
                        && err.contains("allow_plain = true"),
                    "{url}: {err}"
                );
                assert!(!err.contains("T0KEN"), "{err}");
            }
            assert!(plain(url, Some(true)).is_ok(), "{url}");
        }
        for url in [
            "http://127.0.0.1:9/scim/v2",
            "http://127.1.2.3",
            "http://[::1]:8200",
            "http://[::ffff:127.0.0.1]",
            "http://localhost:8080",
            "http://LOCALHOST./x",
            "https://scim.corp.example/scim/v2",
        ] {
            assert!(plain(url, None).is_ok(), "{url}");
        }
        let err = format!(
            "{:#}",
            HttpClient::new(&{
                let mut c = SystemConfig::new("app", "scim", Some("http://10.0.0.5"));
                c.settings
                    .insert("allow_plain".into(), toml::Value::String("yes".into()));
                c
            })
            .unwrap_err()
        );
        assert!(err.contains("allow_plain must be true or false"), "{err}");
    }

    /// A URL a provider builds for another host (say, from a paging link) is checked as well:
    /// refused before any connection is tried.
    #[tokio::test]
    async fn a_request_to_another_machine_over_plain_http_is_refused() {
        let client = plain("http://127.0.0.1:9", None).unwrap();
        let url = Url::parse("http://192.0.2.1:9/Users?page=2").unwrap();
        let err = client
            .send(Request::get(url), &CallCtx::silent())
            .await
            .unwrap_err();
        match err {
            ProviderError::Permanent(m) => {
                assert!(m.contains("plain HTTP to 192.0.2.1"), "{m}");
                assert!(!m.contains("T0KEN"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_kind_that_speaks_http_documents_allow_plain() {
        for kind in crate::providers::KINDS {
            // The sandbox accepts a decorative base_url but never sends anything.
            if kind.needs_base_url && kind.url_schemes.contains(&"http") {
                assert!(
                    kind.settings.iter().any(|s| s.name == "allow_plain"),
                    "kind `{}` accepts http:// but has no allow_plain setting",
                    kind.name
                );
            }
        }
    }

    #[test]
    fn messages_are_one_short_line() {
        assert_eq!(one_line("a\nb\tc", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(
            generic_message(br#"{"message":"nope"}"#).as_deref(),
            Some("nope")
        );
        assert_eq!(generic_message(b"<html>oops</html>"), None);
    }
}

/// The shared request path with a refreshable credential from the kit.
#[cfg(test)]
mod auth_tests {
    use super::*;
    use crate::providers::kit::fake_token::{Client, FakeToken};
    use crate::providers::kit::{ClientAuth, ClientCredentials};

    const SECRET: &str = "cs-7b1e-very-secret";

    async fn oauth_client(fake: &FakeToken) -> HttpClient {
        let cfg = SystemConfig::new("oauth-app", "scim", Some(&fake.api_url));
        let creds = ClientCredentials::new(
            reqwest::Client::new(),
            &fake.url,
            "offboard-app",
            ClientAuth::SecretPost(SecretString::from(SECRET)),
        )
        .unwrap();
        HttpClient::new(&cfg)
            .unwrap()
            .with_auth(Arc::new(creds))
            .with_retry(RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            })
    }

    fn secret_client() -> Client {
        Client::Secret {
            client_id: "offboard-app".into(),
            secret: SECRET.into(),
            basic: false,
        }
    }

    #[tokio::test]
    async fn a_401_fetches_one_new_token_and_the_request_goes_through() {
        let fake = FakeToken::start(secret_client()).await;
        let http = oauth_client(&fake).await;
        let url = Url::parse(&fake.api_url).unwrap();
        let ok = http
            .send(Request::get(url.clone()), &CallCtx::silent())
            .await;
        assert_eq!(ok.unwrap().status, StatusCode::OK);
        assert_eq!(fake.token_requests(), 1);
        // The token stops working (revoked, or expired early): one refresh, then success, even
        // with a retry budget of a single attempt.
        fake.revoke_all();
        let ok = http
            .send(Request::get(url.clone()), &CallCtx::silent())
            .await;
        assert_eq!(ok.unwrap().status, StatusCode::OK);
        assert_eq!(fake.token_requests(), 2);
        assert_eq!(fake.api_requests(), 3);
        // A credential the endpoint refuses is a permanent failure that names the endpoint's
        // words and never the secret.
        fake.revoke_all();
        fake.fail_next(
            401,
            serde_json::json!({"error": "invalid_client", "error_description": "client disabled"}),
        );
        let err = http
            .send(Request::get(url), &CallCtx::silent())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
        assert!(text.contains("client disabled"), "{text}");
        assert!(!text.contains(SECRET), "{text}");
    }

    /// The `auth` table's secrets are cut out of what a server says, as the token is, even
    /// in a form other than the header that carried them (Basic's pair decoded).
    #[test]
    fn the_auth_tables_secrets_are_redacted() {
        use crate::providers::kit::auth::{AuthSpec, BasicAuth};
        let cfg = SystemConfig {
            auth: Some(AuthSpec::Basic(BasicAuth {
                username: "svc".into(),
                password: SecretString::from("pw-very-secret-19"),
            })),
            ..SystemConfig::new("basic", "scim", Some("https://api.example"))
        };
        let http = HttpClient::new(&cfg).unwrap();
        assert_eq!(
            http.redact("no such user svc:pw-very-secret-19"),
            "no such user svc:[redacted]"
        );
    }

    /// A secret sent in a header of its own (Autotask's integration code) is cut out of what a
    /// server says, as the token is; a plain extra header is not a secret.
    #[test]
    fn a_secret_headers_value_is_redacted() {
        let cfg = SystemConfig::new("desk", "autotask", Some("https://api.example"))
            .with_token("the-secret-9911");
        let http = HttpClient::new(&cfg)
            .unwrap()
            .with_secret_header("apiintegrationcode", &SecretString::from("ITC-code-42"))
            .unwrap()
            .with_header("username", "svc@corp.example")
            .unwrap();
        assert_eq!(
            http.redact("code ITC-code-42 for svc@corp.example, secret the-secret-9911"),
            "code [redacted] for svc@corp.example, secret [redacted]"
        );
        assert!(
            http.extra_headers
                .get("apiintegrationcode")
                .unwrap()
                .is_sensitive()
        );
        let bad = HttpClient::new(&cfg)
            .unwrap()
            .with_secret_header("apiintegrationcode", &SecretString::from("a\nb"));
        let e = format!("{:#}", bad.unwrap_err());
        assert!(
            e.contains("not allowed in an HTTP header") && !e.contains("a\nb"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_fixed_token_is_not_retried_on_401() {
        let fake = FakeToken::start(secret_client()).await;
        let cfg = SystemConfig::new("fixed", "scim", Some(&fake.api_url)).with_token("not-issued");
        let http = HttpClient::new(&cfg).unwrap();
        let url = Url::parse(&fake.api_url).unwrap();
        let err = http
            .send(Request::get(url), &CallCtx::silent())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("401"), "{err}");
        assert_eq!(fake.api_requests(), 1, "no second try with the same token");
    }
}
