//! The evidence bundle: everything a ticket, an auditor or a client's HR needs about one
//! departure, in files with fixed names (`offboard evidence bundle`, and what `attach` uploads).
//!
//! ```text
//! <id>-r<N>.json        the latest signed evidence revision N, byte for byte
//! <id>-r<N>.json.sig    its SSH signature (namespace offboard-evidence)
//! allowed_signers       the line naming the key that signed it (principal, namespace, key)
//! <id>-r<N>.html        the page a person reads (see `html`)
//! VERIFY.txt            the exact `ssh-keygen -Y verify` command, and what it proves
//! ```
//!
//! [`build`] is the one place these files are made, in memory: the same evidence revision always
//! gives the same names and the same bytes, so a bundle attached twice is recognisable by name
//! and hash. Only evidence that passes the same integrity check as every command that extends a
//! journal is bundled (the journal still starts with what was signed, the signature holds).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use ssh_key::{PublicKey, SshSig};

use super::html::{self, Page};
use super::{NAMESPACE, Trust};
use crate::integrity::{self, Tamper};
use crate::journal;
use crate::state::StateDir;

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// The file name (no directory part): fixed for a given departure and revision.
    pub name: String,
    pub bytes: Vec<u8>,
    /// The MIME type to upload it with.
    pub content_type: &'static str,
    /// SHA-256 (hex) of `bytes`.
    pub sha256: String,
}

impl BundleFile {
    fn new(name: String, bytes: Vec<u8>, content_type: &'static str) -> BundleFile {
        let sha256 = journal::sha256_hex(&bytes);
        BundleFile {
            name,
            bytes,
            content_type,
            sha256,
        }
    }
}

/// A departure's evidence bundle, in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub departure_id: String,
    /// The evidence revision bundled.
    pub revision: u32,
    /// SHA-256 (hex) of the evidence file (`files[0]`).
    pub evidence_sha256: String,
    /// `SHA256:…` of the key that signed it.
    pub signer_fingerprint: String,
    /// The name the signer is given in `allowed_signers` (`-I` of `ssh-keygen -Y verify`).
    pub principal: String,
    /// When the evidence was signed (`predicate.generated_at`).
    pub signed_at: String,
    /// The files, in this order: evidence, signature, allowed_signers, page, VERIFY.txt.
    pub files: Vec<BundleFile>,
}

/// Why a departure cannot be bundled (inside the `anyhow::Error` of [`build`]; callers that
/// choose an exit status downcast to it).
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("departure {id} has no signed evidence yet")]
    NoEvidence { id: String },
    #[error(transparent)]
    Tamper(#[from] Tamper),
    #[error(
        "the evidence of departure {id} changed while it was being read (another offboard command is signing a new revision): run this again"
    )]
    Changing { id: String },
}

pub const JSON: &str = "application/json";
pub const SIG: &str = "text/plain; charset=utf-8";
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const HTML: &str = "text/html; charset=utf-8";

/// The name every file of a revision starts with: `<id>-r<N>`.
pub fn stem(id: &str, revision: u32) -> String {
    format!("{id}-r{revision}")
}

/// Bundle the latest signed evidence of departure `id` in `state`, trusting its signer by
/// `trust` (the local signing key, say, as `status` does).
pub fn build(state: &StateDir, id: &str, trust: Trust) -> Result<Bundle> {
    if !crate::state::is_valid_id(id) {
        bail!("{id:?} is not a departure id");
    }
    // A seal by another process can move the files between the check and the read: the bytes
    // read are accepted only if they are the revision checked and their signature holds.
    for _ in 0..3 {
        let signed = match integrity::check(state, id, trust.clone()) {
            Ok(Some(s)) => s,
            Ok(None) => return Err(BundleError::NoEvidence { id: id.to_string() }.into()),
            Err(t) => return Err(BundleError::Tamper(t).into()),
        };
        let json = crate::state::read_nofollow(&signed.file)
            .with_context(|| format!("reading {}", signed.file.display()))?;
        let sig_path = super::sig_path(&signed.file);
        let sig = crate::state::read_nofollow(&sig_path)
            .with_context(|| format!("reading {}", sig_path.display()))?;
        if let Some(bundle) = assemble(id, signed.revision, json, sig)? {
            return Ok(bundle);
        }
    }
    Err(BundleError::Changing { id: id.to_string() }.into())
}

