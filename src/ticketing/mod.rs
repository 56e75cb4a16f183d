//! Service desks (PSA ticketing): where a departure's evidence ends up.
//!
//! Each desk kind is one file implementing [`Ticketing`] and publishing a [`TicketKind`];
//! adding one is that file plus one line in [`TICKET_KINDS`]. The rest — which files, the note,
//! idempotence, journaling, closing — is the kind-independent [`deliver`] here and the app
//! layer's `attach`, which never name a desk.
//!
//! A kind talks to its desk through the provider kit's [`HttpClient`](crate::providers::kit::http::HttpClient)
//! (retries, `Retry-After`, the desk's error text, secrets redacted), configured from the
//! runbook's `[ticketing]` table as a [`SystemConfig`] named `ticketing`, its secret settings
//! resolved like a system's.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;

use crate::core::AttachedFile;
use crate::providers::{CallCtx, ProviderError, SettingSpec, SettingType, SystemConfig};
use crate::runbook::{SecretRef, TicketStatus, TicketingDef};

pub mod autotask;
pub mod connectwise;
pub mod files;
pub mod freshservice;
pub mod halo;
pub mod jira;
pub mod redmine;

/// Every service desk kind offboard knows. One line per kind.
pub static TICKET_KINDS: &[&TicketKind] = &[
    &redmine::KIND,
    &halo::KIND,
    &jira::KIND,
    &autotask::KIND,
    &connectwise::KIND,
    &freshservice::KIND,
];

pub fn find_kind(name: &str) -> Option<&'static TicketKind> {
    TICKET_KINDS.iter().copied().find(|k| k.name == name)
}

/// The keys every `[ticketing]` table may have, beside its kind's settings.
pub const COMMON_KEYS: &[&str] = &["kind", "base_url", "close_status", "timeout_secs"];

/// The name a desk's requests and errors go by (`system \`ticketing\`: …`).
pub const SYSTEM_NAME: &str = "ticketing";

/// What a desk kind offers, for validation, connecting and documentation.
pub struct TicketKind {
    pub name: &'static str,
    pub summary: &'static str,
    /// Settings allowed beside [`COMMON_KEYS`] (credentials, by reference).
    pub settings: &'static [SettingSpec],
    /// Whether a ticket id has the desk's shape; `Err` says what it should look like.
    pub check_ticket: fn(&str) -> Result<(), String>,
    /// Build the desk's client. No I/O: `runbook check` calls it with no secret.
    pub connect: fn(&SystemConfig) -> Result<Arc<dyn Ticketing>>,
}

/// A file to attach: its name on the ticket, its bytes and their sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachFile {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
    /// sha256 hex of `bytes`.
    pub sha256: String,
}

impl AttachFile {
    pub fn new(name: impl Into<String>, content_type: &'static str, bytes: Vec<u8>) -> AttachFile {
        let sha256 = crate::journal::sha256_hex(&bytes);
        AttachFile {
            name: name.into(),
            content_type,
            bytes,
            sha256,
        }
    }
}

/// A file found on a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// The desk's id of the attachment.
    pub id: String,
    pub name: String,
    pub size: u64,
    /// sha256 hex of its content, when the desk says or the kind read it back.
    pub sha256: Option<String>,
}

/// What is on a ticket already.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketView {
    /// Its attachments (at least those with a wanted name).
    pub files: Vec<RemoteFile>,
    /// The text of its notes (internal ones included).
    pub notes: Vec<String>,
}

/// What an upload created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachReceipt {
    /// Each uploaded file's name with the desk's attachment id.
    pub attachments: Vec<(String, String)>,
    /// The note's id, when the desk gives one.
    pub note_id: Option<String>,
}

/// A connected service desk.
#[async_trait]
pub trait Ticketing: Send + Sync {
    /// Read `ticket`: its attachments, with their sha256 for those named in `wanted` (read back
    /// when the desk does not say), and the text of its notes. A ticket that does not exist is
    /// [`ProviderError::NotFound`]. Changes nothing.
    async fn look(
        &self,
        ticket: &str,
        wanted: &[&str],
        ctx: &CallCtx,
    ) -> Result<TicketView, ProviderError>;

