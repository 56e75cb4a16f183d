//! A human rendering of an evidence statement (`offboard evidence show`).

use std::fmt::Write as _;

use anyhow::{Result, bail};
use comfy_table::{
    Cell, Color, ColumnConstraint, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED,
};
use owo_colors::OwoColorize;
use serde_json::Value;

use super::{PREDICATE_TYPE, STATEMENT_TYPE};
use crate::ui::safe;

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn or_dash(x: &str) -> String {
    if x.is_empty() {
        "—".to_string()
    } else {
        safe(x)
    }
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

/// Who approved the plan the departure was started from (four-eyes), if it was.
fn approvals_text(p: &Value) -> String {
    let Some(a) = p.pointer("/departure/approvals") else {
        return String::new();
    };
    let given: Vec<String> = a
        .pointer("/given")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .map(|x| {
                    format!(
                        "{} by {} ({})",
                        safe(x["role"].as_str().unwrap_or("")),
                        safe(x["principal"].as_str().unwrap_or("")),
                        safe(x["fingerprint"].as_str().unwrap_or(""))
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "plan sha256:{}; {}",
        safe(a["plan_digest"].as_str().unwrap_or("")),
        if given.is_empty() {
            "none given".to_string()
        } else {
            given.join(", ")
        }
    )
}

/// The legal hold: its history (who placed or released it, when, why) and the steps it blocked;
/// evidence from before holds had a history says only yes or no.
fn hold_text(p: &Value) -> String {
    let history = p
        .pointer("/legal_hold/history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if history.is_empty() {
        return if p.pointer("/departure/legal_hold").and_then(Value::as_bool) == Some(true) {
            "yes".into()
        } else {
            "no".into()
        };
    }
    let mut parts: Vec<String> = history
        .iter()
        .map(|h| {
            format!(
                "{} {} by {}: {}",
                safe(s(h, "/action")),
                safe(s(h, "/at")),
                safe(s(h, "/by")),
                safe(s(h, "/reason"))
            )
        })
        .collect();
    let active = p.pointer("/legal_hold/active").and_then(Value::as_bool) == Some(true);
    parts.insert(0, if active { "IN FORCE" } else { "released" }.to_string());
    let blocked: Vec<String> = p
        .pointer("/legal_hold/blocked")
        .and_then(Value::as_array)
        .map(|b| {
            b.iter()
                .map(|x| format!("{} ({})", safe(s(x, "/step")), safe(s(x, "/at"))))
                .collect()
        })
        .unwrap_or_default();
    if !blocked.is_empty() {
        parts.push(format!("blocked: {}", blocked.join(", ")));
    }
    parts.join("; ")
}

/// The predicate of a statement that says it is offboard evidence (not checked: read it only).
/// The rollback section: the plan's digest and approvals, what was cancelled, and per undo step
/// before, after and how it ended.
fn rollback_text(out: &mut String, rb: &Value, bold: &dyn Fn(&str) -> String) -> Result<()> {
    writeln!(out)?;
    let complete = rb.get("complete").and_then(Value::as_bool) == Some(true);
    writeln!(
        out,
        "{} (plan sha256:{}, started {}){}",
        bold("Rollback"),
        safe(s(rb, "/plan_digest")),
        safe(s(rb, "/started_at")),
        if complete { "" } else { " — NOT complete" }
    )?;
    if let Some(given) = rb.get("approvals").and_then(Value::as_array)
        && !given.is_empty()
    {
        let names: Vec<String> = given
            .iter()
            .map(|a| format!("{} by {}", safe(s(a, "/role")), safe(s(a, "/principal"))))
            .collect();
        writeln!(out, "  approved: {}", names.join(", "))?;
    }
    if let Some(c) = rb.get("cancelled").and_then(Value::as_array)
        && !c.is_empty()
    {
        let names: Vec<String> = c.iter().map(|x| safe(s(x, "/step"))).collect();
        writeln!(out, "  cancelled: {}", names.join(", "))?;
    }
    let json_text = |v: Option<&Value>| match v {
        Some(v) if !v.is_null() => safe(&crate::journal::canonical_json(v)),
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
        writeln!(
            out,
            "  {} {}: {}{}",
            safe(s(st, "/step")),
            if s(st, "/system").is_empty() {
                String::new()
            } else {
                format!("({}.{})", safe(s(st, "/system")), safe(s(st, "/action")))
            },
            safe(outcome),
            if detail.is_empty() {
                String::new()
            } else {
                format!(" — {}", safe(detail))
            }
        )?;
        if st.get("before").is_some_and(|b| !b.is_null()) {
            writeln!(
                out,
                "      before {}  after {}",
                json_text(st.get("before")),
                json_text(st.get("after"))
            )?;
        }
    }
    Ok(())
}

pub(super) fn predicate(statement: &Value) -> Result<&Value> {
    if s(statement, "/_type") != STATEMENT_TYPE || s(statement, "/predicateType") != PREDICATE_TYPE
    {
        bail!(
            "not offboard evidence (expected _type {STATEMENT_TYPE:?} and predicateType {PREDICATE_TYPE:?})"
        );
    }
    statement
        .get("predicate")
        .filter(|p| p.is_object())
        .ok_or_else(|| anyhow::anyhow!("the evidence has no predicate"))
}

/// Render a statement for a person: header, steps by lane, summary and chain head.
pub fn render(statement: &Value, color: bool) -> Result<String> {
    let p = predicate(statement)?;
    let bold = |t: &str| {
        if color {
            t.bold().to_string()
        } else {
            t.to_string()
        }
    };

    let mut out = String::new();
    let d = |k: &str| s(p, &format!("/departure/{k}"));
    writeln!(out, "{} {}", bold("Departure"), safe(d("id")))?;
    let mut user = safe(d("user"));
    if !d("email").is_empty() && d("email") != d("user") {
        user = format!("{user} <{}>", safe(d("email")));
    }
    let mut rows: Vec<(&str, String)> = vec![
        ("user", user),
        ("type", or_dash(d("type"))),
        ("effective", or_dash(d("effective_at"))),
        ("ticket", or_dash(d("ticket"))),
        ("legal hold", hold_text(p)),
        (
            "runbook",
            format!(
                "{} ({}, sha256 {})",
                or_dash(s(p, "/runbook/name")),
                or_dash(s(p, "/runbook/path")),
                or_dash(s(p, "/runbook/sha256"))
            ),
        ),
        (
            "revision",
            format!(
                "{} (generated {})",
                p.get("revision").and_then(Value::as_u64).unwrap_or(0),
                or_dash(s(p, "/generated_at"))
            ),
        ),
        (
            "signer",
            format!(
                "{} ({})",
                or_dash(s(p, "/signer/fingerprint")),
                or_dash(s(p, "/signer/public_key"))
            ),
        ),
    ];
    if p.pointer("/departure/approvals").is_some() {
        let at = rows
            .iter()
            .position(|(k, _)| *k == "legal hold")
            .map_or(rows.len(), |i| i + 1);
        rows.insert(at, ("approvals", approvals_text(p)));
    }
    for (k, v) in rows {
        writeln!(out, "  {k:<11} {v}")?;
    }
    if !d("previous").is_empty() {
        writeln!(
            out,
            "  {:<11} follows departure {}, still open when this one was started (--new)",
            "previous",
            safe(d("previous"))
        )?;
    }
    if let Some(inputs) = p.pointer("/departure/inputs").and_then(Value::as_object)
        && !inputs.is_empty()
    {
        let list: Vec<String> = inputs
            .iter()
            .map(|(k, v)| format!("{}={}", safe(k), safe(v.as_str().unwrap_or(&v.to_string()))))
            .collect();
        writeln!(out, "  {:<11} {}", "inputs", list.join(", "))?;
    }

    let steps = p
        .get("steps")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut lanes: Vec<String> = LANES.iter().map(|l| l.to_string()).collect();
    for st in &steps {
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
        writeln!(out)?;
        writeln!(out, "{}", bold(&format!("Lane {}", safe(&lane))))?;
        let mut table = Table::new();
        table
            .load_style(UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(140);
        if color {
            table.enforce_styling();
        } else {
            table.force_no_tty();
        }
        table.set_header(vec![
            "step", "phase", "status", "owner", "deadline", "what", "result",
        ]);
        // Ids, statuses and deadlines are never wrapped; prose columns take the rest.
        for i in [0, 1, 2, 4] {
            if let Some(c) = table.column_mut(i) {
                c.set_constraint(ColumnConstraint::ContentWidth);
            }
        }
        for st in in_lane {
            let status = s(st, "/status");
            let mut status_cell = Cell::new(safe(status));
            if color {
                status_cell = status_cell.fg(match status {
                    "done" | "not_applicable" => Color::Green,
                    "failed" => Color::Red,
                    _ => Color::Yellow,
                });
            }
            let what = if s(st, "/kind") == "manual" {
                format!("manual: {}", safe(s(st, "/manual")))
            } else {
                format!(
                    "{} {} {}",
                    safe(s(st, "/system")),
                    safe(s(st, "/action")),
                    safe(s(st, "/login"))
                )
            };
            let mut result = Vec::new();
            if let Some(a) = st.get("account").filter(|a| a.is_object()) {
                result.push(format!(
                    "account: {} ({} {})",
                    safe(s(a, "/name")),
                    safe(s(a, "/id_kind")),
                    safe(s(a, "/id"))
                ));
            }
            if let Some(b) = st.get("before").filter(|b| !b.is_null()) {
                result.push(format!(
                    "before: {}",
                    safe(&crate::journal::canonical_json(b))
                ));
            }
            if let Some(c) = st.get("check").filter(|c| c.is_object()) {
                let revoked = c.get("revoked").and_then(Value::as_bool) == Some(true);
                result.push(format!(
                    "check: {} ({}, {})",
                    if revoked { "revoked" } else { "NOT revoked" },
                    safe(s(c, "/observed")),
                    safe(s(c, "/at"))
                ));
            }
            if let Some(who) = st
                .get("confirmed_by")
                .or_else(|| st.get("actor"))
                .and_then(Value::as_str)
            {
                result.push(format!("by {}", safe(who)));
            }
            for key in ["error", "reason", "note"] {
                let text = s(st, &format!("/{key}"));
                // A "not applicable" answer's reason is recorded as its note too: say it once.
                let repeated = key == "note" && text == s(st, "/reason");
                if !text.is_empty() && !repeated {
                    result.push(format!("{key}: {}", safe(text)));
                }
            }
            if let Some(fields) = st.get("fields").and_then(Value::as_object) {
                for (k, v) in fields {
                    result.push(format!("{}: {}", safe(k), safe(v.as_str().unwrap_or(""))));
                }
            }
            if st.get("held").and_then(Value::as_bool) == Some(true) {
                result.push("blocked by legal hold".into());
            }
            table.add_row(vec![
                Cell::new(safe(s(st, "/id"))),
                Cell::new(safe(s(st, "/phase"))),
                status_cell,
                Cell::new(or_dash(s(st, "/owner"))),
                Cell::new(or_dash(s(st, "/deadline"))),
                Cell::new(what),
                Cell::new(result.join("\n")),
            ]);
        }
        writeln!(out, "{table}")?;
    }

    if let Some(rb) = p.get("rollback").filter(|r| r.is_object()) {
        rollback_text(&mut out, rb, &bold)?;
    }

    writeln!(out)?;
    writeln!(out, "{}", bold("Summary"))?;
    let counts = super::counts_of(statement);
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{n} {}", safe(k)))
        .collect();
    let complete = p.pointer("/summary/complete").and_then(Value::as_bool) == Some(true);
    writeln!(
        out,
        "  {} steps: {} — {}",
        p.pointer("/summary/steps")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        },
        if complete { "complete" } else { "NOT complete" }
    )?;
    if !s(p, "/summary/last_cut_at").is_empty() {
        writeln!(
            out,
            "  access cut: first {}, last {} ({}s after start)",
            safe(s(p, "/summary/first_cut_at")),
            safe(s(p, "/summary/last_cut_at")),
            p.pointer("/summary/seconds_to_last_cut")
                .and_then(Value::as_i64)
                .unwrap_or(0)
        )?;
    }
    if let Some(v) = p
        .pointer("/summary/latest_verify")
        .filter(|v| v.is_object())
    {
        writeln!(
            out,
            "  latest verify {}: {} holding, {} drift, {} errors",
            safe(s(v, "/at")),
            v.get("holding").and_then(Value::as_u64).unwrap_or(0),
            v.get("drift").and_then(Value::as_u64).unwrap_or(0),
            v.get("errors").and_then(Value::as_u64).unwrap_or(0)
        )?;
    }
    writeln!(
        out,
        "  chain: {} events, head {}",
        p.pointer("/chain/length")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        or_dash(s(p, "/chain/head"))
    )?;
    Ok(out)
}
