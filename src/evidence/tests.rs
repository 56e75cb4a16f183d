use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use ssh_key::{HashAlg, LineEnding, PrivateKey};

use super::testutil::{self, ID};
use super::*;
use crate::journal::{ChainError, JOURNAL_FILE, sha256_hex};
use crate::keys::{self, SigningKey};

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    state: StateDir,
    key: SigningKey,
    journal: Journal,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let state = StateDir::resolve(Some(&root.join("state"))).unwrap();
    let key = keys::generate(&root.join("key"), "offboard", false).unwrap();
    let journal = testutil::journal(&state.departure_dir(ID));
    Fixture {
        _tmp: tmp,
        root,
        state,
        key,
        journal,
    }
}

fn allowed(key: &SigningKey, dir: &Path) -> Trust {
    let p = dir.join("allowed_signers");
    std::fs::write(&p, format!("{}\n", key.allowed_signers_line("offboard"))).unwrap();
    Trust::AllowedSigners(AllowedSigners::read(&p).unwrap())
}

/// Copy an evidence pair into a fresh directory (no journal beside it).
fn lone_copy(sealed: &Sealed, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let json = dir.join(format!("{ID}.json"));
    std::fs::copy(&sealed.json_path, &json).unwrap();
    std::fs::copy(&sealed.sig_path, sig_path(&json)).unwrap();
    json
}

/// Rewrite an evidence file with `change` applied and sign it again with `key`: what someone
/// holding the real key would produce.
fn resign(path: &Path, key: &SigningKey, change: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    change(&mut v);
    let bytes = to_bytes(&v).unwrap();
    std::fs::write(path, &bytes).unwrap();
    std::fs::write(sig_path(path), key.sign(&bytes).unwrap()).unwrap();
}

fn events_mut(v: &mut Value) -> &mut Vec<Value> {
    v.pointer_mut("/predicate/events")
        .unwrap()
        .as_array_mut()
        .unwrap()
}

