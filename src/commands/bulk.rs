//! `offboard start --from people.csv` and `offboard resume --from people.csv` (or `--batch ID`):
//! one departure per row of a CSV file, many at once.
//!
//! Every line is checked before anything runs. Then the rows are read again, one at a time
//! (involuntary rows first, across the whole file), and run with a bounded number of departures
//! in flight: each one exactly what a single `start` makes (its person's lock, its journal, its
//! signed evidence), all sharing one provider per system and the process-wide limits of each
//! system. Manual steps stay pending; they are listed per owner at the end. A stop signal lets
//! every departure in flight journal its interruption and seal its evidence; `resume` continues
//! the batch from its record in `<state>/batches/`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use tokio::sync::watch;

use super::{Ctx, common};
use crate::app::{Driving, Session};
use crate::batch::{self, BatchDefaults, BatchRecord, Row};
use crate::cli::{DepartureInput, ResumeArgs, RunbookArg, StartArgs};
use crate::departure::{DepartureState, DepartureType, PlannedStep, Status};
use crate::engine::{Engine, Reporter, SharedSystems};
use crate::exit::{CliError, Exit};
use crate::journal::{Journal, Record};
use crate::keys::SigningKey;
use crate::limits::SystemLimits;
use crate::person::PersonLock;
use crate::plan::DepartureRequest;
use crate::providers::RetryNote;
use crate::runbook::Runbook;
use crate::ui::{Printer, safe};

/// `offboard start --from CSV`.
pub fn start(ctx: &Ctx, args: StartArgs, csv: &Path) -> Result<Exit> {
    if let Some(user) = &args.input.user {
        return Err(CliError::usage(format!(
            "both a user ({}) and --from {} were given",
            safe(user),
            csv.display()
        ))
        .hint("give one person as USER, or everyone in the file with --from, not both")
        .into());
    }
    let runbook_path = args
        .input
        .runbook
        .runbook
        .clone()
        .unwrap_or_else(|| "offboard.toml".into());
    let runbook = common::load_runbook(ctx, Some(&runbook_path))?;
    let defaults = BatchDefaults {
        departure_type: args.input.departure_type,
        effective_at: args.input.effective_at.clone(),
        ticket: args.input.ticket.clone(),
        set: args.input.set.clone(),
        legal_hold: args.input.legal_hold,
        new: args.new,
    };
    ctx.state.ensure()?;
    let csv = where_is(csv)?;
    let sha256 = batch::file_sha256(&csv).map_err(|e| {
        CliError::new(Exit::Usage, e)
            .hint("pass the CSV file of the people leaving: --from people.csv")
    })?;
    let open = open_by_person(ctx, &runbook.file.runbook.name, None)?;
    let damaged = damaged_by_person(ctx, &runbook.file.runbook.name)?;
    let (rows, first) = validate(ctx, &csv, &runbook, &defaults, &open, &damaged)?;
    // Every system connected once, before anything runs: a secret that does not resolve would
    // otherwise fail the same steps of every departure in the batch.
    let systems = SharedSystems::default();
    if let Some(facts) = &first {
        let problems = systems.connect(facts, ctx.state.root());
        if !problems.is_empty() && !args.force {
            let mut err = CliError::new(
                Exit::Failure,
                anyhow::anyhow!(
                    "{} system(s) cannot be used; nothing was started",
                    problems.len()
                ),
            );
            for (name, why) in &problems {
                err = err.hint(format!("system {}: {why}", safe(name)));
            }
            return Err(err
                .hint("fix that and run the same command again, or add --force to run the batch anyway (those systems' steps fail and are recorded, and resume retries them)")
                .into());
        }
    }
    let now = crate::journal::now();
    let record = BatchRecord {
        batch: batch::new_batch_id(now),
        csv: csv.clone(),
        sha256,
        runbook: std::path::absolute(&runbook_path)?,
        runbook_name: runbook.file.runbook.name.clone(),
        rows,
        created_at: crate::journal::timestamp(now),
        by: common::actor(ctx),
        defaults,
    };
    batch::save(&ctx.state, &record)?;
    let key = common::signing_key(ctx)?;
    run_batch(
        ctx,
        &record,
        &runbook,
        &key,
        args.parallel.into(),
        false,
        systems,
    )
}

