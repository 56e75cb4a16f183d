//! A system authenticated by its `auth` table, through the binary: `runbook check` and `plan`
//! need no secret, `preflight` reports a client secret the token endpoint refuses in the
//! endpoint's words, and `start` gets its token from the endpoint and sends it to the SCIM API —
//! with neither the client secret nor the token in any output or file.

use crate::common;

use common::cli_env::{CliEnv, fake_runtime, text, walk};
use common::fake_scim::FakeScim;
use common::fake_token::FakeTokenEndpoint;

const CLIENT: &str = "offboard-cli";
const CLIENT_SECRET: &str = "cs-SECRET-cli-8e21f0";
const WRONG_SECRET: &str = "cs-SECRET-wrong-31c9aa";
/// Issued by the token endpoint; the SCIM fake accepts this token and no other.
const ACCESS: &str = "at-SECRET-cli-d04b7c";
const USER: &str = "alice@corp.example";

fn assert_clean(what: &str, bytes: &[u8]) {
    let s = String::from_utf8_lossy(bytes);
    // The variable's name (`APP_CLIENT_SECRET`) is a reference, no secret: it may be shown.
    for secret in [
        CLIENT_SECRET,
        WRONG_SECRET,
        ACCESS,
        "cs-SECRET",
        "at-SECRET",
    ] {
        assert!(!s.contains(secret), "{what} holds {secret}:\n{s}");
    }
}

#[test]
fn oauth2_client_credentials_end_to_end_and_no_secret_leaks() {
    let rt = fake_runtime();
    let (endpoint, scim) = rt.block_on(async {
        (
            FakeTokenEndpoint::start(CLIENT, CLIENT_SECRET, ACCESS).await,
            FakeScim::start(ACCESS).await,
        )
    });
    endpoint.expect_scope("scim");
    let id = scim.add_user(USER, true);
    let mut env = CliEnv::new();
    env.write_runbook(&format!(
        r#"
[runbook]
name = "OAuth leaver"

[systems.app]
kind = "scim"
base_url = "{}"
timeout_secs = 5

[systems.app.auth.oauth2]
token_url = "{}"
client_id = "{CLIENT}"
scopes = ["scim"]
client_secret = {{ env = "APP_CLIENT_SECRET" }}

[[step]]
id = "app-deactivate"
lane = "saas"
system = "app"
action = "deactivate_user"
"#,
        scim.base_url, endpoint.url
    ));
    let mut outputs = Vec::new();
    let mut run = |env: &CliEnv, args: &[&str]| {
        let out = env.run(args);
        assert_clean(&format!("stdout of {args:?}"), &out.stdout);
        assert_clean(&format!("stderr of {args:?}"), &out.stderr);
        outputs.push(text(&out));
        out
    };
    let rb = ["-r", "offboard.toml"];

    // No secret set: checking and planning work, and ask nobody.
    let out = run(&env, &["runbook", "check", "offboard.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(&env, &[&["plan", USER][..], &rb].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(endpoint.requests().is_empty() && scim.requests().is_empty());

    // A secret the endpoint refuses: preflight names the problem in its words; start cuts
    // nothing and records no departure.
    env.var("APP_CLIENT_SECRET", WRONG_SECRET);
    env.var("OFFBOARD_LOG", "trace");
    let out = run(&env, &[&["-vv", "preflight", USER][..], &rb].concat());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("PROBLEM app-deactivate (app)"), "{shown}");
    assert!(shown.contains("invalid_client"), "{shown}");
    let out = run(
        &env,
        &[&["start", USER][..], &rb, &["--non-interactive"]].concat(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("invalid_client"), "{}", text(&out));
    assert_eq!(env.departures().0, Vec::new());
    assert!(scim.requests().is_empty(), "{:#?}", scim.requests());
    assert_eq!(scim.user(&id).unwrap()["active"], true);
    assert!(endpoint.refused() >= 2);
    assert_eq!(endpoint.issued(), 0);

    // The right secret: the step runs on the endpoint's token.
    env.var("APP_CLIENT_SECRET", CLIENT_SECRET);
    let out = run(
        &env,
        &[&["-vv", "start", USER][..], &rb, &["--non-interactive"]].concat(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(scim.user(&id).unwrap()["active"], false);
    assert!(endpoint.issued() >= 1);
    assert!(scim.requests().iter().all(|r| r.has_auth));
    let dep = env.departure_of(USER).expect("a departure");
    assert_eq!(
        env.step_statuses(&dep),
        vec![("app-deactivate".to_string(), "done".to_string())]
    );
    for args in [
        vec!["--json", "verify", dep.as_str()],
        vec!["--json", "status", dep.as_str()],
    ] {
        let out = run(&env, &args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    env.assert_evidence_verifies(&dep);

    let files = walk(&env.state());
    assert!(
        files.iter().any(|f| f.ends_with(format!("{dep}.json"))),
        "{files:?}"
    );
    for f in files {
        assert_clean(&f.display().to_string(), &std::fs::read(&f).unwrap());
    }
}
