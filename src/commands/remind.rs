//! `offboard remind`: tell owners about manual steps due soon or overdue, and escalate those
//! overdue by `escalate_after`, on the channels of the runbook's `[notify]` table. Each send is
//! journaled (`notified`) in its departure's journal, under the departure's lock; what the
//! journal shows sent within `interval` is not sent again, and a failed send is tried again at
//! the next run.

use chrono::{DateTime, Utc};

use crate::cli::RemindArgs;
use crate::departure::DepartureState;
use crate::exit::{CliError, Exit};
use crate::journal::{self, Event, Journal, Record};
use crate::notify::remind::{self, Due};
use crate::notify::send::Channels;
use crate::notify::{Channel, Message, NotifyDef, Timing};
use crate::ui::safe;

use super::{Ctx, common};

/// One message about to go out.
struct Outgoing {
    channel: Channel,
    msg: Message,
    steps: Vec<String>,
}

pub fn exec(ctx: &Ctx, args: RemindArgs) -> anyhow::Result<Exit> {
    let p = &ctx.printer;
    let rb = common::load_runbook(ctx, args.runbook.runbook.as_deref())?;
    let def = notify_def(&rb)?;
    let timing = def.timing();
    let channels = Channels::connect(&def);
    if channels.is_empty() {
        return Err(CliError::usage(format!(
            "the [notify] table of {} turns every channel off: there is nothing to send on",
            rb.path.display()
        ))
        .hint("add [notify.email], [notify.slack] or [notify.teams], or set ticket_note = true with [ticketing]")
        .into());
    }
    let now = journal::now();
    let rt = common::runtime()?;
    let key = if args.dry_run {
        None
    } else {
        Some(common::signing_key(ctx)?)
    };
    let (mut sent, mut failed, mut held, mut busy) = (0usize, 0usize, 0usize, 0usize);
    let mut rows = Vec::new();
    for id in ctx.state.departure_ids()? {
        let events = match Journal::read(&ctx.state.journal_path(&id)) {
            Ok(e) => e,
            Err(e) => {
                p.warn(format!("{id}: {e:#}"));
                continue;
            }
        };
        let Some(state) = DepartureState::replay(&events) else {
            continue;
        };
        let steps = remind::step_escalations(&rb, &state.facts);
        let (out, h) = plan(&state, &events, now, &timing, &steps, &channels);
        if out.is_empty() {
            held += h;
            continue;
        }
        let Some(key) = &key else {
            held += h;
            for o in &out {
                p.result(line("would send", &id, &o.channel, &o.msg, &o.steps, None));
                rows.push(json_row(&id, o, "would_send", None));
            }
            continue;
        };
        // Under the departure's lock, from the journal as it is now: another remind may have
        // just sent these.
        let driving = match common::open_departure(ctx, &id, key) {
            Ok(d) => d,
            Err(e) => {
                p.warn(format!(
                    "{id}: not reminded this time (tried again at the next run): {e:#}"
                ));
                busy += 1;
                continue;
            }
        };
        let events = {
            let j = driving.journal.lock().unwrap_or_else(|p| p.into_inner());
            j.events().to_vec()
        };
        let state = driving.state();
        let (out, h) = plan(&state, &events, now, &timing, &steps, &channels);
        held += h;
        for o in out {
            let r = rt.block_on(channels.send(o.channel, &state.facts, &o.msg));
            driving.append(
                None,
                Record::Notified(remind::record(o.channel, &o.msg, &o.steps, &r)),
            )?;
            match &r {
                Ok(()) => {
                    sent += 1;
                    p.result(line("sent", &id, &o.channel, &o.msg, &o.steps, None));
                    rows.push(json_row(&id, &o, "sent", None));
                }
                Err(e) => {
                    failed += 1;
                    p.result(p.red(&line(
                        "FAILED",
                        &id,
                        &o.channel,
                        &o.msg,
                        &o.steps,
                        Some(&e.0),
                    )));
                    rows.push(json_row(&id, &o, "failed", Some(&e.0)));
                }
            }
        }
    }
    let interval = crate::notify::human(timing.interval);
    let summary = if args.dry_run {
        format!(
            "Dry run: {} notification(s) would be sent; {held} already sent within {interval}. Nothing was sent or journaled.",
            rows.len()
        )
    } else {
        let mut s = format!("Reminders: {sent} sent, {failed} failed");
        if failed > 0 {
            s.push_str(" (tried again at the next run)");
        }
        s.push_str(&format!("; {held} already sent within {interval}"));
        if busy > 0 {
            s.push_str(&format!("; {busy} departure(s) busy or refused, see above"));
        }
        s.push('.');
        s
    };
    p.result(summary);
    p.json_result(&serde_json::json!({
        "dry_run": args.dry_run,
        "notifications": rows,
        "sent": sent,
        "failed": failed,
        "already_sent": held,
        "busy": busy,
    }));
    Ok(if failed > 0 || busy > 0 {
        Exit::Failure
    } else {
        Exit::Ok
    })
}

/// The runbook's `[notify]`, or a usage error saying how to add one.
pub fn notify_def(rb: &crate::runbook::Runbook) -> anyhow::Result<NotifyDef> {
    rb.file.notify.clone().ok_or_else(|| {
        CliError::usage(format!(
            "the runbook {} has no [notify] table: there is no channel to send on",
            rb.path.display()
        ))
        .hint("add one, e.g. `[notify.email]` with host, from, user and password = { env = \"SMTP_PASSWORD\" }; runbooks/README.md describes [notify]")
        .into()
    })
}

/// What is to be sent for one departure now, and how many (step, channel) reminders were held
/// back because the journal shows them sent within the interval.
fn plan(
    state: &DepartureState,
    events: &[Event],
    now: DateTime<Utc>,
    timing: &Timing,
    escalate_after: &std::collections::BTreeMap<String, chrono::Duration>,
    channels: &Channels,
) -> (Vec<Outgoing>, usize) {
    let mut out = Vec::new();
    let mut held = 0;
    for due in remind::due(state, now, timing, escalate_after) {
        for channel in channels.for_recipient(&state.facts, &due.to) {
            let fresh: Vec<_> = due
                .steps
                .iter()
                .filter(|s| {
                    !remind::already_sent(
                        events,
                        channel,
                        due.level,
                        &due.to,
                        &s.id,
                        now,
                        timing.interval,
                    )
                })
                .cloned()
                .collect();
            held += due.steps.len() - fresh.len();
            if fresh.is_empty() {
                continue;
            }
            let d = Due {
                level: due.level,
                to: due.to.clone(),
                steps: fresh,
            };
            out.push(Outgoing {
                channel,
                msg: remind::message(&state.facts, &d, now),
                steps: d.steps.iter().map(|s| s.id.clone()).collect(),
            });
        }
    }
    (out, held)
}

fn line(
    what: &str,
    id: &str,
    channel: &Channel,
    msg: &Message,
    steps: &[String],
    error: Option<&str>,
) -> String {
    let mut s = format!(
        "{what:<10} {:<6} {:<11} {} · {id}: {}",
        channel.as_str(),
        msg.level.as_str(),
        safe(&msg.to),
        safe(&steps.join(", "))
    );
    if let Some(e) = error {
        s.push_str(&format!(" — {}", safe(e)));
    }
    s
}

fn json_row(id: &str, o: &Outgoing, status: &str, error: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "departure": id,
        "channel": o.channel,
        "level": o.msg.level,
        "to": o.msg.to,
        "steps": o.steps,
        "status": status,
        "error": error,
    })
}
