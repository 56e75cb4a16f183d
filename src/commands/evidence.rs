//! `offboard evidence`: verify or show a signed evidence file.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use serde_json::json;

use crate::cli::{ColorChoice, EvidenceCommand, ShowFormat};
use crate::evidence::{self, AllowedSigners, Distrust, EvidenceError, Trust};
use crate::exit::{CliError, Exit};
use crate::keys;

use super::Ctx;

pub fn exec(ctx: &Ctx, cmd: EvidenceCommand) -> anyhow::Result<Exit> {
    match cmd {
        EvidenceCommand::Verify {
            file,
            allowed_signers,
            integrity_only,
        } => verify(ctx, &file, allowed_signers.as_deref(), integrity_only),
        EvidenceCommand::Show { file, format } => show(ctx, &file, format),
        EvidenceCommand::Bundle { departure, output } => bundle(ctx, &departure, output),
        EvidenceCommand::Export { departure, out } => {
            super::state::export_evidence(ctx, &departure, &out)
        }
    }
}

/// Whose signature to accept: the allowed_signers file, else the local signing key (never
/// created here), else nobody (an intact file is then refused as untrusted). `--integrity-only`
/// trusts no one and checks only that the file is intact.
fn trust(ctx: &Ctx, allowed_signers: Option<&Path>, integrity_only: bool) -> anyhow::Result<Trust> {
    if integrity_only {
        if let Some(path) = allowed_signers {
            return Err(CliError::usage(format!(
                "--integrity-only checks no signer, but --allowed-signers (or OFFBOARD_ALLOWED_SIGNERS) names {} to trust",
                path.display()
            ))
            .hint("drop --integrity-only to check the signer too, or unset OFFBOARD_ALLOWED_SIGNERS")
            .into());
        }
        return Ok(Trust::IntegrityOnly);
    }
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
    ctx.printer
        .detail("no --allowed-signers and no local signing key: no signer is trusted");
    Ok(Trust::Nobody)
}

fn verify(
    ctx: &Ctx,
    file: &Path,
    allowed_signers: Option<&Path>,
    integrity_only: bool,
) -> anyhow::Result<Exit> {
    let trust = trust(ctx, allowed_signers, integrity_only)?;
    let p = &ctx.printer;
    match evidence::verify(file, trust) {
        Ok(v) => {
            let (word, by) = if v.trusted {
                (
                    p.green("valid:"),
                    v.principal.clone().unwrap_or_else(|| v.trust_note.clone()),
                )
            } else {
                (p.yellow("intact:"), v.trust_note.clone())
            };
            p.result(format!(
                "{word} {}: departure {}, revision {}, {} events, signed by {} at {} ({by})",
                file.display(),
                v.departure_id,
                v.revision,
                v.events.len(),
                v.signer_fingerprint,
                v.signed_at,
            ));
            if v.journal_checked {
                p.detail("the journal beside it starts with exactly the embedded events");
            }
            p.json_result(&json!({
                // Valid means intact and signed by a trusted key; with --integrity-only the
                // signer was not checked, so validity is not known.
                "valid": if v.trusted { json!(true) } else { json!(null) },
                "intact": true,
                "trusted": if v.trusted { json!(true) } else { json!(null) },
                "integrity_only": integrity_only,
                "file": file,
                "reason": null,
                "departure": v.departure_id,
                "revision": v.revision,
                "events": v.events.len(),
                "signer": v.signer_fingerprint,
                "signed_at": v.signed_at,
                "principal": v.principal,
                "trust": v.trust_note,
                "journal_checked": v.journal_checked,
            }));
            Ok(Exit::Ok)
        }
        Err(e) => {
            eprintln!("{} {}: {e}", p.red("invalid:"), file.display());
            let untrusted = match &e {
                EvidenceError::Untrusted { fingerprint, why } => Some((fingerprint, why)),
                _ => None,
            };
            if let Some((_, why)) = untrusted {
                for h in untrusted_hints(why) {
                    eprintln!("  {} {h}", p.green("hint:"));
                }
            }
            p.json_result(&json!({
                "valid": false,
                "intact": untrusted.is_some(),
                "trusted": if untrusted.is_some() { json!(false) } else { json!(null) },
                "integrity_only": integrity_only,
                "file": file,
                "reason": e.to_string(),
                "departure": null,
                "revision": null,
                "events": null,
                "signer": untrusted.map(|(fp, _)| fp),
            }));
            Ok(Exit::InvalidEvidence)
        }
    }
}

/// What to do when an intact file's signer is not trusted.
fn untrusted_hints(why: &Distrust) -> Vec<&'static str> {
    let mut hints = Vec::new();
    if matches!(why, Distrust::NoTrustedKeys | Distrust::NotTheLocalKey) {
        hints.push(
            "get the signer's allowed_signers line (`offboard keys show` prints it) from its holder over a channel you trust, not from the evidence file, and pass it with --allowed-signers FILE",
        );
        hints.push(
            "or pass --integrity-only to check only that the file is unchanged since that key signed it",
        );
    }
    hints
}

