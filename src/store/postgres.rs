//! The PostgreSQL connection: where to connect (credentials only by reference), and the few
//! statements the shared state needs, run by `tokio-postgres` on a thread of its own.
//!
//! The journal and the locks are synchronous and are called from inside the command's tokio
//! runtime, so the connection lives on a dedicated thread with a current-thread runtime of its
//! own; a call sends it a job and waits for the answer. One connection per process: the advisory
//! locks it holds are released by the server when the process (or the connection) dies.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::exit::CliError;

/// The SQL that creates (or brings up to date) the shared schema and its roles.
pub const SCHEMA_SQL: &str = include_str!("schema.sql");

/// Where the shared state lives: a `postgres://` URL without a password, and what it refers to.
#[derive(Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    /// `disable` or `verify-full`.
    pub verify_full: bool,
    pub ca_file: Option<PathBuf>,
    /// Where the password came from (never the password): for messages.
    password_source: Option<String>,
    password: Option<secrecy::SecretString>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

fn usage(msg: String) -> CliError {
    CliError::usage(msg)
}

const PASSWORD_HINT: &str = "give the password by reference: `?password_env=NAME` (the name of an environment variable holding it), PGPASSWORD, or a line in ~/.pgpass (PGPASSFILE)";

impl Target {
    /// Parse `postgres://[user@]host[:port][/dbname][?sslmode=…&sslrootcert=…&password_env=…]`,
    /// filling what it leaves out from the standard `PG*` variables. A password in the URL is
    /// refused: it would end up in shell history, the process list and unit files.
    pub fn parse(url: &str) -> Result<Target> {
        Self::parse_with(url, &|k| std::env::var(k).ok())
    }

    pub fn parse_with(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Target> {
        let parsed = url::Url::parse(url).map_err(|e| {
            usage(format!("--state: not a postgres:// URL ({e})"))
                .hint("e.g. --state postgres://offboard@db.corp.example/offboard?sslmode=verify-full&sslrootcert=/etc/offboard/db-ca.pem")
        })?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(usage(format!(
                "--state: the scheme is {:?}; only postgres:// is a shared state backend",
                parsed.scheme()
            ))
            .hint("for a local directory, use --state-dir DIR")
            .into());
        }
        if parsed.password().is_some() {
            return Err(
                usage("--state: the URL carries a password; offboard never takes one on the command line or in a URL".into())
                    .hint(PASSWORD_HINT)
                    .into(),
            );
        }
        let mut sslmode = env("PGSSLMODE");
        let mut ca_file = env("PGSSLROOTCERT").map(PathBuf::from);
        let mut password_env = None;
        for (k, v) in parsed.query_pairs() {
            match k.as_ref() {
                "sslmode" => sslmode = Some(v.into_owned()),
                "sslrootcert" => ca_file = Some(PathBuf::from(v.as_ref())),
                "password_env" => password_env = Some(v.into_owned()),
                "password" => {
                    return Err(usage(
                        "--state: the URL carries a password; offboard never takes one on the command line or in a URL".into(),
                    )
                    .hint(PASSWORD_HINT)
                    .into());
                }
                other => {
                    return Err(usage(format!("--state: unknown URL parameter {other:?}"))
                        .hint("known: sslmode (disable, verify-full), sslrootcert (a CA file), password_env (the NAME of a variable holding the password)")
                        .into());
                }
            }
        }
        let host = match parsed.host_str() {
            Some(h) if !h.is_empty() => h.trim_matches(['[', ']']).to_string(),
            _ => env("PGHOST").unwrap_or_else(|| "localhost".into()),
        };
        let port = match parsed.port() {
            Some(p) => p,
            None => match env("PGPORT") {
                Some(p) => p
                    .parse()
                    .map_err(|_| usage(format!("PGPORT {p:?} is not a port number")))?,
                None => 5432,
            },
        };
        let user = match parsed.username() {
            "" => env("PGUSER")
                .or_else(|| env("USER"))
                .ok_or_else(|| usage("--state: no user in the URL and no PGUSER".into()))?,
            u => percent_encoding::percent_decode_str(u)
                .decode_utf8_lossy()
                .into_owned(),
        };
        let dbname = match parsed.path().trim_start_matches('/') {
            "" => env("PGDATABASE").unwrap_or_else(|| user.clone()),
            d => percent_encoding::percent_decode_str(d)
                .decode_utf8_lossy()
                .into_owned(),
        };
        let loopback = matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1");
        let verify_full = match sslmode.as_deref() {
            Some("verify-full") => true,
            Some("disable") => false,
            None => !loopback,
            Some(other) => {
                return Err(usage(format!(
                    "--state: sslmode={other} is not supported: offboard connects either in the clear (disable, for a database on this host) or with the server's certificate checked against a CA (verify-full)"
                ))
                .hint("use sslmode=verify-full&sslrootcert=/path/to/ca.pem")
                .into());
            }
        };
        if verify_full && ca_file.is_none() {
            return Err(usage(format!(
                "--state: sslmode=verify-full needs the CA that signed {host}'s certificate"
            ))
            .hint("add &sslrootcert=/path/to/ca.pem to the URL (or set PGSSLROOTCERT)")
            .into());
        }
        let mut target = Target {
            host,
            port,
            user,
            dbname,
            verify_full,
            ca_file,
            password_source: None,
            password: None,
        };
        if let Some(name) = password_env {
            let value = env(&name).ok_or_else(|| {
                usage(format!(
                    "--state: password_env={name}, but the environment has no {name}"
                ))
                .hint(format!("export {name}=… before running offboard"))
            })?;
            target.password = Some(value.into());
            target.password_source = Some(format!("${name}"));
        } else if let Some(p) = env("PGPASSWORD") {
            target.password = Some(p.into());
            target.password_source = Some("$PGPASSWORD".into());
        } else {
            let file = env("PGPASSFILE")
                .map(PathBuf::from)
                .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")));
            if let Some(file) = file
                && let Some(p) = pgpass_lookup(&file, &target)
            {
                target.password = Some(p.into());
                target.password_source = Some(file.display().to_string());
            }
        }
        Ok(target)
    }

