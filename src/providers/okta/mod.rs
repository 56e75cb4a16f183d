//! Okta (Management API).
//!
//! The person is read with `GET /api/v1/users/{login}` (the login percent-encoded as one path
//! segment; Okta takes an id, a login or an unambiguous short name there) and from then on by the
//! user's Okta `id`. Requests carry `Authorization: SSWS <token>` (`token`), or what the
//! system's `auth` table gives (OAuth 2.0 client credentials with a private-key JWT, the scopes
//! `okta.users.manage`, `okta.groups.manage`, `okta.apps.manage`).
//!
//! - `suspend_user`: `POST …/lifecycle/suspend` (ACTIVE users only); check: `status` SUSPENDED
//!   or DEPROVISIONED.
//! - `deactivate_user`: reads `status` first (Okta answers 404 E0000007 when asked to deactivate
//!   a DEPROVISIONED user: that is taken as done), then `POST …/lifecycle/deactivate?sendEmail=false`;
//!   check: DEPROVISIONED with no transition under way.
//! - `clear_sessions`: `DELETE …/sessions?oauthTokens=true`. The Management API cannot read a
//!   user's sessions back, so the check holds only for a deactivated or deleted user.
//! - `reset_factors`: `POST …/lifecycle/reset_factors` when `GET …/factors` lists any; check: none.
//! - `remove_from_groups`: `DELETE /api/v1/groups/{gid}/users/{id}` for each OKTA_GROUP of
//!   `GET …/groups` (Link-paged). APP_GROUP memberships belong to a directory import and a
//!   removal Okta refuses with 400/409 (a group rule holds it) are manual follow-ups, named in
//!   the summary; the built-in Everyone group is left alone.
//! - `unassign_apps`: `DELETE /api/v1/apps/{appId}/users/{id}?sendEmail=false` for each app of
//!   `GET …/appLinks`; an assignment Okta refuses with 400/409 (given through a group) is a
//!   manual follow-up. Check: no app link left.
//! - `delete_user` (destructive): `DELETE /api/v1/users/{id}?sendEmail=false`, twice for a user
//!   not yet deactivated (Okta's first DELETE deactivates); check: 404 by id.
//!
//! Okta's `X-Rate-Limit-Remaining: 0` makes the next request to the org wait for
//! `X-Rate-Limit-Reset` (epoch seconds), and a 429 waits for the reset too: both in the kit,
//! shared by every departure this process drives (see [`crate::limits`]). Errors read
//! `errorCode: errorSummary (causes)`.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use super::kit::http::{HttpClient, HttpResponse, Request, RetryPolicy, with_query};
use super::kit::paging::{self, Paging};
use super::{
    Account, ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, NO_PARAMS,
    ParamsSpec, Provider, ProviderError, RequestLine, RequestRecord, RestoreCheck, StepCall,
    SystemConfig, params,
};

/// Why `deactivate_user` is not undone by offboard.
const NO_UNDO_DEACTIVATE: &str = "Okta brings a deactivated user back only through its \
     activation flow (`lifecycle/activate` hands out an activation link or emails one: the \
     person sets a password and enrolls factors again), and deactivating deprovisioned every app \
     account, whose data may be gone: reactivate by hand, then re-assign the apps";
/// Why `unassign_apps` is not undone by offboard.
const NO_UNDO_APPS: &str = "an app assignment made again is a new one: its app profile and \
     credentials are not kept, and provisioning may create a new account in the app; assign the \
     apps the pre-state names again by hand";

