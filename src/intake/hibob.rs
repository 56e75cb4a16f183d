//! HiBob (providers.md §11.4): people records as `POST /v1/people/search` returns them
//! (`{employees:[…]}`, nested objects or flat `internal.terminationDate` keys), a single
//! record, and the v2 webhook envelope (`{companyId, type, triggeredBy, triggeredAt, version,
//! data}`), which holds identifiers only. The `data` keys of `employee.left` are UNCONFIRMED
//! (`employeeId` is read, then `id`). Bob's test delivery `Ping test` is ignored.

use serde_json::Value;

use super::{Defaults, Envelope, IntakeError, Source};

pub const DEFAULTS: Defaults = Defaults {
    id: &["id", "root.id"],
    email: &["email", "root.email"],
    termination_date: &["internal.terminationDate", "employment.terminationDate"],
    last_day: &["employee.lastDayOfWork"],
    termination_type: &["internal.terminationType"],
    reason: &["internal.terminationReason"],
    manager: &["work.reportsTo.email"],
    status: &["internal.status"],
};

/// Lifecycle events that say a person left (`employee.left` fires when the termination, or
/// garden leave, becomes effective).
const LEFT: &[&str] = &["employee.left", "employee.inactivated"];

pub fn envelope(body: &[u8]) -> Result<Envelope, IntakeError> {
    if body.trim_ascii() == b"Ping test" {
        return Ok(Envelope::Ignored {
            kind: "ping".into(),
        });
    }
    let v = super::json(Source::Hibob, body)?;
    if v.get("text").and_then(Value::as_str) == Some("Ping test") {
        return Ok(Envelope::Ignored {
            kind: "ping".into(),
        });
    }
    if let Some(list) = v.get("employees") {
        let list = list.as_array().ok_or_else(|| {
            IntakeError::Malformed("HiBob people: `employees` is not a list".into())
        })?;
        return Ok(Envelope::Records(list.clone()));
    }
    if let (Some(kind), Some(data)) = (v.get("type").and_then(Value::as_str), v.get("data")) {
        if !LEFT.contains(&kind) {
            return Ok(Envelope::Ignored { kind: kind.into() });
        }
        let id = super::text(data.get("employeeId"))
            .or_else(|| super::text(data.get("id")))
            .ok_or_else(|| {
                IntakeError::Malformed(format!("HiBob event {kind}: no data.employeeId"))
            })?;
        return Ok(Envelope::IdsOnly {
            kind: kind.into(),
            ids: vec![id],
        });
    }
    if v.is_object() && v.get("type").is_none() {
        return Ok(Envelope::Records(vec![v]));
    }
    Err(IntakeError::Malformed(
        "HiBob body: neither a webhook (`type` and `data`) nor people (`employees`)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::departure::DepartureType;
    use crate::intake::{Parsed, SourceConfig, parse};

    const PEOPLE: &[u8] = include_bytes!("../../tests/fixtures/intake/hibob-people.json");
    const LEFT_EVENT: &[u8] = include_bytes!("../../tests/fixtures/intake/hibob-left.json");

    #[test]
    fn people_search_yields_the_leaver_with_last_day_and_manager() {
        let Parsed::Terminations(t) =
            parse(Source::Hibob, PEOPLE, &SourceConfig::default()).unwrap()
        else {
            panic!()
        };
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].work_email, "ines.moreau@corp.example");
        assert_eq!(t[0].departure_type, DepartureType::Involuntary);
        assert_eq!(
            t[0].last_day.map(|d| d.to_string()).as_deref(),
            Some("2026-11-27")
        );
        assert_eq!(t[0].manager.as_deref(), Some("paul.grant@corp.example"));
        assert_eq!(t[0].event_id, "3320118/2026-11-30");
    }

    #[test]
    fn the_left_event_names_the_employee_and_a_ping_is_ignored() {
        assert_eq!(
            parse(Source::Hibob, LEFT_EVENT, &SourceConfig::default()).unwrap(),
            Parsed::IdsOnly {
                kind: "employee.left".into(),
                ids: vec!["3320118".into()]
            }
        );
        for ping in [&b"Ping test"[..], br#"{"text":"Ping test"}"#] {
            assert!(matches!(
                parse(Source::Hibob, ping, &SourceConfig::default()).unwrap(),
                Parsed::Ignored { .. }
            ));
        }
        let e = parse(
            Source::Hibob,
            br#"{"type":"employee.left","data":{}}"#,
            &SourceConfig::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("no data.employeeId"), "{e}");
    }
}
