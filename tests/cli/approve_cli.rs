//! Four-eyes approval through the CLI, against sandbox systems: `plan --out`, `approve`,
//! `start --plan`, `resume` once an approval is added, and `evidence verify` of the approvals.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use offboard::journal::Record;
use predicates::prelude::*;
use ssh_key::{Algorithm, LineEnding, PrivateKey};

use crate::common::cli_env::{CliEnv, text};

const RUNBOOK: &str = r#"
[runbook]
name = "Approved leaver"

[inputs]
manager = { prompt = "Manager", required = true }

[systems.idp]
kind = "sandbox"
latency_ms = 0

[[step]]
id = "idp-suspend"
lane = "it"
system = "idp"
action = "suspend_user"

[[step]]
id = "idp-delete"
lane = "it"
system = "idp"
action = "delete_user"
phase = "close"

[approvals]
allowed_signers = "approvers"
destructive = ["security"]
involuntary = ["hr"]
"#;

const USER: &str = "alice@corp.example";

/// An approver's key, written 0600 in the test dir; returns its path and public line.
fn key(env: &CliEnv, name: &str) -> (PathBuf, String) {
    let k = PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519).unwrap();
    let path = env.path().join(format!("{name}_ed25519"));
    std::fs::write(&path, k.to_openssh(LineEnding::LF).unwrap().as_bytes()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (path, k.public_key().to_openssh().unwrap())
}

/// `approvers` beside the runbook: one line per (principal, public key).
fn approvers(env: &CliEnv, lines: &[(&str, &str)]) {
    let text: String = lines
        .iter()
        .map(|(p, k)| format!("{p} namespaces=\"offboard-approval\" {k}\n"))
        .collect();
    std::fs::write(env.path().join("approvers"), text).unwrap();
}

fn plan(env: &CliEnv, extra: &[&str]) -> PathBuf {
    let mut args = vec![
        "plan",
        USER,
        "-r",
        "offboard.toml",
        "--set",
        "manager=bob@corp.example",
        "--out",
        "plan.json",
    ];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    assert_eq!(out.status.code(), Some(0), "plan --out:\n{}", text(&out));
    env.path().join("plan.json")
}

fn approve(env: &CliEnv, role: &str, key: &Path) -> std::process::Output {
    env.run(&[
        "approve",
        "plan.json",
        "--role",
        role,
        "--key",
        key.to_str().unwrap(),
    ])
}

fn start(env: &CliEnv) -> std::process::Output {
    env.run(&["start", "--plan", "plan.json", "--non-interactive"])
}

fn status_of(env: &CliEnv, id: &str, step: &str) -> String {
    env.step_statuses(id)
        .into_iter()
        .find(|(s, _)| s == step)
        .unwrap()
        .1
}

