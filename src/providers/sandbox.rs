//! The sandbox: simulated systems, in-process, for `offboard demo` and for trying a runbook
//! without accounts. One sandbox system can play every part (identity provider, SaaS app, MDM,
//! vault, mail); its live state is `<state>/sandbox/<system>.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use super::{
    Account, ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, NO_PARAMS,
    ParamsSpec, Provider, ProviderError, RequestLine, RequestRecord, RestoreCheck, SettingSpec,
    SettingType, StepCall, SystemConfig, params,
};

pub static KIND: KindSpec = KindSpec {
    name: "sandbox",
    summary: "Simulated systems for the demo and for trying runbooks",
    actions: &ACTIONS,
    settings: &[SettingSpec {
        name: "latency_ms",
        ty: SettingType::Integer,
        required: false,
        summary: "simulated time each request takes (default 300)",
    }],
    needs_base_url: false,
    url_schemes: &["https", "http"],
    needs_token: false,
    connect,
    check_action: None,
};

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    let latency_ms = match cfg.settings.get("latency_ms") {
        Some(v) => v
            .as_integer()
            .filter(|n| (0..=60_000).contains(n))
            .ok_or_else(|| {
                anyhow::anyhow!("latency_ms must be a number of milliseconds (0 to 60000)")
            })? as u64,
        None => 300,
    };
    let file_name: String = cfg
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(Arc::new(Sandbox {
        name: cfg.name.clone(),
        path: cfg
            .state_dir
            .join("sandbox")
            .join(format!("{file_name}.json")),
        latency: Duration::from_millis(latency_ms),
    }))
}

