//! A departure: its facts, its frozen plan, and the state of every step as replayed from the
//! journal. Nothing here does I/O; the journal is the only source of truth and this module is
//! the one place that interprets it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

// Answers and preflight findings are journal records too; they live in `crate::core` and keep
// their names here.
use crate::core::{Account, RequestLine, TicketAttach, TicketAttachFailure, TicketClose};
pub use crate::core::{Answer, PreflightCheck};
use crate::journal::{Event, Record};
use crate::runbook::{Lane, Phase, SystemDef};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DepartureType {
    Voluntary,
    Involuntary,
}

impl DepartureType {
    pub fn as_str(self) -> &'static str {
        match self {
            DepartureType::Voluntary => "voluntary",
            DepartureType::Involuntary => "involuntary",
        }
    }
}

/// Everything known at start, frozen into the journal's first event: later commands (resume,
/// confirm, verify) work from this, not from a runbook file that may have changed since.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepartureFacts {
    pub id: String,
    /// The identifier given to `start`.
    pub user: String,
    /// That identifier, when it is an email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(rename = "type")]
    pub departure_type: DepartureType,
    pub effective_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    pub legal_hold: bool,
    /// Values of the runbook's declared `[inputs]`.
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    pub runbook: RunbookRef,
    /// Systems as configured (secret *references* only, never values).
    pub systems: BTreeMap<String, SystemDef>,
    pub steps: Vec<PlannedStep>,
    pub tool: String,
    /// The departure of the same person, under the same runbook, that was still open when this
    /// one was started with `start --new`: the evidence links the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The runbook's `[ticketing]` (secret references only): where `offboard attach` sends the
    /// evidence. Left out when absent, so journals from before it hash the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticketing: Option<crate::runbook::TicketingDef>,
    /// The HR event this departure came from (`start --from-event`, `intake poll`, `intake
    /// due`): its source, event id and the sha256 of its body. Left out when absent, so
    /// journals from before it hash the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intake: Option<crate::intake::IntakeRef>,
    /// Started from an approved plan (`start --plan`): its digest, the roles each step needs,
    /// and where the plan and the approvers' allowed_signers are. Left out when absent, so
    /// journals from before it hash the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::approval::ApprovalGate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunbookRef {
    pub name: String,
    pub path: String,
    pub sha256: String,
}

/// One step of the plan, fully resolved: templates rendered, conditions applied, deadline
/// computed, requests described.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub id: String,
    pub lane: Lane,
    pub phase: Phase,
    /// Position in the run order: steps in the same wave may run concurrently.
    pub wave: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated: Option<AutomatedStep>,
    /// The rendered instruction for a manual step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_to: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Could alert the person (held back until every `cut` step is done when involuntary).
    #[serde(default)]
    pub alerts_user: bool,
    /// Destructive and the departure was started under legal hold. Whether the step is blocked
    /// now is [`DepartureState::hold_blocks`]: a hold can also be placed later, and released.
    #[serde(default)]
    pub held: bool,
    /// A return step of the asset lane: the asset it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<crate::assets::Asset>,
    /// A lock/wipe step named by the asset lane's `on_overdue`: it runs only once one of these
    /// return steps is overdue and not confirmed (or confirmed lost); see [`crate::assets::gate`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_overdue_of: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutomatedStep {
    pub system: String,
    pub kind: String,
    pub action: String,
    /// How the person is known in that system.
    pub login: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: serde_json::Map<String, serde_json::Value>,
    pub destructive: bool,
    /// Its check proves access is gone (re-checked by `verify`); false for e.g. a notice.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub revokes: bool,
    /// The API requests apply will make (method + URL; never a secret).
    pub requests: Vec<RequestLine>,
}

fn yes() -> bool {
    true
}

/// Fields added later are left out at their default, so journals written before them hash the
/// same when read back.
fn is_yes(b: &bool) -> bool {
    *b
}

impl PlannedStep {
    pub fn is_manual(&self) -> bool {
        self.automated.is_none()
    }

    pub fn deadline_time(&self) -> Option<DateTime<Utc>> {
        self.deadline
            .as_deref()
            .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
            .map(|t| t.with_timezone(&Utc))
    }

