//! `offboard intake parse|poll|due`, and `start --from-event`: departures from the HR system.
//!
//! Every way in goes through the same steps: authenticate the delivery against the runbook's
//! `[intake.<source>]` secret (a refusal starts nothing and is logged), read the terminations
//! out of it ([`crate::intake`]), then for each one, under the intake lock: an event already in
//! the index is a duplicate (nothing new); one whose effective time is ahead is recorded as
//! scheduled; anything else starts now, through `start`'s own path, with the event stamped into
//! the departure's facts.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use secrecy::ExposeSecret;
use serde_json::json;

use super::{Ctx, common};
use crate::cli::{
    Cli, Command, EventAuth, IntakeCommand, IntakeDueArgs, IntakeParseArgs, IntakePollArgs,
    StartArgs,
};
use crate::departure::DepartureFacts;
use crate::exit::{CliError, Exit};
use crate::intake::index::{self, Entry, Intake, Scheduled};
use crate::intake::poll::{self, BambooHr};
use crate::intake::signature::{self, Headers, SignatureError};
use crate::intake::{
    self as hris, IntakeError, IntakeRef, Parsed, Source, SourceConfig, Termination,
};
use crate::journal::{self, timestamp};
use crate::runbook::Runbook;
use crate::ui::safe;

pub fn exec(ctx: &Ctx, cmd: IntakeCommand) -> Result<Exit> {
    match cmd {
        IntakeCommand::Parse(a) => parse(ctx, a),
        IntakeCommand::Poll(a) => poll(ctx, a),
        IntakeCommand::Due(a) => due(ctx, a),
    }
}

// ---------------------------------------------------------------------------------------------
// Reading and authenticating a delivery

fn read_body(file: &Path) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    let limit = hris::MAX_BODY + 1;
    if file == Path::new("-") {
        std::io::stdin()
            .take(limit)
            .read_to_end(&mut body)
            .context("reading the event from stdin")?;
    } else {
        let f = std::fs::File::open(file).map_err(|e| {
            CliError::usage(format!("cannot read the event {}: {e}", file.display()))
        })?;
        f.take(limit)
            .read_to_end(&mut body)
            .with_context(|| format!("reading the event {}", file.display()))?;
    }
    if body.len() as u64 > hris::MAX_BODY {
        return Err(CliError::usage(format!(
            "the event is larger than {} MiB; no HR system sends one that size",
            hris::MAX_BODY / 1024 / 1024
        ))
        .into());
    }
    Ok(body)
}

/// The delivery's headers: `--headers FILE`, then `--signature` / `--timestamp` under the
/// source's header names.
fn headers(auth: &EventAuth, source: Source) -> Result<Headers> {
    let mut h = match &auth.headers {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                CliError::usage(format!("cannot read --headers {}: {e}", p.display()))
            })?;
            Headers::parse(&text)
                .map_err(|e| CliError::usage(format!("--headers {}: {e}", p.display())))?
        }
        None => Headers::default(),
    };
    if let Some(sig) = &auth.signature {
        let name = match source {
            Source::Bamboohr => signature::BAMBOOHR_SIGNATURE,
            Source::Hibob => signature::HIBOB_SIGNATURE,
            Source::Personio | Source::Rippling => signature::AUTHORIZATION,
            Source::Workday => {
                return Err(
                    CliError::usage("Workday deliveries carry no signature or token")
                        .hint("drop --signature")
                        .into(),
                );
            }
        };
        h.set(name, sig.clone());
    }
    if let Some(ts) = &auth.timestamp {
        if source != Source::Bamboohr {
            return Err(CliError::usage(format!(
                "--timestamp is BambooHR's X-BambooHR-Timestamp; {} signs no timestamp",
                source.name()
            ))
            .into());
        }
        h.set(signature::BAMBOOHR_TIMESTAMP, ts.clone());
    }
    Ok(h)
}

