//! The ldap provider against real directories: Samba AD DC (flavor active_directory), OpenLDAP
//! slapd with ppolicy/memberof/refint (flavor openldap) and 389 Directory Server (flavor 389ds),
//! all from Debian's packages (tests/servers/install-samba.sh, install-openldap.sh,
//! install-389ds.sh), started for this test by tests/servers/start-*.sh on 127.0.0.1 and stopped
//! (their PID only) when it ends.
//!
//! The error paths (wrong bind password, a bind without rights, an unknown person, plain LDAP
//! refused, hostile logins) are exercised against these real servers too, not a fake.
//!
//! Without the packages (or, for Samba and 389-DS, without root) each test prints a skip line, except
//! under CI (env `CI` set), where it fails.

use std::collections::HashSet;

use std::path::Path;

use std::sync::Arc;
use std::time::Duration;

use crate::common;

use common::servers::RealServer;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use offboard::providers::ldap::{LdapProvider, RetryPolicy};
use offboard::providers::{CallCtx, Provider, ProviderError, StepCall, SystemConfig};
use serde_json::{Value, json};

const ADMIN_PW: &str = "Passw0rd!Admin";
const BASE: &str = "DC=corp,DC=test";

fn tls(ca: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A bind as someone, the way a person (or an admin) would: `Err(rc)` when refused.
async fn bind(url: &str, ca: &Path, dn: &str, pw: &str) -> Result<Ldap, u32> {
    let settings = LdapConnSettings::new().set_config(tls(ca));
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, url).await.unwrap();
    ldap3::drive!(conn);
    let res = ldap.simple_bind(dn, pw).await.unwrap();
    if res.rc != 0 {
        return Err(res.rc);
    }
    Ok(ldap)
}

/// The admin's direct access, to set the scene and to change things behind the tool's back.
struct Admin {
    ldap: Ldap,
}

impl Admin {
    async fn add(&mut self, dn: &str, attrs: &[(&str, &[&str])]) {
        let attrs: Vec<(&str, HashSet<&str>)> = attrs
            .iter()
            .map(|(k, v)| (*k, v.iter().copied().collect()))
            .collect();
        let res = self.ldap.add(dn, attrs).await.unwrap();
        assert_eq!(res.rc, 0, "add {dn}: {res}");
    }

    async fn modify(&mut self, dn: &str, mods: Vec<Mod<Vec<u8>>>) {
        let res = self.ldap.modify(dn, mods).await.unwrap();
        assert_eq!(res.rc, 0, "modify {dn}: {res}");
    }

    async fn replace(&mut self, dn: &str, attr: &str, value: &str) {
        self.modify(
            dn,
            vec![Mod::Replace(
                attr.as_bytes().to_vec(),
                HashSet::from([value.as_bytes().to_vec()]),
            )],
        )
        .await;
    }

    async fn add_member(&mut self, group: &str, attr: &str, member: &str) {
        self.modify(
            group,
            vec![Mod::Add(
                attr.as_bytes().to_vec(),
                HashSet::from([member.as_bytes().to_vec()]),
            )],
        )
        .await;
    }

    async fn read(&mut self, base: &str, filter: &str, attrs: &[&str]) -> Vec<SearchEntry> {
        let (entries, _) = self
            .ldap
            .search(base, Scope::Subtree, filter, attrs.to_vec())
            .await
            .unwrap()
            .success()
            .unwrap();
        entries
            .into_iter()
            .filter(|e| !e.is_ref())
            .map(SearchEntry::construct)
            .collect()
    }

    async fn one(&mut self, filter: &str, attrs: &[&str]) -> SearchEntry {
        let mut found = self.read(BASE, filter, attrs).await;
        assert_eq!(found.len(), 1, "{filter}");
        found.pop().unwrap()
    }
}

fn first(e: &SearchEntry, attr: &str) -> Option<String> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first().cloned())
}

fn all(e: &SearchEntry, attr: &str) -> Vec<String> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn config(
    url: &str,
    flavor: &str,
    bind_dn: &str,
    pw: &str,
    ca: &Path,
    extra: &[(&str, toml::Value)],
    state_dir: &Path,
) -> SystemConfig {
    let mut settings = std::collections::BTreeMap::new();
    settings.insert("flavor".into(), toml::Value::String(flavor.into()));
    settings.insert("bind_dn".into(), toml::Value::String(bind_dn.into()));
    settings.insert("base_dn".into(), toml::Value::String(BASE.into()));
    settings.insert(
        "ca_file".into(),
        toml::Value::String(ca.display().to_string()),
    );
    for (k, v) in extra {
        settings.insert((*k).into(), v.clone());
    }
    let mut secrets = std::collections::BTreeMap::new();
    secrets.insert(
        "bind_password".into(),
        secrecy::SecretString::from(pw.to_string()),
    );
    SystemConfig {
        name: "dir".into(),
        kind: "ldap".into(),
        base_url: Some(url.into()),
        token: None,
        auth: None,
        settings,
        secrets,
        timeout: Duration::from_secs(10),
        max_concurrency: 4,
        rate_limit: None,
        state_dir: state_dir.to_path_buf(),
    }
}

/// A state dir for the provider holding its own copy of the server's CA (so the provider can
/// outlive the server's state dir), and the copy's path.
fn state_with_ca(ca: &Path) -> (tempfile::TempDir, std::path::PathBuf) {
    let state = tempfile::tempdir().unwrap();
    let copy = state.path().join("ca.pem");
    std::fs::copy(ca, &copy).unwrap();
    (state, copy)
}

fn provider(cfg: &SystemConfig) -> LdapProvider {
    LdapProvider::new(cfg).unwrap().with_retry(RetryPolicy {
        max_attempts: 2,
        base: Duration::from_millis(50),
        ..RetryPolicy::default()
    })
}

