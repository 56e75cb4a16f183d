//! The OpenSSH allowed_signers format (see ssh-keygen(1), "ALLOWED SIGNERS"):
//!
//! ```text
//! # comment
//! principal[,principal…] [options] keytype base64-key [comment]
//! ```
//!
//! Options are comma-separated, their values in double quotes as ssh-keygen requires:
//! `namespaces="ns1,ns2"` (patterns; restricts what the key may sign), `cert-authority`,
//! `valid-after="…"` and `valid-before="…"`. offboard honours `namespaces` and the validity
//! window the way `ssh-keygen -Y verify` does (see [`parse_ssh_time`] and
//! [`AllowedSigner::refusal`]); `cert-authority` lines are skipped (evidence is signed with plain
//! keys). Where ssh-keygen skips a malformed line, offboard refuses the file and names the line.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use ssh_key::PublicKey;

use super::EvidenceError;

/// A `valid-after` or `valid-before` time: as written, and the instant ssh-keygen reads it as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerTime {
    /// As written in the file, e.g. `20270101Z`.
    pub written: String,
    /// Seconds since the Unix epoch.
    pub unix: i64,
}

impl SignerTime {
    /// `valid-before="20270101Z"` (2027-01-01T00:00:00Z).
    fn describe(&self, option: &str) -> String {
        let at = chrono::DateTime::from_timestamp(self.unix, 0)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| self.unix.to_string());
        format!("{option}=\"{}\" ({at})", self.written)
    }
}

/// Why a line that lists the signing key does not let it sign this evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `namespaces="…"` does not include the evidence namespace.
    Namespace,
    /// The evidence was signed before `valid-after`.
    NotYetValid(SignerTime),
    /// The evidence was signed after `valid-before` (the key was retired).
    Expired(SignerTime),
}

impl Refusal {
    /// The reason in words, for a file signed at `signed_at` (as the evidence records it).
    pub fn describe(&self, namespace: &str, signed_at: &str) -> String {
        match self {
            Refusal::Namespace => format!("but not for namespace {namespace:?}"),
            Refusal::NotYetValid(t) => format!(
                "but only from {}, and the evidence was signed earlier, at {signed_at}",
                t.describe("valid-after")
            ),
            Refusal::Expired(t) => format!(
                "but only until {} (the key was retired), and the evidence was signed later, at {signed_at}",
                t.describe("valid-before")
            ),
        }
    }
}

/// One line of an allowed_signers file.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowedSigner {
    /// The principals (patterns) as written.
    pub principals: Vec<String>,
    /// The `namespaces="…"` restriction, if any.
    pub namespaces: Option<Vec<String>>,
    pub cert_authority: bool,
    /// `valid-after="…"`: the key may sign at or after this time.
    pub valid_after: Option<SignerTime>,
    /// `valid-before="…"`: the key may sign at or before this time.
    pub valid_before: Option<SignerTime>,
    pub key: PublicKey,
    /// 1-based line in the file.
    pub line: usize,
}

impl AllowedSigner {
    /// Whether this entry allows signing in `namespace`.
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        match &self.namespaces {
            None => true,
            Some(patterns) => pattern_list_matches(patterns, namespace),
        }
    }

    /// Why this entry does not accept a signature in `namespace` made at `at` (Unix seconds), or
    /// `None` when it does. As `ssh-keygen -Y verify -Overify-time=<at>`: the namespace first,
    /// then `at < valid-after` or `at > valid-before` refuse (both ends are inclusive).
    pub fn refusal(&self, namespace: &str, at: i64) -> Option<Refusal> {
        if !self.allows_namespace(namespace) {
            return Some(Refusal::Namespace);
        }
        if let Some(after) = &self.valid_after
            && at < after.unix
        {
            return Some(Refusal::NotYetValid(after.clone()));
        }
        if let Some(before) = &self.valid_before
            && at > before.unix
        {
            return Some(Refusal::Expired(before.clone()));
        }
        None
    }
}

/// A parsed allowed_signers file.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowedSigners {
    pub source: PathBuf,
    pub entries: Vec<AllowedSigner>,
}

