//! Runs a plan: waves in order, automated steps of a wave concurrently (bounded per system),
//! then the wave's manual steps through a [`Prompter`]; every action journaled before and after.
//!
//! The engine never names a provider: it looks kinds up in [`crate::providers::KINDS`].
//! Per automated step: if an earlier run attempted it, its check runs first and the apply is
//! skipped when the revocation already holds; otherwise apply, then check. A failure is recorded
//! with the provider's message and the run goes on with the other steps.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, anyhow};
use futures::future::join_all;
use tokio::sync::Semaphore;

use crate::departure::{Answer, DepartureFacts, DepartureState, PlannedStep, Status};
use crate::journal::{Journal, Record};
use crate::providers::{
    self, CallCtx, CheckOutcome, Provider, ProviderError, RetryNote, SettingType, StepCall,
};

/// Receives progress; the UI draws it.
pub trait Reporter: Send + Sync {
    /// A wave of steps is about to run.
    fn wave(&self, phase: &str, steps: &[&PlannedStep]);
    /// Work began on a step (`what`: applying, checking…).
    fn started(&self, step: &PlannedStep, what: &str);
    fn retry(&self, step: &PlannedStep, note: &RetryNote);
    fn finished(&self, step: &PlannedStep, status: Status, detail: &str);
    /// Stop drawing (before a prompt takes the terminal).
    fn pause(&self) {}
}

/// A person's answer to a manual step.
#[derive(Debug, Clone, PartialEq)]
pub struct ManualAnswer {
    pub answer: Answer,
    pub note: Option<String>,
    pub fields: BTreeMap<String, String>,
}

/// Asks a person about manual steps.
pub trait Prompter {
    /// `Ok(None)`: the person wants to stop answering; remaining manual steps stay pending.
    fn ask(&mut self, step: &PlannedStep, position: (usize, usize))
    -> Result<Option<ManualAnswer>>;
}

/// The journal, shared by concurrent steps.
pub type SharedJournal = Arc<Mutex<Journal>>;

fn append(journal: &SharedJournal, step: Option<&str>, record: Record) -> Result<()> {
    let mut j = journal.lock().unwrap_or_else(|p| p.into_inner());
    j.append(step, record)?;
    Ok(())
}

fn replay(journal: &SharedJournal) -> DepartureState {
    let j = journal.lock().unwrap_or_else(|p| p.into_inner());
    DepartureState::replay(j.events()).expect("a departure journal starts with its facts")
}

/// Connected systems for one departure.
pub struct Engine {
    journal: SharedJournal,
    systems: HashMap<String, System>,
    /// `run` or `resume`: recorded with each check.
    context: &'static str,
}

struct System {
    provider: std::result::Result<Arc<dyn Provider>, String>,
    limit: Arc<Semaphore>,
    /// Time limit for one apply or check, retries included.
    step_timeout: Duration,
}

/// Run a provider call under the step's time limit.
async fn limited<T>(
    limit: Duration,
    call: impl std::future::Future<Output = std::result::Result<T, ProviderError>>,
) -> std::result::Result<T, ProviderError> {
    match tokio::time::timeout(limit, call).await {
        Ok(r) => r,
        Err(_) => Err(ProviderError::Transient(format!(
            "no answer within {}s (the system's step_timeout_secs); it may or may not have taken effect, and resume re-checks before retrying",
            limit.as_secs()
        ))),
    }
}

/// The outcome of one `verify` check.
#[derive(Debug, Clone)]
pub struct VerifyItem {
    pub step: String,
    pub result: std::result::Result<CheckOutcome, String>,
}

