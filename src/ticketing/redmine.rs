//! Redmine (REST API, JSON), as a service desk: the ticket is an issue number.
//!
//! - read: `GET /issues/{id}.json?include=attachments,journals`; Redmine does not publish an
//!   attachment's digest, so an attachment whose name is wanted is read back
//!   (`GET /attachments/download/{id}`) and hashed;
//! - attach: each file `POST /uploads.json?filename=…` (raw bytes, `application/octet-stream`)
//!   → `{"upload": {"id", "token"}}`, then one `PUT /issues/{id}.json` with the note as
//!   `private_notes` and every upload token, so the files and the note land together or not at
//!   all (an unknown token fails the whole update with 422);
//! - close: `PUT /issues/{id}.json {"issue": {"status_id": N}}` (a name is looked up in
//!   `GET /issue_statuses.json`), then the issue is read back: Redmine answers 204 even when
//!   its workflow leaves the status as it was.
//!
//! Auth: the API key in `X-Redmine-API-Key`. Errors: `{"errors": ["…"]}`.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{AttachFile, AttachReceipt, RemoteFile, TicketKind, TicketView, Ticketing};
use crate::providers::kit::http::{ALLOW_PLAIN, HttpClient, Request, with_query};
use crate::providers::{CallCtx, ProviderError, SettingSpec, SettingType, SystemConfig};
use crate::runbook::TicketStatus;

pub static KIND: TicketKind = TicketKind {
    name: "redmine",
    summary: "Redmine's REST API: each file uploaded, then attached with a private note in one \
              issue update; `close_status` by name or id",
    settings: &[API_KEY, ALLOW_PLAIN],
    check_ticket,
    connect,
};

const API_KEY: SettingSpec = SettingSpec {
    name: "api_key",
    ty: SettingType::Secret,
    required: true,
    summary: "the API key of the Redmine user offboard acts as (My account → API access key; \
              the REST API must be enabled under Administration → Settings → API), sent as \
              `X-Redmine-API-Key`; by reference",
};

fn check_ticket(ticket: &str) -> Result<(), String> {
    if !ticket.is_empty() && ticket.len() <= 12 && ticket.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("a Redmine issue is its number, digits only, e.g. 4711".into())
    }
}

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Ticketing>> {
    let mut cfg = cfg.clone();
    cfg.token = cfg.secrets.get(API_KEY.name).cloned();
    let http = HttpClient::new(&cfg)?
        .with_token_header("x-redmine-api-key")
        .with_accept("application/json")
        .with_forbidden_hint(
            "the API key's user may not do this; give the user a role with \"view issues\", \
             \"add notes\", \"view private notes\", \"set notes as private\" and \"edit issues\" \
             in the ticket's project",
        )
        .with_error_parser(errors);
    Ok(Arc::new(Redmine { http }))
}

/// `{"errors": ["…", …]}`.
fn errors(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<String>,
    }
    let e: Errors = serde_json::from_slice(body).ok()?;
    (!e.errors.is_empty()).then(|| e.errors.join("; "))
}

struct Redmine {
    http: HttpClient,
}

#[derive(Deserialize)]
struct IssueEnvelope {
    issue: Issue,
}

#[derive(Deserialize)]
struct Issue {
    #[serde(default)]
    status: Option<Named>,
    #[serde(default)]
    attachments: Vec<Attachment>,
    #[serde(default)]
    journals: Vec<Journal>,
}

#[derive(Deserialize)]
struct Named {
    id: u64,
    name: String,
}

#[derive(Deserialize)]
struct Attachment {
    id: u64,
    filename: String,
    #[serde(default)]
    filesize: u64,
}

#[derive(Deserialize)]
struct Journal {
    #[serde(default)]
    notes: Option<String>,
}

#[derive(Deserialize)]
struct UploadEnvelope {
    upload: Upload,
}

#[derive(Deserialize)]
struct Upload {
    id: u64,
    token: String,
}

impl Redmine {
    async fn issue(
        &self,
        ticket: &str,
        include: &str,
        ctx: &CallCtx,
    ) -> Result<Issue, ProviderError> {
        let include: &[(&str, &str)] = if include.is_empty() {
            &[]
        } else {
            &[("include", include)]
        };
        let url = with_query(
            self.http.endpoint(&["issues", &format!("{ticket}.json")])?,
            include,
        );
        let resp = self
            .http
            .send(Request::get(url), ctx)
            .await
            .map_err(|e| match e {
                ProviderError::NotFound(m) => ProviderError::NotFound(format!(
                    "{m}: Redmine has no issue {ticket} (or the API key's user may not see it)"
                )),
                e => e,
            })?;
        Ok(resp.json::<IssueEnvelope>()?.issue)
    }

