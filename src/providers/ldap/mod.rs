//! LDAP directories: Active Directory (and Samba AD DC), OpenLDAP with the ppolicy overlay, and
//! 389 Directory Server.
//!
//! The server is `base_url` (`ldaps://dc1.corp.example` or `ldap://…` with `start_tls = true`;
//! plain `ldap://` without TLS only with `allow_plain = true`). Each call opens a connection,
//! binds as `bind_dn` with `bind_password`, finds the person with
//! `(&<object filter>(<user_attribute>=<login>))` under `base_dn` (the login escaped as RFC 4515
//! asks), acts on the DN the server returned, and unbinds. DNs are never built from input: the
//! person's DN, group DNs and the RDN kept by `move_to_ou` all come from the server.
//!
//! Actions, by flavor:
//! - `active_directory`: `disable_account` (userAccountControl |= 0x2, other bits kept),
//!   `remove_from_groups` (memberOf, or `params.groups`), `reset_password` (a random unicodePwd,
//!   never stored or shown; LDAPS/StartTLS only), `move_to_ou` (to `disabled_ou`),
//!   `set_description` (`params.text`, literally).
//! - `openldap`: `lock_account` (`pwdAccountLockedTime: 000001010000Z`, ppolicy's permanent
//!   lock), `remove_from_groups` (groupOfNames/groupOfUniqueNames holding the DN).
//! - `389ds`: `lock_account` (`nsAccountLock: true`), `remove_from_groups`.
//!
//! A check never knows the person's password, so it reads the attribute that makes binds fail.
//! For `reset_password` the check compares the live `pwdLastSet` with the value this machine
//! recorded right after the reset (under the state dir, keyed by objectGUID, no secret): the
//! password counts as reset while `pwdLastSet` is at least that value. Every earlier password
//! stops working for LDAP binds once it changes; a later reset by anyone also passes the check.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, SearchEntry};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use url::Url;

use super::{
    Account, ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, KindSpec, Provider, ProviderError,
    RequestLine, RequestRecord, RetryNote, SettingSpec, SettingType, StepCall, SystemConfig,
};

pub static KIND: KindSpec = KindSpec {
    name: "ldap",
    summary: "LDAP directories: Active Directory / Samba AD (flavor active_directory), OpenLDAP \
              with ppolicy (openldap), 389 Directory Server (389ds). The server is base_url: \
              ldaps://host[:636], or ldap://host with start_tls = true, or plain ldap:// only \
              with allow_plain = true",
    actions: &[
        ActionSpec {
            name: "disable_account",
            summary: "active_directory: userAccountControl |= 0x2 (ACCOUNTDISABLE), other bits \
                      kept; check reads the bit",
            destructive: false,
            alerts_user: false,
            revokes: true,
            params: &[],
        },
        ActionSpec {
            name: "remove_from_groups",
            summary: "remove the person from every group (AD: memberOf; OpenLDAP/389ds: groups \
                      whose member/uniqueMember is the DN), or only from params.groups (DNs or \
                      CNs); the summary lists the groups removed; check reads the memberships",
            destructive: false,
            alerts_user: false,
            revokes: true,
            params: &[SettingSpec {
                name: "groups",
                ty: SettingType::StringList,
                required: false,
                summary: "only these groups (DNs or CNs); default: all",
            }],
        },
        ActionSpec {
            name: "reset_password",
            summary: "active_directory: set unicodePwd to a random value that is never stored or \
                      shown (LDAPS/StartTLS only); check: pwdLastSet is not older than the value \
                      recorded after the reset, so no earlier password binds",
            destructive: false,
            alerts_user: false,
            revokes: true,
            params: &[],
        },
        ActionSpec {
            name: "move_to_ou",
            summary: "active_directory: move the entry under disabled_ou, keeping its RDN; check: \
                      the DN is directly under disabled_ou",
            destructive: false,
            alerts_user: false,
            revokes: true,
            params: &[],
        },
        ActionSpec {
            name: "set_description",
            summary: "active_directory: set description to params.text (a template, rendered \
                      when the departure is planned); check: description equals it",
            destructive: false,
            alerts_user: false,
            revokes: true,
            params: &[SettingSpec {
                name: "text",
                ty: SettingType::String,
                required: true,
                summary: "the description, e.g. \"offboarded 2026-11-22 ticket #123\"",
            }],
        },
        ActionSpec {
            name: "lock_account",
            summary: "openldap: pwdAccountLockedTime = 000001010000Z (ppolicy permanent lock); \
                      389ds: nsAccountLock = true; check reads the attribute",
            destructive: false,
            alerts_user: false,
            revokes: true,
            params: &[],
        },
    ],
    settings: &[
        SettingSpec {
            name: "flavor",
            ty: SettingType::String,
            required: true,
            summary: "active_directory | openldap | 389ds",
        },
        SettingSpec {
            name: "bind_dn",
            ty: SettingType::String,
            required: true,
            summary: "who offboard binds as (AD also takes user@realm)",
        },
        SettingSpec {
            name: "bind_password",
            ty: SettingType::Secret,
            required: true,
            summary: "the bind password, by reference ({ env = … } / { file = … } / { command = … })",
        },
        SettingSpec {
            name: "base_dn",
            ty: SettingType::String,
            required: true,
            summary: "where people are searched (subtree), e.g. DC=corp,DC=example",
        },
        SettingSpec {
            name: "start_tls",
            ty: SettingType::Bool,
            required: false,
            summary: "upgrade an ldap:// connection with StartTLS (default false)",
        },
        SettingSpec {
            name: "ca_file",
            ty: SettingType::String,
            required: false,
            summary: "PEM file of the CA(s) that signed the server certificate (default: the \
                      system's trust store)",
        },
        SettingSpec {
            name: "allow_plain",
            ty: SettingType::Bool,
            required: false,
            summary: "allow ldap:// without TLS: the bind password crosses the network in clear \
                      (default false)",
        },
        SettingSpec {
            name: "user_attribute",
            ty: SettingType::String,
            required: false,
            summary: "the attribute the login is matched against (default: userPrincipalName for \
                      active_directory, e.g. also mail or sAMAccountName; mail for openldap and \
                      389ds, e.g. also uid)",
        },
        SettingSpec {
            name: "disabled_ou",
            ty: SettingType::String,
            required: false,
            summary: "the OU move_to_ou moves people to, e.g. OU=Disabled Users,DC=corp,DC=example",
        },
        SettingSpec {
            name: "groups_base",
            ty: SettingType::String,
            required: false,
            summary: "openldap/389ds: where groups are searched (default base_dn)",
        },
    ],
    needs_base_url: true,
    url_schemes: &["ldaps", "ldap"],
    needs_token: false,
    connect,
    check_action: Some(check_action),
};

/// The actions a flavor offers (`lock_account` is not Active Directory's, `disable_account` not
/// OpenLDAP's).
fn check_action(cfg: &SystemConfig, action: &str) -> Result<(), String> {
    let Some(flavor) = cfg
        .settings
        .get("flavor")
        .and_then(|v| v.as_str())
        .and_then(Flavor::parse)
    else {
        // A missing or unknown flavor is reported at the system.
        return Ok(());
    };
    if flavor.supports(action) {
        return Ok(());
    }
    let offered: Vec<&str> = KIND
        .actions
        .iter()
        .map(|a| a.name)
        .filter(|a| flavor.supports(a))
        .collect();
    Err(format!(
        "the ldap kind with flavor {} has no action `{action}` (it offers: {})",
        flavor.as_str(),
        offered.join(", ")
    ))
}

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(Arc::new(LdapProvider::new(cfg)?))
}

/// The directory's flavor: which attributes mean what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    ActiveDirectory,
    OpenLdap,
    Ds389,
}

impl Flavor {
    fn parse(s: &str) -> Option<Flavor> {
        match s {
            "active_directory" => Some(Flavor::ActiveDirectory),
            "openldap" => Some(Flavor::OpenLdap),
            "389ds" => Some(Flavor::Ds389),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Flavor::ActiveDirectory => "active_directory",
            Flavor::OpenLdap => "openldap",
            Flavor::Ds389 => "389ds",
        }
    }

