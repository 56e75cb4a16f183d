//! Personio API v2 (providers.md §11.5): employments as `GET /v2/persons/{id}/employments`
//! returns them (`{_data:[{id, status, termination:{type, reason, termination_date,
//! last_working_date}}]}`) or one employment object, and the webhook envelope
//! (`{company_id, event_name, occurred_at, payload}`), which is dataless: it names ids only.
//!
//! The employment carries no email: the person's `email` must be in the record (an export that
//! joins person and employment, mapped with `[intake.personio.fields] email = "…"`). A manager
//! field is UNCONFIRMED, so none is read by default. Personio signs nothing: deliveries carry
//! the configured token verbatim in `Authorization` ([`super::signature`]).

use serde_json::Value;

use super::{Defaults, Envelope, IntakeError, Source};

pub const DEFAULTS: Defaults = Defaults {
    id: &["id"],
    email: &["email", "person.email"],
    termination_date: &["termination.termination_date"],
    last_day: &["termination.last_working_date"],
    termination_type: &["termination.type"],
    reason: &["termination.reason"],
    manager: &[],
    status: &["status"],
};

const TERMINATED: &[&str] = &["employment.terminated", "employment.updated"];

pub fn envelope(body: &[u8]) -> Result<Envelope, IntakeError> {
    let v = super::json(Source::Personio, body)?;
    if let Some(list) = v.get("_data") {
        let list = list.as_array().ok_or_else(|| {
            IntakeError::Malformed("Personio response: `_data` is not a list".into())
        })?;
        return Ok(Envelope::Records(list.clone()));
    }
    if let Some(kind) = v.get("event_name").and_then(Value::as_str) {
        if !TERMINATED.contains(&kind) {
            return Ok(Envelope::Ignored { kind: kind.into() });
        }
        let payload = v.get("payload").cloned().unwrap_or(Value::Null);
        let id = super::text(payload.get("employment_id"))
            .or_else(|| super::text(payload.get("id")))
            .ok_or_else(|| {
                IntakeError::Malformed(format!("Personio event {kind}: no payload.employment_id"))
            })?;
        return Ok(Envelope::IdsOnly {
            kind: kind.into(),
            ids: vec![id],
        });
    }
    if v.is_object() && v.get("id").is_some() {
        return Ok(Envelope::Records(vec![v]));
    }
    Err(IntakeError::Malformed(
        "Personio body: neither a webhook (`event_name`) nor employments (`_data`)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::departure::DepartureType;
    use crate::intake::{Parsed, SourceConfig, parse};

    const EMPLOYMENTS: &[u8] =
        include_bytes!("../../tests/fixtures/intake/personio-employments.json");
    const TERMINATED_EVENT: &[u8] =
        include_bytes!("../../tests/fixtures/intake/personio-terminated.json");

    #[test]
    fn an_employment_with_a_termination_is_read() {
        let Parsed::Terminations(t) =
            parse(Source::Personio, EMPLOYMENTS, &SourceConfig::default()).unwrap()
        else {
            panic!()
        };
        assert_eq!(t[0].work_email, "lena.vogt@corp.example");
        assert_eq!(t[0].departure_type, DepartureType::Voluntary);
        assert_eq!(t[0].termination_date.to_string(), "2026-12-31");
        assert_eq!(
            t[0].last_day.map(|d| d.to_string()).as_deref(),
            Some("2026-12-19")
        );
        assert_eq!(t[0].event_id, "88213/2026-12-31");
    }

    #[test]
    fn the_webhook_is_dataless() {
        assert_eq!(
            parse(Source::Personio, TERMINATED_EVENT, &SourceConfig::default()).unwrap(),
            Parsed::IdsOnly {
                kind: "employment.terminated".into(),
                ids: vec!["88213".into()]
            }
        );
        assert!(matches!(
            parse(
                Source::Personio,
                br#"{"event_name":"person.created","payload":{}}"#,
                &SourceConfig::default()
            )
            .unwrap(),
            Parsed::Ignored { .. }
        ));
    }
}
