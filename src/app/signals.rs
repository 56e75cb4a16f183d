//! Stopping a run cleanly: the signals that stop it, waking a checklist question that waits for
//! a key, and the runtime runs are driven on.

use std::sync::Arc;

use anyhow::{Context, Result};

/// The async runtime a command runs providers on.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// SIGINT (Ctrl-C), SIGTERM and SIGHUP (the terminal or SSH session went away), registered as
/// soon as this is created.
pub struct StopSignals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Must be called inside the runtime.
    pub fn listen() -> Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            int: signal(SignalKind::interrupt()).context("listening for Ctrl-C")?,
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            hup: signal(SignalKind::hangup()).context("listening for SIGHUP")?,
        })
    }

    pub async fn recv(&mut self) -> &'static str {
        // SIGINT last: a prompt interrupted by another signal raises SIGINT itself.
        tokio::select! {
            biased;
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Makes a stop signal end a checklist question that is waiting for a key.
///
/// The question blocks the thread that would notice the signal, so without this `kill <pid>`
/// (or SIGINT from another process) at a question would take effect only once someone answered
/// it. After a stop signal, and for as long as a question is on screen, this sends SIGUSR1 to
/// the thread that asks: its `poll()` for the next key returns EINTR (never restarted on Linux),
/// which the prompt reports as an interrupted read, and the run stops as for Ctrl-C. It repeats
/// every 50 ms because a wake-up landing just before the prompt starts waiting is lost.
pub struct PromptWaker {
    task: tokio::task::JoinHandle<()>,
    reason: Arc<std::sync::OnceLock<&'static str>>,
}

impl PromptWaker {
    /// Must be called inside the runtime, on the thread that asks the questions.
    pub fn start() -> Result<PromptWaker> {
        use tokio::signal::unix::{SignalKind, signal};
        // SAFETY: pthread_self has no preconditions; the main thread outlives the runtime.
        let asker = unsafe { libc::pthread_self() };
        let mut signals = StopSignals::listen()?;
        // A handler must exist for SIGUSR1, or the wake-up would kill the process; tokio's
        // records it and nothing waits on it.
        let usr1 = signal(SignalKind::user_defined1()).context("listening for SIGUSR1")?;
        let reason = Arc::new(std::sync::OnceLock::new());
        let seen = reason.clone();
        let task = tokio::spawn(async move {
            let _usr1 = usr1;
            let _ = seen.set(signals.recv().await);
            loop {
                if crate::ui::prompt::asking() {
                    // SAFETY: `asker` is a live thread of this process (it owns the runtime
                    // this task runs on), and SIGUSR1 has a handler.
                    unsafe {
                        libc::pthread_kill(asker, libc::SIGUSR1);
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        });
        Ok(PromptWaker { task, reason })
    }

    /// Why a question's read was interrupted: the stop signal, once the waker has seen it (a
    /// signal can end the read before the runtime has passed it on), else Ctrl-C typed at it.
    pub async fn reason(&self) -> &'static str {
        for _ in 0..20 {
            if let Some(r) = self.reason.get() {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        "SIGINT (Ctrl-C at a question)"
    }
}

impl Drop for PromptWaker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether a run ended on an interrupted read: Ctrl-C at a checklist question, or a stop signal
/// the [`PromptWaker`] turned into one.
pub fn is_interrupted_read(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::Interrupted)
            || c.downcast_ref::<dialoguer::Error>()
                .is_some_and(|dialoguer::Error::IO(io)| {
                    io.kind() == std::io::ErrorKind::Interrupted
                })
    })
}
