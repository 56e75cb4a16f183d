//! `offboard runbook check` and `offboard runbook schema`, end to end.

use assert_cmd::Command;
use predicates::prelude::*;

const VALID: &str = "tests/fixtures/runbooks/valid.toml";
const INVALID: &str = "tests/fixtures/runbooks/invalid.toml";

fn offboard(state: &tempfile::TempDir) -> Command {
    let mut cmd = Command::cargo_bin("offboard").expect("binary builds");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("OFFBOARD_STATE_DIR", state.path())
        .env("NO_COLOR", "1")
        .env_remove("OFFBOARD_RUNBOOK");
    cmd
}

#[test]
fn check_valid_runbook_exits_0_with_a_summary() {
    let state = tempfile::tempdir().unwrap();
    offboard(&state)
        .args(["runbook", "check", VALID])
        .assert()
        .success()
        .stdout(format!(
            "ok: {VALID}: runbook \"Fixture\": 1 system, 2 steps (1 automated, 1 manual)\n"
        ));
}

#[test]
fn check_example_runbooks() {
    let state = tempfile::tempdir().unwrap();
    for file in ["runbooks/demo.toml", "runbooks/scim-saas.toml"] {
        offboard(&state)
            .args(["runbook", "check", file])
            .assert()
            .success()
            .stdout(predicate::str::starts_with(format!("ok: {file}: runbook ")));
    }
}

#[test]
fn check_invalid_runbook_exits_2_with_locations_and_help() {
    let state = tempfile::tempdir().unwrap();
    offboard(&state)
        .args(["runbook", "check", INVALID])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(format!("{INVALID}:7:9")))
        .stderr(predicate::str::contains(format!("{INVALID}:11:8")))
        .stderr(predicate::str::contains("= help:"))
        .stderr(predicate::str::contains("hunter2").not());
}

#[test]
fn check_invalid_runbook_renders_every_error() {
    let state = tempfile::tempdir().unwrap();
    let out = offboard(&state)
        .args(["--color", "never", "runbook", "check", INVALID])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(String::from_utf8(out.stderr).unwrap());
}

#[test]
fn check_json_reports_diagnostics_with_line_and_column() {
    let state = tempfile::tempdir().unwrap();
    let out = offboard(&state)
        .args(["--json", "runbook", "check", INVALID])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["valid"], false);
    let diags = v["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 6);
    assert_eq!(diags[0]["line"], 7);
    assert_eq!(diags[0]["column"], 9);
    assert!(
        diags[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("secrets must not be written in the runbook")
    );
    assert!(diags.iter().all(|d| d["hint"].is_string()));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));

    let out = offboard(&state)
        .args(["--json", "runbook", "check", VALID])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["valid"], true);
    assert_eq!(v["diagnostics"], serde_json::json!([]));
}

#[test]
fn check_missing_file_exits_2() {
    let state = tempfile::tempdir().unwrap();
    offboard(&state)
        .args([
            "runbook",
            "check",
            "tests/fixtures/runbooks/does-not-exist.toml",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read runbook"));
}

#[test]
fn schema_prints_the_json_schema() {
    let state = tempfile::tempdir().unwrap();
    let out = offboard(&state)
        .args(["runbook", "schema"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(schema["title"], "offboard runbook");
    assert!(schema["properties"]["step"].is_object());
    let checked_in =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks/schema.json")).unwrap();
    assert_eq!(out.stdout, checked_in);
}

#[test]
fn check_refuses_a_runbook_with_no_steps_at_its_runbook_table() {
    let state = tempfile::tempdir().unwrap();
    let file = "tests/fixtures/runbooks/bad/no-steps.toml";
    offboard(&state)
        .args(["runbook", "check", file])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("{file}:4:2")))
        .stderr(predicate::str::contains("the runbook has no steps"))
        .stderr(predicate::str::contains("add at least one `[[step]]`"));
}
