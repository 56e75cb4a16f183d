//! An in-memory SCIM 2.0 service provider that behaves like RFC 7644 where offboard cares:
//! bearer auth, `GET /Users?filter=<attr> eq "<value>"` (a real little parser: JSON string
//! literals with escapes, case-insensitive attribute and operator names), ListResponse with a
//! 1-based `startIndex`, PATCH with a PatchOp (answering 200 with the resource or 204), DELETE
//! (204, then 404), `GET /Users/{id}`, SCIM error bodies whose `status` is a string. Knobs inject
//! faults into the next requests, and every request is recorded as received.
//!
//! It stands on the fake-server kit ([`fake_kit`]): the kit serves, records and injects; this
//! module holds the SCIM behaviour, its knobs, and [`scim_contract`], which every request the
//! adapter sends must keep ([`FakeScim::assert_contract`]).
//!
//! Two knobs serve the reliability tests: [`FakeScim::set_latency`] delays every request before
//! it is recorded or acted on (so a client killed meanwhile leaves no trace, as with a real server
//! that never got the request), and [`FakeScim::chaos`] fails a seeded random fraction of requests
//! with 500, 503, 429 (Retry-After 0 or 1), a connection reset, or a hang longer than the
//! client's timeout — never acting on a request it fails.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::fake_kit::{
    self, Contract, FakeServer, Operation, QueryValue, Reply, Req, Routes, Shape, obj,
};

pub const PREFIX: &str = "/scim/v2";
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A request as the fake received it (derived from the kit's record).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The raw path, still percent-encoded, exactly as sent.
    pub raw_path: String,
    /// The raw query, still percent-encoded.
    pub raw_query: Option<String>,
    /// The `filter` parameter, decoded.
    pub filter: Option<String>,
    pub body: Option<Value>,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub user_agent: Option<String>,
    /// An `Authorization` header was present (its value is never kept).
    pub has_auth: bool,
}

impl From<&fake_kit::Recorded> for Recorded {
    fn from(r: &fake_kit::Recorded) -> Recorded {
        let h = |n: &str| r.header(n).map(str::to_string);
        Recorded {
            method: r.method.clone(),
            raw_path: r.raw_path.clone(),
            raw_query: r.raw_query.clone(),
            filter: query_param(&r.query, "filter"),
            body: r.json.clone(),
            content_type: h("content-type"),
            accept: h("accept"),
            user_agent: h("user-agent"),
            has_auth: r.header("authorization").is_some(),
        }
    }
}

/// A query parameter by case-insensitive name.
fn query_param(query: &[(String, String)], name: &str) -> Option<String> {
    query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// What the next requests answer instead of the real thing.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 with `Retry-After: <secs>`.
    TooMany { retry_after: u64 },
    /// 503 with no hint.
    Unavailable,
    /// 500.
    ServerError,
    /// Any status with a SCIM error body.
    Error {
        status: u16,
        scim_type: Option<&'static str>,
        detail: &'static str,
    },
    /// Answer after a delay (to provoke client timeouts).
    Slow(Duration),
    /// Send the status line and headers, then break the connection mid-body.
    Reset,
    /// Say nothing for this long, then answer 503 (a client with a shorter timeout gives up).
    Hang(Duration),
}

impl Fault {
    /// The kit's fault that answers the same.
    fn to_kit(&self) -> fake_kit::Fault {
        match self {
            Fault::TooMany { retry_after } => fake_kit::Fault::Reply(
                scim_error(429, None, "too many requests").header("retry-after", retry_after),
            ),
            Fault::Unavailable => {
                fake_kit::Fault::Reply(scim_error(503, None, "service unavailable"))
            }
            Fault::ServerError => fake_kit::Fault::Reply(scim_error(500, None, "internal error")),
            Fault::Error {
                status,
                scim_type,
                detail,
            } => fake_kit::Fault::Reply(scim_error(*status, *scim_type, detail)),
            Fault::Slow(d) => fake_kit::Fault::Slow(*d),
            Fault::Reset => fake_kit::Fault::BreakBody,
            Fault::Hang(d) => fake_kit::Fault::Hang(*d),
        }
    }
}

