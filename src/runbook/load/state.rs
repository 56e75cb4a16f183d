//! The `[state]` table: the shared PostgreSQL database departures are kept in (docs/postgres.md),
//! and reading that table alone from a runbook, for commands that use no other part of it.

use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::{Check, Val, too_large, too_large_hint};
use crate::runbook::{Diagnostic, RunbookError, StateDef};

pub(super) const STATE_KEYS: &[&str] = &["url", "password", "ca_file"];

const URL_EXAMPLE: &str = "\"postgres://offboard@db.corp.example/offboard\"";
const PASSWORD_EXAMPLE: &str = "password = { env = \"OFFBOARD_PG_PASSWORD\" }";

impl Check<'_> {
    pub(super) fn state_table(&mut self, key_span: Range<usize>, v: &Val<'_>) {
        let Some(t) = self.table("state", v, &format!("{{ url = {URL_EXAMPLE} }}")) else {
            return;
        };
        let mut url = None;
        let mut ca_file = false;
        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            match key {
                "url" => url = self.state_url(v).map(|u| (u, v.span())),
                "password" => self.state_password(v),
                "ca_file" => {
                    if let Some(s) = self.string(key, v, "\"/etc/offboard/db-ca.pem\"") {
                        ca_file = true;
                        if s.trim().is_empty() {
                            self.push(
                                "`ca_file` in [state] is empty",
                                v.span(),
                                "name the PEM file of the CA that signed the database server's certificate, e.g. `ca_file = \"/etc/offboard/db-ca.pem\"`",
                            );
                        }
                    }
                }
                other => {
                    // `passwd = "…"`: a misspelt key may hold the password itself.
                    self.hide(v);
                    self.unknown_key(other, k.span(), "[state]", STATE_KEYS);
                }
            }
        }
        match url {
            Some((url, span)) if ca_file => {
                let clash = url
                    .query_pairs()
                    .find(|(k, v)| k == "sslrootcert" || (k == "sslmode" && v != "verify-full"));
                if let Some((k, _)) = clash {
                    self.push(
                        format!("[state] has a `ca_file`, and its `url` sets `{k}` too"),
                        span,
                        "give the CA once: keep `ca_file` (the connection is then sslmode=verify-full) and drop the URL's sslmode/sslrootcert",
                    );
                }
            }
            Some(_) => {}
            None if t.iter().any(|(k, _)| k.get_ref() == "url") => {}
            None => {
                let at = self.head(key_span);
                self.push(
                    "[state] has no `url`",
                    at,
                    format!("add `url = {URL_EXAMPLE}` (no password in it)"),
                );
            }
        }
    }

    /// A `postgres://` URL without a password; a password in it is masked in what is shown.
    fn state_url(&mut self, v: &Val<'_>) -> Option<url::Url> {
        let s = self.string("url", v, URL_EXAMPLE)?;
        let Ok(url) = url::Url::parse(s) else {
            // It may be a URL with a password that does not parse: show none of it.
            self.hide(v);
            self.push(
                "`url` in [state] is not a URL",
                v.span(),
                format!("write it as `url = {URL_EXAMPLE}`"),
            );
            return None;
        };
        if url.password().is_some() || url.query_pairs().any(|(k, _)| k == "password") {
            self.hide(v);
            self.push(
                "the `url` in [state] carries a password; offboard never takes one in a URL",
                v.span(),
                format!(
                    "remove it from the URL and give it by reference: `{PASSWORD_EXAMPLE}` (or PGPASSWORD, or ~/.pgpass)"
                ),
            );
            return None;
        }
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            self.push(
                format!(
                    "the `url` in [state] is a {}:// URL; the shared state is PostgreSQL",
                    url.scheme()
                ),
                v.span(),
                format!(
                    "write it as `url = {URL_EXAMPLE}`; for a local directory, use --state-dir DIR"
                ),
            );
            return None;
        }
        for (k, _) in url.query_pairs() {
            if !matches!(k.as_ref(), "sslmode" | "sslrootcert" | "password_env") {
                self.push(
                    format!("unknown parameter `{k}` in the `url` of [state]"),
                    v.span(),
                    "known: sslmode (disable, verify-full), sslrootcert (a CA file), password_env; in [state], prefer `ca_file` and `password`",
                );
            }
        }
        Some(url)
    }

    /// `password`: a secret reference with exactly one of `env`, `file` or `command`.
    fn state_password(&mut self, v: &Val<'_>) {
        let hint = format!(
            "reference it instead: `{PASSWORD_EXAMPLE}`, or `{{ file = \"/run/secrets/…\" }}`, or `{{ command = [\"pass\", \"show\", \"…\"] }}`"
        );
        let DeValue::Table(t) = v.get_ref() else {
            self.hide(v);
            self.push(
                "secrets must not be written in the runbook: the `password` of [state] is not a reference",
                v.span(),
                hint,
            );
            return;
        };
        let entries: Vec<_> = t.iter().collect();
        let well_formed = match entries.as_slice() {
            [(k, inner)] => match k.get_ref().as_ref() {
                "env" | "file" => inner
                    .get_ref()
                    .as_str()
                    .is_some_and(|s| !s.trim().is_empty()),
                "command" => match inner.get_ref() {
                    DeValue::Array(a) => !a.is_empty() && a.iter().all(|i| i.get_ref().is_str()),
                    _ => false,
                },
                _ => false,
            },
            _ => false,
        };
        if !well_formed {
            self.hide(v);
            self.push(
                "the `password` of [state] must be a reference with exactly one of `env`, `file` (a non-empty string) or `command` (a non-empty list of strings)",
                v.span(),
                hint,
            );
        }
    }
}

