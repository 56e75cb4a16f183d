//! What every `entra` action shares: the connected client, finding the person and reading
//! them by id, sending requests whose 404 is not "the person is unknown", the records some
//! checks compare with, and the requests `plan` shows.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use super::GRAPH_URL;
use crate::providers::kit::http::{HttpClient, HttpResponse, Request};
use crate::providers::kit::microsoft;
use crate::providers::{
    Account, ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestLine, RequestRecord,
    StepCall, SystemConfig,
};

/// What the Graph object id is called in the evidence.
pub const ID_KIND: &str = "Entra object id";

/// A configured `entra` system: one tenant.
#[derive(Debug)]
pub struct EntraProvider {
    pub(super) http: HttpClient,
    pub(super) system: String,
    /// Where the records of resets and revocations go (see [`Marker`]).
    state_dir: PathBuf,
}

impl EntraProvider {
    /// Build from the system's configuration. No I/O; works without a secret (planning).
    pub fn new(cfg: &SystemConfig) -> anyhow::Result<EntraProvider> {
        microsoft::check_credential(cfg)?;
        let mut with_url = cfg.clone();
        if with_url.base_url.is_none() {
            with_url.base_url = Some(GRAPH_URL.to_string());
        }
        let mut http = HttpClient::new(&with_url)?
            .with_accept("application/json")
            .with_error_parser(microsoft::error_message)
            .with_forbidden_hint(
                "the app registration lacks an application permission for this call (add the \
                 one the action names under API permissions and grant admin consent)",
            );
        if let Some(auth) = microsoft::auth_for(cfg, super::GRAPH_SCOPE)? {
            http = http.with_auth(auth);
        }
        Ok(EntraProvider {
            http,
            system: cfg.name.clone(),
            state_dir: cfg.state_dir.clone(),
        })
    }

    pub(super) fn err(&self, msg: impl std::fmt::Display) -> ProviderError {
        ProviderError::Permanent(format!("system `{}`: {msg}", self.system))
    }

    pub(super) fn unknown_action(&self, action: &str) -> ProviderError {
        self.err(format!("the entra kind has no action `{action}`"))
    }

