//! `google`: one Google Workspace account through the Admin SDK (Directory, Data Transfer), the
//! Gmail API and the Enterprise License Manager API.
//!
//! Requests are authorised by a service account with domain-wide delegation
//! ([`GoogleServiceAccount`]: the JWT bearer grant, RS256, with `sub`): Admin SDK and Licensing
//! calls act as `admin`, Gmail settings calls as the departing user (Gmail settings are per
//! user). Each action asks for the scopes it needs and no more; a token is cached per (subject,
//! scopes). The client id of the service account must be granted those scopes in the Admin
//! console (Security → API controls → Domain-wide delegation), and `admin` must hold an admin
//! role that allows the call: a 403 `forbidden` names both.
//!
//! The person is found with `GET /admin/directory/v1/users/{login}` (primary email or alias)
//! and from then on known by the user's immutable numeric `id`: every change and every check
//! addresses `users/{id}`, and a 404 by id means the user was deleted.
//!
//! The actions live by API: [`directory`] (suspension, sign-out, tokens, app passwords, backup
//! codes, 2-step verification, groups, org unit, deletion), [`gmail`] (automatic reply,
//! forwarding), [`transfer`] (Drive ownership) and [`licensing`].
//!
//! Google's errors read `message (reason)`. Google sends no `Retry-After`: a 429, and a 403 whose
//! reason is `rateLimitExceeded`, `userRateLimitExceeded` or `quotaExceeded`, are retried by the
//! kit with exponential backoff and full jitter; any other 403 is permanent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use secrecy::SecretString;
use serde_json::Value;
use url::Url;

use super::kit::GoogleServiceAccount;
use super::kit::http::{ALLOW_PLAIN, HttpClient, HttpResponse, Request, RetryPolicy};
use super::{
    Account, ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, NO_PARAMS,
    ParamsSpec, Provider, ProviderError, RequestLine, RequestRecord, RestoreCheck, SettingSpec,
    SettingType, StepCall, SystemConfig,
};

mod directory;
mod gmail;
mod licensing;
mod transfer;
mod undo;

/// Where the Admin SDK (Directory and Data Transfer) is.
pub const ADMIN_URL: &str = "https://admin.googleapis.com";
/// Where the Gmail API is.
pub const GMAIL_URL: &str = "https://gmail.googleapis.com";
/// Where the Enterprise License Manager API is.
pub const LICENSING_URL: &str = "https://licensing.googleapis.com";

/// What a Google user id is, in accounts and the journal.
pub const ID_KIND: &str = "Google user id";

const SCOPE_BASE: &str = "https://www.googleapis.com/auth/";

/// The scopes (after `https://www.googleapis.com/auth/`) an action's token carries.
pub(crate) mod scopes {
    pub const USER: &[&str] = &["admin.directory.user"];
    pub const SECURITY: &[&str] = &["admin.directory.user", "admin.directory.user.security"];
    /// `groups.list` takes `admin.directory.group.readonly` (or `.group`); the membership
    /// DELETE takes `admin.directory.group.member` (per the Directory API's description).
    pub const GROUPS: &[&str] = &[
        "admin.directory.user",
        "admin.directory.group.readonly",
        "admin.directory.group.member",
    ];
    pub const TRANSFER: &[&str] = &["admin.directory.user", "admin.datatransfer"];
    pub const LICENSING: &[&str] = &["admin.directory.user", "apps.licensing"];
    /// As the user: the automatic reply.
    pub const GMAIL_BASIC: &[&str] = &["gmail.settings.basic"];
    /// As the user: forwarding addresses and automatic forwarding.
    pub const GMAIL_SHARING: &[&str] = &["gmail.settings.basic", "gmail.settings.sharing"];
}

/// Which API a request goes to (each has its own base URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Api {
    /// Directory and Data Transfer (`admin.googleapis.com`).
    Admin,
    Gmail,
    Licensing,
}

