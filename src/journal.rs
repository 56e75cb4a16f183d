//! The append-only, hash-chained journal: the only source of truth about a departure.
//!
//! One JSON object per line. Each event carries `seq`, `ts`, `actor`, `step`, `kind`, `data`,
//! `prev` (the previous event's hash) and `hash`. Every line is written in *canonical JSON*
//! (object keys sorted, no insignificant whitespace) and `hash` is the SHA-256 of the canonical
//! JSON of the event without its `hash` member, written as `sha256:<hex>`. The first event's
//! `prev` is [`GENESIS`]. So anyone can re-check the chain with any JSON library, and the journal
//! bytes can be rebuilt exactly from the events (which is what the evidence's subject digest
//! covers).
//!
//! Each append is one `write` of a whole line followed by `fsync`. A crash can at worst leave a
//! torn last line, which [`Journal::open`] detects and reports; it is never silently dropped.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::{
    Account, Answer, PreflightCheck, RequestRecord, RetryNote, TicketAttach, TicketAttachFailure,
    TicketClose,
};
// The frozen plan is the one thing the journal records that belongs to the departure.
use crate::departure::DepartureFacts;

/// `prev` of the first event.
pub const GENESIS: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The file name of a departure's journal inside its directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// What happened. Serialized as `"kind": "<snake_case>", "data": {...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Record {
    /// The departure, its runbook and its whole plan, frozen at start.
    DepartureStarted(Box<DepartureFacts>),
    /// A run (start, resume, demo) began driving the departure.
    RunStarted { command: String },
    /// Before anything was cut, every system was asked read-only about the person.
    Preflight {
        passed: bool,
        checks: Vec<PreflightCheck>,
        /// Transient failures retried while asking.
        retries: u32,
    },
    /// About to call the provider to apply the step.
    ApplyStarted { attempt: u32 },
    /// The provider call failed transiently and will be retried.
    Retried(RetryNote),
    /// The provider identified the account it is about to change (by the system's own id).
    Identified { account: Account },
    /// The provider accepted the change (or found it already in place).
    Applied {
        changed: bool,
        summary: String,
        requests: Vec<RequestRecord>,
        /// The account acted on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Account>,
    },
    /// The step's check read the live state.
    Checked {
        revoked: bool,
        observed: String,
        /// `run`, `resume` or `verify`
        context: String,
        /// The account whose state was read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Account>,
    },
    /// A check could not run (verify), or apply failed for good.
    Failed { error: String, phase: String },
    /// The step was not run, and why (legal hold, a dependency not done).
    Skipped { reason: String },
    /// A person answered a manual step.
    Answered {
        answer: Answer,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        fields: std::collections::BTreeMap<String, String>,
    },
    /// A run stopped before the end (Ctrl-C, signal).
    Interrupted { reason: String },
    /// A run reached its end.
    RunFinished { complete: bool },
    /// `verify` re-checked every automated step.
    VerifyFinished {
        holding: usize,
        drift: usize,
        errors: usize,
    },
    /// A legal hold was placed on the departure (the event's actor placed it): every destructive
    /// step is blocked from then on, until a `hold_released`.
    HoldPlaced { reason: String },
    /// The legal hold was lifted (the event's actor lifted it); blocked steps run at the next
    /// resume.
    HoldReleased { reason: String },
    /// A signed evidence revision was written.
    EvidenceWritten {
        revision: u32,
        file: String,
        sha256: String,
    },
    /// An evidence revision was attached to the service desk ticket, with a note (the next
    /// evidence revision records where it went).
    TicketAttached(TicketAttach),
    /// Attaching an evidence revision failed; it is pending until `offboard attach` succeeds.
    TicketAttachFailed(TicketAttachFailure),
    /// The ticket was set to the runbook's `close_status` (the departure was complete).
    TicketClosed(TicketClose),
    /// A reminder, escalation or drift notice was sent, or failed to send (`remind` retries it
    /// at its next run). Who, on which channel, about which steps; never a credential.
    Notified(crate::notify::Notification),
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub ts: String,
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(flatten)]
    pub record: Record,
    pub prev: String,
    pub hash: String,
}

impl Event {
    /// The canonical JSON of this event without `hash`: what `hash` is computed over.
    pub fn body_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_value(self).expect("events always serialize");
        if let Some(obj) = v.as_object_mut() {
            obj.remove("hash");
        }
        canonical_json(&v).into_bytes()
    }

    /// The hash this event should carry.
    pub fn compute_hash(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(self.body_bytes())))
    }

    /// The exact line (without newline) this event is stored as.
    pub fn line(&self) -> String {
        canonical_json(&serde_json::to_value(self).expect("events always serialize"))
    }

    pub fn time(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.ts)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Serialize a JSON value with object keys sorted at every level and no whitespace.
