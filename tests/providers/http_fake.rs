//! The declarative `http` kind against a fake REST API (tests/common/fake_crm.rs): lookup →
//! apply → check, unpaged and paged lookups, "not found" never taken for "revoked", the recorded
//! id is what later checks read, and, through the binary, templates percent-encoded and legal
//! hold blocking a destructive request.

use offboard::providers::{
    Account, CallCtx, Inverse, Provider, ProviderError, StepCall, SystemConfig, UNDO_NOT_BUILT,
    find_kind,
};
use serde_json::{Map, Value, json};

use crate::common::cli_env::{CliEnv, fake_runtime, text};
use crate::common::fake_crm::FakeCrm;

const TOKEN: &str = "crm-token-Zq81";

fn provider(fake: &FakeCrm) -> std::sync::Arc<dyn Provider> {
    let kind = find_kind("http").unwrap();
    (kind.connect)(
        &SystemConfig::new("crm", "http", Some(&fake.server.base_url)).with_token(&fake.token),
    )
    .unwrap()
}

/// What planning hands the provider for `lookup` by email (already rendered and encoded).
fn disable_params(lookup: Value) -> Map<String, Value> {
    json!({
        "lookup": lookup,
        "apply": { "method": "PATCH", "path": "/v2/users/{{ lookup.id }}", "json": { "status": "disabled" } },
        "check": { "path": "/v2/users/{{ lookup.id }}", "expect": { "pointer": "/status", "equals": "disabled" } },
    })
    .as_object()
    .unwrap()
    .clone()
}

fn by_email(email: &str) -> Value {
    json!({ "path": format!("/v2/users?email={}", email.replace('@', "%40")), "items": "/data", "id": "/id", "name": "/email" })
}

fn call<'a>(
    login: &'a str,
    params: &'a Map<String, Value>,
    account: Option<&'a Account>,
) -> StepCall<'a> {
    StepCall {
        step_id: "crm-disable",
        action: "request",
        login,
        params,
        account,
    }
}

