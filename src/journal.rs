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
//! Each append is one `write` of a whole line, and returns only once an `fsync` that began after
//! that write has ended. Steps appending concurrently share their fsyncs ([`Journal::append_shared`]:
//! group commit), so ten systems finishing at once cost one. A crash can at worst leave a torn
//! last line, which [`Journal::open`] detects and reports; it is never silently dropped.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

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
    /// The state the apply is about to change, read live just before the change (for
    /// `offboard rollback`; the first one of a step is the pre-departure state).
    Before { state: serde_json::Value },
    /// The provider accepted the change (or found it already in place).
    Applied {
        changed: bool,
        summary: String,
        requests: Vec<RequestRecord>,
        /// The account acted on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Account>,
        /// The licences (SKUs, by name) the apply freed, for actions that record them
        /// (`remove_licenses`); absent for every other action, so older journals hash the same.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        licences_freed: Option<Vec<String>>,
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
    /// An approval of the departure's plan was checked and accepted (`start --plan`, or a later
    /// `resume` that found a new `.sig` beside the plan): role, key, signature.
    Approved(crate::approval::Approval),
    /// A rollback plan (`offboard rollback --out`, then `start --plan`) began to run against this
    /// departure: its digest, where its file is, and the whole plan (cancels and undo steps,
    /// each with the account and the pre-state it puts back), so `resume` continues it.
    RollbackStarted(Box<crate::rollback::RollbackGate>),
    /// An approval of the rollback plan (its digest, not the departure's plan's).
    RollbackApproved(crate::approval::Approval),
    /// The step was called off by a rollback before it ran (or before it ran again): no later
    /// run takes it up.
    Cancelled { reason: String },
    /// The provider put back the step's recorded pre-state (or found it already back).
    Restored {
        changed: bool,
        summary: String,
        requests: Vec<RequestRecord>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Account>,
    },
    /// After a restore, the live state read back by the account's id, in the pre-state's shape.
    RestoreChecked {
        after: serde_json::Value,
        restored: bool,
        observed: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Account>,
    },
    /// The rollback cannot undo the step, and why.
    NotRestorable { reason: String },
    /// A restore (or its check) failed; `resume` tries again.
    RestoreFailed { error: String },
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
    /// The event as a JSON object, without `hash`.
    fn body_object(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut v = serde_json::to_value(self).expect("events always serialize");
        let mut obj = std::mem::take(v.as_object_mut().expect("an event is an object"));
        obj.remove("hash");
        obj
    }

    /// The canonical JSON of this event without `hash`: what `hash` is computed over.
    pub fn body_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        write_canonical_object(&self.body_object(), None, &mut out);
        out
    }

    /// The hash this event should carry.
    pub fn compute_hash(&self) -> String {
        hash_of(&self.body_bytes())
    }

    /// The exact line (without newline) this event is stored as.
    pub fn line(&self) -> String {
        let mut out = Vec::new();
        write_canonical_object(&self.body_object(), Some(&self.hash), &mut out);
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    /// From one serialization: the hash this event should carry, and the line it is stored as
    /// when it carries that hash.
    pub fn line_and_hash(&self) -> (String, String) {
        line_and_hash_of(&self.body_object())
    }

    /// [`Event::line_and_hash`], and whether this event serialises to exactly `raw` (members
    /// an event does not know, dropped by parsing, make it differ): for checking an event
    /// embedded as a JSON value without writing that value out again.
    pub fn line_and_hash_matching(&self, raw: &serde_json::Value) -> (String, String, bool) {
        let mut v = serde_json::to_value(self).expect("events always serialize");
        let same = v == *raw;
        let mut obj = std::mem::take(v.as_object_mut().expect("an event is an object"));
        obj.remove("hash");
        let (line, hash) = line_and_hash_of(&obj);
        (line, hash, same)
    }

    pub fn time(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.ts)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// An event's line and hash from its members without `hash`: the body is written once, and
/// the line is the body with the `hash` member put in its sorted place.
fn line_and_hash_of(obj: &serde_json::Map<String, serde_json::Value>) -> (String, String) {
    let mut body = Vec::new();
    let at = write_canonical_object(obj, None, &mut body);
    let hash = hash_of(&body);
    let mut line = Vec::with_capacity(body.len() + hash.len() + 10);
    line.extend_from_slice(&body[..at]);
    let first = at == 1;
    if !first {
        line.push(b',');
    }
    line.extend_from_slice(b"\"hash\":");
    serde_json::to_writer(&mut line, &hash).expect("writing to memory");
    let rest = &body[at..];
    if rest != b"}" {
        line.push(b',');
        // `rest` starts with the comma before the next member when one came before `hash`.
        line.extend_from_slice(rest.strip_prefix(b",").unwrap_or(rest));
    } else {
        line.extend_from_slice(rest);
    }
    (String::from_utf8(line).expect("JSON is UTF-8"), hash)
}

/// `sha256:<hex>` of an event body.
fn hash_of(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

/// Serialize a JSON value with object keys sorted at every level and no whitespace.
pub fn canonical_json(v: &serde_json::Value) -> String {
    let mut out = Vec::new();
    write_canonical(v, &mut out);
    String::from_utf8(out).expect("JSON is UTF-8")
}

fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            write_canonical_object(map, None, out);
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        other => serde_json::to_writer(&mut *out, other).expect("writing to memory"),
    }
}

