//! `offboard rollback <DEPARTURE> --out rollback.json`: the reverse plan of a departure, from
//! its journal ([`crate::rollback`]); and running it (`offboard start --plan rollback.json`,
//! continued by `offboard resume`), journaled in the same departure and sealed in its evidence.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::app::Driving;
use crate::cli::RollbackArgs;
use crate::exit::{CliError, Exit};
use crate::journal::{Journal, Record};
use crate::keys::SigningKey;
use crate::providers::{CallCtx, StepCall};
use crate::rollback::{ROLLBACK_FORMAT, RollbackFile, RollbackGate, RollbackRun, Undo, UndoStep};
use crate::runbook::Runbook;
use crate::ui::safe;

use super::{Ctx, common};

/// `offboard rollback`.
pub fn exec(ctx: &Ctx, args: RollbackArgs) -> anyhow::Result<Exit> {
    // A departure the HR intake only scheduled has not run: it is called off, nothing to undo.
    let scheduled = scheduled_for(ctx, &args.departure)?;
    if !scheduled.is_empty() {
        call_off(ctx, &args, &scheduled)?;
        let found = ctx.state.find_departure(&args.departure).ok().flatten();
        if found.is_none() {
            return Ok(Exit::Ok);
        }
    }
    let (id, events) = common::find_departure(ctx, &args.departure)?;
    if RollbackRun::replay(&events).is_some() {
        return Err(CliError::usage(format!(
            "departure {id} is already being rolled back (or was)"
        ))
        .hint(format!(
            "`offboard resume {id}` continues the rollback; `offboard status {id}` shows it"
        ))
        .into());
    }
    let facts = crate::departure::facts(&events).context("the journal has no departure")?;
    let runbook_path = args
        .runbook
        .clone()
        .unwrap_or_else(|| PathBuf::from(&facts.runbook.path));
    let runbook = load_runbook(ctx, &runbook_path).map_err(|e| {
        CliError::new(Exit::Usage, e).hint(
            "the runbook's [approvals] say who approves a rollback; give the runbook with -r FILE",
        )
    })?;
    let file = make_file(ctx, &runbook, &events)?;
    ctx.printer.result(render(ctx, &file));
    if let Some(out) = &args.out {
        let mut bytes = serde_json::to_vec_pretty(&file)?;
        bytes.push(b'\n');
        crate::state::write_atomic(out, &bytes)?;
        let roles: std::collections::BTreeSet<_> = file
            .payload
            .undo
            .iter()
            .flat_map(|u| u.requires.iter().copied())
            .collect();
        ctx.printer.info(format!(
            "Rollback plan written to {} (digest sha256:{})",
            out.display(),
            file.digest
        ));
        if !roles.is_empty() {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            ctx.printer.info(format!(
                "Approvals needed: {}. Each approver runs `offboard approve {} --role <ROLE> --key <THEIR KEY>`.",
                names.join(", "),
                out.display()
            ));
        }
        ctx.printer.info(format!(
            "Run it with `offboard start --plan {}`; it is refused if departure {id} changes meanwhile.",
            out.display()
        ));
    } else {
        ctx.printer.info(
            "Nothing was done. Write it with --out FILE, then run it with `offboard start --plan FILE`.",
        );
    }
    ctx.printer.json_result(&serde_json::json!({
        "rollback": file,
        "plan_file": args.out,
    }));
    Ok(Exit::Ok)
}

/// The departures the HR intake scheduled for `user` (by work email) that have not started.
fn scheduled_for(ctx: &Ctx, user: &str) -> anyhow::Result<Vec<crate::intake::index::Entry>> {
    let index = crate::intake::index::read(&ctx.state)?;
    Ok(index
        .events
        .into_values()
        .filter(|e| e.departure.is_none() && e.cancelled.is_none())
        .filter(|e| {
            e.scheduled
                .as_ref()
                .is_some_and(|s| s.termination.work_email.eq_ignore_ascii_case(user))
        })
        .collect())
}

