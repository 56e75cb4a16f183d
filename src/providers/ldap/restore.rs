//! Rollback: the pre-state each apply records just before its change (ids and attribute values,
//! never a secret), and putting it back by the account's id.
//!
//! The pre-state (`before`) of every action names the account: `id` (objectGUID, entryUUID or
//! nsUniqueId), `id_attribute` and `dn`. Then, per action:
//! - `disable_account`: `userAccountControl` (the number) and `disabled` (ACCOUNTDISABLE was
//!   set). Restore puts that one bit back as it was, every other bit as it is now (a person
//!   disabled before offboard stays disabled).
//! - `remove_from_groups`: `groups`, the groups the step removes the person from: `dn`, `id`
//!   (the group's own objectGUID / entryUUID / nsUniqueId, `null` when unreadable) and
//!   `member_attribute` (`member` or `uniqueMember`). Restore finds each group by its id (a
//!   renamed or moved group too) and adds the person back; a group deleted since cannot be.
//! - `lock_account` and `set_description`: `attribute` and its `values` (empty: it was absent).
//!   Restore writes the values back, or removes the attribute when it was absent.
//! - `move_to_ou`: `parent`, the DN of the container the entry was in. Restore moves it back
//!   there (keeping its RDN).
//! - `reset_password`: `pwdLastSet`, for the record only: the old password cannot come back.

use std::collections::HashSet;

use ldap3::{Ldap, Mod, Scope, SearchEntry};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::KIND;
use super::LdapProvider;
use super::ad::{UAC_ACCOUNTDISABLE, uac_is_disabled};
use super::config::Flavor;
use super::dn::{dn_eq, split_dn};
use super::groups::{group_listed, groups_param};
use super::identify::{attr, escape_filter_value};
use super::password::pwd_last_set;
use super::run::Outcome;
use crate::providers::{
    Account, Inverse, ProviderError, RequestLine, RequestRecord, RestoreCheck, StepCall,
};

/// What an apply recorded just before its change (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct PreState {
    pub(super) id: String,
    pub(super) id_attribute: String,
    pub(super) dn: String,
    #[serde(
        rename = "userAccountControl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) uac: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) groups: Option<Vec<GroupRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) parent: Option<String>,
    #[serde(
        rename = "pwdLastSet",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) pwd_last_set: Option<i64>,
}

/// A group the person was in, as recorded before the removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct GroupRef {
    pub(super) dn: String,
    /// The group's own id (objectGUID / entryUUID / nsUniqueId); `None` when it was unreadable.
    pub(super) id: Option<String>,
    pub(super) member_attribute: String,
}

/// Where a recorded group is now.
enum Located {
    /// Found (by id, or by DN when no id was recorded): its DN now.
    At(String),
    Gone,
}

/// Values compared as sets, case-insensitively (`TRUE` is `true` to 389-DS).
fn same_values(a: &[String], b: &[String]) -> bool {
    let key = |v: &[String]| -> HashSet<String> { v.iter().map(|s| s.to_lowercase()).collect() };
    key(a) == key(b)
}

fn shown(values: &[String]) -> String {
    if values.is_empty() {
        "absent".into()
    } else {
        values.join("; ")
    }
}