/// Random faults: each request fails with probability `fraction`, the kind chosen among 500, 503,
/// 429 (Retry-After 0 or 1), reset and hang; seeded, so a run is reproducible up to the order
/// in which concurrent requests arrive.
#[derive(Debug, Clone)]
pub struct Chaos {
    pub seed: u64,
    pub fraction: f64,
    /// How long a hang lasts (make it longer than the client's timeout).
    pub hang: Duration,
    /// The same request (method, path, query) fails at most this many times in a row, so a
    /// client with a bounded retry budget always gets through.
    pub max_in_a_row: u32,
    /// Fault kinds to choose from; empty means all of them.
    pub kinds: Vec<ChaosKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChaosKind {
    ServerError,
    Unavailable,
    TooMany,
    Reset,
    Hang,
}

struct ChaosState {
    cfg: Chaos,
    rng: u64,
    streaks: BTreeMap<String, u32>,
    injected: Vec<String>,
}

impl ChaosState {
    /// xorshift64*: deterministic, no dependency.
    fn next(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick(&mut self, key: String) -> Option<Fault> {
        let roll = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let streak = self.streaks.entry(key.clone()).or_insert(0);
        if roll >= self.cfg.fraction || *streak >= self.cfg.max_in_a_row {
            *streak = 0;
            return None;
        }
        *streak += 1;
        let all = [
            ChaosKind::ServerError,
            ChaosKind::Unavailable,
            ChaosKind::TooMany,
            ChaosKind::Reset,
            ChaosKind::Hang,
        ];
        let kinds: Vec<ChaosKind> = if self.cfg.kinds.is_empty() {
            all.to_vec()
        } else {
            self.cfg.kinds.clone()
        };
        let r = self.next();
        let kind = kinds[(r % kinds.len() as u64) as usize];
        let fault = match kind {
            ChaosKind::ServerError => Fault::ServerError,
            ChaosKind::Unavailable => Fault::Unavailable,
            ChaosKind::TooMany => Fault::TooMany {
                retry_after: (r >> 32) % 2,
            },
            ChaosKind::Reset => Fault::Reset,
            ChaosKind::Hang => Fault::Hang(self.cfg.hang),
        };
        self.injected.push(format!("{kind:?} on {key}"));
        Some(fault)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchReply {
    /// 200 with the resource.
    Resource,
    /// 204, no body (what scim2-server does).
    NoContent,
}

struct State {
    token: String,
    users: BTreeMap<String, Value>,
    /// Groups: id → resource with `displayName` and `members` (`[{"value": id}]`).
    groups: BTreeMap<String, Value>,
    /// Answer `/Groups` searches with every group, as a server that ignores filters would.
    ignore_group_filter: bool,
    /// Answer every `/Users` filter with an empty list (a search index that lost everyone).
    blind_user_filter: bool,
    next_id: u64,
    version: u64,
    /// `fail_next`/`fail_after`: `None` lets a request through.
    faults: VecDeque<Option<Fault>>,
    patch_reply: PatchReply,
    echo_auth_in_errors: bool,
    chaos: Option<ChaosState>,
}

/// A running fake. The server task ends when the test's runtime does.
#[derive(Clone)]
pub struct FakeScim {
    pub base_url: String,
    pub token: String,
    server: FakeServer,
    state: Arc<Mutex<State>>,
}

type Shared = Arc<Mutex<State>>;

/// A handler that answers 401 unless the request carries the bearer token, then `f`.
fn authed(
    st: &Shared,
    f: impl Fn(&mut State, &Req<'_>) -> Reply + Send + Sync + 'static,
) -> impl Fn(&Req<'_>) -> Reply + Send + Sync + 'static {
    let st = st.clone();
    move |r: &Req<'_>| {
        let mut s = st.lock().unwrap();
        let auth = r.header("authorization");
        let expected = format!("Bearer {}", s.token);
        if auth != Some(expected.as_str()) {
            let detail = if s.echo_auth_in_errors {
                format!("bad credentials: {}", auth.unwrap_or_default())
            } else {
                "Authorization failure. The authorization header is invalid or missing".to_string()
            };
            return scim_error(401, None, &detail)
                .header("www-authenticate", "Bearer realm=\"SCIM\"");
        }
        f(&mut s, r)
    }
}

/// The request's `{id}`, or 404 when no such user.
fn user_id(s: &State, r: &Req<'_>) -> Result<String, Reply> {
    let id = r.param("id").to_string();
    if s.users.contains_key(&id) {
        Ok(id)
    } else {
        Err(scim_error(404, None, &format!("Resource {id} not found")))
    }
}

fn routes(st: &Shared) -> Routes {
    let users = format!("{PREFIX}/Users");
    let user = format!("{PREFIX}/Users/{{id}}");
    let groups = format!("{PREFIX}/Groups");
    let group = format!("{PREFIX}/Groups/{{id}}");
    let policy = st.clone();
    Routes::new()
        .error_reply(|status, msg| scim_error(status, None, msg))
        .fault_policy(move |method, path, query| {
            let mut s = policy.lock().unwrap();
            let queued = s.faults.pop_front().flatten();
            let key = format!(
                "{method} {path}{}",
                query.map(|q| format!("?{q}")).unwrap_or_default()
            );
            let fault = match (queued, s.chaos.as_mut()) {
                (Some(f), _) => Some(f),
                (None, Some(c)) => c.pick(key),
                (None, None) => None,
            };
            fault.map(|f| f.to_kit())
        })
        .route(
            "GET",
            &users,
            authed(st, |s, r| {
                let q = |n| query_param(r.query, n);
                list_users(s, q("filter"), q("startIndex"), q("count"))
            }),
        )
        .route(
            "GET",
            &groups,
            authed(st, |s, r| {
                let q = |n| query_param(r.query, n);
                list_groups(s, q("filter"), q("startIndex"), q("count"))
            }),
        )
        .route(
            "PATCH",
            &group,
            authed(st, |s, r| patch_group(s, r.param("id"), r.body)),
        )
        .route(
            "GET",
            &group,
            authed(st, |s, r| match s.groups.get(r.param("id")) {
                Some(g) => scim_json(200, g),
                None => scim_error(404, None, &format!("Resource {} not found", r.param("id"))),
            }),
        )
        .route(
            "GET",
            &user,
            authed(st, |s, r| match user_id(s, r) {
                Ok(id) => scim_json(200, &s.users[&id]),
                Err(e) => e,
            }),
        )
        .route(
            "DELETE",
            &user,
            authed(st, |s, r| match user_id(s, r) {
                Ok(id) => {
                    s.users.remove(&id);
                    Reply::empty(204)
                }
                Err(e) => e,
            }),
        )
        .route(
            "PATCH",
            &user,
            authed(st, |s, r| match user_id(s, r) {
                Ok(id) => patch_user(s, &id, r.header("content-type").unwrap_or(""), r.body),
                Err(e) => e,
            }),
        )
        .fallback(authed(st, |_, r| {
            if r.raw_path.starts_with(PREFIX) {
                scim_error(404, None, "no such endpoint")
            } else {
                scim_error(404, None, "not a SCIM endpoint")
            }
        }))
}

impl FakeScim {
    /// Start on 127.0.0.1 with a free port. The base URL is the SCIM root (`…/scim/v2`).
    pub async fn start(token: &str) -> FakeScim {
        let state = Arc::new(Mutex::new(State {
            token: token.to_string(),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            ignore_group_filter: false,
            blind_user_filter: false,
            next_id: 1,
            version: 1,
            faults: VecDeque::new(),
            patch_reply: PatchReply::Resource,
            echo_auth_in_errors: false,
            chaos: None,
        }));
        let server = FakeServer::start(routes(&state)).await;
        FakeScim {
            base_url: server.url(PREFIX),
            token: token.to_string(),
            server,
            state,
        }
    }

    /// Add a user; returns its id.
    pub fn add_user(&self, user_name: &str, active: bool) -> String {
        let n = {
            let mut s = self.state.lock().unwrap();
            s.next_id += 1;
            s.next_id - 1
        };
        self.add_user_with_id(&format!("u{n:04}-{}", n * 7919), user_name, active)
    }

    /// Add a user with a chosen id (ids are opaque strings to a client).
    pub fn add_user_with_id(&self, id: &str, user_name: &str, active: bool) -> String {
        let id = id.to_string();
        let mut s = self.state.lock().unwrap();
        s.version += 1;
        let v = json!({
            "schemas": [USER_SCHEMA],
            "id": id,
            "userName": user_name,
            "active": active,
            "meta": {"resourceType": "User", "version": format!("W/\"{}\"", s.version)},
        });
        s.users.insert(id.clone(), v);
        id
    }

    /// Change `active` behind the tool's back.
    pub fn set_active(&self, id: &str, active: bool) {
        let mut s = self.state.lock().unwrap();
        s.users.get_mut(id).expect("no such user")["active"] = json!(active);
    }

    pub fn user(&self, id: &str) -> Option<Value> {
        self.state.lock().unwrap().users.get(id).cloned()
    }

    pub fn remove_user(&self, id: &str) {
        self.state.lock().unwrap().users.remove(id);
    }

    /// Delete a group behind the tool's back.
    pub fn remove_group(&self, id: &str) {
        self.state.lock().unwrap().groups.remove(id);
    }

    /// Add a group holding `members` (user ids); returns its id.
    pub fn add_group(&self, name: &str, members: &[&str]) -> String {
        let mut s = self.state.lock().unwrap();
        s.next_id += 1;
        let id = format!("g{:04}", s.next_id);
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        s.groups.insert(
            id.clone(),
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": id,
                   "displayName": name, "members": members}),
        );
        id
    }

    /// Member ids of a group.
    pub fn group_members(&self, id: &str) -> Vec<String> {
        self.state.lock().unwrap().groups[id]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["value"].as_str().unwrap().to_string())
            .collect()
    }

    /// Rename a user behind the tool's back (same id, new userName).
    pub fn rename_user(&self, id: &str, user_name: &str) {
        let mut s = self.state.lock().unwrap();
        s.users.get_mut(id).expect("no such user")["userName"] = json!(user_name);
    }

    /// From now on, every user filter finds nobody (`totalResults: 0`).
    pub fn blind_user_filter(&self) {
        self.state.lock().unwrap().blind_user_filter = true;
    }

    pub fn ignore_group_filter(&self) {
        self.state.lock().unwrap().ignore_group_filter = true;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.server.requests().iter().map(Recorded::from).collect()
    }

    pub fn count(&self, method: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method)
            .count()
    }