/// Call off scheduled departures (with `--out`; without it, say what would be called off).
fn call_off(
    ctx: &Ctx,
    args: &RollbackArgs,
    scheduled: &[crate::intake::index::Entry],
) -> anyhow::Result<()> {
    let p = &ctx.printer;
    if args.out.is_none() {
        for e in scheduled {
            if let Some(s) = &e.scheduled {
                p.result(format!(
                    "The departure of {} scheduled for {} ({} event {}) has not started: with --out it is called off (nothing ran, so there is nothing to undo).",
                    safe(&s.termination.work_email),
                    crate::journal::timestamp(s.termination.effective_at),
                    e.source.name(),
                    safe(&e.event_id)
                ));
            }
        }
        return Ok(());
    }
    let intake = crate::intake::index::Intake::open(&ctx.state)?;
    for e in scheduled {
        let Some(s) = &e.scheduled else { continue };
        for off in intake.cancel_scheduled(
            e.source,
            &s.termination.employee_id,
            None,
            "rolled back before it started (offboard rollback)",
        )? {
            super::intake::called_off(ctx, &intake, &off, "rolled back before it started")?;
        }
    }
    Ok(())
}

/// The runbook at `path`; the demo's departures name the built-in one.
fn load_runbook(ctx: &Ctx, path: &Path) -> anyhow::Result<Runbook> {
    if path == Path::new(super::demo::DEMO_RUNBOOK_PATH) {
        return crate::runbook::load_str(path, super::demo::DEMO_RUNBOOK.to_string())
            .map_err(|e| common::invalid_runbook(ctx, e));
    }
    common::load_runbook(ctx, Some(path))
}

/// The rollback plan file for a departure's journal.
fn make_file(
    ctx: &Ctx,
    runbook: &Runbook,
    events: &[crate::journal::Event],
) -> anyhow::Result<RollbackFile> {
    let payload = crate::rollback::plan(events, runbook.file.approvals.as_ref())
        .context("the journal has no departure")?;
    let facts = crate::departure::facts(events).context("the journal has no departure")?;
    let mut requests = std::collections::BTreeMap::new();
    for u in payload.restores() {
        let lines = describe(ctx, facts, u);
        requests.insert(u.step.clone(), lines);
    }
    let path = if runbook.path == Path::new(super::demo::DEMO_RUNBOOK_PATH) {
        runbook.path.clone()
    } else {
        std::path::absolute(&runbook.path)
            .with_context(|| format!("resolving {}", runbook.path.display()))?
    };
    Ok(RollbackFile {
        format: ROLLBACK_FORMAT.into(),
        digest: payload.digest(),
        runbook_path: path.display().to_string(),
        payload,
        requests,
    })
}

