//! Departures of various ages for `offboard remind` and `verify --all`, shared by the cli tests
//! (webhooks on fakes) and the real tests (email to a real SMTP server): a runbook with an
//! automated step and two manual ones, and helpers to start departures at a fixed clock.

use std::process::Output;

use serde_json::Value;

use super::cli_env::CliEnv;

/// Remind runs "now" = T.
pub const T: &str = "2026-12-10T12:00:00Z";

pub fn at(hours: i64) -> String {
    (chrono::DateTime::parse_from_rfc3339(T).unwrap() + chrono::Duration::hours(hours))
        .to_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Steps: one automated, a laptop due a day after the effective time (escalated to the
/// manager), an exit interview due after a week. `notify` is the `[notify]` table.
pub fn runbook(notify: &str) -> String {
    format!(
        r#"[runbook]
name = "Remind test"

[inputs]
manager = {{ prompt = "Manager", required = true }}

[systems.idp]
kind = "sandbox"
latency_ms = 0

[[step]]
id = "idp-suspend"
lane = "it"
system = "idp"
action = "suspend_user"

[[step]]
id = "laptop"
lane = "facilities"
manual = "Collect the laptop of {{{{ user.email }}}}"
fields = ["tracking_number"]
owner = "facilities@corp.example"
deadline = "effective+1d"
escalate_to = "{{{{ user.manager }}}}"

[[step]]
id = "exit-interview"
lane = "manager"
manual = "Hold the exit interview"
owner = "{{{{ user.manager }}}}"
deadline = "effective+7d"

{notify}
"#
    )
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Start `user`'s departure effective `effective_h` hours from T (the clock at T), manual steps
/// left pending; its id.
pub fn start(env: &CliEnv, user: &str, effective_h: i64, manager: &str) -> String {
    start_with(env, user, effective_h, manager, &[])
}

/// [`start`] with more arguments (`--ticket 7`).
pub fn start_with(
    env: &CliEnv,
    user: &str,
    effective_h: i64,
    manager: &str,
    extra: &[&str],
) -> String {
    let eff = at(effective_h);
    let mut c = env.cmd(&[
        "--json",
        "start",
        user,
        "-r",
        "offboard.toml",
        "--non-interactive",
        "--effective-at",
        &eff,
        "--set",
        &format!("manager={manager}"),
    ]);
    c.args(extra);
    c.env("OFFBOARD_NOW", T);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["departure"].as_str().unwrap().to_string()
}

pub fn remind(env: &CliEnv, now: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--json", "remind", "-r", "offboard.toml"];
    args.extend_from_slice(extra);
    let mut c = env.cmd(&args);
    c.env("OFFBOARD_NOW", now);
    c.output().unwrap()
}

/// The `notified` events of a departure's journal.
pub fn notified(env: &CliEnv, id: &str) -> Vec<Value> {
    env.chain(id)
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .filter(|e| e["kind"] == "notified")
        .map(|e| e["data"].clone())
        .collect()
}

/// Four departures at T: alice's laptop 4 days overdue (escalated), bob's 6 hours overdue,
/// carol's due in 12 hours, dave's laptop confirmed.
pub fn four_departures(env: &CliEnv) -> [String; 4] {
    let alice = start(env, "alice@corp.example", -5 * 24, "boss@corp.example");
    let bob = start(env, "bob@corp.example", -30, "boss@corp.example");
    let carol = start(env, "carol@corp.example", -12, "boss@corp.example");
    let dave = start(env, "dave@corp.example", -5 * 24, "boss@corp.example");
    let mut c = env.cmd(&[
        "confirm",
        &dave,
        "laptop",
        "--field",
        "tracking_number=1Z999",
    ]);
    c.env("OFFBOARD_NOW", T);
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    [alice, bob, carol, dave]
}
