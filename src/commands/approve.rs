//! Four-eyes approval: `offboard plan --out`, `offboard approve`, `offboard start --plan`, and
//! the approvals `resume` picks up later. The digest and signature rules live in
//! [`crate::approval`].

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::approval::{Approval, ApprovalGate, PlanFile, PlanPayload, Role};
use crate::cli::{ApproveArgs, DepartureInput, RunbookArg};
use crate::departure::DepartureFacts;
use crate::evidence::AllowedSigners;
use crate::exit::{CliError, Exit};
use crate::journal::Record;
use crate::runbook::Runbook;
use crate::ui::safe;

use super::Ctx;

/// The plan file for `facts` made from `runbook`.
pub fn plan_file(runbook: &Runbook, facts: &DepartureFacts) -> anyhow::Result<PlanFile> {
    let required = runbook
        .file
        .approvals
        .as_ref()
        .map(|a| a.required(facts))
        .unwrap_or_default();
    let payload = PlanPayload::new(facts, &required);
    let path = std::path::absolute(&runbook.path)
        .with_context(|| format!("resolving {}", runbook.path.display()))?;
    Ok(PlanFile {
        format: crate::approval::PLAN_FORMAT.into(),
        digest: payload.digest(),
        runbook_path: path.display().to_string(),
        payload,
    })
}

/// `offboard plan --out FILE`.
pub fn write_plan(
    ctx: &Ctx,
    runbook: &Runbook,
    facts: &DepartureFacts,
    out: &Path,
) -> anyhow::Result<()> {
    let plan = plan_file(runbook, facts)?;
    let mut bytes = serde_json::to_vec_pretty(&plan)?;
    bytes.push(b'\n');
    crate::state::write_atomic(out, &bytes)?;
    ctx.printer.json_result(&serde_json::json!({
        "plan": facts,
        "plan_file": out,
        "digest": plan.digest,
    }));
    let roles: std::collections::BTreeSet<Role> = plan
        .payload
        .steps
        .iter()
        .flat_map(|s| s.requires.iter().copied())
        .collect();
    ctx.printer.info(format!(
        "Plan written to {} (digest sha256:{})",
        out.display(),
        plan.digest
    ));
    if roles.is_empty() {
        ctx.printer
            .info("The runbook's [approvals] requires no approval for this plan.");
    } else {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        ctx.printer.info(format!(
            "Approvals needed: {}. Each approver runs `offboard approve {} --role <ROLE> --key <THEIR KEY>`; then `offboard start --plan {}`.",
            names.join(", "),
            out.display(),
            out.display()
        ));
    }
    Ok(())
}

/// `offboard approve PLAN --role ROLE`.
pub fn exec(ctx: &Ctx, args: ApproveArgs) -> anyhow::Result<Exit> {
    if crate::rollback::is_rollback_file(&args.plan) {
        return approve_rollback(ctx, args);
    }
    let plan = PlanFile::read(&args.plan).map_err(|e| {
        CliError::new(Exit::Usage, e)
            .hint("make the plan again with `offboard plan <USER> … --out plan.json`")
    })?;
    let message = crate::approval::message(args.role, &plan.digest);
    if args.message {
        print!("{message}");
        return Ok(Exit::Ok);
    }
    let p = &ctx.printer;
    let pl = &plan.payload;
    let mut text = String::new();
    text.push_str(&format!(
        "You approve, as {}, the {} departure of {} (effective {}), runbook \"{}\" (sha256 {}).\n",
        p.bold(args.role.as_str()),
        pl.departure_type.as_str(),
        safe(&pl.user),
        safe(&pl.effective_at),
        safe(&pl.runbook_name),
        &pl.runbook_sha256
    ));
    let destructive: Vec<_> = pl.steps.iter().filter(|s| s.destructive).collect();
    if destructive.is_empty() {
        text.push_str("Destructive steps: none.\n");
    } else {
        text.push_str("Destructive steps:\n");
        for s in destructive {
            text.push_str(&format!(
                "  {} {}.{}\n",
                safe(&s.id),
                safe(s.system.as_deref().unwrap_or("")),
                safe(s.action.as_deref().unwrap_or(""))
            ));
        }
    }
    let gated: Vec<&str> = pl
        .steps
        .iter()
        .filter(|s| s.requires.contains(&args.role))
        .map(|s| s.id.as_str())
        .collect();
    if gated.is_empty() {
        text.push_str(&format!(
            "No step of this plan requires the {} role.\n",
            args.role
        ));
    } else {
        text.push_str(&format!(
            "Steps that wait for your approval: {}\n",
            safe(&gated.join(", "))
        ));
    }
    text.push_str(&format!("Plan digest: sha256:{}", plan.digest));
    p.info(text);
    sign(ctx, &args, &message, &plan.digest, "plan.json")
}

