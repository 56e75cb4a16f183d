//! The vault provider's error paths against a Vault-shaped fake.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fake_kit::{
    Contract, FakeServer, Fault, Reply, RetryAfterStyle, Routes, Shape, Template, obj,
};
use common::fake_vault::{Canned, FakeVault, system_config, vault_contract};
use offboard::providers::kit::http::RetryPolicy;
use offboard::providers::vault::VaultProvider;
use offboard::providers::{Account, CallCtx, Provider, ProviderError, RetryNote, StepCall};
use serde_json::{Map, Value, json};

const TOKEN: &str = "hvs.fake-token-8c21f0";

fn provider_with(fake: &FakeVault, token: &str, settings: &[(&str, &str)]) -> VaultProvider {
    let mut cfg = system_config(&fake.base_url, Some(token));
    for (k, v) in settings {
        cfg.settings
            .insert((*k).into(), toml::Value::String((*v).into()));
    }
    VaultProvider::new(&cfg).unwrap().with_retry(RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(5),
        max_wait: Duration::from_secs(5),
        max_total: Duration::from_secs(10),
    })
}

fn provider(fake: &FakeVault) -> VaultProvider {
    provider_with(fake, TOKEN, &[])
}

fn call<'a>(action: &'a str, login: &'a str, params: &'a Map<String, Value>) -> StepCall<'a> {
    StepCall {
        step_id: "step",
        action,
        login,
        params,
        account: None,
    }
}

fn paths(p: &[&str]) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("paths".into(), json!(p));
    m
}

fn recording_ctx() -> (CallCtx, Arc<Mutex<Vec<RetryNote>>>) {
    let notes = Arc::new(Mutex::new(Vec::new()));
    let n = notes.clone();
    (
        CallCtx::new(move |note| n.lock().unwrap().push(note)),
        notes,
    )
}

fn metadata(version: u64) -> Canned {
    Canned::ok(
        json!({"data": {"current_version": version, "custom_metadata": null, "versions": {}}}),
    )
}

#[tokio::test]
async fn permission_denied_names_the_policy_and_hides_the_token() {
    let fake = FakeVault::start("the-real-token").await;
    let p = provider(&fake); // sends TOKEN, which the fake does not know
    let none = Map::new();
    let err = p
        .apply(&call("disable_entity", "alice", &none), &CallCtx::silent())
        .await
        .unwrap_err();
    let m = err.to_string();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(m.contains("GET /v1/sys/auth → 403 Forbidden"), "{m}");
    assert!(
        m.contains("policies") && m.contains("server said: permission denied"),
        "{m}"
    );
    assert!(!m.contains(TOKEN), "{m}");
    // Sent as X-Vault-Token, never as Authorization; no retry of a 403.
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    assert!(!reqs[0].has_authorization);
    fake.assert_contract();
}