/// `offboard resume --from CSV` or `--batch ID`.
pub fn resume(ctx: &Ctx, args: ResumeArgs) -> Result<Exit> {
    let record = match (&args.batch, &args.from) {
        (Some(id), _) => batch::load(&ctx.state, id)
            .map_err(|e| CliError::new(Exit::Usage, e))?
            .ok_or_else(|| {
                CliError::usage(format!("no batch {} in {}", safe(id), ctx.state.root().display()))
                    .hint("`offboard start --from people.csv` prints the batch id; or resume with --from people.csv")
            })?,
        (None, Some(csv)) => {
            let csv = where_is(csv)?;
            let record = batch::latest_for(&ctx.state, &csv)?.ok_or_else(|| {
                CliError::usage(format!("no batch was started from {}", csv.display()))
                    .hint(format!("start one with `offboard start --from {}`", csv.display()))
            })?;
            let now = batch::file_sha256(&csv).map_err(|e| CliError::new(Exit::Usage, e))?;
            if now != record.sha256 {
                return Err(CliError::usage(format!(
                    "{} has changed since batch {} started from it",
                    csv.display(),
                    record.batch
                ))
                .hint("put the file back as it was to continue that batch (its rows decide which departures run)")
                .hint("or start a new batch with the new file: `offboard start --from …` (people with an open departure are named, with --new to start another)")
                .into());
            }
            record
        }
        (None, None) => unreachable!("clap requires --from or --batch here"),
    };
    if args.legal_hold {
        return Err(CliError::usage("--legal-hold applies to one departure, not a batch")
            .hint("place it on each departure that needs it with `offboard hold <DEPARTURE> --reason …`")
            .into());
    }
    let runbook = common::load_runbook(ctx, Some(&record.runbook))?;
    let key = common::signing_key(ctx)?;
    run_batch(
        ctx,
        &record,
        &runbook,
        &key,
        args.parallel.into(),
        true,
        SharedSystems::default(),
    )
}

/// The file's one name (absolute, links resolved), so that `resume --from` finds the batch from
/// any directory; a missing file keeps its absolute name for the error that follows.
fn where_is(csv: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(csv)
        .or_else(|_| std::path::absolute(csv))
        .with_context(|| format!("finding {}", csv.display()))
}

/// The request one row makes, with the command line's values as defaults (exactly what
/// `offboard start USER …` would make of the same values).
fn request(
    ctx: &Ctx,
    runbook: &Runbook,
    defaults: &BatchDefaults,
    row: &Row,
) -> Result<DepartureRequest> {
    let mut set = defaults.set.clone();
    set.extend(row.inputs.iter().map(|(k, v)| format!("{k}={v}")));
    let input = DepartureInput {
        user: Some(row.user.clone()),
        runbook: RunbookArg { runbook: None },
        departure_type: row.departure_type.unwrap_or(defaults.departure_type),
        effective_at: row.effective_at.clone().or(defaults.effective_at.clone()),
        set,
        ticket: row.ticket.clone().or(defaults.ticket.clone()),
        legal_hold: defaults.legal_hold,
    };
    let req = common::departure_request(ctx, &input, runbook, false)?;
    super::start::check_effective_at(req.effective_at)?;
    Ok(req)
}

/// An error as one sentence, with its hints.
fn sentence(e: &anyhow::Error) -> String {
    match e.downcast_ref::<CliError>() {
        Some(c) => {
            let mut s = format!("{:#}", c.error);
            for h in &c.hints {
                s.push_str(" (");
                s.push_str(h);
                s.push(')');
            }
            s
        }
        None => format!("{e:#}"),
    }
}

