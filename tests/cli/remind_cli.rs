//! `offboard remind` through the binary: departures of various ages in one state dir, Slack and
//! Teams webhooks on fakes that check the payload formats; owners first, escalation after 48 h,
//! nothing twice within the interval, a failed send retried at the next run, `--dry-run` sends
//! and journals nothing, and no webhook URL anywhere.

use std::process::Output;

use serde_json::Value;

use crate::common::cli_env::{CliEnv, fake_runtime};
use crate::common::fake_kit::{FakeServer, Fault};
use crate::common::fake_webhooks::{self, SLACK_PATH, TEAMS_PATH};
use crate::common::notify_env::{T, at, four_departures, notified, remind, runbook, start, text};

fn webhooks_env(fake: &FakeServer, teams_format: &str) -> CliEnv {
    let mut env = CliEnv::with_runbook(&runbook(&format!(
        "[notify.slack]\nwebhook = {{ env = \"SLACK_WEBHOOK_URL\" }}\n[notify.teams]\nwebhook = {{ env = \"TEAMS_WEBHOOK_URL\" }}\nformat = \"{teams_format}\"\n"
    )));
    env.var("SLACK_WEBHOOK_URL", &fake.url(SLACK_PATH));
    env.var("TEAMS_WEBHOOK_URL", &fake.url(TEAMS_PATH));
    env
}

fn assert_no_webhook_url(env: &CliEnv, ids: &[String], outputs: &[&Output]) {
    for o in outputs {
        let t = text(o);
        assert!(
            !t.contains("SECRET"),
            "a webhook URL leaked into the output:\n{t}"
        );
    }
    for id in ids {
        let j = std::fs::read_to_string(env.journal_path(id)).unwrap();
        assert!(
            !j.contains("SECRET"),
            "a webhook URL leaked into {id}'s journal"
        );
    }
}

#[test]
fn reminders_then_escalation_on_slack_and_teams_never_twice_within_the_interval() {
    let rt = fake_runtime();
    let fake = rt.block_on(fake_webhooks::start());
    let env = webhooks_env(&fake, "adaptive_card");
    let [alice, bob, carol, dave] = four_departures(&env);

    let first = remind(&env, T, &[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    fake.assert_contract(&fake_webhooks::contract(false));
    let reqs = fake.requests();
    // alice: reminder to facilities + escalation to her manager; bob and carol: reminders.
    assert_eq!(
        reqs.len(),
        8,
        "{:#?}",
        reqs.iter().map(|r| r.line()).collect::<Vec<_>>()
    );
    let slack: Vec<&Value> = reqs
        .iter()
        .filter(|r| r.raw_path == SLACK_PATH)
        .map(|r| r.json.as_ref().unwrap())
        .collect();
    assert_eq!(slack.len(), 4);
    assert!(
        slack
            .iter()
            .all(|v| fake_webhooks::slack_problem(v).is_none())
    );
    // Owner first: alice's reminder before her escalation.
    let alice_msgs: Vec<String> = slack
        .iter()
        .map(|v| v["text"].as_str().unwrap().to_string())
        .filter(|t| t.contains("alice@corp.example"))
        .collect();
    assert_eq!(alice_msgs.len(), 2, "{alice_msgs:?}");
    assert!(alice_msgs[0].contains("Overdue"), "{alice_msgs:?}");
    assert!(alice_msgs[1].contains("Escalation"), "{alice_msgs:?}");
    // Webhooks post to a channel: each message names whom it is for.
    assert!(
        slack
            .iter()
            .any(|v| v["text"].as_str().unwrap().contains("Escalation")
                && v.to_string().contains("For boss@corp.example")),
        "{slack:#?}"
    );
    let carol_msg = slack
        .iter()
        .find(|v| v["text"].as_str().unwrap().contains("carol@corp.example"))
        .unwrap();
    assert!(carol_msg["text"].as_str().unwrap().contains("due soon"));
    assert!(
        carol_msg.to_string().contains("offboard confirm"),
        "{carol_msg}"
    );

    // Journaled: who, which channel, which steps.
    let n = notified(&env, &alice);
    assert_eq!(n.len(), 4, "{n:#?}");
    assert!(n.iter().any(|e| e["channel"] == "slack"
        && e["level"] == "escalation"
        && e["to"] == "boss@corp.example"
        && e["steps"] == serde_json::json!(["laptop"])
        && e["sent"] == true));
    assert!(n.iter().any(|e| e["channel"] == "teams"
        && e["level"] == "reminder"
        && e["to"] == "facilities@corp.example"));
    let n = notified(&env, &bob);
    assert_eq!(n.len(), 2, "bob is 6 h overdue: no escalation yet: {n:#?}");
    assert!(n.iter().all(|e| e["level"] == "reminder"));
    assert!(
        notified(&env, &dave).is_empty(),
        "dave's laptop was confirmed"
    );
    assert_eq!(notified(&env, &carol).len(), 2);
    // The journal is still what evidence verify accepts (its chain), and status reads it.
    env.assert_evidence_verifies(&alice);

    // An hour later: nothing again.
    fake.clear_requests();
    let second = remind(&env, &at(1), &[]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert!(fake.requests().is_empty(), "sent twice within the interval");
    let v: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(v["sent"], 0);
    assert_eq!(v["already_sent"], 8);
    assert_eq!(notified(&env, &alice).len(), 4);

    // A day later, bob's laptop is 30 h overdue: reminded again, not yet escalated; two days
    // later, 54 h overdue, escalated.
    let third = remind(&env, &at(24), &[]);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third));
    let n = notified(&env, &bob);
    assert_eq!(n.len(), 4, "{n:#?}");
    assert!(n.iter().all(|e| e["level"] == "reminder"), "{n:#?}");
    let third = remind(&env, &at(48), &[]);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third));
    let n = notified(&env, &bob);
    assert!(
        n.iter()
            .any(|e| e["level"] == "escalation" && e["to"] == "boss@corp.example"),
        "{n:#?}"
    );
    assert_no_webhook_url(&env, &[alice, bob, carol, dave], &[&first, &second, &third]);
}

