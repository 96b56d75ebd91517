//! `drop node` (this node, or another one through the monitor) and `drop monitor`.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{connect_monitor, formation_of, load_node};
use crate::cli::{DropMonitorArgs, DropNodeArgs, MonitorArgs};
use crate::config::{Config, Role};
use crate::exit::{CliError, CliResult, Exit};
use crate::paths::NodePaths;
use crate::postgres::pgdata::process_exists;
use crate::postgres::programs::PgBin;
use crate::postgres::server::{PostgresServer, StopMode};
use crate::service::pidfile::running_service;
use crate::state::KeeperState;

/// `drop node`.
pub async fn node(a: DropNodeArgs) -> CliResult<()> {
    let remote = a.name.is_some() || a.hostname.is_some();
    if remote {
        return drop_remote(&a).await;
    }
    let (paths, config) = load_node(&a.monitor.pgdata)?;
    if config.role == Role::Monitor {
        return Err(CliError::bad_args(
            "this is the monitor: use pg_autoctl drop monitor",
        ));
    }
    let state = KeeperState::load(&paths.state)?;
    let (monitor, _) = connect_monitor(&MonitorArgs {
        pgdata: a.monitor.pgdata.clone(),
        monitor: a.monitor.monitor.clone(),
    })
    .await?;
    match running_service(&paths.pid, &paths.runtime_base)? {
        Some(pid) => {
            // the service sees `dropped`, stops Postgres, reports and exits
            monitor.remove_node(state.node_id, a.force).await?;
            if !a.no_wait {
                wait_exit(pid, Duration::from_secs(a.wait)).await?;
            }
        }
        None => {
            // nobody will report `dropped`: stop Postgres here and remove the node for good
            stop_postgres(&config).await?;
            monitor.remove_node(state.node_id, true).await?;
        }
    }
    remove_files(&paths, &config, a.destroy)?;
    println!("node {} (id {}) dropped", config.name, state.node_id);
    Ok(())
}

async fn drop_remote(a: &DropNodeArgs) -> CliResult<()> {
    let (monitor, config) = connect_monitor(&a.monitor).await?;
    let removed = match (&a.name, &a.hostname) {
        (Some(name), _) => {
            let formation = formation_of(&a.formation, &config);
            let (id, _, _, _) = monitor
                .node_by_name(&formation, name)
                .await?
                .ok_or_else(|| {
                    CliError::bad_args(format!(
                        "no node named \"{name}\" in formation \"{formation}\""
                    ))
                })?;
            monitor.remove_node(id, a.force).await?
        }
        (None, Some(host)) => {
            let port = a
                .pgport
                .ok_or_else(|| CliError::bad_args("--hostname needs --pgport"))?;
            monitor.remove_node_by_host(host, port, a.force).await?
        }
        (None, None) => false,
    };
    if removed {
        println!("node removed from the monitor");
    }
    Ok(())
}

async fn wait_exit(pid: i32, timeout: Duration) -> CliResult<()> {
    let deadline = Instant::now() + timeout;
    while process_exists(pid) {
        if Instant::now() > deadline {
            return Err(CliError::new(
                Exit::Keeper,
                format!("the pg_autoctl service (pid {pid}) did not finish dropping the node within {}s", timeout.as_secs()),
            )
            .hint("Check its logs; --force removes the node from the monitor at once."));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn stop_postgres(config: &Config) -> CliResult<()> {
    let bin = PgBin::from_pg_ctl(&config.pg.pg_ctl)?;
    let mut server = PostgresServer::new(bin, &config.pg.pgdata);
    server.stop(StopMode::Fast, Duration::from_secs(60)).await
}

/// Removes the node's pg_autoctl files, and its PGDATA with `destroy`.
fn remove_files(paths: &NodePaths, config: &Config, destroy: bool) -> CliResult<()> {
    for file in [&paths.state, &paths.init, &paths.config] {
        remove_file(file)?;
    }
    if destroy {
        // kept otherwise: it may hold the only copy of the superuser's password of a data
        // directory that stays
        remove_file(&paths.passfile)?;
        let pgdata = &config.pg.pgdata;
        if pgdata.exists() {
            std::fs::remove_dir_all(pgdata).map_err(|e| {
                CliError::new(
                    Exit::Pgctl,
                    format!("cannot remove {}: {e}", pgdata.display()),
                )
            })?;
        }
    }
    Ok(())
}

fn remove_file(path: &Path) -> CliResult<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CliError::bad_config(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
    }
}

/// `drop monitor`.
pub async fn monitor(a: DropMonitorArgs) -> CliResult<()> {
    let (paths, config) = load_node(&a.pgdata)?;
    if config.role != Role::Monitor {
        return Err(CliError::bad_args(
            "this is not the monitor: use pg_autoctl drop node",
        ));
    }
    if let Some(pid) = running_service(&paths.pid, &paths.runtime_base)? {
        // the pid of the running service; gone already is fine
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        wait_exit(pid, Duration::from_secs(60)).await?;
    }
    stop_postgres(&config).await?;
    remove_files(&paths, &config, a.destroy)?;
    println!("monitor dropped");
    Ok(())
}
