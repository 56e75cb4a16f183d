//! Typed action parameters: each action names one Rust type for its `params` table, and
//! everything else is derived from that type.
//!
//! The type derives `serde::Deserialize` (how a provider reads the parameters at run time) and
//! `schemars::JsonSchema` (their names, types, which are required, and the doc comments that
//! explain them). From the schema come the runbook loader's checks (unknown keys with the
//! closest name, types, required keys, each at its line and column), the runbook JSON Schema,
//! `plan`'s view of a step and the per-kind reference in `runbooks/README.md`. There is no
//! second list of keys to keep in step.
//!
//! A parameter type denies unknown fields (`#[serde(deny_unknown_fields)]`), so what the loader
//! accepts and what the provider can read are the same set.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::ProviderError;

/// The parameters of one action, as a type.
#[derive(Clone, Copy)]
pub struct ParamsSpec {
    schema: fn() -> schemars::Schema,
    parse: fn(Value) -> Result<(), String>,
    parse_toml: fn(toml::de::ValueDeserializer<'_>) -> Result<(), toml::de::Error>,
    late_vars: &'static [&'static str],
}

impl ParamsSpec {
    /// The parameters are `T`.
    pub const fn of<T: DeserializeOwned + schemars::JsonSchema>() -> ParamsSpec {
        ParamsSpec {
            schema: schema_of::<T>,
            parse: parse_as::<T>,
            parse_toml: parse_toml_as::<T>,
            late_vars: &[],
        }
    }

    /// Template variables only the provider knows, filled in when the step runs (the `http`
    /// kind's `lookup.id`): the loader accepts them in these params, and planning leaves them
    /// as written for the provider to fill.
    pub const fn with_late_vars(mut self, vars: &'static [&'static str]) -> ParamsSpec {
        self.late_vars = vars;
        self
    }

    pub fn late_vars(&self) -> &'static [&'static str] {
        self.late_vars
    }

    /// The JSON Schema of the `params` table: self-contained (no `$ref`), without `null` (TOML
    /// has none: an optional parameter is simply left out).
    pub fn schema(&self) -> Value {
        let mut root = serde_json::to_value((self.schema)()).unwrap_or(Value::Null);
        let defs = root
            .as_object_mut()
            .and_then(|o| o.remove("$defs"))
            .unwrap_or(Value::Null);
        if let Some(o) = root.as_object_mut() {
            o.remove("$schema");
            o.remove("title");
        }
        inline(&mut root, &defs, 0);
        root
    }

    /// The parameters, required first, for documentation and hints.
    pub fn fields(&self) -> Vec<Field> {
        let schema = self.schema();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let Some(props) = schema["properties"].as_object() else {
            return Vec::new();
        };
        let mut fields: Vec<Field> = props
            .iter()
            .map(|(name, s)| Field::of(name.clone(), s, required.contains(&name.as_str())))
            .collect();
        // The required first, then by name (JSON Schema keeps no declaration order).
        fields.sort_by_key(|f| (!f.required, f.name.clone()));
        fields
    }

    /// Every key inside table parameters, by dotted name (`lookup.path`), required first at
    /// each level, for the reference. Empty when the parameters are flat.
    pub fn nested_fields(&self) -> Vec<Field> {
        let mut out = Vec::new();
        nested(&self.schema(), "", &mut out);
        out
    }

    /// Whether the action takes no parameters at all.
    pub fn is_empty(&self) -> bool {
        self.fields().is_empty()
    }

    /// Read a runbook's `params` value as the type; the error carries the span of the
    /// offending key or value.
    pub fn check_toml(
        &self,
        v: &toml::Spanned<toml::de::DeValue<'_>>,
    ) -> Result<(), toml::de::Error> {
        (self.parse_toml)(toml::de::ValueDeserializer::from(v.clone()))
    }

    /// Whether the values (already as JSON) are parameters of this type; the message is
    /// serde's, for what the loader's own checks did not already say.
    pub fn accepts(&self, params: &Map<String, Value>) -> Result<(), String> {
        (self.parse)(Value::Object(params.clone()))
    }
}

