//! `offboard runbook check` and `offboard runbook schema`, end to end.

use assert_cmd::Command;
use predicates::prelude::*;

const VALID: &str = "tests/fixtures/runbooks/valid.toml";
const INVALID: &str = "tests/fixtures/runbooks/invalid.toml";

/// The cleared-environment binary, run in the crate root (fixture paths are relative to it).
fn offboard(state: &tempfile::TempDir) -> Command {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::from_std(crate::common::cli_env::cleared(
        root,
        state.path(),
        state.path(),
    ))
}

#[test]
fn check_valid_runbook_exits_0_with_a_summary() {
    let state = tempfile::tempdir().unwrap();
    offboard(&state)
        .args(["runbook", "check", VALID])
        .assert()
        .success()
        .stdout(format!(
            "ok: {VALID}: runbook \"Fixture\": 1 system, 2 steps (1 automated, 1 manual)\n"
        ));
}

#[test]
fn check_example_runbooks() {
    let state = tempfile::tempdir().unwrap();
    for file in [
        "runbooks/demo.toml",
        "runbooks/scim-saas.toml",
        "runbooks/m365-msp.toml",
        "runbooks/msp-ninjaone.toml",
    ] {
        offboard(&state)
            .args(["runbook", "check", file])
            .assert()
            .success()
            .stdout(predicate::str::starts_with(format!("ok: {file}: runbook ")));
    }
}

/// The shipped Microsoft 365 runbook plans offline, with no credential, and prints every request:
/// memberships removed by `/$ref` (never the user's own path), the mailbox made shared before
/// any licence goes, and the licences last.
#[test]
fn m365_runbook_plans_every_request_offline() {
    let state = tempfile::tempdir().unwrap();
    let out = offboard(&state)
        .args([
            "plan",
            "alice@contoso.com",
            "-r",
            "runbooks/m365-msp.toml",
            "--set",
            "manager=bob@contoso.com",
            "--type",
            "involuntary",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "PATCH https://graph.microsoft.com/v1.0/users/{id}",
        "POST https://graph.microsoft.com/v1.0/users/{id}/revokeSignInSessions",
        "DELETE https://graph.microsoft.com/v1.0/groups/{group_id}/members/{id}/$ref",
        "InvokeCommand Set-Mailbox -Identity {id} -Type Shared",
        "-ForwardingSmtpAddress smtp:bob@contoso.com",
        "POST https://graph.microsoft.com/v1.0/deviceManagement/managedDevices/{device_id}/retire",
    ] {
        assert!(text.contains(want), "plan lacks {want}:\n{text}");
    }
    let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle}"));
    assert!(at("convert-to-shared") < at("remove-licenses"));
    assert!(at("disable-sign-in") < at("auto-reply"));
    assert!(
        !text.contains("/members/{id}\n"),
        "a membership without /$ref"
    );
}

