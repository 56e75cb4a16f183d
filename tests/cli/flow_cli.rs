//! A whole departure through the CLI, against sandbox systems: plan, start, status, confirm,
//! verify (with drift), legal hold, failures, JSON output.

use std::path::{Path, PathBuf};

use predicates::prelude::*;
use serde_json::Value;

use crate::common::cli_env::CliEnv;

pub(crate) const RUNBOOK: &str = r#"
[runbook]
name = "Test leaver"

[inputs]
manager = { prompt = "Manager", required = true }
asset_tag = { prompt = "Asset tag" }

[systems.idp]
kind = "sandbox"
latency_ms = 20

[systems.saas]
kind = "sandbox"
latency_ms = 20
max_concurrency = 1

[systems.mail]
kind = "sandbox"
latency_ms = 0

[[step]]
id = "idp-suspend"
lane = "it"
system = "idp"
action = "suspend_user"
owner = "it@corp.example"
deadline = "effective"

[[step]]
id = "idp-sessions"
lane = "it"
system = "idp"
action = "revoke_sessions"

[[step]]
id = "saas-seat"
lane = "saas"
system = "saas"
action = "remove_seat"

[[step]]
id = "saas-delete"
lane = "saas"
system = "saas"
action = "delete_user"
phase = "close"
when = { type = "involuntary" }

[[step]]
id = "notice"
lane = "it"
system = "mail"
action = "send_notice"

[[step]]
id = "laptop"
lane = "facilities"
manual = "Collect laptop {{ user.asset_tag }} from {{ user.email }}"
fields = ["tracking_number"]
owner = "facilities@corp.example"
deadline = "effective+7d"

[[step]]
id = "payroll"
lane = "finance"
manual = "Stop payroll; tell {{ user.manager }}"
phase = "close"
owner = "payroll@corp.example"
"#;

/// The common harness with [`RUNBOOK`] as `offboard.toml`, and a few helpers of this module.
struct Env(CliEnv);

impl std::ops::Deref for Env {
    type Target = CliEnv;
    fn deref(&self) -> &CliEnv {
        &self.0
    }
}

impl Env {
    fn new() -> Env {
        Env(CliEnv::with_runbook(RUNBOOK))
    }

    fn start(&self, extra: &[&str]) -> assert_cmd::assert::Assert {
        self.bin()
            .args([
                "--json",
                "start",
                "alice@corp.example",
                "--non-interactive",
                "--set",
                "manager=bob@corp.example",
            ])
            .args(extra)
            .assert()
    }

    fn journal(&self, id: &str) -> Vec<Value> {
        let p = self
            .state()
            .join("departures")
            .join(id)
            .join("journal.jsonl");
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn sandbox(&self, system: &str) -> (PathBuf, Value) {
        let p = self.state().join("sandbox").join(format!("{system}.json"));
        let v = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        (p, v)
    }
}

fn json_out(a: &assert_cmd::assert::Assert) -> Value {
    serde_json::from_slice(&a.get_output().stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&a.get_output().stdout)
        )
    })
}