/// Check every line before anything runs; the number of rows, or one usage error naming every
/// bad line.
fn validate(
    ctx: &Ctx,
    csv: &Path,
    runbook: &Runbook,
    defaults: &BatchDefaults,
    open: &HashMap<String, String>,
    damaged: &HashMap<String, String>,
) -> Result<(u64, Option<crate::departure::DepartureFacts>)> {
    let file = csv.display().to_string();
    let inputs: Vec<&str> = runbook.file.inputs.keys().map(String::as_str).collect();
    let rows = batch::open(csv, &inputs).map_err(|e| {
        CliError::usage(format!("{file}: {e}"))
            .hint("nothing was started")
            .hint(format!(
                "the first line names the columns: user (required), {} and the runbook's inputs",
                batch::FIXED_COLUMNS[1..].join(", ")
            ))
    })?;
    let mut bad: Vec<(u64, String)> = Vec::new();
    // Normalised user → its line (a person twice in one file is an error).
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut count = 0u64;
    let mut first = None;
    for r in rows {
        let row = match r {
            Ok(row) => row,
            Err(b) => {
                bad.push((b.line, b.why));
                continue;
            }
        };
        count += 1;
        let who = crate::person::normalize_user(&row.user);
        if let Some(first) = seen.get(&who) {
            bad.push((
                row.line,
                format!(
                    "{} is already on line {first}; one departure per person: remove one of the two lines",
                    safe(&row.user)
                ),
            ));
            continue;
        }
        seen.insert(who.clone(), row.line);
        if let Some(id) = damaged.get(&who).filter(|_| !defaults.new) {
            bad.push((
                row.line,
                format!(
                    "{} has a departure whose journal cannot be trusted, {id}: keep its directory as it is for whoever investigates, and add --new to start a fresh departure that records it as its predecessor",
                    safe(&row.user)
                ),
            ));
            continue;
        }
        if let Some(id) = open.get(&who).filter(|_| !defaults.new) {
            bad.push((
                row.line,
                format!(
                    "{} already has an open departure under this runbook, {id}: resume it (`offboard resume {id}`), remove the line, or add --new to start a second one",
                    safe(&row.user)
                ),
            ));
            continue;
        }
        let checked = request(ctx, runbook, defaults, &row)
            .and_then(|req| crate::plan::build(runbook, &req, ctx.state.root()));
        match checked {
            Ok(facts) if first.is_none() => first = Some(facts),
            Ok(_) => {}
            Err(e) => bad.push((row.line, sentence(&e))),
        }
    }
    if !bad.is_empty() {
        let mut err = CliError::usage(format!(
            "{file}: {} line(s) cannot be used; nothing was started",
            bad.len()
        ));
        for (line, why) in &bad {
            err = err.hint(format!("{file}:{line}: {why}"));
        }
        err = err.hint("fix or remove those lines, then run the same command again");
        return Err(err.into());
    }
    if count == 0 {
        return Err(
            CliError::usage(format!("{file}: no one to offboard (a header and no rows)"))
                .hint(
                    "add one line per person under the header, e.g. alice@corp.example,involuntary",
                )
                .into(),
        );
    }
    Ok((count, first))
}

/// The departures under `runbook` whose journal cannot be read as an intact chain, by
/// normalised user (whose they are comes from their first line, as for `start`).
fn damaged_by_person(ctx: &Ctx, runbook: &str) -> Result<HashMap<String, String>> {
    let mut found = HashMap::new();
    for id in ctx.state.departure_ids()? {
        let path = ctx.state.journal_path(&id);
        if Journal::read(&path).is_ok() {
            continue;
        }
        let Ok(bytes) = crate::state::read_nofollow(&path) else {
            continue;
        };
        let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        if let Ok(crate::journal::Event {
            record: Record::DepartureStarted(facts),
            ..
        }) = serde_json::from_slice::<crate::journal::Event>(first)
            && facts.runbook.name.trim() == runbook.trim()
        {
            found.insert(crate::person::normalize_user(&facts.user), id);
        }
    }
    Ok(found)
}

/// The open departures under `runbook`, by normalised user (newest wins), not counting those of
/// `batch`.
fn open_by_person(
    ctx: &Ctx,
    runbook: &str,
    batch: Option<&str>,
) -> Result<HashMap<String, String>> {
    let mut open = HashMap::new();
    for id in ctx.state.departure_ids()? {
        let Ok(events) = Journal::read(&ctx.state.journal_path(&id)) else {
            continue;
        };
        if batch.is_some_and(|b| first_command(&events).as_deref() == Some(&batch::run_command(b)))
        {
            continue;
        }
        let Some(state) = DepartureState::replay(&events) else {
            continue;
        };
        if state.facts.runbook.name.trim() == runbook.trim() && !state.is_complete() {
            open.insert(crate::person::normalize_user(&state.facts.user), id);
        }
    }
    Ok(open)
}

fn first_command(events: &[crate::journal::Event]) -> Option<String> {
    events.iter().find_map(|e| match &e.record {
        Record::RunStarted { command } => Some(command.clone()),
        _ => None,
    })
}

/// The departures a batch has begun, by normalised user: those whose first run is the batch's,
/// and those a crash left with no run at all, begun since the batch started under its runbook.
fn batch_departures(ctx: &Ctx, record: &BatchRecord) -> Result<HashMap<String, String>> {
    let mut found = HashMap::new();
    let since = record.batch.split('-').next().unwrap_or_default();
    for id in ctx.state.departure_ids()? {
        let Ok(events) = Journal::read(&ctx.state.journal_path(&id)) else {
            continue;
        };
        let Some(facts) = crate::departure::facts(&events) else {
            continue;
        };
        let ours = match first_command(&events) {
            Some(c) => c == batch::run_command(&record.batch),
            None => {
                facts.runbook.name.trim() == record.runbook_name.trim()
                    && id.split('-').next().unwrap_or_default() >= since
            }
        };
        if ours {
            found.insert(crate::person::normalize_user(&facts.user), id);
        }
    }
    Ok(found)
}

/// How one row ended.
#[derive(Debug)]
enum Ending {
    Complete,
    Incomplete {
        open: usize,
    },
    Interrupted,
    /// Finished by an earlier run of the batch.
    Skipped,
    /// Stopped before it began (a stop signal while it waited for its effective time).
    NotStarted,
    Error(String),
}

