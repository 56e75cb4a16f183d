//! Command-line definitions. Parsing only: every command's behaviour lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::departure::DepartureType;

const AFTER_HELP: &str = "\
Exit codes:
  0  done (verify: no drift; evidence verify: valid)
  1  runtime failure
  2  bad usage, invalid runbook or input
  3  departure incomplete (steps failed or still pending)
  4  verify found drift (access came back)
  5  evidence invalid (bad signature, broken chain, tampered, signer not trusted)

Start here:
  offboard demo                         a whole departure against the built-in sandbox
  offboard runbook check offboard.toml  validate your runbook
  offboard plan alice@corp.example      see what would happen, with no side effects";

/// Take a person out of an organisation safely: cut access everywhere, track every manual
/// task to a named owner, and leave signed evidence an auditor can check years later.
#[derive(Debug, Parser)]
#[command(name = "offboard", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Where departures, journals, evidence and the signing key live
    /// [default: ~/.local/state/offboard]
    #[arg(
        long,
        global = true,
        env = "OFFBOARD_STATE_DIR",
        hide_env_values = true,
        value_name = "DIR"
    )]
    pub state_dir: Option<PathBuf>,

    /// The OpenSSH Ed25519 private key that signs evidence
    /// [default: <state-dir>/keys/offboard_ed25519, created on first use]
    #[arg(
        long,
        global = true,
        env = "OFFBOARD_SIGNING_KEY",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub key: Option<PathBuf>,

    /// Print machine-readable JSON on stdout (human text and progress go to stderr)
    #[arg(long, global = true)]
    pub json: bool,

    /// Print only errors and the final result
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail (repeat for debug logs)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// When to use colours (NO_COLOR is honoured)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Keep departures in a shared PostgreSQL database instead: postgres://USER@HOST/DB
    /// [?sslmode=verify-full&sslrootcert=CA.pem&password_env=NAME]; the password only by
    /// reference (password_env, PGPASSWORD, ~/.pgpass). Keys stay in --state-dir. Without it
    /// (or OFFBOARD_STATE): the runbook's [state] table, if any (docs/postgres.md)
    #[arg(
        long,
        global = true,
        env = "OFFBOARD_STATE",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub state: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plan, then run a departure: automated steps concurrently, manual steps as a checklist
    #[command(after_help = START_HELP)]
    Start(StartArgs),

    /// Show what `start` would do, with no side effects and no network
    #[command(
        after_help = "Examples:\n  offboard plan alice@corp.example -r offboard.toml --type voluntary\n  offboard plan alice@corp.example --check    # also run the preflight\n  offboard plan alice@corp.example --type involuntary --out plan.json   # for `offboard approve`\n\nWith --out, the plan is also written as a file to approve (four-eyes): its digest covers the\ndeparture facts, every step's system, action and parameters, and the runbook's sha256\n(docs/approvals.md)."
    )]
    Plan(PlanArgs),

    /// Approve a plan file in a role (four-eyes): sign its digest with your SSH key
    #[command(after_help = APPROVE_HELP)]
    Approve(ApproveArgs),

    /// Undo a departure from its journal: a reverse plan to approve and run
    #[command(after_help = ROLLBACK_HELP)]
    Rollback(RollbackArgs),

    /// Before cutting anything: resolve every secret and ask every system, read-only, about the person
    #[command(
        after_help = "Example:\n  offboard preflight alice@corp.example -r offboard.toml\n\nFor each automated step: the system's secrets resolve, its credentials work, and the\nperson is found (rights are checked where the API can tell). Nothing is changed and no\ndeparture is recorded. `start` runs the same preflight first and cuts nothing if it finds a\nproblem, unless --force. Exits 0 when every look succeeded, 1 otherwise."
    )]
    Preflight(PlanArgs),

    /// Continue an interrupted departure from its journal; never repeats a completed step
    #[command(
        after_help = "Examples:\n  offboard resume alice@corp.example\n  offboard resume --from people.csv     # the batch `start --from people.csv` began\n  offboard resume alice@corp.example --legal-hold --reason \"litigation hold, matter 2026-114\"\n\nA step that was being applied when the run stopped is re-checked first and re-applied only\nif its check says access still exists."
    )]
    Resume(ResumeArgs),

    /// Record a manual step done later, by its owner, and re-sign the evidence
    #[command(
        after_help = "Example:\n  offboard confirm alice@corp.example laptop-returned --field tracking_number=1Z999 --note \"via courier\" --by \"Sam Lee\""
    )]
    Confirm(ConfirmArgs),

    /// Place a legal hold on an open departure: its destructive steps wait for `release`
    #[command(
        after_help = "Example:\n  offboard hold alice@corp.example --reason \"litigation hold, matter 2026-114 (legal@corp.example)\"\n\nThe hold is journaled with who placed it and why, shown by `offboard status`, and recorded in\nthe evidence with every step it blocks (delete user, wipe data, delete mailbox). Steps\nalready done stay done. Lift it with `offboard release`."
    )]
    Hold(HoldArgs),

    /// Lift the legal hold on a departure; the steps it blocked run at the next `resume`
    #[command(
        after_help = "Example:\n  offboard release alice@corp.example --reason \"matter 2026-114 closed (legal@corp.example)\"\n  offboard resume alice@corp.example     # now runs the destructive steps the hold blocked"
    )]
    Release(HoldArgs),

    /// List departures, or show one departure's lanes and steps
    #[command(after_help = "Examples:\n  offboard status\n  offboard status alice@corp.example")]
    Status(StatusArgs),

    /// Re-run every automated step's check against the live systems and report drift
    #[command(
        after_help = "Examples:\n  offboard verify alice@corp.example\n  offboard verify ./20261123-alice-corp-example-3f9a.json\n  offboard verify --all --since 90d -r offboard.toml    # the nightly drift sweep\n\nExit 0: every revocation holds; 4: access came back; 3: a check could not run.\n\nWith --all, every departure whose run has ended is re-checked (one being driven right now is\nleft for the next sweep); each result is journaled, and a departure whose result changed\n(drift found or gone, a check failing or back) gets a new signed evidence revision. Drift is\nsent through the runbook's [notify] table (email to `drift_to`, the webhooks, the ticket).\ndocs/scheduling.md has ready-to-copy systemd, cron and Kubernetes units."
    )]
    Verify(VerifyArgs),

    /// Attach the latest evidence to the departure's service desk ticket, with a note
    #[command(after_help = ATTACH_HELP)]
    Attach(AttachArgs),

    /// Metrics over the departures: time to revocation, open tasks, assets, drift, holds
    #[command(after_help = REPORT_HELP)]
    Report(ReportArgs),
    /// Remind owners of due and overdue manual steps; escalate those 48 h overdue
    #[command(after_help = REMIND_HELP)]
    Remind(RemindArgs),

    /// Check, show or bundle signed evidence
    #[command(subcommand)]
    Evidence(EvidenceCommand),

    /// Set up the shared PostgreSQL state, or move departures between a state dir and it
    #[command(subcommand)]
    State(StateCommand),

    /// Validate a runbook or print its JSON Schema
    #[command(subcommand)]
    Runbook(RunbookCommand),

    /// Make or show the evidence signing key
    #[command(subcommand)]
    Keys(KeysCommand),

    /// Departures from the HR system: read an event, poll for new ones, start scheduled ones
    #[command(subcommand, after_help = INTAKE_HELP)]
    Intake(IntakeCommand),

    /// Run a whole departure against the built-in sandbox (no accounts, no credentials)
    #[command(
        after_help = "Example:\n  offboard demo\n  offboard demo --non-interactive   # manual steps stay pending, exit 3"
    )]
    Demo(DemoArgs),

    /// Print a shell completion script
    #[command(
        after_help = "Example:\n  offboard completions bash > /etc/bash_completion.d/offboard"
    )]
    Completions {
        /// The shell to generate for
        shell: clap_complete::Shell,
    },
}

