//! `offboard remind` emailing through a real SMTP server: aiosmtpd (PyPI, pinned in
//! tests/servers/install-aiosmtpd.sh) on a free loopback port, requiring AUTH; the test reads
//! the delivered messages back from the server's mail dir.
//!
//! Without the venv the test is skipped with a message, except under CI (env `CI` set).

use serde_json::Value;

use crate::common;
use common::cli_env::CliEnv;
use common::notify_env::{T, at, four_departures, notified, remind, runbook, text};
use common::servers::RealServer;

const USER: &str = "offboard-mailer";
const PASSWORD: &str = "smtp-SECRET-pass-5521";

fn email_env(port: u16) -> CliEnv {
    let mut env = CliEnv::with_runbook(&runbook(&format!(
        "[notify.email]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"Offboarding <offboard@corp.example>\"\nuser = \"{USER}\"\npassword = {{ env = \"SMTP_PASSWORD\" }}\n"
    )));
    env.var("SMTP_PASSWORD", PASSWORD);
    env
}

fn summary(m: &Value) -> (String, String) {
    // Long header lines are folded: a line starting with white space continues the one before.
    let data = m["data"]
        .as_str()
        .unwrap()
        .replace("\r\n", "\n")
        .replace("\n ", " ")
        .replace("\n\t", " ");
    let subject = data
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or("")
        .to_string();
    (m["rcpt_tos"][0].as_str().unwrap().to_string(), subject)
}

