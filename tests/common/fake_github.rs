//! A fake of GitHub's REST API (one organization) on the fake-server kit, as
//! ../shared/providers.md §5 observes it: Bearer auth (a fine-grained token, or installation
//! tokens issued by `POST /app/installations/{installation_id}/access_tokens` to a GitHub App
//! whose RS256 JWT verifies against its public key, each expiring at its `expires_at`); `GET
//! /users/{username}` (numeric `id`); memberships (`GET` 200 `{state, role, user}` / 404,
//! `DELETE` 204 / 404); invitations and outside collaborators as top-level arrays paged with
//! `Link` headers (`page`, `per_page`, a page size of its own to force paging); GitHub's error
//! bodies `{message, documentation_url, status}`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::fake_kit::{
    Contract, FakeServer, Operation, QueryValue, Recorded, Reply, Req, Routes, Shape, obj,
};

pub const DOCS: &str = "https://docs.github.com/rest";

#[derive(Debug, Clone)]
pub struct Membership {
    pub state: String,
    pub role: String,
}

#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: u64,
    pub login: Option<String>,
    pub email: Option<String>,
    /// `direct_member`, `admin`, `billing_manager`, …
    pub role: String,
    pub team_ids: Vec<u64>,
}

/// A team: its members' team memberships by user id (`pending` while the person has not
/// accepted the org invitation a team add sent).
#[derive(Debug, Clone)]
pub struct Team {
    pub id: u64,
    pub slug: String,
    pub members: BTreeMap<u64, Membership>,
}

pub struct App {
    pub app_id: String,
    pub installation_id: u64,
    pub public_der: Vec<u8>,
    /// Life of each installation token issued.
    pub token_life: Duration,
}

#[derive(Default)]
pub struct State {
    pub org: String,
    pub pat: String,
    /// login (lowercase) → (id, login as written).
    pub users: BTreeMap<String, (u64, String)>,
    pub members: BTreeMap<u64, Membership>,
    pub invitations: Vec<Invitation>,
    pub outside: Vec<u64>,
    pub teams: Vec<Team>,
    pub app: Option<App>,
    /// Installation tokens issued and when each expires.
    pub installation_tokens: Vec<(String, SystemTime)>,
    /// JWTs refused, with GitHub's words.
    pub refused_jwts: Vec<String>,
    /// Items per page of a list (GitHub's is `per_page`, at most 100).
    pub page_size: usize,
    /// Answer 403 (GitHub's message) to DELETE on memberships: a token without the permission.
    pub forbid_removal: bool,
    /// Request bodies the PUT and POST routes were sent, in order.
    pub writes: Vec<(String, Value)>,
    next_id: u64,
}

pub struct FakeGitHub {
    pub server: FakeServer,
    pub state: Arc<Mutex<State>>,
}

pub fn error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({ "message": message, "documentation_url": DOCS, "status": status.to_string() }),
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// GitHub's check of an app JWT: RS256 over the app's key, `iss` the app, issued in the past,
/// expiring in the future and no more than 10 minutes after it was issued.
fn check_jwt(app: &App, jwt: &str) -> Result<(), String> {
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, p, sig] = parts.as_slice() else {
        return Err("A JSON web token could not be decoded".into());
    };
    let decode = |part: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| "A JSON web token could not be decoded".to_string())?;
        serde_json::from_slice(&bytes).map_err(|_| "A JSON web token could not be decoded".into())
    };
    let (header, claims) = (decode(h)?, decode(p)?);
    if header["alg"].as_str() != Some("RS256") {
        return Err("'alg' must be RS256".into());
    }
    let signature = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| "A JSON web token could not be decoded".to_string())?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &app.public_der)
        .verify(format!("{h}.{p}").as_bytes(), &signature)
        .map_err(|_| "A JSON web token could not be decoded".to_string())?;
    let iss = match &claims["iss"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    if iss != app.app_id {
        return Err("'Issuer' claim ('iss') must be an Integer or the app's client ID".into());
    }
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap_or(0),
        claims["exp"].as_u64().unwrap_or(0),
    );
    let t = now();
    if iat > t + 1 {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing a time in the past".into(),
        );
    }
    if exp <= t || exp > iat + 600 {
        return Err("'Expiration time' claim ('exp') is too far in the future".into());
    }
    Ok(())
}