impl Ending {
    fn as_str(&self) -> &'static str {
        match self {
            Ending::Complete => "complete",
            Ending::Incomplete { .. } => "incomplete",
            Ending::Interrupted => "interrupted",
            Ending::Skipped => "skipped",
            Ending::NotStarted => "not_started",
            Ending::Error(_) => "error",
        }
    }
}

struct Outcome {
    user: String,
    line: u64,
    id: Option<String>,
    ending: Ending,
    evidence: Option<PathBuf>,
    /// Manual steps still open: (owner, step, deadline).
    manual: Vec<(String, String, Option<String>)>,
}

/// What everything in a batch run shares.
struct Batch<'a> {
    ctx: &'a Ctx,
    record: &'a BatchRecord,
    runbook: &'a Runbook,
    key: &'a SigningKey,
    session: Session<'a>,
    systems: SharedSystems,
    out: Out,
    /// Departures of this batch already begun (resume), by normalised user.
    begun: HashMap<String, String>,
    /// Open departures of others, by normalised user (predecessors under --new).
    open: HashMap<String, String>,
    /// Departures whose journal cannot be trusted, by normalised user.
    damaged: HashMap<String, String>,
}

/// Run every row of a batch (or what is left of it).
fn run_batch(
    ctx: &Ctx,
    record: &BatchRecord,
    runbook: &Runbook,
    key: &SigningKey,
    parallel: usize,
    resume: bool,
    systems: SharedSystems,
) -> Result<Exit> {
    let p = &ctx.printer;
    let begun = if resume {
        batch_departures(ctx, record)?
    } else {
        HashMap::new()
    };
    let open = if record.defaults.new {
        open_by_person(ctx, &record.runbook_name, Some(&record.batch))?
    } else {
        HashMap::new()
    };
    let damaged = damaged_by_person(ctx, &record.runbook_name)?;
    let b = Batch {
        ctx,
        record,
        runbook,
        key,
        session: common::session(ctx),
        systems,
        out: Out {
            json: p.json,
            stdout: Mutex::new(()),
        },
        begun,
        open,
        damaged,
    };
    p.info(format!(
        "{} {}: {} departure{} from {}, runbook \"{}\", up to {parallel} at once{}",
        p.bold(if resume { "Resuming batch" } else { "Batch" }),
        record.batch,
        record.rows,
        if record.rows == 1 { "" } else { "s" },
        record.csv.display(),
        safe(&record.runbook_name),
        if resume {
            ""
        } else {
            "; involuntary rows first"
        }
    ));
    b.out.emit(&serde_json::json!({
        "event": "batch_started",
        "batch": record.batch,
        "csv": record.csv,
        "rows": record.rows,
        "resume": resume,
    }));
    let board = Board::new(p, record.rows, systems_of(runbook, ctx.state.root()));
    let inputs: Vec<&str> = runbook.file.inputs.keys().map(String::as_str).collect();
    let pass = |involuntary: bool| -> Result<_> {
        let rows = batch::open(&record.csv, &inputs)
            .map_err(|e| CliError::usage(format!("{}: {e}", record.csv.display())))?;
        let default = record.defaults.departure_type;
        Ok(rows.filter_map(Result::ok).filter(move |r| {
            (r.departure_type.unwrap_or(default) == DepartureType::Involuntary) == involuntary
        }))
    };
    let rows = pass(true)?.chain(pass(false)?);

    let mut tally = Tally::default();
    let rt = common::runtime()?;
    let stop_reason = rt.block_on(async {
        let mut signals = common::StopSignals::listen()?;
        let (tx, rx) = watch::channel::<Option<&'static str>>(None);
        let gate = rx.clone();
        let work = futures::stream::iter(rows)
            .take_while(|_| std::future::ready(gate.borrow().is_none()))
            .map(|row| b.one(row, rx.clone()))
            .buffer_unordered(parallel.max(1))
            .for_each(|o| {
                tally.add(&b, &board, o);
                std::future::ready(())
            });
        let listen = async {
            let reason = signals.recv().await;
            board.println(format!(
                "{reason}: stopping; departures in flight journal where they are and seal their evidence"
            ));
            let _ = tx.send(Some(reason));
            std::future::pending::<()>().await
        };
        let ticker = async {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                board.tick();
            }
        };
        tokio::select! {
            _ = work => {}
            _ = listen => {}
            _ = ticker => {}
        }
        Ok::<_, anyhow::Error>(*rx.borrow())
    })?;
    drop(rt);
    board.finish();
    // As `start` does at its end, each departure's evidence goes to its ticket: one after the
    // other, after the batch, so that uploads never hold up the cutting.
    for id in std::mem::take(&mut tally.to_attach) {
        match common::open_departure(ctx, &id, key) {
            Ok(driving) => super::attach::after(ctx, &driving, key),
            Err(e) => p.warn(format!(
                "the evidence of {id} was not attached to its ticket: {e:#}. Retry with `offboard attach {id}`"
            )),
        }
    }
    Ok(tally.report(&b, stop_reason))
}

