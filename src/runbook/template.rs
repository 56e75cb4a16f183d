//! `{{ user.email }}`-style templates.
//!
//! The only syntax is `{{ name }}` (spaces inside the braces optional), where `name` is dotted
//! words of letters, digits, `_` and `-` (e.g. `user.asset_tag`). There are no filters, loops or
//! escapes; a lone `{` or `}` is literal text. Values are inserted as they are and never expanded
//! again, so a value containing `{{` stays literal.

use std::collections::BTreeMap;
use std::ops::Range;

/// The variables every runbook may use; `user.<name>` is also available for each `[inputs]` key.
pub const BUILTIN_VARS: &[&str] = &[
    "user.id",
    "user.email",
    "departure.id",
    "departure.type",
    "departure.effective_at",
    "departure.ticket",
];

/// What is wrong with a template. Ranges are byte ranges inside the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`{{{{` at byte {} is never closed with `}}}}`", .at.start)]
    Unclosed { at: Range<usize> },
    #[error("`{text}` is not a variable name (expected e.g. `user.email`)")]
    BadName { text: String, range: Range<usize> },
    #[error("unknown template variable `{name}`")]
    Unknown { name: String, range: Range<usize> },
}

impl TemplateError {
    /// Where in the template the problem is.
    pub fn range(&self) -> Range<usize> {
        match self {
            TemplateError::Unclosed { at } => at.clone(),
            TemplateError::BadName { range, .. } | TemplateError::Unknown { range, .. } => {
                range.clone()
            }
        }
    }
}

/// Values for template variables, by dotted name (`user.email`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    values: BTreeMap<String, String>,
}

impl Vars {
    pub fn new() -> Vars {
        Vars::default()
    }

    /// Set (or replace) one variable.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Vars {
        self.values.insert(name.into(), value.into());
        self
    }

    /// Builder form of [`Vars::set`].
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Vars {
        self.set(name, value);
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Vars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Vars {
        Vars {
            values: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// One piece of a parsed template.
enum Part {
    Text(Range<usize>),
    Var(String, Range<usize>),
}

fn parse(template: &str) -> Result<Vec<Part>, TemplateError> {
    let mut parts = Vec::new();
    let mut rest = 0;
    while let Some(found) = template[rest..].find("{{") {
        let open = rest + found;
        if open > rest {
            parts.push(Part::Text(rest..open));
        }
        let inner_start = open + 2;
        let Some(len) = template[inner_start..].find("}}") else {
            return Err(TemplateError::Unclosed { at: open..open + 2 });
        };
        let inner = &template[inner_start..inner_start + len];
        let lead = inner.len() - inner.trim_start().len();
        let name = inner.trim();
        let range = if name.is_empty() {
            open..inner_start + len + 2
        } else {
            inner_start + lead..inner_start + lead + name.len()
        };
        if !valid_name(name) {
            return Err(TemplateError::BadName {
                text: name.to_string(),
                range,
            });
        }
        parts.push(Part::Var(name.to_string(), range));
        rest = inner_start + len + 2;
    }
    if rest < template.len() {
        parts.push(Part::Text(rest..template.len()));
    }
    Ok(parts)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

/// Render `template` with `vars`. Every variable must be set.
pub fn render(template: &str, vars: &Vars) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    for part in parse(template)? {
        match part {
            Part::Text(r) => out.push_str(&template[r]),
            Part::Var(name, range) => match vars.get(&name) {
                Some(v) => out.push_str(v),
                None => return Err(TemplateError::Unknown { name, range }),
            },
        }
    }
    Ok(out)
}

/// The variables a template uses, each with its byte range inside the template, in order.
pub fn variables(template: &str) -> Result<Vec<(String, Range<usize>)>, TemplateError> {
    Ok(parse(template)?
        .into_iter()
        .filter_map(|p| match p {
            Part::Var(name, range) => Some((name, range)),
            Part::Text(_) => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars::new()
            .with("user.email", "alice@corp.example")
            .with("user.asset_tag", "LT-0042")
    }

    #[test]
    fn renders_with_and_without_spaces() {
        let out = render(
            "{{user.email}} / {{ user.asset_tag }} / {{  user.email  }}",
            &vars(),
        );
        assert_eq!(
            out.unwrap(),
            "alice@corp.example / LT-0042 / alice@corp.example"
        );
    }

    #[test]
    fn plain_text_and_lone_braces_are_literal() {
        assert_eq!(render("a { b } c }}", &vars()).unwrap(), "a { b } c }}");
        assert_eq!(render("", &vars()).unwrap(), "");
    }

    #[test]
    fn unknown_variable_is_an_error_with_its_range() {
        let err = render("Hi {{ user.nope }}!", &vars()).unwrap_err();
        assert_eq!(
            err,
            TemplateError::Unknown {
                name: "user.nope".into(),
                range: 6..15
            }
        );
        assert_eq!(&"Hi {{ user.nope }}!"[err.range()], "user.nope");
    }

    #[test]
    fn unclosed_is_an_error() {
        let err = render("Collect {{ user.asset_tag", &vars()).unwrap_err();
        assert_eq!(err, TemplateError::Unclosed { at: 8..10 });
        assert!(variables("x {{ user.id }").is_err());
    }

    #[test]
    fn bad_names_are_errors() {
        assert!(matches!(
            variables("{{ }}"),
            Err(TemplateError::BadName { .. })
        ));
        assert!(matches!(
            variables("{{ user email }}"),
            Err(TemplateError::BadName { .. })
        ));
        assert!(matches!(
            variables("{{ user..id }}"),
            Err(TemplateError::BadName { .. })
        ));
        assert!(matches!(
            variables("{{ user.email | upper }}"),
            Err(TemplateError::BadName { .. })
        ));
    }

    #[test]
    fn values_are_not_expanded_again() {
        let v = Vars::new()
            .with("user.id", "{{ user.email }}")
            .with("user.email", "x");
        assert_eq!(render("<{{ user.id }}>", &v).unwrap(), "<{{ user.email }}>");
    }

    #[test]
    fn variables_lists_names_and_ranges() {
        let t = "Collect {{ user.asset_tag }} from {{user.email}}";
        let vars = variables(t).unwrap();
        assert_eq!(
            vars,
            vec![
                ("user.asset_tag".to_string(), 11..25),
                ("user.email".to_string(), 36..46)
            ]
        );
        for (name, r) in vars {
            assert_eq!(&t[r], name);
        }
    }

    #[test]
    fn multibyte_text_is_fine() {
        let t = "→ {{ user.email }} ←";
        assert_eq!(render(t, &vars()).unwrap(), "→ alice@corp.example ←");
    }
}
