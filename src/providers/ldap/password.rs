//! Active Directory's `reset_password`: a random unicodePwd nobody sees, set only over LDAPS or
//! StartTLS, and the marker under the state dir (keyed by system and objectGUID, holding no
//! secret) that records pwdLastSet right after the reset, which the check compares with.

use std::collections::HashSet;
use std::path::PathBuf;

use ldap3::{Ldap, Mod, SearchEntry};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::LdapProvider;
use super::config::Transport;
use super::identify::attr;
use super::run::Outcome;
use crate::providers::{ProviderError, RequestRecord};

/// AD's pwdLastSet (100 ns ticks since 1601) as a readable UTC time.
pub(super) fn filetime_display(ticks: i64) -> String {
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

impl LdapProvider {
    pub(super) fn marker_dir(&self) -> PathBuf {
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

    pub(super) fn read_reset_marker(
        &self,
        user: &SearchEntry,
    ) -> Result<Option<i64>, ProviderError> {
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

    pub(super) async fn reset_password(
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
}

pub(super) fn pwd_last_set(e: &SearchEntry) -> Option<i64> {
    attr(e, "pwdLastSet").first()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
