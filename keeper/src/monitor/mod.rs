//! The keeper's connection to the monitor: one persistent libpq-protocol connection, used for
//! every call and for LISTEN, reconnected when it drops. The monitor may be given as several
//! hosts; the connection goes to whichever accepts writes.

mod api;
pub mod tls;
pub mod uri;

pub use api::{
    EventRow, FormationRow, Heartbeat, NodeAddress, NodeStateRow, Registered, Registration,
};

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::{Client, Statement};

use crate::db::{self, Notification};
use crate::exit::{CliError, Exit};
use uri::PgUri;

/// The extension version this keeper speaks to.
pub const EXTENSION_VERSION: &str = "2.0";

/// The longest one call to the monitor may take: a monitor that stops answering (or a network
/// that drops packets) fails the call instead of holding a command or the service forever.
/// Calls wait for group locks at most `pgautofailover.group_lock_timeout` (2 s) on our monitor.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a monitor call failed.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// No host of the URI accepted a connection.
    #[error("cannot connect to the monitor at {uri}: {message}")]
    Connect {
        /// The URI, password hidden.
        uri: String,
        /// Why.
        message: String,
    },
    /// The monitor answered with an error.
    #[error("the monitor refused: {message}")]
    Refused {
        /// The server's message.
        message: String,
        /// The server's hint.
        hint: Option<String>,
        /// The SQLSTATE.
        code: String,
    },
    /// The connection broke during a call.
    #[error("lost the connection to the monitor: {0}")]
    Lost(String),
    /// The monitor answered something this keeper does not understand.
    #[error("unexpected answer from the monitor: {0}")]
    Protocol(String),
    /// The monitor's database has no pgautofailover extension, or another version.
    #[error("{message}")]
    Extension {
        /// What is wrong.
        message: String,
    },
}

impl MonitorError {
    /// Whether trying again later may succeed: the connection failed, or the monitor asked to
    /// retry (`object_in_use`, `lock_not_available`, serialization failures, deadlocks).
    pub fn is_transient(&self) -> bool {
        match self {
            MonitorError::Connect { .. } | MonitorError::Lost(_) => true,
            MonitorError::Refused { code, .. } => fsm::protocol::is_retryable(code),
            _ => false,
        }
    }

    fn from_call(error: &tokio_postgres::Error) -> MonitorError {
        let report = db::report(error);
        match report.code {
            Some(code) => MonitorError::Refused {
                message: report.message,
                hint: report.hint,
                code,
            },
            None => MonitorError::Lost(report.message),
        }
    }
}

impl From<MonitorError> for CliError {
    fn from(error: MonitorError) -> CliError {
        let reported = match &error {
            // 2.0: a request the monitor refuses exits 1; scripts read 1 as "refused"
            MonitorError::Refused { message, hint, .. } => {
                let e = CliError::new(Exit::BadArgs, format!("the monitor refused: {message}"));
                match hint {
                    Some(hint) => e.hint(hint.clone()),
                    None => e,
                }
            }
            MonitorError::Extension { message } => {
                CliError::new(Exit::ExtensionMissing, message.clone())
            }
            MonitorError::Connect { .. } => CliError::new(Exit::Monitor, error.to_string()).hint(
                "Check the monitor URI (pg_autoctl config get pg_autoctl.monitor) and that the monitor is running and reachable.",
            ),
            other => CliError::new(Exit::Monitor, other.to_string()),
        };
        reported.caused_by(error)
    }
}

/// A connection to the monitor.
pub struct Monitor {
    uri: PgUri,
    client: Client,
    notifications: mpsc::UnboundedReceiver<Notification>,
    node_active: Option<Statement>,
    listening: Vec<String>,
}

