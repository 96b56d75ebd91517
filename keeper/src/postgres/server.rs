//! Running Postgres: start it as a child process of the keeper, stop it, notice when it died.
//! A server started by someone else (a database taken over, or left running by a keeper that
//! was killed) is adopted through its `postmaster.pid`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::process::Child;

use super::pgdata::{PostmasterPid, process_exists};
use super::programs::PgBin;
use crate::exit::{CliError, CliResult, Exit};

/// How to stop Postgres (its three shutdown modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Disconnect clients, checkpoint (SIGINT).
    Fast,
    /// Quit without a checkpoint (SIGQUIT).
    Immediate,
}

impl StopMode {
    fn signal(self) -> Signal {
        match self {
            StopMode::Fast => Signal::SIGINT,
            StopMode::Immediate => Signal::SIGQUIT,
        }
    }
}

/// The Postgres server of one data directory.
pub struct PostgresServer {
    bin: PgBin,
    pgdata: PathBuf,
    child: Option<Child>,
    /// Whether this keeper saw Postgres running since it started.
    seen_running: bool,
    /// Whether the last stop was this keeper's own (cleared when it starts Postgres).
    stopped_by_us: bool,
}

/// How long Postgres may take to start or stop before the keeper gives up (crash recovery of
/// a busy server can take a while).
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

impl PostgresServer {
    /// The server of `pgdata`, run with the programs of `bin`.
    pub fn new(bin: PgBin, pgdata: &Path) -> PostgresServer {
        PostgresServer {
            bin,
            pgdata: pgdata.to_path_buf(),
            child: None,
            seen_running: false,
            stopped_by_us: false,
        }
    }

    /// The programs.
    pub fn bin(&self) -> &PgBin {
        &self.bin
    }

    /// The postmaster's pid when it runs.
    pub fn running_pid(&mut self) -> Option<i32> {
        if let Some(child) = &mut self.child {
            match child.try_wait() {
                Ok(None) => {
                    self.seen_running = true;
                    return child.id().and_then(|id| i32::try_from(id).ok());
                }
                Ok(Some(status)) => {
                    tracing::warn!(%status, "Postgres exited");
                    self.child = None;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot check the Postgres process");
                    self.child = None;
                }
            }
        }
        let pid = PostmasterPid::read(&self.pgdata)
            .filter(PostmasterPid::is_alive)
            .map(|p| p.pid);
        self.seen_running |= pid.is_some();
        pid
    }

    /// Whether Postgres is down although this keeper saw it run and did not stop it: someone
    /// else stopped it (an operator's `pg_ctl stop`), or it crashed.
    pub fn stopped_behind_our_back(&mut self) -> bool {
        !self.is_running() && self.seen_running && !self.stopped_by_us
    }

    /// Resolves when the Postgres started as our child exits (never for an adopted one).
    /// Cancel-safe: meant for `select!` beside the keeper's other waits.
    pub async fn exited(&mut self) {
        match &mut self.child {
            Some(child) => {
                let _ = child.wait().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Whether Postgres runs.
    pub fn is_running(&mut self) -> bool {
        self.running_pid().is_some()
    }

    /// Starts Postgres unless it runs, and waits until it accepts connections.
    pub async fn start(&mut self) -> CliResult<()> {
        if self.is_running() {
            return self.wait_ready(START_TIMEOUT).await;
        }
        let log_path = self.pgdata.join("startup.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| {
                CliError::new(
                    Exit::Pgctl,
                    format!("cannot open {}: {e}", log_path.display()),
                )
            })?;
        let log_err = log
            .try_clone()
            .map_err(|e| CliError::new(Exit::Pgctl, format!("cannot open the log: {e}")))?;
        let mut cmd = self.bin.command("postgres");
        cmd.arg("-D")
            .arg(&self.pgdata)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Postgres must outlive neither a crash of ours nor a restart of ours: not killed
            // when the handle is dropped
            .kill_on_drop(false);
        tracing::info!(pgdata = %self.pgdata.display(), "starting Postgres");
        self.stopped_by_us = false;
        let child = cmd.spawn().map_err(|e| {
            CliError::new(
                Exit::Pgctl,
                format!("cannot start {}: {e}", self.bin.path("postgres").display()),
            )
        })?;
        self.child = Some(child);
        self.wait_ready(START_TIMEOUT).await
    }

    /// Waits until the server accepts connections.
    pub async fn wait_ready(&mut self, timeout: Duration) -> CliResult<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pid) = PostmasterPid::read(&self.pgdata)
                && pid.is_alive()
                && pid.is_ready()
            {
                return Ok(());
            }
            if self.child.is_some() && !self.is_running() {
                return Err(CliError::new(
                    Exit::Pgctl,
                    format!(
                        "Postgres exited while starting: {}",
                        self.log_tail().unwrap_or_default()
                    ),
                ));
            }
            if Instant::now() > deadline {
                return Err(CliError::new(
                    Exit::Pgctl,
                    format!(
                        "Postgres did not become ready within {}s",
                        timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops Postgres in `mode` and waits until it is gone. Falls back to an immediate
    /// shutdown when a smart or fast one takes longer than `timeout`.
    pub async fn stop(&mut self, mode: StopMode, timeout: Duration) -> CliResult<()> {
        let Some(pid) = self.running_pid() else {
            return Ok(());
        };
        tracing::info!(pgdata = %self.pgdata.display(), ?mode, "stopping Postgres");
        self.stopped_by_us = true;
        signal(pid, mode.signal());
        let deadline = Instant::now() + timeout;
        let mut escalated = mode == StopMode::Immediate;
        loop {
            if !self.pid_alive(pid) {
                self.child = None;
                return Ok(());
            }
            if Instant::now() > deadline {
                if escalated {
                    return Err(CliError::new(
                        Exit::Pgctl,
                        format!("Postgres (pid {pid}) did not stop"),
                    ));
                }
                tracing::warn!(pid, "Postgres is slow to stop: immediate shutdown");
                signal(pid, Signal::SIGQUIT);
                escalated = true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn pid_alive(&mut self, pid: i32) -> bool {
        if let Some(child) = &mut self.child {
            return matches!(child.try_wait(), Ok(None));
        }
        process_exists(pid)
    }

    /// Restarts Postgres (fast shutdown).
    pub async fn restart(&mut self) -> CliResult<()> {
        self.stop(StopMode::Fast, Duration::from_secs(60)).await?;
        self.start().await
    }

    /// The last lines of `startup.log`, to explain a failed start.
    pub fn log_tail(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.pgdata.join("startup.log")).ok()?;
        let lines: Vec<&str> = text.lines().collect();
        Some(lines[lines.len().saturating_sub(5)..].join(" | "))
    }
}

/// Sends `sig` to a process id read from our own child or postmaster.pid.
fn signal(pid: i32, sig: Signal) {
    if let Err(e) = nix::sys::signal::kill(Pid::from_raw(pid), sig) {
        tracing::debug!(pid, signal = %sig, error = %e, "kill failed");
    }
}
