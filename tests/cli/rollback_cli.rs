//! Rollback through the CLI: `rollback --out`, `approve`, `start --plan`, `resume`, against the
//! sandbox and the fake SCIM server; the evidence shows before, after and what could not be
//! restored.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use offboard::journal::Record;
use serde_json::{Value, json};
use ssh_key::{Algorithm, LineEnding, PrivateKey};

use crate::common::cli_env::{CliEnv, fake_runtime, text};
use crate::common::fake_scim::FakeScim;

const USER: &str = "alice@corp.example";

/// Sandbox systems: the identity provider, a SaaS app and mail. A manual step `badge` that the
/// `seat` step waits for when `gated`.
fn sandbox_runbook(gated: bool, approvals: &str) -> String {
    format!(
        r#"
[runbook]
name = "Rollback leaver"

[systems.idp]
kind = "sandbox"
latency_ms = 0

[systems.saas]
kind = "sandbox"
latency_ms = 0

[systems.mail]
kind = "sandbox"
latency_ms = 0

[[step]]
id = "idp-suspend"
lane = "it"
system = "idp"
action = "suspend_user"

[[step]]
id = "idp-sessions"
lane = "it"
system = "idp"
action = "revoke_sessions"
after = ["idp-suspend"]

[[step]]
id = "badge"
lane = "facilities"
manual = "Collect the badge"
phase = "cut"

[[step]]
id = "saas-seat"
lane = "saas"
system = "saas"
action = "remove_seat"
{}

[[step]]
id = "notice"
lane = "it"
system = "mail"
action = "send_notice"
phase = "close"
{approvals}
"#,
        if gated {
            "after = [\"badge\"]\nphase = \"recover\""
        } else {
            ""
        }
    )
}

/// The sandbox's live state of a system (`state/sandbox/<system>.json`), the person's record.
fn sandbox_person(env: &CliEnv, system: &str) -> Value {
    let path = env.state().join("sandbox").join(format!("{system}.json"));
    let world: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    world["users"][USER].clone()
}

fn start(env: &CliEnv) -> (String, std::process::Output) {
    let out = env.run(&CliEnv::start_args(USER));
    let id = env.departure_of(USER).expect("a departure");
    (id, out)
}

fn rollback_out(env: &CliEnv) -> Value {
    let out = env.run(&["rollback", USER, "--out", "rollback.json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "rollback --out:\n{}",
        text(&out)
    );
    let path = env.path().join("rollback.json");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn run_plan(env: &CliEnv) -> std::process::Output {
    env.run(&["start", "--plan", "rollback.json", "--non-interactive"])
}

fn evidence(env: &CliEnv, id: &str) -> Value {
    serde_json::from_slice(&std::fs::read(env.evidence_path(id)).unwrap()).unwrap()
}

fn rollback_step<'a>(ev: &'a Value, step: &str) -> &'a Value {
    ev["predicate"]["rollback"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == step)
        .unwrap_or_else(|| panic!("no rollback step {step}"))
}

