//! `clear_sessions` and `reset_factors`, with their checks.

use serde_json::Value;

use super::users::{Resolved, gone};
use super::{OktaProvider, done};
use crate::providers::kit::http::{Request, with_query};
use crate::providers::{
    ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall,
};

impl OktaProvider {
    pub(super) async fn clear_sessions(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.live(call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        if user.status == "DEPROVISIONED" {
            return Ok(done(
                false,
                format!(
                    "Okta user {} is deactivated: Okta ended their sessions then",
                    user.id
                ),
                records,
                account,
            ));
        }
        let url = with_query(
            self.url(&["users", &user.id, "sessions"])?,
            &[("oauthTokens", "true")],
        );
        self.send(Request::delete(url), ctx, &mut records).await?;
        Ok(done(
            true,
            format!(
                "cleared every Okta session and OAuth token of user {}",
                user.id
            ),
            records,
            account,
        ))
    }

    pub(super) async fn factors(
        &self,
        id: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<String>, ProviderError> {
        let resp = self
            .send(
                Request::get(self.url(&["users", id, "factors"])?),
                ctx,
                records,
            )
            .await?;
        let list: Vec<Value> = resp.json()?;
        Ok(list
            .iter()
            .map(|f| {
                f.get("factorType")
                    .and_then(Value::as_str)
                    .unwrap_or("factor")
                    .to_string()
            })
            .collect())
    }

    pub(super) async fn reset_factors(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.live(call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        let factors = self.factors(&user.id, ctx, &mut records).await?;
        if factors.is_empty() {
            return Ok(done(
                false,
                format!("Okta user {} has no factor enrolled", user.id),
                records,
                account,
            ));
        }
        let url = self.url(&["users", &user.id, "lifecycle", "reset_factors"])?;
        self.send(Request::post(url), ctx, &mut records).await?;
        Ok(done(
            true,
            format!(
                "reset {} factor(s) of Okta user {}: {}",
                factors.len(),
                user.id,
                factors.join(", ")
            ),
            records,
            account,
        ))
    }

    pub(super) async fn check_sessions(
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
        Ok(
            if user.status == "DEPROVISIONED" && user.transitioning.is_none() {
                CheckOutcome {
                    revoked: true,
                    observed: "status=DEPROVISIONED (deactivation ended every session)".into(),
                    account,
                }
            } else {
                CheckOutcome {
                    revoked: false,
                    observed: format!(
                        "status={}: Okta's API cannot read a user's sessions back, so clearing them \
                     cannot be confirmed (the DELETE's answer is in the journal)",
                        user.status
                    ),
                    account,
                }
            },
        )
    }

    pub(super) async fn check_factors(
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
        let factors = self.factors(&user.id, ctx, &mut records).await?;
        Ok(CheckOutcome {
            revoked: factors.is_empty(),
            observed: if factors.is_empty() {
                "no factor enrolled".into()
            } else {
                format!("factors enrolled: {}", factors.join(", "))
            },
            account,
        })
    }
}
