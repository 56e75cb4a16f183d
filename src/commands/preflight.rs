//! `offboard preflight`: read-only calls to every system before anything is cut.

use crate::cli::PlanArgs;
use crate::departure::DepartureFacts;
use crate::engine::Preflight;
use crate::exit::Exit;
use crate::ui::safe;

use super::{Ctx, common};

pub fn exec(ctx: &Ctx, args: PlanArgs) -> anyhow::Result<Exit> {
    if args.out.is_some() {
        return Err(
            crate::exit::CliError::usage("preflight writes no plan file")
                .hint("use `offboard plan <USER> … --out plan.json --check`")
                .into(),
        );
    }
    let facts = super::plan::build(ctx, &args.input)?;
    run(ctx, &facts)
}

/// Run the preflight for a plan and print all of it. `Exit::Ok` when every look succeeded.
pub fn run(ctx: &Ctx, facts: &DepartureFacts) -> anyhow::Result<Exit> {
    let found = look(ctx, facts)?;
    report(ctx, facts, &found, true);
    json(ctx, facts, &found);
    Ok(if found.problems() == 0 {
        Exit::Ok
    } else {
        Exit::Failure
    })
}

/// Ask every system, read-only, about the person.
pub fn look(ctx: &Ctx, facts: &DepartureFacts) -> anyhow::Result<Preflight> {
    let systems: std::collections::BTreeSet<&str> = facts
        .steps
        .iter()
        .filter_map(|s| s.automated.as_ref().map(|a| a.system.as_str()))
        .collect();
    ctx.printer.info(format!(
        "{} asking {} system(s) about {}, read-only (secrets, credentials, the person)",
        ctx.printer.bold("Preflight:"),
        systems.len(),
        safe(&facts.user)
    ));
    let rt = common::runtime()?;
    Ok(rt.block_on(crate::engine::preflight(facts, ctx.state.root())))
}

/// The problems (and, with `all`, what was found), then a verdict.
pub fn report(ctx: &Ctx, facts: &DepartureFacts, found: &Preflight, all: bool) {
    let p = &ctx.printer;
    for c in found.checks.iter().filter(|c| c.ok && all) {
        p.result(format!(
            "  {} {} ({}): {}",
            p.green("ok"),
            safe(&c.step),
            safe(&c.system),
            safe(&c.detail)
        ));
    }
    for c in found.checks.iter().filter(|c| !c.ok) {
        p.result(format!(
            "  {} {} ({}): {}",
            p.red("PROBLEM"),
            safe(&c.step),
            safe(&c.system),
            safe(&c.detail)
        ));
    }
    let n = found.problems();
    if n == 0 {
        p.info(p.green(&format!(
            "Preflight passed: every system answered and knows {} ({} automated step(s)).",
            safe(&facts.user),
            found.checks.len()
        )));
    } else {
        p.info(p.yellow(&format!(
            "Preflight found {n} problem(s) in {} automated step(s); nothing was changed.",
            found.checks.len()
        )));
    }
}

fn json(ctx: &Ctx, facts: &DepartureFacts, found: &Preflight) {
    ctx.printer.json_result(&serde_json::json!({
        "user": facts.user,
        "passed": found.problems() == 0,
        "problems": found.problems(),
        "checks": found.checks,
    }));
}
