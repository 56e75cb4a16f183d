//! `exchange`: Exchange Online in one Microsoft 365 client tenant, through the admin REST
//! endpoint the ExchangeOnlineManagement (v3) PowerShell module itself calls.
//!
//! Every request is `POST {base_url}/adminapi/beta/{tenant}/InvokeCommand` with a cmdlet and
//! its parameters, `{"CmdletInput":{"CmdletName":"Set-Mailbox","Parameters":{…}}}`, an app-only
//! token for `https://outlook.office365.com/.default` (the app needs `Exchange.ManageAsApp` and
//! an Exchange role such as Exchange Administrator), and the `X-AnchorMailbox` routing header
//! of the tenant's system mailbox. Output is in `value`, paged with `@odata.nextLink` (the next
//! page is the same POST to that URL). A cmdlet's failure is an OData error whose
//! `details[].message` is `<code>|<exception type>|<text>`.
//!
//! Microsoft does not document this endpoint. Seen in public tooling that calls it (CIPP's
//! `New-ExoRequest`, the ExoHelper module, other MSP clients): the path, the body, the bearer
//! token for the Exchange resource, the system-mailbox anchor (`APP:…@{tenant GUID}`, or
//! `UPN:…@{domain}`), `Prefer: odata.maxpagesize`, `value` and `@adminapi.warnings`,
//! `@odata.nextLink` answered by POSTing the same body again, the `details` error format, and
//! the Entra object id accepted as a mailbox's `Identity`. Not confirmed, and handled either
//! way: whether a cmdlet's failure is 400 or 404 (the exception type decides, not the status),
//! whether 429 carries `Retry-After` (the request path honours it when present, else backs
//! off), and whether `-PreviewOnly`'s list comes back in `value` (PowerShell shows it on the
//! verbose stream).
//!
//! The mailbox is found by the person's login (`Get-Mailbox -Identity <login>`) and from then
//! on named by its `ExternalDirectoryObjectId` (the Entra object id, the same id the `entra`
//! kind records), or its Exchange `Guid` when it has none. Every check reads the state back
//! with a `Get-` cmdlet (or `Remove-CalendarEvents -PreviewOnly`, which changes nothing), and
//! every apply runs the check first, so a change already in place is not sent again.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::kit::http::{ALLOW_PLAIN, HttpClient, Request};
use super::kit::microsoft::{self, Tenant};
use super::{
    Account, ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, NO_PARAMS,
    ParamsSpec, Provider, ProviderError, RequestLine, RequestRecord, RestoreCheck, SettingSpec,
    StepCall, SystemConfig, params,
};

/// The resource the token is asked for.
pub const SCOPE: &str = "https://outlook.office365.com/.default";
/// Where Exchange Online answers unless `base_url` says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://outlook.office365.com";
/// The arbitration mailbox that routes app-only requests (the anchor the module and MSP
/// tooling use when no user signs in).
const SYSTEM_MAILBOX: &str = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}";
/// Results per page asked for with `Prefer: odata.maxpagesize`.
const PAGE_SIZE: u32 = 1000;
/// More pages than this is a server that never stops: an error, not a loop.
const MAX_PAGES: usize = 1000;

const SETTINGS: [SettingSpec; 6] = {
    let [tenant, client, secret, certificate, login] = microsoft::SETTINGS;
    [tenant, client, secret, certificate, login, ALLOW_PLAIN]
};