/// The requests a restore will make (no secrets, no I/O).
fn describe(ctx: &Ctx, facts: &crate::departure::DepartureFacts, u: &UndoStep) -> Vec<String> {
    let (Some(system), Some(action), Some(before)) = (&u.system, &u.action, &u.before) else {
        return Vec::new();
    };
    let Some(def) = facts.systems.get(system) else {
        return Vec::new();
    };
    let Some(kind) = crate::providers::find_kind(&def.kind) else {
        return Vec::new();
    };
    let Ok(provider) = (kind.connect)(&crate::plan::system_config(system, def, ctx.state.root()))
    else {
        return Vec::new();
    };
    let planned = facts.steps.iter().find(|s| s.id == u.step);
    let empty = serde_json::Map::new();
    let (login, params) = planned
        .and_then(|p| p.automated.as_ref())
        .map(|a| (a.login.as_str(), &a.params))
        .unwrap_or(("", &empty));
    let call = StepCall {
        step_id: &u.step,
        action,
        login,
        params,
        account: u.account.as_ref(),
    };
    provider
        .describe_restore(&call, before)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// The rollback plan as a person reads it.
fn render(ctx: &Ctx, file: &RollbackFile) -> String {
    let p = &ctx.printer;
    let pl = &file.payload;
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "{} {} of {}, runbook \"{}\"; nothing has been done",
        p.bold("Rollback plan for departure"),
        safe(&pl.departure),
        safe(&pl.user),
        safe(&pl.runbook_name)
    ));
    line(format!(
        "made from its journal at event {} ({})",
        pl.journal_length, &pl.journal_head
    ));
    line(String::new());
    if pl.cancel.is_empty() {
        line("1. Cancel: no step is still open.".into());
    } else {
        line(format!(
            "1. Cancel {} open step(s), so no later run takes them up:",
            pl.cancel.len()
        ));
        for c in &pl.cancel {
            line(format!("   {}  ({})", safe(&c.step), c.status));
        }
    }
    line(String::new());
    if pl.undo.is_empty() {
        line("2. Undo: nothing was applied.".into());
    } else {
        line("2. Undo, newest first:".into());
    }
    for u in &pl.undo {
        let what = match (&u.system, &u.action) {
            (Some(s), Some(a)) => format!("{}.{}", safe(s), safe(a)),
            _ => "manual".into(),
        };
        let account = u
            .account
            .as_ref()
            .map(|a| format!(" on {}", safe(&a.to_string())))
            .unwrap_or_default();
        match &u.undo {
            Undo::Restore { what: back } => {
                line(format!(
                    "   {} {}  {what}{account}: {}",
                    p.green(&format!("{:<14}", "restore")),
                    safe(&u.step),
                    safe(back)
                ));
                if let Some(b) = &u.before {
                    line(format!(
                        "{:18}before: {}",
                        "",
                        safe(&crate::journal::canonical_json(b))
                    ));
                }
                for r in file.requests.get(&u.step).into_iter().flatten() {
                    line(format!("{:18}{}", "", safe(r)));
                }
                if !u.requires.is_empty() {
                    let names: Vec<&str> = u.requires.iter().map(|r| r.as_str()).collect();
                    line(format!("{:18}needs approval by: {}", "", names.join(", ")));
                }
            }
            Undo::NotRestorable { why } => line(format!(
                "   {} {}  {what}{account}: {}",
                p.yellow(&format!("{:<14}", "not restorable")),
                safe(&u.step),
                safe(why)
            )),
            Undo::ByHand { instruction } => line(format!(
                "   {} {}  {}{}",
                p.yellow(&format!("{:<14}", "by hand")),
                safe(&u.step),
                safe(instruction),
                u.owner
                    .as_ref()
                    .map(|o| format!(" (owner {})", safe(o)))
                    .unwrap_or_default()
            )),
        }
    }
    out.trim_end().to_string()
}

/// `start --plan rollback.json`: check the plan against the departure's journal now, collect its
/// approvals, journal the rollback's start and run it.
pub fn start(ctx: &Ctx, path: &Path) -> anyhow::Result<Exit> {
    let file = RollbackFile::read(path).map_err(|e| {
        CliError::new(Exit::Usage, e).hint(
            "make the rollback plan again with `offboard rollback <DEPARTURE> --out rollback.json`",
        )
    })?;
    let id = file.payload.departure.clone();
    if !crate::state::is_valid_id(&id) {
        return Err(CliError::usage(format!(
            "the rollback plan names no valid departure ({id:?})"
        ))
        .into());
    }
    let (id, _) = common::find_departure(ctx, &id)?;
    let key = common::signing_key(ctx)?;
    let driving = common::open_departure(ctx, &id, &key)?;
    let events = journal_events(&driving);
    if let Some(run) = RollbackRun::replay(&events) {
        if run.gate.digest == file.digest {
            ctx.printer.info(format!(
                "This rollback of {id} already began ({}); continuing it.",
                crate::ui::table::short(&run.started_at)
            ));
            return continue_rollback(ctx, &driving, &key);
        }
        return Err(CliError::usage(format!(
            "departure {id} is already being rolled back by another plan (sha256:{})",
            run.gate.digest
        ))
        .hint(format!("`offboard resume {id}` continues that rollback"))
        .into());
    }
    let runbook = load_runbook(ctx, Path::new(&file.runbook_path))?;
    let now = make_file(ctx, &runbook, &events)?;
    if now.digest != file.digest {
        let mut err = CliError::usage(format!(
            "the rollback plan is not the one made for departure {id} as it stands now: it hashes to {} now, {} in {}",
            now.digest,
            file.digest,
            path.display()
        ));
        for c in file.payload.differences(&now.payload) {
            err = err.hint(format!("changed: {}", safe(&c)));
        }
        return Err(err
            .hint(format!(
                "nothing was done; make it again with `offboard rollback {id} --out {}` (and have it approved again)",
                path.display()
            ))
            .into());
    }
    let plan_abs = std::path::absolute(path)?;
    let (signers_path, approvals) = match &runbook.file.approvals {
        Some(def) => {
            let base = Path::new(&file.runbook_path)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let signers_path = base.join(&def.allowed_signers);
            let signers = super::approve::read_signers(&signers_path)?;
            let approvals = super::approve::collect(&plan_abs, &file.digest, &signers, &[])?;
            (signers_path.display().to_string(), approvals)
        }
        None => (String::new(), Vec::new()),
    };
    driving.append(
        None,
        Record::RollbackStarted(Box::new(RollbackGate {
            digest: file.digest.clone(),
            plan_file: plan_abs.display().to_string(),
            allowed_signers: signers_path,
            plan: file.payload.clone(),
        })),
    )?;
    for a in approvals {
        ctx.printer.info(format!(
            "Approved as {} by {} ({})",
            a.role,
            safe(&a.principal),
            a.fingerprint
        ));
        driving.append(None, Record::RollbackApproved(a))?;
    }
    run(ctx, &driving, &key)
}

