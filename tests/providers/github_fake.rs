//! The `github` kind against a fake GitHub (tests/common/fake_github.rs): each action apply →
//! check by the user's numeric id, a second apply that sends no change, an unknown login
//! (never "revoked"), a 403 with GitHub's own words, primary and secondary rate limits waited
//! out, Link paging followed, drift and a reused login caught, and a GitHub App's JWT exchanged
//! for installation tokens that are renewed before they expire. Every test ends by checking
//! every request against the fake's contract and against GitHub's own OpenAPI description
//! (@octokit/openapi, fetched by tests/vendor-docs.sh).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use offboard::providers::{
    Account, CallCtx, Inverse, Provider, ProviderError, RetryNote, StepCall, SystemConfig,
    UNDO_NOT_BUILT, find_kind,
};
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use crate::common::fake_github::{App, DOCS, FakeGitHub, error};
use crate::common::fake_kit::Fault;

const ORG: &str = "acme-corp";
const PAT: &str = "github_pat_11AAfake0token0Zq81";

fn config(fake: &FakeGitHub) -> SystemConfig {
    let mut cfg = SystemConfig::new("gh", "github", Some(&fake.server.base_url));
    cfg.settings
        .insert("org".into(), toml::Value::String(ORG.into()));
    cfg
}

fn provider(fake: &FakeGitHub) -> Arc<dyn Provider> {
    (find_kind("github").unwrap().connect)(&config(fake).with_token(PAT)).unwrap()
}

fn call<'a>(
    action: &'a str,
    login: &'a str,
    params: &'a Map<String, Value>,
    account: Option<&'a Account>,
) -> StepCall<'a> {
    StepCall {
        step_id: "github",
        action,
        login,
        params,
        account,
    }
}

fn no_params() -> Map<String, Value> {
    Map::new()
}

/// A context that keeps the pre-states an apply records.
fn recording() -> (CallCtx, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (
        CallCtx::silent().on_before(move |v| s.lock().unwrap().push(v.clone())),
        seen,
    )
}

fn retries() -> (CallCtx, Arc<Mutex<Vec<RetryNote>>>) {
    let notes = Arc::new(Mutex::new(Vec::new()));
    let n = notes.clone();
    (CallCtx::new(move |r| n.lock().unwrap().push(r)), notes)
}

#[tokio::test]
async fn remove_org_member_then_the_membership_reads_404() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    let alice = fake.add_member("Alice-Dev");
    let bob = fake.add_member("bob");
    let p = provider(&fake);
    let params = no_params();

    let out = p
        .apply(
            &call("remove_org_member", "alice-dev", &params, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(out.changed, "{out:?}");
    let account = out.account.clone().unwrap();
    assert_eq!(account.id, alice.to_string());
    assert_eq!(account.name, "Alice-Dev");
    assert!(!fake.is_member(alice));
    assert!(fake.is_member(bob));
    assert_eq!(
        fake.lines(),
        [
            "GET /users/alice-dev",
            "GET /orgs/acme-corp/memberships/Alice-Dev",
            "GET /orgs/acme-corp/teams?per_page=100",
            "DELETE /orgs/acme-corp/memberships/Alice-Dev",
        ]
    );

    let check = p
        .check(
            &call("remove_org_member", "alice-dev", &params, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(check.revoked, "{check:?}");
    assert_eq!(check.account.as_ref(), Some(&account));
    assert!(check.observed.contains("404"), "{}", check.observed);

    // Applied again: read, found gone, nothing sent.
    fake.server.clear_requests();
    let again = p
        .apply(
            &call("remove_org_member", "alice-dev", &params, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!again.changed, "{again:?}");
    assert!(
        fake.requests().iter().all(|r| r.method == "GET"),
        "{:?}",
        fake.lines()
    );
    fake.assert_contract();
}

#[tokio::test]
async fn an_unknown_login_is_not_found_never_revoked() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    fake.add_member("someone-else");
    let p = provider(&fake);
    let params = no_params();
    for action in [
        "remove_org_member",
        "cancel_invitations",
        "remove_outside_collaborator",
    ] {
        let e = p
            .apply(&call(action, "ghost", &params, None), &CallCtx::silent())
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::NotFound(_)), "{action}: {e:?}");
        let e = p
            .check(&call(action, "ghost", &params, None), &CallCtx::silent())
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::NotFound(_)), "{action}: {e:?}");
    }
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
    fake.assert_contract();
}

