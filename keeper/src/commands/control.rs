//! Service control: `run`, `stop`, `reload`, `status`, `version`.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{load_node, print_json, refuse_root};
use crate::cli::{PgdataJson, RunArgs, StopArgs};
use crate::exit::{CliError, CliResult, Exit};
use crate::monitor::EXTENSION_VERSION;
use crate::service;
use crate::service::pidfile::running_service;
use crate::state::KeeperState;

/// `run`: the service, in the foreground.
pub async fn run(a: RunArgs) -> CliResult<()> {
    refuse_root()?;
    let (paths, mut config) = load_node(&a.pgdata)?;
    let mut changed = false;
    if let Some(name) = a.name.filter(|n| *n != config.name) {
        config.name = name;
        changed = true;
    }
    if let Some(host) = a.hostname.filter(|h| *h != config.hostname) {
        config.hostname = host;
        changed = true;
    }
    if let Some(port) = a.pgport.filter(|p| *p != config.pg.port) {
        config.pg.port = port;
        changed = true;
    }
    if changed && config.role == crate::config::Role::Keeper {
        let state = KeeperState::load(&paths.state)?;
        let monitor = crate::monitor::Monitor::connect_str(
            config.monitor.as_deref().unwrap_or_default(),
            "pg_autoctl",
        )
        .await?;
        monitor
            .update_node_metadata(
                state.node_id,
                Some(&config.name),
                Some(&config.hostname),
                Some(config.pg.port),
            )
            .await?;
        config.save(&paths.config)?;
    }
    service::run(paths, config).await
}

/// `stop`: signals the service and waits until it is gone.
pub async fn stop(a: StopArgs) -> CliResult<()> {
    let (paths, _) = load_node(&a.pgdata)?;
    let pid = running_service(&paths.pid, &paths.runtime_base)?.ok_or_else(|| {
        CliError::new(Exit::Keeper, "pg_autoctl is not running")
            .hint(format!("No live process in {}.", paths.pid.display()))
    })?;
    let sig = if a.sigkill {
        Signal::SIGKILL
    } else if a.immediate {
        Signal::SIGQUIT
    } else if a.fast {
        Signal::SIGINT
    } else {
        Signal::SIGTERM
    };
    // the pid of the running service, read from its pid file; gone already is fine
    let _ = kill(Pid::from_raw(pid), sig);
    let deadline = Instant::now() + Duration::from_secs(90);
    while crate::postgres::pgdata::process_exists(pid) {
        if Instant::now() > deadline {
            return Err(CliError::new(
                Exit::Keeper,
                format!("pg_autoctl (pid {pid}) did not stop within 90 s"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// `reload`: SIGHUP to the service.
pub fn reload(a: PgdataJson) -> CliResult<()> {
    let (paths, _) = load_node(&a.pgdata)?;
    let pid = running_service(&paths.pid, &paths.runtime_base)?
        .ok_or_else(|| CliError::new(Exit::Reload, "pg_autoctl is not running"))?;
    if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGHUP) {
        return Err(CliError::new(
            Exit::Reload,
            format!("cannot signal pid {pid}: {}", std::io::Error::from(e)),
        ));
    }
    Ok(())
}

/// `status`: whether the service runs (exit 0) or not (exit 3).
pub fn status(a: PgdataJson) -> CliResult<()> {
    let (paths, config) = load_node(&a.pgdata)?;
    let pid = running_service(&paths.pid, &paths.runtime_base)?;
    let postgres = crate::postgres::pgdata::PostmasterPid::read(&config.pg.pgdata)
        .filter(|p| p.is_alive())
        .map(|p| p.pid);
    if a.json.json {
        print_json(&serde_json::json!({
            "pg_autoctl": { "pid": pid, "running": pid.is_some(), "pidfile": paths.pid },
            "postgres": { "pid": postgres, "running": postgres.is_some(), "pgdata": config.pg.pgdata },
        }));
    }
    match pid {
        Some(pid) => {
            if !a.json.json {
                println!("pg_autoctl is running with pid {pid}");
                match postgres {
                    Some(p) => println!("Postgres is running with pid {p}"),
                    None => println!("Postgres is not running"),
                }
            }
            Ok(())
        }
        None => Err(CliError::bad_state("pg_autoctl is not running")),
    }
}

/// `version`.
pub fn version(json: bool) -> CliResult<()> {
    if json {
        print_json(&serde_json::json!({
            "pg_autoctl": EXTENSION_VERSION,
            "pgautofailover": EXTENSION_VERSION,
            "implementation": format!("pg_auto_failover in Rust {}", env!("CARGO_PKG_VERSION")),
        }));
    } else {
        println!("pg_autoctl version {EXTENSION_VERSION}");
        println!("pg_autoctl extension version {EXTENSION_VERSION}");
        println!(
            "implemented in Rust, pg_auto_failover-rs {}",
            env!("CARGO_PKG_VERSION")
        );
    }
    Ok(())
}
