//! Departure + runbook → an ordered, validated plan (the frozen [`DepartureFacts`]). No I/O and
//! no network: providers only describe the requests they would make.
//!
//! Order: phases run `cut` → `recover` → `handoff` → `close`. Within a phase, steps are placed in
//! *waves* by their `after` dependencies; steps in one wave may run concurrently. For an
//! involuntary departure, every step that could alert the person waits for a wave after all
//! other `cut` steps, so nothing tips them off before access is gone.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Duration, Utc};

use crate::departure::{AutomatedStep, DepartureFacts, DepartureType, PlannedStep, RunbookRef};
use crate::providers::{self, StepCall, SystemConfig};
use crate::runbook::{Phase, Runbook, StepDef, SystemDef};

/// What the operator asked for.
#[derive(Debug, Clone)]
pub struct DepartureRequest {
    pub id: String,
    pub user: String,
    pub departure_type: DepartureType,
    pub effective_at: DateTime<Utc>,
    pub inputs: BTreeMap<String, String>,
    pub ticket: Option<String>,
    pub legal_hold: bool,
}

/// Whether the identifier looks like an email address (and so is `user.email`).
pub fn as_email(user: &str) -> Option<&str> {
    let (local, domain) = user.split_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !user.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(user)
}

/// The template variables for this departure. Declared inputs that were not given render as
/// `<name not given>`, so a manual instruction still reads sensibly.
pub fn variables(req: &DepartureRequest, declared: &[&str]) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    vars.insert("user.id".to_string(), req.user.clone());
    if let Some(email) = as_email(&req.user) {
        vars.insert("user.email".to_string(), email.to_string());
    }
    vars.insert("departure.id".to_string(), req.id.clone());
    vars.insert(
        "departure.type".to_string(),
        req.departure_type.as_str().to_string(),
    );
    vars.insert(
        "departure.effective_at".to_string(),
        crate::journal::timestamp(req.effective_at),
    );
    vars.insert(
        "departure.ticket".to_string(),
        req.ticket.clone().unwrap_or_else(|| "<no ticket>".into()),
    );
    for name in declared {
        vars.insert(format!("user.{name}"), format!("<{name} not given>"));
    }
    for (k, v) in &req.inputs {
        vars.insert(format!("user.{k}"), v.clone());
    }
    vars
}

fn render(template: &str, vars: &BTreeMap<String, String>) -> Result<String> {
    let vars: crate::runbook::template::Vars = vars.iter().collect();
    Ok(crate::runbook::template::render(template, &vars)?)
}

/// Whether a step's `when` conditions hold for this departure.
pub fn applies(step: &StepDef, req: &DepartureRequest) -> bool {
    step.when.iter().all(|(key, wanted)| {
        if key == "type" {
            wanted.contains(req.departure_type.as_str())
        } else {
            req.inputs.get(key).is_some_and(|v| wanted.contains(v))
        }
    })
}

/// `effective`, `effective+<N><m|h|d|w>`.
pub fn deadline(spec: &str, effective: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let spec = spec.trim();
    let Some(rest) = spec.strip_prefix("effective") else {
        bail!("deadline {spec:?} must start with `effective`, e.g. effective+7d");
    };
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(effective);
    }
    let Some(amount) = rest.strip_prefix('+') else {
        bail!("deadline {spec:?}: expected `+<N><m|h|d|w>` after `effective`");
    };
    let amount = amount.trim();
    let (digits, unit) = amount.split_at(amount.len().saturating_sub(1));
    let n: i64 = digits
        .parse()
        .with_context(|| format!("deadline {spec:?}: {digits:?} is not a whole number"))?;
    let d = match unit {
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => bail!("deadline {spec:?}: unit must be m, h, d or w"),
    }
    .with_context(|| format!("deadline {spec:?} is too far away"))?;
    effective
        .checked_add_signed(d)
        .with_context(|| format!("deadline {spec:?} is too far away"))
}

/// The system's settings with no secret, for planning and for the journal.
pub fn system_config(name: &str, def: &SystemDef, state_dir: &Path) -> SystemConfig {
    SystemConfig {
        settings: def.settings.clone(),
        timeout: std::time::Duration::from_secs(def.timeout_secs.unwrap_or(30)),
        max_concurrency: def.max_concurrency.unwrap_or(4).clamp(1, 64) as usize,
        // Checked by the loader; a journal from elsewhere with a bad one runs unlimited.
        rate_limit: def
            .rate_limit
            .as_deref()
            .and_then(|r| crate::limits::RateLimit::parse(r).ok()),
        state_dir: state_dir.to_path_buf(),
        ..SystemConfig::new(name, &def.kind, def.base_url.as_deref())
    }
}

