//! `offboard report`: metrics over the departures in the state dir, from their journals alone.
//!
//! Each journal is read with its hash chain checked ([`Journal::read`]) and replayed
//! ([`DepartureState::replay`]); a journal whose chain is broken is listed as damaged and counted
//! in nothing else. What is measured, and how:
//!
//! - **time to revocation**: from the departure's effective time to the moment every automated
//!   `cut` step whose check proves access gone was first confirmed revoked by a run (`start` or
//!   `resume`; a `verify` re-check does not move it). Per system: to the last of that system's
//!   cut steps. A departure cut before its effective time counts 0. Departures (or systems) whose
//!   cut steps are not all confirmed have no time and are counted as `not_revoked`.
//!   Percentiles by nearest rank ([`metrics::PERCENTILE_METHOD`]).
//! - **manual steps** by lane and by owner: how many, settled (done or not applicable), open,
//!   overdue at the report's time (as `status` counts them, after the 15-minute grace).
//! - **assets**: manual steps that ask for an asset field (a name containing `asset`, `serial`,
//!   `tracking` or `imei`); recovered when done, with the values recorded on confirm, except
//!   when confirmed `disposition = lost`. The asset lane's dispositions are counted from that
//!   field, and retired assets with an `itad_certificate`.
//! - **licences**: automated steps whose action frees a licence or seat ([`LICENCE_ACTIONS`]),
//!   and the SKUs freed, counted from `applied.licences_freed` where the action records it
//!   (entra `remove_licenses`); a done step whose applies record none (sandbox `remove_seat`,
//!   or a journal from before the field) is counted as unrecorded, never guessed from prose.
//! - **drift**: `verify` re-checks that found access back (revoked = false) on a step a run had
//!   confirmed revoked.
//! - **legal holds**: in force now, ever placed, destructive steps blocked.
//!
//! The renderings are in [`text`] (table, CSV) and [`html`]; JSON is [`Report`] serialized.

pub mod html;
pub mod metrics;
pub mod text;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::departure::{DepartureState, Status};
use crate::journal::{self, Event, Record};
use crate::runbook::Phase;
use crate::state::StateDir;
use metrics::{Bucket, Stats};

/// The version of the JSON layout; bumped only when a field changes meaning or goes away.
pub const REPORT_VERSION: u32 = 1;

/// Actions that free a licence or a seat.
pub const LICENCE_ACTIONS: &[&str] = &["remove_licenses", "remove_seat"];

/// Whether a manual step field records an asset (a tag, a serial, a tracking number, an IMEI).
pub fn is_asset_field(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["asset", "serial", "tracking", "imei"]
        .iter()
        .any(|k| n.contains(k))
}

/// How the report is asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only departures effective at or after this time.
    pub since: Option<DateTime<Utc>>,
    pub sla_seconds: i64,
    /// The report's time: overdue is counted at it.
    pub now: DateTime<Utc>,
}

/// A departure whose journal could not be read or whose chain is broken: listed, not counted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Damaged {
    pub departure: String,
    pub error: String,
}

/// One departure, read and replayed.
pub struct Loaded {
    pub events: Vec<Event>,
    pub state: DepartureState,
}

/// Read every departure in the state dir, newest first; damaged journals apart.
pub fn load(state: &StateDir) -> anyhow::Result<(Vec<Loaded>, Vec<Damaged>)> {
    let mut loaded = Vec::new();
    let mut damaged = Vec::new();
    for id in state.departure_ids()? {
        // The chain is checked as `Journal::read` checks it (a torn last line, a write cut off
        // by a crash, is left out); the error names the line, not the path, so the report reads
        // the same wherever the state dir is.
        let events = crate::state::read_nofollow(&state.journal_path(&id))
            .map_err(|e| format!("cannot read its journal: {e}"))
            .and_then(|bytes| {
                let (complete, _torn) = journal::split_torn_tail(&bytes);
                journal::check_lines(complete).map_err(|e| format!("its journal is damaged: {e}"))
            });
        match events {
            Ok(events) => match DepartureState::replay(&events) {
                Some(st) => loaded.push(Loaded { events, state: st }),
                None => damaged.push(Damaged {
                    departure: id,
                    error: "its journal has no departure_started event".into(),
                }),
            },
            Err(error) => damaged.push(Damaged {
                departure: id,
                error,
            }),
        }
    }
    Ok((loaded, damaged))
}

