//! The person as an Okta user: the login checked, the lookup by login, then by the recorded
//! id, and what a check says of a user who is gone.

use reqwest::StatusCode;
use serde_json::Value;

use super::OktaProvider;
use crate::providers::kit::http::Request;
use crate::providers::{
    Account, ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall,
};

/// A 404 inside a list read is no verdict on the person: only the lookup may say `NotFound`.
pub(super) fn not_the_person(e: ProviderError) -> ProviderError {
    match e {
        ProviderError::NotFound(m) => ProviderError::Permanent(m),
        e => e,
    }
}

pub(super) enum Resolved {
    Live(User),
    /// Read by its recorded id and answered 404: deleted since offboard saw it.
    Gone(Account),
}

pub(super) fn gone(account: Account) -> CheckOutcome {
    CheckOutcome {
        revoked: true,
        observed: format!(
            "Okta user {} no longer exists (404 by id: deleted)",
            account.id
        ),
        account: Some(account),
    }
}

/// What offboard reads of an Okta user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct User {
    pub(super) id: String,
    pub(super) login: Option<String>,
    pub(super) status: String,
    pub(super) transitioning: Option<String>,
}

impl User {
    pub(super) fn from_json(v: &Value) -> Option<User> {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        Some(User {
            id: s("/id").filter(|i| !i.is_empty())?,
            login: s("/profile/login"),
            status: s("/status")?,
            transitioning: s("/transitioningToStatus"),
        })
    }
}

impl OktaProvider {
    pub(super) fn check_login(&self, login: &str) -> Result<(), ProviderError> {
        if login.trim().is_empty() {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: the login to look up is empty",
                self.system
            )));
        }
        Ok(())
    }

    /// `GET /api/v1/users/{idOrLogin}`: `None` on 404.
    pub(super) async fn get_user(
        &self,
        id_or_login: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<User>, ProviderError> {
        let url = self.url(&["users", id_or_login])?;
        let resp = self
            .send(Request::get(url).allow(StatusCode::NOT_FOUND), ctx, records)
            .await?;
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v: Value = resp.json()?;
        User::from_json(&v)
            .map(Some)
            .ok_or_else(|| self.bad_answer(&resp, "a user without an id or a status"))
    }

    /// The person's user now: by the recorded id (404 = deleted), else by login (nobody is
    /// `NotFound`).
    pub(super) async fn resolve(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Resolved, ProviderError> {
        match call.account {
            Some(known) => Ok(match self.get_user(&known.id, ctx, records).await? {
                Some(u) => Resolved::Live(u),
                None => Resolved::Gone(known.clone()),
            }),
            None => {
                self.check_login(call.login)?;
                match self.get_user(call.login, ctx, records).await? {
                    Some(u) => Ok(Resolved::Live(u)),
                    None => Err(ProviderError::NotFound(format!(
                        "system `{}`: no Okta user with login {:?} (GET /api/v1/users/{{login}} \
                         answered 404)",
                        self.system, call.login
                    ))),
                }
            }
        }
    }

    pub(super) fn account(&self, user: &User, login: &str) -> Account {
        Account::new(
            user.id.clone(),
            "Okta user id",
            user.login.clone().unwrap_or_else(|| login.to_string()),
        )
    }

    /// Resolve and identify; `Err(outcome)` when the user is already gone by id.
    pub(super) async fn live(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Result<(User, Account), ApplyOutcome>, ProviderError> {
        match self.resolve(call, ctx, records).await? {
            Resolved::Gone(account) => Ok(Err(ApplyOutcome {
                changed: false,
                summary: format!("Okta user {} already deleted (404 by id)", account.id),
                requests: std::mem::take(records),
                account: Some(account),
            })),
            Resolved::Live(user) => {
                let account = self.account(&user, call.login);
                ctx.identified(&account);
                Ok(Ok((user, account)))
            }
        }
    }
}
