//! Who is to be told what about a departure now: manual steps due soon or overdue (their
//! owner), overdue by `escalate_after` (their `escalate_to` as well), less what the journal
//! shows was already sent within the interval. Pure: no I/O.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::{Channel, Level, Message, Notification, Timing, human};
use crate::departure::{DepartureFacts, DepartureState};
use crate::journal::{Event, Record};

/// A manual step someone is told about.
#[derive(Debug, Clone, PartialEq)]
pub struct DueStep {
    pub id: String,
    pub instruction: String,
    pub owner: Option<String>,
    pub deadline: DateTime<Utc>,
    /// How long past its deadline, when it is.
    pub overdue_by: Option<Duration>,
    pub fields: Vec<String>,
}

/// The steps one person is told about, at one level.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub level: Level,
    pub to: String,
    pub steps: Vec<DueStep>,
}

/// A step with no owner is still announced on the channels that are not addressed to a person.
pub const NO_OWNER: &str = "(no owner)";

/// The reminders and escalations due for `state` at `now`, by person (owners first). A
/// complete departure has none. `escalate_after` holds the steps' own `escalate_after`, by step
/// id; the others use `timing`'s.
pub fn due(
    state: &DepartureState,
    now: DateTime<Utc>,
    timing: &Timing,
    escalate_after: &BTreeMap<String, Duration>,
) -> Vec<Due> {
    let mut out: BTreeMap<(Level, String), Vec<DueStep>> = BTreeMap::new();
    if state.is_complete() {
        return Vec::new();
    }
    for (step, st) in state.ordered() {
        if !step.is_manual() || st.status().is_settled() {
            continue;
        }
        let Some(deadline) = step.deadline_time() else {
            continue;
        };
        if now < deadline - timing.due_within {
            continue;
        }
        let due = DueStep {
            id: step.id.clone(),
            instruction: step.manual.clone().unwrap_or_default(),
            owner: step.owner.clone(),
            deadline,
            overdue_by: (now > deadline).then(|| now - deadline),
            fields: step.fields.clone(),
        };
        let owner = step.owner.clone().unwrap_or_else(|| NO_OWNER.into());
        out.entry((Level::Reminder, owner))
            .or_default()
            .push(due.clone());
        if let Some(boss) = &step.escalate_to
            && now
                >= deadline
                    + escalate_after
                        .get(&step.id)
                        .copied()
                        .unwrap_or(timing.escalate_after)
        {
            out.entry((Level::Escalation, boss.clone()))
                .or_default()
                .push(due);
        }
    }
    out.into_iter()
        .map(|((level, to), steps)| Due { level, to, steps })
        .collect()
}

/// Whether the journal shows `step` sent successfully to `to` on `channel` at `level` less
/// than `interval` before `now`. Failed sends do not count: they are retried.
pub fn already_sent(
    events: &[Event],
    channel: Channel,
    level: Level,
    to: &str,
    step: &str,
    now: DateTime<Utc>,
    interval: Duration,
) -> bool {
    events.iter().rev().any(|e| match &e.record {
        Record::Notified(n) => {
            n.sent
                && n.channel == channel
                && n.level == level
                && n.to == to
                && n.steps.iter().any(|s| s == step)
                && super::event_time(&e.ts).is_some_and(|t| now - t < interval)
        }
        _ => false,
    })
}

/// The message about `due` for this departure.
pub fn message(facts: &DepartureFacts, due: &Due, now: DateTime<Utc>) -> Message {
    let n = due.steps.len();
    let overdue = due.steps.iter().filter(|s| s.overdue_by.is_some()).count();
    let who = crate::ui::safe(&facts.user);
    let subject = match due.level {
        Level::Escalation => {
            format!("[offboard] Escalation: {n} step(s) overdue for the departure of {who}")
        }
        _ if overdue > 0 => {
            format!("[offboard] Overdue: {n} open step(s) for the departure of {who}")
        }
        _ => format!("[offboard] Reminder: {n} step(s) due soon for the departure of {who}"),
    };
    let intro = match due.level {
        Level::Escalation => format!(
            "These manual steps of the departure of {who} ({}) are overdue; you are their escalation contact.",
            facts.id
        ),
        _ => format!(
            "These manual steps of the departure of {who} ({}) are yours and still open.",
            facts.id
        ),
    };
    let items = due
        .steps
        .iter()
        .map(|s| {
            let when = match s.overdue_by {
                Some(d) => format!("OVERDUE by {} (deadline {})", human(d), short(s.deadline)),
                None => format!("due {} (in {})", short(s.deadline), human(s.deadline - now)),
            };
            let owner = match (due.level, &s.owner) {
                (Level::Escalation, Some(o)) => format!(", owner {o}"),
                _ => String::new(),
            };
            format!(
                "{}: {} [{when}{owner}]",
                s.id,
                crate::ui::safe(&s.instruction)
            )
        })
        .collect();
    let first = &due.steps[0];
    let fields: String = first
        .fields
        .iter()
        .map(|f| format!(" --field {f}=…"))
        .collect();
    let action = format!(
        "When done: offboard confirm {} {}{fields} --note \"…\"",
        facts.id, first.id
    );
    let mut facts_map = BTreeMap::new();
    facts_map.insert("Departure".to_string(), facts.id.clone());
    facts_map.insert("Person".to_string(), facts.user.clone());
    facts_map.insert("For".to_string(), due.to.clone());
    Message {
        level: due.level,
        to: due.to.clone(),
        subject,
        intro,
        items,
        action,
        departure: facts.id.clone(),
        facts: facts_map,
    }
}

