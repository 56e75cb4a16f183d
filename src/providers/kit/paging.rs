//! Reading every page of a list, in each style the providers use, through the one request path
//! (so every page is retried, rate-limited and recorded like any request):
//!
//! - [`Paging::LinkHeader`]: RFC 8288 `Link: <…>; rel="next"` (GitHub, Okta);
//! - [`Paging::NextUrl`]: a URL in the body, e.g. `@odata.nextLink` (Microsoft Graph);
//! - [`Paging::Cursor`]: a token in the body sent back as a query parameter (Slack's
//!   `response_metadata.next_cursor` as `cursor`, Google's `nextPageToken` as `pageToken`);
//! - [`Paging::PageToken`]: Google's APIs: `nextPageToken` sent back as `pageToken`, and the
//!   list's key left out of a page that has no items (Google omits empty repeated fields);
//! - [`Paging::StartIndex`]: SCIM's `startIndex`/`count` until `totalResults` (RFC 7644 §3.4.2.4);
//! - [`Paging::PageNumber`]: a 0-based `page` and `page-size` until `totalCount` (the Jamf Pro API).
//! - [`Paging::AfterLastId`]: a page size, and the next page asked for by the id of the last item
//!   read (NinjaOne's `after` on device lists, `olderThan` on activities), until a short page.
//!
//! A next-page URL that points at another origin than the first page is refused: following it
//! would send the credential to someone else. A repeated cursor or URL, or more than
//! [`MAX_PAGES`] pages, ends the read with an error rather than a loop.

use serde_json::Value;
use url::Url;

use crate::providers::kit::http::{HttpClient, Request, with_query};
use crate::providers::{CallCtx, ProviderError, RequestRecord};

/// More pages than this is a server that never stops: an error, not a loop.
pub const MAX_PAGES: usize = 1000;

/// How a list says where its next page is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paging {
    LinkHeader,
    /// The next page's URL at this JSON pointer, e.g. `/@odata.nextLink`.
    NextUrl {
        pointer: String,
    },
    /// The next cursor at `pointer`, sent as query parameter `param`; absent or empty ends.
    Cursor {
        pointer: String,
        param: String,
    },
    /// Google's style: the next token at `/nextPageToken`, sent as `pageToken`; a page without
    /// the list's key is an empty page (Google leaves empty lists out), not an error.
    PageToken,
    /// `startIndex` (1-based) and `count` per page, until `totalResults` is reached.
    StartIndex {
        count: usize,
    },
    /// `page` (0-based) and `page-size` per page, until `totalCount` items are read (or a page
    /// comes back empty).
    PageNumber {
        size: usize,
    },
    /// `size_param` = `size` items per page; the next page is asked for with `param` = the id
    /// (at `id_pointer` in the last item, a number or a string) of the last item read. A page
    /// shorter than `size` (or empty) ends the list.
    AfterLastId {
        size: usize,
        size_param: &'static str,
        param: &'static str,
        id_pointer: &'static str,
    },
}

