//! Crash safety: SIGKILL a departure at many instants of its run, resume it, and check that it
//! completes with nothing lost and nothing repeated; a torn journal tail is detected and set
//! aside, never silently dropped.

use crate::common;

use std::time::{Duration, Instant};

use common::cli_env::{CliEnv, fake_runtime, text, wait_bounded};
use common::fake_scim::FakeScim;

const TOKEN_VARS: [(&str, &str); 3] = [
    ("HR_TOKEN", "hr-token-1"),
    ("CRM_TOKEN", "crm-token-2"),
    ("WIKI_TOKEN", "wiki-token-3"),
];

/// Three SCIM systems and a sandbox; all steps automated. hr: deactivate; crm and wiki:
/// deactivate (cut) then delete (close).
fn runbook(hr: &str, crm: &str, wiki: &str) -> String {
    format!(
        r#"
[runbook]
name = "Crash test leaver"

[systems.hr]
kind = "scim"
base_url = "{hr}"
token = {{ env = "HR_TOKEN" }}
timeout_secs = 5

[systems.crm]
kind = "scim"
base_url = "{crm}"
token = {{ env = "CRM_TOKEN" }}
timeout_secs = 5

[systems.wiki]
kind = "scim"
base_url = "{wiki}"
token = {{ env = "WIKI_TOKEN" }}
timeout_secs = 5

[systems.idp]
kind = "sandbox"
latency_ms = 40

[[step]]
id = "hr-deactivate"
lane = "it"
system = "hr"
action = "deactivate_user"

[[step]]
id = "crm-deactivate"
lane = "saas"
system = "crm"
action = "deactivate_user"

[[step]]
id = "wiki-deactivate"
lane = "saas"
system = "wiki"
action = "deactivate_user"

[[step]]
id = "idp-suspend"
lane = "it"
system = "idp"
action = "suspend_user"

[[step]]
id = "crm-delete"
lane = "saas"
system = "crm"
action = "delete_user"
phase = "close"

[[step]]
id = "wiki-delete"
lane = "saas"
system = "wiki"
action = "delete_user"
phase = "close"
"#
    )
}

struct Fakes {
    hr: FakeScim,
    crm: FakeScim,
    wiki: FakeScim,
}

impl Fakes {
    fn start(rt: &tokio::runtime::Runtime, latency: Duration) -> Fakes {
        let f = rt.block_on(async {
            Fakes {
                hr: FakeScim::start(TOKEN_VARS[0].1).await,
                crm: FakeScim::start(TOKEN_VARS[1].1).await,
                wiki: FakeScim::start(TOKEN_VARS[2].1).await,
            }
        });
        for fake in [&f.hr, &f.crm, &f.wiki] {
            fake.set_latency(latency);
        }
        f
    }

    /// Add the user everywhere, active; the ids (hr, crm, wiki).
    fn add(&self, user: &str) -> [String; 3] {
        [
            self.hr.add_user(user, true),
            self.crm.add_user(user, true),
            self.wiki.add_user(user, true),
        ]
    }

    /// The user is deactivated in hr and gone from crm and wiki, each change made exactly once.
    fn assert_done_once(&self, user: &str, ids: &[String; 3]) {
        let [hr, crm, wiki] = ids;
        let hr_user = self.hr.user(hr).unwrap();
        assert_eq!(hr_user["active"], false, "{user} still active in hr");
        assert!(self.crm.user(crm).is_none(), "{user} still in crm");
        assert!(self.wiki.user(wiki).is_none(), "{user} still in wiki");
        for (name, fake, id, deletes) in [
            ("hr", &self.hr, hr, 0),
            ("crm", &self.crm, crm, 1),
            ("wiki", &self.wiki, wiki, 1),
        ] {
            assert_eq!(
                fake.count_on_user("PATCH", id),
                1,
                "{name} saw the deactivating PATCH of {user} other than exactly once"
            );
            assert_eq!(
                fake.count_on_user("DELETE", id),
                deletes,
                "{name} saw DELETE of {user} other than {deletes} time(s)"
            );
        }
    }
}

fn env_with_tokens() -> CliEnv {
    let mut env = CliEnv::new();
    for (k, v) in TOKEN_VARS {
        env.var(k, v);
    }
    env
}

/// How a killed run ended.
#[derive(Debug, Default)]
struct Tally {
    killed: usize,
    finished_before_kill: usize,
    stray_dirs: usize,
    restarts: usize,
}

/// Spawn, sleep `delay`, SIGKILL, wait. A run that ended before the kill must have succeeded.
fn kill_after(env: &CliEnv, args: &[&str], delay: Duration, tally: &mut Tally) {
    let mut child = env.spawn(args);
    std::thread::sleep(delay);
    // Child::kill sends SIGKILL on Unix; it is an error only if the child was already reaped.
    let _ = child.kill();
    let out = wait_bounded(child, Duration::from_secs(60), args);
    use std::os::unix::process::ExitStatusExt;
    match (out.status.signal(), out.status.code()) {
        (Some(9), _) => tally.killed += 1,
        (None, Some(0)) => tally.finished_before_kill += 1,
        _ => panic!(
            "offboard {args:?} ended badly before the kill:\n{}",
            text(&out)
        ),
    }
}

