//! The ldap provider against misbehaving endpoints on 127.0.0.1: a server that accepts and then
//! never answers, one that hangs up at once, and one that answers with bytes that are not LDAP.
//! The rest runs the adapter against `common::fake_ldap`, an in-memory LDAPv3 server: the
//! requests it sends (filters, modifications, DNs), the entry state after each action, and what
//! it makes of bad credentials, insufficient access, unknown people and busy/unavailable servers.
//! (The same is exercised against the real Samba AD DC and OpenLDAP in `ldap_real.rs`.)

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use offboard::providers::ldap::{LdapProvider, RetryPolicy};
use offboard::providers::{
    Account, CallCtx, Provider, ProviderError, RetryNote, StepCall, SystemConfig,
};
use serde_json::json;

const PASSWORD: &str = "bind-pw-SECRET-93ad";

#[derive(Clone, Copy)]
enum Behaviour {
    Hang,
    HangUp,
    Garbage,
}

/// A TCP endpoint that behaves badly; returns its port and a counter of connections.
fn endpoint(b: Behaviour) -> (u16, Arc<Mutex<usize>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for stream in l.incoming() {
            let Ok(mut s) = stream else { continue };
            *counter.lock().unwrap() += 1;
            std::thread::spawn(move || match b {
                Behaviour::Hang => {
                    let mut buf = [0u8; 512];
                    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                }
                Behaviour::HangUp => drop(s),
                Behaviour::Garbage => {
                    let mut buf = [0u8; 512];
                    let _ = s.read(&mut buf);
                    let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\nthis is not LDAP");
                }
            });
        }
    });
    (port, seen)
}

fn config(port: u16, state: &std::path::Path) -> SystemConfig {
    let mut settings = std::collections::BTreeMap::new();
    for (k, v) in [
        ("flavor", "active_directory"),
        ("bind_dn", "svc@corp.test"),
        ("base_dn", "DC=corp,DC=test"),
    ] {
        settings.insert(k.into(), toml::Value::String(v.into()));
    }
    settings.insert("allow_plain".into(), toml::Value::Boolean(true));
    let mut secrets = std::collections::BTreeMap::new();
    secrets.insert(
        "bind_password".into(),
        secrecy::SecretString::from(PASSWORD),
    );
    SystemConfig {
        name: "ad".into(),
        kind: "ldap".into(),
        base_url: Some(format!("ldap://127.0.0.1:{port}")),
        token: None,
        auth: None,
        settings,
        secrets,
        timeout: Duration::from_secs(1),
        max_concurrency: 4,
        rate_limit: None,
        state_dir: state.to_path_buf(),
    }
}

async fn disable(b: Behaviour) -> (ProviderError, Vec<RetryNote>, usize) {
    let (port, seen) = endpoint(b);
    let state = tempfile::tempdir().unwrap();
    let p = LdapProvider::new(&config(port, state.path()))
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(20),
            ..RetryPolicy::default()
        });
    let notes = Arc::new(Mutex::new(Vec::new()));
    let sink = notes.clone();
    let ctx = CallCtx::new(move |n| sink.lock().unwrap().push(n));
    let params = serde_json::Map::new();
    let call = StepCall {
        step_id: "ad-disable",
        action: "disable_account",
        login: "alice@corp.test",
        params: &params,
        account: None,
    };
    let err = p.apply(&call, &ctx).await.unwrap_err();
    let text = err.to_string();
    assert!(!text.contains(PASSWORD), "the bind password leaked: {text}");
    let notes = notes.lock().unwrap().clone();
    let n = *seen.lock().unwrap();
    (err, notes, n)
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_and_is_retried() {
    let (err, notes, connections) = disable(Behaviour::Hang).await;
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(connections, 3);
}

#[tokio::test]
async fn a_server_that_hangs_up_is_retried_then_reported() {
    let (err, notes, connections) = disable(Behaviour::HangUp).await;
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(connections, 3);
}

#[tokio::test]
async fn a_server_that_does_not_speak_ldap_is_an_error_not_a_panic() {
    let (err, _, connections) = disable(Behaviour::Garbage).await;
    assert!(connections >= 1);
    let text = err.to_string();
    assert!(!text.is_empty());
}

// ---- against an LDAPv3 fake ----

use common::fake_ldap::{Change, FakeLdap, Op, Request};
use offboard::providers::{ApplyOutcome, CheckOutcome};

const BASE: &str = "DC=corp,DC=test";
const ALICE: &str = "CN=Alice Example,OU=People,DC=corp,DC=test";
const BOB: &str = "CN=Bob Example,OU=People,DC=corp,DC=test";
const VPN: &str = "CN=VPN Users,OU=Groups,DC=corp,DC=test";
const ADMINS: &str = "CN=Wiki Admins,OU=Groups,DC=corp,DC=test";
const PERSON: &str = "CN=Person,CN=Schema,CN=Configuration,DC=corp,DC=test";

/// An AD-shaped directory: the domain, two OUs, alice (uac 512) in two groups, bob (uac 66048).
fn ad_fake() -> FakeLdap {
    let f = FakeLdap::start();
    f.add_account("svc@corp.test", PASSWORD);
    f.add_entry(BASE, &[("objectClass", &["top", "domain"])]);
    f.add_entry(
        "OU=People,DC=corp,DC=test",
        &[("objectClass", &["organizationalUnit"])],
    );
    f.add_entry(
        "OU=Groups,DC=corp,DC=test",
        &[("objectClass", &["organizationalUnit"])],
    );
    f.add_entry(
        "OU=Disabled,DC=corp,DC=test",
        &[("objectClass", &["organizationalUnit"])],
    );
    for (dn, upn, uac, groups) in [
        (ALICE, "alice@corp.test", "512", &[VPN, ADMINS][..]),
        (BOB, "bob@corp.test", "66048", &[VPN][..]),
    ] {
        f.add_entry(
            dn,
            &[
                (
                    "objectClass",
                    &["top", "person", "organizationalPerson", "user"],
                ),
                ("objectCategory", &[PERSON]),
                ("userPrincipalName", &[upn]),
                ("userAccountControl", &[uac]),
                ("memberOf", groups),
            ],
        );
    }
    f.add_entry(
        VPN,
        &[
            ("objectClass", &["top", "group"]),
            ("member", &[ALICE, BOB]),
        ],
    );
    f.add_entry(
        ADMINS,
        &[("objectClass", &["top", "group"]), ("member", &[ALICE])],
    );
    f
}

