//! `remove_from_groups`: the groups the person is in (AD's memberOf; on OpenLDAP and 389ds the
//! groupOfNames / groupOfUniqueNames holding the DN), `params.groups` matched by DN or CN, and
//! the removal group by group, naming the groups already left when a later one fails.

use std::collections::HashSet;

use ldap3::{Ldap, LdapError, Mod, Scope, SearchEntry};

use super::GroupsParams;
use super::LdapProvider;
use super::config::Flavor;
use super::dn::{dn_eq, first_rdn_value};
use super::identify::{attr, escape_filter_value};
use super::run::{Carried, Outcome};
use crate::providers::{ProviderError, RequestRecord, StepCall, params};

impl LdapProvider {
    /// The DNs of the groups the person is in.
    pub(super) async fn groups_of(
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

    pub(super) async fn remove_groups(
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
}

pub(super) fn groups_param(call: &StepCall<'_>) -> Result<Option<Vec<String>>, String> {
    let p: GroupsParams = params::parse(call.action, call.params).map_err(|e| e.to_string())?;
    let Some(groups) = p.groups else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for g in groups {
        match g.trim() {
            "" => return Err("params.groups must be a list of group DNs or CNs".into()),
            s => out.push(s.to_string()),
        }
    }
    if out.is_empty() {
        return Err("params.groups is empty: leave it out to remove every group".into());
    }
    Ok(Some(out))
}

/// Whether a group (a DN from the server) is one the runbook listed, by DN or by CN.
pub(super) fn group_listed(listed: &[String], group_dn: &str) -> bool {
    let cn = first_rdn_value(group_dn);
    listed.iter().any(|l| {
        if l.contains('=') {
            dn_eq(l, group_dn)
        } else {
            l.eq_ignore_ascii_case(&cn)
        }
    })
}