/// The `[state]` table of the runbook at `path`, checked (errors at file:line:column, a
/// password never shown), without judging the rest of the runbook: commands that use no other
/// part of it (status, confirm, remind…) still learn where the departures are.
pub fn state_of_file(path: &Path) -> Result<Option<StateDef>, RunbookError> {
    // A file that cannot be read as TOML at all is reported as the full check reports it.
    let unreadable = |fallback: &str| match super::load_file(path) {
        Err(e) => e,
        Ok(_) => RunbookError {
            path: path.display().to_string(),
            source: String::new(),
            diagnostics: vec![Diagnostic::new(fallback.to_string(), None)],
        },
    };
    let bytes = std::fs::read(path).map_err(|_| unreadable("cannot read runbook"))?;
    if bytes.len() > super::MAX_RUNBOOK_BYTES {
        return Err(RunbookError {
            path: path.display().to_string(),
            source: String::new(),
            diagnostics: vec![Diagnostic::new(too_large(), None).hint(too_large_hint())],
        });
    }
    let source = String::from_utf8(bytes).map_err(|_| unreadable("runbook is not UTF-8 text"))?;
    if super::too_deep(&source).is_some() {
        return Err(unreadable("runbook nests too deep"));
    }
    let doc = DeTable::parse(&source).map_err(|_| unreadable("invalid TOML"))?;
    let Some((k, v)) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == "state") else {
        return Ok(None);
    };
    let mut check = Check::new(&source);
    check.state_table(k.span(), v);
    if !check.diags.is_empty() {
        return Err(RunbookError {
            path: path.display().to_string(),
            source: super::mask(source.clone(), &check.secrets),
            diagnostics: check.diags,
        });
    }
    #[derive(serde::Deserialize)]
    struct Only {
        state: StateDef,
    }
    let only: Only = toml::from_str(&source).map_err(|e| RunbookError {
        path: path.display().to_string(),
        source: String::new(),
        diagnostics: vec![Diagnostic::new(
            format!("[state]: {}", e.message().trim_end()),
            None,
        )],
    })?;
    Ok(Some(only.state))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{HEAD, errors, find, load};

    const STEP: &str = "\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n";

    /// The keys the validator allows are exactly the model's (from the schema).
    #[test]
    fn state_keys_match_the_model() {
        let schema: serde_json::Value =
            serde_json::from_str(&crate::runbook::schema::schema_json()).unwrap();
        let mut model: Vec<&str> = schema["$defs"]["StateDef"]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        model.sort();
        let mut ours = super::STATE_KEYS.to_vec();
        ours.sort();
        assert_eq!(model, ours);
    }

    #[test]
    fn a_state_table_loads() {
        let src = format!(
            "{HEAD}{STEP}\n[state]\nurl = \"postgres://offboard@db.corp.example/offboard\"\npassword = {{ env = \"OFFBOARD_PG_PASSWORD\" }}\nca_file = \"/etc/offboard/db-ca.pem\"\n"
        );
        let rb = load(&src).unwrap();
        let state = rb.file.state.unwrap();
        assert_eq!(state.url, "postgres://offboard@db.corp.example/offboard");
        assert_eq!(state.ca_file.as_deref(), Some("/etc/offboard/db-ca.pem"));
    }

    #[test]
    fn a_password_in_the_url_is_refused_and_masked() {
        let src =
            format!("{HEAD}{STEP}\n[state]\nurl = \"postgres://offboard:hunter2@db/offboard\"\n");
        let (msg, line, col, hint) = find(&src, "carries a password");
        assert_eq!(
            msg,
            "the `url` in [state] carries a password; offboard never takes one in a URL"
        );
        assert_eq!((line, col), (16, 7));
        assert!(hint.contains("password = { env ="), "{hint}");
        let shown = errors(&src).to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn a_bad_state_table_points_at_each_problem() {
        let src = format!(
            "{HEAD}{STEP}\n[state]\npassword = \"hunter2\"\nca_file = \"ca.pem\"\nsslmode = \"require\"\n"
        );
        let (msg, line, col, _) = find(&src, "not a reference");
        assert!(msg.contains("`password` of [state]"), "{msg}");
        assert_eq!((line, col), (16, 12));
        let (_, line, col, hint) = find(&src, "unknown key `sslmode`");
        assert_eq!((line, col), (18, 1));
        assert!(hint.contains("url, password, ca_file"), "{hint}");
        let (_, line, _, _) = find(&src, "no `url`");
        assert_eq!(line, 15);
        assert!(!errors(&src).to_string().contains("hunter2"));
        let clash = format!(
            "{HEAD}{STEP}\n[state]\nurl = \"postgres://o@db/o?sslmode=disable\"\nca_file = \"ca.pem\"\n"
        );
        let (_, line, _, _) = find(&clash, "sets `sslmode` too");
        assert_eq!(line, 16);
    }
}
