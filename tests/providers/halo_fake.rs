//! The `halo` ticketing kind against a fake of HaloPSA's API (tests/common/fake_halo.rs): OAuth
//! client credentials through the kit (tenant, scope `all`, one token reused, a new one after a
//! 401), files as base64 records, a private note, nothing uploaded twice, a note that failed
//! after its files added alone by the next attach, and the error paths (a wrong secret, an
//! unknown ticket, an attachment over the size limit, a status name where Halo wants an id),
//! every request checked against the contract and no secret in any message.

use std::sync::Arc;

use offboard::providers::{CallCtx, ProviderError};
use offboard::runbook::{TicketStatus, TicketingDef};
use offboard::ticketing::{self, AttachFile, Ticketing, halo};

use crate::common::fake_halo::FakeHalo;
use crate::common::fake_kit::{Fault, RetryAfterStyle};

const CLIENT: &str = "offboard-halo";
const SECRET: &str = "hs-SECRET-3a9c77e1";
const TENANT: &str = "acme";

fn desk(fake: &FakeHalo, secret: &str) -> Arc<dyn Ticketing> {
    let mut settings = std::collections::BTreeMap::new();
    settings.insert("client_id".to_string(), toml::Value::String(CLIENT.into()));
    settings.insert("tenant".to_string(), toml::Value::String(TENANT.into()));
    let def = TicketingDef {
        kind: "halo".into(),
        base_url: fake.server.base_url.clone(),
        close_status: None,
        timeout_secs: Some(5),
        settings,
    };
    let mut cfg = ticketing::config(&def);
    cfg.secrets.insert(
        "client_secret".into(),
        secrecy::SecretString::from(secret.to_string()),
    );
    (halo::KIND.connect)(&cfg).unwrap()
}

fn files(rev: u32) -> Vec<AttachFile> {
    vec![
        AttachFile::new(
            format!("d1-r{rev}.json"),
            "application/json",
            format!("{{\"revision\":{rev}}}\n").into_bytes(),
        ),
        AttachFile::new(
            format!("d1-r{rev}.json.sig"),
            "text/plain",
            format!("-----BEGIN SSH SIGNATURE-----\n{rev}\n").into_bytes(),
        ),
        AttachFile::new(
            "d1.allowed_signers",
            "text/plain",
            b"offboard ssh-ed25519 AAAA\n".to_vec(),
        ),
    ]
}

async fn deliver(
    desk: &dyn Ticketing,
    ticket: &str,
    files: &[AttachFile],
) -> Result<ticketing::Delivered, ProviderError> {
    let marker = files[0].sha256.clone();
    ticketing::deliver(
        desk,
        ticket,
        files,
        &format!("Evidence sha256 {marker}"),
        &marker,
        &CallCtx::silent(),
    )
    .await
}

fn posts(fake: &FakeHalo, path: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.raw_path == path)
        .count()
}

#[tokio::test]
async fn base64_files_and_a_private_note_once_with_one_token() {
    let fake = FakeHalo::start(CLIENT, SECRET, Some(TENANT)).await;
    let ticket = fake.add_ticket();
    let d = desk(&fake, SECRET);
    let first = deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    assert!(first.note_added && first.files.iter().all(|f| f.uploaded));
    let t = fake.ticket(&ticket);
    for (a, f) in t.attachments.iter().zip(files(1)) {
        assert_eq!((a.filename.as_str(), &a.bytes), (f.name.as_str(), &f.bytes));
    }
    let ids: Vec<String> = t.attachments.iter().map(|a| a.id.to_string()).collect();
    let got: Vec<String> = first
        .files
        .iter()
        .map(|f| f.attachment_id.clone())
        .collect();
    assert_eq!(got, ids);
    assert_eq!(t.actions.len(), 1);
    assert_eq!(t.actions[0].outcome, "Note");
    assert!(t.actions[0].hidden_from_user, "the note is private");
    assert_eq!(first.note_id, Some(t.actions[0].id.to_string()));

    let again = deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    assert!(again.was_there(), "{again:?}");
    assert_eq!(posts(&fake, "/api/Attachment"), 3);
    assert_eq!(posts(&fake, "/api/Actions"), 1);
    assert_eq!(fake.issued(), 1, "one token for every request");
    let token_req = fake
        .requests()
        .into_iter()
        .find(|r| r.raw_path == "/auth/token")
        .unwrap();
    assert_eq!(token_req.query_param("tenant"), Some(TENANT));
    fake.assert_contract();
}

