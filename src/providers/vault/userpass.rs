//! The userpass user: the username as userpass stores it (lowercased; no `/` or control
//! characters), and `delete_userpass_user` with its check (404 is deleted, but only for a user
//! offboard saw before).

use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use super::VaultProvider;
use crate::providers::kit::http::Request;
use crate::providers::{
    Account, ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall,
};

impl VaultProvider {
    /// The userpass username: not empty, no `/`, no control characters; lowercased as userpass
    /// stores it.
    pub(super) fn username(&self, login: &str) -> Result<String, ProviderError> {
        if login.trim().is_empty() || login.contains('/') || login.chars().any(char::is_control) {
            return Err(self.perm(format!(
                "{login:?} is not a userpass username (empty, or contains `/` or control \
                 characters)"
            )));
        }
        Ok(login.to_lowercase())
    }

    async fn user_exists(
        &self,
        login: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<bool, ProviderError> {
        Ok(self.read_user(login, ctx, records).await?.is_some())
    }

    /// The userpass user's settings (`None`: no such user). Vault never sends the password or
    /// its hash; keys that look like one are dropped all the same.
    async fn read_user(
        &self,
        login: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<Value>, ProviderError> {
        let name = self.username(login)?;
        let resp = self
            .send(
                Request::get(self.user_url(&name)?).allow(StatusCode::NOT_FOUND),
                ctx,
                records,
            )
            .await?;
        self.ensure_route(&resp, "userpass_mount")?;
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v: Value = if resp.body.is_empty() {
            Value::Null
        } else {
            resp.json()?
        };
        let mut settings = match &v["data"] {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        settings.retain(|k, _| {
            let k = k.to_lowercase();
            !(k.contains("password") || k.contains("hash") || k.contains("secret"))
        });
        Ok(Some(Value::Object(settings)))
    }

    /// A userpass user has no id but its name on the mount: that path is the account.
    fn userpass_account(&self, name: &str) -> Account {
        let path = format!("auth/{}/users/{name}", self.userpass_mount.join("/"));
        Account::new(path, "userpass user path", name)
    }

    pub(super) async fn delete_user(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let login = call.login;
        let name = self.username(login)?;
        let mut records = Vec::new();
        let mount = self.userpass_mount.join("/");
        let account = call
            .account
            .cloned()
            .unwrap_or_else(|| self.userpass_account(&name));
        let Some(settings) = self.read_user(login, ctx, &mut records).await? else {
            if call.account.is_none() {
                return Err(ProviderError::NotFound(format!(
                    "system `{}`: no userpass user {name:?} on auth/{mount}/",
                    self.system
                )));
            }
            ctx.before(&json!({"user": format!("auth/{mount}/users/{name}"), "exists": false}));
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("userpass user {name} on auth/{mount}/ already deleted (404)"),
                requests: records,
                account: Some(account),
            });
        };
        ctx.identified(&account);
        ctx.before(&json!({
            "user": format!("auth/{mount}/users/{name}"),
            "exists": true,
            "settings": settings,
        }));
        self.send(Request::delete(self.user_url(&name)?), ctx, &mut records)
            .await?;
        Ok(ApplyOutcome {
            changed: true,
            summary: format!("deleted userpass user {name} on auth/{mount}/"),
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_user_deleted(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let name = self.username(call.login)?;
        let account = call
            .account
            .cloned()
            .unwrap_or_else(|| self.userpass_account(&name));
        if self.user_exists(call.login, ctx, &mut records).await? {
            return Ok(CheckOutcome {
                revoked: false,
                observed: format!("userpass user {name} exists"),
                account: Some(account),
            });
        }
        if call.account.is_none() {
            return Err(ProviderError::NotFound(format!(
                "system `{}`: no userpass user {name:?} on auth/{}/, and offboard never saw \
                 one: nothing proves it was deleted",
                self.system,
                self.userpass_mount.join("/")
            )));
        }
        Ok(CheckOutcome {
            revoked: true,
            observed: format!("userpass user {name} no longer exists (404: deleted)"),
            account: Some(account),
        })
    }
}