fn kinds_of(env: &CliEnv, id: &str, step: &str) -> Vec<String> {
    env.chain(id)
        .iter()
        .filter(|e| e.step.as_deref() == Some(step))
        .map(|e| {
            serde_json::to_value(&e.record).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn a_rescinded_departure_on_the_sandbox_is_rolled_back_with_before_and_after_in_the_evidence() {
    let env = CliEnv::with_runbook(&sandbox_runbook(false, ""));
    let (id, out) = start(&env);
    // The manual badge step stays pending (non-interactive): exit 3.
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(sandbox_person(&env, "idp")["status"], "suspended");
    assert_eq!(sandbox_person(&env, "saas")["seat"], false);
    // An ordinary departure's evidence shows each step's pre-state.
    let ev = evidence(&env, &id);
    let suspend = ev["predicate"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "idp-suspend")
        .unwrap();
    assert_eq!(suspend["before"], json!({"status": "active"}));

    let plan = rollback_out(&env);
    assert_eq!(plan["format"], "offboard-rollback/1");
    assert_eq!(plan["payload"]["departure"], id);
    assert_eq!(
        plan["payload"]["cancel"],
        json!([{"step": "badge", "status": "pending"}])
    );
    // Newest application first; sessions and the notice cannot be undone, and say why.
    let undo: Vec<(String, String)> = plan["payload"]["undo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["step"].as_str().unwrap().to_string(),
                u["undo"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let names: Vec<&str> = undo.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(names.last(), Some(&"idp-suspend"), "{undo:?}");
    assert_eq!(names.first(), Some(&"notice"), "{undo:?}");
    let by_step = |s: &str| {
        plan["payload"]["undo"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["step"] == s)
            .unwrap()
            .clone()
    };
    assert_eq!(by_step("idp-suspend")["undo"], "restore");
    assert_eq!(
        by_step("idp-suspend")["before"],
        json!({"status": "active"})
    );
    assert_eq!(by_step("saas-seat")["undo"], "restore");
    assert_eq!(by_step("idp-sessions")["undo"], "not_restorable");
    assert_eq!(
        by_step("idp-sessions")["why"],
        "ended sessions cannot be revived; the person signs in again"
    );
    assert_eq!(by_step("notice")["undo"], "not_restorable");
    // Nothing was done by making the plan.
    assert_eq!(sandbox_person(&env, "idp")["status"], "suspended");

    let out = run_plan(&env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(sandbox_person(&env, "idp")["status"], "active");
    assert_eq!(sandbox_person(&env, "saas")["seat"], true);
    // What cannot come back did not.
    assert_eq!(sandbox_person(&env, "idp")["sessions"], 0);

    env.assert_evidence_verifies(&id);
    let ev = evidence(&env, &id);
    let s = rollback_step(&ev, "idp-suspend");
    assert_eq!(s["outcome"], "restored");
    assert_eq!(s["before"], json!({"status": "active"}));
    assert_eq!(s["after"], json!({"status": "active"}));
    let s = rollback_step(&ev, "idp-sessions");
    assert_eq!(s["outcome"], "not restorable");
    assert_eq!(
        s["not_restorable"],
        "ended sessions cannot be revived; the person signs in again"
    );
    assert_eq!(ev["predicate"]["rollback"]["complete"], true);
    // The journal records the restore and its check under the step.
    let kinds = kinds_of(&env, &id, "idp-suspend");
    assert!(
        kinds.ends_with(&["restored".to_string(), "restore_checked".to_string()]),
        "{kinds:?}"
    );
    // The readable rendering has the section.
    let out = env.run(&["evidence", "show", env.evidence_path(&id).to_str().unwrap()]);
    let shown = text(&out);
    assert!(shown.contains("Rollback (plan sha256:"), "{shown}");
    assert!(
        shown.contains("before {\"status\":\"active\"}  after {\"status\":\"active\"}"),
        "{shown}"
    );
    // And so does the page a person reads.
    let out = env.run(&[
        "evidence",
        "show",
        env.evidence_path(&id).to_str().unwrap(),
        "--format",
        "html",
    ]);
    let page = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(page.contains("<h2>Rollback</h2>"), "{page}");
    assert!(page.contains("not restorable"), "{page}");
    assert!(page.contains("before: <span class=\"mono\">"), "{page}");
}

#[test]
fn pending_steps_are_cancelled_and_a_later_resume_does_not_run_them() {
    let env = CliEnv::with_runbook(&sandbox_runbook(true, ""));
    let (id, out) = start(&env);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    // The seat waits for the badge, so it has not run.
    assert!(!kinds_of(&env, &id, "saas-seat").contains(&"apply_started".to_string()));
    let plan = rollback_out(&env);
    let cancel: Vec<&str> = plan["payload"]["cancel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_str().unwrap())
        .collect();
    assert!(
        cancel.contains(&"badge") && cancel.contains(&"saas-seat"),
        "{cancel:?}"
    );
    let out = run_plan(&env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(kinds_of(&env, &id, "saas-seat").contains(&"cancelled".to_string()));

    // Someone confirms the badge late, then resumes: the cancelled seat step never runs.
    let out = env.run(&["confirm", &id, "badge"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = env.run(&["resume", &id, "--non-interactive"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let kinds = kinds_of(&env, &id, "saas-seat");
    assert!(!kinds.contains(&"apply_started".to_string()), "{kinds:?}");
    let statuses = env.step_statuses(&id);
    let seat = statuses.iter().find(|(s, _)| s == "saas-seat").unwrap();
    assert_eq!(seat.1, "not_applicable");
    env.assert_evidence_verifies(&id);
}

#[test]
fn a_changed_journal_invalidates_the_rollback_plan() {
    let env = CliEnv::with_runbook(&sandbox_runbook(false, ""));
    let (id, _) = start(&env);
    let plan = rollback_out(&env);
    assert!(plan["digest"].as_str().unwrap().len() == 64);
    // The departure moves on after the plan was made.
    let out = env.run(&["confirm", &id, "badge"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run_plan(&env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("journal changed since the plan was made"), "{t}");
    // Nothing was restored and nothing was journaled.
    assert_eq!(sandbox_person(&env, "idp")["status"], "suspended");
    assert!(
        !env.chain(&id)
            .iter()
            .any(|e| matches!(e.record, Record::RollbackStarted(_))),
    );
    // An edited plan file is refused too.
    let path = env.path().join("rollback.json");
    let mut edited = plan.clone();
    edited["payload"]["undo"][0]["before"] = json!({"status": "deleted"});
    std::fs::write(&path, serde_json::to_vec(&edited).unwrap()).unwrap();
    let out = run_plan(&env);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("was edited"), "{}", text(&out));
}

/// An approver's key, written 0600 in the test dir; returns its path and public line.
fn key(env: &CliEnv, name: &str) -> (PathBuf, String) {
    let k = PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519).unwrap();
    let path = env.path().join(format!("{name}_ed25519"));
    std::fs::write(&path, k.to_openssh(LineEnding::LF).unwrap().as_bytes()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (path, k.public_key().to_openssh().unwrap())
}

#[test]
fn a_rollback_waits_for_the_approval_the_runbook_requires() {
    let env = CliEnv::with_runbook(&sandbox_runbook(
        false,
        "\n[approvals]\nallowed_signers = \"approvers\"\nrollback = [\"security\"]\n",
    ));
    let (carol, carol_pub) = key(&env, "carol");
    std::fs::write(
        env.path().join("approvers"),
        format!("security:carol@corp.example namespaces=\"offboard-approval\" {carol_pub}\n"),
    )
    .unwrap();
    let (id, _) = start(&env);
    let plan = rollback_out(&env);
    let suspend = plan["payload"]["undo"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["step"] == "idp-suspend")
        .unwrap();
    assert_eq!(suspend["requires"], json!(["security"]));

    // Without the approval: cancels run, restores wait (exit 3).
    let out = run_plan(&env);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("waiting for approval by security"),
        "{}",
        text(&out)
    );
    assert_eq!(sandbox_person(&env, "idp")["status"], "suspended");
    let ev = evidence(&env, &id);
    assert_eq!(
        rollback_step(&ev, "idp-suspend")["outcome"],
        "waiting for approval"
    );
    // `status` says so, and exits 3 while the rollback is not complete.
    let out = env.run(&["status", &id]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("NOT complete"), "{t}");
    assert!(t.contains("waiting for approval: "), "{t}");

    let out = env.run(&[
        "approve",
        "rollback.json",
        "--role",
        "security",
        "--key",
        carol.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("ROLLBACK"), "{}", text(&out));
    let out = env.run(&["resume", &id, "--non-interactive"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(sandbox_person(&env, "idp")["status"], "active");
    let out = env.run(&["status", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("restored: "), "{}", text(&out));
    let out = env.run(&["--json", "status", &id]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rollback"]["complete"], true, "{v}");
    let ev = evidence(&env, &id);
    assert_eq!(
        ev["predicate"]["rollback"]["approvals"][0]["principal"],
        "security:carol@corp.example"
    );
    env.assert_evidence_verifies(&id);
}

#[test]
fn scim_deactivation_and_groups_are_rolled_back_through_the_binary() {
    let rt = fake_runtime();
    let hr = rt.block_on(FakeScim::start("hr-tok"));
    let uid = hr.add_user(USER, true);
    let other = hr.add_user("bob@corp.example", true);
    let eng = hr.add_group("eng", &[&uid, &other]);
    let vpn = hr.add_group("vpn", &[&uid]);
    let mut env = CliEnv::new();
    env.var("HR_TOKEN", "hr-tok");
    env.write_runbook(&format!(
        r#"
[runbook]
name = "SCIM leaver"

[systems.hr]
kind = "scim"
base_url = "{}"
token = {{ env = "HR_TOKEN" }}

[[step]]
id = "hr-deactivate"
lane = "it"
system = "hr"
action = "deactivate_user"

[[step]]
id = "hr-groups"
lane = "it"
system = "hr"
action = "remove_from_groups"
after = ["hr-deactivate"]

[[step]]
id = "hr-delete"
lane = "it"
system = "hr"
action = "delete_user"
phase = "close"
when = {{ type = "involuntary" }}
"#,
        hr.base_url
    ));
    let (id, out) = start(&env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(hr.user(&uid).unwrap()["active"], false);
    assert!(hr.group_members(&vpn).is_empty());

    let plan = rollback_out(&env);
    let steps: Vec<&str> = plan["payload"]["undo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["hr-groups", "hr-deactivate"]);
    let requests = &plan["requests"]["hr-groups"];
    assert!(
        requests
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == &json!(format!("PATCH {}/Groups/{vpn}", hr.base_url))),
        "{requests}"
    );
    let out = run_plan(&env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(hr.user(&uid).unwrap()["active"], true);
    assert_eq!(hr.group_members(&vpn), vec![uid.clone()]);
    assert!(hr.group_members(&eng).contains(&uid));
    hr.assert_contract();

    env.assert_evidence_verifies(&id);
    let ev = evidence(&env, &id);
    let d = rollback_step(&ev, "hr-deactivate");
    assert_eq!(d["outcome"], "restored");
    assert_eq!(d["before"], json!({"active": true}));
    assert_eq!(d["after"], json!({"active": true}));
    let g = rollback_step(&ev, "hr-groups");
    assert_eq!(g["outcome"], "restored");
    assert_eq!(
        g["before"],
        json!({"groups": [{"id": eng, "name": "eng"}, {"id": vpn, "name": "vpn"}]})
    );
    assert_eq!(g["after"], g["before"]);
}

#[test]
fn a_deleted_scim_user_is_not_restorable_and_says_why() {
    let rt = fake_runtime();
    let hr = rt.block_on(FakeScim::start("hr-tok"));
    let uid = hr.add_user(USER, true);
    let mut env = CliEnv::new();
    env.var("HR_TOKEN", "hr-tok");
    env.write_runbook(&format!(
        r#"
[runbook]
name = "SCIM leaver"

[systems.hr]
kind = "scim"
base_url = "{}"
token = {{ env = "HR_TOKEN" }}

[[step]]
id = "hr-deactivate"
lane = "it"
system = "hr"
action = "deactivate_user"

[[step]]
id = "hr-delete"
lane = "it"
system = "hr"
action = "delete_user"
phase = "close"
"#,
        hr.base_url
    ));
    let (id, out) = start(&env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(hr.user(&uid).is_none());
    let plan = rollback_out(&env);
    let del = &plan["payload"]["undo"][0];
    assert_eq!(del["step"], "hr-delete");
    assert_eq!(
        del["why"],
        "SCIM has no undelete; a new user would get a new id"
    );
    // The deactivation is planned as a restore, but the user is gone: it fails, and says so.
    let out = run_plan(&env);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let ev = evidence(&env, &id);
    let d = rollback_step(&ev, "hr-deactivate");
    assert_eq!(d["outcome"], "failed");
    assert!(
        d["error"].as_str().unwrap().contains("no longer exists"),
        "{d}"
    );
    assert_eq!(rollback_step(&ev, "hr-delete")["outcome"], "not restorable");
    env.assert_evidence_verifies(&id);
}

#[test]
fn a_rollback_killed_after_a_restore_resumes_by_checking_first_and_never_restores_twice() {
    // The identity provider is slow, so the run can be killed between its restore and its check.
    let env = CliEnv::with_runbook(&sandbox_runbook(false, "").replacen(
        "[systems.idp]\nkind = \"sandbox\"\nlatency_ms = 0",
        "[systems.idp]\nkind = \"sandbox\"\nlatency_ms = 1500",
        1,
    ));
    let (id, _) = start(&env);
    rollback_out(&env);
    let mut child = env.spawn(&["start", "--plan", "rollback.json", "--non-interactive"]);
    let t0 = std::time::Instant::now();
    loop {
        if kinds_of(&env, &id, "idp-suspend").contains(&"restored".to_string()) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the rollback ended before the restore was journaled"
        );
        assert!(t0.elapsed() < std::time::Duration::from_secs(30));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kinds = kinds_of(&env, &id, "idp-suspend");
    assert!(!kinds.contains(&"restore_checked".to_string()), "{kinds:?}");
    assert_eq!(sandbox_person(&env, "idp")["status"], "active");

    let out = env.run(&["resume", &id, "--non-interactive"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let kinds = kinds_of(&env, &id, "idp-suspend");
    let restores = kinds.iter().filter(|k| *k == "restored").count();
    assert_eq!(restores, 1, "the restore was repeated: {kinds:?}");
    assert_eq!(kinds.last().map(String::as_str), Some("restore_checked"));
    // The rollback's other steps were done once too.
    let seat = kinds_of(&env, &id, "saas-seat");
    assert_eq!(
        seat.iter().filter(|k| *k == "restored").count(),
        1,
        "{seat:?}"
    );
    env.assert_evidence_verifies(&id);
    assert_eq!(
        evidence(&env, &id)["predicate"]["rollback"]["complete"],
        true
    );
}

#[test]
fn rollback_help_teaches_the_flow_with_an_example() {
    let env = CliEnv::new();
    let out = env.run(&["rollback", "--help"]);
    assert!(out.status.success());
    let t = text(&out);
    for needle in [
        "offboard rollback alice@corp.example --out rollback.json",
        "offboard approve rollback.json --role security",
        "offboard start --plan rollback.json",
        "not restorable",
        "docs/rollback.md",
    ] {
        assert!(t.contains(needle), "{needle:?} not in:\n{t}");
    }
}

#[test]
fn verify_after_a_rollback_does_not_call_the_restored_access_drift() {
    let env = CliEnv::with_runbook(&sandbox_runbook(false, ""));
    let (id, _) = start(&env);
    rollback_out(&env);
    let out = run_plan(&env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(sandbox_person(&env, "idp")["status"], "active");
    let out = env.run(&["verify", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The steps it could not undo are still re-checked, and still hold.
    let checked: Vec<String> = env
        .chain(&id)
        .iter()
        .filter_map(|e| match &e.record {
            Record::Checked { context, .. } if context == "verify" => e.step.clone(),
            _ => None,
        })
        .collect();
    assert!(checked.contains(&"idp-sessions".to_string()), "{checked:?}");
    assert!(!checked.contains(&"idp-suspend".to_string()), "{checked:?}");
}

/// The first thing a new user runs can be undone, with no credentials.
#[test]
fn the_demo_departure_can_be_rolled_back() {
    let env = CliEnv::new();
    let out = env.run(&["demo", "--non-interactive"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let t = text(&out);
    let id = env
        .departure_of("alice@example.com")
        .expect("the demo's departure");
    assert!(
        t.contains(&format!("offboard rollback {id} --out rollback.json")),
        "the demo does not say how to undo it:\n{t}"
    );
    let out = env.run(&["rollback", &id, "--out", "rollback.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run_plan(&env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let path = env.state().join("sandbox").join("idp.json");
    let world: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(world["users"]["alice@example.com"]["status"], "active");
    env.assert_evidence_verifies(&id);
}

#[test]
fn ctrl_c_during_a_rollback_journals_where_it_stopped_and_resume_finishes_it() {
    let env = CliEnv::with_runbook(&sandbox_runbook(false, "").replacen(
        "[systems.idp]\nkind = \"sandbox\"\nlatency_ms = 0",
        "[systems.idp]\nkind = \"sandbox\"\nlatency_ms = 1500",
        1,
    ));
    let (id, _) = start(&env);
    rollback_out(&env);
    let mut child = env.spawn(&["start", "--plan", "rollback.json", "--non-interactive"]);
    // Once the rollback has begun (cancels journaled), Ctrl-C while the slow restore runs.
    let t0 = std::time::Instant::now();
    while !kinds_of(&env, &id, "badge").contains(&"cancelled".to_string()) {
        assert!(child.try_wait().unwrap().is_none(), "it ended too soon");
        assert!(t0.elapsed() < std::time::Duration::from_secs(30));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(
        env.chain(&id)
            .iter()
            .any(|e| matches!(e.record, Record::Interrupted { .. }))
    );
    env.assert_evidence_verifies(&id);
    let out = env.run(&["resume", &id, "--non-interactive"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(sandbox_person(&env, "idp")["status"], "active");
    assert_eq!(
        evidence(&env, &id)["predicate"]["rollback"]["complete"],
        true
    );
}

/// A departure the HR intake scheduled but never started is called off: nothing ran.
#[test]
fn a_scheduled_departure_is_called_off_and_never_starts() {
    let mut env = CliEnv::with_runbook(
        "[runbook]\nname = \"HR leaver\"\n\n[systems.idp]\nkind = \"sandbox\"\nlatency_ms = 0\n\n[[step]]\nid = \"idp-suspend\"\nlane = \"it\"\nsystem = \"idp\"\naction = \"suspend_user\"\n\n[intake.bamboohr]\ncut_at = \"17:00\"\n",
    );
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/intake/bamboohr-employee.json"
        ),
        env.path().join("kim.json"),
    )
    .unwrap();
    env.at("2026-12-10T09:00:00Z");
    let out = env.run(&[
        "start",
        "--from-event",
        "kim.json",
        "--source",
        "bamboohr",
        "--non-interactive",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Scheduled"), "{}", text(&out));
    // Without --out it only says what it would do.
    let out = env.run(&["rollback", "kim.ash@corp.example"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("has not started"), "{}", text(&out));
    let out = env.run(&["--json", "status"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["scheduled"].as_array().map(Vec::len), Some(1), "{v}");
    let out = env.run(&["rollback", "kim.ash@corp.example", "--out", "rollback.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("called off"), "{}", text(&out));
    let out = env.run(&["--json", "status"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["scheduled"].as_array().is_none_or(Vec::is_empty), "{v}");
    // At its time, the due run starts nothing.
    env.at("2026-12-18T17:00:30Z");
    let out = env.run(&["intake", "due"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.departures().0.len(), 0, "{}", text(&out));
}
