//! How a provider's requests are authorised: one [`Auth`] trait, four sources.
//!
//! - [`StaticToken`]: a token from the runbook's secret reference, as `Authorization: Bearer …`,
//!   another scheme (`SSWS …`), or bare in a header of its own (`X-Vault-Token`).
//! - [`Basic`]: HTTP Basic (RFC 7617).
//! - [`ClientCredentials`]: OAuth 2.0 client credentials (RFC 6749 §4.4), the client
//!   authenticated by its secret (`client_secret_post` or `client_secret_basic`) or by a JWT
//!   signed with its private key (`private_key_jwt`, RFC 7523 §2.2), as Microsoft Entra,
//!   Okta or Auth0 issue for service principals.
//! - [`GoogleServiceAccount`]: the JWT bearer grant (RFC 7523 §2.1) signed with a service
//!   account's key, impersonating a Workspace user when domain-wide delegation is set up.
//!
//! Tokens from a token endpoint are cached: reused while more than [`REFRESH_SKEW`] of their
//! life remains, fetched again after that, and fetched again on the next call after
//! [`Auth::invalidate`] (what the request path calls once when an API answers 401). Concurrent
//! calls wait for one refresh rather than each asking for a token.
//!
//! Secrets (client secrets, private keys, assertions, access tokens) stay in `secrecy` types or
//! in a [`HeaderValue`] marked sensitive, and never appear in an error, a `Debug` or
//! [`Auth::describe`]. What a token endpoint says back is passed on (it is what tells an admin
//! which setting is wrong), with any echo of the secret or the assertion cut out.
//!
//! No retries here: a transient failure is [`AuthError::Unavailable`] and the caller's retry
//! loop (the one that already retries the API call) decides when to try again.
//!
//! A runbook chooses a source with a system's `auth` table ([`AuthSpec`], in `config`);
//! [`for_system`] builds it.

use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use reqwest::header::{self, HeaderName, HeaderValue};
use reqwest::{RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

mod config;
mod github_app;
pub use config::{
    AuthConfig, AuthSpec, BasicAuth, GoogleAuth, HeaderAuth, OAuth2Auth, SETTING, SecretIn,
    SecretSlot, TOKEN_URL_PATTERN, for_system, token_client,
};
pub use github_app::GitHubApp;

/// A cached token is fetched again once less than this much of its life remains, so a token
/// never expires between being attached and being checked.
pub const REFRESH_SKEW: Duration = Duration::from_secs(60);

/// How long a token is taken to live when the endpoint does not say (`expires_in` is optional
/// in RFC 6749); a 401 before then invalidates it anyway.
pub const DEFAULT_TOKEN_LIFE: Duration = Duration::from_secs(300);

/// How long a client assertion (`private_key_jwt`) is valid: short, as RFC 7523 asks.
pub const CLIENT_ASSERTION_LIFE: u64 = 300;

/// How long a Google service-account assertion is valid: Google's maximum, one hour.
pub const GOOGLE_ASSERTION_LIFE: u64 = 3600;

/// Google's token endpoint, used when a key file names none.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
const GRANT_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Why a request could not be authorised. Callers branch on the variant: only
/// [`Unavailable`](AuthError::Unavailable) is worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token endpoint refused: wrong client id or secret, a key it does not know, a scope
    /// not granted, a subject not delegated. Permanent until the configuration changes.
    #[error("the token endpoint {endpoint} refused ({status}): {message}")]
    Rejected {
        /// The token endpoint, without query.
        endpoint: String,
        status: u16,
        /// The endpoint's own words (`error`: `error_description`), secrets cut out.
        message: String,
    },
    /// The token endpoint could not be reached or failed on its side (5xx, 429, timeout).
    #[error("{0}")]
    Unavailable(String),
    /// The local configuration is unusable: a key that does not parse, a service-account file
    /// that is not one, a token endpoint over plain HTTP, a token not allowed in a header.
    #[error("{0}")]
    BadConfig(String),
}

impl AuthError {
    /// Worth trying again later, unchanged.
    pub fn is_transient(&self) -> bool {
        matches!(self, AuthError::Unavailable(_))
    }
}

/// Attaches credentials to a request. Implementations are cheap to share (`Arc<dyn Auth>`)
/// and safe to call from many steps at once.
#[async_trait]
pub trait Auth: Send + Sync + fmt::Debug {
    /// The header to send, its value marked sensitive. May fetch a token.
    async fn header(&self) -> Result<(HeaderName, HeaderValue), AuthError>;

    /// `req` with the credentials attached.
    async fn authorize(&self, req: RequestBuilder) -> Result<RequestBuilder, AuthError> {
        let (name, value) = self.header().await?;
        Ok(req.header(name, value))
    }

    /// The API answered 401 to a request that carried `sent` (the value [`header`](Self::header)
    /// gave): if that is still the cached token, forget it so the next call fetches a new one.
    /// The request path calls this once, then retries once. A token refreshed meanwhile (by
    /// another request's 401) is kept, so concurrent 401s cause one refresh, not one each.
    fn invalidate(&self, sent: &HeaderValue) {
        let _ = sent;
    }

    /// What authorises requests, for messages and plans: never a secret.
    fn describe(&self) -> String;

    /// A 401 may be cured by fetching a new credential (a cached token that expired early or
    /// was revoked). False for fixed credentials: retrying those would only repeat the 401.
    fn refreshable(&self) -> bool {
        false
    }
}

fn sensitive(value: &str, what: &str) -> Result<HeaderValue, AuthError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        AuthError::BadConfig(format!(
            "{what} contains characters not allowed in an HTTP header (a stray newline?)"
        ))
    })?;
    v.set_sensitive(true);
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// Static token and Basic

/// A fixed token: `Authorization: <scheme> <token>` or the bare token in a header of its own.
pub struct StaticToken {
    name: HeaderName,
    value: HeaderValue,
    shape: String,
}

impl StaticToken {
    /// `Authorization: Bearer <token>`.
    pub fn bearer(token: &SecretString) -> Result<StaticToken, AuthError> {
        StaticToken::scheme("Bearer", token)
    }

    /// `Authorization: <scheme> <token>`, e.g. Okta's `SSWS`.
    pub fn scheme(scheme: &str, token: &SecretString) -> Result<StaticToken, AuthError> {
        let value = sensitive(&format!("{scheme} {}", token.expose_secret()), "the token")?;
        Ok(StaticToken {
            name: header::AUTHORIZATION,
            value,
            shape: format!("a static {scheme} token"),
        })
    }

