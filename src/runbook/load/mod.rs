//! Reading a runbook with spans and validating it.
//!
//! Validation walks the parsed TOML tree (which keeps the span of every key and value) rather
//! than the deserialized model, so that every problem — in any table, including the
//! kind-specific settings serde flattens away — is reported at once, at the exact key or value.
//! Only a runbook with no diagnostics is deserialized into [`RunbookFile`].
//!
//! This module holds the entry points, the document-level checks (`[runbook]`, `[inputs]`) and
//! the diagnostic helpers every check uses; `systems` checks the `[systems]` table, `steps`
//! each `[[step]]`, and `graph` the `after` references between steps (missing ids, cycles).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::template::{self, BUILTIN_VARS, TemplateError};
use super::{Diagnostic, RunbookError, RunbookFile};
use crate::providers::KindSpec;

mod approvals;
mod assets;
mod graph;
mod notify;
mod params;
mod state;
mod steps;
mod systems;
mod ticketing;

pub use state::state_of_file;

use graph::AfterRef;

/// Larger files are refused before parsing.
pub const MAX_RUNBOOK_BYTES: usize = 2 * 1024 * 1024;
/// Arrays and inline tables nested deeper than this are refused before parsing.
const MAX_NESTING: usize = 64;

/// A loaded, validated runbook.
#[derive(Debug, Clone)]
pub struct Runbook {
    pub file: RunbookFile,
    pub path: PathBuf,
    pub source: String,
    /// sha256 hex of the file's bytes.
    pub sha256: String,
}

impl Runbook {
    /// How many steps are automated and how many manual.
    pub fn step_counts(&self) -> (usize, usize) {
        let manual = self.file.steps.iter().filter(|s| s.is_manual()).count();
        (self.file.steps.len() - manual, manual)
    }
}

