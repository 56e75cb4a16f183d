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
}

/// A person's answer to a manual step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Done,
    NotYet,
    NotApplicable,
}
