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

    /// A warning: one line, escaped like [`Printer::error`].
    pub fn warn(&self, msg: impl AsRef<str>) {
        let _ = writeln!(
            std::io::stderr(),
            "{} {}",
            self.yellow("warning:"),
            escape(msg.as_ref())
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
    ///
    /// Each message is one line: whatever user or provider text it quotes is [`escape`]d here,
    /// so a newline or an escape sequence inside an id cannot forge or hide a line.
    pub fn error(&self, err: &anyhow::Error, hints: &[String]) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "{} {}", self.red("error:"), escape(&err.to_string()));
        for cause in err.chain().skip(1) {
            let _ = writeln!(
                e,
                "  {} {}",
                self.dim("caused by:"),
                escape(&cause.to_string())
            );
        }
        for h in hints {
            let _ = writeln!(e, "  {} {}", self.green("hint:"), escape(h));
        }
    }
}

/// Whether a character must never reach the terminal as itself: C0 controls (newline, escape…),
/// DEL, C1 controls (U+0080–U+009F, which some terminals obey as escapes), and the bidirectional
/// embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), which can make text read
/// differently from what it is.
pub fn must_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The one way a character of an untrusted string reaches the terminal: as itself, or, when
/// [`must_escape`] says so, as a visible Rust-style escape (`\n`, `\u{1b}`, `\u{202e}`).
/// [`escape`], [`safe`] and [`safe_text`] all go through here.
pub fn push_escaped(out: &mut String, c: char) {
    if must_escape(c) {
        out.extend(c.escape_default());
    } else {
        out.push(c);
    }
}

/// A user-controlled string (a user id, a ticket, a provider's message…) for one terminal line,
/// whole: every character [`must_escape`] names is shown escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out
}

/// [`escape`], and very long values shortened (for tables and progress lines).
pub fn safe(s: &str) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= 200 {
            out.push('…');
            break;
        }
        push_escaped(&mut out, c);
    }
    out
}

/// A runbook's instruction text for a person: whole (an instruction cut short is a wrong
/// instruction), its line breaks kept and indented by `indent`, every other character
/// [`must_escape`] names escaped so a runbook cannot drive the terminal.
pub fn safe_text(s: &str, indent: &str) -> String {
    let mut out = String::from(indent);
    for c in s.trim_end().chars() {
        match c {
            '\n' => {
                out.push('\n');
                out.push_str(indent);
            }
            '\t' => out.push_str("    "),
            c => push_escaped(&mut out, c),
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
    fn c1_controls_and_bidi_overrides_are_escaped_everywhere() {
        let hostile = "a\u{85}b\u{9b}31m\u{202e}evil\u{2066}x\u{2069}\u{202a}";
        let want = "a\\u{85}b\\u{9b}31m\\u{202e}evil\\u{2066}x\\u{2069}\\u{202a}";
        assert_eq!(super::escape(hostile), want);
        assert_eq!(super::safe(hostile), want);
        assert_eq!(super::safe_text(hostile, ""), want);
        for c in [
            '\u{202b}', '\u{202c}', '\u{202d}', '\u{2067}', '\u{2068}', '\u{7f}',
        ] {
            assert!(super::must_escape(c), "{c:?}");
        }
        // Letters of every script, and plain punctuation, are shown as they are.
        let fine = "Zoë Ĳssel · 山田 · עברית · DOMAIN\\alice";
        assert_eq!(super::escape(fine), fine);
        // A newline is never passed through on one line.
        assert!(!super::escape("alice\nroot").contains('\n'));
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
