//! A system's `auth` table: which of the kit's sources authorises its requests, as a runbook
//! writes it and as a provider gets it.
//!
//! One declaration, [`AuthSpec`], serves both. With `S` the runbook's secret reference it is
//! what `runbook check` reads and what the JSON Schema publishes (serde + schemars); once every
//! reference is read ([`AuthSpec::try_map`]) it is an [`AuthConfig`] on
//! [`SystemConfig::auth`], and [`for_system`] turns it into the `Arc<dyn Auth>` the request
//! path sends with. A kind accepts the table by listing [`SETTING`] among its settings.
//!
//! ```toml
//! auth = { bearer = { env = "ACME_TOKEN" } }
//! auth = { header = { name = "X-Api-Key", value = { env = "ACME_KEY" } } }
//! auth = { basic = { username = "svc-offboard", password = { env = "ACME_PW" } } }
//! [systems.acme.auth.oauth2]
//! token_url = "https://login.example/oauth2/token"
//! client_id = "0f6c…"
//! client_secret = { env = "ACME_CLIENT_SECRET" }   # or private_key = { file = "key.pem" }
//! [systems.acme.auth.google]
//! service_account = { file = "sa.json" }
//! subject = "admin@corp.example"
//! scopes = ["https://www.googleapis.com/auth/admin.directory.user"]
//! ```

use std::sync::Arc;

use reqwest::header;
use schemars::JsonSchema;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{Auth, AuthError, Basic, ClientAuth, ClientCredentials, GoogleServiceAccount};
use super::{JwtKey, StaticToken};
use crate::providers::{SettingSpec, SettingType, SystemConfig};

/// The setting a kind lists to accept `auth` (in place of `token`, which stays accepted and
/// means `auth = { bearer = … }`).
pub const SETTING: SettingSpec = SettingSpec {
    name: "auth",
    ty: SettingType::Auth,
    required: false,
    summary: "how requests are authorised, instead of `token`: exactly one of `bearer`, \
              `header`, `basic`, `oauth2` (client credentials) or `google` (service account); \
              every secret in it by reference (see Authentication)",
};

/// The `auth` table. `S` is a secret: a reference in the runbook, the value once resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[schemars(
    rename = "Auth",
    description = "How the system's requests are authorised, instead of `token`: exactly one of \
                   `bearer`, `header`, `basic`, `oauth2` (client credentials) or `google` (a \
                   service account). Every secret in it is a reference."
)]
pub enum AuthSpec<S> {
    /// `Authorization: Bearer <secret>`; what `token = { … }` means.
    Bearer(S),
    /// The secret in a header of its own, e.g. `X-Api-Key`.
    Header(HeaderAuth<S>),
    /// HTTP Basic (RFC 7617).
    Basic(BasicAuth<S>),
    /// OAuth 2.0 client credentials (RFC 6749 §4.4): a token from `token_url`, cached and
    /// refreshed before it expires or after a 401.
    #[serde(rename = "oauth2")]
    OAuth2(OAuth2Auth<S>),
    /// A Google service account's JWT bearer grant (RFC 7523), acting as `subject` when the
    /// account has domain-wide delegation.
    Google(GoogleAuth<S>),
}

/// A header token: `<name>: <value>`, or `<name>: <scheme> <value>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "HeaderAuth")]
pub struct HeaderAuth<S> {
    /// The header, e.g. `X-Api-Key` (or `Authorization` with a `scheme`).
    #[schemars(regex(pattern = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"))]
    pub name: String,
    /// A word sent before the secret, e.g. `Token` or `SSWS` (default: none, the bare secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"))]
    pub scheme: Option<String>,
    /// The secret, by reference.
    pub value: S,
}

/// HTTP Basic credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "BasicAuth")]
pub struct BasicAuth<S> {
    /// The user name (no `:`, which HTTP Basic cannot carry).
    #[schemars(regex(pattern = r"^[^:]+$"))]
    pub username: String,
    /// The password, by reference.
    pub password: S,
}

/// How a client secret goes to the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretIn {
    /// In the form body (`client_secret_post`).
    #[default]
    Post,
    /// As HTTP Basic (`client_secret_basic`).
    Basic,
}

/// What a token endpoint URL must look like: https, or http to this machine.
pub const TOKEN_URL_PATTERN: &str =
    r"^(https://[^/?#\s@]|http://(localhost|127(\.[0-9]{1,3}){3}|\[::1\])(:[0-9]{1,5})?([/?#]|$))";