impl Monitor {
    /// Connects to `uri` (one of its hosts, a writable one).
    pub async fn connect(uri: &PgUri, application_name: &str) -> Result<Monitor, MonitorError> {
        let mut uri = uri.clone();
        // the monitor must take writes: with several hosts, find the primary
        if uri.param("target_session_attrs").is_none() {
            uri.set_param("target_session_attrs", "read-write");
        }
        let config = uri
            .client_config(application_name)
            .map_err(|e| MonitorError::Connect {
                uri: uri.redacted(),
                message: e.to_string(),
            })?;
        let tls = tls::verification(
            uri.param("sslmode").unwrap_or("prefer"),
            uri.param("sslrootcert"),
        )
        .and_then(|v| tls::connector(&v))
        .map_err(|e| MonitorError::Connect {
            uri: uri.redacted(),
            message: e.to_string(),
        })?;
        let (client, notifications) =
            db::connect_with(&config, tls)
                .await
                .map_err(|e| MonitorError::Connect {
                    uri: uri.redacted(),
                    message: e.report().message,
                })?;
        Ok(Monitor {
            uri,
            client,
            notifications,
            node_active: None,
            listening: Vec::new(),
        })
    }

    /// Connects to the monitor at `uri`, given as text.
    pub async fn connect_str(uri: &str, application_name: &str) -> Result<Monitor, CliError> {
        let parsed = PgUri::parse(uri).map_err(|e| {
            CliError::bad_args(format!("invalid monitor URI: {e}")).hint(
                "Give it as postgres://autoctl_node@host:port/pg_auto_failover (pg_autoctl show uri on the monitor prints it).",
            )
        })?;
        Ok(Monitor::connect(&parsed, application_name).await?)
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// LISTENs on `channel`.
    pub async fn listen(&mut self, channel: &str) -> Result<(), MonitorError> {
        Monitor::bounded(
            self.client
                .batch_execute(&format!("LISTEN {}", db::quote_ident(channel))),
        )
        .await?;
        if !self.listening.iter().any(|c| c == channel) {
            self.listening.push(channel.to_string());
        }
        Ok(())
    }

    /// The next notification, waiting at most `timeout`. `None` on timeout; an error when the
    /// connection is gone.
    pub async fn next_notification(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Notification>, MonitorError> {
        match tokio::time::timeout(timeout, self.notifications.recv()).await {
            Ok(Some(n)) => Ok(Some(n)),
            Ok(None) => Err(MonitorError::Lost("connection closed".to_string())),
            Err(_) => Ok(None),
        }
    }

    /// Checks that the monitor has the pgautofailover extension in the version we speak.
    pub async fn check_extension(&self) -> Result<(), MonitorError> {
        let row = Monitor::bounded(self.client.query_opt(
            "SELECT default_version, installed_version FROM pg_catalog.pg_available_extensions \
             WHERE name = 'pgautofailover'",
            &[],
        ))
        .await?;
        let expected =
            std::env::var("PG_AUTOCTL_EXTENSION_VERSION").unwrap_or(EXTENSION_VERSION.to_string());
        let installed: Option<String> = match &row {
            Some(row) => row
                .try_get(1)
                .map_err(|e| MonitorError::Protocol(e.to_string()))?,
            None => None,
        };
        match installed {
            Some(v) if v == expected => Ok(()),
            Some(v) => Err(MonitorError::Extension {
                message: format!(
                    "the monitor runs pgautofailover extension version {v}, this pg_autoctl needs version {expected}"
                ),
            }),
            None => Err(MonitorError::Extension {
                message: format!(
                    "the database at {} has no pgautofailover extension: is it a pg_auto_failover monitor?",
                    self.uri.redacted()
                ),
            }),
        }
    }

    fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `call` within [`CALL_TIMEOUT`]; a call that times out is a lost connection.
    async fn bounded<T>(
        call: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, MonitorError> {
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(result) => result.map_err(|e| MonitorError::from_call(&e)),
            Err(_) => Err(MonitorError::Lost(format!(
                "no answer within {} s",
                CALL_TIMEOUT.as_secs()
            ))),
        }
    }
}