pub static KIND: KindSpec = KindSpec {
    name: "okta",
    summary: "Okta (Management API): lifecycle, sessions, factors, groups and app assignments",
    actions: &[
        ActionSpec {
            name: "suspend_user",
            summary: "`POST /api/v1/users/{id}/lifecycle/suspend` (Okta suspends only ACTIVE \
                      users; assignments are kept); the check reads `status` SUSPENDED or \
                      DEPROVISIONED",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "unsuspend the user (`POST …/lifecycle/unsuspend`, back to ACTIVE) if it was ACTIVE before",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "deactivate_user",
            summary: "reads `status`, then `POST /api/v1/users/{id}/lifecycle/deactivate?sendEmail=false` \
                      (a DEPROVISIONED user, or Okta's 404 E0000007 for one, is already done); the \
                      check reads `status` DEPROVISIONED with no transition under way",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(NO_UNDO_DEACTIVATE),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "clear_sessions",
            summary: "`DELETE /api/v1/users/{id}/sessions?oauthTokens=true`: ends every Okta \
                      session and revokes the OAuth tokens Okta issued. Okta cannot read sessions \
                      back: the check holds only once the user is deactivated or deleted, so \
                      `verify` does not re-check it",
            destructive: false,
            alerts_user: false,
            revokes: false,
            inverse: Inverse::None(
                "ended sessions and revoked OAuth tokens cannot be revived: the person signs in again",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "reset_factors",
            summary: "`POST /api/v1/users/{id}/lifecycle/reset_factors` when `GET …/factors` lists \
                      any; the check finds no factor enrolled",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(
                "reset factors cannot be re-enrolled by an admin: the person enrolls them again at the next sign-in",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "remove_from_groups",
            summary: "`DELETE /api/v1/groups/{groupId}/users/{id}` for each OKTA_GROUP of `GET \
                      /api/v1/users/{id}/groups` (Link pages followed); APP_GROUP memberships \
                      (owned by a directory import) and removals Okta refuses (a group rule) are \
                      manual follow-ups named in the summary, not failures; the check finds no \
                      OKTA_GROUP (of those listed) left",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "re-add the user to each OKTA_GROUP it was removed from, by group id \
                 (`PUT /api/v1/groups/{groupId}/users/{id}`; a group deleted since cannot come back)",
            ),
            params: ParamsSpec::of::<GroupsParams>(),
        },
        ActionSpec {
            name: "unassign_apps",
            summary: "`DELETE /api/v1/apps/{appId}/users/{id}?sendEmail=false` for each app of `GET \
                      /api/v1/users/{id}/appLinks`; an assignment given through a group (Okta \
                      refuses it) is a manual follow-up; the check finds no app link left",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(NO_UNDO_APPS),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "delete_user",
            summary: "`DELETE /api/v1/users/{id}?sendEmail=false` (twice for a user not yet \
                      deactivated: Okta's first DELETE deactivates); the check expects 404 by id",
            destructive: true,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(
                "a deleted Okta user is gone for good (Okta has no undelete): create the user again",
            ),
            params: NO_PARAMS,
        },
    ],
    settings: &[super::kit::http::ALLOW_PLAIN, super::kit::auth::SETTING],
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
    /// Only these groups (by `profile.name`, case-insensitive); default: every OKTA_GROUP the
    /// user is a member of.
    #[schemars(length(min = 1))]
    groups: Option<Vec<String>>,
}

/// What a 403 means here, before Okta's own message.
const FORBIDDEN_HINT: &str = "the token's admin role does not allow this call (an SSWS token acts \
                              with its creator's role: Group Admin cannot deactivate or delete \
                              users; an OAuth service app needs the scopes okta.users.manage, \
                              okta.groups.manage and okta.apps.manage granted, and an admin role)";

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(Arc::new(OktaProvider::new(cfg)?))
}

/// A connected Okta org.
pub struct OktaProvider {
    http: HttpClient,
    system: String,
}

impl std::fmt::Debug for OktaProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaProvider")
            .field("system", &self.system)
            .finish_non_exhaustive()
    }
}