    /// Not settled and past its deadline at `now`; a manual step only once its deadline is
    /// [`MANUAL_GRACE_MINUTES`] behind it.
    pub fn is_overdue(&self, status: Status, now: DateTime<Utc>) -> bool {
        let Some(deadline) = self.deadline_time() else {
            return false;
        };
        let grace = if self.is_manual() {
            chrono::Duration::minutes(MANUAL_GRACE_MINUTES)
        } else {
            chrono::Duration::zero()
        };
        !status.is_settled() && now > deadline + grace
    }
}

/// A manual step is overdue only this long after its deadline: a person needs a moment to walk
/// over and do it, so a step due at the effective time is not overdue the second the run ends.
pub const MANUAL_GRACE_MINUTES: i64 = 15;

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not started, or a manual step not yet confirmed.
    Pending,
    /// Apply began and has not been recorded as finished (a crash, or running now).
    InFlight,
    /// Applied, but the check did not confirm it.
    Unconfirmed,
    Done,
    NotApplicable,
    Failed,
    /// Not run: legal hold or a dependency not done.
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::InFlight => "in flight",
            Status::Unconfirmed => "unconfirmed",
            Status::Done => "done",
            Status::NotApplicable => "n/a",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }

    /// Counts as finished for the departure's completeness.
    pub fn is_settled(self) -> bool {
        matches!(self, Status::Done | Status::NotApplicable)
    }
}

/// A step's replayed state.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StepState {
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub attempts: u32,
    pub retries: u32,
    /// The account the step acted on, by the system's own id (first identified, then kept:
    /// every later check reads this account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    /// The state the step's first apply found just before changing it (`before` records; the
    /// first is kept: a later attempt sees the state the first one left).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    /// The latest `verify` found access back after the step was done: `resume` re-checks the
    /// account and applies the step again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub drifted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppliedSummary {
    pub changed: bool,
    pub summary: String,
    pub requests: Vec<crate::core::RequestRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckSummary {
    pub revoked: bool,
    pub observed: String,
    pub at: String,
    pub context: String,
}

impl StepState {
    pub fn status(&self) -> Status {
        self.status.unwrap_or(Status::Pending)
    }
}

/// Why a step blocked by a legal hold was skipped (journaled, shown by `status`).
pub const HOLD_SKIP_REASON: &str = "legal hold: destructive step blocked";

/// Why a step whose approvals are missing was skipped (followed by the missing roles).
pub const APPROVAL_SKIP_REASON: &str = "waiting for approval by";

/// Placed or released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldAction {
    Placed,
    Released,
}

/// One change of the legal hold, as the journal records it: who, when and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldChange {
    pub action: HoldAction,
    pub at: String,
    pub by: String,
    pub reason: String,
}

/// A destructive step the hold kept from running.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldBlock {
    pub step: String,
    pub at: String,
}

/// The legal hold of a departure: whether it is in force, and its whole history.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HoldState {
    pub active: bool,
    pub history: Vec<HoldChange>,
    /// Every time a destructive step was skipped because of the hold.
    pub blocked: Vec<HoldBlock>,
}

impl HoldState {
    /// The change that put the hold in force, while it is.
    pub fn current(&self) -> Option<&HoldChange> {
        if !self.active {
            return None;
        }
        self.history
            .iter()
            .rev()
            .find(|c| c.action == HoldAction::Placed)
    }
}

/// The whole departure, replayed.
#[derive(Debug, Clone)]
pub struct DepartureState {
    pub facts: DepartureFacts,
    pub steps: BTreeMap<String, StepState>,
    pub started_at: String,
    pub last_event_at: String,
    /// The latest `verify` result, if any.
    pub last_verify: Option<(String, usize, usize, usize)>,
    pub evidence_revision: u32,
    /// The legal hold: placed at start (`--legal-hold`, the runbook's `legal_hold`), or later
    /// with `offboard hold`, and lifted with `offboard release`.
    pub hold: HoldState,
    /// Approvals of the plan accepted so far (`start --plan`, `resume`), in journal order.
    pub approvals: Vec<crate::approval::Approval>,
    /// Where the evidence went: attaches to the service desk ticket, failed ones, closes.
    pub ticket: TicketState,
}

/// The departure's service desk ticket, as the journal records it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketState {
    /// Every successful attach, oldest first, with when it was journaled.
    pub attached: Vec<(String, TicketAttach)>,
    /// The latest failed attach, while no attach has succeeded since: `offboard attach` retries.
    pub pending: Option<(String, TicketAttachFailure)>,
    /// Tickets set to their closing status.
    pub closed: Vec<(String, TicketClose)>,
}

