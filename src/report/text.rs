//! The report as tables for a person, and as CSV for a spreadsheet.

use comfy_table::Cell;

use super::metrics::{show_duration, show_opt, show_rate};
use super::{Group, Report, Stats};
use crate::ui::table::new_table;
use crate::ui::{Printer, safe};

fn stats_row(name: &str, s: &Stats) -> Vec<Cell> {
    vec![
        Cell::new(safe(name)),
        Cell::new(s.count),
        Cell::new(show_opt(s.p50_seconds)),
        Cell::new(show_opt(s.p90_seconds)),
        Cell::new(show_opt(s.max_seconds)),
        Cell::new(format!("{}/{}", s.within_sla, s.count)),
        Cell::new(s.not_revoked),
    ]
}

fn group_table(
    p: &Printer,
    what: &str,
    groups: &std::collections::BTreeMap<String, Group>,
) -> String {
    let mut t = new_table(
        p,
        &[what, "steps", "settled", "completion", "open", "overdue"],
    );
    for (name, g) in groups {
        t.add_row(vec![
            Cell::new(safe(name)),
            Cell::new(g.steps),
            Cell::new(g.settled),
            Cell::new(show_rate(g.completion_rate)),
            Cell::new(g.open),
            Cell::new(g.overdue),
        ]);
    }
    t.to_string()
}

/// The human report: figures first, then the tables, each section honest about having nothing.
pub fn table(p: &Printer, r: &Report) -> String {
    let mut out = Vec::<String>::new();
    let d = &r.departures;
    let types: Vec<String> = d.by_type.iter().map(|(k, n)| format!("{n} {k}")).collect();
    out.push(format!(
        "{} · {} departure(s){}{} · generated {}",
        p.bold("Offboarding report"),
        d.total,
        if types.is_empty() {
            String::new()
        } else {
            format!(" ({})", types.join(", "))
        },
        r.since
            .as_deref()
            .map(|s| format!(" effective since {}", crate::ui::table::short(s)))
            .unwrap_or_default(),
        crate::ui::table::short(&r.generated_at)
    ));
    if !r.damaged.is_empty() {
        out.push(p.red(&format!(
            "{} departure(s) NOT counted (a journal unreadable, or its hash chain broken):",
            r.damaged.len()
        )));
        for x in &r.damaged {
            out.push(format!("  {}: {}", safe(&x.departure), safe(&x.error)));
        }
    }
    if d.total == 0 {
        out.push("No departures to report on.".into());
        return out.join("\n");
    }
    out.push(format!(
        "Complete: {} of {} ({})",
        d.complete,
        d.total,
        show_rate(d.completion_rate)
    ));

    let ttr = &r.time_to_revocation;
    out.push(String::new());
    out.push(format!(
        "{} (effective time → every cut step confirmed revoked; SLA {})",
        p.bold("Time to revocation"),
        show_duration(r.sla_seconds)
    ));
    if ttr.overall.count == 0 && ttr.overall.not_revoked == 0 {
        out.push("  no departure has an automated cut step".into());
    } else {
        let mut t = new_table(
            p,
            &[
                "system",
                "revoked",
                "p50",
                "p90",
                "max",
                "within SLA",
                "not revoked",
            ],
        );
        t.add_row(stats_row("all systems", &ttr.overall));
        for (name, s) in &ttr.by_system {
            t.add_row(stats_row(name, s));
        }
        out.push(t.to_string());
    }
    if ttr.no_cut_steps > 0 {
        out.push(format!(
            "  {} departure(s) have no automated cut step and are not in these figures",
            ttr.no_cut_steps
        ));
    }

    let m = &r.manual_steps;
    out.push(String::new());
    if m.total.steps == 0 {
        out.push(format!("{}: none", p.bold("Manual steps")));
    } else {
        out.push(format!(
            "{}: {} of {} settled ({}), {} open, {} overdue",
            p.bold("Manual steps"),
            m.total.settled,
            m.total.steps,
            show_rate(m.total.completion_rate),
            m.total.open,
            m.total.overdue
        ));
        out.push(group_table(p, "lane", &m.by_lane));
        out.push(group_table(p, "owner", &m.by_owner));
    }

    let a = &r.assets;
    out.push(String::new());
    if a.steps == 0 {
        out.push(format!(
            "{}: no manual step asks for an asset tag, serial or tracking number",
            p.bold("Assets")
        ));
    } else {
        out.push(format!(
            "{}: {} recovered of {} ({}), {} outstanding",
            p.bold("Assets"),
            a.recovered,
            a.steps,
            show_rate(a.return_rate),
            a.outstanding
        ));
        if !a.dispositions.is_empty() {
            out.push(format!(
                "  dispositions: {} ({} retired with an ITAD certificate)",
                safe(&super::dispositions_line(&a.dispositions)),
                a.itad_certificates
            ));
        }
        for i in &a.items {
            out.push(format!(
                "  {} {}: {} = {}",
                safe(&i.user),
                safe(&i.step),
                safe(&i.field),
                safe(&i.value)
            ));
        }
    }

    let l = &r.licences;
    out.push(format!(
        "{}: {} licence step(s) done, {} open; SKUs freed: {}",
        p.bold("Licences"),
        l.steps_done,
        l.steps_open,
        super::skus_text(l, &safe)
    ));

    let dr = &r.drift;
    out.push(format!(
        "{}: {} departure(s) swept by verify, {} finding(s) in {} departure(s)",
        p.bold("Drift"),
        dr.departures_swept,
        dr.findings.len(),
        dr.departures_with_drift
    ));
    for f in &dr.findings {
        out.push(format!(
            "  {} {} ({}): access back at {}{}",
            safe(&f.user),
            safe(&f.step),
            safe(&f.system),
            crate::ui::table::short(&f.found_at),
            if f.fixed { ", revoked again since" } else { "" }
        ));
    }

    let h = &r.legal_holds;
    out.push(format!(
        "{}: {} in force, {} ever placed, {} destructive step(s) blocked",
        p.bold("Legal holds"),
        h.active,
        h.ever,
        h.blocked_steps
    ));
    for x in &h.departures {
        out.push(format!(
            "  {} {}: {} since {} by {}: {}",
            safe(&x.user),
            safe(&x.departure),
            if x.active { "IN FORCE" } else { "released" },
            crate::ui::table::short(&x.at),
            safe(&x.by),
            safe(&x.reason)
        ));
    }

    out.push(String::new());
    out.push(p.bold("Month by month (effective time)"));
    let mut t = new_table(p, &["month", "departures", "revoked", "p50", "within SLA"]);
    for mo in &r.months {
        t.add_row(vec![
            Cell::new(&mo.month),
            Cell::new(mo.departures),
            Cell::new(mo.revoked),
            Cell::new(show_opt(mo.p50_seconds)),
            Cell::new(format!("{}/{}", mo.within_sla, mo.revoked)),
        ]);
    }
    out.push(t.to_string());

    out.push(String::new());
    out.push(p.bold("Departures"));
    let mut t = new_table(
        p,
        &[
            "departure",
            "user",
            "type",
            "effective",
            "revocation",
            "open",
            "overdue",
            "hold",
        ],
    );
    for row in &r.rows {
        t.add_row(vec![
            Cell::new(safe(&row.departure)),
            Cell::new(safe(&row.user)),
            Cell::new(&row.departure_type),
            Cell::new(crate::ui::table::short(&row.effective_at)),
            Cell::new(match row.seconds_to_revocation {
                Some(s) => show_duration(s),
                None => row.cut.as_str().replace('_', " "),
            }),
            Cell::new(row.manual_open),
            Cell::new(row.manual_overdue),
            Cell::new(if row.legal_hold { "HOLD" } else { "" }),
        ]);
    }
    out.push(t.to_string());
    out.push(format!(
        "Percentiles: {}. Overdue counted at {}.",
        r.percentile_method,
        crate::ui::table::short(&r.generated_at)
    ));
    out.join("\n")
}

