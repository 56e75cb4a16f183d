//! What several commands share: finding the runbook, turning flags into a departure request,
//! finding a departure, and the command side of driving one (announcing it, printing how it
//! ended). The driving itself is in [`crate::app`].

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use super::Ctx;
use crate::app::drive::TAMPER_HINT_KEEP;
use crate::app::{self, Driven, Session};
use crate::cli::DepartureInput;
use crate::departure::{DepartureFacts, DepartureState};
use crate::evidence::Trust;
use crate::exit::{CliError, Exit};
use crate::journal::{self, Event, Journal, Record};
use crate::keys::SigningKey;
use crate::person::PersonLock;
use crate::plan::DepartureRequest;
use crate::runbook::Runbook;
use crate::state;
use crate::ui::{prompt::Checklist, safe, table};

// Driving a departure lives in the app layer; commands name these through here too.
pub use crate::app::{Driving, StopSignals, runtime};

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
    let Some(user) = input.user.as_deref() else {
        return Err(CliError::usage("who is leaving? name the person (an email address or a login)")
            .hint("e.g. `offboard start alice@corp.example`; for many people at once, `offboard start --from people.csv`; from an HR event, `offboard start --from-event FILE --source …`")
            .into());
    };
    if user.trim().is_empty() {
        return Err(CliError::usage("the user is empty").into());
    }
    Ok(DepartureRequest {
        id: state::new_departure_id(user, now),
        user: user.to_string(),
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
            ctx.state.location()
        ))
        .hint("`offboard status` lists departures; pass --state-dir if they live elsewhere")
        .into()),
    }
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

/// Whether the journal's last run was sealed: an `evidence_written` after its last
/// `run_finished`. A process killed between the two finished every step but wrote no evidence.
pub fn sealed_after_last_run(events: &[Event]) -> bool {
    events
        .iter()
        .rev()
        .find_map(|e| match e.record {
            Record::EvidenceWritten { .. } => Some(true),
            Record::RunFinished { .. } | Record::RunStarted { .. } => Some(false),
            _ => None,
        })
        .unwrap_or(false)
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

/// What the app layer needs from a command's context to drive a departure.
pub fn session(ctx: &Ctx) -> Session<'_> {
    Session {
        state: &ctx.state,
        printer: &ctx.printer,
        actor: actor(ctx),
    }
}

/// Lock an existing departure, check its journal against its signed evidence, and open it for
/// appending (see [`Driving::open`]).
pub fn open_departure(ctx: &Ctx, id: &str, key: &SigningKey) -> Result<Driving> {
    Driving::open(&session(ctx), id, key)
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
    let driving = Driving::begin(&session(ctx), facts, person, command, preflight)?;
    drive(ctx, &driving, &key, interactive, "run")
}

/// Run (or continue) a departure, then seal the evidence and print the summary.
pub fn drive(
    ctx: &Ctx,
    driving: &Driving,
    key: &SigningKey,
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
    match app::drive::run(&session(ctx), driving, key, interactive, context)? {
        Driven::Interrupted { sealed } => {
            p.warn(format!(
                "interrupted. The journal is consistent; evidence so far: {}",
                sealed.json_path.display()
            ));
            p.info(format!("Continue with: offboard resume {}", facts.id));
            Ok(Exit::Interrupted)
        }
        Driven::Finished { state, sealed } => {
            let exit = summarise(ctx, &state, &sealed);
            super::attach::after(ctx, driving, key);
            Ok(exit)
        }
    }
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
