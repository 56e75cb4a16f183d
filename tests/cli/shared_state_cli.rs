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

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_state_table_with_a_password_in_its_url_is_refused_with_exit_2_and_never_printed() {
    let bad = format!(
        "{RUNBOOK}\n[state]\nurl = \"postgres://tech:hunter2-secret@127.0.0.1:5432/offboard\"\n"
    );
    let env = CliEnv::with_runbook(&bad);
    // A command that takes no runbook reads ./offboard.toml's [state]; `runbook check` too.
    for args in [&["status"][..], &["runbook", "check", "offboard.toml"]] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let t = text(&out);
        assert!(
            t.contains("the `url` in [state] carries a password"),
            "{args:?}: {t}"
        );
        assert!(t.contains("offboard.toml:"), "{args:?}: {t}");
        assert!(t.contains("password = { env ="), "{args:?}: {t}");
        assert!(!t.contains("hunter2-secret"), "{args:?}: {t}");
    }
    assert!(!env.state().join("departures").exists());
    // An inline password is refused the same way.
    let inline = format!(
        "{RUNBOOK}\n[state]\nurl = \"postgres://tech@127.0.0.1:5432/offboard\"\npassword = \"hunter2-secret\"\n"
    );
    env.write_runbook(&inline);
    let out = env.run(&["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("the `password` of [state] is not a reference"),
        "{t}"
    );
    assert!(!t.contains("hunter2-secret"), "{t}");
    // A runbook that is not TOML cannot say where departures are: not guessed, reported as
    // `runbook check` reports it.
    env.write_runbook("[runbook\nname = \"t\"\n");
    let out = env.run(&["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("invalid TOML"), "{}", text(&out));
    assert!(text(&out).contains("offboard.toml:1:"), "{}", text(&out));
}

#[test]
fn the_state_table_selects_the_database_for_every_command_and_the_flag_wins() {
    let table_port = closed_port();
    let flag_port = closed_port();
    let dir = tempfile::tempdir().unwrap();
    let runbook = dir.path().join("team.toml");
    std::fs::write(
        &runbook,
        format!(
            "{RUNBOOK}\n[state]\nurl = \"postgres://tech@127.0.0.1:{table_port}/offboard?sslmode=disable\"\npassword = {{ env = \"TEAM_DB_PW\" }}\n"
        ),
    )
    .unwrap();
    let mut env = CliEnv::new();
    env.var("OFFBOARD_RUNBOOK", runbook.to_str().unwrap());
    env.var("TEAM_DB_PW", "pw-5e4d3c2b");
    let table = format!("connecting to postgres://tech@127.0.0.1:{table_port}/offboard");
    // Commands with no runbook of their own, and one naming it with -r.
    let rb = runbook.to_str().unwrap();
    for args in [
        &["status"][..],
        &["confirm", "alice@example.com", "badge"],
        &["remind", "--dry-run"],
        &["evidence", "export", "alice@example.com", "--out", "x"],
        &["plan", "alice@example.com", "-r", rb],
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        let t = text(&out);
        assert!(t.contains(&table), "{args:?}: {t}");
        assert!(!t.contains("pw-5e4d3c2b"), "{args:?}: {t}");
    }
    assert!(!env.state().join("departures").exists());
    // --state (and OFFBOARD_STATE) come before the table.
    let flag = format!("postgres://tech@127.0.0.1:{flag_port}/offboard");
    let out = env.run(&["--state", &flag, "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains(&format!("connecting to {flag}")), "{t}");
    assert!(!t.contains(&table), "{t}");
    env.var("OFFBOARD_STATE", &flag);
    let t = text(&env.run(&["status"]));
    assert!(t.contains(&format!("connecting to {flag}")), "{t}");
    // The password's reference must resolve: an unset variable is a usage error naming it.
    let mut env = CliEnv::new();
    env.var("OFFBOARD_RUNBOOK", rb);
    let out = env.run(&["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("TEAM_DB_PW"), "{}", text(&out));
    // Without a [state] table, the local state dir as before.
    let mut env = CliEnv::with_runbook(RUNBOOK);
    env.var("TEAM_DB_PW", "x");
    let out = env.run(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
