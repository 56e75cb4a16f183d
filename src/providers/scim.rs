//! Generic SCIM 2.0 (RFC 7643 / 7644).
//!
//! The person is found with `GET {base}/Users?filter=<user_attribute> eq "<login>"` (the login a
//! JSON string literal, the whole query percent-encoded), then:
//! - `deactivate_user`: `PATCH {base}/Users/{id}` with a PatchOp `replace active=false`
//!   (200 with the resource and 204 without are both accepted); check reads `active` from
//!   `GET {base}/Users/{id}`, and a deleted user counts as revoked;
//! - `delete_user`: `DELETE {base}/Users/{id}` (a user already gone is `changed: false`); check
//!   expects the filter to find nobody, or `GET {base}/Users/{id}` to answer 404.
//! - `remove_from_groups` (optional `groups = [display names]`, default every group): the
//!   groups are found with `GET {base}/Groups?filter=members[value eq "<id>"]` (paged), not from
//!   `User.groups`, which some servers (scim2-server) leave empty; each returned group's
//!   `members` is checked again on the client, in case a server ignores the filter. Each is
//!   `PATCH`ed with `remove` on the path `members[value eq "<id>"]`; the summary names the groups
//!   removed. Check: the same search finds no (listed) group holding the user.
//!
//! Reads by id are the proof: some services answer filters from a search index that lags.
//!
//! Rollback (`offboard rollback`): each apply records the pre-state it changes
//! (`{"active": …}` for deactivate and delete, `{"groups": [{"id", "name"}…]}` for the groups
//! left). `deactivate_user` is restored with `PATCH replace active` back to the recorded value;
//! `remove_from_groups` by `PATCH {base}/Groups/{group id}` with `add` on the path `members`
//! for each recorded group the user is not in now (a group gone since answers 404 and is
//! reported as not restorable); `delete_user` cannot be undone (SCIM has no undelete).
//!
//! Round trips: the preflight's lookup by filter names the account it found, and the run's first
//! apply acts on that id directly (`PATCH`/`DELETE`, or the member search), so a step costs a
//! lookup, a change and the check's one read by id (for groups, the member search by id);
//! deactivate reads the user by id once more before its change, for the pre-state.
//!
//! Requests are authorised by `token` (a bearer token) or by the system's `auth` table (see
//! [`super::kit::auth::for_system`]): a static bearer or header token, HTTP Basic, or OAuth 2.0
//! client credentials, as SCIM services behind an identity platform often want.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::{Value, json};
use url::Url;

use super::kit::http::{HttpClient, HttpResponse, Request, RetryPolicy, with_query};
use super::kit::paging::{self, Paging};
use super::{
    Account, ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, KindSpec, NO_PARAMS, ParamsSpec,
    Provider, ProviderError, RequestLine, RequestRecord, RestoreCheck, SettingSpec, SettingType,
    StepCall, SystemConfig, params,
};

pub static KIND: KindSpec = KindSpec {
    name: "scim",
    summary: "Any SCIM 2.0 service provider (RFC 7643/7644)",
    actions: &[
        ActionSpec {
            name: "deactivate_user",
            summary: "PATCH the user `active=false`; the check reads `active` (a deleted user counts \
                      as revoked)",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: crate::providers::Inverse::Restore(
                "set `active` back to its recorded value (PATCH replace active)",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "delete_user",
            summary: "DELETE the user; the check expects 404",
            destructive: true,
            alerts_user: false,
            revokes: true,
            inverse: crate::providers::Inverse::None(
                "SCIM has no undelete; a new user would get a new id",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "remove_from_groups",
            summary: "PATCH each group holding the user (found with the filter `members[value eq \
                      \"<id>\"]`) to remove that member; the summary names the groups; the check finds \
                      no (listed) group holding the user",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: crate::providers::Inverse::Restore(
                "re-add the user to each group it was removed from, by group id (PATCH add members)",
            ),
            params: ParamsSpec::of::<GroupsParams>(),
        },
    ],
    settings: &[
        SettingSpec {
            name: "user_attribute",
            ty: SettingType::String,
            required: false,
            summary: "the attribute the person is found by (default `userName`)",
        },
        super::kit::http::ALLOW_PLAIN,
        super::kit::auth::SETTING,
    ],
    needs_base_url: true,
    url_schemes: &["https", "http"],
    needs_token: true,
    connect,
    check_action: None,
};

/// `remove_from_groups`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct GroupsParams {
    /// Only these groups (by `displayName`, case-insensitive); default: every group the user
    /// is a member of.
    #[schemars(length(min = 1))]
    groups: Option<Vec<String>>,
}

const SCIM_JSON: &str = "application/scim+json";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(Arc::new(ScimProvider::new(cfg)?))
}

/// A connected SCIM service provider.
#[derive(Debug)]
pub struct ScimProvider {
    http: HttpClient,
    system: String,
    user_attribute: String,
}

