//! Telling people about a departure after the run: reminders of manual steps due soon or
//! overdue, escalations once a step is overdue by `escalate_after`, and drift found by the
//! nightly sweep (`verify --all`).
//!
//! The channels are configured once, in the runbook's `[notify]` table ([`NotifyDef`]): email
//! over SMTP ([`smtp`]), Slack and Microsoft Teams incoming webhooks ([`webhook`]), and a note on
//! the departure's service desk ticket when the departure has `[ticketing]`. Every credential
//! (the SMTP password, each webhook URL) is a secret reference, resolved when the command runs;
//! none ever reaches the journal, a log line or an error message.
//!
//! [`remind`] decides, from a departure's replayed state and its journal, who is to be told what
//! now; the commands send and journal each notification as a `notified` event.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runbook::SecretRef;

pub mod remind;
pub mod send;
pub mod smtp;
pub mod webhook;

/// The runbook's `[notify]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyDef {
    /// How long after a manual step's deadline its `escalate_to` is told as well (`48h`, `2d`).
    /// Default 48h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{1,6}[mhdw]$"))]
    pub escalate_after: Option<String>,
    /// A manual step is due soon, and its owner reminded, from this long before its deadline.
    /// Default 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{1,6}[mhdw]$"))]
    pub due_within: Option<String>,
    /// The same reminder (person, channel, step) is not sent again within this long. Default 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{1,6}[mhdw]$"))]
    pub interval: Option<String>,
    /// Who is emailed when `verify --all` finds drift (the webhooks and the ticket are told too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift_to: Vec<String>,
    /// Add a note to the departure's ticket when it has `[ticketing]` and a ticket. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_note: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<TeamsDef>,
}

/// `[notify.email]`: an SMTP relay.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailDef {
    pub host: String,
    /// Default 587 for starttls, 465 for tls, 25 for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` (implicit TLS, usually port 465) or `none` (only to this
    /// machine, unless `allow_plain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<SmtpTls>,
    /// The sender, e.g. `offboard@acme.example` or `Offboarding <offboard@acme.example>`.
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The password, by reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// Allow `tls = "none"` to a host other than this machine (the password and the mail then
    /// cross the network in clear). Default false.
    #[serde(default)]
    pub allow_plain: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_secs: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    Starttls,
    Tls,
    None,
}

/// `[notify.slack]`: a Slack incoming webhook.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackDef {
    /// The webhook URL, by reference: it is a credential.
    pub webhook: SecretRef,
}

/// `[notify.teams]`: a Microsoft Teams incoming webhook (or a Workflows webhook).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamsDef {
    /// The webhook URL, by reference: it is a credential.
    pub webhook: SecretRef,
    /// `adaptive_card` (default; what Teams Workflows webhooks take) or `message_card` (the
    /// classic Office 365 connector format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TeamsFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TeamsFormat {
    AdaptiveCard,
    MessageCard,
}

/// `48h`, `30m`, `2d`, `1w`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    match unit {
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => None,
    }
}

/// A span of time as a person says it: `3d 4h`, `2h 5m`, `45m`.
pub fn human(d: Duration) -> String {
    let m = d.num_minutes().max(0);
    let (days, hours, mins) = (m / 1440, (m % 1440) / 60, m % 60);
    match (days, hours, mins) {
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// The timing settings, with their defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub escalate_after: Duration,
    pub due_within: Duration,
    pub interval: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            escalate_after: Duration::hours(48),
            due_within: Duration::hours(24),
            interval: Duration::hours(24),
        }
    }
}

impl NotifyDef {
    /// The timing, defaults filled in (the loader has checked each value).
    pub fn timing(&self) -> Timing {
        let d = Timing::default();
        let get =
            |v: &Option<String>, default| v.as_deref().and_then(parse_duration).unwrap_or(default);
        Timing {
            escalate_after: get(&self.escalate_after, d.escalate_after),
            due_within: get(&self.due_within, d.due_within),
            interval: get(&self.interval, d.interval),
        }
    }
}

/// Where a notification went.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Slack,
    Teams,
    Ticket,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Slack => "slack",
            Channel::Teams => "teams",
            Channel::Ticket => "ticket",
        }
    }
}

/// Why someone is told.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// To a step's owner: due soon or overdue.
    Reminder,
    /// To a step's `escalate_to`: overdue by `escalate_after` or more.
    Escalation,
    /// `verify --all` found access back.
    Drift,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Reminder => "reminder",
            Level::Escalation => "escalation",
            Level::Drift => "drift",
        }
    }
}

/// A `notified` journal event: one notification sent (or that failed to send) about a
/// departure. Never holds a credential: `to` is a person's address or name as the plan has it,
/// and `error` is the server's refusal or a transport error with no URL in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub channel: Channel,
    pub level: Level,
    /// The person (owner, escalate_to, a drift recipient) it is addressed to.
    pub to: String,
    /// The steps it is about.
    pub steps: Vec<String>,
    pub sent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One message, rendered once for every channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub level: Level,
    /// Who it is for (an address or a name).
    pub to: String,
    pub subject: String,
    /// Plain text, one line per item after an opening line.
    pub intro: String,
    pub items: Vec<String>,
    /// What to do, e.g. the confirm command.
    pub action: String,
    /// The departure's id.
    pub departure: String,
    /// name → value, shown as facts on cards.
    pub facts: BTreeMap<String, String>,
}

impl Message {
    pub fn text(&self) -> String {
        let mut out = format!("{}\n\n", self.intro);
        for i in &self.items {
            out.push_str(&format!("- {i}\n"));
        }
        out.push_str(&format!("\n{}\n", self.action));
        out
    }
}

/// A send that failed, with a message safe to journal and print.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SendError(pub String);

/// Cut `s` to at most `n` characters (server replies quoted in errors).
pub(crate) fn clip(s: &str, n: usize) -> String {
    let t: String = s.chars().take(n).collect();
    if t.len() < s.len() {
        format!("{t}…")
    } else {
        t
    }
}

/// Whether the host is this machine (plain SMTP allowed there).
pub(crate) fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The time of an event, for "not twice within the interval".
pub(crate) fn event_time(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("48h"), Some(Duration::hours(48)));
        assert_eq!(parse_duration("2d"), Some(Duration::days(2)));
        assert_eq!(parse_duration("30m"), Some(Duration::minutes(30)));
        assert_eq!(parse_duration("1w"), Some(Duration::weeks(1)));
        for bad in ["", "h", "48", "4.5h", "-1h", "48s", "1234567h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(human(Duration::minutes(3 * 1440 + 125)), "3d 2h");
        assert_eq!(human(Duration::minutes(125)), "2h 5m");
        assert_eq!(human(Duration::hours(24)), "1d");
        assert_eq!(human(Duration::hours(5)), "5h");
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]"));
        assert!(!is_loopback("smtp.example.com"));
        assert!(!is_loopback("10.0.0.1"));
    }
}
