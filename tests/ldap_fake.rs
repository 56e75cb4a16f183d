//! The ldap provider against misbehaving endpoints on 127.0.0.1: a server that accepts and then
//! never answers, one that hangs up at once, and one that answers with bytes that are not LDAP.
//! (Protocol-level errors — bad credentials, insufficient access, unknown people, refused plain
//! binds — are exercised against the real Samba AD DC and OpenLDAP in `ldap_real.rs`.)

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use offboard::providers::ldap::{LdapProvider, RetryPolicy};
use offboard::providers::{CallCtx, Provider, ProviderError, RetryNote, StepCall, SystemConfig};

const PASSWORD: &str = "bind-pw-SECRET-93ad";

#[derive(Clone, Copy)]
enum Behaviour {
    Hang,
    HangUp,
    Garbage,
}

/// A TCP endpoint that behaves badly; returns its port and a counter of connections.
fn endpoint(b: Behaviour) -> (u16, Arc<Mutex<usize>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for stream in l.incoming() {
            let Ok(mut s) = stream else { continue };
            *counter.lock().unwrap() += 1;
            std::thread::spawn(move || match b {
                Behaviour::Hang => {
                    let mut buf = [0u8; 512];
                    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                }
                Behaviour::HangUp => drop(s),
                Behaviour::Garbage => {
                    let mut buf = [0u8; 512];
                    let _ = s.read(&mut buf);
                    let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\nthis is not LDAP");
                }
            });
        }
    });
    (port, seen)
}

fn config(port: u16, state: &std::path::Path) -> SystemConfig {
    let mut settings = std::collections::BTreeMap::new();
    for (k, v) in [
        ("flavor", "active_directory"),
        ("bind_dn", "svc@corp.test"),
        ("base_dn", "DC=corp,DC=test"),
    ] {
        settings.insert(k.into(), toml::Value::String(v.into()));
    }
    settings.insert("allow_plain".into(), toml::Value::Boolean(true));
    let mut secrets = std::collections::BTreeMap::new();
    secrets.insert(
        "bind_password".into(),
        secrecy::SecretString::from(PASSWORD),
    );
    SystemConfig {
        name: "ad".into(),
        kind: "ldap".into(),
        base_url: Some(format!("ldap://127.0.0.1:{port}")),
        token: None,
        settings,
        secrets,
        timeout: Duration::from_secs(1),
        max_concurrency: 4,
        state_dir: state.to_path_buf(),
    }
}

async fn disable(b: Behaviour) -> (ProviderError, Vec<RetryNote>, usize) {
    let (port, seen) = endpoint(b);
    let state = tempfile::tempdir().unwrap();
    let p = LdapProvider::new(&config(port, state.path()))
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(20),
        });
    let notes = Arc::new(Mutex::new(Vec::new()));
    let sink = notes.clone();
    let ctx = CallCtx::new(move |n| sink.lock().unwrap().push(n));
    let params = serde_json::Map::new();
    let call = StepCall {
        step_id: "ad-disable",
        action: "disable_account",
        login: "alice@corp.test",
        params: &params,
    };
    let err = p.apply(&call, &ctx).await.unwrap_err();
    let text = err.to_string();
    assert!(!text.contains(PASSWORD), "the bind password leaked: {text}");
    let notes = notes.lock().unwrap().clone();
    let n = *seen.lock().unwrap();
    (err, notes, n)
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_and_is_retried() {
    let (err, notes, connections) = disable(Behaviour::Hang).await;
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(connections, 3);
}

#[tokio::test]
async fn a_server_that_hangs_up_is_retried_then_reported() {
    let (err, notes, connections) = disable(Behaviour::HangUp).await;
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(connections, 3);
}

#[tokio::test]
async fn a_server_that_does_not_speak_ldap_is_an_error_not_a_panic() {
    let (err, _, connections) = disable(Behaviour::Garbage).await;
    assert!(connections >= 1);
    let text = err.to_string();
    assert!(!text.is_empty());
}