#[tokio::test]
async fn headers_and_namespace() {
    let fake = FakeVault::start(TOKEN).await;
    fake.route(
        "GET",
        "/v1/auth/userpass/users/alice",
        Canned::errors(404, &[]),
    );
    let p = provider_with(
        &fake,
        TOKEN,
        &[("namespace", "team-a/"), ("userpass_mount", "corp/up")],
    );
    let none = Map::new();
    // The mount path is two segments; a bare 404 is "no such user".
    fake.route(
        "GET",
        "/v1/auth/corp/up/users/alice",
        Canned::errors(404, &[]),
    );
    // Never seen by offboard: a 404 proves nothing.
    let err = p
        .check(
            &call("delete_userpass_user", "Alice", &none),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    // Seen (and deleted) by an earlier apply: its 404 is the proof.
    let seen = Account::new("auth/corp/up/users/alice", "userpass user path", "alice");
    let chk = p
        .check(
            &StepCall {
                account: Some(&seen),
                ..call("delete_userpass_user", "Alice", &none)
            },
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(chk.revoked, "{chk:?}");
    assert_eq!(chk.account.as_ref(), Some(&seen));
    let r = &fake.requests()[0];
    assert_eq!(r.raw_path, "/v1/auth/corp/up/users/alice");
    assert!(r.token_ok && !r.has_authorization);
    assert_eq!(r.namespace.as_deref(), Some("team-a"));
    fake.server
        .assert_contract(&vault_contract("secret", "corp/up"));
}

#[tokio::test]
async fn a_missing_mount_is_not_a_missing_user() {
    let fake = FakeVault::start(TOKEN).await;
    fake.route(
        "GET",
        "/v1/auth/userpass/users/alice",
        Canned::errors(
            404,
            &["no handler for route \"auth/userpass/users/alice\". route entry not found."],
        ),
    );
    let none = Map::new();
    let err = provider(&fake)
        .check(
            &call("delete_userpass_user", "alice", &none),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Permanent(m) if m.contains("no handler for route") && m.contains("setting userpass_mount")),
        "{err:?}"
    );
    fake.assert_contract();
}

#[tokio::test]
async fn missing_secret_and_hostile_paths() {
    let fake = FakeVault::start(TOKEN).await;
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let err = p
        .apply(&call("rotate_secret", "alice", &paths(&["team/db"])), &ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Permanent(m) if m.contains("no KV v2 secret at `team/db`")),
        "{err:?}"
    );
    assert_eq!(fake.requests()[0].raw_path, "/v1/secret/metadata/team/db");

    // Traversal and empty segments are refused before any request.
    let before = fake.requests().len();
    for bad in ["../sys/policy", "team//db", "team/db/", "team/./db"] {
        let err = p
            .apply(&call("rotate_secret", "alice", &paths(&[bad])), &ctx)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Permanent(m) if m.contains("params.paths")),
            "{bad}: {err:?}"
        );
    }
    let mut no_paths = Map::new();
    no_paths.insert("paths".into(), json!("team/db"));
    assert!(
        p.apply(&call("rotate_secret", "alice", &no_paths), &ctx)
            .await
            .is_err()
    );
    assert!(
        p.apply(&call("rotate_secret", "alice", &Map::new()), &ctx)
            .await
            .is_err()
    );
    assert_eq!(fake.requests().len(), before);

    // Other characters are percent-encoded inside a segment.
    let _ = p
        .apply(
            &call("rotate_secret", "alice", &paths(&["team a/db?x#y"])),
            &ctx,
        )
        .await;
    assert_eq!(
        fake.requests().last().unwrap().raw_path,
        "/v1/secret/metadata/team%20a/db%3Fx%23y"
    );
    // A login with `/` is no userpass username.
    let none = Map::new();
    let err = p
        .apply(&call("delete_userpass_user", "a/../b", &none), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Permanent(_)));
    fake.assert_contract();
}

#[tokio::test]
async fn rate_limits_and_unavailability_are_retried() {
    let fake = FakeVault::start(TOKEN).await;
    fake.route(
        "GET",
        "/v1/auth/userpass/users/alice",
        Canned::ok(json!({"data": {}})),
    );
    fake.fail_next(&[
        Canned::too_many(0),
        Canned::errors(503, &["Vault is sealed"]),
    ]);
    let (ctx, notes) = recording_ctx();
    let none = Map::new();
    let chk = provider(&fake)
        .check(&call("delete_userpass_user", "alice", &none), &ctx)
        .await
        .unwrap();
    assert!(!chk.revoked);
    let notes = notes.lock().unwrap().clone();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].reason.contains("429"), "{notes:?}");
    assert!(notes[1].reason.contains("503"), "{notes:?}");

    // A 503 that lasts: transient, with Vault's message.
    fake.fail_next(&[
        Canned::errors(503, &["Vault is sealed"]),
        Canned::errors(503, &["Vault is sealed"]),
        Canned::errors(503, &["Vault is sealed"]),
    ]);
    let err = provider(&fake)
        .check(
            &call("delete_userpass_user", "alice", &none),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Transient(m) if m.contains("Vault is sealed")),
        "{err:?}"
    );
    fake.assert_contract();
}

