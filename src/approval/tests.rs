use super::*;
use crate::evidence::testutil;
use ssh_key::{Algorithm, LineEnding, PrivateKey};

fn key() -> PrivateKey {
    PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519).unwrap()
}

fn sign(k: &PrivateKey, ns: &str, msg: &str) -> String {
    k.sign(ns, HashAlg::Sha512, msg.as_bytes())
        .unwrap()
        .to_pem(LineEnding::LF)
        .unwrap()
}

fn signers(lines: &[(&str, Option<&str>, &PrivateKey)]) -> AllowedSigners {
    let text: String = lines
        .iter()
        .map(|(p, ns, k)| {
            let opt = ns
                .map(|n| format!("namespaces=\"{n}\" "))
                .unwrap_or_default();
            format!("{p} {opt}{}\n", k.public_key().to_openssh().unwrap())
        })
        .collect();
    AllowedSigners::parse(&text, Path::new("approvers")).unwrap()
}

fn required() -> BTreeMap<String, Vec<Role>> {
    BTreeMap::from([("okta-deactivate".to_string(), vec![Role::Security])])
}

#[test]
fn the_digest_is_sha256_of_sorted_compact_json() {
    let facts = testutil::facts();
    let p = PlanPayload::new(&facts, &required());
    let c = p.canonical();
    // Keys sorted at every level, no whitespace between tokens.
    assert!(
        c.starts_with("{\"effective_at\":\"2026-11-23T10:00:00Z\",\"inputs\":{\"manager\":"),
        "{c}"
    );
    assert!(!c.contains(": ") && !c.contains(", "), "{c}");
    assert!(c.contains("\"requires\":[\"security\"]"), "{c}");
    assert!(
        c.contains(&format!("\"runbook_sha256\":\"{}\"", "ab".repeat(32))),
        "{c}"
    );
    assert_eq!(p.digest(), crate::journal::sha256_hex(c.as_bytes()));
    // Not in the digest: the departure id, deadlines, request lines.
    let mut other = facts.clone();
    other.id = "another-id".into();
    other.steps[0].deadline = None;
    other.steps[0].automated.as_mut().unwrap().requests.clear();
    assert_eq!(PlanPayload::new(&other, &required()).digest(), p.digest());
}

#[test]
fn the_digest_covers_params_inputs_runbook_and_required_roles() {
    let facts = testutil::facts();
    let base = PlanPayload::new(&facts, &required());
    let mut f = facts.clone();
    f.steps[0]
        .automated
        .as_mut()
        .unwrap()
        .params
        .insert("keep_mail".into(), true.into());
    let now = PlanPayload::new(&f, &required());
    assert_ne!(now.digest(), base.digest());
    assert_eq!(
        base.differences(&now),
        vec!["step okta-deactivate: params changed"]
    );

    let mut f = facts.clone();
    f.inputs.insert("manager".into(), "eve@corp.example".into());
    f.runbook.sha256 = "cd".repeat(32);
    let now = PlanPayload::new(&f, &required());
    let d = base.differences(&now);
    assert!(d[0].starts_with("the runbook changed"), "{d:?}");
    assert!(
        d.iter().any(|l| l.contains(
            "input manager: \"bob@corp.example\" when approved, \"eve@corp.example\" now"
        )),
        "{d:?}"
    );

    let now = PlanPayload::new(&facts, &BTreeMap::new());
    assert_eq!(
        base.differences(&now),
        vec!["step okta-deactivate: required approvals changed"]
    );
}

#[test]
fn required_roles_follow_the_runbook_rules() {
    let mut facts = testutil::facts();
    let def = ApprovalsDef {
        allowed_signers: "a".into(),
        all: vec![Role::Manager],
        destructive: vec![Role::Security],
        involuntary: vec![Role::Hr],
        steps: BTreeMap::new(),
        rollback: Vec::new(),
    };
    // Involuntary, not destructive: manager + hr; the manual step needs none.
    assert_eq!(
        def.required(&facts),
        BTreeMap::from([("okta-deactivate".to_string(), vec![Role::Manager, Role::Hr])])
    );
    facts.departure_type = DepartureType::Voluntary;
    facts.steps[0].automated.as_mut().unwrap().destructive = true;
    assert_eq!(
        def.required(&facts)["okta-deactivate"],
        vec![Role::Manager, Role::Security]
    );
}

