//! `snipeit`: Snipe-IT, the open-source asset manager (REST API v1, a personal API token sent as
//! `Authorization: Bearer`).
//!
//! One action, `checkin_assets`: find the person among the users (`GET /api/v1/users?search=`,
//! every page by `offset`/`limit` until `total`, an exact match on `email` or `username`,
//! ignoring case), list the hardware checked out to them (`GET /api/v1/users/{id}/assets`, paged
//! the same way) and check each asset in (`POST /api/v1/hardware/{id}/checkin` with `note` and
//! `status_id`, and `location_id` when given). The check lists the user's assets again: the
//! revocation holds when nothing is checked out to them, so an asset checked out to them again
//! later is drift.
//!
//! Rollback: apply records `{"user_id", "assets": [{"id", "asset_tag", "serial", "status_id",
//! "expected_checkin"}]}` before the first check-in, and restore checks each asset that is not
//! with the user again out to them (`POST /api/v1/hardware/{id}/checkout` with
//! `checkout_to_type: "user"`, `assigned_user`, the old `status_id`, and `expected_checkin` when
//! there was one), after `GET /api/v1/hardware/{id}` shows it checked in: an asset checked out
//! to someone else since is left with them, and named.
//!
//! Snipe-IT answers many failures with HTTP 200 and `{"status":"error","messages":…}` (a
//! validation error, an asset that cannot be checked in, a user not found): such an answer is a
//! failure with Snipe-IT's messages, never done. Its other error bodies carry the same
//! `messages` (a string, or field → list of strings).
//!
//! Facts from Snipe-IT's API reference and its `routes/api.php`; UNCONFIRMED: that
//! `users/{id}/assets` honours `offset`/`limit` on every version (older versions answer every
//! asset in one page, which this reads the same way, since it stops at `total`), and that a
//! user id that does not exist answers `users/{id}/assets` with a 200 error body rather than a
//! 404 (both are treated as failures of the read, never as "nothing checked out").

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use url::Url;

use super::kit::http::{ALLOW_PLAIN, HttpClient, HttpResponse, Request, RetryPolicy, with_query};
use super::kit::paging;
use super::{
    Account, ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, ParamsSpec,
    Provider, ProviderError, RequestLine, RequestRecord, RestoreCheck, StepCall, SystemConfig,
    params,
};

/// Items per page of a list.
const PAGE_SIZE: usize = 100;

/// What an account id is, in the journal and the evidence.
const ID_KIND: &str = "Snipe-IT user id";

pub static KIND: KindSpec = KindSpec {
    name: "snipeit",
    summary: "Snipe-IT (REST API v1, API token): check in the hardware checked out to the person",
    actions: &[ActionSpec {
        name: "checkin_assets",
        summary: "finds the person (`GET /api/v1/users?search=`, every page, exact `email` or \
                  `username`), lists the hardware checked out to them (`GET \
                  /api/v1/users/{id}/assets`) and checks each in (`POST \
                  /api/v1/hardware/{id}/checkin` with `note`, `status_id` and `location_id`); \
                  an answer `{\"status\":\"error\"}` is a failure even with HTTP 200; the check \
                  lists the user's assets again and holds when none is checked out to them",
        destructive: false,
        alerts_user: false,
        revokes: true,
        inverse: Inverse::Restore(
            "check each asset out again to the same user id with its old status label (POST \
             /api/v1/hardware/{id}/checkout, checkout_to_type user); an asset checked out to \
             someone else since is left with them, and its location becomes the user's as on any \
             checkout",
        ),
        params: ParamsSpec::of::<CheckinParams>(),
    }],
    settings: &[ALLOW_PLAIN],
    needs_base_url: true,
    url_schemes: &["https", "http"],
    needs_token: true,
    connect,
    check_action: None,
};