/// Read and validate a runbook file.
pub fn load_file(path: &Path) -> Result<Runbook, RunbookError> {
    let fail = |message: String, hint: Option<String>| RunbookError {
        path: path.display().to_string(),
        source: String::new(),
        diagnostics: vec![Diagnostic {
            message,
            span: None,
            hint,
        }],
    };
    let file = std::fs::File::open(path).map_err(|e| {
        fail(
            format!("cannot read runbook: {e}"),
            Some("pass the path of a runbook TOML file, e.g. `runbooks/demo.toml`".into()),
        )
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_RUNBOOK_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read runbook: {e}"), None))?;
    if bytes.len() > MAX_RUNBOOK_BYTES {
        return Err(fail(too_large(), Some(too_large_hint())));
    }
    let source = String::from_utf8(bytes).map_err(|e| {
        fail(
            format!(
                "runbook is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
            Some("save the file as UTF-8".into()),
        )
    })?;
    load_str(path, source)
}

fn too_large() -> String {
    format!(
        "runbook is too large (the limit is {} MiB)",
        MAX_RUNBOOK_BYTES / (1024 * 1024)
    )
}

fn too_large_hint() -> String {
    "a runbook declares systems and steps; check that this is the right file".into()
}

/// Validate `source` (read from `path`, which is used in messages) into a [`Runbook`].
pub fn load_str(path: &Path, source: String) -> Result<Runbook, RunbookError> {
    match validate(&source) {
        Ok(file) => {
            let sha256 = crate::journal::sha256_hex(source.as_bytes());
            Ok(Runbook {
                file,
                path: path.to_path_buf(),
                source,
                sha256,
            })
        }
        Err((mut diagnostics, secrets)) => {
            diagnostics.sort_by_key(|d| d.span.as_ref().map_or((0, 0), |s| (s.start, s.end)));
            Err(RunbookError {
                path: path.display().to_string(),
                source: mask(source, &secrets),
                diagnostics,
            })
        }
    }
}

/// The runbook, or every diagnostic and the spans of inline secrets to mask when showing them.
type Validated = Result<RunbookFile, (Vec<Diagnostic>, Vec<Range<usize>>)>;

fn validate(source: &str) -> Validated {
    if source.len() > MAX_RUNBOOK_BYTES {
        return Err((
            vec![Diagnostic::new(too_large(), None).hint(too_large_hint())],
            Vec::new(),
        ));
    }
    if let Some(at) = too_deep(source) {
        return Err((
            vec![
                Diagnostic::at(
                    format!("arrays or tables nested more than {MAX_NESTING} deep"),
                    at..at + 1,
                )
                .hint("a runbook never needs deep nesting; check that this is the right file"),
            ],
            Vec::new(),
        ));
    }
    let doc = DeTable::parse(source).map_err(|e| {
        let d = Diagnostic {
            message: format!("invalid TOML: {}", e.message().trim_end()),
            span: e.span(),
            hint: Some("fix the TOML syntax (https://toml.io)".into()),
        };
        (vec![d], Vec::new())
    })?;
    let mut check = Check::new(source);
    check.document(doc.get_ref());
    if !check.diags.is_empty() {
        return Err((check.diags, check.secrets));
    }
    // The tree check covers everything the model accepts; this is a safety net.
    let file = toml::from_str::<RunbookFile>(source).map_err(|e| {
        let d = Diagnostic {
            message: e.message().trim_end().to_string(),
            span: e.span(),
            hint: None,
        };
        (vec![d], Vec::new())
    })?;
    // Values only the provider can judge (a flavor, a transport rule): build each system the way
    // `plan` does, with no secret and no I/O, and point at the system if it refuses.
    let mut diags = Vec::new();
    for (name, def) in &file.systems {
        let Some(kind) = crate::providers::find_kind(&def.kind) else {
            continue;
        };
        let cfg = crate::plan::system_config(name, def, Path::new("."));
        if let Err(e) = (kind.connect)(&cfg) {
            let msg = format!("{e:#}");
            let prefix = format!("system `{name}`: ");
            let msg = format!("{prefix}{}", msg.strip_prefix(&prefix).unwrap_or(&msg));
            diags.push(
                Diagnostic::new(msg, system_span(doc.get_ref(), name)).hint(format!(
                    "see the `{}` kind in runbooks/README.md",
                    kind.name
                )),
            );
        }
    }
    // HR intake tables: each names a known source and reads as its config (secrets by
    // reference only: an inline string is not a reference and is refused here).
    let intake_span = doc
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref() == "intake")
        .map(|(k, _)| k.span());
    for name in file.intake.keys() {
        let e = match <crate::intake::Source as clap::ValueEnum>::from_str(name, false) {
            Ok(source) => crate::intake::SourceConfig::from_runbook(&file.intake, source)
                .err()
                .map(|e| e.to_string()),
            Err(_) => Some(format!(
                "[intake.{name}]: unknown HR system (bamboohr, hibob, personio, rippling, workday)"
            )),
        };
        if let Some(msg) = e {
            diags.push(
                Diagnostic::new(msg, intake_span.clone())
                    .hint("see HRIS intake in runbooks/README.md"),
            );
        }
    }
    // The same for the service desk: its client is built with no secret and no I/O.
    if let Some(def) = &file.ticketing
        && let Some(kind) = crate::ticketing::find_kind(&def.kind)
        && let Err(e) = (kind.connect)(&crate::ticketing::config(def))
    {
        let msg = format!("{e:#}");
        let prefix = format!("system `{}`: ", crate::ticketing::SYSTEM_NAME);
        diags.push(
            Diagnostic::new(
                format!("[ticketing]: {}", msg.strip_prefix(&prefix).unwrap_or(&msg)),
                ticketing::ticketing_span(doc.get_ref()),
            )
            .hint(format!(
                "see the `{}` kind under Ticketing in runbooks/README.md",
                kind.name
            )),
        );
    }
    // Actions the configured system cannot do (an LDAP flavor's), at the step's `action`.
    for (i, step) in file.steps.iter().enumerate() {
        let (Some(system), Some(action)) = (&step.system, &step.action) else {
            continue;
        };
        let Some(def) = file.systems.get(system) else {
            continue;
        };
        let Some(check_action) =
            crate::providers::find_kind(&def.kind).and_then(|k| k.check_action)
        else {
            continue;
        };
        let cfg = crate::plan::system_config(system, def, Path::new("."));
        if let Err(e) = check_action(&cfg, action) {
            diags.push(
                Diagnostic::new(
                    format!("step `{}`: {e}", step.id),
                    step_action_span(doc.get_ref(), i),
                )
                .hint(format!(
                    "use one of the actions named, or a system of another flavor (see the `{}` \
                     kind in runbooks/README.md)",
                    def.kind
                )),
            );
        }
    }
    if diags.is_empty() {
        Ok(file)
    } else {
        Err((diags, Vec::new()))
    }
}

/// The span of the `action` value of the `index`th `[[step]]`.
fn step_action_span(doc: &DeTable<'_>, index: usize) -> Option<Range<usize>> {
    let (_, steps) = doc.iter().find(|(k, _)| k.get_ref().as_ref() == "step")?;
    let DeValue::Array(steps) = steps.get_ref() else {
        return None;
    };
    let DeValue::Table(step) = steps.get(index)?.get_ref() else {
        return None;
    };
    step.iter()
        .find(|(k, _)| k.get_ref().as_ref() == "action")
        .map(|(_, v)| v.span())
}

/// The span of `[systems.NAME]`'s key, for diagnostics about the whole system.
fn system_span(doc: &DeTable<'_>, name: &str) -> Option<Range<usize>> {
    let (_, systems) = doc
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == "systems")?;
    let DeValue::Table(systems) = systems.get_ref() else {
        return None;
    };
    systems
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == name)
        .map(|(k, _)| k.span())
}

