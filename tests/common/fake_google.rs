//! An in-memory Google Workspace on the fake-server kit: the Admin SDK Directory API (users,
//! sign-out, tokens, app passwords, backup codes, 2SV, groups and memberships), the Data
//! Transfer API, the Gmail settings API and the Enterprise License Manager API, behaving as
//! `../shared/providers.md` §3 records, with Google's error body
//! (`{"error": {"code", "message", "errors": [{message, domain, reason}], "status"}}`).
//!
//! Requests must carry a token from the [`FakeGoogleToken`] it is started with: the token's
//! scopes must include one the operation accepts (else 403 `insufficientPermissions`, as
//! Google answers), Admin SDK and Licensing calls must act as the admin (else 403
//! `forbidden`, "Not Authorized to access this resource/api"), and Gmail calls act on the
//! token's subject's own mailbox (`users/me`). Empty lists leave their key out, as Google does.
//! [`google_contract`] is Google's description of these operations, which every request must
//! keep.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::fake_kit::{
    Contract, FakeServer, Operation, QueryValue, Recorded, Reply, Req, Routes, Shape, obj,
};
use super::fake_token::{FakeGoogleToken, test_rsa_key};

pub const ADMIN: &str = "offboard-bot@corp.test";
pub const CLIENT_EMAIL: &str = "offboard@corp-proj.iam.gserviceaccount.com";
pub const KID: &str = "4f1c0ffee0ddba11";

/// Every scope the provider may ask for, delegated (short names).
pub const ALL_SCOPES: &[&str] = &[
    "admin.directory.user",
    "admin.directory.user.security",
    "admin.directory.group.readonly",
    "admin.directory.group.member",
    "admin.datatransfer",
    "apps.licensing",
    "gmail.settings.basic",
    "gmail.settings.sharing",
];

#[derive(Debug, Clone, PartialEq, Default)]
pub struct GUser {
    pub email: String,
    pub suspended: bool,
    pub enrolled_2sv: bool,
    pub enforced_2sv: bool,
    pub org_unit: String,
    /// (clientId, displayText).
    pub tokens: Vec<(String, String)>,
    /// (codeId, name).
    pub asps: Vec<(i64, String)>,
    pub backup_codes: Vec<String>,
    /// Group ids.
    pub groups: Vec<String>,
    /// Group id → role (`MEMBER` when absent) and delivery setting.
    pub group_roles: BTreeMap<String, (String, String)>,
    pub sign_outs: u32,
    pub vacation: Value,
    /// Forwarding address → verificationStatus.
    pub forwarding: BTreeMap<String, String>,
    pub auto_forwarding: Value,
    /// (productId, skuId, skuName).
    pub licenses: Vec<(String, String, String)>,
}

#[derive(Default)]
struct State {
    users: BTreeMap<String, GUser>,
    /// id → email.
    groups: BTreeMap<String, String>,
    transfers: Vec<Value>,
    next: u64,
    group_page: usize,
    /// New forwarding addresses start `pending` (else `accepted`).
    forwarding_pending: bool,
    /// The admin's role lacks the privileges: every Admin SDK call answers 403 forbidden.
    admin_forbidden: bool,
    /// Deleted users, restorable with users.undelete.
    deleted: BTreeMap<String, GUser>,
    /// SKUs with no licence left (insert answers 412).
    skus_used_up: std::collections::BTreeSet<String>,
    sku_names: BTreeMap<String, String>,
}

type Shared = Arc<Mutex<State>>;

pub struct FakeGoogle {
    pub server: FakeServer,
    pub token: FakeGoogleToken,
    /// The service-account key file's JSON (with the private key).
    pub key_json: String,
    state: Shared,
}

/// Google's error body.
pub fn google_error(code: u16, reason: &str, message: &str) -> Reply {
    let status = match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        _ => "INTERNAL",
    };
    let domain = if reason.contains("RateLimit") || reason.contains("quota") {
        "usageLimits"
    } else {
        "global"
    };
    Reply::json(
        code,
        &json!({"error": {"code": code, "message": message,
                 "errors": [{"message": message, "domain": domain, "reason": reason}],
                 "status": status}}),
    )
}

fn not_found(what: &str) -> Reply {
    google_error(404, "notFound", &format!("Resource Not Found: {what}"))
}

fn render(id: &str, u: &GUser) -> Value {
    json!({
        "kind": "admin#directory#user",
        "id": id,
        "primaryEmail": u.email,
        "name": {"fullName": u.email},
        "isAdmin": false,
        "suspended": u.suspended,
        "isEnrolledIn2Sv": u.enrolled_2sv,
        "isEnforcedIn2Sv": u.enforced_2sv,
        "orgUnitPath": u.org_unit,
    })
}

fn find_id(s: &State, key: &str) -> Option<String> {
    s.users
        .iter()
        .find(|(id, u)| *id == key || u.email.eq_ignore_ascii_case(key))
        .map(|(id, _)| id.clone())
}

