//! Helpers shared by the integration tests. Each test binary compiles all of them and uses some.
#![allow(dead_code)]

pub mod cli_env;
pub mod fake_autotask;
pub mod fake_bamboohr;
pub mod fake_connectwise;
pub mod fake_crm;
pub mod fake_exchange;
pub mod fake_freshservice;
pub mod fake_github;
pub mod fake_google;
pub mod fake_graph;
pub mod fake_halo;
pub mod fake_jamf;
pub mod fake_jira;
pub mod fake_kit;
pub mod fake_ldap;
pub mod fake_ninjaone;
pub mod fake_okta;
pub mod fake_redmine;
pub mod fake_scim;
pub mod fake_slack;
pub mod fake_snipeit;
pub mod fake_token;
pub mod fake_vault;
pub mod fake_webhooks;
pub mod notify_env;
pub mod psa;
pub mod servers;
pub mod snapshot;
pub mod vendor_docs;