/// One simulated system. Its live state is a JSON file in the state dir, so that `verify` in a
/// later process sees what `start` did, and a test (or a curious user) can change it behind the
/// tool's back to see drift detected.
struct Sandbox {
    name: String,
    path: PathBuf,
    latency: Duration,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct World {
    #[serde(default)]
    users: BTreeMap<String, Person>,
    #[serde(default)]
    secrets: BTreeMap<String, Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Person {
    /// The simulated system's own id for the account: it stays when the login is renamed.
    #[serde(default)]
    id: String,
    status: String,
    sessions: u32,
    mfa_factors: u32,
    seat: bool,
    device_locked: bool,
    device_wiped: bool,
    notice_sent: bool,
}

impl Default for Person {
    /// Everyone the sandbox has not seen yet exists, fully active: that is who is leaving.
    fn default() -> Self {
        Person {
            id: new_id(),
            status: "active".into(),
            sessions: 3,
            mfa_factors: 2,
            seat: true,
            device_locked: false,
            device_wiped: false,
            notice_sent: false,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Secret {
    version: u64,
    /// The version written when rotating for a person: the check wants at least this one.
    #[serde(default)]
    rotated_for: BTreeMap<String, u64>,
}

/// What a URL path segment may carry unencoded (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Serializes reads and writes of sandbox files within the process (the file lock below
/// serializes processes).
static WORLD_LOCK: Mutex<()> = Mutex::new(());

/// A fresh account id, like a real system's (random, never derived from the login).
fn new_id() -> String {
    format!("sb-{:016x}", rand::random::<u64>())
}

impl World {
    /// The person with this login, created (active, with a new id) on first sight.
    fn person(&mut self, login: &str) -> &mut Person {
        self.users.entry(login.to_string()).or_default()
    }

    /// The account with this id, whatever its login is now.
    fn by_id(&mut self, id: &str) -> Option<(&String, &mut Person)> {
        self.users.iter_mut().find(|(_, p)| p.id == id)
    }

    /// Give accounts from older sandbox files an id.
    fn fill_ids(&mut self) -> bool {
        let mut changed = false;
        for p in self.users.values_mut().filter(|p| p.id.is_empty()) {
            p.id = new_id();
            changed = true;
        }
        changed
    }
}

impl Sandbox {
    fn url(&self, tail: &str) -> String {
        format!("sandbox://{}/{tail}", self.name)
    }

    fn user_path(login: &str) -> String {
        utf8_percent_encode(login, SEGMENT).to_string()
    }

    fn load(&self) -> Result<World, ProviderError> {
        match crate::state::read_nofollow(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ProviderError::Permanent(format!(
                    "sandbox state {} is not valid: {e}",
                    self.path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(World::default()),
            Err(e) => Err(ProviderError::Permanent(format!(
                "reading sandbox state {}: {:#}",
                self.path.display(),
                crate::state::nofollow_error(e, &self.path)
            ))),
        }
    }

    fn save(&self, world: &World) -> Result<(), ProviderError> {
        let bytes = serde_json::to_vec_pretty(world).expect("sandbox state serializes");
        if let Some(dir) = self.path.parent() {
            crate::state::create_private_dir(dir)
                .map_err(|e| ProviderError::Permanent(format!("{e:#}")))?;
        }
        crate::state::write_atomic(&self.path, &bytes)
            .map_err(|e| ProviderError::Permanent(format!("{e:#}")))
    }

    /// Read-modify-write the world under the process lock and an exclusive lock on
    /// `<system>.json.lock`, so concurrent departures (other processes) lose no update.
    fn with_world<T>(
        &self,
        f: impl FnOnce(&mut World) -> Result<(T, bool), ProviderError>,
    ) -> Result<T, ProviderError> {
        let _guard = WORLD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let _file_lock = self.lock_file()?;
        let mut world = self.load()?;
        let filled = world.fill_ids();
        let (out, dirty) = f(&mut world)?;
        if dirty || filled {
            self.save(&world)?;
        }
        Ok(out)
    }

    /// Take the sandbox file's lock (released when the file closes).
    fn lock_file(&self) -> Result<std::fs::File, ProviderError> {
        use std::os::unix::fs::OpenOptionsExt;
        let perm = |e: anyhow::Error| ProviderError::Permanent(format!("{e:#}"));
        if let Some(dir) = self.path.parent() {
            crate::state::create_private_dir(dir).map_err(perm)?;
        }
        let path = self.lock_path();
        let file = crate::state::open_nofollow(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600),
            &path,
        )
        .map_err(|e| perm(e.context(format!("opening the sandbox lock {}", path.display()))))?;
        file.lock()
            .map_err(|e| ProviderError::Permanent(format!("locking {}: {e}", path.display())))?;
        Ok(file)
    }

    fn lock_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".lock");
        PathBuf::from(p)
    }

    fn secret_path(call: &StepCall<'_>) -> Result<String, ProviderError> {
        Ok(params::parse::<RotateParams>(call.action, call.params)?.path)
    }
}

fn unknown(action: &str) -> ProviderError {
    ProviderError::Permanent(format!("the sandbox has no action {action:?}"))
}

#[async_trait]
impl Provider for Sandbox {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        let user = Self::user_path(call.login);
        let (method, tail) = match call.action {
            "suspend_user" => ("POST", format!("users/{user}/suspend")),
            "revoke_sessions" => ("DELETE", format!("users/{user}/sessions")),
            "reset_mfa" => ("DELETE", format!("users/{user}/factors")),
            "remove_seat" => ("DELETE", format!("seats/{user}")),
            "lock_device" => ("POST", format!("devices/lock?owner={user}")),
            "wipe_device" => ("POST", format!("devices/wipe?owner={user}")),
            "rotate_secret" => {
                let path = Self::secret_path(call).unwrap_or_default();
                ("PUT", format!("secrets/{}", Self::user_path(&path)))
            }
            "delete_user" => ("DELETE", format!("users/{user}")),
            "send_notice" => ("POST", format!("mail/{user}/notice")),
            other => ("?", other.to_string()),
        };
        vec![RequestLine {
            method: method.into(),
            url: self.url(&tail),
        }]
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        tokio::time::sleep(self.latency).await;
        let login = call.login.to_string();
        let (changed, summary, account) = self.with_world(|w| {
            if call.action == "rotate_secret" {
                let path = Self::secret_path(call)?;
                let secret = w.secrets.entry(path.clone()).or_insert(Secret {
                    version: 1,
                    ..Secret::default()
                });
                let before = secret.version;
                // The version number only: never the secret's value.
                ctx.before(&serde_json::json!({ "version": before }));
                secret.version += 1;
                secret.rotated_for.insert(login.clone(), secret.version);
                let s = format!("wrote version {} of {path} (was {before})", secret.version);
                let account = Account::new(path.clone(), "secret path", path.clone());
                return Ok(((true, s, account), true));
            }
            let p = match call.account {
                Some(known) => match w.by_id(&known.id) {
                    Some((_, p)) => p,
                    None => {
                        let account = known.clone();
                        return Ok(((false, "account no longer exists".into(), account), false));
                    }
                },
                None => w.person(&login),
            };
            let account = Account::new(p.id.clone(), "sandbox id", login.clone());
            ctx.identified(&account);
            ctx.before(&pre_state(call.action, p)?);
            if p.status == "deleted" && call.action != "delete_user" {
                return Ok(((false, "user already deleted".to_string(), account), false));
            }
            let r = match call.action {
                "suspend_user" => flip(&mut p.status, "suspended", "status"),
                "revoke_sessions" => count_to_zero(&mut p.sessions, "sessions"),
                "reset_mfa" => count_to_zero(&mut p.mfa_factors, "MFA factors"),
                "remove_seat" => set_flag(&mut p.seat, false, "seat assigned"),
                "lock_device" => set_flag(&mut p.device_locked, true, "device locked"),
                "wipe_device" => set_flag(&mut p.device_wiped, true, "device wiped"),
                "delete_user" => flip(&mut p.status, "deleted", "status"),
                "send_notice" => set_flag(&mut p.notice_sent, true, "notice sent"),
                other => return Err(unknown(other)),
            };
            Ok(((r.0, r.1, account), r.0))
        })?;
        Ok(ApplyOutcome {
            changed,
            summary,
            account: Some(account),
            requests: self
                .describe(call)
                .into_iter()
                .map(|r| RequestRecord {
                    method: r.method,
                    url: r.url,
                    status: if changed { 200 } else { 304 },
                })
                .collect(),
        })
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        _ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        tokio::time::sleep(self.latency / 2).await;
        let login = call.login.to_string();
        self.with_world(|w| {
            if call.action == "rotate_secret" {
                let path = Self::secret_path(call)?;
                let s = w.secrets.get(&path).cloned().unwrap_or_default();
                let wanted = s.rotated_for.get(&login).copied();
                let revoked = wanted.is_some_and(|v| s.version >= v);
                let observed = match wanted {
                    Some(v) => format!("{path} at version {} (rotated to {v})", s.version),
                    None => format!("{path} at version {}, never rotated", s.version),
                };
                let account = Some(Account::new(path.clone(), "secret path", path.clone()));
                return Ok((
                    CheckOutcome {
                        revoked,
                        observed,
                        account,
                    },
                    false,
                ));
            }
            let (name, p) = match call.account {
                Some(known) => match w.by_id(&known.id) {
                    Some((name, p)) => (name.clone(), p.clone()),
                    None => {
                        let gone = CheckOutcome {
                            revoked: true,
                            observed: format!("account {} no longer exists (deleted)", known.id),
                            account: Some(known.clone()),
                        };
                        return Ok((gone, false));
                    }
                },
                // Everyone exists in the sandbox: a first look creates the account.
                None => (login.clone(), w.person(&login).clone()),
            };
            let created = call.account.is_none();
            let account = Some(Account::new(p.id.clone(), "sandbox id", name));
            let deleted = p.status == "deleted";
            let (revoked, observed) = match call.action {
                "suspend_user" => (p.status != "active", format!("status={}", p.status)),
                "revoke_sessions" => (
                    deleted || p.sessions == 0,
                    format!("sessions={}", p.sessions),
                ),
                "reset_mfa" => (
                    deleted || p.mfa_factors == 0,
                    format!("mfa_factors={}", p.mfa_factors),
                ),
                "remove_seat" => (!p.seat, format!("seat={}", p.seat)),
                "lock_device" => (
                    p.device_locked || p.device_wiped,
                    format!("locked={}", p.device_locked),
                ),
                "wipe_device" => (p.device_wiped, format!("wiped={}", p.device_wiped)),
                "delete_user" => (deleted, format!("status={}", p.status)),
                "send_notice" => (p.notice_sent, format!("notice_sent={}", p.notice_sent)),
                other => return Err(unknown(other)),
            };
            let outcome = CheckOutcome {
                revoked,
                observed,
                account,
            };
            Ok((outcome, created))
        })
    }

    async fn restore(
        &self,
        call: &StepCall<'_>,
        before: &serde_json::Value,
        _ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        tokio::time::sleep(self.latency).await;
        let known = restore_account(call)?;
        let (changed, summary) = self.with_world(|w| {
            let Some((_, p)) = w.by_id(&known.id) else {
                return Err(ProviderError::Permanent(format!(
                    "sandbox account {} no longer exists: nothing to restore",
                    known.id
                )));
            };
            if p.status == "deleted" && call.action != "delete_user" {
                return Err(ProviderError::Permanent(format!(
                    "sandbox account {} was deleted since: it cannot be re-enabled",
                    known.id
                )));
            }
            let r = match call.action {
                "suspend_user" => {
                    let was = field_str(before, "status")?;
                    flip(&mut p.status, was, "status")
                }
                "remove_seat" => {
                    set_flag(&mut p.seat, field_bool(before, "seat")?, "seat assigned")
                }
                "lock_device" => {
                    if p.device_wiped {
                        return Err(ProviderError::Permanent(
                            "the device was wiped since: a wiped device stays wiped".into(),
                        ));
                    }
                    let was = field_bool(before, "device_locked")?;
                    set_flag(&mut p.device_locked, was, "device locked")
                }
                other => return Err(no_restore(other)),
            };
            let dirty = r.0;
            Ok((r, dirty))
        })?;
        Ok(ApplyOutcome {
            changed,
            summary,
            account: Some(known.clone()),
            requests: self
                .describe_restore(call, before)
                .into_iter()
                .map(|r| RequestRecord {
                    method: r.method,
                    url: r.url,
                    status: if changed { 200 } else { 304 },
                })
                .collect(),
        })
    }

    fn describe_restore(
        &self,
        call: &StepCall<'_>,
        _before: &serde_json::Value,
    ) -> Vec<RequestLine> {
        let id = call
            .account
            .map(|a| Self::user_path(&a.id))
            .unwrap_or_else(|| "{id}".into());
        let (method, tail) = match call.action {
            "suspend_user" => ("POST", format!("users/{id}/unsuspend")),
            "remove_seat" => ("PUT", format!("seats/{id}")),
            "lock_device" => ("POST", format!("devices/unlock?owner={id}")),
            _ => return Vec::new(),
        };
        vec![RequestLine {
            method: method.into(),
            url: self.url(&tail),
        }]
    }

    async fn check_restored(
        &self,
        call: &StepCall<'_>,
        before: &serde_json::Value,
        _ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        tokio::time::sleep(self.latency / 2).await;
        let known = restore_account(call)?;
        self.with_world(|w| {
            let Some((name, p)) = w.by_id(&known.id) else {
                let check = RestoreCheck {
                    after: serde_json::Value::Null,
                    restored: false,
                    observed: format!("sandbox account {} no longer exists", known.id),
                    account: Some(known.clone()),
                };
                return Ok((check, false));
            };
            let account = Some(Account::new(p.id.clone(), "sandbox id", name.clone()));
            let after = pre_state(call.action, p)?;
            let (restored, observed) = match call.action {
                "suspend_user" => (
                    p.status == field_str(before, "status")?,
                    format!("status={}", p.status),
                ),
                "remove_seat" => (
                    p.seat == field_bool(before, "seat")?,
                    format!("seat={}", p.seat),
                ),
                "lock_device" => (
                    p.device_locked == field_bool(before, "device_locked")? && !p.device_wiped,
                    format!("locked={} wiped={}", p.device_locked, p.device_wiped),
                ),
                other => return Err(no_restore(other)),
            };
            Ok((
                RestoreCheck {
                    after,
                    restored,
                    observed,
                    account,
                },
                false,
            ))
        })
    }
}

/// The part of a person an action changes, as it is now: what `apply` records as the
/// pre-state, and what `check_restored` compares with it.
fn pre_state(action: &str, p: &Person) -> Result<serde_json::Value, ProviderError> {
    use serde_json::json;
    Ok(match action {
        "suspend_user" | "delete_user" => json!({ "status": p.status }),
        "revoke_sessions" => json!({ "sessions": p.sessions }),
        "reset_mfa" => json!({ "mfa_factors": p.mfa_factors }),
        "remove_seat" => json!({ "seat": p.seat }),
        "lock_device" => {
            json!({ "device_locked": p.device_locked, "device_wiped": p.device_wiped })
        }
        "wipe_device" => json!({ "device_wiped": p.device_wiped }),
        "send_notice" => json!({ "notice_sent": p.notice_sent }),
        other => return Err(unknown(other)),
    })
}

/// The account a restore acts on: always the one the apply recorded.
fn restore_account<'a>(call: &StepCall<'a>) -> Result<&'a Account, ProviderError> {
    call.account.ok_or_else(|| {
        ProviderError::Permanent("no account was recorded for this step: nothing to restore".into())
    })
}

fn no_restore(action: &str) -> ProviderError {
    ProviderError::Permanent(format!("the sandbox cannot restore {action:?}"))
}

fn field_str<'a>(before: &'a serde_json::Value, name: &str) -> Result<&'a str, ProviderError> {
    before[name].as_str().ok_or_else(|| bad_before(name))
}

