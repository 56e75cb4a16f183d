//! The person's identity entity and its tokens: the entity found by userpass alias (on the
//! mount's accessor) or by name, or read again by its recorded id; `revoke_tokens` (an accessor
//! scan for the entity's live tokens, then the userpass lease prefix and each accessor) and
//! `disable_entity`, with their checks.

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use url::Url;

use super::VaultProvider;
use crate::providers::kit::http::{HttpResponse, Request, with_query};
use crate::providers::{
    Account, ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestLine, RequestRecord,
    RestoreCheck, StepCall,
};

impl VaultProvider {
    /// The person's identity entity as an account.
    fn entity_account(entity: &Entity) -> Account {
        Account::new(entity.id.clone(), "entity id", entity.name.clone())
    }

    /// The entity this step acted on, read by its recorded id (`Err(account)`: gone, 404), or
    /// the person's entity found by login (nobody is `NotFound`).
    async fn resolve_entity(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Result<Entity, Account>, ProviderError> {
        if let Some(known) = call.account {
            let resp = self
                .send(
                    Request::get(self.entity_url(&known.id)?).allow(StatusCode::NOT_FOUND),
                    ctx,
                    records,
                )
                .await?;
            if resp.status == StatusCode::NOT_FOUND {
                return Ok(Err(known.clone()));
            }
            let v: Value = resp.json()?;
            return Entity::from_data(&v["data"])
                .map(Ok)
                .ok_or_else(|| self.bad_answer(&resp, "an entity without an id"));
        }
        match self.find_entity(call.login, ctx, records).await? {
            Some(e) => Ok(Ok(e)),
            None => Err(self.no_entity(call.login)),
        }
    }

    /// The accessor of the userpass mount, from `GET /v1/sys/auth`.
    async fn userpass_accessor(
        &self,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<String, ProviderError> {
        let resp = self
            .send(
                Request::get(self.url(&[&Self::s(&["sys", "auth"])])?),
                ctx,
                records,
            )
            .await?;
        let v: Value = resp.json()?;
        let key = format!("{}/", self.userpass_mount.join("/"));
        let mounts = if v["data"].is_object() {
            &v["data"]
        } else {
            &v
        };
        let m = &mounts[key.as_str()];
        if m.is_null() {
            return Err(self.perm(format!(
                "no auth method is mounted at `{key}` (setting userpass_mount)"
            )));
        }
        if m["type"].as_str().is_some_and(|t| t != "userpass") {
            return Err(self.perm(format!(
                "the auth method at `{key}` is `{}`, not userpass (setting userpass_mount)",
                m["type"].as_str().unwrap_or_default()
            )));
        }
        m["accessor"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.bad_answer(&resp, &format!("mount `{key}` without an accessor")))
    }

    /// The person's identity entity: by userpass alias, else by entity name. `None` if neither.
    async fn find_entity(
        &self,
        login: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<Entity>, ProviderError> {
        let name = self.username(login)?;
        let accessor = self.userpass_accessor(ctx, records).await?;
        let resp = self
            .send(
                Request::post(self.url(&[&Self::s(&["identity", "lookup", "entity"])])?)
                    .json(
                        &json!({"alias_name": name, "alias_mount_accessor": accessor}),
                        "application/json",
                    )
                    .allow(StatusCode::NOT_FOUND),
                ctx,
                records,
            )
            .await?;
        if resp.status == StatusCode::OK && !resp.body.is_empty() {
            let v: Value = resp.json()?;
            return Entity::from_data(&v["data"])
                .map(Some)
                .ok_or_else(|| self.bad_answer(&resp, "an entity without an id"));
        }
        // No alias (204 or 404): an entity the admins named after the person?
        let resp = self
            .send(
                Request::get(self.url(&[&Self::s(&["identity", "entity", "name", login])])?)
                    .allow(StatusCode::NOT_FOUND),
                ctx,
                records,
            )
            .await?;
        if resp.status == StatusCode::NOT_FOUND || resp.body.is_empty() {
            return Ok(None);
        }
        let v: Value = resp.json()?;
        Entity::from_data(&v["data"])
            .map(Some)
            .ok_or_else(|| self.bad_answer(&resp, "an entity without an id"))
    }

    /// Accessors of the live tokens whose entity is `entity_id`, and how many were scanned.
    async fn entity_tokens(
        &self,
        entity_id: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(Vec<String>, usize), ProviderError> {
        let list_url = with_query(
            self.url(&[&Self::s(&["auth", "token", "accessors"])])?,
            &[("list", "true")],
        );
        let resp = self
            .send(
                Request::get(list_url).allow(StatusCode::NOT_FOUND),
                ctx,
                records,
            )
            .await?;
        let accessors: Vec<String> = if resp.status == StatusCode::NOT_FOUND {
            Vec::new()
        } else {
            let v: Value = resp.json()?;
            v["data"]["keys"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let lookup = self.url(&[&Self::s(&["auth", "token", "lookup-accessor"])])?;
        let results: Vec<Result<(String, HttpResponse), ProviderError>> =
            futures::stream::iter(accessors.iter().cloned())
                .map(|acc| {
                    let req = Request::post(lookup.clone())
                        .json(&json!({"accessor": acc}), "application/json")
                        // Revoked between the list and the lookup: "invalid accessor".
                        .allow(StatusCode::BAD_REQUEST);
                    async move { self.http.send(req, ctx).await.map(|r| (acc, r)) }
                })
                .buffered(8)
                .collect()
                .await;
        let mut found = Vec::new();
        for r in results {
            let (acc, resp) = r?;
            records.push(resp.record.clone());
            if resp.status != StatusCode::OK {
                continue;
            }
            let v: Value = resp.json()?;
            if v["data"]["entity_id"].as_str() == Some(entity_id) {
                found.push(acc);
            }
        }
        Ok((found, accessors.len()))
    }

    pub(super) async fn revoke_tokens(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let login = call.login;
        let name = self.username(login)?;
        let mut records = Vec::new();
        // Tokens are the entity's: find it (or read the recorded one) before revoking anything.
        let account = match self.resolve_entity(call, ctx, &mut records).await? {
            Ok(e) => Self::entity_account(&e),
            Err(gone) => gone,
        };
        ctx.identified(&account);
        let live = self.entity_tokens(&account.id, ctx, &mut records).await?.0;
        // How many live tokens there were (never the tokens or their accessors).
        ctx.before(&json!({"entity_id": account.id, "live_tokens": live.len()}));
        let mut prefixes = vec![name.clone()];
        if login != name {
            prefixes.push(login.to_string());
        }
        for p in &prefixes {
            self.send(Request::put(self.prefix_url(p)?), ctx, &mut records)
                .await?;
        }
        let revoke = self.url(&[&Self::s(&["auth", "token", "revoke-accessor"])])?;
        for acc in &live {
            // Idempotent: an accessor already gone answers 200 with a warning.
            self.send(
                Request::post(revoke.clone()).json(&json!({"accessor": acc}), "application/json"),
                ctx,
                &mut records,
            )
            .await?;
        }
        let prefix = format!("auth/{}/login/{name}", self.userpass_mount.join("/"));
        let summary = match live.len() {
            0 => format!(
                "no live token of entity {} for {login}; revoked the lease prefix {prefix} \
                 (nothing left)",
                account.id
            ),
            n => format!(
                "revoked {n} live token(s) of entity {} for {login} (by accessor) and the lease \
                 prefix {prefix}",
                account.id
            ),
        };
        Ok(ApplyOutcome {
            changed: !live.is_empty(),
            summary,
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_tokens(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        // A deleted entity's tokens are still found by its id in the scan.
        let account = match self.resolve_entity(call, ctx, &mut records).await? {
            Ok(e) => Self::entity_account(&e),
            Err(gone) => gone,
        };
        let (live, scanned) = self.entity_tokens(&account.id, ctx, &mut records).await?;
        Ok(CheckOutcome {
            revoked: live.is_empty(),
            observed: format!(
                "{} live token(s) of entity {} ({scanned} accessor(s) scanned)",
                live.len(),
                account.id
            ),
            account: Some(account),
        })
    }

    fn entity_url(&self, id: &str) -> Result<Url, ProviderError> {
        self.url(&[&Self::s(&["identity", "entity", "id", id])])
    }

    pub(super) async fn disable_entity(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let entity = match self.resolve_entity(call, ctx, &mut records).await? {
            Ok(e) => e,
            Err(gone) => {
                return Ok(ApplyOutcome {
                    changed: false,
                    summary: format!("identity entity {} no longer exists (deleted)", gone.id),
                    requests: records,
                    account: Some(gone),
                });
            }
        };
        let account = Self::entity_account(&entity);
        ctx.identified(&account);
        ctx.before(&entity.pre_state());
        if entity.disabled {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("identity entity {} already disabled", entity.id),
                requests: records,
                account: Some(account),
            });
        }
        self.send(
            Request::post(self.entity_url(&entity.id)?)
                .json(&json!({"disabled": true}), "application/json"),
            ctx,
            &mut records,
        )
        .await?;
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "disabled identity entity {} ({}) (disabled: false → true)",
                entity.id, entity.name
            ),
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_entity(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let found = match self.resolve_entity(call, ctx, &mut records).await? {
            Ok(e) => e,
            Err(gone) => {
                return Ok(CheckOutcome {
                    revoked: true,
                    observed: format!("identity entity {} no longer exists (deleted)", gone.id),
                    account: Some(gone),
                });
            }
        };
        // A lookup by alias is re-read by id: the proof.
        let e = if call.account.is_some() {
            found
        } else {
            let resp = self
                .send(
                    Request::get(self.entity_url(&found.id)?).allow(StatusCode::NOT_FOUND),
                    ctx,
                    &mut records,
                )
                .await?;
            if resp.status == StatusCode::NOT_FOUND {
                return Err(self.perm(format!(
                    "identity entity {} vanished while checking; cannot confirm",
                    found.id
                )));
            }
            let v: Value = resp.json()?;
            Entity::from_data(&v["data"])
                .ok_or_else(|| self.bad_answer(&resp, "an entity without an id"))?
        };
        Ok(CheckOutcome {
            revoked: e.disabled,
            observed: format!("entity {} disabled={}", e.id, e.disabled),
            account: Some(Self::entity_account(&e)),
        })
    }

    fn no_entity(&self, login: &str) -> ProviderError {
        ProviderError::NotFound(format!(
            "system `{}`: no identity entity for {login:?} (no alias on auth/{}/ and no entity \
             of that name; has the person ever logged in?)",
            self.system,
            self.userpass_mount.join("/")
        ))
    }
}

/// `disable_entity`'s recorded pre-state: the entity's id, name and `disabled` flag.
fn recorded_disabled(before: &Value) -> Option<(&str, bool)> {
    Some((before["entity_id"].as_str()?, before["disabled"].as_bool()?))
}

impl VaultProvider {
    /// The recorded `disabled` flag of `call.account`'s entity, checked against the account.
    fn entity_before<'a>(
        &self,
        call: &'a StepCall<'_>,
        before: &Value,
    ) -> Result<(&'a Account, bool), ProviderError> {
        let Some(account) = call.account else {
            return Err(self.perm(
                "restoring disable_entity needs the entity the apply acted on (none recorded)",
            ));
        };
        let Some((id, disabled)) = recorded_disabled(before) else {
            return Err(self.perm(format!(
                "the recorded pre-state of disable_entity is not one this kind wrote: {before}"
            )));
        };
        if id != account.id {
            return Err(self.perm(format!(
                "the recorded pre-state is of entity {id}, not of the one acted on ({})",
                account.id
            )));
        }
        Ok((account, disabled))
    }

    /// Set the entity's `disabled` flag back to the recorded value. Idempotent.
    pub(super) async fn restore_entity(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let (account, want) = self.entity_before(call, before)?;
        let mut records = Vec::new();
        let entity = match self.resolve_entity(call, ctx, &mut records).await? {
            Ok(e) => e,
            Err(gone) => {
                return Err(self.perm(format!(
                    "identity entity {} no longer exists (deleted): there is nothing to re-enable",
                    gone.id
                )));
            }
        };
        if entity.disabled == want {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!(
                    "identity entity {} already disabled={want}, as before",
                    entity.id
                ),
                requests: records,
                account: Some(Self::entity_account(&entity)),
            });
        }
        self.send(
            Request::post(self.entity_url(&account.id)?)
                .json(&json!({"disabled": want}), "application/json"),
            ctx,
            &mut records,
        )
        .await?;
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "{} identity entity {} ({}) (disabled: {} → {want})",
                if want { "disabled again" } else { "re-enabled" },
                entity.id,
                entity.name,
                entity.disabled
            ),
            requests: records,
            account: Some(Self::entity_account(&entity)),
        })
    }

    pub(super) fn describe_restore_entity(
        &self,
        call: &StepCall<'_>,
        before: &Value,
    ) -> Vec<RequestLine> {
        let Ok((account, want)) = self.entity_before(call, before) else {
            return Vec::new();
        };
        let Ok(url) = self.entity_url(&account.id) else {
            return Vec::new();
        };
        vec![
            RequestLine {
                method: "GET".into(),
                url: url.to_string(),
            },
            RequestLine {
                method: "POST".into(),
                url: format!("{url} {{\"disabled\":{want}}} (if it differs)"),
            },
        ]
    }

    /// Read the entity by its id: is `disabled` back to the recorded value?
    pub(super) async fn check_entity_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let (_, want) = self.entity_before(call, before)?;
        let mut records = Vec::new();
        Ok(match self.resolve_entity(call, ctx, &mut records).await? {
            Err(gone) => RestoreCheck {
                after: Value::Null,
                restored: false,
                observed: format!(
                    "identity entity {} no longer exists (deleted): it cannot be re-enabled",
                    gone.id
                ),
                account: Some(gone),
            },
            Ok(e) => RestoreCheck {
                after: e.pre_state(),
                restored: e.disabled == want,
                observed: format!(
                    "entity {} disabled={} (before offboard: {want})",
                    e.id, e.disabled
                ),
                account: Some(Self::entity_account(&e)),
            },
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entity {
    id: String,
    name: String,
    disabled: bool,
}

impl Entity {
    fn from_data(d: &Value) -> Option<Entity> {
        Some(Entity {
            id: d["id"].as_str().filter(|s| !s.is_empty())?.to_string(),
            name: d["name"].as_str().unwrap_or_default().to_string(),
            disabled: d["disabled"].as_bool().unwrap_or(false),
        })
    }

    /// `disable_entity`'s pre-state (and a restore check's `after`).
    fn pre_state(&self) -> Value {
        json!({"entity_id": self.id, "name": self.name, "disabled": self.disabled})
    }
}
