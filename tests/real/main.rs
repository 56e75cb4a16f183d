//! Against real servers started on loopback by tests/servers/ (Samba AD DC, OpenLDAP, 389-DS,
//! OpenBao, scim2-server, Redmine, aiosmtpd, PostgreSQL); `tests/run.sh` installs them. Without them these skip
//! locally and fail under CI.
//!
//! One test binary, one module per area: each links once.

#[path = "../common/mod.rs"]
mod common;

mod e2e_real;
mod ldap_real;
mod notify_real;
mod postgres_real;
mod redmine_real;
mod scim_real;
mod vault_real;
