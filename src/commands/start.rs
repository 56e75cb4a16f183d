//! `offboard start`: plan, then run a departure.

use crate::cli::StartArgs;
use crate::exit::{CliError, Exit};
use crate::person::PersonLock;

use super::{Ctx, common};

pub fn exec(ctx: &Ctx, args: StartArgs) -> anyhow::Result<Exit> {
    if let Some(csv) = args.from.clone() {
        return super::bulk::start(ctx, args, &csv);
    }
    if args.from_event.is_some() {
        return super::intake::start_from_event(ctx, args);
    }
    if let Some(plan) = args.plan.clone() {
        // A rollback plan (`offboard rollback --out`) runs against the departure it was made of.
        if crate::rollback::is_rollback_file(&plan) {
            return super::rollback::start(ctx, &plan);
        }
        let (approved, input) = super::approve::input_of(&plan)?;
        let args = StartArgs { input, ..args };
        return run_plan(ctx, args, Some((&plan, &approved)));
    }
    run(ctx, args, None)
}

/// Start a departure; `intake` (an HR event) is stamped into its facts and indexed as started.
pub(crate) fn run(
    ctx: &Ctx,
    args: StartArgs,
    intake: Option<&super::intake::StartHook<'_>>,
) -> anyhow::Result<Exit> {
    run_with(ctx, args, intake, None)
}

/// Start a departure from an approved plan file (`start --plan`).
fn run_plan(
    ctx: &Ctx,
    args: StartArgs,
    plan: Option<(&std::path::Path, &crate::approval::PlanFile)>,
) -> anyhow::Result<Exit> {
    run_with(ctx, args, None, plan)
}

fn run_with(
    ctx: &Ctx,
    args: StartArgs,
    intake: Option<&super::intake::StartHook<'_>>,
    plan: Option<(&std::path::Path, &crate::approval::PlanFile)>,
) -> anyhow::Result<Exit> {
    if args.dry_run {
        return super::plan::show(ctx, &args.input);
    }
    let runbook = common::load_runbook(ctx, args.input.runbook.runbook.as_deref())?;
    let interactive = !args.non_interactive && common::stdin_is_terminal();
    let req = common::departure_request(ctx, &args.input, &runbook, interactive)?;
    check_effective_at(req.effective_at)?;
    let runbook_name = runbook.file.runbook.name.clone();
    let user = crate::ui::safe(&req.user);
    ctx.state.ensure()?;
    // One departure of a person driven at a time: a live run elsewhere stops us here (exit 1,
    // naming its pid and host). Held until this run ends, the wait for --effective-at included.
    let person = PersonLock::acquire(&ctx.state, &runbook_name, &req.user, &req.id)?;
    let mut previous = None;
    // A departure of theirs whose journal is damaged is open as far as anyone can tell.
    if let Some((id, e)) = common::damaged_departures(ctx, Some(&runbook_name), &req.user)?
        .into_iter()
        .next()
    {
        if !args.new {
            return Err(CliError::new(
                Exit::InvalidEvidence,
                anyhow::anyhow!("{user} has a departure whose journal cannot be trusted, {id}: {e:#}"),
            )
            .hint("keep its directory as it is for whoever investigates")
            .hint(format!(
                "to go on offboarding {user}, add --new: the new departure records {id} as its predecessor"
            ))
            .into());
        }
        previous = Some(id);
    }
    if let Some((id, events, state)) = common::open_departures(ctx, &runbook_name, &req.user)?
        .into_iter()
        .next()
        .filter(|(id, ..)| previous.as_ref().is_none_or(|p| id > p))
    {
        // No process runs it (we hold the person's lock), yet it is not complete.
        let cut_off = common::was_cut_off(&events);
        if args.new {
            ctx.printer.warn(format!(
                "{user} still has an open departure, {id}; starting a second one (--new), which records {id} as its predecessor"
            ));
            previous = Some(id);
        } else {
            if cut_off && interactive {
                let question = format!(
                    "{user} has an unfinished departure, {id}, whose last run was cut off. Resume it instead?"
                );
                if common::ask_yes_no(&question, true)? {
                    drop(person);
                    return super::resume::exec(
                        ctx,
                        crate::cli::ResumeArgs {
                            departure: Some(id),
                            from: None,
                            batch: None,
                            parallel: 1,
                            non_interactive: args.non_interactive,
                            legal_hold: false,
                            reason: None,
                            operator: args.operator.clone(),
                            attach: args.attach.clone(),
                        },
                    );
                }
            }
            return Err(already_open(&user, &id, &state, cut_off));
        }
    }
    if previous.is_none()
        && let Some((id, events)) = ctx.state.find_departure(&req.user)?
        && let Some(state) = crate::departure::DepartureState::replay(&events)
        && !state.is_complete()
    {
        ctx.printer.warn(format!(
            "{user} also has an open departure under runbook \"{}\", {id}; `offboard status {id}` shows it",
            crate::ui::safe(&state.facts.runbook.name)
        ));
    }
    let mut facts = crate::plan::build(&runbook, &req, ctx.state.root())
        .map_err(|e| CliError::new(Exit::Usage, e))?;
    facts.previous = previous;
    if let Some(hook) = intake {
        hook.stamp(&mut facts);
    }
    // An approved plan: what would run now must be what was approved.
    let approvals = match plan {
        Some((path, approved)) => super::approve::gate(ctx, &runbook, &mut facts, path, approved)?,
        None => Vec::new(),
    };
    if !wait_until_effective(ctx, req.effective_at)? {
        return Ok(Exit::Interrupted);
    }
    // Look before cutting: an unset token or a person the system does not know is found now,
    // all at once, instead of halfway through an involuntary departure.
    let found = super::preflight::look(ctx, &facts)?;
    super::preflight::report(ctx, &facts, &found, false);
    if found.problems() > 0 && !args.force {
        return Err(CliError::new(
            Exit::Failure,
            anyhow::anyhow!(
                "preflight found {} problem(s): nothing was cut and no departure was recorded",
                found.problems()
            ),
        )
        .hint("fix what it names and start again (`offboard preflight` repeats the look alone)")
        .hint("or cut what can be cut now with `offboard start … --force`; the steps it named fail and are recorded")
        .into());
    }
    if let Some(hook) = intake {
        hook.record(&facts.id)?;
    }
    if plan.is_some() {
        let key = common::signing_key(ctx)?;
        let driving =
            crate::app::Driving::begin(&common::session(ctx), facts, person, "start", Some(found))?;
        super::approve::record(&driving, approvals)?;
        return common::drive(ctx, &driving, &key, interactive, "run");
    }
    common::start_departure(ctx, facts, person, interactive, "start", Some(found))
}