    pub fn clear_requests(&self) {
        self.server.clear_requests();
    }

    /// Every request received so far (since the last `clear_requests`) that broke
    /// [`scim_contract`], one readable line each.
    pub fn contract_violations(&self) -> Vec<String> {
        self.server.contract_violations(&scim_contract())
    }

    /// Panic with every request that broke [`scim_contract`].
    #[track_caller]
    pub fn assert_contract(&self) {
        self.server.assert_contract(&scim_contract());
    }

    /// The next `n` requests answer `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        for _ in 0..n {
            s.faults.push_back(Some(fault.clone()));
        }
    }

    /// Let `pass` requests through, then answer `fault` once.
    pub fn fail_after(&self, pass: usize, fault: Fault) {
        let mut s = self.state.lock().unwrap();
        for _ in 0..pass {
            s.faults.push_back(None);
        }
        s.faults.push_back(Some(fault));
    }

    pub fn patch_reply(&self, reply: PatchReply) {
        self.state.lock().unwrap().patch_reply = reply;
    }

    /// Delay every request by `d` before it is recorded or acted on.
    pub fn set_latency(&self, d: Duration) {
        self.server.set_latency(d);
    }

    /// From now on, admit requests through a token bucket of `rate_per_sec` with `burst`
    /// saved up; the others are answered 429 with `Retry-After` and not recorded.
    pub fn token_bucket(&self, rate_per_sec: f64, burst: u32) {
        self.server.token_bucket(rate_per_sec, burst);
    }

    /// When each request the bucket admitted arrived, and how many it refused.
    pub fn admitted(&self) -> (Vec<std::time::Instant>, usize) {
        self.server.admitted()
    }

    /// Fail a random fraction of the requests from now on (see [`Chaos`]).
    pub fn chaos(&self, cfg: Chaos) {
        let seed = cfg.seed.max(1);
        self.state.lock().unwrap().chaos = Some(ChaosState {
            cfg,
            rng: seed,
            streaks: BTreeMap::new(),
            injected: Vec::new(),
        });
    }

    /// The faults chaos injected so far, e.g. `Reset on PATCH /scim/v2/Users/u0001`.
    pub fn injected(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .chaos
            .as_ref()
            .map(|c| c.injected.clone())
            .unwrap_or_default()
    }

    /// Non-faulted requests with this method whose path ends with `/Users/<id>`.
    pub fn count_on_user(&self, method: &str, id: &str) -> usize {
        let suffix = format!("/Users/{id}");
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.raw_path.ends_with(&suffix))
            .count()
    }

    /// A careless server that echoes the Authorization header in its 401 detail.
    pub fn echo_auth_in_errors(&self) {
        self.state.lock().unwrap().echo_auth_in_errors = true;
    }
}

