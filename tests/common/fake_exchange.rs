//! A fake of Exchange Online's admin API, the endpoint the ExchangeOnlineManagement v3 module
//! calls: `POST /adminapi/beta/{tenant}/InvokeCommand` with
//! `{"CmdletInput":{"CmdletName":…,"Parameters":{…}}}`, on the fake-server kit.
//!
//! It keeps mailboxes, mailbox permissions, mobile devices and organised meetings, and runs
//! the cmdlets the `exchange` kind sends against them, answering as the service does (as far
//! as public tooling shows it; see the module docs of src/providers/exchange/mod.rs): output in
//! `value` with `@adminapi.warnings`, lists paged by `@odata.nextLink` (the same POST to that
//! URL, honouring `Prefer: odata.maxpagesize`), a cmdlet's failure as an OData error whose
//! `details[].message` is `<code>|<exception type>|<text>` (404 for
//! `ManagementObjectNotFoundException`, 400 otherwise), 403 with a body of NUL bytes for a
//! cmdlet the app may not run, 401 for any token but the one issued, and a refusal of a
//! request without the tenant's `X-AnchorMailbox`. Unknown parameters are refused as
//! PowerShell refuses them (`ParameterBindingException`).

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::fake_kit::{
    Contract, FakeServer, Operation, QueryValue, Recorded, Reply, Req, Routes, Shape, obj,
};

/// The path of every request.
pub const PATH: &str = "/adminapi/beta/{tenant}/InvokeCommand";
/// The system mailbox app-only requests are anchored on.
pub const SYSTEM_MAILBOX: &str = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}";
/// The domain controller Exchange names in its "couldn't be found on" messages.
const DC: &str = "AM0PR01A001DC01.EURPR01A001.PROD.OUTLOOK.COM";

