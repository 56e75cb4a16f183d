//! The `exchange` kind against a fake of Exchange Online's admin API
//! (tests/common/fake_exchange.rs) and a fake Entra token endpoint for one tenant
//! (tests/common/fake_token.rs): each action applied then checked by the mailbox's id, applied
//! twice with nothing new sent, drift, a mailbox gone, nobody found, Exchange's own error
//! words, throttling and server errors retried, paging, and the token asked for the Exchange
//! scope in the right tenant.

use std::sync::{Arc, Mutex};

use offboard::providers::kit::microsoft::with_client_secret;
use offboard::providers::{
    Account, CallCtx, Provider, ProviderError, StepCall, SystemConfig, find_kind,
};
use serde_json::{Map, Value, json};

use crate::common::fake_exchange::FakeExchange;
use crate::common::fake_kit::{Fault, RetryAfterStyle};
use crate::common::fake_token::FakeTokenEndpoint;

const TENANT: &str = "5b7e2c1a-9d3f-4e8a-b6c2-0f1e2d3c4b5a";
const CLIENT: &str = "3c9a7f10-offboard-exo";
const SECRET: &str = "exo-client-secret-Q7w9x";
const TOKEN: &str = "exo-access-token-Lm42-very-long";
const SCOPE: &str = "https://outlook.office365.com/.default";

struct World {
    exo: FakeExchange,
    login: FakeTokenEndpoint,
    provider: Arc<dyn Provider>,
}

fn config(exo: &FakeExchange, login: &FakeTokenEndpoint, tenant: &str) -> SystemConfig {
    let mut c = SystemConfig::new("contoso-exo", "exchange", Some(&exo.server.base_url));
    for (k, v) in [
        ("tenant_id", tenant),
        ("client_id", CLIENT),
        ("login_url", login.login_url().as_str()),
    ] {
        c.settings.insert(k.into(), toml::Value::String(v.into()));
    }
    with_client_secret(c, SECRET)
}

fn connect(cfg: &SystemConfig) -> Arc<dyn Provider> {
    (find_kind("exchange").unwrap().connect)(cfg).unwrap()
}

async fn world() -> World {
    let login = FakeTokenEndpoint::start_for_tenant(TENANT, CLIENT, SECRET, TOKEN).await;
    login.expect_scope(SCOPE);
    let exo = FakeExchange::start(TENANT, TOKEN).await;
    let provider = connect(&config(&exo, &login, TENANT));
    World {
        exo,
        login,
        provider,
    }
}

fn params(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn call<'a>(
    action: &'a str,
    login: &'a str,
    params: &'a Map<String, Value>,
    account: Option<&'a Account>,
) -> StepCall<'a> {
    StepCall {
        step_id: "exo-step",
        action,
        login,
        params,
        account,
    }
}

type Kept<T> = Arc<Mutex<Vec<T>>>;

/// A context that keeps the accounts identified and the retries noted.
fn recording() -> (CallCtx, Kept<Account>, Kept<String>) {
    let seen: Arc<Mutex<Vec<Account>>> = Arc::default();
    let retries: Arc<Mutex<Vec<String>>> = Arc::default();
    let (s, r) = (seen.clone(), retries.clone());
    let ctx = CallCtx::new(move |note| r.lock().unwrap().push(note.reason))
        .on_account(move |a| s.lock().unwrap().push(a.clone()));
    (ctx, seen, retries)
}

/// Apply, then check by the account applied to; returns that account.
async fn apply_and_check(
    w: &World,
    action: &str,
    login: &str,
    p: &Map<String, Value>,
) -> (Account, String) {
    let (ctx, seen, _) = recording();
    let out = w
        .provider
        .apply(&call(action, login, p, None), &ctx)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"));
    assert!(out.changed, "{out:?}");
    let account = out.account.clone().unwrap();
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        std::slice::from_ref(&account),
        "identified before the change"
    );
    let c = w
        .provider
        .check(&call(action, login, p, Some(&account)), &CallCtx::silent())
        .await
        .unwrap();
    assert!(c.revoked, "{action}: {c:?}");
    assert_eq!(c.account.as_ref(), Some(&account));
    (account, out.summary)
}

/// Apply again on the recorded account: nothing changes and only reads are sent.
async fn apply_again_sends_nothing(
    w: &World,
    action: &str,
    login: &str,
    p: &Map<String, Value>,
    a: &Account,
) {
    w.exo.server.clear_requests();
    let again = w
        .provider
        .apply(&call(action, login, p, Some(a)), &CallCtx::silent())
        .await
        .unwrap();
    assert!(!again.changed, "{again:?}");
    for (c, p) in w.exo.calls() {
        let read = c.starts_with("Get-")
            || (c == "Remove-CalendarEvents" && p["PreviewOnly"] == json!(true));
        assert!(
            read,
            "{action} sent {c} the second time: {:?}",
            w.exo.cmdlets()
        );
    }
}

