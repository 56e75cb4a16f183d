//! `offboard attach`: the latest evidence onto the departure's service desk ticket, and the same
//! at the end of `start`, `resume`, `confirm` and `verify` when the departure has a desk.

use crate::app::Driving;
use crate::app::attach::{self, Attached, BadTicket, Target};
use crate::cli::AttachArgs;
use crate::exit::{CliError, Exit};
use crate::keys::SigningKey;
use crate::ui::safe;

use super::{Ctx, common};

pub fn exec(ctx: &Ctx, args: AttachArgs) -> anyhow::Result<Exit> {
    let desk = match &args.runbook {
        Some(path) => {
            let rb = common::load_runbook(ctx, Some(path))?;
            let Some(desk) = rb.file.ticketing else {
                return Err(CliError::usage(format!(
                    "runbook {} has no [ticketing] table",
                    path.display()
                ))
                .hint("add one (see Ticketing in runbooks/README.md), or leave out -r to use the departure's")
                .into());
            };
            Some(desk)
        }
        None => None,
    };
    let (id, _) = common::find_departure(ctx, &args.departure)?;
    let key = common::signing_key(ctx)?;
    let driving = common::open_departure(ctx, &id, &key)?;
    let target = Target {
        ticket: args.ticket.clone(),
        desk,
    };
    let outcome = attach::attach(&common::session(ctx), &driving, &key, target)
        .map_err(|e| bad_ticket(e, &id))?;
    let p = &ctx.printer;
    match outcome {
        Attached::NoDesk => Err(CliError::usage(format!(
            "departure {id} has no service desk: its runbook had no [ticketing] table when it started"
        ))
        .hint("add [ticketing] to the runbook (see Ticketing in runbooks/README.md) and run `offboard attach` with -r RUNBOOK")
        .into()),
        Attached::NoTicket { kind } => Err(CliError::usage(format!(
            "departure {id} has no ticket: it was started without --ticket"
        ))
        .hint(format!("name the {kind} ticket: `offboard attach {id} --ticket ID`"))
        .into()),
        Attached::Failed { failure } => Err(CliError::new(
            Exit::Failure,
            anyhow::anyhow!(
                "could not attach evidence revision {} to {} ticket {}: {}",
                failure.revision,
                failure.desk.kind,
                safe(&failure.desk.ticket),
                failure.error
            ),
        )
        .hint("the departure is intact; the attach is journaled as pending")
        .hint(format!("retry with `offboard attach {id}{}`", ticket_flag(&args)))
        .into()),
        Attached::Done { attach, closed } => {
            report_done(ctx, &id, &attach, closed.as_ref());
            p.json_result(&serde_json::json!({
                "departure": id,
                "kind": attach.desk.kind,
                "ticket": attach.desk.ticket,
                "revision": attach.revision,
                "evidence_sha256": attach.evidence_sha256,
                "uploaded": attach.files.iter().filter(|f| f.uploaded).count(),
                "note_added": attach.note_added,
                "files": attach.files,
                "closed": closed.as_ref().and_then(|c| c.as_ref().ok()),
                "close_error": closed.as_ref().and_then(|c| c.as_ref().err()),
            }));
            Ok(if matches!(closed, Some(Err(_))) {
                Exit::Failure
            } else {
                Exit::Ok
            })
        }
    }
}

/// ` --ticket ID` when the command named one.
fn ticket_flag(args: &AttachArgs) -> String {
    args.ticket
        .as_deref()
        .map(|t| format!(" --ticket {}", safe(t)))
        .unwrap_or_default()
}

/// A ticket id the desk cannot take is a usage error (exit 2).
fn bad_ticket(e: anyhow::Error, id: &str) -> anyhow::Error {
    match e.downcast::<BadTicket>() {
        Ok(b) => CliError::usage(safe(&b.to_string()))
            .hint(format!(
                "pass the right one: `offboard attach {id} --ticket ID`"
            ))
            .into(),
        Err(e) => e,
    }
}

fn report_done(
    ctx: &Ctx,
    id: &str,
    attach: &crate::core::TicketAttach,
    closed: Option<&Result<String, String>>,
) {
    let p = &ctx.printer;
    let where_ = format!("{} ticket {}", attach.desk.kind, safe(&attach.desk.ticket));
    let uploaded: Vec<String> = attach
        .files
        .iter()
        .filter(|f| f.uploaded)
        .map(|f| format!("{} (attachment {})", f.name, safe(&f.attachment_id)))
        .collect();
    if uploaded.is_empty() && !attach.note_added {
        p.result(format!(
            "{where_} already has evidence revision {} of {id}: nothing uploaded.",
            attach.revision
        ));
    } else {
        let mut what = if uploaded.is_empty() {
            "its files were there already".to_string()
        } else {
            format!("uploaded {}", uploaded.join(", "))
        };
        if attach.note_added {
            what.push_str("; internal note added");
        }
        p.result(format!(
            "Attached evidence revision {} of {id} to {where_}: {what}.",
            attach.revision
        ));
    }
    match closed {
        Some(Ok(status)) => p.result(format!(
            "{where_} set to status \"{}\": the departure is complete.",
            safe(status)
        )),
        Some(Err(e)) => p.warn(format!(
            "could not close {where_}: {e}; `offboard attach {id}` tries again"
        )),
        None => {}
    }
}

/// The automatic attach at the end of a command that signed a new revision: quiet when the
/// departure has no desk, a warning (never an error) when the attach fails.
pub fn after(ctx: &Ctx, driving: &Driving, key: &SigningKey) {
    if !ctx.auto_attach {
        return;
    }
    let id = driving.state().facts.id;
    let p = &ctx.printer;
    match attach::attach(&common::session(ctx), driving, key, Target::default()) {
        Ok(Attached::NoDesk) => {}
        Ok(Attached::NoTicket { kind }) => p.warn(format!(
            "the evidence was not attached to the {kind} service desk: this departure has no ticket. Attach it with `offboard attach {id} --ticket ID`"
        )),
        Ok(Attached::Failed { failure }) => p.warn(format!(
            "could not attach evidence revision {} to {} ticket {}: {}. The departure is intact and the attach is journaled as pending; retry with `offboard attach {id}`",
            failure.revision,
            failure.desk.kind,
            safe(&failure.desk.ticket),
            failure.error
        )),
        Ok(Attached::Done { attach, closed }) => report_done(ctx, &id, &attach, closed.as_ref()),
        Err(e) => p.warn(format!(
            "the evidence was not attached to the ticket: {e:#}. Retry with `offboard attach {id}`"
        )),
    }
}
