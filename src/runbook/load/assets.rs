//! The `[assets]` table: the asset lane's source, its return step template and `on_overdue`.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::{Check, LANES, PHASES, Val, is_ident, valid_deadline};

pub(super) const ASSETS_KEYS: &[&str] = &[
    "from",
    "csv",
    "columns",
    "match",
    "id_prefix",
    "lane",
    "phase",
    "manual",
    "owner",
    "deadline",
    "escalate_to",
    "on_overdue",
];
const COLUMN_KEYS: &[&str] = &["tag", "serial", "name", "user"];
/// The variables a return step's instruction may use beside the runbook's.
pub(super) const ASSET_VARS: &[&str] = &["asset.tag", "asset.serial", "asset.name"];

impl Check<'_> {
    /// `steps`: the runbook's steps, each id with whether it is automated.
    pub(super) fn assets_table(
        &mut self,
        key_span: Range<usize>,
        v: &Val<'_>,
        steps: &[(String, bool)],
    ) {
        let Some(t) = self.table("assets", v, "{ from = \"input:assets\" }") else {
            return;
        };
        let mut sources = 0;
        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            match key {
                "from" => {
                    sources += 1;
                    let Some(s) = self.string(key, v, "\"input:assets\"") else {
                        continue;
                    };
                    match s.strip_prefix("input:") {
                        Some(name) if self.inputs.contains(name.trim()) => {}
                        Some(name) => self.push(
                            format!("`from` names the input `{name}`, which is not declared"),
                            v.span(),
                            format!(
                                "declare it under [inputs]: `{} = {{ prompt = \"Assets (TAG or TAG:SERIAL, comma-separated)\" }}`",
                                if is_ident(name.trim()) { name.trim() } else { "assets" }
                            ),
                        ),
                        None => self.push(
                            format!("`from = \"{s}\"` is not a source of assets"),
                            v.span(),
                            "use `from = \"input:<name>\"` for a declared input, or `csv = \"<path>\"` for an export",
                        ),
                    }
                }
                "csv" => {
                    sources += 1;
                    if let Some(s) = self.string(key, v, "\"exports/assets.csv\"") {
                        self.template(s, v.span(), "the `csv` path of [assets]");
                    }
                }
                "match" => {
                    if let Some(s) = self.string(key, v, "\"{{ user.email }}\"") {
                        self.template(s, v.span(), "the `match` of [assets]");
                    }
                }
                "columns" => {
                    let Some(cols) = self.table(key, v, "{ tag = \"Asset Tag\" }") else {
                        continue;
                    };
                    self.asset_columns(cols);
                }
                "id_prefix" => {
                    if let Some(s) = self.string(key, v, "\"return\"")
                        && !is_ident(s)
                    {
                        self.push(
                            format!("`{s}` is not a valid `id_prefix`"),
                            v.span(),
                            "use letters, digits, `_` and `-`, e.g. `return`",
                        );
                    }
                }
                "lane" => self.one_of(key, v, LANES),
                "phase" => self.one_of(key, v, PHASES),
                "manual" => {
                    if let Some(s) = self.string(key, v, "\"Collect {{ asset.tag }}\"") {
                        let n = self.vars.len();
                        self.vars.extend(ASSET_VARS.iter().map(|v| v.to_string()));
                        self.template(s, v.span(), "the `manual` text of [assets]");
                        self.vars.truncate(n);
                    }
                }
                "owner" | "escalate_to" => {
                    if let Some(s) = self.string(key, v, "\"…\"") {
                        self.template(s, v.span(), &format!("the `{key}` of [assets]"));
                    }
                }
                "deadline" => {
                    if let Some(s) = self.string(key, v, "\"effective+7d\"")
                        && !valid_deadline(s)
                    {
                        self.push(
                            format!("`{s}` is not a valid deadline"),
                            v.span(),
                            "use `effective` or `effective+<N><m|h|d|w>`, e.g. `effective+7d`",
                        );
                    }
                }
                "on_overdue" => {
                    let Some(s) = self.string(key, v, "\"mdm-lock\"") else {
                        continue;
                    };
                    match steps.iter().find(|(id, _)| id == s) {
                        Some((_, true)) => {}
                        Some((_, false)) => self.push(
                            format!("`on_overdue` names `{s}`, a manual step"),
                            v.span(),
                            "name an automated lock or wipe step (an MDM or RMM action)",
                        ),
                        None => self.push(
                            format!("`on_overdue` names `{s}`, which is not a step"),
                            v.span(),
                            "name the id of an automated lock or wipe `[[step]]`",
                        ),
                    }
                }
                other => self.unknown_key(other, k.span(), "[assets]", ASSETS_KEYS),
            }
        }
        if sources != 1 {
            self.push(
                if sources == 0 {
                    "[assets] has no source of assets"
                } else {
                    "[assets] has both `from` and `csv`"
                },
                self.head(key_span),
                "use one: `from = \"input:<name>\"` or `csv = \"<path>\"`",
            );
        }
    }

    fn asset_columns(&mut self, cols: &DeTable<'_>) {
        for (k, v) in cols.iter() {
            let key: &str = k.get_ref();
            if COLUMN_KEYS.contains(&key) {
                self.string(key, v, "\"Asset Tag\"");
            } else {
                self.unknown_key(key, k.span(), "[assets.columns]", COLUMN_KEYS);
            }
        }
    }
}

