//! Finding the person and naming the account: the search filter (the login escaped per RFC
//! 4515), where people are searched, and the id that identifies an entry for good across renames
//! and moves (objectGUID on AD, entryUUID on OpenLDAP, nsUniqueId on 389ds), by which a recorded
//! account is read again.

use ldap3::{Ldap, SearchEntry};

use super::LdapProvider;
use super::config::Flavor;
use super::dn::dn_key;
use crate::providers::{Account, ProviderError, RequestRecord, StepCall};

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

impl LdapProvider {
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
    pub(super) fn account_of(&self, user: &SearchEntry) -> Result<Account, ProviderError> {
        let name = self.flavor.id_attribute();
        let id = self.entry_id(user).ok_or_else(|| {
            self.err(format!(
                "{} has no readable {name}: cannot identify the account for good (may the bind \
                 account read it?)",
                user.dn
            ))
        })?;
        Ok(Account::new(id, name, user.dn.clone()))
    }

    /// An entry's id (objectGUID as text, entryUUID, nsUniqueId), if it was read.
    pub(super) fn entry_id(&self, e: &SearchEntry) -> Option<String> {
        let name = self.flavor.id_attribute();
        if self.flavor == Flavor::ActiveDirectory {
            e.bin_attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.first())
                .and_then(|b| guid_string(b))
        } else {
            attr(e, name).first().cloned()
        }
    }

    /// The filter that finds an entry by its id (`None`: not an id this flavor makes).
    pub(super) fn id_filter(&self, id: &str) -> Option<String> {
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
    pub(super) async fn resolve(
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
pub(super) fn attr<'a>(e: &'a SearchEntry, name: &str) -> &'a [String] {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or(&[], |(_, v)| v.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ldap::tests::cfg;

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
}