/// A list answer: the key left out when empty.
fn listing(kind: &str, key: &str, items: Vec<Value>) -> Value {
    let mut v = json!({"kind": kind, "etag": "\"e1\""});
    if !items.is_empty() {
        v[key] = Value::Array(items);
    }
    v
}

/// Who a request acts as, or the refusal.
enum Caller {
    Admin,
    User(String),
}

impl FakeGoogle {
    pub async fn start() -> FakeGoogle {
        let (pem, public) = test_rsa_key();
        let token = FakeGoogleToken::start(CLIENT_EMAIL, KID, public, ALL_SCOPES).await;
        let key_json = json!({
            "type": "service_account",
            "project_id": "corp-proj",
            "private_key_id": KID,
            "private_key": pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "109876543210987654321",
            "token_uri": token.url,
        })
        .to_string();
        let state: Shared = Arc::new(Mutex::new(State {
            next: 100,
            group_page: 200,
            ..State::default()
        }));
        let mut routes = Routes::new().error_reply(|status, _| match status {
            429 => google_error(429, "rateLimitExceeded", "Rate Limit Exceeded"),
            404 => not_found("path"),
            s => google_error(s, "backendError", "Backend Error"),
        });
        let mut add = |method: &str,
                       template: &str,
                       accepts: &'static [&'static str],
                       f: fn(&mut State, &Req<'_>, &Caller) -> Reply| {
            let (st, tok) = (state.clone(), token.clone());
            let gmail = template.starts_with("/gmail/");
            routes = std::mem::take(&mut routes).route(method, template, move |r| {
                let Some(grant) = r
                    .header("authorization")
                    .and_then(|h| h.strip_prefix("Bearer "))
                    .and_then(|t| tok.grant(t))
                else {
                    return google_error(
                        401,
                        "authError",
                        "Request had invalid authentication credentials.",
                    );
                };
                let has = grant.scopes.iter().any(|s| {
                    accepts
                        .iter()
                        .any(|a| *s == format!("https://www.googleapis.com/auth/{a}"))
                });
                if !has {
                    return google_error(
                        403,
                        "insufficientPermissions",
                        "Request had insufficient authentication scopes.",
                    );
                }
                let mut s = st.lock().unwrap();
                let sub = grant.subject.clone().unwrap_or_default();
                let caller = if gmail {
                    // users/me is the token's subject; another user's mailbox is refused.
                    let uid = r.param("userId");
                    if uid != "me" && !uid.eq_ignore_ascii_case(&sub) {
                        return google_error(
                            403,
                            "forbidden",
                            &format!("Delegation denied for {sub}"),
                        );
                    }
                    match find_id(&s, &sub) {
                        Some(id) if sub != ADMIN => Caller::User(id),
                        _ => {
                            return google_error(
                                400,
                                "failedPrecondition",
                                "Mail service not enabled",
                            );
                        }
                    }
                } else {
                    if sub != ADMIN || s.admin_forbidden {
                        return google_error(
                            403,
                            "forbidden",
                            "Not Authorized to access this resource/api",
                        );
                    }
                    Caller::Admin
                };
                f(&mut s, r, &caller)
            });
        };
        const USER_R: &[&str] = &["admin.directory.user", "admin.directory.user.readonly"];
        const USER_W: &[&str] = &["admin.directory.user"];
        const SEC: &[&str] = &["admin.directory.user.security"];
        add(
            "GET",
            "/admin/directory/v1/users/{userKey}",
            USER_R,
            |s, r, _| match find_id(s, r.param("userKey")) {
                Some(id) => Reply::json(200, &render(&id, &s.users[&id])),
                None => not_found("userKey"),
            },
        );
        add(
            "PATCH",
            "/admin/directory/v1/users/{userKey}",
            USER_W,
            |s, r, _| {
                let Some(id) = find_id(s, r.param("userKey")) else {
                    return not_found("userKey");
                };
                let u = s.users.get_mut(&id).unwrap();
                let body = r.json.cloned().unwrap_or_default();
                if let Some(b) = body.get("suspended").and_then(Value::as_bool) {
                    u.suspended = b;
                }
                if let Some(ou) = body.get("orgUnitPath").and_then(Value::as_str) {
                    if !ou.starts_with('/') {
                        return google_error(400, "invalid", "Invalid Input: orgUnitPath");
                    }
                    u.org_unit = ou.into();
                }
                Reply::json(200, &render(&id, u))
            },
        );
        add(
            "DELETE",
            "/admin/directory/v1/users/{userKey}",
            USER_W,
            |s, r, _| match find_id(s, r.param("userKey")) {
                Some(id) => {
                    let u = s.users.remove(&id).unwrap();
                    s.deleted.insert(id, u);
                    Reply::empty(204)
                }
                None => not_found("userKey"),
            },
        );
        // users.undelete: by the user's id, into `orgUnitPath`; empty answer. A user no longer
        // restorable (past the 20 days) is 404 (UNCONFIRMED: Google's exact answer).
        add(
            "POST",
            "/admin/directory/v1/users/{userKey}/undelete",
            USER_W,
            |s, r, _| {
                let id = r.param("userKey").to_string();
                let Some(mut u) = s.deleted.remove(&id) else {
                    return not_found("userKey");
                };
                if let Some(ou) = r
                    .json
                    .and_then(|j| j.get("orgUnitPath"))
                    .and_then(Value::as_str)
                {
                    u.org_unit = ou.to_string();
                }
                s.users.insert(id, u);
                Reply::empty(204)
            },
        );
        add(
            "POST",
            "/admin/directory/v1/users/{userKey}/signOut",
            SEC,
            |s, r, _| match find_id(s, r.param("userKey")) {
                Some(id) => {
                    s.users.get_mut(&id).unwrap().sign_outs += 1;
                    Reply::empty(204)
                }
                None => not_found("userKey"),
            },
        );
        add(
            "GET",
            "/admin/directory/v1/users/{userKey}/tokens",
            SEC,
            |s, r, _| {
                let Some(id) = find_id(s, r.param("userKey")) else {
                    return not_found("userKey");
                };
                let items = s.users[&id]
                    .tokens
                    .iter()
                    .map(|(c, d)| {
                        json!({"kind": "admin#directory#token", "clientId": c, "displayText": d,
                           "scopes": ["openid"], "anonymous": false, "nativeApp": false,
                           "userKey": id})
                    })
                    .collect();
                Reply::json(200, &listing("admin#directory#tokenList", "items", items))
            },
        );
        add(
            "DELETE",
            "/admin/directory/v1/users/{userKey}/tokens/{clientId}",
            SEC,
            |s, r, _| {
                let Some(id) = find_id(s, r.param("userKey")) else {
                    return not_found("userKey");
                };
                let u = s.users.get_mut(&id).unwrap();
                let before = u.tokens.len();
                u.tokens.retain(|(c, _)| c != r.param("clientId"));
                if u.tokens.len() == before {
                    // UNCONFIRMED: Google's answer for a client with no token.
                    return not_found("clientId");
                }
                Reply::empty(204)
            },
        );
        add(
            "GET",
            "/admin/directory/v1/users/{userKey}/asps",
            SEC,
            |s, r, _| {
                let Some(id) = find_id(s, r.param("userKey")) else {
                    return not_found("userKey");
                };
                let items = s.users[&id]
                    .asps
                    .iter()
                    .map(|(c, n)| {
                        json!({"kind": "admin#directory#asp", "codeId": c, "name": n,
                           "creationTime": "1700000000000", "lastTimeUsed": "0", "userKey": id})
                    })
                    .collect();
                Reply::json(200, &listing("admin#directory#asps", "items", items))
            },
        );
        add(
            "DELETE",
            "/admin/directory/v1/users/{userKey}/asps/{codeId}",
            SEC,
            |s, r, _| {
                let Some(id) = find_id(s, r.param("userKey")) else {
                    return not_found("userKey");
                };
                let Ok(code) = r.param("codeId").parse::<i64>() else {
                    return google_error(400, "invalid", "Invalid Input: codeId");
                };
                let u = s.users.get_mut(&id).unwrap();
                let before = u.asps.len();
                u.asps.retain(|(c, _)| *c != code);
                if u.asps.len() == before {
                    return not_found("codeId");
                }
                Reply::empty(204)
            },
        );
        add(
            "GET",
            "/admin/directory/v1/users/{userKey}/verificationCodes",
            SEC,
            |s, r, _| {
                let Some(id) = find_id(s, r.param("userKey")) else {
                    return not_found("userKey");
                };
                let items = s.users[&id]
                    .backup_codes
                    .iter()
                    .map(|c| {
                        json!({"kind": "admin#directory#verificationCode", "userId": id,
                               "verificationCode": c})
                    })
                    .collect();
                Reply::json(
                    200,
                    &listing("admin#directory#verificationCodesList", "items", items),
                )
            },
        );
        add(
            "POST",
            "/admin/directory/v1/users/{userKey}/verificationCodes/invalidate",
            SEC,
            |s, r, _| match find_id(s, r.param("userKey")) {
                Some(id) => {
                    s.users.get_mut(&id).unwrap().backup_codes.clear();
                    Reply::empty(204)
                }
                None => not_found("userKey"),
            },
        );
        add(
            "POST",
            "/admin/directory/v1/users/{userKey}/twoStepVerification/turnOff",
            SEC,
            |s, r, _| {
                let Some(id) = find_id(s, r.param("userKey")) else {
                    return not_found("userKey");
                };
                let u = s.users.get_mut(&id).unwrap();
                // UNCONFIRMED wording; the refusals themselves are in the GAM docs.
                if u.enforced_2sv {
                    return google_error(
                        400,
                        "failedPrecondition",
                        "Two-step verification is enforced for this user and cannot be turned off",
                    );
                }
                if !u.enrolled_2sv {
                    return google_error(
                        400,
                        "failedPrecondition",
                        "Two-step verification is not enabled for this user",
                    );
                }
                u.enrolled_2sv = false;
                Reply::empty(204)
            },
        );
        add(
            "GET",
            "/admin/directory/v1/groups",
            &["admin.directory.group", "admin.directory.group.readonly"],
            |s, r, _| {
                let Some(key) = r.query("userKey") else {
                    return google_error(400, "invalid", "Bad Request");
                };
                let Some(id) = find_id(s, key) else {
                    return not_found("userKey");
                };
                let mut gids = s.users[&id].groups.clone();
                gids.sort();
                let size = r
                    .query("maxResults")
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(s.group_page);
                let start: usize = r
                    .query("pageToken")
                    .map(|t| t.trim_start_matches("tok-").parse().unwrap_or(usize::MAX))
                    .unwrap_or(0);
                if start > gids.len() {
                    return google_error(400, "invalid", "Invalid Input: pageToken");
                }
                let page: Vec<Value> = gids[start..]
                    .iter()
                    .take(size)
                    .map(|g| {
                        json!({"kind": "admin#directory#group", "id": g, "email": s.groups[g],
                               "name": s.groups[g], "directMembersCount": "3"})
                    })
                    .collect();
                let mut v = listing("admin#directory#groups", "groups", page);
                if start + size < gids.len() {
                    v["nextPageToken"] = json!(format!("tok-{}", start + size));
                }
                Reply::json(200, &v)
            },
        );
        add(
            "DELETE",
            "/admin/directory/v1/groups/{groupKey}/members/{memberKey}",
            &["admin.directory.group", "admin.directory.group.member"],
            |s, r, _| {
                let gid = r.param("groupKey").to_string();
                if !s.groups.contains_key(&gid) {
                    return not_found("groupKey");
                }
                let Some(id) = find_id(s, r.param("memberKey")) else {
                    return not_found("memberKey");
                };
                let u = s.users.get_mut(&id).unwrap();
                if !u.groups.contains(&gid) {
                    return not_found("memberKey");
                }
                u.groups.retain(|g| *g != gid);
                Reply::empty(204)
            },
        );
        // members.get: the member, or 404 "Resource Not Found: memberKey".
        add(
            "GET",
            "/admin/directory/v1/groups/{groupKey}/members/{memberKey}",
            &[
                "admin.directory.group",
                "admin.directory.group.member",
                "admin.directory.group.readonly",
                "admin.directory.group.member.readonly",
            ],
            |s, r, _| {
                let gid = r.param("groupKey").to_string();
                if !s.groups.contains_key(&gid) {
                    return not_found("groupKey");
                }
                let Some(id) = find_id(s, r.param("memberKey")) else {
                    return not_found("memberKey");
                };
                let u = &s.users[&id];
                if !u.groups.contains(&gid) {
                    return not_found("memberKey");
                }
                let (role, delivery) = u
                    .group_roles
                    .get(&gid)
                    .cloned()
                    .unwrap_or(("MEMBER".into(), "ALL_MAIL".into()));
                Reply::json(
                    200,
                    &json!({"kind": "admin#directory#member", "etag": "\"e\"", "id": id,
                            "email": u.email, "role": role, "type": "USER", "status": "ACTIVE",
                            "delivery_settings": delivery}),
                )
            },
        );
        // members.insert: by `email`; 404 for a group that is gone, 409 `duplicate` for a
        // member already there (UNCONFIRMED: the exact words).
        add(
            "POST",
            "/admin/directory/v1/groups/{groupKey}/members",
            &["admin.directory.group", "admin.directory.group.member"],
            |s, r, _| {
                let gid = r.param("groupKey").to_string();
                if !s.groups.contains_key(&gid) {
                    return not_found("groupKey");
                }
                let body = r.json.cloned().unwrap_or_default();
                let Some(email) = body.get("email").and_then(Value::as_str) else {
                    return google_error(400, "required", "Missing required field: memberKey");
                };
                let Some(id) = find_id(s, email) else {
                    return not_found("memberKey");
                };
                let role = body.get("role").and_then(Value::as_str).unwrap_or("MEMBER");
                if !["MEMBER", "MANAGER", "OWNER"].contains(&role) {
                    return google_error(400, "invalid", "Invalid Input: role");
                }
                let delivery = body
                    .get("delivery_settings")
                    .and_then(Value::as_str)
                    .unwrap_or("ALL_MAIL")
                    .to_string();
                let u = s.users.get_mut(&id).unwrap();
                if u.groups.contains(&gid) {
                    return google_error(409, "duplicate", "Member already exists.");
                }
                u.groups.push(gid.clone());
                u.group_roles
                    .insert(gid, (role.to_string(), delivery.clone()));
                Reply::json(
                    200,
                    &json!({"kind": "admin#directory#member", "id": id, "email": email,
                            "role": role, "type": "USER", "status": "ACTIVE",
                            "delivery_settings": delivery}),
                )
            },
        );
        const TRANSFER: &[&str] = &["admin.datatransfer"];
        add(
            "POST",
            "/admin/datatransfer/v1/transfers",
            TRANSFER,
            |s, r, _| {
                let Some(body) = r.json else {
                    return google_error(400, "invalid", "Invalid Input");
                };
                let ids = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
                let (Some(old), Some(new)) = (ids("oldOwnerUserId"), ids("newOwnerUserId")) else {
                    return google_error(400, "invalid", "Invalid Input: user id");
                };
                if !s.users.contains_key(&old) || !s.users.contains_key(&new) {
                    return google_error(400, "invalid", "Invalid Input: user id");
                }
                s.next += 1;
                let mut t = body.clone();
                t["id"] = json!(format!("AKrEtIYG{}", s.next));
                t["kind"] = json!("admin#datatransfer#DataTransfer");
                t["overallTransferStatusCode"] = json!("new");
                t["requestTime"] = json!(format!("2026-12-01T10:{:02}:00.000Z", s.next % 60));
                s.transfers.push(t.clone());
                Reply::json(200, &t)
            },
        );
        const TRANSFER_R: &[&str] = &["admin.datatransfer", "admin.datatransfer.readonly"];
        add(
            "GET",
            "/admin/datatransfer/v1/transfers",
            TRANSFER_R,
            |s, r, _| {
                let list: Vec<Value> = s
                    .transfers
                    .iter()
                    .filter(|t| {
                        ["oldOwnerUserId", "newOwnerUserId"].iter().all(|k| {
                            r.query(k)
                                .is_none_or(|q| t.get(*k).and_then(Value::as_str) == Some(q))
                        })
                    })
                    .cloned()
                    .collect();
                Reply::json(
                    200,
                    &listing(
                        "admin#datatransfer#dataTransfersList",
                        "dataTransfers",
                        list,
                    ),
                )
            },
        );
        add(
            "GET",
            "/admin/datatransfer/v1/transfers/{dataTransferId}",
            TRANSFER_R,
            |s, r, _| match s
                .transfers
                .iter()
                .find(|t| t["id"] == r.param("dataTransferId"))
            {
                Some(t) => Reply::json(200, t),
                None => not_found("dataTransferId"),
            },
        );
        const GMAIL_R: &[&str] = &["gmail.settings.basic", "gmail.readonly"];
        add(
            "GET",
            "/gmail/v1/users/{userId}/settings/vacation",
            GMAIL_R,
            |s, _, c| {
                let Caller::User(id) = c else { unreachable!() };
                Reply::json(200, &s.users[id].vacation)
            },
        );
        add(
            "PUT",
            "/gmail/v1/users/{userId}/settings/vacation",
            &["gmail.settings.basic"],
            |s, r, c| {
                let Caller::User(id) = c else { unreachable!() };
                let mut v = r.json.cloned().unwrap_or_default();
                // Gmail leaves false booleans out of what it answers.
                if let Some(o) = v.as_object_mut() {
                    o.retain(|_, x| *x != json!(false));
                }
                s.users.get_mut(id).unwrap().vacation = v.clone();
                Reply::json(200, &v)
            },
        );
        add(
            "GET",
            "/gmail/v1/users/{userId}/settings/forwardingAddresses/{forwardingEmail}",
            GMAIL_R,
            |s, r, c| {
                let Caller::User(id) = c else { unreachable!() };
                let to = r.param("forwardingEmail");
                match s.users[id].forwarding.get(to) {
                    Some(st) => Reply::json(
                        200,
                        &json!({"forwardingEmail": to, "verificationStatus": st}),
                    ),
                    None => not_found("forwardingEmail"),
                }
            },
        );
        add(
            "POST",
            "/gmail/v1/users/{userId}/settings/forwardingAddresses",
            &["gmail.settings.sharing"],
            |s, r, c| {
                let Caller::User(id) = c else { unreachable!() };
                let Some(to) = r
                    .json
                    .and_then(|j| j.get("forwardingEmail"))
                    .and_then(Value::as_str)
                else {
                    return google_error(400, "invalidArgument", "Invalid forwarding address");
                };
                let status = if s.forwarding_pending {
                    "pending"
                } else {
                    "accepted"
                };
                let u = s.users.get_mut(id).unwrap();
                if u.forwarding.contains_key(to) {
                    return google_error(409, "duplicate", "Forwarding address already exists");
                }
                u.forwarding.insert(to.into(), status.into());
                Reply::json(
                    200,
                    &json!({"forwardingEmail": to, "verificationStatus": status}),
                )
            },
        );
        add(
            "DELETE",
            "/gmail/v1/users/{userId}/settings/forwardingAddresses/{forwardingEmail}",
            &["gmail.settings.sharing"],
            |s, r, c| {
                let Caller::User(id) = c else { unreachable!() };
                let to = r.param("forwardingEmail").to_string();
                let u = s.users.get_mut(id).unwrap();
                if u.forwarding.remove(&to).is_none() {
                    return not_found("forwardingEmail");
                }
                Reply::empty(204)
            },
        );
        add(
            "GET",
            "/gmail/v1/users/{userId}/settings/autoForwarding",
            GMAIL_R,
            |s, _, c| {
                let Caller::User(id) = c else { unreachable!() };
                Reply::json(200, &s.users[id].auto_forwarding)
            },
        );
        add(
            "PUT",
            "/gmail/v1/users/{userId}/settings/autoForwarding",
            &["gmail.settings.sharing"],
            |s, r, c| {
                let Caller::User(id) = c else { unreachable!() };
                let v = r.json.cloned().unwrap_or_default();
                let to = v.get("emailAddress").and_then(Value::as_str).unwrap_or("");
                let u = s.users.get_mut(id).unwrap();
                if v["enabled"] == json!(true)
                    && u.forwarding.get(to).map(String::as_str) != Some("accepted")
                {
                    return google_error(
                        400,
                        "failedPrecondition",
                        "Unverified forwarding address",
                    );
                }
                u.auto_forwarding = v.clone();
                Reply::json(200, &v)
            },
        );
        const LIC: &[&str] = &["apps.licensing"];
        add(
            "GET",
            "/apps/licensing/v1/product/{productId}/sku/{skuId}/user/{userId}",
            LIC,
            |s, r, _| {
                let Some(id) = find_id(s, r.param("userId")) else {
                    return not_found("userId");
                };
                let (p, k) = (r.param("productId"), r.param("skuId"));
                match s.users[&id]
                    .licenses
                    .iter()
                    .find(|(pp, kk, _)| pp == p && kk == k)
                {
                    Some((_, _, name)) => Reply::json(
                        200,
                        &json!({"kind": "licensing#licenseAssignment", "productId": p,
                                "skuId": k, "skuName": name, "userId": s.users[&id].email}),
                    ),
                    None => not_found("user license"),
                }
            },
        );
        add(
            "DELETE",
            "/apps/licensing/v1/product/{productId}/sku/{skuId}/user/{userId}",
            LIC,
            |s, r, _| {
                let Some(id) = find_id(s, r.param("userId")) else {
                    return not_found("userId");
                };
                let (p, k) = (r.param("productId"), r.param("skuId"));
                let u = s.users.get_mut(&id).unwrap();
                let before = u.licenses.len();
                u.licenses.retain(|(pp, kk, _)| !(pp == p && kk == k));
                if u.licenses.len() == before {
                    return not_found("user license");
                }
                Reply::empty(204)
            },
        );
        // licenseAssignments.insert: `{"userId": email}`; 409 for one already held, 412 when the
        // SKU has no licence left (UNCONFIRMED: both answers' exact words).
        add(
            "POST",
            "/apps/licensing/v1/product/{productId}/sku/{skuId}/user",
            LIC,
            |s, r, _| {
                let Some(email) = r.json.and_then(|j| j.get("userId")).and_then(Value::as_str)
                else {
                    return google_error(400, "required", "Required parameter: userId");
                };
                let Some(id) = find_id(s, email) else {
                    return not_found("userId");
                };
                let (p, k) = (
                    r.param("productId").to_string(),
                    r.param("skuId").to_string(),
                );
                if s.skus_used_up.contains(&k) {
                    return google_error(412, "conditionNotMet", "Not enough licenses available");
                }
                let name = s
                    .users
                    .values()
                    .flat_map(|u| u.licenses.iter())
                    .find(|(pp, kk, _)| *pp == p && *kk == k)
                    .map(|(_, _, n)| n.clone())
                    .or_else(|| s.sku_names.get(&k).cloned())
                    .unwrap_or_default();
                let u = s.users.get_mut(&id).unwrap();
                if u.licenses.iter().any(|(pp, kk, _)| *pp == p && *kk == k) {
                    return google_error(409, "duplicate", "User already has a license");
                }
                u.licenses.push((p.clone(), k.clone(), name.clone()));
                Reply::json(
                    200,
                    &json!({"kind": "licensing#licenseAssignment", "productId": p,
                            "skuId": k, "skuName": name, "userId": email}),
                )
            },
        );
        add(
            "GET",
            "/apps/licensing/v1/product/{productId}/users",
            LIC,
            |s, r, _| {
                let p = r.param("productId");
                let items: Vec<Value> = s
                    .users
                    .values()
                    .flat_map(|u| {
                        u.licenses
                            .iter()
                            .filter(|(pp, _, _)| pp == p)
                            .map(|(pp, k, n)| {
                                json!({"kind": "licensing#licenseAssignment", "productId": pp,
                                   "skuId": k, "skuName": n, "userId": u.email})
                            })
                    })
                    .collect();
                Reply::json(
                    200,
                    &listing("licensing#licenseAssignmentList", "items", items),
                )
            },
        );
        let server = FakeServer::start(routes).await;
        FakeGoogle {
            server,
            token,
            key_json,
            state,
        }
    }

    /// Add an active user; its numeric id.
    pub fn add_user(&self, email: &str) -> String {
        let mut s = self.state.lock().unwrap();
        s.next += 1;
        let id = format!("1{:020}", s.next);
        s.users.insert(
            id.clone(),
            GUser {
                email: email.into(),
                org_unit: "/".into(),
                vacation: json!({}),
                auto_forwarding: json!({}),
                ..GUser::default()
            },
        );
        id
    }

    /// Add a group; its id.
    pub fn add_group(&self, email: &str) -> String {
        let mut s = self.state.lock().unwrap();
        s.next += 1;
        let id = format!("0{}grp", s.next);
        s.groups.insert(id.clone(), email.into());
        id
    }

    /// Change a user behind offboard's back.
    pub fn edit(&self, id: &str, f: impl FnOnce(&mut GUser)) {
        f(self.state.lock().unwrap().users.get_mut(id).expect("user"))
    }

    pub fn user(&self, id: &str) -> Option<GUser> {
        self.state.lock().unwrap().users.get(id).cloned()
    }

    pub fn set_group_page(&self, n: usize) {
        self.state.lock().unwrap().group_page = n;
    }

    pub fn set_forwarding_pending(&self, on: bool) {
        self.state.lock().unwrap().forwarding_pending = on;
    }

    /// No licence of `sku` is left to assign (insert answers 412); `name` its skuName.
    pub fn use_up_sku(&self, sku: &str, name: &str) {
        let mut s = self.state.lock().unwrap();
        s.skus_used_up.insert(sku.into());
        s.sku_names.insert(sku.into(), name.into());
    }

    /// A deleted user is past Google's 20 days: gone for good.
    pub fn purge(&self, id: &str) {
        self.state.lock().unwrap().deleted.remove(id);
    }

    /// Delete a group behind offboard's back.
    pub fn delete_group(&self, id: &str) {
        let mut s = self.state.lock().unwrap();
        s.groups.remove(id);
        for u in s.users.values_mut() {
            u.groups.retain(|g| g != id);
        }
    }

    pub fn set_admin_forbidden(&self, on: bool) {
        self.state.lock().unwrap().admin_forbidden = on;
    }

    pub fn transfers(&self) -> Vec<Value> {
        self.state.lock().unwrap().transfers.clone()
    }

    /// Move a transfer on (`inProgress`, `completed`, `failed`).
    pub fn set_transfer_status(&self, id: &str, status: &str) {
        let mut s = self.state.lock().unwrap();
        let t = s
            .transfers
            .iter_mut()
            .find(|t| t["id"] == id)
            .expect("transfer");
        t["overallTransferStatusCode"] = json!(status);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    /// Method and path (with query) of each request, in order.
    pub fn lines(&self) -> Vec<String> {
        self.requests().iter().map(Recorded::line).collect()
    }

    pub fn assert_contract(&self) {
        self.server.assert_contract(&google_contract());
        super::vendor_docs::assert_matches_discovery(
            &self.requests(),
            &[
                "admin.directory_v1",
                "admin.datatransfer_v1",
                "gmail.v1",
                "licensing.v1",
            ],
        );
    }
}