static SETTINGS: [SettingSpec; 7] = [
    SettingSpec {
        name: "service_account",
        ty: SettingType::SecretDocument,
        required: true,
        summary: "the service account's JSON key, by reference: `{ file = \"…\" }`; the account \
                  needs domain-wide delegation with the scopes of the actions used (each \
                  action's summary names them); its `token_uri` is where tokens are asked for",
    },
    SettingSpec {
        name: "admin",
        ty: SettingType::String,
        required: true,
        summary: "the administrator the service account acts as for Admin SDK and Licensing \
                  calls, e.g. `offboard-bot@example.com` (a user with an admin role that allows \
                  the actions used)",
    },
    SettingSpec {
        name: "customer",
        ty: SettingType::String,
        required: false,
        summary: "the Workspace customer id (`C0…`, Admin console › Account settings) or primary \
                  domain, for the Licensing API's per-product listing (`remove_licenses` \
                  without `skus`); default `my_customer`, which the Directory API accepts (set \
                  the id if Licensing refuses it)",
    },
    SettingSpec {
        name: "admin_url",
        ty: SettingType::String,
        required: false,
        summary: "where the Admin SDK (Directory and Data Transfer) is; default \
                  `https://admin.googleapis.com` (or `base_url`)",
    },
    SettingSpec {
        name: "gmail_url",
        ty: SettingType::String,
        required: false,
        summary: "where the Gmail API is; default `https://gmail.googleapis.com` (or `base_url`)",
    },
    SettingSpec {
        name: "licensing_url",
        ty: SettingType::String,
        required: false,
        summary: "where the Enterprise License Manager API is; default \
                  `https://licensing.googleapis.com` (or `base_url`)",
    },
    ALLOW_PLAIN,
];