fn field_bool(before: &serde_json::Value, name: &str) -> Result<bool, ProviderError> {
    before[name].as_bool().ok_or_else(|| bad_before(name))
}

fn bad_before(name: &str) -> ProviderError {
    ProviderError::Permanent(format!(
        "the recorded pre-state has no {name:?}: it cannot be restored"
    ))
}

fn flip(field: &mut String, to: &str, what: &str) -> (bool, String) {
    if field == to {
        (false, format!("{what} already {to}"))
    } else {
        let from = std::mem::replace(field, to.to_string());
        (true, format!("{what}: {from} → {to}"))
    }
}

fn count_to_zero(n: &mut u32, what: &str) -> (bool, String) {
    if *n == 0 {
        (false, format!("no {what} left"))
    } else {
        let before = std::mem::take(n);
        (true, format!("{what}: {before} → 0"))
    }
}

fn set_flag(flag: &mut bool, to: bool, what: &str) -> (bool, String) {
    if *flag == to {
        (false, format!("{what} already {to}"))
    } else {
        *flag = to;
        (true, format!("{what}: {} → {to}", !to))
    }
}

/// `rotate_secret`'s parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RotateParams {
    /// The shared secret to rotate.
    path: String,
}

const fn action(name: &'static str, summary: &'static str, inverse: Inverse) -> ActionSpec {
    ActionSpec {
        name,
        summary,
        destructive: false,
        alerts_user: false,
        revokes: true,
        inverse,
        params: NO_PARAMS,
    }
}