#[tokio::test]
async fn a_concurrent_write_is_transient_and_no_value_leaks() {
    let fake = FakeVault::start(TOKEN).await;
    fake.route("GET", "/v1/secret/metadata/team/db", metadata(3));
    fake.route(
        "GET",
        "/v1/secret/data/team/db",
        Canned::ok(
            json!({"data": {"data": {"password": "known-to-alice"}, "metadata": {"version": 3}}}),
        ),
    );
    fake.route(
        "POST",
        "/v1/secret/data/team/db",
        Canned::errors(
            400,
            &["check-and-set parameter did not match the current version"],
        ),
    );
    let err = provider(&fake)
        .apply(
            &call("rotate_secret", "alice", &paths(&["team/db"])),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    let m = err.to_string();
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    assert!(m.contains("changed while it was being rotated"), "{m}");
    // The write used check-and-set on the version read, kept the keys, and sent a new value.
    let post = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    let body = post.body.unwrap();
    assert_eq!(body["options"]["cas"], json!(3));
    let new = body["data"]["password"].as_str().unwrap().to_string();
    assert_ne!(new, "known-to-alice");
    assert!(!m.contains(&new) && !m.contains("known-to-alice"), "{m}");
    // The fake's GET of the data was by explicit version.
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.raw_query.as_deref() == Some("version=3"))
    );
    fake.assert_contract();
}

