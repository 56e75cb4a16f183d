//! `entra`: one Microsoft 365 client tenant through Microsoft Graph v1.0 — the Entra ID user,
//! its sign-in, sessions, password, MFA methods, groups and licences, its mailbox's inbox rules
//! and automatic replies, its OneDrive, and its Intune-managed devices.
//!
//! One system is one tenant (`tenant_id`), reached app-only with the app registration's client
//! secret or certificate ([`kit::microsoft`](super::kit::microsoft)); the token is cached per
//! (tenant, scope) and never shared with another system.
//!
//! The person is found with `GET /users/{login}` (the login is the user principal name, or the
//! object id) and from then on known by the Graph object `id`: every change and every check
//! addresses `/users/{id}`, so a rename or a new account under the same UPN changes nothing, and
//! a 404 by id means the user was deleted. Each action's summary names the application
//! permission it needs; a missing one answers 403, reported with Graph's own words
//! (`Authorization_RequestDenied: Insufficient privileges to complete the operation.`).
//!
//! The actions live by concern: [`directory`] (sign-in, sessions, password, immutable id,
//! delete), [`methods`] (authentication methods), [`groups`], [`licenses`], [`mail`] (inbox rules,
//! automatic replies), [`onedrive`] and [`devices`] (Intune). [`graph`] holds what they share.

use std::sync::Arc;

use async_trait::async_trait;

use super::kit::http::{ALLOW_PLAIN, HttpClient, RetryPolicy};
use super::kit::microsoft;
use super::{
    ActionSpec, ApplyOutcome, CallCtx, CheckOutcome, Inverse, KindSpec, NO_PARAMS, ParamsSpec,
    Provider, ProviderError, RequestLine, RestoreCheck, SettingSpec, StepCall, SystemConfig,
};

mod devices;
mod directory;
mod graph;
mod groups;
mod licenses;
mod mail;
mod methods;
mod onedrive;
mod undo;

pub use graph::{EntraProvider, ID_KIND};

/// Where Graph v1.0 is unless `base_url` says otherwise (a national cloud, a test).
pub const GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";
/// The token's scope: every application permission granted to the app on Graph.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// The tenant and app-registration settings, and `allow_plain` (the request path's own).
static SETTINGS: [SettingSpec; 6] = {
    let [tenant, client, secret, certificate, login] = microsoft::SETTINGS;
    [tenant, client, secret, certificate, login, ALLOW_PLAIN]
};

