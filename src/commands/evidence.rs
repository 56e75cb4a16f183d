//! `offboard evidence`: verify or show a signed evidence file.

use std::io::IsTerminal;
use std::path::Path;

use serde_json::json;

use crate::cli::{ColorChoice, EvidenceCommand};
use crate::evidence::{self, AllowedSigners, Trust};
use crate::exit::{CliError, Exit};
use crate::keys;

use super::Ctx;

pub fn exec(ctx: &Ctx, cmd: EvidenceCommand) -> anyhow::Result<Exit> {
    match cmd {
        EvidenceCommand::Verify {
            file,
            allowed_signers,
        } => verify(ctx, &file, allowed_signers.as_deref()),
        EvidenceCommand::Show { file } => show(ctx, &file),
    }
}

/// Whose signature to accept: the allowed_signers file, else the local signing key (never
/// created here), else only the key the file names (integrity, not authenticity).
fn trust(ctx: &Ctx, allowed_signers: Option<&Path>) -> anyhow::Result<Trust> {
    if let Some(path) = allowed_signers {
        let list = AllowedSigners::read(path).map_err(|e| {
            CliError::usage(e).hint(
                "each line is `<principal> namespaces=\"offboard-evidence\" ssh-ed25519 AAAA…`, as `offboard keys show` prints",
            )
        })?;
        return Ok(Trust::AllowedSigners(list));
    }
    let key_path = ctx
        .global
        .key
        .clone()
        .unwrap_or_else(|| ctx.state.default_key_path());
    if key_path.exists() {
        let public = keys::public_key_at(&key_path)?;
        ctx.printer.detail(format!(
            "trusting the local signing key {}",
            key_path.display()
        ));
        return Ok(Trust::Keys(vec![public]));
    }
    if ctx.global.key.is_some() {
        return Err(CliError::usage(format!(
            "the signing key {} does not exist",
            key_path.display()
        ))
        .hint("pass --allowed-signers FILE naming the keys you trust")
        .into());
    }
    ctx.printer.warn(
        "no --allowed-signers and no local signing key: checking the signature against the key \
         named in the file itself (integrity only, not who signed it)",
    );
    Ok(Trust::EmbeddedOnly)
}

fn verify(ctx: &Ctx, file: &Path, allowed_signers: Option<&Path>) -> anyhow::Result<Exit> {
    let trust = trust(ctx, allowed_signers)?;
    let p = &ctx.printer;
    match evidence::verify(file, trust) {
        Ok(v) => {
            let by = v.principal.clone().unwrap_or_else(|| v.trust_note.clone());
            p.result(format!(
                "{} {}: departure {}, revision {}, {} events, signed by {} ({by})",
                p.green("valid:"),
                file.display(),
                v.departure_id,
                v.revision,
                v.events.len(),
                v.signer_fingerprint,
            ));
            if v.journal_checked {
                p.detail("the journal beside it starts with exactly the embedded events");
            }
            p.json_result(&json!({
                "valid": true,
                "file": file,
                "reason": null,
                "departure": v.departure_id,
                "revision": v.revision,
                "events": v.events.len(),
                "signer": v.signer_fingerprint,
                "principal": v.principal,
                "trust": v.trust_note,
                "journal_checked": v.journal_checked,
            }));
            Ok(Exit::Ok)
        }
        Err(e) => {
            eprintln!("{} {}: {e}", p.red("invalid:"), file.display());
            p.json_result(&json!({
                "valid": false,
                "file": file,
                "reason": e.to_string(),
                "departure": null,
                "revision": null,
                "events": null,
                "signer": null,
            }));
            Ok(Exit::InvalidEvidence)
        }
    }
}

fn show(ctx: &Ctx, file: &Path) -> anyhow::Result<Exit> {
    let invalid = |reason: String| {
        eprintln!(
            "{} {}: {reason}",
            ctx.printer.red("invalid:"),
            file.display()
        );
        Ok(Exit::InvalidEvidence)
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return invalid(format!("cannot read it: {e}")),
    };
    let statement: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return invalid(format!("not JSON: {e}")),
    };
    let color = match ctx.global.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => ctx.printer.color && std::io::stdout().is_terminal(),
    };
    let text = match evidence::render(&statement, color) {
        Ok(t) => t,
        Err(e) => return invalid(format!("{e:#}")),
    };
    ctx.printer.result(text.trim_end());
    ctx.printer.json_result(&statement);
    ctx.printer.info(format!(
        "(not checked: run `offboard evidence verify {}` to check its signature and chain)",
        file.display()
    ));
    Ok(Exit::Ok)
}