/// `checkin_assets`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CheckinParams {
    /// The status label (its id) each asset gets on check-in, e.g. the id of "Ready to Deploy"
    /// or "Pending return inspection".
    #[schemars(range(min = 1))]
    status_id: u64,
    /// The location (its id) each asset is checked in to; default: Snipe-IT's (the asset's
    /// default location).
    #[serde(default)]
    #[schemars(range(min = 1))]
    location_id: Option<u64>,
    /// The check-in note (a template, e.g. `"Returned at departure {{ departure.id }}"`);
    /// default `Checked in by offboard`.
    #[serde(default)]
    note: Option<String>,
}

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(Arc::new(SnipeItProvider::new(cfg)?))
}

pub struct SnipeItProvider {
    http: HttpClient,
    system: String,
    page_size: usize,
}

impl std::fmt::Debug for SnipeItProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnipeItProvider")
            .field("system", &self.system)
            .finish_non_exhaustive()
    }
}

/// Snipe-IT's `messages`: a string, or field → list of strings, as one line.
fn messages_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Object(m) if !m.is_empty() => Some(
            m.iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::Array(a) => a
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(" "),
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    format!("{k}: {text}")
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Value::Array(a) if !a.is_empty() => Some(
            a.iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ => None,
    }
}

/// The error text of a Snipe-IT error body (`{"status":"error","messages":…}`, or Laravel's
/// `{"message":…}`).
pub fn snipeit_error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    messages_text(&v["messages"]).or_else(|| messages_text(&v["message"]))
}

impl SnipeItProvider {
    /// Build from the system's configuration. No I/O; works without the token (planning).
    pub fn new(cfg: &SystemConfig) -> anyhow::Result<SnipeItProvider> {
        let http = HttpClient::new(cfg)?
            .with_accept("application/json")
            .with_error_parser(snipeit_error_message)
            .with_forbidden_hint(
                "the API token's user lacks a permission this call needs (Users: View; Assets: \
                 View and Checkin)",
            );
        Ok(SnipeItProvider {
            http,
            system: cfg.name.clone(),
            page_size: PAGE_SIZE,
        })
    }

    /// Replace the retry policy (tests use tiny budgets).
    pub fn with_retry(mut self, retry: RetryPolicy) -> SnipeItProvider {
        self.http = self.http.with_retry(retry);
        self
    }

    /// Items per page (default 100; tests use small pages to see paging followed).
    pub fn with_page_size(mut self, size: usize) -> SnipeItProvider {
        self.page_size = size.max(1);
        self
    }

    fn err(&self, msg: impl std::fmt::Display) -> ProviderError {
        ProviderError::Permanent(format!("system `{}`: {msg}", self.system))
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut all = vec!["api", "v1"];
        all.extend_from_slice(segments);
        self.http.endpoint(&all)
    }

    /// A 200 whose body says `"status":"error"` is Snipe-IT refusing: a failure with its
    /// messages.
    fn refused(&self, what: &str, body: &Value) -> Option<ProviderError> {
        (body["status"].as_str() == Some("error")).then(|| {
            let msg =
                messages_text(&body["messages"]).unwrap_or_else(|| "no message given".to_string());
            self.err(format!("{what}: Snipe-IT answered an error: {msg}"))
        })
    }

