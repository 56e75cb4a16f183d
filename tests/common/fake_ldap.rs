//! A small in-memory LDAPv3 server for tests, on 127.0.0.1 (a free port), plain LDAP only.
//!
//! Implements, with a hand-written BER reader/writer (definite lengths, one-byte tags — all
//! LDAPv3 needs for these operations):
//! - BindRequest, simple only: checked against [`FakeLdap::add_account`]; a wrong password is
//!   resultCode 49 with Active Directory's `80090308: LdapErr: …, data 52e` text.
//! - SearchRequest: scopes base/one/sub over a DN-keyed entry map; filters and, or, not,
//!   equality (case-insensitive; `objectCategory=person` also matches AD's
//!   `CN=Person,CN=Schema,…` value by its first RDN) and presence. Answers SearchResultEntry
//!   per match (the requested attributes; none for `1.1`; all for none or `*`) and
//!   SearchResultDone; a base that does not exist is 32 noSuchObject with the nearest existing
//!   ancestor as matchedDN.
//! - ModifyRequest: add / delete (all values or listed values; 16 noSuchAttribute when a listed
//!   value is absent) / replace, applied to the entry. Changing a group's `member` keeps the
//!   members' `memberOf` in step, as AD does.
//! - ModifyDNRequest: moves the entry under newSuperior (deleteoldrdn is assumed true).
//! - UnbindRequest (closes), ExtendedRequest (StartTLS and anything else: 2 protocolError,
//!   "unsupported extended operation", as a server without TLS configured answers).
//!
//! Faults are scripted per operation ([`FakeLdap::fail_next`]): the next requests of that kind
//! answer the given resultCode (with a realistic diagnosticMessage) and change nothing. Every
//! request is recorded as received ([`FakeLdap::requests`]); bind passwords are never recorded.
//!
//! DNs are compared case-insensitively, spaces around `,` and `=` ignored; escaped commas in
//! DNs are not understood (test entries do not use them).
//!
//! Not implemented: TLS/StartTLS, SASL, controls (ignored if sent), paging, referrals,
//! substring/ordering/approx/extensible filters (they match nothing), schema checks, access
//! control beyond scripted faults, Add/Delete/Compare/Abandon (answered or ignored minimally).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// The kind of an LDAP operation, for faults and records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Bind,
    Search,
    Modify,
    ModDn,
}

/// A modification as received: operation (`add`, `delete`, `replace`), attribute, values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub op: &'static str,
    pub attr: String,
    pub values: Vec<String>,
}

/// A request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The bind name; the password is never kept.
    Bind {
        dn: String,
    },
    /// `filter` is rendered back to RFC 4515 text, values escaped.
    Search {
        base: String,
        scope: u8,
        filter: String,
        attrs: Vec<String>,
    },
    Modify {
        dn: String,
        changes: Vec<Change>,
    },
    ModDn {
        dn: String,
        new_rdn: String,
        new_superior: Option<String>,
    },
    Extended {
        oid: String,
    },
    Unbind,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    dn: String,
    attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl Entry {
    fn get(&self, name: &str) -> Option<&Vec<Vec<u8>>> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
    fn get_mut(&mut self, name: &str) -> &mut Vec<Vec<u8>> {
        if let Some(i) = self
            .attrs
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            return &mut self.attrs[i].1;
        }
        self.attrs.push((name.to_string(), Vec::new()));
        &mut self.attrs.last_mut().unwrap().1
    }
}

#[derive(Default)]
struct State {
    entries: BTreeMap<String, Entry>,
    accounts: HashMap<String, String>,
    faults: HashMap<Op, VecDeque<u8>>,
    log: Vec<Request>,
}

