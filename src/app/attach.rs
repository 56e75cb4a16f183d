//! Attaching a departure's latest evidence to its service desk ticket, with a note a person can
//! read, and closing the ticket once the departure is complete.
//!
//! The desk is the runbook's `[ticketing]`, frozen into the departure at start; the ticket is
//! the one given with `start --ticket` unless another is named. Every outcome is journaled:
//! `ticket_attached` (each file's attachment id and sha256: the next evidence revision records
//! where this one went), `ticket_attach_failed` (the revision stays pending until an
//! `offboard attach` succeeds) and `ticket_closed`. A failure never touches the departure's
//! steps or its evidence; it is only a journaled, retryable event.

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use super::{Driving, Session};
use crate::core::{TicketAttach, TicketAttachFailure, TicketClose, TicketRef};
use crate::departure::{DepartureState, Status};
use crate::journal::Record;
use crate::keys::SigningKey;
use crate::runbook::{Phase, TicketingDef};
use crate::ticketing::{self, files::EvidenceFiles};

/// Which desk and ticket an attach goes to.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The ticket (default: the departure's, from `start --ticket`).
    pub ticket: Option<String>,
    /// The desk (default: the departure's `[ticketing]`).
    pub desk: Option<TicketingDef>,
}

/// How an attach ended.
#[derive(Debug)]
pub enum Attached {
    /// The departure names no service desk.
    NoDesk,
    /// There is a desk but no ticket to attach to.
    NoTicket { kind: String },
    /// The ticket has the revision now (uploaded now, or found there).
    Done {
        attach: TicketAttach,
        /// The ticket was closed now (`Ok(status)`), or closing it failed (`Err`); `None`
        /// when there was nothing to close.
        closed: Option<std::result::Result<String, String>>,
    },
    /// It failed; journaled as pending.
    Failed { failure: TicketAttachFailure },
}

/// Why a ticket id cannot be used with the desk (a usage error).
#[derive(Debug, thiserror::Error)]
#[error("{ticket:?} is not a {kind} ticket: {why}")]
pub struct BadTicket {
    pub ticket: String,
    pub kind: String,
    pub why: String,
}

/// Attach the latest evidence revision of the departure `driving` holds to its ticket; see the
/// module docs. `Err` only for what is wrong here (no evidence, an unknown kind, a bad ticket
/// id, the journal): those are not journaled.
pub fn attach(
    session: &Session<'_>,
    driving: &Driving,
    key: &SigningKey,
    target: Target,
) -> Result<Attached> {
    let state = driving.state();
    let Some(def) = target.desk.or_else(|| state.facts.ticketing.clone()) else {
        return Ok(Attached::NoDesk);
    };
    let Some(ticket) = target.ticket.or_else(|| state.facts.ticket.clone()) else {
        return Ok(Attached::NoTicket { kind: def.kind });
    };
    let kind = ticketing::find_kind(&def.kind).with_context(|| {
        format!(
            "unknown ticketing kind `{}` (this offboard is too old?)",
            def.kind
        )
    })?;
    (kind.check_ticket)(&ticket).map_err(|why| BadTicket {
        ticket: ticket.clone(),
        kind: kind.name.into(),
        why,
    })?;
    let events = {
        let j = driving.journal.lock().unwrap_or_else(|p| p.into_inner());
        j.events().to_vec()
    };
    // The one place the files are chosen.
    let files = ticketing::files::evidence_files(session.state, &events, key)?;
    let first_actor = events.first().map(|e| e.actor.as_str()).unwrap_or("");
    let note = note_text(
        &state,
        &files,
        first_actor,
        &session.actor,
        key,
        crate::journal::now(),
    );
    let desk = TicketRef {
        kind: def.kind.clone(),
        base_url: def.base_url.clone(),
        ticket: ticket.clone(),
    };
    let delivered = ticketing::connect(&def)
        .map_err(|e| format!("{e:#}"))
        .and_then(|d| {
            let rt = super::runtime().map_err(|e| format!("{e:#}"))?;
            rt.block_on(ticketing::deliver(
                d.as_ref(),
                &ticket,
                &files.files,
                &note,
                &files.evidence_sha256,
                &crate::providers::CallCtx::silent(),
            ))
            .map_err(|e| e.to_string())
            .map(|r| (d, rt, r))
        });
    let (client, rt, delivered) = match delivered {
        Ok(x) => x,
        Err(error) => {
            let failure = TicketAttachFailure {
                desk,
                revision: files.revision,
                error,
            };
            driving.append(None, Record::TicketAttachFailed(failure.clone()))?;
            return Ok(Attached::Failed { failure });
        }
    };
    let attach = TicketAttach {
        desk: desk.clone(),
        revision: files.revision,
        evidence_sha256: files.evidence_sha256.clone(),
        files: delivered.files,
        note_added: delivered.note_added,
        note_id: delivered.note_id,
    };
    driving.append(None, Record::TicketAttached(attach.clone()))?;
    let closed = match &def.close_status {
        Some(status) if state.is_complete() && !state.ticket.is_closed(&ticket) => {
            let r =
                rt.block_on(client.close(&ticket, status, &crate::providers::CallCtx::silent()));
            Some(match r {
                Ok(now) => {
                    driving.append(
                        None,
                        Record::TicketClosed(TicketClose {
                            desk,
                            status: now.clone(),
                        }),
                    )?;
                    Ok(now)
                }
                Err(e) => Err(e.to_string()),
            })
        }
        _ => None,
    };
    Ok(Attached::Done { attach, closed })
}

