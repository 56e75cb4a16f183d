//! `--state` / `OFFBOARD_STATE` without a database: how the URL is taken (a password in it is
//! refused and never echoed, TLS needs its CA), and which commands never connect. The database
//! itself is exercised in tests/real/postgres_real.rs.

use crate::common::cli_env::{CliEnv, text};

const RUNBOOK: &str = include_str!("../../runbooks/demo.toml");

#[test]
fn a_password_in_the_state_url_is_refused_with_exit_2_and_never_printed() {
    let env = CliEnv::with_runbook(RUNBOOK);
    for url in [
        "postgres://tech:hunter2-secret@127.0.0.1:5432/offboard",
        "postgres://tech@127.0.0.1:5432/offboard?password=hunter2-secret",
    ] {
        let out = env.run(&["--state", url, "status"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let t = text(&out);
        assert!(t.contains("the URL carries a password"), "{t}");
        assert!(t.contains("password_env"), "{t}");
        assert!(!t.contains("hunter2-secret"), "{t}");
    }
}

#[test]
fn a_database_that_cannot_be_reached_fails_the_command_naming_it_without_secrets() {
    let mut env = CliEnv::with_runbook(RUNBOOK);
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.var(
        "OFFBOARD_STATE",
        &format!("postgres://tech@127.0.0.1:{port}/offboard?password_env=DB_PW"),
    );
    env.var("DB_PW", "pw-9d8c7b6a");
    let out = env.run(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(&format!(
            "connecting to postgres://tech@127.0.0.1:{port}/offboard"
        )),
        "{t}"
    );
    assert!(!t.contains("pw-9d8c7b6a"), "{t}");
    // Nothing was started locally instead.
    assert!(!env.state().join("departures").exists());
    // Commands that read no departure do not connect.
    let out = env.run(&["runbook", "check", "offboard.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // `state schema` prints the shipped SQL (append-only triggers, the two roles).
    let out = env.run(&["state", "schema"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let sql = String::from_utf8_lossy(&out.stdout);
    for want in [
        "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON offboard.events",
        "UNIQUE (departure, seq)",
        "CREATE ROLE offboard_tool NOLOGIN",
        "GRANT SELECT ON offboard.departures, offboard.events, offboard.evidence, offboard.holders\n    TO offboard_auditor",
    ] {
        assert!(sql.contains(want), "{want}");
    }
}

#[test]
fn verify_full_without_a_ca_and_unsupported_sslmodes_are_usage_errors() {
    let env = CliEnv::with_runbook(RUNBOOK);
    for (url, want) in [
        ("postgres://tech@db.corp.example/offboard", "needs the CA"),
        (
            "postgres://tech@db.corp.example/offboard?sslmode=require",
            "sslmode=require is not supported",
        ),
        ("mysql://tech@db/offboard", "only postgres://"),
    ] {
        let out = env.run(&["--state", url, "status"]);
        assert_eq!(out.status.code(), Some(2), "{url}: {}", text(&out));
        assert!(text(&out).contains(want), "{url}: {}", text(&out));
    }
}