impl AllowedSigners {
    pub fn read(path: &Path) -> Result<AllowedSigners, EvidenceError> {
        let text = std::fs::read_to_string(path).map_err(|e| EvidenceError::AllowedSigners {
            file: path.to_path_buf(),
            line: 0,
            reason: format!("cannot read it: {e}"),
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, source: &Path) -> Result<AllowedSigners, EvidenceError> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let err = |reason: String| EvidenceError::AllowedSigners {
                file: source.to_path_buf(),
                line,
                reason,
            };
            let fields = split_fields(trimmed).map_err(err)?;
            let mut it = fields.into_iter();
            let principals = it
                .next()
                .ok_or_else(|| err("no principals".into()))?
                .split(',')
                .map(str::to_string)
                .collect::<Vec<_>>();
            let mut next = it
                .next()
                .ok_or_else(|| err("no key after the principals".into()))?;
            let mut options = Options::default();
            if !is_key_type(&next) {
                options = Options::parse(&next).map_err(err)?;
                next = it
                    .next()
                    .ok_or_else(|| err("no key type after the options".into()))?;
            }
            let key_type = next;
            let b64 = it
                .next()
                .ok_or_else(|| err(format!("no base64 key after {key_type}")))?;
            let key = PublicKey::from_openssh(&format!("{key_type} {b64}"))
                .map_err(|e| err(format!("not a valid {key_type} public key ({e})")))?;
            entries.push(AllowedSigner {
                principals,
                namespaces: options.namespaces,
                cert_authority: options.cert_authority,
                valid_after: options.valid_after,
                valid_before: options.valid_before,
                key,
                line,
            });
        }
        Ok(AllowedSigners {
            source: source.to_path_buf(),
            entries,
        })
    }
}

/// The options field of a line, read by ssh-keygen's rules: keywords in any case, values in
/// double quotes, each option at most once, `valid-before` later than `valid-after`.
#[derive(Debug, Default)]
struct Options {
    namespaces: Option<Vec<String>>,
    cert_authority: bool,
    valid_after: Option<SignerTime>,
    valid_before: Option<SignerTime>,
}

impl Options {
    fn parse(field: &str) -> Result<Options, String> {
        let mut o = Options::default();
        for opt in split_options(field) {
            let (name, value) = match opt.split_once('=') {
                Some((n, v)) => (n.to_ascii_lowercase(), Some(v)),
                None => (opt.to_ascii_lowercase(), None),
            };
            let quoted = |v: Option<&str>| -> Result<String, String> {
                v.and_then(dequote).ok_or_else(|| {
                    format!("{name} needs a value in double quotes, e.g. {name}=\"…\" (ssh-keygen ignores the line otherwise)")
                })
            };
            let once = |taken: bool| {
                if taken {
                    Err(format!("{name} is given twice"))
                } else {
                    Ok(())
                }
            };
            match name.as_str() {
                "cert-authority" if value.is_none() => o.cert_authority = true,
                "namespaces" => {
                    once(o.namespaces.is_some())?;
                    o.namespaces = Some(quoted(value)?.split(',').map(str::to_string).collect());
                }
                "valid-after" | "valid-before" => {
                    let taken = if name == "valid-after" {
                        o.valid_after.is_some()
                    } else {
                        o.valid_before.is_some()
                    };
                    once(taken)?;
                    let written = quoted(value)?;
                    let unix = parse_ssh_time(&written).ok_or_else(|| {
                        format!("{name}=\"{written}\" is not a time: write YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, with a Z suffix for UTC (else local time)")
                    })?;
                    let t = Some(SignerTime { written, unix });
                    if name == "valid-after" {
                        o.valid_after = t;
                    } else {
                        o.valid_before = t;
                    }
                }
                _ => return Err(format!("unknown option {opt:?}")),
            }
        }
        if let (Some(a), Some(b)) = (&o.valid_after, &o.valid_before)
            && b.unix <= a.unix
        {
            return Err(format!(
                "valid-before=\"{}\" is not later than valid-after=\"{}\"",
                b.written, a.written
            ));
        }
        Ok(o)
    }
}