    /// The bare token in header `name`, e.g. Vault's `X-Vault-Token`.
    pub fn header(name: &str, token: &SecretString) -> Result<StaticToken, AuthError> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| AuthError::BadConfig(format!("`{name}` is not an HTTP header name")))?;
        let value = sensitive(token.expose_secret(), "the token")?;
        Ok(StaticToken {
            shape: format!("a static token in {name}"),
            name,
            value,
        })
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StaticToken({})", self.shape)
    }
}

#[async_trait]
impl Auth for StaticToken {
    async fn header(&self) -> Result<(HeaderName, HeaderValue), AuthError> {
        Ok((self.name.clone(), self.value.clone()))
    }

    fn describe(&self) -> String {
        self.shape.clone()
    }
}

/// HTTP Basic: `Authorization: Basic base64(user:password)`.
pub struct Basic {
    user: String,
    value: HeaderValue,
}

impl Basic {
    pub fn new(user: &str, password: &SecretString) -> Result<Basic, AuthError> {
        if user.contains(':') {
            return Err(AuthError::BadConfig(format!(
                "the Basic user `{user}` contains `:`, which HTTP Basic cannot carry"
            )));
        }
        let encoded = STANDARD.encode(format!("{user}:{}", password.expose_secret()));
        Ok(Basic {
            user: user.to_string(),
            value: sensitive(&format!("Basic {encoded}"), "the Basic credentials")?,
        })
    }
}

impl fmt::Debug for Basic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Basic({})", self.user)
    }
}

#[async_trait]
impl Auth for Basic {
    async fn header(&self) -> Result<(HeaderName, HeaderValue), AuthError> {
        Ok((header::AUTHORIZATION, self.value.clone()))
    }

    fn describe(&self) -> String {
        format!("HTTP Basic as `{}`", self.user)
    }
}

// ---------------------------------------------------------------------------------------------
// Token cache

/// An access token and when to stop using it.
struct Token {
    value: HeaderValue,
    refresh_at: Instant,
}

/// One cached token, refreshed by one caller at a time.
struct TokenCache {
    current: Mutex<Option<Token>>,
    /// Held while fetching, so concurrent callers wait for that fetch instead of each starting
    /// their own.
    refreshing: tokio::sync::Mutex<()>,
}

impl TokenCache {
    fn new() -> TokenCache {
        TokenCache {
            current: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self) -> Option<HeaderValue> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .filter(|t| Instant::now() < t.refresh_at)
            .map(|t| t.value.clone())
    }

    /// The cached token, or the one `fetch` gets when there is none fresh. `fetch` is only
    /// awaited (and so only sends a request) when needed.
    async fn get(
        &self,
        fetch: impl Future<Output = Result<Granted, AuthError>>,
    ) -> Result<HeaderValue, AuthError> {
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        let _one_at_a_time = self.refreshing.lock().await;
        // Someone else may have refreshed while this call waited.
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        let started = Instant::now();
        let granted = fetch.await?;
        let value = sensitive(
            &format!("Bearer {}", granted.access_token.expose_secret()),
            "the access token the endpoint issued",
        )?;
        let refresh_at = (started + granted.life)
            .checked_sub(REFRESH_SKEW)
            .unwrap_or(started);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(Token {
            value: value.clone(),
            refresh_at,
        });
        Ok(value)
    }

    fn invalidate(&self, sent: &HeaderValue) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_some_and(|t| t.value == *sent) {
            *current = None;
        }
    }
}

/// What a token endpoint granted.
struct Granted {
    access_token: SecretString,
    life: Duration,
}

/// RFC 6749 §5.1 (some endpoints send `expires_in` as a string).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// RFC 6749 §5.2.
#[derive(Deserialize)]
struct ErrorResponse {
    error: Option<String>,
    error_description: Option<String>,
}

/// A token endpoint, checked: https, or http to this machine only (secrets go in the body).
fn token_endpoint(raw: &str) -> Result<Url, AuthError> {
    let url = Url::parse(raw)
        .map_err(|e| AuthError::BadConfig(format!("token endpoint `{raw}` is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AuthError::BadConfig(
            "the token endpoint URL must not carry credentials".to_string(),
        ));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if crate::providers::kit::http::is_loopback(&url) => Ok(url),
        "http" => Err(AuthError::BadConfig(format!(
            "refusing to send credentials over plain HTTP to {}; use https://",
            url.host_str().unwrap_or("?")
        ))),
        other => Err(AuthError::BadConfig(format!(
            "token endpoint `{raw}`: scheme `{other}` is not https"
        ))),
    }
}

/// The endpoint as shown in messages: no query, no fragment.
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// `text` with every occurrence of each secret replaced.
fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, "[redacted]");
    }
    out
}

/// An error and its causes on one line (reqwest's own Display is only the outermost).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// POST a form to a token endpoint and read the grant. `secrets` are cut out of anything the
/// endpoint says back.
async fn request_token(
    http: &reqwest::Client,
    url: &Url,
    form: &[(&str, &str)],
    basic: Option<HeaderValue>,
    secrets: &[&str],
) -> Result<Granted, AuthError> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut req = http
        .post(url.clone())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .body(body);
    if let Some(b) = basic {
        req = req.header(header::AUTHORIZATION, b);
    }
    let endpoint = shown(url);
    let resp = req.send().await.map_err(|e| {
        AuthError::Unavailable(format!(
            "cannot get a token from {endpoint}: {}",
            redact(&chain(&e.without_url()), secrets)
        ))
    })?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| {
        AuthError::Unavailable(format!(
            "the token endpoint {endpoint} broke off its answer: {}",
            redact(&chain(&e.without_url()), secrets)
        ))
    })?;
    if status.is_success() {
        return granted(&bytes).map_err(|why| AuthError::Rejected {
            endpoint,
            status: status.as_u16(),
            message: why,
        });
    }
    let message = redact(&error_message(&bytes), secrets);
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        return Err(AuthError::Unavailable(format!(
            "the token endpoint {endpoint} answered {status}: {message}"
        )));
    }
    Err(AuthError::Rejected {
        endpoint,
        status: status.as_u16(),
        message,
    })
}

