//! The provider kit: the pieces a provider built on HTTP is assembled from, so that a new
//! provider is one file of what is particular to it.
//!
//! - [`auth`]: how requests are authorised — a static token or header, HTTP Basic, OAuth 2.0
//!   client credentials (client secret or private-key JWT), and the JWT bearer grant of a
//!   Google service account — behind one [`Auth`] trait, with tokens cached, refreshed before
//!   they expire and after a 401.
//! - [`retry`]: one retry policy (attempts, full-jitter backoff, longest wait, total budget) for
//!   the HTTP request path and LDAP alike.
//! - [`paging`]: every page of a list in each provider style (Link header, a next URL in the
//!   body, cursors, SCIM's startIndex), through the request path, never off the first origin.
//!
//! - [`microsoft`]: a Microsoft 365 client tenant's settings, its app-only token source per
//!   (tenant, scope), and Microsoft's error bodies made readable.
//! - [`http`]: the one request path every HTTP provider sends through ([`http::HttpClient`]):
//!   retries, `Retry-After` and rate-limit headers, the journal's request records, the
//!   provider's own error text, plain HTTP refused off loopback. Per-system limits are
//!   [`crate::limits`].
//! - [`multipart`]: `multipart/form-data` bodies for file uploads, resendable by the retry loop.

pub mod auth;
pub mod http;
pub mod microsoft;
pub mod multipart;
pub mod paging;
pub mod retry;

#[cfg(test)]
pub(crate) mod fake_token;

pub use auth::{
    Auth, AuthError, Basic, ClientAuth, ClientCredentials, GitHubApp, GoogleServiceAccount, JwtKey,
    StaticToken,
};
