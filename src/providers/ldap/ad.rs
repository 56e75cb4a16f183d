//! Active Directory's account actions: `disable_account` (the userAccountControl ACCOUNTDISABLE
//! bit, every other bit kept), `move_to_ou` (under `disabled_ou`, the RDN kept) and
//! `set_description` (`params.text`, literally). `reset_password` is in `password.rs`.

use ldap3::{Ldap, SearchEntry};

use super::DescriptionParams;
use super::LdapProvider;
use super::dn::{dn_eq, split_dn};
use super::identify::attr;
use super::run::Outcome;
use crate::providers::{ProviderError, RequestRecord, StepCall, params};

/// userAccountControl ACCOUNTDISABLE.
pub const UAC_ACCOUNTDISABLE: u32 = 0x2;

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

impl LdapProvider {
    pub(super) fn uac(&self, user: &SearchEntry) -> Result<u32, ProviderError> {
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

    pub(super) async fn disable(
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

    pub(super) fn disabled_ou(&self) -> Result<&str, ProviderError> {
        self.disabled_ou.as_deref().ok_or_else(|| {
            self.err(
                "move_to_ou needs disabled_ou, e.g. disabled_ou = \"OU=Disabled Users,DC=corp,DC=example\"",
            )
        })
    }

    pub(super) async fn move_to_ou(
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

    pub(super) async fn set_description(
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
}

pub(super) fn description_param(call: &StepCall<'_>) -> Result<String, String> {
    match params::parse::<DescriptionParams>(call.action, call.params) {
        Ok(p) if !p.text.is_empty() => Ok(p.text),
        _ => {
            Err("set_description needs params.text, e.g. params = { text = \"offboarded\" }".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
