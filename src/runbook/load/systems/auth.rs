//! Checking a system's `auth` table (for the kinds that accept one): exactly one known type,
//! its keys and their types, every secret by reference, and a token endpoint that keeps the
//! client's credentials off the network in clear.
//!
//! The shape is [`crate::providers::kit::auth::AuthSpec`]; the key lists here are checked
//! against its generated schema by a test, so the two cannot drift apart.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::de::DeValue;

use super::super::{Check, Val, closest};
use super::env_name;

pub(super) const TYPES: &[&str] = &["bearer", "header", "basic", "oauth2", "google"];
pub(super) const HEADER_KEYS: &[&str] = &["name", "scheme", "value"];
pub(super) const BASIC_KEYS: &[&str] = &["username", "password"];
pub(super) const OAUTH2_KEYS: &[&str] = &[
    "token_url",
    "client_id",
    "scopes",
    "audience",
    "client_secret",
    "client_auth",
    "private_key",
    "key_id",
];
pub(super) const GOOGLE_KEYS: &[&str] = &["service_account", "subject", "scopes"];

/// The keys of one auth type's table that are known, by name, with the span of each key.
type Fields<'v, 'i> = BTreeMap<&'static str, (Range<usize>, &'v Val<'i>)>;

impl Check<'_> {
    /// The `auth` table of `system`.
    pub(super) fn auth_table(&mut self, system: &str, v: &Val<'_>) {
        let types = format!("one of: {}", TYPES.join(", "));
        let DeValue::Table(t) = v.get_ref() else {
            // `auth = "…"`: it may be the secret itself.
            self.hide(v);
            self.push(
                format!(
                    "`auth` of system `{system}` must be a table naming how to authenticate, \
                     found {}",
                    v.get_ref().type_str()
                ),
                v.span(),
                format!(
                    "e.g. `auth = {{ bearer = {{ env = \"{}\" }} }}`; the types: {}",
                    env_name(system, "token"),
                    TYPES.join(", ")
                ),
            );
            return;
        };
        let mut entries: Vec<_> = t.iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        if entries.is_empty() {
            self.push(
                format!("the `auth` table of system `{system}` is empty"),
                v.span(),
                format!("name one way to authenticate, {types}"),
            );
            return;
        }
        let first = entries[0].0.get_ref().to_string();
        for (i, (k, inner)) in entries.iter().enumerate() {
            let ty: &str = k.get_ref();
            if !TYPES.contains(&ty) {
                // `{ token = "…" }`: what is under an unknown type may be a secret.
                self.hide(inner);
                let mut hint = format!("the types: {}", TYPES.join(", "));
                if let Some(best) = closest(ty, TYPES.iter().copied()) {
                    hint = format!("did you mean `{best}`? {hint}");
                }
                self.push(
                    format!("unknown auth type `{ty}` in the `auth` of system `{system}`"),
                    k.span(),
                    hint,
                );
                continue;
            }
            if i > 0 {
                self.push(
                    format!(
                        "the `auth` of system `{system}` names more than one way to authenticate \
                         (`{first}` and `{ty}`)"
                    ),
                    k.span(),
                    format!("keep exactly one, {types}"),
                );
            }
            match ty {
                "bearer" => self.secret_at(system, "auth.bearer", "bearer", "token", inner),
                "header" => self.auth_header(system, k.span(), inner),
                "basic" => self.auth_basic(system, k.span(), inner),
                "oauth2" => self.auth_oauth2(system, k.span(), inner),
                _ => self.auth_google(system, k.span(), inner),
            }
        }
    }

    /// The known keys of auth type `ty`'s table; an unknown key is reported and its value
    /// masked (it may be a secret under a misspelt name). `None` when it is not a table.
    fn auth_fields<'v, 'i>(
        &mut self,
        system: &str,
        ty: &str,
        v: &'v Val<'i>,
        allowed: &[&'static str],
        example: &str,
    ) -> Option<Fields<'v, 'i>> {
        let DeValue::Table(t) = v.get_ref() else {
            self.hide(v);
            self.push(
                format!(
                    "`auth.{ty}` of system `{system}` must be a table, found {}",
                    v.get_ref().type_str()
                ),
                v.span(),
                format!("write it as `{ty} = {example}`"),
            );
            return None;
        };
        let mut fields = Fields::new();
        for (k, inner) in t.iter() {
            let key: &str = k.get_ref();
            match allowed.iter().find(|a| **a == key) {
                Some(known) => {
                    fields.insert(known, (k.span(), inner));
                }
                None => {
                    self.hide(inner);
                    self.unknown_key(
                        key,
                        k.span(),
                        &format!("`auth.{ty}` of system `{system}`"),
                        allowed,
                    );
                }
            }
        }
        Some(fields)
    }

    /// `auth.<ty>` lacks `key`.
    fn auth_missing(&mut self, system: &str, ty: &str, at: Range<usize>, key: &str, add: &str) {
        self.push(
            format!("`auth.{ty}` of system `{system}` needs `{key}`"),
            at,
            format!("add `{key} = {add}`"),
        );
    }

    fn auth_header(&mut self, system: &str, at: Range<usize>, v: &Val<'_>) {
        let env = env_name(system, "api_key");
        let example = format!("{{ name = \"X-Api-Key\", value = {{ env = \"{env}\" }} }}");
        let Some(f) = self.auth_fields(system, "header", v, HEADER_KEYS, &example) else {
            return;
        };
        match f.get("name") {
            None => self.auth_missing(system, "header", at.clone(), "name", "\"X-Api-Key\""),
            Some((_, v)) => {
                if let Some(name) = self.string("name", v, "\"X-Api-Key\"")
                    && reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
                {
                    self.push(
                        format!("`{name}` is not an HTTP header name"),
                        v.span(),
                        "use letters, digits and `-`, e.g. `X-Api-Key`",
                    );
                }
            }
        }
        if let Some((_, v)) = f.get("scheme")
            && let Some(scheme) = self.string("scheme", v, "\"Token\"")
            && (scheme.is_empty() || !scheme.bytes().all(is_token_char))
        {
            self.push(
                format!("`{scheme}` is not a scheme word"),
                v.span(),
                "one word sent before the secret, e.g. `Token` or `SSWS`",
            );
        }
        match f.get("value") {
            None => self.auth_missing(
                system,
                "header",
                at,
                "value",
                &format!("{{ env = \"{env}\" }}"),
            ),
            Some((_, v)) => self.secret_at(system, "auth.header.value", "value", "api_key", v),
        }
    }

    fn auth_basic(&mut self, system: &str, at: Range<usize>, v: &Val<'_>) {
        let env = env_name(system, "password");
        let example =
            format!("{{ username = \"svc-offboard\", password = {{ env = \"{env}\" }} }}");
        let Some(f) = self.auth_fields(system, "basic", v, BASIC_KEYS, &example) else {
            return;
        };
        match f.get("username") {
            None => self.auth_missing(system, "basic", at.clone(), "username", "\"svc-offboard\""),
            Some((_, v)) => {
                if let Some(user) = self.string("username", v, "\"svc-offboard\"") {
                    if user.trim().is_empty() {
                        self.push(
                            "the Basic `username` is empty",
                            v.span(),
                            "write the account's user name, e.g. `svc-offboard`",
                        );
                    } else if user.contains(':') {
                        self.push(
                            "the Basic `username` contains `:`, which HTTP Basic cannot carry",
                            v.span(),
                            "use the account's user name without `:`",
                        );
                    }
                }
            }
        }
        match f.get("password") {
            None => self.auth_missing(
                system,
                "basic",
                at,
                "password",
                &format!("{{ env = \"{env}\" }}"),
            ),
            Some((_, v)) => {
                self.secret_at(system, "auth.basic.password", "password", "password", v)
            }
        }
    }

    fn auth_oauth2(&mut self, system: &str, at: Range<usize>, v: &Val<'_>) {
        let env = env_name(system, "client_secret");
        let example = format!(
            "{{ token_url = \"https://login.example.com/oauth2/token\", client_id = \"…\", \
             client_secret = {{ env = \"{env}\" }} }}"
        );
        let Some(f) = self.auth_fields(system, "oauth2", v, OAUTH2_KEYS, &example) else {
            return;
        };
        match f.get("token_url") {
            None => self.auth_missing(
                system,
                "oauth2",
                at.clone(),
                "token_url",
                "\"https://login.example.com/oauth2/token\"",
            ),
            Some((_, v)) => {
                if let Some(url) = self.string("token_url", v, "\"https://…/oauth2/token\"") {
                    self.token_url(system, url, v.span());
                }
            }
        }
        match f.get("client_id") {
            None => self.auth_missing(system, "oauth2", at.clone(), "client_id", "\"…\""),
            Some((_, v)) => {
                if let Some(id) = self.string("client_id", v, "\"…\"")
                    && id.trim().is_empty()
                {
                    self.push(
                        "the OAuth `client_id` is empty",
                        v.span(),
                        "write the client (application) id the token endpoint knows",
                    );
                }
            }
        }
        if let Some((_, v)) = f.get("scopes") {
            self.string_list("scopes", v, "[\"https://graph.microsoft.com/.default\"]");
        }
        if let Some((_, v)) = f.get("audience") {
            self.string("audience", v, "\"https://api.example.com\"");
        }
        let secret = f.get("client_secret");
        let key = f.get("private_key");
        match (secret, key) {
            (None, None) => self.push(
                format!(
                    "`auth.oauth2` of system `{system}` needs `client_secret` or `private_key`"
                ),
                at,
                format!(
                    "add `client_secret = {{ env = \"{env}\" }}`, or `private_key = {{ file = \
                     \"…/key.pem\" }}` for private_key_jwt"
                ),
            ),
            (Some((ks, _)), Some((kk, _))) => {
                let second = if ks.start > kk.start { ks } else { kk };
                self.push(
                    format!(
                        "`auth.oauth2` of system `{system}` has both `client_secret` and \
                         `private_key`"
                    ),
                    second.clone(),
                    "keep one: the client proves itself with its secret, or with a JWT signed \
                     by its private key (private_key_jwt)",
                );
            }
            _ => {}
        }
        if let Some((_, v)) = secret {
            self.secret_at(
                system,
                "auth.oauth2.client_secret",
                "client_secret",
                "client_secret",
                v,
            );
        }
        if let Some((_, v)) = key {
            self.secret_at(
                system,
                "auth.oauth2.private_key",
                "private_key",
                "private_key",
                v,
            );
        }
        if let Some((k, v)) = f.get("client_auth") {
            self.one_of("client_auth", v, &["post", "basic"]);
            if secret.is_none() && key.is_some() {
                self.push(
                    "`client_auth` says how a client secret is sent, and there is none",
                    k.clone(),
                    "remove it: with `private_key` the client sends a signed assertion",
                );
            }
        }
        if let Some((k, v)) = f.get("key_id") {
            self.string("key_id", v, "\"…\"");
            if key.is_none() {
                self.push(
                    "`key_id` names the private key, and there is none",
                    k.clone(),
                    "remove it, or authenticate with `private_key = { file = \"…\" }`",
                );
            }
        }
    }

    /// https, or http to this machine only: the client's secret or assertion goes in the body.
    fn token_url(&mut self, system: &str, url: &str, span: Range<usize>) {
        let example = "token_url = \"https://login.example.com/oauth2/token\"";
        match url::Url::parse(url) {
            Err(e) => self.push(
                format!("`token_url` is not a URL: {e}"),
                span,
                format!("write it as `{example}`"),
            ),
            Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                // The user part may be a credential: not shown.
                self.hide_span(span.clone());
                self.push(
                    "`token_url` must not carry credentials",
                    span,
                    "remove the `user:password@`; the client authenticates with its secret or key",
                );
            }
            Ok(u) if u.scheme() == "https" && u.has_host() => {}
            Ok(u) if u.scheme() == "http" && crate::providers::kit::http::is_loopback(&u) => {}
            Ok(u) if u.scheme() == "http" => self.push(
                format!(
                    "`token_url` of system `{system}` is plain HTTP to {}: the client's \
                     credentials would cross the network in clear",
                    u.host_str().unwrap_or("?")
                ),
                span,
                "use https:// (plain http:// only to this machine: 127.0.0.1, ::1, localhost)",
            ),
            Ok(u) => self.push(
                format!("`token_url` must be an https URL, not `{}:`", u.scheme()),
                span,
                format!("write it as `{example}`"),
            ),
        }
    }

    fn auth_google(&mut self, system: &str, at: Range<usize>, v: &Val<'_>) {
        let scopes_example = "[\"https://www.googleapis.com/auth/admin.directory.user\"]";
        let example = format!(
            "{{ service_account = {{ file = \"…/sa.json\" }}, subject = \"admin@…\", scopes = \
             {scopes_example} }}"
        );
        let Some(f) = self.auth_fields(system, "google", v, GOOGLE_KEYS, &example) else {
            return;
        };
        match f.get("service_account") {
            None => self.auth_missing(
                system,
                "google",
                at.clone(),
                "service_account",
                "{ file = \"/etc/offboard/sa.json\" }",
            ),
            Some((_, v)) => self.secret_at(
                system,
                "auth.google.service_account",
                "service_account",
                "service_account",
                v,
            ),
        }
        match f.get("scopes") {
            None => self.auth_missing(system, "google", at, "scopes", scopes_example),
            Some((_, v)) => {
                if let Some(list) = self.string_list("scopes", v, scopes_example)
                    && list.is_empty()
                {
                    self.push(
                        "a Google service account needs at least one scope",
                        v.span(),
                        format!("write it as `scopes = {scopes_example}`"),
                    );
                }
            }
        }
        if let Some((_, v)) = f.get("subject")
            && let Some(s) = self.string("subject", v, "\"admin@corp.example\"")
            && s.trim().is_empty()
        {
            self.push(
                "the Google `subject` is empty",
                v.span(),
                "write the Workspace user to act as, e.g. an admin, or remove it",
            );
        }
    }

    fn hide_span(&mut self, span: Range<usize>) {
        self.secrets.push(span);
    }
}

