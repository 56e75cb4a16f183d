//! Rollback: the pre-state each apply records, and restoring the mailbox's type, forwarding,
//! address-list visibility and permissions from it.

use serde_json::{Value, json};

use super::actions::Grant;
use super::client::Ran;
use super::mailbox::{Found, Mailbox, flag_or, rights, strip_smtp, text};
use super::{ExchangeProvider, FullAccessParams};
use crate::providers::{
    Account, ApplyOutcome, CallCtx, ProviderError, RequestLine, RequestRecord, RestoreCheck,
    StepCall,
};

// ---------------------------------------------------------------------------------------------
// Rollback
//
// | action | pre-state (`before`) | restore |
// | --- | --- | --- |
// | `convert_to_shared` | `{id, RecipientTypeDetails}` | `Set-Mailbox -Type <old>` |
// | `set_forwarding`, `disable_forwarding` | `{id, ForwardingSmtpAddress, ForwardingAddress, DeliverToMailboxAndForward}` | `Set-Mailbox` with the three old values |
// | `hide_from_gal` | `{id, HiddenFromAddressListsEnabled}` | `Set-Mailbox -HiddenFromAddressListsEnabled <old>` |
// | `grant_full_access` | `{id, user, fullAccess}` | `Remove-MailboxPermission -User <user> -AccessRights FullAccess` unless held before |
// | `remove_mailbox_permissions` | `{id, grants: [{mailbox, name, rights, inheritance, inherited}]}` | `Add-MailboxPermission` per explicit grant, `AutoMapping $false` |

/// The fields of `Set-Mailbox` each mailbox-property action records and puts back.
pub(super) fn restored_fields(action: &str) -> &'static [&'static str] {
    match action {
        "convert_to_shared" => &["RecipientTypeDetails"],
        "set_forwarding" | "disable_forwarding" => &[
            "ForwardingSmtpAddress",
            "ForwardingAddress",
            "DeliverToMailboxAndForward",
        ],
        "hide_from_gal" => &["HiddenFromAddressListsEnabled"],
        _ => &[],
    }
}

/// `Set-Mailbox -Type` for a `RecipientTypeDetails`.
pub(super) fn mailbox_type(details: &str) -> Option<&'static str> {
    match details {
        "UserMailbox" => Some("Regular"),
        "SharedMailbox" => Some("Shared"),
        "RoomMailbox" => Some("Room"),
        "EquipmentMailbox" => Some("Equipment"),
        _ => None,
    }
}

/// The pre-state of `remove_mailbox_permissions`: the person's rights on other mailboxes.
pub(super) fn grants_before(account: &Account, grants: &[Grant]) -> Value {
    json!({
        "id": account.id,
        "grants": grants
            .iter()
            .map(|g| json!({
                "mailbox": g.mailbox,
                "name": g.name,
                "rights": g.rights,
                "inheritance": g.inheritance,
                "inherited": g.inherited,
            }))
            .collect::<Vec<_>>(),
    })
}

/// A recorded value compared with a live one: null, empty and absent are the same, and
/// `smtp:` is not part of an address.
pub(super) fn same_value(a: Option<&Value>, b: Option<&Value>) -> bool {
    let norm = |v: Option<&Value>| -> Value {
        match v {
            None | Some(Value::Null) => Value::Null,
            Some(Value::String(s)) if s.trim().is_empty() => Value::Null,
            Some(Value::String(s)) => Value::String(strip_smtp(s.trim()).to_ascii_lowercase()),
            Some(Value::Bool(_)) => v.cloned().unwrap_or(Value::Null),
            Some(other) => other.clone(),
        }
    };
    let (x, y) = (norm(a), norm(b));
    // Exchange may answer a boolean as a string.
    let truthy = |v: &Value| match v {
        Value::String(s) if s == "true" || s == "false" => Value::Bool(s == "true"),
        other => other.clone(),
    };
    truthy(&x) == truthy(&y)
}