/// OAuth 2.0 client credentials: the client proves itself with `client_secret` or, for
/// `private_key_jwt`, with a JWT signed by `private_key`. Exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "OAuth2Auth")]
#[schemars(extend("oneOf" = [
    {
        "title": "client secret",
        "required": ["client_secret"],
        "properties": { "private_key": false, "key_id": false }
    },
    {
        "title": "private_key_jwt",
        "required": ["private_key"],
        "properties": { "client_secret": false, "client_auth": false }
    }
]))]
pub struct OAuth2Auth<S> {
    /// The token endpoint, `https://` (plain `http://` only to this machine).
    #[schemars(regex(pattern = TOKEN_URL_PATTERN))]
    pub token_url: String,
    /// The client (application) id.
    #[schemars(regex(pattern = r"\S"))]
    pub client_id: String,
    /// The scopes to ask for, e.g. `["https://graph.microsoft.com/.default"]` (default none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Sent as `audience` with the token request (Auth0 and some others need it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The client secret, by reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<S>,
    /// How the client secret is sent: `post` (in the form body, the default) or `basic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<SecretIn>,
    /// The client's RSA private key (PEM, the whole file), by reference: `private_key_jwt`,
    /// an RS256 client assertion instead of a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<S>,
    /// The key's id, sent as the assertion's `kid` (some endpoints need it to find the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// A Google service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "GoogleAuth")]
pub struct GoogleAuth<S> {
    /// The service account's JSON key file (the whole file), by reference.
    pub service_account: S,
    /// The Workspace user to act as (domain-wide delegation; the Admin SDK needs an admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"\S"))]
    pub subject: Option<String>,
    /// The scopes to ask for, e.g. `["https://www.googleapis.com/auth/admin.directory.user"]`.
    #[schemars(length(min = 1))]
    pub scopes: Vec<String>,
}

/// The `auth` table with every secret read.
pub type AuthConfig = AuthSpec<SecretString>;

/// Where a secret sits in the table, and how much of a file it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretSlot {
    /// E.g. `auth.oauth2.client_secret`.
    pub path: &'static str,
    /// The whole file (a PEM key, a JSON key file), not only its first line.
    pub document: bool,
}

impl SecretSlot {
    const fn line(path: &'static str) -> SecretSlot {
        SecretSlot {
            path,
            document: false,
        }
    }

    const fn document(path: &'static str) -> SecretSlot {
        SecretSlot {
            path,
            document: true,
        }
    }
}

impl<S> AuthSpec<S> {
    /// The type's name in the table (`bearer`, `oauth2`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            AuthSpec::Bearer(_) => "bearer",
            AuthSpec::Header(_) => "header",
            AuthSpec::Basic(_) => "basic",
            AuthSpec::OAuth2(_) => "oauth2",
            AuthSpec::Google(_) => "google",
        }
    }

    /// The same table with each secret replaced by what `f` makes of it (the engine reads each
    /// reference this way, in the order they are written, stopping at the first failure).
    pub fn try_map<T, E>(
        &self,
        mut f: impl FnMut(SecretSlot, &S) -> Result<T, E>,
    ) -> Result<AuthSpec<T>, E> {
        Ok(match self {
            AuthSpec::Bearer(s) => AuthSpec::Bearer(f(SecretSlot::line("auth.bearer"), s)?),
            AuthSpec::Header(h) => AuthSpec::Header(HeaderAuth {
                name: h.name.clone(),
                scheme: h.scheme.clone(),
                value: f(SecretSlot::line("auth.header.value"), &h.value)?,
            }),
            AuthSpec::Basic(b) => AuthSpec::Basic(BasicAuth {
                username: b.username.clone(),
                password: f(SecretSlot::line("auth.basic.password"), &b.password)?,
            }),
            AuthSpec::OAuth2(o) => AuthSpec::OAuth2(OAuth2Auth {
                token_url: o.token_url.clone(),
                client_id: o.client_id.clone(),
                scopes: o.scopes.clone(),
                audience: o.audience.clone(),
                client_secret: o
                    .client_secret
                    .as_ref()
                    .map(|s| f(SecretSlot::line("auth.oauth2.client_secret"), s))
                    .transpose()?,
                client_auth: o.client_auth,
                private_key: o
                    .private_key
                    .as_ref()
                    .map(|s| f(SecretSlot::document("auth.oauth2.private_key"), s))
                    .transpose()?,
                key_id: o.key_id.clone(),
            }),
            AuthSpec::Google(g) => AuthSpec::Google(GoogleAuth {
                service_account: f(
                    SecretSlot::document("auth.google.service_account"),
                    &g.service_account,
                )?,
                subject: g.subject.clone(),
                scopes: g.scopes.clone(),
            }),
        })
    }

    /// The secrets a server could echo back as they are (tokens, passwords, client secrets),
    /// for the request path to cut out of error text; not the keys, which are never sent.
    pub fn echoable_secrets(&self) -> Vec<&S> {
        match self {
            AuthSpec::Bearer(s) => vec![s],
            AuthSpec::Header(h) => vec![&h.value],
            AuthSpec::Basic(b) => vec![&b.password],
            AuthSpec::OAuth2(o) => o.client_secret.iter().collect(),
            AuthSpec::Google(_) => Vec::new(),
        }
    }
}