    /// Upload `files` to `ticket` and add `note` as an internal (private) note, in one update
    /// where the desk allows it, so that a failure leaves neither.
    async fn upload_and_note(
        &self,
        ticket: &str,
        files: &[&AttachFile],
        note: &str,
        ctx: &CallCtx,
    ) -> Result<AttachReceipt, ProviderError>;

    /// Set `ticket` to `status`, and read it back: the status the ticket has now, by name.
    async fn close(
        &self,
        ticket: &str,
        status: &TicketStatus,
        ctx: &CallCtx,
    ) -> Result<String, ProviderError>;
}

/// The desk's configuration with no secret (for `runbook check` and describing).
pub fn config(def: &TicketingDef) -> SystemConfig {
    SystemConfig {
        settings: def.settings.clone(),
        timeout: Duration::from_secs(def.timeout_secs.unwrap_or(30).max(1)),
        max_concurrency: 2,
        ..SystemConfig::new(SYSTEM_NAME, &def.kind, Some(&def.base_url))
    }
}

/// Connect the desk a departure names, reading its secret settings now (errors name the
/// reference, never a value).
pub fn connect(def: &TicketingDef) -> Result<Arc<dyn Ticketing>> {
    let kind = find_kind(&def.kind).with_context(|| {
        format!(
            "unknown ticketing kind `{}` (this offboard is too old?)",
            def.kind
        )
    })?;
    let mut cfg = config(def);
    for spec in kind
        .settings
        .iter()
        .filter(|s| matches!(s.ty, SettingType::Secret | SettingType::SecretDocument))
    {
        let Some(v) = def.settings.get(spec.name) else {
            continue;
        };
        let r: SecretRef = v.clone().try_into().map_err(|_| {
            anyhow::anyhow!("[ticketing] `{}` must be a secret reference", spec.name)
        })?;
        let value = if spec.ty == SettingType::SecretDocument {
            crate::secrets::resolve_document(&r)
        } else {
            crate::secrets::resolve(&r)
        }
        .with_context(|| format!("[ticketing] `{}`", spec.name))?;
        cfg.secrets.insert(spec.name.to_string(), value);
    }
    (kind.connect)(&cfg)
}

/// What [`deliver`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Every file, in the order given: uploaded now or found on the ticket.
    pub files: Vec<AttachedFile>,
    pub note_added: bool,
    pub note_id: Option<String>,
}

impl Delivered {
    /// Nothing was uploaded and no note added: the ticket had it all.
    pub fn was_there(&self) -> bool {
        !self.note_added && self.files.iter().all(|f| !f.uploaded)
    }
}