const APPROVE_HELP: &str = "\
Examples:
  offboard approve plan.json --role security --key ~/.ssh/id_ed25519
  offboard approve plan.json --role hr --key ~/.ssh/hr_ed25519

Prints who leaves, how, and the destructive steps, then signs the plan's digest (SSHSIG,
namespace offboard-approval) with the key given by --key and writes plan.json.<role>.sig
beside the plan (0600). The key must be an unencrypted OpenSSH Ed25519 key listed in the
runbook's [approvals] allowed_signers file with a principal `<role>:<name>`. Anyone can check
a signature with OpenSSH alone:
  offboard approve plan.json --role security --message |
    ssh-keygen -Y verify -f approvers -I security:carol@corp.example -n offboard-approval \\
      -s plan.json.security.sig
`offboard start --plan plan.json` runs the plan; steps whose approvals are missing wait, and
`offboard resume` runs them once the approval is there. See docs/approvals.md.";

const START_HELP: &str = "\
Examples:
  offboard start alice@corp.example -r offboard.toml --type involuntary --set manager=bob@corp.example
  offboard start --plan plan.json      # an approved plan (offboard plan --out, offboard approve)
  offboard start --from people.csv -r offboard.toml --parallel 16

--from runs one departure per row of a CSV file (a header row, then one person a line):
  user,type,effective_at,ticket,manager
  alice@corp.example,involuntary,,HR-1201,bob@corp.example
  carol@corp.example,voluntary,2026-12-01T17:00:00Z,HR-1202,dan@corp.example
