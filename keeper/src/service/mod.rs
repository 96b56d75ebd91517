//! `pg_autoctl run`: the long-running service of a node. On a Postgres node it is the keeper
//! ([`keeper`]), on the monitor the Postgres supervisor and notification logger
//! ([`monitor_node`]). Both hold the pid file and obey the signals of [`signals`].

mod actions;
pub mod keeper;
pub mod monitor_node;
pub mod pidfile;
pub mod signals;
mod turn;

use crate::config::{Config, Role};
use crate::exit::CliResult;
use crate::paths::NodePaths;

/// Runs the service of the node configured at `paths` until it is stopped.
pub async fn run(paths: NodePaths, config: Config) -> CliResult<()> {
    let _pid = pidfile::PidFile::acquire(&paths.pid, &paths.runtime_base)?;
    let mut stopper = signals::Stopper::install()?;
    match config.role {
        Role::Keeper => keeper::Keeper::load(paths, config)?.run(&mut stopper).await,
        Role::Monitor => {
            let node = crate::node_setup::NodeContext::new(paths, config)?;
            monitor_node::run(node, &mut stopper).await
        }
    }
}