/// Put `files` and `note` on `ticket`, uploading only what is not there: a file is there when
/// the ticket has one of the same name and content (sha256, or size when the desk cannot
/// tell), and the note when one of the ticket's notes contains `marker`. Attaching the same
/// files twice uploads nothing the second time.
pub async fn deliver(
    desk: &dyn Ticketing,
    ticket: &str,
    files: &[AttachFile],
    note: &str,
    marker: &str,
    ctx: &CallCtx,
) -> Result<Delivered, ProviderError> {
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    let view = desk.look(ticket, &names, ctx).await?;
    let same = |r: &RemoteFile, f: &AttachFile| {
        r.name == f.name
            && match &r.sha256 {
                Some(h) => h.eq_ignore_ascii_case(&f.sha256),
                None => r.size == f.bytes.len() as u64,
            }
    };
    let found: Vec<Option<&RemoteFile>> = files
        .iter()
        .map(|f| view.files.iter().find(|r| same(r, f)))
        .collect();
    let missing: Vec<&AttachFile> = files
        .iter()
        .zip(&found)
        .filter(|(_, r)| r.is_none())
        .map(|(f, _)| f)
        .collect();
    let noted = view.notes.iter().any(|n| n.contains(marker));
    let receipt = if missing.is_empty() && noted {
        AttachReceipt::default()
    } else {
        desk.upload_and_note(ticket, &missing, note, ctx).await?
    };
    let mut out = Vec::new();
    for (f, r) in files.iter().zip(&found) {
        let (id, uploaded) = match r {
            Some(r) => (r.id.clone(), false),
            None => {
                let id = receipt
                    .attachments
                    .iter()
                    .find(|(n, _)| *n == f.name)
                    .map(|(_, id)| id.clone())
                    .ok_or_else(|| {
                        ProviderError::Permanent(format!(
                            "the service desk reported no attachment id for {}",
                            f.name
                        ))
                    })?;
                (id, true)
            }
        };
        out.push(AttachedFile {
            name: f.name.clone(),
            sha256: f.sha256.clone(),
            size: f.bytes.len() as u64,
            attachment_id: id,
            uploaded,
        });
    }
    Ok(Delivered {
        files: out,
        note_added: !(missing.is_empty() && noted),
        note_id: receipt.note_id,
    })
}

/// A ticket id anyone may type: 1 to 64 printable characters, no white space.
pub fn plain_ticket(ticket: &str) -> Result<(), String> {
    if ticket.is_empty() || ticket.chars().count() > 64 {
        return Err("a ticket id is 1 to 64 characters".into());
    }
    if ticket.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a ticket id has no spaces or control characters".into());
    }
    Ok(())
}

/// A string setting of the desk's `[ticketing]` table (the loader checked its type; a desk
/// built directly is checked here).
pub(crate) fn text_setting(cfg: &SystemConfig, name: &str) -> anyhow::Result<Option<String>> {
    match cfg.settings.get(name) {
        None => Ok(None),
        Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Some(other) => anyhow::bail!(
            "[ticketing] `{name}` must be a non-empty string, not {}",
            other.type_str()
        ),
    }
}

/// An integer setting of the desk's `[ticketing]` table.
pub(crate) fn integer_setting(cfg: &SystemConfig, name: &str) -> anyhow::Result<Option<i64>> {
    match cfg.settings.get(name) {
        None => Ok(None),
        Some(toml::Value::Integer(n)) => Ok(Some(*n)),
        Some(other) => anyhow::bail!(
            "[ticketing] `{name}` must be an integer, not {}",
            other.type_str()
        ),
    }
}

