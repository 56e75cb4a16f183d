//! Reading a runbook with spans and validating it.

use std::path::{Path, PathBuf};

use super::{RunbookError, RunbookFile};

/// A loaded, validated runbook.
#[derive(Debug, Clone)]
pub struct Runbook {
    pub file: RunbookFile,
    pub path: PathBuf,
    pub source: String,
    /// sha256 hex of the file's bytes.
    pub sha256: String,
}

pub fn load_file(path: &Path) -> Result<Runbook, RunbookError> {
    let source = std::fs::read_to_string(path).map_err(|e| RunbookError {
        path: path.display().to_string(),
        source: String::new(),
        diagnostics: vec![super::Diagnostic {
            message: format!("cannot read runbook: {e}"),
            span: None,
            hint: None,
        }],
    })?;
    load_str(path, source)
}

pub fn load_str(path: &Path, source: String) -> Result<Runbook, RunbookError> {
    let file: RunbookFile = toml::from_str(&source).map_err(|e| RunbookError {
        path: path.display().to_string(),
        source: source.clone(),
        diagnostics: vec![super::Diagnostic {
            message: e.message().to_string(),
            span: e.span(),
            hint: None,
        }],
    })?;
    let sha256 = crate::journal::sha256_hex(source.as_bytes());
    Ok(Runbook {
        file,
        path: path.to_path_buf(),
        source,
        sha256,
    })
}