fn show(ctx: &Ctx, file: &Path, format: ShowFormat) -> anyhow::Result<Exit> {
    if format == ShowFormat::Html && ctx.global.json {
        return Err(CliError::usage(
            "--json prints the evidence file itself; it cannot be combined with --format html",
        )
        .hint("drop --json to print the page, or drop --format html to print the JSON")
        .into());
    }
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
    if format == ShowFormat::Html {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.display().to_string());
        let page = evidence::html::Page {
            file_name: &name,
            sha256: &crate::journal::sha256_hex(&bytes),
        };
        let html = match evidence::render_html(&statement, &page) {
            Ok(h) => h,
            Err(e) => return invalid(format!("{e:#}")),
        };
        std::io::stdout()
            .write_all(html.as_bytes())
            .context("writing the page to stdout")?;
        ctx.printer.info(format!(
            "(not checked: run `offboard evidence verify {}` to check its signature and chain)",
            file.display()
        ));
        return Ok(Exit::Ok);
    }
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

/// `offboard evidence bundle`: the latest signed evidence of a departure, with what it takes to
/// read and verify it, into a directory or a .zip.
fn bundle(ctx: &Ctx, departure: &str, output: Option<PathBuf>) -> anyhow::Result<Exit> {
    let p = &ctx.printer;
    let (id, _) = super::common::find_departure(ctx, departure)?;
    let bundle = match evidence::bundle::build(&ctx.state, &id, super::common::local_trust(ctx)) {
        Ok(b) => b,
        Err(e) => return Err(bundle_refused(ctx, &id, e)),
    };
    let out = output.unwrap_or_else(|| PathBuf::from(bundle.stem()));
    let zip = out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    if zip {
        if out.is_dir() {
            return Err(CliError::usage(format!(
                "{} is a directory; a .zip output must be a file",
                out.display()
            ))
            .hint("give another name, or leave out .zip to write the files into a directory")
            .into());
        }
        bundle.write_zip(&out)?;
    } else {
        if out.exists() && !out.is_dir() {
            return Err(CliError::usage(format!(
                "{} exists and is not a directory",
                out.display()
            ))
            .hint("name a directory (created if missing), or a file ending in .zip")
            .into());
        }
        bundle.write_dir(&out)?;
    }
    p.result(format!(
        "Bundled evidence revision {} of departure {id} into {}{}:",
        bundle.revision,
        out.display(),
        if zip { " (zip)" } else { "" }
    ));
    for f in &bundle.files {
        p.result(format!(
            "  {:<width$}  {:>7} bytes  sha256 {}",
            f.name,
            f.bytes.len(),
            f.sha256,
            width = bundle.stem().len() + 9
        ));
    }
    p.info(format!(
        "Signed by {} ({}). VERIFY.txt holds the ssh-keygen command that checks it.",
        bundle.signer_fingerprint,
        crate::ui::escape(&bundle.principal)
    ));
    p.json_result(&json!({
        "departure": id,
        "revision": bundle.revision,
        "output": out,
        "format": if zip { "zip" } else { "dir" },
        "evidence_sha256": bundle.evidence_sha256,
        "signer": bundle.signer_fingerprint,
        "principal": bundle.principal,
        "signed_at": bundle.signed_at,
        "files": bundle.files.iter().map(|f| json!({
            "name": f.name,
            "bytes": f.bytes.len(),
            "sha256": f.sha256,
            "content_type": f.content_type,
        })).collect::<Vec<_>>(),
    }));
    Ok(Exit::Ok)
}

/// Why a bundle was not made, with its exit status: evidence that is not intact exits 5.
fn bundle_refused(ctx: &Ctx, id: &str, e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<evidence::BundleError>() {
        Some(evidence::BundleError::NoEvidence { .. }) => CliError::new(Exit::Failure, e)
            .hint(format!(
                "evidence is signed at the end of every run: `offboard resume {id}` finishes the run and signs it"
            ))
            .into(),
        Some(evidence::BundleError::Tamper(t)) => {
            let mut err = CliError::new(Exit::InvalidEvidence, anyhow::anyhow!("{t}"))
                .hint("nothing was bundled: offboard bundles only evidence whose signature and journal are intact");
            if t.is_other_signer() {
                let key = ctx
                    .global
                    .key
                    .clone()
                    .unwrap_or_else(|| ctx.state.default_key_path());
                err = err.hint(format!(
                    "the evidence was signed by another key than {}: if the signing key was replaced, run this with --key set to the key that signed the departure",
                    key.display()
                ));
            } else {
                err = err.hint(crate::app::drive::TAMPER_HINT_KEEP);
            }
            err.into()
        }
        _ => e,
    }
}
