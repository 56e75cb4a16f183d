//! Plain values several layers share: what providers report (the account acted on, the
//! requests made, retries), what a person answers and what the preflight found. The journal
//! records them, the departure replays them, providers produce them; keeping them here, with no
//! dependency on any of those modules, keeps the journal from depending on providers.
//!
//! Each is re-exported from its former home (`providers::Account`, `departure::Answer`, …).

use serde::{Deserialize, Serialize};

/// The account an action acts on, as the system itself identifies it: an identifier that
/// survives renames (SCIM `id`, AD `objectGUID`, LDAP `entryUUID`/`nsUniqueId`, Vault entity
/// id), with the name it had when found, for people reading the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The provider's immutable identifier.
    pub id: String,
    /// What that identifier is, e.g. "SCIM id", "objectGUID".
    pub id_kind: String,
    /// How the account was known when read (userName, DN, login).
    pub name: String,
}

impl Account {
    pub fn new(id: impl Into<String>, id_kind: &str, name: impl Into<String>) -> Account {
        Account {
            id: id.into(),
            id_kind: id_kind.to_string(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} {})", self.name, self.id_kind, self.id)
    }
}

/// A request as shown in a plan: method and URL (placeholders in braces), never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestLine {
    pub method: String,
    pub url: String,
}

impl std::fmt::Display for RequestLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.url)
    }
}

/// A request as made: method, URL (no query secrets), final status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub method: String,
    pub url: String,
    pub status: u16,
}

/// A transient failure that is being retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryNote {
    pub attempt: u32,
    pub reason: String,
    pub wait_ms: u64,
}

/// What the preflight found for one automated step (read-only, before anything was cut).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreflightCheck {
    pub step: String,
    pub system: String,
    /// The system answered and the person was found.
    pub ok: bool,
    /// What was found, or the problem.
    pub detail: String,
    /// The account the system found for the person, when its provider names it (by the
    /// system's own id): the run that follows this preflight acts on it without a second lookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
}

/// A person's answer to a manual step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Done,
    NotYet,
    NotApplicable,
}

/// The service desk ticket a ticketing record is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRef {
    /// The desk's kind, e.g. `redmine`.
    pub kind: String,
    /// The desk's base URL (never a credential).
    pub base_url: String,
    pub ticket: String,
}

/// One evidence file as it is on the ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedFile {
    /// The file name on the ticket, e.g. `<departure>-r2.json`.
    pub name: String,
    /// sha256 hex of its bytes.
    pub sha256: String,
    pub size: u64,
    /// The desk's id of the attachment.
    pub attachment_id: String,
    /// Uploaded by this attach; false when the same name and content was on the ticket already.
    pub uploaded: bool,
}

/// An evidence revision attached to a ticket: where each file is, and the note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketAttach {
    #[serde(flatten)]
    pub desk: TicketRef,
    /// The evidence revision attached.
    pub revision: u32,
    /// sha256 hex of that revision's evidence file.
    pub evidence_sha256: String,
    pub files: Vec<AttachedFile>,
    /// A note was added now (false: the ticket had this revision's note already).
    pub note_added: bool,
    /// The desk's id of the note, when it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note_id: Option<String>,
}

/// An attach that failed: the revision stays pending until `offboard attach` succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketAttachFailure {
    #[serde(flatten)]
    pub desk: TicketRef,
    pub revision: u32,
    /// What went wrong, in the desk's words (never a secret).
    pub error: String,
}

/// The ticket was set to the runbook's `close_status` once the departure was complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketClose {
    #[serde(flatten)]
    pub desk: TicketRef,
    /// The status as the runbook names it.
    pub status: String,
}
