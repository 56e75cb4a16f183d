//! A fake OAuth 2.0 token endpoint for the auth tests, checking what a real one checks:
//! a form-encoded POST, the grant type, the client's secret (in the body or as Basic, RFC 6749
//! §2.3.1 encoding) or its assertion (RS256/PS256 signature against the registered public key,
//! `aud` = this endpoint's URL, `exp` in the future and at most an hour away, `iat` not in the
//! future, `iss`/`sub`, a `jti` never seen before, the `kid`), and the scope. It answers
//! RFC 6749 §5.1 tokens or §5.2 errors (400, or 401 for a failed client authentication), and
//! serves a protected `/api` that accepts only tokens it issued and has not revoked.
//!
//! The RSA test keys are generated when the tests run; they are throwaway keys.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::SecretString;
use serde_json::{Value, json};

pub const CLIENT_CREDENTIALS: &str = "client_credentials";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A throwaway RSA key pair made for this test run.
pub struct TestKey {
    /// PKCS#8 PEM, as in a Google key file.
    pub private_pem: String,
    /// PKCS#1 RSAPublicKey DER.
    pub public_der: Vec<u8>,
}

impl TestKey {
    fn generate() -> TestKey {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("generate an RSA key");
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).expect("PKCS#8");
        let b64 = STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap());
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        TestKey {
            private_pem: pem,
            public_der: pair.public_key().as_ref().to_vec(),
        }
    }

    pub fn secret_pem(&self) -> SecretString {
        SecretString::from(self.private_pem.clone())
    }
}

/// The key the fake knows.
pub static KEY: LazyLock<TestKey> = LazyLock::new(TestKey::generate);
/// A key the fake does not know.
pub static OTHER_KEY: LazyLock<TestKey> = LazyLock::new(TestKey::generate);

/// Who may get a token, and how they prove it.
#[derive(Clone)]
pub enum Client {
    /// A client secret, in the body (`basic: false`) or as HTTP Basic.
    Secret {
        client_id: String,
        secret: String,
        basic: bool,
    },
    /// `private_key_jwt` with this public key.
    Assertion {
        client_id: String,
        public_der: Vec<u8>,
        pss: bool,
    },
    /// A Google-style service account: the JWT bearer grant.
    ServiceAccount {
        email: String,
        public_der: Vec<u8>,
        kid: String,
        subject: Option<String>,
    },
}

struct St {
    url: String,
    client: Client,
    scope: Option<String>,
    /// Other form parameters that must be sent (Auth0's `audience`).
    required: Vec<(String, String)>,
    expires_in: u64,
    delay: Duration,
    /// Added to the fake's clock (a server whose clock runs ahead).
    clock_ahead: u64,
    /// Put what the client sent into error descriptions (a careless server).
    echo: bool,
    fail_next: VecDeque<(u16, Value)>,
    token_requests: u32,
    issued: Vec<String>,
    revoked: HashSet<String>,
    jtis: HashSet<String>,
    last_assertion: Option<String>,
    api_requests: u32,
}

#[derive(Clone)]
pub struct FakeToken {
    /// The token endpoint.
    pub url: String,
    /// A protected resource: 200 with a token issued here and not revoked, else 401.
    pub api_url: String,
    st: Arc<Mutex<St>>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

type Refusal = (u16, &'static str, String);

fn refuse(status: u16, error: &str, description: String) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        json!({"error": error, "error_description": description}).to_string(),
    )
        .into_response()
}

impl FakeToken {
    pub async fn start(client: Client) -> FakeToken {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}/oauth2/token");
        let st = Arc::new(Mutex::new(St {
            url: url.clone(),
            client,
            scope: None,
            required: Vec::new(),
            expires_in: 3600,
            delay: Duration::ZERO,
            clock_ahead: 0,
            echo: false,
            fail_next: VecDeque::new(),
            token_requests: 0,
            issued: Vec::new(),
            revoked: HashSet::new(),
            jtis: HashSet::new(),
            last_assertion: None,
            api_requests: 0,
        }));
        let app = Router::new()
            .route("/oauth2/token", post(token))
            .route("/api", get(api))
            .with_state(st.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeToken {
            url,
            api_url: format!("http://{addr}/api"),
            st,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut St) -> R) -> R {
        f(&mut self.st.lock().unwrap())
    }