#[test]
fn build_is_an_in_toto_statement_over_the_journal_bytes() {
    let f = fixture();
    let st = build(f.journal.events(), 1, &f.key).unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(st["predicateType"], PREDICATE_TYPE);
    assert_eq!(st["subject"][0]["name"], "journal.jsonl, lines 1-7");
    assert_eq!(st["subject"][0]["annotations"]["file"], "journal.jsonl");
    assert_eq!(st["subject"][0]["annotations"]["lines"], 7);
    let on_disk = std::fs::read(f.journal.path()).unwrap();
    assert_eq!(st["subject"][0]["digest"]["sha256"], sha256_hex(&on_disk));
    let p = &st["predicate"];
    assert_eq!(p["revision"], 1);
    assert_eq!(p["chain"]["head"], f.journal.events().last().unwrap().hash);
    assert_eq!(p["chain"]["length"], 7);
    assert_eq!(p["events"].as_array().unwrap().len(), 7);
    assert_eq!(p["departure"]["id"], ID);
    assert_eq!(p["departure"]["type"], "involuntary");
    assert_eq!(p["departure"]["ticket"], "HR-1234");
    assert_eq!(p["runbook"]["name"], "okta-google");
    assert_eq!(p["signer"]["fingerprint"], f.key.fingerprint());
    assert_eq!(p["signer"]["public_key"], f.key.public_line());

    let steps = p["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    let a = &steps[0];
    assert_eq!(a["id"], "okta-deactivate");
    assert_eq!(a["kind"], "automated");
    assert_eq!(a["status"], "done");
    assert_eq!(a["system"], "okta");
    assert_eq!(a["actor"], "admin@host");
    assert_eq!(a["check"]["revoked"], true);
    assert_eq!(a["check"]["observed"], "active=false");
    assert_eq!(a["requests"]["made"][0]["status"], 200);
    assert_eq!(
        a["requests"]["planned"][0],
        "PATCH https://okta.example/scim/v2/Users/{id}"
    );
    let m = &steps[1];
    assert_eq!(m["kind"], "manual");
    assert_eq!(m["status"], "done");
    assert_eq!(m["confirmed_by"], "facilities@host");
    assert_eq!(m["fields"]["asset_tag"], "LT-0042");
    assert_eq!(m["note"], "handed in at reception");

    let s = &p["summary"];
    assert_eq!(s["complete"], true);
    assert_eq!(s["counts"]["done"], 2);
    assert_eq!(s["counts"]["pending"], 0);
    assert_eq!(s["first_cut_at"], a["finished_at"]);
    assert!(s["latest_verify"].is_null());
}

#[test]
fn build_needs_a_departure() {
    let tmp = tempfile::tempdir().unwrap();
    let key = keys::generate(&tmp.path().join("k"), "offboard", false).unwrap();
    let j = Journal::create(
        &tmp.path().join(JOURNAL_FILE),
        "a@h".into(),
        Record::RunStarted {
            command: "start".into(),
        },
    )
    .unwrap();
    assert!(build(j.events(), 1, &key).is_err());
}

#[test]
fn seal_writes_private_signed_files_records_them_and_archives_revisions() {
    let mut f = fixture();
    let s1 = seal(&f.state, &mut f.journal, &f.key).unwrap();
    let dir = f.state.departure_dir(ID);
    assert_eq!(s1.revision, 1);
    assert_eq!(s1.json_path, dir.join(format!("{ID}.json")));
    assert_eq!(s1.sig_path, dir.join(format!("{ID}.json.sig")));
    let bytes = std::fs::read(&s1.json_path).unwrap();
    assert_eq!(s1.sha256, sha256_hex(&bytes));
    assert!(bytes.ends_with(b"}\n"));
    assert!(bytes.starts_with(b"{\n  \"_type\""));
    for p in [&s1.json_path, &s1.sig_path] {
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    let sig = std::fs::read_to_string(&s1.sig_path).unwrap();
    assert!(sig.starts_with("-----BEGIN SSH SIGNATURE-----\n"));
    assert!(sig.ends_with("-----END SSH SIGNATURE-----\n"));
    match &f.journal.events().last().unwrap().record {
        Record::EvidenceWritten {
            revision,
            file,
            sha256,
        } => {
            assert_eq!(*revision, 1);
            assert_eq!(file, &format!("{ID}.json"));
            assert_eq!(sha256, &s1.sha256);
        }
        other => panic!("{other:?}"),
    }

    let s2 = seal(&f.state, &mut f.journal, &f.key).unwrap();
    assert_eq!(s2.revision, 2);
    let rev1 = dir.join(format!("{ID}.rev1.json"));
    assert_eq!(std::fs::read(&rev1).unwrap(), bytes);
    assert!(sig_path(&rev1).exists());
    let v2: Value = serde_json::from_slice(&std::fs::read(&s2.json_path).unwrap()).unwrap();
    assert_eq!(v2["predicate"]["revision"], 2);
    // Revision 2 covers revision 1's evidence_written event.
    assert_eq!(v2["predicate"]["chain"]["length"], 8);

    let trust = allowed(&f.key, &f.root);
    let ok2 = verify(&s2.json_path, trust.clone()).unwrap();
    assert_eq!(ok2.revision, 2);
    assert!(ok2.journal_checked);
    let ok1 = verify(&rev1, trust).unwrap();
    assert_eq!(ok1.revision, 1);
    assert_eq!(ok1.events.len(), 7);
}

#[test]
fn verify_accepts_a_sealed_file_under_every_kind_of_trust() {
    let mut f = fixture();
    let s = seal(&f.state, &mut f.journal, &f.key).unwrap();
    let v = verify(&s.json_path, allowed(&f.key, &f.root)).unwrap();
    assert_eq!(v.departure_id, ID);
    assert_eq!(v.revision, 1);
    assert_eq!(v.events.len(), 7);
    assert_eq!(v.signer_fingerprint, f.key.fingerprint());
    assert_eq!(v.principal.as_deref(), Some("offboard"));
    assert!(v.journal_checked);

    assert!(v.trusted);
    let st: Value = serde_json::from_slice(&std::fs::read(&s.json_path).unwrap()).unwrap();
    assert_eq!(
        v.signed_at,
        st["predicate"]["generated_at"].as_str().unwrap()
    );

    let v = verify(&s.json_path, Trust::Keys(vec![f.key.public_key().clone()])).unwrap();
    assert_eq!(v.principal, None);
    assert!(v.trusted);

    let v = verify(&s.json_path, Trust::IntegrityOnly).unwrap();
    assert!(!v.trusted);
    assert!(v.trust_note.contains("integrity only"), "{}", v.trust_note);
}

/// With no trusted key, an intact file is refused, and the error says it is intact and names
/// the signer: anyone can sign a file with a key of their own.
#[test]
fn an_intact_file_is_refused_when_nobody_is_trusted() {
    let mut f = fixture();
    let s = seal(&f.state, &mut f.journal, &f.key).unwrap();
    let err = verify(&s.json_path, Trust::Nobody).unwrap_err();
    assert!(
        matches!(
            &err,
            EvidenceError::Untrusted { fingerprint, why: Distrust::NoTrustedKeys }
                if *fingerprint == f.key.fingerprint()
        ),
        "{err}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "signature intact, but the signer {} is not trusted: pass --allowed-signers",
            f.key.fingerprint()
        )),
        "{err}"
    );
    // A broken file is reported as broken, not as untrusted.
    let mut bytes = std::fs::read(&s.json_path).unwrap();
    bytes[40] ^= 1;
    std::fs::write(&s.json_path, bytes).unwrap();
    let err = verify(&s.json_path, Trust::Nobody).unwrap_err();
    assert!(matches!(err, EvidenceError::BadSignature { .. }), "{err}");
}

