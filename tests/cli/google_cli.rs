//! The `google` kind through the binary: `offboard plan` shows every request, `offboard start`
//! runs a Workspace runbook against a fake Google (Admin SDK, Data Transfer, Gmail) and a fake
//! token endpoint: the backup codes go before the suspension (`after`), the Drive transfer is
//! requested once and reported pending, legal hold keeps `delete_user` from running, and the
//! service account's private key and the tokens are written nowhere.

use serde_json::Value;

use crate::common::cli_env::{CliEnv, fake_runtime, text, walk};
use crate::common::fake_google::{ADMIN, FakeGoogle};

fn runbook(base: &str) -> String {
    format!(
        r#"[runbook]
name = "Workspace leaver"
legal_hold = true

[inputs]
manager = {{ prompt = "Manager's email", required = true }}

[systems.workspace]
kind = "google"
base_url = "{base}"
admin = "{ADMIN}"
service_account = {{ file = "sa.json" }}

[[step]]
id = "gw-codes"
lane = "it"
system = "workspace"
action = "invalidate_backup_codes"

[[step]]
id = "gw-suspend"
lane = "it"
system = "workspace"
action = "suspend_user"
after = ["gw-codes"]

[[step]]
id = "gw-drive"
lane = "it"
system = "workspace"
action = "transfer_drive"
phase = "handoff"
params = {{ to = "{{{{ user.manager }}}}" }}

[[step]]
id = "gw-delete"
lane = "it"
system = "workspace"
action = "delete_user"
phase = "close"
after = ["gw-drive"]
"#
    )
}

#[test]
fn start_suspends_requests_the_drive_transfer_once_and_legal_hold_blocks_the_delete() {
    let rt = fake_runtime();
    let fake = rt.block_on(FakeGoogle::start());
    let user = "alice+ops@corp.test";
    let id = fake.add_user(user);
    fake.add_user("boss@corp.test");
    fake.edit(&id, |u| u.backup_codes = vec!["11223344".into()]);

    let env = CliEnv::new();
    let key = env.path().join("sa.json");
    std::fs::write(&key, &fake.key_json).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    env.write_runbook(&runbook(&fake.server.base_url));
    let check = env.run(&["runbook", "check", "offboard.toml"]);
    assert!(check.status.success(), "{}", text(&check));

    let set = ["--set", "manager=boss@corp.test"];
    let plan = env.run(&[&["plan", user, "-r", "offboard.toml"][..], &set].concat());
    let shown = text(&plan);
    for line in [
        "/admin/directory/v1/users/alice%2Bops%40corp.test",
        "/verificationCodes/invalidate",
        "/admin/datatransfer/v1/transfers",
        "/admin/directory/v1/users/boss%40corp.test",
    ] {
        assert!(shown.contains(line), "{line} not in the plan:\n{shown}");
    }
    assert!(fake.requests().is_empty(), "plan reached Google");
    assert!(fake.token.grants().is_empty(), "plan asked for a token");

    let out = env.run(&[&CliEnv::start_args(user)[..], &set].concat());
    let all = text(&out);
    let u = fake.user(&id).expect("legal hold let the delete through");
    assert!(u.suspended, "{all}");
    assert!(u.backup_codes.is_empty(), "{all}");
    assert_eq!(fake.transfers().len(), 1, "{all}");
    // The codes were invalidated before the suspension.
    let lines = fake.lines();
    let pos = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap();
    assert!(
        pos("/verificationCodes/invalidate")
            < pos(&format!("PATCH /admin/directory/v1/users/{id}"))
    );
    assert!(!lines.iter().any(|l| l.starts_with("DELETE")), "{lines:?}");

    let dep = env.departure_of(user).unwrap();
    let statuses = env.step_statuses(&dep);
    for (step, want) in [
        ("gw-codes", "done"),
        ("gw-suspend", "done"),
        ("gw-delete", "skipped"),
    ] {
        assert!(
            statuses.contains(&(step.into(), want.into())),
            "{step} should be {want}: {statuses:?}\n{all}"
        );
    }
    assert!(
        statuses.contains(&("gw-drive".into(), "unconfirmed".into())),
        "a transfer Google has not completed is not done: {statuses:?}"
    );
    assert!(all.contains("pending (new, requested at"), "{all}");

    // Google finishes; `resume` finds the same transfer completed and starts no other.
    let tid = fake.transfers()[0]["id"].as_str().unwrap().to_string();
    fake.set_transfer_status(&tid, "completed");
    let resumed = env.run(&["resume", &dep]);
    let all = format!("{all}\n{}", text(&resumed));
    let statuses = env.step_statuses(&dep);
    assert!(
        statuses.contains(&("gw-drive".into(), "done".into())),
        "{statuses:?}\n{all}"
    );
    assert_eq!(fake.transfers().len(), 1, "{all}");
    assert!(
        fake.user(&id).is_some(),
        "legal hold let the delete through on resume"
    );
    let evidence = std::fs::read_to_string(env.evidence_path(&dep)).unwrap();
    assert!(evidence.contains(&id), "the evidence names the user id");
    let doc: Value = serde_json::from_str(&evidence).unwrap();
    let blocked = doc["predicate"]["legal_hold"]["blocked"].to_string();
    assert!(blocked.contains("gw-delete"), "{blocked}");
    env.assert_evidence_verifies(&dep);

    // No secret anywhere but the key file itself: not the private key, not a token.
    let pem_line = fake.key_json.split("\\n").nth(1).unwrap().to_string();
    let tokens: Vec<String> = fake
        .token
        .grants()
        .into_iter()
        .map(|g| g.access_token)
        .collect();
    assert!(!tokens.is_empty());
    for f in walk(env.path()) {
        if f == key {
            continue;
        }
        let Ok(body) = std::fs::read_to_string(&f) else {
            continue;
        };
        assert!(!body.contains(&pem_line), "{} holds the key", f.display());
        for t in &tokens {
            assert!(!body.contains(t.as_str()), "{} holds a token", f.display());
        }
    }
    assert!(!all.contains(&pem_line));
    fake.assert_contract();
}
