//! An in-memory Okta org (Management API) on the fake-server kit, behaving as
//! `../shared/providers.md` §1 records: `Authorization: SSWS <token>` (401 E0000011 otherwise),
//! `GET /api/v1/users/{idOrLogin}` (id or login, case-insensitive; 404 E0000007), the lifecycle
//! operations (suspend only from ACTIVE: 400 E0000001; deactivating a DEPROVISIONED user: 404
//! E0000007, as Okta was observed to answer), `DELETE /api/v1/users/{id}` (deactivates first,
//! deletes the second time), sessions, factors, groups (paged with a `Link: rel="next"` cursor
//! `after`), app links and app unassignment. Every answer carries `X-Rate-Limit-*` headers;
//! errors carry Okta's error body. [`okta_contract`] is the vendor's description of these
//! operations, which every request must keep.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::fake_kit::{Contract, FakeServer, Operation, QueryValue, Recorded, Reply, Req, Routes};

#[derive(Debug, Clone, PartialEq)]
pub struct OktaUser {
    pub login: String,
    pub status: String,
    pub factors: Vec<String>,
    pub groups: Vec<String>,
    /// App ids and labels.
    pub apps: Vec<(String, String)>,
    /// `DELETE …/sessions` calls received, with `oauthTokens`.
    pub sessions_cleared: Vec<Option<String>>,
}

#[derive(Debug, Clone)]
pub struct OktaGroup {
    pub name: String,
    /// OKTA_GROUP, APP_GROUP, BUILT_IN.
    pub kind: String,
    /// Membership held by a group rule: Okta refuses to remove it.
    pub rule: bool,
}

#[derive(Default)]
struct State {
    users: BTreeMap<String, OktaUser>,
    groups: BTreeMap<String, OktaGroup>,
    next: u32,
    page_size: usize,
}

type Shared = Arc<Mutex<State>>;

pub struct FakeOkta {
    pub server: FakeServer,
    state: Shared,
    bearer: Arc<Mutex<Option<String>>>,
}

/// Okta's error body.
pub fn okta_error(status: u16, code: &str, summary: &str) -> Reply {
    Reply::json(
        status,
        &json!({
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": "oae3iIkAVo6RDS2XQAs3l0V2A",
            "errorCauses": [],
        }),
    )
}

fn epoch_in(secs: u64) -> u64 {
    (SystemTime::now() + Duration::from_secs(secs))
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The rate-limit headers every Okta answer carries (a bucket far from empty).
fn limited(r: Reply) -> Reply {
    r.header("x-rate-limit-limit", 600)
        .header("x-rate-limit-remaining", 599)
        .header("x-rate-limit-reset", epoch_in(60))
}

fn not_found(what: &str) -> Reply {
    okta_error(
        404,
        "E0000007",
        &format!("Not found: Resource not found: {what} (User)"),
    )
}

fn render(id: &str, u: &OktaUser) -> Value {
    json!({
        "id": id,
        "status": u.status,
        "created": "2024-01-02T03:04:05.000Z",
        "statusChanged": "2024-01-02T03:04:05.000Z",
        "profile": { "login": u.login, "email": u.login },
        "_links": {},
    })
}

fn find<'a>(s: &'a State, key: &str) -> Option<(&'a String, &'a OktaUser)> {
    s.users
        .iter()
        .find(|(id, u)| *id == key || u.login.eq_ignore_ascii_case(key))
}

