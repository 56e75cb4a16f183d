//! The google provider against an in-process fake of Google Workspace (Admin SDK Directory and
//! Data Transfer, Gmail settings, Licensing) and a Google-style token endpoint.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fake_google::{ADMIN, FakeGoogle, google_error, system_config};
use common::fake_kit::Fault;
use offboard::providers::google::GoogleProvider;
use offboard::providers::kit::http::RetryPolicy;
use offboard::providers::{Account, CallCtx, Provider, ProviderError, RetryNote, StepCall};
use serde_json::{Map, Value, json};

const ALICE: &str = "alice+ops@corp.test";
const BOSS: &str = "boss@corp.test";
const AUTH: &str = "https://www.googleapis.com/auth/";

fn provider(fake: &FakeGoogle) -> GoogleProvider {
    GoogleProvider::new(&system_config(fake))
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

fn params(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn message(e: &ProviderError) -> &str {
    match e {
        ProviderError::Transient(m) | ProviderError::Permanent(m) | ProviderError::NotFound(m) => m,
    }
}

/// Apply, check (by the account applied to), apply again: the second changes nothing.
async fn apply_check_twice(
    fake: &FakeGoogle,
    action: &str,
    params: &Map<String, Value>,
) -> (String, String, Account) {
    let p = provider(fake);
    let ctx = CallCtx::silent();
    let out = p
        .apply(&call(action, ALICE, params, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{action}: {}", out.summary);
    let account = out.account.clone().unwrap();
    assert_eq!(account.id_kind, "Google user id");
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
    (out.summary, c.observed, account)
}

#[tokio::test]
async fn suspend_reads_by_encoded_email_then_acts_by_id_as_the_admin() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    fake.add_user("bob@corp.test");
    let (summary, observed, account) = apply_check_twice(&fake, "suspend_user", &Map::new()).await;
    assert_eq!(account.id, id);
    assert_eq!(
        summary,
        format!("suspended Google user {id} (suspended: false → true)")
    );
    assert_eq!(observed, "suspended=true");
    let lines = fake.lines();
    assert_eq!(
        lines[0],
        "GET /admin/directory/v1/users/alice%2Bops%40corp.test"
    );
    assert_eq!(lines[1], format!("PATCH /admin/directory/v1/users/{id}"));
    assert_eq!(fake.requests()[1].json, Some(json!({"suspended": true})));
    assert!(fake.user(&id).unwrap().suspended);
    // The token: asked for once (cached), as the admin, with only the scope this needs.
    let grants = fake.token.grants();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0].subject.as_deref(), Some(ADMIN));
    assert_eq!(grants[0].scopes, [format!("{AUTH}admin.directory.user")]);
    for r in fake.requests() {
        assert_eq!(
            r.header("authorization"),
            Some("Bearer <redacted>"),
            "{r:?}"
        );
    }
}

#[tokio::test]
async fn the_token_request_is_a_signed_jwt_bearer_grant_per_subject_and_scopes() {
    let fake = FakeGoogle::start().await;
    fake.add_user(ALICE);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let none = Map::new();
    p.apply(&call("revoke_tokens", ALICE, &none, None), &ctx)
        .await
        .unwrap();
    p.apply(&call("delete_asps", ALICE, &none, None), &ctx)
        .await
        .unwrap();
    let reply = params(json!({"subject": "Left", "body": "Write to boss"}));
    p.apply(&call("set_auto_reply", ALICE, &reply, None), &ctx)
        .await
        .unwrap();
    // revoke_tokens and delete_asps share one token; Gmail's is the user's own.
    let grants = fake.token.grants();
    let seen: Vec<(Option<&str>, Vec<&str>)> = grants
        .iter()
        .map(|g| {
            (
                g.subject.as_deref(),
                g.scopes
                    .iter()
                    .map(|s| s.trim_start_matches(AUTH))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                Some(ADMIN),
                vec!["admin.directory.user", "admin.directory.user.security"]
            ),
            (Some(ADMIN), vec!["admin.directory.user"]),
            (Some(ALICE), vec!["gmail.settings.basic"]),
        ]
    );
    assert_eq!(fake.token.refused(), 0);
    let token_requests = fake.token.requests();
    assert_eq!(token_requests.len(), 3);
    for r in &token_requests {
        assert_eq!(r.method, "POST");
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            body.contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"),
            "{body}"
        );
    }
    // The key never leaves: no request to the APIs carries it.
    let key = &fake.key_json;
    let pem_line = key.split("\\n").nth(1).unwrap();
    for r in fake.requests() {
        assert!(!String::from_utf8_lossy(&r.body).contains(pem_line));
    }
}

