//! `remove_auth_methods`: every sign-in method but the password, each deleted at the path of
//! its kind (`/users/{id}/authentication/{kind}/{method id}`). The password method cannot be
//! deleted (it is reset instead: `reset_password`).

use reqwest::StatusCode;
use serde_json::Value;

use super::EntraProvider;
use super::graph::{Resolved, after_partial, already_deleted, gone, items, seen, text};
use crate::providers::kit::http::Request;
use crate::providers::{
    Account, ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall,
};

const PASSWORD_TYPE: &str = "#microsoft.graph.passwordAuthenticationMethod";

/// Each method type Graph v1.0 lists, and the collection its delete goes to.
const KINDS: &[(&str, &str)] = &[
    (
        "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
        "microsoftAuthenticatorMethods",
    ),
    ("#microsoft.graph.phoneAuthenticationMethod", "phoneMethods"),
    ("#microsoft.graph.fido2AuthenticationMethod", "fido2Methods"),
    (
        "#microsoft.graph.softwareOathAuthenticationMethod",
        "softwareOathMethods",
    ),
    ("#microsoft.graph.emailAuthenticationMethod", "emailMethods"),
    (
        "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
        "windowsHelloForBusinessMethods",
    ),
    (
        "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
        "temporaryAccessPassMethods",
    ),
    (
        "#microsoft.graph.platformCredentialAuthenticationMethod",
        "platformCredentialMethods",
    ),
];

/// One method the user has.
struct Method {
    id: String,
    odata_type: String,
}

impl Method {
    fn collection(&self) -> Option<&'static str> {
        KINDS
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(&self.odata_type))
            .map(|(_, c)| *c)
    }

    /// `phone`, `fido2`, … for people.
    fn label(&self) -> String {
        let t = self
            .odata_type
            .trim_start_matches("#microsoft.graph.")
            .trim_end_matches("AuthenticationMethod");
        format!("{t} {}", self.id)
    }

    fn is_password(&self) -> bool {
        self.odata_type.eq_ignore_ascii_case(PASSWORD_TYPE)
    }
}

impl EntraProvider {
    /// `GET /users/{id}/authentication/methods`: every method but the password.
    async fn methods(
        &self,
        account: &Account,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Method>, ProviderError> {
        let url = self.url(&["users", &account.id, "authentication", "methods"])?;
        let resp = self.send(Request::get(url), ctx, records).await?;
        let body: Value = resp.json()?;
        let list = items(&body).ok_or_else(|| {
            self.err(format!(
                "GET /users/{}/authentication/methods answered no `value` list",
                account.id
            ))
        })?;
        let mut out = Vec::new();
        for m in list {
            let (Some(id), Some(t)) = (text(m, "id"), text(m, "@odata.type")) else {
                return Err(self.err(format!(
                    "GET /users/{}/authentication/methods answered a method without `id` or \
                     `@odata.type`",
                    account.id
                )));
            };
            let m = Method {
                id: id.to_string(),
                odata_type: t.to_string(),
            };
            if !m.is_password() {
                out.push(m);
            }
        }
        Ok(out)
    }

    pub(super) async fn remove_auth_methods(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let account = match self.resolve(call, &[], ctx, &mut records).await? {
            Resolved::Live(_, a) => a,
            Resolved::Gone(a) => return Ok(already_deleted(a, records)),
        };
        ctx.identified(&account);
        let methods = self.methods(&account, ctx, &mut records).await?;
        let mut removed = Vec::new();
        let mut unknown = Vec::new();
        for m in &methods {
            let Some(collection) = m.collection() else {
                unknown.push(m.odata_type.clone());
                continue;
            };
            let url = self.url(&["users", &account.id, "authentication", collection, &m.id])?;
            // 404: already gone (removed by someone else meanwhile): done.
            let resp = self
                .send(
                    Request::delete(url).allow(StatusCode::NOT_FOUND),
                    ctx,
                    &mut records,
                )
                .await
                .map_err(|e| after_partial("removed", &removed, e))?;
            if resp.status != StatusCode::NOT_FOUND {
                removed.push(m.label());
            }
        }
        if !unknown.is_empty() {
            let done = if removed.is_empty() {
                String::new()
            } else {
                format!("removed {}; ", removed.join(", "))
            };
            return Err(self.err(format!(
                "{done}{account} also has method(s) of a kind offboard cannot delete: {} \
                 (remove them in the Entra admin center)",
                unknown.join(", ")
            )));
        }
        let summary = if removed.is_empty() {
            format!("{account} has no authentication method but the password")
        } else {
            format!(
                "removed {} authentication method(s) of {account}: {} (the password stays: \
                 reset it)",
                removed.len(),
                removed.join(", ")
            )
        };
        Ok(ApplyOutcome {
            changed: !removed.is_empty(),
            summary,
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_auth_methods(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let account = match self.resolve(call, &[], ctx, &mut records).await? {
            Resolved::Live(_, a) => a,
            Resolved::Gone(a) => return Ok(gone(a)),
        };
        let left = self.methods(&account, ctx, &mut records).await?;
        Ok(if left.is_empty() {
            seen(true, "only the password method is left".into(), &account)
        } else {
            let names: Vec<String> = left.iter().map(Method::label).collect();
            seen(false, format!("still has: {}", names.join(", ")), &account)
        })
    }
}