impl ScimProvider {
    /// Build from the system's configuration. No I/O; works without a token (planning).
    pub fn new(cfg: &SystemConfig) -> anyhow::Result<ScimProvider> {
        let user_attribute = match cfg.settings.get("user_attribute") {
            None => "userName".to_string(),
            Some(toml::Value::String(s)) => s.clone(),
            Some(other) => anyhow::bail!(
                "system `{}`: user_attribute must be a string, not {}",
                cfg.name,
                other.type_str()
            ),
        };
        if !is_attribute_path(&user_attribute) {
            anyhow::bail!(
                "system `{}`: user_attribute `{user_attribute}` is not a SCIM attribute name \
                 (letters, digits, `_`, `-`, `$`, `.` sub-attributes, or a schema URN prefix)",
                cfg.name
            );
        }
        let mut http = HttpClient::new(cfg)?
            .with_accept("application/scim+json, application/json")
            .with_error_parser(scim_error_message);
        // `token` or the `auth` table (bearer, header, basic, OAuth client credentials…).
        if let Some(auth) = super::kit::auth::for_system(cfg)? {
            http = http.with_auth(auth);
        }
        Ok(ScimProvider {
            http,
            system: cfg.name.clone(),
            user_attribute,
        })
    }

    /// The client requests go through (the `slack` kind sends its SCIM `DELETE` with it).
    pub(crate) fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Replace the retry policy (tests use tiny budgets).
    pub fn with_retry(mut self, retry: RetryPolicy) -> ScimProvider {
        self.http = self.http.with_retry(retry);
        self
    }

    /// The filter that finds the person: `<attr> eq "<login>"`, the login a JSON string literal
    /// (so `"` and `\` are escaped as RFC 7644 §3.4.2.2 asks, and control characters too).
    pub fn filter_for(&self, login: &str) -> String {
        let literal = serde_json::to_string(login).expect("a string always serialises");
        format!("{} eq {literal}", self.user_attribute)
    }

    fn users_url(&self) -> Result<Url, ProviderError> {
        self.http.endpoint(&["Users"])
    }

    pub(crate) fn find_url(&self, login: &str) -> Result<Url, ProviderError> {
        Ok(with_query(
            self.users_url()?,
            &[("filter", &self.filter_for(login))],
        ))
    }

    pub(crate) fn user_url(&self, id: &str) -> Result<Url, ProviderError> {
        self.http.endpoint(&["Users", id])
    }