/// Sign `message` (the approval line over `digest`) with the approver's `--key`, write
/// `<plan>.<role>.sig` atomically and say so.
fn sign(
    ctx: &Ctx,
    args: &ApproveArgs,
    message: &str,
    digest: &str,
    example: &str,
) -> anyhow::Result<Exit> {
    let p = &ctx.printer;
    let Some(key_path) = ctx.global.key.as_deref() else {
        return Err(CliError::usage("no approver key: give it with --key")
            .hint(format!("e.g. `offboard approve {example} --role security --key ~/.ssh/id_ed25519` (an unencrypted OpenSSH Ed25519 key)"))
            .into());
    };
    let key = crate::keys::load(key_path).map_err(|e| CliError::new(Exit::Usage, e))?;
    let sig = key.sign_in(crate::approval::NAMESPACE, message.as_bytes())?;
    let out = crate::approval::sig_path(&args.plan, args.role);
    crate::state::write_atomic(&out, sig.as_bytes())?;
    p.result(format!(
        "Approved as {} with key {}: {}",
        args.role,
        key.fingerprint(),
        out.display()
    ));
    p.json_result(&serde_json::json!({
        "role": args.role,
        "digest": digest,
        "fingerprint": key.fingerprint(),
        "signature_file": out,
    }));
    Ok(Exit::Ok)
}

/// `offboard approve rollback.json --role ROLE`: what the rollback does, then the same
/// signature over its digest (`<plan>.<role>.sig`).
fn approve_rollback(ctx: &Ctx, args: ApproveArgs) -> anyhow::Result<Exit> {
    use crate::rollback::{RollbackFile, Undo};
    let file = RollbackFile::read(&args.plan).map_err(|e| {
        CliError::new(Exit::Usage, e).hint(
            "make the rollback plan again with `offboard rollback <DEPARTURE> --out rollback.json`",
        )
    })?;
    let message = crate::approval::message(args.role, &file.digest);
    if args.message {
        print!("{message}");
        return Ok(Exit::Ok);
    }
    let p = &ctx.printer;
    let pl = &file.payload;
    let mut text = format!(
        "You approve, as {}, the ROLLBACK of departure {} of {}, runbook \"{}\".\n",
        p.bold(args.role.as_str()),
        safe(&pl.departure),
        safe(&pl.user),
        safe(&pl.runbook_name)
    );
    let cancel: Vec<String> = pl.cancel.iter().map(|c| safe(&c.step)).collect();
    if !cancel.is_empty() {
        text.push_str(&format!("Cancels: {}\n", cancel.join(", ")));
    }
    for u in &pl.undo {
        let (word, detail) = match &u.undo {
            Undo::Restore { what } => ("restore", what.as_str()),
            Undo::NotRestorable { why } => ("not restorable", why.as_str()),
            Undo::ByHand { instruction } => ("by hand", instruction.as_str()),
        };
        let waits = if u.requires.contains(&args.role) {
            " (waits for your approval)"
        } else {
            ""
        };
        text.push_str(&format!(
            "  {word} {}: {}{waits}\n",
            safe(&u.step),
            safe(detail)
        ));
    }
    text.push_str(&format!("Rollback plan digest: sha256:{}", file.digest));
    p.info(text);
    sign(ctx, &args, &message, &file.digest, "rollback.json")
}

/// `start --plan`: the command line the plan was made with, to build it again.
pub fn input_of(plan_path: &Path) -> anyhow::Result<(PlanFile, DepartureInput)> {
    let plan = PlanFile::read(plan_path).map_err(|e| {
        CliError::new(Exit::Usage, e).hint("make the plan again with `offboard plan <USER> … --out plan.json` and have it approved")
    })?;
    let pl = &plan.payload;
    let input = DepartureInput {
        user: Some(pl.user.clone()),
        runbook: RunbookArg {
            runbook: Some(PathBuf::from(&plan.runbook_path)),
        },
        departure_type: pl.departure_type,
        effective_at: Some(pl.effective_at.clone()),
        set: pl.inputs.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        ticket: pl.ticket.clone(),
        legal_hold: pl.legal_hold,
    };
    Ok((plan, input))
}

