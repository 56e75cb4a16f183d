//! The runbook JSON Schema, generated from the model and the provider catalogue, and checked in
//! as `runbooks/schema.json`.
//!
//! The shape (keys, types, descriptions) comes from the serde model via schemars; what the loader
//! checks beyond the shape comes from the same places the loader takes it from: each kind's
//! settings and actions from [`crate::providers::KINDS`], and the patterns and word lists from
//! `load.rs`. What JSON Schema cannot say (an action belongs to *its system's* kind, `when` keys
//! and template variables name declared inputs, ids are unique, no `after` cycles) is checked by
//! `offboard runbook check` only.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::load::{
    DEADLINE_PATTERN, DEPARTURE_TYPES, IDENT_PATTERN, NOT_BLANK_PATTERN, SYSTEM_KEYS,
};
use super::{RunbookFile, SecretRef};
use crate::providers::kit::auth::AuthSpec;
use crate::providers::{KINDS, KindSpec, SettingSpec, SettingType};
use crate::ticketing::{COMMON_KEYS as TICKET_COMMON_KEYS, TICKET_KINDS};

/// The JSON Schema of a runbook file, pretty-printed, ending with a newline.
pub fn schema_json() -> String {
    let mut out =
        serde_json::to_string_pretty(&schema_value()).unwrap_or_else(|_| "{}".to_string());
    out.push('\n');
    out
}

/// The JSON Schema of a runbook file.
pub fn schema_value() -> Value {
    let mut root = serde_json::to_value(schemars::schema_for!(RunbookFile))
        .expect("a schemars schema is JSON");
    refine(&mut root);
    root
}

/// Add to the model's shape what the loader enforces and JSON Schema can say.
fn refine(root: &mut Value) {
    // At least one step.
    root["required"] = json!(["runbook", "step"]);
    let step = &mut root["properties"]["step"];
    step["minItems"] = json!(1);
    remove(step, "default");
    root["properties"]["inputs"]["propertyNames"] = json!({
        "pattern": IDENT_PATTERN,
        "not": { "enum": ["id", "email"] },
    });
    root["properties"]["systems"]["propertyNames"] = json!({ "pattern": IDENT_PATTERN });

    let defs = &mut root["$defs"];
    defs["RunbookMeta"]["properties"]["name"]["pattern"] = json!(NOT_BLANK_PATTERN);
    auth_defs(defs);
    defs["SecretRef"] = secret_ref();
    system_def(&mut defs["SystemDef"]);
    step_def(&mut defs["StepDef"]);
    ticketing_def(&mut defs["TicketingDef"]);
    defs["TicketStatus"] = json!({
        "description": "A ticket status: its name (e.g. `\"Closed\"`) or the desk's numeric id.",
        "anyOf": [
            { "type": "integer", "minimum": 0 },
            { "type": "string", "pattern": NOT_BLANK_PATTERN },
        ],
    });
}

/// `if kind == K then` the common `[ticketing]` keys and K's settings are allowed (and nothing
/// else), and K's required settings are present.
fn ticketing_def(def: &mut Value) {
    let kinds: Vec<&str> = TICKET_KINDS.iter().map(|k| k.name).collect();
    def["properties"]["kind"]["enum"] = json!(kinds);
    def["properties"]["base_url"]["pattern"] = json!("^(https|http)://[^/?#\\s]");
    remove(def, "additionalProperties");
    def["allOf"] = Value::Array(
        TICKET_KINDS
            .iter()
            .map(|kind| {
                let mut properties = Map::new();
                for key in TICKET_COMMON_KEYS {
                    properties.insert(key.to_string(), json!(true));
                }
                for s in kind.settings {
                    properties.insert(s.name.to_string(), setting_schema(s));
                }
                let required: Vec<&str> = kind
                    .settings
                    .iter()
                    .filter(|s| s.required)
                    .map(|s| s.name)
                    .collect();
                let mut then = json!({ "properties": properties, "additionalProperties": false });
                if !required.is_empty() {
                    then["required"] = json!(required);
                }
                json!({
                    "if": { "properties": { "kind": { "const": kind.name } }, "required": ["kind"] },
                    "then": then,
                })
            })
            .collect(),
    );
}

fn remove(v: &mut Value, key: &str) {
    if let Some(obj) = v.as_object_mut() {
        obj.remove(key);
    }
}

