//! The state directory: where departures, journals, evidence, keys and sandbox systems live,
//! and the careful file writes every one of them goes through.
//!
//! ```text
//! <state>/                      0700
//!   keys/offboard_ed25519       0600 (and .pub)
//!   departures/<id>/            0700
//!     journal.jsonl             0600, append-only
//!     lock                      0600, held while a process drives the departure
//!     <id>.json, <id>.json.sig  0600, the latest signed evidence revision
//!     <id>.rev<N>.json(.sig)    earlier revisions
//!   sandbox/<system>.json       0600, the simulated systems' live state
//! ```
//!
//! Departure ids are built only from characters `[a-z0-9-]`; user identifiers never reach a path.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use rand::Rng;

use crate::journal::{self, Event, JOURNAL_FILE};

/// The resolved state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
    /// Where departures live when not `<root>/departures` (the shared database's cache), and
    /// how to name that place to a person.
    departures: Option<(PathBuf, String)>,
}

impl StateDir {
    /// `--state-dir`, else `$XDG_STATE_HOME/offboard`, else `~/.local/state/offboard`.
    pub fn resolve(explicit: Option<&Path>) -> Result<StateDir> {
        let root = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                use etcetera::BaseStrategy;
                let base = etcetera::choose_base_strategy().context(
                    "finding the home directory for the default state dir; pass --state-dir",
                )?;
                base.state_dir()
                    .unwrap_or_else(|| base.home_dir().join(".local/state"))
                    .join("offboard")
            }
        };
        Ok(StateDir {
            root,
            departures: None,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Create the directory (0700) if needed.
    pub fn ensure(&self) -> Result<()> {
        create_private_dir(&self.root)
    }

    pub fn departures_dir(&self) -> PathBuf {
        match &self.departures {
            Some((d, _)) => d.clone(),
            None => self.root.join("departures"),
        }
    }

    /// Where the departures are, for a person: the state dir, or the shared database.
    pub fn location(&self) -> String {
        match &self.departures {
            Some((_, name)) => name.clone(),
            None => self.root.display().to_string(),
        }
    }

    /// The same state dir (keys, sandbox) with its departures kept in `dir` (the shared
    /// database's cache, see [`crate::store`]).
    pub fn with_departures_dir(mut self, dir: PathBuf, name: String) -> StateDir {
        self.departures = Some((dir, name));
        self
    }

    pub fn departure_dir(&self, id: &str) -> PathBuf {
        debug_assert!(is_valid_id(id));
        self.departures_dir().join(id)
    }

    pub fn journal_path(&self, id: &str) -> PathBuf {
        self.departure_dir(id).join(JOURNAL_FILE)
    }

    pub fn default_key_path(&self) -> PathBuf {
        self.root.join("keys").join("offboard_ed25519")
    }

    pub fn sandbox_dir(&self) -> PathBuf {
        self.root.join("sandbox")
    }

    /// All departure ids, newest first (ids start with the date and time).
    pub fn departure_ids(&self) -> Result<Vec<String>> {
        let dir = self.departures_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            if let Some(name) = entry.file_name().to_str()
                && is_valid_id(name)
                && entry.path().join(JOURNAL_FILE).exists()
            {
                ids.push(name.to_string());
            }
        }
        ids.sort();
        ids.reverse();
        Ok(ids)
    }

    /// Resolve a `<DEPARTURE>` argument: a departure id, or a user whose latest departure is
    /// meant.
    pub fn find_departure(&self, wanted: &str) -> Result<Option<(String, Vec<Event>)>> {
        if is_valid_id(wanted) && self.journal_path(wanted).exists() {
            let events = journal::Journal::read(&self.journal_path(wanted))?;
            return Ok(Some((wanted.to_string(), events)));
        }
        for id in self.departure_ids()? {
            let events = match journal::Journal::read(&self.journal_path(&id)) {
                Ok(e) => e,
                Err(_) => continue,
            };
            if let Some(facts) = crate::departure::facts(&events)
                && (facts.user == wanted || facts.user.eq_ignore_ascii_case(wanted))
            {
                return Ok(Some((id, events)));
            }
        }
        Ok(None)
    }
}

/// A departure id: `<yyyymmddThhmmss>-<slug of the user>-<4 hex>`, only `[a-z0-9-]`.
pub fn new_departure_id(user: &str, at: DateTime<Utc>) -> String {
    let mut slug = String::new();
    for c in user.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 32 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "user" } else { slug };
    let suffix: u16 = rand::thread_rng().r#gen();
    format!("{}-{slug}-{suffix:04x}", at.format("%Y%m%dt%H%M%S"))
}

/// Whether a string is a well-formed departure id (and so safe as a path component).
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 80
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

