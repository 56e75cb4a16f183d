//! BambooHR (providers.md §11.1): the legacy field-based webhook (`{employees:[{id, action,
//! fields:{alias:{value}}}]}`, values as configured in the webhook's fields), an employee record
//! (`GET /api/v1/employees/{id}?fields=…`), and the event-based webhook (`{type, data:
//! {employeeId}}`), which names the employee only: its record must be fetched (see
//! [`super::poll`]).
//!
//! The termination type lives in the employmentStatus table whose column names are
//! UNCONFIRMED; the default reads a `terminationType` field, and companies map theirs in
//! `[intake.bamboohr.fields]`.

use serde_json::Value;

use super::{Defaults, Envelope, IntakeError, Source};

pub const DEFAULTS: Defaults = Defaults {
    id: &["id", "employeeId"],
    email: &["workEmail"],
    termination_date: &["terminationDate"],
    last_day: &["lastDayOfWork"],
    termination_type: &["terminationType", "terminationTypeId"],
    reason: &["terminationReason", "terminationReasonId"],
    manager: &["supervisorEmail"],
    status: &["status", "employmentHistoryStatus"],
};

/// The fields `poll` asks for on each changed employee.
pub const FETCH_FIELDS: &[&str] = &[
    "workEmail",
    "status",
    "employmentHistoryStatus",
    "terminationDate",
    "terminationType",
    "terminationReason",
    "supervisorEmail",
    "supervisorEId",
];

