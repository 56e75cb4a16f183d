//! Every action's check (`observe`: what the `Get-` cmdlets show, in words) and apply
//! (`change`: the cmdlets that put the effect in place), with the parameters they read.

use serde_json::{Value, json};

use super::client::Ran;
use super::mailbox::{Mailbox, flag_or, mailbox_account, rights, strip_smtp, text};
use super::undo::grants_before;
use super::{ExchangeProvider, ForwardParams, FullAccessParams, MeetingsParams};
use crate::providers::{CallCtx, ProviderError, RequestRecord, StepCall, params};

/// What a check sees: whether the action's effect is in place, in words.
pub(super) struct Seen {
    pub(super) holds: bool,
    pub(super) observed: String,
}

/// An entry of `Get-MailboxPermission`: the person's rights on another mailbox.
pub(super) struct Grant {
    /// The mailbox, by the id it is acted on with.
    pub(super) mailbox: String,
    /// The mailbox as people know it.
    pub(super) name: String,
    pub(super) rights: Vec<String>,
    pub(super) inheritance: Option<String>,
    pub(super) inherited: bool,
}

pub(super) fn forwarding_words(smtp: Option<&str>, other: Option<&str>, keep: bool) -> String {
    let mut w = match smtp {
        Some(s) => format!("ForwardingSmtpAddress={s}"),
        None => "ForwardingSmtpAddress empty".to_string(),
    };
    match other {
        Some(o) => w.push_str(&format!(", ForwardingAddress={o}")),
        None => w.push_str(", ForwardingAddress empty"),
    }
    w.push_str(&format!(", DeliverToMailboxAndForward={keep}"));
    w
}

