//! `transfer_drive`: the Data Transfer API moves ownership of the user's Drive files to
//! another user. It takes numeric user ids, not emails: both users are read first.
//!
//! The transfer runs in the background: `POST /admin/datatransfer/v1/transfers` answers with
//! its `id` and `overallTransferStatusCode` `new`. The summary names the id (it is journaled);
//! the check finds the transfer between the two users again (`GET …/transfers?oldOwnerUserId=
//! …&newOwnerUserId=…`) and reads it by id: `completed` holds; `new` and `inProgress` are
//! pending, with when it was requested; `failed` (UNCONFIRMED: the value Google uses) is
//! reported, and a new apply then requests another. An apply finds a transfer that is not
//! failed and sends nothing, so applying twice never starts a second transfer.

use serde_json::{Value, json};

use super::{Api, GoogleProvider, User, done, not_the_person, scopes};
use crate::providers::kit::http::{HttpClient, Request, with_query};
use crate::providers::kit::paging::{self, Paging};
use crate::providers::{
    ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall, params,
};

/// Google Drive's application id in the Data Transfer API.
pub const DRIVE_APP_ID: &str = "55656082996";

/// `transfer_drive`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TransferParams {
    /// The new owner (email or user id), e.g. `"{{ user.manager }}"` (a template).
    #[schemars(length(min = 1))]
    to: String,
    /// Which files move (`PRIVACY_LEVEL`): `PRIVATE` (shared with nobody), `SHARED` (shared
    /// with someone); default both.
    #[schemars(length(min = 1))]
    privacy_levels: Option<Vec<PrivacyLevel>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
enum PrivacyLevel {
    Private,
    Shared,
}

impl PrivacyLevel {
    fn google(self) -> &'static str {
        match self {
            PrivacyLevel::Private => "PRIVATE",
            PrivacyLevel::Shared => "SHARED",
        }
    }
}

/// What offboard reads of a transfer.
#[derive(Debug, Clone)]
struct Transfer {
    id: String,
    status: String,
    requested: String,
}

impl Transfer {
    fn from_json(v: &Value) -> Option<Transfer> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Transfer {
            id: s("id")?,
            status: s("overallTransferStatusCode").unwrap_or_else(|| "unknown".into()),
            requested: s("requestTime").unwrap_or_else(|| "an unknown time".into()),
        })
    }

    fn has_drive(v: &Value) -> bool {
        v.get("applicationDataTransfers")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter().any(|t| {
                    t.get("applicationId")
                        .map(|i| match i {
                            Value::String(s) => s == DRIVE_APP_ID,
                            Value::Number(n) => n.to_string() == DRIVE_APP_ID,
                            _ => false,
                        })
                        .unwrap_or(false)
                })
            })
    }
}

impl GoogleProvider {
    fn transfers_url(&self, segments: &[&str]) -> Result<url::Url, ProviderError> {
        let mut all = vec!["admin", "datatransfer", "v1", "transfers"];
        all.extend_from_slice(segments);
        self.url(Api::Admin, &all)
    }

