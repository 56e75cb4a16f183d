//! A fake OAuth 2.0 token endpoint for the client credentials grant (RFC 6749 §4.4), on the
//! fake-server kit, checking what a real one checks: a POST with a form-encoded body,
//! `grant_type=client_credentials`, the client authenticated exactly once — `client_id` and
//! `client_secret` in the body, or HTTP Basic with each part form-encoded first (§2.3.1) — and
//! the scope when one is required. It answers §5.1 tokens (`no-store`) and §5.2 errors:
//! `invalid_client` (401) for an unknown client or a wrong secret, `unsupported_grant_type`,
//! `invalid_scope` and `invalid_request` (400).
//!
//! It issues one fixed access token, so a fake API can be started to accept exactly that token
//! and nothing else: a request that reaches the API authorised got its token from here.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::fake_kit::{FakeServer, Recorded, Reply, Req, Routes};

pub const PATH: &str = "/oauth2/v2.0/token";
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct State {
    client_id: String,
    secret: String,
    access_token: String,
    scope: Option<String>,
    issued: u32,
    refused: u32,
    /// A registered certificate: the client may instead sign an assertion with its key.
    certificate: Option<Certificate>,
    /// This endpoint's own URL, the `aud` an assertion must carry.
    url: String,
}

/// A certificate registered for the client: its public key (PKCS#1 DER) and the SHA-256
/// thumbprint of its DER, base64url, as Entra names it (`x5t#S256`).
#[derive(Clone)]
pub struct Certificate {
    pub public_der: Vec<u8>,
    pub x5t_s256: String,
}

/// A throwaway RSA key and a "certificate" for it, made for this test run: the PEM an entra
/// system's `certificate` file holds (private key, then certificate) and what the fake
/// registers. Entra finds the certificate by the thumbprint of its DER only, so the DER here is
/// an arbitrary blob; the signature is checked against the real public key.
pub fn test_certificate() -> (String, Certificate) {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use sha2::Digest;
    let pair = KeyPair::generate(KeySize::Rsa2048).expect("generate an RSA key");
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).expect("PKCS#8");
    let pem_block = |label: &str, bytes: &[u8]| {
        let b64 = STANDARD.encode(bytes);
        let mut out = format!("-----BEGIN {label}-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    };
    let cert_der = format!("test certificate {}", rand_suffix()).into_bytes();
    let pem = pem_block("PRIVATE KEY", der.as_ref()) + &pem_block("CERTIFICATE", &cert_der);
    let cert = Certificate {
        public_der: pair.public_key().as_ref().to_vec(),
        x5t_s256: URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&cert_der)),
    };
    (pem, cert)
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Check a `private_key_jwt` client assertion as Entra does: PS256 (or RS256) over the
/// registered key, the certificate named by `x5t#S256`, `aud` this endpoint, `iss` = `sub` =
/// the client, not expired and not valid for more than an hour. `Err` is Entra's wording.
fn check_assertion(s: &State, jwt: &str) -> Result<(), String> {
    use aws_lc_rs::signature::{
        RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey,
    };
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let cert = s
        .certificate
        .as_ref()
        .ok_or("AADSTS700027: no certificate is registered for the client")?;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, p, sig] = parts.as_slice() else {
        return Err("AADSTS50027: the assertion is not a JWT".into());
    };
    let decode = |part: &str| -> Result<serde_json::Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| "AADSTS50027: bad base64url".to_string())?;
        serde_json::from_slice(&bytes).map_err(|_| "AADSTS50027: bad JSON".to_string())
    };
    let (header, claims) = (decode(h)?, decode(p)?);
    if header["x5t#S256"].as_str() != Some(cert.x5t_s256.as_str()) {
        return Err("AADSTS700027: the certificate named by x5t#S256 is not registered".into());
    }
    let alg: &'static dyn aws_lc_rs::signature::VerificationAlgorithm = match header["alg"].as_str()
    {
        Some("PS256") => &RSA_PSS_2048_8192_SHA256,
        Some("RS256") => &RSA_PKCS1_2048_8192_SHA256,
        other => return Err(format!("AADSTS5002730: unsupported alg {other:?}")),
    };
    let signature = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| "AADSTS50027: bad signature encoding".to_string())?;
    UnparsedPublicKey::new(alg, &cert.public_der)
        .verify(format!("{h}.{p}").as_bytes(), &signature)
        .map_err(|_| "AADSTS700027: Client assertion failed signature validation.".to_string())?;
    let now = rand_suffix() / 1_000_000_000;
    let num = |k: &str| claims[k].as_u64().unwrap_or(0);
    if claims["aud"].as_str() != Some(s.url.as_str()) {
        return Err(format!(
            "AADSTS700016: the assertion's audience {} is not {}",
            claims["aud"], s.url
        ));
    }
    if claims["iss"].as_str() != Some(s.client_id.as_str())
        || claims["sub"].as_str() != Some(s.client_id.as_str())
    {
        return Err("AADSTS700021: iss and sub must be the client id".into());
    }
    if num("exp") <= now || num("exp") > now + 3600 + 60 {
        return Err("AADSTS700024: the assertion is expired or valid too long".into());
    }
    Ok(())
}