    fn check_login(&self, login: &str) -> Result<(), ProviderError> {
        if login.trim().is_empty() {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: the login to look up is empty",
                self.system
            )));
        }
        Ok(())
    }

    /// Find the person by filter. `Ok(None)` when nobody matches. (The `slack` kind finds its
    /// users through this too.)
    pub(crate) async fn find(
        &self,
        login: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<User>, ProviderError> {
        self.check_login(login)?;
        let url = self.find_url(login)?;
        let resp = self
            .http
            .send(Request::get(url).allow(StatusCode::NOT_FOUND), ctx)
            .await?;
        records.push(resp.record.clone());
        if resp.status == StatusCode::NOT_FOUND {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: GET {} answered 404: is base_url the SCIM root (e.g. \
                 https://host/scim/v2)?",
                self.system,
                self.users_url()?.path()
            )));
        }
        let list: Value = resp.json()?;
        let total = match list.get("totalResults") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| self.bad_answer(&resp, "a ListResponse without a numeric totalResults"))?;
        let resources = match list.get("Resources") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => {
                return Err(self.bad_answer(&resp, "a ListResponse whose Resources is not a list"));
            }
        };
        if total > 1 || resources.len() > 1 {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: the filter {} is ambiguous: {} users match; refusing to guess",
                self.system,
                self.filter_for(login),
                total.max(resources.len() as u64)
            )));
        }
        if total == 0 {
            return Ok(None);
        }
        let Some(resource) = resources.into_iter().next() else {
            return Err(self.bad_answer(&resp, "totalResults 1 but no Resources"));
        };
        let user = User::from_resource(&resource)
            .ok_or_else(|| self.bad_answer(&resp, "a user without an id"))?;
        self.ensure_match(login, &resource)?;
        Ok(Some(user))
    }

    /// A server that ignores filters would hand back someone else: refuse when the returned
    /// resource visibly has another value for the attribute.
    fn ensure_match(&self, login: &str, resource: &Value) -> Result<(), ProviderError> {
        if self.user_attribute.contains(['.', ':']) {
            return Ok(());
        }
        let Some(obj) = resource.as_object() else {
            return Ok(());
        };
        let value = obj
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&self.user_attribute))
            .and_then(|(_, v)| v.as_str());
        match value {
            Some(v)
                if !v.eq_ignore_ascii_case(login) && v.to_lowercase() != login.to_lowercase() =>
            {
                Err(ProviderError::Permanent(format!(
                    "system `{}`: asked for {} {login:?} but the server returned {v:?}; it may \
                     not support filtering, refusing to touch that user",
                    self.system, self.user_attribute
                )))
            }
            _ => Ok(()),
        }
    }

    /// `GET /Users/{id}`: `None` on 404.
    pub(crate) async fn get_user(
        &self,
        id: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<User>, ProviderError> {
        let resp = self
            .http
            .send(
                Request::get(self.user_url(id)?).allow(StatusCode::NOT_FOUND),
                ctx,
            )
            .await?;
        records.push(resp.record.clone());
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v: Value = resp.json()?;
        Ok(Some(User::from_resource(&v).ok_or_else(|| {
            self.bad_answer(&resp, "a user without an id")
        })?))
    }

    fn bad_answer(&self, resp: &HttpResponse, what: &str) -> ProviderError {
        ProviderError::Permanent(format!(
            "system `{}`: {} {} answered {what}",
            self.system,
            resp.record.method,
            Url::parse(&resp.record.url)
                .map(|u| u.path().to_string())
                .unwrap_or_default()
        ))
    }

    /// The filter found an account that reading by id says is gone: offboard never acted on
    /// it, so its absence proves nothing about this person.
    fn index_disagrees(&self, account: &Account) -> ProviderError {
        ProviderError::Transient(format!(
            "system `{}`: the filter finds {account} but GET {} answers 404 (a search index that \
             lags?); cannot confirm",
            self.system,
            self.user_url(&account.id)
                .map(|u| u.path().to_string())
                .unwrap_or_default()
        ))
    }

    fn not_found(&self, login: &str) -> ProviderError {
        ProviderError::NotFound(format!(
            "system `{}`: no SCIM user with {} {login:?}",
            self.system, self.user_attribute
        ))
    }

    /// The account a SCIM user is, by its `id`.
    fn account(&self, user: &User, login: &str) -> Account {
        Account::new(
            user.id.clone(),
            "SCIM id",
            user.user_name.clone().unwrap_or_else(|| login.to_string()),
        )
    }

    /// The person's user as the system has it now: by the recorded id when the step already
    /// identified them (a 404 then means deleted), else by filter (nobody is `NotFound`).
    async fn resolve(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Resolved, ProviderError> {
        match call.account {
            Some(known) => Ok(match self.get_user(&known.id, ctx, records).await? {
                Some(user) => Resolved::Live(user),
                None => Resolved::Gone(known.clone()),
            }),
            None => match self.find(call.login, ctx, records).await? {
                Some(user) => Ok(Resolved::Live(user)),
                None => Err(self.not_found(call.login)),
            },
        }
    }

    /// The user a change acts on: the account this run's preflight just found, by its id
    /// without a second read, or else as [`ScimProvider::resolve`] reads it.
    async fn resolve_to_change(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Target, ProviderError> {
        match call.account {
            Some(found) if ctx.account_found_just_now() => Ok(Target::Found(found.clone())),
            _ => Ok(Target::Read(self.resolve(call, ctx, records).await?)),
        }
    }

    /// `PATCH active=false` on a user by id. `Ok(false)`: the user is gone (404).
    async fn patch_inactive(
        &self,
        id: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<bool, ProviderError> {
        let body = json!({
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "active", "value": false}],
        });
        let resp = self
            .http
            .send(
                Request::patch(self.user_url(id)?)
                    .json(&body, SCIM_JSON)
                    .allow(StatusCode::NOT_FOUND),
                ctx,
            )
            .await?;
        records.push(resp.record.clone());
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        if resp.status != StatusCode::NO_CONTENT && !resp.body.is_empty() {
            let v: Value = resp.json()?;
            if let Some(u) = User::from_resource(&v)
                && u.active == Some(true)
            {
                return Err(ProviderError::Permanent(format!(
                    "system `{}`: PATCH {} was accepted but the user still reports active=true",
                    self.system,
                    self.user_url(id)?.path()
                )));
            }
        }
        Ok(true)
    }

    async fn deactivate(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let user = match self.resolve_to_change(call, ctx, &mut records).await? {
            Target::Read(Resolved::Live(user)) => user,
            Target::Read(Resolved::Gone(account)) => return Ok(already_deleted(account, records)),
            Target::Found(account) => {
                ctx.identified(&account);
                // The pre-state, read by id just before the change (for `offboard rollback`).
                let Some(user) = self.get_user(&account.id, ctx, &mut records).await? else {
                    return Ok(already_deleted(account, records));
                };
                ctx.before(&active_state(&user));
                if user.active == Some(false) {
                    return Ok(ApplyOutcome {
                        changed: false,
                        summary: format!("SCIM user {} already inactive (active=false)", user.id),
                        requests: records,
                        account: Some(account),
                    });
                }
                if !self.patch_inactive(&account.id, ctx, &mut records).await? {
                    return Ok(already_deleted(account, records));
                }
                return Ok(ApplyOutcome {
                    changed: true,
                    summary: format!(
                        "deactivated SCIM user {} (active: {} → false)",
                        account.id,
                        active_word(user.active)
                    ),
                    requests: records,
                    account: Some(account),
                });
            }
        };
        let account = self.account(&user, call.login);
        ctx.identified(&account);
        if user.active == Some(false) {
            // The filter may come from a lagging index: confirm by id before doing nothing.
            match self.get_user(&user.id, ctx, &mut records).await? {
                Some(u) if u.active == Some(false) => {
                    ctx.before(&active_state(&u));
                    return Ok(ApplyOutcome {
                        changed: false,
                        summary: format!("SCIM user {} already inactive (active=false)", user.id),
                        requests: records,
                        account: Some(account),
                    });
                }
                Some(_) => {}
                None => return Ok(already_deleted(account, records)),
            }
        }
        // The user as just read (by id when the account was known, else the resource the
        // filter returned): the pre-state rollback puts back.
        ctx.before(&active_state(&user));
        if !self.patch_inactive(&user.id, ctx, &mut records).await? {
            return Ok(already_deleted(account, records));
        }
        let before = active_word(user.active);
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "deactivated SCIM user {} (active: {before} → false)",
                user.id
            ),
            requests: records,
            account: Some(account),
        })
    }

    async fn delete(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let account = match self.resolve_to_change(call, ctx, &mut records).await? {
            Target::Read(Resolved::Live(user)) => {
                ctx.before(&active_state(&user));
                self.account(&user, call.login)
            }
            Target::Read(Resolved::Gone(account)) => return Ok(already_deleted(account, records)),
            Target::Found(account) => account,
        };
        ctx.identified(&account);
        let resp = self
            .http
            .send(
                Request::delete(self.user_url(&account.id)?).allow(StatusCode::NOT_FOUND),
                ctx,
            )
            .await?;
        records.push(resp.record.clone());
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(already_deleted(account, records));
        }
        Ok(ApplyOutcome {
            changed: true,
            summary: format!("deleted SCIM user {}", account.id),
            requests: records,
            account: Some(account),
        })
    }

    async fn check_inactive(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let found = match self.resolve(call, ctx, &mut records).await? {
            Resolved::Live(user) => user,
            Resolved::Gone(account) => return Ok(gone(account)),
        };
        // A filter hit is re-read by id: the filter may come from an index that lags.
        let account = self.account(&found, call.login);
        let user = if call.account.is_some() {
            found
        } else {
            match self.get_user(&found.id, ctx, &mut records).await? {
                Some(u) => u,
                None => return Err(self.index_disagrees(&account)),
            }
        };
        let account = Some(self.account(&user, &account.name));
        match user.active {
            Some(false) => Ok(CheckOutcome {
                revoked: true,
                observed: "active=false".into(),
                account,
            }),
            Some(true) => Ok(CheckOutcome {
                revoked: false,
                observed: "active=true".into(),
                account,
            }),
            None => Err(ProviderError::Permanent(format!(
                "system `{}`: GET {} does not report `active`; cannot tell whether the user is \
                 deactivated",
                self.system,
                self.user_url(&user.id)?.path()
            ))),
        }
    }

    async fn check_deleted(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let found = match self.resolve(call, ctx, &mut records).await? {
            Resolved::Live(user) => user,
            Resolved::Gone(account) => return Ok(gone(account)),
        };
        let account = self.account(&found, call.login);
        let live = if call.account.is_some() {
            Some(found)
        } else {
            self.get_user(&found.id, ctx, &mut records).await?
        };
        match live {
            None => Err(self.index_disagrees(&account)),
            Some(u) => Ok(CheckOutcome {
                revoked: false,
                observed: format!(
                    "user still exists (id {}, active={})",
                    u.id,
                    u.active
                        .map_or("not reported".to_string(), |a| a.to_string())
                ),
                account: Some(self.account(&u, &account.name)),
            }),
        }
    }

    /// `params.groups`, if given: the display names to restrict to.
    fn group_names(&self, call: &StepCall<'_>) -> Result<Option<Vec<String>>, ProviderError> {
        let p: GroupsParams = params::parse(call.action, call.params)?;
        if p.groups.as_ref().is_some_and(Vec::is_empty) {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: step `{}`: params.groups must be a non-empty list of group \
                 display names",
                self.system, call.step_id
            )));
        }
        Ok(p.groups)
    }

    fn groups_url(&self) -> Result<Url, ProviderError> {
        self.http.endpoint(&["Groups"])
    }

    /// The filter that finds the groups holding `user_id` (a JSON string literal, as for users).
    pub fn member_filter(user_id: &str) -> String {
        let literal = serde_json::to_string(user_id).expect("a string always serialises");
        format!("members[value eq {literal}]")
    }

    /// Every group holding `user_id` (paged), restricted to `only` display names if given.
    async fn member_groups(
        &self,
        user_id: &str,
        only: Option<&[String]>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Group>, ProviderError> {
        const PAGE: usize = 100;
        let url = with_query(
            self.groups_url()?,
            &[("filter", &Self::member_filter(user_id))],
        );
        let (found, made) = paging::get_all(
            &self.http,
            url,
            Paging::StartIndex { count: PAGE },
            "/Resources",
            ctx,
        )
        .await?;
        records.extend(made);
        let mut groups = Vec::new();
        for g in &found {
            let group = Group::from_resource(g).ok_or_else(|| {
                ProviderError::Permanent(format!(
                    "system `{}`: GET {} answered a group without an id",
                    self.system,
                    self.groups_url()
                        .map(|u| u.path().to_string())
                        .unwrap_or_default()
                ))
            })?;
            // A server that ignores the filter returns every group: look for ourselves.
            if group
                .members
                .as_ref()
                .is_some_and(|m| !m.iter().any(|v| v == user_id))
            {
                continue;
            }
            if let Some(only) = only
                && !only
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(&group.display_name))
            {
                continue;
            }
            groups.push(group);
        }
        groups.sort_by_key(|g| g.display_name.to_lowercase());
        groups.dedup_by(|a, b| a.id == b.id);
        Ok(groups)
    }

    async fn remove_from_groups(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let only = self.group_names(call)?;
        let mut records = Vec::new();
        let account = match self.resolve_to_change(call, ctx, &mut records).await? {
            Target::Read(Resolved::Live(user)) => self.account(&user, call.login),
            Target::Read(Resolved::Gone(account)) => return Ok(already_deleted(account, records)),
            Target::Found(account) => account,
        };
        ctx.identified(&account);
        let user_id = account.id.clone();
        let groups = self
            .member_groups(&user_id, only.as_deref(), ctx, &mut records)
            .await?;
        // The groups about to be left, by id (and name, for people): what rollback re-adds.
        ctx.before(&json!({
            "groups": groups
                .iter()
                .map(|g| json!({"id": g.id, "name": g.display_name}))
                .collect::<Vec<_>>(),
        }));
        let body = json!({
            "schemas": [PATCH_OP],
            "Operations": [{"op": "remove", "path": Self::member_filter(&user_id)}],
        });
        let mut removed = Vec::new();
        for g in &groups {
            let url = self.http.endpoint(&["Groups", &g.id])?;
            let resp = self
                .http
                .send(Request::patch(url).json(&body, SCIM_JSON), ctx)
                .await
                .map_err(|e| {
                    if removed.is_empty() {
                        e
                    } else {
                        let done = format!("removed from {}; then ", removed.join(", "));
                        match e {
                            ProviderError::Transient(m) => ProviderError::Transient(done + &m),
                            ProviderError::Permanent(m) => ProviderError::Permanent(done + &m),
                            ProviderError::NotFound(m) => ProviderError::Permanent(done + &m),
                        }
                    }
                })?;
            records.push(resp.record.clone());
            removed.push(g.display_name.clone());
        }
        let scope = match &only {
            Some(o) => format!(" (of the listed: {})", o.join(", ")),
            None => String::new(),
        };
        let summary = if removed.is_empty() {
            format!(
                "SCIM user {} is in no group{scope}: nothing to remove",
                user_id
            )
        } else {
            format!(
                "removed SCIM user {} from {} group(s){scope}: {}",
                user_id,
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

    async fn check_groups(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let only = self.group_names(call)?;
        let mut records = Vec::new();
        // The member search is itself a read by the account's id (a deleted user is a member of
        // nothing): with the account known, it is the one round trip.
        let account = match call.account {
            Some(known) => known.clone(),
            None => match self.resolve(call, ctx, &mut records).await? {
                Resolved::Live(user) => self.account(&user, call.login),
                Resolved::Gone(account) => return Ok(gone(account)),
            },
        };
        let groups = self
            .member_groups(&account.id, only.as_deref(), ctx, &mut records)
            .await?;
        let account = Some(account);
        Ok(if groups.is_empty() {
            CheckOutcome {
                revoked: true,
                observed: match &only {
                    Some(o) => format!("member of none of: {}", o.join(", ")),
                    None => "member of no group".into(),
                },
                account,
            }
        } else {
            let names: Vec<&str> = groups.iter().map(|g| g.display_name.as_str()).collect();
            CheckOutcome {
                revoked: false,
                observed: format!("still member of: {}", names.join(", ")),
                account,
            }
        })
    }

    /// Put `active` back to its recorded value.
    async fn restore_active(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let account = restore_account(call)?;
        let Some(was) = before["active"].as_bool() else {
            return Err(ProviderError::Permanent(
                "the recorded pre-state does not say whether the user was active".into(),
            ));
        };
        let mut records = Vec::new();
        let Some(user) = self.get_user(&account.id, ctx, &mut records).await? else {
            return Err(self.deleted_since(account));
        };
        if user.active == Some(was) {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("SCIM user {} already active={was}", account.id),
                requests: records,
                account: Some(account.clone()),
            });
        }
        let body = json!({
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "active", "value": was}],
        });
        let resp = self
            .http
            .send(
                Request::patch(self.user_url(&account.id)?)
                    .json(&body, SCIM_JSON)
                    .allow(StatusCode::NOT_FOUND),
                ctx,
            )
            .await?;
        records.push(resp.record.clone());
        if resp.status == StatusCode::NOT_FOUND {
            return Err(self.deleted_since(account));
        }
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "restored SCIM user {} (active: {} → {was})",
                account.id,
                active_word(user.active)
            ),
            requests: records,
            account: Some(account.clone()),
        })
    }

    fn deleted_since(&self, account: &Account) -> ProviderError {
        ProviderError::Permanent(format!(
            "system `{}`: SCIM user {} no longer exists (404 by id): it was deleted since, and SCIM \
             has no undelete",
            self.system, account.id
        ))
    }

    /// Re-add the user to each recorded group it is not in now (`PATCH add members`). A group
    /// gone since is named in the summary; `check_restored` reports it as not restorable.
    async fn restore_groups(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let account = restore_account(call)?;
        let wanted = recorded_groups(before)?;
        let mut records = Vec::new();
        let now: Vec<String> = self
            .member_groups(&account.id, None, ctx, &mut records)
            .await?
            .into_iter()
            .map(|g| g.id)
            .collect();
        let body = json!({
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": account.id}]}],
        });
        let (mut added, mut gone) = (Vec::new(), Vec::new());
        for g in wanted.iter().filter(|g| !now.contains(&g.id)) {
            let url = self.http.endpoint(&["Groups", &g.id])?;
            let resp = self
                .http
                .send(
                    Request::patch(url)
                        .json(&body, SCIM_JSON)
                        .allow(StatusCode::NOT_FOUND),
                    ctx,
                )
                .await?;
            records.push(resp.record.clone());
            if resp.status == StatusCode::NOT_FOUND {
                gone.push(format!("{} ({})", g.name, g.id));
            } else {
                added.push(g.name.clone());
            }
        }
        let mut summary = if added.is_empty() {
            format!(
                "SCIM user {} is back in every recorded group still there",
                account.id
            )
        } else {
            format!(
                "re-added SCIM user {} to {} group(s): {}",
                account.id,
                added.len(),
                added.join(", ")
            )
        };
        if !gone.is_empty() {
            summary.push_str(&format!("; no longer exist: {}", gone.join(", ")));
        }
        Ok(ApplyOutcome {
            changed: !added.is_empty(),
            summary,
            requests: records,
            account: Some(account.clone()),
        })
    }

    /// `GET /Groups/{id}`: whether the group still exists.
    async fn group_exists(
        &self,
        id: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<bool, ProviderError> {
        let url = self.http.endpoint(&["Groups", id])?;
        let resp = self
            .http
            .send(Request::get(url).allow(StatusCode::NOT_FOUND), ctx)
            .await?;
        records.push(resp.record.clone());
        Ok(resp.status != StatusCode::NOT_FOUND)
    }

    fn unknown_action(&self, action: &str) -> ProviderError {
        ProviderError::Permanent(format!(
            "system `{}`: the scim kind has no action `{action}`",
            self.system
        ))
    }
}

