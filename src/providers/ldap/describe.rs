//! The request lines `plan` shows for an action: the verb, the server URL with the person's DN
//! as a placeholder, and the change. No I/O, no secret.

use super::LdapProvider;
use super::ad::description_param;
use super::config::Flavor;
use super::groups::groups_param;
use super::lock::PERMANENT_LOCK;
use crate::providers::{RequestLine, StepCall};

impl LdapProvider {
    /// Request lines for the plan: verb, server URL and DN placeholder, the change. No secret.
    pub(super) fn lines(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
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
                let text =
                    description_param(call).unwrap_or_else(|_| "<params.text missing>".to_string());
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