pub(super) fn grants_words(grants: &[Grant]) -> String {
    if grants.is_empty() {
        return "no rights on other mailboxes".into();
    }
    let shown: Vec<String> = grants
        .iter()
        .take(5)
        .map(|g| {
            format!(
                "{} on {}{}",
                g.rights.join("+"),
                g.name,
                if g.inherited { " (inherited)" } else { "" }
            )
        })
        .collect();
    let more = grants.len().saturating_sub(shown.len());
    format!(
        "rights on other mailboxes: {}{}",
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

pub(super) fn device_name(d: &Value) -> String {
    let name = text(&d["FriendlyName"])
        .or_else(|| text(&d["DeviceModel"]))
        .or_else(|| text(&d["DeviceType"]))
        .unwrap_or_else(|| "device".into());
    match text(&d["DeviceId"]) {
        Some(id) => format!("{name} ({id})"),
        None => name,
    }
}

pub(super) fn devices_words(devices: &[Value]) -> String {
    if devices.is_empty() {
        return "no mobile device partnerships".into();
    }
    let names: Vec<String> = devices.iter().take(5).map(device_name).collect();
    format!(
        "{} mobile device partnership(s): {}",
        devices.len(),
        names.join(", ")
    )
}

impl ExchangeProvider {
    /// Whether the action's effect is in place on `m`, read with the matching `Get-` cmdlet.
    pub(super) async fn observe(
        &self,
        call: &StepCall<'_>,
        m: &Mailbox,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Seen, ProviderError> {
        let field = |key: &str| self.field(call, &m.v, key);
        match call.action {
            "convert_to_shared" => {
                let t = field("RecipientTypeDetails")?;
                let t = t.as_str().unwrap_or_default();
                Ok(Seen {
                    holds: t.eq_ignore_ascii_case("SharedMailbox"),
                    observed: format!("RecipientTypeDetails={t}"),
                })
            }
            "set_forwarding" => {
                let p: ForwardParams = self.params(call)?;
                let to = self.address(call, &p.to)?;
                let smtp = text(&field("ForwardingSmtpAddress")?);
                let other = text(&field("ForwardingAddress")?);
                let keep = self.flag(call, &m.v, "DeliverToMailboxAndForward")?;
                let target = smtp
                    .as_deref()
                    .map(|s| strip_smtp(s).eq_ignore_ascii_case(&to))
                    .unwrap_or(false);
                Ok(Seen {
                    holds: target && other.is_none() && keep == p.keep_copy,
                    observed: forwarding_words(smtp.as_deref(), other.as_deref(), keep),
                })
            }
            "disable_forwarding" => {
                let smtp = text(&field("ForwardingSmtpAddress")?);
                let other = text(&field("ForwardingAddress")?);
                let keep = self.flag(call, &m.v, "DeliverToMailboxAndForward")?;
                Ok(Seen {
                    holds: smtp.is_none() && other.is_none(),
                    observed: forwarding_words(smtp.as_deref(), other.as_deref(), keep),
                })
            }
            "hide_from_gal" => {
                let hidden = self.flag(call, &m.v, "HiddenFromAddressListsEnabled")?;
                Ok(Seen {
                    holds: hidden,
                    observed: format!("HiddenFromAddressListsEnabled={hidden}"),
                })
            }
            "grant_full_access" => {
                let p: FullAccessParams = self.params(call)?;
                let to = self.recipient(call, &p.to)?;
                let entries = self
                    .output(
                        "Get-MailboxPermission",
                        json!({ "Identity": m.account.id, "User": to }),
                        ctx,
                        records,
                    )
                    .await?;
                let granted = entries.iter().any(|e| {
                    !flag_or(e, "Deny", false) && rights(e).iter().any(|r| r == "FullAccess")
                });
                Ok(Seen {
                    holds: granted,
                    observed: if granted {
                        format!("{to} has FullAccess")
                    } else {
                        format!("{to} has no FullAccess")
                    },
                })
            }
            "remove_mailbox_permissions" => {
                let grants = self.grants(m, ctx, records).await?;
                Ok(Seen {
                    holds: grants.is_empty(),
                    observed: grants_words(&grants),
                })
            }
            "remove_mobile_devices" => {
                let devices = self
                    .output(
                        "Get-MobileDevice",
                        json!({ "Mailbox": m.account.id }),
                        ctx,
                        records,
                    )
                    .await?;
                Ok(Seen {
                    holds: devices.is_empty(),
                    observed: devices_words(&devices),
                })
            }
            "cancel_meetings" => {
                let p: MeetingsParams = self.params(call)?;
                let left = self
                    .output(
                        "Remove-CalendarEvents",
                        json!({
                            "Identity": m.account.id,
                            "CancelOrganizedMeetings": true,
                            "QueryWindowInDays": p.days,
                            "PreviewOnly": true,
                        }),
                        ctx,
                        records,
                    )
                    .await?;
                Ok(Seen {
                    holds: left.is_empty(),
                    observed: if left.is_empty() {
                        format!(
                            "no meeting left to cancel in the next {} days \
                             (Remove-CalendarEvents -PreviewOnly)",
                            p.days
                        )
                    } else {
                        format!(
                            "{} meeting(s) still to cancel in the next {} days",
                            left.len(),
                            p.days
                        )
                    },
                })
            }
            other => Err(self.perm(call, format!("the exchange kind has no action `{other}`"))),
        }
    }

    /// Make the change on `m` (the check said it is not in place). Returns the summary.
    pub(super) async fn change(
        &self,
        call: &StepCall<'_>,
        m: &Mailbox,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<String, ProviderError> {
        let id = m.account.id.as_str();
        let account = &m.account;
        match call.action {
            "convert_to_shared" => {
                self.output(
                    "Set-Mailbox",
                    json!({ "Identity": id, "Type": "Shared" }),
                    ctx,
                    records,
                )
                .await?;
                Ok(format!("converted {account} to a shared mailbox"))
            }
            "set_forwarding" => {
                let p: ForwardParams = self.params(call)?;
                let to = self.address(call, &p.to)?;
                self.output(
                    "Set-Mailbox",
                    json!({
                        "Identity": id,
                        "ForwardingSmtpAddress": format!("smtp:{to}"),
                        "ForwardingAddress": null,
                        "DeliverToMailboxAndForward": p.keep_copy,
                    }),
                    ctx,
                    records,
                )
                .await?;
                Ok(format!(
                    "{account}: mail forwarded to {to}{}",
                    if p.keep_copy {
                        ", a copy kept in the mailbox"
                    } else {
                        ", no copy kept"
                    }
                ))
            }
            "disable_forwarding" => {
                self.output(
                    "Set-Mailbox",
                    json!({
                        "Identity": id,
                        "ForwardingSmtpAddress": null,
                        "ForwardingAddress": null,
                        "DeliverToMailboxAndForward": false,
                    }),
                    ctx,
                    records,
                )
                .await?;
                Ok(format!("{account}: forwarding removed"))
            }
            "hide_from_gal" => {
                self.output(
                    "Set-Mailbox",
                    json!({ "Identity": id, "HiddenFromAddressListsEnabled": true }),
                    ctx,
                    records,
                )
                .await?;
                Ok(format!("{account}: hidden from the address lists"))
            }
            "grant_full_access" => {
                let p: FullAccessParams = self.params(call)?;
                let to = self.recipient(call, &p.to)?;
                self.output(
                    "Add-MailboxPermission",
                    json!({
                        "Identity": id,
                        "User": to,
                        "AccessRights": ["FullAccess"],
                        "AutoMapping": p.automap,
                        "InheritanceType": "All",
                    }),
                    ctx,
                    records,
                )
                .await?;
                Ok(format!(
                    "{account}: FullAccess granted to {to} (AutoMapping {})",
                    p.automap
                ))
            }
            "remove_mailbox_permissions" => {
                let grants = self.grants(m, ctx, records).await?;
                ctx.before(&grants_before(&m.account, &grants));
                let mut removed = Vec::new();
                let mut left = Vec::new();
                for g in &grants {
                    if g.inherited {
                        left.push(format!("{} on {} (inherited)", g.rights.join("+"), g.name));
                        continue;
                    }
                    let mut p = json!({
                        "Identity": g.mailbox,
                        "User": id,
                        "AccessRights": g.rights,
                        "Confirm": false,
                    });
                    if let Some(i) = &g.inheritance {
                        p["InheritanceType"] = json!(i);
                    }
                    match self
                        .invoke("Remove-MailboxPermission", p, ctx, records)
                        .await?
                    {
                        Ran::Output(_) => {
                            removed.push(format!("{} on {}", g.rights.join("+"), g.name))
                        }
                        // The mailbox went away meanwhile: nothing of it to remove.
                        Ran::NotFound(_) => {}
                    }
                }
                let mut s = if removed.is_empty() {
                    format!("{account}: no right removed")
                } else {
                    format!("{account}: removed {}", removed.join(", "))
                };
                if !left.is_empty() {
                    s.push_str(&format!(
                        "; left, remove where granted: {}",
                        left.join(", ")
                    ));
                }
                Ok(s)
            }
            "remove_mobile_devices" => {
                let devices = self
                    .output("Get-MobileDevice", json!({ "Mailbox": id }), ctx, records)
                    .await?;
                let mut removed = Vec::new();
                for d in &devices {
                    let Some(device) = text(&d["Guid"]).or_else(|| text(&d["Identity"])) else {
                        return Err(self.perm(
                            call,
                            "Get-MobileDevice answered a device without `Guid` or `Identity`",
                        ));
                    };
                    let ran = self
                        .invoke(
                            "Remove-MobileDevice",
                            json!({ "Identity": device, "Confirm": false }),
                            ctx,
                            records,
                        )
                        .await?;
                    // A device removed meanwhile is as good as removed now.
                    if let Ran::Output(_) = ran {
                        removed.push(device_name(d));
                    }
                }
                Ok(format!(
                    "{account}: removed {} mobile device partnership(s){}",
                    removed.len(),
                    if removed.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", removed.join(", "))
                    }
                ))
            }
            "cancel_meetings" => {
                let p: MeetingsParams = self.params(call)?;
                self.output(
                    "Remove-CalendarEvents",
                    json!({
                        "Identity": id,
                        "CancelOrganizedMeetings": true,
                        "QueryWindowInDays": p.days,
                        "Confirm": false,
                    }),
                    ctx,
                    records,
                )
                .await?;
                Ok(format!(
                    "{account}: cancelled the meetings it organises in the next {} days \
                     (attendees were sent cancellations)",
                    p.days
                ))
            }
            other => Err(self.perm(call, format!("the exchange kind has no action `{other}`"))),
        }
    }

    /// The person's rights on every other mailbox, explicit and inherited (deny entries are
    /// not access and are left out).
    pub(super) async fn grants(
        &self,
        m: &Mailbox,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Grant>, ProviderError> {
        let mailboxes = self.output("Get-Mailbox", json!({}), ctx, records).await?;
        let mut out = Vec::new();
        for other in &mailboxes {
            let Some(a) = mailbox_account(other) else {
                continue;
            };
            let own = a.id.eq_ignore_ascii_case(&m.account.id)
                || text(&other["Guid"])
                    .zip(text(&m.v["Guid"]))
                    .is_some_and(|(x, y)| x.eq_ignore_ascii_case(&y));
            if own {
                continue;
            }
            let ran = self
                .invoke(
                    "Get-MailboxPermission",
                    json!({ "Identity": a.id, "User": m.account.id }),
                    ctx,
                    records,
                )
                .await?;
            // Removed since the list was read: it grants nothing any more.
            let Ran::Output(entries) = ran else {
                continue;
            };
            for e in entries {
                if flag_or(&e, "Deny", false) {
                    continue;
                }
                let r = rights(&e);
                if r.is_empty() {
                    continue;
                }
                out.push(Grant {
                    mailbox: a.id.clone(),
                    name: a.name.clone(),
                    rights: r,
                    inheritance: text(&e["InheritanceType"]),
                    inherited: flag_or(&e, "IsInherited", false),
                });
            }
        }
        Ok(out)
    }

    pub(super) fn params<T: serde::de::DeserializeOwned>(
        &self,
        call: &StepCall<'_>,
    ) -> Result<T, ProviderError> {
        params::parse(call.action, call.params).map_err(|e| self.perm(call, e))
    }

    /// A property the answer must carry: its absence means the state cannot be established.
    pub(super) fn field(
        &self,
        call: &StepCall<'_>,
        v: &Value,
        key: &str,
    ) -> Result<Value, ProviderError> {
        v.get(key)
            .cloned()
            .ok_or_else(|| self.perm(call, format!("Get-Mailbox answered no `{key}`")))
    }

    pub(super) fn flag(
        &self,
        call: &StepCall<'_>,
        v: &Value,
        key: &str,
    ) -> Result<bool, ProviderError> {
        match v.get(key) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(self.perm(call, format!("Get-Mailbox answered no true/false `{key}`"))),
        }
    }

    /// An SMTP address for `ForwardingSmtpAddress` (a `smtp:` prefix is accepted and dropped).
    pub(super) fn address(&self, call: &StepCall<'_>, raw: &str) -> Result<String, ProviderError> {
        let a = strip_smtp(raw.trim());
        let ok = a.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
        }) && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ':' || c == ',');
        if ok {
            Ok(a.to_string())
        } else {
            Err(self.perm(
                call,
                format!("`to` = {raw:?} is not an email address (was the template's value empty?)"),
            ))
        }
    }

    /// Someone Exchange can grant a right to: an address or UPN.
    pub(super) fn recipient(
        &self,
        call: &StepCall<'_>,
        raw: &str,
    ) -> Result<String, ProviderError> {
        let r = raw.trim();
        if r.is_empty() || r.chars().any(|c| c.is_control()) {
            return Err(self.perm(
                call,
                format!("`to` = {raw:?} names nobody (was the template's value empty?)"),
            ));
        }
        Ok(r.to_string())
    }
}