/// Exactly one of `env`, `file` (each a non-blank string) or `command` (a non-empty list).
fn secret_ref() -> Value {
    let one = |key: &str, value: Value, description: &str| {
        json!({
            "description": description,
            "type": "object",
            "properties": { key: value },
            "required": [key],
            "additionalProperties": false,
        })
    };
    let text = json!({ "type": "string", "pattern": NOT_BLANK_PATTERN });
    json!({
        "description": "A reference to a secret, never the secret itself: exactly one of `env`, `file` or `command`. The value is read only when a step runs, and never stored.",
        "oneOf": [
            one("env", text.clone(), "Read from an environment variable."),
            one("file", text, "Read from a file (first line, trimmed)."),
            one(
                "command",
                json!({ "type": "array", "items": { "type": "string" }, "minItems": 1 }),
                "The standard output of a command (e.g. `[\"pass\", \"show\", \"okta\"]`), trimmed.",
            ),
        ],
    })
}

/// The `auth` table's definitions (`Auth` and the tables of its types), generated from the
/// kit's model with the runbook's secret references in it.
fn auth_defs(defs: &mut Value) {
    let mut generator = schemars::generate::SchemaSettings::default().into_generator();
    generator.subschema_for::<AuthSpec<SecretRef>>();
    for (name, def) in generator.take_definitions(true) {
        // `SecretRef` is refined below, like the one `token` uses.
        if name != "SecretRef" {
            defs[name] = def;
        }
    }
}

/// A setting or parameter, by its type in the catalogue.
fn setting_schema(spec: &SettingSpec) -> Value {
    let mut v = match spec.ty {
        SettingType::String => json!({ "type": "string" }),
        SettingType::Integer => json!({ "type": "integer" }),
        SettingType::Bool => json!({ "type": "boolean" }),
        SettingType::StringList => json!({ "type": "array", "items": { "type": "string" } }),
        SettingType::Secret | SettingType::SecretDocument => {
            json!({ "$ref": "#/$defs/SecretRef" })
        }
        SettingType::Auth => json!({ "$ref": "#/$defs/Auth" }),
    };
    v["description"] = json!(spec.summary);
    v
}

/// `if kind == K then` K's settings are allowed (and nothing else), and what K needs is present.
fn system_def(def: &mut Value) {
    let kinds: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    def["properties"]["kind"]["enum"] = json!(kinds);
    for key in ["timeout_secs", "step_timeout_secs"] {
        def["properties"][key]["minimum"] = json!(1);
    }
    // Which keys are allowed depends on the kind: each `then` lists them all.
    remove(def, "additionalProperties");
    def["allOf"] = Value::Array(KINDS.iter().map(|k| kind_rule(k)).collect());
}

fn kind_rule(kind: &KindSpec) -> Value {
    let mut properties = Map::new();
    for key in SYSTEM_KEYS {
        properties.insert(key.to_string(), json!(true));
    }
    let schemes = kind.url_schemes.join("|");
    properties.insert(
        "base_url".into(),
        json!({ "type": "string", "pattern": format!("^({schemes})://[^/?#\\s]") }),
    );
    for s in kind.settings {
        properties.insert(s.name.to_string(), setting_schema(s));
    }
    let mut required = Vec::new();
    if kind.needs_base_url {
        required.push("base_url");
    }
    let takes_auth = kind.settings.iter().any(|s| s.ty == SettingType::Auth);
    if kind.needs_token && !takes_auth {
        required.push("token");
    }
    required.extend(kind.settings.iter().filter(|s| s.required).map(|s| s.name));
    let mut then = json!({ "properties": properties, "additionalProperties": false });
    if !required.is_empty() {
        then["required"] = json!(required);
    }
    if takes_auth {
        // `token` (a bearer token) or `auth`, not both.
        then["not"] = json!({ "required": ["token", "auth"] });
        if kind.needs_token {
            then["anyOf"] = json!([{ "required": ["token"] }, { "required": ["auth"] }]);
        }
    }
    json!({
        "if": { "properties": { "kind": { "const": kind.name } }, "required": ["kind"] },
        "then": then,
    })
}