/// How the person is known in a system.
pub fn login_template(def: &SystemDef, vars: &BTreeMap<String, String>) -> String {
    match &def.user {
        Some(t) => t.clone(),
        None if vars.contains_key("user.email") => "{{ user.email }}".into(),
        None => "{{ user.id }}".into(),
    }
}

/// Render the templates in a setting or parameter value (strings, and strings in lists and
/// tables). `schema` is the value's schema in the action's params type: in a string it marks as
/// a URL template, each substituted value is percent-encoded.
fn render_value(
    v: &toml::Value,
    schema: &serde_json::Value,
    vars: &crate::runbook::template::Vars,
    late: &[String],
) -> Result<toml::Value> {
    use crate::runbook::template::render_with;
    Ok(match v {
        toml::Value::String(s) => {
            let url =
                schema[crate::providers::params::URL_TEMPLATE] == serde_json::Value::Bool(true);
            let encode = |value: &str| {
                if url && !late.iter().any(|l| l == value) {
                    percent_encoding::utf8_percent_encode(value, URL_VALUE).to_string()
                } else {
                    value.to_string()
                }
            };
            toml::Value::String(render_with(s, vars, &encode)?)
        }
        toml::Value::Array(items) => toml::Value::Array(
            items
                .iter()
                .map(|i| render_value(i, &schema["items"], vars, late))
                .collect::<Result<_>>()?,
        ),
        toml::Value::Table(t) => toml::Value::Table(
            t.iter()
                .map(|(k, i)| {
                    let sub = match &schema["properties"][k] {
                        serde_json::Value::Null => &schema["additionalProperties"],
                        s => s,
                    };
                    Ok((k.clone(), render_value(i, sub, vars, late)?))
                })
                .collect::<Result<_>>()?,
        ),
        other => other.clone(),
    })
}

/// What a value put into a URL template keeps unencoded: RFC 3986's unreserved characters
/// only, so the value cannot end its path segment or query parameter.
const URL_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A step's parameters, templates rendered, as JSON for the provider. Variables the action
/// fills itself when it runs (its late variables) are left as written.
pub fn params_json(
    step: &StepDef,
    vars: &BTreeMap<String, String>,
    spec: &crate::providers::ParamsSpec,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let schema = spec.schema();
    let late: Vec<String> = spec
        .late_vars()
        .iter()
        .map(|l| format!("{{{{ {l} }}}}"))
        .collect();
    let mut all: crate::runbook::template::Vars = vars.iter().collect();
    for (name, placeholder) in spec.late_vars().iter().zip(&late) {
        all.set(*name, placeholder.clone());
    }
    step.params
        .iter()
        .map(|(k, v)| {
            let v = render_value(v, &schema["properties"][k], &all, &late)
                .with_context(|| format!("rendering params.{k}"))?;
            Ok((
                k.clone(),
                serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
            ))
        })
        .collect()
}

