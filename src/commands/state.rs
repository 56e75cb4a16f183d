//! `offboard state init|schema|migrate` and `offboard evidence export`: setting up the shared
//! PostgreSQL state, moving departures between a state dir and a database (every chain checked
//! first), and writing stored evidence out for an auditor.

use std::path::Path;

use anyhow::{Context, Result, anyhow};

use super::Ctx;
use crate::cli::StateCommand;
use crate::exit::{CliError, Exit};
use crate::journal::{self, Event, JOURNAL_FILE, Record};
use crate::state::{self, StateDir};
use crate::store::postgres::{Holder, Pg, StoredEvidence, Target};
use crate::ui::safe;

pub fn exec(ctx: &Ctx, cmd: StateCommand) -> Result<Exit> {
    match cmd {
        StateCommand::Init { url } => init(ctx, &url),
        StateCommand::Schema => {
            print!("{}", crate::store::postgres::SCHEMA_SQL);
            Ok(Exit::Ok)
        }
        StateCommand::Migrate { from, to } => migrate(ctx, &from, &to),
    }
}

fn connect(url: &str) -> Result<Pg> {
    let target = Target::parse(url)?;
    Pg::connect(&target).map_err(|e| {
        CliError::new(Exit::Failure, e)
            .hint(format!(
                "check that the database at {} is up and that this login may connect",
                target.display()
            ))
            .into()
    })
}

fn init(ctx: &Ctx, url: &str) -> Result<Exit> {
    let pg = connect(url)?;
    pg.apply_schema().map_err(|e| {
        CliError::new(Exit::Failure, e)
            .hint("`state init` needs a role that may create schemas, tables and roles (the database owner or an administrator); the tool's own role (offboard_tool) may not")
    })?;
    ctx.printer.result(format!(
        "The offboard schema and the roles offboard_tool and offboard_auditor are ready in {}.",
        pg.target().display()
    ));
    ctx.printer.result(
        "Grant them to login roles, e.g. `CREATE ROLE tech LOGIN IN ROLE offboard_tool;` (docs/postgres.md)",
    );
    Ok(Exit::Ok)
}

/// One departure read from a side of a migration, its chain checked.
struct Departure {
    id: String,
    events: Vec<Event>,
    lines: Vec<String>,
    /// (revision, sha256 hex, bytes, signature) for each revision the journal names that was
    /// found.
    evidence: Vec<StoredEvidence>,
    /// Revisions the journal names whose file is not there.
    missing: Vec<u32>,
}

impl Departure {
    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        for l in &self.lines {
            b.extend_from_slice(l.as_bytes());
            b.push(b'\n');
        }
        b
    }
}

/// The revisions a journal records (revision, sha256), in order.
fn written(events: &[Event]) -> Vec<(u32, String)> {
    events
        .iter()
        .filter_map(|e| match &e.record {
            Record::EvidenceWritten {
                revision, sha256, ..
            } => Some((*revision, sha256.clone())),
            _ => None,
        })
        .collect()
}

/// Departures whose chain (or evidence) cannot be trusted, with why.
type Broken = Vec<(String, String)>;

enum Side {
    Dir(StateDir),
    Pg(Pg),
}

impl Side {
    fn open(spec: &str) -> Result<Side> {
        if crate::store::is_postgres(spec) {
            Ok(Side::Pg(connect(spec)?))
        } else {
            Ok(Side::Dir(StateDir::resolve(Some(Path::new(spec)))?))
        }
    }

    fn name(&self) -> String {
        match self {
            Side::Dir(st) => st.root().display().to_string(),
            Side::Pg(pg) => pg.target().display(),
        }
    }

