//! Tables (comfy-table): the run summary and `status`.

use chrono::{DateTime, Utc};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};

use super::{Printer, safe};
use crate::departure::{DepartureState, Status};

fn new_table(printer: &Printer, header: &[&str]) -> Table {
    let mut t = Table::new();
    // On a terminal, wrap to its width; in a pipe or a log, never cut an id in half.
    let arrangement = if printer.stderr_tty {
        ContentArrangement::Dynamic
    } else {
        ContentArrangement::Disabled
    };
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(arrangement)
        .set_header(header.iter().map(|h| printer.bold(h)));
    t
}

pub fn status_text(printer: &Printer, status: Status, overdue: bool) -> String {
    let s = status.as_str();
    let s = match status {
        Status::Done => printer.green(s),
        Status::Failed => printer.red(s),
        Status::NotApplicable => printer.dim(s),
        _ => printer.yellow(s),
    };
    if overdue {
        format!("{s} {}", printer.red("OVERDUE"))
    } else {
        s
    }
}

fn short_time(ts: &str) -> String {
    DateTime::parse_from_rfc3339(ts)
        .map(|t| t.with_timezone(&Utc).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| ts.to_string())
}

/// One row per step: step, lane, owner, status, deadline, detail.
pub fn steps(printer: &Printer, state: &DepartureState, now: DateTime<Utc>) -> String {
    let mut t = new_table(
        printer,
        &["step", "lane", "owner", "status", "deadline", "detail"],
    );
    for (p, s) in state.ordered() {
        let status = s.status();
        let overdue = !status.is_settled() && p.deadline_time().is_some_and(|d| d < now);
        let detail = match status {
            Status::Failed => s.error.clone().unwrap_or_default(),
            Status::Skipped | Status::NotApplicable => s.reason.clone().unwrap_or_default(),
            _ => s
                .check
                .as_ref()
                .map(|c| c.observed.clone())
                .or_else(|| s.applied.as_ref().map(|a| a.summary.clone()))
                .or_else(|| {
                    (!s.fields.is_empty()).then(|| {
                        s.fields
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                })
                .unwrap_or_default(),
        };
        t.add_row(vec![
            safe(&p.id),
            p.lane.as_str().to_string(),
            p.owner.as_deref().map(safe).unwrap_or_default(),
            status_text(printer, status, overdue),
            p.deadline.as_deref().map(short_time).unwrap_or_default(),
            safe(&detail),
        ]);
    }
    t.to_string()
}

/// One row per departure.
pub fn departures(printer: &Printer, states: &[DepartureState], now: DateTime<Utc>) -> String {
    let mut t = new_table(
        printer,
        &[
            "departure",
            "user",
            "type",
            "started",
            "done",
            "open",
            "failed",
            "overdue",
        ],
    );
    for st in states {
        let counts = st.counts();
        let total: usize = counts.values().sum();
        let settled: usize = counts
            .iter()
            .filter(|(s, _)| s.is_settled())
            .map(|(_, n)| n)
            .sum();
        let failed = counts.get(&Status::Failed).copied().unwrap_or(0);
        let overdue = st.overdue(now).len();
        t.add_row(vec![
            st.facts.id.clone(),
            safe(&st.facts.user),
            st.facts.departure_type.as_str().to_string(),
            short_time(&st.started_at),
            format!("{settled}/{total}"),
            (total - settled - failed).to_string(),
            if failed > 0 {
                printer.red(&failed.to_string())
            } else {
                "0".into()
            },
            if overdue > 0 {
                printer.red(&overdue.to_string())
            } else {
                "0".into()
            },
        ]);
    }
    t.to_string()
}

pub fn short(ts: &str) -> String {
    short_time(ts)
}