pub fn canonical_json(v: &serde_json::Value) -> String {
    use serde_json::Value;
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).expect("string"));
                    out.push(':');
                    write(&map[k.as_str()], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// What is wrong with a journal's chain.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChainError {
    #[error("line {line}: not a journal event ({reason})")]
    Malformed { line: usize, reason: String },
    #[error(
        "line {line}: event seq is {found}, expected {expected} (events deleted, inserted or reordered)"
    )]
    Sequence {
        line: usize,
        expected: u64,
        found: u64,
    },
    #[error(
        "line {line}: prev does not match the hash of the event before it (events deleted, inserted or reordered)"
    )]
    BrokenLink { line: usize },
    #[error("line {line}: hash does not match the event's content (the event was altered)")]
    BadHash { line: usize },
    #[error("line {line}: not in canonical form (the line was altered)")]
    NotCanonical { line: usize },
    #[error(
        "the last line is incomplete ({bytes} bytes with no newline): a write was cut off by a crash"
    )]
    TornTail { bytes: usize },
    #[error("the journal is empty")]
    Empty,
}

/// Parse and check a whole journal. `Err(TornTail)` is only returned when everything before the
/// torn tail is intact; use [`split_torn_tail`] to recover.
pub fn parse_chain(bytes: &[u8]) -> Result<Vec<Event>, ChainError> {
    let (complete, tail) = split_torn_tail(bytes);
    let events = check_lines(complete)?;
    if !tail.is_empty() {
        return Err(ChainError::TornTail { bytes: tail.len() });
    }
    if events.is_empty() {
        return Err(ChainError::Empty);
    }
    Ok(events)
}

/// Split the bytes into the complete lines and a trailing partial line (empty if none).
pub fn split_torn_tail(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => bytes.split_at(i + 1),
        None => (&bytes[..0], bytes),
    }
}

/// Check a run of complete lines: each parses, is canonical, hashes right and links to the one
/// before.
pub fn check_lines(bytes: &[u8]) -> Result<Vec<Event>, ChainError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ChainError::Malformed {
        line: 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        reason: "not UTF-8".into(),
    })?;
    let mut events: Vec<Event> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let event: Event = serde_json::from_str(raw).map_err(|e| ChainError::Malformed {
            line,
            reason: e.to_string(),
        })?;
        check_event(&event, events.last(), line)?;
        if event.line() != raw {
            return Err(ChainError::NotCanonical { line });
        }
        events.push(event);
    }
    Ok(events)
}

/// Check one event against its predecessor.
pub fn check_event(event: &Event, before: Option<&Event>, line: usize) -> Result<(), ChainError> {
    let (expected_seq, expected_prev) = match before {
        Some(b) => (b.seq + 1, b.hash.as_str()),
        None => (0, GENESIS),
    };
    if event.seq != expected_seq {
        return Err(ChainError::Sequence {
            line,
            expected: expected_seq,
            found: event.seq,
        });
    }
    if event.prev != expected_prev {
        return Err(ChainError::BrokenLink { line });
    }
    if event.compute_hash() != event.hash {
        return Err(ChainError::BadHash { line });
    }
    Ok(())
}

/// The exact journal bytes for a list of events.
pub fn journal_bytes(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        out.extend_from_slice(e.line().as_bytes());
        out.push(b'\n');
    }
    out
}

/// sha256 hex of a byte string.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Who is acting: `user@host`, from the environment.
pub fn local_actor() -> String {
    let user = std::env::var("OFFBOARD_ACTOR")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| {
            use std::os::unix::fs::MetadataExt;
            match std::fs::metadata("/proc/self").map(|m| m.uid()) {
                Ok(0) => "root".into(),
                Ok(uid) => format!("uid{uid}"),
                Err(_) => "unknown".into(),
            }
        });
    if user.contains('@') {
        return user;
    }
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!("{user}@{host}")
}

/// The current time, or `OFFBOARD_NOW` (RFC 3339) when set, so tests are deterministic.
pub fn now() -> DateTime<Utc> {
    if let Ok(s) = std::env::var("OFFBOARD_NOW")
        && let Ok(t) = DateTime::parse_from_rfc3339(&s)
    {
        return t.with_timezone(&Utc);
    }
    Utc::now()
}

pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An open journal, ready to append. Holding it does not lock the departure; the caller holds a
/// [`crate::state::DepartureLock`] while driving a departure.
pub struct Journal {
    path: PathBuf,
    file: File,
    events: Vec<Event>,
    actor: String,
}

impl Journal {
    /// Create a new journal (the file must not exist) and write its first event.
    pub fn create(path: &Path, actor: String, first: Record) -> Result<Journal> {
        let file = crate::state::create_private_file(path)
            .with_context(|| format!("creating journal {}", path.display()))?;
        crate::state::fsync_parent(path)?;
        let mut journal = Journal {
            path: path.to_path_buf(),
            file,
            events: Vec::new(),
            actor,
        };
        journal.append(None, first)?;
        Ok(journal)
    }

    /// Open an existing journal for appending. The chain is checked first. A torn last line (a
    /// write cut off by a crash) is reported through `on_torn_tail` and then moved aside into
    /// `journal.jsonl.torn-<n>` before appending resumes; anything else wrong is an error.
    pub fn open(path: &Path, actor: String, on_torn_tail: impl FnOnce(usize)) -> Result<Journal> {
        let mut bytes = Vec::new();
        crate::state::open_nofollow(OpenOptions::new().read(true), path)
            .and_then(|mut f| f.read_to_end(&mut bytes).map_err(anyhow::Error::new))
            .with_context(|| format!("reading journal {}", path.display()))?;
        let (complete, tail) = split_torn_tail(&bytes);
        let events = check_lines(complete)
            .with_context(|| format!("journal {} is damaged", path.display()))?;
        if events.is_empty() {
            bail!("journal {} has no complete event", path.display());
        }
        let complete_len = complete.len() as u64;
        if !tail.is_empty() {
            on_torn_tail(tail.len());
            let mut n = 1;
            let aside = loop {
                let p = path.with_extension(format!("jsonl.torn-{n}"));
                if !p.exists() {
                    break p;
                }
                n += 1;
            };
            crate::state::write_atomic(&aside, tail)
                .with_context(|| format!("saving torn journal tail to {}", aside.display()))?;
            let f = crate::state::open_nofollow(OpenOptions::new().write(true), path)
                .with_context(|| format!("opening journal {}", path.display()))?;
            f.set_len(complete_len)
                .and_then(|_| f.sync_all())
                .with_context(|| format!("truncating torn tail of {}", path.display()))?;
        }
        let file = crate::state::open_nofollow(OpenOptions::new().append(true), path)
            .with_context(|| format!("opening journal {} for append", path.display()))?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            events,
            actor,
        })
    }

    /// Read and check a journal without opening it for writing.
    pub fn read(path: &Path) -> Result<Vec<Event>> {
        let bytes = crate::state::read_nofollow(path)
            .map_err(|e| crate::state::nofollow_error(e, path))
            .with_context(|| format!("reading journal {}", path.display()))?;
        let (complete, _tail) = split_torn_tail(&bytes);
        let events = check_lines(complete)
            .with_context(|| format!("journal {} is damaged", path.display()))?;
        if events.is_empty() {
            bail!("journal {} has no complete event", path.display());
        }
        Ok(events)
    }

    /// Append one event: one write of the whole line, then fsync. The event is in memory only
    /// once it is durable on disk.
    pub fn append(&mut self, step: Option<&str>, record: Record) -> Result<&Event> {
        let (seq, prev) = match self.events.last() {
            Some(e) => (e.seq + 1, e.hash.clone()),
            None => (0, GENESIS.to_string()),
        };
        let mut event = Event {
            seq,
            ts: timestamp(now()),
            actor: self.actor.clone(),
            step: step.map(str::to_string),
            record,
            prev,
            hash: String::new(),
        };
        event.hash = event.compute_hash();
        let mut line = event.line().into_bytes();
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|_| self.file.sync_data())
            .with_context(|| {
                format!(
                    "writing to journal {} (the event was not recorded)",
                    self.path.display()
                )
            })?;
        self.events.push(event);
        Ok(self.events.last().expect("just pushed"))
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn set_actor(&mut self, actor: String) {
        self.actor = actor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> Journal {
        let p = dir.join(JOURNAL_FILE);
        let mut j = Journal::create(
            &p,
            "tester@host".into(),
            Record::RunStarted {
                command: "start".into(),
            },
        )
        .unwrap();
        j.append(Some("a"), Record::ApplyStarted { attempt: 1 })
            .unwrap();
        j.append(
            Some("a"),
            Record::Checked {
                revoked: true,
                observed: "active=false".into(),
                context: "run".into(),
                account: None,
            },
        )
        .unwrap();
        j
    }

    #[test]
    fn chain_links_and_rebuilds_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let j = sample(dir.path());
        let bytes = std::fs::read(j.path()).unwrap();
        let events = parse_chain(&bytes).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].prev, GENESIS);
        assert_eq!(events[1].prev, events[0].hash);
        assert_eq!(journal_bytes(&events), bytes);
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"z":[{"y":1,"x":2}],"c":"\n"}}"#).unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"\n","z":[{"x":2,"y":1}]},"b":1}"#
        );
    }

    #[test]
    fn altered_deleted_and_reordered_events_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let j = sample(dir.path());
        let text = std::fs::read_to_string(j.path()).unwrap();
        let lines: Vec<&str> = text.lines().collect();

        let altered = text.replace("active=false", "active=true ");
        assert!(matches!(
            parse_chain(altered.as_bytes()),
            Err(ChainError::BadHash { line: 3 })
        ));

        let deleted = format!("{}\n{}\n", lines[0], lines[2]);
        assert!(matches!(
            parse_chain(deleted.as_bytes()),
            Err(ChainError::Sequence { line: 2, .. })
        ));

        let reordered = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[1]);
        assert!(parse_chain(reordered.as_bytes()).is_err());
    }

    /// A longer journal with varied events, as bytes.
    fn longer_journal(dir: &Path) -> Vec<u8> {
        let mut j = sample(dir);
        for i in 0..6 {
            let step = format!("step-{i}");
            j.append(Some(&step), Record::ApplyStarted { attempt: 1 })
                .unwrap();
            j.append(
                Some(&step),
                Record::Applied {
                    changed: i % 2 == 0,
                    summary: format!("did thing {i} – ünïcode \"quoted\""),
                    requests: vec![],
                    account: None,
                },
            )
            .unwrap();
        }
        std::fs::read(j.path()).unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]

        /// Any single-byte change anywhere in the journal is detected (or, at worst, leaves a
        /// torn tail that is reported, never silently accepted).
        #[test]
        fn any_byte_change_is_detected(at in 0usize..100_000, delta in 1u8..=255) {
            let dir = tempfile::tempdir().unwrap();
            let mut bytes = longer_journal(dir.path());
            let at = at % bytes.len();
            bytes[at] = bytes[at].wrapping_add(delta);
            proptest::prop_assert!(parse_chain(&bytes).is_err());
        }

        /// Deleting, duplicating or swapping whole events is detected.
        #[test]
        fn event_level_tampering_is_detected(a in 0usize..64, b in 0usize..64, op in 0u8..3) {
            let dir = tempfile::tempdir().unwrap();
            let bytes = longer_journal(dir.path());
            let text = String::from_utf8(bytes).unwrap();
            let mut lines: Vec<&str> = text.lines().collect();
            let n = lines.len();
            let (a, b) = (a % n, b % n);
            match op {
                0 => { lines.remove(a); }
                1 => { let l = lines[a]; lines.insert(b, l); }
                _ => {
                    proptest::prop_assume!(a != b);
                    lines.swap(a, b);
                }
            }
            let tampered = lines.join("\n") + "\n";
            // Dropping the last event leaves a valid shorter chain: that is truncation, which the
            // evidence's chain length and subject digest catch. Everything else must fail here.
            if op == 0 && a == n - 1 {
                proptest::prop_assert!(parse_chain(tampered.as_bytes()).is_ok());
            } else {
                proptest::prop_assert!(parse_chain(tampered.as_bytes()).is_err());
            }
        }
    }

    #[test]
    fn torn_tail_is_reported_and_set_aside_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let j = sample(dir.path());
        let path = j.path().to_path_buf();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"actor":"tester@host","da"#).unwrap();
        drop(f);
        let bytes = std::fs::read(&path).unwrap();
        assert!(matches!(
            parse_chain(&bytes),
            Err(ChainError::TornTail { .. })
        ));

        let mut seen = 0;
        let mut j = Journal::open(&path, "tester@host".into(), |n| seen = n).unwrap();
        assert_eq!(seen, 26);
        assert!(path.with_extension("jsonl.torn-1").exists());
        j.append(None, Record::RunFinished { complete: true })
            .unwrap();
        let events = parse_chain(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(events.len(), 4);
    }
}
