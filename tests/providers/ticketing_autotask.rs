//! The `autotask` ticketing kind against a fake of Autotask's REST API
//! (tests/common/fake_autotask.rs): each file attached in base64 for internal users, read back
//! and hashed, an internal ticket note, nothing uploaded twice (across pages), the ticket by id
//! or by number, and Autotask's traps: its 500 `{"errors"}` answers are refusals, not outages
//! (never retried, also for an unknown integration code), a 500 without them is retried, a file
//! over its API size limit is refused before anything is sent, and the credentials are in no
//! message.

use offboard::providers::{CallCtx, ProviderError};
use offboard::runbook::TicketStatus;
use offboard::ticketing::{AttachFile, Ticketing};

use crate::common::fake_autotask::{Credentials, FakeAutotask};
use crate::common::fake_kit::{Fault, Reply, RetryAfterStyle};
use crate::common::psa::{deliver, deliver_with, desk, files, recording_ctx, text};

const USER: &str = "offboard@corpabc.example";
const CODE: &str = "ITC-SECRET-7Q2WJ";
const SECRET: &str = "at-SECRET-s3cr3t-9911";

async fn fake() -> FakeAutotask {
    FakeAutotask::start(Credentials {
        username: USER.into(),
        integration_code: CODE.into(),
        secret: SECRET.into(),
    })
    .await
}

fn autotask_as(fake: &FakeAutotask, code: &str, secret: &str) -> std::sync::Arc<dyn Ticketing> {
    desk(
        "autotask",
        &fake.server.base_url,
        &[("username", text(USER))],
        &[("integration_code", code), ("secret", secret)],
    )
}

fn autotask(fake: &FakeAutotask) -> std::sync::Arc<dyn Ticketing> {
    autotask_as(fake, CODE, SECRET)
}

fn count(fake: &FakeAutotask, method: &str, path_end: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method && r.raw_path.ends_with(path_end))
        .count()
}

fn assert_no_credentials(msg: &str) {
    assert!(
        !msg.contains(CODE) && !msg.contains(SECRET) && !msg.contains("SECRET"),
        "{msg}"
    );
}

#[tokio::test]
async fn files_in_base64_for_internal_users_an_internal_note_and_nothing_twice() {
    let fake = fake().await;
    let (id, _) = fake.add_ticket();
    let d = autotask(&fake);
    let first = deliver(d.as_ref(), &id, &files(1)).await.unwrap();
    assert!(
        first.note_added && first.files.iter().all(|f| f.uploaded),
        "{first:?}"
    );
    let t = fake.ticket(&id);
    assert_eq!(t.attachments.len(), 3);
    for (a, f) in t.attachments.iter().zip(files(1)) {
        assert_eq!(
            (a.title.as_str(), a.full_path.as_str()),
            (f.name.as_str(), f.name.as_str())
        );
        assert_eq!(a.bytes, f.bytes, "{}", f.name);
        assert_eq!(a.content_type, f.content_type);
        assert_eq!(a.publish, 2, "internal users only");
    }
    let ids: Vec<String> = t.attachments.iter().map(|a| a.id.to_string()).collect();
    assert_eq!(
        first
            .files
            .iter()
            .map(|f| f.attachment_id.clone())
            .collect::<Vec<_>>(),
        ids
    );
    assert_eq!(t.notes.len(), 1);
    assert_eq!((t.notes[0].publish, t.notes[0].note_type), (2, 1));
    assert!(t.notes[0].description.contains(&files(1)[0].sha256));
    assert_eq!(first.note_id, Some(t.notes[0].id.to_string()));

    let again = deliver(d.as_ref(), &id, &files(1)).await.unwrap();
    assert!(again.was_there(), "{again:?}");
    assert_eq!(count(&fake, "POST", "/Attachments"), 3);
    assert_eq!(count(&fake, "POST", "/Notes"), 1);

    let next = deliver(d.as_ref(), &id, &files(2)).await.unwrap();
    let uploaded: Vec<bool> = next.files.iter().map(|f| f.uploaded).collect();
    assert_eq!(uploaded, [true, true, false]);
    assert_eq!(fake.ticket(&id).attachments.len(), 5);
    fake.assert_contract();
}