/// A desk's id for something, which JSON may give as a number or a string.
pub(crate) fn json_id(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A desk in memory: what it holds, and every upload asked of it.
    #[derive(Default)]
    struct Memory {
        files: Mutex<Vec<RemoteFile>>,
        notes: Mutex<Vec<String>>,
        uploads: Mutex<Vec<String>>,
        /// Report sha256 (true) or only sizes (false).
        hashes: bool,
    }

    #[async_trait]
    impl Ticketing for Memory {
        async fn look(
            &self,
            ticket: &str,
            _wanted: &[&str],
            _ctx: &CallCtx,
        ) -> Result<TicketView, ProviderError> {
            if ticket != "7" {
                return Err(ProviderError::NotFound("no ticket".into()));
            }
            let mut files = self.files.lock().unwrap().clone();
            if !self.hashes {
                files.iter_mut().for_each(|f| f.sha256 = None);
            }
            Ok(TicketView {
                files,
                notes: self.notes.lock().unwrap().clone(),
            })
        }

        async fn upload_and_note(
            &self,
            _ticket: &str,
            files: &[&AttachFile],
            note: &str,
            _ctx: &CallCtx,
        ) -> Result<AttachReceipt, ProviderError> {
            let mut held = self.files.lock().unwrap();
            let mut receipt = AttachReceipt::default();
            for f in files {
                let id = format!("a{}", held.len() + 1);
                held.push(RemoteFile {
                    id: id.clone(),
                    name: f.name.clone(),
                    size: f.bytes.len() as u64,
                    sha256: Some(f.sha256.clone()),
                });
                self.uploads.lock().unwrap().push(f.name.clone());
                receipt.attachments.push((f.name.clone(), id));
            }
            self.notes.lock().unwrap().push(note.to_string());
            receipt.note_id = Some("n1".into());
            Ok(receipt)
        }

        async fn close(
            &self,
            _ticket: &str,
            status: &TicketStatus,
            _ctx: &CallCtx,
        ) -> Result<String, ProviderError> {
            Ok(status.to_string())
        }
    }

    fn files(rev: &str) -> Vec<AttachFile> {
        vec![
            AttachFile::new(format!("d-{rev}.json"), "application/json", rev.into()),
            AttachFile::new("d.allowed_signers", "text/plain", b"key".to_vec()),
        ]
    }

    #[tokio::test]
    async fn the_same_files_twice_upload_nothing_the_second_time() {
        let desk = Memory {
            hashes: true,
            ..Memory::default()
        };
        let ctx = CallCtx::silent();
        let first = deliver(&desk, "7", &files("r1"), "note sha-1", "sha-1", &ctx)
            .await
            .unwrap();
        assert!(first.files.iter().all(|f| f.uploaded) && first.note_added);
        assert_eq!(first.files[0].attachment_id, "a1");
        let again = deliver(&desk, "7", &files("r1"), "note sha-1", "sha-1", &ctx)
            .await
            .unwrap();
        assert!(again.was_there(), "{again:?}");
        assert_eq!(again.files[0].attachment_id, "a1");
        assert_eq!(desk.uploads.lock().unwrap().len(), 2);
        // A new revision: only its evidence is new; the key file is the same.
        let next = deliver(&desk, "7", &files("r2"), "note sha-2", "sha-2", &ctx)
            .await
            .unwrap();
        assert_eq!(
            next.files.iter().map(|f| f.uploaded).collect::<Vec<_>>(),
            [true, false]
        );
        assert_eq!(
            *desk.uploads.lock().unwrap(),
            ["d-r1.json", "d.allowed_signers", "d-r2.json"]
        );
        assert_eq!(desk.notes.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_file_of_the_same_name_but_other_content_is_uploaded() {
        let desk = Memory {
            hashes: true,
            ..Memory::default()
        };
        desk.files.lock().unwrap().push(RemoteFile {
            id: "old".into(),
            name: "d-r1.json".into(),
            size: 2,
            sha256: Some("0".repeat(64)),
        });
        let ctx = CallCtx::silent();
        let d = deliver(&desk, "7", &files("r1"), "n", "m", &ctx)
            .await
            .unwrap();
        assert!(d.files[0].uploaded);
        assert_ne!(d.files[0].attachment_id, "old");
    }

    #[tokio::test]
    async fn without_hashes_the_size_decides_and_a_missing_note_is_added_alone() {
        let desk = Memory::default();
        let ctx = CallCtx::silent();
        deliver(&desk, "7", &files("r1"), "note m", "m", &ctx)
            .await
            .unwrap();
        desk.notes.lock().unwrap().clear();
        let d = deliver(&desk, "7", &files("r1"), "note m", "m", &ctx)
            .await
            .unwrap();
        assert!(d.files.iter().all(|f| !f.uploaded) && d.note_added, "{d:?}");
        assert_eq!(desk.uploads.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn an_unknown_ticket_is_not_found() {
        let desk = Memory::default();
        let e = deliver(&desk, "8", &files("r1"), "n", "m", &CallCtx::silent())
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
    }

    #[test]
    fn plain_ticket_ids() {
        assert!(plain_ticket("4711").is_ok());
        assert!(plain_ticket("INC-0042").is_ok());
        assert!(plain_ticket("").is_err());
        assert!(plain_ticket("a b").is_err());
        assert!(plain_ticket("a\nb").is_err());
        assert!(plain_ticket(&"9".repeat(65)).is_err());
    }
}
