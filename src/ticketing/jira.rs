//! Jira Service Management Cloud, as a service desk: the ticket is the request's issue key
//! (`HR-42`) or its numeric id.
//!
//! - read: `GET /rest/api/3/issue/{key}?fields=attachment,comment`. Jira publishes no digest of
//!   an attachment, so one whose name is wanted is downloaded
//!   (`GET /rest/api/3/attachment/content/{id}?redirect=false`, the bytes themselves rather
//!   than a redirect to the media store) and hashed; comment bodies come as Atlassian Document
//!   Format, whose text is read;
//! - attach: every file in one `POST /rest/api/3/issue/{key}/attachments` (multipart, each a
//!   `file` part, with `X-Atlassian-Token: no-check`, without which Jira refuses the upload as
//!   an XSRF attempt), then the note as an internal comment,
//!   `POST /rest/servicedeskapi/request/{key}/comment {"body", "public": false}` (Jira has no
//!   single call for both: a failed note is added alone by the next attach, the files being
//!   found there);
//! - close: Jira moves an issue only through its workflow's transitions:
//!   `GET /rest/api/3/issue/{key}?fields=status&expand=transitions` lists those open now;
//!   `close_status` names one (by id, name, or the status it leads to), which is
//!   `POST /rest/api/3/issue/{key}/transitions {"transition": {"id"}}`; the status is read back.
//!
//! Auth: HTTP Basic with the account's email and an API token. Errors: the platform's
//! `{"errorMessages": […], "errors": {field: msg}}`, the service desk API's
//! `{"errorMessage": …}`, or a bare `{"message": …}`; 429 with `Retry-After` and
//! `X-RateLimit-Reset` (ISO-8601).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{AttachFile, AttachReceipt, RemoteFile, TicketKind, TicketView, Ticketing, json_id};
use crate::providers::kit::Basic;
use crate::providers::kit::http::{ALLOW_PLAIN, HttpClient, Request, with_query};
use crate::providers::kit::multipart::Form;
use crate::providers::{CallCtx, ProviderError, SettingSpec, SettingType, SystemConfig};
use crate::runbook::TicketStatus;

pub static KIND: TicketKind = TicketKind {
    name: "jira",
    summary: "Jira Service Management Cloud: files attached to the issue, the note as an \
              internal comment; `close_status` names a workflow transition (or the status it \
              leads to)",
    settings: &[EMAIL, API_TOKEN, ALLOW_PLAIN],
    check_ticket,
    connect,
};

const EMAIL: SettingSpec = SettingSpec {
    name: "email",
    ty: SettingType::String,
    required: true,
    summary: "the email address of the Atlassian account offboard acts as (an agent of the \
              service project), the user part of HTTP Basic",
};

const API_TOKEN: SettingSpec = SettingSpec {
    name: "api_token",
    ty: SettingType::Secret,
    required: true,
    summary: "an API token of that account (id.atlassian.com → Security → API tokens; they \
              expire), the password part of HTTP Basic; by reference",
};

/// A key (`HR-42`: a project key, a dash, a number) or a numeric issue id.
fn check_ticket(ticket: &str) -> Result<(), String> {
    let ok = ticket.len() <= 64
        && match ticket.rsplit_once('-') {
            Some((project, n)) => {
                project
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                    && project
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit())
            }
            None => !ticket.is_empty() && ticket.bytes().all(|b| b.is_ascii_digit()),
        };
    if ok {
        Ok(())
    } else {
        Err("a Jira ticket is an issue key such as HR-42 (or its numeric id)".into())
    }
}

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Ticketing>> {
    let email = super::text_setting(cfg, EMAIL.name)?;
    let token = cfg.secrets.get(API_TOKEN.name).cloned();
    let mut c = cfg.clone();
    // Kept as the token so that the client cuts it out of anything Jira says back.
    c.token = token.clone();
    let mut http = HttpClient::new(&c)?
        .with_accept("application/json")
        // Jira refuses multipart uploads without it (its XSRF check); harmless elsewhere.
        .with_header("x-atlassian-token", "no-check")?
        .with_forbidden_hint(
            "the account lacks a permission in the issue's project: Browse projects, Create \
             attachments, Add comments (as an agent of the service project) and Transition \
             issues (for close_status)",
        )
        .with_error_parser(errors);
    if let (Some(email), Some(token)) = (email, token) {
        let basic = Basic::new(&email, &token).map_err(|e| anyhow::anyhow!("[ticketing]: {e}"))?;
        http = http.with_auth(Arc::new(basic));
    }
    Ok(Arc::new(Jira { http }))
}

