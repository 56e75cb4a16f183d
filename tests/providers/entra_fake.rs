//! The `entra` kind against a fake Microsoft Graph (tests/common/fake_graph.rs) and a fake Entra
//! sign-in host (tests/common/fake_token.rs, `FakeLogin`): each action applied, then checked by
//! the object id; applied twice with nothing new sent; drift behind the tool's back; nobody
//! found; Graph's own 403 words; 429 retried; 250+ groups over pages; a queued wipe not taken
//! for a done one; the licence report naming SKUs; two tenants whose tokens never cross. Every
//! test ends with the contract assertion.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use offboard::providers::kit::microsoft::with_client_secret;
use offboard::providers::{
    Account, CallCtx, Provider, ProviderError, StepCall, SystemConfig, find_kind,
};
use serde_json::{Map, Value, json};

use crate::common::fake_graph::{FakeGraph, GroupKind, PREFIX};
use crate::common::fake_token::FakeLogin;

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT: &str = "0f6c-offboard-app";
const SECRET: &str = "cs~Entra-very-secret-41";
const TOKEN: &str = "eyJ0eXAi.graph-token-contoso.7Yq";
const SCOPE: &str = "https://graph.microsoft.com/.default";

struct Env {
    graph: FakeGraph,
    login: FakeLogin,
    provider: Arc<dyn Provider>,
    state: tempfile::TempDir,
}

fn config(
    graph: &FakeGraph,
    login: &FakeLogin,
    tenant: &str,
    client: &str,
    secret: &str,
    state: &std::path::Path,
) -> SystemConfig {
    let mut c = SystemConfig::new("contoso", "entra", Some(&graph.base_url));
    for (k, v) in [
        ("tenant_id", tenant),
        ("client_id", client),
        ("login_url", login.login_url.as_str()),
    ] {
        c.settings.insert(k.into(), toml::Value::String(v.into()));
    }
    c.timeout = Duration::from_secs(10);
    c.state_dir = state.to_path_buf();
    with_client_secret(c, secret)
}

fn connect(cfg: &SystemConfig) -> Arc<dyn Provider> {
    (find_kind("entra").unwrap().connect)(cfg).unwrap()
}

async fn env() -> Env {
    let login = FakeLogin::start(&[(TENANT, CLIENT, SECRET, TOKEN)]).await;
    login.expect_scope(SCOPE);
    let graph = FakeGraph::start(TOKEN).await;
    let state = tempfile::tempdir().unwrap();
    let provider = connect(&config(
        &graph,
        &login,
        TENANT,
        CLIENT,
        SECRET,
        state.path(),
    ));
    Env {
        graph,
        login,
        provider,
        state,
    }
}

fn no_params() -> Map<String, Value> {
    Map::new()
}

fn params(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn call<'a>(
    action: &'a str,
    login: &'a str,
    params: &'a Map<String, Value>,
    account: Option<&'a Account>,
) -> StepCall<'a> {
    StepCall {
        step_id: "m365",
        action,
        login,
        params,
        account,
    }
}

/// A context that keeps the accounts identified.
fn watching() -> (CallCtx, Arc<Mutex<Vec<Account>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (
        CallCtx::silent().on_account(move |a| s.lock().unwrap().push(a.clone())),
        seen,
    )
}

const ALICE: &str = "alice@contoso.com";

/// Apply by login, check by the id found; then apply again by id and see nothing sent but
/// reads. Returns the account.
async fn apply_check_twice(e: &Env, action: &str, p: &Map<String, Value>) -> Account {
    let (ctx, seen) = watching();
    let out = e
        .provider
        .apply(&call(action, ALICE, p, None), &ctx)
        .await
        .unwrap_or_else(|err| panic!("{action}: {err}"));
    assert!(out.changed, "{action}: {out:?}");
    let account = out.account.clone().unwrap();
    assert_eq!(account.id_kind, "Entra object id");
    assert_eq!(account.name, ALICE);
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        std::slice::from_ref(&account)
    );
    let chk = e
        .provider
        .check(&call(action, ALICE, p, Some(&account)), &CallCtx::silent())
        .await
        .unwrap();
    assert!(chk.revoked, "{action}: {chk:?}");
    assert_eq!(chk.account.as_ref(), Some(&account));
    e.graph.clear_requests();
    let again = e
        .provider
        .apply(&call(action, ALICE, p, Some(&account)), &CallCtx::silent())
        .await
        .unwrap();
    assert!(!again.changed, "{action}: {again:?}");
    assert_eq!(
        e.graph.writes(),
        Vec::<String>::new(),
        "{action}: a second apply wrote"
    );
    account
}

