//! The wire: connecting and binding (LDAPS, StartTLS or plain; the CA file), the LDAP operations
//! the actions share (search, modify, replace one attribute), each recorded as a request, and
//! ldap3's errors turned into readable [`ProviderError`]s that say what to fix.

use std::collections::HashSet;
use std::sync::Arc;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, SearchEntry};
use secrecy::ExposeSecret;

use super::LdapProvider;
use super::config::Transport;
use crate::providers::{ProviderError, RequestRecord};

impl LdapProvider {
    pub(super) fn err(&self, msg: impl std::fmt::Display) -> ProviderError {
        ProviderError::Permanent(format!("system `{}`: {msg}", self.system))
    }

    pub(super) fn at(&self, dn: &str) -> String {
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
    pub(super) async fn session(
        &self,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Ldap, ProviderError> {
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
    pub(super) fn map_err(&self, op: &str, dn: &str, e: LdapError) -> ProviderError {
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

    pub(super) async fn search(
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

    pub(super) async fn modify(
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
    pub(super) async fn replace_attr(
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
