//! Builders for tests: converged, healthy nodes and groups around a fixed instant.

use crate::ReplicationState;
use crate::group::Group;
use crate::model::{
    Clock, Formation, FormationKind, Health, Lsn, Node, NodeId, Settings, SyncState, Timestamp,
};

/// The instant every test decision is taken at.
pub const NOW: Timestamp = Timestamp(800_000_000_000_000);

/// A clock at [`NOW`] with the monitor up for an hour.
pub fn clock() -> Clock {
    Clock {
        now: NOW,
        monitor_start: NOW.plus_ms(-3_600_000),
    }
}

/// A healthy node converged to `state`, reporting right now, at LSN 0/1000000 on timeline 1.
pub fn node(id: NodeId, state: ReplicationState) -> Node {
    Node {
        id,
        name: format!("node_{id}"),
        host: "127.0.0.1".to_string(),
        port: 5430 + i32::try_from(id).unwrap_or(0),
        group_id: 0,
        goal: state,
        reported: state,
        pg_is_running: true,
        sync_state: SyncState::Unknown,
        report_time: NOW,
        wal_report_time: NOW,
        health: Health::Good,
        health_check_time: NOW.plus_ms(-1_000),
        state_change_time: NOW.plus_ms(-60_000),
        reported_tli: 1,
        reported_lsn: Lsn(0x100_0000),
        candidate_priority: 50,
        replication_quorum: true,
        node_cluster: "default".to_string(),
        lease: None,
    }
}

/// The `default` pgsql formation.
pub fn formation() -> Formation {
    Formation {
        id: "default".to_string(),
        kind: FormationKind::Pgsql,
        dbname: "postgres".to_string(),
        opt_secondary: true,
        number_sync_standbys: 0,
    }
}

/// Group 0 of the default formation with default settings at [`NOW`].
pub fn group(nodes: Vec<Node>) -> Group {
    Group::new(formation(), 0, nodes, Settings::default(), clock())
}

/// Makes a node look dead: no report for a minute and a failed probe.
pub fn kill(node: &mut Node) {
    node.report_time = NOW.plus_ms(-60_000);
    node.health = Health::Bad;
    node.health_check_time = NOW.plus_ms(-1_000);
}

/// The goal of node `id` in `group`.
pub fn goal(group: &Group, id: NodeId) -> ReplicationState {
    group.get(id).map_or(ReplicationState::Unknown, |n| n.goal)
}
