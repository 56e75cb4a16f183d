//! `offboard start --from people.csv`: a batch of departures checked line by line before
//! anything runs, run concurrently within each system's limits (the runbook's and the system's
//! own), involuntary rows first, continued by `resume --from` after a SIGKILL with nothing
//! repeated and nothing lost, and reported as a JSON Lines stream.

use crate::common;

use std::time::{Duration, Instant};

use common::cli_env::{CliEnv, fake_runtime, text, wait_bounded};
use common::fake_scim::FakeScim;

const TOKEN: &str = "bulk-token-1";

/// One SCIM system (deactivate, then delete in the close phase), optionally rate-limited, and
/// a required `manager` input.
fn runbook(base_url: &str, rate_limit: Option<&str>) -> String {
    let rate = rate_limit
        .map(|r| format!("rate_limit = \"{r}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[runbook]
name = "Bulk leaver"

[inputs]
manager = {{ prompt = "Manager", required = true }}

[systems.app]
kind = "scim"
base_url = "{base_url}"
token = {{ env = "APP_TOKEN" }}
timeout_secs = 5
max_concurrency = 8
{rate}
[[step]]
id = "app-deactivate"
lane = "saas"
system = "app"
action = "deactivate_user"

[[step]]
id = "app-delete"
lane = "saas"
system = "app"
action = "delete_user"
phase = "close"
"#
    )
}

fn env(fake: &FakeScim, rate_limit: Option<&str>) -> CliEnv {
    let mut env = CliEnv::with_runbook(&runbook(&fake.base_url, rate_limit));
    env.var("APP_TOKEN", TOKEN);
    env
}

/// `n` people, added to the fake; the CSV (header `user,type,manager`) and their SCIM ids.
fn people(
    fake: &FakeScim,
    n: usize,
    kind: impl Fn(usize) -> &'static str,
) -> (String, Vec<(String, String)>) {
    let mut csv = String::from("user,type,manager\n");
    let mut ids = Vec::new();
    for i in 0..n {
        let user = format!("leaver{i:02}@corp.example");
        let id = fake.add_user(&user, true);
        csv.push_str(&format!("{user},{},boss@corp.example\n", kind(i)));
        ids.push((user, id));
    }
    (csv, ids)
}

fn write_csv(env: &CliEnv, csv: &str) {
    std::fs::write(env.path().join("people.csv"), csv).unwrap();
}

const START: [&str; 5] = ["start", "--from", "people.csv", "-r", "offboard.toml"];

/// Each person deactivated then deleted exactly once, with a complete, intact departure whose
/// evidence verifies.
fn assert_all_done_once(env: &CliEnv, fake: &FakeScim, ids: &[(String, String)]) {
    for (user, id) in ids {
        assert!(fake.user(id).is_none(), "{user} still in the app");
        assert_eq!(fake.count_on_user("PATCH", id), 1, "PATCH of {user}");
        assert_eq!(fake.count_on_user("DELETE", id), 1, "DELETE of {user}");
        let dep = env
            .departure_of(user)
            .unwrap_or_else(|| panic!("no departure for {user}"));
        env.chain(&dep);
        for (step, status) in env.step_statuses(&dep) {
            assert_eq!(status, "done", "{user}: {step}");
        }
        env.assert_evidence_verifies(&dep);
    }
}

/// The JSON lines of stdout, each parsed.
fn events(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{}", text(out)))
        })
        .collect()
}

