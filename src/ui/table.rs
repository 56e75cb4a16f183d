//! Tables (comfy-table): the run summary and `status`.

use chrono::{DateTime, Utc};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table};

use super::{Printer, safe};
use crate::departure::{DepartureState, Status};

pub(crate) fn new_table(printer: &Printer, header: &[&str]) -> Table {
    let mut t = Table::new();
    // On a terminal, wrap to its width; in a pipe or a log, never cut an id in half.
    let arrangement = if printer.stderr_tty {
        ContentArrangement::Dynamic
    } else {
        ContentArrangement::Disabled
    };
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(arrangement)
        .set_header(
            header
                .iter()
                .map(|h| Cell::new(h).add_attribute(Attribute::Bold)),
        );
    // comfy-table styles cells itself (so widths stay right); it follows our colour choice.
    if printer.color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t
}

fn status_cell(status: Status, overdue: bool) -> Cell {
    let text = if overdue {
        format!("{} OVERDUE", status.as_str())
    } else {
        status.as_str().to_string()
    };
    let color = match status {
        _ if overdue => Color::Red,
        Status::Done => Color::Green,
        Status::Failed => Color::Red,
        Status::NotApplicable => Color::DarkGrey,
        _ => Color::Yellow,
    };
    Cell::new(text).fg(color)
}

fn count_cell(n: usize) -> Cell {
    if n > 0 {
        Cell::new(n).fg(Color::Red)
    } else {
        Cell::new(n)
    }
}

fn short_time(ts: &str) -> String {
    DateTime::parse_from_rfc3339(ts)
        .map(|t| t.with_timezone(&Utc).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| safe(ts))
}

/// One row per step: step, lane, owner, status, deadline, detail.
pub fn steps(printer: &Printer, state: &DepartureState, now: DateTime<Utc>) -> String {
    let mut t = new_table(
        printer,
        &["step", "lane", "owner", "status", "deadline", "detail"],
    );
    for (p, s) in state.ordered() {
        let status = s.status();
        let overdue = p.is_overdue(status, now);
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
            Cell::new(safe(&p.id)),
            Cell::new(p.lane.as_str()),
            Cell::new(p.owner.as_deref().map(safe).unwrap_or_default()),
            status_cell(status, overdue),
            Cell::new(p.deadline.as_deref().map(short_time).unwrap_or_default()),
            Cell::new(safe(&detail)),
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
            Cell::new(safe(&st.facts.id)),
            Cell::new(safe(&st.facts.user)),
            Cell::new(if st.hold.active {
                format!("{} · HOLD", st.facts.departure_type.as_str())
            } else {
                st.facts.departure_type.as_str().to_string()
            }),
            Cell::new(short_time(&st.started_at)),
            Cell::new(format!("{settled}/{total}")),
            Cell::new(total - settled - failed),
            count_cell(failed),
            count_cell(overdue),
        ]);
    }
    t.to_string()
}

pub fn short(ts: &str) -> String {
    short_time(ts)
}
