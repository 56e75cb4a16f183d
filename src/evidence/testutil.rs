//! Test helpers: a realistic departure journal.

use std::collections::BTreeMap;
use std::path::Path;

use crate::departure::{
    Answer, AutomatedStep, DepartureFacts, DepartureType, PlannedStep, RunbookRef,
};
use crate::journal::{Journal, Record};
use crate::providers::{RequestLine, RequestRecord};
use crate::runbook::{Lane, Phase, SecretRef, SystemDef};

pub const ID: &str = "20261123t100000-alice-corp-example-3f9a";

pub fn facts() -> DepartureFacts {
    let mut systems = BTreeMap::new();
    systems.insert(
        "okta".to_string(),
        SystemDef {
            kind: "scim".into(),
            base_url: Some("https://okta.example/scim/v2".into()),
            token: Some(SecretRef::Env {
                env: "OKTA_TOKEN".into(),
            }),
            max_concurrency: None,
            rate_limit: None,
            user: None,
            timeout_secs: None,
            step_timeout_secs: None,
            settings: BTreeMap::new(),
        },
    );
    DepartureFacts {
        id: ID.into(),
        user: "alice@corp.example".into(),
        email: Some("alice@corp.example".into()),
        departure_type: DepartureType::Involuntary,
        effective_at: "2026-11-23T10:00:00Z".into(),
        ticket: Some("HR-1234".into()),
        legal_hold: false,
        inputs: BTreeMap::from([("manager".to_string(), "bob@corp.example".to_string())]),
        runbook: RunbookRef {
            name: "okta-google".into(),
            path: "runbooks/okta-google.toml".into(),
            sha256: "ab".repeat(32),
        },
        systems,
        steps: vec![
            PlannedStep {
                id: "okta-deactivate".into(),
                lane: Lane::It,
                phase: Phase::Cut,
                wave: 0,
                description: Some("Deactivate the Okta user".into()),
                automated: Some(AutomatedStep {
                    system: "okta".into(),
                    kind: "scim".into(),
                    action: "deactivate_user".into(),
                    login: "alice@corp.example".into(),
                    params: serde_json::Map::new(),
                    destructive: false,
                    revokes: true,
                    requests: vec![RequestLine {
                        method: "PATCH".into(),
                        url: "https://okta.example/scim/v2/Users/{id}".into(),
                    }],
                }),
                manual: None,
                fields: vec![],
                owner: Some("it".into()),
                deadline: Some("2026-11-23T11:00:00Z".into()),
                escalate_to: None,
                after: vec![],
                alerts_user: false,
                held: false,
                asset: None,
                on_overdue_of: None,
            },
            PlannedStep {
                id: "collect-laptop".into(),
                lane: Lane::Facilities,
                phase: Phase::Recover,
                wave: 1,
                description: None,
                automated: None,
                manual: Some("Collect the laptop from alice@corp.example".into()),
                fields: vec!["asset_tag".into()],
                owner: Some("facilities@corp.example".into()),
                deadline: Some("2026-11-30T17:00:00Z".into()),
                escalate_to: None,
                after: vec!["okta-deactivate".into()],
                alerts_user: true,
                held: false,
                asset: None,
                on_overdue_of: None,
            },
        ],
        tool: "offboard 0.1.0".into(),
        previous: None,
        ticketing: None,
        intake: None,
        approval: None,
    }
}

/// A journal for [`facts`] with the automated step done and the manual one confirmed.
pub fn journal(dir: &Path) -> Journal {
    let mut j = Journal::create(
        &dir.join(crate::journal::JOURNAL_FILE),
        "admin@host".into(),
        Record::DepartureStarted(Box::new(facts())),
    )
    .unwrap();
    j.append(
        None,
        Record::RunStarted {
            command: "start".into(),
        },
    )
    .unwrap();
    j.append(Some("okta-deactivate"), Record::ApplyStarted { attempt: 1 })
        .unwrap();
    j.append(
        Some("okta-deactivate"),
        Record::Applied {
            changed: true,
            summary: "deactivated user 2819c223 (active: true → false)".into(),
            requests: vec![RequestRecord {
                method: "PATCH".into(),
                url: "https://okta.example/scim/v2/Users/2819c223".into(),
                status: 200,
            }],
            account: Some(offboard_account()),
            licences_freed: None,
        },
    )
    .unwrap();
    j.append(
        Some("okta-deactivate"),
        Record::Checked {
            revoked: true,
            observed: "active=false".into(),
            context: "run".into(),
            account: Some(offboard_account()),
        },
    )
    .unwrap();
    j.set_actor("facilities@host".into());
    j.append(
        Some("collect-laptop"),
        Record::Answered {
            answer: Answer::Done,
            note: Some("handed in at reception".into()),
            fields: BTreeMap::from([("asset_tag".to_string(), "LT-0042".to_string())]),
        },
    )
    .unwrap();
    j.append(None, Record::RunFinished { complete: true })
        .unwrap();
    j
}

fn offboard_account() -> crate::providers::Account {
    crate::providers::Account::new("2819c223", "SCIM id", "alice@corp.example")
}