/// The whole report. Its JSON form is documented in README.md ("Reports").
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub report_version: u32,
    pub generated_at: String,
    /// `--since`, when given: departures effective before it are left out.
    pub since: Option<String>,
    pub sla_seconds: i64,
    pub percentile_method: &'static str,
    pub departures: Counts,
    /// Journals not counted: unreadable, or their hash chain is broken.
    pub damaged: Vec<Damaged>,
    pub time_to_revocation: Revocation,
    pub manual_steps: ManualSteps,
    pub assets: Assets,
    pub licences: Licences,
    pub drift: Drift,
    pub legal_holds: LegalHolds,
    /// Month by month (of the effective time), every month from the first to the last.
    pub months: Vec<Month>,
    /// One per departure counted, newest first.
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    pub total: usize,
    /// `voluntary`, `involuntary`: each type present.
    pub by_type: BTreeMap<String, usize>,
    /// Every step done or not applicable.
    pub complete: usize,
    pub completion_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Revocation {
    pub overall: Stats,
    pub by_system: BTreeMap<String, Stats>,
    /// Departures with no automated cut step: not in `overall`.
    pub no_cut_steps: usize,
    pub histogram: Vec<Bucket>,
}

/// Manual steps of one lane or one owner.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Group {
    pub steps: usize,
    /// Done or not applicable.
    pub settled: usize,
    pub open: usize,
    pub overdue: usize,
    pub completion_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManualSteps {
    pub total: Group,
    pub by_lane: BTreeMap<String, Group>,
    /// By owner; steps with no owner under `(no owner)`.
    pub by_owner: BTreeMap<String, Group>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AssetItem {
    pub departure: String,
    pub user: String,
    pub step: String,
    pub field: String,
    pub value: String,
    /// When the step was confirmed, and by whom.
    pub at: Option<String>,
    pub by: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Assets {
    /// Manual steps that ask for an asset field (not applicable ones left out).
    pub steps: usize,
    pub recovered: usize,
    pub outstanding: usize,
    /// Done steps confirmed with `disposition = lost`: settled, but not recovered.
    pub lost: usize,
    /// Recovered of those asked for (lost ones count as not recovered).
    pub return_rate: Option<f64>,
    /// The asset lane's `disposition` on done steps (`redeploy`, `repair`, `retire`, `lost`) →
    /// how many.
    pub dispositions: BTreeMap<String, usize>,
    /// Retired assets confirmed with an ITAD certificate number.
    pub itad_certificates: usize,
    pub items: Vec<AssetItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Licences {
    pub actions: &'static [&'static str],
    pub steps_done: usize,
    pub steps_open: usize,
    /// SKU (as the provider names it) → how many times it was freed.
    pub skus_freed: BTreeMap<String, usize>,
    /// Done licence steps whose applies record no SKUs (an action that does not record them,
    /// or a journal from before they were recorded): freed, but which SKUs is not known.
    pub steps_unrecorded: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftFinding {
    pub departure: String,
    pub user: String,
    pub step: String,
    pub system: String,
    pub found_at: String,
    pub observed: String,
    /// Revoked again since by a run (`resume`).
    pub fixed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    /// Departures `verify` has re-checked at least once.
    pub departures_swept: usize,
    pub departures_with_drift: usize,
    pub findings: Vec<DriftFinding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HoldRow {
    pub departure: String,
    pub user: String,
    pub active: bool,
    /// The latest change: who, when and why.
    pub at: String,
    pub by: String,
    pub reason: String,
    pub blocked_steps: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct LegalHolds {
    pub active: usize,
    /// Departures that were ever under a hold.
    pub ever: usize,
    pub blocked_steps: usize,
    pub departures: Vec<HoldRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Month {
    /// `YYYY-MM`.
    pub month: String,
    pub departures: usize,
    pub revoked: usize,
    pub within_sla: usize,
    pub p50_seconds: Option<i64>,
}

/// Whether a departure's access is all confirmed cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cut {
    Revoked,
    NotRevoked,
    NoCutSteps,
}

impl Cut {
    pub fn as_str(self) -> &'static str {
        match self {
            Cut::Revoked => "revoked",
            Cut::NotRevoked => "not_revoked",
            Cut::NoCutSteps => "no_cut_steps",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub departure: String,
    pub user: String,
    #[serde(rename = "type")]
    pub departure_type: String,
    pub effective_at: String,
    pub month: String,
    pub complete: bool,
    pub legal_hold: bool,
    pub cut: Cut,
    pub seconds_to_revocation: Option<i64>,
    pub within_sla: Option<bool>,
    /// Per system: seconds to revocation, or null when not all its cut steps are confirmed.
    pub systems: BTreeMap<String, Option<i64>>,
    pub steps: usize,
    pub steps_settled: usize,
    pub manual_open: usize,
    pub manual_overdue: usize,
    pub assets_recovered: usize,
    pub assets_outstanding: usize,
    pub licence_steps_done: usize,
    pub drift_findings: usize,
}

/// The SKUs freed for a person, each value through `esc`: `EMS (efcc…) ×2, …`, and the steps
/// that record none.
pub fn skus_text(l: &Licences, esc: &dyn Fn(&str) -> String) -> String {
    let mut parts: Vec<String> = l
        .skus_freed
        .iter()
        .map(|(sku, n)| format!("{} ×{n}", esc(sku)))
        .collect();
    if parts.is_empty() {
        parts.push("none recorded".into());
    }
    if l.steps_unrecorded > 0 {
        parts.push(format!(
            "not recorded for {} step(s) (their action does not name the SKUs)",
            l.steps_unrecorded
        ));
    }
    parts.join(", ")
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// When the departure takes effect (its start, if the effective time does not parse).
fn effective(st: &DepartureState) -> Option<DateTime<Utc>> {
    parse_time(&st.facts.effective_at).or_else(|| parse_time(&st.started_at))
}

/// Seconds from the effective time to the revocation of each system's cut steps, and overall.
fn revocation(events: &[Event], st: &DepartureState) -> (Cut, BTreeMap<String, Option<i64>>) {
    let Some(eff) = effective(st) else {
        return (Cut::NoCutSteps, BTreeMap::new());
    };
    // The first confirmation by a run of each step.
    let mut first: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    for e in events {
        if let (
            Some(step),
            Record::Checked {
                revoked: true,
                context,
                ..
            },
        ) = (&e.step, &e.record)
            && context != "verify"
            && let Some(t) = e.time()
        {
            first.entry(step.as_str()).or_insert(t);
        }
    }
    let mut systems: BTreeMap<String, Option<i64>> = BTreeMap::new();
    for (planned, state) in st.ordered() {
        let Some(auto) = &planned.automated else {
            continue;
        };
        if planned.phase != Phase::Cut || !auto.revokes || state.status() == Status::NotApplicable {
            continue;
        }
        let secs = first
            .get(planned.id.as_str())
            .map(|t| (*t - eff).num_seconds().max(0));
        let entry = systems.entry(auto.system.clone()).or_insert(Some(0));
        *entry = match (*entry, secs) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    let cut = if systems.is_empty() {
        Cut::NoCutSteps
    } else if systems.values().all(Option::is_some) {
        Cut::Revoked
    } else {
        Cut::NotRevoked
    };
    (cut, systems)
}

/// Verify re-checks that found access back on a step a run had confirmed revoked.
fn drift(events: &[Event], st: &DepartureState) -> Vec<DriftFinding> {
    let mut done: BTreeMap<&str, bool> = BTreeMap::new();
    let mut out: Vec<DriftFinding> = Vec::new();
    for e in events {
        let (
            Some(step),
            Record::Checked {
                revoked,
                context,
                observed,
                ..
            },
        ) = (&e.step, &e.record)
        else {
            continue;
        };
        if context == "verify" {
            if !*revoked && done.get(step.as_str()).copied().unwrap_or(false) {
                let system = st
                    .step(step)
                    .and_then(|(p, _)| p.automated.as_ref())
                    .map(|a| a.system.clone())
                    .unwrap_or_default();
                out.push(DriftFinding {
                    departure: st.facts.id.clone(),
                    user: st.facts.user.clone(),
                    step: step.clone(),
                    system,
                    found_at: e.ts.clone(),
                    observed: observed.clone(),
                    fixed: false,
                });
            }
        } else {
            if *revoked {
                for f in out.iter_mut().filter(|f| &f.step == step) {
                    f.fixed = true;
                }
            }
            done.insert(step.as_str(), *revoked);
        }
    }
    out
}

fn month_of(t: DateTime<Utc>) -> String {
    t.format("%Y-%m").to_string()
}

/// Every month from `first` to `last`, inclusive.
fn months_between(first: &str, last: &str) -> Vec<String> {
    let parse = |m: &str| -> Option<(i32, u32)> {
        let (y, mo) = m.split_once('-')?;
        Some((y.parse().ok()?, mo.parse().ok()?))
    };
    let (Some((mut y, mut m)), Some(end)) = (parse(first), parse(last)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while (y, m) <= end && out.len() < 1200 {
        out.push(format!("{y:04}-{m:02}"));
        m += 1;
        if m > 12 {
            m = 1;
            y += 1;
        }
    }
    out
}

fn add(g: &mut Group, status: Status, overdue: bool) {
    g.steps += 1;
    if status.is_settled() {
        g.settled += 1;
    } else {
        g.open += 1;
    }
    if overdue {
        g.overdue += 1;
    }
}

fn finish(g: &mut Group) {
    g.completion_rate = metrics::rate(g.settled, g.steps);
}

/// Build the report from the departures read.
pub fn build(loaded: &[Loaded], damaged: Vec<Damaged>, opts: &Options) -> Report {
    let sla = opts.sla_seconds;
    let counted: Vec<&Loaded> = loaded
        .iter()
        .filter(|l| match (opts.since, effective(&l.state)) {
            (Some(since), Some(eff)) => eff >= since,
            _ => true,
        })
        .collect();

    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    let mut complete = 0;
    let mut overall: Vec<i64> = Vec::new();
    let mut not_revoked = 0;
    let mut no_cut = 0;
    let mut per_system: BTreeMap<String, (Vec<i64>, usize)> = BTreeMap::new();
    let mut manual = ManualSteps {
        total: Group::default(),
        by_lane: BTreeMap::new(),
        by_owner: BTreeMap::new(),
    };
    let mut assets = Assets {
        steps: 0,
        recovered: 0,
        outstanding: 0,
        lost: 0,
        return_rate: None,
        dispositions: BTreeMap::new(),
        itad_certificates: 0,
        items: Vec::new(),
    };
    let mut licences = Licences {
        actions: LICENCE_ACTIONS,
        steps_done: 0,
        steps_open: 0,
        skus_freed: BTreeMap::new(),
        steps_unrecorded: 0,
    };
    let mut drift_all = Drift {
        departures_swept: 0,
        departures_with_drift: 0,
        findings: Vec::new(),
    };
    let mut holds = LegalHolds {
        active: 0,
        ever: 0,
        blocked_steps: 0,
        departures: Vec::new(),
    };
    let mut by_month: BTreeMap<String, (usize, Vec<i64>)> = BTreeMap::new();
    let mut rows = Vec::new();

    for l in &counted {
        let st = &l.state;
        let f = &st.facts;
        *by_type
            .entry(f.departure_type.as_str().to_string())
            .or_default() += 1;
        if st.is_complete() {
            complete += 1;
        }
        let (cut, systems) = revocation(&l.events, st);
        let seconds = match cut {
            Cut::Revoked => systems.values().filter_map(|s| *s).max(),
            _ => None,
        };
        match cut {
            Cut::Revoked => overall.extend(seconds),
            Cut::NotRevoked => not_revoked += 1,
            Cut::NoCutSteps => no_cut += 1,
        }
        for (system, secs) in &systems {
            let e = per_system.entry(system.clone()).or_default();
            match secs {
                Some(s) => e.0.push(*s),
                None => e.1 += 1,
            }
        }
        let month = effective(st).map(month_of).unwrap_or_default();
        let m = by_month.entry(month.clone()).or_default();
        m.0 += 1;
        m.1.extend(seconds);

        let mut row_open = 0;
        let mut row_overdue = 0;
        let mut row_recovered = 0;
        let mut row_outstanding = 0;
        let mut row_licences = 0;
        for (planned, state) in st.ordered() {
            let status = state.status();
            if let Some(auto) = &planned.automated {
                if LICENCE_ACTIONS.contains(&auto.action.as_str()) {
                    if status == Status::Done {
                        licences.steps_done += 1;
                        row_licences += 1;
                        let mut recorded = false;
                        for e in l
                            .events
                            .iter()
                            .filter(|e| e.step.as_ref() == Some(&planned.id))
                        {
                            if let Record::Applied {
                                licences_freed: Some(freed),
                                ..
                            } = &e.record
                            {
                                recorded = true;
                                for sku in freed {
                                    *licences.skus_freed.entry(sku.clone()).or_default() += 1;
                                }
                            }
                        }
                        if !recorded {
                            licences.steps_unrecorded += 1;
                        }
                    } else if !status.is_settled() {
                        licences.steps_open += 1;
                    }
                }
                continue;
            }
            let overdue = planned.is_overdue(status, opts.now);
            add(&mut manual.total, status, overdue);
            add(
                manual
                    .by_lane
                    .entry(planned.lane.as_str().to_string())
                    .or_default(),
                status,
                overdue,
            );
            add(
                manual
                    .by_owner
                    .entry(planned.owner.clone().unwrap_or_else(|| "(no owner)".into()))
                    .or_default(),
                status,
                overdue,
            );
            if !status.is_settled() {
                row_open += 1;
            }
            if overdue {
                row_overdue += 1;
            }
            let asks_asset = planned.fields.iter().any(|k| is_asset_field(k))
                || state.fields.keys().any(|k| is_asset_field(k));
            if asks_asset && status != Status::NotApplicable {
                assets.steps += 1;
                let disposition = state
                    .fields
                    .get("disposition")
                    .map(|d| d.trim().to_ascii_lowercase())
                    .filter(|d| !d.is_empty());
                if status == Status::Done
                    && let Some(d) = &disposition
                {
                    *assets.dispositions.entry(d.clone()).or_default() += 1;
                    if d == "retire"
                        && state
                            .fields
                            .get("itad_certificate")
                            .is_some_and(|c| !c.trim().is_empty())
                    {
                        assets.itad_certificates += 1;
                    }
                }
                if status == Status::Done && disposition.as_deref() == Some("lost") {
                    assets.lost += 1;
                } else if status == Status::Done {
                    assets.recovered += 1;
                    row_recovered += 1;
                    for (k, v) in state.fields.iter().filter(|(k, _)| is_asset_field(k)) {
                        assets.items.push(AssetItem {
                            departure: f.id.clone(),
                            user: f.user.clone(),
                            step: planned.id.clone(),
                            field: k.clone(),
                            value: v.clone(),
                            at: state.finished_at.clone(),
                            by: state.actor.clone(),
                        });
                    }
                } else {
                    assets.outstanding += 1;
                    row_outstanding += 1;
                }
            }
        }

        let findings = drift(&l.events, st);
        if st.last_verify.is_some() {
            drift_all.departures_swept += 1;
        }
        if !findings.is_empty() {
            drift_all.departures_with_drift += 1;
        }
        let row_drift = findings.len();
        drift_all.findings.extend(findings);

        if let Some(last) = st.hold.history.last() {
            holds.ever += 1;
            if st.hold.active {
                holds.active += 1;
            }
            holds.blocked_steps += st.hold.blocked.len();
            holds.departures.push(HoldRow {
                departure: f.id.clone(),
                user: f.user.clone(),
                active: st.hold.active,
                at: last.at.clone(),
                by: last.by.clone(),
                reason: last.reason.clone(),
                blocked_steps: st.hold.blocked.len(),
            });
        }

        let counts = st.counts();
        rows.push(Row {
            departure: f.id.clone(),
            user: f.user.clone(),
            departure_type: f.departure_type.as_str().to_string(),
            effective_at: f.effective_at.clone(),
            month,
            complete: st.is_complete(),
            legal_hold: st.hold.active,
            cut,
            seconds_to_revocation: seconds,
            within_sla: seconds.map(|s| s <= sla),
            systems,
            steps: counts.values().sum(),
            steps_settled: counts
                .iter()
                .filter(|(s, _)| s.is_settled())
                .map(|(_, n)| n)
                .sum(),
            manual_open: row_open,
            manual_overdue: row_overdue,
            assets_recovered: row_recovered,
            assets_outstanding: row_outstanding,
            licence_steps_done: row_licences,
            drift_findings: row_drift,
        });
    }

    finish(&mut manual.total);
    manual.by_lane.values_mut().for_each(finish);
    manual.by_owner.values_mut().for_each(finish);
    assets.return_rate = metrics::rate(assets.recovered, assets.steps);

    let months = match (by_month.keys().next(), by_month.keys().next_back()) {
        (Some(first), Some(last)) if !first.is_empty() => months_between(first, last)
            .into_iter()
            .map(|m| {
                let (n, secs) = by_month.get(&m).cloned().unwrap_or_default();
                Month {
                    departures: n,
                    revoked: secs.len(),
                    within_sla: secs.iter().filter(|s| **s <= sla).count(),
                    p50_seconds: metrics::percentile(&secs, 50),
                    month: m,
                }
            })
            .collect(),
        _ => Vec::new(),
    };

    Report {
        report_version: REPORT_VERSION,
        generated_at: crate::journal::timestamp(opts.now),
        since: opts.since.map(crate::journal::timestamp),
        sla_seconds: sla,
        percentile_method: metrics::PERCENTILE_METHOD,
        departures: Counts {
            total: counted.len(),
            by_type,
            complete,
            completion_rate: metrics::rate(complete, counted.len()),
        },
        damaged,
        time_to_revocation: Revocation {
            overall: Stats::of(&overall, not_revoked, sla),
            by_system: per_system
                .into_iter()
                .map(|(k, (v, nr))| (k, Stats::of(&v, nr, sla)))
                .collect(),
            no_cut_steps: no_cut,
            histogram: metrics::histogram(&overall),
        },
        manual_steps: manual,
        assets,
        licences,
        drift: drift_all,
        legal_holds: holds,
        months,
        rows,
    }
}

/// The dispositions in the order the asset process names them, then any others, as
/// `redeploy 1, retire 2`; empty when none was recorded.
pub fn dispositions_line(d: &BTreeMap<String, usize>) -> String {
    let known = crate::assets::DISPOSITIONS;
    let mut parts: Vec<String> = known
        .iter()
        .filter_map(|k| d.get(*k).map(|n| format!("{k} {n}")))
        .collect();
    parts.extend(
        d.iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .map(|(k, n)| format!("{k} {n}")),
    );
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::departure::DepartureFacts;
    use crate::evidence::testutil::facts;

    /// An event at `ts` (the chain is not needed by the metrics: they read replayed journals).
    fn ev(ts: &str, step: Option<&str>, record: Record) -> Event {
        Event {
            seq: 0,
            ts: ts.into(),
            actor: "admin@host".into(),
            step: step.map(str::to_string),
            record,
            prev: String::new(),
            hash: String::new(),
        }
    }

    fn checked(ts: &str, revoked: bool, context: &str) -> Event {
        ev(
            ts,
            Some("okta-deactivate"),
            Record::Checked {
                revoked,
                observed: format!("revoked={revoked}"),
                context: context.into(),
                account: None,
            },
        )
    }

    fn loaded(f: DepartureFacts, later: Vec<Event>) -> Loaded {
        let mut events = vec![ev(
            "2026-11-23T10:00:00Z",
            None,
            Record::DepartureStarted(Box::new(f)),
        )];
        events.extend(later);
        let state = DepartureState::replay(&events).unwrap();
        Loaded { events, state }
    }

    fn opts(since: Option<&str>) -> Options {
        let t = |s: &str| parse_time(s).unwrap();
        Options {
            since: since.map(t),
            sla_seconds: 3600,
            now: t("2026-12-01T09:00:00Z"),
        }
    }

    /// Effective 2026-11-23 10:00 (the test facts): a verify re-check does not count as the cut,
    /// a run's first confirmation does, and a later one does not move it.
    #[test]
    fn time_to_revocation_is_the_first_confirmation_by_a_run() {
        let l = loaded(
            facts(),
            vec![checked("2026-11-23T10:30:00Z", true, "verify")],
        );
        assert_eq!(
            revocation(&l.events, &l.state),
            (
                Cut::NotRevoked,
                BTreeMap::from([("okta".to_string(), None)])
            )
        );
        let l = loaded(
            facts(),
            vec![
                checked("2026-11-23T10:01:30Z", true, "run"),
                checked("2026-11-24T10:00:00Z", true, "resume"),
            ],
        );
        assert_eq!(
            revocation(&l.events, &l.state),
            (
                Cut::Revoked,
                BTreeMap::from([("okta".to_string(), Some(90))])
            )
        );
        // Cut before the effective time: 0, never negative.
        let l = loaded(facts(), vec![checked("2026-11-23T09:00:00Z", true, "run")]);
        assert_eq!(revocation(&l.events, &l.state).1["okta"], Some(0));
        // No automated cut step at all.
        let mut manual_only = facts();
        manual_only.steps.retain(|s| s.automated.is_none());
        let l = loaded(manual_only, vec![]);
        assert_eq!(revocation(&l.events, &l.state).0, Cut::NoCutSteps);
    }

    #[test]
    fn drift_is_a_verify_finding_access_back_after_a_run_cut_it() {
        // Never cut by a run: a failing verify is not drift.
        let l = loaded(
            facts(),
            vec![checked("2026-11-24T00:00:00Z", false, "verify")],
        );
        assert!(drift(&l.events, &l.state).is_empty());
        let mut events = vec![
            checked("2026-11-23T10:01:00Z", true, "run"),
            checked("2026-11-25T00:00:00Z", false, "verify"),
        ];
        let l = loaded(facts(), events.clone());
        let found = drift(&l.events, &l.state);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (
                found[0].step.as_str(),
                found[0].system.as_str(),
                found[0].fixed
            ),
            ("okta-deactivate", "okta", false)
        );
        assert_eq!(found[0].found_at, "2026-11-25T00:00:00Z");
        events.push(checked("2026-11-26T00:00:00Z", true, "resume"));
        let l = loaded(facts(), events);
        assert!(drift(&l.events, &l.state)[0].fixed);
    }

    #[test]
    fn departures_not_cut_or_without_cut_steps_are_counted_apart() {
        let mut manual_only = facts();
        manual_only.steps.retain(|s| s.automated.is_none());
        let mut older = facts();
        older.effective_at = "2026-10-01T00:00:00Z".into();
        let all = [
            loaded(facts(), vec![checked("2026-11-23T10:20:00Z", true, "run")]),
            loaded(facts(), vec![]),
            loaded(manual_only, vec![]),
            loaded(older, vec![checked("2026-10-01T02:00:00Z", true, "run")]),
        ];
        let r = build(&all, Vec::new(), &opts(None));
        let o = &r.time_to_revocation.overall;
        assert_eq!((o.count, o.not_revoked, o.within_sla), (2, 1, 1));
        assert_eq!((o.p50_seconds, o.max_seconds), (Some(1200), Some(7200)));
        assert_eq!(r.time_to_revocation.no_cut_steps, 1);
        assert_eq!(r.time_to_revocation.by_system["okta"].not_revoked, 1);
        let cuts: Vec<Cut> = r.rows.iter().map(|row| row.cut).collect();
        assert_eq!(
            cuts,
            [Cut::Revoked, Cut::NotRevoked, Cut::NoCutSteps, Cut::Revoked]
        );
        // Each of the four has the laptop step, which asks for an asset tag: open everywhere,
        // and overdue (its deadline, 2026-11-30 17:00, is past at the report's time).
        assert_eq!((r.assets.steps, r.assets.outstanding), (4, 4));
        assert_eq!(r.manual_steps.total.overdue, 4);
        // October and November, one each side; --since leaves October out.
        assert_eq!(r.months.len(), 2);
        assert_eq!(r.months[0].p50_seconds, Some(7200));
        let r = build(&all, Vec::new(), &opts(Some("2026-11-01T00:00:00Z")));
        assert_eq!(r.departures.total, 3);
        assert_eq!(r.time_to_revocation.overall.count, 1);
    }

    #[test]
    fn every_month_between_is_listed() {
        assert_eq!(
            months_between("2026-11", "2027-02"),
            ["2026-11", "2026-12", "2027-01", "2027-02"]
        );
        assert_eq!(months_between("2026-09", "2026-09"), ["2026-09"]);
        assert!(months_between("junk", "2026-09").is_empty());
    }

    /// The asset lane's return steps: the rate counts lost assets as not recovered, and each
    /// disposition is counted from the confirmed fields.
    #[test]
    fn asset_return_rate_and_dispositions() {
        let mut f = facts();
        let laptop = f
            .steps
            .iter()
            .find(|s| s.id == "collect-laptop")
            .unwrap()
            .clone();
        f.steps.retain(|s| s.automated.is_some());
        for tag in ["A", "B", "C", "D", "E"] {
            let mut s = laptop.clone();
            s.id = format!("return-{tag}");
            s.fields = crate::assets::FIELDS
                .iter()
                .map(|f| f.to_string())
                .collect();
            s.after.clear();
            f.steps.push(s);
        }
        let answered = |step: &str, kv: &[(&str, &str)]| {
            ev(
                "2026-11-24T10:00:00Z",
                Some(step),
                Record::Answered {
                    answer: crate::departure::Answer::Done,
                    note: None,
                    fields: kv
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                },
            )
        };
        let l = loaded(
            f,
            vec![
                answered("return-A", &[("disposition", "redeploy")]),
                answered(
                    "return-B",
                    &[("disposition", "Retire"), ("itad_certificate", "C-1")],
                ),
                answered("return-C", &[("disposition", "retire")]),
                answered("return-D", &[("disposition", "lost")]),
            ],
        );
        let r = build(&[l], Vec::new(), &opts(None));
        let a = &r.assets;
        assert_eq!((a.steps, a.recovered, a.lost, a.outstanding), (5, 3, 1, 1));
        assert_eq!(a.return_rate, metrics::rate(3, 5));
        assert_eq!(
            a.dispositions,
            BTreeMap::from([
                ("lost".to_string(), 1),
                ("redeploy".to_string(), 1),
                ("retire".to_string(), 2)
            ])
        );
        assert_eq!(a.itad_certificates, 1);
        let text = text::table(&crate::ui::Printer::plain(), &r);
        assert!(text.contains("redeploy 1, retire 2, lost 1"), "{text}");
    }

    #[test]
    fn asset_fields_are_recognised_by_name() {
        for yes in [
            "asset_tag",
            "Serial",
            "tracking_number",
            "imei",
            "laptop_serial",
        ] {
            assert!(is_asset_field(yes), "{yes}");
        }
        for no in ["notes", "payroll_ref", "handover"] {
            assert!(!is_asset_field(no), "{no}");
        }
    }
}