#[tokio::test]
async fn a_403_says_githubs_message_and_the_permission_never_the_token() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    let alice = fake.add_member("alice");
    fake.with(|st| st.forbid_removal = true);
    let p = provider(&fake);
    let e = p
        .apply(
            &call("remove_org_member", "alice", &no_params(), None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    assert!(
        msg.contains("You must be an admin to remove a member."),
        "{msg}"
    );
    assert!(msg.contains(DOCS), "{msg}");
    assert!(msg.contains("Members: read and write"), "{msg}");
    assert!(!msg.contains(PAT), "{msg}");
    assert!(fake.is_member(alice));
    // Not mistaken for a rate limit (its x-ratelimit headers say plenty remain): one DELETE.
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.method == "DELETE")
            .count(),
        1
    );
    fake.assert_contract();
}

#[tokio::test]
async fn a_bad_token_is_githubs_bad_credentials() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    fake.add_member("alice");
    let p = (find_kind("github").unwrap().connect)(&config(&fake).with_token("ghp_wrongwrong"))
        .unwrap();
    let e = p
        .check(
            &call("remove_org_member", "alice", &no_params(), None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("Bad credentials") && msg.contains("401"),
        "{msg}"
    );
    assert!(!msg.contains("ghp_wrongwrong"), "{msg}");
    fake.assert_contract();
}

#[tokio::test]
async fn the_primary_rate_limit_is_waited_out_until_its_reset() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    let alice = fake.add_member("alice");
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    fake.server.fail_next_on(
        "DELETE",
        "/orgs/{org}/memberships/{username}",
        Fault::Reply(
            error(403, "API rate limit exceeded for user ID 1.")
                .header("x-ratelimit-limit", 5000)
                .header("x-ratelimit-remaining", 0)
                .header("x-ratelimit-used", 5000)
                .header("x-ratelimit-reset", reset)
                .header("x-ratelimit-resource", "core"),
        ),
    );
    let (ctx, notes) = retries();
    let out = provider(&fake)
        .apply(
            &call("remove_org_member", "alice", &no_params(), None),
            &ctx,
        )
        .await
        .unwrap();
    assert!(out.changed);
    assert!(!fake.is_member(alice));
    let notes = notes.lock().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].reason.contains("403"), "{notes:?}");
    // Until the reset second has passed, not a backoff guess.
    assert!(
        notes[0].wait_ms >= 500 && notes[0].wait_ms <= 2_100,
        "{notes:?}"
    );
    assert_eq!(fake.server.injected().len(), 1);
    fake.assert_contract();
}

#[tokio::test]
async fn the_secondary_rate_limit_is_waited_out_by_retry_after_as_403_or_429() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    fake.add_member("alice");
    fake.add_user("carol");
    fake.with(|st| st.outside.push(st.users["carol"].0));
    let secondary = |status| {
        Fault::Reply(
            error(
                status,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you \
                 try again.",
            )
            .header("retry-after", 1)
            .header("x-ratelimit-remaining", 4990),
        )
    };
    fake.server.fail_next_on(
        "DELETE",
        "/orgs/{org}/memberships/{username}",
        secondary(403),
    );
    fake.server
        .fail_next_on("GET", "/orgs/{org}/outside_collaborators", secondary(429));
    let (ctx, notes) = retries();
    let p = provider(&fake);
    assert!(
        p.apply(
            &call("remove_org_member", "alice", &no_params(), None),
            &ctx
        )
        .await
        .unwrap()
        .changed
    );
    assert!(
        p.apply(
            &call("remove_outside_collaborator", "carol", &no_params(), None),
            &ctx
        )
        .await
        .unwrap()
        .changed
    );
    let notes = notes.lock().unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes.iter().all(|n| n.wait_ms == 1_000), "{notes:?}");
    assert_eq!(fake.server.injected().len(), 2);
    fake.assert_contract();
}