pub static KIND: KindSpec = KindSpec {
    name: "google",
    summary: "Google Workspace through the Admin SDK (Directory, Data Transfer), Gmail and \
              Licensing APIs, as a service account with domain-wide delegation",
    actions: &[
        ActionSpec {
            name: "suspend_user",
            summary: "`PATCH /admin/directory/v1/users/{id}` `{\"suspended\": true}` (a suspended \
                      user is left alone); the check reads `suspended` by id. Scope \
                      admin.directory.user",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore("unsuspend the user if it was not suspended before"),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "sign_out",
            summary: "`POST /admin/directory/v1/users/{id}/signOut`: ends the user's web and \
                      device sessions. The API cannot read sessions back: the check holds only \
                      for a deleted user, so `verify` does not re-check it. Scope \
                      admin.directory.user.security",
            destructive: false,
            alerts_user: false,
            revokes: false,
            inverse: Inverse::None(undo::NO_UNDO_SIGN_OUT),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "revoke_tokens",
            summary: "`DELETE …/users/{id}/tokens/{clientId}` for each OAuth client of `GET \
                      …/users/{id}/tokens`; the check lists none. Scope \
                      admin.directory.user.security",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(undo::NO_UNDO_TOKENS),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "delete_asps",
            summary: "`DELETE …/users/{id}/asps/{codeId}` for each app password of `GET \
                      …/users/{id}/asps`; the check lists none. Scope admin.directory.user.security",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(undo::NO_UNDO_ASPS),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "invalidate_backup_codes",
            summary: "`POST …/users/{id}/verificationCodes/invalidate` when `GET \
                      …/verificationCodes` lists any; the check lists none (the codes are never \
                      shown). Order it before `suspend_user` (`after`). Scope \
                      admin.directory.user.security",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(undo::NO_UNDO_CODES),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "turn_off_2sv",
            summary: "`POST …/users/{id}/twoStepVerification/turnOff` when `isEnrolledIn2Sv` is \
                      true (a user not enrolled is already done); Google refuses it while 2SV \
                      is enforced or for Advanced Protection, reported in Google's words; the \
                      check reads `isEnrolledIn2Sv` false. Scope admin.directory.user.security",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(undo::NO_UNDO_2SV),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "remove_from_groups",
            summary: "`DELETE /admin/directory/v1/groups/{groupId}/members/{id}` for each group \
                      of `GET /admin/directory/v1/groups?userKey={id}` (pages followed; a 404 is \
                      already gone); the check finds none (of those listed) left. Scopes \
                      admin.directory.group.readonly and admin.directory.group.member",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "re-add the user to each group it was removed from, by group id, with its old \
                 role (a group deleted since cannot come back)",
            ),
            params: ParamsSpec::of::<directory::GroupsParams>(),
        },
        ActionSpec {
            name: "set_auto_reply",
            summary: "as the user, `PUT /gmail/v1/users/me/settings/vacation` with the given \
                      subject and text (templates); the check reads it back. Alerts the user: \
                      held until the cut in an involuntary departure; order it before \
                      `suspend_user`. Scope gmail.settings.basic",
            destructive: false,
            alerts_user: true,
            revokes: false,
            inverse: Inverse::Restore("put the Gmail automatic reply back as it was"),
            params: ParamsSpec::of::<gmail::AutoReplyParams>(),
        },
        ActionSpec {
            name: "set_forwarding",
            summary: "as the user, adds the forwarding address (`POST …/settings/forwardingAddresses`) \
                      and turns on automatic forwarding to it (`PUT …/settings/autoForwarding`); \
                      an address Google still has `pending` verification is requested, not done. \
                      The check reads both back. Scope gmail.settings.sharing",
            destructive: false,
            alerts_user: false,
            revokes: false,
            inverse: Inverse::Restore(
                "put Gmail automatic forwarding back as it was and remove the forwarding address \
                 offboard added",
            ),
            params: ParamsSpec::of::<gmail::ForwardingParams>(),
        },
        ActionSpec {
            name: "transfer_drive",
            summary: "reads both users' ids, then `POST /admin/datatransfer/v1/transfers` (Drive, \
                      application 55656082996) to the new owner, unless a transfer between them \
                      is already under way or done; the summary names the transfer id. The check \
                      reads `GET …/transfers/{id}`: `completed` holds, `new`/`inProgress` is \
                      pending, `failed` is reported. Scope admin.datatransfer",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(undo::NO_UNDO_TRANSFER),
            params: ParamsSpec::of::<transfer::TransferParams>(),
        },
        ActionSpec {
            name: "remove_licenses",
            summary: "`DELETE /apps/licensing/v1/product/{productId}/sku/{skuId}/user/{email}` \
                      for each assignment found of the given products (and SKUs); the summary \
                      names each SKU freed; the check finds none left. Scope apps.licensing",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "re-assign the removed licences (product and SKU), if the subscription still has \
                 free ones",
            ),
            params: ParamsSpec::of::<licensing::LicenseParams>(),
        },
        ActionSpec {
            name: "move_to_ou",
            summary: "`PATCH /admin/directory/v1/users/{id}` `{\"orgUnitPath\": …}`; the check \
                      reads `orgUnitPath` back. Scope admin.directory.user",
            destructive: false,
            alerts_user: false,
            revokes: false,
            inverse: Inverse::Restore("move the user back to its old org unit"),
            params: ParamsSpec::of::<directory::OuParams>(),
        },
        ActionSpec {
            name: "delete_user",
            summary: "`DELETE /admin/directory/v1/users/{id}` (restorable for 20 days in the \
                      Admin console); the check expects 404 by id. Scope admin.directory.user",
            destructive: true,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "restore the deleted user into its old org unit, within 20 days of the delete; \
                 after that it cannot come back",
            ),
            params: NO_PARAMS,
        },
    ],
    settings: &SETTINGS,
    needs_base_url: false,
    url_schemes: &["https", "http"],
    needs_token: false,
    connect,
    check_action: None,
};

fn connect(cfg: &SystemConfig) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(Arc::new(GoogleProvider::new(cfg)?))
}

/// One cached client: an API's base, acting as a subject, with a set of scopes.
type ClientKey = (Api, String, &'static [&'static str]);
/// One token source: a subject and a set of scopes.
type TokenKey = (String, &'static [&'static str]);