fn granted(bytes: &[u8]) -> Result<Granted, String> {
    let resp: TokenResponse = serde_json::from_slice(bytes)
        .map_err(|_| "the answer is not an OAuth token response (is this the token endpoint?)")?;
    if let Some(tt) = &resp.token_type
        && !tt.eq_ignore_ascii_case("bearer")
    {
        return Err(format!(
            "the endpoint issued a `{tt}` token; only Bearer tokens are supported"
        ));
    }
    let life = match &resp.expires_in {
        None | Some(serde_json::Value::Null) => DEFAULT_TOKEN_LIFE,
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .map(Duration::from_secs)
            .ok_or("`expires_in` is not a whole number of seconds")?,
        Some(serde_json::Value::String(s)) => s
            .trim()
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| "`expires_in` is not a whole number of seconds")?,
        Some(_) => return Err("`expires_in` is not a whole number of seconds".to_string()),
    };
    if resp.access_token.is_empty() {
        return Err("the endpoint issued an empty access token".to_string());
    }
    Ok(Granted {
        access_token: SecretString::from(resp.access_token),
        life,
    })
}

/// RFC 6749 §5.2 `error: error_description`, else a short excerpt of the body.
fn error_message(bytes: &[u8]) -> String {
    if let Ok(e) = serde_json::from_slice::<ErrorResponse>(bytes) {
        match (e.error, e.error_description) {
            (Some(code), Some(desc)) => return format!("{code}: {desc}"),
            (Some(code), None) => return code,
            (None, Some(desc)) => return desc,
            (None, None) => {}
        }
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return "no explanation given".to_string();
    }
    let excerpt: String = text.chars().take(200).collect();
    if excerpt.len() < text.len() {
        format!("{excerpt}…")
    } else {
        excerpt
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// JWT signing

/// An RSA private key that signs JWTs: RS256 by default, PS256 on request, with an optional
/// `kid` and certificate thumbprint (`x5t#S256`) in the header so the endpoint knows which key.
pub struct JwtKey {
    key: EncodingKey,
    alg: Algorithm,
    kid: Option<String>,
    x5t_s256: Option<String>,
}

impl JwtKey {
    /// From a PEM RSA private key (`BEGIN PRIVATE KEY` or `BEGIN RSA PRIVATE KEY`).
    pub fn rsa_pem(pem: &SecretString) -> Result<JwtKey, AuthError> {
        // The parser's own message can quote bytes of the key: not passed on.
        let key = EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes()).map_err(|_| {
            AuthError::BadConfig(
                "the private key is not a PEM RSA private key (BEGIN PRIVATE KEY or BEGIN RSA \
                 PRIVATE KEY)"
                    .to_string(),
            )
        })?;
        let k = JwtKey {
            key,
            alg: Algorithm::RS256,
            kid: None,
            x5t_s256: None,
        };
        // Parsing the PEM checks little; a signature proves the key is usable, here rather
        // than at the first token request.
        k.sign(&serde_json::json!({})).map_err(|_| {
            AuthError::BadConfig(
                "the private key cannot sign (is it RSA, at least 2048 bits?)".to_string(),
            )
        })?;
        Ok(k)
    }

    /// Name the key in the JWT header (`kid`).
    pub fn with_kid(mut self, kid: impl Into<String>) -> JwtKey {
        self.kid = Some(kid.into());
        self
    }

    /// Sign RSASSA-PSS (PS256) rather than PKCS#1 v1.5 (RS256); Microsoft Entra documents PS256
    /// for certificate credentials.
    pub fn pss(mut self) -> JwtKey {
        self.alg = Algorithm::PS256;
        self
    }

    /// Put the SHA-256 thumbprint of the key's certificate in the header (`x5t#S256`), which
    /// is how Microsoft Entra finds the certificate a client assertion was signed with.
    pub fn with_certificate_pem(mut self, cert_pem: &str) -> Result<JwtKey, AuthError> {
        let der = certificate_der(cert_pem)?;
        self.x5t_s256 = Some(URL_SAFE_NO_PAD.encode(Sha256::digest(&der)));
        Ok(self)
    }

    fn sign<C: Serialize>(&self, claims: &C) -> Result<SecretString, AuthError> {
        let mut header = Header::new(self.alg);
        header.typ = Some("JWT".to_string());
        header.kid = self.kid.clone();
        header.x5t_s256 = self.x5t_s256.clone();
        jsonwebtoken::encode(&header, claims, &self.key)
            .map(SecretString::from)
            .map_err(|_| {
                AuthError::BadConfig("the private key cannot sign the assertion".to_string())
            })
    }

    fn shape(&self) -> String {
        let alg = match self.alg {
            Algorithm::PS256 => "PS256",
            _ => "RS256",
        };
        match &self.kid {
            Some(kid) => format!("{alg} key `{kid}`"),
            None => format!("{alg} key"),
        }
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwtKey({})", self.shape())
    }
}

fn certificate_der(pem: &str) -> Result<Vec<u8>, AuthError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let bad = || AuthError::BadConfig("the certificate is not a PEM certificate".to_string());
    let start = pem.find(BEGIN).ok_or_else(bad)? + BEGIN.len();
    let len = pem[start..].find(END).ok_or_else(bad)?;
    let b64: String = pem[start..start + len]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(b64).map_err(|_| bad())
}

fn random_jti() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

// ---------------------------------------------------------------------------------------------
// OAuth 2.0 client credentials

/// How the client proves who it is to the token endpoint.
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    SecretPost(SecretString),
    /// `client_id:client_secret` as HTTP Basic (`client_secret_basic`, RFC 6749 §2.3.1).
    SecretBasic(SecretString),
    /// A JWT signed with the client's key (`private_key_jwt`, RFC 7523 §2.2): iss = sub =
    /// client_id, aud = the token endpoint, a fresh jti, valid five minutes.
    PrivateKeyJwt(JwtKey),
}

impl ClientAuth {
    fn method(&self) -> &'static str {
        match self {
            ClientAuth::SecretPost(_) => "client_secret_post",
            ClientAuth::SecretBasic(_) => "client_secret_basic",
            ClientAuth::PrivateKeyJwt(_) => "private_key_jwt",
        }
    }
}

/// OAuth 2.0 client credentials grant (RFC 6749 §4.4), token cached.
pub struct ClientCredentials {
    http: reqwest::Client,
    token_url: Url,
    client_id: String,
    auth: ClientAuth,
    scopes: Vec<String>,
    /// Extra form parameter some servers want (Auth0's `audience`).
    audience: Option<String>,
    /// The `aud` of a client assertion (default: the token endpoint).
    assertion_audience: Option<String>,
    cache: TokenCache,
}

#[derive(Serialize)]
struct ClientAssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: u64,
    nbf: u64,
    exp: u64,
}

