//! Tokens never leak: not into any file under the state dir, not into any command's output
//! (plain, `-v`, `-vv`, `--json`, trace logging), not into error messages — even when a server
//! echoes the Authorization header back or the connection fails.

use crate::common;

use std::process::Output;

use common::cli_env::{CliEnv, fake_runtime, text, walk};
use common::fake_scim::FakeScim;

/// Accepted by the `hr` fake.
const GOOD: &str = "tok-SECRET-7f3a9c";
/// Rejected (401) by the `crm` fake, which echoes the Authorization header in its error body.
const REJECTED: &str = "tok-SECRET-crm-4b1e20";
/// Sent nowhere: `dead` points at a closed port.
const UNSENT: &str = "tok-SECRET-dead-9d2f51";
const SECRETS: [&str; 3] = [GOOD, REJECTED, UNSENT];

fn assert_clean(what: &str, bytes: &[u8]) {
    let s = String::from_utf8_lossy(bytes);
    for secret in SECRETS {
        assert!(!s.contains(secret), "{what} holds the token {secret}:\n{s}");
    }
    assert!(
        !s.contains("tok-SECRET"),
        "{what} holds part of a token:\n{s}"
    );
}

fn assert_output_clean(args: &[&str], out: &Output) {
    assert_clean(&format!("stdout of {args:?}"), &out.stdout);
    assert_clean(&format!("stderr of {args:?}"), &out.stderr);
}

#[test]
fn tokens_appear_in_no_file_output_or_error() {
    let rt = fake_runtime();
    let (hr, crm) = rt.block_on(async {
        (
            FakeScim::start(GOOD).await,
            FakeScim::start("what-crm-really-wants").await,
        )
    });
    crm.echo_auth_in_errors();
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut env = CliEnv::new();
    env.var("HR_TOKEN", GOOD);
    env.var("CRM_TOKEN", REJECTED);
    env.var("DEAD_TOKEN", UNSENT);
    env.write_runbook(&format!(
        r#"
[runbook]
name = "Secrets leaver"

[systems.hr]
kind = "scim"
base_url = "{}"
token = {{ env = "HR_TOKEN" }}
timeout_secs = 1

[systems.crm]
kind = "scim"
base_url = "{}"
token = {{ env = "CRM_TOKEN" }}
timeout_secs = 1

[systems.dead]
kind = "scim"
base_url = "http://127.0.0.1:{closed_port}/scim/v2"
token = {{ env = "DEAD_TOKEN" }}
timeout_secs = 1

[[step]]
id = "hr-deactivate"
lane = "it"
system = "hr"
action = "deactivate_user"

[[step]]
id = "crm-deactivate"
lane = "saas"
system = "crm"
action = "deactivate_user"

[[step]]
id = "dead-deactivate"
lane = "saas"
system = "dead"
action = "deactivate_user"
"#,
        hr.base_url, crm.base_url
    ));
    let users = ["alice@corp.example", "bob@corp.example"];
    for u in users {
        hr.add_user(u, true);
        crm.add_user(u, true);
    }

    let mut outputs: Vec<Output> = Vec::new();
    let mut run = |env: &CliEnv, args: &[&str]| -> Output {
        let out = env.run(args);
        assert_output_clean(args, &out);
        outputs.push(out.clone());
        out
    };
    // Each command that reaches `dead` spends its retry budget (a few seconds) on it: keep
    // those few, and vary the flags across them.
    let rb = ["-r", "offboard.toml", "--non-interactive", "--force"];
    for args in [
        [&["-v", "start", users[0]][..], &rb[..]].concat(),
        [&["-vv", "--json", "start", users[1]][..], &rb[..]].concat(),
    ] {
        let out = run(&env, &args);
        // hr is done; crm failed with 401; dead failed to connect: incomplete.
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    }
    let (found, _) = env.departures();
    let ids: Vec<String> = found.into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 2);
    // Everything logged from here on, reqwest and hyper included.
    env.var("OFFBOARD_LOG", "trace");
    run(&env, &["-vv", "resume", &ids[0], "--non-interactive"]);
    run(&env, &["-vv", "verify", &ids[0]]);
    run(&env, &["--json", "verify", &ids[1]]);
    for id in &ids {
        let ev = env.evidence_path(id);
        let ev = ev.to_str().unwrap();
        run(&env, &["status", id]);
        run(&env, &["--json", "-v", "status", id]);
        run(&env, &["evidence", "show", ev]);
        run(&env, &["--json", "evidence", "show", ev]);
        run(&env, &["-v", "evidence", "verify", ev]);
    }
    run(&env, &["status"]);
    run(&env, &["--json", "status"]);

    // The failures did happen, and say what to fix without the token.
    let all: String = outputs
        .iter()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout)
        })
        .collect();
    assert!(all.contains("401"), "no 401 reported:\n{all}");
    assert!(
        all.contains("[redacted]"),
        "the echoed header was not redacted:\n{all}"
    );
    assert!(
        all.contains("could not connect"),
        "no connection failure reported:\n{all}"
    );
    // The echoing server really did send the token back (so redaction was exercised).
    assert!(crm.requests().iter().all(|r| r.has_auth));

    let files = walk(&env.state());
    assert!(files.len() > 10, "{files:?}");
    for f in files {
        assert_clean(&f.display().to_string(), &std::fs::read(&f).unwrap());
    }
}
