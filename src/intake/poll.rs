//! Pulling terminations from BambooHR (providers.md §11.1): `GET /api/v1/employees/changed?
//! since=…` lists who changed (any field, tables included) with `latest` as the next cursor; each
//! one's record is then read with `onlyCurrent=false`, which shows a termination entered ahead
//! of its date (a future-dated termination is scheduled, not missed). Auth is Basic with the API
//! key as user and `x` as password; `Accept: application/json` (some endpoints default to XML).
//!
//! No retries here: a failure leaves the cursor where it was, and the next run (cron) reads the
//! same changes again; the event index makes sure none of them starts twice.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use chrono::{DateTime, Utc};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::SourceConfig;

pub struct BambooHr {
    base: String,
    auth: SecretString,
    client: reqwest::Client,
}

/// What `employees/changed` said.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    /// The next cursor (`latest`), when the answer had one.
    pub latest: Option<String>,
    /// Employee ids inserted or updated, in id order (deleted ones are left out).
    pub ids: Vec<String>,
}

/// `since` as BambooHR takes it: whole seconds, `Z` (milliseconds are refused with 400).
pub fn since_param(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl BambooHr {
    pub fn new(cfg: &SourceConfig) -> Result<BambooHr> {
        let base = match (&cfg.base_url, &cfg.company) {
            (Some(b), _) => b.trim_end_matches('/').to_string(),
            (None, Some(c)) => {
                if c.is_empty() || !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') {
                    bail!(
                        "[intake.bamboohr] company {c:?} is not a BambooHR subdomain (letters, digits, -)"
                    );
                }
                format!("https://{c}.bamboohr.com")
            }
            (None, None) => bail!(
                "[intake.bamboohr] names no company (the subdomain of <company>.bamboohr.com) to read from"
            ),
        };
        let key_ref = cfg.api_key.as_ref().ok_or_else(|| {
            anyhow!(
                "[intake.bamboohr] has no api_key (e.g. api_key = {{ env = \"BAMBOOHR_API_KEY\" }})"
            )
        })?;
        let key = crate::secrets::resolve(key_ref)
            .with_context(|| format!("[intake.bamboohr] api_key ({key_ref})"))?;
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:x", key.expose_secret()));
        let client = reqwest::Client::builder()
            .user_agent(concat!("offboard/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(BambooHr {
            base,
            auth: SecretString::from(format!("Basic {basic}")),
            client,
        })
    }

    async fn get(&self, path_and_query: &str) -> Result<Value> {
        let url = format!("{}{path_and_query}", self.base);
        let what = path_and_query.split('?').next().unwrap_or(path_and_query);
        let resp = self
            .client
            .get(&url)
            .header("Authorization", self.auth.expose_secret())
            .header("Accept", "application/json")
            .send()
            .await
            .with_context(|| format!("BambooHR GET {what}"))?;
        let status = resp.status();
        let message = resp
            .headers()
            .get("x-bamboohr-error-message")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .bytes()
            .await
            .with_context(|| format!("BambooHR GET {what}: reading the answer"))?;
        if !status.is_success() {
            bail!(
                "BambooHR GET {what} answered {status}{}",
                message
                    .map(|m| format!(": {}", crate::ui::safe(&m)))
                    .unwrap_or_default()
            );
        }
        let v: Value = serde_json::from_slice(&body)
            .with_context(|| format!("BambooHR GET {what}: the answer is not JSON"))?;
        // Throttling arrives as 200 with an error object.
        if let Some(e) = v.get("error") {
            bail!(
                "BambooHR GET {what}: {}",
                crate::ui::safe(
                    &e.get("message")
                        .map(Value::to_string)
                        .unwrap_or_else(|| e.to_string())
                )
            );
        }
        Ok(v)
    }

    /// Who changed since `since` (a BambooHR cursor or an ISO time).
    pub async fn changed(&self, since: &str) -> Result<Changed> {
        let q = utf8_percent_encode(since, NON_ALPHANUMERIC);
        let v = self
            .get(&format!("/api/v1/employees/changed?since={q}"))
            .await?;
        let latest = super::text(v.get("latest"));
        let mut ids = Vec::new();
        match v.get("employees") {
            Some(Value::Object(m)) => {
                for (key, e) in m {
                    if e.get("action").and_then(Value::as_str) == Some("Deleted") {
                        continue;
                    }
                    ids.push(super::text(e.get("id")).unwrap_or_else(|| key.clone()));
                }
            }
            // An empty answer may come as a list.
            Some(Value::Array(a)) if a.is_empty() => {}
            None | Some(Value::Null) => {}
            Some(_) => bail!("BambooHR employees/changed: `employees` is not an object"),
        }
        ids.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
        ids.dedup();
        Ok(Changed { latest, ids })
    }

    /// One employee's record with the fields a termination needs (future-dated values included).
    pub async fn employee(&self, id: &str, extra: &[String]) -> Result<Value> {
        let mut fields: Vec<String> = super::bamboohr::FETCH_FIELDS
            .iter()
            .map(|s| s.to_string())
            .collect();
        for f in extra {
            // A dotted path is read from the answer; the field asked for is its first part.
            let top = f.split('.').next().unwrap_or(f).to_string();
            if !fields.contains(&top) {
                fields.push(top);
            }
        }
        let id_enc = utf8_percent_encode(id, NON_ALPHANUMERIC);
        let joined = fields.join(",");
        let list = utf8_percent_encode(&joined, NON_ALPHANUMERIC);
        let mut v = self
            .get(&format!(
                "/api/v1/employees/{id_enc}?fields={list}&onlyCurrent=false"
            ))
            .await?;
        if let Value::Object(m) = &mut v {
            m.entry("id")
                .or_insert_with(|| Value::String(id.to_string()));
        }
        Ok(v)
    }
}

/// The fields the runbook maps for BambooHR, to ask for them too.
pub fn mapped_fields(cfg: &SourceConfig) -> Vec<String> {
    let f = &cfg.fields;
    [
        &f.email,
        &f.termination_date,
        &f.last_day,
        &f.termination_type,
        &f.reason,
        &f.manager,
        &f.ticket,
        &f.status,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_whole_seconds_in_utc() {
        let t = DateTime::parse_from_rfc3339("2026-12-01T09:30:15.250+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(since_param(t), "2026-12-01T08:30:15Z");
    }

    #[test]
    fn a_company_that_is_not_a_subdomain_is_refused() {
        let cfg = SourceConfig {
            company: Some("evil.example/x".into()),
            ..Default::default()
        };
        let e = BambooHr::new(&cfg).err().unwrap();
        assert!(e.to_string().contains("not a BambooHR subdomain"), "{e}");
    }
}