#[derive(Debug, Clone, PartialEq)]
pub struct FakeMailbox {
    pub guid: String,
    /// `ExternalDirectoryObjectId`: the Entra object id.
    pub object_id: String,
    pub upn: String,
    pub smtp: String,
    pub display_name: String,
    /// `RecipientTypeDetails`: `UserMailbox`, `SharedMailbox`, `RoomMailbox`…
    pub type_details: String,
    /// As Exchange shows it: `smtp:addr`.
    pub forwarding_smtp: Option<String>,
    pub forwarding_address: Option<String>,
    pub deliver_and_forward: bool,
    pub hidden: bool,
    /// Synchronised from on-premises AD: some properties can only be set there.
    pub dir_synced: bool,
    /// Future meetings it organises, with attendees: (subject, days from today).
    pub meetings: Vec<(String, u32)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FakePermission {
    /// The mailbox's guid.
    pub mailbox: String,
    /// Who holds it: a mailbox's guid.
    pub user: String,
    pub rights: Vec<String>,
    pub inherited: bool,
    pub deny: bool,
    pub automap: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FakeDevice {
    pub guid: String,
    /// The mailbox's guid.
    pub mailbox: String,
    pub name: String,
    pub device_id: String,
}

#[derive(Default)]
struct State {
    mailboxes: Vec<FakeMailbox>,
    permissions: Vec<FakePermission>,
    devices: Vec<FakeDevice>,
    /// Most results per page, whatever `Prefer` asks.
    page_size: Option<usize>,
    /// Cmdlets the app's Exchange role does not include.
    forbidden: Vec<String>,
    /// Cancellations sent to attendees (one per meeting cancelled).
    cancellations: usize,
    next: u32,
}

pub struct FakeExchange {
    pub server: FakeServer,
    /// The tenant in the path and the anchor (a GUID or a domain).
    pub tenant: String,
    pub token: String,
    state: Arc<Mutex<State>>,
}

/// The anchor an app-only request to `tenant` must carry.
pub fn anchor_for(tenant: &str) -> String {
    let guid = tenant.len() == 36 && tenant.chars().filter(|c| *c == '-').count() == 4;
    if guid {
        format!("APP:{SYSTEM_MAILBOX}@{tenant}")
    } else {
        format!("UPN:{SYSTEM_MAILBOX}@{tenant}")
    }
}

/// An OData error as InvokeCommand writes a cmdlet's failure.
pub fn cmdlet_error(status: u16, exception: &str, text: &str) -> Reply {
    let code = if status == 404 {
        "NotFound"
    } else {
        "BadRequest"
    };
    Reply::json(
        status,
        &json!({ "error": {
            "code": code,
            "message": "Error executing cmdlet",
            "details": [{
                "code": "Client",
                "target": "",
                "message": format!("Ex6F9304|{exception}|{text}"),
            }],
            "innererror": {
                "message": "Error executing cmdlet",
                "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
            },
        }}),
    )
}

const NOT_FOUND: &str = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException";

fn not_found(what: &str) -> Reply {
    cmdlet_error(
        404,
        NOT_FOUND,
        &format!(
            "The operation couldn't be performed because object '{what}' couldn't be found on '{DC}'."
        ),
    )
}

fn binding(text: &str) -> Reply {
    cmdlet_error(
        400,
        "System.Management.Automation.ParameterBindingException",
        text,
    )
}

/// An error for a request the service refuses before running any cmdlet.
fn odata(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({ "error": { "code": code, "message": message } }),
    )
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn strip_smtp(s: &str) -> &str {
    match s.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("smtp:") => &s[5..],
        _ => s,
    }
}

impl State {
    fn find(&self, identity: &str) -> Option<usize> {
        let id = strip_smtp(identity.trim());
        self.mailboxes.iter().position(|m| {
            eq(&m.guid, id) || eq(&m.object_id, id) || eq(&m.upn, id) || eq(&m.smtp, id)
        })
    }
}

fn render(m: &FakeMailbox) -> Value {
    let alias = m.upn.split('@').next().unwrap_or("").to_string();
    json!({
        "Identity": m.display_name,
        "Name": alias,
        "Alias": alias,
        "DisplayName": m.display_name,
        "Guid": m.guid,
        "ExchangeGuid": format!("e{}", &m.guid[1..]),
        "ExternalDirectoryObjectId": m.object_id,
        "UserPrincipalName": m.upn,
        "PrimarySmtpAddress": m.smtp,
        "RecipientTypeDetails": m.type_details,
        "ForwardingAddress": m.forwarding_address,
        "ForwardingSmtpAddress": m.forwarding_smtp,
        "DeliverToMailboxAndForward": m.deliver_and_forward,
        "HiddenFromAddressListsEnabled": m.hidden,
        "IsDirSynced": m.dir_synced,
    })
}

/// The answer of a cmdlet that ran: its output and warnings, one page of them.
struct Output {
    values: Vec<Value>,
    warnings: Vec<String>,
}

impl Output {
    fn of(values: Vec<Value>) -> Output {
        Output {
            values,
            warnings: Vec::new(),
        }
    }
    fn warn(w: String) -> Output {
        Output {
            values: Vec::new(),
            warnings: vec![w],
        }
    }
}

/// The parameters of a call, refusing any the cmdlet does not have.
struct Params<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Params<'a> {
    fn new(map: &'a Map<String, Value>, allowed: &[&str]) -> Result<Params<'a>, Reply> {
        for k in map.keys() {
            if !allowed.iter().any(|a| eq(a, k)) {
                return Err(binding(&format!(
                    "A parameter cannot be found that matches parameter name '{k}'."
                )));
            }
        }
        Ok(Params { map })
    }
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.iter().find(|(k, _)| eq(k, name)).map(|(_, v)| v)
    }
    fn string(&self, name: &str) -> Result<Option<String>, Reply> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(binding(&format!(
                "Cannot bind parameter '{name}'. Cannot convert value \"{other}\" to type \"System.String\"."
            ))),
        }
    }
    fn required(&self, name: &str) -> Result<String, Reply> {
        self.string(name)?.ok_or_else(|| {
            binding(&format!(
                "Cannot validate argument on parameter '{name}'. The argument is null or empty."
            ))
        })
    }
    fn bool(&self, name: &str) -> Result<Option<bool>, Reply> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(binding(&format!(
                "Cannot process argument transformation on parameter '{name}'. Cannot convert value \"{other}\" to type \"System.Boolean\"."
            ))),
        }
    }
    fn strings(&self, name: &str) -> Result<Vec<String>, Reply> {
        match self.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => Ok(a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()),
            Some(other) => Err(binding(&format!(
                "Cannot bind parameter '{name}' to the value \"{other}\"."
            ))),
        }
    }
}

