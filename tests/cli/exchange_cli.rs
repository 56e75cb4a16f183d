//! An Exchange Online system through the binary, against the admin API and token fakes: in an
//! involuntary departure `cancel_meetings` (it emails every attendee) waits until every cut
//! step has been checked, and `plan` says it will.

use serde_json::Value;

use crate::common::cli_env::{CliEnv, fake_runtime, text};
use crate::common::fake_exchange::FakeExchange;
use crate::common::fake_token::FakeTokenEndpoint;

const TENANT: &str = "contoso.onmicrosoft.com";
const CLIENT: &str = "3c9a7f10-offboard-exo";
const SECRET: &str = "exo-client-secret-Q7w9x";
const TOKEN: &str = "exo-access-token-Lm42-very-long";

fn runbook(exo: &str, login: &str) -> String {
    format!(
        r#"
[runbook]
name = "Contoso (MSP client) leaver"

[systems.exo]
kind = "exchange"
base_url = "{exo}"
tenant_id = "{TENANT}"
client_id = "{CLIENT}"
client_secret = {{ env = "EXO_CLIENT_SECRET" }}
login_url = "{login}"

[[step]]
id = "exo-meetings"
lane = "it"
system = "exo"
action = "cancel_meetings"
params = {{ days = 365 }}

[[step]]
id = "exo-forwarding"
lane = "it"
system = "exo"
action = "disable_forwarding"

[[step]]
id = "exo-devices"
lane = "it"
system = "exo"
action = "remove_mobile_devices"

[[step]]
id = "exo-shared"
lane = "it"
system = "exo"
action = "convert_to_shared"
phase = "close"
"#
    )
}

#[test]
fn involuntary_holds_cancel_meetings_until_the_cut_is_checked() {
    let rt = fake_runtime();
    let login = rt.block_on(FakeTokenEndpoint::start_for_tenant(
        TENANT, CLIENT, SECRET, TOKEN,
    ));
    login.expect_scope("https://outlook.office365.com/.default");
    let exo = rt.block_on(FakeExchange::start(TENANT, TOKEN));
    let user = "alice@contoso.com";
    exo.add_mailbox(user);
    exo.update(user, |m| {
        m.forwarding_smtp = Some("smtp:alice@gmail.example".into())
    });
    exo.add_device(user, "Alice's iPhone");
    exo.add_meeting(user, "Weekly sync", 2);
    let mut env = CliEnv::new();
    env.var("EXO_CLIENT_SECRET", SECRET);
    env.write_runbook(&runbook(&exo.server.base_url, &login.login_url()));

    let check = env.run(&["runbook", "check", "offboard.toml"]);
    assert!(check.status.success(), "{}", text(&check));
    let plan = env.run(&["plan", user, "-r", "offboard.toml", "--type", "involuntary"]);
    let shown = text(&plan);
    assert!(plan.status.success(), "{shown}");
    for needle in [
        "held back until access is cut",
        "InvokeCommand Remove-CalendarEvents -Identity {id} -CancelOrganizedMeetings -QueryWindowInDays 365 -Confirm:$false",
        "InvokeCommand Get-Mailbox -Identity alice@contoso.com",
    ] {
        assert!(shown.contains(needle), "{needle:?} missing from:\n{shown}");
    }
    assert!(exo.requests().is_empty(), "plan sent a request");

    let mut args = CliEnv::start_args(user);
    args.extend(["--type", "involuntary"]);
    let out = env.run(&args);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    let dep = env.departure_of(user).unwrap();
    let statuses = env.step_statuses(&dep);
    for step in [
        "exo-meetings",
        "exo-forwarding",
        "exo-devices",
        "exo-shared",
    ] {
        assert!(
            statuses.contains(&(step.to_string(), "done".to_string())),
            "{step}: {statuses:?}\n{all}"
        );
    }

    // The meetings were cancelled only after the other cut steps were applied and checked,
    // though the runbook lists them first.
    let events: Vec<Value> = std::fs::read_to_string(env.journal_path(&dep))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pos = |kind: &str, step: &str| {
        events
            .iter()
            .position(|e| e["kind"] == kind && e["step"] == step)
            .unwrap_or_else(|| panic!("no {kind} for {step}"))
    };
    let meetings = pos("apply_started", "exo-meetings");
    for s in ["exo-forwarding", "exo-devices"] {
        assert!(
            pos("checked", s) < meetings,
            "{s} checked after the meetings were cancelled"
        );
    }
    assert!(pos("apply_started", "exo-shared") > pos("checked", "exo-meetings"));
    let cancel = exo
        .calls()
        .iter()
        .position(|(c, p)| c == "Remove-CalendarEvents" && p["Confirm"] == false)
        .expect("the meetings were cancelled");
    let last_device_read = exo
        .calls()
        .iter()
        .rposition(|(c, _)| c == "Get-MobileDevice")
        .unwrap();
    assert!(last_device_read < cancel, "{:?}", exo.cmdlets());

    // The tenant changed as the steps say.
    let m = exo.mailbox(user).unwrap();
    assert_eq!(m.forwarding_smtp, None);
    assert_eq!(m.type_details, "SharedMailbox");
    assert!(m.meetings.is_empty());
    assert_eq!(exo.cancellations_sent(), 1);
    assert!(exo.devices_of(user).is_empty());
    exo.assert_contract();
    // The evidence names the mailbox by its Entra object id; the secret is nowhere.
    let evidence = std::fs::read_to_string(env.evidence_path(&dep)).unwrap();
    assert!(
        evidence.contains(&m.object_id),
        "the evidence names the mailbox id"
    );
    for f in crate::common::cli_env::walk(&env.state()) {
        let bytes = std::fs::read(&f).unwrap();
        let s = String::from_utf8_lossy(&bytes);
        assert!(
            !s.contains(SECRET) && !s.contains(TOKEN),
            "{} holds a secret",
            f.display()
        );
    }
}