Columns: user (required); type, effective_at, ticket and any input the runbook declares
under [inputs] (optional; an empty cell takes the flag's value or the input's default).
Every line is checked before anything runs: one bad line and nothing starts (exit 2).
Involuntary rows are cut first; all departures share each system's max_concurrency and
rate_limit. Manual steps stay pending and are listed per owner at the end. Ctrl-C stops
cleanly; `offboard resume --from people.csv` continues the batch. With --json, stdout is a
JSON Lines event stream (one event per step outcome and per departure end).";
const REMIND_HELP: &str = "\
Examples:
  offboard remind --dry-run -r offboard.toml    # who would be told what, sending nothing
  offboard remind -r offboard.toml              # from cron or a systemd timer, e.g. hourly

Over every open departure in the state dir: each manual step not yet confirmed whose deadline
is within `due_within` (default 24h) or past is sent to its owner; once it is overdue by
`escalate_after` (default 48h) its `escalate_to` is told too. Channels come from the runbook's
[notify] table: email (to recipients that are addresses), Slack and Teams webhooks, and a
note on the departure's ticket. Each send is journaled in the departure's journal; the same
reminder (person, channel, step) is not sent again within `interval` (default 24h), and a
failed send is tried again at the next run. Exit 0 when every send succeeded, 1 if one failed.
docs/scheduling.md has ready-to-copy systemd, cron and Kubernetes units.";
const INTAKE_HELP: &str = "\
Examples:
  offboard intake parse --source bamboohr webhook.json --headers headers.txt
  offboard start --from-event webhook.json --source bamboohr --headers headers.txt
  offboard intake poll --source bamboohr              # from cron, every 15 minutes
  offboard intake due                                 # from cron: start what is due

An event becomes one departure per termination: the person's work email, the termination date
(at [intake.<source>] cut_at, in utc_offset) as the effective time, voluntary or involuntary
from the termination type, the manager and the ticket. Where each fact is, and which types mean
what, is the runbook's [intake.<source>] table (see runbooks/README.md, HRIS intake). The same
termination (employee id and date) never starts twice, however often it arrives. One whose
effective time is ahead is recorded as scheduled (shown by `offboard status`) and started by
`offboard intake due`. Signatures: BambooHR hex HMAC-SHA256 of body then timestamp, with a
replay window; HiBob base64 HMAC-SHA512 of the body; Personio and Rippling sign nothing and
send a static token; Workday sends neither. A refused delivery starts nothing (exit 1).
Receiving webhooks with your web server: docs/hris-webhooks.md.";

const ATTACH_HELP: &str = "\
Examples:
  offboard attach alice@corp.example                 # to the ticket given with `start --ticket`
  offboard attach alice@corp.example --ticket 4711

The service desk is the runbook's [ticketing] table (as it was when the departure started; -r
names a runbook whose [ticketing] to use instead). Uploaded: the evidence bundle (<id>-r<N>.json,
the latest signed evidence; its .sig; allowed_signers; the <id>-r<N>.html page and
<id>-r<N>.VERIFY.txt), with an internal note saying what is done, open and
overdue, the time to revocation, who ran it and the evidence sha256. Files already on the ticket
(same name and content) are not uploaded again. With close_status, the ticket is closed once the
departure is complete. A failure is journaled as pending; run the command again to retry.
start, resume, confirm and verify attach by themselves when the runbook has [ticketing]
(--no-attach skips it).";

const REPORT_HELP: &str = "\
Examples:
  offboard report                                   # tables, every departure
  offboard report --since 2026-10-01 --sla 30m
  offboard report --since 90d --format html -o report.html
  offboard report --format csv -o departures.csv    # one row per departure

