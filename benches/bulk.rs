//! Layoff day, measured on the current machine: `offboard start --from people.csv` (the release
//! binary, run as a child process) offboards ROWS people from SYSTEMS SCIM systems, each limited
//! to PER_MINUTE requests a minute. The systems are the in-process fake of
//! benches/support/scim_fake.rs: every request waits the latency, then spends a token of its
//! system's token bucket (PER_MINUTE a minute, BURST at once) or is answered 429 with
//! Retry-After. The runbook declares the same `rate_limit` and a `max_concurrency`.
//!
//! It prints, per system, the rate achieved against the limit (goal ≥ 0.9), the total wall time
//! against its lower bound (a system's requests / its limit), the 429s received and the steps
//! that failed (goal 0), and the child's peak RSS. Then it runs ROWS_RSS rows again in a fast
//! mode (no latency, a limit of 600,000/min) only to measure peak RSS (goal < 200 MB at 10,000
//! rows): the kernel's ru_maxrss of the offboard process, read with wait4.
//!
//! `cargo bench --bench bulk -- --rows 1000 --systems 5 --per-minute 600` (defaults; also
//! `--latency-ms 200 --burst 10 --max-concurrency 4 --parallel 8 --rss-rows 10000`, and
//! `--rss-rows 0` to skip that run; `--declare-per-minute N` makes the runbook's `rate_limit`
//! differ from the fake's limit). `--quick` is a smoke run of about a minute (50 rows,
//! 1,000 for RSS). A 1,000-row run at 600/min takes at least 5 minutes: 3 requests per step.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/scim_fake.rs"]
mod scim_fake;
use scim_fake::{Bucket, Fake, System, TOKEN, serve};

#[derive(Clone)]
struct Args {
    rows: usize,
    systems: usize,
    per_minute: u32,
    /// The runbook's `rate_limit` (per minute), when it is not `per_minute`.
    declared: Option<u32>,
    latency_ms: u64,
    burst: u32,
    max_concurrency: u32,
    parallel: u32,
    rss_rows: usize,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // as a smoke test of the bench (a debug build: its figures are not measurements).
    let smoke = !argv.iter().any(|a| a == "--bench");
    if smoke {
        println!(
            "smoke run (cargo test, a debug build; the figures are not measurements): `cargo bench --bench bulk` measures"
        );
    }
    let quick = smoke || argv.iter().any(|a| a == "--quick");
    let mut a = Args {
        rows: if smoke {
            20
        } else if quick {
            50
        } else {
            1000
        },
        systems: 5,
        per_minute: 600,
        declared: None,
        latency_ms: 200,
        burst: 10,
        max_concurrency: 4,
        parallel: 8,
        rss_rows: if smoke {
            200
        } else if quick {
            1000
        } else {
            10_000
        },
    };
    for w in argv.windows(2) {
        let n = || -> u64 {
            w[1].parse()
                .unwrap_or_else(|_| panic!("{} takes a number, not {:?}", w[0], w[1]))
        };
        match w[0].as_str() {
            "--rows" => a.rows = n() as usize,
            "--systems" => a.systems = n() as usize,
            "--per-minute" => a.per_minute = n() as u32,
            "--declare-per-minute" => a.declared = Some(n() as u32),
            "--latency-ms" => a.latency_ms = n(),
            "--burst" => a.burst = n() as u32,
            "--max-concurrency" => a.max_concurrency = n() as u32,
            "--parallel" => a.parallel = n() as u32,
            "--rss-rows" => a.rss_rows = n() as usize,
            _ => {}
        }
    }
    assert!(a.rows > 0 && a.systems > 0 && a.per_minute > 0 && a.burst > 0);
    assert!(
        a.declared != Some(0),
        "--declare-per-minute takes 1 or more"
    );
    a
}

/// What one batch run gave.
struct Measured {
    exit: i32,
    wall: Duration,
    /// ru_maxrss of the offboard process, bytes.
    peak_rss: u64,
    seen: Vec<scim_fake::Seen>,
    steps: usize,
    failed_steps: usize,
    /// Failed steps whose detail names a 429 / throttling.
    failed_by_429: usize,
    /// Departure outcomes, e.g. ("complete", 1000).
    outcomes: Vec<(String, usize)>,
}

