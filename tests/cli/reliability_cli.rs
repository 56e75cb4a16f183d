//! Interruptions and faults through the CLI, against fake SCIM services: Ctrl-C, two processes
//! on one departure, and providers that fail a fraction of their requests.

use crate::common;

use std::time::{Duration, Instant};

use common::cli_env::{CliEnv, fake_runtime, text, wait_bounded};
use common::fake_scim::{Chaos, FakeScim};

/// SCIM systems named `names`, each deactivating the person; the ones in `delete` also delete
/// (close phase). Optionally a manual step.
fn runbook(systems: &[(&str, &FakeScim)], delete: &[&str], timeout: u64, manual: bool) -> String {
    let mut s = String::from("[runbook]\nname = \"Reliability leaver\"\n\n");
    for (name, fake) in systems {
        s.push_str(&format!(
            "[systems.{name}]\nkind = \"scim\"\nbase_url = \"{}\"\ntoken = {{ env = \"{}_TOKEN\" }}\ntimeout_secs = {timeout}\n\n",
            fake.base_url,
            name.to_uppercase()
        ));
    }
    for (name, _) in systems {
        s.push_str(&format!(
            "[[step]]\nid = \"{name}-deactivate\"\nlane = \"it\"\nsystem = \"{name}\"\naction = \"deactivate_user\"\n\n"
        ));
    }
    for name in delete {
        s.push_str(&format!(
            "[[step]]\nid = \"{name}-delete\"\nlane = \"saas\"\nsystem = \"{name}\"\naction = \"delete_user\"\nphase = \"close\"\n\n"
        ));
    }
    if manual {
        s.push_str(
            "[[step]]\nid = \"laptop\"\nlane = \"facilities\"\nmanual = \"Collect the laptop\"\nphase = \"close\"\n",
        );
    }
    s
}

fn env_for(systems: &[(&str, &FakeScim)]) -> CliEnv {
    let mut env = CliEnv::new();
    for (name, fake) in systems {
        env.var(&format!("{}_TOKEN", name.to_uppercase()), &fake.token);
    }
    env
}