#[derive(Clone)]
pub struct FakeTokenEndpoint {
    /// The token endpoint's URL (`http://127.0.0.1:<port>/oauth2/v2.0/token`).
    pub url: String,
    server: FakeServer,
    state: Arc<Mutex<State>>,
}

fn error(status: u16, code: &str, description: &str) -> Reply {
    Reply::json(
        status,
        &json!({ "error": code, "error_description": description }),
    )
    .header("cache-control", "no-store")
}

/// `user:password` from a Basic header, each part form-decoded (RFC 6749 §2.3.1).
fn basic_pair(value: &str) -> Option<(String, String)> {
    let encoded = value.strip_prefix("Basic ")?;
    let raw = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, pass) = raw.split_once(':')?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((decode(user)?, decode(pass)?))
}

fn token(st: &Mutex<State>, r: &Req<'_>) -> Reply {
    let mut s = st.lock().unwrap();
    let content_type = r.header("content-type").unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        s.refused += 1;
        return error(400, "invalid_request", "the body must be form-encoded");
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(r.body).into_owned().collect();
    let field = |name: &str| {
        let mut found = form
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        match (found.next(), found.next()) {
            (Some(v), None) => Ok(Some(v)),
            (None, _) => Ok(None),
            (Some(_), Some(_)) => Err(format!("`{name}` is repeated")),
        }
    };
    let refuse = |s: &mut State, reply: Reply| {
        s.refused += 1;
        reply
    };
    let (grant, id, secret, scope) = match (
        field("grant_type"),
        field("client_id"),
        field("client_secret"),
        field("scope"),
    ) {
        (Ok(g), Ok(i), Ok(c), Ok(sc)) => (g, i, c, sc),
        (g, i, c, sc) => {
            let why = [g.err(), i.err(), c.err(), sc.err()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ");
            return refuse(&mut s, error(400, "invalid_request", &why));
        }
    };
    if grant != Some("client_credentials") {
        return refuse(
            &mut s,
            error(
                400,
                "unsupported_grant_type",
                &format!("grant_type {grant:?} is not supported"),
            ),
        );
    }
    if let Ok(Some(assertion)) = field("client_assertion") {
        if field("client_assertion_type") != Ok(Some(ASSERTION_TYPE)) || secret.is_some() {
            return refuse(
                &mut s,
                error(
                    400,
                    "invalid_request",
                    "client_assertion_type is missing or wrong, or a secret was sent too",
                ),
            );
        }
        if id.is_some_and(|i| i != s.client_id) {
            let msg = format!("client {} is not registered", id.unwrap_or_default());
            return refuse(&mut s, error(401, "invalid_client", &msg));
        }
        if let Err(why) = check_assertion(&s, assertion) {
            return refuse(&mut s, error(401, "invalid_client", &why));
        }
        return issue(&mut s, scope);
    }
    let basic = r.header("authorization").map(basic_pair);
    let (client_id, client_secret) = match (basic, secret) {
        (Some(Some(_)), Some(_)) => {
            return refuse(
                &mut s,
                error(
                    400,
                    "invalid_request",
                    "the client authenticated in more than one way",
                ),
            );
        }
        (Some(None), _) => {
            return refuse(
                &mut s,
                error(
                    401,
                    "invalid_client",
                    "the Authorization header is not Basic",
                ),
            );
        }
        (Some(Some((user, pass))), None) => {
            if id.is_some_and(|i| i != user) {
                return refuse(
                    &mut s,
                    error(
                        400,
                        "invalid_request",
                        "client_id differs from the Basic user",
                    ),
                );
            }
            (user, pass)
        }
        (None, Some(pass)) => match id {
            Some(i) => (i.to_string(), pass.to_string()),
            None => {
                return refuse(
                    &mut s,
                    error(400, "invalid_request", "client_id is missing"),
                );
            }
        },
        (None, None) => {
            return refuse(
                &mut s,
                error(401, "invalid_client", "no client authentication"),
            );
        }
    };
    if client_id != s.client_id {
        let msg = format!("client {client_id} is not registered");
        return refuse(&mut s, error(401, "invalid_client", &msg));
    }
    if client_secret != s.secret {
        return refuse(
            &mut s,
            error(
                401,
                "invalid_client",
                "Invalid client secret provided for the client.",
            ),
        );
    }
    issue(&mut s, scope)
}

/// The scope checked, then a token.
fn issue(s: &mut State, scope: Option<&str>) -> Reply {
    if let Some(want) = s.scope.clone()
        && scope != Some(want.as_str())
    {
        let msg = format!("scope {scope:?} is not granted; ask for `{want}`");
        s.refused += 1;
        return error(400, "invalid_scope", &msg);
    }
    s.issued += 1;
    Reply::json(
        200,
        &json!({
            "access_token": s.access_token,
            "token_type": "Bearer",
            "expires_in": 3599,
        }),
    )
    .header("cache-control", "no-store")
}

impl FakeTokenEndpoint {
    /// Start on 127.0.0.1 with a free port, knowing one client and issuing `access_token`.
    pub async fn start(client_id: &str, secret: &str, access_token: &str) -> FakeTokenEndpoint {
        let state = Arc::new(Mutex::new(State {
            client_id: client_id.into(),
            secret: secret.into(),
            access_token: access_token.into(),
            scope: None,
            issued: 0,
            refused: 0,
            certificate: None,
            url: String::new(),
        }));
        let st = state.clone();
        let routes = Routes::new().route("POST", PATH, move |r| token(&st, r));
        let server = FakeServer::start(routes).await;
        state.lock().unwrap().url = server.url(PATH);
        FakeTokenEndpoint {
            url: server.url(PATH),
            server,
            state,
        }
    }

    /// Start as Entra's endpoint of one tenant, `POST /{tenant}/oauth2/v2.0/token` (the
    /// tenant's GUID or domain, as `login_url/{tenant}/oauth2/v2.0/token` puts it): a request
    /// for any other tenant answers Entra's `AADSTS90002` (400 `invalid_request`). Use
    /// [`FakeTokenEndpoint::login_url`] as a system's `login_url`.
    pub async fn start_for_tenant(
        tenant: &str,
        client_id: &str,
        secret: &str,
        access_token: &str,
    ) -> FakeTokenEndpoint {
        let state = Arc::new(Mutex::new(State {
            client_id: client_id.into(),
            secret: secret.into(),
            access_token: access_token.into(),
            scope: None,
            issued: 0,
            refused: 0,
            certificate: None,
            url: String::new(),
        }));
        let st = state.clone();
        let refused = state.clone();
        let path = format!("/{tenant}{PATH}");
        let routes = Routes::new()
            .route("POST", &path, move |r| token(&st, r))
            .fallback(move |r| {
                refused.lock().unwrap().refused += 1;
                let asked = r.raw_path.split('/').nth(1).unwrap_or("");
                error(
                    400,
                    "invalid_request",
                    &format!("AADSTS90002: Tenant '{asked}' not found."),
                )
            });
        let server = FakeServer::start(routes).await;
        state.lock().unwrap().url = server.url(&path);
        FakeTokenEndpoint {
            url: server.url(&path),
            server,
            state,
        }
    }

    /// The `login_url` that reaches this endpoint (`http://127.0.0.1:<port>`).
    pub fn login_url(&self) -> String {
        self.server.base_url.clone()
    }

    /// Grant tokens only to requests asking for exactly this scope.
    pub fn expect_scope(&self, scope: &str) {
        self.state.lock().unwrap().scope = Some(scope.into());
    }

    /// Tokens issued so far.
    pub fn issued(&self) -> u32 {
        self.state.lock().unwrap().issued
    }

    /// Token requests refused so far.
    pub fn refused(&self) -> u32 {
        self.state.lock().unwrap().refused
    }

    /// Every request received (the form body as sent, `Authorization` as its scheme only).
    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }
}

