//! What several commands share: finding the runbook, turning flags into a departure request,
//! finding a departure, running and summarising one.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use super::Ctx;
use crate::cli::DepartureInput;
use crate::departure::{DepartureFacts, DepartureState};
use crate::engine::{Engine, Prompter, Reporter};
use crate::exit::{CliError, Exit};
use crate::journal::{self, Event, Journal, Record};
use crate::plan::DepartureRequest;
use crate::runbook::Runbook;
use crate::state::{self, DepartureLock};
use crate::ui::{progress::Progress, prompt::Checklist, safe, table};

/// Load the runbook named by `-r`, `OFFBOARD_RUNBOOK` or `./offboard.toml`.
pub fn load_runbook(ctx: &Ctx, path: Option<&Path>) -> Result<Runbook> {
    let path: PathBuf = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| "offboard.toml".into());
    if !path.exists() {
        return Err(
            CliError::usage(format!("runbook {} not found", path.display()))
                .hint("pass one with -r FILE (or set OFFBOARD_RUNBOOK); examples are in runbooks/")
                .hint("to see a whole departure without one, run `offboard demo`")
                .into(),
        );
    }
    crate::runbook::load_file(&path).map_err(|e| invalid_runbook(ctx, e))
}

/// A runbook error, rendered with its snippets, as an exit-2 error.
pub fn invalid_runbook(ctx: &Ctx, e: crate::runbook::RunbookError) -> anyhow::Error {
    let mut err = CliError::new(Exit::Usage, anyhow::anyhow!(e.render(ctx.printer.color)));
    err.rendered = true;
    err.into()
}

/// Parse `KEY=VALUE`.
pub fn key_value(s: &str, flag: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(CliError::usage(format!("{flag} {s:?} is not KEY=VALUE"))
            .hint(format!("e.g. {flag} manager=bob@corp.example"))
            .into()),
    }
}

/// Ask a yes/no question at the terminal.
pub fn ask_yes_no(question: &str, default: bool) -> Result<bool> {
    dialoguer::Confirm::new()
        .with_prompt(question)
        .default(default)
        .interact()
        .context("reading the answer from the terminal")
}

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Turn the command line into a departure request: validate `--set` against the runbook's
/// `[inputs]`, apply defaults, and ask for what is missing when a person is there to answer.
pub fn departure_request(
    ctx: &Ctx,
    input: &DepartureInput,
    runbook: &Runbook,
    interactive: bool,
) -> Result<DepartureRequest> {
    let declared = &runbook.file.inputs;
    let mut inputs = BTreeMap::new();
    for kv in &input.set {
        let (k, v) = key_value(kv, "--set")?;
        if !declared.contains_key(&k) {
            let known: Vec<&str> = declared.keys().map(String::as_str).collect();
            return Err(CliError::usage(format!(
                "--set {k}: the runbook declares no input named {k:?}"
            ))
            .hint(if known.is_empty() {
                "this runbook declares no [inputs]".to_string()
            } else {
                format!("declared inputs: {}", known.join(", "))
            })
            .into());
        }
        inputs.insert(k, v);
    }
    for (name, def) in declared {
        if inputs.contains_key(name) {
            continue;
        }
        if let Some(d) = &def.default {
            inputs.insert(name.clone(), d.clone());
            continue;
        }
        if interactive {
            let prompt = def.prompt.clone().unwrap_or_else(|| name.clone());
            let v = Checklist::new(&ctx.printer).ask_input(name, &prompt, def.required)?;
            if !v.trim().is_empty() {
                inputs.insert(name.clone(), v.trim().to_string());
            }
        } else if def.required {
            return Err(CliError::usage(format!(
                "the runbook needs input {name:?} ({})",
                def.prompt.as_deref().unwrap_or("no description")
            ))
            .hint(format!("pass --set {name}=VALUE"))
            .into());
        }
    }
    let now = journal::now();
    let effective_at = match &input.effective_at {
        Some(s) => parse_time(s)?,
        None => now,
    };
    if input.user.trim().is_empty() {
        return Err(CliError::usage("the user is empty").into());
    }
    Ok(DepartureRequest {
        id: state::new_departure_id(&input.user, now),
        user: input.user.clone(),
        departure_type: input.departure_type,
        effective_at,
        inputs,
        ticket: input.ticket.clone(),
        legal_hold: input.legal_hold,
    })
}