fn schema_of<T: schemars::JsonSchema>() -> schemars::Schema {
    schemars::schema_for!(T)
}

fn parse_toml_as<T: DeserializeOwned>(
    d: toml::de::ValueDeserializer<'_>,
) -> Result<(), toml::de::Error> {
    T::deserialize(d).map(|_| ())
}

fn parse_as<T: DeserializeOwned>(v: Value) -> Result<(), String> {
    T::deserialize(v).map(|_| ()).map_err(|e| e.to_string())
}

/// One parameter of an action, as the reference documents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// In words: "string", "list of strings", "integer 16–256", "table".
    pub ty: String,
    pub required: bool,
    pub description: String,
}

/// The schema keyword that marks a string parameter as a URL template: each value a template
/// puts into it is percent-encoded (`#[schemars(extend("x-offboard-url" = true))]`).
pub const URL_TEMPLATE: &str = "x-offboard-url";

/// The [`ParamsSpec`] of an action that takes no parameters.
pub const NO_PARAMS: ParamsSpec = ParamsSpec::of::<NoParams>();

impl Field {
    fn of(name: String, schema: &Value, required: bool) -> Field {
        Field {
            name,
            ty: type_words(schema),
            required,
            description: schema["description"]
                .as_str()
                .unwrap_or("")
                .trim_end_matches('.')
                .to_string(),
        }
    }
}

/// An action that takes no parameters.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Read a call's parameters as the action's type. The loader has checked them against the
/// same type, so a failure here means a runbook that skipped `runbook check`; the message
/// names the action.
pub fn parse<T: DeserializeOwned>(
    action: &str,
    params: &Map<String, Value>,
) -> Result<T, ProviderError> {
    T::deserialize(Value::Object(params.clone()))
        .map_err(|e| ProviderError::Permanent(format!("the params of action `{action}`: {e}")))
}

/// Replace each `{"$ref": "#/$defs/X"}` with X, and turn `type: [T, "null"]` into `type: T`.
fn inline(v: &mut Value, defs: &Value, depth: usize) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
                && depth < 16
            {
                let mut def = defs[name].clone();
                inline(&mut def, defs, depth + 1);
                o.remove("$ref");
                if let Value::Object(d) = def {
                    for (k, val) in d {
                        o.entry(k).or_insert(val);
                    }
                }
                return;
            }
            if let Some(Value::Array(types)) = o.get("type") {
                let kept: Vec<Value> = types
                    .iter()
                    .filter(|t| t.as_str() != Some("null"))
                    .cloned()
                    .collect();
                let t = match kept.as_slice() {
                    [one] => one.clone(),
                    _ => Value::Array(kept),
                };
                o.insert("type".into(), t);
            }
            // `Option<Struct>` is `anyOf: [{$ref}, {type: null}]`.
            if let Some(Value::Array(any)) = o.get("anyOf") {
                let kept: Vec<Value> = any
                    .iter()
                    .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
                    .cloned()
                    .collect();
                if kept.len() == 1 && kept.len() < any.len() {
                    o.remove("anyOf");
                    if let Value::Object(d) = kept.into_iter().next().unwrap_or_default() {
                        for (k, val) in d {
                            o.entry(k).or_insert(val);
                        }
                    }
                    inline(v, defs, depth + 1);
                    return;
                }
            }
            if o.get("default") == Some(&Value::Null) {
                o.remove("default");
            }
            for (_, child) in o.iter_mut() {
                inline(child, defs, depth + 1);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| inline(i, defs, depth + 1)),
        _ => {}
    }
}

