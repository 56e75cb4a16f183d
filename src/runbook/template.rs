//! `{{ user.email }}`-style templates.
//!
//! The only syntax is `{{ name }}` (spaces inside the braces optional), where `name` is dotted
//! words of letters, digits, `_` and `-` (e.g. `user.asset_tag`), optionally followed by the one
//! filter, `date`: `{{ departure.effective_at | date }}` reads `2026-11-30 17:00 UTC`, and
//! `{{ departure.effective_at | date: "%d %B %Y" }}` uses a strftime format. There are no loops
//! or escapes; a lone `{` or `}` is literal text. Values are inserted as they are and never
//! expanded again, so a value containing `{{` stays literal.

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
    /// A filter other than `date`, or a `date` format chrono cannot use.
    #[error(
        "`{text}` is not a filter (the one filter is `date`, e.g. `| date` or `| date: \"%Y-%m-%d\"`)"
    )]
    BadFilter { text: String, range: Range<usize> },
    /// `| date` on a value that is not a date (RFC 3339, or `YYYY-MM-DD`).
    #[error("`{name}` is `{value}`, which is not a date (RFC 3339 or YYYY-MM-DD) for `| date`")]
    NotADate {
        name: String,
        value: String,
        range: Range<usize>,
    },
}

impl TemplateError {
    /// Where in the template the problem is.
    pub fn range(&self) -> Range<usize> {
        match self {
            TemplateError::Unclosed { at } => at.clone(),
            TemplateError::BadName { range, .. }
            | TemplateError::Unknown { range, .. }
            | TemplateError::BadFilter { range, .. }
            | TemplateError::NotADate { range, .. } => range.clone(),
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
    Var(String, Range<usize>, Option<Filter>),
}

/// What `| filter` does to a variable's value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Filter {
    /// `| date` (no format: `2026-11-30 17:00 UTC`, or `2026-11-30` for a plain date) or
    /// `| date: "FORMAT"` (strftime, in UTC).
    Date(Option<String>),
}

/// The format `| date` uses for a time when no format is given.
pub const DATE_FORMAT: &str = "%Y-%m-%d %H:%M UTC";

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
        // `name` or `name | filter`.
        let (head, filter_text) = match inner.find('|') {
            Some(bar) => (&inner[..bar], Some((bar + 1, &inner[bar + 1..]))),
            None => (inner, None),
        };
        let lead = head.len() - head.trim_start().len();
        let name = head.trim();
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
        let filter = match filter_text {
            None => None,
            Some((at, text)) => {
                let lead = text.len() - text.trim_start().len();
                let start = inner_start + at + lead;
                let trimmed = text.trim();
                // An empty filter points at its `|`.
                let range = if trimmed.is_empty() {
                    inner_start + at - 1..inner_start + at
                } else {
                    start..start + trimmed.len()
                };
                Some(
                    parse_filter(trimmed).ok_or_else(|| TemplateError::BadFilter {
                        text: trimmed.to_string(),
                        range,
                    })?,
                )
            }
        };
        parts.push(Part::Var(name.to_string(), range, filter));
        rest = inner_start + len + 2;
    }
    if rest < template.len() {
        parts.push(Part::Text(rest..template.len()));
    }
    Ok(parts)
}

/// `date`, `date: "FORMAT"` (or single quotes), with a format chrono can use.
fn parse_filter(text: &str) -> Option<Filter> {
    let rest = text.strip_prefix("date")?.trim_start();
    if rest.is_empty() {
        return Some(Filter::Date(None));
    }
    let arg = rest.strip_prefix(':')?.trim();
    let format = arg
        .strip_prefix('"')
        .and_then(|a| a.strip_suffix('"'))
        .or_else(|| arg.strip_prefix('\'').and_then(|a| a.strip_suffix('\'')))?;
    let usable = !format.is_empty()
        && chrono::format::StrftimeItems::new(format)
            .all(|item| !matches!(item, chrono::format::Item::Error));
    usable.then(|| Filter::Date(Some(format.to_string())))
}

/// A value as a time (RFC 3339) or a plain date (`YYYY-MM-DD`, taken as midnight UTC; `true`).
fn as_date(value: &str) -> Option<(chrono::DateTime<chrono::Utc>, bool)> {
    let value = value.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Some((t.with_timezone(&chrono::Utc), false));
    }
    let day = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()?;
    Some((day.and_time(chrono::NaiveTime::MIN).and_utc(), true))
}

