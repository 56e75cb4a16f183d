//! The Vault HTTP specifics: the settings (mounts, namespace, CA file) read into an HTTP client
//! that sends `X-Vault-Token`, the `/v1/...` URLs built segment by segment (each one
//! percent-encoded, `.` and `..` refused), the requests recorded, and Vault's error bodies
//! (`{"errors":[…]}`, Go multierror wrapping removed) made readable.

use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use super::VaultProvider;
use crate::providers::kit::http::{HttpClient, HttpResponse, Request, RetryPolicy};
use crate::providers::{CallCtx, ProviderError, RequestRecord, SystemConfig};

const FORBIDDEN_HINT: &str = "Vault said permission denied: the token's policies do not allow \
    this call (Vault answers 403 to a missing policy and to an invalid or expired token alike); \
    see the vault kind's policy in runbooks/README.md";

fn string_setting(cfg: &SystemConfig, name: &str) -> anyhow::Result<Option<String>> {
    match cfg.settings.get(name) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => anyhow::bail!(
            "system `{}`: {name} must be a string, not {}",
            cfg.name,
            other.type_str()
        ),
    }
}

/// `team/db` → `["team", "db"]`; refuses empty, `.` and `..` segments and control characters.
pub fn split_path(s: &str) -> Result<Vec<String>, String> {
    if s.is_empty() {
        return Err("an empty path".into());
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{s:?} contains control characters"));
    }
    s.split('/')
        .map(|seg| match seg {
            "" => Err(format!(
                "{s:?} has an empty segment (`//` or a leading/trailing `/`)"
            )),
            "." | ".." => Err(format!("{s:?} has a `{seg}` segment")),
            _ => Ok(seg.to_string()),
        })
        .collect()
}

impl VaultProvider {
    /// Build from the system's configuration. No network I/O (reads `ca_file` if set); works
    /// without a token (planning).
    pub fn new(cfg: &SystemConfig) -> anyhow::Result<VaultProvider> {
        let mount = |name: &str, default: &str| -> anyhow::Result<Vec<String>> {
            let raw = string_setting(cfg, name)?.unwrap_or_else(|| default.to_string());
            split_path(raw.trim_matches('/'))
                .map_err(|e| anyhow::anyhow!("system `{}`: {name}: {e}", cfg.name))
        };
        let kv_mount = mount("kv_mount", "secret")?;
        let userpass_mount = mount("userpass_mount", "userpass")?;
        let mut http = HttpClient::new(cfg)?
            .with_accept("application/json")
            .with_token_header("x-vault-token")
            .with_forbidden_hint(FORBIDDEN_HINT)
            .with_error_parser(vault_error_message);
        if let Some(ns) = string_setting(cfg, "namespace")? {
            let ns = ns.trim_matches('/');
            if ns.is_empty() {
                anyhow::bail!("system `{}`: namespace is empty", cfg.name);
            }
            http = http.with_header("x-vault-namespace", ns)?;
        }
        if let Some(ca) = string_setting(cfg, "ca_file")? {
            http = http.with_ca_file(std::path::Path::new(&ca))?;
        }
        let api = if http
            .base_url()
            .path()
            .trim_end_matches('/')
            .ends_with("/v1")
        {
            Vec::new()
        } else {
            vec!["v1".to_string()]
        };
        Ok(VaultProvider {
            http,
            system: cfg.name.clone(),
            api,
            kv_mount,
            userpass_mount,
        })
    }

    /// Replace the retry policy (tests use tiny budgets).
    pub fn with_retry(mut self, retry: RetryPolicy) -> VaultProvider {
        self.http = self.http.with_retry(retry);
        self
    }

    pub(super) fn url(&self, parts: &[&[String]]) -> Result<Url, ProviderError> {
        let segs: Vec<&str> = self
            .api
            .iter()
            .chain(parts.iter().flat_map(|p| p.iter()))
            .map(String::as_str)
            .collect();
        self.http.endpoint(&segs)
    }

