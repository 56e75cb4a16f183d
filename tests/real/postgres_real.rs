//! The shared PostgreSQL state backend against a real PostgreSQL (Debian's `postgresql`, a
//! throw-away cluster made by tests/servers/start-postgres.sh on a free loopback port, initdb as
//! an unprivileged user). Each test has its own cluster; "machines" are separate state dirs (own
//! sandbox, own local cache) pointing at the same database with `OFFBOARD_STATE`, the tool's
//! password given by reference (`password_env`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use offboard::journal::{Event, Record};
use offboard::store::postgres::{LostRace, Pg, Target};

use crate::common;
use common::cli_env::{CliEnv, text, wait_bounded};
use common::servers::RealServer;

const TOOL_PW: &str = "tool-pw-6f1c2a9e";
const AUDITOR_PW: &str = "auditor-pw-0b7d44c1";
const PW_VAR: &str = "OFFBOARD_TEST_DB_PW";
const RUNBOOK: &str = include_str!("../../runbooks/demo.toml");

/// A running cluster with the offboard schema (made by `offboard state init`), a login role
/// `tech` in offboard_tool and `auditor` in offboard_auditor.
struct Db {
    server: RealServer,
    bin: PathBuf,
}

fn pg_bin() -> PathBuf {
    std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .find(|p| p.join("psql").exists())
        .expect("psql")
}

impl Db {
    fn start() -> Option<Db> {
        Self::start_tls(false)
    }

    /// With `tls`, the server also speaks TLS, its certificate signed by `server.pg_ca()`.
    fn start_tls(tls: bool) -> Option<Db> {
        let server = RealServer::postgres(tls)?;
        let db = Db {
            server,
            bin: pg_bin(),
        };
        db.admin_on("postgres", "CREATE DATABASE offboard");
        // The schema and roles come from the binary itself.
        let env = CliEnv::new();
        let out = env.run(&["state", "init", &db.url("offboard_admin", None)]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        db.admin(&format!(
            "CREATE ROLE tech LOGIN PASSWORD '{TOOL_PW}' IN ROLE offboard_tool; \
             CREATE ROLE auditor LOGIN PASSWORD '{AUDITOR_PW}' IN ROLE offboard_auditor;"
        ));
        Some(db)
    }

    fn port(&self) -> u16 {
        self.server.port
    }

    /// `postgres://USER@127.0.0.1:PORT/offboard`, the password by reference when given.
    fn url(&self, user: &str, password_env: Option<&str>) -> String {
        let mut u = format!("postgres://{user}@127.0.0.1:{}/offboard", self.port());
        if let Some(v) = password_env {
            u.push_str(&format!("?password_env={v}"));
        }
        u
    }

    fn tool_url(&self) -> String {
        self.url("tech", Some(PW_VAR))
    }

    fn psql(&self, user: &str, password: &str, db: &str, sql: &str) -> Output {
        Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port().to_string()])
            .args([
                "-U",
                user,
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-XAtq",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", password)
            .env_remove("PGSERVICE")
            .output()
            .unwrap()
    }