/// The header that carries proof for `source`, if any.
fn proof_header(source: Source) -> Option<&'static str> {
    match source {
        Source::Bamboohr => Some(signature::BAMBOOHR_SIGNATURE),
        Source::Hibob => Some(signature::HIBOB_SIGNATURE),
        Source::Personio | Source::Rippling => Some(signature::AUTHORIZATION),
        Source::Workday => None,
    }
}

fn config(runbook: Option<&Runbook>, source: Source) -> Result<SourceConfig> {
    match runbook {
        None => Ok(SourceConfig::default()),
        Some(r) => SourceConfig::from_runbook(&r.file.intake, source).map_err(|e| {
            CliError::usage(format!("invalid runbook: {e}"))
                .hint("see HRIS intake in runbooks/README.md for the keys of [intake.<source>]")
                .into()
        }),
    }
}

/// Check the delivery against the configured secret. The outer error is ours (a secret that
/// does not resolve); the inner one is the delivery's (refused). With no secret configured the
/// body is taken as it is (`none`), unless proof was given that nothing could check.
fn authenticate(
    source: Source,
    cfg: &SourceConfig,
    body: &[u8],
    headers: &Headers,
) -> Result<std::result::Result<&'static str, SignatureError>> {
    let (name, secret_ref) = match source {
        Source::Bamboohr | Source::Hibob => ("webhook_key", cfg.webhook_key.as_ref()),
        Source::Personio | Source::Rippling => ("webhook_token", cfg.webhook_token.as_ref()),
        Source::Workday => ("", None),
    };
    let Some(secret_ref) = secret_ref else {
        if let Some(h) = proof_header(source).filter(|h| headers.get(h).is_some()) {
            return Err(CliError::usage(format!(
                "the delivery carries {h}, but the runbook has no [intake.{}] {name} to check it against",
                source.as_str()
            ))
            .hint(format!(
                "add {name} = {{ env = \"{}_WEBHOOK_{}\" }} under [intake.{}]",
                source.as_str().to_ascii_uppercase(),
                if name == "webhook_key" { "KEY" } else { "TOKEN" },
                source.as_str()
            ))
            .into());
        }
        return Ok(Ok("none"));
    };
    let secret = crate::secrets::resolve(secret_ref)
        .with_context(|| format!("[intake.{}] {name} ({secret_ref})", source.as_str()))?;
    let window = cfg.replay_window_secs.unwrap_or(300);
    Ok(signature::verify(
        source,
        secret.expose_secret().as_bytes(),
        body,
        headers,
        journal::now(),
        window,
    )
    .map(|()| signature::scheme(source)))
}

fn refused(source: Source, e: &SignatureError) -> anyhow::Error {
    CliError::new(
        Exit::Failure,
        anyhow::anyhow!(
            "refused the {} delivery: {e}; nothing was started",
            source.name()
        ),
    )
    .hint(match source {
        Source::Bamboohr => "check the webhook's private key (shown once, when it was created) and that the body reached offboard byte for byte, with its X-BambooHR-Signature and X-BambooHR-Timestamp headers",
        Source::Hibob => "check the webhook secret in Bob and that the body reached offboard byte for byte, with its Bob-Signature header",
        _ => "check the token configured at the HR system against webhook_token",
    })
    .into()
}

fn intake_error(source: Source, e: IntakeError) -> anyhow::Error {
    let hint = match &e {
        IntakeError::Malformed(_) => format!(
            "is this a {} event? `offboard intake --help` lists what each source may send",
            source.name()
        ),
        IntakeError::Incomplete(_) => format!(
            "map where your {} keeps it under [intake.{}.fields] (runbooks/README.md, HRIS intake)",
            source.name(),
            source.as_str()
        ),
        IntakeError::Config(_) => "see HRIS intake in runbooks/README.md".to_string(),
    };
    CliError::new(Exit::Usage, anyhow::Error::new(e))
        .hint(hint)
        .into()
}

