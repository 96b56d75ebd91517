//! `pg_autoctl run`: the long-running service of a node. On a Postgres node it is the keeper
//! ([`keeper`]), on the monitor the Postgres supervisor and notification logger
//! ([`monitor_node`]). Both hold the pid file and obey the signals of [`signals`].

mod actions;
pub mod keeper;
pub mod monitor_node;
pub mod node;
pub mod pidfile;
pub mod signals;
mod turn;

use crate::config::{Config, Role};
use crate::exit::CliResult;
use crate::monitor::uri::PgUri;
use crate::paths::NodePaths;

/// Runs the service of the node configured at `paths` until it is stopped.
pub async fn run(paths: NodePaths, config: Config) -> CliResult<()> {
    let _pid = pidfile::PidFile::acquire(&paths.pid, &paths.runtime_base)?;
    let mut stopper = signals::Stopper::install()?;
    match config.role {
        Role::Keeper => keeper::Keeper::load(paths, config)?.run(&mut stopper).await,
        Role::Monitor => {
            let node = node::NodeContext::new(paths, config)?;
            monitor_node::run(node, &mut stopper).await
        }
    }
}

/// The URI keepers use to reach the monitor described by `config` (a monitor's own
/// configuration).
pub fn local_monitor_uri(config: &Config) -> PgUri {
    let host = if config.hostname.is_empty() {
        "localhost".to_string()
    } else {
        config.hostname.clone()
    };
    let mut params = vec![("sslmode".to_string(), config.ssl.sslmode.clone())];
    // as 2.0 does: the CA and CRL files go in every connection string pg_autoctl builds
    if let Some(ca) = &config.ssl.ca_file {
        params.push(("sslrootcert".to_string(), ca.clone()));
    }
    if let Some(crl) = &config.ssl.crl_file {
        params.push(("sslcrl".to_string(), crl.clone()));
    }
    PgUri {
        user: Some("autoctl_node".to_string()),
        password: None,
        hosts: vec![(host, Some(config.pg.port))],
        dbname: Some("pg_auto_failover".to_string()),
        params,
    }
}