    /// The attribute that identifies an entry for good (it survives renames and moves).
    fn id_attribute(self) -> &'static str {
        match self {
            Flavor::ActiveDirectory => "objectGUID",
            Flavor::OpenLdap => "entryUUID",
            Flavor::Ds389 => "nsUniqueId",
        }
    }

    fn default_user_attribute(self) -> &'static str {
        match self {
            Flavor::ActiveDirectory => "userPrincipalName",
            Flavor::OpenLdap | Flavor::Ds389 => "mail",
        }
    }

    /// Which actions this flavor offers.
    fn supports(self, action: &str) -> bool {
        match self {
            Flavor::ActiveDirectory => matches!(
                action,
                "disable_account"
                    | "remove_from_groups"
                    | "reset_password"
                    | "move_to_ou"
                    | "set_description"
            ),
            Flavor::OpenLdap | Flavor::Ds389 => {
                matches!(action, "lock_account" | "remove_from_groups")
            }
        }
    }
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Ldaps,
    StartTls,
    Plain,
}

/// userAccountControl ACCOUNTDISABLE.
pub const UAC_ACCOUNTDISABLE: u32 = 0x2;
/// ppolicy's "locked until an administrator unlocks it" value.
pub const PERMANENT_LOCK: &str = "000001010000Z";

/// `uac` with ACCOUNTDISABLE set, every other bit kept.
pub fn uac_disabled(uac: u32) -> u32 {
    uac | UAC_ACCOUNTDISABLE
}

pub fn uac_is_disabled(uac: u32) -> bool {
    uac & UAC_ACCOUNTDISABLE != 0
}

/// userAccountControl as AD sends it: a decimal INTEGER (signed 32-bit on the wire).
pub fn parse_uac(s: &str) -> Option<u32> {
    let v: i64 = s.trim().parse().ok()?;
    if (i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(&v) {
        Some(v as u32)
    } else {
        None
    }
}

/// Escape a value for an LDAP filter (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL become `\XX`.
/// Everything else, UTF-8 included, stays as it is.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// An attribute description safe to put unquoted in a filter: a descriptor (letters, digits,
/// `-`) or a numeric OID.
fn is_attribute_name(s: &str) -> bool {
    let descr = s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    descr || oid
}

/// Split a DN (as the server sent it) into its first RDN and the parent DN, honouring `\`
/// escapes (`CN=Doe\, Jane,OU=People,…`).
pub fn split_dn(dn: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in dn.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' | ';' => return (dn[..i].trim(), dn[i + 1..].trim()),
            _ => {}
        }
    }
    (dn.trim(), "")
}

/// A DN compared loosely: case-insensitive, no spaces around `,` and `=`. Good enough to
/// compare DNs the same server sent, or one the runbook copied from it.
fn dn_key(dn: &str) -> String {
    let mut out = String::new();
    let mut rest = dn.trim();
    loop {
        let (rdn, parent) = split_dn(rest);
        let rdn = match rdn.split_once('=') {
            Some((a, v)) => format!("{}={}", a.trim(), v.trim()),
            None => rdn.to_string(),
        };
        out.push_str(&rdn.to_lowercase());
        if parent.is_empty() {
            break;
        }
        out.push(',');
        rest = parent;
    }
    out
}

fn dn_eq(a: &str, b: &str) -> bool {
    dn_key(a) == dn_key(b)
}

/// The value of a DN's first RDN (`CN=VPN Users,…` → `VPN Users`), escapes undone for the
/// common cases.
fn first_rdn_value(dn: &str) -> String {
    let (rdn, _) = split_dn(dn);
    let v = rdn.split_once('=').map_or(rdn, |(_, v)| v).trim();
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// AD's pwdLastSet (100 ns ticks since 1601) as a readable UTC time.
fn filetime_display(ticks: i64) -> String {
    if ticks <= 0 {
        return format!("{ticks} (must change at next logon)");
    }
    let secs = ticks / 10_000_000 - 11_644_473_600;
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| format!("{ticks} ({})", t.format("%Y-%m-%dT%H:%M:%SZ")))
        .unwrap_or_else(|| ticks.to_string())
}

/// A random password that meets AD's complexity rules (upper, lower, digit, symbol; 32 chars).
fn random_password() -> SecretString {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"!#%+-./:=?@^_~";
    let mut rng = rand::rngs::OsRng;
    let all: Vec<u8> = [UPPER, LOWER, DIGIT, SYMBOL].concat();
    let mut chars: Vec<u8> = [UPPER, LOWER, DIGIT, SYMBOL]
        .iter()
        .map(|set| set[rng.gen_range(0..set.len())])
        .collect();
    while chars.len() < 32 {
        chars.push(all[rng.gen_range(0..all.len())]);
    }
    // Shuffle so the class order is not fixed.
    for i in (1..chars.len()).rev() {
        chars.swap(i, rng.gen_range(0..=i));
    }
    SecretString::from(String::from_utf8(chars).expect("ASCII"))
}

/// unicodePwd's value: the password in double quotes, UTF-16LE.
fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// A connected LDAP directory.
pub struct LdapProvider {
    system: String,
    flavor: Flavor,
    url: Url,
    /// `ldaps://host:port`, for request lines.
    origin: String,
    transport: Transport,
    bind_dn: String,
    bind_password: Option<SecretString>,
    base_dn: String,
    ca_file: Option<PathBuf>,
    user_attribute: String,
    disabled_ou: Option<String>,
    groups_base: Option<String>,
    timeout: Duration,
    state_dir: PathBuf,
    retry: RetryPolicy,
}

/// The kit's retry policy (shared with the HTTP kinds); an LDAP call is retried whole, in a
/// fresh session.
pub use super::kit::retry::RetryPolicy;

impl std::fmt::Debug for LdapProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapProvider")
            .field("system", &self.system)
            .field("flavor", &self.flavor)
            .field("origin", &self.origin)
            .field("bind_dn", &self.bind_dn)
            .finish_non_exhaustive()
    }
}

