//! The person as a NinjaOne end user: the lookup by email, the recorded id read again, and
//! `remove_end_user`.

use serde_json::{Value, json};

use super::{ID_KIND, NinjaOneProvider};
use crate::providers::kit::http::Request;
use crate::providers::{
    Account, ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall,
};

impl NinjaOneProvider {
    /// The end user whose email is the login, from `GET /v2/user/end-users`.
    pub(super) async fn end_user_by_email(
        &self,
        login: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Value, ProviderError> {
        let login = login.trim();
        if login.is_empty() {
            return Err(self.err("the login to look up is empty"));
        }
        let url = self.url(&["user", "end-users"])?;
        let resp = self.http.send(Request::get(url), ctx).await?;
        records.push(resp.record.clone());
        let all: Vec<Value> = resp.json()?;
        let found: Vec<&Value> = all
            .iter()
            .filter(|u| {
                u.get("email")
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.trim().eq_ignore_ascii_case(login))
            })
            .collect();
        match found.as_slice() {
            [] => Err(ProviderError::NotFound(format!(
                "system `{}`: no NinjaOne end user has the email {login:?} (GET \
                 /v2/user/end-users, {} end users)",
                self.system,
                all.len()
            ))),
            [u] => Ok((*u).clone()),
            _ => Err(self.err(format!(
                "{} NinjaOne end users have the email {login:?}; refusing to guess",
                found.len()
            ))),
        }
    }

    pub(super) fn account_of(&self, user: &Value, login: &str) -> Result<Account, ProviderError> {
        let id = user
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| self.err("GET /v2/user/end-users answered an end user without an id"))?;
        let email = user.get("email").and_then(Value::as_str).unwrap_or(login);
        Ok(Account::new(id.to_string(), ID_KIND, email))
    }

    /// The end user: by the recorded id (`None` when gone) or by email.
    pub(super) async fn end_user(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(Account, Option<Value>), ProviderError> {
        match call.account {
            Some(a) => {
                if a.id_kind != ID_KIND || a.id.parse::<u64>().is_err() {
                    return Err(self.err(format!(
                        "the recorded account {a} is not a NinjaOne end user id"
                    )));
                }
                let url = self.url(&["user", "end-user", &a.id])?;
                let user = self.get_json(url, ctx, records).await?;
                Ok((a.clone(), user))
            }
            None => {
                let user = self.end_user_by_email(call.login, ctx, records).await?;
                Ok((self.account_of(&user, call.login)?, Some(user)))
            }
        }
    }

    pub(super) async fn remove_end_user(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (account, user) = self.end_user(call, ctx, &mut records).await?;
        let Some(user) = user else {
            ctx.before(&json!({ "end_user": null }));
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("the end user {account} is already gone from NinjaOne (404)"),
                requests: records,
                account: Some(account),
            });
        };
        ctx.identified(&account);
        let keep = [
            "id",
            "uid",
            "email",
            "firstName",
            "lastName",
            "organizationId",
            "fullPortalAccess",
            "assignedDeviceIds",
        ];
        let kept: serde_json::Map<String, Value> = keep
            .iter()
            .filter_map(|k| user.get(*k).map(|v| (k.to_string(), v.clone())))
            .collect();
        ctx.before(&json!({ "end_user": kept }));
        let url = self.url(&["user", "end-user", &account.id])?;
        let resp = self
            .http
            .send(
                Request::delete(url).allow(reqwest::StatusCode::NOT_FOUND),
                ctx,
            )
            .await?;
        records.push(resp.record.clone());
        let gone_already = resp.status == reqwest::StatusCode::NOT_FOUND;
        Ok(ApplyOutcome {
            changed: !gone_already,
            summary: if gone_already {
                format!("the end user {account} was already gone (404)")
            } else {
                format!(
                    "removed the NinjaOne end user {account} (DELETE → {})",
                    resp.status.as_u16()
                )
            },
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_end_user(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let (account, user) = self.end_user(call, ctx, &mut records).await?;
        Ok(match user {
            None => CheckOutcome {
                revoked: true,
                observed: "404 (end user deleted)".into(),
                account: Some(account),
            },
            Some(u) => CheckOutcome {
                revoked: false,
                observed: format!(
                    "the end user still exists (enabled: {}, {} assigned device(s))",
                    u.get("enabled")
                        .map_or("not reported".to_string(), Value::to_string),
                    u.get("assignedDeviceIds")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                ),
                account: Some(account),
            },
        })
    }

    // ---- decommission_device ----------------------------------------------------------------
}
