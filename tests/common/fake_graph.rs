//! An in-memory Microsoft Graph v1.0 for one tenant, on the fake-server kit, behaving as Graph
//! does where offboard cares (facts from ../shared/providers.md §2 and Microsoft's v1.0
//! description of the operations):
//!
//! - bearer auth with exactly one token (the one its tenant's token endpoint issues), else 401
//!   `InvalidAuthenticationToken`; operations denied with [`FakeGraph::deny`] answer 403
//!   `Authorization_RequestDenied: Insufficient privileges to complete the operation.`;
//! - `/users/{id or UPN}` answering only the `$select`ed properties (a default few without);
//!   `PATCH` 204; soft delete (404 afterwards); `revokeSignInSessions` answering **200 with a
//!   body**; `assignLicense` answering **400 without `addLicenses`** and 400 for a licence
//!   inherited from a group; `licenseDetails`;
//! - `memberOf` paged 100 a page (`$top` up to 999) with an absolute `@odata.nextLink`;
//!   `DELETE /groups/{g}/members/{u}/$ref` (404 `Request_ResourceNotFound` once the membership
//!   is gone, 400 for dynamic, on-premises-synced and mail-enabled groups), and the same path
//!   **without `/$ref` deleting the user**, as Graph does for an app holding User.ReadWrite.All:
//!   recorded, so a test can assert it never happened ([`FakeGraph::users_deleted_via_members`]);
//! - authentication methods of several kinds (the password's cannot be deleted), Inbox rules,
//!   mailbox settings (the replies handed back as HTML, as Exchange stores them), the manager,
//!   the OneDrive and its root's permissions (`invite`), and Intune managed devices whose wipe
//!   or retire stays pending until the test finishes it ([`FakeGraph::finish_device_action`]);
//! - errors as `{"error":{"code","message","innerError":{"date","request-id",
//!   "client-request-id"}}}`; 429 with `Retry-After` and the `x-ms-throttle-*` headers
//!   ([`FakeGraph::throttle_next`]).
//!
//! Every request must keep [`graph_contract`] ([`FakeGraph::assert_contract`]).
//!
//! UNCONFIRMED wire details are marked so where they are built; see the `entra` kind's report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

use super::fake_kit::{
    Contract, FakeServer, Fault, Operation, QueryValue, Recorded, Reply, Req, Routes, Shape,
    Template, obj,
};

pub const PREFIX: &str = "/v1.0";
pub const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub upn: String,
    pub mail: Option<String>,
    pub display_name: String,
    pub account_enabled: bool,
    pub sessions_valid_from: String,
    pub last_password_change: String,
    /// The last password set through `passwordProfile` (so a test can look for it elsewhere).
    pub last_password: Option<String>,
    pub force_change: Option<bool>,
    pub immutable_id: Option<String>,
    pub sync_enabled: bool,
    /// (skuId, the group assigning it — `None` for a direct assignment).
    pub licenses: Vec<(String, Option<String>)>,
    /// skuId → the service plans disabled in its direct assignment.
    pub disabled_plans: BTreeMap<String, Vec<String>>,
    /// (`@odata.type`, id) of each method but the password.
    pub methods: Vec<(String, String)>,
    pub rules: Vec<Value>,
    pub auto_reply: Value,
    pub manager: Option<String>,
    pub drive: Option<Drive>,
    pub mailbox: bool,
}

#[derive(Debug, Clone)]
pub struct Drive {
    pub id: String,
    pub web_url: String,
    pub permissions: Vec<Value>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub group_types: Vec<String>,
    pub on_prem_sync: bool,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    pub members: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub os: String,
    pub management_state: String,
    pub actions: Vec<Value>,
}

/// The kind of group to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    Security,
    Microsoft365,
    Dynamic,
    Synced,
    Distribution,
}

struct State {
    token: String,
    base_url: String,
    users: BTreeMap<String, User>,
    deleted: BTreeMap<String, User>,
    groups: BTreeMap<String, Group>,
    /// Directory roles: (id, name, member ids).
    roles: Vec<(String, String, BTreeSet<String>)>,
    skus: BTreeMap<String, String>,
    /// SKUs with no licence left to assign.
    skus_used_up: BTreeSet<String>,
    devices: BTreeMap<String, Device>,
    clock: i64,
    next: u64,
    deny: Vec<(String, Template)>,
    members_path_deletes: Vec<String>,
}

impl State {
    /// The fake's clock: one second later at every change.
    fn tick(&mut self) -> String {
        self.clock += 1;
        chrono::DateTime::from_timestamp(self.clock, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!(
            "{prefix}{:07x}-1b2c-4d3e-8f40-{:012x}",
            self.next,
            self.next * 7919
        )
    }

    /// A user by object id or UPN (case-insensitive), not deleted.
    fn user_key(&self, key: &str) -> Option<String> {
        self.users
            .values()
            .find(|u| u.id.eq_ignore_ascii_case(key) || u.upn.eq_ignore_ascii_case(key))
            .map(|u| u.id.clone())
    }
}

type Shared = Arc<Mutex<State>>;

/// A Graph error body.
pub fn graph_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({ "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": "2026-12-01T10:00:00",
                "request-id": "9b0a3c2e-6f1d-4e55-9a7b-4c1d2e3f4a5b",
                "client-request-id": "9b0a3c2e-6f1d-4e55-9a7b-4c1d2e3f4a5b",
            }
        }}),
    )
    .header("request-id", "9b0a3c2e-6f1d-4e55-9a7b-4c1d2e3f4a5b")
}

fn not_found(what: &str) -> Reply {
    graph_error(
        404,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{what}' does not exist or one of its queried reference-property objects \
             are not present."
        ),
    )
}

fn bad_request(message: &str) -> Reply {
    graph_error(400, "Request_BadRequest", message)
}

const DENIED: &str = "Insufficient privileges to complete the operation.";

/// A handler that answers 401 unless the request carries the tenant's token, 403 when the
/// operation is denied, then `f`.
fn authed(
    st: &Shared,
    f: impl Fn(&mut State, &Req<'_>) -> Reply + Send + Sync + 'static,
) -> impl Fn(&Req<'_>) -> Reply + Send + Sync + 'static {
    let st = st.clone();
    move |r: &Req<'_>| {
        let mut s = st.lock().unwrap();
        let expected = format!("Bearer {}", s.token);
        if r.header("authorization") != Some(expected.as_str()) {
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            )
            .header(
                "www-authenticate",
                "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\"",
            );
        }
        if s.deny
            .iter()
            .any(|(m, t)| m == r.method && t.matches(r.raw_path).is_some())
        {
            return graph_error(403, "Authorization_RequestDenied", DENIED);
        }
        f(&mut s, r)
    }
}

