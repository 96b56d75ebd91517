//! `enable|disable maintenance`: ask the monitor to put this node in (or out of)
//! maintenance, then wait until it got there.

use std::time::Duration;

use super::wait::follow_group;
use super::{connect_monitor, load_node};
use crate::cli::{MaintenanceArgs, MonitorArgs};
use crate::exit::{CliError, CliResult};
use crate::state::KeeperState;

/// Runs `enable maintenance` (`enable` true) or `disable maintenance`.
pub async fn run(a: MaintenanceArgs, enable: bool) -> CliResult<()> {
    let (paths, config) = load_node(&a.pgdata)?;
    let state = KeeperState::load(&paths.state)?;
    let (mut monitor, _) = connect_monitor(&MonitorArgs {
        pgdata: a.pgdata.clone(),
        monitor: None,
    })
    .await?;
    let nodes = monitor
        .current_state(&config.formation, Some(state.group_id))
        .await?;
    let me = nodes
        .iter()
        .find(|n| n.node_id == state.node_id)
        .ok_or_else(|| {
            CliError::bad_state(format!("node {} is not on the monitor", state.node_id))
        })?;
    let is_primary = matches!(
        me.assigned_group_state.as_str(),
        "primary" | "wait_primary" | "single" | "join_primary" | "apply_settings"
    );
    if enable && is_primary && !a.allow_failover {
        return Err(CliError::bad_args(format!(
            "{} is the primary: maintenance on it makes a standby take over",
            config.name
        ))
        .hint("Use --allow-failover to do that, or perform a switchover first."));
    }
    monitor.listen("state").await?;
    monitor.maintenance(state.node_id, enable).await?;
    let node_id = state.node_id;
    follow_group(
        &mut monitor,
        &config.formation,
        Some(state.group_id),
        Duration::from_secs(a.wait),
        if enable {
            "maintenance to start"
        } else {
            "maintenance to end"
        },
        super::wait::Show::Stdout,
        |nodes| {
            nodes
                .iter()
                .find(|n| n.node_id == node_id)
                .is_some_and(|n| {
                    n.current_group_state == n.assigned_group_state
                        && (n.current_group_state == "maintenance") == enable
                        && matches!(
                            n.current_group_state.as_str(),
                            "maintenance" | "secondary" | "primary" | "single" | "wait_primary"
                        )
                })
        },
    )
    .await?;
    println!(
        "{}: maintenance {}",
        config.name,
        if enable { "enabled" } else { "disabled" }
    );
    Ok(())
}
