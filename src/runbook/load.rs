//! Reading a runbook with spans and validating it.
//!
//! Validation walks the parsed TOML tree (which keeps the span of every key and value) rather
//! than the deserialized model, so that every problem — in any table, including the
//! kind-specific settings serde flattens away — is reported at once, at the exact key or value.
//! Only a runbook with no diagnostics is deserialized into [`RunbookFile`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::template::{self, BUILTIN_VARS, TemplateError};
use super::{Diagnostic, RunbookError, RunbookFile};
use crate::providers::{self, KindSpec, SettingSpec, SettingType};

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
    if diags.is_empty() {
        Ok(file)
    } else {
        Err((diags, Vec::new()))
    }
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

const TOP_KEYS: &[&str] = &["runbook", "inputs", "systems", "step"];
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

/// An `after` reference, checked once every step id is known.
struct AfterRef {
    from: usize,
    to: String,
    span: Range<usize>,
}

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

    fn push(&mut self, message: impl Into<String>, span: Range<usize>, hint: impl Into<String>) {
        self.diags.push(Diagnostic::at(message, span).hint(hint));
    }

    fn line_of(&self, at: usize) -> usize {
        super::diag::line_column(self.source, at).0
    }

    /// The first line of a span (a table's span covers all of its body).
    fn head(&self, span: Range<usize>) -> Range<usize> {
        let start = span.start.min(self.source.len());
        let end = self.source[start..]
            .find('\n')
            .map_or(span.end, |n| (start + n).min(span.end));
        start..end.max(start)
    }

    fn unknown_key(&mut self, key: &str, span: Range<usize>, place: &str, allowed: &[&str]) {
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

    fn wrong_type(&mut self, key: &str, v: &Val<'_>, want: &str, example: &str) {
        self.push(
            format!("`{key}` must be {want}, found {}", v.get_ref().type_str()),
            v.span(),
            format!("write it as `{key} = {example}`"),
        );
    }

    fn string<'v>(&mut self, key: &str, v: &'v Val<'_>, example: &str) -> Option<&'v str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.wrong_type(key, v, "a string", example);
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, v: &Val<'_>) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(key, v, "true or false", "true");
                None
            }
        }
    }

    fn integer(&mut self, key: &str, v: &Val<'_>, example: &str) -> Option<i64> {
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

    fn string_list<'v>(
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

    fn table<'v, 'i>(
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

    fn one_of(&mut self, key: &str, v: &Val<'_>, allowed: &[&str]) {
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
    fn template(&mut self, text: &str, span: Range<usize>, what: &str) {
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
    fn inner_span(&self, text: &str, value: &Range<usize>, range: Range<usize>) -> Range<usize> {
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
        match get("step") {
            Some((_, v)) => self.steps(v),
            None => {
                let at = get("runbook").map_or(0..0, |(k, _)| k.span());
                self.no_steps(at);
            }
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

    fn systems_table(&mut self, v: &Val<'_>) {
        let Some(t) = self.table("systems", v, "{ idp = { kind = \"sandbox\" } }") else {
            return;
        };
        for (k, v) in t.iter() {
            self.system(k.get_ref(), k.span(), v);
        }
    }

    fn system(&mut self, name: &str, name_span: Range<usize>, v: &Val<'_>) {
        if !is_ident(name) {
            self.push(
                format!("system name `{name}` is not valid"),
                name_span.clone(),
                "use letters, digits, `_` and `-`, e.g. `okta`",
            );
        }
        let place = format!("[systems.{name}]");
        let Some(t) = self.table(name, v, "{ kind = \"sandbox\" }") else {
            self.systems.insert(name.to_string(), None);
            return;
        };
        let field = |key: &str| t.iter().find(|(k, _)| k.get_ref() == key);
        let kind_names: Vec<&str> = providers::KINDS.iter().map(|k| k.name).collect();
        let kind = match field("kind") {
            None => {
                self.push(
                    format!("system `{name}` has no `kind`"),
                    name_span.clone(),
                    format!("add `kind = \"…\"`, one of: {}", kind_names.join(", ")),
                );
                None
            }
            Some((_, kv)) => match self.string("kind", kv, "\"sandbox\"") {
                None => None,
                Some(kind) => {
                    let found = providers::find_kind(kind);
                    if found.is_none() {
                        let mut hint = format!("known kinds: {}", kind_names.join(", "));
                        if let Some(best) = closest(kind, kind_names.iter().copied()) {
                            hint = format!("did you mean `{best}`? {hint}");
                        }
                        self.push(format!("unknown system kind `{kind}`"), kv.span(), hint);
                    }
                    found
                }
            },
        };
        self.systems.insert(name.to_string(), kind);

        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            match key {
                "kind" => {}
                "base_url" => {
                    if let Some(url) = self.string(key, v, "\"https://api.example.com\"") {
                        let schemes = kind.map_or(&["https", "http"][..], |k| k.url_schemes);
                        self.base_url(url, v.span(), schemes);
                    }
                }
                "token" => self.secret(name, key, v),
                "max_concurrency" => {
                    if let Some(n) = self.integer(key, v, "4")
                        && !(1..=64).contains(&n)
                    {
                        self.push(
                            format!("`max_concurrency` must be between 1 and 64, not {n}"),
                            v.span(),
                            "the default is 4; use 1 for APIs with strict rate limits",
                        );
                    }
                }
                "rate_limit" => {
                    if let Some(s) = self.string(key, v, "\"600/min\"")
                        && let Err(e) = crate::limits::RateLimit::parse(s)
                    {
                        self.push(
                            format!("`rate_limit`: {e}"),
                            v.span(),
                            "write COUNT/PERIOD with s, min or h, e.g. \"600/min\"",
                        );
                    }
                }
                "timeout_secs" => {
                    if let Some(n) = self.integer(key, v, "30")
                        && n < 1
                    {
                        self.push(
                            format!("`timeout_secs` must be at least 1, not {n}"),
                            v.span(),
                            "the default is 30 seconds",
                        );
                    }
                }
                "step_timeout_secs" => {
                    if let Some(n) = self.integer(key, v, "300")
                        && n < 1
                    {
                        self.push(
                            format!("`step_timeout_secs` must be at least 1, not {n}"),
                            v.span(),
                            "the default is 300 seconds, retries included",
                        );
                    }
                }
                "user" => {
                    if let Some(s) = self.string(key, v, "\"{{ user.email }}\"") {
                        self.template(s, v.span(), &format!("the `user` of system `{name}`"));
                    }
                }
                _ => match kind {
                    None => {}
                    Some(kind) => match kind.settings.iter().find(|s| s.name == key) {
                        Some(spec) => self.setting(spec, name, v, &place),
                        None => {
                            let allowed: Vec<&str> = SYSTEM_KEYS
                                .iter()
                                .copied()
                                .chain(kind.settings.iter().map(|s| s.name))
                                .collect();
                            self.unknown_key(
                                key,
                                k.span(),
                                &format!("{place} (kind `{}`)", kind.name),
                                &allowed,
                            );
                        }
                    },
                },
            }
        }

        let Some(kind) = kind else { return };
        if kind.needs_base_url && field("base_url").is_none() {
            self.push(
                format!("system `{name}` (kind `{}`) needs a `base_url`", kind.name),
                name_span.clone(),
                "add e.g. `base_url = \"https://app.example.com/scim/v2\"`",
            );
        }
        if kind.needs_token && field("token").is_none() {
            self.push(
                format!("system `{name}` (kind `{}`) needs a `token`", kind.name),
                name_span.clone(),
                format!("add `token = {{ env = \"{}\" }}`", env_name(name, "token")),
            );
        }
        for spec in kind.settings.iter().filter(|s| s.required) {
            if field(spec.name).is_none() {
                self.push(
                    format!(
                        "system `{name}` (kind `{}`) needs the setting `{}`",
                        kind.name, spec.name
                    ),
                    name_span.clone(),
                    format!("add `{}`: {}", spec.name, spec.summary),
                );
            }
        }
    }

    fn base_url(&mut self, url: &str, span: Range<usize>, schemes: &[&str]) {
        let example = format!("base_url = \"{}://host.example.com\"", schemes[0]);
        let wanted = schemes.join(" or ");
        match url::Url::parse(url) {
            Ok(u) if schemes.contains(&u.scheme()) && u.has_host() => {}
            Ok(u) => self.push(
                format!("`base_url` must be an {wanted} URL, not `{}:`", u.scheme()),
                span,
                format!("write it as `{example}`"),
            ),
            Err(e) => self.push(
                format!("`base_url` is not a URL: {e}"),
                span,
                format!("write it as `{example}`"),
            ),
        }
    }

    /// A secret must be a reference; the value of an inline secret is never echoed.
    fn secret(&mut self, system: &str, key: &str, v: &Val<'_>) {
        let example = format!("{key} = {{ env = \"{}\" }}", env_name(system, key));
        let hint = format!(
            "reference it instead: `{example}`, or `{{ file = \"/run/secrets/…\" }}`, or `{{ command = [\"pass\", \"show\", \"…\"] }}`"
        );
        let DeValue::Table(t) = v.get_ref() else {
            // Whatever its shape (a string, a list of strings, a number), it may be the secret.
            self.hide(v);
            let what = if v.get_ref().is_str() {
                "is written inline"
            } else {
                "is not a reference"
            };
            self.push(
                format!(
                    "secrets must not be written in the runbook: `{key}` of system `{system}` {what}"
                ),
                v.span(),
                hint,
            );
            return;
        };
        let entries: Vec<_> = t.iter().collect();
        let [(k, inner)] = entries.as_slice() else {
            // `{ env = "X", value = "…" }`: the extra value may be the secret itself.
            self.hide(v);
            self.push(
                format!(
                    "`{key}` of system `{system}` must have exactly one of `env`, `file` or `command`"
                ),
                v.span(),
                hint,
            );
            return;
        };
        let ok = match k.get_ref().as_ref() {
            "env" | "file" => inner
                .get_ref()
                .as_str()
                .is_some_and(|s| !s.trim().is_empty()),
            "command" => match inner.get_ref() {
                DeValue::Array(a) => !a.is_empty() && a.iter().all(|i| i.get_ref().is_str()),
                _ => false,
            },
            other => {
                // `{ envv = "…" }`: a misspelt reference may hold the secret itself.
                self.hide(v);
                self.unknown_key(
                    other,
                    k.span(),
                    &format!("the secret reference `{key}`"),
                    &["env", "file", "command"],
                );
                return;
            }
        };
        if !ok {
            self.hide(v);
            let want = if k.get_ref() == "command" {
                "a non-empty list of strings"
            } else {
                "a non-empty string"
            };
            self.push(
                format!(
                    "`{}` in the secret reference `{key}` must be {want}",
                    k.get_ref()
                ),
                inner.span(),
                hint,
            );
        }
    }

    /// Mask every scalar inside `v` (recursively through lists and tables) when diagnostics are
    /// shown: it was written where a secret belongs and is not a well-formed reference.
    fn hide(&mut self, v: &Val<'_>) {
        match v.get_ref() {
            DeValue::Array(items) => items.iter().for_each(|i| self.hide(i)),
            DeValue::Table(t) => t.iter().for_each(|(_, i)| self.hide(i)),
            _ => self.secrets.push(v.span()),
        }
    }

    /// A kind setting or action parameter, checked against its spec.
    fn setting(&mut self, spec: &SettingSpec, system: &str, v: &Val<'_>, place: &str) {
        let what = format!("`{}` in {place}", spec.name);
        match spec.ty {
            SettingType::String => {
                if let Some(s) = self.string(spec.name, v, "\"…\"") {
                    self.template(s, v.span(), &what);
                }
            }
            SettingType::Integer => {
                self.integer(spec.name, v, "1");
            }
            SettingType::Bool => {
                self.boolean(spec.name, v);
            }
            SettingType::StringList => {
                if let Some(items) = self.string_list(spec.name, v, "[\"…\"]") {
                    for (s, span) in items {
                        self.template(s, span, &what);
                    }
                }
            }
            SettingType::Secret => self.secret(system, spec.name, v),
        }
    }

    fn steps(&mut self, v: &Val<'_>) {
        let DeValue::Array(items) = v.get_ref() else {
            self.push(
                "`step` must be a list of tables",
                self.head(v.span()),
                "write each step as a `[[step]]` table",
            );
            return;
        };
        if items.is_empty() {
            self.no_steps(self.head(v.span()));
            return;
        }
        let mut ids: HashMap<String, Range<usize>> = HashMap::new();
        // Unique ids in order; `node_of[step index]` is the step's position there.
        let mut order: Vec<String> = Vec::new();
        let mut node_of: Vec<Option<usize>> = vec![None; items.len()];
        let mut afters: Vec<AfterRef> = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let DeValue::Table(t) = item.get_ref() else {
                self.push(
                    format!("step {} must be a table", index + 1),
                    item.span(),
                    "write each step as a `[[step]]` table",
                );
                continue;
            };
            let id = self.step(index, item.span(), t, &mut afters);
            if let Some((id, span)) = id {
                if let Some(first) = ids.get(&id) {
                    let line = self.line_of(first.start);
                    self.push(
                        format!("duplicate step id `{id}` (first defined on line {line})"),
                        span,
                        "step ids must be unique; rename one of them",
                    );
                } else {
                    ids.insert(id.clone(), span);
                    node_of[index] = Some(order.len());
                    order.push(id);
                }
            }
        }
        self.after_refs(&order, &node_of, &afters);
    }

    /// Check one step; returns its id and the id's span.
    fn step(
        &mut self,
        index: usize,
        span: Range<usize>,
        t: &DeTable<'_>,
        afters: &mut Vec<AfterRef>,
    ) -> Option<(String, Range<usize>)> {
        let field = |key: &str| t.iter().find(|(k, _)| k.get_ref() == key);
        let id = match field("id") {
            None => {
                self.push(
                    format!("step {} has no `id`", index + 1),
                    self.head(span.clone()),
                    "add `id = \"…\"`, unique within the runbook, e.g. `id = \"idp-suspend\"`",
                );
                None
            }
            Some((_, v)) => self
                .string("id", v, "\"idp-suspend\"")
                .map(|s| (s.to_string(), v.span())),
        };
        if let Some((id, span)) = &id
            && !is_ident(id)
        {
            self.push(
                format!("step id `{id}` is not valid"),
                span.clone(),
                "use letters, digits, `-` and `_`, e.g. `idp-suspend`",
            );
        }
        let name = id
            .as_ref()
            .map_or_else(|| format!("{}", index + 1), |(id, _)| id.clone());
        let place = format!("step `{name}`");
        if field("lane").is_none() {
            self.push(
                format!("step `{name}` has no `lane`"),
                id.as_ref()
                    .map_or_else(|| self.head(span.clone()), |(_, s)| s.clone()),
                format!("add `lane = \"…\"`, one of: {}", LANES.join(", ")),
            );
        }

        let mut system_kind: Option<&'static KindSpec> = None;
        let mut action: Option<&'static providers::ActionSpec> = None;
        if let Some((_, v)) = field("system")
            && let Some(system) = self.string("system", v, "\"idp\"")
        {
            match self.systems.get(system) {
                Some(kind) => system_kind = *kind,
                None => {
                    let declared: Vec<&str> = self.systems.keys().map(String::as_str).collect();
                    let mut hint = if declared.is_empty() {
                        format!("declare it: `[systems.{system}]` with a `kind`")
                    } else {
                        format!(
                            "declared systems: {}; or declare it under [systems.{system}]",
                            declared.join(", ")
                        )
                    };
                    if let Some(best) = closest(system, declared.iter().copied()) {
                        hint = format!("did you mean `{best}`? {hint}");
                    }
                    self.push(
                        format!("step `{name}` refers to system `{system}`, which is not declared"),
                        v.span(),
                        hint,
                    );
                }
            }
        }
        if let Some((_, v)) = field("action")
            && let Some(a) = self.string("action", v, "\"suspend_user\"")
            && let Some(kind) = system_kind
        {
            action = kind.action(a);
            if action.is_none() {
                let names: Vec<&str> = kind.actions.iter().map(|a| a.name).collect();
                let mut hint = format!("kind `{}` offers: {}", kind.name, names.join(", "));
                if let Some(best) = closest(a, names.iter().copied()) {
                    hint = format!("did you mean `{best}`? {hint}");
                }
                self.push(
                    format!("kind `{}` has no action `{a}`", kind.name),
                    v.span(),
                    hint,
                );
            }
        }

        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            match key {
                "id" | "system" | "action" => {}
                "lane" => self.one_of(key, v, LANES),
                "phase" => self.one_of(key, v, PHASES),
                "params" => {
                    if let Some(params) = self.table(key, v, "{ path = \"…\" }")
                        && let Some(action) = action
                    {
                        for (pk, pv) in params.iter() {
                            let pname: &str = pk.get_ref();
                            match action.params.iter().find(|p| p.name == pname) {
                                Some(spec) => self.setting(spec, "", pv, &place),
                                None => {
                                    let allowed: Vec<&str> =
                                        action.params.iter().map(|p| p.name).collect();
                                    self.unknown_key(
                                        pname,
                                        pk.span(),
                                        &format!("the params of action `{}`", action.name),
                                        &allowed,
                                    );
                                }
                            }
                        }
                    }
                }
                "manual" => {
                    if let Some(s) = self.string(key, v, "\"Collect the laptop\"") {
                        self.template(s, v.span(), &format!("the `manual` text of {place}"));
                    }
                }
                "fields" => {
                    self.string_list(key, v, "[\"tracking_number\"]");
                }
                "when" => self.when(v),
                "after" => {
                    if let Some(list) = self.string_list(key, v, "[\"other-step\"]") {
                        afters.extend(list.into_iter().map(|(to, span)| AfterRef {
                            from: index,
                            to: to.to_string(),
                            span,
                        }));
                    }
                }
                "owner" | "escalate_to" | "description" => {
                    // People read these: templates in them are rendered at plan time.
                    if let Some(s) = self.string(key, v, "\"…\"") {
                        self.template(s, v.span(), &format!("the `{key}` of {place}"));
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
                "alerts_user" => {
                    self.boolean(key, v);
                }
                other => self.unknown_key(other, k.span(), &place, STEP_KEYS),
            }
        }

        // Automated (system + action) or manual (manual text), never both.
        let system = field("system");
        let act = field("action");
        let manual = field("manual");
        match (system, act, manual) {
            (_, _, Some((mk, _))) if system.is_some() || act.is_some() => self.push(
                format!("step `{name}` is both manual and automated"),
                mk.span(),
                "a manual step has `manual` text and no `system` or `action`; split it into two steps",
            ),
            (None, None, None) => self.push(
                format!("step `{name}` has nothing to do"),
                id.as_ref().map_or_else(|| self.head(span.clone()), |(_, s)| s.clone()),
                "add `system` and `action` for an automated step, or `manual` text for a manual one",
            ),
            (Some((_, sv)), None, None) => {
                let offers = system_kind.map_or(String::new(), |k| {
                    let names: Vec<&str> = k.actions.iter().map(|a| a.name).collect();
                    format!("; kind `{}` offers: {}", k.name, names.join(", "))
                });
                self.push(
                    format!("step `{name}` has a `system` but no `action`"),
                    sv.span(),
                    format!("add `action = \"…\"`{offers}"),
                );
            }
            (None, Some((_, av)), None) => {
                let declared: Vec<&str> = self.systems.keys().map(String::as_str).collect();
                self.push(
                    format!("step `{name}` has an `action` but no `system`"),
                    av.span(),
                    format!("add `system = \"…\"`, one of: {}", declared.join(", ")),
                );
            }
            _ => {}
        }
        let automated = system.is_some() || act.is_some();
        if automated && let Some((fk, _)) = field("fields") {
            self.push(
                format!("`fields` on automated step `{name}`"),
                fk.span(),
                "`fields` lists what the confirmer of a manual step records; remove it here",
            );
        }
        if manual.is_some()
            && !automated
            && let Some((pk, _)) = field("params")
        {
            self.push(
                format!("`params` on manual step `{name}`"),
                pk.span(),
                "`params` belong to an automated step's action; remove it here",
            );
        }
        if let Some(action) = action {
            let given = field("params").and_then(|(_, v)| v.get_ref().as_table());
            for p in action.params.iter().filter(|p| p.required) {
                let present = given.is_some_and(|t| t.iter().any(|(k, _)| k.get_ref() == p.name));
                if !present {
                    let at = field("action").map_or(span.clone(), |(_, v)| v.span());
                    self.push(
                        format!("action `{}` needs the parameter `{}`", action.name, p.name),
                        at,
                        format!("add `params = {{ {} = \"…\" }}` ({})", p.name, p.summary),
                    );
                }
            }
        }
        id
    }

    fn when(&mut self, v: &Val<'_>) {
        let Some(t) = self.table("when", v, "{ type = \"involuntary\" }") else {
            return;
        };
        for (k, v) in t.iter() {
            let key: &str = k.get_ref();
            if key != "type" && !self.inputs.contains(key) {
                let mut allowed = vec!["type"];
                allowed.extend(self.inputs.iter().map(String::as_str));
                let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
                let refs: Vec<&str> = allowed.iter().map(String::as_str).collect();
                let mut hint = format!(
                    "conditions are on `type` or a declared input ({}); declare inputs under [inputs]",
                    refs.join(", ")
                );
                if let Some(best) = closest(key, refs.iter().copied()) {
                    hint = format!("did you mean `{best}`? {hint}");
                }
                self.push(
                    format!("unknown condition `{key}` in `when`"),
                    k.span(),
                    hint,
                );
                continue;
            }
            let values: Vec<(&str, Range<usize>)> = match v.get_ref() {
                DeValue::String(s) => vec![(s.as_ref(), v.span())],
                DeValue::Array(_) => match self.string_list(key, v, "[\"a\", \"b\"]") {
                    Some(list) => list,
                    None => continue,
                },
                _ => {
                    self.wrong_type(key, v, "a string or a list of strings", "\"…\"");
                    continue;
                }
            };
            if key == "type" {
                for (s, span) in values {
                    if !DEPARTURE_TYPES.contains(&s) {
                        self.push(
                            format!("`{s}` is not a departure type"),
                            span,
                            "use `voluntary` or `involuntary`",
                        );
                    }
                }
            }
        }
    }

    fn after_refs(&mut self, order: &[String], node_of: &[Option<usize>], afters: &[AfterRef]) {
        let node: HashMap<&str, usize> = order
            .iter()
            .enumerate()
            .map(|(n, id)| (id.as_str(), n))
            .collect();
        let mut edges: Vec<Vec<(usize, Range<usize>)>> = vec![Vec::new(); order.len()];
        for a in afters {
            match node.get(a.to.as_str()) {
                Some(&to) => {
                    if let Some(Some(from)) = node_of.get(a.from).copied() {
                        edges[from].push((to, a.span.clone()));
                    }
                }
                None => {
                    let mut hint =
                        "`after` lists the ids of steps that must be done first".to_string();
                    if let Some(best) = closest(&a.to, order.iter().map(String::as_str)) {
                        hint = format!("did you mean `{best}`? {hint}");
                    }
                    self.push(
                        format!("`after` refers to step `{}`, which does not exist", a.to),
                        a.span.clone(),
                        hint,
                    );
                }
            }
        }
        for (cycle, span) in find_cycles(&edges) {
            let names: Vec<&str> = cycle.iter().map(|n| order[*n].as_str()).collect();
            self.push(
                format!("dependency cycle through `after`: {}", names.join(" → ")),
                span,
                "steps in a cycle can never start; remove one of these `after` entries",
            );
        }
    }
}

/// Every cycle found by a depth-first search (iterative, so long chains cannot exhaust the
/// stack): the nodes of the cycle, first node repeated at the end, and the span of the edge that
/// closes it.
fn find_cycles(edges: &[Vec<(usize, Range<usize>)>]) -> Vec<(Vec<usize>, Range<usize>)> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Open,
        Done,
    }
    let mut state = vec![State::New; edges.len()];
    let mut found = Vec::new();
    for root in 0..edges.len() {
        if state[root] != State::New {
            continue;
        }
        state[root] = State::Open;
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some(top) = stack.last_mut() {
            let (u, next) = *top;
            let Some((v, span)) = edges[u].get(next) else {
                state[u] = State::Done;
                stack.pop();
                continue;
            };
            top.1 += 1;
            match state[*v] {
                State::New => {
                    state[*v] = State::Open;
                    stack.push((*v, 0));
                }
                State::Open => {
                    let from = stack.iter().position(|(n, _)| n == v).unwrap_or(0);
                    let mut cycle: Vec<usize> = stack[from..].iter().map(|(n, _)| *n).collect();
                    cycle.push(*v);
                    found.push((cycle, span.clone()));
                }
                State::Done => {}
            }
        }
    }
    found
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

/// A suggested environment variable name for a secret, e.g. `OKTA_TOKEN`.
fn env_name(system: &str, key: &str) -> String {
    let raw = if system.is_empty() {
        key.to_string()
    } else {
        format!("{system}_{key}")
    };
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
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

    const HEAD: &str = "[runbook]\nname = \"t\"\n\n[inputs]\nmanager = { required = true }\n\n[systems.idp]\nkind = \"sandbox\"\n";
    // HEAD is 8 lines; the first line after it is line 9.

    fn load(src: &str) -> Result<Runbook, RunbookError> {
        load_str(Path::new("t.toml"), src.to_string())
    }

    fn errors(src: &str) -> RunbookError {
        match load(src) {
            Ok(_) => panic!("expected errors for:\n{src}"),
            Err(e) => e,
        }
    }

    /// The one diagnostic whose message contains `needle`: its message, line, column and hint.
    fn find(src: &str, needle: &str) -> (String, usize, usize, String) {
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
    fn unknown_key_in_step() {
        let src =
            format!("{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\nonwer = \"me\"\n");
        let (msg, line, col, hint) = find(&src, "unknown key");
        assert_eq!(msg, "unknown key `onwer` in step `a`");
        assert_eq!((line, col), (13, 1));
        assert!(hint.contains("did you mean `owner`?"), "{hint}");
    }

    #[test]
    fn unknown_system_setting_checked_against_kind() {
        let src = "[runbook]\nname = \"t\"\n[systems.idp]\nkind = \"sandbox\"\nlatency = 5\n";
        let (msg, line, col, hint) = find(src, "unknown key");
        assert_eq!(
            msg,
            "unknown key `latency` in [systems.idp] (kind `sandbox`)"
        );
        assert_eq!((line, col), (5, 1));
        assert!(hint.contains("did you mean `latency_ms`?"), "{hint}");
    }

    #[test]
    fn setting_type_is_checked() {
        let src =
            "[runbook]\nname = \"t\"\n[systems.idp]\nkind = \"sandbox\"\nlatency_ms = \"fast\"\n";
        let (msg, line, col, _) = find(src, "latency_ms");
        assert_eq!(msg, "`latency_ms` must be an integer, found string");
        assert_eq!((line, col), (5, 14));
    }

    #[test]
    fn unknown_param_and_missing_required_param() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"r\"\nlane = \"security\"\nsystem = \"idp\"\naction = \"rotate_secret\"\nparams = {{ pth = \"x\" }}\n"
        );
        let (msg, line, col, hint) = find(&src, "unknown key");
        assert_eq!(
            msg,
            "unknown key `pth` in the params of action `rotate_secret`"
        );
        assert_eq!((line, col), (14, 12));
        assert!(hint.contains("did you mean `path`?"), "{hint}");
        let (msg, line, col, hint) = find(&src, "needs the parameter");
        assert_eq!(msg, "action `rotate_secret` needs the parameter `path`");
        assert_eq!((line, col), (13, 10));
        assert!(hint.contains("params = { path = "), "{hint}");
    }

    #[test]
    fn unknown_kind_lists_known_kinds() {
        let src = "[runbook]\nname = \"t\"\n\n[systems.okta]\nkind = \"okta\"\n";
        let (msg, line, col, hint) = find(src, "kind");
        assert_eq!(msg, "unknown system kind `okta`");
        assert_eq!((line, col), (5, 8));
        assert!(hint.contains("scim") && hint.contains("sandbox"), "{hint}");
    }

    #[test]
    fn unknown_action_lists_the_kinds_actions() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nsystem = \"idp\"\naction = \"suspend\"\n"
        );
        let (msg, line, col, hint) = find(&src, "action");
        assert_eq!(msg, "kind `sandbox` has no action `suspend`");
        assert_eq!((line, col), (13, 10));
        assert!(hint.contains("did you mean `suspend_user`?"), "{hint}");
        assert!(hint.contains("revoke_sessions"), "{hint}");
    }

    #[test]
    fn missing_system() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nsystem = \"ipd\"\naction = \"x\"\n"
        );
        let (msg, line, col, hint) = find(&src, "not declared");
        assert_eq!(
            msg,
            "step `a` refers to system `ipd`, which is not declared"
        );
        assert_eq!((line, col), (12, 10));
        assert!(hint.contains("did you mean `idp`?"), "{hint}");
    }

    #[test]
    fn after_refers_to_missing_step() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\nafter = [\"a\", \"bb\"]\n"
        );
        let err = errors(&src);
        let d = err
            .diagnostics
            .iter()
            .find(|d| d.message.contains("does not exist"))
            .unwrap();
        assert_eq!(
            d.message,
            "`after` refers to step `bb`, which does not exist"
        );
        assert_eq!(d.line_column(&src), Some((13, 15)));
        assert!(d.hint.is_some());
    }

    #[test]
    fn duplicate_step_id_points_at_the_second() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\n\n[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"y\"\n"
        );
        let (msg, line, col, hint) = find(&src, "duplicate");
        assert_eq!(msg, "duplicate step id `a` (first defined on line 10)");
        assert_eq!((line, col), (15, 6));
        assert!(hint.contains("unique"));
    }

    #[test]
    fn dependency_cycle_is_named() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\nafter = [\"b\"]\n\n[[step]]\nid = \"b\"\nlane = \"it\"\nmanual = \"y\"\nafter = [\"a\"]\n"
        );
        let (msg, line, col, hint) = find(&src, "cycle");
        assert_eq!(msg, "dependency cycle through `after`: a → b → a");
        assert_eq!((line, col), (19, 10));
        assert!(hint.contains("remove"));
    }

    #[test]
    fn self_dependency_is_a_cycle() {
        let src =
            format!("{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\nafter = [\"a\"]\n");
        let (msg, ..) = find(&src, "cycle");
        assert_eq!(msg, "dependency cycle through `after`: a → a");
    }

    #[test]
    fn long_chains_do_not_exhaust_the_stack() {
        let mut src = String::from(HEAD);
        for n in 0..5000 {
            src.push_str(&format!(
                "[[step]]\nid = \"s{n}\"\nlane = \"it\"\nmanual = \"x\"\nafter = [\"s{}\"]\n",
                (n + 1) % 5000
            ));
        }
        let (msg, ..) = find(&src, "cycle");
        assert!(msg.starts_with("dependency cycle through `after`: s0 → s1 → s2"));
    }

    #[test]
    fn inline_secret_is_refused_without_echoing_it() {
        let src = "[runbook]\nname = \"t\"\n\n[systems.okta]\nkind = \"scim\"\nbase_url = \"https://okta.example.com\"\ntoken = \"abc-SECRET-123\"\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n";
        let err = errors(src);
        assert_eq!(err.diagnostics.len(), 1, "{:#?}", err.diagnostics);
        let (msg, line, col, hint) = find(src, "secrets");
        assert!(
            msg.starts_with("secrets must not be written in the runbook"),
            "{msg}"
        );
        assert_eq!((line, col), (7, 9));
        assert!(hint.contains("token = { env = \"OKTA_TOKEN\" }"), "{hint}");
        let rendered = err.render(false);
        assert!(!err.diagnostics[0].message.contains("abc-SECRET"));
        assert!(!hint.contains("abc-SECRET"));
        assert!(
            rendered.contains("help: reference it instead"),
            "{rendered}"
        );
        assert!(!rendered.contains("abc-SECRET"), "{rendered}");
        assert!(
            rendered.contains("token = \"**************\""),
            "{rendered}"
        );
        assert_eq!(err.source.len(), src.len());
    }

    #[test]
    fn secret_reference_shape_is_checked() {
        let src = "[runbook]\nname = \"t\"\n[systems.okta]\nkind = \"scim\"\nbase_url = \"https://o.example\"\ntoken = { env = \"A\", file = \"b\" }\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n";
        let (msg, line, col, _) = find(src, "exactly one");
        assert_eq!(
            msg,
            "`token` of system `okta` must have exactly one of `env`, `file` or `command`"
        );
        assert_eq!((line, col), (6, 9));
        let ok = "[runbook]\nname = \"t\"\n[systems.okta]\nkind = \"scim\"\nbase_url = \"https://o.example\"\ntoken = { command = [\"pass\", \"show\", \"okta\"] }\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n";
        assert!(load(ok).is_ok());
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
    fn template_in_system_user_and_unclosed() {
        let src = "[runbook]\nname = \"t\"\n[systems.idp]\nkind = \"sandbox\"\nuser = \"{{ user.mail }}\"\n";
        let (msg, line, col, hint) = find(src, "template");
        assert_eq!(
            msg,
            "unknown template variable `user.mail` in the `user` of system `idp`"
        );
        assert_eq!((line, col), (5, 12));
        assert!(hint.contains("did you mean `user.email`?"), "{hint}");
        let src = "[runbook]\nname = \"t\"\n[systems.idp]\nkind = \"sandbox\"\nuser = \"{{ user.email\"\n";
        let (msg, line, col, _) = find(src, "unclosed");
        assert_eq!(msg, "unclosed `{{` in the `user` of system `idp`");
        assert_eq!((line, col), (5, 9));
    }

    #[test]
    fn template_in_param() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"r\"\nlane = \"security\"\nsystem = \"idp\"\naction = \"rotate_secret\"\nparams = {{ path = \"teams/{{{{ user.team }}}}\" }}\n"
        );
        let (msg, line, col, _) = find(&src, "template");
        assert_eq!(
            msg,
            "unknown template variable `user.team` in `path` in step `r`"
        );
        assert_eq!((line, col), (14, 29));
    }

    #[test]
    fn automated_or_manual_not_both() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nsystem = \"idp\"\naction = \"suspend_user\"\nmanual = \"x\"\nfields = [\"f\"]\n"
        );
        let (msg, line, col, _) = find(&src, "both");
        assert_eq!(msg, "step `a` is both manual and automated");
        assert_eq!((line, col), (14, 1));
        let (msg, line, col, _) = find(&src, "fields");
        assert_eq!(msg, "`fields` on automated step `a`");
        assert_eq!((line, col), (15, 1));
        let src = format!("{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\n");
        let (msg, line, col, _) = find(&src, "nothing");
        assert_eq!(msg, "step `a` has nothing to do");
        assert_eq!((line, col), (10, 6));
        let src = format!("{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nsystem = \"idp\"\n");
        let (msg, _, _, hint) = find(&src, "no `action`");
        assert_eq!(msg, "step `a` has a `system` but no `action`");
        assert!(hint.contains("suspend_user"), "{hint}");
    }

    #[test]
    fn when_keys_and_type_values() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\nwhen = {{ type = [\"voluntary\", \"fired\"], team = \"x\", manager = \"m\" }}\n"
        );
        let (msg, line, col, hint) = find(&src, "departure type");
        assert_eq!(msg, "`fired` is not a departure type");
        assert_eq!((line, col), (13, 31));
        assert!(hint.contains("involuntary"));
        let (msg, line, col, hint) = find(&src, "condition");
        assert_eq!(msg, "unknown condition `team` in `when`");
        assert_eq!((line, col), (13, 41));
        assert!(hint.contains("type, manager"), "{hint}");
    }

    #[test]
    fn deadline_format() {
        for ok in [
            "effective",
            "effective+0h",
            "effective+15m",
            "effective+7d",
            "effective+2w",
        ] {
            assert!(valid_deadline(ok), "{ok}");
        }
        for bad in [
            "",
            "effective+",
            "effective+7",
            "effective-1d",
            "effective+1y",
            "7d",
            "effective+d",
        ] {
            assert!(!valid_deadline(bad), "{bad}");
        }
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\ndeadline = \"tomorrow\"\n"
        );
        let (msg, line, col, _) = find(&src, "deadline");
        assert_eq!(msg, "`tomorrow` is not a valid deadline");
        assert_eq!((line, col), (13, 12));
    }

    #[test]
    fn ids_names_and_enums() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a b\"\nlane = \"itt\"\nmanual = \"x\"\nphase = \"later\"\n"
        );
        let (msg, line, col, _) = find(&src, "step id");
        assert_eq!(msg, "step id `a b` is not valid");
        assert_eq!((line, col), (10, 6));
        let (msg, line, col, hint) = find(&src, "`lane`");
        assert_eq!(msg, "`itt` is not a valid `lane`");
        assert_eq!((line, col), (11, 8));
        assert!(hint.contains("did you mean `it`?"), "{hint}");
        let (msg, ..) = find(&src, "`phase`");
        assert_eq!(msg, "`later` is not a valid `phase`");
        let src = "[runbook]\nname = \"t\"\n[systems.\"my idp\"]\nkind = \"sandbox\"\n";
        let (msg, line, col, _) = find(src, "system name");
        assert_eq!(msg, "system name `my idp` is not valid");
        assert_eq!((line, col), (3, 10));
    }

    #[test]
    fn max_concurrency_range() {
        let src = "[runbook]\nname = \"t\"\n[systems.idp]\nkind = \"sandbox\"\nmax_concurrency = 0\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n";
        let (msg, line, col, _) = find(src, "max_concurrency");
        assert_eq!(msg, "`max_concurrency` must be between 1 and 64, not 0");
        assert_eq!((line, col), (5, 19));
        let src = src.replace("= 0", "= 65");
        assert!(find(&src, "max_concurrency").0.ends_with("not 65"));
        assert!(load(&src.replace("= 65", "= 64")).is_ok());
    }

    #[test]
    fn values_only_the_provider_can_judge_point_at_the_system() {
        let src = "[runbook]\nname = \"t\"\n[systems.ad]\nkind = \"ldap\"\nflavor = \"novell\"\nbase_url = \"ldaps://dc.example\"\nbind_dn = \"a\"\nbind_password = { env = \"P\" }\nbase_dn = \"DC=x\"\n[[step]]\nid = \"s\"\nlane = \"it\"\nmanual = \"x\"\n";
        let (msg, line, col, hint) = find(src, "flavor");
        assert!(
            msg.starts_with("system `ad`: flavor `novell` is not one of"),
            "{msg}"
        );
        assert_eq!((line, col), (3, 10));
        assert!(hint.contains("runbooks/README.md"));
    }

    #[test]
    fn base_url_and_token_required_by_kind() {
        let src = "[runbook]\nname = \"t\"\n[systems.app]\nkind = \"scim\"\n";
        let (msg, line, col, hint) = find(src, "base_url");
        assert_eq!(msg, "system `app` (kind `scim`) needs a `base_url`");
        assert_eq!((line, col), (3, 10));
        assert!(hint.contains("https://"));
        let (msg, _, _, hint) = find(src, "token");
        assert_eq!(msg, "system `app` (kind `scim`) needs a `token`");
        assert!(hint.contains("token = { env = \"APP_TOKEN\" }"), "{hint}");
        let src = "[runbook]\nname = \"t\"\n[systems.app]\nkind = \"scim\"\nbase_url = \"ftp://x.example\"\ntoken = { env = \"T\" }\n";
        let (msg, line, col, _) = find(src, "base_url");
        assert_eq!(msg, "`base_url` must be an https or http URL, not `ftp:`");
        assert_eq!((line, col), (5, 12));
        let src = src.replace("ftp://x.example", "not a url");
        assert!(
            find(&src, "base_url")
                .0
                .starts_with("`base_url` is not a URL")
        );
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
    fn templates_in_owner_escalation_and_description_are_checked() {
        let src = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"x\"\nowner = \"{{{{ user.managr }}}}\"\nescalate_to = \"{{{{ user.boss }}}}\"\ndescription = \"{{{{ departure.effective_at | shout }}}}\"\n"
        );
        let (msg, line, col, hint) = find(&src, "user.managr");
        assert_eq!(
            msg,
            "unknown template variable `user.managr` in the `owner` of step `a`"
        );
        assert_eq!((line, col), (13, 13));
        assert!(hint.contains("did you mean `user.manager`?"), "{hint}");
        let (msg, ..) = find(&src, "user.boss");
        assert_eq!(
            msg,
            "unknown template variable `user.boss` in the `escalate_to` of step `a`"
        );
        let (msg, line, col, hint) = find(&src, "filter");
        assert_eq!(
            msg,
            "`shout` in the `description` of step `a` is not a template filter"
        );
        assert_eq!((line, col), (15, 44));
        assert!(hint.contains("| date"), "{hint}");
        let ok = format!(
            "{HEAD}[[step]]\nid = \"a\"\nlane = \"it\"\nmanual = \"Due {{{{ departure.effective_at | date: '%d %B' }}}}\"\nowner = \"{{{{ user.manager }}}}\"\n"
        );
        assert!(load(&ok).is_ok());
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
