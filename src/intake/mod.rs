//! HRIS intake: turning a termination event or record from an HR system into departure facts.
//!
//! Each source module knows its vendor's envelopes (a webhook body, an API record, a report) and
//! hands back the records inside; this module reads the facts out of a record through a field
//! map (the source's defaults, overridden by the runbook's `[intake.<source>]` table, because
//! companies customise columns and report fields), maps the termination type to voluntary or
//! involuntary, and computes the instant the departure takes effect.
//!
//! Identity of a termination: `<employee id>/<termination date>`. A retried webhook, the same
//! termination seen by a later poll, or the same file given twice all name the same event, so
//! [`index`] can refuse to make a second departure of it.

pub mod bamboohr;
pub mod hibob;
pub mod index;
pub mod personio;
pub mod poll;
pub mod rippling;
pub mod signature;
pub mod workday;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::departure::DepartureType;
use crate::runbook::SecretRef;

/// The HR systems an event can come from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Bamboohr,
    Hibob,
    Personio,
    Rippling,
    Workday,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Bamboohr => "bamboohr",
            Source::Hibob => "hibob",
            Source::Personio => "personio",
            Source::Rippling => "rippling",
            Source::Workday => "workday",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Source::Bamboohr => "BambooHR",
            Source::Hibob => "HiBob",
            Source::Personio => "Personio",
            Source::Rippling => "Rippling",
            Source::Workday => "Workday",
        }
    }

    fn defaults(self) -> &'static Defaults {
        match self {
            Source::Bamboohr => &bamboohr::DEFAULTS,
            Source::Hibob => &hibob::DEFAULTS,
            Source::Personio => &personio::DEFAULTS,
            Source::Rippling => &rippling::DEFAULTS,
            Source::Workday => &workday::DEFAULTS,
        }
    }

    /// The records an event body holds, as the vendor shapes it.
    fn envelope(self, body: &[u8]) -> Result<Envelope, IntakeError> {
        match self {
            Source::Bamboohr => bamboohr::envelope(body),
            Source::Hibob => hibob::envelope(body),
            Source::Personio => personio::envelope(body),
            Source::Rippling => rippling::envelope(body),
            Source::Workday => workday::envelope(body),
        }
    }
}

/// What a vendor's body turned out to hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Envelope {
    /// Person records with values (a field-based webhook, an API record, report rows).
    Records(Vec<Value>),
    /// A notification naming people by id only (`kind` is the event name): their records must
    /// be fetched before anything is known about the departure.
    IdsOnly { kind: String, ids: Vec<String> },
    /// A delivery that is not about a departure (a ping, another event type).
    Ignored { kind: String },
}

/// Where each fact is in a record: candidate field names or dotted paths, tried in order.
pub struct Defaults {
    pub id: &'static [&'static str],
    pub email: &'static [&'static str],
    pub termination_date: &'static [&'static str],
    pub last_day: &'static [&'static str],
    pub termination_type: &'static [&'static str],
    pub reason: &'static [&'static str],
    pub manager: &'static [&'static str],
    pub status: &'static [&'static str],
}

/// The runbook's `[intake.<source>.fields]`: one field name or dotted path per fact, replacing
/// the source's default candidates.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldMap {
    /// The employee id (with the termination date, the event's identity).
    pub id: Option<String>,
    /// The person's work email: the user the departure offboards.
    pub email: Option<String>,
    /// The termination date (`YYYY-MM-DD`): the departure takes effect on it.
    pub termination_date: Option<String>,
    /// The last working day.
    pub last_day: Option<String>,
    /// The termination type, mapped to voluntary / involuntary.
    #[serde(rename = "type")]
    pub termination_type: Option<String>,
    /// The termination reason (shown, not acted on).
    pub reason: Option<String>,
    /// The manager's email (passed to the runbook input `manager_input`).
    pub manager: Option<String>,
    /// The service desk ticket of the departure.
    pub ticket: Option<String>,
    /// The employment status (`Inactive`/`Terminated` without a date is refused as incomplete).
    pub status: Option<String>,
}