impl TicketState {
    /// The latest successful attach of `revision` to `ticket`, if any.
    pub fn attached_revision(&self, ticket: &str, revision: u32) -> Option<&TicketAttach> {
        self.attached
            .iter()
            .rev()
            .map(|(_, a)| a)
            .find(|a| a.desk.ticket == ticket && a.revision == revision)
    }

    /// Whether `ticket` was closed.
    pub fn is_closed(&self, ticket: &str) -> bool {
        self.closed.iter().any(|(_, c)| c.desk.ticket == ticket)
    }
}

pub fn facts(events: &[Event]) -> Option<&DepartureFacts> {
    events.iter().find_map(|e| match &e.record {
        Record::DepartureStarted(f) => Some(f.as_ref()),
        _ => None,
    })
}

impl DepartureState {
    /// Replay a journal. `None` when the journal has no `departure_started` event.
    pub fn replay(events: &[Event]) -> Option<DepartureState> {
        let facts = facts(events)?.clone();
        let mut steps: BTreeMap<String, StepState> = facts
            .steps
            .iter()
            .map(|s| (s.id.clone(), StepState::default()))
            .collect();
        let mut last_verify = None;
        let mut evidence_revision = 0;
        let mut hold = HoldState::default();
        let mut ticket = TicketState::default();
        let mut approvals: Vec<crate::approval::Approval> = Vec::new();
        if facts.legal_hold
            && let Some(first) = events.first()
        {
            hold.active = true;
            hold.history.push(HoldChange {
                action: HoldAction::Placed,
                at: first.ts.clone(),
                by: first.actor.clone(),
                reason: "placed at start (--legal-hold, or legal_hold = true in the runbook)"
                    .into(),
            });
        }
        for e in events {
            match &e.record {
                Record::HoldPlaced { reason } | Record::HoldReleased { reason } => {
                    let placed = matches!(e.record, Record::HoldPlaced { .. });
                    hold.active = placed;
                    hold.history.push(HoldChange {
                        action: if placed {
                            HoldAction::Placed
                        } else {
                            HoldAction::Released
                        },
                        at: e.ts.clone(),
                        by: e.actor.clone(),
                        reason: reason.clone(),
                    });
                }
                Record::Skipped { reason } if reason.starts_with(HOLD_SKIP_REASON) => {
                    if let Some(step) = &e.step {
                        hold.blocked.push(HoldBlock {
                            step: step.clone(),
                            at: e.ts.clone(),
                        });
                    }
                }
                _ => {}
            }
            if let Record::VerifyFinished {
                holding,
                drift,
                errors,
            } = &e.record
            {
                last_verify = Some((e.ts.clone(), *holding, *drift, *errors));
            }
            if let Record::EvidenceWritten { revision, .. } = &e.record {
                evidence_revision = *revision;
            }
            match &e.record {
                Record::TicketAttached(a) => {
                    ticket.attached.push((e.ts.clone(), a.clone()));
                    ticket.pending = None;
                }
                Record::TicketAttachFailed(f) => ticket.pending = Some((e.ts.clone(), f.clone())),
                Record::TicketClosed(c) => ticket.closed.push((e.ts.clone(), c.clone())),
                Record::Approved(a) if !approvals.iter().any(|b| b.role == a.role) => {
                    approvals.push(a.clone());
                }
                _ => {}
            }
            let Some(step) = e.step.as_deref().and_then(|id| steps.get_mut(id)) else {
                continue;
            };
            match &e.record {
                Record::ApplyStarted { attempt } => {
                    step.status = Some(Status::InFlight);
                    step.attempts = *attempt;
                    step.started_at.get_or_insert_with(|| e.ts.clone());
                    step.actor = Some(e.actor.clone());
                    step.error = None;
                }
                Record::Retried(_) => step.retries += 1,
                Record::Identified { account } => {
                    step.account.get_or_insert_with(|| account.clone());
                }
                Record::Before { state } => {
                    step.before.get_or_insert_with(|| state.clone());
                }
                Record::Applied {
                    changed,
                    summary,
                    requests,
                    account,
                    ..
                } => {
                    if let Some(a) = account {
                        step.account.get_or_insert_with(|| a.clone());
                    }
                    step.status = Some(Status::Unconfirmed);
                    step.applied = Some(AppliedSummary {
                        changed: *changed,
                        summary: summary.clone(),
                        requests: requests.clone(),
                    });
                }
                Record::Checked {
                    revoked,
                    observed,
                    context,
                    account,
                } => {
                    if let Some(a) = account {
                        step.account.get_or_insert_with(|| a.clone());
                    }
                    step.check = Some(CheckSummary {
                        revoked: *revoked,
                        observed: observed.clone(),
                        at: e.ts.clone(),
                        context: context.clone(),
                    });
                    // A verify re-check does not change the step's run status; it is reported
                    // as drift instead, until a run re-applies the step.
                    if context == "verify" {
                        step.drifted = !*revoked;
                    } else {
                        step.drifted &= !*revoked;
                        step.status = Some(if *revoked {
                            Status::Done
                        } else {
                            Status::Unconfirmed
                        });
                        step.finished_at = Some(e.ts.clone());
                    }
                }
                Record::Failed { error, phase } => {
                    if phase != "verify" {
                        step.status = Some(Status::Failed);
                        step.finished_at = Some(e.ts.clone());
                    }
                    step.error = Some(error.clone());
                }
                Record::Skipped { reason } => {
                    step.status = Some(Status::Skipped);
                    step.reason = Some(reason.clone());
                }
                // Called off by a rollback: settled, so no run takes it up again.
                Record::Cancelled { reason } => {
                    step.status = Some(Status::NotApplicable);
                    step.reason = Some(reason.clone());
                    step.finished_at = Some(e.ts.clone());
                }
                Record::Answered {
                    answer,
                    note,
                    fields,
                } => {
                    step.status = Some(match answer {
                        Answer::Done => Status::Done,
                        Answer::NotYet => Status::Pending,
                        Answer::NotApplicable => Status::NotApplicable,
                    });
                    step.actor = Some(e.actor.clone());
                    step.note = note.clone();
                    if *answer == Answer::NotApplicable {
                        step.reason = note.clone();
                    }
                    step.fields.extend(fields.clone());
                    if *answer != Answer::NotYet {
                        step.finished_at = Some(e.ts.clone());
                    }
                }
                _ => {}
            }
        }
        Some(DepartureState {
            started_at: events.first().map(|e| e.ts.clone()).unwrap_or_default(),
            last_event_at: events.last().map(|e| e.ts.clone()).unwrap_or_default(),
            facts,
            steps,
            last_verify,
            evidence_revision,
            hold,
            ticket,
            approvals,
        })
    }