fn main() {
    let args = args();
    let m = batch(&args);
    let limit = args.per_minute as f64 / 60.0;
    println!(
        "{} departures × {} SCIM systems, each limited to {}/min by the fake's token bucket ({:.1}/s, burst {}); runbook rate_limit = \"{}/min\", max_concurrency = {}; {} ms latency; --parallel {}",
        args.rows,
        args.systems,
        args.per_minute,
        limit,
        args.burst,
        args.declared.unwrap_or(args.per_minute),
        args.max_concurrency,
        args.latency_ms,
        args.parallel
    );
    println!(
        "  `offboard start --from people.csv` exited {} after {:.1} s: {}",
        m.exit,
        m.wall.as_secs_f64(),
        outcomes(&m.outcomes)
    );
    let mut worst = f64::INFINITY;
    for (n, s) in m.seen.iter().enumerate() {
        let served = s.requests - s.throttled;
        let rate = served as f64 / s.span.as_secs_f64().max(0.001);
        worst = worst.min(rate / limit);
        println!(
            "  s{n}: {} requests ({:.2} per row), {} answered 429; {:.2}/s from its first to its last request ({:.1} s) = {:.3} of the limit, {:.3} over the whole wall; busiest second {}",
            s.requests,
            s.requests as f64 / args.rows as f64,
            s.throttled,
            rate,
            s.span.as_secs_f64(),
            rate / limit,
            served as f64 / m.wall.as_secs_f64() / limit,
            s.busiest_second
        );
    }
    let most = m
        .seen
        .iter()
        .map(|s| s.requests - s.throttled)
        .max()
        .unwrap_or(0);
    let bound = most as f64 / limit;
    println!(
        "  achieved rate / limit: {worst:.3} at worst (goal ≥ 0.9); total wall / lower bound: {:.1} s / {bound:.1} s ({most} requests at {limit:.1}/s) = {:.3}×",
        m.wall.as_secs_f64(),
        m.wall.as_secs_f64() / bound
    );
    println!(
        "  429s received: {}; steps failed: {} of {}, {} of them because of a 429 (goal 0); peak RSS of the offboard process: {:.1} MB",
        m.seen.iter().map(|s| s.throttled).sum::<usize>(),
        m.failed_steps,
        m.steps,
        m.failed_by_429,
        m.peak_rss as f64 / 1e6
    );

    if args.rss_rows > 0 {
        let fast = Args {
            rows: args.rss_rows,
            per_minute: 600_000,
            declared: None,
            latency_ms: 0,
            burst: 10_000,
            ..args.clone()
        };
        let r = batch(&fast);
        println!(
            "peak RSS at {} rows × {} systems (fast mode: 0 ms latency, limit {}/min; --parallel {}; ru_maxrss of the offboard child from wait4): {:.1} MB (goal < 200 MB); exited {} after {:.1} s: {}",
            fast.rows,
            fast.systems,
            fast.per_minute,
            fast.parallel,
            r.peak_rss as f64 / 1e6,
            r.exit,
            r.wall.as_secs_f64(),
            outcomes(&r.outcomes)
        );
    }
}