/// A PatchOp request body (RFC 7644 §3.5.2): `schemas` holding the PatchOp URN, and a list of
/// `Operations`, each with `op` (`add`, `remove` or `replace`), a `path`, and a `value` unless
/// it removes. Only the operations `ops` are declared.
fn patch_op(ops: &[&str], value: bool) -> Shape {
    let mut op = obj()
        .req("op", Shape::one_of(ops))
        .req("path", Shape::String);
    if value {
        op = op.opt("value", Shape::Any);
    }
    obj()
        .req("schemas", Shape::array(Shape::one_of(&[PATCH_SCHEMA])))
        .req("Operations", Shape::array(op))
        .into()
}

/// A request with a PatchOp body sent as `application/scim+json` (RFC 7644 §3.1, §3.5.2).
fn patch(template: &str, ops: &[&str], value: bool) -> Operation {
    let mut op = Operation::new("PATCH", template).header("content-type: application/scim+json");
    op.body = Some(patch_op(ops, value));
    op
}

/// What the scim adapter may send (src/providers/scim.rs): every request carries
/// `Authorization: Bearer …` and an `Accept`; users are found by `filter`, read, patched
/// (`replace active`) and deleted by id; groups are searched by member with SCIM paging
/// (`startIndex`, `count`), patched to `remove` the member (and, by rollback, to `add` it back
/// with the path `members`), and read by id (a rollback's check: does the group still exist?).
pub fn scim_contract() -> Contract {
    let users = format!("{PREFIX}/Users");
    let user = format!("{PREFIX}/Users/{{id}}");
    let groups = format!("{PREFIX}/Groups");
    let group = format!("{PREFIX}/Groups/{{id}}");
    Contract::new("SCIM 2.0")
        .every_request_header("authorization: Bearer")
        .every_request_header("accept")
        .op(Operation::new("GET", &users).query("filter", true, QueryValue::Any))
        .op(Operation::new("GET", &user))
        .op(patch(&user, &["replace"], true))
        .op(Operation::new("DELETE", &user))
        .op(Operation::new("GET", &groups)
            .query("filter", true, QueryValue::Any)
            .query("startIndex", true, QueryValue::Integer)
            .query("count", true, QueryValue::Integer))
        .op(Operation::new("GET", &group))
        .op(patch(&group, &["remove", "add"], true))
}

