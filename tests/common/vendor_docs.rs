//! The vendors' own API descriptions, and a check of the requests a fake recorded against them:
//! independent of the hand-written [`Contract`](super::fake_kit::Contract) each fake declares.
//!
//! The files are never in the repository: `bash tests/vendor-docs.sh` fetches them (pinned
//! versions, sha256-checked) from the package registries that ship them: Google's Discovery
//! documents from PyPI `google-api-python-client` (`admin.directory_v1`, `admin.datatransfer_v1`,
//! `gmail.v1`, `licensing.v1`) and GitHub's OpenAPI 3 description from npm `@octokit/openapi`
//! (`api.github.com`), into `OFFBOARD_VENDOR_DOCS` (default `target/vendor-docs`). When one is
//! missing a test skips with a message locally and fails under CI (env `CI` set), like the real
//! servers (servers.rs); `tests/run.sh` fetches them first.
//!
//! For each recorded request the operation is found by method and path template (the request's
//! path under the document's server path: `/admin/directory/v1/users/{userKey}` for Discovery's
//! `rootUrl` + `servicePath` + `flatPath`; `/orgs/{org}/memberships/{username}` for GitHub, whose
//! server is `https://api.github.com`), preferring the template with the most literal segments.
//! Then every mismatch is reported:
//! - no operation has the path, or none has the method on it;
//! - a path parameter of the wrong type or outside its enum;
//! - a query parameter the operation does not declare (Discovery's global ones such as `fields`
//!   are declared on every method), given twice when it is not an array (`repeated`), a missing
//!   required one, a wrong type (`integer`, `number`, `boolean`; Discovery's int64 strings), a
//!   value outside its enum or its `minimum`/`maximum`; a missing required header parameter;
//! - a body on an operation that takes none, a missing required body, a content type the
//!   operation does not accept, a body that is not JSON;
//! - in the JSON body (`$ref`s followed, `allOf` merged, `oneOf`/`anyOf` as "at least one"):
//!   a property the schema does not declare (an object that declares properties is closed unless
//!   `additionalProperties` opens it: stricter than JSON Schema, on purpose: a property the vendor
//!   does not describe is one it ignores), a read-only property, a missing required property,
//!   the wrong JSON type, a value outside its enum or `minimum`/`maximum`, `null` where the schema
//!   is not `nullable` (Discovery documents have no `nullable`; Google reads `null` as "clear", so
//!   it is accepted there).
//!
//! Not checked (a subset, not a JSON Schema engine): `pattern`, string formats and lengths,
//! array lengths, `not`, `discriminator`, response shapes.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value};

use super::fake_kit::Recorded;

/// The command that fetches the documents.
pub const FETCH: &str = "bash tests/vendor-docs.sh";

/// Where tests/vendor-docs.sh puts the documents: `OFFBOARD_VENDOR_DOCS`, else `vendor-docs`
/// in the target directory (`CARGO_TARGET_DIR`, default `target/`), relative to the package.
pub fn docs_dir() -> PathBuf {
    let package = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Some(dir) = std::env::var_os("OFFBOARD_VENDOR_DOCS") {
        return package.join(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| "target".into());
    package.join(target).join("vendor-docs")
}

// ---------------------------------------------------------------------------------------------
// Documents

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// Google's API Discovery format.
    Discovery,
    /// OpenAPI 3.
    OpenApi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    Path,
    Query,
    Header,
}

#[derive(Debug, Clone)]
struct Param {
    name: String,
    loc: Loc,
    required: bool,
    /// A JSON Schema (Discovery's parameter turned into one: `repeated` is an array of it).
    schema: Value,
    /// An OpenAPI array parameter sent as one comma-separated value (`explode: false`).
    comma_separated: bool,
}

#[derive(Debug, Clone)]
enum Body {
    None,
    Some {
        required: bool,
        /// The media types it accepts.
        media: Vec<String>,
        /// The JSON body's schema, when one of `media` is JSON.
        schema: Option<Value>,
    },
}

#[derive(Debug, Clone)]
enum Seg {
    Lit(String),
    Param(String),
    /// `{+name}` (Discovery's reserved expansion): one or more segments, only last.
    Rest(String),
    /// `pre{name}post` inside one segment.
    Mixed {
        pre: String,
        name: String,
        post: String,
    },
}

