//! The `redmine` ticketing kind against a real Redmine 5 (Debian's packages, an instance of its
//! own per test, started by tests/servers/start-redmine.sh): a departure started with
//! `--ticket` leaves its evidence on the issue — every file once, byte for byte, with a private
//! note — a second `attach` adds nothing, the issue is closed once the departure is complete,
//! and the files downloaded back from Redmine pass `offboard evidence verify` and
//! `ssh-keygen -Y verify`.
//!
//! Without Redmine the test is skipped with a message, except under CI (env `CI` set), where it
//! fails: CI runs tests/servers/install-redmine.sh first.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{Value, json};

use crate::common;

use common::cli_env::{CliEnv, fake_runtime, text};
use common::servers::RealServer;

const USER: &str = "bob@corp.example";

struct Redmine {
    base: String,
    key: String,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Redmine {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Vec<u8>) {
        self.rt.block_on(async {
            let mut r = self
                .http
                .request(method.parse().unwrap(), format!("{}{path}", self.base))
                .header("x-redmine-api-key", &self.key);
            if let Some(b) = body {
                r = r
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.bytes().await.unwrap().to_vec())
        })
    }

    fn create_issue(&self, subject: &str) -> String {
        let (status, body) = self.call(
            "POST",
            "/issues.json",
            Some(json!({"issue": {"project_id": "offboarding", "subject": subject}})),
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        let v: Value = serde_json::from_slice(&body).unwrap();
        v["issue"]["id"].as_u64().unwrap().to_string()
    }

    fn issue(&self, id: &str) -> Value {
        let (status, body) = self.call(
            "GET",
            &format!("/issues/{id}.json?include=attachments,journals"),
            None,
        );
        assert_eq!(status, 200);
        serde_json::from_slice::<Value>(&body).unwrap()["issue"].clone()
    }

    /// Each attachment's file name with its downloaded bytes.
    fn files(&self, issue: &Value) -> Vec<(String, Vec<u8>)> {
        issue["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let (status, bytes) =
                    self.call("GET", &format!("/attachments/download/{}", a["id"]), None);
                assert_eq!(status, 200);
                (a["filename"].as_str().unwrap().to_string(), bytes)
            })
            .collect()
    }
}