impl ClientCredentials {
    /// `http` sends the token requests (share the provider's client: same timeouts and TLS).
    pub fn new(
        http: reqwest::Client,
        token_url: &str,
        client_id: &str,
        auth: ClientAuth,
    ) -> Result<ClientCredentials, AuthError> {
        if client_id.is_empty() {
            return Err(AuthError::BadConfig("the client id is empty".to_string()));
        }
        Ok(ClientCredentials {
            http,
            token_url: token_endpoint(token_url)?,
            client_id: client_id.to_string(),
            auth,
            scopes: Vec::new(),
            audience: None,
            assertion_audience: None,
            cache: TokenCache::new(),
        })
    }

    /// The scopes to ask for (sent space-separated), e.g. `https://graph.microsoft.com/.default`.
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Send `audience=<value>` with the token request (Auth0 and some others need it).
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The `aud` claim of the client assertion, when the server wants something other than its
    /// token endpoint URL (some want their issuer).
    pub fn with_assertion_audience(mut self, aud: impl Into<String>) -> Self {
        self.assertion_audience = Some(aud.into());
        self
    }

    async fn fetch(&self) -> Result<Granted, AuthError> {
        let scope = self.scopes.join(" ");
        // Signed per request: a fresh jti and a five-minute life each time.
        let assertion = match &self.auth {
            ClientAuth::PrivateKeyJwt(key) => {
                let now = now_secs();
                let aud = self
                    .assertion_audience
                    .clone()
                    .unwrap_or_else(|| self.token_url.to_string());
                Some(key.sign(&ClientAssertionClaims {
                    iss: &self.client_id,
                    sub: &self.client_id,
                    aud: &aud,
                    jti: random_jti(),
                    iat: now,
                    nbf: now,
                    exp: now + CLIENT_ASSERTION_LIFE,
                })?)
            }
            _ => None,
        };
        let mut form: Vec<(&str, &str)> = vec![("grant_type", GRANT_CLIENT_CREDENTIALS)];
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        if let Some(a) = &self.audience {
            form.push(("audience", a));
        }
        let mut basic = None;
        let mut secrets: Vec<&str> = Vec::new();
        match (&self.auth, &assertion) {
            (ClientAuth::SecretPost(secret), _) => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", secret.expose_secret()));
                secrets.push(secret.expose_secret());
            }
            (ClientAuth::SecretBasic(secret), _) => {
                // RFC 6749 §2.3.1: both form-encoded before they are joined.
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let pair = format!("{}:{}", enc(&self.client_id), enc(secret.expose_secret()));
                basic = Some(sensitive(
                    &format!("Basic {}", STANDARD.encode(pair)),
                    "the client credentials",
                )?);
                secrets.push(secret.expose_secret());
            }
            (ClientAuth::PrivateKeyJwt(_), Some(jwt)) => {
                form.push(("client_id", &self.client_id));
                form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE));
                form.push(("client_assertion", jwt.expose_secret()));
                secrets.push(jwt.expose_secret());
            }
            (ClientAuth::PrivateKeyJwt(_), None) => unreachable!("signed above"),
        }
        request_token(&self.http, &self.token_url, &form, basic, &secrets).await
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientCredentials({})", self.describe())
    }
}

#[async_trait]
impl Auth for ClientCredentials {
    fn refreshable(&self) -> bool {
        true
    }

    async fn header(&self) -> Result<(HeaderName, HeaderValue), AuthError> {
        let value = self.cache.get(self.fetch()).await?;
        Ok((header::AUTHORIZATION, value))
    }

    fn invalidate(&self, sent: &HeaderValue) {
        self.cache.invalidate(sent);
    }

    fn describe(&self) -> String {
        let how = match &self.auth {
            ClientAuth::PrivateKeyJwt(k) => format!("private_key_jwt, {}", k.shape()),
            other => other.method().to_string(),
        };
        let scopes = if self.scopes.is_empty() {
            String::new()
        } else {
            format!(", scope {}", self.scopes.join(" "))
        };
        format!(
            "OAuth 2.0 client credentials for client `{}` ({how}{scopes}) from {}",
            self.client_id,
            shown(&self.token_url)
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Google service account

/// The fields of a service-account key file offboard uses.
#[derive(Deserialize)]
struct ServiceAccountKey {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

#[derive(Serialize)]
struct GoogleClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
}

/// A Google service account's JWT bearer grant (RFC 7523 §2.1): an assertion signed RS256 with
/// the key file's private key (header `kid` = `private_key_id`), iss = `client_email`, scope
/// space-separated, aud = `token_uri`, valid one hour, and `sub` = the Workspace user to act as
/// when the account has domain-wide delegation (the Admin SDK needs an admin there).
pub struct GoogleServiceAccount {
    http: reqwest::Client,
    client_email: String,
    key: JwtKey,
    token_uri: Url,
    scopes: Vec<String>,
    subject: Option<String>,
    cache: TokenCache,
}

impl GoogleServiceAccount {
    /// From the JSON key file's contents (kept secret: it holds the private key).
    pub fn from_json(
        http: reqwest::Client,
        key_json: &SecretString,
        scopes: &[&str],
        subject: Option<&str>,
    ) -> Result<GoogleServiceAccount, AuthError> {
        let key: ServiceAccountKey =
            serde_json::from_str(key_json.expose_secret()).map_err(|e| {
                // serde_json's message names a line and column, never the content.
                AuthError::BadConfig(format!(
                    "the service-account key is not a Google service-account JSON key ({})",
                    e.classify_message()
                ))
            })?;
        if let Some(kind) = &key.kind
            && kind != "service_account"
        {
            return Err(AuthError::BadConfig(format!(
                "the key file is of type `{kind}`, not `service_account`"
            )));
        }
        if scopes.is_empty() {
            return Err(AuthError::BadConfig(
                "a service account needs at least one scope".to_string(),
            ));
        }
        let private_key = SecretString::from(key.private_key);
        let mut jwt = JwtKey::rsa_pem(&private_key).map_err(|_| {
            AuthError::BadConfig(format!(
                "the private_key of service account {} is not a usable RSA key",
                key.client_email
            ))
        })?;
        if let Some(kid) = key.private_key_id {
            jwt = jwt.with_kid(kid);
        }
        let token_uri = token_endpoint(key.token_uri.as_deref().unwrap_or(GOOGLE_TOKEN_URI))?;
        Ok(GoogleServiceAccount {
            http,
            client_email: key.client_email,
            key: jwt,
            token_uri,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            subject: subject.map(str::to_string),
            cache: TokenCache::new(),
        })
    }

    async fn fetch(&self) -> Result<Granted, AuthError> {
        let now = now_secs();
        let scope = self.scopes.join(" ");
        let aud = self.token_uri.to_string();
        let assertion = self.key.sign(&GoogleClaims {
            iss: &self.client_email,
            scope: &scope,
            aud: &aud,
            iat: now,
            exp: now + GOOGLE_ASSERTION_LIFE,
            sub: self.subject.as_deref(),
        })?;
        let form = [
            ("grant_type", GRANT_JWT_BEARER),
            ("assertion", assertion.expose_secret()),
        ];
        request_token(
            &self.http,
            &self.token_uri,
            &form,
            None,
            &[assertion.expose_secret()],
        )
        .await
    }
}

/// serde_json's error text without anything quoted from the input.
trait ClassifyMessage {
    fn classify_message(&self) -> String;
}

impl ClassifyMessage for serde_json::Error {
    fn classify_message(&self) -> String {
        use serde_json::error::Category;
        let what = match self.classify() {
            Category::Io => "unreadable",
            Category::Syntax | Category::Eof => "not valid JSON",
            // "missing field `client_email`" quotes only the field name; other data errors
            // may quote the value.
            Category::Data if self.to_string().starts_with("missing field") => {
                return format!("{}", self);
            }
            Category::Data => "a field is of the wrong type",
        };
        format!("{what}, line {} column {}", self.line(), self.column())
    }
}

impl fmt::Debug for GoogleServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GoogleServiceAccount({})", self.describe())
    }
}

#[async_trait]
impl Auth for GoogleServiceAccount {
    fn refreshable(&self) -> bool {
        true
    }