/// The runbook's `[intake.<source>]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Where each fact is (see [`FieldMap`]).
    #[serde(default)]
    pub fields: FieldMap,
    /// Termination type values (compared case-insensitively) that mean voluntary.
    #[serde(default)]
    pub voluntary: Vec<String>,
    /// Termination type values that mean involuntary.
    #[serde(default)]
    pub involuntary: Vec<String>,
    /// The type of a departure whose termination type is missing or not in either list.
    /// Without it such an event is refused (exit 2).
    pub default_type: Option<DepartureType>,
    /// Local time of day (`HH:MM`) on the termination date at which the departure takes effect
    /// (default `00:00`, the start of that day).
    pub cut_at: Option<String>,
    /// The UTC offset the dates are in (`+01:00`; default `+00:00`).
    pub utc_offset: Option<String>,
    /// The runbook `[inputs]` name that receives the manager (default `manager`, when declared).
    pub manager_input: Option<String>,
    /// BambooHR: the webhook's private key; HiBob: the webhook secret.
    pub webhook_key: Option<SecretRef>,
    /// Personio, Rippling: the static token the vendor sends in `Authorization`.
    pub webhook_token: Option<SecretRef>,
    /// BambooHR: how old (seconds) a signed timestamp may be (default 300).
    pub replay_window_secs: Option<u64>,
    /// BambooHR polling: the company subdomain (`acme` for acme.bamboohr.com).
    pub company: Option<String>,
    /// BambooHR polling: the API base instead of `https://<company>.bamboohr.com`.
    pub base_url: Option<String>,
    /// BambooHR polling: the API key.
    pub api_key: Option<SecretRef>,
}

impl SourceConfig {
    /// The `[intake.<source>]` table of a runbook's intake section (absent: all defaults).
    pub fn from_runbook(
        intake: &BTreeMap<String, toml::Value>,
        source: Source,
    ) -> Result<SourceConfig, IntakeError> {
        match intake.get(source.as_str()) {
            None => Ok(SourceConfig::default()),
            Some(v) => v.clone().try_into().map_err(|e: toml::de::Error| {
                IntakeError::Config(format!("[intake.{}]: {}", source.as_str(), e.message()))
            }),
        }
    }
}

/// Why an event could not become departure facts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntakeError {
    /// Not the shape the vendor sends (not JSON, no known envelope).
    #[error("malformed {0}")]
    Malformed(String),
    /// A termination whose facts are missing or cannot be read.
    #[error("incomplete termination: {0}")]
    Incomplete(String),
    /// The runbook's `[intake]` table is wrong.
    #[error("{0}")]
    Config(String),
}

/// One termination, read out of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Termination {
    pub source: Source,
    /// `<employee id>/<termination date>`: the same termination, however it arrives.
    pub event_id: String,
    pub employee_id: String,
    pub work_email: String,
    pub termination_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_day: Option<NaiveDate>,
    /// When the departure takes effect: the termination date at `cut_at` in `utc_offset`.
    pub effective_at: DateTime<Utc>,
    #[serde(rename = "type")]
    pub departure_type: DepartureType,
    /// The termination type as the HR system wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

/// What an event body holds once read.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Terminations(Vec<Termination>),
    IdsOnly { kind: String, ids: Vec<String> },
    Ignored { kind: String },
}

/// The most an event body may weigh (a Workday report of a large company fits).
pub const MAX_BODY: u64 = 16 * 1024 * 1024;

/// Read the departure facts out of an event body.
pub fn parse(source: Source, body: &[u8], cfg: &SourceConfig) -> Result<Parsed, IntakeError> {
    match source.envelope(body)? {
        Envelope::Records(records) => {
            Ok(Parsed::Terminations(terminations(source, &records, cfg)?))
        }
        Envelope::IdsOnly { kind, ids } => Ok(Parsed::IdsOnly { kind, ids }),
        Envelope::Ignored { kind } => Ok(Parsed::Ignored { kind }),
    }
}

/// The terminations among `records` (records that are not terminations are left out).
pub fn terminations(
    source: Source,
    records: &[Value],
    cfg: &SourceConfig,
) -> Result<Vec<Termination>, IntakeError> {
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if !r.is_object() {
            return Err(IntakeError::Malformed(format!(
                "{} record {}: not a JSON object",
                source.name(),
                i + 1
            )));
        }
        if let Some(t) =
            termination(source, r, cfg).map_err(|e| prefix(e, &format!("record {}", i + 1)))?
        {
            out.push(t);
        }
    }
    Ok(out)
}

fn prefix(e: IntakeError, at: &str) -> IntakeError {
    match e {
        IntakeError::Incomplete(m) => IntakeError::Incomplete(format!("{at}: {m}")),
        IntakeError::Malformed(m) => IntakeError::Malformed(format!("{at}: {m}")),
        other => other,
    }
}

