//! Rollback plans: undo a departure from what its journal recorded (a rescinded termination,
//! the wrong Alice). No I/O here: the plan is made from the journal's events, the kinds' action
//! tables (each action's [`Inverse`]) and the runbook's `[approvals]`.
//!
//! A rollback plan has two parts, run in this order:
//! 1. every step not yet settled (pending, failed, waiting, in flight) is **cancelled**: journaled
//!    as `cancelled`, so no later `resume` runs it;
//! 2. one **undo step** per automated step that was applied, newest application first: a
//!    restore when the action's inverse is [`Inverse::Restore`] and the apply recorded the
//!    account and its pre-state, else "not restorable" with why; done manual steps are listed
//!    for their owner to undo by hand.
//!
//! It is a plan like any other: written to a file with its digest (`offboard rollback --out`),
//! approvable (`offboard approve`, roles from the runbook's `[approvals] rollback`), and run with
//! `offboard start --plan`, which refuses it when the departure's journal changed since.
//!
//! The digest is the sha256 of the canonical JSON of the [`RollbackPayload`]: the departure id,
//! the journal's length and head hash, the runbook's name and sha256, every cancelled step, and
//! every undo step with its system, kind, action, account, pre-state, what is done and the roles
//! it needs. The request lines shown beside it are left out (they are derived, as in a plan).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::approval::{Approval, ApprovalsDef, Role};
use crate::core::Account;
use crate::departure::{DepartureState, Status};
use crate::journal::{Event, Record};
use crate::providers::Inverse;

/// The `format` of a rollback plan file.
pub const ROLLBACK_FORMAT: &str = "offboard-rollback/1";

/// Why a step without a pre-state cannot be restored.
pub const NO_PRE_STATE: &str = "no pre-state was recorded";
/// Why a step that changed nothing has nothing to undo.
pub const NOTHING_CHANGED: &str = "nothing changed: it was already in place before";

/// What undoing one step means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum Undo {
    /// The provider puts back the recorded pre-state; `what` says what comes back.
    Restore { what: String },
    /// It cannot be undone by offboard; `why` says why.
    NotRestorable { why: String },
    /// A done manual step: its owner undoes it by hand.
    ByHand { instruction: String },
}

/// One undo step of a rollback plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndoStep {
    /// The departure's step it undoes (rollback records are journaled under this id).
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The account the apply acted on, by the system's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    /// The pre-state the apply recorded (the first one of the step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    #[serde(flatten)]
    pub undo: Undo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Roles that must approve it before it runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Role>,
}

/// A step called off before it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelStep {
    pub step: String,
    /// Its status when the plan was made.
    pub status: String,
}

/// Everything the rollback digest covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackPayload {
    pub departure: String,
    pub user: String,
    pub runbook_name: String,
    pub runbook_sha256: String,
    /// How many events the journal had, and the hash of its last one, when the plan was made.
    pub journal_length: u64,
    pub journal_head: String,
    pub cancel: Vec<CancelStep>,
    pub undo: Vec<UndoStep>,
}

impl RollbackPayload {
    pub fn canonical(&self) -> String {
        crate::journal::canonical_json(&serde_json::to_value(self).expect("plain data"))
    }

    pub fn digest(&self) -> String {
        crate::journal::sha256_hex(self.canonical().as_bytes())
    }

    /// The undo steps that restore something.
    pub fn restores(&self) -> impl Iterator<Item = &UndoStep> {
        self.undo
            .iter()
            .filter(|u| matches!(u.undo, Undo::Restore { .. }))
    }

    /// What differs between the plan approved (`self`) and the one made now, in words.
    pub fn differences(&self, now: &RollbackPayload) -> Vec<String> {
        let mut out = Vec::new();
        if self.departure != now.departure {
            out.push(format!(
                "the departure: {} in the plan, {} now",
                self.departure, now.departure
            ));
        }
        if self.journal_head != now.journal_head || self.journal_length != now.journal_length {
            out.push(format!(
                "the departure's journal changed since the plan was made ({} events then, {} now)",
                self.journal_length, now.journal_length
            ));
        }
        if self.runbook_sha256 != now.runbook_sha256 {
            out.push("the departure's runbook".into());
        }
        let ids = |p: &RollbackPayload| -> Vec<String> {
            p.cancel.iter().map(|c| c.step.clone()).collect()
        };
        if ids(self) != ids(now) {
            out.push("the steps to cancel".into());
        }
        for u in &self.undo {
            match now.undo.iter().find(|n| n.step == u.step) {
                None => out.push(format!("undo of {}: in the plan, not now", u.step)),
                Some(n) if n != u => out.push(format!("undo of {}: changed", u.step)),
                Some(_) => {}
            }
        }
        for n in &now.undo {
            if !self.undo.iter().any(|u| u.step == n.step) {
                out.push(format!("undo of {}: new, not in the plan", n.step));
            }
        }
        out
    }
}