/// A time in an allowed_signers file, read exactly as ssh-keygen reads `valid-after`,
/// `valid-before` and `-Overify-time=` (OpenSSH's `parse_absolute_time`): `YYYYMMDD`,
/// `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, in UTC when it ends in `Z` (or `UTC`), else in the local
/// time zone (`TZ`). The C library does the reading, as it does for ssh-keygen, so the two agree
/// on every input, daylight-saving time included. `None` when it is not such a time or not after
/// 1970-01-01T00:00:00Z.
pub fn parse_ssh_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (d, utc) = if b.len() > 1 && b[b.len() - 1].eq_ignore_ascii_case(&b'z') {
        (&b[..b.len() - 1], true)
    } else if b.len() > 3 && b[b.len() - 3..].eq_ignore_ascii_case(b"utc") {
        (&b[..b.len() - 3], true)
    } else {
        (b, false)
    };
    let (text, format): (Vec<u8>, &std::ffi::CStr) = match d.len() {
        8 => (
            [&d[0..4], b"-", &d[4..6], b"-", &d[6..8]].concat(),
            c"%Y-%m-%d",
        ),
        12 => (
            [
                &d[0..4],
                b"-",
                &d[4..6],
                b"-",
                &d[6..8],
                b"T",
                &d[8..10],
                b":",
                &d[10..12],
            ]
            .concat(),
            c"%Y-%m-%dT%H:%M",
        ),
        14 => (
            [
                &d[0..4],
                b"-",
                &d[4..6],
                b"-",
                &d[6..8],
                b"T",
                &d[8..10],
                b":",
                &d[10..12],
                b":",
                &d[12..14],
            ]
            .concat(),
            c"%Y-%m-%dT%H:%M:%S",
        ),
        _ => return None,
    };
    let text = CString::new(text).ok()?;
    // SAFETY: `tm` is a plain C struct for which all zeroes is a valid value; `text` and `format`
    // are NUL-terminated and outlive the calls; strptime returns NULL or a pointer into `text`.
    let t = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        let end = libc::strptime(text.as_ptr(), format.as_ptr(), &mut tm);
        if end.is_null() || *end != 0 {
            return None;
        }
        if utc {
            libc::timegm(&mut tm)
        } else {
            libc::mktime(&mut tm)
        }
    };
    #[allow(clippy::useless_conversion)] // time_t is narrower than i64 on some platforms
    let t = i64::from(t);
    (t > 0).then_some(t)
}

fn is_key_type(s: &str) -> bool {
    s.starts_with("ssh-") || s.starts_with("ecdsa-") || s.starts_with("sk-")
}

/// Split on whitespace, keeping double-quoted runs together (`\"` does not end a quote).
fn split_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        match c {
            '"' if escaped => cur.push(c),
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
        escaped = c == '\\' && !escaped;
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    // A quoted principals field is written without its quotes.
    if let Some(first) = out.first_mut() {
        *first = first
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(first)
            .to_string();
    }
    Ok(out)
}

/// Split options on commas outside quotes.
fn split_options(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        match c {
            '"' if escaped => cur.push(c),
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
        escaped = c == '\\' && !escaped;
    }
    out.push(cur);
    out
}

/// `"value"` → `value` (with `\"` read as `"`); `None` without both quotes, as ssh-keygen.
fn dequote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    if inner.replace("\\\"", "").contains('"') {
        return None;
    }
    Some(inner.replace("\\\"", "\""))
}

/// OpenSSH pattern-list semantics: any positive pattern matches and no negated (`!`) one does.
pub(crate) fn pattern_list_matches(patterns: &[String], s: &str) -> bool {
    let mut matched = false;
    for p in patterns {
        let p = p.trim();
        if let Some(neg) = p.strip_prefix('!') {
            if glob(neg, s) {
                return false;
            }
        } else if glob(p, s) {
            matched = true;
        }
    }
    matched
}