pub static KIND: KindSpec = KindSpec {
    name: "exchange",
    summary: "Exchange Online mailboxes in one Microsoft 365 tenant (app-only, through the \
              admin API of the ExchangeOnlineManagement module)",
    actions: &[
        ActionSpec {
            name: "convert_to_shared",
            summary: "`Set-Mailbox -Type Shared`, so the mailbox and its mail outlive the \
                      licence: run it before the licences are removed (a user mailbox without \
                      a licence is deleted after 30 days); the check reads \
                      `RecipientTypeDetails` = `SharedMailbox`",
            destructive: false,
            alerts_user: false,
            revokes: false,
            inverse: Inverse::Restore(
                "convert the mailbox back to its old type (a user mailbox needs its licence back \
                 first: rollback runs in reverse order, so licences removed after the conversion \
                 come back before it)",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "set_forwarding",
            summary: "`Set-Mailbox -ForwardingSmtpAddress smtp:<to> -DeliverToMailboxAndForward \
                      <keep_copy>` (and `ForwardingAddress` cleared): the mail goes to whoever \
                      takes over; the check reads both back. A handoff, not a revocation",
            destructive: false,
            alerts_user: false,
            revokes: false,
            inverse: Inverse::Restore("put the mailbox forwarding back as it was"),
            params: ParamsSpec::of::<ForwardParams>(),
        },
        ActionSpec {
            name: "disable_forwarding",
            summary: "`Set-Mailbox` with `ForwardingSmtpAddress` and `ForwardingAddress` \
                      cleared and `DeliverToMailboxAndForward` false, so no mail leaves for an \
                      address the person chose; the check reads that both are empty",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore("put the mailbox forwarding back as it was"),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "hide_from_gal",
            summary: "`Set-Mailbox -HiddenFromAddressListsEnabled $true`; the check reads it \
                      back. A mailbox synchronised from on-premises AD is refused by Exchange \
                      (set `msExchHideFromAddressLists` there)",
            destructive: false,
            alerts_user: false,
            revokes: false,
            inverse: Inverse::Restore(
                "show the mailbox in the address lists again if it was shown",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "grant_full_access",
            summary: "`Add-MailboxPermission -User <to> -AccessRights FullAccess -AutoMapping \
                      <automap>`: the successor opens the mailbox; the check finds the \
                      FullAccess entry with `Get-MailboxPermission -User <to>` (AutoMapping \
                      cannot be read back). A handoff, not a revocation",
            destructive: false,
            alerts_user: false,
            revokes: false,
            inverse: Inverse::Restore(
                "remove the FullAccess offboard granted (not one the successor held before)",
            ),
            params: ParamsSpec::of::<FullAccessParams>(),
        },
        ActionSpec {
            name: "remove_mailbox_permissions",
            summary: "removes the person's own rights on every other mailbox (FullAccess and \
                      the other mailbox permissions): `Get-Mailbox` lists the mailboxes, \
                      `Get-MailboxPermission -User <person>` finds the entries, \
                      `Remove-MailboxPermission` removes each explicit one; the summary names \
                      each mailbox and right removed. Inherited entries cannot be removed per \
                      mailbox: the check reports them and does not hold while any is left. \
                      Send As and Send on Behalf are not covered. Reads every mailbox: one \
                      request per mailbox of the tenant",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "grant the explicit rights on other mailboxes again (AutoMapping cannot be read \
                 back, so they come back without it)",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "remove_mobile_devices",
            summary: "`Get-MobileDevice -Mailbox <id>`, then `Remove-MobileDevice` for each \
                      ActiveSync partnership; the check finds none left",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(
                "a removed ActiveSync partnership comes back only when the device syncs again \
                 with the person's credentials",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "cancel_meetings",
            summary: "`Remove-CalendarEvents -CancelOrganizedMeetings -QueryWindowInDays <days>`: \
                      cancels the future meetings the person organises, which emails every \
                      attendee (so an involuntary departure holds it until access is cut). The \
                      check runs the same cmdlet with `-PreviewOnly` (nothing changes) and \
                      holds when it lists no meeting left; a cancelled meeting itself cannot be \
                      read back, so `verify` does not re-check it",
            destructive: false,
            alerts_user: true,
            revokes: false,
            inverse: Inverse::None(
                "cancelled meetings stay cancelled: the attendees were sent cancellations; the \
                 organiser sends new invitations",
            ),
            params: ParamsSpec::of::<MeetingsParams>(),
        },
    ],
    settings: &SETTINGS,
    needs_base_url: false,
    url_schemes: &["https", "http"],
    needs_token: false,
    connect,
    check_action: None,
};

fn yes() -> bool {
    true
}

fn two_years() -> u16 {
    730
}

/// `set_forwarding`'s parameters.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ForwardParams {
    /// The SMTP address mail is forwarded to, e.g. `"{{ user.manager }}"`. An address outside
    /// the tenant is delivered only if the outbound spam policy allows automatic forwarding.
    to: String,
    /// Keep a copy in the mailbox as well (`DeliverToMailboxAndForward`); default true.
    #[serde(default = "yes")]
    keep_copy: bool,
}

/// `grant_full_access`'s parameters.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct FullAccessParams {
    /// Who gets FullAccess to the mailbox: their address or UPN, e.g. `"{{ user.manager }}"`.
    to: String,
    /// Add the mailbox to their Outlook by itself (`AutoMapping`); default true.
    #[serde(default = "yes")]
    automap: bool,
}

/// `cancel_meetings`' parameters.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct MeetingsParams {
    /// How many days ahead, from today, meetings are cancelled (`QueryWindowInDays`, at most
    /// 1825); default 730. A recurring meeting with an occurrence in the window is cancelled
    /// whole.
    #[serde(default = "two_years")]
    #[schemars(range(min = 1, max = 1825))]
    days: u16,
}