/// The MSP runbook (Microsoft 365, NinjaOne, the asset lane) plans offline with every NinjaOne
/// request, one return step per asset listed, and the RMM lock that waits for an overdue asset.
#[test]
fn msp_ninjaone_runbook_plans_every_ninjaone_request_offline() {
    let state = tempfile::tempdir().unwrap();
    let out = offboard(&state)
        .args([
            "plan",
            "alice@contoso.com",
            "-r",
            "runbooks/msp-ninjaone.toml",
            "--set",
            "manager=bob@contoso.com",
            "--set",
            "assets=LT-0042:C02XK1,PH-7",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ninja = "https://eu.ninjarmm.com/v2";
    for want in [
        format!(
            "GET {ninja}/user/end-users (the end user whose email is the login: assignedDeviceIds)"
        ),
        format!("GET {ninja}/device/{{id}} (each assigned device)"),
        format!(
            "GET {ninja}/device/{{id}}/activities?activityType=ACTION&pageSize=200&olderThan={{lastId}} (runs of \"Disable local user\")"
        ),
        format!("GET {ninja}/device/{{id}}/scripting/options"),
        format!(
            "POST {ninja}/device/{{id}}/script/run (\"Disable local user\" as system; 204, no run id)"
        ),
        format!("GET {ninja}/device/{{id}}/custom-fields?withInheritance=false"),
        format!(
            "PATCH {ninja}/device/{{id}}/custom-fields (offboardingStatus=\"pending-wipe\"; only fields that differ)"
        ),
        format!("GET {ninja}/tag"),
        format!("POST {ninja}/tag/device (add tags Offboarding; only those missing)"),
        format!(
            "PUT {ninja}/device/{{id}}/maintenance (disabledFeatures, end; only devices not already in maintenance)"
        ),
        format!("POST {ninja}/device/{{id}}/decommission (IRREVERSIBLE: cannot be undone)"),
        format!("DELETE {ninja}/user/end-user/{{id}}"),
        "POST https://graph.microsoft.com/v1.0/users/{id}/revokeSignInSessions".to_string(),
        "return-LT-0042".to_string(),
        "Recover asset LT-0042 (serial C02XK1) from alice@contoso.com".to_string(),
        "return-PH-7".to_string(),
        "asks for: disposition, return_method, tracking_number, condition, itad_certificate"
            .to_string(),
        "only once an asset is overdue or lost: return-LT-0042, return-PH-7".to_string(),
    ] {
        assert!(text.contains(&want), "plan lacks {want}:\n{text}");
    }
    assert!(text.contains("ninja.decommission_device as alice@contoso.com [destructive]"));
    // The end-user login goes last, after every device step.
    let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle}"));
    assert!(at("ninja-decommission") < at("ninja-remove-end-user"));
    assert!(at("ninja-tag") < at("ninja-remove-end-user"));
    assert!(at("on-the-bench") < at("ninja-decommission"));
}

/// The startup runbook (Okta, Google, Slack, GitHub, Jamf) plans offline with every request it
/// will send, the Google steps that act as the user before the suspension, the auto-reply
/// only when voluntary, and the Jamf PIN never shown.
#[test]
fn startup_runbook_plans_every_request_offline() {
    let plan = |ty: &str| {
        let state = tempfile::tempdir().unwrap();
        let out = offboard(&state)
            .args([
                "plan",
                "alice@startup.example",
                "-r",
                "runbooks/okta-google-startup.toml",
                "--set",
                "manager=bob@startup.example",
                "--set",
                "github=alice-gh",
                "--set",
                "mac_user=alice",
                "--type",
                ty,
            ])
            .env("JAMF_LOCK_PIN", "918273")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let text = plan("involuntary");
    for want in [
        "POST https://startup.okta.com/api/v1/users/{id}/lifecycle/suspend",
        "DELETE https://startup.okta.com/api/v1/users/{id}/sessions?oauthTokens=true",
        "POST https://startup.okta.com/api/v1/users/{id}/lifecycle/deactivate?sendEmail=false",
        "PATCH https://admin.googleapis.com/admin/directory/v1/users/{id}",
        "POST https://admin.googleapis.com/admin/directory/v1/users/{id}/verificationCodes/invalidate",
        "POST https://admin.googleapis.com/admin/directory/v1/users/{id}/signOut",
        "POST https://admin.googleapis.com/admin/datatransfer/v1/transfers",
        "DELETE https://licensing.googleapis.com/apps/licensing/v1/product/Google-Apps/sku/{skuId}/user/{email}",
        "DELETE https://api.slack.com/scim/v2/Users/{id}",
        "DELETE https://api.github.com/orgs/startup-inc/memberships/{username}",
        "POST https://startup.jamfcloud.com/api/v2/mdm/commands (DEVICE_LOCK, PIN <redacted>)",
        "POST https://startup.jamfcloud.com/api/v2/mdm/commands (ERASE_DEVICE, PIN <redacted>)",
        "GET https://startup.jamfcloud.com/api/v2/mobile-devices/detail?section=GENERAL&section=USER_AND_LOCATION&filter=username%3D%3D%22alice%22&page={page}&page-size=100",
        "POST https://startup.jamfcloud.com/api/v2/mdm/commands (DEVICE_LOCK)",
    ] {
        assert!(text.contains(want), "plan lacks {want}:\n{text}");
    }
    assert!(!text.contains("918273"), "the PIN in the plan:\n{text}");
    assert!(!text.contains("google-auto-reply"), "{text}");
    let at = |t: &str, needle: &str| t.find(needle).unwrap_or_else(|| panic!("{needle}"));
    assert!(at(&text, "google-backup-codes") < at(&text, "google-suspend"));
    assert!(at(&text, "google-drive") < at(&text, "google-licence"));
    assert!(at(&text, "okta-groups") < at(&text, "okta-deactivate"));
    assert!(text.contains("mobile-lock"), "{text}");

    let text = plan("voluntary");
    assert!(!text.contains("mac-erase"), "{text}");
    assert!(at(&text, "google-auto-reply") < at(&text, "google-suspend"));
    assert!(text.contains("PUT https://gmail.googleapis.com/gmail/v1/users/me/settings/vacation"));
}

#[test]
fn check_invalid_runbook_exits_2_with_locations_and_help() {
    let state = tempfile::tempdir().unwrap();
    offboard(&state)
        .args(["runbook", "check", INVALID])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(format!("{INVALID}:7:9")))
        .stderr(predicate::str::contains(format!("{INVALID}:11:8")))
        .stderr(predicate::str::contains("= help:"))
        .stderr(predicate::str::contains("hunter2").not());
}

#[test]
fn check_invalid_runbook_renders_every_error() {
    let state = tempfile::tempdir().unwrap();
    let out = offboard(&state)
        .args(["--color", "never", "runbook", "check", INVALID])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(String::from_utf8(out.stderr).unwrap());
}

#[test]
fn check_json_reports_diagnostics_with_line_and_column() {
    let state = tempfile::tempdir().unwrap();
    let out = offboard(&state)
        .args(["--json", "runbook", "check", INVALID])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["valid"], false);
    let diags = v["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 6);
    assert_eq!(diags[0]["line"], 7);
    assert_eq!(diags[0]["column"], 9);
    assert!(
        diags[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("secrets must not be written in the runbook")
    );
    assert!(diags.iter().all(|d| d["hint"].is_string()));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));

    let out = offboard(&state)
        .args(["--json", "runbook", "check", VALID])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["valid"], true);
    assert_eq!(v["diagnostics"], serde_json::json!([]));
}