    /// Use this password (from a `[state]` table's reference); `source` names where it came
    /// from, never what it is.
    pub fn with_password(mut self, password: secrecy::SecretString, source: String) -> Target {
        self.password = Some(password);
        self.password_source = Some(source);
        self
    }

    /// `postgres://user@host:port/dbname`: never a password.
    pub fn display(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "postgres://{}@{host}:{}/{}",
            self.user, self.port, self.dbname
        )
    }

    /// A name for this database made of `[a-z0-9-]` only (the local cache's directory).
    pub fn slug(&self) -> String {
        let raw = format!("{}-{}-{}-{}", self.host, self.port, self.dbname, self.user);
        let mut s: String = raw
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if c.is_ascii_alphanumeric() { c } else { '-' }
            })
            .collect();
        s.truncate(60);
        let digest = crate::journal::sha256_hex(raw.as_bytes());
        format!("{s}-{}", &digest[..8])
    }

    fn config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("offboard")
            .connect_timeout(std::time::Duration::from_secs(10))
            // A database that stops answering (a partition with no reset) ends the connection
            // within a minute instead of hanging the run.
            .keepalives_idle(std::time::Duration::from_secs(30))
            .keepalives_interval(std::time::Duration::from_secs(10))
            .tcp_user_timeout(std::time::Duration::from_secs(60))
            .ssl_mode(if self.verify_full {
                tokio_postgres::config::SslMode::Require
            } else {
                tokio_postgres::config::SslMode::Disable
            });
        if let Some(p) = &self.password {
            use secrecy::ExposeSecret;
            c.password(p.expose_secret().as_bytes());
        }
        c
    }

    fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        if let Some(path) = &self.ca_file {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| anyhow!("sslrootcert {}: {e}", path.display()))?;
            if certs.is_empty() {
                bail!("sslrootcert {}: no PEM certificate in it", path.display());
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| anyhow!("sslrootcert {}: {e}", path.display()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow!("TLS setup: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

/// The password for `target` in a `.pgpass` file (`host:port:db:user:password`, `*` matching
/// anything, `\:` and `\\` escaped), if the file exists and is private (0600, as libpq wants).
fn pgpass_lookup(file: &Path, target: &Target) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(file).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    let port = target.port.to_string();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                }
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        if fields.len() != 5 {
            continue;
        }
        let ok = |f: &str, v: &str| f == "*" || f == v;
        if ok(&fields[0], &target.host)
            && ok(&fields[1], &port)
            && ok(&fields[2], &target.dbname)
            && ok(&fields[3], &target.user)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

type Job = Box<dyn FnOnce(Arc<Client>) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// One connection to the shared database, on a thread of its own.
pub struct Pg {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
    target: Target,
}

/// Whether an error is a lost connection (the server restarted, the network went away).
pub fn is_connection_lost(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<Lost>().is_some()
            || c.downcast_ref::<tokio_postgres::Error>().is_some_and(|e| {
                e.is_closed()
                    || e.code() == Some(&SqlState::ADMIN_SHUTDOWN)
                    || e.code() == Some(&SqlState::CRASH_SHUTDOWN)
                    || (e.code().is_none() && e.as_db_error().is_none())
            })
    })
}