Time to revocation runs from a departure's effective time to the moment every automated cut
step was confirmed revoked by a run (start or resume); p50/p90 are nearest-rank percentiles.
Overdue is counted now (OFFBOARD_NOW in tests). Each journal's hash chain is checked; a damaged
one is listed and counted in nothing else. The HTML page is self-contained (no script, nothing
fetched). --json is --format json. README.md (\"Reports\") documents every field.";

/// How `report` renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
    Html,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Only departures effective at or after DATE: 2026-11-01 (midnight UTC), an RFC 3339
    /// time, or a span back from now such as 90d
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// table (for a person), json, csv (one row per departure) or html (one page with charts)
    /// [default: table, json with --json]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<ReportFormat>,
    /// The time-to-revocation target: 1h, 30m, 4h, 1d, 1h30m…
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub sla: String,
    /// Write the report to FILE (atomically, mode 0600) instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Skip the automatic attach to the service desk ticket.
#[derive(Debug, Clone, Default, Args)]
pub struct NoAttachArg {
    /// Do not attach the evidence to the service desk ticket at the end (the runbook's
    /// [ticketing]); `offboard attach` does it later
    #[arg(long)]
    pub no_attach: bool,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Departure id, or the user whose latest departure is meant
    pub departure: String,
    /// The ticket [default: the one given with `start --ticket`]
    #[arg(long, value_name = "ID")]
    pub ticket: Option<String>,
    /// Use this runbook's [ticketing] instead of the one the departure started with
    #[arg(short, long, value_name = "FILE")]
    pub runbook: Option<PathBuf>,
    #[command(flatten)]
    pub operator: OperatorArg,
}

#[derive(Debug, Clone, Args)]
pub struct RunbookArg {
    /// The runbook (TOML) [default: $OFFBOARD_RUNBOOK, else ./offboard.toml]
    #[arg(
        short,
        long,
        env = "OFFBOARD_RUNBOOK",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub runbook: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct DepartureInput {
    /// The person leaving: an email address or a login (omitted with `start --from` or
    /// `--from-event`)
    #[arg(value_name = "USER")]
    pub user: Option<String>,

    #[command(flatten)]
    pub runbook: RunbookArg,

    /// Kind of departure; involuntary cuts access before anything could alert the person
    #[arg(long = "type", value_enum, default_value_t = DepartureType::Voluntary, value_name = "TYPE")]
    pub departure_type: DepartureType,

    /// When the departure takes effect (RFC 3339, e.g. 2026-11-30T17:00:00Z) [default: now].
    /// Deadlines count from it; `start` waits for it (up to 24 hours) before cutting access
    #[arg(long, value_name = "TIME")]
    pub effective_at: Option<String>,

    /// A departure fact the runbook declares under [inputs] (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// The PSA / service desk ticket this departure belongs to
    #[arg(long, value_name = "ID")]
    pub ticket: Option<String>,

    /// Block every destructive step (delete user, wipe data); the evidence records each one
    #[arg(long)]
    pub legal_hold: bool,
}

/// Who is acting, as a person.
#[derive(Debug, Clone, Default, Args)]
pub struct OperatorArg {
    /// Your name, recorded in the journal and the evidence beside the login (e.g. "Jane Doe" is
    /// kept as "Jane Doe (root@host)") [default: $OFFBOARD_OPERATOR, else the login alone]
    #[arg(
        long = "by",
        env = "OFFBOARD_OPERATOR",
        hide_env = true,
        value_name = "NAME",
        value_parser = parse_operator
    )]
    pub by: Option<String>,
}

/// A person's name: not empty, one line, no control characters, at most 100 characters.
fn parse_operator(s: &str) -> Result<String, String> {
    let name = s.trim();
    if name.is_empty() {
        return Err("the name is empty; give the person's name, e.g. --by \"Jane Doe\"".into());
    }
    if name.chars().any(char::is_control) {
        return Err("the name contains a control character (a line break, a tab…)".into());
    }
    if name.chars().count() > 100 {
        return Err("the name is longer than 100 characters".into());
    }
    Ok(name.to_string())
}

impl Command {
    /// The `--by` (or `OFFBOARD_OPERATOR`) of a command that records who acted.
    pub fn operator(&self) -> Option<&str> {
        match self {
            Command::Start(a) => a.operator.by.as_deref(),
            Command::Resume(a) => a.operator.by.as_deref(),
            Command::Confirm(a) => a.operator.by.as_deref(),
            Command::Verify(a) => a.operator.by.as_deref(),
            Command::Hold(a) | Command::Release(a) => a.operator.by.as_deref(),
            Command::Attach(a) => a.operator.by.as_deref(),
            Command::Remind(a) => a.operator.by.as_deref(),
            _ => None,
        }
    }

    /// Whether the command attaches the evidence to the ticket at its end (unless `--no-attach`).
    pub fn auto_attach(&self) -> bool {
        match self {
            Command::Start(a) => !a.attach.no_attach,
            Command::Resume(a) => !a.attach.no_attach,
            Command::Confirm(a) => !a.attach.no_attach,
            Command::Verify(a) => !a.attach.no_attach,
            Command::Intake(IntakeCommand::Poll(_) | IntakeCommand::Due(_)) => true,
            _ => false,
        }
    }
}

