//! One provider call: a fresh session per attempt, transient failures retried under the kit's
//! policy, the dispatch of apply / check / preflight to the flavor's action (the checks read
//! here, from the entry found), and the outcome types that carry the requests made back.

use std::time::Duration;

use ldap3::Ldap;

use super::ad::{description_param, uac_is_disabled};
use super::dn::{dn_eq, split_dn};
use super::groups::{group_listed, groups_param};
use super::identify::attr;
use super::password::{filetime_display, pwd_last_set};
use super::restore::PreState;
use super::{KIND, LdapProvider};
use crate::providers::{
    Account, ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestRecord, RestoreCheck,
    RetryNote, StepCall,
};

impl LdapProvider {
    /// Run one apply or check in a fresh session, retrying transient failures.
    pub(super) async fn run<T>(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        mode: Mode,
    ) -> Result<T, ProviderError>
    where
        T: From<Done>,
    {
        self.run_with(call, ctx, mode, None).await
    }

    /// [`LdapProvider::run`], for a restore or its check too (`pre`: the recorded pre-state).
    pub(super) async fn run_with<T>(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        mode: Mode,
        pre: Option<&PreState>,
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
                    Mode::Restore | Mode::CheckRestored => match pre {
                        None => Err(self.err("a restore needs the recorded pre-state")),
                        Some(pre) if mode == Mode::Restore => {
                            self.restore_once(&mut ldap, call, pre, &mut records).await
                        }
                        Some(pre) => {
                            self.check_restored_once(&mut ldap, call, pre, &mut records)
                                .await
                        }
                    },
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

    pub(super) fn unsupported(&self, action: &str) -> ProviderError {
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
        // The pre-state, read live just before the change (also when it is already in place).
        let before = self.pre_state(ldap, &user, &account, call, records).await?;
        ctx.before(&serde_json::to_value(&before).unwrap_or_default());
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
                self.set_description(ldap, &user, &text, records).await
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
}

/// What a single session produced, before the request records are attached.
pub(super) enum Outcome {
    Applied {
        changed: bool,
        summary: String,
        account: Option<Account>,
    },
    Check(CheckOutcome),
    /// What a check of a restore read.
    Restored(RestoreCheck),
}

impl Outcome {
    pub(super) fn applied(changed: bool, summary: String) -> Outcome {
        Outcome::Applied {
            changed,
            summary,
            account: None,
        }
    }

    /// The same outcome, about `account`.
    pub(super) fn on(self, account: Account) -> Outcome {
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
            Outcome::Restored(r) => Outcome::Restored(RestoreCheck {
                account: Some(account),
                ..r
            }),
        }
    }
}

/// An outcome with the requests made for it.
pub(super) struct Done {
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
            Outcome::Restored(r) => ApplyOutcome {
                changed: false,
                summary: r.observed,
                requests: d.requests,
                account: r.account,
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
            Outcome::Restored(r) => CheckOutcome {
                revoked: false,
                observed: r.observed,
                account: r.account,
            },
        }
    }
}

impl From<Done> for RestoreCheck {
    fn from(d: Done) -> RestoreCheck {
        match d.inner {
            Outcome::Restored(r) => r,
            Outcome::Applied {
                summary, account, ..
            } => RestoreCheck {
                after: serde_json::Value::Null,
                restored: false,
                observed: summary,
                account,
            },
            Outcome::Check(c) => RestoreCheck {
                after: serde_json::Value::Null,
                restored: false,
                observed: c.observed,
                account: c.account,
            },
        }
    }
}

/// What one session does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Apply,
    Check,
    /// Find the person and change nothing (preflight).
    Look,
    /// Put the recorded pre-state back.
    Restore,
    /// Read whether the recorded pre-state is back.
    CheckRestored,
}

/// What one call has already changed in attempts that then failed with a transient error, so
/// the retry's summary still reports it.
#[derive(Default)]
pub(super) struct Carried {
    pub(super) removed_groups: Vec<String>,
}