/// The connection's thread is gone.
#[derive(Debug, thiserror::Error)]
#[error("the connection to the database was lost")]
pub struct Lost;

/// Two writers raced for the same event of a departure, and this one lost: nothing was written.
#[derive(Debug, thiserror::Error)]
#[error(
    "another process already recorded event {seq} of departure {departure}; this one was not recorded (the journal was not forked)"
)]
pub struct LostRace {
    pub departure: String,
    pub seq: u64,
}

impl Pg {
    /// Connect (TLS per the target), on a new thread that keeps the connection.
    pub fn connect(target: &Target) -> Result<Pg> {
        let (jobs, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        let config = target.config();
        let tls = if target.verify_full {
            Some(target.tls()?)
        } else {
            None
        };
        let shown = target.display();
        std::thread::Builder::new()
            .name("offboard-postgres".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ =
                            ready_tx.send(Err(anyhow!(e).context("starting the database runtime")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let connected = match tls {
                        Some(tls) => config.connect(tls).await.map(|(c, conn)| {
                            tokio::spawn(async move {
                                let _ = conn.await;
                            });
                            c
                        }),
                        None => config
                            .connect(tokio_postgres::NoTls)
                            .await
                            .map(|(c, conn)| {
                                tokio::spawn(async move {
                                    let _ = conn.await;
                                });
                                c
                            }),
                    };
                    let client = match connected {
                        Ok(c) => Arc::new(c),
                        Err(e) => {
                            let _ = ready_tx
                                .send(Err(anyhow!(e).context(format!("connecting to {shown}"))));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    while let Some(job) = rx.recv().await {
                        job(client.clone()).await;
                    }
                });
            })
            .context("starting the database thread")?;
        ready_rx.recv().map_err(|_| anyhow!(Lost))??;
        Ok(Pg {
            jobs,
            target: target.clone(),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Run `f` with the client on the connection's thread and wait for its answer.
    pub fn call<T, F, Fut>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Client>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let job: Job = Box::new(move |c| {
            Box::pin(async move {
                let _ = tx.send(f(c).await);
            })
        });
        self.jobs.send(job).map_err(|_| anyhow!(Lost))?;
        rx.recv().map_err(|_| anyhow!(Lost))?
    }

    /// Create or update the schema and roles (needs a role that may create them).
    pub fn apply_schema(&self) -> Result<()> {
        self.call(|c| async move {
            c.batch_execute(SCHEMA_SQL)
                .await
                .context("applying the offboard schema")
        })
    }

    /// Every departure with the sha256 (hex) of its journal's bytes as stored (its lines in
    /// seq order, each ended by a newline), computed by the server.
    pub fn departures(&self) -> Result<Vec<(String, String)>> {
        self.call(|c| async move {
            let rows = c
                .query(
                    "SELECT departure, encode(sha256(convert_to(string_agg(line || E'\\n', '' ORDER BY seq), 'UTF8')), 'hex') \
                     FROM offboard.events GROUP BY departure ORDER BY departure",
                    &[],
                )
                .await
                .context("listing departures in the database")?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
                .collect())
        })
    }

    /// A departure's event lines in seq order, each with its seq and hash columns.
    pub fn events(&self, departure: &str) -> Result<Vec<(u64, String, String)>> {
        let d = departure.to_string();
        self.call(move |c| async move {
            let rows = c
                .query(
                    "SELECT seq, line, hash FROM offboard.events WHERE departure = $1 ORDER BY seq",
                    &[&d],
                )
                .await
                .with_context(|| format!("reading the journal of {d} from the database"))?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, i64>(0) as u64, r.get(1), r.get(2)))
                .collect())
        })
    }

