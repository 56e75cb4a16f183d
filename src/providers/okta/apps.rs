//! `unassign_apps`: the user's app links, the unassignments, and the check.

use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use super::client::okta_error_message;
use super::users::{Resolved, gone};
use super::{OktaProvider, done, partly};
use crate::providers::kit::http::{Request, with_query};
use crate::providers::{
    ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall,
};

/// An error after some removals: say which were done.
/// What a DELETE of one membership or assignment came to.
pub(super) enum Unlinked {
    Removed,
    /// Already gone.
    Gone,
    /// Okta's own words.
    Refused(String),
}

/// One app the user is assigned, from an app link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AppLink {
    pub(super) app_id: String,
    pub(super) label: String,
}

impl AppLink {
    pub(super) fn from_json(v: &Value) -> Option<AppLink> {
        let app_id = v.get("appInstanceId")?.as_str()?.to_string();
        let label = v
            .get("label")
            .or_else(|| v.get("appName"))
            .and_then(Value::as_str)
            .unwrap_or(&app_id)
            .to_string();
        Some(AppLink { app_id, label })
    }
}

impl OktaProvider {
    /// DELETE one membership or assignment of the person's. Okta's refusal (400/409: a group
    /// rule or a group assignment holds it) is for a person to follow up, not a failure; a
    /// failure after some were removed says which (`removed`).
    pub(super) async fn unlink(
        &self,
        url: Url,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
        removed: &[String],
    ) -> Result<Unlinked, ProviderError> {
        let req = Request::delete(url)
            .allow(StatusCode::NOT_FOUND)
            .allow(StatusCode::BAD_REQUEST)
            .allow(StatusCode::CONFLICT);
        let resp = self
            .send(req, ctx, records)
            .await
            .map_err(|e| partly(e, removed))?;
        Ok(match resp.status {
            StatusCode::BAD_REQUEST | StatusCode::CONFLICT => Unlinked::Refused(
                okta_error_message(&resp.body).unwrap_or_else(|| resp.status.as_u16().to_string()),
            ),
            StatusCode::NOT_FOUND => Unlinked::Gone,
            _ => Unlinked::Removed,
        })
    }

    pub(super) async fn app_links(
        &self,
        id: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<AppLink>, ProviderError> {
        let resp = self
            .send(
                Request::get(self.url(&["users", id, "appLinks"])?),
                ctx,
                records,
            )
            .await?;
        let list: Vec<Value> = resp.json()?;
        let mut out: Vec<AppLink> = Vec::new();
        for v in &list {
            let Some(link) = AppLink::from_json(v) else {
                return Err(self.bad_answer(&resp, "an app link without an appInstanceId"));
            };
            // One app can have several links (one per tile): one assignment.
            if !out.iter().any(|l| l.app_id == link.app_id) {
                out.push(link);
            }
        }
        Ok(out)
    }

    pub(super) async fn unassign_apps(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.live(call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        let links = self.app_links(&user.id, ctx, &mut records).await?;
        // Recorded for the person who assigns them again by hand (no restore: see NO_UNDO_APPS).
        ctx.before(&serde_json::json!({
            "id": user.id,
            "apps": links
                .iter()
                .map(|l| serde_json::json!({ "id": l.app_id, "label": l.label }))
                .collect::<Vec<_>>(),
        }));
        let mut removed = Vec::new();
        let mut manual = Vec::new();
        for l in &links {
            let url = with_query(
                self.url(&["apps", &l.app_id, "users", &user.id])?,
                &[("sendEmail", "false")],
            );
            match self.unlink(url, ctx, &mut records, &removed).await? {
                Unlinked::Refused(said) => manual.push(format!(
                    "{} (Okta refused: {said}; assigned through a group?)",
                    l.label
                )),
                Unlinked::Gone => {}
                Unlinked::Removed => removed.push(l.label.clone()),
            }
        }
        let mut summary = if removed.is_empty() {
            format!("Okta user {} has no app assignment to remove", user.id)
        } else {
            format!(
                "unassigned Okta user {} from {} app(s), no email sent: {}",
                user.id,
                removed.len(),
                removed.join(", ")
            )
        };
        if !manual.is_empty() {
            summary.push_str(&format!("; manual follow-up: {}", manual.join("; ")));
        }
        Ok(done(!removed.is_empty(), summary, records, account))
    }

    pub(super) async fn check_apps(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let user = match self.resolve(call, ctx, &mut records).await? {
            Resolved::Live(u) => u,
            Resolved::Gone(account) => return Ok(gone(account)),
        };
        let account = Some(self.account(&user, call.login));
        let links = self.app_links(&user.id, ctx, &mut records).await?;
        let labels: Vec<&str> = links.iter().map(|l| l.label.as_str()).collect();
        Ok(CheckOutcome {
            revoked: links.is_empty(),
            observed: if links.is_empty() {
                "no app assigned".into()
            } else {
                format!("still assigned: {}", labels.join(", "))
            },
            account,
        })
    }
}
