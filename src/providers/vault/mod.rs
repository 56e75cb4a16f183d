//! HashiCorp Vault and OpenBao (the same HTTP API, `/v1/...`), authenticated with a token sent as
//! `X-Vault-Token` (and `X-Vault-Namespace` when `namespace` is set).
//!
//! The person is known by their userpass username (`StepCall.login`; userpass lowercases it).
//! Their identity entity is found with `POST /v1/identity/lookup/entity` by alias name on the
//! userpass mount's accessor (from `GET /v1/sys/auth`), falling back to an entity *named* like
//! the login (`GET /v1/identity/entity/name/{login}`).
//!
//! - `rotate_secret` (`paths = ["team/db", …]`): for each KV v2 path, read the metadata and the
//!   current data, write every key (or the `keys` listed) with a new random value as a new
//!   version (check-and-set on the version read), then record in the secret's
//!   `custom_metadata` under `offboard_rotated:<login>` the versions `from=N to=M` and the time.
//!   Old versions stay (for audit). No value is ever logged, journaled or put in a message: only
//!   version numbers. Apply is idempotent per person: a path whose marker for this login
//!   exists and whose current version is at least the marker's `to` is left alone. If the
//!   process dies between the write and the marker, the next apply rotates once more (harmless).
//!   Check, per path: the marker for this login exists, `current_version >= to`, and the current
//!   data differs from version `from` (the one the person knew) when that version is still
//!   readable — so a rollback (re-writing the old value as a new version) counts as drift.
//! - `revoke_tokens`: scan token accessors (`LIST /v1/auth/token/accessors` + `POST
//!   /v1/auth/token/lookup-accessor`) for tokens whose `entity_id` is the person's entity, then
//!   `PUT /v1/sys/leases/revoke-prefix/auth/{userpass_mount}/login/{login}` and `POST
//!   /v1/auth/token/revoke-accessor` for each token found (tokens from any auth method of that
//!   entity). Check: the same scan finds no live token. The scan needs `sudo` on
//!   `auth/token/accessors` and costs one request per live token in the whole Vault.
//! - `disable_entity`: `POST /v1/identity/entity/id/{id}` `{"disabled":true}`; check reads
//!   `disabled`. Disabling alone makes existing tokens answer 403, but re-enabling revives them:
//!   pair it with `revoke_tokens`.
//! - `delete_userpass_user`: `DELETE /v1/auth/{userpass_mount}/users/{login}`; check expects
//!   `GET` to answer 404 (destructive).
//!
//! Vault errors are `{"errors":["…"]}`; a 403 is Vault's answer both to a missing policy and to an
//! invalid token.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use url::Url;

use super::http::{HttpClient, HttpResponse, Request, RetryPolicy, with_query};
use super::{
    Account, ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, KindSpec, Provider, ProviderError,
    RequestLine, RequestRecord, SettingSpec, SettingType, StepCall, SystemConfig,
};

pub static KIND: KindSpec = KindSpec {
    name: "vault",
    summary: "HashiCorp Vault / OpenBao: rotate shared KV v2 secrets, revoke tokens, disable the \
              identity entity, delete the userpass user",
    actions: &[
        ActionSpec {
            name: "rotate_secret",
            summary: "write a new random value as a new KV v2 version of each path (old versions \
                      kept; values never logged) and mark it in custom_metadata \
                      `offboard_rotated:<login>` = `from=N to=M`; apply skips a path already \
                      rotated for this person; check: marker present, current version >= M, and \
                      the current value differs from version N",
            destructive: false,
            alerts_user: false,
            revokes: true,
            params: &[
                SettingSpec {
                    name: "paths",
                    ty: SettingType::StringList,
                    required: true,
                    summary: "KV v2 paths under kv_mount the person knew, e.g. [\"team/db\"]",
                },
                SettingSpec {
                    name: "keys",
                    ty: SettingType::StringList,
                    required: false,
                    summary: "only these keys get a new value (the others are kept); default: \
                              every key of the current version",
                },
                SettingSpec {
                    name: "length",
                    ty: SettingType::Integer,
                    required: false,
                    summary: "length of each new random value, 16..=256 (default 32, letters \
                              and digits)",
                },
            ],
        },
        ActionSpec {
            name: "revoke_tokens",
            summary: "revoke the person's tokens: the userpass login lease prefix and every live \
                      token of their entity by accessor; check: an accessor scan finds no live \
                      token of the entity (needs sudo on auth/token/accessors)",
            destructive: false,
            alerts_user: false,
            revokes: true,
            params: &[],
        },
        ActionSpec {
            name: "disable_entity",
            summary: "set the identity entity disabled=true (tokens answer 403 and login fails \
                      while disabled); check reads disabled",
            destructive: false,
            alerts_user: false,
            revokes: true,
            params: &[],
        },
        ActionSpec {
            name: "delete_userpass_user",
            summary: "DELETE the userpass user; check expects 404",
            destructive: true,
            alerts_user: false,
            revokes: true,
            params: &[],
        },
    ],
    settings: &[
        SettingSpec {
            name: "kv_mount",
            ty: SettingType::String,
            required: false,
            summary: "mount path of the KV v2 secrets engine (default `secret`)",
        },
        SettingSpec {
            name: "userpass_mount",
            ty: SettingType::String,
            required: false,
            summary: "mount path of the userpass auth method (default `userpass`)",
        },
        SettingSpec {
            name: "ca_file",
            ty: SettingType::String,
            required: false,
            summary: "PEM file of the CA that signed the server's certificate",
        },
        SettingSpec {
            name: "namespace",
            ty: SettingType::String,
            required: false,
            summary: "Vault Enterprise / OpenBao namespace, sent as X-Vault-Namespace",
        },
        super::http::ALLOW_PLAIN,
    ],
    needs_base_url: true,
    url_schemes: &["https", "http"],
    needs_token: true,
    connect,
    check_action: None,
};