fn fake_config(f: &FakeLdap, flavor: &str, bind_dn: &str, base: &str) -> SystemConfig {
    let mut c = SystemConfig::new("dir", "ldap", Some(&f.url()));
    for (k, v) in [("flavor", flavor), ("bind_dn", bind_dn), ("base_dn", base)] {
        c.settings.insert(k.into(), toml::Value::String(v.into()));
    }
    c.settings
        .insert("allow_plain".into(), toml::Value::Boolean(true));
    c.secrets.insert(
        "bind_password".into(),
        secrecy::SecretString::from(PASSWORD),
    );
    c.timeout = Duration::from_secs(2);
    c
}

fn ad(f: &FakeLdap) -> LdapProvider {
    provider(fake_config(f, "active_directory", "svc@corp.test", BASE))
}

fn provider(c: SystemConfig) -> LdapProvider {
    LdapProvider::new(&c).unwrap().with_retry(RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(10),
        ..RetryPolicy::default()
    })
}

type Notes = Arc<Mutex<Vec<RetryNote>>>;

fn ctx() -> (CallCtx, Notes) {
    let notes: Notes = Arc::new(Mutex::new(Vec::new()));
    let sink = notes.clone();
    (CallCtx::new(move |n| sink.lock().unwrap().push(n)), notes)
}

async fn apply(
    p: &LdapProvider,
    action: &str,
    login: &str,
    params: serde_json::Value,
) -> (Result<ApplyOutcome, ProviderError>, Vec<RetryNote>) {
    let params = params.as_object().cloned().unwrap_or_default();
    let call = StepCall {
        step_id: "s",
        action,
        login,
        params: &params,
        account: None,
    };
    let (ctx, notes) = ctx();
    let r = p.apply(&call, &ctx).await;
    if let Err(e) = &r {
        assert!(
            !e.to_string().contains(PASSWORD),
            "the bind password leaked: {e}"
        );
    }
    let n = notes.lock().unwrap().clone();
    (r, n)
}

async fn check(
    p: &LdapProvider,
    action: &str,
    login: &str,
    params: serde_json::Value,
) -> CheckOutcome {
    let params = params.as_object().cloned().unwrap_or_default();
    let call = StepCall {
        step_id: "s",
        action,
        login,
        params: &params,
        account: None,
    };
    p.check(&call, &CallCtx::silent()).await.unwrap()
}

/// The step's check now reports access revoked, and applying it again changes nothing and sends
/// no modification.
async fn revoked_and_done_once(f: &FakeLdap, p: &LdapProvider, action: &str, login: &str) {
    assert!(check(p, action, login, json!({})).await.revoked);
    let before = f.modifies().len();
    let (r, _) = apply(p, action, login, json!({})).await;
    let again = r.unwrap();
    assert!(!again.changed, "{}", again.summary);
    assert_eq!(
        f.modifies().len(),
        before,
        "a second apply sent a modification"
    );
}

fn replace(attr: &str, value: &str) -> Vec<Change> {
    vec![Change {
        op: "replace",
        attr: attr.into(),
        values: vec![value.into()],
    }]
}

#[tokio::test]
async fn ad_disable_account_sets_bit_2_keeps_the_others_and_check_reads_it_back() {
    let f = ad_fake();
    let p = ad(&f);
    assert!(
        !check(&p, "disable_account", "alice@corp.test", json!({}))
            .await
            .revoked
    );

    let (r, _) = apply(&p, "disable_account", "alice@corp.test", json!({})).await;
    let out = r.unwrap();
    assert!(out.changed);
    assert!(out.summary.contains("512 → 514"), "{}", out.summary);
    let (r, _) = apply(&p, "disable_account", "bob@corp.test", json!({})).await;
    assert!(r.unwrap().summary.contains("66048 → 66050"));

    assert_eq!(
        f.modifies(),
        vec![
            (ALICE.to_string(), replace("userAccountControl", "514")),
            (BOB.to_string(), replace("userAccountControl", "66050")),
        ]
    );
    assert_eq!(f.attr(ALICE, "userAccountControl"), ["514"]);
    assert_eq!(f.attr(BOB, "userAccountControl"), ["66050"]);
    // Bind as the configured name, the person found under base_dn with AD's filter.
    let reqs = f.requests();
    assert_eq!(
        reqs[0],
        Request::Bind {
            dn: "svc@corp.test".into()
        }
    );
    assert!(
        matches!(&reqs[1], Request::Search { base, scope: 2, filter, attrs }
        if base == BASE
            && filter == "(&(objectCategory=person)(objectClass=user)(userPrincipalName=alice@corp.test))"
            && attrs.iter().any(|a| a == "userAccountControl")),
        "{:?}",
        reqs[1]
    );
    assert!(reqs.contains(&Request::Unbind));

    let c = check(&p, "disable_account", "bob@corp.test", json!({})).await;
    assert!(c.revoked);
    assert!(
        c.observed.contains("userAccountControl=66050"),
        "{}",
        c.observed
    );

    // Twice: nothing more is sent, nothing changes.
    let (r, _) = apply(&p, "disable_account", "alice@corp.test", json!({})).await;
    let again = r.unwrap();
    assert!(!again.changed, "{}", again.summary);
    assert_eq!(f.modifies().len(), 2);
    assert_eq!(f.attr(ALICE, "userAccountControl"), ["514"]);
}

