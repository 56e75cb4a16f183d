//! Checking the `[ticketing]` table: a known desk kind, its `base_url`, its settings (every
//! credential by reference), `close_status` and `timeout_secs`. The shape is
//! [`crate::runbook::TicketingDef`]; the kinds and their settings are
//! [`crate::ticketing::TICKET_KINDS`].

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::{Check, Val, closest};
use crate::ticketing::{self, COMMON_KEYS, TICKET_KINDS};

impl Check<'_> {
    pub(super) fn ticketing_table(&mut self, key_span: Range<usize>, v: &Val<'_>) {
        let kinds: Vec<&str> = TICKET_KINDS.iter().map(|k| k.name).collect();
        let example = format!("{{ kind = \"{}\", base_url = \"https://…\" }}", kinds[0]);
        let Some(t) = self.table("ticketing", v, &example) else {
            return;
        };
        let field = |key: &str| t.iter().find(|(k, _)| k.get_ref() == key);
        let kind = match field("kind") {
            None => {
                self.push(
                    "[ticketing] has no `kind`",
                    key_span.clone(),
                    format!("add `kind = \"…\"`, one of: {}", kinds.join(", ")),
                );
                None
            }
            Some((_, kv)) => self.string("kind", kv, "\"redmine\"").and_then(|name| {
                let found = ticketing::find_kind(name);
                if found.is_none() {
                    let mut hint = format!("known ticketing kinds: {}", kinds.join(", "));
                    if let Some(best) = closest(name, kinds.iter().copied()) {
                        hint = format!("did you mean `{best}`? {hint}");
                    }
                    self.push(format!("unknown ticketing kind `{name}`"), kv.span(), hint);
                }
                found
            }),
        };
        if field("base_url").is_none() {
            self.push(
                "[ticketing] needs a `base_url`",
                key_span.clone(),
                "add the service desk's address, e.g. `base_url = \"https://desk.example.com\"`",
            );
        }
        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            match key {
                "kind" => {}
                "base_url" => {
                    if let Some(url) = self.string(key, v, "\"https://desk.example.com\"") {
                        self.base_url(url, v.span(), &["https", "http"]);
                    }
                }
                "close_status" => self.close_status(v),
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
                _ => match kind {
                    None => {}
                    Some(kind) => match kind.settings.iter().find(|s| s.name == key) {
                        Some(spec) => self.setting(spec, "ticketing", v, "[ticketing]"),
                        None => {
                            let allowed: Vec<&str> = COMMON_KEYS
                                .iter()
                                .copied()
                                .chain(kind.settings.iter().map(|s| s.name))
                                .collect();
                            self.unknown_key(
                                key,
                                k.span(),
                                &format!("[ticketing] (kind `{}`)", kind.name),
                                &allowed,
                            );
                        }
                    },
                },
            }
        }
        let Some(kind) = kind else { return };
        for spec in kind.settings.iter().filter(|s| s.required) {
            if field(spec.name).is_none() {
                self.push(
                    format!(
                        "[ticketing] (kind `{}`) needs the setting `{}`",
                        kind.name, spec.name
                    ),
                    key_span.clone(),
                    format!("add `{}`: {}", spec.name, spec.summary),
                );
            }
        }
    }

    fn close_status(&mut self, v: &Val<'_>) {
        let hint = "name the status to close the ticket with, e.g. `close_status = \"Closed\"`, or \
                    give the desk's status id, e.g. `close_status = 5`";
        match v.get_ref() {
            DeValue::String(s) if !s.trim().is_empty() => {}
            DeValue::String(_) => self.push("`close_status` is empty", v.span(), hint),
            DeValue::Integer(_) => {
                if let Some(n) = self.integer("close_status", v, "5")
                    && n < 0
                {
                    self.push(
                        format!("`close_status` must not be negative, not {n}"),
                        v.span(),
                        hint,
                    );
                }
            }
            _ => self.push(
                format!(
                    "`close_status` must be a status name or id, found {}",
                    v.get_ref().type_str()
                ),
                v.span(),
                hint,
            ),
        }
    }
}

