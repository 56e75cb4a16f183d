//! `http`: any service with a REST API, declared in the runbook instead of written in Rust.
//!
//! A step says three requests, each a template under `base_url`:
//! - `lookup` finds the person's account and reads its id at a JSON Pointer (`id`), from the
//!   whole answer or from each item of a list (`items`), optionally picking the item whose
//!   value at a pointer equals something (`match`), across pages (`paging`: Link header, a
//!   next URL in the body, or a cursor). A 404, no item, or no id is "not found"; more than
//!   one matching item is an error (offboard never guesses whose account it is).
//! - `apply` makes the change on that account: `{{ lookup.id }}` in its path (percent-encoded
//!   as one segment) or body is the id found. Statuses listed in `done_statuses` (e.g. 404 for
//!   a DELETE) mean "already done".
//! - `check` reads the account by that id and compares the value at `expect.pointer` with
//!   `expect.equals`; a 404 or 410 for the recorded id means the account is gone, which is
//!   revoked.
//!
//! Apply first runs the check, so a change already in place is not made twice. The id the
//! lookup found is journaled before the change and is what every later check reads.
//!
//! Rollback: neither action can be undone (the runbook declares no request that gives access
//! back). Apply still records what its check read first: `{"id", "pointer", "value"}` (only
//! the value at `expect.pointer`, never the whole answer), or `{"id", "gone": true}`.
//!
//! Values from templates are percent-encoded wherever they land in a path or query (the
//! params type marks `path` as a URL template); the template's own text is used as written
//! and must be a path under `base_url` (starting with `/`, no `..`, no other host).

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::kit::http::{ALLOW_PLAIN, HttpClient, Request, encode_component};
use super::kit::paging::{self, Paging};
use super::{
    Account, ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, ParamsSpec,
    Provider, ProviderError, RequestLine, RequestRecord, StepCall, SystemConfig, params,
};

/// Why an `http` step cannot be undone: the runbook declares how to cut access, never how to
/// give it back.
const NO_INVERSE: &str = "a generic HTTP step has no known inverse: the runbook declares the \
                          request that cuts access, not one that gives it back; restore it by \
                          hand in that service";

/// The variable `apply` and `check` templates use for the id the lookup found.
const LOOKUP_ID: &str = "lookup.id";
const PARAMS: ParamsSpec = ParamsSpec::of::<RequestParams>().with_late_vars(&[LOOKUP_ID]);

pub static KIND: KindSpec = KindSpec {
    name: "http",
    summary: "any REST API, declared in the runbook: a lookup that finds the account's id, \
              the request that cuts access, and the read that proves it",
    actions: &[
        ActionSpec {
            name: "request",
            summary: "find the account with `lookup`, make the `apply` request on it unless \
                      `check` already holds, then read it with `check`: revoked when the value \
                      at `expect.pointer` equals `expect.equals` (or the account is gone, 404/410)",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(NO_INVERSE),
            params: PARAMS,
        },
        ActionSpec {
            name: "destructive_request",
            summary: "the same as `request`, for a change that deletes or wipes (a DELETE of \
                      the account): marked destructive, so legal hold blocks it",
            destructive: true,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(NO_INVERSE),
            params: PARAMS,
        },
    ],
    settings: &[ALLOW_PLAIN, super::kit::auth::SETTING],
    needs_base_url: true,
    url_schemes: &["https", "http"],
    needs_token: true,
    connect,
    check_action: None,
};

/// The parameters of `request` and `destructive_request`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RequestParams {
    /// How to find the person's account; its id is `{{ lookup.id }}` in `apply` and `check`.
    lookup: Lookup,
    /// The request that cuts access, on the account found.
    apply: Call,
    /// The read that proves it, on the account found.
    check: CheckCall,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
enum HttpMethod {
    #[default]
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    fn method(self) -> Method {
        match self {
            HttpMethod::Get => Method::GET,
            HttpMethod::Post => Method::POST,
            HttpMethod::Put => Method::PUT,
            HttpMethod::Patch => Method::PATCH,
            HttpMethod::Delete => Method::DELETE,
        }
    }
}