pub static KIND: KindSpec = KindSpec {
    name: "entra",
    summary: "Microsoft Entra ID, mailboxes, OneDrive and Intune through Microsoft Graph v1.0, \
              one client tenant per system",
    actions: &[
        ActionSpec {
            name: "disable_sign_in",
            summary: "sets `accountEnabled=false`; the check reads `accountEnabled` by id. \
                      Needs User.EnableDisableAccount.All (or User.ReadWrite.All)",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "re-enable sign-in (accountEnabled back to true) if it was enabled before",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "revoke_sessions",
            summary: "invalidates every refresh token and session cookie \
                      (`revokeSignInSessions`, effective within minutes); the check wants \
                      `signInSessionsValidFromDateTime` later than before the revoke (recorded \
                      under the state dir, no secret). Needs User.RevokeSessions.All (or \
                      User.ReadWrite.All)",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(undo::NO_UNDO_SESSIONS),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "reset_password",
            summary: "sets a random password that is never stored or shown (`passwordProfile`, \
                      forceChangePasswordNextSignIn); the check wants `lastPasswordChangeDateTime` \
                      later than before the reset (recorded under the state dir). Not for \
                      federated users. Needs User.ReadWrite.All and the app in the User \
                      Administrator role (Privileged Authentication Administrator for admins)",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(undo::NO_UNDO_PASSWORD),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "remove_auth_methods",
            summary: "deletes every authentication method but the password (Authenticator, \
                      phone, FIDO2, software OATH, email, Windows Hello, Temporary Access Pass, \
                      platform credential); the check lists the methods and wants only the \
                      password. Needs UserAuthenticationMethod.ReadWrite.All",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(undo::NO_UNDO_METHODS),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "remove_from_groups",
            summary: "removes the user from each group it is a direct member of \
                      (`DELETE /groups/{id}/members/{user}/$ref`); dynamic groups, groups \
                      synced from on-premises AD and mail-enabled groups (Exchange's) are \
                      skipped and named with why; the check wants no removable membership left. \
                      Needs GroupMember.ReadWrite.All",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "re-add the user to each group it was removed from, by group id \
                 (a group deleted since cannot come back; dynamic, synced and mail-enabled groups \
                 were never touched)",
            ),
            params: ParamsSpec::of::<groups::GroupsParams>(),
        },
        ActionSpec {
            name: "remove_licenses",
            summary: "removes every directly assigned licence (`assignLicense`, \
                      `addLicenses: []`); licences inherited from a group are reported, not \
                      failed; the summary names each SKU freed by part number and skuId; the \
                      check wants no direct licence left. Needs User.ReadWrite.All (or \
                      LicenseAssignment.ReadWrite.All)",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "re-assign the directly assigned licences by skuId with their \
                 disabled plans, if the subscription still has free licences (before a mailbox \
                 is converted back: rollback runs in reverse order)",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "remove_inbox_rules",
            summary: "deletes every rule of the mailbox's Inbox (`messageRules`); the check \
                      wants none left. Needs MailboxSettings.ReadWrite",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "make the deleted Inbox rules again from the recorded copy (same name, \
                 conditions and actions; new ids)",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "remove_forwarding_rules",
            summary: "deletes the Inbox rules that forward or redirect mail (`forwardTo`, \
                      `forwardAsAttachmentTo`, `redirectTo`), keeping the others; the check \
                      wants none left. Needs MailboxSettings.ReadWrite",
            destructive: false,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "make the deleted forwarding rules again from the recorded copy (the mail \
                 forwards again; new ids)",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "set_auto_reply",
            summary: "turns on the mailbox's automatic replies with the given internal and \
                      external text (templates); the check reads `automaticRepliesSetting` back. \
                      Alerts the user: held until the cut in an involuntary departure. Needs \
                      MailboxSettings.ReadWrite",
            destructive: false,
            alerts_user: true,
            revokes: false,
            inverse: Inverse::Restore(
                "put the automatic replies back as they were (status, \
                 audience, text, schedule)",
            ),
            params: ParamsSpec::of::<mail::AutoReplyParams>(),
        },
        ActionSpec {
            name: "grant_onedrive_access",
            summary: "gives the manager (or `to`) edit rights on the user's OneDrive \
                      (`POST /drives/{id}/root/invite`, no e-mail sent) and records the \
                      OneDrive URL in the summary for the handoff; the check reads the drive's \
                      permissions. Needs Files.ReadWrite.All (or Sites.ReadWrite.All) and \
                      User.Read.All",
            destructive: false,
            alerts_user: false,
            revokes: false,
            inverse: Inverse::Restore(
                "take back the OneDrive access offboard gave (a grant the recipient held before \
                 stays)",
            ),
            params: ParamsSpec::of::<onedrive::OneDriveParams>(),
        },
        ActionSpec {
            name: "clear_immutable_id",
            summary: "clears `onPremisesImmutableId` (the link to an on-premises AD account) \
                      where one is set, so the account is no longer matched by directory sync; \
                      Entra refuses while the user is still synced. The check reads it back. \
                      Needs User.ReadWrite.All",
            destructive: false,
            alerts_user: false,
            revokes: false,
            inverse: Inverse::Restore("set onPremisesImmutableId back to the recorded anchor"),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "delete_user",
            summary: "deletes the user (a soft delete: restorable from deleted items for 30 \
                      days, with its mailbox, licences and groups); the check expects 404 by \
                      id. Needs User.DeleteRestore.All (or User.ReadWrite.All)",
            destructive: true,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::Restore(
                "restore the user from deleted items, within 30 days of the delete (Entra \
                 brings back its licences and groups); after that it cannot come back",
            ),
            params: NO_PARAMS,
        },
        ActionSpec {
            name: "retire_devices",
            summary: "retires each of the user's Intune-managed devices (company data and \
                      management removed, personal data kept); the check reads \
                      `managementState` and `deviceActionResults` and counts only a completed \
                      retire: a requested one is reported pending. Needs \
                      DeviceManagementManagedDevices.PrivilegedOperations.All and \
                      DeviceManagementManagedDevices.Read.All",
            destructive: true,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(undo::NO_UNDO_DEVICES),
            params: ParamsSpec::of::<devices::RetireParams>(),
        },
        ActionSpec {
            name: "wipe_devices",
            summary: "factory-resets each of the user's Intune-managed devices; the check \
                      reads `managementState` and `deviceActionResults` and counts only a \
                      completed wipe: a queued one is reported as pending with when it was \
                      requested. Needs DeviceManagementManagedDevices.PrivilegedOperations.All \
                      and DeviceManagementManagedDevices.Read.All",
            destructive: true,
            alerts_user: false,
            revokes: true,
            inverse: Inverse::None(undo::NO_UNDO_DEVICES),
            params: ParamsSpec::of::<devices::WipeParams>(),
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
    Ok(Arc::new(EntraProvider::new(cfg)?))
}

impl EntraProvider {
    /// Replace the retry policy (tests use tiny budgets).
    pub fn with_retry(mut self, retry: RetryPolicy) -> EntraProvider {
        self.http = self.http.with_retry(retry);
        self
    }

    /// The HTTP client, for the action modules.
    fn client(&self) -> &HttpClient {
        &self.http
    }
}

#[async_trait]
impl Provider for EntraProvider {
    fn describe(&self, call: &StepCall<'_>) -> Vec<RequestLine> {
        self.describe_call(call)
    }

    async fn apply(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        match call.action {
            "disable_sign_in" => self.disable_sign_in(call, ctx).await,
            "revoke_sessions" => self.revoke_sessions(call, ctx).await,
            "reset_password" => self.reset_password(call, ctx).await,
            "clear_immutable_id" => self.clear_immutable_id(call, ctx).await,
            "delete_user" => self.delete_user(call, ctx).await,
            "remove_auth_methods" => self.remove_auth_methods(call, ctx).await,
            "remove_from_groups" => self.remove_from_groups(call, ctx).await,
            "remove_licenses" => self.remove_licenses(call, ctx).await,
            "remove_inbox_rules" => self.remove_rules(call, ctx, false).await,
            "remove_forwarding_rules" => self.remove_rules(call, ctx, true).await,
            "set_auto_reply" => self.set_auto_reply(call, ctx).await,
            "grant_onedrive_access" => self.grant_onedrive_access(call, ctx).await,
            "retire_devices" => self.device_action(call, ctx, devices::Kind::Retire).await,
            "wipe_devices" => self.device_action(call, ctx, devices::Kind::Wipe).await,
            other => Err(self.unknown_action(other)),
        }
    }

    /// Identify the person (and so prove the credential and `User.Read.All`), then run the
    /// check, which is read-only — except for the two actions whose check compares with a
    /// record an apply leaves: before any apply there is nothing to compare with, so they
    /// only identify.
    async fn preflight(&self, call: &StepCall<'_>, ctx: &CallCtx) -> Result<String, ProviderError> {
        match call.action {
            "revoke_sessions" | "reset_password" => self.look(call, ctx).await,
            _ => {
                let c = self.check(call, ctx).await?;
                Ok(match c.account {
                    Some(a) => format!("found {a}"),
                    None => c.observed,
                })
            }
        }
    }

    async fn check(
        &self,
        call: &StepCall<'_>,
        ctx: &CallCtx,
    ) -> Result<CheckOutcome, ProviderError> {
        match call.action {
            "disable_sign_in" => self.check_sign_in(call, ctx).await,
            "revoke_sessions" => self.check_revoked(call, ctx).await,
            "reset_password" => self.check_password(call, ctx).await,
            "clear_immutable_id" => self.check_immutable_id(call, ctx).await,
            "delete_user" => self.check_deleted(call, ctx).await,
            "remove_auth_methods" => self.check_auth_methods(call, ctx).await,
            "remove_from_groups" => self.check_groups(call, ctx).await,
            "remove_licenses" => self.check_licenses(call, ctx).await,
            "remove_inbox_rules" => self.check_rules(call, ctx, false).await,
            "remove_forwarding_rules" => self.check_rules(call, ctx, true).await,
            "set_auto_reply" => self.check_auto_reply(call, ctx).await,
            "grant_onedrive_access" => self.check_onedrive_access(call, ctx).await,
            "retire_devices" => self.check_devices(call, ctx, devices::Kind::Retire).await,
            "wipe_devices" => self.check_devices(call, ctx, devices::Kind::Wipe).await,
            other => Err(self.unknown_action(other)),
        }
    }

    async fn restore(
        &self,
        call: &StepCall<'_>,
        before: &serde_json::Value,
        ctx: &CallCtx,
    ) -> Result<ApplyOutcome, ProviderError> {
        self.restore_call(call, before, ctx).await
    }

    fn describe_restore(
        &self,
        call: &StepCall<'_>,
        before: &serde_json::Value,
    ) -> Vec<RequestLine> {
        self.describe_restore_call(call, before)
    }

    async fn check_restored(
        &self,
        call: &StepCall<'_>,
        before: &serde_json::Value,
        ctx: &CallCtx,
    ) -> Result<RestoreCheck, ProviderError> {
        self.check_restored_call(call, before, ctx).await
    }
}

#[cfg(test)]
mod tests;
