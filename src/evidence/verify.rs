//! Checking an evidence file offline: signature, statement shape, chain, subject digest, the
//! journal beside it when there is one, and last whether its signer is trusted.

use std::path::{Path, PathBuf};

use serde_json::Value;
use ssh_key::{HashAlg, PublicKey, SshSig};

use super::allowed_signers::Refusal;
use super::{AllowedSigners, NAMESPACE, PREDICATE_TYPE, STATEMENT_TYPE, sig_path, subject_name};
use crate::journal::{self, ChainError, Event, JOURNAL_FILE, Record};

/// Whose signatures to accept.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Keys listed in an OpenSSH allowed_signers file, with their `namespaces` and
    /// `valid-after`/`valid-before` restrictions (checked at the time the evidence was signed).
    AllowedSigners(AllowedSigners),
    /// Any of these public keys (the local signing key).
    Keys(Vec<PublicKey>),
    /// Nobody: no key was named as trusted, so even an intact file is refused
    /// ([`Distrust::NoTrustedKeys`]), because anyone can sign a file with a key of their own.
    Nobody,
    /// Check integrity only: the file is unchanged since the key it names signed it. Says
    /// nothing about who holds that key; [`Verified::trusted`] is false.
    IntegrityOnly,
}

/// An intact evidence file (and, unless checked with [`Trust::IntegrityOnly`], a trusted signer).
#[derive(Debug, Clone)]
pub struct Verified {
    pub departure_id: String,
    pub revision: u32,
    pub signer_fingerprint: String,
    /// The matching allowed_signers principals (comma-separated), when trust came from such a file.
    pub principal: Option<String>,
    pub events: Vec<Event>,
    /// When the evidence says it was signed (`predicate.generated_at`), the time the signer's
    /// validity window is checked at.
    pub signed_at: String,
    /// Whether the signer was found trusted (false only for [`Trust::IntegrityOnly`]).
    pub trusted: bool,
    /// How far the signature can be trusted, for the person reading the result.
    pub trust_note: String,
    /// Whether a journal beside the file was compared with the embedded events.
    pub journal_checked: bool,
}

/// Why an intact file's signer is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Distrust {
    #[error(
        "pass --allowed-signers FILE (or set OFFBOARD_ALLOWED_SIGNERS) naming the keys you trust"
    )]
    NoTrustedKeys,
    #[error(
        "it is not the local signing key; pass --allowed-signers FILE naming the keys you trust"
    )]
    NotTheLocalKey,
    #[error("it is not in {}", file.display())]
    NotListed { file: PathBuf },
    #[error("{} line {line} lists it, {}", file.display(), refusal.describe(NAMESPACE, signed_at))]
    Refused {
        file: PathBuf,
        line: usize,
        refusal: Refusal,
        signed_at: String,
    },
}