/// The error for a symbolic link found where offboard writes (or reads) one of its own files:
/// it names the link and where it points, and nothing is written through it.
fn symlink_refused(path: &Path) -> anyhow::Error {
    let target = fs::read_link(path)
        .map(|t| format!(" (it points to {})", t.display()))
        .unwrap_or_default();
    anyhow::anyhow!(
        "refusing to use {}: it is a symbolic link{target}, and offboard never writes its files \
         through one. If you did not make it, someone else may have: find out who, then remove \
         the link",
        path.display()
    )
}

/// Fail if `path` is a symbolic link (a missing path is fine).
pub fn refuse_symlink(path: &Path) -> Result<()> {
    // Without a trailing `/`, which would make lstat follow the link.
    let path: PathBuf = path.components().collect();
    let path = path.as_path();
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(symlink_refused(path)),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Open `path` with `opts` without following a symbolic link at its last component: a link
/// there is an error naming it ([`refuse_symlink`]'s message), never a read or write elsewhere.
pub fn open_nofollow(opts: &mut OpenOptions, path: &Path) -> Result<File> {
    opts.custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| nofollow_error(e, path))
}

/// `ELOOP` from `O_NOFOLLOW` (or `EEXIST` from `O_EXCL` on a link) becomes the symlink
/// message; any other error keeps its cause.
pub fn nofollow_error(e: std::io::Error, path: &Path) -> anyhow::Error {
    let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if e.raw_os_error() == Some(libc::ELOOP) || is_link {
        symlink_refused(path)
    } else {
        anyhow::Error::new(e)
    }
}

/// Read a whole file without following a symbolic link at `path`.
pub fn read_nofollow(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Create a directory and its missing parents; the leaf is made 0700.
///
/// An existing leaf must be a real directory (a symbolic link there is refused, as a planted
/// link would send every file elsewhere) and must not be writable by group or others (someone
/// else could have planted files in it): that is refused with the `chmod` to run. One merely
/// readable by others is made 0700.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    refuse_symlink(dir)?;
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating directory {}", dir.display()))?;
    }
    let meta = fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if meta.file_type().is_symlink() {
        return Err(symlink_refused(dir));
    }
    if !meta.is_dir() {
        bail!("{} exists and is not a directory", dir.display());
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(crate::exit::CliError::new(
            crate::exit::Exit::Failure,
            anyhow::anyhow!(
                "permissions {mode:04o} for {} are too open: a directory offboard keeps its \
                 files in must not be writable by group or others",
                dir.display()
            ),
        )
        .hint(format!(
            "check that nothing in it was put there by someone else, then run `chmod 700 {}`",
            dir.display()
        ))
        .into());
    }
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private (0700)", dir.display()))?;
    }
    Ok(())
}

/// Create a new file, mode 0600, failing if it exists (a symbolic link there is refused by
/// name).
pub fn create_private_file(path: &Path) -> Result<File> {
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| nofollow_error(e, path))
        .with_context(|| format!("creating {}", path.display()))
}

/// fsync a file's directory so a create or rename is durable.
pub fn fsync_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        // A bare file name (`out.zip`) is in the current directory.
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        File::open(parent)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing directory {}", parent.display()))?;
    }
    Ok(())
}

/// Write a file atomically: a 0600 temp file beside it, written, fsync'd, renamed over the
/// target, and the directory fsync'd. Readers see the old content or the new, never a mix.
/// A missing directory is created 0700; an existing one (say, where `--key` points) is left as
/// its owner set it — the state dir's own directories are made private when they are created.
///
/// The temp file has an unpredictable name and is created exclusively without following links;
/// a symbolic link at `path` itself is refused by name (it is never replaced or written through).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let suffix: u64 = rand::thread_rng().r#gen();
    write_atomic_via(path, bytes, &format!("{suffix:016x}"))
}

