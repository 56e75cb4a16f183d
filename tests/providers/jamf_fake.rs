//! The jamf provider against an in-process fake of the Jamf Pro API.

use crate::common;

use std::time::Duration;

use common::fake_jamf::{CLIENT_ID, CLIENT_SECRET, FakeJamf, system_config};
use common::fake_kit::Fault;
use offboard::providers::jamf::JamfProvider;
use offboard::providers::kit::http::RetryPolicy;
use offboard::providers::{
    Account, CallCtx, Inverse, Provider, ProviderError, StepCall, UNDO_NOT_BUILT, find_kind,
};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};

const PIN: &str = "482913";

fn provider(fake: &FakeJamf) -> JamfProvider {
    JamfProvider::new(&system_config(&fake.server.base_url))
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 4,
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

fn message(e: &ProviderError) -> &str {
    match e {
        ProviderError::Transient(m) | ProviderError::Permanent(m) | ProviderError::NotFound(m) => m,
    }
}

fn lock_params() -> Map<String, Value> {
    serde_json::from_value(json!({
        "pin": { "command": ["echo", PIN] },
        "message": "This Mac belongs to Acme. Call IT.",
        "phone_number": "+1 555 0100",
    }))
    .unwrap()
}

fn posts(fake: &FakeJamf) -> usize {
    fake.lines()
        .iter()
        .filter(|l| l.starts_with("POST /api/v2/mdm/commands"))
        .count()
}

#[tokio::test]
async fn lock_is_requested_then_done_once_every_mac_acknowledges() {
    let fake = FakeJamf::start().await;
    let a = fake.add_computer("jdoe", "jdoe-mbp");
    let b = fake.add_computer("jdoe", "jdoe-imac");
    let other = fake.add_computer("asmith", "asmith-mbp");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params = lock_params();
    let out = p
        .apply(&call("lock_computer", "jdoe", &params, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    let account = out.account.clone().unwrap();
    assert_eq!(
        (account.id.as_str(), account.id_kind.as_str()),
        ("jdoe", "Jamf username")
    );
    // Both Macs named, by inventory id and management id, and said to be requested only.
    for id in [&a, &b] {
        let c = fake.computer(id);
        assert!(out.summary.contains(&format!("id {id}")), "{}", out.summary);
        assert!(
            out.summary.contains(c.management_id.as_deref().unwrap()),
            "{}",
            out.summary
        );
    }
    assert!(
        out.summary.contains("requested, not yet done"),
        "{}",
        out.summary
    );
    assert!(!out.summary.contains(PIN), "{}", out.summary);
    assert!(
        out.requests.iter().all(|r| !r.url.contains(PIN)),
        "{:?}",
        out.requests
    );
    let cmds = fake.commands();
    assert_eq!(cmds.len(), 2);
    for c in &cmds {
        assert_eq!(c.command_type, "DEVICE_LOCK");
        assert_eq!(c.data["pin"], PIN);
        assert_eq!(c.data["message"], "This Mac belongs to Acme. Call IT.");
        assert_eq!(c.data["phoneNumber"], "+1 555 0100");
        assert_ne!(
            Some(c.management_id.as_str()),
            fake.computer(&other).management_id.as_deref()
        );
    }
    // Sent is not done.
    let c = p
        .check(
            &call("lock_computer", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    assert!(
        c.observed
            .contains("DEVICE_LOCK pending (requested at 2026-12-01T10:"),
        "{}",
        c.observed
    );
    assert_eq!(c.account.as_ref(), Some(&account));
    // One Mac checks in: still not done.
    fake.set_state(&a, "DEVICE_LOCK", "ACKNOWLEDGED");
    let c = p
        .check(
            &call("lock_computer", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    fake.set_state(&b, "DEVICE_LOCK", "ACKNOWLEDGED");
    let c = p
        .check(
            &call("lock_computer", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    assert!(
        c.observed.contains("DEVICE_LOCK acknowledged at"),
        "{}",
        c.observed
    );
    // One token for the whole run: cached, not fetched per request.
    assert_eq!(fake.tokens_issued(), 1);
    let token_requests = fake.requests();
    let token = token_requests
        .iter()
        .find(|r| r.raw_path == "/api/oauth/token")
        .unwrap();
    assert!(!String::from_utf8_lossy(&token.body).is_empty());
    fake.assert_contract();
}

#[tokio::test]
async fn erase_is_sent_once_and_checked_by_the_command_state() {
    let fake = FakeJamf::start().await;
    let a = fake.add_computer("jdoe", "jdoe-mbp");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params: Map<String, Value> = serde_json::from_value(json!({
        "pin": { "command": ["echo", PIN] },
        "obliteration_behavior": "ObliterateWithWarning",
    }))
    .unwrap();
    let out = p
        .apply(&call("erase_computer", "jdoe", &params, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    assert!(
        out.summary.contains("ERASE_DEVICE sent to 1"),
        "{}",
        out.summary
    );
    let cmds = fake.commands();
    assert_eq!(cmds.len(), 1);
    assert_eq!(cmds[0].command_type, "ERASE_DEVICE");
    assert_eq!(
        cmds[0].data["obliterationBehavior"],
        "ObliterateWithWarning"
    );
    assert_eq!(cmds[0].data["pin"], PIN);
    let account = out.account.unwrap();
    // Apply again while pending: nothing is sent.
    let again = p
        .apply(
            &call("erase_computer", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!again.changed, "{}", again.summary);
    assert!(
        again.summary.contains("already requested"),
        "{}",
        again.summary
    );
    assert_eq!(posts(&fake), 1);
    let c = p
        .check(
            &call("erase_computer", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    fake.set_state(&a, "ERASE_DEVICE", "ACKNOWLEDGED");
    let c = p
        .check(
            &call("erase_computer", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    // Apply once more after it is done: still nothing sent.
    let done = p
        .apply(
            &call("erase_computer", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!done.changed);
    assert!(done.summary.contains("already done"), "{}", done.summary);
    assert_eq!(posts(&fake), 1);
    fake.assert_contract();
}

#[tokio::test]
async fn a_command_the_mac_refused_is_reported_failed_and_sent_again() {
    let fake = FakeJamf::start().await;
    let a = fake.add_computer("jdoe", "jdoe-mbp");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params = lock_params();
    let out = p
        .apply(&call("lock_computer", "jdoe", &params, None), &ctx)
        .await
        .unwrap();
    let account = out.account.unwrap();
    fake.set_state(&a, "DEVICE_LOCK", "ERROR");
    let c = p
        .check(
            &call("lock_computer", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    assert!(c.observed.contains("DEVICE_LOCK failed"), "{}", c.observed);
    let again = p
        .apply(
            &call("lock_computer", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(again.changed, "{}", again.summary);
    assert_eq!(posts(&fake), 2);
    fake.assert_contract();
}

#[tokio::test]
async fn nobody_found_is_not_found_never_revoked() {
    let fake = FakeJamf::start().await;
    fake.add_computer("asmith", "asmith-mbp");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params = lock_params();
    let e = p
        .apply(&call("lock_computer", "ghost", &params, None), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
    assert!(message(&e).contains("userAndLocation.username"), "{e}");
    let e = p
        .check(&call("lock_computer", "ghost", &params, None), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
    assert_eq!(posts(&fake), 0);
    fake.assert_contract();
}

#[tokio::test]
async fn a_missing_privilege_is_named() {
    let fake = FakeJamf::start().await;
    fake.add_computer("jdoe", "jdoe-mbp");
    fake.deny("POST", "/api/v2/mdm/commands");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params = lock_params();
    let e = p
        .apply(&call("lock_computer", "jdoe", &params, None), &ctx)
        .await
        .unwrap_err();
    let m = message(&e);
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    assert!(m.contains("403"), "{m}");
    assert!(m.contains("INVALID_PRIVILEGE: Forbidden"), "{m}");
    assert!(m.contains("Send Computer Remote Lock Command"), "{m}");
    assert!(!m.contains(PIN) && !m.contains(CLIENT_SECRET), "{m}");
    // Reading commands refused: that privilege is named instead.
    let fake = FakeJamf::start().await;
    fake.add_computer("jdoe", "jdoe-mbp");
    fake.deny("GET", "/api/v2/mdm/commands");
    let e = provider(&fake)
        .check(&call("lock_computer", "jdoe", &params, None), &ctx)
        .await
        .unwrap_err();
    assert!(
        message(&e).contains("View MDM command information in Jamf Pro API"),
        "{e}"
    );
    fake.assert_contract();
}

#[tokio::test]
async fn an_expired_token_is_fetched_again_once() {
    let fake = FakeJamf::start().await;
    let a = fake.add_computer("jdoe", "jdoe-mbp");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params = lock_params();
    let out = p
        .apply(&call("lock_computer", "jdoe", &params, None), &ctx)
        .await
        .unwrap();
    assert_eq!(fake.tokens_issued(), 1);
    fake.set_state(&a, "DEVICE_LOCK", "ACKNOWLEDGED");
    fake.expire_tokens();
    let c = p
        .check(
            &call("lock_computer", "jdoe", &params, out.account.as_ref()),
            &ctx,
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    assert_eq!(fake.tokens_issued(), 2);
    // A client whose secret is wrong gets no token: a permanent error, without the secret.
    let mut cfg = system_config(&fake.server.base_url);
    cfg.secrets.insert(
        "client_secret".into(),
        secrecy::SecretString::from("wrong-secret-77".to_string()),
    );
    let e = JamfProvider::new(&cfg)
        .unwrap()
        .check(&call("lock_computer", "jdoe", &params, None), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    assert!(!message(&e).contains("wrong-secret-77"), "{e}");
    fake.assert_contract();
}

#[tokio::test]
async fn a_refusal_that_echoes_the_pin_does_not_carry_it_on() {
    let fake = FakeJamf::start().await;
    fake.add_computer("jdoe", "jdoe-mbp");
    fake.server.fail_next_on(
        "POST",
        "/api/v2/mdm/commands",
        Fault::Reply(common::fake_jamf::jamf_error(
            400,
            "INVALID_FIELD",
            &format!("pin {PIN} is not accepted for this device"),
        )),
    );
    let e = provider(&fake)
        .apply(
            &call("lock_computer", "jdoe", &lock_params(), None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    let m = message(&e);
    assert!(
        m.contains("INVALID_FIELD: pin <redacted PIN> is not accepted"),
        "{m}"
    );
    assert!(!m.contains(PIN), "{m}");
}

#[tokio::test]
async fn a_token_rejected_again_after_one_refresh_is_permanent() {
    let fake = FakeJamf::start().await;
    fake.add_computer("jdoe", "jdoe-mbp");
    fake.reject_all_tokens();
    let e = provider(&fake)
        .apply(
            &call("lock_computer", "jdoe", &lock_params(), None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    assert!(message(&e).contains("401"), "{e}");
    // The first token, then exactly one refresh: not a loop.
    assert_eq!(fake.tokens_issued(), 2);
    assert!(!message(&e).contains("tok-") && !message(&e).contains(CLIENT_SECRET));
    assert_eq!(posts(&fake), 0);
    fake.assert_contract();
}

#[tokio::test]
async fn a_mac_without_mdm_is_a_follow_up_never_done() {
    let fake = FakeJamf::start().await;
    let a = fake.add_computer("jdoe", "jdoe-mbp");
    let b = fake.add_computer("jdoe", "jdoe-old-mac");
    fake.edit(&b, |c| c.management_id = None);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params = lock_params();
    let out = p
        .apply(&call("lock_computer", "jdoe", &params, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    assert!(
        out.summary.contains("manual follow-up: jdoe-old-mac"),
        "{}",
        out.summary
    );
    assert_eq!(posts(&fake), 1);
    fake.set_state(&a, "DEVICE_LOCK", "ACKNOWLEDGED");
    let c = p
        .check(
            &call("lock_computer", "jdoe", &params, out.account.as_ref()),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    assert!(c.observed.contains("not managed by MDM"), "{}", c.observed);
    fake.assert_contract();
}

#[tokio::test]
async fn macs_gone_from_the_person_after_the_erase_hold() {
    let fake = FakeJamf::start().await;
    let a = fake.add_computer("jdoe", "jdoe-mbp");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params: Map<String, Value> = Map::new();
    let out = p
        .apply(&call("erase_computer", "jdoe", &params, None), &ctx)
        .await
        .unwrap();
    let account = out.account.unwrap();
    // Erased and re-enrolled for someone else: nothing is assigned to the person any more.
    fake.edit(&a, |c| c.username = "loaner".into());
    let c = p
        .check(
            &call("erase_computer", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    assert!(c.observed.contains("any more"), "{}", c.observed);
    assert_eq!(c.account.as_ref(), Some(&account));
    let again = p
        .apply(
            &call("erase_computer", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!again.changed);
    assert_eq!(posts(&fake), 1);
    // No PIN for an erase: none is sent.
    assert!(fake.commands()[0].data.get("pin").is_none());
    fake.assert_contract();
}

#[tokio::test]
async fn every_page_of_the_inventory_is_read() {
    let fake = FakeJamf::start().await;
    let ids: Vec<String> = (0..5)
        .map(|i| fake.add_computer("jdoe", &format!("mac-{i}")))
        .collect();
    let p = provider(&fake).with_page_size(2);
    let ctx = CallCtx::silent();
    let params = lock_params();
    let out = p
        .apply(&call("lock_computer", "jdoe", &params, None), &ctx)
        .await
        .unwrap();
    assert!(out.summary.contains("5 computer(s)"), "{}", out.summary);
    assert_eq!(posts(&fake), 5);
    let pages: Vec<String> = fake
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("GET /api/v1/computers-inventory"))
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    for (n, l) in pages.iter().enumerate() {
        assert!(l.contains(&format!("page={n}&page-size=2")), "{l}");
    }
    for id in &ids {
        fake.set_state(id, "DEVICE_LOCK", "ACKNOWLEDGED");
    }
    let c = p
        .check(
            &call("lock_computer", "jdoe", &params, out.account.as_ref()),
            &ctx,
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    fake.assert_contract();
}

#[tokio::test]
async fn a_mac_assigned_behind_the_tools_back_is_drift() {
    let fake = FakeJamf::start().await;
    let a = fake.add_computer("jdoe", "jdoe-mbp");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params = lock_params();
    let out = p
        .apply(&call("lock_computer", "jdoe", &params, None), &ctx)
        .await
        .unwrap();
    let account = out.account.unwrap();
    fake.set_state(&a, "DEVICE_LOCK", "ACKNOWLEDGED");
    let c = p
        .check(
            &call("lock_computer", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    // Someone assigns another Mac to the person: verify no longer holds.
    let b = fake.add_computer("jdoe", "jdoe-spare");
    let c = p
        .check(
            &call("lock_computer", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    assert!(c.observed.contains("no DEVICE_LOCK sent"), "{}", c.observed);
    assert!(c.observed.contains(&format!("id {b}")), "{}", c.observed);
    fake.assert_contract();
}

#[tokio::test]
async fn email_matching_and_hostile_logins_are_quoted() {
    let fake = FakeJamf::start().await;
    fake.add_computer("jdoe", "jdoe-mbp");
    let odd = fake.add_computer("o\"dd;x==y", "odd-mbp");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let mut params = lock_params();
    params.insert("match".into(), json!("email"));
    let out = p
        .apply(
            &call("lock_computer", "JDoe@corp.example", &params, None),
            &ctx,
        )
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    assert_eq!(out.account.unwrap().id_kind, "Jamf user email");
    let out = p
        .apply(
            &call("lock_computer", "o\"dd;x==y", &lock_params(), None),
            &ctx,
        )
        .await
        .unwrap();
    assert!(
        out.summary.contains(&format!("id {odd}")),
        "{}",
        out.summary
    );
    assert_eq!(posts(&fake), 2);
    fake.assert_contract();
}

#[tokio::test]
async fn a_bad_pin_stops_before_anything_is_sent() {
    let fake = FakeJamf::start().await;
    fake.add_computer("jdoe", "jdoe-mbp");
    let p = provider(&fake);
    // The command prints 12345x, a value its own words do not hold.
    let params: Map<String, Value> =
        serde_json::from_value(json!({ "pin": { "command": ["sh", "-c", "echo 1234$((2+3))x"] } }))
            .unwrap();
    let e = p
        .apply(
            &call("lock_computer", "jdoe", &params, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(message(&e).contains("6 digits"), "{e}");
    assert!(!message(&e).contains("12345x"), "{e}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn a_busy_server_is_retried() {
    let fake = FakeJamf::start().await;
    fake.add_computer("jdoe", "jdoe-mbp");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    // The token is fetched first; then the inventory read answers 503 once, then 429.
    p.check(&call("lock_computer", "nobody", &lock_params(), None), &ctx)
        .await
        .unwrap_err();
    fake.server.fail_next(Fault::unavailable(None));
    let out = p
        .apply(&call("lock_computer", "jdoe", &lock_params(), None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    assert_eq!(fake.server.injected().len(), 1);
    fake.assert_contract();
}

// --- iPhones and iPads -----------------------------------------------------------------------

fn mobile_lock_params() -> Map<String, Value> {
    serde_json::from_value(json!({
        "message": "This iPhone belongs to Acme. Call IT.",
        "phone_number": "+1 555 0100",
    }))
    .unwrap()
}

/// The inventory GETs of each family, in order.
fn inventory_reads(fake: &FakeJamf, path: &str) -> Vec<String> {
    fake.lines()
        .into_iter()
        .filter(|l| l.starts_with(&format!("GET {path}")))
        .collect()
}

#[tokio::test]
async fn mobile_lock_is_requested_then_done_once_every_device_acknowledges() {
    let fake = FakeJamf::start().await;
    let phone = fake.add_mobile_device("jdoe", "jdoe-iphone");
    let pad = fake.add_mobile_device("jdoe", "jdoe-ipad");
    let other = fake.add_mobile_device("asmith", "asmith-iphone");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params = mobile_lock_params();
    let out = p
        .apply(&call("lock_mobile_device", "jdoe", &params, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    assert!(
        out.summary.contains("2 mobile device(s) of jdoe"),
        "{}",
        out.summary
    );
    assert!(
        out.summary.contains("requested, not yet done"),
        "{}",
        out.summary
    );
    for id in [&phone, &pad] {
        let d = fake.mobile(id);
        assert!(out.summary.contains(&format!("id {id}")), "{}", out.summary);
        assert!(
            out.summary.contains(d.management_id.as_deref().unwrap()),
            "{}",
            out.summary
        );
    }
    let account = out.account.clone().unwrap();
    assert_eq!(account.id_kind, "Jamf username");
    let cmds = fake.commands();
    assert_eq!(cmds.len(), 2);
    for c in &cmds {
        assert_eq!(c.command_type, "DEVICE_LOCK");
        assert_eq!(c.client_type, "MOBILE_DEVICE");
        assert_eq!(c.data["message"], "This iPhone belongs to Acme. Call IT.");
        assert_eq!(c.data["phoneNumber"], "+1 555 0100");
        // No PIN for an iPhone: its own passcode unlocks it.
        assert!(c.data.get("pin").is_none(), "{}", c.data);
        assert_ne!(
            Some(c.management_id.as_str()),
            fake.mobile(&other).management_id.as_deref()
        );
    }
    let check = |account: &offboard::providers::Account| {
        let account = account.clone();
        let params = params.clone();
        let p = &p;
        let ctx = &ctx;
        async move {
            p.check(
                &call("lock_mobile_device", "jdoe", &params, Some(&account)),
                ctx,
            )
            .await
            .unwrap()
        }
    };
    let c = check(&account).await;
    assert!(!c.revoked, "{}", c.observed);
    assert!(c.observed.contains("DEVICE_LOCK pending"), "{}", c.observed);
    fake.set_state(&phone, "DEVICE_LOCK", "ACKNOWLEDGED");
    let c = check(&account).await;
    assert!(!c.revoked, "{}", c.observed);
    fake.set_state(&pad, "DEVICE_LOCK", "ACKNOWLEDGED");
    let c = check(&account).await;
    assert!(c.revoked, "{}", c.observed);
    assert!(
        c.observed.contains("DEVICE_LOCK acknowledged at"),
        "{}",
        c.observed
    );
    // The Mac inventory was never read for a mobile action.
    assert!(inventory_reads(&fake, "/api/v1/computers-inventory").is_empty());
    fake.assert_contract();
}

#[tokio::test]
async fn mobile_erase_is_sent_once_with_its_options() {
    let fake = FakeJamf::start().await;
    let phone = fake.add_mobile_device("jdoe", "jdoe-iphone");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params: Map<String, Value> = serde_json::from_value(json!({
        "preserve_data_plan": true,
        "disallow_proximity_setup": true,
        "return_to_service": false,
    }))
    .unwrap();
    let out = p
        .apply(&call("erase_mobile_device", "jdoe", &params, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    assert!(
        out.summary.contains("ERASE_DEVICE sent to 1"),
        "{}",
        out.summary
    );
    let cmds = fake.commands();
    assert_eq!(cmds.len(), 1);
    assert_eq!(cmds[0].command_type, "ERASE_DEVICE");
    assert_eq!(cmds[0].client_type, "MOBILE_DEVICE");
    assert_eq!(
        cmds[0].data,
        json!({ "commandType": "ERASE_DEVICE", "preserveDataPlan": true,
                "disallowProximitySetup": true, "returnToService": { "enabled": false } })
    );
    let account = out.account.unwrap();
    // Applied twice: no second command while the first is pending.
    let again = p
        .apply(
            &call("erase_mobile_device", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!again.changed, "{}", again.summary);
    assert!(
        again.summary.contains("already requested"),
        "{}",
        again.summary
    );
    assert_eq!(posts(&fake), 1);
    let c = p
        .check(
            &call("erase_mobile_device", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    fake.set_state(&phone, "ERASE_DEVICE", "ACKNOWLEDGED");
    let c = p
        .check(
            &call("erase_mobile_device", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    let done = p
        .apply(
            &call("erase_mobile_device", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!done.changed);
    assert!(done.summary.contains("already done"), "{}", done.summary);
    assert_eq!(posts(&fake), 1);
    fake.assert_contract();
}

#[tokio::test]
async fn a_mac_and_an_iphone_each_action_touches_only_its_family() {
    let fake = FakeJamf::start().await;
    let mac = fake.add_computer("jdoe", "jdoe-mbp");
    let phone = fake.add_mobile_device("jdoe", "jdoe-iphone");
    let mac_mid = fake.computer(&mac).management_id.unwrap();
    let phone_mid = fake.mobile(&phone).management_id.unwrap();
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let mobile = mobile_lock_params();
    let out = p
        .apply(&call("lock_mobile_device", "jdoe", &mobile, None), &ctx)
        .await
        .unwrap();
    assert!(
        out.summary.contains("1 mobile device(s)"),
        "{}",
        out.summary
    );
    assert!(!out.summary.contains("jdoe-mbp"), "{}", out.summary);
    let sent: Vec<String> = fake
        .commands()
        .iter()
        .map(|c| c.management_id.clone())
        .collect();
    assert_eq!(sent, std::slice::from_ref(&phone_mid));
    // The phone's lock acknowledged: the mobile lock holds, the Mac's lock was never sent.
    fake.set_state(&phone, "DEVICE_LOCK", "ACKNOWLEDGED");
    let account = out.account.unwrap();
    let c = p
        .check(
            &call("lock_mobile_device", "jdoe", &mobile, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    let mac_params = lock_params();
    let c = p
        .check(
            &call("lock_computer", "jdoe", &mac_params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    assert!(c.observed.contains("no DEVICE_LOCK sent"), "{}", c.observed);
    assert!(!c.observed.contains("jdoe-iphone"), "{}", c.observed);
    // The Mac's lock goes to the Mac alone, even though the phone has a lock of its own.
    let out = p
        .apply(
            &call("lock_computer", "jdoe", &mac_params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(out.summary.contains("1 computer(s)"), "{}", out.summary);
    let sent: Vec<(String, String)> = fake
        .commands()
        .iter()
        .map(|c| (c.management_id.clone(), c.client_type.clone()))
        .collect();
    assert_eq!(
        sent,
        [
            (phone_mid, "MOBILE_DEVICE".to_string()),
            (mac_mid, "COMPUTER".to_string())
        ]
    );
    // A person with only a Mac has no mobile device: not found, nothing sent.
    let fake = FakeJamf::start().await;
    fake.add_computer("jdoe", "jdoe-mbp");
    let e = provider(&fake)
        .apply(&call("lock_mobile_device", "jdoe", &mobile, None), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
    assert_eq!(posts(&fake), 0);
    fake.assert_contract();
}

#[tokio::test]
async fn every_page_of_the_mobile_inventory_is_read_and_missing_management_ids_are_looked_up() {
    let fake = FakeJamf::start().await;
    let ids: Vec<String> = (0..5)
        .map(|i| fake.add_mobile_device("jdoe", &format!("iphone-{i}")))
        .collect();
    fake.hide_mobile_management_ids();
    let p = provider(&fake).with_page_size(2);
    let ctx = CallCtx::silent();
    let params = mobile_lock_params();
    let out = p
        .apply(&call("lock_mobile_device", "jdoe", &params, None), &ctx)
        .await
        .unwrap();
    assert!(
        out.summary.contains("5 mobile device(s)"),
        "{}",
        out.summary
    );
    let pages = inventory_reads(&fake, "/api/v2/mobile-devices/detail");
    assert_eq!(pages.len(), 3, "{pages:?}");
    for (n, l) in pages.iter().enumerate() {
        assert!(l.contains(&format!("page={n}&page-size=2")), "{l}");
        assert!(l.contains("filter=username%3D%3D%22jdoe%22"), "{l}");
    }
    // Each device's management id read from its MobileDeviceV2 record, and used.
    for id in &ids {
        assert!(
            fake.lines()
                .contains(&format!("GET /api/v2/mobile-devices/{id}")),
            "{:?}",
            fake.lines()
        );
    }
    let mut sent: Vec<String> = fake
        .commands()
        .iter()
        .map(|c| c.management_id.clone())
        .collect();
    let mut want: Vec<String> = ids
        .iter()
        .map(|id| fake.mobile(id).management_id.unwrap())
        .collect();
    sent.sort();
    want.sort();
    assert_eq!(sent, want);
    for id in &ids {
        fake.set_state(id, "DEVICE_LOCK", "ACKNOWLEDGED");
    }
    let c = p
        .check(
            &call("lock_mobile_device", "jdoe", &params, out.account.as_ref()),
            &ctx,
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    fake.assert_contract();
}

#[tokio::test]
async fn nobody_with_a_mobile_device_is_not_found_and_email_matching_works() {
    let fake = FakeJamf::start().await;
    fake.add_mobile_device("asmith", "asmith-iphone");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params = mobile_lock_params();
    let e = p
        .apply(&call("lock_mobile_device", "ghost", &params, None), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
    assert!(
        message(&e).contains("no mobile device in Jamf Pro has username == \"ghost\""),
        "{e}"
    );
    assert!(message(&e).contains("/api/v2/mobile-devices/detail"), "{e}");
    let e = p
        .check(
            &call("erase_mobile_device", "ghost", &Map::new(), None),
            &ctx,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
    assert_eq!(posts(&fake), 0);
    let mut by_email = mobile_lock_params();
    by_email.insert("match".into(), json!("email"));
    let out = p
        .apply(
            &call("lock_mobile_device", "ASmith@corp.example", &by_email, None),
            &ctx,
        )
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    assert_eq!(out.account.unwrap().id_kind, "Jamf user email");
    assert!(
        inventory_reads(&fake, "/api/v2/mobile-devices/detail")
            .last()
            .unwrap()
            .contains("filter=emailAddress%3D%3D%22ASmith%40corp.example%22")
    );
    fake.assert_contract();
}

#[tokio::test]
async fn an_iphone_assigned_behind_the_tools_back_is_drift() {
    let fake = FakeJamf::start().await;
    let phone = fake.add_mobile_device("jdoe", "jdoe-iphone");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params = mobile_lock_params();
    let out = p
        .apply(&call("lock_mobile_device", "jdoe", &params, None), &ctx)
        .await
        .unwrap();
    let account = out.account.unwrap();
    fake.set_state(&phone, "DEVICE_LOCK", "ACKNOWLEDGED");
    let c = p
        .check(
            &call("lock_mobile_device", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    // Someone hands the person a spare iPad: verify no longer holds.
    let pad = fake.add_mobile_device("jdoe", "jdoe-spare-ipad");
    let c = p
        .check(
            &call("lock_mobile_device", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    assert!(c.observed.contains("no DEVICE_LOCK sent"), "{}", c.observed);
    assert!(c.observed.contains(&format!("id {pad}")), "{}", c.observed);
    // Reassigned away from the person: gone from them, the lock holds again.
    fake.edit_mobile(&pad, |d| d.username = "loaner".into());
    let c = p
        .check(
            &call("lock_mobile_device", "jdoe", &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    fake.assert_contract();
}

#[tokio::test]
async fn a_missing_mobile_privilege_is_named() {
    let fake = FakeJamf::start().await;
    fake.add_mobile_device("jdoe", "jdoe-iphone");
    fake.deny("POST", "/api/v2/mdm/commands");
    let ctx = CallCtx::silent();
    let e = provider(&fake)
        .apply(
            &call("lock_mobile_device", "jdoe", &mobile_lock_params(), None),
            &ctx,
        )
        .await
        .unwrap_err();
    assert!(
        message(&e).contains("Send Mobile Device Remote Lock Command"),
        "{e}"
    );
    let e = provider(&fake)
        .apply(
            &call("erase_mobile_device", "jdoe", &Map::new(), None),
            &ctx,
        )
        .await
        .unwrap_err();
    assert!(
        message(&e).contains("Send Mobile Device Remote Wipe Command"),
        "{e}"
    );
    let fake = FakeJamf::start().await;
    fake.add_mobile_device("jdoe", "jdoe-iphone");
    fake.deny("GET", "/api/v2/mobile-devices");
    let e = provider(&fake)
        .check(
            &call("lock_mobile_device", "jdoe", &mobile_lock_params(), None),
            &ctx,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    assert!(message(&e).contains("Read Mobile Devices"), "{e}");
    fake.assert_contract();
}

fn runbook(base: &str) -> String {
    format!(
        r#"[runbook]
name = "Mac leaver"
legal_hold = true

[systems.mac]
kind = "jamf"
base_url = "{base}"
client_id = "{CLIENT_ID}"
client_secret = {{ env = "JAMF_CLIENT_SECRET" }}

[[step]]
id = "mac-lock"
lane = "it"
system = "mac"
action = "lock_computer"
phase = "cut"
params = {{ pin = {{ env = "JAMF_LOCK_PIN" }}, match = "email", message = "Return this Mac to IT" }}

[[step]]
id = "mac-erase"
lane = "security"
system = "mac"
action = "erase_computer"
phase = "close"
after = ["mac-lock"]
params = {{ match = "email", obliteration_behavior = "Always" }}
"#
    )
}

/// Through the binary: the lock is sent and reported as requested, not done (unconfirmed), legal
/// hold keeps the erase from running, `verify` turns the step done once the Mac acknowledged,
/// and neither the PIN nor the client secret nor a token is written anywhere.
#[test]
fn start_locks_and_legal_hold_blocks_the_erase() {
    use crate::common::cli_env::{CliEnv, fake_runtime, text, walk};
    let rt = fake_runtime();
    let fake = rt.block_on(FakeJamf::start());
    let mac = fake.add_computer("jdoe", "jdoe-mbp");
    let user = "jdoe@corp.example";
    let mut env = CliEnv::new();
    env.var("JAMF_CLIENT_SECRET", CLIENT_SECRET);
    env.var("JAMF_LOCK_PIN", PIN);
    env.write_runbook(&runbook(&fake.server.base_url));
    let check = env.run(&["runbook", "check", "offboard.toml"]);
    assert!(check.status.success(), "{}", text(&check));
    let plan = env.run(&["plan", user, "-r", "offboard.toml"]);
    let shown = text(&plan);
    assert!(
        shown.contains("userAndLocation.email%3D%3D%22jdoe%40corp.example%22")
            && shown.contains("DEVICE_LOCK, PIN <redacted>"),
        "{shown}"
    );
    assert!(fake.requests().is_empty(), "plan reached Jamf");

    let out = env.run(&CliEnv::start_args(user));
    let all = text(&out);
    let cmds = fake.commands();
    assert_eq!(cmds.len(), 1, "{all}");
    assert_eq!(cmds[0].command_type, "DEVICE_LOCK");
    assert_eq!(cmds[0].data["pin"], PIN);
    let dep = env.departure_of(user).unwrap();
    let statuses = env.step_statuses(&dep);
    for (step, want) in [("mac-lock", "unconfirmed"), ("mac-erase", "skipped")] {
        assert!(
            statuses.contains(&(step.into(), want.into())),
            "{step} should be {want}: {statuses:?}\n{all}"
        );
    }
    assert!(all.contains("DEVICE_LOCK pending (requested at"), "{all}");
    fake.set_state(&mac, "DEVICE_LOCK", "ACKNOWLEDGED");
    let verify = env.run(&["verify", &dep]);
    let verified = text(&verify);
    assert!(verify.status.success(), "{verified}");
    assert!(
        verified.contains("All 1 revocation(s) hold") && verified.contains("acknowledged at"),
        "{verified}"
    );
    let evidence = std::fs::read_to_string(env.evidence_path(&dep)).unwrap();
    let doc: Value = serde_json::from_str(&evidence).unwrap();
    assert!(
        doc["predicate"]["legal_hold"]["blocked"]
            .to_string()
            .contains("mac-erase"),
        "{evidence}"
    );
    assert!(evidence.contains(fake.computer(&mac).management_id.as_deref().unwrap()));
    for f in walk(env.path()) {
        let Ok(body) = std::fs::read_to_string(&f) else {
            continue;
        };
        for secret in [PIN, CLIENT_SECRET, "tok-1"] {
            assert!(!body.contains(secret), "{} holds a secret", f.display());
        }
    }
    for secret in [PIN, CLIENT_SECRET, "tok-1"] {
        assert!(!all.contains(secret) && !verified.contains(secret));
    }
    fake.assert_contract();
}

/// Through the binary, for a phone: the mobile lock is requested (no PIN asked for), legal hold
/// keeps the mobile erase from running, and `verify` holds once the iPhone acknowledged.
#[test]
fn start_locks_the_iphone_and_legal_hold_blocks_its_erase() {
    use crate::common::cli_env::{CliEnv, fake_runtime, text};
    let rt = fake_runtime();
    let fake = rt.block_on(FakeJamf::start());
    let phone = fake.add_mobile_device("jdoe", "jdoe-iphone");
    fake.add_computer("jdoe", "jdoe-mbp");
    let user = "jdoe@corp.example";
    let mut env = CliEnv::new();
    env.var("JAMF_CLIENT_SECRET", CLIENT_SECRET);
    env.write_runbook(&format!(
        r#"[runbook]
name = "Phone leaver"
legal_hold = true

[systems.mobile]
kind = "jamf"
base_url = "{base}"
client_id = "{CLIENT_ID}"
client_secret = {{ env = "JAMF_CLIENT_SECRET" }}

[[step]]
id = "mobile-lock"
lane = "it"
system = "mobile"
action = "lock_mobile_device"
phase = "cut"
params = {{ match = "email", message = "Return this phone to IT" }}

[[step]]
id = "mobile-erase"
lane = "security"
system = "mobile"
action = "erase_mobile_device"
phase = "close"
after = ["mobile-lock"]
params = {{ match = "email", preserve_data_plan = true }}
"#,
        base = fake.server.base_url
    ));
    let check = env.run(&["runbook", "check", "offboard.toml"]);
    assert!(check.status.success(), "{}", text(&check));
    let out = env.run(&CliEnv::start_args(user));
    let all = text(&out);
    let cmds = fake.commands();
    assert_eq!(cmds.len(), 1, "{all}");
    assert_eq!(
        (cmds[0].command_type.as_str(), cmds[0].client_type.as_str()),
        ("DEVICE_LOCK", "MOBILE_DEVICE")
    );
    let dep = env.departure_of(user).unwrap();
    let statuses = env.step_statuses(&dep);
    for (step, want) in [("mobile-lock", "unconfirmed"), ("mobile-erase", "skipped")] {
        assert!(
            statuses.contains(&(step.into(), want.into())),
            "{step} should be {want}: {statuses:?}\n{all}"
        );
    }
    fake.set_state(&phone, "DEVICE_LOCK", "ACKNOWLEDGED");
    let verify = env.run(&["verify", &dep]);
    let verified = text(&verify);
    assert!(verify.status.success(), "{verified}");
    assert!(
        verified.contains("All 1 revocation(s) hold") && verified.contains("acknowledged at"),
        "{verified}"
    );
    let evidence = std::fs::read_to_string(env.evidence_path(&dep)).unwrap();
    assert!(evidence.contains(fake.mobile(&phone).management_id.as_deref().unwrap()));
    let doc: Value = serde_json::from_str(&evidence).unwrap();
    assert!(
        doc["predicate"]["legal_hold"]["blocked"]
            .to_string()
            .contains("mobile-erase"),
        "{evidence}"
    );
    for secret in [CLIENT_SECRET, "tok-1"] {
        assert!(!all.contains(secret) && !verified.contains(secret));
    }
    fake.assert_contract();
}

#[test]
fn every_jamf_action_declares_why_it_cannot_be_undone() {
    let kind = find_kind("jamf").unwrap();
    for a in kind.actions {
        assert!(
            matches!(a.inverse, Inverse::None(why) if why != UNDO_NOT_BUILT),
            "{}: {:?}",
            a.name,
            a.inverse
        );
    }
    let why = |n: &str| match kind.action(n).unwrap().inverse {
        Inverse::None(w) => w,
        Inverse::Restore(w) => w,
    };
    assert!(why("lock_computer").contains("PIN"));
    assert!(why("erase_computer").contains("stays erased"));
    assert!(why("erase_mobile_device").contains("stays erased"));
}

#[tokio::test]
async fn a_lock_records_each_macs_standing_before_any_command() {
    let fake = FakeJamf::start().await;
    let a = fake.add_computer("jdoe", "jdoe-mbp");
    let b = fake.add_computer("jdoe", "jdoe-old-mac");
    fake.edit(&b, |c| c.management_id = None);
    let p = provider(&fake);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let ctx = CallCtx::silent().on_before(move |v| s.lock().unwrap().push(v.clone()));
    let params = lock_params();
    let out = p
        .apply(&call("lock_computer", "jdoe", &params, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    let before = seen.lock().unwrap().clone();
    assert_eq!(before.len(), 1, "{before:?}");
    let mid = fake.computer(&a).management_id.unwrap();
    assert_eq!(before[0]["command"], "DEVICE_LOCK");
    let devices = before[0]["devices"].as_array().unwrap();
    assert_eq!(devices[0]["id"], json!(a));
    assert_eq!(devices[0]["managementId"], json!(mid));
    assert_eq!(devices[0]["last_command"], "none");
    assert_eq!(devices[1]["managementId"], Value::Null);
    assert_eq!(devices[1]["last_command"], "unmanaged");
    assert!(!before[0].to_string().contains(PIN));
}