impl Batch<'_> {
    /// One row: its departure begun (or found again), driven, sealed.
    async fn one(&self, row: Row, stop: watch::Receiver<Option<&'static str>>) -> Outcome {
        let mut outcome = Outcome {
            user: row.user.clone(),
            line: row.line,
            id: None,
            ending: Ending::NotStarted,
            evidence: None,
            manual: Vec::new(),
        };
        let who = crate::person::normalize_user(&row.user);
        let context = if self.begun.contains_key(&who) {
            "resume"
        } else {
            "run"
        };
        let driving = match self.begun.get(&who) {
            Some(id) => {
                outcome.id = Some(id.clone());
                match self.reopen(id) {
                    Ok(Some(d)) => d,
                    Ok(None) => {
                        outcome.ending = Ending::Skipped;
                        if let Ok(events) = Journal::read(&self.ctx.state.journal_path(id))
                            && let Some(state) = DepartureState::replay(&events)
                        {
                            outcome.manual = manual_open(&state);
                            outcome.evidence =
                                Some(self.ctx.state.departure_dir(id).join(format!("{id}.json")));
                        }
                        return outcome;
                    }
                    Err(e) => {
                        outcome.ending = Ending::Error(format!("{e:#}"));
                        return outcome;
                    }
                }
            }
            None if self.damaged.contains_key(&who) && !self.record.defaults.new => {
                outcome.id = self.damaged.get(&who).cloned();
                outcome.ending = Ending::Error(format!(
                    "{} has a departure whose journal cannot be trusted: keep its directory as it is for whoever investigates; `offboard start {} --new` starts a fresh one",
                    safe(&row.user),
                    safe(&row.user)
                ));
                return outcome;
            }
            None => match self.begin(&row, &who, stop.clone()).await {
                Ok(Some(d)) => d,
                Ok(None) => return outcome,
                Err(e) => {
                    outcome.ending = Ending::Error(sentence(&e));
                    return outcome;
                }
            },
        };
        let state = driving.state();
        outcome.id = Some(state.facts.id.clone());
        match self.drive(&driving, &state, stop, context).await {
            Ok((ending, state, evidence)) => {
                outcome.ending = ending;
                outcome.manual = manual_open(&state);
                outcome.evidence = Some(evidence);
            }
            Err(e) => outcome.ending = Ending::Error(format!("{e:#}")),
        }
        outcome
    }

    /// Open a departure the batch began, unless an earlier run finished it (`None`).
    fn reopen(&self, id: &str) -> Result<Option<Driving>> {
        let events = Journal::read(&self.ctx.state.journal_path(id))?;
        let state = DepartureState::replay(&events).context("the journal has no facts")?;
        let unfinished = state.ordered().any(|(p, s)| {
            !p.is_manual()
                && matches!(
                    s.status(),
                    Status::Pending | Status::InFlight | Status::Failed | Status::Unconfirmed
                )
        });
        // Finished, and its evidence written: nothing to do. A run killed after its last step
        // but before the seal is reopened: it has nothing left to cut and writes the evidence.
        if !unfinished && !common::was_cut_off(&events) && common::sealed_after_last_run(&events) {
            return Ok(None);
        }
        let driving = Driving::open(&self.session, id, self.key)?;
        driving.append(
            None,
            Record::RunStarted {
                command: format!("resume --batch {}", self.record.batch),
            },
        )?;
        Ok(Some(driving))
    }

    /// Begin a row's departure, once its effective time has come (`None`: stopped before).
    async fn begin(
        &self,
        row: &Row,
        who: &str,
        mut stop: watch::Receiver<Option<&'static str>>,
    ) -> Result<Option<Driving>> {
        let req = request(self.ctx, self.runbook, &self.record.defaults, row)?;
        let mut facts = crate::plan::build(self.runbook, &req, self.ctx.state.root())
            .map_err(|e| CliError::new(Exit::Usage, e))?;
        facts.previous = self
            .damaged
            .get(who)
            .or_else(|| self.open.get(who))
            .cloned();
        if let Ok(wait) = (req.effective_at - crate::journal::now()).to_std() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(Option::is_some) => return Ok(None),
            }
        }
        if stop.borrow().is_some() {
            return Ok(None);
        }
        let person = PersonLock::acquire(
            &self.ctx.state,
            &self.record.runbook_name,
            &req.user,
            &req.id,
        )?;
        let driving = Driving::begin(
            &self.session,
            facts,
            person,
            &batch::run_command(&self.record.batch),
            None,
        )?;
        Ok(Some(driving))
    }

    /// Run a departure until it can go no further or the batch stops; journal how it ended and
    /// seal its evidence.
    async fn drive(
        &self,
        driving: &Driving,
        state: &DepartureState,
        mut stop: watch::Receiver<Option<&'static str>>,
        context: &'static str,
    ) -> Result<(Ending, DepartureState, PathBuf)> {
        let engine = Engine::connect_shared(
            driving.journal.clone(),
            &state.facts,
            self.ctx.state.root(),
            context,
            &self.systems,
        );
        let events = Events {
            out: &self.out,
            batch: &self.record.batch,
            departure: &state.facts.id,
            user: &state.facts.user,
        };
        let stopped = tokio::select! {
            biased;
            r = stop.wait_for(Option::is_some) => Some(r.map(|v| (*v).unwrap_or("stop")).unwrap_or("stop")),
            r = engine.run(&events, None) => { r?; None }
        };
        if let Some(reason) = stopped {
            driving.append(
                None,
                Record::Interrupted {
                    reason: reason.to_string(),
                },
            )?;
            let sealed = driving.seal(&self.ctx.state, self.key)?;
            return Ok((Ending::Interrupted, driving.state(), sealed.json_path));
        }
        let now = driving.state();
        let complete = now.is_complete();
        driving.append(None, Record::RunFinished { complete })?;
        let sealed = driving.seal(&self.ctx.state, self.key)?;
        let open = now
            .steps
            .values()
            .filter(|s| !s.status().is_settled())
            .count();
        let ending = if complete {
            Ending::Complete
        } else {
            Ending::Incomplete { open }
        };
        Ok((ending, driving.state(), sealed.json_path))
    }
}

