//! Freshservice (API v2), as a service desk: the ticket is its number (`42`, also written
//! `INC-42` or `SR-42` as Freshservice shows incidents and service requests).
//!
//! - read: `GET /api/v2/tickets/{id}` (its `attachments`: id, name, size) and its notes from
//!   `GET /api/v2/tickets/{id}/conversations` (every page, `Link: rel="next"`). Freshservice
//!   serves an attachment's bytes only from a signed URL on another host, which offboard does
//!   not send the API key to: an attachment is recognised by its name and size;
//! - attach: every file in one `PUT /api/v2/tickets/{id}` as `multipart/form-data`, each an
//!   `attachments[]` part, then the note `POST /api/v2/tickets/{id}/notes
//!   {"body", "private": true}` (HTML; Freshservice has no single call for both);
//! - close: `PUT /api/v2/tickets/{id} {"status": N}` (2 Open, 3 Pending, 4 Resolved, 5 Closed,
//!   or a custom status's number); the ticket it answers is checked.
//!
//! Auth: HTTP Basic with the API key as the user and `X` as the password. Errors:
//! `{"description", "errors": [{"field", "message", "code"}]}` or `{"code", "message"}`; 429
//! with `Retry-After` (the limit is per account and minute, failed calls count too).

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::{AttachFile, AttachReceipt, RemoteFile, TicketKind, TicketView, Ticketing, json_id};
use crate::providers::kit::Basic;
use crate::providers::kit::http::{ALLOW_PLAIN, HttpClient, Request, with_query};
use crate::providers::kit::multipart::Form;
use crate::providers::kit::paging::{Paging, get_all};
use crate::providers::{CallCtx, ProviderError, SettingSpec, SettingType, SystemConfig};
use crate::runbook::TicketStatus;

pub static KIND: TicketKind = TicketKind {
    name: "freshservice",
    summary: "Freshservice API v2: the files attached in one ticket update, then a private \
              note; `close_status` Closed, Resolved or a status number",
    settings: &[API_KEY, ALLOW_PLAIN],
    check_ticket,
    connect,
};

const API_KEY: SettingSpec = SettingSpec {
    name: "api_key",
    ty: SettingType::Secret,
    required: true,
    summary: "the API key of the agent offboard acts as (Profile settings → Your API Key), \
              the user of HTTP Basic with `X` as the password; by reference",
};

/// Freshservice's built-in ticket statuses.
const STATUSES: &[(u64, &str)] = &[(2, "Open"), (3, "Pending"), (4, "Resolved"), (5, "Closed")];

