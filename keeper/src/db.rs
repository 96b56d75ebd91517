//! Client connections to Postgres (the monitor or the local node): connecting, forwarding
//! LISTEN notifications, and turning errors into messages.
//!
//! A connection attempt is bounded as a whole (TCP, TLS, authentication): tokio-postgres's
//! `connect_timeout` only bounds the TCP connect, and a server that accepts connections but
//! never answers would otherwise hold a command forever.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Socket};

/// A notification received on a LISTENed channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The channel.
    pub channel: String,
    /// The payload.
    pub payload: String,
}

/// How long one host may take to connect when `connect_timeout` is not set.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server or the network refused.
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// No answer within the bound.
    #[error("no answer within {} s (connect_timeout)", .0.as_secs())]
    TimedOut(Duration),
}

impl ConnectError {
    /// What went wrong, as [`report`] says it.
    pub fn report(&self) -> ErrorReport {
        match self {
            ConnectError::Postgres(e) => report(e),
            ConnectError::TimedOut(_) => ErrorReport {
                message: self.to_string(),
                hint: None,
                code: None,
            },
        }
    }
}

/// The longest a whole connection attempt may take: `connect_timeout` (10 s when unset or 0)
/// for each host to try.
pub fn connect_bound(config: &Config) -> Duration {
    let per_host = config
        .get_connect_timeout()
        .copied()
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    per_host * u32::try_from(config.get_hosts().len().max(1)).unwrap_or(u32::MAX)
}

/// Connects with `config`, without TLS (local connections).
pub async fn connect(
    config: &Config,
) -> Result<(Client, mpsc::UnboundedReceiver<Notification>), ConnectError> {
    connect_with(config, NoTls).await
}

/// Connects with `config` and `tls`, within [`connect_bound`]. The connection runs in a task
/// of its own that forwards notifications to the returned receiver; the receiver closes when
/// the connection ends.
pub async fn connect_with<T>(
    config: &Config,
    tls: T,
) -> Result<(Client, mpsc::UnboundedReceiver<Notification>), ConnectError>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let bound = connect_bound(config);
    let (client, mut connection) = tokio::time::timeout(bound, config.connect(tls))
        .await
        .map_err(|_| ConnectError::TimedOut(bound))??;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
            match message {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    let _ = tx.send(Notification {
                        channel: n.channel().to_string(),
                        payload: n.payload().to_string(),
                    });
                }
                Some(Ok(AsyncMessage::Notice(notice))) => {
                    tracing::debug!(notice = notice.message(), "server notice");
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    tracing::debug!(%error, "connection closed");
                    break;
                }
                None => break,
            }
        }
    });
    Ok((client, rx))
}

/// What a client error says: the server's message and hint when it sent one, or the
/// client's description, and the SQLSTATE if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    /// The message.
    pub message: String,
    /// The server's hint.
    pub hint: Option<String>,
    /// The SQLSTATE, when the server sent one.
    pub code: Option<String>,
}

/// The report of `error`.
pub fn report(error: &tokio_postgres::Error) -> ErrorReport {
    match error.as_db_error() {
        Some(db) => ErrorReport {
            message: match db.detail() {
                Some(detail) => format!("{} ({detail})", db.message()),
                None => db.message().to_string(),
            },
            hint: db.hint().map(str::to_string),
            code: Some(db.code().code().to_string()),
        },
        None => {
            let mut message = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(inner) = source {
                message = format!("{message}: {inner}");
                source = inner.source();
            }
            ErrorReport {
                message,
                hint: None,
                code: None,
            }
        }
    }
}

/// Quotes `name` as an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes `value` as an SQL string literal.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(quote_ident("my\"db"), "\"my\"\"db\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
