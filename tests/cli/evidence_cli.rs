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

/// The cleared-environment binary at [`NOW`], with `--state-dir state` (also its `HOME`), run
/// in the crate root as before.
fn offboard(state: &Path) -> Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut c = Command::from_std(crate::common::cli_env::cleared(root, state, state));
    c.arg("--state-dir").arg(state).env("OFFBOARD_NOW", NOW);
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
        ticketing: None,
        intake: None,
        approval: None,
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
            account: Some(offboard_account()),
            licences_freed: None,
        },
    )
    .unwrap();
    j.append(
        step,
        Record::Checked {
            revoked: true,
            observed: "active=false".into(),
            context: "run".into(),
            account: Some(offboard_account()),
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
    ssh_keygen_verify_with(file, allowed, &[], &[])
}

/// `ssh-keygen -Y verify` of `file` as principal `offboard`, with extra options and environment.
fn ssh_keygen_verify_with(
    file: &Path,
    allowed: &Path,
    opts: &[&str],
    env: &[(&str, &str)],
) -> bool {
    std::process::Command::new("/usr/bin/ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", "offboard", "-n", "offboard-evidence"])
        .args(opts)
        .arg("-s")
        .arg(sig(file))
        .envs(env.iter().copied())
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .expect("ssh-keygen is installed")
        .status
        .success()
}

/// A copy of the evidence `file` in `dir` (no journal beside it) with `change` applied, signed
/// again with `key`.
fn resigned_copy(
    file: &Path,
    dir: &Path,
    key: &offboard::keys::SigningKey,
    change: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    change(&mut v);
    let bytes = offboard::evidence::to_bytes(&v).unwrap();
    let out = dir.join(file.file_name().unwrap());
    std::fs::write(&out, &bytes).unwrap();
    std::fs::write(sig(&out), key.sign(&bytes).unwrap()).unwrap();
    out
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

    // No trusted key at all: the intact file is not valid, and the error says why.
    let elsewhere = tmp.path().join("empty-state");
    let fp = v["signer"].as_str().unwrap().to_string();
    offboard(&elsewhere)
        .args(["evidence", "verify"])
        .arg(&file)
        .assert()
        .code(5)
        .stdout("")
        .stderr(
            predicate::str::contains(format!(
                "invalid: {}: signature intact, but the signer {fp} is not trusted: pass --allowed-signers",
                file.display()
            ))
            .and(predicate::str::contains("hint:"))
            .and(predicate::str::contains("--integrity-only")),
        );
    let out = offboard(&elsewhere)
        .args(["--json", "evidence", "verify"])
        .arg(&file)
        .assert()
        .code(5);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["intact"], true);
    assert_eq!(v["trusted"], false);
    assert_eq!(v["signer"], fp.as_str());

    // The allowed_signers file through the environment.
    offboard(&elsewhere)
        .env("OFFBOARD_ALLOWED_SIGNERS", &allowed)
        .args(["evidence", "verify"])
        .arg(&file)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("valid: ").and(predicate::str::contains("(offboard)")));

    // Integrity only, asked for explicitly: exit 0, and it says so in words and in JSON.
    offboard(&elsewhere)
        .args(["evidence", "verify", "--integrity-only"])
        .arg(&file)
        .assert()
        .code(0)
        .stdout(
            predicate::str::contains("intact: ")
                .and(predicate::str::contains("integrity only"))
                .and(predicate::str::contains("valid:").not()),
        );
    let out = offboard(&elsewhere)
        .args(["--json", "evidence", "verify", "--integrity-only"])
        .arg(&file)
        .assert()
        .code(0);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["valid"], serde_json::Value::Null);
    assert_eq!(v["intact"], true);
    assert_eq!(v["trusted"], serde_json::Value::Null);
    assert_eq!(v["integrity_only"], true);
    assert!(
        v["trust"].as_str().unwrap().contains("integrity only"),
        "{v}"
    );
    // Trusting keys and trusting none at once is a usage error, however the file is named.
    offboard(&elsewhere)
        .args([
            "evidence",
            "verify",
            "--integrity-only",
            "--allowed-signers",
        ])
        .arg(&allowed)
        .arg(&file)
        .assert()
        .code(2);
    offboard(&elsewhere)
        .env("OFFBOARD_ALLOWED_SIGNERS", &allowed)
        .args(["evidence", "verify", "--integrity-only"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("OFFBOARD_ALLOWED_SIGNERS"));
    assert!(
        !elsewhere.join("keys").exists(),
        "verify must not create a key"
    );
}