/// The note on the ticket: the departure in a few lines a client's HR or an auditor can read,
/// and how to check the attached files. It names the evidence sha256, which is how a later
/// attach finds it.
pub fn note_text(
    state: &DepartureState,
    files: &EvidenceFiles,
    ran_by: &str,
    attached_by: &str,
    key: &SigningKey,
    now: DateTime<Utc>,
) -> String {
    let f = &state.facts;
    let mut done = 0;
    let mut open = 0;
    let mut failed = 0;
    for s in state.steps.values() {
        match s.status() {
            st if st.is_settled() => done += 1,
            Status::Failed => {
                failed += 1;
                open += 1;
            }
            _ => open += 1,
        }
    }
    let overdue = state.overdue(now).len();
    let mut lines = vec![format!(
        "Offboarding evidence for {} ({} departure {}, runbook \"{}\").",
        f.user,
        f.departure_type.as_str(),
        f.id,
        f.runbook.name
    )];
    let mut status = format!(
        "{}: {done} step(s) done, {open} open, {overdue} overdue",
        if state.is_complete() {
            "Complete"
        } else {
            "Not complete yet"
        }
    );
    if failed > 0 {
        status.push_str(&format!(", {failed} failed"));
    }
    if state.hold.active {
        status.push_str(" (legal hold in force: destructive steps blocked)");
    }
    lines.push(status + ".");
    let open_steps: Vec<String> = state
        .ordered()
        .filter(|(_, s)| !s.status().is_settled())
        .map(|(p, s)| {
            let mut about = vec![p.lane.as_str().to_string(), s.status().as_str().to_string()];
            if let Some(o) = &p.owner {
                about.push(format!("owner {o}"));
            }
            if let Some(d) = &p.deadline {
                about.push(format!(
                    "{} {d}",
                    if p.is_overdue(s.status(), now) {
                        "overdue since"
                    } else {
                        "due"
                    }
                ));
            }
            format!("{} ({})", p.id, about.join(", "))
        })
        .collect();
    if !open_steps.is_empty() {
        let shown = open_steps.len().min(10);
        let mut list = open_steps[..shown].join("; ");
        if open_steps.len() > shown {
            list.push_str(&format!("; and {} more", open_steps.len() - shown));
        }
        lines.push(format!("Still open: {list}."));
    }
    lines.push(time_to_revocation(state));
    let mut who = format!("Run by {ran_by}");
    if attached_by != ran_by {
        who.push_str(&format!("; attached by {attached_by}"));
    }
    lines.push(who + ".");
    let [json, sig, signers] = [0, 1, 2].map(|i| &files.files[i]);
    lines.push(format!(
        "Evidence revision {}: {} (sha256 {}), signed by {} (SSH signature {}).",
        files.revision,
        json.name,
        files.evidence_sha256,
        key.fingerprint(),
        sig.name
    ));
    lines.push(format!(
        "To check it, download the three attached files into one folder and run: {}",
        files.verify_command()
    ));
    lines.push(format!(
        "({} names the key trusted for offboard evidence; `offboard evidence verify {} --allowed-signers {}` checks the journal chain as well.)",
        signers.name, json.name, signers.name
    ));
    lines.join("\n")
}

/// When access was cut, counted from the start of the departure.
fn time_to_revocation(state: &DepartureState) -> String {
    let cuts: Vec<(&str, bool)> = state
        .ordered()
        .filter(|(p, _)| p.phase == Phase::Cut && !p.is_manual())
        .map(|(_, s)| {
            (
                s.finished_at.as_deref().unwrap_or(""),
                s.status() == Status::Done,
            )
        })
        .collect();
    if cuts.is_empty() {
        return "No automated access cut in this departure.".into();
    }
    let parse = |t: &str| {
        DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    let (Some(start), Some(last)) = (
        parse(&state.started_at),
        cuts.iter()
            .filter(|(_, done)| *done)
            .filter_map(|(t, _)| parse(t))
            .max(),
    ) else {
        return "Access not cut yet.".into();
    };
    let all = cuts.iter().all(|(_, done)| *done);
    format!(
        "Time to revocation: {} from the start to the last access cut ({}){}.",
        human_duration((last - start).num_seconds().max(0)),
        crate::journal::timestamp(last),
        if all {
            ""
        } else {
            "; some access is not cut yet"
        }
    )
}

fn human_duration(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(42), "42 s");
        assert_eq!(human_duration(185), "3 min 5 s");
        assert_eq!(human_duration(7500), "2 h 5 min");
    }
}
