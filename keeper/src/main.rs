//! `pg_autoctl`: the keeper and command line of pg_auto_failover, compatible with 2.0's
//! commands, flags, files and exit codes.

mod cli;
mod commands;
mod config;
mod db;
mod exit;
mod fsutil;
#[cfg(test)]
mod layering;
mod logging;
mod monitor;
mod netinfo;
mod node_setup;
mod os_user;
mod paths;
mod postgres;
mod service;
mod state;

use clap::Parser;
use clap::error::ErrorKind;

use exit::{CliError, Exit};

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => Exit::BadArgs as i32,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let service = matches!(
        cli.command,
        Some(cli::Command::Run(_))
            | Some(cli::Command::Create(cli::CreateCommand::Monitor(_)))
            | Some(cli::Command::Create(cli::CreateCommand::Postgres(_)))
    );
    logging::init(cli.verbose, cli.quiet, service);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => fail(
            CliError::new(
                Exit::Internal,
                format!("cannot start the async runtime: {e}"),
            )
            .caused_by(e),
        ),
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(()) => {}
        Err(e) => fail(e),
    }
}

/// Ends the program with `e`: its message and hint as 2.0 prints them, its exit code, and,
/// with `--verbose`, the whole chain of causes in the log.
fn fail(e: CliError) -> ! {
    eprintln!("ERROR: {}", e.message);
    if let Some(hint) = &e.hint {
        eprintln!("HINT: {hint}");
    }
    let code = e.exit as i32;
    if std::error::Error::source(&e).is_some() {
        tracing::debug!("{:?}", anyhow::Error::new(e));
    }
    std::process::exit(code);
}