#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    pub input: DepartureInput,

    #[command(flatten)]
    pub operator: OperatorArg,

    /// Do not prompt: manual steps stay pending with their owner and deadline (exit 3)
    #[arg(long)]
    pub non_interactive: bool,

    /// Show the plan and stop (same as `offboard plan`)
    #[arg(long)]
    pub dry_run: bool,

    /// Cut access even when the preflight finds a problem (an unreachable system, a person
    /// not found); the affected steps then fail and are recorded
    #[arg(long)]
    pub force: bool,

    /// Start a second departure although the person has one still open under this runbook
    /// (the new one records the open one as its predecessor)
    #[arg(long)]
    pub new: bool,

    /// Offboard everyone in this CSV file, one departure per row (see below); the other options
    /// are defaults for every row
    #[arg(long, value_name = "CSV", conflicts_with = "dry_run")]
    pub from: Option<PathBuf>,

    /// With --from: how many departures run at once (each system's max_concurrency and
    /// rate_limit hold across all of them)
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=512))]
    pub parallel: u16,

    /// Start (or schedule) the departure an HR termination event describes: a webhook body, an
    /// API record or a report (`-` reads stdin); see `offboard intake --help`
    #[arg(long, value_name = "FILE", requires = "source", conflicts_with_all = ["user", "dry_run", "effective_at", "departure_type", "from"])]
    pub from_event: Option<PathBuf>,

    /// Run an approved plan file (`offboard plan --out`, `offboard approve`): the plan is made
    /// again from its runbook and inputs and must hash to the approved digest; steps whose
    /// required approvals are missing wait (skipped) until `offboard resume` finds them. A
    /// rollback plan (`offboard rollback --out`) runs against its departure, refused if the
    /// departure's journal changed since it was made
    #[arg(long, value_name = "PLAN", conflicts_with_all = ["user", "from", "from_event", "dry_run", "effective_at", "set", "ticket", "runbook", "legal_hold"])]
    pub plan: Option<PathBuf>,

    /// With --from-event: the HR system it came from
    #[arg(long, value_enum, value_name = "HRIS", requires = "from_event")]
    pub source: Option<crate::intake::Source>,

    #[command(flatten)]
    pub event_auth: EventAuth,

    #[command(flatten)]
    pub attach: NoAttachArg,
}

/// How a webhook delivery proves where it came from (checked against the runbook's
/// `[intake.<source>]` secret).
#[derive(Debug, Clone, Default, Args)]
pub struct EventAuth {
    /// The delivery's signature header value: BambooHR `X-BambooHR-Signature`, HiBob
    /// `Bob-Signature`; for Personio and Rippling (no signature, a static token) the
    /// `Authorization` value. Prefer --headers: a command line is visible to other users
    #[arg(long, value_name = "VALUE")]
    pub signature: Option<String>,

    /// BambooHR: the `X-BambooHR-Timestamp` header value (epoch seconds)
    #[arg(long, value_name = "EPOCH")]
    pub timestamp: Option<String>,

    /// A file holding the delivery's request headers, one `Name: value` a line
    #[arg(long, value_name = "FILE")]
    pub headers: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub input: DepartureInput,

    /// After the plan, run the preflight (read-only calls to every system), as
    /// `offboard preflight` does
    #[arg(long)]
    pub check: bool,

    /// Also write the plan, with its digest, to this file for `offboard approve` and
    /// `offboard start --plan` (atomically, 0600)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The plan file written by `offboard plan --out`
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,

    /// The role you approve in
    #[arg(long, value_enum, value_name = "ROLE")]
    pub role: crate::approval::Role,

    /// Print the exact message the signature covers (for `ssh-keygen -Y verify`) and stop
    #[arg(long)]
    pub message: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Departure id, or the user whose latest departure is meant
    pub departure: String,

    /// Write the rollback plan, with its digest, to this file for `offboard approve` and
    /// `offboard start --plan` (atomically, 0600)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// The runbook whose [approvals] say who approves the rollback (default: the one the
    /// departure was started with)
    #[arg(short, long, value_name = "RUNBOOK")]
    pub runbook: Option<PathBuf>,
}

const ROLLBACK_HELP: &str = "Examples:
  offboard rollback alice@corp.example --out rollback.json
  offboard approve rollback.json --role security --key ~/.ssh/id_ed25519   # if [approvals] rollback asks
  offboard start --plan rollback.json
  offboard resume alice@corp.example        # continues a rollback that was cut off

