//! The OpenSSH allowed_signers format (see ssh-keygen(1), "ALLOWED SIGNERS"):
//!
//! ```text
//! # comment
//! principal[,principal…] [options] keytype base64-key [comment]
//! ```
//!
//! Options are comma-separated: `namespaces="ns1,ns2"` (patterns; restricts what the key may
//! sign), `cert-authority`, `valid-after=…`, `valid-before=…`. offboard honours `namespaces`;
//! `cert-authority` lines are skipped (evidence is signed with plain keys); validity windows are
//! parsed but not enforced (SSHSIG carries no signing time).

use std::path::{Path, PathBuf};

use ssh_key::PublicKey;

use super::EvidenceError;

/// One line of an allowed_signers file.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowedSigner {
    /// The principals (patterns) as written.
    pub principals: Vec<String>,
    /// The `namespaces="…"` restriction, if any.
    pub namespaces: Option<Vec<String>>,
    pub cert_authority: bool,
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
            let mut namespaces = None;
            let mut cert_authority = false;
            if !is_key_type(&next) {
                for opt in split_options(&next) {
                    let (name, value) = match opt.split_once('=') {
                        Some((n, v)) => (n.to_ascii_lowercase(), Some(unquote(v))),
                        None => (opt.to_ascii_lowercase(), None),
                    };
                    match (name.as_str(), value) {
                        ("namespaces", Some(v)) => {
                            namespaces = Some(v.split(',').map(str::to_string).collect());
                        }
                        ("cert-authority", None) => cert_authority = true,
                        ("valid-after" | "valid-before", Some(_)) => {}
                        (other, _) => return Err(err(format!("unknown option {other:?}"))),
                    }
                }
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
                namespaces,
                cert_authority,
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

fn is_key_type(s: &str) -> bool {
    s.starts_with("ssh-") || s.starts_with("ecdsa-") || s.starts_with("sk-")
}

/// Split on whitespace, keeping double-quoted runs together.
fn split_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
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
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    // A quoted principals field is written without its quotes.
    if let Some(first) = out.first_mut() {
        *first = unquote(first);
    }
    Ok(out)
}

/// Split options on commas outside quotes.
fn split_options(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.retain(|o| !o.is_empty());
    out
}

fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
        .to_string()
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
