//! The runbook: an organisation's systems and offboarding steps, in TOML.
//!
//! `model` (this file) is the shape, shared by deserialization and the JSON Schema;
//! `load` reads a file with spans and validates it into a [`Runbook`]; `template` renders
//! `{{ user.email }}`-style variables; `diag` renders errors as `file:line:column` snippets.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod diag;
pub mod load;
pub mod reference;
pub mod schema;
pub mod template;

pub use diag::{Diagnostic, RunbookError};
pub use load::{Runbook, load_file, load_str, state_of_file};

/// The whole runbook file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "offboard runbook")]
pub struct RunbookFile {
    /// About this runbook.
    pub runbook: RunbookMeta,
    /// Departure facts the runbook needs (e.g. `manager`, `asset_tag`), available to templates as
    /// `user.<name>`, set with `--set name=value` or asked for at `start`.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputDef>,
    /// Where access lives: one entry per system, keyed by a name steps refer to.
    #[serde(default)]
    pub systems: BTreeMap<String, SystemDef>,
    /// What to do, in order of declaration within each phase.
    #[serde(default, rename = "step")]
    pub steps: Vec<StepDef>,
    /// The service desk each departure's evidence goes to (`offboard attach`, and at the end of
    /// `start`, `confirm` and `verify`): its ticket is the one given with `start --ticket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticketing: Option<TicketingDef>,
    /// Where departures come from: one table per HR system (`bamboohr`, `hibob`, `personio`,
    /// `rippling`, `workday`) with its field map, termination types and webhook secret by
    /// reference; see HRIS intake in `runbooks/README.md` and `offboard intake --help`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(with = "BTreeMap<String, crate::intake::SourceConfig>")]
    pub intake: BTreeMap<String, toml::Value>,
    /// Reminders, escalations and drift notices (`offboard remind`, `offboard verify --all`):
    /// email over SMTP, Slack and Teams webhooks, a note on the departure's ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<crate::notify::NotifyDef>,
    /// The asset lane: what the person holds (from an input or a CSV export of the asset
    /// system), one manual return step per asset. See "The asset lane" in `runbooks/README.md`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets: Option<AssetsDef>,
    /// Four-eyes approval (`offboard plan --out`, `offboard approve`, `start --plan`): which
    /// roles must approve which steps, and which keys may approve in which role. See
    /// docs/approvals.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<crate::approval::ApprovalsDef>,
    /// Where departures are kept: a shared PostgreSQL database instead of the local state dir,
    /// for every command that uses this runbook (`-r`, `OFFBOARD_RUNBOOK` or `./offboard.toml`).
    /// `--state` and `OFFBOARD_STATE` take precedence. See docs/postgres.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateDef>,
}

/// The `[state]` table: the shared PostgreSQL database departures are kept in.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateDef {
    /// `postgres://USER@HOST[:PORT]/DB`, without a password (one in the URL is refused).
    #[schemars(regex(pattern = "^postgres(ql)?://"))]
    pub url: String,
    /// The database password, by reference: `{ env = "OFFBOARD_PG_PASSWORD" }`, `{ file = … }`
    /// or `{ command = [...] }`. Without it: `PGPASSWORD`, then `~/.pgpass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// The CA that signed the server's certificate (relative to the runbook's directory): the
    /// connection is then `sslmode=verify-full` (certificate and host name checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

/// The `[assets]` table: where the list of what the person holds comes from, and the return
/// step generated for each asset.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetsDef {
    /// `input:<name>`: a declared input listing the assets, `TAG` or `TAG:SERIAL` separated by
    /// commas, semicolons or line breaks (e.g. `--set assets="LT-0042:C02XK1,PH-7"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// A CSV export of the asset system (a template; relative to the runbook's directory). Its
    /// first row names the columns; the rows whose `columns.user` column equals `match` are the
    /// person's assets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<String>,
    /// Which CSV columns hold what (defaults: `asset_tag`, `serial`, `name`, `assigned_to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<AssetColumns>,
    /// With `csv`: the value of the `user` column that marks the person's rows (a template;
    /// default `{{ user.email }}`, else `{{ user.id }}`); compared ignoring case.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_user: Option<String>,
    /// Each return step's id is `<id_prefix>-<asset tag>` (the tag made safe); default `return`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[A-Za-z0-9_-]+$"))]
    pub id_prefix: Option<String>,
    /// Default `facilities`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<Lane>,
    /// Default `recover`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The instruction (a template that may also use `asset.tag`, `asset.serial`,
    /// `asset.name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `effective`, or `effective+<N><m|h|d|w>`; the asset is overdue after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_to: Option<String>,
    /// The id of an automated step (an MDM or RMM lock or wipe) that runs only once an asset is
    /// overdue and not returned, or confirmed lost; when every asset is returned it is not
    /// applicable. A scheduled `offboard resume` fires it after the deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_overdue: Option<String>,
}

/// CSV column names for the asset list.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetColumns {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The `[ticketing]` table: a service desk (PSA) and how to reach it. Frozen into each
/// departure at start, like the systems.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct TicketingDef {
    /// The service desk kind (`redmine`, `halo`, `jira`, `autotask`, `connectwise`,
    /// `freshservice`); see Ticketing in `runbooks/README.md`.
    pub kind: String,
    /// The service desk's base URL, e.g. `https://desk.example.com`.
    pub base_url: String,
    /// Set the ticket to this status once the departure is complete: a status name (e.g.
    /// `"Closed"`) or the desk's numeric status id. Default: the ticket's status is left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_status: Option<TicketStatus>,
    /// Per-request timeout in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_secs: Option<u64>,
    /// Settings specific to the kind: its credentials, by reference only (documented per kind).
    #[serde(flatten)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub settings: BTreeMap<String, toml::Value>,
}

