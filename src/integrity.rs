//! Is a departure's journal still what was signed?
//!
//! Every command that appends to a journal or signs it first checks, here, that the journal's
//! chain is intact and that the events recorded in the last signed evidence revision are
//! exactly the journal's first lines (same bytes, so same hashes), the evidence's signature
//! included. A journal edited and re-chained in place passes its own chain check, but no longer
//! starts with what was signed: it is refused, never extended or re-signed.
//!
//! "The last signed evidence" is the revision the journal last records as written
//! (`evidence_written`, with the file's sha256), found as `<id>.json` or, when a seal stopped
//! halfway through archiving it, `<id>.rev<N>.json`. A journal that records no revision yet (a
//! first run cut off before sealing) is checked against `<id>.json` when a signed one is there.
//! Events appended after the last seal are not signed by anything yet; only their chain is
//! checked.

use std::path::{Path, PathBuf};

use crate::evidence::{self, EvidenceError, Trust};
use crate::journal::{self, ChainError, Record};
use crate::state::StateDir;

/// The signed evidence a journal was found to extend.
#[derive(Debug, Clone, PartialEq)]
pub struct Signed {
    pub file: PathBuf,
    pub revision: u32,
    /// How many journal events it signs.
    pub events: usize,
}

/// Why a journal may not be extended or signed.
#[derive(Debug, thiserror::Error)]
pub enum Tamper {
    #[error("cannot read the journal {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the journal {} is damaged: {source}", path.display())]
    Chain { path: PathBuf, source: ChainError },
    #[error(
        "line {line} of the journal {} differs from the signed evidence {}: the journal was changed after it was signed",
        journal.display(), evidence.display()
    )]
    Diverges {
        journal: PathBuf,
        evidence: PathBuf,
        line: usize,
    },
    #[error(
        "the journal {} ends at line {found}, but the signed evidence {} holds {expected} events: events were removed after they were signed (line {} is the first one missing)",
        journal.display(), evidence.display(), found + 1
    )]
    Shorter {
        journal: PathBuf,
        evidence: PathBuf,
        found: usize,
        expected: usize,
    },
    #[error(
        "the journal records that evidence revision {revision} was written (sha256 {sha256}), but neither {} nor {} is that file: the evidence was deleted or replaced",
        latest.display(), archived.display()
    )]
    EvidenceMissing {
        revision: u32,
        sha256: String,
        latest: PathBuf,
        archived: PathBuf,
    },
    #[error("the last signed evidence {} is not intact: {source}", file.display())]
    Evidence {
        file: PathBuf,
        source: Box<EvidenceError>,
    },
}

impl Tamper {
    /// The first journal line that is not what was signed, when one can be named.
    pub fn first_bad_line(&self) -> Option<usize> {
        match self {
            Tamper::Chain { source, .. } => match source {
                ChainError::Malformed { line, .. }
                | ChainError::Sequence { line, .. }
                | ChainError::BrokenLink { line }
                | ChainError::BadHash { line }
                | ChainError::NotCanonical { line } => Some(*line),
                ChainError::TornTail { .. } | ChainError::Empty => None,
            },
            Tamper::Diverges { line, .. } => Some(*line),
            Tamper::Shorter { found, .. } => Some(found + 1),
            _ => None,
        }
    }

    /// Whether the only thing wrong is that another key signed the evidence (say, the signing
    /// key was replaced since): worth a hint of its own.
    pub fn is_other_signer(&self) -> bool {
        matches!(self, Tamper::Evidence { source, .. }
            if matches!(**source, EvidenceError::Untrusted { .. }))
    }

    /// The evidence file the journal was compared with, if any.
    pub fn evidence_file(&self) -> Option<&Path> {
        match self {
            Tamper::Diverges { evidence, .. } | Tamper::Shorter { evidence, .. } => Some(evidence),
            Tamper::Evidence { file, .. } => Some(file),
            _ => None,
        }
    }
}