    /// Append one event in its own transaction; returns once it has committed. Losing the
    /// race for `seq` is a [`LostRace`].
    pub fn append(&self, departure: &str, event: &crate::journal::Event, line: &str) -> Result<()> {
        let (d, seq, ts, line, hash, prev) = (
            departure.to_string(),
            event.seq,
            event.ts.clone(),
            line.to_string(),
            event.hash.clone(),
            event.prev.clone(),
        );
        self.call(move |c| async move {
            let seq_i = i64::try_from(seq).context("seq out of range")?;
            let result: Result<(), tokio_postgres::Error> = async {
                // The departure's row comes with its first event (in one transaction).
                if seq == 0 {
                    c.batch_execute("BEGIN").await?;
                    let r = async {
                        c.execute(
                            "INSERT INTO offboard.departures (departure) VALUES ($1) ON CONFLICT DO NOTHING",
                            &[&d],
                        )
                        .await?;
                        c.execute(
                            "INSERT INTO offboard.events (departure, seq, ts, line, hash, prev) VALUES ($1, $2, $3, $4, $5, $6)",
                            &[&d, &seq_i, &ts, &line, &hash, &prev],
                        )
                        .await?;
                        c.batch_execute("COMMIT").await
                    }
                    .await;
                    if r.is_err() {
                        let _ = c.batch_execute("ROLLBACK").await;
                    }
                    r
                } else {
                    c.execute(
                        "INSERT INTO offboard.events (departure, seq, ts, line, hash, prev) VALUES ($1, $2, $3, $4, $5, $6)",
                        &[&d, &seq_i, &ts, &line, &hash, &prev],
                    )
                    .await
                    .map(|_| ())
                }
            }
            .await;
            match result {
                Ok(()) => Ok(()),
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    Err(anyhow!(LostRace { departure: d, seq }))
                }
                Err(e) => Err(anyhow!(e).context(format!(
                    "recording event {seq} of {d} in the database"
                ))),
            }
        })
    }

    /// Store an evidence revision's bytes and signature (a revision already stored with the
    /// same bytes is left as it is).
    pub fn put_evidence(
        &self,
        departure: &str,
        revision: u32,
        bytes: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        let (d, bytes) = (departure.to_string(), bytes.to_vec());
        let sha = crate::journal::sha256_hex(&bytes);
        let sig = String::from_utf8_lossy(signature).into_owned();
        self.call(move |c| async move {
            c.execute(
                "INSERT INTO offboard.evidence (departure, revision, bytes, sha256, signature) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&d, &(revision as i32), &bytes, &sha, &sig],
            )
            .await
            .with_context(|| format!("storing evidence revision {revision} of {d} in the database"))?;
            Ok(())
        })
    }

    /// The stored evidence of a departure: (revision, sha256, bytes, signature).
    pub fn evidence(&self, departure: &str) -> Result<Vec<StoredEvidence>> {
        let d = departure.to_string();
        self.call(move |c| async move {
            let rows = c
                .query(
                    "SELECT revision, sha256, bytes, signature FROM offboard.evidence WHERE departure = $1 ORDER BY revision, stored_at",
                    &[&d],
                )
                .await
                .with_context(|| format!("reading the evidence of {d} from the database"))?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, i32>(0) as u32, r.get(1), r.get(2), r.get(3)))
                .collect())
        })
    }

    /// Try the departure's advisory lock on this session; on success record the holder row,
    /// else return who holds it (host, pid, operator, since) if they said.
    pub fn try_lock(&self, departure: &str, holder: &Holder) -> Result<Option<Holder>> {
        let d = departure.to_string();
        let key = lock_key(departure);
        let h = holder.clone();
        self.call(move |c| async move {
            // The holder takes the lock, then records its row: a process that lost the race by
            // a moment may look before that row is there, or after a quick holder has already
            // let go. Try again for up to 2 s before saying the holder did not name itself.
            let mut tries = 0;
            loop {
                let got: bool = c
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                    .await
                    .with_context(|| format!("locking departure {d} in the database"))?
                    .get(0);
                if got {
                    break;
                }
                let row = c
                    .query_opt(
                        "SELECT host, pid, operator, since FROM offboard.holders WHERE departure = $1",
                        &[&d],
                    )
                    .await
                    .context("reading who holds the departure")?;
                tries += 1;
                match row {
                    Some(r) => {
                        return Ok(Some(Holder {
                            host: r.get(0),
                            pid: r.get::<_, i32>(1) as u32,
                            operator: r.get(2),
                            since: r.get(3),
                        }));
                    }
                    None if tries >= 20 => {
                        return Ok(Some(Holder {
                            host: "another host".into(),
                            pid: 0,
                            operator: "someone".into(),
                            since: "a moment ago".into(),
                        }));
                    }
                    None => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                }
            }
            c.execute(
                "INSERT INTO offboard.holders (departure, host, pid, operator, since) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (departure) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, operator = EXCLUDED.operator, since = EXCLUDED.since",
                &[&d, &h.host, &(h.pid as i32), &h.operator, &h.since],
            )
            .await
            .context("recording who holds the departure")?;
            Ok(None)
        })
    }

    /// Release the departure's advisory lock (and its holder row).
    pub fn unlock(&self, departure: &str, holder: &Holder) -> Result<()> {
        let d = departure.to_string();
        let key = lock_key(departure);
        let h = holder.clone();
        self.call(move |c| async move {
            c.execute(
                "DELETE FROM offboard.holders WHERE departure = $1 AND host = $2 AND pid = $3",
                &[&d, &h.host, &(h.pid as i32)],
            )
            .await?;
            c.query_one("SELECT pg_advisory_unlock($1)", &[&key])
                .await?;
            Ok(())
        })
    }
}