    /// Every row of a Snipe-IT list (`{total, rows}`), page by page (`offset`, `limit`) until
    /// `total` rows are read or a page comes back empty; a `"status":"error"` page is a failure
    /// with Snipe-IT's messages. (The kit's `paging::get_all` has no Snipe-IT style: it would
    /// report such a page as one without a list, losing the message.)
    async fn list(
        &self,
        url: Url,
        query: &[(&str, &str)],
        what: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Value>, ProviderError> {
        let mut rows: Vec<Value> = Vec::new();
        for _ in 0..paging::MAX_PAGES {
            let (offset, limit) = (rows.len().to_string(), self.page_size.to_string());
            let mut pairs = query.to_vec();
            pairs.extend([("offset", offset.as_str()), ("limit", limit.as_str())]);
            let page = with_query(url.clone(), &pairs);
            let resp = self.http.send(Request::get(page), ctx).await?;
            records.push(resp.record.clone());
            let body: Value = resp.json()?;
            if let Some(e) = self.refused(what, &body) {
                return Err(e);
            }
            let Some(page) = body["rows"].as_array() else {
                return Err(self.err(format!("{what}: the answer has no `rows` list")));
            };
            let total = body["total"]
                .as_u64()
                .ok_or_else(|| self.err(format!("{what}: the answer has no numeric `total`")))?;
            rows.extend(page.iter().cloned());
            if page.is_empty() || rows.len() as u64 >= total {
                return Ok(rows);
            }
        }
        Err(ProviderError::Transient(format!(
            "system `{}`: {what}: more than {} pages; stopped reading",
            self.system,
            paging::MAX_PAGES
        )))
    }

    /// The person, by the recorded account or by an exact email or username match.
    async fn user(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Account, ProviderError> {
        if let Some(a) = call.account {
            return Ok(a.clone());
        }
        let login = call.login.trim();
        if login.is_empty() {
            return Err(self.err("the login to look up is empty"));
        }
        let url = self.url(&["users"])?;
        let rows = self
            .list(url, &[("search", login)], "finding the user", ctx, records)
            .await?;
        let matching: Vec<&Value> = rows
            .iter()
            .filter(|u| {
                ["email", "username"].iter().any(|k| {
                    u[*k]
                        .as_str()
                        .is_some_and(|v| v.trim().eq_ignore_ascii_case(login))
                })
            })
            .collect();
        match matching.as_slice() {
            [] => Err(ProviderError::NotFound(format!(
                "system `{}`: no Snipe-IT user has the email or username {login:?}",
                self.system
            ))),
            [u] => {
                let id = id_of(u).ok_or_else(|| self.err("the user found has no numeric id"))?;
                let name = u["username"].as_str().unwrap_or(login);
                Ok(Account::new(id, ID_KIND, name))
            }
            many => Err(self.err(format!(
                "{} Snipe-IT users match {login:?}; name the person by a unique username",
                many.len()
            ))),
        }
    }

    /// The hardware checked out to the user now.
    async fn assets(
        &self,
        account: &Account,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Value>, ProviderError> {
        let url = self.url(&["users", &account.id, "assets"])?;
        self.list(url, &[], "listing the user's assets", ctx, records)
            .await
    }

    fn checkin_body(&self, call: &StepCall<'_>) -> Result<Value, ProviderError> {
        let p: CheckinParams = params::parse(call.action, call.params)?;
        let note = p
            .note
            .unwrap_or_else(|| "Checked in by offboard".to_string());
        let mut body = json!({ "note": note, "status_id": p.status_id });
        if let Some(l) = p.location_id {
            body["location_id"] = json!(l);
        }
        Ok(body)
    }

    async fn checkin(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let body = self.checkin_body(call)?;
        let mut records = Vec::new();
        let account = self.user(call, ctx, &mut records).await?;
        ctx.identified(&account);
        let assets = self.assets(&account, ctx, &mut records).await?;
        ctx.before(&pre_state(&account, &assets));
        let mut done = Vec::new();
        for asset in &assets {
            let id = id_of(asset).ok_or_else(|| self.err("an asset listed has no numeric id"))?;
            let label = label(asset, &id);
            let resp: HttpResponse = self
                .http
                .send(
                    Request::post(self.url(&["hardware", &id, "checkin"])?)
                        .json(&body, "application/json"),
                    ctx,
                )
                .await
                .map_err(|e| partly(e, &done))?;
            records.push(resp.record.clone());
            let answer: Value = resp.json()?;
            if let Some(e) = self.refused(&format!("checking in {label}"), &answer) {
                return Err(partly(e, &done));
            }
            done.push(label);
        }
        Ok(ApplyOutcome {
            changed: !done.is_empty(),
            summary: if done.is_empty() {
                format!(
                    "nothing checked out to {} (user {})",
                    account.name, account.id
                )
            } else {
                format!(
                    "checked in {} from {} (user {}): {}",
                    done.len(),
                    account.name,
                    account.id,
                    done.join(", ")
                )
            },
            requests: records,
            account: Some(account),
        })
    }

    /// The account rollback acts for: the one the apply recorded.
    fn recorded(&self, call: &StepCall<'_>) -> Result<Account, ProviderError> {
        call.account.cloned().ok_or_else(|| {
            self.err(format!(
                "step `{}`: no Snipe-IT user was recorded for this step; nothing to restore",
                call.step_id
            ))
        })
    }

    /// Undo `checkin_assets`: check each recorded asset not with the user now out to them
    /// again, unless it is checked out to someone else or gone.
    async fn checkout_again(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let account = self.recorded(call)?;
        let user_id: u64 = account.id.parse().map_err(|_| {
            self.err(format!(
                "the recorded user id {:?} is not a number",
                account.id
            ))
        })?;
        let mut records = Vec::new();
        let recorded = before["assets"].as_array().cloned().unwrap_or_default();
        let now = if recorded.is_empty() {
            Vec::new()
        } else {
            self.assets(&account, ctx, &mut records).await?
        };
        let mut done = Vec::new();
        let mut notes = Vec::new();
        for old in &recorded {
            let Some(id) = id_of(old) else { continue };
            let label = label(old, &id);
            if now.iter().any(|a| id_of(a).as_deref() == Some(id.as_str())) {
                continue;
            }
            let resp = self
                .http
                .send(Request::get(self.url(&["hardware", &id])?), ctx)
                .await?;
            records.push(resp.record.clone());
            let asset: Value = resp.json()?;
            if let Some(e) = self.refused(&format!("reading {label}"), &asset) {
                notes.push(format!("{label}: {e}"));
                continue;
            }
            if let Some(holder) = asset["assigned_to"].as_object() {
                notes.push(format!(
                    "{label} is checked out to {} (id {}) now: left with them",
                    holder
                        .get("username")
                        .and_then(Value::as_str)
                        .unwrap_or("someone"),
                    holder.get("id").unwrap_or(&Value::Null)
                ));
                continue;
            }
            let mut body = json!({
                "checkout_to_type": "user",
                "assigned_user": user_id,
                "note": "Checked out again by offboard rollback",
            });
            if let Some(st) = old["status_id"].as_u64() {
                body["status_id"] = json!(st);
            }
            if let Some(date) = old["expected_checkin"].as_str() {
                body["expected_checkin"] = json!(date);
            }
            let resp = self
                .http
                .send(
                    Request::post(self.url(&["hardware", &id, "checkout"])?)
                        .json(&body, "application/json"),
                    ctx,
                )
                .await
                .map_err(|e| partly_out(e, &done))?;
            records.push(resp.record.clone());
            let answer: Value = resp.json()?;
            if let Some(e) = self.refused(&format!("checking out {label}"), &answer) {
                return Err(partly_out(e, &done));
            }
            done.push(label);
        }
        let mut summary = if done.is_empty() {
            format!(
                "the {} recorded asset(s) of {} (user {}) are checked out to them already",
                recorded.len() - notes.len(),
                account.name,
                account.id
            )
        } else {
            format!(
                "checked out again to {} (user {}): {}",
                account.name,
                account.id,
                done.join(", ")
            )
        };
        if !notes.is_empty() {
            summary.push_str(&format!("; not put back: {}", notes.join("; ")));
        }
        Ok(ApplyOutcome {
            changed: !done.is_empty(),
            summary,
            requests: records,
            account: Some(account),
        })
    }

    async fn check_checked_out(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let account = self.recorded(call)?;
        let mut records = Vec::new();
        let now = self.assets(&account, ctx, &mut records).await?;
        let recorded = before["assets"].as_array().cloned().unwrap_or_default();
        let mut back = Vec::new();
        let mut missing = Vec::new();
        for old in &recorded {
            let Some(id) = id_of(old) else { continue };
            match now
                .iter()
                .find(|a| id_of(a).as_deref() == Some(id.as_str()))
            {
                Some(a) => back.push(a.clone()),
                None => missing.push(label(old, &id)),
            }
        }
        let mut after = pre_state(&account, &back);
        after["user_id"] = before["user_id"].clone();
        Ok(RestoreCheck {
            after,
            restored: missing.is_empty(),
            observed: if missing.is_empty() {
                format!(
                    "{} of {} recorded asset(s) checked out to {} again",
                    back.len(),
                    recorded.len(),
                    account.name
                )
            } else {
                format!(
                    "not checked out to {} (user {}): {}",
                    account.name,
                    account.id,
                    missing.join(", ")
                )
            },
            account: Some(account),
        })
    }

    async fn check_checkin(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let account = self.user(call, ctx, &mut records).await?;
        let assets = self.assets(&account, ctx, &mut records).await?;
        let labels: Vec<String> = assets
            .iter()
            .map(|a| label(a, &id_of(a).unwrap_or_default()))
            .collect();
        Ok(CheckOutcome {
            revoked: assets.is_empty(),
            observed: if labels.is_empty() {
                "no asset checked out".into()
            } else {
                format!("still checked out: {}", labels.join(", "))
            },
            account: Some(account),
        })
    }
}

/// The pre-state `checkin_assets` records: `{"user_id", "assets": [{"id", "asset_tag",
/// "serial", "status_id", "expected_checkin"}]}` (the status label the asset had while checked
/// out; `expected_checkin` its date or null).
fn pre_state(account: &Account, assets: &[Value]) -> Value {
    let user_id: Value = account
        .id
        .parse::<u64>()
        .map_or_else(|_| json!(account.id), |n| json!(n));
    json!({
        "user_id": user_id,
        "assets": assets.iter().map(asset_state).collect::<Vec<_>>(),
    })
}

fn asset_state(a: &Value) -> Value {
    let expected = match &a["expected_checkin"] {
        Value::Object(o) => o.get("date").cloned().unwrap_or(Value::Null),
        Value::String(s) => json!(s),
        _ => Value::Null,
    };
    json!({
        "id": a["id"],
        "asset_tag": a["asset_tag"],
        "serial": a["serial"],
        "status_id": a.pointer("/status_label/id").cloned().unwrap_or(Value::Null),
        "expected_checkin": expected,
    })
}

/// A Snipe-IT id (a number in JSON), as text.
fn id_of(v: &Value) -> Option<String> {
    v["id"].as_u64().map(|n| n.to_string())
}

/// `asset_tag (serial)`, or the id.
fn label(asset: &Value, id: &str) -> String {
    let tag = asset["asset_tag"].as_str().unwrap_or("").trim();
    let serial = asset["serial"].as_str().unwrap_or("").trim();
    match (tag.is_empty(), serial.is_empty()) {
        (false, false) => format!("{tag} (serial {serial}, id {id})"),
        (false, true) => format!("{tag} (id {id})"),
        _ => format!("asset id {id}"),
    }
}

/// An error after some assets were checked out again: name those.
fn partly_out(e: ProviderError, done: &[String]) -> ProviderError {
    if done.is_empty() {
        return e;
    }
    let more = format!(" (already checked out again: {})", done.join(", "));
    match e {
        ProviderError::Transient(m) => ProviderError::Transient(m + &more),
        ProviderError::Permanent(m) | ProviderError::NotFound(m) => {
            ProviderError::Permanent(m + &more)
        }
    }
}

/// An error after some assets were checked in: name those, so the operator knows.
fn partly(e: ProviderError, done: &[String]) -> ProviderError {
    if done.is_empty() {
        return match e {
            ProviderError::NotFound(m) => ProviderError::Permanent(m),
            e => e,
        };
    }
    let more = format!(" (already checked in: {})", done.join(", "));
    match e {
        ProviderError::Transient(m) => ProviderError::Transient(m + &more),
        ProviderError::Permanent(m) | ProviderError::NotFound(m) => {
            ProviderError::Permanent(m + &more)
        }
    }
}

#[async_trait]
impl Provider for SnipeItProvider {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        let (Ok(users), Ok(hardware)) = (self.url(&["users"]), self.url(&["hardware"])) else {
            return Vec::new();
        };
        let find = with_query(users.clone(), &[("search", call.login)]);
        let size = self.page_size;
        let body = self
            .checkin_body(call)
            .map(|b| b.to_string())
            .unwrap_or_default();
        vec![
            RequestLine {
                method: "GET".into(),
                url: format!("{find}&offset={{offset}}&limit={size}"),
            },
            RequestLine {
                method: "GET".into(),
                url: format!("{users}/{{id}}/assets?offset={{offset}}&limit={size}"),
            },
            RequestLine {
                method: "POST".into(),
                url: format!("{hardware}/{{asset id}}/checkin {body} (each asset)"),
            },
        ]
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "checkin_assets" => self.checkin(call, ctx).await,
            other => Err(self.err(format!("unknown action {other}"))),
        }
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        match call.action {
            "checkin_assets" => self.check_checkin(call, ctx).await,
            other => Err(self.err(format!("unknown action {other}"))),
        }
    }

    fn describe_restore(&self, call: &StepCall<'_>, before: &Value) -> Vec<RequestLine> {
        let (Ok(users), Ok(hardware)) = (self.url(&["users"]), self.url(&["hardware"])) else {
            return Vec::new();
        };
        if call.action != "checkin_assets" {
            return Vec::new();
        }
        let mut lines = vec![RequestLine {
            method: "GET".into(),
            url: format!(
                "{users}/{}/assets?offset={{offset}}&limit={}",
                before["user_id"], self.page_size
            ),
        }];
        for a in before["assets"].as_array().into_iter().flatten() {
            let Some(id) = id_of(a) else { continue };
            lines.push(RequestLine {
                method: "GET".into(),
                url: format!("{hardware}/{id} (if not with the user)"),
            });
            lines.push(RequestLine {
                method: "POST".into(),
                url: format!(
                    "{hardware}/{id}/checkout (to user {}, status_id {}; if checked in)",
                    before["user_id"], a["status_id"]
                ),
            });
        }
        lines
    }

    async fn restore(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "checkin_assets" => self.checkout_again(call, before, ctx).await,
            other => Err(self.err(format!("unknown action {other}"))),
        }
    }