impl LdapProvider {
    /// The attribute `lock_account` writes on this flavor.
    pub(super) fn lock_attribute(&self) -> &'static str {
        match self.flavor {
            Flavor::Ds389 => "nsAccountLock",
            _ => "pwdAccountLockedTime",
        }
    }

    /// The one attribute an action sets (`lock_account`, `set_description`).
    fn attribute_of(&self, action: &str) -> Option<&'static str> {
        match action {
            "lock_account" => Some(self.lock_attribute()),
            "set_description" => Some("description"),
            _ => None,
        }
    }

    /// Read one entry (a base search); `None` when it does not exist or `filter` does not
    /// match it.
    pub(super) async fn read_entry(
        &self,
        ldap: &mut Ldap,
        dn: &str,
        filter: &str,
        attrs: Vec<&str>,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<SearchEntry>, ProviderError> {
        ldap.with_timeout(self.timeout);
        let res = ldap
            .search(dn, Scope::Base, filter, attrs)
            .await
            .map_err(|e| self.map_err("search", dn, e))?;
        records.push(RequestRecord {
            method: "SEARCH".into(),
            url: format!("{}??base?{filter}", self.at(dn)),
            status: res.1.rc as u16,
        });
        if res.1.rc == 32 {
            return Ok(None);
        }
        let (entries, _) = res.success().map_err(|e| self.map_err("search", dn, e))?;
        Ok(entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(SearchEntry::construct)
            .next())
    }

    /// The pre-state of `call.action` on `user`, read live just before the change.
    pub(super) async fn pre_state(
        &self,
        ldap: &mut Ldap,
        user: &SearchEntry,
        account: &Account,
        call: &StepCall<'_>,
        records: &mut Vec<RequestRecord>,
    ) -> Result<PreState, ProviderError> {
        let mut s = PreState {
            id: account.id.clone(),
            id_attribute: account.id_kind.clone(),
            dn: user.dn.clone(),
            ..PreState::default()
        };
        match call.action {
            "disable_account" => {
                let uac = self.uac(user)?;
                s.uac = Some(uac);
                s.disabled = Some(uac_is_disabled(uac));
            }
            "remove_from_groups" => {
                let wanted = groups_param(call).map_err(|m| self.err(m))?;
                let targets: Vec<String> = self
                    .groups_of(ldap, user, records)
                    .await?
                    .into_iter()
                    .filter(|g| wanted.as_ref().is_none_or(|w| group_listed(w, g)))
                    .collect();
                let mut groups = Vec::new();
                for dn in targets {
                    groups.push(self.group_ref(ldap, &dn, records).await?);
                }
                s.groups = Some(groups);
            }
            "lock_account" | "set_description" => {
                let name = self.attribute_of(call.action).unwrap_or_default();
                s.attribute = Some(name.to_string());
                s.values = Some(attr(user, name).to_vec());
            }
            "move_to_ou" => s.parent = Some(split_dn(&user.dn).1.to_string()),
            "reset_password" => s.pwd_last_set = pwd_last_set(user),
            _ => {}
        }
        Ok(s)
    }

    /// A group as recorded before the removal: its DN, its id and the attribute that lists
    /// members.
    async fn group_ref(
        &self,
        ldap: &mut Ldap,
        dn: &str,
        records: &mut Vec<RequestRecord>,
    ) -> Result<GroupRef, ProviderError> {
        let id_attr = self.flavor.id_attribute();
        // A group the bind account may change but not read is still recorded, by its DN: the
        // snapshot never stops the removal (a transient error retries the whole call).
        let entry = match self
            .read_entry(
                ldap,
                dn,
                "(objectClass=*)",
                vec![id_attr, "objectClass"],
                records,
            )
            .await
        {
            Ok(e) => e,
            Err(ProviderError::Transient(m)) => return Err(ProviderError::Transient(m)),
            Err(_) => None,
        };
        let unique = self.flavor != Flavor::ActiveDirectory
            && entry.as_ref().is_some_and(|e| {
                attr(e, "objectClass")
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case("groupOfUniqueNames"))
            });
        Ok(GroupRef {
            dn: entry.as_ref().map_or(dn.to_string(), |e| e.dn.clone()),
            id: entry.as_ref().and_then(|e| self.entry_id(e)),
            member_attribute: if unique { "uniqueMember" } else { "member" }.into(),
        })
    }

    /// Where a recorded group is now: at its recorded DN with the same id, else anywhere under
    /// the groups' base by its id (renamed or moved), else gone.
    async fn locate_group(
        &self,
        ldap: &mut Ldap,
        g: &GroupRef,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Located, ProviderError> {
        let id_attr = self.flavor.id_attribute();
        let Some(id) = &g.id else {
            let e = self
                .read_entry(ldap, &g.dn, "(objectClass=*)", vec!["1.1"], records)
                .await?;
            return Ok(e.map_or(Located::Gone, |e| Located::At(e.dn)));
        };
        let filter = self.id_filter(id).ok_or_else(|| {
            self.err(format!(
                "the recorded group id {id:?} of {} is not a {id_attr}",
                g.dn
            ))
        })?;
        if let Some(e) = self
            .read_entry(ldap, &g.dn, &filter, vec!["1.1"], records)
            .await?
        {
            return Ok(Located::At(e.dn));
        }
        let base = self.groups_base.as_deref().unwrap_or(&self.base_dn);
        let found = self
            .search(ldap, base, &filter, vec!["1.1"], records)
            .await?;
        Ok(found
            .into_iter()
            .next()
            .map_or(Located::Gone, |e| Located::At(e.dn)))
    }

    async fn is_member(
        &self,
        ldap: &mut Ldap,
        group_dn: &str,
        member_attr: &str,
        user_dn: &str,
        records: &mut Vec<RequestRecord>,
    ) -> Result<bool, ProviderError> {
        let filter = format!("({member_attr}={})", escape_filter_value(user_dn));
        Ok(self
            .read_entry(ldap, group_dn, &filter, vec!["1.1"], records)
            .await?
            .is_some())
    }

    /// The pre-state `before` as this kind wrote it, for the account `call` names.
    pub(super) fn parse_before(
        &self,
        call: &StepCall<'_>,
        before: &Value,
    ) -> Result<PreState, ProviderError> {
        if !restorable(call.action) {
            let why = KIND
                .actions
                .iter()
                .find_map(|a| match a.inverse {
                    Inverse::None(why) if a.name == call.action => Some(why),
                    _ => None,
                })
                .unwrap_or("the ldap kind has no restore for it");
            return Err(self.err(format!("{} cannot be undone: {why}", call.action)));
        }
        let Some(account) = call.account else {
            return Err(self.err(format!(
                "restoring {} needs the account the apply acted on (none recorded)",
                call.action
            )));
        };
        let pre: PreState = serde_json::from_value(before.clone()).map_err(|e| {
            self.err(format!(
                "the recorded pre-state of {} is not one this kind wrote: {e}",
                call.action
            ))
        })?;
        if pre.id != account.id {
            return Err(self.err(format!(
                "the recorded pre-state is of {} {}, not of the account acted on ({})",
                pre.id_attribute, pre.id, account.id
            )));
        }
        let complete = match call.action {
            "disable_account" => pre.disabled.is_some() || pre.uac.is_some(),
            "remove_from_groups" => pre.groups.is_some(),
            "lock_account" | "set_description" => {
                pre.values.is_some() && pre.attribute.as_deref() == self.attribute_of(call.action)
            }
            "move_to_ou" => pre.parent.as_deref().is_some_and(|p| !p.is_empty()),
            _ => false,
        };
        if !complete {
            return Err(self.err(format!(
                "the recorded pre-state of {} lacks what a restore needs: {before}",
                call.action
            )));
        }
        Ok(pre)
    }

    /// Put `pre` back on the account (read by its id). Idempotent.
    pub(super) async fn restore_once(
        &self,
        ldap: &mut Ldap,
        call: &StepCall<'_>,
        pre: &PreState,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Outcome, ProviderError> {
        let user = match self.resolve(ldap, call, records).await? {
            Ok(user) => user,
            Err(gone) => {
                return Err(self.err(format!(
                    "{} {} ({}) no longer exists (deleted): there is nothing to restore it on",
                    gone.id_kind, gone.id, gone.name
                )));
            }
        };
        let account = self.account_of(&user)?;
        let outcome = match call.action {
            "disable_account" => {
                let want = pre
                    .disabled
                    .unwrap_or_else(|| pre.uac.is_some_and(uac_is_disabled));
                let now = self.uac(&user)?;
                if uac_is_disabled(now) == want {
                    Outcome::applied(
                        false,
                        format!(
                            "{} already {} as before (userAccountControl={now})",
                            user.dn,
                            if want { "disabled" } else { "enabled" }
                        ),
                    )
                } else {
                    let new = if want {
                        now | UAC_ACCOUNTDISABLE
                    } else {
                        now & !UAC_ACCOUNTDISABLE
                    };
                    let what = if want {
                        "userAccountControl |= 0x2"
                    } else {
                        "userAccountControl &= ~0x2"
                    };
                    self.replace_attr(
                        ldap,
                        &user.dn,
                        what,
                        "userAccountControl",
                        new.to_string().as_bytes(),
                        records,
                    )
                    .await?;
                    Outcome::applied(
                        true,
                        format!(
                            "{} {} (userAccountControl: {now} → {new})",
                            if want { "disabled again" } else { "re-enabled" },
                            user.dn
                        ),
                    )
                }
            }
            "remove_from_groups" => {
                self.restore_groups(
                    ldap,
                    &user,
                    pre.groups.as_deref().unwrap_or_default(),
                    records,
                )
                .await?
            }
            "lock_account" | "set_description" => {
                let name = pre.attribute.as_deref().unwrap_or_default();
                let want = pre.values.as_deref().unwrap_or_default();
                let now = attr(&user, name);
                if same_values(now, want) {
                    Outcome::applied(
                        false,
                        format!("{} already has {name} {} as before", user.dn, shown(want)),
                    )
                } else {
                    let (what, m) = if want.is_empty() {
                        (
                            format!("delete {name}"),
                            Mod::Delete(name.as_bytes().to_vec(), HashSet::new()),
                        )
                    } else {
                        (
                            format!("{name} := <recorded values>"),
                            Mod::Replace(
                                name.as_bytes().to_vec(),
                                want.iter().map(|v| v.as_bytes().to_vec()).collect(),
                            ),
                        )
                    };
                    let res = self.modify(ldap, &user.dn, &what, vec![m], records).await?;
                    // Already absent (a concurrent change): what the restore wanted.
                    if !(want.is_empty() && res.rc == 16) {
                        res.success()
                            .map_err(|e| self.map_err("modify", &user.dn, e))?;
                    }
                    Outcome::applied(
                        true,
                        format!(
                            "put {name} of {} back to {} (was {})",
                            user.dn,
                            shown(want),
                            shown(now)
                        ),
                    )
                }
            }
            "move_to_ou" => {
                let parent = pre.parent.as_deref().unwrap_or_default();
                let (rdn, now) = split_dn(&user.dn);
                if dn_eq(now, parent) {
                    Outcome::applied(false, format!("{} is already in {parent}", user.dn))
                } else {
                    ldap.with_timeout(self.timeout);
                    let res = ldap
                        .modifydn(&user.dn, rdn, true, Some(parent))
                        .await
                        .map_err(|e| self.map_err("move", &user.dn, e))?;
                    records.push(RequestRecord {
                        method: "MODDN".into(),
                        url: format!("{} newSuperior={parent}", self.at(&user.dn)),
                        status: res.rc as u16,
                    });
                    if res.rc == 32 {
                        return Err(self.err(format!(
                            "cannot move {} back: {parent}, where it was, no longer exists",
                            user.dn
                        )));
                    }
                    res.success()
                        .map_err(|e| self.map_err("move", &user.dn, e))?;
                    Outcome::applied(true, format!("moved {} back to {rdn},{parent}", user.dn))
                }
            }
            other => return Err(self.unsupported(other)),
        };
        Ok(outcome.on(account))
    }

    async fn restore_groups(
        &self,
        ldap: &mut Ldap,
        user: &SearchEntry,
        groups: &[GroupRef],
        records: &mut Vec<RequestRecord>,
    ) -> Result<Outcome, ProviderError> {
        let (mut added, mut already, mut gone) = (Vec::new(), Vec::new(), Vec::new());
        for g in groups {
            let dn = match self.locate_group(ldap, g, records).await? {
                Located::At(dn) => dn,
                Located::Gone => {
                    gone.push(gone_text(g));
                    continue;
                }
            };
            let m = g.member_attribute.as_str();
            if self.is_member(ldap, &dn, m, &user.dn, records).await? {
                already.push(dn);
                continue;
            }
            let res = self
                .modify(
                    ldap,
                    &dn,
                    &format!("add {m}: <person's dn>"),
                    vec![Mod::Add(
                        m.as_bytes().to_vec(),
                        HashSet::from([user.dn.clone().into_bytes()]),
                    )],
                    records,
                )
                .await?;
            match res.rc {
                0 => added.push(dn),
                // attributeOrValueExists (OpenLDAP, 389-DS), entryAlreadyExists (AD): a member
                // already.
                20 | 68 => already.push(dn),
                32 => gone.push(gone_text(g)),
                _ => {
                    let e = self.map_err("modify", &dn, ldap3::LdapError::from(res));
                    return Err(match e {
                        ProviderError::Permanent(m) if !added.is_empty() => {
                            ProviderError::Permanent(format!(
                                "{m} (already re-added to {})",
                                added.join("; ")
                            ))
                        }
                        e => e,
                    });
                }
            }
        }
        let mut parts = Vec::new();
        if !added.is_empty() {
            parts.push(format!(
                "re-added {} to {} group{}: {}",
                user.dn,
                added.len(),
                if added.len() == 1 { "" } else { "s" },
                added.join("; ")
            ));
        }
        if !already.is_empty() {
            parts.push(format!("already a member of {}", already.join("; ")));
        }
        if !gone.is_empty() {
            parts.push(format!("cannot restore: {}", gone.join("; ")));
        }
        if parts.is_empty() {
            parts.push(format!("{} was in no group to restore", user.dn));
        }
        Ok(Outcome::applied(!added.is_empty(), parts.join("; ")))
    }

    /// Read the account by its id and say whether `pre` is back.
    pub(super) async fn check_restored_once(
        &self,
        ldap: &mut Ldap,
        call: &StepCall<'_>,
        pre: &PreState,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Outcome, ProviderError> {
        let user = match self.resolve(ldap, call, records).await? {
            Ok(user) => user,
            Err(gone) => {
                return Ok(Outcome::Restored(RestoreCheck {
                    after: Value::Null,
                    restored: false,
                    observed: format!(
                        "{} {} ({}) no longer exists (deleted): nothing can be restored on it",
                        gone.id_kind, gone.id, gone.name
                    ),
                    account: Some(gone),
                }));
            }
        };
        let account = self.account_of(&user)?;
        let mut after = PreState {
            id: account.id.clone(),
            id_attribute: account.id_kind.clone(),
            dn: user.dn.clone(),
            ..PreState::default()
        };
        let (restored, observed) = match call.action {
            "disable_account" => {
                let want = pre
                    .disabled
                    .unwrap_or_else(|| pre.uac.is_some_and(uac_is_disabled));
                let now = self.uac(&user)?;
                after.uac = Some(now);
                after.disabled = Some(uac_is_disabled(now));
                (
                    uac_is_disabled(now) == want,
                    format!(
                        "userAccountControl={now} (ACCOUNTDISABLE {}; before offboard: {})",
                        if uac_is_disabled(now) { "set" } else { "clear" },
                        if want { "set" } else { "clear" }
                    ),
                )
            }
            "remove_from_groups" => {
                let mut now = Vec::new();
                let mut missing = Vec::new();
                let mut gone = Vec::new();
                for g in pre.groups.as_deref().unwrap_or_default() {
                    match self.locate_group(ldap, g, records).await? {
                        Located::Gone => gone.push(gone_text(g)),
                        Located::At(dn) => {
                            let m = g.member_attribute.as_str();
                            if self.is_member(ldap, &dn, m, &user.dn, records).await? {
                                now.push(GroupRef { dn, ..g.clone() });
                            } else {
                                missing.push(dn);
                            }
                        }
                    }
                }
                let mut seen = vec![match now.len() {
                    0 => "a member of none of the recorded groups".to_string(),
                    _ => format!(
                        "a member again of {}",
                        now.iter()
                            .map(|g| g.dn.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                }];
                if !missing.is_empty() {
                    seen.push(format!("not a member of {}", missing.join("; ")));
                }
                if !gone.is_empty() {
                    seen.push(format!("not restorable: {}", gone.join("; ")));
                }
                after.groups = Some(now);
                (missing.is_empty() && gone.is_empty(), seen.join("; "))
            }
            "lock_account" | "set_description" => {
                let name = pre.attribute.as_deref().unwrap_or_default();
                let want = pre.values.as_deref().unwrap_or_default();
                let now = attr(&user, name);
                after.attribute = Some(name.to_string());
                after.values = Some(now.to_vec());
                (
                    same_values(now, want),
                    format!("{name}={} (before offboard: {})", shown(now), shown(want)),
                )
            }
            "move_to_ou" => {
                let parent = pre.parent.as_deref().unwrap_or_default();
                let now = split_dn(&user.dn).1;
                after.parent = Some(now.to_string());
                if dn_eq(now, parent) {
                    (true, format!("dn={} (back in {parent})", user.dn))
                } else if self
                    .read_entry(ldap, parent, "(objectClass=*)", vec!["1.1"], records)
                    .await?
                    .is_none()
                {
                    (
                        false,
                        format!(
                            "dn={}; not restorable: {parent}, where it was, no longer exists",
                            user.dn
                        ),
                    )
                } else {
                    (false, format!("dn={}, not back in {parent}", user.dn))
                }
            }
            other => return Err(self.unsupported(other)),
        };
        Ok(Outcome::Restored(RestoreCheck {
            after: serde_json::to_value(&after).unwrap_or(Value::Null),
            restored,
            observed,
            account: Some(account),
        }))
    }

    /// The requests a restore makes, for the rollback plan. No I/O.
    pub(super) fn restore_lines(&self, call: &StepCall<'_>, before: &Value) -> Vec<RequestLine> {
        let Ok(pre) = self.parse_before(call, before) else {
            return Vec::new();
        };
        let line = |method: &str, url: String| RequestLine {
            method: method.into(),
            url,
        };
        let filter = self.id_filter(&pre.id).unwrap_or_default();
        let mut out = vec![
            line("BIND", self.at(&self.bind_dn)),
            line(
                "SEARCH",
                format!("{}??sub?{filter}", self.at(&self.base_dn)),
            ),
        ];
        let who = format!("{}/<dn of {filter}>", self.origin);
        match call.action {
            "disable_account" => {
                let want = pre
                    .disabled
                    .unwrap_or_else(|| pre.uac.is_some_and(uac_is_disabled));
                let op = if want { "|= 0x2" } else { "&= ~0x2" };
                out.push(line(
                    "MODIFY",
                    format!("{who} userAccountControl {op} (if it differs)"),
                ));
            }
            "remove_from_groups" => {
                for g in pre.groups.as_deref().unwrap_or_default() {
                    let m = &g.member_attribute;
                    let found = match &g.id {
                        Some(id) => {
                            format!("<group {}={id}, at {}>", self.flavor.id_attribute(), g.dn)
                        }
                        None => g.dn.clone(),
                    };
                    out.push(line(
                        "MODIFY",
                        format!("{}/{found} add {m}: <dn of {filter}>", self.origin),
                    ));
                }
            }
            "lock_account" | "set_description" => {
                let name = pre.attribute.as_deref().unwrap_or_default();
                let want = pre.values.as_deref().unwrap_or_default();
                out.push(line(
                    "MODIFY",
                    if want.is_empty() {
                        format!("{who} delete {name}")
                    } else {
                        format!("{who} {name} := {:?}", want.join("; "))
                    },
                ));
            }
            "move_to_ou" => out.push(line(
                "MODDN",
                format!(
                    "{who} newSuperior={}",
                    pre.parent.as_deref().unwrap_or_default()
                ),
            )),
            _ => return Vec::new(),
        }
        out
    }
}

fn gone_text(g: &GroupRef) -> String {
    match &g.id {
        Some(id) => format!("group {} ({id}) no longer exists", g.dn),
        None => format!("group {} no longer exists", g.dn),
    }
}

/// Whether the kind's action table says `action` is undone by a restore.
pub(super) fn restorable(action: &str) -> bool {
    KIND.actions
        .iter()
        .any(|a| a.name == action && matches!(a.inverse, Inverse::Restore(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ldap::tests::cfg;
    use serde_json::json;

    #[test]
    fn lock_values_are_ppolicy_and_389() {
        let p = LdapProvider::new(&cfg("ldaps://h", "openldap")).unwrap();
        assert_eq!(p.lock_attribute(), "pwdAccountLockedTime");
        let p = LdapProvider::new(&cfg("ldaps://h", "389ds")).unwrap();
        assert_eq!(p.lock_attribute(), "nsAccountLock");
    }

    #[test]
    fn restore_refuses_a_pre_state_of_another_account_or_an_action_without_inverse() {
        let p = LdapProvider::new(&cfg("ldaps://h", "active_directory")).unwrap();
        let params = serde_json::Map::new();
        let acct = Account::new("11111111-2222-3333-4444-555555555555", "objectGUID", "CN=A");
        let call = |action| StepCall {
            step_id: "s",
            action,
            login: "a",
            params: &params,
            account: Some(&acct),
        };
        let other = json!({"id": "99999999-2222-3333-4444-555555555555",
            "id_attribute": "objectGUID", "dn": "CN=B", "userAccountControl": 512,
            "disabled": false});
        let e = p
            .parse_before(&call("disable_account"), &other)
            .unwrap_err();
        assert!(e.to_string().contains("not of the account acted on"), "{e}");
        let ok = json!({"id": acct.id, "id_attribute": "objectGUID", "dn": "CN=A",
            "userAccountControl": 512, "disabled": false});
        assert!(p.parse_before(&call("disable_account"), &ok).is_ok());
        let e = p.parse_before(&call("reset_password"), &ok).unwrap_err();
        assert!(e.to_string().contains("cannot be undone"), "{e}");
        // A pre-state naming another attribute than the action writes is refused.
        let wrong = json!({"id": acct.id, "id_attribute": "objectGUID", "dn": "CN=A",
            "attribute": "unicodePwd", "values": ["x"]});
        assert!(p.parse_before(&call("set_description"), &wrong).is_err());
        assert!(p.restore_lines(&call("set_description"), &wrong).is_empty());
        let lines = p.restore_lines(&call("disable_account"), &ok);
        assert!(
            lines
                .last()
                .unwrap()
                .to_string()
                .contains("userAccountControl &= ~0x2"),
            "{lines:?}"
        );
    }
}