/// A running fake; the server thread lives as long as the test process.
#[derive(Clone)]
pub struct FakeLdap {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

/// A DN normalised for lookups: lower case, no spaces around `,` and `=`.
pub fn dn_key(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| match rdn.split_once('=') {
            Some((a, v)) => format!("{}={}", a.trim(), v.trim()),
            None => rdn.trim().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

/// The diagnosticMessage a real server (AD wording) sends with a result code.
pub fn diagnostic(rc: u8) -> &'static str {
    match rc {
        49 => {
            "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563\0"
        }
        50 => "00002098: SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0\n\0",
        32 => {
            "0000208D: NameErr: DSID-03100241, problem 2001 (NO_OBJECT), data 0, best match of:\n\0"
        }
        51 => "00002024: SvcErr: DSID-03380C3E, problem 5001 (BUSY), data 0\n\0",
        52 => "00000005: SvcErr: DSID-03380C3F, problem 5002 (UNAVAILABLE), data 0\n\0",
        53 => "0000052D: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0\n\0",
        16 => {
            "00002077: AtrErr: DSID-03151F1A, #1: 0: 00002077: problem 1001 (NO_ATTRIBUTE_OR_VAL)\n\0"
        }
        _ => "",
    }
}

impl FakeLdap {
    pub fn start() -> FakeLdap {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let st = shared.clone();
                std::thread::spawn(move || serve(s, st));
            }
        });
        FakeLdap { port, state }
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Someone who may bind (simple bind, name exactly as the client sends it).
    pub fn add_account(&self, bind_name: &str, password: &str) {
        let mut st = self.state.lock().unwrap();
        st.accounts.insert(bind_name.into(), password.into());
    }

    /// Add (or replace) an entry: `attrs` as (name, values). Like a real server, the entry
    /// gets ids of its own: a binary objectGUID (AD), an entryUUID (OpenLDAP) and an
    /// nsUniqueId (389-DS); the last two are operational, sent only when asked for by name.
    pub fn add_entry(&self, dn: &str, attrs: &[(&str, &[&str])]) {
        let mut e = Entry {
            dn: dn.to_string(),
            attrs: attrs
                .iter()
                .map(|(k, vs)| {
                    (
                        k.to_string(),
                        vs.iter().map(|v| v.as_bytes().to_vec()).collect(),
                    )
                })
                .collect(),
        };
        let guid: [u8; 16] = rand::random();
        let uuid = hex(&guid);
        e.attrs.push(("objectGUID".into(), vec![guid.to_vec()]));
        e.attrs.push((
            "entryUUID".into(),
            vec![
                format!(
                    "{}-{}-{}-{}-{}",
                    &uuid[..8],
                    &uuid[8..12],
                    &uuid[12..16],
                    &uuid[16..20],
                    &uuid[20..]
                )
                .into_bytes(),
            ],
        ));
        e.attrs.push((
            "nsUniqueId".into(),
            vec![
                format!(
                    "{}-{}-{}-{}",
                    &uuid[..8],
                    &uuid[8..16],
                    &uuid[16..24],
                    &uuid[24..]
                )
                .into_bytes(),
            ],
        ));
        self.state.lock().unwrap().entries.insert(dn_key(dn), e);
    }

    /// The raw objectGUID bytes of an entry.
    pub fn object_guid(&self, dn: &str) -> Vec<u8> {
        let st = self.state.lock().unwrap();
        st.entries[&dn_key(dn)].get("objectGUID").unwrap()[0].clone()
    }

    /// Take an entry away (deleted behind the tool's back).
    pub fn remove_entry(&self, dn: &str) {
        self.state.lock().unwrap().entries.remove(&dn_key(dn));
    }

    /// Rename or move an entry behind the tool's back (its ids stay, as on a real server).
    pub fn rename_entry(&self, dn: &str, new_dn: &str) {
        let mut st = self.state.lock().unwrap();
        let mut e = st.entries.remove(&dn_key(dn)).unwrap();
        e.dn = new_dn.to_string();
        st.entries.insert(dn_key(new_dn), e);
    }