From the departure's journal: first every step still open is cancelled (no later run takes it
up), then, newest first, every applied step is undone: restored to the pre-state its apply
recorded (a suspended account re-enabled, groups re-added by id), or marked not restorable
with why (a deleted user, a wiped device, a rotated secret, a sent notice, nothing recorded);
done manual steps are listed for their owner to undo by hand. The plan's digest covers the
departure, its journal's head and every undo step: `start --plan` refuses it once the journal
has changed. The rollback is journaled in the same departure and sealed in a new evidence
revision (before, after, restored or not and why). Exit 0 when every restore is back, 3 when
one failed or waits for an approval. A departure the HR intake only scheduled (not yet
started) is called off instead. docs/rollback.md says what each kind restores.";

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Departure id, or the user whose latest departure is meant
    #[arg(required_unless_present_any = ["from", "batch"], conflicts_with_all = ["from", "batch"])]
    pub departure: Option<String>,
    /// Continue the batch started with `start --from CSV`: unfinished departures resume,
    /// finished ones are skipped, rows not yet started start
    #[arg(long, value_name = "CSV", conflicts_with = "batch")]
    pub from: Option<PathBuf>,
    /// Continue the batch with this id (printed by `start --from`)
    #[arg(long, value_name = "ID")]
    pub batch: Option<String>,
    /// With --from or --batch: how many departures run at once
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=512))]
    pub parallel: u16,
    /// Do not prompt: manual steps stay pending (exit 3)
    #[arg(long)]
    pub non_interactive: bool,
    /// Place a legal hold before running (as `offboard hold` does): destructive steps are blocked
    #[arg(long, requires = "reason")]
    pub legal_hold: bool,
    /// Why the legal hold is placed (journaled with who placed it)
    #[arg(long, value_name = "TEXT", requires = "legal_hold")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub operator: OperatorArg,
    #[command(flatten)]
    pub attach: NoAttachArg,
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    /// Departure id, or the user whose latest departure is meant
    pub departure: String,
    /// Why: the matter, who asked (journaled with who ran the command, and in the evidence)
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    #[command(flatten)]
    pub operator: OperatorArg,
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    /// Departure id, or the user whose latest departure is meant
    pub departure: String,
    /// The manual step's id
    pub step: String,
    /// A note recorded with the confirmation
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// A field the step asks for (repeatable)
    #[arg(long = "field", value_name = "KEY=VALUE")]
    pub fields: Vec<String>,
    /// Record the step as not applicable, with this reason, instead of done
    #[arg(long, value_name = "REASON")]
    pub not_applicable: Option<String>,
    #[command(flatten)]
    pub operator: OperatorArg,
    #[command(flatten)]
    pub attach: NoAttachArg,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Departure id, or the user whose latest departure is meant; omit to list all
    pub departure: Option<String>,
}

#[derive(Debug, Args)]
pub struct RemindArgs {
    #[command(flatten)]
    pub runbook: RunbookArg,
    /// Print what would be sent; send nothing and journal nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub operator: OperatorArg,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Departure id, user, or path to an evidence file
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub target: Option<String>,
    /// Re-check every departure whose run has ended (the nightly drift sweep): one table, exit
    /// 4 if access came back anywhere, drift notified through the runbook's [notify]
    #[arg(long)]
    pub all: bool,
    /// With --all: only departures started within this long (90d, 12w, 48h) or since this date
    /// (2026-09-01 or RFC 3339)
    #[arg(long, requires = "all", value_name = "AGE|DATE")]
    pub since: Option<String>,
    /// With --all: the runbook whose [notify] table tells of drift [default: $OFFBOARD_RUNBOOK,
    /// else ./offboard.toml when there is one; without one, drift is only printed]
    #[arg(
        short,
        long,
        env = "OFFBOARD_RUNBOOK",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub runbook: Option<PathBuf>,
    #[command(flatten)]
    pub operator: OperatorArg,
    #[command(flatten)]
    pub attach: NoAttachArg,
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Check an evidence file's signature, journal chain and signer, offline (exit 0 valid and
    /// signed by a key you trust, 5 otherwise)
    #[command(
        after_help = "Trusted signers: the keys in --allowed-signers (or OFFBOARD_ALLOWED_SIGNERS), else the local
signing key (--key, OFFBOARD_SIGNING_KEY, or the state dir's). With neither, an intact file
signed by an unknown key exits 5: anyone can sign a file with a key of their own.
A line's valid-after/valid-before window is checked at the time the evidence was signed
(predicate.generated_at), as `ssh-keygen -Y verify -Overify-time=<that time>` checks it.

Example:
  offboard evidence verify 20261123-alice-corp-example-3f9a.json --allowed-signers allowed_signers
  offboard evidence verify 20261123-alice-corp-example-3f9a.json --integrity-only"
    )]
    Verify {
        /// The evidence file (`<id>.json`; its signature is `<id>.json.sig` beside it)
        file: PathBuf,
        /// OpenSSH allowed_signers file naming the keys you trust
        /// [default: the public half of the local signing key]
        #[arg(
            long,
            value_name = "FILE",
            env = "OFFBOARD_ALLOWED_SIGNERS",
            hide_env_values = true
        )]
        allowed_signers: Option<PathBuf>,
        /// Check only that the file is unchanged since the key it names signed it, not who holds
        /// that key (exit 0 when intact; --json says "valid": null, "integrity_only": true)
        #[arg(long)]
        integrity_only: bool,
    },
    /// Render an evidence file for a human: as text, or as a self-contained HTML page
    #[command(
        after_help = "The HTML page loads nothing and runs no script; it prints on A4. Neither format verifies
the file: `offboard evidence verify` does.

