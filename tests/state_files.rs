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
            "size=8m",
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