#[tokio::test]
async fn disable_sign_in_by_id_with_drift_and_a_rename() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let bob = e.graph.add_user("bob@contoso.com");
    let p = no_params();
    let account = apply_check_twice(&e, "disable_sign_in", &p).await;
    assert_eq!(account.id, id);
    assert!(!e.graph.user(&id).unwrap().account_enabled);
    assert!(e.graph.user(&bob).unwrap().account_enabled);

    // Renamed: still read by id. Re-enabled behind the tool's back: not revoked.
    e.graph.edit_user(&id, |u| {
        u.upn = "alice.smith@contoso.com".into();
        u.account_enabled = true;
    });
    let chk = e
        .provider
        .check(
            &call("disable_sign_in", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!chk.revoked, "{chk:?}");
    assert_eq!(chk.observed, "accountEnabled=true");
    assert_eq!(chk.account.unwrap().name, "alice.smith@contoso.com");
    // A newcomer under the old UPN is not whom the recorded account names.
    let newcomer = e.graph.add_user(ALICE);
    e.graph.clear_requests();
    e.provider
        .apply(
            &call("disable_sign_in", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(e.graph.user(&newcomer).unwrap().account_enabled);
    assert_eq!(
        e.graph.writes(),
        [format!("PATCH {PREFIX}/users/{id}")],
        "the change goes to the recorded id"
    );
    let body = e
        .graph
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .unwrap();
    assert_eq!(body.json, Some(json!({ "accountEnabled": false })));
    assert_eq!(e.login.issued(TENANT), 1, "one token, cached");
    e.graph.assert_contract();
}

#[tokio::test]
async fn the_first_read_selects_what_it_needs_and_encodes_the_login() {
    let e = env().await;
    let login = "o'brien+ops@contoso.com";
    let id = e.graph.add_user(login);
    let p = no_params();
    let out = e
        .provider
        .apply(
            &call("disable_sign_in", login, &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert_eq!(out.account.unwrap().id, id);
    let first = &e.graph.requests()[0];
    assert_eq!(
        first.raw_path,
        format!("{PREFIX}/users/o%27brien%2Bops%40contoso.com")
    );
    assert_eq!(
        first.query_param("$select"),
        Some("id,userPrincipalName,accountEnabled")
    );
    assert_eq!(first.auth_scheme(), Some("Bearer"));
    e.graph.assert_contract();
}

#[tokio::test]
async fn revoke_sessions_answers_200_with_a_body_and_the_check_wants_a_later_time() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let before = e.graph.user(&id).unwrap().sessions_valid_from;
    let p = no_params();
    // Before any revoke, preflight only looks (the check has nothing to compare with).
    let pre = e
        .provider
        .preflight(
            &call("revoke_sessions", ALICE, &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(pre.starts_with("found alice@contoso.com"), "{pre}");
    let account = apply_check_twice(&e, "revoke_sessions", &p).await;
    let after = e.graph.user(&id).unwrap().sessions_valid_from;
    assert!(after > before, "{before} → {after}");
    // The POST carried no body.
    e.graph.clear_requests();
    // Another machine (no record) cannot confirm: an error, never "revoked".
    let elsewhere = tempfile::tempdir().unwrap();
    let other = connect(&config(
        &e.graph,
        &e.login,
        TENANT,
        CLIENT,
        SECRET,
        elsewhere.path(),
    ));
    let err = other
        .check(
            &call("revoke_sessions", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no record"), "{err}");
    e.graph.assert_contract();
}

#[tokio::test]
async fn revoke_sends_no_body_and_takes_any_2xx() {
    let e = env().await;
    e.graph.add_user(ALICE);
    let p = no_params();
    e.provider
        .apply(
            &call("revoke_sessions", ALICE, &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    let post = e
        .graph
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(
        post.raw_path,
        format!(
            "{PREFIX}/users/{}/revokeSignInSessions",
            e.graph.user_id(ALICE)
        )
    );
    assert!(post.body.is_empty());
    e.graph.assert_contract();
}

#[tokio::test]
async fn reset_password_is_random_and_never_leaves_the_request() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let p = no_params();
    let (ctx, _) = watching();
    let out = e
        .provider
        .apply(&call("reset_password", ALICE, &p, None), &ctx)
        .await
        .unwrap();
    let user = e.graph.user(&id).unwrap();
    let password = user.last_password.clone().unwrap();
    assert_eq!(password.chars().count(), 32);
    assert_eq!(user.force_change, Some(true));
    let account = out.account.clone().unwrap();
    let shown = format!("{out:?}");
    assert!(!shown.contains(&password), "the outcome holds the password");
    for f in walk(e.state.path()) {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            !text.contains(&password),
            "{} holds the password",
            f.display()
        );
    }
    let chk = e
        .provider
        .check(
            &call("reset_password", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(chk.revoked, "{chk:?}");
    e.graph.clear_requests();
    let again = e
        .provider
        .apply(
            &call("reset_password", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!again.changed && e.graph.writes().is_empty(), "{again:?}");
    // A second random password differs from the first.
    let other = tempfile::tempdir().unwrap();
    connect(&config(
        &e.graph,
        &e.login,
        TENANT,
        CLIENT,
        SECRET,
        other.path(),
    ))
    .apply(
        &call("reset_password", ALICE, &p, Some(&account)),
        &CallCtx::silent(),
    )
    .await
    .unwrap();
    assert_ne!(e.graph.user(&id).unwrap().last_password.unwrap(), password);
    e.graph.assert_contract();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn every_method_but_the_password_is_removed_at_its_kind() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let kinds = [
        (
            "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
            "microsoftAuthenticatorMethods",
        ),
        ("#microsoft.graph.phoneAuthenticationMethod", "phoneMethods"),
        ("#microsoft.graph.fido2AuthenticationMethod", "fido2Methods"),
        (
            "#microsoft.graph.softwareOathAuthenticationMethod",
            "softwareOathMethods",
        ),
        (
            "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
            "temporaryAccessPassMethods",
        ),
    ];
    let ids: Vec<String> = kinds
        .iter()
        .map(|(t, _)| e.graph.add_method(&id, t))
        .collect();
    let p = no_params();
    let account = apply_check_twice(&e, "remove_auth_methods", &p).await;
    assert!(e.graph.user(&id).unwrap().methods.is_empty());
    // Drift: a new phone registered behind the tool's back.
    e.graph
        .add_method(&id, "#microsoft.graph.phoneAuthenticationMethod");
    let chk = e
        .provider
        .check(
            &call("remove_auth_methods", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!chk.revoked && chk.observed.contains("phone"), "{chk:?}");
    e.graph.assert_contract();
    let _ = ids;

    // The deletes went to each kind's path.
    let e2 = env().await;
    let id2 = e2.graph.add_user(ALICE);
    let ids: Vec<String> = kinds
        .iter()
        .map(|(t, _)| e2.graph.add_method(&id2, t))
        .collect();
    e2.provider
        .apply(
            &call("remove_auth_methods", ALICE, &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    let deletes = e2.graph.writes();
    for ((_, kind), mid) in kinds.iter().zip(&ids) {
        let want = format!("DELETE {PREFIX}/users/{id2}/authentication/{kind}/{mid}");
        assert!(deletes.contains(&want), "{want} not in {deletes:?}");
    }
    assert_eq!(
        deletes.len(),
        kinds.len(),
        "the password method is not deleted"
    );
    e2.graph.assert_contract();
}

#[tokio::test]
async fn a_method_kind_offboard_cannot_delete_fails_the_step_after_the_rest() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    e.graph
        .add_method(&id, "#microsoft.graph.fido2AuthenticationMethod");
    e.graph
        .add_method(&id, "#microsoft.graph.qrCodePinAuthenticationMethod");
    let p = no_params();
    let err = e
        .provider
        .apply(
            &call("remove_auth_methods", ALICE, &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("removed fido2") && msg.contains("qrCodePin"),
        "{msg}"
    );
    assert_eq!(e.graph.user(&id).unwrap().methods.len(), 1);
    e.graph.assert_contract();
}

#[tokio::test]
async fn groups_over_many_pages_removed_by_ref_and_the_uneditable_named() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let bob = e.graph.add_user("bob@contoso.com");
    let mut plain = Vec::new();
    for i in 0..260 {
        plain.push(
            e.graph
                .add_group(&format!("team-{i:03}"), GroupKind::Security, &[&id, &bob]),
        );
    }
    let m365 = e
        .graph
        .add_group("All Sales", GroupKind::Microsoft365, &[&id]);
    let dynamic = e
        .graph
        .add_group("Sales (dynamic)", GroupKind::Dynamic, &[&id]);
    let synced = e.graph.add_group("GG-Finance", GroupKind::Synced, &[&id]);
    let dl = e
        .graph
        .add_group("dl-announce", GroupKind::Distribution, &[&id]);
    e.graph.add_role("Helpdesk Administrator", &id);
    let p = no_params();
    let (ctx, _) = watching();
    let out = e
        .provider
        .apply(&call("remove_from_groups", ALICE, &p, None), &ctx)
        .await
        .unwrap();
    assert!(out.summary.contains("from 261 group(s)"), "{}", out.summary);
    for (name, why) in [
        ("Sales (dynamic)", "dynamic membership"),
        ("GG-Finance", "synced from on-premises AD"),
        ("dl-announce", "Exchange manages it"),
    ] {
        assert!(
            out.summary.contains(&format!("{name} (")) && out.summary.contains(why),
            "{}",
            out.summary
        );
    }
    assert!(
        out.summary
            .contains("Helpdesk Administrator (directoryRole)"),
        "{}",
        out.summary
    );
    let pages = e
        .graph
        .lines()
        .iter()
        .filter(|l| l.starts_with(&format!("GET {PREFIX}/users/{id}/memberOf")))
        .count();
    assert_eq!(pages, 3, "265 memberships at 100 a page");
    for g in plain.iter().chain([&m365]) {
        assert!(!e.graph.group_members(g).contains(&id));
        assert!(g == &m365 || e.graph.group_members(g).contains(&bob));
    }
    for g in [&dynamic, &synced, &dl] {
        assert!(e.graph.group_members(g).contains(&id));
    }
    assert!(
        e.graph
            .writes()
            .iter()
            .all(|w| w.starts_with(&format!("DELETE {PREFIX}/groups/"))
                && w.ends_with(&format!("/members/{id}/$ref")))
    );
    let account = out.account.unwrap();
    let chk = e
        .provider
        .check(
            &call("remove_from_groups", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(chk.revoked, "{chk:?}");
    assert!(
        chk.observed.contains("not editable here: ") && chk.observed.contains("GG-Finance (synced"),
        "{}",
        chk.observed
    );
    e.graph.clear_requests();
    let again = e
        .provider
        .apply(
            &call("remove_from_groups", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!again.changed && e.graph.writes().is_empty(), "{again:?}");
    // Drift: put back in one group.
    e.graph.add_member(&plain[200], &id);
    let chk = e
        .provider
        .check(
            &call("remove_from_groups", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!chk.revoked && chk.observed.contains("team-200"), "{chk:?}");
    e.graph.assert_contract();
}

#[tokio::test]
async fn a_membership_already_gone_is_done_not_failed() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let g = e.graph.add_group("team", GroupKind::Security, &[&id]);
    // Removed by someone else between the listing and the delete: Graph answers 404.
    e.graph.server.fail_next_on(
        "DELETE",
        &format!("{PREFIX}/groups/{{gid}}/members/{{id}}/$ref"),
        crate::common::fake_kit::Fault::Reply(crate::common::fake_graph::graph_error(
            404,
            "Request_ResourceNotFound",
            &format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        )),
    );
    let p = params(json!({ "groups": ["TEAM"] }));
    let out = e
        .provider
        .apply(
            &call("remove_from_groups", ALICE, &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!out.changed, "{out:?}");
    e.graph.remove_member(&g, &id);
    let chk = e
        .provider
        .check(
            &call("remove_from_groups", ALICE, &p, out.account.as_ref()),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(chk.revoked, "{chk:?}");
    e.graph.assert_contract();
}

#[tokio::test]
async fn the_members_path_without_ref_deletes_the_user_and_is_caught() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let g = e.graph.add_group("team", GroupKind::Security, &[&id]);
    // A client that forgets `/$ref`: Graph deletes the user object.
    let resp = reqwest::Client::new()
        .delete(format!("{}/groups/{g}/members/{id}", e.graph.base_url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(e.graph.deleted(&id));
    assert_eq!(
        e.graph.users_deleted_via_members(),
        std::slice::from_ref(&id)
    );
    let bad = e
        .graph
        .server
        .contract_violations(&crate::common::fake_graph::graph_contract());
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].contains("no declared operation has this path"),
        "{bad:?}"
    );
}

#[tokio::test]
async fn licences_freed_are_named_and_inherited_ones_reported() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let e3 = "6fd2c87f-b296-42f0-b197-1e91e994b900";
    let ems = "efccb6f7-5641-4e0e-bd10-b4976e1bf68e";
    let e5 = "06ebc4ee-1bb5-47dd-8120-11324bc54e06";
    e.graph.add_sku(e3, "ENTERPRISEPACK");
    e.graph.add_sku(ems, "EMS");
    e.graph.add_sku(e5, "SPE_E5");
    let group = e
        .graph
        .add_group("Licensed-E5", GroupKind::Security, &[&id]);
    e.graph.license(&id, e3, None);
    e.graph.license(&id, ems, None);
    e.graph.license(&id, e5, Some(&group));
    let p = no_params();
    let (ctx, _) = watching();
    let out = e
        .provider
        .apply(&call("remove_licenses", ALICE, &p, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    // Named for the licence report too, structured (the inherited one is not freed).
    assert_eq!(
        ctx.take_freed_licences(),
        Some(vec![
            format!("ENTERPRISEPACK ({e3})"),
            format!("EMS ({ems})")
        ])
    );
    assert!(
        out.summary.contains("freed 2 licence(s)")
            && out.summary.contains(&format!("ENTERPRISEPACK ({e3})"))
            && out.summary.contains(&format!("EMS ({ems})")),
        "{}",
        out.summary
    );
    assert!(
        out.summary
            .contains(&format!("SPE_E5 ({e5}) via group {group}")),
        "{}",
        out.summary
    );
    let post = e
        .graph
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    let mut want = vec![e3, ems];
    want.sort();
    assert_eq!(
        post.json,
        Some(json!({ "addLicenses": [], "removeLicenses": want }))
    );
    assert_eq!(
        e.graph.user(&id).unwrap().licenses,
        [(e5.to_string(), Some(group.clone()))]
    );
    let account = out.account.unwrap();
    let chk = e
        .provider
        .check(
            &call("remove_licenses", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(chk.revoked && chk.observed.contains("inherited"), "{chk:?}");
    e.graph.clear_requests();
    let quiet = CallCtx::silent();
    let again = e
        .provider
        .apply(&call("remove_licenses", ALICE, &p, Some(&account)), &quiet)
        .await
        .unwrap();
    assert!(!again.changed && e.graph.writes().is_empty(), "{again:?}");
    // Nothing freed is recorded as nothing, not as unknown.
    assert_eq!(quiet.take_freed_licences(), Some(vec![]));
    // Drift: a licence assigned again.
    e.graph.license(&id, e3, None);
    let chk = e
        .provider
        .check(
            &call("remove_licenses", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!chk.revoked, "{chk:?}");
    e.graph.assert_contract();
}

#[tokio::test]
async fn the_fake_refuses_a_licence_call_without_add_licenses_or_an_inherited_removal() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let g = e.graph.add_group("Licensed", GroupKind::Security, &[&id]);
    let sku = "06ebc4ee-1bb5-47dd-8120-11324bc54e06";
    e.graph.license(&id, sku, Some(&g));
    let http = reqwest::Client::new();
    let url = format!("{}/users/{id}/assignLicense", e.graph.base_url);
    let r = http
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({ "removeLicenses": [sku] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Request_BadRequest");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing parameters are: addLicenses")
    );
    let r = http
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({ "addLicenses": [], "removeLicenses": [sku] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("inherited from a group")
    );
    // The first request breaks the contract (no addLicenses); the second keeps it.
    let bad = e
        .graph
        .server
        .contract_violations(&crate::common::fake_graph::graph_contract());
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(bad[0].contains("missing property addLicenses"), "{bad:?}");
}

#[tokio::test]
async fn forwarding_rules_then_every_inbox_rule() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    e.graph
        .add_rule(&id, "to gmail", Some("alice.private@gmail.com"));
    e.graph
        .add_rule(&id, "to partner", Some("deals@partner.example"));
    e.graph.add_rule(&id, "file newsletters", None);
    let p = no_params();
    let out = e
        .provider
        .apply(
            &call("remove_forwarding_rules", ALICE, &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(
        out.summary.contains("alice.private@gmail.com"),
        "{}",
        out.summary
    );
    let left = e.graph.user(&id).unwrap().rules;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["displayName"], "file newsletters");
    let account = out.account.unwrap();
    let chk = e
        .provider
        .check(
            &call("remove_forwarding_rules", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(chk.revoked, "{chk:?}");
    // Every Inbox rule: the last one goes too, and a second apply sends nothing.
    let account = apply_check_twice(&e, "remove_inbox_rules", &p).await;
    assert!(e.graph.user(&id).unwrap().rules.is_empty());
    e.graph.add_rule(&id, "sneaky", Some("x@evil.example"));
    let chk = e
        .provider
        .check(
            &call("remove_forwarding_rules", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(
        !chk.revoked && chk.observed.contains("x@evil.example"),
        "{chk:?}"
    );
    e.graph.assert_contract();
}

#[tokio::test]
async fn no_mailbox_is_an_error_in_graphs_words_not_a_missing_person() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    e.graph.edit_user(&id, |u| u.mailbox = false);
    let p = no_params();
    let err = e
        .provider
        .apply(
            &call("remove_inbox_rules", ALICE, &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(
        err.to_string().contains("MailboxNotEnabledForRESTAPI"),
        "{err}"
    );
    e.graph.assert_contract();
}

#[tokio::test]
async fn auto_reply_is_set_and_read_back_through_exchanges_html() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let p = params(json!({
        "internal": "Alice has left Contoso & Co. Please write to bob@contoso.com.",
        "external": "Alice has left. Please write to sales@contoso.com.",
    }));
    let account = apply_check_twice(&e, "set_auto_reply", &p).await;
    let set = e.graph.user(&id).unwrap().auto_reply;
    assert_eq!(set["status"], "alwaysEnabled");
    assert_eq!(set["externalAudience"], "all");
    // Drift: turned off.
    e.graph
        .edit_user(&id, |u| u.auto_reply["status"] = json!("disabled"));
    let chk = e
        .provider
        .check(
            &call("set_auto_reply", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(
        !chk.revoked && chk.observed.contains("status=disabled"),
        "{chk:?}"
    );
    let patch = e.graph.requests().into_iter().find(|r| r.method == "PATCH");
    assert!(patch.is_none(), "the drift check wrote");
    e.graph.assert_contract();
}

#[tokio::test]
async fn onedrive_goes_to_the_manager_with_its_url_in_the_summary() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let boss = e.graph.add_user("bob@contoso.com");
    e.graph.edit_user(&id, |u| u.manager = Some(boss.clone()));
    let p = no_params();
    let (ctx, _) = watching();
    let out = e
        .provider
        .apply(&call("grant_onedrive_access", ALICE, &p, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    assert!(
        out.summary
            .contains("https://contoso-my.sharepoint.com/personal/alice_contoso_com")
            && out.summary.contains("bob@contoso.com write"),
        "{}",
        out.summary
    );
    let invite = e
        .graph
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(
        invite.json,
        Some(json!({
            "recipients": [{ "email": "bob@contoso.com" }],
            "roles": ["write"],
            "requireSignIn": true,
            "sendInvitation": false,
        }))
    );
    let account = out.account.unwrap();
    let chk = e
        .provider
        .check(
            &call("grant_onedrive_access", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(chk.revoked, "{chk:?}");
    e.graph.clear_requests();
    let again = e
        .provider
        .apply(
            &call("grant_onedrive_access", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!again.changed && e.graph.writes().is_empty(), "{again:?}");
    // No manager and no `to`: said so.
    let carol = e.graph.add_user("carol@contoso.com");
    let err = e
        .provider
        .apply(
            &call("grant_onedrive_access", "carol@contoso.com", &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no manager"), "{err}");
    // `to` names someone else.
    let to = params(json!({ "to": "bob@contoso.com", "role": "read" }));
    let out = e
        .provider
        .apply(
            &call("grant_onedrive_access", "carol@contoso.com", &to, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(
        out.changed && out.summary.contains("read access"),
        "{out:?}"
    );
    let _ = carol;
    e.graph.assert_contract();
}

#[tokio::test]
async fn immutable_id_is_cleared_only_once_sync_has_let_go() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    e.graph.edit_user(&id, |u| {
        u.immutable_id = Some("q2WmB0tZl0a7d7ZKGFqk9w==".into());
        u.sync_enabled = true;
    });
    let p = no_params();
    let err = e
        .provider
        .apply(
            &call("clear_immutable_id", ALICE, &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("onPremisesSyncEnabled=true"),
        "{err}"
    );
    assert!(e.graph.writes().is_empty());
    e.graph.edit_user(&id, |u| u.sync_enabled = false);
    let _ = apply_check_twice(&e, "clear_immutable_id", &p).await;
    assert_eq!(e.graph.user(&id).unwrap().immutable_id, None);
    let patch = e
        .graph
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patch, 0, "cleared already");
    e.graph.assert_contract();
}

#[tokio::test]
async fn delete_is_soft_and_later_checks_see_it_gone_by_id() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let p = no_params();
    let (ctx, _) = watching();
    let out = e
        .provider
        .apply(&call("delete_user", ALICE, &p, None), &ctx)
        .await
        .unwrap();
    assert!(
        out.changed && out.summary.contains("30 days"),
        "{}",
        out.summary
    );
    assert!(e.graph.deleted(&id));
    let account = out.account.unwrap();
    for action in ["delete_user", "disable_sign_in", "remove_auth_methods"] {
        let chk = e
            .provider
            .check(&call(action, ALICE, &p, Some(&account)), &CallCtx::silent())
            .await
            .unwrap();
        assert!(
            chk.revoked && chk.observed.contains("404 by id"),
            "{action}: {chk:?}"
        );
    }
    e.graph.clear_requests();
    let again = e
        .provider
        .apply(
            &call("delete_user", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!again.changed && e.graph.writes().is_empty(), "{again:?}");
    // Restored from deleted items: the delete no longer holds.
    e.graph.restore(&id);
    let chk = e
        .provider
        .check(
            &call("delete_user", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!chk.revoked, "{chk:?}");
    e.graph.assert_contract();
}

#[tokio::test]
async fn a_queued_wipe_is_not_revoked_until_intune_says_done() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let phone = e.graph.add_device(&id, "Alice's iPhone", "iOS");
    let laptop = e.graph.add_device(&id, "LAPTOP-7", "Windows");
    let p = no_params();
    let (ctx, _) = watching();
    let out = e
        .provider
        .apply(&call("wipe_devices", ALICE, &p, None), &ctx)
        .await
        .unwrap();
    assert!(
        out.changed && out.summary.contains("requested, not yet done"),
        "{}",
        out.summary
    );
    let wipes: Vec<_> = e
        .graph
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(wipes.len(), 2);
    for w in &wipes {
        assert_eq!(
            w.json,
            Some(json!({ "keepEnrollmentData": false, "keepUserData": false }))
        );
    }
    let account = out.account.unwrap();
    let chk = e
        .provider
        .check(
            &call("wipe_devices", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!chk.revoked, "a queued wipe is not a done wipe: {chk:?}");
    assert!(
        chk.observed
            .contains("Alice's iPhone (iOS): wipe pending (requested at 2026-12-01T"),
        "{}",
        chk.observed
    );
    // Resume applies again: nothing is sent twice.
    e.graph.clear_requests();
    let again = e
        .provider
        .apply(
            &call("wipe_devices", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!again.changed && e.graph.writes().is_empty(), "{again:?}");
    assert!(
        again.summary.contains("already requested"),
        "{}",
        again.summary
    );
    // Intune reports one done and removes the other: now it holds.
    e.graph.finish_device_action(&phone, false);
    let chk = e
        .provider
        .check(
            &call("wipe_devices", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!chk.revoked, "the laptop is still pending: {chk:?}");
    e.graph.finish_device_action(&laptop, true);
    let chk = e
        .provider
        .check(
            &call("wipe_devices", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(
        chk.revoked && chk.observed.contains("wipe done at"),
        "{chk:?}"
    );
    e.graph.assert_contract();
}

#[tokio::test]
async fn retire_only_the_listed_operating_systems() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let phone = e.graph.add_device(&id, "Alice's Pixel", "Android");
    let laptop = e.graph.add_device(&id, "LAPTOP-7", "Windows");
    let p = params(json!({ "operating_systems": ["android"] }));
    let out = e
        .provider
        .apply(&call("retire_devices", ALICE, &p, None), &CallCtx::silent())
        .await
        .unwrap();
    assert!(
        out.summary.contains("Alice's Pixel (Android)"),
        "{}",
        out.summary
    );
    assert_eq!(
        e.graph.device(&phone).unwrap().management_state,
        "retirePending"
    );
    assert_eq!(e.graph.device(&laptop).unwrap().management_state, "managed");
    let retire = e
        .graph
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert!(retire.body.is_empty(), "retire takes no body");
    let account = out.account.unwrap();
    let chk = e
        .provider
        .check(
            &call("retire_devices", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(
        !chk.revoked && chk.observed.contains("retire pending"),
        "{chk:?}"
    );
    e.graph.finish_device_action(&phone, true);
    let chk = e
        .provider
        .check(
            &call("retire_devices", ALICE, &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(chk.revoked, "{chk:?}");
    e.graph.assert_contract();
}

#[tokio::test]
async fn nobody_found_is_not_found_never_revoked() {
    let e = env().await;
    e.graph.add_user("bob@contoso.com");
    let p = no_params();
    for action in [
        "disable_sign_in",
        "delete_user",
        "wipe_devices",
        "remove_from_groups",
    ] {
        let c = call(action, "nobody@contoso.com", &p, None);
        let err = e.provider.apply(&c, &CallCtx::silent()).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::NotFound(_)),
            "{action}: {err:?}"
        );
        let err = e.provider.check(&c, &CallCtx::silent()).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::NotFound(_)),
            "{action}: {err:?}"
        );
    }
    assert!(e.graph.writes().is_empty());
    e.graph.assert_contract();
}

#[tokio::test]
async fn a_missing_permission_is_graphs_own_message() {
    let e = env().await;
    e.graph.add_user(ALICE);
    e.graph.deny("GET", "/users/{id}/authentication/methods");
    let p = no_params();
    let err = e
        .provider
        .preflight(
            &call("remove_auth_methods", ALICE, &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(msg.contains("403"), "{msg}");
    assert!(
        msg.contains(
            "Authorization_RequestDenied: Insufficient privileges to complete the operation."
        ),
        "{msg}"
    );
    assert!(!msg.contains(SECRET) && !msg.contains(TOKEN), "{msg}");
    e.graph.assert_contract();
}

#[tokio::test]
async fn throttling_is_waited_out_as_retry_after_says() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let notes = Arc::new(Mutex::new(Vec::new()));
    let n = notes.clone();
    let ctx = CallCtx::new(move |note| n.lock().unwrap().push(note));
    // The first request is throttled: 429, Retry-After 1, x-ms-throttle-* headers.
    e.graph.throttle_next(1);
    let started = Instant::now();
    let p = no_params();
    let out = e
        .provider
        .apply(&call("disable_sign_in", ALICE, &p, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert!(!e.graph.user(&id).unwrap().account_enabled);
    let notes = notes.lock().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].reason.contains("429"), "{notes:?}");
    assert_eq!(notes[0].wait_ms, 1000);
    assert_eq!(e.graph.server.injected().len(), 1);
    e.graph.assert_contract();
}

#[tokio::test]
async fn two_tenants_two_tokens_never_crossed() {
    const FABRIKAM: &str = "8f5e1b9c-3d2a-4e6f-9a7b-0c1d2e3f4a5b";
    const FAB_CLIENT: &str = "77aa-offboard-app";
    const FAB_SECRET: &str = "cs~Fabrikam-secret-88";
    const FAB_TOKEN: &str = "eyJ0eXAi.graph-token-fabrikam.Q2w";
    let login = FakeLogin::start(&[
        (TENANT, CLIENT, SECRET, TOKEN),
        (FABRIKAM, FAB_CLIENT, FAB_SECRET, FAB_TOKEN),
    ])
    .await;
    login.expect_scope(SCOPE);
    let contoso = FakeGraph::start(TOKEN).await;
    let fabrikam = FakeGraph::start(FAB_TOKEN).await;
    let state = tempfile::tempdir().unwrap();
    let a = connect(&config(
        &contoso,
        &login,
        TENANT,
        CLIENT,
        SECRET,
        state.path(),
    ));
    let b = connect(&config(
        &fabrikam,
        &login,
        FABRIKAM,
        FAB_CLIENT,
        FAB_SECRET,
        state.path(),
    ));
    let alice = contoso.add_user(ALICE);
    let fab_alice = fabrikam.add_user("alice@fabrikam.com");
    let p = no_params();
    // Interleaved, as an MSP's day is.
    for _ in 0..2 {
        a.apply(
            &call("disable_sign_in", ALICE, &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
        b.apply(
            &call("disable_sign_in", "alice@fabrikam.com", &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    }
    assert!(!contoso.user(&alice).unwrap().account_enabled);
    assert!(!fabrikam.user(&fab_alice).unwrap().account_enabled);
    // Each tenant issued one token (cached), to its own client, at its own path.
    assert_eq!((login.issued(TENANT), login.issued(FABRIKAM)), (1, 1));
    assert_eq!((login.refused(TENANT), login.refused(FABRIKAM)), (0, 0));
    let paths: Vec<String> = login
        .requests()
        .iter()
        .map(|r| r.raw_path.clone())
        .collect();
    assert!(
        paths.contains(&format!("/{TENANT}/oauth2/v2.0/token")),
        "{paths:?}"
    );
    assert!(
        paths.contains(&format!("/{FABRIKAM}/oauth2/v2.0/token")),
        "{paths:?}"
    );
    for r in login.requests() {
        let form: Vec<(String, String)> =
            url::form_urlencoded::parse(&r.body).into_owned().collect();
        let client = form
            .iter()
            .find(|(k, _)| k == "client_id")
            .unwrap()
            .1
            .clone();
        let want = if r.raw_path.contains(TENANT) {
            CLIENT
        } else {
            FAB_CLIENT
        };
        assert_eq!(client, want, "{}", r.raw_path);
        assert!(form.contains(&("scope".into(), SCOPE.into())), "{form:?}");
    }
    // Each Graph accepted every request: a token of the other tenant would have been a 401.
    assert!(contoso.requests().iter().all(|r| r.fault.is_none()));
    contoso.assert_contract();
    fabrikam.assert_contract();

    // A system pointing a tenant at the other tenant's app fails at sign-in, in Entra's words,
    // and never reaches Graph.
    let crossed = connect(&config(
        &contoso,
        &login,
        TENANT,
        FAB_CLIENT,
        FAB_SECRET,
        state.path(),
    ));
    contoso.clear_requests();
    let err = crossed
        .apply(
            &call("disable_sign_in", ALICE, &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("invalid_client"), "{msg}");
    assert!(!msg.contains(FAB_SECRET) && !msg.contains(SECRET), "{msg}");
    assert!(contoso.requests().is_empty(), "no request reached Graph");
}

/// A certificate credential, per tenant: each system signs its client assertion with its own
/// key, the sign-in host checks it as Entra does (PS256 signature over the registered key, the
/// certificate's `x5t#S256`, `aud` = that tenant's token endpoint, `iss` = `sub` = the client),
/// and a key registered in the other tenant gets no token there.
#[tokio::test]
async fn certificate_assertions_per_tenant() {
    use crate::common::fake_token::test_certificate;
    use secrecy::SecretString;
    const FABRIKAM: &str = "fabrikam.onmicrosoft.com";
    const FAB_TOKEN: &str = "eyJ0eXAi.graph-token-fabrikam.cert";
    let login = FakeLogin::start(&[
        (TENANT, CLIENT, "no-secret-used", TOKEN),
        (FABRIKAM, CLIENT, "no-secret-used", FAB_TOKEN),
    ])
    .await;
    login.expect_scope(SCOPE);
    let (contoso_pem, contoso_cert) = test_certificate();
    let (fabrikam_pem, fabrikam_cert) = test_certificate();
    login.register_certificate(TENANT, contoso_cert);
    login.register_certificate(FABRIKAM, fabrikam_cert);
    let contoso = FakeGraph::start(TOKEN).await;
    let fabrikam = FakeGraph::start(FAB_TOKEN).await;
    let state = tempfile::tempdir().unwrap();
    let with_cert = |graph: &FakeGraph, tenant: &str, pem: &str| {
        let mut c = SystemConfig::new("m365", "entra", Some(&graph.base_url));
        for (k, v) in [
            ("tenant_id", tenant),
            ("client_id", CLIENT),
            ("login_url", login.login_url.as_str()),
        ] {
            c.settings.insert(k.into(), toml::Value::String(v.into()));
        }
        c.timeout = Duration::from_secs(10);
        c.state_dir = state.path().to_path_buf();
        c.secrets
            .insert("certificate".into(), SecretString::from(pem.to_string()));
        c
    };
    let alice = contoso.add_user(ALICE);
    let p = no_params();
    connect(&with_cert(&contoso, TENANT, &contoso_pem))
        .apply(
            &call("disable_sign_in", ALICE, &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!contoso.user(&alice).unwrap().account_enabled);
    assert_eq!(login.issued(TENANT), 1);
    let form = String::from_utf8_lossy(&login.requests()[0].body).into_owned();
    assert!(
        form.contains(
            "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
        ) && !form.contains("client_secret"),
        "{form}"
    );
    // Contoso's key presented at Fabrikam's endpoint: refused there, nothing reaches Graph.
    let fab_alice = fabrikam.add_user("alice@fabrikam.com");
    let err = connect(&with_cert(&fabrikam, FABRIKAM, &contoso_pem))
        .apply(
            &call("disable_sign_in", "alice@fabrikam.com", &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid_client"), "{err}");
    assert!(fabrikam.user(&fab_alice).unwrap().account_enabled);
    assert_eq!((login.issued(FABRIKAM), login.refused(FABRIKAM)), (0, 1));
    // With its own key it works.
    connect(&with_cert(&fabrikam, FABRIKAM, &fabrikam_pem))
        .apply(
            &call("disable_sign_in", "alice@fabrikam.com", &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!fabrikam.user(&fab_alice).unwrap().account_enabled);
    assert!(!err.to_string().contains("PRIVATE KEY"));
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

/// Apply by login and return the account and the one pre-state recorded.
async fn apply_recording(e: &Env, action: &str, p: &Map<String, Value>) -> (Account, Value) {
    let (ctx, befores) = recording();
    let out = e
        .provider
        .apply(&call(action, ALICE, p, None), &ctx)
        .await
        .unwrap_or_else(|err| panic!("{action}: {err}"));
    let befores = befores.lock().unwrap().clone();
    assert_eq!(befores.len(), 1, "{action}: one pre-state: {befores:?}");
    (out.account.unwrap(), befores[0].clone())
}

/// Restore, then restore again (nothing written), then check the restore.
async fn restore_twice(e: &Env, action: &str, p: &Map<String, Value>, a: &Account, before: &Value) {
    let c = call(action, ALICE, p, Some(a));
    let out = e
        .provider
        .restore(&c, before, &CallCtx::silent())
        .await
        .unwrap_or_else(|err| panic!("{action}: {err}"));
    assert!(out.changed, "{action}: {out:?}");
    assert_eq!(out.account.as_ref(), Some(a));
    e.graph.clear_requests();
    let again = e
        .provider
        .restore(&c, before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!again.changed, "{action}: {again:?}");
    assert_eq!(
        e.graph.writes(),
        Vec::<String>::new(),
        "{action}: a second restore wrote"
    );
    let chk = e
        .provider
        .check_restored(&c, before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(chk.restored, "{action}: {chk:?}");
    assert_eq!(chk.account.as_ref(), Some(a));
}

#[tokio::test]
async fn every_entra_action_declares_how_it_is_undone() {
    let kind = find_kind("entra").unwrap();
    for a in kind.actions {
        assert_ne!(
            a.inverse,
            offboard::providers::Inverse::None(offboard::providers::UNDO_NOT_BUILT),
            "{}",
            a.name
        );
    }
    let restore: Vec<&str> = kind
        .actions
        .iter()
        .filter(|a| matches!(a.inverse, offboard::providers::Inverse::Restore(_)))
        .map(|a| a.name)
        .collect();
    assert_eq!(
        restore,
        [
            "disable_sign_in",
            "remove_from_groups",
            "remove_licenses",
            "remove_inbox_rules",
            "remove_forwarding_rules",
            "set_auto_reply",
            "grant_onedrive_access",
            "clear_immutable_id",
            "delete_user"
        ]
    );
}

#[tokio::test]
async fn rollback_re_enables_sign_in_by_id_and_only_if_it_was_enabled() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let p = no_params();
    let (account, before) = apply_recording(&e, "disable_sign_in", &p).await;
    assert_eq!(before, json!({ "id": id, "accountEnabled": true }));
    assert!(!e.graph.user(&id).unwrap().account_enabled);
    let c = call("disable_sign_in", ALICE, &p, Some(&account));
    let plan = e.provider.describe_restore(&c, &before);
    assert_eq!(
        plan.iter()
            .map(|l| format!("{} {}", l.method, l.url))
            .collect::<Vec<_>>(),
        [
            format!("GET {}/users/{id}", e.graph.base_url),
            format!("PATCH {}/users/{id}", e.graph.base_url)
        ]
    );
    let chk = e
        .provider
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(
        !chk.restored && chk.observed.contains("not true"),
        "{chk:?}"
    );
    restore_twice(&e, "disable_sign_in", &p, &account, &before).await;
    assert!(e.graph.user(&id).unwrap().account_enabled);
    let patch = e.graph.requests();
    assert!(patch.iter().all(|r| r.method == "GET"), "{patch:?}");

    // Blocked before offboard came: the pre-state says so, and rollback leaves it blocked.
    e.graph.edit_user(&id, |u| u.account_enabled = false);
    let (ctx, befores) = recording();
    let out = e
        .provider
        .apply(&call("disable_sign_in", ALICE, &p, Some(&account)), &ctx)
        .await
        .unwrap();
    assert!(!out.changed);
    let before = befores.lock().unwrap()[0].clone();
    assert_eq!(before["accountEnabled"], json!(false));
    let out = e
        .provider
        .restore(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(
        !out.changed && out.summary.contains("nothing to put back"),
        "{out:?}"
    );
    assert!(!e.graph.user(&id).unwrap().account_enabled);

    // Deleted since: not restored here, and the check says why.
    let before = json!({ "id": id, "accountEnabled": true });
    e.graph.delete_user(&id);
    let err = e
        .provider
        .restore(&c, &before, &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("deleted items"), "{err}");
    let chk = e
        .provider
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(
        !chk.restored && chk.observed.contains("no longer exists"),
        "{chk:?}"
    );
    // A pre-state of another user is never put onto this one.
    let other = json!({ "id": "u-someone-else", "accountEnabled": true });
    let err = e
        .provider
        .restore(&c, &other, &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refusing"), "{err}");
    e.graph.assert_contract();
}

#[tokio::test]
async fn rollback_re_adds_the_removed_groups_by_id_and_names_a_deleted_group() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let sales = e.graph.add_group("Sales", GroupKind::Security, &[&id]);
    let team = e.graph.add_group("Team", GroupKind::Microsoft365, &[&id]);
    let dynamic = e.graph.add_group("All Sales", GroupKind::Dynamic, &[&id]);
    let p = no_params();
    let (account, before) = apply_recording(&e, "remove_from_groups", &p).await;
    assert_eq!(
        before,
        json!({ "id": id, "groups": [
            { "id": dynamic, "name": "All Sales", "removable": false,
              "skipped": "dynamic membership: its rule decides" },
            { "id": sales, "name": "Sales", "removable": true },
            { "id": team, "name": "Team", "removable": true },
        ]})
    );
    assert!(!e.graph.group_members(&sales).contains(&id));
    restore_twice(&e, "remove_from_groups", &p, &account, &before).await;
    for g in [&sales, &team, &dynamic] {
        assert!(e.graph.group_members(g).contains(&id), "{g}");
    }
    let c = call("remove_from_groups", ALICE, &p, Some(&account));
    let plan = e.provider.describe_restore(&c, &before);
    assert!(
        plan.iter().any(|l| l.method == "POST"
            && l.url == format!("{}/groups/{sales}/members/$ref", e.graph.base_url)),
        "{plan:?}"
    );

    // Removed again; meanwhile one group was deleted: the other comes back, the lost one is
    // named, and the check says it is not back.
    e.graph.remove_member(&sales, &id);
    e.graph.remove_member(&team, &id);
    e.graph.delete_group(&team);
    let err = e
        .provider
        .restore(&c, &before, &CallCtx::silent())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("re-added")
            && msg.contains(&format!("Team ({team})"))
            && msg.contains("no longer exist"),
        "{msg}"
    );
    assert!(e.graph.group_members(&sales).contains(&id));
    let chk = e
        .provider
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(!chk.restored && chk.observed.contains(&team), "{chk:?}");
    let post = e
        .graph
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(
        post.json,
        Some(json!({ "@odata.id": format!("{}/directoryObjects/{id}", e.graph.base_url) }))
    );
    e.graph.assert_contract();
}

#[tokio::test]
async fn rollback_reassigns_the_direct_licences_with_their_disabled_plans() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let e3 = "6fd2c87f-b296-42f0-b197-1e91e994b900";
    let e5 = "06ebc4ee-1bb5-47dd-8120-11324bc54e06";
    let teams = "57ff2da0-773e-42df-b2af-ffb7a2317929";
    e.graph.add_sku(e3, "ENTERPRISEPACK");
    e.graph.add_sku(e5, "SPE_E5");
    let group = e.graph.add_group("Licensed-E5", GroupKind::Security, &[]);
    e.graph.license(&id, e3, None);
    e.graph.edit_user(&id, |u| {
        u.disabled_plans.insert(e3.into(), vec![teams.into()]);
    });
    e.graph.license(&id, e5, Some(&group));
    let p = no_params();
    let (account, before) = apply_recording(&e, "remove_licenses", &p).await;
    assert_eq!(
        before,
        json!({
            "id": id,
            "direct": [{ "skuId": e3, "disabledPlans": [teams] }],
            "inherited": [{ "skuId": e5, "group": group }],
        })
    );
    assert!(
        e.graph
            .user(&id)
            .unwrap()
            .licenses
            .iter()
            .all(|(s, _)| s != e3)
    );
    restore_twice(&e, "remove_licenses", &p, &account, &before).await;
    let u = e.graph.user(&id).unwrap();
    assert!(u.licenses.contains(&(e3.to_string(), None)));
    assert_eq!(u.disabled_plans[e3], [teams]);

    // Removed again, and the subscription has no licence left: Graph's words, the SKU named.
    let c = call("remove_licenses", ALICE, &p, Some(&account));
    e.provider.apply(&c, &CallCtx::silent()).await.unwrap();
    e.graph.use_up_sku(e3);
    let err = e
        .provider
        .restore(&c, &before, &CallCtx::silent())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(e3) && msg.contains("does not have any available licenses"),
        "{msg}"
    );
    let chk = e
        .provider
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(
        !chk.restored && chk.observed.contains("not assigned again"),
        "{chk:?}"
    );
    e.graph.assert_contract();
}

#[tokio::test]
async fn rollback_puts_the_old_automatic_replies_back() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    // Alice had her own scheduled holiday reply.
    e.graph.edit_user(&id, |u| {
        u.auto_reply["status"] = json!("scheduled");
        u.auto_reply["externalAudience"] = json!("contactsOnly");
        u.auto_reply["internalReplyMessage"] = json!("On holiday until Monday.");
    });
    let p = params(json!({ "internal": "Alice has left Contoso." }));
    let (account, before) = apply_recording(&e, "set_auto_reply", &p).await;
    assert_eq!(before["id"], json!(id));
    assert_eq!(before["automaticRepliesSetting"]["status"], "scheduled");
    assert_eq!(
        before["automaticRepliesSetting"]["scheduledStartDateTime"]["dateTime"],
        "2026-11-01T00:00:00.0000000"
    );
    assert_eq!(
        e.graph.user(&id).unwrap().auto_reply["status"],
        "alwaysEnabled"
    );
    restore_twice(&e, "set_auto_reply", &p, &account, &before).await;
    let back = e.graph.user(&id).unwrap().auto_reply;
    assert_eq!(back["status"], "scheduled");
    assert_eq!(back["externalAudience"], "contactsOnly");
    assert!(
        back["internalReplyMessage"]
            .as_str()
            .unwrap()
            .contains("On holiday until Monday."),
        "{back}"
    );
    e.graph.assert_contract();
}

#[tokio::test]
async fn rollback_sets_the_recorded_immutable_id_again() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    e.graph.edit_user(&id, |u| {
        u.immutable_id = Some("x2Wq0AbcdEFghIJklMNopq==".into())
    });
    let p = no_params();
    let (account, before) = apply_recording(&e, "clear_immutable_id", &p).await;
    assert_eq!(
        before,
        json!({ "id": id, "onPremisesImmutableId": "x2Wq0AbcdEFghIJklMNopq==" })
    );
    assert_eq!(e.graph.user(&id).unwrap().immutable_id, None);
    restore_twice(&e, "clear_immutable_id", &p, &account, &before).await;
    assert_eq!(
        e.graph.user(&id).unwrap().immutable_id.as_deref(),
        Some("x2Wq0AbcdEFghIJklMNopq==")
    );
    // Another anchor set since is not overwritten.
    e.graph
        .edit_user(&id, |u| u.immutable_id = Some("other==".into()));
    let c = call("clear_immutable_id", ALICE, &p, Some(&account));
    let err = e
        .provider
        .restore(&c, &before, &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not overwritten"), "{err}");
    e.graph.assert_contract();
}

#[tokio::test]
async fn rollback_restores_a_deleted_user_from_deleted_items_and_not_after_the_window() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let p = no_params();
    let (account, before) = apply_recording(&e, "delete_user", &p).await;
    assert_eq!(
        before,
        json!({ "id": id, "userPrincipalName": ALICE, "exists": true })
    );
    assert!(e.graph.deleted(&id));
    let c = call("delete_user", ALICE, &p, Some(&account));
    let plan = e.provider.describe_restore(&c, &before);
    assert_eq!(
        plan.last().map(|l| format!("{} {}", l.method, l.url)),
        Some(format!(
            "POST {}/directory/deletedItems/{id}/restore",
            e.graph.base_url
        ))
    );
    restore_twice(&e, "delete_user", &p, &account, &before).await;
    assert!(e.graph.user(&id).is_some() && !e.graph.deleted(&id));

    // Deleted again and purged (past the 30 days): it cannot come back, and both say so.
    e.graph.delete_user(&id);
    e.graph.purge(&id);
    let err = e
        .provider
        .restore(&c, &before, &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not in deleted items"), "{err}");
    let chk = e
        .provider
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(
        !chk.restored && chk.observed.contains("no longer exists"),
        "{chk:?}"
    );
    e.graph.assert_contract();
}

#[tokio::test]
async fn rollback_makes_the_deleted_inbox_rules_again_from_the_recorded_copy() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let fwd = e
        .graph
        .add_rule(&id, "To my phone", Some("alice@phone.test"));
    e.graph.add_rule(&id, "CEO mail", None);
    let p = no_params();
    let (account, before) = apply_recording(&e, "remove_forwarding_rules", &p).await;
    assert_eq!(
        before,
        json!({ "id": id, "rules": [{
            "displayName": "To my phone", "sequence": 1, "isEnabled": true,
            "conditions": { "senderContains": ["ceo"] },
            "actions": { "forwardTo": [{ "emailAddress": {
                "name": "alice@phone.test", "address": "alice@phone.test" } }] },
            "formerId": fwd,
        }]})
    );
    assert_eq!(e.graph.user(&id).unwrap().rules.len(), 1);
    restore_twice(&e, "remove_forwarding_rules", &p, &account, &before).await;
    let rules = e.graph.user(&id).unwrap().rules;
    assert_eq!(rules.len(), 2);
    let again = rules
        .iter()
        .find(|r| r["displayName"] == "To my phone")
        .unwrap();
    assert_ne!(again["id"], json!(fwd), "a rule made again has a new id");
    assert_eq!(
        again["actions"]["forwardTo"][0]["emailAddress"]["address"],
        "alice@phone.test"
    );
    // Written as a rule is written: no id, no offboard bookkeeping.
    assert!(again.get("formerId").is_none(), "{again}");

    // Every rule deleted, then made again.
    let (account, before) = apply_recording(&e, "remove_inbox_rules", &p).await;
    assert_eq!(before["rules"].as_array().unwrap().len(), 2);
    assert!(e.graph.user(&id).unwrap().rules.is_empty());
    restore_twice(&e, "remove_inbox_rules", &p, &account, &before).await;
    assert_eq!(e.graph.user(&id).unwrap().rules.len(), 2);
    e.graph.assert_contract();
}

#[tokio::test]
async fn rollback_takes_back_the_onedrive_access_it_gave_and_only_that() {
    let e = env().await;
    let id = e.graph.add_user(ALICE);
    let boss = e.graph.add_user("bob@contoso.com");
    let carol = e.graph.add_user("carol@contoso.com");
    e.graph.edit_user(&id, |u| u.manager = Some(boss.clone()));
    // Carol already had read access, given by Alice herself: not offboard's to take back.
    let to_carol = params(json!({ "to": "carol@contoso.com", "role": "read" }));
    e.provider
        .apply(
            &call("grant_onedrive_access", ALICE, &to_carol, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    let carols: Vec<Value> = e.graph.user(&id).unwrap().drive.unwrap().permissions;
    assert_eq!(carols.len(), 2, "owner + carol");
    let p = no_params();
    let (account, before) = apply_recording(&e, "grant_onedrive_access", &p).await;
    let drive = e.graph.user(&id).unwrap().drive.unwrap();
    assert_eq!(before["id"], json!(id));
    assert_eq!(before["driveId"], json!(drive.id));
    assert_eq!(before["recipient"]["id"], json!(boss));
    assert_eq!(before["permissionIds"], json!([]));
    assert_eq!(drive.permissions.len(), 3);
    restore_twice(&e, "grant_onedrive_access", &p, &account, &before).await;
    let left = e.graph.user(&id).unwrap().drive.unwrap().permissions;
    assert_eq!(
        left, carols,
        "bob's grant taken back; the owner's and carol's kept"
    );

    // Rolling back Carol's step when she held the grant before: nothing taken.
    let held = json!({
        "id": id,
        "driveId": drive.id,
        "recipient": { "id": carol, "addresses": ["carol@contoso.com"] },
        "permissionIds": [carols[1]["id"]],
    });
    let out = e
        .provider
        .restore(
            &call("grant_onedrive_access", ALICE, &to_carol, Some(&account)),
            &held,
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!out.changed, "{out:?}");
    assert_eq!(
        e.graph.user(&id).unwrap().drive.unwrap().permissions,
        carols
    );
    e.graph.assert_contract();
}
