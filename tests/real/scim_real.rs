//! The scim provider against the real scim2-server (PyPI, pinned in
//! tests/servers/install-scim.sh), started on a free loopback port for this test.
//!
//! Without the venv the test is skipped with a message, except under CI (env `CI` set), where it
//! fails: CI must run tests/servers/install-scim.sh first.

use std::time::Duration;

use offboard::providers::kit::http::RetryPolicy;
use offboard::providers::scim::ScimProvider;
use offboard::providers::{CallCtx, Provider, ProviderError, StepCall, SystemConfig};
use serde_json::{Value, json};

const TOKEN: &str = "real-scim-test-token-91c4";

use crate::common;

use common::servers::RealServer;

/// The running server (stopped when dropped) and its SCIM root.
struct Server {
    _server: RealServer,
    base_url: String,
}

impl Server {
    fn start() -> Option<Server> {
        RealServer::scim(TOKEN).map(|s| Server {
            base_url: format!("http://127.0.0.1:{}/v2", s.port),
            _server: s,
        })
    }
}

fn config(base_url: &str) -> SystemConfig {
    SystemConfig {
        timeout: Duration::from_secs(10),
        ..SystemConfig::new("real-scim", "scim", Some(base_url)).with_token(TOKEN)
    }
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

/// Direct access to the server, as an admin would have, to set the scene.
struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    async fn create_user(&self, user_name: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/Users", self.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": user_name,
                "active": true,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "creating {user_name:?}");
        let v: Value = resp.json().await.unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    async fn get_user(&self, id: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}/Users/{id}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn set_active(&self, id: &str, active: bool) {
        let resp = self
            .http
            .patch(format!("{}/Users/{id}", self.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": active}],
            }))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }
}

impl Admin {
    async fn create_group(&self, name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let resp = self
            .http
            .post(format!("{}/Groups", self.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": name,
                "members": members,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "creating group {name:?}");
        let v: Value = resp.json().await.unwrap();
        v["id"].as_str().unwrap().to_string()
    }

    async fn members(&self, gid: &str) -> Vec<String> {
        let resp = self
            .http
            .get(format!("{}/Groups/{gid}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        v["members"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| m["value"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn add_member(&self, gid: &str, uid: &str) {
        let resp = self
            .http
            .patch(format!("{}/Groups/{gid}", self.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}],
            }))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }
}

fn quick_retries(p: ScimProvider) -> ScimProvider {
    p.with_retry(RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(50),
        max_wait: Duration::from_secs(2),
        max_total: Duration::from_secs(5),
    })
}

