//! Each provider adapter against a fake that behaves like the real API (paths, bodies, status
//! codes, error bodies, rate-limit headers, paging), with every request checked.
//!
//! One test binary, one module per area: each links once.

#[path = "../common/mod.rs"]
mod common;

mod entra_fake;
mod exchange_fake;
mod github_fake;
mod google_fake;
mod halo_fake;
mod http_fake;
mod jamf_fake;
mod kit_paging;
mod ldap_fake;
mod ninjaone_fake;
mod okta_fake;
mod redmine_fake;
mod scim_fake;
mod slack_fake;
mod snipeit_fake;
mod ticketing_autotask;
mod ticketing_connectwise;
mod ticketing_freshservice;
mod ticketing_jira;
mod vault_fake;
mod vendor_docs;
