//! `offboard evidence bundle` and `offboard evidence show --format html`, through the binary:
//! a bundle in a directory and in a zip, checked with `ssh-keygen -Y verify` as its VERIFY.txt
//! says; the same bytes every time; tampered evidence refused; the page rendered by headless
//! Chromium, its facts read back from the rendered DOM, and an A4-wide screenshot.
//!
//! One sandbox departure serves the whole module (the tests only read it, or copy its state
//! dir): involuntary, under legal hold (so the runbook's destructive step is blocked), with a
//! hostile input (`<script>` and a right-to-left override) that reaches the page.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use serde_json::Value;

use crate::common::cli_env::{CliEnv, text};

const HOSTILE: &str = "<script>alert(1)</script>\u{202e}gpj.exe";

struct Departure {
    env: CliEnv,
    id: String,
}

/// The module's one departure, started on first use.
static DEPARTURE: LazyLock<Departure> = LazyLock::new(|| {
    let env = CliEnv {
        // Kept for the whole run (a static is never dropped): under target/, not /tmp.
        dir: tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap(),
        vars: Vec::new(),
    };
    env.write_runbook(crate::flow_cli::RUNBOOK);
    let manager = format!("manager={HOSTILE}");
    let out = env.run(&[
        "--json",
        "start",
        "alice@corp.example",
        "-r",
        "offboard.toml",
        "--non-interactive",
        "--type",
        "involuntary",
        "--legal-hold",
        "--ticket",
        "HR-4711",
        "--set",
        &manager,
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = v["departure"].as_str().unwrap().to_string();
    Departure { env, id }
});

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", text(out)))
}

/// Every file in `dir` (not recursive), by name, with its bytes.
fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// The ssh-keygen command line of VERIFY.txt, run by `sh` in `dir`.
fn run_verify_txt(dir: &Path) -> std::process::Output {
    let verify = std::fs::read_to_string(dir.join("VERIFY.txt")).unwrap();
    let line = verify
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("ssh-keygen -Y verify "))
        .unwrap_or_else(|| panic!("no ssh-keygen command in VERIFY.txt:\n{verify}"));
    Command::new("sh")
        .args(["-c", line])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap()
}

#[test]
fn a_bundle_holds_the_signed_evidence_and_verifies_as_verify_txt_says() {
    let d = &*DEPARTURE;
    let env = &d.env;
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    let out = env.run(&[
        "--json",
        "evidence",
        "bundle",
        "alice@corp.example",
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = json(&out);
    let stem = format!("{}-r1", d.id);
    let names = [
        format!("{stem}.json"),
        format!("{stem}.json.sig"),
        "allowed_signers".to_string(),
        format!("{stem}.html"),
        "VERIFY.txt".to_string(),
    ];
    let listed: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, names);
    assert_eq!(v["departure"], d.id.as_str());
    assert_eq!(v["revision"], 1);
    assert_eq!(v["format"], "dir");

    // Exactly these files, private, and the evidence and signature byte for byte.
    let mut sorted = names.to_vec();
    sorted.sort();
    let found = files_in(&out_dir);
    assert_eq!(
        found.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        sorted
    );
    assert_eq!(mode(&out_dir), 0o700);
    for n in &names {
        assert_eq!(mode(&out_dir.join(n)), 0o600, "{n}");
    }
    let evidence = env.evidence_path(&d.id);
    assert_eq!(
        std::fs::read(out_dir.join(&names[0])).unwrap(),
        std::fs::read(&evidence).unwrap()
    );
    assert_eq!(
        std::fs::read(out_dir.join(&names[1])).unwrap(),
        std::fs::read(format!("{}.sig", evidence.display())).unwrap()
    );
    for f in v["files"].as_array().unwrap() {
        let bytes = std::fs::read(out_dir.join(f["name"].as_str().unwrap())).unwrap();
        assert_eq!(f["sha256"], offboard::journal::sha256_hex(&bytes));
    }
    assert_eq!(v["evidence_sha256"], v["files"][0]["sha256"]);

    // allowed_signers names the key `keys show` names, for evidence only.
    let keys = json(&env.run(&["--json", "keys", "show"]));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("allowed_signers")).unwrap(),
        format!("{}\n", keys["allowed_signers"].as_str().unwrap())
    );
    assert_eq!(v["signer"], keys["fingerprint"]);

    // OpenSSH, exactly as VERIFY.txt says, in the bundle's folder, with its allowed_signers.
    let ok = run_verify_txt(&out_dir);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains(&format!(
            "Good \"offboard-evidence\" signature for offboard with ED25519 key {}",
            keys["fingerprint"].as_str().unwrap()
        )),
        "{}",
        text(&ok)
    );
    // And offboard's own check, from the bundle alone.
    let checked = env
        .cmd(&[
            "evidence",
            "verify",
            out_dir.join(&names[0]).to_str().unwrap(),
            "--allowed-signers",
            out_dir.join("allowed_signers").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked));

    // A copy with one fact changed is refused by the same command.
    let tampered = work.path().join("tampered");
    std::fs::create_dir(&tampered).unwrap();
    for (n, bytes) in &found {
        let bytes = if n.ends_with(".json") {
            let t = String::from_utf8(bytes.clone()).unwrap();
            assert!(t.contains("\"HR-4711\""));
            t.replace("\"HR-4711\"", "\"HR-4712\"").into_bytes()
        } else {
            bytes.clone()
        };
        std::fs::write(tampered.join(n), bytes).unwrap();
    }
    let refused = run_verify_txt(&tampered);
    assert!(!refused.status.success(), "{}", text(&refused));
}