#[tokio::test]
async fn the_metadata_write_failing_says_what_was_done() {
    let fake = FakeVault::start(TOKEN).await;
    fake.route("GET", "/v1/secret/metadata/team/db", metadata(1));
    fake.route(
        "GET",
        "/v1/secret/data/team/db",
        Canned::ok(json!({"data": {"data": {"password": "p"}, "metadata": {"version": 1}}})),
    );
    fake.route(
        "POST",
        "/v1/secret/data/team/db",
        Canned::ok(json!({"data": {"version": 2}})),
    );
    fake.route(
        "POST",
        "/v1/secret/metadata/team/db",
        Canned::errors(403, &["permission denied"]),
    );
    let err = provider(&fake)
        .apply(
            &call("rotate_secret", "alice", &paths(&["team/db"])),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    let m = err.to_string();
    assert!(
        m.contains("`team/db` was rotated (version 1 → 2) but recording that"),
        "{m}"
    );
    assert!(m.contains("403"), "{m}");
    fake.assert_contract();
}

/// A fake that answers every request the four actions send, with an entity id that needs
/// encoding (it must travel as one percent-encoded segment).
async fn full_vault() -> FakeVault {
    let fake = FakeVault::start(TOKEN).await;
    fake.route(
        "GET",
        "/v1/sys/auth",
        Canned::ok(json!({"data": {"userpass/": {"type": "userpass", "accessor": "auth_up_1"}}})),
    );
    let entity = json!({"data": {"id": "ent/1 x", "name": "alice", "disabled": false}});
    fake.route(
        "POST",
        "/v1/identity/lookup/entity",
        Canned::ok(entity.clone()),
    );
    fake.route(
        "GET",
        "/v1/identity/entity/id/ent%2F1%20x",
        Canned::ok(entity),
    );
    fake.route(
        "POST",
        "/v1/identity/entity/id/ent%2F1%20x",
        Canned::no_content(),
    );
    fake.route(
        "GET",
        "/v1/auth/token/accessors",
        Canned::ok(json!({"data": {"keys": ["acc1", "acc2"]}})),
    );
    fake.route(
        "POST",
        "/v1/auth/token/lookup-accessor",
        Canned::ok(json!({"data": {"entity_id": "ent/1 x"}})),
    );
    fake.route(
        "PUT",
        "/v1/sys/leases/revoke-prefix/auth/userpass/login/alice",
        Canned::no_content(),
    );
    fake.route(
        "POST",
        "/v1/auth/token/revoke-accessor",
        Canned::no_content(),
    );
    fake.route("GET", "/v1/secret/metadata/team/db", metadata(1));
    fake.route(
        "GET",
        "/v1/secret/data/team/db",
        Canned::ok(json!({"data": {"data": {"password": "p"}, "metadata": {"version": 1}}})),
    );
    fake.route(
        "POST",
        "/v1/secret/data/team/db",
        Canned::ok(json!({"data": {"version": 2}})),
    );
    fake.route("POST", "/v1/secret/metadata/team/db", Canned::no_content());
    fake.route(
        "GET",
        "/v1/auth/userpass/users/alice",
        Canned::ok(json!({"data": {"policies": ["dev"]}})),
    );
    fake.route(
        "DELETE",
        "/v1/auth/userpass/users/alice",
        Canned::no_content(),
    );
    fake
}

#[tokio::test]
async fn every_action_keeps_to_the_vault_contract() {
    let fake = full_vault().await;
    let p = provider(&fake);
    let ctx = CallCtx::silent();
    let none = Map::new();
    let disabled = p
        .apply(&call("disable_entity", "alice", &none), &ctx)
        .await
        .unwrap();
    assert!(disabled.changed, "{disabled:?}");
    // Check by the recorded entity reads it by id.
    let _ = p
        .check(
            &StepCall {
                account: disabled.account.as_ref(),
                ..call("disable_entity", "alice", &none)
            },
            &ctx,
        )
        .await
        .unwrap();
    let revoked = p
        .apply(&call("revoke_tokens", "alice", &none), &ctx)
        .await
        .unwrap();
    assert!(
        revoked.summary.contains("revoked 2 live token(s)"),
        "{revoked:?}"
    );
    p.apply(&call("rotate_secret", "alice", &paths(&["team/db"])), &ctx)
        .await
        .unwrap();
    p.apply(&call("delete_userpass_user", "alice", &none), &ctx)
        .await
        .unwrap();
    fake.assert_contract();
    // The contract is not dead letter: these runs used all but the operations below.
    let reqs = fake.server.requests();
    let unused: Vec<String> = vault_contract("secret", "userpass")
        .operations
        .iter()
        .filter(|op| {
            !reqs.iter().any(|r| {
                Contract {
                    operations: vec![(*op).clone()],
                    ..vault_contract("secret", "userpass")
                }
                .check(r)
                .is_ok()
            })
        })
        .map(|op| format!("{} {}", op.method, op.path_template))
        .collect();
    assert_eq!(
        unused,
        [
            "GET /v1/identity/entity/name/{name}",
            "LIST /v1/auth/token/accessors",
        ],
        "{reqs:#?}"
    );
}

#[tokio::test]
async fn the_contract_catches_malformed_requests() {
    let fake = full_vault().await;
    let http = reqwest::Client::new();
    let url = |p: &str| fake.server.url(p);
    let json_ct = ("content-type", "application/json");
    let sends = [
        // 0: well-formed
        http.post(url("/v1/identity/entity/id/ent%2F1"))
            .header("x-vault-token", TOKEN)
            .header(json_ct.0, json_ct.1)
            .body(r#"{"disabled":true}"#),
        // 1: a raw `/` inside the id
        http.post(url("/v1/identity/entity/id/ent/1"))
            .header("x-vault-token", TOKEN)
            .header(json_ct.0, json_ct.1)
            .body(r#"{"disabled":true}"#),
        // 2: a mistyped property
        http.post(url("/v1/identity/entity/id/e1"))
            .header("x-vault-token", TOKEN)
            .header(json_ct.0, json_ct.1)
            .body(r#"{"disabled":"true"}"#),
        // 3: an undeclared method
        http.delete(url("/v1/identity/entity/id/e1"))
            .header("x-vault-token", TOKEN),
        // 4: no token
        http.get(url("/v1/sys/auth")),
        // 5: a missing required property
        http.post(url("/v1/auth/token/revoke-accessor"))
            .header("x-vault-token", TOKEN)
            .header(json_ct.0, json_ct.1)
            .body("{}"),
        // 6: JSON without its content type
        http.post(url("/v1/auth/token/lookup-accessor"))
            .header("x-vault-token", TOKEN)
            .body(r#"{"accessor":"a"}"#),
        // 7: LIST as GET without list=true
        http.get(url("/v1/auth/token/accessors"))
            .header("x-vault-token", TOKEN),
        // 8: a body where none belongs, and an undeclared query parameter
        http.get(url("/v1/secret/metadata/team/db?verbose=1"))
            .header("x-vault-token", TOKEN)
            .body("{}"),
    ];
    for s in sends {
        s.send().await.unwrap();
    }
    let v = fake.contract_violations();
    let expect = [
        "#1 POST /v1/identity/entity/id/ent/1: no declared operation has this path",
        "#2 POST /v1/identity/entity/id/e1: $.disabled: expected bool, got \"true\"",
        "#3 DELETE /v1/identity/entity/id/e1: method DELETE not declared for this path",
        "#4 GET /v1/sys/auth: missing header x-vault-token",
        "#5 POST /v1/auth/token/revoke-accessor: $: missing property accessor (string)",
        "#6 POST /v1/auth/token/lookup-accessor: missing header content-type",
        "#7 GET /v1/auth/token/accessors: missing query parameter list",
        "#8 GET /v1/secret/metadata/team/db?verbose=1: undeclared query parameter verbose; unexpected body (2 bytes)",
    ];
    assert_eq!(v.len(), expect.len(), "{v:#?}");
    for (got, want) in v.iter().zip(expect) {
        assert!(
            got.starts_with(want),
            "{got}\n  does not start with\n{want}"
        );
    }
    // And assert_contract fails the test with that list.
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fake.assert_contract()))
        .unwrap_err();
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.starts_with("8 of 9 requests broke the vault contract:\n  #1 POST"),
        "{msg}"
    );
    assert!(!msg.contains(TOKEN), "{msg}");
}

// The kit itself (tests/common is compiled per test binary; its self-tests live here).

fn kit_routes() -> Routes {
    Routes::new()
        .secret_header("x-api-key", "k-123")
        .route("GET", "/x/{id}", |req| {
            Reply::json(200, &json!({"id": req.param("id"), "q": req.query("q")}))
        })
}

fn epoch_in(resp: &reqwest::Response, name: &str) -> i64 {
    let v: i64 = resp.headers()[name].to_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    v - now
}

#[tokio::test]
async fn kit_faults_come_as_declared() {
    let kit = FakeServer::start(kit_routes()).await;
    let http = reqwest::Client::new();
    let get = |p: &str| http.get(kit.url(p)).send();
    for f in [
        Fault::too_many(RetryAfterStyle::Seconds(7)),
        Fault::too_many(RetryAfterStyle::HttpDate(120)),
        Fault::too_many(RetryAfterStyle::OktaReset(30)),
        Fault::too_many(RetryAfterStyle::GitHubReset(45)),
        Fault::too_many(RetryAfterStyle::Nothing),
        Fault::server_error(),
        Fault::bad_gateway(),
        Fault::unavailable(Some(RetryAfterStyle::Seconds(2))),
    ] {
        kit.fail_next(f);
    }
    let r = get("/x/1").await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let r = get("/x/1").await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let when = httpdate::parse_http_date(r.headers()["retry-after"].to_str().unwrap()).unwrap();
    let secs = when
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    assert!((115..=120).contains(&secs), "{secs}");
    let r = get("/x/1").await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_none());
    assert_eq!(r.headers()["x-rate-limit-remaining"], "0");
    assert!((28..=30).contains(&epoch_in(&r, "x-rate-limit-reset")));
    let r = get("/x/1").await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_none());
    assert_eq!(r.headers()["x-ratelimit-remaining"], "0");
    assert!((43..=45).contains(&epoch_in(&r, "x-ratelimit-reset")));
    let r = get("/x/1").await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    for h in ["retry-after", "x-rate-limit-reset", "x-ratelimit-reset"] {
        assert!(r.headers().get(h).is_none(), "{h}");
    }
    for (status, hint) in [(500, None), (502, None), (503, Some("2"))] {
        let r = get("/x/1").await.unwrap();
        assert_eq!(r.status().as_u16(), status);
        assert_eq!(
            r.headers().get("retry-after").map(|v| v.to_str().unwrap()),
            hint
        );
    }
    // Each fault is consumed once: the handler answers again.
    let r = get("/x/a%2Fb?q=1%202").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"id": "a/b", "q": "1 2"})
    );

    // A reset: no answer at all, and quickly (no timeout).
    kit.fail_next(Fault::Reset);
    let t = std::time::Instant::now();
    let err = get("/x/1").await.unwrap_err();
    assert!(!err.is_timeout() && err.status().is_none(), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(2));
    // A broken body: the status arrives, the body does not.
    kit.fail_next(Fault::BreakBody);
    let r = get("/x/1").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.bytes().await.is_err());
    // A hang outlasts a client's timeout.
    kit.fail_next(Fault::Hang(Duration::from_millis(800)));
    let err = http
        .get(kit.url("/x/1"))
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");

    // A route fault waits for its route; a global one takes the next request.
    kit.fail_next_on("GET", "/x/{id}", Fault::bad_gateway());
    assert_eq!(get("/nowhere").await.unwrap().status().as_u16(), 404);
    assert_eq!(kit.pending_faults(), 1);
    assert_eq!(get("/x/2").await.unwrap().status().as_u16(), 502);
    assert_eq!(kit.pending_faults(), 0);

    let injected: Vec<String> = kit.injected().iter().map(ToString::to_string).collect();
    assert_eq!(
        injected,
        [
            "429 (Seconds(7)) on #0 GET /x/1",
            "429 (HttpDate(120)) on #1 GET /x/1",
            "429 (OktaReset(30)) on #2 GET /x/1",
            "429 (GitHubReset(45)) on #3 GET /x/1",
            "429 (Nothing) on #4 GET /x/1",
            "500 on #5 GET /x/1",
            "502 on #6 GET /x/1",
            "503 (Seconds(2)) on #7 GET /x/1",
            "reset on #9 GET /x/1",
            "broken body on #10 GET /x/1",
            "hang 800 ms on #11 GET /x/1",
            "502 on #13 GET /x/2",
        ]
    );
    let reqs = kit.requests();
    assert_eq!(reqs.len(), 14);
    assert_eq!(reqs[8].fault, None);
    assert_eq!(reqs[13].fault.as_deref(), Some("502"));
}

