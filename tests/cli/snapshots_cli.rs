//! Snapshots of what `offboard` prints: `plan`, `status`, `evidence show`, and every `--json`
//! document, for a sandbox departure at a fixed clock. What differs between runs (ids, times,
//! paths, digests, keys) is redacted by `common::snapshot`; the rest is the contract.

use std::process::Output;

use crate::common::cli_env::{CliEnv, text};
use crate::{assert_cli_snapshot, assert_json_snapshot};

/// flow_cli's runbook, with shorter simulated latencies.
fn runbook() -> String {
    super::flow_cli::RUNBOOK.replace("latency_ms = 20", "latency_ms = 5")
}

/// The clock every command reads.
const NOW: &str = "2026-11-30T17:00:00Z";

const USER: &str = "alice@corp.example";

fn env() -> CliEnv {
    let mut env = CliEnv::with_runbook(&runbook());
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

/// Each redaction replaces what it is for, and leaves alone what the contract is made of
/// (step ids, counts, configured latencies, emails, URLs).
#[test]
fn redactions_cover_every_varying_value_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let sample = format!(
        "id 20261130t170000-alice-corp-example-3f9a at 2026-11-30T17:00:00.000Z, \
         2026-11-30T18:00:00+01:00 and 2026-11-30 17:00 UTC\n\
         file {}/state/x.json and {}/.tmpAbC123/y\n\
         sha256:510f224f18955cf23132a2b6ad0ab1848f267a9c76dffcbb5b99eebc561aaf00\n\
         SHA256:IkbWsq9lKzqPK+HSLNGA7pfCTd9SuRllx+mmNxhrDok \
         ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHr4p23914pdWdoMBhlFXe+CMFH5kk73K/MLII0rYmjt offboard\n\
         sandbox id sb-91398e00a33225c9 took 0.31s, 12ms, 3s; \"duration_ms\": 312\n\
         -----BEGIN SSH SIGNATURE-----\nU1NIU0lH\nAAAA\n-----END SSH SIGNATURE-----\n\
         kept: 4 steps, \"latency_ms\": 20, effective+7d, idp-suspend, alice@corp.example, \
         sandbox://idp/users/alice%40corp.example/suspend",
        dir.path().display(),
        std::env::temp_dir()
            .display()
            .to_string()
            .trim_end_matches('/'),
    );
    let _guard = crate::common::snapshot::settings(dir.path()).bind_to_scope();
    insta::assert_snapshot!(sample, @r#"
    id [DEPARTURE-ID] at [TIME], [TIME] and YYYY-MM-DD HH:MM UTC
    file [TMP]/state/x.json and [TMP]/y
    sha256:[SHA256]
    SHA256:[FINGERPRINT] ssh-ed25519 [PUBLIC-KEY] offboard
    sandbox id sb-[SANDBOX-ID] took [DURATION], [DURATION], [DURATION]; "duration_ms": [DURATION]
    [SSH-SIGNATURE]
    kept: 4 steps, "latency_ms": 20, effective+7d, idp-suspend, alice@corp.example, sandbox://idp/users/alice%40corp.example/suspend
    "#);
}
