//! Four-eyes approval: a plan's digest, approvals signed over it (SSHSIG, namespace
//! `offboard-approval`), and the runbook's rule of which roles must approve which steps.
//!
//! The digest is the sha256 of the canonical JSON (keys sorted, no spaces) of a
//! [`PlanPayload`]: the departure facts (user, type, effective time, inputs, ticket, legal
//! hold), the runbook's name and sha256, and every step with its system, action, login,
//! resolved parameters, destructiveness, manual instruction and the roles it needs. Anything
//! else (the departure id, deadlines, API request lines) is left out. An approval signs the line
//! [`message`], which names the role as well as the digest, so a signature given for one role
//! cannot be presented for another.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ssh_key::{HashAlg, PublicKey, SshSig};

use crate::departure::{DepartureFacts, DepartureType};
use crate::evidence::AllowedSigners;

/// The SSHSIG namespace approvals are signed in (`ssh-keygen -Y verify -n offboard-approval`).
pub const NAMESPACE: &str = "offboard-approval";
/// The `format` of a plan file.
pub const PLAN_FORMAT: &str = "offboard-plan/1";

/// Who approves.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Manager,
    Hr,
    Security,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Manager, Role::Hr, Role::Security];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Hr => "hr",
            Role::Security => "security",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The runbook's `[approvals]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsDef {
    /// An OpenSSH allowed_signers file (relative to the runbook's directory) naming which keys
    /// may approve in which role: principals `<role>:<name>` (e.g. `security:carol@corp.example`)
    /// with `namespaces="offboard-approval"`.
    pub allowed_signers: String,
    /// Roles every automated step needs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub all: Vec<Role>,
    /// Roles every destructive step needs (delete user, wipe data…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destructive: Vec<Role>,
    /// Roles every automated step of an involuntary departure needs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub involuntary: Vec<Role>,
    /// Roles named steps need, by step id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub steps: BTreeMap<String, Vec<Role>>,
    /// Roles every restore of a rollback plan needs (`offboard rollback --out`, docs/rollback.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback: Vec<Role>,
}

impl ApprovalsDef {
    /// The roles each automated step of `facts` needs (steps needing none are left out).
    pub fn required(&self, facts: &DepartureFacts) -> BTreeMap<String, Vec<Role>> {
        let mut out = BTreeMap::new();
        for s in &facts.steps {
            let Some(a) = &s.automated else { continue };
            let mut roles: Vec<Role> = self.all.clone();
            if a.destructive || s.held {
                roles.extend(&self.destructive);
            }
            if facts.departure_type == DepartureType::Involuntary {
                roles.extend(&self.involuntary);
            }
            if let Some(r) = self.steps.get(&s.id) {
                roles.extend(r);
            }
            roles.sort();
            roles.dedup();
            if !roles.is_empty() {
                out.insert(s.id.clone(), roles);
            }
        }
        out
    }
}

/// What a departure started from an approved plan carries in its facts (and so in the journal
/// and the evidence): the digest, the roles each step needs, and where the plan and the
/// approvers' allowed_signers file are (so `resume` picks up approvals given later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalGate {
    /// sha256 hex of the plan's canonical payload.
    pub digest: String,
    /// The plan file (`.sig` files are looked for beside it).
    pub plan_file: String,
    /// The allowed_signers file the approvers' keys were checked against.
    pub allowed_signers: String,
    #[serde(default)]
    pub required: BTreeMap<String, Vec<Role>>,
}

/// One approval, as journaled (`approved`) and embedded in the evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub role: Role,
    /// The allowed_signers principal that allowed the key (`security:carol@corp.example`).
    pub principal: String,
    /// `SHA256:…` of the approver's key.
    pub fingerprint: String,
    /// The plan digest signed.
    pub digest: String,
    /// The armored SSHSIG over [`message`].
    pub signature: String,
}

/// One step as the digest sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadStep {
    pub id: String,
    pub system: Option<String>,
    pub action: Option<String>,
    pub login: Option<String>,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub destructive: bool,
    pub manual: Option<String>,
    /// The roles that must approve it.
    pub requires: Vec<Role>,
}

/// Everything the digest covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanPayload {
    pub user: String,
    #[serde(rename = "type")]
    pub departure_type: DepartureType,
    pub effective_at: String,
    pub inputs: BTreeMap<String, String>,
    pub ticket: Option<String>,
    pub legal_hold: bool,
    pub runbook_name: String,
    pub runbook_sha256: String,
    pub steps: Vec<PayloadStep>,
}

