//! The runbook JSON Schema, generated from the model and checked in as `runbooks/schema.json`.

use super::RunbookFile;

/// The JSON Schema of a runbook file, pretty-printed, ending with a newline.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(RunbookFile);
    let mut out = serde_json::to_string_pretty(&schema).unwrap_or_else(|_| "{}".to_string());
    out.push('\n');
    out
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

    #[test]
    fn schema_rejects_what_the_model_rejects() {
        let schema: serde_json::Value = serde_json::from_str(&schema_json()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let bad = serde_json::json!({
            "runbook": { "name": "x", "nmae": "typo" },
            "step": [{ "id": "a", "lane": "nowhere" }]
        });
        assert!(!validator.is_valid(&bad));
        let good = serde_json::json!({ "runbook": { "name": "x" } });
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

/// `runbooks/README.md` documents every kind, setting and action of the catalogue, with the
/// right marks.
#[cfg(test)]
mod readme_tests {
    use crate::providers::KINDS;

    #[test]
    fn readme_documents_the_catalogue() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks/README.md"))
                .unwrap();
        for kind in KINDS {
            let start = readme
                .find(&format!("### `{}`", kind.name))
                .unwrap_or_else(|| panic!("README lacks a section for kind `{}`", kind.name));
            let section = &readme[start..];
            let section = &section[..section[4..].find("\n### ").map_or(section.len(), |n| n + 4)];
            for s in kind.settings {
                assert!(
                    section.contains(&format!("| `{}` |", s.name)),
                    "{}: {}",
                    kind.name,
                    s.name
                );
            }
            for a in kind.actions {
                let row = section
                    .lines()
                    .find(|l| l.starts_with(&format!("| `{}` |", a.name)))
                    .unwrap_or_else(|| panic!("README lacks {}.{}", kind.name, a.name));
                assert_eq!(row.contains("destructive"), a.destructive, "{row}");
                assert_eq!(row.contains("alerts user"), a.alerts_user, "{row}");
                for p in a.params {
                    assert!(row.contains(&format!("`{}`", p.name)), "{row}");
                }
            }
        }
    }
}