#[tokio::test]
async fn kit_records_requests_without_secrets() {
    let kit = FakeServer::start(kit_routes()).await;
    reqwest::Client::new()
        .post(kit.url("/x/a%20b?list=true&q=x%26y"))
        .header("authorization", "Bearer sekrit-bearer")
        .header("x-api-key", "k-123")
        .header("x-trace", "t1")
        .body(r#"{"a":[1]}"#)
        .send()
        .await
        .unwrap();
    reqwest::Client::new()
        .get(kit.url("/x/1"))
        .header("x-api-key", "not-it")
        .body("plain")
        .send()
        .await
        .unwrap();
    let reqs = kit.requests();
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.raw_path.as_str()),
        ("POST", "/x/a%20b")
    );
    assert_eq!(r.raw_query.as_deref(), Some("list=true&q=x%26y"));
    assert_eq!(
        r.query,
        [("list".into(), "true".into()), ("q".into(), "x&y".into())]
    );
    assert_eq!(r.header("Authorization"), Some("Bearer <redacted>"));
    assert_eq!(r.auth_scheme(), Some("Bearer"));
    assert!(r.secret_ok("x-api-key"));
    assert_eq!(r.header("x-trace"), Some("t1"));
    assert_eq!(r.json, Some(json!({"a": [1]})));
    assert_eq!(r.body, br#"{"a":[1]}"#);
    assert!(!reqs[1].secret_ok("x-api-key") && reqs[1].json.is_none());
    assert_eq!(reqs[1].auth_scheme(), None);
    let all = format!("{reqs:?}");
    assert!(!all.contains("sekrit") && !all.contains("k-123") && !all.contains("not-it"));
}

