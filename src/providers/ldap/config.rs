//! Reading an ldap system's settings: the directory's flavor (which attributes mean what, which
//! actions it offers), the transport that `base_url`, `start_tls` and `allow_plain` ask for, and
//! [`LdapProvider::new`], which checks them all without I/O.

use std::path::PathBuf;

use url::Url;

use super::{LdapProvider, RetryPolicy};
use crate::providers::SystemConfig;

/// The directory's flavor: which attributes mean what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    ActiveDirectory,
    OpenLdap,
    Ds389,
}

impl Flavor {
    pub(super) fn parse(s: &str) -> Option<Flavor> {
        match s {
            "active_directory" => Some(Flavor::ActiveDirectory),
            "openldap" => Some(Flavor::OpenLdap),
            "389ds" => Some(Flavor::Ds389),
            _ => None,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Flavor::ActiveDirectory => "active_directory",
            Flavor::OpenLdap => "openldap",
            Flavor::Ds389 => "389ds",
        }
    }

    /// The attribute that identifies an entry for good (it survives renames and moves).
    pub(super) fn id_attribute(self) -> &'static str {
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
    pub(super) fn supports(self, action: &str) -> bool {
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
pub(super) enum Transport {
    Ldaps,
    StartTls,
    Plain,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ldap::tests::cfg;

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
}