fn scim_error(status: u16, scim_type: Option<&str>, detail: &str) -> Reply {
    let mut body =
        json!({"schemas": [ERROR_SCHEMA], "status": status.to_string(), "detail": detail});
    if let Some(t) = scim_type {
        body["scimType"] = json!(t);
    }
    scim_json(status, &body)
}

fn scim_json(status: u16, body: &Value) -> Reply {
    Reply {
        status,
        headers: vec![("content-type".into(), "application/scim+json".into())],
        body: body.to_string().into_bytes(),
    }
}

fn list_users(
    s: &State,
    filter: Option<String>,
    start: Option<String>,
    count: Option<String>,
) -> Reply {
    let matches: Vec<&Value> = match filter {
        Some(_) if s.blind_user_filter => Vec::new(),
        None => s.users.values().collect(),
        Some(f) => match parse_filter(&f) {
            Err(e) => return scim_error(400, Some("invalidFilter"), &e),
            Ok((attr, value)) => s
                .users
                .values()
                .filter(|u| {
                    let field = u.as_object().and_then(|o| {
                        o.iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(&attr))
                            .and_then(|(_, v)| v.as_str())
                    });
                    match field {
                        // userName is caseExact=false (RFC 7643 §4.1.1); others compare exactly.
                        Some(v) if attr.eq_ignore_ascii_case("userName") => {
                            v.to_lowercase() == value.to_lowercase()
                        }
                        Some(v) => v == value,
                        None => false,
                    }
                })
                .collect(),
        },
    };
    let start: usize = start.and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let count: usize = count.and_then(|v| v.parse().ok()).unwrap_or(100);
    let page: Vec<Value> = matches
        .iter()
        .skip(start - 1)
        .take(count)
        .map(|v| (*v).clone())
        .collect();
    let mut body = json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": matches.len(),
        "startIndex": start,
        "itemsPerPage": page.len(),
    });
    // Some servers leave Resources out when nothing matches; so does this one.
    if !page.is_empty() {
        body["Resources"] = Value::Array(page);
    }
    scim_json(200, &body)
}