/// Terminations out of what was parsed: a notification naming ids only is fetched (BambooHR
/// with an API key) or refused as incomplete.
fn terminations(
    ctx: &Ctx,
    source: Source,
    cfg: &SourceConfig,
    parsed: Parsed,
) -> Result<Vec<Termination>> {
    match parsed {
        Parsed::Terminations(t) => Ok(t),
        Parsed::Ignored { kind } => {
            ctx.printer.info(format!(
                "{} {}: not a termination; nothing to do",
                source.name(),
                safe(&kind)
            ));
            Ok(Vec::new())
        }
        Parsed::IdsOnly { kind, ids } if source == Source::Bamboohr && cfg.api_key.is_some() => {
            let api = BambooHr::new(cfg).map_err(|e| CliError::new(Exit::Usage, e))?;
            let rt = common::runtime()?;
            let extra = poll::mapped_fields(cfg);
            let mut records = Vec::new();
            for id in &ids {
                records.push(
                    rt.block_on(api.employee(id, &extra))
                        .with_context(|| format!("reading employee {} named by {}", safe(id), safe(&kind)))?,
                );
            }
            hris::terminations(source, &records, cfg).map_err(|e| intake_error(source, e))
        }
        Parsed::IdsOnly { kind, ids } => Err(CliError::new(
            Exit::Usage,
            IntakeError::Incomplete(format!(
                "the {} event {} names employee {} but carries none of the facts a departure needs",
                source.name(),
                safe(&kind),
                safe(&ids.join(", "))
            )),
        )
        .hint(match source {
            Source::Bamboohr => "set company and api_key under [intake.bamboohr] so offboard reads the record, or send a field-based webhook (fields workEmail, terminationDate, terminationType…)".to_string(),
            _ => format!(
                "give offboard the person's {} record (API answer or report row) instead; docs/hris-webhooks.md shows how",
                source.name()
            ),
        })
        .into()),
    }
}

fn optional_runbook(ctx: &Ctx, path: Option<&Path>) -> Result<Option<Runbook>> {
    match path {
        Some(p) => common::load_runbook(ctx, Some(p)).map(Some),
        None if Path::new("offboard.toml").exists() => common::load_runbook(ctx, None).map(Some),
        None => Ok(None),
    }
}

fn sha256(body: &[u8]) -> String {
    format!("sha256:{}", journal::sha256_hex(body))
}

// ---------------------------------------------------------------------------------------------
// intake parse

fn parse(ctx: &Ctx, a: IntakeParseArgs) -> Result<Exit> {
    let runbook = optional_runbook(ctx, a.runbook.runbook.as_deref())?;
    let cfg = config(runbook.as_ref(), a.source)?;
    let body = read_body(&a.file)?;
    let headers = headers(&a.event_auth, a.source)?;
    let authenticated =
        authenticate(a.source, &cfg, &body, &headers)?.map_err(|e| refused(a.source, &e))?;
    let parsed = hris::parse(a.source, &body, &cfg).map_err(|e| intake_error(a.source, e))?;
    let found = terminations(ctx, a.source, &cfg, parsed)?;
    let sha = sha256(&body);
    let p = &ctx.printer;
    p.result(format!(
        "{} event {sha} (authenticated: {authenticated}): {} termination{}",
        a.source.name(),
        found.len(),
        if found.len() == 1 { "" } else { "s" }
    ));
    for t in &found {
        p.result(describe(t));
    }
    p.json_result(&json!({
        "source": a.source,
        "sha256": sha,
        "authenticated": authenticated,
        "terminations": found,
    }));
    Ok(Exit::Ok)
}