    /// Every departure, each with its chain checked; the broken ones apart, with why.
    fn read_all(&self) -> Result<(Vec<Departure>, Broken)> {
        let mut good = Vec::new();
        let mut broken = Vec::new();
        match self {
            Side::Dir(st) => {
                for id in st.departure_ids()? {
                    let path = st.journal_path(&id);
                    let bytes = state::read_nofollow(&path)
                        .map_err(|e| state::nofollow_error(e, &path))
                        .with_context(|| format!("reading {}", path.display()))?;
                    let events = match journal::parse_chain(&bytes) {
                        Ok(e) => e,
                        Err(e) => {
                            broken.push((id, e.to_string()));
                            continue;
                        }
                    };
                    let lines = String::from_utf8_lossy(&bytes)
                        .lines()
                        .map(str::to_string)
                        .collect();
                    let dir = st.departure_dir(&id);
                    let revisions = written(&events);
                    let last = revisions.last().map(|(r, _)| *r);
                    let mut evidence = Vec::new();
                    let mut missing = Vec::new();
                    for (rev, sha) in revisions {
                        let json = if Some(rev) == last {
                            dir.join(format!("{id}.json"))
                        } else {
                            dir.join(format!("{id}.rev{rev}.json"))
                        };
                        let (Ok(body), Ok(sig)) = (
                            state::read_nofollow(&json),
                            state::read_nofollow(&crate::evidence::sig_path(&json)),
                        ) else {
                            missing.push(rev);
                            continue;
                        };
                        if journal::sha256_hex(&body) != sha {
                            broken.push((
                                id.clone(),
                                format!(
                                    "evidence revision {rev} ({}) is not the file its journal recorded (sha256 differs)",
                                    json.display()
                                ),
                            ));
                            continue;
                        }
                        evidence.push((rev, sha, body, String::from_utf8_lossy(&sig).into_owned()));
                    }
                    good.push(Departure {
                        id,
                        events,
                        lines,
                        evidence,
                        missing,
                    });
                }
            }
            Side::Pg(pg) => {
                for (id, _) in pg.departures()? {
                    let rows = pg.events(&id)?;
                    let mut bytes = Vec::new();
                    for (_, line, _) in &rows {
                        bytes.extend_from_slice(line.as_bytes());
                        bytes.push(b'\n');
                    }
                    let events = match journal::parse_chain(&bytes) {
                        Ok(e) => e,
                        Err(e) => {
                            broken.push((id, e.to_string()));
                            continue;
                        }
                    };
                    // The columns must say what the lines say.
                    if let Some(((seq, _, _), _)) = rows
                        .iter()
                        .zip(&events)
                        .find(|((seq, _, hash), e)| *seq != e.seq || *hash != e.hash)
                    {
                        broken.push((
                            id,
                            format!("row seq {seq}: its seq or hash column differs from its line"),
                        ));
                        continue;
                    }
                    let stored = pg.evidence(&id)?;
                    let mut evidence = Vec::new();
                    let mut missing = Vec::new();
                    for (rev, sha) in written(&events) {
                        match stored.iter().find(|(_, s, _, _)| *s == sha) {
                            Some((_, _, body, sig)) if journal::sha256_hex(body) == sha => {
                                evidence.push((rev, sha, body.clone(), sig.clone()))
                            }
                            Some(_) => broken.push((
                                id.clone(),
                                format!("evidence revision {rev}: stored bytes do not match their sha256"),
                            )),
                            None => missing.push(rev),
                        }
                    }
                    let lines = rows.into_iter().map(|(_, l, _)| l).collect();
                    good.push(Departure {
                        id,
                        events,
                        lines,
                        evidence,
                        missing,
                    });
                }
            }
        }
        Ok((good, broken))
    }

    /// Write a departure here; returns how many events were new. What is already here must be
    /// the start of the same journal.
    fn write(&self, d: &Departure) -> Result<usize> {
        match self {
            Side::Dir(st) => {
                let dir = st.departure_dir(&d.id);
                state::create_private_dir(&st.departures_dir())?;
                let _lock = state::DepartureLock::acquire(&dir)?;
                let path = dir.join(JOURNAL_FILE);
                let have = state::read_nofollow(&path).unwrap_or_default();
                let want = d.bytes();
                if !want.starts_with(&have) {
                    return Err(conflict(&d.id, &st.root().display().to_string()));
                }
                let have_lines = have.iter().filter(|&&b| b == b'\n').count();
                let last = d.evidence.last().map(|(r, ..)| *r);
                for (rev, _, body, sig) in &d.evidence {
                    let json = if Some(*rev) == last {
                        dir.join(format!("{}.json", d.id))
                    } else {
                        dir.join(format!("{}.rev{rev}.json", d.id))
                    };
                    if state::read_nofollow(&json).ok().as_deref() != Some(&body[..]) {
                        state::write_atomic(&json, body)?;
                    }
                    let sig_path = crate::evidence::sig_path(&json);
                    if state::read_nofollow(&sig_path).ok().as_deref() != Some(sig.as_bytes()) {
                        state::write_atomic(&sig_path, sig.as_bytes())?;
                    }
                }
                if have != want {
                    state::write_atomic(&path, &want)?;
                }
                Ok(d.lines.len() - have_lines)
            }
            Side::Pg(pg) => {
                let holder = Holder {
                    host: gethostname::gethostname().to_string_lossy().into_owned(),
                    pid: std::process::id(),
                    operator: format!("state migrate ({})", journal::local_actor()),
                    since: journal::timestamp(journal::now()),
                };
                if let Some(other) = pg.try_lock(&d.id, &holder)? {
                    return Err(CliError::new(
                        Exit::Failure,
                        anyhow!("departure {} is being run by {other}", d.id),
                    )
                    .hint("run the migration again when that run has ended")
                    .into());
                }
                let result = (|| -> Result<usize> {
                    let have = pg.events(&d.id)?;
                    if have.len() > d.lines.len()
                        || have.iter().zip(&d.lines).any(|((_, l, _), want)| l != want)
                    {
                        return Err(conflict(&d.id, &pg.target().display()));
                    }
                    for (event, line) in d.events.iter().zip(&d.lines).skip(have.len()) {
                        pg.append(&d.id, event, line)?;
                    }
                    for (rev, _, body, sig) in &d.evidence {
                        pg.put_evidence(&d.id, *rev, body, sig.as_bytes())?;
                    }
                    Ok(d.lines.len() - have.len())
                })();
                let _ = pg.unlock(&d.id, &holder);
                result
            }
        }
    }
}