impl Engine {
    /// Connect every system the plan's automated steps use, resolving secrets now. A system
    /// that cannot be configured (missing secret…) fails its steps, not the whole run.
    pub fn connect(
        journal: SharedJournal,
        facts: &DepartureFacts,
        state_dir: &Path,
        context: &'static str,
    ) -> Engine {
        let mut systems = HashMap::new();
        for step in &facts.steps {
            let Some(auto) = &step.automated else {
                continue;
            };
            if systems.contains_key(&auto.system) {
                continue;
            }
            let provider = connect_system(&auto.system, facts, state_dir);
            let limit = facts
                .systems
                .get(&auto.system)
                .and_then(|d| d.max_concurrency)
                .unwrap_or(4)
                .clamp(1, 64) as usize;
            let step_timeout = facts
                .systems
                .get(&auto.system)
                .and_then(|d| d.step_timeout_secs)
                .unwrap_or(300)
                .max(1);
            systems.insert(
                auto.system.clone(),
                System {
                    provider,
                    limit: Arc::new(Semaphore::new(limit)),
                    step_timeout: Duration::from_secs(step_timeout),
                },
            );
        }
        Engine {
            journal,
            systems,
            context,
        }
    }

    pub fn journal(&self) -> &SharedJournal {
        &self.journal
    }

    /// Drive the departure to its end (or as far as it can go now).
    pub async fn run(
        &self,
        reporter: &dyn Reporter,
        mut prompter: Option<&mut dyn Prompter>,
    ) -> Result<()> {
        let facts = replay(&self.journal).facts;
        let mut waves: BTreeMap<u32, Vec<&PlannedStep>> = BTreeMap::new();
        for s in &facts.steps {
            waves.entry(s.wave).or_default().push(s);
        }
        let manual_total = facts.steps.iter().filter(|s| s.is_manual()).count();
        let mut manual_seen = 0;
        let mut stop_asking = false;
        for steps in waves.values() {
            let state = replay(&self.journal);
            let todo: Vec<&PlannedStep> = steps
                .iter()
                .copied()
                .filter(|s| !state.steps[&s.id].status().is_settled())
                .collect();
            let (auto, manual): (Vec<&PlannedStep>, Vec<&PlannedStep>) =
                todo.iter().partition(|s| !s.is_manual());
            if !auto.is_empty() {
                let held_back = facts.departure_type
                    == crate::departure::DepartureType::Involuntary
                    && steps[0].phase == crate::runbook::Phase::Cut
                    && auto.iter().all(|s| s.alerts_user);
                let label = if held_back {
                    "cut, held back until access is cut"
                } else {
                    steps[0].phase.as_str()
                };
                reporter.wave(label, &auto);
                let results =
                    join_all(auto.iter().map(|s| self.run_automated(s, &state, reporter))).await;
                for r in results {
                    r?;
                }
            }
            for step in manual {
                manual_seen += 1;
                let state = replay(&self.journal);
                if let Some(reason) = unmet_dependency(step, &state) {
                    if state.steps[&step.id].status() != Status::Skipped {
                        append(&self.journal, Some(&step.id), Record::Skipped { reason })?;
                    }
                    continue;
                }
                let Some(p) = prompter.as_deref_mut() else {
                    continue;
                };
                if stop_asking {
                    continue;
                }
                reporter.pause();
                match p.ask(step, (manual_seen, manual_total))? {
                    Some(a) => append(
                        &self.journal,
                        Some(&step.id),
                        Record::Answered {
                            answer: a.answer,
                            note: a.note,
                            fields: a.fields,
                        },
                    )?,
                    None => stop_asking = true,
                }
            }
        }
        Ok(())
    }

