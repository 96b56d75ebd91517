//! `show uri|events|state|standby-names|file|systemd` and `watch`.

use std::time::Duration;

use super::table::{Align, Column, render, right};
use super::{connect_monitor, formation_of, load_node, pgdata_of, print_json};
use crate::cli::{
    FormationGroupArgs, PgdataArg, ShowEventsArgs, ShowFileArgs, ShowStateArgs, ShowUriArgs,
    WatchArgs,
};
use crate::config::Role;
use crate::exit::{CliError, CliResult};
use crate::monitor::{Monitor, NodeStateRow};
use crate::paths::NodePaths;
use crate::state::KeeperState;

/// The "Connection" column, as 2.0 shows it: what clients can do on the node in its reported
/// state (read-write, read-only, or none), with `!` when the monitor's health check fails and
/// `?` before the first check.
fn connection(n: &NodeStateRow) -> String {
    use fsm::keeper::{PostgresExpectation, expected_postgres};
    let kind = match n
        .current_group_state
        .parse::<fsm::ReplicationState>()
        .map(expected_postgres)
    {
        Ok(PostgresExpectation::RunningPrimary) => "read-write",
        Ok(PostgresExpectation::RunningStandby) => "read-only",
        _ => "none",
    };
    match n.health {
        0 => format!("{kind} !"),
        h if h < 0 => format!("{kind} ?"),
        _ => kind.to_string(),
    }
}

/// The state table's rows.
pub fn state_rows(nodes: &[NodeStateRow]) -> Vec<Vec<String>> {
    nodes
        .iter()
        .map(|n| {
            vec![
                n.nodename.clone(),
                format!("{}", n.node_id),
                format!("{}:{}", n.nodehost, n.nodeport),
                format!("{}: {}", n.reported_tli, n.reported_lsn),
                connection(n),
                n.current_group_state.clone(),
                n.assigned_group_state.clone(),
            ]
        })
        .collect()
}

/// The `show state` table.
pub fn state_table(nodes: &[NodeStateRow]) -> String {
    render(
        &[
            right("Name", 0),
            right("Node", 5),
            right("Host:Port", 0),
            right("TLI: LSN", 14),
            right("Connection", 12),
            right("Reported State", 19),
            right("Assigned State", 19),
        ],
        &state_rows(nodes),
    )
}

fn state_json(nodes: &[NodeStateRow]) -> serde_json::Value {
    serde_json::Value::Array(
        nodes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "health": n.health,
                    "node_id": n.node_id,
                    "group_id": n.group_id,
                    "nodehost": n.nodehost,
                    "nodename": n.nodename,
                    "nodeport": n.nodeport,
                    "nodecluster": n.nodecluster,
                    "reported_lsn": n.reported_lsn,
                    "reported_tli": n.reported_tli,
                    "formation_kind": n.formation_kind,
                    "candidate_priority": n.candidate_priority,
                    "replication_quorum": n.replication_quorum,
                    "current_group_state": n.current_group_state,
                    "assigned_group_state": n.assigned_group_state,
                })
            })
            .collect(),
    )
}

/// `show state`.
pub async fn state(a: ShowStateArgs) -> CliResult<()> {
    if a.local {
        return local_state(&a.target.monitor.pgdata, a.target.json.json);
    }
    let (mut monitor, config) = connect_monitor(&a.target.monitor).await?;
    let formation = formation_of(&a.target.formation, &config);
    if a.watch {
        return watch_loop(&mut monitor, &formation, a.target.group).await;
    }
    let nodes = monitor.current_state(&formation, a.target.group).await?;
    if a.target.json.json {
        print_json(&state_json(&nodes));
    } else {
        print!("{}", state_table(&nodes));
    }
    Ok(())
}

