//! `offboard runbook`: check a runbook, print the schema.

use serde_json::json;

use crate::cli::RunbookCommand;
use crate::exit::Exit;
use crate::runbook::{self, diag};

use super::Ctx;

pub fn exec(ctx: &Ctx, cmd: RunbookCommand) -> anyhow::Result<Exit> {
    match cmd {
        RunbookCommand::Check { file } => {
            let shown = file.display().to_string();
            match runbook::load_file(&file) {
                Ok(rb) => {
                    let (automated, manual) = rb.step_counts();
                    let plural = |n: usize, word: &str| {
                        format!("{n} {word}{}", if n == 1 { "" } else { "s" })
                    };
                    ctx.printer.result(format!(
                        "ok: {shown}: runbook \"{}\": {}, {} ({automated} automated, {manual} manual)",
                        crate::ui::safe(&rb.file.runbook.name),
                        plural(rb.file.systems.len(), "system"),
                        plural(rb.file.steps.len(), "step"),
                    ));
                    ctx.printer.json_result(&json!({
                        "valid": true,
                        "file": shown,
                        "name": rb.file.runbook.name,
                        "sha256": rb.sha256,
                        "systems": rb.file.systems.len(),
                        "steps": { "automated": automated, "manual": manual },
                        "diagnostics": [],
                    }));
                    Ok(Exit::Ok)
                }
                Err(err) => {
                    eprint!("{}", err.render(ctx.printer.color));
                    let diagnostics: Vec<serde_json::Value> = err
                        .diagnostics
                        .iter()
                        .map(|d| {
                            let (line, column) = d
                                .span
                                .as_ref()
                                .map(|s| diag::line_column(&err.source, s.start))
                                .map_or((None, None), |(l, c)| (Some(l), Some(c)));
                            json!({
                                "message": d.message,
                                "line": line,
                                "column": column,
                                "hint": d.hint,
                            })
                        })
                        .collect();
                    ctx.printer.json_result(&json!({
                        "valid": false,
                        "file": shown,
                        "diagnostics": diagnostics,
                    }));
                    Ok(Exit::Usage)
                }
            }
        }
        RunbookCommand::Schema => {
            print!("{}", runbook::schema::schema_json());
            Ok(Exit::Ok)
        }
    }
}