/// The `X-AnchorMailbox` of app-only requests to a tenant: the system mailbox, named by the
/// tenant's GUID (`APP:`) or, for a tenant given by its domain, by address (`UPN:`).
pub fn anchor_mailbox(tenant: &str) -> String {
    if microsoft::is_guid(tenant) {
        format!("APP:{SYSTEM_MAILBOX}@{tenant}")
    } else {
        format!("UPN:{SYSTEM_MAILBOX}@{tenant}")
    }
}

/// The token's resource: the Exchange host requests go to (`https://outlook.office365.us` in
/// US Government, say), so a national cloud needs only `base_url` and `login_url`. A plain
/// `http://` base_url (a test server on this machine) stands for Exchange Online.
pub fn scope_for(base_url: &Url) -> String {
    if base_url.scheme() != "https" {
        return SCOPE.to_string();
    }
    format!("{}/.default", base_url.origin().ascii_serialization())
}

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    let tenant = Tenant::from_config(cfg)?;
    microsoft::check_credential(cfg)?;
    let mut cfg = cfg.clone();
    cfg.base_url
        .get_or_insert_with(|| DEFAULT_BASE_URL.to_string());
    let mut http = HttpClient::new(&cfg)?
        .with_accept("application/json")
        .with_error_parser(error_text)
        .with_forbidden_hint(
            "Exchange refused the cmdlet: the app registration needs the Exchange.ManageAsApp \
             application permission (admin-consented in this tenant) and an Exchange role that \
             includes the cmdlet, such as Exchange Administrator",
        )
        .with_header("x-anchormailbox", &anchor_mailbox(&tenant.id))?
        .with_header("prefer", &format!("odata.maxpagesize={PAGE_SIZE}"))?;
    if let Some(auth) = microsoft::auth_for(&cfg, &scope_for(http.base_url()))? {
        http = http.with_auth(auth);
    }
    let endpoint = http
        .endpoint(&["adminapi", "beta", &tenant.id, "InvokeCommand"])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Arc::new(ExchangeProvider {
        http,
        system: cfg.name.clone(),
        endpoint,
    }))
}

/// A configured `exchange` system: one tenant.
pub struct ExchangeProvider {
    http: HttpClient,
    system: String,
    /// `{base_url}/adminapi/beta/{tenant}/InvokeCommand`.
    endpoint: Url,
}

/// What one cmdlet answered.
enum Ran {
    /// Its output, every page.
    Output(Vec<Value>),
    /// Exchange said an object it was given does not exist
    /// (`ManagementObjectNotFoundException`), in these words.
    NotFound(String),
}

/// The person's mailbox, or the news that the one recorded is gone.
enum Found {
    Here(Mailbox),
    Gone(Account, String),
}

struct Mailbox {
    v: Value,
    account: Account,
}

/// What a check sees: whether the action's effect is in place, in words.
struct Seen {
    holds: bool,
    observed: String,
}

/// An entry of `Get-MailboxPermission`: the person's rights on another mailbox.
struct Grant {
    /// The mailbox, by the id it is acted on with.
    mailbox: String,
    /// The mailbox as people know it.
    name: String,
    rights: Vec<String>,
    inheritance: Option<String>,
    inherited: bool,
}

impl ExchangeProvider {
    fn perm(&self, call: &StepCall<'_>, msg: impl std::fmt::Display) -> ProviderError {
        ProviderError::Permanent(format!(
            "system `{}`: step `{}`: {msg}",
            self.system, call.step_id
        ))
    }

