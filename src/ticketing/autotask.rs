//! Autotask PSA (Datto/Kaseya) REST API, as a service desk: the ticket is its id (`28512`) or
//! its ticket number (`T20261123.0042`, looked up with `GET /v1.0/Tickets/query?search=…`).
//!
//! - read: the ticket (`GET /v1.0/Tickets/{id}`: Autotask answers `{"item": null}` for one
//!   that does not exist, whose lists are empty), `GET /v1.0/Tickets/{id}/Attachments` (every
//!   page, following `pageDetails.nextPageUrl`); the list carries no content and no digest,
//!   so an attachment whose name is wanted is read with
//!   `GET /v1.0/Tickets/{id}/Attachments/{attachmentId}`, its base64 `data` decoded and
//!   hashed; the notes from `GET /v1.0/Tickets/{id}/Notes`;
//! - attach: each file `POST /v1.0/Tickets/{id}/Attachments` as JSON with the bytes in base64
//!   (`attachmentType: FILE_ATTACHMENT`, `publish: 2`, internal users only), then the note
//!   `POST /v1.0/Tickets/{id}/Notes` (Autotask has no single call for both). Autotask takes at
//!   most 6–7 MB per file and 10,000,000 bytes per five minutes: a file over 6,000,000 bytes
//!   (or files over 10,000,000 together) is refused before anything is sent;
//! - close: `PATCH /v1.0/Tickets {"id", "status"}`; a status name is looked up in the ticket
//!   status picklist (`GET /v1.0/Tickets/entityInformation/fields`); the ticket is read back.
//!
//! Auth: three headers on every request, `ApiIntegrationCode`, `UserName` and `Secret` (not
//! HTTP Basic). Errors: `{"errors": ["…"]}`, and Autotask answers a request it refuses —
//! validation failures, an unknown user or integration code — with **500** and that body: such
//! a 500 is permanent and not retried (a 500 without it still is).
//!
//! `base_url` is the zone's REST root, e.g. `https://webservices5.autotask.net/atservicesrest`
//! (the zone: `GET https://webservices.autotask.net/atservicesrest/v1.0/zoneInformation?user=…`;
//! offboard does not look it up).

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{AttachFile, AttachReceipt, RemoteFile, TicketKind, TicketView, Ticketing, json_id};
use crate::providers::kit::http::{ALLOW_PLAIN, HttpClient, Request, with_query};
use crate::providers::kit::paging::{Paging, get_all};
use crate::providers::{CallCtx, ProviderError, SettingSpec, SettingType, SystemConfig};
use crate::runbook::TicketStatus;

pub static KIND: TicketKind = TicketKind {
    name: "autotask",
    summary: "Autotask PSA REST: each file attached to the ticket in base64, then an internal \
              ticket note; `close_status` by status name or picklist value",
    settings: &[
        USERNAME,
        INTEGRATION_CODE,
        SECRET,
        NOTE_TYPE,
        NOTE_PUBLISH,
        ALLOW_PLAIN,
    ],
    check_ticket,
    connect,
};

const USERNAME: SettingSpec = SettingSpec {
    name: "username",
    ty: SettingType::String,
    required: true,
    summary: "the API user's username (Admin → Resources/Users → API user, e.g. \
              `offboard@corpabc.example`), sent as `UserName`",
};

const INTEGRATION_CODE: SettingSpec = SettingSpec {
    name: "integration_code",
    ty: SettingType::Secret,
    required: true,
    summary: "the API user's API tracking identifier (integration code), sent as \
              `ApiIntegrationCode`; by reference",
};

const SECRET: SettingSpec = SettingSpec {
    name: "secret",
    ty: SettingType::Secret,
    required: true,
    summary: "the API user's secret (password), sent as `Secret`; by reference",
};

const NOTE_TYPE: SettingSpec = SettingSpec {
    name: "note_type",
    ty: SettingType::Integer,
    required: false,
    summary: "the ticket note's `noteType` picklist value (default 1; your instance's values \
              are in `GET /v1.0/TicketNotes/entityInformation/fields`)",
};

const NOTE_PUBLISH: SettingSpec = SettingSpec {
    name: "note_publish",
    ty: SettingType::Integer,
    required: false,
    summary: "the ticket note's `publish` picklist value, who may see it (default 2, internal \
              users only)",
};