#[tokio::test]
async fn a_wrong_secret_gets_no_token_and_is_not_echoed() {
    let fake = FakeHalo::start(CLIENT, SECRET, Some(TENANT)).await;
    let ticket = fake.add_ticket();
    let wrong = "hs-SECRET-wrong-1111";
    let e = deliver(desk(&fake, wrong).as_ref(), &ticket, &files(1))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("invalid_client"), "{msg}");
    assert!(!msg.contains(wrong) && !msg.contains(SECRET), "{msg}");
    assert!(
        fake.requests()
            .iter()
            .all(|r| !r.raw_path.starts_with("/api"))
    );
}

#[tokio::test]
async fn a_revoked_token_is_renewed_once() {
    let fake = FakeHalo::start(CLIENT, SECRET, Some(TENANT)).await;
    let ticket = fake.add_ticket();
    let d = desk(&fake, SECRET);
    deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    fake.revoke_tokens();
    let next = deliver(d.as_ref(), &ticket, &files(2)).await.unwrap();
    assert!(next.note_added);
    assert_eq!(fake.issued(), 2);
    fake.assert_contract();
}

#[tokio::test]
async fn a_note_that_failed_after_its_files_is_added_alone_next_time() {
    let fake = FakeHalo::start(CLIENT, SECRET, Some(TENANT)).await;
    let ticket = fake.add_ticket();
    let d = desk(&fake, SECRET);
    fake.server
        .fail_next_on("POST", "/api/Actions", Fault::server_error());
    let e = deliver(d.as_ref(), &ticket, &files(1)).await.unwrap_err();
    assert!(e.to_string().contains("500"), "{e}");
    assert_eq!(fake.ticket(&ticket).attachments.len(), 3);
    assert!(fake.ticket(&ticket).actions.is_empty());
    let retry = deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    assert!(
        retry.note_added && retry.files.iter().all(|f| !f.uploaded),
        "{retry:?}"
    );
    assert_eq!(posts(&fake, "/api/Attachment"), 3);
    assert_eq!(fake.ticket(&ticket).actions.len(), 1);
}

#[tokio::test]
async fn rate_limited_uploads_wait_and_go_on() {
    let fake = FakeHalo::start(CLIENT, SECRET, Some(TENANT)).await;
    let ticket = fake.add_ticket();
    fake.server.fail_next_on(
        "POST",
        "/api/Attachment",
        Fault::too_many(RetryAfterStyle::Seconds(1)),
    );
    let d = deliver(desk(&fake, SECRET).as_ref(), &ticket, &files(1))
        .await
        .unwrap();
    assert!(d.files.iter().all(|f| f.uploaded));
    assert_eq!(fake.ticket(&ticket).attachments.len(), 3);
}

#[tokio::test]
async fn unknown_ticket_size_limit_and_status_names() {
    let fake = FakeHalo::start(CLIENT, SECRET, Some(TENANT)).await;
    let d = desk(&fake, SECRET);
    let e = deliver(d.as_ref(), "999", &files(1)).await.unwrap_err();
    let ProviderError::NotFound(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(
        msg.contains("Ticket not found") && msg.contains("HaloPSA has no ticket 999"),
        "{msg}"
    );

    let ticket = fake.add_ticket();
    fake.set_max_size(10);
    let e = deliver(d.as_ref(), &ticket, &files(1)).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("larger than the maximum allowed size of 10 bytes"),
        "{e}"
    );
    assert!(fake.ticket(&ticket).actions.is_empty());

    let ctx = CallCtx::silent();
    assert_eq!(
        d.close(&ticket, &TicketStatus::Id(9), &ctx).await.unwrap(),
        "9"
    );
    assert_eq!(fake.ticket(&ticket).status_id, 9);
    let e = d
        .close(&ticket, &TicketStatus::Name("Closed".into()), &ctx)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("close_status = 9"), "{e}");
    let t2 = fake.add_ticket();
    let e = d.close(&t2, &TicketStatus::Id(77), &ctx).await.unwrap_err();
    assert!(e.to_string().contains("left ticket"), "{e}");
    fake.assert_contract();
}