#[tokio::test]
async fn ad_remove_from_groups_deletes_member_on_each_group_and_names_them() {
    let f = ad_fake();
    let p = ad(&f);
    let (r, _) = apply(&p, "remove_from_groups", "alice@corp.test", json!({})).await;
    let out = r.unwrap();
    assert!(out.changed);
    assert!(out.summary.contains("2 groups"), "{}", out.summary);
    assert!(
        out.summary.contains(VPN) && out.summary.contains(ADMINS),
        "{}",
        out.summary
    );
    let del = |g: &str| {
        (
            g.to_string(),
            vec![Change {
                op: "delete",
                attr: "member".into(),
                values: vec![ALICE.into()],
            }],
        )
    };
    assert_eq!(f.modifies(), vec![del(VPN), del(ADMINS)]);
    // Only alice left the groups; bob is still in VPN Users.
    assert_eq!(f.attr(VPN, "member"), [BOB]);
    assert!(f.attr(ADMINS, "member").is_empty());
    assert!(f.attr(ALICE, "memberOf").is_empty());
    assert_eq!(f.attr(BOB, "memberOf"), [VPN]);
    revoked_and_done_once(&f, &p, "remove_from_groups", "alice@corp.test").await;
}

#[tokio::test]
async fn ad_remove_from_listed_groups_only_touches_those() {
    let f = ad_fake();
    let p = ad(&f);
    let (r, _) = apply(
        &p,
        "remove_from_groups",
        "alice@corp.test",
        json!({"groups": ["Wiki Admins"]}),
    )
    .await;
    assert!(r.unwrap().summary.contains(ADMINS));
    assert_eq!(f.modifies().len(), 1);
    assert_eq!(f.modifies()[0].0, ADMINS);
    assert_eq!(f.attr(ALICE, "memberOf"), [VPN]);
}

#[tokio::test]
async fn ad_set_description_replaces_description() {
    let f = ad_fake();
    f.add_entry(
        ALICE,
        &[
            ("objectClass", &["user"]),
            ("objectCategory", &[PERSON]),
            ("userPrincipalName", &["alice@corp.test"]),
            ("description", &["Engineer", "second value"]),
        ],
    );
    let p = ad(&f);
    let text = "offboarded 2026-11-23 ticket #42 (*)";
    let (r, _) = apply(
        &p,
        "set_description",
        "alice@corp.test",
        json!({ "text": text }),
    )
    .await;
    assert!(r.unwrap().changed);
    assert_eq!(
        f.modifies(),
        vec![(ALICE.to_string(), replace("description", text))]
    );
    assert_eq!(f.attr(ALICE, "description"), [text]);
    let c = check(
        &p,
        "set_description",
        "alice@corp.test",
        json!({ "text": text }),
    )
    .await;
    assert!(c.revoked, "{}", c.observed);
}

#[tokio::test]
async fn ad_move_to_ou_sends_modify_dn_keeping_the_rdn() {
    let f = ad_fake();
    let mut c = fake_config(&f, "active_directory", "svc@corp.test", BASE);
    c.settings.insert(
        "disabled_ou".into(),
        toml::Value::String("OU=Disabled,DC=corp,DC=test".into()),
    );
    let p = provider(c);
    let (r, _) = apply(&p, "move_to_ou", "alice@corp.test", json!({})).await;
    assert!(r.unwrap().changed);
    assert!(f.requests().contains(&Request::ModDn {
        dn: ALICE.into(),
        new_rdn: "CN=Alice Example".into(),
        new_superior: Some("OU=Disabled,DC=corp,DC=test".into()),
    }));
    assert!(!f.exists(ALICE));
    assert!(f.exists("CN=Alice Example,OU=Disabled,DC=corp,DC=test"));
    assert!(
        check(&p, "move_to_ou", "alice@corp.test", json!({}))
            .await
            .revoked
    );
}

#[tokio::test]
async fn openldap_lock_account_writes_pwd_account_locked_time() {
    let f = FakeLdap::start();
    let admin = "cn=admin,dc=example,dc=org";
    let carol = "uid=carol,ou=people,dc=example,dc=org";
    f.add_account(admin, PASSWORD);
    f.add_entry("dc=example,dc=org", &[("objectClass", &["dcObject"])]);
    f.add_entry(
        "ou=people,dc=example,dc=org",
        &[("objectClass", &["organizationalUnit"])],
    );
    f.add_entry(
        carol,
        &[
            ("objectClass", &["inetOrgPerson", "posixAccount"]),
            ("mail", &["carol@example.org"]),
        ],
    );
    let p = provider(fake_config(&f, "openldap", admin, "dc=example,dc=org"));
    assert!(
        !check(&p, "lock_account", "carol@example.org", json!({}))
            .await
            .revoked
    );
    let (r, _) = apply(&p, "lock_account", "carol@example.org", json!({})).await;
    assert!(r.unwrap().changed);
    assert_eq!(
        f.search_filters()[1],
        "(&(|(objectClass=person)(objectClass=posixAccount))(mail=carol@example.org))"
    );
    assert_eq!(
        f.modifies(),
        vec![(
            carol.to_string(),
            replace("pwdAccountLockedTime", "000001010000Z")
        )]
    );
    assert_eq!(f.attr(carol, "pwdAccountLockedTime"), ["000001010000Z"]);
    revoked_and_done_once(&f, &p, "lock_account", "carol@example.org").await;
}

#[tokio::test]
async fn an_unknown_person_is_not_found_and_nothing_is_modified() {
    let f = ad_fake();
    let (r, notes) = apply(&ad(&f), "disable_account", "nobody@corp.test", json!({})).await;
    let err = r.unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("no entry with userPrincipalName \"nobody@corp.test\""),
        "{err}"
    );
    assert!(notes.is_empty());
    assert!(f.modifies().is_empty());
}

