//! The mailbox, as far as Graph reaches it: the Inbox rules (`messageRules`: all of them, or
//! those that forward or redirect mail) and the automatic replies (`mailboxSettings`).
//! Mailbox-level forwarding (`ForwardingSmtpAddress`) is Exchange's, not Graph's: see the
//! `exchange` kind.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::EntraProvider;
use super::graph::{Resolved, after_partial, already_deleted, gone, seen, text};
use crate::providers::kit::http::Request;
use crate::providers::{
    Account, ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall, params,
};

/// The rule actions that send mail elsewhere.
const FORWARDING: &[&str] = &["forwardTo", "forwardAsAttachmentTo", "redirectTo"];

/// One Inbox rule.
pub(super) struct Rule {
    id: String,
    name: String,
    /// The addresses it forwards or redirects to (empty: it does not).
    forwards_to: Vec<String>,
    /// The rule as Graph answered it.
    raw: Value,
}

/// The properties of a `messageRule` that make it what it is (and that can be written: the
/// rest, `id`, `hasError`, `isReadOnly`, are Graph's).
pub(super) const RULE_FIELDS: &[&str] = &[
    "displayName",
    "sequence",
    "isEnabled",
    "conditions",
    "actions",
    "exceptions",
];

/// `rule` cut to [`RULE_FIELDS`], nulls left out (what is recorded, and written back).
pub(super) fn rule_body(rule: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for k in RULE_FIELDS {
        if let Some(v) = rule.get(*k).filter(|v| !v.is_null()) {
            out.insert((*k).to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// The same rule: the same name, conditions, actions and exceptions (a rule made again has
/// a new id; its sequence and enabled state are the user's to change).
pub(super) fn same_rule(a: &Value, b: &Value) -> bool {
    let norm = |v: Option<&Value>| match v {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v) => v.clone(),
    };
    a.get("displayName") == b.get("displayName")
        && ["conditions", "actions", "exceptions"]
            .iter()
            .all(|k| norm(a.get(*k)) == norm(b.get(*k)))
}

impl Rule {
    pub(super) fn raw(&self) -> &Value {
        &self.raw
    }

    pub(super) fn from(v: &Value) -> Option<Rule> {
        let id = text(v, "id")?.to_string();
        let name = text(v, "displayName").unwrap_or(&id).to_string();
        let actions = v.get("actions");
        let mut forwards_to = Vec::new();
        for key in FORWARDING {
            for r in actions
                .and_then(|a| a.get(*key))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let address = r
                    .pointer("/emailAddress/address")
                    .and_then(Value::as_str)
                    .unwrap_or("(an address)");
                forwards_to.push(address.to_string());
            }
        }
        Some(Rule {
            id,
            name,
            forwards_to,
            raw: v.clone(),
        })
    }

    fn label(&self) -> String {
        if self.forwards_to.is_empty() {
            format!("\"{}\"", self.name)
        } else {
            format!("\"{}\" (→ {})", self.name, self.forwards_to.join(", "))
        }
    }
}

impl EntraProvider {
    /// The Inbox rules (every one, or only those that forward).
    pub(super) async fn rules(
        &self,
        account: &Account,
        forwarding_only: bool,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Rule>, ProviderError> {
        let url = self.url(&["users", &account.id, "mailFolders", "inbox", "messageRules"])?;
        let all = self.get_all(url, ctx, records).await?;
        let mut out = Vec::new();
        for v in &all {
            let rule = Rule::from(v).ok_or_else(|| {
                self.err(format!(
                    "GET /users/{}/mailFolders/inbox/messageRules answered a rule without an id",
                    account.id
                ))
            })?;
            if !forwarding_only || !rule.forwards_to.is_empty() {
                out.push(rule);
            }
        }
        Ok(out)
    }

    pub(super) async fn remove_rules(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        forwarding_only: bool,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let account = match self.resolve(call, &[], ctx, &mut records).await? {
            Resolved::Live(_, a) => a,
            Resolved::Gone(a) => return Ok(already_deleted(a, records)),
        };
        ctx.identified(&account);
        let rules = self
            .rules(&account, forwarding_only, ctx, &mut records)
            .await?;
        ctx.before(&json!({
            "id": account.id,
            "rules": rules
                .iter()
                .map(|r| {
                    let mut body = rule_body(&r.raw);
                    body["formerId"] = json!(r.id);
                    body
                })
                .collect::<Vec<_>>(),
        }));
        let mut removed = Vec::new();
        for r in &rules {
            let url = self.url(&[
                "users",
                &account.id,
                "mailFolders",
                "inbox",
                "messageRules",
                &r.id,
            ])?;
            let resp = self
                .send(
                    Request::delete(url).allow(StatusCode::NOT_FOUND),
                    ctx,
                    &mut records,
                )
                .await
                .map_err(|e| after_partial("deleted", &removed, e))?;
            if resp.status != StatusCode::NOT_FOUND {
                removed.push(r.label());
            }
        }
        let what = if forwarding_only {
            "forwarding Inbox rule"
        } else {
            "Inbox rule"
        };
        let summary = if removed.is_empty() {
            format!("{account} has no {what}")
        } else {
            format!(
                "deleted {} {what}(s) of {account}: {}",
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

    pub(super) async fn check_rules(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        forwarding_only: bool,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let account = match self.resolve(call, &[], ctx, &mut records).await? {
            Resolved::Live(_, a) => a,
            Resolved::Gone(a) => return Ok(gone(a)),
        };
        let left = self
            .rules(&account, forwarding_only, ctx, &mut records)
            .await?;
        let what = if forwarding_only {
            "forwarding Inbox rule"
        } else {
            "Inbox rule"
        };
        Ok(if left.is_empty() {
            seen(true, format!("no {what}"), &account)
        } else {
            let names: Vec<String> = left.iter().map(Rule::label).collect();
            seen(
                false,
                format!("{what}(s) left: {}", names.join(", ")),
                &account,
            )
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Automatic replies

/// `set_auto_reply`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AutoReplyParams {
    /// The reply to senders inside the organisation, e.g. `"{{ user.email }} has left Contoso;
    /// please write to {{ user.manager }}"` (a template, rendered when the departure is planned).
    #[schemars(length(min = 1))]
    internal: String,
    /// The reply to senders outside the organisation (a template); default: the internal text.
    external: Option<String>,
    /// Who outside gets the external reply: `"all"` (default), `"contactsOnly"` or `"none"`.
    external_audience: Option<Audience>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
enum Audience {
    None,
    ContactsOnly,
    All,
}

impl Audience {
    fn graph(self) -> &'static str {
        match self {
            Audience::None => "none",
            Audience::ContactsOnly => "contactsOnly",
            Audience::All => "all",
        }
    }
}

/// What the mailbox should hold.
struct Wanted {
    internal: String,
    external: String,
    audience: Audience,
}

/// Text as Exchange may hand it back: HTML tags dropped, the common entities decoded, white
/// space collapsed (Exchange stores the replies as HTML).
pub(super) fn plain(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The fields of `automaticRepliesSetting` offboard records and puts back (the replies as
/// Exchange hands them back, HTML included: it accepts HTML when they are written).
pub(super) const REPLY_FIELDS: &[&str] = &[
    "status",
    "externalAudience",
    "internalReplyMessage",
    "externalReplyMessage",
    "scheduledStartDateTime",
    "scheduledEndDateTime",
];

/// `setting` cut to [`REPLY_FIELDS`] (what the pre-state records).
pub(super) fn reply_fields(setting: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for k in REPLY_FIELDS {
        if let Some(v) = setting.get(*k) {
            out.insert((*k).to_string(), v.clone());
        }
    }
    Value::Object(out)
}

impl EntraProvider {
    fn wanted(&self, call: &StepCall<'_>) -> Result<Wanted, ProviderError> {
        let p: AutoReplyParams = params::parse(call.action, call.params)?;
        if p.internal.trim().is_empty() {
            return Err(self.err(format!("step `{}`: params.internal is empty", call.step_id)));
        }
        Ok(Wanted {
            external: p.external.clone().unwrap_or_else(|| p.internal.clone()),
            internal: p.internal,
            audience: p.external_audience.unwrap_or(Audience::All),
        })
    }

    /// `GET /users/{id}/mailboxSettings`: `automaticRepliesSetting`.
    pub(super) async fn auto_reply(
        &self,
        account: &Account,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Value, ProviderError> {
        let url = self.url(&["users", &account.id, "mailboxSettings"])?;
        let resp = self.send(Request::get(url), ctx, records).await?;
        let body: Value = resp.json()?;
        body.get("automaticRepliesSetting")
            .filter(|v| v.is_object())
            .cloned()
            .ok_or_else(|| {
                self.err(format!(
                    "GET /users/{}/mailboxSettings has no automaticRepliesSetting; cannot tell \
                     whether the replies are on",
                    account.id
                ))
            })
    }

    /// Whether the setting is what `w` wants, and what it is.
    fn judge(setting: &Value, w: &Wanted) -> (bool, String) {
        let status = text(setting, "status").unwrap_or("not reported");
        let audience = text(setting, "externalAudience").unwrap_or("not reported");
        let internal = plain(text(setting, "internalReplyMessage").unwrap_or(""));
        let external = plain(text(setting, "externalReplyMessage").unwrap_or(""));
        let ok = status == "alwaysEnabled"
            && audience == w.audience.graph()
            && internal == plain(&w.internal)
            && (w.audience == Audience::None || external == plain(&w.external));
        let mut shown = format!("status={status}, externalAudience={audience}");
        if status == "alwaysEnabled" && !ok {
            shown.push_str(", with other text than the step's");
        }
        (ok, shown)
    }

    pub(super) async fn set_auto_reply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let w = self.wanted(call)?;
        let mut records = Vec::new();
        let account = match self.resolve(call, &[], ctx, &mut records).await? {
            Resolved::Live(_, a) => a,
            Resolved::Gone(a) => return Ok(already_deleted(a, records)),
        };
        ctx.identified(&account);
        let now = self.auto_reply(&account, ctx, &mut records).await?;
        ctx.before(&json!({ "id": account.id, "automaticRepliesSetting": reply_fields(&now) }));
        let (ok, before) = Self::judge(&now, &w);
        if ok {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("automatic replies of {account} already on with this text"),
                requests: records,
                account: Some(account),
            });
        }
        let url = self.url(&["users", &account.id, "mailboxSettings"])?;
        let body = json!({
            "automaticRepliesSetting": {
                "status": "alwaysEnabled",
                "externalAudience": w.audience.graph(),
                "internalReplyMessage": w.internal,
                "externalReplyMessage": w.external,
            }
        });
        self.send(
            Request::patch(url).json(&body, "application/json"),
            ctx,
            &mut records,
        )
        .await?;
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "turned on automatic replies of {account} (was {before}; external audience: {})",
                w.audience.graph()
            ),
            requests: records,
            account: Some(account),
        })
    }

    pub(super) async fn check_auto_reply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let w = self.wanted(call)?;
        let mut records = Vec::new();
        let account = match self.resolve(call, &[], ctx, &mut records).await? {
            Resolved::Live(_, a) => a,
            Resolved::Gone(a) => return Ok(gone(a)),
        };
        let now = self.auto_reply(&account, ctx, &mut records).await?;
        let (ok, shown) = Self::judge(&now, &w);
        Ok(seen(ok, shown, &account))
    }
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn replies_compare_as_text() {
        assert_eq!(
            plain("<html>\n<body>\n<div>Alice has left &amp; gone.</div>\n</body>\n</html>\n"),
            "Alice has left & gone."
        );
        assert_eq!(plain("a\n\n b"), "a b");
    }
}