/// An object, keys sorted; with `hash`, a `"hash"` member of that value is written in its
/// sorted place (so an event's line and its body come from one serialization).
///
/// Returns the offset in `out` where a `hash` member goes (or went): before the separator of
/// the first member sorted after it, or before the closing brace.
fn write_canonical_object(
    map: &serde_json::Map<String, serde_json::Value>,
    hash: Option<&str>,
    out: &mut Vec<u8>,
) -> usize {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_unstable();
    out.push(b'{');
    let mut first = true;
    let mut hash = hash;
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
    };
    let mut at = None;
    for k in keys {
        if at.is_none() && k.as_str() > "hash" {
            at = Some(out.len());
            if let Some(h) = hash.take() {
                sep(out);
                out.extend_from_slice(b"\"hash\":");
                serde_json::to_writer(&mut *out, h).expect("writing to memory");
            }
        }
        sep(out);
        serde_json::to_writer(&mut *out, k).expect("writing to memory");
        out.push(b':');
        write_canonical(&map[k.as_str()], out);
    }
    let at = at.unwrap_or(out.len());
    if let Some(h) = hash {
        sep(out);
        out.extend_from_slice(b"\"hash\":");
        serde_json::to_writer(&mut *out, h).expect("writing to memory");
    }
    out.push(b'}');
    at
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
        // One serialization gives both the hash to check and the canonical line to compare.
        let (canonical, hash) = event.line_and_hash();
        check_link(&event, events.last(), line)?;
        if hash != event.hash {
            return Err(ChainError::BadHash { line });
        }
        if canonical != raw {
            return Err(ChainError::NotCanonical { line });
        }
        events.push(event);
    }
    Ok(events)
}

/// Check one event against its predecessor.
pub fn check_event(event: &Event, before: Option<&Event>, line: usize) -> Result<(), ChainError> {
    check_link(event, before, line)?;
    if event.compute_hash() != event.hash {
        return Err(ChainError::BadHash { line });
    }
    Ok(())
}