    async fn update(
        &self,
        ticket: &str,
        issue: serde_json::Value,
        ctx: &CallCtx,
    ) -> Result<(), ProviderError> {
        let url = self.http.endpoint(&["issues", &format!("{ticket}.json")])?;
        self.http
            .send(
                Request::put(url).json(&json!({ "issue": issue }), "application/json"),
                ctx,
            )
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Ticketing for Redmine {
    async fn look(
        &self,
        ticket: &str,
        wanted: &[&str],
        ctx: &CallCtx,
    ) -> Result<TicketView, ProviderError> {
        let issue = self.issue(ticket, "attachments,journals", ctx).await?;
        let mut files = Vec::new();
        for a in issue.attachments {
            let id = a.id.to_string();
            let sha256 = if wanted.contains(&a.filename.as_str()) {
                let url = self.http.endpoint(&["attachments", "download", &id])?;
                let body = self.http.send(Request::get(url), ctx).await?.body;
                Some(crate::journal::sha256_hex(&body))
            } else {
                None
            };
            files.push(RemoteFile {
                id,
                name: a.filename,
                size: a.filesize,
                sha256,
            });
        }
        let notes = issue.journals.into_iter().filter_map(|j| j.notes).collect();
        Ok(TicketView { files, notes })
    }

    async fn upload_and_note(
        &self,
        ticket: &str,
        files: &[&AttachFile],
        note: &str,
        ctx: &CallCtx,
    ) -> Result<AttachReceipt, ProviderError> {
        let mut uploads = Vec::new();
        let mut receipt = AttachReceipt::default();
        for f in files {
            let url = with_query(
                self.http.endpoint(&["uploads.json"])?,
                &[("filename", &f.name)],
            );
            let resp = self
                .http
                .send(
                    Request::post(url).bytes(f.bytes.clone(), "application/octet-stream"),
                    ctx,
                )
                .await?;
            let up = resp.json::<UploadEnvelope>()?.upload;
            uploads.push(json!({
                "token": up.token,
                "filename": f.name,
                "content_type": f.content_type,
            }));
            receipt
                .attachments
                .push((f.name.clone(), up.id.to_string()));
        }
        let mut issue = json!({ "notes": note, "private_notes": true });
        if !uploads.is_empty() {
            issue["uploads"] = serde_json::Value::Array(uploads);
        }
        self.update(ticket, issue, ctx).await?;
        Ok(receipt)
    }

    async fn close(
        &self,
        ticket: &str,
        status: &TicketStatus,
        ctx: &CallCtx,
    ) -> Result<String, ProviderError> {
        let id = match status {
            TicketStatus::Id(n) => *n,
            TicketStatus::Name(name) => {
                #[derive(Deserialize)]
                struct Statuses {
                    issue_statuses: Vec<Named>,
                }
                let url = self.http.endpoint(&["issue_statuses.json"])?;
                let all = self
                    .http
                    .send(Request::get(url), ctx)
                    .await?
                    .json::<Statuses>()?
                    .issue_statuses;
                match all
                    .iter()
                    .find(|s| s.name.eq_ignore_ascii_case(name.trim()))
                {
                    Some(s) => s.id,
                    None => {
                        return Err(ProviderError::Permanent(format!(
                            "Redmine has no issue status named {name:?}; it has: {}",
                            all.iter()
                                .map(|s| s.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
            }
        };
        self.update(ticket, json!({ "status_id": id }), ctx).await?;
        let now = self.issue(ticket, "", ctx).await?.status;
        match now {
            Some(s) if s.id == id => Ok(s.name),
            Some(s) => Err(ProviderError::Permanent(format!(
                "Redmine left issue {ticket} in status {:?} instead of status {id} (the \
                 tracker's workflow does not allow it for the API key's user, or no such status)",
                s.name
            ))),
            None => Err(ProviderError::Permanent(format!(
                "Redmine's issue {ticket} has no status to read back"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_ids_are_issue_numbers() {
        assert!(check_ticket("4711").is_ok());
        for bad in ["", "#4711", "47 11", "../1", "1234567890123", "٤"] {
            assert!(check_ticket(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn error_bodies_are_read() {
        assert_eq!(
            errors(br#"{"errors":["1 file(s) could not be saved."]}"#).as_deref(),
            Some("1 file(s) could not be saved.")
        );
        assert_eq!(errors(br#"{"errors":[]}"#), None);
        assert_eq!(errors(b"<html>"), None);
    }
}