/// The forgery the trust rule stops: the evidence edited and re-signed with a new key (named in
/// the file, so the signature is intact) is valid to nobody who has not chosen to trust that key.
#[test]
fn evidence_re_signed_with_a_new_key_is_invalid_without_a_trusted_key() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let file = sealed_departure(&state);
    let allowed = allowed_signers_file(&state, tmp.path());
    let forger = offboard::keys::generate(&tmp.path().join("forger"), "forger", false).unwrap();
    let forged = resigned_copy(&file, &tmp.path().join("forged"), &forger, |v| {
        v["predicate"]["departure"]["ticket"] = serde_json::json!("HR-9999");
        v["predicate"]["signer"]["public_key"] = serde_json::json!(forger.public_line());
        v["predicate"]["signer"]["fingerprint"] = serde_json::json!(forger.fingerprint());
    });
    let auditor = tmp.path().join("auditor-state");
    offboard(&auditor)
        .args(["evidence", "verify"])
        .arg(&forged)
        .assert()
        .code(5)
        .stderr(predicate::str::contains(format!(
            "signature intact, but the signer {} is not trusted",
            forger.fingerprint()
        )));
    offboard(&auditor)
        .args(["evidence", "verify", "--allowed-signers"])
        .arg(&allowed)
        .arg(&forged)
        .assert()
        .code(5)
        .stderr(predicate::str::contains("is not in"));
    // The holder of the real key's own state dir does not trust the forger either.
    offboard(&state)
        .args(["evidence", "verify"])
        .arg(&forged)
        .assert()
        .code(5)
        .stderr(predicate::str::contains("not the local signing key"));
    assert!(!ssh_keygen_verify(&forged, &allowed));
}

/// For the same files and allowed_signers lines, `offboard evidence verify` and
/// `ssh-keygen -Y verify -Overify-time=<the evidence's signing time>` accept and refuse alike:
/// retired keys (valid-before before the signing time), keys not yet valid (valid-after after
/// it), both ends of the window, times in UTC and in the local time zone (TZ), in winter and in
/// summer time.
#[test]
fn offboard_and_ssh_keygen_agree_on_validity_windows() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let file = sealed_departure(&state);
    let key = offboard::keys::load(&state.join("keys/offboard_ed25519")).unwrap();
    let bare = {
        let line = key.public_line();
        line.split(' ').take(2).collect::<Vec<_>>().join(" ")
    };
    // Central European time: UTC+1 in winter, UTC+2 in summer (no tz database needed).
    let tz = "CET-1CEST,M3.5.0,M10.5.0/3";
    let signed = |at: &str, dir: &str| {
        let at = at.to_string();
        resigned_copy(&file, &tmp.path().join(dir), &key, move |v| {
            v["predicate"]["generated_at"] = serde_json::json!(at)
        })
    };
    let winter = signed("2026-11-23T12:00:00.900Z", "winter");
    let summer = signed("2026-07-01T12:00:00.000Z", "summer");
    let winter_time = "-Overify-time=20261123120000Z";
    let summer_time = "-Overify-time=20260701120000Z";

    // (file, its signing time for ssh-keygen, allowed_signers options, expected verdict)
    let cases: Vec<(&Path, &str, String, Option<bool>)> = vec![
        (&winter, winter_time, String::new(), Some(true)),
        (
            &winter,
            winter_time,
            r#"valid-before="20261123115959Z""#.into(),
            Some(false),
        ),
        (
            &winter,
            winter_time,
            r#"valid-before="20261123120000Z""#.into(),
            Some(true),
        ),
        (
            &winter,
            winter_time,
            r#"valid-after="20261123120001Z""#.into(),
            Some(false),
        ),
        (
            &winter,
            winter_time,
            r#"valid-after="20261123120000Z""#.into(),
            Some(true),
        ),
        (
            &winter,
            winter_time,
            r#"valid-after="20261124""#.into(),
            Some(false),
        ),
        (
            &winter,
            winter_time,
            r#"valid-before="20261123""#.into(),
            Some(false),
        ),
        (
            &winter,
            winter_time,
            r#"valid-after="20260101",valid-before="20270101""#.into(),
            Some(true),
        ),
        // Local time: 12:59 CET is 11:59Z, 13:00 CET is 12:00Z.
        (
            &winter,
            winter_time,
            r#"valid-before="202611231259""#.into(),
            Some(false),
        ),
        (
            &winter,
            winter_time,
            r#"valid-before="202611231300""#.into(),
            Some(true),
        ),
        (
            &winter,
            winter_time,
            r#"valid-after="20261123130001""#.into(),
            Some(false),
        ),
        (
            &summer,
            summer_time,
            r#"valid-before="20260701115959Z""#.into(),
            Some(false),
        ),
        (
            &summer,
            summer_time,
            r#"valid-after="20260701120000UTC""#.into(),
            Some(true),
        ),
        // Local times in summer: whatever the C library makes of them, both tools agree.
        (
            &summer,
            summer_time,
            r#"valid-before="202607011330""#.into(),
            None,
        ),
        (
            &summer,
            summer_time,
            r#"valid-after="202607011400""#.into(),
            None,
        ),
        (
            &summer,
            summer_time,
            r#"valid-before="20260701""#.into(),
            Some(false),
        ),
    ];
    let as_path = tmp.path().join("allowed_signers");
    let auditor = tmp.path().join("auditor-state");
    for (evidence, verify_time, opts, expected) in &cases {
        let line = if opts.is_empty() {
            format!("offboard {bare}\n")
        } else {
            format!("offboard {opts} {bare}\n")
        };
        std::fs::write(&as_path, &line).unwrap();
        let ssh = ssh_keygen_verify_with(evidence, &as_path, &[verify_time], &[("TZ", tz)]);
        let status = offboard(&auditor)
            .env("TZ", tz)
            .args(["evidence", "verify", "--allowed-signers"])
            .arg(&as_path)
            .arg(evidence)
            .output()
            .unwrap();
        let ours = match status.status.code() {
            Some(0) => true,
            Some(5) => false,
            other => panic!(
                "{line}: exit {other:?}: {}",
                String::from_utf8_lossy(&status.stderr)
            ),
        };
        assert_eq!(
            ours,
            ssh,
            "{line} on {}: offboard {ours}, ssh-keygen {ssh}: {}",
            evidence.display(),
            String::from_utf8_lossy(&status.stderr)
        );
        if let Some(expected) = expected {
            assert_eq!(ours, *expected, "{line} on {}", evidence.display());
        }
    }

    // A retired line, then a current one for the same key: both tools go on to the second.
    std::fs::write(
        &as_path,
        format!("offboard valid-before=\"20260101Z\" {bare}\noffboard {bare}\n"),
    )
    .unwrap();
    assert!(ssh_keygen_verify_with(
        &winter,
        &as_path,
        &[winter_time],
        &[]
    ));
    offboard(&auditor)
        .args(["evidence", "verify", "--allowed-signers"])
        .arg(&as_path)
        .arg(&winter)
        .assert()
        .code(0);
    // Only the retired line: both refuse, and offboard says why.
    std::fs::write(
        &as_path,
        format!("offboard valid-before=\"20260101Z\" {bare}\n"),
    )
    .unwrap();
    assert!(!ssh_keygen_verify_with(
        &winter,
        &as_path,
        &[winter_time],
        &[]
    ));
    offboard(&auditor)
        .args(["evidence", "verify", "--allowed-signers"])
        .arg(&as_path)
        .arg(&winter)
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "line 1 lists it, but only until valid-before=\"20260101Z\" (2026-01-01T00:00:00Z) (the key was retired), and the evidence was signed later, at 2026-11-23T12:00:00.900Z",
        ));
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
    assert_eq!(v["intact"], false);
    assert!(v["reason"].as_str().unwrap().contains("signature"), "{v}");
    // Checking integrity only still refuses a changed file.
    let out = offboard(&state)
        .args(["--json", "evidence", "verify", "--integrity-only"])
        .arg(&file)
        .assert()
        .code(5);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["intact"], false);
    assert_eq!(v["integrity_only"], true);

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

