//! What the service desk kinds' tests share: a desk built from a `[ticketing]` table as a
//! departure would build it (settings, secrets resolved), the files of an evidence
//! revision, and `deliver` as `offboard attach` calls it.

use std::sync::{Arc, Mutex};

use offboard::providers::{CallCtx, ProviderError, RetryNote};
use offboard::runbook::TicketingDef;
use offboard::ticketing::{self, AttachFile, Delivered, Ticketing};

/// A desk of `kind` at `base_url` with these settings and resolved secrets.
pub fn desk(
    kind: &str,
    base_url: &str,
    settings: &[(&str, toml::Value)],
    secrets: &[(&str, &str)],
) -> Arc<dyn Ticketing> {
    let def = TicketingDef {
        kind: kind.into(),
        base_url: base_url.into(),
        close_status: None,
        timeout_secs: Some(5),
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    };
    let mut cfg = ticketing::config(&def);
    for (k, v) in secrets {
        cfg.secrets
            .insert(k.to_string(), secrecy::SecretString::from(v.to_string()));
    }
    let kind = ticketing::find_kind(kind).expect("a known kind");
    (kind.connect)(&cfg).unwrap()
}

pub fn text(s: &str) -> toml::Value {
    toml::Value::String(s.into())
}

/// Revision `rev` of departure d1: its evidence, signature and the allowed_signers line (the
/// same for every revision).
pub fn files(rev: u32) -> Vec<AttachFile> {
    vec![
        AttachFile::new(
            format!("d1-r{rev}.json"),
            "application/json",
            // Not only ASCII, and with what looks like a multipart delimiter inside.
            format!("{{\"revision\":{rev},\"name\":\"Zoë\"}}\r\n--x\r\n").into_bytes(),
        ),
        AttachFile::new(
            format!("d1-r{rev}.json.sig"),
            "text/plain",
            format!("-----BEGIN SSH SIGNATURE-----\n{rev}\n-----END SSH SIGNATURE-----\n")
                .into_bytes(),
        ),
        AttachFile::new(
            "d1.allowed_signers",
            "text/plain",
            b"offboard namespaces=\"offboard-evidence\" ssh-ed25519 AAAA\n".to_vec(),
        ),
    ]
}

/// The note `offboard attach` would write for these files: it names the evidence's sha256,
/// which is how a later attach recognises it.
pub fn note(files: &[AttachFile]) -> String {
    format!(
        "Offboarding evidence for alice@corp.example.\nEvidence revision: {} (sha256 {}).\nCheck: ssh-keygen -Y verify -f d1.allowed_signers -I offboard -n offboard-evidence -s {}.sig < {}",
        files[0].name, files[0].sha256, files[0].name, files[0].name
    )
}

pub async fn deliver(
    desk: &dyn Ticketing,
    ticket: &str,
    files: &[AttachFile],
) -> Result<Delivered, ProviderError> {
    deliver_with(desk, ticket, files, &CallCtx::silent()).await
}

pub async fn deliver_with(
    desk: &dyn Ticketing,
    ticket: &str,
    files: &[AttachFile],
    ctx: &CallCtx,
) -> Result<Delivered, ProviderError> {
    ticketing::deliver(desk, ticket, files, &note(files), &files[0].sha256, ctx).await
}

/// A context that keeps every retry it is told of.
pub fn recording_ctx() -> (CallCtx, Arc<Mutex<Vec<RetryNote>>>) {
    let notes = Arc::new(Mutex::new(Vec::new()));
    let n = notes.clone();
    (
        CallCtx::new(move |note| n.lock().unwrap().push(note)),
        notes,
    )
}