/// The runbook's systems with the templates in their kind settings rendered.
fn render_systems(
    systems: &BTreeMap<String, SystemDef>,
    vars: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, SystemDef>> {
    let mut out = systems.clone();
    let all: crate::runbook::template::Vars = vars.iter().collect();
    for (name, def) in out.iter_mut() {
        let kind = crate::providers::find_kind(&def.kind);
        for (k, v) in def.settings.iter_mut() {
            // An `auth` table is taken as written, like `token`: `runbook check` reads no
            // template in it.
            let is_auth = kind.is_some_and(|kind| {
                kind.settings
                    .iter()
                    .any(|s| s.name == k.as_str() && s.ty == crate::providers::SettingType::Auth)
            });
            if is_auth {
                continue;
            }
            *v = render_value(v, &serde_json::Value::Null, &all, &[])
                .with_context(|| format!("rendering {k} of system {name}"))?;
        }
    }
    Ok(out)
}

/// Build the plan for one departure.
pub fn build(
    runbook: &Runbook,
    req: &DepartureRequest,
    state_dir: &Path,
) -> Result<DepartureFacts> {
    let rb = &runbook.file;
    let declared: Vec<&str> = rb.inputs.keys().map(String::as_str).collect();
    let vars = variables(req, &declared);
    let legal_hold = req.legal_hold || rb.runbook.legal_hold;

    let systems = render_systems(&rb.systems, &vars)?;
    let included: Vec<&StepDef> = rb.steps.iter().filter(|s| applies(s, req)).collect();
    let mut steps = Vec::with_capacity(included.len());
    for s in &included {
        steps.push(
            plan_step(s, &systems, req, &vars, legal_hold, state_dir)
                .with_context(|| format!("planning step {}", s.id))?,
        );
    }
    if let Some(def) = &rb.assets {
        add_asset_steps(&mut steps, def, runbook, req, &vars, legal_hold, state_dir)
            .context("planning the asset lane ([assets])")?;
    }
    assign_waves(&mut steps, req.departure_type)?;
    steps.sort_by_key(|s| s.wave);

    Ok(DepartureFacts {
        id: req.id.clone(),
        user: req.user.clone(),
        email: as_email(&req.user).map(str::to_string),
        departure_type: req.departure_type,
        effective_at: crate::journal::timestamp(req.effective_at),
        ticket: req.ticket.clone(),
        legal_hold,
        inputs: req.inputs.clone(),
        runbook: RunbookRef {
            name: rb.runbook.name.clone(),
            path: runbook.path.display().to_string(),
            sha256: runbook.sha256.clone(),
        },
        systems,
        steps,
        tool: format!("offboard {}", env!("CARGO_PKG_VERSION")),
        previous: None,
        ticketing: runbook.file.ticketing.clone(),
        intake: None,
        approval: None,
    })
}

/// The largest asset CSV read.
const MAX_ASSET_CSV_BYTES: u64 = 16 * 1024 * 1024;

/// The default instruction of an asset return step.
pub const ASSET_MANUAL: &str = "Recover {{ asset.name }} {{ asset.tag }} (serial {{ asset.serial }}) from {{ user.email }}; record how it came back and what happens to it";

/// What the person holds, from the `[assets]` table's source.
pub fn resolve_assets(
    def: &crate::runbook::AssetsDef,
    runbook: &Runbook,
    req: &DepartureRequest,
    vars: &BTreeMap<String, String>,
) -> Result<Vec<crate::assets::Asset>> {
    if let Some(input) = def.from.as_deref().and_then(|f| f.strip_prefix("input:")) {
        return Ok(req
            .inputs
            .get(input.trim())
            .map(|v| crate::assets::from_list(v))
            .unwrap_or_default());
    }
    let Some(csv) = &def.csv else {
        bail!("[assets] needs `from = \"input:<name>\"` or `csv = \"<path>\"`");
    };
    let rel = render(csv, vars).context("rendering `csv`")?;
    let path = match runbook.path.parent() {
        Some(dir) if Path::new(&rel).is_relative() => dir.join(&rel),
        _ => Path::new(&rel).to_path_buf(),
    };
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(
            std::fs::File::open(&path)
                .with_context(|| format!("reading the asset list {}", path.display()))?,
            MAX_ASSET_CSV_BYTES + 1,
        ),
        &mut text,
    )
    .with_context(|| format!("reading the asset list {} (UTF-8 CSV)", path.display()))?;
    if text.len() as u64 > MAX_ASSET_CSV_BYTES {
        bail!(
            "the asset list {} is larger than {} MiB",
            path.display(),
            MAX_ASSET_CSV_BYTES >> 20
        );
    }
    let person_template = def.match_user.clone().unwrap_or_else(|| {
        if vars.contains_key("user.email") {
            "{{ user.email }}".into()
        } else {
            "{{ user.id }}".into()
        }
    });
    let person = render(&person_template, vars).context("rendering `match`")?;
    let cols = crate::assets::Columns::of(def.columns.as_ref());
    crate::assets::from_csv(&text, &cols, &person)
        .with_context(|| format!("reading the asset list {}", path.display()))
}