    fn admin_on(&self, db: &str, sql: &str) -> String {
        let out = self.psql("offboard_admin", "", db, sql);
        assert!(out.status.success(), "{sql}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn admin(&self, sql: &str) -> String {
        self.admin_on("offboard", sql)
    }

    fn as_tool(&self, sql: &str) -> Output {
        self.psql("tech", TOOL_PW, "offboard", sql)
    }

    /// The departures in the database.
    fn departures(&self) -> Vec<String> {
        self.admin("SELECT departure FROM offboard.departures ORDER BY departure")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// A departure's event lines as stored, in seq order.
    fn lines(&self, id: &str) -> Vec<String> {
        self.admin(&format!(
            "SELECT line FROM offboard.events WHERE departure = '{id}' ORDER BY seq"
        ))
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// Its events, the chain checked exactly as a local journal is.
    fn chain(&self, id: &str) -> Vec<Event> {
        let mut bytes = self.lines(id).join("\n");
        bytes.push('\n');
        offboard::journal::parse_chain(bytes.as_bytes())
            .unwrap_or_else(|e| panic!("the stored journal of {id} is not intact: {e}"))
    }

    /// A machine: its own state dir (keys, sandbox, cache), the shared database selected by
    /// `OFFBOARD_STATE`, the demo runbook (with `latency_ms` instead of the demo's) in its dir.
    fn machine(&self, latency_ms: u32) -> CliEnv {
        let mut env = CliEnv::with_runbook(
            &RUNBOOK
                .replace("latency_ms = 200", &format!("latency_ms = {latency_ms}"))
                .replace("latency_ms = 100", &format!("latency_ms = {latency_ms}")),
        );
        env.var("OFFBOARD_STATE", &self.tool_url());
        env.var(PW_VAR, TOOL_PW);
        env
    }
}

/// `start USER` on the demo runbook, without questions.
fn start_args(user: &str) -> Vec<&str> {
    vec![
        "start",
        user,
        "-r",
        "offboard.toml",
        "--non-interactive",
        "--set",
        "manager=bob@corp.example",
    ]
}

/// The cached journal and evidence of a departure on a machine.
fn cache_dir(env: &CliEnv, id: &str) -> PathBuf {
    let root = env.state().join("postgres");
    let db = std::fs::read_dir(&root).unwrap().next().unwrap().unwrap();
    db.path().join("departures").join(id)
}

/// No event of an automated step applied a change twice.
fn assert_no_repeat(events: &[Event]) {
    let mut changed: Vec<&str> = events
        .iter()
        .filter(|e| matches!(e.record, Record::Applied { changed: true, .. }))
        .filter_map(|e| e.step.as_deref())
        .collect();
    let n = changed.len();
    changed.sort();
    changed.dedup();
    assert_eq!(n, changed.len(), "a change was applied twice: {events:#?}");
}

fn all_output(outs: &[&Output]) -> String {
    outs.iter().map(|o| text(o)).collect::<Vec<_>>().join("\n")
}

#[test]
fn pg_the_tool_role_appends_and_reads_but_never_rewrites_history() {
    let Some(db) = Db::start() else { return };
    let a = db.machine(0);
    let out = a.run(&start_args("alice@corp.example"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let id = db.departures().pop().expect("a departure");
    let n = db.chain(&id).len();
    assert!(n > 10, "{n}");

    // The tool's role: no UPDATE, DELETE or TRUNCATE (the grants).
    for sql in [
        format!("UPDATE offboard.events SET line = 'x' WHERE departure = '{id}' AND seq = 3"),
        format!(
            "DELETE FROM offboard.events WHERE departure = '{id}' AND seq = {}",
            n - 1
        ),
        "TRUNCATE offboard.events".to_string(),
        format!("UPDATE offboard.evidence SET bytes = 'x' WHERE departure = '{id}'"),
        format!("DELETE FROM offboard.evidence WHERE departure = '{id}'"),
    ] {
        let out = db.as_tool(&sql);
        assert!(!out.status.success(), "{sql} was allowed");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("permission denied"),
            "{sql}: {}",
            text(&out)
        );
    }
    // Even the owner (a superuser here) is stopped by the triggers.
    for sql in [
        format!("UPDATE offboard.events SET line = 'x' WHERE departure = '{id}' AND seq = 3"),
        format!("DELETE FROM offboard.events WHERE departure = '{id}'"),
        "TRUNCATE offboard.events CASCADE".to_string(),
        format!("DELETE FROM offboard.evidence WHERE departure = '{id}'"),
    ] {
        let out = db.psql("offboard_admin", "", "offboard", &sql);
        assert!(!out.status.success(), "{sql} was allowed to the owner");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("append-only"),
            "{sql}: {}",
            text(&out)
        );
    }
    // A forked event N (same seq) and an event that does not extend the chain are refused.
    let last = db.chain(&id).pop().unwrap();
    let fork = db.as_tool(&format!(
        "INSERT INTO offboard.events (departure, seq, ts, line, hash, prev) VALUES ('{id}', {}, 'now', 'forged', '{}', '{}')",
        last.seq, last.hash, last.prev
    ));
    assert!(
        String::from_utf8_lossy(&fork.stderr).contains("duplicate key"),
        "{}",
        text(&fork)
    );
    let unlinked = db.as_tool(&format!(
        "INSERT INTO offboard.events (departure, seq, ts, line, hash, prev) VALUES ('{id}', {}, 'now', 'forged', '{}', '{}')",
        last.seq + 1,
        last.hash,
        last.prev
    ));
    assert!(
        String::from_utf8_lossy(&unlinked.stderr).contains("does not extend its chain"),
        "{}",
        text(&unlinked)
    );
    // The auditor reads and writes nothing.
    let read = db.psql(
        "auditor",
        AUDITOR_PW,
        "offboard",
        &format!("SELECT count(*) FROM offboard.events WHERE departure = '{id}'"),
    );
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), n.to_string());
    let write = db.psql(
        "auditor",
        AUDITOR_PW,
        "offboard",
        "INSERT INTO offboard.departures (departure) VALUES ('x')",
    );
    assert!(String::from_utf8_lossy(&write.stderr).contains("permission denied"));
    // Nothing changed.
    assert_eq!(db.chain(&id).len(), n);
    // `state init` again (an upgrade) changes nothing either.
    let out = CliEnv::new().run(&["state", "init", &db.url("offboard_admin", None)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(db.chain(&id).len(), n);

    // Someone who can switch the triggers off alters a stored event: every machine reading the
    // departure finds the chain broken (exit 5), as with a local journal, its cache included.
    db.admin(&format!(
        "ALTER TABLE offboard.events DISABLE TRIGGER events_append_only; \
         UPDATE offboard.events SET line = replace(line, '\"attempt\":1', '\"attempt\":2') \
           WHERE departure = '{id}' AND seq = (SELECT min(seq) FROM offboard.events \
             WHERE departure = '{id}' AND line LIKE '%\"attempt\":1%'); \
         ALTER TABLE offboard.events ENABLE TRIGGER events_append_only;"
    ));
    assert!(
        db.lines(&id).iter().any(|l| l.contains("\"attempt\":2")),
        "the row was not altered"
    );
    for m in [&a, &db.machine(0)] {
        let out = m.run(&["status", &id]);
        assert_eq!(out.status.code(), Some(5), "{}", text(&out));
        assert!(text(&out).contains("hash does not match"), "{}", text(&out));
    }
    // And it is not migrated out: nothing is written.
    let out_dir = a.path().join("out");
    let out = a.run(&[
        "state",
        "migrate",
        "--from",
        &db.tool_url(),
        "--to",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{id}: line ")),
        "{}",
        text(&out)
    );
    assert!(!out_dir.join("departures").exists());
}

#[test]
fn pg_two_writers_racing_for_one_event_one_wins_and_the_other_is_told() {
    let Some(db) = Db::start() else { return };
    let a = db.machine(0);
    let out = a.run(&start_args("alice@corp.example"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let id = db.departures().pop().unwrap();
    let last = db.chain(&id).pop().unwrap();
    let target = Target::parse_with(&db.tool_url(), &|k| match k {
        PW_VAR => Some(TOOL_PW.to_string()),
        _ => None,
    })
    .unwrap();
    // Two connections (two processes' worth), each appending its own event N+1.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = ["first", "second"]
        .into_iter()
        .map(|who| {
            let (target, id, last, barrier) =
                (target.clone(), id.clone(), last.clone(), barrier.clone());
            std::thread::spawn(move || {
                let pg = Pg::connect(&target).unwrap();
                let mut e = Event {
                    seq: last.seq + 1,
                    ts: "2026-12-01T00:00:00.000Z".into(),
                    actor: who.into(),
                    step: None,
                    record: Record::RunStarted {
                        command: who.into(),
                    },
                    prev: last.hash.clone(),
                    hash: String::new(),
                };
                let (line, hash) = e.line_and_hash();
                e.hash = hash;
                barrier.wait();
                pg.append(&id, &e, &line)
            })
        })
        .collect();
    let results: Vec<anyhow::Result<()>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let err = results.into_iter().find_map(Result::err).unwrap();
    assert!(err.downcast_ref::<LostRace>().is_some(), "{err:#}");
    assert!(
        format!("{err:#}").contains(&format!(
            "another process already recorded event {} of departure {id}",
            last.seq + 1
        )),
        "{err:#}"
    );
    // One event N+1, the chain intact.
    assert_eq!(db.chain(&id).len() as u64, last.seq + 2);
}

#[test]
fn pg_two_machines_work_one_record_sweep_remind_and_the_auditor_export() {
    let Some(db) = Db::start() else { return };
    let a = db.machine(0);
    let out_a = a.run(&start_args("alice@corp.example"));
    assert_eq!(out_a.status.code(), Some(3), "{}", text(&out_a));
    let id = db.departures().pop().unwrap();
    // The database holds the journal exactly as the local cache has it, and the evidence.
    let stored = db.lines(&id);
    let cached = std::fs::read_to_string(cache_dir(&a, &id).join("journal.jsonl")).unwrap();
    assert_eq!(cached.lines().collect::<Vec<_>>(), stored);
    let evidence_file = cache_dir(&a, &id).join(format!("{id}.json"));
    let sha = offboard::journal::sha256_hex(&std::fs::read(&evidence_file).unwrap());
    assert_eq!(
        db.admin(&format!(
            "SELECT sha256 FROM offboard.evidence WHERE departure = '{id}' AND revision = 1"
        ))
        .trim(),
        sha
    );
    // The signing key never enters the database.
    let key = std::fs::read_to_string(a.state().join("keys/offboard_ed25519")).unwrap();
    let key_body = key.lines().nth(1).unwrap();
    let dump = db.admin("SELECT string_agg(line, '') FROM offboard.events")
        + &db.admin("SELECT string_agg(encode(bytes, 'escape'), '') FROM offboard.evidence");
    assert!(!dump.contains(key_body));
    assert!(!dump.contains(TOOL_PW));

    // Machine B: another state dir, the team key, the same database.
    let mut b = db.machine(0);
    b.var(
        "OFFBOARD_SIGNING_KEY",
        a.state().join("keys/offboard_ed25519").to_str().unwrap(),
    );
    let status = b.run(&["--json", "status"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    assert!(String::from_utf8_lossy(&status.stdout).contains(&id));
    let confirm = b.run(&["confirm", &id, "badge", "--by", "Bea Tech"]);
    assert_eq!(confirm.status.code(), Some(0), "{}", text(&confirm));
    // A sees B's answer and B's re-signed evidence.
    let steps = a.run(&["--json", "status", &id]);
    let v: serde_json::Value = serde_json::from_slice(&steps.stdout).unwrap();
    let badge = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "badge")
        .unwrap();
    assert_eq!(badge["status"], "done", "{v:#}");
    let events = db.chain(&id);
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.record, Record::Answered { .. })
                && e.actor.starts_with("Bea Tech ("))
    );
    assert_eq!(
        db.admin(&format!(
            "SELECT count(*) FROM offboard.evidence WHERE departure = '{id}'"
        ))
        .trim(),
        "2"
    );

    // The nightly sweep (`verify --all`) on a runner with nothing cached reads the departure
    // from the database (the sandbox systems are A's: copied over, as the runner reaches the
    // same real systems).
    let mut runner = db.machine(0);
    runner.var(
        "OFFBOARD_SIGNING_KEY",
        a.state().join("keys/offboard_ed25519").to_str().unwrap(),
    );
    std::fs::create_dir_all(runner.state().join("sandbox")).unwrap();
    for f in std::fs::read_dir(a.state().join("sandbox")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), runner.state().join("sandbox").join(f.file_name())).unwrap();
    }
    let sweep = runner.run(&["verify", "--all", "-r", "offboard.toml"]);
    assert_eq!(sweep.status.code(), Some(0), "{}", text(&sweep));
    assert!(text(&sweep).contains(&id), "{}", text(&sweep));
    assert!(
        db.chain(&id)
            .iter()
            .any(|e| matches!(&e.record, Record::VerifyFinished { .. })),
        "the sweep's verify was not recorded in the database"
    );
    // Reminders on B, from a week later: the laptop is overdue.
    let mut later = b;
    later.write_runbook(&format!(
        "{}\n[notify.slack]\nwebhook = {{ env = \"SLACK_WEBHOOK_URL\" }}\n",
        std::fs::read_to_string(later.runbook()).unwrap()
    ));
    later.at("2026-12-30T09:00:00Z");
    // --dry-run: nothing is sent (the address is never reached).
    later.var("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/hook");
    let remind = later.run(&["remind", "--dry-run", "-r", "offboard.toml"]);
    assert!(
        text(&remind).contains("laptop-returned"),
        "{}",
        text(&remind)
    );

    // The auditor: read-only role, exports every revision; ssh-keygen alone verifies it.
    let mut auditor = CliEnv::new();
    auditor.var("OFFBOARD_STATE", &db.url("auditor", Some("AUDIT_PW")));
    auditor.var("AUDIT_PW", AUDITOR_PW);
    let out_dir = auditor.path().join("export");
    let export = auditor.run(&[
        "evidence",
        "export",
        "alice@corp.example",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(export.status.code(), Some(0), "{}", text(&export));
    let latest = out_dir.join(format!("{id}.json"));
    assert!(out_dir.join(format!("{id}.rev1.json.sig")).exists());
    let pubkey = std::fs::read_to_string(a.state().join("keys/offboard_ed25519.pub")).unwrap();
    let signers = out_dir.join("allowed_signers");
    std::fs::write(
        &signers,
        format!("auditor@corp.example namespaces=\"offboard-evidence\" {pubkey}"),
    )
    .unwrap();
    let verify = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&signers)
        .args([
            "-I",
            "auditor@corp.example",
            "-n",
            "offboard-evidence",
            "-s",
        ])
        .arg(out_dir.join(format!("{id}.json.sig")))
        .stdin(std::fs::File::open(&latest).unwrap())
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
    // No password in any output.
    let all = all_output(&[&out_a, &status, &confirm, &export]);
    assert!(!all.contains(TOOL_PW) && !all.contains(AUDITOR_PW));
}

#[test]
fn pg_a_departure_held_elsewhere_names_its_holder_until_that_connection_dies() {
    use sha2::Digest;
    let Some(db) = Db::start() else { return };
    let a = db.machine(0);
    let out = a.run(&start_args("alice@corp.example"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let id = db.departures().pop().unwrap();
    // "Another machine" holds the departure: its session's advisory lock and holder row.
    let d = sha2::Sha256::digest(format!("offboard-departure:{id}").as_bytes());
    let key = i64::from_be_bytes(d[..8].try_into().unwrap());
    let mut holder = Command::new(db.bin.join("psql"))
        .args(["-h", "127.0.0.1", "-p", &db.port().to_string()])
        .args(["-U", "tech", "-d", "offboard", "-XAtq"])
        .env("PGPASSWORD", TOOL_PW)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = holder.stdin.as_mut().unwrap();
        writeln!(
            stdin,
            "SELECT pg_advisory_lock({key}); INSERT INTO offboard.holders VALUES ('{id}', 'desk-7', 4242, 'Hal Holder (hal@desk-7)', '2026-12-01T09:00:00.000Z') ON CONFLICT (departure) DO UPDATE SET host = 'desk-7';"
        )
        .unwrap();
        stdin.flush().unwrap();
    }
    let t0 = Instant::now();
    while db.admin("SELECT count(*) FROM offboard.holders").trim() != "1" {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(50));
    }
    let n = db.chain(&id).len();
    let busy = a.run(&["confirm", &id, "badge"]);
    assert_eq!(busy.status.code(), Some(1), "{}", text(&busy));
    assert!(
        text(&busy).contains(&format!(
            "departure {id} is being run by Hal Holder (hal@desk-7) (pid 4242 on host desk-7) since 2026-12-01T09:00:00.000Z"
        )),
        "{}",
        text(&busy)
    );
    assert_eq!(db.chain(&id).len(), n, "the busy command appended");
    // Its connection ends (the machine died): the lock goes with it.
    drop(holder.stdin.take());
    let _ = wait_bounded(holder, Duration::from_secs(10), &["psql"]);
    let ok = a.run(&["confirm", &id, "badge"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    // The holder row names the last holder only while held: ours is gone at exit.
    assert_eq!(
        db.admin(&format!(
            "SELECT count(*) FROM offboard.holders WHERE departure = '{id}' AND host <> 'desk-7'"
        ))
        .trim(),
        "0"
    );
}

#[test]
fn pg_two_technicians_racing_confirm_on_one_step_one_wins_the_other_is_told() {
    let Some(db) = Db::start() else { return };
    let a = db.machine(0);
    let out = a.run(&start_args("alice@corp.example"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let id = db.departures().pop().unwrap();
    let key = a.state().join("keys/offboard_ed25519");
    let mut techs = Vec::new();
    for name in ["Tech One", "Tech Two"] {
        let mut m = db.machine(0);
        m.var("OFFBOARD_SIGNING_KEY", key.to_str().unwrap());
        // Both machines have the departure cached before the race.
        let st = m.run(&["status"]);
        assert_eq!(st.status.code(), Some(0), "{}", text(&st));
        techs.push((name, m));
    }
    let children: Vec<_> = techs
        .iter()
        .map(|(name, m)| m.spawn(&["confirm", &id, "badge", "--by", name]))
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| wait_bounded(c, Duration::from_secs(60), &["confirm"]))
        .collect();
    let events = db.chain(&id);
    let answers: Vec<&Event> = events
        .iter()
        .filter(|e| {
            e.step.as_deref() == Some("badge") && matches!(e.record, Record::Answered { .. })
        })
        .collect();
    let winners: Vec<&Output> = outs.iter().filter(|o| o.status.success()).collect();
    assert!(
        !winners.is_empty(),
        "{}",
        all_output(&outs.iter().collect::<Vec<_>>())
    );
    assert_eq!(answers.len(), winners.len(), "{answers:#?}");
    // The other one was told: the winner held the departure, or (when they did not overlap)
    // the step was already done. Never two answers from one race without the second knowing.
    if winners.len() == 1 {
        eprintln!("the two confirms overlapped: one was refused");
        let loser = outs.iter().find(|o| !o.status.success()).unwrap();
        assert_eq!(loser.status.code(), Some(1), "{}", text(loser));
        assert!(
            text(loser).contains("is being run by Tech"),
            "{}",
            text(loser)
        );
    } else {
        // They ran one after the other: the second was told the step was already done.
        assert!(
            outs.iter()
                .any(|o| text(o).contains("badge was already done"))
        );
    }
}

#[test]
fn pg_sigkill_mid_run_then_resume_repeats_nothing_and_loses_nothing() {
    let Some(db) = Db::start() else { return };
    let a = db.machine(700);
    let mut child = a.spawn(&start_args("alice@corp.example"));
    // Kill once some events are in the database, before the run can end.
    let t0 = Instant::now();
    loop {
        let n: usize = db
            .admin("SELECT count(*) FROM offboard.events")
            .trim()
            .parse()
            .unwrap();
        if n >= 5 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the run never began"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let killed = child.wait_with_output().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed.status),
        Some(9),
        "the run ended before the kill: {}",
        text(&killed)
    );
    let id = db.departures().pop().unwrap();
    let before = db.chain(&id);
    assert!(
        !before
            .iter()
            .any(|e| matches!(e.record, Record::RunFinished { .. })),
        "the kill came too late"
    );
    // The lock died with the process: resume at once.
    let resume = a.run(&["resume", &id, "--non-interactive"]);
    assert_eq!(resume.status.code(), Some(3), "{}", text(&resume));
    let after = db.chain(&id);
    // Nothing lost: everything recorded before the kill is still the start of the journal.
    assert_eq!(&after[..before.len()], &before[..]);
    assert_no_repeat(&after);
    assert!(
        after
            .iter()
            .any(|e| matches!(e.record, Record::RunFinished { .. }))
    );
    // The local cache is the database's journal.
    let cached = std::fs::read_to_string(cache_dir(&a, &id).join("journal.jsonl")).unwrap();
    assert_eq!(cached.lines().collect::<Vec<_>>(), db.lines(&id));
}

#[test]
fn pg_the_database_restarting_mid_run_stops_it_cleanly_and_resume_continues() {
    let Some(db) = Db::start() else { return };
    let a = db.machine(700);
    let child = a.spawn(&start_args("alice@corp.example"));
    let t0 = Instant::now();
    loop {
        let n: usize = db
            .admin("SELECT count(*) FROM offboard.events")
            .trim()
            .parse()
            .unwrap();
        if n >= 5 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the run never began"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    db.server.restart();
    let out = wait_bounded(child, Duration::from_secs(60), &["start"]);
    eprintln!("the run across the restart:\n{}", text(&out));
    let id = db.departures().pop().unwrap();
    let before = db.chain(&id);
    if out.status.code() != Some(3) {
        // Stopped: it says why, and what to do.
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains("the connection to the database was lost"),
            "{}",
            text(&out)
        );
        assert!(text(&out).contains("this run stops here"), "{}", text(&out));
        assert!(text(&out).contains("offboard resume"), "{}", text(&out));
        let resume = a.run(&["resume", &id, "--non-interactive"]);
        assert_eq!(resume.status.code(), Some(3), "{}", text(&resume));
    }
    let after = db.chain(&id);
    assert_eq!(&after[..before.len()], &before[..]);
    assert_no_repeat(&after);
    assert!(
        after
            .iter()
            .any(|e| matches!(e.record, Record::RunFinished { .. }))
    );
}

#[test]
fn pg_two_state_dirs_migrate_into_one_database_and_back_every_chain_checked() {
    let Some(db) = Db::start() else { return };
    // Two technicians' local state dirs (no database).
    let l1 = CliEnv::with_runbook(RUNBOOK);
    let l2 = CliEnv::with_runbook(RUNBOOK);
    for (env, user) in [(&l1, "alice@corp.example"), (&l2, "bob@corp.example")] {
        let out = env.run(&start_args(user));
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    }
    let mut m = CliEnv::new();
    m.var(PW_VAR, TOOL_PW);
    let url = db.tool_url();
    let migrate = |from: &Path| {
        m.run(&[
            "state",
            "migrate",
            "--from",
            from.to_str().unwrap(),
            "--to",
            &url,
        ])
    };
    for l in [&l1, &l2] {
        let out = migrate(&l.state());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let ids = db.departures();
    assert_eq!(ids.len(), 2, "{ids:?}");
    for (l, id) in [(&l1, &ids[0]), (&l2, &ids[1])] {
        let local = std::fs::read_to_string(l.journal_path(id)).unwrap();
        assert_eq!(local.lines().collect::<Vec<_>>(), db.lines(id));
    }
    // Again: nothing new, nothing doubled.
    let again = migrate(&l1.state());
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("0 new event(s)"), "{}", text(&again));
    // A broken chain stops the migration before anything is written.
    let l3 = CliEnv::with_runbook(RUNBOOK);
    let out = l3.run(&start_args("carol@corp.example"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let (found, _) = l3.departures();
    let p = l3.journal_path(&found[0].0);
    let t = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, t.replacen("\"complete\":false", "\"complete\":true", 1)).unwrap();
    let refused = migrate(&l3.state());
    assert_eq!(refused.status.code(), Some(5), "{}", text(&refused));
    assert!(text(&refused).contains("cannot be trusted; nothing was migrated"));
    assert_eq!(db.departures().len(), 2);
    // Working on a migrated departure from a machine on the database.
    let mut b = db.machine(0);
    b.var(
        "OFFBOARD_SIGNING_KEY",
        l1.state().join("keys/offboard_ed25519").to_str().unwrap(),
    );
    let confirm = b.run(&["confirm", &ids[0], "badge"]);
    assert_eq!(confirm.status.code(), Some(0), "{}", text(&confirm));
    // And out again, for leaving: the journals and evidence as the database has them.
    let back = tempfile::tempdir().unwrap();
    let out = m.run(&[
        "state",
        "migrate",
        "--from",
        &url,
        "--to",
        back.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for id in &ids {
        let local = std::fs::read_to_string(
            back.path()
                .join("departures")
                .join(id)
                .join("journal.jsonl"),
        )
        .unwrap();
        assert_eq!(local.lines().collect::<Vec<_>>(), db.lines(id));
    }
    let mut reader = CliEnv::new();
    reader.var("OFFBOARD_STATE_DIR", back.path().to_str().unwrap());
    let ev = back
        .path()
        .join("departures")
        .join(&ids[0])
        .join(format!("{}.json", ids[0]));
    let verify = reader.run(&[
        "evidence",
        "verify",
        ev.to_str().unwrap(),
        "--integrity-only",
    ]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
}

#[test]
fn pg_verify_full_checks_the_servers_certificate_against_the_ca_file() {
    let Some(db) = Db::start_tls(true) else {
        return;
    };
    let ca = db.server.pg_ca();
    let tls_url = |host: &str, ca: &Path| {
        format!(
            "postgres://tech@{host}:{}/offboard?sslmode=verify-full&sslrootcert={}&password_env={PW_VAR}",
            db.port(),
            ca.display()
        )
    };
    let mut a = db.machine(0);
    a.var("OFFBOARD_STATE", &tls_url("localhost", &ca));
    let out = a.run(&start_args("alice@corp.example"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let id = db.departures().pop().unwrap();
    assert!(db.chain(&id).len() > 10);
    // The server takes the tool's role over TLS only (pg_hba: hostssl), so that was TLS: in
    // the clear, the same login is turned away.
    let plain = Command::new(db.bin.join("psql"))
        .args(["-h", "127.0.0.1", "-p", &db.port().to_string()])
        .args(["-U", "tech", "-d", "offboard", "-XAtqc", "SELECT 1"])
        .env("PGPASSWORD", TOOL_PW)
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap();
    assert!(!plain.status.success(), "{}", text(&plain));
    // A CA that did not sign the server's certificate: refused, nothing sent.
    let other = a.path().join("other-ca");
    std::fs::create_dir_all(&other).unwrap();
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=not the test CA", "-keyout"])
        .arg(other.join("key.pem"))
        .arg("-out")
        .arg(other.join("ca.pem"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let mut b = db.machine(0);
    b.var(
        "OFFBOARD_STATE",
        &tls_url("localhost", &other.join("ca.pem")),
    );
    let refused = b.run(&["status"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).to_lowercase().contains("certificate"),
        "{}",
        text(&refused)
    );
    assert!(!text(&refused).contains(TOOL_PW));
    // verify-full without a CA file is a usage error.
    let mut c = db.machine(0);
    c.var(
        "OFFBOARD_STATE",
        &format!(
            "postgres://tech@localhost:{}/offboard?sslmode=verify-full&password_env={PW_VAR}",
            db.port()
        ),
    );
    let usage = c.run(&["status"]);
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage));
    assert!(text(&usage).contains("sslrootcert"), "{}", text(&usage));
}

#[test]
fn pg_two_machines_starting_the_same_person_at_once_make_one_departure() {
    let Some(db) = Db::start() else { return };
    let a = db.machine(700);
    let b = db.machine(700);
    let first = a.spawn(&start_args("alice@corp.example"));
    // B starts once A's departure is in the database (A holds the person then).
    let t0 = Instant::now();
    while db.departures().is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(30), "A never began");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = b.run(&start_args("Alice@corp.example"));
    let first = wait_bounded(first, Duration::from_secs(60), &["start"]);
    assert_eq!(first.status.code(), Some(3), "{}", text(&first));
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    assert!(
        text(&second).contains("a departure of this person is being run by tester@corp.example"),
        "{}",
        text(&second)
    );
    assert_eq!(db.departures().len(), 1, "two departures for one person");
}

/// Every file under `dir`, by path (so the test can look at names and contents).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn pg_a_runbook_state_table_with_a_password_reference_and_a_ca_file_is_the_shared_record() {
    let Some(db) = Db::start_tls(true) else {
        return;
    };
    // Machine A: no --state, no OFFBOARD_STATE: the runbook's [state] table, over TLS
    // (verify-full against the CA named relative to the runbook), the password from a variable.
    let table = format!(
        "\n[state]\nurl = \"postgres://tech@localhost:{}/offboard\"\npassword = {{ env = \"TEAM_DB_PW\" }}\nca_file = \"db-ca.pem\"\n",
        db.port()
    );
    let rb = format!("{RUNBOOK}{table}").replace("latency_ms = 200", "latency_ms = 0");
    let mut a = CliEnv::with_runbook(&rb.replace("latency_ms = 100", "latency_ms = 0"));
    std::fs::copy(db.server.pg_ca(), a.path().join("db-ca.pem")).unwrap();
    a.var("TEAM_DB_PW", TOOL_PW);
    let out = a.run(&start_args("alice@corp.example"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let id = db
        .departures()
        .pop()
        .expect("the departure is in the database");
    assert!(db.chain(&id).len() > 10);
    // Machine B, elsewhere, sees it through the same runbook (OFFBOARD_RUNBOOK) with a command
    // that takes no runbook.
    let mut b = CliEnv::new();
    b.var("OFFBOARD_RUNBOOK", a.runbook().to_str().unwrap());
    b.var("TEAM_DB_PW", TOOL_PW);
    let out = b.run(&["status", "alice@corp.example"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains(&id), "{}", text(&out));
    // The wrong password is refused by the server, and not printed.
    b.var("TEAM_DB_PW", "not-the-pw-31c9");
    let out = b.run(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains("not-the-pw-31c9"), "{}", text(&out));
    // The password is nowhere: not in the journal, the evidence, the cache or its path.
    let mut rows = db.lines(&id).join("\n");
    rows.push_str(&db.admin("SELECT encode(bytes, 'escape') FROM offboard.evidence"));
    assert!(!rows.contains(TOOL_PW));
    for env in [&a, &b] {
        for f in files_under(&env.state()) {
            assert!(
                !f.display().to_string().contains(TOOL_PW),
                "{}",
                f.display()
            );
            if f.is_file() {
                let bytes = std::fs::read(&f).unwrap();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(TOOL_PW),
                    "{}",
                    f.display()
                );
            }
        }
    }
}