/// Entra's sign-in host serving several tenants, each at `/{tenant}/oauth2/v2.0/token` with its
/// own registered client and its own access token, as `login.microsoftonline.com` does: a
/// client asking another tenant's endpoint is refused as unknown there, so a token can only
/// come from the tenant the client belongs to.
#[derive(Clone)]
pub struct FakeLogin {
    /// The sign-in host (`http://127.0.0.1:<port>`), an entra system's `login_url`.
    pub login_url: String,
    server: FakeServer,
    tenants: Arc<std::collections::BTreeMap<String, Arc<Mutex<State>>>>,
}

impl FakeLogin {
    /// Start with `(tenant, client_id, secret, access_token)` for each tenant.
    pub async fn start(tenants: &[(&str, &str, &str, &str)]) -> FakeLogin {
        let map: std::collections::BTreeMap<String, Arc<Mutex<State>>> = tenants
            .iter()
            .map(|(tenant, client_id, secret, token)| {
                let st = State {
                    client_id: (*client_id).into(),
                    secret: (*secret).into(),
                    access_token: (*token).into(),
                    scope: None,
                    issued: 0,
                    refused: 0,
                    certificate: None,
                    url: String::new(),
                };
                ((*tenant).to_string(), Arc::new(Mutex::new(st)))
            })
            .collect();
        let map = Arc::new(map);
        let m = map.clone();
        let routes = Routes::new().route("POST", "/{tenant}/oauth2/v2.0/token", move |r| {
            let tenant = r.param("tenant");
            match m.get(tenant) {
                Some(st) => token(st, r),
                None => error(
                    400,
                    "invalid_request",
                    &format!("AADSTS90002: Tenant '{tenant}' not found."),
                ),
            }
        });
        let server = FakeServer::start(routes).await;
        for (tenant, st) in map.iter() {
            st.lock().unwrap().url = format!("{}/{tenant}{PATH}", server.base_url);
        }
        FakeLogin {
            login_url: server.base_url.clone(),
            server,
            tenants: map,
        }
    }