#[tokio::test]
async fn cancel_invitations_follows_link_pages_by_login_and_email() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    fake.add_user("dave");
    let others: Vec<u64> = (0..3)
        .map(|i| fake.add_invitation(Some(&format!("other{i}")), None))
        .collect();
    let by_email = fake.add_invitation(None, Some("Dave@Corp.test"));
    let other_email = fake.add_invitation(None, Some("eve@corp.test"));
    let by_login = fake.add_invitation(Some("DAVE"), None);
    let params = json!({ "email": "dave@corp.test" })
        .as_object()
        .unwrap()
        .clone();
    let p = provider(&fake);

    let out = p
        .apply(
            &call("cancel_invitations", "dave", &params, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(out.changed, "{out:?}");
    assert!(out.summary.contains("cancelled 2"), "{}", out.summary);
    let left: Vec<u64> = fake.with(|st| st.invitations.iter().map(|i| i.id).collect());
    let mut want = others.clone();
    want.push(other_email);
    assert_eq!(left, want);
    let lines = fake.lines();
    assert!(
        lines.contains(&"GET /orgs/acme-corp/invitations?per_page=100&page=3".to_string()),
        "{lines:?}"
    );
    for id in [by_email, by_login] {
        assert!(
            lines.contains(&format!("DELETE /orgs/acme-corp/invitations/{id}")),
            "{lines:?}"
        );
    }

    let account = out.account.unwrap();
    let check = p
        .check(
            &call("cancel_invitations", "dave", &params, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(check.revoked, "{check:?}");

    // Drift: a new invitation behind the tool's back.
    fake.add_invitation(Some("dave"), None);
    let check = p
        .check(
            &call("cancel_invitations", "dave", &params, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!check.revoked, "{check:?}");
    fake.server.clear_requests();
    assert!(
        p.apply(
            &call("cancel_invitations", "dave", &params, Some(&account)),
            &CallCtx::silent()
        )
        .await
        .unwrap()
        .changed
    );
    fake.server.clear_requests();
    let again = p
        .apply(
            &call("cancel_invitations", "dave", &params, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!again.changed);
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
    fake.assert_contract();
}

#[tokio::test]
async fn remove_outside_collaborator_reads_every_page_by_id() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    for i in 0..3 {
        let id = fake.add_user(&format!("contractor{i}"));
        fake.with(|st| st.outside.push(id));
    }
    let carol = fake.add_user("carol");
    fake.with(|st| st.outside.push(carol));
    let p = provider(&fake);
    let params = no_params();
    let out = p
        .apply(
            &call("remove_outside_collaborator", "carol", &params, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(out.changed, "{out:?}");
    assert!(!fake.with(|st| st.outside.contains(&carol)));
    let lines = fake.lines();
    assert!(
        lines
            .contains(&"GET /orgs/acme-corp/outside_collaborators?per_page=100&page=2".to_string()),
        "{lines:?}"
    );
    assert!(lines.contains(&"DELETE /orgs/acme-corp/outside_collaborators/carol".to_string()));
    assert_eq!(fake.with(|st| st.outside.len()), 3);

    let account = out.account.unwrap();
    let c = call(
        "remove_outside_collaborator",
        "carol",
        &params,
        Some(&account),
    );
    assert!(p.check(&c, &CallCtx::silent()).await.unwrap().revoked);
    // Added back on a repository behind the tool's back (the last page): verify catches it.
    fake.with(|st| st.outside.push(carol));
    let check = p.check(&c, &CallCtx::silent()).await.unwrap();
    assert!(!check.revoked, "{check:?}");
    fake.server.clear_requests();
    assert!(p.apply(&c, &CallCtx::silent()).await.unwrap().changed);
    fake.server.clear_requests();
    assert!(!p.apply(&c, &CallCtx::silent()).await.unwrap().changed);
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
    fake.assert_contract();
}

#[tokio::test]
async fn drift_and_a_reused_login_are_caught_by_check() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    let alice = fake.add_member("alice");
    let p = provider(&fake);
    let params = no_params();
    let account = p
        .apply(
            &call("remove_org_member", "alice", &params, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap()
        .account
        .unwrap();
    let c = call("remove_org_member", "alice", &params, Some(&account));
    assert!(p.check(&c, &CallCtx::silent()).await.unwrap().revoked);

    // Re-added behind the tool's back.
    fake.with(|st| {
        st.members.insert(
            alice,
            crate::common::fake_github::Membership {
                state: "pending".into(),
                role: "member".into(),
            },
        )
    });
    let check = p.check(&c, &CallCtx::silent()).await.unwrap();
    assert!(!check.revoked, "{check:?}");
    assert!(
        check.observed.contains("state=pending"),
        "{}",
        check.observed
    );
    fake.with(|st| st.members.clear());

    // Alice renamed herself and someone else took the login: not confirmed by their membership.
    fake.with(|st| st.users.remove("alice"));
    let newcomer = fake.add_member("alice");
    let e = p.check(&c, &CallCtx::silent()).await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&newcomer.to_string()) && msg.contains(&alice.to_string()),
        "{msg}"
    );
    assert!(msg.contains("now belongs"), "{msg}");
    // And apply does not remove the newcomer.
    assert!(p.apply(&c, &CallCtx::silent()).await.is_err());
    assert!(fake.is_member(newcomer));
    fake.assert_contract();
}

fn app_config(fake: &FakeGitHub, pem: &str, installation_id: i64) -> SystemConfig {
    let mut cfg = config(fake);
    cfg.settings
        .insert("app_id".into(), toml::Value::String("Iv23liFakeApp".into()));
    cfg.settings.insert(
        "installation_id".into(),
        toml::Value::Integer(installation_id),
    );
    cfg.secrets
        .insert("private_key".into(), SecretString::from(pem.to_string()));
    cfg
}

#[tokio::test]
async fn a_github_app_signs_a_jwt_for_an_installation_token_and_renews_it() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    let (pem, cert) = crate::common::fake_token::test_certificate();
    fake.with(|st| {
        st.app = Some(App {
            app_id: "Iv23liFakeApp".into(),
            installation_id: 4242,
            public_der: cert.public_der.clone(),
            // Reused until 5 minutes before it expires: about 6 s here (room for a loaded
            // machine: 2 s was once too short for the first call).
            token_life: Duration::from_secs(306),
        })
    });
    let alice = fake.add_member("alice");
    fake.add_member("bob");
    let p = (find_kind("github").unwrap().connect)(&app_config(&fake, &pem, 4242)).unwrap();
    let params = no_params();
    let out = p
        .apply(
            &call("remove_org_member", "alice", &params, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(out.changed);
    assert!(!fake.is_member(alice));
    let issued = |fake: &FakeGitHub| fake.with(|st| st.installation_tokens.len());
    assert_eq!(issued(&fake), 1, "one token for the whole call");
    assert_eq!(
        fake.with(|st| st.refused_jwts.clone()),
        Vec::<String>::new()
    );
    let reqs = fake.requests();
    assert_eq!(reqs[0].line(), "POST /app/installations/4242/access_tokens");
    // The API calls carried the installation token, not the JWT.
    let first_token = fake.with(|st| st.installation_tokens[0].0.clone());
    assert!(reqs[1..].iter().all(|r| r.auth_scheme() == Some("Bearer")));

    tokio::time::sleep(Duration::from_millis(6_600)).await;
    p.apply(
        &call("remove_org_member", "bob", &params, None),
        &CallCtx::silent(),
    )
    .await
    .unwrap();
    assert_eq!(issued(&fake), 2, "renewed before it expired");
    assert_ne!(
        fake.with(|st| st.installation_tokens[1].0.clone()),
        first_token
    );
    fake.assert_contract();
}

#[tokio::test]
async fn a_github_app_refused_says_githubs_message_without_the_jwt() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    let (pem, _) = crate::common::fake_token::test_certificate();
    let (_, other) = crate::common::fake_token::test_certificate();
    fake.with(|st| {
        st.app = Some(App {
            app_id: "Iv23liFakeApp".into(),
            installation_id: 4242,
            public_der: other.public_der.clone(),
            token_life: Duration::from_secs(3600),
        })
    });
    fake.add_member("alice");
    let p = (find_kind("github").unwrap().connect)(&app_config(&fake, &pem, 4242)).unwrap();
    let e = p
        .check(
            &call("remove_org_member", "alice", &no_params(), None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("A JSON web token could not be decoded"),
        "{msg}"
    );
    assert!(msg.contains("GitHub App Iv23liFakeApp"), "{msg}");
    assert!(!msg.contains("eyJ"), "no JWT in {msg}");
    assert_eq!(fake.with(|st| st.refused_jwts.len()), 1);
    // Only the token exchange was tried.
    assert!(fake.lines().iter().all(|l| l.starts_with("POST /app/")));
    fake.assert_contract();
}

#[test]
fn connect_refuses_half_an_app_or_an_app_and_a_token() {
    let mut cfg = SystemConfig::new("gh", "github", None);
    let connect = find_kind("github").unwrap().connect;
    let e = connect(&cfg).err().unwrap().to_string();
    assert!(e.contains("`org`"), "{e}");
    cfg.settings
        .insert("org".into(), toml::Value::String(ORG.into()));
    // github.com by default.
    assert!(connect(&cfg).is_ok());
    cfg.settings
        .insert("app_id".into(), toml::Value::String("1".into()));
    let e = connect(&cfg).err().unwrap().to_string();
    assert!(e.contains("installation_id"), "{e}");
    cfg.settings
        .insert("installation_id".into(), toml::Value::Integer(7));
    cfg.settings
        .insert("private_key".into(), toml::Value::String("{file}".into()));
    assert!(connect(&cfg).is_ok());
    let e = connect(&cfg.with_token("t0ken")).err().unwrap().to_string();
    assert!(e.contains("not both"), "{e}");
}

#[tokio::test]
async fn plan_lines_name_ghes_paths_under_base_url() {
    let mut cfg = SystemConfig::new("gh", "github", Some("https://ghe.corp.test/api/v3"));
    cfg.settings
        .insert("org".into(), toml::Value::String(ORG.into()));
    let p = (find_kind("github").unwrap().connect)(&cfg).unwrap();
    let params = no_params();
    let lines: Vec<String> = p
        .describe(&call("remove_org_member", "alice", &params, None))
        .iter()
        .map(|l| format!("{} {}", l.method, l.url))
        .collect();
    assert_eq!(
        lines,
        [
            "GET https://ghe.corp.test/api/v3/users/{username}",
            "GET https://ghe.corp.test/api/v3/orgs/acme-corp/memberships/{username}",
            "DELETE https://ghe.corp.test/api/v3/orgs/acme-corp/memberships/{username}",
        ]
    );
}

#[test]
fn every_github_action_declares_its_inverse() {
    let kind = find_kind("github").unwrap();
    for a in kind.actions {
        assert_ne!(a.inverse, Inverse::None(UNDO_NOT_BUILT), "{}", a.name);
    }
    let inverse = |n: &str| kind.action(n).unwrap().inverse;
    assert!(matches!(inverse("remove_org_member"), Inverse::Restore(t) if t.contains("accept")));
    assert!(matches!(inverse("cancel_invitations"), Inverse::Restore(_)));
    assert!(matches!(
        inverse("remove_outside_collaborator"),
        Inverse::None(t) if t.contains("repositor")
    ));
}

#[tokio::test]
async fn remove_org_member_records_role_and_teams_and_restore_invites_them_back() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    let alice = fake.add_member("alice");
    let bob = fake.add_member("bob");
    fake.with(|st| st.members.get_mut(&alice).unwrap().role = "admin".into());
    let platform = fake.add_team("platform");
    let oncall = fake.add_team("on-call");
    fake.add_team("design");
    fake.add_to_team("platform", alice, "maintainer");
    fake.add_to_team("on-call", alice, "member");
    fake.add_to_team("design", bob, "member");
    let p = provider(&fake);
    let params = no_params();
    let (ctx, seen) = recording();

    let out = p
        .apply(&call("remove_org_member", "alice", &params, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{out:?}");
    let account = out.account.unwrap();
    let before = seen.lock().unwrap().clone();
    assert_eq!(before.len(), 1, "{before:?}");
    let before = before[0].clone();
    assert_eq!(
        before,
        json!({
            "org": ORG,
            "membership": { "state": "active", "role": "admin" },
            "teams": [
                { "id": platform, "slug": "platform", "state": "active", "role": "maintainer" },
                { "id": oncall, "slug": "on-call", "state": "active", "role": "member" },
            ],
        })
    );
    assert!(!fake.is_member(alice));
    assert!(fake.with(|st| st.teams.iter().all(|t| !t.members.contains_key(&alice))));

    let c = call("remove_org_member", "alice", &params, Some(&account));
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
    assert_eq!(
        plan,
        [
            "GET /users/{username}",
            "GET /orgs/acme-corp/memberships/{username}",
            "PUT /orgs/acme-corp/memberships/{username}",
            "GET /orgs/acme-corp/teams/platform/memberships/{username}",
            "PUT /orgs/acme-corp/teams/platform/memberships/{username}",
            "GET /orgs/acme-corp/teams/on-call/memberships/{username}",
            "PUT /orgs/acme-corp/teams/on-call/memberships/{username}",
        ]
    );

    let restored = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(restored.changed, "{restored:?}");
    assert_eq!(restored.account.as_ref(), Some(&account));
    let m = fake.membership(alice).unwrap();
    assert_eq!((m.state.as_str(), m.role.as_str()), ("pending", "admin"));
    assert_eq!(
        fake.with(|st| st.writes.clone()),
        [
            (
                "/orgs/acme-corp/memberships/alice".to_string(),
                json!({ "role": "admin" })
            ),
            (
                "/orgs/acme-corp/teams/platform/memberships/alice".to_string(),
                json!({ "role": "maintainer" })
            ),
            (
                "/orgs/acme-corp/teams/on-call/memberships/alice".to_string(),
                json!({ "role": "member" })
            ),
        ]
    );

    // Invited, not yet back: the check says so, and what is pending.
    let check = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!check.restored, "{check:?}");
    assert!(check.observed.contains("must accept"), "{}", check.observed);
    assert!(
        check.observed.contains("team platform: pending"),
        "{}",
        check.observed
    );
    assert_eq!(check.after["membership"]["state"], "pending");

    // Restored again: everything asked for already, nothing sent.
    fake.with(|st| st.writes.clear());
    let again = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(!again.changed, "{again:?}");
    assert!(fake.with(|st| st.writes.is_empty()));

    // The person accepts: back as before, in the pre-state's shape.
    fake.accept_invitation(alice);
    let check = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(check.restored, "{check:?}");
    assert_eq!(check.after, before);
    assert_eq!(check.account.as_ref(), Some(&account));
    fake.assert_contract();
}

#[tokio::test]
async fn restoring_a_membership_names_a_deleted_team_and_refuses_another_account() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    let alice = fake.add_member("alice");
    fake.add_team("platform");
    fake.add_team("gone");
    fake.add_to_team("platform", alice, "member");
    fake.add_to_team("gone", alice, "member");
    let p = provider(&fake);
    let params = no_params();
    let (ctx, seen) = recording();
    let out = p
        .apply(&call("remove_org_member", "alice", &params, None), &ctx)
        .await
        .unwrap();
    let account = out.account.unwrap();
    let before = seen.lock().unwrap()[0].clone();
    fake.with(|st| st.teams.retain(|t| t.slug != "gone"));
    let c = call("remove_org_member", "alice", &params, Some(&account));
    let restored = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(restored.changed);
    assert!(
        restored.summary.contains("team gone no longer exists"),
        "{}",
        restored.summary
    );
    fake.accept_invitation(alice);
    let check = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!check.restored, "{check:?}");
    assert!(
        check.observed.contains("not in team gone"),
        "{}",
        check.observed
    );

    // The login now names someone else: nothing is sent to them.
    fake.with(|st| {
        st.users.remove("alice");
    });
    fake.add_user("alice");
    fake.with(|st| st.writes.clear());
    let e = p
        .restore(&c, &before, &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not"), "{e}");
    assert!(fake.with(|st| st.writes.is_empty()));
}

#[tokio::test]
async fn a_billing_manager_is_invited_back_as_billing_manager() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    let bea = fake.add_member("bea");
    fake.with(|st| st.members.get_mut(&bea).unwrap().role = "billing_manager".into());
    let p = provider(&fake);
    let params = no_params();
    let (ctx, seen) = recording();
    let out = p
        .apply(&call("remove_org_member", "bea", &params, None), &ctx)
        .await
        .unwrap();
    let account = out.account.unwrap();
    let before = seen.lock().unwrap()[0].clone();
    assert_eq!(before["membership"]["role"], "billing_manager");
    let c = call("remove_org_member", "bea", &params, Some(&account));
    let plan = p.describe_restore(&c, &before);
    assert_eq!(plan[2].method, "POST", "{plan:?}");
    let r = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(r.changed, "{r:?}");
    assert_eq!(
        fake.with(|st| st.writes.clone()),
        [(
            "/orgs/acme-corp/invitations".to_string(),
            json!({ "invitee_id": bea, "role": "billing_manager" })
        )]
    );
    let check = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!check.restored, "{check:?}");
    assert!(check.observed.contains("must accept"), "{}", check.observed);
    assert!(
        !p.restore(&c, &before, &CallCtx::silent())
            .await
            .unwrap()
            .changed
    );
    assert_eq!(fake.with(|st| st.writes.len()), 1);
    fake.accept_invitation(bea);
    let check = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(check.restored, "{check:?}");
    fake.assert_contract();
}

#[tokio::test]
async fn apply_on_a_non_member_records_nothing_to_put_back() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    fake.add_user("alice");
    let p = provider(&fake);
    let params = no_params();
    let (ctx, seen) = recording();
    let out = p
        .apply(&call("remove_org_member", "alice", &params, None), &ctx)
        .await
        .unwrap();
    assert!(!out.changed);
    let before = seen.lock().unwrap()[0].clone();
    assert_eq!(
        before,
        json!({ "org": ORG, "membership": null, "teams": [] })
    );
    let account = out.account.unwrap();
    let c = call("remove_org_member", "alice", &params, Some(&account));
    let r = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(!r.changed, "{r:?}");
    assert!(fake.with(|st| st.writes.is_empty()));
}

#[tokio::test]
async fn cancel_invitations_records_them_and_restore_sends_them_again() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    let dave = fake.add_user("dave");
    let infra = fake.add_team("infra");
    let by_login = fake.add_invitation(Some("dave"), None);
    let by_email = fake.add_invitation(None, Some("Dave@Corp.test"));
    fake.add_invitation(Some("erin"), None);
    fake.with(|st| {
        let inv = st
            .invitations
            .iter_mut()
            .find(|i| i.id == by_login)
            .unwrap();
        inv.role = "admin".into();
        inv.team_ids = vec![infra];
    });
    let p = provider(&fake);
    let params = json!({ "email": "dave@corp.test" })
        .as_object()
        .unwrap()
        .clone();
    let (ctx, seen) = recording();
    let out = p
        .apply(&call("cancel_invitations", "dave", &params, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    let account = out.account.unwrap();
    let before = seen.lock().unwrap()[0].clone();
    assert_eq!(
        before,
        json!({ "org": ORG, "invitations": [
            { "id": by_login, "login": "dave", "email": null, "role": "admin", "team_ids": [infra] },
            { "id": by_email, "login": null, "email": "Dave@Corp.test", "role": "direct_member",
              "team_ids": [] },
        ]})
    );
    assert_eq!(fake.with(|st| st.invitations.len()), 1);

    let c = call("cancel_invitations", "dave", &params, Some(&account));
    let r = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(r.changed, "{r:?}");
    let posted: Vec<Value> = fake.with(|st| st.writes.iter().map(|(_, b)| b.clone()).collect());
    assert_eq!(
        posted,
        [
            json!({ "invitee_id": dave, "role": "admin", "team_ids": [infra] }),
            json!({ "email": "Dave@Corp.test", "role": "direct_member" }),
        ]
    );
    let check = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(check.restored, "{check:?}");
    assert_eq!(check.after["invitations"].as_array().unwrap().len(), 2);

    fake.with(|st| st.writes.clear());
    let again = p.restore(&c, &before, &CallCtx::silent()).await.unwrap();
    assert!(!again.changed, "{again:?}");
    assert!(fake.with(|st| st.writes.is_empty()));

    // One cancelled again by someone: the check names it.
    fake.with(|st| st.invitations.retain(|i| i.email.is_none()));
    let check = p
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!check.restored);
    assert!(
        check
            .observed
            .contains(&format!("invitation {by_email} not pending again")),
        "{}",
        check.observed
    );
    fake.assert_contract();
}

#[tokio::test]
async fn remove_outside_collaborator_records_that_they_were_one() {
    let fake = FakeGitHub::start(ORG, PAT).await;
    let carol = fake.add_user("carol");
    fake.with(|st| st.outside.push(carol));
    let p = provider(&fake);
    let params = no_params();
    let (ctx, seen) = recording();
    p.apply(
        &call("remove_outside_collaborator", "carol", &params, None),
        &ctx,
    )
    .await
    .unwrap();
    assert_eq!(
        seen.lock().unwrap().clone(),
        [json!({ "org": ORG, "outside_collaborator": true })]
    );
}

/// Every action of the kind against `fake`, each as a departure runs it (apply, check, apply
/// again), with paged invitations and outside collaborators, an unknown login, and the same
/// through a GitHub App (its token exchange first): the requests tests/providers/vendor_docs.rs
/// checks against GitHub's own OpenAPI description.
pub(crate) async fn run_every_action(fake: &FakeGitHub) {
    let (pem, cert) = crate::common::fake_token::test_certificate();
    fake.with(|st| {
        st.app = Some(App {
            app_id: "Iv23liFakeApp".into(),
            installation_id: 4242,
            public_der: cert.public_der.clone(),
            token_life: Duration::from_secs(3600),
        })
    });
    fake.add_member("alice");
    fake.add_member("bob");
    fake.add_user("dave");
    for i in 0..3 {
        fake.add_invitation(Some(&format!("other{i}")), None);
    }
    fake.add_invitation(None, Some("dave@corp.test"));
    fake.add_invitation(Some("dave"), None);
    for i in 0..3 {
        let id = fake.add_user(&format!("contractor{i}"));
        fake.with(|st| st.outside.push(id));
    }
    let carol = fake.add_user("carol");
    fake.with(|st| st.outside.push(carol));

    let by_token = provider(fake);
    let by_app = (find_kind("github").unwrap().connect)(&app_config(fake, &pem, 4242)).unwrap();
    let email = json!({ "email": "dave@corp.test" })
        .as_object()
        .unwrap()
        .clone();
    let none = no_params();
    let ctx = CallCtx::silent();
    for (p, action, login, params) in [
        (&by_token, "remove_org_member", "alice", &none),
        (&by_token, "cancel_invitations", "dave", &email),
        (&by_token, "remove_outside_collaborator", "carol", &none),
        (&by_app, "remove_org_member", "bob", &none),
    ] {
        let out = p.apply(&call(action, login, params, None), &ctx).await;
        let out = out.unwrap_or_else(|e| panic!("{action} {login}: {e}"));
        assert!(out.changed, "{action} {login}: {out:?}");
        let account = out.account.unwrap();
        let c = call(action, login, params, Some(&account));
        assert!(p.check(&c, &ctx).await.unwrap().revoked, "{action} {login}");
        assert!(
            !p.apply(&c, &ctx).await.unwrap().changed,
            "{action} {login}"
        );
    }
    // Rollback's requests: put back what remove_org_member and cancel_invitations took.
    let alice = fake.add_member("alice2");
    fake.add_team("platform");
    fake.add_to_team("platform", alice, "maintainer");
    fake.add_user("erin");
    let invited = fake.add_invitation(Some("erin"), None);
    let team = fake.add_team("infra");
    fake.with(|st| {
        let inv = st.invitations.iter_mut().find(|i| i.id == invited).unwrap();
        inv.team_ids = vec![team];
    });
    for (action, login) in [
        ("remove_org_member", "alice2"),
        ("cancel_invitations", "erin"),
    ] {
        let (rec, seen) = recording();
        let out = by_token
            .apply(&call(action, login, &none, None), &rec)
            .await
            .unwrap();
        let account = out.account.unwrap();
        let before = seen.lock().unwrap()[0].clone();
        let c = call(action, login, &none, Some(&account));
        assert!(
            by_token.restore(&c, &before, &ctx).await.unwrap().changed,
            "{action}"
        );
        by_token.check_restored(&c, &before, &ctx).await.unwrap();
    }
    for action in [
        "remove_org_member",
        "cancel_invitations",
        "remove_outside_collaborator",
    ] {
        let e = by_token
            .apply(&call(action, "ghost", &none, None), &ctx)
            .await;
        assert!(matches!(e, Err(ProviderError::NotFound(_))), "{action}");
    }
}