/// Statuses that say a person is gone, whatever their dates.
const GONE: &[&str] = &["inactive", "terminated"];

/// Read one record. `None` when it is not a termination (no termination date and a status that
/// does not say the person left).
pub fn termination(
    source: Source,
    record: &Value,
    cfg: &SourceConfig,
) -> Result<Option<Termination>, IntakeError> {
    let d = source.defaults();
    let f = &cfg.fields;
    let get = |configured: &Option<String>, defaults: &[&str]| -> (String, Option<String>) {
        match configured {
            Some(path) => (path.clone(), text(lookup(record, path))),
            None => {
                for path in defaults {
                    if let Some(v) = text(lookup(record, path)) {
                        return (path.to_string(), Some(v));
                    }
                }
                (defaults.join("` or `"), None)
            }
        }
    };
    let (date_field, date) = get(&f.termination_date, d.termination_date);
    let (last_field, last) = get(&f.last_day, d.last_day);
    let (status_field, status) = get(&f.status, d.status);
    let gone = status
        .as_deref()
        .is_some_and(|s| GONE.contains(&s.trim().to_ascii_lowercase().as_str()));
    let (id_field, id) = get(&f.id, d.id);
    if date.is_none() && last.is_none() {
        if gone {
            return Err(IntakeError::Incomplete(format!(
                "{} says the person left (`{status_field}` is {:?}) but gives no termination date in `{date_field}`",
                source.name(),
                status.unwrap_or_default()
            )));
        }
        return Ok(None);
    }
    let termination_date = match (&date, &last) {
        (Some(s), _) => parse_date(s).ok_or_else(|| {
            IntakeError::Incomplete(format!("`{date_field}` is {s:?}, not a date (YYYY-MM-DD)"))
        })?,
        (None, Some(s)) => parse_date(s).ok_or_else(|| {
            IntakeError::Incomplete(format!("`{last_field}` is {s:?}, not a date (YYYY-MM-DD)"))
        })?,
        (None, None) => unreachable!(),
    };
    let last_day = match &last {
        Some(s) => Some(parse_date(s).ok_or_else(|| {
            IntakeError::Incomplete(format!("`{last_field}` is {s:?}, not a date (YYYY-MM-DD)"))
        })?),
        None => None,
    };
    let (email_field, email) = get(&f.email, d.email);
    let Some(work_email) = email.filter(|e| crate::plan::as_email(e).is_some()) else {
        return Err(IntakeError::Incomplete(format!(
            "no work email in `{email_field}` for the termination of {}",
            id.as_deref().unwrap_or("an unnamed employee")
        )));
    };
    let Some(employee_id) = id.filter(|i| !i.chars().any(char::is_control)) else {
        return Err(IntakeError::Incomplete(format!(
            "no employee id in `{id_field}` for the termination of {work_email}"
        )));
    };
    let (type_field, raw_type) = get(&f.termination_type, d.termination_type);
    let departure_type = departure_type(raw_type.as_deref(), cfg).ok_or_else(|| {
        IntakeError::Incomplete(match &raw_type {
            Some(t) => format!(
                "termination type {t:?} (in `{type_field}`) is neither voluntary nor involuntary; list it under [intake.{}] voluntary = [...] or involuntary = [...]",
                source.as_str()
            ),
            None => format!(
                "no termination type in `{type_field}`; map the field under [intake.{}.fields] type = \"...\" or set default_type",
                source.as_str()
            ),
        })
    })?;
    let effective_at = effective_at(termination_date, cfg)?;
    let (_, reason) = get(&f.reason, d.reason);
    let (_, manager) = get(&f.manager, d.manager);
    let ticket = f.ticket.as_ref().and_then(|p| text(lookup(record, p)));
    Ok(Some(Termination {
        source,
        event_id: format!("{employee_id}/{termination_date}"),
        employee_id,
        work_email,
        termination_date,
        last_day,
        effective_at,
        departure_type,
        termination_type: raw_type,
        reason,
        manager,
        ticket,
    }))
}

/// Values (lower case) that mean voluntary / involuntary when the runbook does not say.
const VOLUNTARY: &[&str] = &["voluntary", "resignation", "resigned", "quit", "retirement"];
const INVOLUNTARY: &[&str] = &[
    "involuntary",
    "dismissal",
    "dismissed",
    "fired",
    "termination",
    "terminated",
    "redundancy",
    "layoff",
];