fn statuses(v: &Value) -> Vec<(String, String)> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn plan_shows_every_step_and_request_without_side_effects() {
    let env = Env::new();
    let out = env
        .bin()
        .args([
            "plan",
            "alice@corp.example",
            "--type",
            "involuntary",
            "--set",
            "manager=bob@corp.example",
        ])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    for needle in [
        "idp-suspend",
        "POST sandbox://idp/users/alice%40corp.example/suspend",
        "saas-delete",
        "held back until access is cut",
        "manual: Collect laptop <asset_tag not given> from alice@corp.example",
        "asks for: tracking_number",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert!(
        !env.state().join("departures").exists(),
        "plan must not create departures"
    );
    assert!(
        !env.state().join("sandbox").exists(),
        "plan must not touch systems"
    );

    // Voluntary: the involuntary-only step is left out, and nothing is held back.
    let out = env
        .bin()
        .args([
            "--json",
            "plan",
            "alice@corp.example",
            "--set",
            "manager=bob@corp.example",
        ])
        .assert()
        .success();
    let v = json_out(&out);
    let ids: Vec<&str> = v["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&"saas-delete"), "{ids:?}");
    assert_eq!(ids.len(), 6);
}

#[test]
fn plan_refuses_bad_input_with_hints() {
    let env = Env::new();
    env.bin()
        .args(["plan", "alice@corp.example"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--set manager=VALUE"));
    env.bin()
        .args([
            "plan",
            "alice@corp.example",
            "--set",
            "manager=b",
            "--set",
            "shoe_size=9",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "declared inputs: asset_tag, manager",
        ));
    env.bin()
        .args([
            "plan",
            "alice@corp.example",
            "--set",
            "manager=b",
            "--effective-at",
            "friday",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("RFC 3339"));
    env.bin()
        .args(["plan", "alice@corp.example", "-r", "missing.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("offboard demo"));
}

#[test]
fn start_runs_automated_steps_leaves_manual_pending_then_confirm_completes() {
    let env = Env::new();
    let out = env.start(&["--type", "involuntary"]).code(3);
    let v = json_out(&out);
    let id = v["departure"].as_str().unwrap().to_string();
    assert_eq!(v["complete"], false);
    // Only manual steps are open: the hints say confirm, not resume.
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        stderr.contains(&format!("offboard confirm {id} <STEP>")),
        "{stderr}"
    );
    assert!(!stderr.contains("offboard resume"), "{stderr}");
    let st = statuses(&v);
    for (step, want) in [
        ("idp-suspend", "done"),
        ("idp-sessions", "done"),
        ("saas-seat", "done"),
        ("saas-delete", "done"),
        ("notice", "done"),
        ("laptop", "pending"),
        ("payroll", "pending"),
    ] {
        assert!(
            st.contains(&(step.to_string(), want.to_string())),
            "{step} not {want}: {st:?}"
        );
    }
    let evidence = PathBuf::from(v["evidence"].as_str().unwrap());
    assert!(evidence.exists());
    assert!(Path::new(&format!("{}.sig", evidence.display())).exists());

    // The live systems changed.
    let (_, idp) = env.sandbox("idp");
    assert_eq!(idp["users"]["alice@corp.example"]["status"], "suspended");
    assert_eq!(idp["users"]["alice@corp.example"]["sessions"], 0);

    // Involuntary: the notice that could alert the person is applied only after every other
    // cut step has been checked.
    let events = env.journal(&id);
    let pos = |kind: &str, step: &str| {
        events
            .iter()
            .position(|e| e["kind"] == kind && e["step"] == step)
            .unwrap_or_else(|| panic!("no {kind} for {step}"))
    };
    let notice = pos("apply_started", "notice");
    for s in ["idp-suspend", "idp-sessions", "saas-seat"] {
        assert!(
            pos("checked", s) < notice,
            "{s} checked after the notice was sent"
        );
    }
    // close phase after cut
    assert!(pos("apply_started", "saas-delete") > pos("checked", "notice"));

    // status: one departure, open steps, exit 3
    env.bin()
        .args(["status"])
        .assert()
        .success()
        .stdout(predicate::str::contains(&id));
    env.bin()
        .args(["status", "alice@corp.example"])
        .assert()
        .code(3)
        .stdout(
            predicate::str::contains("pending")
                .and(predicate::str::contains("facilities@corp.example")),
        );

    // confirm: fields are enforced
    env.bin()
        .args(["confirm", &id, "laptop"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--field tracking_number="));
    env.bin()
        .args(["confirm", &id, "laptop", "--field", "colour=red"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("it asks for: tracking_number"));
    env.bin()
        .args(["confirm", &id, "idp-suspend"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("automated step"));
    env.bin()
        .args([
            "confirm",
            "alice@corp.example",
            "laptop",
            "--field",
            "tracking_number=1Z999",
            "--note",
            "courier",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("revision 2"));
    let out = env
        .bin()
        .args([
            "--json",
            "confirm",
            &id,
            "payroll",
            "--not-applicable",
            "contractor, invoiced",
        ])
        .assert()
        .success();
    let v = json_out(&out);
    assert_eq!(v["complete"], true);
    assert_eq!(v["revision"], 3);

    let out = env.bin().args(["--json", "status", &id]).assert().success();
    let v = json_out(&out);
    let laptop = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "laptop")
        .unwrap();
    assert_eq!(laptop["state"]["fields"]["tracking_number"], "1Z999");
    assert_eq!(laptop["state"]["actor"], "tester@corp.example");

    // The evidence verifies offline.
    env.bin()
        .args(["evidence", "verify"])
        .arg(&evidence)
        .assert()
        .success();
}

#[test]
fn verify_reports_drift_when_access_comes_back() {
    let env = Env::new();
    let v = json_out(&env.start(&[]).code(3));
    let id = v["departure"].as_str().unwrap().to_string();

    let out = env.bin().args(["--json", "verify", &id]).assert().code(0);
    let v = json_out(&out);
    // Four automated steps, one of them a notice: three revocations are re-checked.
    assert_eq!(v["holding"], 3);
    assert_eq!(v["revision"], 2);
    let checked: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_str().unwrap())
        .collect();
    assert!(!checked.contains(&"notice"), "{checked:?}");

    // Someone re-enables the account behind the tool's back.
    let (path, mut idp) = env.sandbox("idp");
    idp["users"]["alice@corp.example"]["status"] = "active".into();
    std::fs::write(&path, serde_json::to_vec(&idp).unwrap()).unwrap();

    let out = env
        .bin()
        .args(["--json", "verify", "alice@corp.example"])
        .assert()
        .code(4);
    let v = json_out(&out);
    assert_eq!(v["drift"], serde_json::json!(["idp-suspend"]));
    // It names what drifted and the command that re-applies it.
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("idp-suspend: suspend_user on idp for alice@corp.example"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("re-apply: offboard resume {id}")),
        "{stderr}"
    );
    let events = env.journal(&id);
    let last_check = events
        .iter()
        .rev()
        .find(|e| e["kind"] == "checked" && e["step"] == "idp-suspend")
        .unwrap();
    assert_eq!(last_check["data"]["context"], "verify");
    assert_eq!(last_check["data"]["revoked"], false);
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "verify_finished" && e["data"]["drift"] == 1)
    );
    let account = last_check["data"]["account"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The hint is true: resume re-checks the drifted step, applies it again on the same
    // account, and leaves the steps that held alone.
    let applies_before = events
        .iter()
        .filter(|e| e["kind"] == "apply_started")
        .count();
    env.bin()
        .args(["resume", &id, "--non-interactive"])
        .assert()
        .code(3);
    assert_eq!(
        env.sandbox("idp").1["users"]["alice@corp.example"]["status"],
        "suspended"
    );
    let events = env.journal(&id);
    let applied_again: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "apply_started")
        .skip(applies_before)
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    assert_eq!(applied_again, ["idp-suspend"]);
    let recheck = events
        .iter()
        .rev()
        .find(|e| e["kind"] == "checked" && e["step"] == "idp-suspend")
        .unwrap();
    assert_eq!(recheck["data"]["context"], "resume");
    assert_eq!(recheck["data"]["revoked"], true);
    assert_eq!(recheck["data"]["account"]["id"], account.as_str());
    env.bin().args(["verify", &id]).assert().code(0);
    // Access back once more, for the evidence-file form below.
    let (path, mut idp) = env.sandbox("idp");
    idp["users"]["alice@corp.example"]["status"] = "active".into();
    std::fs::write(&path, serde_json::to_vec(&idp).unwrap()).unwrap();

    // verify also takes the evidence file.
    let evidence = env
        .state()
        .join("departures")
        .join(&id)
        .join(format!("{id}.json"));
    env.bin().arg("verify").arg(&evidence).assert().code(4);
}

#[test]
fn legal_hold_blocks_destructive_steps_and_records_them() {
    let env = Env::new();
    let v = json_out(
        &env.start(&["--type", "involuntary", "--legal-hold"])
            .code(3),
    );
    let id = v["departure"].as_str().unwrap().to_string();
    assert!(statuses(&v).contains(&("saas-delete".into(), "skipped".into())));
    let (_, saas) = env.sandbox("saas");
    assert_ne!(saas["users"]["alice@corp.example"]["status"], "deleted");
    let events = env.journal(&id);
    assert!(events.iter().any(|e| e["kind"] == "skipped"
        && e["step"] == "saas-delete"
        && e["data"]["reason"].as_str().unwrap().contains("legal hold")));
}

#[test]
fn a_system_that_cannot_be_reached_fails_its_steps_and_the_rest_go_on() {
    let env = Env::new();
    let rb = RUNBOOK.to_string()
        + r#"
[systems.app]
kind = "scim"
base_url = "http://127.0.0.1:9/scim/v2"
token = { env = "OFFBOARD_TEST_MISSING_TOKEN" }

[[step]]
id = "app-deactivate"
lane = "saas"
system = "app"
action = "deactivate_user"
"#;
    std::fs::write(env.runbook(), rb).unwrap();
    // The preflight finds the unset variable before anything is cut, and says so.
    let refused = env.start(&[]).code(1);
    let said = String::from_utf8_lossy(&refused.get_output().stderr).to_string()
        + &String::from_utf8_lossy(&refused.get_output().stdout);
    assert!(said.contains("OFFBOARD_TEST_MISSING_TOKEN"), "{said}");
    assert!(said.contains("--force"), "{said}");
    assert!(
        !env.state().join("departures").exists() || {
            std::fs::read_dir(env.state().join("departures"))
                .unwrap()
                .count()
                == 0
        }
    );
    // With --force, what can be cut is cut and the rest is recorded as failed.
    let out = env.start(&["--force"]).code(3);
    let v = json_out(&out);
    let st = statuses(&v);
    assert!(
        st.contains(&("app-deactivate".into(), "failed".into())),
        "{st:?}"
    );
    assert!(
        st.contains(&("idp-suspend".into(), "done".into())),
        "{st:?}"
    );
    let app = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "app-deactivate")
        .unwrap();
    let err = app["state"]["error"].as_str().unwrap();
    assert!(err.contains("OFFBOARD_TEST_MISSING_TOKEN"), "{err}");
    // The closing hint says how to retry it.
    let id = v["departure"].as_str().unwrap();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        stderr.contains("retry app-deactivate:")
            && stderr.contains(&format!("offboard resume {id}")),
        "{stderr}"
    );
}

#[test]
fn hostile_user_identifiers_stay_inside_the_state_dir() {
    let env = Env::new();
    for user in ["../../etc/passwd", "a/b", "x\ny", "\"q\" %2F ünï"] {
        let out = env
            .bin()
            .args([
                "--json",
                "start",
                user,
                "--non-interactive",
                "--set",
                "manager=m",
            ])
            .assert()
            .code(3);
        let v = json_out(&out);
        let id = v["departure"].as_str().unwrap();
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{id}"
        );
        let evidence = PathBuf::from(v["evidence"].as_str().unwrap());
        assert!(
            evidence.starts_with(env.state().join("departures")),
            "{}",
            evidence.display()
        );
    }
    // Nothing was written outside the state dir and the runbook.
    let mut entries: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["offboard.toml", "state"]);
}

#[test]
fn help_teaches_with_examples() {
    let env = Env::new();
    env.bin().arg("--help").assert().success().stdout(
        predicate::str::contains("offboard demo").and(predicate::str::contains("Exit codes")),
    );
    for cmd in [
        vec!["start", "--help"],
        vec!["plan", "--help"],
        vec!["confirm", "--help"],
        vec!["status", "--help"],
        vec!["verify", "--help"],
        vec!["resume", "--help"],
        vec!["hold", "--help"],
        vec!["release", "--help"],
        vec!["demo", "--help"],
        vec!["remind", "--help"],
    ] {
        env.bin()
            .args(&cmd)
            .assert()
            .success()
            .stdout(predicate::str::contains("Example"));
    }
    let out = env.bin().arg("--help").assert().success();
    insta::assert_snapshot!("help", String::from_utf8_lossy(&out.get_output().stdout));
    let out = env.bin().args(["start", "--help"]).assert().success();
    insta::assert_snapshot!(
        "start_help",
        String::from_utf8_lossy(&out.get_output().stdout)
    );
}

#[test]
fn a_step_that_runs_out_of_time_fails_and_the_run_goes_on() {
    let env = Env::new();
    let rb = RUNBOOK.to_string()
        + r#"
[systems.slow]
kind = "sandbox"
latency_ms = 5000
step_timeout_secs = 1

[[step]]
id = "slow-seat"
lane = "saas"
system = "slow"
action = "remove_seat"
"#;
    std::fs::write(env.runbook(), rb).unwrap();
    // The preflight's look at `slow` runs out of time too: --force cuts the rest anyway.
    let v = json_out(&env.start(&["--force"]).code(3));
    let st = statuses(&v);
    assert!(
        st.contains(&("slow-seat".into(), "failed".into())),
        "{st:?}"
    );
    assert!(st.contains(&("saas-seat".into(), "done".into())), "{st:?}");
    let slow = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "slow-seat")
        .unwrap();
    let err = slow["state"]["error"].as_str().unwrap();
    assert!(
        err.contains("no answer within 1s") && err.contains("step_timeout_secs"),
        "{err}"
    );
}

#[test]
fn start_refuses_a_second_departure_while_one_was_cut_off_and_resume_finishes_it() {
    let env = Env::new();
    let v = json_out(&env.start(&[]).code(3));
    let id = v["departure"].as_str().unwrap().to_string();
    // Simulate a run cut off by a crash: drop the events after the first `run_started`'s
    // first step, as if the process died there (the chain stays intact: it is a prefix). A
    // first run signs its evidence only at its end, so it had signed nothing yet.
    let dir = env.state().join("departures").join(&id);
    for f in [format!("{id}.json"), format!("{id}.json.sig")] {
        std::fs::remove_file(dir.join(f)).unwrap();
    }
    let path = dir.join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let cut: Vec<&str> = text
        .lines()
        .take_while(|l| !l.contains("\"kind\":\"checked\""))
        .collect();
    assert!(cut.iter().any(|l| l.contains("\"kind\":\"apply_started\"")));
    std::fs::write(&path, cut.join("\n") + "\n").unwrap();

    // Nothing runs it now: it was cut off, and a second departure is refused with the way on.
    env.start(&[]).code(2).stderr(
        predicate::str::contains(format!("has a departure that was cut off: {id}"))
            .and(predicate::str::contains(format!(
                "resume it with `offboard resume {id}`"
            )))
            .and(predicate::str::contains("--new")),
    );
    assert_eq!(
        std::fs::read_dir(env.state().join("departures"))
            .unwrap()
            .count(),
        1
    );

    // resume re-checks the step that was in flight (already applied) instead of applying again.
    let out = env
        .bin()
        .args(["--json", "resume", &id, "--non-interactive"])
        .assert()
        .code(3);
    let v = json_out(&out);
    assert!(statuses(&v).contains(&("idp-suspend".into(), "done".into())));
    let events = env.journal(&id);
    let resumed_at = events
        .iter()
        .rposition(|e| e["kind"] == "run_started")
        .unwrap();
    let after: Vec<&Value> = events[resumed_at..]
        .iter()
        .filter(|e| e["step"] == "idp-suspend")
        .collect();
    assert!(
        after
            .iter()
            .any(|e| e["kind"] == "checked" && e["data"]["context"] == "resume"),
        "{after:?}"
    );
    assert!(
        !after.iter().any(|e| e["kind"] == "apply_started"),
        "re-applied: {after:?}"
    );

    // Now the last run finished, but manual steps are open: still one departure at a time.
    let first_journal = env.journal(&id);
    env.start(&[]).code(2).stderr(
        predicate::str::contains(format!(
            "already has an open departure under runbook \"Test leaver\": {id}"
        ))
        .and(predicate::str::contains(format!(
            "offboard confirm {id} <STEP>"
        )))
        .and(predicate::str::contains("--new")),
    );
    // Unless the operator says so; the new departure and its evidence link the first.
    let v = json_out(&env.start(&["--new"]).code(3));
    let second = v["departure"].as_str().unwrap().to_string();
    assert_ne!(second, id);
    let facts = &env.journal(&second)[0];
    assert_eq!(facts["data"]["previous"], id.as_str());
    let evidence: Value =
        serde_json::from_slice(&std::fs::read(v["evidence"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(evidence["predicate"]["departure"]["previous"], id.as_str());
    env.bin()
        .args(["evidence", "show", v["evidence"].as_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("follows departure {id}")));
    // Neither the refused start nor the second departure touched the first one's journal.
    assert_eq!(env.journal(&id), first_journal);
}

#[test]
fn verify_exits_3_when_a_check_cannot_run() {
    let env = Env::new();
    let v = json_out(&env.start(&[]).code(3));
    let id = v["departure"].as_str().unwrap().to_string();
    let (path, _) = env.sandbox("saas");
    std::fs::write(&path, "{ not json").unwrap();
    let out = env.bin().args(["--json", "verify", &id]).assert().code(3);
    let v = json_out(&out);
    assert_eq!(v["errors"], serde_json::json!(["saas-seat"]));
    assert_eq!(v["drift"], serde_json::json!([]));
}

#[test]
fn evidence_can_be_signed_with_an_existing_ssh_key() {
    let env = Env::new();
    let key = env.dir.path().join("id_ed25519");
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "auditor-key", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let v = json_out(&env.start(&["--key", key.to_str().unwrap()]).code(3));
    let evidence = PathBuf::from(v["evidence"].as_str().unwrap());
    // No key was created in the state dir: the given one signed.
    assert!(!env.state().join("keys").exists());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mut parts = public.split_whitespace();
    let signers = env.dir.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!(
            "auditor {} {}\n",
            parts.next().unwrap(),
            parts.next().unwrap()
        ),
    )
    .unwrap();
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&signers)
        .args(["-I", "auditor", "-n", "offboard-evidence", "-s"])
        .arg(format!("{}.sig", evidence.display()))
        .stdin(std::fs::File::open(&evidence).unwrap())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    env.bin()
        .args(["evidence", "verify", "--allowed-signers"])
        .arg(&signers)
        .arg(&evidence)
        .assert()
        .success();
    // OFFBOARD_SIGNING_KEY works the same way; a missing key file is a usage error.
    env.bin()
        .env("OFFBOARD_SIGNING_KEY", env.dir.path().join("nope"))
        .args([
            "start",
            "bob@corp.example",
            "--non-interactive",
            "--set",
            "manager=m",
        ])
        .assert()
        .code(2);
}

#[test]
fn completions_are_generated() {
    let env = Env::new();
    env.bin()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("offboard").and(predicate::str::contains("confirm")));
}

#[test]
fn start_waits_for_the_effective_time_and_refuses_one_days_away() {
    let env = Env::new();
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let at_s = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let out = env.start(&["--effective-at", &at_s]).code(3);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("Waiting until"), "{stderr}");
    let v = json_out(&out);
    let id = v["departure"].as_str().unwrap();
    let first_apply = env
        .journal(id)
        .into_iter()
        .find(|e| e["kind"] == "apply_started")
        .unwrap();
    let applied_at =
        chrono::DateTime::parse_from_rfc3339(first_apply["ts"].as_str().unwrap()).unwrap();
    assert!(
        applied_at >= at,
        "access was cut at {applied_at}, before {at}"
    );

    env.start(&["--effective-at", "2099-01-01T00:00:00Z"])
        .code(2)
        .stderr(predicate::str::contains("more than 24 hours"));
}