#[test]
fn a_failed_send_is_journaled_does_not_block_the_others_and_is_retried_next_run() {
    let rt = fake_runtime();
    let fake = rt.block_on(fake_webhooks::start());
    let env = webhooks_env(&fake, "message_card");
    let alice = start(&env, "alice@corp.example", -5 * 24, "boss@corp.example");
    // The first Teams post fails.
    fake.fail_next_on("POST", TEAMS_PATH, Fault::server_error());
    let first = remind(&env, T, &[]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    let v: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(
        (v["sent"].as_u64(), v["failed"].as_u64()),
        (Some(3), Some(1))
    );
    fake.assert_contract(&fake_webhooks::contract(true));
    let n = notified(&env, &alice);
    let failed: Vec<&Value> = n.iter().filter(|e| e["sent"] == false).collect();
    assert_eq!(failed.len(), 1, "{n:#?}");
    assert_eq!(failed[0]["channel"], "teams");
    assert!(
        failed[0]["error"].as_str().unwrap().contains("HTTP 500"),
        "{failed:?}"
    );
    let stderr_and_out = text(&first);
    assert!(stderr_and_out.contains("FAILED"), "{stderr_and_out}");

    // The next run (within the interval) sends exactly the one that failed.
    fake.clear_requests();
    let second = remind(&env, &at(1), &[]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let reqs = fake.requests();
    assert_eq!(
        reqs.len(),
        1,
        "{:#?}",
        reqs.iter().map(|r| r.line()).collect::<Vec<_>>()
    );
    assert_eq!(reqs[0].raw_path, TEAMS_PATH);
    let retried = &failed[0];
    let n = notified(&env, &alice);
    let last = n.last().unwrap();
    assert_eq!(
        (&last["to"], &last["level"], &last["sent"]),
        (&retried["to"], &retried["level"], &Value::Bool(true))
    );
    assert_no_webhook_url(&env, &[alice], &[&first, &second]);
}

#[test]
fn dry_run_sends_and_journals_nothing_and_says_what_it_would_send() {
    let rt = fake_runtime();
    let fake = rt.block_on(fake_webhooks::start());
    let env = webhooks_env(&fake, "adaptive_card");
    let alice = start(&env, "alice@corp.example", -5 * 24, "boss@corp.example");
    let before = std::fs::read(env.journal_path(&alice)).unwrap();
    let mut c = env.cmd(&["remind", "--dry-run", "-r", "offboard.toml"]);
    c.env("OFFBOARD_NOW", T);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("would send"), "{t}");
    assert!(
        t.contains("escalation") && t.contains("boss@corp.example"),
        "{t}"
    );
    assert!(t.contains("4 notification(s) would be sent"), "{t}");
    assert!(fake.requests().is_empty());
    assert_eq!(std::fs::read(env.journal_path(&alice)).unwrap(), before);
}

#[test]
fn without_a_notify_table_or_with_every_channel_off_remind_is_a_usage_error() {
    let env = CliEnv::with_runbook(&runbook(""));
    let out = env.run(&["remind", "-r", "offboard.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no [notify] table"), "{}", text(&out));
    env.write_runbook(&runbook("[notify]\nticket_note = false\n"));
    let out = env.run(&["remind", "-r", "offboard.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("turns every channel off"),
        "{}",
        text(&out)
    );
}

#[test]
fn with_ticketing_each_reminder_is_a_private_note_on_the_departures_ticket() {
    use crate::common::fake_redmine::FakeRedmine;
    const KEY: &str = "rk-SECRET-remind-31";
    let rt = fake_runtime();
    let fake = rt.block_on(FakeRedmine::start(KEY));
    let ticket = fake.add_issue();
    let mut env = CliEnv::with_runbook(&runbook(&format!(
        "[ticketing]\nkind = \"redmine\"\nbase_url = \"{}\"\napi_key = {{ env = \"REDMINE_API_KEY\" }}\n\n[notify]\nticket_note = true\n",
        fake.server.base_url
    )));
    env.var("REDMINE_API_KEY", KEY);
    let alice = crate::common::notify_env::start_with(
        &env,
        "alice@corp.example",
        -5 * 24,
        "boss@corp.example",
        &["--ticket", &ticket],
    );
    let before = fake.issue(&ticket).journals.len();
    let out = remind(&env, T, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let journals = fake.issue(&ticket).journals;
    let notes: Vec<&str> = journals[before..]
        .iter()
        .map(|j| j.notes.as_str())
        .collect();
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert!(
        journals[before..]
            .iter()
            .all(|j| j.private_notes && j.attachments.is_empty())
    );
    assert!(
        notes[0].contains("Overdue") && notes[0].contains("laptop"),
        "{notes:#?}"
    );
    assert!(
        notes[1].contains("Escalation") && notes[1].contains("boss@corp.example"),
        "{notes:#?}"
    );
    fake.assert_contract();
    let n = notified(&env, &alice);
    assert!(
        n.iter()
            .all(|e| e["channel"] == "ticket" && e["sent"] == true),
        "{n:#?}"
    );
    // Not again within the interval.
    let out = remind(&env, &at(2), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(fake.issue(&ticket).journals.len(), before + 2);
    assert!(!text(&out).contains(KEY));
}

#[test]
fn escalate_after_is_set_for_the_runbook_and_for_a_step() {
    let rt = fake_runtime();
    let fake = rt.block_on(fake_webhooks::start());
    let slack = "[notify.slack]\nwebhook = { env = \"SLACK_WEBHOOK_URL\" }\n";
    let mut env = CliEnv::with_runbook(&runbook(&format!(
        "[notify]\nescalate_after = \"5d\"\n{slack}"
    )));
    env.var("SLACK_WEBHOOK_URL", &fake.url(SLACK_PATH));
    let alice = start(&env, "alice@corp.example", -5 * 24, "boss@corp.example");
    let bob = start(&env, "bob@corp.example", -30, "boss@corp.example");
    let escalated = |out: &std::process::Output| -> Vec<String> {
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["level"] == "escalation")
            .map(|n| n["departure"].as_str().unwrap().to_string())
            .collect()
    };
    // Runbook-wide 5 days: alice's laptop, 4 days overdue, is not escalated yet.
    let out = remind(&env, T, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(escalated(&out).is_empty(), "{}", text(&out));
    // The step's own 2 hours wins: both laptops (4 days and 6 hours overdue) are escalated.
    env.write_runbook(
        &runbook(&format!("[notify]\nescalate_after = \"5d\"\n{slack}")).replacen(
            "escalate_to = \"{{ user.manager }}\"\n",
            "escalate_to = \"{{ user.manager }}\"\nescalate_after = \"2h\"\n",
            1,
        ),
    );
    let out = remind(&env, T, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut got = escalated(&out);
    got.sort();
    let mut want = vec![alice, bob];
    want.sort();
    assert_eq!(got, want, "{}", text(&out));
    assert!(fake.requests().is_empty(), "a dry run sent something");
}

#[test]
fn a_departure_being_driven_is_left_for_the_next_run_and_the_others_are_reminded() {
    let rt = fake_runtime();
    let fake = rt.block_on(fake_webhooks::start());
    let env = webhooks_env(&fake, "adaptive_card");
    let alice = start(&env, "alice@corp.example", -5 * 24, "boss@corp.example");
    let bob = start(&env, "bob@corp.example", -30, "boss@corp.example");
    // Another process drives alice's departure (holds its lock).
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(env.departure_dir(&alice).join("lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let out = remind(&env, T, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{alice}: not reminded this time")),
        "{}",
        text(&out)
    );
    assert!(notified(&env, &alice).is_empty());
    assert_eq!(
        notified(&env, &bob).len(),
        2,
        "bob is reminded all the same"
    );
    drop(lock);
    let out = remind(&env, &at(1), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(notified(&env, &alice).len(), 4);
    assert_eq!(notified(&env, &bob).len(), 2, "not twice");
}
