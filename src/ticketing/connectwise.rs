//! ConnectWise Manage (ConnectWise PSA) REST API, as a service desk: the ticket is its number
//! (`4711`).
//!
//! - read: the ticket's notes (`GET /service/tickets/{id}/notes`, which also says whether the
//!   ticket exists) and its documents (`GET /system/documents?recordType=Ticket&recordId={id}`),
//!   every page (`page`, `pageSize=1000`); ConnectWise publishes no digest of a document, so
//!   one whose name is wanted is downloaded (`GET /system/documents/{id}/download`) and hashed;
//! - attach: each file `POST /system/documents` as `multipart/form-data` with the ticket as
//!   its record (`recordType=Ticket`, `recordId`, `title`, `privateFlag=true`, `file`), then the
//!   note as an internal analysis note, `POST /service/tickets/{id}/notes
//!   {"text", "internalAnalysisFlag": true}` (ConnectWise has no single call for both);
//! - close: `PATCH /service/tickets/{id}` with a JSON Patch array replacing `status` (by name,
//!   as the ticket's board calls it, or by id); the ticket it answers is checked.
//!
//! Auth: HTTP Basic `{company_id}+{public_key}:{private_key}` and the integration's `clientId`
//! header on every request (ConnectWise refuses requests without one). Errors:
//! `{"code", "message", "errors": [{"code", "message", "resource", "field"}]}`.

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
    name: "connectwise",
    summary: "ConnectWise Manage (PSA): each file a private document on the ticket, then an \
              internal analysis note; `close_status` by the board's status name or id",
    settings: &[COMPANY_ID, PUBLIC_KEY, PRIVATE_KEY, CLIENT_ID, ALLOW_PLAIN],
    check_ticket,
    connect,
};

const COMPANY_ID: SettingSpec = SettingSpec {
    name: "company_id",
    ty: SettingType::String,
    required: true,
    summary: "the company id you sign in to ConnectWise with",
};

const PUBLIC_KEY: SettingSpec = SettingSpec {
    name: "public_key",
    ty: SettingType::String,
    required: true,
    summary: "the public half of the API member's key (System → Members → API Members → API \
              Keys)",
};

const PRIVATE_KEY: SettingSpec = SettingSpec {
    name: "private_key",
    ty: SettingType::Secret,
    required: true,
    summary: "the private half of that key, the password of HTTP Basic; by reference",
};

const CLIENT_ID: SettingSpec = SettingSpec {
    name: "client_id",
    ty: SettingType::String,
    required: true,
    summary: "the integration's clientId (a GUID from developer.connectwise.com → Client IDs), \
              sent as the `clientId` header on every request",
};

/// Items per page (ConnectWise's maximum).
const PAGE_SIZE: usize = 1000;

fn check_ticket(ticket: &str) -> Result<(), String> {
    if !ticket.is_empty() && ticket.len() <= 12 && ticket.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("a ConnectWise ticket is its number, digits only, e.g. 4711".into())
    }
}

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Ticketing>> {
    let company = super::text_setting(cfg, COMPANY_ID.name)?;
    let public = super::text_setting(cfg, PUBLIC_KEY.name)?;
    let client_id = super::text_setting(cfg, CLIENT_ID.name)?;
    let private = cfg.secrets.get(PRIVATE_KEY.name).cloned();
    let mut c = cfg.clone();
    c.token = private.clone();
    let mut http = HttpClient::new(&c)?
        .with_accept("application/json")
        .with_forbidden_hint(
            "the API member's security role does not allow this; it needs Service Desk → \
             Service Tickets (inquire, edit) and Companies/System → documents (add, inquire)",
        )
        .with_error_parser(errors);
    if let Some(id) = &client_id {
        http = http.with_header("clientid", id)?;
    }
    if let (Some(company), Some(public), Some(private)) = (company, public, private) {
        let basic = Basic::new(&format!("{company}+{public}"), &private)
            .map_err(|e| anyhow::anyhow!("[ticketing]: {e}"))?;
        http = http.with_auth(Arc::new(basic));
    }
    Ok(Arc::new(ConnectWise { http }))
}

