//! Following the monitor until a group settles: LISTEN for state changes, print each as a
//! line of a table, and stop when the group is stable (or a timeout passes).

use std::time::{Duration, Instant};

use crate::exit::{CliError, CliResult, Exit};
use crate::monitor::{Monitor, NodeStateRow};

/// States a node may rest in.
const RESTING: &[&str] = &[
    "single",
    "primary",
    "wait_primary",
    "secondary",
    "maintenance",
];

/// Whether the nodes of a group have settled: each reached its assigned state, each rests,
/// and a `wait_primary` is only final when it has no standby to wait for.
pub fn is_stable(nodes: &[NodeStateRow]) -> bool {
    let settled = nodes.iter().all(|n| {
        n.current_group_state == n.assigned_group_state
            && RESTING.contains(&n.current_group_state.as_str())
    });
    let has_standby = nodes.iter().any(|n| n.current_group_state == "secondary");
    let primary_waits = nodes
        .iter()
        .any(|n| n.current_group_state == "wait_primary");
    settled && !(primary_waits && has_standby)
}

/// Whether every group's primary applied the last settings change (as 2.0 waits after a
/// `set`): no node is still assigned or reporting `apply_settings`, and a writable node
/// (`primary`, `wait_primary`, `single`) rests in its assigned state. Standbys are not waited
/// for: one that is down must not hold up a setting the primary applied.
pub fn primary_applied_settings(nodes: &[NodeStateRow]) -> bool {
    let applying = nodes.iter().any(|n| {
        n.assigned_group_state == "apply_settings" || n.current_group_state == "apply_settings"
    });
    let writable_rests = nodes.iter().any(|n| {
        n.current_group_state == n.assigned_group_state
            && matches!(
                n.current_group_state.as_str(),
                "primary" | "wait_primary" | "single"
            )
    });
    !applying && writable_rests
}

/// The writable node of a group, if exactly one.
pub fn writable(nodes: &[NodeStateRow]) -> Option<&NodeStateRow> {
    let mut it = nodes.iter().filter(|n| {
        matches!(
            n.current_group_state.as_str(),
            "single" | "primary" | "wait_primary"
        ) && n.current_group_state == n.assigned_group_state
    });
    let first = it.next();
    if it.next().is_some() { None } else { first }
}

/// Where the table of notifications goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// Standard output (`perform`, where following is the point).
    Stdout,
    /// Standard error (`set`, whose standard output is the value set).
    Stderr,
}

/// Prints notifications as they come and returns when `done` holds for the group's nodes.
/// The caller must have LISTENed on `state` before making the change it waits for.
pub async fn follow_group<F>(
    monitor: &mut Monitor,
    formation: &str,
    group: Option<i32>,
    timeout: Duration,
    what: &str,
    show: Show,
    mut done: F,
) -> CliResult<Vec<NodeStateRow>>
where
    F: FnMut(&[NodeStateRow]) -> bool,
{
    let deadline = Instant::now() + timeout;
    let mut printed_header = false;
    loop {
        let nodes = monitor.current_state(formation, group).await?;
        if done(&nodes) {
            return Ok(nodes);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CliError::new(
                Exit::Monitor,
                format!("timed out after {}s waiting for {what}", timeout.as_secs()),
            )
            .hint(
                "pg_autoctl show state and pg_autoctl show events tell what the group is doing.",
            ));
        }
        if let Some(n) = monitor
            .next_notification(left.min(Duration::from_millis(500)))
            .await?
            && n.channel == "state"
        {
            let mut text = String::new();
            if !printed_header {
                text.push_str(&format!(
                    "{:>8} | {:>10} | {:>5} | {:>20} | {:>19} | {:>19}\n",
                    "Time", "Name", "Node", "Host:Port", "Current State", "Assigned State"
                ));
                text.push_str(&format!(
                    "{}-+-{}-+-{}-+-{}-+-{}-+-{}\n",
                    "-".repeat(8),
                    "-".repeat(10),
                    "-".repeat(5),
                    "-".repeat(20),
                    "-".repeat(19),
                    "-".repeat(19)
                ));
                printed_header = true;
            }
            text.push_str(&notification_line(&n.payload));
            match show {
                Show::Stdout => print!("{text}"),
                Show::Stderr => eprint!("{text}"),
            }
        }
    }
}

