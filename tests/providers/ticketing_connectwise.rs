//! The `connectwise` ticketing kind against a fake of ConnectWise Manage's REST API
//! (tests/common/fake_connectwise.rs): each file a private document on the ticket (multipart,
//! the ticket as its record), downloaded back and hashed, the note an internal analysis note,
//! nothing uploaded twice (the notes read across pages), the `clientId` header on every
//! request, closing with a JSON Patch, and the error paths in ConnectWise's words without the
//! private key.

use base64::Engine;
use offboard::providers::{CallCtx, ProviderError};
use offboard::runbook::TicketStatus;
use offboard::ticketing::Ticketing;

use crate::common::fake_connectwise::FakeConnectWise;
use crate::common::fake_kit::{Fault, RetryAfterStyle};
use crate::common::psa::{deliver, desk, files, text};

const COMPANY: &str = "corpabc";
const PUBLIC: &str = "Pub1ic0ffb0ard";
const PRIVATE: &str = "PRIV-SECRET-c0nn3ctw1se";
const CLIENT_ID: &str = "8d1b7e3c-2f4a-4b6e-9c1d-0a5f3e7b9c21";

async fn fake() -> FakeConnectWise {
    FakeConnectWise::start(COMPANY, PUBLIC, PRIVATE, CLIENT_ID).await
}

fn cw_as(fake: &FakeConnectWise, private: &str, client_id: &str) -> std::sync::Arc<dyn Ticketing> {
    desk(
        "connectwise",
        &fake.server.base_url,
        &[
            ("company_id", text(COMPANY)),
            ("public_key", text(PUBLIC)),
            ("client_id", text(client_id)),
        ],
        &[("private_key", private)],
    )
}

fn cw(fake: &FakeConnectWise) -> std::sync::Arc<dyn Ticketing> {
    cw_as(fake, PRIVATE, CLIENT_ID)
}

fn count(fake: &FakeConnectWise, method: &str, path_end: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method && r.raw_path.ends_with(path_end))
        .count()
}

fn assert_no_key(msg: &str) {
    let pair =
        base64::engine::general_purpose::STANDARD.encode(format!("{COMPANY}+{PUBLIC}:{PRIVATE}"));
    assert!(
        !msg.contains(PRIVATE) && !msg.contains("SECRET") && !msg.contains(&pair),
        "{msg}"
    );
}

#[tokio::test]
async fn files_as_private_documents_an_internal_note_and_nothing_twice() {
    let fake = fake().await;
    let ticket = fake.add_ticket();
    let d = cw(&fake);
    let first = deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    assert!(
        first.note_added && first.files.iter().all(|f| f.uploaded),
        "{first:?}"
    );
    let docs = fake.documents(&ticket);
    assert_eq!(docs.len(), 3);
    for (doc, f) in docs.iter().zip(files(1)) {
        assert_eq!(
            (doc.file_name.as_str(), doc.title.as_str()),
            (f.name.as_str(), f.name.as_str())
        );
        assert_eq!(doc.bytes, f.bytes, "{}", f.name);
        assert!(doc.private, "{}", f.name);
    }
    assert_eq!(
        first
            .files
            .iter()
            .map(|f| f.attachment_id.clone())
            .collect::<Vec<_>>(),
        docs.iter().map(|d| d.id.to_string()).collect::<Vec<_>>()
    );
    let notes = fake.ticket(&ticket).notes;
    assert_eq!(notes.len(), 1);
    assert!(notes[0].internal_analysis && !notes[0].detail_description && !notes[0].resolution);
    assert!(notes[0].text.contains(&files(1)[0].sha256));

    let again = deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    assert!(again.was_there(), "{again:?}");
    assert_eq!(count(&fake, "POST", "/system/documents"), 3);
    assert_eq!(count(&fake, "POST", "/notes"), 1);
    assert_eq!(
        count(&fake, "GET", "/download"),
        3,
        "each file read back once"
    );

    let next = deliver(d.as_ref(), &ticket, &files(2)).await.unwrap();
    let uploaded: Vec<bool> = next.files.iter().map(|f| f.uploaded).collect();
    assert_eq!(uploaded, [true, true, false]);
    // The clientId header went with every request.
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.header("clientid") == Some(CLIENT_ID)),
        "clientId on every request"
    );
    fake.assert_contract();
}

