//! The `freshservice` ticketing kind against a fake of Freshservice's API v2
//! (tests/common/fake_freshservice.rs): the files appended in one multipart ticket update
//! (`attachments[]`), never sent again once it may have arrived, the note a private one in
//! HTML, nothing uploaded twice (attachments known by name and size, the notes read across
//! pages), closing by status, and the error paths in Freshservice's words without the API key.

use base64::Engine;
use offboard::providers::{CallCtx, ProviderError};
use offboard::runbook::TicketStatus;
use offboard::ticketing::{AttachFile, Ticketing};

use crate::common::fake_freshservice::FakeFreshservice;
use crate::common::fake_kit::{Fault, Reply};
use crate::common::psa::{deliver, deliver_with, desk, files, recording_ctx};

const KEY: &str = "fs-SECRET-Xk29fj3Lq";

fn fs(fake: &FakeFreshservice, key: &str) -> std::sync::Arc<dyn Ticketing> {
    desk(
        "freshservice",
        &fake.server.base_url,
        &[],
        &[("api_key", key)],
    )
}

fn count(fake: &FakeFreshservice, method: &str, path_end: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method && r.raw_path.ends_with(path_end))
        .count()
}

#[tokio::test]
async fn files_in_one_update_a_private_note_and_nothing_twice() {
    let fake = FakeFreshservice::start(KEY).await;
    let ticket = fake.add_ticket();
    let d = fs(&fake, KEY);
    let first = deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    assert!(
        first.note_added && first.files.iter().all(|f| f.uploaded),
        "{first:?}"
    );
    assert_eq!(fake.uploads(), 1, "one update for the three files");
    let t = fake.ticket(&ticket);
    assert_eq!(t.attachments.len(), 3);
    for (a, f) in t.attachments.iter().zip(files(1)) {
        assert_eq!(a.name, f.name);
        assert_eq!(a.bytes, f.bytes, "{}", f.name);
        assert_eq!(a.content_type, f.content_type);
    }
    assert_eq!(
        first
            .files
            .iter()
            .map(|f| f.attachment_id.clone())
            .collect::<Vec<_>>(),
        t.attachments
            .iter()
            .map(|a| a.id.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(t.conversations.len(), 1);
    let note = &t.conversations[0];
    assert!(note.private);
    // HTML: the note's lines kept, `<` escaped.
    assert!(
        note.body.contains("<br>") && note.body.contains("-s d1-r1.json.sig &lt; d1-r1.json"),
        "{}",
        note.body
    );
    assert_eq!(first.note_id, Some(note.id.to_string()));

    let again = deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    assert!(again.was_there(), "{again:?}");
    assert_eq!(fake.uploads(), 1);
    assert_eq!(count(&fake, "POST", "/notes"), 1);

    let next = deliver(d.as_ref(), &ticket, &files(2)).await.unwrap();
    let uploaded: Vec<bool> = next.files.iter().map(|f| f.uploaded).collect();
    assert_eq!(uploaded, [true, true, false]);
    assert_eq!(fake.ticket(&ticket).attachments.len(), 5);
    fake.assert_contract();
}

#[tokio::test]
async fn a_file_of_the_same_name_and_another_size_is_uploaded_again() {
    let fake = FakeFreshservice::start(KEY).await;
    let ticket = fake.add_ticket();
    let d = fs(&fake, KEY);
    deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    let mut changed = files(1);
    changed[2] = AttachFile::new(
        changed[2].name.clone(),
        "text/plain",
        b"another key\n".to_vec(),
    );
    let d2 = deliver(d.as_ref(), &ticket, &changed).await.unwrap();
    let uploaded: Vec<bool> = d2.files.iter().map(|f| f.uploaded).collect();
    assert_eq!(uploaded, [false, false, true]);
    fake.assert_contract();
}

#[tokio::test]
async fn the_note_is_found_on_a_later_page_of_the_conversations() {
    let fake = FakeFreshservice::start(KEY).await;
    let ticket = fake.add_ticket();
    fake.add_replies(&ticket, 100);
    let d = fs(&fake, KEY);
    deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    let again = deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    assert!(again.was_there(), "{again:?}");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.raw_path.ends_with("/conversations") && r.query_param("page") == Some("2")),
        "the second page was read"
    );
    fake.assert_contract();
}