#[derive(Debug, Clone)]
struct Op {
    /// Discovery's method `id`, OpenAPI's `operationId` (or `METHOD template`).
    id: String,
    method: String,
    template: String,
    segs: Vec<Seg>,
    params: Vec<Param>,
    body: Body,
}

/// One vendor document, its operations indexed.
pub struct Doc {
    pub name: String,
    dialect: Dialect,
    root: Value,
    ops: Vec<Op>,
}

fn parse_template(t: &str) -> Vec<Seg> {
    let parts: Vec<&str> = t.trim_start_matches('/').split('/').collect();
    parts
        .iter()
        .map(|p| {
            let (Some(open), Some(close)) = (p.find('{'), p.rfind('}')) else {
                return Seg::Lit((*p).to_string());
            };
            let name = &p[open + 1..close];
            if open == 0 && close == p.len() - 1 {
                match name.strip_prefix('+') {
                    Some(n) => Seg::Rest(n.to_string()),
                    None => Seg::Param(name.to_string()),
                }
            } else {
                Seg::Mixed {
                    pre: p[..open].to_string(),
                    name: name.trim_start_matches('+').to_string(),
                    post: p[close + 1..].to_string(),
                }
            }
        })
        .collect()
}

fn decode(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// The decoded path parameters when `raw_path` (percent-encoded, `/`-led) matches `segs`.
fn match_path(segs: &[Seg], raw_path: &str) -> Option<BTreeMap<String, String>> {
    let raw: Vec<&str> = raw_path.strip_prefix('/')?.split('/').collect();
    let mut params = BTreeMap::new();
    let mut i = 0;
    for (n, seg) in segs.iter().enumerate() {
        let here = raw.get(i)?;
        match seg {
            Seg::Lit(l) => {
                if decode(here)? != *l {
                    return None;
                }
            }
            Seg::Param(name) => {
                let v = decode(here)?;
                if v.is_empty() || v == "." || v == ".." {
                    return None;
                }
                params.insert(name.clone(), v);
            }
            Seg::Mixed { pre, name, post } => {
                let v = decode(here)?;
                let mid = v.strip_prefix(pre.as_str())?.strip_suffix(post.as_str())?;
                if mid.is_empty() {
                    return None;
                }
                params.insert(name.clone(), mid.to_string());
            }
            Seg::Rest(name) => {
                if n + 1 != segs.len() {
                    return None;
                }
                let rest: Option<Vec<String>> = raw[i..].iter().map(|s| decode(s)).collect();
                let rest = rest?;
                if rest.iter().any(|s| s.is_empty()) {
                    return None;
                }
                params.insert(name.clone(), rest.join("/"));
                i = raw.len();
                continue;
            }
        }
        i += 1;
    }
    (i == raw.len()).then_some(params)
}

fn literal_count(segs: &[Seg]) -> usize {
    segs.iter().filter(|s| matches!(s, Seg::Lit(_))).count()
}

/// The path of a URL (`https://host/a/` → `/a/`), or of a path.
fn url_path(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or(""),
        None => url,
    }
}

fn join_path(prefix: &str, path: &str) -> String {
    format!(
        "/{}/{}",
        prefix.trim_matches('/'),
        path.trim_start_matches('/')
    )
    .replace("//", "/")
}

fn is_json_media(m: &str) -> bool {
    let m = m
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    m == "application/json" || m.ends_with("+json")
}

impl Doc {
    /// Index a parsed document (Discovery when it has `discoveryVersion`, else OpenAPI 3).
    pub fn from_value(name: &str, root: Value) -> Result<Doc, String> {
        let mut doc = Doc {
            name: name.to_string(),
            dialect: if root.get("discoveryVersion").is_some() {
                Dialect::Discovery
            } else if root.get("openapi").is_some() {
                Dialect::OpenApi
            } else {
                return Err(format!(
                    "{name}: neither a Discovery document nor OpenAPI 3"
                ));
            },
            root,
            ops: Vec::new(),
        };
        doc.ops = match doc.dialect {
            Dialect::Discovery => doc.discovery_ops()?,
            Dialect::OpenApi => doc.openapi_ops()?,
        };
        if doc.ops.is_empty() {
            return Err(format!("{name}: no operations"));
        }
        Ok(doc)
    }

