//! The page a person reads: an evidence statement as one self-contained HTML page
//! (`offboard evidence show FILE --format html`, and `<id>-r<N>.html` in a bundle).
//!
//! For the reader of a ticket (a client's HR, an auditor): the departure's facts, a chart of the
//! cut (from the effective time to the moment each system's access was confirmed revoked), the
//! lanes with their owners and each step's status, what is still open or overdue, what the legal
//! hold blocked, and the signer's fingerprint with the commands that verify the signed file.
//!
//! The page is built from the statement alone, so the same evidence always gives the same bytes:
//! no clock is read ("overdue" means overdue when the evidence was signed). It loads nothing
//! (inline CSS, inline SVG, a Content-Security-Policy that forbids every fetch and every script)
//! and prints on A4. Every value from the file is untrusted text and goes through [`escape`]:
//! markup characters become entities, and control and bidirectional-override characters are
//! shown as visible escapes (`\u{202e}`), as the terminal rendering shows them.

use std::fmt::Write as _;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::departure::MANUAL_GRACE_MINUTES;
use crate::ui::must_escape;

/// What the page says about the file it was made from.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    /// The evidence file's name, as the verify commands on the page name it.
    pub file_name: &'a str,
    /// The SHA-256 (hex) of the evidence file's bytes.
    pub sha256: &'a str,
}

/// Untrusted text for HTML text or a quoted attribute: `& < > " '` as entities, control and
/// bidirectional-override characters as visible escapes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        c if must_escape(c) => out.extend(c.escape_default()),
        c => out.push(c),
    }
}

/// [`escape`], keeping line breaks (the page shows them with `white-space: pre-wrap`).
fn escape_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.trim_end().chars() {
        if c == '\n' {
            out.push('\n');
        } else {
            push_escaped(&mut out, c);
        }
    }
    out
}

/// A word for a shell command: as it is when it is plainly safe, else in single quotes.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+' | '/'));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn time(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A time for a person: `2026-11-23 10:00:04 UTC`, or the text as it is when it is not a time.
fn show_time(t: &str) -> String {
    match time(t) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        None if t.is_empty() => "—".into(),
        None => escape(t),
    }
}

/// `+4 s`, `+2 min 5 s`, `+1 h 20 min`, `+3 d 4 h` (or `−…` before).
pub(crate) fn human_duration(ms: i64) -> String {
    let sign = if ms < 0 { "−" } else { "+" };
    let secs = ms.unsigned_abs() / 1000;
    let text = if secs < 60 {
        if ms.unsigned_abs() < 1000 && ms != 0 {
            format!("{:.1} s", ms.unsigned_abs() as f64 / 1000.0)
        } else {
            format!("{secs} s")
        }
    } else if secs < 3600 {
        format!("{} min {} s", secs / 60, secs % 60)
    } else if secs < 86_400 {
        format!("{} h {} min", secs / 3600, (secs % 3600) / 60)
    } else {
        format!("{} d {} h", secs / 86_400, (secs % 86_400) / 3600)
    };
    format!("{sign}{text}")
}

/// The CSS class for a status, from a fixed set (a status in the file never reaches an attribute).
fn status_class(status: &str) -> &'static str {
    match status {
        "done" => "ok",
        "not_applicable" => "na",
        "failed" => "bad",
        "skipped" => "warn",
        _ => "open",
    }
}

fn status_badge(status: &str) -> String {
    let label = match status {
        "not_applicable" => "not applicable".to_string(),
        "in_flight" => "in flight".to_string(),
        "" => "pending".to_string(),
        other => escape(other),
    };
    format!(
        r#"<span class="badge {}">{label}</span>"#,
        status_class(status)
    )
}

fn or_dash(x: &str) -> String {
    if x.is_empty() {
        "—".into()
    } else {
        escape(x)
    }
}

fn is_settled(status: &str) -> bool {
    matches!(status, "done" | "not_applicable")
}

const LANES: [&str; 7] = [
    "it",
    "saas",
    "facilities",
    "finance",
    "manager",
    "security",
    "custom",
];

