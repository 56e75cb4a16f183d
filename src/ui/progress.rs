//! Progress of a run: one spinner per step on a terminal; plain lines otherwise (CI, pipes,
//! `-v`), so logs never tear.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Printer, safe};
use crate::departure::{PlannedStep, Status};
use crate::engine::Reporter;
use crate::providers::RetryNote;

pub struct Progress {
    printer: Printer,
    bars: Option<(MultiProgress, Mutex<HashMap<String, ProgressBar>>)>,
}

impl Progress {
    pub fn new(printer: &Printer) -> Progress {
        let bars = printer.show_progress().then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                Mutex::new(HashMap::new()),
            )
        });
        Progress {
            printer: printer.clone(),
            bars,
        }
    }

    fn mark(&self, status: Status) -> String {
        let p = &self.printer;
        match status {
            Status::Done => p.green("✓"),
            Status::NotApplicable => p.dim("–"),
            Status::Failed => p.red("✗"),
            Status::Unconfirmed | Status::InFlight => p.yellow("?"),
            Status::Skipped | Status::Pending => p.yellow("·"),
        }
    }
}

impl Reporter for Progress {
    fn wave(&self, phase: &str, steps: &[&PlannedStep]) {
        let line = format!(
            "{} {} step{}",
            self.printer.bold(&format!("[{phase}]")),
            steps.len(),
            if steps.len() == 1 { "" } else { "s" }
        );
        match &self.bars {
            Some((multi, bars)) => {
                let _ = multi.println(line);
                let style = ProgressStyle::with_template("  {spinner} {prefix:<28} {wide_msg}")
                    .expect("valid template")
                    .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ");
                let mut bars = bars.lock().unwrap_or_else(|p| p.into_inner());
                for s in steps {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(style.clone());
                    bar.set_prefix(safe(&s.id));
                    bar.set_message(self.printer.dim("waiting"));
                    bar.enable_steady_tick(Duration::from_millis(100));
                    bars.insert(s.id.clone(), bar);
                }
            }
            None => self.printer.info(line),
        }
    }

    fn started(&self, step: &PlannedStep, what: &str) {
        match &self.bars {
            Some((_, bars)) => {
                if let Some(bar) = bars.lock().unwrap_or_else(|p| p.into_inner()).get(&step.id) {
                    bar.set_message(format!("{}…", safe(what)));
                }
            }
            None => self
                .printer
                .detail(format!("  {} {}", safe(&step.id), safe(what))),
        }
    }

    fn retry(&self, step: &PlannedStep, note: &RetryNote) {
        let msg = format!(
            "retry {} in {:.1}s: {}",
            note.attempt,
            note.wait_ms as f64 / 1000.0,
            safe(&note.reason)
        );
        match &self.bars {
            Some((_, bars)) => {
                if let Some(bar) = bars.lock().unwrap_or_else(|p| p.into_inner()).get(&step.id) {
                    bar.set_message(self.printer.yellow(&msg));
                }
            }
            None => self.printer.info(format!("  {} {}", safe(&step.id), msg)),
        }
    }

    fn finished(&self, step: &PlannedStep, status: Status, detail: &str) {
        let line = format!(
            "{} {:<28} {}",
            self.mark(status),
            safe(&step.id),
            safe(detail)
        );
        match &self.bars {
            Some((multi, bars)) => {
                // Finished steps become plain lines above the live spinners, so they stay on
                // screen when the spinners are cleared for a prompt.
                if let Some(bar) = bars
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&step.id)
                {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
                let _ = multi.println(format!("  {line}"));
            }
            None => self.printer.info(format!("  {line}")),
        }
    }

    fn pause(&self) {
        if let Some((multi, bars)) = &self.bars {
            bars.lock().unwrap_or_else(|p| p.into_inner()).clear();
            let _ = multi.clear();
        }
    }
}