impl FakeOkta {
    pub async fn start(token: &str) -> FakeOkta {
        let state: Shared = Arc::new(Mutex::new(State {
            next: 1,
            page_size: 200,
            ..State::default()
        }));
        let base: Arc<std::sync::OnceLock<String>> = Arc::default();
        let want = format!("SSWS {token}");
        let bearer: Arc<Mutex<Option<String>>> = Arc::default();
        let b2 = bearer.clone();
        let authed = Arc::new(move |r: &Req<'_>| {
            let got = r.header("authorization");
            got == Some(&want)
                || b2
                    .lock()
                    .unwrap()
                    .as_ref()
                    .is_some_and(|b| got == Some(&format!("Bearer {b}")))
        });
        let mut routes = Routes::new().error_reply(|status, _| match status {
            429 => okta_error(
                429,
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
            ),
            404 => okta_error(404, "E0000007", "Not found: Resource not found"),
            s => okta_error(s, "E0000009", "Internal Server Error"),
        });
        // Each handler: auth first, then the state under the lock.
        let mut add = |method: &str, template: &str, f: fn(&mut State, &Req<'_>, &str) -> Reply| {
            let (st, a, b) = (state.clone(), authed.clone(), base.clone());
            routes = std::mem::take(&mut routes).route(method, template, move |r| {
                if !a(r) {
                    return okta_error(401, "E0000011", "Invalid token provided");
                }
                limited(f(&mut st.lock().unwrap(), r, b.get().unwrap()))
            });
        };
        add("GET", "/api/v1/users/{id}", |s, r, _| {
            match find(s, r.param("id")) {
                Some((id, u)) => Reply::json(200, &render(id, u)),
                None => not_found(r.param("id")),
            }
        });
        add("POST", "/api/v1/users/{id}/lifecycle/suspend", |s, r, _| {
            let Some(u) = s.users.get_mut(r.param("id")) else {
                return not_found(r.param("id"));
            };
            if u.status != "ACTIVE" {
                return okta_error(
                    400,
                    "E0000001",
                    "Api validation failed: Cannot suspend a user that is not active",
                );
            }
            u.status = "SUSPENDED".into();
            Reply::empty(200)
        });
        add(
            "POST",
            "/api/v1/users/{id}/lifecycle/deactivate",
            |s, r, _| {
                match s.users.get_mut(r.param("id")) {
                    // Observed (okta-sdk-java#721): 404 for a user already DEPROVISIONED.
                    Some(u) if u.status != "DEPROVISIONED" => {
                        u.status = "DEPROVISIONED".into();
                        u.sessions_cleared.push(None);
                        Reply::empty(200)
                    }
                    _ => not_found(r.param("id")),
                }
            },
        );
        add(
            "POST",
            "/api/v1/users/{id}/lifecycle/reset_factors",
            |s, r, _| {
                let Some(u) = s.users.get_mut(r.param("id")) else {
                    return not_found(r.param("id"));
                };
                u.factors.clear();
                Reply::empty(200)
            },
        );
        add("DELETE", "/api/v1/users/{id}/sessions", |s, r, _| {
            let Some(u) = s.users.get_mut(r.param("id")) else {
                return not_found(r.param("id"));
            };
            u.sessions_cleared
                .push(r.query("oauthTokens").map(str::to_string));
            Reply::empty(204)
        });
        add("GET", "/api/v1/users/{id}/factors", |s, r, _| {
            let Some(u) = s.users.get(r.param("id")) else {
                return not_found(r.param("id"));
            };
            let list: Vec<Value> = u
                .factors
                .iter()
                .enumerate()
                .map(|(i, t)| json!({"id": format!("fac{i}"), "factorType": t, "status": "ACTIVE"}))
                .collect();
            Reply::json(200, &Value::Array(list))
        });
        add("GET", "/api/v1/users/{id}/groups", |s, r, base| {
            let Some(u) = s.users.get(r.param("id")) else {
                return not_found(r.param("id"));
            };
            let mut ids: Vec<&String> = u.groups.iter().collect();
            ids.sort();
            let after = r.query("after");
            let limit = r
                .query("limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(s.page_size);
            let rest: Vec<&&String> = ids
                .iter()
                .filter(|g| after.is_none_or(|a| g.as_str() > a))
                .collect();
            let page: Vec<Value> = rest
                .iter()
                .take(limit)
                .map(|gid| {
                    let g = &s.groups[gid.as_str()];
                    json!({"id": gid, "type": g.kind, "profile": {"name": g.name, "description": ""}})
                })
                .collect();
            let path = format!("{base}/api/v1/users/{}/groups", r.param("id"));
            let mut reply = Reply::json(200, &Value::Array(page))
                .header("link", format!("<{path}?limit={limit}>; rel=\"self\""));
            if rest.len() > limit {
                let last = rest[limit - 1];
                reply = reply.header(
                    "link",
                    format!("<{path}?after={last}&limit={limit}>; rel=\"next\""),
                );
            }
            reply
        });
        add(
            "DELETE",
            "/api/v1/groups/{groupId}/users/{userId}",
            |s, r, _| {
                let gid = r.param("groupId").to_string();
                let Some(g) = s.groups.get(&gid).cloned() else {
                    return okta_error(
                        404,
                        "E0000007",
                        "Not found: Resource not found (UserGroup)",
                    );
                };
                if g.kind != "OKTA_GROUP" || g.rule {
                    return okta_error(
                        400,
                        "E0000001",
                        "Api validation failed: Group membership is managed by a group rule",
                    );
                }
                if let Some(u) = s.users.get_mut(r.param("userId")) {
                    u.groups.retain(|x| *x != gid);
                }
                Reply::empty(204)
            },
        );
        // UNCONFIRMED: the exact errorSummary for a user who is not SUSPENDED (the spec lists
        // 400 for this operation).
        add(
            "POST",
            "/api/v1/users/{id}/lifecycle/unsuspend",
            |s, r, _| {
                let Some(u) = s.users.get_mut(r.param("id")) else {
                    return not_found(r.param("id"));
                };
                if u.status != "SUSPENDED" {
                    return okta_error(
                        400,
                        "E0000001",
                        "Api validation failed: Cannot unsuspend a user that is not suspended",
                    );
                }
                u.status = "ACTIVE".into();
                Reply::empty(200)
            },
        );
        // assignUserToGroup: 204 (again for a member already there); 404 for a group that is
        // gone; only OKTA_GROUP memberships can be set through the API (UNCONFIRMED: the exact
        // errorSummary for another type).
        add(
            "PUT",
            "/api/v1/groups/{groupId}/users/{userId}",
            |s, r, _| {
                let gid = r.param("groupId").to_string();
                let Some(g) = s.groups.get(&gid).cloned() else {
                    return okta_error(
                        404,
                        "E0000007",
                        "Not found: Resource not found (UserGroup)",
                    );
                };
                if g.kind != "OKTA_GROUP" {
                    return okta_error(
                        400,
                        "E0000001",
                        "Api validation failed: Cannot modify members of this group type",
                    );
                }
                let Some(u) = s.users.get_mut(r.param("userId")) else {
                    return not_found(r.param("userId"));
                };
                if !u.groups.contains(&gid) {
                    u.groups.push(gid);
                }
                Reply::empty(204)
            },
        );
        add("GET", "/api/v1/users/{id}/appLinks", |s, r, _| {
            let Some(u) = s.users.get(r.param("id")) else {
                return not_found(r.param("id"));
            };
            let list: Vec<Value> = u
                .apps
                .iter()
                .map(|(app, label)| {
                    json!({"id": format!("link-{app}"), "label": label, "appName": "bookmark",
                           "appInstanceId": app, "appAssignmentId": format!("as-{app}"),
                           "linkUrl": "https://x", "hidden": false})
                })
                .collect();
            Reply::json(200, &Value::Array(list))
        });
        add(
            "DELETE",
            "/api/v1/apps/{appId}/users/{userId}",
            |s, r, _| {
                let app = r.param("appId").to_string();
                match s.users.get_mut(r.param("userId")) {
                    Some(u) if u.apps.iter().any(|(a, _)| *a == app) => {
                        u.apps.retain(|(a, _)| *a != app);
                        Reply::empty(204)
                    }
                    _ => okta_error(404, "E0000007", "Not found: Resource not found (AppUser)"),
                }
            },
        );
        add("DELETE", "/api/v1/users/{id}", |s, r, _| {
            let id = r.param("id").to_string();
            let Some(u) = s.users.get_mut(&id) else {
                return not_found(&id);
            };
            if u.status == "DEPROVISIONED" {
                s.users.remove(&id);
            } else {
                u.status = "DEPROVISIONED".into();
            }
            Reply::empty(204)
        });
        let server = FakeServer::start(routes).await;
        base.set(server.base_url.clone()).unwrap();
        FakeOkta {
            server,
            state,
            bearer,
        }
    }