/// The user a change acts on.
enum Target {
    /// As [`ScimProvider::resolve`] read it.
    Read(Resolved),
    /// Found by this run's preflight moments ago and not read again (its state is not known; a
    /// 404 to the change itself means deleted).
    Found(Account),
}

/// The user this step acted on, as it stands now.
enum Resolved {
    Live(User),
    /// Read by its recorded id and answered 404: deleted since offboard saw it.
    Gone(Account),
}

/// The recorded account is gone by id: deleted, so nothing of it is left to revoke.
fn gone(account: Account) -> CheckOutcome {
    CheckOutcome {
        revoked: true,
        observed: format!(
            "SCIM user {} no longer exists (404 by id: deleted)",
            account.id
        ),
        account: Some(account),
    }
}

/// A user's `active`, as the pre-state of deactivate (and delete) records it.
fn active_state(user: &User) -> Value {
    json!({ "active": user.active })
}

fn active_word(active: Option<bool>) -> &'static str {
    match active {
        Some(true) => "true",
        Some(false) => "false",
        None => "not reported",
    }
}

/// A group the pre-state of `remove_from_groups` names.
#[derive(Debug, Clone)]
struct RecordedGroup {
    id: String,
    name: String,
}

fn recorded_groups(before: &Value) -> Result<Vec<RecordedGroup>, ProviderError> {
    let list = before["groups"]
        .as_array()
        .ok_or_else(|| ProviderError::Permanent("the recorded pre-state names no groups".into()))?;
    list.iter()
        .map(|g| {
            let id = g["id"]
                .as_str()
                .ok_or_else(|| ProviderError::Permanent("a recorded group has no id".into()))?;
            Ok(RecordedGroup {
                id: id.to_string(),
                name: g["name"].as_str().unwrap_or(id).to_string(),
            })
        })
        .collect()
}