impl FakeGitHub {
    pub async fn start(org: &str, pat: &str) -> FakeGitHub {
        let state = Arc::new(Mutex::new(State {
            org: org.into(),
            pat: pat.into(),
            page_size: 2,
            next_id: 500,
            ..State::default()
        }));
        let base: Arc<std::sync::OnceLock<String>> = Arc::default();
        let s = state.clone();
        let authed = move |r: &Req<'_>| -> bool {
            let Some(token) = r
                .header("authorization")
                .and_then(|h| h.strip_prefix("Bearer "))
            else {
                return false;
            };
            let st = s.lock().unwrap();
            token == st.pat
                || st
                    .installation_tokens
                    .iter()
                    .any(|(t, exp)| t == token && SystemTime::now() < *exp)
        };
        let auth = Arc::new(authed);

        // One handler per route over the shared state.
        let route = |f: fn(&mut State, &Req<'_>, &str) -> Reply| {
            let (st, a, b) = (state.clone(), auth.clone(), base.clone());
            move |r: &Req<'_>| -> Reply {
                if !a(r) {
                    return error(401, "Bad credentials");
                }
                let mut st = st.lock().unwrap();
                if r.params
                    .get("org")
                    .is_some_and(|o| !o.eq_ignore_ascii_case(&st.org))
                {
                    return error(404, "Not Found");
                }
                // Every answer carries the primary limit's headers, plenty left.
                f(&mut st, r, b.get().map(String::as_str).unwrap_or(""))
                    .header("x-ratelimit-limit", 5000)
                    .header("x-ratelimit-remaining", 4999)
                    .header("x-ratelimit-used", 1)
                    .header("x-ratelimit-reset", now() + 3600)
                    .header("x-ratelimit-resource", "core")
            }
        };
        let st = state.clone();
        let routes = Routes::new()
            .error_reply(error)
            .route(
                "POST",
                "/app/installations/{installation_id}/access_tokens",
                move |r| {
                    let mut st = st.lock().unwrap();
                    let Some(app) = &st.app else {
                        return error(401, "A JSON web token could not be decoded");
                    };
                    let jwt = r
                        .header("authorization")
                        .and_then(|h| h.strip_prefix("Bearer "))
                        .unwrap_or("");
                    if let Err(why) = check_jwt(app, jwt) {
                        st.refused_jwts.push(why.clone());
                        return error(401, &why);
                    }
                    if r.param("installation_id") != app.installation_id.to_string() {
                        return error(404, "Not Found");
                    }
                    let life = app.token_life;
                    st.next_id += 1;
                    let token = format!("ghs_fakeinstallation{}", st.next_id);
                    let expires = SystemTime::now() + life;
                    st.installation_tokens.push((token.clone(), expires));
                    let at = chrono::DateTime::<chrono::Utc>::from(expires)
                        .format("%Y-%m-%dT%H:%M:%SZ")
                        .to_string();
                    Reply::json(
                        201,
                        &json!({ "token": token, "expires_at": at,
                                 "permissions": { "members": "write" },
                                 "repository_selection": "all" }),
                    )
                },
            )
            .route(
                "GET",
                "/users/{username}",
                route(|st, r, _| match st.users.get(&r.param("username").to_lowercase()) {
                    Some((id, login)) => Reply::json(
                        200,
                        &json!({ "login": login, "id": id, "type": "User", "site_admin": false }),
                    ),
                    None => error(404, "Not Found"),
                }),
            )
            .route(
                "GET",
                "/orgs/{org}/memberships/{username}",
                route(|st, r, _| {
                    let Some((id, login)) = st.user(r.param("username")) else {
                        return error(404, "Not Found");
                    };
                    match st.members.get(&id) {
                        Some(m) => Reply::json(
                            200,
                            &json!({
                                "url": "", "state": m.state, "role": m.role,
                                "organization": { "login": st.org },
                                "user": { "login": login, "id": id },
                            }),
                        ),
                        None => error(404, "Not Found"),
                    }
                }),
            )
            .route(
                "DELETE",
                "/orgs/{org}/memberships/{username}",
                route(|st, r, _| {
                    if st.forbid_removal {
                        return error(403, "You must be an admin to remove a member.");
                    }
                    let Some((id, login)) = st.user(r.param("username")) else {
                        return error(404, "Not Found");
                    };
                    // Removing a membership also cancels a pending invitation.
                    st.invitations
                        .retain(|i| !i.login.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(&login)));
                    // …and leaves every team.
                    for t in &mut st.teams {
                        t.members.remove(&id);
                    }
                    match st.members.remove(&id) {
                        Some(_) => Reply::empty(204),
                        None => error(404, "Not Found"),
                    }
                }),
            )
            .route(
                "GET",
                "/orgs/{org}/invitations",
                route(|st, r, base| {
                    let all: Vec<Value> = st
                        .invitations
                        .iter()
                        .map(|i| {
                            json!({ "id": i.id, "login": i.login, "email": i.email,
                                    "role": i.role, "team_count": i.team_ids.len(),
                                    "invitation_source": "member" })
                        })
                        .collect();
                    page(st, r, base, "invitations", all)
                }),
            )
            .route(
                "DELETE",
                "/orgs/{org}/invitations/{invitation_id}",
                route(|st, r, _| {
                    let before = st.invitations.len();
                    let id = r.param("invitation_id");
                    // The pending membership an invitation stands for goes with it.
                    let login = st
                        .invitations
                        .iter()
                        .find(|i| i.id.to_string() == id)
                        .and_then(|i| i.login.clone());
                    if let Some((uid, _)) = login.and_then(|l| st.user(&l))
                        && st.members.get(&uid).is_some_and(|m| m.state == "pending")
                    {
                        st.members.remove(&uid);
                    }
                    st.invitations.retain(|i| i.id.to_string() != id);
                    if st.invitations.len() < before {
                        Reply::empty(204)
                    } else {
                        error(404, "Not Found")
                    }
                }),
            )
            .route(
                "PUT",
                "/orgs/{org}/memberships/{username}",
                route(|st, r, _| {
                    let Some((id, login)) = st.user(r.param("username")) else {
                        return error(404, "Not Found");
                    };
                    let body = r.json.cloned().unwrap_or(Value::Null);
                    st.writes.push((r.raw_path.to_string(), body.clone()));
                    let role = body["role"].as_str().unwrap_or("member").to_string();
                    if !matches!(role.as_str(), "admin" | "member") {
                        return error(422, "Validation Failed");
                    }
                    // A member's role changes; anyone else is invited (pending until accepted).
                    let m = st.members.entry(id).or_insert(Membership {
                        state: "pending".into(),
                        role: role.clone(),
                    });
                    m.role = role;
                    let m = m.clone();
                    Reply::json(
                        200,
                        &json!({ "url": "", "state": m.state, "role": m.role,
                                 "organization": { "login": st.org },
                                 "user": { "login": login, "id": id } }),
                    )
                }),
            )
            .route(
                "POST",
                "/orgs/{org}/invitations",
                route(|st, r, _| {
                    let body = r.json.cloned().unwrap_or(Value::Null);
                    st.writes.push((r.raw_path.to_string(), body.clone()));
                    let login = match body["invitee_id"].as_u64() {
                        Some(uid) => match st.users.values().find(|(i, _)| *i == uid) {
                            Some((_, l)) => Some(l.clone()),
                            None => return error(404, "Not Found"),
                        },
                        None => None,
                    };
                    let email = body["email"].as_str().map(str::to_string);
                    if login.is_none() && email.is_none() {
                        return error(422, "Validation Failed");
                    }
                    let team_ids: Vec<u64> = body["team_ids"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_u64).collect())
                        .unwrap_or_default();
                    // An invited user's membership reads pending until they accept.
                    if let Some(uid) = body["invitee_id"].as_u64() {
                        let role = match body["role"].as_str().unwrap_or("direct_member") {
                            "direct_member" | "reinstate" => "member",
                            other => other,
                        };
                        st.members.entry(uid).or_insert(Membership {
                            state: "pending".into(),
                            role: role.into(),
                        });
                    }
                    st.next_id += 1;
                    let inv = Invitation {
                        id: st.next_id,
                        login,
                        email,
                        role: body["role"].as_str().unwrap_or("direct_member").to_string(),
                        team_ids,
                    };
                    st.invitations.push(inv.clone());
                    Reply::json(
                        201,
                        &json!({ "id": inv.id, "login": inv.login, "email": inv.email,
                                 "role": inv.role, "team_count": inv.team_ids.len() }),
                    )
                }),
            )
            .route(
                "GET",
                "/orgs/{org}/invitations/{invitation_id}/teams",
                route(|st, r, base| {
                    let id = r.param("invitation_id");
                    let Some(inv) = st.invitations.iter().find(|i| i.id.to_string() == id) else {
                        return error(404, "Not Found");
                    };
                    let all: Vec<Value> = st
                        .teams
                        .iter()
                        .filter(|t| inv.team_ids.contains(&t.id))
                        .map(|t| json!({ "id": t.id, "slug": t.slug, "name": t.slug }))
                        .collect();
                    page(st, r, base, &format!("invitations/{id}/teams"), all)
                }),
            )
            .route(
                "GET",
                "/orgs/{org}/teams",
                route(|st, r, base| {
                    let all: Vec<Value> = st
                        .teams
                        .iter()
                        .map(|t| json!({ "id": t.id, "slug": t.slug, "name": t.slug }))
                        .collect();
                    page(st, r, base, "teams", all)
                }),
            )
            .route(
                "GET",
                "/orgs/{org}/teams/{team_slug}/memberships/{username}",
                route(|st, r, _| {
                    let Some((id, _)) = st.user(r.param("username")) else {
                        return error(404, "Not Found");
                    };
                    let slug = r.param("team_slug");
                    match st
                        .teams
                        .iter()
                        .find(|t| t.slug == slug)
                        .and_then(|t| t.members.get(&id))
                    {
                        Some(m) => Reply::json(
                            200,
                            &json!({ "url": "", "role": m.role, "state": m.state }),
                        ),
                        None => error(404, "Not Found"),
                    }
                }),
            )
            .route(
                "PUT",
                "/orgs/{org}/teams/{team_slug}/memberships/{username}",
                route(|st, r, _| {
                    let Some((id, _)) = st.user(r.param("username")) else {
                        return error(404, "Not Found");
                    };
                    let body = r.json.cloned().unwrap_or(Value::Null);
                    st.writes.push((r.raw_path.to_string(), body.clone()));
                    let role = body["role"].as_str().unwrap_or("member").to_string();
                    if !matches!(role.as_str(), "member" | "maintainer") {
                        return error(422, "Validation Failed");
                    }
                    // Someone not (yet) an active org member is invited: pending.
                    let state = match st.members.get(&id) {
                        Some(m) if m.state == "active" => "active",
                        _ => "pending",
                    };
                    let slug = r.param("team_slug").to_string();
                    let Some(team) = st.teams.iter_mut().find(|t| t.slug == slug) else {
                        return error(404, "Not Found");
                    };
                    let m = team.members.entry(id).or_insert(Membership {
                        state: state.into(),
                        role: role.clone(),
                    });
                    m.role = role;
                    let m = m.clone();
                    Reply::json(200, &json!({ "url": "", "role": m.role, "state": m.state }))
                }),
            )
            .route(
                "GET",
                "/orgs/{org}/outside_collaborators",
                route(|st, r, base| {
                    let all: Vec<Value> = st
                        .outside
                        .iter()
                        .map(|id| {
                            let login = st
                                .users
                                .values()
                                .find(|(i, _)| i == id)
                                .map(|(_, l)| l.clone())
                                .unwrap_or_default();
                            json!({ "login": login, "id": id, "type": "User" })
                        })
                        .collect();
                    page(st, r, base, "outside_collaborators", all)
                }),
            )
            .route(
                "DELETE",
                "/orgs/{org}/outside_collaborators/{username}",
                route(|st, r, _| {
                    let Some((id, _)) = st.user(r.param("username")) else {
                        return error(404, "Not Found");
                    };
                    if st.members.contains_key(&id) {
                        return error(
                            422,
                            "You cannot specify an organization member to remove as an outside \
                             collaborator.",
                        );
                    }
                    st.outside.retain(|o| *o != id);
                    Reply::empty(204)
                }),
            );
        let server = FakeServer::start(routes).await;
        base.set(server.base_url.clone()).unwrap();
        FakeGitHub { server, state }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// A GitHub user; its numeric id.
    pub fn add_user(&self, login: &str) -> u64 {
        self.with(|st| {
            st.next_id += 1;
            let id = st.next_id;
            st.users
                .insert(login.to_lowercase(), (id, login.to_string()));
            id
        })
    }

    pub fn add_member(&self, login: &str) -> u64 {
        let id = self.add_user(login);
        self.with(|st| {
            st.members.insert(
                id,
                Membership {
                    state: "active".into(),
                    role: "member".into(),
                },
            )
        });
        id
    }

    pub fn add_invitation(&self, login: Option<&str>, email: Option<&str>) -> u64 {
        self.with(|st| {
            st.next_id += 1;
            st.invitations.push(Invitation {
                id: st.next_id,
                login: login.map(str::to_string),
                email: email.map(str::to_string),
                role: "direct_member".into(),
                team_ids: Vec::new(),
            });
            st.next_id
        })
    }

    /// A team; its id.
    pub fn add_team(&self, slug: &str) -> u64 {
        self.with(|st| {
            st.next_id += 1;
            let id = st.next_id;
            st.teams.push(Team {
                id,
                slug: slug.into(),
                members: BTreeMap::new(),
            });
            id
        })
    }

    /// `user` in team `slug` as `role` (`member` or `maintainer`), active.
    pub fn add_to_team(&self, slug: &str, user: u64, role: &str) {
        self.with(|st| {
            let team = st.teams.iter_mut().find(|t| t.slug == slug).unwrap();
            team.members.insert(
                user,
                Membership {
                    state: "active".into(),
                    role: role.into(),
                },
            );
        })
    }

    /// The person accepts the invitation a re-invite sent: the org membership and the team
    /// memberships waiting on it become active.
    pub fn accept_invitation(&self, user: u64) {
        self.with(|st| {
            if let Some(m) = st.members.get_mut(&user) {
                m.state = "active".into();
            }
            for t in &mut st.teams {
                if let Some(m) = t.members.get_mut(&user) {
                    m.state = "active".into();
                }
            }
        })
    }

    pub fn membership(&self, id: u64) -> Option<Membership> {
        self.with(|st| st.members.get(&id).cloned())
    }

    pub fn is_member(&self, id: u64) -> bool {
        self.with(|st| st.members.contains_key(&id))
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests()
    }

    /// The requests sent, as `METHOD path?query` lines.
    pub fn lines(&self) -> Vec<String> {
        self.requests().iter().map(|r| r.line()).collect()
    }

    /// Every request matches [`github_contract`], and GitHub's own OpenAPI description
    /// (@octokit/openapi, fetched by tests/vendor-docs.sh; skipped locally when absent).
    pub fn assert_contract(&self) {
        self.server.assert_contract(&github_contract());
        super::vendor_docs::assert_matches_github(&self.requests());
    }
}

