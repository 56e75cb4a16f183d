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
//!
//! The code lives by layer: `client` (InvokeCommand, paging, cmdlet errors), `mailbox` (the
//! lookup and the readers of cmdlet output), `actions` (every action's check and apply) and
//! `undo` (pre-state and restores); this file holds the action table, `connect` and the
//! `Provider` dispatch.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::kit::http::{ALLOW_PLAIN, HttpClient};
use super::kit::microsoft::{self, Tenant};
use super::{
    ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, NO_PARAMS, ParamsSpec,
    Provider, ProviderError, RequestLine, RestoreCheck, SettingSpec, StepCall, SystemConfig,
};
use mailbox::{Found, strip_smtp};
use undo::grants_before;

mod actions;
mod client;
mod mailbox;
mod undo;

pub use client::error_text;

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

impl ExchangeProvider {}

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
    use serde_json::json;

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
}
