//! A departure being driven by this process: opened (or created) under its locks, checked
//! against its signed evidence, run by the engine until done or stopped, and sealed.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use super::Session;
use super::signals::{PromptWaker, StopSignals, is_interrupted_read, runtime};
use crate::departure::{DepartureFacts, DepartureState};
use crate::engine::{Engine, Preflight, Prompter, Reporter};
use crate::evidence::{Sealed, Trust};
use crate::exit::{CliError, Exit};
use crate::integrity::Tamper;
use crate::journal::{Journal, Record};
use crate::keys::SigningKey;
use crate::person::PersonLock;
use crate::state::{self, DepartureLock};
use crate::ui::{progress::Progress, prompt::Checklist};

/// A departure being driven by this process: its locks and journal.
pub struct Driving {
    pub lock: DepartureLock,
    /// No other process drives a departure of the same person meanwhile.
    pub person: PersonLock,
    pub journal: Arc<Mutex<Journal>>,
}

/// How a run ended; the evidence is sealed either way.
pub enum Driven {
    /// A stop signal (or Ctrl-C at a question) ended it; `interrupted` is in the journal.
    Interrupted { sealed: Sealed },
    /// The engine ran every step it could; `run_finished` is in the journal.
    Finished {
        state: Box<DepartureState>,
        sealed: Sealed,
    },
}

impl Driving {
    /// Lock an existing departure (its person, then itself), check that its journal is still
    /// what was last signed, and open it for appending. Every command that appends to a journal
    /// or signs it comes through here.
    pub fn open(session: &Session<'_>, id: &str, key: &SigningKey) -> Result<Driving> {
        let st = session.state;
        let events = Journal::read(&st.journal_path(id))?;
        let facts = crate::departure::facts(&events)
            .with_context(|| format!("the journal of {id} has no departure_started event"))?;
        let person = PersonLock::acquire(st, &facts.runbook.name, &facts.user, id)?;
        let lock = DepartureLock::acquire(&st.departure_dir(id))?;
        // A link planted at a file the check reads is named as such, not taken for tampering.
        let dir = st.departure_dir(id);
        for file in [
            st.journal_path(id),
            dir.join(format!("{id}.json")),
            dir.join(format!("{id}.json.sig")),
        ] {
            state::refuse_symlink(&file)?;
        }
        // Under both locks, so nothing appends between the check and the open.
        crate::integrity::check(st, id, Trust::Keys(vec![key.public_key().clone()]))
            .map_err(|t| refuse_tampered(key.path(), id, t))?;
        let printer = session.printer.clone();
        let journal = Journal::open(&st.journal_path(id), session.actor.clone(), |n| {
            printer.warn(format!(
                "the journal ended in a torn line ({n} bytes) from an interrupted write; it was set aside and the journal continues from the last complete event"
            ))
        })?;
        Ok(Driving {
            lock,
            person,
            journal: Arc::new(Mutex::new(journal)),
        })
    }

    /// Create a new departure's journal from its plan (`departure_started`, `run_started` and the
    /// preflight found, if any), holding its person's lock, ready to [`run`].
    pub fn begin(
        session: &Session<'_>,
        facts: DepartureFacts,
        person: PersonLock,
        command: &str,
        preflight: Option<Preflight>,
    ) -> Result<Driving> {
        let st = session.state;
        let id = facts.id.clone();
        let dir = st.departure_dir(&id);
        state::create_private_dir(&st.departures_dir())?;
        let lock = DepartureLock::acquire(&dir)?;
        let mut journal = Journal::create(
            &st.journal_path(&id),
            session.actor.clone(),
            Record::DepartureStarted(Box::new(facts)),
        )?;
        journal.append(
            None,
            Record::RunStarted {
                command: command.into(),
            },
        )?;
        if let Some(found) = preflight {
            journal.append(
                None,
                Record::Preflight {
                    passed: found.problems() == 0,
                    checks: found.checks,
                    retries: found.retries,
                },
            )?;
        }
        Ok(Driving {
            lock,
            person,
            journal: Arc::new(Mutex::new(journal)),
        })
    }