    async fn run_automated(
        &self,
        step: &PlannedStep,
        before: &DepartureState,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let auto = step.automated.as_ref().expect("automated step");
        let prior = &before.steps[&step.id];
        let id = step.id.as_str();
        // A hold placed mid-departure (`offboard hold`) blocks as one placed at start does.
        let skip = before
            .hold_blocks(step)
            .or_else(|| unmet_dependency(step, before));
        if let Some(reason) = skip {
            // Re-running a departure does not record the same skip twice.
            if prior.status() != Status::Skipped || prior.reason.as_ref() != Some(&reason) {
                let record = Record::Skipped {
                    reason: reason.clone(),
                };
                append(&self.journal, Some(id), record)?;
            }
            reporter.finished(step, Status::Skipped, &reason);
            return Ok(());
        }
        let system = &self.systems[&auto.system];
        let provider = match &system.provider {
            Ok(p) => p.clone(),
            Err(e) => {
                let error = format!("system {}: {e}", auto.system);
                append(
                    &self.journal,
                    Some(id),
                    Record::Failed {
                        error: error.clone(),
                        phase: "apply".into(),
                    },
                )?;
                reporter.finished(step, Status::Failed, &error);
                return Ok(());
            }
        };
        let _permit = system.limit.acquire().await.map_err(|e| anyhow!(e))?;
        let call = StepCall {
            step_id: id,
            action: &auto.action,
            login: &auto.login,
            params: &auto.params,
        };
        let ctx = {
            let journal = self.journal.clone();
            let step_id = id.to_string();
            CallCtx::new(move |note| {
                if let Err(e) = append(&journal, Some(&step_id), Record::Retried(note)) {
                    tracing::warn!("could not journal a retry: {e:#}");
                }
            })
        };

        // An earlier run got as far as applying: look before touching it again.
        let attempted = matches!(
            prior.status(),
            Status::InFlight | Status::Unconfirmed | Status::Failed
        );
        if attempted {
            reporter.started(step, "re-checking");
            if let Ok(c) = limited(system.step_timeout, provider.check(&call, &ctx)).await
                && c.revoked
            {
                append(
                    &self.journal,
                    Some(id),
                    Record::Checked {
                        revoked: true,
                        observed: c.observed.clone(),
                        context: "resume".into(),
                    },
                )?;
                reporter.finished(
                    step,
                    Status::Done,
                    &format!("already in place ({})", c.observed),
                );
                return Ok(());
            }
        }

        reporter.started(step, "applying");
        append(
            &self.journal,
            Some(id),
            Record::ApplyStarted {
                attempt: prior.attempts + 1,
            },
        )?;
        let applied = match limited(system.step_timeout, provider.apply(&call, &ctx)).await {
            Ok(out) => out,
            Err(e) => {
                let error = e.to_string();
                append(
                    &self.journal,
                    Some(id),
                    Record::Failed {
                        error: error.clone(),
                        phase: "apply".into(),
                    },
                )?;
                reporter.finished(step, Status::Failed, &error);
                return Ok(());
            }
        };
        append(
            &self.journal,
            Some(id),
            Record::Applied {
                changed: applied.changed,
                summary: applied.summary.clone(),
                requests: applied.requests.clone(),
            },
        )?;
        reporter.started(step, "checking");
        match limited(system.step_timeout, provider.check(&call, &ctx)).await {
            Ok(c) => {
                append(
                    &self.journal,
                    Some(id),
                    Record::Checked {
                        revoked: c.revoked,
                        observed: c.observed.clone(),
                        context: self.context.into(),
                    },
                )?;
                let (status, detail) = if c.revoked {
                    (Status::Done, applied.summary)
                } else {
                    (
                        Status::Unconfirmed,
                        format!("applied, but the check sees {}", c.observed),
                    )
                };
                reporter.finished(step, status, &detail);
            }
            Err(e) => {
                let error = format!("applied, but the check failed: {e}");
                append(
                    &self.journal,
                    Some(id),
                    Record::Failed {
                        error: error.clone(),
                        phase: "check".into(),
                    },
                )?;
                reporter.finished(step, Status::Failed, &error);
            }
        }
        Ok(())
    }