/// Why an evidence file is not valid: what is wrong, and where.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not JSON at line {line}, column {column}: {reason}")]
    NotJson {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("the signature file {} is missing (evidence is signed into `<file>.sig` beside it)", path.display())]
    MissingSignature { path: PathBuf },
    #[error("cannot read the signature {}: {source}", path.display())]
    ReadSignature {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not an OpenSSH signature (-----BEGIN SSH SIGNATURE-----): {reason}", path.display())]
    SignatureFormat { path: PathBuf, reason: String },
    #[error(
        "the signature's namespace is {found:?}, expected {NAMESPACE:?} (it was made for something else)"
    )]
    WrongNamespace { found: String },
    #[error(
        "the signature does not match the file's bytes (the file or the signature was changed): {reason}"
    )]
    BadSignature { reason: String },
    #[error("signature intact, but the signer {fingerprint} is not trusted: {why}")]
    Untrusted { fingerprint: String, why: Distrust },
    #[error(
        "predicate.signer.public_key names key {named}, but the signature was made by {actual}"
    )]
    SignerMismatch { named: String, actual: String },
    #[error("{field} is {found:?}, expected {expected:?} (not offboard evidence)")]
    WrongType {
        field: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("{field} is missing or not {what}")]
    Missing {
        field: &'static str,
        what: &'static str,
    },
    #[error("predicate.events[{index}] (journal line {}): {source}", index + 1)]
    Chain { index: usize, source: ChainError },
    #[error("predicate.events is empty: there is no journal to attest")]
    NoEvents,
    #[error("predicate.chain.{field} is {claimed}, but the embedded events give {actual}")]
    ChainSummaryMismatch {
        field: &'static str,
        claimed: String,
        actual: String,
    },
    #[error(
        "subject[0].digest.sha256 is {claimed}, but the embedded events' journal bytes hash to {actual}"
    )]
    SubjectDigestMismatch { claimed: String, actual: String },
    #[error("{field} is {claimed}, but the {events} embedded events make it {expected}")]
    SubjectMismatch {
        field: &'static str,
        claimed: String,
        expected: String,
        events: usize,
    },
    #[error(
        "predicate.departure.id is {claimed:?}, but the embedded departure_started event says {actual:?}"
    )]
    DepartureMismatch { claimed: String, actual: String },
    #[error("the journal beside it ({}) differs from the embedded events at line {line}", journal.display())]
    JournalDiverges { journal: PathBuf, line: usize },
    #[error("the journal beside it ({}) has {found} complete lines, fewer than the {expected} events embedded", journal.display())]
    JournalShorter {
        journal: PathBuf,
        found: usize,
        expected: usize,
    },
    #[error("the journal beside it ({}) records revision {revision} with sha256 {recorded}, but this file's sha256 is {actual}", journal.display())]
    JournalRecordsOtherFile {
        journal: PathBuf,
        revision: u32,
        recorded: String,
        actual: String,
    },
    #[error("an approval in it does not hold: {reason}")]
    Approval { reason: String },
    #[error("{}:{line}: {reason}", file.display())]
    AllowedSigners {
        file: PathBuf,
        line: usize,
        reason: String,
    },
}

