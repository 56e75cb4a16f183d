//! What the tool leaves on disk: private files and directories, and no event lost when the disk
//! fills up mid-run.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const RUNBOOK: &str = r#"
[runbook]
name = "Files"

[systems.idp]
kind = "sandbox"
latency_ms = 0

[[step]]
id = "suspend"
lane = "it"
system = "idp"
action = "suspend_user"

[[step]]
id = "sessions"
lane = "it"
system = "idp"
action = "revoke_sessions"

[[step]]
id = "laptop"
lane = "facilities"
manual = "Collect the laptop of {{ user.email }} and write down a long enough note to fill the journal"
"#;

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("offboard")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        out.push(p.clone());
        if p.is_dir() {
            walk(&p, out);
        }
    }
}

#[test]
fn every_file_is_private_and_every_directory_0700() {
    let dir = tempfile::tempdir().unwrap();
    let rb = dir.path().join("offboard.toml");
    std::fs::write(&rb, RUNBOOK).unwrap();
    let state = dir.path().join("state");
    let run = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .env("OFFBOARD_STATE_DIR", &state)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let out = run(&[
        "start",
        "alice@corp.example",
        "-r",
        rb.to_str().unwrap(),
        "--non-interactive",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["confirm", "alice@corp.example", "laptop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["verify", "alice@corp.example"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut all = vec![state.clone()];
    walk(&state, &mut all);
    let mut files = 0;
    for p in &all {
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let name = p.file_name().unwrap().to_string_lossy();
        if p.is_dir() {
            assert_eq!(mode, 0o700, "{}", p.display());
        } else if name.ends_with(".pub") {
            assert_eq!(mode & 0o022, 0, "{} is writable by others", p.display());
        } else {
            files += 1;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        assert!(
            !name.contains(".tmp-"),
            "temp file left behind: {}",
            p.display()
        );
    }
    // journal, lock, evidence + sig, three revisions archived, key, sandbox
    assert!(files >= 9, "only {files} files: {all:?}");
}

/// The journal hits a file-size limit (as a full disk would stop it) in the middle of a run:
/// the command fails with a clear error, every event written before is intact, and `resume`
/// (with room again) finishes the departure.
#[test]
fn a_full_disk_loses_no_journaled_event() {
    let dir = tempfile::tempdir().unwrap();
    let rb = dir.path().join("offboard.toml");
    std::fs::write(&rb, RUNBOOK).unwrap();
    let state = dir.path().join("state");
    // bash counts 1024-byte blocks: the first events (the whole plan) fit, later ones do not.
    let script = format!(
        "trap '' XFSZ; ulimit -f 3; exec {} start alice@corp.example -r {} --non-interactive",
        bin().display(),
        rb.display()
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .env("OFFBOARD_STATE_DIR", &state)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the event was not recorded"), "{stderr}");
    assert!(stderr.contains("hint: the disk is full"), "{stderr}");

    let departures = state.join("departures");
    let id = std::fs::read_dir(&departures)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let id = id.to_str().unwrap().to_string();
    let journal = departures.join(&id).join("journal.jsonl");
    let bytes = std::fs::read(&journal).unwrap();
    assert!(bytes.len() <= 3 * 1024);
    // Everything up to the last complete line is a valid chain.
    let (complete, _torn) = offboard::journal::split_torn_tail(&bytes);
    let events = offboard::journal::check_lines(complete).unwrap();
    assert!(!events.is_empty());

    // With room again, resume finishes it and the chain verifies end to end.
    let out = Command::new(bin())
        .args(["resume", &id, "--non-interactive"])
        .env("OFFBOARD_STATE_DIR", &state)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = offboard::journal::parse_chain(&std::fs::read(&journal).unwrap()).unwrap();
    assert!(all.len() > events.len());
    let done = all
        .iter()
        .filter(|e| {
            matches!(
                e.record,
                offboard::journal::Record::Checked { revoked: true, .. }
            )
        })
        .count();
    assert_eq!(done, 2);
}

/// A tmpfs of our own, unmounted on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn sh(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// The state dir turns read-only (a remount after a disk error, a snapshot): commands that must
/// write say so clearly, exit 1 and change nothing; reading commands still work.
#[test]
fn a_read_only_state_dir_gives_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("state");
    std::fs::create_dir(&mnt).unwrap();
    if !sh(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=8m,mode=0700",
            "tmpfs",
            mnt.to_str().unwrap(),
        ],
    ) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must be able to mount a tmpfs"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let _mount = Mount(mnt.clone());
    let rb = dir.path().join("offboard.toml");
    std::fs::write(&rb, RUNBOOK).unwrap();
    let run = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .env("OFFBOARD_STATE_DIR", &mnt)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let out = run(&[
        "start",
        "alice@corp.example",
        "-r",
        rb.to_str().unwrap(),
        "--non-interactive",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut before = Vec::new();
    walk(&mnt, &mut before);
    let snapshot: Vec<(PathBuf, Vec<u8>)> = before
        .iter()
        .filter(|p| p.is_file())
        .map(|p| (p.clone(), std::fs::read(p).unwrap()))
        .collect();

    assert!(sh("mount", &["-o", "remount,ro", mnt.to_str().unwrap()]));
    for args in [
        vec!["confirm", "alice@corp.example", "laptop"],
        vec!["verify", "alice@corp.example"],
        vec!["resume", "alice@corp.example", "--non-interactive"],
    ] {
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("Read-only file system"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains("hint: the state dir is on a read-only file system"),
            "{stderr}"
        );
    }
    // Reading still works.
    let out = run(&["status", "alice@corp.example"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (p, bytes) in snapshot {
        assert_eq!(std::fs::read(&p).unwrap(), bytes, "{} changed", p.display());
    }
}

/// A state dir with one departure left incomplete (the manual step pending): its dir, id and a
/// runner for further commands.
struct Started {
    _dir: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
    id: String,
}

impl Started {
    fn new() -> Started {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("offboard.toml"), RUNBOOK).unwrap();
        let state = root.join("state");
        let s = Started {
            _dir: dir,
            root,
            state,
            id: String::new(),
        };
        let out = s.run(&[
            "start",
            "alice@corp.example",
            "-r",
            "offboard.toml",
            "--non-interactive",
        ]);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = std::fs::read_dir(s.state.join("departures"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name()
            .into_string()
            .unwrap();
        Started { id, ..s }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(bin())
            .current_dir(&self.root)
            .args(args)
            .env("OFFBOARD_STATE_DIR", &self.state)
            .env("NO_COLOR", "1")
            .env_remove("OFFBOARD_SIGNING_KEY")
            .output()
            .unwrap()
    }

    fn departure(&self) -> PathBuf {
        self.state.join("departures").join(&self.id)
    }

    /// A file outside the state dir that a planted link points at.
    fn victim(&self) -> PathBuf {
        let p = self.root.join("victim");
        std::fs::write(&p, "precious\n").unwrap();
        p
    }

    /// Replace `path` with a symbolic link to `target`.
    fn plant(&self, path: &Path, target: &Path) {
        if path.is_dir() {
            std::fs::rename(path, path.with_extension("moved")).unwrap();
        } else if path.exists() {
            std::fs::remove_file(path).unwrap();
        }
        std::os::unix::fs::symlink(target, path).unwrap();
    }
}

/// The command fails (exit 1), names the link, and the file it points at is untouched.
fn assert_refused(out: &std::process::Output, link: &Path, victim: &Path) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "refusing to use {}: it is a symbolic link",
            link.display()
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(victim).unwrap(), "precious\n");
    assert!(
        std::fs::symlink_metadata(link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_link_planted_at_the_journal_is_refused_by_name() {
    let s = Started::new();
    let journal = s.departure().join("journal.jsonl");
    let victim = s.victim();
    s.plant(&journal, &victim);
    for args in [
        vec!["resume", s.id.as_str(), "--non-interactive"],
        vec!["confirm", s.id.as_str(), "laptop"],
        vec!["verify", s.id.as_str()],
    ] {
        assert_refused(&s.run(&args), &journal, &victim);
    }
}

#[test]
fn a_link_planted_at_the_lock_is_refused_by_name() {
    let s = Started::new();
    let lock = s.departure().join("lock");
    let victim = s.victim();
    s.plant(&lock, &victim);
    assert_refused(
        &s.run(&["resume", &s.id, "--non-interactive"]),
        &lock,
        &victim,
    );
}

#[test]
fn a_link_planted_at_the_evidence_or_its_signature_is_refused_by_name() {
    let s = Started::new();
    let victim = s.victim();
    for name in [format!("{}.json", s.id), format!("{}.json.sig", s.id)] {
        let path = s.departure().join(&name);
        let saved = std::fs::read(&path).unwrap();
        s.plant(&path, &victim);
        assert_refused(&s.run(&["confirm", &s.id, "laptop"]), &path, &victim);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, saved).unwrap();
    }
}

#[test]
fn a_link_planted_at_the_signing_key_is_refused_by_name() {
    let s = Started::new();
    let key = s.state.join("keys/offboard_ed25519");
    let victim = s.victim();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    s.plant(&key, &victim);
    // Used to sign…
    assert_refused(&s.run(&["confirm", &s.id, "laptop"]), &key, &victim);
    // …or replaced by a new key: never written through.
    assert_refused(&s.run(&["keys", "generate", "--force"]), &key, &victim);
}

#[test]
fn a_link_planted_as_the_departure_dir_or_the_state_dir_is_refused() {
    let s = Started::new();
    // The departure's own files, moved elsewhere, and the link to them where it was.
    let dep = s.departure();
    let moved = dep.with_extension("moved");
    s.plant(&dep, &moved);
    let snapshot = |d: &Path| {
        let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let b = std::fs::read(&p).unwrap();
                (p, b)
            })
            .collect();
        files.sort();
        files
    };
    let before = snapshot(&moved);
    for args in [
        vec!["resume", s.id.as_str(), "--non-interactive"],
        vec!["confirm", s.id.as_str(), "laptop"],
    ] {
        let out = s.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "refusing to use {}: it is a symbolic link",
                dep.display()
            )),
            "{stderr}"
        );
        assert_eq!(snapshot(&moved), before);
    }

    let elsewhere = s.root.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();

    // The whole state dir as a link: nothing is created where it points.
    let linked = s.root.join("linked-state");
    std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
    let out = Command::new(bin())
        .current_dir(&s.root)
        .args([
            "start",
            "bob@corp.example",
            "-r",
            "offboard.toml",
            "--non-interactive",
        ])
        .env("OFFBOARD_STATE_DIR", format!("{}/", linked.display()))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("refusing to use {}", linked.display())),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

/// As ssh refuses such a key: a signing key others can read is not used, and the message says
/// how to fix it.
#[test]
fn a_signing_key_readable_by_others_is_refused_like_ssh() {
    let s = Started::new();
    let key = s.state.join("keys/offboard_ed25519");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let journal = s.departure().join("journal.jsonl");
    let before = std::fs::read(&journal).unwrap();
    for args in [
        vec!["confirm", s.id.as_str(), "laptop"],
        vec!["keys", "show"],
    ] {
        let out = s.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "permissions 0644 for {} are too open",
                key.display()
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("hint: run `chmod 600 {}`", key.display())),
            "{stderr}"
        );
        assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    }
    // Nothing was recorded with it; with the mode fixed it works.
    assert_eq!(std::fs::read(&journal).unwrap(), before);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = s.run(&["confirm", &s.id, "laptop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A keys/ dir or state dir others can write to (where someone could have planted a key or a
/// journal) is refused with the chmod to run; it is not silently "fixed".
#[test]
fn a_state_or_keys_dir_writable_by_others_is_refused() {
    let s = Started::new();
    for (dir, mode) in [(s.state.join("keys"), 0o770), (s.state.clone(), 0o777)] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = s.run(&["confirm", &s.id, "laptop"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "permissions {mode:04o} for {} are too open",
                dir.display()
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("`chmod 700 {}`", dir.display())),
            "{stderr}"
        );
        let left = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            left, mode,
            "the mode was changed behind the operator's back"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let out = s.run(&["confirm", &s.id, "laptop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
