//! The HTTP client: building it (SSWS token or the `auth` table), `/api/v1` URLs, sending,
//! and Okta's error bodies.

use serde_json::Value;
use url::Url;

use super::OktaProvider;
use crate::providers::kit::http::{HttpClient, HttpResponse, Request, RetryPolicy};
use crate::providers::{CallCtx, ProviderError, RequestRecord, SystemConfig};

/// What a 403 means here, before Okta's own message.
pub(super) const FORBIDDEN_HINT: &str = "the token's admin role does not allow this call (an SSWS token acts \
                              with its creator's role: Group Admin cannot deactivate or delete \
                              users; an OAuth service app needs the scopes okta.users.manage, \
                              okta.groups.manage and okta.apps.manage granted, and an admin role)";

/// Okta's error body: `errorCode: errorSummary` and the causes' summaries.
pub fn okta_error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let code = v.get("errorCode").and_then(Value::as_str).map(str::trim);
    let summary = v.get("errorSummary").and_then(Value::as_str).map(str::trim);
    let mut msg = match (code, summary) {
        (Some(c), Some(s)) if !c.is_empty() && !s.is_empty() => format!("{c}: {s}"),
        (_, Some(s)) if !s.is_empty() => s.to_string(),
        (Some(c), _) if !c.is_empty() => c.to_string(),
        _ => return None,
    };
    let causes: Vec<&str> = v
        .get("errorCauses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("errorSummary").and_then(Value::as_str))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if !causes.is_empty() {
        msg.push_str(&format!(" ({})", causes.join("; ")));
    }
    Some(msg)
}

impl OktaProvider {
    /// Build from the system's configuration. No I/O; works without a token (planning).
    pub fn new(cfg: &SystemConfig) -> anyhow::Result<OktaProvider> {
        let mut http = HttpClient::new(cfg)?
            .with_accept("application/json")
            .with_error_parser(okta_error_message)
            .with_forbidden_hint(FORBIDDEN_HINT);
        http = match crate::providers::kit::auth::for_system(cfg)? {
            // The `auth` table: OAuth 2.0 (private-key JWT) or another scheme it names.
            Some(auth) if cfg.auth.is_some() => http.with_auth(auth),
            // `token`: an API token, sent as `SSWS <token>`.
            _ => http.with_auth_scheme("SSWS"),
        };
        Ok(OktaProvider {
            http,
            system: cfg.name.clone(),
        })
    }

    /// Replace the retry policy (tests use tiny budgets).
    pub fn with_retry(mut self, retry: RetryPolicy) -> OktaProvider {
        self.http = self.http.with_retry(retry);
        self
    }

    pub(super) fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut all = vec!["api", "v1"];
        all.extend_from_slice(segments);
        self.http.endpoint(&all)
    }

    /// Send through the kit (which waits out an emptied rate-limit bucket) and keep the record.
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

    pub(super) fn bad_answer(&self, resp: &HttpResponse, what: &str) -> ProviderError {
        ProviderError::Permanent(format!(
            "system `{}`: {} {} answered {what}",
            self.system,
            resp.record.method,
            Url::parse(&resp.record.url)
                .map(|u| u.path().to_string())
                .unwrap_or_default()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn okta_errors_read_well() {
        let body = br#"{"errorCode":"E0000001","errorSummary":"Api validation failed: login","errorLink":"E0000001","errorId":"oae1","errorCauses":[{"errorSummary":"login: An object with this field already exists"}]}"#;
        assert_eq!(
            okta_error_message(body).as_deref(),
            Some(
                "E0000001: Api validation failed: login (login: An object with this field already exists)"
            )
        );
        assert_eq!(okta_error_message(b"<html>"), None);
    }
}
