//! Snapshots of what `offboard` prints: `plan`, `status`, `evidence show`, and every `--json`
//! document, for a sandbox departure at a fixed clock. What differs between runs (ids, times,
//! paths, digests, keys) is redacted by `common::snapshot`; the rest is the contract.

use std::process::Output;

use crate::common::cli_env::{CliEnv, text};
use crate::{assert_cli_snapshot, assert_json_snapshot};

const RUNBOOK: &str = r#"
[runbook]
name = "Test leaver"

[inputs]
manager = { prompt = "Manager", required = true }
asset_tag = { prompt = "Asset tag" }

[systems.idp]
kind = "sandbox"
latency_ms = 5

[systems.saas]
kind = "sandbox"
latency_ms = 5
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

/// The clock every command reads.
const NOW: &str = "2026-11-30T17:00:00Z";

const USER: &str = "alice@corp.example";

fn env() -> CliEnv {
    let mut env = CliEnv::with_runbook(RUNBOOK);
    env.at(NOW);
    env
}

/// Run, expecting exit `code`.
fn run(env: &CliEnv, args: &[&str], code: i32) -> Output {
    let out = env.run(args);
    assert_eq!(out.status.code(), Some(code), "{args:?}:\n{}", text(&out));
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The departure id of a `--json start` document.
fn departure(out: &Output) -> String {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["departure"].as_str().unwrap().to_string()
}

#[test]
fn plan_human_and_json() {
    let env = env();
    let args = [
        "plan",
        USER,
        "--type",
        "involuntary",
        "--set",
        "manager=bob@corp.example",
        "--set",
        "asset_tag=A-1",
        "--ticket",
        "T-1",
    ];
    let out = run(&env, &args, 0);
    assert_cli_snapshot!(env.path(), "plan", stdout(&out));
    let json: Vec<&str> = ["--json"].into_iter().chain(args).collect();
    let out = run(&env, &json, 0);
    assert_json_snapshot!(env.path(), "plan_json", &out.stdout);
}

#[test]
fn preflight_json() {
    let env = env();
    let out = run(
        &env,
        &[
            "--json",
            "preflight",
            USER,
            "--set",
            "manager=bob@corp.example",
        ],
        0,
    );
    assert_json_snapshot!(env.path(), "preflight_json", &out.stdout);
}

/// start, status, confirm, resume, verify, evidence show and verify: one departure, each
/// document on the way.
#[test]
fn a_departure_from_start_to_evidence() {
    let env = env();
    let out = run(
        &env,
        &[
            "--json",
            "start",
            USER,
            "--non-interactive",
            "--set",
            "manager=bob@corp.example",
            "--ticket",
            "T-1",
        ],
        3,
    );
    assert_json_snapshot!(env.path(), "start_json", &out.stdout);
    let id = departure(&out);

    let out = run(&env, &["status"], 0);
    assert_cli_snapshot!(env.path(), "status_list", stdout(&out));
    let out = run(&env, &["--json", "status"], 0);
    assert_json_snapshot!(env.path(), "status_list_json", &out.stdout);
    let out = run(&env, &["status", &id], 3);
    assert_cli_snapshot!(env.path(), "status_one", stdout(&out));
    let out = run(&env, &["--json", "status", &id], 3);
    assert_json_snapshot!(env.path(), "status_one_json", &out.stdout);

    let out = run(
        &env,
        &[
            "--json",
            "confirm",
            &id,
            "laptop",
            "--field",
            "tracking_number=1Z999",
            "--note",
            "returned to desk 4",
        ],
        0,
    );
    assert_json_snapshot!(env.path(), "confirm_json", &out.stdout);
    let out = run(
        &env,
        &[
            "--json",
            "confirm",
            &id,
            "payroll",
            "--not-applicable",
            "contractor",
        ],
        0,
    );
    assert_json_snapshot!(env.path(), "confirm_not_applicable_json", &out.stdout);

    let out = run(&env, &["--json", "resume", &id, "--non-interactive"], 0);
    assert_json_snapshot!(env.path(), "resume_json", &out.stdout);
    let out = run(&env, &["--json", "verify", &id], 0);
    assert_json_snapshot!(env.path(), "verify_json", &out.stdout);

    let evidence = env.evidence_path(&id);
    let evidence = evidence.to_str().unwrap();
    let out = run(&env, &["evidence", "show", evidence], 0);
    assert_cli_snapshot!(env.path(), "evidence_show", stdout(&out));
    let out = run(&env, &["--json", "evidence", "verify", evidence], 0);
    assert_json_snapshot!(env.path(), "evidence_verify_json", &out.stdout);
    let out = run(
        &env,
        &["--json", "evidence", "verify", evidence, "--integrity-only"],
        0,
    );
    assert_json_snapshot!(
        env.path(),
        "evidence_verify_integrity_only_json",
        &out.stdout
    );

    let out = run(&env, &["--json", "keys", "show"], 0);
    assert_json_snapshot!(env.path(), "keys_show_json", &out.stdout);
}

#[test]
fn runbook_check_json_of_a_bad_runbook() {
    let env = env();
    let bad = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/runbooks/invalid.toml"
    );
    std::fs::copy(bad, env.path().join("invalid.toml")).unwrap();
    let out = run(&env, &["--json", "runbook", "check", "invalid.toml"], 2);
    assert_json_snapshot!(env.path(), "runbook_check_invalid_json", &out.stdout);
}