/// RFC 9110 `tchar`: what a header name or an auth scheme is made of.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::super::super::tests::{errors, find, load};

    /// A runbook with one scim system whose last lines are `system` (after `kind` and
    /// `base_url`, lines 3–5), then a manual step. `system` starts on line 6.
    fn rb(system: &str) -> String {
        format!(
            "[runbook]\nname = \"t\"\n[systems.acme]\nkind = \"scim\"\nbase_url = \"https://acme.example/scim/v2\"\n{system}\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n"
        )
    }

    #[test]
    fn each_auth_type_loads() {
        for system in [
            "auth = { bearer = { env = \"ACME_TOKEN\" } }",
            "auth = { header = { name = \"X-Api-Key\", value = { env = \"K\" } } }",
            "auth = { header = { name = \"Authorization\", scheme = \"Token\", value = { file = \"/run/k\" } } }",
            "auth = { basic = { username = \"svc-offboard\", password = { command = [\"pass\", \"acme\"] } } }",
            "[systems.acme.auth.oauth2]\ntoken_url = \"https://login.example/oauth2/token\"\nclient_id = \"0f6c\"\nscopes = [\"api://acme/.default\"]\nclient_secret = { env = \"S\" }\nclient_auth = \"basic\"",
            "[systems.acme.auth.oauth2]\ntoken_url = \"http://127.0.0.1:8080/token\"\nclient_id = \"0f6c\"\nprivate_key = { file = \"key.pem\" }\nkey_id = \"k1\"\naudience = \"https://api.acme.example\"",
            "[systems.acme.auth.google]\nservice_account = { file = \"sa.json\" }\nsubject = \"admin@corp.example\"\nscopes = [\"https://www.googleapis.com/auth/admin.directory.user\"]",
        ] {
            let src = rb(system);
            if let Err(e) = load(&src) {
                panic!("{system}:\n{e}");
            }
        }
    }

    #[test]
    fn the_auth_table_is_deserialized_into_the_kit_model() {
        use crate::providers::kit::auth::{AuthSpec, SecretIn};
        use crate::runbook::SecretRef;
        let src = rb(
            "[systems.acme.auth.oauth2]\ntoken_url = \"https://login.example/t\"\nclient_id = \"c\"\nclient_secret = { env = \"S\" }\nclient_auth = \"basic\"",
        );
        let rb = load(&src).unwrap();
        let v = rb.file.systems["acme"].settings["auth"].clone();
        let spec: AuthSpec<SecretRef> = v.try_into().unwrap();
        let AuthSpec::OAuth2(o) = spec else {
            panic!("{spec:?}")
        };
        assert_eq!(o.token_url, "https://login.example/t");
        assert_eq!(o.client_auth, Some(SecretIn::Basic));
        assert_eq!(o.client_secret, Some(SecretRef::Env { env: "S".into() }));
    }

    #[test]
    fn unknown_auth_type_suggests_the_closest() {
        let src = rb("auth = { oauth = { token_url = \"https://l.example/t\" } }");
        let (msg, line, col, hint) = find(&src, "auth type");
        assert_eq!(
            msg,
            "unknown auth type `oauth` in the `auth` of system `acme`"
        );
        assert_eq!((line, col), (6, 10));
        assert!(hint.starts_with("did you mean `oauth2`?"), "{hint}");
        assert!(
            hint.contains("bearer, header, basic, oauth2, google"),
            "{hint}"
        );
    }

    #[test]
    fn exactly_one_auth_type() {
        let src = rb(
            "auth = { bearer = { env = \"T\" }, basic = { username = \"u\", password = { env = \"P\" } } }",
        );
        let (msg, line, col, hint) = find(&src, "more than one");
        assert_eq!(
            msg,
            "the `auth` of system `acme` names more than one way to authenticate (`bearer` and `basic`)"
        );
        // At the second one.
        assert_eq!((line, col), (6, 34));
        assert!(hint.contains("keep exactly one"), "{hint}");
        let (msg, line, col, _) = find(&rb("auth = {}"), "empty");
        assert_eq!(msg, "the `auth` table of system `acme` is empty");
        assert_eq!((line, col), (6, 8));
        let (msg, _, _, _) = find(&rb("auth = \"tok-inline-1234\""), "must be a table");
        assert!(msg.ends_with("found string"), "{msg}");
    }

    #[test]
    fn required_keys_are_named_at_the_type() {
        let src =
            rb("[systems.acme.auth.oauth2]\nclient_id = \"c\"\nclient_secret = { env = \"S\" }");
        let (msg, line, col, hint) = find(&src, "token_url");
        assert_eq!(msg, "`auth.oauth2` of system `acme` needs `token_url`");
        assert_eq!((line, col), (6, 20));
        assert!(hint.contains("https://"), "{hint}");
        let src =
            rb("auth = { oauth2 = { token_url = \"https://l.example/t\", client_id = \"c\" } }");
        let (msg, _, _, hint) = find(&src, "needs `client_secret` or `private_key`");
        assert_eq!(
            msg,
            "`auth.oauth2` of system `acme` needs `client_secret` or `private_key`"
        );
        assert!(hint.contains("ACME_CLIENT_SECRET"), "{hint}");
        let (msg, line, col, _) = find(&rb("auth = { basic = { username = \"u\" } }"), "needs");
        assert_eq!(msg, "`auth.basic` of system `acme` needs `password`");
        assert_eq!((line, col), (6, 10));
        let (msg, _, _, _) = find(
            &rb("auth = { google = { service_account = { file = \"sa.json\" } } }"),
            "needs",
        );
        assert_eq!(msg, "`auth.google` of system `acme` needs `scopes`");
        let (msg, _, _, _) = find(
            &rb("auth = { header = { value = { env = \"K\" } } }"),
            "needs",
        );
        assert_eq!(msg, "`auth.header` of system `acme` needs `name`");
    }

    #[test]
    fn client_secret_and_private_key_are_exclusive() {
        let src = rb(
            "[systems.acme.auth.oauth2]\ntoken_url = \"https://l.example/t\"\nclient_id = \"c\"\nprivate_key = { file = \"k.pem\" }\nclient_secret = { env = \"S\" }\nclient_auth = \"basic\"",
        );
        let err = errors(&src);
        let (msg, line, col, _) = find(&src, "has both");
        assert_eq!(
            msg,
            "`auth.oauth2` of system `acme` has both `client_secret` and `private_key`"
        );
        assert_eq!((line, col), (10, 1), "at the second: {err}");
        // `client_auth` and `key_id` belong to one of them.
        let src = rb(
            "[systems.acme.auth.oauth2]\ntoken_url = \"https://l.example/t\"\nclient_id = \"c\"\nprivate_key = { file = \"k.pem\" }\nclient_auth = \"post\"",
        );
        assert!(find(&src, "client_auth").0.contains("there is none"));
        let src = rb(
            "[systems.acme.auth.oauth2]\ntoken_url = \"https://l.example/t\"\nclient_id = \"c\"\nclient_secret = { env = \"S\" }\nkey_id = \"k1\"",
        );
        let (msg, line, col, _) = find(&src, "key_id");
        assert_eq!(msg, "`key_id` names the private key, and there is none");
        assert_eq!((line, col), (10, 1));
        let src = rb(
            "[systems.acme.auth.oauth2]\ntoken_url = \"https://l.example/t\"\nclient_id = \"c\"\nclient_secret = { env = \"S\" }\nclient_auth = \"basci\"",
        );
        let (msg, _, _, hint) = find(&src, "client_auth");
        assert_eq!(msg, "`basci` is not a valid `client_auth`");
        assert!(hint.contains("did you mean `basic`?"), "{hint}");
    }

    #[test]
    fn secrets_inside_auth_are_references_only_and_never_echoed() {
        for (system, path, line, col) in [
            ("auth = { bearer = \"tok-SECRET-1\" }", "auth.bearer", 6, 19),
            (
                "auth = { basic = { username = \"u\", password = \"tok-SECRET-1\" } }",
                "auth.basic.password",
                6,
                47,
            ),
            (
                "auth = { header = { name = \"X-Api-Key\", value = \"tok-SECRET-1\" } }",
                "auth.header.value",
                6,
                49,
            ),
            (
                "[systems.acme.auth.oauth2]\ntoken_url = \"https://l.example/t\"\nclient_id = \"c\"\nclient_secret = \"tok-SECRET-1\"",
                "auth.oauth2.client_secret",
                9,
                17,
            ),
        ] {
            let src = rb(system);
            let err = errors(&src);
            let (msg, l, c, hint) = find(&src, "secrets must not");
            assert_eq!(
                msg,
                format!(
                    "secrets must not be written in the runbook: `{path}` of system `acme` is written inline"
                )
            );
            assert_eq!((l, c), (line, col), "{system}");
            assert!(hint.contains("= { env = \"ACME_"), "{hint}");
            let rendered = err.render(false);
            assert!(!rendered.contains("tok-SECRET"), "{rendered}");
        }
        // Under a misspelt key or an unknown type, a value may be a secret too: masked.
        for system in [
            "[systems.acme.auth.oauth2]\ntoken_url = \"https://l.example/t\"\nclient_id = \"c\"\nclient_secert = \"tok-SECRET-1\"",
            "auth = { token = \"tok-SECRET-1\" }",
            "auth = { basic = \"svc:tok-SECRET-1\" }",
        ] {
            let err = errors(&rb(system));
            let rendered = err.render(false);
            assert!(!rendered.contains("tok-SECRET"), "{rendered}");
        }
        let (msg, line, col, hint) = find(
            &rb(
                "[systems.acme.auth.oauth2]\ntoken_url = \"https://l.example/t\"\nclient_id = \"c\"\nclient_secert = { env = \"S\" }",
            ),
            "unknown key",
        );
        assert_eq!(
            msg,
            "unknown key `client_secert` in `auth.oauth2` of system `acme`"
        );
        assert_eq!((line, col), (9, 1));
        assert!(hint.contains("did you mean `client_secret`?"), "{hint}");
    }

    #[test]
    fn token_url_keeps_credentials_off_plain_http() {
        let oauth = |url: &str| {
            rb(&format!(
                "[systems.acme.auth.oauth2]\ntoken_url = \"{url}\"\nclient_id = \"c\"\nclient_secret = {{ env = \"S\" }}"
            ))
        };
        let (msg, line, col, hint) = find(&oauth("http://login.example.com/token"), "token_url");
        assert_eq!(
            msg,
            "`token_url` of system `acme` is plain HTTP to login.example.com: the client's credentials would cross the network in clear"
        );
        assert_eq!((line, col), (7, 13));
        assert!(hint.contains("https://"), "{hint}");
        for ok in [
            "http://127.0.0.1:9999/token",
            "http://localhost/token",
            "http://[::1]:80/t",
        ] {
            assert!(load(&oauth(ok)).is_ok(), "{ok}");
        }
        assert!(
            find(&oauth("ftp://l.example/t"), "token_url")
                .0
                .contains("not `ftp:`")
        );
        assert!(
            find(&oauth("not a url"), "token_url")
                .0
                .starts_with("`token_url` is not a URL")
        );
        let src = oauth("https://app:tok-SECRET-9@l.example/t");
        let err = errors(&src);
        assert!(
            find(&src, "token_url")
                .0
                .contains("must not carry credentials")
        );
        assert!(!err.render(false).contains("tok-SECRET"));
    }

    #[test]
    fn header_and_basic_values_are_checked() {
        let (msg, line, col, _) = find(
            &rb("auth = { header = { name = \"X Api Key\", value = { env = \"K\" } } }"),
            "header name",
        );
        assert_eq!(msg, "`X Api Key` is not an HTTP header name");
        assert_eq!((line, col), (6, 28));
        let (msg, _, _, _) = find(
            &rb(
                "auth = { header = { name = \"Authorization\", scheme = \"Bearer token\", value = { env = \"K\" } } }",
            ),
            "scheme",
        );
        assert_eq!(msg, "`Bearer token` is not a scheme word");
        let (msg, _, _, _) = find(
            &rb("auth = { basic = { username = \"a:b\", password = { env = \"P\" } } }"),
            "username",
        );
        assert!(msg.contains("contains `:`"), "{msg}");
        let (msg, _, _, _) = find(
            &rb(
                "[systems.acme.auth.google]\nservice_account = { file = \"sa.json\" }\nscopes = []",
            ),
            "scope",
        );
        assert_eq!(msg, "a Google service account needs at least one scope");
    }

    #[test]
    fn token_or_auth_but_not_both() {
        let src = rb("token = { env = \"T\" }\nauth = { bearer = { env = \"T\" } }");
        let (msg, line, col, hint) = find(&src, "both");
        assert_eq!(msg, "system `acme` has both `token` and `auth`");
        assert_eq!((line, col), (7, 1));
        assert!(
            hint.contains("`token = { … }` means `auth = { bearer = { … } }`"),
            "{hint}"
        );
        // Either one satisfies a kind that needs credentials.
        assert!(load(&rb("token = { env = \"T\" }")).is_ok());
        assert!(load(&rb("auth = { bearer = { env = \"T\" } }")).is_ok());
        let (msg, _, _, hint) = find(&rb(""), "needs");
        assert_eq!(
            msg,
            "system `acme` (kind `scim`) needs a `token` or an `auth` table"
        );
        assert!(
            hint.contains("ACME_TOKEN") && hint.contains("Authentication"),
            "{hint}"
        );
    }

    #[test]
    fn a_kind_that_does_not_take_auth_refuses_it() {
        let src = "[runbook]\nname = \"t\"\n[systems.v]\nkind = \"vault\"\nbase_url = \"https://v.example:8200\"\ntoken = { env = \"V\" }\nauth = { bearer = { env = \"V\" } }\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n";
        let (msg, line, col, _) = find(src, "unknown key");
        assert_eq!(msg, "unknown key `auth` in [systems.v] (kind `vault`)");
        assert_eq!((line, col), (7, 1));
    }

    /// The key lists above are the fields of the kit's model, as its schema publishes them.
    #[test]
    fn key_lists_match_the_kit_model() {
        let schema: serde_json::Value =
            serde_json::from_str(&crate::runbook::schema::schema_json()).unwrap();
        let defs = &schema["$defs"];
        let keys = |name: &str| -> Vec<String> {
            let mut k: Vec<String> = defs[name]["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("no {name} in {defs:#}"))
                .keys()
                .cloned()
                .collect();
            k.sort();
            k
        };
        let sorted = |l: &[&str]| -> Vec<String> {
            let mut k: Vec<String> = l.iter().map(|s| s.to_string()).collect();
            k.sort();
            k
        };
        let types: Vec<String> = defs["Auth"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["required"][0].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types, super::TYPES);
        assert_eq!(keys("HeaderAuth"), sorted(super::HEADER_KEYS));
        assert_eq!(keys("BasicAuth"), sorted(super::BASIC_KEYS));
        assert_eq!(keys("OAuth2Auth"), sorted(super::OAUTH2_KEYS));
        assert_eq!(keys("GoogleAuth"), sorted(super::GOOGLE_KEYS));
    }
}
