//! The asset lane through the CLI: return steps planned from an input, `confirm` enforcing the
//! asset process's fields, and the `on_overdue` lock that waits for an asset to be overdue.

use serde_json::Value;

use crate::common::cli_env::CliEnv;

const RUNBOOK: &str = r#"
[runbook]
name = "Assets"

[inputs]
assets = { prompt = "Assets (TAG or TAG:SERIAL, comma-separated)" }

[systems.mdm]
kind = "sandbox"
latency_ms = 0

[[step]]
id = "mdm-lock"
lane = "it"
system = "mdm"
action = "lock_device"
phase = "close"

[assets]
from = "input:assets"
owner = "facilities@corp.example"
deadline = "effective+7d"
on_overdue = "mdm-lock"
"#;

const T0: &str = "2026-11-23T10:00:00Z";
const AFTER_DEADLINE: &str = "2026-12-01T10:00:00Z";

fn start(env: &CliEnv) -> (String, Value) {
    let out = env
        .bin()
        .args([
            "--json",
            "start",
            "alice@corp.example",
            "--non-interactive",
            "--set",
            "assets=LT-1:S1, LT-2",
        ])
        .assert()
        .code(3);
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    (v["departure"].as_str().unwrap().to_string(), v)
}

fn status_of(env: &CliEnv, id: &str, step: &str) -> (String, Value) {
    let out = env.run(&["--json", "status", id]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == step)
        .unwrap_or_else(|| panic!("no step {step} in {v}"))
        .clone();
    (s["status"].as_str().unwrap().to_string(), s)
}

fn confirm(env: &CliEnv, id: &str, step: &str, fields: &[&str]) -> std::process::Output {
    let mut args = vec!["confirm", id, step];
    for f in fields {
        args.push("--field");
        args.push(f);
    }
    env.run(&args)
}

#[test]
fn each_asset_gets_a_return_step_and_confirm_enforces_disposition_and_itad() {
    let mut env = CliEnv::with_runbook(RUNBOOK);
    env.at(T0);
    let (id, v) = start(&env);
    let ids: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"return-LT-1") && ids.contains(&"return-LT-2"),
        "{ids:?}"
    );
    // Nothing is overdue yet: the lock waits.
    let (st, lock) = status_of(&env, &id, "mdm-lock");
    assert_eq!(st, "skipped", "{lock}");

    let out = confirm(&env, &id, "return-LT-1", &["disposition=sold"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not one of redeploy, repair, retire, lost"),
        "{err}"
    );
    let out = confirm(
        &env,
        &id,
        "return-LT-1",
        &[
            "disposition=retire",
            "return_method=courier",
            "condition=broken",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ITAD certificate"), "{err}");
    assert!(err.contains("--field itad_certificate="), "{err}");
    let out = confirm(
        &env,
        &id,
        "return-LT-1",
        &[
            "disposition=retire",
            "return_method=courier",
            "condition=broken",
            "itad_certificate=CERT-77",
            "tracking_number=1Z999",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (st, step) = status_of(&env, &id, "return-LT-1");
    assert_eq!(st, "done");
    // The tag and serial come from the plan and are recorded with the confirmer's fields.
    let journal = std::fs::read_to_string(env.journal_path(&id)).unwrap();
    let answered: Value = journal
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .rfind(|e| e["kind"] == "answered")
        .unwrap();
    let fields = &answered["data"]["fields"];
    assert_eq!(fields["asset_tag"], "LT-1", "{answered} {step}");
    assert_eq!(fields["serial"], "S1");
    assert_eq!(fields["itad_certificate"], "CERT-77");

    // LT-2 is still out after its deadline: a scheduled resume locks the device.
    env.at(AFTER_DEADLINE);
    let out = env.run(&["resume", &id]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (st, lock) = status_of(&env, &id, "mdm-lock");
    assert_eq!(st, "done", "{lock}");
}

#[test]
fn plan_shows_each_return_step_and_what_the_lock_waits_for() {
    let mut env = CliEnv::with_runbook(RUNBOOK);
    env.at(T0);
    let out = env.run(&[
        "plan",
        "alice@corp.example",
        "--set",
        "assets=LT-1:S1, PH 7",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("return-LT-1"), "{text}");
    assert!(text.contains("Recover asset LT-1 (serial S1)"), "{text}");
    assert!(
        text.contains("asks for: disposition, return_method"),
        "{text}"
    );
    assert!(
        text.contains("only once an asset is overdue or lost: return-LT-1, return-PH-7-"),
        "{text}"
    );
}

#[test]
fn the_lock_is_not_needed_when_every_asset_is_back() {
    let mut env = CliEnv::with_runbook(RUNBOOK);
    env.at(T0);
    let (id, _) = start(&env);
    for step in ["return-LT-1", "return-LT-2"] {
        let out = confirm(
            &env,
            &id,
            step,
            &[
                "disposition=redeploy",
                "return_method=desk",
                "condition=good",
            ],
        );
        assert_eq!(out.status.code(), Some(0));
    }
    env.at(AFTER_DEADLINE);
    let out = env.run(&["resume", &id]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (st, lock) = status_of(&env, &id, "mdm-lock");
    assert_eq!(st, "not_applicable", "{lock}");
    // Nothing was locked.
    let sandbox =
        std::fs::read_to_string(env.state().join("sandbox").join("mdm.json")).unwrap_or_default();
    assert!(!sandbox.contains("\"device_locked\":true"), "{sandbox}");
}

#[test]
fn an_asset_confirmed_lost_fires_the_lock_before_the_deadline() {
    let mut env = CliEnv::with_runbook(RUNBOOK);
    env.at(T0);
    let (id, _) = start(&env);
    let out = confirm(&env, &id, "return-LT-2", &["disposition=lost"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.run(&["resume", &id]);
    let (st, lock) = status_of(&env, &id, "mdm-lock");
    assert_eq!(st, "done", "{lock}");
}
