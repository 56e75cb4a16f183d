//! `offboard verify --all`, the nightly drift sweep, through the binary: one table over every
//! departure, exit 4 naming the one whose account was re-enabled behind the tool's back, that
//! one re-signed and its drift told on Slack, the others left unchanged; `--since` filters.

use serde_json::Value;

use crate::common::cli_env::{CliEnv, fake_runtime};
use crate::common::fake_webhooks::{self, SLACK_PATH};
use crate::common::notify_env::{T, at, notified, runbook, start, text};

fn sweep(env: &CliEnv, now: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["verify", "--all"];
    args.extend_from_slice(extra);
    let mut c = env.cmd(&args);
    c.env("OFFBOARD_NOW", now);
    c.output().unwrap()
}

#[test]
fn an_account_re_enabled_behind_the_tools_back_exits_4_names_it_and_is_told() {
    let rt = fake_runtime();
    let fake = rt.block_on(fake_webhooks::start());
    let mut env = CliEnv::with_runbook(&runbook(
        "[notify]\ndrift_to = [\"security@corp.example\"]\n[notify.slack]\nwebhook = { env = \"SLACK_WEBHOOK_URL\" }\n",
    ));
    env.var("SLACK_WEBHOOK_URL", &fake.url(SLACK_PATH));
    let alice = start(&env, "alice@corp.example", -5 * 24, "boss@corp.example");
    let bob = start(&env, "bob@corp.example", -30, "boss@corp.example");

    // Nothing changed: exit 0, nothing re-signed, nothing told.
    let out = sweep(&env, &at(1), &["-r", "offboard.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("2 departure(s) re-checked: no access came back"),
        "{t}"
    );
    assert!(t.contains("unchanged"), "{t}");
    assert!(fake.requests().is_empty());

    // Someone re-enables alice's account.
    let path = env.state().join("sandbox").join("idp.json");
    let mut idp: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    idp["users"]["alice@corp.example"]["status"] = "active".into();
    std::fs::write(&path, serde_json::to_vec(&idp).unwrap()).unwrap();

    let out = sweep(&env, &at(2), &["-r", "offboard.toml"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(&format!(
            "DRIFT: access came back for alice@corp.example ({alice}): idp-suspend"
        )),
        "{t}"
    );
    assert!(t.contains(&format!("offboard resume {alice}")), "{t}");
    assert!(!t.contains("DRIFT: access came back for bob"), "{t}");
    // The same sweep as JSON: alice drifted and was re-signed, bob was not.
    let json = {
        let mut c = env.cmd(&["--json", "verify", "--all", "-r", "offboard.toml"]);
        c.env("OFFBOARD_NOW", at(3));
        c.output().unwrap()
    };
    assert_eq!(json.status.code(), Some(4));
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    let row = |id: &str| {
        v["departures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["departure"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(row(&alice)["drift"], serde_json::json!(["idp-suspend"]));
    assert_eq!(row(&bob)["drift"], serde_json::json!([]));
    assert_eq!(
        row(&bob)["revision"],
        Value::Null,
        "bob's result did not change"
    );

    // Journaled and re-signed at the first sweep that saw it; told on Slack.
    let events: Vec<Value> = env
        .chain(&alice)
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "verify_finished" && e["data"]["drift"] == 1)
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "evidence_written" && e["data"]["revision"] == 2)
    );
    env.assert_evidence_verifies(&alice);
    let slack: Vec<Value> = fake.requests().into_iter().filter_map(|r| r.json).collect();
    assert_eq!(
        slack.len(),
        2,
        "one notice per sweep that found drift: {slack:#?}"
    );
    assert!(
        slack[0]["text"]
            .as_str()
            .unwrap()
            .contains("DRIFT: access came back for alice@corp.example"),
        "{slack:#?}"
    );
    assert!(slack[0].to_string().contains("idp-suspend"));
    fake.assert_contract(&fake_webhooks::contract(false));
    let n = notified(&env, &alice);
    assert!(
        n.iter()
            .any(|e| e["level"] == "drift" && e["channel"] == "slack" && e["sent"] == true),
        "{n:#?}"
    );
    assert!(notified(&env, &bob).is_empty());
    assert!(
        !std::fs::read_to_string(env.journal_path(&alice))
            .unwrap()
            .contains("SECRET")
    );
}

#[test]
fn since_leaves_out_older_departures_and_a_bad_value_is_a_usage_error() {
    let env = CliEnv::with_runbook(&runbook(""));
    start(&env, "alice@corp.example", -24, "boss@corp.example");
    let out = sweep(&env, &at(24 * 100), &["--since", "90d"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("No departure to re-check"),
        "{}",
        text(&out)
    );
    let out = sweep(&env, &at(24 * 100), &["--since", "2026-12-01"]);
    assert!(
        text(&out).contains("1 departure(s) re-checked"),
        "{}",
        text(&out)
    );
    let out = sweep(&env, T, &["--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = env.run(&["verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_journal_changed_after_it_was_signed_exits_5_and_the_others_are_still_checked() {
    let env = CliEnv::with_runbook(&runbook(""));
    let alice = start(&env, "alice@corp.example", -24, "boss@corp.example");
    let bob = start(&env, "bob@corp.example", -24, "boss@corp.example");
    let path = env.journal_path(&bob);
    let j = std::fs::read_to_string(&path).unwrap();
    assert!(j.contains("Collect the laptop of bob@corp.example"));
    std::fs::write(
        &path,
        j.replace(
            "Collect the laptop of bob@corp.example",
            "Collect the laptop of bob@corp.exampl",
        ),
    )
    .unwrap();
    let mut c = env.cmd(&["--json", "verify", "--all"]);
    c.env("OFFBOARD_NOW", at(1));
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "{bob}: NOT CHECKED, its journal is not what was signed"
        )),
        "{}",
        text(&out)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let alice_row = v["departures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["departure"] == alice.as_str())
        .unwrap();
    assert_eq!(alice_row["holding"], 1, "{v:#}");
}