    /// Register a certificate for `tenant`'s client: it may then sign in with a client
    /// assertion signed by the certificate's key (checked as Entra does), as well as its secret.
    pub fn register_certificate(&self, tenant: &str, cert: Certificate) {
        self.tenants[tenant].lock().unwrap().certificate = Some(cert);
    }

    /// Every tenant grants tokens only for exactly this scope.
    pub fn expect_scope(&self, scope: &str) {
        for st in self.tenants.values() {
            st.lock().unwrap().scope = Some(scope.into());
        }
    }

    /// Tokens issued by `tenant` so far.
    pub fn issued(&self, tenant: &str) -> u32 {
        self.tenants[tenant].lock().unwrap().issued
    }

    /// Token requests `tenant` refused so far.
    pub fn refused(&self, tenant: &str) -> u32 {
        self.tenants[tenant].lock().unwrap().refused
    }

    /// Every request received (the form body as sent, `Authorization` as its scheme only).
    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }
}

// ---------------------------------------------------------------------------------------------
// Google: the JWT bearer grant of a service account

/// Where a Google-style token endpoint listens (Google's is `https://oauth2.googleapis.com/token`).
pub const GOOGLE_PATH: &str = "/token";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// One token Google granted: to whom (`sub`) and for which scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleGrant {
    pub access_token: String,
    pub subject: Option<String>,
    pub scopes: Vec<String>,
}

struct GoogleState {
    client_email: String,
    kid: String,
    public_der: Vec<u8>,
    url: String,
    /// The scopes domain-wide delegation grants the client id (full URLs).
    delegated: Vec<String>,
    grants: Vec<GoogleGrant>,
    refused: u32,
}

/// A throwaway RSA key for this test run: the PKCS#8 PEM a service-account key file holds, and
/// its public key (PKCS#1 DER) for the fake to check signatures with.
pub fn test_rsa_key() -> (String, Vec<u8>) {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::KeyPair as _;
    let pair = KeyPair::generate(KeySize::Rsa2048).expect("generate an RSA key");
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).expect("PKCS#8");
    let b64 = STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    (pem, pair.public_key().as_ref().to_vec())
}

/// Google's OAuth 2.0 token endpoint for service accounts, checking what Google checks: a
/// form-encoded POST with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` and an
/// `assertion` that is an RS256 JWT signed by the registered key (header `kid` = the key's
/// id), `iss` = the service account's email, `aud` = this endpoint, `iat` not in the future,
/// `exp` after now and at most an hour after `iat`, a `scope` (space-separated), every scope
/// delegated to the client (else 401 `unauthorized_client`, Google's words), and `sub` the
/// user to act as. Each token issued remembers its subject and scopes, so a fake API can
/// refuse a token that lacks the scope or acts as the wrong user.
#[derive(Clone)]
pub struct FakeGoogleToken {
    pub url: String,
    server: FakeServer,
    state: Arc<Mutex<GoogleState>>,
}

