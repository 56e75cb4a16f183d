//! Where departures are kept: the local state directory (the default), or a shared PostgreSQL
//! database (`--state postgres://…`, `OFFBOARD_STATE`).
//!
//! With PostgreSQL the database is the truth: every journal event is committed there (one row
//! per event, the same canonical line and hash chain) before it counts, evidence revisions are
//! stored there too, and one process per departure is ensured by a session advisory lock. The
//! commands themselves keep working on files: a private per-database cache under the state
//! directory (`<state-dir>/postgres/<db>/departures/`), rebuilt from the database when a
//! command starts and, for a departure, again under its lock. Keys and the sandbox stay local;
//! the signing key never enters the database.

pub mod postgres;

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};

use crate::exit::{CliError, Exit};
use crate::journal::{self, Event, JOURNAL_FILE, Record};
use crate::runbook::StateDef;
use crate::state::{self, StateDir};
use postgres::{Holder, Pg, Target};

/// The shared database this process works on, once selected.
pub struct Shared {
    pub pg: Pg,
    /// The cache's `departures` directory.
    pub departures: PathBuf,
    /// Named in the lock's holder row.
    operator: String,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// The shared database, when `--state postgres://…` selected one.
pub fn shared() -> Option<&'static Shared> {
    SHARED.get()
}

/// The `--state` value (flag or `OFFBOARD_STATE`): `None` or a directory means local.
pub fn is_postgres(state: &str) -> bool {
    state.starts_with("postgres://") || state.starts_with("postgresql://")
}

/// Select the backend for this process: with a `postgres://` URL, connect, point the state's
/// departures at the database's cache and bring the cache up to date. Anything else is local.
pub fn select(state: StateDir, url: Option<&str>, operator: Option<&str>) -> Result<StateDir> {
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        return Ok(state);
    };
    if !is_postgres(url) && !url.contains("://") {
        // `--state DIR` means the same as `--state-dir DIR`.
        return StateDir::resolve(Some(Path::new(url)));
    }
    select_target(state, Target::parse(url)?, operator)
}

/// The database a runbook's `[state]` table names (`runbook` is the file it is in: a relative
/// `ca_file` is relative to its directory). A `ca_file` means `sslmode=verify-full` with that
/// CA; the password is read from its reference now, and kept only in memory.
pub fn target_from_table(def: &StateDef, runbook: &Path) -> Result<Target> {
    let place = format!("[state] in {}", runbook.display());
    let ca = def.ca_file.as_deref().map(|c| {
        let c = match (c.strip_prefix("~/"), std::env::var_os("HOME")) {
            (Some(rest), Some(home)) => Path::new(&home).join(rest),
            _ => PathBuf::from(c),
        };
        if c.is_relative() {
            runbook.parent().unwrap_or(Path::new(".")).join(c)
        } else {
            c
        }
    });
    let env = |k: &str| match (k, &ca) {
        ("PGSSLROOTCERT", Some(c)) => Some(c.display().to_string()),
        ("PGSSLMODE", Some(_)) => Some("verify-full".to_string()),
        _ => std::env::var(k).ok(),
    };
    let target =
        Target::parse_with(&def.url, &env).map_err(|e| match e.downcast::<CliError>() {
            // The URL's checks speak of --state; here the URL is the table's.
            Ok(c) => {
                let msg = c.error.to_string();
                let msg = msg.strip_prefix("--state: ").unwrap_or(&msg);
                let mut out = CliError::new(c.exit, anyhow::anyhow!("{place}: url: {msg}"));
                out.hints = c.hints;
                anyhow::Error::new(out)
            }
            Err(e) => e.context(place.clone()),
        })?;
    let Some(r) = &def.password else {
        return Ok(target);
    };
    let password = crate::secrets::resolve(r).map_err(|e| {
        CliError::new(Exit::Usage, e.context(format!("{place}: reading the password ({r})")))
            .hint("the password is given by reference: check that the variable is exported, the file readable or the command working for this user")
    })?;
    Ok(target.with_password(password, format!("{place}: password ({r})")))
}

