//! HaloPSA (REST API under `/api`), as a service desk: the ticket is its numeric id.
//!
//! - auth: OAuth 2.0 client credentials from Halo's authorisation server (`{base_url}/auth/token`,
//!   `?tenant=` for Halo-hosted instances, or `auth_url` when it lives elsewhere), scope `all`,
//!   through the kit's [`ClientCredentials`](crate::providers::kit::ClientCredentials): cached,
//!   renewed after a 401;
//! - read: `GET /api/Tickets/{id}` (the ticket exists), `GET /api/Attachment?ticket_id=` →
//!   `{"attachments": [{id, filename, filesize}]}`, each wanted one read back with
//!   `GET /api/Attachment/{id}` and hashed, and `GET /api/Actions?ticket_id=` →
//!   `{"actions": [{note}]}`;
//! - attach: every write is a POST of a JSON array to the collection: each file
//!   `POST /api/Attachment [{ticket_id, filename, data_base64}]`, then the note
//!   `POST /api/Actions [{ticket_id, outcome: "Note", note, hiddenfromuser: true}]`. Halo has no
//!   one call for both: when the note fails after the files, the next attach finds the files
//!   and adds only the note;
//! - close: `POST /api/Tickets [{id, status_id}]` (an update, the id being given), then the
//!   ticket is read back. Halo's statuses are ids (9 is the default Closed).

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AttachFile, AttachReceipt, RemoteFile, TicketKind, TicketView, Ticketing};
use crate::providers::kit::auth::{AuthSpec, OAuth2Auth};
use crate::providers::kit::http::{ALLOW_PLAIN, HttpClient, Request, with_query};
use crate::providers::{CallCtx, ProviderError, SettingSpec, SettingType, SystemConfig};
use crate::runbook::TicketStatus;

pub static KIND: TicketKind = TicketKind {
    name: "halo",
    summary: "HaloPSA's REST API with OAuth client credentials: each file as base64 to \
              /api/Attachment, then a private note to /api/Actions; `close_status` by status id",
    settings: &[CLIENT_ID, CLIENT_SECRET, TENANT, AUTH_URL, ALLOW_PLAIN],
    check_ticket,
    connect,
};

const CLIENT_ID: SettingSpec = SettingSpec {
    name: "client_id",
    ty: SettingType::String,
    required: true,
    summary: "the API application's client id (Configuration → Integrations → HaloPSA API → \
              Applications; authentication method Client ID and Secret, login type Agent, \
              permissions to read and edit tickets)",
};

const CLIENT_SECRET: SettingSpec = SettingSpec {
    name: "client_secret",
    ty: SettingType::Secret,
    required: true,
    summary: "the application's client secret, by reference",
};

const TENANT: SettingSpec = SettingSpec {
    name: "tenant",
    ty: SettingType::String,
    required: false,
    summary: "the tenant name of a Halo-hosted instance, sent as `?tenant=` to the token \
              endpoint (default: none, for your own instance)",
};

const AUTH_URL: SettingSpec = SettingSpec {
    name: "auth_url",
    ty: SettingType::String,
    required: false,
    summary: "the authorisation server when it is not `{base_url}/auth` (`GET {base_url}/api/authinfo` \
              shows it); offboard asks `{auth_url}/token` for tokens",
};

fn check_ticket(ticket: &str) -> Result<(), String> {
    if !ticket.is_empty() && ticket.len() <= 12 && ticket.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("a HaloPSA ticket is its number, digits only, e.g. 4711".into())
    }
}

fn setting<'a>(cfg: &'a SystemConfig, name: &str) -> Option<&'a str> {
    cfg.settings.get(name).and_then(|v| v.as_str())
}

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Ticketing>> {
    let base = cfg
        .base_url
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("system `{}`: base_url is required", cfg.name))?
        .trim_end_matches('/')
        .to_string();
    let auth_url = setting(cfg, AUTH_URL.name)
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("{base}/auth"));
    let mut token_url = url::Url::parse(&format!("{auth_url}/token")).map_err(|e| {
        anyhow::anyhow!(
            "system `{}`: auth_url `{auth_url}` is not a URL: {e}",
            cfg.name
        )
    })?;
    if let Some(t) = setting(cfg, TENANT.name) {
        token_url.query_pairs_mut().append_pair("tenant", t);
    }
    let mut cfg = cfg.clone();
    // The API lives under /api; the kit's client builds every URL below its base.
    cfg.base_url = Some(format!("{base}/api"));
    // Planning and `runbook check` connect with no secret: then requests fail at once.
    if let Some(secret) = cfg.secrets.get(CLIENT_SECRET.name).cloned() {
        cfg.auth = Some(AuthSpec::OAuth2(OAuth2Auth {
            token_url: token_url.to_string(),
            client_id: setting(&cfg, CLIENT_ID.name)
                .unwrap_or_default()
                .to_string(),
            scopes: vec!["all".into()],
            audience: None,
            client_secret: Some(secret),
            client_auth: None,
            private_key: None,
            key_id: None,
        }));
    }
    let mut http = HttpClient::new(&cfg)?
        .with_accept("application/json")
        .with_forbidden_hint(
            "the API application may not do this; give it the permissions to read and edit \
             tickets (and its agent access to the ticket's client)",
        )
        .with_error_parser(errors);
    if let Some(auth) = crate::providers::kit::auth::for_system(&cfg)? {
        http = http.with_auth(auth);
    }
    Ok(Arc::new(Halo { http }))
}

/// Halo's error bodies are not documented: a JSON string, or an object with a message.
fn errors(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    match &v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Object(o) => ["message", "Message", "error_description", "error"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str))
            .map(str::to_string),
        _ => None,
    }
}

struct Halo {
    http: HttpClient,
}

