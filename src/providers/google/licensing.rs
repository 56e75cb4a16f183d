//! `remove_licenses`: the Enterprise License Manager API. Assignments are addressed by
//! product, SKU and the user's current primary email (the API's `userId`), read by id first.
//!
//! With `skus`, each (product, SKU) is read with `GET …/product/{p}/sku/{s}/user/{email}` (404
//! = not assigned); without, each product's assignments are listed (`GET …/product/{p}/users?
//! customerId=…`, every page) and the user's kept. Each is deleted; the SKUs freed are named
//! in the summary (product/SKU and its name) so the report can count them.

use reqwest::StatusCode;
use serde_json::Value;

use super::{Api, GoogleProvider, User, done, not_the_person, partly, scopes};
use crate::providers::kit::http::{HttpClient, Request, with_query};
use crate::providers::kit::paging::{self, Paging};
use crate::providers::{
    ApplyOutcome, CallCtx, CheckOutcome, ProviderError, RequestLine, RequestRecord, StepCall,
    params,
};

/// `remove_licenses`' parameters.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct LicenseParams {
    /// The product ids to look in, e.g. `["Google-Apps"]` (Workspace) or `["101031"]`
    /// (Education); see Google's list of products and SKUs.
    #[schemars(length(min = 1))]
    products: Vec<String>,
    /// Only these SKU ids, e.g. `["1010020027"]` (Business Starter); default: every SKU of the
    /// products (listed per product, for the whole `customer`).
    #[schemars(length(min = 1))]
    skus: Option<Vec<String>>,
}

/// One licence assignment of the user.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Assignment {
    product: String,
    sku: String,
    name: Option<String>,
}

impl Assignment {
    fn from_json(v: &Value) -> Option<Assignment> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Assignment {
            product: s("productId")?,
            sku: s("skuId")?,
            name: s("skuName"),
        })
    }

    fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{}/{} ({n})", self.product, self.sku),
            None => format!("{}/{}", self.product, self.sku),
        }
    }
}

fn base(segments: &[&str]) -> Vec<String> {
    let mut all = vec!["apps", "licensing", "v1", "product"];
    all.extend_from_slice(segments);
    all.iter().map(|s| s.to_string()).collect()
}

/// The plan lines after the user lookup.
pub(super) fn describe(p: &GoogleProvider, call: &StepCall<'_>) -> Vec<RequestLine> {
    let Ok(lp) = params::parse::<LicenseParams>(call.action, call.params) else {
        return Vec::new();
    };
    let url = |segs: &[&str]| -> Option<String> {
        let v = base(segs);
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        p.url(Api::Licensing, &v).ok().map(|u| u.to_string())
    };
    let mut lines = Vec::new();
    for product in &lp.products {
        match &lp.skus {
            Some(skus) => {
                for sku in skus {
                    if let Some(u) = url(&[product, "sku", sku, "user"]) {
                        lines.push(RequestLine {
                            method: "GET".into(),
                            url: format!("{u}/{{email}}"),
                        });
                        lines.push(RequestLine {
                            method: "DELETE".into(),
                            url: format!("{u}/{{email}}"),
                        });
                    }
                }
            }
            None => {
                if let Ok(u) = p.licensing(&[product, "users"]) {
                    lines.push(RequestLine {
                        method: "GET".into(),
                        url: with_query(u, &[("customerId", &p.customer)]).to_string(),
                    });
                }
                if let Some(u) = url(&[product, "sku"]) {
                    lines.push(RequestLine {
                        method: "DELETE".into(),
                        url: format!("{u}/{{skuId}}/user/{{email}}"),
                    });
                }
            }
        }
    }
    lines
}

impl GoogleProvider {
    pub(super) fn licensing(&self, segments: &[&str]) -> Result<url::Url, ProviderError> {
        let v = base(segments);
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        self.url(Api::Licensing, &v)
    }