fn call<'a>(
    action: &'a str,
    login: &'a str,
    params: &'a serde_json::Map<String, Value>,
) -> StepCall<'a> {
    StepCall {
        step_id: "step",
        action,
        login,
        params,
        account: None,
    }
}

fn params(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// Apply, check it holds, apply again (no change), check again.
async fn apply_twice(p: &LdapProvider, c: &StepCall<'_>) -> String {
    let ctx = CallCtx::silent();
    let out = p
        .apply(c, &ctx)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", c.action));
    assert!(out.changed, "{}: {out:?}", c.action);
    let chk = p.check(c, &ctx).await.unwrap();
    assert!(chk.revoked, "{}: {chk:?}", c.action);
    let again = p.apply(c, &ctx).await.unwrap();
    assert!(!again.changed, "{}: {again:?}", c.action);
    assert!(
        again
            .requests
            .iter()
            .all(|r| r.method != "MODIFY" && r.method != "MODDN"),
        "{}: {again:?}",
        c.action
    );
    assert!(p.check(c, &ctx).await.unwrap().revoked, "{}", c.action);
    out.summary
}

#[tokio::test]
async fn real_samba_ad_dc() {
    // Samba, like Windows for NTLM, accepts the previous password for 60 min after a reset;
    // the test server sets that to 0, so the test sees the old password refused at once.
    let Some(server) = RealServer::samba() else {
        return;
    };
    let ca = server.ca();
    let url = "ldaps://127.0.0.1";
    let admin_dn = "Administrator@corp.test";
    let mut admin = Admin {
        ldap: bind(url, &ca, admin_dn, ADMIN_PW)
            .await
            .expect("admin bind"),
    };

    // The scene: an OU for leavers, two groups, alice (a member of both) and bob (no rights).
    let users = "CN=Users,DC=corp,DC=test";
    let disabled_ou = "OU=Disabled Users,DC=corp,DC=test";
    admin
        .add(
            disabled_ou,
            &[
                ("objectClass", &["organizationalUnit"]),
                ("ou", &["Disabled Users"]),
            ],
        )
        .await;
    let vpn = format!("CN=VPN Users,{users}");
    let finance = format!("CN=Finance\\, EU,{users}");
    for (dn, name) in [(&vpn, "VPN Users"), (&finance, "Finance, EU")] {
        admin
            .add(
                dn,
                &[
                    ("objectClass", &["group"]),
                    ("sAMAccountName", &[&name.replace(", ", "-")]),
                ],
            )
            .await;
    }
    let alice_pw = "Al1ce!Old-Passw0rd";
    let mut make_user = async |cn: &str, sam: &str, upn: &str, pw: &str| -> String {
        let dn = format!("CN={cn},{users}");
        admin
            .add(
                &dn,
                &[
                    ("objectClass", &["user"]),
                    ("sAMAccountName", &[sam]),
                    ("userPrincipalName", &[upn]),
                    ("mail", &[upn]),
                ],
            )
            .await;
        let pwd: Vec<u8> = format!("\"{pw}\"")
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        admin
            .modify(
                &dn,
                vec![Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([pwd]))],
            )
            .await;
        // NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD: the second bit must survive the disable.
        admin.replace(&dn, "userAccountControl", "66048").await;
        dn
    };
    let alice = make_user("Alice Test", "alice", "alice@corp.test", alice_pw).await;
    let bob_pw = "B0b!Passw0rd-x";
    make_user("Bob Test", "bob", "bob@corp.test", bob_pw).await;
    make_user("Carol Test", "carol", "carol@corp.test", "C4rol!Passw0rd-x").await;
    for g in [&vpn, &finance] {
        admin.add_member(g, "member", &alice).await;
    }
    assert!(bind(url, &ca, "alice@corp.test", alice_pw).await.is_ok());

    let markers = tempfile::tempdir().unwrap();
    let cfg = config(
        url,
        "active_directory",
        admin_dn,
        ADMIN_PW,
        &ca,
        &[("disabled_ou", toml::Value::String(disabled_ou.into()))],
        markers.path(),
    );
    let p = provider(&cfg);
    let none = serde_json::Map::new();
    let ctx = CallCtx::silent();
    let login = "alice@corp.test";

    // reset_password: the old password stops working; nobody learns the new one.
    let before = admin.one("(sAMAccountName=alice)", &["pwdLastSet"]).await;
    let summary = apply_twice(&p, &call("reset_password", login, &none)).await;
    assert!(
        summary.starts_with(&format!("reset the password of {alice}")),
        "{summary}"
    );
    let after = admin.one("(sAMAccountName=alice)", &["pwdLastSet"]).await;
    assert_ne!(first(&before, "pwdLastSet"), first(&after, "pwdLastSet"));
    assert_eq!(bind(url, &ca, login, alice_pw).await.err(), Some(49));

    // disable_account: 66048 → 66050, the user can no longer bind.
    let summary = apply_twice(&p, &call("disable_account", login, &none)).await;
    assert_eq!(
        summary,
        format!("disabled {alice} (userAccountControl: 66048 → 66050)")
    );
    let e = admin
        .one("(sAMAccountName=alice)", &["userAccountControl"])
        .await;
    assert_eq!(first(&e, "userAccountControl").as_deref(), Some("66050"));
    // Drift: someone re-enables the account behind the tool's back.
    admin.replace(&alice, "userAccountControl", "66048").await;
    let chk = p
        .check(&call("disable_account", login, &none), &ctx)
        .await
        .unwrap();
    assert!(!chk.revoked, "{chk:?}");
    assert_eq!(
        chk.observed,
        "userAccountControl=66048 (0x10200, ACCOUNTDISABLE clear)"
    );
    assert!(
        p.apply(&call("disable_account", login, &none), &ctx)
            .await
            .unwrap()
            .changed
    );

    // set_description: literal text.
    let text = params(json!({"text": "offboarded 2026-11-22 ticket #123 {{ not a template }}"}));
    apply_twice(&p, &call("set_description", login, &text)).await;
    let e = admin.one("(sAMAccountName=alice)", &["description"]).await;
    assert_eq!(
        first(&e, "description").as_deref(),
        Some("offboarded 2026-11-22 ticket #123 {{ not a template }}")
    );

    // remove_from_groups: first only the listed one (by CN), then all; evidence names them.
    let only_vpn = params(json!({"groups": ["vpn users"]}));
    let summary = apply_twice(&p, &call("remove_from_groups", login, &only_vpn)).await;
    assert_eq!(summary, format!("removed {alice} from 1 group: {vpn}"));
    let e = admin.one("(sAMAccountName=alice)", &["memberOf"]).await;
    assert_eq!(all(&e, "memberOf"), vec![finance.clone()]);
    let chk = p
        .check(&call("remove_from_groups", login, &none), &ctx)
        .await
        .unwrap();
    assert!(!chk.revoked);
    assert!(chk.observed.contains("Finance"), "{chk:?}");
    let summary = apply_twice(&p, &call("remove_from_groups", login, &none)).await;
    assert_eq!(summary, format!("removed {alice} from 1 group: {finance}"));
    // Drift: added back to a group.
    admin.add_member(&vpn, "member", &alice).await;
    let chk = p
        .check(&call("remove_from_groups", login, &none), &ctx)
        .await
        .unwrap();
    assert!(
        !chk.revoked && chk.observed.contains("VPN Users"),
        "{chk:?}"
    );
    assert!(
        p.apply(&call("remove_from_groups", login, &none), &ctx)
            .await
            .unwrap()
            .changed
    );

    // move_to_ou: the RDN is kept, the person is still found afterwards.
    let summary = apply_twice(&p, &call("move_to_ou", login, &none)).await;
    let moved = format!("CN=Alice Test,{disabled_ou}");
    assert_eq!(summary, format!("moved {alice} to {moved}"));
    let e = admin
        .one("(sAMAccountName=alice)", &["userAccountControl"])
        .await;
    assert_eq!(e.dn, moved);
    for action in [
        "disable_account",
        "remove_from_groups",
        "reset_password",
        "set_description",
    ] {
        let c = if action == "set_description" {
            &text
        } else {
            &none
        };
        let chk = p.check(&call(action, login, c), &ctx).await.unwrap();
        assert!(chk.revoked, "{action} after the move: {chk:?}");
    }

    // Other logins: sAMAccountName, StartTLS.
    let mut by_sam = cfg.clone();
    by_sam.settings.insert(
        "user_attribute".into(),
        toml::Value::String("sAMAccountName".into()),
    );
    let chk = provider(&by_sam)
        .check(&call("disable_account", "alice", &none), &ctx)
        .await
        .unwrap();
    assert!(chk.revoked);
    let mut starttls = cfg.clone();
    starttls.base_url = Some("ldap://127.0.0.1".into());
    starttls
        .settings
        .insert("start_tls".into(), toml::Value::Boolean(true));
    let out = provider(&starttls)
        .apply(&call("disable_account", "carol@corp.test", &none), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{out:?}");

    // Error paths against the real server.
    let mut wrong = cfg.clone();
    wrong.secrets.insert(
        "bind_password".into(),
        secrecy::SecretString::from("Wr0ng-Secret-4711".to_string()),
    );
    let err = provider(&wrong)
        .apply(&call("disable_account", login, &none), &ctx)
        .await
        .unwrap_err();
    let m = err.to_string();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(
        m.contains("bind failed: check bind_dn/bind_password"),
        "{m}"
    );
    assert!(!m.contains("Wr0ng-Secret-4711"), "{m}");

    let as_bob = config(
        url,
        "active_directory",
        "bob@corp.test",
        bob_pw,
        &ca,
        &[],
        markers.path(),
    );
    let err = provider(&as_bob)
        .apply(&call("set_description", "carol@corp.test", &text), &ctx)
        .await
        .unwrap_err();
    let m = err.to_string();
    assert!(
        m.contains("insufficient access") || m.contains("unwilling"),
        "{m}"
    );
    assert!(!m.contains(bob_pw), "{m}");

    let err = p
        .apply(&call("disable_account", "nobody@corp.test", &none), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");

    // Hostile logins find nobody rather than everybody.
    for hostile in [
        "*",
        "alice@corp.test)(cn=*",
        "*)(objectClass=*",
        "a\\2a",
        "al\0ice@corp.test",
    ] {
        let err = p
            .apply(&call("disable_account", hostile, &none), &ctx)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::NotFound(_)),
            "{hostile:?}: {err:?}"
        );
    }

    // Plain LDAP: refused unless the runbook says so; unicodePwd never over it.
    let mut plain = cfg.clone();
    plain.base_url = Some("ldap://127.0.0.1".into());
    let err = LdapProvider::new(&plain).unwrap_err().to_string();
    assert!(err.contains("allow_plain"), "{err}");
    plain
        .settings
        .insert("allow_plain".into(), toml::Value::Boolean(true));
    let pp = provider(&plain);
    assert!(
        pp.check(&call("disable_account", login, &none), &ctx)
            .await
            .unwrap()
            .revoked
    );
    let err = pp
        .apply(&call("reset_password", "bob@corp.test", &none), &ctx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("LDAPS or StartTLS"), "{err}");

    // A check with no local record of the reset says it cannot tell.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut other_machine = cfg.clone();
    other_machine.state_dir = elsewhere.path().to_path_buf();
    let err = provider(&other_machine)
        .check(&call("reset_password", login, &none), &ctx)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no record of a password reset"),
        "{err}"
    );

    drop(admin);
    drop(server);
}