/// Poll (bounded) until the departure of `user` has a journal event of `kind`; its id.
fn wait_for_event(env: &CliEnv, user: &str, kind: &str, child: &mut std::process::Child) -> String {
    let t0 = Instant::now();
    loop {
        if let Some(id) = env.departure_of(user)
            && let Ok(events) = offboard::journal::Journal::read(&env.journal_path(&id))
            && events
                .iter()
                .any(|e| e.line().contains(&format!("\"kind\":\"{kind}\"")))
        {
            return id;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("offboard ended ({status}) before the journal had a {kind} event");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no {kind} event within 30 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn kinds(env: &CliEnv, id: &str) -> Vec<String> {
    env.chain(id)
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(&e.line()).unwrap();
            v["kind"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn ctrl_c_stops_cleanly_and_resume_finishes_without_repeating() {
    let rt = fake_runtime();
    let (hr, crm, wiki) = rt.block_on(async {
        (
            FakeScim::start("hr-tok").await,
            FakeScim::start("crm-tok").await,
            FakeScim::start("wiki-tok").await,
        )
    });
    let systems = [("hr", &hr), ("crm", &crm), ("wiki", &wiki)];
    let user = "alice@corp.example";
    let mut ids = Vec::new();
    for (_, f) in &systems {
        f.set_latency(Duration::from_millis(150));
        ids.push(f.add_user(user, true));
    }
    let env = env_for(&systems);
    env.write_runbook(&runbook(&systems, &["crm", "wiki"], 5, false));

    let args = CliEnv::start_args(user);
    let mut child = env.spawn(&args);
    let id = wait_for_event(&env, user, "apply_started", &mut child);
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = wait_bounded(child, Duration::from_secs(60), &args);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("offboard resume {id}")),
        "no resume hint:\n{stderr}"
    );
    let k = kinds(&env, &id);
    let tail: Vec<&str> = k.iter().rev().take(3).map(String::as_str).collect();
    assert!(
        tail.contains(&"interrupted"),
        "journal does not end with the interruption: {k:?}"
    );
    assert!(!k.contains(&"run_finished".to_string()), "{k:?}");
    // The interrupted run left evidence that verifies.
    env.assert_evidence_verifies(&id);
    let interrupted_statuses = env.step_statuses(&id);
    assert!(
        interrupted_statuses.iter().any(|(_, s)| s != "done"),
        "Ctrl-C came too late to interrupt anything: {interrupted_statuses:?}"
    );

    let out = env.run(&["resume", &id, "--non-interactive"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (step, status) in env.step_statuses(&id) {
        assert_eq!(status, "done", "{step}");
    }
    for ((name, fake), uid) in systems.iter().zip(&ids) {
        assert_eq!(fake.count_on_user("PATCH", uid), 1, "{name} PATCH count");
        let deletes = if *name == "hr" { 0 } else { 1 };
        assert_eq!(fake.count_on_user("DELETE", uid), deletes, "{name} DELETE");
    }
    assert_eq!(hr.user(&ids[0]).unwrap()["active"], false);
    assert!(crm.user(&ids[1]).is_none() && wiki.user(&ids[2]).is_none());
    env.chain(&id);
    env.assert_evidence_verifies(&id);
}

#[test]
fn a_second_process_is_refused_and_a_dead_holder_is_taken_over() {
    let rt = fake_runtime();
    let (hr, crm) = rt.block_on(async {
        (
            FakeScim::start("hr-tok").await,
            FakeScim::start("crm-tok").await,
        )
    });
    let systems = [("hr", &hr), ("crm", &crm)];
    let user = "bob@corp.example";
    let mut ids = Vec::new();
    for (_, f) in &systems {
        // Slow enough that the run is still going while the others try.
        f.set_latency(Duration::from_millis(400));
        ids.push(f.add_user(user, true));
    }
    let env = env_for(&systems);
    env.write_runbook(&runbook(&systems, &["crm"], 5, true));

    let mut first = env.spawn(&CliEnv::start_args(user));
    let first_pid = first.id();
    let id = wait_for_event(&env, user, "apply_started", &mut first);
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let holder = format!("is being run by pid {} on host {host} since ", first.id());
    let journal_before = std::fs::read(env.journal_path(&id)).unwrap();

    for args in [
        vec!["resume", id.as_str(), "--non-interactive"],
        vec!["confirm", id.as_str(), "laptop"],
        vec!["resume", user, "--non-interactive"],
        vec!["hold", id.as_str(), "--reason", "litigation hold"],
        vec![
            "start",
            user,
            "-r",
            "offboard.toml",
            "--non-interactive",
            "--new",
        ],
    ] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("departure {id} {holder}")),
            "{args:?} does not name the holder ({holder}):\n{stderr}"
        );
    }
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run ended while the others were refused; make the fakes slower"
    );
    // The refused processes wrote nothing: the journal only grew by the first one's appends.
    let journal_now = std::fs::read(env.journal_path(&id)).unwrap();
    assert!(journal_now.starts_with(&journal_before));
    env.chain(&id);

    first.kill().unwrap();
    let out = first.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9), "{}", text(&out));
    // The lock file still names the dead process; the OS lock died with it.
    let lock = std::fs::read_to_string(env.departure_dir(&id).join("lock")).unwrap();
    assert!(lock.contains(&format!("pid {first_pid} ")), "{lock}");

    // Both commands take the stale lock over.
    let out = env.run(&["confirm", &id, "laptop"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = env.run(&["resume", &id, "--non-interactive"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (step, status) in env.step_statuses(&id) {
        assert_eq!(status, "done", "{step}");
    }
    for ((name, fake), uid) in systems.iter().zip(&ids) {
        assert_eq!(fake.count_on_user("PATCH", uid), 1, "{name} PATCH count");
    }
    assert_eq!(crm.count_on_user("DELETE", &ids[1]), 1);
    env.chain(&id);
    env.assert_evidence_verifies(&id);
}

/// Chosen so that each fake's request order (sequential per fake) meets every fault kind.
const SEED: u64 = 9;

#[test]
fn seeded_faults_are_retried_and_every_step_ends_correct() {
    let rt = fake_runtime();
    let names = ["hr", "crm", "wiki", "chat"];
    let fakes: Vec<FakeScim> = rt.block_on(async {
        let mut v = Vec::new();
        for n in names {
            v.push(FakeScim::start(&format!("{n}-tok")).await);
        }
        v
    });
    let systems: Vec<(&str, &FakeScim)> = names.iter().copied().zip(fakes.iter()).collect();
    let user = "carol@corp.example";
    let mut ids = Vec::new();
    for (i, (_, f)) in systems.iter().enumerate() {
        ids.push(f.add_user(user, true));
        f.chaos(Chaos {
            seed: SEED + i as u64,
            fraction: 0.3,
            hang: Duration::from_millis(1500),
            max_in_a_row: 2,
            kinds: Vec::new(),
        });
    }
    let env = env_for(&systems);
    env.write_runbook(&runbook(&systems, &["crm", "wiki"], 1, false));

    let t0 = Instant::now();
    let out = env.run(&[
        "--json",
        "start",
        user,
        "-r",
        "offboard.toml",
        "--non-interactive",
    ]);
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = env.departure_of(user).unwrap();
    for (step, status) in env.step_statuses(&id) {
        assert_eq!(status, "done", "{step}");
    }
    assert_eq!(fakes[0].user(&ids[0]).unwrap()["active"], false);
    assert!(fakes[1].user(&ids[1]).is_none());
    assert!(fakes[2].user(&ids[2]).is_none());
    assert_eq!(fakes[3].user(&ids[3]).unwrap()["active"], false);

    let injected: Vec<String> = fakes.iter().flat_map(|f| f.injected()).collect();
    let k = kinds(&env, &id);
    // Retries during the steps are journaled one by one; the preflight's are counted in its
    // own event.
    let preflight_retries: usize = env
        .chain(&id)
        .iter()
        .find_map(|e| match &e.record {
            offboard::journal::Record::Preflight { retries, .. } => Some(*retries as usize),
            _ => None,
        })
        .expect("a preflight event");
    let retried = k.iter().filter(|k| *k == "retried").count() + preflight_retries;
    assert!(!injected.is_empty(), "no fault was injected");
    assert!(
        retried >= injected.len().min(1),
        "faults were injected but no retry was journaled"
    );
    // Every injected fault made the client try again, and each retry is in the journal.
    assert_eq!(
        retried,
        injected.len(),
        "journaled retries differ from injected faults: {injected:#?}"
    );
    env.chain(&id);
    env.assert_evidence_verifies(&id);
    let mut by_kind = std::collections::BTreeMap::new();
    for f in &injected {
        *by_kind
            .entry(f.split(' ').next().unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(
        by_kind.keys().cloned().collect::<Vec<_>>(),
        ["Hang", "Reset", "ServerError", "TooMany", "Unavailable"],
        "the seed no longer exercises every fault kind: {injected:#?}"
    );
    eprintln!(
        "{} requests, {} faults injected {by_kind:?}, {retried} retries journaled, run took {took:?}",
        fakes.iter().map(|f| f.requests().len()).sum::<usize>(),
        injected.len()
    );
}

// ---- Never claim revoked without proof (identity-bound checks) ----

/// One SCIM system `hr` with a deactivate step, and `delete` adds its delete step.
fn one_scim(fake: &FakeScim, delete: bool) -> CliEnv {
    let systems = [("hr", fake)];
    let env = env_for(&systems);
    env.write_runbook(&runbook(
        &systems,
        if delete { &["hr"] } else { &[] },
        5,
        false,
    ));
    env
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

#[test]
fn someone_never_found_is_failed_and_neither_verify_nor_resume_call_it_revoked() {
    let rt = fake_runtime();
    let fake = rt.block_on(FakeScim::start("hr-tok"));
    let real = fake.add_user("alice@corp.example", true);
    let env = one_scim(&fake, true);
    // A Cyrillic "а" in place of the Latin "a": the provider knows nobody by that name.
    let typo = "\u{430}lice@corp.example";
    // The preflight finds nobody, says which character looks wrong, and cuts nothing.
    let out = env.run(&["start", typo, "-r", "offboard.toml", "--non-interactive"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("U+0430"), "{}", text(&out));
    assert!(text(&out).contains("--force"), "{}", text(&out));
    assert_eq!(env.departure_of(typo), None);
    assert_eq!(fake.count("PATCH") + fake.count("DELETE"), 0);
    // An operator who forces it gets failed steps, never done ones.
    let out = env.run(&[
        "--json",
        "start",
        typo,
        "-r",
        "offboard.toml",
        "--non-interactive",
        "--force",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let id = env.departure_of(typo).unwrap();
    for (step, status) in env.step_statuses(&id) {
        assert_ne!(status, "done", "{step}: {}", text(&out));
    }
    let error = json_of(&out)["steps"][0]["state"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("never found in system hr"),
        "says why: {error}"
    );
    assert!(error.contains("user = "), "and how to fix it: {error}");
    assert!(
        error.contains("U+0430"),
        "and points at the look-alike: {error}"
    );
    assert_eq!(fake.count("PATCH") + fake.count("DELETE"), 0);

    let out = env.run(&["--json", "verify", &id]);
    assert_eq!(out.status.code(), Some(3), "cannot confirm: {}", text(&out));
    let v = json_of(&out);
    assert_eq!(v["holding"], 0, "{v}");
    assert!(
        v["checks"][0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot confirm"),
        "{v}"
    );

    let out = env.run(&["resume", &id, "--non-interactive"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    for (step, status) in env.step_statuses(&id) {
        assert_ne!(
            status,
            "done",
            "resume turned {step} into done: {}",
            text(&out)
        );
    }
    // The real alice was never touched.
    assert_eq!(fake.user(&real).unwrap()["active"], true);
}

#[test]
fn a_rename_behind_the_tools_back_is_drift_not_deleted() {
    let rt = fake_runtime();
    let fake = rt.block_on(FakeScim::start("hr-tok"));
    let uid = fake.add_user("alice@corp.example", true);
    let env = one_scim(&fake, false);
    let out = env.run(&CliEnv::start_args("alice@corp.example"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = env.departure_of("alice@corp.example").unwrap();
    // The journal and the evidence name the account by its SCIM id.
    let chain = env.chain(&id);
    assert!(
        chain.iter().any(|e| matches!(&e.record,
            offboard::journal::Record::Applied { account: Some(a), .. } if a.id == uid)),
        "the applied event records the SCIM id"
    );
    let evidence = std::fs::read_to_string(env.evidence_path(&id)).unwrap();
    assert!(
        evidence.contains(&format!("\"id\": \"{uid}\"")),
        "{evidence}"
    );

    fake.rename_user(&uid, "alice.renamed@corp.example");
    fake.set_active(&uid, true);
    let out = env.run(&["--json", "verify", &id]);
    assert_eq!(out.status.code(), Some(4), "drift: {}", text(&out));
    let v = json_of(&out);
    assert_eq!(v["drift"][0], "hr-deactivate", "{v}");
}

#[test]
fn a_provider_whose_filters_find_nobody_cannot_make_verify_pass() {
    let rt = fake_runtime();
    let fake = rt.block_on(FakeScim::start("hr-tok"));
    let uid = fake.add_user("carol@corp.example", true);
    let env = one_scim(&fake, false);
    let out = env.run(&CliEnv::start_args("carol@corp.example"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = env.departure_of("carol@corp.example").unwrap();

    fake.blind_user_filter();
    let out = env.run(&["verify", &id]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "read by id, it holds: {}",
        text(&out)
    );
    fake.set_active(&uid, true);
    let out = env.run(&["verify", &id]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "read by id, it drifted: {}",
        text(&out)
    );
}

/// One sandbox step slow enough (apply `ms`, check half that) that a run is still going while
/// others try.
fn slow_sandbox_runbook(ms: u64) -> String {
    format!(
        "[runbook]\nname = \"Slow leaver\"\n\n[systems.idp]\nkind = \"sandbox\"\nlatency_ms = {ms}\n\n[[step]]\nid = \"idp-suspend\"\nlane = \"it\"\nsystem = \"idp\"\naction = \"suspend_user\"\n"
    )
}

fn holder_of(pid: u32) -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!("is being run by pid {pid} on host {host} since ")
}

#[test]
fn two_starts_for_one_person_at_the_same_instant_only_one_runs() {
    let env = CliEnv::new();
    env.write_runbook(&slow_sandbox_runbook(1500));
    let user = "dana@corp.example";
    let args = CliEnv::start_args(user);
    let a = env.spawn(&args);
    let b = env.spawn(&args);
    let (pa, pb) = (a.id(), b.id());
    let oa = wait_bounded(a, Duration::from_secs(60), &args);
    let ob = wait_bounded(b, Duration::from_secs(60), &args);
    let (winner, loser, winner_pid) = match (oa.status.code(), ob.status.code()) {
        (Some(0), Some(1)) => (&oa, &ob, pa),
        (Some(1), Some(0)) => (&ob, &oa, pb),
        _ => panic!(
            "expected one run and one refusal:\n{}\n{}",
            text(&oa),
            text(&ob)
        ),
    };
    let stderr = String::from_utf8_lossy(&loser.stderr);
    assert!(
        stderr.contains(&holder_of(winner_pid)),
        "the refusal does not name the run:\n{stderr}\n{}",
        text(winner)
    );
    // One departure, whose one suspend was applied once.
    let id = env.departure_of(user).expect("the winner's departure");
    let applies = env
        .chain(&id)
        .iter()
        .filter(|e| e.line().contains("\"kind\":\"apply_started\""))
        .count();
    assert_eq!(applies, 1);
    let (all, _) = env.departures();
    assert_eq!(all.len(), 1, "{all:?}");
}

#[test]
fn a_second_start_is_refused_while_the_first_runs_and_told_to_resume_once_it_is_cut_off() {
    let env = CliEnv::new();
    env.write_runbook(&slow_sandbox_runbook(3000));
    let user = "erin@corp.example";
    let mut first = env.spawn(&CliEnv::start_args(user));
    let id = wait_for_event(&env, user, "apply_started", &mut first);
    let holder = holder_of(first.id());

    // While it runs: refused with who runs it (exit 1), whatever the spelling, --new or not.
    for args in [
        CliEnv::start_args(user),
        CliEnv::start_args("  ERIN@corp.example"),
        [CliEnv::start_args(user), vec!["--new"]].concat(),
    ] {
        let out = env.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("departure {id} {holder}")),
            "{args:?} does not name the run ({holder}):\n{stderr}"
        );
        assert!(!stderr.contains("cut off"), "{stderr}");
    }
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first run ended while the others were refused; make the step slower"
    );
    let (all, _) = env.departures();
    assert_eq!(all.len(), 1, "a refused start created a departure: {all:?}");

    // Killed: nothing runs it now. That is a cut-off departure, to resume (exit 2).
    first.kill().unwrap();
    first.wait().unwrap();
    let out = env.run(&CliEnv::start_args(user));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("has a departure that was cut off: {id}"))
            && stderr.contains(&format!("resume it with `offboard resume {id}`")),
        "{stderr}"
    );
    assert!(!stderr.contains("is being run by"), "{stderr}");

    // --new starts a second departure that links the first.
    let out = env.run(&[CliEnv::start_args(user), vec!["--json", "--new"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let second = v["departure"].as_str().unwrap();
    assert_ne!(second, id);
    let facts = offboard::departure::facts(&env.chain(second))
        .unwrap()
        .clone();
    assert_eq!(facts.previous.as_deref(), Some(id.as_str()));
    env.assert_evidence_verifies(second);
}

// ---- Round trips: a lookup, a change, a read per step ----

/// What a SCIM request was, by method and the kind of path: `GET Users?filter`, `PATCH
/// Users/{id}`, `GET Groups?filter`…
fn request_kinds(fake: &FakeScim) -> std::collections::BTreeMap<String, usize> {
    let mut kinds = std::collections::BTreeMap::new();
    for r in fake.requests() {
        let rest = r.raw_path.trim_start_matches("/scim/v2/");
        let (collection, by_id) = match rest.split_once('/') {
            Some((c, _)) => (c, "/{id}"),
            None => (rest, ""),
        };
        let query = if r.filter.is_some() { "?filter" } else { "" };
        *kinds
            .entry(format!("{} {collection}{by_id}{query}", r.method))
            .or_default() += 1;
    }
    kinds
}

#[test]
fn a_departure_looks_each_person_up_once_then_changes_and_reads_by_id() {
    let rt = fake_runtime();
    let (hr, crm) = rt.block_on(async {
        (
            FakeScim::start("hr-tok").await,
            FakeScim::start("crm-tok").await,
        )
    });
    let hr_id = hr.add_user("dana@corp.example", true);
    let group = hr.add_group("Payroll", &[&hr_id]);
    let crm_id = crm.add_user("dana@corp.example", true);
    let systems = [("hr", &hr), ("crm", &crm)];
    let env = env_for(&systems);
    let mut rb = runbook(&systems, &["crm"], 5, false);
    rb.push_str(
        "\n[[step]]\nid = \"hr-groups\"\nlane = \"it\"\nsystem = \"hr\"\naction = \"remove_from_groups\"\n",
    );
    env.write_runbook(&rb);
    let out = env.run(&CliEnv::start_args("dana@corp.example"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let expected = |pairs: &[(&str, usize)]| -> std::collections::BTreeMap<String, usize> {
        pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
    };
    // hr: the preflight's lookup for each of its two steps, then deactivate: the pre-state read
    // by id (for rollback), the PATCH by id and the check's read by id; groups: the member search
    // (which is also the pre-state), the PATCH, the check's member search.
    assert_eq!(
        request_kinds(&hr),
        expected(&[
            ("GET Users?filter", 2),
            ("PATCH Users/{id}", 1),
            ("GET Users/{id}", 2),
            ("GET Groups?filter", 2),
            ("PATCH Groups/{id}", 1),
        ])
    );
    // crm: a lookup, a change and a read by id for each of deactivate and delete, and
    // deactivate's pre-state read by id.
    assert_eq!(
        request_kinds(&crm),
        expected(&[
            ("GET Users?filter", 2),
            ("PATCH Users/{id}", 1),
            ("DELETE Users/{id}", 1),
            ("GET Users/{id}", 3),
        ])
    );
    // Each change went to the account the preflight found, and each check read it.
    assert_eq!(hr.count_on_user("PATCH", &hr_id), 1);
    assert_eq!(hr.user(&hr_id).unwrap()["active"], false);
    assert!(hr.group_members(&group).is_empty());
    assert!(crm.user(&crm_id).is_none());
    let id = env.departure_of("dana@corp.example").unwrap();
    for (step, status) in env.step_statuses(&id) {
        assert_eq!(status, "done", "{step}: {}", text(&out));
    }
    // The account is journaled as identified before it is changed, as for a lookup by login.
    let identified = kinds(&env, &id)
        .iter()
        .filter(|k| *k == "identified")
        .count();
    assert_eq!(identified, 4);
    hr.assert_contract();
    crm.assert_contract();
}

#[test]
fn a_resume_looks_the_person_up_again_instead_of_trusting_the_starts_preflight() {
    let rt = fake_runtime();
    let hr = rt.block_on(FakeScim::start("hr-tok"));
    let old = hr.add_user("erin@corp.example", true);
    let systems = [("hr", &hr)];
    let env = env_for(&systems);
    // The deactivation waits for a manual step, so `start` preflights it but cannot run it.
    let mut rb = runbook(&systems, &[], 5, false);
    rb = rb.replace(
        "action = \"deactivate_user\"\n",
        "action = \"deactivate_user\"\nafter = [\"badge\"]\n",
    );
    rb.push_str(
        "\n[[step]]\nid = \"badge\"\nlane = \"facilities\"\nmanual = \"Collect the badge\"\nphase = \"cut\"\n",
    );
    env.write_runbook(&rb);
    let out = env.run(&CliEnv::start_args("erin@corp.example"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let id = env.departure_of("erin@corp.example").unwrap();
    assert_eq!(hr.count("PATCH"), 0, "{}", text(&out));

    // Meanwhile the account is replaced: the login now names another one.
    hr.remove_user(&old);
    let new = hr.add_user("erin@corp.example", true);
    let out = env.run(&["confirm", &id, "badge"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = env.run(&["resume", &id, "--non-interactive"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The resume found the account the login names now; the start's preflight id was not reused.
    assert_eq!(hr.user(&new).unwrap()["active"], false, "{}", text(&out));
    assert_eq!(hr.count_on_user("PATCH", &old), 0);
}