/// Prefix of the custom-metadata key that records a rotation for one person.
pub const MARKER_PREFIX: &str = "offboard_rotated:";
/// At most this many rotation markers are kept per secret (Vault allows 64 custom keys); the
/// oldest (lowest `to` version) go first.
const MAX_MARKERS: usize = 32;

const FORBIDDEN_HINT: &str = "Vault said permission denied: the token's policies do not allow \
    this call (Vault answers 403 to a missing policy and to an invalid or expired token alike); \
    see the vault kind's policy in runbooks/README.md";

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(Arc::new(VaultProvider::new(cfg)?))
}

/// A connected Vault / OpenBao server.
#[derive(Debug)]
pub struct VaultProvider {
    http: HttpClient,
    system: String,
    /// `["v1"]`, or nothing when base_url already ends in `/v1`.
    api: Vec<String>,
    kv_mount: Vec<String>,
    userpass_mount: Vec<String>,
}

fn string_setting(cfg: &SystemConfig, name: &str) -> anyhow::Result<Option<String>> {
    match cfg.settings.get(name) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => anyhow::bail!(
            "system `{}`: {name} must be a string, not {}",
            cfg.name,
            other.type_str()
        ),
    }
}

/// `team/db` → `["team", "db"]`; refuses empty, `.` and `..` segments and control characters.
pub fn split_path(s: &str) -> Result<Vec<String>, String> {
    if s.is_empty() {
        return Err("an empty path".into());
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{s:?} contains control characters"));
    }
    s.split('/')
        .map(|seg| match seg {
            "" => Err(format!(
                "{s:?} has an empty segment (`//` or a leading/trailing `/`)"
            )),
            "." | ".." => Err(format!("{s:?} has a `{seg}` segment")),
            _ => Ok(seg.to_string()),
        })
        .collect()
}

impl VaultProvider {
    /// Build from the system's configuration. No network I/O (reads `ca_file` if set); works
    /// without a token (planning).
    pub fn new(cfg: &SystemConfig) -> anyhow::Result<VaultProvider> {
        let mount = |name: &str, default: &str| -> anyhow::Result<Vec<String>> {
            let raw = string_setting(cfg, name)?.unwrap_or_else(|| default.to_string());
            split_path(raw.trim_matches('/'))
                .map_err(|e| anyhow::anyhow!("system `{}`: {name}: {e}", cfg.name))
        };
        let kv_mount = mount("kv_mount", "secret")?;
        let userpass_mount = mount("userpass_mount", "userpass")?;
        let mut http = HttpClient::new(cfg)?
            .with_accept("application/json")
            .with_token_header("x-vault-token")
            .with_forbidden_hint(FORBIDDEN_HINT)
            .with_error_parser(vault_error_message);
        if let Some(ns) = string_setting(cfg, "namespace")? {
            let ns = ns.trim_matches('/');
            if ns.is_empty() {
                anyhow::bail!("system `{}`: namespace is empty", cfg.name);
            }
            http = http.with_header("x-vault-namespace", ns)?;
        }
        if let Some(ca) = string_setting(cfg, "ca_file")? {
            http = http.with_ca_file(std::path::Path::new(&ca))?;
        }
        let api = if http
            .base_url()
            .path()
            .trim_end_matches('/')
            .ends_with("/v1")
        {
            Vec::new()
        } else {
            vec!["v1".to_string()]
        };
        Ok(VaultProvider {
            http,
            system: cfg.name.clone(),
            api,
            kv_mount,
            userpass_mount,
        })
    }

    /// Replace the retry policy (tests use tiny budgets).
    pub fn with_retry(mut self, retry: RetryPolicy) -> VaultProvider {
        self.http = self.http.with_retry(retry);
        self
    }

    fn url(&self, parts: &[&[String]]) -> Result<Url, ProviderError> {
        let segs: Vec<&str> = self
            .api
            .iter()
            .chain(parts.iter().flat_map(|p| p.iter()))
            .map(String::as_str)
            .collect();
        self.http.endpoint(&segs)
    }