fn journal_events(driving: &Driving) -> Vec<crate::journal::Event> {
    let j = driving.journal.lock().unwrap_or_else(|p| p.into_inner());
    j.events().to_vec()
}

/// `resume` of a departure being rolled back: pick up approvals given since, then run what is
/// left of the rollback (a restore already attempted is checked before it is tried again).
pub fn continue_rollback(ctx: &Ctx, driving: &Driving, key: &SigningKey) -> anyhow::Result<Exit> {
    let events = journal_events(driving);
    let run_state = RollbackRun::replay(&events).context("no rollback in this journal")?;
    let gate = &run_state.gate;
    if !gate.allowed_signers.is_empty() {
        let signers = super::approve::read_signers(Path::new(&gate.allowed_signers))?;
        let new = super::approve::collect(
            Path::new(&gate.plan_file),
            &gate.digest,
            &signers,
            &run_state.approvals,
        )?;
        for a in new {
            ctx.printer.info(format!(
                "Approved as {} by {} ({})",
                a.role,
                safe(&a.principal),
                a.fingerprint
            ));
            driving.append(None, Record::RollbackApproved(a))?;
        }
    }
    run(ctx, driving, key)
}

/// Run the rollback recorded in the journal as far as it can go now, seal, summarise.
fn run(ctx: &Ctx, driving: &Driving, key: &SigningKey) -> anyhow::Result<Exit> {
    let p = &ctx.printer;
    driving.append(
        None,
        Record::RunStarted {
            command: "rollback".into(),
        },
    )?;
    let events = journal_events(driving);
    let state = crate::departure::DepartureState::replay(&events).context("no departure")?;
    let rb = RollbackRun::replay(&events).context("no rollback in this journal")?;
    let plan = rb.gate.plan.clone();
    p.info(format!(
        "{} {} of {}: {} step(s) to cancel, {} to undo",
        p.bold("Rolling back departure"),
        safe(&plan.departure),
        safe(&plan.user),
        plan.cancel.len(),
        plan.undo.len()
    ));
    let reason = format!(
        "cancelled by rollback (plan sha256:{})",
        &rb.gate.digest[..rb.gate.digest.len().min(12)]
    );
    // Listen before the first change (the cancels included), so that a signal from then on
    // journals where the rollback stopped instead of killing the process mid-way.
    let rt = common::runtime()?;
    let mut stop = {
        let _in_runtime = rt.enter();
        crate::app::StopSignals::listen()?
    };
    for c in &plan.cancel {
        if !rb.cancelled.contains(&c.step) {
            driving.append(
                Some(&c.step),
                Record::Cancelled {
                    reason: reason.clone(),
                },
            )?;
            p.detail(format!("cancelled {}", safe(&c.step)));
        }
    }
    let interrupted: Option<String> = rt.block_on(async {
        let work = async {
            for u in &plan.undo {
                let st = rb.state(&u.step);
                if st.is_settled() {
                    continue;
                }
                match &u.undo {
                    Undo::ByHand { .. } => {}
                    Undo::NotRestorable { why } => {
                        driving.append(
                            Some(&u.step),
                            Record::NotRestorable { reason: why.clone() },
                        )?;
                    }
                    Undo::Restore { .. } => {
                        let missing = rb.missing(u);
                        if !missing.is_empty() {
                            let names: Vec<&str> = missing.iter().map(|r| r.as_str()).collect();
                            p.warn(format!(
                                "{}: waiting for approval by {} (`offboard approve {} --role {}`, then `offboard resume {}`)",
                                safe(&u.step),
                                names.join(", "),
                                rb.gate.plan_file,
                                names[0],
                                plan.departure
                            ));
                            continue;
                        }
                        restore_one(ctx, driving, &state, u, st.attempted()).await?;
                    }
                }
            }
            Ok::<(), anyhow::Error>(())
        };
        tokio::select! {
            biased;
            reason = stop.recv() => Ok::<_, anyhow::Error>(Some(reason.to_string())),
            r = work => r.map(|()| None),
        }
    })?;
    drop(rt);
    if let Some(reason) = interrupted {
        driving.append(None, Record::Interrupted { reason })?;
        let sealed = driving.seal(&ctx.state, key)?;
        p.warn(format!(
            "interrupted. The journal is consistent; evidence so far: {}",
            sealed.json_path.display()
        ));
        p.info(format!(
            "Continue the rollback with: offboard resume {}",
            plan.departure
        ));
        return Ok(Exit::Interrupted);
    }
    let events = journal_events(driving);
    let rb = RollbackRun::replay(&events).context("no rollback in this journal")?;
    let complete = rb.is_complete();
    driving.append(None, Record::RunFinished { complete })?;
    let sealed = driving.seal(&ctx.state, key)?;
    p.result(summary(ctx, &rb));
    p.result(format!("Evidence: {}", sealed.json_path.display()));
    p.result(format!("Signature: {}", sealed.sig_path.display()));
    p.json_result(&serde_json::json!({
        "departure": plan.departure,
        "rollback": rb.gate.digest,
        "complete": complete,
        "evidence": sealed.json_path,
        "steps": plan.undo.iter().map(|u| serde_json::json!({
            "step": u.step,
            "outcome": rb.outcome(u),
            "state": rb.state(&u.step),
        })).collect::<Vec<_>>(),
    }));
    // The new evidence revision goes onto the ticket, as after any run.
    super::attach::after(ctx, driving, key);
    if complete {
        p.info(p.green(
            "Rolled back: every restore is back, and what could not be restored is recorded.",
        ));
        Ok(Exit::Ok)
    } else {
        p.info(p.yellow(&format!(
            "Rollback incomplete; `offboard resume {}` continues it.",
            plan.departure
        )));
        Ok(Exit::Incomplete)
    }
}