    pub(super) fn s(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|p| p.to_string()).collect()
    }

    pub(super) fn data_url(&self, path: &[String]) -> Result<Url, ProviderError> {
        self.url(&[&self.kv_mount, &Self::s(&["data"]), path])
    }

    pub(super) fn metadata_url(&self, path: &[String]) -> Result<Url, ProviderError> {
        self.url(&[&self.kv_mount, &Self::s(&["metadata"]), path])
    }

    pub(super) fn user_url(&self, login: &str) -> Result<Url, ProviderError> {
        self.url(&[
            &Self::s(&["auth"]),
            &self.userpass_mount,
            &Self::s(&["users", login]),
        ])
    }

    pub(super) fn prefix_url(&self, login: &str) -> Result<Url, ProviderError> {
        self.url(&[
            &Self::s(&["sys", "leases", "revoke-prefix", "auth"]),
            &self.userpass_mount,
            &Self::s(&["login", login]),
        ])
    }

    pub(super) fn perm(&self, msg: impl std::fmt::Display) -> ProviderError {
        ProviderError::Permanent(format!("system `{}`: {msg}", self.system))
    }

    pub(super) fn bad_answer(&self, resp: &HttpResponse, what: &str) -> ProviderError {
        let path = Url::parse(&resp.record.url)
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        self.perm(format!("{} {path} answered {what}", resp.record.method))
    }

    /// A 404 with a message (rather than Vault's bare `{"errors":[]}`) means the route itself is
    /// missing, e.g. nothing is mounted at the configured path: that is not "not found".
    pub(super) fn ensure_route(
        &self,
        resp: &HttpResponse,
        setting: &str,
    ) -> Result<(), ProviderError> {
        if resp.status != StatusCode::NOT_FOUND {
            return Ok(());
        }
        match vault_error_message(&resp.body) {
            None => Ok(()),
            Some(m) => Err(self.bad_answer(
                resp,
                &format!("404 {m}: is the mount path right (setting {setting})?"),
            )),
        }
    }

    pub(super) async fn send(
        &self,
        req: Request,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<HttpResponse, ProviderError> {
        let resp = self.http.send(req, ctx).await?;
        records.push(resp.record.clone());
        Ok(resp)
    }

    pub(super) fn unknown_action(&self, action: &str) -> ProviderError {
        self.perm(format!("the vault kind has no action `{action}`"))
    }
}

/// Go's multierror heading: `1 error occurred:` / `2 errors occurred:`.
fn is_multierror_header(l: &str) -> bool {
    l.ends_with("occurred:") && l.contains(" error")
}

/// The messages of a Vault error body `{"errors":["…"]}`, Go multierror wrapping removed.
/// `None` for `{"errors":[]}` (Vault's bare 404).
pub fn vault_error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let errs = v.get("errors")?.as_array()?;
    let msgs: Vec<String> = errs
        .iter()
        .filter_map(Value::as_str)
        .flat_map(|e| {
            e.lines()
                .map(|l| l.trim().trim_start_matches("* ").trim().to_string())
                .filter(|l| !l.is_empty() && !is_multierror_header(l))
                .collect::<Vec<_>>()
        })
        .collect();
    if msgs.is_empty() {
        None
    } else {
        Some(msgs.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::vault::tests::cfg;
    use crate::providers::{Provider, StepCall};

    #[test]
    fn errors_read_well() {
        assert_eq!(
            vault_error_message(br#"{"errors":["permission denied"]}"#).as_deref(),
            Some("permission denied")
        );
        assert_eq!(
            vault_error_message(br#"{"errors":["1 error occurred:\n\t* invalid accessor\n\n"]}"#)
                .as_deref(),
            Some("invalid accessor")
        );
        assert_eq!(vault_error_message(br#"{"errors":[]}"#), None);
        assert_eq!(vault_error_message(b"nope"), None);
    }

    #[test]
    fn paths_split_and_refuse_traversal() {
        assert_eq!(split_path("team/db").unwrap(), ["team", "db"]);
        for bad in ["", "a//b", "/a", "a/", "a/../b", "./a", "a\nb"] {
            assert!(split_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut c = cfg("https://v/");
        c.settings
            .insert("kv_mount".into(), toml::Value::String("a/../b".into()));
        assert!(VaultProvider::new(&c).is_err());
        let mut c = cfg("https://v/");
        c.settings.insert(
            "ca_file".into(),
            toml::Value::String("/nonexistent/ca.pem".into()),
        );
        // Planning builds the provider without reading the CA file; the first request needs it.
        c.token = Some(secrecy::SecretString::from("t"));
        let p = VaultProvider::new(&c).expect("no I/O when building");
        let params = serde_json::Map::new();
        let call = StepCall {
            step_id: "s",
            action: "disable_entity",
            login: "alice",
            params: &params,
            account: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt
            .block_on(p.check(&call, &CallCtx::silent()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ca_file /nonexistent/ca.pem"), "{e}");
        let mut c = cfg("https://v/");
        c.settings
            .insert("namespace".into(), toml::Value::String("bad\nns".into()));
        assert!(VaultProvider::new(&c).is_err());
        let p = VaultProvider::new(&cfg("https://v/v1")).unwrap();
        assert!(p.api.is_empty());
    }
}
