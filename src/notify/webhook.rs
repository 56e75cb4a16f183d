//! Slack and Microsoft Teams incoming webhooks. A webhook URL is a credential (anyone holding
//! it can post to the channel): it is resolved from its reference, sent to, and never written
//! anywhere: errors say "the Slack webhook", not where it is.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{Level, Message, SendError, TeamsFormat};

/// Which service, and so which payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Slack,
    Teams(TeamsFormat),
}

impl Flavour {
    fn name(self) -> &'static str {
        match self {
            Flavour::Slack => "Slack webhook",
            Flavour::Teams(_) => "Teams webhook",
        }
    }
}

/// A webhook ready to post to.
pub struct Webhook {
    flavour: Flavour,
    url: SecretString,
    client: reqwest::Client,
}

impl Webhook {
    /// Resolve the URL from its reference and check it: https, or http to this machine. The
    /// error never contains the URL.
    pub fn new(
        flavour: Flavour,
        reference: &crate::runbook::SecretRef,
        table: &str,
    ) -> anyhow::Result<Webhook> {
        let url = crate::secrets::resolve(reference)
            .map_err(|e| anyhow::anyhow!("[{table}] `webhook`: {e:#}"))?;
        let parsed = url::Url::parse(url.expose_secret().trim()).map_err(|_| {
            anyhow::anyhow!("[{table}] `webhook` ({reference}) does not hold a URL")
        })?;
        let local = parsed.host_str().is_some_and(super::is_loopback);
        if !(parsed.scheme() == "https" || (parsed.scheme() == "http" && local)) {
            anyhow::bail!(
                "[{table}] `webhook` ({reference}) must be an https URL (http only to this machine)"
            );
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("offboard/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| anyhow::anyhow!("[{table}] building the HTTP client: {e}"))?;
        Ok(Webhook {
            flavour,
            url: SecretString::from(url.expose_secret().trim().to_string()),
            client,
        })
    }

    /// Post `msg`. A 2xx is sent; anything else is a [`SendError`] with the status and the
    /// start of the reply (Slack answers e.g. `invalid_payload`, `no_service`).
    pub async fn send(&self, msg: &Message) -> Result<(), SendError> {
        let body = match self.flavour {
            Flavour::Slack => slack_payload(msg),
            Flavour::Teams(TeamsFormat::MessageCard) => message_card(msg),
            Flavour::Teams(TeamsFormat::AdaptiveCard) => adaptive_card(msg),
        };
        let name = self.flavour.name();
        let resp = self
            .client
            .post(self.url.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(|e| SendError(format!("{name}: {}", chain(&e.without_url()))))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        // A reply that quotes the request line would carry the URL's path: cut it out.
        let text = text.replace(self.url.expose_secret(), "<webhook>");
        Err(SendError(format!(
            "{name} answered HTTP {}: {}",
            status.as_u16(),
            super::clip(text.trim(), 200)
        )))
    }
}

/// An error with its causes (`error sending request: … Connection refused`); a reqwest error
/// passed here has had its URL taken out.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    super::clip(&out, 300)
}

/// Slack mrkdwn needs `&`, `<` and `>` escaped.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn emoji(level: Level) -> &'static str {
    match level {
        Level::Reminder => ":alarm_clock:",
        Level::Escalation => ":rotating_light:",
        Level::Drift => ":warning:",
    }
}

/// Slack: `text` (the notification and fallback) plus Block Kit blocks: a header, the intro,
/// one section listing the steps, and a context line with what to do.
pub fn slack_payload(msg: &Message) -> Value {
    let items: Vec<String> = msg
        .items
        .iter()
        .map(|i| format!("• {}", slack_escape(i)))
        .collect();
    let footer = if msg.to.is_empty() {
        slack_escape(&msg.action)
    } else {
        format!(
            "For {} · {}",
            slack_escape(&msg.to),
            slack_escape(&msg.action)
        )
    };
    let mut header: String = msg.subject.chars().take(150).collect();
    if header.is_empty() {
        header = "offboard".into();
    }
    json!({
        "text": format!("{} {}", emoji(msg.level), slack_escape(&msg.subject)),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}},
            {"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(&msg.intro)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": clip3000(&items.join("\n"))}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]},
        ]
    })
}

/// Slack caps a section's text at 3000 characters.
fn clip3000(s: &str) -> String {
    super::clip(s, 2990)
}

fn colour(level: Level) -> &'static str {
    match level {
        Level::Reminder => "0078D7",
        Level::Escalation => "D83B01",
        Level::Drift => "A80000",
    }
}

/// Teams, classic connector: an Office 365 `MessageCard` (`summary` and `text` are required by
/// Teams; facts in a section).
pub fn message_card(msg: &Message) -> Value {
    json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": msg.subject,
        "themeColor": colour(msg.level),
        "title": msg.subject,
        "text": msg.intro,
        "sections": [
            {
                "facts": msg.facts.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
                "text": msg.items.iter().map(|i| format!("- {i}")).collect::<Vec<_>>().join("\n\n"),
            },
            {"text": msg.action},
        ],
    })
}

/// Teams, Workflows (and connector) webhooks: a `message` with one Adaptive Card attachment.
pub fn adaptive_card(msg: &Message) -> Value {
    let mut body = vec![
        json!({"type": "TextBlock", "text": msg.subject, "weight": "Bolder", "size": "Medium", "wrap": true,
               "color": if msg.level == Level::Reminder { "Default" } else { "Attention" }}),
        json!({"type": "TextBlock", "text": msg.intro, "wrap": true}),
    ];
    if !msg.facts.is_empty() {
        body.push(json!({"type": "FactSet", "facts": msg.facts.iter().map(|(k, v)| json!({"title": k, "value": v})).collect::<Vec<_>>()}));
    }
    for i in &msg.items {
        body.push(json!({"type": "TextBlock", "text": format!("- {i}"), "wrap": true}));
    }
    body.push(json!({"type": "TextBlock", "text": msg.action, "wrap": true, "isSubtle": true}));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            }
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        Message {
            level: Level::Escalation,
            to: "boss@corp.example".into(),
            subject: "Overdue: laptop-returned".into(),
            intro: "1 step <overdue> & open".into(),
            items: vec!["laptop-returned".into()],
            action: "offboard confirm d laptop-returned".into(),
            departure: "d".into(),
            facts: [("Departure".to_string(), "d".to_string())].into(),
        }
    }

    #[test]
    fn slack_text_is_escaped_and_blocks_are_there() {
        let v = slack_payload(&msg());
        assert!(v["text"].as_str().unwrap().contains("Overdue"));
        assert_eq!(v["blocks"][0]["type"], "header");
        assert_eq!(
            v["blocks"][1]["text"]["text"],
            "1 step &lt;overdue&gt; &amp; open"
        );
    }

    #[test]
    fn teams_formats() {
        let v = message_card(&msg());
        assert_eq!(v["@type"], "MessageCard");
        assert_eq!(v["summary"], "Overdue: laptop-returned");
        let v = adaptive_card(&msg());
        assert_eq!(v["type"], "message");
        assert_eq!(
            v["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(v["attachments"][0]["content"]["type"], "AdaptiveCard");
    }
}