fn describe(t: &Termination) -> String {
    let opt = |v: &Option<String>| v.as_deref().map(safe).unwrap_or_else(|| "-".into());
    format!(
        "  {} · {}{} · effective {} · termination date {} · last day {}\n    manager {} · ticket {} · reason {} · event {}",
        safe(&t.work_email),
        t.departure_type.as_str(),
        t.termination_type
            .as_deref()
            .map(|r| format!(" (type {:?})", safe(r)))
            .unwrap_or_default(),
        timestamp(t.effective_at),
        t.termination_date,
        t.last_day
            .map(|d| d.to_string())
            .unwrap_or_else(|| "-".into()),
        opt(&t.manager),
        opt(&t.ticket),
        opt(&t.reason),
        safe(&t.event_id),
    )
}

// ---------------------------------------------------------------------------------------------
// start --from-event

/// What a start from an event passes on to `start`.
#[derive(Debug, Clone, Default)]
struct Launch {
    non_interactive: bool,
    force: bool,
    new: bool,
    no_attach: bool,
}

pub fn start_from_event(ctx: &Ctx, args: StartArgs) -> Result<Exit> {
    let file = args.from_event.clone().expect("--from-event");
    let Some(source) = args.source else {
        return Err(CliError::usage("--from-event needs --source").into());
    };
    let runbook_path = args
        .input
        .runbook
        .runbook
        .clone()
        .unwrap_or_else(|| "offboard.toml".into());
    let runbook = common::load_runbook(ctx, Some(&runbook_path))?;
    let cfg = config(Some(&runbook), source)?;
    let body = read_body(&file)?;
    let sha = sha256(&body);
    let headers = headers(&args.event_auth, source)?;
    // Checked before anything waits, so a delivery is judged at the time it came.
    let checked = authenticate(source, &cfg, &body, &headers)?;
    let intake = Intake::open(&ctx.state)?;
    let authenticated = match checked {
        Ok(a) => a,
        Err(e) => {
            log(&intake, source, None, &sha, "refused", Some(&e.to_string()))?;
            return Err(refused(source, &e));
        }
    };
    let parsed = match hris::parse(source, &body, &cfg) {
        Ok(p) => p,
        Err(e) => {
            log(&intake, source, None, &sha, "invalid", Some(&e.to_string()))?;
            return Err(intake_error(source, e));
        }
    };
    let found = terminations(ctx, source, &cfg, parsed)?;
    if found.is_empty() {
        log(&intake, source, None, &sha, "ignored", None)?;
        ctx.printer.result(format!(
            "{} event {sha}: no termination in it; nothing started",
            source.name()
        ));
        ctx.printer
            .json_result(&json!({"source": source, "sha256": sha, "terminations": []}));
        return Ok(Exit::Ok);
    }
    let runbook_abs = std::path::absolute(&runbook_path)
        .with_context(|| format!("resolving {}", runbook_path.display()))?;
    let opts = Launch {
        non_interactive: args.non_interactive,
        force: args.force,
        new: args.new,
        no_attach: args.attach.no_attach,
    };
    let mut worst = Exit::Ok;
    for t in found {
        let sched = scheduled(
            &runbook,
            &runbook_abs,
            &cfg,
            t,
            &args.input.set,
            &args.input.ticket,
            args.input.legal_hold,
            authenticated,
        );
        worst = worse(worst, accept(ctx, &intake, sched, &sha, &opts)?);
    }
    Ok(worst)
}

/// Everything `start` needs for one termination, kept as is when it is scheduled.
#[allow(clippy::too_many_arguments)]
fn scheduled(
    runbook: &Runbook,
    runbook_abs: &Path,
    cfg: &SourceConfig,
    t: Termination,
    sets: &[String],
    ticket: &Option<String>,
    legal_hold: bool,
    authenticated: &str,
) -> Scheduled {
    let mut sets = sets.to_vec();
    let input = cfg
        .manager_input
        .clone()
        .unwrap_or_else(|| "manager".into());
    if let Some(m) = &t.manager
        && runbook.file.inputs.contains_key(&input)
        && !sets
            .iter()
            .any(|s| s.split_once('=').is_some_and(|(k, _)| k.trim() == input))
    {
        sets.push(format!("{input}={m}"));
    }
    Scheduled {
        ticket: t.ticket.clone().or_else(|| ticket.clone()),
        termination: t,
        runbook: runbook_abs.to_path_buf(),
        sets,
        legal_hold,
        authenticated: authenticated.to_string(),
    }
}

