//! The Gmail API's actions: the automatic reply (`settings/vacation`) and forwarding
//! (`settings/forwardingAddresses`, `settings/autoForwarding`). Gmail settings belong to the
//! user: the user is identified as `admin` (Directory), then the service account acts as the
//! user (`sub` = the user's primary email) on `users/me`.
//!
//! UNCONFIRMED: whether Google issues a delegated token for a suspended user; order these
//! actions before `suspend_user` (`after`).

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Api, GoogleProvider, User, done, not_the_person, scopes};
use crate::providers::kit::http::{HttpClient, Request};
use crate::providers::{
    ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall, params,
};

/// `set_auto_reply`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AutoReplyParams {
    /// The reply's subject, e.g. `"{{ user.name }} has left"` (a template).
    #[schemars(length(min = 1))]
    subject: String,
    /// The reply's text, e.g. `"Please write to {{ user.manager }}"` (a template).
    #[schemars(length(min = 1))]
    body: String,
    /// Send `body` as HTML (`responseBodyHtml`) rather than plain text (default false).
    #[serde(default)]
    html: bool,
    /// Reply only to senders in the user's domain (default false).
    #[serde(default)]
    restrict_to_domain: bool,
    /// Reply only to the user's contacts (default false).
    #[serde(default)]
    restrict_to_contacts: bool,
}

/// `set_forwarding`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ForwardingParams {
    /// Where mail goes, e.g. `"{{ user.manager }}"` (a template).
    #[schemars(length(min = 3))]
    to: String,
    /// What Gmail does with the user's copy: `leaveInInbox` (default), `archive`, `trash` or
    /// `markRead`.
    disposition: Option<Disposition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
enum Disposition {
    LeaveInInbox,
    Archive,
    Trash,
    MarkRead,
}

impl Disposition {
    fn gmail(self) -> &'static str {
        match self {
            Disposition::LeaveInInbox => "leaveInInbox",
            Disposition::Archive => "archive",
            Disposition::Trash => "trash",
            Disposition::MarkRead => "markRead",
        }
    }
}

/// The `VacationSettings` fields offboard records and puts back.
pub(super) const VACATION_FIELDS: &[&str] = &[
    "enableAutoReply",
    "responseSubject",
    "responseBodyPlainText",
    "responseBodyHtml",
    "restrictToContacts",
    "restrictToDomain",
    "startTime",
    "endTime",
];

/// `v` cut to `fields` (what a pre-state records; absent fields stay absent).
pub(super) fn cut(v: &Value, fields: &[&str]) -> Value {
    let mut out = serde_json::Map::new();
    for k in fields {
        if let Some(x) = v.get(*k) {
            out.insert((*k).to_string(), x.clone());
        }
    }
    Value::Object(out)
}

pub(super) fn vacation_fields(v: &Value) -> Value {
    cut(v, VACATION_FIELDS)
}

/// The `AutoForwarding` fields offboard records and puts back.
pub(super) const FORWARDING_FIELDS: &[&str] = &["enabled", "emailAddress", "disposition"];

pub(super) fn forwarding_fields(v: &Value) -> Value {
    cut(v, FORWARDING_FIELDS)
}

/// What the automatic reply should be, as Gmail's `VacationSettings`.
fn vacation(p: &AutoReplyParams) -> Value {
    let mut v = json!({
        "enableAutoReply": true,
        "responseSubject": p.subject,
        "restrictToDomain": p.restrict_to_domain,
        "restrictToContacts": p.restrict_to_contacts,
    });
    let key = if p.html {
        "responseBodyHtml"
    } else {
        "responseBodyPlainText"
    };
    v[key] = json!(p.body);
    v
}

/// Whether Gmail's settings hold what `p` asks for.
fn vacation_holds(got: &Value, p: &AutoReplyParams) -> Result<(), String> {
    let want = vacation(p);
    let Some(obj) = want.as_object() else {
        return Err("?".into());
    };
    for (k, w) in obj {
        // Gmail leaves false booleans out.
        let g = got.get(k).cloned().unwrap_or(if w.is_boolean() {
            json!(false)
        } else {
            Value::Null
        });
        if g != *w {
            return Err(format!("{k}={g}"));
        }
    }
    Ok(())
}

