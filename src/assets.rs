//! The asset lane: what the person holds, one manual return step per asset, the fields the asset
//! process records on confirm, and the lock/wipe step that waits for an asset to be overdue.
//!
//! The list comes from the runbook's `[assets]` table ([`crate::runbook::AssetsDef`]): a declared
//! input (`from = "input:assets"`) or a CSV export of the asset system. It is read when the
//! departure is planned and frozen into the plan, like everything else the plan holds.
//!
//! Asset tags come from outside (an export, the command line): a step id made from one keeps
//! only letters, digits, `-` and `_`, and when that changes the tag, a short hash of the tag is
//! added, so ids are stable (same tag, same id), unique (two tags never share one) and safe.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::departure::{DepartureState, PlannedStep, Status};

/// What the person holds, as the plan records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    pub tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The fields a return step asks for, in the order they are asked. `asset_tag` and `serial` are
/// recorded from the plan on confirm; the confirmer gives the rest.
pub const FIELDS: &[&str] = &[
    "disposition",
    "return_method",
    "tracking_number",
    "condition",
    "itad_certificate",
];

/// What happens to a returned (or not returned) asset.
pub const DISPOSITIONS: &[&str] = &["redeploy", "repair", "retire", "lost"];

/// Longest tag kept readable in a step id.
const MAX_ID_TAG: usize = 40;

/// The step id for an asset: `<prefix>-<tag>` with the tag made safe (see the module docs).
pub fn step_id(prefix: &str, tag: &str) -> String {
    let safe: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut safe = safe.trim_matches('-').to_string();
    while safe.contains("--") {
        safe = safe.replace("--", "-");
    }
    let lossy = safe != tag || safe.len() > MAX_ID_TAG;
    safe.truncate(MAX_ID_TAG);
    let safe = safe.trim_end_matches('-');
    let mut id = format!("{prefix}-{safe}");
    if safe.is_empty() {
        id = prefix.to_string();
    }
    if lossy {
        let h = crate::journal::sha256_hex(tag.as_bytes());
        id.push('-');
        id.push_str(&h[..8]);
    }
    id
}

/// Assets from an input's value: `TAG` or `TAG:SERIAL`, separated by commas, semicolons or line
/// breaks. Blank entries are ignored; a tag listed twice is one asset.
pub fn from_list(value: &str) -> Vec<Asset> {
    let mut out: Vec<Asset> = Vec::new();
    for entry in value.split([',', ';', '\n', '\r']) {
        let (tag, serial) = match entry.split_once(':') {
            Some((t, s)) => (t.trim(), Some(s.trim()).filter(|s| !s.is_empty())),
            None => (entry.trim(), None),
        };
        if tag.is_empty() || out.iter().any(|a| a.tag == tag) {
            continue;
        }
        out.push(Asset {
            tag: tag.to_string(),
            serial: serial.map(str::to_string),
            name: None,
        });
    }
    out
}

/// The CSV columns to read.
#[derive(Debug, Clone)]
pub struct Columns {
    pub tag: String,
    pub serial: String,
    pub name: String,
    pub user: String,
}

impl Columns {
    pub fn of(def: Option<&crate::runbook::AssetColumns>) -> Columns {
        let pick = |v: Option<&Option<String>>, d: &str| {
            v.and_then(|v| v.clone()).unwrap_or_else(|| d.to_string())
        };
        Columns {
            tag: pick(def.map(|d| &d.tag), "asset_tag"),
            serial: pick(def.map(|d| &d.serial), "serial"),
            name: pick(def.map(|d| &d.name), "name"),
            user: pick(def.map(|d| &d.user), "assigned_to"),
        }
    }
}

/// The person's assets in a CSV export: the rows whose `user` column equals `person` (ignoring
/// case and surrounding space). A row with no tag uses its serial as the tag.
pub fn from_csv(text: &str, cols: &Columns, person: &str) -> Result<Vec<Asset>> {
    let rows = parse_csv(text)?;
    let Some((header, rows)) = rows.split_first() else {
        bail!("the CSV file is empty (its first row must name the columns)");
    };
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().trim_start_matches('\u{feff}') == name)
    };
    let Some(user) = col(&cols.user) else {
        bail!(
            "the CSV has no column {:?} (columns: {})",
            cols.user,
            header.join(", ")
        );
    };
    let Some(tag) = col(&cols.tag) else {
        bail!(
            "the CSV has no column {:?} (columns: {})",
            cols.tag,
            header.join(", ")
        );
    };
    let serial = col(&cols.serial);
    let name = col(&cols.name);
    let person = person.trim().to_lowercase();
    let cell = |row: &Vec<String>, i: Option<usize>| {
        i.and_then(|i| row.get(i))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut out: Vec<Asset> = Vec::new();
    for row in rows {
        if cell(row, Some(user)).map(|u| u.to_lowercase()) != Some(person.clone()) {
            continue;
        }
        let serial = cell(row, serial);
        let Some(tag) = cell(row, Some(tag)).or_else(|| serial.clone()) else {
            continue;
        };
        if out.iter().any(|a| a.tag == tag) {
            continue;
        }
        out.push(Asset {
            tag,
            serial,
            name: cell(row, name),
        });
    }
    Ok(out)
}

