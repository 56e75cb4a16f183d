//! offboard against systems that answer slowly, measured on the current machine:
//!
//! - one departure over 10 SCIM systems that each take 200 ms to answer a request, through
//!   `offboard start` (preflight, run, sealing): wall time / (3 × latency), 3 being the critical
//!   path of a step (lookup → apply → check); the goal is ≤ 1.2×;
//! - `evidence verify` of a 10,000-event journal (ms; the goal is under 100 ms).
//!
//! `cargo bench --bench latency` (add `-- --latency-ms 200 --systems 10 --events 10000` to change
//! the sizes). The systems are an in-process SCIM-like fake on 127.0.0.1 (benches/support/
//! scim_fake.rs) with a configurable latency and a token-bucket rate limit that answers 429 with
//! Retry-After when its budget is spent. Many departures at once: `cargo bench --bench bulk`.

use std::path::Path;
use std::time::{Duration, Instant};

use offboard::journal::{Event, GENESIS, Journal, Record};

#[path = "support/scim_fake.rs"]
mod scim_fake;
use scim_fake::{Bucket, Fake, System, TOKEN, serve};

struct Args {
    latency_ms: u64,
    systems: usize,
    events: usize,
}

fn args() -> Args {
    let mut a = Args {
        latency_ms: 200,
        systems: 10,
        events: 10_000,
    };
    let argv: Vec<String> = std::env::args().collect();
    for w in argv.windows(2) {
        let n = || w[1].parse().expect("a number");
        match w[0].as_str() {
            "--latency-ms" => a.latency_ms = n() as u64,
            "--systems" => a.systems = n(),
            "--events" => a.events = n(),
            _ => {}
        }
    }
    a
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "smoke run (cargo test, a debug build; the figures are not measurements): `cargo bench --bench latency` measures"
        );
    }
    let args = args();
    departure_over_slow_systems(&args);
    // Many departures at the systems' rate limits: `cargo bench --bench bulk`.
    verify_large_journal(&args);
}

/// One departure through `offboard start`, in this process, over `systems` slow systems.
fn departure_over_slow_systems(args: &Args) {
    const ROUNDS: usize = 3;
    let latency = Duration::from_millis(args.latency_ms);
    let dir = tempfile::tempdir().expect("temp dir");
    let fake = Fake::new(
        latency,
        (0..args.systems)
            .map(|n| {
                System::new(
                    (0..ROUNDS).map(|r| (format!("u{n}-{r}"), format!("leaver{r}@corp.example"))),
                    // Far above what one departure needs: this measures latency, not limits.
                    Bucket::new(60_000.0, 100.0),
                )
            })
            .collect(),
    );
    let base = serve(fake.clone());
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let mut runbook = String::from("[runbook]\nname = \"Latency bench\"\n\n");
    for n in 0..args.systems {
        runbook.push_str(&format!(
            "[systems.s{n}]\nkind = \"scim\"\nbase_url = \"{base}/{n}/scim/v2\"\ntoken = {{ file = \"{}\" }}\n\n",
            token_file.display()
        ));
    }
    for n in 0..args.systems {
        runbook.push_str(&format!(
            "[[step]]\nid = \"s{n}-deactivate\"\nlane = \"it\"\nsystem = \"s{n}\"\naction = \"deactivate_user\"\n\n"
        ));
    }
    let runbook_path = dir.path().join("offboard.toml");
    std::fs::write(&runbook_path, runbook).unwrap();
    let state_dir = dir.path().join("state");
    let state = offboard::state::StateDir::resolve(Some(&state_dir)).unwrap();
    state.ensure().unwrap();
    offboard::keys::generate(&state.default_key_path(), "bench", false).unwrap();

    let critical = 3.0 * latency.as_secs_f64();
    println!(
        "one departure over {} SCIM systems at {} ms latency (`offboard start`, in process)",
        args.systems, args.latency_ms
    );
    let mut ratios = Vec::new();
    for r in 0..ROUNDS {
        let before = fake.requests();
        let user = format!("leaver{r}@corp.example");
        let argv = [
            "offboard",
            "--quiet",
            "--state-dir",
            state_dir.to_str().unwrap(),
            "start",
            &user,
            "-r",
            runbook_path.to_str().unwrap(),
            "--non-interactive",
        ];
        let (t, began) = (Instant::now(), chrono::Utc::now());
        let code = quietly(|| offboard::run(argv.iter().map(Into::into)));
        let wall = t.elapsed();
        assert_eq!(code, 0, "offboard start exited {code}");
        let requests = fake.requests() - before;
        let ratio = wall.as_secs_f64() / critical;
        ratios.push(ratio);
        println!(
            "  run {}: {:>5.0} ms wall, {:.2}× the critical path (3 × latency = {:.0} ms); {:.1} requests per step; {}",
            r + 1,
            wall.as_secs_f64() * 1000.0,
            ratio,
            critical * 1000.0,
            requests as f64 / args.systems as f64,
            phases(&state, &user, began, wall)
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "  median {:.2}× (goal ≤ 1.2×); 429s received: {}",
        ratios[ROUNDS / 2],
        fake.throttled()
    );
}

/// Where the time of a departure went, from its journal's timestamps (ms resolution): until the
/// departure was recorded (runbook, preflight), the steps, and the end (sealing).
fn phases(
    state: &offboard::state::StateDir,
    user: &str,
    began: chrono::DateTime<chrono::Utc>,
    wall: Duration,
) -> String {
    let events = std::fs::read_dir(state.departures_dir())
        .unwrap()
        .filter_map(|d| {
            offboard::journal::Journal::read(&d.ok()?.path().join("journal.jsonl")).ok()
        })
        .find(|events| offboard::departure::facts(events).is_some_and(|f| f.user == user))
        .expect("the departure's journal");
    let at = |pick: &dyn Fn(&Record) -> bool| {
        events
            .iter()
            .filter(|e| pick(&e.record))
            .filter_map(Event::time)
            .map(|t| (t - began).num_milliseconds())
            .collect::<Vec<i64>>()
    };
    let recorded = at(&|r| matches!(r, Record::DepartureStarted(_)))[0];
    let applying = *at(&|r| matches!(r, Record::ApplyStarted { .. }))
        .iter()
        .min()
        .unwrap();
    let checked = *at(&|r| matches!(r, Record::Checked { .. }))
        .iter()
        .max()
        .unwrap();
    format!(
        "recorded at {recorded} ms (after the preflight), first apply at {applying} ms, last check at {checked} ms, done at {} ms",
        wall.as_millis()
    )
}

/// Run `f` with standard output sent to /dev/null (the command's summary table), restored after.
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let _ = std::io::stdout().flush();
    let null = std::fs::File::create("/dev/null").unwrap();
    // SAFETY: plain descriptor calls on descriptors this process owns.
    let saved = unsafe { libc::dup(1) };
    unsafe { libc::dup2(null.as_raw_fd(), 1) };
    let out = f();
    let _ = std::io::stdout().flush();
    unsafe {
        libc::dup2(saved, 1);
        libc::close(saved);
    }
    out
}