#[test]
fn a_destructive_step_waits_for_the_security_approval_and_runs_once_given() {
    let env = CliEnv::with_runbook(RUNBOOK);
    let (carol, carol_pub) = key(&env, "carol");
    approvers(&env, &[("security:carol@corp.example", &carol_pub)]);
    let plan = plan(&env, &[]);
    let mode = std::fs::metadata(&plan).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
    assert_eq!(
        file["payload"]["steps"][1]["requires"],
        serde_json::json!(["security"])
    );
    // --json prints the plan and the digest written.
    let out = env.run(&[
        "--json",
        "plan",
        USER,
        "-r",
        "offboard.toml",
        "--set",
        "manager=bob@corp.example",
        "--out",
        "other.json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let other: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path().join("other.json")).unwrap()).unwrap();
    assert_eq!(v["digest"], other["digest"]);
    assert_eq!(v["plan"]["user"], USER);

    // Started with no approval: the suspend runs, the delete waits, naming the role.
    let out = start(&env);
    assert_eq!(out.status.code(), Some(3), "start --plan:\n{}", text(&out));
    let id = env.departure_of(USER).unwrap();
    assert_eq!(status_of(&env, &id, "idp-suspend"), "done");
    assert_eq!(status_of(&env, &id, "idp-delete"), "skipped");
    let chain = env.chain(&id);
    assert!(chain.iter().any(|e| matches!(&e.record,
        Record::Skipped { reason } if reason.contains("waiting for approval by: security"))));
    assert!(
        !chain.iter().any(|e| e.step.as_deref() == Some("idp-delete")
            && matches!(e.record, Record::ApplyStarted { .. }))
    );

    // Security approves; it prints what it approves first.
    let out = approve(&env, "security", &carol);
    assert_eq!(out.status.code(), Some(0), "approve:\n{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("alice@corp.example") && shown.contains("voluntary"),
        "{shown}"
    );
    assert!(shown.contains("idp-delete idp.delete_user"), "{shown}");
    let sig = env.path().join("plan.json.security.sig");
    assert_eq!(
        std::fs::metadata(&sig).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // ssh-keygen checks the approval with the same allowed_signers file.
    let message = env.run(&["approve", "plan.json", "--role", "security", "--message"]);
    assert_eq!(message.status.code(), Some(0));
    if let Ok(mut child) = std::process::Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(env.path().join("approvers"))
        .args([
            "-I",
            "security:carol@corp.example",
            "-n",
            "offboard-approval",
            "-s",
        ])
        .arg(&sig)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&message.stdout)
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ssh-keygen -Y verify:\n{}",
            text(&out)
        );
        // The same signature is not a manager's approval: the role is in the signed message.
        let mut child = std::process::Command::new("ssh-keygen")
            .args(["-Y", "verify", "-f"])
            .arg(env.path().join("approvers"))
            .args([
                "-I",
                "security:carol@corp.example",
                "-n",
                "offboard-approval",
                "-s",
            ])
            .arg(&sig)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let other = String::from_utf8(message.stdout.clone())
            .unwrap()
            .replace("role=security", "role=manager");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(other.as_bytes())
            .unwrap();
        assert!(!child.wait().unwrap().success());
    }

    // Resume finds the approval and runs the delete.
    let out = env.run(&["resume", &id, "--non-interactive"]);
    assert_eq!(out.status.code(), Some(0), "resume:\n{}", text(&out));
    assert_eq!(status_of(&env, &id, "idp-delete"), "done");
    let approved: Vec<_> = env
        .chain(&id)
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Approved(a) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0].role.as_str(), "security");
    assert_eq!(approved[0].principal, "security:carol@corp.example");
    env.assert_evidence_verifies(&id);
    let ev: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.evidence_path(&id)).unwrap()).unwrap();
    assert_eq!(
        ev["predicate"]["departure"]["approvals"]["given"][0]["principal"],
        "security:carol@corp.example"
    );
    assert_eq!(
        ev["predicate"]["departure"]["approvals"]["required"]["idp-delete"],
        serde_json::json!(["security"])
    );
    let shown = env.run(&["evidence", "show", env.evidence_path(&id).to_str().unwrap()]);
    assert!(
        text(&shown).contains("security by security:carol@corp.example"),
        "{}",
        text(&shown)
    );
}