/// A departure's manual steps still open: (owner, step, deadline).
fn manual_open(state: &DepartureState) -> Vec<(String, String, Option<String>)> {
    state
        .ordered()
        .filter(|(p, s)| p.is_manual() && !s.status().is_settled())
        .map(|(p, _)| {
            (
                p.owner
                    .clone()
                    .unwrap_or_else(|| format!("({} lane)", p.lane.as_str())),
                p.id.clone(),
                p.deadline.clone(),
            )
        })
        .collect()
}

/// A manual step waiting for its owner: (user, step, deadline, departure).
type Waiting = (String, String, Option<String>, String);

/// Counts, and the manual steps by owner, as departures end.
#[derive(Default)]
struct Tally {
    done: u64,
    complete: u64,
    incomplete: u64,
    interrupted: u64,
    skipped: u64,
    not_started: u64,
    errors: u64,
    owners: BTreeMap<String, Vec<Waiting>>,
    /// Departures that ran to their end in this run, to attach their evidence to their tickets
    /// once the batch is done (only when the runbook has a service desk).
    to_attach: Vec<String>,
}

impl Tally {
    fn add(&mut self, b: &Batch<'_>, board: &Board, o: Outcome) {
        self.done += 1;
        match &o.ending {
            Ending::Complete => self.complete += 1,
            Ending::Incomplete { .. } => self.incomplete += 1,
            Ending::Interrupted => self.interrupted += 1,
            Ending::Skipped => self.skipped += 1,
            Ending::NotStarted => self.not_started += 1,
            Ending::Error(_) => self.errors += 1,
        }
        let id = o.id.clone().unwrap_or_default();
        // Those that ran to their end, as `start` attaches only then.
        let ran = matches!(o.ending, Ending::Complete | Ending::Incomplete { .. });
        if ran && b.ctx.auto_attach && b.runbook.file.ticketing.is_some() {
            self.to_attach.push(id.clone());
        }
        for (owner, step, deadline) in &o.manual {
            self.owners.entry(owner.clone()).or_default().push((
                o.user.clone(),
                step.clone(),
                deadline.clone(),
                id.clone(),
            ));
        }
        let what = match &o.ending {
            Ending::Complete => "complete".to_string(),
            Ending::Incomplete { open } => format!("incomplete ({open} step(s) open)"),
            Ending::Interrupted => "interrupted (resume continues it)".into(),
            Ending::Skipped => "already finished by an earlier run; skipped".into(),
            Ending::NotStarted => "not started (stopped before its effective time)".into(),
            Ending::Error(e) => format!("error: {e}"),
        };
        board.departure_done(format!(
            "[{}/{}] {} (line {}): {what}{}",
            self.done,
            b.record.rows,
            safe(&o.user),
            o.line,
            if id.is_empty() {
                String::new()
            } else {
                format!(" — {id}")
            }
        ));
        let error = match &o.ending {
            Ending::Error(e) => Some(e.clone()),
            _ => None,
        };
        b.out.emit(&serde_json::json!({
            "event": "departure",
            "batch": b.record.batch,
            "line": o.line,
            "user": o.user,
            "departure": o.id,
            "outcome": o.ending.as_str(),
            "open_steps": match o.ending { Ending::Incomplete { open } => open, _ => 0 },
            "manual_open": o.manual.len(),
            "evidence": o.evidence,
            "error": error,
        }));
    }

