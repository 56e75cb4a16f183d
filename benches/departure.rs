//! How long offboard's own work takes, apart from the providers: planning, running a large
//! departure against zero-latency sandbox systems (journal appends with fsync dominate), sealing
//! and verifying its evidence. `cargo bench --bench departure` (add `-- <steps>` to change the
//! size; default 200 automated steps on 10 systems).
//!
//! Numbers depend on the disk's fsync latency; compare runs on the same machine.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use offboard::departure::{DepartureState, DepartureType, PlannedStep, Status};
use offboard::engine::{Engine, Reporter};
use offboard::journal::{Journal, Record};
use offboard::providers::RetryNote;

struct Quiet;

impl Reporter for Quiet {
    fn wave(&self, _: &str, _: &[&PlannedStep]) {}
    fn started(&self, _: &PlannedStep, _: &str) {}
    fn retry(&self, _: &PlannedStep, _: &RetryNote) {}
    fn finished(&self, _: &PlannedStep, _: Status, _: &str) {}
}

fn runbook(steps: usize) -> String {
    let actions = [
        "suspend_user",
        "revoke_sessions",
        "reset_mfa",
        "remove_seat",
        "lock_device",
    ];
    let mut s = String::from("[runbook]\nname = \"bench\"\n");
    for sys in 0..10 {
        s.push_str(&format!(
            "[systems.s{sys}]\nkind = \"sandbox\"\nlatency_ms = 0\nmax_concurrency = 8\n"
        ));
    }
    for i in 0..steps {
        s.push_str(&format!(
            "[[step]]\nid = \"step-{i}\"\nlane = \"it\"\nsystem = \"s{}\"\naction = \"{}\"\n",
            i % 10,
            actions[i % actions.len()]
        ));
        if i >= 10 {
            s.push_str(&format!("after = [\"step-{}\"]\n", i - 10));
        }
    }
    s
}

fn main() {
    let steps: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("temp dir");
    let state = offboard::state::StateDir::resolve(Some(dir.path())).unwrap();
    state.ensure().unwrap();

    let t = Instant::now();
    let rb = offboard::runbook::load_str(Path::new("bench.toml"), runbook(steps))
        .unwrap_or_else(|e| panic!("{}", e.render(false)));
    let load = t.elapsed();

    let t = Instant::now();
    let req = offboard::plan::DepartureRequest {
        id: "20261123t100000-bench-0001".into(),
        user: "bench@corp.example".into(),
        departure_type: DepartureType::Involuntary,
        effective_at: chrono::Utc::now(),
        inputs: Default::default(),
        ticket: None,
        legal_hold: false,
    };
    let facts = offboard::plan::build(&rb, &req, state.root()).unwrap();
    let plan = t.elapsed();

    let key = offboard::keys::generate(&state.default_key_path(), "bench", false).unwrap();
    let path = state.journal_path(&facts.id);
    let journal = Journal::create(
        &path,
        "bench".into(),
        Record::DepartureStarted(Box::new(facts.clone())),
    )
    .unwrap();
    let journal = Arc::new(Mutex::new(journal));
    let engine = Engine::connect(journal.clone(), &facts, state.root(), "run");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    rt.block_on(engine.run(&Quiet, None)).unwrap();
    let run = t.elapsed();
    let events = journal.lock().unwrap().events().len();
    let done = DepartureState::replay(journal.lock().unwrap().events())
        .unwrap()
        .is_complete();
    assert!(done, "the departure did not complete");

    let t = Instant::now();
    let sealed = offboard::evidence::seal(&state, &mut journal.lock().unwrap(), &key).unwrap();
    let seal = t.elapsed();
    let size = std::fs::metadata(&sealed.json_path).unwrap().len();

    let t = Instant::now();
    let trust = offboard::evidence::Trust::Keys(vec![key.public_key().clone()]);
    offboard::evidence::verify(&sealed.json_path, trust).unwrap();
    let verify = t.elapsed();

    println!("departure of {steps} automated steps on 10 sandbox systems (zero latency)");
    println!("  load + validate runbook   {:>9.2?}", load);
    println!("  plan                      {:>9.2?}", plan);
    println!(
        "  run                       {:>9.2?}  ({events} journal events, {:.0} fsync'd events/s)",
        run,
        events as f64 / run.as_secs_f64()
    );
    println!(
        "  seal evidence             {:>9.2?}  ({} KiB)",
        seal,
        size / 1024
    );
    println!("  verify evidence           {:>9.2?}", verify);
}
