//! The evidence signing key (OpenSSH Ed25519).
//!
//! The key is an ordinary OpenSSH private key file: one made by `offboard keys generate`, or an
//! existing key made with `ssh-keygen -t ed25519 -N ''`. It must be unencrypted (signing through
//! a running `ssh-agent` is planned). The private half never appears in output, logs or errors:
//! [`SigningKey`] has no `Display`, and its `Debug` shows only the path and fingerprint.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey};

use crate::evidence::NAMESPACE;
use crate::exit::{CliError, Exit};
use crate::state::StateDir;

/// The comment given to keys offboard generates, and the principal used when a key has no usable
/// comment.
pub const DEFAULT_PRINCIPAL: &str = "offboard";

/// A loaded, unencrypted Ed25519 signing key and the file it came from.
pub struct SigningKey {
    key: PrivateKey,
    path: PathBuf,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("path", &self.path)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// `ssh-ed25519 AAAA… comment` (no comment part when the key has none).
    pub fn public_line(&self) -> String {
        self.key
            .public_key()
            .to_openssh()
            .expect("an Ed25519 public key always encodes")
    }

    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The key's comment.
    pub fn comment(&self) -> &str {
        self.key.comment()
    }

    /// The principal to name this key by in an allowed_signers file: its comment when that is a
    /// usable principal, else [`DEFAULT_PRINCIPAL`].
    pub fn default_principal(&self) -> String {
        principal_for_comment(self.key.comment())
    }

    /// `<principal> namespaces="offboard-evidence" ssh-ed25519 AAAA…`: one line of an OpenSSH
    /// allowed_signers file that trusts this key for evidence only.
    pub fn allowed_signers_line(&self, principal: &str) -> String {
        allowed_signers_line(self.key.public_key(), principal)
    }

    /// An armored OpenSSH SSHSIG (`-----BEGIN SSH SIGNATURE-----`) over `msg`, namespace
    /// [`NAMESPACE`], hash sha512: what `ssh-keygen -Y sign -n offboard-evidence` produces.
    pub fn sign(&self, msg: &[u8]) -> Result<String> {
        self.sign_in(NAMESPACE, msg)
    }

    /// [`SigningKey::sign`] in another SSHSIG namespace (approvals sign in `offboard-approval`).
    pub fn sign_in(&self, namespace: &str, msg: &[u8]) -> Result<String> {
        let sig = self
            .key
            .sign(namespace, HashAlg::Sha512, msg)
            .map_err(|e| anyhow::anyhow!("signing with {}: {e}", self.path.display()))?;
        let mut pem = sig
            .to_pem(LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("encoding the signature: {e}"))?;
        if !pem.ends_with('\n') {
            pem.push('\n');
        }
        Ok(pem)
    }
}

/// The principal to name a key by in an allowed_signers file, from its comment: the comment
/// when it is a usable principal (one word, none of `,"*?!`), else [`DEFAULT_PRINCIPAL`].
pub fn principal_for_comment(comment: &str) -> String {
    let usable = !comment.is_empty()
        && comment.chars().all(|ch| {
            !ch.is_whitespace() && !ch.is_control() && !matches!(ch, ',' | '"' | '*' | '?' | '!')
        });
    if usable {
        comment.to_string()
    } else {
        DEFAULT_PRINCIPAL.to_string()
    }
}

/// `<principal> namespaces="offboard-evidence" ssh-ed25519 AAAA…` for `key`: one line of an
/// OpenSSH allowed_signers file that trusts it for evidence only.
pub fn allowed_signers_line(key: &PublicKey, principal: &str) -> String {
    format!(
        "{principal} namespaces=\"{NAMESPACE}\" {}",
        bare_public_line(key)
    )
}

/// `ssh-ed25519 AAAA…` without the comment.
pub fn bare_public_line(key: &PublicKey) -> String {
    PublicKey::new(key.key_data().clone(), "")
        .to_openssh()
        .expect("a public key always encodes")
}

