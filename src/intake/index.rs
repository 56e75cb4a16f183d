//! The intake's own state, in `<state-dir>/intake/`:
//!
//! - `index.json`: every event accepted, keyed by the SHA-256 of `(source, event id)` (so no
//!   file or key is ever made from event content), with the departure it started or the
//!   departure it scheduled. Written atomically, 0600, under `lock`.
//! - `log.jsonl`: one line per delivery handled (accepted, duplicate, scheduled, started,
//!   refused), appended and fsync'd: the intake's own journal. Never a secret or a body.
//! - `<source>.cursor`: where the last poll of that source stopped.
//! - `lock`: held (blocking) for each read-modify-write of the index, a moment at a time.
//! - `events/<key>.lock`: held (blocking) while one event is checked against the index and
//!   acted on (its departure started), so two deliveries of the same event at the same moment
//!   still make one departure, while other events go ahead.
//! - `<source>.poll.lock`: held by a running poll; a second poll of the same source stops.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{Source, Termination};
use crate::state::{self, StateDir};

/// One accepted event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub source: Source,
    pub event_id: String,
    /// `sha256:<hex>` of the body it first came in.
    pub sha256: String,
    pub recorded_at: String,
    /// The departure it started (set when it started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub departure: Option<String>,
    /// What to start when it is due (kept until it has started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<Scheduled>,
    /// Why and when a scheduled departure was called off before it started (the HR system no
    /// longer shows that termination). A cancelled event that comes again is taken as new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<String>,
}

/// A departure recorded for later: `offboard intake due` starts it at its effective time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scheduled {
    pub termination: Termination,
    /// The runbook it will run, as an absolute path.
    pub runbook: PathBuf,
    /// `--set` values given with the event.
    #[serde(default)]
    pub sets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    #[serde(default)]
    pub legal_hold: bool,
    /// How the event was authenticated.
    pub authenticated: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub version: u32,
    pub events: BTreeMap<String, Entry>,
}

/// The index key of an event: hex SHA-256 of `source`, a newline, and the event id.
pub fn key(source: Source, event_id: &str) -> String {
    crate::journal::sha256_hex(format!("{}\n{event_id}", source.as_str()).as_bytes())
}

pub fn dir(state: &StateDir) -> PathBuf {
    state.root().join("intake")
}