#[tokio::test]
async fn invalid_bind_credentials_are_a_clear_error_without_the_password() {
    let f = ad_fake();
    f.add_account("svc@corp.test", "the-real-password");
    let (r, notes) = apply(&ad(&f), "disable_account", "alice@corp.test", json!({})).await;
    let err = r.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(
        text.contains("bind failed: check bind_dn/bind_password"),
        "{text}"
    );
    assert!(
        text.contains("svc@corp.test") && text.contains("data 52e"),
        "{text}"
    );
    assert!(!text.contains('\0'));
    assert!(notes.is_empty(), "a bad password is not retried: {notes:?}");
    // Nothing but the bind reached the server.
    assert!(
        f.requests()
            .iter()
            .all(|r| matches!(r, Request::Bind { .. } | Request::Unbind))
    );
}

#[tokio::test]
async fn insufficient_access_on_the_modify_is_a_clear_permanent_error() {
    let f = ad_fake();
    f.fail_next(Op::Modify, &[50]);
    let (r, notes) = apply(&ad(&f), "disable_account", "alice@corp.test", json!({})).await;
    let err = r.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(
        text.contains(&format!(
            "insufficient access: svc@corp.test may not modify {ALICE}"
        )),
        "{text}"
    );
    assert!(text.contains("INSUFF_ACCESS_RIGHTS"), "{text}");
    assert!(notes.is_empty());
    assert_eq!(f.modifies().len(), 1);
    assert_eq!(f.attr(ALICE, "userAccountControl"), ["512"]);
}

#[tokio::test]
async fn a_busy_server_is_retried_and_the_step_succeeds() {
    let f = ad_fake();
    f.fail_next(Op::Modify, &[51]);
    let (r, notes) = apply(&ad(&f), "disable_account", "alice@corp.test", json!({})).await;
    assert!(r.unwrap().changed);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].reason.contains("busy or unavailable") && notes[0].reason.contains("rc 51"),
        "{:?}",
        notes[0]
    );
    assert_eq!(f.modifies().len(), 2);
    assert_eq!(f.attr(ALICE, "userAccountControl"), ["514"]);
    // Each attempt is a fresh session.
    let binds = f
        .requests()
        .iter()
        .filter(|r| matches!(r, Request::Bind { .. }))
        .count();
    assert_eq!(binds, 2);
}

#[tokio::test]
async fn an_unavailable_server_is_retried_a_bounded_number_of_times_then_reported() {
    let f = ad_fake();
    f.fail_next(Op::Search, &[52, 52, 52, 52]);
    let (r, notes) = apply(&ad(&f), "disable_account", "alice@corp.test", json!({})).await;
    let err = r.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    assert!(
        text.contains("busy or unavailable (search DC=corp,DC=test, rc 52)"),
        "{text}"
    );
    assert!(text.contains("UNAVAILABLE"), "{text}");
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(f.search_filters().len(), 3, "3 attempts, then stop");
    assert!(f.modifies().is_empty());
}

#[tokio::test]
async fn hostile_logins_reach_the_server_escaped_per_rfc_4515() {
    let f = ad_fake();
    let odd = "o*d(d)\\x@corp.test";
    f.add_entry(
        "CN=Odd,OU=People,DC=corp,DC=test",
        &[
            ("objectClass", &["user"]),
            ("objectCategory", &[PERSON]),
            ("userPrincipalName", &[odd]),
            ("userAccountControl", &["512"]),
        ],
    );
    let p = ad(&f);
    let prefix = "(&(objectCategory=person)(objectClass=user)(userPrincipalName=";
    for (login, escaped) in [
        ("*", "\\2a"),
        (
            "alice@corp.test)(|(userPrincipalName=*",
            "alice@corp.test\\29\\28|\\28userPrincipalName=\\2a",
        ),
        ("a\\b", "a\\5cb"),
        ("alice@corp.test\0", "alice@corp.test\\00"),
    ] {
        let before = f.search_filters().len();
        let (r, _) = apply(&p, "disable_account", login, json!({})).await;
        // Matched literally: nobody has that login (a wildcard would have matched everyone).
        assert!(
            matches!(r, Err(ProviderError::NotFound(_))),
            "{login:?}: {r:?}"
        );
        assert_eq!(
            f.search_filters()[before],
            format!("{prefix}{escaped}))"),
            "{login:?}"
        );
    }
    assert!(f.modifies().is_empty());
    // A login made of special characters finds exactly its own entry.
    let (r, _) = apply(&p, "disable_account", odd, json!({})).await;
    assert!(r.unwrap().changed);
    assert_eq!(
        f.search_filters().last().unwrap(),
        &format!("{prefix}o\\2ad\\28d\\29\\5cx@corp.test))")
    );
    assert_eq!(
        f.modifies(),
        vec![(
            "CN=Odd,OU=People,DC=corp,DC=test".to_string(),
            replace("userAccountControl", "514")
        )]
    );
    assert_eq!(f.attr(ALICE, "userAccountControl"), ["512"]);
}

#[tokio::test]
async fn busy_halfway_through_the_groups_is_retried_and_finishes_the_rest() {
    let f = ad_fake();
    // The first group's delete goes through, the second answers busy once.
    f.fail_next(Op::Modify, &[0, 51]);
    let (r, notes) = apply(&ad(&f), "remove_from_groups", "alice@corp.test", json!({})).await;
    let out = r.unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].reason.contains(&format!("modify {ADMINS}, rc 51")),
        "{:?}",
        notes[0]
    );
    let groups: Vec<String> = f.modifies().into_iter().map(|(dn, _)| dn).collect();
    assert_eq!(
        groups,
        [VPN, ADMINS, ADMINS],
        "the retry only touches what is left"
    );
    assert!(f.attr(ALICE, "memberOf").is_empty());
    assert_eq!(f.attr(VPN, "member"), [BOB]);
    // The summary names both groups, although VPN Users went in the attempt that failed.
    assert!(
        out.summary.contains(&format!("2 groups: {VPN}; {ADMINS}")),
        "{}",
        out.summary
    );
    assert!(out.changed);
}