    fn discovery_ops(&self) -> Result<Vec<Op>, String> {
        let r = &self.root;
        let prefix = join_path(
            url_path(r["rootUrl"].as_str().unwrap_or("/")),
            r["servicePath"].as_str().unwrap_or(""),
        );
        let global: Vec<Param> = r["parameters"]
            .as_object()
            .map(|m| m.iter().map(|(n, p)| discovery_param(n, p)).collect())
            .unwrap_or_default();
        let mut ops = Vec::new();
        let mut stack: Vec<&Value> = vec![r];
        while let Some(node) = stack.pop() {
            if let Some(res) = node["resources"].as_object() {
                stack.extend(res.values());
            }
            let Some(methods) = node["methods"].as_object() else {
                continue;
            };
            for (mname, m) in methods {
                let path = m["flatPath"]
                    .as_str()
                    .or(m["path"].as_str())
                    .ok_or_else(|| format!("{}: method {mname} has no path", self.name))?;
                let template = join_path(&prefix, path);
                let mut params: Vec<Param> = m["parameters"]
                    .as_object()
                    .map(|ps| ps.iter().map(|(n, p)| discovery_param(n, p)).collect())
                    .unwrap_or_default();
                params.extend(global.iter().cloned());
                let body = match m["request"].get("$ref") {
                    Some(rf) => Body::Some {
                        required: false,
                        media: vec!["application/json".into()],
                        schema: Some(serde_json::json!({ "$ref": rf })),
                    },
                    None => Body::None,
                };
                ops.push(Op {
                    id: m["id"].as_str().unwrap_or(mname).to_string(),
                    method: m["httpMethod"]
                        .as_str()
                        .unwrap_or("GET")
                        .to_ascii_uppercase(),
                    segs: parse_template(&template),
                    template,
                    params,
                    body,
                });
            }
        }
        Ok(ops)
    }

    fn openapi_ops(&self) -> Result<Vec<Op>, String> {
        let prefix = self.root["servers"][0]["url"]
            .as_str()
            .map(url_path)
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string();
        let paths = self.root["paths"]
            .as_object()
            .ok_or_else(|| format!("{}: no `paths`", self.name))?;
        let mut ops = Vec::new();
        for (path, item) in paths {
            let item = self.deref(item);
            let shared = item["parameters"].as_array().cloned().unwrap_or_default();
            for method in [
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ] {
                let Some(op) = item.get(method) else { continue };
                let template = format!("{prefix}{path}");
                let mut params: Vec<Param> = Vec::new();
                for p in shared
                    .iter()
                    .chain(op["parameters"].as_array().into_iter().flatten())
                {
                    let p = self.deref(p);
                    let loc = match p["in"].as_str() {
                        Some("path") => Loc::Path,
                        Some("query") => Loc::Query,
                        Some("header") => Loc::Header,
                        _ => continue, // cookies
                    };
                    let name = p["name"].as_str().unwrap_or("").to_string();
                    let schema = p
                        .get("schema")
                        .or(p["content"]["application/json"].get("schema"))
                        .cloned()
                        .unwrap_or(Value::Object(Map::new()));
                    // An operation's parameter replaces the path item's of the same name and place.
                    params.retain(|q| !(q.name == name && q.loc == loc));
                    params.push(Param {
                        name,
                        loc,
                        required: p["required"].as_bool().unwrap_or(loc == Loc::Path),
                        schema,
                        comma_separated: p["explode"].as_bool() == Some(false),
                    });
                }
                let body = match op.get("requestBody").map(|b| self.deref(b)) {
                    None => Body::None,
                    Some(b) => {
                        let content = b["content"].as_object().cloned().unwrap_or_default();
                        Body::Some {
                            required: b["required"].as_bool().unwrap_or(false),
                            media: content.keys().cloned().collect(),
                            schema: content
                                .iter()
                                .find(|(m, _)| is_json_media(m))
                                .and_then(|(_, c)| c.get("schema").cloned()),
                        }
                    }
                };
                let upper = method.to_ascii_uppercase();
                ops.push(Op {
                    id: op["operationId"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("{upper} {template}")),
                    method: upper,
                    segs: parse_template(&template),
                    template,
                    params,
                    body,
                });
            }
        }
        Ok(ops)
    }

