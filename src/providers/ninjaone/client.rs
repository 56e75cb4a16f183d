//! The HTTP client: building it from the configuration (region, OAuth client credentials),
//! `/v2` URLs, JSON reads, and NinjaOne's error bodies.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use url::Url;

use super::{NinjaOneProvider, PAGE_SIZE, REGIONS, SCOPES};
use crate::providers::kit::auth::{ClientAuth, ClientCredentials, token_client};
use crate::providers::kit::http::{HttpClient, Request, RetryPolicy};
use crate::providers::{CallCtx, ProviderError, RequestRecord, SystemConfig};

/// NinjaOne's error body: `errorMessage (resultCode, incident …)`, or OAuth's
/// `error: error_description`.
pub fn ninjaone_error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let s = |k: &str| v.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let Some(m) = s("errorMessage") {
        let mut out = m.to_string();
        match (s("resultCode"), s("incidentId")) {
            (Some(c), Some(i)) => out.push_str(&format!(" ({c}, incident {i})")),
            (Some(c), None) => out.push_str(&format!(" ({c})")),
            (None, Some(i)) => out.push_str(&format!(" (incident {i})")),
            (None, None) => {}
        }
        return Some(out);
    }
    if let Some(c) = s("resultCode") {
        return Some(c.to_string());
    }
    match (s("error"), s("error_description")) {
        (Some(e), Some(d)) => Some(format!("{e}: {d}")),
        (Some(e), None) => Some(e.to_string()),
        _ => None,
    }
}

pub(super) const FORBIDDEN_HINT: &str = "the API client lacks a scope or the technician role behind it \
                              lacks a permission this call needs (Administration > Apps > API)";

/// A 404 inside a device read is no verdict on the person: only the lookup may say `NotFound`.
pub(super) fn not_the_person(e: ProviderError) -> ProviderError {
    match e {
        ProviderError::NotFound(m) => ProviderError::Permanent(m),
        e => e,
    }
}

impl NinjaOneProvider {
    /// Build from the system's configuration. No I/O; works without the secret (planning).
    pub fn new(cfg: &SystemConfig) -> anyhow::Result<NinjaOneProvider> {
        let client_id = match cfg.settings.get("client_id") {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            _ => anyhow::bail!("system `{}`: `client_id` is required (a string)", cfg.name),
        };
        let mut cfg = cfg.clone();
        if cfg.base_url.is_none() {
            let region = match cfg.settings.get("region") {
                None => "app",
                Some(toml::Value::String(r)) => r.as_str(),
                Some(other) => anyhow::bail!(
                    "system `{}`: `region` must be a string, not {}",
                    cfg.name,
                    other.type_str()
                ),
            };
            let Some((_, host)) = REGIONS.iter().find(|(r, _)| *r == region) else {
                anyhow::bail!(
                    "system `{}`: unknown NinjaOne region `{region}` (one of app, us, eu, oc, ca, \
                     us2, fed; or set base_url)",
                    cfg.name
                );
            };
            cfg.base_url = Some((*host).to_string());
        }
        let mut http = HttpClient::new(&cfg)?
            .with_accept("application/json")
            .with_error_parser(ninjaone_error_message)
            .with_forbidden_hint(FORBIDDEN_HINT);
        if let Some(secret) = cfg.secrets.get("client_secret") {
            let token_url = http
                .endpoint(&["ws", "oauth", "token"])
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let creds = ClientCredentials::new(
                token_client(&cfg).map_err(|e| anyhow::anyhow!("system `{}`: {e}", cfg.name))?,
                token_url.as_str(),
                &client_id,
                ClientAuth::SecretPost(secret.clone()),
            )
            .map_err(|e| anyhow::anyhow!("system `{}`: {e}", cfg.name))?
            .with_scopes(SCOPES);
            http = http.with_auth(Arc::new(creds));
        }
        Ok(NinjaOneProvider {
            http,
            system: cfg.name.clone(),
            page_size: PAGE_SIZE,
            requested: Mutex::default(),
        })
    }

    /// Replace the retry policy (tests use tiny budgets).
    pub fn with_retry(mut self, retry: RetryPolicy) -> NinjaOneProvider {
        self.http = self.http.with_retry(retry);
        self
    }

    /// Devices or activities per page (default 200; NinjaOne takes 10 to 1000 activities).
    pub fn with_page_size(mut self, size: usize) -> NinjaOneProvider {
        self.page_size = size.max(1);
        self
    }

    pub(super) fn err(&self, msg: impl std::fmt::Display) -> ProviderError {
        ProviderError::Permanent(format!("system `{}`: {msg}", self.system))
    }

    pub(super) fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut all = vec!["v2"];
        all.extend_from_slice(segments);
        self.http.endpoint(&all)
    }

    pub(super) async fn get_json(
        &self,
        url: Url,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<Value>, ProviderError> {
        let resp = self
            .http
            .send(Request::get(url).allow(reqwest::StatusCode::NOT_FOUND), ctx)
            .await?;
        records.push(resp.record.clone());
        if resp.status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        resp.json().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ninjaone_errors_read_well() {
        let body =
            br#"{"resultCode":"FAILURE","errorMessage":"Device not found","incidentId":"a1b2"}"#;
        assert_eq!(
            ninjaone_error_message(body).as_deref(),
            Some("Device not found (FAILURE, incident a1b2)")
        );
        let oauth = br#"{"error":"invalid_client","error_description":"Bad client credentials"}"#;
        assert_eq!(
            ninjaone_error_message(oauth).as_deref(),
            Some("invalid_client: Bad client credentials")
        );
        assert_eq!(ninjaone_error_message(b"<html>"), None);
    }
}
