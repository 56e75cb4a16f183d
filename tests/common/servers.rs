//! Real servers for tests, started by the project's own scripts in `tests/servers/` on free
//! loopback ports and stopped (only the PID they recorded) when the guard is dropped, panics
//! included.
//!
//! A server that is not installed is skipped with a message locally, and fails the test under CI
//! (env `CI` set), where `tests/run.sh` installs every server first.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the install scripts put their venvs (`OFFBOARD_TEST_CACHE`, default
/// `~/.cache/offboard-tests`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("OFFBOARD_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/offboard-tests")
        })
}

pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/servers")
        .join(name)
}

/// A free port on 127.0.0.1 whose successor is free too (for servers that take two).
pub fn free_port_pair() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if p < 65534 && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

/// `true` when `marker` exists; otherwise skip (locally) or fail (under CI).
pub fn installed(marker: &Path, install_script: &str) -> bool {
    if marker.exists() {
        return true;
    }
    let msg = format!(
        "{} is missing: run tests/servers/{install_script}",
        marker.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("skipped: {msg}");
    false
}

/// A started server; `stop_script STATE_DIR` runs when it is dropped.
pub struct RealServer {
    pub state: tempfile::TempDir,
    pub port: u16,
    stop_script: &'static str,
}

impl RealServer {
    /// Run `start_script PORT STATE_DIR` with `env`; panics with the script's output if it fails.
    pub fn start(
        start_script: &'static str,
        stop_script: &'static str,
        port: u16,
        env: &[(&str, &str)],
    ) -> RealServer {
        let state = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(script(start_script))
            .arg(port.to_string())
            .arg(state.path())
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("running {start_script}: {e}"));
        // The guard exists before the check, so a half-started server is stopped too.
        let server = RealServer {
            state,
            port,
            stop_script,
        };
        assert!(
            out.status.success(),
            "{start_script} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
        server
    }

    /// scim2-server with bearer `token`; its SCIM root is `http://127.0.0.1:PORT/v2`.
    pub fn scim(token: &str) -> Option<RealServer> {
        installed(
            &cache_dir().join("scim2-server/bin/scim2-server"),
            "install-scim.sh",
        )
        .then(|| {
            let port = free_port_pair();
            RealServer::start(
                "start-scim.sh",
                "stop-scim.sh",
                port,
                &[("SCIM_TOKEN", token)],
            )
        })
    }

    /// OpenBao in dev mode with `root_token`, over TLS when `tls`.
    pub fn openbao(root_token: &str, tls: bool) -> Option<RealServer> {
        installed(
            &cache_dir().join("openbao/bin/python3"),
            "install-openbao.sh",
        )
        .then(|| {
            let port = free_port_pair();
            RealServer::start(
                "start-openbao.sh",
                "stop-openbao.sh",
                port,
                &[
                    ("BAO_ROOT_TOKEN", root_token),
                    ("BAO_TLS", if tls { "1" } else { "0" }),
                ],
            )
        })
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script(self.stop_script))
            .arg(self.state.path())
            .status();
    }
}