/// Finding the account.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Lookup {
    /// `GET` (default) or `POST` (a search with a body).
    #[serde(default)]
    method: HttpMethod,
    /// The path under `base_url`, with its query, e.g. `/v2/users?email={{ user.email }}`;
    /// values are percent-encoded.
    #[schemars(extend("x-offboard-url" = true))]
    path: String,
    /// A JSON body for a `POST` search.
    json: Option<Value>,
    /// JSON Pointer to the list of accounts in each answer, e.g. `/data`; without it, `id` is
    /// read from the whole answer.
    items: Option<String>,
    /// Only the item whose value at `pointer` equals `equals` (strings compared ignoring case).
    #[serde(rename = "match")]
    matching: Option<Match>,
    /// JSON Pointer to the account's id (in the answer, or in the item with `items`), e.g.
    /// `/data/0/id` or `/id`.
    id: String,
    /// JSON Pointer to a name people recognise (e.g. `/email`), for the evidence.
    name: Option<String>,
    /// How the list pages (with `items`): `"link"` (an RFC 8288 Link header),
    /// `{ next_url = "/links/next" }`, or `{ cursor = "/meta/next_cursor", param = "cursor" }`.
    paging: Option<PagingSpec>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Match {
    /// JSON Pointer into each item, e.g. `/email`.
    pointer: String,
    /// The value wanted there, e.g. `{{ user.email }}`.
    equals: Value,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum PagingSpec {
    /// `"link"`: the next page is the `rel="next"` Link header.
    Link(LinkWord),
    /// The next page's URL is in the body at this pointer.
    NextUrl {
        /// JSON Pointer to the next page's URL, e.g. `/links/next` or `/@odata.nextLink`.
        next_url: String,
    },
    /// A cursor in the body, sent back as a query parameter.
    Cursor {
        /// JSON Pointer to the next cursor, e.g. `/meta/next_cursor`.
        cursor: String,
        /// The query parameter it goes back in, e.g. `cursor`.
        param: String,
    },
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
enum LinkWord {
    Link,
}

/// The change.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Call {
    /// `POST`, `PUT`, `PATCH` or `DELETE` (or `GET`).
    method: HttpMethod,
    /// The path under `base_url`, e.g. `/v2/users/{{ lookup.id }}`; values are
    /// percent-encoded.
    #[schemars(extend("x-offboard-url" = true))]
    path: String,
    /// The JSON body, e.g. `{ status = "disabled" }`.
    json: Option<Value>,
    /// Statuses that mean the change is already in place, e.g. `[404]` for a `DELETE`.
    #[serde(default)]
    done_statuses: Vec<u16>,
}

/// The read that proves it.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CheckCall {
    /// `GET` (default) or `POST`.
    #[serde(default)]
    method: HttpMethod,
    /// The path under `base_url`, e.g. `/v2/users/{{ lookup.id }}`; values are
    /// percent-encoded.
    #[schemars(extend("x-offboard-url" = true))]
    path: String,
    /// What the answer shows once access is gone.
    expect: Expect,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// JSON Pointer into the answer, e.g. `/status`.
    pointer: String,
    /// The value there once access is gone, e.g. `"disabled"` or `false`.
    equals: Value,
}

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    let mut http = HttpClient::new(cfg)?;
    // `token` or the `auth` table (a header token, Basic, OAuth client credentials…).
    if let Some(auth) = super::kit::auth::for_system(cfg)? {
        http = http.with_auth(auth);
    }
    Ok(Arc::new(RestProvider {
        http,
        system: cfg.name.clone(),
    }))
}

/// A configured `http` system.
pub struct RestProvider {
    http: HttpClient,
    system: String,
}

impl RestProvider {
    fn parse(&self, call: &StepCall<'_>) -> Result<RequestParams, ProviderError> {
        params::parse(call.action, call.params).map_err(|e| self.perm(call, e.to_string()))
    }

    fn perm(&self, call: &StepCall<'_>, msg: impl std::fmt::Display) -> ProviderError {
        ProviderError::Permanent(format!(
            "system `{}`: step `{}`: {msg}",
            self.system, call.step_id
        ))
    }