/// `{"code", "message", "errors": [{"message", "field"}, …]}`.
fn errors(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let mut out = v
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string();
    let details: Vec<String> = v
        .get("errors")
        .and_then(Value::as_array)
        .map(|errs| {
            errs.iter()
                .filter_map(|e| {
                    let m = e.get("message").and_then(Value::as_str)?;
                    Some(match e.get("field").and_then(Value::as_str) {
                        Some(f) if !f.is_empty() => format!("{f}: {m}"),
                        _ => m.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if !details.is_empty() {
        if out.is_empty() {
            out = details.join("; ");
        } else {
            out = format!("{out} ({})", details.join("; "));
        }
    }
    (!out.is_empty()).then_some(out)
}

struct ConnectWise {
    http: HttpClient,
}

impl ConnectWise {
    /// Every item of a list, page by page until a short page.
    async fn all(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        ctx: &CallCtx,
    ) -> Result<Vec<Value>, ProviderError> {
        let mut out = Vec::new();
        let size = PAGE_SIZE.to_string();
        for page in 1..=crate::providers::kit::paging::MAX_PAGES {
            let p = page.to_string();
            let mut q = query.to_vec();
            q.push(("page", &p));
            q.push(("pageSize", &size));
            let url = with_query(self.http.endpoint(segments)?, &q);
            let items: Vec<Value> = self.http.send(Request::get(url), ctx).await?.json()?;
            let n = items.len();
            out.extend(items);
            if n < PAGE_SIZE {
                return Ok(out);
            }
        }
        Err(ProviderError::Transient(format!(
            "/{}: more than {} pages; stopped reading",
            segments.join("/"),
            crate::providers::kit::paging::MAX_PAGES
        )))
    }
}

#[async_trait]
impl Ticketing for ConnectWise {
    async fn look(
        &self,
        ticket: &str,
        wanted: &[&str],
        ctx: &CallCtx,
    ) -> Result<TicketView, ProviderError> {
        let notes = self
            .all(&["service", "tickets", ticket, "notes"], &[], ctx)
            .await
            .map_err(|e| match e {
                ProviderError::NotFound(m) => ProviderError::NotFound(format!(
                    "{m}: ConnectWise has no ticket {ticket} (or the API member may not see it)"
                )),
                e => e,
            })?
            .iter()
            .filter_map(|n| n.get("text").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        let docs = self
            .all(
                &["system", "documents"],
                &[("recordType", "Ticket"), ("recordId", ticket)],
                ctx,
            )
            .await?;
        let mut files = Vec::new();
        for d in docs {
            let Some(id) = d.get("id").and_then(json_id) else {
                continue;
            };
            let name = d
                .get("fileName")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .or_else(|| d.get("title").and_then(Value::as_str))
                .unwrap_or("")
                .to_string();
            let sha256 = if wanted.contains(&name.as_str()) {
                let url = self
                    .http
                    .endpoint(&["system", "documents", &id, "download"])?;
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
                name,
                size: d.get("size").and_then(Value::as_u64).unwrap_or(0),
                sha256,
            });
        }
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
        for f in files {
            let form = Form::new()
                .text("recordType", "Ticket")
                .text("recordId", ticket)
                .text("title", &f.name)
                .text("privateFlag", "true")
                .file("file", &f.name, f.content_type, &f.bytes);
            let url = self.http.endpoint(&["system", "documents"])?;
            let created: Value = self
                .http
                .send(Request::post(url).multipart(form), ctx)
                .await?
                .json()?;
            let id = created.get("id").and_then(json_id).ok_or_else(|| {
                ProviderError::Permanent(format!(
                    "ConnectWise answered the upload of {} without a document id",
                    f.name
                ))
            })?;
            receipt.attachments.push((f.name.clone(), id));
        }
        let url = self
            .http
            .endpoint(&["service", "tickets", ticket, "notes"])?;
        let created: Value = self
            .http
            .send(
                Request::post(url).json(
                    &json!({ "text": note, "internalAnalysisFlag": true }),
                    "application/json",
                ),
                ctx,
            )
            .await?
            .json()?;
        receipt.note_id = created.get("id").and_then(json_id);
        Ok(receipt)
    }

    async fn close(
        &self,
        ticket: &str,
        status: &TicketStatus,
        ctx: &CallCtx,
    ) -> Result<String, ProviderError> {
        let value = match status {
            TicketStatus::Id(n) => json!({ "id": n }),
            TicketStatus::Name(name) => json!({ "name": name.trim() }),
        };
        let url = self.http.endpoint(&["service", "tickets", ticket])?;
        let patch = json!([{ "op": "replace", "path": "status", "value": value }]);
        let after: Value = self
            .http
            .send(Request::patch(url).json(&patch, "application/json"), ctx)
            .await?
            .json()?;
        let name = after
            .pointer("/status/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let took = match status {
            TicketStatus::Id(n) => after.pointer("/status/id").and_then(Value::as_u64) == Some(*n),
            TicketStatus::Name(want) => name.eq_ignore_ascii_case(want.trim()),
        };
        if took {
            Ok(name)
        } else {
            Err(ProviderError::Permanent(format!(
                "ConnectWise left ticket {ticket} in status {name:?} instead of {status}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_ids_are_numbers() {
        assert!(check_ticket("4711").is_ok());
        for bad in ["", "#4711", "47 11", "../1", "1234567890123"] {
            assert!(check_ticket(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn error_bodies_are_read() {
        assert_eq!(
            errors(br#"{"code":"InvalidObject","message":"ticket object is invalid","errors":[{"code":"InvalidStatus","message":"The status is not valid for this board.","resource":"ticket","field":"status"}]}"#).as_deref(),
            Some("ticket object is invalid (status: The status is not valid for this board.)")
        );
        assert_eq!(
            errors(br#"{"code":"NotFound","message":"Ticket ID 4711 not found."}"#).as_deref(),
            Some("Ticket ID 4711 not found.")
        );
        assert_eq!(errors(b"<html>"), None);
    }
}
