//! The configured channels, connected once per command: a channel whose configuration cannot
//! be used (a secret that does not resolve, a bad address) fails each of its sends with the
//! same message, journaled, and the other channels go on.

use super::smtp::{self, Mailer};
use super::webhook::{Flavour, Webhook};
use super::{Channel, Message, NotifyDef, SendError, TeamsFormat};
use crate::departure::DepartureFacts;

pub struct Channels {
    email: Option<Result<Mailer, String>>,
    slack: Option<Result<Webhook, String>>,
    teams: Option<Result<Webhook, String>>,
    ticket_note: bool,
}

impl Channels {
    pub fn connect(def: &NotifyDef) -> Channels {
        let err = |e: anyhow::Error| format!("{e:#}");
        Channels {
            email: def.email.as_ref().map(|e| Mailer::new(e).map_err(err)),
            slack: def
                .slack
                .as_ref()
                .map(|s| Webhook::new(Flavour::Slack, &s.webhook, "notify.slack").map_err(err)),
            teams: def.teams.as_ref().map(|t| {
                Webhook::new(
                    Flavour::Teams(t.format.unwrap_or(TeamsFormat::AdaptiveCard)),
                    &t.webhook,
                    "notify.teams",
                )
                .map_err(err)
            }),
            ticket_note: def.ticket_note.unwrap_or(true),
        }
    }

    /// The channels a message to `to` about this departure goes out on: email when `to` is an
    /// address, each webhook, and the ticket when the departure has one.
    pub fn for_recipient(&self, facts: &DepartureFacts, to: &str) -> Vec<Channel> {
        let mut out = Vec::new();
        if self.email.is_some() && smtp::is_address(to) {
            out.push(Channel::Email);
        }
        if self.slack.is_some() {
            out.push(Channel::Slack);
        }
        if self.teams.is_some() {
            out.push(Channel::Teams);
        }
        if self.ticket_note && facts.ticketing.is_some() && facts.ticket.is_some() {
            out.push(Channel::Ticket);
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.slack.is_none() && self.teams.is_none() && !self.ticket_note
    }

    pub async fn send(
        &self,
        channel: Channel,
        facts: &DepartureFacts,
        msg: &Message,
    ) -> Result<(), SendError> {
        let unusable = |e: &String| SendError(e.clone());
        match channel {
            Channel::Email => match self.email.as_ref() {
                Some(Ok(m)) => m.send(&msg.to, msg).await,
                Some(Err(e)) => Err(unusable(e)),
                None => Err(SendError("no [notify.email]".into())),
            },
            Channel::Slack | Channel::Teams => {
                let hook = if channel == Channel::Slack {
                    &self.slack
                } else {
                    &self.teams
                };
                match hook {
                    Some(Ok(h)) => h.send(msg).await,
                    Some(Err(e)) => Err(unusable(e)),
                    None => Err(SendError(format!("no [notify.{}]", channel.as_str()))),
                }
            }
            Channel::Ticket => ticket_note(facts, msg).await,
        }
    }
}

/// An internal note on the departure's ticket (the desk's `upload_and_note` with no files).
async fn ticket_note(facts: &DepartureFacts, msg: &Message) -> Result<(), SendError> {
    let (Some(def), Some(ticket)) = (&facts.ticketing, &facts.ticket) else {
        return Err(SendError("the departure has no ticket".into()));
    };
    let desk = crate::ticketing::connect(def).map_err(|e| SendError(format!("{e:#}")))?;
    let text = format!("{}\nFor: {}\n\n{}", msg.subject, msg.to, msg.text());
    desk.upload_and_note(ticket, &[], &text, &crate::providers::CallCtx::silent())
        .await
        .map(|_| ())
        .map_err(|e| SendError(format!("{} ticket {ticket}: {e}", def.kind)))
}