    /// The roles that must still approve `step` before it may run (empty when none).
    pub fn approvals_missing(&self, step: &PlannedStep) -> Vec<crate::approval::Role> {
        let Some(gate) = &self.facts.approval else {
            return Vec::new();
        };
        gate.required
            .get(&step.id)
            .map(|roles| {
                roles
                    .iter()
                    .copied()
                    .filter(|r| !self.approvals.iter().any(|a| a.role == *r))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Why missing approvals keep `step` from running now, if they do.
    pub fn approval_blocks(&self, step: &PlannedStep) -> Option<String> {
        let missing = self.approvals_missing(step);
        if missing.is_empty() {
            return None;
        }
        let names: Vec<&str> = missing.iter().map(|r| r.as_str()).collect();
        Some(format!(
            "{APPROVAL_SKIP_REASON}: {} (`offboard approve <PLAN> --role {}`, then `offboard resume`)",
            names.join(", "),
            names[0]
        ))
    }

    /// Why the legal hold keeps `step` from running now, if it does: a destructive step (or one
    /// planned as held) while a hold is in force.
    pub fn hold_blocks(&self, step: &PlannedStep) -> Option<String> {
        let destructive = step.held || step.automated.as_ref().is_some_and(|a| a.destructive);
        (destructive && self.hold.active).then(|| HOLD_SKIP_REASON.to_string())
    }

    /// Destructive steps not yet settled: what a hold placed now would keep from running.
    pub fn destructive_open(&self) -> Vec<&PlannedStep> {
        self.ordered()
            .filter(|(p, s)| {
                !s.status().is_settled()
                    && (p.held || p.automated.as_ref().is_some_and(|a| a.destructive))
            })
            .map(|(p, _)| p)
            .collect()
    }

    pub fn step(&self, id: &str) -> Option<(&PlannedStep, &StepState)> {
        let planned = self.facts.steps.iter().find(|s| s.id == id)?;
        Some((planned, &self.steps[id]))
    }

    /// Planned steps in run order, with their state.
    pub fn ordered(&self) -> impl Iterator<Item = (&PlannedStep, &StepState)> {
        self.facts.steps.iter().map(|s| (s, &self.steps[&s.id]))
    }

    pub fn is_complete(&self) -> bool {
        self.steps.values().all(|s| s.status().is_settled())
    }

    pub fn counts(&self) -> BTreeMap<Status, usize> {
        let mut m = BTreeMap::new();
        for s in self.steps.values() {
            *m.entry(s.status()).or_insert(0) += 1;
        }
        m
    }

    /// Steps past their deadline and not settled, at `now`.
    pub fn overdue(&self, now: DateTime<Utc>) -> Vec<&PlannedStep> {
        self.ordered()
            .filter(|(p, s)| p.is_overdue(s.status(), now))
            .map(|(p, _)| p)
            .collect()
    }
}

#[cfg(test)]
mod ticket_tests {
    use super::*;
    use crate::core::TicketRef;

    /// A journal written before `[ticketing]` and the ticket records existed reads back byte for
    /// byte: the new fields are left out when absent, so its hashes still hold.
    #[test]
    fn a_journal_from_before_ticketing_hashes_the_same() {
        let bytes = include_bytes!("../examples/journal.jsonl");
        let events = crate::journal::parse_chain(bytes).unwrap();
        assert!(facts(&events).unwrap().ticketing.is_none());
        assert_eq!(crate::journal::journal_bytes(&events), bytes);
    }

    fn desk(ticket: &str) -> TicketRef {
        TicketRef {
            kind: "redmine".into(),
            base_url: "https://desk.example.com".into(),
            ticket: ticket.into(),
        }
    }

    #[test]
    fn a_failed_attach_is_pending_until_one_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = crate::evidence::testutil::journal(dir.path());
        let failed = TicketAttachFailure {
            desk: desk("4711"),
            revision: 1,
            error: "connection reset".into(),
        };
        j.append(None, Record::TicketAttachFailed(failed.clone()))
            .unwrap();
        let state = DepartureState::replay(j.events()).unwrap();
        assert_eq!(state.ticket.pending.as_ref().map(|p| &p.1), Some(&failed));
        let attach = TicketAttach {
            desk: desk("4711"),
            revision: 1,
            evidence_sha256: "ab".repeat(32),
            files: Vec::new(),
            note_added: true,
            note_id: None,
        };
        j.append(None, Record::TicketAttached(attach.clone()))
            .unwrap();
        j.append(
            None,
            Record::TicketClosed(TicketClose {
                desk: desk("4711"),
                status: "Closed".into(),
            }),
        )
        .unwrap();
        let state = DepartureState::replay(j.events()).unwrap();
        assert!(state.ticket.pending.is_none());
        assert_eq!(state.ticket.attached_revision("4711", 1), Some(&attach));
        assert!(state.ticket.is_closed("4711") && !state.ticket.is_closed("4712"));
        // As the journal writes them: one kind each, the desk's fields flat in `data`.
        let kinds: Vec<serde_json::Value> = j.events()[j.events().len() - 3..]
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect();
        assert_eq!(kinds[0]["kind"], "ticket_attach_failed");
        assert_eq!(kinds[1]["kind"], "ticket_attached");
        assert_eq!(kinds[1]["data"]["ticket"], "4711");
        assert_eq!(kinds[2]["kind"], "ticket_closed");
        // And they read back as written.
        let bytes = crate::journal::journal_bytes(j.events());
        assert_eq!(crate::journal::parse_chain(&bytes).unwrap(), j.events());
    }
}

#[cfg(test)]
mod before_tests {
    use super::*;

    /// A step's pre-state is the first one recorded: a second attempt after a crash reads the
    /// state the first attempt left, which is not what rollback must put back.
    #[test]
    fn the_first_before_of_a_step_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = crate::evidence::testutil::journal(dir.path());
        let state = DepartureState::replay(j.events()).unwrap();
        let step = state.facts.steps[0].id.clone();
        let first = serde_json::json!({"active": true, "groups": ["g1"]});
        let second = serde_json::json!({"active": false, "groups": []});
        j.append(
            Some(&step),
            Record::Before {
                state: first.clone(),
            },
        )
        .unwrap();
        j.append(Some(&step), Record::Before { state: second })
            .unwrap();
        let state = DepartureState::replay(j.events()).unwrap();
        assert_eq!(state.steps[&step].before.as_ref(), Some(&first));
        let line = serde_json::to_value(&j.events()[j.events().len() - 1]).unwrap();
        assert_eq!(line["kind"], "before");
    }
}