/// One manual return step per asset, and the `on_overdue` step gated on them.
fn add_asset_steps(
    steps: &mut Vec<PlannedStep>,
    def: &crate::runbook::AssetsDef,
    runbook: &Runbook,
    req: &DepartureRequest,
    vars: &BTreeMap<String, String>,
    legal_hold: bool,
    state_dir: &Path,
) -> Result<()> {
    let assets = resolve_assets(def, runbook, req, vars)?;
    let prefix = def.id_prefix.as_deref().unwrap_or("return");
    let mut ids = Vec::with_capacity(assets.len());
    for asset in assets {
        let id = crate::assets::step_id(prefix, &asset.tag);
        if steps.iter().any(|s| s.id == id) {
            bail!(
                "the return step for asset {} would be {id}, which is already a step; set \
                 another `id_prefix` under [assets]",
                crate::ui::safe(&asset.tag)
            );
        }
        let mut vars = vars.clone();
        vars.insert("asset.tag".into(), asset.tag.clone());
        vars.insert(
            "asset.serial".into(),
            asset.serial.clone().unwrap_or_else(|| "<no serial>".into()),
        );
        vars.insert(
            "asset.name".into(),
            asset.name.clone().unwrap_or_else(|| "asset".into()),
        );
        let step = StepDef {
            id: id.clone(),
            lane: def.lane.unwrap_or(crate::runbook::Lane::Facilities),
            system: None,
            action: None,
            params: BTreeMap::new(),
            manual: Some(def.manual.clone().unwrap_or_else(|| ASSET_MANUAL.into())),
            fields: crate::assets::FIELDS
                .iter()
                .map(|f| f.to_string())
                .collect(),
            when: BTreeMap::new(),
            phase: def.phase,
            after: Vec::new(),
            owner: def.owner.clone(),
            deadline: def.deadline.clone(),
            escalate_to: def.escalate_to.clone(),
            escalate_after: None,
            alerts_user: None,
            description: None,
        };
        let mut planned = plan_step(&step, &BTreeMap::new(), req, &vars, legal_hold, state_dir)
            .with_context(|| format!("planning step {id}"))?;
        planned.asset = Some(asset);
        steps.push(planned);
        ids.push(id);
    }
    if let Some(target) = &def.on_overdue
        && let Some(s) = steps.iter_mut().find(|s| &s.id == target)
    {
        s.on_overdue_of = Some(ids);
    }
    Ok(())
}

fn plan_step(
    s: &StepDef,
    systems: &BTreeMap<String, SystemDef>,
    req: &DepartureRequest,
    vars: &BTreeMap<String, String>,
    legal_hold: bool,
    state_dir: &Path,
) -> Result<PlannedStep> {
    let mut automated = None;
    let mut alerts_user = s.alerts_user.unwrap_or(false);
    let mut destructive = false;
    if let (Some(system), Some(action)) = (&s.system, &s.action) {
        let def = systems
            .get(system)
            .with_context(|| format!("system {system} is not declared"))?;
        let kind = providers::find_kind(&def.kind)
            .with_context(|| format!("unknown system kind {}", def.kind))?;
        let spec = kind
            .action(action)
            .with_context(|| format!("kind {} has no action {action}", def.kind))?;
        destructive = spec.destructive;
        alerts_user = s.alerts_user.unwrap_or(spec.alerts_user);
        let login = render(&login_template(def, vars), vars).with_context(|| {
            format!("system {system} needs to know how the person is known there (`user`)")
        })?;
        let params = params_json(s, vars, &spec.params)?;
        let provider = (kind.connect)(&system_config(system, def, state_dir))
            .with_context(|| format!("configuring system {system}"))?;
        let requests = provider.describe(&StepCall {
            step_id: &s.id,
            action,
            login: &login,
            params: &params,
            account: None,
        });
        automated = Some(AutomatedStep {
            system: system.clone(),
            kind: def.kind.clone(),
            action: action.clone(),
            login,
            params,
            destructive,
            revokes: spec.revokes,
            requests,
        });
    }
    // What people read (the instruction, owner, escalation, description) still reads sensibly
    // when the user has no email address; a system login that needs one (above) is an error.
    // The values come from the command line and inputs: a line break or a bidi override in one
    // is written escaped, so it cannot add a line to, or reorder, what a person reads.
    let mut person_vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.clone(), crate::ui::escape(v)))
        .collect();
    person_vars
        .entry("user.email".into())
        .or_insert_with(|| "<no email address>".into());
    let for_people = |key: &str, text: &Option<String>| -> Result<Option<String>> {
        text.as_deref()
            .map(|t| render(t, &person_vars).with_context(|| format!("rendering `{key}`")))
            .transpose()
    };
    let manual = for_people("manual", &s.manual)?;
    let deadline = match &s.deadline {
        Some(d) => Some(crate::journal::timestamp(deadline(d, req.effective_at)?)),
        None => None,
    };
    Ok(PlannedStep {
        id: s.id.clone(),
        lane: s.lane,
        phase: s.phase(),
        wave: 0,
        description: for_people("description", &s.description)?,
        automated,
        manual,
        fields: s.fields.clone(),
        owner: for_people("owner", &s.owner)?,
        deadline,
        escalate_to: for_people("escalate_to", &s.escalate_to)?,
        after: s.after.clone(),
        alerts_user,
        held: legal_hold && destructive,
        asset: None,
        on_overdue_of: None,
    })
}

