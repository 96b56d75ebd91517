//! The operating system user pg_autoctl runs as.

use crate::exit::{CliError, CliResult};

/// The OS user this process runs as ('' when the user database does not know it).
pub fn current_user_name() -> String {
    match nix::unistd::User::from_uid(nix::unistd::geteuid()) {
        Ok(Some(user)) => user.name,
        _ => String::new(),
    }
}

/// Postgres cannot run as root, and neither does pg_autoctl.
pub fn refuse_root() -> CliResult<()> {
    if nix::unistd::geteuid().is_root() {
        return Err(CliError::bad_args("pg_autoctl does not run as root")
            .hint("Run it as the user that owns the Postgres data directory, e.g. sudo -u postgres pg_autoctl ..."));
    }
    Ok(())
}
