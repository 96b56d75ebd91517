//! Signals to the service: SIGTERM and SIGINT stop it with a fast Postgres shutdown, SIGQUIT
//! with an immediate one, SIGHUP reloads the configuration. The service checks for them
//! between loops and while it waits, so a transition is never cut in the middle.

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::exit::{CliError, CliResult, Exit};

/// How the service was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRequest {
    /// SIGTERM.
    Smart,
    /// SIGINT.
    Fast,
    /// SIGQUIT.
    Immediate,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Requests {
    stop: Option<StopRequest>,
    reloads: u64,
}

/// Receives the service's signals.
pub struct Stopper {
    rx: watch::Receiver<Requests>,
    reloads_seen: u64,
}

impl Stopper {
    /// Starts listening for the signals.
    pub fn install() -> CliResult<Stopper> {
        let err = |e: std::io::Error| {
            CliError::new(
                Exit::Internal,
                format!("cannot install signal handlers: {e}"),
            )
        };
        let mut term = signal(SignalKind::terminate()).map_err(err)?;
        let mut int = signal(SignalKind::interrupt()).map_err(err)?;
        let mut quit = signal(SignalKind::quit()).map_err(err)?;
        let mut hup = signal(SignalKind::hangup()).map_err(err)?;
        let (tx, rx) = watch::channel(Requests::default());
        tokio::spawn(async move {
            loop {
                let stop = tokio::select! {
                    _ = term.recv() => Some(StopRequest::Smart),
                    _ = int.recv() => Some(StopRequest::Fast),
                    _ = quit.recv() => Some(StopRequest::Immediate),
                    _ = hup.recv() => None,
                };
                tx.send_modify(|r| match stop {
                    // a later, harder request wins
                    Some(s) => {
                        r.stop = Some(match (r.stop, s) {
                            (Some(StopRequest::Immediate), _) => StopRequest::Immediate,
                            (_, s) => s,
                        })
                    }
                    None => r.reloads += 1,
                });
            }
        });
        Ok(Stopper {
            rx,
            reloads_seen: 0,
        })
    }

    /// The stop request, if one came.
    pub fn requested(&self) -> Option<StopRequest> {
        self.rx.borrow().stop
    }

    /// Whether a reload was asked since the last call.
    pub fn take_reload(&mut self) -> bool {
        let reloads = self.rx.borrow().reloads;
        let new = reloads != self.reloads_seen;
        self.reloads_seen = reloads;
        new
    }

    /// Waits until a signal arrives.
    pub async fn wait(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Sleeps for `duration`, or less when a signal arrives.
    pub async fn sleep(&mut self, duration: Duration) {
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            () = self.wait() => {}
        }
    }
}
