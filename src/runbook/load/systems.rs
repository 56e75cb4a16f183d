//! Checking the `[systems]` table: names, kinds, kind settings, `base_url` and secrets.

use std::ops::Range;

use toml::de::DeValue;

mod auth;

use super::{Check, SYSTEM_KEYS, Val, closest, is_ident};
use crate::providers::{self, SettingSpec, SettingType};

impl Check<'_> {
    pub(super) fn systems_table(&mut self, v: &Val<'_>) {
        let Some(t) = self.table("systems", v, "{ idp = { kind = \"sandbox\" } }") else {
            return;
        };
        for (k, v) in t.iter() {
            self.system(k.get_ref(), k.span(), v);
        }
    }

    fn system(&mut self, name: &str, name_span: Range<usize>, v: &Val<'_>) {
        if !is_ident(name) {
            self.push(
                format!("system name `{name}` is not valid"),
                name_span.clone(),
                "use letters, digits, `_` and `-`, e.g. `okta`",
            );
        }
        let place = format!("[systems.{name}]");
        let Some(t) = self.table(name, v, "{ kind = \"sandbox\" }") else {
            self.systems.insert(name.to_string(), None);
            return;
        };
        let field = |key: &str| t.iter().find(|(k, _)| k.get_ref() == key);
        let kind_names: Vec<&str> = providers::KINDS.iter().map(|k| k.name).collect();
        let kind = match field("kind") {
            None => {
                self.push(
                    format!("system `{name}` has no `kind`"),
                    name_span.clone(),
                    format!("add `kind = \"…\"`, one of: {}", kind_names.join(", ")),
                );
                None
            }
            Some((_, kv)) => match self.string("kind", kv, "\"sandbox\"") {
                None => None,
                Some(kind) => {
                    let found = providers::find_kind(kind);
                    if found.is_none() {
                        let mut hint = format!("known kinds: {}", kind_names.join(", "));
                        if let Some(best) = closest(kind, kind_names.iter().copied()) {
                            hint = format!("did you mean `{best}`? {hint}");
                        }
                        self.push(format!("unknown system kind `{kind}`"), kv.span(), hint);
                    }
                    found
                }
            },
        };
        self.systems.insert(name.to_string(), kind);

        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            match key {
                "kind" => {}
                "base_url" => {
                    if let Some(url) = self.string(key, v, "\"https://api.example.com\"") {
                        let schemes = kind.map_or(&["https", "http"][..], |k| k.url_schemes);
                        self.base_url(url, v.span(), schemes);
                    }
                }
                "token" => self.secret(name, key, v),
                "max_concurrency" => {
                    if let Some(n) = self.integer(key, v, "4")
                        && !(1..=64).contains(&n)
                    {
                        self.push(
                            format!("`max_concurrency` must be between 1 and 64, not {n}"),
                            v.span(),
                            "the default is 4; use 1 for APIs with strict rate limits",
                        );
                    }
                }
                "rate_limit" => {
                    if let Some(s) = self.string(key, v, "\"600/min\"")
                        && let Err(e) = crate::limits::RateLimit::parse(s)
                    {
                        self.push(
                            format!("`rate_limit`: {e}"),
                            v.span(),
                            "write COUNT/PERIOD with s, min or h, e.g. \"600/min\"",
                        );
                    }
                }
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
                "step_timeout_secs" => {
                    if let Some(n) = self.integer(key, v, "300")
                        && n < 1
                    {
                        self.push(
                            format!("`step_timeout_secs` must be at least 1, not {n}"),
                            v.span(),
                            "the default is 300 seconds, retries included",
                        );
                    }
                }
                "user" => {
                    if let Some(s) = self.string(key, v, "\"{{ user.email }}\"") {
                        self.template(s, v.span(), &format!("the `user` of system `{name}`"));
                    }
                }
                _ => match kind {
                    None => {}
                    Some(kind) => match kind.settings.iter().find(|s| s.name == key) {
                        Some(spec) => self.setting(spec, name, v, &place),
                        None => {
                            let allowed: Vec<&str> = SYSTEM_KEYS
                                .iter()
                                .copied()
                                .chain(kind.settings.iter().map(|s| s.name))
                                .collect();
                            self.unknown_key(
                                key,
                                k.span(),
                                &format!("{place} (kind `{}`)", kind.name),
                                &allowed,
                            );
                        }
                    },
                },
            }
        }

        let Some(kind) = kind else { return };
        if kind.needs_base_url && field("base_url").is_none() {
            self.push(
                format!("system `{name}` (kind `{}`) needs a `base_url`", kind.name),
                name_span.clone(),
                "add e.g. `base_url = \"https://app.example.com/scim/v2\"`",
            );
        }
        let takes_auth = kind.settings.iter().any(|s| s.ty == SettingType::Auth);
        let token = field("token");
        let auth = field("auth").filter(|_| takes_auth);
        if let (Some((t, _)), Some((a, _))) = (token, auth) {
            let second = if t.span().start > a.span().start {
                t
            } else {
                a
            };
            self.push(
                format!("system `{name}` has both `token` and `auth`"),
                second.span(),
                "keep one: `token = { … }` means `auth = { bearer = { … } }`",
            );
        }
        if kind.needs_token && token.is_none() && auth.is_none() {
            let example = format!("token = {{ env = \"{}\" }}", env_name(name, "token"));
            let (message, hint) = if takes_auth {
                (
                    format!(
                        "system `{name}` (kind `{}`) needs a `token` or an `auth` table",
                        kind.name
                    ),
                    format!(
                        "add `{example}` (a bearer token), or an `auth` table (bearer, header, \
                         basic, oauth2, google): see Authentication in runbooks/README.md"
                    ),
                )
            } else {
                (
                    format!("system `{name}` (kind `{}`) needs a `token`", kind.name),
                    format!("add `{example}`"),
                )
            };
            self.push(message, name_span.clone(), hint);
        }
        for spec in kind.settings.iter().filter(|s| s.required) {
            if field(spec.name).is_none() {
                self.push(
                    format!(
                        "system `{name}` (kind `{}`) needs the setting `{}`",
                        kind.name, spec.name
                    ),
                    name_span.clone(),
                    format!("add `{}`: {}", spec.name, spec.summary),
                );
            }
        }
    }

    pub(super) fn base_url(&mut self, url: &str, span: Range<usize>, schemes: &[&str]) {
        let example = format!("base_url = \"{}://host.example.com\"", schemes[0]);
        let wanted = schemes.join(" or ");
        match url::Url::parse(url) {
            Ok(u) if schemes.contains(&u.scheme()) && u.has_host() => {}
            Ok(u) => self.push(
                format!("`base_url` must be an {wanted} URL, not `{}:`", u.scheme()),
                span,
                format!("write it as `{example}`"),
            ),
            Err(e) => self.push(
                format!("`base_url` is not a URL: {e}"),
                span,
                format!("write it as `{example}`"),
            ),
        }
    }

    /// A secret must be a reference; the value of an inline secret is never echoed.
    fn secret(&mut self, system: &str, key: &str, v: &Val<'_>) {
        self.secret_at(system, key, key, key, v);
    }

    /// [`secret`](Self::secret) for a secret inside a table: `path` names it in messages
    /// (`auth.basic.password`), `key` is its own key and `env` the suggested variable's suffix.
    pub(super) fn secret_at(
        &mut self,
        system: &str,
        path: &str,
        key: &str,
        env: &str,
        v: &Val<'_>,
    ) {
        let example = format!("{key} = {{ env = \"{}\" }}", env_name(system, env));
        let hint = format!(
            "reference it instead: `{example}`, or `{{ file = \"/run/secrets/…\" }}`, or `{{ command = [\"pass\", \"show\", \"…\"] }}`"
        );
        let DeValue::Table(t) = v.get_ref() else {
            // Whatever its shape (a string, a list of strings, a number), it may be the secret.
            self.hide(v);
            let what = if v.get_ref().is_str() {
                "is written inline"
            } else {
                "is not a reference"
            };
            self.push(
                format!(
                    "secrets must not be written in the runbook: `{path}` of system `{system}` {what}"
                ),
                v.span(),
                hint,
            );
            return;
        };
        let entries: Vec<_> = t.iter().collect();
        let [(k, inner)] = entries.as_slice() else {
            // `{ env = "X", value = "…" }`: the extra value may be the secret itself.
            self.hide(v);
            self.push(
                format!(
                    "`{path}` of system `{system}` must have exactly one of `env`, `file` or `command`"
                ),
                v.span(),
                hint,
            );
            return;
        };
        let ok = match k.get_ref().as_ref() {
            "env" | "file" => inner
                .get_ref()
                .as_str()
                .is_some_and(|s| !s.trim().is_empty()),
            "command" => match inner.get_ref() {
                DeValue::Array(a) => !a.is_empty() && a.iter().all(|i| i.get_ref().is_str()),
                _ => false,
            },
            other => {
                // `{ envv = "…" }`: a misspelt reference may hold the secret itself.
                self.hide(v);
                self.unknown_key(
                    other,
                    k.span(),
                    &format!("the secret reference `{path}`"),
                    &["env", "file", "command"],
                );
                return;
            }
        };
        if !ok {
            self.hide(v);
            let want = if k.get_ref() == "command" {
                "a non-empty list of strings"
            } else {
                "a non-empty string"
            };
            self.push(
                format!(
                    "`{}` in the secret reference `{path}` must be {want}",
                    k.get_ref()
                ),
                inner.span(),
                hint,
            );
        }
    }

    /// Mask every scalar inside `v` (recursively through lists and tables) when diagnostics are
    /// shown: it was written where a secret belongs and is not a well-formed reference.
    pub(super) fn hide(&mut self, v: &Val<'_>) {
        match v.get_ref() {
            DeValue::Array(items) => items.iter().for_each(|i| self.hide(i)),
            DeValue::Table(t) => t.iter().for_each(|(_, i)| self.hide(i)),
            _ => self.secrets.push(v.span()),
        }
    }

    /// A kind setting or action parameter, checked against its spec.
    pub(super) fn setting(&mut self, spec: &SettingSpec, system: &str, v: &Val<'_>, place: &str) {
        let what = format!("`{}` in {place}", spec.name);
        match spec.ty {
            SettingType::String => {
                if let Some(s) = self.string(spec.name, v, "\"…\"") {
                    self.template(s, v.span(), &what);
                }
            }
            SettingType::Integer => {
                self.integer(spec.name, v, "1");
            }
            SettingType::Bool => {
                self.boolean(spec.name, v);
            }
            SettingType::StringList => {
                if let Some(items) = self.string_list(spec.name, v, "[\"…\"]") {
                    for (s, span) in items {
                        self.template(s, span, &what);
                    }
                }
            }
            SettingType::Secret | SettingType::SecretDocument => self.secret(system, spec.name, v),
            SettingType::Auth => self.auth_table(system, v),
        }
    }
}