fn nested(schema: &Value, prefix: &str, out: &mut Vec<Field>) {
    let Some(props) = schema["properties"].as_object() else {
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut names: Vec<&String> = props.keys().collect();
    names.sort_by_key(|n| (!required.contains(&n.as_str()), n.as_str()));
    for name in names {
        let s = &props[name];
        let dotted = format!("{prefix}{name}");
        if !prefix.is_empty() {
            out.push(Field::of(
                dotted.clone(),
                s,
                required.contains(&name.as_str()),
            ));
        }
        nested(s, &format!("{dotted}."), out);
    }
}

/// A schema in words, for the reference and for messages.
pub fn type_words(s: &Value) -> String {
    if let Some(values) = s["enum"].as_array() {
        let names: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        return format!("one of {}", names.join(", "));
    }
    if let Some(c) = s.get("const") {
        return format!("`{c}`");
    }
    if let Some(branches) = s["anyOf"].as_array().or(s["oneOf"].as_array()) {
        let words: Vec<String> = branches.iter().map(type_words).collect();
        return words.join(" or ");
    }
    let range = match (s["minimum"].as_i64(), s["maximum"].as_i64()) {
        (Some(lo), Some(hi)) if !(lo == 0 && hi >= 255) => format!(" {lo}–{hi}"),
        (Some(lo), None) if lo != 0 => format!(" ≥ {lo}"),
        _ => String::new(),
    };
    match s["type"].as_str() {
        Some("string") => "string".into(),
        Some("integer") => format!("integer{range}"),
        Some("boolean") => "true or false".into(),
        Some("object") => "table".into(),
        Some("array") => match s["items"]["type"].as_str() {
            Some("string") => "list of strings".into(),
            Some("object") => "list of tables".into(),
            Some("integer") => "list of integers".into(),
            _ => "list".into(),
        },
        _ => "any value".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paths (required) and an optional bounded length.
    #[derive(Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        /// Where the secrets are.
        paths: Vec<String>,
        /// How long.
        #[schemars(range(min = 16, max = 256))]
        length: Option<u16>,
        /// A nested table.
        inner: Option<Inner>,
    }

    #[derive(Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        method: String,
    }

    const SAMPLE: ParamsSpec = ParamsSpec::of::<Sample>();

    #[test]
    fn schema_is_inlined_and_null_free() {
        let s = SAMPLE.schema();
        let text = s.to_string();
        assert!(!text.contains("$ref") && !text.contains("null"), "{text}");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["required"], serde_json::json!(["paths"]));
        assert_eq!(
            s["properties"]["inner"]["properties"]["method"]["type"],
            "string"
        );
        assert_eq!(s["properties"]["length"]["type"], "integer");
    }

    #[test]
    fn fields_come_from_the_type() {
        let f = SAMPLE.fields();
        let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["paths", "inner", "length"]);
        assert!(f[0].required && !f[1].required);
        assert_eq!(f[0].ty, "list of strings");
        assert_eq!(f[2].ty, "integer 16–256");
        assert_eq!(f[0].description, "Where the secrets are");
        assert!(ParamsSpec::of::<NoParams>().is_empty());
    }

    /// The loader's last word is the type's own `Deserialize`, placed by span.
    #[test]
    fn toml_reading_points_at_the_key() {
        let src = "{ paths = [\"a\"], pth = 1 }";
        let v = toml::de::DeValue::parse(src).unwrap();
        let e = SAMPLE.check_toml(&v).unwrap_err();
        assert!(e.message().contains("unknown field `pth`"), "{e}");
        assert_eq!(&src[e.span().unwrap()], "pth");
        let ok = toml::de::DeValue::parse("{ paths = [\"a\"], length = 20 }").unwrap();
        assert!(SAMPLE.check_toml(&ok).is_ok());
    }

    #[test]
    fn accepts_is_serde() {
        let ok = serde_json::json!({ "paths": ["a"] });
        assert!(SAMPLE.accepts(ok.as_object().unwrap()).is_ok());
        let bad = serde_json::json!({ "paths": ["a"], "pth": 1 });
        let e = SAMPLE.accepts(bad.as_object().unwrap()).unwrap_err();
        assert!(e.contains("unknown field `pth`"), "{e}");
        let e = parse::<Sample>("x", &Map::new()).err().unwrap().to_string();
        assert!(
            e.contains("action `x`") && e.contains("missing field `paths`"),
            "{e}"
        );
    }
}