    /// An OpenAPI object with its `$ref` (a local JSON pointer) followed.
    fn deref<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        for _ in 0..32 {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => match self.target(r) {
                    Some((t, _)) => v = t,
                    None => return v,
                },
                None => return v,
            }
        }
        v
    }

    /// What a `$ref` names, and a short name for messages.
    fn target(&self, r: &str) -> Option<(&Value, String)> {
        let short = r.rsplit('/').next().unwrap_or(r).to_string();
        let t = match self.dialect {
            Dialect::Discovery => self.root["schemas"].get(r),
            Dialect::OpenApi => self.root.pointer(r.strip_prefix('#')?),
        };
        t.map(|t| (t, short))
    }

    fn ops_on(&self, raw_path: &str) -> Vec<(&Op, BTreeMap<String, String>)> {
        self.ops
            .iter()
            .filter_map(|o| match_path(&o.segs, raw_path).map(|p| (o, p)))
            .collect()
    }
}

fn discovery_param(name: &str, p: &Value) -> Param {
    let mut schema = Map::new();
    for k in ["type", "format", "enum", "minimum", "maximum"] {
        if let Some(v) = p.get(k) {
            schema.insert(k.into(), v.clone());
        }
    }
    let mut schema = Value::Object(schema);
    if p["repeated"].as_bool() == Some(true) {
        schema = serde_json::json!({ "type": "array", "items": schema });
    }
    Param {
        name: name.to_string(),
        loc: match p["location"].as_str() {
            Some("path") => Loc::Path,
            _ => Loc::Query,
        },
        required: p["required"].as_bool().unwrap_or(false),
        schema,
        comma_separated: false,
    }
}

// ---------------------------------------------------------------------------------------------
// Loading (cached per process: api.github.com.json is 13 MB)

fn cache() -> &'static Mutex<HashMap<PathBuf, Arc<Doc>>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Doc>>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

fn load_file(name: &str, path: &Path) -> Arc<Doc> {
    let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = cache.get(path) {
        return d.clone();
    }
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let root: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}): run `{FETCH}` again", path.display()));
    let doc = Arc::new(Doc::from_value(name, root).unwrap_or_else(|e| panic!("{e}")));
    cache.insert(path.to_path_buf(), doc.clone());
    doc
}

/// Documents to check requests against, by file name without `.json`, and where the requests'
/// paths sit (under `/` unless [`VendorDocs::under`]).
pub struct VendorDocs {
    docs: Vec<Arc<Doc>>,
    under: String,
}

impl VendorDocs {
    /// The fetched documents named (`"admin.directory_v1"`, `"api.github.com"`, …), or `None`
    /// when one is missing and the test should skip (locally; under CI it panics).
    pub fn load(names: &[&str]) -> Option<VendorDocs> {
        let dir = docs_dir();
        let mut docs = Vec::new();
        for name in names {
            let path = dir.join(format!("{name}.json"));
            if !path.exists() {
                let msg = format!(
                    "the vendor's API description {} is missing: run `{FETCH}`",
                    path.display()
                );
                if std::env::var_os("CI").is_some() {
                    panic!("{msg}");
                }
                eprintln!("skipped: {msg}");
                return None;
            }
            docs.push(load_file(name, &path));
        }
        Some(VendorDocs {
            docs,
            under: String::new(),
        })
    }

    /// Documents already indexed (tests of the checker itself).
    pub fn from_docs(docs: Vec<Doc>) -> VendorDocs {
        VendorDocs {
            docs: docs.into_iter().map(Arc::new).collect(),
            under: String::new(),
        }
    }

    /// The requests' paths carry this prefix before the vendor's own (e.g. GitHub Enterprise
    /// Server's `/api/v3`).
    pub fn under(mut self, prefix: &str) -> VendorDocs {
        self.under = prefix.trim_end_matches('/').to_string();
        self
    }