fn outcomes(o: &[(String, usize)]) -> String {
    o.iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One batch: the fake, a runbook, a CSV, and `offboard start --from` as a child process.
fn batch(args: &Args) -> Measured {
    let dir = tempfile::tempdir().expect("temp dir");
    let login = |i: usize| format!("leaver{i:05}@corp.example");
    let fake = Fake::new(
        Duration::from_millis(args.latency_ms),
        (0..args.systems)
            .map(|n| {
                System::new(
                    (0..args.rows).map(|i| (format!("u{n}-{i}"), login(i))),
                    Bucket::new(args.per_minute as f64, args.burst as f64),
                )
            })
            .collect(),
    );
    let base = serve(fake.clone());
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let mut runbook = String::from("[runbook]\nname = \"Bulk bench\"\n\n");
    for n in 0..args.systems {
        runbook.push_str(&format!(
            "[systems.s{n}]\nkind = \"scim\"\nbase_url = \"{base}/{n}/scim/v2\"\ntoken = {{ file = \"{}\" }}\nrate_limit = \"{}/min\"\nmax_concurrency = {}\n\n",
            token_file.display(),
            args.declared.unwrap_or(args.per_minute),
            args.max_concurrency
        ));
    }
    for n in 0..args.systems {
        runbook.push_str(&format!(
            "[[step]]\nid = \"s{n}-deactivate\"\nlane = \"it\"\nsystem = \"s{n}\"\naction = \"deactivate_user\"\n\n"
        ));
    }
    let runbook_path = dir.path().join("offboard.toml");
    std::fs::write(&runbook_path, runbook).unwrap();
    // A mix, as on a real layoff day: one row in four involuntary (they start first).
    let mut csv = String::from("user,type\n");
    for i in 0..args.rows {
        let kind = if i % 4 == 0 {
            "involuntary"
        } else {
            "voluntary"
        };
        csv.push_str(&format!("{},{kind}\n", login(i)));
    }
    let csv_path = dir.path().join("people.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let state_dir = dir.path().join("state");
    let state = offboard::state::StateDir::resolve(Some(&state_dir)).unwrap();
    state.ensure().unwrap();
    offboard::keys::generate(&state.default_key_path(), "bench", false).unwrap();

    let events_path = dir.path().join("events.jsonl");
    let log_path = dir.path().join("stderr.log");
    let t = Instant::now();
    // Reaped by `wait_with_rusage` (wait4, which also gives its peak RSS), not `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(env!("CARGO_BIN_EXE_offboard"))
        .args(["--json", "--state-dir"])
        .arg(&state_dir)
        .args(["start", "--from"])
        .arg(&csv_path)
        .arg("-r")
        .arg(&runbook_path)
        .args(["--parallel", &args.parallel.to_string(), "--no-attach"])
        .env("HOME", dir.path())
        .env_remove("OFFBOARD_STATE_DIR")
        .env_remove("OFFBOARD_SIGNING_KEY")
        .env_remove("OFFBOARD_RUNBOOK")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&events_path).unwrap())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("offboard runs");
    let (exit, peak_rss) = wait_with_rusage(child.id() as libc::pid_t);
    let wall = t.elapsed();
    if exit != 0 && exit != 3 {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        eprintln!(
            "offboard exited {exit}; the end of its stderr:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }

    let mut m = Measured {
        exit,
        wall,
        peak_rss,
        seen: fake.seen(),
        steps: 0,
        failed_steps: 0,
        failed_by_429: 0,
        outcomes: Vec::new(),
    };
    tally(&events_path, &mut m);
    m
}

/// Count step outcomes and departure endings from the `--json` event stream.
fn tally(events: &Path, m: &mut Measured) {
    let text = std::fs::read_to_string(events).unwrap();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        match v["event"].as_str() {
            Some("step") => {
                m.steps += 1;
                if v["status"] != "done" {
                    m.failed_steps += 1;
                    let detail = v["detail"].as_str().unwrap_or_default().to_lowercase();
                    if detail.contains("429")
                        || detail.contains("too many")
                        || detail.contains("throttl")
                        || detail.contains("rate limit")
                    {
                        m.failed_by_429 += 1;
                    }
                }
            }
            Some("departure") => {
                *outcomes
                    .entry(v["outcome"].as_str().unwrap_or("?").to_string())
                    .or_default() += 1;
            }
            _ => {}
        }
    }
    m.outcomes = outcomes.into_iter().collect();
}

/// Wait for the child and return its exit code (128 + signal when killed) and its peak RSS in
/// bytes (ru_maxrss, which Linux gives in KiB).
fn wait_with_rusage(pid: libc::pid_t) -> (i32, u64) {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped; both pointers are valid for the call.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    (code, usage.ru_maxrss as u64 * 1024)
}
