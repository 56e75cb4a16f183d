//! The `jira` ticketing kind against a fake of Jira Service Management Cloud
//! (tests/common/fake_jira.rs): the files attached in one multipart upload with
//! `X-Atlassian-Token: no-check`, read back through `redirect=false` and hashed, the note an
//! internal (non-public) service desk comment, nothing uploaded twice, a note that failed added
//! alone later, closing through the workflow's transitions, and the error paths in Jira's words
//! (a refused token, an unknown issue, a transition the workflow does not offer, a 429), with
//! every request checked against the API's contract and the token in no message.

use base64::Engine;
use offboard::providers::{CallCtx, ProviderError};
use offboard::runbook::TicketStatus;
use offboard::ticketing::Ticketing;

use crate::common::fake_jira::FakeJira;
use crate::common::fake_kit::{Fault, Reply};
use crate::common::psa::{deliver, deliver_with, desk, files, recording_ctx, text};

const EMAIL: &str = "offboard@corp.example";
const TOKEN: &str = "ATATT3x-SECRET-jira-5e1d";

fn jira(fake: &FakeJira, token: &str) -> std::sync::Arc<dyn Ticketing> {
    desk(
        "jira",
        &fake.server.base_url,
        &[("email", text(EMAIL))],
        &[("api_token", token)],
    )
}

fn count(fake: &FakeJira, method: &str, path_end: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method && r.raw_path.ends_with(path_end))
        .count()
}

#[tokio::test]
async fn files_once_byte_for_byte_with_an_internal_comment_and_nothing_twice() {
    let fake = FakeJira::start(EMAIL, TOKEN).await;
    let key = fake.add_issue();
    let d = jira(&fake, TOKEN);
    let first = deliver(d.as_ref(), &key, &files(1)).await.unwrap();
    assert!(
        first.note_added && first.files.iter().all(|f| f.uploaded),
        "{first:?}"
    );
    let issue = fake.issue(&key);
    assert_eq!(issue.attachments.len(), 3);
    for (a, f) in issue.attachments.iter().zip(files(1)) {
        assert_eq!(a.filename, f.name);
        assert_eq!(a.bytes, f.bytes, "{}", f.name);
        assert_eq!(a.mime_type, f.content_type);
    }
    let ids: Vec<String> = issue.attachments.iter().map(|a| a.id.to_string()).collect();
    let got: Vec<String> = first
        .files
        .iter()
        .map(|f| f.attachment_id.clone())
        .collect();
    assert_eq!(got, ids);
    // One upload for the three files, with the header Jira's XSRF check wants.
    let uploads: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.raw_path.ends_with("/attachments"))
        .collect();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].header("x-atlassian-token"), Some("no-check"));
    // The note is internal: not public to the customer.
    assert_eq!(issue.comments.len(), 1);
    assert!(!issue.comments[0].public);
    assert!(issue.comments[0].body.contains(&files(1)[0].sha256));
    assert_eq!(
        first.note_id.as_deref(),
        Some(issue.comments[0].id.to_string().as_str())
    );

    // Again: the files are found by name and content, the note in the comments' ADF.
    let again = deliver(d.as_ref(), &key, &files(1)).await.unwrap();
    assert!(again.was_there(), "{again:?}");
    assert_eq!(count(&fake, "POST", "/attachments"), 1);
    assert_eq!(count(&fake, "POST", "/comment"), 1);
    assert_eq!(fake.issue(&key).attachments.len(), 3);
    assert_eq!(
        again
            .files
            .iter()
            .map(|f| f.attachment_id.clone())
            .collect::<Vec<_>>(),
        ids
    );

    // The next revision: its two files; the key file is there already.
    let next = deliver(d.as_ref(), &key, &files(2)).await.unwrap();
    let uploaded: Vec<bool> = next.files.iter().map(|f| f.uploaded).collect();
    assert_eq!(uploaded, [true, true, false]);
    assert_eq!(fake.issue(&key).attachments.len(), 5);
    assert_eq!(fake.issue(&key).comments.len(), 2);
    fake.assert_contract();
}

#[tokio::test]
async fn a_file_of_the_same_name_but_other_bytes_is_uploaded_again() {
    let fake = FakeJira::start(EMAIL, TOKEN).await;
    let key = fake.add_issue();
    let d = jira(&fake, TOKEN);
    deliver(d.as_ref(), &key, &files(1)).await.unwrap();
    let mut changed = files(1);
    changed[1] = offboard::ticketing::AttachFile::new(
        changed[1].name.clone(),
        "text/plain",
        vec![b'x'; changed[1].bytes.len()],
    );
    let d2 = deliver(d.as_ref(), &key, &changed).await.unwrap();
    let uploaded: Vec<bool> = d2.files.iter().map(|f| f.uploaded).collect();
    assert_eq!(
        uploaded,
        [false, true, false],
        "same size, other bytes: {d2:?}"
    );
    fake.assert_contract();
}