/// Restore one step (checking first when an earlier attempt may have done it), then check.
async fn restore_one(
    ctx: &Ctx,
    driving: &Driving,
    state: &crate::departure::DepartureState,
    u: &UndoStep,
    attempted: bool,
) -> anyhow::Result<()> {
    let p = &ctx.printer;
    let fail = |error: String| -> anyhow::Result<()> {
        p.warn(format!(
            "{}: restore failed: {}",
            safe(&u.step),
            safe(&error)
        ));
        driving.append(Some(&u.step), Record::RestoreFailed { error })
    };
    let (Some(system), Some(action), Some(before)) = (&u.system, &u.action, &u.before) else {
        return fail("the plan has no system, action or pre-state for this step".into());
    };
    let provider = match crate::engine::connect_system(system, &state.facts, ctx.state.root()) {
        Ok(p) => p,
        Err(e) => return fail(format!("system {system}: {e}")),
    };
    let planned = state.facts.steps.iter().find(|s| s.id == u.step);
    let empty = serde_json::Map::new();
    let (login, params) = planned
        .and_then(|s| s.automated.as_ref())
        .map(|a| (a.login.as_str(), &a.params))
        .unwrap_or(("", &empty));
    let call = StepCall {
        step_id: &u.step,
        action,
        login,
        params,
        account: u.account.as_ref(),
    };
    let timeout = std::time::Duration::from_secs(
        state
            .facts
            .systems
            .get(system)
            .and_then(|d| d.step_timeout_secs)
            .unwrap_or(300)
            .max(1),
    );
    let journal = driving.journal.clone();
    let step_id = u.step.clone();
    let cctx = CallCtx::new(move |note| {
        if let Err(e) = Journal::append_shared(&journal, Some(&step_id), Record::Retried(note)) {
            tracing::warn!("could not journal a retry: {e:#}");
        }
    });
    let check = |cctx: &CallCtx| {
        let call = &call;
        let provider = provider.clone();
        let cctx = cctx.clone();
        async move {
            tokio::time::timeout(timeout, provider.check_restored(call, before, &cctx))
                .await
                .unwrap_or_else(|_| {
                    Err(crate::providers::ProviderError::Transient(format!(
                        "no answer within {}s",
                        timeout.as_secs()
                    )))
                })
        }
    };
    let record_check = |c: crate::providers::RestoreCheck| -> anyhow::Result<bool> {
        let restored = c.restored;
        p.detail(format!("{}: {}", safe(&u.step), safe(&c.observed)));
        driving.append(
            Some(&u.step),
            Record::RestoreChecked {
                after: c.after,
                restored: c.restored,
                observed: c.observed,
                account: c.account,
            },
        )?;
        Ok(restored)
    };
    // A restore an earlier run attempted may have taken effect: look before acting again.
    if attempted {
        match check(&cctx).await {
            Ok(c) if c.restored => {
                record_check(c)?;
                p.info(format!(
                    "{} {} (already back)",
                    p.green("restored"),
                    safe(&u.step)
                ));
                return Ok(());
            }
            Ok(_) => {}
            Err(e) => return fail(e.to_string()),
        }
    }
    p.info(format!(
        "restoring {} ({})",
        safe(&u.step),
        safe(&format!("{system}.{action}"))
    ));
    let out = tokio::time::timeout(timeout, provider.restore(&call, before, &cctx))
        .await
        .unwrap_or_else(|_| {
            Err(crate::providers::ProviderError::Transient(format!(
                "no answer within {}s; it may or may not have taken effect, and resume checks first",
                timeout.as_secs()
            )))
        });
    match out {
        Ok(o) => driving.append(
            Some(&u.step),
            Record::Restored {
                changed: o.changed,
                summary: o.summary,
                requests: o.requests,
                account: o.account,
            },
        )?,
        Err(e) => return fail(e.to_string()),
    }
    match check(&cctx).await {
        Ok(c) => {
            let observed = c.observed.clone();
            if record_check(c)? {
                p.info(format!(
                    "{} {}: {}",
                    p.green("restored"),
                    safe(&u.step),
                    safe(&observed)
                ));
            } else {
                p.warn(format!(
                    "{}: not fully restored: {}",
                    safe(&u.step),
                    safe(&observed)
                ));
            }
            Ok(())
        }
        Err(e) => fail(format!("the check after the restore: {e}")),
    }
}