#[tokio::test]
async fn the_note_is_found_on_a_later_page_of_a_busy_ticket() {
    let fake = fake().await;
    let ticket = fake.add_ticket();
    fake.add_notes(&ticket, 1000);
    let d = cw(&fake);
    deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    let again = deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    assert!(again.was_there(), "{again:?}");
    assert_eq!(fake.ticket(&ticket).notes.len(), 1001);
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.raw_path.ends_with("/notes") && r.query_param("page") == Some("2")),
        "the second page was read"
    );
    fake.assert_contract();
}

#[tokio::test]
async fn a_wrong_client_id_or_key_is_refused_in_connectwises_words() {
    let fake = fake().await;
    let ticket = fake.add_ticket();
    let e = deliver(
        cw_as(&fake, PRIVATE, "00000000-0000-0000-0000-000000000000").as_ref(),
        &ticket,
        &files(1),
    )
    .await
    .unwrap_err();
    let ProviderError::Permanent(m) = &e else {
        panic!("{e:?}")
    };
    assert!(
        m.contains("401") && m.contains("A valid clientId header is required."),
        "{m}"
    );
    assert_no_key(m);
    let wrong = "PRIV-SECRET-wrong-0000";
    let e = deliver(cw_as(&fake, wrong, CLIENT_ID).as_ref(), &ticket, &files(1))
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    assert!(m.contains("Authentication failed"), "{m}");
    assert_no_key(&m);
    assert!(!m.contains(wrong), "{m}");
    assert_eq!(fake.requests().len(), 2, "neither is retried");
    assert!(fake.documents(&ticket).is_empty());
}

#[tokio::test]
async fn a_busy_connectwise_is_waited_for() {
    let fake = fake().await;
    let ticket = fake.add_ticket();
    fake.server.fail_next_on(
        "POST",
        "/system/documents",
        Fault::too_many(RetryAfterStyle::Seconds(1)),
    );
    let d = deliver(cw(&fake).as_ref(), &ticket, &files(1))
        .await
        .unwrap();
    assert!(d.files.iter().all(|f| f.uploaded));
    assert_eq!(count(&fake, "POST", "/system/documents"), 4);
    assert_eq!(fake.documents(&ticket).len(), 3);
    fake.assert_contract();
}

#[tokio::test]
async fn close_with_a_json_patch_by_status_name_or_id() {
    let fake = fake().await;
    let d = cw(&fake);
    let ctx = CallCtx::silent();
    let t1 = fake.add_ticket();
    assert_eq!(
        d.close(&t1, &TicketStatus::Name("closed (resolved)".into()), &ctx)
            .await
            .unwrap(),
        "Closed (resolved)"
    );
    assert_eq!(fake.ticket(&t1).status.1, "Closed (resolved)");
    let t2 = fake.add_ticket();
    assert_eq!(
        d.close(&t2, &TicketStatus::Id(3), &ctx).await.unwrap(),
        "Waiting on client"
    );
    let e = d
        .close(&t2, &TicketStatus::Name("Closed".into()), &ctx)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("ticket object is invalid (status: The status is not valid for this board.)"),
        "{e}"
    );
    fake.assert_contract();
}

#[tokio::test]
async fn an_unknown_ticket_is_not_found() {
    let fake = fake().await;
    let e = deliver(cw(&fake).as_ref(), "4711", &files(1))
        .await
        .unwrap_err();
    let ProviderError::NotFound(m) = &e else {
        panic!("{e:?}")
    };
    assert!(
        m.contains("Ticket ID 4711 not found.") && m.contains("ConnectWise has no ticket 4711"),
        "{m}"
    );
}