impl OktaProvider {
    /// Build from the system's configuration. No I/O; works without a token (planning).
    pub fn new(cfg: &SystemConfig) -> anyhow::Result<OktaProvider> {
        let mut http = HttpClient::new(cfg)?
            .with_accept("application/json")
            .with_error_parser(okta_error_message)
            .with_forbidden_hint(FORBIDDEN_HINT);
        http = match super::kit::auth::for_system(cfg)? {
            // The `auth` table: OAuth 2.0 (private-key JWT) or another scheme it names.
            Some(auth) if cfg.auth.is_some() => http.with_auth(auth),
            // `token`: an API token, sent as `SSWS <token>`.
            _ => http.with_auth_scheme("SSWS"),
        };
        Ok(OktaProvider {
            http,
            system: cfg.name.clone(),
        })
    }

    /// Replace the retry policy (tests use tiny budgets).
    pub fn with_retry(mut self, retry: RetryPolicy) -> OktaProvider {
        self.http = self.http.with_retry(retry);
        self
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut all = vec!["api", "v1"];
        all.extend_from_slice(segments);
        self.http.endpoint(&all)
    }

    /// Send through the kit (which waits out an emptied rate-limit bucket) and keep the record.
    async fn send(
        &self,
        req: Request,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<HttpResponse, ProviderError> {
        let resp = self.http.send(req, ctx).await?;
        records.push(resp.record.clone());
        Ok(resp)
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

    /// `GET /api/v1/users/{idOrLogin}`: `None` on 404.
    async fn get_user(
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
    async fn resolve(
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

    fn account(&self, user: &User, login: &str) -> Account {
        Account::new(
            user.id.clone(),
            "Okta user id",
            user.login.clone().unwrap_or_else(|| login.to_string()),
        )
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

    fn unknown_action(&self, action: &str) -> ProviderError {
        ProviderError::Permanent(format!(
            "system `{}`: the okta kind has no action `{action}`",
            self.system
        ))
    }

    /// Resolve and identify; `Err(outcome)` when the user is already gone by id.
    async fn live(
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

    async fn suspend(
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

    async fn deactivate(
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

    async fn clear_sessions(
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

    async fn factors(
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

    async fn reset_factors(
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

    fn group_names(&self, call: &StepCall<'_>) -> Result<Option<Vec<String>>, ProviderError> {
        let p: GroupsParams = params::parse(call.action, call.params)?;
        Ok(p.groups)
    }

    /// Every group of the user (Link pages followed), those listed only.
    async fn groups(
        &self,
        id: &str,
        only: Option<&[String]>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Group>, ProviderError> {
        let url = self.url(&["users", id, "groups"])?;
        let (found, made) = paging::get_all(&self.http, url, Paging::LinkHeader, "", ctx)
            .await
            .map_err(not_the_person)?;
        records.extend(made);
        let mut out = Vec::new();
        for g in &found {
            let Some(group) = Group::from_json(g) else {
                return Err(ProviderError::Permanent(format!(
                    "system `{}`: GET /api/v1/users/{id}/groups answered a group without an id",
                    self.system
                )));
            };
            if let Some(only) = only
                && !only.iter().any(|o| o.eq_ignore_ascii_case(&group.name))
            {
                continue;
            }
            out.push(group);
        }
        out.sort_by_key(|g| g.name.to_lowercase());
        out.dedup_by(|a, b| a.id == b.id);
        Ok(out)
    }

    async fn remove_from_groups(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let only = self.group_names(call)?;
        let mut records = Vec::new();
        let (user, account) = match self.live(call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => return Ok(done),
        };
        let groups = self
            .groups(&user.id, only.as_deref(), ctx, &mut records)
            .await?;
        ctx.before(&serde_json::json!({
            "id": user.id,
            "groups": groups
                .iter()
                .map(|g| serde_json::json!({ "id": g.id, "name": g.name, "type": g.kind }))
                .collect::<Vec<_>>(),
        }));
        let mut removed = Vec::new();
        let mut manual = Vec::new();
        for g in &groups {
            match g.kind.as_str() {
                "OKTA_GROUP" => {}
                "APP_GROUP" => {
                    manual.push(format!(
                        "{} (APP_GROUP: remove the membership in the directory it is imported from)",
                        g.name
                    ));
                    continue;
                }
                // BUILT_IN: Everyone, which every user is in.
                _ => continue,
            }
            let url = self.url(&["groups", &g.id, "users", &user.id])?;
            match self.unlink(url, ctx, &mut records, &removed).await? {
                Unlinked::Refused(said) => manual.push(format!(
                    "{} (Okta refused: {said}; a group rule may hold the membership)",
                    g.name
                )),
                // Not a member any more: gone meanwhile.
                Unlinked::Gone => {}
                Unlinked::Removed => removed.push(g.name.clone()),
            }
        }
        let mut summary = if removed.is_empty() {
            format!("Okta user {} is in no OKTA_GROUP to remove", user.id)
        } else {
            format!(
                "removed Okta user {} from {} group(s): {}",
                user.id,
                removed.len(),
                removed.join(", ")
            )
        };
        if let Some(o) = &only {
            summary.push_str(&format!(" (of the listed: {})", o.join(", ")));
        }
        if !manual.is_empty() {
            summary.push_str(&format!("; manual follow-up: {}", manual.join("; ")));
        }
        Ok(done(!removed.is_empty(), summary, records, account))
    }

    /// DELETE one membership or assignment of the person's. Okta's refusal (400/409: a group
    /// rule or a group assignment holds it) is for a person to follow up, not a failure; a
    /// failure after some were removed says which (`removed`).
    async fn unlink(
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

    async fn app_links(
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

    async fn unassign_apps(
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

    async fn delete(
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

    async fn check_status(
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

    async fn check_sessions(
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

    async fn check_factors(
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

    async fn check_groups(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let only = self.group_names(call)?;
        let mut records = Vec::new();
        let user = match self.resolve(call, ctx, &mut records).await? {
            Resolved::Live(u) => u,
            Resolved::Gone(account) => return Ok(gone(account)),
        };
        let account = Some(self.account(&user, call.login));
        let groups = self
            .groups(&user.id, only.as_deref(), ctx, &mut records)
            .await?;
        let names = |kind: &str| {
            groups
                .iter()
                .filter(|g| g.kind == kind)
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
        };
        let okta = names("OKTA_GROUP");
        let app = names("APP_GROUP");
        let app_note = if app.is_empty() {
            String::new()
        } else {
            format!(
                "; APP_GROUP memberships (managed by their import, a manual follow-up): {}",
                app.join(", ")
            )
        };
        Ok(CheckOutcome {
            revoked: okta.is_empty(),
            observed: if okta.is_empty() {
                format!("member of no OKTA_GROUP{app_note}")
            } else {
                format!("still member of: {}{app_note}", okta.join(", "))
            },
            account,
        })
    }

    async fn check_apps(
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

/// A 404 inside a list read is no verdict on the person: only the lookup may say `NotFound`.
fn not_the_person(e: ProviderError) -> ProviderError {
    match e {
        ProviderError::NotFound(m) => ProviderError::Permanent(m),
        e => e,
    }
}

/// An error after some removals: say which were done.
/// What a DELETE of one membership or assignment came to.
enum Unlinked {
    Removed,
    /// Already gone.
    Gone,
    /// Okta's own words.
    Refused(String),
}

fn partly(e: ProviderError, removed: &[String]) -> ProviderError {
    after_some("removed from", e, removed)
}

/// An error after `verb` some of `done`: say which.
fn after_some(verb: &str, e: ProviderError, done: &[String]) -> ProviderError {
    if done.is_empty() {
        return not_the_person(e);
    }
    let done = format!("{verb} {}; then ", done.join(", "));
    match e {
        ProviderError::Transient(m) => ProviderError::Transient(done + &m),
        ProviderError::Permanent(m) | ProviderError::NotFound(m) => {
            ProviderError::Permanent(done + &m)
        }
    }
}

fn done(
    changed: bool,
    summary: String,
    requests: Vec<RequestRecord>,
    account: Account,
) -> ApplyOutcome {
    ApplyOutcome {
        changed,
        summary,
        requests,
        account: Some(account),
    }
}

enum Resolved {
    Live(User),
    /// Read by its recorded id and answered 404: deleted since offboard saw it.
    Gone(Account),
}

fn gone(account: Account) -> CheckOutcome {
    CheckOutcome {
        revoked: true,
        observed: format!(
            "Okta user {} no longer exists (404 by id: deleted)",
            account.id
        ),
        account: Some(account),
    }
}

#[async_trait]
impl Provider for OktaProvider {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        let Ok(find) = self.url(&["users", call.login]) else {
            return Vec::new();
        };
        let Ok(users) = self.url(&["users"]) else {
            return Vec::new();
        };
        let Ok(api) = self.url(&[]) else {
            return Vec::new();
        };
        let line = |method: &str, url: String| RequestLine {
            method: method.into(),
            url,
        };
        let mut lines = vec![line("GET", find.to_string())];
        match call.action {
            "suspend_user" => lines.push(line("POST", format!("{users}/{{id}}/lifecycle/suspend"))),
            "deactivate_user" => lines.push(line(
                "POST",
                format!("{users}/{{id}}/lifecycle/deactivate?sendEmail=false"),
            )),
            "clear_sessions" => lines.push(line(
                "DELETE",
                format!("{users}/{{id}}/sessions?oauthTokens=true"),
            )),
            "reset_factors" => {
                lines.push(line("GET", format!("{users}/{{id}}/factors")));
                lines.push(line(
                    "POST",
                    format!("{users}/{{id}}/lifecycle/reset_factors"),
                ));
            }
            "remove_from_groups" => {
                lines.push(line("GET", format!("{users}/{{id}}/groups")));
                lines.push(line(
                    "DELETE",
                    format!("{api}/groups/{{groupId}}/users/{{id}}"),
                ));
            }
            "unassign_apps" => {
                lines.push(line("GET", format!("{users}/{{id}}/appLinks")));
                lines.push(line(
                    "DELETE",
                    format!("{api}/apps/{{appId}}/users/{{id}}?sendEmail=false"),
                ));
            }
            "delete_user" => lines.push(line("DELETE", format!("{users}/{{id}}?sendEmail=false"))),
            _ => return Vec::new(),
        }
        lines
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "suspend_user" => self.suspend(call, ctx).await,
            "deactivate_user" => self.deactivate(call, ctx).await,
            "clear_sessions" => self.clear_sessions(call, ctx).await,
            "reset_factors" => self.reset_factors(call, ctx).await,
            "remove_from_groups" => self.remove_from_groups(call, ctx).await,
            "unassign_apps" => self.unassign_apps(call, ctx).await,
            "delete_user" => self.delete(call, ctx).await,
            other => Err(self.unknown_action(other)),
        }
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        match call.action {
            "suspend_user" => {
                self.check_status(call, ctx, &["SUSPENDED", "DEPROVISIONED"])
                    .await
            }
            "deactivate_user" => self.check_status(call, ctx, &["DEPROVISIONED"]).await,
            // Only a deletion (404 by id, in `check_status`) holds.
            "delete_user" => self.check_status(call, ctx, &[]).await,
            "clear_sessions" => self.check_sessions(call, ctx).await,
            "reset_factors" => self.check_factors(call, ctx).await,
            "remove_from_groups" => self.check_groups(call, ctx).await,
            "unassign_apps" => self.check_apps(call, ctx).await,
            other => Err(self.unknown_action(other)),
        }
    }

    async fn restore(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "suspend_user" => self.unsuspend(call, before, ctx).await,
            "remove_from_groups" => self.readd_groups(call, before, ctx).await,
            other => Err(self.no_restore(other)),
        }
    }

    fn describe_restore(&self, call: &StepCall<'_>, before: &Value) -> Vec<RequestLine> {
        let Some(account) = call.account else {
            return Vec::new();
        };
        let line = |method: &str, segments: &[&str]| {
            self.url(segments).ok().map(|u| RequestLine {
                method: method.into(),
                url: u.to_string(),
            })
        };
        let id = account.id.as_str();
        let lines = match call.action {
            "suspend_user" => vec![
                line("GET", &["users", id]),
                line("POST", &["users", id, "lifecycle", "unsuspend"]),
            ],
            "remove_from_groups" => {
                let mut v = vec![
                    line("GET", &["users", id]),
                    line("GET", &["users", id, "groups"]),
                ];
                for (gid, _) in okta_groups_before(before) {
                    v.push(line("PUT", &["groups", &gid, "users", id]));
                }
                v
            }
            _ => return Vec::new(),
        };
        lines.into_iter().flatten().collect()
    }

    async fn check_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        match call.action {
            "suspend_user" => self.check_unsuspended(call, before, ctx).await,
            "remove_from_groups" => self.check_groups_back(call, before, ctx).await,
            other => Err(self.no_restore(other)),
        }
    }
}

/// The pre-state of a lifecycle action: the user's status (and a transition under way).
fn status_before(user: &User) -> Value {
    serde_json::json!({
        "id": user.id,
        "status": user.status,
        "transitioningToStatus": user.transitioning,
    })
}

/// The OKTA_GROUPs of a `remove_from_groups` pre-state (the only ones offboard removes):
/// (id, name).
fn okta_groups_before(before: &Value) -> Vec<(String, String)> {
    before
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|g| g.get("type").and_then(Value::as_str) == Some("OKTA_GROUP"))
        .filter_map(|g| {
            let id = g
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())?;
            let name = g.get("name").and_then(Value::as_str).unwrap_or(id);
            Some((id.to_string(), name.to_string()))
        })
        .collect()
}

impl OktaProvider {
    fn no_restore(&self, action: &str) -> ProviderError {
        ProviderError::Permanent(format!(
            "system `{}`: action `{action}` cannot be undone by offboard (see the rollback plan)",
            self.system
        ))
    }

    /// The recorded user, read by id for a restore: `Err(account)` when deleted since.
    async fn restore_target(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Result<(User, Account), Account>, ProviderError> {
        let Some(known) = call.account else {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: step `{}`: rollback needs the account the apply identified; none \
                 recorded",
                self.system, call.step_id
            )));
        };
        if let Some(id) = before.get("id").and_then(Value::as_str)
            && id != known.id
        {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: step `{}`: the recorded pre-state is of Okta user {id}, not of {}; \
                 refusing to restore it onto another account",
                self.system, call.step_id, known.id
            )));
        }
        Ok(match self.resolve(call, ctx, records).await? {
            Resolved::Live(u) => {
                let account = self.account(&u, call.login);
                Ok((u, account))
            }
            Resolved::Gone(a) => Err(a),
        })
    }

    fn deleted_error(&self, account: &Account) -> ProviderError {
        ProviderError::Permanent(format!(
            "system `{}`: Okta user {} no longer exists (404 by id): a deleted Okta user cannot \
             come back",
            self.system, account.id
        ))
    }

    fn deleted_check(account: Account) -> RestoreCheck {
        RestoreCheck {
            after: serde_json::json!({ "id": account.id, "exists": false }),
            restored: false,
            observed: format!(
                "Okta user {} no longer exists (404 by id): nothing of it can come back",
                account.id
            ),
            account: Some(account),
        }
    }

    async fn unsuspend(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.restore_target(call, before, ctx, &mut records).await? {
            Ok(x) => x,
            Err(gone) => return Err(self.deleted_error(&gone)),
        };
        let was = before.get("status").and_then(Value::as_str).unwrap_or("");
        if was != "ACTIVE" {
            return Ok(done(
                false,
                format!(
                    "nothing to put back: Okta user {} was {} before offboard suspended nothing",
                    user.id,
                    if was.is_empty() { "not reported" } else { was }
                ),
                records,
                account,
            ));
        }
        match user.status.as_str() {
            "ACTIVE" => {
                return Ok(done(
                    false,
                    format!("Okta user {} is already ACTIVE", user.id),
                    records,
                    account,
                ));
            }
            "SUSPENDED" => {}
            "DEPROVISIONED" => {
                return Err(ProviderError::Permanent(format!(
                    "system `{}`: Okta user {} was deactivated since it was suspended: unsuspend \
                     cannot bring it back ({NO_UNDO_DEACTIVATE})",
                    self.system, user.id
                )));
            }
            other => {
                return Err(ProviderError::Permanent(format!(
                    "system `{}`: Okta user {} is {other}, not SUSPENDED: Okta unsuspends only \
                     suspended users; put it back by hand",
                    self.system, user.id
                )));
            }
        }
        let url = self.url(&["users", &user.id, "lifecycle", "unsuspend"])?;
        self.send(Request::post(url), ctx, &mut records).await?;
        Ok(done(
            true,
            format!(
                "unsuspended Okta user {} (status SUSPENDED → ACTIVE)",
                user.id
            ),
            records,
            account,
        ))
    }

    async fn check_unsuspended(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.restore_target(call, before, ctx, &mut records).await? {
            Ok(x) => x,
            Err(gone) => return Ok(Self::deleted_check(gone)),
        };
        let was = before.get("status").and_then(Value::as_str).unwrap_or("");
        let restored = was != "ACTIVE" || (user.status == "ACTIVE" && user.transitioning.is_none());
        Ok(RestoreCheck {
            after: status_before(&user),
            restored,
            observed: if was != "ACTIVE" {
                format!(
                    "status={} (it was {was} before offboard: nothing to put back)",
                    user.status
                )
            } else if restored {
                "status=ACTIVE, as before offboard".into()
            } else {
                format!("status={}, not ACTIVE as before offboard", user.status)
            },
            account: Some(account),
        })
    }

    async fn readd_groups(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.restore_target(call, before, ctx, &mut records).await? {
            Ok(x) => x,
            Err(gone) => return Err(self.deleted_error(&gone)),
        };
        let now = self.groups(&user.id, None, ctx, &mut records).await?;
        let mut added: Vec<String> = Vec::new();
        let mut lost = Vec::new();
        for (gid, name) in okta_groups_before(before) {
            if now.iter().any(|g| g.id == gid) {
                continue;
            }
            let url = self.url(&["groups", &gid, "users", &user.id])?;
            let resp = self
                .send(
                    Request::put(url).allow(StatusCode::NOT_FOUND),
                    ctx,
                    &mut records,
                )
                .await
                .map_err(|e| after_some("re-added to", e, &added))?;
            if resp.status == StatusCode::NOT_FOUND {
                lost.push(format!("{name} ({gid})"));
            } else {
                added.push(name);
            }
        }
        if !lost.is_empty() {
            let done_part = if added.is_empty() {
                String::new()
            } else {
                format!("re-added Okta user {} to {}; ", user.id, added.join(", "))
            };
            return Err(ProviderError::Permanent(format!(
                "system `{}`: {done_part}group(s) {} no longer exist (404): those memberships \
                 cannot come back",
                self.system,
                lost.join(", ")
            )));
        }
        Ok(done(
            !added.is_empty(),
            if added.is_empty() {
                format!(
                    "Okta user {} is already in every group offboard removed it from",
                    user.id
                )
            } else {
                format!(
                    "re-added Okta user {} to {} group(s): {}",
                    user.id,
                    added.len(),
                    added.join(", ")
                )
            },
            records,
            account,
        ))
    }

    async fn check_groups_back(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let mut records = Vec::new();
        let (user, account) = match self.restore_target(call, before, ctx, &mut records).await? {
            Ok(x) => x,
            Err(gone) => return Ok(Self::deleted_check(gone)),
        };
        let now = self.groups(&user.id, None, ctx, &mut records).await?;
        let missing: Vec<String> = okta_groups_before(before)
            .into_iter()
            .filter(|(gid, _)| !now.iter().any(|g| g.id == *gid))
            .map(|(gid, name)| format!("{name} ({gid})"))
            .collect();
        Ok(RestoreCheck {
            after: serde_json::json!({
                "id": user.id,
                "groups": now
                    .iter()
                    .map(|g| serde_json::json!({ "id": g.id, "name": g.name, "type": g.kind }))
                    .collect::<Vec<_>>(),
            }),
            restored: missing.is_empty(),
            observed: if missing.is_empty() {
                "a member again of every OKTA_GROUP offboard removed it from".into()
            } else {
                format!(
                    "not a member of {} (re-add by hand, or the group no longer exists)",
                    missing.join(", ")
                )
            },
            account: Some(account),
        })
    }
}

/// What offboard reads of an Okta user.
#[derive(Debug, Clone, PartialEq, Eq)]
struct User {
    id: String,
    login: Option<String>,
    status: String,
    transitioning: Option<String>,
}

impl User {
    fn from_json(v: &Value) -> Option<User> {
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        Some(User {
            id: s("/id").filter(|i| !i.is_empty())?,
            login: s("/profile/login"),
            status: s("/status")?,
            transitioning: s("/transitioningToStatus"),
        })
    }
}

/// What offboard reads of an Okta group.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    id: String,
    name: String,
    /// `OKTA_GROUP`, `APP_GROUP` or `BUILT_IN`.
    kind: String,
}

impl Group {
    fn from_json(v: &Value) -> Option<Group> {
        let id = v.get("id")?.as_str()?.to_string();
        let name = v
            .pointer("/profile/name")
            .and_then(Value::as_str)
            .unwrap_or(&id)
            .to_string();
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        Some(Group { id, name, kind })
    }
}

/// One app the user is assigned, from an app link.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AppLink {
    app_id: String,
    label: String,
}

impl AppLink {
    fn from_json(v: &Value) -> Option<AppLink> {
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

/// Okta's error body: `errorCode: errorSummary` and the causes' summaries.
pub fn okta_error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let code = v.get("errorCode").and_then(Value::as_str).map(str::trim);
    let summary = v.get("errorSummary").and_then(Value::as_str).map(str::trim);
    let mut msg = match (code, summary) {
        (Some(c), Some(s)) if !c.is_empty() && !s.is_empty() => format!("{c}: {s}"),
        (_, Some(s)) if !s.is_empty() => s.to_string(),
        (Some(c), _) if !c.is_empty() => c.to_string(),
        _ => return None,
    };
    let causes: Vec<&str> = v
        .get("errorCauses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("errorSummary").and_then(Value::as_str))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if !causes.is_empty() {
        msg.push_str(&format!(" ({})", causes.join("; ")));
    }
    Some(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn describe_without_token_encodes_the_login() {
        let p = (KIND.connect)(&SystemConfig::new(
            "okta",
            "okta",
            Some("https://acme.okta.com"),
        ))
        .unwrap();
        let params = serde_json::Map::new();
        let lines: Vec<String> = p
            .describe(&call("deactivate_user", "a+b@corp/x", &params))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "GET https://acme.okta.com/api/v1/users/a%2Bb%40corp%2Fx",
                "POST https://acme.okta.com/api/v1/users/{id}/lifecycle/deactivate?sendEmail=false",
            ]
        );
        for a in KIND.actions {
            assert!(
                p.describe(&call(a.name, "x", &params)).len() >= 2,
                "{}",
                a.name
            );
        }
    }

    #[test]
    fn okta_errors_read_well() {
        let body = br#"{"errorCode":"E0000001","errorSummary":"Api validation failed: login","errorLink":"E0000001","errorId":"oae1","errorCauses":[{"errorSummary":"login: An object with this field already exists"}]}"#;
        assert_eq!(
            okta_error_message(body).as_deref(),
            Some(
                "E0000001: Api validation failed: login (login: An object with this field already exists)"
            )
        );
        assert_eq!(okta_error_message(b"<html>"), None);
    }
}