/// One termination: a duplicate, scheduled, or started now.
fn accept(ctx: &Ctx, intake: &Intake, sched: Scheduled, sha: &str, opts: &Launch) -> Result<Exit> {
    let t = &sched.termination;
    let p = &ctx.printer;
    let key = index::key(t.source, &t.event_id);
    // Held until the departure is recorded (or the run ends): the same event delivered twice
    // at once waits here, then finds the first one in the index.
    let _held = intake.lock_event(&key)?;
    // A termination whose date moved replaces the one scheduled before.
    for off in intake.cancel_scheduled(
        t.source,
        &t.employee_id,
        Some(&t.event_id),
        "the HR system now shows another termination date",
    )? {
        called_off(ctx, intake, &off, "its termination date changed")?;
    }
    let index = intake.load()?;
    if let Some(e) = index.events.get(&key).filter(|e| e.cancelled.is_none()) {
        let what = match (&e.departure, &e.scheduled) {
            (Some(d), _) => format!("departure {d}"),
            (None, Some(s)) => format!(
                "a departure scheduled for {}",
                timestamp(s.termination.effective_at)
            ),
            (None, None) => "an earlier delivery".into(),
        };
        log(intake, t.source, Some(&t.event_id), sha, "duplicate", None)?;
        p.result(format!(
            "{} termination {} of {} was already received ({what}); nothing new started",
            t.source.name(),
            safe(&t.event_id),
            safe(&t.work_email)
        ));
        p.json_result(&json!({
            "outcome": "duplicate", "source": t.source, "event_id": t.event_id,
            "departure": e.departure, "sha256": sha,
        }));
        return Ok(Exit::Ok);
    }
    let now = journal::now();
    if t.effective_at > now {
        intake.put(Entry {
            source: t.source,
            event_id: t.event_id.clone(),
            sha256: sha.to_string(),
            recorded_at: timestamp(now),
            departure: None,
            scheduled: Some(sched.clone()),
            cancelled: None,
        })?;
        log(intake, t.source, Some(&t.event_id), sha, "scheduled", None)?;
        p.result(format!(
            "Scheduled: the {} departure of {} takes effect at {}; `offboard intake due` (run it from cron) starts it then, and `offboard status` lists it.",
            t.departure_type.as_str(),
            safe(&t.work_email),
            timestamp(t.effective_at)
        ));
        p.json_result(&json!({
            "outcome": "scheduled", "source": t.source, "event_id": t.event_id,
            "user": t.work_email, "type": t.departure_type,
            "effective_at": timestamp(t.effective_at), "sha256": sha,
        }));
        return Ok(Exit::Ok);
    }
    launch(ctx, intake, &sched, sha, opts, None)
}

/// Start the departure now, through `start`.
fn launch(
    ctx: &Ctx,
    intake: &Intake,
    sched: &Scheduled,
    sha: &str,
    opts: &Launch,
    scheduled_at: Option<String>,
) -> Result<Exit> {
    let t = &sched.termination;
    let args = start_args(sched, opts)?;
    let hook = StartHook {
        intake,
        entry: Entry {
            source: t.source,
            event_id: t.event_id.clone(),
            sha256: sha.to_string(),
            recorded_at: timestamp(journal::now()),
            departure: None,
            scheduled: None,
            cancelled: None,
        },
        reference: IntakeRef {
            source: t.source.as_str().to_string(),
            event_id: t.event_id.clone(),
            sha256: sha.to_string(),
            authenticated: sched.authenticated.clone(),
            scheduled_at,
        },
    };
    super::start::run(ctx, args, Some(&hook))
}

