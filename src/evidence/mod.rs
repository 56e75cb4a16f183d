//! Signed evidence: an in-toto Statement v1 over the journal, signed with SSHSIG.
//!
//! One evidence file per departure revision, `<id>.json`, with its OpenSSH signature beside it as
//! `<id>.json.sig`:
//!
//! ```text
//! {
//!   "_type": "https://in-toto.io/Statement/v1",
//!   "subject": [{"name": "journal.jsonl, lines 1-N",
//!                "digest": {"sha256": "<hex of the journal's first N lines>"},
//!                "annotations": {"file": "journal.jsonl", "lines": N}}],
//!   "predicateType": "https://offboard.dev/evidence/v1",
//!   "predicate": { revision, generated_at, tool, departure, runbook, signer, steps, events,
//!                  chain, summary }
//! }
//! ```
//!
//! The subject digest is the SHA-256 of the exact journal bytes the N embedded `events` rebuild
//! (one canonical JSON event per line, each ending in `\n`), so the evidence pins the journal.
//! Sealing appends an `evidence_written` event after those N, so the subject names the
//! journal's first N lines: `head -n N journal.jsonl | sha256sum` prints the digest.
//! The file is pretty JSON (2-space indent, keys sorted, trailing newline); the signature is an
//! SSHSIG (Ed25519, namespace [`NAMESPACE`], hash sha512) over its exact bytes, which
//! `ssh-keygen -Y verify` checks. `predicate.generated_at` is when it was signed: the time at
//! which an allowed_signers `valid-after`/`valid-before` window is checked. Everything in it is
//! derived from the journal, which never holds a secret. `steps` and `summary` are a convenience
//! view; the embedded `events` are the record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::departure::{self, DepartureState, Status};
use crate::journal::{self, Event, Journal, Record};
use crate::keys::SigningKey;
use crate::runbook::Phase;
use crate::state::StateDir;

mod allowed_signers;
pub mod bundle;
pub mod html;
mod render;
mod verify;

pub use allowed_signers::{AllowedSigner, AllowedSigners, Refusal, SignerTime, parse_ssh_time};
pub use bundle::{Bundle, BundleError, BundleFile};
pub use html::render_html;
pub use render::render;
pub use verify::{Distrust, EvidenceError, Trust, Verified, verify};

/// The SSHSIG namespace evidence is signed under (`ssh-keygen -Y … -n offboard-evidence`).
pub const NAMESPACE: &str = "offboard-evidence";

/// The in-toto predicate type of offboard evidence, version 1.
pub const PREDICATE_TYPE: &str = "https://offboard.dev/evidence/v1";

/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// The subject's name: the first `lines` lines of the journal, which the evidence covers.
pub fn subject_name(lines: usize) -> String {
    format!("{}, lines 1-{lines}", journal::JOURNAL_FILE)
}

/// How the chain is built, stated in every evidence file so an auditor can re-check it by hand.
pub const CHAIN_ALGORITHM: &str = "sha256 hash chain: each event's `hash` is `sha256:` + hex \
SHA-256 of the event's canonical JSON (object keys sorted at every level, no whitespace) without \
its `hash` member; each event's `prev` is the previous event's `hash`, the first event's `prev` \
is sha256:0000000000000000000000000000000000000000000000000000000000000000; `seq` counts from 0. \
The journal file is each event's canonical JSON followed by a newline; the subject digest is the \
SHA-256 of those bytes for the embedded events, the journal's first `subject[0].annotations.lines` \
lines.";

/// The status names used in evidence (`status` of a step, keys of `summary.counts`).
fn status_name(s: Status) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| s.as_str().to_string())
}

const ALL_STATUSES: [Status; 7] = [
    Status::Pending,
    Status::InFlight,
    Status::Unconfirmed,
    Status::Done,
    Status::NotApplicable,
    Status::Failed,
    Status::Skipped,
];