/// A stored evidence revision: (revision, sha256 hex of the bytes, the bytes, the SSHSIG
/// signature).
pub type StoredEvidence = (u32, String, Vec<u8>, String);

/// Who holds a departure.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub operator: String,
    pub since: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (pid {} on host {}) since {}",
            self.operator, self.pid, self.host, self.since
        )
    }
}

/// The advisory lock key of a departure: the first 8 bytes of a hash of its id, tagged so
/// other applications' locks on the same database do not collide by accident.
fn lock_key(departure: &str) -> i64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("offboard-departure:{departure}").as_bytes());
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn a_password_in_the_url_is_refused_and_never_echoed() {
        for url in [
            "postgres://tool:s3cret-pw@127.0.0.1:5432/offboard",
            "postgres://tool@127.0.0.1/offboard?password=s3cret-pw",
        ] {
            let err = Target::parse_with(url, &env(&[])).unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains("carries a password"), "{msg}");
            assert!(!msg.contains("s3cret-pw"), "{msg}");
        }
    }

    #[test]
    fn credentials_come_by_reference_and_tls_needs_a_ca() {
        let t = Target::parse_with(
            "postgres://tool@127.0.0.1:6543/shared?password_env=DBPW",
            &env(&[("DBPW", "pw-from-env"), ("PGPASSWORD", "other")]),
        )
        .unwrap();
        assert_eq!(t.display(), "postgres://tool@127.0.0.1:6543/shared");
        assert_eq!(t.password_source.as_deref(), Some("$DBPW"));
        assert!(!t.verify_full);
        assert!(!format!("{t:?}").contains("pw-from-env"));
        // PG* variables fill what the URL leaves out.
        let t = Target::parse_with(
            "postgres:///",
            &env(&[
                ("PGHOST", "127.0.0.1"),
                ("PGPORT", "7777"),
                ("PGUSER", "u"),
                ("PGDATABASE", "d"),
                ("PGPASSWORD", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(t.display(), "postgres://u@127.0.0.1:7777/d");
        assert_eq!(t.password_source.as_deref(), Some("$PGPASSWORD"));
        // A remote host is verify-full by default, and that needs a CA.
        let msg = format!(
            "{:#}",
            Target::parse_with("postgres://u@db.corp.example/d", &env(&[])).unwrap_err()
        );
        assert!(msg.contains("needs the CA"), "{msg}");
        let t = Target::parse_with(
            "postgres://u@db.corp.example/d?sslmode=verify-full&sslrootcert=/etc/ca.pem",
            &env(&[]),
        )
        .unwrap();
        assert!(t.verify_full);
        let msg = format!(
            "{:#}",
            Target::parse_with("postgres://u@db/d?sslmode=require", &env(&[])).unwrap_err()
        );
        assert!(msg.contains("sslmode=require is not supported"), "{msg}");
    }

    #[test]
    fn the_cache_directory_name_is_path_safe_whatever_the_url() {
        for url in [
            "postgres://..%2F..%2Fetc@127.0.0.1/offboard",
            "postgres://u@127.0.0.1/..%2F..%2Froot",
            "postgres://u@[::1]:5433/db",
        ] {
            let t = Target::parse_with(url, &env(&[])).unwrap();
            let slug = t.slug();
            assert!(
                slug.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{url}: {slug}"
            );
            assert!(slug.len() <= 69, "{slug}");
        }
        // Two databases, two caches.
        let a = Target::parse_with("postgres://u@127.0.0.1/a", &env(&[])).unwrap();
        let b = Target::parse_with("postgres://u@127.0.0.1/b", &env(&[])).unwrap();
        assert_ne!(a.slug(), b.slug());
    }

    #[test]
    fn pgpass_matches_with_wildcards_and_escapes_and_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:tool:nope\n127.0.0.1:*:shared:tool:pa\\:ss\n",
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let f = file.display().to_string();
        let t = Target::parse_with(
            "postgres://tool@127.0.0.1:6543/shared",
            &env(&[("PGPASSFILE", &f)]),
        )
        .unwrap();
        use secrecy::ExposeSecret;
        assert_eq!(t.password.as_ref().unwrap().expose_secret(), "pa:ss");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let t = Target::parse_with(
            "postgres://tool@127.0.0.1:6543/shared",
            &env(&[("PGPASSFILE", &f)]),
        )
        .unwrap();
        assert!(t.password.is_none());
    }
}