fn apply(
    filter: &Filter,
    name: &str,
    value: &str,
    range: &Range<usize>,
) -> Result<String, TemplateError> {
    let not_a_date = || TemplateError::NotADate {
        name: name.to_string(),
        value: value.to_string(),
        range: range.clone(),
    };
    match filter {
        Filter::Date(format) => {
            let (t, plain_day) = as_date(value).ok_or_else(not_a_date)?;
            let format = match format {
                Some(f) => f.as_str(),
                None if plain_day => "%Y-%m-%d",
                None => DATE_FORMAT,
            };
            let mut out = String::new();
            use std::fmt::Write;
            write!(out, "{}", t.format(format)).map_err(|_| not_a_date())?;
            Ok(out)
        }
    }
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
    render_with(template, vars, &|v| v.to_string())
}

/// Render `template` with `vars`, passing each substituted value (after its filter) through
/// `encode`; the template's own text is kept as written. A URL template uses this to
/// percent-encode values, so an `@`, `/`, `?` or `{{` in a value stays inside its segment.
pub fn render_with(
    template: &str,
    vars: &Vars,
    encode: &dyn Fn(&str) -> String,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    for part in parse(template)? {
        match part {
            Part::Text(r) => out.push_str(&template[r]),
            Part::Var(name, range, filter) => match (vars.get(&name), filter) {
                (Some(v), None) => out.push_str(&encode(v)),
                (Some(v), Some(f)) => out.push_str(&encode(&apply(&f, &name, v, &range)?)),
                (None, _) => return Err(TemplateError::Unknown { name, range }),
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
            Part::Var(name, range, _) => Some((name, range)),
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
            Err(TemplateError::BadFilter { .. })
        ));
    }

    #[test]
    fn date_filter_reads_like_a_date() {
        let v = Vars::new()
            .with("departure.effective_at", "2026-11-30T17:00:00.000Z")
            .with("user.last_day", "2026-12-01")
            .with("user.email", "alice@corp.example");
        let r = |t: &str| render(t, &v);
        assert_eq!(
            r("{{ departure.effective_at | date }}").unwrap(),
            "2026-11-30 17:00 UTC"
        );
        assert_eq!(
            r("{{departure.effective_at|date}}").unwrap(),
            "2026-11-30 17:00 UTC"
        );
        assert_eq!(
            r("{{ departure.effective_at | date: \"%d %B %Y\" }}").unwrap(),
            "30 November 2026"
        );
        assert_eq!(
            r("{{ departure.effective_at | date: '%Y-%m-%d' }}").unwrap(),
            "2026-11-30"
        );
        // Other offsets are shown in UTC.
        let v2 = Vars::new().with("departure.effective_at", "2026-11-30T18:00:00+01:00");
        assert_eq!(
            render("{{ departure.effective_at | date }}", &v2).unwrap(),
            "2026-11-30 17:00 UTC"
        );
        // A plain date stays a date; a format may still ask for more.
        assert_eq!(r("{{ user.last_day | date }}").unwrap(), "2026-12-01");
        assert_eq!(
            r("{{ user.last_day | date: \"%d.%m.%Y %H:%M\" }}").unwrap(),
            "01.12.2026 00:00"
        );
        // Not a date: an error naming the variable, not a panic.
        let err = r("Hi {{ user.email | date }}").unwrap_err();
        assert!(matches!(err, TemplateError::NotADate { .. }), "{err:?}");
        assert_eq!(&"Hi {{ user.email | date }}"[err.range()], "user.email");
        assert!(err.to_string().contains("not a date"), "{err}");
    }

    #[test]
    fn bad_filters_are_errors_with_their_range() {
        for t in [
            "{{ departure.effective_at | upper }}",
            "{{ departure.effective_at | }}",
            "{{ departure.effective_at | date: %Y }}",
            "{{ departure.effective_at | date: \"\" }}",
            "{{ departure.effective_at | date: \"%Q\" }}",
            "{{ departure.effective_at | date \"%Y\" }}",
        ] {
            match variables(t) {
                Err(TemplateError::BadFilter { range, .. }) => {
                    assert!(range.start >= t.find('|').unwrap(), "{t}: {range:?}");
                    assert!(range.start < range.end, "{t}: {range:?}");
                    assert!(range.end <= t.len() - 2, "{t}: {range:?}");
                }
                other => panic!("{t}: {other:?}"),
            }
        }
        let t = "x {{ departure.effective_at | upper }}";
        let err = variables(t).unwrap_err();
        assert_eq!(&t[err.range()], "upper");
        // The variable is still reported with its own range.
        assert_eq!(
            variables("{{ departure.effective_at | date }}").unwrap(),
            vec![("departure.effective_at".to_string(), 3..25)]
        );
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