/// The rollback plan file `offboard rollback --out` writes and `approve` / `start --plan` read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackFile {
    pub format: String,
    /// sha256 hex of `payload`'s canonical JSON.
    pub digest: String,
    /// The runbook whose `[approvals]` say who approves the rollback (absolute).
    pub runbook_path: String,
    pub payload: RollbackPayload,
    /// The requests each restore will make, by step (shown, not covered by the digest).
    #[serde(default)]
    pub requests: BTreeMap<String, Vec<String>>,
}

impl RollbackFile {
    pub fn read(path: &Path) -> anyhow::Result<RollbackFile> {
        use anyhow::Context;
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let file: RollbackFile = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not an offboard rollback plan", path.display()))?;
        if file.format != ROLLBACK_FORMAT {
            anyhow::bail!(
                "{} has format {:?}; this offboard reads {ROLLBACK_FORMAT:?}",
                path.display(),
                file.format
            );
        }
        let actual = file.payload.digest();
        if actual != file.digest {
            anyhow::bail!(
                "{} was edited: its digest says {} but its content hashes to {}",
                path.display(),
                file.digest,
                actual
            );
        }
        Ok(file)
    }
}

/// Whether the file at `path` is a rollback plan (by its `format`), not a departure plan.
pub fn is_rollback_file(path: &Path) -> bool {
    #[derive(Deserialize)]
    struct Format {
        format: String,
    }
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Format>(&b).ok())
        .is_some_and(|f| f.format == ROLLBACK_FORMAT)
}

/// What `rollback_started` journals: the plan, its digest, and where its approvals are found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackGate {
    pub digest: String,
    /// The rollback plan file (`.sig` files are looked for beside it).
    pub plan_file: String,
    /// The approvers' allowed_signers file (empty when the runbook has no `[approvals]`).
    #[serde(default)]
    pub allowed_signers: String,
    pub plan: RollbackPayload,
}