    /// `path` (rendered, `{{ lookup.id }}` still to fill) as a URL under `base_url`.
    fn url(&self, call: &StepCall<'_>, path: &str, id: Option<&str>) -> Result<Url, ProviderError> {
        let placeholder = format!("{{{{ {LOOKUP_ID} }}}}");
        let path = match id {
            Some(id) => path.replace(&placeholder, &encode_component(id)),
            None if path.contains(&placeholder) => {
                return Err(self.perm(call, "the lookup's path cannot use `{{ lookup.id }}`"));
            }
            None => path.to_string(),
        };
        let (p, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path.as_str(), None),
        };
        if !p.starts_with('/')
            || p.starts_with("//")
            || p.split('/').any(|s| s == ".." || s == ".")
            || p.contains(['#', '\\'])
        {
            return Err(self.perm(
                call,
                format!("`{p}` is not a path under base_url (start it with `/`, no `..`)"),
            ));
        }
        let base = self.http.base_url();
        let mut url = base.clone();
        url.set_path(&format!("{}{p}", base.path().trim_end_matches('/')));
        url.set_query(query);
        url.set_fragment(None);
        Ok(url)
    }

    fn request(
        &self,
        call: &StepCall<'_>,
        method: HttpMethod,
        path: &str,
        json: Option<&Value>,
        id: Option<&str>,
    ) -> Result<Request, ProviderError> {
        let mut req = Request::new(method.method(), self.url(call, path, id)?);
        if let Some(body) = json {
            let body = match id {
                Some(id) => fill(body, id),
                None => body.clone(),
            };
            req = req.json(&body, "application/json");
        }
        Ok(req)
    }

    /// The person's account: the recorded one, or the lookup's answer.
    async fn account(
        &self,
        call: &StepCall<'_>,
        p: &RequestParams,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Account, ProviderError> {
        if let Some(a) = call.account {
            return Ok(a.clone());
        }
        let l = &p.lookup;
        let not_found = |why: String| {
            ProviderError::NotFound(format!(
                "system `{}`: no account for {:?}: {why}",
                self.system, call.login
            ))
        };
        let req = self
            .request(call, l.method, &l.path, l.json.as_ref(), None)?
            .allow(StatusCode::NOT_FOUND);
        let first = req.url.clone();
        let candidates: Vec<Value> = match (&l.items, &l.paging) {
            (Some(items), Some(paging)) if l.method == HttpMethod::Get => {
                let paging = match paging {
                    PagingSpec::Link(_) => Paging::LinkHeader,
                    PagingSpec::NextUrl { next_url } => Paging::NextUrl {
                        pointer: next_url.clone(),
                    },
                    PagingSpec::Cursor { cursor, param } => Paging::Cursor {
                        pointer: cursor.clone(),
                        param: param.clone(),
                    },
                };
                let (all, recs) = paging::get_all(&self.http, first, paging, items, ctx).await?;
                records.extend(recs);
                all
            }
            (Some(_), Some(_)) => {
                return Err(self.perm(call, "paging needs a GET lookup"));
            }
            (None, Some(_)) => {
                return Err(self.perm(call, "paging needs `items`, the list that pages"));
            }
            (items, None) => {
                let resp = self.http.send(req, ctx).await?;
                records.push(resp.record.clone());
                if resp.status == StatusCode::NOT_FOUND {
                    return Err(not_found(format!("{} answered 404", first.path())));
                }
                let body: Value = resp.json()?;
                match items {
                    None => vec![body],
                    Some(ptr) => match body.pointer(ptr) {
                        Some(Value::Array(a)) => a.clone(),
                        _ => {
                            return Err(self.perm(
                                call,
                                format!("the lookup's answer has no list at {ptr:?}"),
                            ));
                        }
                    },
                }
            }
        };
        let chosen: Vec<&Value> = match &l.matching {
            None => candidates.iter().collect(),
            Some(m) => candidates
                .iter()
                .filter(|c| c.pointer(&m.pointer).is_some_and(|v| same(v, &m.equals)))
                .collect(),
        };
        let item = match chosen.as_slice() {
            [] => return Err(not_found("the lookup found no account".into())),
            [one] => *one,
            many if l.items.is_some() => {
                return Err(self.perm(
                    call,
                    format!(
                        "the lookup found {} accounts; add `match` to pick the person's (offboard \
                         never guesses)",
                        many.len()
                    ),
                ));
            }
            [first, ..] => *first,
        };
        let id = match item.pointer(&l.id) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(not_found(format!("the answer has no id at {:?}", l.id)));
            }
        };
        let name = l
            .name
            .as_deref()
            .and_then(|ptr| item.pointer(ptr))
            .and_then(Value::as_str)
            .unwrap_or(call.login)
            .to_string();
        Ok(Account::new(id, "id", name))
    }

    /// Read the account and judge it.
    async fn read(
        &self,
        call: &StepCall<'_>,
        p: &RequestParams,
        account: &Account,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<CheckOutcome, ProviderError> {
        Ok(self.read_state(call, p, account, ctx, records).await?.0)
    }

    /// The check's read, and the pre-state it shows: `{"id", "pointer", "value"}` (the value
    /// at `expect.pointer`, null when absent), or `{"id", "gone": true}` on 404/410.
    async fn read_state(
        &self,
        call: &StepCall<'_>,
        p: &RequestParams,
        account: &Account,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(CheckOutcome, Value), ProviderError> {
        let c = &p.check;
        let req = self
            .request(call, c.method, &c.path, None, Some(&account.id))?
            .allow(StatusCode::NOT_FOUND)
            .allow(StatusCode::GONE);
        let resp = self.http.send(req, ctx).await?;
        records.push(resp.record.clone());
        if matches!(resp.status, StatusCode::NOT_FOUND | StatusCode::GONE) {
            let outcome = CheckOutcome {
                revoked: true,
                observed: format!("{} (account gone)", resp.status.as_u16()),
                account: Some(account.clone()),
            };
            return Ok((outcome, json!({ "id": account.id, "gone": true })));
        }
        let body: Value = resp.json()?;
        let seen = body.pointer(&c.expect.pointer);
        let observed = match seen {
            Some(v) => format!("{}={v}", c.expect.pointer),
            None => format!("{} absent", c.expect.pointer),
        };
        let state = json!({
            "id": account.id,
            "pointer": c.expect.pointer,
            "value": seen.cloned().unwrap_or(Value::Null),
        });
        let outcome = CheckOutcome {
            revoked: seen.is_some_and(|v| same(v, &c.expect.equals)),
            observed,
            account: Some(account.clone()),
        };
        Ok((outcome, state))
    }
}

/// Equal, strings ignoring case (an email or a status word), numbers by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        // A value templated into a string (`"{{ user.id }}"`) against a number in the answer.
        (Value::Number(x), Value::String(y)) | (Value::String(y), Value::Number(x)) => {
            x.to_string() == *y
        }
        _ => a == b,
    }
}