/// Load an OpenSSH Ed25519 private key. A key file readable or writable by group or others is
/// refused as ssh refuses it; encrypted keys and other key types are refused with a clear
/// message.
pub fn load(path: &Path) -> Result<SigningKey> {
    let pem = private_read(path)?;
    let key = PrivateKey::from_openssh(pem.as_bytes()).map_err(|e| {
        anyhow::anyhow!(
            "{} is not an OpenSSH private key ({e}); offboard needs an Ed25519 key in OpenSSH format, e.g. from `offboard keys generate` or `ssh-keygen -t ed25519`",
            path.display()
        )
    })?;
    if key.is_encrypted() {
        bail!(
            "the signing key {} is passphrase-protected; offboard needs an unencrypted key for now (signing through ssh-agent is planned). Make a dedicated key with `offboard --key <FILE> keys generate`",
            path.display()
        );
    }
    if key.algorithm() != Algorithm::Ed25519 {
        bail!(
            "the signing key {} is {}, but offboard signs evidence with Ed25519 keys only",
            path.display(),
            key.algorithm()
        );
    }
    Ok(SigningKey {
        key,
        path: path.to_path_buf(),
    })
}

/// The public half of the key at `path`, read from the private key file (works for encrypted
/// keys too, whose public half is stored in clear), or from `<path>.pub` if the private key
/// cannot be read.
pub fn public_key_at(path: &Path) -> Result<PublicKey> {
    if let Ok(pem) = zeroizing_read(path)
        && let Ok(key) = PrivateKey::from_openssh(pem.as_bytes())
    {
        return Ok(key.public_key().clone());
    }
    let pub_path = pub_path(path);
    let text = std::fs::read_to_string(&pub_path)
        .with_context(|| format!("reading public key {}", pub_path.display()))?;
    PublicKey::from_openssh(text.trim())
        .map_err(|e| anyhow::anyhow!("{} is not an OpenSSH public key: {e}", pub_path.display()))
}

/// Read a private key file that only its owner can read or write: the permissions are those of
/// the file opened (no window to swap it), checked before a byte is read.
fn private_read(path: &Path) -> Result<KeyBytes> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("reading signing key {}", path.display()))?;
    let mode = file
        .metadata()
        .with_context(|| format!("reading signing key {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(CliError::new(
            Exit::Usage,
            anyhow::anyhow!(
                "permissions {mode:04o} for {} are too open: a private key must not be \
                 accessible by group or others, so offboard will not sign with it",
                path.display()
            ),
        )
        .hint(format!(
            "run `chmod 600 {}` (and, if others could read it, make a new key with `offboard keys generate --force`)",
            path.display()
        ))
        .into());
    }
    let mut bytes = Vec::new();
    let read = file.read_to_end(&mut bytes);
    let bytes = KeyBytes(bytes);
    read.with_context(|| format!("reading signing key {}", path.display()))?;
    Ok(bytes)
}

/// Read a key file. The buffer is wiped (best effort) by the caller's drop of [`KeyBytes`].
fn zeroizing_read(path: &Path) -> Result<KeyBytes> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading signing key {}", path.display()))?;
    Ok(KeyBytes(bytes))
}

/// Key file bytes, overwritten with zeros on drop (best effort).
struct KeyBytes(Vec<u8>);

impl KeyBytes {
    fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for KeyBytes {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

/// `<path>.pub`.
pub fn pub_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Make a new Ed25519 key: the private key at `path` (0600, atomically) and the public line at
/// `<path>.pub` (0644, atomically). Refuses to replace an existing key unless `force`.
pub fn generate(path: &Path, comment: &str, force: bool) -> Result<SigningKey> {
    if path.exists() && !force {
        return Err(CliError::usage(format!(
            "a signing key already exists at {}",
            path.display()
        ))
        .hint("keep it (evidence already signed with it stays verifiable only with its public key), or pass --force to replace it")
        .into());
    }
    let mut key = PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519)
        .map_err(|e| anyhow::anyhow!("generating an Ed25519 key: {e}"))?;
    key.set_comment(comment);
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("encoding the new key: {e}"))?;
    crate::state::write_atomic(path, pem.as_bytes())
        .with_context(|| format!("writing signing key {}", path.display()))?;
    let pub_path = pub_path(path);
    let mut line = key
        .public_key()
        .to_openssh()
        .map_err(|e| anyhow::anyhow!("encoding the public key: {e}"))?;
    line.push('\n');
    crate::state::write_atomic(&pub_path, line.as_bytes())
        .with_context(|| format!("writing public key {}", pub_path.display()))?;
    std::fs::set_permissions(&pub_path, std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("setting permissions of {}", pub_path.display()))?;
    Ok(SigningKey {
        key,
        path: path.to_path_buf(),
    })
}

