//! `rotate_secret` on KV v2: read the metadata and the current data, write new random values as
//! a new version (check-and-set on the version read), and record the rotation for the person in
//! the secret's `custom_metadata` (`offboard_rotated:<login>` = `from=N to=M at=…`), which apply
//! and check read back. Values are never logged or put in a message; only version numbers are.

use std::collections::BTreeMap;

use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use super::RotateInput;
use super::VaultProvider;
use super::client::split_path;
use crate::providers::kit::http::{Request, with_query};
use crate::providers::{
    Account, ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, StepCall, params,
};

/// Prefix of the custom-metadata key that records a rotation for one person.
pub const MARKER_PREFIX: &str = "offboard_rotated:";
/// At most this many rotation markers are kept per secret (Vault allows 64 custom keys); the
/// oldest (lowest `to` version) go first.
const MAX_MARKERS: usize = 32;

impl VaultProvider {
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
        (shown, path, meta): (&str, &[String], KvMeta),
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<(bool, String), ProviderError> {
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

    pub(super) async fn rotate(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let p = self.rotate_params(call)?;
        let mut records = Vec::new();
        // The metadata of every path first: the pre-state is each secret's current version (the
        // one a rollback by hand would read back), never a value.
        let mut metas = Vec::new();
        for (shown, path) in &p.paths {
            let meta = self
                .kv_metadata(path, ctx, &mut records)
                .await?
                .ok_or_else(|| {
                    self.perm(format!(
                        "no KV v2 secret at `{shown}` in mount `{}`; rotate_secret only rotates \
                         existing secrets (check the path and kv_mount)",
                        self.kv_mount.join("/")
                    ))
                })?;
            metas.push(meta);
        }
        let secrets: Vec<Value> = p
            .paths
            .iter()
            .zip(&metas)
            .map(|((_, path), m)| {
                json!({
                    "path": format!("{}/{}", self.kv_mount.join("/"), path.join("/")),
                    "current_version": m.current_version,
                })
            })
            .collect();
        ctx.before(&json!({ "secrets": secrets }));
        let mut lines = Vec::new();
        let mut changed = false;
        for ((shown, path), meta) in p.paths.iter().zip(metas) {
            match self
                .rotate_one(call, &p, (shown, path, meta), ctx, &mut records)
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

    pub(super) async fn check_rotated(
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

    pub(super) fn rotate_params(&self, call: &StepCall<'_>) -> Result<RotateParams, ProviderError> {
        let input: RotateInput = params::parse(call.action, call.params)
            .map_err(|e| self.perm(format!("step `{}`: {e}", call.step_id)))?;
        let raw = input.paths;
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
        let keys = input.keys;
        if keys.as_ref().is_some_and(Vec::is_empty) {
            return Err(self.perm(format!("step `{}`: params.keys is empty", call.step_id)));
        }
        let length = match input.length {
            None => 32,
            Some(n @ 16..=256) => usize::from(n),
            Some(_) => {
                return Err(self.perm(format!(
                    "step `{}`: params.length must be an integer from 16 to 256",
                    call.step_id
                )));
            }
        };
        Ok(RotateParams {
            paths,
            keys,
            length,
        })
    }
}

pub(super) struct RotateParams {
    /// As written in the runbook, and split into segments.
    pub(super) paths: Vec<(String, Vec<String>)>,
    keys: Option<Vec<String>>,
    length: usize,
}

struct KvMeta {
    current_version: u64,
    custom: Map<String, Value>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
