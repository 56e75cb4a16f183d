//! The scim provider against an in-process fake that behaves like RFC 7644.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fake_scim::{FakeScim, Fault, PatchReply, parse_filter, system_config};
use offboard::providers::kit::http::RetryPolicy;
use offboard::providers::scim::ScimProvider;
use offboard::providers::{Account, CallCtx, Provider, ProviderError, RetryNote, StepCall};
use serde_json::json;

const TOKEN: &str = "tok-3f9a1c77e2";

fn provider(fake: &FakeScim) -> ScimProvider {
    ScimProvider::new(&system_config(&fake.base_url, Some(TOKEN)))
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(5),
            max_wait: Duration::from_secs(5),
            max_total: Duration::from_secs(10),
        })
}

fn call<'a>(action: &'a str, login: &'a str) -> StepCall<'a> {
    static NO_PARAMS: std::sync::OnceLock<serde_json::Map<String, serde_json::Value>> =
        std::sync::OnceLock::new();
    StepCall {
        step_id: "step",
        action,
        login,
        params: NO_PARAMS.get_or_init(Default::default),
        account: None,
    }
}

/// A context that keeps the retry notes.
fn recording_ctx() -> (CallCtx, Arc<Mutex<Vec<RetryNote>>>) {
    let notes = Arc::new(Mutex::new(Vec::new()));
    let n = notes.clone();
    (
        CallCtx::new(move |note| n.lock().unwrap().push(note)),
        notes,
    )
}

fn message(e: &ProviderError) -> &str {
    match e {
        ProviderError::Transient(m) | ProviderError::Permanent(m) | ProviderError::NotFound(m) => m,
    }
}

#[tokio::test]
async fn deactivate_with_200_and_resource() {
    let fake = FakeScim::start(TOKEN).await;
    let id = fake.add_user("alice@corp.test", true);
    fake.add_user("bob@corp.test", true);
    let p = provider(&fake);

    let out = p
        .apply(
            &call("deactivate_user", "alice@corp.test"),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(out.changed);
    assert_eq!(
        out.summary,
        format!("deactivated SCIM user {id} (active: true → false)")
    );
    assert_eq!(fake.user(&id).unwrap()["active"], json!(false));

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].raw_path, "/scim/v2/Users");
    assert_eq!(
        reqs[0].raw_query.as_deref(),
        Some("filter=userName%20eq%20%22alice%40corp.test%22")
    );
    assert_eq!(reqs[1].method, "PATCH");
    assert_eq!(reqs[1].raw_path, format!("/scim/v2/Users/{id}"));
    assert_eq!(
        reqs[1].body,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}],
        }))
    );
    assert_eq!(
        reqs[1].content_type.as_deref(),
        Some("application/scim+json")
    );
    for r in &reqs {
        assert!(r.has_auth);
        assert_eq!(
            r.accept.as_deref(),
            Some("application/scim+json, application/json")
        );
        assert!(r.user_agent.as_deref().unwrap().starts_with("offboard/"));
    }
    // The journal records: method, full URL (the filter is no secret), final status.
    assert_eq!(out.requests.len(), 2);
    assert_eq!(out.requests[0].method, "GET");
    assert_eq!(
        out.requests[0].url,
        format!(
            "{}/Users?filter=userName%20eq%20%22alice%40corp.test%22",
            fake.base_url
        )
    );
    assert_eq!(out.requests[0].status, 200);
    assert_eq!(out.requests[1].method, "PATCH");
    assert_eq!(out.requests[1].url, format!("{}/Users/{id}", fake.base_url));
    assert_eq!(out.requests[1].status, 200);

    let chk = p
        .check(
            &call("deactivate_user", "alice@corp.test"),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(chk.revoked);
    assert_eq!(chk.observed, "active=false");
    // bob was not touched.
    let bob = fake
        .requests()
        .iter()
        .filter(|r| r.raw_path.contains("bob"))
        .count();
    assert_eq!(bob, 0);
    fake.assert_contract();
}

#[tokio::test]
async fn deactivate_with_204_no_body() {
    let fake = FakeScim::start(TOKEN).await;
    fake.patch_reply(PatchReply::NoContent);
    let id = fake.add_user("carol", true);
    let p = provider(&fake);
    let out = p
        .apply(&call("deactivate_user", "carol"), &CallCtx::silent())
        .await
        .unwrap();
    assert!(out.changed);
    assert_eq!(out.requests[1].status, 204);
    assert_eq!(fake.user(&id).unwrap()["active"], json!(false));
    fake.assert_contract();
}

#[tokio::test]
async fn reapply_is_idempotent_and_sends_no_second_patch() {
    let fake = FakeScim::start(TOKEN).await;
    let id = fake.add_user("dave", true);
    let p = provider(&fake);
    assert!(
        p.apply(&call("deactivate_user", "dave"), &CallCtx::silent())
            .await
            .unwrap()
            .changed
    );
    let again = p
        .apply(&call("deactivate_user", "dave"), &CallCtx::silent())
        .await
        .unwrap();
    assert!(!again.changed);
    assert!(
        again.summary.contains("already inactive"),
        "{}",
        again.summary
    );
    assert!(again.summary.contains(&id));
    assert_eq!(fake.count("PATCH"), 1);
    fake.assert_contract();
}