#[test]
fn sigkill_at_many_points_then_resume_completes_without_repeating_a_change() {
    let rt = fake_runtime();
    let fakes = Fakes::start(&rt, Duration::from_millis(40));
    let env = env_with_tokens();
    env.write_runbook(&runbook(
        &fakes.hr.base_url,
        &fakes.crm.base_url,
        &fakes.wiki.base_url,
    ));

    // Measure whole runs (the first also creates the signing key, as a first run would) and
    // take the quickest: kills timed from a slow run (a loaded machine) would mostly land
    // after the run had ended, and test nothing.
    const CALIBRATIONS: u32 = 3;
    let mut full = Duration::MAX;
    for c in 0..CALIBRATIONS {
        let calibrate = format!("calibrate{c}@corp.example");
        let ids = fakes.add(&calibrate);
        let t0 = Instant::now();
        let out = env.run(&CliEnv::start_args(&calibrate));
        full = full.min(t0.elapsed());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        fakes.assert_done_once(&calibrate, &ids);
    }

    // Round r: a fresh person; `start` killed at r/N of the full run time, then `resume` killed
    // at another point of the run, then a last `resume` that must finish. Each round's kills
    // land at a distinct instant of a departure, from before anything is written up to sealing.
    const ROUNDS: u32 = 30;
    let mut tally = Tally::default();
    let mut users = Vec::new();
    for r in 0..ROUNDS {
        let user = format!("person{r:02}@corp.example");
        let ids = fakes.add(&user);
        let kills = [
            full * r / ROUNDS,
            full * ((r * 11 + 5) % ROUNDS) / ROUNDS / 2,
        ];
        for (k, delay) in kills.into_iter().enumerate() {
            match env.departure_of(&user) {
                None => {
                    // Killed before the journal's first event: nothing to resume, start again.
                    if k > 0 {
                        tally.restarts += 1;
                    }
                    kill_after(&env, &CliEnv::start_args(&user), delay, &mut tally)
                }
                Some(id) => kill_after(
                    &env,
                    &["resume", &id, "--non-interactive"],
                    delay,
                    &mut tally,
                ),
            }
        }
        let out = match env.departure_of(&user) {
            None => env.run(&CliEnv::start_args(&user)),
            Some(id) => env.run(&["resume", &id, "--non-interactive"]),
        };
        assert_eq!(out.status.code(), Some(0), "round {r}: {}", text(&out));
        users.push((user, ids));
    }
    let (_, stray) = env.departures();
    tally.stray_dirs = stray;
    // What a kill before the first event leaves behind (a dir with a lock, maybe an empty
    // journal): listed, so the report shows it.
    let stray_files: Vec<String> = common::cli_env::walk(&env.state().join("departures"))
        .iter()
        .filter(|p| {
            offboard::journal::Journal::read(&p.parent().unwrap().join("journal.jsonl")).is_err()
        })
        .map(|p| {
            let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            format!("{} ({len} bytes)", p.file_name().unwrap().to_string_lossy())
        })
        .collect();
    // `status` still lists the real departures whatever the strays.
    let out = env.run(&["--json", "status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        listed["departures"].as_array().unwrap().len(),
        (ROUNDS + CALIBRATIONS) as usize
    );

    for (user, ids) in &users {
        fakes.assert_done_once(user, ids);
        let id = env.departure_of(user).expect("departure");
        let events = env.chain(&id);
        assert!(
            events.iter().any(|e| e.line().contains("\"run_finished\"")),
            "{user}: no run_finished"
        );
        let statuses = env.step_statuses(&id);
        assert_eq!(statuses.len(), 6);
        for (step, status) in &statuses {
            assert_eq!(status, "done", "{user}: step {step} is {status}");
        }
        env.assert_evidence_verifies(&id);
    }
    let torn = common::cli_env::walk(&env.state())
        .iter()
        .filter(|p| p.to_string_lossy().contains(".torn-"))
        .count();
    eprintln!(
        "full run {full:?}; {} kill points: {tally:?}; stray files {stray_files:?}; torn tails set aside: {torn}",
        ROUNDS * 2
    );
    assert!(
        tally.killed >= 50,
        "only {} of the kills landed while offboard was running",
        tally.killed
    );
}

#[test]
fn torn_journal_tail_is_reported_set_aside_and_the_run_continues() {
    let env = CliEnv::new();
    env.write_runbook(
        r#"
[runbook]
name = "Torn"

[systems.idp]
kind = "sandbox"

[[step]]
id = "idp-suspend"
lane = "it"
system = "idp"
action = "suspend_user"

[[step]]
id = "idp-sessions"
lane = "it"
system = "idp"
action = "revoke_sessions"
phase = "close"
"#,
    );
    let out = env.run(&CliEnv::start_args("alice@corp.example"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = env.departure_of("alice@corp.example").unwrap();
    let before = env.chain(&id).len();

    // A write cut off by a crash: half an event, no newline.
    let journal = env.journal_path(&id);
    let full_line = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let half = &full_line[..full_line.len() / 2];
    let mut bytes = std::fs::read(&journal).unwrap();
    bytes.extend_from_slice(half.as_bytes());
    std::fs::write(&journal, &bytes).unwrap();
    assert!(matches!(
        offboard::journal::parse_chain(&bytes),
        Err(offboard::journal::ChainError::TornTail { .. })
    ));

    let out = env.run(&["resume", &id, "--non-interactive"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("torn line") && stderr.contains(&format!("{} bytes", half.len())),
        "no warning naming the torn tail:\n{stderr}"
    );
    let aside = env.departure_dir(&id).join("journal.jsonl.torn-1");
    assert_eq!(std::fs::read_to_string(&aside).unwrap(), half);
    let events = env.chain(&id);
    assert!(events.len() > before, "resume appended nothing");
    env.assert_evidence_verifies(&id);
    for (step, status) in env.step_statuses(&id) {
        assert_eq!(status, "done", "{step}");
    }
}