/// The runbook's lists first, then the built-in words, then anything that says "involuntary"
/// or "voluntary" (Workday categories such as `Terminate_Employee_Involuntary`), then the
/// runbook's `default_type`.
pub fn departure_type(raw: Option<&str>, cfg: &SourceConfig) -> Option<DepartureType> {
    let listed = |list: &[String], v: &str| list.iter().any(|x| x.trim().eq_ignore_ascii_case(v));
    if let Some(raw) = raw {
        let v = raw.trim();
        let lower = v.to_ascii_lowercase();
        if listed(&cfg.involuntary, v) {
            return Some(DepartureType::Involuntary);
        }
        if listed(&cfg.voluntary, v) {
            return Some(DepartureType::Voluntary);
        }
        if INVOLUNTARY.contains(&lower.as_str()) {
            return Some(DepartureType::Involuntary);
        }
        if VOLUNTARY.contains(&lower.as_str()) {
            return Some(DepartureType::Voluntary);
        }
        if lower.contains("involuntary") {
            return Some(DepartureType::Involuntary);
        }
        if lower.contains("voluntary") {
            return Some(DepartureType::Voluntary);
        }
    }
    cfg.default_type
}

/// The termination date at `cut_at` in `utc_offset`.
pub fn effective_at(date: NaiveDate, cfg: &SourceConfig) -> Result<DateTime<Utc>, IntakeError> {
    let time = match cfg.cut_at.as_deref() {
        None => NaiveTime::MIN,
        Some(s) => NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| {
            IntakeError::Config(format!(
                "[intake] cut_at {s:?} is not a time of day (HH:MM)"
            ))
        })?,
    };
    let offset = match cfg.utc_offset.as_deref() {
        None => chrono::FixedOffset::east_opt(0).expect("zero offset"),
        Some(s) => s.parse::<chrono::FixedOffset>().map_err(|_| {
            IntakeError::Config(format!(
                "[intake] utc_offset {s:?} is not an offset like +01:00"
            ))
        })?,
    };
    date.and_time(time)
        .and_local_timezone(offset)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| IntakeError::Config(format!("{date} {time} has no single instant")))
}

/// A value at `path`: the key itself first (`root.email` may be a flat key), then the dotted
/// path. A BambooHR field-based value `{ "value": … }` is unwrapped.
pub fn lookup<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    let found = record
        .get(path)
        .or_else(|| path.split('.').try_fold(record, |v, key| v.get(key)))?;
    match found {
        Value::Object(m) if m.contains_key("value") => m.get("value"),
        v => Some(v),
    }
}

/// A value as text: strings trimmed (empty is none), numbers as written; anything else is none.
pub fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `YYYY-MM-DD`, an RFC 3339 time (its date), or `DD/MM/YYYY` (HiBob's rendered dates).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if s.starts_with("0000-00-00") {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .or_else(|| DateTime::parse_from_rfc3339(s).ok().map(|t| t.date_naive()))
        .or_else(|| {
            s.get(..10)
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        })
        .or_else(|| NaiveDate::parse_from_str(s, "%d/%m/%Y").ok())
}

/// Parse a body as JSON, or say what it is not.
pub fn json(source: Source, body: &[u8]) -> Result<Value, IntakeError> {
    serde_json::from_slice(body)
        .map_err(|e| IntakeError::Malformed(format!("{} event: not JSON ({e})", source.name())))
}

