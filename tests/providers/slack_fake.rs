//! The `slack` kind against a fake Slack (tests/common/fake_slack.rs): SCIM deactivation read
//! back by id, nothing sent twice, nobody found never taken for revoked, the Web API's HTTP 200
//! `ok: false` answers as failures in Slack's words, 429 with Retry-After waited out on both
//! APIs, and drift behind the tool's back caught. Every test ends on the contract.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use offboard::providers::kit::http::RetryPolicy;
use offboard::providers::slack::SlackProvider;
use offboard::providers::{
    Account, CallCtx, Inverse, Provider, ProviderError, RetryNote, StepCall, SystemConfig,
    UNDO_NOT_BUILT, find_kind,
};
use serde_json::{Map, Value, json};

use crate::common::fake_kit::{Fault, Reply, RetryAfterStyle};
use crate::common::fake_slack::FakeSlack;

const TOKEN: &str = "xoxp-1111-2222-fake-Zr9q";

fn config(fake: &FakeSlack, attribute: Option<&str>) -> SystemConfig {
    let mut cfg = SystemConfig::new("slack", "slack", Some(&fake.scim_url())).with_token(TOKEN);
    cfg.settings
        .insert("api_url".into(), toml::Value::String(fake.api_url()));
    if let Some(a) = attribute {
        cfg.settings
            .insert("user_attribute".into(), toml::Value::String(a.into()));
    }
    cfg
}

fn provider(fake: &FakeSlack) -> SlackProvider {
    SlackProvider::new(&config(fake, None))
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
        step_id: "slack-step",
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

fn recording_ctx() -> (CallCtx, Arc<Mutex<Vec<RetryNote>>>) {
    let notes = Arc::new(Mutex::new(Vec::new()));
    let n = notes.clone();
    (
        CallCtx::new(move |note| n.lock().unwrap().push(note)),
        notes,
    )
}

fn count(fake: &FakeSlack, method: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method)
        .count()
}

