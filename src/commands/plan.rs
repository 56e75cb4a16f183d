//! `offboard plan`: what `start` would do, with no side effects and no network.

use std::collections::BTreeMap;

use crate::cli::{DepartureInput, PlanArgs};
use crate::departure::{DepartureFacts, PlannedStep};
use crate::exit::{CliError, Exit};
use crate::ui::safe;

use super::{Ctx, common};

pub fn exec(ctx: &Ctx, args: PlanArgs) -> anyhow::Result<Exit> {
    if let Some(out) = &args.out {
        let runbook = common::load_runbook(ctx, args.input.runbook.runbook.as_deref())?;
        let req = common::departure_request(ctx, &args.input, &runbook, false)?;
        let facts = crate::plan::build(&runbook, &req, ctx.state.root())
            .map_err(|e| CliError::new(Exit::Usage, e))?;
        ctx.printer.result(render(ctx, &facts));
        super::approve::write_plan(ctx, &runbook, &facts, out)?;
        if args.check {
            return super::preflight::run(ctx, &facts);
        }
        return Ok(Exit::Ok);
    }
    if args.check {
        let facts = build(ctx, &args.input)?;
        ctx.printer.result(render(ctx, &facts));
        return super::preflight::run(ctx, &facts);
    }
    show(ctx, &args.input)
}

/// The departure's plan from the command line, as `start` would make it (nothing recorded).
pub fn build(ctx: &Ctx, input: &DepartureInput) -> anyhow::Result<DepartureFacts> {
    let runbook = common::load_runbook(ctx, input.runbook.runbook.as_deref())?;
    let req = common::departure_request(ctx, input, &runbook, false)?;
    crate::plan::build(&runbook, &req, ctx.state.root())
        .map_err(|e| CliError::new(Exit::Usage, e).into())
}

pub fn show(ctx: &Ctx, input: &DepartureInput) -> anyhow::Result<Exit> {
    let runbook = common::load_runbook(ctx, input.runbook.runbook.as_deref())?;
    let req = common::departure_request(ctx, input, &runbook, false)?;
    let facts = crate::plan::build(&runbook, &req, ctx.state.root())
        .map_err(|e| CliError::new(Exit::Usage, e))?;
    ctx.printer.result(render(ctx, &facts));
    ctx.printer
        .json_result(&serde_json::json!({ "plan": facts }));
    Ok(Exit::Ok)
}

/// The plan as a person reads it: waves in order, each step with its requests or instruction.
pub fn render(ctx: &Ctx, facts: &DepartureFacts) -> String {
    let p = &ctx.printer;
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "{} {} ({}), runbook \"{}\" ({})",
        p.bold("Plan for"),
        safe(&facts.user),
        facts.departure_type.as_str(),
        safe(&facts.runbook.name),
        safe(&facts.runbook.path)
    ));
    line(format!(
        "effective {} · legal hold {} · {} step(s); nothing has been done",
        crate::ui::table::short(&facts.effective_at),
        if facts.legal_hold { "ON" } else { "off" },
        facts.steps.len()
    ));
    let mut waves: BTreeMap<u32, Vec<&PlannedStep>> = BTreeMap::new();
    for s in &facts.steps {
        waves.entry(s.wave).or_default().push(s);
    }
    for (n, (_, steps)) in waves.iter().enumerate() {
        let mut steps = steps.clone();
        steps.sort_by_key(|s| s.lane);
        let phase = steps[0].phase.as_str();
        let auto = steps.iter().filter(|s| !s.is_manual()).count();
        let mut heading = format!("{phase} · wave {}", n + 1);
        if auto > 1 {
            heading.push_str(&format!(" · {auto} automated steps run concurrently"));
        }
        if steps.iter().any(|s| s.alerts_user)
            && facts.departure_type.as_str() == "involuntary"
            && phase == "cut"
        {
            heading.push_str(" · held back until access is cut (could alert the person)");
        }
        line(String::new());
        line(p.bold(&heading));
        for s in steps {
            let owner = s
                .owner
                .as_deref()
                .map(|o| format!(" · owner {}", safe(o)))
                .unwrap_or_default();
            let due = s
                .deadline
                .as_deref()
                .map(|d| format!(" · due {}", crate::ui::table::short(d)))
                .unwrap_or_default();
            match &s.automated {
                Some(a) => {
                    let mut flags = Vec::new();
                    if s.held {
                        flags.push(p.yellow("BLOCKED by legal hold"));
                    } else if a.destructive {
                        flags.push(p.yellow("destructive"));
                    }
                    if s.alerts_user {
                        flags.push(p.yellow("may alert the person"));
                    }
                    let flags = if flags.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", flags.join(", "))
                    };
                    line(format!(
                        "  {:<10} {:<24} {}.{} as {}{flags}{owner}{due}",
                        s.lane.as_str(),
                        safe(&s.id),
                        safe(&a.system),
                        a.action,
                        safe(&a.login)
                    ));
                    for r in &a.requests {
                        line(format!(
                            "  {:<10} {:<24}   {} {}",
                            "",
                            "",
                            p.dim("→"),
                            safe(&r.to_string())
                        ));
                    }
                }
                None => {
                    line(format!(
                        "  {:<10} {:<24} manual: {}{owner}{due}",
                        s.lane.as_str(),
                        safe(&s.id),
                        safe(s.manual.as_deref().unwrap_or(""))
                    ));
                    if !s.fields.is_empty() {
                        line(format!(
                            "  {:<10} {:<24}   asks for: {}",
                            "",
                            "",
                            safe(&s.fields.join(", "))
                        ));
                    }
                }
            }
            if let Some(waits_on) = &s.on_overdue_of {
                line(format!(
                    "  {:<10} {:<24}   only once an asset is overdue or lost: {}",
                    "",
                    "",
                    if waits_on.is_empty() {
                        "none listed (not applicable)".to_string()
                    } else {
                        safe(&waits_on.join(", ")).to_string()
                    }
                ));
            }
            if !s.after.is_empty() {
                line(format!(
                    "  {:<10} {:<24}   after: {}",
                    "",
                    "",
                    safe(&s.after.join(", "))
                ));
            }
        }
    }
    out
}
