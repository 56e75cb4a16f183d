//! The `redmine` ticketing kind against a fake of Redmine's REST API
//! (tests/common/fake_redmine.rs): files uploaded then attached with a private note in one
//! update, nothing uploaded twice, and the error paths in Redmine's words — a key it refuses
//! (401), upload tokens it no longer knows (422, the whole update refused), a file over its size
//! limit, an unknown issue, a status its workflow ignores — with every request checked against
//! the API's contract and the key in no message.

use std::sync::Arc;

use offboard::providers::{CallCtx, ProviderError};
use offboard::runbook::{TicketStatus, TicketingDef};
use offboard::ticketing::{self, AttachFile, Ticketing, redmine};

use crate::common::fake_kit::{Fault, RetryAfterStyle};
use crate::common::fake_redmine::FakeRedmine;

const KEY: &str = "rk-SECRET-1f0c9a77d2";

fn desk(fake: &FakeRedmine, key: &str) -> Arc<dyn Ticketing> {
    let def = TicketingDef {
        kind: "redmine".into(),
        base_url: fake.server.base_url.clone(),
        close_status: None,
        timeout_secs: Some(5),
        settings: Default::default(),
    };
    let mut cfg = ticketing::config(&def);
    cfg.secrets.insert(
        "api_key".into(),
        secrecy::SecretString::from(key.to_string()),
    );
    (redmine::KIND.connect)(&cfg).unwrap()
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
            b"offboard namespaces=\"offboard-evidence\" ssh-ed25519 AAAA\n".to_vec(),
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

fn count(fake: &FakeRedmine, method: &str, path_start: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method && r.raw_path.starts_with(path_start))
        .count()
}

fn assert_no_key(msg: &str) {
    assert!(!msg.contains(KEY) && !msg.contains("rk-SECRET"), "{msg}");
}

#[tokio::test]
async fn files_and_a_private_note_in_one_update_and_nothing_twice() {
    let fake = FakeRedmine::start(KEY).await;
    let ticket = fake.add_issue();
    let d = desk(&fake, KEY);
    let first = deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    assert!(first.note_added && first.files.iter().all(|f| f.uploaded));
    let issue = fake.issue(&ticket);
    let names: Vec<&str> = issue
        .attachments
        .iter()
        .map(|a| a.filename.as_str())
        .collect();
    assert_eq!(
        names,
        ["d1-r1.json", "d1-r1.json.sig", "d1.allowed_signers"]
    );
    for (a, f) in issue.attachments.iter().zip(files(1)) {
        assert_eq!(a.bytes, f.bytes);
        assert_eq!(a.content_type, f.content_type);
    }
    // The ids the journal records are Redmine's attachment ids.
    let ids: Vec<String> = issue.attachments.iter().map(|a| a.id.to_string()).collect();
    let got: Vec<&String> = first.files.iter().map(|f| &f.attachment_id).collect();
    assert_eq!(got, ids.iter().collect::<Vec<_>>());
    assert_eq!(issue.journals.len(), 1);
    assert!(issue.journals[0].private_notes);
    assert_eq!(issue.journals[0].attachments.len(), 3);
    assert_eq!(count(&fake, "PUT", "/issues/"), 1);

    let again = deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    assert!(again.was_there(), "{again:?}");
    assert_eq!(count(&fake, "POST", "/uploads.json"), 3);
    assert_eq!(count(&fake, "PUT", "/issues/"), 1);
    assert_eq!(fake.issue(&ticket).attachments.len(), 3);

    // The next revision: its two files; the key file is on the ticket already.
    let next = deliver(d.as_ref(), &ticket, &files(2)).await.unwrap();
    let uploaded: Vec<bool> = next.files.iter().map(|f| f.uploaded).collect();
    assert_eq!(uploaded, [true, true, false]);
    assert_eq!(fake.issue(&ticket).attachments.len(), 5);
    fake.assert_contract();
}