impl PlanPayload {
    pub fn new(facts: &DepartureFacts, required: &BTreeMap<String, Vec<Role>>) -> PlanPayload {
        PlanPayload {
            user: facts.user.clone(),
            departure_type: facts.departure_type,
            effective_at: facts.effective_at.clone(),
            inputs: facts.inputs.clone(),
            ticket: facts.ticket.clone(),
            legal_hold: facts.legal_hold,
            runbook_name: facts.runbook.name.clone(),
            runbook_sha256: facts.runbook.sha256.clone(),
            steps: facts
                .steps
                .iter()
                .map(|s| PayloadStep {
                    id: s.id.clone(),
                    system: s.automated.as_ref().map(|a| a.system.clone()),
                    action: s.automated.as_ref().map(|a| a.action.clone()),
                    login: s.automated.as_ref().map(|a| a.login.clone()),
                    params: s
                        .automated
                        .as_ref()
                        .map(|a| a.params.clone())
                        .unwrap_or_default(),
                    destructive: s.held || s.automated.as_ref().is_some_and(|a| a.destructive),
                    manual: s.manual.clone(),
                    requires: required.get(&s.id).cloned().unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// The canonical JSON the digest is computed over.
    pub fn canonical(&self) -> String {
        crate::journal::canonical_json(&serde_json::to_value(self).expect("plain data"))
    }

    pub fn digest(&self) -> String {
        crate::journal::sha256_hex(self.canonical().as_bytes())
    }

    /// What differs between an approved payload (`self`) and the one built now, in words.
    pub fn differences(&self, now: &PlanPayload) -> Vec<String> {
        let mut out = Vec::new();
        if self.runbook_sha256 != now.runbook_sha256 {
            out.push(format!(
                "the runbook changed (sha256 {} when approved, {} now)",
                short(&self.runbook_sha256),
                short(&now.runbook_sha256)
            ));
        }
        let scalar = [
            ("user", self.user.clone(), now.user.clone()),
            (
                "type",
                self.departure_type.as_str().into(),
                now.departure_type.as_str().into(),
            ),
            (
                "effective time",
                self.effective_at.clone(),
                now.effective_at.clone(),
            ),
            (
                "ticket",
                self.ticket.clone().unwrap_or_default(),
                now.ticket.clone().unwrap_or_default(),
            ),
            (
                "legal hold",
                self.legal_hold.to_string(),
                now.legal_hold.to_string(),
            ),
            (
                "runbook name",
                self.runbook_name.clone(),
                now.runbook_name.clone(),
            ),
        ];
        for (what, was, is) in scalar {
            if was != is {
                out.push(format!("{what}: {was:?} when approved, {is:?} now"));
            }
        }
        let keys: std::collections::BTreeSet<&String> =
            self.inputs.keys().chain(now.inputs.keys()).collect();
        for k in keys {
            let (was, is) = (self.inputs.get(k), now.inputs.get(k));
            if was != is {
                out.push(format!(
                    "input {k}: {} when approved, {} now",
                    was.map_or("unset".into(), |v| format!("{v:?}")),
                    is.map_or("unset".into(), |v| format!("{v:?}"))
                ));
            }
        }
        for s in &self.steps {
            match now.steps.iter().find(|n| n.id == s.id) {
                None => out.push(format!("step {}: in the approved plan, not now", s.id)),
                Some(n) if n != s => {
                    let mut parts = Vec::new();
                    if n.system != s.system || n.action != s.action || n.login != s.login {
                        parts.push("system, action or login");
                    }
                    if n.params != s.params {
                        parts.push("params");
                    }
                    if n.destructive != s.destructive {
                        parts.push("destructive");
                    }
                    if n.manual != s.manual {
                        parts.push("manual instruction");
                    }
                    if n.requires != s.requires {
                        parts.push("required approvals");
                    }
                    out.push(format!("step {}: {} changed", s.id, parts.join(", ")));
                }
                Some(_) => {}
            }
        }
        for n in &now.steps {
            if !self.steps.iter().any(|s| s.id == n.id) {
                out.push(format!("step {}: new, not in the approved plan", n.id));
            }
        }
        if out.is_empty()
            && self
                .steps
                .iter()
                .map(|s| &s.id)
                .ne(now.steps.iter().map(|s| &s.id))
        {
            out.push("the steps' order changed".into());
        }
        out
    }
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(12)]
}

/// The plan file `offboard plan --out` writes and `approve` / `start --plan` read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    pub format: String,
    /// sha256 hex of `payload`'s canonical JSON.
    pub digest: String,
    /// The runbook file the plan was made from (absolute).
    pub runbook_path: String,
    pub payload: PlanPayload,
}

impl PlanFile {
    pub fn read(path: &Path) -> anyhow::Result<PlanFile> {
        use anyhow::Context;
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let plan: PlanFile = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not an offboard plan file", path.display()))?;
        if plan.format != PLAN_FORMAT {
            anyhow::bail!(
                "{} has format {:?}; this offboard reads {PLAN_FORMAT:?}",
                path.display(),
                plan.format
            );
        }
        let actual = plan.payload.digest();
        if actual != plan.digest {
            anyhow::bail!(
                "{} was edited: its digest says {} but its content hashes to {}",
                path.display(),
                plan.digest,
                actual
            );
        }
        Ok(plan)
    }
}

/// The exact bytes an approver signs.
pub fn message(role: Role, digest: &str) -> String {
    format!("offboard-approval v1 role={role} plan=sha256:{digest}\n")
}

/// `<plan>.<role>.sig`, beside the plan file.
pub fn sig_path(plan: &Path, role: Role) -> PathBuf {
    let mut name = plan.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{role}.sig"));
    plan.with_file_name(name)
}

/// Why an approval is not accepted.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ApprovalError {
    #[error("the {role} approval is not an SSH signature: {reason}")]
    Format { role: Role, reason: String },
    #[error("the {role} approval was signed in namespace {found:?}, not \"{NAMESPACE}\"")]
    Namespace { role: Role, found: String },
    #[error("the {role} approval's signature does not match this plan (digest {digest}) and role")]
    BadSignature { role: Role, digest: String },
    #[error(
        "the {role} approval is by key {fingerprint}, which {file} does not allow to approve as {role}"
    )]
    NotAllowed {
        role: Role,
        fingerprint: String,
        file: String,
    },
    #[error(
        "one key ({fingerprint}) approved as both {first} and {second}: one person cannot fill two roles"
    )]
    SameKey {
        fingerprint: String,
        first: Role,
        second: Role,
    },
}