/// Autotask's per-file limit for attachments sent through the API is "6 to 7 MB".
pub const MAX_FILE_BYTES: usize = 6_000_000;
/// And at most this many bytes of attachments per five minutes, after which it refuses
/// attachments for five minutes.
pub const MAX_WINDOW_BYTES: usize = 10_000_000;

/// Attachments visible to internal users only.
const PUBLISH_INTERNAL: i64 = 2;

fn is_ticket_number(t: &str) -> bool {
    // T + yyyymmdd + . + sequence.
    let b = t.as_bytes();
    b.len() >= 11
        && b.len() <= 20
        && (b[0] == b'T' || b[0] == b't')
        && b[1..9].iter().all(u8::is_ascii_digit)
        && b[9] == b'.'
        && b[10..].iter().all(u8::is_ascii_digit)
}

fn check_ticket(ticket: &str) -> Result<(), String> {
    let id = !ticket.is_empty() && ticket.len() <= 12 && ticket.bytes().all(|b| b.is_ascii_digit());
    if id || is_ticket_number(ticket) {
        Ok(())
    } else {
        Err("an Autotask ticket is its number (T20261123.0042) or its id (digits)".into())
    }
}

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Ticketing>> {
    let username = super::text_setting(cfg, USERNAME.name)?;
    let note_type = super::integer_setting(cfg, NOTE_TYPE.name)?.unwrap_or(1);
    let note_publish = super::integer_setting(cfg, NOTE_PUBLISH.name)?.unwrap_or(PUBLISH_INTERNAL);
    let mut c = cfg.clone();
    c.token = cfg.secrets.get(SECRET.name).cloned();
    // Autotask allows three requests at a time per endpoint per integration.
    c.max_concurrency = c.max_concurrency.min(3);
    let mut http = HttpClient::new(&c)?
        .with_token_header("secret")
        .with_accept("application/json")
        .with_forbidden_hint(
            "the API user's security level does not allow this; it needs to view and edit \
             tickets, add ticket notes and attachments",
        )
        .with_error_parser(errors)
        .with_refusal(|status, body| {
            status == StatusCode::INTERNAL_SERVER_ERROR && errors(body).is_some()
        });
    if let Some(u) = &username {
        http = http.with_header("username", u)?;
    }
    if let Some(code) = cfg.secrets.get(INTEGRATION_CODE.name) {
        http = http.with_secret_header("apiintegrationcode", code)?;
    }
    Ok(Arc::new(Autotask {
        http,
        note_type,
        note_publish,
    }))
}

/// `{"errors": ["…", …]}`.
fn errors(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let msgs: Vec<&str> = v
        .get("errors")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .filter(|m| !m.trim().is_empty())
        .collect();
    (!msgs.is_empty()).then(|| msgs.join("; "))
}

struct Autotask {
    http: HttpClient,
    note_type: i64,
    note_publish: i64,
}

/// The entity of a single-entity answer: `{"item": {…}}`, or `{"items": [{…}]}`.
fn single(v: &Value) -> Option<&Value> {
    v.get("item").filter(|i| i.is_object()).or_else(|| {
        v.get("items")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
    })
}

impl Autotask {
    fn url(&self, segments: &[&str]) -> Result<url::Url, ProviderError> {
        let mut all = vec!["v1.0"];
        all.extend_from_slice(segments);
        self.http.endpoint(&all)
    }