#[tokio::test]
async fn a_token_jira_refuses_is_a_permanent_401_in_its_words_without_the_token() {
    let fake = FakeJira::start(EMAIL, TOKEN).await;
    let key = fake.add_issue();
    let wrong = "ATATT3x-SECRET-wrong-0000";
    let e = deliver(jira(&fake, wrong).as_ref(), &key, &files(1))
        .await
        .unwrap_err();
    let ProviderError::Permanent(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(msg.contains("401"), "{msg}");
    assert!(
        msg.contains("Client must be authenticated to access this resource."),
        "{msg}"
    );
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}:{wrong}"));
    assert!(
        !msg.contains(wrong) && !msg.contains(&pair) && !msg.contains("SECRET"),
        "{msg}"
    );
    assert_eq!(fake.requests().len(), 1, "a refused token is not retried");
    assert!(fake.issue(&key).attachments.is_empty());
}

#[tokio::test]
async fn an_unknown_issue_is_not_found() {
    let fake = FakeJira::start(EMAIL, TOKEN).await;
    let e = deliver(jira(&fake, TOKEN).as_ref(), "HR-4711", &files(1))
        .await
        .unwrap_err();
    let ProviderError::NotFound(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(
        msg.contains("Issue does not exist") && msg.contains("Jira has no issue HR-4711"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_rate_limited_comment_is_sent_again_after_retry_after() {
    let fake = FakeJira::start(EMAIL, TOKEN).await;
    let key = fake.add_issue();
    let reset = chrono::Utc::now() + chrono::Duration::seconds(1);
    fake.server.fail_next_on(
        "POST",
        "/rest/servicedeskapi/request/{key}/comment",
        Fault::Reply(
            Reply::json(
                429,
                &serde_json::json!({"errorMessages": ["Rate limit exceeded."]}),
            )
            .header("retry-after", 1)
            .header("x-ratelimit-limit", 100)
            .header("x-ratelimit-remaining", 0)
            .header(
                "x-ratelimit-reset",
                reset.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            )
            .header("ratelimit-reason", "jira-per-issue-on-write"),
        ),
    );
    let (ctx, retries) = recording_ctx();
    let d = deliver_with(jira(&fake, TOKEN).as_ref(), &key, &files(1), &ctx)
        .await
        .unwrap();
    assert!(d.note_added);
    assert_eq!(count(&fake, "POST", "/comment"), 2);
    assert_eq!(fake.issue(&key).comments.len(), 1);
    let retries = retries.lock().unwrap();
    assert_eq!(retries.len(), 1);
    assert!(retries[0].reason.contains("429"), "{:?}", retries[0]);
    assert!(retries[0].wait_ms >= 900, "{:?}", retries[0]);
    fake.assert_contract();
}

#[tokio::test]
async fn a_comment_that_failed_is_added_alone_by_the_next_attach() {
    let fake = FakeJira::start(EMAIL, TOKEN).await;
    let key = fake.add_issue();
    let d = jira(&fake, TOKEN);
    // A POST that may have reached Jira is not sent again: the attach fails...
    fake.server.fail_next_on(
        "POST",
        "/rest/servicedeskapi/request/{key}/comment",
        Fault::server_error(),
    );
    let e = deliver(d.as_ref(), &key, &files(1)).await.unwrap_err();
    assert!(e.to_string().contains("500"), "{e}");
    assert_eq!(fake.issue(&key).attachments.len(), 3);
    assert!(fake.issue(&key).comments.is_empty());
    // ...and the next one finds the files and adds only the note.
    let again = deliver(d.as_ref(), &key, &files(1)).await.unwrap();
    assert!(
        again.note_added && again.files.iter().all(|f| !f.uploaded),
        "{again:?}"
    );
    assert_eq!(count(&fake, "POST", "/attachments"), 1);
    assert_eq!(fake.issue(&key).comments.len(), 1);
    fake.assert_contract();
}

#[tokio::test]
async fn close_through_the_workflows_transitions() {
    let fake = FakeJira::start(EMAIL, TOKEN).await;
    let d = jira(&fake, TOKEN);
    let ctx = CallCtx::silent();
    // By transition name.
    let k1 = fake.add_issue();
    let now = d
        .close(&k1, &TicketStatus::Name("resolve this issue".into()), &ctx)
        .await
        .unwrap();
    assert_eq!(now, "Resolved");
    assert_eq!(fake.issue(&k1).status, "Resolved");
    // By the status it leads to, from there.
    let now = d
        .close(&k1, &TicketStatus::Name("Closed".into()), &ctx)
        .await
        .unwrap();
    assert_eq!(now, "Closed");
    // Already there: nothing to do.
    let before = count(&fake, "POST", "/transitions");
    assert_eq!(
        d.close(&k1, &TicketStatus::Name("closed".into()), &ctx)
            .await
            .unwrap(),
        "Closed"
    );
    assert_eq!(count(&fake, "POST", "/transitions"), before);
    // By transition id.
    let k2 = fake.add_issue();
    assert_eq!(
        d.close(&k2, &TicketStatus::Id(21), &ctx).await.unwrap(),
        "Closed"
    );
    // One the workflow does not offer from here: Jira's offer in the message.
    let k3 = fake.add_issue();
    let e = d
        .close(&k3, &TicketStatus::Name("Done".into()), &ctx)
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    assert!(
        m.contains("no transition \"Done\"")
            && m.contains("Resolve this issue (id 11, to Resolved)")
            && m.contains("Close (id 21, to Closed)"),
        "{m}"
    );
    assert_eq!(fake.issue(&k3).status, "Waiting for support");
    fake.assert_contract();
}
