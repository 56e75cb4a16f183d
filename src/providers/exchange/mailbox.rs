//! The person's mailbox: found by login, then by its recorded id; and the small readers of
//! cmdlet output (text, flags, rights, addresses).

use serde_json::{Value, json};

use super::ExchangeProvider;
use super::client::Ran;
use crate::providers::{Account, CallCtx, ProviderError, RequestRecord, StepCall};

/// The person's mailbox, or the news that the one recorded is gone.
pub(super) enum Found {
    Here(Mailbox),
    Gone(Account, String),
}

pub(super) struct Mailbox {
    pub(super) v: Value,
    pub(super) account: Account,
}

/// The account a mailbox is acted on by: its Entra object id, else its Exchange GUID.
pub(super) fn mailbox_account(v: &Value) -> Option<Account> {
    let (id, kind) = match text(&v["ExternalDirectoryObjectId"]) {
        Some(id) => (id, "ExternalDirectoryObjectId"),
        None => (text(&v["Guid"])?, "Exchange Guid"),
    };
    let name = [
        "UserPrincipalName",
        "PrimarySmtpAddress",
        "DisplayName",
        "Identity",
    ]
    .iter()
    .find_map(|k| text(&v[*k]))
    .unwrap_or_else(|| id.clone());
    Some(Account::new(id, kind, name))
}

/// A string property, `None` when absent, null or empty.
pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

pub(super) fn flag_or(v: &Value, key: &str, default: bool) -> bool {
    match v.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => default,
    }
}

/// `AccessRights` of a permission entry: a list, or one comma-separated string.
pub(super) fn rights(e: &Value) -> Vec<String> {
    match &e["AccessRights"] {
        Value::Array(a) => a.iter().filter_map(text).collect(),
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

pub(super) fn strip_smtp(s: &str) -> &str {
    match s.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("smtp:") => &s[5..],
        _ => s,
    }
}

impl ExchangeProvider {
    /// The person's mailbox: the one recorded, read by its id, or the one their login finds.
    pub(super) async fn mailbox(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Found, ProviderError> {
        if let Some(known) = call.account {
            let ran = self
                .invoke("Get-Mailbox", json!({ "Identity": known.id }), ctx, records)
                .await?;
            let values = match ran {
                Ran::NotFound(why) => return Ok(Found::Gone(known.clone(), why)),
                Ran::Output(v) => v,
            };
            return match values.as_slice() {
                [] => Ok(Found::Gone(
                    known.clone(),
                    "Get-Mailbox answered no mailbox".into(),
                )),
                [one] => {
                    let m = self.mailbox_of(call, one)?;
                    if !m.account.id.eq_ignore_ascii_case(&known.id) {
                        return Err(self.perm(
                            call,
                            format!(
                                "Get-Mailbox by the id {} answered another mailbox, {}",
                                known.id, m.account
                            ),
                        ));
                    }
                    Ok(Found::Here(m))
                }
                many => Err(self.perm(
                    call,
                    format!(
                        "Get-Mailbox by the id {} answered {} mailboxes",
                        known.id,
                        many.len()
                    ),
                )),
            };
        }
        let login = call.login.trim();
        if login.is_empty() {
            return Err(self.perm(call, "the person's login is empty"));
        }
        let not_found = |why: String| {
            ProviderError::NotFound(format!(
                "system `{}`: no mailbox for {:?}: {why}",
                self.system, call.login
            ))
        };
        let values = match self
            .invoke("Get-Mailbox", json!({ "Identity": login }), ctx, records)
            .await?
        {
            Ran::NotFound(why) => return Err(not_found(why)),
            Ran::Output(v) => v,
        };
        match values.as_slice() {
            [] => Err(not_found("Get-Mailbox answered no mailbox".into())),
            [one] => Ok(Found::Here(self.mailbox_of(call, one)?)),
            many => Err(self.perm(
                call,
                format!(
                    "{:?} matches {} mailboxes; name the person by a unique address or UPN \
                     (offboard never guesses)",
                    call.login,
                    many.len()
                ),
            )),
        }
    }

    pub(super) fn mailbox_of(
        &self,
        call: &StepCall<'_>,
        v: &Value,
    ) -> Result<Mailbox, ProviderError> {
        let account = mailbox_account(v).ok_or_else(|| {
            self.perm(
                call,
                "Get-Mailbox answered a mailbox without `ExternalDirectoryObjectId` or `Guid`",
            )
        })?;
        Ok(Mailbox {
            v: v.clone(),
            account,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes_are_named_by_their_entra_id_else_their_guid() {
        let a = mailbox_account(&json!({
            "ExternalDirectoryObjectId": "e1", "Guid": "g1", "UserPrincipalName": "a@c.com"
        }))
        .unwrap();
        assert_eq!(
            (a.id.as_str(), a.id_kind.as_str(), a.name.as_str()),
            ("e1", "ExternalDirectoryObjectId", "a@c.com")
        );
        let a = mailbox_account(&json!({
            "ExternalDirectoryObjectId": "", "Guid": "g1", "PrimarySmtpAddress": "a@c.com"
        }))
        .unwrap();
        assert_eq!((a.id.as_str(), a.id_kind.as_str()), ("g1", "Exchange Guid"));
        assert!(mailbox_account(&json!({ "DisplayName": "x" })).is_none());
        assert_eq!(
            rights(&json!({ "AccessRights": "FullAccess, ReadPermission" })),
            ["FullAccess", "ReadPermission"]
        );
        assert_eq!(strip_smtp("SMTP:a@b.c"), "a@b.c");
    }
}
