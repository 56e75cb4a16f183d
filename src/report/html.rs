//! The report as one self-contained HTML page: inline CSS, three inline SVG charts drawn here
//! (time-to-revocation distribution, open tasks by owner, month by month), no script, nothing
//! fetched (a Content-Security-Policy forbids both). Every value from a journal is untrusted
//! text and goes through [`escape`]. The page reads no clock: the same report gives the same
//! bytes.

use std::fmt::Write as _;

use super::metrics::{show_duration, show_opt, show_rate};
use super::{Group, Report, Stats};
use crate::evidence::html::escape;

const CSS: &str = r#"
@page { size: A4; margin: 12mm; }
* { box-sizing: border-box; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font: 9.5pt/1.4 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #1f2328;
  margin: 0 auto; max-width: 190mm; padding: 6mm 4mm; background: #fff; }
header { border-bottom: 2px solid #1f2328; padding-bottom: 2mm; margin-bottom: 3mm; }
h1 { font-size: 15pt; margin: 0; }
h2 { font-size: 11pt; margin: 5mm 0 1.5mm; padding-bottom: 0.5mm; border-bottom: 1px solid #d0d7de;
  break-after: avoid; page-break-after: avoid; }
p { margin: 1mm 0; }
.sub { color: #57606a; margin-top: 1mm; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.8mm 1.5mm; border-bottom: 1px solid #d8dee4; }
thead th { font-size: 8pt; color: #57606a; font-weight: normal; border-bottom: 1px solid #8c959f; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr { break-inside: avoid; page-break-inside: avoid; }
.mono { font-family: "DejaVu Sans Mono", "Courier New", monospace; font-size: 8pt; overflow-wrap: anywhere; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 2mm; margin: 2mm 0; }
.card { border: 1px solid #d0d7de; border-radius: 1.5mm; padding: 1.5mm 2mm; }
.card .v { font-size: 14pt; font-weight: bold; }
.card .k { color: #57606a; font-size: 8pt; }
.damaged { border: 2px solid #cf222e; padding: 1.5mm 2mm; margin: 2mm 0; }
.damaged strong, .bad { color: #cf222e; }
.muted { color: #57606a; }
.keep { break-inside: avoid; page-break-inside: avoid; }
svg { display: block; width: 100%; height: auto; }
svg text { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10px; fill: #1f2328; }
svg .in { fill: #2da44e; } svg .late { fill: #bf8700; } svg .open { fill: #0969da; }
svg .over { fill: #cf222e; } svg .all { fill: #d8dee4; } svg .grid { stroke: #d8dee4; }
svg .axis { stroke: #8c959f; } svg .lbl { fill: #57606a; }
footer { margin-top: 5mm; padding-top: 1.5mm; border-top: 1px solid #d0d7de; color: #57606a; font-size: 8pt; }
@media print { body { padding: 0; max-width: none; } }
"#;

fn or_dash(x: &str) -> String {
    if x.is_empty() {
        "—".into()
    } else {
        escape(x)
    }
}

/// A time for a person: `2026-11-23 10:00 UTC`.
fn show_time(t: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
        Err(_) => or_dash(t),
    }
}

fn card(out: &mut String, id: &str, value: &str, key: &str) -> std::fmt::Result {
    writeln!(
        out,
        r#"<div class="card"><div class="v" id="{id}">{value}</div><div class="k">{key}</div></div>"#
    )
}

fn stats_row(out: &mut String, name: &str, s: &Stats) -> std::fmt::Result {
    writeln!(
        out,
        r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}/{}</td><td class="n">{}</td></tr>"#,
        escape(name),
        s.count,
        show_opt(s.p50_seconds),
        show_opt(s.p90_seconds),
        show_opt(s.max_seconds),
        s.within_sla,
        s.count,
        s.not_revoked
    )
}

fn group_table(
    out: &mut String,
    what: &str,
    groups: &std::collections::BTreeMap<String, Group>,
) -> std::fmt::Result {
    writeln!(
        out,
        r#"<table class="keep"><thead><tr><th>{what}</th><th class="n">steps</th><th class="n">settled</th><th class="n">completion</th><th class="n">open</th><th class="n">overdue</th></tr></thead><tbody>"#
    )?;
    for (name, g) in groups {
        writeln!(
            out,
            r#"<tr><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n{}">{}</td></tr>"#,
            escape(name),
            g.steps,
            g.settled,
            show_rate(g.completion_rate),
            g.open,
            if g.overdue > 0 { " bad" } else { "" },
            g.overdue
        )?;
    }
    writeln!(out, "</tbody></table>")
}

/// The y of a value on a bar chart of height `h` (plot from `top` to `top + h`).
fn scale(v: usize, max: usize, h: f64) -> f64 {
    if max == 0 {
        0.0
    } else {
        v as f64 / max as f64 * h
    }
}

/// Time-to-revocation distribution: one bar per bucket, green when the whole bucket is within
/// the SLA, amber otherwise; the count above each bar.
fn histogram_svg(out: &mut String, r: &Report) -> std::fmt::Result {
    let buckets = &r.time_to_revocation.histogram;
    let (w, left, top, plot_h) = (720.0, 30.0, 14.0, 130.0);
    let bw = (w - left - 10.0) / buckets.len() as f64;
    let max = buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    writeln!(
        out,
        r#"<svg id="chart-ttr" viewBox="0 0 {w} 190" role="img" aria-label="Time to revocation: departures per duration bucket">"#
    )?;
    for tick in 0..=max {
        if max > 6 && tick % max.div_ceil(6) != 0 {
            continue;
        }
        let y = top + plot_h - scale(tick, max, plot_h);
        writeln!(
            out,
            r#"<line class="grid" x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="lbl" x="{}" y="{:.1}" text-anchor="end">{tick}</text>"#,
            w - 10.0,
            left - 4.0,
            y + 3.5
        )?;
    }
    for (i, b) in buckets.iter().enumerate() {
        let x = left + i as f64 * bw;
        let h = scale(b.count, max, plot_h);
        let within = b.to_seconds.is_some_and(|t| t <= r.sla_seconds);
        writeln!(
            out,
            r#"<rect class="{}" x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"><title>{}: {}</title></rect>"#,
            if within { "in" } else { "late" },
            x + 4.0,
            top + plot_h - h,
            bw - 8.0,
            b.label,
            b.count
        )?;
        if b.count > 0 {
            writeln!(
                out,
                r#"<text class="count" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + bw / 2.0,
                top + plot_h - h - 3.0,
                b.count
            )?;
        }
        writeln!(
            out,
            r#"<text class="lbl" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x + bw / 2.0,
            top + plot_h + 14.0,
            b.label
        )?;
    }
    writeln!(
        out,
        r#"<line class="axis" x1="{left}" x2="{}" y1="{:.1}" y2="{:.1}"/>"#,
        w - 10.0,
        top + plot_h,
        top + plot_h
    )?;
    writeln!(
        out,
        r#"<rect class="in" x="{left}" y="172" width="10" height="10"/><text x="{}" y="181">within the SLA ({})</text><rect class="late" x="{}" y="172" width="10" height="10"/><text x="{}" y="181">longer, or straddling it</text>"#,
        left + 14.0,
        show_duration(r.sla_seconds),
        left + 190.0,
        left + 204.0
    )?;
    writeln!(out, "</svg>")
}

/// Open manual tasks by owner: one horizontal bar each, its overdue part in red.
fn owners_svg(out: &mut String, r: &Report) -> std::fmt::Result {
    let owners: Vec<(&String, &Group)> = r
        .manual_steps
        .by_owner
        .iter()
        .filter(|(_, g)| g.open > 0)
        .collect();
    if owners.is_empty() {
        return writeln!(out, "<p>No manual task is open.</p>");
    }
    let (w, label_w, row_h) = (720.0, 230.0, 22.0);
    let max = owners.iter().map(|(_, g)| g.open).max().unwrap_or(1).max(1);
    let plot_w = w - label_w - 130.0;
    let h = owners.len() as f64 * row_h + 30.0;
    writeln!(
        out,
        r#"<svg id="chart-owners" viewBox="0 0 {w} {h}" role="img" aria-label="Open manual tasks by owner">"#
    )?;
    for (i, (name, g)) in owners.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        let open_w = scale(g.open, max, plot_w);
        let over_w = scale(g.overdue, max, plot_w);
        // A long name is cut to fit the label column; the whole name is its tooltip.
        let shown: String = if name.chars().count() > 36 {
            name.chars().take(35).chain(['…']).collect()
        } else {
            name.to_string()
        };
        writeln!(
            out,
            r#"<text class="owner" x="{:.1}" y="{:.1}" text-anchor="end"><title>{}</title>{}</text>"#,
            label_w - 6.0,
            y + 13.0,
            escape(name),
            escape(&shown)
        )?;
        writeln!(
            out,
            r#"<rect class="open" x="{label_w}" y="{y:.1}" width="{open_w:.1}" height="16"/><rect class="over" x="{label_w}" y="{y:.1}" width="{over_w:.1}" height="16"/>"#
        )?;
        writeln!(
            out,
            r#"<text class="count" x="{:.1}" y="{:.1}">{} open, {} overdue</text>"#,
            label_w + open_w + 5.0,
            y + 13.0,
            g.open,
            g.overdue
        )?;
    }
    let y = owners.len() as f64 * row_h + 10.0;
    writeln!(
        out,
        r#"<rect class="open" x="{label_w}" y="{y:.1}" width="10" height="10"/><text x="{:.1}" y="{:.1}">open, not overdue</text><rect class="over" x="{:.1}" y="{y:.1}" width="10" height="10"/><text x="{:.1}" y="{:.1}">overdue</text>"#,
        label_w + 14.0,
        y + 9.0,
        label_w + 150.0,
        label_w + 164.0,
        y + 9.0
    )?;
    writeln!(out, "</svg>")
}

/// Month by month: departures (grey), those revoked within the SLA (green) in front, and the
/// month's p50 above.
fn months_svg(out: &mut String, r: &Report) -> std::fmt::Result {
    let months = &r.months;
    if months.is_empty() {
        return writeln!(out, "<p>No month to show.</p>");
    }
    let (w, left, top, plot_h) = (720.0, 30.0, 26.0, 120.0);
    let slot = ((w - left - 10.0) / months.len() as f64).min(120.0);
    let max = months
        .iter()
        .map(|m| m.departures)
        .max()
        .unwrap_or(0)
        .max(1);
    writeln!(
        out,
        r#"<svg id="chart-months" viewBox="0 0 {w} 196" role="img" aria-label="Departures month by month">"#
    )?;
    for tick in 0..=max {
        if max > 6 && tick % max.div_ceil(6) != 0 {
            continue;
        }
        let y = top + plot_h - scale(tick, max, plot_h);
        writeln!(
            out,
            r#"<line class="grid" x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="lbl" x="{}" y="{:.1}" text-anchor="end">{tick}</text>"#,
            w - 10.0,
            left - 4.0,
            y + 3.5
        )?;
    }
    for (i, m) in months.iter().enumerate() {
        let x = left + i as f64 * slot;
        let all_h = scale(m.departures, max, plot_h);
        let in_h = scale(m.within_sla, max, plot_h);
        let bar_w = (slot - 12.0).max(4.0);
        writeln!(
            out,
            r#"<rect class="all" x="{:.1}" y="{:.1}" width="{bar_w:.1}" height="{all_h:.1}"><title>{}: {} departure(s), p50 {}</title></rect><rect class="in" x="{:.1}" y="{:.1}" width="{bar_w:.1}" height="{in_h:.1}"><title>{}: {} within the SLA</title></rect>"#,
            x + 6.0,
            top + plot_h - all_h,
            escape(&m.month),
            m.departures,
            show_opt(m.p50_seconds),
            x + 6.0,
            top + plot_h - in_h,
            escape(&m.month),
            m.within_sla
        )?;
        if m.departures > 0 {
            // The p50 fits above the bar only when months are wide enough; it is in the
            // bar's tooltip and the JSON either way.
            let p50 = if slot >= 90.0 {
                format!(" · p50 {}", show_opt(m.p50_seconds))
            } else {
                String::new()
            };
            writeln!(
                out,
                r#"<text class="count" x="{:.1}" y="{:.1}" text-anchor="middle">{}{p50}</text>"#,
                x + slot / 2.0,
                top + plot_h - all_h - 4.0,
                m.departures,
            )?;
        }
        writeln!(
            out,
            r#"<text class="lbl" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x + slot / 2.0,
            top + plot_h + 14.0,
            escape(&m.month)
        )?;
    }
    writeln!(
        out,
        r#"<line class="axis" x1="{left}" x2="{}" y1="{:.1}" y2="{:.1}"/>"#,
        w - 10.0,
        top + plot_h,
        top + plot_h
    )?;
    writeln!(
        out,
        r#"<rect class="all" x="{left}" y="178" width="10" height="10"/><text x="{}" y="187">departures</text><rect class="in" x="{}" y="178" width="10" height="10"/><text x="{}" y="187">of them revoked within the SLA; the label is the month's count and p50</text>"#,
        left + 14.0,
        left + 110.0,
        left + 124.0
    )?;
    writeln!(out, "</svg>")
}

/// The report as a page.
pub fn render(r: &Report) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    let d = &r.departures;
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, r#"<html lang="en"><head><meta charset="utf-8">"#)?;
    writeln!(
        out,
        r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">"#
    )?;
    writeln!(
        out,
        r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
    )?;
    writeln!(
        out,
        "<title>Offboarding report — {}</title>",
        show_time(&r.generated_at)
    )?;
    writeln!(out, "<style>{CSS}</style></head><body>")?;

    writeln!(out, "<header><h1>Offboarding report</h1>")?;
    let types: Vec<String> = d.by_type.iter().map(|(k, n)| format!("{n} {k}")).collect();
    writeln!(
        out,
        r#"<p class="sub">{} departure(s){}{} · time-to-revocation target (SLA) {} · generated {}</p></header>"#,
        d.total,
        if types.is_empty() {
            String::new()
        } else {
            format!(" ({})", escape(&types.join(", ")))
        },
        r.since
            .as_deref()
            .map(|s| format!(", effective since {}", show_time(s)))
            .unwrap_or_default(),
        show_duration(r.sla_seconds),
        show_time(&r.generated_at)
    )?;

    if !r.damaged.is_empty() {
        writeln!(
            out,
            r#"<div class="damaged"><p><strong>{} departure(s) NOT counted</strong>: their journal is damaged (broken hash chain or unreadable), so nothing in it can be trusted.</p><ul>"#,
            r.damaged.len()
        )?;
        for x in &r.damaged {
            writeln!(
                out,
                r#"<li><span class="mono">{}</span>: {}</li>"#,
                escape(&x.departure),
                escape(&x.error)
            )?;
        }
        writeln!(out, "</ul></div>")?;
    }
    if d.total == 0 {
        writeln!(out, "<p>No departures to report on.</p>")?;
        writeln!(out, "</body></html>")?;
        return Ok(out);
    }

    let ttr = &r.time_to_revocation;
    let m = &r.manual_steps;
    let a = &r.assets;
    writeln!(out, r#"<div class="cards">"#)?;
    card(
        &mut out,
        "fig-p50",
        &show_opt(ttr.overall.p50_seconds),
        "time to revocation, p50",
    )?;
    card(
        &mut out,
        "fig-p90",
        &show_opt(ttr.overall.p90_seconds),
        "time to revocation, p90",
    )?;
    card(
        &mut out,
        "fig-sla",
        &format!("{}/{}", ttr.overall.within_sla, ttr.overall.count),
        &format!(
            "revoked within {} ({} not revoked)",
            show_duration(r.sla_seconds),
            ttr.overall.not_revoked
        ),
    )?;
    card(
        &mut out,
        "fig-complete",
        &show_rate(d.completion_rate),
        &format!("departures complete ({} of {})", d.complete, d.total),
    )?;
    card(
        &mut out,
        "fig-open",
        &format!("{} / {}", m.total.open, m.total.overdue),
        "manual tasks open / overdue",
    )?;
    card(
        &mut out,
        "fig-assets",
        &format!("{}/{}", a.recovered, a.steps),
        &format!("assets recovered ({})", show_rate(a.return_rate)),
    )?;
    card(
        &mut out,
        "fig-drift",
        &r.drift.findings.len().to_string(),
        &format!(
            "drift findings ({} departure(s) swept)",
            r.drift.departures_swept
        ),
    )?;
    card(
        &mut out,
        "fig-holds",
        &r.legal_holds.active.to_string(),
        &format!("legal holds in force ({} ever)", r.legal_holds.ever),
    )?;
    writeln!(out, "</div>")?;

    writeln!(out, r#"<h2>Time to revocation</h2>"#)?;
    writeln!(
        out,
        r#"<p class="muted">From the effective time to the moment every automated cut step was confirmed revoked by a run. Percentiles by nearest rank.</p>"#
    )?;
    if ttr.overall.count == 0 && ttr.overall.not_revoked == 0 {
        writeln!(out, "<p>No departure has an automated cut step.</p>")?;
    } else {
        writeln!(out, r#"<div class="keep">"#)?;
        histogram_svg(&mut out, r)?;
        writeln!(out, "</div>")?;
        writeln!(
            out,
            r#"<table class="keep" id="ttr"><thead><tr><th>system</th><th class="n">revoked</th><th class="n">p50</th><th class="n">p90</th><th class="n">max</th><th class="n">within SLA</th><th class="n">not revoked</th></tr></thead><tbody>"#
        )?;
        stats_row(&mut out, "all systems", &ttr.overall)?;
        for (name, s) in &ttr.by_system {
            stats_row(&mut out, name, s)?;
        }
        writeln!(out, "</tbody></table>")?;
    }
    if ttr.no_cut_steps > 0 {
        writeln!(
            out,
            "<p>{} departure(s) have no automated cut step and are not in these figures.</p>",
            ttr.no_cut_steps
        )?;
    }

    writeln!(out, "<h2>Open tasks</h2>")?;
    if m.total.steps == 0 {
        writeln!(out, "<p>No manual steps.</p>")?;
    } else {
        writeln!(
            out,
            r#"<p>Manual steps: {} of {} settled ({}), {} open, <span class="{}">{} overdue</span>.</p>"#,
            m.total.settled,
            m.total.steps,
            show_rate(m.total.completion_rate),
            m.total.open,
            if m.total.overdue > 0 { "bad" } else { "" },
            m.total.overdue
        )?;
        writeln!(out, r#"<div class="keep">"#)?;
        owners_svg(&mut out, r)?;
        writeln!(out, "</div>")?;
        group_table(&mut out, "lane", &m.by_lane)?;
        group_table(&mut out, "owner", &m.by_owner)?;
    }

    writeln!(out, "<h2>Month by month</h2>")?;
    writeln!(out, r#"<div class="keep">"#)?;
    months_svg(&mut out, r)?;
    writeln!(out, "</div>")?;

    writeln!(out, "<h2>Assets and licences</h2>")?;
    if a.steps == 0 {
        writeln!(
            out,
            "<p>No manual step asks for an asset tag, serial or tracking number.</p>"
        )?;
    } else {
        writeln!(
            out,
            "<p>Assets: {} recovered of {} ({}), {} outstanding.</p>",
            a.recovered,
            a.steps,
            show_rate(a.return_rate),
            a.outstanding
        )?;
        if !a.dispositions.is_empty() {
            writeln!(
                out,
                "<p>Dispositions: {} ({} retired with an ITAD certificate).</p>",
                escape(&super::dispositions_line(&a.dispositions)),
                a.itad_certificates
            )?;
        }
        if !a.items.is_empty() {
            writeln!(
                out,
                r#"<table class="keep"><thead><tr><th>person</th><th>step</th><th>field</th><th>value</th><th>confirmed</th></tr></thead><tbody>"#
            )?;
            for i in &a.items {
                writeln!(
                    out,
                    r#"<tr><td>{}</td><td class="mono">{}</td><td>{}</td><td class="mono">{}</td><td>{} by {}</td></tr>"#,
                    escape(&i.user),
                    escape(&i.step),
                    escape(&i.field),
                    escape(&i.value),
                    i.at.as_deref().map(show_time).unwrap_or_else(|| "—".into()),
                    or_dash(i.by.as_deref().unwrap_or(""))
                )?;
            }
            writeln!(out, "</tbody></table>")?;
        }
    }
    let l = &r.licences;
    writeln!(
        out,
        "<p>Licences: {} licence step(s) done, {} open. SKUs freed: {}.</p>",
        l.steps_done,
        l.steps_open,
        super::skus_text(l, &escape)
    )?;

    writeln!(out, "<h2>Drift and legal holds</h2>")?;
    let dr = &r.drift;
    writeln!(
        out,
        "<p>Drift: {} departure(s) swept by <code>offboard verify</code>; {} finding(s) in {} departure(s).</p>",
        dr.departures_swept,
        dr.findings.len(),
        dr.departures_with_drift
    )?;
    if !dr.findings.is_empty() {
        writeln!(
            out,
            r#"<table class="keep"><thead><tr><th>person</th><th>step</th><th>system</th><th>access back at</th><th>seen</th><th>since</th></tr></thead><tbody>"#
        )?;
        for f in &dr.findings {
            writeln!(
                out,
                r#"<tr><td>{}</td><td class="mono">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                escape(&f.user),
                escape(&f.step),
                escape(&f.system),
                show_time(&f.found_at),
                escape(&f.observed),
                if f.fixed {
                    "revoked again"
                } else {
                    r#"<span class="bad">still open</span>"#
                }
            )?;
        }
        writeln!(out, "</tbody></table>")?;
    }
    let h = &r.legal_holds;
    writeln!(
        out,
        "<p>Legal holds: {} in force, {} ever placed, {} destructive step(s) blocked.</p>",
        h.active, h.ever, h.blocked_steps
    )?;
    if !h.departures.is_empty() {
        writeln!(
            out,
            r#"<table class="keep"><thead><tr><th>person</th><th>hold</th><th>since</th><th>by</th><th>reason</th></tr></thead><tbody>"#
        )?;
        for x in &h.departures {
            writeln!(
                out,
                r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                escape(&x.user),
                if x.active {
                    r#"<strong class="bad">in force</strong>"#
                } else {
                    "released"
                },
                show_time(&x.at),
                escape(&x.by),
                escape(&x.reason)
            )?;
        }
        writeln!(out, "</tbody></table>")?;
    }

    writeln!(out, "<h2>Departures</h2>")?;
    writeln!(
        out,
        r#"<table><thead><tr><th>person</th><th>type</th><th>effective</th><th class="n">to revocation</th><th class="n">open</th><th class="n">overdue</th><th>departure</th></tr></thead><tbody>"#
    )?;
    for row in &r.rows {
        writeln!(
            out,
            r#"<tr><td>{}</td><td>{}{}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="mono">{}</td></tr>"#,
            escape(&row.user),
            escape(&row.departure_type),
            if row.legal_hold { " · hold" } else { "" },
            show_time(&row.effective_at),
            match row.seconds_to_revocation {
                Some(s) => show_duration(s),
                None => row.cut.as_str().replace('_', " "),
            },
            row.manual_open,
            row.manual_overdue,
            escape(&row.departure)
        )?;
    }
    writeln!(out, "</tbody></table>")?;
    writeln!(
        out,
        "<footer>Made by <code>offboard report</code> from the departures' journals (each hash chain checked). Percentiles: {}. Overdue: at {}, a manual step 15 minutes past its deadline.</footer>",
        escape(r.percentile_method),
        show_time(&r.generated_at)
    )?;
    writeln!(out, "</body></html>")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::departure::DepartureState;
    use crate::report::Month;

    /// Two years of months: each keeps its bar and count; the p50 moves to the tooltip.
    #[test]
    fn many_months_keep_their_labels_short() {
        let mut r = crate::report::build(
            &[],
            Vec::new(),
            &Options {
                since: None,
                sla_seconds: 3600,
                now: chrono::Utc::now(),
            },
        );
        r.months = (1..=24)
            .map(|i| Month {
                month: format!("{}-{:02}", 2025 + (i - 1) / 12, (i - 1) % 12 + 1),
                departures: 2,
                revoked: 2,
                within_sla: 1,
                p50_seconds: Some(600),
            })
            .collect();
        let mut out = String::new();
        super::months_svg(&mut out, &r).unwrap();
        assert_eq!(out.matches(r#"<rect class="all""#).count(), 24 + 1);
        assert_eq!(out.matches(">2</text>").count(), 24 + 1, "{out}");
        assert!(!out.contains("· p50"), "{out}");
        assert_eq!(out.matches("departure(s), p50 10 min</title>").count(), 24);
        assert!(out.contains(">2026-12</text>"));
    }
    use crate::evidence::testutil::facts;
    use crate::journal::{Event, Record};
    use crate::report::{Damaged, Loaded, Options, build};

    /// Every value from a journal is text on the page: a person, an owner or a damaged journal's
    /// error that carries markup or a right-to-left override cannot add an element or hide text.
    #[test]
    fn journal_text_cannot_become_markup() {
        const HOSTILE: &str = "<script>alert(1)</script>\u{202e}gpj.exe";
        let mut f = facts();
        f.user = HOSTILE.into();
        for s in &mut f.steps {
            s.owner = Some(format!("{HOSTILE}@corp.example"));
        }
        let events = vec![Event {
            seq: 0,
            ts: "2026-11-23T10:00:00Z".into(),
            actor: "admin@host".into(),
            step: None,
            record: Record::DepartureStarted(Box::new(f)),
            prev: String::new(),
            hash: String::new(),
        }];
        let state = DepartureState::replay(&events).unwrap();
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let r = build(
            &[Loaded { events, state }],
            vec![Damaged {
                departure: "x".into(),
                error: HOSTILE.into(),
            }],
            &Options {
                since: None,
                sla_seconds: 3600,
                now,
            },
        );
        let html = super::render(&r).unwrap();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains('\u{202e}'), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\u{202e}gpj.exe"));
        // In the owners chart too (cut to fit: the escape happens after the cut, and the whole
        // name is the tooltip).
        assert!(html.contains(
            r#"text-anchor="end"><title>&lt;script&gt;alert(1)&lt;/script&gt;\u{202e}gpj.exe@corp.example</title>&lt;script&gt;alert(1)&lt;/script&gt;\u{202e}gpj.exe@c…</text>"#
        ), "{html}");
    }
}