fn restore_account<'a>(call: &StepCall<'a>) -> Result<&'a Account, ProviderError> {
    call.account.ok_or_else(|| {
        ProviderError::Permanent("no account was recorded for this step: nothing to restore".into())
    })
}

fn already_deleted(account: Account, requests: Vec<RequestRecord>) -> ApplyOutcome {
    ApplyOutcome {
        changed: false,
        summary: format!("SCIM user {} already deleted (404 by id)", account.id),
        requests,
        account: Some(account),
    }
}

#[async_trait]
impl Provider for ScimProvider {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        let find = match self.find_url(call.login) {
            Ok(u) => u.to_string(),
            Err(_) => return Vec::new(),
        };
        let by_id = match self.users_url() {
            Ok(u) => format!("{u}/{{id}}"),
            Err(_) => return Vec::new(),
        };
        let line = |method: &str, url: &str| RequestLine {
            method: method.into(),
            url: url.into(),
        };
        match call.action {
            "deactivate_user" => vec![line("GET", &find), line("PATCH", &by_id)],
            "delete_user" => vec![line("GET", &find), line("DELETE", &by_id)],
            "remove_from_groups" => {
                let groups = match self.groups_url() {
                    Ok(u) => u,
                    Err(_) => return Vec::new(),
                };
                let search =
                    with_query(groups.clone(), &[("filter", &Self::member_filter("{id}"))])
                        .to_string()
                        .replace("%7Bid%7D", "{id}");
                vec![
                    line("GET", &find),
                    line("GET", &search),
                    line("PATCH", &format!("{groups}/{{group_id}}")),
                ]
            }
            _ => Vec::new(),
        }
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "deactivate_user" => self.deactivate(call, ctx).await,
            "delete_user" => self.delete(call, ctx).await,
            "remove_from_groups" => self.remove_from_groups(call, ctx).await,
            other => Err(self.unknown_action(other)),
        }
    }

    /// One lookup by filter (token valid, person found, unambiguous), naming the account found
    /// through `ctx` so that the run's first apply acts on it by id without a second lookup.
    async fn preflight(&self, call: &StepCall<'_>, ctx: &CallCtx) -> Result<String, ProviderError> {
        if call.action == "remove_from_groups" {
            self.group_names(call)?;
        } else if !matches!(call.action, "deactivate_user" | "delete_user") {
            return Err(self.unknown_action(call.action));
        }
        let mut records = Vec::new();
        let user = self
            .find(call.login, ctx, &mut records)
            .await?
            .ok_or_else(|| self.not_found(call.login))?;
        let account = self.account(&user, call.login);
        ctx.identified(&account);
        Ok(format!("found {account}"))
    }

    async fn restore(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "deactivate_user" => self.restore_active(call, before, ctx).await,
            "remove_from_groups" => self.restore_groups(call, before, ctx).await,
            other => Err(ProviderError::Permanent(format!(
                "system `{}`: {other} cannot be restored in SCIM",
                self.system
            ))),
        }
    }

    fn describe_restore(&self, call: &StepCall<'_>, before: &Value) -> Vec<RequestLine> {
        let id = call.account.map(|a| a.id.as_str()).unwrap_or("{id}");
        let line = |method: &str, url: Url| RequestLine {
            method: method.into(),
            url: url.to_string(),
        };
        match call.action {
            "deactivate_user" => match self.user_url(id) {
                Ok(u) => vec![line("GET", u.clone()), line("PATCH", u)],
                Err(_) => Vec::new(),
            },
            "remove_from_groups" => {
                let Ok(groups) = self.groups_url() else {
                    return Vec::new();
                };
                let mut out = vec![line(
                    "GET",
                    with_query(groups, &[("filter", &Self::member_filter(id))]),
                )];
                for g in recorded_groups(before).unwrap_or_default() {
                    if let Ok(u) = self.http.endpoint(&["Groups", &g.id]) {
                        out.push(line("PATCH", u));
                    }
                }
                out
            }
            _ => Vec::new(),
        }
    }

    async fn check_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let account = restore_account(call)?;
        let mut records = Vec::new();
        match call.action {
            "deactivate_user" => {
                let was = before["active"].as_bool();
                let Some(user) = self.get_user(&account.id, ctx, &mut records).await? else {
                    return Ok(RestoreCheck {
                        after: Value::Null,
                        restored: false,
                        observed: format!(
                            "not restorable: SCIM user {} no longer exists (404 by id)",
                            account.id
                        ),
                        account: Some(account.clone()),
                    });
                };
                Ok(RestoreCheck {
                    after: active_state(&user),
                    restored: was.is_some() && user.active == was,
                    observed: format!("active={}", active_word(user.active)),
                    account: Some(self.account(&user, &account.name)),
                })
            }
            "remove_from_groups" => {
                let wanted = recorded_groups(before)?;
                let now = self
                    .member_groups(&account.id, None, ctx, &mut records)
                    .await?;
                let mut missing = Vec::new();
                for g in wanted.iter().filter(|g| !now.iter().any(|n| n.id == g.id)) {
                    if self.group_exists(&g.id, ctx, &mut records).await? {
                        missing.push(format!("not back in {} ({})", g.name, g.id));
                    } else {
                        missing.push(format!(
                            "not restorable: group {} ({}) no longer exists",
                            g.name, g.id
                        ));
                    }
                }
                let after = json!({
                    "groups": now
                        .iter()
                        .map(|g| json!({"id": g.id, "name": g.display_name}))
                        .collect::<Vec<_>>(),
                });
                let back: Vec<&str> = wanted
                    .iter()
                    .filter(|g| now.iter().any(|n| n.id == g.id))
                    .map(|g| g.name.as_str())
                    .collect();
                let mut observed = if back.is_empty() {
                    "member of none of the recorded groups".to_string()
                } else {
                    format!("member again of: {}", back.join(", "))
                };
                if !missing.is_empty() {
                    observed.push_str(&format!("; {}", missing.join("; ")));
                }
                Ok(RestoreCheck {
                    after,
                    restored: missing.is_empty(),
                    observed,
                    account: Some(account.clone()),
                })
            }
            other => Err(ProviderError::Permanent(format!(
                "system `{}`: {other} cannot be restored in SCIM",
                self.system
            ))),
        }
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        match call.action {
            "deactivate_user" => self.check_inactive(call, ctx).await,
            "delete_user" => self.check_deleted(call, ctx).await,
            "remove_from_groups" => self.check_groups(call, ctx).await,
            other => Err(self.unknown_action(other)),
        }
    }
}