#[tokio::test]
async fn a_key_freshservice_refuses_is_permanent_in_its_words_without_the_key() {
    let fake = FakeFreshservice::start(KEY).await;
    let ticket = fake.add_ticket();
    let wrong = "fs-SECRET-wrong-000";
    let e = deliver(fs(&fake, wrong).as_ref(), &ticket, &files(1))
        .await
        .unwrap_err();
    let ProviderError::Permanent(m) = &e else {
        panic!("{e:?}")
    };
    assert!(
        m.contains("401") && m.contains("You have to be logged in to perform this action."),
        "{m}"
    );
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{wrong}:X"));
    assert!(
        !m.contains(wrong) && !m.contains("SECRET") && !m.contains(&pair),
        "{m}"
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_rate_limited_update_waits_for_retry_after() {
    let fake = FakeFreshservice::start(KEY).await;
    let ticket = fake.add_ticket();
    fake.server.fail_next_on(
        "PUT",
        "/api/v2/tickets/{id}",
        Fault::Reply(
            Reply::json(429, &serde_json::json!({"message": "You have exceeded the limit of requests per minute"}))
                .header("retry-after", 1)
                .header("x-ratelimit-total", 100)
                .header("x-ratelimit-remaining", 0)
                .header("x-ratelimit-used-currentrequest", 1),
        ),
    );
    let (ctx, retries) = recording_ctx();
    deliver_with(fs(&fake, KEY).as_ref(), &ticket, &files(1), &ctx)
        .await
        .unwrap();
    assert_eq!(count(&fake, "PUT", &format!("/tickets/{ticket}")), 2);
    assert_eq!(fake.uploads(), 1);
    assert_eq!(fake.ticket(&ticket).attachments.len(), 3);
    let retries = retries.lock().unwrap();
    assert_eq!(retries.len(), 1);
    assert!(retries[0].wait_ms >= 900, "{:?}", retries[0]);
    fake.assert_contract();
}

#[tokio::test]
async fn an_update_that_may_have_arrived_is_not_sent_again() {
    let fake = FakeFreshservice::start(KEY).await;
    let ticket = fake.add_ticket();
    // A gateway error after the PUT went out: the files may be on the ticket already; sending
    // them again would attach them twice.
    fake.server
        .fail_next_on("PUT", "/api/v2/tickets/{id}", Fault::bad_gateway());
    let e = deliver(fs(&fake, KEY).as_ref(), &ticket, &files(1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("502"), "{e}");
    assert_eq!(count(&fake, "PUT", &format!("/tickets/{ticket}")), 1);
}

#[tokio::test]
async fn close_by_status_and_freshservices_validation() {
    let fake = FakeFreshservice::start(KEY).await;
    let d = fs(&fake, KEY);
    let ctx = CallCtx::silent();
    let t1 = fake.add_ticket();
    assert_eq!(
        d.close(&t1, &TicketStatus::Name("closed".into()), &ctx)
            .await
            .unwrap(),
        "Closed"
    );
    assert_eq!(fake.ticket(&t1).status, 5);
    let t2 = fake.add_ticket();
    assert_eq!(
        d.close(&format!("INC-{t2}"), &TicketStatus::Id(4), &ctx)
            .await
            .unwrap(),
        "Resolved"
    );
    let e = d.close(&t2, &TicketStatus::Id(9), &ctx).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("Validation failed (status: It should be one of these values: '2,3,4,5')"),
        "{e}"
    );
    let e = d
        .close(&t2, &TicketStatus::Name("Done".into()), &ctx)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("no built-in status named \"Done\""),
        "{e}"
    );
    fake.assert_contract();
}

#[tokio::test]
async fn an_unknown_ticket_is_not_found() {
    let fake = FakeFreshservice::start(KEY).await;
    let e = deliver(fs(&fake, KEY).as_ref(), "SR-4711", &files(1))
        .await
        .unwrap_err();
    let ProviderError::NotFound(m) = &e else {
        panic!("{e:?}")
    };
    assert!(m.contains("Freshservice has no ticket 4711"), "{m}");
}