    /// Also accept `Authorization: Bearer <token>` (an OAuth service app's access token).
    pub fn accept_bearer(&self, token: &str) {
        *self.bearer.lock().unwrap() = Some(token.into());
    }

    /// Add an ACTIVE user; its id (`00u1`, `00u2`, …).
    pub fn add_user(&self, login: &str) -> String {
        let mut s = self.state.lock().unwrap();
        let id = format!("00u{}", s.next);
        s.next += 1;
        s.users.insert(
            id.clone(),
            OktaUser {
                login: login.into(),
                status: "ACTIVE".into(),
                factors: Vec::new(),
                groups: Vec::new(),
                apps: Vec::new(),
                sessions_cleared: Vec::new(),
            },
        );
        id
    }

    /// Add a group; its id.
    pub fn add_group(&self, name: &str, kind: &str, rule: bool) -> String {
        let mut s = self.state.lock().unwrap();
        let id = format!("00g{}", s.next);
        s.next += 1;
        s.groups.insert(
            id.clone(),
            OktaGroup {
                name: name.into(),
                kind: kind.into(),
                rule,
            },
        );
        id
    }

    /// Delete a group behind offboard's back.
    pub fn delete_group(&self, id: &str) {
        let mut s = self.state.lock().unwrap();
        s.groups.remove(id);
        for u in s.users.values_mut() {
            u.groups.retain(|g| g != id);
        }
    }

