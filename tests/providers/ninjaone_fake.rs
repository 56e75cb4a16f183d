//! The ninjaone provider against an in-process fake of NinjaOne's public API v2.

use crate::common;

use std::time::Duration;

use common::fake_ninjaone::{CLIENT_ID, CLIENT_SECRET, FakeNinjaOne, system_config};
use offboard::providers::kit::http::RetryPolicy;
use offboard::providers::ninjaone::NinjaOneProvider;
use offboard::providers::{
    Account, CallCtx, Inverse, Provider, ProviderError, StepCall, UNDO_NOT_BUILT, find_kind,
};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};

const EMAIL: &str = "jdoe@client.example";

fn provider(fake: &FakeNinjaOne) -> NinjaOneProvider {
    NinjaOneProvider::new(&system_config(&fake.server.base_url))
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(5),
            max_wait: Duration::from_secs(5),
            max_total: Duration::from_secs(10),
        })
}

fn call<'a>(
    action: &'a str,
    login: &'a str,
    params: &'a Map<String, Value>,
    account: Option<&'a Account>,
) -> StepCall<'a> {
    StepCall {
        step_id: "step",
        action,
        login,
        params,
        account,
    }
}

fn params(v: Value) -> Map<String, Value> {
    serde_json::from_value(v).unwrap()
}

fn message(e: &ProviderError) -> &str {
    match e {
        ProviderError::Transient(m) | ProviderError::Permanent(m) | ProviderError::NotFound(m) => m,
    }
}

fn count(fake: &FakeNinjaOne, prefix: &str) -> usize {
    fake.lines()
        .iter()
        .filter(|l| l.starts_with(prefix))
        .count()
}

/// A person with two laptops, and someone else's.
fn fleet(fake: &FakeNinjaOne) -> (u64, u64, u64, u64) {
    let user = fake.add_end_user(EMAIL);
    let other = fake.add_end_user("asmith@client.example");
    let a = fake.add_device("JDOE-LT01", Some(user), Some("CLIENT\\jdoe"));
    let b = fake.add_device("JDOE-LT02", Some(user), None);
    fake.add_device("ASMITH-LT01", Some(other), Some("CLIENT\\asmith"));
    (user, a, b, other)
}