fn step_def(def: &mut Value) {
    let props = &mut def["properties"];
    props["id"]["pattern"] = json!(IDENT_PATTERN);
    props["deadline"]["pattern"] = json!(DEADLINE_PATTERN);
    props["when"]["properties"] = json!({
        "type": {
            "anyOf": [
                { "enum": DEPARTURE_TYPES },
                { "type": "array", "items": { "enum": DEPARTURE_TYPES } },
            ],
        },
    });

    // Each action name with the parameter lists of the kinds that offer it.
    let mut actions: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for kind in KINDS {
        for a in kind.actions {
            actions.entry(a.name).or_default().push(a.params.schema());
        }
    }
    let names: Vec<&str> = actions.keys().copied().collect();
    props["action"]["enum"] = json!(names);
    def["$comment"] = json!(
        "JSON Schema cannot look up the step's system, so `action` may be any kind's action and its `params` are those of every kind offering that action; `offboard runbook check` checks them against the system's own kind, and checks `when` keys, template variables, unique ids and `after`."
    );

    // Automated (system + action) or manual (manual text), never both.
    def["oneOf"] = json!([
        {
            "title": "automated",
            "required": ["system", "action"],
            "properties": { "manual": false, "fields": false },
        },
        {
            "title": "manual",
            "required": ["manual"],
            "properties": { "system": false, "action": false, "params": false },
        },
    ]);

    def["allOf"] = Value::Array(
        actions
            .iter()
            .map(|(name, offers)| action_rule(name, offers))
            .collect(),
    );
}

