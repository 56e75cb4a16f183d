//! `offboard verify`: re-run every automated step's check against the live systems.

use std::path::Path;

use anyhow::Context;

use crate::cli::VerifyArgs;
use crate::exit::{CliError, Exit};
use crate::ui::{progress::Progress, safe};

use crate::engine::{Reporter, VerifyItem};

use super::{Ctx, common};

pub fn exec(ctx: &Ctx, args: VerifyArgs) -> anyhow::Result<Exit> {
    if args.all {
        return super::sweep::exec(ctx, args);
    }
    let Some(target) = args.target.as_deref() else {
        return Err(CliError::usage("name a departure, or pass --all")
            .hint("offboard verify alice@corp.example, or offboard verify --all --since 90d")
            .into());
    };
    let id = departure_of(ctx, target)?;
    let key = common::signing_key(ctx)?;
    let driving = common::open_departure(ctx, &id, &key)?;
    let state = driving.state();
    let p = &ctx.printer;
    p.info(format!(
        "{} departure {id} ({}): re-checking every automated step against the live systems",
        p.bold("Verifying"),
        safe(&state.facts.user)
    ));
    let items = check(ctx, &driving)?;
    let sealed = driving.seal(&ctx.state, &key)?;
    let drift: Vec<&str> = items
        .iter()
        .filter(|i| matches!(&i.result, Ok(c) if !c.revoked))
        .map(|i| i.step.as_str())
        .collect();
    let errors: Vec<&str> = items
        .iter()
        .filter(|i| i.result.is_err())
        .map(|i| i.step.as_str())
        .collect();
    let holding = items.len() - drift.len() - errors.len();
    let exit = if !drift.is_empty() {
        p.result(p.red(&format!(
            "DRIFT: access came back for {}",
            safe(&drift.join(", "))
        )));
        // `resume` re-checks each drifted step by its recorded account and applies it again.
        for (step, _) in state
            .ordered()
            .filter(|(s, _)| drift.contains(&s.id.as_str()))
        {
            if let Some(a) = &step.automated {
                p.info(format!(
                    "  {}: {} on {} for {}",
                    safe(&step.id),
                    a.action,
                    safe(&a.system),
                    safe(&a.login)
                ));
            }
        }
        p.info(format!(
            "  re-apply: offboard resume {id}   (re-checks each of them on the same account, applies it again, and re-signs)"
        ));

        Exit::Drift
    } else if !errors.is_empty() {
        p.result(p.yellow(&format!(
            "Cannot confirm {} revocation(s): {} (no check read the account's live state; \
             see the details above)",
            errors.len(),
            safe(&errors.join(", "))
        )));
        Exit::Incomplete
    } else {
        p.result(p.green(&format!("All {holding} revocation(s) hold.")));
        Exit::Ok
    };
    p.result(format!(
        "Evidence revision {}: {}",
        sealed.revision,
        sealed.json_path.display()
    ));
    super::attach::after(ctx, &driving, &key);
    p.json_result(&serde_json::json!({
        "departure": id,
        "holding": holding,
        "drift": drift,
        "errors": errors,
        "checks": items.iter().map(|i| match &i.result {
            Ok(c) => serde_json::json!({"step": i.step, "revoked": c.revoked, "observed": c.observed}),
            Err(e) => serde_json::json!({"step": i.step, "error": e}),
        }).collect::<Vec<_>>(),
        "evidence": sealed.json_path,
        "revision": sealed.revision,
    }));
    Ok(exit)
}

/// Re-run every revoking step's check of the departure `driving` holds, journaling each result
/// and `verify_finished` (the evidence is the caller's to seal). Progress shows on a terminal.
pub fn check(ctx: &Ctx, driving: &common::Driving) -> anyhow::Result<Vec<VerifyItem>> {
    let state = driving.state();
    let engine = crate::engine::Engine::connect(
        driving.journal.clone(),
        &state.facts,
        ctx.state.root(),
        "verify",
    );
    let progress = Progress::new(&ctx.printer);
    let items = common::runtime()?.block_on(engine.verify(&progress))?;
    progress.pause();
    Ok(items)
}

/// A departure id or user, or an evidence file naming one.
fn departure_of(ctx: &Ctx, target: &str) -> anyhow::Result<String> {
    let path = Path::new(target);
    if path.is_file() {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            CliError::usage(format!("{} is not an evidence file: {e}", path.display()))
        })?;
        let id = v
            .pointer("/predicate/departure/id")
            .and_then(|v| v.as_str())
            .ok_or_else(|| CliError::usage(format!("{} names no departure", path.display())))?;
        return Ok(common::find_departure(ctx, id)
            .map_err(|e| {
                anyhow::Error::new(
                    CliError::usage(format!("{e:#}"))
                        .hint("verify re-checks from the departure's journal; point --state-dir at the state dir that ran it"),
                )
            })?
            .0);
    }
    Ok(common::find_departure(ctx, target)?.0)
}