#[test]
fn an_approval_verifies_only_for_its_role_digest_namespace_and_allowed_key() {
    let carol = key();
    let mallory = key();
    let s = signers(&[
        ("security:carol@corp.example", Some(NAMESPACE), &carol),
        ("manager:mallory@corp.example", Some(NAMESPACE), &mallory),
    ]);
    let digest = "12".repeat(32);
    let sig = sign(&carol, NAMESPACE, &message(Role::Security, &digest));
    let a = accept(&sig, Role::Security, &digest, &s).unwrap();
    assert_eq!(a.principal, "security:carol@corp.example");
    assert_eq!(a.fingerprint, fingerprint(carol.public_key()));

    // The same signature presented for another role, or another plan, does not hold.
    assert!(matches!(
        accept(&sig, Role::Manager, &digest, &s),
        Err(ApprovalError::BadSignature { .. })
    ));
    assert!(matches!(
        accept(&sig, Role::Security, &"34".repeat(32), &s),
        Err(ApprovalError::BadSignature { .. })
    ));
    // Signed in the evidence namespace.
    let wrong_ns = sign(
        &carol,
        "offboard-evidence",
        &message(Role::Security, &digest),
    );
    assert!(matches!(
        accept(&wrong_ns, Role::Security, &digest, &s),
        Err(ApprovalError::Namespace { .. })
    ));
    // A manager's key signing as security.
    let m = sign(&mallory, NAMESPACE, &message(Role::Security, &digest));
    assert!(matches!(
        accept(&m, Role::Security, &digest, &s),
        Err(ApprovalError::NotAllowed { .. })
    ));
    // A line with no namespaces option (an evidence key) does not make an approver.
    let loose = signers(&[("security:carol@corp.example", None, &carol)]);
    assert!(matches!(
        accept(&sig, Role::Security, &digest, &loose),
        Err(ApprovalError::NotAllowed { .. })
    ));
    // Nor does a principal pattern.
    let wild = signers(&[("security:*", Some(NAMESPACE), &carol)]);
    assert!(accept(&sig, Role::Security, &digest, &wild).is_err());
}

#[test]
fn one_key_cannot_fill_two_roles_and_recorded_approvals_are_rechecked() {
    let dave = key();
    let mut facts = testutil::facts();
    let digest = PlanPayload::new(&facts, &required()).digest();
    facts.approval = Some(ApprovalGate {
        digest: digest.clone(),
        plan_file: "plan.json".into(),
        allowed_signers: "approvers".into(),
        required: required(),
    });
    let approval = |role: Role| Approval {
        role,
        principal: format!("{role}:dave"),
        fingerprint: fingerprint(dave.public_key()),
        digest: digest.clone(),
        signature: sign(&dave, NAMESPACE, &message(role, &digest)),
    };
    let sec = approval(Role::Security);
    verify_recorded(&facts, std::slice::from_ref(&sec)).unwrap();
    let both = [sec.clone(), approval(Role::Hr)];
    assert!(matches!(
        check_distinct(&both),
        Err(ApprovalError::SameKey { .. })
    ));
    assert!(
        verify_recorded(&facts, &both)
            .unwrap_err()
            .contains("two roles")
    );

    // A relabelled role, a wrong fingerprint, or facts changed after approval all fail.
    let mut relabelled = sec.clone();
    relabelled.role = Role::Manager;
    assert!(verify_recorded(&facts, &[relabelled]).is_err());
    let mut named = sec.clone();
    named.fingerprint = fingerprint(key().public_key());
    assert!(
        verify_recorded(&facts, &[named])
            .unwrap_err()
            .contains("names key")
    );
    let mut changed = facts.clone();
    changed.steps[0].automated.as_mut().unwrap().login = "eve@corp.example".into();
    assert!(
        verify_recorded(&changed, std::slice::from_ref(&sec))
            .unwrap_err()
            .contains("not to the approved digest")
    );
    // Approvals with no approved plan.
    assert!(verify_recorded(&testutil::facts(), &[sec]).is_err());
}

#[test]
fn plan_files_refuse_edits_and_sig_paths_sit_beside_them() {
    let facts = testutil::facts();
    let payload = PlanPayload::new(&facts, &required());
    let plan = PlanFile {
        format: PLAN_FORMAT.into(),
        digest: payload.digest(),
        runbook_path: "/r/offboard.toml".into(),
        payload,
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plan.json");
    std::fs::write(&p, serde_json::to_vec(&plan).unwrap()).unwrap();
    assert_eq!(PlanFile::read(&p).unwrap(), plan);
    let mut edited = plan.clone();
    edited.payload.user = "bob@corp.example".into();
    std::fs::write(&p, serde_json::to_vec(&edited).unwrap()).unwrap();
    assert!(
        PlanFile::read(&p)
            .unwrap_err()
            .to_string()
            .contains("was edited")
    );
    assert_eq!(sig_path(&p, Role::Hr), dir.path().join("plan.json.hr.sig"));
}