/// `show state --local`: the keeper's own state file.
fn local_state(pgdata: &PgdataArg, json: bool) -> CliResult<()> {
    let (paths, config) = load_node(pgdata)?;
    let state = KeeperState::load(&paths.state)?;
    if json {
        print_json(&serde_json::json!({
            "name": config.name,
            "node_id": state.node_id,
            "group_id": state.group_id,
            "host": config.hostname,
            "port": config.pg.port,
            "current_role": state.current_role.as_str(),
            "assigned_role": state.assigned_role.as_str(),
        }));
    } else {
        print!(
            "{}",
            render(
                &[
                    right("Name", 0),
                    right("Node", 5),
                    right("Host:Port", 0),
                    right("Current State", 19),
                    right("Assigned State", 19),
                ],
                &[vec![
                    config.name.clone(),
                    format!("{}/{}", state.group_id, state.node_id),
                    format!("{}:{}", config.hostname, config.pg.port),
                    state.current_role.to_string(),
                    state.assigned_role.to_string(),
                ]],
            )
        );
    }
    Ok(())
}

/// `show events`.
pub async fn events(a: ShowEventsArgs) -> CliResult<()> {
    let (mut monitor, config) = connect_monitor(&a.target.monitor).await?;
    let formation = formation_of(&a.target.formation, &config);
    if a.watch {
        return watch_loop(&mut monitor, &formation, a.target.group).await;
    }
    if a.target.json.json {
        print_json(
            &monitor
                .last_events_json(&formation, a.target.group, a.count)
                .await?,
        );
    } else {
        let events = monitor
            .last_events(&formation, a.target.group, a.count)
            .await?;
        print!("{}", events_table(&events));
    }
    Ok(())
}

fn events_table(events: &[crate::monitor::EventRow]) -> String {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.eventtime.clone(),
                format!("{}/{}", e.groupid, e.nodeid),
                e.reportedstate.clone(),
                e.goalstate.clone(),
                e.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    render(
        &[
            right("Event Time", 30),
            right("Node", 6),
            right("Current State", 19),
            right("Assigned State", 19),
            Column {
                header: "Comment",
                min_width: 0,
                align: Align::Free(10),
            },
        ],
        &rows,
    )
}

/// `show uri`.
pub async fn uri(a: ShowUriArgs) -> CliResult<()> {
    let (monitor, config) = connect_monitor(&a.monitor).await?;
    // shown, never with its password (pg_autoctl config get pg_autoctl.monitor prints the
    // value as stored, for scripts)
    let monitor_uri = match (&a.monitor.monitor, &config) {
        (Some(uri), _) => uri.clone(),
        (None, Some(c)) if c.role == Role::Monitor => {
            crate::node_setup::local_monitor_uri(c).to_uri_string()
        }
        (None, Some(c)) => c.monitor.clone().unwrap_or_default(),
        (None, None) => String::new(),
    };
    let monitor_uri = crate::monitor::uri::PgUri::parse(&monitor_uri)
        .map(|u| u.redacted())
        .unwrap_or(monitor_uri);
    let sslmode = config
        .as_ref()
        .map(|c| c.ssl.sslmode.clone())
        .unwrap_or_else(|| "prefer".to_string());
    let ca = config
        .as_ref()
        .and_then(|c| c.ssl.ca_file.clone())
        .unwrap_or_default();
    let crl = config
        .as_ref()
        .and_then(|c| c.ssl.crl_file.clone())
        .unwrap_or_default();
    if let Some(formation) = &a.formation {
        let text = if formation == "monitor" {
            monitor_uri
        } else {
            monitor
                .formation_uri(formation, &sslmode, &ca, &crl)
                .await?
        };
        if a.json.json {
            super::print_json_escaped(&serde_json::json!({ formation.clone(): text }));
        } else {
            println!("{}", fsm::vocab::printable(&text));
        }
        return Ok(());
    }
    let mut rows = vec![vec![
        "monitor".to_string(),
        "monitor".to_string(),
        monitor_uri,
    ]];
    for formation in monitor.formation_ids().await? {
        let uri = monitor
            .formation_uri(&formation, &sslmode, &ca, &crl)
            .await?;
        rows.push(vec!["formation".to_string(), formation, uri]);
    }
    if a.json.json {
        print_json(&serde_json::Value::Array(
            rows.iter()
                .map(|r| serde_json::json!({ "uri": r[2], "name": r[1], "type": r[0] }))
                .collect(),
        ));
    } else {
        print!(
            "{}",
            render(
                &[
                    right("Type", 12),
                    right("Name", 0),
                    Column {
                        header: "Connection String",
                        min_width: 0,
                        align: Align::Free(30),
                    },
                ],
                &rows
            )
        );
    }
    Ok(())
}