/// Rollback on a real Samba AD DC: disable and remove from groups (one group renamed behind
/// the tool's back afterwards), then restore in reverse order from the pre-states the applies
/// recorded. Read back with plain LDAP searches, and by a bind as the person.
#[tokio::test]
async fn real_samba_ad_rollback() {
    let Some(server) = RealServer::samba() else {
        return;
    };
    let ca = server.ca();
    let url = "ldaps://127.0.0.1";
    let admin_dn = "Administrator@corp.test";
    let mut admin = Admin {
        ldap: bind(url, &ca, admin_dn, ADMIN_PW)
            .await
            .expect("admin bind"),
    };
    let users = "CN=Users,DC=corp,DC=test";
    let vpn = format!("CN=VPN Users,{users}");
    let finance = format!("CN=Finance\\, EU,{users}");
    for (dn, sam) in [(&vpn, "VPN Users"), (&finance, "Finance-EU")] {
        admin
            .add(
                dn,
                &[("objectClass", &["group"]), ("sAMAccountName", &[sam])],
            )
            .await;
    }
    let rita = format!("CN=Rita Test,{users}");
    let rita_pw = "R1ta!Passw0rd-x";
    admin
        .add(
            &rita,
            &[
                ("objectClass", &["user"]),
                ("sAMAccountName", &["rita"]),
                ("userPrincipalName", &["rita@corp.test"]),
            ],
        )
        .await;
    let pwd: Vec<u8> = format!("\"{rita_pw}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    admin
        .modify(
            &rita,
            vec![Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([pwd]))],
        )
        .await;
    admin.replace(&rita, "userAccountControl", "66048").await;
    for g in [&vpn, &finance] {
        admin.add_member(g, "member", &rita).await;
    }
    let login = "rita@corp.test";
    assert!(bind(url, &ca, login, rita_pw).await.is_ok());

    let state = tempfile::tempdir().unwrap();
    let p = provider(&config(
        url,
        "active_directory",
        admin_dn,
        ADMIN_PW,
        &ca,
        &[],
        state.path(),
    ));
    let none = serde_json::Map::new();
    let recorded = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let sink = recorded.clone();
    let ctx = CallCtx::silent().on_before(move |v| sink.lock().unwrap().push(v.clone()));
    let mut steps = Vec::new();
    for action in ["disable_account", "remove_from_groups"] {
        let out = p.apply(&call(action, login, &none), &ctx).await.unwrap();
        assert!(out.changed, "{action}: {out:?}");
        let before = recorded.lock().unwrap().pop().expect("a pre-state");
        steps.push((action, out.account.unwrap(), before));
    }
    assert_eq!(steps[0].2["userAccountControl"], json!(66048));
    assert_eq!(steps[0].2["disabled"], json!(false));
    assert_eq!(steps[0].2["dn"], json!(rita));
    let groups = steps[1].2["groups"].as_array().unwrap().clone();
    let mut dns: Vec<&str> = groups.iter().map(|g| g["dn"].as_str().unwrap()).collect();
    dns.sort();
    assert_eq!(dns, [finance.as_str(), vpn.as_str()]);
    assert!(
        groups
            .iter()
            .all(|g| g["id"].as_str().is_some_and(|i| i.len() == 36))
    );
    assert_eq!(bind(url, &ca, login, rita_pw).await.err(), Some(49));
    let e = admin.one("(sAMAccountName=rita)", &["memberOf"]).await;
    assert!(all(&e, "memberOf").is_empty());

    // Behind the tool's back: the VPN group is renamed (its objectGUID stays).
    let renamed = format!("CN=Remote Access,{users}");
    let res = admin
        .ldap
        .modifydn(&vpn, "CN=Remote Access", true, None)
        .await
        .unwrap();
    assert_eq!(res.rc, 0, "{res}");

    // Rollback: reverse order, from the recorded pre-states.
    let silent = CallCtx::silent();
    for (action, account, before) in steps.iter().rev() {
        let c = StepCall {
            account: Some(account),
            ..call(action, login, &none)
        };
        let r = p.restore(&c, before, &silent).await.unwrap();
        assert!(r.changed, "{action}: {r:?}");
        let chk = p.check_restored(&c, before, &silent).await.unwrap();
        assert!(chk.restored, "{action}: {chk:?}");
        let again = p.restore(&c, before, &silent).await.unwrap();
        assert!(!again.changed, "{action}: {again:?}");
        assert!(
            again.requests.iter().all(|r| r.method != "MODIFY"),
            "{action}: {again:?}"
        );
    }
    // Read independently: enabled with the other bits as they were, in both groups again.
    let e = admin
        .one("(sAMAccountName=rita)", &["userAccountControl", "memberOf"])
        .await;
    assert_eq!(first(&e, "userAccountControl").as_deref(), Some("66048"));
    let mut member_of = all(&e, "memberOf");
    member_of.sort();
    assert_eq!(member_of, [finance.clone(), renamed.clone()]);
    let g = admin.one("(sAMAccountName=VPN Users)", &["member"]).await;
    assert_eq!(g.dn, renamed);
    assert_eq!(all(&g, "member"), [rita.as_str()]);
    // And the person can sign in again.
    assert!(bind(url, &ca, login, rita_pw).await.is_ok());
}