fn short(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The journal record of one send.
pub fn record(
    channel: Channel,
    msg: &Message,
    steps: &[String],
    result: &Result<(), super::SendError>,
) -> Notification {
    Notification {
        channel,
        level: msg.level,
        to: msg.to.clone(),
        steps: steps.to_vec(),
        sent: result.is_ok(),
        error: result.as_ref().err().map(|e| e.0.clone()),
    }
}

/// The `escalate_after` of each step of `rb` that sets one, for departures started from a
/// runbook of the same name (a departure from another runbook uses the defaults).
pub fn step_escalations(
    rb: &crate::runbook::Runbook,
    facts: &DepartureFacts,
) -> BTreeMap<String, Duration> {
    if rb.file.runbook.name != facts.runbook.name {
        return BTreeMap::new();
    }
    rb.file
        .steps
        .iter()
        .filter_map(|s| {
            let d = s
                .escalate_after
                .as_deref()
                .and_then(super::parse_duration)?;
            Some((s.id.clone(), d))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::testutil;
    use crate::journal::Journal;

    fn state() -> DepartureState {
        let mut facts = testutil::facts();
        facts.steps[1].escalate_to = Some("boss@corp.example".into());
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::create(
            &dir.path().join("journal.jsonl"),
            "t".into(),
            Record::DepartureStarted(Box::new(facts)),
        )
        .unwrap();
        DepartureState::replay(j.events()).unwrap()
    }

    fn deadline() -> DateTime<Utc> {
        "2026-11-30T17:00:00Z".parse().unwrap()
    }

    fn summary(d: &[Due]) -> Vec<(Level, String, Vec<String>)> {
        d.iter()
            .map(|d| {
                (
                    d.level,
                    d.to.clone(),
                    d.steps.iter().map(|s| s.id.clone()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn due_soon_overdue_and_escalated_only_manual_steps() {
        let st = state();
        let t = Timing::default();
        let none = BTreeMap::new();
        let at = |h: i64| deadline() + Duration::hours(h);
        assert!(due(&st, at(-25), &t, &none).is_empty(), "not due yet");
        let owner = (
            Level::Reminder,
            "facilities@corp.example".to_string(),
            vec!["collect-laptop".to_string()],
        );
        let d = due(&st, at(-23), &t, &none);
        assert_eq!(summary(&d), vec![owner.clone()]);
        assert_eq!(d[0].steps[0].overdue_by, None);
        let d = due(&st, at(47), &t, &none);
        assert_eq!(summary(&d), vec![owner.clone()]);
        assert_eq!(d[0].steps[0].overdue_by, Some(Duration::hours(47)));
        let boss = (
            Level::Escalation,
            "boss@corp.example".to_string(),
            vec!["collect-laptop".to_string()],
        );
        assert_eq!(
            summary(&due(&st, at(48), &t, &none)),
            vec![owner.clone(), boss.clone()]
        );
        let step = BTreeMap::from([("collect-laptop".to_string(), Duration::hours(1))]);
        assert_eq!(summary(&due(&st, at(2), &t, &step)), vec![owner, boss]);
    }

    #[test]
    fn sent_within_the_interval_counts_failed_sends_do_not() {
        let now = deadline();
        let event = |ts: &str, sent: bool| Event {
            seq: 1,
            ts: ts.into(),
            actor: "t".into(),
            step: None,
            record: Record::Notified(Notification {
                channel: Channel::Email,
                level: Level::Reminder,
                to: "facilities@corp.example".into(),
                steps: vec!["collect-laptop".into()],
                sent,
                error: None,
            }),
            prev: String::new(),
            hash: String::new(),
        };
        let check = |events: &[Event], channel| {
            already_sent(
                events,
                channel,
                Level::Reminder,
                "facilities@corp.example",
                "collect-laptop",
                now,
                Duration::hours(24),
            )
        };
        let recent = [event("2026-11-30T10:00:00.000Z", true)];
        assert!(check(&recent, Channel::Email));
        assert!(!check(&recent, Channel::Slack), "another channel");
        assert!(
            !check(&[event("2026-11-29T16:59:00.000Z", true)], Channel::Email),
            "too old"
        );
        assert!(
            !check(&[event("2026-11-30T10:00:00.000Z", false)], Channel::Email),
            "failed"
        );
    }
}
