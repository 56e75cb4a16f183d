//! Checking a step's `params` against its action's parameter type.
//!
//! Nothing here knows any action: the keys, types, bounds and required parameters come from
//! the JSON Schema of the action's params type ([`crate::providers::ParamsSpec`]), walked
//! together with the TOML tree so that each problem is reported at its key or value. The
//! type's own `Deserialize` then has the last word, with its error placed by span, so the
//! loader can never accept what the provider cannot read.

use serde_json::Value;
use toml::de::DeValue;

use super::{Check, Val, closest};
use crate::providers::ActionSpec;
use crate::providers::params::type_words;

impl Check<'_> {
    /// Check `params` (the value under the step's `params` key) for `action`; `place` names
    /// the step for messages.
    pub(super) fn params(&mut self, action: &ActionSpec, v: &Val<'_>, place: &str) {
        if self.table("params", v, "{ path = \"…\" }").is_none() {
            return;
        }
        let schema = action.params.schema();
        let before = self.diags.len();
        let what = format!("the params of action `{}`", action.name);
        let late = action.params.late_vars();
        self.vars.extend(late.iter().map(|l| l.to_string()));
        self.against(&schema, "params", v, &what, place, true);
        self.vars.retain(|v| !late.contains(&v.as_str()));
        if self.diags.len() > before {
            return;
        }
        // The type's own reading is the authority.
        if let Err(e) = action.params.check_toml(v) {
            let span = e.span().unwrap_or_else(|| v.span());
            self.push(
                format!("{what}: {}", e.message().trim_end()),
                span,
                "see the action's parameters in runbooks/README.md",
            );
        }
    }

    /// Check one value against its schema. `key` names it in messages; `top` is the `params`
    /// table itself, whose unknown and missing keys are worded for the action.
    fn against(
        &mut self,
        schema: &Value,
        key: &str,
        v: &Val<'_>,
        what: &str,
        place: &str,
        top: bool,
    ) {
        if let Some(branches) = schema["anyOf"].as_array().or(schema["oneOf"].as_array()) {
            self.any_of(branches, key, v, what, place);
            return;
        }
        match schema["type"].as_str() {
            Some("string") => {
                if let Some(s) = self.string(key, v, "\"…\"") {
                    self.template(s, v.span(), &format!("`{key}` in {place}"));
                    self.allowed_value(schema, key, v);
                    if schema["minLength"].as_u64().is_some_and(|n| n > 0) && s.is_empty() {
                        self.push(format!("`{key}` must not be empty"), v.span(), "");
                    }
                }
            }
            Some("integer") => {
                if let Some(n) = self.integer(key, v, "1") {
                    let lo = schema["minimum"].as_i64();
                    let hi = schema["maximum"].as_i64();
                    if lo.is_some_and(|lo| n < lo) || hi.is_some_and(|hi| n > hi) {
                        let range = match (lo, hi) {
                            (Some(lo), Some(hi)) => format!("from {lo} to {hi}"),
                            (Some(lo), None) => format!("at least {lo}"),
                            (None, Some(hi)) => format!("at most {hi}"),
                            (None, None) => String::new(),
                        };
                        self.push(
                            format!("`{key}` must be {range}, not {n}"),
                            v.span(),
                            describe(schema),
                        );
                    }
                }
            }
            Some("boolean") => {
                self.boolean(key, v);
            }
            Some("array") => self.array(schema, key, v, what, place),
            Some("object") => self.object(schema, key, v, what, place, top),
            _ => self.templates_within(v, key, place),
        }
    }

    fn allowed_value(&mut self, schema: &Value, key: &str, v: &Val<'_>) {
        let Some(allowed) = schema["enum"].as_array() else {
            return;
        };
        let words: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
        if let Some(s) = v.get_ref().as_str()
            && !words.contains(&s)
        {
            let mut hint = format!("use one of: {}", words.join(", "));
            if let Some(best) = closest(s, words.iter().copied()) {
                hint = format!("did you mean `{best}`? {hint}");
            }
            self.push(format!("`{s}` is not a valid `{key}`"), v.span(), hint);
        }
    }

    fn array(&mut self, schema: &Value, key: &str, v: &Val<'_>, what: &str, place: &str) {
        let items = &schema["items"];
        let DeValue::Array(list) = v.get_ref() else {
            let want = match items["type"].as_str() {
                Some("string") => "a list of strings",
                Some("object") => "a list of tables",
                _ => "a list",
            };
            self.wrong_type(key, v, want, "[\"…\"]");
            return;
        };
        if items["type"].as_str() == Some("string") {
            // One message for the whole list, as for every other list of strings.
            if let Some(strings) = self.string_list(key, v, "[\"…\"]") {
                for (s, span) in strings {
                    self.template(s, span, &format!("`{key}` in {place}"));
                }
            }
        } else {
            for (i, item) in list.iter().enumerate() {
                self.against(items, &format!("{key}[{i}]"), item, what, place, false);
            }
        }
        if schema["minItems"].as_u64().is_some_and(|n| n > 0) && list.is_empty() {
            self.push(
                format!("`{key}` must not be empty"),
                v.span(),
                format!(
                    "list at least one, or leave `{key}` out: {}",
                    describe(schema)
                ),
            );
        }
    }

    fn object(
        &mut self,
        schema: &Value,
        key: &str,
        v: &Val<'_>,
        what: &str,
        place: &str,
        top: bool,
    ) {
        let Some(t) = self.table(key, v, "{ … }") else {
            return;
        };
        let props = schema["properties"].as_object();
        let names: Vec<&str> = props.map_or(Vec::new(), |p| p.keys().map(String::as_str).collect());
        for (k, item) in t.iter() {
            let name: &str = k.get_ref();
            match props.and_then(|p| p.get(name)) {
                Some(s) => self.against(s, name, item, what, place, false),
                None => match &schema["additionalProperties"] {
                    Value::Bool(false) => {
                        let inside = if top {
                            what.to_string()
                        } else {
                            format!("`{key}` ({what})")
                        };
                        self.unknown_key(name, k.span(), &inside, &names);
                    }
                    Value::Object(_) => {
                        let s = schema["additionalProperties"].clone();
                        self.against(&s, name, item, what, place, false);
                    }
                    _ => self.templates_within(item, name, place),
                },
            }
        }
        if top {
            // Missing top-level parameters are reported at the step's `action` (steps.rs).
            return;
        }
        for need in schema["required"].as_array().into_iter().flatten() {
            let Some(need) = need.as_str() else { continue };
            if !t.iter().any(|(k, _)| k.get_ref() == need) {
                let about = props
                    .and_then(|p| p.get(need))
                    .map(describe)
                    .unwrap_or_default();
                self.push(
                    format!("`{key}` needs `{need}`"),
                    self.head(v.span()),
                    format!("add `{need} = …` to it: {about}"),
                );
            }
        }
    }

    /// The value must match one of several shapes: quiet if one fits, else the errors of the
    /// shape of the same TOML type, or a list of the shapes.
    fn any_of(&mut self, branches: &[Value], key: &str, v: &Val<'_>, what: &str, place: &str) {
        let before = self.diags.len();
        let mut first_fit: Option<Vec<crate::runbook::Diagnostic>> = None;
        for b in branches {
            self.against(b, key, v, what, place, false);
            let errors: Vec<_> = self.diags.drain(before..).collect();
            if errors.is_empty() {
                return;
            }
            if first_fit.is_none() && same_type(b, v.get_ref()) {
                first_fit = Some(errors);
            }
        }
        match first_fit {
            Some(errors) => self.diags.extend(errors),
            None => {
                let shapes: Vec<String> = branches.iter().map(type_words).collect();
                self.push(
                    format!(
                        "`{key}` must be {}, found {}",
                        shapes.join(" or "),
                        v.get_ref().type_str()
                    ),
                    v.span(),
                    "",
                );
            }
        }
    }

    /// A free-form value (e.g. a JSON body): only its templates are checked.
    fn templates_within(&mut self, v: &Val<'_>, key: &str, place: &str) {
        match v.get_ref() {
            DeValue::String(s) => self.template(s, v.span(), &format!("`{key}` in {place}")),
            DeValue::Array(items) => items
                .iter()
                .for_each(|i| self.templates_within(i, key, place)),
            DeValue::Table(t) => t
                .iter()
                .for_each(|(k, i)| self.templates_within(i, k.get_ref(), place)),
            _ => {}
        }
    }
}

fn same_type(schema: &Value, v: &DeValue<'_>) -> bool {
    matches!(
        (schema["type"].as_str(), v),
        (Some("string"), DeValue::String(_))
            | (Some("integer"), DeValue::Integer(_))
            | (Some("boolean"), DeValue::Boolean(_))
            | (Some("array"), DeValue::Array(_))
            | (Some("object"), DeValue::Table(_))
    )
}

/// A parameter's description with its type, for hints.
fn describe(schema: &Value) -> String {
    let ty = type_words(schema);
    match schema["description"].as_str() {
        Some(d) if !d.is_empty() => format!("{ty}: {d}"),
        _ => ty,
    }
}
