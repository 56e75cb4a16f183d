//! The interactive checklist for manual steps (dialoguer, on stderr).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use dialoguer::theme::{ColorfulTheme, SimpleTheme, Theme};
use dialoguer::{Input, Select};

use super::{Printer, safe, safe_text};
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
        // Empty input reaches the validator only when allowed; refused there, it says why
        // (dialoguer would otherwise ask again without a word).
        Input::<String>::with_theme(self.theme.as_ref())
            .with_prompt(format!("{} ({})", safe(prompt), safe(name)))
            .allow_empty(true)
            .validate_with(|s: &String| {
                if required && s.trim().is_empty() {
                    Err("required: the runbook needs this value")
                } else {
                    Ok(())
                }
            })
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
        // Held until the answer is in: Ctrl-C is read as a key from here on, and a stop signal
        // from elsewhere interrupts the wait for a key (see `app::signals::PromptWaker`).
        let _asking = Asking::begin();
        let _keys = CtrlCAsKey::engage();
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
            eprintln!("{}", safe_text(text, "  "));
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
                    let so_far = fields.clone();
                    let v: String = Input::with_theme(self.theme.as_ref())
                        .with_prompt(safe(f))
                        .allow_empty(true)
                        .validate_with(|s: &String| {
                            if step.asset.is_some() {
                                // A return step: its fields follow the asset process's rules.
                                return match crate::assets::field_error(f, s, &so_far) {
                                    Some(e) => Err(e),
                                    None => Ok(()),
                                };
                            }
                            if s.trim().is_empty() {
                                Err("required: the step records this for the evidence")
                            } else {
                                Ok(())
                            }
                        })
                        .interact_text()
                        .with_context(|| format!("reading {}", safe(f)))?;
                    if !(step.asset.is_some() && v.trim().is_empty()) {
                        fields.insert(f.clone(), v.trim().to_string());
                    }
                }
                if let Some(asset) = &step.asset {
                    crate::assets::recorded_fields(asset, &mut fields);
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
                    .allow_empty(true)
                    .validate_with(|s: &String| {
                        if s.trim().is_empty() {
                            Err("a reason is required (it goes into the evidence)")
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

static ASKING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a checklist question is on screen, waiting for the operator.
pub fn asking() -> bool {
    ASKING.load(std::sync::atomic::Ordering::SeqCst)
}

struct Asking;

impl Asking {
    fn begin() -> Asking {
        ASKING.store(true, std::sync::atomic::Ordering::SeqCst);
        Asking
    }
}

impl Drop for Asking {
    fn drop(&mut self) {
        ASKING.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// While a question is on screen, the terminal's ISIG flag is off, so Ctrl-C reaches the prompt
/// as a key (which the prompt turns into an interrupted read) instead of as a signal.
///
/// Without this there is a window (the question printed, the prompt not yet reading in raw
/// mode) where Ctrl-C becomes SIGINT: the handler notes it, but the thread that would act on it
/// is blocked reading the next key, so the run would sit there until someone pressed a key.
/// Typed ahead in that window, the byte waits in the line buffer and the prompt reads it.
struct CtrlCAsKey {
    tty: Tty,
    saved: libc::termios,
}

enum Tty {
    Stdin,
    Opened(std::fs::File),
}

impl CtrlCAsKey {
    /// Best effort: without a terminal there is nothing to change (and no prompt either).
    fn engage() -> Option<CtrlCAsKey> {
        use std::io::IsTerminal;
        let tty = if std::io::stdin().is_terminal() {
            Tty::Stdin
        } else {
            Tty::Opened(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/tty")
                    .ok()?,
            )
        };
        let fd = tty.fd();
        let mut saved = std::mem::MaybeUninit::<libc::termios>::uninit();
        // SAFETY: fd is an open descriptor for the life of `tty`; tcgetattr fills `saved`
        // completely when it returns 0, and only then is it read.
        let saved = unsafe {
            if libc::tcgetattr(fd, saved.as_mut_ptr()) != 0 {
                return None;
            }
            saved.assume_init()
        };
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ISIG;
        // SAFETY: a valid termios for an open descriptor.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) } != 0 {
            return None;
        }
        Some(CtrlCAsKey { tty, saved })
    }
}

impl Tty {
    fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Tty::Stdin => std::io::stdin().as_raw_fd(),
            Tty::Opened(f) => f.as_raw_fd(),
        }
    }
}

impl Drop for CtrlCAsKey {
    fn drop(&mut self) {
        // SAFETY: restores the settings read from the same descriptor in `engage`.
        unsafe {
            libc::tcsetattr(self.tty.fd(), libc::TCSANOW, &self.saved);
        }
    }
}
