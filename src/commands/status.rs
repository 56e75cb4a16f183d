//! `offboard status`: departures, or one departure's lanes and steps.

use crate::cli::StatusArgs;
use crate::departure::DepartureState;
use crate::exit::Exit;
use crate::journal::{self, Journal};
use crate::ui::{safe, table};

use super::{Ctx, common};

pub fn exec(ctx: &Ctx, args: StatusArgs) -> anyhow::Result<Exit> {
    let p = &ctx.printer;
    let now = journal::now();
    let Some(wanted) = args.departure else {
        let mut states = Vec::new();
        for id in ctx.state.departure_ids()? {
            match Journal::read(&ctx.state.journal_path(&id)) {
                Ok(events) => states.extend(DepartureState::replay(&events)),
                Err(e) => p.warn(format!("{id}: {e:#}")),
            }
        }
        let scheduled = super::intake::scheduled_list(ctx)?;
        if states.is_empty() && scheduled.is_empty() {
            p.result(format!("No departures in {}.", ctx.state.root().display()));
            p.info("Start one with `offboard start USER -r RUNBOOK`, or try `offboard demo`.");
        } else if !states.is_empty() {
            p.result(table::departures(p, &states, now));
        }
        if !scheduled.is_empty() {
            p.result(format!(
                "Scheduled from HR events (`offboard intake due` starts each at its time):\n{}",
                scheduled
                    .iter()
                    .filter_map(|e| e.scheduled.as_ref().map(|s| format!(
                        "  {} · {} · effective {} · {} event {}",
                        safe(&s.termination.work_email),
                        s.termination.departure_type.as_str(),
                        journal::timestamp(s.termination.effective_at),
                        e.source.name(),
                        safe(&e.event_id)
                    )))
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
        let mut listing = serde_json::json!({
            "departures": states.iter().map(|s| serde_json::json!({
                "id": s.facts.id,
                "user": s.facts.user,
                "type": s.facts.departure_type,
                "started_at": s.started_at,
                "complete": s.is_complete(),
                "legal_hold": s.hold.active,
                "overdue": s.overdue(now).iter().map(|p| &p.id).collect::<Vec<_>>(),
                "counts": s.counts().iter().map(|(k, v)| (k.as_str().to_string(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
            })).collect::<Vec<_>>()
        });
        // Departures scheduled from HR events, when there are any (`offboard intake due`).
        if !scheduled.is_empty() {
            listing["scheduled"] = scheduled
                .iter()
                .filter_map(|e| {
                    e.scheduled.as_ref().map(|s| {
                        serde_json::json!({
                            "user": s.termination.work_email,
                            "type": s.termination.departure_type,
                            "effective_at": journal::timestamp(s.termination.effective_at),
                            "source": e.source,
                            "event_id": e.event_id,
                        })
                    })
                })
                .collect::<Vec<_>>()
                .into();
        }
        p.json_result(&listing);
        return Ok(Exit::Ok);
    };
    let (id, events) = common::find_departure(ctx, &wanted)?;
    // Read-only: a journal that is not what was signed cannot be refused here, only shouted about.
    let integrity = crate::integrity::check(&ctx.state, &id, common::local_trust(ctx));
    if let Err(t) = &integrity {
        p.warn(p.red(&format!(
            "THE JOURNAL OF {id} IS NOT WHAT WAS SIGNED. {t}. What follows is read from the journal as it is now; resume, confirm, verify, hold and release refuse to run on it (exit 5)."
        )));
    }
    let state = DepartureState::replay(&events).ok_or_else(|| {
        anyhow::anyhow!("the journal of {} has no departure facts", safe(&wanted))
    })?;
    let f = &state.facts;
    p.result(format!(
        "{} {} · {} ({}) · runbook \"{}\" · effective {}{}",
        p.bold("Departure"),
        safe(&f.id),
        safe(&f.user),
        f.departure_type.as_str(),
        safe(&f.runbook.name),
        table::short(&f.effective_at),
        f.ticket
            .as_deref()
            .map(|t| format!(" · ticket {}", safe(t)))
            .unwrap_or_default()
    ));
    let mut lanes: std::collections::BTreeMap<crate::runbook::Lane, (usize, usize)> =
        Default::default();
    for (planned, st) in state.ordered() {
        let e = lanes.entry(planned.lane).or_default();
        e.1 += 1;
        if st.status().is_settled() {
            e.0 += 1;
        }
    }
    p.result(format!(
        "lanes: {}",
        lanes
            .iter()
            .map(|(lane, (done, all))| format!("{} {done}/{all}", lane.as_str()))
            .collect::<Vec<_>>()
            .join(" · ")
    ));
    if let Some(prev) = &f.previous {
        p.result(format!(
            "started with --new while departure {prev} of the same person was still open"
        ));
    }
    if let Some(h) = state.hold.current() {
        let blocked = state.destructive_open();
        p.result(p.red(&format!(
            "LEGAL HOLD since {} by {}: {}",
            table::short(&h.at),
            safe(&h.by),
            safe(&h.reason)
        )));
        p.result(format!(
            "  destructive steps blocked: {}; lift it with `offboard release {} --reason TEXT`",
            if blocked.is_empty() {
                "none left to run".to_string()
            } else {
                blocked
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            f.id
        ));
    } else if let Some(last) = state.hold.history.last() {
        p.result(format!(
            "Legal hold released {} by {}: {}",
            table::short(&last.at),
            safe(&last.by),
            safe(&last.reason)
        ));
        let waiting: Vec<&str> = state
            .destructive_open()
            .into_iter()
            .filter(|s| state.steps[&s.id].status() == crate::departure::Status::Skipped)
            .map(|s| s.id.as_str())
            .collect();
        if !waiting.is_empty() {
            p.result(format!(
                "  held back while it was in force, they run at the next `offboard resume {}`: {}",
                f.id,
                waiting.join(", ")
            ));
        }
    }
    p.result(table::steps(p, &state, now));
    let rollback = crate::rollback::RollbackRun::replay(&events);
    if let Some(rb) = &rollback {
        p.result(rollback_lines(ctx, rb));
    }
    ticket_line(ctx, &state);
    if let Some((at, holding, drift, errors)) = &state.last_verify {
        p.result(format!(
            "Last verify {}: {holding} holding, {drift} drift, {errors} could not run",
            table::short(at)
        ));
    }
    let overdue = state.overdue(now);
    if !overdue.is_empty() {
        p.result(p.red(&format!(
                "{} step(s) overdue: {}",
                overdue.len(),
                overdue
                    .iter()
                    .map(|s| format!(
                        "{} ({})",
                        safe(&s.id),
                        safe(s.owner.as_deref().unwrap_or("no owner"))
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
    }
    let mut json = serde_json::json!({
        "departure": f,
        "complete": state.is_complete(),
        "legal_hold": state.hold,
        "integrity": match &integrity {
            Ok(signed) => serde_json::json!({
                "intact": true,
                "evidence": signed.as_ref().map(|s| &s.file),
                "revision": signed.as_ref().map(|s| s.revision),
            }),
            Err(t) => serde_json::json!({
                "intact": false,
                "problem": t.to_string(),
                "first_bad_line": t.first_bad_line(),
            }),
        },
        "steps": common::steps_json(&state),
        "ticket": {
            "attached": state.ticket.attached.last().map(|(at, a)| serde_json::json!({"at": at, "attach": a})),
            "pending": state.ticket.pending.as_ref().map(|(at, f)| serde_json::json!({"at": at, "failure": f})),
            "closed": state.ticket.closed.last().map(|(at, c)| serde_json::json!({"at": at, "close": c})),
        },
    });
    // Only a departure being (or that was) rolled back has the key.
    if let Some(rb) = &rollback {
        json["rollback"] = serde_json::json!({
            "plan_digest": rb.gate.digest,
            "started_at": rb.started_at,
            "complete": rb.is_complete(),
            "steps": rb.gate.plan.undo.iter().map(|u| serde_json::json!({
                "step": u.step,
                "outcome": rb.outcome(u),
            })).collect::<Vec<_>>(),
        });
    }
    p.json_result(&json);
    // A rollback still under way leaves the departure open too.
    let rollback_open = rollback.as_ref().is_some_and(|rb| !rb.is_complete());
    Ok(if state.is_complete() && !rollback_open {
        Exit::Ok
    } else {
        Exit::Incomplete
    })
}

/// Where a rollback stands: each undo step's outcome, grouped, and what to do next.
fn rollback_lines(ctx: &Ctx, rb: &crate::rollback::RollbackRun) -> String {
    let p = &ctx.printer;
    let mut groups: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for u in &rb.gate.plan.undo {
        groups.entry(rb.outcome(u)).or_default().push(safe(&u.step));
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(outcome, steps)| format!("{outcome}: {}", steps.join(", ")))
        .collect();
    let head = format!(
        "Rolled back by plan sha256:{} (started {}){}",
        &rb.gate.digest[..rb.gate.digest.len().min(12)],
        table::short(&rb.started_at),
        if rb.is_complete() {
            String::new()
        } else {
            format!(
                " — NOT complete: `offboard resume {}` continues it",
                rb.gate.plan.departure
            )
        }
    );
    let head = if rb.is_complete() {
        p.green(&head)
    } else {
        p.yellow(&head)
    };
    format!("{head}\n  {}", parts.join("; "))
}

/// Where the evidence went: the last attach to the service desk ticket, or the one pending.
fn ticket_line(ctx: &Ctx, state: &DepartureState) {
    let p = &ctx.printer;
    let t = &state.ticket;
    if let Some((at, f)) = &t.pending {
        p.result(p.yellow(&format!(
            "Ticket: attaching evidence revision {} to {} ticket {} is pending (failed {}: {}); retry with `offboard attach {}`",
            f.revision,
            f.desk.kind,
            safe(&f.desk.ticket),
            table::short(at),
            safe(&f.error),
            state.facts.id
        )));
    } else if let Some((at, a)) = t.attached.last() {
        let closed = t
            .closed
            .iter()
            .rev()
            .find(|(_, c)| c.desk.ticket == a.desk.ticket)
            .map(|(_, c)| format!("; set to \"{}\"", safe(&c.status)))
            .unwrap_or_default();
        p.result(format!(
            "Ticket: evidence revision {} on {} ticket {} ({}){closed}",
            a.revision,
            a.desk.kind,
            safe(&a.desk.ticket),
            table::short(at)
        ));
        if a.revision < state.evidence_revision {
            p.result(format!(
                "  revision {} is not on the ticket yet: `offboard attach {}`",
                state.evidence_revision, state.facts.id
            ));
        }
    }
}