/// The refusal to start a second departure for a person with one open (exit 2).
fn already_open(
    user: &str,
    id: &str,
    state: &crate::departure::DepartureState,
    cut_off: bool,
) -> anyhow::Error {
    let new_hint = format!(
        "to start a second departure anyway, add --new (the new one records {id} as its predecessor)"
    );
    if cut_off {
        // The last run never reached its end and nothing runs it now: a second departure would
        // act on the same accounts with no memory of what the first one did.
        return CliError::usage(format!(
            "{user} has a departure that was cut off: {id} (its last run stopped before the end, and no process is running it now)"
        ))
        .hint(format!("resume it with `offboard resume {id}`"))
        .hint(new_hint)
        .into();
    }
    let open = state
        .steps
        .values()
        .filter(|s| !s.status().is_settled())
        .count();
    CliError::usage(format!(
        "{user} already has an open departure under runbook \"{}\": {id} ({open} step(s) still open)",
        crate::ui::safe(&state.facts.runbook.name)
    ))
    .hint(format!(
        "carry it on: `offboard confirm {id} <STEP>` records a manual step, `offboard resume {id}` runs what is left, `offboard status {id}` shows where it stands"
    ))
    .hint(new_hint)
    .into()
}

/// Refuse an effective time too far ahead, before anything is locked or written.
pub(super) fn check_effective_at(at: chrono::DateTime<chrono::Utc>) -> anyhow::Result<()> {
    if (at - crate::journal::now())
        .to_std()
        .is_ok_and(|w| w > MAX_WAIT)
    {
        return Err(CliError::usage(format!(
            "the departure takes effect at {}, more than 24 hours from now",
            crate::journal::timestamp(at)
        ))
        .hint("run `offboard start` closer to that time (e.g. from cron or `at`), or check it now with `offboard plan`")
        .into());
    }
    Ok(())
}

const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Hold the run until the departure takes effect. Returns false when Ctrl-C ended the wait
/// (nothing was done).
fn wait_until_effective(ctx: &Ctx, at: chrono::DateTime<chrono::Utc>) -> anyhow::Result<bool> {
    let wait = at - crate::journal::now();
    let Ok(wait) = wait.to_std() else {
        return Ok(true);
    };
    if wait > MAX_WAIT {
        check_effective_at(at)?;
    }
    ctx.printer.info(format!(
        "Waiting until {} ({} min) before cutting access. Ctrl-C stops the wait; nothing has been done yet.",
        crate::journal::timestamp(at),
        wait.as_secs().div_ceil(60)
    ));
    let rt = common::runtime()?;
    let reached = rt.block_on(async {
        let mut stop = common::StopSignals::listen()?;
        Ok::<_, anyhow::Error>(tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = stop.recv() => false,
        })
    })?;
    if !reached {
        ctx.printer
            .warn("stopped before the departure took effect; nothing was done");
    }
    Ok(reached)
}