/// What offboard reads of a SCIM user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) user_name: Option<String>,
    pub(crate) active: Option<bool>,
}

impl User {
    fn from_resource(v: &Value) -> Option<User> {
        let obj = v.as_object()?;
        let id = obj.get("id")?.as_str()?.to_string();
        // Attribute names are case-insensitive; some services send "False" strings.
        let active = obj
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("active"))
            .and_then(|(_, v)| match v {
                Value::Bool(b) => Some(*b),
                Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
                _ => None,
            });
        let user_name = obj
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("userName"))
            .and_then(|(_, v)| v.as_str())
            .map(str::to_string);
        Some(User {
            id,
            user_name,
            active,
        })
    }
}

/// What offboard reads of a SCIM group.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    id: String,
    display_name: String,
    /// Member ids, when the server sent `members`.
    members: Option<Vec<String>>,
}

impl Group {
    fn from_resource(v: &Value) -> Option<Group> {
        let obj = v.as_object()?;
        let id = obj.get("id")?.as_str()?.to_string();
        let field = |name: &str| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let display_name = field("displayName")
            .and_then(Value::as_str)
            .unwrap_or(&id)
            .to_string();
        let members = field("members").and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(|m| m.get("value").and_then(Value::as_str).map(str::to_string))
                .collect()
        });
        Some(Group {
            id,
            display_name,
            members,
        })
    }
}

