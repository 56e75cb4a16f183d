//! The kit's paging through the one request path, against a fake that pages as each provider
//! style does: every item of every page in order, the next link never followed off-origin, a
//! server that repeats its link stopped instead of looped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use offboard::providers::kit::http::{HttpClient, RetryPolicy};
use offboard::providers::kit::paging::{Paging, get_all};
use offboard::providers::{CallCtx, SystemConfig};
use serde_json::json;
use url::Url;

use crate::common::fake_kit::{FakeServer, Reply, Routes};

/// Three pages of two users each: u0..u5.
fn page_items(page: usize) -> serde_json::Value {
    json!([{"id": format!("u{}", page * 2)}, {"id": format!("u{}", page * 2 + 1)}])
}

fn client(base: &str) -> HttpClient {
    HttpClient::new(&SystemConfig::new("paging", "scim", Some(base)).with_token("tok-paging"))
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        })
}

fn ids(items: &[serde_json::Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

const ALL: [&str; 6] = ["u0", "u1", "u2", "u3", "u4", "u5"];

#[tokio::test]
async fn link_header_pages_as_github_and_okta_do() {
    let base = Arc::new(std::sync::OnceLock::<String>::new());
    let b = base.clone();
    let fake = FakeServer::start(Routes::new().route("GET", "/users", move |r| {
        let page: usize = r.query("page").unwrap_or("0").parse().unwrap();
        let mut reply = Reply::json(200, &page_items(page));
        if page < 2 {
            let next = format!("{}/users?page={}", b.get().unwrap(), page + 1);
            reply = reply.header("link", format!(r#"<{next}>; rel="next", <x>; rel="self""#));
        }
        reply
    }))
    .await;
    base.set(fake.base_url.clone()).unwrap();
    let http = client(&fake.base_url);
    let (items, made) = get_all(
        &http,
        Url::parse(&fake.url("/users")).unwrap(),
        Paging::LinkHeader,
        "",
        &CallCtx::silent(),
    )
    .await
    .unwrap();
    assert_eq!(ids(&items), ALL);
    assert_eq!(made.len(), 3);
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.auth_scheme() == Some("Bearer"))
    );
}

#[tokio::test]
async fn next_url_in_the_body_pages_as_graph_does() {
    let base = Arc::new(std::sync::OnceLock::<String>::new());
    let b = base.clone();
    let fake = FakeServer::start(Routes::new().route("GET", "/v1.0/users", move |r| {
        let page: usize = r.query("$skiptoken").map_or(0, |t| t.parse().unwrap());
        let mut body = json!({"value": page_items(page)});
        if page < 2 {
            body["@odata.nextLink"] = json!(format!(
                "{}/v1.0/users?$skiptoken={}",
                b.get().unwrap(),
                page + 1
            ));
        }
        Reply::json(200, &body)
    }))
    .await;
    base.set(fake.base_url.clone()).unwrap();
    let (items, _) = get_all(
        &client(&fake.base_url),
        Url::parse(&fake.url("/v1.0/users")).unwrap(),
        Paging::NextUrl {
            pointer: "/@odata.nextLink".into(),
        },
        "/value",
        &CallCtx::silent(),
    )
    .await
    .unwrap();
    assert_eq!(ids(&items), ALL);
}

#[tokio::test]
async fn cursors_page_as_slack_and_google_do() {
    let fake = FakeServer::start(Routes::new().route("GET", "/api/users.list", |r| {
        let page: usize = match r.query("cursor") {
            None => 0,
            Some(c) => c.trim_start_matches("next=").parse().unwrap(),
        };
        let next = if page < 2 {
            format!("next={}", page + 1)
        } else {
            String::new()
        };
        Reply::json(
            200,
            &json!({"ok": true, "members": page_items(page),
                    "response_metadata": {"next_cursor": next}}),
        )
    }))
    .await;
    let first = Url::parse(&fake.url("/api/users.list?limit=2")).unwrap();
    let (items, _) = get_all(
        &client(&fake.base_url),
        first,
        Paging::Cursor {
            pointer: "/response_metadata/next_cursor".into(),
            param: "cursor".into(),
        },
        "/members",
        &CallCtx::silent(),
    )
    .await
    .unwrap();
    assert_eq!(ids(&items), ALL);
    // The cursor travels encoded, and the first page's other parameters stay.
    let last = fake.requests().last().cloned().unwrap();
    assert_eq!(last.query_param("cursor"), Some("next=2"));
    assert_eq!(last.query_param("limit"), Some("2"));
}

/// Google's lists: `nextPageToken` back as `pageToken`, and a list with no items leaves its key
/// out (a `Cursor` would call that page malformed).
#[tokio::test]
async fn page_tokens_page_as_google_does_and_an_empty_list_may_omit_its_key() {
    let fake = FakeServer::start(
        Routes::new().route("GET", "/admin/directory/v1/groups", |r| {
            if r.query("userKey") == Some("loner") {
                return Reply::json(200, &json!({"kind": "admin#directory#groups", "etag": "e"}));
            }
            let page: usize = match r.query("pageToken") {
                None => 0,
                Some(t) => t.trim_start_matches("tok=").parse().unwrap(),
            };
            let mut v = json!({"kind": "admin#directory#groups", "groups": page_items(page)});
            if page < 2 {
                v["nextPageToken"] = json!(format!("tok={}", page + 1));
            }
            Reply::json(200, &v)
        }),
    )
    .await;
    let http = client(&fake.base_url);
    let first = Url::parse(&fake.url("/admin/directory/v1/groups?userKey=a%40corp")).unwrap();
    let (items, made) = get_all(
        &http,
        first,
        Paging::PageToken,
        "/groups",
        &CallCtx::silent(),
    )
    .await
    .unwrap();
    assert_eq!(ids(&items), ALL);
    assert_eq!(made.len(), 3);
    let last = fake.requests().last().cloned().unwrap();
    assert_eq!(last.query_param("pageToken"), Some("tok=2"));
    assert_eq!(last.query_param("userKey"), Some("a@corp"));
    let none = Url::parse(&fake.url("/admin/directory/v1/groups?userKey=loner")).unwrap();
    let (items, _) = get_all(
        &http,
        none,
        Paging::PageToken,
        "/groups",
        &CallCtx::silent(),
    )
    .await
    .unwrap();
    assert!(items.is_empty());
}

#[tokio::test]
async fn start_index_pages_as_scim_does_and_an_empty_list_may_omit_resources() {
    let fake = FakeServer::start(Routes::new().route("GET", "/Users", |r| {
        let start: usize = r.query("startIndex").unwrap().parse().unwrap();
        let count: usize = r.query("count").unwrap().parse().unwrap();
        assert_eq!(count, 2);
        if r.query("filter") == Some("userName eq \"nobody\"") {
            return Reply::json(200, &json!({"totalResults": 0}));
        }
        Reply::json(
            200,
            &json!({"totalResults": 6, "startIndex": start, "Resources": page_items((start - 1) / 2)}),
        )
    }))
    .await;
    let http = client(&fake.base_url);
    let (items, made) = get_all(
        &http,
        Url::parse(&fake.url("/Users")).unwrap(),
        Paging::StartIndex { count: 2 },
        "/Resources",
        &CallCtx::silent(),
    )
    .await
    .unwrap();
    assert_eq!(ids(&items), ALL);
    assert_eq!(made.len(), 3);
    let url = Url::parse(&fake.url("/Users")).unwrap();
    let url =
        offboard::providers::kit::http::with_query(url, &[("filter", "userName eq \"nobody\"")]);
    let (none, _) = get_all(
        &http,
        url,
        Paging::StartIndex { count: 2 },
        "/Resources",
        &CallCtx::silent(),
    )
    .await
    .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn page_numbers_page_as_jamf_does() {
    let fake = FakeServer::start(
        Routes::new().route("GET", "/api/v1/computers-inventory", |r| {
            let page: usize = r.query("page").unwrap().parse().unwrap();
            assert_eq!(r.query("page-size"), Some("2"));
            assert_eq!(r.query("section"), Some("GENERAL"));
            let total = if r.query("filter") == Some("none") {
                0
            } else {
                6
            };
            let results = if total == 0 || page > 2 {
                json!([])
            } else {
                page_items(page)
            };
            Reply::json(200, &json!({"totalCount": total, "results": results}))
        }),
    )
    .await;
    let http = client(&fake.base_url);
    let first = |filter: &str| {
        offboard::providers::kit::http::with_query(
            Url::parse(&fake.url("/api/v1/computers-inventory")).unwrap(),
            &[("section", "GENERAL"), ("filter", filter)],
        )
    };
    let (items, made) = get_all(
        &http,
        first("all"),
        Paging::PageNumber { size: 2 },
        "/results",
        &CallCtx::silent(),
    )
    .await
    .unwrap();
    assert_eq!(ids(&items), ALL);
    // Pages 0, 1, 2 and no fourth: totalCount is reached.
    assert_eq!(made.len(), 3);
    assert!(
        made[2].url.ends_with("page=2&page-size=2"),
        "{}",
        made[2].url
    );
    let (none, made) = get_all(
        &http,
        first("none"),
        Paging::PageNumber { size: 2 },
        "/results",
        &CallCtx::silent(),
    )
    .await
    .unwrap();
    assert!(none.is_empty());
    assert_eq!(made.len(), 1);
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_not_followed() {
    let fake = FakeServer::start(Routes::new().route("GET", "/users", |_| {
        Reply::json(200, &page_items(0)).header(
            "link",
            r#"<https://collector.example/users?page=1>; rel="next""#,
        )
    }))
    .await;
    let err = get_all(
        &client(&fake.base_url),
        Url::parse(&fake.url("/users")).unwrap(),
        Paging::LinkHeader,
        "",
        &CallCtx::silent(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("another origin"), "{err}");
    assert!(!err.to_string().contains("tok-paging"), "{err}");
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_server_that_repeats_its_next_link_is_stopped_not_looped() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let fake = FakeServer::start(Routes::new().route("GET", "/v1.0/users", move |_| {
        h.fetch_add(1, Ordering::SeqCst);
        Reply::json(
            200,
            &json!({"value": page_items(0), "@odata.nextLink": "/v1.0/users?$skiptoken=same"}),
        )
    }))
    .await;
    let err = get_all(
        &client(&fake.base_url),
        Url::parse(&fake.url("/v1.0/users")).unwrap(),
        Paging::NextUrl {
            pointer: "/@odata.nextLink".into(),
        },
        "/value",
        &CallCtx::silent(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("same page link twice"), "{err}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn after_last_id_pages_as_ninjaone_does() {
    // Items are numbered ids 10..=14, newest first; `olderThan` asks for the ones below it.
    let fake = FakeServer::start(Routes::new().route("GET", "/activities", move |r| {
        let size: usize = r.query("pageSize").unwrap().parse().unwrap();
        let older: u64 = r
            .query("olderThan")
            .map_or(u64::MAX, |v| v.parse().unwrap());
        let page: Vec<serde_json::Value> = (10..=14u64)
            .rev()
            .filter(|id| *id < older)
            .take(size)
            .map(|id| json!({ "id": id }))
            .collect();
        Reply::json(
            200,
            &json!({ "lastNodeActivityId": 14, "activities": page }),
        )
    }))
    .await;
    let http = client(&fake.base_url);
    let (items, made) = get_all(
        &http,
        Url::parse(&fake.url("/activities?activityType=ACTION")).unwrap(),
        Paging::AfterLastId {
            size: 2,
            size_param: "pageSize",
            param: "olderThan",
            id_pointer: "/id",
        },
        "/activities",
        &CallCtx::silent(),
    )
    .await
    .unwrap();
    let got: Vec<u64> = items.iter().map(|i| i["id"].as_u64().unwrap()).collect();
    assert_eq!(got, [14, 13, 12, 11, 10]);
    // Three pages: 2, 2, then a short one ends the list; the filter kept on each.
    assert_eq!(made.len(), 3);
    let lines: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| r.raw_query.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        lines,
        [
            "activityType=ACTION&pageSize=2",
            "activityType=ACTION&pageSize=2&olderThan=13",
            "activityType=ACTION&pageSize=2&olderThan=11",
        ]
    );
}
