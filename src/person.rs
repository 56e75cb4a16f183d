//! One person, one departure driven at a time: a lock per person (per runbook + user), so two
//! `start`s for the same user cannot both cut the same accounts, and a later `start` can tell
//! a run still going ("being run now by pid N on host H") from one that was cut off.
//!
//! ```text
//! <state>/locks/                   0700
//!   person-<32 hex>.lock           0600, held while a process drives one of the person's
//!                                  departures; records pid, host, start time and departure id
//! ```
//!
//! The file name is a hash of the runbook name and the normalised user, never the user itself:
//! user identifiers are untrusted and stay out of paths. The OS releases the lock when the
//! holding process dies, so a stale file never blocks anyone; what it records is only read to
//! name a live holder.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::exit::{CliError, Exit};
use crate::journal;
use crate::state::{StateDir, create_private_dir};
use crate::ui::safe;

/// How a user identifier is compared: surrounding space dropped, case folded (the same rule as
/// finding a departure by user).
pub fn normalize_user(user: &str) -> String {
    user.trim().to_lowercase()
}

/// Whether two departures are for the same person under the same runbook.
pub fn same_person(runbook_a: &str, user_a: &str, runbook_b: &str, user_b: &str) -> bool {
    runbook_a.trim() == runbook_b.trim() && normalize_user(user_a) == normalize_user(user_b)
}

/// The lock file's name part: a hash of (runbook name, normalised user).
pub fn person_key(runbook: &str, user: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"offboard person lock v1\0");
    h.update(runbook.trim().as_bytes());
    h.update(b"\0");
    h.update(normalize_user(user).as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Where the lock of a person lives.
pub fn lock_path(state: &StateDir, runbook: &str, user: &str) -> PathBuf {
    state
        .root()
        .join("locks")
        .join(format!("person-{}.lock", person_key(runbook, user)))
}

/// What the lock file records about its holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub since: String,
    pub departure: String,
}

impl Holder {
    fn describe(&self) -> String {
        format!(
            "departure {} is being run by pid {} on host {} since {}",
            safe(&self.departure),
            self.pid,
            safe(&self.host),
            safe(&self.since)
        )
    }
}

/// The lock on one person's departures, held for as long as this value lives.
pub struct PersonLock {
    _file: File,
    /// The shared database's lock on the person, when departures live there.
    _remote: Option<crate::store::RemoteLock>,
}

impl std::fmt::Debug for PersonLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonLock")
    }
}

impl PersonLock {
    /// Take the lock for `user` under `runbook`, recording that this process drives
    /// `departure`. A live holder is an exit-1 error naming its pid, host and start time.
    pub fn acquire(
        state: &StateDir,
        runbook: &str,
        user: &str,
        departure: &str,
    ) -> Result<PersonLock> {
        let path = lock_path(state, runbook, user);
        if let Some(dir) = path.parent() {
            create_private_dir(state.root())?;
            create_private_dir(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .with_context(|| format!("opening lock {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(busy(&path)),
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        let holder = Holder {
            pid: std::process::id(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            since: journal::timestamp(journal::now()),
            departure: departure.to_string(),
        };
        let mut line = serde_json::to_vec(&holder).context("describing the lock holder")?;
        line.push(b'\n');
        file.set_len(0)
            .and_then(|_| file.write_all(&line))
            .and_then(|_| file.sync_data())
            .with_context(|| format!("writing lock {}", path.display()))?;
        // With the shared database: the person is locked there too, across machines.
        let remote = crate::store::lock_person(&person_key(runbook, user))?;
        Ok(PersonLock {
            _file: file,
            _remote: remote,
        })
    }
}

/// The error for a lock someone holds now. The holder writes who it is just after taking the
/// lock, so an empty or half-written file is read again for a moment before giving up on it.
fn busy(path: &std::path::Path) -> anyhow::Error {
    let t0 = Instant::now();
    let holder = loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if let Ok(h) = serde_json::from_str::<Holder>(text.trim()) {
            break Some(h);
        }
        if t0.elapsed() > Duration::from_millis(500) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (msg, stop) = match &holder {
        Some(h) => (
            h.describe(),
            format!(
                "it is running now: let it finish, or stop it (Ctrl-C where it runs, or `kill {}` on {}); it stops cleanly and journals where it stopped",
                h.pid,
                safe(&h.host)
            ),
        ),
        None => (
            "a departure of this person is being run by another offboard process right now"
                .to_string(),
            "let it finish, or stop it; it stops cleanly and journals where it stopped".to_string(),
        ),
    };
    CliError::new(Exit::Failure, anyhow::anyhow!(msg))
        .hint(stop)
        .hint("then run this command again; `offboard status` shows where the departure stands")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_ignores_case_and_space_and_never_holds_the_user() {
        let a = person_key("Acme leaver", "Alice@Corp.example ");
        assert_eq!(a, person_key("Acme leaver", "alice@corp.example"));
        assert_ne!(a, person_key("Other runbook", "alice@corp.example"));
        assert_ne!(a, person_key("Acme leaver", "bob@corp.example"));
        assert_eq!(a.len(), 32);
        let state = StateDir::resolve(Some(std::path::Path::new("/s"))).unwrap();
        let p = lock_path(&state, "r", "../../etc/passwd");
        assert_eq!(p.parent().unwrap(), std::path::Path::new("/s/locks"));
        assert!(!p.to_string_lossy().contains("passwd"));
    }

    #[test]
    fn a_second_lock_for_the_person_names_the_live_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::resolve(Some(dir.path())).unwrap();
        let held =
            PersonLock::acquire(&state, "rb", "alice@corp", "20261123t100000-a-0001").unwrap();
        let err = PersonLock::acquire(&state, "rb", "ALICE@corp", "20261123t100001-a-0002")
            .err()
            .unwrap();
        let msg = format!("{err:#}");
        let want = format!(
            "departure 20261123t100000-a-0001 is being run by pid {} on host ",
            std::process::id()
        );
        assert!(msg.contains(&want), "{msg}");
        assert_eq!(
            err.downcast_ref::<CliError>().map(|c| c.exit),
            Some(Exit::Failure)
        );
        // Another person, or the same person under another runbook, is not blocked.
        PersonLock::acquire(&state, "rb", "bob@corp", "x").unwrap();
        PersonLock::acquire(&state, "other", "alice@corp", "y").unwrap();
        drop(held);
        PersonLock::acquire(&state, "rb", "alice@corp", "z").unwrap();
    }
}
