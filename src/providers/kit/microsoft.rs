//! What every Microsoft 365 kind shares: one system is one client tenant, reached with an
//! app registration's client credentials (a client secret, or a certificate whose key signs a
//! client assertion), and Microsoft's error bodies made readable.
//!
//! Settings (the same keys on `entra` and `exchange`): `tenant_id` (the tenant's GUID or its
//! `contoso.onmicrosoft.com` name), `client_id`, and exactly one of `client_secret` or
//! `certificate` (a PEM file holding the private key and its certificate: the assertion is
//! signed PS256 and names the certificate by its SHA-256 thumbprint, `x5t#S256`, as Entra
//! wants). `login_url` (default `https://login.microsoftonline.com`) is for national clouds and
//! tests. The token endpoint is `{login_url}/{tenant_id}/oauth2/v2.0/token` and the scope is the
//! resource's `.default` (each kind passes its own). Each system has its own token source, so
//! tokens are cached per (tenant, scope) and never cross tenants.

use std::sync::Arc;

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::auth::{Auth, ClientAuth, ClientCredentials, JwtKey};
use crate::providers::{SettingSpec, SettingType, SystemConfig};

/// Where tokens come from unless `login_url` says otherwise.
pub const LOGIN_URL: &str = "https://login.microsoftonline.com";

/// The tenant and app-registration settings of a Microsoft kind.
pub const SETTINGS: [SettingSpec; 5] = [
    SettingSpec {
        name: "tenant_id",
        ty: SettingType::String,
        required: true,
        summary: "the client tenant: its directory (tenant) id, a GUID, or its \
                  `contoso.onmicrosoft.com` name",
    },
    SettingSpec {
        name: "client_id",
        ty: SettingType::String,
        required: true,
        summary: "the application (client) id of the app registration offboard signs in as",
    },
    SettingSpec {
        name: "client_secret",
        ty: SettingType::Secret,
        required: false,
        summary: "the app registration's client secret, by reference; or use `certificate`",
    },
    SettingSpec {
        name: "certificate",
        ty: SettingType::SecretDocument,
        required: false,
        summary: "a PEM file with the private key and the certificate uploaded to the app \
                  registration (preferred over a secret), by reference: `{ file = \"…\" }`",
    },
    SettingSpec {
        name: "login_url",
        ty: SettingType::String,
        required: false,
        summary: "the Entra sign-in host (default `https://login.microsoftonline.com`; \
                  e.g. `https://login.microsoftonline.us` for US Government)",
    },
];

/// A system's tenant, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub client_id: String,
    pub login_url: String,
}

impl Tenant {
    /// Read and check the tenant settings (no I/O, no secret needed).
    pub fn from_config(cfg: &SystemConfig) -> anyhow::Result<Tenant> {
        let get = |key: &str| -> anyhow::Result<Option<String>> {
            match cfg.settings.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(other) => bail!(
                    "system `{}`: `{key}` must be a string, not {}",
                    cfg.name,
                    other.type_str()
                ),
            }
        };
        let id = get("tenant_id")?.unwrap_or_default();
        if !is_tenant(&id) {
            bail!(
                "system `{}`: `tenant_id` {id:?} is neither a GUID nor a domain name such as \
                 contoso.onmicrosoft.com",
                cfg.name
            );
        }
        let client_id = get("client_id")?.unwrap_or_default();
        if client_id.is_empty() {
            bail!("system `{}`: `client_id` is empty", cfg.name);
        }
        let login_url = get("login_url")?.unwrap_or_else(|| LOGIN_URL.to_string());
        let parsed = url::Url::parse(&login_url)
            .with_context(|| format!("system `{}`: `login_url` is not a URL", cfg.name))?;
        if parsed.scheme() != "https" && !super::http::is_loopback(&parsed) {
            bail!(
                "system `{}`: `login_url` must be https (the client secret goes there)",
                cfg.name
            );
        }
        Ok(Tenant {
            id,
            client_id,
            login_url: login_url.trim_end_matches('/').to_string(),
        })
    }

    /// `{login_url}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.login_url,
            super::http::encode_component(&self.id)
        )
    }
}

/// A GUID in its 8-4-4-4-12 text form (a tenant or object id).
pub fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Exactly one of `client_secret` and `certificate` is configured. The loader hands the secret
/// references over as settings even when planning, so `runbook check` refuses a system with
/// no credential, or two, at the system's line.
pub fn check_credential(cfg: &SystemConfig) -> anyhow::Result<()> {
    let has = |k: &str| cfg.settings.contains_key(k) || cfg.secrets.contains_key(k);
    match (has("client_secret"), has("certificate")) {
        (true, false) | (false, true) => Ok(()),
        (false, false) => bail!(
            "system `{}`: set the app registration's credential: `client_secret = {{ env = \
             \"…\" }}` or `certificate = {{ file = \"…\" }}`",
            cfg.name
        ),
        (true, true) => bail!(
            "system `{}`: set `client_secret` or `certificate`, not both",
            cfg.name
        ),
    }
}

/// A GUID, or a DNS name (`contoso.onmicrosoft.com`, a verified custom domain).
fn is_tenant(s: &str) -> bool {
    let guid = is_guid(s);
    let domain = s.contains('.')
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    guid || domain
}