#[test]
fn bad_lines_are_all_named_and_nothing_runs() {
    let rt = fake_runtime();
    let fake = rt.block_on(FakeScim::start(TOKEN));
    let env = env(&fake, None);
    write_csv(
        &env,
        "user,type,manager,ticket\n\
         alice@corp.example,involuntary,bob@corp.example,HR-1\n\
         ,voluntary,bob@corp.example,\n\
         carol@corp.example,fired,bob@corp.example,\n\
         dave@corp.example,voluntary,,\n\
         ALICE@corp.example,voluntary,bob@corp.example,\n\
         erin@corp.example,voluntary,bob@corp.example,HR-2,extra\n\
         frank@corp.example,voluntary,bob@corp.example,\n",
    );
    let out = env.run(&START);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("5 line(s) cannot be used; nothing was started"),
        "{err}"
    );
    for (line, says) in [
        (3, "the user is empty"),
        (4, "\"fired\" is not voluntary or involuntary"),
        (5, "the runbook needs input \"manager\""),
        (6, "is already on line 2"),
        (7, "5 cell(s) where the header has 4"),
    ] {
        let want = format!("people.csv:{line}: ");
        let found = err
            .lines()
            .find(|l| l.contains(&want))
            .unwrap_or_else(|| panic!("line {line} not named:\n{err}"));
        assert!(found.contains(says), "line {line}: {found}");
    }
    assert!(
        !err.contains("people.csv:2:") && !err.contains("people.csv:8:"),
        "{err}"
    );
    assert!(env.departures().0.is_empty(), "a departure was begun");
    assert!(
        !env.state().join("batches").exists(),
        "a batch was recorded"
    );
    assert!(fake.requests().is_empty(), "the app was called");

    // A header without `user`, or with a column the runbook does not know, is line 1.
    write_csv(&env, "email,manager\nalice@corp.example,bob@corp.example\n");
    let out = env.run(&START);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 1: there is no `user` column"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_runbooks_rate_limit_holds_across_all_departures() {
    let rt = fake_runtime();
    let fake = rt.block_on(FakeScim::start(TOKEN));
    // The system enforces 10/s with a burst of 4 (room for a loaded machine to bunch a few
    // requests up in transit): traffic above that gets 429.
    fake.token_bucket(10.0, 4);
    let env = env(&fake, Some("10/s"));
    let (csv, ids) = people(&fake, 8, |_| "voluntary");
    write_csv(&env, &csv);
    let t0 = Instant::now();
    let mut args = START.to_vec();
    args.extend(["--parallel", "8"]);
    let out = env.run(&args);
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (admitted, throttled) = fake.admitted();
    assert_eq!(
        throttled,
        0,
        "the batch went over the limit:\n{}",
        text(&out)
    );
    // Every request of 8 departures (lookup, change, check per step) within 10/s: no window of
    // one second holds more than the limit plus the burst.
    for (i, t) in admitted.iter().enumerate() {
        let within = admitted[i..]
            .iter()
            .take_while(|u| u.duration_since(*t) < Duration::from_secs(1))
            .count();
        assert!(within <= 14, "{within} requests within 1 s of request {i}");
    }
    let n = admitted.len() as u32;
    assert!(n >= 32, "{n} requests");
    assert!(
        took >= Duration::from_millis(100) * (n - 1),
        "{n} requests in {took:?}: faster than 10/s"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("app: "),
        "no per-system line:\n{}",
        text(&out)
    );
    assert_all_done_once(&env, &fake, &ids);
}

#[test]
fn a_system_that_throttles_hard_slows_the_batch_and_nothing_fails() {
    let rt = fake_runtime();
    let fake = rt.block_on(FakeScim::start(TOKEN));
    // No rate_limit in the runbook: the system's own 429s and Retry-After are all there is.
    fake.token_bucket(5.0, 2);
    let env = env(&fake, None);
    let (csv, ids) = people(&fake, 6, |_| "voluntary");
    write_csv(&env, &csv);
    let mut args = vec!["--json"];
    args.extend(START);
    args.extend(["--parallel", "6"]);
    let out = env.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (admitted, throttled) = fake.admitted();
    assert!(
        throttled > 0,
        "the system never throttled; the test tests nothing"
    );
    let ev = events(&out);
    assert!(
        ev.iter()
            .filter(|e| e["event"] == "step")
            .all(|e| e["status"] == "done"),
        "a step did not succeed:\n{}",
        text(&out)
    );
    assert!(admitted.len() >= 24);
    // The per-system line saw the throttling too.
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("app: ") && l.contains("over the whole batch"))
        .unwrap_or_else(|| panic!("no per-system line:\n{err}"));
    assert!(
        line.contains("throttled (429)") && !line.contains(" 0 throttled"),
        "{line}"
    );
    assert_all_done_once(&env, &fake, &ids);
}