    /// Require exactly this `scope` parameter (or `scope` claim).
    pub fn expect_scope(&self, scope: &str) {
        self.with(|s| s.scope = Some(scope.to_string()));
    }
    /// Require form parameter `name` = `value`.
    pub fn require_param(&self, name: &str, value: &str) {
        self.with(|s| s.required.push((name.to_string(), value.to_string())));
    }
    pub fn set_expires_in(&self, secs: u64) {
        self.with(|s| s.expires_in = secs);
    }
    pub fn set_delay(&self, d: Duration) {
        self.with(|s| s.delay = d);
    }
    pub fn set_clock_ahead(&self, secs: u64) {
        self.with(|s| s.clock_ahead = secs);
    }
    pub fn set_echo(&self, on: bool) {
        self.with(|s| s.echo = on);
    }
    /// The next token request answers this instead.
    pub fn fail_next(&self, status: u16, body: Value) {
        self.with(|s| s.fail_next.push_back((status, body)));
    }
    /// Every token issued so far stops working at `/api`.
    pub fn revoke_all(&self) {
        self.with(|s| {
            let all: Vec<String> = s.issued.clone();
            s.revoked.extend(all);
        });
    }
    pub fn token_requests(&self) -> u32 {
        self.with(|s| s.token_requests)
    }
    pub fn api_requests(&self) -> u32 {
        self.with(|s| s.api_requests)
    }
    pub fn issued(&self) -> Vec<String> {
        self.with(|s| s.issued.clone())
    }
    pub fn last_assertion(&self) -> Option<String> {
        self.with(|s| s.last_assertion.clone())
    }
}

async fn api(State(st): State<Arc<Mutex<St>>>, headers: HeaderMap) -> Response {
    let mut s = st.lock().unwrap();
    s.api_requests += 1;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(t) if s.issued.iter().any(|i| i == t) && !s.revoked.contains(t) => {
            (StatusCode::OK, "ok").into_response()
        }
        _ => (StatusCode::UNAUTHORIZED, "invalid token").into_response(),
    }
}

async fn token(State(st): State<Arc<Mutex<St>>>, headers: HeaderMap, body: Bytes) -> Response {
    let delay = {
        let mut s = st.lock().unwrap();
        s.token_requests += 1;
        s.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut s = st.lock().unwrap();
    if let Some((status, body)) = s.fail_next.pop_front() {
        return (StatusCode::from_u16(status).unwrap(), body.to_string()).into_response();
    }
    match check(&mut s, &headers, &body) {
        Ok(()) => {
            let n = s.issued.len() + 1;
            let token = format!("access-{n}-{}", now());
            s.issued.push(token.clone());
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                json!({"access_token": token, "token_type": "Bearer", "expires_in": s.expires_in})
                    .to_string(),
            )
                .into_response()
        }
        Err((status, error, description)) => refuse(status, error, description),
    }
}