/// The columns of the CSV, in order (README.md documents each).
pub const CSV_COLUMNS: &[&str] = &[
    "departure",
    "user",
    "type",
    "effective_at",
    "month",
    "journal",
    "complete",
    "legal_hold",
    "revocation",
    "seconds_to_revocation",
    "within_sla",
    "seconds_by_system",
    "steps",
    "steps_settled",
    "manual_open",
    "manual_overdue",
    "assets_recovered",
    "assets_outstanding",
    "licence_steps_done",
    "drift_findings",
    "error",
];

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break; text that a
/// spreadsheet would run as a formula (`= + - @` first, or a tab or carriage return) gets a `'`
/// in front.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One row per departure (damaged journals too, with `journal` = `damaged` and the error).
pub fn csv(r: &Report) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    for row in &r.rows {
        let systems: Vec<String> = row
            .systems
            .iter()
            .map(|(k, v)| format!("{k}={}", opt(*v)))
            .collect();
        let cells: Vec<String> = vec![
            row.departure.clone(),
            row.user.clone(),
            row.departure_type.clone(),
            row.effective_at.clone(),
            row.month.clone(),
            "ok".into(),
            row.complete.to_string(),
            row.legal_hold.to_string(),
            row.cut.as_str().into(),
            opt(row.seconds_to_revocation),
            row.within_sla.map(|b| b.to_string()).unwrap_or_default(),
            systems.join(";"),
            row.steps.to_string(),
            row.steps_settled.to_string(),
            row.manual_open.to_string(),
            row.manual_overdue.to_string(),
            row.assets_recovered.to_string(),
            row.assets_outstanding.to_string(),
            row.licence_steps_done.to_string(),
            row.drift_findings.to_string(),
            String::new(),
        ];
        out.push_str(&cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    for x in &r.damaged {
        let mut cells = vec![String::new(); CSV_COLUMNS.len()];
        cells[0] = x.departure.clone();
        cells[5] = "damaged".into();
        cells[CSV_COLUMNS.len() - 1] = x.error.clone();
        out.push_str(&cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("@sum"), "'@sum");
        assert_eq!(field("line\nbreak"), "\"line\nbreak\"");
    }
}
