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
use crate::evidence::Trust;
use crate::exit::{CliError, Exit};
use crate::integrity::Tamper;
use crate::journal::{self, Event, Journal, Record};
use crate::person::PersonLock;
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

/// Find a departure by id or user, or explain how to find one. A journal whose chain is broken
/// is evidence-invalid (exit 5), whatever the command.
pub fn find_departure(ctx: &Ctx, wanted: &str) -> Result<(String, Vec<Event>)> {
    let found = ctx.state.find_departure(wanted).map_err(|e| {
        let Some(chain) = e
            .chain()
            .find_map(|c| c.downcast_ref::<journal::ChainError>())
        else {
            return e;
        };
        damaged_journal(format!("{e:#}"), chain)
    })?;
    // Looked up by user: a newer departure of theirs whose journal is damaged must not be
    // passed over for an older one (nor for none at all).
    let by_user = found.as_ref().is_none_or(|(id, _)| id != wanted);
    if by_user
        && let Some((id, e)) = damaged_departures(ctx, None, wanted)?
            .into_iter()
            .find(|(id, _)| found.as_ref().is_none_or(|(f, _)| id > f))
    {
        return Err(damaged_journal(
            format!(
                "the latest departure of {}, {id}, cannot be trusted: {e:#}",
                safe(wanted)
            ),
            e.chain()
                .find_map(|c| c.downcast_ref::<journal::ChainError>())
                .unwrap_or(&journal::ChainError::Empty),
        ));
    }
    match found {
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

/// The exit-5 error for a journal whose chain is broken.
fn damaged_journal(what: String, chain: &journal::ChainError) -> anyhow::Error {
    let mut err = CliError::new(Exit::InvalidEvidence, anyhow::anyhow!(what));
    if let journal::ChainError::Malformed { line, .. }
    | journal::ChainError::Sequence { line, .. }
    | journal::ChainError::BrokenLink { line }
    | journal::ChainError::BadHash { line }
    | journal::ChainError::NotCanonical { line } = chain
    {
        err = err.hint(format!(
            "line {line} is the first one that is not as it was written; nothing was appended or signed"
        ));
    }
    err.hint(TAMPER_HINT_KEEP)
        .hint("to go on offboarding the person, start a fresh departure with `offboard start <USER> --new`; it records this one as its predecessor")
        .into()
}

/// Departures of a person (under `runbook`, when given) whose journal cannot be read as an
/// intact chain, newest first, with why. Whose they are comes from their first event.
pub fn damaged_departures(
    ctx: &Ctx,
    runbook: Option<&str>,
    user: &str,
) -> Result<Vec<(String, anyhow::Error)>> {
    let mut found = Vec::new();
    for id in ctx.state.departure_ids()? {
        let path = ctx.state.journal_path(&id);
        let Err(e) = Journal::read(&path) else {
            continue;
        };
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let Ok(Event {
            record: Record::DepartureStarted(facts),
            ..
        }) = serde_json::from_slice::<Event>(first)
        else {
            continue;
        };
        let rb = runbook.unwrap_or(&facts.runbook.name);
        if crate::person::same_person(&facts.runbook.name, &facts.user, rb, user) {
            found.push((id, e));
        }
    }
    Ok(found)
}

const TAMPER_HINT_KEEP: &str = "keep the departure directory as it is for whoever investigates; `offboard evidence verify <its .json>` re-checks it offline";

/// The refusal to extend or sign a journal that is not what was signed (exit 5).
pub fn refuse_tampered(ctx: &Ctx, id: &str, t: Tamper) -> anyhow::Error {
    // The message names the first bad line whenever there is one.
    let mut err = CliError::new(Exit::InvalidEvidence, anyhow::anyhow!("{t}"));
    err = err.hint(format!(
        "nothing was appended to departure {id} and nothing was signed: offboard does not extend or re-sign a journal that differs from its signed evidence"
    ));
    if t.is_other_signer() {
        let key = ctx
            .global
            .key
            .clone()
            .unwrap_or_else(|| ctx.state.default_key_path());
        err = err.hint(format!(
            "the evidence was signed by another key than {}: if the signing key was replaced, run this command with --key set to the key that signed the departure",
            key.display()
        ));
    } else {
        err = err.hint(TAMPER_HINT_KEEP);
        if let Some(file) = t.evidence_file() {
            err = err.hint(format!(
                "{} embeds every event it signed: that is the record to trust",
                file.display()
            ));
        }
        err = err.hint(
            "to go on offboarding the person, start a fresh departure with `offboard start <USER> --new`; it records this one as its predecessor",
        );
    }
    err.into()
}

/// Whose evidence signatures a reading command trusts: the local signing key when there is one
/// (never created here), else only the key each file names (integrity, not authenticity).
pub fn local_trust(ctx: &Ctx) -> Trust {
    let path = ctx
        .global
        .key
        .clone()
        .unwrap_or_else(|| ctx.state.default_key_path());
    match crate::keys::public_key_at(&path) {
        Ok(k) => Trust::Keys(vec![k]),
        Err(_) => Trust::IntegrityOnly,
    }
}

/// The open (incomplete) departures of a person under a runbook, newest first, with their
/// journals.
pub fn open_departures(
    ctx: &Ctx,
    runbook: &str,
    user: &str,
) -> Result<Vec<(String, Vec<Event>, DepartureState)>> {
    let mut open = Vec::new();
    for id in ctx.state.departure_ids()? {
        let Ok(events) = Journal::read(&ctx.state.journal_path(&id)) else {
            continue;
        };
        let Some(state) = DepartureState::replay(&events) else {
            continue;
        };
        if crate::person::same_person(&state.facts.runbook.name, &state.facts.user, runbook, user)
            && !state.is_complete()
        {
            open.push((id, events, state));
        }
    }
    Ok(open)
}

/// Whether the last run of a departure (start, resume) never reached its end: no
/// `run_finished` after its last `run_started`.
pub fn was_cut_off(events: &[Event]) -> bool {
    events
        .iter()
        .rev()
        .find_map(|e| match e.record {
            Record::RunFinished { .. } => Some(false),
            Record::RunStarted { .. } => Some(true),
            _ => None,
        })
        .unwrap_or(true)
}

/// A departure being driven by this process: its locks and journal.
pub struct Driving {
    pub lock: DepartureLock,
    /// No other process drives a departure of the same person meanwhile.
    pub person: PersonLock,
    pub journal: Arc<Mutex<Journal>>,
}

impl Driving {
    /// Lock an existing departure (its person, then itself), check that its journal is still
    /// what was last signed, and open it for appending. Every command that appends to a journal
    /// or signs it comes through here.
    pub fn open(ctx: &Ctx, id: &str, key: &crate::keys::SigningKey) -> Result<Driving> {
        let events = Journal::read(&ctx.state.journal_path(id))?;
        let facts = crate::departure::facts(&events)
            .with_context(|| format!("the journal of {id} has no departure_started event"))?;
        let person = PersonLock::acquire(&ctx.state, &facts.runbook.name, &facts.user, id)?;
        let lock = DepartureLock::acquire(&ctx.state.departure_dir(id))?;
        // A link planted at a file the check reads is named as such, not taken for tampering.
        let dir = ctx.state.departure_dir(id);
        for file in [
            ctx.state.journal_path(id),
            dir.join(format!("{id}.json")),
            dir.join(format!("{id}.json.sig")),
        ] {
            state::refuse_symlink(&file)?;
        }
        // Under both locks, so nothing appends between the check and the open.
        crate::integrity::check(&ctx.state, id, Trust::Keys(vec![key.public_key().clone()]))
            .map_err(|t| refuse_tampered(ctx, id, t))?;
        let printer = ctx.printer.clone();
        let journal = Journal::open(&ctx.state.journal_path(id), actor(ctx), |n| {
            printer.warn(format!(
                "the journal ended in a torn line ({n} bytes) from an interrupted write; it was set aside and the journal continues from the last complete event"
            ))
        })?;
        Ok(Driving {
            lock,
            person,
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

/// Start a new departure from its plan and drive it, holding its person's lock.
pub fn start_departure(
    ctx: &Ctx,
    facts: DepartureFacts,
    person: PersonLock,
    interactive: bool,
    command: &str,
    preflight: Option<crate::engine::Preflight>,
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
    if let Some(found) = preflight {
        journal.append(
            None,
            Record::Preflight {
                passed: found.problems() == 0,
                checks: found.checks,
                retries: found.retries,
            },
        )?;
    }
    let driving = Driving {
        lock,
        person,
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
        safe(&facts.id),
        safe(&facts.user),
        facts.departure_type.as_str(),
        safe(&facts.runbook.name),
        facts.steps.len() - manual,
        manual,
        if manual == 1 { "" } else { "s" }
    ));
    if let Some(h) = state.hold.current() {
        p.info(p.yellow(&format!(
            "Legal hold (placed {} by {}: {}): destructive steps are blocked and recorded.",
            table::short(&h.at),
            safe(&h.by),
            safe(&h.reason)
        )));
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