#[test]
fn bundling_twice_gives_the_same_bytes_in_a_dir_and_in_a_zip() {
    let d = &*DEPARTURE;
    let env = &d.env;
    let work = tempfile::tempdir().unwrap();
    // Each run at another clock time: nothing in a bundle may depend on when it was made.
    let clock = std::cell::Cell::new(0);
    let run_in = |args: &[&str]| {
        clock.set(clock.get() + 1);
        let out = env
            .cmd(args)
            .current_dir(work.path())
            .env(
                "OFFBOARD_NOW",
                format!("20{}-06-01T12:00:00Z", 30 + clock.get()),
            )
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        out
    };
    // By id and by person; relative outputs, one a bare file name in the current directory.
    run_in(&["evidence", "bundle", &d.id, "-o", "one"]);
    run_in(&["evidence", "bundle", "alice@corp.example", "-o", "two"]);
    let one = files_in(&work.path().join("one"));
    assert_eq!(one.len(), 5);
    assert_eq!(one, files_in(&work.path().join("two")));
    // Bundling into the same directory again replaces the files with the same bytes.
    run_in(&["evidence", "bundle", &d.id, "-o", "one"]);
    assert_eq!(one, files_in(&work.path().join("one")));

    let zipped = json(&run_in(&[
        "--json", "evidence", "bundle", &d.id, "-o", "a.zip",
    ]));
    assert_eq!(zipped["format"], "zip");
    run_in(&[
        "evidence",
        "bundle",
        "alice@corp.example",
        "-o",
        "sub/b.ZIP",
    ]);
    let a = std::fs::read(work.path().join("a.zip")).unwrap();
    assert_eq!(a, std::fs::read(work.path().join("sub/b.ZIP")).unwrap());
    assert_eq!(mode(&work.path().join("a.zip")), 0o600);

    // Python's zipfile (CRCs checked) reads back the same files, each mode 0600.
    let listing = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
print(json.dumps([[i.filename, i.external_attr >> 16, z.read(i).decode("latin-1")] for i in z.infolist()]))
"#,
        )
        .arg(work.path().join("a.zip"))
        .output()
        .expect("python3 is installed (tests/run.sh installs it)");
    assert!(listing.status.success(), "{}", text(&listing));
    let entries: Vec<(String, u32, String)> = serde_json::from_slice(&listing.stdout).unwrap();
    let mut from_zip: Vec<(String, Vec<u8>)> = entries
        .iter()
        .map(|(n, mode, bytes)| {
            assert_eq!(*mode, 0o100600, "{n}");
            (n.clone(), bytes.chars().map(|c| c as u8).collect())
        })
        .collect();
    // The archive keeps the bundle's order: evidence first, VERIFY.txt last.
    assert!(from_zip[0].0.ends_with("-r1.json"), "{entries:?}");
    assert_eq!(from_zip[4].0, "VERIFY.txt");
    from_zip.sort();
    assert_eq!(from_zip, one);
}