#[tokio::test]
async fn real_scim2_server() {
    let Some(server) = Server::start() else {
        return;
    };
    let admin = Admin {
        http: reqwest::Client::new(),
        base: server.base_url.clone(),
    };
    let p = quick_retries(ScimProvider::new(&config(&server.base_url)).unwrap());
    let params = serde_json::Map::new();
    let ctx = CallCtx::silent();

    // Deactivate: scim2-server answers the PATCH with 204.
    let login = "alice@corp.test";
    let id = admin.create_user(login).await;
    let bystander = admin.create_user("bob@corp.test").await;
    let out = p
        .apply(&call("deactivate_user", login, &params), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{out:?}");
    assert_eq!(
        out.summary,
        format!("deactivated SCIM user {id} (active: true → false)")
    );
    assert_eq!(out.requests.len(), 2);
    assert_eq!(
        (out.requests[1].method.as_str(), out.requests[1].status),
        ("PATCH", 204)
    );
    assert_eq!(admin.get_user(&id).await.1["active"], json!(false));
    assert_eq!(admin.get_user(&bystander).await.1["active"], json!(true));

    // Check, then an idempotent re-apply.
    let chk = p
        .check(&call("deactivate_user", login, &params), &ctx)
        .await
        .unwrap();
    assert!(chk.revoked);
    assert_eq!(chk.observed, "active=false");
    let again = p
        .apply(&call("deactivate_user", login, &params), &ctx)
        .await
        .unwrap();
    assert!(!again.changed, "{again:?}");
    assert!(
        again.requests.iter().all(|r| r.method == "GET"),
        "{again:?}"
    );

    // Drift: someone turns the account back on.
    admin.set_active(&id, true).await;
    let chk = p
        .check(&call("deactivate_user", login, &params), &ctx)
        .await
        .unwrap();
    assert!(!chk.revoked);
    assert_eq!(chk.observed, "active=true");

    // Delete, check (the filter finds nobody, the id answers 404), delete again.
    let chk = p
        .check(&call("delete_user", login, &params), &ctx)
        .await
        .unwrap();
    assert!(!chk.revoked);
    let out = p
        .apply(&call("delete_user", login, &params), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    assert_eq!(out.requests[1].status, 204);
    assert_eq!(admin.get_user(&id).await.0, 404);
    let account = out.account.expect("the account deleted");
    assert_eq!(account.id, id);
    for action in ["delete_user", "deactivate_user"] {
        // Read by the id offboard recorded: gone, so revoked.
        let on_id = StepCall {
            account: Some(&account),
            ..call(action, login, &params)
        };
        let chk = p.check(&on_id, &ctx).await.unwrap();
        assert!(chk.revoked, "{action}");
        assert_eq!(
            chk.observed,
            format!("SCIM user {id} no longer exists (404 by id: deleted)")
        );
        // By login alone the filter finds nobody: that proves nothing.
        let err = p
            .check(&call(action, login, &params), &ctx)
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    }
    let on_id = StepCall {
        account: Some(&account),
        ..call("delete_user", login, &params)
    };
    let again = p.apply(&on_id, &ctx).await.unwrap();
    assert!(!again.changed);

    // Unknown user, and a rejected token.
    let err = p
        .apply(&call("deactivate_user", "nobody@corp.test", &params), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    let mut bad = config(&server.base_url);
    bad.token = Some(secrecy::SecretString::from("not-the-token".to_string()));
    let err = ScimProvider::new(&bad)
        .unwrap()
        .apply(&call("deactivate_user", "bob@corp.test", &params), &ctx)
        .await
        .unwrap_err();
    let m = err.to_string();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(m.contains("401") && m.contains("token was rejected"), "{m}");
    assert!(!m.contains("not-the-token"), "{m}");

    // Hostile logins round-trip through the real filter parser.
    for login in [
        r#"a"b\c"#,
        "../x",
        "%2F",
        "with space",
        "zoë.ümlaut@例え.jp",
        "line\nbreak",
        "x&filter=userName pr",
    ] {
        let id = admin.create_user(login).await;
        let out = p
            .apply(&call("deactivate_user", login, &params), &ctx)
            .await
            .unwrap_or_else(|e| panic!("{login:?}: {e}"));
        assert!(out.changed, "{login:?}");
        assert!(out.summary.contains(&id), "{login:?}: {}", out.summary);
        assert_eq!(
            admin.get_user(&id).await.1["active"],
            json!(false),
            "{login:?}"
        );
        let chk = p
            .check(&call("deactivate_user", login, &params), &ctx)
            .await
            .unwrap();
        assert!(chk.revoked, "{login:?}");
        assert_eq!(admin.get_user(&bystander).await.1["active"], json!(true));
    }
    drop(server);
}

#[tokio::test]
async fn real_scim2_server_groups() {
    let Some(server) = Server::start() else {
        return;
    };
    let admin = Admin {
        http: reqwest::Client::new(),
        base: server.base_url.clone(),
    };
    let p = quick_retries(ScimProvider::new(&config(&server.base_url)).unwrap());
    let ctx = CallCtx::silent();
    let none = serde_json::Map::new();

    let alice = admin.create_user("alice@corp.test").await;
    let bob = admin.create_user("bob@corp.test").await;
    let eng = admin.create_group("eng", &[&alice, &bob]).await;
    let vpn = admin.create_group("vpn", &[&alice]).await;
    let ops = admin.create_group("ops", &[&bob]).await;
    let rg = call("remove_from_groups", "alice@corp.test", &none);

    let chk = p.check(&rg, &ctx).await.unwrap();
    assert!(!chk.revoked);
    assert_eq!(chk.observed, "still member of: eng, vpn");

    // Only the listed groups.
    let mut only = serde_json::Map::new();
    only.insert("groups".into(), json!(["VPN"]));
    let out = p
        .apply(&call("remove_from_groups", "alice@corp.test", &only), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{out:?}");
    assert_eq!(
        out.summary,
        format!("removed SCIM user {alice} from 1 group(s) (of the listed: VPN): vpn")
    );
    assert!(admin.members(&vpn).await.is_empty());
    assert_eq!(admin.members(&eng).await.len(), 2);

    // Then all of them; PATCH answers 204 on scim2-server.
    let out = p.apply(&rg, &ctx).await.unwrap();
    assert!(out.changed, "{out:?}");
    assert_eq!(
        out.summary,
        format!("removed SCIM user {alice} from 1 group(s): eng")
    );
    assert_eq!(out.requests.last().unwrap().status, 204);
    assert_eq!(admin.members(&eng).await, vec![bob.clone()]);
    assert_eq!(admin.members(&ops).await, vec![bob.clone()]);
    let chk = p.check(&rg, &ctx).await.unwrap();
    assert!(chk.revoked, "{chk:?}");
    assert_eq!(chk.observed, "member of no group");
    let again = p.apply(&rg, &ctx).await.unwrap();
    assert!(!again.changed, "{again:?}");
    assert!(again.requests.iter().all(|r| r.method == "GET"));

    // Drift: someone adds the person back.
    admin.add_member(&ops, &alice).await;
    let chk = p.check(&rg, &ctx).await.unwrap();
    assert!(!chk.revoked);
    assert_eq!(chk.observed, "still member of: ops");
    let chk = p
        .check(&call("remove_from_groups", "alice@corp.test", &only), &ctx)
        .await
        .unwrap();
    assert!(chk.revoked, "only vpn was listed: {chk:?}");
    assert!(p.apply(&rg, &ctx).await.unwrap().changed);
    assert_eq!(admin.members(&ops).await, vec![bob.clone()]);

    // Bob was never touched.
    let chk = p
        .check(&call("remove_from_groups", "bob@corp.test", &none), &ctx)
        .await
        .unwrap();
    assert_eq!(chk.observed, "still member of: eng, ops");
    drop(server);
}

/// Rollback on the real server: a deactivated user removed from its groups comes back active
/// and in each group, by id; a group deleted since is reported as not restorable.
#[tokio::test]
async fn real_scim2_server_restore() {
    let Some(server) = Server::start() else {
        return;
    };
    let admin = Admin {
        http: reqwest::Client::new(),
        base: server.base_url.clone(),
    };
    let p = quick_retries(ScimProvider::new(&config(&server.base_url)).unwrap());
    let none = serde_json::Map::new();
    let alice = admin.create_user("alice@corp.test").await;
    let bob = admin.create_user("bob@corp.test").await;
    let eng = admin.create_group("eng", &[&alice, &bob]).await;
    let vpn = admin.create_group("vpn", &[&alice]).await;
    let gone = admin.create_group("gone", &[&alice]).await;

    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let ctx = CallCtx::silent().on_before(move |v| sink.lock().unwrap().push(v.clone()));
    let out = p
        .apply(&call("deactivate_user", "alice@corp.test", &none), &ctx)
        .await
        .unwrap();
    let account = out.account.unwrap();
    let out = p
        .apply(&call("remove_from_groups", "alice@corp.test", &none), &ctx)
        .await
        .unwrap();
    assert!(out.changed, "{out:?}");
    let befores = seen.lock().unwrap().clone();
    assert_eq!(befores[0], json!({"active": true}));
    let mut recorded: Vec<&str> = befores[1]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    recorded.sort();
    let mut expected = vec![eng.as_str(), vpn.as_str(), gone.as_str()];
    expected.sort();
    assert_eq!(recorded, expected);
    assert_eq!(admin.get_user(&alice).await.1["active"], json!(false));

    // The group `gone` is deleted before the rollback.
    let resp = admin
        .http
        .delete(format!("{}/Groups/{gone}", admin.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());

    let silent = CallCtx::silent();
    let deact = StepCall {
        account: Some(&account),
        ..call("deactivate_user", "alice@corp.test", &none)
    };
    let r = p.restore(&deact, &befores[0], &silent).await.unwrap();
    assert!(r.changed, "{r:?}");
    assert_eq!(admin.get_user(&alice).await.1["active"], json!(true));
    let chk = p
        .check_restored(&deact, &befores[0], &silent)
        .await
        .unwrap();
    assert!(chk.restored, "{chk:?}");
    assert_eq!(chk.after, json!({"active": true}));

    let groups = StepCall {
        account: Some(&account),
        ..call("remove_from_groups", "alice@corp.test", &none)
    };
    let r = p.restore(&groups, &befores[1], &silent).await.unwrap();
    assert!(r.changed, "{r:?}");
    assert!(r.summary.contains("no longer exist: gone"), "{}", r.summary);
    let mut eng_members = admin.members(&eng).await;
    eng_members.sort();
    let mut want = vec![alice.clone(), bob.clone()];
    want.sort();
    assert_eq!(eng_members, want);
    assert_eq!(admin.members(&vpn).await, vec![alice.clone()]);
    let chk = p
        .check_restored(&groups, &befores[1], &silent)
        .await
        .unwrap();
    assert!(!chk.restored, "{chk:?}");
    assert!(
        chk.observed.contains(&format!(
            "not restorable: group gone ({gone}) no longer exists"
        )),
        "{}",
        chk.observed
    );
    // Restoring again adds nobody twice.
    let again = p.restore(&groups, &befores[1], &silent).await.unwrap();
    assert!(!again.changed, "{again:?}");
    assert_eq!(admin.members(&vpn).await, vec![alice.clone()]);
    drop(server);
}

/// A rescinded termination rolled back on the real server through the binary: `start`, then
/// `rollback --out` and `start --plan`; the user is active again and back in its groups, the
/// delete that never ran is cancelled, and the evidence shows before and after.
#[test]
fn real_scim2_server_rollback_through_the_binary() {
    use common::cli_env::{CliEnv, text};
    let Some(server) = Server::start() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admin = Admin {
        http: reqwest::Client::new(),
        base: server.base_url.clone(),
    };
    let (alice, eng) = rt.block_on(async {
        let alice = admin.create_user("alice@corp.example").await;
        let bob = admin.create_user("bob@corp.example").await;
        let eng = admin.create_group("eng", &[&alice, &bob]).await;
        (alice, eng)
    });
    let mut env = CliEnv::new();
    env.var("SCIM_TOKEN", TOKEN);
    env.write_runbook(&format!(
        r#"
[runbook]
name = "Real SCIM leaver"

[systems.hr]
kind = "scim"
base_url = "{}"
token = {{ env = "SCIM_TOKEN" }}

[[step]]
id = "hr-deactivate"
lane = "it"
system = "hr"
action = "deactivate_user"

[[step]]
id = "hr-groups"
lane = "it"
system = "hr"
action = "remove_from_groups"
after = ["hr-deactivate"]

[[step]]
id = "badge"
lane = "facilities"
manual = "Collect the badge"
phase = "close"
"#,
        server.base_url
    ));
    let out = env.run(&CliEnv::start_args("alice@corp.example"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let id = env.departure_of("alice@corp.example").unwrap();
    rt.block_on(async {
        assert_eq!(admin.get_user(&alice).await.1["active"], json!(false));
        assert!(!admin.members(&eng).await.contains(&alice));
    });
    let out = env.run(&["rollback", &id, "--out", "rollback.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = env.run(&["start", "--plan", "rollback.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    rt.block_on(async {
        assert_eq!(admin.get_user(&alice).await.1["active"], json!(true));
        assert!(admin.members(&eng).await.contains(&alice));
    });
    env.assert_evidence_verifies(&id);
    let ev: Value =
        serde_json::from_slice(&std::fs::read(env.evidence_path(&id)).unwrap()).unwrap();
    let rb = &ev["predicate"]["rollback"];
    assert_eq!(rb["complete"], true, "{rb}");
    assert_eq!(rb["cancelled"][0]["step"], "badge");
    let steps = rb["steps"].as_array().unwrap();
    let d = steps.iter().find(|s| s["step"] == "hr-deactivate").unwrap();
    assert_eq!(d["before"], json!({"active": true}));
    assert_eq!(d["after"], json!({"active": true}));
    assert_eq!(d["outcome"], "restored");
    let g = steps.iter().find(|s| s["step"] == "hr-groups").unwrap();
    assert_eq!(g["before"]["groups"][0]["id"], json!(eng));
    assert_eq!(g["outcome"], "restored");
    drop(server);
}
