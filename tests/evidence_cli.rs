//! `offboard keys` and `offboard evidence` end to end, through the binary.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

use offboard::departure::{
    Answer, AutomatedStep, DepartureFacts, DepartureType, PlannedStep, RunbookRef,
};
use offboard::journal::{Journal, Record};
use offboard::providers::{RequestLine, RequestRecord};
use offboard::runbook::{Lane, Phase, SystemDef};
use offboard::state::StateDir;

const ID: &str = "20261123t100000-alice-corp-example-3f9a";
const NOW: &str = "2026-11-23T12:00:00Z";

fn offboard(state: &Path) -> Command {
    let mut c = Command::cargo_bin("offboard").unwrap();
    c.arg("--state-dir")
        .arg(state)
        .env("OFFBOARD_NOW", NOW)
        .env("NO_COLOR", "1")
        .env_remove("OFFBOARD_SIGNING_KEY")
        .env_remove("OFFBOARD_STATE_DIR");
    c
}

fn facts() -> DepartureFacts {
    let automated = PlannedStep {
        id: "okta-deactivate".into(),
        lane: Lane::It,
        phase: Phase::Cut,
        wave: 0,
        description: None,
        automated: Some(AutomatedStep {
            system: "okta".into(),
            kind: "scim".into(),
            action: "deactivate_user".into(),
            login: "alice@corp.example".into(),
            params: serde_json::Map::new(),
            destructive: false,
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
    };
    let manual = PlannedStep {
        id: "collect-laptop".into(),
        lane: Lane::Facilities,
        phase: Phase::Recover,
        wave: 1,
        automated: None,
        manual: Some("Collect the laptop".into()),
        fields: vec!["asset_tag".into()],
        owner: Some("facilities@corp.example".into()),
        deadline: Some("2026-11-30T17:00:00Z".into()),
        after: vec!["okta-deactivate".into()],
        alerts_user: true,
        ..automated.clone()
    };
    let system: SystemDef = serde_json::from_value(serde_json::json!({
        "kind": "scim",
        "base_url": "https://okta.example/scim/v2",
        "token": {"env": "OKTA_TOKEN"},
    }))
    .unwrap();
    DepartureFacts {
        id: ID.into(),
        user: "alice@corp.example".into(),
        email: Some("alice@corp.example".into()),
        departure_type: DepartureType::Voluntary,
        effective_at: "2026-11-23T10:00:00Z".into(),
        ticket: Some("HR-1234".into()),
        legal_hold: false,
        inputs: BTreeMap::new(),
        runbook: RunbookRef {
            name: "okta-google".into(),
            path: "runbooks/okta-google.toml".into(),
            sha256: "cd".repeat(32),
        },
        systems: BTreeMap::from([("okta".to_string(), system)]),
        steps: vec![automated, manual],
        tool: "offboard 0.1.0".into(),
        previous: None,
    }
}

/// A departure journal in `state`, sealed with the state dir's default key (created by
/// `keys generate` first). Returns the evidence path.
fn sealed_departure(state: &Path) -> PathBuf {
    offboard(state)
        .args(["keys", "generate"])
        .assert()
        .success();
    let sd = StateDir::resolve(Some(state)).unwrap();
    let mut j = Journal::create(
        &sd.journal_path(ID),
        "admin@host".into(),
        Record::DepartureStarted(Box::new(facts())),
    )
    .unwrap();
    let step = Some("okta-deactivate");
    j.append(
        None,
        Record::RunStarted {
            command: "start".into(),
        },
    )
    .unwrap();
    j.append(step, Record::ApplyStarted { attempt: 1 }).unwrap();
    j.append(
        step,
        Record::Applied {
            changed: true,
            summary: "deactivated user 2819c223".into(),
            requests: vec![RequestRecord {
                method: "PATCH".into(),
                url: "https://okta.example/scim/v2/Users/2819c223".into(),
                status: 200,
            }],
        },
    )
    .unwrap();
    j.append(
        step,
        Record::Checked {
            revoked: true,
            observed: "active=false".into(),
            context: "run".into(),
        },
    )
    .unwrap();
    j.append(
        Some("collect-laptop"),
        Record::Answered {
            answer: Answer::Done,
            note: None,
            fields: BTreeMap::from([("asset_tag".to_string(), "LT-0042".to_string())]),
        },
    )
    .unwrap();
    let key = offboard::keys::load(&sd.default_key_path()).unwrap();
    let sealed = offboard::evidence::seal(&sd, &mut j, &key).unwrap();
    sealed.json_path
}

fn sig(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sig", p.display()))
}

fn allowed_signers_file(state: &Path, dir: &Path) -> PathBuf {
    let out = offboard(state)
        .args(["--json", "keys", "show"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let p = dir.join("allowed_signers");
    std::fs::write(&p, format!("{}\n", v["allowed_signers"].as_str().unwrap())).unwrap();
    p
}

fn ssh_keygen_verify(file: &Path, allowed: &Path) -> bool {
    std::process::Command::new("/usr/bin/ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", "offboard", "-n", "offboard-evidence", "-s"])
        .arg(sig(file))
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .expect("ssh-keygen is installed")
        .status
        .success()
}

#[test]
fn keys_generate_then_show_and_refuse_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let out = offboard(&state)
        .args(["keys", "generate"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("public key:  ssh-ed25519 AAAA"), "{text}");
    assert!(
        text.contains("offboard namespaces=\"offboard-evidence\" ssh-ed25519 AAAA"),
        "{text}"
    );
    assert!(!text.contains("PRIVATE"), "{text}");
    let key_path = state.join("keys/offboard_ed25519");
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(state.join("keys/offboard_ed25519.pub").exists());
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("offboard_ed25519"), "{err}");

    let out = offboard(&state)
        .args(["--json", "keys", "show"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["path"], key_path.to_str().unwrap());
    assert!(text.contains(v["public_key"].as_str().unwrap()));
    assert!(v["fingerprint"].as_str().unwrap().starts_with("SHA256:"));
    let fp = v["fingerprint"].as_str().unwrap().to_string();

    offboard(&state)
        .args(["keys", "generate"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("already exists").and(predicate::str::contains("--force")),
        );
    offboard(&state)
        .args(["keys", "show"])
        .assert()
        .success()
        .stdout(predicate::str::contains(&fp));

    offboard(&state)
        .args(["keys", "generate", "--force"])
        .assert()
        .success();
    offboard(&state)
        .args(["keys", "show"])
        .assert()
        .success()
        .stdout(predicate::str::contains(&fp).not());
}

#[test]
fn keys_show_without_a_key_says_how_to_make_one() {
    let tmp = tempfile::tempdir().unwrap();
    offboard(tmp.path())
        .args(["keys", "show"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("offboard keys generate"));
    let explicit = tmp.path().join("mine");
    offboard(tmp.path())
        .arg("--key")
        .arg(&explicit)
        .args(["keys", "generate"])
        .assert()
        .success();
    assert!(explicit.exists());
}

#[test]
fn verify_accepts_sealed_evidence_and_ssh_keygen_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let file = sealed_departure(&state);
    let allowed = allowed_signers_file(&state, tmp.path());

    offboard(&state)
        .args(["evidence", "verify"])
        .arg(&file)
        .arg("--allowed-signers")
        .arg(&allowed)
        .assert()
        .code(0)
        .stdout(
            predicate::str::contains("valid: ")
                .and(predicate::str::contains(format!(
                    "departure {ID}, revision 1, 6 events"
                )))
                .and(predicate::str::contains("(offboard)")),
        );
    // Default trust: the local signing key.
    offboard(&state)
        .args(["evidence", "verify"])
        .arg(&file)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("the local signing key"));
    let out = offboard(&state)
        .args(["--json", "evidence", "verify"])
        .arg(&file)
        .assert()
        .code(0);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["departure"], ID);
    assert_eq!(v["revision"], 1);
    assert_eq!(v["events"], 6);
    assert!(v["reason"].is_null());

    assert!(ssh_keygen_verify(&file, &allowed));

    // No trusted key at all: integrity only, said clearly.
    let elsewhere = tmp.path().join("empty-state");
    offboard(&elsewhere)
        .args(["evidence", "verify"])
        .arg(&file)
        .assert()
        .code(0)
        .stderr(predicate::str::contains("integrity only"))
        .stdout(predicate::str::contains("integrity only"));
    assert!(
        !elsewhere.join("keys").exists(),
        "verify must not create a key"
    );
}

#[test]
fn tampered_evidence_exits_5_and_ssh_keygen_also_refuses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let file = sealed_departure(&state);
    let allowed = allowed_signers_file(&state, tmp.path());
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("active=false", "active=fals3")).unwrap();

    offboard(&state)
        .args(["evidence", "verify"])
        .arg(&file)
        .arg("--allowed-signers")
        .arg(&allowed)
        .assert()
        .code(5)
        .stderr(
            predicate::str::contains("invalid: ")
                .and(predicate::str::contains("does not match the file's bytes")),
        );
    assert!(!ssh_keygen_verify(&file, &allowed));

    let out = offboard(&state)
        .args(["--json", "evidence", "verify"])
        .arg(&file)
        .assert()
        .code(5);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert!(v["reason"].as_str().unwrap().contains("signature"), "{v}");

    // Signed by a key the auditor does not trust.
    std::fs::write(&file, &text).unwrap();
    let other = tempfile::tempdir().unwrap();
    let other_state = other.path().join("state");
    offboard(&other_state)
        .args(["keys", "generate"])
        .assert()
        .success();
    let other_allowed = allowed_signers_file(&other_state, other.path());
    offboard(&state)
        .args(["evidence", "verify"])
        .arg(&file)
        .arg("--allowed-signers")
        .arg(&other_allowed)
        .assert()
        .code(5)
        .stderr(predicate::str::contains("is not in"));

    // Signature missing.
    std::fs::remove_file(sig(&file)).unwrap();
    offboard(&state)
        .args(["evidence", "verify"])
        .arg(&file)
        .assert()
        .code(5)
        .stderr(predicate::str::contains(".json.sig is missing"));
}