/// Select the shared database `target` for this process: connect, point the state's departures
/// at the database's cache and bring the cache up to date.
pub fn select_target(state: StateDir, target: Target, operator: Option<&str>) -> Result<StateDir> {
    let pg = Pg::connect(&target).map_err(|e| {
        CliError::new(Exit::Failure, e)
            .hint(format!(
                "check that the database at {} is up and that this login may connect",
                target.display()
            ))
            .hint("the password comes from ?password_env=NAME, the runbook's [state] password, PGPASSWORD or ~/.pgpass, never from the URL")
    })?;
    let departures = state
        .root()
        .join("postgres")
        .join(target.slug())
        .join("departures");
    let operator = operator
        .map(|o| format!("{o} ({})", journal::local_actor()))
        .unwrap_or_else(journal::local_actor);
    let shared = Shared {
        pg,
        departures: departures.clone(),
        operator,
    };
    let state = state.with_departures_dir(departures, target.display());
    if SHARED.set(shared).is_err() {
        anyhow::bail!("the state backend was already selected in this process");
    }
    let shared = SHARED.get().expect("just set");
    state.ensure()?;
    state::create_private_dir(&shared.departures)?;
    shared.sync_all()?;
    Ok(state)
}

impl Shared {
    /// The departure a cache path belongs to (`<departures>/<id>/…`).
    fn departure_of(&self, dir: &Path) -> Option<String> {
        let id = dir.file_name()?.to_str()?;
        (dir.parent()? == self.departures && state::is_valid_id(id)).then(|| id.to_string())
    }

    /// Bring every departure's cache up to date with the database (a departure a process on
    /// this machine is driving right now is left to it).
    pub fn sync_all(&self) -> Result<()> {
        for (id, digest) in self.pg.departures()? {
            if !state::is_valid_id(&id) {
                continue;
            }
            let dir = self.departures.join(&id);
            // The cache is the database's journal byte for byte, or it is rewritten.
            let local = state::read_nofollow(&dir.join(JOURNAL_FILE)).unwrap_or_default();
            if journal::sha256_hex(&local) == digest {
                continue;
            }
            state::create_private_dir(&dir)?;
            let lock = state::open_nofollow(
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o600),
                &dir.join("lock"),
            )?;
            if lock.try_lock().is_err() {
                continue;
            }
            self.refresh(&id)?;
        }
        Ok(())
    }

    /// Rewrite one departure's cache from the database: its journal exactly as stored (a
    /// broken chain stays broken, for the usual checks to report) and the evidence revisions
    /// its journal names.
    pub fn refresh(&self, id: &str) -> Result<()> {
        let rows = self.pg.events(id)?;
        if rows.is_empty() {
            return Ok(());
        }
        let dir = self.departures.join(id);
        state::create_private_dir(&dir)?;
        let mut bytes = Vec::new();
        for (_, line, _) in &rows {
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        let path = dir.join(JOURNAL_FILE);
        if state::read_nofollow(&path).ok().as_deref() != Some(&bytes[..]) {
            state::write_atomic(&path, &bytes)
                .with_context(|| format!("caching the journal of {id}"))?;
        }
        let Ok(events) = journal::check_lines(&bytes) else {
            return Ok(());
        };
        let written: Vec<(u32, String)> = events
            .iter()
            .filter_map(|e| match &e.record {
                Record::EvidenceWritten {
                    revision, sha256, ..
                } => Some((*revision, sha256.clone())),
                _ => None,
            })
            .collect();
        if written.is_empty() {
            return Ok(());
        }
        let stored = self.pg.evidence(id)?;
        let last = written.last().map(|(r, _)| *r);
        for (revision, sha) in &written {
            let Some((_, _, body, sig)) = stored.iter().find(|(_, s, _, _)| s == sha) else {
                continue;
            };
            let json = if Some(*revision) == last {
                dir.join(format!("{id}.json"))
            } else {
                dir.join(format!("{id}.rev{revision}.json"))
            };
            let sig_path = crate::evidence::sig_path(&json);
            if state::read_nofollow(&json).ok().as_deref() != Some(&body[..]) {
                state::write_atomic(&json, body)?;
            }
            if state::read_nofollow(&sig_path).ok().as_deref() != Some(sig.as_bytes()) {
                state::write_atomic(&sig_path, sig.as_bytes())?;
            }
        }
        Ok(())
    }
}

/// The journal appender for a journal file in the shared database's cache (`None` for a local
/// journal): events are committed to the database before they are written to the cache.
pub fn remote_for(journal_path: &Path) -> Option<RemoteJournal> {
    let shared = shared()?;
    let id = shared.departure_of(journal_path.parent()?)?;
    Some(RemoteJournal { shared, id })
}

/// Appends a departure's events to the shared database.
pub struct RemoteJournal {
    shared: &'static Shared,
    id: String,
}

