//! The user's lifecycle: `suspend_user`, `deactivate_user`, `delete_user`, and the status
//! check they share.

use reqwest::StatusCode;

use super::client::okta_error_message;
use super::undo::status_before;
use super::users::{Resolved, gone};
use super::{OktaProvider, done};
use crate::providers::kit::http::{Request, with_query};
use crate::providers::{ApplyOutcome, CallCtx, CheckOutcome, ProviderError, StepCall};

impl OktaProvider {
    pub(super) async fn suspend(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.live(call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        ctx.before(&status_before(&user));
        let summary = match user.status.as_str() {
            "SUSPENDED" | "DEPROVISIONED" => {
                return Ok(done(
                    false,
                    format!("Okta user {} already {}", user.id, user.status),
                    records,
                    account,
                ));
            }
            "ACTIVE" => format!(
                "suspended Okta user {} (status ACTIVE → SUSPENDED)",
                user.id
            ),
            other => {
                return Err(ProviderError::Permanent(format!(
                    "system `{}`: Okta user {} is {other}, and Okta suspends only ACTIVE users; \
                     use deactivate_user to cut a {other} user's access",
                    self.system, user.id
                )));
            }
        };
        let url = self.url(&["users", &user.id, "lifecycle", "suspend"])?;
        self.send(Request::post(url), ctx, &mut records).await?;
        Ok(done(true, summary, records, account))
    }

    pub(super) async fn deactivate(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.live(call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        ctx.before(&status_before(&user));
        if user.status == "DEPROVISIONED" {
            return Ok(done(
                false,
                format!("Okta user {} already deactivated (DEPROVISIONED)", user.id),
                records,
                account,
            ));
        }
        if user.transitioning.as_deref() == Some("DEPROVISIONED") {
            return Ok(done(
                false,
                format!("Okta user {} is already being deactivated", user.id),
                records,
                account,
            ));
        }
        let url = with_query(
            self.url(&["users", &user.id, "lifecycle", "deactivate"])?,
            &[("sendEmail", "false")],
        );
        let resp = self
            .send(
                Request::post(url).allow(StatusCode::NOT_FOUND),
                ctx,
                &mut records,
            )
            .await?;
        if resp.status == StatusCode::NOT_FOUND {
            // Okta's answer for a user deactivated meanwhile (or deleted): nothing left to do.
            let said = okta_error_message(&resp.body).unwrap_or_else(|| "404".into());
            return Ok(done(
                false,
                format!("Okta user {} already deactivated (Okta: {said})", user.id),
                records,
                account,
            ));
        }
        Ok(done(
            true,
            format!(
                "deactivated Okta user {} (status {} → DEPROVISIONED, no email sent)",
                user.id, user.status
            ),
            records,
            account,
        ))
    }

    pub(super) async fn delete(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.live(call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        let url = with_query(self.url(&["users", &user.id])?, &[("sendEmail", "false")]);
        // Okta's first DELETE of a user not yet deactivated only deactivates.
        let rounds = if user.status == "DEPROVISIONED" { 1 } else { 2 };
        for _ in 0..rounds {
            let resp = self
                .send(
                    Request::delete(url.clone()).allow(StatusCode::NOT_FOUND),
                    ctx,
                    &mut records,
                )
                .await?;
            if resp.status == StatusCode::NOT_FOUND {
                break;
            }
        }
        Ok(done(
            true,
            format!(
                "deleted Okta user {} (was {}, no email sent)",
                user.id, user.status
            ),
            records,
            account,
        ))
    }

    pub(super) async fn check_status(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        holds: &[&str],
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let user = match self.resolve(call, ctx, &mut records).await? {
            Resolved::Live(u) => u,
            Resolved::Gone(account) => return Ok(gone(account)),
        };
        let account = Some(self.account(&user, call.login));
        let transition = user
            .transitioning
            .as_deref()
            .map(|t| format!(" (transitioning to {t})"))
            .unwrap_or_default();
        Ok(CheckOutcome {
            revoked: holds.contains(&user.status.as_str()) && user.transitioning.is_none(),
            observed: format!("status={}{transition}", user.status),
            account,
        })
    }
}