/// The end-of-rollback table: one line per undo step.
fn summary(ctx: &Ctx, rb: &RollbackRun) -> String {
    let p = &ctx.printer;
    let mut out = String::new();
    if !rb.gate.plan.cancel.is_empty() {
        let names: Vec<String> = rb.gate.plan.cancel.iter().map(|c| safe(&c.step)).collect();
        out.push_str(&format!("cancelled: {}\n", names.join(", ")));
    }
    for u in &rb.gate.plan.undo {
        let st = rb.state(&u.step);
        let outcome = rb.outcome(u);
        let padded = format!("{outcome:<20}");
        let word = match outcome {
            "restored" => p.green(&padded),
            "by hand" | "waiting for approval" | "pending" => p.yellow(&padded),
            _ => p.red(&padded),
        };
        let detail = match (&u.undo, outcome) {
            (Undo::ByHand { instruction }, _) => instruction.clone(),
            (_, "not restorable") => st.not_restorable.clone().unwrap_or_default(),
            (_, "failed") => st.error.clone().unwrap_or_default(),
            _ => st
                .check
                .as_ref()
                .map(|c| c.observed.clone())
                .unwrap_or_default(),
        };
        out.push_str(&format!("{:<22} {word} {}\n", safe(&u.step), safe(&detail)));
    }
    out.trim_end().to_string()
}