/// `GET /Groups?filter=members[value eq "<id>"]`, paged like the users' list.
fn list_groups(
    s: &State,
    filter: Option<String>,
    start: Option<String>,
    count: Option<String>,
) -> Reply {
    let member = match filter {
        None => None,
        Some(f) => {
            let inner = f
                .trim()
                .strip_prefix("members[")
                .and_then(|r| r.strip_suffix(']'));
            match inner.map(parse_filter) {
                Some(Ok((attr, v))) if attr.eq_ignore_ascii_case("value") => Some(v),
                _ => return scim_error(400, Some("invalidFilter"), "unsupported group filter"),
            }
        }
    };
    let holds = |g: &Value, id: &str| {
        g["members"]
            .as_array()
            .is_some_and(|a| a.iter().any(|m| m["value"] == json!(id)))
    };
    let matches: Vec<&Value> = s
        .groups
        .values()
        .filter(|g| s.ignore_group_filter || member.as_deref().is_none_or(|id| holds(g, id)))
        .collect();
    let start: usize = start.and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
    let count: usize = count.and_then(|v| v.parse().ok()).unwrap_or(100);
    let page: Vec<Value> = matches
        .iter()
        .skip(start - 1)
        .take(count)
        .map(|v| (*v).clone())
        .collect();
    scim_json(
        200,
        &json!({"schemas": [LIST_SCHEMA], "totalResults": matches.len(), "startIndex": start,
                "itemsPerPage": page.len(), "Resources": page}),
    )
}