fn setting_str(cfg: &SystemConfig, name: &str) -> anyhow::Result<Option<String>> {
    match cfg.settings.get(name) {
        None => Ok(None),
        Some(toml::Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(other) => anyhow::bail!(
            "system `{}`: {name} must be a string, not {}",
            cfg.name,
            other.type_str()
        ),
    }
}

fn setting_bool(cfg: &SystemConfig, name: &str) -> anyhow::Result<bool> {
    match cfg.settings.get(name) {
        None => Ok(false),
        Some(toml::Value::Boolean(b)) => Ok(*b),
        Some(other) => anyhow::bail!(
            "system `{}`: {name} must be true or false, not {}",
            cfg.name,
            other.type_str()
        ),
    }
}

impl LdapProvider {
    /// Build from the system's configuration. No I/O; works without the bind password
    /// (planning).
    pub fn new(cfg: &SystemConfig) -> anyhow::Result<LdapProvider> {
        let name = &cfg.name;
        let need = |key: &str| -> anyhow::Result<String> {
            setting_str(cfg, key)?
                .ok_or_else(|| anyhow::anyhow!("system `{name}`: the ldap kind needs `{key}`"))
        };
        let flavor_s = need("flavor")?;
        let flavor = Flavor::parse(&flavor_s).ok_or_else(|| {
            anyhow::anyhow!(
                "system `{name}`: flavor `{flavor_s}` is not one of active_directory, openldap, \
                 389ds"
            )
        })?;
        let raw = cfg.base_url.as_deref().ok_or_else(|| {
            anyhow::anyhow!("system `{name}`: base_url must be the server, e.g. ldaps://dc1:636")
        })?;
        let url = Url::parse(raw.trim())
            .map_err(|e| anyhow::anyhow!("system `{name}`: base_url `{raw}` is not a URL: {e}"))?;
        let start_tls = setting_bool(cfg, "start_tls")?;
        let allow_plain = setting_bool(cfg, "allow_plain")?;
        let transport = match (url.scheme(), start_tls) {
            ("ldaps", false) => Transport::Ldaps,
            ("ldaps", true) => anyhow::bail!(
                "system `{name}`: start_tls = true with an ldaps:// base_url: use ldap:// with \
                 StartTLS, or ldaps:// without it"
            ),
            ("ldap", true) => Transport::StartTls,
            ("ldap", false) if allow_plain => Transport::Plain,
            ("ldap", false) => anyhow::bail!(
                "system `{name}`: base_url `{raw}` is plain LDAP: the bind password would cross \
                 the network in clear. Use ldaps://, or set start_tls = true, or (only on a \
                 trusted network) allow_plain = true"
            ),
            (other, _) => anyhow::bail!(
                "system `{name}`: base_url must be ldap:// or ldaps://, not {other}://"
            ),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| anyhow::anyhow!("system `{name}`: base_url `{raw}` has no host"))?;
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            anyhow::bail!(
                "system `{name}`: base_url must be only ldap[s]://host[:port]; put the search \
                 base in base_dn"
            );
        }
        let port = url.port().unwrap_or(if transport == Transport::Ldaps {
            636
        } else {
            389
        });
        let origin = format!("{}://{host}:{port}", url.scheme());
        let user_attribute = setting_str(cfg, "user_attribute")?
            .unwrap_or_else(|| flavor.default_user_attribute().to_string());
        if !is_attribute_name(&user_attribute) {
            anyhow::bail!(
                "system `{name}`: user_attribute `{user_attribute}` is not an attribute name \
                 (letters, digits and `-`, or an OID)"
            );
        }
        let bind_password = cfg.secrets.get("bind_password").cloned();
        Ok(LdapProvider {
            system: name.clone(),
            flavor,
            url,
            origin,
            transport,
            bind_dn: need("bind_dn")?,
            bind_password,
            base_dn: need("base_dn")?,
            ca_file: setting_str(cfg, "ca_file")?.map(PathBuf::from),
            user_attribute,
            disabled_ou: setting_str(cfg, "disabled_ou")?,
            groups_base: setting_str(cfg, "groups_base")?,
            timeout: cfg.timeout,
            state_dir: cfg.state_dir.clone(),
            retry: RetryPolicy::default(),
        })
    }

    /// Replace the retry policy (tests use tiny budgets).
    pub fn with_retry(mut self, retry: RetryPolicy) -> LdapProvider {
        self.retry = retry;
        self
    }

    /// The filter that finds the person (the login escaped per RFC 4515).
    pub fn filter_for(&self, login: &str) -> String {
        let value = escape_filter_value(login);
        match self.flavor {
            Flavor::ActiveDirectory => format!(
                "(&(objectCategory=person)(objectClass=user)({}={value}))",
                self.user_attribute
            ),
            Flavor::OpenLdap | Flavor::Ds389 => format!(
                "(&(|(objectClass=person)(objectClass=posixAccount))({}={value}))",
                self.user_attribute
            ),
        }
    }

    fn err(&self, msg: impl std::fmt::Display) -> ProviderError {
        ProviderError::Permanent(format!("system `{}`: {msg}", self.system))
    }

    fn at(&self, dn: &str) -> String {
        format!("{}/{dn}", self.origin)
    }

    /// The TLS configuration: the CA file's certificates, or ldap3's default (the system's
    /// trust store) when there is none.
    fn tls_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, ProviderError> {
        let Some(path) = &self.ca_file else {
            return Ok(None);
        };
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(format!("ca_file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(self.err(format!(
                "ca_file {}: no PEM certificate in it",
                path.display()
            )));
        }
        let mut roots = rustls::RootCertStore::empty();
        for c in certs {
            roots
                .add(c)
                .map_err(|e| self.err(format!("ca_file {}: {e}", path.display())))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| self.err(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Some(Arc::new(config)))
    }

    /// Connect and bind. The caller unbinds.
    async fn session(&self, records: &mut Vec<RequestRecord>) -> Result<Ldap, ProviderError> {
        let Some(password) = &self.bind_password else {
            return Err(self.err(
                "no bind_password: set bind_password = { env = \"…\" } (or file/command) in the \
                 runbook",
            ));
        };
        if password.expose_secret().is_empty() {
            return Err(
                self.err("bind_password is empty (an empty password is an anonymous bind in LDAP)")
            );
        }
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.transport == Transport::StartTls);
        if let Some(config) = self.tls_config()? {
            settings = settings.set_config(config);
        }
        let (conn, mut ldap) = LdapConnAsync::from_url_with_settings(settings, &self.url)
            .await
            .map_err(|e| {
                let op = if self.transport == Transport::StartTls {
                    "connect and StartTLS"
                } else {
                    "connect"
                };
                self.map_err(op, &self.origin, e)
            })?;
        ldap3::drive!(conn);
        ldap.with_timeout(self.timeout);
        let res = ldap
            .simple_bind(&self.bind_dn, password.expose_secret())
            .await
            .map_err(|e| self.map_err("bind", &self.bind_dn, e))?;
        records.push(RequestRecord {
            method: "BIND".into(),
            url: self.at(&self.bind_dn),
            status: res.rc as u16,
        });
        res.success()
            .map_err(|e| self.map_err("bind", &self.bind_dn, e))?;
        Ok(ldap)
    }

    /// Turn an ldap3 error into a readable ProviderError. Never includes the password (it is
    /// in no ldap3 error: only result codes, server texts and I/O errors).
    fn map_err(&self, op: &str, dn: &str, e: LdapError) -> ProviderError {
        let sys = &self.system;
        match e {
            LdapError::LdapResult { result } => {
                let text = result.text.trim().trim_end_matches('\0').to_string();
                let detail = if text.is_empty() {
                    String::new()
                } else {
                    format!(" (server: {text})")
                };
                match result.rc {
                    49 => ProviderError::Permanent(format!(
                        "system `{sys}`: bind failed: check bind_dn/bind_password (invalid \
                         credentials for {}){detail}",
                        self.bind_dn
                    )),
                    50 => ProviderError::Permanent(format!(
                        "system `{sys}`: insufficient access: {} may not {op} {dn}; grant it \
                         the right in the directory{detail}",
                        self.bind_dn
                    )),
                    53 => ProviderError::Permanent(format!(
                        "system `{sys}`: the server is unwilling to {op} {dn}{detail}; \
                         passwords can only be set over LDAPS or StartTLS, and some changes \
                         need a domain policy that allows them"
                    )),
                    8 | 13 => ProviderError::Permanent(format!(
                        "system `{sys}`: the server requires a protected connection for {op}: \
                         use ldaps:// or start_tls = true{detail}"
                    )),
                    19 => ProviderError::Permanent(format!(
                        "system `{sys}`: constraint violation on {op} {dn} (password policy?){detail}"
                    )),
                    32 => ProviderError::Permanent(format!(
                        "system `{sys}`: {op}: no such object {dn}: check base_dn, disabled_ou \
                         and groups_base{detail}"
                    )),
                    51 | 52 => ProviderError::Transient(format!(
                        "system `{sys}`: the server is busy or unavailable ({op} {dn}, rc \
                         {}){detail}",
                        result.rc
                    )),
                    rc => ProviderError::Permanent(format!(
                        "system `{sys}`: {op} {dn} failed: LDAP result {rc} ({}){detail}",
                        rc_name(rc)
                    )),
                }
            }
            LdapError::Timeout { .. } => ProviderError::Transient(format!(
                "system `{sys}`: {op} {dn}: no answer from {} within {} s",
                self.origin,
                self.timeout.as_secs()
            )),
            LdapError::Io { source } => ProviderError::Transient(format!(
                "system `{sys}`: cannot reach {} ({op}): {source}",
                self.origin
            )),
            LdapError::Rustls { source } => ProviderError::Permanent(format!(
                "system `{sys}`: TLS with {} failed: {source} (is ca_file the CA that signed \
                 the server certificate, and is the host name/IP in its SAN?)",
                self.origin
            )),
            LdapError::OpSend { .. }
            | LdapError::ResultRecv { .. }
            | LdapError::EndOfStream
            | LdapError::IdScrubSend { .. }
            | LdapError::MiscSend { .. } => ProviderError::Transient(format!(
                "system `{sys}`: the connection to {} dropped during {op}",
                self.origin
            )),
            other => ProviderError::Permanent(format!("system `{sys}`: {op} {dn}: {other}")),
        }
    }

    /// Attributes read from the person's entry.
    fn user_attrs(&self) -> Vec<&'static str> {
        match self.flavor {
            Flavor::ActiveDirectory => vec![
                "userAccountControl",
                "memberOf",
                "pwdLastSet",
                "description",
                "objectGUID",
            ],
            // Operational attributes: sent only when asked for by name.
            Flavor::OpenLdap => vec!["pwdAccountLockedTime", "memberOf", "entryUUID"],
            Flavor::Ds389 => vec!["nsAccountLock", "memberOf", "nsUniqueId"],
        }
    }

    async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        filter: &str,
        attrs: Vec<&str>,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<SearchEntry>, ProviderError> {
        ldap.with_timeout(self.timeout);
        let res = ldap
            .search(base, Scope::Subtree, filter, attrs)
            .await
            .map_err(|e| self.map_err("search", base, e))?;
        records.push(RequestRecord {
            method: "SEARCH".into(),
            url: format!("{}??sub?{filter}", self.at(base)),
            status: res.1.rc as u16,
        });
        let (entries, _) = res.success().map_err(|e| self.map_err("search", base, e))?;
        // AD answers subtree searches of the domain with continuation references: skip them.
        Ok(entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(SearchEntry::construct)
            .collect())
    }

    /// Find the person: under base_dn, then under disabled_ou when that is elsewhere (a moved
    /// person must still be found). `Ok(None)` when nobody matches.
    async fn find(
        &self,
        ldap: &mut Ldap,
        login: &str,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<SearchEntry>, ProviderError> {
        if login.trim().is_empty() {
            return Err(self.err("the login to look up is empty"));
        }
        let filter = self.filter_for(login);
        for base in self.person_bases() {
            let mut found = self
                .search(ldap, base, &filter, self.user_attrs(), records)
                .await?;
            if found.len() > 1 {
                return Err(self.err(format!(
                    "the filter {filter} is ambiguous under {base}: {} entries match; refusing \
                     to guess",
                    found.len()
                )));
            }
            if let Some(e) = found.pop() {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Where people are searched: base_dn, then disabled_ou when that is elsewhere (a moved
    /// person must still be found).
    fn person_bases(&self) -> Vec<&str> {
        let mut bases = vec![self.base_dn.as_str()];
        if let Some(ou) = &self.disabled_ou
            && !dn_key(ou).ends_with(&dn_key(&self.base_dn))
        {
            bases.push(ou);
        }
        bases
    }

    fn not_found(&self, login: &str) -> ProviderError {
        ProviderError::NotFound(format!(
            "system `{}`: no entry with {} {login:?} under {}",
            self.system, self.user_attribute, self.base_dn
        ))
    }

    /// The account an entry is: its objectGUID / entryUUID / nsUniqueId, and its DN.
    fn account_of(&self, user: &SearchEntry) -> Result<Account, ProviderError> {
        let name = self.flavor.id_attribute();
        let id = if self.flavor == Flavor::ActiveDirectory {
            user.bin_attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.first())
                .and_then(|b| guid_string(b))
        } else {
            attr(user, name).first().cloned()
        };
        let id = id.ok_or_else(|| {
            self.err(format!(
                "{} has no readable {name}: cannot identify the account for good (may the bind \
                 account read it?)",
                user.dn
            ))
        })?;
        Ok(Account::new(id, name, user.dn.clone()))
    }

    /// The filter that finds an entry by its id (`None`: not an id this flavor makes).
    fn id_filter(&self, id: &str) -> Option<String> {
        let attr = self.flavor.id_attribute();
        let value = if self.flavor == Flavor::ActiveDirectory {
            guid_bytes(id)?
                .iter()
                .map(|b| format!("\\{b:02x}"))
                .collect()
        } else {
            escape_filter_value(id)
        };
        Some(format!("({attr}={value})"))
    }

    /// The entry this step acted on, read by its recorded id (`Err(account)`: it no longer
    /// exists), or the person found by login (nobody is `NotFound`).
    async fn resolve(
        &self,
        ldap: &mut Ldap,
        call: &StepCall<'_>,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Result<SearchEntry, Account>, ProviderError> {
        let Some(known) = call.account else {
            return match self.find(ldap, call.login, records).await? {
                Some(user) => Ok(Ok(user)),
                None => Err(self.not_found(call.login)),
            };
        };
        let filter = self.id_filter(&known.id).ok_or_else(|| {
            self.err(format!(
                "the recorded account id {:?} is not a {}",
                known.id,
                self.flavor.id_attribute()
            ))
        })?;
        for base in self.person_bases() {
            let mut found = self
                .search(ldap, base, &filter, self.user_attrs(), records)
                .await?;
            if let Some(e) = found.pop() {
                return Ok(Ok(e));
            }
        }
        Ok(Err(known.clone()))
    }

    async fn modify(
        &self,
        ldap: &mut Ldap,
        dn: &str,
        what: &str,
        mods: Vec<Mod<Vec<u8>>>,
        records: &mut Vec<RequestRecord>,
    ) -> Result<ldap3::LdapResult, ProviderError> {
        ldap.with_timeout(self.timeout);
        let res = ldap
            .modify(dn, mods)
            .await
            .map_err(|e| self.map_err("modify", dn, e))?;
        records.push(RequestRecord {
            method: "MODIFY".into(),
            url: format!("{} {what}", self.at(dn)),
            status: res.rc as u16,
        });
        Ok(res)
    }

    /// Replace one attribute with one value, and fail with the server's reason if it refuses.
    async fn replace_attr(
        &self,
        ldap: &mut Ldap,
        dn: &str,
        what: &str,
        attr: &str,
        value: &[u8],
        records: &mut Vec<RequestRecord>,
    ) -> Result<(), ProviderError> {
        let mods = vec![Mod::Replace(
            attr.as_bytes().to_vec(),
            HashSet::from([value.to_vec()]),
        )];
        let res = self.modify(ldap, dn, what, mods, records).await?;
        res.success().map_err(|e| self.map_err("modify", dn, e))?;
        Ok(())
    }

    /// Run one apply or check in a fresh session, retrying transient failures.
    async fn run<T>(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        mode: Mode,
    ) -> Result<T, ProviderError>
    where
        T: From<Done>,
    {
        if !self.flavor.supports(call.action) {
            return Err(self.unsupported(call.action));
        }
        let mut attempt = 1;
        let mut waited = Duration::ZERO;
        let mut carried = Carried::default();
        loop {
            let mut records = Vec::new();
            let once = async {
                let mut ldap = self.session(&mut records).await?;
                let r = match mode {
                    Mode::Check => self.check_once(&mut ldap, call, &mut records).await,
                    Mode::Apply => {
                        self.apply_once(&mut ldap, call, ctx, &mut carried, &mut records)
                            .await
                    }
                    Mode::Look => self.look_once(&mut ldap, call, &mut records).await,
                };
                let _ = ldap.unbind().await;
                r
            };
            // A whole call gets a few timeouts' worth: connect, bind, search, modify.
            let result = match tokio::time::timeout(self.timeout * 4, once).await {
                Ok(r) => r,
                Err(_) => Err(ProviderError::Transient(format!(
                    "system `{}`: {} did not finish within {} s",
                    self.system,
                    call.action,
                    (self.timeout * 4).as_secs()
                ))),
            };
            match result {
                Ok(done) => {
                    return Ok(T::from(Done {
                        inner: done,
                        requests: records,
                    }));
                }
                Err(ProviderError::Transient(reason)) => {
                    let wait = self.retry.backoff(attempt);
                    if let Err(why) = self.retry.allows(attempt, waited, wait) {
                        return Err(ProviderError::Transient(format!("{reason} ({why})")));
                    }
                    ctx.retrying(RetryNote {
                        attempt,
                        reason,
                        wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    });
                    tokio::time::sleep(wait).await;
                    waited += wait;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn unsupported(&self, action: &str) -> ProviderError {
        let offered: Vec<&str> = KIND
            .actions
            .iter()
            .map(|a| a.name)
            .filter(|a| self.flavor.supports(a))
            .collect();
        self.err(format!(
            "the ldap kind with flavor {} has no action `{action}` (it offers: {})",
            self.flavor.as_str(),
            offered.join(", ")
        ))
    }

    async fn apply_once(
        &self,
        ldap: &mut Ldap,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        carried: &mut Carried,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Outcome, ProviderError> {
        let user = match self.resolve(ldap, call, records).await? {
            Ok(user) => user,
            Err(gone) => {
                return Ok(Outcome::Applied {
                    changed: false,
                    summary: format!("{} {} no longer exists (deleted)", gone.id_kind, gone.id),
                    account: Some(gone),
                });
            }
        };
        let account = self.account_of(&user)?;
        ctx.identified(&account);
        let outcome = match call.action {
            "disable_account" => self.disable(ldap, &user, records).await,
            "remove_from_groups" => {
                self.remove_groups(ldap, &user, call, carried, records)
                    .await
            }
            "reset_password" => self.reset_password(ldap, &user, records).await,
            "move_to_ou" => self.move_to_ou(ldap, &user, records).await,
            "set_description" => {
                let text = description_param(call).map_err(|m| self.err(m))?;
                self.set_description(ldap, &user, text, records).await
            }
            "lock_account" => self.lock(ldap, &user, records).await,
            other => Err(self.unsupported(other)),
        }?;
        Ok(outcome.on(account))
    }

    async fn look_once(
        &self,
        ldap: &mut Ldap,
        call: &StepCall<'_>,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Outcome, ProviderError> {
        let user = match self.resolve(ldap, call, records).await? {
            Ok(user) => user,
            Err(gone) => return Err(self.err(format!("{gone} no longer exists"))),
        };
        let account = self.account_of(&user)?;
        Ok(Outcome::Check(CheckOutcome {
            revoked: false,
            observed: format!("found {account}"),
            account: Some(account),
        }))
    }

    async fn check_once(
        &self,
        ldap: &mut Ldap,
        call: &StepCall<'_>,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Outcome, ProviderError> {
        let user = match self.resolve(ldap, call, records).await? {
            Ok(user) => user,
            Err(gone) => {
                return Ok(Outcome::Check(CheckOutcome {
                    revoked: true,
                    observed: format!("{} {} no longer exists (deleted)", gone.id_kind, gone.id),
                    account: Some(gone),
                }));
            }
        };
        let account = self.account_of(&user)?;
        let check = |revoked: bool, observed: String| {
            Ok(Outcome::Check(CheckOutcome {
                revoked,
                observed,
                account: Some(account.clone()),
            }))
        };
        match call.action {
            "disable_account" => {
                let uac = self.uac(&user)?;
                check(
                    uac_is_disabled(uac),
                    format!(
                        "userAccountControl={uac} (0x{uac:x}, ACCOUNTDISABLE {})",
                        if uac_is_disabled(uac) { "set" } else { "clear" }
                    ),
                )
            }
            "remove_from_groups" => {
                let wanted = groups_param(call).map_err(|m| self.err(m))?;
                let current = self.groups_of(ldap, &user, records).await?;
                let left: Vec<&String> = current
                    .iter()
                    .filter(|g| wanted.as_ref().is_none_or(|w| group_listed(w, g)))
                    .collect();
                if left.is_empty() {
                    check(
                        true,
                        match &wanted {
                            None => "member of no group".into(),
                            Some(w) => format!("member of none of {}", w.join("; ")),
                        },
                    )
                } else {
                    check(
                        false,
                        format!(
                            "still member of {}",
                            left.iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join("; ")
                        ),
                    )
                }
            }
            "reset_password" => {
                let now = pwd_last_set(&user);
                let recorded = self.read_reset_marker(&user)?;
                match (recorded, now) {
                    (None, _) => Err(self.err(format!(
                        "no record of a password reset of {} by offboard on this machine (in {}); \
                         pwdLastSet is {}: cannot tell whether it happened after the departure",
                        user.dn,
                        self.marker_dir().display(),
                        now.map_or("not readable".into(), filetime_display)
                    ))),
                    (Some(_), None) => check(false, "pwdLastSet not readable".into()),
                    (Some(rec), Some(now)) => check(
                        now >= rec && now > 0,
                        format!(
                            "pwdLastSet={} (reset by offboard at {})",
                            filetime_display(now),
                            filetime_display(rec)
                        ),
                    ),
                }
            }
            "move_to_ou" => {
                let ou = self.disabled_ou()?;
                let (_, parent) = split_dn(&user.dn);
                check(dn_eq(parent, ou), format!("dn={}", user.dn))
            }
            "set_description" => {
                let text = description_param(call).map_err(|m| self.err(m))?;
                let now = attr(&user, "description");
                check(
                    now.len() == 1 && now[0] == text,
                    match now {
                        [] => "no description".into(),
                        vals => format!("description={:?}", vals.join("; ")),
                    },
                )
            }
            "lock_account" => {
                let (locked, observed) = self.lock_state(&user);
                check(locked, observed)
            }
            other => Err(self.unsupported(other)),
        }
    }

    fn uac(&self, user: &SearchEntry) -> Result<u32, ProviderError> {
        attr(user, "userAccountControl")
            .first()
            .and_then(|s| parse_uac(s))
            .ok_or_else(|| {
                self.err(format!(
                    "{} has no readable userAccountControl: is flavor active_directory right, \
                     and may {} read it?",
                    user.dn, self.bind_dn
                ))
            })
    }

    async fn disable(
        &self,
        ldap: &mut Ldap,
        user: &SearchEntry,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Outcome, ProviderError> {
        let uac = self.uac(user)?;
        if uac_is_disabled(uac) {
            return Ok(Outcome::applied(
                false,
                format!("{} already disabled (userAccountControl={uac})", user.dn),
            ));
        }
        let new = uac_disabled(uac);
        let value = new.to_string();
        self.replace_attr(
            ldap,
            &user.dn,
            "userAccountControl |= 0x2",
            "userAccountControl",
            value.as_bytes(),
            records,
        )
        .await?;
        Ok(Outcome::applied(
            true,
            format!("disabled {} (userAccountControl: {uac} → {new})", user.dn),
        ))
    }

    /// The DNs of the groups the person is in.
    async fn groups_of(
        &self,
        ldap: &mut Ldap,
        user: &SearchEntry,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<String>, ProviderError> {
        if self.flavor == Flavor::ActiveDirectory {
            return Ok(attr(user, "memberOf").to_vec());
        }
        let base = self.groups_base.as_deref().unwrap_or(&self.base_dn);
        let dn = escape_filter_value(&user.dn);
        let filter = format!(
            "(|(&(objectClass=groupOfNames)(member={dn}))(&(objectClass=groupOfUniqueNames)(uniqueMember={dn})))"
        );
        let found = self
            .search(ldap, base, &filter, vec!["objectClass"], records)
            .await?;
        Ok(found.into_iter().map(|e| e.dn).collect())
    }

    async fn remove_groups(
        &self,
        ldap: &mut Ldap,
        user: &SearchEntry,
        call: &StepCall<'_>,
        carried: &mut Carried,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Outcome, ProviderError> {
        let wanted = groups_param(call).map_err(|m| self.err(m))?;
        let current = self.groups_of(ldap, user, records).await?;
        let targets: Vec<String> = current
            .into_iter()
            .filter(|g| wanted.as_ref().is_none_or(|w| group_listed(w, g)))
            .collect();
        // Groups left in an attempt that then failed count too: the summary names them all.
        let removed = &mut carried.removed_groups;
        if targets.is_empty() && removed.is_empty() {
            return Ok(Outcome::applied(
                false,
                match &wanted {
                    None => format!("{} is in no group", user.dn),
                    Some(w) => format!("{} is in none of {}", user.dn, w.join("; ")),
                },
            ));
        }
        for group in &targets {
            // groupOfUniqueNames holds uniqueMember; the others member.
            let member_attr = if self.flavor != Flavor::ActiveDirectory
                && self.is_unique_names(ldap, group, user, records).await?
            {
                "uniqueMember"
            } else {
                "member"
            };
            let res = self
                .modify(
                    ldap,
                    group,
                    &format!("delete {member_attr}: <person's dn>"),
                    vec![Mod::Delete(
                        member_attr.as_bytes().to_vec(),
                        HashSet::from([user.dn.clone().into_bytes()]),
                    )],
                    records,
                )
                .await?;
            match res.rc {
                0 => removed.push(group.clone()),
                // Already gone (a concurrent change, or AD's "unwilling" for a non-member).
                16 => {}
                65 => {
                    return Err(self.err(format!(
                        "cannot remove {} from {group}: it is the group's last member and the \
                         schema needs one (objectClassViolation); add a placeholder member{}",
                        user.dn,
                        if removed.is_empty() {
                            String::new()
                        } else {
                            format!(" (already removed from {})", removed.join("; "))
                        }
                    )));
                }
                _ => {
                    let e = self.map_err("modify", group, LdapError::from(res));
                    return Err(match e {
                        ProviderError::Permanent(m) if !removed.is_empty() => {
                            ProviderError::Permanent(format!(
                                "{m} (already removed from {})",
                                removed.join("; ")
                            ))
                        }
                        e => e,
                    });
                }
            }
        }
        Ok(Outcome::applied(
            !removed.is_empty(),
            if removed.is_empty() {
                format!("{} was already out of its groups", user.dn)
            } else {
                format!(
                    "removed {} from {} group{}: {}",
                    user.dn,
                    removed.len(),
                    if removed.len() == 1 { "" } else { "s" },
                    removed.join("; ")
                )
            },
        ))
    }

    async fn is_unique_names(
        &self,
        ldap: &mut Ldap,
        group: &str,
        user: &SearchEntry,
        records: &mut Vec<RequestRecord>,
    ) -> Result<bool, ProviderError> {
        ldap.with_timeout(self.timeout);
        let filter = format!(
            "(&(objectClass=groupOfUniqueNames)(uniqueMember={}))",
            escape_filter_value(&user.dn)
        );
        let res = ldap
            .search(group, Scope::Base, &filter, vec!["1.1"])
            .await
            .map_err(|e| self.map_err("search", group, e))?;
        records.push(RequestRecord {
            method: "SEARCH".into(),
            url: format!("{}??base?{filter}", self.at(group)),
            status: res.1.rc as u16,
        });
        let (entries, _) = res
            .success()
            .map_err(|e| self.map_err("search", group, e))?;
        Ok(entries.iter().any(|e| !e.is_ref()))
    }

    fn disabled_ou(&self) -> Result<&str, ProviderError> {
        self.disabled_ou.as_deref().ok_or_else(|| {
            self.err(
                "move_to_ou needs disabled_ou, e.g. disabled_ou = \"OU=Disabled Users,DC=corp,DC=example\"",
            )
        })
    }

    async fn move_to_ou(
        &self,
        ldap: &mut Ldap,
        user: &SearchEntry,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Outcome, ProviderError> {
        let ou = self.disabled_ou()?;
        let (rdn, parent) = split_dn(&user.dn);
        if dn_eq(parent, ou) {
            return Ok(Outcome::applied(
                false,
                format!("{} is already in {ou}", user.dn),
            ));
        }
        ldap.with_timeout(self.timeout);
        let res = ldap
            .modifydn(&user.dn, rdn, true, Some(ou))
            .await
            .map_err(|e| self.map_err("move", &user.dn, e))?;
        records.push(RequestRecord {
            method: "MODDN".into(),
            url: format!("{} newSuperior={ou}", self.at(&user.dn)),
            status: res.rc as u16,
        });
        res.success()
            .map_err(|e| self.map_err("move", &user.dn, e))?;
        Ok(Outcome::applied(
            true,
            format!("moved {} to {rdn},{ou}", user.dn),
        ))
    }

    async fn set_description(
        &self,
        ldap: &mut Ldap,
        user: &SearchEntry,
        text: &str,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Outcome, ProviderError> {
        let now = attr(user, "description");
        if now.len() == 1 && now[0] == text {
            return Ok(Outcome::applied(
                false,
                format!("{} already has description {text:?}", user.dn),
            ));
        }
        self.replace_attr(
            ldap,
            &user.dn,
            "description := <params.text>",
            "description",
            text.as_bytes(),
            records,
        )
        .await?;
        Ok(Outcome::applied(
            true,
            format!(
                "set description of {} to {text:?} (was {})",
                user.dn,
                if now.is_empty() {
                    "empty".to_string()
                } else {
                    format!("{:?}", now.join("; "))
                }
            ),
        ))
    }

    fn lock_state(&self, user: &SearchEntry) -> (bool, String) {
        match self.flavor {
            Flavor::Ds389 => {
                let v = attr(user, "nsAccountLock");
                let locked = v.iter().any(|s| s.eq_ignore_ascii_case("true"));
                let shown = v.first().map_or("absent", String::as_str);
                (locked, format!("nsAccountLock={shown}"))
            }
            _ => {
                let v = attr(user, "pwdAccountLockedTime");
                match v.first() {
                    None => (false, "pwdAccountLockedTime absent (not locked)".into()),
                    Some(t) if t == PERMANENT_LOCK => (
                        true,
                        format!("pwdAccountLockedTime={t} (locked until an administrator unlocks)"),
                    ),
                    Some(t) => (
                        false,
                        format!(
                            "pwdAccountLockedTime={t} (a lockout that expires, not a permanent lock)"
                        ),
                    ),
                }
            }
        }
    }

    async fn lock(
        &self,
        ldap: &mut Ldap,
        user: &SearchEntry,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Outcome, ProviderError> {
        let (locked, observed) = self.lock_state(user);
        if locked {
            return Ok(Outcome::applied(
                false,
                format!("{} already locked ({observed})", user.dn),
            ));
        }
        let (name, value) = match self.flavor {
            Flavor::Ds389 => ("nsAccountLock", "true"),
            _ => ("pwdAccountLockedTime", PERMANENT_LOCK),
        };
        self.replace_attr(
            ldap,
            &user.dn,
            &format!("{name} := {value}"),
            name,
            value.as_bytes(),
            records,
        )
        .await?;
        Ok(Outcome::applied(
            true,
            format!("locked {} ({name}={value}; was: {observed})", user.dn),
        ))
    }

    fn marker_dir(&self) -> PathBuf {
        self.state_dir.join("ldap-password-resets")
    }

    /// Where the pwdLastSet seen after a reset is recorded: keyed by system and objectGUID
    /// (stable across moves), never holding a secret.
    fn marker_path(&self, user: &SearchEntry) -> Result<PathBuf, ProviderError> {
        let guid = user
            .bin_attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("objectGUID"))
            .and_then(|(_, v)| v.first())
            .ok_or_else(|| self.err(format!("{} has no readable objectGUID", user.dn)))?;
        let mut h = Sha256::new();
        h.update(self.system.as_bytes());
        h.update([0]);
        h.update(guid);
        Ok(self.marker_dir().join(hex::encode(h.finalize())))
    }

    fn read_reset_marker(&self, user: &SearchEntry) -> Result<Option<i64>, ProviderError> {
        let path = self.marker_path(user)?;
        match crate::state::read_nofollow(&path) {
            Ok(b) => Ok(String::from_utf8_lossy(&b).trim().parse().ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(format!(
                "reading {}: {:#}",
                path.display(),
                crate::state::nofollow_error(e, &path)
            ))),
        }
    }

    fn write_reset_marker(&self, user: &SearchEntry, value: i64) -> Result<(), ProviderError> {
        let path = self.marker_path(user)?;
        crate::state::create_private_dir(&self.marker_dir())
            .and_then(|()| crate::state::write_atomic(&path, format!("{value}\n").as_bytes()))
            .map_err(|e| self.err(format!("recording the reset in {}: {e:#}", path.display())))
    }

    async fn reset_password(
        &self,
        ldap: &mut Ldap,
        user: &SearchEntry,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Outcome, ProviderError> {
        if self.transport == Transport::Plain {
            return Err(self.err(
                "reset_password sets unicodePwd, which AD accepts only over LDAPS or StartTLS: \
                 use an ldaps:// base_url or start_tls = true",
            ));
        }
        let before = pwd_last_set(user);
        if let (Some(rec), Some(now)) = (self.read_reset_marker(user)?, before)
            && now >= rec
            && now > 0
        {
            return Ok(Outcome::applied(
                false,
                format!(
                    "password of {} already reset by offboard (pwdLastSet={})",
                    user.dn,
                    filetime_display(now)
                ),
            ));
        }
        let password = random_password();
        let value = unicode_pwd(password.expose_secret());
        drop(password);
        let res = self
            .modify(
                ldap,
                &user.dn,
                "unicodePwd := <random, not kept>",
                vec![Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([value]))],
                records,
            )
            .await?;
        res.success()
            .map_err(|e| self.map_err("set the password of", &user.dn, e))?;
        // Read pwdLastSet back: it is what the check compares with.
        let again = self
            .search(
                ldap,
                &user.dn,
                "(objectClass=*)",
                vec!["pwdLastSet", "objectGUID"],
                records,
            )
            .await?;
        let after = again.first().and_then(pwd_last_set).ok_or_else(|| {
            self.err(format!(
                "{}: pwdLastSet not readable after the reset",
                user.dn
            ))
        })?;
        self.write_reset_marker(user, after)?;
        Ok(Outcome::applied(
            true,
            format!(
                "reset the password of {} to a random value nobody knows (pwdLastSet: {} → {})",
                user.dn,
                before.map_or("unreadable".into(), filetime_display),
                filetime_display(after)
            ),
        ))
    }

    /// Request lines for the plan: verb, server URL and DN placeholder, the change. No secret.
    fn lines(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        let filter = self.filter_for(call.login);
        let line = |method: &str, url: String| RequestLine {
            method: method.into(),
            url,
        };
        let who = format!("{}/<dn of {filter}>", self.origin);
        let mut out = vec![
            line("BIND", self.at(&self.bind_dn)),
            line(
                "SEARCH",
                format!("{}??sub?{filter}", self.at(&self.base_dn)),
            ),
        ];
        match call.action {
            "disable_account" => {
                out.push(line("MODIFY", format!("{who} userAccountControl |= 0x2")))
            }
            "remove_from_groups" => {
                let which = match groups_param(call) {
                    Ok(Some(g)) => format!("<each of {} the person is in>", g.join("; ")),
                    _ => "<each group the person is in>".into(),
                };
                if self.flavor != Flavor::ActiveDirectory {
                    let base = self.groups_base.as_deref().unwrap_or(&self.base_dn);
                    out.push(line(
                        "SEARCH",
                        format!("{}??sub?(member=<dn>)", self.at(base)),
                    ));
                }
                out.push(line(
                    "MODIFY",
                    format!("{}/{which} delete member: <dn of {filter}>", self.origin),
                ));
            }
            "reset_password" => {
                out.push(line(
                    "MODIFY",
                    format!("{who} unicodePwd := <random, not kept>"),
                ));
                out.push(line("SEARCH", format!("{who}??base?pwdLastSet")));
            }
            "move_to_ou" => out.push(line(
                "MODDN",
                format!(
                    "{who} newSuperior={}",
                    self.disabled_ou
                        .as_deref()
                        .unwrap_or("<disabled_ou not set>")
                ),
            )),
            "set_description" => {
                let text = description_param(call).unwrap_or("<params.text missing>");
                out.push(line("MODIFY", format!("{who} description := {text:?}")));
            }
            "lock_account" => out.push(line(
                "MODIFY",
                match self.flavor {
                    Flavor::Ds389 => format!("{who} nsAccountLock := true"),
                    _ => format!("{who} pwdAccountLockedTime := {PERMANENT_LOCK}"),
                },
            )),
            _ => return Vec::new(),
        }
        out
    }
}

/// What a single session produced, before the request records are attached.
enum Outcome {
    Applied {
        changed: bool,
        summary: String,
        account: Option<Account>,
    },
    Check(CheckOutcome),
}

impl Outcome {
    fn applied(changed: bool, summary: String) -> Outcome {
        Outcome::Applied {
            changed,
            summary,
            account: None,
        }
    }

    /// The same outcome, about `account`.
    fn on(self, account: Account) -> Outcome {
        match self {
            Outcome::Applied {
                changed, summary, ..
            } => Outcome::Applied {
                changed,
                summary,
                account: Some(account),
            },
            Outcome::Check(c) => Outcome::Check(CheckOutcome {
                account: Some(account),
                ..c
            }),
        }
    }
}

/// An outcome with the requests made for it.
struct Done {
    inner: Outcome,
    requests: Vec<RequestRecord>,
}

impl From<Done> for ApplyOutcome {
    fn from(d: Done) -> ApplyOutcome {
        match d.inner {
            Outcome::Applied {
                changed,
                summary,
                account,
            } => ApplyOutcome {
                changed,
                summary,
                requests: d.requests,
                account,
            },
            Outcome::Check(c) => ApplyOutcome {
                changed: false,
                summary: c.observed,
                requests: d.requests,
                account: c.account,
            },
        }
    }
}

impl From<Done> for CheckOutcome {
    fn from(d: Done) -> CheckOutcome {
        match d.inner {
            Outcome::Check(c) => c,
            Outcome::Applied {
                changed,
                summary,
                account,
            } => CheckOutcome {
                revoked: !changed,
                observed: summary,
                account,
            },
        }
    }
}

/// AD's objectGUID as the usual text (the first three fields are little-endian).
pub fn guid_string(b: &[u8]) -> Option<String> {
    let b: &[u8; 16] = b.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        hex::encode(&b[10..])
    ))
}

/// The bytes of an objectGUID written as [`guid_string`] writes it.
pub fn guid_bytes(s: &str) -> Option<[u8; 16]> {
    let hex_only: String = s.chars().filter(|c| *c != '-').collect();
    if hex_only.len() != 32 || s.len() != 36 {
        return None;
    }
    let raw = hex::decode(hex_only).ok()?;
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&[raw[3], raw[2], raw[1], raw[0]]);
    b[4..6].copy_from_slice(&[raw[5], raw[4]]);
    b[6..8].copy_from_slice(&[raw[7], raw[6]]);
    b[8..].copy_from_slice(&raw[8..]);
    Some(b)
}

/// An attribute's values, the name matched case-insensitively.
fn attr<'a>(e: &'a SearchEntry, name: &str) -> &'a [String] {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or(&[], |(_, v)| v.as_slice())
}

fn pwd_last_set(e: &SearchEntry) -> Option<i64> {
    attr(e, "pwdLastSet").first()?.trim().parse().ok()
}

fn groups_param(call: &StepCall<'_>) -> Result<Option<Vec<String>>, String> {
    match call.params.get("groups") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Array(a)) => {
            let mut out = Vec::new();
            for v in a {
                match v.as_str().map(str::trim) {
                    Some(s) if !s.is_empty() => out.push(s.to_string()),
                    _ => return Err("params.groups must be a list of group DNs or CNs".into()),
                }
            }
            if out.is_empty() {
                return Err("params.groups is empty: leave it out to remove every group".into());
            }
            Ok(Some(out))
        }
        Some(_) => Err("params.groups must be a list of group DNs or CNs".into()),
    }
}

fn description_param<'a>(call: &'a StepCall<'_>) -> Result<&'a str, String> {
    match call.params.get("text") {
        Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s),
        _ => {
            Err("set_description needs params.text, e.g. params = { text = \"offboarded\" }".into())
        }
    }
}

/// Whether a group (a DN from the server) is one the runbook listed, by DN or by CN.
fn group_listed(listed: &[String], group_dn: &str) -> bool {
    let cn = first_rdn_value(group_dn);
    listed.iter().any(|l| {
        if l.contains('=') {
            dn_eq(l, group_dn)
        } else {
            l.eq_ignore_ascii_case(&cn)
        }
    })
}

fn rc_name(rc: u32) -> &'static str {
    match rc {
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        10 => "referral",
        11 => "adminLimitExceeded",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        34 => "invalidDNSyntax",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        80 => "other",
        _ => "see RFC 4511 §4.1.9",
    }
}

#[async_trait]
impl Provider for LdapProvider {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        if !self.flavor.supports(call.action) {
            return Vec::new();
        }
        self.lines(call)
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        self.run(call, ctx, Mode::Apply).await
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        self.run(call, ctx, Mode::Check).await
    }

    /// Bind and find the person: the check of `reset_password` needs a record of a reset
    /// that has not happened yet, so preflight only looks.
    async fn preflight(&self, call: &StepCall<'_>, ctx: &CallCtx) -> Result<String, ProviderError> {
        let c: CheckOutcome = self.run(call, ctx, Mode::Look).await?;
        Ok(c.observed)
    }
}

/// What one session does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Apply,
    Check,
    /// Find the person and change nothing (preflight).
    Look,
}

/// What one call has already changed in attempts that then failed with a transient error, so
/// the retry's summary still reports it.
#[derive(Default)]
struct Carried {
    removed_groups: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn cfg(url: &str, flavor: &str) -> SystemConfig {
        let mut settings = BTreeMap::new();
        for (k, v) in [
            ("flavor", flavor),
            ("bind_dn", "CN=svc-offboard,CN=Users,DC=corp,DC=test"),
            ("base_dn", "DC=corp,DC=test"),
            ("disabled_ou", "OU=Disabled Users,DC=corp,DC=test"),
        ] {
            settings.insert(k.to_string(), toml::Value::String(v.into()));
        }
        SystemConfig {
            name: "ad".into(),
            kind: "ldap".into(),
            base_url: Some(url.into()),
            token: None,
            settings,
            secrets: BTreeMap::new(),
            timeout: Duration::from_secs(5),
            max_concurrency: 4,
            rate_limit: None,
            state_dir: std::env::temp_dir(),
        }
    }

    fn call<'a>(
        action: &'a str,
        login: &'a str,
        params: &'a serde_json::Map<String, serde_json::Value>,
    ) -> StepCall<'a> {
        StepCall {
            step_id: "s",
            action,
            login,
            params,
            account: None,
        }
    }

    #[test]
    fn filter_values_are_escaped() {
        assert_eq!(escape_filter_value("alice@corp.test"), "alice@corp.test");
        assert_eq!(escape_filter_value("*"), "\\2a");
        assert_eq!(
            escape_filter_value("alice)(|(uid=*"),
            "alice\\29\\28|\\28uid=\\2a"
        );
        assert_eq!(escape_filter_value("a\\b"), "a\\5cb");
        assert_eq!(escape_filter_value("nul\0byte"), "nul\\00byte");
        assert_eq!(escape_filter_value("zoë例"), "zoë例");
        // Escaping is not applied twice by accident.
        assert_eq!(escape_filter_value("\\2a"), "\\5c2a");
    }

    #[test]
    fn hostile_logins_stay_one_assertion() {
        let p = LdapProvider::new(&cfg("ldaps://dc1", "active_directory")).unwrap();
        for login in ["*", "*)(objectClass=*", "x)(|(cn=*))(", "\\", "\0", "a(b)c"] {
            let f = p.filter_for(login);
            // The value part adds no parenthesis: the structure is the fixed one.
            let opens = f.matches('(').count();
            let closes = f.matches(')').count();
            assert_eq!((opens, closes), (4, 4), "{login:?} → {f}");
            assert!(!f.contains("=*)"), "{login:?} → {f}");
            assert!(!f.contains('\0'), "{login:?}");
            assert!(ldap3::parse_filter(&f).is_ok(), "{f}");
        }
        assert_eq!(
            p.filter_for("a*"),
            "(&(objectCategory=person)(objectClass=user)(userPrincipalName=a\\2a))"
        );
    }

    #[test]
    fn uac_bit_math() {
        assert_eq!(uac_disabled(512), 514);
        assert_eq!(uac_disabled(514), 514);
        // Other bits kept: NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD | PASSWD_NOTREQD.
        assert_eq!(uac_disabled(0x10200 | 0x20), 0x10222);
        assert!(uac_is_disabled(546));
        assert!(!uac_is_disabled(512));
        assert!(!uac_is_disabled(0x10220));
        assert_eq!(parse_uac("66048"), Some(66048));
        assert_eq!(parse_uac(" 512 "), Some(512));
        assert_eq!(parse_uac("-2147483136"), Some(0x8000_0200));
        assert_eq!(parse_uac("x"), None);
        assert_eq!(parse_uac("99999999999"), None);
    }

    #[test]
    fn dns_split_and_compare() {
        assert_eq!(
            split_dn("CN=Doe\\, Jane,OU=People,DC=corp,DC=test"),
            ("CN=Doe\\, Jane", "OU=People,DC=corp,DC=test")
        );
        assert_eq!(split_dn("DC=test"), ("DC=test", ""));
        assert!(dn_eq(
            "OU=Disabled Users, DC=corp, DC=test",
            "ou=disabled users,dc=corp,dc=test"
        ));
        assert!(!dn_eq(
            "OU=Disabled,DC=corp,DC=test",
            "OU=Disabled Users,DC=corp,DC=test"
        ));
        assert_eq!(first_rdn_value("CN=VPN\\, EU,OU=G,DC=x"), "VPN, EU");
        let listed = vec![
            "vpn users".to_string(),
            "CN=Admins,DC=corp,DC=test".to_string(),
        ];
        assert!(group_listed(
            &listed,
            "CN=VPN Users,OU=Groups,DC=corp,DC=test"
        ));
        assert!(group_listed(&listed, "cn=admins, dc=corp, dc=test"));
        assert!(!group_listed(&listed, "CN=Admins,OU=Other,DC=corp,DC=test"));
    }

    #[test]
    fn passwords_are_random_and_complex() {
        let a = random_password();
        let b = random_password();
        let a = a.expose_secret();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b.expose_secret());
        assert!(a.chars().any(|c| c.is_ascii_uppercase()));
        assert!(a.chars().any(|c| c.is_ascii_lowercase()));
        assert!(a.chars().any(|c| c.is_ascii_digit()));
        assert!(a.chars().any(|c| !c.is_ascii_alphanumeric()));
        assert_eq!(unicode_pwd("ab"), vec![b'"', 0, b'a', 0, b'b', 0, b'"', 0]);
    }

    #[test]
    fn transports_and_settings() {
        assert!(LdapProvider::new(&cfg("ldaps://dc1", "active_directory")).is_ok());
        let err = LdapProvider::new(&cfg("ldap://dc1", "active_directory"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("plain LDAP") && err.contains("allow_plain"),
            "{err}"
        );
        let mut c = cfg("ldap://dc1", "openldap");
        c.settings
            .insert("start_tls".into(), toml::Value::Boolean(true));
        assert_eq!(
            LdapProvider::new(&c).unwrap().transport,
            Transport::StartTls
        );
        let mut c = cfg("ldap://dc1", "openldap");
        c.settings
            .insert("allow_plain".into(), toml::Value::Boolean(true));
        assert_eq!(LdapProvider::new(&c).unwrap().transport, Transport::Plain);
        let mut c = cfg("ldaps://dc1", "openldap");
        c.settings
            .insert("start_tls".into(), toml::Value::Boolean(true));
        assert!(LdapProvider::new(&c).is_err());
        assert!(LdapProvider::new(&cfg("https://dc1", "openldap")).is_err());
        assert!(LdapProvider::new(&cfg("ldaps://dc1/DC=x", "openldap")).is_err());
        assert!(LdapProvider::new(&cfg("ldaps://dc1", "novell")).is_err());
        let mut c = cfg("ldaps://dc1", "openldap");
        c.settings.insert(
            "user_attribute".into(),
            toml::Value::String("uid=*)(x".into()),
        );
        assert!(LdapProvider::new(&c).is_err());
        let mut c = cfg("ldaps://dc1", "openldap");
        c.settings.remove("base_dn");
        assert!(LdapProvider::new(&c).is_err());
    }

    #[test]
    fn describe_shows_verbs_and_no_secret() {
        let mut c = cfg("ldaps://127.0.0.1", "active_directory");
        c.secrets.insert(
            "bind_password".into(),
            SecretString::from("hunter2-secret".to_string()),
        );
        let p = (KIND.connect)(&c).unwrap();
        let params = serde_json::Map::new();
        let lines: Vec<String> = p
            .describe(&call("disable_account", "alice@corp.test", &params))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines.last().unwrap(),
            "MODIFY ldaps://127.0.0.1:636/<dn of (&(objectCategory=person)(objectClass=user)\
             (userPrincipalName=alice@corp.test))> userAccountControl |= 0x2"
        );
        for action in [
            "disable_account",
            "remove_from_groups",
            "reset_password",
            "move_to_ou",
            "set_description",
        ] {
            let lines = p.describe(&call(action, "alice@corp.test", &params));
            assert!(lines.len() >= 3, "{action}");
            assert!(
                lines.iter().all(|l| !l.to_string().contains("hunter2")),
                "{action}"
            );
        }
        assert!(p.describe(&call("lock_account", "a", &params)).is_empty());
    }

    #[tokio::test]
    async fn wrong_flavor_action_and_missing_password_are_clear() {
        let p = LdapProvider::new(&cfg("ldaps://127.0.0.1:9", "openldap")).unwrap();
        let params = serde_json::Map::new();
        let err = p
            .apply(&call("disable_account", "a", &params), &CallCtx::silent())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Permanent(m) if m.contains("lock_account")),
            "{err:?}"
        );
        let err = p
            .apply(&call("lock_account", "a", &params), &CallCtx::silent())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Permanent(m) if m.contains("no bind_password")),
            "{err:?}"
        );
    }
}
