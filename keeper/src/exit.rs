//! The errors every command can end with, and the exit code each maps to.
//!
//! The codes are pg_autoctl 2.0's: scripts written for it branch on them (a `set` refused by
//! the monitor exits 1, a configuration problem 2, and so on).

use std::fmt;

/// pg_autoctl 2.0's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Bad command line arguments, or a request the monitor refused.
    BadArgs = 1,
    /// The configuration file is missing or invalid.
    BadConfig = 2,
    /// The state file is missing or invalid.
    BadState = 3,
    /// A query on the local Postgres failed.
    Pgsql = 4,
    /// Running a Postgres program (pg_ctl, initdb, pg_basebackup…) failed.
    Pgctl = 5,
    /// The monitor could not be reached or answered with an error.
    Monitor = 6,
    /// The keeper service failed.
    Keeper = 8,
    /// Signalling the service to reload failed.
    Reload = 9,
    /// A bug.
    Internal = 12,
    /// The monitor does not have the pgautofailover extension.
    ExtensionMissing = 13,
}

/// A command's failure: what went wrong, what to do, the exit code, and the error that
/// caused it (kept whole: `--verbose` logs the chain at the binary's edge).
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub exit: Exit,
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// The error this one reports, if any.
    cause: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl CliError {
    /// A failure with `exit` as its code.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            message: message.into(),
            hint: None,
            cause: None,
        }
    }

    /// Keeps `cause`, the error this one reports.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    /// Bad arguments (exit 1).
    pub fn bad_args(message: impl Into<String>) -> Self {
        CliError::new(Exit::BadArgs, message)
    }

    /// A configuration problem (exit 2).
    pub fn bad_config(message: impl Into<String>) -> Self {
        CliError::new(Exit::BadConfig, message)
    }

    /// A state file problem (exit 3).
    pub fn bad_state(message: impl Into<String>) -> Self {
        CliError::new(Exit::BadState, message)
    }

    /// Adds what the user should do.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, doing: impl fmt::Display) -> Self {
        self.message = format!("{doing}: {}", self.message);
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// The result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_kept_and_context_does_not_lose_it() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = CliError::new(Exit::Pgctl, "/data: denied")
            .caused_by(io)
            .context("writing the standby settings");
        assert_eq!(e.message, "writing the standby settings: /data: denied");
        let cause = std::error::Error::source(&e).expect("a cause");
        assert_eq!(cause.to_string(), "denied");
        let chain = format!("{:?}", anyhow::Error::new(e));
        assert!(chain.contains("Caused by"), "{chain}");
    }
}
