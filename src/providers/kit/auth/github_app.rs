//! A GitHub App's installation token: an RS256 JWT signed with the app's private key (`iss` =
//! the app's id or client id, `iat` 60 s in the past for clock drift, `exp` 9 minutes ahead,
//! under GitHub's 10-minute limit) exchanged at `POST
//! {api}/app/installations/{installation_id}/access_tokens` (201, `{token, expires_at}`) for a
//! token that acts as the installation for about an hour. The token is cached until 5 minutes
//! before its `expires_at`, and fetched again after a 401.

use super::*;

/// How long before `expires_at` an installation token stops being used.
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

#[derive(Serialize)]
struct AppClaims<'a> {
    iat: u64,
    exp: u64,
    iss: &'a str,
}

#[derive(Deserialize)]
struct InstallationToken {
    token: String,
    expires_at: String,
}

/// A GitHub App acting as one of its installations.
pub struct GitHubApp {
    http: reqwest::Client,
    app_id: String,
    key: JwtKey,
    /// `{api}/app/installations/{installation_id}/access_tokens`.
    endpoint: Url,
    api_version: &'static str,
    cache: TokenCache,
}

impl GitHubApp {
    /// `api` is the REST API root (`https://api.github.com`, or `https://host/api/v3` on
    /// GitHub Enterprise Server); `private_key` the app's PEM key, kept secret.
    pub fn new(
        http: reqwest::Client,
        api: &Url,
        app_id: &str,
        installation_id: u64,
        private_key: &SecretString,
        api_version: &'static str,
    ) -> Result<GitHubApp, AuthError> {
        let key = JwtKey::rsa_pem(private_key).map_err(|_| {
            AuthError::BadConfig(
                "`private_key` is not the GitHub App's PEM private key (BEGIN RSA PRIVATE KEY)"
                    .to_string(),
            )
        })?;
        if app_id.trim().is_empty() {
            return Err(AuthError::BadConfig("`app_id` is empty".to_string()));
        }
        let raw = format!(
            "{}/app/installations/{installation_id}/access_tokens",
            api.as_str().trim_end_matches('/')
        );
        Ok(GitHubApp {
            http,
            app_id: app_id.trim().to_string(),
            key,
            endpoint: token_endpoint(&raw)?,
            api_version,
            cache: TokenCache::new(),
        })
    }

    async fn fetch(&self) -> Result<Granted, AuthError> {
        let now = now_secs();
        let jwt = self.key.sign(&AppClaims {
            iat: now.saturating_sub(60),
            exp: now + 540,
            iss: &self.app_id,
        })?;
        let bearer = sensitive(
            &format!("Bearer {}", jwt.expose_secret()),
            "the app's signed JWT",
        )?;
        let endpoint = shown(&self.endpoint);
        let secrets = [jwt.expose_secret()];
        let resp = self
            .http
            .post(self.endpoint.clone())
            .header(header::AUTHORIZATION, bearer)
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", self.api_version)
            .send()
            .await
            .map_err(|e| {
                AuthError::Unavailable(format!(
                    "cannot get an installation token from {endpoint}: {}",
                    redact(&chain(&e.without_url()), &secrets)
                ))
            })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| {
            AuthError::Unavailable(format!(
                "{endpoint} broke off its answer: {}",
                redact(&chain(&e.without_url()), &secrets)
            ))
        })?;
        if !status.is_success() {
            let message = redact(&github_message(&bytes), &secrets);
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                return Err(AuthError::Unavailable(format!(
                    "{endpoint} answered {status}: {message}"
                )));
            }
            return Err(AuthError::Rejected {
                endpoint,
                status: status.as_u16(),
                message,
            });
        }
        let rejected = |why: &str| AuthError::Rejected {
            endpoint: endpoint.clone(),
            status: status.as_u16(),
            message: why.to_string(),
        };
        let t: InstallationToken = serde_json::from_slice(&bytes).map_err(|_| {
            rejected("the answer is not an installation token ({token, expires_at})")
        })?;
        if t.token.is_empty() {
            return Err(rejected("GitHub issued an empty installation token"));
        }
        let expires = chrono::DateTime::parse_from_rfc3339(&t.expires_at)
            .map_err(|_| rejected("`expires_at` is not an ISO 8601 time"))?;
        let left = SystemTime::from(expires.with_timezone(&chrono::Utc))
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        // The cache stops REFRESH_SKEW before the life it is given: stop EXPIRY_MARGIN before
        // `expires_at`.
        let life = (left + REFRESH_SKEW).saturating_sub(EXPIRY_MARGIN);
        Ok(Granted {
            access_token: SecretString::from(t.token),
            life,
        })
    }
}

/// GitHub's `message` (and `documentation_url`), else an excerpt.
fn github_message(bytes: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(m) = v.get("message").and_then(|m| m.as_str())
    {
        return match v.get("documentation_url").and_then(|d| d.as_str()) {
            Some(d) => format!("{m} ({d})"),
            None => m.to_string(),
        };
    }
    error_message(bytes)
}

impl fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GitHubApp({})", self.describe())
    }
}

#[async_trait]
impl Auth for GitHubApp {
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
        format!(
            "GitHub App {} installation token from {}",
            self.app_id,
            shown(&self.endpoint)
        )
    }
}