#[test]
fn concurrent_sandbox_departures_lose_no_update() {
    let env = Env::new();
    // The signing key is made once, before the processes race for it.
    env.bin().args(["keys", "generate"]).assert().success();
    let users: Vec<String> = (0..8).map(|i| format!("user{i}@corp.example")).collect();
    let children: Vec<std::process::Child> = users
        .iter()
        .map(|u| {
            env.cmd(&[
                "start",
                u,
                "--non-interactive",
                "--set",
                "manager=bob@corp.example",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
        })
        .collect();
    for mut c in children {
        // Manual steps stay pending: exit 3.
        assert_eq!(c.wait().unwrap().code(), Some(3));
    }
    let (_, idp) = env.sandbox("idp");
    for u in &users {
        assert_eq!(idp["users"][u]["status"], "suspended", "{u}: {idp}");
        env.bin().args(["verify", u]).assert().code(0);
    }
}

#[test]
fn preflight_asks_every_system_records_nothing_and_start_journals_it() {
    let env = Env::new();
    let args = [
        "preflight",
        "alice@corp.example",
        "--set",
        "manager=bob@corp.example",
    ];
    let out = env.bin().args(["--json"]).args(args).assert().code(0);
    let v = json_out(&out);
    assert_eq!(v["passed"], true, "{v}");
    let steps: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_str().unwrap())
        .collect();
    // Every automated step of a voluntary departure, none of the manual ones.
    assert_eq!(
        steps,
        ["idp-suspend", "idp-sessions", "saas-seat", "notice"]
    );
    assert!(!env.state().join("departures").exists());
    env.bin()
        .args([
            "plan",
            "alice@corp.example",
            "--check",
            "--set",
            "manager=b@c",
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("ok idp-suspend (idp)"));

    let v = json_out(&env.start(&[]).code(3));
    let id = v["departure"].as_str().unwrap();
    let journal = env.journal(id);
    let preflight = journal
        .iter()
        .find(|e| e["kind"] == "preflight")
        .expect("the preflight is journaled");
    assert_eq!(preflight["data"]["passed"], true);
    let first_apply = journal
        .iter()
        .position(|e| e["kind"] == "apply_started")
        .unwrap();
    let at = journal
        .iter()
        .position(|e| e["kind"] == "preflight")
        .unwrap();
    assert!(at < first_apply, "the look comes before the first cut");
}

/// Suspend, a laptop to collect, and a delete that waits for the laptop: the delete is still to
/// come when a litigation hold arrives mid-departure.
const HOLD_RUNBOOK: &str = r#"
[runbook]
name = "Hold leaver"

[inputs]
manager = { prompt = "Manager" }

[systems.idp]
kind = "sandbox"

[systems.saas]
kind = "sandbox"

[[step]]
id = "idp-suspend"
lane = "it"
system = "idp"
action = "suspend_user"

[[step]]
id = "saas-seat"
lane = "saas"
system = "saas"
action = "remove_seat"

[[step]]
id = "laptop"
lane = "facilities"
manual = "Collect the laptop"

[[step]]
id = "saas-delete"
lane = "saas"
system = "saas"
action = "delete_user"
phase = "close"
after = ["laptop"]
"#;

fn step_of<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id}"))
}