    /// The ticket's id: given, or looked up by ticket number.
    async fn ticket_id(&self, ticket: &str, ctx: &CallCtx) -> Result<String, ProviderError> {
        if !is_ticket_number(ticket) {
            return Ok(ticket.to_string());
        }
        let number = ticket.to_ascii_uppercase();
        let search = json!({"filter": [{"op": "eq", "field": "ticketNumber", "value": number}]});
        let url = with_query(
            self.url(&["Tickets", "query"])?,
            &[("search", &search.to_string())],
        );
        let found: Value = self.http.send(Request::get(url), ctx).await?.json()?;
        found
            .get("items")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|t| t.get("id"))
            .and_then(json_id)
            .ok_or_else(|| ProviderError::NotFound(format!("Autotask has no ticket {number}")))
    }

    /// The ticket, `{"item": null}` being Autotask's answer for one that does not exist.
    async fn ticket(&self, id: &str, ctx: &CallCtx) -> Result<Value, ProviderError> {
        let url = self.url(&["Tickets", id])?;
        let read: Value = self.http.send(Request::get(url), ctx).await?.json()?;
        single(&read).cloned().ok_or_else(|| {
            ProviderError::NotFound(format!(
                "Autotask has no ticket {id} (or the API user may not see it)"
            ))
        })
    }

    /// Every item of a child collection, all pages.
    async fn all(&self, id: &str, child: &str, ctx: &CallCtx) -> Result<Vec<Value>, ProviderError> {
        let url = self.url(&["Tickets", id, child])?;
        let (items, _) = get_all(
            &self.http,
            url,
            Paging::NextUrl {
                pointer: "/pageDetails/nextPageUrl".into(),
            },
            "/items",
            ctx,
        )
        .await?;
        Ok(items)
    }

    /// The ticket status picklist: (value, label).
    async fn statuses(&self, ctx: &CallCtx) -> Result<Vec<(i64, String)>, ProviderError> {
        let url = self.url(&["Tickets", "entityInformation", "fields"])?;
        let info: Value = self.http.send(Request::get(url), ctx).await?.json()?;
        let status = info
            .get("fields")
            .and_then(Value::as_array)
            .and_then(|f| {
                f.iter()
                    .find(|f| f.get("name").and_then(Value::as_str) == Some("status"))
            })
            .ok_or_else(|| {
                ProviderError::Permanent("Autotask's ticket fields have no status picklist".into())
            })?;
        Ok(status
            .get("picklistValues")
            .and_then(Value::as_array)
            .map(|vals| {
                vals.iter()
                    .filter(|v| v.get("isActive").and_then(Value::as_bool) != Some(false))
                    .filter_map(|v| {
                        let value = json_id(v.get("value")?)?.parse().ok()?;
                        let label = v.get("label")?.as_str()?.to_string();
                        Some((value, label))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[async_trait]
impl Ticketing for Autotask {
    async fn look(
        &self,
        ticket: &str,
        wanted: &[&str],
        ctx: &CallCtx,
    ) -> Result<TicketView, ProviderError> {
        let id = self.ticket_id(ticket, ctx).await?;
        // Lists of a ticket that does not exist are empty: ask for the ticket itself.
        self.ticket(&id, ctx).await?;
        let mut files = Vec::new();
        for a in self.all(&id, "Attachments", ctx).await? {
            let Some(aid) = a.get("id").and_then(json_id) else {
                continue;
            };
            let name = a
                .get("fullPath")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .or_else(|| a.get("title").and_then(Value::as_str))
                .unwrap_or("")
                .to_string();
            let sha256 = if wanted.contains(&name.as_str()) {
                let url = self.url(&["Tickets", &id, "Attachments", &aid])?;
                let one: Value = self.http.send(Request::get(url), ctx).await?.json()?;
                let data = single(&one)
                    .and_then(|a| a.get("data"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ProviderError::Permanent(format!(
                            "Autotask answered attachment {aid} of ticket {id} without its data"
                        ))
                    })?;
                let bytes = STANDARD.decode(data.trim()).map_err(|e| {
                    ProviderError::Permanent(format!(
                        "Autotask's attachment {aid} is not valid base64: {e}"
                    ))
                })?;
                Some(crate::journal::sha256_hex(&bytes))
            } else {
                None
            };
            files.push(RemoteFile {
                id: aid,
                name,
                size: a.get("fileSize").and_then(Value::as_f64).unwrap_or(0.0) as u64,
                sha256,
            });
        }
        let notes = self
            .all(&id, "Notes", ctx)
            .await?
            .iter()
            .filter_map(|n| n.get("description").and_then(Value::as_str))
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
        // Refused here, before anything is sent: nothing is left half done.
        if let Some(f) = files.iter().find(|f| f.bytes.len() > MAX_FILE_BYTES) {
            return Err(ProviderError::Permanent(format!(
                "{} is {} bytes; Autotask takes at most {MAX_FILE_BYTES} bytes per attachment \
                 through its API (attach it by hand in Autotask, where the limit is 10 MB)",
                f.name,
                f.bytes.len()
            )));
        }
        let total: usize = files.iter().map(|f| f.bytes.len()).sum();
        if total > MAX_WINDOW_BYTES {
            return Err(ProviderError::Permanent(format!(
                "the files come to {total} bytes; Autotask takes at most {MAX_WINDOW_BYTES} \
                 bytes of attachments per five minutes"
            )));
        }
        let id = self.ticket_id(ticket, ctx).await?;
        let mut receipt = AttachReceipt::default();
        for f in files {
            let url = self.url(&["Tickets", &id, "Attachments"])?;
            let body = json!({
                "attachmentType": "FILE_ATTACHMENT",
                "title": f.name,
                "fullPath": f.name,
                "contentType": f.content_type,
                "publish": PUBLISH_INTERNAL,
                "data": STANDARD.encode(&f.bytes),
            });
            let created: Value = self
                .http
                .send(Request::post(url).json(&body, "application/json"), ctx)
                .await?
                .json()?;
            let aid = created.get("itemId").and_then(json_id).ok_or_else(|| {
                ProviderError::Permanent(format!(
                    "Autotask answered the upload of {} without an itemId",
                    f.name
                ))
            })?;
            receipt.attachments.push((f.name.clone(), aid));
        }
        let url = self.url(&["Tickets", &id, "Notes"])?;
        let body = json!({
            "title": "Offboarding evidence",
            "description": note,
            "noteType": self.note_type,
            "publish": self.note_publish,
        });
        let created: Value = self
            .http
            .send(Request::post(url).json(&body, "application/json"), ctx)
            .await?
            .json()?;
        receipt.note_id = created.get("itemId").and_then(json_id);
        Ok(receipt)
    }

    async fn close(
        &self,
        ticket: &str,
        status: &TicketStatus,
        ctx: &CallCtx,
    ) -> Result<String, ProviderError> {
        let id = self.ticket_id(ticket, ctx).await?;
        let all = self.statuses(ctx).await?;
        let value = match status {
            TicketStatus::Id(n) => *n as i64,
            TicketStatus::Name(name) => match all
                .iter()
                .find(|(_, l)| l.eq_ignore_ascii_case(name.trim()))
            {
                Some((v, _)) => *v,
                None => {
                    return Err(ProviderError::Permanent(format!(
                        "Autotask has no ticket status named {name:?}; it has: {}",
                        all.iter()
                            .map(|(v, l)| format!("{l} ({v})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            },
        };
        let numeric: i64 = id.parse().map_err(|_| {
            ProviderError::Permanent(format!("Autotask ticket id {id:?} is not a number"))
        })?;
        let url = self.url(&["Tickets"])?;
        self.http
            .send(
                Request::patch(url).json(
                    &json!({ "id": numeric, "status": value }),
                    "application/json",
                ),
                ctx,
            )
            .await?;
        let now = self
            .ticket(&id, ctx)
            .await?
            .get("status")
            .and_then(json_id)
            .and_then(|s| s.parse::<i64>().ok());
        let label = |v: i64| {
            all.iter()
                .find(|(n, _)| *n == v)
                .map(|(_, l)| l.clone())
                .unwrap_or_else(|| v.to_string())
        };
        match now {
            Some(n) if n == value => Ok(label(n)),
            Some(n) => Err(ProviderError::Permanent(format!(
                "Autotask left ticket {ticket} in status {:?} instead of {:?}",
                label(n),
                label(value)
            ))),
            None => Err(ProviderError::Permanent(format!(
                "Autotask's ticket {ticket} has no status to read back"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_ids_and_numbers() {
        for ok in ["28512", "T20261123.0042", "t20261123.1"] {
            assert!(check_ticket(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "T2026112.0042",
            "T20261123-0042",
            "TX0261123.0042",
            "12/3",
            "T20261123.",
        ] {
            assert!(check_ticket(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn error_bodies_and_refusals() {
        assert_eq!(
            errors(br#"{"errors":["Value for field title is required."]}"#).as_deref(),
            Some("Value for field title is required.")
        );
        assert_eq!(errors(br#"{"errors":[]}"#), None);
        assert_eq!(errors(b"<html>Server Error</html>"), None);
    }

    #[test]
    fn single_entity_shapes() {
        assert_eq!(single(&json!({"item": {"id": 1}})), Some(&json!({"id": 1})));
        assert_eq!(
            single(&json!({"items": [{"id": 2}]})),
            Some(&json!({"id": 2}))
        );
        assert_eq!(single(&json!({"items": []})), None);
    }
}