/// A suggested environment variable name for a secret, e.g. `OKTA_TOKEN`.
fn env_name(system: &str, key: &str) -> String {
    let raw = if system.is_empty() {
        key.to_string()
    } else {
        format!("{system}_{key}")
    };
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{errors, find, load};

    #[test]
    fn unknown_system_setting_checked_against_kind() {
        let src = "[runbook]\nname = \"t\"\n[systems.idp]\nkind = \"sandbox\"\nlatency = 5\n";
        let (msg, line, col, hint) = find(src, "unknown key");
        assert_eq!(
            msg,
            "unknown key `latency` in [systems.idp] (kind `sandbox`)"
        );
        assert_eq!((line, col), (5, 1));
        assert!(hint.contains("did you mean `latency_ms`?"), "{hint}");
    }

    #[test]
    fn setting_type_is_checked() {
        let src =
            "[runbook]\nname = \"t\"\n[systems.idp]\nkind = \"sandbox\"\nlatency_ms = \"fast\"\n";
        let (msg, line, col, _) = find(src, "latency_ms");
        assert_eq!(msg, "`latency_ms` must be an integer, found string");
        assert_eq!((line, col), (5, 14));
    }

    #[test]
    fn unknown_kind_lists_known_kinds() {
        let src = "[runbook]\nname = \"t\"\n\n[systems.zd]\nkind = \"zendesk\"\n";
        let (msg, line, col, hint) = find(src, "kind");
        assert_eq!(msg, "unknown system kind `zendesk`");
        assert_eq!((line, col), (5, 8));
        assert!(hint.contains("scim") && hint.contains("sandbox"), "{hint}");
    }

    #[test]
    fn inline_secret_is_refused_without_echoing_it() {
        let src = "[runbook]\nname = \"t\"\n\n[systems.okta]\nkind = \"scim\"\nbase_url = \"https://okta.example.com\"\ntoken = \"abc-SECRET-123\"\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n";
        let err = errors(src);
        assert_eq!(err.diagnostics.len(), 1, "{:#?}", err.diagnostics);
        let (msg, line, col, hint) = find(src, "secrets");
        assert!(
            msg.starts_with("secrets must not be written in the runbook"),
            "{msg}"
        );
        assert_eq!((line, col), (7, 9));
        assert!(hint.contains("token = { env = \"OKTA_TOKEN\" }"), "{hint}");
        let rendered = err.render(false);
        assert!(!err.diagnostics[0].message.contains("abc-SECRET"));
        assert!(!hint.contains("abc-SECRET"));
        assert!(
            rendered.contains("help: reference it instead"),
            "{rendered}"
        );
        assert!(!rendered.contains("abc-SECRET"), "{rendered}");
        assert!(
            rendered.contains("token = \"**************\""),
            "{rendered}"
        );
        assert_eq!(err.source.len(), src.len());
    }

    #[test]
    fn secret_reference_shape_is_checked() {
        let src = "[runbook]\nname = \"t\"\n[systems.okta]\nkind = \"scim\"\nbase_url = \"https://o.example\"\ntoken = { env = \"A\", file = \"b\" }\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n";
        let (msg, line, col, _) = find(src, "exactly one");
        assert_eq!(
            msg,
            "`token` of system `okta` must have exactly one of `env`, `file` or `command`"
        );
        assert_eq!((line, col), (6, 9));
        let ok = "[runbook]\nname = \"t\"\n[systems.okta]\nkind = \"scim\"\nbase_url = \"https://o.example\"\ntoken = { command = [\"pass\", \"show\", \"okta\"] }\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n";
        assert!(load(ok).is_ok());
    }

    #[test]
    fn template_in_system_user_and_unclosed() {
        let src = "[runbook]\nname = \"t\"\n[systems.idp]\nkind = \"sandbox\"\nuser = \"{{ user.mail }}\"\n";
        let (msg, line, col, hint) = find(src, "template");
        assert_eq!(
            msg,
            "unknown template variable `user.mail` in the `user` of system `idp`"
        );
        assert_eq!((line, col), (5, 12));
        assert!(hint.contains("did you mean `user.email`?"), "{hint}");
        let src = "[runbook]\nname = \"t\"\n[systems.idp]\nkind = \"sandbox\"\nuser = \"{{ user.email\"\n";
        let (msg, line, col, _) = find(src, "unclosed");
        assert_eq!(msg, "unclosed `{{` in the `user` of system `idp`");
        assert_eq!((line, col), (5, 9));
    }

    #[test]
    fn max_concurrency_range() {
        let src = "[runbook]\nname = \"t\"\n[systems.idp]\nkind = \"sandbox\"\nmax_concurrency = 0\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n";
        let (msg, line, col, _) = find(src, "max_concurrency");
        assert_eq!(msg, "`max_concurrency` must be between 1 and 64, not 0");
        assert_eq!((line, col), (5, 19));
        let src = src.replace("= 0", "= 65");
        assert!(find(&src, "max_concurrency").0.ends_with("not 65"));
        assert!(load(&src.replace("= 65", "= 64")).is_ok());
    }

    #[test]
    fn values_only_the_provider_can_judge_point_at_the_system() {
        let src = "[runbook]\nname = \"t\"\n[systems.ad]\nkind = \"ldap\"\nflavor = \"novell\"\nbase_url = \"ldaps://dc.example\"\nbind_dn = \"a\"\nbind_password = { env = \"P\" }\nbase_dn = \"DC=x\"\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n";
        let (msg, line, col, hint) = find(src, "flavor");
        assert!(
            msg.starts_with("system `ad`: flavor `novell` is not one of"),
            "{msg}"
        );
        assert_eq!((line, col), (3, 10));
        assert!(hint.contains("runbooks/README.md"));
    }

    #[test]
    fn base_url_and_token_required_by_kind() {
        let src = "[runbook]\nname = \"t\"\n[systems.app]\nkind = \"scim\"\n";
        let (msg, line, col, hint) = find(src, "base_url");
        assert_eq!(msg, "system `app` (kind `scim`) needs a `base_url`");
        assert_eq!((line, col), (3, 10));
        assert!(hint.contains("https://"));
        let (msg, _, _, hint) = find(src, "token");
        assert_eq!(
            msg,
            "system `app` (kind `scim`) needs a `token` or an `auth` table"
        );
        assert!(hint.contains("token = { env = \"APP_TOKEN\" }"), "{hint}");
        let src = "[runbook]\nname = \"t\"\n[systems.app]\nkind = \"scim\"\nbase_url = \"ftp://x.example\"\ntoken = { env = \"T\" }\n";
        let (msg, line, col, _) = find(src, "base_url");
        assert_eq!(msg, "`base_url` must be an https or http URL, not `ftp:`");
        assert_eq!((line, col), (5, 12));
        let src = src.replace("ftp://x.example", "not a url");
        assert!(
            find(&src, "base_url")
                .0
                .starts_with("`base_url` is not a URL")
        );
    }
}