fn fingerprint(key: &ssh_key::public::KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The base64 body of an armored block, without line breaks.
fn armor_body(text: &[u8]) -> Vec<u8> {
    text.split(|&b| b == b'\n')
        .filter(|l| !l.starts_with(b"-----"))
        .flat_map(|l| l.iter().copied().filter(|b| !b.is_ascii_whitespace()))
        .collect()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Check an evidence file, its signature and its chain, then whether its signer is trusted (the
/// numbered comments below give the order). Every failure is an [`EvidenceError`];
/// [`EvidenceError::Untrusted`] means the file itself is intact.
pub fn verify(path: &Path, trust: Trust) -> Result<Verified, EvidenceError> {
    // 1. Readable JSON.
    let bytes = std::fs::read(path).map_err(|source| EvidenceError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let statement: Value = serde_json::from_slice(&bytes).map_err(|e| EvidenceError::NotJson {
        line: e.line(),
        column: e.column(),
        reason: e.to_string(),
    })?;

    // 2. The signature: present, well-formed, right namespace, over these bytes, by the key the
    //    file names. Whether that key is trusted is decided last (8), once the file is known
    //    to be intact, so that an untrusted signer is reported as exactly that.
    let sig_file = sig_path(path);
    let sig_text = match std::fs::read(&sig_file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EvidenceError::MissingSignature { path: sig_file });
        }
        Err(source) => {
            return Err(EvidenceError::ReadSignature {
                path: sig_file,
                source,
            });
        }
    };
    let sig = SshSig::from_pem(&sig_text).map_err(|e| EvidenceError::SignatureFormat {
        path: sig_file.clone(),
        reason: e.to_string(),
    })?;
    // The decoder tolerates some malformed fields (e.g. a wrong length prefix); insist that the
    // file is exactly the canonical encoding of what was decoded, so any change is an error.
    let canonical =
        sig.to_pem(ssh_key::LineEnding::LF)
            .map_err(|e| EvidenceError::SignatureFormat {
                path: sig_file.clone(),
                reason: e.to_string(),
            })?;
    if armor_body(&sig_text) != armor_body(canonical.as_bytes()) {
        return Err(EvidenceError::SignatureFormat {
            path: sig_file,
            reason: "its encoding is not canonical (the signature file was altered)".into(),
        });
    }
    if sig.namespace() != NAMESPACE {
        return Err(EvidenceError::WrongNamespace {
            found: sig.namespace().to_string(),
        });
    }
    let signer = PublicKey::new(sig.public_key().clone(), "");
    signer
        .verify(NAMESPACE, &bytes, &sig)
        .map_err(|e| EvidenceError::BadSignature {
            reason: e.to_string(),
        })?;
    let signer_fingerprint = fingerprint(sig.public_key());

    // The file names the key that signed it (so a reader can see who claims to have signed).
    let named =
        str_at(&statement, "/predicate/signer/public_key").ok_or(EvidenceError::Missing {
            field: "predicate.signer.public_key",
            what: "an OpenSSH public key",
        })?;
    match PublicKey::from_openssh(named) {
        Ok(k) if k.key_data() == sig.public_key() => {}
        Ok(k) => {
            return Err(EvidenceError::SignerMismatch {
                named: fingerprint(k.key_data()),
                actual: signer_fingerprint,
            });
        }
        Err(_) => {
            return Err(EvidenceError::SignerMismatch {
                named: named.chars().take(80).collect(),
                actual: signer_fingerprint,
            });
        }
    }

    // 3. The statement's type.
    let ty = str_at(&statement, "/_type").unwrap_or_default();
    if ty != STATEMENT_TYPE {
        return Err(EvidenceError::WrongType {
            field: "_type",
            found: ty.to_string(),
            expected: STATEMENT_TYPE,
        });
    }
    let pt = str_at(&statement, "/predicateType").unwrap_or_default();
    if pt != PREDICATE_TYPE {
        return Err(EvidenceError::WrongType {
            field: "predicateType",
            found: pt.to_string(),
            expected: PREDICATE_TYPE,
        });
    }
    // When it was signed: the time an allowed_signers validity window is checked at.
    let signed_at = str_at(&statement, "/predicate/generated_at")
        .and_then(|t| Some((t, chrono::DateTime::parse_from_rfc3339(t).ok()?)))
        .ok_or(EvidenceError::Missing {
            field: "predicate.generated_at",
            what: "an RFC 3339 time",
        })?;
    let (signed_at, signed_unix) = (signed_at.0.to_string(), signed_at.1.timestamp());

    // 4. The embedded events form an intact chain, each in the journal's canonical form.
    let raw_events = statement
        .pointer("/predicate/events")
        .and_then(Value::as_array)
        .ok_or(EvidenceError::Missing {
            field: "predicate.events",
            what: "an array",
        })?;
    if raw_events.is_empty() {
        return Err(EvidenceError::NoEvents);
    }
    let mut events: Vec<Event> = Vec::with_capacity(raw_events.len());
    // The journal bytes the events stand for, built as they are checked (each event's line is
    // serialised once, and that line is both compared and hashed).
    let mut journal_bytes: Vec<u8> = Vec::new();
    for (index, raw) in raw_events.iter().enumerate() {
        let line = index + 1;
        let event =
            <Event as serde::Deserialize>::deserialize(raw).map_err(|e| EvidenceError::Chain {
                index,
                source: ChainError::Malformed {
                    line,
                    reason: e.to_string(),
                },
            })?;
        let (canonical, hash, same) = event.line_and_hash_matching(raw);
        journal::check_link(&event, events.last(), line)
            .map_err(|source| EvidenceError::Chain { index, source })?;
        if hash != event.hash {
            return Err(EvidenceError::Chain {
                index,
                source: ChainError::BadHash { line },
            });
        }
        // Members the event type does not know would be dropped by parsing: the embedded object
        // must be exactly the event as the journal stores it.
        if !same {
            return Err(EvidenceError::Chain {
                index,
                source: ChainError::NotCanonical { line },
            });
        }
        journal_bytes.extend_from_slice(canonical.as_bytes());
        journal_bytes.push(b'\n');
        events.push(event);
    }

    // 5. The chain summary matches.
    let head = &events.last().expect("not empty").hash;
    let claimed_head = str_at(&statement, "/predicate/chain/head").unwrap_or_default();
    if claimed_head != head {
        return Err(EvidenceError::ChainSummaryMismatch {
            field: "head",
            claimed: claimed_head.to_string(),
            actual: head.clone(),
        });
    }
    let claimed_len = statement
        .pointer("/predicate/chain/length")
        .and_then(Value::as_u64);
    if claimed_len != Some(events.len() as u64) {
        return Err(EvidenceError::ChainSummaryMismatch {
            field: "length",
            claimed: claimed_len.map_or("missing".into(), |n| n.to_string()),
            actual: events.len().to_string(),
        });
    }

    // 6. The subject digest pins the journal bytes.
    let digest = journal::sha256_hex(&journal_bytes);
    // The subject names the first N lines of the journal, N the number of events, so that
    // `head -n N journal.jsonl | sha256sum` prints the digest even after later events.
    let n = events.len();
    let subject_checks = [
        (
            "subject[0].name",
            statement.pointer("/subject/0/name"),
            Value::from(subject_name(n)),
        ),
        (
            "subject[0].annotations.file",
            statement.pointer("/subject/0/annotations/file"),
            Value::from(JOURNAL_FILE),
        ),
        (
            "subject[0].annotations.lines",
            statement.pointer("/subject/0/annotations/lines"),
            Value::from(n),
        ),
    ];
    for (field, claimed, expected) in subject_checks {
        if claimed != Some(&expected) {
            return Err(EvidenceError::SubjectMismatch {
                field,
                claimed: claimed.map_or("missing".into(), Value::to_string),
                expected: expected.to_string(),
                events: n,
            });
        }
    }
    let claimed = str_at(&statement, "/subject/0/digest/sha256").unwrap_or_default();
    if claimed != digest {
        return Err(EvidenceError::SubjectDigestMismatch {
            claimed: claimed.to_string(),
            actual: digest,
        });
    }

    // The departure named is the one the events started.
    let actual_id = crate::departure::facts(&events)
        .map(|f| f.id.clone())
        .ok_or(EvidenceError::Missing {
            field: "predicate.events",
            what: "a journal with a departure_started event",
        })?;
    let claimed_id = str_at(&statement, "/predicate/departure/id").unwrap_or_default();
    if claimed_id != actual_id {
        return Err(EvidenceError::DepartureMismatch {
            claimed: claimed_id.to_string(),
            actual: actual_id,
        });
    }
    let revision = statement
        .pointer("/predicate/revision")
        .and_then(Value::as_u64)
        .and_then(|r| u32::try_from(r).ok())
        .ok_or(EvidenceError::Missing {
            field: "predicate.revision",
            what: "a number",
        })?;

    // The approvals the journal records are signatures over this departure's own plan digest
    // (a forged, altered or mismatched approval fails here, even in a re-signed file).
    if let Some(facts) = crate::departure::facts(&events) {
        let approvals: Vec<crate::approval::Approval> = events
            .iter()
            .filter_map(|e| match &e.record {
                Record::Approved(a) => Some(a.clone()),
                _ => None,
            })
            .collect();
        crate::approval::verify_recorded(facts, &approvals)
            .map_err(|reason| EvidenceError::Approval { reason })?;
        // A rollback's approvals are signatures over the rollback plan's own digest.
        crate::rollback::verify_recorded(&events)
            .map_err(|reason| EvidenceError::Approval { reason })?;
    }

    // 7. A journal beside the file starts with exactly the embedded events.
    let journal_path = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(journal::JOURNAL_FILE);
    let mut journal_checked = false;
    if let Ok(on_disk) = std::fs::read(&journal_path) {
        journal_checked = true;
        let disk_lines: Vec<&[u8]> = on_disk
            .split_inclusive(|&b| b == b'\n')
            .filter(|l| l.ends_with(b"\n"))
            .collect();
        let ours: Vec<&[u8]> = journal_bytes.split_inclusive(|&b| b == b'\n').collect();
        for (i, line) in ours.iter().enumerate() {
            match disk_lines.get(i) {
                Some(d) if d == line => {}
                Some(_) => {
                    return Err(EvidenceError::JournalDiverges {
                        journal: journal_path,
                        line: i + 1,
                    });
                }
                None => {
                    return Err(EvidenceError::JournalShorter {
                        journal: journal_path,
                        found: disk_lines.len(),
                        expected: ours.len(),
                    });
                }
            }
        }
        // If the journal recorded writing this revision, it recorded these bytes.
        // (The file's hash is taken only for such a record.)
        for d in &disk_lines[ours.len()..] {
            let Ok(ev) = serde_json::from_slice::<Event>(d) else {
                continue;
            };
            if let Record::EvidenceWritten {
                revision: r,
                sha256,
                ..
            } = &ev.record
                && *r == revision
                && let actual = journal::sha256_hex(&bytes)
                && *sha256 != actual
            {
                return Err(EvidenceError::JournalRecordsOtherFile {
                    journal: journal_path,
                    revision,
                    recorded: sha256.clone(),
                    actual,
                });
            }
        }
    }

    // 8. Last, whether the signer is trusted: the file is intact, so say so if it is not.
    let (principal, trust_note) = match judge(&trust, sig.public_key(), signed_unix, &signed_at) {
        Ok(found) => found,
        Err(why) => {
            return Err(EvidenceError::Untrusted {
                fingerprint: signer_fingerprint,
                why,
            });
        }
    };

    Ok(Verified {
        departure_id: actual_id,
        revision,
        signer_fingerprint,
        principal,
        events,
        signed_at,
        trusted: !matches!(trust, Trust::IntegrityOnly),
        trust_note,
        journal_checked,
    })
}

/// Whether `key` may have signed evidence at `at` (Unix seconds; `signed_at` as written): the
/// matching principals, if any, and a note on what trusted it; or why not.
///
/// An allowed_signers file is read as `ssh-keygen -Y verify -Overify-time=<at>` reads it: the
/// first line that lists the key (not as `cert-authority`), allows the namespace and whose
/// validity window holds `at` trusts it; when none does, the first line that lists the key says
/// why.
fn judge(
    trust: &Trust,
    key: &ssh_key::public::KeyData,
    at: i64,
    signed_at: &str,
) -> Result<(Option<String>, String), Distrust> {
    match trust {
        Trust::AllowedSigners(list) => {
            let mut first_refusal = None;
            for e in list
                .entries
                .iter()
                .filter(|e| !e.cert_authority && e.key.key_data() == key)
            {
                match e.refusal(NAMESPACE, at) {
                    None => {
                        return Ok((
                            Some(e.principals.join(",")),
                            format!("trusted by {} line {}", list.source.display(), e.line),
                        ));
                    }
                    Some(refusal) => {
                        first_refusal.get_or_insert(Distrust::Refused {
                            file: list.source.clone(),
                            line: e.line,
                            refusal,
                            signed_at: signed_at.to_string(),
                        });
                    }
                }
            }
            Err(first_refusal.unwrap_or_else(|| Distrust::NotListed {
                file: list.source.clone(),
            }))
        }
        Trust::Keys(keys) => {
            if keys.iter().any(|k| k.key_data() == key) {
                Ok((None, "the local signing key".to_string()))
            } else {
                Err(Distrust::NotTheLocalKey)
            }
        }
        Trust::Nobody => Err(Distrust::NoTrustedKeys),
        Trust::IntegrityOnly => Ok((
            None,
            "integrity only: the file is unchanged since this key signed it; who holds the key \
             was not checked, --allowed-signers checks that"
                .to_string(),
        )),
    }
}