#[tokio::test]
async fn convert_to_shared_is_checked_by_the_entra_id_and_not_sent_twice() {
    let w = world().await;
    w.exo.add_mailbox("bob@contoso.com");
    let alice = w.exo.add_mailbox("alice@contoso.com");
    let p = params(json!({}));
    let (account, summary) =
        apply_and_check(&w, "convert_to_shared", "alice@contoso.com", &p).await;
    assert_eq!(account.id, alice.object_id);
    assert_eq!(account.id_kind, "ExternalDirectoryObjectId");
    assert_eq!(account.name, "alice@contoso.com");
    assert!(summary.contains("shared mailbox"), "{summary}");
    assert_eq!(
        w.exo.mailbox("alice@contoso.com").unwrap().type_details,
        "SharedMailbox"
    );
    assert_eq!(
        w.exo.mailbox("bob@contoso.com").unwrap().type_details,
        "UserMailbox"
    );
    // Found by login once; every later read by the id.
    let calls = w.exo.calls();
    assert_eq!(
        calls[0],
        (
            "Get-Mailbox".into(),
            json!({ "Identity": "alice@contoso.com" })
        )
    );
    assert!(calls.contains(&(
        "Set-Mailbox".into(),
        json!({ "Identity": alice.object_id, "Type": "Shared" })
    )));
    assert_eq!(
        calls.last().unwrap(),
        &("Get-Mailbox".into(), json!({ "Identity": alice.object_id }))
    );
    apply_again_sends_nothing(&w, "convert_to_shared", "alice@contoso.com", &p, &account).await;
    w.exo.assert_contract();
}