#[tokio::test]
async fn a_scope_not_delegated_is_refused_with_googles_words_and_no_secret() {
    let fake = FakeGoogle::start().await;
    fake.add_user(ALICE);
    fake.token
        .revoke_delegation("admin.directory.user.security");
    let e = provider(&fake)
        .apply(
            &call("sign_out", ALICE, &Map::new(), None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    let m = message(&e);
    assert!(m.contains("unauthorized_client"), "{m}");
    assert!(m.contains("admin.directory.user.security"), "{m}");
    assert!(!m.contains("PRIVATE KEY"), "{m}");
    assert!(fake.requests().is_empty(), "nothing reached the API");
}

#[tokio::test]
async fn a_forbidden_admin_is_permanent_with_googles_message_and_what_is_missing() {
    let fake = FakeGoogle::start().await;
    fake.add_user(ALICE);
    fake.set_admin_forbidden(true);
    let e = provider(&fake)
        .apply(
            &call("suspend_user", ALICE, &Map::new(), None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    let m = message(&e);
    assert!(
        m.contains("Not Authorized to access this resource/api (forbidden"),
        "{m}"
    );
    assert!(m.contains("admin.directory.user"), "{m}");
    assert!(m.contains("admin role"), "{m}");
    // A refusal is not retried.
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn throttling_is_waited_out_403_rate_limit_then_429_then_success() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    let t = "/admin/directory/v1/users/{userKey}";
    fake.server.fail_next_on(
        "GET",
        t,
        Fault::Reply(google_error(
            403,
            "userRateLimitExceeded",
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'",
        )),
    );
    fake.server.fail_next_on(
        "GET",
        t,
        Fault::Reply(google_error(
            429,
            "rateLimitExceeded",
            "Rate Limit Exceeded",
        )),
    );
    let notes: Arc<Mutex<Vec<RetryNote>>> = Arc::default();
    let n = notes.clone();
    let ctx = CallCtx::new(move |note| n.lock().unwrap().push(note));
    let out = provider(&fake)
        .apply(&call("suspend_user", ALICE, &Map::new(), None), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    assert!(fake.user(&id).unwrap().suspended);
    let notes = notes.lock().unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].reason.contains("403"), "{notes:?}");
    assert!(notes[1].reason.contains("429"), "{notes:?}");
    assert_eq!(fake.server.pending_faults(), 0);
    fake.assert_contract();
}

#[tokio::test]
async fn the_unknown_user_is_not_found_never_revoked() {
    let fake = FakeGoogle::start().await;
    fake.add_user("bob@corp.test");
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    for action in ["suspend_user", "sign_out", "revoke_tokens", "delete_user"] {
        let e = p
            .apply(&call(action, ALICE, &Map::new(), None), &ctx)
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::NotFound(_)), "{action}: {e:?}");
        assert!(message(&e).contains(ALICE), "{e:?}");
        let e = p
            .check(&call(action, ALICE, &Map::new(), None), &ctx)
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::NotFound(_)), "{action}: {e:?}");
    }
    // Only lookups were sent.
    assert!(fake.lines().iter().all(|l| l.starts_with("GET ")));
    fake.assert_contract();
}

#[tokio::test]
async fn drift_un_suspended_behind_offboards_back_is_caught() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    let (_, _, account) = apply_check_twice(&fake, "suspend_user", &Map::new()).await;
    fake.edit(&id, |u| u.suspended = false);
    let c = provider(&fake)
        .check(
            &call("suspend_user", ALICE, &Map::new(), Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!c.revoked);
    assert_eq!(c.observed, "suspended=false");
}

