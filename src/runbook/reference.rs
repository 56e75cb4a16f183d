//! The per-kind reference in `runbooks/README.md`, generated from the provider catalogue.
//!
//! Each kind's section in the README has hand-written prose (what the kind is, how it
//! authenticates) and, between two markers, tables generated here from the kind's
//! declaration: its settings, and each action with its parameters (from the action's params
//! type), its marks and what it does. A test keeps the checked-in README current; regenerate
//! it with `OFFBOARD_BLESS=1 cargo test --lib reference`.

use crate::providers::params::Field;
use crate::providers::{ActionSpec, KindSpec, SettingSpec, SettingType};
use crate::ticketing::TicketKind;

/// The line that opens a kind's generated tables.
pub fn begin_marker(kind: &str) -> String {
    format!("<!-- generated: kind {kind} (OFFBOARD_BLESS=1 cargo test --lib reference) -->")
}

/// The line that closes them.
pub const END_MARKER: &str = "<!-- end generated -->";

/// The line that opens a ticketing kind's generated table.
pub fn ticketing_begin_marker(kind: &str) -> String {
    format!(
        "<!-- generated: ticketing kind {kind} (OFFBOARD_BLESS=1 cargo test --lib reference) -->"
    )
}

/// The table of a kind's settings, in Markdown, followed by a blank line.
fn settings_table(settings: &[SettingSpec]) -> String {
    let mut out = String::new();
    out.push_str("| setting | type | required | meaning |\n| --- | --- | --- | --- |\n");
    for s in settings {
        let ty = match s.ty {
            SettingType::String => "string",
            SettingType::Integer => "integer",
            SettingType::Bool => "bool",
            SettingType::StringList => "list of strings",
            SettingType::Secret => "secret reference",
            SettingType::SecretDocument => "secret reference (read whole)",
            SettingType::Auth => "`auth` table",
        };
        let required = if s.required { "yes" } else { "no" };
        out.push_str(&format!(
            "| `{}` | {ty} | {required} | {} |\n",
            s.name,
            cell(s.summary)
        ));
    }
    out.push('\n');
    out
}