#[tokio::test]
async fn real_openldap_slapd() {
    let Some(server) = RealServer::openldap() else {
        return;
    };
    let port = server.port;
    let ca = server.ca();
    let url = format!("ldaps://127.0.0.1:{}", port + 1);
    let base = "dc=corp,dc=test";
    let admin_dn = "cn=admin,dc=corp,dc=test";
    let mut admin = Admin {
        ldap: bind(&url, &ca, admin_dn, ADMIN_PW)
            .await
            .expect("admin bind"),
    };

    let person = async |admin: &mut Admin, uid: &str, pw: &str| -> String {
        let dn = format!("uid={uid},ou=people,{base}");
        let mail = format!("{uid}@corp.test");
        admin
            .add(
                &dn,
                &[
                    ("objectClass", &["inetOrgPerson"]),
                    ("uid", &[uid]),
                    ("cn", &[uid]),
                    ("sn", &["Test"]),
                    ("mail", &[&mail]),
                    ("userPassword", &[pw]),
                ],
            )
            .await;
        dn
    };
    let alice_pw = "alice-secret-1";
    let alice = person(&mut admin, "alice", alice_pw).await;
    let bob_pw = "bob-secret-1";
    person(&mut admin, "bob", bob_pw).await;
    let staff = format!("cn=staff,ou=groups,{base}");
    let vpn = format!("cn=vpn,ou=groups,{base}");
    let uniq = format!("cn=uniq,ou=groups,{base}");
    admin
        .add(
            &vpn,
            &[
                ("objectClass", &["groupOfNames"]),
                ("cn", &["vpn"]),
                ("member", &[admin_dn]),
            ],
        )
        .await;
    admin
        .add(
            &uniq,
            &[
                ("objectClass", &["groupOfUniqueNames"]),
                ("cn", &["uniq"]),
                ("uniqueMember", &[admin_dn]),
            ],
        )
        .await;
    admin.add_member(&staff, "member", &alice).await;
    admin.add_member(&vpn, "member", &alice).await;
    admin.add_member(&uniq, "uniqueMember", &alice).await;
    assert!(bind(&url, &ca, &alice, alice_pw).await.is_ok());

    // The provider's copy of the CA outlives the server's state dir (the last check below).
    let (state, ca) = state_with_ca(&ca);
    let cfg = config(&url, "openldap", admin_dn, ADMIN_PW, &ca, &[], state.path());
    let p = provider(&cfg);
    let none = serde_json::Map::new();
    let ctx = CallCtx::silent();
    let login = "alice@corp.test";

    // lock_account: ppolicy's permanent lock; the person's bind then fails.
    let summary = apply_twice(&p, &call("lock_account", login, &none)).await;
    assert_eq!(
        summary,
        format!(
            "locked {alice} (pwdAccountLockedTime=000001010000Z; was: pwdAccountLockedTime \
             absent (not locked))"
        )
    );
    assert_eq!(bind(&url, &ca, &alice, alice_pw).await.err(), Some(49));
    // Drift: the lock is removed behind the tool's back.
    admin
        .modify(
            &alice,
            vec![Mod::Delete(
                b"pwdAccountLockedTime".to_vec(),
                HashSet::new(),
            )],
        )
        .await;
    assert!(bind(&url, &ca, &alice, alice_pw).await.is_ok());
    let chk = p
        .check(&call("lock_account", login, &none), &ctx)
        .await
        .unwrap();
    assert!(!chk.revoked);
    assert_eq!(chk.observed, "pwdAccountLockedTime absent (not locked)");
    assert!(
        p.apply(&call("lock_account", login, &none), &ctx)
            .await
            .unwrap()
            .changed
    );

    // remove_from_groups: groupOfNames and groupOfUniqueNames, every one named in the summary.
    let summary = apply_twice(&p, &call("remove_from_groups", login, &none)).await;
    assert!(
        summary.starts_with(&format!("removed {alice} from 3 groups: ")),
        "{summary}"
    );
    for g in [&staff, &vpn, &uniq] {
        assert!(summary.contains(g.as_str()), "{summary}");
    }
    let e = admin.one_in(base, "(uid=alice)", &["memberOf"]).await;
    assert!(all(&e, "memberOf").is_empty(), "{e:?}");
    // Drift: back in a group.
    admin.add_member(&vpn, "member", &alice).await;
    let chk = p
        .check(&call("remove_from_groups", login, &none), &ctx)
        .await
        .unwrap();
    assert!(!chk.revoked);
    assert_eq!(chk.observed, format!("still member of {vpn}"));

    // StartTLS on the plain port, and uid as the login.
    let mut starttls = cfg.clone();
    starttls.base_url = Some(format!("ldap://127.0.0.1:{port}"));
    starttls
        .settings
        .insert("start_tls".into(), toml::Value::Boolean(true));
    starttls
        .settings
        .insert("user_attribute".into(), toml::Value::String("uid".into()));
    let out = provider(&starttls)
        .apply(
            &call(
                "remove_from_groups",
                "alice",
                &params(json!({"groups": ["vpn"]})),
            ),
            &ctx,
        )
        .await
        .unwrap();
    assert_eq!(out.summary, format!("removed {alice} from 1 group: {vpn}"));

    // Error paths against the real server.
    let mut wrong = cfg.clone();
    wrong.secrets.insert(
        "bind_password".into(),
        secrecy::SecretString::from("Wr0ng-Secret-4711".to_string()),
    );
    let err = provider(&wrong)
        .apply(&call("lock_account", login, &none), &ctx)
        .await
        .unwrap_err();
    let m = err.to_string();
    assert!(
        m.contains("bind failed: check bind_dn/bind_password") && !m.contains("Wr0ng"),
        "{m}"
    );

    let bob_dn = format!("uid=bob,ou=people,{base}");
    let as_bob = config(&url, "openldap", &bob_dn, bob_pw, &ca, &[], state.path());
    // Bob may read alice but not write: OpenLDAP answers 50. (Unlock first, or the apply
    // would see the lock in place and change nothing.)
    admin
        .modify(
            &alice,
            vec![Mod::Delete(
                b"pwdAccountLockedTime".to_vec(),
                HashSet::new(),
            )],
        )
        .await;
    let err = provider(&as_bob)
        .apply(&call("lock_account", login, &none), &ctx)
        .await
        .unwrap_err();
    let m = err.to_string();
    assert!(
        m.contains("insufficient access") && m.contains(&bob_dn),
        "{m}"
    );
    assert!(!m.contains(bob_pw), "{m}");

    let err = p
        .apply(&call("lock_account", "nobody@corp.test", &none), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    for hostile in ["*", "*)(uid=*", "alice@corp.test)(|(uid=*", "\\", "\0"] {
        let err = p
            .apply(&call("lock_account", hostile, &none), &ctx)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::NotFound(_)),
            "{hostile:?}: {err:?}"
        );
    }
    let err = p
        .apply(&call("disable_account", login, &none), &ctx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lock_account"), "{err}");

    // A server that is gone: transient, after the retries.
    drop(admin);
    drop(server);
    let err = p
        .check(&call("lock_account", login, &none), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
}

impl Admin {
    async fn one_in(&mut self, base: &str, filter: &str, attrs: &[&str]) -> SearchEntry {
        let mut found = self.read(base, filter, attrs).await;
        assert_eq!(found.len(), 1, "{filter}");
        found.pop().unwrap()
    }
}

/// Rollback on a real OpenLDAP slapd (ppolicy, memberof): the lock and the group removals are
/// undone from the recorded pre-states, in reverse order; the person binds again.
#[tokio::test]
async fn real_openldap_rollback() {
    let Some(server) = RealServer::openldap() else {
        return;
    };
    let ca = server.ca();
    let url = format!("ldaps://127.0.0.1:{}", server.port + 1);
    let base = "dc=corp,dc=test";
    let admin_dn = "cn=admin,dc=corp,dc=test";
    let mut admin = Admin {
        ldap: bind(&url, &ca, admin_dn, ADMIN_PW)
            .await
            .expect("admin bind"),
    };
    let dana = format!("uid=dana,ou=people,{base}");
    let dana_pw = "dana-secret-1";
    admin
        .add(
            &dana,
            &[
                ("objectClass", &["inetOrgPerson"]),
                ("uid", &["dana"]),
                ("cn", &["dana"]),
                ("sn", &["Test"]),
                ("mail", &["dana@corp.test"]),
                ("userPassword", &[dana_pw]),
            ],
        )
        .await;
    let vpn = format!("cn=vpn,ou=groups,{base}");
    let uniq = format!("cn=uniq,ou=groups,{base}");
    admin
        .add(
            &vpn,
            &[
                ("objectClass", &["groupOfNames"]),
                ("cn", &["vpn"]),
                ("member", &[admin_dn, &dana]),
            ],
        )
        .await;
    admin
        .add(
            &uniq,
            &[
                ("objectClass", &["groupOfUniqueNames"]),
                ("cn", &["uniq"]),
                ("uniqueMember", &[admin_dn, &dana]),
            ],
        )
        .await;
    assert!(bind(&url, &ca, &dana, dana_pw).await.is_ok());

    let (state, ca) = state_with_ca(&ca);
    let p = provider(&config(
        &url,
        "openldap",
        admin_dn,
        ADMIN_PW,
        &ca,
        &[],
        state.path(),
    ));
    let none = serde_json::Map::new();
    let login = "dana@corp.test";
    let recorded = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let sink = recorded.clone();
    let ctx = CallCtx::silent().on_before(move |v| sink.lock().unwrap().push(v.clone()));
    let mut steps = Vec::new();
    for action in ["lock_account", "remove_from_groups"] {
        let out = p.apply(&call(action, login, &none), &ctx).await.unwrap();
        assert!(out.changed, "{action}: {out:?}");
        let before = recorded.lock().unwrap().pop().expect("a pre-state");
        steps.push((action, out.account.unwrap(), before));
    }
    assert_eq!(steps[0].2["values"], json!([]));
    let mut groups: Vec<(String, String)> = steps[1].2["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["dn"].as_str().unwrap().to_string(),
                g["member_attribute"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        [
            (uniq.clone(), "uniqueMember".to_string()),
            (vpn.clone(), "member".to_string())
        ]
    );
    assert_eq!(bind(&url, &ca, &dana, dana_pw).await.err(), Some(49));

    let silent = CallCtx::silent();
    for (action, account, before) in steps.iter().rev() {
        let c = StepCall {
            account: Some(account),
            ..call(action, login, &none)
        };
        let r = p.restore(&c, before, &silent).await.unwrap();
        assert!(r.changed, "{action}: {r:?}");
        let chk = p.check_restored(&c, before, &silent).await.unwrap();
        assert!(chk.restored, "{action}: {chk:?}");
        let again = p.restore(&c, before, &silent).await.unwrap();
        assert!(!again.changed, "{action}: {again:?}");
    }
    let e = admin
        .one_in(base, "(uid=dana)", &["pwdAccountLockedTime", "memberOf"])
        .await;
    assert_eq!(first(&e, "pwdAccountLockedTime"), None);
    assert!(all(&e, "memberOf").contains(&vpn), "{e:?}");
    let g = admin
        .one_in(&uniq, "(objectClass=*)", &["uniqueMember"])
        .await;
    assert!(all(&g, "uniqueMember").contains(&dana), "{g:?}");
    assert!(bind(&url, &ca, &dana, dana_pw).await.is_ok());
}

#[tokio::test]
async fn real_389ds() {
    let Some(server) = RealServer::ds389() else {
        return;
    };
    let port = server.port;
    let ca = server.ca();
    let url = format!("ldaps://127.0.0.1:{}", port + 1);
    let base = "dc=corp,dc=test";
    let admin_dn = "cn=Directory Manager";
    let mut admin = Admin {
        ldap: bind(&url, &ca, admin_dn, ADMIN_PW)
            .await
            .expect("admin bind"),
    };

    // alice as 389-DS's own tools make a person (nsPerson + nsAccount + posixAccount, found by
    // the posixAccount half of the filter); bob as a plain inetOrgPerson (the person half).
    let alice = format!("uid=alice,ou=People,{base}");
    let alice_pw = "alice-secret-389";
    admin
        .add(
            &alice,
            &[
                (
                    "objectClass",
                    &["nsPerson", "nsOrgPerson", "nsAccount", "posixAccount"],
                ),
                ("uid", &["alice"]),
                ("cn", &["Alice Test"]),
                ("displayName", &["Alice Test"]),
                ("mail", &["alice@corp.test"]),
                ("uidNumber", &["2001"]),
                ("gidNumber", &["2001"]),
                ("homeDirectory", &["/home/alice"]),
                ("userPassword", &[alice_pw]),
            ],
        )
        .await;
    let bob = format!("uid=bob,ou=People,{base}");
    let bob_pw = "bob-secret-389";
    admin
        .add(
            &bob,
            &[
                ("objectClass", &["inetOrgPerson"]),
                ("uid", &["bob"]),
                ("cn", &["Bob Test"]),
                ("sn", &["Test"]),
                ("mail", &["bob@corp.test"]),
                ("userPassword", &[bob_pw]),
            ],
        )
        .await;
    // Groups: dscreate's sample cn=demo_group (groupOfNames) and our own groupOfUniqueNames.
    let demo = format!("cn=demo_group,ou=Groups,{base}");
    let vpn = format!("cn=vpn,ou=Groups,{base}");
    admin
        .add(
            &vpn,
            &[
                ("objectClass", &["groupOfUniqueNames"]),
                ("cn", &["vpn"]),
                ("uniqueMember", &[admin_dn]),
            ],
        )
        .await;
    admin.add_member(&demo, "member", &alice).await;
    admin.add_member(&vpn, "uniqueMember", &alice).await;
    assert!(bind(&url, &ca, &alice, alice_pw).await.is_ok());

    let (state, ca) = state_with_ca(&ca);
    let cfg = config(&url, "389ds", admin_dn, ADMIN_PW, &ca, &[], state.path());
    let p = provider(&cfg);
    let none = serde_json::Map::new();
    let ctx = CallCtx::silent();
    let login = "alice@corp.test";

    // lock_account: nsAccountLock true; the person's bind is then refused as inactivated (53).
    let chk = p
        .check(&call("lock_account", login, &none), &ctx)
        .await
        .unwrap();
    assert!(!chk.revoked, "{chk:?}");
    assert_eq!(chk.observed, "nsAccountLock=absent");
    let summary = apply_twice(&p, &call("lock_account", login, &none)).await;
    assert_eq!(
        summary,
        format!("locked {alice} (nsAccountLock=true; was: nsAccountLock=absent)")
    );
    let e = admin.one_in(base, "(uid=alice)", &["nsAccountLock"]).await;
    assert_eq!(
        first(&e, "nsAccountLock").map(|v| v.to_ascii_lowercase()),
        Some("true".into())
    );
    assert_eq!(bind(&url, &ca, &alice, alice_pw).await.err(), Some(53));
    // bob is untouched.
    assert!(bind(&url, &ca, &bob, bob_pw).await.is_ok());
    // Drift: the lock is lifted behind the tool's back; alice can bind again.
    admin.replace(&alice, "nsAccountLock", "false").await;
    assert!(bind(&url, &ca, &alice, alice_pw).await.is_ok());
    let chk = p
        .check(&call("lock_account", login, &none), &ctx)
        .await
        .unwrap();
    assert!(!chk.revoked, "{chk:?}");
    assert_eq!(chk.observed, "nsAccountLock=false");
    let out = p
        .apply(&call("lock_account", login, &none), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{out:?}");
    assert_eq!(bind(&url, &ca, &alice, alice_pw).await.err(), Some(53));

    // remove_from_groups: groupOfNames and groupOfUniqueNames, every one named in the summary.
    let summary = apply_twice(&p, &call("remove_from_groups", login, &none)).await;
    assert!(
        summary.starts_with(&format!("removed {alice} from 2 groups: ")),
        "{summary}"
    );
    for g in [&demo, &vpn] {
        assert!(summary.contains(g.as_str()), "{summary}");
    }
    let left = admin
        .read(
            base,
            &format!("(|(member={alice})(uniqueMember={alice}))"),
            &["cn"],
        )
        .await;
    assert!(left.is_empty(), "{left:?}");
    // vpn keeps its other member.
    let e = admin.one_in(base, "(cn=vpn)", &["uniqueMember"]).await;
    assert_eq!(all(&e, "uniqueMember"), vec![admin_dn.to_string()]);
    // Drift: back in a group.
    admin.add_member(&demo, "member", &alice).await;
    let chk = p
        .check(&call("remove_from_groups", login, &none), &ctx)
        .await
        .unwrap();
    assert!(!chk.revoked, "{chk:?}");
    assert_eq!(chk.observed, format!("still member of {demo}"));

    // StartTLS on the plain port with the same CA, and uid as the login (bob, the person half).
    let mut starttls = cfg.clone();
    starttls.base_url = Some(format!("ldap://127.0.0.1:{port}"));
    starttls
        .settings
        .insert("start_tls".into(), toml::Value::Boolean(true));
    starttls
        .settings
        .insert("user_attribute".into(), toml::Value::String("uid".into()));
    let out = provider(&starttls)
        .apply(&call("lock_account", "bob", &none), &ctx)
        .await
        .unwrap();
    assert_eq!(
        out.summary,
        format!("locked {bob} (nsAccountLock=true; was: nsAccountLock=absent)")
    );
    assert_eq!(bind(&url, &ca, &bob, bob_pw).await.err(), Some(53));

    // Error paths against the real server.
    let err = p
        .apply(&call("lock_account", "nobody@corp.test", &none), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    let m = err.to_string();
    assert!(m.contains("nobody@corp.test"), "{m}");
    // Someone offboard never saw: no proof of anything, so not a revocation.
    let err = p
        .check(&call("lock_account", "nobody@corp.test", &none), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    for hostile in ["*", "*)(uid=*", "alice@corp.test)(|(uid=*"] {
        let err = p
            .apply(&call("lock_account", hostile, &none), &ctx)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProviderError::NotFound(_)),
            "{hostile:?}: {err:?}"
        );
    }
    let mut wrong = cfg.clone();
    wrong.secrets.insert(
        "bind_password".into(),
        secrecy::SecretString::from("Wr0ng-Secret-4711".to_string()),
    );
    let err = provider(&wrong)
        .apply(&call("lock_account", login, &none), &ctx)
        .await
        .unwrap_err();
    let m = err.to_string();
    assert!(
        m.contains("bind failed: check bind_dn/bind_password") && !m.contains("Wr0ng"),
        "{m}"
    );
    let err = p
        .apply(&call("disable_account", login, &none), &ctx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lock_account"), "{err}");

    drop(admin);
    drop(server);
}

/// Rollback on a real 389 Directory Server: nsAccountLock and the memberships (groupOfNames and
/// groupOfUniqueNames) come back from the recorded pre-states; the person binds again.
#[tokio::test]
async fn real_389ds_rollback() {
    let Some(server) = RealServer::ds389() else {
        return;
    };
    let ca = server.ca();
    let url = format!("ldaps://127.0.0.1:{}", server.port + 1);
    let base = "dc=corp,dc=test";
    let admin_dn = "cn=Directory Manager";
    let mut admin = Admin {
        ldap: bind(&url, &ca, admin_dn, ADMIN_PW)
            .await
            .expect("admin bind"),
    };
    let erin = format!("uid=erin,ou=People,{base}");
    let erin_pw = "erin-secret-389";
    admin
        .add(
            &erin,
            &[
                ("objectClass", &["inetOrgPerson"]),
                ("uid", &["erin"]),
                ("cn", &["Erin Test"]),
                ("sn", &["Test"]),
                ("mail", &["erin@corp.test"]),
                ("userPassword", &[erin_pw]),
            ],
        )
        .await;
    let demo = format!("cn=demo_group,ou=Groups,{base}");
    let vpn = format!("cn=vpn,ou=Groups,{base}");
    admin
        .add(
            &vpn,
            &[
                ("objectClass", &["groupOfUniqueNames"]),
                ("cn", &["vpn"]),
                ("uniqueMember", &[admin_dn, &erin]),
            ],
        )
        .await;
    admin.add_member(&demo, "member", &erin).await;
    assert!(bind(&url, &ca, &erin, erin_pw).await.is_ok());

    let (state, ca) = state_with_ca(&ca);
    let p = provider(&config(
        &url,
        "389ds",
        admin_dn,
        ADMIN_PW,
        &ca,
        &[],
        state.path(),
    ));
    let none = serde_json::Map::new();
    let login = "erin@corp.test";
    let recorded = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let sink = recorded.clone();
    let ctx = CallCtx::silent().on_before(move |v| sink.lock().unwrap().push(v.clone()));
    let mut steps = Vec::new();
    for action in ["lock_account", "remove_from_groups"] {
        let out = p.apply(&call(action, login, &none), &ctx).await.unwrap();
        assert!(out.changed, "{action}: {out:?}");
        let before = recorded.lock().unwrap().pop().expect("a pre-state");
        steps.push((action, out.account.unwrap(), before));
    }
    assert_eq!(steps[0].1.id_kind, "nsUniqueId");
    assert_eq!(steps[0].2["attribute"], json!("nsAccountLock"));
    assert_eq!(steps[0].2["values"], json!([]));
    assert_eq!(steps[1].2["groups"].as_array().unwrap().len(), 2);
    assert!(bind(&url, &ca, &erin, erin_pw).await.is_err());

    let silent = CallCtx::silent();
    for (action, account, before) in steps.iter().rev() {
        let c = StepCall {
            account: Some(account),
            ..call(action, login, &none)
        };
        let r = p.restore(&c, before, &silent).await.unwrap();
        assert!(r.changed, "{action}: {r:?}");
        let chk = p.check_restored(&c, before, &silent).await.unwrap();
        assert!(chk.restored, "{action}: {chk:?}");
        let again = p.restore(&c, before, &silent).await.unwrap();
        assert!(!again.changed, "{action}: {again:?}");
    }
    let e = admin.one_in(base, "(uid=erin)", &["nsAccountLock"]).await;
    assert_eq!(first(&e, "nsAccountLock"), None);
    let g = admin.one_in(&demo, "(objectClass=*)", &["member"]).await;
    assert!(all(&g, "member").contains(&erin), "{g:?}");
    let g = admin
        .one_in(&vpn, "(objectClass=*)", &["uniqueMember"])
        .await;
    assert!(all(&g, "uniqueMember").contains(&erin), "{g:?}");
    assert!(bind(&url, &ca, &erin, erin_pw).await.is_ok());
}