#[tokio::test]
async fn the_ticket_by_its_number_and_every_page_of_its_lists() {
    let fake = fake().await;
    fake.add_ticket();
    let (id, number) = fake.add_ticket();
    let d = autotask(&fake);
    deliver(d.as_ref(), &number, &files(1)).await.unwrap();
    assert_eq!(fake.ticket(&id).attachments.len(), 3);
    // One item per page: the files and the note are found on later pages.
    fake.set_page_size(1);
    let again = deliver(d.as_ref(), &number.to_lowercase(), &files(1))
        .await
        .unwrap();
    assert!(again.was_there(), "{again:?}");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.raw_path.ends_with("/Attachments")
                && r.raw_query.as_deref() == Some("page=3")),
        "the third page was read"
    );
    fake.assert_contract();
}

#[tokio::test]
async fn a_500_with_autotasks_errors_is_a_refusal_not_retried() {
    let fake = fake().await;
    let (id, _) = fake.add_ticket();
    let d = autotask(&fake);
    // A status the picklist does not have: Autotask says so with a 500, which is final even for
    // an idempotent PATCH.
    let e = d
        .close(&id, &TicketStatus::Id(12), &CallCtx::silent())
        .await
        .unwrap_err();
    let ProviderError::Permanent(m) = &e else {
        panic!("{e:?}")
    };
    assert!(
        m.contains("500") && m.contains("Value 12 for field status is not a valid picklist value."),
        "{m}"
    );
    assert_eq!(count(&fake, "PATCH", "/Tickets"), 1, "not retried");
    assert_eq!(fake.ticket(&id).status, 1);
    fake.assert_contract();
}

#[tokio::test]
async fn a_500_without_them_is_an_outage_and_is_retried() {
    let fake = fake().await;
    let (id, _) = fake.add_ticket();
    fake.server.fail_next_on(
        "GET",
        "/v1.0/Tickets/{id}/Attachments",
        Fault::Reply(Reply {
            status: 500,
            headers: vec![("content-type".into(), "text/html".into())],
            body: b"<html><body>Runtime Error</body></html>".to_vec(),
        }),
    );
    let (ctx, retries) = recording_ctx();
    let d = deliver_with(autotask(&fake).as_ref(), &id, &files(1), &ctx)
        .await
        .unwrap();
    assert!(d.note_added);
    assert_eq!(retries.lock().unwrap().len(), 1);
    assert_eq!(fake.ticket(&id).attachments.len(), 3);
}

#[tokio::test]
async fn credentials_autotask_refuses_are_permanent_in_its_words_and_never_shown() {
    let fake = fake().await;
    let (id, _) = fake.add_ticket();
    // An unknown integration code: a 500 with Autotask's reason, once.
    let e = deliver(
        autotask_as(&fake, "ITC-SECRET-WRONG", SECRET).as_ref(),
        &id,
        &files(1),
    )
    .await
    .unwrap_err();
    let ProviderError::Permanent(m) = &e else {
        panic!("{e:?}")
    };
    assert!(m.contains("The API integration code is not valid."), "{m}");
    assert_no_credentials(m);
    assert!(!m.contains("ITC-SECRET-WRONG"), "{m}");
    assert_eq!(fake.requests().len(), 1, "not retried");
    // A wrong secret: 401.
    let e = deliver(
        autotask_as(&fake, CODE, "at-SECRET-wrong").as_ref(),
        &id,
        &files(1),
    )
    .await
    .unwrap_err();
    let ProviderError::Permanent(m) = &e else {
        panic!("{e:?}")
    };
    assert!(m.contains("401") && m.contains("rejected"), "{m}");
    assert_no_credentials(m);
    assert!(!m.contains("at-SECRET-wrong"), "{m}");
    // Each request carried the three headers: the first the wrong code, the second the wrong
    // secret.
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(r.header("username"), Some(USER));
        assert!(r.header("authorization").is_none(), "not HTTP Basic");
    }
    assert!(!reqs[0].secret_ok("apiintegrationcode") && reqs[0].secret_ok("secret"));
    assert!(reqs[1].secret_ok("apiintegrationcode") && !reqs[1].secret_ok("secret"));
    assert!(fake.ticket(&id).attachments.is_empty());
}

