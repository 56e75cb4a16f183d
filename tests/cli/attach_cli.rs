//! `offboard attach` and the automatic attach, through the binary, against the fake Redmine
//! (tests/common/fake_redmine.rs): a connection that breaks during the attach leaves the
//! departure intact and the attach journaled as pending, and a later `offboard attach`
//! completes it (and closes the ticket, the departure being complete); `--no-attach`; a
//! departure with no ticket or no desk; a ticket id the desk cannot take; and a whole departure
//! on a HaloPSA ticket (tests/common/fake_halo.rs).

use offboard::journal::Record;

use crate::common;

use common::cli_env::{CliEnv, fake_runtime, text};
use common::fake_kit::Fault;
use common::fake_redmine::FakeRedmine;

const KEY: &str = "rk-SECRET-cli-5e1d0b";
const USER: &str = "carol@corp.example";

fn runbook(base_url: &str) -> String {
    format!(
        r#"
[runbook]
name = "Ticketed leaver"

[systems.idp]
kind = "sandbox"

[ticketing]
kind = "redmine"
base_url = "{base_url}"
api_key = {{ env = "REDMINE_API_KEY" }}
close_status = "Closed"

[[step]]
id = "idp-suspend"
lane = "it"
system = "idp"
action = "suspend_user"
"#
    )
}

fn env_for(fake: &FakeRedmine) -> CliEnv {
    let mut env = CliEnv::with_runbook(&runbook(&fake.server.base_url));
    env.var("REDMINE_API_KEY", KEY);
    env
}

fn kinds(env: &CliEnv, id: &str) -> Vec<String> {
    env.chain(id)
        .iter()
        .map(|e| {
            serde_json::to_value(e).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn assert_clean(out: &std::process::Output) {
    let t = text(out);
    assert!(!t.contains(KEY) && !t.contains("rk-SECRET"), "{t}");
}

#[test]
fn a_broken_connection_during_attach_leaves_it_pending_and_a_later_attach_completes_it() {
    let rt = fake_runtime();
    let fake = rt.block_on(FakeRedmine::start(KEY));
    let ticket = fake.add_issue();
    // The first upload's connection breaks before any answer: a POST is not sent again.
    fake.server
        .fail_next_on("POST", "/uploads.json", Fault::Reset);
    let env = env_for(&fake);
    let mut args = CliEnv::start_args(USER);
    args.extend(["--ticket", &ticket]);
    let out = env.run(&args);
    assert_clean(&out);
    // The departure itself is done: the failed attach does not change how it ended.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = env.departure_of(USER).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "could not attach evidence revision 1 to redmine ticket {ticket}"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "journaled as pending; retry with `offboard attach {id}`"
        )),
        "{err}"
    );
    let last = env.chain(&id).pop().unwrap();
    let Record::TicketAttachFailed(f) = &last.record else {
        panic!("{last:?}")
    };
    assert_eq!((f.revision, f.desk.ticket.as_str()), (1, ticket.as_str()));
    assert!(fake.issue(&ticket).attachments.is_empty());
    assert_eq!(
        fake.issue(&ticket).status_id,
        1,
        "not closed by a failed attach"
    );
    // Intact: the evidence verifies, and status says the attach is pending.
    env.assert_evidence_verifies(&id);
    let out = env.run(&["status", &id]);
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.contains(&format!(
            "attaching evidence revision 1 to redmine ticket {ticket} is pending"
        )),
        "{}",
        text(&out)
    );

    // The retry: everything goes up, the note with it, and the ticket is closed.
    let out = env.run(&["attach", &id]);
    assert_clean(&out);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let issue = fake.issue(&ticket);
    let names: Vec<&str> = issue
        .attachments
        .iter()
        .map(|a| a.filename.as_str())
        .collect();
    assert_eq!(
        names,
        [
            format!("{id}-r1.json"),
            format!("{id}-r1.json.sig"),
            "allowed_signers".to_string(),
            format!("{id}-r1.html"),
            format!("{id}-r1.VERIFY.txt"),
        ]
    );
    assert_eq!(
        issue.attachments[0].bytes,
        std::fs::read(env.evidence_path(&id)).unwrap()
    );
    assert_eq!(issue.journals.len(), 1);
    assert!(issue.journals[0].private_notes);
    assert_eq!(issue.status_id, 5);
    let k = kinds(&env, &id);
    assert_eq!(
        k[k.len() - 3..],
        ["ticket_attach_failed", "ticket_attached", "ticket_closed"]
    );
    let out = env.run(&["status", &id]);
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.contains(&format!(
            "Ticket: evidence revision 1 on redmine ticket {ticket}"
        )) && status.contains("set to \"Closed\""),
        "{}",
        text(&out)
    );
    assert!(!status.contains("pending"), "{status}");

    // Once more: nothing new, and the ticket is not closed twice.
    let puts = fake.requests().iter().filter(|r| r.method == "PUT").count();
    let out = env.run(&["--json", "attach", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["uploaded"], 0);
    assert_eq!(v["note_added"], false);
    assert_eq!(v["closed"], serde_json::Value::Null);
    assert_eq!(
        fake.requests().iter().filter(|r| r.method == "PUT").count(),
        puts
    );
    // The journal events after the last seal (attach records) do not stop the departure from
    // being driven: verify re-signs and attaches its own revision.
    let out = env.run(&["verify", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let names: Vec<String> = fake
        .issue(&ticket)
        .attachments
        .iter()
        .map(|a| a.filename.clone())
        .collect();
    assert!(names.contains(&format!("{id}-r2.json")), "{names:?}");
    env.assert_evidence_verifies(&id);
    // Revision 2 records where revision 1 went: the desk, the ticket, each attachment id.
    let evidence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.evidence_path(&id)).unwrap()).unwrap();
    let attached: Vec<&serde_json::Value> = evidence["predicate"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "ticket_attached")
        .collect();
    assert_eq!(attached.len(), 2, "{attached:?}");
    assert_eq!(attached[0]["data"]["ticket"], ticket.as_str());
    assert_eq!(attached[0]["data"]["revision"], 1);
    assert_eq!(
        attached[0]["data"]["files"][0]["attachment_id"],
        issue.attachments[0].id.to_string()
    );
    fake.assert_contract();
}