/// The bundle of one signed revision from its bytes; `None` when the bytes are not that revision
/// of that departure with a signature that holds over them.
fn assemble(id: &str, revision: u32, json: Vec<u8>, sig: Vec<u8>) -> Result<Option<Bundle>> {
    let Ok(statement) = serde_json::from_slice::<Value>(&json) else {
        return Ok(None);
    };
    let p = &statement["predicate"];
    if p.pointer("/departure/id").and_then(Value::as_str) != Some(id)
        || p.get("revision").and_then(Value::as_u64) != Some(u64::from(revision))
    {
        return Ok(None);
    }
    let Some(key) = p
        .pointer("/signer/public_key")
        .and_then(Value::as_str)
        .and_then(|k| PublicKey::from_openssh(k).ok())
    else {
        return Ok(None);
    };
    let holds = std::str::from_utf8(&sig)
        .ok()
        .and_then(|pem| SshSig::from_pem(pem).ok())
        .is_some_and(|s| key.verify(NAMESPACE, &json, &s).is_ok());
    if !holds {
        return Ok(None);
    }

    let stem = stem(id, revision);
    let json_name = format!("{stem}.json");
    let evidence_sha256 = journal::sha256_hex(&json);
    let principal = html::principal_of(p);
    let fingerprint = key.fingerprint(ssh_key::HashAlg::Sha256).to_string();
    let signed_at = p
        .get("generated_at")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let page = html::render_html(
        &statement,
        &Page {
            file_name: &json_name,
            sha256: &evidence_sha256,
        },
    )?;
    let allowed = format!(
        "{}\n",
        crate::keys::allowed_signers_line(&key, &quote_principal(&principal))
    );
    let verify = verify_text(
        id,
        revision,
        &stem,
        &evidence_sha256,
        &fingerprint,
        &principal,
        &signed_at,
    );
    let files = vec![
        BundleFile::new(json_name.clone(), json, JSON),
        BundleFile::new(format!("{json_name}.sig"), sig, SIG),
        BundleFile::new("allowed_signers".into(), allowed.into_bytes(), TEXT),
        BundleFile::new(format!("{stem}.html"), page.into_bytes(), HTML),
        BundleFile::new("VERIFY.txt".into(), verify.into_bytes(), TEXT),
    ];
    Ok(Some(Bundle {
        departure_id: id.to_string(),
        revision,
        evidence_sha256,
        signer_fingerprint: fingerprint,
        principal,
        signed_at,
        files,
    }))
}

/// A principal as an allowed_signers file takes it: in double quotes when it starts with `#`,
/// which would make the line a comment (the principal rule already keeps out `"` and spaces).
fn quote_principal(p: &str) -> String {
    if p.starts_with('#') {
        format!("\"{p}\"")
    } else {
        p.to_string()
    }
}