/// Place steps in waves: phase by phase, each step one wave after the latest of its
/// dependencies; for involuntary departures, alerting steps after every other `cut` step.
fn assign_waves(steps: &mut [PlannedStep], ty: DepartureType) -> Result<()> {
    let index: HashMap<String, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect();
    // Dependencies on steps excluded by `when` are dropped: they will not run at all.
    for s in steps.iter_mut() {
        s.after.retain(|d| index.contains_key(d));
    }
    for s in steps.iter() {
        for d in &s.after {
            let dep = &steps[index[d]];
            if dep.phase > s.phase {
                bail!(
                    "step {} (phase {}) runs after {} (phase {}), but phases run cut → recover → handoff → close; move one of them",
                    s.id,
                    s.phase.as_str(),
                    dep.id,
                    dep.phase.as_str()
                );
            }
        }
    }
    let mut level: HashMap<usize, u32> = HashMap::new();
    fn depth(
        i: usize,
        steps: &[PlannedStep],
        index: &HashMap<String, usize>,
        level: &mut HashMap<usize, u32>,
        visiting: &mut Vec<usize>,
    ) -> Result<u32> {
        if let Some(l) = level.get(&i) {
            return Ok(*l);
        }
        if visiting.contains(&i) {
            bail!(
                "steps depend on each other in a cycle through {}",
                steps[i].id
            );
        }
        visiting.push(i);
        let mut l = 0;
        for d in &steps[i].after {
            let j = index[d];
            if steps[j].phase == steps[i].phase {
                l = l.max(depth(j, steps, index, level, visiting)? + 1);
            }
        }
        visiting.pop();
        level.insert(i, l);
        Ok(l)
    }
    for i in 0..steps.len() {
        depth(i, steps, &index, &mut level, &mut Vec::new())?;
    }
    let mut base = 0u32;
    for phase in Phase::ALL {
        let members: Vec<usize> = (0..steps.len())
            .filter(|&i| steps[i].phase == phase)
            .collect();
        if members.is_empty() {
            continue;
        }
        let mut held: Vec<bool> = (0..steps.len())
            .map(|i| {
                phase == Phase::Cut && ty == DepartureType::Involuntary && steps[i].alerts_user
            })
            .collect();
        // A step that waits for a held-back step in this phase is held back with it, so it
        // still runs after what it depends on.
        loop {
            let more: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&i| !held[i] && steps[i].after.iter().any(|d| held[index[d]]))
                .collect();
            if more.is_empty() {
                break;
            }
            for i in more {
                held[i] = true;
            }
        }
        let hold_back = |i: usize| held[i];
        let top = members
            .iter()
            .filter(|&&i| !hold_back(i))
            .map(|i| level[i])
            .max()
            .map_or(0, |m| m + 1);
        let mut max_wave = base;
        for &i in &members {
            let w = if hold_back(i) {
                base + top + level[&i]
            } else {
                base + level[&i]
            };
            steps[i].wave = w;
            max_wave = max_wave.max(w);
        }
        base = max_wave + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn deadlines() {
        let e = t("2026-11-23T10:00:00Z");
        assert_eq!(deadline("effective", e).unwrap(), e);
        assert_eq!(deadline("effective+0h", e).unwrap(), e);
        assert_eq!(
            deadline("effective+7d", e).unwrap(),
            t("2026-11-30T10:00:00Z")
        );
        assert_eq!(
            deadline("effective + 2w", e).unwrap(),
            t("2026-12-07T10:00:00Z")
        );
        assert_eq!(
            deadline("effective+90m", e).unwrap(),
            t("2026-11-23T11:30:00Z")
        );
        assert!(deadline("tomorrow", e).is_err());
        assert!(deadline("effective+7y", e).is_err());
        assert!(deadline("effective+99999999999999d", e).is_err());
    }

    fn plan_of(toml: &str, ty: DepartureType, inputs: &[(&str, &str)]) -> DepartureFacts {
        let rb = crate::runbook::load_str(Path::new("t.toml"), toml.to_string())
            .unwrap_or_else(|e| panic!("{}", e.render(false)));
        let req = DepartureRequest {
            id: "20261123t100000-alice-0001".into(),
            user: "alice@corp.example".into(),
            departure_type: ty,
            effective_at: t("2026-11-23T10:00:00Z"),
            inputs: inputs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ticket: None,
            legal_hold: false,
        };
        build(&rb, &req, Path::new("/nonexistent")).unwrap()
    }

    /// The `auth` table is no template: planned as written, as the loader checked it.
    #[test]
    fn the_auth_table_is_not_rendered() {
        let facts = plan_of(
            r#"
[runbook]
name = "t"
[systems.app]
kind = "scim"
base_url = "https://app.example/scim/v2"
[systems.app.auth.oauth2]
token_url = "https://login.example/token"
client_id = "offboard-{{ user.id }}"
client_secret = { command = ["pass", "show", "{{ departure.id }}"] }
[[step]]
id = "s"
lane = "it"
system = "app"
action = "deactivate_user"
"#,
            DepartureType::Voluntary,
            &[],
        );
        let auth = &facts.systems["app"].settings["auth"]["oauth2"];
        assert_eq!(auth["client_id"].as_str(), Some("offboard-{{ user.id }}"));
        assert_eq!(
            auth["client_secret"]["command"][2].as_str(),
            Some("{{ departure.id }}")
        );
    }

    const RB: &str = r#"
[runbook]
name = "t"
[inputs]
region = { prompt = "Region" }
[systems.idp]
kind = "sandbox"
[[step]]
id = "suspend"
lane = "it"
system = "idp"
action = "suspend_user"
[[step]]
id = "sessions"
lane = "it"
system = "idp"
action = "revoke_sessions"
after = ["suspend"]
[[step]]
id = "notice"
lane = "it"
system = "idp"
action = "send_notice"
[[step]]
id = "eu-only"
lane = "it"
system = "idp"
action = "reset_mfa"
when = { region = ["eu", "uk"] }
[[step]]
id = "fire-only"
lane = "manager"
manual = "Escort {{ user.email }} out"
when = { type = "involuntary" }
phase = "cut"
[[step]]
id = "wipe"
lane = "it"
system = "idp"
action = "wipe_device"
phase = "close"
"#;

    fn waves(f: &DepartureFacts) -> Vec<(&str, u32)> {
        f.steps.iter().map(|s| (s.id.as_str(), s.wave)).collect()
    }

    #[test]
    fn conditions_select_steps_by_type_and_inputs() {
        let f = plan_of(RB, DepartureType::Voluntary, &[]);
        let ids: Vec<&str> = f.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["suspend", "notice", "sessions", "wipe"]);
        let f = plan_of(RB, DepartureType::Involuntary, &[("region", "uk")]);
        let ids: Vec<&str> = f.steps.iter().map(|s| s.id.as_str()).collect();
        assert!(
            ids.contains(&"eu-only") && ids.contains(&"fire-only"),
            "{ids:?}"
        );
        let f = plan_of(RB, DepartureType::Involuntary, &[("region", "us")]);
        assert!(!f.steps.iter().any(|s| s.id == "eu-only"));
    }

    #[test]
    fn waves_follow_dependencies_phases_and_hold_back_alerts_when_involuntary() {
        let f = plan_of(RB, DepartureType::Voluntary, &[]);
        assert_eq!(
            waves(&f),
            [("suspend", 0), ("notice", 0), ("sessions", 1), ("wipe", 2)]
        );
        let f = plan_of(RB, DepartureType::Involuntary, &[]);
        // The notice waits until suspend (wave 0) and sessions (wave 1) are done.
        assert_eq!(
            waves(&f),
            [
                ("suspend", 0),
                ("fire-only", 0),
                ("sessions", 1),
                ("notice", 2),
                ("wipe", 3)
            ]
        );
        let wipe = f.steps.iter().find(|s| s.id == "wipe").unwrap();
        assert!(wipe.automated.as_ref().unwrap().destructive && !wipe.held);
        let manual = f.steps.iter().find(|s| s.id == "fire-only").unwrap();
        assert_eq!(
            manual.manual.as_deref(),
            Some("Escort alice@corp.example out")
        );
    }

    #[test]
    fn a_step_after_a_held_back_alert_is_held_back_with_it() {
        let rb = RB.replace(
            "action = \"revoke_sessions\"\nafter = [\"suspend\"]",
            "action = \"revoke_sessions\"\nafter = [\"notice\"]",
        );
        assert_ne!(rb, RB);
        let f = plan_of(&rb, DepartureType::Involuntary, &[]);
        // Before, sessions (level 1) landed in wave 1 and notice (held) in wave 2: the step
        // would have run before the one it waits for.
        assert_eq!(
            waves(&f),
            [
                ("suspend", 0),
                ("fire-only", 0),
                ("notice", 1),
                ("sessions", 2),
                ("wipe", 3)
            ]
        );
    }

    #[test]
    fn legal_hold_marks_destructive_steps_held() {
        let rb = RB.replace("name = \"t\"", "name = \"t\"\nlegal_hold = true");
        let f = plan_of(&rb, DepartureType::Voluntary, &[]);
        let held: Vec<&str> = f
            .steps
            .iter()
            .filter(|s| s.held)
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(held, ["wipe"]);
        assert!(f.legal_hold);
    }

    #[test]
    fn what_people_read_is_rendered_at_plan_time() {
        let rb = r#"
[runbook]
name = "t"
[inputs]
manager = { prompt = "Manager", required = true }
[[step]]
id = "handover"
lane = "manager"
manual = "Take over from {{ user.email }} by {{ departure.effective_at | date }}"
owner = "{{ user.manager }}"
escalate_to = "lead of {{ user.manager }}"
description = "Handover ({{ departure.type }}, {{ departure.effective_at | date: \"%d %B %Y\" }})"
"#;
        let f = plan_of(
            rb,
            DepartureType::Voluntary,
            &[("manager", "bob@corp.example")],
        );
        let s = &f.steps[0];
        assert_eq!(s.owner.as_deref(), Some("bob@corp.example"));
        assert_eq!(s.escalate_to.as_deref(), Some("lead of bob@corp.example"));
        assert_eq!(
            s.manual.as_deref(),
            Some("Take over from alice@corp.example by 2026-11-23 10:00 UTC")
        );
        assert_eq!(
            s.description.as_deref(),
            Some("Handover (voluntary, 23 November 2026)")
        );
    }

    #[test]
    fn a_date_filter_on_something_that_is_not_a_date_is_a_planning_error() {
        let rb = r#"
[runbook]
name = "t"
[inputs]
last_day = { prompt = "Last day" }
[[step]]
id = "a"
lane = "it"
manual = "Gone by {{ user.last_day | date }}"
"#;
        let ok = plan_of(rb, DepartureType::Voluntary, &[("last_day", "2026-12-01")]);
        assert_eq!(ok.steps[0].manual.as_deref(), Some("Gone by 2026-12-01"));
        let runbook = crate::runbook::load_str(Path::new("t.toml"), rb.to_string()).unwrap();
        let req = DepartureRequest {
            id: "x".into(),
            user: "alice".into(),
            departure_type: DepartureType::Voluntary,
            effective_at: t("2026-11-23T10:00:00Z"),
            inputs: [("last_day".to_string(), "next friday".to_string())].into(),
            ticket: None,
            legal_hold: false,
        };
        let err = build(&runbook, &req, Path::new("/nonexistent")).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("planning step a"), "{text}");
        assert!(text.contains("not a date"), "{text}");
    }

    const ASSETS_RB: &str = r#"