fn check(s: &mut St, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ctype.starts_with("application/x-www-form-urlencoded") {
        return Err((400, "invalid_request", format!("content type `{ctype}`")));
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let one = |k: &str| -> Result<Option<String>, Refusal> {
        let mut vals = form.iter().filter(|(n, _)| n == k).map(|(_, v)| v.clone());
        let first = vals.next();
        if vals.next().is_some() {
            return Err((400, "invalid_request", format!("`{k}` repeated")));
        }
        Ok(first)
    };
    let grant = one("grant_type")?.unwrap_or_default();
    for (name, value) in &s.required {
        if one(name)?.as_deref() != Some(value.as_str()) {
            return Err((
                400,
                "invalid_request",
                format!("`{name}` must be `{value}`"),
            ));
        }
    }
    let now = now() + s.clock_ahead;
    match s.client.clone() {
        Client::Secret {
            client_id,
            secret,
            basic,
        } => {
            want_grant(&grant, CLIENT_CREDENTIALS)?;
            let auth = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let (id, sent) = if basic {
                if one("client_secret")?.is_some() {
                    return Err((400, "invalid_request", "two client authentications".into()));
                }
                let Some(b64) = auth.and_then(|a| a.strip_prefix("Basic ")) else {
                    return Err((
                        401,
                        "invalid_client",
                        "Basic authentication expected".into(),
                    ));
                };
                let decoded =
                    String::from_utf8(STANDARD.decode(b64).unwrap_or_default()).unwrap_or_default();
                let Some((id, secret)) = decoded.split_once(':') else {
                    return Err((401, "invalid_client", "malformed Basic credentials".into()));
                };
                let dec = |x: &str| {
                    url::form_urlencoded::parse(format!("x={x}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                (dec(id), dec(secret))
            } else {
                if auth.is_some() {
                    return Err((400, "invalid_request", "two client authentications".into()));
                }
                (
                    one("client_id")?.unwrap_or_default(),
                    one("client_secret")?.unwrap_or_default(),
                )
            };
            let status = if basic { 401 } else { 400 };
            if id != client_id {
                return Err((status, "invalid_client", format!("unknown client `{id}`")));
            }
            if sent != secret {
                let mut d = "Invalid client secret provided.".to_string();
                if s.echo {
                    d.push_str(&format!(" (received `{sent}`)"));
                }
                return Err((status, "invalid_client", d));
            }
            check_scope(s, one("scope")?.as_deref())
        }
        Client::Assertion {
            client_id,
            public_der,
            pss,
        } => {
            want_grant(&grant, CLIENT_CREDENTIALS)?;
            if one("client_assertion_type")?.as_deref() != Some(ASSERTION_TYPE) {
                return Err((400, "invalid_request", "client_assertion_type".into()));
            }
            let jwt = one("client_assertion")?.unwrap_or_default();
            s.last_assertion = Some(jwt.clone());
            let echo = if s.echo {
                format!(" (received `{jwt}`)")
            } else {
                String::new()
            };
            let alg = if pss { "PS256" } else { "RS256" };
            let bad = |d: String| (401, "invalid_client", format!("{d}{echo}"));
            let (_, claims) = verify(&jwt, &public_der, alg).map_err(bad)?;
            if let Some(id) = one("client_id")?
                && id != client_id
            {
                return Err(bad(format!(
                    "client_id `{id}` does not match the assertion"
                )));
            }
            if claims["iss"] != client_id.as_str() || claims["sub"] != client_id.as_str() {
                return Err(bad("iss and sub must be the client id".into()));
            }
            if claims["aud"] != s.url.as_str() {
                return Err(bad(format!(
                    "The audience {} is not this token endpoint",
                    claims["aud"]
                )));
            }
            times(&claims, now).map_err(bad)?;
            if let Some(nbf) = claims["nbf"].as_u64()
                && nbf > now + 5
            {
                return Err(bad("the assertion is not yet valid (nbf)".into()));
            }
            let jti = claims["jti"].as_str().unwrap_or("").to_string();
            if jti.is_empty() || !s.jtis.insert(jti) {
                return Err(bad("the jti is missing or was already used".into()));
            }
            check_scope(s, one("scope")?.as_deref())
        }
        Client::ServiceAccount {
            email,
            public_der,
            kid,
            subject,
        } => {
            want_grant(&grant, JWT_BEARER)?;
            let jwt = one("assertion")?.unwrap_or_default();
            s.last_assertion = Some(jwt.clone());
            let echo = if s.echo {
                format!(" (received `{jwt}`)")
            } else {
                String::new()
            };
            let bad = |d: String| (400, "invalid_grant", format!("{d}{echo}"));
            let (head, claims) = verify(&jwt, &public_der, "RS256").map_err(bad)?;
            if head["kid"] != kid.as_str() {
                return Err(bad(format!("unknown kid {}", head["kid"])));
            }
            if claims["iss"] != email.as_str() {
                return Err(bad("Invalid issuer".into()));
            }
            if claims["aud"] != s.url.as_str() {
                return Err(bad(format!("Invalid JWT audience {}", claims["aud"])));
            }
            times(&claims, now).map_err(bad)?;
            if claims["sub"].as_str() != subject.as_deref() {
                return Err((
                    401,
                    "unauthorized_client",
                    "Client is unauthorized to retrieve access tokens using this method, or \
                     client not authorized for any of the scopes requested."
                        .into(),
                ));
            }
            let scope = claims["scope"].as_str().map(str::to_string);
            check_scope(s, scope.as_deref())
        }
    }
}

fn want_grant(got: &str, want: &str) -> Result<(), Refusal> {
    if got == want {
        Ok(())
    } else {
        Err((
            400,
            "unsupported_grant_type",
            format!("grant_type `{got}` is not `{want}`"),
        ))
    }
}

fn check_scope(s: &St, got: Option<&str>) -> Result<(), Refusal> {
    match &s.scope {
        Some(want) if got != Some(want.as_str()) => Err((
            400,
            "invalid_scope",
            format!("scope {got:?} is not {want:?}"),
        )),
        _ => Ok(()),
    }
}

/// iat, exp: present, exp in the future and at most an hour after iat and after now.
fn times(claims: &Value, now: u64) -> Result<(), String> {
    let (Some(iat), Some(exp)) = (claims["iat"].as_u64(), claims["exp"].as_u64()) else {
        return Err("iat and exp are required".into());
    };
    if exp <= now {
        return Err("Token used too late: the assertion has expired".into());
    }
    if iat > now + 5 {
        return Err("Token used too early: iat is in the future".into());
    }
    if exp > now + 3600 || exp - iat > 3600 {
        return Err("Invalid JWT: exp is more than one hour away".into());
    }
    Ok(())
}

/// Split, check the header's alg, verify the signature, decode header and claims.
fn verify(jwt: &str, public_der: &[u8], alg: &str) -> Result<(Value, Value), String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, sig] = parts[..] else {
        return Err("the assertion is not a JWS compact serialization".into());
    };
    let decode = |p: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| "bad base64url".to_string())?;
        serde_json::from_slice(&bytes).map_err(|_| "bad JSON".to_string())
    };
    let head = decode(h)?;
    if head["alg"] != alg {
        return Err(format!("alg {} is not {alg}", head["alg"]));
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| "bad signature encoding".to_string())?;
    let params = if alg == "PS256" {
        &RSA_PSS_2048_8192_SHA256
    } else {
        &RSA_PKCS1_2048_8192_SHA256
    };
    UnparsedPublicKey::new(params, public_der)
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| "Invalid JWT Signature.".to_string())?;
    Ok((head, decode(c)?))
}
