//! `get|set node candidate-priority|replication-quorum|metadata`, `get formation settings`,
//! `get|set formation number-sync-standbys`. A `set` returns once the primary applied the
//! new replication settings, so that the next command sees them; as 2.0, it waits for the
//! primary only (standbys that are down do not hold it up).

use std::time::Duration;

use super::table::{Align, Column, render, right};
use super::wait::{follow_group, primary_applied_settings};
use super::{connect_monitor, formation_of, load_node, print_json};
use crate::cli::{
    FormationArgs, MonitorArgs, NodeTargetArgs, SetMetadataArgs, SetPriorityArgs, SetQuorumArgs,
    SetSyncStandbysArgs,
};
use crate::config::Config;
use crate::exit::{CliError, CliResult};
use crate::monitor::Monitor;
use crate::state::KeeperState;

/// How long a `set` waits for the group to apply it.
const APPLY_WAIT: Duration = Duration::from_secs(60);

/// The node a command is about: its name, formation, id and group.
async fn target(
    monitor: &Monitor,
    a: &NodeTargetArgs,
    config: &Option<Config>,
) -> CliResult<(String, String, i64, i32)> {
    let formation = formation_of(&a.formation, config);
    let name = super::node_name_of(&a.name, config)
        .ok_or_else(|| CliError::bad_args("which node? use --name, or --pgdata of a node"))?;
    let (id, group, _, _) = monitor
        .node_by_name(&formation, &name)
        .await?
        .ok_or_else(|| {
            CliError::bad_args(format!(
                "no node named \"{name}\" in formation \"{formation}\""
            ))
        })?;
    Ok((formation, name, id, group))
}

/// `get node candidate-priority`.
pub async fn get_candidate_priority(a: NodeTargetArgs) -> CliResult<()> {
    let (monitor, config) = connect_monitor(&a.monitor).await?;
    let (_, name, id, _) = target(&monitor, &a, &config).await?;
    let (priority, _) = monitor
        .node_settings(id)
        .await?
        .ok_or_else(|| CliError::bad_args(format!("node {name} is gone")))?;
    if a.json.json {
        print_json(&serde_json::json!({ "name": name, "candidate-priority": priority }));
    } else {
        println!("{priority}");
    }
    Ok(())
}

/// `get node replication-quorum`.
pub async fn get_replication_quorum(a: NodeTargetArgs) -> CliResult<()> {
    let (monitor, config) = connect_monitor(&a.monitor).await?;
    let (_, name, id, _) = target(&monitor, &a, &config).await?;
    let (_, quorum) = monitor
        .node_settings(id)
        .await?
        .ok_or_else(|| CliError::bad_args(format!("node {name} is gone")))?;
    if a.json.json {
        print_json(&serde_json::json!({ "name": name, "replication-quorum": quorum }));
    } else {
        println!("{quorum}");
    }
    Ok(())
}

/// Waits until the primary of `group` (of each group) applied a settings change.
async fn wait_applied(monitor: &mut Monitor, formation: &str, group: Option<i32>) -> CliResult<()> {
    follow_group(
        monitor,
        formation,
        group,
        APPLY_WAIT,
        "the primary to apply the new settings",
        super::wait::Show::Stderr,
        primary_applied_settings,
    )
    .await
    .map(|_| ())
}

/// `set node candidate-priority N`.
pub async fn set_candidate_priority(a: SetPriorityArgs) -> CliResult<()> {
    let (mut monitor, config) = connect_monitor(&a.target.monitor).await?;
    let (formation, name, _, group) = target(&monitor, &a.target, &config).await?;
    monitor.listen("state").await?;
    monitor
        .set_candidate_priority(&formation, &name, a.value)
        .await?;
    wait_applied(&mut monitor, &formation, Some(group)).await?;
    if a.target.json.json {
        print_json(&serde_json::json!({ "name": name, "candidate-priority": a.value }));
    } else {
        println!("{}", a.value);
    }
    Ok(())
}

/// `set node replication-quorum true|false`.
pub async fn set_replication_quorum(a: SetQuorumArgs) -> CliResult<()> {
    let (mut monitor, config) = connect_monitor(&a.target.monitor).await?;
    let (formation, name, _, group) = target(&monitor, &a.target, &config).await?;
    monitor.listen("state").await?;
    monitor
        .set_replication_quorum(&formation, &name, a.value)
        .await?;
    wait_applied(&mut monitor, &formation, Some(group)).await?;
    if a.target.json.json {
        print_json(&serde_json::json!({ "name": name, "replication-quorum": a.value }));
    } else {
        println!("{}", a.value);
    }
    Ok(())
}

