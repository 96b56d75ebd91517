//! The replication states of pg_auto_failover 2.0 and the predicates the rules use on them.
//!
//! The order of [`ReplicationState::ALL`] is the declaration order of the SQL enum
//! `pgautofailover.replication_state`; SQL compares enum values by that order, so it must never
//! change.

use std::fmt;
use std::str::FromStr;

/// A node's replication state, as assigned by the monitor (goal) or reported by a keeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReplicationState {
    /// The enum's zero value; never assigned.
    Unknown,
    /// Just registered, nothing done yet.
    Init,
    /// Alone in its group: read-write, no replication.
    Single,
    /// Read-write primary without synchronous replication.
    WaitPrimary,
    /// Read-write primary with synchronous replication to a healthy quorum.
    Primary,
    /// The primary stops taking writes.
    Draining,
    /// The primary must stop; the monitor waits for it to confirm or time out.
    DemoteTimeout,
    /// Postgres is stopped and must stay stopped (fenced).
    Demoted,
    /// A standby streaming but not yet eligible for promotion.
    Catchingup,
    /// A hot standby close enough to the primary to be promoted.
    Secondary,
    /// The promotion candidate gets ready.
    PreparePromotion,
    /// The candidate stops replicating and promotes, still read-only.
    StopReplication,
    /// A new standby waits for the primary to allow it in.
    WaitStandby,
    /// The monitor leaves the node alone until maintenance is stopped.
    Maintenance,
    /// Deprecated primary state, always moved on to `primary`.
    JoinPrimary,
    /// The primary re-reads its replication settings from the monitor.
    ApplySettings,
    /// The primary is on its way to maintenance: a standby takes over.
    PrepareMaintenance,
    /// A standby waits for the primary to drop synchronous replication before maintenance.
    WaitMaintenance,
    /// Election: a standby stops replicating and reports its last received LSN.
    ReportLsn,
    /// Election: the chosen candidate fetches missing WAL from a more advanced standby.
    FastForward,
    /// Election: a losing standby waits for the new primary, then follows it.
    JoinSecondary,
    /// The node is being removed; its row goes once it reports this state.
    Dropped,
}

use ReplicationState as S;

impl ReplicationState {
    /// Every state, in SQL enum declaration order.
    pub const ALL: [ReplicationState; 22] = [
        S::Unknown,
        S::Init,
        S::Single,
        S::WaitPrimary,
        S::Primary,
        S::Draining,
        S::DemoteTimeout,
        S::Demoted,
        S::Catchingup,
        S::Secondary,
        S::PreparePromotion,
        S::StopReplication,
        S::WaitStandby,
        S::Maintenance,
        S::JoinPrimary,
        S::ApplySettings,
        S::PrepareMaintenance,
        S::WaitMaintenance,
        S::ReportLsn,
        S::FastForward,
        S::JoinSecondary,
        S::Dropped,
    ];

    /// The SQL enum label.
    pub const fn as_str(self) -> &'static str {
        match self {
            S::Unknown => "unknown",
            S::Init => "init",
            S::Single => "single",
            S::WaitPrimary => "wait_primary",
            S::Primary => "primary",
            S::Draining => "draining",
            S::DemoteTimeout => "demote_timeout",
            S::Demoted => "demoted",
            S::Catchingup => "catchingup",
            S::Secondary => "secondary",
            S::PreparePromotion => "prepare_promotion",
            S::StopReplication => "stop_replication",
            S::WaitStandby => "wait_standby",
            S::Maintenance => "maintenance",
            S::JoinPrimary => "join_primary",
            S::ApplySettings => "apply_settings",
            S::PrepareMaintenance => "prepare_maintenance",
            S::WaitMaintenance => "wait_maintenance",
            S::ReportLsn => "report_lsn",
            S::FastForward => "fast_forward",
            S::JoinSecondary => "join_secondary",
            S::Dropped => "dropped",
        }
    }

    /// Position in the SQL enum (0-based), which is also the sort order.
    pub fn sql_position(self) -> usize {
        self as usize
    }

    /// States in which Postgres accepts writes (`CanTakeWritesInState` in 2.0).
    pub const fn can_take_writes(self) -> bool {
        matches!(
            self,
            S::Single | S::Primary | S::WaitPrimary | S::JoinPrimary | S::ApplySettings
        )
    }

    /// States a manual failover may start from (`CanInitiateFailover` in 2.0). `wait_primary`
    /// is excluded: its standby may not have caught up yet.
    pub const fn can_initiate_failover(self) -> bool {
        matches!(self, S::Single | S::Primary | S::JoinPrimary)
    }

    /// States only a primary can be in, including while it is being demoted.
    pub const fn belongs_to_primary(self) -> bool {
        self.can_take_writes()
            || matches!(self, S::Draining | S::DemoteTimeout | S::PrepareMaintenance)
    }

    /// Maintenance-related goals (`IsInMaintenance` in 2.0).
    pub const fn is_maintenance(self) -> bool {
        matches!(
            self,
            S::PrepareMaintenance | S::WaitMaintenance | S::Maintenance
        )
    }
}

impl fmt::Display for ReplicationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the 22 state names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown replication state \"{0}\"")]
pub struct UnknownStateError(pub String);

impl FromStr for ReplicationState {
    type Err = UnknownStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReplicationState::ALL
            .iter()
            .copied()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownStateError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The labels of `pgautofailover.replication_state` in 2.0, in declaration order.
    const SQL_LABELS: [&str; 22] = [
        "unknown",
        "init",
        "single",
        "wait_primary",
        "primary",
        "draining",
        "demote_timeout",
        "demoted",
        "catchingup",
        "secondary",
        "prepare_promotion",
        "stop_replication",
        "wait_standby",
        "maintenance",
        "join_primary",
        "apply_settings",
        "prepare_maintenance",
        "wait_maintenance",
        "report_lsn",
        "fast_forward",
        "join_secondary",
        "dropped",
    ];

    #[test]
    fn labels_match_the_sql_enum_in_order() {
        let ours: Vec<&str> = ReplicationState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(ours, SQL_LABELS);
        for (i, state) in ReplicationState::ALL.iter().enumerate() {
            assert_eq!(state.sql_position(), i);
        }
    }

    #[test]
    fn parse_and_display_round_trip() {
        for state in ReplicationState::ALL {
            let parsed: ReplicationState = state.to_string().parse().expect("own label parses");
            assert_eq!(parsed, state);
        }
    }

    #[test]
    fn unknown_names_are_rejected_with_the_name() {
        let err = "Primary".parse::<ReplicationState>().unwrap_err();
        assert_eq!(err.to_string(), "unknown replication state \"Primary\"");
        assert!("".parse::<ReplicationState>().is_err());
    }

    #[test]
    fn writable_states_are_the_five_of_2_0() {
        let writable: Vec<_> = ReplicationState::ALL
            .iter()
            .filter(|s| s.can_take_writes())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            writable,
            [
                "single",
                "wait_primary",
                "primary",
                "join_primary",
                "apply_settings"
            ]
        );
        assert!(S::Draining.belongs_to_primary());
        assert!(S::PrepareMaintenance.belongs_to_primary());
        assert!(!S::Demoted.belongs_to_primary());
        assert!(!S::WaitPrimary.can_initiate_failover());
    }
}