    fn names(&self) -> String {
        let n: Vec<&str> = self.docs.iter().map(|d| d.name.as_str()).collect();
        n.join(", ")
    }

    /// `Ok(operation id)` when `r` matches an operation in every respect checked; else what is
    /// wrong, ending with the operation it was checked against.
    pub fn check(&self, r: &Recorded) -> Result<String, Vec<String>> {
        let Some(path) = r.raw_path.strip_prefix(self.under.as_str()) else {
            return Err(vec![format!("the path is not under {}", self.under)]);
        };
        let mut on_path: Vec<(&Doc, &Op, BTreeMap<String, String>)> = Vec::new();
        for d in &self.docs {
            on_path.extend(d.ops_on(path).into_iter().map(|(o, p)| (&**d, o, p)));
        }
        if on_path.is_empty() {
            return Err(vec![format!(
                "no operation in {} has this path",
                self.names()
            )]);
        }
        let same: Vec<&(&Doc, &Op, BTreeMap<String, String>)> = on_path
            .iter()
            .filter(|(_, o, _)| o.method == r.method)
            .collect();
        if same.is_empty() {
            let mut there: Vec<String> = on_path
                .iter()
                .map(|(_, o, _)| format!("{} {}", o.method, o.template))
                .collect();
            there.sort();
            return Err(vec![format!(
                "{} is not an operation on this path in {} (it has: {})",
                r.method,
                self.names(),
                there.join(", ")
            )]);
        }
        // The most literal templates route the request (`/things/special` before
        // `/things/{id}`); among equals, any that it matches will do.
        let most = same
            .iter()
            .map(|(_, o, _)| literal_count(&o.segs))
            .max()
            .unwrap_or(0);
        let mut first = None;
        for (doc, op, params) in same
            .into_iter()
            .filter(|(_, o, _)| literal_count(&o.segs) == most)
        {
            let mut out = Vec::new();
            doc.check_request(op, params, r, &mut out);
            if out.is_empty() {
                return Ok(op.id.clone());
            }
            out.push(format!(
                "checked against {}: {} {} {}",
                doc.name, op.id, op.method, op.template
            ));
            first.get_or_insert(out);
        }
        Err(first.unwrap_or_default())
    }

    /// Every recorded request that does not match, one line each: `#seq LINE: problems`.
    pub fn violations(&self, recorded: &[Recorded]) -> Vec<String> {
        recorded
            .iter()
            .filter_map(|r| {
                self.check(r)
                    .err()
                    .map(|v| format!("#{} {}: {}", r.seq, r.line(), v.join("; ")))
            })
            .collect()
    }

    /// The operations the matching requests used (their ids).
    pub fn operations(&self, recorded: &[Recorded]) -> BTreeSet<String> {
        recorded.iter().filter_map(|r| self.check(r).ok()).collect()
    }

    /// Panics, naming each request that does not match and why.
    pub fn assert_matches(&self, recorded: &[Recorded]) {
        let v = self.violations(recorded);
        assert!(
            v.is_empty(),
            "{} of {} requests do not match the vendor's own description ({}):\n{}",
            v.len(),
            recorded.len(),
            self.names(),
            v.join("\n")
        );
    }
}

/// Every request in `recorded` matches one of these Google Discovery documents (e.g.
/// `&["admin.directory_v1", "admin.datatransfer_v1", "licensing.v1", "gmail.v1"]`), the fake
/// serving them all from its root (`/admin/directory/v1/…`, `/apps/licensing/v1/…`,
/// `/gmail/v1/…`). Skips (locally) when the documents were not fetched.
pub fn assert_matches_discovery(recorded: &[Recorded], docs: &[&str]) {
    if let Some(v) = VendorDocs::load(docs) {
        v.assert_matches(recorded);
    }
}

/// Every request in `recorded` matches GitHub's OpenAPI description (@octokit/openapi's
/// `api.github.com.json`), the fake serving the API from its root. Skips (locally) when it was
/// not fetched.
pub fn assert_matches_github(recorded: &[Recorded]) {
    if let Some(v) = VendorDocs::load(&["api.github.com"]) {
        v.assert_matches(recorded);
    }
}