/// The user of path parameter `id`, or the 404 Graph answers.
fn user_of(s: &State, r: &Req<'_>) -> Result<String, Reply> {
    let key = r.param("id");
    s.user_key(key).ok_or_else(|| not_found(key))
}

fn user_json(u: &User) -> Value {
    let mut skus: Vec<&String> = u.licenses.iter().map(|(s, _)| s).collect();
    skus.sort();
    skus.dedup();
    json!({
        "id": u.id,
        "userPrincipalName": u.upn,
        "displayName": u.display_name,
        "mail": u.mail,
        "accountEnabled": u.account_enabled,
        "signInSessionsValidFromDateTime": u.sessions_valid_from,
        "lastPasswordChangeDateTime": u.last_password_change,
        "onPremisesImmutableId": u.immutable_id,
        "onPremisesSyncEnabled": if u.sync_enabled { Value::Bool(true) } else { Value::Null },
        "assignedLicenses": skus.iter().map(|s| json!({
            "skuId": s,
            "disabledPlans": u.disabled_plans.get(*s).cloned().unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "licenseAssignmentStates": u.licenses.iter().map(|(s, g)| json!({
            "skuId": s, "assignedByGroup": g, "disabledPlans": [], "state": "Active",
            "error": "None", "lastUpdatedDateTime": "2026-01-05T10:00:00Z"
        })).collect::<Vec<_>>(),
    })
}

/// `v` cut to the `$select`ed properties (Graph answers a default few without `$select`).
fn selected(v: Value, select: Option<&str>, default: &[&str], context: &str) -> Value {
    let Value::Object(all) = v else { return v };
    let wanted: Vec<&str> = match select {
        Some(s) => s.split(',').map(str::trim).collect(),
        None => default.to_vec(),
    };
    let mut out = Map::new();
    out.insert("@odata.context".into(), json!(context));
    for k in wanted {
        if let Some(x) = all.get(k) {
            out.insert(k.to_string(), x.clone());
        }
    }
    Value::Object(out)
}

/// One page of `items`: `$top` (≤ 999, default `page`) from the offset in `$skiptoken`, and an
/// absolute `@odata.nextLink` keeping the request's other options.
fn page(s: &State, r: &Req<'_>, items: Vec<Value>, page: usize) -> Reply {
    let top = r
        .query("$top")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(page)
        .clamp(1, 999);
    let from = match r.query("$skiptoken") {
        None => 0,
        Some(t) => match t
            .strip_prefix("RFNwdA")
            .and_then(|t| t.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return bad_request("Invalid value for $skiptoken"),
        },
    };
    let end = (from + top).min(items.len());
    let mut body = json!({
        "@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#{}", r.raw_path),
        "value": items.get(from..end).unwrap_or(&[]),
    });
    if end < items.len() {
        let mut q: Vec<String> = r
            .query
            .iter()
            .filter(|(k, _)| k != "$skiptoken")
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
            .collect();
        q.push(format!("$skiptoken=RFNwdA{end}"));
        body["@odata.nextLink"] = json!(format!("{}{}?{}", s.base_url, r.raw_path, q.join("&")));
    }
    Reply::json(200, &body)
}

fn group_json(g: &Group) -> Value {
    let dynamic = g.group_types.iter().any(|t| t == "DynamicMembership");
    json!({
        "@odata.type": "#microsoft.graph.group",
        "id": g.id,
        "displayName": g.display_name,
        "groupTypes": g.group_types,
        "mailEnabled": g.mail_enabled,
        "securityEnabled": g.security_enabled,
        "onPremisesSyncEnabled": if g.on_prem_sync { Value::Bool(true) } else { Value::Null },
        "membershipRule": if dynamic { json!("user.department -eq \"Sales\"") } else { Value::Null },
    })
}

/// Each authentication method type and the collection that deletes it.
const METHOD_KINDS: &[(&str, &str)] = &[
    (
        "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
        "microsoftAuthenticatorMethods",
    ),
    ("#microsoft.graph.phoneAuthenticationMethod", "phoneMethods"),
    ("#microsoft.graph.fido2AuthenticationMethod", "fido2Methods"),
    (
        "#microsoft.graph.softwareOathAuthenticationMethod",
        "softwareOathMethods",
    ),
    ("#microsoft.graph.emailAuthenticationMethod", "emailMethods"),
    (
        "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
        "windowsHelloForBusinessMethods",
    ),
    (
        "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
        "temporaryAccessPassMethods",
    ),
    (
        "#microsoft.graph.platformCredentialAuthenticationMethod",
        "platformCredentialMethods",
    ),
];

/// Exchange hands the replies back as HTML (UNCONFIRMED: the exact wrapping).
fn as_html(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    // Written as HTML (a reply put back as Exchange handed it out): stored as given.
    if text.trim_start().starts_with("<html") {
        return text.to_string();
    }
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!("<html>\n<body>\n<div>{escaped}</div>\n</body>\n</html>\n")
}

fn mailbox_settings(u: &User) -> Value {
    let mut reply = u.auto_reply.clone();
    for k in ["internalReplyMessage", "externalReplyMessage"] {
        let html = as_html(reply[k].as_str().unwrap_or(""));
        reply[k] = json!(html);
    }
    json!({
        "@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#users('{}')/mailboxSettings", u.id),
        "archiveFolder": "AAMkAGI2",
        "timeZone": "UTC",
        "automaticRepliesSetting": reply,
        "language": { "locale": "en-US", "displayName": "English (United States)" },
        "userPurpose": "user",
    })
}

fn no_mailbox() -> Reply {
    graph_error(
        404,
        "MailboxNotEnabledForRESTAPI",
        "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
    )
}

fn device_json(d: &Device) -> Value {
    json!({
        "id": d.id,
        "userId": d.user_id,
        "deviceName": d.name,
        "operatingSystem": d.os,
        "managementState": d.management_state,
        "deviceActionResults": d.actions,
        "complianceState": "compliant",
    })
}

fn identity(u: &User) -> Value {
    json!({ "id": u.id, "displayName": u.display_name, "email": u.mail.clone().unwrap_or(u.upn.clone()) })
}

fn routes(st: &Shared) -> Routes {
    let p = |path: &str| format!("{PREFIX}{path}");
    Routes::new()
        .error_reply(|status, msg| {
            let code = match status {
                429 => "TooManyRequests",
                500 => "generalException",
                503 => "serviceNotAvailable",
                504 => "gatewayTimeout",
                404 => "Request_ResourceNotFound",
                _ => "generalException",
            };
            graph_error(status, code, msg)
        })
        .route("GET", &p("/users/{id}"), authed(st, |s, r| match user_of(s, r) {
            Ok(id) => Reply::json(
                200,
                &selected(
                    user_json(&s.users[&id]),
                    r.query("$select"),
                    &["id", "displayName", "userPrincipalName", "mail"],
                    "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
                ),
            ),
            Err(e) => e,
        }))
        .route("PATCH", &p("/users/{id}"), authed(st, |s, r| {
            let id = match user_of(s, r) {
                Ok(id) => id,
                Err(e) => return e,
            };
            let Some(body) = r.json.and_then(Value::as_object) else {
                return bad_request("Invalid request body");
            };
            if body.contains_key("onPremisesImmutableId") && s.users[&id].sync_enabled {
                return bad_request(
                    "Unable to update the specified properties for on-premises mastered \
                     Directory Sync objects or objects currently undergoing migration.",
                );
            }
            if let Some(pp) = body.get("passwordProfile") {
                let pw = pp["password"].as_str().unwrap_or("");
                let classes = [
                    pw.chars().any(|c| c.is_ascii_uppercase()),
                    pw.chars().any(|c| c.is_ascii_lowercase()),
                    pw.chars().any(|c| c.is_ascii_digit()),
                    pw.chars().any(|c| !c.is_ascii_alphanumeric()),
                ]
                .iter()
                .filter(|x| **x)
                .count();
                if pw.chars().count() < 8 || classes < 3 {
                    return bad_request(
                        "The specified password does not comply with password complexity \
                         requirements. Please provide a different password.",
                    );
                }
                let now = s.tick();
                let u = s.users.get_mut(&id).unwrap();
                u.last_password = Some(pw.to_string());
                u.last_password_change = now;
                u.force_change = pp["forceChangePasswordNextSignIn"].as_bool();
            }
            let u = s.users.get_mut(&id).unwrap();
            if let Some(b) = body.get("accountEnabled").and_then(Value::as_bool) {
                u.account_enabled = b;
            }
            if let Some(v) = body.get("onPremisesImmutableId") {
                u.immutable_id = v.as_str().map(str::to_string);
            }
            Reply::empty(204)
        }))
        .route("DELETE", &p("/users/{id}"), authed(st, |s, r| match user_of(s, r) {
            Ok(id) => {
                let u = s.users.remove(&id).unwrap();
                s.deleted.insert(id, u);
                Reply::empty(204)
            }
            Err(e) => e,
        }))
        // directory-deleteditems-restore.md: 200 with the object; 404 once it is no longer
        // in deleted items.
        .route("POST", &p("/directory/deletedItems/{id}/restore"), authed(st, |s, r| {
            let id = r.param("id").to_string();
            match s.deleted.remove(&id) {
                Some(u) => {
                    let body = user_json(&u);
                    s.users.insert(id, u);
                    Reply::json(200, &body)
                }
                None => not_found(&id),
            }
        }))
        .route("POST", &p("/users/{id}/revokeSignInSessions"), authed(st, |s, r| {
            match user_of(s, r) {
                Ok(id) => {
                    let now = s.tick();
                    s.users.get_mut(&id).unwrap().sessions_valid_from = now;
                    // 200 with a body, where the docs promise 204 (providers.md §2).
                    Reply::json(200, &json!({
                        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean",
                        "value": true,
                    }))
                }
                Err(e) => e,
            }
        }))
        .route("POST", &p("/users/{id}/assignLicense"), authed(st, |s, r| {
            let id = match user_of(s, r) {
                Ok(id) => id,
                Err(e) => return e,
            };
            let body = r.json.cloned().unwrap_or(Value::Null);
            if body.get("addLicenses").is_none() {
                return bad_request(
                    "One or more parameters of the operation 'assignLicense' are missing from \
                     the request payload. The missing parameters are: addLicenses.",
                );
            }
            let remove: Vec<String> = body["removeLicenses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let u = s.users.get_mut(&id).unwrap();
            for sku in &remove {
                let direct = u.licenses.iter().any(|(s, g)| s.eq_ignore_ascii_case(sku) && g.is_none());
                let inherited = u.licenses.iter().any(|(s, g)| s.eq_ignore_ascii_case(sku) && g.is_some());
                if !direct && inherited {
                    return bad_request(
                        "User license is inherited from a group membership and it cannot be \
                         removed directly from the user.",
                    );
                }
                if !direct {
                    // UNCONFIRMED: the exact words for a licence the user does not hold.
                    return bad_request("User does not have a corresponding license.");
                }
            }
            u.licenses
                .retain(|(s, g)| g.is_some() || !remove.iter().any(|r| r.eq_ignore_ascii_case(s)));
            for sku in &remove {
                u.disabled_plans.remove(sku);
            }
            // addLicenses: each SKU must be one the tenant subscribes to, with a licence left
            // (UNCONFIRMED: the exact words of both refusals; Graph answers 400).
            let add: Vec<Value> = body["addLicenses"].as_array().cloned().unwrap_or_default();
            for a in &add {
                let sku = a["skuId"].as_str().unwrap_or("").to_string();
                if !s.skus.contains_key(&sku) {
                    return bad_request(&format!(
                        "License {sku} does not correspond to a valid company License."
                    ));
                }
                if s.skus_used_up.contains(&sku) {
                    return bad_request(&format!(
                        "Subscription with SKU {sku} does not have any available licenses."
                    ));
                }
            }
            let u = s.users.get_mut(&id).unwrap();
            for a in &add {
                let sku = a["skuId"].as_str().unwrap_or("").to_string();
                let plans: Vec<String> = a["disabledPlans"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect();
                if !u.licenses.iter().any(|(s, g)| *s == sku && g.is_none()) {
                    u.licenses.push((sku.clone(), None));
                }
                u.disabled_plans.insert(sku, plans);
            }
            Reply::json(200, &user_json(u))
        }))
        .route("GET", &p("/users/{id}/licenseDetails"), authed(st, |s, r| {
            let id = match user_of(s, r) {
                Ok(id) => id,
                Err(e) => return e,
            };
            let mut skus: Vec<String> = s.users[&id].licenses.iter().map(|(k, _)| k.clone()).collect();
            skus.sort();
            skus.dedup();
            let value: Vec<Value> = skus
                .iter()
                .map(|k| json!({
                    "id": format!("lic-{k}"),
                    "skuId": k,
                    "skuPartNumber": s.skus.get(k).cloned().unwrap_or_default(),
                    "servicePlans": [],
                }))
                .collect();
            Reply::json(200, &json!({ "value": value }))
        }))
        .route("GET", &p("/users/{id}/memberOf"), authed(st, |s, r| {
            let id = match user_of(s, r) {
                Ok(id) => id,
                Err(e) => return e,
            };
            let mut items: Vec<Value> = s
                .groups
                .values()
                .filter(|g| g.members.contains(&id))
                .map(group_json)
                .collect();
            items.extend(s.roles.iter().filter(|(_, _, m)| m.contains(&id)).map(|(rid, name, _)| {
                json!({ "@odata.type": "#microsoft.graph.directoryRole", "id": rid,
                        "displayName": name, "roleTemplateId": "fe930be7-5e62-47db-91af-98c3a49a38b1" })
            }));
            page(s, r, items, 100)
        }))
        .route("DELETE", &p("/groups/{gid}/members/{id}/$ref"), authed(st, |s, r| {
            let gid = r.param("gid").to_string();
            let uid = r.param("id").to_string();
            let Some(g) = s.groups.get_mut(&gid) else {
                return not_found(&gid);
            };
            if g.group_types.iter().any(|t| t == "DynamicMembership") {
                // UNCONFIRMED: the exact words.
                return bad_request("Cannot update membership of a group with dynamic membership rules.");
            }
            if g.on_prem_sync {
                return bad_request(
                    "Unable to update the specified properties for on-premises mastered \
                     Directory Sync objects or objects currently undergoing migration.",
                );
            }
            if g.mail_enabled && !g.group_types.iter().any(|t| t == "Unified") {
                return bad_request("Cannot Update a mail-enabled security groups and or distribution list.");
            }
            if !g.members.remove(&uid) {
                return not_found(&uid);
            }
            Reply::empty(204)
        }))
        // group-post-members.md: `{"@odata.id": ".../directoryObjects/{id}"}` → 204; 404 for a
        // group that is gone; 400 for groups Graph cannot edit and for a member already there.
        .route("POST", &p("/groups/{gid}/members/$ref"), authed(st, |s, r| {
            let gid = r.param("gid").to_string();
            let Some(target) = r.json.and_then(|b| b.get("@odata.id")).and_then(Value::as_str) else {
                return bad_request("Invalid request body: @odata.id is required");
            };
            let Some(uid) = target
                .strip_prefix(&format!("{}{PREFIX}/directoryObjects/", s.base_url))
                .map(str::to_string)
            else {
                return bad_request(&format!("Invalid object identifier '{target}'."));
            };
            let Some(uid) = s.user_key(&uid) else {
                return not_found(&uid);
            };
            let Some(g) = s.groups.get_mut(&gid) else {
                return not_found(&gid);
            };
            if g.group_types.iter().any(|t| t == "DynamicMembership") {
                return bad_request("Cannot update membership of a group with dynamic membership rules.");
            }
            if g.on_prem_sync {
                return bad_request(
                    "Unable to update the specified properties for on-premises mastered \
                     Directory Sync objects or objects currently undergoing migration.",
                );
            }
            if g.mail_enabled && !g.group_types.iter().any(|t| t == "Unified") {
                return bad_request("Cannot Update a mail-enabled security groups and or distribution list.");
            }
            if !g.members.insert(uid) {
                return bad_request(
                    "One or more added object references already exist for the following \
                     modified properties: 'members'.",
                );
            }
            Reply::empty(204)
        }))
        // Without `/$ref` the path addresses the member object itself: an app holding
        // User.ReadWrite.All deletes the user (providers.md §2). Done here too, and recorded.
        .route("DELETE", &p("/groups/{gid}/members/{id}"), authed(st, |s, r| {
            let uid = r.param("id").to_string();
            match s.user_key(&uid) {
                Some(id) => {
                    let u = s.users.remove(&id).unwrap();
                    s.deleted.insert(id.clone(), u);
                    s.members_path_deletes.push(id);
                    Reply::empty(204)
                }
                None => not_found(&uid),
            }
        }))
        .route("GET", &p("/users/{id}/authentication/methods"), authed(st, |s, r| {
            let id = match user_of(s, r) {
                Ok(id) => id,
                Err(e) => return e,
            };
            let mut value = vec![json!({
                "@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
                "id": PASSWORD_METHOD_ID,
                "password": null,
                "createdDateTime": "2025-03-01T10:00:00Z",
            })];
            value.extend(s.users[&id].methods.iter().map(|(t, mid)| json!({ "@odata.type": t, "id": mid })));
            Reply::json(200, &json!({ "value": value }))
        }))
        .route("DELETE", &p("/users/{id}/authentication/{kind}/{mid}"), authed(st, |s, r| {
            let id = match user_of(s, r) {
                Ok(id) => id,
                Err(e) => return e,
            };
            let kind = r.param("kind");
            let mid = r.param("mid");
            let u = s.users.get_mut(&id).unwrap();
            let at = u.methods.iter().position(|(t, m)| {
                m == mid && METHOD_KINDS.iter().any(|(mt, k)| mt == t && *k == kind)
            });
            match at {
                Some(i) => {
                    u.methods.remove(i);
                    Reply::empty(204)
                }
                // UNCONFIRMED: the code Graph answers for a method already gone.
                None => graph_error(404, "itemNotFound", &format!("Method {mid} was not found.")),
            }
        }))
        .route("GET", &p("/users/{id}/mailFolders/inbox/messageRules"), authed(st, |s, r| {
            match user_of(s, r) {
                Ok(id) if !s.users[&id].mailbox => no_mailbox(),
                Ok(id) => Reply::json(200, &json!({ "value": s.users[&id].rules })),
                Err(e) => e,
            }
        }))
        // messagerule-post-rules.md: 201 with the rule and a new id; `displayName` and
        // `sequence` required (UNCONFIRMED: the exact words of the refusal).
        .route("POST", &p("/users/{id}/mailFolders/inbox/messageRules"), authed(st, |s, r| {
            let id = match user_of(s, r) {
                Ok(id) => id,
                Err(e) => return e,
            };
            if !s.users[&id].mailbox {
                return no_mailbox();
            }
            let Some(Value::Object(body)) = r.json.cloned() else {
                return bad_request("Invalid request body");
            };
            if !body.contains_key("displayName") || !body.contains_key("sequence") {
                return graph_error(400, "ErrorInvalidRequest", "The request is invalid.");
            }
            let rid = format!("AQAAA{}=", s.next_id(""));
            let mut rule = Value::Object(body);
            rule["id"] = json!(rid);
            rule["hasError"] = json!(false);
            rule["isReadOnly"] = json!(false);
            s.users.get_mut(&id).unwrap().rules.push(rule.clone());
            Reply::json(201, &rule)
        }))
        .route("DELETE", &p("/users/{id}/mailFolders/inbox/messageRules/{rid}"), authed(st, |s, r| {
            let id = match user_of(s, r) {
                Ok(id) => id,
                Err(e) => return e,
            };
            let rid = r.param("rid");
            let u = s.users.get_mut(&id).unwrap();
            let before = u.rules.len();
            u.rules.retain(|x| x["id"] != rid);
            if u.rules.len() == before {
                return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.");
            }
            Reply::empty(204)
        }))
        .route("GET", &p("/users/{id}/mailboxSettings"), authed(st, |s, r| {
            match user_of(s, r) {
                Ok(id) if !s.users[&id].mailbox => no_mailbox(),
                Ok(id) => Reply::json(200, &mailbox_settings(&s.users[&id])),
                Err(e) => e,
            }
        }))
        .route("PATCH", &p("/users/{id}/mailboxSettings"), authed(st, |s, r| {
            let id = match user_of(s, r) {
                Ok(id) => id,
                Err(e) => return e,
            };
            if !s.users[&id].mailbox {
                return no_mailbox();
            }
            let u = s.users.get_mut(&id).unwrap();
            if let Some(Value::Object(set)) = r.json.and_then(|b| b.get("automaticRepliesSetting")) {
                for (k, v) in set {
                    u.auto_reply[k] = v.clone();
                }
            }
            Reply::json(200, &mailbox_settings(u))
        }))
        .route("GET", &p("/users/{id}/manager"), authed(st, |s, r| {
            let id = match user_of(s, r) {
                Ok(id) => id,
                Err(e) => return e,
            };
            match s.users[&id].manager.as_ref().and_then(|m| s.users.get(m)) {
                Some(m) => {
                    let mut v = user_json(m);
                    v["@odata.type"] = json!("#microsoft.graph.user");
                    Reply::json(200, &v)
                }
                None => not_found("manager"),
            }
        }))
        .route("GET", &p("/users/{id}/drive"), authed(st, |s, r| {
            let id = match user_of(s, r) {
                Ok(id) => id,
                Err(e) => return e,
            };
            let u = &s.users[&id];
            match &u.drive {
                Some(d) => Reply::json(200, &json!({
                    "id": d.id, "webUrl": d.web_url, "driveType": "business",
                    "owner": { "user": { "id": u.id, "displayName": u.display_name } },
                })),
                None => graph_error(404, "ResourceNotFound", "User's mysite not found."),
            }
        }))
        .route("GET", &p("/drives/{did}/root/permissions"), authed(st, |s, r| {
            let did = r.param("did");
            match s.users.values().find_map(|u| u.drive.as_ref().filter(|d| d.id == did)) {
                Some(d) => Reply::json(200, &json!({ "value": d.permissions })),
                None => graph_error(404, "itemNotFound", "Item not found"),
            }
        }))
        .route("POST", &p("/drives/{did}/root/invite"), authed(st, |s, r| {
            let did = r.param("did").to_string();
            let body = r.json.cloned().unwrap_or(Value::Null);
            let emails: Vec<String> = body["recipients"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x["email"].as_str().map(str::to_string))
                .collect();
            let roles = body["roles"].clone();
            if emails.is_empty() || roles.as_array().is_none_or(|r| r.is_empty()) {
                return graph_error(400, "invalidRequest", "Recipients and roles are required.");
            }
            let base = s.next_id("perm-");
            let mut granted = Vec::new();
            for e in &emails {
                let Some(who) = s.users.values().find(|u| {
                    u.upn.eq_ignore_ascii_case(e) || u.mail.as_ref().is_some_and(|m| m.eq_ignore_ascii_case(e))
                }) else {
                    return graph_error(400, "invalidRequest", "One or more users could not be resolved.");
                };
                let who = identity(who);
                granted.push(json!({
                    "id": format!("{base}-{}", granted.len() + 1),
                    "roles": roles,
                    "grantedToV2": { "user": who },
                    "grantedTo": { "user": who },
                }));
            }
            let Some(d) = s.users.values_mut().find_map(|u| u.drive.as_mut().filter(|d| d.id == did)) else {
                return graph_error(404, "itemNotFound", "Item not found");
            };
            d.permissions.extend(granted.iter().cloned());
            Reply::json(200, &json!({ "value": granted }))
        }))
        // permission-delete.md: 204; 404 for a permission that is gone; the owner's cannot be
        // deleted (UNCONFIRMED: the exact answer; 403 here).
        .route("DELETE", &p("/drives/{did}/root/permissions/{pid}"), authed(st, |s, r| {
            let (did, pid) = (r.param("did").to_string(), r.param("pid").to_string());
            let Some(d) = s.users.values_mut().find_map(|u| u.drive.as_mut().filter(|d| d.id == did)) else {
                return graph_error(404, "itemNotFound", "Item not found");
            };
            let Some(at) = d.permissions.iter().position(|p| p["id"] == pid) else {
                return graph_error(404, "itemNotFound", "The resource could not be found.");
            };
            if d.permissions[at]["roles"].as_array().is_some_and(|r| r.iter().any(|x| x == "owner")) {
                return graph_error(403, "accessDenied", "The owner's permission cannot be removed.");
            }
            d.permissions.remove(at);
            Reply::empty(204)
        }))
        .route("GET", &p("/users/{id}/managedDevices"), authed(st, |s, r| {
            let id = match user_of(s, r) {
                Ok(id) => id,
                Err(e) => return e,
            };
            let items: Vec<Value> = s
                .devices
                .values()
                .filter(|d| d.user_id == id)
                .map(|d| selected(device_json(d), r.query("$select"), &["id", "deviceName", "operatingSystem", "managementState", "deviceActionResults", "userId"], "https://graph.microsoft.com/v1.0/$metadata#users('x')/managedDevices/$entity"))
                .map(|mut v| {
                    v.as_object_mut().unwrap().remove("@odata.context");
                    v
                })
                .collect();
            page(s, r, items, 100)
        }))
        .route("POST", &p("/deviceManagement/managedDevices/{did}/wipe"), authed(st, |s, r| {
            device_action(s, r.param("did"), "wipe")
        }))
        .route("POST", &p("/deviceManagement/managedDevices/{did}/retire"), authed(st, |s, r| {
            device_action(s, r.param("did"), "retire")
        }))
        .fallback(authed(st, |_, r| {
            let last = r.raw_path.rsplit('/').next().unwrap_or("");
            graph_error(400, "BadRequest", &format!("Resource not found for the segment '{last}'."))
        }))
}

/// A wipe or retire: queued, as Intune does until the device checks in.
fn device_action(s: &mut State, did: &str, action: &str) -> Reply {
    if !s.devices.contains_key(did) {
        return graph_error(
            404,
            "ResourceNotFound",
            &format!("Managed device {did} not found"),
        );
    }
    let now = s.tick();
    let d = s.devices.get_mut(did).unwrap();
    d.management_state = format!("{action}Pending");
    d.actions.push(json!({
        "actionName": action,
        "actionState": "pending",
        "startDateTime": now,
        "lastUpdatedDateTime": now,
    }));
    Reply::empty(204)
}

/// A running fake Graph for one tenant.
#[derive(Clone)]
pub struct FakeGraph {
    /// `http://127.0.0.1:<port>/v1.0`: an entra system's `base_url`.
    pub base_url: String,
    pub server: FakeServer,
    state: Shared,
}

impl FakeGraph {
    /// Start on 127.0.0.1, accepting `token` only.
    pub async fn start(token: &str) -> FakeGraph {
        let state = Arc::new(Mutex::new(State {
            token: token.to_string(),
            base_url: String::new(),
            users: BTreeMap::new(),
            deleted: BTreeMap::new(),
            groups: BTreeMap::new(),
            roles: Vec::new(),
            skus: BTreeMap::new(),
            skus_used_up: BTreeSet::new(),
            devices: BTreeMap::new(),
            clock: 1_796_116_800, // 2026-12-01T09:20:00Z
            next: 0,
            deny: Vec::new(),
            members_path_deletes: Vec::new(),
        }));
        let server = FakeServer::start(routes(&state)).await;
        state.lock().unwrap().base_url = server.base_url.clone();
        FakeGraph {
            base_url: server.url(PREFIX),
            server,
            state,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Add an enabled, cloud-only user with a mailbox and a OneDrive; returns its object id.
    pub fn add_user(&self, upn: &str) -> String {
        self.with(|s| {
            let id = s.next_id("u");
            let drive = Drive {
                id: format!("b!{}", &id[..8]),
                web_url: format!(
                    "https://contoso-my.sharepoint.com/personal/{}",
                    upn.replace(['@', '.'], "_")
                ),
                permissions: Vec::new(),
            };
            let mut user = User {
                id: id.clone(),
                upn: upn.to_string(),
                mail: Some(upn.to_string()),
                display_name: upn.split('@').next().unwrap_or(upn).to_string(),
                account_enabled: true,
                sessions_valid_from: "2026-11-02T08:00:00Z".into(),
                last_password_change: "2026-10-01T08:00:00Z".into(),
                last_password: None,
                force_change: None,
                immutable_id: None,
                sync_enabled: false,
                licenses: Vec::new(),
                disabled_plans: BTreeMap::new(),
                methods: Vec::new(),
                rules: Vec::new(),
                auto_reply: json!({
                    "status": "disabled",
                    "externalAudience": "none",
                    "internalReplyMessage": "",
                    "externalReplyMessage": "",
                    "scheduledStartDateTime": { "dateTime": "2026-11-01T00:00:00.0000000", "timeZone": "UTC" },
                    "scheduledEndDateTime": { "dateTime": "2026-11-02T00:00:00.0000000", "timeZone": "UTC" },
                }),
                manager: None,
                drive: Some(drive),
                mailbox: true,
            };
            let owner = identity(&user);
            if let Some(d) = user.drive.as_mut() {
                d.permissions.push(json!({
                    "id": "owner-perm",
                    "roles": ["owner"],
                    "grantedToV2": { "user": owner },
                    "grantedTo": { "user": owner },
                }));
            }
            s.users.insert(id.clone(), user);
            id
        })
    }

    /// Change a user (behind the tool's back).
    pub fn edit_user(&self, id: &str, f: impl FnOnce(&mut User)) {
        self.with(|s| f(s.users.get_mut(id).expect("no such user")));
    }

    pub fn user(&self, id: &str) -> Option<User> {
        self.with(|s| s.users.get(id).cloned())
    }

    /// Purge a soft-deleted user (past the 30 days, or deleted for good).
    pub fn purge(&self, id: &str) {
        self.with(|s| {
            s.deleted.remove(id);
        });
    }

    /// Soft-delete a user (behind the tool's back).
    pub fn delete_user(&self, id: &str) {
        self.with(|s| {
            let u = s.users.remove(id).expect("no such user");
            s.deleted.insert(id.to_string(), u);
        });
    }

    /// Soft-deleted users (by `DELETE /users/{id}` or the members path).
    pub fn deleted(&self, id: &str) -> bool {
        self.with(|s| s.deleted.contains_key(id))
    }

    /// Restore a soft-deleted user (from deleted items).
    pub fn restore(&self, id: &str) {
        self.with(|s| {
            let u = s.deleted.remove(id).expect("not deleted");
            s.users.insert(id.to_string(), u);
        });
    }

    /// Users deleted through `DELETE /groups/{g}/members/{u}` without `/$ref`.
    pub fn users_deleted_via_members(&self) -> Vec<String> {
        self.with(|s| s.members_path_deletes.clone())
    }

    /// Add a group of `kind` holding `members`; returns its id.
    pub fn add_group(&self, name: &str, kind: GroupKind, members: &[&str]) -> String {
        self.with(|s| {
            let id = s.next_id("g");
            let (types, sync, mail, security): (Vec<&str>, bool, bool, bool) = match kind {
                GroupKind::Security => (vec![], false, false, true),
                GroupKind::Microsoft365 => (vec!["Unified"], false, true, false),
                GroupKind::Dynamic => (vec!["DynamicMembership"], false, false, true),
                GroupKind::Synced => (vec![], true, false, true),
                GroupKind::Distribution => (vec![], false, true, false),
            };
            s.groups.insert(
                id.clone(),
                Group {
                    id: id.clone(),
                    display_name: name.to_string(),
                    group_types: types.iter().map(|t| t.to_string()).collect(),
                    on_prem_sync: sync,
                    mail_enabled: mail,
                    security_enabled: security,
                    members: members.iter().map(|m| m.to_string()).collect(),
                },
            );
            id
        })
    }

    pub fn group_members(&self, id: &str) -> BTreeSet<String> {
        self.with(|s| s.groups[id].members.clone())
    }

    /// Put `user` back into a group (behind the tool's back).
    pub fn add_member(&self, group: &str, user: &str) {
        self.with(|s| {
            s.groups.get_mut(group).unwrap().members.insert(user.into());
        });
    }

    /// Take `user` out of a group (behind the tool's back).
    pub fn remove_member(&self, group: &str, user: &str) {
        self.with(|s| {
            s.groups.get_mut(group).unwrap().members.remove(user);
        });
    }

    /// The object id of the (live) user with this UPN.
    pub fn user_id(&self, upn: &str) -> String {
        self.with(|s| s.user_key(upn).expect("no such user"))
    }

    /// Make `user` a member of a directory role.
    pub fn add_role(&self, name: &str, user: &str) {
        self.with(|s| {
            let id = s.next_id("r");
            s.roles
                .push((id, name.into(), BTreeSet::from([user.to_string()])));
        });
    }

    /// A SKU the tenant subscribes to.
    pub fn add_sku(&self, sku_id: &str, part_number: &str) {
        self.with(|s| {
            s.skus.insert(sku_id.into(), part_number.into());
        });
    }

    /// No licence of `sku` is left to assign (`assignLicense` adding it answers 400).
    pub fn use_up_sku(&self, sku_id: &str) {
        self.with(|s| {
            s.skus_used_up.insert(sku_id.into());
        });
    }

    /// Delete a group (behind the tool's back).
    pub fn delete_group(&self, id: &str) {
        self.with(|s| {
            s.groups.remove(id);
        });
    }

    /// Give `user` licence `sku`, directly (`group: None`) or inherited from a group.
    pub fn license(&self, user: &str, sku: &str, group: Option<&str>) {
        self.edit_user(user, |u| {
            u.licenses
                .push((sku.to_string(), group.map(str::to_string)))
        });
    }

    /// Give `user` an authentication method (`@odata.type`); returns its id.
    pub fn add_method(&self, user: &str, odata_type: &str) -> String {
        let id = self.with(|s| s.next_id("m"));
        self.edit_user(user, |u| u.methods.push((odata_type.into(), id.clone())));
        id
    }

    /// Give `user` an Inbox rule; `forward_to` makes it a forwarding rule.
    pub fn add_rule(&self, user: &str, name: &str, forward_to: Option<&str>) -> String {
        let id = self.with(|s| format!("AQAAA{}=", s.next_id("")));
        let mut actions = json!({ "moveToFolder": "AAMkAGI2", "stopProcessingRules": true });
        if let Some(to) = forward_to {
            actions = json!({ "forwardTo": [{ "emailAddress": { "name": to, "address": to } }] });
        }
        let rule = json!({
            "id": id, "displayName": name, "sequence": 1, "isEnabled": true,
            "conditions": { "senderContains": ["ceo"] }, "actions": actions,
        });
        self.edit_user(user, |u| u.rules.push(rule));
        id
    }

    /// Give `user` a managed device; returns its id.
    pub fn add_device(&self, user: &str, name: &str, os: &str) -> String {
        self.with(|s| {
            let id = s.next_id("d");
            s.devices.insert(
                id.clone(),
                Device {
                    id: id.clone(),
                    user_id: user.into(),
                    name: name.into(),
                    os: os.into(),
                    management_state: "managed".into(),
                    actions: Vec::new(),
                },
            );
            id
        })
    }

    pub fn device(&self, id: &str) -> Option<Device> {
        self.with(|s| s.devices.get(id).cloned())
    }

    /// Intune carries out the device's pending action: `done`, and the device leaves the
    /// user's devices when `remove` (as after a completed wipe or retire).
    pub fn finish_device_action(&self, id: &str, remove: bool) {
        self.with(|s| {
            let now = s.tick();
            if remove {
                s.devices.remove(id);
                return;
            }
            let d = s.devices.get_mut(id).expect("no such device");
            if let Some(a) = d
                .actions
                .iter_mut()
                .rev()
                .find(|a| a["actionState"] == "pending")
            {
                a["actionState"] = json!("done");
                a["lastUpdatedDateTime"] = json!(now);
            }
            d.management_state = "managed".into();
        });
    }

    /// From now on, `method` on paths matching `template` (under `/v1.0`) answers 403
    /// `Authorization_RequestDenied`, as for an app without the permission.
    pub fn deny(&self, method: &str, template: &str) {
        let t = Template::parse(&format!("{PREFIX}{template}"));
        self.with(|s| s.deny.push((method.into(), t)));
    }

    /// The next request answers 429 with `Retry-After: secs` and the throttling headers.
    pub fn throttle_next(&self, secs: u64) {
        let reply = graph_error(
            429,
            "TooManyRequests",
            "Too many requests. Please try again later.",
        )
        .header("retry-after", secs)
        .header(
            "x-ms-throttle-scope",
            "Tenant_Application/ReadWrite/0f6c-app/8f5e1b9c-3d2a-4e6f-9a7b-0c1d2e3f4a5b",
        )
        .header("x-ms-throttle-information", "WriteLimitExceeded");
        self.server.fail_next(Fault::Reply(reply));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    /// `METHOD /path?query` of every request since the last clear.
    pub fn lines(&self) -> Vec<String> {
        self.requests().iter().map(Recorded::line).collect()
    }

    pub fn clear_requests(&self) {
        self.server.clear_requests();
    }

    /// Requests other than `GET` since the last clear: what changed something.
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.method != "GET")
            .map(Recorded::line)
            .collect()
    }

    #[track_caller]
    pub fn assert_contract(&self) {
        self.server.assert_contract(&graph_contract());
        assert!(
            self.users_deleted_via_members().is_empty(),
            "a user was deleted through /groups/{{g}}/members/{{u}} without /$ref"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The contract

/// User properties offboard may `$select` (each is in the v1.0 description's `$select` enum of
/// `GET /users/{id}`).
const USER_SELECT: &[&str] = &[
    "id",
    "userPrincipalName",
    "displayName",
    "mail",
    "accountEnabled",
    "signInSessionsValidFromDateTime",
    "lastPasswordChangeDateTime",
    "onPremisesImmutableId",
    "onPremisesSyncEnabled",
    "assignedLicenses",
    "licenseAssignmentStates",
];

/// Managed-device properties offboard may `$select` (each in the description's enum).
const DEVICE_SELECT: &[&str] = &[
    "id",
    "deviceName",
    "operatingSystem",
    "managementState",
    "deviceActionResults",
    "userId",
    "userPrincipalName",
];

/// The operations offboard's `entra` kind may send, as Microsoft's Graph v1.0 description
/// (../shared/contracts/graph-offboard.strict*.json) gives them: method, path, query options,
/// and the body's property names and types (every declared object closed, as the strict
/// description makes them). Where providers.md's observed wire behaviour differs, it wins
/// (`addLicenses` required). Operations marked "beyond the cut" are documented v1.0 operations
/// the shared description was not cut to include; their shapes follow Microsoft's API
/// reference pages named beside them.
pub fn graph_contract() -> Contract {
    let p = |path: &str| format!("{PREFIX}{path}");
    let select = |names: &[&str]| QueryValue::each_of(names);
    let date_time_zone = obj()
        .req("dateTime", Shape::String)
        .opt("timeZone", Shape::nullable(Shape::String));
    let auto_reply = obj()
        .opt(
            "status",
            Shape::nullable(Shape::one_of(&["disabled", "alwaysEnabled", "scheduled"])),
        )
        .opt(
            "externalAudience",
            Shape::nullable(Shape::one_of(&["none", "contactsOnly", "all"])),
        )
        .opt("internalReplyMessage", Shape::nullable(Shape::String))
        .opt("externalReplyMessage", Shape::nullable(Shape::String))
        .opt(
            "scheduledStartDateTime",
            Shape::nullable(date_time_zone.clone()),
        )
        .opt("scheduledEndDateTime", Shape::nullable(date_time_zone));
    let password_profile = obj()
        .opt(
            "forceChangePasswordNextSignIn",
            Shape::nullable(Shape::Bool),
        )
        .opt(
            "forceChangePasswordNextSignInWithMfa",
            Shape::nullable(Shape::Bool),
        )
        .opt("password", Shape::nullable(Shape::String));
    let assigned_license = obj()
        .opt("disabledPlans", Shape::array(Shape::String))
        .opt("skuId", Shape::nullable(Shape::String));
    let mut c = Contract::new("Microsoft Graph v1.0")
        .every_request_header("authorization: Bearer")
        .op(Operation::new("GET", &p("/users/{id}")).query("$select", false, select(USER_SELECT)))
        // user-update: the properties offboard writes (the description allows every user
        // property; a typo is an undeclared property here).
        .op(Operation::new("PATCH", &p("/users/{id}")).json_body(
            obj()
                .opt("accountEnabled", Shape::nullable(Shape::Bool))
                .opt("passwordProfile", Shape::nullable(password_profile))
                .opt("onPremisesImmutableId", Shape::nullable(Shape::String)),
        ))
        // Beyond the cut: user-delete.md (204, soft delete).
        .op(Operation::new("DELETE", &p("/users/{id}")))
        // Beyond the cut: directory-deleteditems-restore.md (rollback of a delete).
        .op(Operation::new(
            "POST",
            &p("/directory/deletedItems/{id}/restore"),
        ))
        .op(Operation::new(
            "POST",
            &p("/users/{id}/revokeSignInSessions"),
        ))
        .op(
            Operation::new("POST", &p("/users/{id}/assignLicense")).json_body(
                obj()
                    .req("addLicenses", Shape::array(assigned_license))
                    .opt("removeLicenses", Shape::array(Shape::String)),
            ),
        )
        // Beyond the cut: user-list-licensedetails.md.
        .op(Operation::new("GET", &p("/users/{id}/licenseDetails")))
        .op(Operation::new("GET", &p("/users/{id}/memberOf"))
            .query("$top", false, QueryValue::Integer)
            .query("$select", false, select(&["id", "deletedDateTime"]))
            // Issued by the server in `@odata.nextLink`.
            .query("$skiptoken", false, QueryValue::Any))
        .op(Operation::new(
            "DELETE",
            &p("/groups/{id}/members/{id_1}/$ref"),
        ))
        // Beyond the cut: group-post-members.md (rollback re-adds a member by reference).
        .op(Operation::new("POST", &p("/groups/{id}/members/$ref"))
            .json_body(obj().req("@odata.id", Shape::String)))
        .op(Operation::new("GET", &p("/users/{id}/mailboxSettings")))
        .op(
            Operation::new("PATCH", &p("/users/{id}/mailboxSettings")).json_body(
                obj()
                    .opt("automaticRepliesSetting", Shape::nullable(auto_reply))
                    .opt("archiveFolder", Shape::nullable(Shape::String))
                    .opt("timeZone", Shape::nullable(Shape::String)),
            ),
        )
        .op(Operation::new("GET", &p("/users/{id}/managedDevices"))
            .query("$top", false, QueryValue::Integer)
            .query("$select", false, select(DEVICE_SELECT))
            .query("$skiptoken", false, QueryValue::Any))
        .op(
            Operation::new("POST", &p("/deviceManagement/managedDevices/{id_1}/wipe"))
                .optional_json_body(
                    obj()
                        .opt("keepEnrollmentData", Shape::nullable(Shape::Bool))
                        .opt("keepUserData", Shape::nullable(Shape::Bool))
                        .opt("macOsUnlockCode", Shape::nullable(Shape::String))
                        .opt("persistEsimDataPlan", Shape::nullable(Shape::Bool)),
                ),
        )
        .op(Operation::new(
            "POST",
            &p("/deviceManagement/managedDevices/{id_1}/retire"),
        ))
        .op(Operation::new(
            "GET",
            &p("/users/{id}/authentication/methods"),
        ))
        // Beyond the cut: the rule pages (messagerule-list.md, messagerule-delete.md).
        .op(Operation::new(
            "GET",
            &p("/users/{id}/mailFolders/inbox/messageRules"),
        ))
        .op(Operation::new(
            "DELETE",
            &p("/users/{id}/mailFolders/inbox/messageRules/{rule}"),
        ))
        // Beyond the cut: messagerule-post-rules.md (rollback makes a deleted rule again).
        .op(
            Operation::new("POST", &p("/users/{id}/mailFolders/inbox/messageRules")).json_body(
                obj()
                    .req("displayName", Shape::String)
                    .req("sequence", Shape::Integer)
                    .opt("isEnabled", Shape::Bool)
                    .opt("conditions", Shape::Map(Box::new(Shape::Any)))
                    .opt("actions", Shape::Map(Box::new(Shape::Any)))
                    .opt("exceptions", Shape::Map(Box::new(Shape::Any))),
            ),
        )
        // Beyond the cut: user-list-manager.md, drive-get.md, driveitem-invite.md,
        // driveitem-list-permissions.md.
        .op(Operation::new("GET", &p("/users/{id}/manager")))
        .op(Operation::new("GET", &p("/users/{id}/drive")))
        .op(Operation::new(
            "GET",
            &p("/drives/{drive}/root/permissions"),
        ))
        // Beyond the cut: permission-delete.md (rollback takes back the grant offboard made).
        .op(Operation::new(
            "DELETE",
            &p("/drives/{drive}/root/permissions/{perm}"),
        ))
        .op(
            Operation::new("POST", &p("/drives/{drive}/root/invite")).json_body(
                obj()
                    .req(
                        "recipients",
                        Shape::array(
                            obj()
                                .opt("email", Shape::nullable(Shape::String))
                                .opt("alias", Shape::nullable(Shape::String))
                                .opt("objectId", Shape::nullable(Shape::String)),
                        ),
                    )
                    .req("roles", Shape::array(Shape::one_of(&["read", "write"])))
                    .opt("requireSignIn", Shape::nullable(Shape::Bool))
                    .opt("sendInvitation", Shape::nullable(Shape::Bool))
                    .opt("message", Shape::nullable(Shape::String))
                    .opt("expirationDateTime", Shape::nullable(Shape::String))
                    .opt("password", Shape::nullable(Shape::String)),
            ),
        );
    // The three method kinds the description was cut to, then (beyond the cut) the other
    // v1.0 kinds' delete pages.
    for (_, kind) in METHOD_KINDS {
        c = c.op(Operation::new(
            "DELETE",
            &p(&format!("/users/{{id}}/authentication/{kind}/{{id_2}}")),
        ));
    }
    c
}