/// The `start` command line the termination amounts to, parsed as `start` parses it.
fn start_args(sched: &Scheduled, opts: &Launch) -> Result<StartArgs> {
    let t = &sched.termination;
    let mut argv: Vec<OsString> = vec![
        "offboard".into(),
        "start".into(),
        "-r".into(),
        sched.runbook.clone().into(),
        "--type".into(),
        t.departure_type.as_str().into(),
        "--effective-at".into(),
        timestamp(t.effective_at).into(),
    ];
    for s in &sched.sets {
        argv.push("--set".into());
        argv.push(s.into());
    }
    if let Some(ticket) = &sched.ticket {
        argv.push("--ticket".into());
        argv.push(ticket.into());
    }
    for (on, flag) in [
        (sched.legal_hold, "--legal-hold"),
        (opts.non_interactive, "--non-interactive"),
        (opts.force, "--force"),
        (opts.new, "--new"),
        (opts.no_attach, "--no-attach"),
    ] {
        if on {
            argv.push(flag.into());
        }
    }
    argv.push("--".into());
    argv.push(t.work_email.clone().into());
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Start(args),
            ..
        }) => Ok(args),
        Ok(_) => unreachable!("the command is start"),
        Err(e) => Err(CliError::usage(format!(
            "the termination of {} does not make a start command: {}",
            safe(&t.work_email),
            e.kind()
        ))
        .into()),
    }
}

/// Say and log that a scheduled departure was called off.
pub(crate) fn called_off(ctx: &Ctx, intake: &Intake, e: &Entry, why: &str) -> Result<()> {
    if let Some(s) = &e.scheduled {
        ctx.printer.warn(format!(
            "called off the departure of {} scheduled for {} ({} event {}): {why}",
            safe(&s.termination.work_email),
            timestamp(s.termination.effective_at),
            e.source.name(),
            safe(&e.event_id)
        ));
    }
    log(
        intake,
        e.source,
        Some(&e.event_id),
        &e.sha256,
        "cancelled",
        Some(why),
    )
}

/// What `start` does with an HR event: stamp it into the departure's facts, and index the
/// event as started once the departure is about to be created.
pub struct StartHook<'a> {
    intake: &'a Intake,
    entry: Entry,
    reference: IntakeRef,
}

impl StartHook<'_> {
    pub fn stamp(&self, facts: &mut DepartureFacts) {
        facts.intake = Some(self.reference.clone());
    }

    pub fn record(&self, departure: &str) -> Result<()> {
        let mut e = self.entry.clone();
        e.departure = Some(departure.to_string());
        self.intake.put(e)?;
        log(
            self.intake,
            self.entry.source,
            Some(&self.entry.event_id),
            &self.entry.sha256,
            "started",
            Some(departure),
        )
    }
}

fn log(
    intake: &Intake,
    source: Source,
    event_id: Option<&str>,
    sha: &str,
    outcome: &str,
    detail: Option<&str>,
) -> Result<()> {
    intake.log(&json!({
        "ts": timestamp(journal::now()),
        "source": source,
        "event_id": event_id,
        "sha256": sha,
        "outcome": outcome,
        "detail": detail,
    }))
}

