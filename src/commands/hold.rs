//! `offboard hold` and `offboard release`: place or lift a legal hold on an open departure.
//!
//! A hold is a journal event (`hold_placed`, `hold_released`) whose actor is who ran the
//! command, with the reason they gave. From a `hold_placed` on, the engine skips every
//! destructive step ("legal hold: destructive step blocked"); after a `hold_released` those
//! steps run at the next `resume`. Both commands re-sign the evidence, which lists the hold's
//! history and every step it blocked.

use crate::cli::HoldArgs;
use crate::departure::{DepartureState, Status};
use crate::exit::{CliError, Exit};
use crate::journal::Record;
use crate::ui::{safe, table};

use super::{Ctx, common};

/// A hold's reason: required, and not blank.
pub fn reason(text: &str) -> anyhow::Result<String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(CliError::usage("the reason is empty")
            .hint("say why, for the record: --reason \"litigation hold, matter 2026-114 (legal@corp.example)\"")
            .into());
    }
    Ok(t.to_string())
}

/// `offboard hold`.
pub fn exec_hold(ctx: &Ctx, args: HoldArgs) -> anyhow::Result<Exit> {
    let why = reason(&args.reason)?;
    let (id, _) = common::find_departure(ctx, &args.departure)?;
    let key = common::signing_key(ctx)?;
    let driving = common::open_departure(ctx, &id, &key)?;
    place(ctx, &driving, &id, why)?;
    let sealed = driving.seal(&ctx.state, &key)?;
    let state = driving.state();
    ctx.printer.result(format!(
        "Evidence re-signed: {} (revision {}).",
        sealed.json_path.display(),
        sealed.revision
    ));
    ctx.printer.json_result(&serde_json::json!({
        "departure": id,
        "legal_hold": state.hold,
        "blocks": state.destructive_open().iter().map(|s| &s.id).collect::<Vec<_>>(),
        "evidence": sealed.json_path,
        "revision": sealed.revision,
    }));
    Ok(Exit::Ok)
}

/// Journal a hold on a departure this process drives, and say what it blocks. Refused when a
/// hold is already in force or the departure is complete (nothing is left to block).
pub fn place(ctx: &Ctx, driving: &common::Driving, id: &str, why: String) -> anyhow::Result<()> {
    let p = &ctx.printer;
    let state = driving.state();
    if let Some(h) = state.hold.current() {
        return Err(CliError::usage(format!(
            "departure {id} is already under legal hold, placed {} by {}: {}",
            table::short(&h.at),
            safe(&h.by),
            safe(&h.reason)
        ))
        .hint(format!(
            "it stays in force until `offboard release {id} --reason TEXT`; `offboard status {id}` shows it"
        ))
        .into());
    }
    let done = destructive_done(&state);
    if state.is_complete() {
        let mut err = CliError::usage(format!(
            "departure {id} is complete: every step has run, so a hold has nothing left to block"
        ));
        if !done.is_empty() {
            err = err.hint(format!(
                "destructive steps already done: {}",
                done.join(", ")
            ));
        }
        return Err(err
            .hint(format!(
                "`offboard status {id}` and its evidence show what was done and when"
            ))
            .into());
    }
    driving.append(None, Record::HoldPlaced { reason: why })?;
    let state = driving.state();
    let h = state.hold.current().expect("just placed");
    p.result(format!(
        "{} on departure {id} ({}) by {}: {}",
        p.bold("Legal hold placed"),
        safe(&state.facts.user),
        safe(&h.by),
        safe(&h.reason)
    ));
    let blocks: Vec<&str> = state
        .destructive_open()
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    if blocks.is_empty() {
        p.result(
            "No destructive step is left to run; the hold is recorded and blocks any that would.",
        );
    } else {
        p.result(format!(
            "Blocked from now on: {} (recorded as skipped: legal hold).",
            blocks.join(", ")
        ));
    }
    if !done.is_empty() {
        p.warn(format!(
            "destructive steps already done before the hold: {}",
            done.join(", ")
        ));
    }
    Ok(())
}

/// `offboard release`.
pub fn exec_release(ctx: &Ctx, args: HoldArgs) -> anyhow::Result<Exit> {
    let why = reason(&args.reason)?;
    let (id, _) = common::find_departure(ctx, &args.departure)?;
    let key = common::signing_key(ctx)?;
    let driving = common::open_departure(ctx, &id, &key)?;
    let p = &ctx.printer;
    if !driving.state().hold.active {
        return Err(
            CliError::usage(format!("departure {id} is not under legal hold"))
                .hint(format!("`offboard status {id}` shows its hold history"))
                .into(),
        );
    }
    driving.append(None, Record::HoldReleased { reason: why })?;
    let sealed = driving.seal(&ctx.state, &key)?;
    let state = driving.state();
    let released = state.hold.history.last().expect("just released");
    p.result(format!(
        "{} on departure {id} ({}) by {}: {}",
        p.bold("Legal hold released"),
        safe(&state.facts.user),
        safe(&released.by),
        safe(&released.reason)
    ));
    let waiting: Vec<&str> = state
        .destructive_open()
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    if !waiting.is_empty() {
        p.result(format!(
            "Destructive steps now free to run: {}. They run at the next `offboard resume {id}`.",
            waiting.join(", ")
        ));
    }
    p.result(format!(
        "Evidence re-signed: {} (revision {}).",
        sealed.json_path.display(),
        sealed.revision
    ));
    p.json_result(&serde_json::json!({
        "departure": id,
        "legal_hold": state.hold,
        "unblocked": waiting,
        "evidence": sealed.json_path,
        "revision": sealed.revision,
    }));
    Ok(Exit::Ok)
}

/// Destructive steps that already ran to the end, with when.
fn destructive_done(state: &DepartureState) -> Vec<String> {
    state
        .ordered()
        .filter(|(p, s)| {
            p.automated.as_ref().is_some_and(|a| a.destructive) && s.status() == Status::Done
        })
        .map(|(p, s)| match &s.finished_at {
            Some(t) => format!("{} ({})", p.id, table::short(t)),
            None => p.id.clone(),
        })
        .collect()
}
