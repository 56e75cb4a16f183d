//! Snapshots of what the binary prints, with everything that differs between runs redacted:
//! departure ids, times, temp paths, digests, key fingerprints and public keys, signatures,
//! sandbox account ids and durations. Use [`assert_cli_snapshot!`](crate::assert_cli_snapshot)
//! for text and [`assert_json_snapshot!`](crate::assert_json_snapshot) for a `--json` document
//! (checked to be JSON, then snapshotted pretty-printed with the same redactions, so a redacted
//! value stays visibly a string or a number in its place).

use std::path::Path;

/// Every redaction, in the order applied: `(regex, replacement)`.
pub const REDACTIONS: &[(&str, &str)] = &[
    // An SSH signature block (armored), whole.
    (
        r"-----BEGIN SSH SIGNATURE-----[\s\S]*?-----END SSH SIGNATURE-----",
        "[SSH-SIGNATURE]",
    ),
    // Departure ids: <yyyymmdd>t<hhmmss>-<user slug>-<4 random hex>.
    (r"\b\d{8}t\d{6}-[a-z0-9-]+-[0-9a-f]{4}\b", "[DEPARTURE-ID]"),
    // RFC 3339 times, then the short `YYYY-MM-DD HH:MM` form (kept as wide, for tables).
    (
        r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})",
        "[TIME]",
    ),
    (r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}\b", "YYYY-MM-DD HH:MM"),
    // OpenSSH key fingerprints and public key blobs.
    (r"SHA256:[A-Za-z0-9+/]{43}=?", "SHA256:[FINGERPRINT]"),
    (r"\bAAAA[A-Za-z0-9+/]{40,}={0,2}", "[PUBLIC-KEY]"),
    // SHA-256 hex digests (runbook, journal chain, evidence).
    (r"\b[0-9a-f]{64}\b", "[SHA256]"),
    // Sandbox account ids.
    (r"\bsb-[0-9a-f]{16}\b", "sb-[SANDBOX-ID]"),
    // Durations as printed (`0.31s`, `12ms`) and as JSON numbers of milliseconds.
    (r"\b\d+(?:\.\d+)?m?s\b", "[DURATION]"),
    (
        r#"("[a-z_]*(?:duration|elapsed)[a-z_]*(?:_ms)?"): \d+"#,
        "$1: [DURATION]",
    ),
];

/// The insta settings with [`REDACTIONS`], and `dir` (the test's temp dir) replaced by `[TMP]`
/// before anything else.
pub fn settings(dir: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(true);
    for d in [dir.to_path_buf(), dir.canonicalize().unwrap_or(dir.into())] {
        s.add_filter(&escape(&d.to_string_lossy()), "[TMP]");
    }
    // Any other temp dir (a path the binary made up under the system temp dir).
    s.add_filter(
        &format!(
            r"{}/\.?tmp[A-Za-z0-9_.]+",
            escape(std::env::temp_dir().to_string_lossy().trim_end_matches('/'))
        ),
        "[TMP]",
    );
    for (re, to) in REDACTIONS {
        s.add_filter(re, *to);
    }
    s
}

/// `s` as a regex matching it literally.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A `--json` document, pretty-printed; panics with the text when it is not JSON.
pub fn pretty_json(stdout: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(stdout)
        )
    });
    serde_json::to_string_pretty(&v).unwrap()
}

/// `assert_cli_snapshot!(dir, name, text)`: snapshot `text` under `name`, redacted (see
/// [`REDACTIONS`]); `dir` is the test's temp dir (`&Path`).
#[macro_export]
macro_rules! assert_cli_snapshot {
    ($dir:expr, $name:expr, $text:expr $(,)?) => {{
        let _guard = $crate::common::snapshot::settings($dir).bind_to_scope();
        insta::assert_snapshot!($name, $text);
    }};
}

/// `assert_json_snapshot!(dir, name, stdout)`: `stdout` must be one JSON document; snapshot it
/// pretty-printed and redacted under `name`.
#[macro_export]
macro_rules! assert_json_snapshot {
    ($dir:expr, $name:expr, $stdout:expr $(,)?) => {{
        let pretty = $crate::common::snapshot::pretty_json($stdout);
        $crate::assert_cli_snapshot!($dir, $name, pretty);
    }};
}