#[test]
fn no_attach_no_ticket_and_no_desk() {
    let rt = fake_runtime();
    let fake = rt.block_on(FakeRedmine::start(KEY));
    let ticket = fake.add_issue();
    let env = env_for(&fake);

    // --no-attach: the desk is not asked anything.
    let mut args = CliEnv::start_args(USER);
    args.extend(["--ticket", &ticket, "--no-attach"]);
    let out = env.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(fake.requests().is_empty());
    let id = env.departure_of(USER).unwrap();
    assert!(!kinds(&env, &id).iter().any(|k| k.starts_with("ticket_")));

    // A ticket id that is not a Redmine issue number: refused before anything is sent.
    let out = env.run(&["attach", &id, "--ticket", "#12"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("digits only"),
        "{}",
        text(&out)
    );
    assert!(fake.requests().is_empty());

    // No ticket at all: a warning naming the command, the departure as it was.
    let env2 = env_for(&fake);
    let out = env2.run(&CliEnv::start_args("dave@corp.example"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id2 = env2.departure_of("dave@corp.example").unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "this departure has no ticket. Attach it with `offboard attach {id2} --ticket ID`"
        )),
        "{}",
        text(&out)
    );
    let out = env2.run(&["attach", &id2]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(fake.requests().is_empty());

    // No [ticketing] when it started: `attach` says so, and `-r` names a runbook that has one.
    let plain = CliEnv::with_runbook(
        "[runbook]\nname = \"Plain\"\n[systems.idp]\nkind = \"sandbox\"\n[[step]]\nid = \"s\"\nlane = \"it\"\nsystem = \"idp\"\naction = \"suspend_user\"\n",
    );
    let mut a = CliEnv::start_args("erin@corp.example");
    a.extend(["--ticket", &ticket]);
    let out = plain.run(&a);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id3 = plain.departure_of("erin@corp.example").unwrap();
    let out = plain.run(&["attach", &id3]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no [ticketing] table"),
        "{}",
        text(&out)
    );
    std::fs::write(
        plain.path().join("desk.toml"),
        runbook(&fake.server.base_url),
    )
    .unwrap();
    let mut plain = plain;
    plain.var("REDMINE_API_KEY", KEY);
    let out = plain.run(&["attach", &id3, "-r", "desk.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(fake.issue(&ticket).attachments.len(), 5);
}

#[test]
fn attach_help_teaches() {
    let env = CliEnv::new();
    let out = env.run(&["attach", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("offboard attach alice@corp.example --ticket 4711"),
        "{help}"
    );
    assert!(help.contains("journaled as pending"), "{help}");
    for cmd in ["start", "resume", "confirm", "verify"] {
        let out = env.run(&[cmd, "--help"]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("--no-attach"),
            "{cmd}"
        );
    }
}

/// The same through the binary with HaloPSA: `start --ticket` leaves the files and a private
/// note on the ticket, closes it (status id 9), and neither secret nor token is shown.
#[test]
fn a_departure_on_a_halo_ticket() {
    use common::fake_halo::FakeHalo;
    const SECRET: &str = "hs-SECRET-cli-77c1";
    let rt = fake_runtime();
    let fake = rt.block_on(FakeHalo::start("offboard-cli", SECRET, None));
    let ticket = fake.add_ticket();
    let mut env = CliEnv::with_runbook(&format!(
        r#"
[runbook]
name = "Halo leaver"

[systems.idp]
kind = "sandbox"

[ticketing]
kind = "halo"
base_url = "{}"
client_id = "offboard-cli"
client_secret = {{ env = "HALO_CLIENT_SECRET" }}
close_status = 9

[[step]]
id = "idp-suspend"
lane = "it"
system = "idp"
action = "suspend_user"
"#,
        fake.server.base_url
    ));
    env.var("HALO_CLIENT_SECRET", SECRET);
    let out = env.run(&["runbook", "check", "offboard.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut args = CliEnv::start_args(USER);
    args.extend(["--ticket", &ticket]);
    let out = env.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(!t.contains(SECRET) && !t.contains("halo-at-"), "{t}");
    let id = env.departure_of(USER).unwrap();
    let halo = fake.ticket(&ticket);
    assert_eq!(halo.attachments.len(), 5);
    assert_eq!(
        halo.attachments[0].bytes,
        std::fs::read(env.evidence_path(&id)).unwrap()
    );
    assert_eq!(halo.actions.len(), 1);
    assert!(halo.actions[0].hidden_from_user);
    assert!(halo.actions[0].note.contains(&format!("departure {id}")));
    assert_eq!(halo.status_id, 9);
    let journal = std::fs::read_to_string(env.journal_path(&id)).unwrap();
    assert!(!journal.contains(SECRET) && !journal.contains("halo-at-"));
    fake.assert_contract();
}