fn google_token(st: &Mutex<GoogleState>, r: &Req<'_>) -> Reply {
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut s = st.lock().unwrap();
    let refuse = |s: &mut GoogleState, status: u16, code: &str, why: &str| {
        s.refused += 1;
        error(status, code, why)
    };
    if !r
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/x-www-form-urlencoded")
    {
        return refuse(
            &mut s,
            400,
            "invalid_request",
            "the body must be form-encoded",
        );
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(r.body).into_owned().collect();
    let field = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    if field("grant_type") != Some(JWT_BEARER) {
        return refuse(&mut s, 400, "unsupported_grant_type", "Invalid grant_type");
    }
    let Some(jwt) = field("assertion") else {
        return refuse(
            &mut s,
            400,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, p, sig] = parts.as_slice() else {
        return refuse(&mut s, 400, "invalid_grant", "Invalid JWT: not three parts");
    };
    let decode = |part: &str| -> Option<serde_json::Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
    };
    let (Some(header), Some(claims)) = (decode(h), decode(p)) else {
        return refuse(&mut s, 400, "invalid_grant", "Invalid JWT: bad encoding");
    };
    if header["alg"] != "RS256" || header["kid"].as_str() != Some(s.kid.as_str()) {
        return refuse(&mut s, 400, "invalid_grant", "Invalid JWT Signature.");
    }
    let signature = URL_SAFE_NO_PAD.decode(sig).unwrap_or_default();
    if UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &s.public_der)
        .verify(format!("{h}.{p}").as_bytes(), &signature)
        .is_err()
    {
        return refuse(&mut s, 400, "invalid_grant", "Invalid JWT Signature.");
    }
    let now = rand_suffix() / 1_000_000_000;
    let num = |k: &str| claims[k].as_u64().unwrap_or(0);
    if claims["iss"].as_str() != Some(s.client_email.as_str()) {
        return refuse(&mut s, 400, "invalid_grant", "Invalid issuer");
    }
    if claims["aud"].as_str() != Some(s.url.as_str()) {
        return refuse(
            &mut s,
            400,
            "invalid_grant",
            "Invalid JWT: aud is not the token URL",
        );
    }
    if num("iat") > now + 60 || num("exp") <= now || num("exp") > num("iat") + 3600 {
        return refuse(
            &mut s,
            400,
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        );
    }
    let scopes: Vec<String> = claims["scope"]
        .as_str()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if scopes.is_empty() {
        return refuse(
            &mut s,
            400,
            "invalid_scope",
            "Empty or missing scope not allowed.",
        );
    }
    if scopes.iter().any(|sc| !s.delegated.contains(sc)) {
        return refuse(
            &mut s,
            401,
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not \
             authorized for any of the scopes requested.",
        );
    }
    let access_token = format!(
        "ya29.fake-{}-{}",
        s.grants.len() + 1,
        rand_suffix() % 100_000
    );
    s.grants.push(GoogleGrant {
        access_token: access_token.clone(),
        subject: claims["sub"].as_str().map(str::to_string),
        scopes,
    });
    Reply::json(
        200,
        &json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": 3599 }),
    )
    .header("cache-control", "no-store")
}

impl FakeGoogleToken {
    /// Start on 127.0.0.1, knowing one service account (its email, key id and public key),
    /// with these scopes delegated (short names after `https://www.googleapis.com/auth/`).
    pub async fn start(
        client_email: &str,
        kid: &str,
        public_der: Vec<u8>,
        delegated: &[&str],
    ) -> FakeGoogleToken {
        let state = Arc::new(Mutex::new(GoogleState {
            client_email: client_email.into(),
            kid: kid.into(),
            public_der,
            url: String::new(),
            delegated: delegated
                .iter()
                .map(|s| format!("https://www.googleapis.com/auth/{s}"))
                .collect(),
            grants: Vec::new(),
            refused: 0,
        }));
        let st = state.clone();
        let routes = Routes::new().route("POST", GOOGLE_PATH, move |r| google_token(&st, r));
        let server = FakeServer::start(routes).await;
        state.lock().unwrap().url = server.url(GOOGLE_PATH);
        FakeGoogleToken {
            url: server.url(GOOGLE_PATH),
            server,
            state,
        }
    }

    /// Take a scope's delegation away (short name).
    pub fn revoke_delegation(&self, scope: &str) {
        let full = format!("https://www.googleapis.com/auth/{scope}");
        self.state.lock().unwrap().delegated.retain(|s| *s != full);
    }

    /// Every token issued, in order.
    pub fn grants(&self) -> Vec<GoogleGrant> {
        self.state.lock().unwrap().grants.clone()
    }

    /// The grant an access token came from.
    pub fn grant(&self, access_token: &str) -> Option<GoogleGrant> {
        self.state
            .lock()
            .unwrap()
            .grants
            .iter()
            .find(|g| g.access_token == access_token)
            .cloned()
    }

    pub fn refused(&self) -> u32 {
        self.state.lock().unwrap().refused
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }
}