#[tokio::test]
async fn lookup_apply_check_on_the_account_found() {
    let fake = FakeCrm::start(TOKEN).await;
    let bob = fake.add_user("bob@corp.test", "active");
    let alice = fake.add_user("alice@corp.test", "active");
    let p = provider(&fake);
    let params = disable_params(by_email("alice@corp.test"));

    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let ctx = CallCtx::silent().on_account(move |a| s.lock().unwrap().push(a.clone()));
    let out = p
        .apply(&call("alice@corp.test", &params, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{out:?}");
    let account = out.account.clone().unwrap();
    assert_eq!(account.id, alice);
    assert_eq!(account.name, "alice@corp.test");
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        std::slice::from_ref(&account)
    );
    assert_eq!(fake.user(&alice).unwrap().status, "disabled");
    assert_eq!(fake.user(&bob).unwrap().status, "active");
    // lookup, the read before (not yet), the change.
    let lines: Vec<String> = fake.requests().iter().map(|r| r.line()).collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[2].starts_with(&format!("PATCH /v2/users/{alice}")),
        "{lines:#?}"
    );

    let c = p
        .check(
            &call("alice@corp.test", &params, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(c.revoked, "{c:?}");
    assert_eq!(c.account.as_ref(), Some(&account));
    assert_eq!(c.observed, "/status=\"disabled\"");

    // Applying again changes nothing and sends no PATCH.
    fake.server.clear_requests();
    let again = p
        .apply(
            &call("alice@corp.test", &params, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!again.changed, "{again:?}");
    assert!(fake.requests().iter().all(|r| r.method != "PATCH"));
    fake.assert_contract();
}

#[tokio::test]
async fn paged_lookup_finds_the_person_on_a_later_page() {
    let fake = FakeCrm::start(TOKEN).await;
    for n in 0..4 {
        fake.add_user(&format!("user{n}@corp.test"), "active");
    }
    let carol = fake.add_user("Carol@Corp.test", "active");
    let p = provider(&fake);
    let params = disable_params(json!({
        "path": "/v2/users",
        "items": "/data",
        "paging": "link",
        "match": { "pointer": "/email", "equals": "carol@corp.test" },
        "id": "/id",
    }));
    let out = p
        .apply(&call("carol@corp.test", &params, None), &CallCtx::silent())
        .await
        .unwrap();
    assert_eq!(out.account.unwrap().id, carol);
    let pages = fake
        .requests()
        .iter()
        .filter(|r| {
            r.method == "GET" && r.line().contains("/v2/users?page") || r.line() == "GET /v2/users"
        })
        .count();
    assert_eq!(pages, 3, "{:#?}", fake.requests());
    assert_eq!(fake.user(&carol).unwrap().status, "disabled");
    fake.assert_contract();
}

#[tokio::test]
async fn nobody_found_is_not_found_never_revoked() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.add_user("alice@corp.test", "active");
    let p = provider(&fake);
    // An empty list.
    let params = disable_params(by_email("nobody@corp.test"));
    for result in [
        p.check(&call("nobody@corp.test", &params, None), &CallCtx::silent())
            .await
            .map(|_| ()),
        p.apply(&call("nobody@corp.test", &params, None), &CallCtx::silent())
            .await
            .map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(ProviderError::NotFound(_))),
            "{result:?}"
        );
    }
    // A 404 on the lookup itself.
    let params = disable_params(json!({ "path": "/v2/people/nobody", "id": "/id" }));
    let r = p
        .check(&call("nobody@corp.test", &params, None), &CallCtx::silent())
        .await;
    assert!(matches!(r, Err(ProviderError::NotFound(_))), "{r:?}");
    // An answer without the id.
    let params =
        disable_params(json!({ "path": "/v2/users?email=nobody%40corp.test", "id": "/data/0/id" }));
    let r = p
        .check(&call("nobody@corp.test", &params, None), &CallCtx::silent())
        .await;
    assert!(matches!(r, Err(ProviderError::NotFound(_))), "{r:?}");
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn two_matches_is_an_error_not_a_guess() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.add_user("alice@corp.test", "active");
    fake.add_user("ALICE@corp.test", "active");
    let p = provider(&fake);
    let params = disable_params(by_email("alice@corp.test"));
    let err = p
        .apply(&call("alice@corp.test", &params, None), &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Permanent(m) if m.contains("found 2 accounts")),
        "{err:?}"
    );
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn the_recorded_id_is_what_later_checks_read() {
    let fake = FakeCrm::start(TOKEN).await;
    let alice = fake.add_user("alice@corp.test", "active");
    let p = provider(&fake);
    let params = disable_params(by_email("alice@corp.test"));
    let account = p
        .apply(&call("alice@corp.test", &params, None), &CallCtx::silent())
        .await
        .unwrap()
        .account
        .unwrap();
    // A new, active account now holds the email: the check still reads the one cut.
    let newcomer = fake.add_user("alice@corp.test", "active");
    let c = p
        .check(
            &call("alice@corp.test", &params, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(
        c.revoked && c.account.as_ref().unwrap().id == alice,
        "{c:?}"
    );
    assert!(
        fake.requests()
            .iter()
            .all(|r| !r.line().contains(&newcomer))
    );
    // Re-enabled by someone: drift, seen by id.
    fake.server.clear_requests();
    let (patch_back, _) = {
        let params = json!({ "status": "active" });
        (params, ())
    };
    let client = reqwest::Client::new();
    client
        .patch(fake.server.url(&format!("/v2/users/{alice}")))
        .bearer_auth(TOKEN)
        .json(&patch_back)
        .send()
        .await
        .unwrap();
    let c = p
        .check(
            &call("alice@corp.test", &params, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!c.revoked, "{c:?}");
}

#[tokio::test]
async fn a_destructive_request_deletes_and_a_gone_account_is_revoked() {
    let fake = FakeCrm::start(TOKEN).await;
    let alice = fake.add_user("alice@corp.test", "active");
    let p = provider(&fake);
    let params: Map<String, Value> = json!({
        "lookup": by_email("alice@corp.test"),
        "apply": { "method": "DELETE", "path": "/v2/users/{{ lookup.id }}", "done_statuses": [404] },
        "check": { "path": "/v2/users/{{ lookup.id }}", "expect": { "pointer": "/deleted", "equals": true } },
    })
    .as_object()
    .unwrap()
    .clone();
    let c = StepCall {
        action: "destructive_request",
        ..call("alice@corp.test", &params, None)
    };
    let out = p.apply(&c, &CallCtx::silent()).await.unwrap();
    assert!(out.changed);
    assert!(fake.user(&alice).is_none());
    let account = out.account.unwrap();
    let c = StepCall {
        account: Some(&account),
        ..c
    };
    let checked = p.check(&c, &CallCtx::silent()).await.unwrap();
    assert!(checked.revoked, "{checked:?}");
    assert_eq!(checked.observed, "404 (account gone)");
    assert!(!p.apply(&c, &CallCtx::silent()).await.unwrap().changed);
    fake.assert_contract();
}

#[tokio::test]
async fn a_bad_token_is_the_apis_own_message_and_never_echoed() {
    let fake = FakeCrm::start(TOKEN).await;
    fake.add_user("alice@corp.test", "active");
    let kind = find_kind("http").unwrap();
    let p = (kind.connect)(
        &SystemConfig::new("crm", "http", Some(&fake.server.base_url))
            .with_token("wrong-Secret-77"),
    )
    .unwrap();
    let params = disable_params(by_email("alice@corp.test"));
    let err = p
        .check(&call("alice@corp.test", &params, None), &CallCtx::silent())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("invalid or missing API token"), "{msg}");
    assert!(!msg.contains("wrong-Secret-77"), "{msg}");
}

/// The `auth` table on the `http` kind: OAuth client credentials from a token endpoint, whose
/// token is the one the API accepts; fetched once for the lookup, the read and the change.
#[tokio::test]
async fn oauth2_client_credentials_authorise_the_declared_requests() {
    use crate::common::fake_token::FakeTokenEndpoint;
    use offboard::providers::kit::auth::{AuthSpec, OAuth2Auth};
    let endpoint = FakeTokenEndpoint::start("crm-client", "crm-client-secret-5e", TOKEN).await;
    let fake = FakeCrm::start(TOKEN).await;
    let alice = fake.add_user("alice@corp.test", "active");
    let cfg = SystemConfig {
        auth: Some(AuthSpec::OAuth2(OAuth2Auth {
            token_url: endpoint.url.clone(),
            client_id: "crm-client".into(),
            scopes: Vec::new(),
            audience: None,
            client_secret: Some(secrecy::SecretString::from("crm-client-secret-5e")),
            client_auth: None,
            private_key: None,
            key_id: None,
        })),
        ..SystemConfig::new("crm", "http", Some(&fake.server.base_url))
    };
    let p = (find_kind("http").unwrap().connect)(&cfg).unwrap();
    let params = disable_params(by_email("alice@corp.test"));
    let out = p
        .apply(&call("alice@corp.test", &params, None), &CallCtx::silent())
        .await
        .unwrap();
    assert!(out.changed, "{out:?}");
    assert_eq!(fake.user(&alice).unwrap().status, "disabled");
    assert_eq!(endpoint.issued(), 1);
    assert_eq!(fake.requests().len(), 3);
    fake.assert_contract();
}

fn runbook(base: &str, legal_hold: bool) -> String {
    format!(
        r#"[runbook]
name = "CRM leaver"
legal_hold = {legal_hold}

[systems.crm]
kind = "http"
base_url = "{base}"
token = {{ env = "CRM_TOKEN" }}

[[step]]
id = "crm-disable"
lane = "saas"
system = "crm"
action = "request"
params.lookup = {{ path = "/v2/users?email={{{{ user.email }}}}", items = "/data", id = "/id", name = "/email" }}
params.apply = {{ method = "PATCH", path = "/v2/users/{{{{ lookup.id }}}}", json = {{ status = "disabled" }} }}
params.check = {{ path = "/v2/users/{{{{ lookup.id }}}}", expect = {{ pointer = "/status", equals = "disabled" }} }}

[[step]]
id = "crm-delete"
lane = "saas"
system = "crm"
action = "destructive_request"
phase = "close"
after = ["crm-disable"]
params.lookup = {{ path = "/v2/users?email={{{{ user.email }}}}", items = "/data", id = "/id" }}
params.apply = {{ method = "DELETE", path = "/v2/users/{{{{ lookup.id }}}}", done_statuses = [404] }}
params.check = {{ path = "/v2/users/{{{{ lookup.id }}}}", expect = {{ pointer = "/deleted", equals = true }} }}
"#
    )
}

/// Through the binary: the email's `+` and `@` reach the API percent-encoded (a raw `+` would be
/// read as a space and find nobody), the step is done with the account's id in the evidence,
/// and legal hold keeps the destructive request from running.
#[test]
fn start_runs_the_declared_requests_and_legal_hold_blocks_the_delete() {
    let rt = fake_runtime();
    let fake = rt.block_on(FakeCrm::start(TOKEN));
    let user = "alice+ops@corp.test";
    let id = fake.add_user(user, "active");
    let mut env = CliEnv::new();
    env.var("CRM_TOKEN", TOKEN);
    env.write_runbook(&runbook(&fake.server.base_url, true));

    let check = env.run(&["runbook", "check", "offboard.toml"]);
    assert!(check.status.success(), "{}", text(&check));
    let out = env.run(&CliEnv::start_args(user));
    let all = text(&out);
    assert!(
        fake.user(&id).is_some(),
        "legal hold let the delete through:\n{all}"
    );
    assert_eq!(fake.user(&id).unwrap().status, "disabled", "{all}");
    let dep = env.departure_of(user).unwrap();
    let statuses = env.step_statuses(&dep);
    assert!(
        statuses.contains(&("crm-disable".into(), "done".into())),
        "{statuses:?}\n{all}"
    );
    assert!(
        statuses.contains(&("crm-delete".into(), "skipped".into())),
        "{statuses:?}"
    );
    let search = fake
        .requests()
        .into_iter()
        .find(|r| r.line().starts_with("GET /v2/users?"))
        .unwrap();
    assert_eq!(search.query_param("email"), Some(user), "{}", search.line());
    let evidence = std::fs::read_to_string(env.evidence_path(&dep)).unwrap();
    assert!(evidence.contains(&id), "the evidence names the account id");
    let doc: Value = serde_json::from_str(&evidence).unwrap();
    let blocked = doc["predicate"]["legal_hold"]["blocked"].to_string();
    assert!(blocked.contains("crm-delete"), "{blocked}");
    let doc: Value = serde_json::from_str(&evidence).unwrap();
    let blocked = doc["predicate"]["legal_hold"]["blocked"].to_string();
    assert!(blocked.contains("crm-delete"), "{blocked}");
    assert!(!evidence.contains(TOKEN) && !all.contains(TOKEN));
    env.assert_evidence_verifies(&dep);
    fake.assert_contract();
}

#[test]
fn http_steps_declare_why_they_cannot_be_undone() {
    let kind = find_kind("http").unwrap();
    for a in kind.actions {
        assert!(
            matches!(a.inverse, Inverse::None(why) if why != UNDO_NOT_BUILT
                && why.contains("no known inverse")),
            "{}: {:?}",
            a.name,
            a.inverse
        );
    }
}

#[tokio::test]
async fn apply_records_the_value_its_check_reads_before_the_change() {
    let fake = FakeCrm::start(TOKEN).await;
    let alice = fake.add_user("alice@corp.test", "active");
    let p = provider(&fake);
    let params = disable_params(by_email("alice@corp.test"));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let ctx = CallCtx::silent().on_before(move |v| s.lock().unwrap().push(v.clone()));
    p.apply(&call("alice@corp.test", &params, None), &ctx)
        .await
        .unwrap();
    assert_eq!(
        seen.lock().unwrap().clone(),
        [json!({ "id": alice, "pointer": "/status", "value": "active" })]
    );
    // Applied again: the pre-state shows the change already in place.
    seen.lock().unwrap().clear();
    let out = p
        .apply(&call("alice@corp.test", &params, None), &ctx)
        .await
        .unwrap();
    assert!(!out.changed);
    assert_eq!(
        seen.lock().unwrap().clone(),
        [json!({ "id": alice, "pointer": "/status", "value": "disabled" })]
    );
}