/// Make the rollback plan of a departure from its journal. `approvals`: the runbook's
/// `[approvals]`, whose `rollback` roles every restore needs.
pub fn plan(events: &[Event], approvals: Option<&ApprovalsDef>) -> Option<RollbackPayload> {
    let state = DepartureState::replay(events)?;
    let facts = &state.facts;
    let head = events.last()?;
    let roles: Vec<Role> = approvals.map(|a| a.rollback.clone()).unwrap_or_default();

    let cancel = state
        .ordered()
        .filter(|(_, s)| !s.status().is_settled())
        .map(|(p, s)| CancelStep {
            step: p.id.clone(),
            status: s.status().as_str().to_string(),
        })
        .collect();

    // When each step was first applied, and whether any apply changed something.
    let mut first_applied: BTreeMap<&str, u64> = BTreeMap::new();
    let mut changed: BTreeSet<&str> = BTreeSet::new();
    let mut failed: BTreeSet<&str> = BTreeSet::new();
    for e in events {
        let Some(step) = e.step.as_deref() else {
            continue;
        };
        match &e.record {
            Record::ApplyStarted { .. } => {
                first_applied.entry(step).or_insert(e.seq);
            }
            Record::Applied { changed: true, .. } => {
                changed.insert(step);
            }
            Record::Failed { phase, .. } if phase != "verify" => {
                failed.insert(step);
            }
            _ => {}
        }
    }
    let mut undo: Vec<(u64, UndoStep)> = Vec::new();
    for (p, s) in state.ordered() {
        let Some(a) = &p.automated else {
            // A manual step someone did: its owner undoes it by hand.
            if s.status() == Status::Done {
                let at = events
                    .iter()
                    .filter(|e| e.step.as_deref() == Some(p.id.as_str()))
                    .filter(|e| matches!(e.record, Record::Answered { .. }))
                    .map(|e| e.seq)
                    .next_back()
                    .unwrap_or(0);
                undo.push((
                    at,
                    UndoStep {
                        step: p.id.clone(),
                        system: None,
                        kind: None,
                        action: None,
                        account: None,
                        before: None,
                        undo: Undo::ByHand {
                            instruction: format!(
                                "undo by hand: {}",
                                p.manual.as_deref().unwrap_or(&p.id)
                            ),
                        },
                        owner: p.owner.clone(),
                        requires: Vec::new(),
                    },
                ));
            }
            continue;
        };
        let Some(&at) = first_applied.get(p.id.as_str()) else {
            continue;
        };
        let inverse = crate::providers::find_kind(&a.kind)
            .and_then(|k| k.action(&a.action))
            .map(|spec| spec.inverse);
        let id = p.id.as_str();
        let undone = if !changed.contains(id) && !failed.contains(id) && s.applied.is_some() {
            Undo::NotRestorable {
                why: NOTHING_CHANGED.into(),
            }
        } else {
            match inverse {
                None => Undo::NotRestorable {
                    why: format!("this offboard does not know the action {}", a.action),
                },
                Some(Inverse::None(why)) => Undo::NotRestorable { why: why.into() },
                Some(Inverse::Restore(what)) => {
                    if s.before.is_none() {
                        Undo::NotRestorable {
                            why: NO_PRE_STATE.into(),
                        }
                    } else if s.account.is_none() {
                        Undo::NotRestorable {
                            why: "no account was recorded".into(),
                        }
                    } else {
                        Undo::Restore { what: what.into() }
                    }
                }
            }
        };
        let requires = if matches!(undone, Undo::Restore { .. }) {
            roles.clone()
        } else {
            Vec::new()
        };
        undo.push((
            at,
            UndoStep {
                step: p.id.clone(),
                system: Some(a.system.clone()),
                kind: Some(a.kind.clone()),
                action: Some(a.action.clone()),
                account: s.account.clone(),
                before: s.before.clone(),
                undo: undone,
                owner: p.owner.clone(),
                requires,
            },
        ));
    }
    // Newest application first.
    undo.sort_by_key(|u| std::cmp::Reverse(u.0));
    Some(RollbackPayload {
        departure: facts.id.clone(),
        user: facts.user.clone(),
        runbook_name: facts.runbook.name.clone(),
        runbook_sha256: facts.runbook.sha256.clone(),
        journal_length: events.len() as u64,
        journal_head: head.hash.clone(),
        cancel,
        undo: undo.into_iter().map(|(_, u)| u).collect(),
    })
}

/// Where one undo step of a running (or run) rollback stands.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UndoState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored: Option<RestoredRec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckRec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_restorable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoredRec {
    pub changed: bool,
    pub summary: String,
    pub requests: Vec<crate::core::RequestRecord>,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckRec {
    pub after: serde_json::Value,
    pub restored: bool,
    pub observed: String,
    pub at: String,
}

impl UndoState {
    /// Nothing more to do for it.
    pub fn is_settled(&self) -> bool {
        self.not_restorable.is_some() || self.check.as_ref().is_some_and(|c| c.restored)
    }

    /// A restore (or its check) was attempted: a resume checks before restoring again.
    pub fn attempted(&self) -> bool {
        self.restored.is_some() || self.error.is_some() || self.check.is_some()
    }
}

/// A rollback as the journal records it.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackRun {
    pub gate: RollbackGate,
    pub started_at: String,
    pub approvals: Vec<Approval>,
    /// Steps cancelled since the rollback began.
    pub cancelled: BTreeSet<String>,
    pub steps: BTreeMap<String, UndoState>,
}

impl RollbackRun {
    /// The journal's rollback, if one was started.
    pub fn replay(events: &[Event]) -> Option<RollbackRun> {
        let mut run: Option<RollbackRun> = None;
        for e in events {
            if let Record::RollbackStarted(gate) = &e.record {
                if run.is_none() {
                    run = Some(RollbackRun {
                        gate: gate.as_ref().clone(),
                        started_at: e.ts.clone(),
                        approvals: Vec::new(),
                        cancelled: BTreeSet::new(),
                        steps: BTreeMap::new(),
                    });
                }
                continue;
            }
            let Some(run) = run.as_mut() else { continue };
            if let Record::RollbackApproved(a) = &e.record {
                if !run.approvals.iter().any(|b| b.role == a.role) {
                    run.approvals.push(a.clone());
                }
                continue;
            }
            let Some(step) = e.step.clone() else { continue };
            match &e.record {
                Record::Cancelled { .. } => {
                    run.cancelled.insert(step);
                }
                Record::Restored {
                    changed,
                    summary,
                    requests,
                    ..
                } => {
                    let st = run.steps.entry(step).or_default();
                    st.restored = Some(RestoredRec {
                        changed: *changed,
                        summary: summary.clone(),
                        requests: requests.clone(),
                        at: e.ts.clone(),
                    });
                    st.error = None;
                }
                Record::RestoreChecked {
                    after,
                    restored,
                    observed,
                    ..
                } => {
                    let st = run.steps.entry(step).or_default();
                    st.check = Some(CheckRec {
                        after: after.clone(),
                        restored: *restored,
                        observed: observed.clone(),
                        at: e.ts.clone(),
                    });
                    if *restored {
                        st.error = None;
                    }
                }
                Record::NotRestorable { reason } => {
                    run.steps.entry(step).or_default().not_restorable = Some(reason.clone());
                }
                Record::RestoreFailed { error } => {
                    run.steps.entry(step).or_default().error = Some(error.clone());
                }
                _ => {}
            }
        }
        run
    }