/// The example in examples/ is intact, signed by the key in its allowed_signers file, and the
/// commands examples/README.md gives for it work as written (every `sh` block without an `<id>`
/// placeholder, run in order in one shell from that folder, with this build's `offboard`).
#[test]
fn the_example_evidence_checks_out_with_the_commands_its_readme_gives() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let readme = std::fs::read_to_string(examples.join("README.md")).unwrap();
    let mut script = String::from("set -e\n");
    for block in readme.split("```sh\n").skip(1) {
        let block = block.split("```").next().unwrap();
        if !block.contains("<id>") {
            script.push_str(block);
        }
    }
    let id = script
        .lines()
        .find_map(|l| l.strip_prefix("id="))
        .expect("examples/README.md sets id=<the example's id>")
        .to_string();
    let file = examples.join(format!("{id}.json"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let digest = v["subject"][0]["digest"]["sha256"].as_str().unwrap();

    assert!(
        std::process::Command::new("jq")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "examples/README.md uses jq: install it (tests/run.sh does)"
    );
    let bin = assert_cmd::cargo::cargo_bin("offboard");
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let empty_state = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(&examples)
        .env("PATH", path)
        .env("OFFBOARD_STATE_DIR", empty_state.path())
        .env("NO_COLOR", "1")
        .env_remove("OFFBOARD_SIGNING_KEY")
        .env_remove("OFFBOARD_ALLOWED_SIGNERS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script}\n{stdout}\n{stderr}");
    assert_eq!(
        stdout
            .matches("Good \"offboard-evidence\" signature for offboard")
            .count(),
        2,
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("valid: {id}.json: departure {id}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{digest}  -\n{digest}\n")),
        "{stdout}"
    );
    assert!(
        std::fs::read_dir(empty_state.path())
            .unwrap()
            .next()
            .is_none(),
        "checking the example must not create state"
    );
}

fn offboard_account() -> offboard::providers::Account {
    offboard::providers::Account::new("2819c223", "SCIM id", "alice@corp.example")
}
