//! Client connections to Postgres (the monitor or the local node): connecting, forwarding
//! LISTEN notifications, and turning errors into messages.

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

/// Connects with `config`, without TLS (local connections).
pub async fn connect(
    config: &Config,
) -> Result<(Client, mpsc::UnboundedReceiver<Notification>), tokio_postgres::Error> {
    connect_with(config, NoTls).await
}

/// Connects with `config` and `tls`. The connection runs in a task of its own that forwards
/// notifications to the returned receiver; the receiver closes when the connection ends.
pub async fn connect_with<T>(
    config: &Config,
    tls: T,
) -> Result<(Client, mpsc::UnboundedReceiver<Notification>), tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut connection) = config.connect(tls).await?;
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