/// A word for a POSIX shell command line.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+' | '/'));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn verify_text(
    id: &str,
    revision: u32,
    stem: &str,
    sha256: &str,
    fingerprint: &str,
    principal: &str,
    signed_at: &str,
) -> String {
    let principal = shell_word(principal);
    let verify_time = chrono::DateTime::parse_from_rfc3339(signed_at)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y%m%d%H%M%SZ")
                .to_string()
        })
        .unwrap_or_else(|_| "<signing time as YYYYMMDDhhmmssZ>".into());
    format!(
        "Evidence of departure {id}, revision {revision}

{stem}.json
    the signed evidence, sha256 {sha256}
{stem}.json.sig
    its SSH signature
allowed_signers
    the key that signed it, {fingerprint}
{stem}.html
    the same evidence as a page to read and print (the page itself is not signed)

Check the signature with OpenSSH alone, in this folder:

  ssh-keygen -Y verify -f allowed_signers -I {principal} -n {NAMESPACE} -s {stem}.json.sig < {stem}.json

It prints
  Good \"{NAMESPACE}\" signature for {principal} with ED25519 key {fingerprint}
and exits 0. A single changed byte in the .json file makes it fail.

The allowed_signers file here travels with the evidence, so on its own it proves only that the
file is unchanged since that key signed it. Who holds the key is proved by the fingerprint:
compare {fingerprint}
with the one the signer gave you over a channel you trust (`offboard keys show` prints it), or
use an allowed_signers file of your own. If yours gives the key a valid-after/valid-before
window, add -Overify-time={verify_time} (when the evidence was signed).

With offboard, which also checks the journal's hash chain inside the file:

  offboard evidence verify {stem}.json --allowed-signers allowed_signers
"
    )
}

impl Bundle {
    /// `<id>-r<N>`.
    pub fn stem(&self) -> String {
        stem(&self.departure_id, self.revision)
    }

    /// The file named `name`.
    pub fn file(&self, name: &str) -> Option<&BundleFile> {
        self.files.iter().find(|f| f.name == name)
    }

    /// Write every file into `dir` (created 0700 if missing), each atomically and 0600; a file
    /// of the same name is replaced. Returns the paths written.
    pub fn write_dir(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        if dir.exists() && !dir.is_dir() {
            bail!("{} exists and is not a directory", dir.display());
        }
        if !dir.exists() {
            crate::state::create_private_dir(dir)?;
        }
        let mut written = Vec::new();
        for f in &self.files {
            let path = dir.join(&f.name);
            crate::state::write_atomic(&path, &f.bytes)
                .with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
        Ok(written)
    }

    /// The files as one ZIP archive (stored, mode 0600, each dated when the evidence was signed),
    /// written with the `zip` crate: the same files always give the same bytes.
    pub fn zip(&self) -> Result<Vec<u8>> {
        use chrono::{Datelike, Timelike};
        use std::io::Write;
        let t = chrono::DateTime::parse_from_rfc3339(&self.signed_at)
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default();
        // ZIP dates run from 1980 to 2107, to two seconds.
        let mtime = u16::try_from(t.year())
            .ok()
            .and_then(|year| {
                zip::DateTime::from_date_and_time(
                    year,
                    t.month() as u8,
                    t.day() as u8,
                    t.hour() as u8,
                    t.minute() as u8,
                    t.second().min(58) as u8,
                )
                .ok()
            })
            .unwrap_or_default();
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .last_modified_time(mtime)
            .unix_permissions(0o600);
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for f in &self.files {
            w.start_file(f.name.as_str(), options)
                .with_context(|| format!("adding {} to the zip", f.name))?;
            w.write_all(&f.bytes)
                .with_context(|| format!("adding {} to the zip", f.name))?;
        }
        Ok(w.finish().context("finishing the zip")?.into_inner())
    }

    /// Write [`Bundle::zip`] to `path`, atomically and 0600.
    pub fn write_zip(&self, path: &Path) -> Result<()> {
        let bytes = self.zip()?;
        crate::state::write_atomic(path, &bytes)
            .with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::testutil::{self, ID};

    struct Fixture {
        dir: tempfile::TempDir,
        state: StateDir,
        journal: journal::Journal,
        key: crate::keys::SigningKey,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::resolve(Some(&dir.path().join("state"))).unwrap();
        let journal = testutil::journal(&state.departure_dir(ID));
        let key =
            crate::keys::generate(&dir.path().join("key"), "auditor@corp.example", false).unwrap();
        Fixture {
            dir,
            state,
            journal,
            key,
        }
    }

    impl Fixture {
        fn trust(&self) -> Trust {
            Trust::Keys(vec![self.key.public_key().clone()])
        }
    }

    #[test]
    fn a_departure_never_signed_has_no_bundle() {
        let f = fixture();
        let err = build(&f.state, ID, f.trust()).unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<BundleError>(),
                Some(BundleError::NoEvidence { .. })
            ),
            "{err:#}"
        );
    }

