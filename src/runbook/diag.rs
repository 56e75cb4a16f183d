//! Runbook diagnostics: `file:line:column`, a caret snippet and a hint.

use std::ops::Range;

use annotate_snippets::{AnnotationKind, Group, Level, Origin, Renderer, Snippet};

/// One problem in a runbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    /// Byte range in the source, when known.
    pub span: Option<Range<usize>>,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, span: Option<Range<usize>>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span,
            hint: None,
        }
    }

    pub fn at(message: impl Into<String>, span: Range<usize>) -> Diagnostic {
        Diagnostic::new(message, Some(span))
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// 1-based line and column (in characters) of the span's start in `source`.
    pub fn line_column(&self, source: &str) -> Option<(usize, usize)> {
        self.span.as_ref().map(|s| line_column(source, s.start))
    }
}

/// 1-based line and column (in characters) of byte offset `at` in `source`. Offsets past the end
/// or inside a character are clamped.
pub fn line_column(source: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(source.len());
    while !source.is_char_boundary(at) {
        at -= 1;
    }
    let before = &source[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = source[line_start..at].chars().count() + 1;
    (line, column)
}

/// A runbook that could not be loaded: every diagnostic, with the source to render them against.
#[derive(Debug, Clone)]
pub struct RunbookError {
    pub path: String,
    pub source: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl RunbookError {
    /// Cargo-style rendering of every diagnostic: `error: …`, ` --> file:line:column`, the line
    /// with the span underlined, and `= help: …`.
    pub fn render(&self, color: bool) -> String {
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let mut out = String::new();
        for d in &self.diagnostics {
            let title = Level::ERROR.primary_title(d.message.as_str());
            let group = match clamp(&self.source, d.span.as_ref()) {
                Some(span) => title.element(
                    Snippet::source(self.source.as_str())
                        .path(self.path.as_str())
                        .annotation(AnnotationKind::Primary.span(span)),
                ),
                None => title.element(Origin::path(self.path.as_str())),
            };
            let group = match &d.hint {
                Some(h) => group.element(Level::HELP.message(h.as_str())),
                None => group,
            };
            let report: &[Group<'_>] = &[group];
            out.push_str(&renderer.render(report));
            out.push_str("\n\n");
        }
        let n = self.diagnostics.len();
        if n > 1 {
            let summary = format!("could not load runbook `{}`: {n} errors", self.path);
            out.push_str(
                &renderer.render(&[Group::with_title(Level::ERROR.primary_title(summary))]),
            );
            out.push('\n');
        }
        out
    }
}

/// A span that is safe to hand to the renderer: inside the source and on character boundaries.
fn clamp(source: &str, span: Option<&Range<usize>>) -> Option<Range<usize>> {
    let span = span?;
    let fix = |mut i: usize| {
        i = i.min(source.len());
        while !source.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = fix(span.start);
    let end = fix(span.end.max(span.start));
    Some(start..end)
}

impl std::fmt::Display for RunbookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for RunbookError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        let src = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(src, 0), (1, 1));
        assert_eq!(line_column(src, 6), (2, 1));
        // `=` after `bé ` is the 4th character but the 5th byte of the line.
        assert_eq!(line_column(src, 10), (2, 4));
        assert_eq!(line_column(src, 999), (3, 1));
    }

    #[test]
    fn render_has_location_snippet_and_help() {
        let err = RunbookError {
            path: "rb.toml".into(),
            source: "[runbook]\nnmae = \"x\"\n".into(),
            diagnostics: vec![
                Diagnostic::at("unknown key `nmae` in [runbook]", 10..14)
                    .hint("did you mean `name`?"),
            ],
        };
        let out = err.render(false);
        assert!(
            out.contains("error: unknown key `nmae` in [runbook]"),
            "{out}"
        );
        assert!(out.contains("--> rb.toml:2:1"), "{out}");
        assert!(out.contains("nmae = \"x\""), "{out}");
        assert!(out.contains("^^^^"), "{out}");
        assert!(out.contains("= help: did you mean `name`?"), "{out}");
        assert_eq!(err.to_string(), out);
    }

    #[test]
    fn render_without_span_names_the_file() {
        let err = RunbookError {
            path: "missing.toml".into(),
            source: String::new(),
            diagnostics: vec![Diagnostic::new("cannot read runbook: not found", None)],
        };
        let out = err.render(false);
        assert!(out.contains("error: cannot read runbook"), "{out}");
        assert!(out.contains("missing.toml"), "{out}");
    }

    #[test]
    fn render_survives_spans_out_of_range() {
        let err = RunbookError {
            path: "x.toml".into(),
            source: "é".into(),
            diagnostics: vec![Diagnostic::at("odd", 1..50)],
        };
        assert!(err.render(true).contains("odd"));
    }
}
