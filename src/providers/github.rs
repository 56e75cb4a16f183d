//! `github`: an organization on GitHub (github.com, GHEC, or GitHub Enterprise Server via
//! `base_url = "https://host/api/v3"`), through the REST API (version `2022-11-28`).
//!
//! The person's login is their GitHub username. It is resolved once with `GET /users/{username}`
//! to the account's numeric `id`, which is what the journal records; logins can be renamed and
//! reused, so every later read resolves the login again and refuses to confirm anything when it
//! now names another id.
//!
//! - `remove_org_member`: `DELETE /orgs/{org}/memberships/{username}` (also cancels a pending
//!   invitation and removes the user from every team). Proof: `GET
//!   /orgs/{org}/memberships/{username}` answers 404.
//! - `cancel_invitations`: every pending invitation for the login (or `email`) in `GET
//!   /orgs/{org}/invitations` (paged), cancelled with `DELETE
//!   /orgs/{org}/invitations/{invitation_id}`. Proof: none left.
//! - `remove_outside_collaborator`: `DELETE /orgs/{org}/outside_collaborators/{username}`.
//!   Proof: the id is not in `GET /orgs/{org}/outside_collaborators` (paged).
//!
//! Rollback (`offboard rollback`): each apply records the pre-state first (see
//! `GitHubProvider::snapshot`). `remove_org_member` is undone by inviting the person back with
//! their old role (`PUT /orgs/{org}/memberships/{username}`) and putting back their teams with
//! their team roles (`PUT /orgs/{org}/teams/{team_slug}/memberships/{username}`): GitHub emails
//! an invitation, and the membership (and the team memberships) stay `pending` until the person
//! accepts, which `check_restored` reports as not back yet. A `billing_manager` is invited back
//! with `POST /orgs/{org}/invitations` (that PUT takes admin or member only). `cancel_invitations` is undone by sending the
//! invitations again (`POST /orgs/{org}/invitations` with the invitee's id or the email, the
//! role and the team ids): new ids, a new email. `remove_outside_collaborator` has no undo:
//! which repositories they could reach is known only repository by repository.
//!
//! Credentials: a fine-grained personal access token (`token`, sent as Bearer) or a GitHub App
//! installation (`app_id`, `installation_id`, `private_key`), whose installation tokens are
//! fetched and renewed by [`GitHubApp`]. Rate limits: a 403 or 429 that is GitHub's primary
//! limit (`x-ratelimit-remaining: 0`, waited out until `x-ratelimit-reset`) or secondary limit
//! (`retry-after`, or its message) is retried by the kit; any other 403 fails with GitHub's
//! `message` and `documentation_url`.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::kit::GitHubApp;
use super::kit::http::{ALLOW_PLAIN, HttpClient, Request, with_query};
use super::kit::paging::{self, Paging};
use super::{
    Account, ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, NO_PARAMS,
    ParamsSpec, Provider, ProviderError, RequestLine, RequestRecord, RestoreCheck, SettingSpec,
    SettingType, StepCall, SystemConfig, params,
};

/// github.com's REST API.
pub const GITHUB_API: &str = "https://api.github.com";
/// The REST API version every request pins.
pub const API_VERSION: &str = "2022-11-28";
const MEDIA_TYPE: &str = "application/vnd.github+json";

pub static KIND: KindSpec = KindSpec {
    name: "github",
    summary: "a GitHub organization (github.com, GHEC, or Enterprise Server via base_url): \
              remove the person's membership, cancel their invitations, remove them as an \
              outside collaborator; by a fine-grained token or a GitHub App installation",
    actions: &[
        ActionSpec {
            name: "remove_org_member",
            summary: "DELETE /orgs/{org}/memberships/{username} (also leaves every team and \
                      cancels a pending invitation); revoked when the membership reads 404",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "invite them back with their old org role and put back their old teams with \
                 their team roles (PUT …/memberships/{username}, PUT …/teams/{team_slug}/\
                 memberships/{username}); GitHub emails an invitation the person must accept, \
                 and until they do the membership stays pending",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "cancel_invitations",
            summary: "cancel every pending invitation to the org for the login (or `email`); \
                      revoked when none is left",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "send the cancelled invitations again with the same role and teams (POST \
                 /orgs/{org}/invitations): new invitation ids, and GitHub emails the person \
                 again",
            ),
            params: ParamsSpec::of::<InvitationParams>(),
        },
        ActionSpec {
            name: "remove_outside_collaborator",
            summary: "DELETE /orgs/{org}/outside_collaborators/{username}: access to every \
                      org repository they were added to; revoked when they are no longer \
                      listed as an outside collaborator",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(
                "offboard does not record which repositories an outside collaborator could \
                 reach (GitHub lists that only repository by repository): add them back by \
                 hand with PUT /repos/{owner}/{repo}/collaborators/{username}, which invites \
                 them again",
            ),
            params: NO_PARAMS,
        },
    ],
    settings: &[
        SettingSpec {
            name: "org",
            ty: SettingType::String,
            required: true,
            summary: "the organization's login, e.g. `acme-corp`",
        },
        SettingSpec {
            name: "app_id",
            ty: SettingType::String,
            required: false,
            summary: "a GitHub App's client id (`Iv23…`) or app id, to act as its installation \
                      instead of a `token`; with `installation_id` and `private_key`",
        },
        SettingSpec {
            name: "installation_id",
            ty: SettingType::Integer,
            required: false,
            summary: "the app's installation id on the organization (in the installation's \
                      settings URL)",
        },
        SettingSpec {
            name: "private_key",
            ty: SettingType::SecretDocument,
            required: false,
            summary: "the app's PEM private key, by reference: `{ file = \"…\" }`",
        },
        ALLOW_PLAIN,
    ],
    needs_base_url: false,
    url_schemes: &["https", "http"],
    needs_token: false,
    connect,
    check_action: None,
};