/// The tables of one kind, in Markdown.
pub fn kind_tables(kind: &KindSpec) -> String {
    let mut out = String::new();
    if !kind.settings.is_empty() {
        out.push_str(&settings_table(kind.settings));
    }
    out.push_str("| action | params | marks | what it does |\n| --- | --- | --- | --- |\n");
    for a in kind.actions {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            a.name,
            params_cell(a),
            marks(a),
            cell(a.summary)
        ));
    }
    // The keys inside table parameters, once per params type.
    let mut shown: Vec<Vec<Field>> = Vec::new();
    for a in kind.actions {
        let nested = a.params.nested_fields();
        if nested.is_empty() || shown.contains(&nested) {
            continue;
        }
        let users: Vec<String> = kind
            .actions
            .iter()
            .filter(|b| b.params.nested_fields() == nested)
            .map(|b| format!("`{}`", b.name))
            .collect();
        out.push_str(&format!(
            "\nInside the params of {}:\n\n",
            users.join(" and ")
        ));
        for f in &nested {
            let need = if f.required { "required" } else { "optional" };
            out.push_str(&format!("- `{}` ({}, {need})", f.name, f.ty));
            if !f.description.is_empty() {
                out.push_str(&format!(
                    ": {}",
                    f.description
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
            out.push('\n');
        }
        shown.push(nested);
    }
    out
}

fn params_cell(a: &ActionSpec) -> String {
    let fields = a.params.fields();
    if fields.is_empty() {
        return "—".to_string();
    }
    let parts: Vec<String> = fields
        .iter()
        .map(|f| {
            let need = if f.required { "required" } else { "optional" };
            let mut text = format!("`{}` ({}, {need})", f.name, f.ty);
            if !f.description.is_empty() {
                text.push_str(": ");
                text.push_str(&f.description);
            }
            text
        })
        .collect();
    cell(&parts.join("; "))
}

fn marks(a: &ActionSpec) -> String {
    let mut m = Vec::new();
    if a.destructive {
        m.push("destructive");
    }
    if a.alerts_user {
        m.push("alerts user");
    }
    if !a.revokes {
        m.push("not re-checked by `verify`");
    }
    m.join(", ")
}

/// Text fit for one table cell: one line, `|` escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The README with every kind's generated block replaced by the current tables. A kind
/// without a block is an error, naming the marker to add.
pub fn update_readme(readme: &str, kinds: &[&KindSpec]) -> Result<String, String> {
    let mut out = readme.to_string();
    for kind in kinds {
        let begin = begin_marker(kind.name);
        let Some(start) = out.find(&begin) else {
            return Err(format!(
                "runbooks/README.md has no generated block for kind `{}`: add a section with the lines\n{begin}\n{END_MARKER}",
                kind.name
            ));
        };
        let body = start + begin.len();
        let Some(len) = out[body..].find(END_MARKER) else {
            return Err(format!(
                "the block for kind `{}` has no `{END_MARKER}`",
                kind.name
            ));
        };
        out.replace_range(body..body + len, &format!("\n{}", kind_tables(kind)));
    }
    Ok(out)
}

/// The README with every ticketing kind's generated settings table replaced by the current one.
pub fn update_readme_ticketing(readme: &str, kinds: &[&TicketKind]) -> Result<String, String> {
    let mut out = readme.to_string();
    for kind in kinds {
        let begin = ticketing_begin_marker(kind.name);
        let Some(start) = out.find(&begin) else {
            return Err(format!(
                "runbooks/README.md has no generated block for ticketing kind `{}`: add a section with the lines\n{begin}\n{END_MARKER}",
                kind.name
            ));
        };
        let body = start + begin.len();
        let Some(len) = out[body..].find(END_MARKER) else {
            return Err(format!(
                "the block for ticketing kind `{}` has no `{END_MARKER}`",
                kind.name
            ));
        };
        out.replace_range(
            body..body + len,
            &format!("\n{}", settings_table(kind.settings)),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::KINDS;
    use crate::ticketing::TICKET_KINDS;

    /// `runbooks/README.md`'s tables are what the catalogue generates.
    #[test]
    fn readme_reference_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks/README.md");
        let have = std::fs::read_to_string(path).unwrap();
        let want = update_readme(&have, KINDS)
            .and_then(|r| update_readme_ticketing(&r, TICKET_KINDS))
            .unwrap_or_else(|e| panic!("{e}"));
        if std::env::var_os("OFFBOARD_BLESS").is_some_and(|v| !v.is_empty()) {
            std::fs::write(path, &want).unwrap();
            return;
        }
        assert!(
            have == want,
            "runbooks/README.md's kind tables are stale: run `OFFBOARD_BLESS=1 cargo test --lib reference` and commit it"
        );
    }

    #[test]
    fn tables_show_params_and_marks_from_the_declaration() {
        let vault = crate::providers::find_kind("vault").unwrap();
        let t = kind_tables(vault);
        let row = t
            .lines()
            .find(|l| l.starts_with("| `rotate_secret` |"))
            .unwrap();
        assert!(row.contains("`paths` (list of strings, required)"), "{row}");
        assert!(row.contains("`length` (integer 16–256, optional)"), "{row}");
        let sandbox = crate::providers::find_kind("sandbox").unwrap();
        let t = kind_tables(sandbox);
        let row = t
            .lines()
            .find(|l| l.starts_with("| `send_notice` |"))
            .unwrap();
        assert!(
            row.contains("alerts user") && row.contains("not re-checked"),
            "{row}"
        );
        let row = t
            .lines()
            .find(|l| l.starts_with("| `wipe_device` |"))
            .unwrap();
        assert!(row.contains("| destructive |"), "{row}");
    }

    #[test]
    fn a_kind_without_a_block_is_named() {
        let e = update_readme("# nothing\n", KINDS).unwrap_err();
        assert!(
            e.contains("kind `scim`") && e.contains(&begin_marker("scim")),
            "{e}"
        );
    }
}