#[derive(Deserialize)]
struct Attachments {
    #[serde(default)]
    attachments: Vec<Attachment>,
}

#[derive(Deserialize)]
struct Attachment {
    id: u64,
    #[serde(default)]
    filename: String,
    #[serde(default)]
    filesize: u64,
}

#[derive(Deserialize)]
struct Actions {
    #[serde(default)]
    actions: Vec<Action>,
}

#[derive(Deserialize)]
struct Action {
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize)]
struct Ticket {
    #[serde(default)]
    status_id: Option<u64>,
}

/// The id of what a POST created: Halo answers the record, or a list of them.
fn created_id(v: &Value) -> Option<String> {
    let one = match v {
        Value::Array(items) => items.first()?,
        other => other,
    };
    match &one["id"] {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

impl Halo {
    async fn ticket(&self, ticket: &str, ctx: &CallCtx) -> Result<Ticket, ProviderError> {
        let url = self.http.endpoint(&["Tickets", ticket])?;
        let resp = self
            .http
            .send(Request::get(url), ctx)
            .await
            .map_err(|e| match e {
                ProviderError::NotFound(m) => ProviderError::NotFound(format!(
                    "{m}: HaloPSA has no ticket {ticket} (or the application may not see it)"
                )),
                e => e,
            })?;
        resp.json()
    }

    async fn post(
        &self,
        collection: &str,
        record: Value,
        ctx: &CallCtx,
    ) -> Result<Value, ProviderError> {
        let url = self.http.endpoint(&[collection])?;
        let resp = self
            .http
            .send(
                Request::post(url).json(&Value::Array(vec![record]), "application/json"),
                ctx,
            )
            .await?;
        resp.json()
    }
}

#[async_trait]
impl Ticketing for Halo {
    async fn look(
        &self,
        ticket: &str,
        wanted: &[&str],
        ctx: &CallCtx,
    ) -> Result<TicketView, ProviderError> {
        self.ticket(ticket, ctx).await?;
        let url = with_query(
            self.http.endpoint(&["Attachment"])?,
            &[("ticket_id", ticket)],
        );
        let listed = self
            .http
            .send(Request::get(url), ctx)
            .await?
            .json::<Attachments>()?;
        let mut files = Vec::new();
        for a in listed.attachments {
            let id = a.id.to_string();
            let sha256 = if wanted.contains(&a.filename.as_str()) {
                let url = self.http.endpoint(&["Attachment", &id])?;
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
        let url = with_query(
            self.http.endpoint(&["Actions"])?,
            &[("ticket_id", ticket), ("excludesys", "true")],
        );
        let actions = self
            .http
            .send(Request::get(url), ctx)
            .await?
            .json::<Actions>()?;
        let notes = actions.actions.into_iter().filter_map(|a| a.note).collect();
        Ok(TicketView { files, notes })
    }

    async fn upload_and_note(
        &self,
        ticket: &str,
        files: &[&AttachFile],
        note: &str,
        ctx: &CallCtx,
    ) -> Result<AttachReceipt, ProviderError> {
        let id: u64 = ticket
            .parse()
            .map_err(|_| ProviderError::Permanent(format!("{ticket:?} is not a Halo ticket id")))?;
        let mut receipt = AttachReceipt::default();
        for f in files {
            let made = self
                .post(
                    "Attachment",
                    json!({
                        "ticket_id": id,
                        "filename": f.name,
                        "data_base64": base64::engine::general_purpose::STANDARD.encode(&f.bytes),
                    }),
                    ctx,
                )
                .await?;
            let aid = created_id(&made).ok_or_else(|| {
                ProviderError::Permanent(format!(
                    "HaloPSA created attachment {} without saying its id",
                    f.name
                ))
            })?;
            receipt.attachments.push((f.name.clone(), aid));
        }
        let made = self
            .post(
                "Actions",
                json!({
                    "ticket_id": id,
                    "outcome": "Note",
                    "note": note,
                    "hiddenfromuser": true,
                }),
                ctx,
            )
            .await?;
        receipt.note_id = created_id(&made);
        Ok(receipt)
    }

    async fn close(
        &self,
        ticket: &str,
        status: &TicketStatus,
        ctx: &CallCtx,
    ) -> Result<String, ProviderError> {
        let TicketStatus::Id(status_id) = status else {
            return Err(ProviderError::Permanent(format!(
                "HaloPSA sets a status by its id, not its name ({status:?}): write close_status \
                 = 9 for the default Closed status, or your Closed status's id"
            )));
        };
        let id: u64 = ticket
            .parse()
            .map_err(|_| ProviderError::Permanent(format!("{ticket:?} is not a Halo ticket id")))?;
        self.post("Tickets", json!({ "id": id, "status_id": status_id }), ctx)
            .await?;
        match self.ticket(ticket, ctx).await?.status_id {
            Some(s) if s == *status_id => Ok(status_id.to_string()),
            Some(s) => Err(ProviderError::Permanent(format!(
                "HaloPSA left ticket {ticket} in status {s} instead of {status_id}"
            ))),
            None => Err(ProviderError::Permanent(format!(
                "HaloPSA's ticket {ticket} has no status_id to read back"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_ids_from_a_record_or_a_list() {
        assert_eq!(created_id(&json!({"id": 12})).as_deref(), Some("12"));
        assert_eq!(created_id(&json!([{"id": 13}])).as_deref(), Some("13"));
        assert_eq!(created_id(&json!([])), None);
        assert_eq!(created_id(&json!({"name": "x"})), None);
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            errors(br#""Ticket not found""#).as_deref(),
            Some("Ticket not found")
        );
        assert_eq!(
            errors(br#"{"error":"invalid_client"}"#).as_deref(),
            Some("invalid_client")
        );
        assert_eq!(errors(b"<html>"), None);
    }
}
