//! Which files go on the ticket: the departure's latest signed evidence revision, its
//! signature, and the line an auditor needs to trust the signing key, under names that say
//! which revision they are (so attaching the same revision again is recognised on the ticket).
//!
//! `attach` calls [`evidence_files`] in one place; the evidence bundle, when there is one,
//! replaces it there.

use anyhow::{Context, Result, bail};

use super::AttachFile;
use crate::evidence::Trust;
use crate::journal::{Event, Record};
use crate::keys::SigningKey;
use crate::state::StateDir;

/// The files of one evidence revision, ready to attach.
#[derive(Debug, Clone)]
pub struct EvidenceFiles {
    pub revision: u32,
    /// sha256 hex of the evidence file.
    pub evidence_sha256: String,
    /// The principal the allowed_signers line names (`ssh-keygen -Y verify -I …`).
    pub principal: String,
    /// `<id>-r<N>.json`, `<id>-r<N>.json.sig`, `<id>.allowed_signers`, in that order.
    pub files: Vec<AttachFile>,
}

impl EvidenceFiles {
    /// The command that checks the files once downloaded side by side.
    pub fn verify_command(&self) -> String {
        let [json, sig, signers] = [0, 1, 2].map(|i| &self.files[i].name);
        format!(
            "ssh-keygen -Y verify -f {signers} -I {} -n {} -s {sig} < {json}",
            self.principal,
            crate::evidence::NAMESPACE
        )
    }
}

/// The files for departure `events`' latest evidence revision: the evidence file exactly as
/// signed (`<id>-r<N>.json`), its SSHSIG (`<id>-r<N>.json.sig`) and an OpenSSH allowed_signers
/// line trusting `key` for evidence only (`<id>.allowed_signers`, the same for every revision
/// signed by the same key), each with its sha256. The evidence on disk must be the revision the
/// journal last records (same sha256) and must verify under `key`.
pub fn evidence_files(
    state: &StateDir,
    events: &[Event],
    key: &SigningKey,
) -> Result<EvidenceFiles> {
    let id = &crate::departure::facts(events)
        .context("the journal has no departure_started event")?
        .id;
    let Some((revision, sha256)) = events.iter().rev().find_map(|e| match &e.record {
        Record::EvidenceWritten {
            revision, sha256, ..
        } => Some((*revision, sha256.clone())),
        _ => None,
    }) else {
        bail!("departure {id} has no signed evidence yet");
    };
    let path = state.departure_dir(id).join(format!("{id}.json"));
    let sig = crate::evidence::sig_path(&path);
    crate::state::refuse_symlink(&path)?;
    crate::state::refuse_symlink(&sig)?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    if crate::journal::sha256_hex(&bytes) != sha256 {
        bail!(
            "{} is not evidence revision {revision} as the journal records it (sha256 {sha256})",
            path.display()
        );
    }
    crate::evidence::verify(&path, Trust::Keys(vec![key.public_key().clone()]))
        .with_context(|| format!("checking {} before attaching it", path.display()))?;
    let sig_bytes = std::fs::read(&sig).with_context(|| format!("reading {}", sig.display()))?;
    let principal = key.default_principal();
    let mut signers = key.allowed_signers_line(&principal);
    signers.push('\n');
    let name = format!("{id}-r{revision}.json");
    Ok(EvidenceFiles {
        revision,
        evidence_sha256: sha256,
        principal,
        files: vec![
            AttachFile::new(&name, "application/json", bytes),
            AttachFile::new(format!("{name}.sig"), "text/plain", sig_bytes),
            AttachFile::new(
                format!("{id}.allowed_signers"),
                "text/plain",
                signers.into_bytes(),
            ),
        ],
    })
}