/// Build the in-toto Statement for a departure's journal.
pub fn build(events: &[Event], revision: u32, signer: &SigningKey) -> Result<Value> {
    let state = DepartureState::replay(events).context(
        "the journal has no departure_started event, so there is no departure to attest",
    )?;
    let facts = &state.facts;
    let bytes = journal::journal_bytes(events);
    let last = events.last().expect("replay found an event");

    let mut departure = json!({
        "id": facts.id,
        "user": facts.user,
        "email": facts.email,
        "type": facts.departure_type.as_str(),
        "effective_at": facts.effective_at,
        "ticket": facts.ticket,
        "legal_hold": facts.legal_hold,
        "inputs": facts.inputs,
        "previous": facts.previous,
    });
    // The HR event it came from (source, event id, body sha256), only when it came from one.
    if let Some(intake) = &facts.intake {
        departure["intake"] = serde_json::to_value(intake)?;
    }
    // Started from an approved plan: its digest, the roles each step needs, who approved (the
    // signatures themselves are in the `approved` events, which `evidence verify` re-checks).
    if let Some(gate) = &facts.approval {
        let given: Vec<Value> = state
            .approvals
            .iter()
            .map(
                |a| json!({"role": a.role, "principal": a.principal, "fingerprint": a.fingerprint}),
            )
            .collect();
        departure["approvals"] = json!({
            "plan_digest": gate.digest,
            "required": gate.required,
            "given": given,
        });
    }
    let runbook = json!({
        "name": facts.runbook.name,
        "path": facts.runbook.path,
        "sha256": facts.runbook.sha256,
    });

    let mut steps = Vec::new();
    for (p, s) in state.ordered() {
        let mut step = json!({
            "id": p.id,
            "lane": p.lane.as_str(),
            "phase": p.phase.as_str(),
            "wave": p.wave,
            "description": p.description,
            "owner": p.owner,
            "deadline": p.deadline,
            "escalate_to": p.escalate_to,
            "after": p.after,
            // Kept from running by the legal hold as it stands now.
            "held": state.hold_blocks(p).is_some() && !s.status().is_settled(),
            "alerts_user": p.alerts_user,
            "kind": if p.is_manual() { "manual" } else { "automated" },
            "status": status_name(s.status()),
            "started_at": s.started_at,
            "finished_at": s.finished_at,
            "attempts": s.attempts,
            "retries": s.retries,
            "check": s.check.as_ref().map(|c| json!({
                "revoked": c.revoked,
                "observed": c.observed,
                "at": c.at,
                "context": c.context,
            })),
            "error": s.error,
            "reason": s.reason,
            "note": s.note,
            "fields_required": p.fields,
            "fields": s.fields,
        });
        let obj = step.as_object_mut().expect("object");
        match &p.automated {
            Some(a) => {
                obj.insert("system".into(), json!(a.system));
                obj.insert("system_kind".into(), json!(a.kind));
                obj.insert("action".into(), json!(a.action));
                obj.insert("login".into(), json!(a.login));
                // The account acted on, by the system's own id: what every check read.
                obj.insert("account".into(), json!(s.account));
                // The state the first apply found just before changing it (for rollback).
                if let Some(before) = &s.before {
                    obj.insert("before".into(), before.clone());
                }
                obj.insert("revokes".into(), json!(a.revokes));
                obj.insert("destructive".into(), json!(a.destructive));
                obj.insert("actor".into(), json!(s.actor));
                obj.insert(
                    "requests".into(),
                    json!({
                        "planned": a.requests.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                        "made": s.applied.as_ref().map(|ap| ap.requests.clone()).unwrap_or_default(),
                    }),
                );
                obj.insert(
                    "applied".into(),
                    json!(s.applied.as_ref().map(|ap| json!({
                        "changed": ap.changed,
                        "summary": ap.summary,
                    }))),
                );
            }
            None => {
                obj.insert("manual".into(), json!(p.manual));
                obj.insert("confirmed_by".into(), json!(s.actor));
            }
        }
        steps.push(step);
    }

    let counts = state.counts();
    let mut count_map = serde_json::Map::new();
    for st in ALL_STATUSES {
        count_map.insert(
            status_name(st),
            json!(counts.get(&st).copied().unwrap_or(0)),
        );
    }
    // Time to revocation: when the automated `cut` steps were confirmed done.
    let cut_times: Vec<&str> = state
        .ordered()
        .filter(|(p, s)| p.phase == Phase::Cut && !p.is_manual() && s.status() == Status::Done)
        .filter_map(|(_, s)| s.finished_at.as_deref())
        .collect();
    let first_cut_at = cut_times.iter().min().copied();
    let last_cut_at = cut_times.iter().max().copied();
    let started = events.first().and_then(Event::time);
    let secs_to = |t: Option<&str>| -> Option<i64> {
        let t = chrono::DateTime::parse_from_rfc3339(t?).ok()?;
        Some((t.with_timezone(&chrono::Utc) - started?).num_seconds())
    };
    let summary = json!({
        "steps": state.facts.steps.len(),
        "counts": count_map,
        "complete": state.is_complete(),
        "started_at": state.started_at,
        "last_event_at": state.last_event_at,
        "first_cut_at": first_cut_at,
        "last_cut_at": last_cut_at,
        "seconds_to_first_cut": secs_to(first_cut_at),
        "seconds_to_last_cut": secs_to(last_cut_at),
        "latest_verify": state.last_verify.as_ref().map(|(at, holding, drift, errors)| json!({
            "at": at,
            "holding": holding,
            "drift": drift,
            "errors": errors,
        })),
    });

    let rollback = rollback_section(events);

    let event_values = events
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()
        .context("serializing events")?;

    let mut statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{
            "name": subject_name(events.len()),
            "digest": {"sha256": journal::sha256_hex(&bytes)},
            "annotations": {"file": journal::JOURNAL_FILE, "lines": events.len()},
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "revision": revision,
            "generated_at": journal::timestamp(journal::now()),
            "tool": {
                "name": env!("CARGO_PKG_NAME"),
                "version": env!("CARGO_PKG_VERSION"),
                "started_with": facts.tool,
            },
            "departure": departure,
            "legal_hold": {
                "active": state.hold.active,
                "history": state.hold.history,
                "blocked": state.hold.blocked,
            },
            "runbook": runbook,
            "signer": {
                "public_key": signer.public_line(),
                "fingerprint": signer.fingerprint(),
                "namespace": NAMESPACE,
            },
            "steps": steps,
            "events": event_values,
            "chain": {
                "head": last.hash,
                "length": events.len(),
                "genesis": journal::GENESIS,
                "algorithm": CHAIN_ALGORITHM,
            },
            "summary": summary,
        },
    });
    // Only a departure that was rolled back has the section (older evidence reads the same).
    if !rollback.is_null() {
        statement["predicate"]["rollback"] = rollback;
    }
    Ok(statement)
}