pub fn envelope(body: &[u8]) -> Result<Envelope, IntakeError> {
    let v = super::json(Source::Bamboohr, body)?;
    if let Some(employees) = v.get("employees") {
        let list = employees.as_array().ok_or_else(|| {
            IntakeError::Malformed("BambooHR webhook: `employees` is not a list".into())
        })?;
        let mut records = Vec::new();
        for (i, e) in list.iter().enumerate() {
            let id = super::text(e.get("id")).ok_or_else(|| {
                IntakeError::Malformed(format!("BambooHR webhook: employee {} has no id", i + 1))
            })?;
            if e.get("action").and_then(Value::as_str) == Some("Deleted") {
                continue;
            }
            let mut record = match e.get("fields") {
                Some(Value::Object(m)) => m.clone(),
                None | Some(Value::Null) => Default::default(),
                Some(_) => {
                    return Err(IntakeError::Malformed(format!(
                        "BambooHR webhook: employee {id}: `fields` is not an object"
                    )));
                }
            };
            record.insert("id".into(), Value::String(id));
            records.push(Value::Object(record));
        }
        return Ok(Envelope::Records(records));
    }
    if let Some(kind) = v.get("type").and_then(Value::as_str) {
        let Some(data) = v.get("data").filter(|d| d.is_object()) else {
            return Err(IntakeError::Malformed(format!(
                "BambooHR event {kind}: no `data` object"
            )));
        };
        if kind != "employee.updated" {
            return Ok(Envelope::Ignored { kind: kind.into() });
        }
        let id = super::text(data.get("employeeId")).ok_or_else(|| {
            IntakeError::Malformed(format!("BambooHR event {kind}: no data.employeeId"))
        })?;
        return Ok(Envelope::IdsOnly {
            kind: kind.into(),
            ids: vec![id],
        });
    }
    if v.is_object() && (v.get("id").is_some() || v.get("workEmail").is_some()) {
        return Ok(Envelope::Records(vec![v]));
    }
    Err(IntakeError::Malformed(
        "BambooHR body: neither a webhook (`employees` or `type`) nor an employee record".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::departure::DepartureType;
    use crate::intake::{Parsed, SourceConfig, parse};

    const FIELDS: &[u8] = include_bytes!("../../tests/fixtures/intake/bamboohr-fields.json");
    const EVENT: &[u8] = include_bytes!("../../tests/fixtures/intake/bamboohr-event.json");
    const EMPLOYEE: &[u8] = include_bytes!("../../tests/fixtures/intake/bamboohr-employee.json");

    #[test]
    fn a_field_based_webhook_yields_its_one_termination() {
        let Parsed::Terminations(t) =
            parse(Source::Bamboohr, FIELDS, &SourceConfig::default()).unwrap()
        else {
            panic!("no terminations")
        };
        assert_eq!(t.len(), 1, "{t:?}");
        let t = &t[0];
        assert_eq!(t.work_email, "dana.reyes@corp.example");
        assert_eq!(t.event_id, "4021/2026-12-01");
        assert_eq!(t.departure_type, DepartureType::Involuntary);
        assert_eq!(t.termination_type.as_deref(), Some("Involuntary"));
        assert_eq!(t.reason.as_deref(), Some("Policy violation"));
        assert_eq!(t.manager.as_deref(), Some("lee.park@corp.example"));
        assert_eq!(t.effective_at.to_rfc3339(), "2026-12-01T00:00:00+00:00");
    }

    #[test]
    fn an_employee_record_with_a_future_termination_is_read() {
        let Parsed::Terminations(t) =
            parse(Source::Bamboohr, EMPLOYEE, &SourceConfig::default()).unwrap()
        else {
            panic!()
        };
        assert_eq!(t[0].work_email, "kim.ash@corp.example");
        assert_eq!(t[0].departure_type, DepartureType::Voluntary);
        assert_eq!(t[0].termination_date.to_string(), "2026-12-18");
    }

    #[test]
    fn an_event_based_webhook_names_the_employee_only() {
        assert_eq!(
            parse(Source::Bamboohr, EVENT, &SourceConfig::default()).unwrap(),
            Parsed::IdsOnly {
                kind: "employee.updated".into(),
                ids: vec!["4021".into()]
            }
        );
        let created = br#"{"type":"employee.created","data":{"employeeId":"1"}}"#;
        assert!(matches!(
            parse(Source::Bamboohr, created, &SourceConfig::default()).unwrap(),
            Parsed::Ignored { .. }
        ));
    }

    #[test]
    fn malformed_and_incomplete_bodies_are_refused_with_what_is_wrong() {
        let cfg = SourceConfig::default();
        for (body, says) in [
            (&b"not json"[..], "not JSON"),
            (br#"{"employees": {}}"#, "not a list"),
            (br#"{"employees": [{"fields": {}}]}"#, "has no id"),
            (br#"{"type": "employee.updated"}"#, "no `data`"),
            (br#"{"hello": 1}"#, "neither"),
        ] {
            let e = parse(Source::Bamboohr, body, &cfg).unwrap_err();
            assert!(matches!(e, IntakeError::Malformed(_)), "{e}");
            assert!(e.to_string().contains(says), "{e}");
        }
        let no_email = br#"{"employees":[{"id":"7","fields":{"terminationDate":{"value":"2026-12-01"},"terminationType":{"value":"Involuntary"}}}]}"#;
        let e = parse(Source::Bamboohr, no_email, &cfg).unwrap_err();
        assert!(
            matches!(e, IntakeError::Incomplete(ref m) if m.contains("no work email") && m.contains("record 1")),
            "{e}"
        );
        let bad_date = br#"{"employees":[{"id":"7","fields":{"workEmail":{"value":"a@x.example"},"terminationDate":{"value":"12/31"}}}]}"#;
        let e = parse(Source::Bamboohr, bad_date, &cfg).unwrap_err();
        assert!(e.to_string().contains("not a date"), "{e}");
        let unmapped = br#"{"employees":[{"id":"7","fields":{"workEmail":{"value":"a@x.example"},"terminationDate":{"value":"2026-12-01"},"terminationType":{"value":"Death"}}}]}"#;
        let e = parse(Source::Bamboohr, unmapped, &cfg).unwrap_err();
        assert!(e.to_string().contains("\"Death\""), "{e}");
    }
}