    /// The summary, the manual steps per owner, and the exit status.
    fn report(self, b: &Batch<'_>, stopped: Option<&'static str>) -> Exit {
        let p = &b.ctx.printer;
        let csv = b.record.csv.display();
        p.result(format!(
            "Batch {}: {} complete, {} incomplete, {} interrupted, {} skipped (finished earlier), {} not started, {} error(s)",
            b.record.batch,
            self.complete,
            self.incomplete,
            self.interrupted,
            self.skipped,
            self.not_started,
            self.errors
        ));
        if !self.owners.is_empty() {
            p.result(format!(
                "Manual steps waiting, by owner ({} owner{}):",
                self.owners.len(),
                if self.owners.len() == 1 { "" } else { "s" }
            ));
            for (owner, items) in &self.owners {
                p.result(format!("\n  {} — {} step(s)", safe(owner), items.len()));
                let w_user = items
                    .iter()
                    .map(|i| i.0.chars().count())
                    .max()
                    .unwrap_or(4)
                    .max(4);
                let w_step = items
                    .iter()
                    .map(|i| i.1.chars().count())
                    .max()
                    .unwrap_or(4)
                    .max(4);
                p.result(format!(
                    "  {:<w_user$}  {:<w_step$}  {:<20}  DEPARTURE",
                    "USER", "STEP", "DEADLINE"
                ));
                for (user, step, deadline, id) in items {
                    p.result(format!(
                        "  {:<w_user$}  {:<w_step$}  {:<20}  {id}",
                        safe(user),
                        safe(step),
                        deadline
                            .as_deref()
                            .map(crate::ui::table::short)
                            .unwrap_or_else(|| "-".into()),
                    ));
                }
            }
            p.info("Each owner confirms their steps with: offboard confirm <DEPARTURE> <STEP> [--field k=v]");
        }
        let unfinished = self.interrupted
            + self.not_started
            + self.errors
            + self.incomplete
            + b.record.rows.saturating_sub(self.done);
        if unfinished > 0 {
            p.info(format!(
                "Continue with: offboard resume --from {csv}   (or --batch {})",
                b.record.batch
            ));
        }
        b.out.emit(&serde_json::json!({
            "event": "batch_finished",
            "batch": b.record.batch,
            "complete": self.complete,
            "incomplete": self.incomplete,
            "interrupted": self.interrupted,
            "skipped": self.skipped,
            "not_started": self.not_started,
            "errors": self.errors,
            "not_reached": b.record.rows.saturating_sub(self.done),
            "stopped": stopped,
            "manual_by_owner": self.owners.iter().map(|(o, items)| (o.clone(), serde_json::json!(
                items.iter().map(|(u, s, d, id)| serde_json::json!({"user": u, "step": s, "deadline": d, "departure": id})).collect::<Vec<_>>()
            ))).collect::<serde_json::Map<_, _>>(),
        }));
        if stopped.is_some() {
            Exit::Interrupted
        } else if self.errors > 0 {
            Exit::Failure
        } else if self.incomplete > 0 || self.not_started > 0 || !self.owners.is_empty() {
            Exit::Incomplete
        } else {
            Exit::Ok
        }
    }
}

/// The JSON Lines event stream on stdout (`--json`): one line per event, never interleaved.
struct Out {
    json: bool,
    stdout: Mutex<()>,
}

impl Out {
    fn emit(&self, v: &serde_json::Value) {
        if !self.json {
            return;
        }
        let _guard = self.stdout.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut out, v);
        let _ = writeln!(out);
        let _ = out.flush();
    }
}

/// A departure's step outcomes as events.
struct Events<'a> {
    out: &'a Out,
    batch: &'a str,
    departure: &'a str,
    user: &'a str,
}

impl Reporter for Events<'_> {
    fn wave(&self, _phase: &str, _steps: &[&PlannedStep]) {}
    fn started(&self, _step: &PlannedStep, _what: &str) {}
    fn retry(&self, _step: &PlannedStep, _note: &RetryNote) {}
    fn finished(&self, step: &PlannedStep, status: Status, detail: &str) {
        self.out.emit(&serde_json::json!({
            "event": "step",
            "batch": self.batch,
            "departure": self.departure,
            "user": self.user,
            "step": step.id,
            "system": step.automated.as_ref().map(|a| &a.system),
            "status": status.as_str(),
            "detail": detail,
        }));
    }
}