/// The key to sign with: an explicit `--key` / `OFFBOARD_SIGNING_KEY` (which must exist), else
/// the state dir's default key, created on first use. Returns whether it was just created.
pub fn load_or_create(ctx_key: Option<&Path>, state: &StateDir) -> Result<(SigningKey, bool)> {
    if let Some(path) = ctx_key {
        if !path.exists() {
            return Err(CliError::new(
                Exit::Usage,
                anyhow::anyhow!("the signing key {} does not exist", path.display()),
            )
            .hint(format!(
                "create it with `offboard --key {} keys generate`, or drop --key / OFFBOARD_SIGNING_KEY to use the default key",
                path.display()
            ))
            .into());
        }
        return Ok((load(path)?, false));
    }
    let path = state.default_key_path();
    // The state dir's own key: its directory must be private and the key itself no link.
    if let Some(dir) = path.parent() {
        crate::state::create_private_dir(dir)?;
    }
    crate::state::refuse_symlink(&path)?;
    if path.exists() {
        return Ok((load(&path)?, false));
    }
    Ok((generate(&path, DEFAULT_PRINCIPAL, false)?, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_load_and_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys/k");
        let k = generate(&p, "offboard", false).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let pub_text = std::fs::read_to_string(pub_path(&p)).unwrap();
        assert_eq!(pub_text.trim_end(), k.public_line());
        assert!(k.public_line().starts_with("ssh-ed25519 AAAA"));
        assert!(k.public_line().ends_with(" offboard"));
        assert!(k.fingerprint().starts_with("SHA256:"));
        let line = k.allowed_signers_line("auditor@corp");
        assert!(
            line.starts_with("auditor@corp namespaces=\"offboard-evidence\" ssh-ed25519 AAAA"),
            "{line}"
        );
        assert!(!line.ends_with(" offboard"));
        let again = load(&p).unwrap();
        assert_eq!(again.fingerprint(), k.fingerprint());
        // The Debug form never holds the private key.
        let dbg = format!("{again:?}");
        assert!(!dbg.contains("PRIVATE"), "{dbg}");
        assert!(dbg.contains("SHA256:"));
        // No overwrite without force; with force, a different key.
        let err = generate(&p, "offboard", false).err().unwrap();
        assert!(format!("{err:#}").contains("already exists"));
        let k2 = generate(&p, "offboard", true).unwrap();
        assert_ne!(k2.fingerprint(), k.fingerprint());
    }

    #[test]
    fn load_or_create_creates_default_once_and_requires_explicit_keys_to_exist() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::resolve(Some(dir.path())).unwrap();
        let (k1, created1) = load_or_create(None, &state).unwrap();
        let (k2, created2) = load_or_create(None, &state).unwrap();
        assert!(created1 && !created2);
        assert_eq!(k1.fingerprint(), k2.fingerprint());
        assert_eq!(k1.path(), state.default_key_path());
        let missing = dir.path().join("nope");
        let err = load_or_create(Some(&missing), &state).err().unwrap();
        let cli = err.downcast_ref::<CliError>().unwrap();
        assert_eq!(cli.exit, Exit::Usage);
        assert!(cli.hints[0].contains("keys generate"));
        assert!(!missing.exists());
    }

    #[test]
    fn garbage_encrypted_and_non_ed25519_keys_are_refused_without_leaking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, "not a key SECRETSECRET").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let msg = format!("{:#}", load(&p).err().unwrap());
        assert!(msg.contains("not an OpenSSH private key"), "{msg}");
        assert!(!msg.contains("SECRETSECRET"));

        let key = PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519).unwrap();
        let enc = key.encrypt(&mut rand::rngs::OsRng, "pw").unwrap();
        std::fs::write(&p, enc.to_openssh(LineEnding::LF).unwrap().as_bytes()).unwrap();
        let msg = format!("{:#}", load(&p).err().unwrap());
        assert!(msg.contains("unencrypted key"), "{msg}");
        assert!(msg.contains("ssh-agent"), "{msg}");
        // The public half of an encrypted key can still be read (for verify).
        assert_eq!(
            public_key_at(&p).unwrap().key_data(),
            key.public_key().key_data()
        );
    }
}
