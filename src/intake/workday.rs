//! Workday (providers.md §11.3): a RaaS custom report as JSON (`{Report_Entry:[…]}`) or one
//! report row. Report field names are whatever the report defines: the defaults follow the
//! common examples (`Employee_ID`, `Email_Address`, `Termination_Date`, `Last_Day_of_Work`,
//! `Primary_Termination_Category`, `User_Manager_Email_Address`), and each company maps its own
//! in `[intake.workday.fields]`. Workday has no webhook signature (nor JSON webhook).

use super::{Defaults, Envelope, IntakeError, Source};

pub const DEFAULTS: Defaults = Defaults {
    id: &["Employee_ID", "Worker_ID"],
    email: &["Email_Address", "Work_Email", "Email"],
    termination_date: &["Termination_Date"],
    last_day: &["Last_Day_of_Work"],
    termination_type: &["Primary_Termination_Category", "Termination_Category"],
    reason: &["Primary_Termination_Reason", "Termination_Reason"],
    manager: &["User_Manager_Email_Address", "Manager_Email"],
    status: &["Employment_Status"],
};

pub fn envelope(body: &[u8]) -> Result<Envelope, IntakeError> {
    let v = super::json(Source::Workday, body)?;
    if let Some(list) = v.get("Report_Entry") {
        let list = list.as_array().ok_or_else(|| {
            IntakeError::Malformed("Workday report: `Report_Entry` is not a list".into())
        })?;
        return Ok(Envelope::Records(list.clone()));
    }
    if v.is_object() {
        return Ok(Envelope::Records(vec![v]));
    }
    Err(IntakeError::Malformed(
        "Workday body: neither a report (`Report_Entry`) nor a row".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::departure::DepartureType;
    use crate::intake::{Parsed, SourceConfig, parse};

    const RAAS: &[u8] = include_bytes!("../../tests/fixtures/intake/workday-raas.json");

    #[test]
    fn a_report_yields_its_terminated_rows() {
        let Parsed::Terminations(t) =
            parse(Source::Workday, RAAS, &SourceConfig::default()).unwrap()
        else {
            panic!()
        };
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].work_email, "yuki.sato@corp.example");
        assert_eq!(t[0].departure_type, DepartureType::Involuntary);
        assert_eq!(t[0].manager.as_deref(), Some("eve.long@corp.example"));
        assert_eq!(
            t[0].last_day.map(|d| d.to_string()).as_deref(),
            Some("2026-12-03")
        );
    }

    #[test]
    fn a_company_report_is_read_through_its_field_map() {
        let body = br#"{"Report_Entry":[{"Worker":"W-1","Corp_Email":"a@x.example","End":"2026-12-10","Why":"Voluntary_Resignation"}]}"#;
        let cfg: SourceConfig = toml::from_str(
            "[fields]\nid = \"Worker\"\nemail = \"Corp_Email\"\ntermination_date = \"End\"\ntype = \"Why\"\n",
        )
        .unwrap();
        let Parsed::Terminations(t) = parse(Source::Workday, body, &cfg).unwrap() else {
            panic!()
        };
        assert_eq!(t[0].event_id, "W-1/2026-12-10");
        assert_eq!(t[0].departure_type, DepartureType::Voluntary);
        // Without the map the same report has no termination date where the defaults look.
        let Parsed::Terminations(none) =
            parse(Source::Workday, body, &SourceConfig::default()).unwrap()
        else {
            panic!()
        };
        assert!(none.is_empty());
    }
}