#[tokio::test]
async fn a_key_redmine_refuses_is_a_permanent_401_without_the_key() {
    let fake = FakeRedmine::start(KEY).await;
    let ticket = fake.add_issue();
    let wrong = "rk-SECRET-wrong-0000";
    let e = deliver(desk(&fake, wrong).as_ref(), &ticket, &files(1))
        .await
        .unwrap_err();
    let ProviderError::Permanent(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(msg.contains("401") && msg.contains("rejected"), "{msg}");
    assert!(!msg.contains(wrong));
    assert_no_key(msg);
    assert_eq!(count(&fake, "POST", "/uploads.json"), 0);
    assert!(fake.issue(&ticket).journals.is_empty());
}

#[tokio::test]
async fn upload_tokens_redmine_no_longer_knows_refuse_the_whole_update_and_a_retry_succeeds() {
    let fake = FakeRedmine::start(KEY).await;
    let ticket = fake.add_issue();
    let d = desk(&fake, KEY);
    fake.expire_uploads_before_next_update();
    let e = deliver(d.as_ref(), &ticket, &files(1)).await.unwrap_err();
    let ProviderError::Permanent(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(msg.contains("422"), "{msg}");
    assert!(msg.contains("3 file(s) could not be saved."), "{msg}");
    // Neither the files nor the note: the update is one.
    let issue = fake.issue(&ticket);
    assert!(issue.attachments.is_empty() && issue.journals.is_empty());
    let ok = deliver(d.as_ref(), &ticket, &files(1)).await.unwrap();
    assert!(ok.note_added && ok.files.iter().all(|f| f.uploaded));
    assert_eq!(fake.issue(&ticket).attachments.len(), 3);
    fake.assert_contract();
}

#[tokio::test]
async fn a_file_over_redmines_size_limit_is_refused_in_its_words() {
    let fake = FakeRedmine::start(KEY).await;
    let ticket = fake.add_issue();
    fake.set_max_size(20);
    let e = deliver(desk(&fake, KEY).as_ref(), &ticket, &files(1))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("exceeds the maximum allowed file size (20)"),
        "{e}"
    );
    assert!(fake.issue(&ticket).journals.is_empty());
}

#[tokio::test]
async fn an_unknown_issue_is_not_found() {
    let fake = FakeRedmine::start(KEY).await;
    let e = deliver(desk(&fake, KEY).as_ref(), "4711", &files(1))
        .await
        .unwrap_err();
    let ProviderError::NotFound(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(msg.contains("Redmine has no issue 4711"), "{msg}");
}

#[tokio::test]
async fn a_busy_redmine_is_waited_for() {
    let fake = FakeRedmine::start(KEY).await;
    let ticket = fake.add_issue();
    fake.server.fail_next_on(
        "PUT",
        "/issues/{file}",
        Fault::unavailable(Some(RetryAfterStyle::Seconds(1))),
    );
    let d = deliver(desk(&fake, KEY).as_ref(), &ticket, &files(1))
        .await
        .unwrap();
    assert!(d.note_added);
    assert_eq!(count(&fake, "PUT", "/issues/"), 2);
    assert_eq!(fake.issue(&ticket).journals.len(), 1);
}

#[tokio::test]
async fn close_by_name_or_id_and_a_status_redmine_ignores_is_an_error() {
    let fake = FakeRedmine::start(KEY).await;
    let d = desk(&fake, KEY);
    let t1 = fake.add_issue();
    let now = d
        .close(
            &t1,
            &TicketStatus::Name("closed".into()),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert_eq!(now, "Closed");
    assert_eq!(fake.issue(&t1).status_id, 5);
    let t2 = fake.add_issue();
    assert_eq!(
        d.close(&t2, &TicketStatus::Id(6), &CallCtx::silent())
            .await
            .unwrap(),
        "Rejected"
    );
    let e = d
        .close(&t2, &TicketStatus::Name("Done".into()), &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("no issue status named \"Done\"")
            && e.to_string().contains("Closed"),
        "{e}"
    );
    // Redmine answers 204 to a status its workflow does not allow; the read-back says so.
    let t3 = fake.add_issue();
    let e = d
        .close(&t3, &TicketStatus::Id(99), &CallCtx::silent())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("left issue 3 in status \"New\""),
        "{e}"
    );
    fake.assert_contract();
}