#[test]
fn evidence_that_is_not_intact_is_not_bundled() {
    let d = &*DEPARTURE;
    let work = tempfile::tempdir().unwrap();
    // A copy of the state dir, so the shared departure stays as it is.
    let state = work.path().join("state");
    let st = Command::new("cp")
        .arg("-a")
        .arg(d.env.state())
        .arg(&state)
        .status()
        .unwrap();
    assert!(st.success());
    let evidence = state
        .join("departures")
        .join(&d.id)
        .join(format!("{}.json", d.id));
    let t = std::fs::read_to_string(&evidence).unwrap();
    std::fs::write(&evidence, t.replace("\"HR-4711\"", "\"HR-4712\"")).unwrap();
    let out_dir = work.path().join("out");
    let out = d
        .env
        .cmd(&[
            "--state-dir",
            state.to_str().unwrap(),
            "evidence",
            "bundle",
            &d.id,
            "-o",
            out_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing was bundled"), "{err}");
    assert!(!out_dir.exists());

    // No such departure: a usage error that says where to look.
    let out = d
        .env
        .cmd(&["evidence", "bundle", "nobody@corp.example"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("offboard status"));
}

#[test]
fn bundle_and_show_teach_with_examples() {
    let env = CliEnv::new();
    let out = env.run(&["evidence", "bundle", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Example:"), "{help}");
    assert!(
        help.contains("offboard evidence bundle alice@corp.example"),
        "{help}"
    );
    assert!(help.contains("VERIFY.txt"), "{help}");
    let out = env.run(&["evidence", "show", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--format html > alice.html"), "{help}");

    // The page is for an evidence file only, and not with --json.
    let junk = env.path().join("junk.json");
    std::fs::write(&junk, "{\"_type\": \"something else\"}").unwrap();
    let out = env.run(&[
        "evidence",
        "show",
        junk.to_str().unwrap(),
        "--format",
        "html",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(out.stdout.is_empty());
    let out = env.run(&[
        "--json",
        "evidence",
        "show",
        junk.to_str().unwrap(),
        "--format",
        "html",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Headless Chromium, when installed: skipped with a message locally, a failure under CI (env
/// `CI`), where tests/run.sh installs it.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let msg = "chromium is not installed: `apt-get install --no-install-recommends chromium` (tests/run.sh does)";
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("skipped: {msg}");
    }
    found
}

fn headless(chromium: &Path, args: &[&str], page: &Path, home: &Path) -> std::process::Output {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
        ])
        .arg(format!(
            "--user-data-dir={}",
            home.join("chromium").display()
        ))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    out
}

/// The text of the rendered body: tags dropped (so cells run together), entities as characters.
fn body_text(dom: &str) -> String {
    let body = &dom[dom.find("<body").expect("a body")..];
    let mut textual = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => textual.push(c),
            _ => {}
        }
    }
    textual
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[test]
fn the_page_renders_in_chromium_with_the_facts_a_reader_needs() {
    let d = &*DEPARTURE;
    let env = &d.env;
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("out");
    let out = env.run(&["evidence", "bundle", &d.id, "-o", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stem = format!("{}-r1", d.id);
    let page = out_dir.join(format!("{stem}.html"));
    let html = std::fs::read_to_string(&page).unwrap();

    // `evidence show --format html` of the bundled file is the bundled page, byte for byte.
    let shown = env.run(&[
        "evidence",
        "show",
        out_dir.join(format!("{stem}.json")).to_str().unwrap(),
        "--format",
        "html",
    ]);
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown));
    assert_eq!(String::from_utf8(shown.stdout).unwrap(), html);

    // Self-contained: nothing to fetch, nothing to run; the hostile input stays text.
    assert!(!html.contains("<script"), "a script element");
    assert!(!html.contains("://"), "a URL in the page");
    assert!(html.contains("content=\"default-src 'none'; style-src 'unsafe-inline'\""));
    assert!(!html.contains('\u{202e}'), "a raw right-to-left override");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\u{202e}gpj.exe"));

    let Some(chromium) = chromium() else {
        return;
    };
    let dom = headless(&chromium, &["--dump-dom"], &page, work.path());
    let dom = String::from_utf8(dom.stdout).unwrap();
    assert!(!dom.contains("<script"), "the DOM has a script element");
    assert!(!dom.contains('\u{202e}'));
    let seen = body_text(&dom);
    let fingerprint = json(&env.run(&["--json", "keys", "show"]))["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    for fact in [
        "Departure of alice@corp.example",
        "involuntary",
        "HR-4711",
        "tester@corp.example",
        "The legal hold is IN FORCE",
        "saas-delete",
        "NOT complete",
        "facilities@corp.example",
        "Time to revocation",
        "Access was confirmed revoked in every system",
        &fingerprint,
        &format!(
            "ssh-keygen -Y verify -f allowed_signers -I offboard -n offboard-evidence -s {stem}.json.sig < {stem}.json"
        ),
        "<script>alert(1)</script>\\u{202e}gpj.exe",
    ] {
        assert!(
            seen.contains(fact),
            "the rendered page does not show {fact:?}:\n{seen}"
        );
    }
    // Each system cut appears in the chart, with when it was revoked; the blocked step is in
    // the legal hold's table; the fingerprint in its own element.
    for system in ["idp", "saas"] {
        assert!(
            dom.contains(&format!(r#"class="system">{system}</text>"#)),
            "{system} is not in the chart"
        );
    }
    assert_eq!(dom.matches("revoked +").count(), 2, "{seen}");
    assert!(dom.contains(r#"<td class="mono blocked-step">saas-delete</td>"#));
    assert!(dom.contains(&format!(
        r#"<span class="fp" id="fingerprint">{fingerprint}</span>"#
    )));

    // A4 at 96 dpi: 794 px wide.
    let png = work.path().join("page.png");
    headless(
        &chromium,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=794,1123",
        ],
        &page,
        work.path(),
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (794, 1123));
    assert!(bytes.len() > 20_000, "an almost empty screenshot");
}

/// examples/evidence-page.html is what this build makes of the example evidence (regenerate it,
/// and its screenshot evidence-page.png, with examples/regenerate.sh when the page changes).
#[test]
fn the_example_page_is_what_this_build_renders() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let evidence = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("an example evidence file");
    let env = CliEnv::new();
    let out = env.run(&[
        "evidence",
        "show",
        evidence.to_str().unwrap(),
        "--format",
        "html",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8(out.stdout).unwrap()
            == std::fs::read_to_string(examples.join("evidence-page.html")).unwrap(),
        "examples/evidence-page.html is stale: run `bash examples/regenerate.sh`"
    );
    let png = std::fs::read(examples.join("evidence-page.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 794);
}