/// RFC 4180 CSV: fields separated by commas, quoted with `"` (a quote doubled inside), rows by
/// CRLF or LF. Blank lines are skipped.
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c)
                }
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                line += 1;
                row.push(std::mem::take(&mut field));
                if !(row.len() == 1 && row[0].is_empty()) {
                    rows.push(std::mem::take(&mut row));
                }
                row.clear();
            }
            c => field.push(c),
        }
    }
    if quoted {
        bail!("the CSV has a quoted field that is never closed (from line {line})");
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

/// Why the fields recorded for a return step cannot be accepted, with a hint: a disposition that
/// is not one of [`DISPOSITIONS`], or retired without an ITAD certificate number, or returned
/// without how and in what condition.
pub fn check_fields(fields: &BTreeMap<String, String>) -> Option<(String, String)> {
    let get = |k: &str| fields.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let Some(disposition) = get("disposition") else {
        return Some((
            "a returned asset needs its disposition".into(),
            format!("add --field disposition=… ({})", DISPOSITIONS.join(", ")),
        ));
    };
    if !DISPOSITIONS.contains(&disposition) {
        return Some((
            format!(
                "disposition {:?} is not one of {}",
                crate::ui::safe(disposition),
                DISPOSITIONS.join(", ")
            ),
            format!("use --field disposition={}", DISPOSITIONS[0]),
        ));
    }
    if disposition == "retire" && get("itad_certificate").is_none() {
        return Some((
            "a retired asset needs the ITAD certificate number of its disposal".into(),
            "add --field itad_certificate=… (the certificate of destruction or recycling)".into(),
        ));
    }
    if disposition != "lost" {
        let missing: Vec<&str> = ["return_method", "condition"]
            .into_iter()
            .filter(|k| get(k).is_none())
            .collect();
        if !missing.is_empty() {
            return Some((
                format!("a returned asset needs {}", missing.join(" and ")),
                missing
                    .iter()
                    .map(|k| format!("--field {k}=…"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ));
        }
    }
    None
}

/// Why one field's value, asked in [`FIELDS`] order at the interactive checklist, is not
/// accepted given the fields answered before it (`so_far`); an empty value means "none".
pub fn field_error(
    name: &str,
    value: &str,
    so_far: &BTreeMap<String, String>,
) -> Option<&'static str> {
    let value = value.trim();
    let disposition = so_far.get("disposition").map(|d| d.trim());
    match name {
        "disposition" if !DISPOSITIONS.contains(&value) => {
            Some("one of: redeploy, repair, retire, lost")
        }
        "return_method" | "condition" if value.is_empty() && disposition != Some("lost") => {
            Some("required for an asset that came back")
        }
        "itad_certificate" if value.is_empty() && disposition == Some("retire") => {
            Some("required for a retired asset: the ITAD certificate number")
        }
        _ => None,
    }
}

/// The fields a return step records when it is confirmed: what the confirmer gave, and the tag
/// and serial from the plan.
pub fn recorded_fields(asset: &Asset, given: &mut BTreeMap<String, String>) {
    given
        .entry("asset_tag".into())
        .or_insert_with(|| asset.tag.clone());
    if let Some(serial) = &asset.serial {
        given
            .entry("serial".into())
            .or_insert_with(|| serial.clone());
    }
}

/// Whether a lock/wipe step that waits on assets (`on_overdue`) runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// An asset is overdue and not returned, or confirmed lost.
    Run,
    /// Nothing is overdue yet: the step stays pending, with this reason.
    Wait(String),
    /// Every asset came back: the step is not applicable, for this reason.
    NotNeeded(String),
}

/// The gate of a step planned with `on_overdue_of` (the asset steps it waits on), at `now`.
pub fn gate(step: &PlannedStep, state: &DepartureState, now: DateTime<Utc>) -> Option<Gate> {
    let waits_on = step.on_overdue_of.as_ref()?;
    let mut open: BTreeSet<&str> = BTreeSet::new();
    for id in waits_on {
        let (Some(planned), Some(st)) = (
            state.facts.steps.iter().find(|s| &s.id == id),
            state.steps.get(id),
        ) else {
            continue;
        };
        let lost = st.status() == Status::Done
            && st.fields.get("disposition").map(|d| d.trim()) == Some("lost");
        if lost || planned.is_overdue(st.status(), now) {
            return Some(Gate::Run);
        }
        if !st.status().is_settled() {
            open.insert(id);
        }
    }
    Some(if open.is_empty() {
        Gate::NotNeeded(if waits_on.is_empty() {
            "the person holds no assets".into()
        } else {
            "every asset it waits on was returned".into()
        })
    } else {
        Gate::Wait(format!(
            "waiting until an asset is overdue ({})",
            open.into_iter().collect::<Vec<_>>().join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_ids_are_safe_stable_and_unique() {
        assert_eq!(step_id("return", "LT-0042"), "return-LT-0042");
        let odd = step_id("return", "../etc/passwd");
        assert!(odd.starts_with("return-etc-passwd-"), "{odd}");
        assert!(
            odd.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{odd}"
        );
        assert_eq!(odd, step_id("return", "../etc/passwd"));
        // Two tags that sanitize alike still get different ids.
        assert_ne!(step_id("return", "A B"), step_id("return", "A/B"));
        assert_ne!(step_id("return", "A-B"), step_id("return", "A B"));
        let long = step_id("r", &"x".repeat(500));
        assert!(long.len() < 60, "{long}");
        let empty = step_id("r", "???");
        assert!(empty.starts_with("r-") && empty.len() == 10, "{empty}");
        assert_ne!(step_id("r", "é"), step_id("r", "ü"));
    }

    #[test]
    fn an_input_lists_tags_and_serials() {
        let a = from_list("LT-0042:C02XK1, PH-7 ;\n\nLT-0042:dup");
        assert_eq!(
            a,
            [
                Asset {
                    tag: "LT-0042".into(),
                    serial: Some("C02XK1".into()),
                    name: None
                },
                Asset {
                    tag: "PH-7".into(),
                    serial: None,
                    name: None
                }
            ]
        );
    }

    #[test]
    fn a_csv_export_gives_the_persons_rows() {
        let text = "\u{feff}Asset Tag,Serial,Model,Checked out to\r\n\
            LT-1,S1,\"MacBook Pro 14\"\", M3\",Alice@Corp.example\r\n\
            LT-2,S2,ThinkPad,bob@corp.example\r\n\
            \r\n\
            ,S3,\"Phone\nwith a line break\",alice@corp.example\n\
            LT-1,S1b,again,alice@corp.example";
        let cols = Columns {
            tag: "Asset Tag".into(),
            serial: "Serial".into(),
            name: "Model".into(),
            user: "Checked out to".into(),
        };
        let a = from_csv(text, &cols, "alice@corp.example").unwrap();
        let tags: Vec<&str> = a.iter().map(|a| a.tag.as_str()).collect();
        assert_eq!(tags, ["LT-1", "S3"]);
        assert_eq!(a[0].name.as_deref(), Some("MacBook Pro 14\", M3"));
        assert_eq!(a[1].serial.as_deref(), Some("S3"));
        let err = from_csv(text, &Columns::of(None), "alice@corp.example").unwrap_err();
        assert!(
            err.to_string().contains("no column \"assigned_to\""),
            "{err}"
        );
        assert!(parse_csv("a,\"b\nc").is_err());
    }

    fn fields(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dispositions_and_the_itad_rule() {
        let ok = [("return_method", "courier"), ("condition", "good")];
        for d in ["redeploy", "repair"] {
            let mut f = fields(&ok);
            f.insert("disposition".into(), d.into());
            assert_eq!(check_fields(&f), None, "{d}");
        }
        let mut f = fields(&ok);
        assert!(check_fields(&f).unwrap().0.contains("disposition"));
        f.insert("disposition".into(), "sold".into());
        assert!(check_fields(&f).unwrap().0.contains("not one of"));
        f.insert("disposition".into(), "retire".into());
        assert!(check_fields(&f).unwrap().0.contains("ITAD"));
        f.insert("itad_certificate".into(), "  ".into());
        assert!(check_fields(&f).unwrap().0.contains("ITAD"));
        f.insert("itad_certificate".into(), "CERT-9".into());
        assert_eq!(check_fields(&f), None);
        // Lost: nothing came back, so no method or condition.
        assert_eq!(check_fields(&fields(&[("disposition", "lost")])), None);
        let e = check_fields(&fields(&[("disposition", "redeploy")])).unwrap();
        assert!(e.0.contains("return_method and condition"), "{e:?}");
    }

    #[test]
    fn the_checklist_checks_each_field_against_those_before() {
        let none = BTreeMap::new();
        assert!(field_error("disposition", "sold", &none).is_some());
        assert_eq!(field_error("disposition", " retire ", &none), None);
        let retire = fields(&[("disposition", "retire")]);
        assert!(field_error("itad_certificate", "", &retire).is_some());
        assert_eq!(field_error("itad_certificate", "C-1", &retire), None);
        assert!(field_error("condition", "", &retire).is_some());
        let lost = fields(&[("disposition", "lost")]);
        assert_eq!(field_error("condition", "", &lost), None);
        assert_eq!(field_error("itad_certificate", "", &lost), None);
        assert_eq!(field_error("tracking_number", "", &retire), None);
    }
}