impl GoogleProvider {
    /// The user (as admin), then a client acting as the user.
    pub(super) async fn as_user(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        scopes: &'static [&'static str],
        records: &mut Vec<RequestRecord>,
        apply: bool,
    ) -> Result<Result<(User, std::sync::Arc<HttpClient>), Box<Gone>>, ProviderError> {
        let admin = self.as_admin(Api::Admin, super::scopes::USER)?;
        let user = if apply {
            match self.live(&admin, call, ctx, records).await? {
                Ok((u, _)) => u,
                Err(done) => return Ok(Err(Box::new(Gone::Apply(done)))),
            }
        } else {
            match self.read(&admin, call, ctx).await? {
                Ok(u) => u,
                Err(gone) => return Ok(Err(Box::new(Gone::Check(gone)))),
            }
        };
        if user.email.is_empty() {
            return Err(self.err(format!(
                "GET users/{} answered without `primaryEmail`: cannot act as the user",
                user.id
            )));
        }
        let http = self.client(Api::Gmail, &user.email, scopes)?;
        Ok(Ok((user, http)))
    }

    pub(super) fn gmail(&self, segments: &[&str]) -> Result<url::Url, ProviderError> {
        let mut all = vec!["gmail", "v1", "users", "me", "settings"];
        all.extend_from_slice(segments);
        self.url(Api::Gmail, &all)
    }

    pub(super) async fn get_json(
        &self,
        http: &HttpClient,
        url: url::Url,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<Value>, ProviderError> {
        let resp = self
            .send(
                http,
                Request::get(url).allow(StatusCode::NOT_FOUND),
                ctx,
                records,
            )
            .await
            .map_err(not_the_person)?;
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(resp.json()?))
    }

    pub(super) async fn set_auto_reply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let p: AutoReplyParams = params::parse(call.action, call.params)?;
        let mut records = Vec::new();
        let (user, http) = match self
            .as_user(call, ctx, scopes::GMAIL_BASIC, &mut records, true)
            .await?
        {
            Ok(x) => x,
            Err(g) => return Ok(g.apply()),
        };
        let url = self.gmail(&["vacation"])?;
        let now = self
            .get_json(&http, url.clone(), ctx, &mut records)
            .await?
            .unwrap_or(Value::Null);
        ctx.before(&json!({ "id": user.id, "vacation": vacation_fields(&now) }));
        if vacation_holds(&now, &p).is_ok() {
            return Ok(done(
                false,
                format!("Gmail automatic reply of {} already set", user.email),
                records,
                user.account(),
            ));
        }
        let req = Request::put(url).json(&vacation(&p), "application/json");
        self.send(&http, req, ctx, &mut records)
            .await
            .map_err(not_the_person)?;
        Ok(done(
            true,
            format!(
                "turned on the Gmail automatic reply of {} ({:?})",
                user.email, p.subject
            ),
            records,
            user.account(),
        ))
    }

    pub(super) async fn check_auto_reply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let p: AutoReplyParams = params::parse(call.action, call.params)?;
        let mut records = Vec::new();
        let (user, http) = match self
            .as_user(call, ctx, scopes::GMAIL_BASIC, &mut records, false)
            .await?
        {
            Ok(x) => x,
            Err(g) => return Ok(g.check()),
        };
        let now = self
            .get_json(&http, self.gmail(&["vacation"])?, ctx, &mut records)
            .await?
            .ok_or_else(|| self.err("GET settings/vacation answered 404: cannot confirm"))?;
        Ok(match vacation_holds(&now, &p) {
            Ok(()) => CheckOutcome {
                revoked: true,
                observed: "enableAutoReply=true with the subject and text asked for".into(),
                account: Some(user.account()),
            },
            Err(diff) => CheckOutcome {
                revoked: false,
                observed: format!("automatic reply differs: {diff}"),
                account: Some(user.account()),
            },
        })
    }

    /// The forwarding address's `verificationStatus`, or `None` when Gmail does not have it.
    async fn forwarding_status(
        &self,
        http: &HttpClient,
        to: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<String>, ProviderError> {
        let v = self
            .get_json(
                http,
                self.gmail(&["forwardingAddresses", to])?,
                ctx,
                records,
            )
            .await?;
        Ok(v.map(|v| {
            v.get("verificationStatus")
                .and_then(Value::as_str)
                .unwrap_or("verificationStatusUnspecified")
                .to_string()
        }))
    }

    fn forwarding_holds(auto: &Value, to: &str, disposition: Disposition) -> Result<(), String> {
        let enabled = auto
            .get("enabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let addr = auto
            .get("emailAddress")
            .and_then(Value::as_str)
            .unwrap_or("");
        let disp = auto
            .get("disposition")
            .and_then(Value::as_str)
            .unwrap_or("");
        if enabled && addr.eq_ignore_ascii_case(to) && disp == disposition.gmail() {
            Ok(())
        } else {
            Err(format!(
                "autoForwarding enabled={enabled} emailAddress={addr:?} disposition={disp:?}"
            ))
        }
    }

    pub(super) async fn set_forwarding(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let p: ForwardingParams = params::parse(call.action, call.params)?;
        let disposition = p.disposition.unwrap_or(Disposition::LeaveInInbox);
        let mut records = Vec::new();
        let (user, http) = match self
            .as_user(call, ctx, scopes::GMAIL_SHARING, &mut records, true)
            .await?
        {
            Ok(x) => x,
            Err(g) => return Ok(g.apply()),
        };
        let mut created = false;
        let existing = self
            .forwarding_status(&http, &p.to, ctx, &mut records)
            .await?;
        let auto_before = self
            .get_json(&http, self.gmail(&["autoForwarding"])?, ctx, &mut records)
            .await?
            .unwrap_or(Value::Null);
        ctx.before(&json!({
            "id": user.id,
            "autoForwarding": forwarding_fields(&auto_before),
            "forwardingAddress": { "address": p.to, "existed": existing.is_some() },
        }));
        let status = match existing {
            Some(s) => s,
            None => {
                let req = Request::post(self.gmail(&["forwardingAddresses"])?)
                    .json(&json!({ "forwardingEmail": p.to }), "application/json");
                let resp = self
                    .send(&http, req, ctx, &mut records)
                    .await
                    .map_err(not_the_person)?;
                created = true;
                let v: Value = resp.json()?;
                v.get("verificationStatus")
                    .and_then(Value::as_str)
                    .unwrap_or("verificationStatusUnspecified")
                    .to_string()
            }
        };
        if status != "accepted" {
            // Gmail forwards only to an accepted address: the owner of `to` must confirm first.
            return Ok(done(
                created,
                format!(
                    "forwarding address {} for {} is `{status}`: Google sent its owner a \
                     confirmation; forwarding is requested, not on (apply again once confirmed)",
                    p.to, user.email
                ),
                records,
                user.account(),
            ));
        }
        let url = self.gmail(&["autoForwarding"])?;
        let now = self
            .get_json(&http, url.clone(), ctx, &mut records)
            .await?
            .unwrap_or(Value::Null);
        if Self::forwarding_holds(&now, &p.to, disposition).is_ok() {
            return Ok(done(
                created,
                format!("Gmail of {} already forwards to {}", user.email, p.to),
                records,
                user.account(),
            ));
        }
        let body = json!({
            "enabled": true,
            "emailAddress": p.to,
            "disposition": disposition.gmail(),
        });
        self.send(
            &http,
            Request::put(url).json(&body, "application/json"),
            ctx,
            &mut records,
        )
        .await
        .map_err(not_the_person)?;
        Ok(done(
            true,
            format!(
                "Gmail of {} now forwards to {} (disposition {})",
                user.email,
                p.to,
                disposition.gmail()
            ),
            records,
            user.account(),
        ))
    }

    pub(super) async fn check_forwarding(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let p: ForwardingParams = params::parse(call.action, call.params)?;
        let disposition = p.disposition.unwrap_or(Disposition::LeaveInInbox);
        let mut records = Vec::new();
        let (user, http) = match self
            .as_user(call, ctx, scopes::GMAIL_SHARING, &mut records, false)
            .await?
        {
            Ok(x) => x,
            Err(g) => return Ok(g.check()),
        };
        let account = Some(user.account());
        match self
            .forwarding_status(&http, &p.to, ctx, &mut records)
            .await?
        {
            None => {
                return Ok(CheckOutcome {
                    revoked: false,
                    observed: format!("no forwarding address {}", p.to),
                    account,
                });
            }
            Some(s) if s != "accepted" => {
                return Ok(CheckOutcome {
                    revoked: false,
                    observed: format!(
                        "forwarding to {} pending (verificationStatus={s}: its owner has not \
                         confirmed)",
                        p.to
                    ),
                    account,
                });
            }
            Some(_) => {}
        }
        let auto = self
            .get_json(&http, self.gmail(&["autoForwarding"])?, ctx, &mut records)
            .await?
            .ok_or_else(|| self.err("GET settings/autoForwarding answered 404: cannot confirm"))?;
        Ok(match Self::forwarding_holds(&auto, &p.to, disposition) {
            Ok(()) => CheckOutcome {
                revoked: true,
                observed: format!("forwards to {} ({})", p.to, disposition.gmail()),
                account,
            },
            Err(why) => CheckOutcome {
                revoked: false,
                observed: why,
                account,
            },
        })
    }
}

/// The user was gone by id: the outcome to return as is.
pub(super) enum Gone {
    Apply(ApplyOutcome),
    Check(CheckOutcome),
}

impl Gone {
    fn apply(self) -> ApplyOutcome {
        match self {
            Gone::Apply(a) => a,
            Gone::Check(c) => ApplyOutcome {
                changed: false,
                summary: c.observed,
                requests: Vec::new(),
                account: c.account,
            },
        }
    }

    fn check(self) -> CheckOutcome {
        match self {
            Gone::Check(c) => c,
            Gone::Apply(a) => CheckOutcome {
                revoked: true,
                observed: a.summary,
                account: a.account,
            },
        }
    }
}