    /// Change a user behind offboard's back.
    pub fn edit(&self, id: &str, f: impl FnOnce(&mut OktaUser)) {
        f(self.state.lock().unwrap().users.get_mut(id).expect("user"))
    }

    pub fn user(&self, id: &str) -> Option<OktaUser> {
        self.state.lock().unwrap().users.get(id).cloned()
    }

    /// Groups per page when the request names no `limit`.
    pub fn set_page_size(&self, n: usize) {
        self.state.lock().unwrap().page_size = n;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    /// Method and path (with query) of each request, in order.
    pub fn lines(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| match &r.raw_query {
                Some(q) => format!("{} {}?{q}", r.method, r.raw_path),
                None => format!("{} {}", r.method, r.raw_path),
            })
            .collect()
    }

    pub fn assert_contract(&self) {
        self.server.assert_contract(&okta_contract());
    }
}

/// Okta's description of the offboarding operations (Management API, `management-oneOf…yaml`):
/// paths, methods and query parameters as declared. `sendEmail` must be `false` and
/// `oauthTokens` `true` wherever sent: offboard's own rule, stricter than the description.
/// Two additions, both from `providers.md` §1: `after`/`limit` on a user's groups (the cursor
/// Okta puts in its `Link: rel="next"`), and `DELETE /api/v1/users/{id}` (not in the cut
/// description).
pub fn okta_contract() -> Contract {
    let boolean = || QueryValue::each_of(&["true", "false"]);
    Contract::new("Okta Management API")
        .every_request_header("authorization")
        .every_request_header("accept: application/json")
        .op(Operation::new("GET", "/api/v1/users/{id}").query("expand", false, QueryValue::Any))
        .op(Operation::new(
            "POST",
            "/api/v1/users/{id}/lifecycle/suspend",
        ))
        .op(
            Operation::new("POST", "/api/v1/users/{id}/lifecycle/deactivate").query(
                "sendEmail",
                true,
                QueryValue::Exact("false".into()),
            ),
        )
        .op(Operation::new(
            "POST",
            "/api/v1/users/{id}/lifecycle/reset_factors",
        ))
        .op(Operation::new("DELETE", "/api/v1/users/{userId}/sessions")
            .query("oauthTokens", true, QueryValue::Exact("true".into()))
            .query("forgetDevices", false, boolean()))
        .op(Operation::new("GET", "/api/v1/users/{id}/groups")
            .query("after", false, QueryValue::Any)
            .query("limit", false, QueryValue::Integer))
        .op(Operation::new(
            "DELETE",
            "/api/v1/groups/{groupId}/users/{userId}",
        ))
        // Rollback's two reverse operations, not in the cut description: providers.md §1
        // (unsuspend) and Okta's assignUserToGroup (`PUT …/groups/{groupId}/users/{userId}`,
        // 204).
        .op(Operation::new(
            "POST",
            "/api/v1/users/{id}/lifecycle/unsuspend",
        ))
        .op(Operation::new(
            "PUT",
            "/api/v1/groups/{groupId}/users/{userId}",
        ))
        .op(Operation::new("GET", "/api/v1/users/{userId}/factors"))
        .op(
            Operation::new("DELETE", "/api/v1/users/{userId}/factors/{factorId}").query(
                "removeRecoveryEnrollment",
                false,
                boolean(),
            ),
        )
        .op(Operation::new("GET", "/api/v1/users/{id}/appLinks"))
        .op(
            Operation::new("DELETE", "/api/v1/apps/{appId}/users/{userId}").query(
                "sendEmail",
                true,
                QueryValue::Exact("false".into()),
            ),
        )
        .op(Operation::new("DELETE", "/api/v1/users/{id}").query(
            "sendEmail",
            true,
            QueryValue::Exact("false".into()),
        ))
}

pub fn system_config(base_url: &str, token: &str) -> offboard::providers::SystemConfig {
    offboard::providers::SystemConfig {
        timeout: Duration::from_secs(10),
        ..offboard::providers::SystemConfig::new("okta", "okta", Some(base_url)).with_token(token)
    }
}