/// PATCH a group: `remove` with the path `members[value eq "<id>"]`, or `add` with the path
/// `members` and a value listing `{"value": "<id>"}` members (RFC 7644 §3.5.2.1).
fn patch_group(s: &mut State, id: &str, body: &[u8]) -> Reply {
    if !s.groups.contains_key(id) {
        return scim_error(404, None, &format!("Resource {id} not found"));
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return scim_error(400, Some("invalidSyntax"), "body is not JSON");
    };
    for op in req["Operations"].as_array().cloned().unwrap_or_default() {
        let path = op["path"].as_str().unwrap_or("");
        let name = op["op"].as_str().unwrap_or("").to_ascii_lowercase();
        if name == "add" {
            if !path.eq_ignore_ascii_case("members") {
                return scim_error(
                    400,
                    Some("invalidPath"),
                    &format!("unsupported path {path}"),
                );
            }
            let Some(values) = op["value"].as_array() else {
                return scim_error(400, Some("invalidValue"), "add members needs a list value");
            };
            let group = s.groups.get_mut(id).unwrap();
            if !group["members"].is_array() {
                group["members"] = json!([]);
            }
            for v in values {
                let Some(member) = v["value"].as_str() else {
                    return scim_error(400, Some("invalidValue"), "a member without a value");
                };
                let members = group["members"].as_array_mut().unwrap();
                if !members.iter().any(|m| m["value"] == json!(member)) {
                    members.push(json!({"value": member}));
                }
            }
            continue;
        }
        let inner = path
            .strip_prefix("members[")
            .and_then(|r| r.strip_suffix(']'));
        let member = match inner.map(parse_filter) {
            Some(Ok((attr, v))) if attr.eq_ignore_ascii_case("value") => v,
            _ => {
                return scim_error(
                    400,
                    Some("invalidPath"),
                    &format!("unsupported path {path}"),
                );
            }
        };
        if name != "remove" {
            return scim_error(
                400,
                Some("invalidSyntax"),
                "only remove and add are supported",
            );
        }
        if let Some(a) = s.groups.get_mut(id).unwrap()["members"].as_array_mut() {
            a.retain(|m| m["value"] != json!(member));
        }
    }
    Reply::empty(204)
}