pub fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            CliError::usage(format!("--effective-at {s:?} is not a time: {e}"))
                .hint("use RFC 3339, e.g. 2026-11-30T17:00:00Z or 2026-11-30T18:00:00+01:00")
                .into()
        })
}

/// Find a departure by id or user, or explain how to find one.
pub fn find_departure(ctx: &Ctx, wanted: &str) -> Result<(String, Vec<Event>)> {
    match ctx.state.find_departure(wanted)? {
        Some(found) => Ok(found),
        None => Err(CliError::usage(format!(
            "no departure {} in {}",
            safe(wanted),
            ctx.state.root().display()
        ))
        .hint("`offboard status` lists departures; pass --state-dir if they live elsewhere")
        .into()),
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// A departure being driven by this process: its lock and journal.
pub struct Driving {
    pub lock: DepartureLock,
    pub journal: Arc<Mutex<Journal>>,
}

impl Driving {
    /// Lock and open an existing departure's journal.
    pub fn open(ctx: &Ctx, id: &str) -> Result<Driving> {
        let lock = DepartureLock::acquire(&ctx.state.departure_dir(id))?;
        let printer = ctx.printer.clone();
        let journal = Journal::open(&ctx.state.journal_path(id), actor(ctx), |n| {
            printer.warn(format!(
                "the journal ended in a torn line ({n} bytes) from an interrupted write; it was set aside and the journal continues from the last complete event"
            ))
        })?;
        Ok(Driving {
            lock,
            journal: Arc::new(Mutex::new(journal)),
        })
    }

    pub fn state(&self) -> DepartureState {
        let j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        DepartureState::replay(j.events()).expect("departure journal")
    }

    pub fn append(&self, step: Option<&str>, record: Record) -> Result<()> {
        let mut j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        j.append(step, record)?;
        Ok(())
    }

    /// Write and sign a new evidence revision.
    pub fn seal(
        &self,
        ctx: &Ctx,
        key: &crate::keys::SigningKey,
    ) -> Result<crate::evidence::Sealed> {
        let mut j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        crate::evidence::seal(&ctx.state, &mut j, key).context("writing the signed evidence")
    }
}

/// Who the journal records as acting: the person (`--by`, `OFFBOARD_OPERATOR`) with the login
/// beside it, e.g. `Jane Doe (root@host)`; the login alone when no one is named.
pub fn actor(ctx: &Ctx) -> String {
    let login = journal::local_actor();
    match &ctx.operator {
        Some(person) => format!("{person} ({login})"),
        None => login,
    }
}

/// Load the signing key (creating the default one on first use, and saying where).
pub fn signing_key(ctx: &Ctx) -> Result<crate::keys::SigningKey> {
    ctx.state.ensure()?;
    let (key, created) = crate::keys::load_or_create(ctx.global.key.as_deref(), &ctx.state)?;
    if created {
        ctx.printer.info(format!(
            "Created the evidence signing key {} ({}). Back it up; auditors verify with its public half (`offboard keys show`).",
            key.path().display(),
            key.fingerprint()
        ));
    }
    Ok(key)
}

/// Start a new departure from its plan and drive it.
pub fn start_departure(
    ctx: &Ctx,
    facts: DepartureFacts,
    interactive: bool,
    command: &str,
) -> Result<Exit> {
    let key = signing_key(ctx)?;
    let id = facts.id.clone();
    let dir = ctx.state.departure_dir(&id);
    state::create_private_dir(&ctx.state.departures_dir())?;
    let lock = DepartureLock::acquire(&dir)?;
    let mut journal = Journal::create(
        &ctx.state.journal_path(&id),
        actor(ctx),
        Record::DepartureStarted(Box::new(facts)),
    )?;
    journal.append(
        None,
        Record::RunStarted {
            command: command.into(),
        },
    )?;
    let driving = Driving {
        lock,
        journal: Arc::new(Mutex::new(journal)),
    };
    drive(ctx, &driving, &key, interactive, "run")
}

/// Run (or continue) a departure, then seal the evidence and print the summary.
pub fn drive(
    ctx: &Ctx,
    driving: &Driving,
    key: &crate::keys::SigningKey,
    interactive: bool,
    context: &'static str,
) -> Result<Exit> {
    let state = driving.state();
    let facts = &state.facts;
    let p = &ctx.printer;
    let manual = facts.steps.iter().filter(|s| s.is_manual()).count();
    p.info(format!(
        "{} {} for {} ({}), runbook \"{}\": {} automated, {} manual step{}",
        p.bold("Departure"),
        facts.id,
        safe(&facts.user),
        facts.departure_type.as_str(),
        safe(&facts.runbook.name),
        facts.steps.len() - manual,
        manual,
        if manual == 1 { "" } else { "s" }
    ));
    if facts.legal_hold {
        p.info(p.yellow("Legal hold: destructive steps are blocked and recorded."));
    }
    let engine = Engine::connect(driving.journal.clone(), facts, ctx.state.root(), context);
    let progress = Progress::new(p);
    let mut checklist = Checklist::new(p);
    let prompter: Option<&mut dyn Prompter> = if interactive {
        Some(&mut checklist)
    } else {
        None
    };
    let rt = runtime()?;
    let interrupted: Option<String> = rt.block_on(async {
        // Listen before the first step starts, so an early signal is never the default (abrupt) one.
        let mut stop = StopSignals::listen()?;
        let waker = PromptWaker::start()?;
        tokio::select! {
            biased;
            reason = stop.recv() => {
                tracing::info!("stopping on {reason}");
                Ok(Some(reason.to_string()))
            }
            r = engine.run(&progress, prompter) => match r {
                Ok(()) => Ok(None),
                // Ctrl-C at a checklist prompt arrives as an interrupted read, and so does a
                // signal from elsewhere while a question waits (the waker interrupts the read).
                Err(e) if is_interrupted_read(&e) => Ok(Some(waker.reason().await.to_string())),
                Err(e) => Err(e),
            },
        }
    })?;
    drop(rt);
    progress.pause();
    if let Some(reason) = interrupted {
        driving.append(None, Record::Interrupted { reason })?;
        let sealed = driving.seal(ctx, key)?;
        p.warn(format!(
            "interrupted. The journal is consistent; evidence so far: {}",
            sealed.json_path.display()
        ));
        p.info(format!("Continue with: offboard resume {}", facts.id));
        return Ok(Exit::Interrupted);
    }
    let state = driving.state();
    driving.append(
        None,
        Record::RunFinished {
            complete: state.is_complete(),
        },
    )?;
    let sealed = driving.seal(ctx, key)?;
    Ok(summarise(ctx, &driving.state(), &sealed))
}

/// SIGINT (Ctrl-C), SIGTERM and SIGHUP (the terminal or SSH session went away), registered as
/// soon as this is created.
pub struct StopSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Must be called inside the runtime.
    pub fn listen() -> Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            int: signal(SignalKind::interrupt()).context("listening for Ctrl-C")?,
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            hup: signal(SignalKind::hangup()).context("listening for SIGHUP")?,
        })
    }

    pub async fn recv(&mut self) -> &'static str {
        // SIGINT last: a prompt interrupted by another signal raises SIGINT itself.
        tokio::select! {
            biased;
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Makes a stop signal end a checklist question that is waiting for a key.
///
/// The question blocks the thread that would notice the signal, so without this `kill <pid>`
/// (or SIGINT from another process) at a question would take effect only once someone answered
/// it. After a stop signal, and for as long as a question is on screen, this sends SIGUSR1 to
/// the thread that asks: its `poll()` for the next key returns EINTR (never restarted on Linux),
/// which the prompt reports as an interrupted read, and the run stops as for Ctrl-C. It repeats
/// every 50 ms because a wake-up landing just before the prompt starts waiting is lost.
pub struct PromptWaker {
    task: tokio::task::JoinHandle<()>,
    reason: Arc<std::sync::OnceLock<&'static str>>,
}

impl PromptWaker {
    /// Must be called inside the runtime, on the thread that asks the questions.
    pub fn start() -> Result<PromptWaker> {
        use tokio::signal::unix::{SignalKind, signal};
        // SAFETY: pthread_self has no preconditions; the main thread outlives the runtime.
        let asker = unsafe { libc::pthread_self() };
        let mut signals = StopSignals::listen()?;
        // A handler must exist for SIGUSR1, or the wake-up would kill the process; tokio's
        // records it and nothing waits on it.
        let usr1 = signal(SignalKind::user_defined1()).context("listening for SIGUSR1")?;
        let reason = Arc::new(std::sync::OnceLock::new());
        let seen = reason.clone();
        let task = tokio::spawn(async move {
            let _usr1 = usr1;
            let _ = seen.set(signals.recv().await);
            loop {
                if crate::ui::prompt::asking() {
                    // SAFETY: `asker` is a live thread of this process (it owns the runtime
                    // this task runs on), and SIGUSR1 has a handler.
                    unsafe {
                        libc::pthread_kill(asker, libc::SIGUSR1);
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        });
        Ok(PromptWaker { task, reason })
    }

    /// Why a question's read was interrupted: the stop signal, once the waker has seen it (a
    /// signal can end the read before the runtime has passed it on), else Ctrl-C typed at it.
    pub async fn reason(&self) -> &'static str {
        for _ in 0..20 {
            if let Some(r) = self.reason.get() {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        "SIGINT (Ctrl-C at a question)"
    }
}

impl Drop for PromptWaker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_interrupted_read(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::Interrupted)
            || c.downcast_ref::<dialoguer::Error>()
                .is_some_and(|dialoguer::Error::IO(io)| {
                    io.kind() == std::io::ErrorKind::Interrupted
                })
    })
}

/// Print the end-of-run table, the evidence path and what to do next; choose the exit status.
pub fn summarise(ctx: &Ctx, state: &DepartureState, sealed: &crate::evidence::Sealed) -> Exit {
    let p = &ctx.printer;
    let now = journal::now();
    p.result(table::steps(p, state, now));
    let complete = state.is_complete();
    let counts = state.counts();
    let open: usize = counts
        .iter()
        .filter(|(s, _)| !s.is_settled())
        .map(|(_, n)| n)
        .sum();
    p.result(format!("Evidence: {}", sealed.json_path.display()));
    p.result(format!("Signature: {}", sealed.sig_path.display()));
    if complete {
        p.info(p.green("Complete: every step is done or not applicable."));
    } else {
        p.info(p.yellow(&format!("Incomplete: {open} step(s) still open.")));
        // Automated steps that did not finish (failed, unconfirmed, waiting on one that did
        // not): `resume` re-checks each and applies it again if access still exists.
        let retry: Vec<&str> = state
            .ordered()
            .filter(|(p, s)| !p.is_manual() && !p.held && !s.status().is_settled())
            .map(|(p, _)| p.id.as_str())
            .collect();
        if !retry.is_empty() {
            p.info(format!(
                "  retry {}:{}offboard resume {}",
                safe(&retry.join(", ")),
                " ".repeat(
                    22usize
                        .saturating_sub(retry.join(", ").chars().count())
                        .max(2)
                ),
                state.facts.id
            ));
        }
        let manual_open = state
            .ordered()
            .any(|(p, s)| p.is_manual() && !s.status().is_settled());
        if manual_open {
            p.info(format!(
                "  confirm manual steps later:  offboard confirm {} <STEP> [--field k=v]",
                state.facts.id
            ));
        }
        p.info(format!(
            "  see where it stands:         offboard status {}",
            state.facts.id
        ));
    }
    p.json_result(&serde_json::json!({
        "departure": state.facts.id,
        "user": state.facts.user,
        "complete": complete,
        "evidence": sealed.json_path,
        "signature": sealed.sig_path,
        "revision": sealed.revision,
        "steps": steps_json(state),
    }));
    if complete { Exit::Ok } else { Exit::Incomplete }
}

pub fn steps_json(state: &DepartureState) -> serde_json::Value {
    serde_json::Value::Array(
        state
            .ordered()
            .map(|(p, s)| {
                serde_json::json!({
                    "id": p.id,
                    "lane": p.lane,
                    "phase": p.phase,
                    "owner": p.owner,
                    "deadline": p.deadline,
                    "status": s.status(),
                    "manual": p.is_manual(),
                    "state": s,
                })
            })
            .collect(),
    )
}
