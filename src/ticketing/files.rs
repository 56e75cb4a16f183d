//! Which files go on the ticket: the departure's latest signed evidence revision, its
//! signature, and the line an auditor needs to trust the signing key, under names that say
//! which revision they are (so attaching the same revision again is recognised on the ticket).
//!
//! `attach` calls [`evidence_files`] in one place; it attaches the evidence bundle.

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
    /// `<id>-r<N>.json`, `<id>-r<N>.json.sig`, `allowed_signers`, `<id>-r<N>.html`,
    /// `<id>-r<N>.VERIFY.txt`, in that order.
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

/// The files for departure `events`' latest evidence revision: the evidence bundle
/// ([`crate::evidence::bundle::build`], the one place a bundle's files are made): the evidence
/// exactly as signed (`<id>-r<N>.json`), its SSHSIG (`.sig`), the `allowed_signers` line for the
/// key that signed it (the same bytes for every revision the key signs, so it is attached
/// once), the page a person reads (`<id>-r<N>.html`) and the verification text, attached as
/// `<id>-r<N>.VERIFY.txt` so each revision's is recognisable on the ticket (the commands in it
/// name the other files by their names on the ticket). Only evidence that verifies under `key`
/// and is the revision the journal last records is bundled.
pub fn evidence_files(
    state: &StateDir,
    events: &[Event],
    key: &SigningKey,
) -> Result<EvidenceFiles> {
    let id = &crate::departure::facts(events)
        .context("the journal has no departure_started event")?
        .id;
    if !events
        .iter()
        .any(|e| matches!(e.record, Record::EvidenceWritten { .. }))
    {
        bail!("departure {id} has no signed evidence yet");
    }
    let bundle =
        crate::evidence::bundle::build(state, id, Trust::Keys(vec![key.public_key().clone()]))
            .with_context(|| format!("bundling the evidence of {id} before attaching it"))?;
    let stem = bundle.stem();
    let files = bundle
        .files
        .into_iter()
        .map(|f| {
            let name = if f.name == "VERIFY.txt" {
                format!("{stem}.VERIFY.txt")
            } else {
                f.name
            };
            AttachFile::new(name, f.content_type, f.bytes)
        })
        .collect();
    Ok(EvidenceFiles {
        revision: bundle.revision,
        evidence_sha256: bundle.evidence_sha256,
        principal: bundle.principal,
        files,
    })
}