#[test]
fn involuntary_rows_are_cut_first_and_json_events_parse() {
    let rt = fake_runtime();
    let fake = rt.block_on(FakeScim::start(TOKEN));
    fake.set_latency(Duration::from_millis(20));
    let env = env(&fake, None);
    // Voluntary rows first in the file; the involuntary ones (odd lines) must start first.
    let (csv, ids) = people(&fake, 6, |i| {
        if i % 2 == 1 {
            "involuntary"
        } else {
            "voluntary"
        }
    });
    write_csv(&env, &csv);
    let mut args = vec!["--json"];
    args.extend(START);
    args.extend(["--parallel", "2"]);
    let out = env.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ev = events(&out);
    assert_eq!(ev.first().unwrap()["event"], "batch_started");
    assert_eq!(ev.last().unwrap()["event"], "batch_finished");
    assert_eq!(ev.last().unwrap()["complete"], 6);
    let ended: Vec<&serde_json::Value> = ev.iter().filter(|e| e["event"] == "departure").collect();
    assert_eq!(ended.len(), 6);
    assert!(
        ended
            .iter()
            .all(|e| e["outcome"] == "complete" && e["evidence"].is_string())
    );
    // Two step events (deactivate, delete) per departure, each naming its departure.
    let steps: Vec<&serde_json::Value> = ev.iter().filter(|e| e["event"] == "step").collect();
    assert_eq!(steps.len(), 12, "{}", text(&out));
    assert!(
        steps
            .iter()
            .all(|e| e["departure"].is_string() && e["system"] == "app")
    );
    // Human text went to stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("Batch "));

    // When each departure began (its first event), by type.
    let began = |user: &str| {
        let id = env.departure_of(user).unwrap();
        env.chain(&id)[0].ts.clone()
    };
    let last_involuntary = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, (u, _))| began(u))
        .max()
        .unwrap();
    let first_voluntary = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, (u, _))| began(u))
        .min()
        .unwrap();
    assert!(
        last_involuntary <= first_voluntary,
        "a voluntary departure began ({first_voluntary}) before an involuntary one ({last_involuntary})"
    );
    assert_all_done_once(&env, &fake, &ids);
}