#[tokio::test]
async fn a_membership_already_gone_from_the_group_is_not_an_error() {
    let f = ad_fake();
    // memberOf still lists Wiki Admins, but the group no longer holds alice: 16 noSuchAttribute.
    f.add_entry(
        ADMINS,
        &[("objectClass", &["top", "group"]), ("member", &[BOB])],
    );
    let (r, notes) = apply(
        &ad(&f),
        "remove_from_groups",
        "alice@corp.test",
        json!({"groups": ["Wiki Admins"]}),
    )
    .await;
    let out = r.unwrap();
    assert!(!out.changed, "{}", out.summary);
    assert!(
        out.summary.contains("already out of its groups"),
        "{}",
        out.summary
    );
    assert!(notes.is_empty());
    assert_eq!(f.modifies().len(), 1);
    assert_eq!(f.attr(ADMINS, "member"), [BOB]);
}

#[tokio::test]
async fn an_entry_gone_before_the_modify_is_a_clear_no_such_object_error() {
    let f = ad_fake();
    f.fail_next(Op::Modify, &[32]);
    let (r, notes) = apply(
        &ad(&f),
        "set_description",
        "alice@corp.test",
        json!({"text": "gone"}),
    )
    .await;
    let err = r.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(
        text.contains(&format!("modify: no such object {ALICE}")),
        "{text}"
    );
    assert!(text.contains("NO_OBJECT"), "{text}");
    assert!(notes.is_empty());
    assert!(f.attr(ALICE, "description").is_empty());
}