/// Check the journal of departure `id` against its last signed evidence, trusting signatures by
/// `trust`. `Ok(None)`: nothing has been signed yet, and the chain is intact.
pub fn check(state: &StateDir, id: &str, trust: Trust) -> Result<Option<Signed>, Tamper> {
    let path = state.journal_path(id);
    let bytes = std::fs::read(&path).map_err(|source| Tamper::Read {
        path: path.clone(),
        source,
    })?;
    let (complete, _torn) = journal::split_torn_tail(&bytes);
    let events = journal::check_lines(complete).map_err(|source| Tamper::Chain {
        path: path.clone(),
        source,
    })?;
    if events.is_empty() {
        return Err(Tamper::Chain {
            path,
            source: ChainError::Empty,
        });
    }
    let recorded = events.iter().rev().find_map(|e| match &e.record {
        Record::EvidenceWritten {
            revision, sha256, ..
        } => Some((*revision, sha256.clone())),
        _ => None,
    });
    let dir = state.departure_dir(id);
    let latest = dir.join(format!("{id}.json"));
    let file = match recorded {
        Some((revision, sha256)) => {
            let archived = dir.join(format!("{id}.rev{revision}.json"));
            let is_it =
                |p: &Path| std::fs::read(p).is_ok_and(|b| journal::sha256_hex(&b) == sha256);
            if is_it(&latest) {
                latest
            } else if is_it(&archived) {
                archived
            } else {
                return Err(Tamper::EvidenceMissing {
                    revision,
                    sha256,
                    latest,
                    archived,
                });
            }
        }
        // Sealed but not yet recorded (the run stopped in between): check it if it is whole.
        None if latest.is_file() && evidence::sig_path(&latest).is_file() => latest,
        None => return Ok(None),
    };
    match evidence::verify(&file, trust) {
        Ok(v) => Ok(Some(Signed {
            file,
            revision: v.revision,
            events: v.events.len(),
        })),
        Err(EvidenceError::JournalDiverges { line, .. }) => Err(Tamper::Diverges {
            journal: path,
            evidence: file,
            line,
        }),
        Err(EvidenceError::JournalShorter {
            found, expected, ..
        }) => Err(Tamper::Shorter {
            journal: path,
            evidence: file,
            found,
            expected,
        }),
        Err(source) => Err(Tamper::Evidence {
            file,
            source: Box::new(source),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::testutil::{self, ID};
    use crate::journal::{Event, GENESIS, Journal};
    use crate::keys::SigningKey;

    struct Fixture {
        _dir: tempfile::TempDir,
        state: StateDir,
        journal: Journal,
        key: SigningKey,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::resolve(Some(&dir.path().join("state"))).unwrap();
        let journal = testutil::journal(&state.departure_dir(ID));
        let key = crate::keys::generate(&dir.path().join("key"), "test", false).unwrap();
        Fixture {
            _dir: dir,
            state,
            journal,
            key,
        }
    }

    impl Fixture {
        fn trust(&self) -> Trust {
            Trust::Keys(vec![self.key.public_key().clone()])
        }
        fn seal(&mut self) -> evidence::Sealed {
            evidence::seal(&self.state, &mut self.journal, &self.key).unwrap()
        }
        fn dir(&self) -> PathBuf {
            self.state.departure_dir(ID)
        }
        fn file(&self, name: &str) -> PathBuf {
            self.dir().join(name.replace("ID", ID))
        }
    }

    fn rechain(events: &mut [Event]) {
        let mut prev = GENESIS.to_string();
        for (i, e) in events.iter_mut().enumerate() {
            e.seq = i as u64;
            e.prev = prev;
            e.hash = e.compute_hash();
            prev = e.hash.clone();
        }
    }

    #[test]
    fn a_journal_not_signed_yet_is_only_chain_checked() {
        let f = fixture();
        assert_eq!(check(&f.state, ID, f.trust()).unwrap(), None);
    }

    #[test]
    fn a_journal_that_extends_its_last_evidence_passes() {
        let mut f = fixture();
        f.seal();
        f.journal
            .append(
                None,
                Record::RunStarted {
                    command: "resume".into(),
                },
            )
            .unwrap();
        let sealed = f.seal();
        f.journal
            .append(
                None,
                Record::HoldPlaced {
                    reason: "matter 1".into(),
                },
            )
            .unwrap();
        let signed = check(&f.state, ID, f.trust()).unwrap().unwrap();
        assert_eq!(signed.file, sealed.json_path);
        assert_eq!(signed.revision, 2);
    }

    #[test]
    fn a_seal_stopped_halfway_is_not_mistaken_for_tampering() {
        let mut f = fixture();
        f.seal();
        f.seal();
        // The next seal archived revision 2 and stopped before writing revision 3 …
        std::fs::rename(f.file("ID.json"), f.file("ID.rev2.json")).unwrap();
        std::fs::rename(f.file("ID.json.sig"), f.file("ID.rev2.json.sig")).unwrap();
        let signed = check(&f.state, ID, f.trust()).unwrap().unwrap();
        assert_eq!(signed.file, f.file("ID.rev2.json"));
        // … or wrote revision 3 and stopped before signing it: never recorded, not the record.
        std::fs::write(f.file("ID.json"), b"{\"half\":").unwrap();
        let signed = check(&f.state, ID, f.trust()).unwrap().unwrap();
        assert_eq!(signed.revision, 2);
    }

    #[test]
    fn an_event_deleted_and_rechained_is_named_by_its_line() {
        let mut f = fixture();
        f.seal();
        let path = f.state.journal_path(ID);
        let mut events = Journal::read(&path).unwrap();
        events.remove(2);
        rechain(&mut events);
        std::fs::write(&path, journal::journal_bytes(&events)).unwrap();
        assert!(journal::parse_chain(&std::fs::read(&path).unwrap()).is_ok());
        let t = check(&f.state, ID, f.trust()).unwrap_err();
        assert!(matches!(t, Tamper::Diverges { line: 3, .. }), "{t}");
        assert_eq!(t.first_bad_line(), Some(3));
        assert!(t.to_string().starts_with("line 3 of the journal"), "{t}");
    }

    #[test]
    fn evidence_replaced_or_signed_by_another_key_is_refused() {
        let mut f = fixture();
        f.seal();
        let other = crate::keys::generate(&f._dir.path().join("other"), "o", false).unwrap();
        let t = check(&f.state, ID, Trust::Keys(vec![other.public_key().clone()])).unwrap_err();
        assert!(t.is_other_signer(), "{t}");

        // The latest evidence swapped for a re-signed edit: not the file the journal recorded.
        let json = f.file("ID.json");
        let mut text = std::fs::read_to_string(&json).unwrap();
        text = text.replace("handed in at reception", "never handed in");
        std::fs::write(&json, &text).unwrap();
        std::fs::write(
            evidence::sig_path(&json),
            f.key.sign(text.as_bytes()).unwrap(),
        )
        .unwrap();
        let t = check(&f.state, ID, f.trust()).unwrap_err();
        assert!(
            matches!(t, Tamper::EvidenceMissing { revision: 1, .. }),
            "{t}"
        );
    }
}