/// `{{ lookup.id }}` filled in every string of a JSON body.
fn fill(v: &Value, id: &str) -> Value {
    let placeholder = format!("{{{{ {LOOKUP_ID} }}}}");
    match v {
        Value::String(s) => Value::String(s.replace(&placeholder, id)),
        Value::Array(a) => Value::Array(a.iter().map(|i| fill(i, id)).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, i)| (k.clone(), fill(i, id))).collect())
        }
        other => other.clone(),
    }
}

#[async_trait]
impl Provider for RestProvider {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        let Ok(p) = self.parse(call) else {
            return Vec::new();
        };
        let line = |method: HttpMethod, path: &str| RequestLine {
            method: method.method().to_string(),
            url: format!(
                "{}{}",
                self.http.base_url().as_str().trim_end_matches('/'),
                path.replace("{{ lookup.id }}", "{id}")
            ),
        };
        vec![
            line(p.lookup.method, &p.lookup.path),
            line(p.apply.method, &p.apply.path),
        ]
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let p = self.parse(call)?;
        let mut records = Vec::new();
        let account = self.account(call, &p, ctx, &mut records).await?;
        ctx.identified(&account);
        let (before, state) = self
            .read_state(call, &p, &account, ctx, &mut records)
            .await?;
        ctx.before(&state);
        if before.revoked {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("{account}: already {}", before.observed),
                requests: records,
                account: Some(account),
            });
        }
        let a = &p.apply;
        let mut req = self.request(call, a.method, &a.path, a.json.as_ref(), Some(&account.id))?;
        for s in &a.done_statuses {
            if let Ok(s) = StatusCode::from_u16(*s) {
                req = req.allow(s);
            }
        }
        let resp = self.http.send(req, ctx).await?;
        records.push(resp.record.clone());
        let done_already = a.done_statuses.contains(&resp.status.as_u16());
        Ok(ApplyOutcome {
            changed: !done_already,
            summary: format!(
                "{} {} on {account}: {}{}",
                a.method.method(),
                resp.record.url,
                resp.status.as_u16(),
                if done_already { " (already done)" } else { "" }
            ),
            requests: records,
            account: Some(account),
        })
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let p = self.parse(call)?;
        let mut records = Vec::new();
        let account = self.account(call, &p, ctx, &mut records).await?;
        self.read(call, &p, &account, ctx, &mut records).await
    }
}