/// What authorises `cfg`'s requests: its `auth` table, else its `token` as a bearer token,
/// else nothing (planning, or a kind with no credentials). No I/O: a token endpoint is first
/// asked when a request needs a token. A table the kit cannot use (a key that does not parse,
/// a token endpoint over plain HTTP to another machine) is an error naming the system, never
/// a secret.
pub fn for_system(cfg: &SystemConfig) -> anyhow::Result<Option<Arc<dyn Auth>>> {
    let built = match (&cfg.auth, &cfg.token) {
        (Some(auth), _) => build(auth, cfg).map(Some),
        (None, Some(token)) => {
            StaticToken::bearer(token).map(|t| Some(Arc::new(t) as Arc<dyn Auth>))
        }
        (None, None) => Ok(None),
    };
    built.map_err(|e| {
        let which = cfg.auth.as_ref().map_or("token", |a| a.type_name());
        let which = if which == "token" {
            "`token`".to_string()
        } else {
            format!("`auth.{which}`")
        };
        anyhow::anyhow!("system `{}`: {which}: {e}", cfg.name)
    })
}

fn build(auth: &AuthConfig, cfg: &SystemConfig) -> Result<Arc<dyn Auth>, AuthError> {
    Ok(match auth {
        AuthSpec::Bearer(token) => Arc::new(StaticToken::bearer(token)?),
        AuthSpec::Header(h) => match &h.scheme {
            Some(scheme) if h.name.eq_ignore_ascii_case(header::AUTHORIZATION.as_str()) => {
                Arc::new(StaticToken::scheme(scheme, &h.value)?)
            }
            Some(scheme) => {
                let value = format!("{scheme} {}", h.value.expose_secret());
                Arc::new(StaticToken::header(&h.name, &SecretString::from(value))?)
            }
            None => Arc::new(StaticToken::header(&h.name, &h.value)?),
        },
        AuthSpec::Basic(b) => Arc::new(Basic::new(&b.username, &b.password)?),
        AuthSpec::OAuth2(o) => {
            let client = match (&o.client_secret, &o.private_key) {
                (Some(secret), None) => match o.client_auth.unwrap_or_default() {
                    SecretIn::Post => ClientAuth::SecretPost(secret.clone()),
                    SecretIn::Basic => ClientAuth::SecretBasic(secret.clone()),
                },
                (None, Some(pem)) => {
                    let key = JwtKey::rsa_pem(pem)?;
                    ClientAuth::PrivateKeyJwt(match &o.key_id {
                        Some(kid) => key.with_kid(kid.clone()),
                        None => key,
                    })
                }
                _ => {
                    return Err(AuthError::BadConfig(
                        "needs exactly one of `client_secret` or `private_key`".to_string(),
                    ));
                }
            };
            let mut creds =
                ClientCredentials::new(token_client(cfg)?, &o.token_url, &o.client_id, client)?
                    .with_scopes(o.scopes.iter().cloned());
            if let Some(audience) = &o.audience {
                creds = creds.with_audience(audience.clone());
            }
            Arc::new(creds)
        }
        AuthSpec::Google(g) => {
            let scopes: Vec<&str> = g.scopes.iter().map(String::as_str).collect();
            Arc::new(GoogleServiceAccount::from_json(
                token_client(cfg)?,
                &g.service_account,
                &scopes,
                g.subject.as_deref(),
            )?)
        }
    })
}