/// Check an event's `seq` and `prev` against its predecessor.
pub fn check_link(event: &Event, before: Option<&Event>, line: usize) -> Result<(), ChainError> {
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
///
/// Shared by concurrent steps as `Mutex<Journal>`, it commits in groups
/// ([`Journal::append_shared`]): each appender writes its line under the lock, and whoever finds
/// no fsync in progress becomes the leader, fsyncs once outside the lock for every line written
/// so far, and wakes the others. An append returns only once its line is durable.
pub struct Journal {
    path: PathBuf,
    file: Arc<File>,
    /// The durable events, in order.
    events: Vec<Event>,
    /// Written but not yet fsync'd (a leader's fsync is under way or about to be), in order.
    pending: Vec<Event>,
    /// A leader is fsyncing outside the lock.
    syncing: bool,
    /// A write or fsync failed (its kind and message): nothing after it can be vouched for, so
    /// every later append fails.
    broken: Option<(std::io::ErrorKind, String)>,
    /// Wakes appenders waiting for a leader's fsync.
    committed: Arc<Condvar>,
    /// How many fsyncs made events durable (so a test or the benchmark can count them).
    fsyncs: u64,
    /// How a batch is made durable (`File::sync_data`; tests slow it down to force batches).
    sync: fn(&File) -> std::io::Result<()>,
    actor: String,
    /// The shared database every event is committed to before it is written here, when the
    /// journal lives there ([`crate::store`]).
    remote: Option<crate::store::RemoteJournal>,
}

fn sync_data(f: &File) -> std::io::Result<()> {
    f.sync_data()
}

impl Journal {
    /// Create a new journal (the file must not exist) and write its first event.
    pub fn create(path: &Path, actor: String, first: Record) -> Result<Journal> {
        let file = crate::state::create_private_file(path)
            .with_context(|| format!("creating journal {}", path.display()))?;
        crate::state::fsync_parent(path)?;
        let mut journal = Journal::new(path, file, Vec::new(), actor);
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
        Ok(Journal::new(path, file, events, actor))
    }

    fn new(path: &Path, file: File, events: Vec<Event>, actor: String) -> Journal {
        Journal {
            path: path.to_path_buf(),
            file: Arc::new(file),
            events,
            pending: Vec::new(),
            syncing: false,
            broken: None,
            committed: Arc::new(Condvar::new()),
            fsyncs: 0,
            sync: sync_data,
            actor,
            remote: crate::store::remote_for(path),
        }
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

    /// Append one event: one write of the whole line, then fsync (which also makes durable any
    /// line a concurrent [`Journal::append_shared`] wrote before it). The event is in memory only
    /// once it is durable on disk.
    pub fn append(&mut self, step: Option<&str>, record: Record) -> Result<&Event> {
        let seq = self.write_event(step, record)?;
        let file = self.file.clone();
        let synced = (self.sync)(&file);
        self.synced(synced, seq)?;
        Ok(self.events.last().expect("just made durable"))
    }

    /// Append one event to a journal shared by concurrent appenders, committing in groups: the
    /// line is written under the lock; then whoever finds no fsync in progress fsyncs once,
    /// outside the lock, for every line written so far, while the others wait for it. Returns
    /// once this event is durable (never before its fsync); an fsync that fails fails every event
    /// it was to make durable, and every later append.
    pub fn append_shared(
        shared: &Mutex<Journal>,
        step: Option<&str>,
        record: Record,
    ) -> Result<()> {
        let lock = || shared.lock().unwrap_or_else(|p| p.into_inner());
        let mut j = lock();
        let seq = j.write_event(step, record)?;
        loop {
            if j.events.last().is_some_and(|e| e.seq >= seq) {
                return Ok(());
            }
            if j.broken.is_some() {
                return Err(j.broken_error());
            }
            if j.syncing {
                let committed = j.committed.clone();
                j = committed.wait(j).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // The leader: one fsync for every line written so far, outside the lock.
            let upto = j.pending.last().map_or(seq, |e| e.seq);
            j.syncing = true;
            let (file, sync) = (j.file.clone(), j.sync);
            drop(j);
            let synced = sync(&file);
            j = lock();
            j.syncing = false;
            let outcome = j.synced(synced, upto);
            j.committed.notify_all();
            outcome?;
        }
    }

    /// Write the next event's line (no fsync) and queue it as pending; its seq.
    fn write_event(&mut self, step: Option<&str>, record: Record) -> Result<u64> {
        if self.broken.is_some() {
            return Err(self.broken_error());
        }
        let (seq, prev) = match self.pending.last().or(self.events.last()) {
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
        let (mut line, hash) = event.line_and_hash();
        event.hash = hash;
        if let Some(remote) = &self.remote {
            remote.append(&event, &line)?;
        }
        line.push('\n');
        if let Err(e) = (&*self.file).write_all(line.as_bytes()) {
            self.fail(e.kind(), e.to_string());
            return Err(self.broken_error());
        }
        self.pending.push(event);
        Ok(seq)
    }

    /// An fsync that began after the line of `upto` was written has returned: on success every
    /// pending event up to `upto` is durable.
    fn synced(&mut self, synced: std::io::Result<()>, upto: u64) -> Result<()> {
        match synced {
            Ok(()) => {
                self.fsyncs += 1;
                let n = self.pending.iter().take_while(|e| e.seq <= upto).count();
                self.events.extend(self.pending.drain(..n));
                Ok(())
            }
            Err(e) => {
                self.fail(e.kind(), format!("fsync: {e}"));
                Err(self.broken_error())
            }
        }
    }

    /// Nothing written from now on can be vouched for: drop what is not durable and refuse
    /// every later append (reopening the journal checks what reached the disk).
    fn fail(&mut self, kind: std::io::ErrorKind, cause: String) {
        self.pending.clear();
        self.broken = Some((kind, cause));
        self.committed.notify_all();
    }

    /// The error every append gets once a write or fsync failed (the I/O error in its chain, so
    /// a full disk is named as such).
    fn broken_error(&self) -> anyhow::Error {
        let (kind, cause) = self.broken.clone().expect("broken");
        anyhow::Error::new(std::io::Error::new(kind, cause)).context(format!(
            "writing to journal {} (the event was not recorded)",
            self.path.display()
        ))
    }

    /// How many fsyncs made events durable since the journal was opened.
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs
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
                    licences_freed: None,
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

    /// The file length each slow fsync started at: what it made durable.
    static SYNCED_UPTO: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    /// An fsync slow enough for appenders to queue behind it, that records what it covered.
    fn slow_sync(f: &File) -> std::io::Result<()> {
        let len = f.metadata()?.len();
        std::thread::sleep(std::time::Duration::from_millis(40));
        f.sync_data()?;
        SYNCED_UPTO.fetch_max(len, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    #[test]
    fn concurrent_appends_share_fsyncs_and_each_returns_only_once_durable() {
        const N: usize = 16;
        let dir = tempfile::tempdir().unwrap();
        let mut j = sample(dir.path());
        let path = j.path().to_path_buf();
        j.sync = slow_sync;
        let before = j.fsyncs();
        let shared = Arc::new(Mutex::new(j));
        let start = Arc::new(std::sync::Barrier::new(N));
        let threads: Vec<_> = (0..N)
            .map(|i| {
                let (shared, start, path) = (shared.clone(), start.clone(), path.clone());
                std::thread::spawn(move || {
                    let step = format!("step-{i}");
                    start.wait();
                    Journal::append_shared(
                        &shared,
                        Some(&step),
                        Record::ApplyStarted { attempt: 1 },
                    )
                    .unwrap();
                    // Acknowledged: an fsync that began after the line was written has ended.
                    let synced = SYNCED_UPTO.load(std::sync::atomic::Ordering::SeqCst) as usize;
                    let bytes = std::fs::read(&path).unwrap();
                    let needle = format!("\"step\":\"{step}\"");
                    let at = String::from_utf8_lossy(&bytes).find(&needle).unwrap();
                    assert!(
                        at < synced,
                        "{step} acknowledged before an fsync covered it"
                    );
                    let j = shared.lock().unwrap();
                    assert!(j.events().iter().any(|e| e.step.as_deref() == Some(&step)));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let j = shared.lock().unwrap();
        let fsyncs = j.fsyncs() - before;
        assert!(
            (1..N as u64).contains(&fsyncs),
            "{N} concurrent appends took {fsyncs} fsyncs"
        );
        // On reopen: every event, once, in chain order, exactly as acknowledged.
        let reread = Journal::read(&path).unwrap();
        assert_eq!(reread, j.events());
        assert_eq!(reread.len(), 3 + N);
        let mut steps: Vec<String> = reread[3..].iter().filter_map(|e| e.step.clone()).collect();
        steps.sort();
        steps.dedup();
        assert_eq!(steps.len(), N);
    }

    #[test]
    fn a_failed_fsync_fails_its_events_and_every_later_append() {
        fn failing(_: &File) -> std::io::Result<()> {
            Err(std::io::Error::other("disk on fire"))
        }
        let dir = tempfile::tempdir().unwrap();
        let mut j = sample(dir.path());
        j.sync = failing;
        let shared = Mutex::new(j);
        let err = Journal::append_shared(&shared, None, Record::RunFinished { complete: true })
            .unwrap_err();
        assert!(format!("{err:#}").contains("disk on fire"), "{err:#}");
        let mut j = shared.into_inner().unwrap();
        assert_eq!(j.events().len(), 3);
        j.sync = sync_data;
        assert!(
            j.append(None, Record::RunFinished { complete: true })
                .is_err()
        );
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