/// The ticket's number: `42`, `INC-42` or `SR-42`.
fn number(ticket: &str) -> Option<&str> {
    let upper = ticket.to_ascii_uppercase();
    let n = if upper.starts_with("INC-") {
        &ticket[4..]
    } else if upper.starts_with("SR-") {
        &ticket[3..]
    } else {
        ticket
    };
    (!n.is_empty() && n.len() <= 12 && n.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

fn check_ticket(ticket: &str) -> Result<(), String> {
    match number(ticket) {
        Some(_) => Ok(()),
        None => Err("a Freshservice ticket is its number: 42, INC-42 or SR-42".into()),
    }
}

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Ticketing>> {
    let key = cfg.secrets.get(API_KEY.name).cloned();
    let mut c = cfg.clone();
    c.token = key.clone();
    let mut http = HttpClient::new(&c)?
        .with_accept("application/json")
        .with_forbidden_hint(
            "the agent whose API key this is may not do this; its role needs to view and edit \
             tickets and add private notes in the ticket's workspace",
        )
        .with_error_parser(errors);
    if let Some(key) = key {
        let basic = Basic::new(
            secrecy::ExposeSecret::expose_secret(&key),
            &SecretString::from("X"),
        )
        .map_err(|e| anyhow::anyhow!("[ticketing]: {e}"))?;
        http = http.with_auth(Arc::new(basic));
    }
    Ok(Arc::new(Freshservice { http }))
}

/// `{"description", "errors": [{"field", "message"}]}` or `{"code", "message"}`.
fn errors(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let head = v
        .get("description")
        .or_else(|| v.get("message"))
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
    let out = match (head.is_empty(), details.is_empty()) {
        (_, true) => head,
        (true, false) => details.join("; "),
        (false, false) => format!("{head} ({})", details.join("; ")),
    };
    (!out.is_empty()).then_some(out)
}

/// The note as Freshservice's HTML body: escaped, lines kept.
fn html(note: &str) -> String {
    note.lines()
        .map(|l| {
            l.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

struct Freshservice {
    http: HttpClient,
}

impl Freshservice {
    fn ticket_url(&self, id: &str, more: &[&str]) -> Result<url::Url, ProviderError> {
        let mut segs = vec!["api", "v2", "tickets", id];
        segs.extend_from_slice(more);
        self.http.endpoint(&segs)
    }

    fn not_found(id: &str) -> impl Fn(ProviderError) -> ProviderError + '_ {
        move |e| match e {
            ProviderError::NotFound(m) => ProviderError::NotFound(format!(
                "{m}: Freshservice has no ticket {id} (or the agent may not see it)"
            )),
            e => e,
        }
    }
}

fn id_of(ticket: &str) -> Result<&str, ProviderError> {
    number(ticket).ok_or_else(|| {
        ProviderError::Permanent(format!("{ticket:?} is not a Freshservice ticket number"))
    })
}

fn status_name(n: u64) -> String {
    STATUSES
        .iter()
        .find(|(v, _)| *v == n)
        .map(|(_, name)| name.to_string())
        .unwrap_or_else(|| format!("status {n}"))
}

#[async_trait]
impl Ticketing for Freshservice {
    async fn look(
        &self,
        ticket: &str,
        _wanted: &[&str],
        ctx: &CallCtx,
    ) -> Result<TicketView, ProviderError> {
        let id = id_of(ticket)?;
        let url = self.ticket_url(id, &[])?;
        let t: Value = self
            .http
            .send(Request::get(url), ctx)
            .await
            .map_err(Self::not_found(id))?
            .json()?;
        let files = t
            .pointer("/ticket/attachments")
            .and_then(Value::as_array)
            .map(|all| {
                all.iter()
                    .filter_map(|a| {
                        Some(RemoteFile {
                            id: a.get("id").and_then(json_id)?,
                            name: a.get("name").and_then(Value::as_str)?.to_string(),
                            size: a.get("size").and_then(Value::as_u64).unwrap_or(0),
                            sha256: None,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let url = with_query(
            self.ticket_url(id, &["conversations"])?,
            &[("per_page", "100")],
        );
        let (conversations, _) =
            get_all(&self.http, url, Paging::LinkHeader, "/conversations", ctx).await?;
        let notes = conversations
            .iter()
            .filter_map(|c| {
                c.get("body_text")
                    .or_else(|| c.get("body"))
                    .and_then(Value::as_str)
            })
            .map(str::to_string)
            .collect();
        Ok(TicketView { files, notes })
    }

    async fn upload_and_note(
        &self,
        ticket: &str,
        files: &[&AttachFile],
        note: &str,
        ctx: &CallCtx,
    ) -> Result<AttachReceipt, ProviderError> {
        let id = id_of(ticket)?;
        let mut receipt = AttachReceipt::default();
        if !files.is_empty() {
            let form = files.iter().fold(Form::new(), |form, f| {
                form.file("attachments[]", &f.name, f.content_type, &f.bytes)
            });
            let url = self.ticket_url(id, &[])?;
            let t: Value = self
                .http
                // Each PUT adds the files again: never resent once it may have arrived.
                .send(Request::put(url).multipart(form).adds(), ctx)
                .await
                .map_err(Self::not_found(id))?
                .json()?;
            let all = t
                .pointer("/ticket/attachments")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for f in files {
                // The newest attachment of that name (of that size, if any is): the one just
                // added.
                let named: Vec<&Value> = all
                    .iter()
                    .filter(|a| a.get("name").and_then(Value::as_str) == Some(f.name.as_str()))
                    .collect();
                let sized: Vec<&Value> = named
                    .iter()
                    .copied()
                    .filter(|a| a.get("size").and_then(Value::as_u64) == Some(f.bytes.len() as u64))
                    .collect();
                let id = (if sized.is_empty() { &named } else { &sized })
                    .iter()
                    .filter_map(|a| a.get("id").and_then(Value::as_u64))
                    .max();
                if let Some(id) = id {
                    receipt.attachments.push((f.name.clone(), id.to_string()));
                }
            }
        }
        let url = self.ticket_url(id, &["notes"])?;
        let created: Value = self
            .http
            .send(
                Request::post(url).json(
                    &json!({ "body": html(note), "private": true }),
                    "application/json",
                ),
                ctx,
            )
            .await
            .map_err(Self::not_found(id))?
            .json()?;
        receipt.note_id = created.pointer("/conversation/id").and_then(json_id);
        Ok(receipt)
    }

    async fn close(
        &self,
        ticket: &str,
        status: &TicketStatus,
        ctx: &CallCtx,
    ) -> Result<String, ProviderError> {
        let id = id_of(ticket)?;
        let value = match status {
            TicketStatus::Id(n) => *n,
            TicketStatus::Name(name) => match STATUSES
                .iter()
                .find(|(_, s)| s.eq_ignore_ascii_case(name.trim()))
            {
                Some((n, _)) => *n,
                None => {
                    return Err(ProviderError::Permanent(format!(
                        "Freshservice has no built-in status named {name:?} (it has Open, \
                         Pending, Resolved and Closed); give a custom status by its number, \
                         e.g. close_status = 6"
                    )));
                }
            },
        };
        let url = self.ticket_url(id, &[])?;
        let t: Value = self
            .http
            .send(
                Request::put(url).json(&json!({ "status": value }), "application/json"),
                ctx,
            )
            .await
            .map_err(Self::not_found(id))?
            .json()?;
        match t.pointer("/ticket/status").and_then(Value::as_u64) {
            Some(n) if n == value => Ok(status_name(n)),
            Some(n) => Err(ProviderError::Permanent(format!(
                "Freshservice left ticket {id} in {} instead of {}",
                status_name(n),
                status_name(value)
            ))),
            None => Err(ProviderError::Permanent(format!(
                "Freshservice answered the update of ticket {id} without its status"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_numbers() {
        assert_eq!(number("42"), Some("42"));
        assert_eq!(number("INC-42"), Some("42"));
        assert_eq!(number("sr-7"), Some("7"));
        for bad in ["", "INC-", "CHN-4", "#42", "4 2", "../4"] {
            assert!(check_ticket(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn error_bodies_and_html() {
        assert_eq!(
            errors(br#"{"description":"Validation failed","errors":[{"field":"status","message":"It should be one of these values: '2,3,4,5'","code":"invalid_value"}]}"#).as_deref(),
            Some("Validation failed (status: It should be one of these values: '2,3,4,5')")
        );
        assert_eq!(
            errors(br#"{"code":"access_denied","message":"You are not authorized to perform this action."}"#).as_deref(),
            Some("You are not authorized to perform this action.")
        );
        assert_eq!(html("a < b & c\nnext"), "a &lt; b &amp; c<br>next");
    }
}