#[test]
fn a_batch_killed_halfway_resumes_with_nothing_repeated_or_lost() {
    let rt = fake_runtime();
    let fake = rt.block_on(FakeScim::start(TOKEN));
    // Slow enough that the kill lands with departures in flight.
    fake.set_latency(Duration::from_millis(120));
    let env = env(&fake, None);
    let (csv, ids) = people(&fake, 8, |_| "voluntary");
    write_csv(&env, &csv);
    let mut args = START.to_vec();
    args.extend(["--parallel", "2"]);
    let mut child = env.spawn(&args);
    // Wait until some departures have finished (their evidence written: one killed between its
    // last step and its seal is rightly reopened by the resume) and others are under way, then
    // SIGKILL.
    let t0 = Instant::now();
    loop {
        let (found, _) = env.departures();
        let finished = found
            .iter()
            .filter(|(id, _)| {
                std::fs::read_to_string(env.journal_path(id))
                    .is_ok_and(|j| j.contains("\"evidence_written\""))
            })
            .count();
        if finished >= 2 && found.len() > finished {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the batch ended before the kill"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the batch made no progress"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let killed = wait_bounded(child, Duration::from_secs(30), &args);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(killed.status.signal(), Some(9), "{}", text(&killed));
    let begun_before = env.departures().0.len();
    assert!(begun_before < ids.len(), "every departure had begun");

    // From another directory, by another name for the same file.
    std::fs::create_dir(env.path().join("elsewhere")).unwrap();
    let mut resume = env.command();
    resume
        .current_dir(env.path().join("elsewhere"))
        .args(["--json", "resume", "--from", "../people.csv"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = wait_bounded(
        resume.spawn().unwrap(),
        Duration::from_secs(120),
        &["resume"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ev = events(&out);
    let outcome = |o: &str| {
        ev.iter()
            .filter(|e| e["event"] == "departure" && e["outcome"] == o)
            .count()
    };
    assert!(
        outcome("skipped") >= 2,
        "finished departures ran again:\n{}",
        text(&out)
    );
    assert_eq!(
        outcome("skipped") + outcome("complete"),
        ids.len(),
        "{}",
        text(&out)
    );
    // Nothing repeated at the system, nothing lost, one departure per person.
    assert_all_done_once(&env, &fake, &ids);
    // No step applied twice in any journal.
    for (user, _) in &ids {
        let id = env.departure_of(user).unwrap();
        let events = env.chain(&id);
        for step in ["app-deactivate", "app-delete"] {
            let applied = events
                .iter()
                .filter(|e| {
                    e.step.as_deref() == Some(step)
                        && matches!(e.record, offboard::journal::Record::Applied { .. })
                })
                .count();
            assert!(applied <= 1, "{user}: {step} applied {applied} times");
        }
    }
}

#[test]
fn ctrl_c_stops_the_batch_cleanly_and_resume_finishes_it() {
    let rt = fake_runtime();
    let fake = rt.block_on(FakeScim::start(TOKEN));
    fake.set_latency(Duration::from_millis(150));
    let env = env(&fake, None);
    let (csv, ids) = people(&fake, 8, |_| "voluntary");
    write_csv(&env, &csv);
    let mut args = START.to_vec();
    args.extend(["--parallel", "2"]);
    let child = env.spawn(&args);
    let t0 = Instant::now();
    while env.departures().0.len() < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the batch made no progress"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: the child is ours and still running (it is reaped only below).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = wait_bounded(child, Duration::from_secs(60), &args);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SIGINT: stopping"), "{err}");
    assert!(err.contains("offboard resume --from"), "{err}");
    // Every departure begun ended cleanly: finished, or journaled as interrupted; all sealed.
    let (begun, stray) = env.departures();
    assert_eq!(stray, 0);
    assert!(begun.len() < ids.len(), "no row was left for resume");
    let mut interrupted = 0;
    for (id, user) in &begun {
        let events = env.chain(id);
        let last = &events
            .iter()
            .rev()
            .find(|e| !matches!(e.record, offboard::journal::Record::EvidenceWritten { .. }))
            .unwrap()
            .record;
        match last {
            offboard::journal::Record::Interrupted { reason } => {
                assert_eq!(reason, "SIGINT");
                interrupted += 1;
            }
            offboard::journal::Record::RunFinished { .. } => {}
            other => panic!("{user}'s journal ends in {other:?}"),
        }
        env.assert_evidence_verifies(id);
    }
    assert!(interrupted > 0, "no departure was in flight at the signal");

    // A file that changed since is not taken for the same batch.
    write_csv(
        &env,
        &format!("{csv}zoe@corp.example,voluntary,boss@corp.example\n"),
    );
    let out = env.run(&["resume", "--from", "people.csv"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has changed since batch"),
        "{}",
        text(&out)
    );
    write_csv(&env, &csv);

    // By its id, as `start` printed it.
    let batch = err
        .split_whitespace()
        .find(|w| w.contains("-batch-"))
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    let out = env.run(&["resume", "--batch", &batch]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_all_done_once(&env, &fake, &ids);
}

#[test]
fn a_system_that_cannot_be_used_stops_the_batch_before_it_starts() {
    let rt = fake_runtime();
    let fake = rt.block_on(FakeScim::start(TOKEN));
    // APP_TOKEN is not set: every departure's steps there would fail.
    let env = CliEnv::with_runbook(&runbook(&fake.base_url, None));
    let (csv, _) = people(&fake, 3, |_| "voluntary");
    write_csv(&env, &csv);
    let out = env.run(&START);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 system(s) cannot be used; nothing was started"),
        "{err}"
    );
    assert!(
        err.contains("system app: token: ") && err.contains("APP_TOKEN"),
        "{err}"
    );
    assert!(env.departures().0.is_empty());
    assert!(fake.requests().is_empty());
}

#[test]
fn a_person_whose_last_journal_cannot_be_trusted_is_a_bad_line() {
    let rt = fake_runtime();
    let fake = rt.block_on(FakeScim::start(TOKEN));
    let env = env(&fake, None);
    let (csv, ids) = people(&fake, 2, |_| "voluntary");
    write_csv(&env, &csv);
    let out = env.run(&START);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Someone edits the first person's journal (complete, so no longer open).
    let dep = env.departure_of(&ids[0].0).unwrap();
    let journal = std::fs::read_to_string(env.journal_path(&dep)).unwrap();
    std::fs::write(
        env.journal_path(&dep),
        journal.replacen("\"run_started\"", "\"run_startex\"", 1),
    )
    .unwrap();
    let out = env.run(&START);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "people.csv:2: {} has a departure whose journal cannot be trusted, {dep}",
            ids[0].0
        )),
        "{err}"
    );
    assert_eq!(env.departures().0.len(), 1, "a departure was begun");
}

#[test]
fn each_departure_of_a_batch_attaches_its_evidence_to_its_own_ticket() {
    use common::fake_redmine::FakeRedmine;
    const KEY: &str = "rk-SECRET-bulk-77aa";
    let rt = fake_runtime();
    let desk = rt.block_on(FakeRedmine::start(KEY));
    let mut env = CliEnv::with_runbook(&format!(
        r#"
[runbook]
name = "Ticketed batch"

[systems.idp]
kind = "sandbox"

[ticketing]
kind = "redmine"
base_url = "{}"
api_key = {{ env = "REDMINE_API_KEY" }}

[[step]]
id = "idp-suspend"
lane = "it"
system = "idp"
action = "suspend_user"
"#,
        desk.server.base_url
    ));
    env.var("REDMINE_API_KEY", KEY);
    let tickets: Vec<String> = (0..3).map(|_| desk.add_issue()).collect();
    let mut csv = String::from("user,ticket\n");
    for (i, t) in tickets.iter().enumerate() {
        csv.push_str(&format!("p{i}@corp.example,{t}\n"));
    }
    write_csv(&env, &csv);
    let out = env.run(&START);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("rk-SECRET"));
    for (i, t) in tickets.iter().enumerate() {
        let id = env.departure_of(&format!("p{i}@corp.example")).unwrap();
        let names: Vec<String> = desk
            .issue(t)
            .attachments
            .iter()
            .map(|a| a.filename.clone())
            .collect();
        assert!(
            names.contains(&format!("{id}-r1.json")),
            "ticket {t} of p{i}: {names:?}"
        );
        env.assert_evidence_verifies(&id);
    }
}

#[test]
fn on_a_terminal_a_batch_draws_one_bar_and_a_line_per_system() {
    use expectrl::{Eof, Session};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("offboard.toml"),
        r#"
[runbook]
name = "Bar leaver"

[systems.idp]
kind = "sandbox"
latency_ms = 700

[[step]]
id = "idp-suspend"
lane = "it"
system = "idp"
action = "suspend_user"
"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("people.csv"),
        "user\na@corp.example\nb@corp.example\nc@corp.example\n",
    )
    .unwrap();
    let mut cmd = common::cli_env::cleared(dir.path(), dir.path(), &dir.path().join("state"));
    cmd.args(START)
        .args(["--parallel", "1"])
        .env("TERM", "xterm");
    let mut s = Session::spawn(cmd).expect("spawn in a PTY");
    s.set_expect_timeout(Some(Duration::from_secs(60)));
    s.expect("/3 departures").unwrap();
    s.expect("idp").unwrap();
    s.expect("req/s (no rate_limit set)").unwrap();
    s.expect("Batch ").unwrap();
    s.expect(Eof).unwrap();
}