fn notes(issue: &Value) -> Vec<(String, bool)> {
    issue["journals"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|j| {
            Some((
                j["notes"].as_str().filter(|n| !n.is_empty())?.to_string(),
                j["private_notes"].as_bool().unwrap(),
            ))
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    offboard::journal::sha256_hex(bytes)
}

fn runbook(base: &str) -> String {
    format!(
        r#"
[runbook]
name = "Ticketed leaver"

[systems.idp]
kind = "sandbox"

[ticketing]
kind = "redmine"
base_url = "{base}"
api_key = {{ env = "REDMINE_API_KEY" }}
close_status = "Closed"

[[step]]
id = "idp-suspend"
lane = "it"
system = "idp"
action = "suspend_user"

[[step]]
id = "laptop"
lane = "facilities"
manual = "Collect the laptop"
"#
    )
}

/// The journal's `ticket_attached` records.
fn attaches(env: &CliEnv, id: &str) -> Vec<Value> {
    env.chain(id)
        .iter()
        .filter(|e| matches!(e.record, offboard::journal::Record::TicketAttached(_)))
        .map(|e| serde_json::to_value(e).unwrap()["data"].clone())
        .collect()
}

#[test]
fn a_departure_leaves_its_evidence_on_a_real_redmine_issue() {
    let Some(server) = RealServer::redmine() else {
        return;
    };
    let redmine = Redmine {
        base: format!("http://127.0.0.1:{}", server.port),
        key: server.redmine_api_key(),
        http: reqwest::Client::new(),
        rt: fake_runtime(),
    };
    let ticket = redmine.create_issue("Offboard bob@corp.example");
    let mut env = CliEnv::with_runbook(&runbook(&redmine.base));
    env.var("REDMINE_API_KEY", &redmine.key);
    let mut outputs = Vec::new();
    let mut run = |env: &CliEnv, args: &[&str]| {
        let out = env.run(args);
        outputs.push(text(&out));
        out
    };

    // start: the cut is done, the laptop is not; the evidence goes to the ticket at the end.
    let mut args = CliEnv::start_args(USER);
    args.extend(["--ticket", &ticket]);
    let out = run(&env, &args);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let id = env.departure_of(USER).unwrap();
    let issue = redmine.issue(&ticket);
    let on_ticket = redmine.files(&issue);
    let names: Vec<&str> = on_ticket.iter().map(|(n, _)| n.as_str()).collect();
    let r1 = format!("{id}-r1.json");
    let stem = format!("{id}-r1");
    let signers = "allowed_signers".to_string();
    assert_eq!(
        names,
        [
            r1.as_str(),
            &format!("{r1}.sig"),
            "allowed_signers",
            &format!("{stem}.html"),
            &format!("{stem}.VERIFY.txt"),
        ],
        "{}",
        text(&out)
    );
    // Byte for byte what was signed, and what the journal says was attached.
    let dir = env.departure_dir(&id);
    let evidence = std::fs::read(env.evidence_path(&id)).unwrap();
    let sig = std::fs::read(dir.join(format!("{id}.json.sig"))).unwrap();
    assert_eq!(on_ticket[0].1, evidence);
    assert_eq!(on_ticket[1].1, sig);
    let journaled = attaches(&env, &id);
    assert_eq!(journaled.len(), 1);
    let files = journaled[0]["files"].as_array().unwrap();
    for ((name, bytes), f) in on_ticket.iter().zip(files) {
        assert_eq!(f["name"], json!(name));
        assert_eq!(f["sha256"], json!(sha256(bytes)));
        assert_eq!(f["uploaded"], json!(true));
    }
    assert_eq!(journaled[0]["ticket"], json!(ticket));
    assert_eq!(journaled[0]["kind"], json!("redmine"));
    // The private note, naming the evidence's sha256.
    let n = notes(&issue);
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(n[0].1, "the note is private");
    assert!(n[0].0.contains(&sha256(&evidence)), "{}", n[0].0);
    assert!(
        n[0].0.contains("Not complete yet: 1 step(s) done, 1 open"),
        "{}",
        n[0].0
    );
    assert!(
        n[0].0.contains("Still open: laptop (facilities, pending)."),
        "{}",
        n[0].0
    );
    assert_eq!(issue["status"]["is_closed"], json!(false));

    // A second attach of the same revision adds nothing to the issue.
    let out = run(&env, &["attach", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing uploaded"),
        "{}",
        text(&out)
    );
    let again = redmine.issue(&ticket);
    assert_eq!(again["attachments"], issue["attachments"]);
    assert_eq!(
        again["journals"].as_array().unwrap().len(),
        issue["journals"].as_array().unwrap().len()
    );
    let journaled = attaches(&env, &id);
    assert_eq!(journaled.len(), 2);
    assert!(
        journaled[1]["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["uploaded"] == json!(false))
    );
    assert_eq!(journaled[1]["note_added"], json!(false));

    // The laptop comes back: revision 2 goes on the ticket (the key file is there already) and
    // the departure being complete, the issue is closed.
    let out = run(&env, &["confirm", &id, "laptop"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let issue = redmine.issue(&ticket);
    assert_eq!(issue["status"]["name"], json!("Closed"), "{}", text(&out));
    let on_ticket = redmine.files(&issue);
    let r2 = format!("{id}-r2.json");
    let stem2 = format!("{id}-r2");
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for (n, _) in &on_ticket {
        *count.entry(n.as_str()).or_default() += 1;
    }
    assert_eq!(
        count,
        BTreeMap::from([
            (r1.as_str(), 1),
            (format!("{r1}.sig").as_str(), 1),
            (format!("{stem}.html").as_str(), 1),
            (format!("{stem}.VERIFY.txt").as_str(), 1),
            (r2.as_str(), 1),
            (format!("{r2}.sig").as_str(), 1),
            (format!("{stem2}.html").as_str(), 1),
            (format!("{stem2}.VERIFY.txt").as_str(), 1),
            (signers.as_str(), 1),
        ])
    );
    let n = notes(&issue);
    assert_eq!(n.len(), 2, "{n:?}");
    assert!(
        n[1].1
            && n[1]
                .0
                .starts_with("Offboarding evidence for bob@corp.example")
    );
    assert!(
        n[1].0
            .contains("Complete: 2 step(s) done, 0 open, 0 overdue"),
        "{}",
        n[1].0
    );
    let closed: Vec<_> = env
        .chain(&id)
        .into_iter()
        .filter(|e| matches!(e.record, offboard::journal::Record::TicketClosed(_)))
        .collect();
    assert_eq!(closed.len(), 1);

    // Downloaded back from Redmine into an empty folder, the files verify offline: with
    // offboard and with OpenSSH alone.
    let down = tempfile::tempdir().unwrap();
    for (name, bytes) in &on_ticket {
        std::fs::write(down.path().join(name), bytes).unwrap();
    }
    let file = down.path().join(&r2);
    let out = run(
        &env,
        &[
            "evidence",
            "verify",
            file.to_str().unwrap(),
            "--allowed-signers",
            down.path().join(&signers).to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let principal = std::fs::read_to_string(down.path().join(&signers)).unwrap();
    let principal = principal.split_whitespace().next().unwrap();
    match Command::new("ssh-keygen").arg("-?").output() {
        Err(_) => {
            assert!(std::env::var_os("CI").is_none(), "ssh-keygen is missing");
            eprintln!("skipped the ssh-keygen check: ssh-keygen is not installed");
        }
        Ok(_) => {
            let out = Command::new("sh")
                .current_dir(down.path())
                .arg("-c")
                .arg(format!(
                    "ssh-keygen -Y verify -f '{signers}' -I '{principal}' -n offboard-evidence -s '{r2}.sig' < '{r2}'"
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
    }

    // A key Redmine refuses: the attach fails in Redmine's words (401), is journaled as
    // pending, and the key is nowhere.
    env.var(
        "REDMINE_API_KEY",
        "0000000000000000000000000000000000000000",
    );
    let out = run(&env, &["attach", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401"), "{err}");
    assert!(err.contains("journaled as pending"), "{err}");
    let last = env.chain(&id).pop().unwrap();
    assert!(
        matches!(
            last.record,
            offboard::journal::Record::TicketAttachFailed(_)
        ),
        "{last:?}"
    );

    // The real key appears in no output, no journal and no evidence.
    let journal = std::fs::read_to_string(env.journal_path(&id)).unwrap();
    for (what, s) in outputs
        .iter()
        .map(|o| ("output", o.as_str()))
        .chain([("journal", journal.as_str())])
        .chain(
            on_ticket
                .iter()
                .map(|(_, b)| ("evidence", std::str::from_utf8(b).unwrap_or(""))),
        )
    {
        assert!(!s.contains(&redmine.key), "the API key is in the {what}");
    }
    drop(server);
}