/// The departure's record of the event it came from, frozen into its facts (and so its journal
/// and evidence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IntakeRef {
    /// `bamboohr`, `hibob`, `personio`, `rippling` or `workday`.
    pub source: String,
    /// `<employee id>/<termination date>`.
    pub event_id: String,
    /// `sha256:<hex>` of the event body exactly as received.
    pub sha256: String,
    /// How the body was authenticated: `hmac-sha256`, `hmac-sha512`, `token`, or `none`.
    pub authenticated: String,
    /// When the departure was recorded as scheduled, if it was (its effective time was ahead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_type_maps_through_the_runbook_then_the_built_in_words_then_the_default() {
        let mut cfg = SourceConfig::default();
        assert_eq!(
            departure_type(Some("QUIT"), &cfg),
            Some(DepartureType::Voluntary)
        );
        assert_eq!(
            departure_type(Some("Terminate_Employee_Involuntary"), &cfg),
            Some(DepartureType::Involuntary)
        );
        assert_eq!(departure_type(Some("mutual"), &cfg), None);
        assert_eq!(departure_type(None, &cfg), None);
        cfg.voluntary = vec!["Mutual".into()];
        cfg.involuntary = vec!["Resignation".into()];
        assert_eq!(
            departure_type(Some("mutual"), &cfg),
            Some(DepartureType::Voluntary)
        );
        // The runbook wins over the built-in words.
        assert_eq!(
            departure_type(Some("resignation"), &cfg),
            Some(DepartureType::Involuntary)
        );
        cfg.default_type = Some(DepartureType::Involuntary);
        assert_eq!(
            departure_type(Some("other"), &cfg),
            Some(DepartureType::Involuntary)
        );
    }

    #[test]
    fn the_effective_time_is_the_date_at_cut_at_in_the_offset() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        let cfg = SourceConfig::default();
        assert_eq!(
            effective_at(d, &cfg).unwrap().to_rfc3339(),
            "2026-12-04T00:00:00+00:00"
        );
        let cfg = SourceConfig {
            cut_at: Some("17:30".into()),
            utc_offset: Some("+01:00".into()),
            ..Default::default()
        };
        assert_eq!(
            effective_at(d, &cfg).unwrap().to_rfc3339(),
            "2026-12-04T16:30:00+00:00"
        );
        let bad = SourceConfig {
            cut_at: Some("5pm".into()),
            ..Default::default()
        };
        assert!(matches!(effective_at(d, &bad), Err(IntakeError::Config(_))));
    }

    #[test]
    fn lookup_reads_flat_keys_dotted_paths_and_bamboohr_value_objects() {
        let r = json!({"root.email": "a@x.example", "internal": {"terminationDate": "2026-12-01"}, "workEmail": {"value": "b@x.example"}, "n": 7, "e": "  "});
        assert_eq!(
            text(lookup(&r, "root.email")).as_deref(),
            Some("a@x.example")
        );
        assert_eq!(
            text(lookup(&r, "internal.terminationDate")).as_deref(),
            Some("2026-12-01")
        );
        assert_eq!(
            text(lookup(&r, "workEmail")).as_deref(),
            Some("b@x.example")
        );
        assert_eq!(text(lookup(&r, "n")).as_deref(), Some("7"));
        assert_eq!(text(lookup(&r, "e")), None);
        assert_eq!(text(lookup(&r, "missing.path")), None);
    }

    #[test]
    fn dates_in_the_shapes_vendors_send() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 4);
        assert_eq!(parse_date("2026-12-04"), d);
        assert_eq!(parse_date("2026-12-04T00:00:00Z"), d);
        assert_eq!(parse_date("2026-12-04T00:00:00.000-08:00"), d);
        assert_eq!(parse_date("04/12/2026"), d);
        assert_eq!(parse_date("0000-00-00"), None);
        assert_eq!(parse_date("soon"), None);
    }

    #[test]
    fn a_record_with_a_status_of_gone_but_no_date_is_incomplete_and_one_without_either_is_skipped()
    {
        let cfg = SourceConfig::default();
        let active = json!({"id": "1", "workEmail": "a@x.example", "status": "Active"});
        assert_eq!(termination(Source::Bamboohr, &active, &cfg).unwrap(), None);
        let gone = json!({"id": "1", "workEmail": "a@x.example", "status": "Inactive"});
        let e = termination(Source::Bamboohr, &gone, &cfg).unwrap_err();
        assert!(
            matches!(e, IntakeError::Incomplete(ref m) if m.contains("terminationDate")),
            "{e}"
        );
    }

    #[test]
    fn a_configured_field_replaces_the_defaults() {
        let cfg: SourceConfig = toml::from_str(
            r#"
            default_type = "voluntary"
            [fields]
            email = "customFields.corpEmail"
            ticket = "customFields.ticket"
            "#,
        )
        .unwrap();
        let r = json!({"id": 9, "workEmail": "wrong@x.example", "terminationDate": "2026-12-01", "customFields": {"corpEmail": "right@x.example", "ticket": "HR-7"}});
        let t = termination(Source::Bamboohr, &r, &cfg).unwrap().unwrap();
        assert_eq!(t.work_email, "right@x.example");
        assert_eq!(t.ticket.as_deref(), Some("HR-7"));
        assert_eq!(t.event_id, "9/2026-12-01");
        assert_eq!(t.departure_type, DepartureType::Voluntary);
        let bad: Result<SourceConfig, _> = toml::from_str("[fields]\nemial = \"x\"");
        assert!(bad.is_err());
    }
}