    /// Run `cmdlet` with `parameters` and read every page of its output. Each request is
    /// journaled with the cmdlet's name after the URL.
    async fn invoke(
        &self,
        cmdlet: &'static str,
        parameters: Value,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Ran, ProviderError> {
        let body = json!({ "CmdletInput": { "CmdletName": cmdlet, "Parameters": parameters } });
        // A read must say what it read; a change may answer no list at all.
        let reads = cmdlet.starts_with("Get-") || parameters["PreviewOnly"] == json!(true);
        let first = self.endpoint.clone();
        let mut next = Some(first.clone());
        let mut seen: Vec<String> = Vec::new();
        let mut values = Vec::new();
        while let Some(url) = next.take() {
            if seen.len() >= MAX_PAGES {
                return Err(ProviderError::Transient(format!(
                    "system `{}`: {cmdlet}: more than {MAX_PAGES} pages; stopped reading",
                    self.system
                )));
            }
            if seen.contains(&url.to_string()) {
                return Err(ProviderError::Permanent(format!(
                    "system `{}`: {cmdlet}: Exchange sent the same next-page link twice; stopped \
                     reading instead of looping",
                    self.system
                )));
            }
            seen.push(url.to_string());
            // Cmdlet failures come back as 400 or 404 with the cmdlet's own words; they are
            // read here, the rest (401, 403, 429, 5xx) by the request path.
            let req = Request::post(url.clone())
                .json(&body, "application/json")
                .allow(StatusCode::BAD_REQUEST)
                .allow(StatusCode::NOT_FOUND)
                .resend_safe();
            let resp = self.http.send(req, ctx).await?;
            let mut record = resp.record.clone();
            record.url = format!("{} {cmdlet}", record.url);
            records.push(record);
            if !resp.status.is_success() {
                let failure = cmdlet_error(&resp.body);
                let not_found = failure
                    .as_ref()
                    .is_some_and(|(ty, _)| ty.ends_with("ManagementObjectNotFoundException"));
                return match failure {
                    Some((_, text)) if not_found => Ok(Ran::NotFound(text)),
                    _ => Err(ProviderError::Permanent(format!(
                        "system `{}`: {cmdlet} → {}: {}",
                        self.system,
                        resp.status,
                        error_text(&resp.body).unwrap_or_else(|| "no error text".into())
                    ))),
                };
            }
            let page: Value = resp.json()?;
            match page.get("value") {
                Some(Value::Array(items)) => values.extend(items.iter().cloned()),
                None | Some(Value::Null) if !reads => {}
                _ => {
                    return Err(ProviderError::Permanent(format!(
                        "system `{}`: {cmdlet} answered without a `value` list",
                        self.system
                    )));
                }
            }
            next = match page.get("@odata.nextLink").and_then(Value::as_str) {
                None => None,
                Some(href) => Some(self.next_page(&first, &url, href)?),
            };
        }
        Ok(Ran::Output(values))
    }

    /// A next-page link, resolved against the page it came from; refused unless it stays on
    /// the first page's origin (the token goes with it).
    fn next_page(&self, first: &Url, page: &Url, href: &str) -> Result<Url, ProviderError> {
        let next = page.join(href).map_err(|e| {
            ProviderError::Permanent(format!(
                "system `{}`: the next-page link {href:?} is not a URL: {e}",
                self.system
            ))
        })?;
        if next.origin() != first.origin() {
            return Err(ProviderError::Permanent(format!(
                "system `{}`: the next page is on another origin ({}); not following it, the \
                 token would go there too",
                self.system,
                next.origin().ascii_serialization()
            )));
        }
        Ok(next)
    }

    /// A cmdlet whose output is read: a "not found" from it is an error in these words.
    async fn output(
        &self,
        cmdlet: &'static str,
        parameters: Value,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Value>, ProviderError> {
        match self.invoke(cmdlet, parameters, ctx, records).await? {
            Ran::Output(v) => Ok(v),
            Ran::NotFound(why) => Err(ProviderError::Permanent(format!(
                "system `{}`: {cmdlet}: {why}",
                self.system
            ))),
        }
    }

    /// The person's mailbox: the one recorded, read by its id, or the one their login finds.
    async fn mailbox(
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

    fn mailbox_of(&self, call: &StepCall<'_>, v: &Value) -> Result<Mailbox, ProviderError> {
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

    /// Whether the action's effect is in place on `m`, read with the matching `Get-` cmdlet.
    async fn observe(
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
    async fn change(
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
    async fn grants(
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

    fn params<T: serde::de::DeserializeOwned>(
        &self,
        call: &StepCall<'_>,
    ) -> Result<T, ProviderError> {
        params::parse(call.action, call.params).map_err(|e| self.perm(call, e))
    }

    /// A property the answer must carry: its absence means the state cannot be established.
    fn field(&self, call: &StepCall<'_>, v: &Value, key: &str) -> Result<Value, ProviderError> {
        v.get(key)
            .cloned()
            .ok_or_else(|| self.perm(call, format!("Get-Mailbox answered no `{key}`")))
    }

    fn flag(&self, call: &StepCall<'_>, v: &Value, key: &str) -> Result<bool, ProviderError> {
        match v.get(key) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(self.perm(call, format!("Get-Mailbox answered no true/false `{key}`"))),
        }
    }

    /// An SMTP address for `ForwardingSmtpAddress` (a `smtp:` prefix is accepted and dropped).
    fn address(&self, call: &StepCall<'_>, raw: &str) -> Result<String, ProviderError> {
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
    fn recipient(&self, call: &StepCall<'_>, raw: &str) -> Result<String, ProviderError> {
        let r = raw.trim();
        if r.is_empty() || r.chars().any(|c| c.is_control()) {
            return Err(self.perm(
                call,
                format!("`to` = {raw:?} names nobody (was the template's value empty?)"),
            ));
        }
        Ok(r.to_string())
    }

    /// The lines `describe` shows: the InvokeCommand URL with the cmdlet after it.
    fn line(&self, cmdlet: &str) -> RequestLine {
        RequestLine {
            method: "POST".into(),
            url: format!("{} {cmdlet}", self.endpoint),
        }
    }
}

/// The account a mailbox is acted on by: its Entra object id, else its Exchange GUID.
fn mailbox_account(v: &Value) -> Option<Account> {
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
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

fn flag_or(v: &Value, key: &str, default: bool) -> bool {
    match v.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => default,
    }
}

/// `AccessRights` of a permission entry: a list, or one comma-separated string.
fn rights(e: &Value) -> Vec<String> {
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

fn strip_smtp(s: &str) -> &str {
    match s.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("smtp:") => &s[5..],
        _ => s,
    }
}

fn forwarding_words(smtp: Option<&str>, other: Option<&str>, keep: bool) -> String {
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

fn grants_words(grants: &[Grant]) -> String {
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

fn device_name(d: &Value) -> String {
    let name = text(&d["FriendlyName"])
        .or_else(|| text(&d["DeviceModel"]))
        .or_else(|| text(&d["DeviceType"]))
        .unwrap_or_else(|| "device".into());
    match text(&d["DeviceId"]) {
        Some(id) => format!("{name} ({id})"),
        None => name,
    }
}

fn devices_words(devices: &[Value]) -> String {
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

/// The exception type and text of a cmdlet's failure: the first `details[].message`
/// (`<code>|<type>|<text>`), else `innererror.internalexception`.
fn cmdlet_error(body: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = &v["error"];
    if let Some(details) = e["details"].as_array() {
        for d in details {
            let Some(m) = d["message"].as_str() else {
                continue;
            };
            let parts: Vec<&str> = m.splitn(3, '|').collect();
            let (ty, text) = match parts.as_slice() {
                [_, ty, text] => (ty.trim(), text.trim()),
                _ => ("", m.trim()),
            };
            if !text.is_empty() {
                return Some((ty.to_string(), text.to_string()));
            }
        }
    }
    let inner = if e["innererror"].is_object() {
        &e["innererror"]
    } else {
        &e["innerError"]
    };
    let internal = if inner["internalexception"].is_object() {
        &inner["internalexception"]
    } else {
        &inner["internalException"]
    };
    let text = internal["message"].as_str().map(str::trim).unwrap_or("");
    if !text.is_empty() {
        let ty = internal["type"].as_str().unwrap_or("");
        return Some((ty.to_string(), text.to_string()));
    }
    None
}

/// Exchange's error body made readable: the cmdlet's own words first (`<Exception>: <text>`),
/// else Microsoft's OData `error.code: message`.
pub fn error_text(body: &[u8]) -> Option<String> {
    if let Some((ty, text)) = cmdlet_error(body) {
        let short = ty.rsplit('.').next().unwrap_or("");
        return Some(if short.is_empty() {
            text
        } else {
            format!("{short}: {text}")
        });
    }
    if let Some(m) = microsoft::error_message(body) {
        return Some(m);
    }
    // Exchange answers a cmdlet the app may not run with a body of NUL bytes.
    let blank = !body.is_empty() && body.iter().all(|b| *b == 0 || b.is_ascii_whitespace());
    blank.then(|| "Exchange sent no error text".to_string())
}

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
fn restored_fields(action: &str) -> &'static [&'static str] {
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
fn mailbox_type(details: &str) -> Option<&'static str> {
    match details {
        "UserMailbox" => Some("Regular"),
        "SharedMailbox" => Some("Shared"),
        "RoomMailbox" => Some("Room"),
        "EquipmentMailbox" => Some("Equipment"),
        _ => None,
    }
}

/// The pre-state of `remove_mailbox_permissions`: the person's rights on other mailboxes.
fn grants_before(account: &Account, grants: &[Grant]) -> Value {
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
fn same_value(a: Option<&Value>, b: Option<&Value>) -> bool {
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
    async fn pre_state(
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
    async fn explicit_rights(
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
    async fn restore_target(
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

    async fn restore_mailbox(
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

    async fn check_mailbox_restored(
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

    fn describe_mailbox_restore(&self, call: &StepCall<'_>, before: &Value) -> Vec<RequestLine> {
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

#[async_trait]
impl Provider for ExchangeProvider {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        let mut lines = vec![self.line(&format!("Get-Mailbox -Identity {}", call.login))];
        let p = call.params;
        let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let b = |k: &str| p.get(k).and_then(Value::as_bool).unwrap_or(true);
        match call.action {
            "convert_to_shared" => {
                lines.push(self.line("Get-Mailbox -Identity {id} (RecipientTypeDetails)"));
                lines.push(self.line("Set-Mailbox -Identity {id} -Type Shared"));
            }
            "set_forwarding" => {
                lines.push(self.line(&format!(
                    "Set-Mailbox -Identity {{id}} -ForwardingSmtpAddress smtp:{} \
                     -ForwardingAddress $null -DeliverToMailboxAndForward ${}",
                    strip_smtp(s("to").trim()),
                    b("keep_copy")
                )));
            }
            "disable_forwarding" => {
                lines.push(self.line(
                    "Set-Mailbox -Identity {id} -ForwardingSmtpAddress $null -ForwardingAddress \
                     $null -DeliverToMailboxAndForward $false",
                ));
            }
            "hide_from_gal" => {
                lines.push(
                    self.line("Set-Mailbox -Identity {id} -HiddenFromAddressListsEnabled $true"),
                );
            }
            "grant_full_access" => {
                let to = s("to");
                lines.push(self.line(&format!(
                    "Get-MailboxPermission -Identity {{id}} -User {to}"
                )));
                lines.push(self.line(&format!(
                    "Add-MailboxPermission -Identity {{id}} -User {to} -AccessRights FullAccess \
                     -AutoMapping ${} -InheritanceType All",
                    b("automap")
                )));
            }
            "remove_mailbox_permissions" => {
                lines.push(self.line("Get-Mailbox (every mailbox, every page)"));
                lines.push(self.line("Get-MailboxPermission -Identity {mailbox} -User {id}"));
                lines.push(self.line(
                    "Remove-MailboxPermission -Identity {mailbox} -User {id} -AccessRights \
                     {rights} -Confirm:$false",
                ));
            }
            "remove_mobile_devices" => {
                lines.push(self.line("Get-MobileDevice -Mailbox {id}"));
                lines.push(self.line("Remove-MobileDevice -Identity {device} -Confirm:$false"));
            }
            "cancel_meetings" => {
                let days = p.get("days").and_then(Value::as_u64).unwrap_or(730);
                lines.push(self.line(&format!(
                    "Remove-CalendarEvents -Identity {{id}} -CancelOrganizedMeetings \
                     -QueryWindowInDays {days} -PreviewOnly"
                )));
                lines.push(self.line(&format!(
                    "Remove-CalendarEvents -Identity {{id}} -CancelOrganizedMeetings \
                     -QueryWindowInDays {days} -Confirm:$false"
                )));
            }
            _ => return Vec::new(),
        }
        lines
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let mut records = Vec::new();
        let m = match self.mailbox(call, ctx, &mut records).await? {
            Found::Gone(account, why) => {
                return Ok(ApplyOutcome {
                    changed: false,
                    summary: format!("{account}: mailbox gone ({why})"),
                    requests: records,
                    account: Some(account),
                });
            }
            Found::Here(m) => m,
        };
        ctx.identified(&m.account);
        if let Some(state) = self.pre_state(call, &m, ctx, &mut records).await? {
            ctx.before(&state);
        }
        let before = self.observe(call, &m, ctx, &mut records).await?;
        if before.holds {
            if call.action == "remove_mailbox_permissions" {
                // Nothing to remove (read just now by the check): nothing for rollback either.
                ctx.before(&grants_before(&m.account, &[]));
            }
            return Ok(ApplyOutcome {
                changed: false,
                summary: format!("{}: already {}", m.account, before.observed),
                requests: records,
                account: Some(m.account),
            });
        }
        let summary = self.change(call, &m, ctx, &mut records).await?;
        Ok(ApplyOutcome {
            changed: true,
            summary,
            requests: records,
            account: Some(m.account),
        })
    }

    /// The check, read-only, except for `remove_mailbox_permissions`, whose check reads every
    /// mailbox of the tenant: before anything is cut, finding the person's mailbox is enough.
    async fn preflight(&self, call: &StepCall<'_>, ctx: &CallCtx) -> Result<String, ProviderError> {
        if call.action == "remove_mailbox_permissions" {
            let mut records = Vec::new();
            return Ok(match self.mailbox(call, ctx, &mut records).await? {
                Found::Here(m) => format!(
                    "found {}; its rights on other mailboxes are read when the step runs (one \
                     request per mailbox)",
                    m.account
                ),
                Found::Gone(a, why) => format!("{a}: mailbox gone ({why})"),
            });
        }
        let c = self.check(call, ctx).await?;
        Ok(match c.account {
            Some(a) => format!("found {a}"),
            None => c.observed,
        })
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let mut records = Vec::new();
        match self.mailbox(call, ctx, &mut records).await? {
            Found::Gone(account, why) => Ok(CheckOutcome {
                revoked: true,
                observed: format!("mailbox gone ({why})"),
                account: Some(account),
            }),
            Found::Here(m) => {
                let seen = self.observe(call, &m, ctx, &mut records).await?;
                Ok(CheckOutcome {
                    revoked: seen.holds,
                    observed: seen.observed,
                    account: Some(m.account),
                })
            }
        }
    }
    async fn restore(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "convert_to_shared"
            | "set_forwarding"
            | "disable_forwarding"
            | "hide_from_gal"
            | "grant_full_access"
            | "remove_mailbox_permissions" => self.restore_mailbox(call, before, ctx).await,
            other => Err(self.perm(
                call,
                format!("action `{other}` cannot be undone by offboard (see the rollback plan)"),
            )),
        }
    }

    fn describe_restore(&self, call: &StepCall<'_>, before: &Value) -> Vec<RequestLine> {
        self.describe_mailbox_restore(call, before)
    }

    async fn check_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        match call.action {
            "convert_to_shared"
            | "set_forwarding"
            | "disable_forwarding"
            | "hide_from_gal"
            | "grant_full_access"
            | "remove_mailbox_permissions" => self.check_mailbox_restored(call, before, ctx).await,
            other => Err(self.perm(
                call,
                format!("action `{other}` cannot be undone by offboard (see the rollback plan)"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = "8f5e1b9c-3d2a-4e6f-9a7b-0c1d2e3f4a5b";

    fn cfg(settings: &[(&str, &str)]) -> SystemConfig {
        let mut c = SystemConfig::new("contoso-exo", "exchange", None);
        for (k, v) in settings {
            c.settings
                .insert((*k).into(), toml::Value::String((*v).into()));
        }
        c
    }

    fn planned() -> SystemConfig {
        let mut c = cfg(&[("tenant_id", GUID), ("client_id", "app")]);
        c.settings.insert(
            "client_secret".into(),
            toml::Value::Table(toml::map::Map::from_iter([(
                "env".to_string(),
                toml::Value::String("EXO_SECRET".into()),
            )])),
        );
        c
    }

    #[test]
    fn anchors_name_the_tenants_system_mailbox() {
        assert_eq!(
            anchor_mailbox(GUID),
            format!("APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{GUID}")
        );
        assert_eq!(
            anchor_mailbox("contoso.onmicrosoft.com"),
            "UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.onmicrosoft.com"
        );
    }

    /// Planning connects with no secret and no base_url: the default host, the tenant in the
    /// path, the cmdlet after each line.
    #[test]
    fn describe_defaults_to_exchange_online() {
        let p = (KIND.connect)(&planned()).unwrap();
        let params = json!({ "to": "bob@contoso.com", "keep_copy": false });
        let call = StepCall {
            step_id: "fwd",
            action: "set_forwarding",
            login: "alice@contoso.com",
            params: params.as_object().unwrap(),
            account: None,
        };
        let lines: Vec<String> = p.describe(&call).iter().map(ToString::to_string).collect();
        let base = format!("POST https://outlook.office365.com/adminapi/beta/{GUID}/InvokeCommand");
        assert_eq!(
            lines,
            [
                format!("{base} Get-Mailbox -Identity alice@contoso.com"),
                format!(
                    "{base} Set-Mailbox -Identity {{id}} -ForwardingSmtpAddress smtp:bob@contoso.com -ForwardingAddress $null -DeliverToMailboxAndForward $false"
                ),
            ]
        );
    }

    #[test]
    fn the_token_is_for_the_exchange_host_of_the_cloud() {
        let scope = |u: &str| scope_for(&Url::parse(u).unwrap());
        assert_eq!(scope(DEFAULT_BASE_URL), SCOPE);
        assert_eq!(
            scope("https://outlook.office365.us/"),
            "https://outlook.office365.us/.default"
        );
        assert_eq!(scope("http://127.0.0.1:8080"), SCOPE);
    }

    #[test]
    fn a_credential_is_required_and_only_one() {
        let e = (KIND.connect)(&cfg(&[("tenant_id", GUID), ("client_id", "app")]))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("client_secret") && e.contains("certificate"),
            "{e}"
        );
        let mut both = planned();
        both.settings
            .insert("certificate".into(), toml::Value::String("x".into()));
        let e = (KIND.connect)(&both).err().unwrap().to_string();
        assert!(e.contains("not both"), "{e}");
        let e = (KIND.connect)(&cfg(&[("tenant_id", "contoso"), ("client_id", "app")]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("tenant_id"), "{e}");
    }

    #[test]
    fn cmdlet_errors_read_as_exchange_writes_them() {
        let body = br#"{"error":{"code":"NotFound","message":"Error executing cmdlet","details":[{"code":"Client","target":"","message":"Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation couldn't be performed because object 'x@contoso.com' couldn't be found on 'AM0PR01DC001.EURPRD01.PROD.OUTLOOK.COM'."}],"innererror":{"message":"Error executing cmdlet","type":"Microsoft.Exchange.Admin.OData.Core.ODataServiceException"}}}"#;
        let (ty, text) = cmdlet_error(body).unwrap();
        assert!(ty.ends_with("ManagementObjectNotFoundException"), "{ty}");
        assert!(text.starts_with("The operation couldn't"), "{text}");
        assert_eq!(
            error_text(body).unwrap(),
            "ManagementObjectNotFoundException: The operation couldn't be performed because object 'x@contoso.com' couldn't be found on 'AM0PR01DC001.EURPRD01.PROD.OUTLOOK.COM'."
        );
        // No details: the internal exception, else the OData code and message.
        let body = br#"{"error":{"code":"BadRequest","message":"Error executing cmdlet","innererror":{"message":"m","type":"t","internalexception":{"message":"A parameter cannot be found that matches parameter name 'Typ'.","type":"System.Management.Automation.ParameterBindingException"}}}}"#;
        assert_eq!(
            error_text(body).unwrap(),
            "ParameterBindingException: A parameter cannot be found that matches parameter name 'Typ'."
        );
        let body = br#"{"error":{"code":"Unauthorized","message":"User is not allowed to call Get-Mailbox"}}"#;
        assert_eq!(
            error_text(body).unwrap(),
            "Unauthorized: User is not allowed to call Get-Mailbox"
        );
        assert_eq!(
            error_text(&[0, 0, 0, 0]).unwrap(),
            "Exchange sent no error text"
        );
        assert_eq!(error_text(b""), None);
    }

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
