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

use crate::departure::{
    Answer, DepartureFacts, DepartureState, PlannedStep, PreflightCheck, Status,
};
use crate::journal::{Journal, Record};
use crate::providers::{
    self, Account, CallCtx, CheckOutcome, Provider, ProviderError, RetryNote, SettingType, StepCall,
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

/// Concurrent steps' events are committed in groups: ten steps finishing at once cost one fsync.
fn append(journal: &SharedJournal, step: Option<&str>, record: Record) -> Result<()> {
    Journal::append_shared(journal, step, record)
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

#[derive(Clone)]
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
        Engine {
            journal,
            systems: connect_systems(facts, state_dir),
            context,
        }
    }

    /// [`Engine::connect`] for one departure of many (a bulk run): each system is connected
    /// once and its provider (one connection pool) shared by every departure that uses it with
    /// the same definition.
    pub fn connect_shared(
        journal: SharedJournal,
        facts: &DepartureFacts,
        state_dir: &Path,
        context: &'static str,
        shared: &SharedSystems,
    ) -> Engine {
        let mut systems = HashMap::new();
        for step in &facts.steps {
            let Some(auto) = &step.automated else {
                continue;
            };
            if systems.contains_key(&auto.system) {
                continue;
            }
            let system = shared.get(&auto.system, facts, state_dir);
            systems.insert(auto.system.clone(), system);
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
        let found = self.found_by_preflight();
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
                .filter(|s| {
                    let st = &state.steps[&s.id];
                    // A done step whose access came back (verify saw drift) runs again.
                    !st.status().is_settled() || (st.drifted && !s.is_manual())
                })
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
                let results = join_all(
                    auto.iter()
                        .map(|s| self.run_automated(s, &state, found.get(&s.id), reporter)),
                )
                .await;
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

    /// The accounts this run's preflight found, by step: a preflight recorded after the last
    /// `run_started` (a resume starts a new run and looks again through its checks).
    fn found_by_preflight(&self) -> HashMap<String, Account> {
        let j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = HashMap::new();
        for e in j.events() {
            match &e.record {
                Record::RunStarted { .. } => found.clear(),
                Record::Preflight { checks, .. } => {
                    found = checks
                        .iter()
                        .filter(|c| c.ok)
                        .filter_map(|c| Some((c.step.clone(), c.account.clone()?)))
                        .collect();
                }
                _ => {}
            }
        }
        found
    }

    /// `preflighted`: the account this run's preflight found for the step, if any.
    async fn run_automated(
        &self,
        step: &PlannedStep,
        before: &DepartureState,
        preflighted: Option<&Account>,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let auto = step.automated.as_ref().expect("automated step");
        let prior = &before.steps[&step.id];
        let id = step.id.as_str();
        // A lock/wipe step of the asset lane (`on_overdue`) waits for an asset to be overdue,
        // and is not needed once every asset is back.
        let gate = crate::assets::gate(step, before, crate::journal::now());
        if let Some(crate::assets::Gate::NotNeeded(reason)) = &gate {
            if prior.status() != Status::NotApplicable {
                let record = Record::Answered {
                    answer: crate::departure::Answer::NotApplicable,
                    note: Some(reason.clone()),
                    fields: BTreeMap::new(),
                };
                append(&self.journal, Some(id), record)?;
            }
            reporter.finished(step, Status::NotApplicable, reason);
            return Ok(());
        }
        // A hold placed mid-departure (`offboard hold`) blocks as one placed at start does.
        let skip = before
            .hold_blocks(step)
            .or_else(|| before.approval_blocks(step))
            .or(match gate {
                Some(crate::assets::Gate::Wait(reason)) => Some(reason),
                _ => None,
            })
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
        let known = prior.account.clone();
        let ctx = {
            let journal = self.journal.clone();
            let step_id = id.to_string();
            let on_account_journal = self.journal.clone();
            let on_account_step = id.to_string();
            let on_before_journal = self.journal.clone();
            let on_before_step = id.to_string();
            let known_id = known.as_ref().map(|a| a.id.clone());
            CallCtx::new(move |note| {
                if let Err(e) = append(&journal, Some(&step_id), Record::Retried(note)) {
                    tracing::warn!("could not journal a retry: {e:#}");
                }
            })
            .on_account(move |account| {
                if known_id.as_deref() == Some(account.id.as_str()) {
                    return;
                }
                let record = Record::Identified {
                    account: account.clone(),
                };
                if let Err(e) = append(&on_account_journal, Some(&on_account_step), record) {
                    tracing::warn!("could not journal the account identified: {e:#}");
                }
            })
            .on_before(move |state| {
                let record = Record::Before {
                    state: state.clone(),
                };
                if let Err(e) = append(&on_before_journal, Some(&on_before_step), record) {
                    tracing::warn!("could not journal the pre-state: {e:#}");
                }
            })
        };

        // An earlier run got as far as applying: look before touching it again.
        let attempted = prior.drifted
            || matches!(
                prior.status(),
                Status::InFlight | Status::Unconfirmed | Status::Failed
            );
        if attempted {
            reporter.started(step, "re-checking");
            let call = step_call(step, known.as_ref());
            let seen = limited(system.step_timeout, provider.check(&call, &ctx))
                .await
                .and_then(|c| judged(known.as_ref(), c));
            if let Ok(c) = seen
                && c.revoked
            {
                append(
                    &self.journal,
                    Some(id),
                    Record::Checked {
                        revoked: true,
                        observed: c.observed.clone(),
                        context: "resume".into(),
                        account: c.account.clone(),
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
        // A first attempt acts on the account this run's preflight just found, by id, instead
        // of looking the person up again (the apply still journals it as identified first).
        let fresh = preflighted.filter(|_| known.is_none() && prior.attempts == 0);
        let (call, apply_ctx) = match fresh {
            Some(a) => (step_call(step, Some(a)), ctx.clone().found_just_now()),
            None => (step_call(step, known.as_ref()), ctx.clone()),
        };
        let applied = match limited(system.step_timeout, provider.apply(&call, &apply_ctx)).await {
            Ok(out) => out,
            Err(e) => {
                let error = match (&e, &known) {
                    (ProviderError::NotFound(m), None) => format!(
                        "{m}: the person was never found in system {}, so nothing was revoked. \
                         Check the identifier given to `offboard start` ({}){} and how the \
                         system knows people (`user = \"{{{{ user.email }}}}\"` or another \
                         template under [systems.{}] in the runbook)",
                        auto.system,
                        auto.login,
                        lookalikes(&auto.login),
                        auto.system
                    ),
                    _ => e.to_string(),
                };
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
        let account = applied.account.clone().or(known);
        append(
            &self.journal,
            Some(id),
            Record::Applied {
                changed: applied.changed,
                summary: applied.summary.clone(),
                requests: applied.requests.clone(),
                account: applied.account.clone(),
                licences_freed: ctx.take_freed_licences(),
            },
        )?;
        reporter.started(step, "checking");
        let call = step_call(step, account.as_ref());
        let checked = limited(system.step_timeout, provider.check(&call, &ctx))
            .await
            .and_then(|c| judged(account.as_ref(), c));
        match checked {
            Ok(c) => {
                append(
                    &self.journal,
                    Some(id),
                    Record::Checked {
                        revoked: c.revoked,
                        observed: c.observed.clone(),
                        context: self.context.into(),
                        account: c.account.clone(),
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
                let error = format!("applied, but cannot confirm: {e}");
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

    /// Re-run the check of every revocation that was attempted, journaling each result.
    ///
    /// Each check reads the account the step acted on, by the system's id. A step that never
    /// identified an account (the person was not found, the system could not be reached) has
    /// nothing to re-check: it is reported as "cannot confirm", never as holding.
    pub async fn verify(&self, reporter: &dyn Reporter) -> Result<Vec<VerifyItem>> {
        let state = replay(&self.journal);
        // A rollback gave access back on purpose: what it cancelled or restored is not drift.
        let undone: std::collections::BTreeSet<String> = {
            let j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
            crate::rollback::RollbackRun::replay(j.events())
                .map(|rb| {
                    rb.gate
                        .plan
                        .restores()
                        .map(|u| u.step.clone())
                        .chain(rb.cancelled.iter().cloned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let targets: Vec<&PlannedStep> = state
            .facts
            .steps
            .iter()
            .filter(|s| {
                s.automated.as_ref().is_some_and(|a| a.revokes)
                    && !undone.contains(&s.id)
                    && !matches!(
                        state.steps[&s.id].status(),
                        Status::Pending | Status::Skipped
                    )
            })
            .collect();
        if !targets.is_empty() {
            reporter.wave("verify", &targets);
        }
        let checks = targets.iter().map(|step| {
            let prior = &state.steps[&step.id];
            async move {
                let auto = step.automated.as_ref().expect("automated");
                let system = &self.systems[&auto.system];
                reporter.started(step, "checking");
                // Journals written before accounts were recorded have done steps without one:
                // those are still read (by login), and the check must name the account it read.
                let known = prior.account.as_ref();
                let result = match (&system.provider, known) {
                    (Err(e), _) => Err(format!("system {}: {e}", auto.system)),
                    (Ok(_), None) if prior.status() != Status::Done => Err(format!(
                        "cannot confirm: the step never identified {}'s account in system {} \
                         ({}), so there is nothing of theirs to re-check",
                        auto.login,
                        auto.system,
                        prior.error.as_deref().unwrap_or("it did not get that far")
                    )),
                    (Ok(p), known) => {
                        let _permit = system.limit.acquire().await.map_err(|e| anyhow!(e))?;
                        let call = step_call(step, known);
                        limited(system.step_timeout, p.check(&call, &CallCtx::silent()))
                            .await
                            .and_then(|c| judged(known, c))
                            .map_err(|e| format!("cannot confirm: {e}"))
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
                                account: c.account.clone(),
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
            }
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

/// Characters outside ASCII in an identifier, named (a Cyrillic "а" looks like a Latin "a").
fn lookalikes(login: &str) -> String {
    let odd: Vec<String> = login
        .chars()
        .filter(|c| !c.is_ascii())
        .map(|c| format!("U+{:04X}", c as u32))
        .collect();
    if odd.is_empty() {
        String::new()
    } else {
        format!(
            ", which holds characters outside ASCII ({}) that may only look like letters",
            odd.join(", ")
        )
    }
}

/// The call for one automated step, on the account recorded for it (if any).
fn step_call<'a>(step: &'a PlannedStep, account: Option<&'a Account>) -> StepCall<'a> {
    let auto = step.automated.as_ref().expect("automated step");
    StepCall {
        step_id: &step.id,
        action: &auto.action,
        login: &auto.login,
        params: &auto.params,
        account,
    }
}

/// Hold a check's answer to the rule that only a read of *that* account proves anything: a
/// "revoked" that names no account, or names another account than the one the step acted on,
/// is "cannot confirm".
fn judged(expected: Option<&Account>, c: CheckOutcome) -> Result<CheckOutcome, ProviderError> {
    match (expected, &c.account) {
        (_, None) if c.revoked => Err(ProviderError::Permanent(format!(
            "the check reported {:?} without saying whose account it read",
            c.observed
        ))),
        (Some(e), Some(a)) if e.id != a.id => Err(ProviderError::Permanent(format!(
            "the check read account {a}, but this step acted on {e}"
        ))),
        _ => Ok(c),
    }
}

/// Systems connected once for many departures of the same runbook (see
/// [`Engine::connect_shared`]), by name and definition.
#[derive(Default)]
pub struct SharedSystems(Mutex<HashMap<(String, String), System>>);

impl SharedSystems {
    /// Connect every system the plan's automated steps use (each once); those that cannot be
    /// used (a secret that does not resolve, an unknown kind…), by name, with why.
    pub fn connect(&self, facts: &DepartureFacts, state_dir: &Path) -> Vec<(String, String)> {
        let mut problems: Vec<(String, String)> = Vec::new();
        for step in &facts.steps {
            let Some(auto) = &step.automated else {
                continue;
            };
            if let Err(e) = &self.get(&auto.system, facts, state_dir).provider
                && !problems.iter().any(|(n, _)| n == &auto.system)
            {
                problems.push((auto.system.clone(), e.clone()));
            }
        }
        problems
    }

    fn get(&self, name: &str, facts: &DepartureFacts, state_dir: &Path) -> System {
        let def = facts
            .systems
            .get(name)
            .and_then(|d| serde_json::to_string(d).ok())
            .unwrap_or_default();
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry((name.to_string(), def))
            .or_insert_with(|| connect_one(name, facts, state_dir))
            .clone()
    }
}

/// Connect every system the plan's automated steps use, resolving secrets now.
fn connect_systems(facts: &DepartureFacts, state_dir: &Path) -> HashMap<String, System> {
    let mut systems = HashMap::new();
    for step in &facts.steps {
        let Some(auto) = &step.automated else {
            continue;
        };
        if systems.contains_key(&auto.system) {
            continue;
        }
        systems.insert(
            auto.system.clone(),
            connect_one(&auto.system, facts, state_dir),
        );
    }
    systems
}

/// Connect one system, with its process-wide limits.
fn connect_one(name: &str, facts: &DepartureFacts, state_dir: &Path) -> System {
    let provider = connect_system(name, facts, state_dir);
    let def = facts.systems.get(name);
    let step_timeout = def.and_then(|d| d.step_timeout_secs).unwrap_or(300).max(1);
    // The same limits as the system's HTTP requests, shared by every departure this
    // process drives.
    let cfg = def.map(|d| crate::plan::system_config(name, d, state_dir));
    let limits = crate::limits::for_system(
        name,
        cfg.as_ref().map_or(4, |c| c.max_concurrency),
        cfg.and_then(|c| c.rate_limit),
    );
    System {
        provider,
        limit: limits.concurrency.clone(),
        step_timeout: Duration::from_secs(step_timeout),
    }
}

/// What the preflight found: one check per automated step, and the retries it took.
#[derive(Debug, Clone)]
pub struct Preflight {
    pub checks: Vec<PreflightCheck>,
    pub retries: u32,
}

impl Preflight {
    pub fn problems(&self) -> usize {
        self.checks.iter().filter(|c| !c.ok).count()
    }
}

/// Before anything is cut: resolve every secret the plan needs and ask every system, read-only,
/// about the person for each automated step (token valid, person found, rights sufficient where
/// the API can tell). Steps a legal hold blocks are not asked about. Changes nothing.
pub async fn preflight(facts: &DepartureFacts, state_dir: &Path) -> Preflight {
    let systems = connect_systems(facts, state_dir);
    let retries = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let looks = facts
        .steps
        .iter()
        .filter(|s| s.automated.is_some() && !s.held)
        .map(|step| {
            let auto = step.automated.as_ref().expect("automated");
            let system = &systems[&auto.system];
            let counter = retries.clone();
            let found = Arc::new(Mutex::new(None::<Account>));
            let slot = found.clone();
            let ctx = CallCtx::new(move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
            .on_account(move |a| {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(a.clone());
            });
            async move {
                let result = match &system.provider {
                    Err(e) => Err(format!("system {}: {e}", auto.system)),
                    Ok(p) => match system.limit.acquire().await {
                        Err(e) => Err(e.to_string()),
                        Ok(_permit) => {
                            let call = step_call(step, None);
                            limited(system.step_timeout, p.preflight(&call, &ctx))
                                .await
                                .map_err(|e| match e {
                                    ProviderError::NotFound(m) => format!(
                                        "{m}: the person is not found there{}",
                                        lookalikes(&auto.login)
                                    ),
                                    e => e.to_string(),
                                })
                        }
                    },
                };
                let account = found.lock().unwrap_or_else(|p| p.into_inner()).take();
                PreflightCheck {
                    step: step.id.clone(),
                    system: auto.system.clone(),
                    ok: result.is_ok(),
                    account: account.filter(|_| result.is_ok()),
                    detail: result.unwrap_or_else(|e| e),
                }
            }
        });
    let checks = join_all(looks).await;
    Preflight {
        checks,
        retries: retries.load(std::sync::atomic::Ordering::Relaxed),
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
pub(crate) fn connect_system(
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
    for setting in kind
        .settings
        .iter()
        .filter(|s| matches!(s.ty, SettingType::Secret | SettingType::SecretDocument))
    {
        if let Some(v) = def.settings.get(setting.name) {
            let r: crate::runbook::SecretRef = v
                .clone()
                .try_into()
                .map_err(|_| format!("{} must be a secret reference", setting.name))?;
            let value = if setting.ty == SettingType::SecretDocument {
                crate::secrets::resolve_document(&r)
            } else {
                crate::secrets::resolve(&r)
            }
            .map_err(|e| format!("{}: {e:#}", setting.name))?;
            cfg.secrets.insert(setting.name.to_string(), value);
        }
    }
    if let Some(v) = kind
        .settings
        .iter()
        .find(|s| s.ty == SettingType::Auth)
        .and_then(|s| def.settings.get(s.name))
    {
        cfg.auth = Some(resolve_auth(v)?);
    }
    (kind.connect)(&cfg).map_err(|e| format!("{e:#}"))
}

/// A system's `auth` table with every secret read (a key file whole). Errors name the secret's
/// place in the table and its reference, never a value.
fn resolve_auth(v: &toml::Value) -> std::result::Result<providers::kit::auth::AuthConfig, String> {
    let spec: providers::kit::auth::AuthSpec<crate::runbook::SecretRef> = v
        .clone()
        .try_into()
        .map_err(|_| "`auth` is not a valid auth table (`offboard runbook check` says why)")?;
    spec.try_map(|slot, r| {
        let read = if slot.document {
            crate::secrets::resolve_document(r)
        } else {
            crate::secrets::resolve(r)
        };
        read.map_err(|e| format!("{}: {e:#}", slot.path))
    })
}

#[cfg(test)]
mod shared_systems_tests {
    use super::*;

    fn engine(dir: &Path, user: &str, shared: &SharedSystems) -> Engine {
        let runbook = crate::runbook::load_file(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/demo.toml"),
        )
        .unwrap();
        let req = crate::plan::DepartureRequest {
            id: crate::state::new_departure_id(user, crate::journal::now()),
            user: user.into(),
            departure_type: crate::departure::DepartureType::Voluntary,
            effective_at: crate::journal::now(),
            inputs: [("manager".to_string(), "bob@example.com".to_string())].into(),
            ticket: None,
            legal_hold: false,
        };
        let facts = crate::plan::build(&runbook, &req, dir).unwrap();
        let journal = Journal::create(
            &dir.join(format!("{user}.jsonl")),
            "tester".into(),
            Record::DepartureStarted(Box::new(facts.clone())),
        )
        .unwrap();
        Engine::connect_shared(Arc::new(Mutex::new(journal)), &facts, dir, "run", shared)
    }

    #[test]
    fn departures_of_a_batch_share_one_provider_per_system() {
        let dir = tempfile::tempdir().unwrap();
        let shared = SharedSystems::default();
        let a = engine(dir.path(), "alice@example.com", &shared);
        let b = engine(dir.path(), "carol@example.com", &shared);
        let alone = engine(dir.path(), "erin@example.com", &SharedSystems::default());
        assert!(!a.systems.is_empty());
        for (name, sys) in &a.systems {
            let p = sys.provider.as_ref().unwrap();
            assert!(
                Arc::ptr_eq(p, b.systems[name].provider.as_ref().unwrap()),
                "{name}: two providers in one batch"
            );
            assert!(!Arc::ptr_eq(
                p,
                alone.systems[name].provider.as_ref().unwrap()
            ));
        }
    }
}
