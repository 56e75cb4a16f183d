//! A departure run through the binary against a runbook whose `[ticketing]` is each PSA kind,
//! on its fake (tests/common/fake_*.rs): `start … --ticket T` ends with the evidence bundle on
//! ticket T — its five files byte for byte, an internal note, the ticket closed since the departure
//! is complete — the files as downloaded from the desk pass `offboard evidence verify` and
//! `ssh-keygen -Y verify`, the credentials (given by environment reference) appear in no output,
//! and a second `attach` adds nothing.

use std::path::Path;
use std::process::Command;

use crate::common;

use common::cli_env::{CliEnv, fake_runtime, text};

const USER: &str = "carol@corp.example";

fn runbook(ticketing: &str) -> String {
    format!(
        r#"
[runbook]
name = "Ticketed leaver"

[systems.idp]
kind = "sandbox"

[ticketing]
{ticketing}

[[step]]
id = "idp-suspend"
lane = "it"
system = "idp"
action = "suspend_user"
"#
    )
}

/// Start a departure with `--ticket`, check what the binary says and journals, and return the
/// departure id.
fn start(env: &CliEnv, ticket: &str, secrets: &[&str]) -> String {
    let mut args = CliEnv::start_args(USER);
    args.extend(["--ticket", ticket]);
    let out = env.run(&args);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    for s in secrets {
        assert!(!t.contains(s), "{t}");
    }
    let id = env.departure_of(USER).unwrap();
    let kinds: Vec<String> = env
        .chain(&id)
        .iter()
        .map(|e| {
            serde_json::to_value(e).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["ticket_attached", "ticket_closed"],
        "{t}"
    );
    id
}

/// The files as the desk holds them (name, bytes) are the departure's, and pass both checks
/// once downloaded side by side.
fn assert_downloaded_files_verify(env: &CliEnv, id: &str, files: &[(String, Vec<u8>)]) {
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let (json, sig, signers) = (
        format!("{id}-r1.json"),
        format!("{id}-r1.json.sig"),
        "allowed_signers".to_string(),
    );
    assert_eq!(
        names,
        [
            json.as_str(),
            sig.as_str(),
            signers.as_str(),
            &format!("{id}-r1.html"),
            &format!("{id}-r1.VERIFY.txt"),
        ]
    );
    assert_eq!(files[0].1, std::fs::read(env.evidence_path(id)).unwrap());
    let down = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(down.path().join(name), bytes).unwrap();
    }
    let p = |n: &str| down.path().join(n).to_str().unwrap().to_string();
    let out = env.run(&[
        "evidence",
        "verify",
        &p(&json),
        "--allowed-signers",
        &p(&signers),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    ssh_keygen_verifies(down.path(), &json, &sig, &signers);
}

fn ssh_keygen_verifies(dir: &Path, json: &str, sig: &str, signers: &str) {
    let line = std::fs::read_to_string(dir.join(signers)).unwrap();
    let principal = line.split_whitespace().next().unwrap();
    if Command::new("ssh-keygen").arg("-?").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "ssh-keygen is missing");
        eprintln!("skipped the ssh-keygen check: ssh-keygen is not installed");
        return;
    }
    let out = Command::new("sh")
        .current_dir(dir)
        .arg("-c")
        .arg(format!(
            "ssh-keygen -Y verify -f '{signers}' -I '{principal}' -n offboard-evidence -s '{sig}' < '{json}'"
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `attach` again: nothing uploaded, no note.
fn assert_second_attach_adds_nothing(env: &CliEnv, id: &str) {
    let out = env.run(&["--json", "attach", id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["uploaded"].as_u64(), v["note_added"].as_bool()),
        (Some(0), Some(false))
    );
}

#[test]
fn jira_a_departure_ends_on_its_request() {
    use common::fake_jira::FakeJira;
    const TOKEN: &str = "ATATT3x-SECRET-cli-77a1";
    let rt = fake_runtime();
    let fake = rt.block_on(FakeJira::start("offboard@corp.example", TOKEN));
    let key = fake.add_issue();
    let mut env = CliEnv::with_runbook(&runbook(&format!(
        "kind = \"jira\"\nbase_url = \"{}\"\nemail = \"offboard@corp.example\"\napi_token = {{ env = \"JIRA_API_TOKEN\" }}\nclose_status = \"Closed\"",
        fake.server.base_url
    )));
    env.var("JIRA_API_TOKEN", TOKEN);
    let id = start(&env, &key, &[TOKEN]);
    let issue = fake.issue(&key);
    let files: Vec<(String, Vec<u8>)> = issue
        .attachments
        .iter()
        .map(|a| (a.filename.clone(), a.bytes.clone()))
        .collect();
    assert_downloaded_files_verify(&env, &id, &files);
    assert_eq!(issue.comments.len(), 1);
    assert!(!issue.comments[0].public);
    assert!(
        issue.comments[0]
            .body
            .contains(&format!("Offboarding evidence for {USER}"))
    );
    assert_eq!(issue.status, "Closed");
    assert_second_attach_adds_nothing(&env, &id);
    fake.assert_contract();
}

#[test]
fn autotask_a_departure_ends_on_its_ticket_named_by_number() {
    use common::fake_autotask::{Credentials, FakeAutotask};
    const CODE: &str = "ITC-SECRET-cli";
    const SECRET: &str = "at-SECRET-cli-3f";
    let rt = fake_runtime();
    let fake = rt.block_on(FakeAutotask::start(Credentials {
        username: "offboard@corpabc.example".into(),
        integration_code: CODE.into(),
        secret: SECRET.into(),
    }));
    let (tid, number) = fake.add_ticket();
    let mut env = CliEnv::with_runbook(&runbook(&format!(
        "kind = \"autotask\"\nbase_url = \"{}\"\nusername = \"offboard@corpabc.example\"\nintegration_code = {{ env = \"AT_CODE\" }}\nsecret = {{ env = \"AT_SECRET\" }}\nclose_status = \"Complete\"",
        fake.server.base_url
    )));
    env.var("AT_CODE", CODE);
    env.var("AT_SECRET", SECRET);
    let id = start(&env, &number, &[CODE, SECRET]);
    let t = fake.ticket(&tid);
    let files: Vec<(String, Vec<u8>)> = t
        .attachments
        .iter()
        .map(|a| (a.full_path.clone(), a.bytes.clone()))
        .collect();
    assert_downloaded_files_verify(&env, &id, &files);
    assert!(t.attachments.iter().all(|a| a.publish == 2));
    assert_eq!(t.notes.len(), 1);
    assert_eq!(t.status, 5);
    assert_second_attach_adds_nothing(&env, &id);
    fake.assert_contract();
}

#[test]
fn connectwise_a_departure_ends_on_its_ticket() {
    use common::fake_connectwise::FakeConnectWise;
    const PRIVATE: &str = "PRIV-SECRET-cli";
    const CLIENT: &str = "8d1b7e3c-2f4a-4b6e-9c1d-0a5f3e7b9c21";
    let rt = fake_runtime();
    let fake = rt.block_on(FakeConnectWise::start("corpabc", "pubkey", PRIVATE, CLIENT));
    let ticket = fake.add_ticket();
    let mut env = CliEnv::with_runbook(&runbook(&format!(
        "kind = \"connectwise\"\nbase_url = \"{}\"\ncompany_id = \"corpabc\"\npublic_key = \"pubkey\"\nprivate_key = {{ env = \"CW_PRIVATE_KEY\" }}\nclient_id = \"{CLIENT}\"\nclose_status = \"Closed (resolved)\"",
        fake.server.base_url
    )));
    env.var("CW_PRIVATE_KEY", PRIVATE);
    let id = start(&env, &ticket, &[PRIVATE]);
    let files: Vec<(String, Vec<u8>)> = fake
        .documents(&ticket)
        .iter()
        .map(|d| (d.file_name.clone(), d.bytes.clone()))
        .collect();
    assert_downloaded_files_verify(&env, &id, &files);
    let t = fake.ticket(&ticket);
    assert_eq!(t.notes.len(), 1);
    assert!(t.notes[0].internal_analysis);
    assert_eq!(t.status.1, "Closed (resolved)");
    assert_second_attach_adds_nothing(&env, &id);
    fake.assert_contract();
}

#[test]
fn freshservice_a_departure_ends_on_its_ticket() {
    use common::fake_freshservice::FakeFreshservice;
    const KEY: &str = "fs-SECRET-cli-9a";
    let rt = fake_runtime();
    let fake = rt.block_on(FakeFreshservice::start(KEY));
    let ticket = fake.add_ticket();
    let mut env = CliEnv::with_runbook(&runbook(&format!(
        "kind = \"freshservice\"\nbase_url = \"{}\"\napi_key = {{ env = \"FRESHSERVICE_API_KEY\" }}\nclose_status = \"Closed\"",
        fake.server.base_url
    )));
    env.var("FRESHSERVICE_API_KEY", KEY);
    let id = start(&env, &format!("INC-{ticket}"), &[KEY]);
    let t = fake.ticket(&ticket);
    let files: Vec<(String, Vec<u8>)> = t
        .attachments
        .iter()
        .map(|a| (a.name.clone(), a.bytes.clone()))
        .collect();
    assert_downloaded_files_verify(&env, &id, &files);
    assert_eq!(t.conversations.len(), 1);
    assert!(t.conversations[0].private);
    assert_eq!(t.status, 5);
    assert_second_attach_adds_nothing(&env, &id);
    fake.assert_contract();
}