/// [`write_atomic`] with the temp file's random part given (tests plant a link there).
fn write_atomic_via(path: &Path, bytes: &[u8], suffix: &str) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.exists() {
        create_private_dir(parent)?;
    }
    refuse_symlink(path)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = parent.join(format!(".{name}.tmp-{suffix}"));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|e| nofollow_error(e, &tmp))
        .with_context(|| format!("creating {}", tmp.display()))?;
    // From here on the temp file is ours: remove it if anything fails.
    let result = (|| -> Result<()> {
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        refuse_symlink(path)?;
        fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        fsync_parent(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// An exclusive lock on one departure, held for as long as this value lives. The lock file
/// records who holds it; the OS releases the lock when the process dies, so a stale file from a
/// killed process never blocks anyone.
pub struct DepartureLock {
    _file: File,
    /// The shared database's lock on the departure, when it lives there.
    _remote: Option<crate::store::RemoteLock>,
}

impl DepartureLock {
    pub fn acquire(dir: &Path) -> Result<DepartureLock> {
        create_private_dir(dir)?;
        let path = dir.join("lock");
        let mut file = open_nofollow(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600),
            &path,
        )
        .with_context(|| format!("opening lock {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = read_nofollow(&path).unwrap_or_default();
                let holder = String::from_utf8_lossy(&holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process".to_string()
                } else {
                    holder.to_string()
                };
                return Err(anyhow::Error::new(crate::exit::CliError::new(
                    crate::exit::Exit::Failure,
                    anyhow::anyhow!(
                        "departure {} is being run by {who}",
                        dir.file_name().and_then(|n| n.to_str()).unwrap_or("?")
                    ),
                ))
                .context("the departure is locked"));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let info = format!(
            "pid {} on host {host} since {}\n",
            std::process::id(),
            journal::timestamp(journal::now())
        );
        file.set_len(0)
            .and_then(|_| file.write_all(info.as_bytes()))
            .and_then(|_| file.sync_data())
            .with_context(|| format!("writing lock {}", path.display()))?;
        // With the shared database: its lock too, and the departure read afresh under it.
        let remote = crate::store::lock_departure(dir)?;
        Ok(DepartureLock {
            _file: file,
            _remote: remote,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_path_safe_whatever_the_user() {
        let t = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for user in [
            "alice@corp.example",
            "../../etc/passwd",
            "a/b\\c",
            "%2e%2e",
            "\"quoted\" name",
            "line\nbreak",
            "ünïcödé",
            "",
            &"x".repeat(10_000),
        ] {
            let id = new_departure_id(user, t);
            assert!(is_valid_id(&id), "{id:?} from {user:?}");
            assert!(id.starts_with("20261123t100000-"), "{id}");
            assert!(id.len() <= 60);
        }
        assert!(new_departure_id("alice@corp.example", t).contains("-alice-corp-example-"));
    }

    #[test]
    fn atomic_write_is_private_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/evidence.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = fs::metadata(p.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    /// A link planted at the temp name (were it guessed) is an error naming it; the file it
    /// points at is untouched and the target is not written.
    #[test]
    fn a_link_at_the_temp_name_is_refused_and_nothing_is_written_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let target = dir.path().join("evidence.json");
        let tmp = dir.path().join(".evidence.json.tmp-guessed");
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let msg = format!(
            "{:#}",
            write_atomic_via(&target, b"new", "guessed").unwrap_err()
        );
        assert!(
            msg.contains(&format!(
                "refusing to use {}: it is a symbolic link (it points to {})",
                tmp.display(),
                victim.display()
            )),
            "{msg}"
        );
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(!target.exists());
        // The link is not ours to remove.
        assert!(fs::symlink_metadata(&tmp).unwrap().file_type().is_symlink());
    }

    #[test]
    fn temp_names_are_unpredictable() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        // Links planted at every name the old scheme (the pid) would use change nothing.
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(
            &victim,
            dir.path().join(format!(".f.tmp-{}", std::process::id())),
        )
        .unwrap();
        write_atomic(&target, b"one").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"one");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn links_at_the_target_the_new_file_or_the_lock_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let want = |p: &Path| format!("refusing to use {}: it is a symbolic link", p.display());
        for p in [&link, &dangling] {
            let msg = format!("{:#}", write_atomic(p, b"new").unwrap_err());
            assert!(msg.contains(&want(p)), "{msg}");
            let msg = format!("{:#}", create_private_file(p).unwrap_err());
            assert!(msg.contains(&want(p)), "{msg}");
        }
        assert!(!dir.path().join("nowhere").exists());

        let dep = dir.path().join("dep");
        fs::create_dir(&dep).unwrap();
        std::os::unix::fs::symlink(&victim, dep.join("lock")).unwrap();
        let msg = format!("{:#}", DepartureLock::acquire(&dep).err().unwrap());
        assert!(msg.contains(&want(&dep.join("lock"))), "{msg}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn private_dirs_are_real_and_not_writable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        for p in [link.clone(), dir.path().join("link/")] {
            let msg = format!("{:#}", create_private_dir(&p).unwrap_err());
            assert!(msg.contains("it is a symbolic link"), "{msg}");
        }
        // Readable by others: tightened.
        fs::set_permissions(&real, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&real).unwrap();
        assert_eq!(
            fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o700
        );
        // Writable by group: refused, left as it is, with the chmod to run.
        fs::set_permissions(&real, fs::Permissions::from_mode(0o770)).unwrap();
        let err = create_private_dir(&real).unwrap_err();
        let cli = err.downcast_ref::<crate::exit::CliError>().unwrap();
        assert!(format!("{:#}", cli.error).contains("permissions 0770 for"));
        assert_eq!(
            cli.hints[0],
            format!(
                "check that nothing in it was put there by someone else, then run `chmod 700 {}`",
                real.display()
            )
        );
        assert_eq!(
            fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o770
        );
    }

    #[test]
    fn second_lock_on_a_departure_fails_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("20261123t100000-alice-0001");
        let _held = DepartureLock::acquire(&d).unwrap();
        let err = DepartureLock::acquire(&d).err().unwrap();
        let msg = format!("{:#}", err);
        assert!(msg.contains("is being run by pid"), "{msg}");
    }
}