/// The departure's rollback, when one was run (`offboard rollback`, `start --plan`): its digest
/// and approvals, the steps it cancelled, and per undo step the pre-state, the state read back
/// after the restore, and how it ended (restored, not restorable and why, failed, by hand).
fn rollback_section(events: &[Event]) -> Value {
    let Some(rb) = crate::rollback::RollbackRun::replay(events) else {
        return Value::Null;
    };
    let plan = &rb.gate.plan;
    let steps: Vec<Value> = plan
        .undo
        .iter()
        .map(|u| {
            let st = rb.state(&u.step);
            let (undo, detail) = match &u.undo {
                crate::rollback::Undo::Restore { what } => ("restore", what.clone()),
                crate::rollback::Undo::NotRestorable { why } => ("not_restorable", why.clone()),
                crate::rollback::Undo::ByHand { instruction } => ("by_hand", instruction.clone()),
            };
            json!({
                "step": u.step,
                "system": u.system,
                "action": u.action,
                "account": u.account,
                "undo": undo,
                "detail": detail,
                "owner": u.owner,
                "requires": u.requires,
                "before": u.before,
                "after": st.check.as_ref().map(|c| c.after.clone()),
                "outcome": rb.outcome(u),
                "restored": st.check.as_ref().map(|c| c.restored),
                "observed": st.check.as_ref().map(|c| c.observed.clone()),
                "checked_at": st.check.as_ref().map(|c| c.at.clone()),
                "summary": st.restored.as_ref().map(|r| r.summary.clone()),
                "requests": st.restored.as_ref().map(|r| r.requests.clone()).unwrap_or_default(),
                "not_restorable": st.not_restorable,
                "error": st.error,
            })
        })
        .collect();
    let given: Vec<Value> = rb
        .approvals
        .iter()
        .map(|a| json!({"role": a.role, "principal": a.principal, "fingerprint": a.fingerprint}))
        .collect();
    json!({
        "plan_digest": rb.gate.digest,
        "started_at": rb.started_at,
        "journal_head": plan.journal_head,
        "journal_length": plan.journal_length,
        "approvals": given,
        "cancelled": plan.cancel.iter().map(|c| json!({
            "step": c.step,
            "was": c.status,
            "done": rb.cancelled.contains(&c.step),
        })).collect::<Vec<_>>(),
        "steps": steps,
        "complete": rb.is_complete(),
    })
}