/// One line of the table for a `state` notification ('' when it does not parse).
fn notification_line(payload: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(payload) else {
        return String::new();
    };
    let now = time_of_day();
    format!(
        "{:>8} | {:>10} | {:>5} | {:>20} | {:>19} | {:>19}\n",
        now,
        v["name"].as_str().unwrap_or(""),
        format!(
            "{}/{}",
            v["groupId"].as_i64().unwrap_or(0),
            v["nodeId"].as_i64().unwrap_or(0)
        ),
        format!(
            "{}:{}",
            v["host"].as_str().unwrap_or(""),
            v["port"].as_i64().unwrap_or(0)
        ),
        v["reportedState"].as_str().unwrap_or(""),
        v["goalState"].as_str().unwrap_or("")
    )
}

/// HH:MM:SS in UTC.
pub fn time_of_day() -> String {
    let secs = crate::state::unix_now() % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i64, current: &str, assigned: &str) -> NodeStateRow {
        NodeStateRow {
            formation_kind: "pgsql".to_string(),
            nodename: format!("node_{id}"),
            nodehost: "h".to_string(),
            nodeport: 5432,
            group_id: 0,
            node_id: id,
            current_group_state: current.to_string(),
            assigned_group_state: assigned.to_string(),
            candidate_priority: 50,
            replication_quorum: true,
            reported_tli: 1,
            reported_lsn: "0/0".to_string(),
            health: 1,
            nodecluster: "default".to_string(),
        }
    }

    #[test]
    fn a_group_is_stable_once_primary_and_secondary_rest() {
        assert!(is_stable(&[
            node(1, "primary", "primary"),
            node(2, "secondary", "secondary")
        ]));
        assert!(is_stable(&[node(1, "single", "single")]));
        assert!(!is_stable(&[
            node(1, "wait_primary", "wait_primary"),
            node(2, "secondary", "secondary")
        ]));
        assert!(!is_stable(&[
            node(1, "primary", "draining"),
            node(2, "secondary", "secondary")
        ]));
        assert!(!is_stable(&[
            node(1, "primary", "primary"),
            node(2, "catchingup", "catchingup")
        ]));
        assert!(is_stable(&[
            node(1, "wait_primary", "wait_primary"),
            node(2, "maintenance", "maintenance")
        ]));
    }

    #[test]
    fn settings_are_applied_once_the_primary_is_back_from_apply_settings() {
        // standbys down or catching up do not matter
        assert!(primary_applied_settings(&[
            node(1, "primary", "primary"),
            node(2, "catchingup", "catchingup"),
            node(3, "secondary", "catchingup"),
        ]));
        assert!(primary_applied_settings(&[
            node(1, "wait_primary", "wait_primary"),
            node(2, "catchingup", "catchingup"),
        ]));
        assert!(!primary_applied_settings(&[
            node(1, "primary", "apply_settings"),
            node(2, "secondary", "secondary"),
        ]));
        assert!(!primary_applied_settings(&[
            node(1, "apply_settings", "primary"),
            node(2, "secondary", "secondary"),
        ]));
        // no primary at all: nothing applied it
        assert!(!primary_applied_settings(&[
            node(1, "report_lsn", "report_lsn"),
            node(2, "report_lsn", "report_lsn"),
        ]));
    }

    #[test]
    fn the_writable_node_is_found_when_unique() {
        let nodes = [
            node(1, "secondary", "secondary"),
            node(2, "primary", "primary"),
        ];
        assert_eq!(writable(&nodes).map(|n| n.node_id), Some(2));
        let two = [node(1, "primary", "primary"), node(2, "single", "single")];
        assert!(writable(&two).is_none());
    }
}