#[test]
fn a_hold_placed_mid_departure_blocks_the_delete_until_it_is_released() {
    let env = Env::new();
    std::fs::write(env.runbook(), HOLD_RUNBOOK).unwrap();
    let user = "alice@corp.example";
    let v = json_out(&env.start(&[]).code(3));
    let id = v["departure"].as_str().unwrap().to_string();
    assert_eq!(step_of(&v, "saas-delete")["status"], "skipped");

    // Legal calls: the hold goes on while the delete waits behind the laptop.
    env.bin()
        .args(["hold", user])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--reason"));
    env.bin()
        .args(["hold", user, "--reason", "  "])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the reason is empty"));
    env.bin()
        .env("OFFBOARD_ACTOR", "counsel@corp.example")
        .args(["hold", user, "--reason", "litigation hold, matter 2026-114"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Legal hold placed")
                .and(predicate::str::contains("counsel@corp.example"))
                .and(predicate::str::contains("Blocked from now on: saas-delete")),
        );
    env.bin()
        .args(["hold", user, "--reason", "again"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already under legal hold"));
    env.bin().args(["status", &id]).assert().code(3).stdout(
        predicate::str::contains("LEGAL HOLD since")
            .and(predicate::str::contains(
                "by counsel@corp.example: litigation hold, matter 2026-114",
            ))
            .and(predicate::str::contains(
                "destructive steps blocked: saas-delete",
            )),
    );
    env.bin()
        .args(["status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("voluntary · HOLD"));

    // The laptop comes back; the delete would run now, but the hold blocks it.
    env.bin()
        .args(["confirm", &id, "laptop"])
        .assert()
        .success();
    let v = json_out(
        &env.bin()
            .args(["--json", "resume", &id, "--non-interactive"])
            .assert()
            .code(3),
    );
    let delete = step_of(&v, "saas-delete");
    assert_eq!(delete["status"], "skipped", "{delete}");
    assert!(
        delete["state"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("legal hold"),
        "{delete}"
    );
    let (_, saas) = env.sandbox("saas");
    assert_ne!(saas["users"][user]["status"], "deleted");
    assert!(
        !env.journal(&id)
            .iter()
            .any(|e| e["kind"] == "apply_started" && e["step"] == "saas-delete"),
        "the delete was attempted under hold"
    );

    // Releasing is its own command, with a reason; the delete runs at the next resume.
    env.bin()
        .env("OFFBOARD_ACTOR", "counsel@corp.example")
        .args(["release", &id, "--reason", "matter 2026-114 closed"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Destructive steps now free to run: saas-delete",
        ));
    env.bin()
        .args(["release", &id, "--reason", "twice"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not under legal hold"));
    env.bin()
        .args(["status", &id])
        .assert()
        .code(3)
        .stdout(predicate::str::contains("Legal hold released"));
    let v = json_out(
        &env.bin()
            .args(["--json", "resume", &id, "--non-interactive"])
            .assert()
            .code(0),
    );
    assert_eq!(step_of(&v, "saas-delete")["status"], "done");
    let (_, saas) = env.sandbox("saas");
    assert_eq!(saas["users"][user]["status"], "deleted");

    // The evidence records the hold, who placed and lifted it and why, and what it blocked.
    let path = PathBuf::from(v["evidence"].as_str().unwrap());
    let ev: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let hold = &ev["predicate"]["legal_hold"];
    assert_eq!(hold["active"], false);
    let history = hold["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{hold}");
    assert_eq!(history[0]["action"], "placed");
    assert_eq!(history[0]["by"], "counsel@corp.example");
    assert_eq!(history[0]["reason"], "litigation hold, matter 2026-114");
    assert_eq!(history[1]["action"], "released");
    assert_eq!(history[1]["reason"], "matter 2026-114 closed");
    let blocked: Vec<&str> = hold["blocked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["step"].as_str().unwrap())
        .collect();
    assert_eq!(blocked, ["saas-delete"]);
    env.bin()
        .args(["evidence", "verify"])
        .arg(&path)
        .assert()
        .success();
    env.bin()
        .args(["evidence", "show"])
        .arg(&path)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("released")
                .and(predicate::str::contains("blocked: saas-delete")),
        );

    // Complete now: a hold has nothing left to block, and says so.
    env.bin()
        .args(["hold", &id, "--reason", "too late"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("is complete").and(predicate::str::contains(
                "destructive steps already done: saas-delete",
            )),
        );
}

#[test]
fn resume_can_place_the_hold_before_it_runs() {
    let env = Env::new();
    std::fs::write(env.runbook(), HOLD_RUNBOOK).unwrap();
    let v = json_out(&env.start(&[]).code(3));
    let id = v["departure"].as_str().unwrap().to_string();
    env.bin()
        .args(["confirm", &id, "laptop"])
        .assert()
        .success();
    // A hold needs its reason.
    env.bin()
        .args(["resume", &id, "--legal-hold"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--reason"));
    let v = json_out(
        &env.bin()
            .args([
                "--json",
                "resume",
                &id,
                "--non-interactive",
                "--legal-hold",
                "--reason",
                "preservation letter",
            ])
            .assert()
            .code(3),
    );
    assert_eq!(step_of(&v, "saas-delete")["status"], "skipped");
    let (_, saas) = env.sandbox("saas");
    assert_ne!(saas["users"]["alice@corp.example"]["status"], "deleted");
    let events = env.journal(&id);
    let placed = events
        .iter()
        .position(|e| e["kind"] == "hold_placed")
        .expect("hold journaled");
    assert_eq!(events[placed]["data"]["reason"], "preservation letter");
    assert_eq!(events[placed]["actor"], "tester@corp.example");
    let resumed = events
        .iter()
        .rposition(|e| e["kind"] == "run_started")
        .unwrap();
    assert!(placed < resumed, "the hold must be in force before the run");
}

/// Delete journal line `line` (1-based) and re-chain every later event, as anyone with write
/// access to the state dir could: what is left is a valid chain.
fn delete_and_rechain(path: &Path, line: usize) {
    let bytes = std::fs::read(path).unwrap();
    let mut events = offboard::journal::parse_chain(&bytes).unwrap();
    events.remove(line - 1);
    let mut prev = offboard::journal::GENESIS.to_string();
    for (i, e) in events.iter_mut().enumerate() {
        e.seq = i as u64;
        e.prev = prev.clone();
        e.hash = e.compute_hash();
        prev = e.hash.clone();
    }
    let bytes = offboard::journal::journal_bytes(&events);
    assert!(offboard::journal::parse_chain(&bytes).is_ok());
    std::fs::write(path, bytes).unwrap();
}

/// Every file of a departure dir, with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "lock")
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_journal_edited_and_rechained_is_never_extended_or_signed() {
    let env = Env::new();
    std::fs::write(env.runbook(), HOLD_RUNBOOK).unwrap();
    let v = json_out(&env.start(&[]).code(3));
    let id = v["departure"].as_str().unwrap().to_string();
    let dir = env.state().join("departures").join(&id);
    // Someone deletes the record of the suspend being applied, and re-chains the journal.
    let line = 1 + env
        .journal(&id)
        .iter()
        .position(|e| e["kind"] == "apply_started" && e["step"] == "idp-suspend")
        .unwrap();
    delete_and_rechain(&dir.join("journal.jsonl"), line);
    let before = snapshot(&dir);

    for args in [
        vec!["confirm", id.as_str(), "laptop"],
        vec!["resume", id.as_str(), "--non-interactive"],
        vec!["verify", id.as_str()],
        vec!["hold", id.as_str(), "--reason", "r"],
        vec!["release", id.as_str(), "--reason", "r"],
        vec!["resume", "alice@corp.example", "--non-interactive"],
    ] {
        env.bin().args(&args).assert().code(5).stderr(
            predicate::str::contains(format!("line {line} of the journal"))
                .and(predicate::str::contains(format!("{id}.json")))
                .and(predicate::str::contains("nothing was signed"))
                .and(predicate::str::contains("--new")),
        );
    }
    assert_eq!(
        snapshot(&dir),
        before,
        "a refused command changed the departure"
    );

    // status only reads, and says it loudly.
    env.bin().args(["status", &id]).assert().code(3).stderr(
        predicate::str::contains("IS NOT WHAT WAS SIGNED").and(predicate::str::contains(format!(
            "line {line} of the journal"
        ))),
    );
    let v = json_out(&env.bin().args(["--json", "status", &id]).assert().code(3));
    assert_eq!(v["integrity"]["intact"], false);
    assert_eq!(v["integrity"]["first_bad_line"], line);

    // The way on: a fresh departure that names the tampered one as its predecessor.
    let v = json_out(&env.start(&["--new"]).code(3));
    let second = v["departure"].as_str().unwrap();
    assert_eq!(env.journal(second)[0]["data"]["previous"], id.as_str());
}

#[test]
fn a_journal_with_a_broken_chain_is_refused_even_when_found_by_user() {
    let env = Env::new();
    std::fs::write(env.runbook(), HOLD_RUNBOOK).unwrap();
    let user = "alice@corp.example";
    let v = json_out(&env.start(&[]).code(3));
    let id = v["departure"].as_str().unwrap().to_string();
    let path = env
        .state()
        .join("departures")
        .join(&id)
        .join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(4);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    for args in [
        vec!["confirm", user, "laptop"],
        vec!["confirm", id.as_str(), "laptop"],
        vec!["hold", user, "--reason", "r"],
    ] {
        env.bin()
            .args(&args)
            .assert()
            .code(5)
            .stderr(predicate::str::contains("line 5:").and(predicate::str::contains(&id)));
    }
    env.start(&[]).code(5).stderr(
        predicate::str::contains(format!("journal cannot be trusted, {id}"))
            .and(predicate::str::contains("add --new")),
    );
    let v = json_out(&env.start(&["--new"]).code(3));
    let second = v["departure"].as_str().unwrap();
    assert_eq!(env.journal(second)[0]["data"]["previous"], id.as_str());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        lines.join("\n") + "\n"
    );
}

#[test]
fn signed_evidence_removed_cut_short_or_by_another_key_stops_appending() {
    // The signed events cut off the end of the journal (no re-chaining needed).
    let env = Env::new();
    std::fs::write(env.runbook(), HOLD_RUNBOOK).unwrap();
    let v = json_out(&env.start(&[]).code(3));
    let id = v["departure"].as_str().unwrap().to_string();
    let dir = env.state().join("departures").join(&id);
    let journal = dir.join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines.len() - 4;
    std::fs::write(&journal, lines[..kept].join("\n") + "\n").unwrap();
    env.bin()
        .args(["confirm", &id, "laptop"])
        .assert()
        .code(5)
        .stderr(
            predicate::str::contains("events were removed after they were signed").and(
                predicate::str::contains(format!("line {} is the first one missing", kept + 1)),
            ),
        );

    // The latest evidence deleted.
    let env = Env::new();
    std::fs::write(env.runbook(), HOLD_RUNBOOK).unwrap();
    let v = json_out(&env.start(&[]).code(3));
    let id = v["departure"].as_str().unwrap().to_string();
    let evidence = PathBuf::from(v["evidence"].as_str().unwrap());
    std::fs::remove_file(&evidence).unwrap();
    env.bin()
        .args(["confirm", &id, "laptop"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "the journal records that evidence revision 1 was written",
        ));

    // Signed by one key, continued with another: refused, with the way out.
    let env = Env::new();
    std::fs::write(env.runbook(), HOLD_RUNBOOK).unwrap();
    let v = json_out(&env.start(&[]).code(3));
    let id = v["departure"].as_str().unwrap().to_string();
    let other = env.dir.path().join("other_ed25519");
    env.bin()
        .args(["--key", other.to_str().unwrap(), "keys", "generate"])
        .assert()
        .success();
    env.bin()
        .args(["--key", other.to_str().unwrap(), "confirm", &id, "laptop"])
        .assert()
        .code(5)
        .stderr(predicate::str::contains(
            "run this command with --key set to the key",
        ));
    // With the key that signed it, the same command goes through.
    env.bin()
        .args(["confirm", &id, "laptop"])
        .assert()
        .success()
        .stdout(predicate::str::contains("revision 2"));
}

#[test]
fn the_operator_is_recorded_as_a_person_beside_the_login() {
    let env = Env::new();
    let v = json_out(&env.start(&["--by", "Jane Doe"]).code(3));
    let id = v["departure"].as_str().unwrap().to_string();
    let events = env.journal(&id);
    assert!(
        events
            .iter()
            .all(|e| e["actor"] == "Jane Doe (tester@corp.example)"),
        "{events:#?}"
    );
    // OFFBOARD_OPERATOR names the person when --by does not.
    env.bin()
        .env("OFFBOARD_OPERATOR", "Sam Lee")
        .args(["confirm", &id, "laptop", "--field", "tracking_number=1Z"])
        .assert()
        .success();
    env.bin()
        .args(["verify", &id, "--by", "Audit Desk"])
        .assert()
        .success();
    // Nobody named: the login alone.
    env.bin()
        .args(["confirm", &id, "payroll", "--not-applicable", "contractor"])
        .assert()
        .success();
    let events = env.journal(&id);
    let actor_of = |kind: &str, step: Option<&str>| {
        events
            .iter()
            .rfind(|e| e["kind"] == kind && step.is_none_or(|s| e["step"] == s))
            .unwrap_or_else(|| panic!("no {kind}"))["actor"]
            .clone()
    };
    assert_eq!(
        actor_of("answered", Some("laptop")),
        "Sam Lee (tester@corp.example)"
    );
    assert_eq!(
        actor_of("verify_finished", None),
        "Audit Desk (tester@corp.example)"
    );
    assert_eq!(actor_of("answered", Some("payroll")), "tester@corp.example");

    // The evidence names the person per step.
    let evidence = env
        .state()
        .join("departures")
        .join(&id)
        .join(format!("{id}.json"));
    let ev: Value = serde_json::from_slice(&std::fs::read(&evidence).unwrap()).unwrap();
    let step = |id: &str| {
        ev["predicate"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(
        step("laptop")["confirmed_by"],
        "Sam Lee (tester@corp.example)"
    );
    assert_eq!(
        step("idp-suspend")["actor"],
        "Jane Doe (tester@corp.example)"
    );
    env.bin()
        .args(["evidence", "show"])
        .arg(&evidence)
        .assert()
        .success()
        .stdout(predicate::str::contains("by Sam Lee"));

    // A name that is no name is refused before anything is recorded.
    let before = env.journal(&id).len();
    for bad in ["", "   ", "Jane\nDoe", "Jane\u{1b}[2J"] {
        env.bin()
            .args([
                "confirm",
                &id,
                "payroll",
                "--not-applicable",
                "x",
                "--by",
                bad,
            ])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--by"));
    }
    env.bin()
        .env("OFFBOARD_OPERATOR", "Jane\tDoe")
        .args(["verify", &id])
        .assert()
        .code(2);
    assert_eq!(env.journal(&id).len(), before);
}

const DUE_NOW: &str = r#"
[runbook]
name = "Due now"

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
id = "badge"
lane = "facilities"
manual = "Collect the badge of {{ user.email }} on {{ departure.effective_at | date }}"
owner = "{{ user.manager }}"
escalate_to = "boss-of-{{ user.manager }}"
deadline = "effective"
"#;

#[test]
fn a_manual_step_due_at_the_effective_time_is_not_overdue_in_the_same_second() {
    let env = Env::new();
    std::fs::write(env.runbook(), DUE_NOW).unwrap();
    let t0 = "2026-11-30T17:00:00Z";
    let at = |offset_secs: i64| {
        (chrono::DateTime::parse_from_rfc3339(t0).unwrap() + chrono::Duration::seconds(offset_secs))
            .to_rfc3339()
    };
    let out = env
        .bin()
        .env("OFFBOARD_NOW", t0)
        .args([
            "--json",
            "start",
            "alice@corp.example",
            "--non-interactive",
            "--set",
            "manager=bob@corp.example",
        ])
        .assert()
        .code(3);
    let v = json_out(&out);
    let id = v["departure"].as_str().unwrap().to_string();
    // Templates in what people read are rendered, dates readably.
    let badge = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "badge")
        .unwrap();
    assert_eq!(badge["owner"], "bob@corp.example");
    let events = env.journal(&id);
    let facts = &events[0]["data"]["steps"];
    let planned = facts
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "badge")
        .unwrap();
    assert_eq!(
        planned["manual"],
        "Collect the badge of alice@corp.example on 2026-11-30 17:00 UTC"
    );
    assert_eq!(planned["escalate_to"], "boss-of-bob@corp.example");

    // A second later, and fourteen minutes later: pending, not overdue.
    for later in [1, 14 * 60] {
        let out = env
            .bin()
            .env("OFFBOARD_NOW", at(later))
            .args(["status", &id])
            .assert()
            .code(3);
        let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(text.contains("pending"), "{text}");
        assert!(!text.contains("OVERDUE"), "+{later}s:\n{text}");
        assert!(!text.contains("overdue"), "+{later}s:\n{text}");
        assert!(text.contains("bob@corp.example"), "{text}");
    }
    // Past the grace: overdue, with its owner.
    let out = env
        .bin()
        .env("OFFBOARD_NOW", at(16 * 60))
        .args(["status", &id])
        .assert()
        .code(3);
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("pending OVERDUE"), "{text}");
    assert!(
        text.contains("1 step(s) overdue: badge (bob@corp.example)"),
        "{text}"
    );
}

#[test]
fn the_demo_shows_the_plan_before_it_runs() {
    let env = Env::new();
    let out = env
        .bin()
        .args(["demo", "--non-interactive"])
        .assert()
        .code(3);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let plan_at = stderr
        .find("Plan for alice@example.com (involuntary), runbook \"Demo leaver (sandbox)\"")
        .unwrap_or_else(|| panic!("no plan in:\n{stderr}"));
    for needle in [
        "cut · wave 1",
        "POST sandbox://idp/users/alice%40example.com/suspend",
        "held back until access is cut",
        "manual: Collect laptop LT-0042 from alice@example.com",
    ] {
        assert!(
            stderr[plan_at..].contains(needle),
            "{needle:?} missing from:\n{stderr}"
        );
    }
    // The payroll instruction's date reads `2026-11-30 17:00 UTC`, not RFC 3339.
    let departing = &stderr[stderr.find("departing ").expect("the payroll step") + 10..];
    let date: String = departing.chars().take(20).collect();
    assert!(
        date.as_bytes()[4] == b'-' && date.as_bytes()[10] == b' ' && date.ends_with(" UTC"),
        "{date:?}"
    );
    assert!(!stderr.contains("{{"), "{stderr}");
    // The plan comes before the run.
    let departure_at = stderr.find("Departure ").expect("the run's header");
    assert!(plan_at < departure_at, "{stderr}");
}