const CSS: &str = r#"
@page { size: A4; margin: 12mm; }
* { box-sizing: border-box; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font: 9.5pt/1.4 "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #1f2328;
  margin: 0 auto; max-width: 190mm; padding: 6mm 4mm; background: #fff; }
header { border-bottom: 2px solid #1f2328; padding-bottom: 2mm; margin-bottom: 3mm; }
h1 { font-size: 15pt; margin: 0; }
h2 { font-size: 11pt; margin: 5mm 0 1.5mm; padding-bottom: 0.5mm; border-bottom: 1px solid #d0d7de;
  break-after: avoid; page-break-after: avoid; }
h3 { font-size: 9.5pt; margin: 3mm 0 1mm; color: #57606a; break-after: avoid; page-break-after: avoid; }
h3 .lane { text-transform: uppercase; letter-spacing: 0.04em; color: #1f2328; }
p { margin: 1mm 0; }
.sub { color: #57606a; margin-top: 1mm; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.8mm 1.5mm; border-bottom: 1px solid #d8dee4; }
thead th { font-size: 8pt; color: #57606a; font-weight: normal; border-bottom: 1px solid #8c959f; }
tr { break-inside: avoid; page-break-inside: avoid; }
table.facts th { width: 30mm; font-weight: normal; color: #57606a; }
.mono, code, pre { font-family: "DejaVu Sans Mono", "Courier New", monospace; font-size: 8pt; }
.mono, code { overflow-wrap: anywhere; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f8fa; border: 1px solid #d0d7de;
  padding: 1.5mm 2mm; margin: 1mm 0; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 0 1.5mm; border-radius: 1.5mm; font-size: 7.5pt;
  font-weight: bold; border: 1px solid; white-space: nowrap; }
.badge.ok { color: #1a7f37; border-color: #1a7f37; background: #dafbe1; }
.badge.na { color: #57606a; border-color: #8c959f; background: #f6f8fa; }
.badge.bad { color: #cf222e; border-color: #cf222e; background: #ffebe9; }
.badge.warn { color: #9a6700; border-color: #bf8700; background: #fff8c5; }
.badge.open { color: #0969da; border-color: #0969da; background: #ddf4ff; }
.verdict { font-size: 10.5pt; font-weight: bold; margin-top: 1.5mm; }
.verdict.ok { color: #1a7f37; } .verdict.open { color: #9a6700; }
.hold { border: 2px solid #cf222e; padding: 1.5mm 2mm; margin: 1mm 0; }
.hold > p > strong { color: #cf222e; }
.overdue { color: #cf222e; font-weight: bold; }
.muted { color: #57606a; }
.fp { font-family: "DejaVu Sans Mono", monospace; font-size: 9.5pt; font-weight: bold; }
svg { display: block; width: 100%; height: auto; }
svg text { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10px; fill: #1f2328; }
svg .bar { fill: #2da44e; } svg .openbar { fill: #fff8c5; stroke: #bf8700; stroke-dasharray: 4 2; }
svg .eff { stroke: #57606a; stroke-dasharray: 3 3; } svg .grid { stroke: #d8dee4; }
svg .lbl { fill: #57606a; } svg .notrevoked { fill: #cf222e; font-weight: bold; }
.keep { break-inside: avoid; page-break-inside: avoid; }
footer { margin-top: 5mm; padding-top: 1.5mm; border-top: 1px solid #d0d7de; color: #57606a; font-size: 8pt; }
@media print { body { padding: 0; max-width: none; } }
"#;

/// The statement as a self-contained HTML page.
pub fn render_html(statement: &Value, page: &Page) -> Result<String> {
    let p = super::render::predicate(statement)?;
    let steps = p
        .get("steps")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let d = |k: &str| s(p, &format!("/departure/{k}"));
    let generated_at = s(p, "/generated_at");
    let mut out = String::new();

    // Head.
    let title = format!("Departure of {} — {}", d("user"), d("id"));
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
    writeln!(out, "<title>{}</title>", escape(&title))?;
    writeln!(out, "<style>{CSS}</style></head><body>")?;

    // Title and verdict.
    let complete = p.pointer("/summary/complete").and_then(Value::as_bool) == Some(true);
    let counts = super::counts_of(statement);
    let count_text: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {}", escape(&k.replace('_', " "))))
        .collect();
    writeln!(out, "<header>")?;
    writeln!(
        out,
        r#"<h1>Departure of <span id="person">{}</span></h1>"#,
        or_dash(d("user"))
    )?;
    writeln!(
        out,
        r#"<p class="sub">Signed evidence <span class="mono">{}</span>, revision {}, signed {}</p>"#,
        escape(page.file_name),
        p.get("revision").and_then(Value::as_u64).unwrap_or(0),
        show_time(generated_at)
    )?;
    let hold_active = p.pointer("/legal_hold/active").and_then(Value::as_bool) == Some(true)
        || (p.pointer("/legal_hold").is_none()
            && p.pointer("/departure/legal_hold").and_then(Value::as_bool) == Some(true));
    writeln!(
        out,
        r#"<p class="verdict {}">{} — {} steps: {}{}</p>"#,
        if complete { "ok" } else { "open" },
        if complete {
            "Complete: every step is done or not applicable"
        } else {
            "NOT complete: steps are still open"
        },
        p.pointer("/summary/steps")
            .and_then(Value::as_u64)
            .unwrap_or(steps.len() as u64),
        if count_text.is_empty() {
            "none".to_string()
        } else {
            count_text.join(", ")
        },
        if hold_active {
            " — under LEGAL HOLD"
        } else {
            ""
        }
    )?;
    writeln!(out, "</header>")?;

    // Facts.
    writeln!(out, "<h2>The departure</h2>")?;
    writeln!(out, r#"<table class="facts">"#)?;
    let mut person = or_dash(d("user"));
    if !d("email").is_empty() && d("email") != d("user") {
        person = format!("{person} &lt;{}&gt;", escape(d("email")));
    }
    let operator = p
        .pointer("/events/0/actor")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut rows: Vec<(&str, String)> = vec![
        ("Person", person),
        ("Type", or_dash(d("type"))),
        ("Effective", show_time(d("effective_at"))),
        ("Ticket", or_dash(d("ticket"))),
        ("Started by", or_dash(operator)),
        ("Started", show_time(s(p, "/summary/started_at"))),
        (
            "Runbook",
            format!(
                r#"{} <span class="muted">({}, sha256 <span class="mono">{}</span>)</span>"#,
                or_dash(s(p, "/runbook/name")),
                or_dash(s(p, "/runbook/path")),
                or_dash(s(p, "/runbook/sha256"))
            ),
        ),
        (
            "Departure id",
            format!(r#"<span class="mono">{}</span>"#, or_dash(d("id"))),
        ),
    ];
    if let Some(inputs) = p.pointer("/departure/inputs").and_then(Value::as_object)
        && !inputs.is_empty()
    {
        let list: Vec<String> = inputs
            .iter()
            .map(|(k, v)| {
                format!(
                    "{} = {}",
                    escape(k),
                    escape(v.as_str().unwrap_or(&v.to_string()))
                )
            })
            .collect();
        rows.push(("Inputs", list.join("<br>")));
    }
    if !d("previous").is_empty() {
        rows.push((
            "Follows",
            format!(
                r#"departure <span class="mono">{}</span>, still open when this one was started"#,
                escape(d("previous"))
            ),
        ));
    }
    for (k, v) in rows {
        writeln!(out, "<tr><th>{k}</th><td>{v}</td></tr>")?;
    }
    writeln!(out, "</table>")?;

    // The cut, as a chart.
    writeln!(out, "<h2>Time to revocation</h2>")?;
    timeline(&mut out, p, &steps)?;

    // Legal hold.
    legal_hold(&mut out, p, &steps)?;

    // Open and overdue.
    writeln!(out, "<h2>Still open</h2>")?;
    let signed = time(generated_at);
    let open: Vec<&Value> = steps
        .iter()
        .filter(|st| !is_settled(s(st, "/status")))
        .collect();
    if open.is_empty() {
        writeln!(out, "<p>Nothing: every step is done or not applicable.</p>")?;
    } else {
        writeln!(
            out,
            "<table><thead><tr><th>Step</th><th>Lane</th><th>Owner</th><th>Deadline</th><th>Status</th></tr></thead><tbody>"
        )?;
        let mut any_overdue = false;
        for st in open {
            let overdue = match (signed, time(s(st, "/deadline"))) {
                (Some(at), Some(deadline)) => {
                    let grace = if s(st, "/kind") == "manual" {
                        chrono::Duration::minutes(MANUAL_GRACE_MINUTES)
                    } else {
                        chrono::Duration::zero()
                    };
                    at > deadline + grace
                }
                _ => false,
            };
            any_overdue |= overdue;
            let mut owner = or_dash(s(st, "/owner"));
            if overdue && !s(st, "/escalate_to").is_empty() {
                owner = format!(
                    "{owner}<br><span class=\"muted\">escalate to {}</span>",
                    escape(s(st, "/escalate_to"))
                );
            }
            writeln!(
                out,
                r#"<tr><td class="mono">{}</td><td>{}</td><td>{owner}</td><td>{}{}</td><td>{}</td></tr>"#,
                escape(s(st, "/id")),
                escape(s(st, "/lane")),
                show_time(s(st, "/deadline")),
                if overdue {
                    r#" <span class="overdue">OVERDUE</span>"#
                } else {
                    ""
                },
                status_badge(s(st, "/status"))
                    + if held(st) {
                        r#"<br><span class="muted">legal hold</span>"#
                    } else {
                        ""
                    },
            )?;
        }
        writeln!(out, "</tbody></table>")?;
        if any_overdue {
            writeln!(
                out,
                r#"<p class="muted">Overdue as of the signing time, {}.</p>"#,
                show_time(generated_at)
            )?;
        }
    }

    // Lanes.
    writeln!(out, "<h2>Every step, by lane</h2>")?;
    lanes(&mut out, &steps)?;

    // Rollback, when the departure was rolled back.
    if let Some(rb) = p.get("rollback").filter(|r| r.is_object()) {
        rollback(&mut out, rb)?;
    }

    // Signature.
    verification(&mut out, p, page)?;

    writeln!(
        out,
        "<footer>Made by {} {} from the signed evidence file alone; this page is a reading of that file and is not itself signed.</footer>",
        escape(s(p, "/tool/name")),
        escape(s(p, "/tool/version"))
    )?;
    writeln!(out, "</body></html>")?;
    Ok(out)
}

/// Per system: when its last access-cutting step was confirmed, or why it is not yet.
struct SystemCut {
    system: String,
    revoked_at: Option<DateTime<Utc>>,
    /// The steps that are not done yet, with their status.
    open: Vec<(String, String)>,
    steps: usize,
}

fn system_cuts(steps: &[Value]) -> Vec<SystemCut> {
    let mut cuts: Vec<SystemCut> = Vec::new();
    for st in steps {
        let revokes = st.get("revokes").and_then(Value::as_bool) != Some(false);
        if s(st, "/kind") != "automated" || s(st, "/phase") != "cut" || !revokes {
            continue;
        }
        let system = s(st, "/system").to_string();
        let i = match cuts.iter().position(|c| c.system == system) {
            Some(i) => i,
            None => {
                cuts.push(SystemCut {
                    system,
                    revoked_at: None,
                    open: Vec::new(),
                    steps: 0,
                });
                cuts.len() - 1
            }
        };
        let cut = &mut cuts[i];
        cut.steps += 1;
        let status = s(st, "/status");
        match (status, time(s(st, "/finished_at"))) {
            ("done", Some(t)) => {
                cut.revoked_at = Some(cut.revoked_at.map_or(t, |r| r.max(t)));
            }
            ("not_applicable", _) => {}
            _ => cut
                .open
                .push((s(st, "/id").to_string(), status.to_string())),
        }
    }
    cuts
}

/// Shorten a label for the chart's label column.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn timeline(out: &mut String, p: &Value, steps: &[Value]) -> Result<()> {
    let cuts = system_cuts(steps);
    let effective = time(s(p, "/departure/effective_at"));
    let (Some(effective), false) = (effective, cuts.is_empty()) else {
        writeln!(
            out,
            "<p>No automated step cuts access in this departure, so there is nothing to chart.</p>"
        )?;
        return Ok(());
    };
    let times: Vec<DateTime<Utc>> = cuts.iter().filter_map(|c| c.revoked_at).collect();
    let t_min = times.iter().copied().chain([effective]).min().unwrap();
    let t_max = times.iter().copied().chain([effective]).max().unwrap();
    let span_ms = ((t_max - t_min).num_milliseconds()).max(1000) as f64;

    const W: f64 = 700.0;
    const X0: f64 = 150.0;
    const X1: f64 = 540.0;
    const ROW: f64 = 24.0;
    const TOP: f64 = 26.0;
    let x = |t: DateTime<Utc>| X0 + (X1 - X0) * ((t - t_min).num_milliseconds() as f64 / span_ms);
    let height = TOP + ROW * cuts.len() as f64 + 22.0;
    let all_revoked = cuts.iter().all(|c| c.open.is_empty());

    writeln!(
        out,
        r#"<svg viewBox="0 0 {W} {height}" role="img" aria-label="When each system's access was revoked, from the effective time">"#
    )?;
    let xe = x(effective);
    writeln!(
        out,
        r#"<line class="eff" x1="{xe:.1}" y1="14" x2="{xe:.1}" y2="{:.1}"/>"#,
        height - 18.0
    )?;
    writeln!(
        out,
        r#"<text class="lbl" x="{xe:.1}" y="10" text-anchor="{}">effective {}</text>"#,
        if xe > X1 - 60.0 { "end" } else { "start" },
        effective.format("%Y-%m-%d %H:%M:%S UTC")
    )?;
    for (i, cut) in cuts.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        writeln!(
            out,
            r#"<line class="grid" x1="0" y1="{:.1}" x2="{W}" y2="{:.1}"/>"#,
            y + ROW - 2.0,
            y + ROW - 2.0
        )?;
        writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" class="system">{}</text>"#,
            X0 - 8.0,
            y + 14.0,
            escape(&clip(&cut.system, 22))
        )?;
        match (cut.open.is_empty(), cut.revoked_at) {
            (true, Some(at)) => {
                let (a, b) = (x(effective.min(at)), x(effective.max(at)));
                writeln!(
                    out,
                    r#"<rect class="bar" x="{a:.1}" y="{:.1}" width="{:.1}" height="12" rx="2"/>"#,
                    y + 4.0,
                    (b - a).max(2.0)
                )?;
                writeln!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}">revoked {} ({})</text>"#,
                    X1 + 8.0,
                    y + 14.0,
                    human_duration((at - effective).num_milliseconds()),
                    at.format("%H:%M:%S")
                )?;
            }
            (true, None) => {
                writeln!(
                    out,
                    r#"<text class="lbl" x="{:.1}" y="{:.1}">not applicable</text>"#,
                    X1 + 8.0,
                    y + 14.0
                )?;
            }
            (false, _) => {
                writeln!(
                    out,
                    r#"<rect class="openbar" x="{xe:.1}" y="{:.1}" width="{:.1}" height="12" rx="2"/>"#,
                    y + 4.0,
                    (X1 - xe).max(2.0)
                )?;
                let (id, status) = &cut.open[0];
                let more = if cut.open.len() > 1 {
                    format!(" and {} more", cut.open.len() - 1)
                } else {
                    String::new()
                };
                writeln!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}">{} {}{more}</text>"#,
                    xe.min(X1 - 150.0) + 4.0,
                    y + 14.0,
                    escape(&clip(id, 24)),
                    escape(&status.replace('_', " ")),
                )?;
                writeln!(
                    out,
                    r#"<text class="notrevoked" x="{:.1}" y="{:.1}">NOT revoked</text>"#,
                    X1 + 8.0,
                    y + 14.0,
                )?;
            }
        }
    }
    let yb = height - 6.0;
    writeln!(
        out,
        r#"<text class="lbl" x="{X0:.1}" y="{yb:.1}">{}</text><text class="lbl" x="{X1:.1}" y="{yb:.1}" text-anchor="end">{}</text>"#,
        human_duration((t_min - effective).num_milliseconds()),
        human_duration((t_min - effective).num_milliseconds() + span_ms as i64),
    )?;
    writeln!(out, "</svg>")?;

    // The same facts as text, for a reader who cannot see the chart.
    let last = times.iter().max();
    let verdict = match (all_revoked, last) {
        (true, Some(last)) => format!(
            "Access was confirmed revoked in every system {} after the effective time ({}).",
            human_duration((*last - effective).num_milliseconds()),
            last.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        (true, None) => "No system needed its access cut.".to_string(),
        (false, _) => {
            let open: Vec<String> = cuts
                .iter()
                .filter(|c| !c.open.is_empty())
                .map(|c| escape(&c.system))
                .collect();
            format!("Access is NOT confirmed revoked in: {}.", open.join(", "))
        }
    };
    writeln!(out, "<p>{verdict}</p>")?;
    writeln!(
        out,
        r#"<p class="muted">Each bar runs from the effective time to the moment the last of a system's access-cutting steps ({} in all) was confirmed by reading the system back.</p>"#,
        cuts.iter().map(|c| c.steps).sum::<usize>()
    )?;
    Ok(())
}

fn legal_hold(out: &mut String, p: &Value, steps: &[Value]) -> Result<()> {
    let history = p
        .pointer("/legal_hold/history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let active = p.pointer("/legal_hold/active").and_then(Value::as_bool) == Some(true);
    let at_start = p.pointer("/departure/legal_hold").and_then(Value::as_bool) == Some(true);
    // Blocked: every skip the hold caused, and any step still held now.
    let mut blocked: Vec<(String, String)> = p
        .pointer("/legal_hold/blocked")
        .and_then(Value::as_array)
        .map(|b| {
            b.iter()
                .map(|x| (s(x, "/step").to_string(), s(x, "/at").to_string()))
                .collect()
        })
        .unwrap_or_default();
    for st in steps {
        let id = s(st, "/id");
        if st.get("held").and_then(Value::as_bool) == Some(true)
            && !blocked.iter().any(|(b, _)| b == id)
        {
            blocked.push((id.to_string(), String::new()));
        }
    }
    if history.is_empty() && !at_start && blocked.is_empty() {
        return Ok(());
    }
    writeln!(out, "<h2>Legal hold</h2>")?;
    writeln!(out, r#"<div class="hold">"#)?;
    writeln!(
        out,
        "<p><strong>{}</strong></p>",
        if active {
            "The legal hold is IN FORCE: destructive steps do not run."
        } else if history.is_empty() {
            "The departure was under legal hold."
        } else {
            "The legal hold was released."
        }
    )?;
    for h in &history {
        writeln!(
            out,
            "<p>{} {} by {}: {}</p>",
            escape(&s(h, "/action").replace('_', " ")),
            show_time(s(h, "/at")),
            or_dash(s(h, "/by")),
            or_dash(s(h, "/reason"))
        )?;
    }
    if blocked.is_empty() {
        writeln!(out, "<p>It blocked no step.</p>")?;
    } else {
        writeln!(out, "<h3>Blocked by the hold</h3>")?;
        writeln!(
            out,
            r#"<table><thead><tr><th style="width:30mm">Step</th><th>What it would have done</th><th style="width:36mm">Blocked at</th><th style="width:20mm">Status now</th></tr></thead><tbody>"#
        )?;
        for (id, at) in &blocked {
            let step = steps.iter().find(|st| s(st, "/id") == id);
            let what = step.map(what_html).unwrap_or_else(|| "—".into());
            let status = step.map(|st| s(st, "/status")).unwrap_or("");
            writeln!(
                out,
                r#"<tr><td class="mono blocked-step">{}</td><td>{what}</td><td>{}</td><td>{}</td></tr>"#,
                escape(id),
                if at.is_empty() {
                    "held now".to_string()
                } else {
                    show_time(at)
                },
                status_badge(status)
            )?;
        }
        writeln!(out, "</tbody></table>")?;
    }
    writeln!(out, "</div>")?;
    Ok(())
}

/// Kept from running by the legal hold: held now, or skipped because of it.
fn held(st: &Value) -> bool {
    st.get("held").and_then(Value::as_bool) == Some(true)
        || (s(st, "/status") == "skipped"
            && s(st, "/reason").starts_with(crate::departure::HOLD_SKIP_REASON))
}

/// What a step does, for a table cell.
fn what_html(st: &Value) -> String {
    if s(st, "/kind") == "manual" {
        format!(
            r#"<span class="text">{}</span>"#,
            escape_lines(s(st, "/manual"))
        )
    } else {
        let mut w = format!(
            r#"<strong>{}</strong> {}"#,
            escape(s(st, "/system")),
            escape(&s(st, "/action").replace('_', " "))
        );
        if !s(st, "/login").is_empty() {
            write!(
                w,
                r#" <span class="muted">as {}</span>"#,
                escape(s(st, "/login"))
            )
            .ok();
        }
        if st.get("destructive").and_then(Value::as_bool) == Some(true) {
            w.push_str(r#" <span class="badge warn">destructive</span>"#);
        }
        w
    }
}

fn lanes(out: &mut String, steps: &[Value]) -> Result<()> {
    let mut lanes: Vec<String> = LANES.iter().map(|l| l.to_string()).collect();
    for st in steps {
        let l = s(st, "/lane").to_string();
        if !lanes.contains(&l) {
            lanes.push(l);
        }
    }
    for lane in lanes {
        let in_lane: Vec<&Value> = steps.iter().filter(|st| s(st, "/lane") == lane).collect();
        if in_lane.is_empty() {
            continue;
        }
        let owners: Vec<String> = {
            let mut o: Vec<&str> = in_lane
                .iter()
                .map(|st| s(st, "/owner"))
                .filter(|o| !o.is_empty())
                .collect();
            o.sort_unstable();
            o.dedup();
            o.into_iter().map(escape).collect()
        };
        writeln!(
            out,
            r#"<h3><span class="lane">{}</span>{}</h3>"#,
            escape(&lane),
            if owners.is_empty() {
                String::new()
            } else {
                format!(r#" <span class="muted">· {}</span>"#, owners.join(", "))
            }
        )?;
        writeln!(
            out,
            r#"<table class="lane"><thead><tr><th style="width:24mm">Step</th><th>What</th><th style="width:34mm">Owner</th><th style="width:20mm">Status</th><th style="width:52mm">Outcome</th></tr></thead><tbody>"#
        )?;
        for st in in_lane {
            let mut outcome = Vec::new();
            if !s(st, "/finished_at").is_empty() {
                outcome.push(format!("at {}", show_time(s(st, "/finished_at"))));
            }
            if let Some(b) = st.get("before").filter(|b| !b.is_null()) {
                outcome.push(format!(
                    "before: <span class=\"mono\">{}</span>",
                    escape(&crate::journal::canonical_json(b))
                ));
            }
            if let Some(c) = st.get("check").filter(|c| c.is_object()) {
                let revoked = c.get("revoked").and_then(Value::as_bool) == Some(true);
                outcome.push(format!(
                    "check: {} <span class=\"mono\">{}</span>",
                    if revoked { "revoked" } else { "NOT revoked" },
                    escape(s(c, "/observed"))
                ));
            }
            if let Some(who) = st
                .get("confirmed_by")
                .or_else(|| st.get("actor"))
                .and_then(Value::as_str)
            {
                outcome.push(format!("by {}", escape(who)));
            }
            for key in ["error", "reason", "note"] {
                let text = s(st, &format!("/{key}"));
                let repeated = key == "note" && text == s(st, "/reason");
                if !text.is_empty() && !repeated {
                    outcome.push(format!(
                        r#"{key}: <span class="text">{}</span>"#,
                        escape_lines(text)
                    ));
                }
            }
            if let Some(fields) = st.get("fields").and_then(Value::as_object) {
                for (k, v) in fields {
                    outcome.push(format!(
                        "{}: {}",
                        escape(k),
                        escape(v.as_str().unwrap_or(""))
                    ));
                }
            }
            if held(st) {
                outcome.push("<strong>blocked by legal hold</strong>".into());
            }
            let mut owner = or_dash(s(st, "/owner"));
            if !s(st, "/deadline").is_empty() {
                owner = format!(
                    "{owner}<br><span class=\"muted\">due {}</span>",
                    show_time(s(st, "/deadline"))
                );
            }
            writeln!(
                out,
                r#"<tr><td class="mono">{}</td><td>{}</td><td>{owner}</td><td>{}</td><td>{}</td></tr>"#,
                escape(s(st, "/id")),
                what_html(st),
                status_badge(s(st, "/status")),
                outcome.join("<br>")
            )?;
        }
        writeln!(out, "</tbody></table>")?;
    }
    Ok(())
}

/// The rollback: per undo step, before, after and how it ended.
fn rollback(out: &mut String, rb: &Value) -> Result<()> {
    let complete = rb.get("complete").and_then(Value::as_bool) == Some(true);
    writeln!(
        out,
        r#"<h2>Rollback{}</h2><p class="muted">Plan sha256:<span class="mono">{}</span>, started {}.</p>"#,
        if complete { "" } else { " (not complete)" },
        escape(s(rb, "/plan_digest")),
        show_time(s(rb, "/started_at"))
    )?;
    if let Some(c) = rb.get("cancelled").and_then(Value::as_array)
        && !c.is_empty()
    {
        let names: Vec<String> = c.iter().map(|x| escape(s(x, "/step"))).collect();
        writeln!(
            out,
            "<p>Cancelled before they ran: {}</p>",
            names.join(", ")
        )?;
    }
    writeln!(
        out,
        r#"<table class="lane"><thead><tr><th style="width:24mm">Step</th><th>What</th><th style="width:30mm">Outcome</th><th>Before</th><th>After</th></tr></thead><tbody>"#
    )?;
    let json_cell = |v: Option<&Value>| match v {
        Some(v) if !v.is_null() => format!(
            r#"<span class="mono">{}</span>"#,
            escape(&crate::journal::canonical_json(v))
        ),
        _ => "—".to_string(),
    };
    for st in rb
        .get("steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let outcome = s(st, "/outcome");
        let detail = match outcome {
            "not restorable" => s(st, "/not_restorable"),
            "failed" => s(st, "/error"),
            "by hand" => s(st, "/detail"),
            _ => s(st, "/observed"),
        };
        let what = if s(st, "/system").is_empty() {
            "manual".to_string()
        } else {
            format!("{}.{}", escape(s(st, "/system")), escape(s(st, "/action")))
        };
        writeln!(
            out,
            r#"<tr><td class="mono">{}</td><td>{what}</td><td><strong>{}</strong><br><span class="text">{}</span></td><td>{}</td><td>{}</td></tr>"#,
            escape(s(st, "/step")),
            escape(outcome),
            escape_lines(detail),
            json_cell(st.get("before")),
            json_cell(st.get("after")),
        )?;
    }
    writeln!(out, "</tbody></table>")?;
    Ok(())
}

fn verification(out: &mut String, p: &Value, page: &Page) -> Result<()> {
    let principal = principal_of(p);
    let file = shell_word(page.file_name);
    let sig = shell_word(&format!("{}.sig", page.file_name));
    writeln!(out, r#"<section class="keep">"#)?;
    writeln!(out, "<h2>Signature and how to verify it</h2>")?;
    writeln!(out, r#"<table class="facts">"#)?;
    writeln!(
        out,
        r#"<tr><th>Signer</th><td><span class="fp" id="fingerprint">{}</span></td></tr>"#,
        or_dash(s(p, "/signer/fingerprint"))
    )?;
    writeln!(
        out,
        r#"<tr><th>Public key</th><td class="mono">{}</td></tr>"#,
        or_dash(s(p, "/signer/public_key"))
    )?;
    writeln!(
        out,
        r#"<tr><th>Signed file</th><td><span class="mono">{}</span><br><span class="muted">sha256</span> <span class="mono">{}</span></td></tr>"#,
        escape(page.file_name),
        escape(page.sha256)
    )?;
    writeln!(
        out,
        r#"<tr><th>Signed at</th><td>{} <span class="muted">(namespace {}, revision {})</span></td></tr>"#,
        show_time(s(p, "/generated_at")),
        or_dash(s(p, "/signer/namespace")),
        p.get("revision").and_then(Value::as_u64).unwrap_or(0)
    )?;
    writeln!(
        out,
        r#"<tr><th>Journal</th><td>{} events, head <span class="mono">{}</span></td></tr>"#,
        p.pointer("/chain/length")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        or_dash(s(p, "/chain/head"))
    )?;
    writeln!(out, "</table>")?;
    writeln!(
        out,
        "<p>With OpenSSH alone, next to the file, its <code>.sig</code> and an <code>allowed_signers</code> file naming the signer's key:</p>"
    )?;
    writeln!(
        out,
        "<pre>ssh-keygen -Y verify -f allowed_signers -I {} -n {} -s {sig} &lt; {file}</pre>",
        escape(&shell_word(&principal)),
        super::NAMESPACE,
        sig = escape(&sig),
        file = escape(&file)
    )?;
    writeln!(
        out,
        "<p>With offboard, which also checks the journal's hash chain inside the file:</p>"
    )?;
    writeln!(
        out,
        "<pre>offboard evidence verify {} --allowed-signers allowed_signers</pre>",
        escape(&file)
    )?;
    writeln!(
        out,
        "<p>Trust the result only if the fingerprint above is the one the signer gave you over a channel you trust (<code>offboard keys show</code> prints it): anyone can sign a file with a key of their own.</p>"
    )?;
    writeln!(out, "</section>")?;
    Ok(())
}

/// The principal the signer's key is named by in an allowed_signers file, from its comment (as
/// `offboard keys show` names it).
pub(crate) fn principal_of(p: &Value) -> String {
    let comment = ssh_key::PublicKey::from_openssh(s(p, "/signer/public_key"))
        .map(|k| k.comment().to_string())
        .unwrap_or_default();
    crate::keys::principal_for_comment(&comment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::testutil;

    const HOSTILE: &str = "<script>alert(1)</script>\u{202e}gpj.exe\u{1b}[31m";

    /// The test departure's statement, signed at `generated_at`.
    fn statement(generated_at: &str) -> Value {
        let dir = tempfile::tempdir().unwrap();
        let j = testutil::journal(dir.path());
        let key = crate::keys::generate(&dir.path().join("key"), "offboard", false).unwrap();
        let mut v = crate::evidence::build(j.events(), 1, &key).unwrap();
        v["predicate"]["generated_at"] = Value::from(generated_at);
        v
    }

    fn page(v: &Value) -> String {
        render_html(
            v,
            &Page {
                file_name: "x-r1.json",
                sha256: "ab12",
            },
        )
        .unwrap()
    }

    #[test]
    fn markup_and_invisible_characters_are_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            escape("a\u{202e}b\u{2066}c\n\u{1b}"),
            "a\\u{202e}b\\u{2066}c\\n\\u{1b}"
        );
        assert_eq!(escape_lines("one\ntwo<\n"), "one\ntwo&lt;");
        assert_eq!(shell_word("a-r1.json"), "a-r1.json");
        assert_eq!(shell_word("it's here"), r"'it'\''s here'");
    }

    /// Every value the file carries is untrusted: names, emails, owners, step text, statuses and
    /// the file name reach the page as text only.
    #[test]
    fn a_hostile_evidence_file_cannot_put_markup_or_bidi_overrides_on_the_page() {
        let mut v = statement("2026-11-23T12:00:00Z");
        let p = &mut v["predicate"];
        p["departure"]["user"] = Value::from(HOSTILE);
        p["departure"]["email"] = Value::from(format!("{HOSTILE}@corp.example"));
        p["departure"]["ticket"] = Value::from(HOSTILE);
        p["runbook"]["name"] = Value::from(HOSTILE);
        p["events"][0]["actor"] = Value::from(HOSTILE);
        for st in p["steps"].as_array_mut().unwrap() {
            st["owner"] = Value::from(HOSTILE);
            st["lane"] = Value::from(HOSTILE);
            st["id"] = Value::from(HOSTILE);
            st["status"] = Value::from("done\" onmouseover=\"alert(1)");
            st["system"] = Value::from(HOSTILE);
            st["manual"] = Value::from(format!("line one\n{HOSTILE}"));
        }
        p["signer"]["fingerprint"] = Value::from(HOSTILE);
        let html = render_html(
            &v,
            &Page {
                file_name: "<img src=x onerror=alert(1)>.json",
                sha256: HOSTILE,
            },
        )
        .unwrap();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("onmouseover=\""), "{html}");
        assert!(!html.contains('\u{202e}') && !html.contains('\u{1b}'));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\u{202e}gpj.exe\\u{1b}[31m"));
        // The person's name is the title, escaped once (not twice).
        assert!(html.contains(
            "<h1>Departure of <span id=\"person\">&lt;script&gt;alert(1)&lt;/script&gt;"
        ));
    }

    #[test]
    fn the_page_shows_the_facts_and_depends_on_nothing_but_the_file() {
        let v = statement("2026-11-23T12:00:00Z");
        let html = page(&v);
        for fact in [
            "<span id=\"person\">alice@corp.example</span>",
            "HR-1234",
            "involuntary",
            "admin@host",
            "Complete: every step is done or not applicable",
            // The cut: okta confirmed revoked, and when, relative to the effective time.
            "class=\"system\">okta</text>",
            "ssh-keygen -Y verify -f allowed_signers -I offboard -n offboard-evidence -s x-r1.json.sig &lt; x-r1.json",
            "offboard evidence verify x-r1.json --allowed-signers allowed_signers",
            "ab12",
            v["predicate"]["signer"]["fingerprint"].as_str().unwrap(),
            "handed in at reception",
        ] {
            assert!(html.contains(fact), "{fact:?} not in:\n{html}");
        }
        assert!(!html.contains("://"), "the page names a URL");
        assert!(!html.contains("<script"));
        // Only the file decides the bytes.
        assert_eq!(page(&v), html);
    }

    #[test]
    fn overdue_is_judged_at_the_signing_time_not_now() {
        // collect-laptop is due 2026-11-30T17:00:00Z; re-open it.
        let open = |signed: &str| {
            let mut v = statement(signed);
            for st in v["predicate"]["steps"].as_array_mut().unwrap() {
                if st["id"] == "collect-laptop" {
                    st["status"] = Value::from("pending");
                }
            }
            page(&v)
        };
        let before = open("2026-11-30T17:10:00Z");
        assert!(before.contains("collect-laptop"), "{before}");
        assert!(!before.contains("OVERDUE"), "{before}");
        // Manual steps get their grace period; past it, overdue.
        let after = open("2026-11-30T17:16:00Z");
        assert!(after.contains("OVERDUE"), "{after}");
    }

    #[test]
    fn a_system_not_yet_revoked_is_charted_as_open_and_named() {
        let mut v = statement("2026-11-23T12:00:00Z");
        for st in v["predicate"]["steps"].as_array_mut().unwrap() {
            if st["id"] == "okta-deactivate" {
                st["status"] = Value::from("failed");
            }
        }
        let html = page(&v);
        assert!(html.contains("NOT revoked</text>"), "{html}");
        assert!(
            html.contains("Access is NOT confirmed revoked in: okta."),
            "{html}"
        );
        assert!(!html.contains("confirmed revoked in every system"));
    }

    #[test]
    fn durations_read_as_a_person_says_them() {
        assert_eq!(human_duration(0), "+0 s");
        assert_eq!(human_duration(400), "+0.4 s");
        assert_eq!(human_duration(4_000), "+4 s");
        assert_eq!(human_duration(125_000), "+2 min 5 s");
        assert_eq!(human_duration(4_800_000), "+1 h 20 min");
        assert_eq!(human_duration(-(3 * 86_400 + 4 * 3600) * 1000), "−3 d 4 h");
    }
}