/// `if action == A then` its `params` are those of one of the kinds offering `A`: the schema
/// of that kind's params type (its parameters, their types and bounds, the required ones, and
/// nothing else).
fn action_rule(name: &str, offers: &[Value]) -> Value {
    let mut per_kind: Vec<Value> = Vec::new();
    for one in offers {
        if !per_kind.contains(one) {
            per_kind.push(one.clone());
        }
    }
    let params = match per_kind.as_slice() {
        [one] => one.clone(),
        _ => json!({ "anyOf": per_kind }),
    };
    let mut then = json!({ "properties": { "params": params } });
    if offers
        .iter()
        .all(|s| s["required"].as_array().is_some_and(|r| !r.is_empty()))
    {
        then["required"] = json!(["params"]);
    }
    json!({
        "if": { "properties": { "action": { "const": name } }, "required": ["action"] },
        "then": then,
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// `runbooks/schema.json` must be what the model generates. Regenerate it with
    /// `OFFBOARD_BLESS=1 cargo test schema`.
    #[test]
    fn checked_in_schema_is_current() {
        let path = repo().join("runbooks/schema.json");
        let want = schema_json();
        if std::env::var_os("OFFBOARD_BLESS").is_some_and(|v| !v.is_empty()) {
            std::fs::write(&path, &want).expect("write runbooks/schema.json");
            return;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "runbooks/schema.json is stale: run `OFFBOARD_BLESS=1 cargo test schema` and commit it"
        );
    }

    fn example_runbooks() -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("runbooks"))
            .expect("runbooks/ exists")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        files
    }

    fn as_json(path: &Path) -> serde_json::Value {
        let text = std::fs::read_to_string(path).expect("read runbook");
        let value: toml::Value = toml::from_str(&text).expect("valid TOML");
        serde_json::to_value(value).expect("TOML as JSON")
    }

    #[test]
    fn example_runbooks_validate_against_the_schema() {
        let schema: serde_json::Value = serde_json::from_str(&schema_json()).unwrap();
        let validator = jsonschema::validator_for(&schema).expect("schema compiles");
        let files = example_runbooks();
        assert!(
            files.len() >= 2,
            "expected example runbooks, found {files:?}"
        );
        for path in files {
            let instance = as_json(&path);
            let errors: Vec<String> = validator
                .iter_errors(&instance)
                .map(|e| format!("{} at {}", e, e.instance_path))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        }
    }

    fn validator() -> jsonschema::Validator {
        let schema: serde_json::Value = serde_json::from_str(&schema_json()).unwrap();
        jsonschema::validator_for(&schema).expect("schema compiles")
    }

    /// Every runbook fixture, in `tests/fixtures/runbooks` and its folders.
    fn fixtures() -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut dirs = vec![repo().join("tests/fixtures/runbooks")];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(&dir).expect("fixture dir") {
                let p = e.expect("dir entry").path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|e| e == "toml") {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    /// A `# key: value` line of a fixture's header.
    fn header<'a>(text: &'a str, key: &str) -> Option<&'a str> {
        text.lines()
            .take_while(|l| l.starts_with('#') || l.is_empty())
            .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
    }

    /// What `runbook check` rejects, the schema rejects too, wherever JSON Schema can say it;
    /// what it accepts, the schema accepts. A fixture the schema cannot judge says why in its
    /// header (`# schema: cannot say (…)`), and the schema must then accept it, so that the
    /// list of what it cannot say stays true.
    #[test]
    fn fixtures_the_loader_rejects_the_schema_rejects() {
        let validator = validator();
        let files = fixtures();
        assert!(files.len() > 50, "{files:?}");
        let mut rejected_by_both = 0;
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.strip_prefix(repo()).unwrap().display().to_string();
            let instance = as_json(&path);
            let schema_errors: Vec<String> = validator
                .iter_errors(&instance)
                .map(|e| format!("{e} at {}", e.instance_path))
                .collect();
            let schema_says = header(&text, "schema").unwrap_or("rejects");
            match crate::runbook::load_file(&path) {
                Ok(_) => {
                    assert!(
                        header(&text, "loader").is_none(),
                        "{name}: the loader accepts it"
                    );
                    assert!(schema_errors.is_empty(), "{name}: {schema_errors:#?}");
                }
                Err(e) => {
                    // The fixture fails for the reason it is about.
                    if let Some(want) = header(&text, "loader") {
                        assert!(
                            e.diagnostics.iter().any(|d| d.message.contains(want)),
                            "{name}: want `{want}`, got {:#?}",
                            e.diagnostics
                        );
                    }
                    if schema_says == "rejects" {
                        assert!(
                            !schema_errors.is_empty(),
                            "{name}: `runbook check` rejects it ({}), the schema accepts it",
                            e.diagnostics[0].message
                        );
                        rejected_by_both += 1;
                    } else {
                        assert!(
                            schema_says.starts_with("cannot say ("),
                            "{name}: {schema_says}"
                        );
                        assert!(
                            schema_errors.is_empty(),
                            "{name} says the schema cannot say, but it does: {schema_errors:#?}"
                        );
                    }
                }
            }
        }
        assert!(rejected_by_both > 40, "{rejected_by_both}");
    }

    /// The patterns the schema publishes accept exactly what the loader's own checks accept.
    #[test]
    fn schema_patterns_match_the_loader() {
        let matches = |pattern: &str, s: &str| {
            jsonschema::is_valid(
                &serde_json::json!({ "type": "string", "pattern": pattern }),
                &serde_json::json!(s),
            )
        };
        use super::super::load::{DEADLINE_PATTERN, IDENT_PATTERN};
        for s in [
            "effective",
            "effective+0h",
            "effective+15m",
            "effective+999999w",
            "effective+7d",
            "",
            "effective+",
            "effective+7",
            "effective-1d",
            "effective+1y",
            "effective+1234567d",
            "7d",
            "xeffective+1d",
            "effective+1dx",
            "effective + 1d",
        ] {
            assert_eq!(
                matches(DEADLINE_PATTERN, s),
                super::super::load::valid_deadline(s),
                "{s:?}"
            );
        }
        for s in ["a", "idp-suspend", "A_1", "", "a b", "a.b", "é", "a/b", "-"] {
            assert_eq!(
                matches(IDENT_PATTERN, s),
                super::super::load::is_ident(s),
                "{s:?}"
            );
        }
    }

    #[test]
    fn schema_rejects_what_the_model_rejects() {
        let schema: serde_json::Value = serde_json::from_str(&schema_json()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let bad = serde_json::json!({
            "runbook": { "name": "x", "nmae": "typo" },
            "step": [{ "id": "a", "lane": "nowhere" }]
        });
        assert!(!validator.is_valid(&bad));
        let good = serde_json::json!({
            "runbook": { "name": "x" },
            "step": [{ "id": "a", "lane": "it", "manual": "x" }]
        });
        assert!(validator.is_valid(&good));
    }

    #[test]
    fn example_runbooks_load() {
        for path in example_runbooks() {
            if let Err(e) = crate::runbook::load_file(&path) {
                panic!("{e}");
            }
        }
    }
}