static ACTIONS: [ActionSpec; 9] = [
    action(
        "suspend_user",
        "identity provider: suspend the account; the check reads its status",
        Inverse::Restore("set the account's status back to what it was (active)"),
    ),
    action(
        "revoke_sessions",
        "identity provider: end every session; the check counts live sessions",
        Inverse::None("ended sessions cannot be revived; the person signs in again"),
    ),
    action(
        "reset_mfa",
        "identity provider: remove every MFA factor; the check counts factors",
        Inverse::None("removed MFA factors cannot be put back; the person enrols again"),
    ),
    action(
        "remove_seat",
        "SaaS: take back the licence seat; the check reads the seat",
        Inverse::Restore("assign the licence seat again"),
    ),
    action(
        "lock_device",
        "MDM: lock the person's devices; the check reads the lock state",
        Inverse::Restore("unlock the device"),
    ),
    ActionSpec {
        destructive: true,
        ..action(
            "wipe_device",
            "MDM: erase the person's devices; the check reads the wipe state",
            Inverse::None("a wiped device stays wiped; its data comes back only from a backup"),
        )
    },
    ActionSpec {
        params: ParamsSpec::of::<RotateParams>(),
        ..action(
            "rotate_secret",
            "vault: write a new version of a shared secret the person knew",
            Inverse::None("the old secret version is retired on purpose; it is not put back"),
        )
    },
    ActionSpec {
        destructive: true,
        ..action(
            "delete_user",
            "identity provider: delete the account; the check expects it gone",
            Inverse::None("a deleted account cannot be brought back; create it again by hand"),
        )
    },
    ActionSpec {
        alerts_user: true,
        revokes: false,
        ..action(
            "send_notice",
            "mail: send the person their end-of-access notice",
            Inverse::None("a sent notice cannot be unsent; tell the person it was rescinded"),
        )
    },
];