    /// The roles `u` still needs.
    pub fn missing(&self, u: &UndoStep) -> Vec<Role> {
        u.requires
            .iter()
            .copied()
            .filter(|r| !self.approvals.iter().any(|a| a.role == *r))
            .collect()
    }

    pub fn state(&self, step: &str) -> UndoState {
        self.steps.get(step).cloned().unwrap_or_default()
    }

    /// Every restore is back and every other undo step is recorded.
    pub fn is_complete(&self) -> bool {
        self.gate.plan.undo.iter().all(|u| match u.undo {
            Undo::ByHand { .. } => true,
            _ => self.state(&u.step).is_settled(),
        }) && self
            .gate
            .plan
            .cancel
            .iter()
            .all(|c| self.cancelled.contains(&c.step))
    }

    /// How one undo step ended, in a word: restored, not restorable, failed, waiting, by hand,
    /// pending.
    pub fn outcome(&self, u: &UndoStep) -> &'static str {
        let st = self.state(&u.step);
        match &u.undo {
            Undo::ByHand { .. } => "by hand",
            _ if st.not_restorable.is_some() => "not restorable",
            _ if st.check.as_ref().is_some_and(|c| c.restored) => "restored",
            _ if st.error.is_some() => "failed",
            _ if st.check.is_some() => "not restored",
            _ if !self.missing(u).is_empty() => "waiting for approval",
            _ => "pending",
        }
    }
}

/// Re-check the rollback approvals a journal records (what `evidence verify` does): the digest
/// journaled is the digest of the plan journaled with it, and each approval is a valid
/// signature over it, for its role, with no key in two roles.
pub fn verify_recorded(events: &[Event]) -> Result<(), String> {
    let Some(run) = RollbackRun::replay(events) else {
        if events
            .iter()
            .any(|e| matches!(e.record, Record::RollbackApproved(_)))
        {
            return Err("the journal records a rollback approval, but no rollback".into());
        }
        return Ok(());
    };
    // The plan was made from this very journal: its head is the event just before it began.
    let at = events
        .iter()
        .position(|e| matches!(e.record, Record::RollbackStarted(_)))
        .unwrap_or(0);
    let head = at.checked_sub(1).map(|i| events[i].hash.as_str());
    if head != Some(run.gate.plan.journal_head.as_str())
        || run.gate.plan.journal_length != at as u64
    {
        return Err(format!(
            "the rollback plan was made from another journal (head {} at {} events), not from the {at} events before it",
            run.gate.plan.journal_head, run.gate.plan.journal_length
        ));
    }
    let digest = run.gate.plan.digest();
    if digest != run.gate.digest {
        return Err(format!(
            "the rollback plan hashes to {digest}, not to its digest {}",
            run.gate.digest
        ));
    }
    let approvals: Vec<Approval> = events
        .iter()
        .filter_map(|e| match &e.record {
            Record::RollbackApproved(a) => Some(a.clone()),
            _ => None,
        })
        .collect();
    for a in &approvals {
        if a.digest != run.gate.digest {
            return Err(format!(
                "the {} rollback approval is for plan {}, not {}",
                a.role, a.digest, run.gate.digest
            ));
        }
        let key = crate::approval::check_signature(&a.signature, a.role, &run.gate.digest)
            .map_err(|e| e.to_string())?;
        if crate::approval::fingerprint(&key) != a.fingerprint {
            return Err(format!(
                "the {} rollback approval names key {} but was signed by {}",
                a.role,
                a.fingerprint,
                crate::approval::fingerprint(&key)
            ));
        }
    }
    crate::approval::check_distinct(&approvals).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