#[test]
fn owners_first_escalation_after_48_hours_nothing_twice() {
    let Some(server) = RealServer::aiosmtpd(USER, PASSWORD) else {
        return;
    };
    let env = email_env(server.port);
    let [alice, bob, carol, dave] = four_departures(&env);

    let first = remind(&env, T, &[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let mail = server.delivered_mail();
    let got: Vec<(String, String)> = mail.iter().map(summary).collect();
    // One mail per person and departure: alice's laptop to facilities (overdue) and, 4 days
    // overdue, to her manager (escalation), after the owner's; bob's (overdue 6 h: no
    // escalation) and carol's (due soon) to facilities; nothing about dave.
    assert_eq!(got.len(), 4, "{got:#?}");
    let find = |to: &str, what: &str, who: &str| {
        got.iter()
            .position(|(t, s)| t == to && s.contains(what) && s.contains(who))
            .unwrap_or_else(|| panic!("no {what} to {to} about {who}: {got:#?}"))
    };
    let owner = find("facilities@corp.example", "Overdue", "alice@corp.example");
    let boss = find("boss@corp.example", "Escalation", "alice@corp.example");
    assert!(
        owner < boss,
        "the escalation went before the owner's reminder: {got:#?}"
    );
    find("facilities@corp.example", "Overdue", "bob@corp.example");
    find("facilities@corp.example", "due soon", "carol@corp.example");
    for m in &mail {
        assert_eq!(m["mail_from"], "offboard@corp.example");
        assert_eq!(m["auth"], true, "sent without AUTH");
        let data = m["data"].as_str().unwrap();
        assert!(data.contains("offboard confirm"), "{data}");
        assert!(
            !data.contains("dave@corp.example"),
            "dave's laptop was confirmed"
        );
    }
    let body = mail[boss]["data"].as_str().unwrap();
    assert!(
        body.contains("laptop") && body.contains("OVERDUE by 4d"),
        "{body}"
    );
    assert!(body.contains("owner facilities@corp.example"), "{body}");
    let n = notified(&env, &alice);
    assert_eq!(n.len(), 2);
    assert!(
        n.iter()
            .all(|e| e["channel"] == "email" && e["sent"] == true)
    );
    assert!(notified(&env, &dave).is_empty());

    // Run again an hour later: nothing new in the mailbox.
    let second = remind(&env, &at(1), &[]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert_eq!(
        server.delivered_mail().len(),
        4,
        "a reminder was sent twice"
    );

    // Two days later bob's laptop is 54 h overdue: his manager is told as well.
    let third = remind(&env, &at(48), &[]);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third));
    let got: Vec<(String, String)> = server
        .delivered_mail()
        .iter()
        .skip(4)
        .map(summary)
        .collect();
    assert!(
        got.iter().any(|(to, s)| to == "boss@corp.example"
            && s.contains("Escalation")
            && s.contains("bob@corp.example")),
        "{got:#?}"
    );
    for o in [&first, &second, &third] {
        assert!(!text(o).contains(PASSWORD));
    }
    for id in [&alice, &bob, &carol, &dave] {
        let j = std::fs::read_to_string(env.journal_path(id)).unwrap();
        assert!(!j.contains(PASSWORD));
    }
}

#[test]
fn a_wrong_password_fails_every_email_and_each_is_retried_once_it_is_right() {
    let Some(server) = RealServer::aiosmtpd(USER, PASSWORD) else {
        return;
    };
    let mut env = email_env(server.port);
    let alice = common::notify_env::start(&env, "alice@corp.example", -5 * 24, "boss@corp.example");
    env.var("SMTP_PASSWORD", "wrong-password");
    let first = remind(&env, T, &[]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    assert!(server.delivered_mail().is_empty());
    let n = notified(&env, &alice);
    assert_eq!(n.len(), 2, "{n:#?}");
    assert!(n.iter().all(|e| e["sent"] == false), "{n:#?}");
    assert!(!text(&first).contains("wrong-password"));
    env.var("SMTP_PASSWORD", PASSWORD);
    let second = remind(&env, &at(1), &[]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert_eq!(server.delivered_mail().len(), 2);
}

#[test]
fn the_drift_sweep_emails_drift_to_when_an_account_is_re_enabled() {
    let Some(server) = RealServer::aiosmtpd(USER, PASSWORD) else {
        return;
    };
    let mut env = CliEnv::with_runbook(&runbook(&format!(
        "[notify]\ndrift_to = [\"security@corp.example\"]\n[notify.email]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"offboard@corp.example\"\nuser = \"{USER}\"\npassword = {{ env = \"SMTP_PASSWORD\" }}\n",
        server.port
    )));
    env.var("SMTP_PASSWORD", PASSWORD);
    let alice = common::notify_env::start(&env, "alice@corp.example", -1, "boss@corp.example");
    // Someone re-enables alice's account behind the tool's back.
    let path = env.state().join("sandbox").join("idp.json");
    let mut idp: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    idp["users"]["alice@corp.example"]["status"] = "active".into();
    std::fs::write(&path, serde_json::to_vec(&idp).unwrap()).unwrap();
    let mut c = env.cmd(&["verify", "--all", "-r", "offboard.toml"]);
    c.env("OFFBOARD_NOW", at(1));
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains(&format!(
        "DRIFT: access came back for alice@corp.example ({alice})"
    )));
    let mail = server.delivered_mail();
    assert_eq!(mail.len(), 1, "{mail:#?}");
    let (to, subject) = summary(&mail[0]);
    assert_eq!(to, "security@corp.example");
    assert!(
        subject.contains("DRIFT") && subject.contains("alice@corp.example"),
        "{subject}"
    );
    let data = mail[0]["data"].as_str().unwrap();
    assert!(
        data.contains("idp-suspend") && data.contains(&format!("offboard resume {alice}")),
        "{data}"
    );
}

#[test]
fn starttls_and_implicit_tls_deliver_when_the_servers_ca_is_trusted_and_not_otherwise() {
    for mode in ["starttls", "tls"] {
        let Some(server) = RealServer::aiosmtpd_tls(USER, PASSWORD, mode) else {
            return;
        };
        let mut env = CliEnv::with_runbook(&runbook(&format!(
            "[notify.email]\nhost = \"localhost\"\nport = {}\ntls = \"{mode}\"\nfrom = \"offboard@corp.example\"\nuser = \"{USER}\"\npassword = {{ env = \"SMTP_PASSWORD\" }}\n",
            server.port
        )));
        env.var("SMTP_PASSWORD", PASSWORD);
        let alice = common::notify_env::start(&env, "alice@corp.example", -1, "boss@corp.example");
        // The server's certificate is signed by a CA the system does not know: refused, and
        // journaled as failed.
        let out = remind(&env, T, &[]);
        assert_eq!(out.status.code(), Some(1), "{mode}: {}", text(&out));
        assert!(server.delivered_mail().is_empty(), "{mode}");
        let n = notified(&env, &alice);
        assert_eq!(n.len(), 1, "{mode}: {n:#?}");
        assert_eq!(n[0]["sent"], false);
        assert!(
            n[0]["error"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("certificate"),
            "{mode}: {n:#?}"
        );
        // Trust it (rustls-native-certs reads SSL_CERT_FILE): delivered, over TLS, with AUTH.
        env.var("SSL_CERT_FILE", server.smtp_ca().to_str().unwrap());
        let out = remind(&env, &at(1), &[]);
        assert_eq!(out.status.code(), Some(0), "{mode}: {}", text(&out));
        let mail = server.delivered_mail();
        assert_eq!(mail.len(), 1, "{mode}");
        assert_eq!(mail[0]["auth"], true, "{mode}");
        assert_eq!(mail[0]["rcpt_tos"][0], "facilities@corp.example");
    }
}