/// `*` and `?` wildcards.
fn glob(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti";

    #[test]
    fn parses_principals_options_and_comments() {
        let text = format!(
            "# auditors\n\nalice@corp,bob@corp namespaces=\"offboard-evidence,git\" {KEY} a comment\n\"quoted principal\" {KEY}\nca@corp cert-authority,valid-after=\"20240101\" {KEY}\n"
        );
        let a = AllowedSigners::parse(&text, Path::new("as")).unwrap();
        assert_eq!(a.entries.len(), 3);
        assert_eq!(a.entries[0].principals, vec!["alice@corp", "bob@corp"]);
        assert_eq!(a.entries[0].line, 3);
        assert!(a.entries[0].allows_namespace("offboard-evidence"));
        assert!(!a.entries[0].allows_namespace("file"));
        assert_eq!(a.entries[1].principals, vec!["quoted principal"]);
        assert!(a.entries[1].allows_namespace("anything"));
        assert!(a.entries[2].cert_authority);
        assert_eq!(
            a.entries[2].valid_after,
            Some(SignerTime {
                written: "20240101".into(),
                unix: parse_ssh_time("20240101").unwrap()
            })
        );
    }

    #[test]
    fn times_are_read_as_ssh_keygen_reads_them() {
        // 2026-01-01T00:00:00Z
        let day = 1_767_225_600;
        assert_eq!(parse_ssh_time("20260101Z"), Some(day));
        assert_eq!(parse_ssh_time("20260101z"), Some(day));
        assert_eq!(parse_ssh_time("20260101UTC"), Some(day));
        assert_eq!(
            parse_ssh_time("202601011230Z"),
            Some(day + 12 * 3600 + 30 * 60)
        );
        assert_eq!(
            parse_ssh_time("20260101123045Z"),
            Some(day + 12 * 3600 + 30 * 60 + 45)
        );
        for bad in [
            "",
            "Z",
            "2026010Z",
            "2026-01-01",
            "20261301Z",
            "2026010112Z",
            "202601011230456Z",
            "2026O101Z",
            "19700101Z",
            "19691231Z",
        ] {
            assert_eq!(parse_ssh_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn validity_window_options_follow_ssh_keygen() {
        let parse =
            |opts: &str| AllowedSigners::parse(&format!("p {opts} {KEY}\n"), Path::new("as"));
        let a = parse("valid-after=\"20260101Z\",VALID-BEFORE=\"20270101Z\"").unwrap();
        let e = &a.entries[0];
        let (after, before) = (1_767_225_600, 1_798_761_600);
        assert_eq!(e.valid_after.as_ref().unwrap().unix, after);
        assert_eq!(e.valid_before.as_ref().unwrap().unix, before);
        // Both ends are inclusive, as in ssh-keygen.
        assert_eq!(e.refusal("offboard-evidence", after), None);
        assert_eq!(e.refusal("offboard-evidence", before), None);
        assert!(matches!(
            e.refusal("offboard-evidence", after - 1),
            Some(Refusal::NotYetValid(t)) if t.written == "20260101Z"
        ));
        assert!(matches!(
            e.refusal("offboard-evidence", before + 1),
            Some(Refusal::Expired(t)) if t.written == "20270101Z"
        ));

        for (opts, why) in [
            ("valid-after=20260101Z", "double quotes"),
            ("namespaces=offboard-evidence", "double quotes"),
            ("valid-before=\"2026\"", "is not a time"),
            (
                "valid-after=\"20260101Z\",valid-after=\"20260102Z\"",
                "twice",
            ),
            (
                "valid-after=\"20270101Z\",valid-before=\"20260101Z\"",
                "not later than",
            ),
            (
                "valid-after=\"20260101Z\",valid-before=\"20260101Z\"",
                "not later than",
            ),
        ] {
            let err = parse(opts).unwrap_err();
            assert!(
                matches!(&err, EvidenceError::AllowedSigners { line: 1, reason, .. } if reason.contains(why)),
                "{opts}: {err}"
            );
        }
    }

    #[test]
    fn reports_the_bad_line() {
        let err =
            AllowedSigners::parse(&format!("ok {KEY}\nbad ssh-ed25519 !!!\n"), Path::new("as"))
                .unwrap_err();
        assert!(
            matches!(err, EvidenceError::AllowedSigners { line: 2, .. }),
            "{err}"
        );
        let err =
            AllowedSigners::parse("p bogus=1 ssh-ed25519 AAAA\n", Path::new("as")).unwrap_err();
        assert!(err.to_string().contains("unknown option"), "{err}");
    }

    #[test]
    fn pattern_lists() {
        let pl = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(pattern_list_matches(
            &pl(&["offboard-*"]),
            "offboard-evidence"
        ));
        assert!(pattern_list_matches(
            &pl(&["git", "off?oard-evidence"]),
            "offboard-evidence"
        ));
        assert!(!pattern_list_matches(
            &pl(&["*", "!offboard-*"]),
            "offboard-evidence"
        ));
        assert!(!pattern_list_matches(&pl(&["file"]), "offboard-evidence"));
    }
}