    /// Set (replace) an attribute's values directly, as another admin would.
    pub fn set_attr(&self, dn: &str, name: &str, values: &[&str]) {
        let mut st = self.state.lock().unwrap();
        let e = st.entries.get_mut(&dn_key(dn)).unwrap();
        *e.get_mut(name) = values.iter().map(|v| v.as_bytes().to_vec()).collect();
        e.attrs.retain(|(_, v)| !v.is_empty());
    }

    /// An attribute's values as text; empty when the entry or attribute is absent.
    pub fn attr(&self, dn: &str, name: &str) -> Vec<String> {
        let st = self.state.lock().unwrap();
        st.entries
            .get(&dn_key(dn))
            .and_then(|e| e.get(name))
            .map(|vs| {
                vs.iter()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn exists(&self, dn: &str) -> bool {
        self.state.lock().unwrap().entries.contains_key(&dn_key(dn))
    }

    /// The next `codes.len()` requests of kind `op` answer these result codes, changing nothing;
    /// a 0 lets that request through (`&[0, 51]`: the second one is busy).
    pub fn fail_next(&self, op: Op, codes: &[u8]) {
        let mut st = self.state.lock().unwrap();
        st.faults.entry(op).or_default().extend(codes);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn modifies(&self) -> Vec<(String, Vec<Change>)> {
        self.requests()
            .into_iter()
            .filter_map(|r| match r {
                Request::Modify { dn, changes } => Some((dn, changes)),
                _ => None,
            })
            .collect()
    }

    pub fn search_filters(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter_map(|r| match r {
                Request::Search { filter, .. } => Some(filter),
                _ => None,
            })
            .collect()
    }
}

// ---- BER ----

/// One TLV: tag byte and contents.
#[derive(Debug, Clone)]
struct Tlv {
    tag: u8,
    body: Vec<u8>,
}

impl Tlv {
    fn children(&self) -> Vec<Tlv> {
        let mut out = Vec::new();
        let mut rest = &self.body[..];
        while !rest.is_empty() {
            let Some((t, n)) = parse(rest) else { break };
            out.push(t);
            rest = &rest[n..];
        }
        out
    }
    fn int(&self) -> i64 {
        let mut v: i64 = if self.body.first().is_some_and(|b| b & 0x80 != 0) {
            -1
        } else {
            0
        };
        for b in &self.body {
            v = (v << 8) | i64::from(*b);
        }
        v
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parse one TLV from the start of `buf`: the TLV and the bytes it took.
fn parse(buf: &[u8]) -> Option<(Tlv, usize)> {
    let tag = *buf.first()?;
    let first = *buf.get(1)? as usize;
    let (len, head) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *buf.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let body = buf.get(head..head + len)?.to_vec();
    Some((Tlv { tag, body }, head + len))
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(body);
    out
}

fn int(tag: u8, v: i64) -> Vec<u8> {
    let mut bytes = v.to_be_bytes().to_vec();
    while bytes.len() > 1
        && ((bytes[0] == 0 && bytes[1] & 0x80 == 0) || (bytes[0] == 0xff && bytes[1] & 0x80 != 0))
    {
        bytes.remove(0);
    }
    tlv(tag, &bytes)
}

/// Read one whole LDAPMessage from the socket.
fn read_message(s: &mut TcpStream) -> Option<Tlv> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).ok()?;
    let mut raw = head.to_vec();
    if head[1] & 0x80 != 0 {
        let mut n = vec![0u8; (head[1] & 0x7f) as usize];
        s.read_exact(&mut n).ok()?;
        raw.extend(&n);
    }
    let (len, hl) = {
        let first = raw[1] as usize;
        if first < 0x80 {
            (first, 2)
        } else {
            (
                raw[2..].iter().fold(0usize, |a, b| (a << 8) | *b as usize),
                raw.len(),
            )
        }
    };
    raw.resize(hl + len, 0);
    s.read_exact(&mut raw[hl..]).ok()?;
    parse(&raw).map(|(t, _)| t)
}

/// LDAPMessage { messageID, protocolOp }.
fn message(id: i64, op: Vec<u8>) -> Vec<u8> {
    let mut body = int(0x02, id);
    body.extend(op);
    tlv(0x30, &body)
}

/// An LDAPResult-shaped response with application tag `tag`.
fn result(tag: u8, rc: u8, matched: &str, text: &str) -> Vec<u8> {
    let mut body = int(0x0a, i64::from(rc));
    body.extend(tlv(0x04, matched.as_bytes()));
    body.extend(tlv(0x04, text.as_bytes()));
    tlv(tag, &body)
}

// ---- filters ----

fn escape(v: &[u8]) -> String {
    if std::str::from_utf8(v).is_err() {
        // A binary value (objectGUID): every byte escaped.
        return v.iter().map(|b| format!("\\{b:02x}")).collect();
    }
    let mut out = String::new();
    for c in String::from_utf8_lossy(v).chars() {
        match c {
            '*' | '(' | ')' | '\\' | '\0' => out.push_str(&format!("\\{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The filter as RFC 4515 text, values escaped.
fn render(f: &Tlv) -> String {
    match f.tag {
        0xa0..=0xa2 => {
            let op = ["&", "|", "!"][(f.tag - 0xa0) as usize];
            let inner: String = f.children().iter().map(render).collect();
            format!("({op}{inner})")
        }
        0xa3 => {
            let c = f.children();
            format!("({}={})", c[0].text(), escape(&c[1].body))
        }
        0x87 => format!("({}=*)", f.text()),
        t => format!("(<unsupported filter 0x{t:02x}>)"),
    }
}

fn matches(f: &Tlv, e: &Entry) -> bool {
    match f.tag {
        0xa0 => f.children().iter().all(|c| matches(c, e)),
        0xa1 => f.children().iter().any(|c| matches(c, e)),
        0xa2 => f.children().first().is_some_and(|c| !matches(c, e)),
        0xa3 => {
            let c = f.children();
            let (attr, want) = (c[0].text(), &c[1].body);
            let raw = want.clone();
            let want = String::from_utf8_lossy(want).to_lowercase();
            e.get(&attr).is_some_and(|vs| {
                vs.iter().any(|v| {
                    // Binary values (objectGUID) match byte for byte.
                    if std::str::from_utf8(v).is_err() || std::str::from_utf8(&raw).is_err() {
                        return *v == raw;
                    }
                    let v = String::from_utf8_lossy(v).to_lowercase();
                    v == want
                        || (attr.eq_ignore_ascii_case("objectCategory")
                            && v.strip_prefix("cn=")
                                .and_then(|r| r.split(',').next())
                                .is_some_and(|cn| cn == want))
                })
            })
        }
        0x87 => {
            let attr = f.text();
            attr.eq_ignore_ascii_case("objectClass") || e.get(&attr).is_some_and(|v| !v.is_empty())
        }
        _ => false,
    }
}

// ---- the server ----

fn serve(mut s: TcpStream, st: Arc<Mutex<State>>) {
    while let Some(msg) = read_message(&mut s) {
        let parts = msg.children();
        let (Some(id), Some(op)) = (parts.first(), parts.get(1)) else {
            return;
        };
        let id = id.int();
        let replies = handle(op, &st);
        if op.tag == 0x42 {
            return;
        }
        for r in replies {
            if s.write_all(&message(id, r)).is_err() {
                return;
            }
        }
    }
}

/// The scripted result for the next request of kind `op`; 0 in the queue lets one through.
fn fault(st: &mut State, op: Op) -> Option<u8> {
    st.faults
        .get_mut(&op)
        .and_then(VecDeque::pop_front)
        .filter(|rc| *rc != 0)
}

/// The nearest existing ancestor of `dn`, for matchedDN.
fn matched_dn(st: &State, dn: &str) -> String {
    let mut rest = dn;
    while let Some((_, parent)) = rest.split_once(',') {
        if let Some(e) = st.entries.get(&dn_key(parent)) {
            return e.dn.clone();
        }
        rest = parent;
    }
    String::new()
}

fn handle(op: &Tlv, st: &Mutex<State>) -> Vec<Vec<u8>> {
    let mut st = st.lock().unwrap();
    let c = op.children();
    match op.tag {
        // BindRequest
        0x60 => {
            let dn = c[1].text();
            let pw = c[2].text();
            st.log.push(Request::Bind { dn: dn.clone() });
            if let Some(rc) = fault(&mut st, Op::Bind) {
                return vec![result(0x61, rc, "", diagnostic(rc))];
            }
            let ok = c[2].tag == 0x80 && st.accounts.get(&dn).is_some_and(|p| *p == pw);
            let rc = if ok { 0 } else { 49 };
            vec![result(0x61, rc, "", diagnostic(rc))]
        }
        // UnbindRequest
        0x42 => {
            st.log.push(Request::Unbind);
            Vec::new()
        }
        // SearchRequest
        0x63 => {
            let base = c[0].text();
            let scope = c[1].int() as u8;
            let attrs: Vec<String> = c[7].children().iter().map(Tlv::text).collect();
            st.log.push(Request::Search {
                base: base.clone(),
                scope,
                filter: render(&c[6]),
                attrs: attrs.clone(),
            });
            if let Some(rc) = fault(&mut st, Op::Search) {
                return vec![result(0x65, rc, "", diagnostic(rc))];
            }
            let bk = dn_key(&base);
            if !st.entries.contains_key(&bk) {
                return vec![result(0x65, 32, &matched_dn(&st, &base), diagnostic(32))];
            }
            let mut out = Vec::new();
            for (k, e) in &st.entries {
                let depth_ok = match scope {
                    0 => *k == bk,
                    1 => k
                        .strip_suffix(&bk)
                        .and_then(|r| r.strip_suffix(','))
                        .is_some_and(|r| !r.contains(',')),
                    _ => *k == bk || k.ends_with(&format!(",{bk}")),
                };
                if depth_ok && matches(&c[6], e) {
                    out.push(entry_pdu(e, &attrs));
                }
            }
            out.push(result(0x65, 0, "", ""));
            out
        }
        // ModifyRequest
        0x66 => {
            let dn = c[0].text();
            let changes: Vec<Change> = c[1]
                .children()
                .iter()
                .map(|ch| {
                    let p = ch.children();
                    let m = p[1].children();
                    Change {
                        op: ["add", "delete", "replace"][p[0].int().clamp(0, 2) as usize],
                        attr: m[0].text(),
                        values: m[1].children().iter().map(Tlv::text).collect(),
                    }
                })
                .collect();
            st.log.push(Request::Modify {
                dn: dn.clone(),
                changes: changes.clone(),
            });
            if let Some(rc) = fault(&mut st, Op::Modify) {
                return vec![result(0x67, rc, "", diagnostic(rc))];
            }
            let rc = apply_modify(&mut st, &dn, &changes);
            let matched = if rc == 32 {
                matched_dn(&st, &dn)
            } else {
                String::new()
            };
            vec![result(0x67, rc, &matched, diagnostic(rc))]
        }
        // ModifyDNRequest
        0x6c => {
            let dn = c[0].text();
            let new_rdn = c[1].text();
            let new_superior = c.get(3).filter(|t| t.tag == 0x80).map(Tlv::text);
            st.log.push(Request::ModDn {
                dn: dn.clone(),
                new_rdn: new_rdn.clone(),
                new_superior: new_superior.clone(),
            });
            if let Some(rc) = fault(&mut st, Op::ModDn) {
                return vec![result(0x6d, rc, "", diagnostic(rc))];
            }
            let Some(mut e) = st.entries.remove(&dn_key(&dn)) else {
                return vec![result(0x6d, 32, &matched_dn(&st, &dn), diagnostic(32))];
            };
            let parent = new_superior.unwrap_or_else(|| {
                dn.split_once(',')
                    .map_or(String::new(), |(_, p)| p.to_string())
            });
            e.dn = format!("{new_rdn},{parent}");
            st.entries.insert(dn_key(&e.dn), e);
            vec![result(0x6d, 0, "", "")]
        }
        // ExtendedRequest (StartTLS included): not offered.
        0x77 => {
            let oid = c.first().map(Tlv::text).unwrap_or_default();
            st.log.push(Request::Extended { oid });
            vec![result(0x78, 2, "", "unsupported extended operation")]
        }
        // AbandonRequest: no answer.
        0x50 => Vec::new(),
        // Anything else (Add, Delete, Compare): unwilling, in the matching response.
        t => vec![result((t | 0x20) + 1, 53, "", diagnostic(53))],
    }
}

/// Attributes a server sends only when a search names them.
const OPERATIONAL: &[&str] = &["entryUUID", "nsUniqueId"];

fn entry_pdu(e: &Entry, wanted: &[String]) -> Vec<u8> {
    let all = wanted.is_empty() || wanted.iter().any(|a| a == "*");
    let mut attrs = Vec::new();
    for (name, vals) in &e.attrs {
        let named = wanted.iter().any(|w| w.eq_ignore_ascii_case(name));
        let operational = OPERATIONAL.iter().any(|o| o.eq_ignore_ascii_case(name));
        if !named && (!all || operational) {
            continue;
        }
        let set: Vec<u8> = vals.iter().flat_map(|v| tlv(0x04, v)).collect();
        let mut pa = tlv(0x04, name.as_bytes());
        pa.extend(tlv(0x31, &set));
        attrs.extend(tlv(0x30, &pa));
    }
    let mut body = tlv(0x04, e.dn.as_bytes());
    body.extend(tlv(0x30, &attrs));
    tlv(0x64, &body)
}

fn apply_modify(st: &mut State, dn: &str, changes: &[Change]) -> u8 {
    let key = dn_key(dn);
    let Some(mut e) = st.entries.get(&key).cloned() else {
        return 32;
    };
    let mut links: Vec<(String, bool)> = Vec::new();
    for ch in changes {
        let vals: Vec<Vec<u8>> = ch.values.iter().map(|v| v.as_bytes().to_vec()).collect();
        let cur = e.get_mut(&ch.attr);
        let before = cur.clone();
        match ch.op {
            "add" => cur.extend(vals.clone()),
            "replace" => *cur = vals.clone(),
            _ if vals.is_empty() => cur.clear(),
            _ => {
                for v in &vals {
                    let Some(i) = cur.iter().position(|c| c.eq_ignore_ascii_case(v)) else {
                        return 16;
                    };
                    cur.remove(i);
                }
            }
        }
        if ch.attr.eq_ignore_ascii_case("member") {
            let now = cur.clone();
            for v in before.iter().filter(|v| !now.contains(v)) {
                links.push((String::from_utf8_lossy(v).into_owned(), false));
            }
            for v in now.iter().filter(|v| !before.contains(v)) {
                links.push((String::from_utf8_lossy(v).into_owned(), true));
            }
        }
    }
    e.attrs.retain(|(_, v)| !v.is_empty());
    let group_dn = e.dn.clone();
    st.entries.insert(key, e);
    // AD's back-link: memberOf follows member.
    for (member, added) in links {
        if let Some(m) = st.entries.get_mut(&dn_key(&member)) {
            let mo = m.get_mut("memberOf");
            mo.retain(|g| dn_key(&String::from_utf8_lossy(g)) != dn_key(&group_dn));
            if added {
                mo.push(group_dn.clone().into_bytes());
            }
            m.attrs.retain(|(_, v)| !v.is_empty());
        }
    }
    0
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