/// `evidence verify` of a sealed journal of `events` events.
fn verify_large_journal(args: &Args) {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = offboard::state::StateDir::resolve(Some(dir.path())).unwrap();
    state.ensure().unwrap();
    let mut runbook = String::from("[runbook]\nname = \"bench\"\n");
    for sys in 0..10 {
        runbook.push_str(&format!(
            "[systems.s{sys}]\nkind = \"sandbox\"\nlatency_ms = 0\n"
        ));
    }
    for i in 0..100 {
        runbook.push_str(&format!(
            "[[step]]\nid = \"step-{i}\"\nlane = \"it\"\nsystem = \"s{}\"\naction = \"suspend_user\"\n",
            i % 10
        ));
    }
    let rb = offboard::runbook::load_str(Path::new("bench.toml"), runbook)
        .unwrap_or_else(|e| panic!("{}", e.render(false)));
    let req = offboard::plan::DepartureRequest {
        id: "20261123t100000-bench-0001".into(),
        user: "bench@corp.example".into(),
        departure_type: offboard::departure::DepartureType::Involuntary,
        effective_at: chrono::Utc::now(),
        inputs: Default::default(),
        ticket: None,
        legal_hold: false,
    };
    let facts = offboard::plan::build(&rb, &req, state.root()).unwrap();
    let key = offboard::keys::generate(&state.default_key_path(), "bench", false).unwrap();

    // The journal is written directly (no fsync per event): only verifying it is measured.
    let path = state.journal_path(&facts.id);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut bytes = Vec::new();
    let mut prev = GENESIS.to_string();
    for seq in 0..args.events.saturating_sub(1) as u64 {
        let step = format!("step-{}", seq % 100);
        let record = match seq {
            0 => Record::DepartureStarted(Box::new(facts.clone())),
            _ => match seq % 3 {
                1 => Record::ApplyStarted { attempt: 1 },
                2 => Record::Applied {
                    changed: true,
                    summary: format!("suspended bench@corp.example in {step}"),
                    requests: Vec::new(),
                    account: None,
                    licences_freed: None,
                },
                _ => Record::Checked {
                    revoked: true,
                    observed: "suspended=true".into(),
                    context: "run".into(),
                    account: None,
                },
            },
        };
        let mut event = Event {
            seq,
            ts: "2026-11-23T10:00:00.000Z".into(),
            actor: "bench@host".into(),
            step: (seq > 0).then_some(step),
            record,
            prev,
            hash: String::new(),
        };
        event.hash = event.compute_hash();
        bytes.extend_from_slice(event.line().as_bytes());
        bytes.push(b'\n');
        prev = event.hash;
    }
    std::fs::write(&path, &bytes).unwrap();
    let mut journal = Journal::open(&path, "bench@host".into(), |_| {}).unwrap();
    let sealed = offboard::evidence::seal(&state, &mut journal, &key).unwrap();
    let events = journal.events().len();
    let size = std::fs::metadata(&sealed.json_path).unwrap().len();

    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let trust = offboard::evidence::Trust::Keys(vec![key.public_key().clone()]);
        let (t, cpu) = (Instant::now(), thread_cpu());
        let v = offboard::evidence::verify(&sealed.json_path, trust).unwrap();
        cpus.push(thread_cpu() - cpu);
        walls.push(t.elapsed());
        assert!(v.journal_checked);
    }
    walls.sort();
    cpus.sort();
    println!(
        "evidence verify of a {events}-event journal ({} KiB of evidence, the journal beside it compared): {:.1} ms wall, {:.1} ms of CPU (medians of 5; goal < 100 ms)",
        size / 1024,
        walls[2].as_secs_f64() * 1000.0,
        cpus[2].as_secs_f64() * 1000.0
    );
}

/// CPU time this thread has used (verify runs on it alone): steadier than wall time on a
/// machine other work shares.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