/// A connected Google Workspace account.
pub struct GoogleProvider {
    system: String,
    /// The system's configuration, for the clients built per (API, subject, scopes).
    cfg: SystemConfig,
    key: Option<SecretString>,
    admin: String,
    customer: String,
    /// Clients without a credential, for URLs (and `describe`), one per API.
    admin_api: HttpClient,
    gmail_api: HttpClient,
    licensing_api: HttpClient,
    retry: Option<RetryPolicy>,
    clients: Mutex<HashMap<ClientKey, Arc<HttpClient>>>,
    /// Token sources per (subject, scopes): each caches its own token.
    tokens: Mutex<HashMap<TokenKey, Arc<GoogleServiceAccount>>>,
}

impl std::fmt::Debug for GoogleProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleProvider")
            .field("system", &self.system)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

fn setting(cfg: &SystemConfig, name: &str) -> anyhow::Result<Option<String>> {
    match cfg.settings.get(name) {
        None => Ok(None),
        Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Some(_) => anyhow::bail!("system `{}`: `{name}` must be a non-empty string", cfg.name),
    }
}

impl GoogleProvider {
    /// Build from the system's configuration. No I/O; works without the key (planning).
    pub fn new(cfg: &SystemConfig) -> anyhow::Result<GoogleProvider> {
        let admin = setting(cfg, "admin")?.ok_or_else(|| {
            anyhow::anyhow!(
                "system `{}`: set `admin`, the administrator the service account acts as (e.g. \
                 `admin = \"offboard-bot@example.com\"`)",
                cfg.name
            )
        })?;
        if !admin.contains('@') {
            anyhow::bail!(
                "system `{}`: `admin` must be the administrator's email address, not {admin:?}",
                cfg.name
            );
        }
        let customer = setting(cfg, "customer")?.unwrap_or_else(|| "my_customer".into());
        let api = |name: &str, default: &str| -> anyhow::Result<HttpClient> {
            let mut c = cfg.clone();
            c.base_url = Some(match setting(cfg, name)? {
                Some(u) => u,
                None => cfg.base_url.clone().unwrap_or_else(|| default.to_string()),
            });
            c.token = None;
            HttpClient::new(&c)
        };
        let key = cfg.secrets.get("service_account").cloned();
        let p = GoogleProvider {
            system: cfg.name.clone(),
            admin_api: api("admin_url", ADMIN_URL)?,
            gmail_api: api("gmail_url", GMAIL_URL)?,
            licensing_api: api("licensing_url", LICENSING_URL)?,
            cfg: cfg.clone(),
            key,
            admin,
            customer,
            retry: None,
            clients: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        };
        // A key that is not a service-account key is refused now, at the system's line.
        if p.key.is_some() {
            p.token_source(&p.admin.clone(), scopes::USER)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(p)
    }

    /// Replace the retry policy (tests use tiny budgets).
    pub fn with_retry(mut self, retry: RetryPolicy) -> GoogleProvider {
        self.retry = Some(retry);
        self
    }

    fn err(&self, msg: impl std::fmt::Display) -> ProviderError {
        ProviderError::Permanent(format!("system `{}`: {msg}", self.system))
    }

    fn plan_client(&self, api: Api) -> &HttpClient {
        match api {
            Api::Admin => &self.admin_api,
            Api::Gmail => &self.gmail_api,
            Api::Licensing => &self.licensing_api,
        }
    }

    /// `{api base}/{segments…}`, each segment percent-encoded.
    pub(crate) fn url(&self, api: Api, segments: &[&str]) -> Result<Url, ProviderError> {
        self.plan_client(api).endpoint(segments)
    }

    /// A Directory API URL: `/admin/directory/v1/{segments…}`.
    pub(crate) fn directory(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut all = vec!["admin", "directory", "v1"];
        all.extend_from_slice(segments);
        self.url(Api::Admin, &all)
    }

    fn token_source(
        &self,
        subject: &str,
        scopes: &'static [&'static str],
    ) -> Result<Arc<GoogleServiceAccount>, ProviderError> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = tokens.get(&(subject.to_string(), scopes)) {
            return Ok(t.clone());
        }
        let Some(key) = &self.key else {
            return Err(self
                .err("no service-account key configured (`service_account = { file = \"…\" }`)"));
        };
        let full: Vec<String> = scopes.iter().map(|s| format!("{SCOPE_BASE}{s}")).collect();
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        let http = super::kit::auth::token_client(&self.cfg).map_err(|e| self.err(e))?;
        let sa = GoogleServiceAccount::from_json(http, key, &full, Some(subject))
            .map_err(|e| self.err(format!("`service_account`: {e}")))?;
        let sa = Arc::new(sa);
        tokens.insert((subject.to_string(), scopes), sa.clone());
        Ok(sa)
    }

    /// The client for `api`, acting as `subject` with `scopes`: built once, then reused.
    pub(crate) fn client(
        &self,
        api: Api,
        subject: &str,
        scopes: &'static [&'static str],
    ) -> Result<Arc<HttpClient>, ProviderError> {
        let key = (api, subject.to_string(), scopes);
        if let Some(c) = self
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        let auth = self.token_source(subject, scopes)?;
        let mut cfg = self.cfg.clone();
        cfg.base_url = Some(self.plan_client(api).base_url().to_string());
        cfg.token = None;
        let mut http = HttpClient::new(&cfg)
            .map_err(|e| self.err(format!("{e:#}")))?
            .with_accept("application/json")
            .with_error_parser(google_error_message)
            .with_throttle(throttled)
            .with_forbidden_hint(forbidden_hint(scopes))
            .with_auth(auth);
        if let Some(r) = &self.retry {
            http = http.with_retry(r.clone());
        }
        let http = Arc::new(http);
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, http.clone());
        Ok(http)
    }

    /// The client acting as the admin.
    pub(crate) fn as_admin(
        &self,
        api: Api,
        scopes: &'static [&'static str],
    ) -> Result<Arc<HttpClient>, ProviderError> {
        self.client(api, &self.admin, scopes)
    }

    /// Send and record.
    pub(crate) async fn send(
        &self,
        http: &HttpClient,
        req: Request,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<HttpResponse, ProviderError> {
        let resp = http.send(req, ctx).await?;
        records.push(resp.record.clone());
        Ok(resp)
    }

    /// `GET /admin/directory/v1/users/{key}`: `None` on 404.
    pub(crate) async fn get_user(
        &self,
        http: &HttpClient,
        key: &str,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Option<User>, ProviderError> {
        if key.trim().is_empty() {
            return Err(self.err("the user to look up is empty"));
        }
        let req = Request::get(self.directory(&["users", key])?).allow(StatusCode::NOT_FOUND);
        let resp = self.send(http, req, ctx, records).await?;
        if resp.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v: Value = resp.json()?;
        User::from_json(&v).map(Some).ok_or_else(|| {
            self.err("GET /admin/directory/v1/users/{key} answered a user without an id")
        })
    }

    /// The person's user now: by the recorded id (404 = deleted), else by login (nobody is
    /// `NotFound`).
    pub(crate) async fn resolve(
        &self,
        http: &HttpClient,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Resolved, ProviderError> {
        match call.account {
            Some(known) => Ok(match self.get_user(http, &known.id, ctx, records).await? {
                Some(u) => Resolved::Live(u),
                None => Resolved::Gone(known.clone()),
            }),
            None => match self.get_user(http, call.login, ctx, records).await? {
                Some(u) => Ok(Resolved::Live(u)),
                None => Err(ProviderError::NotFound(format!(
                    "system `{}`: no Google Workspace user {:?} (GET \
                     /admin/directory/v1/users/{{userKey}} answered 404)",
                    self.system, call.login
                ))),
            },
        }
    }

    /// Resolve and identify before a change; `Err(outcome)` when the user is already gone.
    pub(crate) async fn live(
        &self,
        http: &HttpClient,
        call: &StepCall<'_>,
        ctx: &CallCtx,
        records: &mut Vec<RequestRecord>,
    ) -> Result<Result<(User, Account), ApplyOutcome>, ProviderError> {
        match self.resolve(http, call, ctx, records).await? {
            Resolved::Gone(account) => Ok(Err(ApplyOutcome {
                changed: false,
                summary: format!("Google user {} already deleted (404 by id)", account.id),
                requests: std::mem::take(records),
                account: Some(account),
            })),
            Resolved::Live(user) => {
                let account = user.account();
                ctx.identified(&account);
                Ok(Ok((user, account)))
            }
        }
    }

    /// Resolve for a check: `Err(outcome)` when the user is gone by id (revoked).
    pub(crate) async fn read(
        &self,
        http: &HttpClient,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<Result<User, CheckOutcome>, ProviderError> {
        let mut records = Vec::new();
        Ok(match self.resolve(http, call, ctx, &mut records).await? {
            Resolved::Live(u) => Ok(u),
            Resolved::Gone(account) => Err(gone(account)),
        })
    }

    fn unknown_action(&self, action: &str) -> ProviderError {
        self.err(format!("the google kind has no action `{action}`"))
    }

    fn describe_call(&self, call: &StepCall<'_>) -> Option<Vec<RequestLine>> {
        let line = |method: &str, url: String| RequestLine {
            method: method.into(),
            url,
        };
        let find = self.directory(&["users", call.login]).ok()?;
        let users = self.directory(&["users"]).ok()?;
        let dir = self.directory(&[]).ok()?;
        let mut lines = vec![line("GET", find.to_string())];
        let u = format!("{users}/{{id}}");
        match call.action {
            "suspend_user" | "move_to_ou" => lines.push(line("PATCH", u)),
            "sign_out" => lines.push(line("POST", format!("{u}/signOut"))),
            "revoke_tokens" => {
                lines.push(line("GET", format!("{u}/tokens")));
                lines.push(line("DELETE", format!("{u}/tokens/{{clientId}}")));
            }
            "delete_asps" => {
                lines.push(line("GET", format!("{u}/asps")));
                lines.push(line("DELETE", format!("{u}/asps/{{codeId}}")));
            }
            "invalidate_backup_codes" => {
                lines.push(line("GET", format!("{u}/verificationCodes")));
                lines.push(line("POST", format!("{u}/verificationCodes/invalidate")));
            }
            "turn_off_2sv" => lines.push(line("POST", format!("{u}/twoStepVerification/turnOff"))),
            "remove_from_groups" => {
                lines.push(line("GET", format!("{dir}/groups?userKey={{id}}")));
                lines.push(line(
                    "DELETE",
                    format!("{dir}/groups/{{groupId}}/members/{{id}}"),
                ));
            }
            "set_auto_reply" => {
                let v = self
                    .url(
                        Api::Gmail,
                        &["gmail", "v1", "users", "me", "settings", "vacation"],
                    )
                    .ok()?;
                lines.push(line("GET", v.to_string()));
                lines.push(line("PUT", v.to_string()));
            }
            "set_forwarding" => {
                let s = self
                    .url(Api::Gmail, &["gmail", "v1", "users", "me", "settings"])
                    .ok()?;
                let to = call
                    .params
                    .get("to")
                    .and_then(Value::as_str)
                    .unwrap_or("{to}");
                let one = self
                    .url(
                        Api::Gmail,
                        &[
                            "gmail",
                            "v1",
                            "users",
                            "me",
                            "settings",
                            "forwardingAddresses",
                            to,
                        ],
                    )
                    .ok()?;
                lines.push(line("GET", one.to_string()));
                lines.push(line("POST", format!("{s}/forwardingAddresses")));
                lines.push(line("GET", format!("{s}/autoForwarding")));
                lines.push(line("PUT", format!("{s}/autoForwarding")));
            }
            "transfer_drive" => {
                let to = call
                    .params
                    .get("to")
                    .and_then(Value::as_str)
                    .unwrap_or("{to}");
                if let Ok(t) = self.directory(&["users", to]) {
                    lines.push(line("GET", t.to_string()));
                }
                let tr = self
                    .url(Api::Admin, &["admin", "datatransfer", "v1", "transfers"])
                    .ok()?;
                lines.push(line(
                    "GET",
                    format!("{tr}?oldOwnerUserId={{id}}&newOwnerUserId={{newOwnerId}}"),
                ));
                lines.push(line("POST", tr.to_string()));
            }
            "remove_licenses" => lines.extend(licensing::describe(self, call)),
            "delete_user" => lines.push(line("DELETE", u)),
            _ => return None,
        }
        Some(lines)
    }
}

/// What offboard reads of a Google user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub id: String,
    pub email: String,
    pub suspended: Option<bool>,
    pub enrolled_2sv: Option<bool>,
    pub enforced_2sv: Option<bool>,
    pub org_unit: Option<String>,
}

impl User {
    fn from_json(v: &Value) -> Option<User> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let b = |k: &str| v.get(k).and_then(Value::as_bool);
        Some(User {
            id: s("id").filter(|i| !i.is_empty())?,
            email: s("primaryEmail").unwrap_or_default(),
            suspended: b("suspended"),
            enrolled_2sv: b("isEnrolledIn2Sv"),
            enforced_2sv: b("isEnforcedIn2Sv"),
            org_unit: s("orgUnitPath"),
        })
    }

    pub fn account(&self) -> Account {
        Account::new(self.id.clone(), ID_KIND, self.email.clone())
    }
}

pub(crate) enum Resolved {
    Live(User),
    /// Read by its recorded id and answered 404: deleted since offboard saw it.
    Gone(Account),
}

pub(crate) fn gone(account: Account) -> CheckOutcome {
    CheckOutcome {
        revoked: true,
        observed: format!(
            "Google user {} no longer exists (404 by id: deleted)",
            account.id
        ),
        account: Some(account),
    }
}

pub(crate) fn done(
    changed: bool,
    summary: String,
    requests: Vec<RequestRecord>,
    account: Account,
) -> ApplyOutcome {
    ApplyOutcome {
        changed,
        summary,
        requests,
        account: Some(account),
    }
}

/// A 404 inside a list read is no verdict on the person: only the lookup may say `NotFound`.
pub(crate) fn not_the_person(e: ProviderError) -> ProviderError {
    match e {
        ProviderError::NotFound(m) => ProviderError::Permanent(m),
        e => e,
    }
}

/// An error after some removals: say which were done.
pub(crate) fn partly(e: ProviderError, removed: &[String]) -> ProviderError {
    if removed.is_empty() {
        return not_the_person(e);
    }
    let done = format!("removed {}; then ", removed.join(", "));
    match e {
        ProviderError::Transient(m) => ProviderError::Transient(done + &m),
        ProviderError::Permanent(m) | ProviderError::NotFound(m) => {
            ProviderError::Permanent(done + &m)
        }
    }
}

/// The items of a Google list answer (`items`, `groups`…); Google leaves the key out of an
/// empty list.
pub(crate) fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The reasons of Google's error body (`error.errors[].reason`).
fn reasons(v: &Value) -> Vec<String> {
    v.pointer("/error/errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("reason").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// Google's error body, `{"error": {"code", "message", "errors": [{reason, domain, message}],
/// "status"}}`, as `message (reason, STATUS)`.
pub fn google_error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error")?;
    let message = e
        .get("message")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .or_else(|| {
            e.pointer("/errors/0/message")
                .and_then(Value::as_str)
                .map(str::trim)
        })?;
    let mut tags = reasons(&v);
    tags.dedup();
    if let Some(status) = e.get("status").and_then(Value::as_str) {
        tags.push(status.to_string());
    }
    Some(if tags.is_empty() {
        message.to_string()
    } else {
        format!("{message} ({})", tags.join(", "))
    })
}

/// Google throttles with 403 too: these reasons are waited out and retried, any other 403 is
/// a refusal.
const THROTTLE_REASONS: &[&str] = &[
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "quotaExceeded",
];

fn throttled(status: StatusCode, _: &HeaderMap, body: &[u8]) -> bool {
    if !matches!(status.as_u16(), 403 | 429) {
        return false;
    }
    serde_json::from_slice::<Value>(body)
        .map(|v| {
            reasons(&v)
                .iter()
                .any(|r| THROTTLE_REASONS.contains(&r.as_str()))
        })
        .unwrap_or(false)
}

/// What a 403 means for a client with these scopes, before Google's own message.
fn forbidden_hint(scopes: &[&str]) -> &'static str {
    match scopes {
        s if s == scopes::USER => {
            "the service account's client id needs domain-wide delegation of the scope \
             https://www.googleapis.com/auth/admin.directory.user, and `admin` an admin role \
             with the Users privileges (read, update, delete)"
        }
        s if s == scopes::SECURITY => {
            "the service account's client id needs domain-wide delegation of the scopes \
             admin.directory.user and admin.directory.user.security, and `admin` an admin role \
             with the Users › Security settings privileges (a super admin's account cannot be \
             changed by a delegated admin)"
        }
        s if s == scopes::GROUPS => {
            "the service account's client id needs domain-wide delegation of the scopes \
             admin.directory.user, admin.directory.group.readonly and \
             admin.directory.group.member, and `admin` an admin role with the Groups privileges"
        }
        s if s == scopes::TRANSFER => {
            "the service account's client id needs domain-wide delegation of the scopes \
             admin.directory.user and admin.datatransfer, and `admin` an admin role with the \
             Data transfer privilege"
        }
        s if s == scopes::LICENSING => {
            "the service account's client id needs domain-wide delegation of the scopes \
             admin.directory.user and apps.licensing, and `admin` an admin role with the \
             License management privilege"
        }
        _ => {
            "the service account's client id needs domain-wide delegation of the scopes \
             gmail.settings.basic and gmail.settings.sharing (Gmail calls act as the departing \
             user, who must be active)"
        }
    }
}

#[async_trait]
impl Provider for GoogleProvider {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        self.describe_call(call).unwrap_or_default()
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "suspend_user" => self.suspend(call, ctx).await,
            "sign_out" => self.sign_out(call, ctx).await,
            "revoke_tokens" => self.remove_each(call, ctx, directory::TOKENS).await,
            "delete_asps" => self.remove_each(call, ctx, directory::ASPS).await,
            "invalidate_backup_codes" => self.invalidate_codes(call, ctx).await,
            "turn_off_2sv" => self.turn_off_2sv(call, ctx).await,
            "remove_from_groups" => self.remove_from_groups(call, ctx).await,
            "move_to_ou" => self.move_to_ou(call, ctx).await,
            "delete_user" => self.delete_user(call, ctx).await,
            "set_auto_reply" => self.set_auto_reply(call, ctx).await,
            "set_forwarding" => self.set_forwarding(call, ctx).await,
            "transfer_drive" => self.transfer_drive(call, ctx).await,
            "remove_licenses" => self.remove_licenses(call, ctx).await,
            other => Err(self.unknown_action(other)),
        }
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        match call.action {
            "suspend_user" => self.check_suspended(call, ctx).await,
            "sign_out" => self.check_signed_out(call, ctx).await,
            "revoke_tokens" => self.check_each(call, ctx, directory::TOKENS).await,
            "delete_asps" => self.check_each(call, ctx, directory::ASPS).await,
            "invalidate_backup_codes" => self.check_codes(call, ctx).await,
            "turn_off_2sv" => self.check_2sv(call, ctx).await,
            "remove_from_groups" => self.check_groups(call, ctx).await,
            "move_to_ou" => self.check_ou(call, ctx).await,
            "delete_user" => self.check_deleted(call, ctx).await,
            "set_auto_reply" => self.check_auto_reply(call, ctx).await,
            "set_forwarding" => self.check_forwarding(call, ctx).await,
            "transfer_drive" => self.check_transfer(call, ctx).await,
            "remove_licenses" => self.check_licenses(call, ctx).await,
            other => Err(self.unknown_action(other)),
        }
    }

    async fn restore(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        self.restore_call(call, before, ctx).await
    }

    fn describe_restore(&self, call: &StepCall<'_>, before: &Value) -> Vec<RequestLine> {
        self.describe_restore_call(call, before)
    }

    async fn check_restored(
        &self,
        call: &StepCall<'_>,
        before: &Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        self.check_restored_call(call, before, ctx).await
    }
}

#[cfg(test)]
mod tests;