/// Read the index (no lock: it is only ever replaced whole). Absent: empty.
pub fn read(state: &StateDir) -> Result<Index> {
    let path = dir(state).join("index.json");
    match state::read_nofollow(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("reading the intake index {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The intake state dir.
pub struct Intake {
    dir: PathBuf,
}

/// A lock on a file, released when dropped (or when the process dies).
pub struct Held(#[allow(dead_code)] File);

fn lock_file(path: &Path) -> Result<File> {
    state::open_nofollow(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600),
        path,
    )
    .with_context(|| format!("opening {}", path.display()))
}

impl Intake {
    /// Create `intake/` (0700).
    pub fn open(state: &StateDir) -> Result<Intake> {
        state.ensure()?;
        let dir = dir(state);
        state::create_private_dir(&dir)?;
        Ok(Intake { dir })
    }

    fn wait_for(path: &Path) -> Result<Held> {
        let file = lock_file(path)?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(Held(file))
    }

    /// Wait for the lock of one event (by its index key), held while it is acted on.
    pub fn lock_event(&self, key: &str) -> Result<Held> {
        let dir = self.dir.join("events");
        state::create_private_dir(&dir)?;
        Self::wait_for(&dir.join(format!("{key}.lock")))
    }

    /// The poll lock of `source`, or None when another poll holds it.
    pub fn try_lock_poll(&self, source: Source) -> Result<Option<Held>> {
        let path = self.dir.join(format!("{}.poll.lock", source.as_str()));
        let file = lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Held(file))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    pub fn load(&self) -> Result<Index> {
        let path = self.index_path();
        match state::read_nofollow(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading the intake index {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn save(&self, index: &Index) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(index)?;
        bytes.push(b'\n');
        state::write_atomic(&self.index_path(), &bytes)
    }

    /// Add or replace one entry and write the index (under the index lock).
    pub fn put(&self, entry: Entry) -> Result<()> {
        let _held = Self::wait_for(&self.dir.join("lock"))?;
        let mut index = self.load()?;
        index.version = 1;
        index
            .events
            .insert(key(entry.source, &entry.event_id), entry);
        self.save(&index)
    }

    /// Call off every scheduled, not yet started departure of `employee_id` from `source` other
    /// than `keep` (its event id); returns what was called off.
    pub fn cancel_scheduled(
        &self,
        source: Source,
        employee_id: &str,
        keep: Option<&str>,
        why: &str,
    ) -> Result<Vec<Entry>> {
        let _held = Self::wait_for(&self.dir.join("lock"))?;
        let mut index = self.load()?;
        let mut off = Vec::new();
        for e in index.events.values_mut() {
            if e.source == source
                && e.departure.is_none()
                && Some(e.event_id.as_str()) != keep
                && e.scheduled
                    .as_ref()
                    .is_some_and(|s| s.termination.employee_id == employee_id)
            {
                off.push(e.clone());
                e.scheduled = None;
                e.cancelled = Some(format!(
                    "{}: {why}",
                    crate::journal::timestamp(crate::journal::now())
                ));
            }
        }
        if !off.is_empty() {
            self.save(&index)?;
        }
        Ok(off)
    }

    /// Append one line to `log.jsonl` and fsync it.
    pub fn log(&self, line: &serde_json::Value) -> Result<()> {
        let path = self.dir.join("log.jsonl");
        let mut f = state::open_nofollow(
            OpenOptions::new().append(true).create(true).mode(0o600),
            &path,
        )
        .with_context(|| format!("opening {}", path.display()))?;
        let mut text = crate::journal::canonical_json(line);
        text.push('\n');
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_data())
            .with_context(|| format!("appending to {}", path.display()))?;
        Ok(())
    }

    fn cursor_path(&self, source: Source) -> PathBuf {
        self.dir.join(format!("{}.cursor", source.as_str()))
    }

    pub fn cursor(&self, source: Source) -> Result<Option<String>> {
        read_text(&self.cursor_path(source))
    }

    pub fn set_cursor(&self, source: Source, value: &str) -> Result<()> {
        state::write_atomic(&self.cursor_path(source), format!("{value}\n").as_bytes())
    }
}

fn read_text(path: &Path) -> Result<Option<String>> {
    match state::read_nofollow(path) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).trim().to_string()).filter(|s| !s.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn keys_are_hashes_whatever_the_event_id() {
        for id in ["../../etc/passwd/2026-12-01", "a\nb", ""] {
            let k = key(Source::Bamboohr, id);
            assert_eq!(k.len(), 64);
            assert!(k.chars().all(|c| c.is_ascii_hexdigit()), "{k}");
        }
        assert_ne!(
            key(Source::Bamboohr, "1/2026-12-01"),
            key(Source::Hibob, "1/2026-12-01")
        );
    }

    #[test]
    fn the_index_is_private_and_survives_a_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let st = StateDir::resolve(Some(tmp.path())).unwrap();
        {
            let i = Intake::open(&st).unwrap();
            i.put(Entry {
                source: Source::Bamboohr,
                event_id: "4021/2026-12-01".into(),
                sha256: "sha256:00".into(),
                recorded_at: "2026-12-01T00:00:00.000Z".into(),
                departure: Some("d1".into()),
                scheduled: None,
                cancelled: None,
            })
            .unwrap();
            i.log(&serde_json::json!({"outcome": "started"})).unwrap();
        }
        let idx = read(&st).unwrap();
        let e = &idx.events[&key(Source::Bamboohr, "4021/2026-12-01")];
        assert_eq!(e.departure.as_deref(), Some("d1"));
        for f in ["index.json", "log.jsonl", "lock"] {
            let mode = std::fs::metadata(dir(&st).join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
}