impl RemoteJournal {
    /// Commit one event (its canonical line, without newline); only then does it count.
    pub fn append(&self, event: &Event, line: &str) -> Result<()> {
        self.shared.pg.append(&self.id, event, line).map_err(|e| {
            if e.downcast_ref::<postgres::LostRace>().is_some() {
                CliError::new(Exit::Failure, e)
                    .hint("someone else worked on this departure at the same time; run the command again to continue from what they recorded")
                    .into()
            } else if postgres::is_connection_lost(&e) {
                CliError::new(
                    Exit::Failure,
                    e.context(format!(
                        "the connection to the database was lost before event {} was acknowledged: this run stops here",
                        event.seq
                    )),
                )
                .hint("when the database is back, run `offboard resume`: it continues from what the database recorded (the event counts only if it is there)")
                .into()
            } else {
                e
            }
        })
    }
}

/// A departure held in the shared database for as long as this lives (a session advisory lock
/// plus the row naming its holder). The server releases it if the process or its connection
/// dies.
pub struct RemoteLock {
    shared: &'static Shared,
    id: String,
    holder: Holder,
}

impl Drop for RemoteLock {
    fn drop(&mut self) {
        let _ = self.shared.pg.unlock(&self.id, &self.holder);
    }
}

/// Lock a departure (by its cache directory) in the shared database, then bring its cache up
/// to date under the lock. `None` for a local departure.
pub fn lock_departure(dir: &Path) -> Result<Option<RemoteLock>> {
    let Some(shared) = shared() else {
        return Ok(None);
    };
    let Some(id) = shared.departure_of(dir) else {
        return Ok(None);
    };
    let holder = Holder {
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        pid: std::process::id(),
        operator: shared.operator.clone(),
        since: journal::timestamp(journal::now()),
    };
    if let Some(other) = shared.pg.try_lock(&id, &holder)? {
        return Err(anyhow::Error::new(
            CliError::new(
                Exit::Failure,
                anyhow::anyhow!("departure {id} is being run by {other}"),
            )
            .hint("wait for that run to finish (or stop), then run the command again"),
        )
        .context("the departure is locked"));
    }
    let lock = RemoteLock {
        shared,
        id: id.clone(),
        holder,
    };
    shared.refresh(&id)?;
    Ok(Some(lock))
}

/// Lock a person's departures (by [`crate::person::person_key`]) in the shared database, so
/// two machines cannot drive departures of the same person at once. `None` when local.
pub fn lock_person(key: &str) -> Result<Option<RemoteLock>> {
    let Some(shared) = shared() else {
        return Ok(None);
    };
    // Departure ids start with a digit: this name is never one.
    let name = format!("person-{key}");
    let holder = Holder {
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        pid: std::process::id(),
        operator: shared.operator.clone(),
        since: journal::timestamp(journal::now()),
    };
    if let Some(other) = shared.pg.try_lock(&name, &holder)? {
        return Err(CliError::new(
            Exit::Failure,
            anyhow::anyhow!("a departure of this person is being run by {other}"),
        )
        .hint("let it finish, or stop it where it runs; it stops cleanly and journals where it stopped")
        .hint("then run this command again; `offboard status` shows where the departure stands")
        .into());
    }
    Ok(Some(RemoteLock {
        shared,
        id: name,
        holder,
    }))
}

/// Store a sealed evidence revision in the shared database (nothing for a local departure).
pub fn put_evidence(dir: &Path, revision: u32, bytes: &[u8], signature: &[u8]) -> Result<()> {
    let Some(shared) = shared() else {
        return Ok(());
    };
    let Some(id) = shared.departure_of(dir) else {
        return Ok(());
    };
    shared.pg.put_evidence(&id, revision, bytes, signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(url: &str, ca_file: Option<&str>) -> StateDef {
        StateDef {
            url: url.into(),
            password: None,
            ca_file: ca_file.map(str::to_string),
        }
    }

    #[test]
    fn a_state_tables_ca_file_means_verify_full_relative_to_the_runbook() {
        let rb = Path::new("/etc/offboard/offboard.toml");
        let t = target_from_table(
            &def(
                "postgres://tech@db.corp.example/offboard",
                Some("db-ca.pem"),
            ),
            rb,
        )
        .unwrap();
        assert!(t.verify_full);
        assert_eq!(
            t.ca_file.as_deref(),
            Some(Path::new("/etc/offboard/db-ca.pem"))
        );
        assert_eq!(t.display(), "postgres://tech@db.corp.example:5432/offboard");
        // Without one, a remote database is refused as with --state, naming the table.
        let e = target_from_table(&def("postgres://tech@db.corp.example/offboard", None), rb)
            .unwrap_err();
        let c = e.downcast_ref::<CliError>().expect("a usage error");
        assert_eq!(c.exit, Exit::Usage);
        assert!(
            c.error.to_string().starts_with(
                "[state] in /etc/offboard/offboard.toml: url: sslmode=verify-full needs the CA"
            ),
            "{}",
            c.error
        );
    }
}
