//! Checking the `[notify]` table: its timing (`48h`-style durations), drift recipients, and the
//! channels `[notify.email]`, `[notify.slack]` and `[notify.teams]`, every credential (the SMTP
//! password, each webhook URL) by reference. The shape is [`crate::notify::NotifyDef`].

use std::ops::Range;

use toml::de::DeValue;

use super::{Check, Val};

const NOTIFY_KEYS: &[&str] = &[
    "escalate_after",
    "due_within",
    "interval",
    "drift_to",
    "ticket_note",
    "email",
    "slack",
    "teams",
];
const EMAIL_KEYS: &[&str] = &[
    "host",
    "port",
    "tls",
    "from",
    "user",
    "password",
    "allow_plain",
    "timeout_secs",
];
const SLACK_KEYS: &[&str] = &["webhook"];
const TEAMS_KEYS: &[&str] = &["webhook", "format"];

impl Check<'_> {
    pub(super) fn notify_table(&mut self, v: &Val<'_>) {
        let Some(t) = self.table("notify", v, "{ escalate_after = \"48h\" }") else {
            return;
        };
        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            match key {
                "escalate_after" | "due_within" | "interval" => {
                    if let Some(s) = self.string(key, v, "\"48h\"")
                        && crate::notify::parse_duration(s).is_none()
                    {
                        self.push(
                            format!(
                                "`{key}` must be a duration like 48h, 30m, 2d or 1w, not {s:?}"
                            ),
                            v.span(),
                            format!("write it as `{key} = \"48h\"`"),
                        );
                    }
                }
                "drift_to" => {
                    if let Some(items) = self.string_list(key, v, "[\"security@acme.example\"]") {
                        for (s, span) in items {
                            if !crate::notify::smtp::is_address(s) {
                                self.push(
                                    format!("`drift_to` holds {s:?}, which is not an email address"),
                                    span,
                                    "write addresses, e.g. `drift_to = [\"security@acme.example\"]`",
                                );
                            }
                        }
                    }
                }
                "ticket_note" => {
                    self.boolean(key, v);
                }
                "email" => self.notify_email(k.span(), v),
                "slack" => self.notify_webhook("slack", SLACK_KEYS, k.span(), v),
                "teams" => self.notify_webhook("teams", TEAMS_KEYS, k.span(), v),
                _ => self.unknown_key(key, k.span(), "[notify]", NOTIFY_KEYS),
            }
        }
    }

    fn notify_email(&mut self, key_span: Range<usize>, v: &Val<'_>) {
        let Some(t) = self.table(
            "email",
            v,
            "{ host = \"smtp.acme.example\", from = \"offboard@acme.example\" }",
        ) else {
            return;
        };
        let field = |key: &str| t.iter().find(|(k, _)| k.get_ref() == key);
        for (need, example) in [
            ("host", "host = \"smtp.acme.example\""),
            ("from", "from = \"offboard@acme.example\""),
        ] {
            if field(need).is_none() {
                self.push(
                    format!("[notify.email] needs `{need}`"),
                    self.head(key_span.clone()),
                    format!("add `{example}`"),
                );
            }
        }
        let mut host = None;
        let mut tls = "starttls";
        let mut allow_plain = false;
        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            match key {
                "host" => {
                    if let Some(h) = self.string(key, v, "\"smtp.acme.example\"") {
                        if h.trim().is_empty() || h.contains(['/', ' ', ':']) && !h.starts_with('[')
                        {
                            self.push(
                                format!("`host` must be a host name or address, not {h:?}"),
                                v.span(),
                                "write the name only, e.g. `host = \"smtp.acme.example\"`; the port goes in `port`",
                            );
                        }
                        host = Some(h.to_string());
                    }
                }
                "port" => {
                    if let Some(n) = self.integer(key, v, "587")
                        && !(1..=65535).contains(&n)
                    {
                        self.push(
                            format!("`port` must be between 1 and 65535, not {n}"),
                            v.span(),
                            "587 for starttls, 465 for tls",
                        );
                    }
                }
                "tls" => {
                    self.one_of(key, v, &["starttls", "tls", "none"]);
                    if let DeValue::String(s) = v.get_ref() {
                        tls = match s.as_ref() {
                            "none" => "none",
                            "tls" => "tls",
                            _ => "starttls",
                        };
                    }
                }
                "from" => {
                    if let Some(s) = self.string(key, v, "\"offboard@acme.example\"")
                        && s.parse::<lettre::message::Mailbox>().is_err()
                    {
                        self.push(
                            format!("`from` {s:?} is not an email address"),
                            v.span(),
                            "write it as `from = \"offboard@acme.example\"` or `from = \"Offboarding <offboard@acme.example>\"`",
                        );
                    }
                }
                "user" => {
                    self.string(key, v, "\"offboard\"");
                }
                "password" => {
                    self.secret_at("notify", "email.password", "password", "smtp_password", v)
                }
                "allow_plain" => allow_plain = self.boolean(key, v).unwrap_or(false),
                "timeout_secs" => {
                    if let Some(n) = self.integer(key, v, "30")
                        && n < 1
                    {
                        self.push(
                            format!("`timeout_secs` must be at least 1, not {n}"),
                            v.span(),
                            "the default is 30 seconds",
                        );
                    }
                }
                _ => self.unknown_key(key, k.span(), "[notify.email]", EMAIL_KEYS),
            }
        }
        if field("user").is_some() != field("password").is_some() {
            self.push(
                "[notify.email] needs both `user` and `password`, or neither",
                self.head(key_span.clone()),
                "add `password = { env = \"SMTP_PASSWORD\" }` beside `user`",
            );
        }
        if tls == "none"
            && !allow_plain
            && let Some(h) = host
            && !crate::notify::is_loopback(&h)
        {
            let at = field("tls").map_or(key_span, |(_, v)| v.span());
            self.push(
                format!("[notify.email] tls = \"none\" to {h} would send the password and the mail in clear"),
                at,
                "use tls = \"starttls\" or \"tls\"; plain SMTP is allowed only to this machine, or with allow_plain = true",
            );
        }
    }

    fn notify_webhook(&mut self, name: &str, keys: &[&str], key_span: Range<usize>, v: &Val<'_>) {
        let Some(t) = self.table(name, v, "{ webhook = { env = \"WEBHOOK_URL\" } }") else {
            return;
        };
        let place = format!("[notify.{name}]");
        if !t.iter().any(|(k, _)| k.get_ref() == "webhook") {
            self.push(
                format!("{place} needs `webhook`"),
                self.head(key_span),
                format!(
                    "the webhook URL is a credential: add `webhook = {{ env = \"{}_WEBHOOK_URL\" }}`",
                    name.to_uppercase()
                ),
            );
        }
        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            match key {
                "webhook" => self.secret_at(
                    "notify",
                    &format!("{name}.webhook"),
                    "webhook",
                    &format!("{name}_webhook_url"),
                    v,
                ),
                "format" if keys.contains(&"format") => {
                    self.one_of(key, v, &["adaptive_card", "message_card"])
                }
                _ => self.unknown_key(key, k.span(), &place, keys),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{errors, find, load};

    const HEAD: &str =
        "[runbook]\nname = \"t\"\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n";

    #[test]
    fn a_whole_notify_table_loads() {
        let src = format!(
            "{HEAD}[notify]\nescalate_after = \"2d\"\ndrift_to = [\"sec@acme.example\"]\n[notify.email]\nhost = \"smtp.acme.example\"\nport = 587\nfrom = \"Offboarding <offboard@acme.example>\"\nuser = \"offboard\"\npassword = {{ env = \"SMTP_PASSWORD\" }}\n[notify.slack]\nwebhook = {{ env = \"SLACK_WEBHOOK_URL\" }}\n[notify.teams]\nwebhook = {{ file = \"/run/secrets/teams\" }}\nformat = \"message_card\"\n"
        );
        let rb = load(&src).unwrap();
        let n = rb.file.notify.unwrap();
        assert_eq!(n.timing().escalate_after, chrono::Duration::days(2));
        assert_eq!(n.email.unwrap().port, Some(587));
        assert_eq!(
            n.teams.unwrap().format,
            Some(crate::notify::TeamsFormat::MessageCard)
        );
    }

    #[test]
    fn an_inline_webhook_or_password_is_refused_without_echoing_it() {
        let src = format!(
            "{HEAD}[notify.slack]\nwebhook = \"https://hooks.slack.com/services/T0/B0/SECRETxyz\"\n[notify.email]\nhost = \"h.example\"\nfrom = \"a@b.example\"\nuser = \"u\"\npassword = \"hunter2-SECRET\"\n"
        );
        let err = errors(&src);
        let text = err.render(false);
        assert!(!text.contains("SECRETxyz"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let (msg, line, _, hint) = find(&src, "slack.webhook");
        assert!(msg.contains("secrets must not be written"), "{msg}");
        assert_eq!(line, 8);
        assert!(hint.contains("NOTIFY_SLACK_WEBHOOK_URL"), "{hint}");
        let (_, line, _, _) = find(&src, "email.password");
        assert_eq!(line, 13);
    }

    #[test]
    fn bad_values_are_each_named_at_their_place() {
        let src = format!(
            "{HEAD}[notify]\nescalate_after = \"2 days\"\nremind = true\n[notify.email]\nhost = \"smtp.acme.example\"\ntls = \"none\"\nfrom = \"nobody\"\nport = 70000\n[notify.teams]\nformat = \"card\"\n"
        );
        let (msg, line, col, _) = find(&src, "escalate_after");
        assert_eq!(
            msg,
            "`escalate_after` must be a duration like 48h, 30m, 2d or 1w, not \"2 days\""
        );
        assert_eq!((line, col), (8, 18));
        let (msg, line, _, _) = find(&src, "unknown key");
        assert_eq!(msg, "unknown key `remind` in [notify]");
        assert_eq!(line, 9);
        let (msg, line, _, hint) = find(&src, "in clear");
        assert!(msg.contains("smtp.acme.example"), "{msg}");
        assert_eq!(line, 12);
        assert!(hint.contains("allow_plain"), "{hint}");
        let (_, line, _, _) = find(&src, "`from`");
        assert_eq!(line, 13);
        let (_, line, _, _) = find(&src, "`port`");
        assert_eq!(line, 14);
        let (msg, _, _, _) = find(&src, "needs `webhook`");
        assert_eq!(msg, "[notify.teams] needs `webhook`");
        let ok = src
            .replace("\"2 days\"", "\"2d\"")
            .replace("remind = true\n", "")
            .replace("smtp.acme.example", "127.0.0.1")
            .replace("\"nobody\"", "\"a@b.example\"")
            .replace("70000", "2525")
            .replace(
                "format = \"card\"",
                "format = \"adaptive_card\"\nwebhook = { env = \"T\" }",
            );
        load(&ok).unwrap();
    }

    #[test]
    fn a_step_escalate_after_is_a_duration() {
        let src = format!("{HEAD}escalate_after = \"soon\"\n");
        let (msg, line, col, _) = find(&src, "escalate_after");
        assert_eq!(
            msg,
            "`escalate_after` must be a duration like 48h, 30m, 2d or 1w, not \"soon\""
        );
        assert_eq!((line, col), (7, 18));
        let rb = load(&src.replace("soon", "2h")).unwrap();
        assert_eq!(rb.file.steps[0].escalate_after.as_deref(), Some("2h"));
    }
}
