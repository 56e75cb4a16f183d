//! The interactive checklist for manual steps (dialoguer, on stderr).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use dialoguer::theme::{ColorfulTheme, SimpleTheme, Theme};
use dialoguer::{Input, Select};

use super::{Printer, safe};
use crate::departure::{Answer, PlannedStep};
use crate::engine::{ManualAnswer, Prompter};

pub struct Checklist {
    printer: Printer,
    theme: Box<dyn Theme>,
}

impl Checklist {
    pub fn new(printer: &Printer) -> Checklist {
        let theme: Box<dyn Theme> = if printer.color {
            Box::new(ColorfulTheme::default())
        } else {
            Box::new(SimpleTheme)
        };
        Checklist {
            printer: printer.clone(),
            theme,
        }
    }

    /// Ask for a departure fact the runbook declares.
    pub fn ask_input(&self, name: &str, prompt: &str, required: bool) -> Result<String> {
        Input::<String>::with_theme(self.theme.as_ref())
            .with_prompt(format!("{prompt} ({name})"))
            .allow_empty(!required)
            .interact_text()
            .with_context(|| format!("reading {name} from the terminal"))
    }
}

impl Prompter for Checklist {
    fn ask(
        &mut self,
        step: &PlannedStep,
        (n, total): (usize, usize),
    ) -> Result<Option<ManualAnswer>> {
        let p = &self.printer;
        eprintln!();
        eprintln!(
            "{} {}",
            p.bold(&format!(
                "Manual step {n}/{total} · {} · {}",
                step.lane.as_str(),
                safe(&step.id)
            )),
            p.dim(&format!("({})", step.phase.as_str()))
        );
        if let Some(text) = &step.manual {
            eprintln!("  {}", safe(text));
        }
        let mut meta = Vec::new();
        if let Some(o) = &step.owner {
            meta.push(format!("owner {}", safe(o)));
        }
        if let Some(d) = &step.deadline {
            meta.push(format!("due {}", super::table::short(d)));
        }
        if !meta.is_empty() {
            eprintln!("  {}", p.dim(&meta.join(" · ")));
        }
        let choices = [
            "done",
            "not yet",
            "not applicable",
            "stop asking (leave the rest pending)",
        ];
        let pick = Select::with_theme(self.theme.as_ref())
            .with_prompt("Status")
            .items(choices)
            .default(0)
            .interact_opt()
            .context("reading the answer from the terminal")?;
        let answer = match pick {
            Some(0) => Answer::Done,
            Some(1) => Answer::NotYet,
            Some(2) => Answer::NotApplicable,
            _ => return Ok(None),
        };
        let mut fields = BTreeMap::new();
        let mut note = None;
        match answer {
            Answer::Done => {
                for f in &step.fields {
                    let v: String = Input::with_theme(self.theme.as_ref())
                        .with_prompt(f)
                        .validate_with(|s: &String| {
                            if s.trim().is_empty() {
                                Err("required")
                            } else {
                                Ok(())
                            }
                        })
                        .interact_text()
                        .with_context(|| format!("reading {f}"))?;
                    fields.insert(f.clone(), v.trim().to_string());
                }
                let n: String = Input::with_theme(self.theme.as_ref())
                    .with_prompt("Note (optional)")
                    .allow_empty(true)
                    .interact_text()
                    .context("reading the note")?;
                note = Some(n.trim().to_string()).filter(|s| !s.is_empty());
            }
            Answer::NotApplicable => {
                let r: String = Input::with_theme(self.theme.as_ref())
                    .with_prompt("Why is it not applicable?")
                    .validate_with(|s: &String| {
                        if s.trim().is_empty() {
                            Err("a reason is required")
                        } else {
                            Ok(())
                        }
                    })
                    .interact_text()
                    .context("reading the reason")?;
                note = Some(r.trim().to_string());
            }
            Answer::NotYet => {}
        }
        Ok(Some(ManualAnswer {
            answer,
            note,
            fields,
        }))
    }
}