    fn s(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|p| p.to_string()).collect()
    }

    fn data_url(&self, path: &[String]) -> Result<Url, ProviderError> {
        self.url(&[&self.kv_mount, &Self::s(&["data"]), path])
    }

    fn metadata_url(&self, path: &[String]) -> Result<Url, ProviderError> {
        self.url(&[&self.kv_mount, &Self::s(&["metadata"]), path])
    }

    fn user_url(&self, login: &str) -> Result<Url, ProviderError> {
        self.url(&[
            &Self::s(&["auth"]),
            &self.userpass_mount,
            &Self::s(&["users", login]),
        ])
    }

    fn prefix_url(&self, login: &str) -> Result<Url, ProviderError> {
        self.url(&[
            &Self::s(&["sys", "leases", "revoke-prefix", "auth"]),
            &self.userpass_mount,
            &Self::s(&["login", login]),
        ])
    }

    fn perm(&self, msg: impl std::fmt::Display) -> ProviderError {
        ProviderError::Permanent(format!("system `{}`: {msg}", self.system))
    }

    fn bad_answer(&self, resp: &HttpResponse, what: &str) -> ProviderError {
        let path = Url::parse(&resp.record.url)
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        self.perm(format!("{} {path} answered {what}", resp.record.method))
    }

    /// A 404 with a message (rather than Vault's bare `{"errors":[]}`) means the route itself is
    /// missing, e.g. nothing is mounted at the configured path: that is not "not found".
    fn ensure_route(&self, resp: &HttpResponse, setting: &str) -> Result<(), ProviderError> {
        if resp.status != StatusCode::NOT_FOUND {
            return Ok(());
        }
        match vault_error_message(&resp.body) {
            None => Ok(()),
            Some(m) => Err(self.bad_answer(
                resp,
                &format!("404 {m}: is the mount path right (setting {setting})?"),
            )),
        }
    }

    /// The userpass username: not empty, no `/`, no control characters; lowercased as userpass
    /// stores it.
    fn username(&self, login: &str) -> Result<String, ProviderError> {
        if login.trim().is_empty() || login.contains('/') || login.chars().any(char::is_control) {
            return Err(self.perm(format!(
                "{login:?} is not a userpass username (empty, or contains `/` or control \
                 characters)"
            )));
        }
        Ok(login.to_lowercase())
    }

    async fn send(
        &self,
        req: Request,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<HttpResponse, ProviderError> {
        let resp = self.http.send(req, ctx).await?;
        records.push(resp.record.clone());
        Ok(resp)
    }

    // ---- KV v2 ----

    async fn kv_metadata(
        &self,
        path: &[String],
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<KvMeta>, ProviderError> {
        let resp = self
            .send(
                Request::get(self.metadata_url(path)?).allow(StatusCode::NOT_FOUND),
                ctx,
                records,
            )
            .await?;
        self.ensure_route(&resp, "kv_mount")?;
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v: Value = resp.json()?;
        let d = &v["data"];
        let current_version = d["current_version"]
            .as_u64()
            .ok_or_else(|| self.bad_answer(&resp, "KV metadata without current_version"))?;
        let custom = match &d["custom_metadata"] {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        Ok(Some(KvMeta {
            current_version,
            custom,
        }))
    }

    /// The data of one version (or the current one). `None` when deleted, destroyed or absent.
    async fn kv_data(
        &self,
        path: &[String],
        version: Option<u64>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<Map<String, Value>>, ProviderError> {
        let mut url = self.data_url(path)?;
        if let Some(n) = version {
            url = with_query(url, &[("version", &n.to_string())]);
        }
        let resp = self
            .send(Request::get(url).allow(StatusCode::NOT_FOUND), ctx, records)
            .await?;
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v: Value = resp.json()?;
        Ok(match &v["data"]["data"] {
            Value::Object(m) => Some(m.clone()),
            _ => None,
        })
    }

    async fn rotate_one(
        &self,
        call: &StepCall<'_>,
        p: &RotateParams,
        shown: &str,
        path: &[String],
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(bool, String), ProviderError> {
        let meta = self.kv_metadata(path, ctx, records).await?.ok_or_else(|| {
            self.perm(format!(
                "no KV v2 secret at `{shown}` in mount `{}`; rotate_secret only rotates existing \
                 secrets (check the path and kv_mount)",
                self.kv_mount.join("/")
            ))
        })?;
        let current = self
            .kv_data(path, Some(meta.current_version), ctx, records)
            .await?;
        if let Some(m) = marker_for(&meta.custom, call.login)
            && meta.current_version >= m.to
        {
            // Done, unless the value the person knew is back (a rollback): then rotate again.
            let old = if m.from == meta.current_version {
                current.clone()
            } else {
                self.kv_data(path, Some(m.from), ctx, records).await?
            };
            let rolled_back = matches!((&old, &current), (Some(o), Some(c)) if o == c);
            if !rolled_back {
                return Ok((
                    false,
                    format!(
                        "{shown}: already rotated for {} (version {} → {}, now {})",
                        call.login, m.from, m.to, meta.current_version
                    ),
                ));
            }
        }
        let keys: Vec<String> = match (&p.keys, &current) {
            (Some(keys), Some(cur)) => {
                if let Some(k) = keys.iter().find(|k| !cur.contains_key(k.as_str())) {
                    let have: Vec<&str> = cur.keys().map(String::as_str).collect();
                    return Err(self.perm(format!(
                        "`{shown}` has no key `{k}` (its keys: {}); refusing to add one and leave \
                         the real value unchanged",
                        have.join(", ")
                    )));
                }
                keys.clone()
            }
            (Some(keys), None) => keys.clone(),
            (None, Some(cur)) => cur.keys().cloned().collect(),
            (None, None) => {
                return Err(self.perm(format!(
                    "the current version ({}) of `{shown}` is deleted or destroyed, so its keys \
                     are unknown; list them with params.keys",
                    meta.current_version
                )));
            }
        };
        if keys.is_empty() {
            return Err(self.perm(format!("`{shown}` holds no key to rotate")));
        }
        let mut data = current.unwrap_or_default();
        for k in &keys {
            data.insert(k.clone(), Value::String(random_value(p.length)));
        }
        let body = json!({"options": {"cas": meta.current_version}, "data": data});
        drop(data);
        let resp = self
            .send(
                Request::post(self.data_url(path)?).json(&body, "application/json"),
                ctx,
                records,
            )
            .await
            .map_err(|e| match e {
                ProviderError::Permanent(m) if m.contains("check-and-set") => {
                    ProviderError::Transient(format!(
                        "{m} (`{shown}` changed while it was being rotated; run the step again)"
                    ))
                }
                other => other,
            })?;
        drop(body);
        let v: Value = resp.json()?;
        let new_version = v["data"]["version"]
            .as_u64()
            .ok_or_else(|| self.bad_answer(&resp, "a KV write without data.version"))?;

        let mut custom = meta.custom.clone();
        custom.insert(
            marker_key(call.login),
            Value::String(
                Marker {
                    from: meta.current_version,
                    to: new_version,
                }
                .render(),
            ),
        );
        prune_markers(&mut custom);
        self.send(
            Request::post(self.metadata_url(path)?)
                .json(&json!({"custom_metadata": custom}), "application/json"),
            ctx,
            records,
        )
        .await
        .map_err(|e| {
            let m = format!(
                "`{shown}` was rotated (version {} → {new_version}) but recording that in its \
                 custom_metadata failed: {e}",
                meta.current_version
            );
            match e {
                ProviderError::Transient(_) => ProviderError::Transient(m),
                _ => ProviderError::Permanent(m),
            }
        })?;
        Ok((
            true,
            format!(
                "{shown}: version {} → {new_version} ({} key(s))",
                meta.current_version,
                keys.len()
            ),
        ))
    }

    async fn rotate(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let p = self.rotate_params(call)?;
        let mut records = Vec::new();
        let mut lines = Vec::new();
        let mut changed = false;
        for (shown, path) in &p.paths {
            match self
                .rotate_one(call, &p, shown, path, ctx, &mut records)
                .await
            {
                Ok((c, line)) => {
                    changed |= c;
                    lines.push(line);
                }
                Err(e) if lines.is_empty() => return Err(e),
                Err(e) => return Err(with_prefix(e, &format!("{}; then ", lines.join("; ")))),
            }
        }
        let account = self.secrets_account(&p);
        ctx.identified(&account);
        Ok(ApplyOutcome {
            changed,
            summary: lines.join("; "),
            requests: records,
            account: Some(account),
        })
    }

    async fn check_rotated(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let p = self.rotate_params(call)?;
        let mut records = Vec::new();
        let mut revoked = true;
        let mut seen = Vec::new();
        for (shown, path) in &p.paths {
            let Some(meta) = self.kv_metadata(path, ctx, &mut records).await? else {
                revoked = false;
                seen.push(format!("{shown}: no such secret (cannot show a rotation)"));
                continue;
            };
            let Some(m) = marker_for(&meta.custom, call.login) else {
                revoked = false;
                seen.push(format!(
                    "{shown}: not rotated for {} (current version {})",
                    call.login, meta.current_version
                ));
                continue;
            };
            if meta.current_version < m.to {
                revoked = false;
                seen.push(format!(
                    "{shown}: current version {} is older than the rotated version {}",
                    meta.current_version, m.to
                ));
                continue;
            }
            let old = self.kv_data(path, Some(m.from), ctx, &mut records).await?;
            let now = self
                .kv_data(path, Some(meta.current_version), ctx, &mut records)
                .await?;
            if let (Some(old), Some(now)) = (&old, &now)
                && old == now
            {
                revoked = false;
                seen.push(format!(
                    "{shown}: current version {} holds the same value as version {}, the one {} \
                     knew (rolled back?)",
                    meta.current_version, m.from, call.login
                ));
                continue;
            }
            seen.push(format!(
                "{shown}: current version {} ≥ {} (rotated from {})",
                meta.current_version, m.to, m.from
            ));
        }
        Ok(CheckOutcome {
            revoked,
            observed: seen.join("; "),
            account: Some(self.secrets_account(&p)),
        })
    }

    /// What `rotate_secret` acts on: the shared secrets themselves, by KV path.
    fn secrets_account(&self, p: &RotateParams) -> Account {
        let paths: Vec<String> = p
            .paths
            .iter()
            .map(|(_, segs)| format!("{}/{}", self.kv_mount.join("/"), segs.join("/")))
            .collect();
        Account::new(paths.join(", "), "KV v2 path", paths.join(", "))
    }

    /// The person's identity entity as an account.
    fn entity_account(entity: &Entity) -> Account {
        Account::new(entity.id.clone(), "entity id", entity.name.clone())
    }

    /// The entity this step acted on, read by its recorded id (`Err(account)`: gone, 404), or
    /// the person's entity found by login (nobody is `NotFound`).
    async fn resolve_entity(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Result<Entity, Account>, ProviderError> {
        if let Some(known) = call.account {
            let resp = self
                .send(
                    Request::get(self.entity_url(&known.id)?).allow(StatusCode::NOT_FOUND),
                    ctx,
                    records,
                )
                .await?;
            if resp.status == StatusCode::NOT_FOUND {
                return Ok(Err(known.clone()));
            }
            let v: Value = resp.json()?;
            return Entity::from_data(&v["data"])
                .map(Ok)
                .ok_or_else(|| self.bad_answer(&resp, "an entity without an id"));
        }
        match self.find_entity(call.login, ctx, records).await? {
            Some(e) => Ok(Ok(e)),
            None => Err(self.no_entity(call.login)),
        }
    }

    fn rotate_params(&self, call: &StepCall<'_>) -> Result<RotateParams, ProviderError> {
        let list = |name: &str| -> Result<Option<Vec<String>>, ProviderError> {
            match call.params.get(name) {
                None => Ok(None),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_string).ok_or_else(|| {
                            self.perm(format!(
                                "step `{}`: params.{name} must be a list of strings",
                                call.step_id
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Some(_) => Err(self.perm(format!(
                    "step `{}`: params.{name} must be a list of strings",
                    call.step_id
                ))),
            }
        };
        let raw = list("paths")?.unwrap_or_default();
        if raw.is_empty() {
            return Err(self.perm(format!(
                "step `{}`: rotate_secret needs params.paths, e.g. paths = [\"team/db\"]",
                call.step_id
            )));
        }
        let mut paths = Vec::new();
        for r in raw {
            let segs = split_path(&r)
                .map_err(|e| self.perm(format!("step `{}`: params.paths: {e}", call.step_id)))?;
            paths.push((r, segs));
        }
        let keys = list("keys")?;
        if keys.as_ref().is_some_and(Vec::is_empty) {
            return Err(self.perm(format!("step `{}`: params.keys is empty", call.step_id)));
        }
        let length = match call.params.get("length") {
            None => 32,
            Some(v) => match v.as_u64() {
                Some(n @ 16..=256) => n as usize,
                _ => {
                    return Err(self.perm(format!(
                        "step `{}`: params.length must be an integer from 16 to 256",
                        call.step_id
                    )));
                }
            },
        };
        Ok(RotateParams {
            paths,
            keys,
            length,
        })
    }

    // ---- identity and tokens ----

    /// The accessor of the userpass mount, from `GET /v1/sys/auth`.
    async fn userpass_accessor(
        &self,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<String, ProviderError> {
        let resp = self
            .send(
                Request::get(self.url(&[&Self::s(&["sys", "auth"])])?),
                ctx,
                records,
            )
            .await?;
        let v: Value = resp.json()?;
        let key = format!("{}/", self.userpass_mount.join("/"));
        let mounts = if v["data"].is_object() {
            &v["data"]
        } else {
            &v
        };
        let m = &mounts[key.as_str()];
        if m.is_null() {
            return Err(self.perm(format!(
                "no auth method is mounted at `{key}` (setting userpass_mount)"
            )));
        }
        if m["type"].as_str().is_some_and(|t| t != "userpass") {
            return Err(self.perm(format!(
                "the auth method at `{key}` is `{}`, not userpass (setting userpass_mount)",
                m["type"].as_str().unwrap_or_default()
            )));
        }
        m["accessor"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.bad_answer(&resp, &format!("mount `{key}` without an accessor")))
    }

    /// The person's identity entity: by userpass alias, else by entity name. `None` if neither.
    async fn find_entity(
        &self,
        login: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<Entity>, ProviderError> {
        let name = self.username(login)?;
        let accessor = self.userpass_accessor(ctx, records).await?;
        let resp = self
            .send(
                Request::post(self.url(&[&Self::s(&["identity", "lookup", "entity"])])?)
                    .json(
                        &json!({"alias_name": name, "alias_mount_accessor": accessor}),
                        "application/json",
                    )
                    .allow(StatusCode::NOT_FOUND),
                ctx,
                records,
            )
            .await?;
        if resp.status == StatusCode::OK && !resp.body.is_empty() {
            let v: Value = resp.json()?;
            return Entity::from_data(&v["data"])
                .map(Some)
                .ok_or_else(|| self.bad_answer(&resp, "an entity without an id"));
        }
        // No alias (204 or 404): an entity the admins named after the person?
        let resp = self
            .send(
                Request::get(self.url(&[&Self::s(&["identity", "entity", "name", login])])?)
                    .allow(StatusCode::NOT_FOUND),
                ctx,
                records,
            )
            .await?;
        if resp.status == StatusCode::NOT_FOUND || resp.body.is_empty() {
            return Ok(None);
        }
        let v: Value = resp.json()?;
        Entity::from_data(&v["data"])
            .map(Some)
            .ok_or_else(|| self.bad_answer(&resp, "an entity without an id"))
    }

    /// Accessors of the live tokens whose entity is `entity_id`, and how many were scanned.
    async fn entity_tokens(
        &self,
        entity_id: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(Vec<String>, usize), ProviderError> {
        let list_url = with_query(
            self.url(&[&Self::s(&["auth", "token", "accessors"])])?,
            &[("list", "true")],
        );
        let resp = self
            .send(
                Request::get(list_url).allow(StatusCode::NOT_FOUND),
                ctx,
                records,
            )
            .await?;
        let accessors: Vec<String> = if resp.status == StatusCode::NOT_FOUND {
            Vec::new()
        } else {
            let v: Value = resp.json()?;
            v["data"]["keys"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let lookup = self.url(&[&Self::s(&["auth", "token", "lookup-accessor"])])?;
        let results: Vec<Result<(String, HttpResponse), ProviderError>> =
            futures::stream::iter(accessors.iter().cloned())
                .map(|acc| {
                    let req = Request::post(lookup.clone())
                        .json(&json!({"accessor": acc}), "application/json")
                        // Revoked between the list and the lookup: "invalid accessor".
                        .allow(StatusCode::BAD_REQUEST);
                    async move { self.http.send(req, ctx).await.map(|r| (acc, r)) }
                })
                .buffered(8)
                .collect()
                .await;
        let mut found = Vec::new();
        for r in results {
            let (acc, resp) = r?;
            records.push(resp.record.clone());
            if resp.status != StatusCode::OK {
                continue;
            }
            let v: Value = resp.json()?;
            if v["data"]["entity_id"].as_str() == Some(entity_id) {
                found.push(acc);
            }
        }
        Ok((found, accessors.len()))
    }

    async fn revoke_tokens(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let login = call.login;
        let name = self.username(login)?;
        let mut records = Vec::new();
        // Tokens are the entity's: find it (or read the recorded one) before revoking anything.
        let account = match self.resolve_entity(call, ctx, &mut records).await? {
            Ok(e) => Self::entity_account(&e),
            Err(gone) => gone,
        };
        ctx.identified(&account);
        let live = self.entity_tokens(&account.id, ctx, &mut records).await?.0;
        let mut prefixes = vec![name.clone()];
        if login != name {
            prefixes.push(login.to_string());
        }
        for p in &prefixes {
            self.send(Request::put(self.prefix_url(p)?), ctx, &mut records)
                .await?;
        }
        let revoke = self.url(&[&Self::s(&["auth", "token", "revoke-accessor"])])?;
        for acc in &live {
            // Idempotent: an accessor already gone answers 200 with a warning.
            self.send(
                Request::post(revoke.clone()).json(&json!({"accessor": acc}), "application/json"),
                ctx,
                &mut records,
            )
            .await?;
        }
        let prefix = format!("auth/{}/login/{name}", self.userpass_mount.join("/"));
        let summary = match live.len() {
            0 => format!(
                "no live token of entity {} for {login}; revoked the lease prefix {prefix} \
                 (nothing left)",
                account.id
            ),
            n => format!(
                "revoked {n} live token(s) of entity {} for {login} (by accessor) and the lease \
                 prefix {prefix}",
                account.id
            ),
        };
        Ok(ApplyOutcome {
            changed: !live.is_empty(),
            summary,
            requests: records,
            account: Some(account),
        })
    }

    async fn check_tokens(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        // A deleted entity's tokens are still found by its id in the scan.
        let account = match self.resolve_entity(call, ctx, &mut records).await? {
            Ok(e) => Self::entity_account(&e),
            Err(gone) => gone,
        };
        let (live, scanned) = self.entity_tokens(&account.id, ctx, &mut records).await?;
        Ok(CheckOutcome {
            revoked: live.is_empty(),
            observed: format!(
                "{} live token(s) of entity {} ({scanned} accessor(s) scanned)",
                live.len(),
                account.id
            ),
            account: Some(account),
        })
    }

    fn entity_url(&self, id: &str) -> Result<Url, ProviderError> {
        self.url(&[&Self::s(&["identity", "entity", "id", id])])
    }

    async fn disable_entity(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let entity = match self.resolve_entity(call, ctx, &mut records).await? {
            Ok(e) => e,
            Err(gone) => {
                return Ok(ApplyOutcome {
                    changed: false,
                    summary: format!("identity entity {} no longer exists (deleted)", gone.id),
                    requests: records,
                    account: Some(gone),
                });
            }
        };
        let account = Self::entity_account(&entity);
        ctx.identified(&account);
        if entity.disabled {
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("identity entity {} already disabled", entity.id),
                requests: records,
                account: Some(account),
            });
        }
        self.send(
            Request::post(self.entity_url(&entity.id)?)
                .json(&json!({"disabled": true}), "application/json"),
            ctx,
            &mut records,
        )
        .await?;
        Ok(ApplyOutcome {
            changed: true,
            summary: format!(
                "disabled identity entity {} ({}) (disabled: false → true)",
                entity.id, entity.name
            ),
            requests: records,
            account: Some(account),
        })
    }

    async fn check_entity(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let found = match self.resolve_entity(call, ctx, &mut records).await? {
            Ok(e) => e,
            Err(gone) => {
                return Ok(CheckOutcome {
                    revoked: true,
                    observed: format!("identity entity {} no longer exists (deleted)", gone.id),
                    account: Some(gone),
                });
            }
        };
        // A lookup by alias is re-read by id: the proof.
        let e = if call.account.is_some() {
            found
        } else {
            let resp = self
                .send(
                    Request::get(self.entity_url(&found.id)?).allow(StatusCode::NOT_FOUND),
                    ctx,
                    &mut records,
                )
                .await?;
            if resp.status == StatusCode::NOT_FOUND {
                return Err(self.perm(format!(
                    "identity entity {} vanished while checking; cannot confirm",
                    found.id
                )));
            }
            let v: Value = resp.json()?;
            Entity::from_data(&v["data"])
                .ok_or_else(|| self.bad_answer(&resp, "an entity without an id"))?
        };
        Ok(CheckOutcome {
            revoked: e.disabled,
            observed: format!("entity {} disabled={}", e.id, e.disabled),
            account: Some(Self::entity_account(&e)),
        })
    }

    fn no_entity(&self, login: &str) -> ProviderError {
        ProviderError::NotFound(format!(
            "system `{}`: no identity entity for {login:?} (no alias on auth/{}/ and no entity \
             of that name; has the person ever logged in?)",
            self.system,
            self.userpass_mount.join("/")
        ))
    }

    async fn user_exists(
        &self,
        login: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<bool, ProviderError> {
        let name = self.username(login)?;
        let resp = self
            .send(
                Request::get(self.user_url(&name)?).allow(StatusCode::NOT_FOUND),
                ctx,
                records,
            )
            .await?;
        self.ensure_route(&resp, "userpass_mount")?;
        Ok(resp.status != StatusCode::NOT_FOUND)
    }

    /// A userpass user has no id but its name on the mount: that path is the account.
    fn userpass_account(&self, name: &str) -> Account {
        let path = format!("auth/{}/users/{name}", self.userpass_mount.join("/"));
        Account::new(path, "userpass user path", name)
    }

    async fn delete_user(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let login = call.login;
        let name = self.username(login)?;
        let mut records = Vec::new();
        let mount = self.userpass_mount.join("/");
        let account = call
            .account
            .cloned()
            .unwrap_or_else(|| self.userpass_account(&name));
        if !self.user_exists(login, ctx, &mut records).await? {
            if call.account.is_none() {
                return Err(ProviderError::NotFound(format!(
                    "system `{}`: no userpass user {name:?} on auth/{mount}/",
                    self.system
                )));
            }
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("userpass user {name} on auth/{mount}/ already deleted (404)"),
                requests: records,
                account: Some(account),
            });
        }
        ctx.identified(&account);
        self.send(Request::delete(self.user_url(&name)?), ctx, &mut records)
            .await?;
        Ok(ApplyOutcome {
            changed: true,
            summary: format!("deleted userpass user {name} on auth/{mount}/"),
            requests: records,
            account: Some(account),
        })
    }

    async fn check_user_deleted(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        let name = self.username(call.login)?;
        let account = call
            .account
            .cloned()
            .unwrap_or_else(|| self.userpass_account(&name));
        if self.user_exists(call.login, ctx, &mut records).await? {
            return Ok(CheckOutcome {
                revoked: false,
                observed: format!("userpass user {name} exists"),
                account: Some(account),
            });
        }
        if call.account.is_none() {
            return Err(ProviderError::NotFound(format!(
                "system `{}`: no userpass user {name:?} on auth/{}/, and offboard never saw \
                 one: nothing proves it was deleted",
                self.system,
                self.userpass_mount.join("/")
            )));
        }
        Ok(CheckOutcome {
            revoked: true,
            observed: format!("userpass user {name} no longer exists (404: deleted)"),
            account: Some(account),
        })
    }

    fn unknown_action(&self, action: &str) -> ProviderError {
        self.perm(format!("the vault kind has no action `{action}`"))
    }
}

#[async_trait]
impl Provider for VaultProvider {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        let line = |method: &str, url: Result<Url, ProviderError>| {
            url.ok().map(|u| RequestLine {
                method: method.into(),
                url: u.to_string().replace("%7B", "{").replace("%7D", "}"),
            })
        };
        let name = self
            .username(call.login)
            .unwrap_or_else(|_| "{login}".into());
        let ph = |s: &str| vec![s.to_string()];
        let find = [
            line("GET", self.url(&[&Self::s(&["sys", "auth"])])),
            line(
                "POST",
                self.url(&[&Self::s(&["identity", "lookup", "entity"])]),
            ),
        ];
        let lines: Vec<Option<RequestLine>> = match call.action {
            "rotate_secret" => {
                let mut v = Vec::new();
                if let Ok(p) = self.rotate_params(call) {
                    for (_, path) in &p.paths {
                        v.push(line("GET", self.metadata_url(path)));
                        v.push(line("GET", self.data_url(path)));
                        v.push(line("POST", self.data_url(path)));
                        v.push(line("POST", self.metadata_url(path)));
                    }
                }
                v
            }
            "revoke_tokens" => {
                let mut v = find.to_vec();
                v.push(line(
                    "GET",
                    self.url(&[&Self::s(&["auth", "token", "accessors"])])
                        .map(|u| with_query(u, &[("list", "true")])),
                ));
                v.push(line(
                    "POST",
                    self.url(&[&Self::s(&["auth", "token", "lookup-accessor"])]),
                ));
                v.push(line("PUT", self.prefix_url(&name)));
                v.push(line(
                    "POST",
                    self.url(&[&Self::s(&["auth", "token", "revoke-accessor"])]),
                ));
                v
            }
            "disable_entity" => {
                let mut v = find.to_vec();
                v.push(line(
                    "POST",
                    self.url(&[&Self::s(&["identity", "entity", "id"]), &ph("{id}")]),
                ));
                v
            }
            "delete_userpass_user" => vec![
                line("GET", self.user_url(&name)),
                line("DELETE", self.user_url(&name)),
            ],
            _ => Vec::new(),
        };
        lines.into_iter().flatten().collect()
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "rotate_secret" => self.rotate(call, ctx).await,
            "revoke_tokens" => self.revoke_tokens(call, ctx).await,
            "disable_entity" => self.disable_entity(call, ctx).await,
            "delete_userpass_user" => self.delete_user(call, ctx).await,
            other => Err(self.unknown_action(other)),
        }
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        match call.action {
            "rotate_secret" => self.check_rotated(call, ctx).await,
            "revoke_tokens" => self.check_tokens(call, ctx).await,
            "disable_entity" => self.check_entity(call, ctx).await,
            "delete_userpass_user" => self.check_user_deleted(call, ctx).await,
            other => Err(self.unknown_action(other)),
        }
    }
}

struct RotateParams {
    /// As written in the runbook, and split into segments.
    paths: Vec<(String, Vec<String>)>,
    keys: Option<Vec<String>>,
    length: usize,
}

struct KvMeta {
    current_version: u64,
    custom: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entity {
    id: String,
    name: String,
    disabled: bool,
}

impl Entity {
    fn from_data(d: &Value) -> Option<Entity> {
        Some(Entity {
            id: d["id"].as_str().filter(|s| !s.is_empty())?.to_string(),
            name: d["name"].as_str().unwrap_or_default().to_string(),
            disabled: d["disabled"].as_bool().unwrap_or(false),
        })
    }
}

/// A rotation recorded in a secret's custom_metadata: `from=N to=M at=<RFC 3339>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub from: u64,
    pub to: u64,
}

impl Marker {
    fn render(&self) -> String {
        format!(
            "from={} to={} at={}",
            self.from,
            self.to,
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
        )
    }

    pub fn parse(s: &str) -> Option<Marker> {
        let mut from = None;
        let mut to = None;
        for part in s.split_whitespace() {
            match part.split_once('=') {
                Some(("from", v)) => from = v.parse().ok(),
                Some(("to", v)) => to = v.parse().ok(),
                _ => {}
            }
        }
        Some(Marker {
            from: from?,
            to: to?,
        })
    }
}

/// The custom-metadata key for `login`: `offboard_rotated:<login>` (Vault limits keys to 128
/// bytes; a longer login is replaced by a hash of it).
pub fn marker_key(login: &str) -> String {
    let key = format!("{MARKER_PREFIX}{login}");
    if key.len() <= 128 {
        return key;
    }
    use sha2::Digest;
    let h = sha2::Sha256::digest(login.as_bytes());
    format!("{MARKER_PREFIX}sha256:{}", hex::encode(&h[..16]))
}

fn marker_for(custom: &Map<String, Value>, login: &str) -> Option<Marker> {
    custom
        .get(&marker_key(login))
        .and_then(Value::as_str)
        .and_then(Marker::parse)
}

/// Keep the newest [`MAX_MARKERS`] rotation markers.
fn prune_markers(custom: &mut Map<String, Value>) {
    let mut markers: BTreeMap<(u64, String), ()> = BTreeMap::new();
    for (k, v) in custom.iter() {
        if k.starts_with(MARKER_PREFIX) {
            let to = v.as_str().and_then(Marker::parse).map_or(0, |m| m.to);
            markers.insert((to, k.clone()), ());
        }
    }
    let excess = markers.len().saturating_sub(MAX_MARKERS);
    for ((_, k), ()) in markers.into_iter().take(excess) {
        custom.remove(&k);
    }
}

/// A new secret value: letters and digits from the thread's CSPRNG (ChaCha, seeded by the OS).
fn random_value(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn with_prefix(e: ProviderError, prefix: &str) -> ProviderError {
    match e {
        ProviderError::Transient(m) => ProviderError::Transient(format!("{prefix}{m}")),
        ProviderError::Permanent(m) => ProviderError::Permanent(format!("{prefix}{m}")),
        ProviderError::NotFound(m) => ProviderError::NotFound(format!("{prefix}{m}")),
    }
}

/// Go's multierror heading: `1 error occurred:` / `2 errors occurred:`.
fn is_multierror_header(l: &str) -> bool {
    l.ends_with("occurred:") && l.contains(" error")
}

/// The messages of a Vault error body `{"errors":["…"]}`, Go multierror wrapping removed.
/// `None` for `{"errors":[]}` (Vault's bare 404).
pub fn vault_error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let errs = v.get("errors")?.as_array()?;
    let msgs: Vec<String> = errs
        .iter()
        .filter_map(Value::as_str)
        .flat_map(|e| {
            e.lines()
                .map(|l| l.trim().trim_start_matches("* ").trim().to_string())
                .filter(|l| !l.is_empty() && !is_multierror_header(l))
                .collect::<Vec<_>>()
        })
        .collect();
    if msgs.is_empty() {
        None
    } else {
        Some(msgs.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cfg(base: &str) -> SystemConfig {
        SystemConfig {
            timeout: Duration::from_secs(5),
            ..SystemConfig::new("vault", "vault", Some(base))
        }
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            vault_error_message(br#"{"errors":["permission denied"]}"#).as_deref(),
            Some("permission denied")
        );
        assert_eq!(
            vault_error_message(br#"{"errors":["1 error occurred:\n\t* invalid accessor\n\n"]}"#)
                .as_deref(),
            Some("invalid accessor")
        );
        assert_eq!(vault_error_message(br#"{"errors":[]}"#), None);
        assert_eq!(vault_error_message(b"nope"), None);
    }

    #[test]
    fn paths_split_and_refuse_traversal() {
        assert_eq!(split_path("team/db").unwrap(), ["team", "db"]);
        for bad in ["", "a//b", "/a", "a/", "a/../b", "./a", "a\nb"] {
            assert!(split_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn markers_round_trip_and_prune() {
        let m = Marker { from: 3, to: 4 };
        assert_eq!(Marker::parse(&m.render()), Some(m));
        assert_eq!(Marker::parse("garbage"), None);
        assert_eq!(marker_key("alice"), "offboard_rotated:alice");
        assert!(marker_key(&"x".repeat(200)).len() <= 128);
        let mut custom = Map::new();
        custom.insert("owner".into(), json!("team"));
        for i in 0..40u64 {
            custom.insert(
                marker_key(&format!("u{i}")),
                json!(Marker { from: i, to: i + 1 }.render()),
            );
        }
        prune_markers(&mut custom);
        assert_eq!(custom.len(), MAX_MARKERS + 1);
        assert!(custom.contains_key("owner"));
        assert!(custom.contains_key(&marker_key("u39")));
        assert!(!custom.contains_key(&marker_key("u0")));
    }

    #[test]
    fn random_values_differ() {
        let a = random_value(32);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, random_value(32));
    }

    #[test]
    fn describe_without_token() {
        let mut c = cfg("https://vault.example:8200/");
        c.settings
            .insert("kv_mount".into(), toml::Value::String("kv/shared/".into()));
        let p = VaultProvider::new(&c).unwrap();
        let mut params = Map::new();
        params.insert("paths".into(), json!(["team/db"]));
        let call = StepCall {
            step_id: "s",
            action: "rotate_secret",
            login: "alice",
            params: &params,
            account: None,
        };
        let lines: Vec<String> = p.describe(&call).iter().map(ToString::to_string).collect();
        assert_eq!(
            lines[..2],
            [
                "GET https://vault.example:8200/v1/kv/shared/metadata/team/db",
                "GET https://vault.example:8200/v1/kv/shared/data/team/db",
            ]
        );
        let empty = Map::new();
        let call = StepCall {
            step_id: "s",
            action: "delete_userpass_user",
            login: "Alice@corp",
            params: &empty,
            account: None,
        };
        assert_eq!(
            p.describe(&call)[1].to_string(),
            "DELETE https://vault.example:8200/v1/auth/userpass/users/alice%40corp"
        );
        let call = StepCall {
            step_id: "s",
            action: "disable_entity",
            login: "alice",
            params: &empty,
            account: None,
        };
        assert_eq!(
            p.describe(&call)[2].to_string(),
            "POST https://vault.example:8200/v1/identity/entity/id/{id}"
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut c = cfg("https://v/");
        c.settings
            .insert("kv_mount".into(), toml::Value::String("a/../b".into()));
        assert!(VaultProvider::new(&c).is_err());
        let mut c = cfg("https://v/");
        c.settings.insert(
            "ca_file".into(),
            toml::Value::String("/nonexistent/ca.pem".into()),
        );
        // Planning builds the provider without reading the CA file; the first request needs it.
        c.token = Some(secrecy::SecretString::from("t"));
        let p = VaultProvider::new(&c).expect("no I/O when building");
        let params = serde_json::Map::new();
        let call = StepCall {
            step_id: "s",
            action: "disable_entity",
            login: "alice",
            params: &params,
            account: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = rt
            .block_on(p.check(&call, &CallCtx::silent()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ca_file /nonexistent/ca.pem"), "{e}");
        let mut c = cfg("https://v/");
        c.settings
            .insert("namespace".into(), toml::Value::String("bad\nns".into()));
        assert!(VaultProvider::new(&c).is_err());
        let p = VaultProvider::new(&cfg("https://v/v1")).unwrap();
        assert!(p.api.is_empty());
    }
}