#[tokio::test]
async fn check_detects_drift() {
    let fake = FakeScim::start(TOKEN).await;
    let id = fake.add_user("erin", true);
    let p = provider(&fake);
    p.apply(&call("deactivate_user", "erin"), &CallCtx::silent())
        .await
        .unwrap();
    fake.set_active(&id, true);
    let chk = p
        .check(&call("deactivate_user", "erin"), &CallCtx::silent())
        .await
        .unwrap();
    assert!(!chk.revoked);
    assert_eq!(chk.observed, "active=true");
    // The check reads the user by id: the proof RFC 7644 gives.
    let last = fake.requests().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.raw_path),
        ("GET", format!("/scim/v2/Users/{id}"))
    );
    // And re-applying fixes it.
    assert!(
        p.apply(&call("deactivate_user", "erin"), &CallCtx::silent())
            .await
            .unwrap()
            .changed
    );
    fake.assert_contract();
}

/// The same call, about an account an earlier call identified.
fn on<'a>(call: StepCall<'a>, account: &'a Account) -> StepCall<'a> {
    StepCall {
        account: Some(account),
        ..call
    }
}

#[tokio::test]
async fn delete_then_check() {
    let fake = FakeScim::start(TOKEN).await;
    let id = fake.add_user("frank", true);
    let p = provider(&fake);

    let chk = p
        .check(&call("delete_user", "frank"), &CallCtx::silent())
        .await
        .unwrap();
    assert!(!chk.revoked);
    assert!(chk.observed.contains("still exists"), "{}", chk.observed);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let ctx = CallCtx::silent().on_account(move |a| sink.lock().unwrap().push(a.clone()));
    let out = p.apply(&call("delete_user", "frank"), &ctx).await.unwrap();
    assert!(out.changed);
    assert_eq!(out.summary, format!("deleted SCIM user {id}"));
    assert_eq!(out.requests[1].method, "DELETE");
    assert_eq!(out.requests[1].status, 204);
    assert!(fake.user(&id).is_none());
    let account = out.account.expect("the account deleted");
    assert_eq!(
        (account.id.as_str(), account.name.as_str()),
        (id.as_str(), "frank")
    );
    // The engine heard of the account before the DELETE went out.
    assert_eq!(*seen.lock().unwrap(), std::slice::from_ref(&account));

    for action in ["delete_user", "deactivate_user"] {
        // Read by the recorded id: gone, so revoked.
        let chk = p
            .check(&on(call(action, "frank"), &account), &CallCtx::silent())
            .await
            .unwrap();
        assert!(chk.revoked, "{action}");
        assert_eq!(
            chk.observed,
            format!("SCIM user {id} no longer exists (404 by id: deleted)")
        );
        assert_eq!(chk.account.as_ref(), Some(&account));
        // By login alone, nobody is found: that proves nothing.
        let err = p
            .check(&call(action, "frank"), &CallCtx::silent())
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    }
    let again = p
        .apply(
            &on(call("delete_user", "frank"), &account),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!again.changed);
    assert_eq!(fake.count("DELETE"), 1);
    fake.assert_contract();
}

#[tokio::test]
async fn deleting_someone_never_seen_is_not_found_not_already_deleted() {
    let fake = FakeScim::start(TOKEN).await;
    fake.add_user("alice@corp", true);
    let p = provider(&fake);
    // A Cyrillic "а" in place of the Latin "a".
    let err = p
        .apply(&call("delete_user", "\u{430}lice@corp"), &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    assert_eq!(fake.count("DELETE"), 0);
    fake.assert_contract();
}

#[tokio::test]
async fn a_renamed_account_is_still_read_by_its_id() {
    let fake = FakeScim::start(TOKEN).await;
    let id = fake.add_user("alice@corp", true);
    let p = provider(&fake);
    let out = p
        .apply(&call("deactivate_user", "alice@corp"), &CallCtx::silent())
        .await
        .unwrap();
    let account = out.account.unwrap();
    assert_eq!(account.id, id);
    // Behind the tool's back: renamed, and active again.
    fake.rename_user(&id, "alice.old@corp");
    fake.set_active(&id, true);
    let chk = p
        .check(
            &on(call("deactivate_user", "alice@corp"), &account),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!chk.revoked, "a rename must not read as revoked: {chk:?}");
    assert_eq!(chk.observed, "active=true");
    let read = chk.account.unwrap();
    assert_eq!(
        (read.id.as_str(), read.name.as_str()),
        (id.as_str(), "alice.old@corp")
    );
    let last = fake.requests().last().cloned().unwrap();
    assert_eq!((last.method.as_str(), last.filter), ("GET", None));
    fake.assert_contract();
}

#[tokio::test]
async fn a_filter_that_finds_nobody_proves_nothing() {
    let fake = FakeScim::start(TOKEN).await;
    let id = fake.add_user("bob@corp", true);
    let p = provider(&fake);
    let out = p
        .apply(&call("deactivate_user", "bob@corp"), &CallCtx::silent())
        .await
        .unwrap();
    let account = out.account.unwrap();
    fake.blind_user_filter();
    fake.set_active(&id, true);
    // By id: the truth (access is back).
    let chk = p
        .check(
            &on(call("deactivate_user", "bob@corp"), &account),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!chk.revoked, "{chk:?}");
    // By filter: nobody, which is not a revocation.
    for action in ["deactivate_user", "delete_user", "remove_from_groups"] {
        let err = p
            .check(&call(action, "bob@corp"), &CallCtx::silent())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::NotFound(_)),
            "{action}: {err:?}"
        );
    }
    fake.assert_contract();
}

