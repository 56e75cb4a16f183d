//! The vault provider's error paths against a Vault-shaped fake.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fake_vault::{Canned, FakeVault, system_config};
use offboard::providers::http::RetryPolicy;
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
}