/// `<attrPath> eq <JSON string>`; names are case-insensitive. Only what offboard sends is
/// supported: other operators and `and`/`or`/`not` are refused as invalidFilter.
pub fn parse_filter(f: &str) -> Result<(String, String), String> {
    let f = f.trim();
    let (attr, rest) = f
        .split_once(' ')
        .ok_or_else(|| format!("invalid filter {f:?}: expected `attr op value`"))?;
    let valid_attr = attr.starts_with(|c: char| c.is_ascii_alphabetic())
        && attr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$' | '.' | ':'));
    if !valid_attr {
        return Err(format!("invalid attribute path {attr:?}"));
    }
    let rest = rest.trim_start();
    let (op, value) = rest
        .split_once(' ')
        .ok_or_else(|| format!("invalid filter {f:?}: missing value"))?;
    if !op.eq_ignore_ascii_case("eq") {
        return Err(format!("operator {op:?} is not supported here"));
    }
    let value = value.trim();
    // The value must be exactly one JSON string literal: find its closing quote.
    if !value.starts_with('"') {
        return Err(format!("expected a quoted string, got {value:?}"));
    }
    let mut end = None;
    let mut escaped = false;
    for (i, c) in value.char_indices().skip(1) {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let end = end.ok_or_else(|| "unterminated string".to_string())?;
    if end + 1 != value.len() {
        return Err(format!(
            "unexpected text after the value: {:?}",
            &value[end + 1..]
        ));
    }
    let decoded: String =
        serde_json::from_str(&value[..=end]).map_err(|e| format!("bad string literal: {e}"))?;
    Ok((attr.to_string(), decoded))
}

fn patch_user(s: &mut State, id: &str, ct: &str, body: &[u8]) -> Reply {
    if !(ct.starts_with("application/scim+json") || ct.starts_with("application/json")) {
        return scim_error(415, None, "expected application/scim+json");
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return scim_error(400, Some("invalidSyntax"), "body is not JSON");
    };
    let has_schema = req["schemas"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x == PATCH_SCHEMA));
    if !has_schema {
        return scim_error(
            400,
            Some("invalidSyntax"),
            "schemas must hold the PatchOp URN",
        );
    }
    let Some(ops) = req["Operations"].as_array().filter(|o| !o.is_empty()) else {
        return scim_error(
            400,
            Some("invalidSyntax"),
            "Operations must be a non-empty list",
        );
    };
    let mut user = s.users[id].clone();
    for op in ops {
        let name = op["op"].as_str().unwrap_or("").to_ascii_lowercase();
        if !matches!(name.as_str(), "add" | "replace" | "remove") {
            return scim_error(
                400,
                Some("invalidSyntax"),
                "op must be add, replace or remove",
            );
        }
        let as_bool = |v: &Value| match v {
            Value::Bool(b) => Some(*b),
            Value::String(t) if t.eq_ignore_ascii_case("true") => Some(true),
            Value::String(t) if t.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        };
        match op["path"].as_str() {
            Some(p) if p.eq_ignore_ascii_case("active") => {
                if name == "remove" {
                    return scim_error(400, Some("mutability"), "active cannot be removed");
                }
                let Some(b) = as_bool(&op["value"]) else {
                    return scim_error(400, Some("invalidValue"), "active must be a boolean");
                };
                user["active"] = json!(b);
            }
            Some(p) if p.eq_ignore_ascii_case("id") => {
                return scim_error(400, Some("mutability"), "id is read-only");
            }
            Some(p) => return scim_error(400, Some("invalidPath"), &format!("unknown path {p}")),
            None => match op["value"].get("active").and_then(as_bool) {
                Some(b) if name != "remove" => user["active"] = json!(b),
                _ => return scim_error(400, Some("noTarget"), "no path and no active value"),
            },
        }
    }
    s.version += 1;
    user["meta"]["version"] = json!(format!("W/\"{}\"", s.version));
    s.users.insert(id.to_string(), user.clone());
    match s.patch_reply {
        PatchReply::Resource => scim_json(200, &user),
        PatchReply::NoContent => Reply::empty(204),
    }
}

/// A `SystemConfig` for a SCIM system at `base_url`.
pub fn system_config(base_url: &str, token: Option<&str>) -> offboard::providers::SystemConfig {
    let cfg = offboard::providers::SystemConfig::new("hr-scim", "scim", Some(base_url));
    let cfg = match token {
        Some(t) => cfg.with_token(t),
        None => cfg,
    };
    offboard::providers::SystemConfig {
        timeout: Duration::from_secs(10),
        ..cfg
    }
}

#[cfg(test)]
mod tests {
    use super::parse_filter;

    #[test]
    fn filter_parser() {
        assert_eq!(
            parse_filter(r#"userName eq "a\"b\\c""#).unwrap(),
            ("userName".into(), "a\"b\\c".into())
        );
        assert_eq!(
            parse_filter(r#"USERNAME EQ "x\ny""#).unwrap(),
            ("USERNAME".into(), "x\ny".into())
        );
        assert!(parse_filter(r#"userName eq "a"b""#).is_err());
        assert!(parse_filter(r#"userName eq "a" or userName pr"#).is_err());
        assert!(parse_filter(r#"userName eq "unterminated"#).is_err());
        assert!(parse_filter(r#"userName co "x""#).is_err());
        assert!(parse_filter(r#"user"Name eq "x""#).is_err());
    }
}