impl ExchangeProvider {
    /// The state the apply is about to change (`None`: nothing recorded here).
    pub(super) async fn pre_state(
        &self,
        call: &StepCall<'_>,
        m: &Mailbox,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<Value>, ProviderError> {
        let fields = restored_fields(call.action);
        if !fields.is_empty() {
            let mut state = json!({ "id": m.account.id });
            for f in fields {
                state[*f] = m.v.get(*f).cloned().unwrap_or(Value::Null);
            }
            return Ok(Some(state));
        }
        if call.action == "grant_full_access" {
            let p: FullAccessParams = self.params(call)?;
            let to = self.recipient(call, &p.to)?;
            let held = self
                .explicit_rights(&m.account.id, &to, ctx, records)
                .await?;
            return Ok(Some(json!({
                "id": m.account.id,
                "user": to,
                "fullAccess": held.is_some_and(|r| r.iter().any(|x| x == "FullAccess")),
            })));
        }
        Ok(None)
    }

    /// `user`'s explicit, allowing rights on `mailbox` (`None`: the mailbox is gone).
    pub(super) async fn explicit_rights(
        &self,
        mailbox: &str,
        user: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<Vec<String>>, ProviderError> {
        let ran = self
            .invoke(
                "Get-MailboxPermission",
                json!({ "Identity": mailbox, "User": user }),
                ctx,
                records,
            )
            .await?;
        let Ran::Output(entries) = ran else {
            return Ok(None);
        };
        Ok(Some(
            entries
                .iter()
                .filter(|e| !flag_or(e, "Deny", false) && !flag_or(e, "IsInherited", false))
                .flat_map(rights)
                .collect(),
        ))
    }

    /// The recorded mailbox, read by id, for a restore.
    pub(super) async fn restore_target(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Found, ProviderError> {
        let Some(known) = call.account else {
            return Err(self.perm(
                call,
                "rollback needs the mailbox the apply identified; none recorded",
            ));
        };
        if let Some(id) = text(&before["id"])
            && !id.eq_ignore_ascii_case(&known.id)
        {
            return Err(self.perm(
                call,
                format!(
                    "the recorded pre-state is of mailbox {id}, not of {}; refusing to restore \
                     it onto another mailbox",
                    known.id
                ),
            ));
        }
        self.mailbox(call, ctx, records).await
    }

    pub(super) async fn restore_mailbox(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let m = match self.restore_target(call, before, ctx, &mut records).await? {
            Found::Here(m) => m,
            Found::Gone(a, why) => {
                return Err(self.perm(
                    call,
                    format!("{a}: mailbox gone ({why}): nothing of it can be put back"),
                ));
            }
        };
        let id = m.account.id.clone();
        let unchanged = |summary: String, records: Vec<RequestRecord>| ApplyOutcome {
            changed: false,
            summary,
            requests: records,
            account: Some(m.account.clone()),
        };
        let summary = match call.action {
            "grant_full_access" => {
                let to = text(&before["user"])
                    .ok_or_else(|| self.perm(call, "the recorded pre-state names no `user`"))?;
                if flag_or(before, "fullAccess", false) {
                    return Ok(unchanged(
                        format!("{}: {to} held FullAccess before offboard: left", m.account),
                        records,
                    ));
                }
                let held = self.explicit_rights(&id, &to, ctx, &mut records).await?;
                if !held.is_some_and(|r| r.iter().any(|x| x == "FullAccess")) {
                    return Ok(unchanged(
                        format!("{}: {to} has no FullAccess", m.account),
                        records,
                    ));
                }
                self.output(
                    "Remove-MailboxPermission",
                    json!({
                        "Identity": id,
                        "User": to,
                        "AccessRights": ["FullAccess"],
                        "InheritanceType": "All",
                        "Confirm": false,
                    }),
                    ctx,
                    &mut records,
                )
                .await?;
                format!(
                    "{}: removed the FullAccess offboard granted to {to}",
                    m.account
                )
            }
            "remove_mailbox_permissions" => {
                let mut added = Vec::new();
                let mut lost = Vec::new();
                for g in before["grants"].as_array().into_iter().flatten() {
                    if flag_or(g, "inherited", false) {
                        continue;
                    }
                    let (Some(mailbox), want) = (
                        text(&g["mailbox"]),
                        rights(&json!({ "AccessRights": g["rights"] })),
                    ) else {
                        continue;
                    };
                    let name = text(&g["name"]).unwrap_or_else(|| mailbox.clone());
                    let Some(held) = self
                        .explicit_rights(&mailbox, &id, ctx, &mut records)
                        .await?
                    else {
                        lost.push(name);
                        continue;
                    };
                    let missing: Vec<String> =
                        want.into_iter().filter(|r| !held.contains(r)).collect();
                    if missing.is_empty() {
                        continue;
                    }
                    let mut p = json!({
                        "Identity": mailbox,
                        "User": id,
                        "AccessRights": missing,
                        "AutoMapping": false,
                    });
                    if let Some(i) = text(&g["inheritance"]) {
                        p["InheritanceType"] = json!(i);
                    }
                    match self
                        .invoke("Add-MailboxPermission", p, ctx, &mut records)
                        .await?
                    {
                        Ran::Output(_) => added.push(format!("{} on {name}", missing.join("+"))),
                        Ran::NotFound(_) => lost.push(name),
                    }
                }
                if !lost.is_empty() {
                    let done = if added.is_empty() {
                        String::new()
                    } else {
                        format!("granted {} again; ", added.join(", "))
                    };
                    return Err(self.perm(
                        call,
                        format!(
                            "{}: {done}mailbox(es) {} no longer exist: those rights cannot come \
                             back",
                            m.account,
                            lost.join(", ")
                        ),
                    ));
                }
                if added.is_empty() {
                    return Ok(unchanged(
                        format!("{}: every right offboard removed is held again", m.account),
                        records,
                    ));
                }
                format!(
                    "{}: granted again {} (without AutoMapping)",
                    m.account,
                    added.join(", ")
                )
            }
            action => {
                let fields = restored_fields(action);
                let differs: Vec<&str> = fields
                    .iter()
                    .copied()
                    .filter(|f| !same_value(m.v.get(*f), before.get(*f)))
                    .collect();
                if differs.is_empty() {
                    return Ok(unchanged(
                        format!("{}: already as before offboard", m.account),
                        records,
                    ));
                }
                let mut p = json!({ "Identity": id });
                if action == "convert_to_shared" {
                    let old = text(&before["RecipientTypeDetails"]).unwrap_or_default();
                    let Some(t) = mailbox_type(&old) else {
                        return Err(self.perm(
                            call,
                            format!("Set-Mailbox -Type cannot make a mailbox {old:?} again"),
                        ));
                    };
                    p["Type"] = json!(t);
                } else {
                    for f in fields {
                        let v = before.get(*f).cloned().unwrap_or(Value::Null);
                        p[*f] = match *f {
                            "DeliverToMailboxAndForward" | "HiddenFromAddressListsEnabled" => {
                                json!(flag_or(before, f, false))
                            }
                            _ => match text(&v) {
                                Some(s) => json!(s),
                                None => Value::Null,
                            },
                        };
                    }
                }
                self.output("Set-Mailbox", p, ctx, &mut records).await?;
                let shown: Vec<String> = differs
                    .iter()
                    .map(|f| format!("{f}={}", before.get(*f).unwrap_or(&Value::Null)))
                    .collect();
                format!("{}: put back {}", m.account, shown.join(", "))
            }
        };
        Ok(ApplyOutcome {
            changed: true,
            summary,
            requests: records,
            account: Some(m.account),
        })
    }

    pub(super) async fn check_mailbox_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        let mut records = Vec::new();
        let m = match self.restore_target(call, before, ctx, &mut records).await? {
            Found::Here(m) => m,
            Found::Gone(a, why) => {
                return Ok(RestoreCheck {
                    after: json!({ "id": a.id, "exists": false }),
                    restored: false,
                    observed: format!("mailbox gone ({why}): nothing of it can come back"),
                    account: Some(a),
                });
            }
        };
        let id = m.account.id.clone();
        let (after, missing): (Value, Vec<String>) = match call.action {
            "grant_full_access" => {
                let to = text(&before["user"]).unwrap_or_default();
                let held = self
                    .explicit_rights(&id, &to, ctx, &mut records)
                    .await?
                    .is_some_and(|r| r.iter().any(|x| x == "FullAccess"));
                let want = flag_or(before, "fullAccess", false);
                (
                    json!({ "id": id, "user": to, "fullAccess": held }),
                    if held == want || want {
                        Vec::new()
                    } else {
                        vec![format!("{to} still has the FullAccess offboard granted")]
                    },
                )
            }
            "remove_mailbox_permissions" => {
                let mut now = Vec::new();
                let mut missing = Vec::new();
                for g in before["grants"].as_array().into_iter().flatten() {
                    if flag_or(g, "inherited", false) {
                        continue;
                    }
                    let Some(mailbox) = text(&g["mailbox"]) else {
                        continue;
                    };
                    let name = text(&g["name"]).unwrap_or_else(|| mailbox.clone());
                    let want = rights(&json!({ "AccessRights": g["rights"] }));
                    match self
                        .explicit_rights(&mailbox, &id, ctx, &mut records)
                        .await?
                    {
                        None => missing.push(format!("{name}: mailbox gone")),
                        Some(held) => {
                            let lack: Vec<&String> =
                                want.iter().filter(|r| !held.contains(r)).collect();
                            if !lack.is_empty() {
                                missing.push(format!(
                                    "{name}: lacks {}",
                                    lack.iter()
                                        .map(|s| s.as_str())
                                        .collect::<Vec<_>>()
                                        .join("+")
                                ));
                            }
                            now.push(json!({ "mailbox": mailbox, "name": name, "rights": held }));
                        }
                    }
                }
                (json!({ "id": id, "grants": now }), missing)
            }
            action => {
                let mut after = json!({ "id": id });
                let mut missing = Vec::new();
                for f in restored_fields(action) {
                    let live = m.v.get(*f).cloned().unwrap_or(Value::Null);
                    if !same_value(Some(&live), before.get(*f)) {
                        missing.push(format!(
                            "{f}={live}, was {}",
                            before.get(*f).unwrap_or(&Value::Null)
                        ));
                    }
                    after[*f] = live;
                }
                (after, missing)
            }
        };
        Ok(RestoreCheck {
            after,
            restored: missing.is_empty(),
            observed: if missing.is_empty() {
                "as before offboard".into()
            } else {
                missing.join("; ")
            },
            account: Some(m.account),
        })
    }

    pub(super) fn describe_mailbox_restore(
        &self,
        call: &StepCall<'_>,
        before: &Value,
    ) -> Vec<RequestLine> {
        let Some(a) = call.account else {
            return Vec::new();
        };
        let id = &a.id;
        let mut lines = vec![self.line(&format!("Get-Mailbox -Identity {id}"))];
        match call.action {
            "convert_to_shared" => {
                let old = text(&before["RecipientTypeDetails"]).unwrap_or_default();
                lines.push(self.line(&format!(
                    "Set-Mailbox -Identity {id} -Type {}",
                    mailbox_type(&old).unwrap_or("{old type}")
                )));
            }
            "set_forwarding" | "disable_forwarding" => {
                let show = |f: &str| text(&before[f]).unwrap_or_else(|| "$null".into());
                lines.push(self.line(&format!(
                    "Set-Mailbox -Identity {id} -ForwardingSmtpAddress {} -ForwardingAddress {} \
                     -DeliverToMailboxAndForward ${}",
                    show("ForwardingSmtpAddress"),
                    show("ForwardingAddress"),
                    flag_or(before, "DeliverToMailboxAndForward", false)
                )));
            }
            "hide_from_gal" => lines.push(self.line(&format!(
                "Set-Mailbox -Identity {id} -HiddenFromAddressListsEnabled ${}",
                flag_or(before, "HiddenFromAddressListsEnabled", false)
            ))),
            "grant_full_access" => {
                let to = text(&before["user"]).unwrap_or_else(|| "{to}".into());
                lines.push(self.line(&format!("Get-MailboxPermission -Identity {id} -User {to}")));
                lines.push(self.line(&format!(
                    "Remove-MailboxPermission -Identity {id} -User {to} -AccessRights FullAccess \
                     -InheritanceType All -Confirm:$false"
                )));
            }
            "remove_mailbox_permissions" => {
                for g in before["grants"].as_array().into_iter().flatten() {
                    if flag_or(g, "inherited", false) {
                        continue;
                    }
                    let mailbox = text(&g["mailbox"]).unwrap_or_default();
                    lines.push(self.line(&format!(
                        "Get-MailboxPermission -Identity {mailbox} -User {id}"
                    )));
                    lines.push(self.line(&format!(
                        "Add-MailboxPermission -Identity {mailbox} -User {id} -AccessRights {} \
                         -AutoMapping $false",
                        rights(&json!({ "AccessRights": g["rights"] })).join(",")
                    )));
                }
            }
            _ => return Vec::new(),
        }
        lines
    }
}
