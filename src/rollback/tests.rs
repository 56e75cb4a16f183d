use super::*;
use crate::evidence::testutil;
use crate::journal::Journal;

fn approvals(roles: &[Role]) -> ApprovalsDef {
    ApprovalsDef {
        allowed_signers: "approvers".into(),
        all: Vec::new(),
        destructive: Vec::new(),
        involuntary: Vec::new(),
        steps: BTreeMap::new(),
        rollback: roles.to_vec(),
    }
}

fn undo_of<'a>(p: &'a RollbackPayload, step: &str) -> &'a UndoStep {
    p.undo.iter().find(|u| u.step == step).unwrap()
}

#[test]
fn an_apply_without_a_pre_state_is_not_restorable_and_a_done_manual_step_is_undone_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let j = testutil::journal(dir.path());
    let p = plan(j.events(), None).unwrap();
    assert!(p.cancel.is_empty());
    let d = undo_of(&p, "okta-deactivate");
    assert_eq!(
        d.undo,
        Undo::NotRestorable {
            why: NO_PRE_STATE.into()
        }
    );
    let m = undo_of(&p, "collect-laptop");
    assert!(
        matches!(&m.undo, Undo::ByHand { instruction } if instruction.contains("Collect the laptop")),
        "{m:?}"
    );
    assert_eq!(m.owner.as_deref(), Some("facilities@corp.example"));
    // Newest first: the laptop was confirmed after the deactivation was applied.
    assert_eq!(p.undo[0].step, "collect-laptop");
}

#[test]
fn a_recorded_pre_state_makes_a_restore_that_needs_the_rollback_roles() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = testutil::journal(dir.path());
    let before = serde_json::json!({"active": true});
    j.append(
        Some("okta-deactivate"),
        Record::Before {
            state: before.clone(),
        },
    )
    .unwrap();
    let p = plan(j.events(), Some(&approvals(&[Role::Security]))).unwrap();
    let d = undo_of(&p, "okta-deactivate");
    assert!(matches!(d.undo, Undo::Restore { .. }), "{d:?}");
    assert_eq!(d.before.as_ref(), Some(&before));
    assert_eq!(d.account.as_ref().unwrap().id, "2819c223");
    assert_eq!(d.requires, vec![Role::Security]);
    // Nothing to approve for what only a person undoes.
    assert!(undo_of(&p, "collect-laptop").requires.is_empty());
}

#[test]
fn a_step_that_changed_nothing_has_nothing_to_undo() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::create(
        &dir.path().join(crate::journal::JOURNAL_FILE),
        "admin@host".into(),
        Record::DepartureStarted(Box::new(testutil::facts())),
    )
    .unwrap();
    j.append(Some("okta-deactivate"), Record::ApplyStarted { attempt: 1 })
        .unwrap();
    j.append(
        Some("okta-deactivate"),
        Record::Before {
            state: serde_json::json!({"active": false}),
        },
    )
    .unwrap();
    j.append(
        Some("okta-deactivate"),
        Record::Applied {
            changed: false,
            summary: "already inactive".into(),
            requests: Vec::new(),
            account: Some(Account::new("u1", "SCIM id", "alice")),
            licences_freed: None,
        },
    )
    .unwrap();
    let p = plan(j.events(), None).unwrap();
    assert_eq!(
        undo_of(&p, "okta-deactivate").undo,
        Undo::NotRestorable {
            why: NOTHING_CHANGED.into()
        }
    );
    // Unconfirmed and the manual step pending: both are cancelled first.
    let cancel: Vec<&str> = p.cancel.iter().map(|c| c.step.as_str()).collect();
    assert_eq!(cancel, ["okta-deactivate", "collect-laptop"]);
}