/// `start --plan`: the plan built now must hash to the approved digest; the `.sig` files beside
/// the plan are checked. Sets `facts.approval` and returns the approvals to journal.
pub fn gate(
    ctx: &Ctx,
    runbook: &Runbook,
    facts: &mut DepartureFacts,
    plan_path: &Path,
    approved: &PlanFile,
) -> anyhow::Result<Vec<Approval>> {
    let now = plan_file(runbook, facts)?;
    if now.digest != approved.digest {
        let changes = approved.payload.differences(&now.payload);
        let mut err = CliError::usage(format!(
            "the plan is not the one approved: it hashes to {} now, {} when approved; its approvals no longer count",
            now.digest, approved.digest
        ));
        for c in &changes {
            err = err.hint(format!("changed: {}", safe(c)));
        }
        return Err(err
            .hint("nothing was cut and no departure was recorded; make a new plan (`offboard plan … --out`) and have it approved again")
            .into());
    }
    let required = now
        .payload
        .steps
        .iter()
        .filter(|s| !s.requires.is_empty())
        .map(|s| (s.id.clone(), s.requires.clone()))
        .collect();
    let plan_abs = std::path::absolute(plan_path)?;
    let (signers_path, approvals) = match &runbook.file.approvals {
        Some(def) => {
            let base = Path::new(&approved.runbook_path)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let signers_path = base.join(&def.allowed_signers);
            let signers = read_signers(&signers_path)?;
            let approvals = collect(&plan_abs, &approved.digest, &signers, &[])?;
            (signers_path.display().to_string(), approvals)
        }
        None => (String::new(), Vec::new()),
    };
    for a in &approvals {
        ctx.printer.info(format!(
            "Approved as {} by {} ({})",
            a.role,
            safe(&a.principal),
            a.fingerprint
        ));
    }
    facts.approval = Some(ApprovalGate {
        digest: approved.digest.clone(),
        plan_file: plan_abs.display().to_string(),
        allowed_signers: signers_path,
        required,
    });
    Ok(approvals)
}

pub(crate) fn read_signers(path: &Path) -> anyhow::Result<AllowedSigners> {
    AllowedSigners::read(path).map_err(|e| {
        CliError::new(
            Exit::Usage,
            anyhow::anyhow!("the approvers' allowed_signers: {e}"),
        )
        .hint("the runbook's [approvals] allowed_signers names it, relative to the runbook")
        .into()
    })
}

/// The valid approvals beside `plan` for roles not in `have`; any signature that does not
/// check out, or a key in two roles, is refused (exit 2).
pub(crate) fn collect(
    plan: &Path,
    digest: &str,
    signers: &AllowedSigners,
    have: &[Approval],
) -> anyhow::Result<Vec<Approval>> {
    let mut all: Vec<Approval> = have.to_vec();
    let mut new = Vec::new();
    for role in Role::ALL {
        if have.iter().any(|a| a.role == role) {
            continue;
        }
        let path = crate::approval::sig_path(plan, role);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let a = crate::approval::accept(&text, role, digest, signers).map_err(|e| {
            CliError::new(Exit::Usage, anyhow::anyhow!("{}: {e}", path.display()))
                .hint("nothing was run on this approval; remove the file or have the right person sign again (`offboard approve`)")
        })?;
        all.push(a.clone());
        new.push(a);
    }
    crate::approval::check_distinct(&all).map_err(|e| {
        CliError::new(Exit::Usage, e)
            .hint("each role must be approved by a different person with their own key")
    })?;
    Ok(new)
}

/// Journal approvals (after the departure's first events).
pub fn record(
    driving: &crate::app::drive::Driving,
    approvals: Vec<Approval>,
) -> anyhow::Result<()> {
    for a in approvals {
        driving.append(None, Record::Approved(a))?;
    }
    Ok(())
}

/// `resume`: approvals given since the departure started (new `.sig` files beside its plan).
pub fn pick_up(ctx: &Ctx, driving: &crate::app::drive::Driving) -> anyhow::Result<()> {
    let state = driving.state();
    let Some(gate) = &state.facts.approval else {
        return Ok(());
    };
    // What the journal already records must hold before it unblocks anything.
    crate::approval::verify_recorded(&state.facts, &state.approvals).map_err(|e| {
        CliError::new(
            Exit::InvalidEvidence,
            anyhow::anyhow!("the departure's journal records an approval that does not hold: {e}"),
        )
        .hint("nothing was run; keep the departure's directory as it is for whoever investigates")
    })?;
    if gate.allowed_signers.is_empty() {
        return Ok(());
    }
    let signers = read_signers(Path::new(&gate.allowed_signers))?;
    let new = collect(
        Path::new(&gate.plan_file),
        &gate.digest,
        &signers,
        &state.approvals,
    )?;
    for a in &new {
        ctx.printer.info(format!(
            "Approved as {} by {} ({})",
            a.role,
            safe(&a.principal),
            a.fingerprint
        ));
    }
    record(driving, new)
}