/// Check that `armored` is an SSHSIG in [`NAMESPACE`] over [`message`]`(role, digest)`; returns
/// the signer's public key.
pub fn check_signature(
    armored: &str,
    role: Role,
    digest: &str,
) -> Result<PublicKey, ApprovalError> {
    let sig = SshSig::from_pem(armored.as_bytes()).map_err(|e| ApprovalError::Format {
        role,
        reason: e.to_string(),
    })?;
    if sig.namespace() != NAMESPACE {
        return Err(ApprovalError::Namespace {
            role,
            found: sig.namespace().to_string(),
        });
    }
    let key = PublicKey::new(sig.public_key().clone(), "");
    key.verify(NAMESPACE, message(role, digest).as_bytes(), &sig)
        .map_err(|_| ApprovalError::BadSignature {
            role,
            digest: digest.to_string(),
        })?;
    Ok(key)
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The principal of `signers` that lets `key` approve as `role` now: an entry for that key with
/// a principal `<role>:<name>` and a `namespaces` option that allows [`NAMESPACE`] (an entry
/// with no `namespaces` is an evidence key, not an approver).
pub fn allowed_principal(signers: &AllowedSigners, key: &PublicKey, role: Role) -> Option<String> {
    let prefix = format!("{role}:");
    let now = crate::journal::now().timestamp();
    signers
        .entries
        .iter()
        .filter(|e| !e.cert_authority && e.key.key_data() == key.key_data())
        .filter(|e| e.namespaces.is_some() && e.refusal(NAMESPACE, now).is_none())
        .find_map(|e| {
            e.principals
                .iter()
                .find(|p| {
                    p.starts_with(&prefix) && p.len() > prefix.len() && !p.contains(['*', '?', '!'])
                })
                .cloned()
        })
}

/// Check one approval against the plan digest and the allowed_signers file.
pub fn accept(
    armored: &str,
    role: Role,
    digest: &str,
    signers: &AllowedSigners,
) -> Result<Approval, ApprovalError> {
    let key = check_signature(armored, role, digest)?;
    let principal =
        allowed_principal(signers, &key, role).ok_or_else(|| ApprovalError::NotAllowed {
            role,
            fingerprint: fingerprint(&key),
            file: signers.source.display().to_string(),
        })?;
    Ok(Approval {
        role,
        principal,
        fingerprint: fingerprint(&key),
        digest: digest.to_string(),
        signature: armored.to_string(),
    })
}

/// One key may fill one role only.
pub fn check_distinct(approvals: &[Approval]) -> Result<(), ApprovalError> {
    for (i, a) in approvals.iter().enumerate() {
        if let Some(b) = approvals[..i]
            .iter()
            .find(|b| b.fingerprint == a.fingerprint && b.role != a.role)
        {
            return Err(ApprovalError::SameKey {
                fingerprint: a.fingerprint.clone(),
                first: b.role,
                second: a.role,
            });
        }
    }
    Ok(())
}

/// Re-check the approvals a journal records (what `evidence verify` does): the digest in the
/// facts is the digest of the facts' own plan, and every approval is a valid signature over it,
/// for its role, by the key it names, with no key in two roles. Trust in the approvers' keys
/// was checked against the allowed_signers file at the time; it is not needed here.
pub fn verify_recorded(facts: &DepartureFacts, approvals: &[Approval]) -> Result<(), String> {
    let Some(gate) = &facts.approval else {
        if approvals.is_empty() {
            return Ok(());
        }
        return Err("the journal records approvals, but its departure was not started from an approved plan".into());
    };
    let digest = PlanPayload::new(facts, &gate.required).digest();
    if digest != gate.digest {
        return Err(format!(
            "the departure's plan hashes to {digest}, not to the approved digest {}",
            gate.digest
        ));
    }
    for a in approvals {
        if a.digest != gate.digest {
            return Err(format!(
                "the {} approval is for plan {}, not {}",
                a.role, a.digest, gate.digest
            ));
        }
        let key = check_signature(&a.signature, a.role, &gate.digest).map_err(|e| e.to_string())?;
        if fingerprint(&key) != a.fingerprint {
            return Err(format!(
                "the {} approval names key {} but was signed by {}",
                a.role,
                a.fingerprint,
                fingerprint(&key)
            ));
        }
    }
    check_distinct(approvals).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