    /// The user's assignments among `p`'s products (and SKUs).
    async fn assignments(
        &self,
        http: &HttpClient,
        p: &LicenseParams,
        user: &User,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Vec<Assignment>, ProviderError> {
        if user.email.is_empty() {
            return Err(self.err(format!(
                "GET users/{} answered without `primaryEmail`, which the Licensing API needs",
                user.id
            )));
        }
        let mut out = Vec::new();
        for product in &p.products {
            match &p.skus {
                Some(skus) => {
                    for sku in skus {
                        let url = self.licensing(&[product, "sku", sku, "user", &user.email])?;
                        let resp = self
                            .send(
                                http,
                                Request::get(url).allow(StatusCode::NOT_FOUND),
                                ctx,
                                records,
                            )
                            .await
                            .map_err(not_the_person)?;
                        if resp.status == StatusCode::NOT_FOUND {
                            continue;
                        }
                        let v: Value = resp.json()?;
                        out.push(Assignment::from_json(&v).unwrap_or(Assignment {
                            product: product.clone(),
                            sku: sku.clone(),
                            name: None,
                        }));
                    }
                }
                None => {
                    // UNCONFIRMED: that listForProduct takes `my_customer` as `customerId`
                    // (Google's reference asks for the customer id or the primary domain);
                    // `customer` can name either.
                    let first = with_query(
                        self.licensing(&[product, "users"])?,
                        &[("customerId", &self.customer)],
                    );
                    let (items, recs) =
                        paging::get_all(http, first, Paging::PageToken, "/items", ctx)
                            .await
                            .map_err(not_the_person)?;
                    records.extend(recs);
                    out.extend(
                        items
                            .iter()
                            .filter(|a| {
                                a.get("userId")
                                    .and_then(Value::as_str)
                                    .is_some_and(|u| u.eq_ignore_ascii_case(&user.email))
                            })
                            .filter_map(Assignment::from_json),
                    );
                }
            }
        }
        out.dedup();
        Ok(out)
    }

    pub(super) async fn remove_licenses(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        let p: LicenseParams = params::parse(call.action, call.params)?;
        // The same scopes on both APIs: one token.
        let admin = self.as_admin(Api::Admin, scopes::LICENSING)?;
        let http = self.as_admin(Api::Licensing, scopes::LICENSING)?;
        let mut records = Vec::new();
        let (user, account) = match self.live(&admin, call, ctx, &mut records).await? {
            Ok(x) => x,
            Err(done) => {
                // A deleted user holds no licence: nothing left to free.
                ctx.freed_licences(&[]);
                return Ok(done);
            }
        };
        let found = self
            .assignments(&http, &p, &user, ctx, &mut records)
            .await?;
        ctx.before(&serde_json::json!({
            "id": user.id,
            "email": user.email,
            "assignments": found
                .iter()
                .map(|a| serde_json::json!({ "productId": a.product, "skuId": a.sku, "skuName": a.name }))
                .collect::<Vec<_>>(),
        }));
        let mut freed = Vec::new();
        for a in &found {
            let url = self.licensing(&[&a.product, "sku", &a.sku, "user", &user.email])?;
            let resp = self
                .send(
                    &http,
                    Request::delete(url).allow(StatusCode::NOT_FOUND),
                    ctx,
                    &mut records,
                )
                .await
                .map_err(|e| partly(e, &freed))?;
            if resp.status != StatusCode::NOT_FOUND {
                freed.push(a.label());
            }
        }
        // Journaled as `applied.licences_freed`: `offboard report` counts them by SKU.
        ctx.freed_licences(&freed);
        Ok(if freed.is_empty() {
            done(
                false,
                format!(
                    "Google user {} holds no licence of {}",
                    user.email,
                    p.products.join(", ")
                ),
                records,
                account,
            )
        } else {
            done(
                true,
                format!(
                    "freed {} licence(s) of Google user {}: {}",
                    freed.len(),
                    user.email,
                    freed.join(", ")
                ),
                records,
                account,
            )
        })
    }

    pub(super) async fn check_licenses(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        let p: LicenseParams = params::parse(call.action, call.params)?;
        // The same scopes on both APIs: one token.
        let admin = self.as_admin(Api::Admin, scopes::LICENSING)?;
        let http = self.as_admin(Api::Licensing, scopes::LICENSING)?;
        let user = match self.read(&admin, call, ctx).await? {
            Ok(u) => u,
            Err(gone) => return Ok(gone),
        };
        let found = self
            .assignments(&http, &p, &user, ctx, &mut Vec::new())
            .await?;
        let labels: Vec<String> = found.iter().map(Assignment::label).collect();
        Ok(CheckOutcome {
            revoked: found.is_empty(),
            observed: if found.is_empty() {
                format!("no licence of {} assigned", p.products.join(", "))
            } else {
                format!("still assigned: {}", labels.join(", "))
            },
            account: Some(user.account()),
        })
    }
}
