//! `lock_account` on OpenLDAP and 389ds: ppolicy's permanent lock (`pwdAccountLockedTime:
//! 000001010000Z`) or 389ds's `nsAccountLock: true`, and reading which of them an entry is in.

use ldap3::{Ldap, SearchEntry};

use super::LdapProvider;
use super::config::Flavor;
use super::identify::attr;
use super::run::Outcome;
use crate::providers::{ProviderError, RequestRecord};

/// ppolicy's "locked until an administrator unlocks it" value.
pub const PERMANENT_LOCK: &str = "000001010000Z";

impl LdapProvider {
    pub(super) fn lock_state(&self, user: &SearchEntry) -> (bool, String) {
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

    pub(super) async fn lock(
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
}