#[tokio::test]
async fn a_renamed_user_is_still_read_by_id_and_a_newcomer_with_the_email_is_not() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    let (_, _, account) = apply_check_twice(&fake, "suspend_user", &Map::new()).await;
    fake.edit(&id, |u| u.email = "alice.former@corp.test".into());
    let newcomer = fake.add_user(ALICE);
    let c = provider(&fake)
        .check(
            &call("suspend_user", ALICE, &Map::new(), Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    assert_eq!(c.account.unwrap().id, id);
    assert!(!fake.user(&newcomer).unwrap().suspended);
    assert_eq!(
        fake.lines().last().unwrap(),
        &format!("GET /admin/directory/v1/users/{id}")
    );
}

#[tokio::test]
async fn sign_out_is_sent_but_cannot_be_confirmed_until_deleted() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let out = p
        .apply(&call("sign_out", ALICE, &Map::new(), None), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    assert_eq!(fake.user(&id).unwrap().sign_outs, 1);
    let account = out.account.unwrap();
    let c = p
        .check(&call("sign_out", ALICE, &Map::new(), Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!c.revoked, "{}", c.observed);
    assert!(c.observed.contains("cannot read"), "{}", c.observed);
    p.apply(
        &call("delete_user", ALICE, &Map::new(), Some(&account)),
        &ctx,
    )
    .await
    .unwrap();
    let c = p
        .check(&call("sign_out", ALICE, &Map::new(), Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    fake.assert_contract();
}

#[tokio::test]
async fn tokens_and_app_passwords_are_each_deleted() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    fake.edit(&id, |u| {
        u.tokens = vec![
            ("123.apps.googleusercontent.com".into(), "Slack".into()),
            ("com.example/app".into(), "Some app".into()),
        ];
        u.asps = vec![(7, "Thunderbird".into())];
    });
    let (summary, observed, _) = apply_check_twice(&fake, "revoke_tokens", &Map::new()).await;
    assert!(summary.contains("removed 2 OAuth client(s)"), "{summary}");
    assert_eq!(observed, "no OAuth client left");
    assert!(fake.lines().contains(&format!(
        "DELETE /admin/directory/v1/users/{id}/tokens/com.example%2Fapp"
    )));
    let (summary, _, _) = apply_check_twice(&fake, "delete_asps", &Map::new()).await;
    assert!(summary.contains("Thunderbird (7)"), "{summary}");
    assert!(
        fake.lines()
            .contains(&format!("DELETE /admin/directory/v1/users/{id}/asps/7"))
    );
    let u = fake.user(&id).unwrap();
    assert!(u.tokens.is_empty() && u.asps.is_empty());
}

#[tokio::test]
async fn backup_codes_are_invalidated_and_never_shown() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    fake.edit(&id, |u| {
        u.backup_codes = vec!["81726354".into(), "99887766".into()]
    });
    let (summary, observed, _) =
        apply_check_twice(&fake, "invalidate_backup_codes", &Map::new()).await;
    assert!(
        summary.contains("2 backup verification code(s)"),
        "{summary}"
    );
    assert!(!summary.contains("81726354") && !observed.contains("81726354"));
    assert_eq!(observed, "no valid backup code");
    assert!(fake.user(&id).unwrap().backup_codes.is_empty());
}

#[tokio::test]
async fn two_step_verification_is_turned_off_only_when_enrolled() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    fake.edit(&id, |u| u.enrolled_2sv = true);
    let (_, observed, account) = apply_check_twice(&fake, "turn_off_2sv", &Map::new()).await;
    assert_eq!(observed, "isEnrolledIn2Sv=false");
    let turned: Vec<String> = fake
        .lines()
        .into_iter()
        .filter(|l| l.ends_with("/turnOff"))
        .collect();
    assert_eq!(turned.len(), 1, "never sent for a user not enrolled");
    // Enforced: Google refuses, and the error says so in Google's words and why.
    fake.edit(&id, |u| {
        u.enrolled_2sv = true;
        u.enforced_2sv = true;
    });
    let e = provider(&fake)
        .apply(
            &call("turn_off_2sv", ALICE, &Map::new(), Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    let m = message(&e);
    assert!(
        m.contains("Two-step verification is enforced for this user"),
        "{m}"
    );
    assert!(m.contains("isEnforcedIn2Sv"), "{m}");
}

#[tokio::test]
async fn groups_are_read_over_every_page_and_left() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    let groups: Vec<String> = (1..=5)
        .map(|i| fake.add_group(&format!("team{i}@corp.test")))
        .collect();
    fake.edit(&id, |u| u.groups = groups.clone());
    fake.set_group_page(2);
    let (summary, observed, _) = apply_check_twice(&fake, "remove_from_groups", &Map::new()).await;
    assert!(summary.contains("from 5 group(s)"), "{summary}");
    assert_eq!(observed, "member of no group (of those listed)");
    let pages = fake
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("GET /admin/directory/v1/groups?"))
        .take(3)
        .collect::<Vec<_>>();
    assert_eq!(
        pages,
        [
            format!("GET /admin/directory/v1/groups?userKey={id}"),
            format!("GET /admin/directory/v1/groups?userKey={id}&pageToken=tok-2"),
            format!("GET /admin/directory/v1/groups?userKey={id}&pageToken=tok-4"),
        ]
    );
    assert!(fake.user(&id).unwrap().groups.is_empty());
    let grant = &fake.token.grants()[0];
    assert!(
        grant
            .scopes
            .contains(&format!("{AUTH}admin.directory.group.member")),
        "{grant:?}"
    );
}

#[tokio::test]
async fn a_membership_already_gone_is_done_and_only_listed_groups_are_left() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    let keep = fake.add_group("all@corp.test");
    let leave = fake.add_group("Admins@corp.test");
    fake.edit(&id, |u| u.groups = vec![keep.clone(), leave.clone()]);
    // Someone removes the membership between offboard's list and its DELETE.
    fake.server.fail_next_on(
        "DELETE",
        "/admin/directory/v1/groups/{groupKey}/members/{memberKey}",
        Fault::Reply(google_error(
            404,
            "notFound",
            "Resource Not Found: memberKey",
        )),
    );
    let only = params(json!({"groups": ["admins@corp.test"]}));
    let p = provider(&fake);
    let out = p
        .apply(
            &call("remove_from_groups", ALICE, &only, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!out.changed, "{}", out.summary);
    let deletes: Vec<String> = fake
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("DELETE"))
        .collect();
    assert_eq!(
        deletes,
        [format!(
            "DELETE /admin/directory/v1/groups/{leave}/members/{id}"
        )]
    );
    fake.assert_contract();
}