/// `cancel_invitations`'s parameters.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct InvitationParams {
    /// Also cancel invitations sent to this address, e.g. `{{ user.email }}` (compared
    /// ignoring case).
    #[schemars(length(min = 3))]
    email: Option<String>,
}

const APP_KEYS: [&str; 3] = ["app_id", "installation_id", "private_key"];

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(Arc::new(GitHubProvider::new(cfg)?))
}

/// A configured `github` system.
pub struct GitHubProvider {
    http: HttpClient,
    system: String,
    org: String,
}

/// GitHub's error body: `message` and `documentation_url`.
pub fn error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let m = v.get("message")?.as_str()?.trim();
    let mut out = m.to_string();
    if let Some(errors) = v.get("errors").and_then(Value::as_array) {
        let parts: Vec<String> = errors
            .iter()
            .filter_map(|e| {
                e.get("message")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| {
                        let f = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
                        Some(format!("{} {} {}", f("resource"), f("field"), f("code")))
                    })
            })
            .collect();
        if !parts.is_empty() {
            out.push_str(&format!(": {}", parts.join("; ")));
        }
    }
    if let Some(d) = v.get("documentation_url").and_then(Value::as_str) {
        out.push_str(&format!(" ({d})"));
    }
    Some(out)
}

/// GitHub's rate limits answer 403 (or 429): the primary one with `x-ratelimit-remaining: 0`,
/// the secondary one with `retry-after` or a message that says so.
fn throttled(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> bool {
    if !matches!(status.as_u16(), 403 | 429) {
        return false;
    }
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    header("retry-after").is_some()
        || header("x-ratelimit-remaining") == Some("0")
        || error_message(body).is_some_and(|m| m.to_ascii_lowercase().contains("rate limit"))
}

impl GitHubProvider {
    pub fn new(cfg: &SystemConfig) -> anyhow::Result<GitHubProvider> {
        let org = match cfg.settings.get("org") {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            _ => anyhow::bail!(
                "system `{}`: set `org`, the organization's login (e.g. `org = \"acme-corp\"`)",
                cfg.name
            ),
        };
        // The loader hands secret references over as settings even when planning.
        let has = |k: &str| cfg.settings.contains_key(k) || cfg.secrets.contains_key(k);
        let app = APP_KEYS.iter().filter(|k| has(k)).count();
        if app != 0 && app != APP_KEYS.len() {
            anyhow::bail!(
                "system `{}`: a GitHub App needs all of `app_id`, `installation_id` and \
                 `private_key = {{ file = \"…\" }}`",
                cfg.name
            );
        }
        if app != 0 && (cfg.token.is_some() || cfg.settings.contains_key("token")) {
            anyhow::bail!(
                "system `{}`: set `token` or the GitHub App (`app_id`…), not both",
                cfg.name
            );
        }
        let mut with_url = cfg.clone();
        if with_url.base_url.is_none() {
            with_url.base_url = Some(GITHUB_API.to_string());
        }
        let mut http = HttpClient::new(&with_url)?
            .with_accept(MEDIA_TYPE)
            .with_header("x-github-api-version", API_VERSION)?
            .with_error_parser(error_message)
            .with_throttle(throttled)
            .with_forbidden_hint(
                "the token lacks a permission: a fine-grained token or GitHub App needs the \
                 organization permission \"Members: read and write\" (and \"Administration: \
                 read and write\" for outside collaborators), from an org owner",
            );
        if app != 0 {
            let installation_id = match cfg.settings.get("installation_id") {
                Some(toml::Value::Integer(n)) if *n > 0 => *n as u64,
                _ => anyhow::bail!(
                    "system `{}`: `installation_id` must be a positive number",
                    cfg.name
                ),
            };
            let app_id = match cfg.settings.get("app_id") {
                Some(toml::Value::String(s)) => s.clone(),
                Some(toml::Value::Integer(n)) => n.to_string(),
                _ => anyhow::bail!("system `{}`: `app_id` must be a string", cfg.name),
            };
            if let Some(key) = cfg.secrets.get("private_key") {
                let client = super::kit::auth::token_client(cfg)
                    .map_err(|e| anyhow::anyhow!("system `{}`: {e}", cfg.name))?;
                let auth = GitHubApp::new(
                    client,
                    http.base_url(),
                    &app_id,
                    installation_id,
                    key,
                    API_VERSION,
                )
                .map_err(|e| anyhow::anyhow!("system `{}`: {e}", cfg.name))?;
                http = http.with_auth(Arc::new(auth));
            }
        }
        Ok(GitHubProvider {
            http,
            system: cfg.name.clone(),
            org,
        })
    }

    /// Replace the retry policy (tests use tiny budgets).
    pub fn with_retry(mut self, retry: super::kit::http::RetryPolicy) -> GitHubProvider {
        self.http = self.http.with_retry(retry);
        self
    }

    fn err(&self, msg: impl std::fmt::Display) -> ProviderError {
        ProviderError::Permanent(format!("system `{}`: {msg}", self.system))
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        self.http.endpoint(segments)
    }

    /// `GET /users/{login}`: the account's numeric id and login, or `None` on 404.
    async fn user(
        &self,
        login: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<Account>, ProviderError> {
        let req = Request::get(self.url(&["users", login])?).allow(StatusCode::NOT_FOUND);
        let resp = self.http.send(req, ctx).await?;
        records.push(resp.record.clone());
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body: Value = resp.json()?;
        let id = body
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| self.err(format!("GET /users/{login} answered without a numeric id")))?;
        let name = body.get("login").and_then(Value::as_str).unwrap_or(login);
        Ok(Some(Account::new(id.to_string(), "GitHub user id", name)))
    }

    /// The person's account: found by login, and when one was recorded, the same id still.
    async fn account(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Account, ProviderError> {
        let found = self.user(call.login, ctx, records).await?;
        match (call.account, found) {
            (None, Some(a)) => Ok(a),
            (None, None) => Err(ProviderError::NotFound(format!(
                "system `{}`: no GitHub user {:?} (GET /users/{{username}} answered 404)",
                self.system, call.login
            ))),
            (Some(rec), Some(a)) if a.id == rec.id => Ok(a),
            (Some(rec), Some(a)) => Err(self.err(format!(
                "the login {:?} now belongs to GitHub user id {}, not {} recorded for this \
                 person (renamed, and the name taken by someone else?): cannot confirm by login",
                call.login, a.id, rec.id
            ))),
            (Some(rec), None) => Err(self.err(format!(
                "the login {:?} no longer exists (renamed or deleted account, id {}): cannot \
                 confirm by login",
                call.login, rec.id
            ))),
        }
    }

    /// `GET /orgs/{org}/memberships/{username}`: `None` on 404 (not a member).
    async fn membership(
        &self,
        account: &Account,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<Value>, ProviderError> {
        let url = self.url(&["orgs", &self.org, "memberships", &account.name])?;
        let resp = self
            .http
            .send(Request::get(url).allow(StatusCode::NOT_FOUND), ctx)
            .await?;
        records.push(resp.record.clone());
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body: Value = resp.json()?;
        let uid = body.pointer("/user/id").and_then(Value::as_u64);
        if uid.is_some_and(|u| u.to_string() != account.id) {
            return Err(self.err(format!(
                "the membership of {:?} is for user id {}, not {}",
                account.name,
                uid.unwrap_or_default(),
                account.id
            )));
        }
        Ok(Some(body))
    }

    fn membership_outcome(&self, account: &Account, m: Option<&Value>) -> CheckOutcome {
        let observed = match m {
            None => format!("no membership in {} (404)", self.org),
            Some(m) => format!(
                "membership in {}: state={} role={}",
                self.org,
                m.get("state").and_then(Value::as_str).unwrap_or("?"),
                m.get("role").and_then(Value::as_str).unwrap_or("?")
            ),
        };
        CheckOutcome {
            revoked: m.is_none(),
            observed,
            account: Some(account.clone()),
        }
    }

    /// Every item of a Link-paged org list, 100 a page.
    async fn list(
        &self,
        what: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Value>, ProviderError> {
        let first = with_query(
            self.url(&["orgs", &self.org, what])?,
            &[("per_page", "100")],
        );
        let (items, recs) = paging::get_all(&self.http, first, Paging::LinkHeader, "", ctx).await?;
        records.extend(recs);
        Ok(items)
    }

    /// The pending invitations for the person: by login, or by `email`.
    async fn invitations(
        &self,
        account: &Account,
        p: &InvitationParams,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<(u64, String, Value)>, ProviderError> {
        let all = self.list("invitations", ctx, records).await?;
        let same = |v: &Value, k: &str, want: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .is_some_and(|s| s.eq_ignore_ascii_case(want))
        };
        let mut out = Vec::new();
        for inv in all {
            let mine = same(&inv, "login", &account.name)
                || p.email.as_deref().is_some_and(|e| same(&inv, "email", e));
            if !mine {
                continue;
            }
            let id = inv
                .get("id")
                .and_then(Value::as_u64)
                .ok_or_else(|| self.err("an invitation in the list has no numeric id"))?;
            let to = inv
                .get("login")
                .and_then(Value::as_str)
                .or(inv.get("email").and_then(Value::as_str))
                .unwrap_or("?")
                .to_string();
            out.push((id, to, inv));
        }
        Ok(out)
    }

    async fn is_outside_collaborator(
        &self,
        account: &Account,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<bool, ProviderError> {
        let all = self.list("outside_collaborators", ctx, records).await?;
        Ok(all.iter().any(|u| {
            u.get("id")
                .and_then(Value::as_u64)
                .is_some_and(|id| id.to_string() == account.id)
        }))
    }

    async fn read(
        &self,
        call: &StepCall<'_>,
        account: &Account,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<CheckOutcome, ProviderError> {
        match call.action {
            "remove_org_member" => {
                let m = self.membership(account, ctx, records).await?;
                Ok(self.membership_outcome(account, m.as_ref()))
            }
            "cancel_invitations" => {
                let p: InvitationParams = self.parse(call)?;
                let left = self.invitations(account, &p, ctx, records).await?;
                Ok(CheckOutcome {
                    revoked: left.is_empty(),
                    observed: format!("{} pending invitation(s) to {}", left.len(), self.org),
                    account: Some(account.clone()),
                })
            }
            "remove_outside_collaborator" => {
                let listed = self.is_outside_collaborator(account, ctx, records).await?;
                Ok(CheckOutcome {
                    revoked: !listed,
                    observed: if listed {
                        format!("an outside collaborator of {}", self.org)
                    } else {
                        format!("not an outside collaborator of {}", self.org)
                    },
                    account: Some(account.clone()),
                })
            }
            other => Err(self.err(format!("unknown action `{other}`"))),
        }
    }

    fn parse<T: serde::de::DeserializeOwned + Default>(
        &self,
        call: &StepCall<'_>,
    ) -> Result<T, ProviderError> {
        params::parse(call.action, call.params).map_err(|e| self.err(e.to_string()))
    }

    // -----------------------------------------------------------------------------------------
    // Rollback: the pre-state each apply records, and putting it back.
    //
    // `remove_org_member` records `{"org", "membership": {"state", "role"} | null, "teams":
    // [{"id", "slug", "state", "role"}]}`: removing a membership also leaves every team, so the
    // teams are read (`GET /orgs/{org}/teams`, then each team's membership of the login) while
    // they are still there. `cancel_invitations` records `{"org", "invitations": [{"id",
    // "login", "email", "role", "team_ids"}]}` (the teams from `GET
    // /orgs/{org}/invitations/{id}/teams` when `team_count` says it has some).
    // `remove_outside_collaborator` records `{"org", "outside_collaborator": bool}`.

    /// `GET /orgs/{org}/teams/{team_slug}/memberships/{username}`: `(state, role)`, `None` on
    /// 404 (not in the team, or no such team).
    async fn team_membership(
        &self,
        slug: &str,
        account: &Account,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<(String, String)>, ProviderError> {
        let url = self.url(&[
            "orgs",
            &self.org,
            "teams",
            slug,
            "memberships",
            &account.name,
        ])?;
        let resp = self
            .http
            .send(Request::get(url).allow(StatusCode::NOT_FOUND), ctx)
            .await?;
        records.push(resp.record.clone());
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body: Value = resp.json()?;
        let field = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        Ok(Some((field("state"), field("role"))))
    }

    /// Every team of the org the account is in (or invited to), with its state and role.
    async fn teams_of(
        &self,
        account: &Account,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Value>, ProviderError> {
        let teams = self.list("teams", ctx, records).await?;
        let mut out = Vec::new();
        for team in teams {
            let slug = team
                .get("slug")
                .and_then(Value::as_str)
                .ok_or_else(|| self.err("a team in GET /orgs/{org}/teams has no slug"))?;
            if let Some((state, role)) = self.team_membership(slug, account, ctx, records).await? {
                out.push(json!({
                    "id": team.get("id").cloned().unwrap_or(Value::Null),
                    "slug": slug,
                    "state": state,
                    "role": role,
                }));
            }
        }
        Ok(out)
    }

    /// What the check reads, and the live state the action is about to change, in the shape
    /// `restore` takes back (also when the change is in place already: nothing to put back).
    async fn snapshot(
        &self,
        call: &StepCall<'_>,
        account: &Account,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(CheckOutcome, Value), ProviderError> {
        match call.action {
            "remove_org_member" => {
                let m = self.membership(account, ctx, records).await?;
                let outcome = self.membership_outcome(account, m.as_ref());
                let teams = match m {
                    Some(_) => self.teams_of(account, ctx, records).await?,
                    None => Vec::new(),
                };
                let state = json!({
                    "org": self.org,
                    "membership": m.map(|m| json!({ "state": m.get("state"), "role": m.get("role") })),
                    "teams": teams,
                });
                Ok((outcome, state))
            }
            "cancel_invitations" => {
                let p: InvitationParams = self.parse(call)?;
                let pending = self.invitations(account, &p, ctx, records).await?;
                let outcome = CheckOutcome {
                    revoked: pending.is_empty(),
                    observed: format!("{} pending invitation(s) to {}", pending.len(), self.org),
                    account: Some(account.clone()),
                };
                let mut out = Vec::new();
                for (id, _, inv) in pending {
                    let mut team_ids = Vec::new();
                    if inv.get("team_count").and_then(Value::as_u64).unwrap_or(0) > 0 {
                        let first = with_query(
                            self.url(&[
                                "orgs",
                                &self.org,
                                "invitations",
                                &id.to_string(),
                                "teams",
                            ])?,
                            &[("per_page", "100")],
                        );
                        let (teams, recs) =
                            paging::get_all(&self.http, first, Paging::LinkHeader, "", ctx).await?;
                        records.extend(recs);
                        team_ids = teams.iter().filter_map(|t| t.get("id").cloned()).collect();
                    }
                    out.push(json!({
                        "id": id,
                        "login": inv.get("login").cloned().unwrap_or(Value::Null),
                        "email": inv.get("email").cloned().unwrap_or(Value::Null),
                        "role": inv.get("role").cloned().unwrap_or(Value::Null),
                        "team_ids": team_ids,
                    }));
                }
                Ok((outcome, json!({ "org": self.org, "invitations": out })))
            }
            _ => {
                let outcome = self.read(call, account, ctx, records).await?;
                let listed = !outcome.revoked;
                Ok((
                    outcome,
                    json!({ "org": self.org, "outside_collaborator": listed }),
                ))
            }
        }
    }

    /// The recorded account, and the login still naming it (a renamed or reused login is
    /// refused: restoring would invite someone else).
    async fn recorded(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Account, ProviderError> {
        if call.account.is_none() {
            return Err(self.err(format!(
                "step `{}`: no account was recorded for this step; nothing to restore",
                call.step_id
            )));
        }
        self.account(call, ctx, records).await
    }

    async fn put(
        &self,
        segments: &[&str],
        body: &Value,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(StatusCode, Value), ProviderError> {
        let req = Request::put(self.url(segments)?)
            .json(body, "application/json")
            .allow(StatusCode::NOT_FOUND);
        let resp = self.http.send(req, ctx).await?;
        records.push(resp.record.clone());
        let answer = if resp.status == StatusCode::NOT_FOUND {
            Value::Null
        } else {
            resp.json().unwrap_or(Value::Null)
        };
        Ok((resp.status, answer))
    }

    async fn restore_member(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let account = self.recorded(call, ctx, &mut records).await?;
        let Some(old) = before.get("membership").filter(|m| m.is_object()) else {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!(
                    "{account}: was not a member of {} before; nothing to put back",
                    self.org
                ),
                requests: records,
                account: Some(account),
            });
        };
        let role = old.get("role").and_then(Value::as_str).unwrap_or("");
        if !matches!(role, "admin" | "member" | "billing_manager") {
            return Err(self.err(format!(
                "{account}: the recorded org role {role:?} is not one offboard can invite them \
                 back as (admin, member, billing_manager): invite them by hand"
            )));
        }
        let mut done = Vec::new();
        let now = self.membership(&account, ctx, &mut records).await?;
        let now_role = now
            .as_ref()
            .and_then(|m| m.get("role").and_then(Value::as_str));
        if now_role != Some(role) && role == "billing_manager" {
            // PUT …/memberships takes admin or member only: a billing manager is invited.
            if let Some(r) = now_role {
                return Err(self.err(format!(
                    "{account}: was billing manager of {}, is {r} now: change that by hand",
                    self.org
                )));
            }
            let id: u64 = account.id.parse().map_err(|_| {
                self.err(format!(
                    "the recorded GitHub user id {:?} is not a number",
                    account.id
                ))
            })?;
            let url = self.url(&["orgs", &self.org, "invitations"])?;
            let body = json!({ "invitee_id": id, "role": "billing_manager" });
            let resp = self
                .http
                .send(Request::post(url).json(&body, "application/json"), ctx)
                .await?;
            records.push(resp.record.clone());
            done.push("org role billing_manager (invited)".to_string());
        } else if now_role != Some(role) {
            let (status, answer) = self
                .put(
                    &["orgs", &self.org, "memberships", &account.name],
                    &json!({ "role": role }),
                    ctx,
                    &mut records,
                )
                .await?;
            if status == StatusCode::NOT_FOUND {
                return Err(self.err(format!(
                    "{account}: PUT /orgs/{}/memberships/{} answered 404: not invited back",
                    self.org, account.name
                )));
            }
            let state = answer.get("state").and_then(Value::as_str).unwrap_or("?");
            done.push(format!("org role {role} (state {state})"));
        }
        let mut gone = Vec::new();
        for team in before
            .get("teams")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(slug), Some(team_role)) = (
                team.get("slug").and_then(Value::as_str),
                team.get("role").and_then(Value::as_str),
            ) else {
                continue;
            };
            let now = self
                .team_membership(slug, &account, ctx, &mut records)
                .await?;
            if now.as_ref().is_some_and(|(_, r)| r == team_role) {
                continue;
            }
            let (status, answer) = self
                .put(
                    &[
                        "orgs",
                        &self.org,
                        "teams",
                        slug,
                        "memberships",
                        &account.name,
                    ],
                    &json!({ "role": team_role }),
                    ctx,
                    &mut records,
                )
                .await?;
            if status == StatusCode::NOT_FOUND {
                gone.push(format!("team {slug} no longer exists (404)"));
                continue;
            }
            let state = answer.get("state").and_then(Value::as_str).unwrap_or("?");
            done.push(format!("team {slug} as {team_role} (state {state})"));
        }
        let changed = !done.is_empty();
        let mut summary = if changed {
            format!("{account}: put back in {}: {}", self.org, done.join(", "))
        } else {
            format!(
                "{account}: membership and teams in {} already back",
                self.org
            )
        };
        if !gone.is_empty() {
            summary.push_str(&format!("; not put back: {}", gone.join(", ")));
        }
        Ok(ApplyOutcome {
            changed,
            summary,
            requests: records,
            account: Some(account),
        })
    }

    /// The live membership and recorded teams, in the shape of the pre-state, and what is not
    /// back.
    async fn member_now(
        &self,
        account: &Account,
        before: &Value,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(Value, Vec<String>), ProviderError> {
        let m = self.membership(account, ctx, records).await?;
        let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let mut missing = Vec::new();
        if let Some(old) = before.get("membership").filter(|m| m.is_object()) {
            let role = field(old, "role").unwrap_or_default();
            match &m {
                None => missing.push(format!("no membership in {} (404)", self.org)),
                Some(m) if field(m, "state").as_deref() == Some("pending") => {
                    missing.push(format!(
                        "the membership in {} is pending: GitHub sent an invitation the person \
                         must accept",
                        self.org
                    ))
                }
                Some(m) if field(m, "role").as_deref() != Some(&role) => missing.push(format!(
                    "org role is {}, was {role}",
                    field(m, "role").unwrap_or_default()
                )),
                Some(_) => {}
            }
        }
        let mut teams = Vec::new();
        for team in before
            .get("teams")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(slug), Some(role)) = (field(team, "slug"), field(team, "role")) else {
                continue;
            };
            match self.team_membership(&slug, account, ctx, records).await? {
                None => missing.push(format!(
                    "not in team {slug} (404: not a member, or the team no longer exists)"
                )),
                Some((state, now_role)) => {
                    if state == "pending" {
                        missing.push(format!(
                            "team {slug}: pending until the invitation is accepted"
                        ));
                    } else if now_role != role {
                        missing.push(format!("team {slug}: role {now_role}, was {role}"));
                    }
                    teams.push(json!({
                        "id": team.get("id").cloned().unwrap_or(Value::Null),
                        "slug": slug, "state": state, "role": now_role,
                    }));
                }
            }
        }
        let after = json!({
            "org": self.org,
            "membership": m.map(|m| json!({ "state": m.get("state"), "role": m.get("role") })),
            "teams": teams,
        });
        Ok((after, missing))
    }

    /// Whether a pending invitation in `live` stands for the recorded one: the same login, or
    /// (invited by address) the same email.
    fn same_invitee(recorded: &Value, live: &Value) -> bool {
        let s = |v: &Value, k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
        };
        match s(recorded, "login") {
            Some(login) => s(live, "login") == Some(login),
            None => s(recorded, "email").is_some() && s(live, "email") == s(recorded, "email"),
        }
    }

    /// The pending invitations now for the recorded invitees (by login, and by the recorded
    /// emails).
    async fn invitations_now(
        &self,
        account: &Account,
        before: &Value,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Value>, ProviderError> {
        let all = self.list("invitations", ctx, records).await?;
        let recorded = before
            .get("invitations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(all
            .into_iter()
            .filter(|inv| {
                inv.get("login")
                    .and_then(Value::as_str)
                    .is_some_and(|l| l.eq_ignore_ascii_case(&account.name))
                    || recorded.iter().any(|r| Self::same_invitee(r, inv))
            })
            .collect())
    }

    async fn restore_invitations(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let account = self.recorded(call, ctx, &mut records).await?;
        let recorded = before
            .get("invitations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let live = if recorded.is_empty() {
            Vec::new()
        } else {
            self.invitations_now(&account, before, ctx, &mut records)
                .await?
        };
        let mut sent = Vec::new();
        for inv in &recorded {
            if live.iter().any(|l| Self::same_invitee(inv, l)) {
                continue;
            }
            let role = inv
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("direct_member");
            if !matches!(
                role,
                "admin" | "direct_member" | "billing_manager" | "reinstate"
            ) {
                return Err(self.err(format!(
                    "invitation {}: its role {role:?} cannot be sent with POST                      /orgs/{{org}}/invitations: invite them by hand",
                    inv.get("id").unwrap_or(&Value::Null)
                )));
            }
            let mut body = json!({ "role": role });
            if inv.get("login").and_then(Value::as_str).is_some() {
                let id: u64 = account.id.parse().map_err(|_| {
                    self.err(format!(
                        "the recorded GitHub user id {:?} is not a number",
                        account.id
                    ))
                })?;
                body["invitee_id"] = json!(id);
            } else if let Some(email) = inv.get("email").and_then(Value::as_str) {
                body["email"] = json!(email);
            } else {
                continue;
            }
            let teams = inv.get("team_ids").cloned().unwrap_or(json!([]));
            if teams.as_array().is_some_and(|t| !t.is_empty()) {
                body["team_ids"] = teams;
            }
            let url = self.url(&["orgs", &self.org, "invitations"])?;
            let resp = self
                .http
                .send(Request::post(url).json(&body, "application/json"), ctx)
                .await?;
            records.push(resp.record.clone());
            let answer: Value = resp.json().unwrap_or(Value::Null);
            sent.push(format!(
                "{} (was {})",
                answer.get("id").unwrap_or(&Value::Null),
                inv.get("id").unwrap_or(&Value::Null)
            ));
        }
        Ok(ApplyOutcome {
            changed: !sent.is_empty(),
            summary: if sent.is_empty() {
                format!(
                    "{account}: the {} recorded invitation(s) to {} are pending already",
                    recorded.len(),
                    self.org
                )
            } else {
                format!(
                    "{account}: sent {} invitation(s) to {} again: {}",
                    sent.len(),
                    self.org,
                    sent.join(", ")
                )
            },
            requests: records,
            account: Some(account),
        })
    }

    async fn delete(
        &self,
        segments: &[&str],
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<StatusCode, ProviderError> {
        let req = Request::delete(self.url(segments)?).allow(StatusCode::NOT_FOUND);
        let resp = self.http.send(req, ctx).await?;
        records.push(resp.record.clone());
        Ok(resp.status)
    }
}

#[async_trait]
impl Provider for GitHubProvider {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        let base = self.http.base_url().as_str().trim_end_matches('/');
        let org = super::kit::http::encode_component(&self.org);
        let line = |m: Method, path: String| RequestLine {
            method: m.to_string(),
            url: format!("{base}{path}"),
        };
        let user = line(Method::GET, "/users/{username}".into());
        match call.action {
            "remove_org_member" => vec![
                user,
                line(Method::GET, format!("/orgs/{org}/memberships/{{username}}")),
                line(
                    Method::DELETE,
                    format!("/orgs/{org}/memberships/{{username}}"),
                ),
            ],
            "cancel_invitations" => vec![
                user,
                line(Method::GET, format!("/orgs/{org}/invitations?per_page=100")),
                line(
                    Method::DELETE,
                    format!("/orgs/{org}/invitations/{{invitation_id}}"),
                ),
            ],
            "remove_outside_collaborator" => vec![
                user,
                line(
                    Method::GET,
                    format!("/orgs/{org}/outside_collaborators?per_page=100"),
                ),
                line(
                    Method::DELETE,
                    format!("/orgs/{org}/outside_collaborators/{{username}}"),
                ),
            ],
            _ => Vec::new(),
        }
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let account = self.account(call, ctx, &mut records).await?;
        ctx.identified(&account);
        let (before, snapshot) = self.snapshot(call, &account, ctx, &mut records).await?;
        ctx.before(&snapshot);
        let done = |records, summary: String, changed| {
            Ok(ApplyOutcome {
                changed,
                summary,
                requests: records,
                account: Some(account.clone()),
            })
        };
        if before.revoked {
            return done(
                records,
                format!("{account}: already {}", before.observed),
                false,
            );
        }
        match call.action {
            "remove_org_member" => {
                let status = self
                    .delete(
                        &["orgs", &self.org, "memberships", &account.name],
                        ctx,
                        &mut records,
                    )
                    .await?;
                let gone = status == StatusCode::NOT_FOUND;
                done(
                    records,
                    format!(
                        "{account}: removed from {} ({}{})",
                        self.org,
                        status.as_u16(),
                        if gone { ", already gone" } else { "" }
                    ),
                    !gone,
                )
            }
            "cancel_invitations" => {
                let p: InvitationParams = self.parse(call)?;
                let pending = self.invitations(&account, &p, ctx, &mut records).await?;
                let mut cancelled = Vec::new();
                for (id, to, _) in &pending {
                    let id_s = id.to_string();
                    let status = self
                        .delete(
                            &["orgs", &self.org, "invitations", &id_s],
                            ctx,
                            &mut records,
                        )
                        .await?;
                    if status != StatusCode::NOT_FOUND {
                        cancelled.push(format!("{id} ({to})"));
                    }
                }
                let changed = !cancelled.is_empty();
                done(
                    records,
                    format!(
                        "{account}: cancelled {} invitation(s) to {}{}",
                        cancelled.len(),
                        self.org,
                        if changed {
                            format!(": {}", cancelled.join(", "))
                        } else {
                            String::new()
                        }
                    ),
                    changed,
                )
            }
            "remove_outside_collaborator" => {
                let status = self
                    .delete(
                        &["orgs", &self.org, "outside_collaborators", &account.name],
                        ctx,
                        &mut records,
                    )
                    .await?;
                let gone = status == StatusCode::NOT_FOUND;
                done(
                    records,
                    format!(
                        "{account}: removed as an outside collaborator of {} ({})",
                        self.org,
                        status.as_u16()
                    ),
                    !gone,
                )
            }
            other => Err(self.err(format!("unknown action `{other}`"))),
        }
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let account = self.account(call, ctx, &mut records).await?;
        self.read(call, &account, ctx, &mut records).await
    }

    fn describe_restore(&self, call: &StepCall<'_>, before: &Value) -> Vec<RequestLine> {
        let base = self.http.base_url().as_str().trim_end_matches('/');
        let org = super::kit::http::encode_component(&self.org);
        let line = |m: Method, path: String| RequestLine {
            method: m.to_string(),
            url: format!("{base}{path}"),
        };
        let user = line(Method::GET, "/users/{username}".into());
        match call.action {
            "remove_org_member" if before.get("membership").is_some_and(Value::is_object) => {
                let billing = before.pointer("/membership/role").and_then(Value::as_str)
                    == Some("billing_manager");
                let mut lines = vec![
                    user,
                    line(Method::GET, format!("/orgs/{org}/memberships/{{username}}")),
                    if billing {
                        line(Method::POST, format!("/orgs/{org}/invitations"))
                    } else {
                        line(Method::PUT, format!("/orgs/{org}/memberships/{{username}}"))
                    },
                ];
                for team in before
                    .get("teams")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(slug) = team.get("slug").and_then(Value::as_str) {
                        let slug = super::kit::http::encode_component(slug);
                        let path = format!("/orgs/{org}/teams/{slug}/memberships/{{username}}");
                        lines.push(line(Method::GET, path.clone()));
                        lines.push(line(Method::PUT, path));
                    }
                }
                lines
            }
            "cancel_invitations"
                if before
                    .get("invitations")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty()) =>
            {
                vec![
                    user,
                    line(Method::GET, format!("/orgs/{org}/invitations?per_page=100")),
                    line(Method::POST, format!("/orgs/{org}/invitations")),
                ]
            }
            "remove_org_member" | "cancel_invitations" => vec![user],
            _ => Vec::new(),
        }
    }

    async fn restore(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "remove_org_member" => self.restore_member(call, before, ctx).await,
            "cancel_invitations" => self.restore_invitations(call, before, ctx).await,
            other => Err(self.err(format!("action `{other}` cannot be undone"))),
        }
    }

    async fn check_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let mut records = Vec::new();
        let account = self.recorded(call, ctx, &mut records).await?;
        match call.action {
            "remove_org_member" => {
                let (after, missing) = self.member_now(&account, before, ctx, &mut records).await?;
                let observed = match &after["membership"] {
                    Value::Null => format!("no membership in {}", self.org),
                    m => format!(
                        "membership in {}: state={} role={}; {} team(s) of {} recorded",
                        self.org,
                        m["state"].as_str().unwrap_or("?"),
                        m["role"].as_str().unwrap_or("?"),
                        after["teams"].as_array().map_or(0, Vec::len),
                        before["teams"].as_array().map_or(0, Vec::len),
                    ),
                };
                Ok(RestoreCheck {
                    restored: missing.is_empty(),
                    observed: if missing.is_empty() {
                        observed
                    } else {
                        format!("{observed}; not back: {}", missing.join("; "))
                    },
                    after,
                    account: Some(account),
                })
            }
            "cancel_invitations" => {
                let live = self
                    .invitations_now(&account, before, ctx, &mut records)
                    .await?;
                let recorded = before
                    .get("invitations")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let missing: Vec<String> = recorded
                    .iter()
                    .filter(|r| !live.iter().any(|l| Self::same_invitee(r, l)))
                    .map(|r| format!("invitation {} not pending again", r["id"]))
                    .collect();
                let after = json!({
                    "org": self.org,
                    "invitations": live.iter().map(|l| json!({
                        "id": l.get("id"), "login": l.get("login"), "email": l.get("email"),
                        "role": l.get("role"),
                    })).collect::<Vec<_>>(),
                });
                let observed = format!(
                    "{} pending invitation(s) to {} for {} recorded{}",
                    live.len(),
                    self.org,
                    recorded.len(),
                    if missing.is_empty() {
                        String::new()
                    } else {
                        format!("; not back: {}", missing.join("; "))
                    }
                );
                Ok(RestoreCheck {
                    restored: missing.is_empty(),
                    observed,
                    after,
                    account: Some(account),
                })
            }
            other => Err(self.err(format!("action `{other}` cannot be undone"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_errors_read_with_their_documentation() {
        let body = br#"{"message":"Must have admin rights to Repository.","documentation_url":"https://docs.github.com/rest","status":"403"}"#;
        assert_eq!(
            error_message(body).unwrap(),
            "Must have admin rights to Repository. (https://docs.github.com/rest)"
        );
    }

    #[test]
    fn a_403_is_a_throttle_only_with_githubs_signals() {
        let mut h = HeaderMap::new();
        let denied = br#"{"message":"Resource not accessible by integration"}"#;
        assert!(!throttled(StatusCode::FORBIDDEN, &h, denied));
        assert!(throttled(
            StatusCode::FORBIDDEN,
            &h,
            br#"{"message":"You have exceeded a secondary rate limit."}"#
        ));
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        assert!(throttled(StatusCode::FORBIDDEN, &h, denied));
        assert!(!throttled(StatusCode::NOT_FOUND, &h, denied));
    }
}