/// Jira's error bodies, in each of the shapes its APIs use.
fn errors(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let mut out: Vec<String> = Vec::new();
    if let Some(msgs) = v.get("errorMessages").and_then(Value::as_array) {
        out.extend(msgs.iter().filter_map(Value::as_str).map(str::to_string));
    }
    if let Some(fields) = v.get("errors").and_then(Value::as_object) {
        out.extend(
            fields
                .iter()
                .filter_map(|(k, m)| m.as_str().map(|m| format!("{k}: {m}"))),
        );
    }
    for key in ["errorMessage", "message"] {
        if let Some(m) = v.get(key).and_then(Value::as_str) {
            out.push(m.to_string());
        }
    }
    out.retain(|m| !m.trim().is_empty());
    (!out.is_empty()).then(|| out.join("; "))
}

/// The text of an Atlassian Document Format node (a comment body in API v3), blocks on lines
/// of their own; a plain string is itself.
fn adf_text(node: &Value) -> String {
    fn walk(node: &Value, out: &mut String) {
        match node {
            Value::String(s) => out.push_str(s),
            Value::Object(o) => {
                if o.get("type").and_then(Value::as_str) == Some("hardBreak") {
                    out.push('\n');
                }
                if let Some(Value::String(t)) = o.get("text") {
                    out.push_str(t);
                }
                if let Some(Value::Array(children)) = o.get("content") {
                    for c in children {
                        walk(c, out);
                        if c.get("content").is_some() && !out.ends_with('\n') {
                            out.push('\n');
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = String::new();
    walk(node, &mut out);
    out
}

struct Jira {
    http: HttpClient,
}

impl Jira {
    async fn issue(
        &self,
        key: &str,
        query: &[(&str, &str)],
        ctx: &CallCtx,
    ) -> Result<Value, ProviderError> {
        let url = with_query(
            self.http.endpoint(&["rest", "api", "3", "issue", key])?,
            query,
        );
        let resp = self
            .http
            .send(Request::get(url), ctx)
            .await
            .map_err(|e| match e {
                ProviderError::NotFound(m) => ProviderError::NotFound(format!(
                    "{m}: Jira has no issue {key} (or the account may not see it)"
                )),
                e => e,
            })?;
        resp.json()
    }

    /// The issue's status name now.
    async fn status(&self, key: &str, ctx: &CallCtx) -> Result<String, ProviderError> {
        let issue = self.issue(key, &[("fields", "status")], ctx).await?;
        issue
            .pointer("/fields/status/name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                ProviderError::Permanent(format!("Jira's issue {key} has no status to read back"))
            })
    }
}

#[async_trait]
impl Ticketing for Jira {
    async fn look(
        &self,
        ticket: &str,
        wanted: &[&str],
        ctx: &CallCtx,
    ) -> Result<TicketView, ProviderError> {
        let issue = self
            .issue(ticket, &[("fields", "attachment,comment")], ctx)
            .await?;
        let mut files = Vec::new();
        let attachments = issue
            .pointer("/fields/attachment")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for a in attachments {
            let (Some(id), Some(name)) = (
                a.get("id").and_then(json_id),
                a.get("filename").and_then(Value::as_str),
            ) else {
                continue;
            };
            let sha256 = if wanted.contains(&name) {
                let url = with_query(
                    self.http
                        .endpoint(&["rest", "api", "3", "attachment", "content", &id])?,
                    &[("redirect", "false")],
                );
                let body = self
                    .http
                    .send(Request::get(url).accept("*/*"), ctx)
                    .await?
                    .body;
                Some(crate::journal::sha256_hex(&body))
            } else {
                None
            };
            files.push(RemoteFile {
                id,
                name: name.to_string(),
                size: a.get("size").and_then(Value::as_u64).unwrap_or(0),
                sha256,
            });
        }
        let notes = issue
            .pointer("/fields/comment/comments")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("body"))
                    .map(adf_text)
                    .collect()
            })
            .unwrap_or_default();
        Ok(TicketView { files, notes })
    }

    async fn upload_and_note(
        &self,
        ticket: &str,
        files: &[&AttachFile],
        note: &str,
        ctx: &CallCtx,
    ) -> Result<AttachReceipt, ProviderError> {
        let mut receipt = AttachReceipt::default();
        if !files.is_empty() {
            let form = files.iter().fold(Form::new(), |form, f| {
                form.file("file", &f.name, f.content_type, &f.bytes)
            });
            let url = self
                .http
                .endpoint(&["rest", "api", "3", "issue", ticket, "attachments"])?;
            let created: Vec<Value> = self
                .http
                .send(Request::post(url).multipart(form), ctx)
                .await?
                .json()?;
            for (i, f) in files.iter().enumerate() {
                // Jira answers one attachment per part, in order; the name decides if it says
                // otherwise.
                let by_name = created
                    .iter()
                    .find(|a| a.get("filename").and_then(Value::as_str) == Some(f.name.as_str()));
                if let Some(id) = by_name
                    .or_else(|| created.get(i))
                    .and_then(|a| a.get("id"))
                    .and_then(json_id)
                {
                    receipt.attachments.push((f.name.clone(), id));
                }
            }
        }
        let url = self
            .http
            .endpoint(&["rest", "servicedeskapi", "request", ticket, "comment"])?;
        let comment: Value = self
            .http
            .send(
                Request::post(url).json(
                    &json!({ "body": note, "public": false }),
                    "application/json",
                ),
                ctx,
            )
            .await?
            .json()?;
        receipt.note_id = comment.get("id").and_then(json_id);
        Ok(receipt)
    }

    async fn close(
        &self,
        ticket: &str,
        status: &TicketStatus,
        ctx: &CallCtx,
    ) -> Result<String, ProviderError> {
        let issue = self
            .issue(
                ticket,
                &[("fields", "status"), ("expand", "transitions")],
                ctx,
            )
            .await?;
        let now = issue
            .pointer("/fields/status/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let wanted = status.to_string();
        let wanted = wanted.trim();
        if now.eq_ignore_ascii_case(wanted) {
            return Ok(now);
        }
        let transitions = issue
            .get("transitions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let field = |t: &Value, p: &str| {
            t.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let pick = |pred: &dyn Fn(&Value) -> bool| transitions.iter().find(|t| pred(t)).cloned();
        let chosen = pick(&|t| t.get("id").and_then(json_id).as_deref() == Some(wanted))
            .or_else(|| pick(&|t| field(t, "/name").eq_ignore_ascii_case(wanted)))
            .or_else(|| pick(&|t| field(t, "/to/name").eq_ignore_ascii_case(wanted)));
        let Some(chosen) = chosen else {
            let offered: Vec<String> = transitions
                .iter()
                .map(|t| {
                    format!(
                        "{} (id {}, to {})",
                        field(t, "/name"),
                        t.get("id").and_then(json_id).unwrap_or_default(),
                        field(t, "/to/name")
                    )
                })
                .collect();
            return Err(ProviderError::Permanent(format!(
                "Jira's workflow offers no transition {wanted:?} for issue {ticket} in status \
                 {now:?}; it offers: {}",
                if offered.is_empty() {
                    "none".to_string()
                } else {
                    offered.join(", ")
                }
            )));
        };
        let id = chosen.get("id").and_then(json_id).unwrap_or_default();
        let target = field(&chosen, "/to/name");
        let url = self
            .http
            .endpoint(&["rest", "api", "3", "issue", ticket, "transitions"])?;
        self.http
            .send(
                Request::post(url).json(&json!({ "transition": { "id": id } }), "application/json"),
                ctx,
            )
            .await?;
        let after = self.status(ticket, ctx).await?;
        if !target.is_empty() && !after.eq_ignore_ascii_case(&target) {
            return Err(ProviderError::Permanent(format!(
                "Jira left issue {ticket} in status {after:?} after transition {:?} (which \
                 leads to {target:?})",
                field(&chosen, "/name")
            )));
        }
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_ids_are_issue_keys_or_ids() {
        for ok in ["HR-42", "hr-7", "IT_OPS-1234", "10001"] {
            assert!(check_ticket(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-42", "HR-", "HR 42", "HR-4x", "../HR-1", "1HR-2", "HR-42/x",
        ] {
            assert!(check_ticket(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn error_bodies_in_each_shape() {
        assert_eq!(
            errors(br#"{"errorMessages":["Issue does not exist"],"errors":{}}"#).as_deref(),
            Some("Issue does not exist")
        );
        assert_eq!(
            errors(br#"{"errorMessages":[],"errors":{"file":"too big"}}"#).as_deref(),
            Some("file: too big")
        );
        assert_eq!(
            errors(br#"{"errorMessage":"You do not have permission","i18nErrorMessage":{}}"#)
                .as_deref(),
            Some("You do not have permission")
        );
        assert_eq!(errors(b"XSRF check failed"), None);
    }

    #[test]
    fn comment_text_from_adf() {
        let doc = json!({"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "Evidence sha256 "}, {"type": "text", "text": "ab12", "marks": [{"type": "strong"}]}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "line"}, {"type": "hardBreak"}, {"type": "text", "text": "two"}]}
        ]});
        assert_eq!(adf_text(&doc), "Evidence sha256 ab12\nline\ntwo\n");
        assert_eq!(adf_text(&json!("plain")), "plain");
    }
}