#[tokio::test]
async fn forwarding_is_set_for_the_handoff_then_disabled_and_drift_is_seen() {
    let w = world().await;
    w.exo.add_mailbox("alice@contoso.com");
    let p = params(json!({ "to": "boss@contoso.com", "keep_copy": false }));
    let (account, summary) = apply_and_check(&w, "set_forwarding", "alice@contoso.com", &p).await;
    assert!(
        summary.contains("boss@contoso.com") && summary.contains("no copy"),
        "{summary}"
    );
    let m = w.exo.mailbox("alice@contoso.com").unwrap();
    assert_eq!(m.forwarding_smtp.as_deref(), Some("smtp:boss@contoso.com"));
    assert!(!m.deliver_and_forward);
    apply_again_sends_nothing(&w, "set_forwarding", "alice@contoso.com", &p, &account).await;

    // Someone ticks "keep a copy" behind the tool's back: the check sees it.
    w.exo
        .update("alice@contoso.com", |m| m.deliver_and_forward = true);
    let c = w
        .provider
        .check(
            &call("set_forwarding", "alice@contoso.com", &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!c.revoked, "{c:?}");
    assert!(
        c.observed.contains("DeliverToMailboxAndForward=true"),
        "{}",
        c.observed
    );

    // Forwarding off: both addresses cleared.
    w.exo.update("alice@contoso.com", |m| {
        m.forwarding_address = Some("Mallory".into())
    });
    let none = params(json!({}));
    let (_, summary) = apply_and_check(&w, "disable_forwarding", "alice@contoso.com", &none).await;
    assert!(summary.contains("forwarding removed"), "{summary}");
    let m = w.exo.mailbox("alice@contoso.com").unwrap();
    assert_eq!((m.forwarding_smtp, m.forwarding_address), (None, None));
    assert!(!m.deliver_and_forward);
    apply_again_sends_nothing(
        &w,
        "disable_forwarding",
        "alice@contoso.com",
        &none,
        &account,
    )
    .await;

    // A bad address from a template is refused before anything is sent.
    w.exo.server.clear_requests();
    let bad = params(json!({ "to": "" }));
    let e = w
        .provider
        .apply(
            &call("set_forwarding", "alice@contoso.com", &bad, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not an email address"), "{e}");
    assert!(!w.exo.cmdlets().contains(&"Set-Mailbox".to_string()));
    w.exo.assert_contract();
}

#[tokio::test]
async fn hide_from_gal_and_exchanges_refusal_for_a_synced_mailbox() {
    let w = world().await;
    w.exo.add_mailbox("alice@contoso.com");
    w.exo.add_mailbox("carol@contoso.com");
    w.exo.update("carol@contoso.com", |m| m.dir_synced = true);
    let p = params(json!({}));
    let (account, _) = apply_and_check(&w, "hide_from_gal", "alice@contoso.com", &p).await;
    assert!(w.exo.mailbox("alice@contoso.com").unwrap().hidden);
    apply_again_sends_nothing(&w, "hide_from_gal", "alice@contoso.com", &p, &account).await;

    let e = w
        .provider
        .apply(
            &call("hide_from_gal", "carol@contoso.com", &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    assert!(
        text.contains("TaskInvalidOperationException")
            && text.contains("synchronized from your on-premises organization")
            && text.contains("Set-Mailbox"),
        "{text}"
    );
    assert!(!w.exo.mailbox("carol@contoso.com").unwrap().hidden);
    w.exo.assert_contract();
}

#[tokio::test]
async fn full_access_for_the_manager_and_an_unknown_grantee_in_exchanges_words() {
    let w = world().await;
    let alice = w.exo.add_mailbox("alice@contoso.com");
    w.exo.add_mailbox("boss@contoso.com");
    let p = params(json!({ "to": "boss@contoso.com", "automap": false }));
    let (account, summary) =
        apply_and_check(&w, "grant_full_access", "alice@contoso.com", &p).await;
    assert!(summary.contains("AutoMapping false"), "{summary}");
    let perm = w
        .exo
        .permission("alice@contoso.com", "boss@contoso.com")
        .unwrap();
    assert_eq!(perm.rights, ["FullAccess"]);
    assert_eq!(perm.automap, Some(false));
    assert!(w.exo.calls().contains(&(
        "Add-MailboxPermission".into(),
        json!({
            "Identity": alice.object_id,
            "User": "boss@contoso.com",
            "AccessRights": ["FullAccess"],
            "AutoMapping": false,
            "InheritanceType": "All",
        })
    )));
    apply_again_sends_nothing(&w, "grant_full_access", "alice@contoso.com", &p, &account).await;

    let ghost = params(json!({ "to": "ghost@contoso.com" }));
    let e = w
        .provider
        .apply(
            &call(
                "grant_full_access",
                "alice@contoso.com",
                &ghost,
                Some(&account),
            ),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("object 'ghost@contoso.com' couldn't be found"),
        "{text}"
    );
    // The grantee missing is not the person missing.
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    w.exo.assert_contract();
}

#[tokio::test]
async fn the_leavers_rights_on_other_mailboxes_are_found_on_every_page_and_removed() {
    let w = world().await;
    w.exo.set_page_size(2);
    w.exo.add_mailbox("alice@contoso.com");
    w.exo.add_mailbox("boss@contoso.com");
    w.exo.add_shared("sales@contoso.com");
    w.exo.add_mailbox("dave@contoso.com");
    w.exo.add_shared("support@contoso.com");
    w.exo.grant(
        "sales@contoso.com",
        "alice@contoso.com",
        &["FullAccess"],
        false,
    );
    w.exo.grant(
        "support@contoso.com",
        "alice@contoso.com",
        &["FullAccess", "ReadPermission"],
        false,
    );
    // Other people's rights, on her mailbox and on the shared ones, stay.
    w.exo.grant(
        "alice@contoso.com",
        "boss@contoso.com",
        &["FullAccess"],
        false,
    );
    w.exo.grant(
        "sales@contoso.com",
        "dave@contoso.com",
        &["FullAccess"],
        false,
    );

    let p = params(json!({}));
    let (account, summary) =
        apply_and_check(&w, "remove_mailbox_permissions", "alice@contoso.com", &p).await;
    assert!(
        summary.contains("FullAccess on sales@contoso.com")
            && summary.contains("FullAccess+ReadPermission on support@contoso.com"),
        "{summary}"
    );
    assert!(w.exo.rights_of("alice@contoso.com").is_empty());
    assert_eq!(w.exo.rights_of("boss@contoso.com").len(), 1);
    assert_eq!(w.exo.rights_of("dave@contoso.com").len(), 1);
    // Five mailboxes, two per page: three pages, the later ones asked with $skiptoken.
    let pages: Vec<_> = w
        .exo
        .requests()
        .into_iter()
        .filter(|r| {
            r.json.as_ref().is_some_and(|j| {
                j["CmdletInput"]["CmdletName"] == "Get-Mailbox"
                    && j["CmdletInput"]["Parameters"] == json!({})
            })
        })
        .collect();
    assert!(pages.len() >= 3, "{}", pages.len());
    assert_eq!(pages[0].query_param("$skiptoken"), None);
    assert_eq!(pages[1].query_param("$skiptoken"), Some("2"));
    assert_eq!(pages[2].query_param("$skiptoken"), Some("4"));
    // Her own mailbox is not searched for her rights.
    assert!(
        !w.exo
            .calls()
            .iter()
            .any(|(c, p)| c == "Get-MailboxPermission" && p["Identity"] == json!(account.id))
    );
    apply_again_sends_nothing(
        &w,
        "remove_mailbox_permissions",
        "alice@contoso.com",
        &p,
        &account,
    )
    .await;

    // A right inherited from higher up cannot be removed per mailbox: reported, not claimed.
    w.exo.grant(
        "sales@contoso.com",
        "alice@contoso.com",
        &["FullAccess"],
        true,
    );
    let out = w
        .provider
        .apply(
            &call(
                "remove_mailbox_permissions",
                "alice@contoso.com",
                &p,
                Some(&account),
            ),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(out.summary.contains("(inherited)"), "{}", out.summary);
    let c = w
        .provider
        .check(
            &call(
                "remove_mailbox_permissions",
                "alice@contoso.com",
                &p,
                Some(&account),
            ),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!c.revoked, "{c:?}");
    assert!(
        c.observed
            .contains("FullAccess on sales@contoso.com (inherited)"),
        "{}",
        c.observed
    );
    w.exo.assert_contract();
}

#[tokio::test]
async fn mobile_devices_are_removed_and_a_new_one_is_drift() {
    let w = world().await;
    w.exo.add_mailbox("alice@contoso.com");
    let bob = w.exo.add_mailbox("bob@contoso.com");
    w.exo.add_device("alice@contoso.com", "Alice's iPhone");
    w.exo.add_device("alice@contoso.com", "iPad");
    w.exo.add_device("bob@contoso.com", "Bob's phone");
    let p = params(json!({}));
    let (account, summary) =
        apply_and_check(&w, "remove_mobile_devices", "alice@contoso.com", &p).await;
    assert!(summary.contains("removed 2 mobile device"), "{summary}");
    assert!(w.exo.devices_of("alice@contoso.com").is_empty());
    assert_eq!(w.exo.devices_of(&bob.upn).len(), 1);
    apply_again_sends_nothing(
        &w,
        "remove_mobile_devices",
        "alice@contoso.com",
        &p,
        &account,
    )
    .await;

    w.exo.add_device("alice@contoso.com", "New phone");
    let c = w
        .provider
        .check(
            &call(
                "remove_mobile_devices",
                "alice@contoso.com",
                &p,
                Some(&account),
            ),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!c.revoked && c.observed.contains("New phone"), "{c:?}");
    w.exo.assert_contract();
}

#[tokio::test]
async fn meetings_in_the_window_are_cancelled_once() {
    let w = world().await;
    w.exo.add_mailbox("alice@contoso.com");
    w.exo.add_meeting("alice@contoso.com", "Weekly sync", 3);
    w.exo.add_meeting("alice@contoso.com", "QBR", 100);
    w.exo.add_meeting("alice@contoso.com", "Offsite 2029", 900);
    let p = params(json!({ "days": 365 }));
    // The check is a preview: it changes nothing and sees what is left.
    let c = w
        .provider
        .check(
            &call("cancel_meetings", "alice@contoso.com", &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(
        !c.revoked && c.observed.contains("2 meeting(s) still to cancel"),
        "{c:?}"
    );
    assert_eq!(w.exo.cancellations_sent(), 0);

    let (account, _) = apply_and_check(&w, "cancel_meetings", "alice@contoso.com", &p).await;
    assert_eq!(w.exo.cancellations_sent(), 2);
    assert_eq!(
        w.exo.mailbox("alice@contoso.com").unwrap().meetings,
        [("Offsite 2029".to_string(), 900)]
    );
    assert!(
        w.exo
            .calls()
            .iter()
            .any(|(c, p)| c == "Remove-CalendarEvents"
                && *p
                    == json!({
                        "Identity": account.id,
                        "CancelOrganizedMeetings": true,
                        "QueryWindowInDays": 365,
                        "Confirm": false,
                    }))
    );
    apply_again_sends_nothing(&w, "cancel_meetings", "alice@contoso.com", &p, &account).await;
    assert_eq!(
        w.exo.cancellations_sent(),
        2,
        "no second round of cancellations"
    );
    w.exo.assert_contract();
}

#[tokio::test]
async fn gone_by_id_is_revoked_a_rename_is_still_read_by_id_and_nobody_is_not_found() {
    let w = world().await;
    let alice = w.exo.add_mailbox("alice@contoso.com");
    let p = params(json!({}));
    let (account, _) = apply_and_check(&w, "hide_from_gal", "alice@contoso.com", &p).await;

    // Renamed, and a newcomer takes the old address: the check still reads her, by id.
    w.exo.update("alice@contoso.com", |m| {
        m.upn = "alice.old@contoso.com".into();
        m.smtp = "alice.old@contoso.com".into();
    });
    w.exo.add_mailbox("alice@contoso.com");
    let c = w
        .provider
        .check(
            &call("hide_from_gal", "alice@contoso.com", &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(c.revoked, "{c:?}");
    assert_eq!(c.account.unwrap().id, alice.object_id);
    assert!(
        !w.exo.mailbox("alice@contoso.com").unwrap().hidden,
        "the newcomer is untouched"
    );

    // Deleted: gone by id is revoked, and applying changes nothing.
    w.exo.remove_mailbox(&alice.object_id);
    let c = w
        .provider
        .check(
            &call("hide_from_gal", "alice@contoso.com", &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(c.revoked && c.observed.contains("mailbox gone"), "{c:?}");
    assert_eq!(c.account.as_ref(), Some(&account));
    let out = w
        .provider
        .apply(
            &call("hide_from_gal", "alice@contoso.com", &p, Some(&account)),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!out.changed, "{out:?}");

    // Never found: not found, in Exchange's words, never revoked.
    for action in ["hide_from_gal", "remove_mobile_devices"] {
        let e = w
            .provider
            .check(
                &call(action, "nobody@contoso.com", &p, None),
                &CallCtx::silent(),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, ProviderError::NotFound(_)), "{e:?}");
        assert!(
            e.to_string()
                .contains("object 'nobody@contoso.com' couldn't be found"),
            "{e}"
        );
    }
    w.exo.assert_contract();
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried() {
    let w = world().await;
    w.exo.add_mailbox("alice@contoso.com");
    // A 429 with Retry-After, then a 500 on the read (a POST, safe to resend), then a 503.
    w.exo
        .server
        .fail_next(Fault::too_many(RetryAfterStyle::Seconds(0)));
    w.exo.server.fail_next(Fault::server_error());
    w.exo
        .server
        .fail_next(Fault::unavailable(Some(RetryAfterStyle::Seconds(0))));
    let (ctx, _, retries) = recording();
    let p = params(json!({}));
    let out = w
        .provider
        .apply(&call("hide_from_gal", "alice@contoso.com", &p, None), &ctx)
        .await
        .unwrap();
    assert!(out.changed);
    assert_eq!(w.exo.server.injected().len(), 3);
    let r = retries.lock().unwrap().clone();
    assert_eq!(r.len(), 3, "{r:?}");
    assert!(r[0].contains("429") && r[0].contains("wait 0 s"), "{r:?}");
    assert!(r[1].contains("500"), "{r:?}");
    // Every request is in the journal's record, named by its cmdlet.
    let lines: Vec<String> = out.requests.iter().map(|r| r.url.clone()).collect();
    assert!(
        lines
            .iter()
            .all(|l| l.contains(&format!("/adminapi/beta/{TENANT}/InvokeCommand "))),
        "{lines:?}"
    );
    assert!(lines.last().unwrap().ends_with(" Set-Mailbox"), "{lines:?}");
    assert!(w.exo.mailbox("alice@contoso.com").unwrap().hidden);
    w.exo.assert_contract();
}

#[tokio::test]
async fn refusals_name_the_permission_and_never_a_secret() {
    let w = world().await;
    w.exo.add_mailbox("alice@contoso.com");
    w.exo.forbid("Set-Mailbox");
    let p = params(json!({}));
    let e = w
        .provider
        .apply(
            &call("convert_to_shared", "alice@contoso.com", &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ProviderError::Permanent(_)), "{e:?}");
    assert!(
        text.contains("403")
            && text.contains("Exchange.ManageAsApp")
            && text.contains("Exchange Administrator"),
        "{text}"
    );

    // An API that takes another token: 401, after one fresh token, with no secret in the words.
    let other = FakeExchange::start(TENANT, "a-token-from-elsewhere").await;
    other.add_mailbox("alice@contoso.com");
    let p2 = connect(&config(&other, &w.login, TENANT));
    let e = p2
        .check(
            &call("hide_from_gal", "alice@contoso.com", &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("401"), "{text}");
    for secret in [SECRET, TOKEN] {
        assert!(!text.contains(secret), "{text}");
    }
    assert_eq!(other.requests().len(), 2, "one retry with a fresh token");
}

#[tokio::test]
async fn the_token_is_asked_for_the_exchange_scope_in_its_own_tenant() {
    let w = world().await;
    w.exo.add_mailbox("alice@contoso.com");
    let p = params(json!({}));
    for action in ["hide_from_gal", "convert_to_shared"] {
        w.provider
            .apply(
                &call(action, "alice@contoso.com", &p, None),
                &CallCtx::silent(),
            )
            .await
            .unwrap();
    }
    // One token for the tenant, cached across calls.
    assert_eq!(w.login.issued(), 1);
    let reqs = w.login.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].raw_path, format!("/{TENANT}/oauth2/v2.0/token"));
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&reqs[0].body)
        .into_owned()
        .collect();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(field("scope"), Some(SCOPE));
    assert_eq!(field("grant_type"), Some("client_credentials"));
    assert_eq!(field("client_id"), Some(CLIENT));

    // A system for another tenant asks that tenant, never reuses this one's token.
    let fabrikam = "fabrikam.onmicrosoft.com";
    let exo2 = FakeExchange::start(fabrikam, TOKEN).await;
    exo2.add_mailbox("alice@contoso.com");
    let p2 = connect(&config(&exo2, &w.login, fabrikam));
    let e = p2
        .check(
            &call("hide_from_gal", "alice@contoso.com", &p, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("AADSTS90002"), "{e}");
    assert!(
        exo2.requests().is_empty(),
        "no request without a token of its own"
    );
    assert_eq!(w.login.refused(), 1);
}

#[tokio::test]
async fn preflight_changes_nothing_and_does_not_scan_the_tenant() {
    let w = world().await;
    let alice = w.exo.add_mailbox("alice@contoso.com");
    w.exo.add_shared("sales@contoso.com");
    w.exo.grant(
        "sales@contoso.com",
        "alice@contoso.com",
        &["FullAccess"],
        false,
    );
    w.exo.add_meeting("alice@contoso.com", "Weekly sync", 3);
    let none = params(json!({}));
    let found = w
        .provider
        .preflight(
            &call(
                "remove_mailbox_permissions",
                "alice@contoso.com",
                &none,
                None,
            ),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(found.contains(&alice.object_id), "{found}");
    assert_eq!(w.exo.cmdlets(), ["Get-Mailbox"], "one read, no scan");

    let meetings = params(json!({ "days": 30 }));
    w.provider
        .preflight(
            &call("cancel_meetings", "alice@contoso.com", &meetings, None),
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert_eq!(w.exo.cancellations_sent(), 0);
    assert_eq!(
        w.exo.mailbox("alice@contoso.com").unwrap().meetings.len(),
        1
    );
    assert_eq!(w.exo.rights_of("alice@contoso.com").len(), 1);
    w.exo.assert_contract();
}

#[tokio::test]
async fn a_next_page_elsewhere_or_the_same_page_again_is_refused() {
    let w = world().await;
    w.exo.add_mailbox("alice@contoso.com");
    let p = params(json!({}));
    let page = |next: String| {
        crate::common::fake_kit::Reply::json(200, &json!({ "value": [], "@odata.nextLink": next }))
    };
    let own = format!(
        "{}/adminapi/beta/{TENANT}/InvokeCommand?$skiptoken=2",
        w.exo.server.base_url
    );
    for (replies, words) in [
        (
            vec![page(
                "https://evil.example/adminapi/beta/x/InvokeCommand".into(),
            )],
            "another origin",
        ),
        (
            vec![page(own.clone()), page(own)],
            "same next-page link twice",
        ),
    ] {
        // The person's mailbox is read as usual; the tenant's list pages badly.
        w.exo
            .server
            .fail_next(Fault::Slow(std::time::Duration::ZERO));
        for r in replies {
            w.exo.server.fail_next(Fault::Reply(r));
        }
        let e = w
            .provider
            .check(
                &call("remove_mailbox_permissions", "alice@contoso.com", &p, None),
                &CallCtx::silent(),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains(words), "{e}");
        assert_eq!(w.exo.server.pending_faults(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Rollback: the pre-state an apply records, and restoring it

const ALICE: &str = "alice@contoso.com";

/// Apply by login; the account and the one pre-state recorded.
async fn apply_recording(w: &World, action: &str, p: &Map<String, Value>) -> (Account, Value) {
    let befores: Kept<Value> = Arc::default();
    let b = befores.clone();
    let ctx = CallCtx::silent().on_before(move |v| b.lock().unwrap().push(v.clone()));
    let out = w
        .provider
        .apply(&call(action, ALICE, p, None), &ctx)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"));
    let befores = befores.lock().unwrap().clone();
    assert_eq!(befores.len(), 1, "{action}: {befores:?}");
    (out.account.unwrap(), befores[0].clone())
}

/// Not restored yet; restore (changed); restore again (only reads); restored.
async fn restore_twice(
    w: &World,
    action: &str,
    p: &Map<String, Value>,
    a: &Account,
    before: &Value,
) {
    let c = call(action, ALICE, p, Some(a));
    let quiet = CallCtx::silent();
    let chk = w.provider.check_restored(&c, before, &quiet).await.unwrap();
    assert!(
        !chk.restored,
        "{action}: restored before the restore: {chk:?}"
    );
    let out = w
        .provider
        .restore(&c, before, &quiet)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"));
    assert!(out.changed, "{action}: {out:?}");
    w.exo.server.clear_requests();
    let again = w.provider.restore(&c, before, &quiet).await.unwrap();
    assert!(!again.changed, "{action}: {again:?}");
    for (cmdlet, _) in w.exo.calls() {
        assert!(
            cmdlet.starts_with("Get-"),
            "{action}: the second restore sent {cmdlet}"
        );
    }
    let chk = w.provider.check_restored(&c, before, &quiet).await.unwrap();
    assert!(chk.restored, "{action}: {chk:?}");
    assert_eq!(chk.account.as_ref(), Some(a));
    w.exo.assert_contract();
}

#[test]
fn every_exchange_action_declares_how_it_is_undone() {
    use offboard::providers::{Inverse, UNDO_NOT_BUILT};
    let kind = find_kind("exchange").unwrap();
    for a in kind.actions {
        assert_ne!(a.inverse, Inverse::None(UNDO_NOT_BUILT), "{}", a.name);
    }
    let none: Vec<&str> = kind
        .actions
        .iter()
        .filter(|a| matches!(a.inverse, Inverse::None(_)))
        .map(|a| a.name)
        .collect();
    assert_eq!(none, ["remove_mobile_devices", "cancel_meetings"]);
}

#[tokio::test]
async fn rollback_converts_back_shows_in_the_gal_and_puts_the_forwarding_back() {
    let w = world().await;
    let alice = w.exo.add_mailbox(ALICE);
    let bob = w.exo.add_mailbox("bob@contoso.com");
    // Alice forwarded to Bob's mailbox (by recipient) and kept a copy.
    w.exo.update(ALICE, |m| {
        m.forwarding_address = Some(bob.display_name.clone());
        m.deliver_and_forward = true;
    });
    let none = Map::new();
    let (a, before) = apply_recording(&w, "convert_to_shared", &none).await;
    assert_eq!(
        before,
        json!({ "id": alice.object_id, "RecipientTypeDetails": "UserMailbox" })
    );
    restore_twice(&w, "convert_to_shared", &none, &a, &before).await;
    assert_eq!(w.exo.mailbox(ALICE).unwrap().type_details, "UserMailbox");

    let (a, before) = apply_recording(&w, "hide_from_gal", &none).await;
    assert_eq!(
        before,
        json!({ "id": alice.object_id, "HiddenFromAddressListsEnabled": false })
    );
    restore_twice(&w, "hide_from_gal", &none, &a, &before).await;
    assert!(!w.exo.mailbox(ALICE).unwrap().hidden);

    let (a, before) = apply_recording(&w, "disable_forwarding", &none).await;
    assert_eq!(
        before,
        json!({ "id": alice.object_id, "ForwardingSmtpAddress": null,
                "ForwardingAddress": bob.display_name, "DeliverToMailboxAndForward": true })
    );
    assert_eq!(w.exo.mailbox(ALICE).unwrap().forwarding_address, None);
    let plan = w
        .provider
        .describe_restore(&call("disable_forwarding", ALICE, &none, Some(&a)), &before);
    assert!(
        plan[1].url.ends_with(&format!(
            "Set-Mailbox -Identity {} -ForwardingSmtpAddress $null -ForwardingAddress {} \
             -DeliverToMailboxAndForward $true",
            alice.object_id, bob.display_name
        )),
        "{plan:?}"
    );
    restore_twice(&w, "disable_forwarding", &none, &a, &before).await;
    let m = w.exo.mailbox(ALICE).unwrap();
    assert_eq!(
        m.forwarding_address.as_deref(),
        Some(bob.display_name.as_str())
    );
    assert!(m.deliver_and_forward);

    // set_forwarding for the handoff, undone: back to Bob as before.
    let fwd = params(json!({ "to": "carol@contoso.com", "keep_copy": false }));
    let (a, before) = apply_recording(&w, "set_forwarding", &fwd).await;
    assert_eq!(before["ForwardingAddress"], json!(bob.display_name));
    restore_twice(&w, "set_forwarding", &fwd, &a, &before).await;
    let m = w.exo.mailbox(ALICE).unwrap();
    assert_eq!(m.forwarding_smtp, None);
    assert!(m.deliver_and_forward);

    // The mailbox gone: no restore, and the check says so.
    w.exo.remove_mailbox(ALICE);
    let c = call("hide_from_gal", ALICE, &none, Some(&a));
    let err = w
        .provider
        .restore(
            &c,
            &json!({ "id": alice.object_id, "HiddenFromAddressListsEnabled": false }),
            &CallCtx::silent(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("mailbox gone"), "{err}");
}

#[tokio::test]
async fn rollback_takes_back_the_full_access_granted_and_only_that() {
    let w = world().await;
    let alice = w.exo.add_mailbox(ALICE);
    w.exo.add_mailbox("boss@contoso.com");
    let p = params(json!({ "to": "boss@contoso.com" }));
    let (a, before) = apply_recording(&w, "grant_full_access", &p).await;
    assert_eq!(
        before,
        json!({ "id": alice.object_id, "user": "boss@contoso.com", "fullAccess": false })
    );
    assert!(w.exo.permission(ALICE, "boss@contoso.com").is_some());
    restore_twice(&w, "grant_full_access", &p, &a, &before).await;
    assert!(w.exo.permission(ALICE, "boss@contoso.com").is_none());

    // The boss held it before offboard: rollback leaves it.
    w.exo
        .grant(ALICE, "boss@contoso.com", &["FullAccess"], false);
    let held = json!({ "id": alice.object_id, "user": "boss@contoso.com", "fullAccess": true });
    let out = w
        .provider
        .restore(
            &call("grant_full_access", ALICE, &p, Some(&a)),
            &held,
            &CallCtx::silent(),
        )
        .await
        .unwrap();
    assert!(!out.changed, "{out:?}");
    assert!(w.exo.permission(ALICE, "boss@contoso.com").is_some());
}

#[tokio::test]
async fn rollback_grants_the_removed_rights_again_but_not_the_inherited() {
    let w = world().await;
    let alice = w.exo.add_mailbox(ALICE);
    let sales = w.exo.add_shared("sales@contoso.com");
    w.exo.add_shared("support@contoso.com");
    w.exo
        .grant("sales@contoso.com", ALICE, &["FullAccess"], false);
    w.exo
        .grant("support@contoso.com", ALICE, &["ReadPermission"], true);
    let none = Map::new();
    let (a, before) = apply_recording(&w, "remove_mailbox_permissions", &none).await;
    assert_eq!(before["id"], json!(alice.object_id));
    let grants = before["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 2, "{before}");
    assert!(grants.iter().any(|g| g["mailbox"] == json!(sales.object_id)
        && g["rights"] == json!(["FullAccess"])
        && g["inherited"] == json!(false)));
    assert!(w.exo.permission("sales@contoso.com", ALICE).is_none());
    restore_twice(&w, "remove_mailbox_permissions", &none, &a, &before).await;
    let back = w.exo.permission("sales@contoso.com", ALICE).unwrap();
    assert_eq!(back.rights, ["FullAccess"]);
    assert_eq!(back.automap, Some(false));
    // The inherited right was never removed and is not granted explicitly now.
    let support: Vec<(String, Vec<String>, bool)> = w
        .exo
        .rights_of(ALICE)
        .into_iter()
        .filter(|(m, _, _)| m.contains("support"))
        .collect();
    assert_eq!(support.len(), 1, "{support:?}");
    assert!(support[0].2, "{support:?}");
}

#[tokio::test]
async fn rollback_names_a_mailbox_gone_since_and_grants_the_rest() {
    let w = world().await;
    w.exo.add_mailbox(ALICE);
    w.exo.add_shared("sales@contoso.com");
    w.exo.add_shared("hr@contoso.com");
    w.exo
        .grant("sales@contoso.com", ALICE, &["FullAccess"], false);
    w.exo.grant("hr@contoso.com", ALICE, &["FullAccess"], false);
    let none = Map::new();
    let (a, before) = apply_recording(&w, "remove_mailbox_permissions", &none).await;
    w.exo.remove_mailbox("hr@contoso.com");
    let c = call("remove_mailbox_permissions", ALICE, &none, Some(&a));
    let err = w
        .provider
        .restore(&c, &before, &CallCtx::silent())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("granted FullAccess on sales@contoso.com again")
            && msg.contains("mailbox(es) hr@contoso.com no longer exist"),
        "{msg}"
    );
    assert!(w.exo.permission("sales@contoso.com", ALICE).is_some());
    let chk = w
        .provider
        .check_restored(&c, &before, &CallCtx::silent())
        .await
        .unwrap();
    assert!(
        !chk.restored && chk.observed.contains("mailbox gone"),
        "{chk:?}"
    );
    w.exo.assert_contract();
}