/// The worse of two exit statuses.
fn worse(a: Exit, b: Exit) -> Exit {
    let rank = |e: Exit| match e {
        Exit::Ok => 0,
        Exit::Drift => 1,
        Exit::Incomplete => 2,
        Exit::Usage => 3,
        Exit::Failure => 4,
        Exit::InvalidEvidence => 5,
        Exit::Interrupted => 6,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Print an error met in a loop (poll, due) and say what it exits with.
fn show(ctx: &Ctx, e: anyhow::Error) -> Exit {
    if let Some(c) = e.downcast_ref::<CliError>() {
        ctx.printer.error(&c.error, &c.hints);
        return c.exit;
    }
    let exit = e
        .chain()
        .find_map(|c| c.downcast_ref::<CliError>().map(|c| c.exit))
        .unwrap_or(Exit::Failure);
    ctx.printer.error(&e, &[]);
    exit
}

// ---------------------------------------------------------------------------------------------
// intake poll

fn poll(ctx: &Ctx, a: IntakePollArgs) -> Result<Exit> {
    if a.source != Source::Bamboohr {
        return Err(CliError::usage(format!(
            "polling {} is not supported: only BambooHR has a changed-since list",
            a.source.name()
        ))
        .hint("receive its webhooks, or feed a report or API record to `offboard start --from-event FILE --source …` (docs/hris-webhooks.md)")
        .into());
    }
    let source = a.source;
    let runbook_path = a
        .runbook
        .runbook
        .clone()
        .unwrap_or_else(|| "offboard.toml".into());
    let runbook = common::load_runbook(ctx, Some(&runbook_path))?;
    let runbook_abs = std::path::absolute(&runbook_path)
        .with_context(|| format!("resolving {}", runbook_path.display()))?;
    let cfg = config(Some(&runbook), source)?;
    let api = BambooHr::new(&cfg).map_err(|e| {
        CliError::new(Exit::Usage, e)
            .hint("polling needs [intake.bamboohr] company (or base_url) and api_key")
    })?;
    let intake = Intake::open(&ctx.state)?;
    let Some(_polling) = intake.try_lock_poll(source)? else {
        return Err(CliError::new(
            Exit::Failure,
            anyhow::anyhow!(
                "another `offboard intake poll --source {}` is running",
                source.as_str()
            ),
        )
        .hint("let it finish; the next run carries on from its cursor")
        .into());
    };
    let since = match &a.since {
        Some(s) => poll::since_param(since_time(s)?),
        None => intake.cursor(source)?.ok_or_else(|| {
            CliError::usage("no poll has run yet, so there is no cursor to start from")
                .hint("the first time, say where to start: `offboard intake poll --source bamboohr --since 2026-11-01`")
        })?,
    };
    let asked_at = journal::now();
    let rt = common::runtime()?;
    let changed = rt.block_on(api.changed(&since))?;
    let p = &ctx.printer;
    p.info(format!(
        "BambooHR: {} employee(s) changed since {}",
        changed.ids.len(),
        safe(&since)
    ));
    let extra = poll::mapped_fields(&cfg);
    let opts = Launch {
        non_interactive: true,
        force: a.force,
        ..Default::default()
    };
    let mut worst = Exit::Ok;
    let mut failed = 0;
    let mut found = 0;
    for id in &changed.ids {
        let record = match rt.block_on(api.employee(id, &extra)) {
            Ok(r) => r,
            Err(e) => {
                worst = worse(
                    worst,
                    show(ctx, e.context(format!("employee {}", safe(id)))),
                );
                failed += 1;
                continue;
            }
        };
        let sha = sha256(journal::canonical_json(&record).as_bytes());
        let t = match hris::termination(source, &record, &cfg) {
            Ok(Some(t)) => t,
            Ok(None) => {
                // No termination any more (rescinded): nothing scheduled for them may start.
                for off in intake.cancel_scheduled(
                    source,
                    id,
                    None,
                    "the HR system no longer shows the termination",
                )? {
                    called_off(
                        ctx,
                        &intake,
                        &off,
                        "BambooHR no longer shows the termination",
                    )?;
                }
                continue;
            }
            Err(e) => {
                log(&intake, source, None, &sha, "invalid", Some(&e.to_string()))?;
                let e = intake_error(source, e).context(format!("employee {}", safe(id)));
                worst = worse(worst, show(ctx, e));
                failed += 1;
                continue;
            }
        };
        found += 1;
        let sched = scheduled(&runbook, &runbook_abs, &cfg, t, &[], &None, false, "api");
        match accept(ctx, &intake, sched, &sha, &opts) {
            Ok(x) => worst = worse(worst, x),
            Err(e) => {
                worst = worse(worst, show(ctx, e));
                failed += 1;
            }
        }
    }
    let cursor = if failed == 0 {
        let next = changed
            .latest
            .clone()
            .unwrap_or_else(|| poll::since_param(asked_at));
        intake.set_cursor(source, &next)?;
        p.info(format!("next poll starts from {}", safe(&next)));
        next
    } else {
        p.warn(format!(
            "{failed} employee(s) could not be handled; the cursor stays at {} so the next poll reads them again (none starts twice)",
            safe(&since)
        ));
        since.clone()
    };
    p.json_result(&json!({
        "source": source, "since": since, "changed": changed.ids.len(),
        "terminations": found, "failed": failed, "cursor": cursor,
    }));
    Ok(worst)
}

fn since_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| {
            CliError::usage(format!("--since {s:?} is not a time"))
                .hint("use YYYY-MM-DD or RFC 3339, e.g. 2026-11-01T00:00:00Z")
                .into()
        })
}