#[tokio::test]
async fn tag_devices_sets_fields_and_tags_reads_them_back_and_catches_drift() {
    let fake = FakeNinjaOne::start().await;
    let (user, a, b, _) = fleet(&fake);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let prm = params(json!({
        "custom_fields": { "offboardingStatus": "pending-wipe" },
        "tags": ["Offboarding"],
    }));
    let out = p
        .apply(
            &call("tag_devices", "JDoe@Client.example", &prm, None),
            &ctx,
        )
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    let account = out.account.clone().unwrap();
    assert_eq!(account.id, user.to_string());
    assert_eq!(account.id_kind, "NinjaOne end user id");
    // The devices are listed by name and id; someone else's is not touched.
    for (id, name) in [(a, "JDOE-LT01"), (b, "JDOE-LT02")] {
        assert!(
            out.summary.contains(&format!("{name} (device {id})")),
            "{}",
            out.summary
        );
        let d = fake.device(id);
        assert_eq!(d.fields["offboardingStatus"], "pending-wipe");
        assert_eq!(d.tags, [7]);
    }
    assert!(!out.summary.contains("ASMITH"), "{}", out.summary);
    let c = p
        .check(&call("tag_devices", EMAIL, &prm, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    assert!(
        c.observed.contains("offboardingStatus=\"pending-wipe\""),
        "{}",
        c.observed
    );
    // Apply twice: nothing written the second time.
    let (patches, tags) = (
        count(&fake, "PATCH /v2/device/"),
        count(&fake, "POST /v2/tag/device"),
    );
    assert_eq!((patches, tags), (2, 2));
    let again = p
        .apply(&call("tag_devices", EMAIL, &prm, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!again.changed, "{}", again.summary);
    assert_eq!(count(&fake, "PATCH /v2/device/"), 2);
    assert_eq!(count(&fake, "POST /v2/tag/device"), 2);
    // Someone resets the field behind offboard's back: the check says so.
    fake.edit_device(b, |d| {
        d.fields.insert("offboardingStatus".into(), json!("in-use"));
    });
    let c = p
        .check(&call("tag_devices", EMAIL, &prm, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    assert!(c.observed.contains("\"in-use\""), "{}", c.observed);
    fake.assert_contract();
}

#[tokio::test]
async fn a_script_run_is_requested_then_done_from_the_activities() {
    let fake = FakeNinjaOne::start().await;
    let (_, a, b, _) = fleet(&fake);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let prm = params(json!({
        "script": "Disable local user",
        "parameters": "-User jdoe -Remove",
        "run_as": "logged_on_user",
    }));
    let out = p
        .apply(&call("run_script", EMAIL, &prm, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    assert!(
        out.summary.contains("requested, not yet done"),
        "{}",
        out.summary
    );
    let account = out.account.clone().unwrap();
    let runs = fake.runs();
    assert_eq!(runs.len(), 2);
    for r in &runs {
        assert_eq!(
            r.body,
            json!({ "type": "SCRIPT", "id": 41, "parameters": "-User jdoe -Remove",
                    "runAs": "loggedonuser" })
        );
    }
    // 204 without a run id: the check reads the activities and finds it requested only.
    let c = p
        .check(&call("run_script", EMAIL, &prm, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    assert!(
        c.observed
            .contains("\"Disable local user\" pending (requested at "),
        "{}",
        c.observed
    );
    // Apply again while requested: no second run.
    let again = p
        .apply(&call("run_script", EMAIL, &prm, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!again.changed, "{}", again.summary);
    assert_eq!(fake.runs().len(), 2);
    // One device finishes: still not done; both: done, with the script's message.
    fake.finish_runs(a, "SUCCESS", "local user jdoe disabled");
    let c = p
        .check(&call("run_script", EMAIL, &prm, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    fake.finish_runs(b, "SUCCESS", "local user jdoe disabled");
    // A new process (verify) reads the same from the activities.
    let c = provider(&fake)
        .check(&call("run_script", EMAIL, &prm, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    assert!(c.observed.contains("succeeded at"), "{}", c.observed);
    assert!(
        c.observed.contains("local user jdoe disabled"),
        "{}",
        c.observed
    );
    fake.assert_contract();
}

#[tokio::test]
async fn a_failed_script_is_reported_with_its_message_and_run_again() {
    let fake = FakeNinjaOne::start().await;
    let user = fake.add_end_user(EMAIL);
    let a = fake.add_device("JDOE-LT01", Some(user), None);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let prm = params(json!({ "script": "Disable local user" }));
    let out = p
        .apply(&call("run_script", EMAIL, &prm, None), &ctx)
        .await
        .unwrap();
    let account = out.account.unwrap();
    fake.finish_runs(a, "FAILURE", "Access is denied");
    let c = p
        .check(&call("run_script", EMAIL, &prm, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    assert!(c.observed.contains("failed at"), "{}", c.observed);
    assert!(
        c.observed.contains("(result FAILURE): Access is denied"),
        "{}",
        c.observed
    );
    assert_eq!(fake.runs()[0].body["runAs"], "system");
    let again = p
        .apply(&call("run_script", EMAIL, &prm, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(again.changed, "{}", again.summary);
    assert_eq!(fake.runs().len(), 2);
    fake.assert_contract();
}

#[tokio::test]
async fn an_offline_device_is_waited_for_and_verify_keeps_reading() {
    let fake = FakeNinjaOne::start().await;
    let user = fake.add_end_user(EMAIL);
    let a = fake.add_device("JDOE-LT01", Some(user), None);
    fake.edit_device(a, |d| d.offline = true);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let prm = params(json!({ "script": "Disable local user" }));
    let out = p
        .apply(&call("run_script", EMAIL, &prm, None), &ctx)
        .await
        .unwrap();
    assert!(
        out.summary.contains("offline: waiting for the device"),
        "{}",
        out.summary
    );
    let account = out.account.unwrap();
    assert_eq!(fake.finish_runs(a, "SUCCESS", "done"), 0);
    for p in [&p, &provider(&fake)] {
        let c = p
            .check(&call("run_script", EMAIL, &prm, Some(&account)), &ctx)
            .await
            .unwrap();
        assert!(!c.revoked, "{}", c.observed);
        assert!(
            c.observed.contains("the device is offline"),
            "{}",
            c.observed
        );
        assert!(c.observed.contains("waiting for it"), "{}", c.observed);
    }
    // The device comes back and runs it.
    fake.edit_device(a, |d| d.offline = false);
    assert_eq!(fake.finish_runs(a, "SUCCESS", "done"), 1);
    let c = provider(&fake)
        .check(&call("run_script", EMAIL, &prm, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    assert_eq!(fake.runs().len(), 1);
    fake.assert_contract();
}

#[tokio::test]
async fn activities_are_paged_back_and_older_runs_do_not_count_after_since() {
    let fake = FakeNinjaOne::start().await;
    let user = fake.add_end_user(EMAIL);
    let a = fake.add_device("JDOE-LT01", Some(user), None);
    // A previous owner's run, a month ago, then plenty of other activity.
    fake.add_old_run(a, "Disable local user", 30.0 * 86_400.0, "SUCCESS");
    fake.add_noise(a, 25);
    let p = provider(&fake).with_page_size(10);
    let ctx = CallCtx::silent();
    let since = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    let prm = params(json!({ "script": "Disable local user", "since": since }));
    let out = p
        .apply(&call("run_script", EMAIL, &prm, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "the old run counted: {}", out.summary);
    // Every page was read: 26 older activities in pages of 10, each after the last id.
    let pages: Vec<String> = fake
        .lines()
        .into_iter()
        .filter(|l| l.contains("/activities"))
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(pages[1].contains("olderThan="), "{pages:?}");
    // Without `since`, the old success would have been taken as done.
    let old = params(json!({ "script": "Disable local user" }));
    let fresh = FakeNinjaOne::start().await;
    let u = fresh.add_end_user(EMAIL);
    let d = fresh.add_device("JDOE-LT01", Some(u), None);
    fresh.add_old_run(d, "Disable local user", 30.0 * 86_400.0, "SUCCESS");
    let o = provider(&fresh)
        .apply(&call("run_script", EMAIL, &old, None), &ctx)
        .await
        .unwrap();
    assert!(!o.changed, "{}", o.summary);
    fake.assert_contract();
    fresh.assert_contract();
}

#[tokio::test]
async fn a_token_that_expires_mid_run_is_fetched_again() {
    let fake = FakeNinjaOne::start().await;
    fleet(&fake);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let prm = params(json!({ "hours": 48, "reason": "offboarding: device being recovered" }));
    let out = p
        .apply(&call("set_maintenance", EMAIL, &prm, None), &ctx)
        .await
        .unwrap();
    assert_eq!(fake.tokens_issued(), 1);
    fake.expire_tokens();
    let c = p
        .check(
            &call("set_maintenance", EMAIL, &prm, out.account.as_ref()),
            &ctx,
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    assert_eq!(fake.tokens_issued(), 2);
    // The token request asked for the three scopes (the fake refuses otherwise) and never put
    // the secret in a URL.
    assert!(fake.lines().iter().all(|l| !l.contains(CLIENT_SECRET)));
    fake.assert_contract();
}

#[tokio::test]
async fn maintenance_is_set_once_read_back_and_drift_is_caught() {
    let fake = FakeNinjaOne::start().await;
    let (_, a, _, _) = fleet(&fake);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let prm = params(json!({ "until": "2099-01-31T00:00:00Z",
                             "disabled_features": ["ALERTS", "PATCHING"] }));
    let out = p
        .apply(&call("set_maintenance", EMAIL, &prm, None), &ctx)
        .await
        .unwrap();
    assert!(
        out.changed && out.summary.contains("until 2099-01-31T00:00:00Z"),
        "{}",
        out.summary
    );
    let put = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .unwrap();
    assert_eq!(
        put.json.unwrap(),
        json!({ "disabledFeatures": ["ALERTS", "PATCHING"], "end": 4_073_500_800i64 })
    );
    let account = out.account.unwrap();
    let again = p
        .apply(&call("set_maintenance", EMAIL, &prm, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!again.changed, "{}", again.summary);
    assert_eq!(count(&fake, "PUT "), 2);
    fake.edit_device(a, |d| d.maintenance = None);
    let c = p
        .check(&call("set_maintenance", EMAIL, &prm, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    assert!(c.observed.contains("no maintenance"), "{}", c.observed);
    fake.assert_contract();
}

#[tokio::test]
async fn remove_end_user_deletes_by_id_and_twice_is_nothing() {
    let fake = FakeNinjaOne::start().await;
    let (user, ..) = fleet(&fake);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let none = Map::new();
    let c = p
        .check(&call("remove_end_user", EMAIL, &none, None), &ctx)
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    let out = p
        .apply(&call("remove_end_user", EMAIL, &none, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    assert!(!fake.end_user_exists(user));
    let account = out.account.unwrap();
    let c = p
        .check(&call("remove_end_user", EMAIL, &none, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    assert_eq!(c.account.as_ref(), Some(&account));
    let again = p
        .apply(&call("remove_end_user", EMAIL, &none, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!again.changed, "{}", again.summary);
    assert_eq!(count(&fake, "DELETE "), 1);
    // A device step after the end user is gone cannot confirm, rather than pass.
    let tag = params(json!({ "tags": ["Offboarding"] }));
    let e = p
        .check(&call("tag_devices", EMAIL, &tag, Some(&account)), &ctx)
        .await
        .unwrap_err();
    assert!(message(&e).contains("cannot confirm"), "{e}");
    fake.assert_contract();
}

#[tokio::test]
async fn decommission_is_irreversible_and_checked_by_the_devices_gone() {
    let fake = FakeNinjaOne::start().await;
    let (_, a, b, _) = fleet(&fake);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let none = Map::new();
    let plan: Vec<String> = p
        .describe(&call("decommission_device", EMAIL, &none, None))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        plan.iter().any(|l| l.contains("cannot be undone")),
        "{plan:?}"
    );
    let out = p
        .apply(&call("decommission_device", EMAIL, &none, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    assert!(fake.device(a).decommissioned && fake.device(b).decommissioned);
    let account = out.account.unwrap();
    let c = p
        .check(
            &call("decommission_device", EMAIL, &none, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    assert!(c.observed.contains("gone (404)"), "{}", c.observed);
    let again = p
        .apply(
            &call("decommission_device", EMAIL, &none, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!again.changed, "{}", again.summary);
    assert_eq!(count(&fake, "POST /v2/device/"), 2);
    fake.assert_contract();
}

#[tokio::test]
async fn devices_found_by_last_logged_on_user_across_pages() {
    let fake = FakeNinjaOne::start().await;
    let user = fake.add_end_user("someone@client.example");
    for i in 0..4 {
        fake.add_device(&format!("SHARED-{i}"), Some(user), Some("CLIENT\\other"));
    }
    let mine = fake.add_device("KIOSK-7", None, Some("CLIENT\\jdoe"));
    let p = provider(&fake).with_page_size(2);
    let ctx = CallCtx::silent();
    let prm = params(json!({ "tags": ["Repurpose"], "find": "last_logged_on_user" }));
    let out = p
        .apply(&call("tag_devices", "jdoe", &prm, None), &ctx)
        .await
        .unwrap();
    assert!(
        out.summary.contains(&format!("KIOSK-7 (device {mine})")),
        "{}",
        out.summary
    );
    assert_eq!(
        out.account.as_ref().unwrap().id_kind,
        "NinjaOne last logged-on user"
    );
    assert_eq!(fake.device(mine).tags, [8]);
    assert_eq!(count(&fake, "GET /v2/devices-detailed"), 3);
    let e = p
        .apply(&call("tag_devices", "nobody", &prm, None), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
    fake.assert_contract();
}

#[tokio::test]
async fn an_unknown_person_is_not_found_never_revoked() {
    let fake = FakeNinjaOne::start().await;
    fleet(&fake);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    for (action, prm) in [
        ("tag_devices", params(json!({ "tags": ["Offboarding"] }))),
        (
            "run_script",
            params(json!({ "script": "Disable local user" })),
        ),
        ("remove_end_user", Map::new()),
        ("decommission_device", Map::new()),
    ] {
        let e = p
            .apply(&call(action, "ghost@client.example", &prm, None), &ctx)
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::NotFound(_)), "{action}: {e:?}");
        let e = p
            .check(&call(action, "ghost@client.example", &prm, None), &ctx)
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::NotFound(_)), "{action}: {e:?}");
    }
    assert!(
        fake.lines()
            .iter()
            .all(|l| l.starts_with("GET ") || l.starts_with("POST /ws/"))
    );
    fake.assert_contract();
}

#[tokio::test]
async fn ninjaone_errors_and_permission_refusals_carry_its_message() {
    let fake = FakeNinjaOne::start().await;
    fleet(&fake);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    // A custom field that does not exist: NinjaOne's 400 body, read.
    let prm = params(json!({ "custom_fields": { "wipeReason": "left" } }));
    let e = p
        .apply(&call("tag_devices", EMAIL, &prm, None), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    assert!(
        message(&e)
            .contains("Custom field wipeReason does not exist (INVALID_FIELD, incident inc-7f3a)"),
        "{e}"
    );
    // The API client may not decommission: a 403 that says which call and why.
    fake.deny("POST", "/v2/device/");
    let e = p
        .apply(&call("decommission_device", EMAIL, &Map::new(), None), &ctx)
        .await
        .unwrap_err();
    let m = message(&e);
    assert!(m.contains("403"), "{m}");
    assert!(
        m.contains("Insufficient permissions to perform operation"),
        "{m}"
    );
    assert!(m.contains("Administration > Apps > API"), "{m}");
    assert!(!m.contains(CLIENT_SECRET) && !m.contains("tok-1"), "{m}");
    // A wrong client secret: the token endpoint's OAuth error, never the secret.
    let mut cfg = system_config(&fake.server.base_url);
    cfg.secrets.insert(
        "client_secret".into(),
        secrecy::SecretString::from("wrong-secret-123".to_string()),
    );
    let bad = NinjaOneProvider::new(&cfg).unwrap();
    let e = bad
        .check(&call("remove_end_user", EMAIL, &Map::new(), None), &ctx)
        .await
        .unwrap_err();
    assert!(message(&e).contains("invalid_client"), "{e}");
    assert!(!message(&e).contains("wrong-secret-123"), "{e}");
    fake.assert_contract();
}

fn runbook(base: &str) -> String {
    format!(
        r#"[runbook]
name = "RMM leaver"
legal_hold = true

[systems.rmm]
kind = "ninjaone"
base_url = "{base}"
client_id = "{CLIENT_ID}"
client_secret = {{ env = "NINJA_CLIENT_SECRET" }}

[[step]]
id = "disable-local-user"
lane = "security"
system = "rmm"
action = "run_script"
phase = "cut"
params = {{ script = "Disable local user", parameters = "-User {{{{ user.email }}}}", since = "{{{{ departure.effective_at }}}}" }}

[[step]]
id = "tag"
lane = "it"
system = "rmm"
action = "tag_devices"
phase = "recover"
params = {{ custom_fields = {{ offboardingStatus = "pending-wipe" }} }}

[[step]]
id = "decommission"
lane = "it"
system = "rmm"
action = "decommission_device"
phase = "close"
after = ["disable-local-user"]

[[step]]
id = "remove-end-user"
lane = "it"
system = "rmm"
action = "remove_end_user"
phase = "close"
after = ["decommission"]
"#
    )
}

/// Through the binary: the script is requested and reported unconfirmed (NinjaOne gave no run
/// id), legal hold keeps the decommission and the end-user removal from running, `verify` holds
/// once the device reported the script's success, the evidence names the device, and neither
/// the client secret nor a token is written anywhere.
#[test]
fn start_runs_the_script_verify_reads_its_result_and_legal_hold_blocks_the_rest() {
    use crate::common::cli_env::{CliEnv, fake_runtime, text, walk};
    let rt = fake_runtime();
    let fake = rt.block_on(FakeNinjaOne::start());
    let user = fake.add_end_user(EMAIL);
    let laptop = fake.add_device("JDOE-LT01", Some(user), None);
    let mut env = CliEnv::new();
    env.var("NINJA_CLIENT_SECRET", CLIENT_SECRET);
    env.write_runbook(&runbook(&fake.server.base_url));
    let check = env.run(&["runbook", "check", "offboard.toml"]);
    assert!(check.status.success(), "{}", text(&check));
    let plan = env.run(&["plan", EMAIL, "-r", "offboard.toml"]);
    assert!(text(&plan).contains("cannot be undone"), "{}", text(&plan));
    assert!(fake.requests().is_empty(), "plan reached NinjaOne");

    let out = env.run(&CliEnv::start_args(EMAIL));
    let all = text(&out);
    let runs = fake.runs();
    assert_eq!(runs.len(), 1, "{all}");
    assert_eq!(runs[0].body["parameters"], format!("-User {EMAIL}"));
    assert_eq!(
        fake.device(laptop).fields["offboardingStatus"],
        "pending-wipe"
    );
    assert!(!fake.device(laptop).decommissioned && fake.end_user_exists(user));
    let dep = env.departure_of(EMAIL).unwrap();
    let statuses = env.step_statuses(&dep);
    for (step, want) in [
        ("disable-local-user", "unconfirmed"),
        ("decommission", "skipped"),
        ("remove-end-user", "skipped"),
    ] {
        assert!(
            statuses.contains(&(step.into(), want.into())),
            "{step} should be {want}: {statuses:?}\n{all}"
        );
    }
    assert!(all.contains("pending (requested at"), "{all}");
    fake.finish_runs(laptop, "SUCCESS", "local user disabled");
    let verify = env.run(&["verify", &dep]);
    let verified = text(&verify);
    assert!(verify.status.success(), "{verified}");
    assert!(verified.contains("local user disabled"), "{verified}");
    let evidence = std::fs::read_to_string(env.evidence_path(&dep)).unwrap();
    assert!(
        evidence.contains(&format!("JDOE-LT01 (device {laptop})")),
        "{evidence}"
    );
    for f in walk(env.path()) {
        let Ok(body) = std::fs::read_to_string(&f) else {
            continue;
        };
        for secret in [CLIENT_SECRET, "tok-1"] {
            assert!(!body.contains(secret), "{} holds a secret", f.display());
        }
    }
    fake.assert_contract();
}

#[tokio::test]
async fn a_busy_server_is_retried_and_a_lasting_outage_says_so() {
    use common::fake_kit::{Fault, RetryAfterStyle};
    let fake = FakeNinjaOne::start().await;
    fleet(&fake);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let prm = params(json!({ "script": "Disable local user" }));
    fake.server.fail_next_on(
        "GET",
        "/v2/user/end-users",
        Fault::too_many(RetryAfterStyle::Seconds(0)),
    );
    fake.server.fail_next_on(
        "GET",
        "/v2/device/{id}/activities",
        Fault::unavailable(None),
    );
    let out = p
        .apply(&call("run_script", EMAIL, &prm, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    assert_eq!(fake.server.injected().len(), 2);
    // The run itself is a POST that adds: a 502 after it may have reached NinjaOne is not sent
    // again (a second run), it is reported.
    let fresh = FakeNinjaOne::start().await;
    let u = fresh.add_end_user(EMAIL);
    fresh.add_device("JDOE-LT01", Some(u), None);
    fresh
        .server
        .fail_next_on("POST", "/v2/device/{id}/script/run", Fault::bad_gateway());
    let e = provider(&fresh)
        .apply(&call("run_script", EMAIL, &prm, None), &ctx)
        .await
        .unwrap_err();
    assert!(message(&e).contains("502"), "{e}");
    assert_eq!(
        fresh
            .lines()
            .iter()
            .filter(|l| l.starts_with("POST /v2/device/"))
            .count(),
        1
    );
    fake.assert_contract();
    fresh.assert_contract();
}

#[tokio::test]
async fn a_device_now_owned_by_someone_else_is_left_alone() {
    let fake = FakeNinjaOne::start().await;
    let (_, a, b, _) = fleet(&fake);
    // NinjaOne's end-user list still names device b, but the device says it has a new owner.
    fake.edit_device(b, |d| d.owner_uid = Some("new-owner-uid".into()));
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let none = Map::new();
    let out = p
        .apply(&call("decommission_device", EMAIL, &none, None), &ctx)
        .await
        .unwrap();
    assert!(fake.device(a).decommissioned);
    assert!(!fake.device(b).decommissioned, "{}", out.summary);
    assert!(
        out.summary
            .contains("owned by someone else now (left alone): JDOE-LT02"),
        "{}",
        out.summary
    );
    fake.assert_contract();
}

/// A context that keeps the pre-states an apply records.
fn befores() -> (CallCtx, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (
        CallCtx::silent().on_before(move |v| s.lock().unwrap().push(v.clone())),
        seen,
    )
}

#[test]
fn every_ninjaone_action_declares_its_inverse() {
    let kind = find_kind("ninjaone").unwrap();
    for a in kind.actions {
        assert_ne!(a.inverse, Inverse::None(UNDO_NOT_BUILT), "{}", a.name);
    }
    let inverse = |n: &str| kind.action(n).unwrap().inverse;
    assert!(
        matches!(inverse("tag_devices"), Inverse::Restore(t) if t.contains("/v2/tag/device/{id}"))
    );
    assert!(matches!(inverse("set_maintenance"), Inverse::Restore(_)));
    assert!(matches!(inverse("remove_end_user"), Inverse::None(t) if t.contains("new id")));
    assert!(
        matches!(inverse("decommission_device"), Inverse::None(t) if t.contains("recommission"))
    );
    assert!(matches!(inverse("run_script"), Inverse::None(_)));
}

#[tokio::test]
async fn tag_devices_records_the_old_tags_and_fields_and_restore_puts_them_back() {
    let fake = FakeNinjaOne::start().await;
    let (user, a, b, _) = fleet(&fake);
    // Device a had the Repurpose tag and a note; b had nothing.
    fake.edit_device(a, |d| {
        d.tags = vec![8];
        d.fields.insert("offboardingStatus".into(), json!("in-use"));
    });
    let p = provider(&fake);
    let prm = params(json!({
        "custom_fields": { "offboardingStatus": "pending-wipe" },
        "tags": ["Offboarding"],
    }));
    let (ctx, seen) = befores();
    let out = p
        .apply(&call("tag_devices", EMAIL, &prm, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    let account = out.account.unwrap();
    assert_eq!(account.id, user.to_string());
    let before = seen.lock().unwrap().clone();
    assert_eq!(before.len(), 1, "{before:?}");
    let before = before[0].clone();
    assert_eq!(
        before,
        json!({ "devices": [
            { "id": a, "name": "JDOE-LT01", "tags": [{ "id": 8, "name": "Repurpose" }],
              "custom_fields": { "offboardingStatus": "in-use" } },
            { "id": b, "name": "JDOE-LT02", "tags": [],
              "custom_fields": { "offboardingStatus": null } },
        ]})
    );
    assert_eq!(fake.device(a).tags, [8, 7]);

    let c = call("tag_devices", EMAIL, &prm, Some(&account));
    let plan: Vec<String> = p
        .describe_restore(&c, &before)
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l.method,
                l.url.trim_start_matches(&fake.server.base_url)
            )
        })
        .collect();
    assert_eq!(plan[0], format!("GET /v2/device/{a}"));
    assert!(
        plan[1].starts_with(&format!("PUT /v2/tag/device/{a} (tagIds [8]")),
        "{plan:?}"
    );

    let not_yet = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!not_yet.restored, "{not_yet:?}");
    assert!(
        not_yet.observed.contains("Offboarding"),
        "{}",
        not_yet.observed
    );

    let r = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(r.changed, "{}", r.summary);
    assert_eq!(fake.device(a).tags, [8]);
    assert_eq!(fake.device(a).fields["offboardingStatus"], "in-use");
    assert!(fake.device(b).tags.is_empty());
    assert!(!fake.device(b).fields.contains_key("offboardingStatus"));
    let puts: Vec<Value> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.json.unwrap())
        .collect();
    assert_eq!(puts, [json!({ "tagIds": [8] }), json!({ "tagIds": [] })]);

    let writes = fake.requests().iter().filter(|r| r.method != "GET").count();
    let again = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(!again.changed, "{}", again.summary);
    assert_eq!(
        fake.requests().iter().filter(|r| r.method != "GET").count(),
        writes
    );

    let check = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(check.restored, "{check:?}");
    assert_eq!(check.after, before);

    // Works from the recorded devices even once the end user is gone; a device gone is named.
    fake.edit_device(b, |d| d.decommissioned = true);
    let check = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!check.restored);
    assert!(
        check.observed.contains(&format!("device {b} is gone")),
        "{}",
        check.observed
    );
    fake.assert_contract();
}

#[tokio::test]
async fn set_maintenance_is_ended_by_restore_and_an_older_window_is_named() {
    let fake = FakeNinjaOne::start().await;
    let (_, a, b, _) = fleet(&fake);
    // Device b was already in maintenance until 2099-12 (offboard leaves it alone when it covers).
    fake.edit_device(b, |d| {
        d.maintenance = Some(("IN_MAINTENANCE".into(), 4_100_000_000.0))
    });
    let p = provider(&fake);
    let prm = params(json!({ "until": "2099-01-31T00:00:00Z" }));
    let (ctx, seen) = befores();
    let out = p
        .apply(&call("set_maintenance", EMAIL, &prm, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    let account = out.account.unwrap();
    let before = seen.lock().unwrap()[0].clone();
    assert_eq!(
        before,
        json!({ "devices": [
            { "id": a, "name": "JDOE-LT01", "maintenance": null },
            { "id": b, "name": "JDOE-LT02", "maintenance":
                { "status": "IN_MAINTENANCE", "start": 1_796_000_000.0, "end": 4_100_000_000.0 } },
        ]})
    );
    let c = call("set_maintenance", EMAIL, &prm, Some(&account));
    let r = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(r.changed, "{}", r.summary);
    assert!(fake.device(a).maintenance.is_none());
    // b's own window is not offboard's: left as it is, and it is not "not back".
    assert_eq!(
        fake.device(b).maintenance.as_ref().unwrap().1,
        4_100_000_000.0
    );
    let check = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(check.restored, "{check:?}");
    assert_eq!(check.after, before);
    let again = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(!again.changed, "{}", again.summary);
    assert_eq!(count(&fake, "DELETE /v2/device/"), 1);

    // Had b's window been overwritten, restore says to put it back by hand, and the check
    // says it is not back.
    fake.edit_device(b, |d| {
        d.maintenance = Some(("PENDING".into(), 4_073_500_800.0))
    });
    let r = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(!r.changed);
    assert!(r.summary.contains("put it back by hand"), "{}", r.summary);
    let check = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!check.restored);
    assert!(check.observed.contains("JDOE-LT02"), "{}", check.observed);
    fake.assert_contract();
}

#[tokio::test]
async fn irreversible_actions_record_what_they_remove() {
    let fake = FakeNinjaOne::start().await;
    let (user, a, b, _) = fleet(&fake);
    let p = provider(&fake);
    let none = Map::new();
    let (ctx, seen) = befores();
    p.apply(&call("decommission_device", EMAIL, &none, None), &ctx)
        .await
        .unwrap();
    let (ctx2, seen2) = befores();
    p.apply(&call("remove_end_user", EMAIL, &none, None), &ctx2)
        .await
        .unwrap();
    assert_eq!(
        seen.lock().unwrap()[0],
        json!({ "devices": [
            { "id": a, "name": "JDOE-LT01", "nodeClass": "WINDOWS_WORKSTATION",
              "approvalStatus": "APPROVED" },
            { "id": b, "name": "JDOE-LT02", "nodeClass": "WINDOWS_WORKSTATION",
              "approvalStatus": "APPROVED" },
        ]})
    );
    let (ctx3, seen3) = befores();
    let prm = params(json!({ "script": "Disable local user" }));
    let fake2 = FakeNinjaOne::start().await;
    let (_, c, d, _) = fleet(&fake2);
    provider(&fake2)
        .apply(&call("run_script", EMAIL, &prm, None), &ctx3)
        .await
        .unwrap();
    assert_eq!(
        seen3.lock().unwrap()[0],
        json!({ "script": "Disable local user", "devices": [
            { "id": c, "name": "JDOE-LT01", "offline": false },
            { "id": d, "name": "JDOE-LT02", "offline": false },
        ]})
    );
    let end_user = &seen2.lock().unwrap()[0]["end_user"];
    assert_eq!(end_user["id"], user);
    assert_eq!(end_user["email"], EMAIL);
    assert_eq!(end_user["assignedDeviceIds"], json!([a, b]));
}