#[test]
fn the_digest_covers_the_journal_head_and_every_pre_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = testutil::journal(dir.path());
    j.append(
        Some("okta-deactivate"),
        Record::Before {
            state: serde_json::json!({"active": true}),
        },
    )
    .unwrap();
    let a = plan(j.events(), None).unwrap();
    assert_eq!(a.digest(), plan(j.events(), None).unwrap().digest());
    // A pre-state edited in the plan file changes the digest.
    let mut edited = a.clone();
    edited.undo[1].before = Some(serde_json::json!({"active": false}));
    assert_ne!(edited.digest(), a.digest());
    assert_eq!(a.differences(&edited), ["undo of okta-deactivate: changed"]);
    // Roles required change it too.
    let with_roles = plan(j.events(), Some(&approvals(&[Role::Hr]))).unwrap();
    assert_ne!(with_roles.digest(), a.digest());
    // Any event appended to the journal makes it another plan.
    j.append(None, Record::HoldPlaced { reason: "x".into() })
        .unwrap();
    let b = plan(j.events(), None).unwrap();
    assert_ne!(a.digest(), b.digest());
    assert!(
        a.differences(&b)[0].contains("journal changed since the plan was made"),
        "{:?}",
        a.differences(&b)
    );
}

#[test]
fn a_journaled_rollback_replays_and_a_tampered_digest_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = testutil::journal(dir.path());
    j.append(
        Some("okta-deactivate"),
        Record::Before {
            state: serde_json::json!({"active": true}),
        },
    )
    .unwrap();
    let p = plan(j.events(), None).unwrap();
    let gate = RollbackGate {
        digest: p.digest(),
        plan_file: "/x/rollback.json".into(),
        allowed_signers: String::new(),
        plan: p.clone(),
    };
    j.append(None, Record::RollbackStarted(Box::new(gate.clone())))
        .unwrap();
    let run = RollbackRun::replay(j.events()).unwrap();
    assert!(!run.is_complete());
    let d = undo_of(&p, "okta-deactivate");
    assert_eq!(run.outcome(d), "pending");
    j.append(
        Some("okta-deactivate"),
        Record::Restored {
            changed: true,
            summary: "restored".into(),
            requests: Vec::new(),
            account: None,
        },
    )
    .unwrap();
    assert!(run.state("okta-deactivate").restored.is_none());
    let run = RollbackRun::replay(j.events()).unwrap();
    assert!(run.state("okta-deactivate").attempted());
    assert!(!run.state("okta-deactivate").is_settled());
    j.append(
        Some("okta-deactivate"),
        Record::RestoreChecked {
            after: serde_json::json!({"active": true}),
            restored: true,
            observed: "active=true".into(),
            account: None,
        },
    )
    .unwrap();
    let run = RollbackRun::replay(j.events()).unwrap();
    assert_eq!(run.outcome(d), "restored");
    assert!(run.is_complete());
    assert_eq!(verify_recorded(j.events()), Ok(()));
    // The restore records leave the departure's own step status alone.
    let state = DepartureState::replay(j.events()).unwrap();
    assert_eq!(state.steps["okta-deactivate"].status(), Status::Done);

    // A journal whose rollback digest does not match its plan fails verification.
    let dir2 = tempfile::tempdir().unwrap();
    let mut k = testutil::journal(dir2.path());
    let mut bad = gate;
    bad.plan = plan(k.events(), None).unwrap();
    bad.digest = "00".repeat(32);
    k.append(None, Record::RollbackStarted(Box::new(bad)))
        .unwrap();
    let err = verify_recorded(k.events()).unwrap_err();
    assert!(err.contains("not to its digest"), "{err}");
    // A plan made from another journal (here: before the hold) does not belong to this one.
    let dir3 = tempfile::tempdir().unwrap();
    let mut m = testutil::journal(dir3.path());
    let early = plan(m.events(), None).unwrap();
    m.append(None, Record::HoldPlaced { reason: "x".into() })
        .unwrap();
    let stale = RollbackGate {
        digest: early.digest(),
        plan_file: "/x/rollback.json".into(),
        allowed_signers: String::new(),
        plan: early,
    };
    m.append(None, Record::RollbackStarted(Box::new(stale)))
        .unwrap();
    let err = verify_recorded(m.events()).unwrap_err();
    assert!(err.contains("another journal"), "{err}");
    // As journaled: kind names.
    let line = serde_json::to_value(&j.events()[j.events().len() - 1]).unwrap();
    assert_eq!(line["kind"], "restore_checked");
}
