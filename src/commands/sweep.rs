//! `offboard verify --all`: the nightly drift sweep. Every departure whose run has ended is
//! re-checked through the single-departure path ([`super::verify::check`]), each result
//! journaled; a departure whose result changed since its last verify (drift found or gone, a
//! check failing or back) is re-signed. One table; exit 4 if access came back anywhere, else 5
//! if a journal is not what was signed, 3 if a check could not run, 0 otherwise; drift is told
//! through the runbook's `[notify]`.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use comfy_table::Cell;

use crate::cli::VerifyArgs;
use crate::departure::DepartureState;
use crate::exit::{CliError, Exit};
use crate::journal::{self, Journal, Record};
use crate::notify::send::Channels;
use crate::notify::{Channel, Level, Message, NotifyDef};
use crate::ui::{safe, table};

use super::{Ctx, common};

/// One departure's line in the table.
struct Row {
    id: String,
    user: String,
    holding: usize,
    drift: Vec<String>,
    errors: Vec<String>,
    /// The new evidence revision, when re-signed.
    revision: Option<u32>,
    /// Why it was not checked (another process drives it, a damaged journal).
    refused: Option<String>,
    /// Its journal is not what was signed (refused with exit 5).
    tampered: bool,
    notified: Vec<String>,
}

pub fn exec(ctx: &Ctx, args: VerifyArgs) -> anyhow::Result<Exit> {
    let p = &ctx.printer;
    let now = journal::now();
    let since = args
        .since
        .as_deref()
        .map(|s| since_time(s, now))
        .transpose()?;
    let notify = notify_def(ctx, args.runbook.as_deref())?;
    let channels = notify.as_ref().map(Channels::connect);
    let key = common::signing_key(ctx)?;
    let rt = common::runtime()?;
    let mut rows = Vec::new();
    for id in ctx.state.departure_ids()? {
        let events = match Journal::read(&ctx.state.journal_path(&id)) {
            Ok(e) => e,
            Err(e) => {
                // A broken chain is evidence invalid; anything else (unreadable) is trouble.
                let tampered = e
                    .chain()
                    .any(|c| c.downcast_ref::<crate::journal::ChainError>().is_some());
                rows.push(Row {
                    id: id.clone(),
                    user: "?".into(),
                    holding: 0,
                    drift: Vec::new(),
                    errors: Vec::new(),
                    revision: None,
                    refused: Some(format!("{e:#}")),
                    tampered,
                    notified: Vec::new(),
                });
                continue;
            }
        };
        let Some(state) = DepartureState::replay(&events) else {
            continue;
        };
        if common::was_cut_off(&events) {
            continue;
        }
        if let Some(since) = since
            && journal_time(&state.started_at).is_some_and(|t| t < since)
        {
            continue;
        }
        let mut row = Row {
            id: id.clone(),
            user: state.facts.user.clone(),
            holding: 0,
            drift: Vec::new(),
            errors: Vec::new(),
            revision: None,
            refused: None,
            tampered: false,
            notified: Vec::new(),
        };
        let driving = match common::open_departure(ctx, &id, &key) {
            Ok(d) => d,
            Err(e) => {
                row.tampered = e
                    .chain()
                    .filter_map(|c| c.downcast_ref::<CliError>())
                    .any(|c| c.exit == Exit::InvalidEvidence);
                row.refused = Some(format!("{e:#}"));
                rows.push(row);
                continue;
            }
        };
        let before = driving.state().last_verify.map(|(_, _, d, e)| (d, e));
        let items = super::verify::check(ctx, &driving)?;
        for i in &items {
            match &i.result {
                Ok(c) if c.revoked => row.holding += 1,
                Ok(_) => row.drift.push(i.step.clone()),
                Err(_) => row.errors.push(i.step.clone()),
            }
        }
        // A result like the last one (none counts as all holding) needs no new signature: its
        // events are journaled and the next revision signs them.
        if before.unwrap_or((0, 0)) != (row.drift.len(), row.errors.len()) {
            let sealed = driving.seal(&ctx.state, &key)?;
            row.revision = Some(sealed.revision);
            super::attach::after(ctx, &driving, &key);
        }
        if !row.drift.is_empty()
            && let (Some(def), Some(ch)) = (&notify, &channels)
        {
            let state = driving.state();
            let msg = drift_message(&state, &row.drift);
            for (channel, to) in drift_sends(def, ch, &state) {
                let msg = Message {
                    to: to.clone(),
                    ..msg.clone()
                };
                let r = rt.block_on(ch.send(channel, &state.facts, &msg));
                driving.append(
                    None,
                    Record::Notified(crate::notify::remind::record(channel, &msg, &row.drift, &r)),
                )?;
                match r {
                    Ok(()) => row.notified.push(format!("{} {}", channel.as_str(), to)),
                    Err(e) => p.warn(format!(
                        "{id}: the drift notice on {} to {} failed: {}",
                        channel.as_str(),
                        safe(&to),
                        safe(&e.0)
                    )),
                }
            }
        }
        rows.push(row);
    }
    print(ctx, &rows, notify.is_some());
    let drift = rows.iter().filter(|r| !r.drift.is_empty()).count();
    let trouble = rows
        .iter()
        .filter(|r| !r.errors.is_empty() || r.refused.is_some())
        .count();
    Ok(if drift > 0 {
        Exit::Drift
    } else if rows.iter().any(|r| r.tampered) {
        Exit::InvalidEvidence
    } else if trouble > 0 {
        Exit::Incomplete
    } else {
        Exit::Ok
    })
}