/// Each `[[step]]`'s id, and whether it is automated (has a `system`).
pub(super) fn step_ids(doc: &DeTable<'_>) -> Vec<(String, bool)> {
    let Some((_, steps)) = doc.iter().find(|(k, _)| k.get_ref().as_ref() == "step") else {
        return Vec::new();
    };
    let DeValue::Array(steps) = steps.get_ref() else {
        return Vec::new();
    };
    steps
        .iter()
        .filter_map(|s| match s.get_ref() {
            DeValue::Table(t) => {
                let id = t.iter().find(|(k, _)| k.get_ref().as_ref() == "id")?;
                let DeValue::String(id) = id.1.get_ref() else {
                    return None;
                };
                let automated = t.iter().any(|(k, _)| k.get_ref().as_ref() == "system");
                Some((id.to_string(), automated))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{HEAD, find, load};

    fn with_assets(assets: &str) -> String {
        format!(
            "{HEAD}[[step]]\nid = \"wipe\"\nlane = \"it\"\nsystem = \"idp\"\naction = \"wipe_device\"\n[[step]]\nid = \"badge\"\nlane = \"facilities\"\nmanual = \"Collect the badge\"\n[assets]\n{assets}"
        )
    }

    #[test]
    fn a_valid_asset_lane_loads() {
        let src = with_assets(
            "csv = \"exports/{{ departure.id }}.csv\"\ncolumns = { tag = \"Asset Tag\" }\nmatch = \"{{ user.id }}\"\nmanual = \"Collect {{ asset.name }} {{ asset.tag }}\"\ndeadline = \"effective+7d\"\non_overdue = \"wipe\"\n",
        );
        let rb = load(&src).unwrap_or_else(|e| panic!("{}", e.render(false)));
        let a = rb.file.assets.unwrap();
        assert_eq!(a.on_overdue.as_deref(), Some("wipe"));
        assert_eq!(a.columns.unwrap().tag.as_deref(), Some("Asset Tag"));
    }

    #[test]
    fn asset_lane_mistakes_are_reported_at_the_value() {
        // HEAD is 8 lines, the two steps 9 more, `[assets]` is line 18.
        let (msg, line, col, hint) = find(&with_assets("from = \"input:assets\"\n"), "from");
        assert_eq!(
            msg,
            "`from` names the input `assets`, which is not declared"
        );
        assert_eq!((line, col), (19, 8));
        assert!(hint.contains("[inputs]"), "{hint}");
        let (msg, line, _, _) = find(
            &with_assets("from = \"input:manager\"\non_overdue = \"badge\"\n"),
            "on_overdue",
        );
        assert_eq!(msg, "`on_overdue` names `badge`, a manual step");
        assert_eq!(line, 20);
        let (msg, _, _, _) = find(
            &with_assets("from = \"input:manager\"\non_overdue = \"wip\"\n"),
            "on_overdue",
        );
        assert_eq!(msg, "`on_overdue` names `wip`, which is not a step");
        let (msg, _, _, _) = find(&with_assets("deadline = \"soon\"\n"), "source");
        assert_eq!(msg, "[assets] has no source of assets");
        let (msg, _, _, _) = find(
            &with_assets("from = \"input:manager\"\nmanual = \"{{ asset.colour }}\"\n"),
            "unknown template",
        );
        assert!(msg.contains("asset.colour"), "{msg}");
        // asset.* is only for the return step's text.
        let src = with_assets("from = \"input:manager\"\n").replace(
            "manual = \"Collect the badge\"",
            "manual = \"Collect {{ asset.tag }}\"",
        );
        find(&src, "unknown template variable `asset.tag`");
        let (_, _, _, hint) = find(
            &with_assets("from = \"input:manager\"\ncvs = \"x\"\n"),
            "unknown key",
        );
        assert!(hint.contains("did you mean `csv`?"), "{hint}");
    }
}