Example:
  offboard evidence show 20261123-alice-corp-example-3f9a.json
  offboard evidence show 20261123-alice-corp-example-3f9a.json --format html > alice.html"
    )]
    Show {
        /// The evidence file
        file: PathBuf,
        /// `text` for the terminal; `html` prints one page for a person to read or print (the
        /// departure, a chart of the cut, lanes and owners, what is open, the legal hold, the
        /// signer and how to verify)
        #[arg(long, value_enum, default_value_t = ShowFormat::Text, value_name = "FORMAT")]
        format: ShowFormat,
    },
    /// Gather the latest signed evidence of a departure with everything needed to read and
    /// verify it, for a ticket or an auditor
    #[command(after_help = "Writes, with fixed names (N the evidence revision):
  <id>-rN.json, <id>-rN.json.sig   the latest signed evidence and its signature
  allowed_signers                  the line naming the key that signed it
  <id>-rN.html                     the page a person reads (as `evidence show --format html`)
  VERIFY.txt                       the exact `ssh-keygen -Y verify` command
into a directory (created if missing; files of the same names are replaced), or into one .zip
file when OUT ends in .zip. Every file is written atomically, mode 0600. Bundling the same
revision again gives the same bytes. Evidence whose journal or signature is not intact is
refused (exit 5).

Example:
  offboard evidence bundle alice@corp.example
  offboard evidence bundle 20261123t100000-alice-corp-example-3f9a -o HR-1234.zip")]
    Bundle {
        /// Departure id, or the user whose latest departure is meant
        departure: String,
        /// A directory, or a FILE.zip [default: ./<id>-r<N>/ in the current directory]
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
    },
    /// Write every signed evidence revision of a departure, as stored (in the shared database
    /// with --state postgres://…), into a directory, each checked against its journal
    #[command(
        after_help = "Writes <id>.json and <id>.json.sig (the latest revision) and <id>.rev<N>.json(.sig) for
the earlier ones, mode 0600. Each checks with ssh-keygen alone:
  ssh-keygen -Y verify -f allowed_signers -I <principal> -n offboard-evidence -s <id>.json.sig < <id>.json
An auditor with the read-only role exports with:

Example:
  offboard --state 'postgres://auditor@db/offboard?sslmode=verify-full&sslrootcert=ca.pem' evidence export alice@corp.example --out ./alice-evidence"
    )]
    Export {
        /// Departure id, or the user whose latest departure is meant
        departure: String,
        /// The directory to write into (created if missing)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// `offboard state …`: the shared PostgreSQL backend (docs/postgres.md).
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Create (or bring up to date) the schema and the offboard_tool and offboard_auditor roles
    /// in a database, as a role allowed to create them; safe to run again
    #[command(
        after_help = "The SQL is the one docs/postgres.md shows (`offboard state schema` prints it).

Example:
  PGPASSWORD=… offboard state init 'postgres://dba@db.corp.example/offboard?sslmode=verify-full&sslrootcert=ca.pem'"
    )]
    Init {
        /// The database: postgres://USER@HOST[:PORT]/DB (password by reference only)
        url: String,
    },
    /// Print the SQL that `state init` applies (to review it, or to run it with psql)
    #[command(after_help = "Example:\n  offboard state schema > offboard-schema.sql")]
    Schema,
    /// Copy departures from a state dir into a database, or from a database into a state dir:
    /// every journal chain is checked first and a broken one stops the migration before
    /// anything is written; what is already there is skipped, so running it again is safe
    #[command(
        after_help = "Each side is a directory (a state dir, as --state-dir) or a postgres:// URL. Evidence
revisions go along, each checked against the sha256 its journal recorded. The signing keys
stay where they are.

Example:
  offboard state migrate --from ~/.local/state/offboard --to 'postgres://offboard@db/offboard?sslmode=verify-full&sslrootcert=ca.pem'
  offboard state migrate --from 'postgres://offboard@db/offboard?sslmode=verify-full&sslrootcert=ca.pem' --to ./offboard-state"
    )]
    Migrate {
        /// Where the departures are now
        #[arg(long, value_name = "DIR|URL")]
        from: String,
        /// Where to copy them
        #[arg(long, value_name = "DIR|URL")]
        to: String,
    },
}

/// How `evidence show` renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowFormat {
    Text,
    Html,
}

#[derive(Debug, Subcommand)]
pub enum RunbookCommand {
    /// Validate a runbook; errors point at file:line:column with a hint
    #[command(after_help = "Example:\n  offboard runbook check runbooks/demo.toml")]
    Check {
        /// The runbook (TOML)
        file: PathBuf,
    },
    /// Print the runbook JSON Schema (for editor completion, e.g. taplo)
    #[command(after_help = "Example:\n  offboard runbook schema > offboard.schema.json")]
    Schema,
}