/// Every item of every page (the array at `items` in each page's JSON body, e.g. `/value`,
/// `/Resources`, `` for a top-level array), and the requests made.
pub async fn get_all(
    http: &HttpClient,
    first: Url,
    paging: Paging,
    items: &str,
    ctx: &CallCtx,
) -> Result<(Vec<Value>, Vec<RequestRecord>), ProviderError> {
    let mut out = Vec::new();
    let mut records = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut next = Some(match &paging {
        Paging::StartIndex { count } => set_params(
            &first,
            &[("startIndex", "1"), ("count", &count.to_string())],
        ),
        Paging::PageNumber { size } => {
            set_params(&first, &[("page", "0"), ("page-size", &size.to_string())])
        }
        Paging::AfterLastId {
            size, size_param, ..
        } => set_params(&first, &[(size_param, &size.to_string())]),
        _ => first.clone(),
    });
    let mut start = 1usize;
    let mut page_no = 0usize;
    while let Some(url) = next.take() {
        if seen.len() >= MAX_PAGES {
            return Err(ProviderError::Transient(format!(
                "{}: more than {MAX_PAGES} pages; stopped reading",
                first.path()
            )));
        }
        if seen.contains(&url.to_string()) {
            return Err(ProviderError::Permanent(format!(
                "{}: the server sent the same page link twice ({}); stopped reading instead of \
                 looping",
                first.path(),
                url.path()
            )));
        }
        seen.push(url.to_string());
        let resp = http.send(Request::get(url.clone()), ctx).await?;
        records.push(resp.record.clone());
        let body: Value = resp.json()?;
        let page = match body.pointer(items) {
            Some(Value::Array(a)) => a.as_slice(),
            // SCIM leaves `Resources` out of an empty list (RFC 7644 §3.4.2).
            // Google's APIs leave an empty list's key out.
            None | Some(Value::Null)
                if matches!(paging, Paging::StartIndex { .. } | Paging::PageToken) =>
            {
                &[]
            }
            _ => {
                return Err(ProviderError::Permanent(format!(
                    "{} answered a page without a list at {items:?}",
                    url.path()
                )));
            }
        };
        let n = page.len();
        out.extend(page.iter().cloned());
        next = match &paging {
            Paging::LinkHeader => link_next(resp.headers.get_all("link").iter())
                .map(|href| same_origin(&first, &url, &href))
                .transpose()?,
            Paging::NextUrl { pointer } => body
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(|href| same_origin(&first, &url, href))
                .transpose()?,
            Paging::Cursor { pointer, param } => body
                .pointer(pointer)
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(|c| with_param(&first, param, c)),
            Paging::PageToken => body
                .get("nextPageToken")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(|c| with_param(&first, "pageToken", c)),
            Paging::StartIndex { count } => {
                let total = match body.get("totalResults") {
                    Some(Value::Number(t)) => t.as_u64(),
                    Some(Value::String(t)) => t.parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| {
                    ProviderError::Permanent(format!(
                        "{} answered a ListResponse without a numeric totalResults",
                        url.path()
                    ))
                })?;
                start += n;
                (n > 0 && ((start - 1) as u64) < total).then(|| {
                    set_params(
                        &first,
                        &[
                            ("startIndex", &start.to_string()),
                            ("count", &count.to_string()),
                        ],
                    )
                })
            }
            Paging::PageNumber { size } => {
                let total = body
                    .get("totalCount")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| {
                        ProviderError::Permanent(format!(
                            "{} answered a page without a numeric totalCount",
                            url.path()
                        ))
                    })?;
                page_no += 1;
                (n > 0 && (out.len() as u64) < total).then(|| {
                    set_params(
                        &first,
                        &[
                            ("page", &page_no.to_string()),
                            ("page-size", &size.to_string()),
                        ],
                    )
                })
            }
            Paging::AfterLastId {
                size,
                size_param,
                param,
                id_pointer,
            } => {
                let last = page.last().and_then(|item| match item.pointer(id_pointer) {
                    Some(Value::Number(n)) => Some(n.to_string()),
                    Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                });
                match last {
                    Some(id) if n >= *size => Some(set_params(
                        &first,
                        &[(size_param, &size.to_string()), (param, &id)],
                    )),
                    None if n >= *size => {
                        return Err(ProviderError::Permanent(format!(
                            "{} answered a full page whose last item has no id at {id_pointer:?}",
                            url.path()
                        )));
                    }
                    _ => None,
                }
            }
        };
    }
    Ok((out, records))
}

/// `first` with `param=value` set (replacing an earlier one).
fn with_param(first: &Url, param: &str, value: &str) -> Url {
    set_params(first, &[(param, value)])
}

/// `url` with these parameters set, replacing same-named ones and keeping the rest, every part
/// percent-encoded as the request path encodes it (`%20`, never `+`).
fn set_params(url: &Url, set: &[(&str, &str)]) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !set.iter().any(|(s, _)| s == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut pairs: Vec<(&str, &str)> = kept.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    pairs.extend_from_slice(set);
    with_query(url.clone(), &pairs)
}