/// A request as a fake would have recorded it (tests of the checker): `path_and_query` as sent,
/// a JSON body with `content-type: application/json`.
pub fn recorded(method: &str, path_and_query: &str, body: Option<Value>) -> Recorded {
    let (raw_path, raw_query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (path_and_query.to_string(), None),
    };
    let query = raw_query
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let mut headers = vec![("authorization".to_string(), "Bearer <redacted>".to_string())];
    let bytes = body
        .as_ref()
        .map(|b| b.to_string().into_bytes())
        .unwrap_or_default();
    if body.is_some() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    Recorded {
        seq: 0,
        method: method.to_string(),
        raw_path,
        raw_query,
        query,
        headers,
        body: bytes,
        json: body,
        fault: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Checking one request

/// A short form of a value for messages.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The schema's declared types (`type` as a string or a list); empty when any.
fn types_of(s: &Value) -> Vec<&str> {
    match &s["type"] {
        Value::String(t) if t != "any" => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn is_int64_string(s: &Value) -> bool {
    types_of(s) == ["string"]
        && matches!(
            s["format"].as_str(),
            Some("int64" | "uint64" | "int32" | "uint32")
        )
}

impl Doc {
    fn check_request(
        &self,
        op: &Op,
        path_params: &BTreeMap<String, String>,
        r: &Recorded,
        out: &mut Vec<String>,
    ) {
        for p in op.params.iter().filter(|p| p.loc == Loc::Path) {
            if let Some(v) = path_params.get(&p.name) {
                self.check_text(&p.schema, v, &format!("path parameter {}", p.name), out);
            }
        }

        let mut given: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (k, v) in &r.query {
            given.entry(k.as_str()).or_default().push(v.as_str());
        }
        for (name, values) in &given {
            let Some(p) = op
                .params
                .iter()
                .find(|p| p.loc == Loc::Query && p.name == *name)
            else {
                out.push(format!("undeclared query parameter {name}"));
                continue;
            };
            let what = format!("query parameter {name}");
            let (schema, _) = self.resolve(&p.schema, out);
            if types_of(&schema) == ["array"] {
                let items = schema.get("items").cloned().unwrap_or(Value::Null);
                for v in values {
                    if p.comma_separated {
                        for item in v.split(',') {
                            self.check_text(&items, item, &what, out);
                        }
                    } else {
                        self.check_text(&items, v, &what, out);
                    }
                }
            } else {
                if values.len() > 1 {
                    out.push(format!(
                        "{what} given {} times; it is not repeated",
                        values.len()
                    ));
                }
                for v in values {
                    self.check_text(&schema, v, &what, out);
                }
            }
        }
        for p in &op.params {
            match p.loc {
                Loc::Query if p.required && !given.contains_key(p.name.as_str()) => {
                    out.push(format!("missing required query parameter {}", p.name))
                }
                Loc::Header => {
                    let name = p.name.to_ascii_lowercase();
                    // OpenAPI ignores these three as parameters.
                    if ["accept", "content-type", "authorization"].contains(&name.as_str()) {
                        continue;
                    }
                    match r.header(&name) {
                        None if p.required => {
                            out.push(format!("missing required header {}", p.name))
                        }
                        Some(v) if !v.starts_with("<redacted") => {
                            self.check_text(&p.schema, v, &format!("header {}", p.name), out)
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }

        match (&op.body, r.body.is_empty()) {
            (Body::None, true) => {}
            (Body::None, false) => out.push(format!(
                "a body ({} bytes), but the operation takes none",
                r.body.len()
            )),
            (Body::Some { required, .. }, true) => {
                if *required {
                    out.push("no body, but the operation requires one".into());
                }
            }
            (Body::Some { media, schema, .. }, false) => {
                let sent = r.header("content-type").map(|c| {
                    c.split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase()
                });
                let accepted = sent
                    .as_deref()
                    .is_some_and(|s| media.iter().any(|m| m.eq_ignore_ascii_case(s)));
                if !accepted {
                    out.push(format!(
                        "content type {} is not one the operation accepts ({})",
                        sent.as_deref().unwrap_or("(none)"),
                        media.join(", ")
                    ));
                } else if sent.as_deref().is_some_and(is_json_media) {
                    match (&r.json, schema) {
                        (None, _) => out.push("the body is not JSON".into()),
                        (Some(v), Some(s)) => self.check_json(s, v, "$", out, 0),
                        (Some(_), None) => {}
                    }
                }
            }
        }
    }

    /// `s` with its `$ref`s followed and its `allOf` merged; the name of the last `$ref`.
    fn resolve<'a>(&'a self, s: &'a Value, out: &mut Vec<String>) -> (Cow<'a, Value>, String) {
        let mut s = s;
        let mut name = String::new();
        for _ in 0..32 {
            let Some(r) = s.get("$ref").and_then(Value::as_str) else {
                break;
            };
            match self.target(r) {
                Some((t, n)) => {
                    s = t;
                    name = n;
                }
                None => {
                    out.push(format!("{}: unresolvable $ref {r}", self.name));
                    return (Cow::Owned(Value::Object(Map::new())), name);
                }
            }
        }
        let Some(all) = s.get("allOf").and_then(Value::as_array) else {
            return (Cow::Borrowed(s), name);
        };
        let mut merged = s.as_object().cloned().unwrap_or_default();
        merged.remove("allOf");
        for part in all {
            let (part, _) = self.resolve(part, out);
            let Some(part) = part.as_object() else {
                continue;
            };
            for (k, v) in part {
                match (k.as_str(), merged.get_mut(k)) {
                    ("properties", Some(Value::Object(mine))) => {
                        if let Some(theirs) = v.as_object() {
                            mine.extend(theirs.clone());
                        }
                    }
                    ("required", Some(Value::Array(mine))) => {
                        mine.extend(v.as_array().cloned().unwrap_or_default())
                    }
                    (_, Some(_)) => {}
                    (_, None) => {
                        merged.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Cow::Owned(Value::Object(merged)), name)
    }

    /// A parameter's text against its schema: type, enum, bounds.
    fn check_text(&self, schema: &Value, text: &str, what: &str, out: &mut Vec<String>) {
        let (s, _) = self.resolve(schema, out);
        let types = types_of(&s);
        let as_json = if types.contains(&"integer") {
            match text.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => {
                    out.push(format!("{what}={text:?} is not an integer"));
                    return;
                }
            }
        } else if types.contains(&"number") {
            match text.parse::<f64>() {
                Ok(n) => Value::from(n),
                Err(_) => {
                    out.push(format!("{what}={text:?} is not a number"));
                    return;
                }
            }
        } else if types.contains(&"boolean") {
            match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    out.push(format!("{what}={text:?} is not true or false"));
                    return;
                }
            }
        } else {
            if is_int64_string(&s) && text.parse::<i128>().is_err() {
                out.push(format!(
                    "{what}={text:?} is not an integer ({})",
                    s["format"].as_str().unwrap_or("")
                ));
                return;
            }
            Value::String(text.to_string())
        };
        if let Some(allowed) = s.get("enum").and_then(Value::as_array) {
            let hit = allowed.iter().any(|a| match a {
                Value::String(a) => a == text,
                other => *other == as_json,
            });
            if !hit {
                out.push(format!(
                    "{what}={text:?} is not one of {}",
                    show(&Value::Array(allowed.clone()))
                ));
            }
        }
        self.check_bounds(&s, &as_json, what, out);
    }

    fn check_bounds(&self, s: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
        let (Some(x), true) = (num(v), matches!(v, Value::Number(_)) || is_int64_string(s)) else {
            return;
        };
        if let Some(min) = s.get("minimum").and_then(num)
            && x < min
        {
            out.push(format!("{at}: {} is below the minimum {min}", show(v)));
        }
        if let Some(max) = s.get("maximum").and_then(num)
            && x > max
        {
            out.push(format!("{at}: {} is above the maximum {max}", show(v)));
        }
    }

    /// A JSON value against a schema, every mismatch into `out` (`at` is its JSON path).
    fn check_json(&self, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>, depth: usize) {
        if depth > 64 {
            return;
        }
        let (s, name) = self.resolve(schema, out);
        let named = |what: String| {
            if name.is_empty() {
                what
            } else {
                format!("{what} ({name})")
            }
        };
        let types = types_of(&s);

        if v.is_null() {
            let allowed = self.dialect == Dialect::Discovery
                || s["nullable"].as_bool() == Some(true)
                || types.contains(&"null")
                || s["enum"]
                    .as_array()
                    .is_some_and(|e| e.contains(&Value::Null))
                || types.is_empty() && s.get("oneOf").is_none() && s.get("anyOf").is_none();
            if !allowed {
                out.push(named(format!("{at}: null, but it is not nullable")));
            }
            return;
        }

        for key in ["oneOf", "anyOf"] {
            let Some(alts) = s.get(key).and_then(Value::as_array) else {
                continue;
            };
            let mut best: Option<Vec<String>> = None;
            for alt in alts {
                let mut mine = Vec::new();
                self.check_json(alt, v, at, &mut mine, depth + 1);
                if mine.is_empty() {
                    best = None;
                    break;
                }
                if best.as_ref().is_none_or(|b| mine.len() < b.len()) {
                    best = Some(mine);
                }
            }
            if let Some(best) = best {
                out.push(named(format!(
                    "{at}: {} matches none of the {} alternatives ({key}); the closest: {}",
                    show(v),
                    alts.len(),
                    best.join("; ")
                )));
                return;
            }
        }

        let kind = kind_of(v);
        let type_ok = types.is_empty()
            || types.iter().any(|t| {
                *t == kind
                    || (*t == "number" && kind == "integer")
                    // A whole number written 5.0 is still an integer.
                    || (*t == "integer" && v.as_f64().is_some_and(|f| f.fract() == 0.0))
            })
            // Google's JSON reads 64-bit integers from strings, and from numbers too.
            || (self.dialect == Dialect::Discovery && is_int64_string(&s) && kind == "integer");
        if !type_ok {
            out.push(named(format!(
                "{at}: {kind} {}, but the type is {}",
                show(v),
                types.join(" or ")
            )));
            return;
        }
        if is_int64_string(&s) && v.as_str().is_some_and(|t| t.parse::<i128>().is_err()) {
            out.push(named(format!("{at}: {} is not an integer", show(v))));
        }
        if let Some(allowed) = s.get("enum").and_then(Value::as_array)
            && !allowed.contains(v)
        {
            out.push(named(format!(
                "{at}: {} is not one of {}",
                show(v),
                show(&Value::Array(allowed.clone()))
            )));
        }
        self.check_bounds(&s, v, at, out);

        match v {
            Value::Array(items) => {
                if let Some(item) = s.get("items") {
                    for (i, x) in items.iter().enumerate() {
                        self.check_json(item, x, &format!("{at}[{i}]"), out, depth + 1);
                    }
                }
            }
            Value::Object(m) => {
                let props = s.get("properties").and_then(Value::as_object);
                for k in s["required"].as_array().into_iter().flatten() {
                    if let Some(k) = k.as_str()
                        && !m.contains_key(k)
                    {
                        out.push(named(format!("{at}: missing required property {k}")));
                    }
                }
                for (k, x) in m {
                    let here = format!("{at}.{k}");
                    if let Some(p) = props.and_then(|p| p.get(k)) {
                        let (resolved, _) = self.resolve(p, out);
                        if resolved["readOnly"].as_bool() == Some(true) {
                            out.push(named(format!("{here}: read-only, not for requests")));
                        }
                        self.check_json(p, x, &here, out, depth + 1);
                        continue;
                    }
                    match s.get("additionalProperties") {
                        Some(Value::Bool(true)) => {}
                        Some(Value::Object(a)) if a.is_empty() => {}
                        Some(a @ Value::Object(_)) => self.check_json(a, x, &here, out, depth + 1),
                        // Closed: `false`, or declared properties and nothing about others
                        // (an object described only by its `oneOf`/`anyOf` alternatives was
                        // checked, closed, against them above).
                        Some(_) => out.push(named(format!("{here}: not a declared property"))),
                        None if props.is_some_and(|p| !p.is_empty()) => {
                            out.push(named(format!("{here}: not a declared property")))
                        }
                        None => {}
                    }
                }
            }
            _ => {}
        }
    }
}