/// A ticket status, by name or by the desk's numeric id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum TicketStatus {
    Id(u64),
    Name(String),
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TicketStatus::Id(n) => write!(f, "{n}"),
            TicketStatus::Name(s) => write!(f, "{s}"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunbookMeta {
    /// A human name, recorded in the evidence.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Block every destructive step for every departure run with this runbook.
    #[serde(default)]
    pub legal_hold: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputDef {
    /// The question asked at `start` when the value is missing and a terminal is attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// `start` refuses to run without it.
    #[serde(default)]
    pub required: bool,
    /// Used when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// A system: where some of the person's access lives.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[schemars(transform = document_allow_plain)]
pub struct SystemDef {
    /// The provider kind (`scim`, `sandbox`, …); see `runbooks/README.md` for each kind's actions.
    pub kind: String,
    /// The API's base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The API credential, by reference only: `{ env = "VAR" }`, `{ file = "path" }` or
    /// `{ command = ["prog", "arg"] }`. Never inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretRef>,
    /// At most this many requests in flight to this system at once (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub max_concurrency: Option<u32>,
    /// At most this many requests started per period, e.g. `"600/min"` (also `/s`, `/h`),
    /// spread evenly; shared by every step and departure this process runs against the system.
    /// Applies to the HTTP kinds' requests. Default: none (the provider's 429s are honoured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^\s*[0-9]+\s*/\s*(s|sec|second|min|minute|h|hour)\s*$"))]
    pub rate_limit: Option<String>,
    /// How the person is known in this system (a template; default `{{ user.email }}`, else
    /// `{{ user.id }}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Per-request timeout in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Time limit in seconds for one step on this system, retries included (default 300).
    /// A step that runs out is recorded as failed; `resume` re-checks it before trying again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_timeout_secs: Option<u64>,
    /// Settings specific to the kind (documented per kind).
    #[serde(flatten)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub settings: BTreeMap<String, toml::Value>,
}

/// `allow_plain`, the kind setting of every kind that sends a credential over a URL (scim,
/// vault, ldap), shown in the schema beside the common keys so editors offer it.
fn document_allow_plain(schema: &mut schemars::Schema) {
    if let Some(props) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        props.insert(
            "allow_plain".into(),
            serde_json::json!({
                "description": "Kinds scim, vault and ldap: allow a base_url without TLS \
                    (http:// to a host other than this machine, or ldap:// without StartTLS); \
                    the credential then crosses the network in clear. Default false.",
                "type": "boolean"
            }),
        );
    }
}

/// A reference to a secret. The value is read only when a step runs, and never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SecretRef {
    /// Read from an environment variable.
    Env { env: String },
    /// Read from a file (first line, trimmed).
    File { file: String },
    /// The standard output of a command (e.g. `["pass", "show", "okta"]`), trimmed.
    Command { command: Vec<String> },
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env { env } => write!(f, "env {env}"),
            SecretRef::File { file } => write!(f, "file {file}"),
            SecretRef::Command { command } => write!(f, "command {}", command.join(" ")),
        }
    }
}

/// The lanes work is grouped in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    It,
    Saas,
    Facilities,
    Finance,
    Manager,
    Security,
    Custom,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::It => "it",
            Lane::Saas => "saas",
            Lane::Facilities => "facilities",
            Lane::Finance => "finance",
            Lane::Manager => "manager",
            Lane::Security => "security",
            Lane::Custom => "custom",
        }
    }
}

/// Phases run in this order: `cut` (access) before `recover` before `handoff` before `close`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Cut,
    Recover,
    Handoff,
    Close,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Cut, Phase::Recover, Phase::Handoff, Phase::Close];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Cut => "cut",
            Phase::Recover => "recover",
            Phase::Handoff => "handoff",
            Phase::Close => "close",
        }
    }
}

/// One value or a list of values.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn contains(&self, v: &str) -> bool {
        match self {
            OneOrMany::One(s) => s == v,
            OneOrMany::Many(list) => list.iter().any(|s| s == v),
        }
    }
}

/// A step: automated (`system` + `action`) or manual (`manual` text).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    /// Unique within the runbook; letters, digits, `-` and `_`.
    pub id: String,
    pub lane: Lane,
    /// The system an automated step acts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The action, one of the system kind's actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Parameters of the action (documented per action), e.g. `{ groups = ["vpn"] }`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub params: BTreeMap<String, toml::Value>,
    /// The instruction for a manual step (a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<String>,
    /// What the confirmer of a manual step must record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Conditions on the departure: `type` and declared inputs, each a value or a list of values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub when: BTreeMap<String, OneOrMany>,
    /// Default: `cut` for automated steps, `recover` for manual ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Steps (ids) that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Who is responsible (an email or team).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `effective`, or `effective+<N><m|h|d|w>`, e.g. `effective+7d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// Who hears about it when the deadline passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_to: Option<String>,
    /// How long past its deadline this manual step's `escalate_to` is told by `offboard remind`
    /// (`48h`, `2d`); default the `[notify]` table's `escalate_after`, else 48h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{1,6}[mhdw]$"))]
    pub escalate_after: Option<String>,
    /// This step could alert the person (e.g. an email to them). Involuntary departures hold it
    /// back until every `cut` step is done. Actions that alert are marked so by their kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts_user: Option<bool>,
    /// Free text shown in the plan and the evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl StepDef {
    pub fn is_manual(&self) -> bool {
        self.system.is_none()
    }

    pub fn phase(&self) -> Phase {
        self.phase.unwrap_or(if self.is_manual() {
            Phase::Recover
        } else {
            Phase::Cut
        })
    }
}