/// The evidence file's bytes: pretty JSON, 2-space indent, trailing newline.
pub fn to_bytes(statement: &Value) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(statement).context("serializing evidence")?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// A written evidence revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Sealed {
    pub json_path: PathBuf,
    pub sig_path: PathBuf,
    pub revision: u32,
    /// sha256 hex of the evidence file's bytes.
    pub sha256: String,
}

/// `<file>.sig`.
pub fn sig_path(json_path: &Path) -> PathBuf {
    let mut s = json_path.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// The revision number recorded in an evidence file, if it is one.
fn revision_of(path: &Path) -> Option<u32> {
    let v: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    v.pointer("/predicate/revision")?
        .as_u64()
        .and_then(|r| u32::try_from(r).ok())
}

/// Write the next signed evidence revision for the journal's departure and record it in the
/// journal. An earlier `<id>.json` (and its `.sig`) is first moved to `<id>.rev<N>.json(.sig)`.
pub fn seal(state: &StateDir, journal: &mut Journal, key: &SigningKey) -> Result<Sealed> {
    let events = journal.events();
    let id = departure::facts(events)
        .context("the journal has no departure_started event")?
        .id
        .clone();
    if !crate::state::is_valid_id(&id) {
        bail!("the journal's departure id {id:?} is not a valid id");
    }
    let previous = events
        .iter()
        .filter(|e| matches!(e.record, Record::EvidenceWritten { .. }))
        .count() as u32;
    let revision = previous + 1;
    let statement = build(events, revision, key)?;
    let bytes = to_bytes(&statement)?;
    let signature = key.sign(&bytes)?;

    let dir = state.departure_dir(&id);
    crate::state::create_private_dir(&dir)?;
    let file = format!("{id}.json");
    let json_path = dir.join(&file);
    let sig = sig_path(&json_path);
    // A link planted at either name is refused before anything is moved or written.
    crate::state::refuse_symlink(&json_path)?;
    crate::state::refuse_symlink(&sig)?;

    if json_path.exists() {
        // An existing file of the same (or a later) revision is left over from a seal that
        // stopped before recording it in the journal: it was never part of the record, so it is
        // replaced. Anything earlier is kept as an archived revision.
        match revision_of(&json_path) {
            Some(old) if old < revision => {
                let archived = dir.join(format!("{id}.rev{old}.json"));
                std::fs::rename(&json_path, &archived).with_context(|| {
                    format!(
                        "archiving {} to {}",
                        json_path.display(),
                        archived.display()
                    )
                })?;
                if sig.exists() {
                    let archived_sig = sig_path(&archived);
                    std::fs::rename(&sig, &archived_sig).with_context(|| {
                        format!("archiving {} to {}", sig.display(), archived_sig.display())
                    })?;
                }
                crate::state::fsync_parent(&json_path)?;
            }
            Some(_) => {}
            None => {
                let aside = dir.join(format!(
                    "{id}.unreadable-{}.json",
                    journal::now().timestamp()
                ));
                std::fs::rename(&json_path, &aside)
                    .with_context(|| format!("moving unreadable {} aside", json_path.display()))?;
            }
        }
    }

    crate::state::write_atomic(&json_path, &bytes)
        .with_context(|| format!("writing evidence {}", json_path.display()))?;
    crate::state::write_atomic(&sig, signature.as_bytes())
        .with_context(|| format!("writing signature {}", sig.display()))?;
    crate::store::put_evidence(&dir, revision, &bytes, signature.as_bytes())?;
    let sha256 = journal::sha256_hex(&bytes);
    journal.append(
        None,
        Record::EvidenceWritten {
            revision,
            file,
            sha256: sha256.clone(),
        },
    )?;
    Ok(Sealed {
        json_path,
        sig_path: sig,
        revision,
        sha256,
    })
}

/// Counts of steps per status name, from a statement's `summary.counts`.
pub(crate) fn counts_of(statement: &Value) -> BTreeMap<String, u64> {
    statement
        .pointer("/predicate/summary/counts")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests;