    #[test]
    fn the_latest_revision_is_bundled_with_fixed_names_and_the_signers_line() {
        let mut f = fixture();
        crate::evidence::seal(&f.state, &mut f.journal, &f.key).unwrap();
        let sealed = crate::evidence::seal(&f.state, &mut f.journal, &f.key).unwrap();
        let b = build(&f.state, ID, f.trust()).unwrap();
        assert_eq!(b.revision, 2);
        let names: Vec<&str> = b.files.iter().map(|f| f.name.as_str()).collect();
        let stem = format!("{ID}-r2");
        assert_eq!(
            names,
            [
                format!("{stem}.json").as_str(),
                &format!("{stem}.json.sig"),
                "allowed_signers",
                &format!("{stem}.html"),
                "VERIFY.txt"
            ]
        );
        assert_eq!(b.files[0].bytes, std::fs::read(&sealed.json_path).unwrap());
        assert_eq!(b.files[0].sha256, sealed.sha256);
        assert_eq!(b.evidence_sha256, sealed.sha256);
        assert_eq!(b.files[1].bytes, std::fs::read(&sealed.sig_path).unwrap());
        assert_eq!(b.principal, "auditor@corp.example");
        assert_eq!(b.signer_fingerprint, f.key.fingerprint());
        assert_eq!(
            String::from_utf8(b.file("allowed_signers").unwrap().bytes.clone()).unwrap(),
            format!("{}\n", f.key.allowed_signers_line("auditor@corp.example"))
        );
        let verify = String::from_utf8(b.file("VERIFY.txt").unwrap().bytes.clone()).unwrap();
        assert!(verify.contains(&format!(
            "ssh-keygen -Y verify -f allowed_signers -I auditor@corp.example -n offboard-evidence -s {stem}.json.sig < {stem}.json\n"
        )), "{verify}");
        assert!(verify.contains(&sealed.sha256), "{verify}");
        // Every file's hash is of its bytes; building again gives the same bundle.
        for file in &b.files {
            assert_eq!(file.sha256, journal::sha256_hex(&file.bytes));
        }
        assert_eq!(build(&f.state, ID, f.trust()).unwrap(), b);
        assert_eq!(b.zip().unwrap(), b.zip().unwrap());
    }

    #[test]
    fn evidence_changed_after_it_was_signed_is_not_bundled() {
        let mut f = fixture();
        let sealed = crate::evidence::seal(&f.state, &mut f.journal, &f.key).unwrap();
        let text = std::fs::read_to_string(&sealed.json_path).unwrap();
        std::fs::write(&sealed.json_path, text.replace("HR-1234", "HR-9999")).unwrap();
        let err = build(&f.state, ID, f.trust()).unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<BundleError>(),
                Some(BundleError::Tamper(_))
            ),
            "{err:#}"
        );
    }

    #[test]
    fn bytes_that_are_not_the_checked_revision_or_not_signed_are_refused() {
        let mut f = fixture();
        let sealed = crate::evidence::seal(&f.state, &mut f.journal, &f.key).unwrap();
        let json = std::fs::read(&sealed.json_path).unwrap();
        let sig = std::fs::read(&sealed.sig_path).unwrap();
        assert!(
            assemble(ID, 1, json.clone(), sig.clone())
                .unwrap()
                .is_some()
        );
        assert!(
            assemble(ID, 2, json.clone(), sig.clone())
                .unwrap()
                .is_none()
        );
        let changed = String::from_utf8(json.clone())
            .unwrap()
            .replace("HR-1234", "HR-1235");
        assert!(
            assemble(ID, 1, changed.into_bytes(), sig.clone())
                .unwrap()
                .is_none()
        );
        let other = crate::keys::generate(&f.dir.path().join("other"), "x", false).unwrap();
        let forged = other.sign(&json).unwrap().into_bytes();
        assert!(assemble(ID, 1, json, forged).unwrap().is_none());
    }
}