const RIGHTS: &[&str] = &[
    "FullAccess",
    "ReadPermission",
    "ChangePermission",
    "ChangeOwner",
    "DeleteItem",
    "ExternalAccount",
    "SendAs",
];

fn permission_entry(s: &State, p: &FakePermission) -> Value {
    let mbx = s.mailboxes.iter().find(|m| m.guid == p.mailbox);
    let user = s.mailboxes.iter().find(|m| m.guid == p.user);
    json!({
        "Identity": mbx.map(|m| m.display_name.clone()),
        "User": user.map(|m| m.upn.clone()),
        "AccessRights": p.rights,
        "IsInherited": p.inherited,
        "Deny": p.deny,
        "InheritanceType": "All",
    })
}

fn run(s: &mut State, cmdlet: &str, p: &Map<String, Value>) -> Result<Output, Reply> {
    match cmdlet {
        "Get-Mailbox" => {
            let p = Params::new(p, &["Identity", "ResultSize"])?;
            match p.string("Identity")? {
                Some(id) => match s.find(&id) {
                    Some(i) => Ok(Output::of(vec![render(&s.mailboxes[i])])),
                    None => Err(not_found(&id)),
                },
                None => Ok(Output::of(s.mailboxes.iter().map(render).collect())),
            }
        }
        "Set-Mailbox" => {
            let p = Params::new(
                p,
                &[
                    "Identity",
                    "Type",
                    "ForwardingSmtpAddress",
                    "ForwardingAddress",
                    "DeliverToMailboxAndForward",
                    "HiddenFromAddressListsEnabled",
                    "Confirm",
                ],
            )?;
            let id = p.required("Identity")?;
            let i = s.find(&id).ok_or_else(|| not_found(&id))?;
            let forward_to = match p.get("ForwardingAddress") {
                Some(Value::String(r)) => {
                    // Exchange shows ForwardingAddress as the recipient's name and takes any
                    // identity of it back, the name included.
                    let j = s
                        .find(r)
                        .or_else(|| s.mailboxes.iter().position(|m| eq(&m.display_name, r)))
                        .ok_or_else(|| not_found(r))?;
                    Some(Some(s.mailboxes[j].display_name.clone()))
                }
                Some(Value::Null) => Some(None),
                None => None,
                Some(other) => {
                    return Err(binding(&format!(
                        "Cannot bind parameter 'ForwardingAddress' to the value \"{other}\"."
                    )));
                }
            };
            let before = s.mailboxes[i].clone();
            let m = &mut s.mailboxes[i];
            if let Some(t) = p.string("Type")? {
                m.type_details = match t.as_str() {
                    "Regular" => "UserMailbox",
                    "Shared" => "SharedMailbox",
                    "Room" => "RoomMailbox",
                    "Equipment" => "EquipmentMailbox",
                    _ => {
                        return Err(binding(&format!(
                            "Cannot process argument transformation on parameter 'Type'. Cannot convert value \"{t}\" to type \"Microsoft.Exchange.Management.RecipientTasks.ConvertibleMailboxSubType\"."
                        )));
                    }
                }
                .into();
            }
            if p.get("ForwardingSmtpAddress").is_some() {
                m.forwarding_smtp = p
                    .string("ForwardingSmtpAddress")?
                    .map(|a| format!("smtp:{}", strip_smtp(&a)));
            }
            if let Some(f) = forward_to {
                m.forwarding_address = f;
            }
            if let Some(b) = p.bool("DeliverToMailboxAndForward")? {
                m.deliver_and_forward = b;
            }
            if let Some(h) = p.bool("HiddenFromAddressListsEnabled")? {
                if m.dir_synced {
                    let name = m.display_name.clone();
                    *m = before;
                    return Err(cmdlet_error(
                        400,
                        "Microsoft.Exchange.Configuration.Tasks.TaskInvalidOperationException",
                        &format!(
                            "The operation on mailbox \"{name}\" failed because it's out of the current user's write scope. The action 'Set-Mailbox', 'HiddenFromAddressListsEnabled', can't be performed on the object '{name}' because the object is being synchronized from your on-premises organization. This action should be performed on the object in your on-premises organization."
                        ),
                    ));
                }
                m.hidden = h;
            }
            if *m == before {
                return Ok(Output::warn(format!(
                    "The command completed successfully but no settings of '{}' have been modified.",
                    m.display_name
                )));
            }
            Ok(Output::of(Vec::new()))
        }
        "Get-MailboxPermission" => {
            let p = Params::new(p, &["Identity", "User"])?;
            let id = p.required("Identity")?;
            let i = s.find(&id).ok_or_else(|| not_found(&id))?;
            let mbx = s.mailboxes[i].guid.clone();
            let user = match p.string("User")? {
                Some(u) => Some(
                    s.find(&u)
                        .map(|j| s.mailboxes[j].guid.clone())
                        .ok_or_else(|| not_found(&u))?,
                ),
                None => None,
            };
            let mut out: Vec<Value> = Vec::new();
            if user.is_none() {
                out.push(json!({
                    "Identity": s.mailboxes[i].display_name,
                    "User": "NT AUTHORITY\\SELF",
                    "AccessRights": ["FullAccess", "ReadPermission"],
                    "IsInherited": false,
                    "Deny": false,
                    "InheritanceType": "All",
                }));
            }
            for perm in s
                .permissions
                .iter()
                .filter(|x| x.mailbox == mbx && user.as_ref().is_none_or(|u| *u == x.user))
            {
                out.push(permission_entry(s, perm));
            }
            Ok(Output::of(out))
        }
        "Add-MailboxPermission" => {
            let p = Params::new(
                p,
                &[
                    "Identity",
                    "User",
                    "AccessRights",
                    "AutoMapping",
                    "InheritanceType",
                    "Confirm",
                ],
            )?;
            let id = p.required("Identity")?;
            let i = s.find(&id).ok_or_else(|| not_found(&id))?;
            let u = p.required("User")?;
            let j = s.find(&u).ok_or_else(|| not_found(&u))?;
            let rights = p.strings("AccessRights")?;
            if rights.is_empty() || rights.iter().any(|r| !RIGHTS.contains(&r.as_str())) {
                return Err(binding(&format!(
                    "Cannot process argument transformation on parameter 'AccessRights'. Cannot convert value \"{rights:?}\" to type \"Microsoft.Exchange.Management.RecipientTasks.MailboxRights[]\"."
                )));
            }
            let (mbx, user) = (s.mailboxes[i].guid.clone(), s.mailboxes[j].guid.clone());
            let automap = p.bool("AutoMapping")?;
            let at = s
                .permissions
                .iter()
                .position(|x| x.mailbox == mbx && x.user == user && !x.inherited && !x.deny);
            let at = match at {
                Some(k) => k,
                None => {
                    s.permissions.push(FakePermission {
                        mailbox: mbx,
                        user,
                        rights: Vec::new(),
                        inherited: false,
                        deny: false,
                        automap: None,
                    });
                    s.permissions.len() - 1
                }
            };
            let perm = &mut s.permissions[at];
            for r in rights {
                if !perm.rights.contains(&r) {
                    perm.rights.push(r);
                }
            }
            perm.automap = automap.or(perm.automap);
            let entry = permission_entry(s, &s.permissions[at].clone());
            Ok(Output::of(vec![entry]))
        }
        "Remove-MailboxPermission" => {
            let p = Params::new(
                p,
                &[
                    "Identity",
                    "User",
                    "AccessRights",
                    "InheritanceType",
                    "Confirm",
                ],
            )?;
            let id = p.required("Identity")?;
            let i = s.find(&id).ok_or_else(|| not_found(&id))?;
            let u = p.required("User")?;
            let j = s.find(&u).ok_or_else(|| not_found(&u))?;
            let rights = p.strings("AccessRights")?;
            let (mbx, user) = (s.mailboxes[i].guid.clone(), s.mailboxes[j].guid.clone());
            let at = s
                .permissions
                .iter()
                .position(|x| x.mailbox == mbx && x.user == user && !x.inherited && !x.deny);
            let Some(at) =
                at.filter(|k| rights.iter().any(|r| s.permissions[*k].rights.contains(r)))
            else {
                return Ok(Output::warn(format!(
                    "Can't remove the access control entry on the object '{}' for account '{}' because the ACE doesn't exist on the object.",
                    s.mailboxes[i].display_name, s.mailboxes[j].upn
                )));
            };
            s.permissions[at].rights.retain(|r| !rights.contains(r));
            if s.permissions[at].rights.is_empty() {
                s.permissions.remove(at);
            }
            Ok(Output::of(Vec::new()))
        }
        "Get-MobileDevice" => {
            let p = Params::new(p, &["Mailbox"])?;
            let id = p.required("Mailbox")?;
            let i = s.find(&id).ok_or_else(|| not_found(&id))?;
            let m = &s.mailboxes[i];
            let alias = m.upn.split('@').next().unwrap_or("");
            Ok(Output::of(
                s.devices
                    .iter()
                    .filter(|d| d.mailbox == m.guid)
                    .map(|d| {
                        json!({
                            "Identity": format!("{alias}\\ExchangeActiveSyncDevices\\{}§{}", d.name, d.device_id),
                            "Guid": d.guid,
                            "DeviceId": d.device_id,
                            "FriendlyName": d.name,
                            "DeviceModel": d.name,
                            "DeviceType": "iPhone",
                        })
                    })
                    .collect(),
            ))
        }
        "Remove-MobileDevice" => {
            let p = Params::new(p, &["Identity", "Confirm"])?;
            let id = p.required("Identity")?;
            match s
                .devices
                .iter()
                .position(|d| eq(&d.guid, &id) || id.ends_with(&format!("§{}", d.device_id)))
            {
                Some(k) => {
                    s.devices.remove(k);
                    Ok(Output::of(Vec::new()))
                }
                None => Err(not_found(&id)),
            }
        }
        "Remove-CalendarEvents" => {
            let p = Params::new(
                p,
                &[
                    "Identity",
                    "CancelOrganizedMeetings",
                    "QueryWindowInDays",
                    "QueryStartDate",
                    "PreviewOnly",
                    "Confirm",
                ],
            )?;
            let id = p.required("Identity")?;
            let i = s.find(&id).ok_or_else(|| not_found(&id))?;
            let window = match p.get("QueryWindowInDays") {
                None => u32::MAX,
                Some(v) => match v.as_u64() {
                    Some(n @ 1..=1825) => n as u32,
                    _ => {
                        return Err(cmdlet_error(
                            400,
                            "Microsoft.Exchange.Configuration.Tasks.TaskArgumentException",
                            "The maximum time period allowed for cancelling meetings is 1825 days.",
                        ));
                    }
                },
            };
            if p.bool("CancelOrganizedMeetings")? != Some(true) {
                return Ok(Output::of(Vec::new()));
            }
            let preview = p.bool("PreviewOnly")? == Some(true);
            let m = &mut s.mailboxes[i];
            let hit: Vec<Value> = m
                .meetings
                .iter()
                .filter(|(_, d)| *d < window)
                .map(|(subject, d)| json!({ "Subject": subject, "StartsInDays": d }))
                .collect();
            if preview {
                return Ok(Output::of(hit));
            }
            m.meetings.retain(|(_, d)| *d >= window);
            s.cancellations += hit.len();
            Ok(Output::of(Vec::new()))
        }
        _ => Err(forbidden()),
    }
}

