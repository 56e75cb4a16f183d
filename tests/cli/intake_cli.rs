//! HRIS intake through the CLI: a signed BambooHR webhook starts exactly one departure however
//! often it arrives, a tampered or stale one starts none, a future-dated termination is
//! scheduled and started by `intake due`, and `intake poll` reads BambooHR's changed list
//! through a fake, keeping its cursor.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::common::cli_env::{CliEnv, fake_runtime, text};
use crate::common::fake_bamboohr;

const KEY: &str = "bhr-webhook-private-key";

fn runbook(extra: &str) -> String {
    format!(
        r#"
[runbook]
name = "HR intake leaver"

[inputs]
manager = {{ prompt = "Manager" }}

[systems.idp]
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

[intake.bamboohr]
webhook_key = {{ env = "BAMBOOHR_WEBHOOK_KEY" }}
{extra}
"#
    )
}

const WEBHOOK: &[u8] = include_bytes!("../fixtures/intake/bamboohr-fields.json");
/// 2026-12-01T08:15:02Z, when BambooHR signed the delivery.
const SIGNED_AT: &str = "1796112902";

/// The signature as BambooHR computes it: hex HMAC-SHA256 of the body, then the timestamp.
fn sign(body: &[u8], ts: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    m.update(body);
    m.update(ts.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

fn env_with(extra: &str) -> CliEnv {
    let mut env = CliEnv::with_runbook(&runbook(extra));
    env.var("BAMBOOHR_WEBHOOK_KEY", KEY);
    env
}

fn facts(env: &CliEnv, id: &str) -> offboard::departure::DepartureFacts {
    offboard::departure::facts(&env.chain(id)).unwrap().clone()
}

fn from_event(env: &CliEnv, file: &str, sig: &str, ts: &str) -> std::process::Output {
    env.run(&[
        "start",
        "--from-event",
        file,
        "--source",
        "bamboohr",
        "-r",
        "offboard.toml",
        "--signature",
        sig,
        "--timestamp",
        ts,
        "--non-interactive",
    ])
}

#[test]
fn a_signed_bamboohr_webhook_starts_one_involuntary_departure_however_often_it_comes() {
    let mut env = env_with("");
    env.at("2026-12-01T08:15:30Z");
    std::fs::write(env.path().join("hook.json"), WEBHOOK).unwrap();
    let sig = sign(WEBHOOK, SIGNED_AT);
    let out = from_event(&env, "hook.json", &sig, SIGNED_AT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (found, _) = env.departures();
    assert_eq!(found.len(), 1, "{found:?}");
    let (id, user) = &found[0];
    assert_eq!(user, "dana.reyes@corp.example");
    let f = facts(&env, id);
    assert_eq!(f.departure_type.as_str(), "involuntary");
    assert_eq!(
        f.inputs.get("manager").map(String::as_str),
        Some("lee.park@corp.example")
    );
    let intake = f.intake.expect("the event is in the facts");
    assert_eq!(intake.source, "bamboohr");
    assert_eq!(intake.event_id, "4021/2026-12-01");
    assert_eq!(intake.authenticated, "hmac-sha256");
    assert_eq!(
        intake.sha256,
        format!("sha256:{}", offboard::journal::sha256_hex(WEBHOOK))
    );
    env.assert_evidence_verifies(id);
    let evidence: Value =
        serde_json::from_slice(&std::fs::read(env.evidence_path(id)).unwrap()).unwrap();
    let shown = &evidence["predicate"]["departure"]["intake"];
    assert_eq!(shown["event_id"], "4021/2026-12-01", "{evidence}");
    assert_eq!(shown["sha256"], intake.sha256.as_str());
    // BambooHR retries; the same delivery again (a minute later, newly signed) starts nothing.
    env.at("2026-12-01T08:16:30Z");
    let out = from_event(
        &env,
        "hook.json",
        &sign(WEBHOOK, "1796112962"),
        "1796112962",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("already received"), "{}", text(&out));
    assert_eq!(env.departures().0.len(), 1);
    // The index is private and keyed by hashes only.
    let dir = env.state().join("intake");
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains("4021") && !name.contains("dana"), "{name}");
    }
    let index = std::fs::read_to_string(dir.join("index.json")).unwrap();
    assert!(!index.contains(KEY));
}

#[test]
fn a_tampered_stale_or_unsigned_webhook_starts_nothing() {
    let mut env = env_with("");
    env.at("2026-12-01T08:15:30Z");
    let sig = sign(WEBHOOK, SIGNED_AT);
    let tampered = String::from_utf8(WEBHOOK.to_vec())
        .unwrap()
        .replace("Involuntary", "Voluntary");
    std::fs::write(env.path().join("tampered.json"), &tampered).unwrap();
    std::fs::write(env.path().join("hook.json"), WEBHOOK).unwrap();
    let out = from_event(&env, "tampered.json", &sig, SIGNED_AT);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("refused the BambooHR delivery"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(KEY));
    // The right body, replayed ten minutes later.
    env.at("2026-12-01T08:25:30Z");
    let out = from_event(&env, "hook.json", &sig, SIGNED_AT);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("replay window"), "{}", text(&out));
    // No signature at all.
    let out = env.run(&[
        "start",
        "--from-event",
        "hook.json",
        "--source",
        "bamboohr",
        "--non-interactive",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("X-BambooHR-Signature"),
        "{}",
        text(&out)
    );
    assert_eq!(env.departures().0.len(), 0);
    assert!(!env.state().join("departures").exists());
    let log = std::fs::read_to_string(env.state().join("intake").join("log.jsonl")).unwrap();
    assert_eq!(log.matches("\"refused\"").count(), 3, "{log}");
}

#[test]
fn intake_parse_prints_the_facts_and_refuses_what_it_cannot_read() {
    let env = env_with("");
    std::fs::write(env.path().join("hook.json"), WEBHOOK).unwrap();
    let headers = format!(
        "X-BambooHR-Signature: {}\nX-BambooHR-Timestamp: {SIGNED_AT}\n",
        sign(WEBHOOK, SIGNED_AT)
    );
    std::fs::write(env.path().join("headers.txt"), headers).unwrap();
    let mut env = env;
    env.at("2026-12-01T08:15:30Z");
    let out = env.run(&[
        "--json",
        "intake",
        "parse",
        "--source",
        "bamboohr",
        "hook.json",
        "--headers",
        "headers.txt",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["authenticated"], "hmac-sha256");
    let t = &v["terminations"];
    assert_eq!(t.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(t[0]["work_email"], "dana.reyes@corp.example");
    assert_eq!(t[0]["type"], "involuntary");
    assert_eq!(t[0]["effective_at"], "2026-12-01T00:00:00Z");
    assert_eq!(t[0]["manager"], "lee.park@corp.example");
    // Parsing records nothing.
    assert!(!env.state().join("intake").exists());

    std::fs::write(env.path().join("bad.json"), b"{\"employees\": 3}").unwrap();
    let out = env.run(&["intake", "parse", "--source", "workday", "bad.json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a row without a termination is not one: {}",
        text(&out)
    );
    let out = env.run(&[
        "intake",
        "parse",
        "--source",
        "bamboohr",
        "bad.json",
        "--headers",
        "headers.txt",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the signature covers another body: {}",
        text(&out)
    );
    let incomplete = br#"{"Report_Entry":[{"Employee_ID":"1","Termination_Date":"2026-12-01","Primary_Termination_Category":"Voluntary"}]}"#;
    std::fs::write(env.path().join("incomplete.json"), incomplete).unwrap();
    let out = env.run(&["intake", "parse", "--source", "workday", "incomplete.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no work email in `Email_Address"),
        "{}",
        text(&out)
    );
    std::fs::write(env.path().join("junk.json"), b"<xml/>").unwrap();
    let out = env.run(&["intake", "parse", "--source", "hibob", "junk.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not JSON"), "{}", text(&out));
}

#[test]
fn a_future_termination_is_scheduled_and_started_by_the_due_run_at_its_time() {
    // A record with no signature: the runbook for this source has no key, so none is asked.
    let mut env = CliEnv::with_runbook(&runbook("").replace(
        "[intake.bamboohr]\nwebhook_key = { env = \"BAMBOOHR_WEBHOOK_KEY\" }\n",
        "[intake.bamboohr]\ncut_at = \"17:00\"\n",
    ));
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/intake/bamboohr-employee.json"
        ),
        env.path().join("kim.json"),
    )
    .unwrap();
    env.at("2026-12-10T09:00:00Z");
    let args = [
        "start",
        "--from-event",
        "kim.json",
        "--source",
        "bamboohr",
        "--non-interactive",
    ];
    let out = env.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("Scheduled"), "{}", text(&out));
    assert!(
        text(&out).contains("2026-12-18T17:00:00.000Z"),
        "{}",
        text(&out)
    );
    assert_eq!(env.departures().0.len(), 0, "nothing starts days ahead");
    let out = env.run(&["--json", "status"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["scheduled"][0]["user"], "kim.ash@corp.example", "{v}");
    assert_eq!(v["scheduled"][0]["type"], "voluntary");
    // The same event again is already recorded.
    let out = env.run(&args);
    assert!(text(&out).contains("already received"), "{}", text(&out));
    // Cron runs before the time start nothing.
    env.at("2026-12-18T16:59:00Z");
    let out = env.run(&["intake", "due"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("Nothing due. 1 departure(s) scheduled"),
        "{}",
        text(&out)
    );
    assert_eq!(env.departures().0.len(), 0);
    // At the time, the due run starts it, once.
    env.at("2026-12-18T17:00:30Z");
    let out = env.run(&["intake", "due"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (found, _) = env.departures();
    assert_eq!(found.len(), 1, "{found:?}");
    let f = facts(&env, &found[0].0);
    assert_eq!(f.user, "kim.ash@corp.example");
    assert_eq!(f.effective_at, "2026-12-18T17:00:00.000Z");
    let intake = f.intake.unwrap();
    assert_eq!(
        intake.scheduled_at.as_deref(),
        Some("2026-12-10T09:00:00.000Z")
    );
    assert_eq!(intake.authenticated, "none");
    let out = env.run(&["intake", "due"]);
    assert!(
        text(&out).contains("Nothing due. 0 departure(s)"),
        "{}",
        text(&out)
    );
    assert_eq!(env.departures().0.len(), 1);
}

#[test]
fn polling_bamboohr_starts_todays_termination_schedules_the_future_one_and_keeps_its_cursor() {
    let rt = fake_runtime();
    let state = fake_bamboohr::Shared::default();
    {
        let mut st = state.lock().unwrap();
        st.now = Some("2026-12-01T09:00:00Z".parse().unwrap());
        st.put(
            "4021",
            "Updated",
            "2026-12-01T08:00:00Z",
            serde_json::json!({
            "workEmail": "dana.reyes@corp.example", "status": "Inactive",
            "terminationDate": "2026-12-01", "terminationType": "Involuntary",
            "supervisorEmail": "lee.park@corp.example"}),
        );
        st.put(
            "4107",
            "Updated",
            "2026-12-01T08:30:00Z",
            serde_json::json!({
            "workEmail": "kim.ash@corp.example", "status": "Active",
            "terminationDate": "2026-12-18", "terminationType": "Resignation"}),
        );
        st.put(
            "4200",
            "Updated",
            "2026-12-01T08:40:00Z",
            serde_json::json!({
            "workEmail": "sam.ortiz@corp.example", "status": "Active"}),
        );
        st.put(
            "3999",
            "Updated",
            "2026-11-20T08:00:00Z",
            serde_json::json!({
            "workEmail": "old.change@corp.example", "terminationDate": "2026-11-20",
            "terminationType": "Involuntary"}),
        );
    }
    let server = rt.block_on(fake_bamboohr::start("bhr-api-key", state.clone()));
    let extra = format!(
        "base_url = \"{}\"\napi_key = {{ env = \"BAMBOOHR_API_KEY\" }}\n",
        server.base_url
    );
    let mut env = env_with(&extra);
    env.var("BAMBOOHR_API_KEY", "bhr-api-key");
    env.at("2026-12-01T09:00:05Z");
    let out = env.run(&["intake", "poll", "--source", "bamboohr"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the first poll needs --since: {}",
        text(&out)
    );
    let out = env.run(&[
        "intake",
        "poll",
        "--source",
        "bamboohr",
        "--since",
        "2026-11-30T12:00:00.500Z",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (found, _) = env.departures();
    assert_eq!(
        found.iter().map(|(_, u)| u.as_str()).collect::<Vec<_>>(),
        ["dana.reyes@corp.example"],
        "only today's termination starts; the old change is before --since"
    );
    let out = env.run(&["--json", "status"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["scheduled"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["scheduled"][0]["user"], "kim.ash@corp.example");
    let reqs = server.requests();
    let changed: Vec<_> = reqs
        .iter()
        .filter(|r| r.raw_path == "/api/v1/employees/changed")
        .collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(
        changed[0].query_param("since"),
        Some("2026-11-30T12:00:00Z"),
        "no milliseconds"
    );
    assert!(reqs.iter().all(|r| r.auth_scheme() == Some("Basic")));
    assert!(
        reqs.iter()
            .filter(|r| r.raw_path.starts_with("/api/v1/employees/4"))
            .all(|r| r.query_param("onlyCurrent") == Some("false"))
    );
    let cursor =
        std::fs::read_to_string(env.state().join("intake").join("bamboohr.cursor")).unwrap();
    assert_eq!(cursor.trim(), "2026-12-01T09:00:00+00:00");
    // The next poll starts from the cursor; a change to a leaver already handled starts nothing.
    server.clear_requests();
    {
        let mut st = state.lock().unwrap();
        st.now = Some("2026-12-01T10:00:00Z".parse().unwrap());
        st.employees.get_mut("4021").unwrap().last_changed =
            "2026-12-01T09:30:00Z".parse().unwrap();
    }
    let out = env.run(&["intake", "poll", "--source", "bamboohr"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let reqs = server.requests();
    assert_eq!(
        reqs[0].query_param("since"),
        Some("2026-12-01T09:00:00+00:00")
    );
    assert_eq!(env.departures().0.len(), 1);
    assert!(text(&out).contains("already received"), "{}", text(&out));
    // The future termination is rescinded before its date: the scheduled departure is called
    // off, and the due run at that date starts nothing.
    {
        let mut st = state.lock().unwrap();
        st.now = Some("2026-12-02T10:00:00Z".parse().unwrap());
        let kim = st.employees.get_mut("4107").unwrap();
        kim.fields.insert("terminationDate".into(), Value::Null);
        kim.fields.insert("terminationType".into(), Value::Null);
        kim.last_changed = "2026-12-02T09:00:00Z".parse().unwrap();
    }
    env.at("2026-12-02T10:00:05Z");
    let out = env.run(&["intake", "poll", "--source", "bamboohr"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("called off the departure of kim.ash@corp.example"),
        "{}",
        text(&out)
    );
    let out = env.run(&["--json", "status"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.get("scheduled").is_none(), "{v}");
    env.at("2026-12-18T12:00:00Z");
    let out = env.run(&["intake", "due"]);
    assert!(
        text(&out).contains("Nothing due. 0 departure(s)"),
        "{}",
        text(&out)
    );
    assert_eq!(env.departures().0.len(), 1);
    // A wrong key: the cursor stays, nothing starts.
    env.var("BAMBOOHR_API_KEY", "wrong");
    let out = env.run(&["intake", "poll", "--source", "bamboohr"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("401"), "{}", text(&out));
    assert!(!text(&out).contains("wrong"), "{}", text(&out));
    let cursor =
        std::fs::read_to_string(env.state().join("intake").join("bamboohr.cursor")).unwrap();
    assert_eq!(cursor.trim(), "2026-12-02T10:00:00+00:00");
}

#[test]
fn hibob_signatures_and_personio_tokens_are_checked_from_the_headers_file() {
    use base64::Engine;
    let extra = "[intake.hibob]\nwebhook_key = { env = \"BOB_SECRET\" }\n\n[intake.personio]\nwebhook_token = { env = \"PERSONIO_TOKEN\" }\n";
    let mut env = env_with(extra);
    env.var("BOB_SECRET", "bob-secret");
    env.var("PERSONIO_TOKEN", "Bearer p-token");
    let bob = include_bytes!("../fixtures/intake/hibob-people.json");
    std::fs::write(env.path().join("bob.json"), bob).unwrap();
    let mut m = Hmac::<sha2::Sha512>::new_from_slice(b"bob-secret").unwrap();
    m.update(bob);
    let sig = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
    std::fs::write(env.path().join("bob.h"), format!("Bob-Signature: {sig}\n")).unwrap();
    let out = env.run(&[
        "--json",
        "intake",
        "parse",
        "--source",
        "hibob",
        "bob.json",
        "--headers",
        "bob.h",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["authenticated"], "hmac-sha512");
    assert_eq!(
        v["terminations"][0]["work_email"],
        "ines.moreau@corp.example"
    );
    // Hex of the same MAC is not what Bob sends.
    let out = env.run(&[
        "intake",
        "parse",
        "--source",
        "hibob",
        "bob.json",
        "--signature",
        "00ff",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let personio = include_bytes!("../fixtures/intake/personio-employments.json");
    std::fs::write(env.path().join("p.json"), personio).unwrap();
    std::fs::write(env.path().join("p.h"), "Authorization: Bearer p-token\n").unwrap();
    let out = env.run(&[
        "--json",
        "intake",
        "parse",
        "--source",
        "personio",
        "p.json",
        "--headers",
        "p.h",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["authenticated"], "token");
    std::fs::write(env.path().join("p.h"), "Authorization: Bearer guess\n").unwrap();
    let out = env.run(&[
        "intake",
        "parse",
        "--source",
        "personio",
        "p.json",
        "--headers",
        "p.h",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains("p-token"), "{}", text(&out));
    let out = env.run(&["intake", "parse", "--source", "personio", "p.json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "no token at all: {}",
        text(&out)
    );
}

#[test]
fn the_same_delivery_twice_at_once_makes_one_departure_and_both_succeed() {
    let mut env = CliEnv::with_runbook(&runbook("").replace("latency_ms = 0", "latency_ms = 700"));
    env.var("BAMBOOHR_WEBHOOK_KEY", KEY);
    env.at("2026-12-01T08:15:30Z");
    std::fs::write(env.path().join("hook.json"), WEBHOOK).unwrap();
    let sig = sign(WEBHOOK, SIGNED_AT);
    let args = [
        "start",
        "--from-event",
        "hook.json",
        "--source",
        "bamboohr",
        "--signature",
        &sig,
        "--timestamp",
        SIGNED_AT,
        "--non-interactive",
    ];
    let a = env.spawn(&args);
    let b = env.spawn(&args);
    let limit = std::time::Duration::from_secs(60);
    let (a, b) = (
        crate::common::cli_env::wait_bounded(a, limit, &args),
        crate::common::cli_env::wait_bounded(b, limit, &args),
    );
    assert_eq!(a.status.code(), Some(0), "{}", text(&a));
    assert_eq!(b.status.code(), Some(0), "{}", text(&b));
    assert_eq!(
        [&a, &b]
            .iter()
            .filter(|o| text(o).contains("already received"))
            .count(),
        1,
        "{}\n---\n{}",
        text(&a),
        text(&b)
    );
    assert_eq!(env.departures().0.len(), 1);
}

#[test]
fn an_event_based_bamboohr_webhook_is_completed_from_the_employee_record() {
    let rt = fake_runtime();
    let state = fake_bamboohr::Shared::default();
    {
        let mut st = state.lock().unwrap();
        st.now = Some("2026-12-01T08:15:00Z".parse().unwrap());
        st.put(
            "4021",
            "Updated",
            "2026-12-01T08:00:00Z",
            serde_json::json!({
            "workEmail": "dana.reyes@corp.example", "status": "Inactive",
            "terminationDate": "2026-12-01", "terminationType": "Involuntary"}),
        );
    }
    let server = rt.block_on(fake_bamboohr::start("bhr-api-key", state));
    let body = include_bytes!("../fixtures/intake/bamboohr-event.json");
    let sig = sign(body, SIGNED_AT);
    // Without an API key the event names the employee only: refused as incomplete.
    let mut bare = env_with("");
    bare.at("2026-12-01T08:15:30Z");
    std::fs::write(bare.path().join("event.json"), body).unwrap();
    let out = from_event(&bare, "event.json", &sig, SIGNED_AT);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("names employee 4021"), "{}", text(&out));
    assert_eq!(bare.departures().0.len(), 0);

    let extra = format!(
        "base_url = \"{}\"\napi_key = {{ env = \"BAMBOOHR_API_KEY\" }}\n",
        server.base_url
    );
    let mut env = env_with(&extra);
    env.var("BAMBOOHR_API_KEY", "bhr-api-key");
    env.at("2026-12-01T08:15:30Z");
    std::fs::write(env.path().join("event.json"), body).unwrap();
    let out = from_event(&env, "event.json", &sig, SIGNED_AT);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (found, _) = env.departures();
    assert_eq!(found.len(), 1, "{found:?}");
    let f = facts(&env, &found[0].0);
    assert_eq!(f.user, "dana.reyes@corp.example");
    assert_eq!(f.departure_type.as_str(), "involuntary");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "one read of the employee");
    assert_eq!(reqs[0].raw_path, "/api/v1/employees/4021");
}

#[test]
fn a_moved_termination_date_replaces_the_scheduled_departure() {
    let mut env = CliEnv::with_runbook(
        &runbook("").replace("webhook_key = { env = \"BAMBOOHR_WEBHOOK_KEY\" }\n", ""),
    );
    env.at("2026-12-10T09:00:00Z");
    let record = |date: &str| {
        format!(
            r#"{{"id":"4107","workEmail":"kim.ash@corp.example","terminationDate":"{date}","terminationType":"Resignation"}}"#
        )
    };
    std::fs::write(env.path().join("a.json"), record("2026-12-18")).unwrap();
    std::fs::write(env.path().join("b.json"), record("2026-12-22")).unwrap();
    for f in ["a.json", "b.json"] {
        let out = env.run(&["start", "--from-event", f, "--source", "bamboohr"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let out = env.run(&["--json", "status"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let scheduled = v["scheduled"].as_array().unwrap();
    assert_eq!(scheduled.len(), 1, "{v}");
    assert_eq!(scheduled[0]["effective_at"], "2026-12-22T00:00:00.000Z");
    env.at("2026-12-19T00:00:00Z");
    let out = env.run(&["intake", "due"]);
    assert!(
        text(&out).contains("Nothing due. 1 departure(s)"),
        "{}",
        text(&out)
    );
    assert_eq!(env.departures().0.len(), 0);
}