/// The client token requests go out on: the system's timeout, no redirects (a token endpoint
/// that redirects is misconfigured, and the form carries the secret).
pub fn token_client(cfg: &SystemConfig) -> Result<reqwest::Client, AuthError> {
    reqwest::Client::builder()
        .user_agent(concat!("offboard/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(cfg.timeout)
        .timeout(cfg.timeout)
        .build()
        .map_err(|e| AuthError::BadConfig(format!("building the token client: {e}")))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::Engine;
    use serde_json::json;

    use super::*;
    use crate::providers::kit::fake_token::{Client, FakeToken, KEY};

    const SECRET: &str = "cs-config-7Qx-secret";

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    fn cfg(auth: Option<AuthConfig>) -> SystemConfig {
        SystemConfig {
            auth,
            timeout: Duration::from_secs(10),
            ..SystemConfig::new("acme", "scim", Some("https://api.acme.example"))
        }
    }

    fn built(auth: AuthConfig) -> Arc<dyn Auth> {
        for_system(&cfg(Some(auth))).unwrap().expect("an auth")
    }

    /// The header each static table sends, marked sensitive, and a description without it.
    async fn sends(auth: AuthConfig) -> (String, String) {
        let a = built(auth);
        let (name, value) = a.header().await.unwrap();
        assert!(value.is_sensitive());
        let shown = format!("{a:?} {}", a.describe());
        assert!(!shown.contains(SECRET), "{shown}");
        (name.to_string(), value.to_str().unwrap().to_string())
    }

    #[tokio::test]
    async fn static_tables_send_what_they_say() {
        assert_eq!(
            sends(AuthSpec::Bearer(secret(SECRET))).await,
            ("authorization".into(), format!("Bearer {SECRET}"))
        );
        let header = |name: &str, scheme: Option<&str>| {
            AuthSpec::Header(HeaderAuth {
                name: name.into(),
                scheme: scheme.map(str::to_string),
                value: secret(SECRET),
            })
        };
        assert_eq!(
            sends(header("X-Api-Key", None)).await,
            ("x-api-key".into(), SECRET.into())
        );
        assert_eq!(
            sends(header("Authorization", Some("SSWS"))).await,
            ("authorization".into(), format!("SSWS {SECRET}"))
        );
        assert_eq!(
            sends(header("X-Auth", Some("Token"))).await,
            ("x-auth".into(), format!("Token {SECRET}"))
        );
        let (name, value) = sends(AuthSpec::Basic(BasicAuth {
            username: "svc-offboard".into(),
            password: secret(SECRET),
        }))
        .await;
        assert_eq!(name, "authorization");
        let pair =
            base64::engine::general_purpose::STANDARD.encode(format!("svc-offboard:{SECRET}"));
        assert_eq!(value, format!("Basic {pair}"));
    }

    #[tokio::test]
    async fn token_is_a_bearer_token_and_nothing_is_none() {
        let with_token = cfg(None).with_token(SECRET);
        let a = for_system(&with_token).unwrap().unwrap();
        assert_eq!(
            a.header().await.unwrap().1.to_str().unwrap(),
            format!("Bearer {SECRET}")
        );
        assert!(for_system(&cfg(None)).unwrap().is_none());
    }

    fn oauth2(token_url: &str) -> OAuth2Auth<SecretString> {
        OAuth2Auth {
            token_url: token_url.into(),
            client_id: "offboard-app".into(),
            scopes: vec!["scim.write".into(), "scim.read".into()],
            audience: None,
            client_secret: Some(secret(SECRET)),
            client_auth: None,
            private_key: None,
            key_id: None,
        }
    }

    /// `oauth2` with a client secret (in the body or as Basic) and with a private key
    /// (`private_key_jwt`, `kid` from `key_id`): each gets a token the endpoint issued.
    #[tokio::test]
    async fn oauth2_gets_a_token_with_a_secret_or_a_private_key() {
        for (basic, how) in [
            (false, None),
            (false, Some(SecretIn::Post)),
            (true, Some(SecretIn::Basic)),
        ] {
            let fake = FakeToken::start(Client::Secret {
                client_id: "offboard-app".into(),
                secret: SECRET.into(),
                basic,
            })
            .await;
            fake.expect_scope("scim.write scim.read");
            let a = built(AuthSpec::OAuth2(OAuth2Auth {
                client_auth: how,
                ..oauth2(&fake.url)
            }));
            assert!(a.refreshable());
            let (_, v) = a.header().await.unwrap_or_else(|e| panic!("{how:?}: {e}"));
            assert_eq!(v.to_str().unwrap(), format!("Bearer {}", fake.issued()[0]));
        }

        let fake = FakeToken::start(Client::Assertion {
            client_id: "offboard-app".into(),
            public_der: KEY.public_der.clone(),
            pss: false,
        })
        .await;
        fake.require_param("audience", "https://api.acme.example");
        let a = built(AuthSpec::OAuth2(OAuth2Auth {
            client_secret: None,
            private_key: Some(KEY.secret_pem()),
            key_id: Some("k-2026".into()),
            audience: Some("https://api.acme.example".into()),
            scopes: Vec::new(),
            ..oauth2(&fake.url)
        }));
        let (_, v) = a.header().await.unwrap();
        assert_eq!(v.to_str().unwrap(), format!("Bearer {}", fake.issued()[0]));
        let jwt = fake.last_assertion().unwrap();
        let head = jwt.split('.').next().unwrap();
        let head: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(head)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(head["kid"], "k-2026");
        assert_eq!(head["alg"], "RS256");
    }

    #[tokio::test]
    async fn google_acts_as_the_subject() {
        let fake = FakeToken::start(Client::ServiceAccount {
            email: "offboard@corp.iam.gserviceaccount.com".into(),
            public_der: KEY.public_der.clone(),
            kid: "kid-1".into(),
            subject: Some("admin@corp.example".into()),
        })
        .await;
        let key = json!({
            "type": "service_account",
            "private_key_id": "kid-1",
            "private_key": KEY.private_pem,
            "client_email": "offboard@corp.iam.gserviceaccount.com",
            "token_uri": fake.url,
        });
        let a = built(AuthSpec::Google(GoogleAuth {
            service_account: secret(&key.to_string()),
            subject: Some("admin@corp.example".into()),
            scopes: vec!["https://www.googleapis.com/auth/admin.directory.user".into()],
        }));
        let (_, v) = a.header().await.unwrap();
        assert_eq!(v.to_str().unwrap(), format!("Bearer {}", fake.issued()[0]));
        assert!(a.describe().contains("acting as admin@corp.example"));
    }

    /// What the kit cannot use is an error naming the system and the table, never a secret.
    #[test]
    fn unusable_tables_are_errors_without_the_secret() {
        let pem_line = KEY.private_pem.lines().nth(2).unwrap();
        let broken_pem = KEY
            .private_pem
            .replace(KEY.private_pem.lines().nth(1).unwrap(), "AAAA");
        let cases = [
            (
                AuthSpec::OAuth2(OAuth2Auth {
                    client_secret: None,
                    private_key: Some(secret(&broken_pem)),
                    ..oauth2("https://login.example/token")
                }),
                "system `acme`: `auth.oauth2`: the private key",
            ),
            (
                AuthSpec::OAuth2(oauth2("http://login.example.com/token")),
                "system `acme`: `auth.oauth2`: refusing to send credentials over plain HTTP",
            ),
            (
                AuthSpec::Bearer(secret(&format!("{SECRET}\n"))),
                "system `acme`: `auth.bearer`: the token contains characters not allowed",
            ),
            (
                AuthSpec::Google(GoogleAuth {
                    service_account: secret(&format!("{{\"private_key\": \"{SECRET}\"")),
                    subject: None,
                    scopes: vec!["s".into()],
                }),
                "system `acme`: `auth.google`: the service-account key is not",
            ),
        ];
        for (auth, want) in cases {
            let e = format!("{:#}", for_system(&cfg(Some(auth))).expect_err("an error"));
            assert!(e.starts_with(want), "{e}");
            assert!(!e.contains(SECRET) && !e.contains(pem_line), "{e}");
        }
        let e = for_system(&cfg(None).with_token("a\nb")).expect_err("an error");
        assert!(format!("{e}").starts_with("system `acme`: `token`:"), "{e}");
    }

    /// Each secret of a table is named by its place, and the keys are read as whole files.
    #[test]
    fn try_map_names_each_secret() {
        let seen = |auth: AuthSpec<&str>| {
            let mut slots = Vec::new();
            auth.try_map(|slot, s| {
                slots.push((slot.path, slot.document, s.to_string()));
                Ok::<_, ()>(s.len())
            })
            .unwrap();
            slots
        };
        assert_eq!(
            seen(AuthSpec::Bearer("t")),
            [("auth.bearer", false, "t".into())]
        );
        assert_eq!(
            seen(AuthSpec::OAuth2(OAuth2Auth {
                token_url: "u".into(),
                client_id: "c".into(),
                scopes: Vec::new(),
                audience: None,
                client_secret: None,
                client_auth: None,
                private_key: Some("k"),
                key_id: None,
            })),
            [("auth.oauth2.private_key", true, "k".into())]
        );
        assert_eq!(
            seen(AuthSpec::Google(GoogleAuth {
                service_account: "sa",
                subject: None,
                scopes: Vec::new(),
            })),
            [("auth.google.service_account", true, "sa".into())]
        );
        assert_eq!(
            seen(AuthSpec::Basic(BasicAuth {
                username: "u".into(),
                password: "p",
            })),
            [("auth.basic.password", false, "p".into())]
        );
        let failed = AuthSpec::Header(HeaderAuth {
            name: "X".into(),
            scheme: None,
            value: "v",
        })
        .try_map(|slot, _| Err::<(), _>(slot.path));
        assert_eq!(failed.unwrap_err(), "auth.header.value");
    }
}