#[test]
fn garbage_and_missing_files_exit_5() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let garbage = tmp.path().join("garbage.json");
    std::fs::write(&garbage, b"\x00\x01 not json at all").unwrap();
    offboard(&state)
        .args(["evidence", "verify"])
        .arg(&garbage)
        .assert()
        .code(5)
        .stderr(predicate::str::contains("not JSON"));
    offboard(&state)
        .args(["evidence", "verify"])
        .arg(tmp.path().join("absent.json"))
        .assert()
        .code(5)
        .stderr(predicate::str::contains("cannot read"));
    offboard(&state)
        .args(["evidence", "show"])
        .arg(&garbage)
        .assert()
        .code(5);
    let other_json = tmp.path().join("other.json");
    std::fs::write(&other_json, b"{\"hello\": \"world\"}\n").unwrap();
    offboard(&state)
        .args(["evidence", "show"])
        .arg(&other_json)
        .assert()
        .code(5)
        .stderr(predicate::str::contains("not offboard evidence"));
}

#[test]
fn show_renders_the_departure_and_its_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let file = sealed_departure(&state);
    offboard(&state)
        .args(["evidence", "show"])
        .arg(&file)
        .assert()
        .code(0)
        .stdout(
            predicate::str::contains(ID)
                .and(predicate::str::contains("okta-deactivate"))
                .and(predicate::str::contains("collect-laptop"))
                .and(predicate::str::contains("HR-1234"))
                .and(predicate::str::contains("2 done — complete")),
        );
}