    /// Re-run the check of every automated step that was applied, journaling each result.
    pub async fn verify(&self, reporter: &dyn Reporter) -> Result<Vec<VerifyItem>> {
        let state = replay(&self.journal);
        let targets: Vec<&PlannedStep> = state
            .facts
            .steps
            .iter()
            .filter(|s| {
                s.automated.is_some()
                    && !matches!(
                        state.steps[&s.id].status(),
                        Status::Pending | Status::Skipped
                    )
            })
            .collect();
        if !targets.is_empty() {
            reporter.wave("verify", &targets);
        }
        let checks = targets.iter().map(|step| async move {
            let auto = step.automated.as_ref().expect("automated");
            let system = &self.systems[&auto.system];
            reporter.started(step, "checking");
            let result = match &system.provider {
                Err(e) => Err(format!("system {}: {e}", auto.system)),
                Ok(p) => {
                    let _permit = system.limit.acquire().await.map_err(|e| anyhow!(e))?;
                    let call = StepCall {
                        step_id: &step.id,
                        action: &auto.action,
                        login: &auto.login,
                        params: &auto.params,
                    };
                    limited(system.step_timeout, p.check(&call, &CallCtx::silent()))
                        .await
                        .map_err(|e| e.to_string())
                }
            };
            match &result {
                Ok(c) => {
                    append(
                        &self.journal,
                        Some(&step.id),
                        Record::Checked {
                            revoked: c.revoked,
                            observed: c.observed.clone(),
                            context: "verify".into(),
                        },
                    )?;
                    let status = if c.revoked {
                        Status::Done
                    } else {
                        Status::Unconfirmed
                    };
                    let detail = if c.revoked {
                        format!("holds ({})", c.observed)
                    } else {
                        format!("ACCESS RESTORED ({})", c.observed)
                    };
                    reporter.finished(step, status, &detail);
                }
                Err(e) => {
                    append(
                        &self.journal,
                        Some(&step.id),
                        Record::Failed {
                            error: e.clone(),
                            phase: "verify".into(),
                        },
                    )?;
                    reporter.finished(step, Status::Failed, e);
                }
            }
            Ok::<_, anyhow::Error>(VerifyItem {
                step: step.id.clone(),
                result,
            })
        });
        let mut items = Vec::new();
        for r in join_all(checks).await {
            items.push(r?);
        }
        let holding = items
            .iter()
            .filter(|i| matches!(&i.result, Ok(c) if c.revoked))
            .count();
        let drift = items
            .iter()
            .filter(|i| matches!(&i.result, Ok(c) if !c.revoked))
            .count();
        let errors = items.iter().filter(|i| i.result.is_err()).count();
        append(
            &self.journal,
            None,
            Record::VerifyFinished {
                holding,
                drift,
                errors,
            },
        )?;
        Ok(items)
    }
}

/// Why a step cannot run yet: a step it comes after is not settled.
fn unmet_dependency(step: &PlannedStep, state: &DepartureState) -> Option<String> {
    step.after.iter().find_map(|d| {
        let s = state.steps.get(d)?.status();
        (!s.is_settled()).then(|| format!("waiting for {d} ({})", s.as_str()))
    })
}

/// Build the provider for one system, secrets resolved.
fn connect_system(
    name: &str,
    facts: &DepartureFacts,
    state_dir: &Path,
) -> std::result::Result<Arc<dyn Provider>, String> {
    let def = facts
        .systems
        .get(name)
        .ok_or_else(|| format!("not declared in the runbook {}", facts.runbook.name))?;
    let kind = providers::find_kind(&def.kind)
        .ok_or_else(|| format!("unknown kind {} (this offboard is too old?)", def.kind))?;
    let mut cfg = crate::plan::system_config(name, def, state_dir);
    if let Some(r) = &def.token {
        cfg.token = Some(crate::secrets::resolve(r).map_err(|e| format!("token: {e:#}"))?);
    }
    for setting in kind.settings.iter().filter(|s| s.ty == SettingType::Secret) {
        if let Some(v) = def.settings.get(setting.name) {
            let r: crate::runbook::SecretRef = v
                .clone()
                .try_into()
                .map_err(|_| format!("{} must be a secret reference", setting.name))?;
            let value =
                crate::secrets::resolve(&r).map_err(|e| format!("{}: {e:#}", setting.name))?;
            cfg.secrets.insert(setting.name.to_string(), value);
        }
    }
    (kind.connect)(&cfg).map_err(|e| format!("{e:#}"))
}