// ---------------------------------------------------------------------------------------------
// intake due

fn due(ctx: &Ctx, a: IntakeDueArgs) -> Result<Exit> {
    let intake = Intake::open(&ctx.state)?;
    let now = journal::now();
    let index = intake.load()?;
    let waiting: Vec<&Entry> = index
        .events
        .values()
        .filter(|e| e.departure.is_none() && e.scheduled.is_some())
        .collect();
    let (due, later): (Vec<&Entry>, Vec<&Entry>) = waiting.into_iter().partition(|e| {
        e.scheduled
            .as_ref()
            .is_some_and(|s| s.termination.effective_at <= now)
    });
    let p = &ctx.printer;
    let next = later
        .iter()
        .filter_map(|e| e.scheduled.as_ref().map(|s| s.termination.effective_at))
        .min();
    if due.is_empty() {
        p.result(format!(
            "Nothing due. {} departure(s) scheduled{}.",
            later.len(),
            next.map(|t| format!(", the next at {}", timestamp(t)))
                .unwrap_or_default()
        ));
        p.json_result(&json!({"started": [], "scheduled": later.len()}));
        return Ok(Exit::Ok);
    }
    let override_rb: Option<PathBuf> = match &a.runbook {
        Some(r) => {
            Some(std::path::absolute(r).with_context(|| format!("resolving {}", r.display()))?)
        }
        None => None,
    };
    let opts = Launch {
        non_interactive: true,
        force: a.force,
        ..Default::default()
    };
    let mut worst = Exit::Ok;
    for e in due {
        let mut sched = e.scheduled.clone().expect("scheduled");
        if let Some(r) = &override_rb {
            sched.runbook = r.clone();
        }
        p.info(format!(
            "Due: the {} departure of {} (effective {}, {} event {})",
            sched.termination.departure_type.as_str(),
            safe(&sched.termination.work_email),
            timestamp(sched.termination.effective_at),
            e.source.name(),
            safe(&e.event_id)
        ));
        let key = index::key(e.source, &e.event_id);
        let _held = intake.lock_event(&key)?;
        // Another due run may have started it meanwhile.
        if intake
            .load()?
            .events
            .get(&key)
            .is_none_or(|now| now.departure.is_some() || now.scheduled.is_none())
        {
            continue;
        }
        match launch(
            ctx,
            &intake,
            &sched,
            &e.sha256,
            &opts,
            Some(e.recorded_at.clone()),
        ) {
            Ok(x) => worst = worse(worst, x),
            Err(err) => worst = worse(worst, show(ctx, err)),
        }
    }
    Ok(worst)
}

/// The departures waiting for their time, for `offboard status`.
pub fn scheduled_list(ctx: &Ctx) -> Result<Vec<Entry>> {
    Ok(index::read(&ctx.state)?
        .events
        .into_values()
        .filter(|e| e.departure.is_none() && e.scheduled.is_some())
        .collect())
}