#[test]
fn kit_path_templates_take_one_encoded_segment_per_parameter() {
    let one = Template::parse("/v1/identity/entity/id/{id}");
    assert_eq!(
        one.matches("/v1/identity/entity/id/a%2Fb").unwrap()["id"],
        "a/b"
    );
    for bad in [
        "/v1/identity/entity/id/a/b",
        "/v1/identity/entity/id/",
        "/v1/identity/entity/id/..",
        "/v1/identity/entity/id/%2e%2E",
        "/v1/identity/entity/id/a%2",
        "/v1/identity/entity/id/a%zz",
        "/v1/identity/entity/id/a b",
        "/v1/identity/entity",
        "/v1/identity/entity/name/x",
    ] {
        assert!(one.matches(bad).is_none(), "{bad}");
    }
    let rest = Template::parse("/v1/secret/data/{*path}");
    assert_eq!(
        rest.matches("/v1/secret/data/team/d%20b").unwrap()["path"],
        "team/d b"
    );
    for bad in [
        "/v1/secret/data",
        "/v1/secret/data/",
        "/v1/secret/data/team//db",
        "/v1/secret/data/team/../db",
        "/v1/secret/data/team/db/",
    ] {
        assert!(rest.matches(bad).is_none(), "{bad}");
    }
    // A literal compares decoded; a nested object shape reports where it breaks.
    assert!(Template::parse("/v1/a b").matches("/v1/a%20b").is_some());
    let shape: Shape = obj()
        .req("kind", Shape::one_of(&["user", "group"]))
        .req("tags", Shape::array(Shape::String))
        .opt("inner", obj().req("n", Shape::Integer))
        .into();
    let mut out = Vec::new();
    shape.check(
        &json!({"kind": "robot", "tags": ["a", 1], "inner": {"n": 1.5}, "x": null}),
        "$",
        &mut out,
    );
    assert_eq!(
        out,
        [
            "$.kind: expected one of [\"user\", \"group\"], got \"robot\"",
            "$.tags[1]: expected string, got 1",
            "$.inner.n: expected integer, got 1.5",
            "$: undeclared property x",
        ]
    );
}