    /// The new owner: a Workspace user, or a permanent error (never the person's `NotFound`).
    async fn new_owner(
        &self,
        http: &HttpClient,
        to: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<User, ProviderError> {
        self.get_user(http, to, ctx, records)
            .await
            .map_err(not_the_person)?
            .ok_or_else(|| {
                self.err(format!(
                    "the new owner {to:?} of the Drive transfer is no Google Workspace user \
                     (GET users answered 404)"
                ))
            })
    }

    /// The newest Drive transfer between the two users, by `requestTime`.
    async fn latest_transfer(
        &self,
        http: &HttpClient,
        old: &str,
        new: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<Transfer>, ProviderError> {
        let first = with_query(
            self.transfers_url(&[])?,
            &[("oldOwnerUserId", old), ("newOwnerUserId", new)],
        );
        let (items, recs) = paging::get_all(http, first, Paging::PageToken, "/dataTransfers", ctx)
            .await
            .map_err(not_the_person)?;
        records.extend(recs);
        let mut found: Vec<Transfer> = items
            .iter()
            .filter(|t| {
                let s = |k: &str| t.get(k).and_then(Value::as_str);
                // The list's filters are trusted only as far as they are read back.
                s("oldOwnerUserId") == Some(old)
                    && s("newOwnerUserId") == Some(new)
                    && Transfer::has_drive(t)
            })
            .filter_map(Transfer::from_json)
            .collect();
        found.sort_by(|a, b| a.requested.cmp(&b.requested));
        Ok(found.pop())
    }

    pub(super) async fn transfer_drive(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let p: TransferParams = params::parse(call.action, call.params)?;
        let http = self.as_admin(Api::Admin, scopes::TRANSFER)?;
        let mut records = Vec::new();
        let (user, account) = match self.live(&http, call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        let owner = self.new_owner(&http, &p.to, ctx, &mut records).await?;
        if owner.id == user.id {
            return Err(self.err(format!(
                "the Drive transfer's new owner {:?} is the departing user",
                p.to
            )));
        }
        if let Some(t) = self
            .latest_transfer(&http, &user.id, &owner.id, ctx, &mut records)
            .await?
            && t.status != "failed"
        {
            return Ok(done(
                false,
                format!(
                    "Drive transfer {} from {} to {} already requested at {} ({})",
                    t.id, user.email, owner.email, t.requested, t.status
                ),
                records,
                account,
            ));
        }
        let levels: Vec<&str> = p
            .privacy_levels
            .as_deref()
            .unwrap_or(&[PrivacyLevel::Private, PrivacyLevel::Shared])
            .iter()
            .map(|l| l.google())
            .collect();
        let body = json!({
            "oldOwnerUserId": user.id,
            "newOwnerUserId": owner.id,
            "applicationDataTransfers": [{
                "applicationId": DRIVE_APP_ID,
                "applicationTransferParams": [{ "key": "PRIVACY_LEVEL", "value": levels }],
            }],
        });
        // A POST that starts a transfer: never resent once it may have reached Google.
        let req = Request::post(self.transfers_url(&[])?).json(&body, "application/json");
        let resp = self
            .send(&http, req, ctx, &mut records)
            .await
            .map_err(not_the_person)?;
        let v: Value = resp.json()?;
        let t = Transfer::from_json(&v)
            .ok_or_else(|| self.err("POST transfers answered a transfer without an id"))?;
        Ok(done(
            true,
            format!(
                "requested Drive transfer {} from {} to {} ({}; files {}): the check follows it",
                t.id,
                user.email,
                owner.email,
                t.status,
                levels.join("+")
            ),
            records,
            account,
        ))
    }

    pub(super) async fn check_transfer(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let p: TransferParams = params::parse(call.action, call.params)?;
        let http = self.as_admin(Api::Admin, scopes::TRANSFER)?;
        let user = match self.read(&http, call, ctx).await? {
            Ok(u) => u,
            Err(gone) => return Ok(gone),
        };
        let account = Some(user.account());
        let mut records = Vec::new();
        let owner = self.new_owner(&http, &p.to, ctx, &mut records).await?;
        let Some(found) = self
            .latest_transfer(&http, &user.id, &owner.id, ctx, &mut records)
            .await?
        else {
            return Ok(CheckOutcome {
                revoked: false,
                observed: format!("no Drive transfer from {} to {}", user.email, owner.email),
                account,
            });
        };
        // Read by id: the transfer's own record is authoritative.
        let resp = self
            .send(
                &http,
                Request::get(self.transfers_url(&[&found.id])?),
                ctx,
                &mut records,
            )
            .await
            .map_err(not_the_person)?;
        let v: Value = resp.json()?;
        let t = Transfer::from_json(&v).unwrap_or(found);
        let (revoked, observed) = match t.status.as_str() {
            "completed" => (
                true,
                format!("Drive transfer {} to {} completed", t.id, owner.email),
            ),
            "new" | "inProgress" => (
                false,
                format!(
                    "Drive transfer {} to {} pending ({}, requested at {})",
                    t.id, owner.email, t.status, t.requested
                ),
            ),
            other => (
                false,
                format!(
                    "Drive transfer {} to {} {other} (requested at {}): apply again to request \
                     another",
                    t.id, owner.email, t.requested
                ),
            ),
        };
        Ok(CheckOutcome {
            revoked,
            observed,
            account,
        })
    }
}