/// How Exchange refuses a cmdlet the app may not run (or that does not exist): 403 with a
/// body of NUL bytes.
fn forbidden() -> Reply {
    Reply {
        status: 403,
        headers: vec![("content-type".into(), "application/json".into())],
        body: vec![0; 16],
    }
}

fn handle(state: &Mutex<State>, tenant: &str, token: &str, base: &str, r: &Req<'_>) -> Reply {
    if r.header("authorization") != Some(format!("Bearer {token}").as_str()) {
        return Reply::empty(401).header(
            "www-authenticate",
            "Bearer client_id=\"00000002-0000-0ff1-ce00-000000000000\", error=\"invalid_token\"",
        );
    }
    if !eq(r.param("tenant"), tenant) {
        return odata(
            401,
            "Unauthorized",
            "The token is not valid for this organization.",
        );
    }
    if r.header("x-anchormailbox") != Some(anchor_for(tenant).as_str()) {
        return odata(
            400,
            "BadRequest",
            "X-AnchorMailbox is missing or names a mailbox outside this organization.",
        );
    }
    let Some(input) = r.json.and_then(|j| j.get("CmdletInput")) else {
        return odata(400, "BadRequest", "The request body has no CmdletInput.");
    };
    let (Some(cmdlet), Some(params)) = (
        input.get("CmdletName").and_then(Value::as_str),
        input.get("Parameters").and_then(Value::as_object),
    ) else {
        return odata(
            400,
            "BadRequest",
            "CmdletInput needs a CmdletName and a Parameters object.",
        );
    };
    let mut s = state.lock().unwrap();
    if s.forbidden.iter().any(|c| eq(c, cmdlet)) {
        return forbidden();
    }
    let out = match run(&mut s, cmdlet, params) {
        Ok(o) => o,
        Err(reply) => return reply,
    };
    // Paging: `$skiptoken` is the offset, the page size the smaller of what `Prefer` asks and
    // the server's own limit.
    let asked = r
        .header("prefer")
        .and_then(|p| p.split("odata.maxpagesize=").nth(1))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(1000);
    let size = s.page_size.map_or(asked, |m| m.min(asked)).max(1);
    let skip: usize = r
        .query("$skiptoken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let page: Vec<Value> = out.values.iter().skip(skip).take(size).cloned().collect();
    let mut body = json!({
        "@odata.context": format!("{base}/adminapi/beta/{tenant}/$metadata#Collection(Exchange.GenericHashTable)"),
        "adminapi.warnings@odata.type": "#Collection(String)",
        "@adminapi.warnings": out.warnings,
        "value": page,
    });
    if skip + size < out.values.len() {
        body["@odata.nextLink"] = json!(format!(
            "{base}/adminapi/beta/{tenant}/InvokeCommand?$skiptoken={}",
            skip + size
        ));
    }
    Reply::json(200, &body)
}

impl FakeExchange {
    /// Start on 127.0.0.1 for `tenant`, accepting `token` only.
    pub async fn start(tenant: &str, token: &str) -> FakeExchange {
        let state: Arc<Mutex<State>> = Arc::default();
        let base: Arc<std::sync::OnceLock<String>> = Arc::default();
        let (st, t, tok, b) = (
            state.clone(),
            tenant.to_string(),
            token.to_string(),
            base.clone(),
        );
        let routes = Routes::new()
            .error_reply(|status, msg| {
                if status == 429 {
                    // Throttling answers in plain words.
                    Reply {
                        status,
                        headers: vec![("content-type".into(), "text/plain".into())],
                        body: b"You have reached the maximum number of concurrent requests per tenant. Please wait and try again."
                            .to_vec(),
                    }
                } else {
                    let code = match status {
                        500 => "InternalServerError",
                        502 => "BadGateway",
                        504 => "GatewayTimeout",
                        _ => "ServiceUnavailable",
                    };
                    odata(status, code, msg)
                }
            })
            .route("POST", PATH, move |r| {
                handle(&st, &t, &tok, b.get().map_or("", String::as_str), r)
            });
        let server = FakeServer::start(routes).await;
        base.set(server.base_url.clone()).unwrap();
        FakeExchange {
            server,
            tenant: tenant.into(),
            token: token.into(),
            state,
        }
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Add a user mailbox for `upn` (also its primary address); ids are made up.
    pub fn add_mailbox(&self, upn: &str) -> FakeMailbox {
        let mut s = self.st();
        s.next += 1;
        let n = s.next;
        let m = FakeMailbox {
            guid: format!("{n:08x}-6d2b-4c1e-9f3a-{n:012x}"),
            object_id: format!("{n:08x}-a1b2-4c3d-8e4f-{:012x}", n * 7919),
            upn: upn.into(),
            smtp: upn.into(),
            display_name: upn.split('@').next().unwrap_or(upn).replace('.', " "),
            type_details: "UserMailbox".into(),
            forwarding_smtp: None,
            forwarding_address: None,
            deliver_and_forward: false,
            hidden: false,
            dir_synced: false,
            meetings: Vec::new(),
        };
        s.mailboxes.push(m.clone());
        m
    }

    /// Add a shared mailbox.
    pub fn add_shared(&self, upn: &str) -> FakeMailbox {
        let m = self.add_mailbox(upn);
        self.update(upn, |x| x.type_details = "SharedMailbox".into());
        FakeMailbox {
            type_details: "SharedMailbox".into(),
            ..m
        }
    }

    /// The mailbox `identity` (guid, object id, UPN or address) finds.
    pub fn mailbox(&self, identity: &str) -> Option<FakeMailbox> {
        let s = self.st();
        s.find(identity).map(|i| s.mailboxes[i].clone())
    }

    /// Change a mailbox behind the tool's back.
    pub fn update(&self, identity: &str, f: impl FnOnce(&mut FakeMailbox)) {
        let mut s = self.st();
        let i = s.find(identity).expect("a mailbox");
        f(&mut s.mailboxes[i]);
    }

    pub fn remove_mailbox(&self, identity: &str) {
        let mut s = self.st();
        let i = s.find(identity).expect("a mailbox");
        let guid = s.mailboxes.remove(i).guid;
        s.permissions
            .retain(|p| p.mailbox != guid && p.user != guid);
        s.devices.retain(|d| d.mailbox != guid);
    }

    /// Give `user` `rights` on `mailbox` (explicit, or inherited from higher up).
    pub fn grant(&self, mailbox: &str, user: &str, rights: &[&str], inherited: bool) {
        let mut s = self.st();
        let m = s.mailboxes[s.find(mailbox).expect("a mailbox")]
            .guid
            .clone();
        let u = s.mailboxes[s.find(user).expect("a user")].guid.clone();
        s.permissions.push(FakePermission {
            mailbox: m,
            user: u,
            rights: rights.iter().map(|r| r.to_string()).collect(),
            inherited,
            deny: false,
            automap: None,
        });
    }

    /// Every permission `user` holds: (mailbox address, rights, inherited).
    pub fn rights_of(&self, user: &str) -> Vec<(String, Vec<String>, bool)> {
        let s = self.st();
        let u = s.mailboxes[s.find(user).expect("a user")].guid.clone();
        s.permissions
            .iter()
            .filter(|p| p.user == u)
            .map(|p| {
                let m = s.mailboxes.iter().find(|m| m.guid == p.mailbox).unwrap();
                (m.smtp.clone(), p.rights.clone(), p.inherited)
            })
            .collect()
    }

    /// The permission `user` holds on `mailbox`, if any.
    pub fn permission(&self, mailbox: &str, user: &str) -> Option<FakePermission> {
        let s = self.st();
        let m = s.mailboxes[s.find(mailbox)?].guid.clone();
        let u = s.mailboxes[s.find(user)?].guid.clone();
        s.permissions
            .iter()
            .find(|p| p.mailbox == m && p.user == u)
            .cloned()
    }

    /// Add an ActiveSync partnership for `mailbox`; returns its guid.
    pub fn add_device(&self, mailbox: &str, name: &str) -> String {
        let mut s = self.st();
        s.next += 1;
        let n = s.next;
        let m = s.mailboxes[s.find(mailbox).expect("a mailbox")]
            .guid
            .clone();
        let guid = format!("{n:08x}-d0d0-4e5e-8a1b-{n:012x}");
        s.devices.push(FakeDevice {
            guid: guid.clone(),
            mailbox: m,
            name: name.into(),
            device_id: format!("ApplF17X{n:04}"),
        });
        guid
    }

    pub fn devices_of(&self, mailbox: &str) -> Vec<FakeDevice> {
        let s = self.st();
        let m = s.mailboxes[s.find(mailbox).expect("a mailbox")]
            .guid
            .clone();
        s.devices
            .iter()
            .filter(|d| d.mailbox == m)
            .cloned()
            .collect()
    }

    /// A future meeting `mailbox` organises, `in_days` from today.
    pub fn add_meeting(&self, mailbox: &str, subject: &str, in_days: u32) {
        self.update(mailbox, |m| m.meetings.push((subject.into(), in_days)));
    }

    /// Cancellations sent to attendees so far.
    pub fn cancellations_sent(&self) -> usize {
        self.st().cancellations
    }

    /// At most `n` results per page, whatever the client prefers.
    pub fn set_page_size(&self, n: usize) {
        self.st().page_size = Some(n);
    }

    /// The app's role does not include `cmdlet`: Exchange answers 403.
    pub fn forbid(&self, cmdlet: &str) {
        self.st().forbidden.push(cmdlet.into());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    /// Each request's cmdlet and parameters, in order.
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.requests()
            .iter()
            .filter_map(|r| {
                let input = r.json.as_ref()?.get("CmdletInput")?;
                Some((
                    input["CmdletName"].as_str()?.to_string(),
                    input["Parameters"].clone(),
                ))
            })
            .collect()
    }

    /// The cmdlets sent, in order.
    pub fn cmdlets(&self) -> Vec<String> {
        self.calls().into_iter().map(|(c, _)| c).collect()
    }

    /// Every request the `exchange` kind sent must be one the admin API takes.
    #[track_caller]
    pub fn assert_contract(&self) {
        self.server.assert_contract(&contract());
    }
}

/// One cmdlet as the body of an InvokeCommand request.
fn cmdlet(name: &str, parameters: super::fake_kit::ObjectShape) -> Operation {
    Operation::new("POST", PATH).json_body(
        obj().req(
            "CmdletInput",
            obj()
                .req("CmdletName", Shape::one_of(&[name]))
                .req("Parameters", parameters),
        ),
    )
}

/// The admin API as the module uses it: every request a POST to InvokeCommand with a bearer
/// token, the anchor mailbox and a JSON body naming one cmdlet and its parameters (each of
/// the type the cmdlet binds); a list's next page adds `$skiptoken`.
pub fn contract() -> Contract {
    let rights = || Shape::array(Shape::one_of(RIGHTS));
    Contract::new("Exchange Online admin API (InvokeCommand)")
        .every_request_header("authorization: Bearer")
        .every_request_header("x-anchormailbox")
        .op(
            cmdlet("Get-Mailbox", obj().opt("Identity", Shape::String)).query(
                "$skiptoken",
                false,
                QueryValue::Integer,
            ),
        )
        .op(cmdlet(
            "Set-Mailbox",
            obj()
                .req("Identity", Shape::String)
                .opt(
                    "Type",
                    Shape::one_of(&["Regular", "Shared", "Room", "Equipment"]),
                )
                .opt("ForwardingSmtpAddress", Shape::nullable(Shape::String))
                .opt("ForwardingAddress", Shape::nullable(Shape::String))
                .opt("DeliverToMailboxAndForward", Shape::Bool)
                .opt("HiddenFromAddressListsEnabled", Shape::Bool),
        ))
        .op(cmdlet(
            "Get-MailboxPermission",
            obj()
                .req("Identity", Shape::String)
                .opt("User", Shape::String),
        ))
        .op(cmdlet(
            "Add-MailboxPermission",
            obj()
                .req("Identity", Shape::String)
                .req("User", Shape::String)
                .req("AccessRights", rights())
                .opt("AutoMapping", Shape::Bool)
                .opt(
                    "InheritanceType",
                    Shape::one_of(&["None", "All", "Children", "Descendents", "SelfAndChildren"]),
                ),
        ))
        .op(cmdlet(
            "Remove-MailboxPermission",
            obj()
                .req("Identity", Shape::String)
                .req("User", Shape::String)
                .req("AccessRights", rights())
                .opt(
                    "InheritanceType",
                    Shape::one_of(&["None", "All", "Children", "Descendents", "SelfAndChildren"]),
                )
                .req("Confirm", Shape::Bool),
        ))
        .op(cmdlet(
            "Get-MobileDevice",
            obj().req("Mailbox", Shape::String),
        ))
        .op(cmdlet(
            "Remove-MobileDevice",
            obj()
                .req("Identity", Shape::String)
                .req("Confirm", Shape::Bool),
        ))
        .op(cmdlet(
            "Remove-CalendarEvents",
            obj()
                .req("Identity", Shape::String)
                .req("CancelOrganizedMeetings", Shape::Bool)
                .req("QueryWindowInDays", Shape::Integer)
                .opt("PreviewOnly", Shape::Bool)
                .opt("Confirm", Shape::Bool),
        ))
}