    pub fn state(&self) -> DepartureState {
        let j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        DepartureState::replay(j.events()).expect("departure journal")
    }

    pub fn append(&self, step: Option<&str>, record: Record) -> Result<()> {
        let mut j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        j.append(step, record)?;
        Ok(())
    }

    /// Write and sign a new evidence revision.
    pub fn seal(&self, state: &state::StateDir, key: &SigningKey) -> Result<Sealed> {
        let mut j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        crate::evidence::seal(state, &mut j, key).context("writing the signed evidence")
    }
}

/// Run (or continue) a departure until every step it can take is taken or a stop signal comes,
/// then record how it ended and seal the evidence. Progress and checklist questions (when
/// `interactive`) go through `session.printer`; the summary is the caller's to print.
pub fn run(
    session: &Session<'_>,
    driving: &Driving,
    key: &SigningKey,
    interactive: bool,
    context: &'static str,
) -> Result<Driven> {
    let state = driving.state();
    let facts = &state.facts;
    let p = session.printer;
    let engine = Engine::connect(
        driving.journal.clone(),
        facts,
        session.state.root(),
        context,
    );
    let progress = Progress::new(p);
    let mut checklist = Checklist::new(p);
    let prompter: Option<&mut dyn Prompter> = if interactive {
        Some(&mut checklist)
    } else {
        None
    };
    let rt = runtime()?;
    let interrupted: Option<String> = rt.block_on(async {
        // Listen before the first step starts, so an early signal is never the default (abrupt) one.
        let mut stop = StopSignals::listen()?;
        let waker = PromptWaker::start()?;
        tokio::select! {
            biased;
            reason = stop.recv() => {
                tracing::info!("stopping on {reason}");
                Ok(Some(reason.to_string()))
            }
            r = engine.run(&progress, prompter) => match r {
                Ok(()) => Ok(None),
                // Ctrl-C at a checklist prompt arrives as an interrupted read, and so does a
                // signal from elsewhere while a question waits (the waker interrupts the read).
                Err(e) if is_interrupted_read(&e) => Ok(Some(waker.reason().await.to_string())),
                Err(e) => Err(e),
            },
        }
    })?;
    drop(rt);
    progress.pause();
    if let Some(reason) = interrupted {
        driving.append(None, Record::Interrupted { reason })?;
        let sealed = driving.seal(session.state, key)?;
        return Ok(Driven::Interrupted { sealed });
    }
    let state = driving.state();
    driving.append(
        None,
        Record::RunFinished {
            complete: state.is_complete(),
        },
    )?;
    let sealed = driving.seal(session.state, key)?;
    Ok(Driven::Finished {
        state: Box::new(driving.state()),
        sealed,
    })
}

/// The hint for a journal that cannot be trusted: keep it as it is for whoever investigates.
pub const TAMPER_HINT_KEEP: &str = "keep the departure directory as it is for whoever investigates; `offboard evidence verify <its .json>` re-checks it offline";

/// The refusal to extend or sign a journal that is not what was signed (exit 5); `key` is the
/// signing key's file, named when the evidence was signed by another.
pub fn refuse_tampered(key: &Path, id: &str, t: Tamper) -> anyhow::Error {
    // The message names the first bad line whenever there is one.
    let mut err = CliError::new(Exit::InvalidEvidence, anyhow::anyhow!("{t}"));
    err = err.hint(format!(
        "nothing was appended to departure {id} and nothing was signed: offboard does not extend or re-sign a journal that differs from its signed evidence"
    ));
    if t.is_other_signer() {
        err = err.hint(format!(
            "the evidence was signed by another key than {}: if the signing key was replaced, run this command with --key set to the key that signed the departure",
            key.display()
        ));
    } else {
        err = err.hint(TAMPER_HINT_KEEP);
        if let Some(file) = t.evidence_file() {
            err = err.hint(format!(
                "{} embeds every event it signed: that is the record to trust",
                file.display()
            ));
        }
        err = err.hint(
            "to go on offboarding the person, start a fresh departure with `offboard start <USER> --new`; it records this one as its predecessor",
        );
    }
    err.into()
}
