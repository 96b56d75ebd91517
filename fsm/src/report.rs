//! Merging a keeper's heartbeat (`node_active` arguments) into the node's row.

use crate::ReplicationState;
use crate::model::{Lsn, Node, SyncState, Timestamp};

/// What a keeper reports with each `node_active` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// `current_group_role`: the state the keeper reached.
    pub state: ReplicationState,
    /// `current_pg_is_running`.
    pub pg_is_running: bool,
    /// `current_tli` (0: unknown, keep the previous value).
    pub tli: i32,
    /// `current_lsn` (0/0: unknown, keep the previous value).
    pub lsn: Lsn,
    /// `current_rep_state`.
    pub sync_state: SyncState,
}

impl Report {
    /// Applies the report to `node` at `now`, as 2.0 stores it. Returns whether the reported
    /// state changed (which 2.0 records as an event).
    pub fn apply(&self, node: &mut Node, now: Timestamp) -> bool {
        let changed = node.reported != self.state;
        node.reported = self.state;
        node.report_time = now;
        node.pg_is_running = self.pg_is_running;
        node.sync_state = self.sync_state;
        if self.tli != 0 {
            node.reported_tli = self.tli;
        }
        if self.lsn.0 != 0 {
            node.reported_lsn = self.lsn;
            node.wal_report_time = now;
        }
        if changed {
            node.state_change_time = now;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::node;

    #[test]
    fn zero_lsn_and_tli_keep_previous_values() {
        let mut n = node(1, ReplicationState::Secondary);
        n.reported_lsn = Lsn(100);
        n.reported_tli = 3;
        let before = n.wal_report_time;
        let report = Report {
            state: ReplicationState::Secondary,
            pg_is_running: true,
            tli: 0,
            lsn: Lsn(0),
            sync_state: SyncState::Unknown,
        };
        let now = Timestamp(before.0 + 5_000_000);
        assert!(!report.apply(&mut n, now));
        assert_eq!(n.reported_lsn, Lsn(100));
        assert_eq!(n.reported_tli, 3);
        assert_eq!(n.wal_report_time, before);
        assert_eq!(n.report_time, now);
    }

    #[test]
    fn state_change_moves_state_change_time() {
        let mut n = node(1, ReplicationState::Catchingup);
        n.goal = ReplicationState::Secondary;
        let report = Report {
            state: ReplicationState::Secondary,
            pg_is_running: true,
            tli: 2,
            lsn: Lsn(200),
            sync_state: SyncState::Async,
        };
        let now = Timestamp(n.state_change_time.0 + 1);
        assert!(report.apply(&mut n, now));
        assert_eq!(n.state_change_time, now);
        assert_eq!(n.reported_tli, 2);
        assert_eq!(n.wal_report_time, now);
    }
}
