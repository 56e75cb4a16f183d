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
//!
//! The code lives by concern: `client` (the HTTP client and Okta's errors), `users` (the
//! lookup), `lifecycle` (suspend, deactivate, delete), `sessions` (sessions and factors),
//! `groups`, `apps` and `undo` (the restores); this file holds the action table and the
//! `Provider` dispatch.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::kit::http::HttpClient;
use super::{
    Account, ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, NO_PARAMS,
    ParamsSpec, Provider, ProviderError, RequestLine, RequestRecord, RestoreCheck, StepCall,
    SystemConfig,
};
use undo::okta_groups_before;
use users::not_the_person;

mod apps;
mod client;
mod groups;
mod lifecycle;
mod sessions;
mod undo;
mod users;

pub use client::okta_error_message;

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
    fn unknown_action(&self, action: &str) -> ProviderError {
        ProviderError::Permanent(format!(
            "system `{}`: the okta kind has no action `{action}`",
            self.system
        ))
    }
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
}