/// The limits of every system the runbook declares (the same ones its departures use).
fn systems_of(runbook: &Runbook, state_dir: &Path) -> Vec<(String, Arc<SystemLimits>)> {
    runbook
        .file
        .systems
        .iter()
        .map(|(name, def)| {
            let cfg = crate::plan::system_config(name, def, state_dir);
            (
                name.clone(),
                crate::limits::for_system(name, cfg.max_concurrency, cfg.rate_limit),
            )
        })
        .collect()
}

/// Progress of a batch: on a terminal, one overall bar and one line per system; otherwise a
/// line per departure and, every 10 s, one per system.
struct Board {
    printer: Printer,
    bars: Option<(
        indicatif::MultiProgress,
        indicatif::ProgressBar,
        Vec<indicatif::ProgressBar>,
    )>,
    systems: Vec<(String, Arc<SystemLimits>)>,
    started: Instant,
    last: Mutex<(Instant, Vec<u64>, u32)>,
}

impl Board {
    fn new(printer: &Printer, total: u64, systems: Vec<(String, Arc<SystemLimits>)>) -> Board {
        let base: Vec<u64> = systems.iter().map(|(_, l)| l.counts().0).collect();
        let bars = printer.show_progress().then(|| {
            use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(total));
            overall.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} departures  {elapsed_precise}  eta {eta}",
                )
                .expect("valid template"),
            );
            let lines = systems
                .iter()
                .map(|(name, _)| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("  {prefix:<20} {wide_msg}")
                            .expect("valid template"),
                    );
                    bar.set_prefix(safe(name));
                    bar
                })
                .collect();
            (multi, overall, lines)
        });
        Board {
            printer: printer.clone(),
            bars,
            systems,
            started: Instant::now(),
            last: Mutex::new((Instant::now(), base, 0)),
        }
    }

    fn println(&self, line: String) {
        match &self.bars {
            Some((multi, ..)) => {
                let _ = multi.println(line);
            }
            None => self.printer.info(line),
        }
    }

    fn departure_done(&self, line: String) {
        self.println(line);
        if let Some((_, overall, _)) = &self.bars {
            overall.inc(1);
        }
    }

    /// Once a second: each system's request rate against its limit, and the 429s seen.
    fn tick(&self) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let dt = now.duration_since(last.0).as_secs_f64().max(0.001);
        let lines: Vec<(String, String)> = self
            .systems
            .iter()
            .zip(last.1.iter_mut())
            .map(|((name, limits), prev)| {
                let (sent, throttled) = limits.counts();
                let rate = (sent.saturating_sub(*prev)) as f64 / dt;
                *prev = sent;
                (safe(name), system_stats(limits, rate, throttled))
            })
            .collect();
        last.0 = now;
        last.2 += 1;
        match &self.bars {
            Some((_, _, bars)) => {
                for (bar, (_, stats)) in bars.iter().zip(lines) {
                    bar.set_message(stats);
                }
            }
            None if last.2.is_multiple_of(10) => {
                for (name, stats) in lines {
                    self.printer.info(format!("  {name}: {stats}"));
                }
            }
            None => {}
        }
    }

    /// Clear the bars and say, per system, what the batch asked of it.
    fn finish(&self) {
        if let Some((multi, overall, bars)) = &self.bars {
            overall.finish_and_clear();
            for b in bars {
                b.finish_and_clear();
            }
            let _ = multi.clear();
        }
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        for (name, limits) in &self.systems {
            let (sent, throttled) = limits.counts();
            if sent == 0 {
                continue;
            }
            self.printer.info(format!(
                "  {} (over the whole batch: {sent} requests in {secs:.1} s)",
                system_line(name, limits, sent as f64 / secs, throttled)
            ));
        }
    }
}

fn system_line(name: &str, limits: &SystemLimits, rate: f64, throttled: u64) -> String {
    format!("{}: {}", safe(name), system_stats(limits, rate, throttled))
}

/// Requests/s against the system's limit, and the 429s seen.
fn system_stats(limits: &SystemLimits, rate: f64, throttled: u64) -> String {
    let limit = match &limits.configured {
        Some(r) => format!(
            "limit {r} = {:.1}/s",
            r.count.get() as f64 / r.period.as_secs_f64()
        ),
        None => "no rate_limit set".into(),
    };
    format!("{rate:.1} req/s ({limit}), {throttled} throttled (429)")
}
