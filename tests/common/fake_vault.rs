//! A small Vault-shaped fake on the [`fake_kit`](super::fake_kit): `X-Vault-Token` auth (a wrong
//! token gets Vault's 403 `{"errors":["permission denied"]}`), canned answers per method and raw
//! path, Vault's bare 404 `{"errors":[]}` for anything else, and queued faults (429 with
//! `Retry-After`, 503, any status with a Vault error body). Every request is recorded as received
//! (the token only as whether it was the expected one), and [`vault_contract`] declares the
//! requests the vault adapter may send, so a test can assert none was malformed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::fake_kit::{
    Contract, FakeServer, Fault, Operation, QueryValue, Reply, Routes, Shape, obj,
};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Still percent-encoded, exactly as sent.
    pub raw_path: String,
    pub raw_query: Option<String>,
    pub body: Option<Value>,
    /// `X-Vault-Token` was the expected token.
    pub token_ok: bool,
    pub namespace: Option<String>,
    pub has_authorization: bool,
}

#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub body: Option<Value>,
    pub retry_after: Option<u64>,
}

impl Canned {
    pub fn ok(body: Value) -> Canned {
        Canned {
            status: 200,
            body: Some(body),
            retry_after: None,
        }
    }
    pub fn no_content() -> Canned {
        Canned {
            status: 204,
            body: None,
            retry_after: None,
        }
    }
    pub fn errors(status: u16, errors: &[&str]) -> Canned {
        Canned {
            status,
            body: Some(json!({ "errors": errors })),
            retry_after: None,
        }
    }
    pub fn too_many(retry_after: u64) -> Canned {
        Canned {
            status: 429,
            body: Some(json!({"errors": ["request path \"x\": rate limit quota exceeded"]})),
            retry_after: Some(retry_after),
        }
    }

    fn reply(&self) -> Reply {
        let r = match &self.body {
            Some(b) => Reply::json(self.status, b),
            None => Reply::empty(self.status),
        };
        match self.retry_after {
            Some(s) => r.header("retry-after", s),
            None => r,
        }
    }
}

type CannedRoutes = Arc<Mutex<BTreeMap<(String, String), Canned>>>;

#[derive(Clone)]
pub struct FakeVault {
    pub base_url: String,
    /// The kit underneath: faults of every style, the raw record, contract checks.
    pub server: FakeServer,
    routes: CannedRoutes,
}

impl FakeVault {
    pub async fn start(token: &str) -> FakeVault {
        let routes: CannedRoutes = Arc::default();
        let r = routes.clone();
        let server = FakeServer::start(
            Routes::new()
                .secret_header("x-vault-token", token)
                .error_reply(|status, msg| Reply::json(status, &json!({ "errors": [msg] })))
                .fallback({
                    let token = token.to_string();
                    move |req| {
                        if req.header("x-vault-token") != Some(token.as_str()) {
                            return Canned::errors(403, &["permission denied"]).reply();
                        }
                        r.lock()
                            .unwrap()
                            .get(&(req.method.to_string(), req.raw_path.to_string()))
                            .map(Canned::reply)
                            .unwrap_or_else(|| Canned::errors(404, &[]).reply())
                    }
                }),
        )
        .await;
        FakeVault {
            base_url: server.base_url.clone(),
            server,
            routes,
        }
    }

    /// Answer `method raw_path` (e.g. `GET /v1/secret/metadata/team/db`) with `canned`.
    pub fn route(&self, method: &str, raw_path: &str, canned: Canned) {
        self.routes
            .lock()
            .unwrap()
            .insert((method.into(), raw_path.into()), canned);
    }

