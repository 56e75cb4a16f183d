//! Everything that talks to the person at the terminal: one [`Printer`] decides what is shown
//! where (quiet / normal / verbose, JSON on stdout, colour, progress only on a terminal).
//! Nothing else in offboard prints.

use std::io::{IsTerminal, Write};

use owo_colors::{OwoColorize, Style};

use crate::cli::{ColorChoice, GlobalArgs};

pub mod progress;
pub mod prompt;
pub mod table;

#[derive(Debug, Clone)]
pub struct Printer {
    pub quiet: bool,
    pub verbose: u8,
    pub json: bool,
    pub color: bool,
    /// stderr is a terminal: progress bars may be drawn.
    pub stderr_tty: bool,
}

impl Printer {
    pub fn new(g: &GlobalArgs) -> Printer {
        let stderr_tty = std::io::stderr().is_terminal();
        let color = match g.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                stderr_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        };
        Printer {
            quiet: g.quiet,
            verbose: g.verbose,
            json: g.json,
            color,
            stderr_tty,
        }
    }

    /// A plain printer for tests.
    pub fn plain() -> Printer {
        Printer {
            quiet: false,
            verbose: 0,
            json: false,
            color: false,
            stderr_tty: false,
        }
    }

    /// Progress bars are drawn only on a terminal, and not in quiet or verbose mode (so log lines
    /// don't tear).
    pub fn show_progress(&self) -> bool {
        self.stderr_tty && !self.quiet && self.verbose == 0
    }

    fn paint(&self, s: &str, style: Style) -> String {
        if self.color {
            s.style(style).to_string()
        } else {
            s.to_string()
        }
    }

    pub fn bold(&self, s: &str) -> String {
        self.paint(s, Style::new().bold())
    }
    pub fn green(&self, s: &str) -> String {
        self.paint(s, Style::new().green())
    }
    pub fn red(&self, s: &str) -> String {
        self.paint(s, Style::new().red().bold())
    }
    pub fn yellow(&self, s: &str) -> String {
        self.paint(s, Style::new().yellow())
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint(s, Style::new().dimmed())
    }

    /// Status and progress text: stderr, unless quiet.
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr(), "{}", msg.as_ref());
        }
    }

    /// Detail shown with `-v`.
    pub fn detail(&self, msg: impl AsRef<str>) {
        if self.verbose > 0 && !self.quiet {
            let _ = writeln!(std::io::stderr(), "{}", self.dim(msg.as_ref()));
        }
    }

    pub fn warn(&self, msg: impl AsRef<str>) {
        let _ = writeln!(
            std::io::stderr(),
            "{} {}",
            self.yellow("warning:"),
            msg.as_ref()
        );
    }

    /// The command's result for a human: stdout normally, stderr when `--json` owns stdout.
    pub fn result(&self, text: impl AsRef<str>) {
        let text = text.as_ref();
        if self.json {
            if !self.quiet {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        } else {
            let _ = writeln!(std::io::stdout(), "{text}");
        }
    }

    /// The command's result for a machine: one JSON document on stdout, only with `--json`.
    pub fn json_result(&self, value: &serde_json::Value) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = serde_json::to_writer_pretty(&mut out, value);
            let _ = writeln!(out);
        }
    }

    /// An error with its cause chain and hints, on stderr.
    pub fn error(&self, err: &anyhow::Error, hints: &[String]) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "{} {}", self.red("error:"), err);
        for cause in err.chain().skip(1) {
            let _ = writeln!(e, "  {} {cause}", self.dim("caused by:"));
        }
        for h in hints {
            let _ = writeln!(e, "  {} {h}", self.green("hint:"));
        }
    }
}

/// Make a string safe to show on one terminal line: control characters (newlines, escapes)
/// become visible escapes, and very long values are shortened.
pub fn safe(s: &str) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= 200 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A runbook's instruction text for a person: whole (an instruction cut short is a wrong
/// instruction), its line breaks kept and indented by `indent`, every other control character
/// escaped so a runbook cannot drive the terminal.
pub fn safe_text(s: &str, indent: &str) -> String {
    let mut out = String::from(indent);
    for c in s.trim_end().chars() {
        match c {
            '\n' => {
                out.push('\n');
                out.push_str(indent);
            }
            '\t' => out.push_str("    "),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn safe_escapes_control_characters_and_truncates() {
        assert_eq!(super::safe("a\nb\x1b[31m"), "a\\nb\\u{1b}[31m");
        assert_eq!(super::safe(&"x".repeat(500)).chars().count(), 201);
    }

    #[test]
    fn safe_text_keeps_whole_lines_and_escapes_the_rest() {
        let long = "y".repeat(500);
        assert_eq!(super::safe_text(&long, "  ").len(), 502);
        assert_eq!(
            super::safe_text("Collect\n\tthe bag\x1b[2J\n", "  "),
            "  Collect\n      the bag\\u{1b}[2J"
        );
    }
}
