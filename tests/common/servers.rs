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
    /// Arguments after STATE_DIR for the stop script (389-DS: `--purge`).
    stop_args: &'static [&'static str],
    /// Held while a server with fixed ports (Samba) runs: one at a time on the machine.
    _lock: Option<std::fs::File>,
}

/// Whether the tests run as root; if not, a server that needs it is skipped with `why`
/// (a failure under CI, where every server must run).
fn running_as_root(why: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipped: {why}");
    false
}

impl RealServer {
    /// Run `start_script PORT STATE_DIR` with `env`; panics with the script's output if it fails.
    pub fn start(
        start_script: &'static str,
        stop_script: &'static str,
        port: u16,
        env: &[(&str, &str)],
    ) -> RealServer {
        Self::start_with(
            start_script,
            (stop_script, &[]),
            &port.to_string(),
            port,
            env,
            None,
        )
    }

    fn start_with(
        start_script: &'static str,
        (stop_script, stop_args): (&'static str, &'static [&'static str]),
        arg: &str,
        port: u16,
        env: &[(&str, &str)],
        lock: Option<std::fs::File>,
    ) -> RealServer {
        let state = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(script(start_script))
            .arg(arg)
            .arg(state.path())
            .envs(env.iter().copied())
            .output()
            .unwrap_or_else(|e| panic!("running {start_script}: {e}"));
        // The guard exists before the check, so a half-started server is stopped too.
        let server = RealServer {
            state,
            port,
            stop_script,
            stop_args,
            _lock: lock,
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

    /// aiosmtpd on a free port, requiring AUTH with `user` / `password` (allowed without TLS:
    /// loopback), every accepted message written to `mail_dir()` as JSON.
    pub fn aiosmtpd(user: &str, password: &str) -> Option<RealServer> {
        Self::aiosmtpd_tls(user, password, "")
    }

    /// [`aiosmtpd`](Self::aiosmtpd) with `tls` = `starttls` (required before AUTH) or `tls`
    /// (implicit), its certificate for localhost signed by the CA at `smtp_ca()`.
    pub fn aiosmtpd_tls(user: &str, password: &str, tls: &str) -> Option<RealServer> {
        installed(
            &cache_dir().join("aiosmtpd/bin/python3"),
            "install-aiosmtpd.sh",
        )
        .then(|| {
            let port = free_port_pair();
            RealServer::start(
                "start-aiosmtpd.sh",
                "stop-aiosmtpd.sh",
                port,
                &[
                    ("SMTP_USER", user),
                    ("SMTP_PASSWORD", password),
                    ("SMTP_TLS", tls),
                ],
            )
        })
    }

    /// The CA that signed aiosmtpd's certificate (with `aiosmtpd_tls`).
    pub fn smtp_ca(&self) -> PathBuf {
        self.state.path().join("tls/ca.pem")
    }

    /// The messages aiosmtpd accepted, in arrival order (`mail_from`, `rcpt_tos`, `data`).
    pub fn delivered_mail(&self) -> Vec<serde_json::Value> {
        let dir = self.state.path().join("mail");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|r| r.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "json"));
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
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

impl RealServer {
    /// A Samba AD DC on 127.0.0.1 (ports 389/636, fixed: one DC at a time across test processes),
    /// domain `corp.test`, Administrator password `Passw0rd!Admin`, old passwords refused at once
    /// after a reset. Its CA is `ca()`.
    pub fn samba() -> Option<RealServer> {
        if !installed(Path::new("/usr/sbin/samba"), "install-samba.sh") {
            return None;
        }
        if !running_as_root("a Samba AD DC needs root (its LDAP ports are below 1024)") {
            return None;
        }
        let lock =
            std::fs::File::create(std::env::temp_dir().join("offboard-samba-127.0.0.1.lock"))
                .unwrap();
        lock.lock().unwrap();
        Some(RealServer::start_with(
            "start-samba-ad.sh",
            ("stop-samba-ad.sh", &[]),
            "127.0.0.1",
            636,
            &[("SAMBA_OLD_PASSWORD_ALLOWED_PERIOD", "0")],
            Some(lock),
        ))
    }

    /// OpenLDAP slapd (ppolicy, memberof, refint) with LDAP on `port` and LDAPS on `port + 1`,
    /// suffix `dc=corp,dc=test`, rootdn `cn=admin,dc=corp,dc=test` / `Passw0rd!Admin`.
    pub fn openldap() -> Option<RealServer> {
        installed(Path::new("/usr/sbin/slapd"), "install-openldap.sh").then(|| {
            RealServer::start(
                "start-openldap.sh",
                "stop-openldap.sh",
                free_port_pair(),
                &[],
            )
        })
    }

    /// 389 Directory Server with LDAP on `port` and LDAPS on `port + 1`, suffix
    /// `dc=corp,dc=test` with dscreate's sample entries (ou=People, ou=Groups, cn=demo_group),
    /// rootdn `cn=Directory Manager` / `Passw0rd!Admin`. Its instance lives under /etc/dirsrv and
    /// /var/lib/dirsrv (needs root) and is removed when the guard is dropped.
    pub fn ds389() -> Option<RealServer> {
        if !installed(Path::new("/usr/sbin/ns-slapd"), "install-389ds.sh")
            || !installed(
                Path::new("/usr/share/dirsrv/inf/defaults.inf"),
                "install-389ds.sh",
            )
        {
            return None;
        }
        if !running_as_root(
            "389 Directory Server needs root (its instance lives under /etc/dirsrv)",
        ) {
            return None;
        }
        let port = free_port_pair();
        Some(RealServer::start_with(
            "start-389ds.sh",
            ("stop-389ds.sh", &["--purge"]),
            &port.to_string(),
            port,
            &[],
            None,
        ))
    }

    /// A Redmine 5 instance of its own on `http://127.0.0.1:PORT` (SQLite, REST API on),
    /// project `offboarding`, admin password `Passw0rd!Admin`; its admin API key is
    /// [`RealServer::redmine_api_key`]. The instance is linked from /var/lib/redmine (needs
    /// root) and unlinked when the guard is dropped.
    pub fn redmine() -> Option<RealServer> {
        if !installed(
            Path::new("/usr/share/redmine/Gemfile"),
            "install-redmine.sh",
        ) || !installed(Path::new("/usr/bin/thin"), "install-redmine.sh")
        {
            return None;
        }
        if !running_as_root(
            "Redmine's test instances are linked from /var/lib/redmine (needs root)",
        ) {
            return None;
        }
        Some(RealServer::start(
            "start-redmine.sh",
            "stop-redmine.sh",
            free_port_pair(),
            &[],
        ))
    }

    /// The admin API key of a server from [`RealServer::redmine`].
    pub fn redmine_api_key(&self) -> String {
        std::fs::read_to_string(self.state.path().join("api_key"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// The CA that signed the server's TLS certificate (Samba, OpenLDAP, 389-DS).
    pub fn ca(&self) -> PathBuf {
        self.state.path().join("tls/ca.pem")
    }
}

impl RealServer {
    /// A throw-away PostgreSQL cluster on 127.0.0.1:`port` (initdb as an unprivileged user),
    /// superuser `offboard_admin` trusted from loopback, every other role by SCRAM password;
    /// with `tls`, TLS too (required for every role but the superuser), its certificate signed
    /// by the CA at `pg_ca()`.
    pub fn postgres(tls: bool) -> Option<RealServer> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path().join("bin/initdb")))
                    .find(|p| p.exists())
            })
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/VERSION/bin/initdb"));
        installed(&bin, "install-postgres.sh").then(|| {
            RealServer::start(
                "start-postgres.sh",
                "stop-postgres.sh",
                free_port_pair(),
                &[("PG_TLS", if tls { "1" } else { "0" })],
            )
        })
    }

    /// The CA that signed the PostgreSQL server's certificate (with `postgres(true)`).
    pub fn pg_ca(&self) -> PathBuf {
        self.state.path().join("tls/ca.pem")
    }

    /// Stop the server and start it again on the same port and data (a database restart).
    pub fn restart(&self) {
        self.stop_now();
        self.start_again();
    }

    /// Stop the server (it can be started again with `start_again`).
    pub fn stop_now(&self) {
        let stop = Command::new("bash")
            .arg(script(self.stop_script))
            .arg(self.state.path())
            .output()
            .unwrap();
        assert!(stop.status.success(), "{stop:?}");
    }

    /// Start a server stopped with `stop_now` again, same port and data.
    pub fn start_again(&self) {
        let out = Command::new("bash")
            .arg(script(
                self.stop_script.replacen("stop-", "start-", 1).as_str(),
            ))
            .arg(self.port.to_string())
            .arg(self.state.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script(self.stop_script))
            .arg(self.state.path())
            .args(self.stop_args)
            .status();
    }
}