// ---- rollback: the pre-state an apply records, and putting it back ----

/// A ctx that keeps every pre-state an apply records.
fn before_ctx() -> (CallCtx, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (
        CallCtx::silent().on_before(move |v| sink.lock().unwrap().push(v.clone())),
        seen,
    )
}

fn entity(disabled: bool) -> Canned {
    Canned::ok(json!({"data": {"id": "ent/1 x", "name": "alice", "disabled": disabled}}))
}

#[tokio::test]
async fn disable_entity_records_the_flag_and_restore_re_enables_the_entity_by_id() {
    let fake = full_vault().await;
    let p = provider(&fake);
    let none = Map::new();
    let (ctx, seen) = before_ctx();
    let out = p
        .apply(&call("disable_entity", "alice", &none), &ctx)
        .await
        .unwrap();
    let before = seen.lock().unwrap().clone();
    assert_eq!(
        before,
        [json!({"entity_id": "ent/1 x", "name": "alice", "disabled": false})]
    );
    let b = &before[0];
    let account = out.account.unwrap();
    let on = StepCall {
        account: Some(&account),
        ..call("disable_entity", "alice", &none)
    };
    let silent = CallCtx::silent();
    // Disabled now, as the apply left it.
    fake.route("GET", "/v1/identity/entity/id/ent%2F1%20x", entity(true));
    let c = p.check_restored(&on, b, &silent).await.unwrap();
    assert!(!c.restored, "{c:?}");
    let r = p.restore(&on, b, &silent).await.unwrap();
    assert!(r.changed, "{r:?}");
    let posts: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.raw_path == "/v1/identity/entity/id/ent%2F1%20x")
        .collect();
    assert_eq!(posts.len(), 2, "the disable and the restore");
    assert_eq!(posts[1].body, Some(json!({"disabled": false})));
    // Enabled again: the check says so and a second restore sends nothing.
    fake.route("GET", "/v1/identity/entity/id/ent%2F1%20x", entity(false));
    let c = p.check_restored(&on, b, &silent).await.unwrap();
    assert!(c.restored, "{c:?}");
    assert_eq!(c.after, *b);
    let n = fake.requests().len();
    let again = p.restore(&on, b, &silent).await.unwrap();
    assert!(!again.changed, "{again:?}");
    assert!(fake.requests()[n..].iter().all(|r| r.method == "GET"));
    assert_eq!(
        p.describe_restore(&on, b)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()[1],
        format!(
            "POST {}/v1/identity/entity/id/ent%2F1%20x {{\"disabled\":false}} (if it differs)",
            fake.base_url.trim_end_matches('/')
        )
    );
    // Deleted since: not restorable, and said so.
    fake.route(
        "GET",
        "/v1/identity/entity/id/ent%2F1%20x",
        Canned::errors(404, &[]),
    );
    let c = p.check_restored(&on, b, &silent).await.unwrap();
    assert!(
        !c.restored && c.observed.contains("no longer exists"),
        "{c:?}"
    );
    let e = p.restore(&on, b, &silent).await.unwrap_err();
    assert!(e.to_string().contains("no longer exists"), "{e}");
    fake.assert_contract();
}