#[derive(Debug, Subcommand)]
pub enum IntakeCommand {
    /// Read a termination event or record and print the departure facts (nothing is started)
    #[command(
        after_help = "Examples:\n  offboard intake parse --source workday report.json -r offboard.toml\n  offboard intake parse --source bamboohr - --signature \"$SIG\" --timestamp \"$TS\" < body.json\n\nExit 0: read (and, when the runbook configures a secret, authenticated); 2: malformed or\nincomplete; 1: the signature or token was refused."
    )]
    Parse(IntakeParseArgs),
    /// Ask the HR system what changed since the last poll and start or schedule each new
    /// termination (BambooHR)
    #[command(
        after_help = "Example:\n  offboard intake poll --source bamboohr --since 2026-11-01T00:00:00Z   # the first time\n  offboard intake poll --source bamboohr                               # then from cron\n\nThe cursor (BambooHR's `latest`) is kept in <state-dir>/intake/ and moves only when every\nchanged employee was handled, so nothing is missed; the event index makes sure nothing starts\ntwice. Future-dated terminations are scheduled."
    )]
    Poll(IntakePollArgs),
    /// Start every scheduled departure whose effective time has come (run it from cron)
    #[command(
        after_help = "Example:\n  */5 * * * *  offboard intake due -r /etc/offboard/offboard.toml\n\nEach departure runs its own runbook (the one it was scheduled with) unless -r names another.\nExit 0 when every due departure started and ran to its end, else the worst status."
    )]
    Due(IntakeDueArgs),
}

#[derive(Debug, Args)]
pub struct IntakeParseArgs {
    /// The HR system the event came from
    #[arg(long, value_enum, value_name = "HRIS")]
    pub source: crate::intake::Source,
    /// The event: a webhook body, an API record or a report (`-` reads stdin)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub runbook: RunbookArg,
    #[command(flatten)]
    pub event_auth: EventAuth,
}

#[derive(Debug, Args)]
pub struct IntakePollArgs {
    /// The HR system to poll (BambooHR only, for now)
    #[arg(long, value_enum, value_name = "HRIS")]
    pub source: crate::intake::Source,
    /// Ask for changes since TIME (RFC 3339 or YYYY-MM-DD) instead of the saved cursor
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    #[command(flatten)]
    pub runbook: RunbookArg,
    /// Start departures even when their preflight finds a problem (as `start --force`)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct IntakeDueArgs {
    /// Run every due departure with this runbook instead of the one it was scheduled with
    #[arg(short, long, value_name = "FILE")]
    pub runbook: Option<PathBuf>,
    /// Start departures even when their preflight finds a problem (as `start --force`)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an OpenSSH Ed25519 signing key (0600) and print its public line
    #[command(
        after_help = "Example:\n  offboard keys generate\n  offboard --key ~/.ssh/offboard_ed25519 keys generate"
    )]
    Generate {
        /// Replace an existing key
        #[arg(long)]
        force: bool,
    },
    /// Print the signing key's public line and an allowed_signers line for auditors
    Show,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The person to offboard in the sandbox
    #[arg(long, default_value = "alice@example.com", value_name = "USER")]
    pub user: String,
    /// Kind of departure
    #[arg(long = "type", value_enum, default_value_t = DepartureType::Involuntary, value_name = "TYPE")]
    pub departure_type: DepartureType,
    /// Do not prompt: manual steps stay pending (exit 3)
    #[arg(long)]
    pub non_interactive: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every help text, of every command and subcommand.
    fn all_help(cmd: &mut clap::Command, out: &mut Vec<(String, String)>) {
        let name = cmd.get_name().to_string();
        out.push((name, cmd.render_long_help().to_string()));
        for sub in cmd.get_subcommands_mut() {
            all_help(sub, out);
        }
    }

    /// A runbook a help text cites as an example exists, so that copying the example works.
    #[test]
    fn help_cites_only_runbooks_that_exist() {
        let mut helps = Vec::new();
        all_help(&mut super::Cli::command(), &mut helps);
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut cited = 0;
        for (name, help) in &helps {
            for word in help.split_whitespace() {
                if word.starts_with("runbooks/") {
                    let path = word.trim_end_matches(|c: char| !c.is_alphanumeric());
                    assert!(
                        root.join(path).is_file(),
                        "`{name} --help` cites {path}, which does not exist"
                    );
                    cited += 1;
                }
            }
        }
        assert!(cited > 0, "no help cites a runbook from runbooks/");
    }

    /// The README's first commands set up nothing but the demo and the tests; how to put
    /// `offboard` on the PATH (every hint it prints starts with `offboard`) comes right after.
    #[test]
    fn readme_says_how_to_install_the_binary() {
        let readme = include_str!("../README.md");
        let block = |from: usize| {
            let start = readme[from..].find("```sh\n").expect("a sh block") + from + 6;
            let end = readme[start..].find("```").expect("closed") + start;
            (readme[start..end].to_string(), end)
        };
        let (first, end) = block(0);
        let commands: Vec<&str> = first.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(commands.len(), 2, "{first}");
        assert!(
            commands[0].starts_with("cargo run --locked -- demo"),
            "{first}"
        );
        assert!(commands[1].starts_with("bash tests/run.sh"), "{first}");
        let (second, _) = block(end + 3);
        assert!(
            second.starts_with("cargo install --locked --path ."),
            "{second}"
        );
    }
}