/// `show standby-names`.
pub async fn standby_names(a: FormationGroupArgs) -> CliResult<()> {
    let (monitor, config) = connect_monitor(&a.monitor).await?;
    let formation = formation_of(&a.formation, &config);
    let group = super::group_of(a.group, &config);
    let names = monitor.synchronous_standby_names(&formation, group).await?;
    if a.json.json {
        print_json(&serde_json::json!({
            "formation": formation, "group": group, "synchronous_standby_names": names,
        }));
    } else {
        println!("'{names}'");
    }
    Ok(())
}

/// `show file`.
pub fn file(a: ShowFileArgs) -> CliResult<()> {
    let pgdata = pgdata_of(&a.pgdata)?;
    let paths = NodePaths::from_env(&pgdata)?;
    let mut selected: Vec<(&str, &std::path::Path)> = Vec::new();
    let all = a.all || !(a.config || a.state || a.init || a.pid);
    if all || a.config {
        selected.push(("Config", &paths.config));
    }
    if all || a.state {
        selected.push(("State", &paths.state));
    }
    if all || a.init {
        selected.push(("Init", &paths.init));
    }
    if all || a.pid {
        selected.push(("Pid", &paths.pid));
    }
    if a.contents {
        for (_, path) in &selected {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CliError::bad_config(format!("cannot read {}: {e}", path.display()))
            })?;
            print!("{text}");
        }
        return Ok(());
    }
    if a.json.json {
        let map: serde_json::Map<String, serde_json::Value> = selected
            .iter()
            .map(|(k, p)| (k.to_lowercase(), serde_json::json!(p)))
            .collect();
        print_json(&serde_json::Value::Object(map));
    } else if selected.len() == 1 {
        println!("{}", selected[0].1.display());
    } else {
        let rows: Vec<Vec<String>> = selected
            .iter()
            .map(|(k, p)| vec![k.to_string(), p.display().to_string()])
            .collect();
        print!(
            "{}",
            render(
                &[
                    right("File", 0),
                    Column {
                        header: "Path",
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

/// `show systemd`: a unit file that runs this node's service.
pub fn systemd(a: PgdataArg) -> CliResult<()> {
    let (paths, _config) = load_node(&a)?;
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "pg_autoctl".to_string());
    let home = std::env::var("HOME").unwrap_or_else(|_| "/".to_string());
    let user = crate::os_user::current_user_name();
    let unit = systemd_unit(&exe, &home, &user, &paths.pgdata.display().to_string())
        .map_err(CliError::bad_args)?;
    println!("{unit}");
    Ok(())
}

/// `value` for a unit file: `%` doubled (systemd's specifiers); refused with a control
/// character, which would end the line.
fn unit_value(what: &str, value: &str) -> Result<String, String> {
    if value.chars().any(fsm::vocab::is_unsafe_char) {
        return Err(format!(
            "{what} {} holds a control character: it cannot go in a unit file",
            fsm::vocab::shown(value)
        ));
    }
    Ok(value.replace('%', "%%"))
}

/// `value` as one word of a unit's command line or environment: in double quotes, with `\`
/// and `"` escaped.
fn unit_word(what: &str, value: &str) -> Result<String, String> {
    let value = unit_value(what, value)?;
    Ok(format!(
        "\"{}\"",
        value.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// The text of the unit file, as 2.0 writes it, plus a runtime directory of the service's
/// own (`/run/pg_autoctl`, mode 0700, made by systemd as the service user) for the pid file:
/// no other local user can create it first, as they can `/tmp/pg_autoctl`.
pub fn systemd_unit(exe: &str, home: &str, user: &str, pgdata: &str) -> Result<String, String> {
    let home = unit_value("the home directory", home)?;
    let user = unit_value("the user", user)?;
    let environment = unit_word("PGDATA", &format!("PGDATA={pgdata}"))?;
    let exe = unit_word("the program", exe)?;
    Ok(format!(
        "[Unit]\n\
         Description = pg_auto_failover\n\
         \n\
         [Service]\n\
         WorkingDirectory = {home}\n\
         Environment = {environment}\n\
         User = {user}\n\
         ExecStart = {exe} run\n\
         Restart = always\n\
         StartLimitBurst = 20\n\
         ExecReload = {exe} reload\n\
         RuntimeDirectory = pg_autoctl\n\
         RuntimeDirectoryMode = 0700\n\
         \n\
         [Install]\n\
         WantedBy = multi-user.target"
    ))
}

/// `watch`: state and events, refreshed every second until interrupted.
pub async fn watch(a: WatchArgs) -> CliResult<()> {
    let (mut monitor, config) = connect_monitor(&a.target.monitor).await?;
    let formation = formation_of(&a.target.formation, &config);
    watch_loop(&mut monitor, &formation, a.target.group).await
}

async fn watch_loop(monitor: &mut Monitor, formation: &str, group: Option<i32>) -> CliResult<()> {
    loop {
        let nodes = monitor.current_state(formation, group).await?;
        let events = monitor.last_events(formation, group, 10).await?;
        print!("\x1b[2J\x1b[H");
        println!("{}  formation {formation}\n", super::wait::time_of_day());
        print!("{}", state_table(&nodes));
        println!();
        print!("{}", events_table(&events));
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, health: i32) -> NodeStateRow {
        NodeStateRow {
            formation_kind: "pgsql".to_string(),
            nodename: "n".to_string(),
            nodehost: "h".to_string(),
            nodeport: 5432,
            group_id: 0,
            node_id: 1,
            current_group_state: state.to_string(),
            assigned_group_state: state.to_string(),
            candidate_priority: 50,
            replication_quorum: true,
            reported_tli: 1,
            reported_lsn: "0/0".to_string(),
            health,
            nodecluster: "default".to_string(),
        }
    }

    #[test]
    fn the_connection_column_says_what_clients_can_do_and_the_health() {
        assert_eq!(connection(&row("primary", 1)), "read-write");
        assert_eq!(connection(&row("secondary", 1)), "read-only");
        assert_eq!(connection(&row("init", -1)), "none ?");
        assert_eq!(connection(&row("init", 0)), "none !");
        assert_eq!(connection(&row("demoted", 1)), "none");
        assert_eq!(connection(&row("secondary", 0)), "read-only !");
    }

    #[test]
    fn the_unit_runs_the_service_for_pgdata() {
        let unit = systemd_unit(
            "/usr/bin/pg_autoctl",
            "/var/lib/postgresql",
            "postgres",
            "/data/n1",
        )
        .expect("unit");
        assert!(unit.contains("ExecStart = \"/usr/bin/pg_autoctl\" run"));
        assert!(unit.contains("Environment = \"PGDATA=/data/n1\""));
        assert!(unit.contains("Restart = always"));
        assert!(unit.contains("RuntimeDirectory = pg_autoctl\nRuntimeDirectoryMode = 0700"));
        assert!(unit.contains("WantedBy = multi-user.target"));
        // odd paths stay one word; a line break cannot add a directive
        let odd = systemd_unit("/opt/my bin/pg_autoctl", "/h", "pg", "/data/50%\"x").expect("unit");
        assert!(
            odd.contains("ExecStart = \"/opt/my bin/pg_autoctl\" run"),
            "{odd}"
        );
        assert!(
            odd.contains("Environment = \"PGDATA=/data/50%%\\\"x\""),
            "{odd}"
        );
        assert!(systemd_unit("/bin/x", "/h", "pg", "/data\nExecStartPre=/bin/evil").is_err());
    }
}