#[tokio::test]
async fn an_entity_disabled_before_offboard_stays_disabled() {
    let fake = full_vault().await;
    fake.route("POST", "/v1/identity/lookup/entity", entity(true));
    fake.route("GET", "/v1/identity/entity/id/ent%2F1%20x", entity(true));
    let p = provider(&fake);
    let none = Map::new();
    let (ctx, seen) = before_ctx();
    let out = p
        .apply(&call("disable_entity", "alice", &none), &ctx)
        .await
        .unwrap();
    assert!(!out.changed);
    let b = seen.lock().unwrap()[0].clone();
    assert_eq!(b["disabled"], json!(true));
    let account = out.account.unwrap();
    let on = StepCall {
        account: Some(&account),
        ..call("disable_entity", "alice", &none)
    };
    let r = p.restore(&on, &b, &CallCtx::silent()).await.unwrap();
    assert!(!r.changed, "{r:?}");
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.raw_path.starts_with("/v1/identity/entity/id/"))
    );
}

#[tokio::test]
async fn the_other_actions_record_no_secret_and_say_why_they_cannot_be_undone() {
    let fake = full_vault().await;
    fake.route(
        "GET",
        "/v1/secret/data/team/db",
        Canned::ok(
            json!({"data": {"data": {"password": "s3cret-old-value"}, "metadata": {"version": 1}}}),
        ),
    );
    let p = provider(&fake);
    let none = Map::new();
    let mut pre = Vec::new();
    for (action, params) in [
        ("revoke_tokens", none.clone()),
        ("rotate_secret", paths(&["team/db"])),
        ("delete_userpass_user", none.clone()),
    ] {
        let (ctx, seen) = before_ctx();
        let out = p
            .apply(&call(action, "alice", &params), &ctx)
            .await
            .unwrap();
        let b = seen.lock().unwrap().clone();
        assert_eq!(b.len(), 1, "{action}: {b:?}");
        let text = b[0].to_string();
        assert!(
            !text.contains("s3cret") && !text.contains(TOKEN),
            "{action}: {text}"
        );
        let e = p
            .restore(
                &StepCall {
                    account: out.account.as_ref(),
                    ..call(action, "alice", &params)
                },
                &b[0],
                &CallCtx::silent(),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("cannot be undone"), "{action}: {e}");
        pre.push(b[0].clone());
    }
    assert_eq!(pre[0], json!({"entity_id": "ent/1 x", "live_tokens": 2}));
    assert_eq!(
        pre[1],
        json!({"secrets": [{"path": "secret/team/db", "current_version": 1}]})
    );
    assert_eq!(
        pre[2],
        json!({"user": "auth/userpass/users/alice", "exists": true,
               "settings": {"policies": ["dev"]}})
    );
    let inverse = |name: &str| {
        offboard::providers::vault::KIND
            .actions
            .iter()
            .find(|a| a.name == name)
            .unwrap()
            .inverse
    };
    use offboard::providers::Inverse;
    assert!(matches!(inverse("disable_entity"), Inverse::Restore(_)));
    assert!(
        matches!(inverse("revoke_tokens"), Inverse::None(w) if w.contains("cannot be revived"))
    );
    assert!(
        matches!(inverse("rotate_secret"), Inverse::None(w) if w.contains("retired on purpose"))
    );
    assert!(matches!(inverse("delete_userpass_user"), Inverse::None(_)));
}