/// `set node metadata --name --hostname --pgport`: on the monitor and in the configuration.
pub async fn set_metadata(a: SetMetadataArgs) -> CliResult<()> {
    if a.name.is_none() && a.hostname.is_none() && a.pgport.is_none() {
        return Err(CliError::bad_args(
            "nothing to set: use --name, --hostname or --pgport",
        ));
    }
    let (paths, mut config) = load_node(&a.pgdata)?;
    let state = KeeperState::load(&paths.state)?;
    let (monitor, _) = connect_monitor(&MonitorArgs {
        pgdata: a.pgdata.clone(),
        monitor: None,
    })
    .await?;
    monitor
        .update_node_metadata(
            state.node_id,
            a.name.as_deref(),
            a.hostname.as_deref(),
            a.pgport,
        )
        .await?;
    if let Some(name) = &a.name {
        config.name = name.clone();
    }
    if let Some(host) = &a.hostname {
        config.hostname = host.clone();
    }
    if let Some(port) = a.pgport {
        config.pg.port = port;
    }
    config.save(&paths.config)?;
    // a running service takes the new configuration now, as after `pg_autoctl reload`
    if let Ok(Some(pid)) = crate::service::pidfile::running_service(&paths.pid, &paths.runtime_base)
        && nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGHUP,
        )
        .is_err()
    {
        tracing::warn!(
            pid,
            "could not ask the running service to reload its configuration"
        );
    }
    if a.json.json {
        print_json(&serde_json::json!({
            "name": config.name, "hostname": config.hostname, "port": config.pg.port,
        }));
    }
    Ok(())
}

/// `get formation settings` and `show settings`.
pub async fn formation_settings(a: FormationArgs) -> CliResult<()> {
    let (monitor, config) = connect_monitor(&a.monitor).await?;
    let formation = formation_of(&a.formation, &config);
    let settings = monitor.formation_settings(&formation).await?;
    if a.json.json {
        // grouped by context, as 2.0 prints them
        let mut groups = serde_json::Map::new();
        for (key, context) in [
            ("nodes", "node"),
            ("primary", "primary"),
            ("formation", "formation"),
        ] {
            let rows: Vec<serde_json::Value> = settings
                .iter()
                .filter(|s| s.context == context)
                .map(|s| {
                    serde_json::json!({
                        "value": s.value,
                        "context": s.context,
                        "node_id": s.node_id,
                        "setting": s.setting,
                        "group_id": s.group_id,
                        "nodename": s.nodename,
                    })
                })
                .collect();
            groups.insert(key.to_string(), serde_json::Value::Array(rows));
        }
        print_json(&serde_json::Value::Object(groups));
    } else {
        // formation first, then the primary's, then each node setting for every node
        let rank = |c: &str| match c {
            "formation" => 0,
            "primary" => 1,
            _ => 2,
        };
        let mut sorted: Vec<_> = settings.iter().collect();
        sorted.sort_by(|a, b| {
            (rank(&a.context), &a.setting, a.node_id).cmp(&(
                rank(&b.context),
                &b.setting,
                b.node_id,
            ))
        });
        let rows: Vec<Vec<String>> = sorted
            .iter()
            .map(|s| {
                vec![
                    s.context.clone(),
                    s.nodename.clone(),
                    s.setting.clone(),
                    s.value.clone(),
                ]
            })
            .collect();
        print!(
            "{}",
            render(
                &[
                    right("Context", 0),
                    right("Name", 0),
                    right("Setting", 0),
                    Column {
                        header: "Value",
                        min_width: 0,
                        align: Align::Left,
                    },
                ],
                &rows
            )
        );
    }
    Ok(())
}

/// `get formation number-sync-standbys`.
pub async fn get_number_sync_standbys(a: FormationArgs) -> CliResult<()> {
    let (monitor, config) = connect_monitor(&a.monitor).await?;
    let formation = formation_of(&a.formation, &config);
    let row = monitor
        .formation(&formation)
        .await?
        .ok_or_else(|| CliError::bad_args(format!("formation \"{formation}\" does not exist")))?;
    if a.json.json {
        print_json(&serde_json::json!({ "number-sync-standbys": row.number_sync_standbys }));
    } else {
        println!("{}", row.number_sync_standbys);
    }
    Ok(())
}

/// `set formation number-sync-standbys N`.
pub async fn set_number_sync_standbys(a: SetSyncStandbysArgs) -> CliResult<()> {
    let (mut monitor, config) = connect_monitor(&a.target.monitor).await?;
    let formation = formation_of(&a.target.formation, &config);
    monitor.listen("state").await?;
    monitor
        .set_number_sync_standbys(&formation, a.value)
        .await?;
    wait_applied(&mut monitor, &formation, None).await?;
    if a.target.json.json {
        print_json(&serde_json::json!({ "formation": formation, "number-sync-standbys": a.value }));
    } else {
        println!("{}", a.value);
    }
    Ok(())
}
