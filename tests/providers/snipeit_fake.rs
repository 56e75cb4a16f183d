//! The snipeit provider against an in-process fake of Snipe-IT's REST API.

use crate::common;

use std::time::Duration;

use common::fake_snipeit::{FakeSnipeIt, TOKEN, system_config};
use offboard::providers::kit::http::RetryPolicy;
use offboard::providers::snipeit::SnipeItProvider;
use offboard::providers::{
    Account, CallCtx, Inverse, Provider, ProviderError, StepCall, UNDO_NOT_BUILT, find_kind,
};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};

fn provider(fake: &FakeSnipeIt) -> SnipeItProvider {
    SnipeItProvider::new(&system_config(&fake.server.base_url))
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(5),
            max_wait: Duration::from_secs(2),
            max_total: Duration::from_secs(5),
        })
}

fn params() -> Map<String, Value> {
    serde_json::from_value(json!({
        "status_id": 4,
        "location_id": 7,
        "note": "Returned at departure 20261201",
    }))
    .unwrap()
}

fn call<'a>(
    login: &'a str,
    params: &'a Map<String, Value>,
    account: Option<&'a Account>,
) -> StepCall<'a> {
    StepCall {
        step_id: "step",
        action: "checkin_assets",
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

fn checkins(fake: &FakeSnipeIt) -> usize {
    fake.lines()
        .iter()
        .filter(|l| l.starts_with("POST ") && l.ends_with("/checkin"))
        .count()
}

#[tokio::test]
async fn checks_in_every_asset_of_the_person_then_the_check_holds_and_twice_sends_nothing() {
    let fake = FakeSnipeIt::start().await;
    let alice = fake.add_user("alice", "alice@corp.example");
    // Someone whose email contains alice's: found by the search, never matched.
    let other = fake.add_user("malice", "malice@corp.example");
    let laptop = fake.add_asset("LT-0042", Some(alice));
    let phone = fake.add_asset("PH-7", Some(alice));
    let theirs = fake.add_asset("LT-9", Some(other));
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params = params();
    let out = p
        .apply(&call("alice@corp.example", &params, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    let account = out.account.clone().unwrap();
    assert_eq!(
        (account.id.as_str(), account.id_kind.as_str()),
        (alice.to_string().as_str(), "Snipe-IT user id")
    );
    assert!(
        out.summary.contains("LT-0042 (serial SN-LT-0042"),
        "{}",
        out.summary
    );
    assert!(out.summary.contains("PH-7"), "{}", out.summary);
    for id in [laptop, phone] {
        let a = fake.asset(id);
        assert_eq!(a.assigned_to, None);
        assert_eq!((a.status_id, a.location_id), (4, Some(7)));
        assert_eq!(a.checkin_notes, ["Returned at departure 20261201"]);
    }
    assert_eq!(fake.asset(theirs).assigned_to, Some(other));
    // The token is sent, never recorded.
    assert!(
        out.requests
            .iter()
            .all(|r| !format!("{r:?}").contains(TOKEN))
    );

    let check = p
        .check(&call("alice@corp.example", &params, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(check.revoked, "{}", check.observed);
    assert_eq!(check.account.as_ref(), Some(&account));

    // Twice: nothing left to check in, nothing sent.
    let before = checkins(&fake);
    let again = p
        .apply(&call("alice@corp.example", &params, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!again.changed, "{}", again.summary);
    assert_eq!(checkins(&fake), before);
    fake.assert_contract();
}

#[tokio::test]
async fn an_unknown_person_is_not_found_and_never_revoked() {
    let fake = FakeSnipeIt::start().await;
    fake.add_user("bob", "bob@corp.example");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params = params();
    let e = p
        .apply(&call("alice@corp.example", &params, None), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
    let e = p
        .check(&call("alice@corp.example", &params, None), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
    // A recorded account that is gone: Snipe-IT answers 200 with an error, a failure to read.
    let gone = Account::new("999", "Snipe-IT user id", "alice");
    let e = p
        .check(&call("alice@corp.example", &params, Some(&gone)), &ctx)
        .await
        .unwrap_err();
    assert!(message(&e).contains("User not found"), "{e:?}");
    assert_eq!(checkins(&fake), 0);
    fake.assert_contract();
}

#[tokio::test]
async fn an_error_answered_with_200_is_a_failure_never_done() {
    let fake = FakeSnipeIt::start().await;
    let alice = fake.add_user("alice", "alice@corp.example");
    let laptop = fake.add_asset("LT-1", Some(alice));
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    fake.refuse_checkins("That asset is locked by an audit.");
    let e = p
        .apply(&call("alice@corp.example", &params(), None), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    assert!(
        message(&e).contains("That asset is locked by an audit."),
        "{e:?}"
    );
    assert_eq!(fake.asset(laptop).assigned_to, Some(alice));

    // A status label that does not exist: Snipe-IT's field messages, read out.
    let fake = FakeSnipeIt::start().await;
    let alice = fake.add_user("alice", "alice@corp.example");
    fake.add_asset("LT-1", Some(alice));
    let p = provider(&fake);
    let bad: Map<String, Value> = serde_json::from_value(json!({ "status_id": 99 })).unwrap();
    let e = p
        .apply(&call("alice@corp.example", &bad, None), &ctx)
        .await
        .unwrap_err();
    assert!(
        message(&e).contains("status_id: The selected status id is invalid."),
        "{e:?}"
    );
    fake.assert_contract();
}

#[tokio::test]
async fn every_page_of_users_and_assets_is_read() {
    let fake = FakeSnipeIt::start().await;
    // Five users match the search "alice"; the person is on the third page of two.
    for i in 0..4 {
        fake.add_user(&format!("alice{i}"), &format!("alice{i}@corp.example"));
    }
    let alice = fake.add_user("alice", "alice@corp.example");
    let assets: Vec<u64> = (0..5)
        .map(|i| fake.add_asset(&format!("LT-{i}"), Some(alice)))
        .collect();
    let p = provider(&fake).with_page_size(2);
    let ctx = CallCtx::silent();
    // By username: the search finds all five.
    let out = p
        .apply(&call("alice", &params(), None), &ctx)
        .await
        .unwrap();
    assert_eq!(out.account.as_ref().unwrap().id, alice.to_string());
    for id in &assets {
        assert_eq!(fake.asset(*id).assigned_to, None, "asset {id}");
    }
    let lines = fake.lines();
    for want in [
        "GET /api/v1/users?search=alice&offset=0&limit=2",
        "GET /api/v1/users?search=alice&offset=2&limit=2",
        "GET /api/v1/users?search=alice&offset=4&limit=2",
    ] {
        assert!(lines.iter().any(|l| l == want), "{want} not in {lines:#?}");
    }
    let asset_pages = lines
        .iter()
        .filter(|l| l.starts_with(&format!("GET /api/v1/users/{alice}/assets")))
        .count();
    assert_eq!(asset_pages, 3, "{lines:#?}");
    fake.assert_contract();
}

#[tokio::test]
async fn a_missing_permission_is_reported_with_what_is_needed() {
    let fake = FakeSnipeIt::start().await;
    let alice = fake.add_user("alice", "alice@corp.example");
    fake.add_asset("LT-1", Some(alice));
    fake.deny("POST", "/api/v1/hardware/");
    let p = provider(&fake);
    let e = p
        .apply(
            &call("alice@corp.example", &params(), None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    let m = message(&e);
    assert!(m.contains("403"), "{m}");
    assert!(m.contains("Checkin"), "{m}");
    assert!(!m.contains(TOKEN), "{m}");
    // A bad token: 401 with Laravel's message, never done.
    let mut cfg = system_config(&fake.server.base_url);
    cfg.token = Some(secrecy::SecretString::from("wrong".to_string()));
    let p = SnipeItProvider::new(&cfg).unwrap();
    let e = p
        .apply(
            &call("alice@corp.example", &params(), None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(message(&e).contains("Unauthenticated"), "{e:?}");
}

#[tokio::test]
async fn an_asset_checked_out_again_is_drift() {
    let fake = FakeSnipeIt::start().await;
    let alice = fake.add_user("alice", "alice@corp.example");
    let laptop = fake.add_asset("LT-1", Some(alice));
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params = params();
    let out = p
        .apply(&call("alice@corp.example", &params, None), &ctx)
        .await
        .unwrap();
    let account = out.account.unwrap();
    fake.checkout(laptop, alice);
    let check = p
        .check(&call("alice@corp.example", &params, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!check.revoked);
    assert!(check.observed.contains("LT-1"), "{}", check.observed);
    fake.assert_contract();
}

#[test]
fn checkin_declares_its_restore() {
    let kind = find_kind("snipeit").unwrap();
    for a in kind.actions {
        assert_ne!(a.inverse, Inverse::None(UNDO_NOT_BUILT), "{}", a.name);
    }
    assert!(matches!(
        kind.action("checkin_assets").unwrap().inverse,
        Inverse::Restore(t) if t.contains("same user id")
    ));
}

#[tokio::test]
async fn checkin_records_the_assets_and_restore_checks_them_out_to_the_same_user() {
    let fake = FakeSnipeIt::start().await;
    let jdoe = fake.add_user("jdoe", "jdoe@corp.example");
    let asmith = fake.add_user("asmith", "asmith@corp.example");
    let laptop = fake.add_asset("LT-0042", Some(jdoe));
    let phone = fake.add_asset("PH-0007", Some(jdoe));
    let theirs = fake.add_asset("LT-0099", Some(asmith));
    let p = provider(&fake);
    let prm = params();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let ctx = CallCtx::silent().on_before(move |v| s.lock().unwrap().push(v.clone()));
    let out = p
        .apply(&call("jdoe@corp.example", &prm, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    let account = out.account.unwrap();
    let before = seen.lock().unwrap().clone();
    assert_eq!(
        before,
        [json!({ "user_id": jdoe, "assets": [
            { "id": laptop, "asset_tag": "LT-0042", "serial": "SN-LT-0042", "status_id": 2,
              "expected_checkin": null },
            { "id": phone, "asset_tag": "PH-0007", "serial": "SN-PH-0007", "status_id": 2,
              "expected_checkin": null },
        ]})]
    );
    let before = before[0].clone();
    assert_eq!(fake.asset(laptop).assigned_to, None);
    assert_eq!(fake.asset(laptop).status_id, 4);

    let c = call("jdoe@corp.example", &prm, Some(&account));
    let plan = p.describe_restore(&c, &before);
    assert!(
        plan.iter()
            .any(|l| l.method == "POST" && l.url.contains(&format!("/hardware/{laptop}/checkout"))),
        "{plan:?}"
    );
    let not_yet = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!not_yet.restored);
    assert!(not_yet.observed.contains("LT-0042"), "{}", not_yet.observed);

    // The phone went to someone else meanwhile: it stays with them.
    fake.checkout(phone, asmith);
    let r = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(r.changed, "{}", r.summary);
    assert_eq!(fake.asset(laptop).assigned_to, Some(jdoe));
    assert_eq!(fake.asset(laptop).status_id, 2);
    assert_eq!(fake.asset(phone).assigned_to, Some(asmith));
    assert_eq!(fake.asset(theirs).assigned_to, Some(asmith));
    assert!(r.summary.contains("PH-0007"), "{}", r.summary);
    assert!(r.summary.contains("left with them"), "{}", r.summary);
    let body = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.raw_path.ends_with("/checkout"))
        .unwrap()
        .json
        .unwrap();
    assert_eq!(
        body,
        json!({ "checkout_to_type": "user", "assigned_user": jdoe, "status_id": 2,
                "note": "Checked out again by offboard rollback" })
    );

    let check = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!check.restored, "{check:?}");
    assert!(check.observed.contains("PH-0007"), "{}", check.observed);
    assert!(!check.observed.contains("LT-0042"), "{}", check.observed);

    // Restored twice: the laptop is with them already, nothing is checked out again.
    let outs = fake.asset(laptop).checkout_notes.len();
    let again = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(!again.changed, "{}", again.summary);
    assert_eq!(fake.asset(laptop).checkout_notes.len(), outs);

    // Once the phone is back too, everything is.
    fake.with_asset(phone, |a| a.assigned_to = None);
    p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    let check = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(check.restored, "{check:?}");
    assert_eq!(check.after, before);
    fake.assert_contract();
}