    /// The next requests answer these, in order, whatever they ask.
    pub fn fail_next(&self, faults: &[Canned]) {
        for f in faults {
            self.server.fail_next(Fault::Reply(f.reply()));
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server
            .requests()
            .into_iter()
            .map(|r| Recorded {
                token_ok: r.secret_ok("x-vault-token"),
                namespace: r.header("x-vault-namespace").map(str::to_string),
                has_authorization: r.header("authorization").is_some(),
                body: r.json,
                method: r.method,
                raw_path: r.raw_path,
                raw_query: r.raw_query,
            })
            .collect()
    }

    /// The lines [`FakeVault::assert_contract`] would panic with.
    pub fn contract_violations(&self) -> Vec<String> {
        self.server
            .contract_violations(&vault_contract("secret", "userpass"))
    }

    /// Panic unless every request so far is one the vault adapter may send (see
    /// [`vault_contract`]) with the default mounts (`secret`, `userpass`).
    #[track_caller]
    pub fn assert_contract(&self) {
        self.server
            .assert_contract(&vault_contract("secret", "userpass"));
    }
}

/// The Vault HTTP API as the vault adapter uses it (see `src/providers/vault/`), for the KV v2
/// engine at `kv_mount` and the userpass method at `userpass_mount` (each may have several
/// segments). Every request carries `X-Vault-Token` (`X-Vault-Namespace` is optional); JSON
/// bodies carry `Content-Type: application/json` and only the properties Vault documents.
pub fn vault_contract(kv_mount: &str, userpass_mount: &str) -> Contract {
    let kv = kv_mount.trim_matches('/');
    let up = userpass_mount.trim_matches('/');
    let accessor = || obj().req("accessor", Shape::String);
    Contract::new("vault")
        .every_request_header("x-vault-token")
        .op(Operation::new("GET", "/v1/sys/auth"))
        // Lookup by name, id, alias id, or alias name + mount accessor.
        .op(
            Operation::new("POST", "/v1/identity/lookup/entity").json_body(
                obj()
                    .opt("name", Shape::String)
                    .opt("id", Shape::String)
                    .opt("alias_id", Shape::String)
                    .opt("alias_name", Shape::String)
                    .opt("alias_mount_accessor", Shape::String),
            ),
        )
        .op(Operation::new("GET", "/v1/identity/entity/name/{name}"))
        .op(Operation::new("GET", "/v1/identity/entity/id/{id}"))
        // Update an entity by id.
        .op(
            Operation::new("POST", "/v1/identity/entity/id/{id}").json_body(
                obj()
                    .opt("name", Shape::String)
                    .opt("metadata", Shape::map(Shape::String))
                    .opt("policies", Shape::array(Shape::String))
                    .opt("disabled", Shape::Bool),
            ),
        )
        // `LIST` spelled as GET with `list=true`, or the LIST method itself.
        .op(Operation::new("GET", "/v1/auth/token/accessors").query(
            "list",
            true,
            QueryValue::Exact("true".into()),
        ))
        .op(Operation::new("LIST", "/v1/auth/token/accessors"))
        .op(Operation::new("POST", "/v1/auth/token/lookup-accessor").json_body(accessor()))
        .op(Operation::new("POST", "/v1/auth/token/revoke-accessor").json_body(accessor()))
        .op(Operation::new(
            "PUT",
            &format!("/v1/sys/leases/revoke-prefix/auth/{up}/login/{{username}}"),
        )
        .optional_json_body(obj().opt("sync", Shape::Bool)))
        .op(Operation::new(
            "GET",
            &format!("/v1/auth/{up}/users/{{username}}"),
        ))
        .op(Operation::new(
            "DELETE",
            &format!("/v1/auth/{up}/users/{{username}}"),
        ))
        .op(Operation::new(
            "GET",
            &format!("/v1/{kv}/metadata/{{*path}}"),
        ))
        .op(
            Operation::new("GET", &format!("/v1/{kv}/data/{{*path}}")).query(
                "version",
                false,
                QueryValue::Integer,
            ),
        )
        // Create or update a secret: `data` (any keys) and optionally check-and-set.
        .op(
            Operation::new("POST", &format!("/v1/{kv}/data/{{*path}}")).json_body(
                obj()
                    .req("data", Shape::map(Shape::Any))
                    .opt("options", obj().opt("cas", Shape::Integer)),
            ),
        )
        // Create or update a secret's metadata.
        .op(
            Operation::new("POST", &format!("/v1/{kv}/metadata/{{*path}}")).json_body(
                obj()
                    .opt("max_versions", Shape::Integer)
                    .opt("cas_required", Shape::Bool)
                    .opt("delete_version_after", Shape::String)
                    .opt("custom_metadata", Shape::map(Shape::String)),
            ),
        )
}

/// A `SystemConfig` for a vault system at `base_url`.
pub fn system_config(base_url: &str, token: Option<&str>) -> offboard::providers::SystemConfig {
    offboard::providers::SystemConfig {
        name: "bao".into(),
        kind: "vault".into(),
        base_url: Some(base_url.into()),
        token: token.map(|t| secrecy::SecretString::from(t.to_string())),
        auth: None,
        settings: Default::default(),
        secrets: Default::default(),
        timeout: Duration::from_secs(10),
        max_concurrency: 4,
        rate_limit: None,
        state_dir: std::env::temp_dir(),
    }
}
