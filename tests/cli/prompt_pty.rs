//! The interactive checklist, answered through a real pseudo-terminal as a person would.

use std::time::Duration;

use expectrl::{Eof, Session};

const RUNBOOK: &str = r#"
[runbook]
name = "PTY leaver"

[inputs]
asset_tag = { prompt = "Laptop asset tag", required = true }

[systems.idp]
kind = "sandbox"
latency_ms = 10

[[step]]
id = "idp-suspend"
lane = "it"
system = "idp"
action = "suspend_user"

[[step]]
id = "laptop"
lane = "facilities"
manual = "Collect laptop {{ user.asset_tag }}"
fields = ["tracking_number"]
owner = "facilities@corp.example"

[[step]]
id = "payroll"
lane = "finance"
manual = "Stop payroll"
phase = "close"
"#;

const DOWN: &str = "\x1b[B";

/// `offboard start alice@corp.example` on the test runbook, in a PTY, with a fresh state dir.
fn spawn_start(extra: &[&str]) -> (tempfile::TempDir, std::path::PathBuf, Session) {
    spawn_start_with(RUNBOOK, extra)
}

fn spawn_start_with(
    runbook_text: &str,
    extra: &[&str],
) -> (tempfile::TempDir, std::path::PathBuf, Session) {
    spawn_start_as("alice@corp.example", runbook_text, extra)
}

fn spawn_start_as(
    user: &str,
    runbook_text: &str,
    extra: &[&str],
) -> (tempfile::TempDir, std::path::PathBuf, Session) {
    let dir = tempfile::tempdir().unwrap();
    let runbook = dir.path().join("offboard.toml");
    std::fs::write(&runbook, runbook_text).unwrap();
    let state = dir.path().join("state");
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("offboard"));
    cmd.arg("start")
        .arg(user)
        .arg("-r")
        .arg(&runbook)
        .args(extra)
        .env("OFFBOARD_STATE_DIR", &state)
        .env("OFFBOARD_ACTOR", "pty-tester@corp.example")
        .env("NO_COLOR", "1")
        .env("TERM", "xterm");
    let mut s = Session::spawn(cmd).expect("spawn in a PTY");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    (dir, state, s)
}

/// Wait for the end and return the exit code.
fn exit_code(s: &mut Session) -> i32 {
    s.expect(Eof).unwrap();
    match s.get_process_mut().wait().unwrap() {
        expectrl::WaitStatus::Exited(_, code) => code,
        other => panic!("did not exit normally: {other:?}"),
    }
}

/// The journal of the only departure in the state dir.
fn journal_of(state: &std::path::Path) -> Vec<u8> {
    let departures = state.join("departures");
    let id = std::fs::read_dir(&departures)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    std::fs::read(departures.join(id).join("journal.jsonl")).unwrap()
}

#[test]
fn a_person_answers_the_checklist_at_a_terminal() {
    let (_dir, state, mut s) = spawn_start(&[]);

    // A missing required input is asked for; an empty answer is refused with a reason.
    s.expect("Laptop asset tag").unwrap();
    s.send("\r").unwrap();
    s.expect("required: the runbook needs this value").unwrap();
    s.send("LT-7\r").unwrap();

    // The automated step runs, then the first manual step is shown with its instruction.
    s.expect("Manual step 1/2").unwrap();
    s.expect("Collect laptop LT-7").unwrap();
    s.expect("Status").unwrap();
    s.send("\r").unwrap(); // done (the default)
    s.expect("tracking_number").unwrap();
    s.send("\r").unwrap();
    s.expect("required: the step records this for the evidence")
        .unwrap();
    s.send("1Z999\r").unwrap();
    s.expect("Note (optional)").unwrap();
    s.send("returned by courier\r").unwrap();

    s.expect("Manual step 2/2").unwrap();
    s.expect("Status").unwrap();
    s.send(DOWN).unwrap();
    s.send(DOWN).unwrap();
    s.send("\r").unwrap(); // not applicable
    s.expect("Why is it not applicable?").unwrap();
    s.send("\r").unwrap();
    s.expect("a reason is required").unwrap();
    s.send("contractor, invoiced\r").unwrap();

    s.expect("Complete").unwrap();
    assert_eq!(exit_code(&mut s), 0);

    // What the person answered is in the journal.
    let journal = String::from_utf8(journal_of(&state)).unwrap();
    let answered: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "answered")
        .collect();
    assert_eq!(answered.len(), 2, "{journal}");
    assert_eq!(answered[0]["step"], "laptop");
    assert_eq!(answered[0]["data"]["answer"], "done");
    assert_eq!(answered[0]["data"]["fields"]["tracking_number"], "1Z999");
    assert_eq!(answered[0]["data"]["note"], "returned by courier");
    assert_eq!(answered[0]["actor"], "pty-tester@corp.example");
    assert_eq!(answered[1]["step"], "payroll");
    assert_eq!(answered[1]["data"]["answer"], "not_applicable");
    assert_eq!(answered[1]["data"]["note"], "contractor, invoiced");
    assert!(journal.contains("\"asset_tag\":\"LT-7\""));
}

