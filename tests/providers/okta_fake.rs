//! The okta provider against an in-process fake of the Management API.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake_kit::{Fault, RetryAfterStyle};
use common::fake_okta::{FakeOkta, okta_error, system_config};
use offboard::providers::kit::http::RetryPolicy;
use offboard::providers::okta::OktaProvider;
use offboard::providers::{Account, CallCtx, Provider, ProviderError, RetryNote, StepCall};
use serde_json::{Map, Value, json};

const TOKEN: &str = "00aBcDeFgHiJkLmNoPqRsTuVwXyZ-tok";

fn provider(fake: &FakeOkta) -> OktaProvider {
    OktaProvider::new(&system_config(&fake.server.base_url, TOKEN))
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

const ALICE: &str = "alice+ops@corp.test";

/// Apply, check (by the account applied to), apply again: the second sends no change.
async fn apply_check_twice(
    fake: &FakeOkta,
    action: &str,
    params: &Map<String, Value>,
) -> (String, String) {
    let p = provider(fake);
    let ctx = CallCtx::silent();
    let out = p
        .apply(&call(action, ALICE, params, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{action}: {}", out.summary);
    let account = out.account.clone().unwrap();
    assert_eq!(account.id_kind, "Okta user id");
    let c = p
        .check(&call(action, ALICE, params, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(c.revoked, "{action}: {}", c.observed);
    assert_eq!(c.account.as_ref(), Some(&account));
    let before = fake.requests().len();
    let again = p
        .apply(&call(action, ALICE, params, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!again.changed, "{action}: {}", again.summary);
    let sent: Vec<String> = fake.lines()[before..].to_vec();
    assert!(
        sent.iter().all(|l| l.starts_with("GET ")),
        "{action}: the second apply changed something: {sent:?}"
    );
    fake.assert_contract();
    (out.summary, c.observed)
}

#[tokio::test]
async fn suspend_reads_by_encoded_login_then_acts_by_id() {
    let fake = FakeOkta::start(TOKEN).await;
    let id = fake.add_user(ALICE);
    fake.add_user("bob@corp.test");
    let (summary, observed) = apply_check_twice(&fake, "suspend_user", &Map::new()).await;
    assert_eq!(
        summary,
        format!("suspended Okta user {id} (status ACTIVE → SUSPENDED)")
    );
    assert_eq!(observed, "status=SUSPENDED");
    let lines = fake.lines();
    assert_eq!(lines[0], "GET /api/v1/users/alice%2Bops%40corp.test");
    assert_eq!(
        lines[1],
        format!("POST /api/v1/users/{id}/lifecycle/suspend")
    );
    for r in fake.requests() {
        assert_eq!(r.header("authorization"), Some("SSWS <redacted>"), "{r:?}");
    }
}

#[tokio::test]
async fn deactivate_sends_no_email_and_a_deprovisioned_user_is_done() {
    let fake = FakeOkta::start(TOKEN).await;
    let id = fake.add_user(ALICE);
    let (summary, observed) = apply_check_twice(&fake, "deactivate_user", &Map::new()).await;
    assert!(
        summary.starts_with(&format!("deactivated Okta user {id}")),
        "{summary}"
    );
    assert_eq!(observed, "status=DEPROVISIONED");
    assert!(fake.lines().contains(&format!(
        "POST /api/v1/users/{id}/lifecycle/deactivate?sendEmail=false"
    )));
    assert_eq!(fake.user(&id).unwrap().status, "DEPROVISIONED");
}

#[tokio::test]
async fn deactivate_racing_another_admin_takes_okta_404_e0000007_as_done() {
    let fake = FakeOkta::start(TOKEN).await;
    let id = fake.add_user(ALICE);
    // Between offboard's read and its POST, someone deactivates the user: Okta answers 404.
    let user = json!({"id": id, "status": "ACTIVE", "profile": {"login": ALICE}});
    fake.server.fail_next_on(
        "GET",
        "/api/v1/users/{id}",
        Fault::Reply(common::fake_kit::Reply::json(200, &user)),
    );
    fake.edit(&id, |u| u.status = "DEPROVISIONED".into());
    let p = provider(&fake);
    let out = p
        .apply(
            &call("deactivate_user", ALICE, &Map::new(), None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!out.changed);
    assert!(out.summary.contains("E0000007"), "{}", out.summary);
    assert_eq!(fake.lines().len(), 2);
    fake.assert_contract();
}

#[tokio::test]
async fn clear_sessions_revokes_oauth_tokens_and_cannot_be_read_back() {
    let fake = FakeOkta::start(TOKEN).await;
    let id = fake.add_user(ALICE);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let out = p
        .apply(&call("clear_sessions", ALICE, &Map::new(), None), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    assert_eq!(
        fake.user(&id).unwrap().sessions_cleared,
        [Some("true".to_string())]
    );
    assert!(fake.lines().contains(&format!(
        "DELETE /api/v1/users/{id}/sessions?oauthTokens=true"
    )));
    // Okta has no read of a user's sessions: an active user's clearing is never "confirmed".
    let account = out.account.unwrap();
    let c = p
        .check(
            &call("clear_sessions", ALICE, &Map::new(), Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!c.revoked);
    assert!(c.observed.contains("cannot read"), "{}", c.observed);
    // Once deactivated, every session is gone, and there is nothing to send.
    fake.edit(&id, |u| u.status = "DEPROVISIONED".into());
    let before = fake.requests().len();
    let again = p
        .apply(
            &call("clear_sessions", ALICE, &Map::new(), Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!again.changed);
    assert_eq!(fake.requests().len(), before + 1);
    let c = p
        .check(
            &call("clear_sessions", ALICE, &Map::new(), Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    fake.assert_contract();
}

#[tokio::test]
async fn reset_factors_then_none_enrolled() {
    let fake = FakeOkta::start(TOKEN).await;
    let id = fake.add_user(ALICE);
    fake.edit(&id, |u| {
        u.factors = vec!["push".into(), "token:software:totp".into()]
    });
    let (summary, observed) = apply_check_twice(&fake, "reset_factors", &Map::new()).await;
    assert_eq!(
        summary,
        format!("reset 2 factor(s) of Okta user {id}: push, token:software:totp")
    );
    assert_eq!(observed, "no factor enrolled");
}

#[tokio::test]
async fn remove_from_groups_follows_link_pages_and_leaves_app_groups_and_rules_as_follow_ups() {
    let fake = FakeOkta::start(TOKEN).await;
    fake.set_page_size(2);
    let id = fake.add_user(ALICE);
    let everyone = fake.add_group("Everyone", "BUILT_IN", false);
    let eng = fake.add_group("Engineering", "OKTA_GROUP", false);
    let vpn = fake.add_group("VPN", "OKTA_GROUP", false);
    let ad = fake.add_group("AD Staff", "APP_GROUP", false);
    let ruled = fake.add_group("All Berlin", "OKTA_GROUP", true);
    let prod = fake.add_group("Prod Admins", "OKTA_GROUP", false);
    fake.edit(&id, |u| {
        u.groups = vec![everyone, eng.clone(), vpn, ad, ruled, prod.clone()]
    });
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let params = Map::new();
    let out = p
        .apply(&call("remove_from_groups", ALICE, &params, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    assert_eq!(
        out.summary,
        format!(
            "removed Okta user {id} from 3 group(s): Engineering, Prod Admins, VPN; manual \
             follow-up: AD Staff (APP_GROUP: remove the membership in the directory it is \
             imported from); All Berlin (Okta refused: E0000001: Api validation failed: Group \
             membership is managed by a group rule; a group rule may hold the membership)"
        )
    );
    // Six groups, two per page: three pages, the later ones by Okta's cursor.
    let pages: Vec<String> = fake
        .lines()
        .into_iter()
        .filter(|l| l.contains("/groups"))
        .filter(|l| l.starts_with("GET"))
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(pages[1].contains("after="), "{pages:?}");
    // Only OKTA_GROUPs were asked, the rule-held one included (Okta refused it).
    let deletes = fake
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("DELETE /api/v1/groups/"))
        .count();
    assert_eq!(deletes, 4);
    assert!(
        fake.lines()
            .contains(&format!("DELETE /api/v1/groups/{eng}/users/{id}"))
    );
    // The rule-held membership is still there: the check does not pretend otherwise.
    let account = out.account.unwrap();
    let c = p
        .check(
            &call("remove_from_groups", ALICE, &params, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!c.revoked);
    assert_eq!(
        c.observed,
        "still member of: All Berlin; APP_GROUP memberships (managed by their import, a manual \
         follow-up): AD Staff"
    );
    // Only the listed groups: Prod Admins alone.
    let mut only = Map::new();
    only.insert("groups".into(), json!(["prod admins"]));
    fake.edit(&id, |u| u.groups.push(prod.clone()));
    let out = p
        .apply(
            &call("remove_from_groups", ALICE, &only, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(
        out.summary.contains(": Prod Admins (of the listed"),
        "{}",
        out.summary
    );
    let c = p
        .check(
            &call("remove_from_groups", ALICE, &only, Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    fake.assert_contract();
}

#[tokio::test]
async fn unassign_apps_without_email() {
    let fake = FakeOkta::start(TOKEN).await;
    let id = fake.add_user(ALICE);
    fake.edit(&id, |u| {
        u.apps = vec![
            ("0oa1".into(), "Salesforce".into()),
            ("0oa2".into(), "GitHub".into()),
        ]
    });
    let (summary, observed) = apply_check_twice(&fake, "unassign_apps", &Map::new()).await;
    assert_eq!(
        summary,
        format!("unassigned Okta user {id} from 2 app(s), no email sent: Salesforce, GitHub")
    );
    assert_eq!(observed, "no app assigned");
    assert!(fake.lines().contains(&format!(
        "DELETE /api/v1/apps/0oa1/users/{id}?sendEmail=false"
    )));
}

#[tokio::test]
async fn delete_deactivates_then_deletes_and_check_reads_404() {
    let fake = FakeOkta::start(TOKEN).await;
    let id = fake.add_user(ALICE);
    let (summary, observed) = apply_check_twice(&fake, "delete_user", &Map::new()).await;
    assert_eq!(
        summary,
        format!("deleted Okta user {id} (was ACTIVE, no email sent)")
    );
    assert!(observed.contains("404 by id"), "{observed}");
    assert!(fake.user(&id).is_none());
    let deletes = fake
        .lines()
        .into_iter()
        .filter(|l| *l == format!("DELETE /api/v1/users/{id}?sendEmail=false"))
        .count();
    assert_eq!(deletes, 2);
}

#[tokio::test]
async fn an_unknown_user_is_not_found_never_done() {
    let fake = FakeOkta::start(TOKEN).await;
    fake.add_user("bob@corp.test");
    let p = provider(&fake);
    for a in offboard::providers::okta::KIND.actions {
        let e = p
            .apply(&call(a.name, ALICE, &Map::new(), None), &CallCtx::silent())
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::NotFound(_)), "{}: {e:?}", a.name);
        let e = p
            .check(&call(a.name, ALICE, &Map::new(), None), &CallCtx::silent())
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::NotFound(_)), "{}: {e:?}", a.name);
    }
    assert!(fake.lines().iter().all(|l| l.starts_with("GET ")));
    fake.assert_contract();
}

#[tokio::test]
async fn forbidden_names_okta_message_and_the_role_never_the_token() {
    let fake = FakeOkta::start(TOKEN).await;
    fake.add_user(ALICE);
    fake.server.fail_next_on(
        "POST",
        "/api/v1/users/{id}/lifecycle/deactivate",
        Fault::Reply(okta_error(
            403,
            "E0000006",
            "You do not have permission to perform the requested action",
        )),
    );
    let e = provider(&fake)
        .apply(
            &call("deactivate_user", ALICE, &Map::new(), None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    let m = message(&e);
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    assert!(
        m.contains("E0000006: You do not have permission to perform the requested action"),
        "{m}"
    );
    assert!(m.contains("okta.users.manage"), "{m}");
    assert!(!m.contains(TOKEN), "{m}");
    fake.assert_contract();
}

#[tokio::test]
async fn a_rejected_token_is_okta_e0000011() {
    let fake = FakeOkta::start(TOKEN).await;
    fake.add_user(ALICE);
    let p = OktaProvider::new(&system_config(&fake.server.base_url, "wrong-token-123")).unwrap();
    let e = p
        .apply(
            &call("suspend_user", ALICE, &Map::new(), None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(
        message(&e).contains("E0000011: Invalid token provided"),
        "{e:?}"
    );
    assert!(!message(&e).contains("wrong-token-123"));
}

#[tokio::test]
async fn a_429_waits_for_x_rate_limit_reset() {
    let fake = FakeOkta::start(TOKEN).await;
    let id = fake.add_user(ALICE);
    fake.server.fail_next_on(
        "POST",
        "/api/v1/users/{id}/lifecycle/suspend",
        Fault::too_many(RetryAfterStyle::OktaReset(1)),
    );
    let notes: Arc<Mutex<Vec<RetryNote>>> = Arc::default();
    let n = notes.clone();
    let ctx = CallCtx::new(move |note| n.lock().unwrap().push(note));
    let started = Instant::now();
    let out = provider(&fake)
        .apply(&call("suspend_user", ALICE, &Map::new(), None), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    // The reset is an epoch second one ahead: the retry came after it, not at the 5 ms backoff.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let notes = notes.lock().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].reason.starts_with("429"), "{notes:?}");
    assert!(notes[0].wait_ms >= 900, "{notes:?}");
    assert_eq!(fake.user(&id).unwrap().status, "SUSPENDED");
    fake.assert_contract();
}

#[tokio::test]
async fn an_emptied_bucket_holds_the_next_request_until_the_reset() {
    let fake = FakeOkta::start(TOKEN).await;
    let id = fake.add_user(ALICE);
    let reset = (std::time::SystemTime::now() + Duration::from_secs(1))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let user = json!({"id": id, "status": "ACTIVE", "profile": {"login": ALICE}});
    fake.server.fail_next_on(
        "GET",
        "/api/v1/users/{id}",
        Fault::Reply(
            common::fake_kit::Reply::json(200, &user)
                .header("x-rate-limit-limit", 600)
                .header("x-rate-limit-remaining", 0)
                .header("x-rate-limit-reset", reset),
        ),
    );
    let started = Instant::now();
    provider(&fake)
        .apply(
            &call("suspend_user", ALICE, &Map::new(), None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // No 429 was needed: the POST waited instead of spending a request on a refusal.
    assert_eq!(fake.requests().len(), 2);
    fake.assert_contract();
}

#[tokio::test]
async fn drift_behind_offboards_back_is_caught_by_check() {
    let fake = FakeOkta::start(TOKEN).await;
    let id = fake.add_user(ALICE);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let out = p
        .apply(&call("suspend_user", ALICE, &Map::new(), None), &ctx)
        .await
        .unwrap();
    let account = out.account.unwrap();
    // An admin unsuspends, and someone else now holds the login: still read by id.
    fake.edit(&id, |u| {
        u.status = "ACTIVE".into();
        u.login = "alice.old@corp.test".into();
    });
    let other = fake.add_user(ALICE);
    fake.edit(&other, |u| u.status = "SUSPENDED".into());
    let c = p
        .check(
            &call("suspend_user", ALICE, &Map::new(), Some(&account)),
            &ctx,
        )
        .await
        .unwrap();
    assert!(!c.revoked);
    assert_eq!(c.observed, "status=ACTIVE");
    assert_eq!(c.account.unwrap().id, id);
    fake.assert_contract();
}

#[tokio::test]
async fn suspend_refuses_a_user_okta_cannot_suspend() {
    let fake = FakeOkta::start(TOKEN).await;
    let id = fake.add_user(ALICE);
    fake.edit(&id, |u| u.status = "STAGED".into());
    let e = provider(&fake)
        .apply(
            &call("suspend_user", ALICE, &Map::new(), None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(message(&e).contains("deactivate_user"), "{e:?}");
    assert_eq!(fake.lines().len(), 1);
}

/// The `auth` table instead of `token`: an OAuth 2.0 service app's access token as `Bearer`,
/// never `SSWS`; fetched once for the read and the change.
#[tokio::test]
async fn the_auth_table_sends_the_oauth_access_token_as_bearer() {
    use crate::common::fake_token::FakeTokenEndpoint;
    use offboard::providers::kit::auth::{AuthSpec, OAuth2Auth};
    const ACCESS: &str = "eyJraWQiOiJvYXV0aC1hY2Nlc3MifQ.okta";
    let endpoint = FakeTokenEndpoint::start("0oaSvcApp", "svc-secret-8d1f", ACCESS).await;
    endpoint.expect_scope("okta.users.manage");
    let fake = FakeOkta::start(TOKEN).await;
    fake.accept_bearer(ACCESS);
    let id = fake.add_user(ALICE);
    let cfg = offboard::providers::SystemConfig {
        auth: Some(AuthSpec::OAuth2(OAuth2Auth {
            token_url: endpoint.url.clone(),
            client_id: "0oaSvcApp".into(),
            scopes: vec!["okta.users.manage".into()],
            audience: None,
            client_secret: Some(secrecy::SecretString::from("svc-secret-8d1f")),
            client_auth: None,
            private_key: None,
            key_id: None,
        })),
        ..offboard::providers::SystemConfig::new("okta", "okta", Some(&fake.server.base_url))
    };
    let p = (offboard::providers::find_kind("okta").unwrap().connect)(&cfg).unwrap();
    let out = p
        .apply(
            &call("suspend_user", ALICE, &Map::new(), None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(out.changed, "{out:?}");
    assert_eq!(fake.user(&id).unwrap().status, "SUSPENDED");
    assert_eq!(endpoint.issued(), 1);
    for r in fake.requests() {
        assert_eq!(
            r.header("authorization"),
            Some("Bearer <redacted>"),
            "{r:?}"
        );
    }
    fake.assert_contract();
}

// ---------------------------------------------------------------------------------------------
// Rollback: the pre-state an apply records, and restoring it

/// A context that keeps the pre-states an apply records.
fn recording() -> (CallCtx, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (
        CallCtx::silent().on_before(move |v| s.lock().unwrap().push(v.clone())),
        seen,
    )
}

#[test]
fn every_okta_action_declares_how_it_is_undone() {
    use offboard::providers::{Inverse, UNDO_NOT_BUILT, find_kind};
    let kind = find_kind("okta").unwrap();
    for a in kind.actions {
        assert_ne!(a.inverse, Inverse::None(UNDO_NOT_BUILT), "{}", a.name);
    }
    let restore: Vec<&str> = kind
        .actions
        .iter()
        .filter(|a| matches!(a.inverse, Inverse::Restore(_)))
        .map(|a| a.name)
        .collect();
    assert_eq!(restore, ["suspend_user", "remove_from_groups"]);
    let deactivate = kind.action("deactivate_user").unwrap();
    assert!(
        matches!(deactivate.inverse, Inverse::None(why) if why.contains("activation")),
        "{:?}",
        deactivate.inverse
    );
}

#[tokio::test]
async fn rollback_unsuspends_a_user_that_was_active_and_only_then() {
    let fake = FakeOkta::start(TOKEN).await;
    let id = fake.add_user(ALICE);
    let p = provider(&fake);
    let params = Map::new();
    let (ctx, befores) = recording();
    let out = p
        .apply(&call("suspend_user", ALICE, &params, None), &ctx)
        .await
        .unwrap();
    let account = out.account.unwrap();
    let before = befores.lock().unwrap()[0].clone();
    assert_eq!(
        before,
        json!({ "id": id, "status": "ACTIVE", "transitioningToStatus": null })
    );
    let c = call("suspend_user", ALICE, &params, Some(&account));
    let plan: Vec<String> = p
        .describe_restore(&c, &before)
        .iter()
        .map(|l| format!("{} {}", l.method, l.url))
        .collect();
    assert_eq!(
        plan[1],
        format!(
            "POST {}/api/v1/users/{id}/lifecycle/unsuspend",
            fake.server.base_url
        )
    );
    let quiet = CallCtx::silent();
    let chk = p.check_restored(&c, &before, &quiet).await.unwrap();
    assert!(
        !chk.restored && chk.observed.contains("SUSPENDED"),
        "{chk:?}"
    );
    let r = p.restore(&c, &before, &quiet).await.unwrap();
    assert!(r.changed, "{r:?}");
    assert_eq!(fake.user(&id).unwrap().status, "ACTIVE");
    let n = fake.requests().len();
    let again = p.restore(&c, &before, &quiet).await.unwrap();
    assert!(!again.changed, "{again:?}");
    assert!(fake.lines()[n..].iter().all(|l| l.starts_with("GET ")));
    let chk = p.check_restored(&c, &before, &quiet).await.unwrap();
    assert!(chk.restored, "{chk:?}");
    assert_eq!(chk.after["status"], "ACTIVE");

    // Suspended before offboard came: nothing is put back, the user stays suspended.
    fake.edit(&id, |u| u.status = "SUSPENDED".into());
    let was = json!({ "id": id, "status": "SUSPENDED", "transitioningToStatus": null });
    let r = p.restore(&c, &was, &quiet).await.unwrap();
    assert!(
        !r.changed && r.summary.contains("nothing to put back"),
        "{r:?}"
    );
    assert_eq!(fake.user(&id).unwrap().status, "SUSPENDED");
    // Deactivated since: unsuspend cannot help, and it says why.
    fake.edit(&id, |u| u.status = "DEPROVISIONED".into());
    let err = p.restore(&c, &before, &quiet).await.unwrap_err();
    assert!(message(&err).contains("activation"), "{err}");
    fake.assert_contract();
}

#[tokio::test]
async fn rollback_re_adds_the_okta_groups_by_id_and_names_a_deleted_one() {
    let fake = FakeOkta::start(TOKEN).await;
    let id = fake.add_user(ALICE);
    let everyone = fake.add_group("Everyone", "BUILT_IN", false);
    let eng = fake.add_group("Engineering", "OKTA_GROUP", false);
    let vpn = fake.add_group("VPN", "OKTA_GROUP", false);
    let ad = fake.add_group("AD Staff", "APP_GROUP", false);
    fake.edit(&id, |u| {
        u.groups = vec![everyone.clone(), eng.clone(), vpn.clone(), ad.clone()]
    });
    let p = provider(&fake);
    let params = Map::new();
    let (ctx, befores) = recording();
    let out = p
        .apply(&call("remove_from_groups", ALICE, &params, None), &ctx)
        .await
        .unwrap();
    let account = out.account.unwrap();
    let before = befores.lock().unwrap()[0].clone();
    assert_eq!(
        before,
        json!({ "id": id, "groups": [
            { "id": ad, "name": "AD Staff", "type": "APP_GROUP" },
            { "id": eng, "name": "Engineering", "type": "OKTA_GROUP" },
            { "id": everyone, "name": "Everyone", "type": "BUILT_IN" },
            { "id": vpn, "name": "VPN", "type": "OKTA_GROUP" },
        ]})
    );
    let c = call("remove_from_groups", ALICE, &params, Some(&account));
    let quiet = CallCtx::silent();
    let r = p.restore(&c, &before, &quiet).await.unwrap();
    assert!(r.changed && r.summary.contains("Engineering, VPN"), "{r:?}");
    let mut groups = fake.user(&id).unwrap().groups;
    groups.sort();
    let mut want = vec![everyone, eng.clone(), vpn.clone(), ad];
    want.sort();
    assert_eq!(groups, want);
    assert!(
        fake.lines()
            .contains(&format!("PUT /api/v1/groups/{eng}/users/{id}"))
    );
    let n = fake.requests().len();
    let again = p.restore(&c, &before, &quiet).await.unwrap();
    assert!(!again.changed, "{again:?}");
    assert!(fake.lines()[n..].iter().all(|l| l.starts_with("GET ")));
    assert!(
        p.check_restored(&c, &before, &quiet)
            .await
            .unwrap()
            .restored
    );

    // Removed again; VPN deleted meanwhile: Engineering comes back, VPN is named.
    fake.edit(&id, |u| u.groups.retain(|g| *g != eng));
    fake.delete_group(&vpn);
    let err = p.restore(&c, &before, &quiet).await.unwrap_err();
    assert!(
        message(&err).contains(&format!("VPN ({vpn})")) && message(&err).contains("re-added"),
        "{err}"
    );
    assert!(fake.user(&id).unwrap().groups.contains(&eng));
    let chk = p.check_restored(&c, &before, &quiet).await.unwrap();
    assert!(!chk.restored && chk.observed.contains(&vpn), "{chk:?}");
    fake.assert_contract();
}
