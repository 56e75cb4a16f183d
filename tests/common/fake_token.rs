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

struct State {
    client_id: String,
    secret: String,
    access_token: String,
    scope: Option<String>,
    issued: u32,
    refused: u32,
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
    if let Some(want) = s.scope.clone()
        && scope != Some(want.as_str())
    {
        let msg = format!("scope {scope:?} is not granted; ask for `{want}`");
        return refuse(&mut s, error(400, "invalid_scope", &msg));
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
        }));
        let st = state.clone();
        let routes = Routes::new().route("POST", PATH, move |r| token(&st, r));
        let server = FakeServer::start(routes).await;
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
        FakeLogin {
            login_url: server.base_url.clone(),
            server,
            tenants: map,
        }
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