#[test]
fn a_changed_runbook_invalidates_the_approvals_and_names_what_changed() {
    let env = CliEnv::with_runbook(RUNBOOK);
    let (carol, carol_pub) = key(&env, "carol");
    approvers(&env, &[("security:carol@corp.example", &carol_pub)]);
    plan(&env, &[]);
    assert_eq!(approve(&env, "security", &carol).status.code(), Some(0));

    // Someone turns the suspend into a session revoke and adds a step after approval.
    let changed = RUNBOOK.replace("action = \"suspend_user\"", "action = \"revoke_sessions\"")
        + "\n[[step]]\nid = \"idp-extra\"\nlane = \"it\"\nsystem = \"idp\"\naction = \"suspend_user\"\n";
    env.write_runbook(&changed);
    let out = start(&env);
    assert_eq!(out.status.code(), Some(2), "start --plan:\n{}", text(&out));
    let err = text(&out);
    assert!(err.contains("the plan is not the one approved"), "{err}");
    assert!(err.contains("the runbook changed"), "{err}");
    assert!(
        err.contains("step idp-suspend: system, action or login changed"),
        "{err}"
    );
    assert!(
        err.contains("step idp-extra: new, not in the approved plan"),
        "{err}"
    );
    assert_eq!(env.departure_of(USER), None, "nothing is recorded");

    // An edited plan file is refused too (its content no longer hashes to its digest).
    env.write_runbook(RUNBOOK);
    let p = env.path().join("plan.json");
    let edited = std::fs::read_to_string(&p)
        .unwrap()
        .replace("bob@corp.example", "eve@corp.example");
    std::fs::write(&p, edited).unwrap();
    env.bin()
        .args(["start", "--plan", "plan.json", "--non-interactive"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("was edited"));
}

#[test]
fn one_key_cannot_fill_two_roles() {
    let env = CliEnv::with_runbook(RUNBOOK);
    let (dave, dave_pub) = key(&env, "dave");
    approvers(
        &env,
        &[
            ("hr:dave@corp.example", &dave_pub),
            ("security:dave@corp.example", &dave_pub),
        ],
    );
    plan(&env, &["--type", "involuntary"]);
    assert_eq!(approve(&env, "hr", &dave).status.code(), Some(0));
    assert_eq!(approve(&env, "security", &dave).status.code(), Some(0));
    let out = start(&env);
    assert_eq!(out.status.code(), Some(2), "start --plan:\n{}", text(&out));
    assert!(
        text(&out).contains("cannot fill two roles"),
        "{}",
        text(&out)
    );
    assert_eq!(env.departure_of(USER), None);
}

#[test]
fn a_key_not_allowed_in_the_role_is_refused() {
    let env = CliEnv::with_runbook(RUNBOOK);
    let (mallory, mallory_pub) = key(&env, "mallory");
    let (_, carol_pub) = key(&env, "carol");
    approvers(
        &env,
        &[
            ("manager:mallory@corp.example", &mallory_pub),
            ("security:carol@corp.example", &carol_pub),
        ],
    );
    plan(&env, &[]);
    assert_eq!(approve(&env, "security", &mallory).status.code(), Some(0));
    let out = start(&env);
    assert_eq!(out.status.code(), Some(2), "start --plan:\n{}", text(&out));
    assert!(
        text(&out).contains("does not allow to approve as security"),
        "{}",
        text(&out)
    );
    assert_eq!(env.departure_of(USER), None);
}

#[test]
fn evidence_verify_fails_on_a_forged_approval_in_the_journal() {
    let env = CliEnv::with_runbook(RUNBOOK);
    let (carol, carol_pub) = key(&env, "carol");
    approvers(&env, &[("security:carol@corp.example", &carol_pub)]);
    plan(&env, &[]);
    assert_eq!(approve(&env, "security", &carol).status.code(), Some(0));
    let out = start(&env);
    assert_eq!(out.status.code(), Some(0), "start --plan:\n{}", text(&out));
    let id = env.departure_of(USER).unwrap();
    env.assert_evidence_verifies(&id);

    // Someone with write access to the state dir adds a manager approval signed over another
    // plan, keeping the chain intact, and has the evidence signed again by the next run.
    let real = env
        .chain(&id)
        .into_iter()
        .find_map(|e| match e.record {
            Record::Approved(a) => Some(a),
            _ => None,
        })
        .unwrap();
    let mallory = PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519).unwrap();
    let other = offboard::approval::message(offboard::approval::Role::Manager, &"0".repeat(64));
    let sig = mallory
        .sign(
            "offboard-approval",
            ssh_key::HashAlg::Sha512,
            other.as_bytes(),
        )
        .unwrap()
        .to_pem(LineEnding::LF)
        .unwrap();
    let forged = offboard::approval::Approval {
        role: offboard::approval::Role::Manager,
        principal: "manager:mallory@corp.example".into(),
        fingerprint: mallory
            .public_key()
            .fingerprint(ssh_key::HashAlg::Sha256)
            .to_string(),
        digest: real.digest.clone(),
        signature: sig,
    };
    let mut j =
        offboard::journal::Journal::open(&env.journal_path(&id), "forger".into(), |_| {}).unwrap();
    j.append(None, Record::Approved(forged)).unwrap();

    // A run refuses to act on it.
    let out = env.run(&["resume", &id, "--non-interactive"]);
    assert_eq!(out.status.code(), Some(5), "resume:\n{}", text(&out));
    assert!(text(&out).contains("manager approval"), "{}", text(&out));

    // Sealed anyway with the genuine evidence key, the evidence does not verify.
    let state = offboard::state::StateDir::resolve(Some(&env.state())).unwrap();
    let key = offboard::keys::load(&state.default_key_path()).unwrap();
    offboard::evidence::seal(&state, &mut j, &key).unwrap();
    drop(j);
    let ev = env.evidence_path(&id);
    let out = env.run(&["evidence", "verify", ev.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "evidence verify:\n{}",
        text(&out)
    );
    assert!(text(&out).contains("approval"), "{}", text(&out));
}

#[test]
fn approve_help_has_an_example_and_start_help_names_plan() {
    let env = CliEnv::new();
    env.bin()
        .args(["approve", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "offboard approve plan.json --role security",
        ));
    env.bin()
        .args(["start", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--plan <PLAN>"));
    env.bin()
        .args(["plan", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--out <FILE>"));
}
