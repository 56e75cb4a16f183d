//! The `entra` kind through the binary: `offboard start` on a client tenant's runbook against a
//! fake Microsoft Graph and a fake Entra sign-in host. The cut holds, the automatic reply is
//! set, the evidence names the Graph object id, legal hold keeps `wipe_devices` and
//! `delete_user` from running, and no secret (client secret, token, the random password) is
//! written anywhere.

use serde_json::Value;

use crate::common::cli_env::{CliEnv, fake_runtime, text, walk};
use crate::common::fake_graph::FakeGraph;
use crate::common::fake_token::FakeLogin;

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT: &str = "0f6c-offboard-app";
const SECRET: &str = "cs~Entra-cli-secret-93";
const TOKEN: &str = "eyJ0eXAi.graph-token-cli.Zp4";

fn runbook(graph: &str, login: &str) -> String {
    format!(
        r#"[runbook]
name = "Contoso leaver (MSP client)"
legal_hold = true

[systems.contoso]
kind = "entra"
base_url = "{graph}"
tenant_id = "{TENANT}"
client_id = "{CLIENT}"
client_secret = {{ env = "CONTOSO_GRAPH_SECRET" }}
login_url = "{login}"

[[step]]
id = "entra-disable"
lane = "it"
system = "contoso"
action = "disable_sign_in"
phase = "cut"

[[step]]
id = "entra-revoke"
lane = "it"
system = "contoso"
action = "revoke_sessions"
phase = "cut"

[[step]]
id = "entra-password"
lane = "it"
system = "contoso"
action = "reset_password"
phase = "cut"

[[step]]
id = "entra-reply"
lane = "it"
system = "contoso"
action = "set_auto_reply"
phase = "handoff"
params.internal = "{{{{ user.email }}}} has left Contoso; please write to it@contoso.com"

[[step]]
id = "entra-wipe"
lane = "security"
system = "contoso"
action = "wipe_devices"
phase = "close"

[[step]]
id = "entra-delete"
lane = "it"
system = "contoso"
action = "delete_user"
phase = "close"
after = ["entra-wipe"]
"#
    )
}

#[test]
fn start_cuts_a_client_tenant_and_legal_hold_blocks_wipe_and_delete() {
    let rt = fake_runtime();
    let login = rt.block_on(FakeLogin::start(&[(TENANT, CLIENT, SECRET, TOKEN)]));
    login.expect_scope("https://graph.microsoft.com/.default");
    let graph = rt.block_on(FakeGraph::start(TOKEN));
    let user = "alice+ops@contoso.com";
    let id = graph.add_user(user);
    let phone = graph.add_device(&id, "Alice's iPhone", "iOS");

    let mut env = CliEnv::new();
    env.var("CONTOSO_GRAPH_SECRET", SECRET);
    env.write_runbook(&runbook(&graph.base_url, &login.login_url));
    let check = env.run(&["runbook", "check", "offboard.toml"]);
    assert!(check.status.success(), "{}", text(&check));
    let plan = env.run(&["plan", user, "-r", "offboard.toml"]);
    let shown = text(&plan);
    assert!(
        shown.contains("/users/alice%2Bops%40contoso.com")
            && shown.contains("revokeSignInSessions"),
        "{shown}"
    );
    assert!(graph.requests().is_empty(), "plan reached Graph");

    let out = env.run(&CliEnv::start_args(user));
    let all = text(&out);
    let u = graph.user(&id).expect("legal hold let the delete through");
    assert!(!u.account_enabled, "{all}");
    assert!(u.last_password.is_some(), "{all}");
    assert_eq!(u.auto_reply["status"], "alwaysEnabled", "{all}");
    assert_eq!(
        u.auto_reply["internalReplyMessage"],
        "alice+ops@contoso.com has left Contoso; please write to it@contoso.com"
    );
    assert_eq!(
        graph.device(&phone).unwrap().management_state,
        "managed",
        "{all}"
    );
    assert!(
        !graph
            .lines()
            .iter()
            .any(|l| l.starts_with("DELETE") || l.contains("/wipe")),
        "{:?}",
        graph.lines()
    );

    let dep = env.departure_of(user).unwrap();
    let statuses = env.step_statuses(&dep);
    for (step, want) in [
        ("entra-disable", "done"),
        ("entra-revoke", "done"),
        ("entra-password", "done"),
        ("entra-reply", "done"),
        ("entra-wipe", "skipped"),
        ("entra-delete", "skipped"),
    ] {
        assert!(
            statuses.contains(&(step.into(), want.into())),
            "{step} should be {want}: {statuses:?}\n{all}"
        );
    }
    let evidence = std::fs::read_to_string(env.evidence_path(&dep)).unwrap();
    assert!(evidence.contains(&id), "the evidence names the object id");
    assert!(evidence.contains("Entra object id"));
    let doc: Value = serde_json::from_str(&evidence).unwrap();
    let blocked = doc["predicate"]["legal_hold"]["blocked"].to_string();
    assert!(
        blocked.contains("entra-wipe") && blocked.contains("entra-delete"),
        "{blocked}"
    );
    env.assert_evidence_verifies(&dep);

    // No secret anywhere: not the client secret, not the token, not the random password.
    let password = u.last_password.unwrap();
    for f in walk(env.path()) {
        let Ok(body) = std::fs::read_to_string(&f) else {
            continue;
        };
        for secret in [SECRET, TOKEN, password.as_str()] {
            assert!(!body.contains(secret), "{} holds a secret", f.display());
        }
    }
    for secret in [SECRET, TOKEN, password.as_str()] {
        assert!(!all.contains(secret), "the output holds a secret");
    }
    assert_eq!(login.refused(TENANT), 0);
    graph.assert_contract();
}

/// The credential is checked before anything runs: none, or both, is a runbook error at the
/// system, with no secret needed to find it.
#[test]
fn runbook_check_wants_exactly_one_credential() {
    let base = r#"[runbook]
name = "Contoso leaver"

[systems.contoso]
kind = "entra"
tenant_id = "contoso.onmicrosoft.com"
client_id = "0f6c-offboard-app"
CREDENTIAL
[[step]]
id = "entra-disable"
lane = "it"
system = "contoso"
action = "disable_sign_in"
"#;
    for (credential, want) in [
        ("", "set the app registration's credential"),
        (
            "client_secret = { env = \"S\" }\ncertificate = { file = \"/run/secrets/contoso.pem\" }\n",
            "set `client_secret` or `certificate`, not both",
        ),
    ] {
        let env = CliEnv::with_runbook(&base.replace("CREDENTIAL\n", credential));
        let out = env.run(&["runbook", "check", "offboard.toml"]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{all}");
        assert!(
            all.contains(want) && all.contains("system `contoso`"),
            "{all}"
        );
    }
    let ok =
        CliEnv::with_runbook(&base.replace("CREDENTIAL\n", "client_secret = { env = \"S\" }\n"));
    let out = ok.run(&["runbook", "check", "offboard.toml"]);
    assert!(out.status.success(), "{}", text(&out));
}