/// `scimType: detail` from a SCIM error body (`status` is a string there, and is not needed),
/// or the `description` of the legacy `{"Errors": {"description", "code"}}` shape Slack also
/// sends.
pub fn scim_error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    if let Some(d) = v
        .get("Errors")
        .and_then(|e| e.get("description"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        return Some(d.to_string());
    }
    let is_error = v
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|x| x.as_str() == Some(ERROR_SCHEMA)));
    let detail = v.get("detail").and_then(Value::as_str).map(str::trim);
    let scim_type = v.get("scimType").and_then(Value::as_str).map(str::trim);
    if !is_error && detail.is_none() {
        return None;
    }
    match (scim_type, detail) {
        (Some(t), Some(d)) if !t.is_empty() && !d.is_empty() => Some(format!("{t}: {d}")),
        (_, Some(d)) if !d.is_empty() => Some(d.to_string()),
        (Some(t), _) if !t.is_empty() => Some(t.to_string()),
        _ => None,
    }
}

/// `userName`, `emails.value`, `urn:…:enterpriseUser:employeeNumber`: safe to put unquoted in a
/// filter.
fn is_attribute_path(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$' | '.' | ':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg(base: &str) -> SystemConfig {
        SystemConfig {
            timeout: Duration::from_secs(5),
            ..SystemConfig::new("hr", "scim", Some(base))
        }
    }

    fn call<'a>(
        action: &'a str,
        login: &'a str,
        params: &'a serde_json::Map<String, Value>,
    ) -> StepCall<'a> {
        StepCall {
            step_id: "s",
            action,
            login,
            params,
            account: None,
        }
    }

    #[test]
    fn describe_without_token_and_encoded() {
        let p = (KIND.connect)(&cfg("https://x/scim/v2/")).unwrap();
        let params = serde_json::Map::new();
        let lines: Vec<String> = p
            .describe(&call("deactivate_user", "alice@corp", &params))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "GET https://x/scim/v2/Users?filter=userName%20eq%20%22alice%40corp%22",
                "PATCH https://x/scim/v2/Users/{id}",
            ]
        );
        let lines = p.describe(&call("delete_user", r#"a"b\c"#, &params));
        assert_eq!(
            lines[0].url,
            "https://x/scim/v2/Users?filter=userName%20eq%20%22a%5C%22b%5C%5Cc%22"
        );
        assert_eq!(lines[1].to_string(), "DELETE https://x/scim/v2/Users/{id}");
    }

    #[tokio::test]
    async fn no_token_is_a_clear_permanent_error() {
        let p = (KIND.connect)(&cfg("http://127.0.0.1:9/scim/v2")).unwrap();
        let params = serde_json::Map::new();
        let err = p
            .apply(
                &call("deactivate_user", "alice", &params),
                &CallCtx::silent(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Permanent(m) if m.contains("no token")),
            "{err:?}"
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut c = cfg("https://x/scim/v2");
        c.settings.insert(
            "user_attribute".into(),
            toml::Value::String("userName eq \"x\" or".into()),
        );
        assert!((KIND.connect)(&c).is_err());
        assert!((KIND.connect)(&cfg("ftp://x/")).is_err());
        let mut c = cfg("https://x/scim/v2");
        c.base_url = None;
        assert!((KIND.connect)(&c).is_err());
    }

    #[test]
    fn scim_errors_read_well() {
        let body = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidFilter","detail":"bad filter"}"#;
        assert_eq!(
            scim_error_message(body).as_deref(),
            Some("invalidFilter: bad filter")
        );
        let body = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"404","detail":"gone"}"#;
        assert_eq!(scim_error_message(body).as_deref(), Some("gone"));
        assert_eq!(scim_error_message(b"not json"), None);
        let body = br#"{"Errors":{"description":"invalid_authentication","code":401}}"#;
        assert_eq!(
            scim_error_message(body).as_deref(),
            Some("invalid_authentication")
        );
    }
}