    /// `base_url` + the segments, each percent-encoded.
    pub(super) fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        self.client().endpoint(segments)
    }

    /// [`url`](Self::url) followed by `/$ref` (an OData reference, written as Graph spells it).
    pub(super) fn ref_url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut u = self.url(segments)?;
        let path = format!("{}/$ref", u.path());
        u.set_path(&path);
        Ok(u)
    }

    /// `url` with `$select=a,b,c` (field names are ours, never user input).
    pub(super) fn select(mut url: Url, fields: &[&str]) -> Url {
        url.set_query(Some(&format!("$select={}", fields.join(","))));
        url
    }

    /// Send `req` and keep its record. A 404 here is about a resource of a person already
    /// identified (a mailbox, a drive), not the person: it is reported as a permanent error.
    pub(super) async fn send(
        &self,
        req: Request,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<HttpResponse, ProviderError> {
        let resp = self.client().send(req, ctx).await.map_err(|e| match e {
            ProviderError::NotFound(m) => ProviderError::Permanent(m),
            other => other,
        })?;
        records.push(resp.record.clone());
        Ok(resp)
    }

    /// `GET /users/{key}?$select=…`: `None` on 404.
    pub(super) async fn get_user(
        &self,
        key: &str,
        fields: &[&str],
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<Value>, ProviderError> {
        // The id is always wanted: it is what everything else addresses.
        let mut all = vec!["id"];
        all.extend(fields.iter().filter(|f| **f != "id"));
        let url = Self::select(self.url(&["users", key])?, &all);
        let resp = self
            .send(Request::get(url).allow(StatusCode::NOT_FOUND), ctx, records)
            .await?;
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let user: Value = resp.json()?;
        if text(&user, "id").is_none() {
            return Err(self.err(format!("GET /users/{key} answered a user without an `id`")));
        }
        Ok(Some(user))
    }

    /// The person's user as Graph has it now, with `fields` besides `id` and
    /// `userPrincipalName`: by the recorded id when the step already identified them (404 is
    /// [`Resolved::Gone`]), else by login (404 is [`ProviderError::NotFound`]).
    pub(super) async fn resolve(
        &self,
        call: &StepCall<'_>,
        fields: &[&str],
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Resolved, ProviderError> {
        let mut all = vec!["id", "userPrincipalName"];
        for f in fields {
            if !all.contains(f) {
                all.push(f);
            }
        }
        match call.account {
            Some(known) => match self.get_user(&known.id, &all, ctx, records).await? {
                None => Ok(Resolved::Gone(known.clone())),
                Some(user) => {
                    let id = text(&user, "id").unwrap_or_default();
                    if !id.eq_ignore_ascii_case(&known.id) {
                        return Err(self.err(format!(
                            "GET /users/{} answered user {id}; refusing to act on another \
                             account",
                            known.id
                        )));
                    }
                    let account = account_of(&user, &known.name);
                    Ok(Resolved::Live(user, account))
                }
            },
            None => {
                let login = call.login.trim();
                if login.is_empty() {
                    return Err(self.err("the login to look up is empty"));
                }
                match self.get_user(login, &all, ctx, records).await? {
                    Some(user) => {
                        let account = account_of(&user, login);
                        Ok(Resolved::Live(user, account))
                    }
                    None => Err(ProviderError::NotFound(format!(
                        "system `{}`: no Entra user {login:?} (GET /users/{{login}} answered \
                         404; the login must be the user principal name or the object id)",
                        self.system
                    ))),
                }
            }
        }
    }

    /// Identify the person, for preflight: what was found, changing and comparing nothing.
    pub(super) async fn look(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<String, ProviderError> {
        let mut records = Vec::new();
        match self
            .resolve(call, &["accountEnabled"], ctx, &mut records)
            .await?
        {
            Resolved::Live(user, account) => Ok(format!(
                "found {account} (accountEnabled={})",
                user.get("accountEnabled")
                    .map_or("not reported".into(), Value::to_string)
            )),
            Resolved::Gone(account) => Ok(format!("{account} no longer exists (404 by id)")),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Records under the state dir

    /// Where the record of `action` on user `id` lives: keyed by a hash of the system, the
    /// action and the object id (no user input in the path, no secret in the file).
    fn marker_path(&self, action: &str, id: &str) -> PathBuf {
        let mut h = Sha256::new();
        for part in [self.system.as_str(), action, &id.to_ascii_lowercase()] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        self.state_dir
            .join("entra-records")
            .join(hex::encode(h.finalize()))
    }

    pub(super) fn read_marker(
        &self,
        action: &str,
        id: &str,
    ) -> Result<Option<Marker>, ProviderError> {
        let path = self.marker_path(action, id);
        match crate::state::read_nofollow(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                self.err(format!(
                    "{} is not a record offboard wrote: {e}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(format!(
                "reading {}: {:#}",
                path.display(),
                crate::state::nofollow_error(e, &path)
            ))),
        }
    }

    pub(super) fn write_marker(
        &self,
        action: &str,
        id: &str,
        marker: &Marker,
    ) -> Result<(), ProviderError> {
        let path = self.marker_path(action, id);
        let bytes = serde_json::to_vec(marker).expect("a marker serialises");
        let dir = path.parent().expect("a marker has a parent").to_path_buf();
        crate::state::create_private_dir(&dir)
            .and_then(|()| crate::state::write_atomic(&path, &bytes))
            .map_err(|e| self.err(format!("recording the change in {}: {e:#}", path.display())))
    }

    pub(super) fn marker_dir(&self) -> PathBuf {
        self.state_dir.join("entra-records")
    }

    // -----------------------------------------------------------------------------------------
    // The plan

    pub(super) fn describe_call(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        let base = self.client().base_url().as_str().trim_end_matches('/');
        let line = |method: &str, path: &str| RequestLine {
            method: method.into(),
            url: format!("{base}{path}"),
        };
        let find = match self.url(&["users", call.login.trim()]) {
            Ok(u) => RequestLine {
                method: "GET".into(),
                url: u.to_string(),
            },
            Err(_) => return Vec::new(),
        };
        let mut out = vec![find];
        let more: &[(&str, &str)] = match call.action {
            "disable_sign_in" | "reset_password" | "clear_immutable_id" => {
                &[("PATCH", "/users/{id}")]
            }
            "revoke_sessions" => &[("POST", "/users/{id}/revokeSignInSessions")],
            "delete_user" => &[("DELETE", "/users/{id}")],
            "remove_auth_methods" => &[
                ("GET", "/users/{id}/authentication/methods"),
                ("DELETE", "/users/{id}/authentication/{kind}/{method_id}"),
            ],
            "remove_from_groups" => &[
                ("GET", "/users/{id}/memberOf"),
                ("DELETE", "/groups/{group_id}/members/{id}/$ref"),
            ],
            "remove_licenses" => &[
                ("GET", "/users/{id}/licenseDetails"),
                ("POST", "/users/{id}/assignLicense"),
            ],
            "remove_inbox_rules" | "remove_forwarding_rules" => &[
                ("GET", "/users/{id}/mailFolders/inbox/messageRules"),
                (
                    "DELETE",
                    "/users/{id}/mailFolders/inbox/messageRules/{rule_id}",
                ),
            ],
            "set_auto_reply" => &[
                ("GET", "/users/{id}/mailboxSettings"),
                ("PATCH", "/users/{id}/mailboxSettings"),
            ],
            "grant_onedrive_access" => &[
                ("GET", "/users/{id}/manager"),
                ("GET", "/users/{id}/drive"),
                ("GET", "/drives/{drive_id}/root/permissions"),
                ("POST", "/drives/{drive_id}/root/invite"),
            ],
            "retire_devices" => &[
                ("GET", "/users/{id}/managedDevices"),
                (
                    "POST",
                    "/deviceManagement/managedDevices/{device_id}/retire",
                ),
            ],
            "wipe_devices" => &[
                ("GET", "/users/{id}/managedDevices"),
                ("POST", "/deviceManagement/managedDevices/{device_id}/wipe"),
            ],
            _ => return Vec::new(),
        };
        out.extend(more.iter().map(|(m, p)| line(m, p)));
        out
    }
}

/// The user a step acts on, as it stands now.
pub(super) enum Resolved {
    Live(Value, Account),
    /// Read by its recorded id and answered 404: deleted since offboard saw it.
    Gone(Account),
}

/// The account a Graph user is, by its object id.
pub(super) fn account_of(user: &Value, fallback: &str) -> Account {
    Account::new(
        text(user, "id").unwrap_or_default(),
        ID_KIND,
        text(user, "userPrincipalName").unwrap_or(fallback),
    )
}

/// A string property, when present and not empty.
pub(super) fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The items of a Graph collection (`value`).
pub(super) fn items(v: &Value) -> Option<&Vec<Value>> {
    v.get("value").and_then(Value::as_array)
}

/// A Graph timestamp (`2026-12-01T10:00:00Z`).
pub(super) fn when(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    text(v, key)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The recorded user is gone by id: deleted, so nothing of it is left to revoke.
pub(super) fn gone(account: Account) -> CheckOutcome {
    CheckOutcome {
        revoked: true,
        observed: format!(
            "user {} no longer exists (404 by id: deleted; restorable for 30 days from deleted \
             items)",
            account.id
        ),
        account: Some(account),
    }
}

pub(super) fn already_deleted(account: Account, requests: Vec<RequestRecord>) -> ApplyOutcome {
    ApplyOutcome {
        changed: false,
        summary: format!("Entra user {} already deleted (404 by id)", account.id),
        requests,
        account: Some(account),
    }
}

/// A check's outcome on the account read.
pub(super) fn seen(revoked: bool, observed: String, account: &Account) -> CheckOutcome {
    CheckOutcome {
        revoked,
        observed,
        account: Some(account.clone()),
    }
}

/// What offboard recorded about a reset or a revocation it made: the value of the user's
/// timestamp before the change (the check wants the live one later than that) and when the
/// record was written. Nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Marker {
    /// The timestamp before the change; `None` when the user had none.
    pub before: Option<DateTime<Utc>>,
    pub recorded_at: DateTime<Utc>,
}

impl Marker {
    /// The change shows in the live value: it is later than before the change.
    pub fn holds(&self, live: Option<DateTime<Utc>>) -> bool {
        match (self.before, live) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(before), Some(now)) => now > before,
        }
    }

    /// Recent enough to stand for this departure's change (an apply repeated after a crash),
    /// not one from an earlier departure of the same person.
    pub fn is_recent(&self) -> bool {
        Utc::now().signed_duration_since(self.recorded_at) < chrono::Duration::hours(24)
    }
}

/// A timestamp for humans.
pub(super) fn show(t: Option<DateTime<Utc>>) -> String {
    t.map_or("none".into(), |t| {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    })
}

/// `e`, after `verb done…` already happened: what a failure after partial progress says.
pub(super) fn after_partial(verb: &str, done: &[String], e: ProviderError) -> ProviderError {
    if done.is_empty() {
        return e;
    }
    let prefix = format!("{verb} {}; then ", done.join(", "));
    match e {
        ProviderError::Transient(m) => ProviderError::Transient(prefix + &m),
        ProviderError::Permanent(m) | ProviderError::NotFound(m) => {
            ProviderError::Permanent(prefix + &m)
        }
    }
}

impl EntraProvider {
    /// Every item of a paged collection, following `@odata.nextLink` as given (never off
    /// `base_url`'s origin). A 404 is about the collection, not the person.
    pub(super) async fn get_all(
        &self,
        first: Url,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Value>, ProviderError> {
        let (all, made) = crate::providers::kit::paging::get_all(
            self.client(),
            first,
            crate::providers::kit::paging::Paging::NextUrl {
                pointer: "/@odata.nextLink".into(),
            },
            "/value",
            ctx,
        )
        .await
        .map_err(|e| match e {
            ProviderError::NotFound(m) => ProviderError::Permanent(m),
            other => other,
        })?;
        records.extend(made);
        Ok(all)
    }
}