#[test]
fn every_single_byte_change_in_the_evidence_is_rejected() {
    let mut f = fixture();
    let s = seal(&f.state, &mut f.journal, &f.key).unwrap();
    let path = lone_copy(&s, &f.root.join("copy"));
    let good = std::fs::read(&path).unwrap();
    let trust = Trust::Keys(vec![f.key.public_key().clone()]);
    assert!(verify(&path, trust.clone()).is_ok());
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        std::fs::write(&path, &bad).unwrap();
        assert!(
            verify(&path, trust.clone()).is_err(),
            "flipping byte {i} of {} was not detected",
            good.len()
        );
    }
    let mut longer = good.clone();
    longer.push(b'\n');
    std::fs::write(&path, &longer).unwrap();
    assert!(matches!(
        verify(&path, trust.clone()),
        Err(EvidenceError::BadSignature { .. })
    ));
}

#[test]
fn every_single_byte_change_in_the_signature_is_rejected() {
    let mut f = fixture();
    let s = seal(&f.state, &mut f.journal, &f.key).unwrap();
    let path = lone_copy(&s, &f.root.join("copy"));
    let sig = sig_path(&path);
    let good = std::fs::read(&sig).unwrap();
    let trust = Trust::Keys(vec![f.key.public_key().clone()]);
    let header = "-----BEGIN SSH SIGNATURE-----\n".len();
    let footer = good.len() - "-----END SSH SIGNATURE-----\n".len();
    for i in header..footer {
        if good[i] == b'\n' {
            continue;
        }
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        std::fs::write(&sig, &bad).unwrap();
        assert!(
            verify(&path, trust.clone()).is_err(),
            "flipping signature byte {i} was not detected"
        );
    }
    std::fs::write(&sig, b"garbage").unwrap();
    assert!(matches!(
        verify(&path, trust.clone()),
        Err(EvidenceError::SignatureFormat { .. })
    ));
    std::fs::remove_file(&sig).unwrap();
    let err = verify(&path, trust).unwrap_err();
    assert!(
        matches!(err, EvidenceError::MissingSignature { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(".json.sig"), "{err}");
}

#[test]
fn garbage_and_non_evidence_json_are_rejected_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("x.json");
    std::fs::write(&p, b"{\"a\": 1,\n oops}").unwrap();
    let err = verify(&p, Trust::IntegrityOnly).unwrap_err();
    assert!(
        matches!(err, EvidenceError::NotJson { line: 2, .. }),
        "{err}"
    );
    let err = verify(&tmp.path().join("absent.json"), Trust::IntegrityOnly).unwrap_err();
    assert!(matches!(err, EvidenceError::Read { .. }), "{err}");
}

#[test]
fn wrong_namespace_is_rejected() {
    let mut f = fixture();
    let s = seal(&f.state, &mut f.journal, &f.key).unwrap();
    let bytes = std::fs::read(&s.json_path).unwrap();
    let raw = PrivateKey::read_openssh_file(f.key.path()).unwrap();
    let sig = raw.sign("file", HashAlg::Sha512, &bytes).unwrap();
    std::fs::write(&s.sig_path, sig.to_pem(LineEnding::LF).unwrap()).unwrap();
    let err = verify(&s.json_path, allowed(&f.key, &f.root)).unwrap_err();
    assert!(
        matches!(&err, EvidenceError::WrongNamespace { found } if found == "file"),
        "{err}"
    );
}

#[test]
fn another_key_is_rejected_by_allowed_signers_and_by_the_named_signer() {
    let mut f = fixture();
    let s = seal(&f.state, &mut f.journal, &f.key).unwrap();
    let other = keys::generate(&f.root.join("other"), "mallory", false).unwrap();
    let trust = allowed(&f.key, &f.root);

    // A whole departure sealed by another key: the allowed_signers file does not list it.
    let other_state = StateDir::resolve(Some(&f.root.join("state2"))).unwrap();
    let mut j2 = testutil::journal(&other_state.departure_dir(ID));
    let s2 = seal(&other_state, &mut j2, &other).unwrap();
    let err = verify(&s2.json_path, trust.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            EvidenceError::Untrusted {
                why: Distrust::NotListed { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&other.fingerprint()), "{err}");
    let err = verify(&s2.json_path, Trust::Keys(vec![f.key.public_key().clone()])).unwrap_err();
    assert!(
        matches!(
            err,
            EvidenceError::Untrusted {
                why: Distrust::NotTheLocalKey,
                ..
            }
        ),
        "{err}"
    );
    // Checked for integrity only, the other key's file is intact.
    verify(&s2.json_path, Trust::IntegrityOnly).unwrap();

    // The real file re-signed by another key: it names a different signer.
    let bytes = std::fs::read(&s.json_path).unwrap();
    std::fs::write(&s.sig_path, other.sign(&bytes).unwrap()).unwrap();
    let err = verify(&s.json_path, Trust::IntegrityOnly).unwrap_err();
    assert!(matches!(err, EvidenceError::SignerMismatch { .. }), "{err}");
}

#[test]
fn allowed_signers_namespace_restriction_is_honoured() {
    let mut f = fixture();
    let s = seal(&f.state, &mut f.journal, &f.key).unwrap();
    let p = f.root.join("allowed_signers");
    let bare = keys::bare_public_line(f.key.public_key());
    std::fs::write(&p, format!("auditor namespaces=\"git,file\" {bare}\n")).unwrap();
    let err = verify(
        &s.json_path,
        Trust::AllowedSigners(AllowedSigners::read(&p).unwrap()),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            EvidenceError::Untrusted {
                why: Distrust::Refused {
                    line: 1,
                    refusal: Refusal::Namespace,
                    ..
                },
                ..
            }
        ),
        "{err}"
    );
    std::fs::write(
        &p,
        format!("auditor,offboard namespaces=\"offboard-*\" {bare}\n"),
    )
    .unwrap();
    let v = verify(
        &s.json_path,
        Trust::AllowedSigners(AllowedSigners::read(&p).unwrap()),
    )
    .unwrap();
    assert_eq!(v.principal.as_deref(), Some("auditor,offboard"));
}

/// allowed_signers `valid-after`/`valid-before` are checked at the time the evidence says it
/// was signed, to the second, both ends inclusive; the first line that accepts the key wins.
#[test]
fn allowed_signers_validity_windows_are_checked_at_the_signing_time() {
    let mut f = fixture();
    let s = seal(&f.state, &mut f.journal, &f.key).unwrap();
    let path = lone_copy(&s, &f.root.join("copy"));
    // Signed at 12:00:00.900: the window is checked at 12:00:00, as ssh-keygen's verify-time.
    resign(&path, &f.key, |v| {
        v["predicate"]["generated_at"] = json!("2026-11-23T12:00:00.900Z")
    });
    let bare = keys::bare_public_line(f.key.public_key());
    let other = keys::generate(&f.root.join("other"), "other", false).unwrap();
    let other_bare = keys::bare_public_line(other.public_key());
    let as_path = f.root.join("allowed_signers");
    let check = |lines: &str| {
        std::fs::write(&as_path, lines).unwrap();
        verify(
            &path,
            Trust::AllowedSigners(AllowedSigners::read(&as_path).unwrap()),
        )
    };

    for ok in [
        format!("retired valid-before=\"20261123120000Z\" {bare}\n"),
        format!("new valid-after=\"20261123120000Z\" {bare}\n"),
        format!("both valid-after=\"20260101Z\",valid-before=\"20270101Z\" {bare}\n"),
    ] {
        let v = check(&ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert!(v.trusted);
    }

    let err = check(&format!(
        "x {other_bare}\nretired valid-before=\"20261123115959Z\" {bare}\n"
    ))
    .unwrap_err();
    assert!(
        matches!(
            &err,
            EvidenceError::Untrusted {
                why: Distrust::Refused {
                    line: 2,
                    refusal: Refusal::Expired(t),
                    ..
                },
                ..
            } if t.written == "20261123115959Z"
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("line 2 lists it, but only until valid-before=\"20261123115959Z\" (2026-11-23T11:59:59Z) (the key was retired), and the evidence was signed later, at 2026-11-23T12:00:00.900Z"),
        "{msg}"
    );

    let err = check(&format!("early valid-after=\"20261123120001Z\" {bare}\n")).unwrap_err();
    assert!(
        matches!(
            &err,
            EvidenceError::Untrusted {
                why: Distrust::Refused {
                    line: 1,
                    refusal: Refusal::NotYetValid(_),
                    ..
                },
                ..
            }
        ),
        "{err}"
    );

    // A retired line does not hide a later line that trusts the key.
    let v = check(&format!(
        "retired valid-before=\"20260101Z\" {bare}\ncurrent {bare}\n"
    ))
    .unwrap();
    assert_eq!(v.principal.as_deref(), Some("current"));
}

/// The subject is the journal's first N lines, N recorded beside the digest, so an auditor can
/// check it with `head` and `sha256sum` although sealing appended an `evidence_written` line.
#[test]
fn the_subject_digest_is_head_n_of_the_journal_as_the_readme_says() {
    let mut f = fixture();
    let s = seal(&f.state, &mut f.journal, &f.key).unwrap();
    let v: Value = serde_json::from_slice(&std::fs::read(&s.json_path).unwrap()).unwrap();
    let digest = v["subject"][0]["digest"]["sha256"].as_str().unwrap();
    let n = v["subject"][0]["annotations"]["lines"].as_u64().unwrap();
    assert_eq!(n, 7);
    let dir = f.state.departure_dir(ID);
    let on_disk = std::fs::read(dir.join(JOURNAL_FILE)).unwrap();
    assert_eq!(on_disk.iter().filter(|&&b| b == b'\n').count(), 8);
    assert_ne!(sha256_hex(&on_disk), digest);
    // The command README.md and examples/README.md give.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("head -n {n} journal.jsonl | sha256sum"))
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{digest}  -\n")
    );
}

type TamperCase = (
    &'static str,
    Box<dyn Fn(&mut Value)>,
    Box<dyn Fn(&EvidenceError) -> bool>,
);

/// The chain check catches changes to the events even when the file is properly signed by the
/// trusted key (so it does not rely on the signature).
#[test]
fn chain_tampering_is_caught_even_when_re_signed_by_the_trusted_key() {
    let mut f = fixture();
    let s = seal(&f.state, &mut f.journal, &f.key).unwrap();
    let trust = Trust::Keys(vec![f.key.public_key().clone()]);
    let good = std::fs::read(&s.json_path).unwrap();
    let dir = f.root.join("tamper");
    let path = lone_copy(&s, &dir);

    let cases: Vec<TamperCase> = vec![
        (
            "altered",
            Box::new(|v| events_mut(v)[4]["data"]["observed"] = json!("active=true")),
            Box::new(|e| {
                matches!(
                    e,
                    EvidenceError::Chain {
                        index: 4,
                        source: ChainError::BadHash { line: 5 }
                    }
                )
            }),
        ),
        (
            "altered and re-hashed",
            Box::new(|v| {
                let ev = &mut events_mut(v)[4];
                ev["data"]["revoked"] = json!(false);
                let mut e: crate::journal::Event = serde_json::from_value(ev.clone()).unwrap();
                e.hash = e.compute_hash();
                *ev = serde_json::to_value(e).unwrap();
            }),
            Box::new(|e| {
                matches!(
                    e,
                    EvidenceError::Chain {
                        index: 5,
                        source: ChainError::BrokenLink { .. }
                    }
                )
            }),
        ),
        (
            "deleted",
            Box::new(|v| {
                events_mut(v).remove(2);
            }),
            Box::new(|e| {
                matches!(
                    e,
                    EvidenceError::Chain {
                        index: 2,
                        source: ChainError::Sequence {
                            expected: 2,
                            found: 3,
                            ..
                        }
                    }
                )
            }),
        ),
        (
            "reordered",
            Box::new(|v| events_mut(v).swap(2, 3)),
            Box::new(|e| matches!(e, EvidenceError::Chain { index: 2, .. })),
        ),
        (
            "inserted",
            Box::new(|v| {
                let dup = events_mut(v)[2].clone();
                events_mut(v).insert(3, dup);
            }),
            Box::new(|e| {
                matches!(
                    e,
                    EvidenceError::Chain {
                        index: 3,
                        source: ChainError::Sequence { .. }
                    }
                )
            }),
        ),
        (
            "extra member",
            Box::new(|v| events_mut(v)[1]["injected"] = json!("x")),
            Box::new(|e| {
                matches!(
                    e,
                    EvidenceError::Chain {
                        index: 1,
                        source: ChainError::NotCanonical { .. }
                    }
                )
            }),
        ),
        (
            "last event dropped",
            Box::new(|v| {
                events_mut(v).pop();
            }),
            Box::new(|e| matches!(e, EvidenceError::ChainSummaryMismatch { field: "head", .. })),
        ),
        (
            "chain length",
            Box::new(|v| v["predicate"]["chain"]["length"] = json!(99)),
            Box::new(|e| {
                matches!(
                    e,
                    EvidenceError::ChainSummaryMismatch {
                        field: "length",
                        ..
                    }
                )
            }),
        ),
        (
            "subject digest",
            Box::new(|v| v["subject"][0]["digest"]["sha256"] = json!("00".repeat(32))),
            Box::new(|e| matches!(e, EvidenceError::SubjectDigestMismatch { .. })),
        ),
        (
            "truncated and re-summarised, digest left",
            Box::new(|v| {
                events_mut(v).pop();
                let head = events_mut(v).last().unwrap()["hash"].clone();
                v["predicate"]["chain"]["head"] = head;
                v["predicate"]["chain"]["length"] = json!(6);
                v["subject"][0]["name"] = json!("journal.jsonl, lines 1-6");
                v["subject"][0]["annotations"]["lines"] = json!(6);
            }),
            Box::new(|e| matches!(e, EvidenceError::SubjectDigestMismatch { .. })),
        ),
        (
            "subject names the whole journal",
            Box::new(|v| v["subject"][0]["name"] = json!("journal.jsonl")),
            Box::new(|e| {
                matches!(
                    e,
                    EvidenceError::SubjectMismatch {
                        field: "subject[0].name",
                        ..
                    }
                )
            }),
        ),
        (
            "subject line count",
            Box::new(|v| v["subject"][0]["annotations"]["lines"] = json!(8)),
            Box::new(|e| {
                matches!(
                    e,
                    EvidenceError::SubjectMismatch {
                        field: "subject[0].annotations.lines",
                        ..
                    }
                )
            }),
        ),
        (
            "subject file",
            Box::new(|v| v["subject"][0]["annotations"]["file"] = json!("other.jsonl")),
            Box::new(|e| {
                matches!(
                    e,
                    EvidenceError::SubjectMismatch {
                        field: "subject[0].annotations.file",
                        ..
                    }
                )
            }),
        ),
        (
            "no signing time",
            Box::new(|v| v["predicate"]["generated_at"] = json!("yesterday")),
            Box::new(|e| {
                matches!(
                    e,
                    EvidenceError::Missing {
                        field: "predicate.generated_at",
                        ..
                    }
                )
            }),
        ),
        (
            "predicate type",
            Box::new(|v| v["predicateType"] = json!("https://example.invalid/other")),
            Box::new(|e| {
                matches!(
                    e,
                    EvidenceError::WrongType {
                        field: "predicateType",
                        ..
                    }
                )
            }),
        ),
        (
            "statement type",
            Box::new(|v| v["_type"] = json!("https://in-toto.io/Statement/v0.1")),
            Box::new(|e| matches!(e, EvidenceError::WrongType { field: "_type", .. })),
        ),
        (
            "departure id",
            Box::new(|v| v["predicate"]["departure"]["id"] = json!("20261123t100000-bob-0001")),
            Box::new(|e| matches!(e, EvidenceError::DepartureMismatch { .. })),
        ),
    ];
    for (name, change, expected) in cases {
        std::fs::write(&path, &good).unwrap();
        resign(&path, &f.key, change);
        let err = verify(&path, trust.clone()).expect_err(name);
        assert!(expected(&err), "{name}: got {err}");
    }
    // The untouched file re-signed still passes, so the cases above fail for their own reason.
    std::fs::write(&path, &good).unwrap();
    resign(&path, &f.key, |_| {});
    verify(&path, trust).unwrap();
}

#[test]
fn a_journal_beside_the_evidence_must_start_with_the_embedded_events() {
    let mut f = fixture();
    let s = seal(&f.state, &mut f.journal, &f.key).unwrap();
    let trust = Trust::Keys(vec![f.key.public_key().clone()]);
    let jpath = f.journal.path().to_path_buf();
    let original = std::fs::read_to_string(&jpath).unwrap();
    let lines: Vec<&str> = original.lines().collect();

    let diverged = original.replace("handed in at reception", "handed in at reception!");
    std::fs::write(&jpath, diverged).unwrap();
    let err = verify(&s.json_path, trust.clone()).unwrap_err();
    assert!(
        matches!(err, EvidenceError::JournalDiverges { line: 6, .. }),
        "{err}"
    );

    std::fs::write(&jpath, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
    let err = verify(&s.json_path, trust.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            EvidenceError::JournalShorter {
                found: 2,
                expected: 7,
                ..
            }
        ),
        "{err}"
    );

    // The journal records this revision's sha256: a different (even validly signed) file of the
    // same revision is not the one that was written.
    std::fs::write(&jpath, &original).unwrap();
    verify(&s.json_path, trust.clone()).unwrap();
    resign(&s.json_path, &f.key, |v| {
        v["predicate"]["generated_at"] = json!("2030-01-01T00:00:00.000Z")
    });
    let err = verify(&s.json_path, trust).unwrap_err();
    assert!(
        matches!(
            err,
            EvidenceError::JournalRecordsOtherFile { revision: 1, .. }
        ),
        "{err}"
    );
}

fn ssh_keygen(args: &[&str], stdin: &[u8]) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("/usr/bin/ssh-keygen")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ssh-keygen is installed at /usr/bin/ssh-keygen");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn ssh_keygen_verify(json: &Path, allowed_signers: &Path, principal: &str) -> (bool, String) {
    let bytes = std::fs::read(json).unwrap();
    ssh_keygen(
        &[
            "-Y",
            "verify",
            "-f",
            allowed_signers.to_str().unwrap(),
            "-I",
            principal,
            "-n",
            NAMESPACE,
            "-s",
            sig_path(json).to_str().unwrap(),
        ],
        &bytes,
    )
}

#[test]
fn openssh_ssh_keygen_verifies_sealed_evidence_and_rejects_a_changed_byte() {
    let mut f = fixture();
    let s = seal(&f.state, &mut f.journal, &f.key).unwrap();
    let as_path = f.root.join("allowed_signers");
    std::fs::write(
        &as_path,
        format!("{}\n", f.key.allowed_signers_line("offboard")),
    )
    .unwrap();

    let (ok, out) = ssh_keygen_verify(&s.json_path, &as_path, "offboard");
    assert!(ok, "{out}");
    assert!(
        out.contains("Good \"offboard-evidence\" signature for offboard"),
        "{out}"
    );

    let bytes = std::fs::read(&s.json_path).unwrap();
    let (ok, out) = ssh_keygen(
        &[
            "-Y",
            "check-novalidate",
            "-n",
            NAMESPACE,
            "-s",
            s.sig_path.to_str().unwrap(),
        ],
        &bytes,
    );
    assert!(ok, "{out}");

    let (ok, out) = ssh_keygen_verify(&s.json_path, &as_path, "someone-else");
    assert!(!ok, "{out}");

    let mut bad = bytes.clone();
    let i = bad.len() / 2;
    bad[i] ^= 0x01;
    std::fs::write(&s.json_path, &bad).unwrap();
    let (ok, out) = ssh_keygen_verify(&s.json_path, &as_path, "offboard");
    assert!(!ok, "ssh-keygen accepted a changed byte: {out}");
    let (ok, _) = ssh_keygen(
        &[
            "-Y",
            "check-novalidate",
            "-n",
            NAMESPACE,
            "-s",
            s.sig_path.to_str().unwrap(),
        ],
        &bad,
    );
    assert!(!ok);
}

#[test]
fn a_key_made_by_ssh_keygen_signs_evidence_both_tools_accept() {
    let tmp = tempfile::tempdir().unwrap();
    let key_path = tmp.path().join("id_ed25519");
    let (ok, out) = ssh_keygen(
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "auditor@corp.example",
            "-f",
            key_path.to_str().unwrap(),
        ],
        b"",
    );
    assert!(ok, "{out}");
    let key = keys::load(&key_path).unwrap();
    assert_eq!(key.default_principal(), "auditor@corp.example");
    let pub_line = std::fs::read_to_string(keys::pub_path(&key_path)).unwrap();
    assert_eq!(pub_line.trim(), key.public_line());

    let state = StateDir::resolve(Some(&tmp.path().join("state"))).unwrap();
    let mut j = testutil::journal(&state.departure_dir(ID));
    let s = seal(&state, &mut j, &key).unwrap();
    let as_path = tmp.path().join("allowed_signers");
    std::fs::write(
        &as_path,
        format!("{}\n", key.allowed_signers_line("auditor@corp.example")),
    )
    .unwrap();
    let (ok, out) = ssh_keygen_verify(&s.json_path, &as_path, "auditor@corp.example");
    assert!(ok, "{out}");
    let v = verify(
        &s.json_path,
        Trust::AllowedSigners(AllowedSigners::read(&as_path).unwrap()),
    )
    .unwrap();
    assert_eq!(v.principal.as_deref(), Some("auditor@corp.example"));

    // A passphrase-protected ssh-keygen key is refused with a clear message.
    let enc_path = tmp.path().join("id_enc");
    let (ok, out) = ssh_keygen(
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "pass phrase",
            "-f",
            enc_path.to_str().unwrap(),
        ],
        b"",
    );
    assert!(ok, "{out}");
    let msg = format!("{:#}", keys::load(&enc_path).unwrap_err());
    assert!(msg.contains("unencrypted"), "{msg}");
}

#[test]
fn render_shows_the_departure_steps_and_summary() {
    let mut f = fixture();
    let s = seal(&f.state, &mut f.journal, &f.key).unwrap();
    let v: Value = serde_json::from_slice(&std::fs::read(&s.json_path).unwrap()).unwrap();
    let text = render(&v, false).unwrap();
    for needle in [
        ID,
        "alice@corp.example",
        "involuntary",
        "HR-1234",
        "okta-google",
        "Lane it",
        "Lane facilities",
        "okta-deactivate",
        "collect-laptop",
        "revoked",
        // The account the step acted on, by the system's id.
        "account: alice@corp.example (SCIM id 2819c223)",
        "asset_tag:",
        "LT-0042",
        "2026-11-30T17:00:00Z",
        "complete",
        &f.key.fingerprint(),
        v["predicate"]["chain"]["head"].as_str().unwrap(),
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(!text.contains('\x1b'));
    assert_eq!(
        v["predicate"]["steps"][0]["account"]["id"], "2819c223",
        "the evidence names the account by its id"
    );
    assert!(render(&json!({"a": 1}), false).is_err());
}