    async fn check_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        match call.action {
            "checkin_assets" => self.check_checked_out(call, before, ctx).await,
            other => Err(self.err(format!("unknown action {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_read_as_snipeit_writes_them() {
        assert_eq!(
            snipeit_error_message(
                br#"{"status":"error","messages":"Asset not found","payload":null}"#
            ),
            Some("Asset not found".into())
        );
        assert_eq!(
            snipeit_error_message(
                br#"{"status":"error","messages":{"status_id":["The selected status id is invalid."]}}"#
            ),
            Some("status_id: The selected status id is invalid.".into())
        );
        assert_eq!(
            snipeit_error_message(br#"{"message":"Unauthenticated."}"#),
            Some("Unauthenticated.".into())
        );
        assert_eq!(snipeit_error_message(b"<html>"), None);
    }

    #[test]
    fn describe_lists_the_requests() {
        let cfg = SystemConfig::new("assets", "snipeit", Some("https://assets.example"));
        let p = SnipeItProvider::new(&cfg).unwrap();
        let params: serde_json::Map<String, Value> =
            serde_json::from_value(json!({ "status_id": 2, "note": "returned" })).unwrap();
        let lines = p.describe(&StepCall {
            step_id: "s",
            action: "checkin_assets",
            login: "a+b@corp.example",
            params: &params,
            account: None,
        });
        let text: Vec<String> = lines
            .iter()
            .map(|l| format!("{} {}", l.method, l.url))
            .collect();
        assert!(
            text[0]
                .starts_with("GET https://assets.example/api/v1/users?search=a%2Bb%40corp.example"),
            "{text:?}"
        );
        assert!(
            text[2].contains("/api/v1/hardware/{asset id}/checkin"),
            "{text:?}"
        );
        assert!(text[2].contains("\"status_id\":2"), "{text:?}");
    }
}
