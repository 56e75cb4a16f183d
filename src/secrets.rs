//! Resolving secret references. Values live in `SecretString` and are never logged, journaled
//! or put into an error message.

use std::process::Command;

use anyhow::{Context, Result, bail};
use secrecy::SecretString;

use crate::runbook::SecretRef;

/// Read the secret a reference points at. Errors name the reference, never the value.
pub fn resolve(r: &SecretRef) -> Result<SecretString> {
    read(r, false)
}

/// Read a secret that is a document (a PEM private key, a JSON service-account key): like
/// [`resolve`], but a file is read whole rather than its first line.
pub fn resolve_document(r: &SecretRef) -> Result<SecretString> {
    read(r, true)
}

fn read(r: &SecretRef, document: bool) -> Result<SecretString> {
    let value = match r {
        SecretRef::Env { env } => std::env::var(env)
            .with_context(|| format!("environment variable {env} is not set (or not UTF-8)"))?,
        SecretRef::File { file } => {
            let path = expand_home(file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading secret file {}", path.display()))?;
            if document {
                text
            } else {
                text.lines().next().unwrap_or("").to_string()
            }
        }
        SecretRef::Command { command } => {
            let (prog, args) = command.split_first().context("secret command is empty")?;
            let out = Command::new(prog)
                .args(args)
                .stdin(std::process::Stdio::null())
                .output()
                .with_context(|| format!("running secret command `{prog}`"))?;
            if !out.status.success() {
                bail!("secret command `{prog}` exited with {}", out.status);
            }
            String::from_utf8(out.stdout).context("secret command printed non-UTF-8")?
        }
    };
    let value = value.trim().to_string();
    if value.is_empty() {
        bail!("the secret from {r} is empty");
    }
    Ok(SecretString::from(value))
}

fn expand_home(p: &str) -> std::path::PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::Path::new(&home).join(rest),
        _ => std::path::PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_file_secret_is_its_first_line_and_a_document_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
        std::fs::write(&path, pem).unwrap();
        let r = SecretRef::File {
            file: path.display().to_string(),
        };
        assert_eq!(
            resolve(&r).unwrap().expose_secret(),
            "-----BEGIN PRIVATE KEY-----"
        );
        assert_eq!(resolve_document(&r).unwrap().expose_secret(), pem.trim());
        std::fs::write(&path, "\n  \n").unwrap();
        let e = resolve_document(&r).unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");
    }
}