fn conflict(id: &str, dest: &str) -> anyhow::Error {
    CliError::new(
        Exit::InvalidEvidence,
        anyhow!(
            "departure {id} is already in {dest} with a different journal: the two copies have diverged"
        ),
    )
    .hint("nothing of this departure was written; compare both journals (`offboard status`, `offboard evidence verify`) before deciding which one is the record")
    .into()
}

fn migrate(ctx: &Ctx, from: &str, to: &str) -> Result<Exit> {
    let p = &ctx.printer;
    let src = Side::open(from)?;
    let dst = Side::open(to)?;
    let (departures, broken) = src.read_all()?;
    if !broken.is_empty() {
        let mut err = CliError::new(
            Exit::InvalidEvidence,
            anyhow!(
                "{} departure(s) in {} cannot be trusted; nothing was migrated",
                broken.len(),
                src.name()
            ),
        );
        for (id, why) in &broken {
            err = err.hint(format!("{id}: {}", safe(why)));
        }
        return Err(err
            .hint("find out what happened to those journals first; `offboard status <id>` explains each")
            .into());
    }
    let (mut new_events, mut touched) = (0, 0);
    for d in &departures {
        for rev in &d.missing {
            p.warn(format!(
                "departure {}: evidence revision {rev} is missing in {}; the journal still records its sha256",
                d.id,
                src.name()
            ));
        }
        let n = dst.write(d)?;
        if n > 0 {
            touched += 1;
        }
        new_events += n;
    }
    p.result(format!(
        "Migrated {} departure(s) from {} to {}: {new_events} new event(s) in {touched} departure(s), every chain checked.",
        departures.len(),
        src.name(),
        dst.name()
    ));
    if ctx.global.json {
        p.json_result(&serde_json::json!({
            "departures": departures.len(),
            "new_events": new_events,
            "changed": touched,
        }));
    }
    Ok(Exit::Ok)
}

/// `offboard evidence export <DEP> --out DIR`: every evidence revision its journal records,
/// from the shared database when the state is there, else from the state dir.
pub fn export_evidence(ctx: &Ctx, wanted: &str, out: &Path) -> Result<Exit> {
    let p = &ctx.printer;
    let (id, events) = super::common::find_departure(ctx, wanted)?;
    let revisions = written(&events);
    if revisions.is_empty() {
        return Err(CliError::new(
            Exit::Failure,
            anyhow!("departure {id} has no signed evidence yet"),
        )
        .hint(format!(
            "evidence is signed at the end of every run: `offboard resume {id}` signs it"
        ))
        .into());
    }
    let stored: Vec<StoredEvidence> = match crate::store::shared() {
        Some(shared) => shared.pg.evidence(&id)?,
        None => {
            let dir = ctx.state.departure_dir(&id);
            let last = revisions.last().map(|(r, _)| *r);
            revisions
                .iter()
                .filter_map(|(rev, _)| {
                    let json = if Some(*rev) == last {
                        dir.join(format!("{id}.json"))
                    } else {
                        dir.join(format!("{id}.rev{rev}.json"))
                    };
                    let body = state::read_nofollow(&json).ok()?;
                    let sig = state::read_nofollow(&crate::evidence::sig_path(&json)).ok()?;
                    Some((
                        *rev,
                        journal::sha256_hex(&body),
                        body,
                        String::from_utf8_lossy(&sig).into_owned(),
                    ))
                })
                .collect()
        }
    };
    let last = revisions.last().map(|(r, _)| *r);
    let mut written_files = Vec::new();
    for (rev, sha) in &revisions {
        let Some((_, _, body, sig)) = stored.iter().find(|(_, s, _, _)| s == sha) else {
            return Err(CliError::new(
                Exit::InvalidEvidence,
                anyhow!("evidence revision {rev} of {id} (sha256 {sha}) is not stored"),
            )
            .hint("nothing is exported without every revision its journal records; earlier files written stay")
            .into());
        };
        if journal::sha256_hex(body) != *sha {
            return Err(CliError::new(
                Exit::InvalidEvidence,
                anyhow!(
                    "the stored evidence revision {rev} of {id} is not what its journal recorded"
                ),
            )
            .into());
        }
        let name = if Some(*rev) == last {
            format!("{id}.json")
        } else {
            format!("{id}.rev{rev}.json")
        };
        let json = out.join(&name);
        state::write_atomic(&json, body)?;
        state::write_atomic(&crate::evidence::sig_path(&json), sig.as_bytes())?;
        written_files.push(json);
    }
    p.result(format!(
        "Exported {} evidence revision(s) of departure {id} into {}:",
        written_files.len(),
        out.display()
    ));
    for f in &written_files {
        p.result(format!("  {}  (+ .sig)", f.display()));
    }
    p.result(format!(
        "Check one with OpenSSH alone:\n  ssh-keygen -Y verify -f allowed_signers -I <principal> -n offboard-evidence -s {0}.sig < {0}",
        out.join(format!("{id}.json")).display()
    ));
    Ok(Exit::Ok)
}