[runbook]
name = "t"
[inputs]
assets = { prompt = "Assets" }
[systems.mdm]
kind = "sandbox"
[[step]]
id = "suspend"
lane = "it"
system = "mdm"
action = "suspend_user"
[[step]]
id = "wipe"
lane = "it"
system = "mdm"
action = "wipe_device"
phase = "close"
[assets]
from = "input:assets"
owner = "facilities@corp.example"
deadline = "effective+7d"
manual = "Get {{ asset.tag }} ({{ asset.serial }}) back from {{ user.email }}"
on_overdue = "wipe"
"#;

    #[test]
    fn the_asset_lane_plans_one_return_step_per_asset() {
        let f = plan_of(
            ASSETS_RB,
            DepartureType::Voluntary,
            &[("assets", "LT-0042:C02XK1, PH/7\u{202e}")],
        );
        let ids: Vec<&str> = f.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids.len(), 4, "{ids:?}");
        let lt = f.steps.iter().find(|s| s.id == "return-LT-0042").unwrap();
        assert_eq!(lt.lane, crate::runbook::Lane::Facilities);
        assert_eq!(lt.phase, Phase::Recover);
        assert_eq!(
            lt.manual.as_deref(),
            Some("Get LT-0042 (C02XK1) back from alice@corp.example")
        );
        assert_eq!(lt.fields, crate::assets::FIELDS);
        assert_eq!(lt.deadline.as_deref(), Some("2026-11-30T10:00:00.000Z"));
        assert_eq!(lt.owner.as_deref(), Some("facilities@corp.example"));
        assert_eq!(lt.asset.as_ref().unwrap().serial.as_deref(), Some("C02XK1"));
        // The odd tag: a safe id, and its text escaped where people read it.
        let odd = f
            .steps
            .iter()
            .find(|s| s.asset.as_ref().is_some_and(|a| a.tag.starts_with("PH/7")))
            .unwrap();
        assert!(odd.id.starts_with("return-PH-7-"), "{}", odd.id);
        assert!(!odd.manual.as_deref().unwrap().contains('\u{202e}'));
        let wipe = f.steps.iter().find(|s| s.id == "wipe").unwrap();
        assert_eq!(
            wipe.on_overdue_of.as_deref(),
            Some(&[lt.id.clone(), odd.id.clone()][..])
        );
        // The other steps are untouched.
        let suspend = f.steps.iter().find(|s| s.id == "suspend").unwrap();
        assert!(suspend.on_overdue_of.is_none() && suspend.asset.is_none());
        // Nobody holds anything: no return step, and the wipe waits on nothing (not needed).
        let f = plan_of(ASSETS_RB, DepartureType::Voluntary, &[]);
        assert_eq!(f.steps.len(), 2);
        let wipe = f.steps.iter().find(|s| s.id == "wipe").unwrap();
        assert_eq!(wipe.on_overdue_of.as_deref(), Some(&[][..]));
    }

    #[test]
    fn the_asset_lane_reads_a_csv_export() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("export.csv"),
            "Tag,Serial,Model,Email\nLT-1,S1,MacBook,alice@corp.example\nLT-2,S2,X1,bob@x\n",
        )
        .unwrap();
        let rb = ASSETS_RB.replace(
            "from = \"input:assets\"",
            "csv = \"export.csv\"\ncolumns = { tag = \"Tag\", serial = \"Serial\", name = \"Model\", user = \"Email\" }",
        );
        let rb = crate::runbook::load_str(&dir.path().join("rb.toml"), rb)
            .unwrap_or_else(|e| panic!("{}", e.render(false)));
        let req = DepartureRequest {
            id: "x".into(),
            user: "alice@corp.example".into(),
            departure_type: DepartureType::Voluntary,
            effective_at: t("2026-11-23T10:00:00Z"),
            inputs: BTreeMap::new(),
            ticket: None,
            legal_hold: false,
        };
        let f = build(&rb, &req, Path::new("/nonexistent")).unwrap();
        let returns: Vec<&str> = f
            .steps
            .iter()
            .filter(|s| s.asset.is_some())
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(returns, ["return-LT-1"]);
        std::fs::remove_file(dir.path().join("export.csv")).unwrap();
        let err = format!(
            "{:#}",
            build(&rb, &req, Path::new("/nonexistent")).unwrap_err()
        );
        assert!(err.contains("reading the asset list"), "{err}");
    }

    #[test]
    fn an_asset_step_id_that_clashes_is_a_planning_error() {
        let rb = ASSETS_RB.replace("id = \"suspend\"", "id = \"return-LT-1\"");
        let runbook = crate::runbook::load_str(Path::new("t.toml"), rb).unwrap();
        let req = DepartureRequest {
            id: "x".into(),
            user: "alice@corp.example".into(),
            departure_type: DepartureType::Voluntary,
            effective_at: t("2026-11-23T10:00:00Z"),
            inputs: [("assets".to_string(), "LT-1".to_string())].into(),
            ticket: None,
            legal_hold: false,
        };
        let err = format!("{:#}", build(&runbook, &req, Path::new("/x")).unwrap_err());
        assert!(err.contains("id_prefix"), "{err}");
    }

    #[test]
    fn email_detection() {
        assert_eq!(as_email("alice@corp.example"), Some("alice@corp.example"));
        assert_eq!(as_email("alice"), None);
        assert_eq!(as_email("a@b@c"), None);
        assert_eq!(as_email("a b@c"), None);
    }
}