/// Replace each inline secret value (a span of one scalar: a string with its quotes, a number,
/// a boolean) with `*`, byte for byte, keeping only quotes and line breaks, so that spans and
/// line numbers stay valid and the secret is never shown in a snippet.
fn mask(source: String, secrets: &[Range<usize>]) -> String {
    if secrets.is_empty() {
        return source;
    }
    let mut bytes = source.into_bytes();
    for span in secrets {
        let end = span.end.min(bytes.len());
        let start = span.start.min(end);
        for b in &mut bytes[start..end] {
            if !matches!(*b, b'"' | b'\'' | b'\n' | b'\r') {
                *b = b'*';
            }
        }
    }
    // Multi-byte characters became several `*`, so the text is still UTF-8.
    String::from_utf8(bytes).unwrap_or_default()
}

/// The offset of the first `[` or `{` nested deeper than [`MAX_NESTING`], skipping strings and
/// comments. A cheap guard so that hostile input cannot exhaust the stack.
fn too_deep(source: &str) -> Option<usize> {
    let b = source.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                let triple = b[i..].starts_with(&[q, q, q]);
                i += if triple { 3 } else { 1 };
                while i < b.len() {
                    if q == b'"' && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if !triple && b[i] == b'\n' {
                        break;
                    }
                    if b[i] == q && (!triple || b[i..].starts_with(&[q, q, q])) {
                        i += if triple { 2 } else { 0 };
                        break;
                    }
                    i += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

type Val<'i> = Spanned<DeValue<'i>>;

const TOP_KEYS: &[&str] = &[
    "runbook",
    "inputs",
    "systems",
    "step",
    "ticketing",
    "assets",
    "notify",
    "intake",
    "approvals",
    "state",
];
const META_KEYS: &[&str] = &["name", "description", "legal_hold"];
const INPUT_KEYS: &[&str] = &["prompt", "required", "default"];
pub(super) const SYSTEM_KEYS: &[&str] = &[
    "kind",
    "base_url",
    "token",
    "max_concurrency",
    "rate_limit",
    "user",
    "timeout_secs",
    "step_timeout_secs",
];
const STEP_KEYS: &[&str] = &[
    "id",
    "lane",
    "system",
    "action",
    "params",
    "manual",
    "fields",
    "when",
    "phase",
    "after",
    "owner",
    "deadline",
    "escalate_after",
    "escalate_to",
    "alerts_user",
    "description",
];
const LANES: &[&str] = &[
    "it",
    "saas",
    "facilities",
    "finance",
    "manager",
    "security",
    "custom",
];
const PHASES: &[&str] = &["cut", "recover", "handoff", "close"];
pub(super) const DEPARTURE_TYPES: &[&str] = &["voluntary", "involuntary"];

/// What [`is_ident`] accepts (step ids, system and input names), as a JSON Schema pattern.
pub(super) const IDENT_PATTERN: &str = "^[A-Za-z0-9_-]+$";
/// What [`valid_deadline`] accepts, as a JSON Schema pattern.
pub(super) const DEADLINE_PATTERN: &str = "^effective(\\+[0-9]{1,6}[mhdw])?$";
/// Text that is not only white space (a runbook name, a secret's variable or file).
pub(super) const NOT_BLANK_PATTERN: &str = "\\S";

/// The validator: walks the tree, collecting diagnostics.
struct Check<'s> {
    source: &'s str,
    diags: Vec<Diagnostic>,
    /// Template variables a string may use.
    vars: Vec<String>,
    /// Declared inputs.
    inputs: BTreeSet<String>,
    /// Declared systems and their kind (None when the kind is unknown or missing).
    systems: BTreeMap<String, Option<&'static KindSpec>>,
    /// Inline secrets found, masked in the source diagnostics are rendered against.
    secrets: Vec<Range<usize>>,
}

impl<'s> Check<'s> {
    fn new(source: &'s str) -> Check<'s> {
        Check {
            source,
            diags: Vec::new(),
            vars: BUILTIN_VARS.iter().map(|v| v.to_string()).collect(),
            inputs: BTreeSet::new(),
            systems: BTreeMap::new(),
            secrets: Vec::new(),
        }
    }

    pub(super) fn push(
        &mut self,
        message: impl Into<String>,
        span: Range<usize>,
        hint: impl Into<String>,
    ) {
        self.diags.push(Diagnostic::at(message, span).hint(hint));
    }

    pub(super) fn line_of(&self, at: usize) -> usize {
        super::diag::line_column(self.source, at).0
    }

    /// The first line of a span (a table's span covers all of its body).
    pub(super) fn head(&self, span: Range<usize>) -> Range<usize> {
        let start = span.start.min(self.source.len());
        let end = self.source[start..]
            .find('\n')
            .map_or(span.end, |n| (start + n).min(span.end));
        start..end.max(start)
    }

    pub(super) fn unknown_key(
        &mut self,
        key: &str,
        span: Range<usize>,
        place: &str,
        allowed: &[&str],
    ) {
        let mut hint = String::new();
        if let Some(best) = closest(key, allowed.iter().copied()) {
            hint = format!("did you mean `{best}`? ");
        }
        if allowed.is_empty() {
            hint.push_str("this table takes no keys here; remove it");
        } else {
            hint.push_str(&format!("allowed keys: {}", allowed.join(", ")));
        }
        self.push(format!("unknown key `{key}` in {place}"), span, hint);
    }

    pub(super) fn wrong_type(&mut self, key: &str, v: &Val<'_>, want: &str, example: &str) {
        self.push(
            format!("`{key}` must be {want}, found {}", v.get_ref().type_str()),
            v.span(),
            format!("write it as `{key} = {example}`"),
        );
    }

    pub(super) fn string<'v>(
        &mut self,
        key: &str,
        v: &'v Val<'_>,
        example: &str,
    ) -> Option<&'v str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.wrong_type(key, v, "a string", example);
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, key: &str, v: &Val<'_>) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(key, v, "true or false", "true");
                None
            }
        }
    }

    pub(super) fn integer(&mut self, key: &str, v: &Val<'_>, example: &str) -> Option<i64> {
        match v.get_ref() {
            DeValue::Integer(i) => {
                let digits = i.as_str().replace('_', "");
                let n = i64::from_str_radix(&digits, i.radix()).ok();
                if n.is_none() {
                    self.push(
                        format!("`{key}` is out of range"),
                        v.span(),
                        format!("write it as `{key} = {example}`"),
                    );
                }
                n
            }
            _ => {
                self.wrong_type(key, v, "an integer", example);
                None
            }
        }
    }

    pub(super) fn string_list<'v>(
        &mut self,
        key: &str,
        v: &'v Val<'_>,
        example: &str,
    ) -> Option<Vec<(&'v str, Range<usize>)>> {
        let bad = |c: &mut Self| {
            c.wrong_type(key, v, "a list of strings", example);
            None
        };
        let DeValue::Array(items) = v.get_ref() else {
            return bad(self);
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push((s.as_ref(), item.span())),
                _ => return bad(self),
            }
        }
        Some(out)
    }

    pub(super) fn table<'v, 'i>(
        &mut self,
        key: &str,
        v: &'v Val<'i>,
        example: &str,
    ) -> Option<&'v DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(key, v, "a table", example);
                None
            }
        }
    }

    pub(super) fn one_of(&mut self, key: &str, v: &Val<'_>, allowed: &[&str]) {
        let Some(s) = self.string(key, v, &format!("\"{}\"", allowed[0])) else {
            return;
        };
        if !allowed.contains(&s) {
            let mut hint = format!("use one of: {}", allowed.join(", "));
            if let Some(best) = closest(s, allowed.iter().copied()) {
                hint = format!("did you mean `{best}`? {hint}");
            }
            self.push(format!("`{s}` is not a valid `{key}`"), v.span(), hint);
        }
    }

    /// Check the template variables of a string value at `span`.
    pub(super) fn template(&mut self, text: &str, span: Range<usize>, what: &str) {
        let vars = match template::variables(text) {
            Ok(vars) => vars,
            Err(e) => {
                let at = self.inner_span(text, &span, e.range());
                let (message, hint) = match e {
                    TemplateError::Unclosed { .. } => (
                        format!("unclosed `{{{{` in {what}"),
                        "close it with `}}`, e.g. `{{ user.email }}`".to_string(),
                    ),
                    TemplateError::BadName { text, .. } => (
                        format!("`{{{{ {text} }}}}` in {what} is not a template variable"),
                        format!("use one of: {}", self.vars.join(", ")),
                    ),
                    TemplateError::Unknown { name, .. } => (
                        format!("unknown template variable `{name}` in {what}"),
                        String::new(),
                    ),
                    TemplateError::BadFilter { text, .. } => (
                        format!("`{text}` in {what} is not a template filter"),
                        "the one filter is `date`: `{{ departure.effective_at | date }}`, or with a strftime format, `| date: \"%d %B %Y\"`".to_string(),
                    ),
                    TemplateError::NotADate { name, .. } => (
                        format!("`{name}` in {what} is not a date"),
                        String::new(),
                    ),
                };
                self.push(message, at, hint);
                return;
            }
        };
        for (name, range) in vars {
            if self.vars.contains(&name) {
                continue;
            }
            let at = self.inner_span(text, &span, range);
            let mut hint = format!("valid variables: {}", self.vars.join(", "));
            if let Some(input) = name.strip_prefix("user.") {
                hint.push_str(&format!(
                    "; or declare the input under [inputs]: `{input} = {{ prompt = \"…\" }}`"
                ));
            }
            if let Some(best) = closest(&name, self.vars.iter().map(String::as_str)) {
                hint = format!("did you mean `{best}`? {hint}");
            }
            self.push(
                format!("unknown template variable `{name}` in {what}"),
                at,
                hint,
            );
        }
    }

    /// The span of `range` (inside the decoded string `text`) in the source, when the string is
    /// written without escapes; else the whole value's span.
    pub(super) fn inner_span(
        &self,
        text: &str,
        value: &Range<usize>,
        range: Range<usize>,
    ) -> Range<usize> {
        let raw = self.source.get(value.clone()).unwrap_or("");
        let quote = if raw.starts_with("\"\"\"") || raw.starts_with("'''") {
            3
        } else {
            1
        };
        if raw.len() >= 2 * quote && raw.get(quote..raw.len() - quote) == Some(text) {
            value.start + quote + range.start..value.start + quote + range.end
        } else {
            value.clone()
        }
    }

    fn document(&mut self, doc: &DeTable<'_>) {
        let get = |name: &str| doc.iter().find(|(k, _)| k.get_ref() == name);
        for (k, _) in doc.iter() {
            if !TOP_KEYS.contains(&k.get_ref().as_ref()) {
                self.unknown_key(k.get_ref(), k.span(), "the runbook", TOP_KEYS);
            }
        }
        // Inputs first: they define template variables the rest may use.
        if let Some((_, v)) = get("inputs") {
            self.inputs_table(v);
        }
        match get("runbook") {
            Some((k, v)) => self.meta(k.span(), v),
            None => self.push(
                "missing [runbook] table",
                0..0,
                "start the file with `[runbook]` and `name = \"Acme standard leaver\"`",
            ),
        }
        if let Some((_, v)) = get("systems") {
            self.systems_table(v);
        }
        if let Some((k, v)) = get("ticketing") {
            self.ticketing_table(k.span(), v);
        }
        if let Some((_, v)) = get("notify") {
            self.notify_table(v);
        }
        match get("step") {
            Some((_, v)) => self.steps(v),
            None => {
                let at = get("runbook").map_or(0..0, |(k, _)| k.span());
                self.no_steps(at);
            }
        }
        if let Some((k, v)) = get("assets") {
            self.assets_table(k.span(), v, &assets::step_ids(doc));
        }
        if let Some((k, v)) = get("approvals") {
            self.approvals_table(k.span(), v, &assets::step_ids(doc));
        }
        if let Some((k, v)) = get("state") {
            self.state_table(k.span(), v);
        }
    }

    /// A runbook with nothing to do would start departures that do nothing and call it done.
    fn no_steps(&mut self, at: Range<usize>) {
        self.push(
            "the runbook has no steps",
            at,
            "add at least one `[[step]]`: automated (`id`, `lane`, `system`, `action`) or manual (`id`, `lane`, `manual`); runbooks/demo.toml shows both",
        );
    }

    fn meta(&mut self, key_span: Range<usize>, v: &Val<'_>) {
        let Some(t) = self.table("runbook", v, "{ name = \"…\" }") else {
            return;
        };
        let mut has_name = false;
        for (k, v) in t.iter() {
            match k.get_ref().as_ref() {
                "name" => {
                    has_name = true;
                    if let Some(name) = self.string("name", v, "\"Acme standard leaver\"")
                        && name.trim().is_empty()
                    {
                        self.push(
                            "the runbook `name` is empty",
                            v.span(),
                            "give the runbook a name; it is recorded in the evidence",
                        );
                    }
                }
                "description" => {
                    self.string("description", v, "\"…\"");
                }
                "legal_hold" => {
                    self.boolean("legal_hold", v);
                }
                other => self.unknown_key(other, k.span(), "[runbook]", META_KEYS),
            }
        }
        if !has_name {
            self.push(
                "missing `name` in [runbook]",
                key_span,
                "add `name = \"Acme standard leaver\"` under [runbook]",
            );
        }
    }

    fn inputs_table(&mut self, v: &Val<'_>) {
        let Some(t) = self.table("inputs", v, "{ manager = { prompt = \"…\" } }") else {
            return;
        };
        for (k, v) in t.iter() {
            let name: &str = k.get_ref();
            if !is_ident(name) {
                self.push(
                    format!("input name `{name}` is not valid"),
                    k.span(),
                    "use letters, digits, `_` and `-`, e.g. `asset_tag`",
                );
                continue;
            }
            if name == "id" || name == "email" {
                self.push(
                    format!("input `{name}` clashes with the built-in `user.{name}`"),
                    k.span(),
                    "choose another name; `user.id` and `user.email` are always set",
                );
                continue;
            }
            self.inputs.insert(name.to_string());
            self.vars.push(format!("user.{name}"));
            let Some(def) = self.table(name, v, "{ prompt = \"…\" }") else {
                continue;
            };
            for (k, v) in def.iter() {
                match k.get_ref().as_ref() {
                    "prompt" | "default" => {
                        self.string(k.get_ref(), v, "\"…\"");
                    }
                    "required" => {
                        self.boolean("required", v);
                    }
                    other => {
                        self.unknown_key(other, k.span(), &format!("[inputs.{name}]"), INPUT_KEYS)
                    }
                }
            }
        }
    }
}

