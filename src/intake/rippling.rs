//! Rippling (providers.md §11.2): a v1 `Employee` record (`roleState`, `endDate`, `workEmail`,
//! `manager` as an employee id), a Workflow Studio "Trigger a webhook" JSON body whose keys the
//! tenant chooses (read with the same defaults: `email`, `endDate`…), and the partner webhook,
//! form-encoded (`event_name=…&id=…`), which names the employee only. The v1 schema has no
//! termination type, so map one (`[intake.rippling.fields] type = "customFields.…"`) or set
//! `default_type`. Rippling signs nothing: a static `Authorization: Bearer` token at most.

use super::{Defaults, Envelope, IntakeError, Source};

pub const DEFAULTS: Defaults = Defaults {
    id: &["id", "employeeId"],
    email: &["workEmail", "email"],
    termination_date: &["endDate"],
    last_day: &["lastDay"],
    termination_type: &["terminationType", "customFields.termination_type"],
    reason: &["terminationReason"],
    manager: &["managerEmail", "manager"],
    status: &["roleState"],
};

const TERMINATED: &[&str] = &["employee.terminated", "employee.deleted"];

pub fn envelope(body: &[u8]) -> Result<Envelope, IntakeError> {
    let trimmed = body.trim_ascii();
    if !trimmed.starts_with(b"{") && !trimmed.starts_with(b"[") {
        return form(trimmed);
    }
    let v = super::json(Source::Rippling, body)?;
    if let Some(list) = v.get("results").or_else(|| v.as_array().map(|_| &v)) {
        let list = list.as_array().ok_or_else(|| {
            IntakeError::Malformed("Rippling response: `results` is not a list".into())
        })?;
        return Ok(Envelope::Records(list.clone()));
    }
    if v.is_object() {
        return Ok(Envelope::Records(vec![v]));
    }
    Err(IntakeError::Malformed(
        "Rippling body: not an object".into(),
    ))
}

/// The partner webhook: `event_name`, `id`, `company_id`, `company_primary_email`.
fn form(body: &[u8]) -> Result<Envelope, IntakeError> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let Some(kind) = get("event_name") else {
        return Err(IntakeError::Malformed(
            "Rippling body: neither JSON nor a form with event_name".into(),
        ));
    };
    if !TERMINATED.contains(&kind.as_str()) {
        return Ok(Envelope::Ignored { kind });
    }
    let id = get("id")
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| IntakeError::Malformed(format!("Rippling event {kind}: no id")))?;
    Ok(Envelope::IdsOnly {
        kind,
        ids: vec![id],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::departure::DepartureType;
    use crate::intake::{Parsed, SourceConfig, parse};

    const EMPLOYEE: &[u8] = include_bytes!("../../tests/fixtures/intake/rippling-employee.json");
    const WORKFLOW: &[u8] = include_bytes!("../../tests/fixtures/intake/rippling-workflow.json");
    const PARTNER: &[u8] = include_bytes!("../../tests/fixtures/intake/rippling-partner.form");

    #[test]
    fn a_v1_employee_and_a_workflow_body_are_read() {
        let Parsed::Terminations(t) =
            parse(Source::Rippling, EMPLOYEE, &SourceConfig::default()).unwrap()
        else {
            panic!()
        };
        assert_eq!(t[0].work_email, "ravi.nair@corp.example");
        assert_eq!(t[0].departure_type, DepartureType::Involuntary);
        assert_eq!(t[0].event_id, "5f2a91c0d/2026-12-02");
        let Parsed::Terminations(t) =
            parse(Source::Rippling, WORKFLOW, &SourceConfig::default()).unwrap()
        else {
            panic!()
        };
        assert_eq!(t[0].work_email, "tess.lund@corp.example");
        assert_eq!(t[0].departure_type, DepartureType::Voluntary);
        assert_eq!(t[0].manager.as_deref(), Some("ann.cole@corp.example"));
    }

    #[test]
    fn the_partner_form_names_the_employee_only() {
        assert_eq!(
            parse(Source::Rippling, PARTNER, &SourceConfig::default()).unwrap(),
            Parsed::IdsOnly {
                kind: "employee.terminated".into(),
                ids: vec!["5f2a91c0d".into()]
            }
        );
        let e = parse(Source::Rippling, b"hello", &SourceConfig::default()).unwrap_err();
        assert!(matches!(e, IntakeError::Malformed(_)), "{e}");
    }

    #[test]
    fn a_terminated_employee_without_an_end_date_is_incomplete() {
        let body = br#"{"id":"1","workEmail":"a@x.example","roleState":"TERMINATED"}"#;
        let e = parse(Source::Rippling, body, &SourceConfig::default()).unwrap_err();
        assert!(
            matches!(e, IntakeError::Incomplete(ref m) if m.contains("endDate")),
            "{e}"
        );
    }
}