fn print(ctx: &Ctx, rows: &[Row], notifying: bool) {
    let p = &ctx.printer;
    if rows.is_empty() {
        p.result(format!(
            "No departure to re-check in {}.",
            ctx.state.root().display()
        ));
    } else {
        let mut t = table::new_table(
            p,
            &[
                "departure",
                "user",
                "holding",
                "drift",
                "errors",
                "evidence",
            ],
        );
        for r in rows {
            let drift = if r.drift.is_empty() {
                Cell::new("0")
            } else {
                Cell::new(p.red(&format!("DRIFT {}", safe(&r.drift.join(", ")))))
            };
            let errors = match &r.refused {
                Some(_) => Cell::new(p.yellow("not checked")),
                None if r.errors.is_empty() => Cell::new("0"),
                None => Cell::new(p.yellow(&safe(&r.errors.join(", ")))),
            };
            t.add_row(vec![
                Cell::new(safe(&r.id)),
                Cell::new(safe(&r.user)),
                Cell::new(r.holding),
                drift,
                errors,
                Cell::new(match r.revision {
                    Some(n) => format!("re-signed r{n}"),
                    None => "unchanged".into(),
                }),
            ]);
        }
        p.result(t.to_string());
    }
    for r in rows {
        if let Some(why) = &r.refused {
            if r.tampered {
                p.warn(p.red(&format!(
                    "{}: NOT CHECKED, its journal is not what was signed: {why}",
                    r.id
                )));
            } else {
                p.warn(format!("{}: not checked this time: {why}", r.id));
            }
        }
    }
    let drifted: Vec<&Row> = rows.iter().filter(|r| !r.drift.is_empty()).collect();
    if drifted.is_empty() {
        p.result(p.green(&format!(
            "{} departure(s) re-checked: no access came back.",
            rows.iter().filter(|r| r.refused.is_none()).count()
        )));
    } else {
        for r in &drifted {
            p.result(p.red(&format!(
                "DRIFT: access came back for {} ({}): {}. Re-apply: offboard resume {}",
                safe(&r.user),
                r.id,
                safe(&r.drift.join(", ")),
                r.id
            )));
            if !r.notified.is_empty() {
                p.info(format!("  told: {}", safe(&r.notified.join(", "))));
            }
        }
        if !notifying {
            p.info(
                "no runbook with [notify] was given (-r, OFFBOARD_RUNBOOK): drift was only printed",
            );
        }
    }
    p.json_result(&serde_json::json!({
        "departures": rows.iter().map(|r| serde_json::json!({
            "departure": r.id,
            "user": r.user,
            "holding": r.holding,
            "drift": r.drift,
            "errors": r.errors,
            "revision": r.revision,
            "not_checked": r.refused,
            "notified": r.notified,
        })).collect::<Vec<_>>(),
        "drift": drifted.len(),
    }));
}

/// `--since`: an age (`90d`) or a date/time.
fn since_time(s: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Some(d) = crate::notify::parse_duration(s) {
        return Ok(now - d);
    }
    if let Ok(d) = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            CliError::usage(format!("--since {s:?} is neither an age nor a date"))
                .hint("e.g. --since 90d, --since 12w, --since 2026-09-01")
                .into()
        })
}

fn journal_time(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The runbook's `[notify]`, when a runbook is named (or `./offboard.toml` exists) and has one.
fn notify_def(ctx: &Ctx, named: Option<&Path>) -> anyhow::Result<Option<NotifyDef>> {
    if named.is_none() && !Path::new("offboard.toml").exists() {
        return Ok(None);
    }
    let rb = common::load_runbook(ctx, named)?;
    Ok(rb.file.notify.clone())
}

/// Where a drift notice goes: email to each of `drift_to`, each webhook, the ticket.
fn drift_sends(
    def: &NotifyDef,
    channels: &Channels,
    state: &DepartureState,
) -> Vec<(Channel, String)> {
    let mut out = Vec::new();
    // No address: the channels that are not addressed to a person.
    let shared = channels.for_recipient(&state.facts, "");
    for to in &def.drift_to {
        if channels
            .for_recipient(&state.facts, to)
            .contains(&Channel::Email)
        {
            out.push((Channel::Email, to.clone()));
        }
    }
    let label = if def.drift_to.is_empty() {
        "channel".to_string()
    } else {
        def.drift_to.join(", ")
    };
    out.extend(shared.into_iter().map(|c| (c, label.clone())));
    out
}

fn drift_message(state: &DepartureState, drift: &[String]) -> Message {
    let f = &state.facts;
    let who = safe(&f.user);
    let items = state
        .ordered()
        .filter(|(s, _)| drift.contains(&s.id))
        .map(|(s, _)| match &s.automated {
            Some(a) => format!(
                "{}: {} on {} for {} no longer holds",
                s.id,
                a.action,
                safe(&a.system),
                safe(&a.login)
            ),
            None => s.id.clone(),
        })
        .collect();
    let mut facts = std::collections::BTreeMap::new();
    facts.insert("Departure".to_string(), f.id.clone());
    facts.insert("Person".to_string(), f.user.clone());
    Message {
        level: Level::Drift,
        to: String::new(),
        subject: format!("[offboard] DRIFT: access came back for {who}"),
        intro: format!(
            "The nightly re-check found access restored for {who} (departure {}), after it was cut.",
            f.id
        ),
        items,
        action: format!(
            "Re-apply: offboard resume {}   (find out who restored it first)",
            f.id
        ),
        departure: f.id.clone(),
        facts,
    }
}