#[tokio::test]
async fn the_auto_reply_is_set_as_the_user_and_read_back() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    let reply = params(
        json!({"subject": "Alice has left", "body": "Please write to boss@corp.test",
                              "restrict_to_domain": true}),
    );
    let (summary, observed, _) = apply_check_twice(&fake, "set_auto_reply", &reply).await;
    assert!(summary.contains("Alice has left"), "{summary}");
    assert!(observed.starts_with("enableAutoReply=true"), "{observed}");
    let v = fake.user(&id).unwrap().vacation;
    assert_eq!(v["enableAutoReply"], true);
    assert_eq!(v["responseBodyPlainText"], "Please write to boss@corp.test");
    assert_eq!(v["restrictToDomain"], true);
    assert!(
        fake.lines()
            .contains(&"PUT /gmail/v1/users/me/settings/vacation".to_string())
    );
    assert!(
        fake.token
            .grants()
            .iter()
            .any(|g| g.subject.as_deref() == Some(ALICE))
    );
    // Changed by the user since: the check says so.
    fake.edit(&id, |u| u.vacation = json!({}));
    let c = provider(&fake)
        .check(
            &call("set_auto_reply", ALICE, &reply, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!c.revoked);
}

#[tokio::test]
async fn forwarding_to_a_pending_address_is_requested_not_done() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    fake.add_user(BOSS);
    fake.set_forwarding_pending(true);
    let fwd = params(json!({"to": BOSS, "disposition": "archive"}));
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let out = p
        .apply(&call("set_forwarding", ALICE, &fwd, None), &ctx)
        .await
        .unwrap();
    assert!(out.summary.contains("`pending`"), "{}", out.summary);
    let account = out.account.unwrap();
    let c = p
        .check(&call("set_forwarding", ALICE, &fwd, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!c.revoked);
    assert!(c.observed.contains("pending"), "{}", c.observed);
    assert!(
        !fake.lines().iter().any(|l| l.starts_with("PUT")),
        "forwarding not turned on to an unverified address"
    );
    // The owner confirms; the next apply turns forwarding on, without adding the address again.
    fake.edit(&id, |u| {
        u.forwarding.insert(BOSS.into(), "accepted".into());
    });
    let out = p
        .apply(&call("set_forwarding", ALICE, &fwd, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{}", out.summary);
    let c = p
        .check(&call("set_forwarding", ALICE, &fwd, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    let posts = fake
        .lines()
        .iter()
        .filter(|l| l.starts_with("POST"))
        .count();
    assert_eq!(posts, 1);
    assert_eq!(
        fake.user(&id).unwrap().auto_forwarding,
        json!({"enabled": true, "emailAddress": BOSS, "disposition": "archive"})
    );
    fake.assert_contract();
}

#[tokio::test]
async fn forwarding_to_an_accepted_address_is_on_at_once() {
    let fake = FakeGoogle::start().await;
    fake.add_user(ALICE);
    let fwd = params(json!({"to": BOSS}));
    let (summary, observed, _) = apply_check_twice(&fake, "set_forwarding", &fwd).await;
    assert!(summary.contains("leaveInInbox"), "{summary}");
    assert_eq!(observed, format!("forwards to {BOSS} (leaveInInbox)"));
    assert!(fake.lines().contains(&format!(
        "GET /gmail/v1/users/me/settings/forwardingAddresses/{}",
        BOSS.replace('@', "%40")
    )));
}

#[tokio::test]
async fn drive_transfer_is_pending_then_completed_and_never_requested_twice() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    let boss = fake.add_user(BOSS);
    let to = params(json!({"to": BOSS}));
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let out = p
        .apply(&call("transfer_drive", ALICE, &to, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    let transfers = fake.transfers();
    assert_eq!(transfers.len(), 1);
    let tid = transfers[0]["id"].as_str().unwrap().to_string();
    assert!(out.summary.contains(&tid), "{}", out.summary);
    assert_eq!(transfers[0]["oldOwnerUserId"], json!(id));
    assert_eq!(transfers[0]["newOwnerUserId"], json!(boss));
    assert_eq!(
        transfers[0]["applicationDataTransfers"],
        json!([{"applicationId": "55656082996",
                "applicationTransferParams": [{"key": "PRIVACY_LEVEL", "value": ["PRIVATE", "SHARED"]}]}])
    );
    let account = out.account.unwrap();
    // First check: requested, not done.
    let c = p
        .check(&call("transfer_drive", ALICE, &to, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!c.revoked);
    assert!(
        c.observed
            .contains(&format!("{tid} to {BOSS} pending (new, requested at")),
        "{}",
        c.observed
    );
    // Apply again while it runs: no second transfer.
    fake.set_transfer_status(&tid, "inProgress");
    let again = p
        .apply(&call("transfer_drive", ALICE, &to, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!again.changed, "{}", again.summary);
    assert_eq!(fake.transfers().len(), 1);
    // Second check, once Google is done.
    fake.set_transfer_status(&tid, "completed");
    let c = p
        .check(&call("transfer_drive", ALICE, &to, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    assert!(
        fake.lines()
            .contains(&format!("GET /admin/datatransfer/v1/transfers/{tid}"))
    );
    assert!(fake.lines().contains(&format!(
        "GET /admin/datatransfer/v1/transfers?oldOwnerUserId={id}&newOwnerUserId={boss}"
    )));
    fake.assert_contract();
}

#[tokio::test]
async fn a_failed_transfer_is_reported_and_an_unknown_new_owner_is_not_the_persons_404() {
    let fake = FakeGoogle::start().await;
    fake.add_user(ALICE);
    fake.add_user(BOSS);
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let to = params(json!({"to": BOSS, "privacy_levels": ["SHARED"]}));
    let out = p
        .apply(&call("transfer_drive", ALICE, &to, None), &ctx)
        .await
        .unwrap();
    let tid = fake.transfers()[0]["id"].as_str().unwrap().to_string();
    fake.set_transfer_status(&tid, "failed");
    let account = out.account.unwrap();
    let c = p
        .check(&call("transfer_drive", ALICE, &to, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!c.revoked);
    assert!(c.observed.contains("failed"), "{}", c.observed);
    // A failed transfer does not stop a new request.
    let out = p
        .apply(&call("transfer_drive", ALICE, &to, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    assert_eq!(fake.transfers().len(), 2);
    let nobody = params(json!({"to": "ghost@corp.test"}));
    let e = p
        .apply(
            &call("transfer_drive", ALICE, &nobody, Some(&account)),
            &ctx,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    assert!(message(&e).contains("ghost@corp.test"), "{e:?}");
}

#[tokio::test]
async fn licenses_are_freed_and_named_with_or_without_skus() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    let bob = fake.add_user("bob@corp.test");
    let lic = |u: &mut common::fake_google::GUser| {
        u.licenses = vec![
            (
                "Google-Apps".into(),
                "1010020027".into(),
                "Google Workspace Business Starter".into(),
            ),
            (
                "101001".into(),
                "1010010001".into(),
                "Cloud Identity".into(),
            ),
        ]
    };
    fake.edit(&id, lic);
    fake.edit(&bob, lic);
    let one = params(json!({"products": ["Google-Apps"], "skus": ["1010020027", "1010020028"]}));
    let (summary, observed, _) = apply_check_twice(&fake, "remove_licenses", &one).await;
    assert_eq!(
        summary,
        format!(
            "freed 1 licence(s) of Google user {ALICE}: Google-Apps/1010020027 (Google Workspace \
             Business Starter)"
        )
    );
    assert_eq!(observed, "no licence of Google-Apps assigned");
    assert!(fake.lines().contains(
        &"DELETE /apps/licensing/v1/product/Google-Apps/sku/1010020027/user/alice%2Bops%40corp.test"
            .to_string()
    ));
    // Without skus: the product's assignments are listed, only the person's removed.
    let all = params(json!({"products": ["101001"]}));
    let (summary, _, _) = apply_check_twice(&fake, "remove_licenses", &all).await;
    assert!(
        summary.contains("101001/1010010001 (Cloud Identity)"),
        "{summary}"
    );
    assert!(fake.user(&id).unwrap().licenses.is_empty());
    assert_eq!(fake.user(&bob).unwrap().licenses.len(), 2);
    assert!(fake.lines().contains(
        &"GET /apps/licensing/v1/product/101001/users?customerId=my_customer".to_string()
    ));
}

/// The SKUs freed reach the journal (`applied.licences_freed`) for `offboard report`; a second
/// apply records that it freed none.
#[tokio::test]
async fn licences_freed_are_recorded_for_the_report() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    fake.edit(&id, |u| {
        u.licenses = vec![(
            "Google-Apps".into(),
            "1010020027".into(),
            "Google Workspace Business Starter".into(),
        )]
    });
    let p = provider(&fake);
    let one = params(json!({"products": ["Google-Apps"]}));
    let ctx = CallCtx::silent();
    let out = p
        .apply(&call("remove_licenses", ALICE, &one, None), &ctx)
        .await
        .unwrap();
    assert_eq!(
        ctx.take_freed_licences(),
        Some(vec![
            "Google-Apps/1010020027 (Google Workspace Business Starter)".to_string()
        ])
    );
    let again = CallCtx::silent();
    p.apply(
        &call("remove_licenses", ALICE, &one, out.account.as_ref()),
        &again,
    )
    .await
    .unwrap();
    assert_eq!(again.take_freed_licences(), Some(vec![]));
}

#[tokio::test]
async fn move_to_ou_and_delete_user_act_by_id() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    let ou = params(json!({"org_unit_path": "/Suspended"}));
    let (summary, observed, account) = apply_check_twice(&fake, "move_to_ou", &ou).await;
    assert!(summary.contains("(was /)"), "{summary}");
    assert_eq!(observed, "orgUnitPath=/Suspended");
    let (_, observed, _) = apply_check_twice(&fake, "delete_user", &Map::new()).await;
    assert!(observed.contains("404 by id"), "{observed}");
    assert!(fake.user(&id).is_none());
    // A newcomer under the same email is not the account deleted.
    fake.add_user(ALICE);
    let c = provider(&fake)
        .check(
            &call("delete_user", ALICE, &Map::new(), Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(c.revoked, "{}", c.observed);
    assert_eq!(c.account.unwrap().id, id);
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

/// Apply by login; the account and the one pre-state recorded.
async fn apply_recording(
    fake: &FakeGoogle,
    action: &str,
    params: &Map<String, Value>,
) -> (Account, Value) {
    let (ctx, befores) = recording();
    let out = provider(fake)
        .apply(&call(action, ALICE, params, None), &ctx)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"));
    let befores = befores.lock().unwrap().clone();
    assert_eq!(befores.len(), 1, "{action}: {befores:?}");
    (out.account.unwrap(), befores[0].clone())
}

/// Restore (changed), restore again (only reads), check the restore (restored).
async fn restore_twice(
    fake: &FakeGoogle,
    action: &str,
    params: &Map<String, Value>,
    account: &Account,
    before: &Value,
) {
    let p = provider(fake);
    let c = call(action, ALICE, params, Some(account));
    let quiet = CallCtx::silent();
    let chk = p.check_restored(&c, before, &quiet).await.unwrap();
    assert!(
        !chk.restored,
        "{action}: restored before the restore: {chk:?}"
    );
    let out = p
        .restore(&c, before, &quiet)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"));
    assert!(out.changed, "{action}: {out:?}");
    let n = fake.requests().len();
    let again = p.restore(&c, before, &quiet).await.unwrap();
    assert!(!again.changed, "{action}: {again:?}");
    let sent = fake.lines()[n..].to_vec();
    assert!(
        sent.iter().all(|l| l.starts_with("GET ")),
        "{action}: a second restore wrote: {sent:?}"
    );
    let chk = p.check_restored(&c, before, &quiet).await.unwrap();
    assert!(chk.restored, "{action}: {chk:?}");
    assert_eq!(chk.account.as_ref(), Some(account));
    fake.assert_contract();
}

#[test]
fn every_google_action_declares_how_it_is_undone() {
    use offboard::providers::{Inverse, UNDO_NOT_BUILT, find_kind};
    let kind = find_kind("google").unwrap();
    for a in kind.actions {
        assert_ne!(a.inverse, Inverse::None(UNDO_NOT_BUILT), "{}", a.name);
    }
    let restore: Vec<&str> = kind
        .actions
        .iter()
        .filter(|a| matches!(a.inverse, Inverse::Restore(_)))
        .map(|a| a.name)
        .collect();
    assert_eq!(
        restore,
        [
            "suspend_user",
            "remove_from_groups",
            "set_auto_reply",
            "set_forwarding",
            "remove_licenses",
            "move_to_ou",
            "delete_user"
        ]
    );
    let transfer = kind.action("transfer_drive").unwrap();
    assert_eq!(
        transfer.inverse,
        Inverse::None("files stay with the new owner; move them back by hand")
    );
}

#[tokio::test]
async fn rollback_unsuspends_and_moves_back_to_the_old_org_unit() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    fake.edit(&id, |u| u.org_unit = "/Sales/Berlin".into());
    let none = Map::new();
    let (account, before) = apply_recording(&fake, "suspend_user", &none).await;
    assert_eq!(before, json!({ "id": id, "suspended": false }));
    restore_twice(&fake, "suspend_user", &none, &account, &before).await;
    assert!(!fake.user(&id).unwrap().suspended);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.json == Some(json!({ "suspended": false })))
    );

    let ou = params(json!({ "org_unit_path": "/Leavers" }));
    let (account, before) = apply_recording(&fake, "move_to_ou", &ou).await;
    assert_eq!(before, json!({ "id": id, "orgUnitPath": "/Sales/Berlin" }));
    assert_eq!(fake.user(&id).unwrap().org_unit, "/Leavers");
    restore_twice(&fake, "move_to_ou", &ou, &account, &before).await;
    assert_eq!(fake.user(&id).unwrap().org_unit, "/Sales/Berlin");

    // Suspended before offboard: nothing put back.
    fake.edit(&id, |u| u.suspended = true);
    let was = json!({ "id": id, "suspended": true });
    let out = provider(&fake)
        .restore(
            &call("suspend_user", ALICE, &none, Some(&account)),
            &was,
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(
        !out.changed && out.summary.contains("nothing to put back"),
        "{out:?}"
    );
    assert!(fake.user(&id).unwrap().suspended);
}

#[tokio::test]
async fn rollback_re_adds_the_groups_with_their_roles_and_names_a_deleted_one() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    let team = fake.add_group("team@corp.test");
    let sales = fake.add_group("sales@corp.test");
    fake.edit(&id, |u| {
        u.groups = vec![team.clone(), sales.clone()];
        u.group_roles
            .insert(team.clone(), ("OWNER".into(), "DAILY".into()));
    });
    let none = Map::new();
    let (account, before) = apply_recording(&fake, "remove_from_groups", &none).await;
    assert_eq!(
        before,
        json!({ "id": id, "email": ALICE, "groups": [
            { "id": team, "email": "team@corp.test", "role": "OWNER", "delivery_settings": "DAILY" },
            { "id": sales, "email": "sales@corp.test", "role": "MEMBER", "delivery_settings": "ALL_MAIL" },
        ]})
    );
    assert!(fake.user(&id).unwrap().groups.is_empty());
    restore_twice(&fake, "remove_from_groups", &none, &account, &before).await;
    let u = fake.user(&id).unwrap();
    assert!(u.groups.contains(&team) && u.groups.contains(&sales));
    assert_eq!(
        u.group_roles[&team],
        ("OWNER".to_string(), "DAILY".to_string())
    );
    let posted = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.raw_path.contains(&team))
        .unwrap();
    assert_eq!(
        posted.json,
        Some(
            json!({ "email": ALICE, "role": "OWNER", "type": "USER", "delivery_settings": "DAILY" })
        )
    );

    // Removed again; sales deleted meanwhile: team comes back, sales is named.
    fake.edit(&id, |u| u.groups.clear());
    fake.delete_group(&sales);
    let p = provider(&fake);
    let c = call("remove_from_groups", ALICE, &none, Some(&account));
    let err = p
        .restore(&c, &before, &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(
        message(&err).contains(&format!("sales@corp.test ({sales})"))
            && message(&err).contains("re-added"),
        "{err}"
    );
    assert!(fake.user(&id).unwrap().groups.contains(&team));
    let chk = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!chk.restored && chk.observed.contains(&sales), "{chk:?}");
    fake.assert_contract();
}

#[tokio::test]
async fn rollback_reassigns_the_licences_and_says_when_none_is_left() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    fake.edit(&id, |u| {
        u.licenses = vec![(
            "Google-Apps".into(),
            "1010020027".into(),
            "Google Workspace Business Starter".into(),
        )]
    });
    let one = params(json!({"products": ["Google-Apps"], "skus": ["1010020027"]}));
    let (account, before) = apply_recording(&fake, "remove_licenses", &one).await;
    assert_eq!(
        before,
        json!({ "id": id, "email": ALICE, "assignments": [{
            "productId": "Google-Apps", "skuId": "1010020027",
            "skuName": "Google Workspace Business Starter",
        }]})
    );
    restore_twice(&fake, "remove_licenses", &one, &account, &before).await;
    assert_eq!(fake.user(&id).unwrap().licenses.len(), 1);
    assert!(
        fake.lines().contains(
            &"POST /apps/licensing/v1/product/Google-Apps/sku/1010020027/user".to_string()
        )
    );

    let p = provider(&fake);
    let c = call("remove_licenses", ALICE, &one, Some(&account));
    p.apply(&c, &CallCtx::silent()).await.unwrap();
    fake.use_up_sku("1010020027", "Google Workspace Business Starter");
    let err = p
        .restore(&c, &before, &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(
        message(&err).contains("Google-Apps/1010020027")
            && message(&err).contains("Not enough licenses available"),
        "{err}"
    );
    let chk = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(
        !chk.restored && chk.observed.contains("not assigned again"),
        "{chk:?}"
    );
    fake.assert_contract();
}

#[tokio::test]
async fn rollback_puts_the_vacation_and_forwarding_back_and_drops_the_added_address() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    fake.add_user(BOSS);
    // Alice had her own holiday reply and forwarded to her phone's mailbox.
    fake.edit(&id, |u| {
        u.vacation = json!({
            "enableAutoReply": true,
            "responseSubject": "Away",
            "responseBodyPlainText": "Back on Monday",
            "startTime": "1796000000000",
        });
        u.forwarding
            .insert("alice@phone.test".into(), "accepted".into());
        u.auto_forwarding = json!({
            "enabled": true, "emailAddress": "alice@phone.test", "disposition": "leaveInInbox",
        });
    });
    let reply = params(json!({"subject": "Alice has left", "body": "Please write to boss"}));
    let (account, before) = apply_recording(&fake, "set_auto_reply", &reply).await;
    assert_eq!(
        before,
        json!({ "id": id, "vacation": {
            "enableAutoReply": true, "responseSubject": "Away",
            "responseBodyPlainText": "Back on Monday", "startTime": "1796000000000",
        }})
    );
    restore_twice(&fake, "set_auto_reply", &reply, &account, &before).await;
    let v = fake.user(&id).unwrap().vacation;
    assert_eq!(v["responseSubject"], "Away");
    assert_eq!(v["responseBodyPlainText"], "Back on Monday");

    let fwd = params(json!({"to": BOSS}));
    let (account, before) = apply_recording(&fake, "set_forwarding", &fwd).await;
    assert_eq!(
        before,
        json!({ "id": id,
            "autoForwarding": { "enabled": true, "emailAddress": "alice@phone.test",
                                "disposition": "leaveInInbox" },
            "forwardingAddress": { "address": BOSS, "existed": false } })
    );
    assert_eq!(
        fake.user(&id).unwrap().auto_forwarding["emailAddress"],
        BOSS
    );
    let plan: Vec<String> = provider(&fake)
        .describe_restore(
            &call("set_forwarding", ALICE, &fwd, Some(&account)),
            &before,
        )
        .iter()
        .map(|l| l.method.clone())
        .collect();
    assert_eq!(plan, ["GET", "GET", "PUT", "DELETE"]);
    restore_twice(&fake, "set_forwarding", &fwd, &account, &before).await;
    let u = fake.user(&id).unwrap();
    assert_eq!(u.auto_forwarding["emailAddress"], "alice@phone.test");
    assert!(!u.forwarding.contains_key(BOSS), "{:?}", u.forwarding);
    assert!(u.forwarding.contains_key("alice@phone.test"));
}

#[tokio::test]
async fn rollback_undeletes_a_user_into_its_old_org_unit_within_the_window() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    fake.edit(&id, |u| u.org_unit = "/Sales".into());
    let none = Map::new();
    let (account, before) = apply_recording(&fake, "delete_user", &none).await;
    assert_eq!(
        before,
        json!({ "id": id, "primaryEmail": ALICE, "orgUnitPath": "/Sales", "exists": true })
    );
    assert!(fake.user(&id).is_none());
    restore_twice(&fake, "delete_user", &none, &account, &before).await;
    assert_eq!(fake.user(&id).unwrap().org_unit, "/Sales");
    let undelete = fake
        .requests()
        .into_iter()
        .find(|r| r.raw_path.ends_with("/undelete"))
        .unwrap();
    assert_eq!(
        undelete.raw_path,
        format!("/admin/directory/v1/users/{id}/undelete")
    );
    assert_eq!(undelete.json, Some(json!({ "orgUnitPath": "/Sales" })));

    // Deleted again and past the 20 days: it cannot come back, and both say so.
    let p = provider(&fake);
    let c = call("delete_user", ALICE, &none, Some(&account));
    p.apply(&c, &CallCtx::silent()).await.unwrap();
    fake.purge(&id);
    let err = p
        .restore(&c, &before, &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(message(&err).contains("can no longer be restored"), "{err}");
    let chk = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(
        !chk.restored && chk.observed.contains("no longer exists"),
        "{chk:?}"
    );
    fake.assert_contract();
}

#[tokio::test]
async fn rollback_turns_off_a_reply_and_forwarding_the_user_never_had() {
    let fake = FakeGoogle::start().await;
    let id = fake.add_user(ALICE);
    fake.add_user(BOSS);
    // Gmail answers `{}` for settings left at their defaults: off.
    let reply = params(json!({"subject": "Alice has left", "body": "Please write to boss"}));
    let (account, before) = apply_recording(&fake, "set_auto_reply", &reply).await;
    assert_eq!(before, json!({ "id": id, "vacation": {} }));
    restore_twice(&fake, "set_auto_reply", &reply, &account, &before).await;
    assert_ne!(
        fake.user(&id).unwrap().vacation["enableAutoReply"],
        json!(true)
    );

    let fwd = params(json!({"to": BOSS}));
    let (account, before) = apply_recording(&fake, "set_forwarding", &fwd).await;
    assert_eq!(before["autoForwarding"], json!({}));
    restore_twice(&fake, "set_forwarding", &fwd, &account, &before).await;
    let u = fake.user(&id).unwrap();
    assert_ne!(
        u.auto_forwarding["enabled"],
        json!(true),
        "{:?}",
        u.auto_forwarding
    );
    assert!(u.forwarding.is_empty(), "{:?}", u.forwarding);
}
