//! Resolving secret references. Values live in `SecretString` and are never logged, journaled
//! or put into an error message.

use std::process::Command;

use anyhow::{Context, Result, bail};
use secrecy::SecretString;

use crate::runbook::SecretRef;

/// Read the secret a reference points at. Errors name the reference, never the value.
pub fn resolve(r: &SecretRef) -> Result<SecretString> {
    let value = match r {
        SecretRef::Env { env } => std::env::var(env)
            .with_context(|| format!("environment variable {env} is not set (or not UTF-8)"))?,
        SecretRef::File { file } => {
            let path = expand_home(file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading secret file {}", path.display()))?;
            text.lines().next().unwrap_or("").to_string()
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