#[tokio::test]
async fn deactivate_then_check_by_id_and_a_second_apply_sends_nothing() {
    let fake = FakeSlack::start(TOKEN).await;
    let bob = fake.add_user("bob", "bob@corp.test");
    let ana = fake.add_user("ana", "ana@corp.test");
    let p = provider(&fake);
    let none = Map::new();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let ctx = CallCtx::silent().on_account(move |a| s.lock().unwrap().push(a.clone()));
    let out = p
        .apply(&call("deactivate_user", "ana", &none, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{out:?}");
    let account = out.account.clone().unwrap();
    assert_eq!(account.id, ana);
    assert_eq!(account.name, "ana");
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        std::slice::from_ref(&account)
    );
    assert!(!fake.user(&ana).unwrap().active);
    assert!(fake.user(&bob).unwrap().active);
    let lines: Vec<String> = fake.requests().iter().map(|r| r.line()).collect();
    assert_eq!(
        lines.last().unwrap(),
        &format!("DELETE /scim/v2/Users/{ana}"),
        "{lines:#?}"
    );
    assert_eq!(out.requests.len(), lines.len());

    let c = p
        .check(
            &call("deactivate_user", "ana", &none, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(c.revoked, "{c:?}");
    assert_eq!(c.observed, "active=false");
    assert_eq!(c.account.as_ref().map(|a| &a.id), Some(&ana));
    // Read by id, not by filter.
    let last = fake.requests().last().unwrap().line();
    assert_eq!(last, format!("GET /scim/v2/Users/{ana}"));

    fake.server.clear_requests();
    let again = p
        .apply(
            &call("deactivate_user", "ana", &none, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!again.changed, "{again:?}");
    assert!(again.summary.contains("already deactivated"), "{again:?}");
    assert_eq!(count(&fake, "DELETE"), 0);
    // Found afresh by login, the deactivated user is not deactivated again either.
    let again = p
        .apply(
            &call("deactivate_user", "ana", &none, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!again.changed, "{again:?}");
    assert_eq!(count(&fake, "DELETE"), 0);
    fake.assert_contract();
}

#[tokio::test]
async fn found_by_email_when_so_configured() {
    let fake = FakeSlack::start(TOKEN).await;
    let id = fake.add_user("c.ng", "c.ng+ops@corp.test");
    let p = SlackProvider::new(&config(&fake, Some("emails.value"))).unwrap();
    let none = Map::new();
    let out = p
        .apply(
            &call("deactivate_user", "c.ng+ops@corp.test", &none, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert_eq!(out.account.unwrap().id, id);
    let first = &fake.requests()[0];
    assert_eq!(
        first.query_param("filter"),
        Some(r#"emails.value eq "c.ng+ops@corp.test""#)
    );
    assert!(!fake.user(&id).unwrap().active);
    fake.assert_contract();
}

#[tokio::test]
async fn an_unknown_user_is_not_found_and_never_revoked() {
    let fake = FakeSlack::start(TOKEN).await;
    fake.add_user("bob", "bob@corp.test");
    let p = provider(&fake);
    let none = Map::new();
    for action in ["deactivate_user", "reset_sessions"] {
        let err = p
            .apply(&call(action, "ghost", &none, None), &CallCtx::silent())
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
        assert!(message(&err).contains("ghost"), "{err:?}");
        let err = p
            .check(&call(action, "ghost", &none, None), &CallCtx::silent())
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    }
    assert_eq!(count(&fake, "DELETE"), 0);
    assert_eq!(count(&fake, "POST"), 0);
    fake.assert_contract();
}

#[tokio::test]
async fn drift_and_deletion_behind_the_tools_back() {
    let fake = FakeSlack::start(TOKEN).await;
    let id = fake.add_user("dee", "dee@corp.test");
    let p = provider(&fake);
    let none = Map::new();
    let out = p
        .apply(
            &call("deactivate_user", "dee", &none, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    let account = out.account.unwrap();
    fake.reactivate(&id);
    let c = p
        .check(
            &call("deactivate_user", "dee", &none, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!c.revoked, "{c:?}");
    assert_eq!(c.observed, "active=true");
    // Gone by id: nothing of it left.
    fake.remove(&id);
    let c = p
        .check(
            &call("deactivate_user", "dee", &none, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(c.revoked, "{c:?}");
    assert!(c.observed.contains("404"), "{c:?}");
    fake.assert_contract();
}

#[tokio::test]
async fn reset_sessions_is_confirmed_only_by_what_can_be_seen() {
    let fake = FakeSlack::start(TOKEN).await;
    let id = fake.add_user("eve", "eve@corp.test");
    let p = provider(&fake);
    let none = Map::new();
    // Before anything: preflight finds her; the check cannot confirm a reset that never was.
    let found = p
        .preflight(
            &call("reset_sessions", "eve", &none, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(found.contains(&id), "{found}");
    let err = p
        .check(
            &call("reset_sessions", "eve", &none, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(message(&err).contains("cannot list"), "{err:?}");

    let out = p
        .apply(
            &call("reset_sessions", "eve", &none, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(out.changed, "{out:?}");
    assert_eq!(fake.user(&id).unwrap().resets, 1);
    let post = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(post.json, Some(json!({ "user_id": id })));
    let account = out.account.unwrap();
    let c = p
        .check(
            &call("reset_sessions", "eve", &none, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(c.revoked, "{c:?}");
    assert!(c.observed.contains("ok"), "{c:?}");

    // Another process saw no reset: it cannot confirm one, until the user is deactivated.
    let other = provider(&fake);
    let err = other
        .check(
            &call("reset_sessions", "eve", &none, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    other
        .apply(
            &call("deactivate_user", "eve", &none, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    let c = other
        .check(
            &call("reset_sessions", "eve", &none, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(c.revoked, "{c:?}");
    assert!(c.observed.contains("active=false"), "{c:?}");
    // A deactivated user has no session left to reset: nothing is sent.
    let posts = count(&fake, "POST");
    let out = other
        .apply(
            &call("reset_sessions", "eve", &none, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!out.changed, "{out:?}");
    assert_eq!(count(&fake, "POST"), posts);
    fake.reactivate(&id);

    // Typed params: only web sessions.
    let web_only = json!({ "web_only": true }).as_object().unwrap().clone();
    let out = p
        .apply(
            &call("reset_sessions", "eve", &web_only, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(out.summary.contains("web sessions"), "{out:?}");
    let last = fake.requests().last().unwrap().clone();
    assert_eq!(last.json, Some(json!({ "user_id": id, "web_only": true })));
    fake.assert_contract();
}

#[tokio::test]
async fn web_api_ok_false_is_a_failure_in_slacks_words() {
    let fake = FakeSlack::start(TOKEN).await;
    let id = fake.add_user("fay", "fay@corp.test");
    let p = provider(&fake);
    let none = Map::new();
    let reset = "/api/admin.users.session.reset";
    let answer = |body: Value| Fault::Reply(Reply::json(200, &body));

    let apply = || async {
        let out = p
            .apply(
                &call("reset_sessions", "fay", &none, None),
                &CallCtx::silent(),
            )
            .await;
        if let Err(e) = &out {
            assert!(!message(e).contains(TOKEN), "{e:?}");
        }
        out
    };

    fake.server.fail_next_on(
        "POST",
        reset,
        answer(json!({ "ok": false, "error": "not_authed" })),
    );
    let err = apply().await.unwrap_err();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(message(&err).contains("not_authed"), "{err:?}");

    fake.server.fail_next_on(
        "POST",
        reset,
        answer(json!({ "ok": false, "error": "user_not_found" })),
    );
    let err = apply().await.unwrap_err();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(message(&err).contains("user_not_found"), "{err:?}");
    assert!(message(&err).contains(&id), "{err:?}");

    // Slack's own failures are worth another try, but still not done.
    fake.server.fail_next_on(
        "POST",
        reset,
        answer(json!({ "ok": false, "error": "fatal_error" })),
    );
    let err = apply().await.unwrap_err();
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    assert!(message(&err).contains("fatal_error"), "{err:?}");

    // The token lacks the scope: the fake says so from its state, naming what is needed.
    fake.set_scopes(&["admin"]);
    let err = apply().await.unwrap_err();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    let m = message(&err);
    assert!(m.contains("missing_scope"), "{m}");
    assert!(m.contains("admin.users:write"), "{m}");

    // Nothing was reset, and nothing claims it was.
    assert_eq!(fake.user(&id).unwrap().resets, 0);
    let err = p
        .check(
            &call("reset_sessions", "fay", &none, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    assert!(!message(&err).contains(TOKEN), "{err:?}");
    fake.assert_contract();
}

#[tokio::test]
async fn scim_errors_name_slacks_message_never_the_token() {
    let fake = FakeSlack::start(TOKEN).await;
    fake.add_user("gus", "gus@corp.test");
    let none = Map::new();
    // Slack's legacy error shape, and a token without the `admin` scope.
    fake.legacy_errors();
    fake.set_scopes(&["admin.users:write"]);
    let err = provider(&fake)
        .apply(
            &call("deactivate_user", "gus", &none, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(message(&err).contains("missing_scope: admin"), "{err:?}");
    assert!(!message(&err).contains(TOKEN), "{err:?}");

    // Another token: 401 with the detail.
    let mut cfg = config(&fake, None);
    cfg.token = Some("xoxp-wrong-token-77".to_string().into());
    let err = SlackProvider::new(&cfg)
        .unwrap()
        .apply(
            &call("deactivate_user", "gus", &none, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(message(&err).contains("invalid_authentication"), "{err:?}");
    assert!(!message(&err).contains("xoxp-wrong-token-77"), "{err:?}");
    assert_eq!(count(&fake, "DELETE"), 0);
    fake.assert_contract();
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_on_both_apis() {
    let fake = FakeSlack::start(TOKEN).await;
    let id = fake.add_user("hal", "hal@corp.test");
    let p = provider(&fake);
    let none = Map::new();

    fake.server.fail_next_on(
        "GET",
        "/scim/v2/Users",
        Fault::too_many(RetryAfterStyle::Seconds(1)),
    );
    let (ctx, notes) = recording_ctx();
    let started = tokio::time::Instant::now();
    let out = p
        .apply(&call("deactivate_user", "hal", &none, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(notes.lock().unwrap().len(), 1);
    assert!(notes.lock().unwrap()[0].wait_ms >= 1000, "{notes:?}");

    // The Web API: 429, Retry-After, and `ratelimited` in the body.
    fake.server.fail_next_on(
        "POST",
        "/api/admin.users.session.reset",
        Fault::Reply(
            Reply::json(429, &json!({ "ok": false, "error": "ratelimited" }))
                .header("retry-after", 1),
        ),
    );
    let account = out.account.unwrap();
    fake.reactivate(&id); // a deactivated user's sessions need no reset
    let (ctx, notes) = recording_ctx();
    let started = tokio::time::Instant::now();
    let out = p
        .apply(&call("reset_sessions", "hal", &none, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(notes.lock().unwrap().len(), 1);
    assert_eq!(fake.user(&id).unwrap().resets, 1);

    // Throttled past the budget: transient, in Slack's word, never done.
    for _ in 0..3 {
        fake.server.fail_next_on(
            "POST",
            "/api/admin.users.session.reset",
            Fault::Reply(
                Reply::json(429, &json!({ "ok": false, "error": "ratelimited" }))
                    .header("retry-after", 0),
            ),
        );
    }
    let err = p
        .apply(
            &call("reset_sessions", "hal", &none, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    assert!(message(&err).contains("ratelimited"), "{err:?}");
    assert_eq!(fake.user(&id).unwrap().resets, 1);
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
fn every_slack_action_declares_its_inverse() {
    let kind = find_kind("slack").unwrap();
    for a in kind.actions {
        assert_ne!(a.inverse, Inverse::None(UNDO_NOT_BUILT), "{}", a.name);
    }
    assert!(matches!(
        kind.action("deactivate_user").unwrap().inverse,
        Inverse::Restore(t) if t.contains("active=true")
    ));
    assert!(matches!(
        kind.action("reset_sessions").unwrap().inverse,
        Inverse::None(t) if t.contains("signs in again")
    ));
}

#[tokio::test]
async fn deactivate_records_active_and_restore_reactivates_the_same_id() {
    let fake = FakeSlack::start(TOKEN).await;
    let ana = fake.add_user("ana", "ana@corp.test");
    let p = provider(&fake);
    let none = Map::new();
    let (ctx, seen) = befores();
    let out = p
        .apply(&call("deactivate_user", "ana", &none, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    let account = out.account.unwrap();
    let before = seen.lock().unwrap().clone();
    assert_eq!(before, [json!({ "id": ana, "active": true })]);
    let before = before[0].clone();
    assert!(!fake.user(&ana).unwrap().active);

    let c = call("deactivate_user", "ana", &none, Some(&account));
    let plan: Vec<String> = p
        .describe_restore(&c, &before)
        .iter()
        .map(|l| format!("{} {}", l.method, l.url))
        .collect();
    assert_eq!(
        plan,
        [
            format!("GET {}/Users/{{id}}", fake.scim_url()),
            format!("PATCH {}/Users/{{id}}", fake.scim_url()),
        ]
    );
    let not_yet = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!not_yet.restored, "{not_yet:?}");
    assert!(
        not_yet.observed.contains("not reactivated"),
        "{}",
        not_yet.observed
    );

    let r = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(r.changed, "{r:?}");
    assert!(fake.user(&ana).unwrap().active);
    assert_eq!(fake.patches(), 1);
    let lines: Vec<String> = fake.requests().iter().map(|r| r.line()).collect();
    assert_eq!(
        lines.last().unwrap(),
        &format!("PATCH /scim/v2/Users/{ana}")
    );

    let again = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(!again.changed, "{again:?}");
    assert_eq!(fake.patches(), 1);

    let check = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(check.restored, "{check:?}");
    assert_eq!(check.after, before);
    assert_eq!(check.account.map(|a| a.id), Some(ana.clone()));

    // Gone by id: cannot be reactivated, and says so.
    fake.remove(&ana);
    let e = p
        .restore(&c, &before, &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(message(&e).contains("no longer exists"), "{e}");
    let gone = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!gone.restored);
    assert!(
        gone.observed.contains("no longer exists"),
        "{}",
        gone.observed
    );
    assert_eq!(gone.after, json!({ "id": ana, "active": null }));
    fake.assert_contract();
}

#[tokio::test]
async fn a_user_deactivated_before_offboard_is_not_reactivated() {
    let fake = FakeSlack::start(TOKEN).await;
    let ana = fake.add_user("ana", "ana@corp.test");
    let p = provider(&fake);
    let none = Map::new();
    p.apply(
        &call("deactivate_user", "ana", &none, None),
        &CallCtx::silent(),
    )
    .await
    .unwrap();
    let (ctx, seen) = befores();
    let out = p
        .apply(&call("deactivate_user", "ana", &none, None), &ctx)
        .await
        .unwrap();
    assert!(!out.changed);
    let before = seen.lock().unwrap()[0].clone();
    assert_eq!(before, json!({ "id": ana, "active": false }));
    let account = out.account.unwrap();
    let c = call("deactivate_user", "ana", &none, Some(&account));
    let r = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(!r.changed, "{r:?}");
    assert!(!fake.user(&ana).unwrap().active);
    assert_eq!(fake.patches(), 0);
    fake.assert_contract();
}

#[tokio::test]
async fn reset_sessions_records_the_user_it_signs_out() {
    let fake = FakeSlack::start(TOKEN).await;
    let ana = fake.add_user("ana", "ana@corp.test");
    let p = provider(&fake);
    let none = Map::new();
    let (ctx, seen) = befores();
    p.apply(&call("reset_sessions", "ana", &none, None), &ctx)
        .await
        .unwrap();
    assert_eq!(
        seen.lock().unwrap().clone(),
        [json!({ "id": ana, "active": true })]
    );
}