#[tokio::test]
async fn a_404_by_id_after_a_filter_hit_cannot_confirm() {
    // The filter still finds the user (a lagging index) but the resource is gone: 404.
    let fake = FakeScim::start(TOKEN).await;
    fake.add_user("gina", false);
    let p = provider(&fake);
    fake.fail_after(
        1,
        Fault::Error {
            status: 404,
            scim_type: None,
            detail: "Resource not found",
        },
    );
    let err = p
        .check(&call("deactivate_user", "gina"), &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(message(&err).contains("cannot confirm"), "{err}");

    fake.fail_after(
        1,
        Fault::Error {
            status: 404,
            scim_type: None,
            detail: "Resource not found",
        },
    );
    // The DELETE of the account the filter found answers 404: already gone, and that
    // account (by id) is what a later check reads.
    let out = p
        .apply(&call("delete_user", "gina"), &CallCtx::silent())
        .await
        .unwrap();
    assert!(!out.changed, "{out:?}");
    assert_eq!(out.requests[1].status, 404);
    assert!(out.account.is_some());
    fake.assert_contract();
}

#[tokio::test]
async fn unknown_user_is_not_found() {
    let fake = FakeScim::start(TOKEN).await;
    fake.add_user("someone-else", true);
    let p = provider(&fake);
    let err = p
        .apply(
            &call("deactivate_user", "ghost@corp.test"),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    assert!(message(&err).contains("\"ghost@corp.test\""), "{err}");
    assert!(message(&err).contains("userName"), "{err}");
    assert_eq!(fake.count("PATCH"), 0);
    fake.assert_contract();
}

#[tokio::test]
async fn ambiguous_match_is_refused() {
    let fake = FakeScim::start(TOKEN).await;
    fake.add_user("Twin", true);
    fake.add_user("twin", true); // userName is case-insensitive: both match
    let p = provider(&fake);
    let err = p
        .apply(&call("deactivate_user", "twin"), &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(message(&err).contains("ambiguous"), "{err}");
    assert_eq!(fake.count("PATCH"), 0);
    fake.assert_contract();
}

#[tokio::test]
async fn rejected_token_is_readable_and_never_echoed() {
    let fake = FakeScim::start(TOKEN).await;
    fake.add_user("hank", true);
    fake.echo_auth_in_errors();
    let wrong = "wrong-token-5d2b8e";
    let p = ScimProvider::new(&system_config(&fake.base_url, Some(wrong))).unwrap();
    let err = p
        .apply(&call("deactivate_user", "hank"), &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    let m = message(&err);
    assert!(m.contains("401"), "{m}");
    assert!(m.contains("token was rejected"), "{m}");
    assert!(m.contains("GET /scim/v2/Users"), "{m}");
    assert!(!m.contains(wrong), "token leaked: {m}");
    assert!(!m.contains("127.0.0.1"), "host in message: {m}");
    assert!(!format!("{err:?}").contains(wrong));
    assert!(!format!("{p:?}").contains(wrong));
    assert_eq!(fake.requests().len(), 1, "401 must not be retried");
    fake.assert_contract();
}

#[tokio::test]
async fn forbidden_says_permission() {
    let fake = FakeScim::start(TOKEN).await;
    fake.add_user("ivy", true);
    fake.fail_next(
        1,
        Fault::Error {
            status: 403,
            scim_type: None,
            detail: "client lacks scope scim:write",
        },
    );
    let err = provider(&fake)
        .apply(&call("deactivate_user", "ivy"), &CallCtx::silent())
        .await
        .unwrap_err();
    let m = message(&err);
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(m.contains("lacks permission"), "{m}");
    assert!(m.contains("client lacks scope scim:write"), "{m}");
    assert_eq!(fake.requests().len(), 1);
    fake.assert_contract();
}

#[tokio::test]
async fn scim_400_detail_is_surfaced() {
    let fake = FakeScim::start(TOKEN).await;
    fake.add_user("jane", true);
    // The find passes, the PATCH is refused.
    fake.fail_after(
        1,
        Fault::Error {
            status: 400,
            scim_type: Some("mutability"),
            detail: "active is managed by the HR feed",
        },
    );
    let err = provider(&fake)
        .apply(&call("deactivate_user", "jane"), &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    let m = message(&err);
    assert!(m.contains("PATCH /scim/v2/Users/"), "{m}");
    assert!(m.contains("400 Bad Request"), "{m}");
    assert!(
        m.contains("mutability: active is managed by the HR feed"),
        "{m}"
    );
    assert_eq!(fake.count("PATCH"), 1, "400 must not be retried");
    fake.assert_contract();
}

#[tokio::test]
async fn wrong_base_url_is_not_mistaken_for_a_deleted_user() {
    let fake = FakeScim::start(TOKEN).await;
    fake.add_user("kim", false);
    let base = fake.base_url.replace("/scim/v2", "/nope");
    let p = ScimProvider::new(&system_config(&base, Some(TOKEN))).unwrap();
    let err = p
        .check(&call("deactivate_user", "kim"), &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(message(&err).contains("base_url"), "{err}");
}

#[tokio::test]
async fn retry_after_is_honoured_then_success() {
    let fake = FakeScim::start(TOKEN).await;
    let id = fake.add_user("liam", true);
    fake.fail_next(2, Fault::TooMany { retry_after: 1 });
    let (ctx, notes) = recording_ctx();
    let started = tokio::time::Instant::now();
    let out = provider(&fake)
        .apply(&call("deactivate_user", "liam"), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.user(&id).unwrap()["active"], json!(false));
    let notes = notes.lock().unwrap().clone();
    assert_eq!(notes.len(), 2, "{notes:?}");
    for (i, n) in notes.iter().enumerate() {
        assert_eq!(n.attempt, i as u32 + 1);
        assert_eq!(n.wait_ms, 1000);
        assert!(n.reason.contains("429"), "{}", n.reason);
    }
    assert_eq!(fake.count("GET"), 3);
    // The journal has one record per request made, with its final status.
    assert_eq!(out.requests[0].status, 200);
    fake.assert_contract();
}

#[tokio::test]
async fn server_errors_are_retried_within_budget_then_transient() {
    let fake = FakeScim::start(TOKEN).await;
    fake.add_user("mia", true);
    fake.fail_next(100, Fault::Unavailable);
    let (ctx, notes) = recording_ctx();
    let err = provider(&fake)
        .apply(&call("deactivate_user", "mia"), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    let m = message(&err);
    assert!(m.contains("gave up after 4 attempts"), "{m}");
    assert!(m.contains("503"), "{m}");
    assert_eq!(fake.requests().len(), 4);
    let notes = notes.lock().unwrap().clone();
    assert_eq!(notes.len(), 3);
    // Full jitter under a doubling ceiling: 5, 10, 20 ms.
    for (i, n) in notes.iter().enumerate() {
        assert!(n.wait_ms <= 5 << i, "{n:?}");
    }
    fake.assert_contract();
}

#[tokio::test]
async fn a_500_then_success() {
    let fake = FakeScim::start(TOKEN).await;
    fake.add_user("noah", true);
    fake.fail_after(1, Fault::ServerError); // the PATCH fails once
    let (ctx, notes) = recording_ctx();
    let out = provider(&fake)
        .apply(&call("deactivate_user", "noah"), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    assert_eq!(fake.count("PATCH"), 2);
    assert_eq!(notes.lock().unwrap().len(), 1);
    assert_eq!(out.requests.last().unwrap().status, 200);
    fake.assert_contract();
}

#[tokio::test]
async fn retry_after_beyond_the_cap_fails_transient_without_waiting() {
    let fake = FakeScim::start(TOKEN).await;
    fake.add_user("olga", true);
    fake.fail_next(1, Fault::TooMany { retry_after: 3600 });
    let started = tokio::time::Instant::now();
    let err = provider(&fake)
        .apply(&call("deactivate_user", "olga"), &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    assert!(message(&err).contains("3600"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
    fake.assert_contract();
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let fake = FakeScim::start(TOKEN).await;
    fake.add_user("pia", true);
    fake.fail_next(1, Fault::Slow(Duration::from_secs(5)));
    let mut cfg = system_config(&fake.base_url, Some(TOKEN));
    cfg.timeout = Duration::from_millis(1000);
    let p = ScimProvider::new(&cfg).unwrap().with_retry(RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(5),
        max_wait: Duration::from_secs(1),
        max_total: Duration::from_secs(2),
    });
    let (ctx, notes) = recording_ctx();
    let out = p
        .apply(&call("deactivate_user", "pia"), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    let notes = notes.lock().unwrap().clone();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].reason.contains("timed out"), "{notes:?}");
    assert!(!notes[0].reason.contains("127.0.0.1"), "{notes:?}");
    fake.assert_contract();
}

#[tokio::test]
async fn connection_refused_is_transient_and_readable() {
    // A port nobody listens on: bind one, learn it, drop it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}/scim/v2");
    let p = ScimProvider::new(&system_config(&base, Some(TOKEN)))
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 2,
            base: Duration::from_millis(1),
            max_wait: Duration::from_millis(10),
            max_total: Duration::from_millis(50),
        });
    let (ctx, notes) = recording_ctx();
    let err = p
        .apply(&call("deactivate_user", "q"), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    assert!(message(&err).contains("could not connect"), "{err}");
    assert!(!message(&err).contains(&port.to_string()), "{err}");
    assert_eq!(notes.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn hostile_logins_are_escaped_and_encoded() {
    let hostile = [
        r#"a"b\c"#,
        "../x",
        "%2F",
        "a b",
        "zoë.ümlaut@例え.jp",
        "line\nbreak",
        "x&filter=userName pr",
        "q?#frag",
    ];
    let fake = FakeScim::start(TOKEN).await;
    let p = provider(&fake);
    for login in hostile {
        fake.clear_requests();
        let id = fake.add_user(login, true);
        let out = p
            .apply(&call("deactivate_user", login), &CallCtx::silent())
            .await
            .unwrap_or_else(|e| panic!("{login:?}: {e}"));
        assert!(out.changed, "{login:?}");
        assert_eq!(fake.user(&id).unwrap()["active"], json!(false), "{login:?}");

        let get = &fake.requests()[0];
        let filter = get.filter.as_deref().unwrap();
        assert_eq!(
            filter,
            format!("userName eq {}", serde_json::to_string(login).unwrap()),
            "{login:?}"
        );
        assert_eq!(parse_filter(filter).unwrap().1, login, "{login:?}");
        let raw = get.raw_query.as_deref().unwrap();
        assert!(raw.starts_with("filter="), "{raw}");
        let value = &raw["filter=".len()..];
        for bad in [' ', '"', '\\', '\n', '/', '&', '?', '#', '+', '='] {
            assert!(
                !value.contains(bad),
                "{login:?}: {bad:?} unencoded in {raw}"
            );
        }
        assert!(value.is_ascii(), "{raw}");
        assert_eq!(get.raw_path, "/scim/v2/Users");
        let chk = p
            .check(&call("deactivate_user", login), &CallCtx::silent())
            .await
            .unwrap();
        assert!(chk.revoked, "{login:?}");
    }
    fake.assert_contract();
}

#[tokio::test]
async fn hostile_ids_stay_one_path_segment() {
    let fake = FakeScim::start(TOKEN).await;
    let p = provider(&fake);
    for (i, id) in ["a/b", "../admin", "x y%2F", "é?#"].iter().enumerate() {
        let login = format!("user{i}");
        fake.add_user_with_id(id, &login, true);
        fake.clear_requests();
        p.apply(&call("deactivate_user", &login), &CallCtx::silent())
            .await
            .unwrap_or_else(|e| panic!("{id:?}: {e}"));
        assert_eq!(fake.user(id).unwrap()["active"], json!(false), "{id:?}");
        let patch = fake
            .requests()
            .into_iter()
            .find(|r| r.method == "PATCH")
            .unwrap();
        let seg = patch.raw_path.strip_prefix("/scim/v2/Users/").unwrap();
        assert!(!seg.contains('/'), "{}", patch.raw_path);
        assert_eq!(
            percent_encoding::percent_decode_str(seg)
                .decode_utf8()
                .unwrap(),
            *id
        );
    }
    fake.assert_contract();
}

#[tokio::test]
async fn describe_matches_what_apply_sends() {
    let fake = FakeScim::start(TOKEN).await;
    let id = fake.add_user(r#"we"ird\ one"#, true);
    let p = provider(&fake);
    let c = call("deactivate_user", r#"we"ird\ one"#);
    let lines = p.describe(&c);
    let out = p.apply(&c, &CallCtx::silent()).await.unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].method, out.requests[0].method);
    assert_eq!(lines[0].url, out.requests[0].url);
    assert_eq!(lines[1].method, "PATCH");
    assert_eq!(lines[1].url.replace("{id}", &id), out.requests[1].url);
    // No I/O and no token needed to describe.
    let planning = ScimProvider::new(&system_config(&fake.base_url, None)).unwrap();
    assert_eq!(planning.describe(&c), lines);
    fake.assert_contract();
}

fn call_with<'a>(
    action: &'a str,
    login: &'a str,
    params: &'a serde_json::Map<String, serde_json::Value>,
) -> StepCall<'a> {
    StepCall {
        step_id: "step",
        action,
        login,
        params,
        account: None,
    }
}

#[tokio::test]
async fn remove_from_groups_filters_patches_and_checks() {
    let fake = FakeScim::start(TOKEN).await;
    let alice = fake.add_user("alice@corp.test", true);
    let bob = fake.add_user("bob@corp.test", true);
    let eng = fake.add_group("eng", &[&alice, &bob]);
    let ops = fake.add_group("ops", &[&bob]);
    let p = provider(&fake);
    let out = p
        .apply(
            &call("remove_from_groups", "alice@corp.test"),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(out.changed);
    assert_eq!(
        out.summary,
        format!("removed SCIM user {alice} from 1 group(s): eng")
    );
    assert_eq!(fake.group_members(&eng), vec![bob.clone()]);
    assert_eq!(fake.group_members(&ops), vec![bob.clone()]);
    let search = fake
        .requests()
        .into_iter()
        .find(|r| r.raw_path.ends_with("/Groups"))
        .unwrap();
    assert_eq!(
        search.filter,
        Some(format!("members[value eq \"{alice}\"]"))
    );
    let patch = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(
        patch.body.unwrap()["Operations"],
        json!([{"op": "remove", "path": format!("members[value eq \"{alice}\"]")}])
    );
    let chk = p
        .check(
            &call("remove_from_groups", "alice@corp.test"),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(chk.revoked, "{chk:?}");
    fake.assert_contract();
}

#[tokio::test]
async fn remove_from_groups_with_a_server_that_ignores_the_filter() {
    let fake = FakeScim::start(TOKEN).await;
    fake.ignore_group_filter();
    let alice = fake.add_user("alice@corp.test", true);
    let bob = fake.add_user("bob@corp.test", true);
    let ops = fake.add_group("ops", &[&bob]);
    fake.add_group("eng", &[&alice]);
    let p = provider(&fake);
    let chk = p
        .check(
            &call("remove_from_groups", "alice@corp.test"),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert_eq!(chk.observed, "still member of: eng");
    let out = p
        .apply(
            &call("remove_from_groups", "alice@corp.test"),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert_eq!(
        out.summary,
        format!("removed SCIM user {alice} from 1 group(s): eng")
    );
    // The group that does not hold the person was never patched.
    assert_eq!(fake.count("PATCH"), 1);
    assert_eq!(fake.group_members(&ops), [bob]);
    fake.assert_contract();
}

#[tokio::test]
async fn remove_from_groups_errors() {
    let fake = FakeScim::start(TOKEN).await;
    let alice = fake.add_user("alice@corp.test", true);
    fake.add_group("eng", &[&alice]);
    let p = provider(&fake);
    // Bad params are refused before any request.
    let mut bad = serde_json::Map::new();
    bad.insert("groups".into(), json!("eng"));
    let err = p
        .apply(
            &call_with("remove_from_groups", "alice@corp.test", &bad),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(
        message(&err).contains("the params of action `remove_from_groups`"),
        "{err:?}"
    );
    assert!(fake.requests().is_empty());
    // Unknown person.
    let err = p
        .apply(
            &call("remove_from_groups", "nobody@corp.test"),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    // The group PATCH is refused: a permanent error with the server's message.
    fake.fail_after(
        2,
        Fault::Error {
            status: 403,
            scim_type: None,
            detail: "groups are read-only for this client",
        },
    );
    let err = p
        .apply(
            &call("remove_from_groups", "alice@corp.test"),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(message(&err).contains("groups are read-only"), "{err:?}");
    // A 503 on the search is retried.
    fake.fail_after(1, Fault::Unavailable);
    let (ctx, notes) = recording_ctx();
    let out = p
        .apply(&call("remove_from_groups", "alice@corp.test"), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    assert_eq!(notes.lock().unwrap().len(), 1);
    fake.assert_contract();
}

#[tokio::test]
async fn rate_limit_spaces_every_request_to_the_system() {
    let fake = FakeScim::start(TOKEN).await;
    fake.add_user("rita", true);
    let mut cfg = system_config(&fake.base_url, Some(TOKEN));
    // A name of its own: the limits are shared process-wide, per system.
    cfg.name = "rate-limited-hr".into();
    cfg.rate_limit = Some(offboard::limits::RateLimit::parse("5/s").unwrap());
    let p = ScimProvider::new(&cfg).unwrap();
    let t0 = std::time::Instant::now();
    let out = p
        .apply(&call("deactivate_user", "rita"), &CallCtx::silent())
        .await
        .unwrap();
    p.check(
        &on(
            call("deactivate_user", "rita"),
            out.account.as_ref().unwrap(),
        ),
        &CallCtx::silent(),
    )
    .await
    .unwrap();
    // GET (filter), PATCH, GET (by id): three starts, one every 200 ms at the least.
    assert_eq!(fake.requests().len(), 3);
    assert!(
        t0.elapsed() >= Duration::from_millis(400),
        "three requests at 5/s took only {:?}",
        t0.elapsed()
    );
    fake.assert_contract();
}

/// The contract check names a PATCH the fake itself would have accepted (JSON instead of
/// `application/scim+json`, RFC 7644 §3.1) and one without the PatchOp `schemas` (§3.5.2), and
/// passes the same request sent right.
#[tokio::test]
async fn a_malformed_patch_breaks_the_contract() {
    let fake = FakeScim::start(TOKEN).await;
    let id = fake.add_user("ada", true);
    let http = reqwest::Client::new();
    let url = format!("{}/Users/{id}", fake.base_url);
    let good = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}],
    });
    let send = |content_type: &'static str, body: serde_json::Value| {
        http.patch(&url)
            .bearer_auth(TOKEN)
            .header("accept", "application/scim+json")
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
    };

    let resp = send("application/scim+json", good.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.contract_violations(), Vec::<String>::new());

    // The fake answers this one (it takes plain JSON too); the contract does not.
    let resp = send("application/json", good).await.unwrap();
    assert_eq!(resp.status(), 200);
    let bad = fake.contract_violations();
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert!(
        bad[0].starts_with(&format!("#1 PATCH /scim/v2/Users/{id}: ")),
        "{bad:#?}"
    );
    assert!(
        bad[0].contains(
            r#"header content-type is "application/json", expected "application/scim+json""#
        ),
        "{bad:#?}"
    );

    fake.clear_requests();
    let no_schemas = json!({"Operations": [{"op": "replace", "path": "active", "value": false}]});
    send("application/scim+json", no_schemas).await.unwrap();
    let bad = fake.contract_violations();
    assert_eq!(bad.len(), 1, "{bad:#?}");
    assert!(bad[0].contains("$: missing property schemas"), "{bad:#?}");
    let panicked =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fake.assert_contract()))
            .unwrap_err();
    let text = panicked.downcast_ref::<String>().unwrap();
    assert!(
        text.contains("1 of 1 requests broke the SCIM 2.0 contract"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// `auth`: the system's auth table, through the kit, on the SCIM request path

mod auth {
    use super::*;

    use base64::Engine;
    use common::fake_token::FakeTokenEndpoint;
    use offboard::providers::SystemConfig;
    use offboard::providers::kit::auth::{
        AuthConfig, AuthSpec, BasicAuth, HeaderAuth, OAuth2Auth, SecretIn,
    };
    use secrecy::SecretString;

    const CLIENT: &str = "offboard-app";
    const CLIENT_SECRET: &str = "cs-SECRET-4a1f9e27";
    /// What the token endpoint issues; the SCIM fake accepts this token and no other.
    const ACCESS: &str = "at-SECRET-issued-5b7e01";
    const SCOPE: &str = "scim:users.write";

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    fn oauth2(token_url: &str, client_secret: &str, how: SecretIn) -> AuthConfig {
        AuthSpec::OAuth2(OAuth2Auth {
            token_url: token_url.into(),
            client_id: CLIENT.into(),
            scopes: vec![SCOPE.into()],
            audience: None,
            client_secret: Some(secret(client_secret)),
            client_auth: Some(how),
            private_key: None,
            key_id: None,
        })
    }

    /// A scim system at `fake` with this auth table and no `token`.
    fn with_auth(fake: &FakeScim, auth: AuthConfig) -> ScimProvider {
        let cfg = SystemConfig {
            auth: Some(auth),
            ..system_config(&fake.base_url, None)
        };
        ScimProvider::new(&cfg).unwrap().with_retry(RetryPolicy {
            max_attempts: 2,
            base: Duration::from_millis(5),
            max_wait: Duration::from_secs(1),
            max_total: Duration::from_secs(2),
        })
    }

    fn form(r: &common::fake_kit::Recorded) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&r.body).into_owned().collect()
    }

    /// The whole departure step runs on a token from the endpoint: fetched once, sent as
    /// `Bearer` on every SCIM request, with the client secret in the body or as Basic.
    #[tokio::test]
    async fn oauth2_client_credentials_authorise_every_scim_request() {
        for how in [SecretIn::Post, SecretIn::Basic] {
            let endpoint = FakeTokenEndpoint::start(CLIENT, CLIENT_SECRET, ACCESS).await;
            endpoint.expect_scope(SCOPE);
            let fake = FakeScim::start(ACCESS).await;
            let id = fake.add_user("alice@corp.test", true);
            let p = with_auth(&fake, oauth2(&endpoint.url, CLIENT_SECRET, how));

            let out = p
                .apply(
                    &call("deactivate_user", "alice@corp.test"),
                    &CallCtx::silent(),
                )
                .await
                .unwrap_or_else(|e| panic!("{how:?}: {e}"));
            assert!(out.changed);
            assert_eq!(fake.user(&id).unwrap()["active"], json!(false));
            let chk = p
                .check(
                    &call("deactivate_user", "alice@corp.test"),
                    &CallCtx::silent(),
                )
                .await
                .unwrap();
            assert!(chk.revoked);

            // Four SCIM requests, each authorised (the fake answers 401 to any other token),
            // on one token.
            let reqs = fake.requests();
            assert_eq!(reqs.len(), 4, "{reqs:#?}");
            assert!(reqs.iter().all(|r| r.has_auth));
            assert_eq!(endpoint.issued(), 1);
            assert_eq!(endpoint.refused(), 0);
            let token_reqs = endpoint.requests();
            assert_eq!(token_reqs.len(), 1);
            let t = &token_reqs[0];
            assert_eq!(t.method, "POST");
            let body = form(t);
            let has = |k: &str, v: &str| body.iter().any(|(a, b)| a == k && b == v);
            assert!(has("grant_type", "client_credentials"), "{body:?}");
            assert!(has("scope", SCOPE), "{body:?}");
            match how {
                SecretIn::Post => {
                    assert!(has("client_id", CLIENT) && has("client_secret", CLIENT_SECRET));
                    assert_eq!(t.auth_scheme(), None);
                }
                SecretIn::Basic => {
                    assert!(!body.iter().any(|(k, _)| k == "client_secret"), "{body:?}");
                    assert_eq!(t.auth_scheme(), Some("Basic"));
                }
            }
            fake.assert_contract();
        }
    }

    /// A wrong client secret: the step fails for good, in the endpoint's own words, before
    /// any request reaches the API, and the secret is nowhere in the message.
    #[tokio::test]
    async fn a_refused_client_secret_is_a_permanent_failure_in_the_endpoints_words() {
        let endpoint = FakeTokenEndpoint::start(CLIENT, CLIENT_SECRET, ACCESS).await;
        let fake = FakeScim::start(ACCESS).await;
        fake.add_user("alice@corp.test", true);
        let wrong = "cs-SECRET-wrong-0c3d";
        let p = with_auth(&fake, oauth2(&endpoint.url, wrong, SecretIn::Post));
        let e = p
            .preflight(
                &call("deactivate_user", "alice@corp.test"),
                &CallCtx::silent(),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
        let m = message(&e);
        assert!(m.contains("invalid_client"), "{m}");
        assert!(m.contains("system `hr-scim`"), "{m}");
        assert!(m.contains(&endpoint.url), "names the endpoint: {m}");
        assert!(!m.contains(wrong) && !m.contains(CLIENT_SECRET), "{m}");
        assert!(fake.requests().is_empty(), "{:#?}", fake.requests());
        assert_eq!(endpoint.refused(), 1);
    }

    /// Static credentials from the table reach the API as the table says.
    #[tokio::test]
    async fn bearer_and_header_tables_send_the_static_token() {
        let fake = FakeScim::start(TOKEN).await;
        let id = fake.add_user("alice@corp.test", true);
        for auth in [
            AuthSpec::Bearer(secret(TOKEN)),
            AuthSpec::Header(HeaderAuth {
                name: "Authorization".into(),
                scheme: Some("Bearer".into()),
                value: secret(TOKEN),
            }),
        ] {
            fake.set_active(&id, true);
            let p = with_auth(&fake, auth.clone());
            let out = p
                .apply(
                    &call("deactivate_user", "alice@corp.test"),
                    &CallCtx::silent(),
                )
                .await
                .unwrap_or_else(|e| panic!("{auth:?}: {e}"));
            assert!(out.changed, "{auth:?}");
        }
    }

    /// A server that echoes the credentials it got back in its error: neither the secrets of
    /// the table nor what was sent (Basic's encoded pair, an issued access token) reach the
    /// error text.
    #[tokio::test]
    async fn credentials_a_server_echoes_back_are_cut_out() {
        let endpoint = FakeTokenEndpoint::start(CLIENT, CLIENT_SECRET, ACCESS).await;
        // It wants another token than any of these: every request is a 401 that echoes.
        let fake = FakeScim::start("what-the-server-wants").await;
        fake.echo_auth_in_errors();
        fake.add_user("alice@corp.test", true);
        let password = "pw-SECRET-77aa19";
        let pair = base64::engine::general_purpose::STANDARD.encode(format!("svc:{password}"));
        let header_value = "hv-SECRET-4410be";
        for (auth, leaks) in [
            (
                AuthSpec::Basic(BasicAuth {
                    username: "svc".into(),
                    password: secret(password),
                }),
                vec![password, pair.as_str()],
            ),
            (
                AuthSpec::Header(HeaderAuth {
                    name: "Authorization".into(),
                    scheme: Some("Token".into()),
                    value: secret(header_value),
                }),
                vec![header_value],
            ),
            (
                oauth2(&endpoint.url, CLIENT_SECRET, SecretIn::Post),
                vec![ACCESS, CLIENT_SECRET],
            ),
        ] {
            let p = with_auth(&fake, auth.clone());
            let e = p
                .apply(
                    &call("deactivate_user", "alice@corp.test"),
                    &CallCtx::silent(),
                )
                .await
                .unwrap_err();
            let m = message(&e);
            assert!(m.contains("401"), "{m}");
            assert!(
                m.contains("bad credentials: ") && m.contains("[redacted]"),
                "{m}"
            );
            for leak in leaks {
                assert!(!m.contains(leak), "{auth:?} leaked {leak}: {m}");
            }
        }
        // The OAuth case fetched a second token after the first 401, then gave up.
        assert_eq!(endpoint.issued(), 2);
    }
}

// ---- Rollback: the pre-state each apply records, restore, check_restored ----

/// A context that keeps the pre-states an apply records.
fn before_ctx() -> (CallCtx, Arc<Mutex<Vec<serde_json::Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (
        CallCtx::silent().on_before(move |v| sink.lock().unwrap().push(v.clone())),
        seen,
    )
}

#[tokio::test]
async fn deactivate_records_active_and_restore_puts_it_back() {
    let fake = FakeScim::start(TOKEN).await;
    let id = fake.add_user("gina@corp", true);
    let p = provider(&fake);
    // The preflight found the account just now: the apply reads its pre-state by id first.
    let account = Account::new(id.clone(), "SCIM id", "gina@corp");
    let (ctx, seen) = before_ctx();
    let ctx = ctx.found_just_now();
    let out = p
        .apply(&on(call("deactivate_user", "gina@corp"), &account), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{out:?}");
    assert_eq!(*seen.lock().unwrap(), vec![json!({"active": true})]);
    let methods: Vec<&str> = out.requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        methods,
        ["GET", "PATCH"],
        "the read by id comes before the change"
    );
    assert_eq!(fake.user(&id).unwrap()["active"], json!(false));

    let before = seen.lock().unwrap()[0].clone();
    let on_it = on(call("deactivate_user", "gina@corp"), &account);
    let lines: Vec<String> = p
        .describe_restore(&on_it, &before)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            format!("GET {}/Users/{id}", fake.base_url),
            format!("PATCH {}/Users/{id}", fake.base_url)
        ]
    );
    let restored = p
        .restore(&on_it, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(restored.changed, "{restored:?}");
    assert_eq!(
        restored.summary,
        format!("restored SCIM user {id} (active: false → true)")
    );
    assert_eq!(fake.user(&id).unwrap()["active"], json!(true));
    let last = fake.requests().last().unwrap().clone();
    assert_eq!(
        last.body,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": true}],
        }))
    );
    let chk = p
        .check_restored(&on_it, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(chk.restored, "{chk:?}");
    assert_eq!(chk.after, json!({"active": true}));
    // Idempotent: a second restore changes nothing.
    let again = p
        .restore(&on_it, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!again.changed);
    assert_eq!(fake.count("PATCH"), 2);

    // A user that was already inactive before: restore keeps it inactive.
    let was_off = json!({"active": false});
    let kept = p
        .restore(&on_it, &was_off, &CallCtx::silent())
        .await
        .unwrap();
    assert!(kept.changed);
    assert_eq!(fake.user(&id).unwrap()["active"], json!(false));

    // Deleted since: SCIM has no undelete.
    fake.remove_user(&id);
    let err = p
        .restore(&on_it, &before, &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(message(&err).contains("no longer exists"), "{err:?}");
    let chk = p
        .check_restored(&on_it, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!chk.restored);
    assert!(
        chk.observed.starts_with("not restorable"),
        "{}",
        chk.observed
    );
    fake.assert_contract();
}

#[tokio::test]
async fn remove_from_groups_records_the_groups_and_restore_re_adds_them_by_id() {
    let fake = FakeScim::start(TOKEN).await;
    let id = fake.add_user("hank@corp", true);
    let other = fake.add_user("ivy@corp", true);
    let eng = fake.add_group("eng", &[&id, &other]);
    let vpn = fake.add_group("vpn", &[&id]);
    let ops = fake.add_group("ops", &[&other]);
    let p = provider(&fake);
    let (ctx, seen) = before_ctx();
    let out = p
        .apply(&call("remove_from_groups", "hank@corp"), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    let before = seen.lock().unwrap()[0].clone();
    assert_eq!(
        before,
        json!({"groups": [{"id": eng, "name": "eng"}, {"id": vpn, "name": "vpn"}]})
    );
    assert!(fake.group_members(&vpn).is_empty());
    let account = out.account.unwrap();
    let on_it = on(call("remove_from_groups", "hank@corp"), &account);

    // vpn is deleted meanwhile: it cannot come back.
    fake.remove_group(&vpn);
    let restored = p
        .restore(&on_it, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(restored.changed);
    assert_eq!(
        restored.summary,
        format!("re-added SCIM user {id} to 1 group(s): eng; no longer exist: vpn ({vpn})")
    );
    assert_eq!(fake.group_members(&eng), vec![other.clone(), id.clone()]);
    assert_eq!(fake.group_members(&ops), vec![other.clone()]);
    let add = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.raw_path.ends_with(&eng))
        .find(|r| r.body.as_ref().unwrap()["Operations"][0]["op"] == "add")
        .expect("a PATCH add on eng");
    assert_eq!(
        add.body.unwrap()["Operations"][0],
        json!({"op": "add", "path": "members", "value": [{"value": id}]})
    );
    let chk = p
        .check_restored(&on_it, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!chk.restored, "{chk:?}");
    assert_eq!(
        chk.observed,
        format!("member again of: eng; not restorable: group vpn ({vpn}) no longer exists")
    );
    assert_eq!(chk.after, json!({"groups": [{"id": eng, "name": "eng"}]}));
    // Idempotent: nothing is added twice.
    let patches = fake.count("PATCH");
    let again = p
        .restore(&on_it, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!again.changed, "{again:?}");
    assert_eq!(
        fake.count("PATCH"),
        patches + 1,
        "only the gone group is tried"
    );
    assert_eq!(fake.group_members(&eng).len(), 2);
    fake.assert_contract();
}
