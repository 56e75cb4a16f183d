//! The ready-to-copy scheduling units in docs/units/ are valid: the systemd service and timer
//! files pass `systemd-analyze verify` with no warning (their ExecStart pointed at the binary
//! under test), the crontab lines have five valid time fields, a user and a command, the
//! Kubernetes CronJobs parse as YAML with the fields a CronJob needs and the state dir on the
//! claimed volume, and every offboard command line in them parses as the CLI's arguments.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use serde_json::Value;

use crate::common::cli_env::BIN;

fn units() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/units")
}

/// `offboard ARGS…` must parse as the CLI does.
fn assert_parses(args: &[&str], whence: &str) {
    let mut argv = vec!["offboard"];
    argv.extend_from_slice(args);
    if let Err(e) = offboard::cli::Cli::try_parse_from(&argv) {
        panic!("{whence}: `{}` does not parse: {e}", argv.join(" "));
    }
}

fn offboard_args<'a>(command: &'a str, whence: &str) -> Vec<&'a str> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "offboard" || w.ends_with("/offboard"))
        .unwrap_or_else(|| panic!("{whence}: no offboard command in {command:?}"));
    words[at + 1..].to_vec()
}

/// Skip (locally) or fail (under CI, where tests/run.sh installs it) when a tool is missing.
fn have(tool: &str, probe: &mut Command) -> bool {
    if probe.output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{tool} is missing: tests/run.sh installs it"
    );
    eprintln!("skipped: {tool} is not installed");
    false
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    let files = [
        "offboard-remind.service",
        "offboard-remind.timer",
        "offboard-sweep.service",
        "offboard-sweep.timer",
        "offboard-shared-sweep.service",
        "offboard-shared-sweep.timer",
    ];
    for f in files.iter().filter(|f| f.ends_with(".service")) {
        let text = std::fs::read_to_string(units().join(f)).unwrap();
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap_or_else(|| panic!("{f} has no ExecStart"));
        assert!(exec.starts_with("/usr/local/bin/offboard "), "{f}: {exec}");
        assert_parses(&offboard_args(exec, f), f);
        let timer = f.replace(".service", ".timer");
        assert!(files.contains(&timer.as_str()), "{f} has no timer");
    }
    if !have(
        "systemd-analyze",
        Command::new("systemd-analyze").arg("--version"),
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        let text = std::fs::read_to_string(units().join(f))
            .unwrap()
            .replace("/usr/local/bin/offboard", BIN);
        std::fs::write(dir.path().join(f), text).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(files.iter().map(|f| dir.path().join(f)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

/// A crontab time field: `*`, numbers, ranges, lists and steps within `lo..=hi`.
fn cron_field_ok(field: &str, lo: u32, hi: u32) -> bool {
    field.split(',').all(|part| {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        let step_ok = step.is_none_or(|s| s.parse::<u32>().is_ok_and(|n| n >= 1 && n <= hi));
        let num = |s: &str| s.parse::<u32>().ok().filter(|n| (lo..=hi).contains(n));
        let range_ok = match range {
            "*" => true,
            r => match r.split_once('-') {
                Some((a, b)) => matches!((num(a), num(b)), (Some(a), Some(b)) if a <= b),
                None => num(r).is_some(),
            },
        };
        step_ok && range_ok
    })
}

#[test]
fn the_crontab_lines_are_well_formed() {
    assert!(cron_field_ok("*/15", 0, 59) && cron_field_ok("1-5", 0, 7));
    assert!(
        !cron_field_ok("60", 0, 59) && !cron_field_ok("*/0", 0, 59) && !cron_field_ok("x", 0, 23)
    );
    let text = std::fs::read_to_string(units().join("offboard.cron")).unwrap();
    let mut jobs = 0;
    for (n, line) in text.lines().enumerate() {
        let whence = format!("offboard.cron:{}", n + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap();
        if first.contains('=') {
            let (name, _) = first.split_once('=').unwrap();
            assert!(
                name.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{whence}: {line}"
            );
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(
            fields.len() >= 7,
            "{whence}: want 5 time fields, a user and a command: {line}"
        );
        for (f, (lo, hi)) in fields[..5]
            .iter()
            .zip([(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)])
        {
            assert!(cron_field_ok(f, lo, hi), "{whence}: bad time field {f:?}");
        }
        assert_eq!(fields[5], "offboard", "{whence}: runs as the offboard user");
        let command = fields[6..].join(" ");
        let last = command.rsplit(';').next().unwrap();
        assert_parses(&offboard_args(last, &whence), &whence);
        jobs += 1;
    }
    assert_eq!(jobs, 2, "remind and the sweep");
}

#[test]
fn the_kubernetes_cronjobs_have_what_a_cronjob_needs() {
    for name in ["offboard-cronjob.yaml", "offboard-cronjob-postgres.yaml"] {
        check_cronjob_file(&units().join(name));
    }
}

fn check_cronjob_file(file: &Path) {
    let probe = "import yaml";
    if !have(
        "python3 with PyYAML",
        Command::new("python3").args(["-c", probe]),
    ) {
        return;
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    check_cronjobs(&docs, file);
}

fn check_cronjobs(docs: &[Value], file: &Path) {
    let claims: Vec<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "PersistentVolumeClaim")
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        claims.len(),
        1,
        "{}: one claim for the state dir",
        file.display()
    );
    let jobs: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "CronJob").collect();
    assert_eq!(jobs.len(), 2, "remind and the sweep");
    let mut commands = Vec::new();
    for j in jobs {
        let name = j["metadata"]["name"].as_str().expect("metadata.name");
        assert_eq!(j["apiVersion"], "batch/v1", "{name}");
        let schedule = j["spec"]["schedule"].as_str().expect("spec.schedule");
        let fields: Vec<&str> = schedule.split_whitespace().collect();
        assert_eq!(fields.len(), 5, "{name}: {schedule}");
        for (f, (lo, hi)) in fields
            .iter()
            .zip([(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)])
        {
            assert!(cron_field_ok(f, lo, hi), "{name}: {schedule}");
        }
        assert_eq!(j["spec"]["concurrencyPolicy"], "Forbid", "{name}");
        let pod = &j["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        assert!(
            matches!(pod["restartPolicy"].as_str(), Some("Never" | "OnFailure")),
            "{name}: a Job's pod needs restartPolicy Never or OnFailure"
        );
        let containers = pod["containers"].as_array().expect("containers");
        assert_eq!(containers.len(), 1);
        let c = &containers[0];
        assert!(
            c["name"].as_str().is_some() && c["image"].as_str().is_some(),
            "{name}"
        );
        let args: Vec<&str> = c["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_parses(&args, name);
        commands.push(
            args.iter()
                .find(|a| !a.starts_with('-'))
                .unwrap()
                .to_string(),
        );
        let env = |k: &str| {
            c["env"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == k)
                .and_then(|e| e["value"].as_str())
                .unwrap_or_else(|| panic!("{name}: no {k}"))
                .to_string()
        };
        let state_dir = env("OFFBOARD_STATE_DIR");
        let mount = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == state_dir.as_str())
            .unwrap_or_else(|| panic!("{name}: the state dir {state_dir} is not on a volume"));
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("{name}: no volume {}", mount["name"]));
        assert_eq!(
            volume["persistentVolumeClaim"]["claimName"], claims[0],
            "{name}: the state dir must outlive the pod"
        );
        let runbook = env("OFFBOARD_RUNBOOK");
        assert!(
            c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| runbook.starts_with(m["mountPath"].as_str().unwrap())),
            "{name}: the runbook {runbook} is on no volume"
        );
    }
    commands.sort();
    assert_eq!(commands, ["remind", "verify"]);
}

/// The shared-database units name the database the way offboard takes it: a postgres:// URL
/// with verify-full and a CA file, and no password (that comes from a Secret or an environment
/// file as PGPASSWORD).
#[test]
fn the_shared_database_units_take_the_password_by_reference() {
    for name in [
        "offboard-shared-sweep.service",
        "offboard-cronjob-postgres.yaml",
    ] {
        let text = std::fs::read_to_string(units().join(name)).unwrap();
        let urls: Vec<&str> = text
            .split(|c: char| c.is_whitespace() || c == '"')
            .filter_map(|w| w.find("postgres://").map(|at| &w[at..]))
            .collect();
        assert!(!urls.is_empty(), "{name} names no database");
        for url in urls {
            let t = offboard::store::postgres::Target::parse_with(url, &|_| None)
                .unwrap_or_else(|e| panic!("{name}: {url}: {e:#}"));
            assert!(t.verify_full, "{name}: {url}");
            assert!(!url.contains("password="), "{name}: {url}");
        }
    }
}