    async fn header(&self) -> Result<(HeaderName, HeaderValue), AuthError> {
        let value = self.cache.get(self.fetch()).await?;
        Ok((header::AUTHORIZATION, value))
    }

    fn invalidate(&self, sent: &HeaderValue) {
        self.cache.invalidate(sent);
    }

    fn describe(&self) -> String {
        let who = match &self.subject {
            Some(s) => format!(" acting as {s}"),
            None => String::new(),
        };
        format!(
            "Google service account {}{who} (scope {}) from {}",
            self.client_email,
            self.scopes.join(" "),
            shown(&self.token_uri)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::kit::fake_token::{Client, FakeToken, KEY, OTHER_KEY};
    use serde_json::json;

    const SECRET: &str = "s3cr3t-Value-9f2c";

    fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    /// None of `secrets` in the error's Display or Debug.
    fn assert_clean(e: &AuthError, secrets: &[&str]) {
        let shown = format!("{e} / {e:?}");
        for s in secrets {
            assert!(!s.is_empty());
            assert!(!shown.contains(s), "secret leaked into {shown}");
        }
    }

    /// A line of the PEM body: proves the private key is not in a text.
    fn pem_line() -> &'static str {
        KEY.private_pem.lines().nth(3).unwrap()
    }

    fn secret_client(basic: bool) -> Client {
        Client::Secret {
            client_id: "offboard-app".into(),
            secret: SECRET.into(),
            basic,
        }
    }

    fn assertion_client(pss: bool) -> Client {
        Client::Assertion {
            client_id: "0f6c-app".into(),
            public_der: KEY.public_der.clone(),
            pss,
        }
    }

    fn post_creds(fake: &FakeToken, s: &str) -> ClientCredentials {
        ClientCredentials::new(
            http(),
            &fake.url,
            "offboard-app",
            ClientAuth::SecretPost(secret(s)),
        )
        .unwrap()
    }

    fn jwt_creds(fake: &FakeToken, key: &str) -> ClientCredentials {
        let key = JwtKey::rsa_pem(&secret(key)).unwrap().with_kid("k1");
        ClientCredentials::new(
            http(),
            &fake.url,
            "0f6c-app",
            ClientAuth::PrivateKeyJwt(key),
        )
        .unwrap()
    }

    fn sa_json(token_uri: &str, pem: &str) -> SecretString {
        secret(
            &json!({
                "type": "service_account",
                "project_id": "corp-offboard",
                "private_key_id": "kid-4711",
                "private_key": pem,
                "client_email": "offboard@corp-offboard.iam.gserviceaccount.com",
                "client_id": "1234567890",
                "token_uri": token_uri,
            })
            .to_string(),
        )
    }

    fn sa_client(subject: Option<&str>) -> Client {
        Client::ServiceAccount {
            email: "offboard@corp-offboard.iam.gserviceaccount.com".into(),
            public_der: KEY.public_der.clone(),
            kid: "kid-4711".into(),
            subject: subject.map(str::to_string),
        }
    }

    /// Authorise a GET of the fake's API and send it; the status.
    async fn call(auth: &dyn Auth, fake: &FakeToken) -> Result<u16, AuthError> {
        let req = auth.authorize(http().get(&fake.api_url)).await?;
        Ok(req.send().await.unwrap().status().as_u16())
    }

    fn auth_header(auth_req: RequestBuilder) -> HeaderValue {
        let req = auth_req.build().unwrap();
        req.headers()[header::AUTHORIZATION].clone()
    }

    #[tokio::test]
    async fn static_tokens_and_basic_set_sensitive_headers() {
        let c = http();
        let bearer = StaticToken::bearer(&secret("T0KEN-abc")).unwrap();
        let v = auth_header(bearer.authorize(c.get("http://127.0.0.1/")).await.unwrap());
        assert_eq!(v, "Bearer T0KEN-abc");
        assert!(v.is_sensitive());

        let okta = StaticToken::scheme("SSWS", &secret("T0KEN-abc")).unwrap();
        let v = auth_header(okta.authorize(c.get("http://127.0.0.1/")).await.unwrap());
        assert_eq!(v, "SSWS T0KEN-abc");

        let vault = StaticToken::header("X-Vault-Token", &secret("hvs.T0KEN")).unwrap();
        let req = vault
            .authorize(c.get("http://127.0.0.1/"))
            .await
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(req.headers()["x-vault-token"], "hvs.T0KEN");
        assert!(req.headers()["x-vault-token"].is_sensitive());
        assert!(req.headers().get(header::AUTHORIZATION).is_none());

        let basic = Basic::new("svc-offboard", &secret("pa:ss wörd")).unwrap();
        let v = auth_header(basic.authorize(c.get("http://127.0.0.1/")).await.unwrap());
        assert_eq!(
            v.to_str().unwrap(),
            format!("Basic {}", STANDARD.encode("svc-offboard:pa:ss wörd"))
        );
        assert!(v.is_sensitive());

        for shown in [
            format!("{bearer:?} {}", bearer.describe()),
            format!("{vault:?} {}", vault.describe()),
            format!("{basic:?} {}", basic.describe()),
        ] {
            assert!(
                !shown.contains("T0KEN") && !shown.contains("pa:ss"),
                "{shown}"
            );
        }
    }

    #[tokio::test]
    async fn a_token_unfit_for_a_header_is_a_config_error_that_does_not_show_it() {
        let e = StaticToken::bearer(&secret("T0KEN\nX-Evil: 1")).unwrap_err();
        assert!(matches!(e, AuthError::BadConfig(_)), "{e:?}");
        assert_clean(&e, &["T0KEN", "X-Evil"]);
        let e = Basic::new("a:b", &secret("pw")).unwrap_err();
        assert!(matches!(e, AuthError::BadConfig(_)), "{e:?}");
    }

    #[tokio::test]
    async fn client_secret_post_gets_a_token_and_reuses_it() {
        let fake = FakeToken::start(secret_client(false)).await;
        fake.expect_scope("users.read users.write");
        let auth = post_creds(&fake, SECRET).with_scopes(["users.read", "users.write"]);
        for _ in 0..5 {
            assert_eq!(call(&auth, &fake).await.unwrap(), 200);
        }
        assert_eq!(fake.token_requests(), 1, "one token for five calls");
        assert_eq!(fake.api_requests(), 5);
        let v = auth_header(auth.authorize(http().get(&fake.api_url)).await.unwrap());
        assert!(v.is_sensitive());
        assert_eq!(v.to_str().unwrap(), format!("Bearer {}", fake.issued()[0]));
        let shown = format!("{auth:?} {}", auth.describe());
        assert!(shown.contains("offboard-app") && shown.contains("client_secret_post"));
        assert!(!shown.contains(SECRET), "{shown}");
    }

    #[tokio::test]
    async fn an_audience_parameter_is_sent_when_set() {
        let fake = FakeToken::start(secret_client(false)).await;
        fake.require_param("audience", "https://api.corp.example/");
        let e = post_creds(&fake, SECRET).header().await.unwrap_err();
        assert!(
            matches!(&e, AuthError::Rejected { message, .. } if message.contains("audience")),
            "{e:?}"
        );
        let auth = post_creds(&fake, SECRET).with_audience("https://api.corp.example/");
        assert_eq!(call(&auth, &fake).await.unwrap(), 200);
    }

    #[tokio::test]
    async fn client_secret_basic_form_encodes_the_pair() {
        // `:` `+` `/` `=` and a space only survive if both halves are form-encoded first.
        let odd = "p:a+s/s= w%rd";
        let fake = FakeToken::start(Client::Secret {
            client_id: "offboard:app".into(),
            secret: odd.into(),
            basic: true,
        })
        .await;
        let auth = ClientCredentials::new(
            http(),
            &fake.url,
            "offboard:app",
            ClientAuth::SecretBasic(secret(odd)),
        )
        .unwrap();
        assert_eq!(call(&auth, &fake).await.unwrap(), 200);
        assert_eq!(fake.token_requests(), 1);
    }

    #[tokio::test]
    async fn a_wrong_secret_is_rejected_with_the_endpoints_words_and_no_secret() {
        let fake = FakeToken::start(secret_client(false)).await;
        let auth = post_creds(&fake, "wrong-Secret-123");
        let e = auth.header().await.unwrap_err();
        match &e {
            AuthError::Rejected {
                status, message, ..
            } => {
                assert_eq!(*status, 400);
                assert_eq!(message, "invalid_client: Invalid client secret provided.");
            }
            other => panic!("{other:?}"),
        }
        assert!(!e.is_transient());
        assert!(e.to_string().contains(&fake.url), "{e}");
        assert_clean(&e, &["wrong-Secret-123", SECRET]);

        // Basic: 401, as RFC 6749 §5.2 asks when the client authenticated with a header.
        let fake = FakeToken::start(secret_client(true)).await;
        let auth = ClientCredentials::new(
            http(),
            &fake.url,
            "offboard-app",
            ClientAuth::SecretBasic(secret("wrong-Secret-123")),
        )
        .unwrap();
        let e = auth.header().await.unwrap_err();
        assert!(
            matches!(&e, AuthError::Rejected { status: 401, message, .. } if message.starts_with("invalid_client")),
            "{e:?}"
        );
        assert_clean(&e, &["wrong-Secret-123"]);
    }

    #[tokio::test]
    async fn a_secret_the_endpoint_echoes_back_is_cut_out() {
        let fake = FakeToken::start(secret_client(false)).await;
        fake.set_echo(true);
        let e = post_creds(&fake, "wrong-Secret-123")
            .header()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("[redacted]"), "{e}");
        assert_clean(&e, &["wrong-Secret-123"]);
    }