#[test]
fn ctrl_c_at_the_checklist_stops_cleanly_and_says_how_to_resume() {
    // A long instruction makes the question take a while to reach the screen, as on a slow SSH
    // link: the tool is still writing it (the PTY buffer is full until the test reads) when
    // Ctrl-C arrives, before the prompt has started reading keys. That is the window where
    // Ctrl-C used to become a signal the blocked prompt never saw, and the run hung.
    let long =
        "Collect laptop {{ user.asset_tag }}: ".to_string() + &"check the bag. ".repeat(20_000);
    let runbook = RUNBOOK.replace("Collect laptop {{ user.asset_tag }}", &long);
    let (_dir, state, mut s) = spawn_start_with(&runbook, &["--set", "asset_tag=LT-8"]);
    s.expect("Manual step 1/2").unwrap();
    s.send("\x03").unwrap();
    s.expect("offboard resume").unwrap();
    assert_eq!(exit_code(&mut s), 130);
    let journal = journal_of(&state);
    let events = offboard::journal::parse_chain(&journal).unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e.record, offboard::journal::Record::Interrupted { .. }))
    );
    // The automated step was done before the prompt, and stays done.
    let state = offboard::departure::DepartureState::replay(&events).unwrap();
    assert_eq!(
        state.steps["idp-suspend"].status(),
        offboard::departure::Status::Done
    );
}

#[test]
fn a_stop_signal_from_elsewhere_ends_a_waiting_question() {
    // `kill <pid>` (a supervisor, an MSP's wrapper with a time limit) while the checklist waits
    // for a key: the run must stop now, not once someone answers.
    // As in the Ctrl-C test, a long instruction keeps the tool writing the question (the PTY is
    // full until the test reads) when the signal lands: the signal is handled before the prompt
    // starts waiting for a key, so nothing interrupts that wait unless the tool makes it.
    let long =
        "Collect laptop {{ user.asset_tag }}: ".to_string() + &"check the bag. ".repeat(20_000);
    let runbook = RUNBOOK.replace("Collect laptop {{ user.asset_tag }}", &long);
    let (_dir, state, mut s) = spawn_start_with(&runbook, &["--set", "asset_tag=LT-9"]);
    s.expect("Manual step 1/2").unwrap();
    let pid = s.get_process().pid().as_raw();
    // SAFETY: signalling the child this test spawned and has not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    s.expect("offboard resume").unwrap();
    assert_eq!(exit_code(&mut s), 130);
    let events = offboard::journal::parse_chain(&journal_of(&state)).unwrap();
    let reasons: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.record {
            offboard::journal::Record::Interrupted { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, ["SIGTERM"]);
    // Nothing was answered on the operator's behalf.
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.record, offboard::journal::Record::Answered { .. }))
    );
}

/// A user id and a ticket are typed by whoever starts the run (or pasted from a ticket): a line
/// break in one must not forge a line on screen, and a right-to-left override must not reorder
/// what the operator reads. Both are shown escaped wherever they appear: the run's header, the
/// progress lines, the checklist's instruction and the summary.
#[test]
fn a_user_id_or_ticket_with_control_characters_is_shown_escaped() {
    let runbook = RUNBOOK.replace(
        "manual = \"Stop payroll\"",
        "manual = \"Stop payroll of {{ user.id }} (ticket {{ departure.ticket }})\"",
    );
    let user = "alice\nFORGED: all steps done";
    let ticket = "HR-7\nFORGED ticket\u{202e}txt.exe";
    let (_dir, _state, mut s) = spawn_start_as(
        user,
        &runbook,
        &["--set", "asset_tag=LT-5", "--ticket", ticket],
    );
    let mut screen = Vec::new();
    // First manual step: not yet; second one: read its instruction, then stop asking.
    let seen = s.expect("Status").unwrap();
    screen.extend_from_slice(seen.before());
    screen.extend_from_slice(seen.get(0).unwrap());
    s.send(DOWN).unwrap();
    s.send("\r").unwrap();
    let seen = s.expect("Manual step 2/2").unwrap();
    screen.extend_from_slice(seen.before());
    screen.extend_from_slice(seen.get(0).unwrap());
    let seen = s.expect("Status").unwrap();
    screen.extend_from_slice(seen.before());
    s.send(DOWN).unwrap();
    s.send(DOWN).unwrap();
    s.send(DOWN).unwrap();
    s.send("\r").unwrap();
    let seen = s.expect(Eof).unwrap();
    screen.extend_from_slice(seen.before());
    let code = match s.get_process_mut().wait().unwrap() {
        expectrl::WaitStatus::Exited(_, code) => code,
        other => panic!("did not exit normally: {other:?}"),
    };
    assert_eq!(code, 3);
    let screen = String::from_utf8_lossy(&screen).replace("\r\n", "\n");

    // The header and the sandbox's progress line name the user, escaped.
    assert!(
        screen.contains(r"for alice\nFORGED: all steps done (voluntary)"),
        "{screen}"
    );
    // The instruction, escaped inside its line.
    assert!(
        screen.contains(
            r"Stop payroll of alice\nFORGED: all steps done (ticket HR-7\nFORGED ticket\u{202e}txt.exe)"
        ),
        "{screen}"
    );
    // Never a raw line break inside the id or the ticket, never a raw override.
    for line in screen.lines() {
        assert!(
            !line.trim_start().starts_with("FORGED"),
            "forged line: {line:?}\n{screen}"
        );
    }
    assert!(!screen.contains('\u{202e}'), "{screen}");
}
