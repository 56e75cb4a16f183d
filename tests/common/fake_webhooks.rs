//! Slack and Microsoft Teams incoming webhooks, on the fake-server kit. Each answers as the
//! service does (Slack: `200 ok`, `400 invalid_payload`; Teams: `200 1`, `400` with a reason)
//! and checks the payload format in its handler, and [`slack_contract`] / [`teams_contract`]
//! state the same formats for `assert_contract`. The webhook path carries a secret token, as
//! the real URLs do, so tests can check it never leaks.

use serde_json::Value;

use super::fake_kit::{Contract, FakeServer, Operation, Reply, Routes, Shape, obj};

pub const SLACK_PATH: &str = "/services/T0001/B0001/SLACKSECRETtoken42";
pub const TEAMS_PATH: &str = "/webhookb2/TEAMSSECRET-0042/IncomingWebhook/abc";

/// Why a Slack payload would be refused (`None` when Slack accepts it).
pub fn slack_problem(v: &Value) -> Option<String> {
    let text = v.get("text").and_then(Value::as_str);
    let blocks = v.get("blocks");
    if text.is_none_or(str::is_empty) && blocks.is_none() {
        return Some("no_text".into());
    }
    if let Some(b) = blocks {
        let Some(list) = b.as_array() else {
            return Some("invalid_blocks".into());
        };
        for block in list {
            let ty = block.get("type").and_then(Value::as_str).unwrap_or("");
            let ok = match ty {
                "header" => {
                    block["text"]["type"] == "plain_text"
                        && block["text"]["text"]
                            .as_str()
                            .is_some_and(|t| !t.is_empty() && t.chars().count() <= 150)
                }
                "section" => {
                    matches!(
                        block["text"]["type"].as_str(),
                        Some("mrkdwn" | "plain_text")
                    ) && block["text"]["text"]
                        .as_str()
                        .is_some_and(|t| !t.is_empty() && t.chars().count() <= 3000)
                }
                "context" => block["elements"].as_array().is_some_and(|e| {
                    !e.is_empty() && e.iter().all(|x| x["text"].as_str().is_some())
                }),
                "divider" => true,
                _ => false,
            };
            if !ok {
                return Some("invalid_blocks".into());
            }
        }
    }
    None
}

/// Why a Teams payload would be refused: a MessageCard needs `summary` or `text`; a message
/// with attachments needs each to be an Adaptive Card with a body.
pub fn teams_problem(v: &Value) -> Option<String> {
    if v["@type"] == "MessageCard" {
        let has = |k: &str| v[k].as_str().is_some_and(|s| !s.is_empty());
        return (!(has("summary") || has("text"))).then(|| "Summary or Text is required.".into());
    }
    if v["type"] == "message" {
        let Some(atts) = v["attachments"].as_array() else {
            return Some("attachments is required".into());
        };
        for a in atts {
            if a["contentType"] != "application/vnd.microsoft.card.adaptive" {
                return Some("contentType must be application/vnd.microsoft.card.adaptive".into());
            }
            let c = &a["content"];
            if c["type"] != "AdaptiveCard"
                || c["version"].as_str().is_none()
                || !c["body"].as_array().is_some_and(|b| {
                    !b.is_empty() && b.iter().all(|e| e["type"].as_str().is_some())
                })
            {
                return Some("the card must be an AdaptiveCard with a version and a body".into());
            }
        }
        return None;
    }
    Some("Bad payload: neither a MessageCard nor a message".into())
}

/// One server answering both webhooks.
pub async fn start() -> FakeServer {
    let routes = Routes::new()
        .route("POST", SLACK_PATH, |r| match r.json.map(slack_problem) {
            Some(None) => text(200, "ok"),
            Some(Some(p)) => text(400, &p),
            None => text(400, "invalid_payload"),
        })
        .route("POST", TEAMS_PATH, |r| match r.json.map(teams_problem) {
            Some(None) => text(200, "1"),
            Some(Some(p)) => text(400, &p),
            None => text(400, "Bad payload"),
        })
        .error_reply(text);
    FakeServer::start(routes).await
}

fn text(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: body.as_bytes().to_vec(),
    }
}

/// Both webhooks' formats: Slack `text` plus blocks, Teams as an Adaptive Card message or, with
/// `message_card`, an Office 365 MessageCard.
pub fn contract(message_card: bool) -> Contract {
    let block = obj().req("type", Shape::String).additional(true);
    let slack = Operation::new("POST", SLACK_PATH).json_body(
        obj()
            .req("text", Shape::String)
            .opt("blocks", Shape::array(block)),
    );
    let teams = if message_card {
        obj()
            .req("@type", Shape::one_of(&["MessageCard"]))
            .req("@context", Shape::String)
            .req("summary", Shape::String)
            .opt("themeColor", Shape::String)
            .opt("title", Shape::String)
            .opt("text", Shape::String)
            .opt("sections", Shape::array(obj().additional(true)))
    } else {
        let card = obj()
            .req("$schema", Shape::String)
            .req("type", Shape::one_of(&["AdaptiveCard"]))
            .req("version", Shape::String)
            .req(
                "body",
                Shape::array(obj().req("type", Shape::String).additional(true)),
            );
        let attachment = obj()
            .req(
                "contentType",
                Shape::one_of(&["application/vnd.microsoft.card.adaptive"]),
            )
            .req("contentUrl", Shape::Null)
            .req("content", card);
        obj()
            .req("type", Shape::one_of(&["message"]))
            .req("attachments", Shape::array(attachment))
    };
    Contract::new("slack and teams webhooks")
        .op(slack)
        .op(Operation::new("POST", TEAMS_PATH).json_body(teams))
}