    #[tokio::test]
    async fn private_key_jwt_gets_a_token_with_a_signed_assertion() {
        let fake = FakeToken::start(assertion_client(false)).await;
        fake.expect_scope("https://graph.microsoft.com/.default");
        let auth = jwt_creds(&fake, &KEY.private_pem)
            .with_scopes(["https://graph.microsoft.com/.default"]);
        assert_eq!(call(&auth, &fake).await.unwrap(), 200);
        assert_eq!(call(&auth, &fake).await.unwrap(), 200);
        assert_eq!(fake.token_requests(), 1);
        let head = assertion_part(&fake.last_assertion().unwrap(), 0);
        assert_eq!(head["alg"], "RS256");
        assert_eq!(head["kid"], "k1");
        let claims = assertion_part(&fake.last_assertion().unwrap(), 1);
        let (iat, exp) = (
            claims["iat"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        assert!(
            exp - iat <= 300,
            "a client assertion lives five minutes at most"
        );
        let shown = format!("{auth:?} {}", auth.describe());
        assert!(shown.contains("private_key_jwt"), "{shown}");
        assert!(!shown.contains(pem_line()), "{shown}");
    }

    fn assertion_part(jwt: &str, i: usize) -> serde_json::Value {
        let part = jwt.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn ps256_with_a_certificate_thumbprint_as_microsoft_documents() {
        let fake = FakeToken::start(assertion_client(true)).await;
        // The thumbprint is of the certificate's DER, whatever it holds.
        let der = b"not really a certificate, but DER bytes all the same";
        let cert = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            STANDARD.encode(der)
        );
        let key = JwtKey::rsa_pem(&KEY.secret_pem())
            .unwrap()
            .pss()
            .with_certificate_pem(&cert)
            .unwrap();
        let auth = ClientCredentials::new(
            http(),
            &fake.url,
            "0f6c-app",
            ClientAuth::PrivateKeyJwt(key),
        )
        .unwrap();
        assert_eq!(call(&auth, &fake).await.unwrap(), 200);
        let head = assertion_part(&fake.last_assertion().unwrap(), 0);
        assert_eq!(head["alg"], "PS256");
        assert_eq!(
            head["x5t#S256"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(der))
        );
        let bad = JwtKey::rsa_pem(&KEY.secret_pem())
            .unwrap()
            .with_certificate_pem("no pem here");
        assert!(matches!(bad, Err(AuthError::BadConfig(_))));
    }

    #[tokio::test]
    async fn an_assertion_signed_with_another_key_is_rejected() {
        let fake = FakeToken::start(assertion_client(false)).await;
        let auth = jwt_creds(&fake, &OTHER_KEY.private_pem);
        let e = auth.header().await.unwrap_err();
        assert!(
            matches!(&e, AuthError::Rejected { status: 401, message, .. }
                if message == "invalid_client: Invalid JWT Signature."),
            "{e:?}"
        );
        let assertion = fake.last_assertion().unwrap();
        assert_clean(
            &e,
            &[&assertion, OTHER_KEY.private_pem.lines().nth(3).unwrap()],
        );

        // Even when the endpoint quotes the assertion back.
        fake.set_echo(true);
        let e = auth.header().await.unwrap_err();
        let assertion = fake.last_assertion().unwrap();
        assert!(e.to_string().contains("[redacted]"), "{e}");
        assert_clean(&e, &[&assertion]);
    }

    #[tokio::test]
    async fn an_assertion_for_another_audience_is_rejected() {
        let fake = FakeToken::start(assertion_client(false)).await;
        let auth = jwt_creds(&fake, &KEY.private_pem)
            .with_assertion_audience("https://login.example.invalid/token");
        let e = auth.header().await.unwrap_err();
        assert!(
            matches!(&e, AuthError::Rejected { status: 401, message, .. }
                if message.contains("audience") && message.contains("login.example.invalid")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn an_expired_assertion_is_rejected() {
        // The endpoint's clock is two hours ahead: to it, the assertion has already expired.
        let fake = FakeToken::start(assertion_client(false)).await;
        fake.set_clock_ahead(7200);
        let e = jwt_creds(&fake, &KEY.private_pem)
            .header()
            .await
            .unwrap_err();
        assert!(
            matches!(&e, AuthError::Rejected { message, .. } if message.contains("expired")),
            "{e:?}"
        );
        let fake = FakeToken::start(sa_client(None)).await;
        fake.set_clock_ahead(7200);
        let sa = GoogleServiceAccount::from_json(
            http(),
            &sa_json(&fake.url, &KEY.private_pem),
            &["s"],
            None,
        )
        .unwrap();
        let e = sa.header().await.unwrap_err();
        assert!(
            matches!(&e, AuthError::Rejected { status: 400, message, .. }
                if message.starts_with("invalid_grant") && message.contains("expired")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_bad_private_key_is_a_config_error() {
        for pem in [
            "",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let e = JwtKey::rsa_pem(&secret(pem)).unwrap_err();
            assert!(matches!(e, AuthError::BadConfig(_)), "{e:?}");
        }
    }

    #[tokio::test]
    async fn google_service_account_impersonates_a_user() {
        let fake = FakeToken::start(sa_client(Some("admin@corp.example"))).await;
        fake.expect_scope(
            "https://www.googleapis.com/auth/admin.directory.user \
             https://www.googleapis.com/auth/admin.directory.group",
        );
        let sa = GoogleServiceAccount::from_json(
            http(),
            &sa_json(&fake.url, &KEY.private_pem),
            &[
                "https://www.googleapis.com/auth/admin.directory.user",
                "https://www.googleapis.com/auth/admin.directory.group",
            ],
            Some("admin@corp.example"),
        )
        .unwrap();
        for _ in 0..3 {
            assert_eq!(call(&sa, &fake).await.unwrap(), 200);
        }
        assert_eq!(fake.token_requests(), 1);
        let claims = assertion_part(&fake.last_assertion().unwrap(), 1);
        assert_eq!(claims["sub"], "admin@corp.example");
        assert!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap() <= 3600);
        let shown = format!("{sa:?} {}", sa.describe());
        assert!(shown.contains("acting as admin@corp.example"), "{shown}");
        assert!(!shown.contains(pem_line()), "{shown}");
    }

    #[tokio::test]
    async fn google_refuses_a_subject_not_delegated_and_a_foreign_key() {
        // Delegation is for admin@…; asking for no subject is refused.
        let fake = FakeToken::start(sa_client(Some("admin@corp.example"))).await;
        let sa = GoogleServiceAccount::from_json(
            http(),
            &sa_json(&fake.url, &KEY.private_pem),
            &["s"],
            None,
        )
        .unwrap();
        let e = sa.header().await.unwrap_err();
        assert!(
            matches!(&e, AuthError::Rejected { status: 401, message, .. }
                if message.starts_with("unauthorized_client")),
            "{e:?}"
        );
        let sa = GoogleServiceAccount::from_json(
            http(),
            &sa_json(&fake.url, &OTHER_KEY.private_pem),
            &["s"],
            Some("admin@corp.example"),
        )
        .unwrap();
        let e = sa.header().await.unwrap_err();
        assert!(
            matches!(&e, AuthError::Rejected { status: 400, message, .. }
                if message == "invalid_grant: Invalid JWT Signature."),
            "{e:?}"
        );
        assert_clean(&e, &[&fake.last_assertion().unwrap()]);
    }

    #[tokio::test]
    async fn a_bad_service_account_file_is_a_config_error_without_the_key() {
        let c = http();
        let e = GoogleServiceAccount::from_json(c.clone(), &secret("{not json"), &["s"], None)
            .unwrap_err();
        assert!(matches!(e, AuthError::BadConfig(_)), "{e:?}");
        let mut v: serde_json::Value =
            serde_json::from_str(sa_json("https://x.invalid", &KEY.private_pem).expose_secret())
                .unwrap();
        v["type"] = json!("authorized_user");
        let e = GoogleServiceAccount::from_json(c.clone(), &secret(&v.to_string()), &["s"], None)
            .unwrap_err();
        assert!(e.to_string().contains("authorized_user"), "{e}");
        let e = GoogleServiceAccount::from_json(
            c.clone(),
            &secret(r#"{"private_key":"x"}"#),
            &["s"],
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("missing field `client_email`"),
            "{e}"
        );
        // A key that is not a key: the error names the account, not the text.
        let broken = KEY.private_pem.replace(pem_line(), "AAAA");
        let e = GoogleServiceAccount::from_json(
            c.clone(),
            &sa_json("https://x.invalid", &broken),
            &["s"],
            None,
        )
        .unwrap_err();
        assert!(matches!(e, AuthError::BadConfig(_)), "{e:?}");
        assert!(e.to_string().contains("offboard@corp-offboard"), "{e}");
        assert_clean(&e, &[KEY.private_pem.lines().nth(5).unwrap()]);
        // A field of the wrong type: serde would quote the value; the message does not.
        v["type"] = json!("service_account");
        v["private_key"] = json!(12345678);
        v["client_email"] = json!(["s3cr3t-ish"]);
        let e =
            GoogleServiceAccount::from_json(c, &secret(&v.to_string()), &["s"], None).unwrap_err();
        assert_clean(&e, &["s3cr3t-ish", "12345678"]);
    }

    #[tokio::test]
    async fn a_token_is_refreshed_when_less_than_the_skew_remains() {
        let fake = FakeToken::start(secret_client(false)).await;
        // 30 s of life is inside the 60 s skew: never reused.
        fake.set_expires_in(30);
        let auth = post_creds(&fake, SECRET);
        call(&auth, &fake).await.unwrap();
        call(&auth, &fake).await.unwrap();
        assert_eq!(fake.token_requests(), 2);

        // 61 s: reused for one second, then refreshed.
        let fake = FakeToken::start(secret_client(false)).await;
        fake.set_expires_in(61);
        let auth = post_creds(&fake, SECRET);
        call(&auth, &fake).await.unwrap();
        call(&auth, &fake).await.unwrap();
        assert_eq!(fake.token_requests(), 1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(call(&auth, &fake).await.unwrap(), 200);
        assert_eq!(fake.token_requests(), 2);
    }

    #[tokio::test]
    async fn after_a_401_invalidate_makes_the_next_call_fetch_a_new_token() {
        // With private_key_jwt, so the second request also proves a fresh jti.
        let fake = FakeToken::start(assertion_client(false)).await;
        let auth = jwt_creds(&fake, &KEY.private_pem);
        let (_, first) = auth.header().await.unwrap();
        assert_eq!(call(&auth, &fake).await.unwrap(), 200);
        fake.revoke_all();
        assert_eq!(call(&auth, &fake).await.unwrap(), 401);
        assert_eq!(
            fake.token_requests(),
            1,
            "the cached token is used until invalidated"
        );
        auth.invalidate(&first);
        assert_eq!(call(&auth, &fake).await.unwrap(), 200);
        assert_eq!(fake.token_requests(), 2);
        // A late 401 for the old token (another request in flight) keeps the new one.
        auth.invalidate(&first);
        assert_eq!(call(&auth, &fake).await.unwrap(), 200);
        assert_eq!(
            fake.token_requests(),
            2,
            "one refresh for any number of stale 401s"
        );
        // The new token rejected in turn: refreshed again.
        let (_, second) = auth.header().await.unwrap();
        assert_ne!(first, second);
        auth.invalidate(&second);
        assert_eq!(call(&auth, &fake).await.unwrap(), 200);
        assert_eq!(fake.token_requests(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_calls_share_one_refresh() {
        let fake = FakeToken::start(secret_client(false)).await;
        fake.set_delay(Duration::from_millis(300));
        let auth = std::sync::Arc::new(post_creds(&fake, SECRET));
        let calls = (0..10).map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move { auth.header().await.unwrap().1 })
        });
        let values = futures::future::join_all(calls).await;
        assert_eq!(fake.token_requests(), 1);
        let first = values[0].as_ref().unwrap();
        assert!(values.iter().all(|v| v.as_ref().unwrap() == first));
    }

    #[tokio::test]
    async fn endpoint_trouble_is_transient_and_not_cached() {
        let fake = FakeToken::start(secret_client(false)).await;
        let auth = post_creds(&fake, SECRET);
        fake.fail_next(503, json!({"error": "temporarily_unavailable"}));
        let e = auth.header().await.unwrap_err();
        assert!(e.is_transient(), "{e:?}");
        assert!(e.to_string().contains("503") && e.to_string().contains("temporarily_unavailable"));
        fake.fail_next(429, json!({}));
        assert!(auth.header().await.unwrap_err().is_transient());
        assert_eq!(call(&auth, &fake).await.unwrap(), 200);
        assert_eq!(fake.token_requests(), 3);

        // A 200 that is not a token: permanent, names what is wrong.
        let fresh = post_creds(&fake, SECRET);
        fake.fail_next(200, json!({"hello": "world"}));
        let e = fresh.header().await.unwrap_err();
        assert!(
            matches!(&e, AuthError::Rejected { status: 200, message, .. }
                if message.contains("not an OAuth token response")),
            "{e:?}"
        );

        // Nobody listening.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let gone = ClientCredentials::new(
            http(),
            &format!("http://127.0.0.1:{port}/token"),
            "offboard-app",
            ClientAuth::SecretPost(secret(SECRET)),
        )
        .unwrap();
        let e = gone.header().await.unwrap_err();
        assert!(e.is_transient(), "{e:?}");
        assert_clean(&e, &[SECRET]);
    }

    #[test]
    fn credentials_never_go_over_plain_http_to_another_host() {
        let e = ClientCredentials::new(
            http(),
            "http://login.example.com/token",
            "app",
            ClientAuth::SecretPost(secret(SECRET)),
        )
        .unwrap_err();
        assert!(matches!(e, AuthError::BadConfig(_)), "{e:?}");
        assert!(e.to_string().contains("plain HTTP"), "{e}");
        let e = GoogleServiceAccount::from_json(
            http(),
            &sa_json("http://oauth2.example.com/token", &KEY.private_pem),
            &["s"],
            None,
        )
        .unwrap_err();
        assert!(matches!(e, AuthError::BadConfig(_)), "{e:?}");
    }

    #[test]
    fn expires_in_as_a_number_a_string_or_absent() {
        let g = granted(br#"{"access_token":"a","token_type":"bearer","expires_in":"3599"}"#)
            .ok()
            .unwrap();
        assert_eq!(g.life, Duration::from_secs(3599));
        let g = granted(br#"{"access_token":"a"}"#).ok().unwrap();
        assert_eq!(g.life, DEFAULT_TOKEN_LIFE);
        let e = granted(br#"{"access_token":"a","token_type":"DPoP"}"#)
            .err()
            .unwrap();
        assert!(e.contains("DPoP"), "{e}");
    }
}