#[tokio::test]
async fn a_refused_start_tls_stops_before_the_bind() {
    let f = ad_fake();
    let mut c = fake_config(&f, "active_directory", "svc@corp.test", BASE);
    c.settings.remove("allow_plain");
    c.settings
        .insert("start_tls".into(), toml::Value::Boolean(true));
    let (r, _) = apply(
        &provider(c),
        "disable_account",
        "alice@corp.test",
        json!({}),
    )
    .await;
    let err = r.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(
        text.contains("connect and StartTLS ldap://127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.contains("protocolError") && text.contains("unsupported extended operation"),
        "{text}"
    );
    // StartTLS asked once (a refusal is not retried), and nothing else.
    assert_eq!(
        f.requests(),
        [Request::Extended {
            oid: "1.3.6.1.4.1.1466.20037".into()
        }]
    );
    assert!(
        !f.requests()
            .iter()
            .any(|r| matches!(r, Request::Bind { .. })),
        "the password went out in clear: {:?}",
        f.requests()
    );
}

// ---- the account acted on is read back by its id ----

async fn check_on(
    p: &LdapProvider,
    action: &str,
    login: &str,
    account: &Account,
) -> Result<CheckOutcome, ProviderError> {
    let params = serde_json::Map::new();
    let call = StepCall {
        step_id: "s",
        action,
        login,
        params: &params,
        account: Some(account),
    };
    p.check(&call, &CallCtx::silent()).await
}

#[tokio::test]
async fn ad_records_the_object_guid_and_reads_the_account_by_it_after_a_rename() {
    let f = ad_fake();
    let p = ad(&f);
    let (r, _) = apply(&p, "disable_account", "alice@corp.test", json!({})).await;
    let account = r.unwrap().account.expect("the account acted on");
    let guid = f.object_guid(ALICE);
    assert_eq!(account.id_kind, "objectGUID");
    assert_eq!(account.name, ALICE);
    // Microsoft's text form: the first three fields little-endian.
    assert_eq!(
        account.id,
        offboard::providers::ldap::guid_string(&guid).unwrap()
    );
    assert_eq!(
        offboard::providers::ldap::guid_bytes(&account.id).unwrap()[..],
        guid[..]
    );

    // Behind the tool's back: a new UPN, and enabled again.
    f.set_attr(ALICE, "userPrincipalName", &["alice.old@corp.test"]);
    f.set_attr(ALICE, "userAccountControl", &["512"]);
    let c = check_on(&p, "disable_account", "alice@corp.test", &account)
        .await
        .unwrap();
    assert!(!c.revoked, "a renamed, re-enabled account is drift: {c:?}");
    let by_guid: String = guid.iter().map(|b| format!("\\{b:02x}")).collect();
    assert_eq!(
        f.search_filters().last().unwrap(),
        &format!("(objectGUID={by_guid})")
    );
    // By login alone nobody is found now: not a revocation.
    let params = serde_json::Map::new();
    let call = StepCall {
        step_id: "s",
        action: "disable_account",
        login: "alice@corp.test",
        params: &params,
        account: None,
    };
    let err = p.check(&call, &CallCtx::silent()).await.unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");

    // Deleted since offboard saw it: gone by id, revoked.
    f.remove_entry(ALICE);
    let c = check_on(&p, "disable_account", "alice@corp.test", &account)
        .await
        .unwrap();
    assert!(
        c.revoked && c.observed.contains("no longer exists"),
        "{c:?}"
    );
    assert_eq!(c.account.as_ref(), Some(&account));
}

#[tokio::test]
async fn openldap_asks_for_entry_uuid_by_name_and_checks_by_it() {
    let f = FakeLdap::start();
    let admin = "cn=admin,dc=example,dc=org";
    let dave = "uid=dave,ou=people,dc=example,dc=org";
    f.add_account(admin, PASSWORD);
    f.add_entry("dc=example,dc=org", &[("objectClass", &["dcObject"])]);
    f.add_entry(
        dave,
        &[
            ("objectClass", &["person", "inetOrgPerson"]),
            ("mail", &["dave@example.org"]),
        ],
    );
    let p = provider(fake_config(&f, "openldap", admin, "dc=example,dc=org"));
    let (r, _) = apply(&p, "lock_account", "dave@example.org", json!({})).await;
    let account = r.unwrap().account.unwrap();
    assert_eq!(account.id_kind, "entryUUID");
    assert_eq!(account.id, f.attr(dave, "entryUUID")[0]);
    f.set_attr(dave, "mail", &["dave.new@example.org"]);
    let c = check_on(&p, "lock_account", "dave@example.org", &account)
        .await
        .unwrap();
    assert!(c.revoked, "{c:?}");
    assert_eq!(
        f.search_filters().last().unwrap(),
        &format!("(entryUUID={})", account.id)
    );
}

// ---- rollback: the pre-state an apply records, and putting it back ----

use offboard::providers::RestoreCheck;
use serde_json::Value;

/// Apply as the engine does, capturing every pre-state the apply records with `ctx.before`.
async fn apply_recording(
    p: &LdapProvider,
    action: &str,
    login: &str,
    params: Value,
) -> (ApplyOutcome, Vec<Value>) {
    let params = params.as_object().cloned().unwrap_or_default();
    let call = StepCall {
        step_id: "s",
        action,
        login,
        params: &params,
        account: None,
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let ctx = CallCtx::silent().on_before(move |v| sink.lock().unwrap().push(v.clone()));
    let out = p.apply(&call, &ctx).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    (out, seen)
}

async fn restore(
    p: &LdapProvider,
    action: &str,
    account: &Account,
    before: &Value,
) -> Result<ApplyOutcome, ProviderError> {
    let params = serde_json::Map::new();
    let call = StepCall {
        step_id: "s",
        action,
        login: "alice@corp.test",
        params: &params,
        account: Some(account),
    };
    p.restore(&call, before, &CallCtx::silent()).await
}

async fn check_restored(
    p: &LdapProvider,
    action: &str,
    account: &Account,
    before: &Value,
) -> RestoreCheck {
    let params = serde_json::Map::new();
    let call = StepCall {
        step_id: "s",
        action,
        login: "alice@corp.test",
        params: &params,
        account: Some(account),
    };
    p.check_restored(&call, before, &CallCtx::silent())
        .await
        .unwrap()
}

/// Restoring twice: the second changes nothing and sends no modification.
async fn restored_once(f: &FakeLdap, p: &LdapProvider, action: &str, a: &Account, b: &Value) {
    let sent = f.modifies().len();
    let again = restore(p, action, a, b).await.unwrap();
    assert!(!again.changed, "{again:?}");
    assert_eq!(
        f.modifies().len(),
        sent,
        "a second restore sent a modification"
    );
}

#[tokio::test]
async fn ad_disable_records_the_uac_and_restore_clears_only_that_bit() {
    let f = ad_fake();
    let p = ad(&f);
    let (out, before) = apply_recording(&p, "disable_account", "alice@corp.test", json!({})).await;
    let account = out.account.unwrap();
    assert_eq!(
        before,
        [json!({
            "id": account.id,
            "id_attribute": "objectGUID",
            "dn": ALICE,
            "userAccountControl": 512,
            "disabled": false,
        })]
    );
    let b = &before[0];
    let c = check_restored(&p, "disable_account", &account, b).await;
    assert!(!c.restored, "{c:?}");
    // Behind the tool's back another bit is set meanwhile (DONT_EXPIRE_PASSWORD): it stays.
    f.set_attr(ALICE, "userAccountControl", &["66050"]);
    let r = restore(&p, "disable_account", &account, b).await.unwrap();
    assert!(r.changed && r.summary.contains("66050 → 66048"), "{r:?}");
    assert_eq!(f.attr(ALICE, "userAccountControl"), ["66048"]);
    assert_eq!(
        f.modifies().last().unwrap(),
        &(ALICE.to_string(), replace("userAccountControl", "66048"))
    );
    // The restore read the account by its objectGUID, not by login.
    let by_guid: String = f
        .object_guid(ALICE)
        .iter()
        .map(|b| format!("\\{b:02x}"))
        .collect();
    assert!(
        f.search_filters()
            .contains(&format!("(objectGUID={by_guid})"))
    );
    let c = check_restored(&p, "disable_account", &account, b).await;
    assert!(c.restored, "{c:?}");
    assert_eq!(c.after["userAccountControl"], json!(66048));
    assert_eq!(c.after["disabled"], json!(false));
    restored_once(&f, &p, "disable_account", &account, b).await;
}

#[tokio::test]
async fn ad_an_account_disabled_before_offboard_stays_disabled_after_a_restore() {
    let f = ad_fake();
    f.set_attr(BOB, "userAccountControl", &["66050"]);
    let p = ad(&f);
    let (out, before) = apply_recording(&p, "disable_account", "bob@corp.test", json!({})).await;
    assert!(!out.changed);
    assert_eq!(before[0]["disabled"], json!(true), "{before:?}");
    let account = out.account.unwrap();
    let sent = f.modifies().len();
    let r = restore(&p, "disable_account", &account, &before[0])
        .await
        .unwrap();
    assert!(!r.changed, "{r:?}");
    assert_eq!(f.modifies().len(), sent);
    assert_eq!(f.attr(BOB, "userAccountControl"), ["66050"]);
    assert!(
        check_restored(&p, "disable_account", &account, &before[0])
            .await
            .restored
    );
}

#[tokio::test]
async fn ad_groups_come_back_by_guid_even_renamed_and_a_deleted_group_is_not_restorable() {
    let f = ad_fake();
    let p = ad(&f);
    let (out, before) =
        apply_recording(&p, "remove_from_groups", "alice@corp.test", json!({})).await;
    assert!(out.changed);
    let account = out.account.unwrap();
    let guid = |dn: &str| offboard::providers::ldap::guid_string(&f.object_guid(dn)).unwrap();
    assert_eq!(
        before,
        [json!({
            "id": account.id,
            "id_attribute": "objectGUID",
            "dn": ALICE,
            "groups": [
                {"dn": VPN, "id": guid(VPN), "member_attribute": "member"},
                {"dn": ADMINS, "id": guid(ADMINS), "member_attribute": "member"},
            ],
        })]
    );
    let b = &before[0];

    // Both groups still there: both come back, and the check reads them back.
    let r = restore(&p, "remove_from_groups", &account, b)
        .await
        .unwrap();
    assert!(r.changed && r.summary.contains("2 groups"), "{r:?}");
    assert!(f.attr(VPN, "member").contains(&ALICE.to_string()));
    assert_eq!(f.attr(ADMINS, "member"), [ALICE]);
    let c = check_restored(&p, "remove_from_groups", &account, b).await;
    assert!(c.restored, "{c:?}");
    assert_eq!(c.after["groups"].as_array().unwrap().len(), 2);
    restored_once(&f, &p, "remove_from_groups", &account, b).await;

    // Removed again; then one group is renamed and the other deleted behind the tool's back.
    let (_, before) = apply_recording(&p, "remove_from_groups", "alice@corp.test", json!({})).await;
    let b = &before[0];
    let renamed = "CN=Wiki Owners,OU=Groups,DC=corp,DC=test";
    f.rename_entry(ADMINS, renamed);
    f.remove_entry(VPN);
    let r = restore(&p, "remove_from_groups", &account, b)
        .await
        .unwrap();
    assert!(r.changed, "{r:?}");
    assert!(
        r.summary.contains(renamed) && r.summary.contains("cannot restore"),
        "{r:?}"
    );
    assert_eq!(f.attr(renamed, "member"), [ALICE]);
    let c = check_restored(&p, "remove_from_groups", &account, b).await;
    assert!(!c.restored, "a deleted group is not back: {c:?}");
    assert!(
        c.observed.contains("not restorable")
            && c.observed.contains(&format!(
                "{VPN} ({}) no longer exists",
                b["groups"][0]["id"].as_str().unwrap()
            )),
        "{c:?}"
    );
    assert_eq!(c.after["groups"][0]["dn"], json!(renamed));
}

#[tokio::test]
async fn ad_description_and_move_are_put_back() {
    let f = ad_fake();
    f.set_attr(ALICE, "description", &["Engineering"]);
    let mut c = fake_config(&f, "active_directory", "svc@corp.test", BASE);
    c.settings.insert(
        "disabled_ou".into(),
        toml::Value::String("OU=Disabled,DC=corp,DC=test".into()),
    );
    let p = provider(c);
    let (out, before) = apply_recording(
        &p,
        "set_description",
        "alice@corp.test",
        json!({"text": "offboarded"}),
    )
    .await;
    let account = out.account.unwrap();
    assert_eq!(before[0]["attribute"], json!("description"));
    assert_eq!(before[0]["values"], json!(["Engineering"]));
    let r = restore(&p, "set_description", &account, &before[0])
        .await
        .unwrap();
    assert!(r.changed, "{r:?}");
    assert_eq!(f.attr(ALICE, "description"), ["Engineering"]);
    assert!(
        check_restored(&p, "set_description", &account, &before[0])
            .await
            .restored
    );
    restored_once(&f, &p, "set_description", &account, &before[0]).await;

    let (_, before) = apply_recording(&p, "move_to_ou", "alice@corp.test", json!({})).await;
    assert_eq!(before[0]["parent"], json!("OU=People,DC=corp,DC=test"));
    let moved = "CN=Alice Example,OU=Disabled,DC=corp,DC=test";
    assert!(f.exists(moved));
    let r = restore(&p, "move_to_ou", &account, &before[0])
        .await
        .unwrap();
    assert!(r.changed, "{r:?}");
    assert!(f.exists(ALICE) && !f.exists(moved));
    let c = check_restored(&p, "move_to_ou", &account, &before[0]).await;
    assert!(c.restored, "{c:?}");
    let moddns = f
        .requests()
        .iter()
        .filter(|r| matches!(r, Request::ModDn { .. }))
        .count();
    let again = restore(&p, "move_to_ou", &account, &before[0])
        .await
        .unwrap();
    assert!(!again.changed);
    assert_eq!(
        f.requests()
            .iter()
            .filter(|r| matches!(r, Request::ModDn { .. }))
            .count(),
        moddns
    );
}

/// OpenLDAP: the lock attribute the step added is removed again; an older lockout comes back.
#[tokio::test]
async fn openldap_restore_removes_the_lock_it_added_and_puts_back_an_older_one() {
    let f = FakeLdap::start();
    let admin = "cn=admin,dc=example,dc=org";
    let carol = "uid=carol,ou=people,dc=example,dc=org";
    let erin = "uid=erin,ou=people,dc=example,dc=org";
    f.add_account(admin, PASSWORD);
    f.add_entry("dc=example,dc=org", &[("objectClass", &["dcObject"])]);
    f.add_entry(
        "ou=people,dc=example,dc=org",
        &[("objectClass", &["organizationalUnit"])],
    );
    for (dn, mail) in [(carol, "carol@example.org"), (erin, "erin@example.org")] {
        f.add_entry(
            dn,
            &[
                ("objectClass", &["person", "inetOrgPerson"]),
                ("mail", &[mail]),
            ],
        );
    }
    // Erin was locked out for a while by ppolicy (a lockout that expires).
    f.set_attr(erin, "pwdAccountLockedTime", &["20261130120000Z"]);
    let p = provider(fake_config(&f, "openldap", admin, "dc=example,dc=org"));

    let (out, before) = apply_recording(&p, "lock_account", "carol@example.org", json!({})).await;
    let account = out.account.unwrap();
    assert_eq!(
        before,
        [json!({
            "id": f.attr(carol, "entryUUID")[0],
            "id_attribute": "entryUUID",
            "dn": carol,
            "attribute": "pwdAccountLockedTime",
            "values": [],
        })]
    );
    let r = restore(&p, "lock_account", &account, &before[0])
        .await
        .unwrap();
    assert!(r.changed, "{r:?}");
    assert!(f.attr(carol, "pwdAccountLockedTime").is_empty());
    assert_eq!(
        f.modifies().last().unwrap(),
        &(
            carol.to_string(),
            vec![Change {
                op: "delete",
                attr: "pwdAccountLockedTime".into(),
                values: vec![],
            }]
        )
    );
    let c = check_restored(&p, "lock_account", &account, &before[0]).await;
    assert!(c.restored, "{c:?}");
    assert_eq!(c.after["values"], json!([]));
    restored_once(&f, &p, "lock_account", &account, &before[0]).await;

    let (out, before) = apply_recording(&p, "lock_account", "erin@example.org", json!({})).await;
    assert_eq!(before[0]["values"], json!(["20261130120000Z"]));
    let erin_account = out.account.unwrap();
    assert_eq!(f.attr(erin, "pwdAccountLockedTime"), ["000001010000Z"]);
    let c = check_restored(&p, "lock_account", &erin_account, &before[0]).await;
    assert!(!c.restored, "{c:?}");
    restore(&p, "lock_account", &erin_account, &before[0])
        .await
        .unwrap();
    assert_eq!(f.attr(erin, "pwdAccountLockedTime"), ["20261130120000Z"]);
}

/// 389-DS: nsAccountLock and a groupOfUniqueNames membership come back as they were.
#[tokio::test]
async fn ds389_restore_unlocks_and_re_adds_unique_member() {
    let f = FakeLdap::start();
    let admin = "cn=Directory Manager";
    let base = "dc=example,dc=org";
    let gina = "uid=gina,ou=people,dc=example,dc=org";
    let ops = "cn=ops,ou=groups,dc=example,dc=org";
    f.add_account(admin, PASSWORD);
    f.add_entry(base, &[("objectClass", &["dcObject"])]);
    f.add_entry(
        gina,
        &[
            ("objectClass", &["person", "inetOrgPerson"]),
            ("mail", &["gina@example.org"]),
        ],
    );
    f.add_entry(
        ops,
        &[
            ("objectClass", &["groupOfUniqueNames"]),
            ("uniqueMember", &[gina]),
        ],
    );
    let p = provider(fake_config(&f, "389ds", admin, base));
    let (out, lock_before) =
        apply_recording(&p, "lock_account", "gina@example.org", json!({})).await;
    let account = out.account.unwrap();
    assert_eq!(account.id_kind, "nsUniqueId");
    assert_eq!(lock_before[0]["attribute"], json!("nsAccountLock"));
    let (_, before) =
        apply_recording(&p, "remove_from_groups", "gina@example.org", json!({})).await;
    assert_eq!(
        before[0]["groups"],
        json!([{"dn": ops, "id": f.attr(ops, "nsUniqueId")[0], "member_attribute": "uniqueMember"}])
    );
    assert!(f.attr(ops, "uniqueMember").is_empty());
    // Undo in reverse order: the groups, then the lock.
    let r = restore(&p, "remove_from_groups", &account, &before[0])
        .await
        .unwrap();
    assert!(r.changed, "{r:?}");
    assert_eq!(f.attr(ops, "uniqueMember"), [gina]);
    assert!(
        check_restored(&p, "remove_from_groups", &account, &before[0])
            .await
            .restored
    );
    restore(&p, "lock_account", &account, &lock_before[0])
        .await
        .unwrap();
    assert!(f.attr(gina, "nsAccountLock").is_empty());
    assert!(
        check_restored(&p, "lock_account", &account, &lock_before[0])
            .await
            .restored
    );
}

#[tokio::test]
async fn restore_refuses_a_deleted_account_and_actions_without_an_inverse() {
    let f = ad_fake();
    let p = ad(&f);
    let (out, before) = apply_recording(&p, "disable_account", "alice@corp.test", json!({})).await;
    let account = out.account.unwrap();
    f.remove_entry(ALICE);
    let e = restore(&p, "disable_account", &account, &before[0])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no longer exists"), "{e}");
    let c = check_restored(&p, "disable_account", &account, &before[0]).await;
    assert!(
        !c.restored && c.observed.contains("no longer exists"),
        "{c:?}"
    );
    let e = restore(&p, "reset_password", &account, &before[0])
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot be undone: the old password cannot be restored"),
        "{e}"
    );
    let kinds = offboard::providers::ldap::KIND.actions;
    let inverse = |name: &str| kinds.iter().find(|a| a.name == name).unwrap().inverse;
    assert!(matches!(
        inverse("reset_password"),
        offboard::providers::Inverse::None(why) if why.contains("old password")
    ));
    for a in [
        "disable_account",
        "remove_from_groups",
        "lock_account",
        "set_description",
        "move_to_ou",
    ] {
        assert!(
            matches!(inverse(a), offboard::providers::Inverse::Restore(_)),
            "{a}"
        );
    }
}

#[tokio::test]
async fn a_group_the_bind_account_cannot_read_is_recorded_by_dn_and_still_removed() {
    let f = ad_fake();
    let p = ad(&f);
    // The person's search passes; reading the first group for its objectGUID is refused.
    f.fail_next(Op::Search, &[0, 50]);
    let (out, before) =
        apply_recording(&p, "remove_from_groups", "alice@corp.test", json!({})).await;
    assert!(out.changed, "{out:?}");
    assert!(f.attr(VPN, "member").iter().all(|m| m != ALICE));
    let groups = &before[0]["groups"];
    assert_eq!(
        groups[0],
        json!({"dn": VPN, "id": null, "member_attribute": "member"})
    );
    assert!(groups[1]["id"].is_string(), "{groups}");
    let account = out.account.unwrap();
    let r = restore(&p, "remove_from_groups", &account, &before[0])
        .await
        .unwrap();
    assert!(r.changed, "{r:?}");
    assert!(f.attr(VPN, "member").contains(&ALICE.to_string()));
    assert!(
        check_restored(&p, "remove_from_groups", &account, &before[0])
            .await
            .restored
    );
}
