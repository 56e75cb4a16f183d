//! `offboard report`: metrics over every departure in the state dir (see [`crate::report`]).

use anyhow::Context;

use crate::cli::{ReportArgs, ReportFormat};
use crate::exit::{CliError, Exit};
use crate::journal;
use crate::report::{self, Options, metrics};

use super::Ctx;

pub fn exec(ctx: &Ctx, args: ReportArgs) -> anyhow::Result<Exit> {
    let p = &ctx.printer;
    let format = match (args.format, ctx.global.json) {
        (None, true) | (Some(ReportFormat::Json), _) => ReportFormat::Json,
        (Some(f), true) => {
            return Err(CliError::usage(format!(
                "--json asks for JSON, --format asks for {}",
                format_name(f)
            ))
            .hint("drop --json, or use --format json")
            .into());
        }
        (Some(f), false) => f,
        (None, false) => ReportFormat::Table,
    };
    let now = journal::now();
    let sla_seconds = metrics::parse_duration(&args.sla).map_err(|e| {
        CliError::usage(format!("--sla: {e}")).hint("for example --sla 1h, --sla 30m or --sla 4h")
    })?;
    let since = args
        .since
        .as_deref()
        .map(|s| metrics::parse_since(s, now))
        .transpose()
        .map_err(|e| {
            CliError::usage(format!("--since: {e}"))
                .hint("for example --since 2026-10-01, or --since 90d for the last 90 days")
        })?;

    let (loaded, damaged) = report::load(&ctx.state)?;
    for d in &damaged {
        p.warn(format!("{}: not counted: {}", d.departure, d.error));
    }
    let r = report::build(
        &loaded,
        damaged,
        &Options {
            since,
            sla_seconds,
            now,
        },
    );
    let text = match format {
        ReportFormat::Table => report::text::table(p, &r) + "\n",
        ReportFormat::Json => {
            serde_json::to_string_pretty(&r).context("writing the report as JSON")? + "\n"
        }
        ReportFormat::Csv => report::text::csv(&r),
        ReportFormat::Html => report::html::render(&r).context("rendering the report page")?,
    };
    match &args.output {
        Some(path) => {
            crate::state::write_atomic(path, text.as_bytes())
                .with_context(|| format!("writing the report to {}", path.display()))?;
            p.info(format!(
                "Wrote the {} report on {} departure(s) to {}",
                format_name(format),
                r.departures.total,
                path.display()
            ));
        }
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .context("writing the report to stdout")?;
        }
    }
    Ok(Exit::Ok)
}

fn format_name(f: ReportFormat) -> &'static str {
    match f {
        ReportFormat::Table => "table",
        ReportFormat::Json => "json",
        ReportFormat::Csv => "csv",
        ReportFormat::Html => "html",
    }
}