#[tokio::test]
async fn a_file_over_the_api_limit_is_refused_before_anything_is_sent() {
    let fake = fake().await;
    let (id, _) = fake.add_ticket();
    let mut big = files(1);
    big[0] = AttachFile::new(
        big[0].name.clone(),
        "application/json",
        vec![b' '; 6_000_001],
    );
    let e = deliver(autotask(&fake).as_ref(), &id, &big)
        .await
        .unwrap_err();
    let ProviderError::Permanent(m) = &e else {
        panic!("{e:?}")
    };
    assert!(
        m.contains("d1-r1.json is 6000001 bytes") && m.contains("at most 6000000 bytes"),
        "{m}"
    );
    assert_eq!(count(&fake, "POST", "/Attachments"), 0);
    assert_eq!(count(&fake, "POST", "/Notes"), 0);
    // Just under the limit goes through.
    big[0] = AttachFile::new(
        big[0].name.clone(),
        "application/json",
        vec![b' '; 6_000_000],
    );
    deliver(autotask(&fake).as_ref(), &id, &big).await.unwrap();
    assert_eq!(fake.ticket(&id).attachments[0].bytes.len(), 6_000_000);
}

#[tokio::test]
async fn a_busy_autotask_is_waited_for() {
    let fake = fake().await;
    let (id, _) = fake.add_ticket();
    fake.server.fail_next_on(
        "POST",
        "/v1.0/Tickets/{id}/Notes",
        Fault::too_many(RetryAfterStyle::Nothing),
    );
    let d = deliver(autotask(&fake).as_ref(), &id, &files(1))
        .await
        .unwrap();
    assert!(d.note_added);
    assert_eq!(count(&fake, "POST", "/Notes"), 2);
    assert_eq!(fake.ticket(&id).notes.len(), 1);
    fake.assert_contract();
}

#[tokio::test]
async fn close_by_status_name_or_value_read_back() {
    let fake = fake().await;
    let d = autotask(&fake);
    let ctx = CallCtx::silent();
    let (t1, _) = fake.add_ticket();
    assert_eq!(
        d.close(&t1, &TicketStatus::Name("complete".into()), &ctx)
            .await
            .unwrap(),
        "Complete"
    );
    assert_eq!(fake.ticket(&t1).status, 5);
    let (t2, n2) = fake.add_ticket();
    assert_eq!(
        d.close(&n2, &TicketStatus::Id(7), &ctx).await.unwrap(),
        "Waiting Customer"
    );
    assert_eq!(fake.ticket(&t2).status, 7);
    let e = d
        .close(&t2, &TicketStatus::Name("Closed".into()), &ctx)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("no ticket status named \"Closed\"")
            && e.to_string().contains("Complete (5)")
            && !e.to_string().contains("Retired"),
        "{e}"
    );
    fake.assert_contract();
}

#[tokio::test]
async fn an_unknown_ticket_is_not_found() {
    let fake = fake().await;
    let d = autotask(&fake);
    let e = deliver(d.as_ref(), "4711", &files(1)).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::NotFound(m) if m.contains("Autotask has no ticket 4711")),
        "{e:?}"
    );
    let e = deliver(d.as_ref(), "T20261123.9999", &files(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::NotFound(m) if m.contains("Autotask has no ticket T20261123.9999")),
        "{e:?}"
    );
    assert_eq!(count(&fake, "POST", "/Attachments"), 0);
}