/// Google's description of these operations: the Admin SDK Directory and Data Transfer
/// descriptions (Discovery, as published in `google-api-python-client`), and for the
/// operations they leave out (`DELETE users/{userKey}`, `GET …/verificationCodes`, Gmail,
/// Licensing) Google's reference pages: paths, methods, query parameters and body properties
/// with their types and enums. Unknown body properties are violations: the Discovery schemas
/// declare every property.
pub fn google_contract() -> Contract {
    let user_patch = obj()
        .opt("suspended", Shape::Bool)
        .opt("orgUnitPath", Shape::String)
        .opt("suspensionReason", Shape::String)
        .opt("archived", Shape::Bool);
    let transfer_param = obj()
        .req("key", Shape::String)
        .req("value", Shape::array(Shape::String));
    let transfer = obj()
        .req("oldOwnerUserId", Shape::String)
        .req("newOwnerUserId", Shape::String)
        .req(
            "applicationDataTransfers",
            Shape::array(
                obj()
                    .req("applicationId", Shape::String)
                    .opt("applicationTransferParams", Shape::array(transfer_param)),
            ),
        );
    let vacation = obj()
        .opt("enableAutoReply", Shape::Bool)
        .opt("responseSubject", Shape::String)
        .opt("responseBodyPlainText", Shape::String)
        .opt("responseBodyHtml", Shape::String)
        .opt("restrictToContacts", Shape::Bool)
        .opt("restrictToDomain", Shape::Bool)
        .opt("startTime", Shape::String)
        .opt("endTime", Shape::String);
    let auto_forwarding = obj()
        .opt("enabled", Shape::Bool)
        .opt("emailAddress", Shape::String)
        .opt(
            "disposition",
            Shape::one_of(&[
                "dispositionUnspecified",
                "leaveInInbox",
                "archive",
                "trash",
                "markRead",
            ]),
        );
    let dir = |m: &str, p: &str| Operation::new(m, &format!("/admin/directory/v1{p}"));
    let gmail = |m: &str, p: &str| Operation::new(m, &format!("/gmail/v1/users/{{userId}}{p}"));
    let lic = "/apps/licensing/v1/product/{productId}/sku/{skuId}/user/{userId}";
    Contract::new("Google Workspace (Admin SDK, Gmail, Licensing)")
        .every_request_header("authorization")
        .op(dir("GET", "/users/{userKey}")
            .query("customFieldMask", false, QueryValue::Any)
            .query(
                "projection",
                false,
                QueryValue::each_of(&["basic", "custom", "full"]),
            )
            .query(
                "viewType",
                false,
                QueryValue::each_of(&["admin_view", "domain_public"]),
            ))
        .op(dir("PATCH", "/users/{userKey}").json_body(user_patch))
        .op(dir("DELETE", "/users/{userKey}"))
        .op(dir("POST", "/users/{userKey}/undelete")
            .json_body(obj().opt("orgUnitPath", Shape::String)))
        .op(dir("POST", "/users/{userKey}/signOut"))
        .op(dir("GET", "/users/{userKey}/tokens"))
        .op(dir("DELETE", "/users/{userKey}/tokens/{clientId}"))
        .op(dir("GET", "/users/{userKey}/asps"))
        .op(dir("DELETE", "/users/{userKey}/asps/{codeId}"))
        .op(dir("GET", "/users/{userKey}/verificationCodes"))
        .op(dir("POST", "/users/{userKey}/verificationCodes/invalidate"))
        .op(dir("POST", "/users/{userKey}/twoStepVerification/turnOff"))
        .op(dir("GET", "/groups")
            .query("customer", false, QueryValue::Any)
            .query("domain", false, QueryValue::Any)
            .query("maxResults", false, QueryValue::Integer)
            .query("orderBy", false, QueryValue::each_of(&["email"]))
            .query("pageToken", false, QueryValue::Any)
            .query("query", false, QueryValue::Any)
            .query(
                "sortOrder",
                false,
                QueryValue::each_of(&["ASCENDING", "DESCENDING"]),
            )
            .query("userKey", false, QueryValue::Any))
        .op(dir("DELETE", "/groups/{groupKey}/members/{memberKey}"))
        // Rollback: members.get reads the role, members.insert puts the membership back.
        .op(dir("GET", "/groups/{groupKey}/members/{memberKey}"))
        .op(dir("POST", "/groups/{groupKey}/members").json_body(
            obj()
                .opt("email", Shape::String)
                .opt("role", Shape::one_of(&["MEMBER", "MANAGER", "OWNER"]))
                .opt(
                    "type",
                    Shape::one_of(&["USER", "GROUP", "CUSTOMER", "EXTERNAL"]),
                )
                .opt(
                    "delivery_settings",
                    Shape::one_of(&["ALL_MAIL", "DAILY", "DIGEST", "DISABLED", "NONE"]),
                ),
        ))
        .op(Operation::new("POST", "/admin/datatransfer/v1/transfers").json_body(transfer))
        .op(Operation::new("GET", "/admin/datatransfer/v1/transfers")
            .query("customerId", false, QueryValue::Any)
            .query("maxResults", false, QueryValue::Integer)
            .query("newOwnerUserId", false, QueryValue::Any)
            .query("oldOwnerUserId", false, QueryValue::Any)
            .query("pageToken", false, QueryValue::Any)
            .query("status", false, QueryValue::Any))
        .op(Operation::new(
            "GET",
            "/admin/datatransfer/v1/transfers/{dataTransferId}",
        ))
        .op(gmail("GET", "/settings/vacation"))
        .op(gmail("PUT", "/settings/vacation").json_body(vacation))
        .op(gmail(
            "GET",
            "/settings/forwardingAddresses/{forwardingEmail}",
        ))
        .op(gmail("POST", "/settings/forwardingAddresses").json_body(
            obj().req("forwardingEmail", Shape::String).opt(
                "verificationStatus",
                Shape::one_of(&["verificationStatusUnspecified", "accepted", "pending"]),
            ),
        ))
        .op(gmail(
            "DELETE",
            "/settings/forwardingAddresses/{forwardingEmail}",
        ))
        .op(gmail("GET", "/settings/autoForwarding"))
        .op(gmail("PUT", "/settings/autoForwarding").json_body(auto_forwarding))
        .op(Operation::new("GET", lic))
        .op(Operation::new("DELETE", lic))
        .op(Operation::new(
            "POST",
            "/apps/licensing/v1/product/{productId}/sku/{skuId}/user",
        )
        .json_body(obj().req("userId", Shape::String)))
        .op(
            Operation::new("GET", "/apps/licensing/v1/product/{productId}/users")
                .query("customerId", true, QueryValue::Any)
                .query("maxResults", false, QueryValue::Integer)
                .query("pageToken", false, QueryValue::Any),
        )
}

/// A `google` system pointing every API at the fake, with the key file as its secret.
pub fn system_config(fake: &FakeGoogle) -> offboard::providers::SystemConfig {
    let mut cfg = offboard::providers::SystemConfig {
        timeout: std::time::Duration::from_secs(10),
        ..offboard::providers::SystemConfig::new("workspace", "google", Some(&fake.server.base_url))
    };
    cfg.settings
        .insert("admin".into(), toml::Value::String(ADMIN.into()));
    cfg.secrets.insert(
        "service_account".into(),
        secrecy::SecretString::from(fake.key_json.clone()),
    );
    cfg
}