impl State {
    fn user(&self, login: &str) -> Option<(u64, String)> {
        self.users.get(&login.to_lowercase()).cloned()
    }
}

/// One page of `all` (`page` from 1), with GitHub's Link header to the next.
fn page(st: &State, r: &Req<'_>, base: &str, what: &str, all: Vec<Value>) -> Reply {
    let per: usize = r
        .query("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100)
        .min(st.page_size);
    let n: usize = r
        .query("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let chunk: Vec<Value> = all.iter().skip((n - 1) * per).take(per).cloned().collect();
    let mut reply = Reply::json(200, &Value::Array(chunk));
    if n * per < all.len() {
        let url = |p: usize| {
            format!(
                "{base}/orgs/{}/{what}?per_page={}&page={p}",
                st.org,
                r.query("per_page").unwrap_or("30")
            )
        };
        let last = all.len().div_ceil(per);
        reply = reply.header(
            "link",
            format!(
                "<{}>; rel=\"next\", <{}>; rel=\"last\"",
                url(n + 1),
                url(last)
            ),
        );
    }
    reply
}

/// GitHub's operations as its OpenAPI description (../shared/contracts/github-offboard.json,
/// and @octokit/openapi for those it leaves out) declares them: the pinned API version and media
/// type on every request, Bearer auth, paths and query parameters with their enums.
pub fn github_contract() -> Contract {
    let paged = |op: Operation| {
        op.query("per_page", false, QueryValue::Integer)
            .query("page", false, QueryValue::Integer)
    };
    let one_of = |v: &[&str]| QueryValue::EachOf(v.iter().map(|s| s.to_string()).collect());
    Contract::new("GitHub REST 2022-11-28")
        .every_request_header("authorization: Bearer")
        .every_request_header("accept: application/vnd.github+json")
        .every_request_header("x-github-api-version: 2022-11-28")
        .op(
            Operation::new("POST", "/app/installations/{installation_id}/access_tokens")
                .optional_json_body(
                    obj()
                        .opt("repositories", Shape::array(Shape::String))
                        .opt("repository_ids", Shape::array(Shape::Integer))
                        .opt("permissions", Shape::map(Shape::String)),
                ),
        )
        .op(Operation::new("GET", "/users/{username}"))
        .op(Operation::new("GET", "/orgs/{org}/memberships/{username}"))
        .op(Operation::new(
            "DELETE",
            "/orgs/{org}/memberships/{username}",
        ))
        .op(paged(
            Operation::new("GET", "/orgs/{org}/invitations")
                .query(
                    "role",
                    false,
                    one_of(&[
                        "all",
                        "admin",
                        "direct_member",
                        "billing_manager",
                        "hiring_manager",
                    ]),
                )
                .query(
                    "invitation_source",
                    false,
                    one_of(&["all", "member", "scim"]),
                ),
        ))
        .op(Operation::new(
            "DELETE",
            "/orgs/{org}/invitations/{invitation_id}",
        ))
        .op(Operation::new("PUT", "/orgs/{org}/memberships/{username}")
            .json_body(obj().opt("role", Shape::one_of(&["admin", "member"]))))
        .op(Operation::new("POST", "/orgs/{org}/invitations").json_body(
            obj()
                .opt("invitee_id", Shape::Integer)
                .opt("email", Shape::String)
                .opt(
                    "role",
                    Shape::one_of(&["admin", "direct_member", "billing_manager", "reinstate"]),
                )
                .opt("team_ids", Shape::array(Shape::Integer)),
        ))
        .op(paged(Operation::new(
            "GET",
            "/orgs/{org}/invitations/{invitation_id}/teams",
        )))
        .op(paged(Operation::new("GET", "/orgs/{org}/teams")))
        .op(Operation::new(
            "GET",
            "/orgs/{org}/teams/{team_slug}/memberships/{username}",
        ))
        .op(Operation::new(
            "PUT",
            "/orgs/{org}/teams/{team_slug}/memberships/{username}",
        )
        .json_body(obj().opt("role", Shape::one_of(&["member", "maintainer"]))))
        .op(paged(
            Operation::new("GET", "/orgs/{org}/outside_collaborators").query(
                "filter",
                false,
                one_of(&["2fa_disabled", "2fa_insecure", "all"]),
            ),
        ))
        .op(Operation::new(
            "DELETE",
            "/orgs/{org}/outside_collaborators/{username}",
        ))
}
