//! `offboard keys`: make or show the evidence signing key.

use serde_json::json;

use crate::cli::KeysCommand;
use crate::exit::{CliError, Exit};
use crate::keys::{self, SigningKey};

use super::Ctx;

pub fn exec(ctx: &Ctx, cmd: KeysCommand) -> anyhow::Result<Exit> {
    let path = ctx
        .global
        .key
        .clone()
        .unwrap_or_else(|| ctx.state.default_key_path());
    if ctx.global.key.is_none() {
        // The state dir's own key: a keys/ dir others can write to, or a link in place of the
        // key, is refused before the key is read or replaced.
        if let Some(dir) = path.parent().filter(|d| d.exists()) {
            crate::state::create_private_dir(dir)?;
        }
        crate::state::refuse_symlink(&path)?;
    }
    match cmd {
        KeysCommand::Generate { force } => {
            if path.exists() && !force {
                return Err(CliError::usage(format!(
                    "a signing key already exists at {}",
                    path.display()
                ))
                .hint("`offboard keys show` prints its public line; pass --force to replace it (evidence it signed then verifies only with the old public key)")
                .into());
            }
            let key = keys::generate(&path, keys::DEFAULT_PRINCIPAL, force)?;
            let p = &ctx.printer;
            p.info(format!(
                "wrote {} (private, 0600) and {}",
                path.display(),
                keys::pub_path(&path).display()
            ));
            print_key(ctx, &key);
            Ok(Exit::Ok)
        }
        KeysCommand::Show => {
            if !path.exists() {
                return Err(
                    CliError::usage(format!("no signing key at {}", path.display()))
                        .hint(if ctx.global.key.is_some() {
                            format!(
                                "create it with `offboard --key {} keys generate`",
                                path.display()
                            )
                        } else {
                            "create one with `offboard keys generate`".to_string()
                        })
                        .into(),
                );
            }
            let key = keys::load(&path)?;
            print_key(ctx, &key);
            Ok(Exit::Ok)
        }
    }
}

fn print_key(ctx: &Ctx, key: &SigningKey) {
    let principal = key.default_principal();
    let allowed = key.allowed_signers_line(&principal);
    let p = &ctx.printer;
    p.result(format!(
        "key:         {}\npublic key:  {}\nfingerprint: {}\n\nGive auditors this allowed_signers line:\n{allowed}",
        key.path().display(),
        key.public_line(),
        key.fingerprint(),
    ));
    p.json_result(&json!({
        "path": key.path(),
        "public_key": key.public_line(),
        "fingerprint": key.fingerprint(),
        "allowed_signers": allowed,
    }));
}