/// The tenant's token source for `scope` (e.g. `https://graph.microsoft.com/.default`), or
/// `None` when no credential is resolved (planning). Exactly one of `client_secret` and
/// `certificate` must be configured; the loader says so at the system's line.
pub fn auth_for(cfg: &SystemConfig, scope: &str) -> anyhow::Result<Option<Arc<dyn Auth>>> {
    let tenant = Tenant::from_config(cfg)?;
    let client = match (
        cfg.secrets.get("client_secret"),
        cfg.secrets.get("certificate"),
    ) {
        (None, None) => return Ok(None),
        (Some(secret), None) => ClientAuth::SecretPost(secret.clone()),
        (None, Some(pem)) => {
            let key = JwtKey::rsa_pem(pem)
                .and_then(|k| k.pss().with_certificate_pem(pem.expose_secret()))
                .map_err(|e| anyhow::anyhow!("system `{}`: `certificate`: {e}", cfg.name))?;
            ClientAuth::PrivateKeyJwt(key)
        }
        (Some(_), Some(_)) => bail!(
            "system `{}`: set `client_secret` or `certificate`, not both",
            cfg.name
        ),
    };
    let http = super::auth::token_client(cfg)
        .map_err(|e| anyhow::anyhow!("system `{}`: {e}", cfg.name))?;
    let creds = ClientCredentials::new(http, &tenant.token_url(), &tenant.client_id, client)
        .map_err(|e| anyhow::anyhow!("system `{}`: {e}", cfg.name))?
        .with_scopes([scope]);
    Ok(Some(Arc::new(creds)))
}

/// A secret that is not set reads as none (for tests building a config by hand).
pub fn with_client_secret(mut cfg: SystemConfig, secret: &str) -> SystemConfig {
    cfg.secrets.insert(
        "client_secret".into(),
        SecretString::from(secret.to_string()),
    );
    cfg
}

/// Microsoft's error body made readable: `{"error":{"code","message","innerError":{"code"}}}`
/// (Graph, and the Exchange admin API's OData errors) → `Code: message (inner code)`.
pub fn error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = &v["error"];
    let code = e["code"].as_str().unwrap_or("");
    let message = e["message"].as_str().unwrap_or("").trim();
    if code.is_empty() && message.is_empty() {
        return None;
    }
    let inner = e["innerError"]["code"]
        .as_str()
        .or(e["innererror"]["code"].as_str())
        .filter(|c| *c != code);
    Some(match inner {
        Some(inner) => format!("{code}: {message} ({inner})"),
        None if code.is_empty() => message.to_string(),
        None => format!("{code}: {message}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(settings: &[(&str, &str)]) -> SystemConfig {
        let mut c = SystemConfig::new("contoso", "entra", Some("https://graph.microsoft.com"));
        for (k, v) in settings {
            c.settings
                .insert((*k).into(), toml::Value::String((*v).into()));
        }
        c
    }

    #[test]
    fn tenants_by_guid_or_domain() {
        for ok in [
            "8f5e1b9c-3d2a-4e6f-9a7b-0c1d2e3f4a5b",
            "contoso.onmicrosoft.com",
        ] {
            let t = Tenant::from_config(&cfg(&[("tenant_id", ok), ("client_id", "app")])).unwrap();
            assert_eq!(
                t.token_url(),
                format!("https://login.microsoftonline.com/{ok}/oauth2/v2.0/token")
            );
        }
        for bad in [
            "",
            "contoso",
            "../common",
            "a b.com",
            "8f5e1b9c-3d2a-4e6f-9a7b-0c1d2e3f4a5",
        ] {
            let e = Tenant::from_config(&cfg(&[("tenant_id", bad), ("client_id", "app")]))
                .unwrap_err()
                .to_string();
            assert!(e.contains("tenant_id"), "{bad:?}: {e}");
        }
        let e = Tenant::from_config(&cfg(&[
            ("tenant_id", "contoso.onmicrosoft.com"),
            ("client_id", "app"),
            ("login_url", "http://login.example"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("https"), "{e}");
    }

    #[test]
    fn no_credential_is_planning_and_both_is_an_error() {
        let c = cfg(&[
            ("tenant_id", "contoso.onmicrosoft.com"),
            ("client_id", "app"),
        ]);
        assert!(
            auth_for(&c, "https://graph.microsoft.com/.default")
                .unwrap()
                .is_none()
        );
        let c = with_client_secret(c, "s3cret-value");
        assert!(
            auth_for(&c, "https://graph.microsoft.com/.default")
                .unwrap()
                .is_some()
        );
        let mut both = c.clone();
        both.secrets
            .insert("certificate".into(), SecretString::from("pem".to_string()));
        let e = auth_for(&both, "x").err().unwrap().to_string();
        assert!(e.contains("not both") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn errors_read_as_microsoft_writes_them() {
        let body = br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation.","innerError":{"date":"2026-12-01T10:00:00","request-id":"r"}}}"#;
        assert_eq!(
            error_message(body).unwrap(),
            "Authorization_RequestDenied: Insufficient privileges to complete the operation."
        );
        let body = br#"{"error":{"code":"accessDenied","message":"Denied","innerError":{"code":"insufficient_claims"}}}"#;
        assert_eq!(
            error_message(body).unwrap(),
            "accessDenied: Denied (insufficient_claims)"
        );
        assert_eq!(error_message(b"<html>"), None);
    }
}