#[test]
fn check_missing_file_exits_2() {
    let state = tempfile::tempdir().unwrap();
    offboard(&state)
        .args([
            "runbook",
            "check",
            "tests/fixtures/runbooks/does-not-exist.toml",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read runbook"));
}

#[test]
fn schema_prints_the_json_schema() {
    let state = tempfile::tempdir().unwrap();
    let out = offboard(&state)
        .args(["runbook", "schema"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(schema["title"], "offboard runbook");
    assert!(schema["properties"]["step"].is_object());
    let checked_in =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks/schema.json")).unwrap();
    assert_eq!(out.stdout, checked_in);
}

/// A secret written inline is never shown, whatever its TOML shape: a list, a misspelt
/// reference, a value beside a reference, a number, nested lists, a multi-line string.
#[test]
fn check_masks_inline_secrets_of_every_shape() {
    const FILE: &str = "tests/fixtures/runbooks/secret-shapes.toml";
    let state = tempfile::tempdir().unwrap();
    for args in [
        vec!["--color", "never", "runbook", "check", FILE],
        vec!["--color", "always", "runbook", "check", FILE],
        vec!["--json", "runbook", "check", FILE],
    ] {
        let out = offboard(&state).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for secret in [
            "sk-",
            "ARRAY-0a1b2c",
            "MISSPELT-3d4e5f",
            "BESIDE-6a7b8c",
            "8675309123",
            "NESTED-9d0e1f",
            "LINE-2b3c4d",
        ] {
            assert!(!all.contains(secret), "{args:?} shows {secret}:\n{all}");
        }
    }
    // Each shape is still reported, at its own line, with the masked value in the snippet.
    let out = offboard(&state)
        .args(["--color", "never", "runbook", "check", FILE])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for at in [":9:9", ":14:", ":19:", ":24:9", ":29:", ":37:"] {
        assert!(stderr.contains(&format!("{FILE}{at}")), "{at}:\n{stderr}");
    }
    assert!(
        stderr.contains(r#"token = ["***************"]"#),
        "{stderr}"
    );
    assert!(stderr.contains("token = **********"), "{stderr}");
}

/// `http://` to another machine is refused for every HTTP kind at the system, as `ldap://` is;
/// loopback stays allowed, and `allow_plain = true` allows it.
#[test]
fn check_refuses_plain_http_to_another_machine() {
    const FILE: &str = "tests/fixtures/runbooks/plain-http.toml";
    let state = tempfile::tempdir().unwrap();
    let out = offboard(&state)
        .args(["--json", "runbook", "check", FILE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let diags = v["diagnostics"].as_array().unwrap();
    let messages: Vec<&str> = diags
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert_eq!(diags.len(), 2, "{messages:#?}");
    assert!(
        messages[0].starts_with(
            "system `app`: base_url `http://scim.corp.example/scim/v2` is plain HTTP to a host other than this machine"
        ),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].starts_with("system `vault`: "),
        "{}",
        messages[1]
    );
    for (d, line) in diags.iter().zip([6, 16]) {
        assert!(
            d["message"]
                .as_str()
                .unwrap()
                .contains("allow_plain = true")
        );
        assert_eq!(d["line"], line);
    }

    // Allowed where the runbook says so; the loopback system never needed it.
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed.toml");
    let text = std::fs::read_to_string(FILE).unwrap().replace(
        "token = { env = \"APP_TOKEN\" }",
        "token = { env = \"APP_TOKEN\" }\nallow_plain = true",
    );
    let text = text.replace(
        "token = { env = \"VAULT_TOKEN\" }",
        "token = { env = \"VAULT_TOKEN\" }\nallow_plain = true",
    );
    std::fs::write(&allowed, text).unwrap();
    offboard(&state)
        .args(["runbook", "check"])
        .arg(&allowed)
        .assert()
        .success();

    // `plan` refuses it the same way, before anything else.
    offboard(&state)
        .args(["plan", "alice@corp.example", "-r", FILE])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("plain HTTP"));
}

/// An error that quotes what was typed shows it on its one line, escaped: a line break or a
/// bidi override in an argument cannot forge a line of output.
#[test]
fn errors_quoting_an_argument_escape_it() {
    let state = tempfile::tempdir().unwrap();
    let out = offboard(&state)
        .args(["plan", "alice@corp.example", "-r", VALID, "--set"])
        .arg("team\nhint: all good, nothing to fix\u{202e}=x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with(r"error: --set team\nhint: all good, nothing to fix\u{202e}: "),
        "{stderr}"
    );
    assert!(!stderr.contains("\nhint: all good"), "{stderr}");
    assert!(!stderr.contains('\u{202e}'), "{stderr}");
}

#[test]
fn check_refuses_a_runbook_with_no_steps_at_its_runbook_table() {
    let state = tempfile::tempdir().unwrap();
    let file = "tests/fixtures/runbooks/bad/no-steps.toml";
    offboard(&state)
        .args(["runbook", "check", file])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("{file}:4:2")))
        .stderr(predicate::str::contains("the runbook has no steps"))
        .stderr(predicate::str::contains("add at least one `[[step]]`"));
}

#[test]
fn check_explains_a_bad_rate_limit_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rate.toml");
    std::fs::write(
        &file,
        "[runbook]\nname = \"t\"\n\n[systems.idp]\nkind = \"sandbox\"\nrate_limit = \"600/day\"\n\n[[step]]\nid = \"s\"\nlane = \"it\"\nsystem = \"idp\"\naction = \"suspend_user\"\n",
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = offboard(&state)
        .args(["--color", "never", "runbook", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rate.toml:6:14"), "{stderr}");
    assert!(
        stderr.contains("`day` in `600/day` is not a period"),
        "{stderr}"
    );
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("600/day", "600/min"),
    )
    .unwrap();
    offboard(&state)
        .args(["runbook", "check"])
        .arg(&file)
        .assert()
        .success();
}

/// An action the configured system cannot do (one an LDAP flavor does not offer) is reported at
/// the step's `action`, not first when the step runs.
#[test]
fn check_refuses_an_action_the_systems_flavor_does_not_offer_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flavor.toml");
    let text = "[runbook]\nname = \"t\"\n\n[systems.ad]\nkind = \"ldap\"\nbase_url = \"ldaps://dc1.corp.example\"\nflavor = \"active_directory\"\nbind_dn = \"svc@corp.example\"\nbind_password = { env = \"AD_PW\" }\nbase_dn = \"DC=corp,DC=example\"\n\n[[step]]\nid = \"lock\"\nlane = \"it\"\nsystem = \"ad\"\naction = \"lock_account\"\n";
    std::fs::write(&file, text).unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = offboard(&state)
        .args(["--color", "never", "runbook", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("flavor.toml:16:10"), "{stderr}");
    assert!(
        stderr.contains("flavor active_directory has no action `lock_account`")
            && stderr.contains("it offers: disable_account"),
        "{stderr}"
    );
    std::fs::write(&file, text.replace("lock_account", "disable_account")).unwrap();
    offboard(&state)
        .args(["runbook", "check"])
        .arg(&file)
        .assert()
        .success();
}