pub(super) fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `effective` or `effective+<N><m|h|d|w>`.
pub(super) fn valid_deadline(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("effective") else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(offset) = rest.strip_prefix('+') else {
        return false;
    };
    let Some(digits) = offset.strip_suffix(['m', 'h', 'd', 'w']) else {
        return false;
    };
    !digits.is_empty() && digits.len() <= 6 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The candidate closest to `word` when it is an obvious typo, or else the candidate `word` is
/// a truncation of (`deactivate` for `deactivate_user`).
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    if word.len() > 64 {
        return None;
    }
    let candidates: Vec<&str> = candidates.collect();
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
        .or_else(|| {
            let mut longer = candidates
                .iter()
                .filter(|c| word.len() >= 4 && c.starts_with(word));
            match (longer.next(), longer.next()) {
                (Some(c), None) => Some(*c),
                _ => None,
            }
        })
}

/// Edit distance counting a swap of two neighbouring characters as one edit (`onwer`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) const HEAD: &str = "[runbook]\nname = \"t\"\n\n[inputs]\nmanager = { required = true }\n\n[systems.idp]\nkind = \"sandbox\"\n";
    // HEAD is 8 lines; the first line after it is line 9.

    pub(super) fn load(src: &str) -> Result<Runbook, RunbookError> {
        load_str(Path::new("t.toml"), src.to_string())
    }

    pub(super) fn errors(src: &str) -> RunbookError {
        match load(src) {
            Ok(_) => panic!("expected errors for:\n{src}"),
            Err(e) => e,
        }
    }

    /// The one diagnostic whose message contains `needle`: its message, line, column and hint.
    pub(super) fn find(src: &str, needle: &str) -> (String, usize, usize, String) {
        let err = errors(src);
        let matching: Vec<&Diagnostic> = err
            .diagnostics
            .iter()
            .filter(|d| d.message.contains(needle))
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "want one `{needle}` in {:#?}",
            err.diagnostics
        );
        let d = matching[0];
        let (line, col) = d.line_column(src).expect("a span");
        let hint = d.hint.clone().expect("a hint");
        assert!(!hint.is_empty());
        (d.message.clone(), line, col, hint)
    }

    #[test]
    fn valid_runbook_loads_with_sha256() {
        let src = format!(
            "{HEAD}\n[[step]]\nid = \"a\"\nlane = \"it\"\nsystem = \"idp\"\naction = \"suspend_user\"\n\n[[step]]\nid = \"b\"\nlane = \"manager\"\nmanual = \"{{{{ user.manager }}}}: take over\"\nafter = [\"a\"]\n"
        );
        let rb = load(&src).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rb.file.runbook.name, "t");
        assert_eq!(rb.file.steps.len(), 2);
        assert_eq!(rb.step_counts(), (1, 1));
        assert_eq!(rb.sha256, crate::journal::sha256_hex(src.as_bytes()));
        assert_eq!(rb.sha256.len(), 64);
    }

    #[test]
    fn toml_syntax_error() {
        let src = "[runbook]\nname = \"t\n";
        let err = errors(src);
        assert_eq!(err.diagnostics.len(), 1);
        let d = &err.diagnostics[0];
        assert!(d.message.starts_with("invalid TOML"), "{}", d.message);
        assert_eq!(d.line_column(src), Some((2, 10)));
        assert!(d.hint.is_some());
    }

    #[test]
    fn unknown_key_in_meta_suggests_closest() {
        let src = "[runbook]\nname = \"t\"\nlegal_hodl = true\n";
        let (msg, line, col, hint) = find(src, "unknown key");
        assert_eq!(msg, "unknown key `legal_hodl` in [runbook]");
        assert_eq!((line, col), (3, 1));
        assert!(hint.contains("did you mean `legal_hold`?"), "{hint}");
        assert!(hint.contains("name, description, legal_hold"), "{hint}");
    }

    #[test]
    fn unresolvable_template_variable_points_inside_the_string() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"Collect {{{{ user.asset_tag }}}} now\"\n"
        );
        let (msg, line, col, hint) = find(&src, "template");
        assert_eq!(
            msg,
            "unknown template variable `user.asset_tag` in the `manual` text of step `a`"
        );
        assert_eq!((line, col), (12, 22));
        assert!(hint.contains("user.manager"), "{hint}");
        assert!(hint.contains("[inputs]"), "{hint}");
    }

    #[test]
    fn missing_runbook_table_or_name() {
        let src = "[systems.idp]\nkind = \"sandbox\"\n";
        let (msg, line, col, _) = find(src, "missing [runbook]");
        assert_eq!(msg, "missing [runbook] table");
        assert_eq!((line, col), (1, 1));
        let src = "[runbook]\ndescription = \"x\"\n";
        let (msg, line, col, hint) = find(src, "name");
        assert_eq!(msg, "missing `name` in [runbook]");
        assert_eq!((line, col), (1, 2));
        assert!(hint.contains("name = "));
    }

    #[test]
    fn a_runbook_with_no_steps_is_an_error() {
        // No `[[step]]` at all: pointed at the `[runbook]` table.
        let src = "# leaver\n[runbook]\nname = \"t\"\n[systems.idp]\nkind = \"sandbox\"\n";
        let err = errors(src);
        assert_eq!(err.diagnostics.len(), 1, "{:#?}", err.diagnostics);
        let (msg, line, col, hint) = find(src, "no steps");
        assert_eq!(msg, "the runbook has no steps");
        assert_eq!((line, col), (2, 2));
        assert!(
            hint.contains("[[step]]") && hint.contains("manual"),
            "{hint}"
        );
        let rendered = err.render(false);
        assert!(rendered.contains("t.toml:2:2"), "{rendered}");
        // Nor a `[runbook]` table: pointed at the start of the file.
        let (_, line, col, _) = find("[systems.idp]\nkind = \"sandbox\"\n", "no steps");
        assert_eq!((line, col), (1, 1));
        // An empty list of steps is no better.
        let src = "step = []\n\n[runbook]\nname = \"t\"\n";
        let err = errors(src);
        assert_eq!(err.diagnostics.len(), 1, "{:#?}", err.diagnostics);
        let (msg, line, col, _) = find(src, "no steps");
        assert_eq!(msg, "the runbook has no steps");
        assert_eq!((line, col), (1, 8));
    }

    #[test]
    fn every_problem_is_reported() {
        let src = format!(
            "{HEAD}latency = 1\n\n[[step]]\nid = \"a\"\nlane = \"it\"\nsystem = \"nope\"\naction = \"x\"\n\n[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"{{{{ user.x }}}}\"\ndeadline = \"soon\"\n"
        );
        let err = errors(&src);
        let messages: Vec<&str> = err.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages.len(), 5, "{messages:#?}");
        // Sorted by position in the file.
        let lines: Vec<usize> = err
            .diagnostics
            .iter()
            .map(|d| d.line_column(&src).unwrap().0)
            .collect();
        let mut sorted = lines.clone();
        sorted.sort();
        assert_eq!(lines, sorted);
    }

    #[test]
    fn hostile_input_gives_an_error_not_a_panic() {
        let deep = format!("{HEAD}x = {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
        let err = errors(&deep);
        assert!(err.diagnostics[0].message.contains("nested"), "{err}");
        let deep_tables = format!("a = {}1{}\n", "{ b = ".repeat(10_000), " }".repeat(10_000));
        assert!(load(&deep_tables).is_err());
        let huge = format!("{HEAD}# {}\n", "x".repeat(5 * 1024 * 1024));
        let err = errors(&huge);
        assert!(err.diagnostics[0].message.contains("too large"), "{err}");
        // Deep nesting inside strings and comments is not nesting.
        let quoted = format!(
            "[runbook]\nname = \"{}\"\ndescription = '''{}'''\n# {}\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100)
        );
        assert!(load(&quoted).is_ok());
        for junk in [
            "\u{0}",
            "[[[",
            "a = \"\\",
            "= =",
            "[runbook]\nname = 1\n[[step]]\n",
            "step = 3\n[runbook]\nname=\"x\"",
        ] {
            let _ = load(junk);
        }
    }

    #[test]
    fn load_file_caps_size_and_reads() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; MAX_RUNBOOK_BYTES + 10]).unwrap();
        let err = load_file(&big).unwrap_err();
        assert!(err.diagnostics[0].message.contains("too large"));
        let missing = load_file(&dir.path().join("nope.toml")).unwrap_err();
        assert!(
            missing.diagnostics[0]
                .message
                .starts_with("cannot read runbook")
        );
        let ok = dir.path().join("ok.toml");
        std::fs::write(
            &ok,
            "[runbook]\nname = \"x\"\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n",
        )
        .unwrap();
        assert_eq!(load_file(&ok).unwrap().path, ok);
    }

    #[test]
    fn closest_suggests_only_obvious_typos() {
        assert_eq!(closest("onwer", STEP_KEYS.iter().copied()), Some("owner"));
        assert_eq!(
            closest("deactivate", ["deactivate_user", "delete_user"].into_iter()),
            Some("deactivate_user")
        );
        assert_eq!(closest("zzzzzz", STEP_KEYS.iter().copied()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ipd", "idp"), 1);
    }

    /// The key lists the validator allows are exactly the model's fields (from the schema).
    #[test]
    fn key_lists_match_the_model() {
        let schema: serde_json::Value =
            serde_json::from_str(&crate::runbook::schema::schema_json()).unwrap();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            let mut k: Vec<String> = v["properties"]
                .as_object()
                .unwrap()
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
        let defs = &schema["$defs"];
        assert_eq!(keys(&schema), sorted(TOP_KEYS));
        assert_eq!(keys(&defs["RunbookMeta"]), sorted(META_KEYS));
        assert_eq!(keys(&defs["InputDef"]), sorted(INPUT_KEYS));
        // `allow_plain` is a kind setting, shown in the schema for the kinds that have it.
        let mut system = keys(&defs["SystemDef"]);
        system.retain(|k| k != "allow_plain");
        assert_eq!(system, sorted(SYSTEM_KEYS));
        assert_eq!(keys(&defs["StepDef"]), sorted(STEP_KEYS));
    }
}
