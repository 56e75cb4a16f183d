//! The one harness for running the `offboard` binary as a user would, in a cleared environment:
//! only `PATH`, `HOME` (the temp dir), `OFFBOARD_STATE_DIR`, `NO_COLOR` and a fixed
//! `OFFBOARD_ACTOR` are set, so nothing leaks in from the outer environment (no
//! `OFFBOARD_SIGNING_KEY`, `OFFBOARD_ALLOWED_SIGNERS`, `OFFBOARD_RUNBOOK`, proxy or token
//! variables). Extra variables are added with [`CliEnv::var`]; [`CliEnv::at`] fixes the clock
//! (`OFFBOARD_NOW`).
//!
//! Three ways to run it: [`CliEnv::cmd`] (a `std::process::Command`, so a test can spawn, signal
//! and kill it), [`CliEnv::run`] (to the end, bounded), [`CliEnv::bin`] (an `assert_cmd` command).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use offboard::journal::Event;

pub const BIN: &str = env!("CARGO_BIN_EXE_offboard");

/// The login every command runs as (`OFFBOARD_ACTOR`).
pub const ACTOR: &str = "tester@corp.example";

pub struct CliEnv {
    pub dir: tempfile::TempDir,
    /// Extra environment (token variables…).
    pub vars: Vec<(String, String)>,
}

impl CliEnv {
    pub fn new() -> CliEnv {
        CliEnv {
            dir: tempfile::tempdir().unwrap(),
            vars: Vec::new(),
        }
    }

    /// A temp dir holding `offboard.toml` with `runbook`.
    pub fn with_runbook(runbook: &str) -> CliEnv {
        let env = CliEnv::new();
        env.write_runbook(runbook);
        env
    }

    /// Set a variable for every later command (a later value for the same name wins).
    pub fn var(&mut self, k: &str, v: &str) {
        self.vars.push((k.into(), v.into()));
    }

    /// Fix the clock the binary reads (`OFFBOARD_NOW`, RFC 3339) for every later command.
    pub fn at(&mut self, time: &str) {
        self.var("OFFBOARD_NOW", time);
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn runbook(&self) -> PathBuf {
        self.dir.path().join("offboard.toml")
    }

    pub fn write_runbook(&self, text: &str) {
        std::fs::write(self.runbook(), text).unwrap();
    }

    /// The binary in the cleared environment, in the temp dir, without arguments; stdin is not
    /// set (the caller chooses).
    pub fn command(&self) -> Command {
        let mut c = cleared(self.dir.path(), self.dir.path(), &self.state());
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    /// [`CliEnv::command`] with `args` and stdin from /dev/null.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.command();
        c.stdin(Stdio::null()).args(args);
        c
    }

    /// [`CliEnv::command`] as an `assert_cmd` command (add args, `.assert()`).
    pub fn bin(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.command())
    }

    /// Run to the end (bounded: a hung binary fails the test after `limit`).
    pub fn run(&self, args: &[&str]) -> Output {
        let child = self
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_bounded(child, Duration::from_secs(120), args)
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `start USER -r offboard.toml --non-interactive` (commands run in the temp dir).
    pub fn start_args(user: &str) -> Vec<&str> {
        vec!["start", user, "-r", "offboard.toml", "--non-interactive"]
    }

    pub fn departure_dir(&self, id: &str) -> PathBuf {
        self.state().join("departures").join(id)
    }

    pub fn journal_path(&self, id: &str) -> PathBuf {
        self.departure_dir(id).join("journal.jsonl")
    }

    pub fn evidence_path(&self, id: &str) -> PathBuf {
        self.departure_dir(id).join(format!("{id}.json"))
    }

    /// The departures whose journal holds at least one complete event, with their user; and the
    /// number of departure dirs that do not (a process killed before its first event).
    pub fn departures(&self) -> (Vec<(String, String)>, usize) {
        let mut found = Vec::new();
        let mut stray = 0;
        let Ok(entries) = std::fs::read_dir(self.state().join("departures")) else {
            return (found, 0);
        };
        for e in entries {
            let e = e.unwrap();
            let id = e.file_name().to_string_lossy().into_owned();
            match offboard::journal::Journal::read(&e.path().join("journal.jsonl")) {
                Ok(events) => {
                    let user = offboard::departure::facts(&events)
                        .expect("first event holds the facts")
                        .user
                        .clone();
                    found.push((id, user));
                }
                Err(_) => stray += 1,
            }
        }
        found.sort();
        (found, stray)
    }

    /// The departure of `user`, if its journal has begun.
    pub fn departure_of(&self, user: &str) -> Option<String> {
        let (found, _) = self.departures();
        let mut ids: Vec<String> = found
            .into_iter()
            .filter(|(_, u)| u == user)
            .map(|(id, _)| id)
            .collect();
        assert!(ids.len() <= 1, "two departures for {user}: {ids:?}");
        ids.pop()
    }

    /// The journal, whose chain must be intact with no torn tail.
    pub fn chain(&self, id: &str) -> Vec<Event> {
        let bytes = std::fs::read(self.journal_path(id)).unwrap();
        offboard::journal::parse_chain(&bytes)
            .unwrap_or_else(|e| panic!("journal of {id} is not intact: {e}"))
    }

    /// `--json status <id>`: each step id with its status.
    pub fn step_statuses(&self, id: &str) -> Vec<(String, String)> {
        let out = self.run(&["--json", "status", id]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status is not JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_string(),
                    s["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// `evidence verify` on the departure's latest evidence must pass.
    pub fn assert_evidence_verifies(&self, id: &str) {
        let ev = self.evidence_path(id);
        let out = self.run(&["evidence", "verify", ev.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "evidence verify:\n{}",
            text(&out)
        );
    }
}

/// The binary in the cleared environment, for a test that keeps its own dirs: run in `cwd`,
/// with `HOME=home`, `OFFBOARD_STATE_DIR=state`, `PATH`, `NO_COLOR` and `OFFBOARD_ACTOR` only.
pub fn cleared(cwd: &Path, home: &Path, state: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("OFFBOARD_STATE_DIR", state)
        .env("OFFBOARD_ACTOR", ACTOR)
        .env("NO_COLOR", "1");
    c
}

/// Wait for a child, killing it and failing the test if it outlives `limit`.
pub fn wait_bounded(mut child: Child, limit: Duration, what: &[&str]) -> Output {
    let t0 = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "offboard {what:?} did not finish in {limit:?}:\n{}",
                text(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// stdout and stderr, for messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir`, recursively.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A multi-threaded runtime whose workers keep the fakes serving while the test blocks.
pub fn fake_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}