/// A next link, resolved against the page it came from; refused unless it stays on the first
/// page's origin (scheme, host and port).
fn same_origin(first: &Url, page: &Url, href: &str) -> Result<Url, ProviderError> {
    let next = page.join(href).map_err(|e| {
        ProviderError::Permanent(format!("the next-page link {href:?} is not a URL: {e}"))
    })?;
    if next.origin() != first.origin() {
        return Err(ProviderError::Permanent(format!(
            "the next page of {} is on another origin ({}); not following it, the credential \
             would go there too",
            first.path(),
            next.origin().ascii_serialization()
        )));
    }
    Ok(next)
}

/// The `rel="next"` target of RFC 8288 `Link` headers, if any.
fn link_next<'a>(
    headers: impl Iterator<Item = &'a reqwest::header::HeaderValue>,
) -> Option<String> {
    for h in headers {
        let Ok(s) = h.to_str() else { continue };
        for part in s.split(',') {
            let mut bits = part.split(';');
            let Some(target) = bits.next().map(str::trim) else {
                continue;
            };
            let is_next = bits.any(|p| {
                let p = p.trim();
                p.strip_prefix("rel=").is_some_and(|r| {
                    r.trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
                })
            });
            if is_next && target.starts_with('<') && target.ends_with('>') {
                return Some(target[1..target.len() - 1].to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn link_headers_give_the_next_target() {
        let h = [HeaderValue::from_static(
            r#"<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=3>; rel="next", <https://api.github.com/x?page=9>; rel="last""#,
        )];
        assert_eq!(
            link_next(h.iter()).as_deref(),
            Some("https://api.github.com/x?page=3")
        );
        let none = [HeaderValue::from_static(r#"<https://a/x>; rel="self""#)];
        assert_eq!(link_next(none.iter()), None);
        let okta = [
            HeaderValue::from_static(r#"<https://o/api/v1/users?limit=2>; rel="self""#),
            HeaderValue::from_static(r#"<https://o/api/v1/users?after=00u2&limit=2>; rel="next""#),
        ];
        assert_eq!(
            link_next(okta.iter()).as_deref(),
            Some("https://o/api/v1/users?after=00u2&limit=2")
        );
    }

    #[test]
    fn next_links_stay_on_the_first_origin() {
        let first = Url::parse("https://graph.microsoft.com/v1.0/users").unwrap();
        let ok = same_origin(&first, &first, "/v1.0/users?$skiptoken=X").unwrap();
        assert_eq!(
            ok.as_str(),
            "https://graph.microsoft.com/v1.0/users?$skiptoken=X"
        );
        for bad in [
            "https://evil.example/v1.0/users",
            "http://graph.microsoft.com/v1.0/users",
            "https://graph.microsoft.com:8443/x",
        ] {
            let e = same_origin(&first, &first, bad).unwrap_err();
            assert!(e.to_string().contains("another origin"), "{bad}: {e}");
        }
    }

    #[test]
    fn cursors_replace_the_earlier_one() {
        let first = Url::parse("https://slack.com/api/users.list?limit=2&cursor=old").unwrap();
        assert_eq!(
            with_param(&first, "cursor", "dXNlcjpVMEc5V0ZYTlo=").as_str(),
            "https://slack.com/api/users.list?limit=2&cursor=dXNlcjpVMEc5V0ZYTlo%3D"
        );
        let scim = Url::parse("https://s/scim/v2/Groups?filter=members%5Bvalue%20eq%20%22u1%22%5D")
            .unwrap();
        assert_eq!(
            set_params(&scim, &[("startIndex", "101"), ("count", "100")]).as_str(),
            "https://s/scim/v2/Groups?filter=members%5Bvalue%20eq%20%22u1%22%5D&startIndex=101&count=100"
        );
    }
}