/// The span of the `[ticketing]` key, for diagnostics about the whole table.
pub(super) fn ticketing_span(doc: &DeTable<'_>) -> Option<Range<usize>> {
    doc.iter()
        .find(|(k, _)| k.get_ref().as_ref() == "ticketing")
        .map(|(k, _)| k.span())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{errors, find, load};

    const HEAD: &str =
        "[runbook]\nname = \"t\"\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n";

    #[test]
    fn a_redmine_desk_loads_with_its_key_by_reference() {
        let src = format!(
            "{HEAD}[ticketing]\nkind = \"redmine\"\nbase_url = \"https://desk.example.com\"\napi_key = {{ env = \"REDMINE_KEY\" }}\nclose_status = \"Closed\"\n"
        );
        let rb = load(&src).unwrap();
        let t = rb.file.ticketing.unwrap();
        assert_eq!(t.kind, "redmine");
        assert_eq!(
            t.close_status,
            Some(crate::runbook::TicketStatus::Name("Closed".into()))
        );
        let src = src.replace("\"Closed\"", "5");
        let t = load(&src).unwrap().file.ticketing.unwrap();
        assert_eq!(t.close_status, Some(crate::runbook::TicketStatus::Id(5)));
    }

    #[test]
    fn an_unknown_kind_is_named_at_its_value() {
        let src =
            format!("{HEAD}[ticketing]\nkind = \"redmin\"\nbase_url = \"https://d.example\"\n");
        let (msg, line, col, hint) = find(&src, "unknown ticketing kind");
        assert_eq!(msg, "unknown ticketing kind `redmin`");
        assert_eq!((line, col), (8, 8));
        assert!(hint.contains("did you mean `redmine`?"), "{hint}");
    }

    #[test]
    fn an_inline_api_key_is_refused_without_echoing_it() {
        let src = format!(
            "{HEAD}[ticketing]\nkind = \"redmine\"\nbase_url = \"https://d.example\"\napi_key = \"rk-SECRET-55\"\n"
        );
        let err = errors(&src);
        let (msg, line, col, hint) = find(&src, "secrets must not");
        assert_eq!((line, col), (10, 11), "{msg}");
        assert!(
            hint.contains("api_key = { env = \"TICKETING_API_KEY\" }"),
            "{hint}"
        );
        assert!(!err.render(false).contains("rk-SECRET"));
    }

    #[test]
    fn missing_key_unknown_setting_and_bad_close_status_are_each_reported() {
        let src = format!(
            "{HEAD}[ticketing]\nkind = \"redmine\"\nbase_url = \"https://d.example\"\nprivate = true\nclose_status = \"\"\n"
        );
        let (msg, line, _, _) = find(&src, "needs the setting");
        assert_eq!(
            msg,
            "[ticketing] (kind `redmine`) needs the setting `api_key`"
        );
        assert_eq!(line, 7);
        let (msg, line, col, hint) = find(&src, "unknown key");
        assert_eq!(msg, "unknown key `private` in [ticketing] (kind `redmine`)");
        assert_eq!((line, col), (10, 1));
        assert!(
            hint.contains("api_key") && hint.contains("close_status"),
            "{hint}"
        );
        let (msg, line, col, _) = find(&src, "close_status");
        assert_eq!(msg, "`close_status` is empty");
        assert_eq!((line, col), (11, 16));
    }

    #[test]
    fn plain_http_to_another_machine_is_refused_at_the_table() {
        let src = format!(
            "{HEAD}[ticketing]\nkind = \"redmine\"\nbase_url = \"http://desk.example.com\"\napi_key = {{ env = \"K\" }}\n"
        );
        let (msg, line, _, _) = find(&src, "plain HTTP");
        assert!(msg.starts_with("[ticketing]: "), "{msg}");
        assert_eq!(line, 7);
        let ok = src.replace("http://desk.example.com", "http://127.0.0.1:3000");
        load(&ok).unwrap();
    }

    #[test]
    fn without_base_url_or_kind() {
        let src = format!("{HEAD}[ticketing]\napi_key = {{ env = \"K\" }}\n");
        let (msg, line, _, _) = find(&src, "kind");
        assert_eq!(msg, "[ticketing] has no `kind`");
        assert_eq!(line, 7);
        let (msg, _, _, _) = find(&src, "base_url");
        assert_eq!(msg, "[ticketing] needs a `base_url`");
    }
}
