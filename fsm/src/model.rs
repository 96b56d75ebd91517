//! The data the rules decide on: nodes, formations, settings and time.
//!
//! These mirror the columns of `pgautofailover.node` and `pgautofailover.formation`. Time is an
//! input: timestamps are microseconds on one clock (the monitor's), so every rule is a pure
//! function of the snapshot and `now`.

use std::fmt;
use std::str::FromStr;

use crate::ReplicationState;

/// A node identifier (`pgautofailover.node.nodeid`).
pub type NodeId = i64;

/// Microseconds on the monitor's clock (Postgres `timestamptz` resolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// This timestamp moved by `ms` milliseconds (negative moves back).
    pub const fn plus_ms(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms.saturating_mul(1000)))
    }

    /// Whether more than `ms` milliseconds passed from `self` to `later`
    /// (`TimestampDifferenceExceeds(self, later, ms)` in Postgres, which is `>=`).
    pub const fn exceeded_by(self, later: Timestamp, ms: i64) -> bool {
        later.0.saturating_sub(self.0) >= ms.saturating_mul(1000)
    }
}

/// A WAL position (`pg_lsn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// A string that is not an LSN in `X/Y` hexadecimal form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid LSN \"{0}\": expected two hexadecimal numbers separated by '/', like 0/16B3748")]
pub struct InvalidLsnError(pub String);

impl FromStr for Lsn {
    type Err = InvalidLsnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || InvalidLsnError(s.to_string());
        let (hi, lo) = s.split_once('/').ok_or_else(err)?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| err())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| err())?;
        Ok(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

/// The monitor's health-check verdict (`pgautofailover.node.health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// Not checked since registration (-1).
    Unknown,
    /// The last check failed every retry (0).
    Bad,
    /// The last check connected (1).
    Good,
}

impl Health {
    /// The integer stored in the `health` column.
    pub const fn as_i32(self) -> i32 {
        match self {
            Health::Unknown => -1,
            Health::Bad => 0,
            Health::Good => 1,
        }
    }

    /// Reads the `health` column; anything but 0 and 1 is unknown.
    pub const fn from_i32(value: i32) -> Health {
        match value {
            0 => Health::Bad,
            1 => Health::Good,
            _ => Health::Unknown,
        }
    }

    /// The name used in `state` notifications.
    pub const fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Bad => "bad",
            Health::Good => "good",
        }
    }
}

/// A standby's `pg_stat_replication.sync_state` as the keeper reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncState {
    /// Empty or `unknown`: no standby connected, or not a primary.
    Unknown,
    /// `sync`.
    Sync,
    /// `async`.
    Async,
    /// `quorum`.
    Quorum,
    /// `potential`.
    Potential,
}

/// A `current_rep_state` that is not a `pg_stat_replication.sync_state` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown pg_stat_replication.sync_state \"{0}\": expected one of '', 'unknown', 'sync', \
     'async', 'quorum', 'potential'"
)]
pub struct UnknownSyncStateError(pub String);

impl SyncState {
    /// The value stored in `reportedrepstate`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SyncState::Unknown => "unknown",
            SyncState::Sync => "sync",
            SyncState::Async => "async",
            SyncState::Quorum => "quorum",
            SyncState::Potential => "potential",
        }
    }
}

impl FromStr for SyncState {
    type Err = UnknownSyncStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" | "unknown" => Ok(SyncState::Unknown),
            "sync" => Ok(SyncState::Sync),
            "async" => Ok(SyncState::Async),
            "quorum" => Ok(SyncState::Quorum),
            "potential" => Ok(SyncState::Potential),
            other => Err(UnknownSyncStateError(other.to_string())),
        }
    }
}

/// One row of `pgautofailover.node`: what the monitor knows about a node.
///
/// `goal` is the monitor's intent; `reported`, `pg_is_running`, LSN and TLI are what the keeper
/// last said; `health` is what the monitor's own probe last saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `nodeid`.
    pub id: NodeId,
    /// `nodename`.
    pub name: String,
    /// `nodehost`.
    pub host: String,
    /// `nodeport`.
    pub port: i32,
    /// `groupid`.
    pub group_id: i32,
    /// `goalstate`: assigned by the monitor.
    pub goal: ReplicationState,
    /// `reportedstate`: last state the keeper reported reaching.
    pub reported: ReplicationState,
    /// `reportedpgisrunning`.
    pub pg_is_running: bool,
    /// `reportedrepstate`.
    pub sync_state: SyncState,
    /// `reporttime`: last `node_active` call.
    pub report_time: Timestamp,
    /// `walreporttime`: last report with a non-zero LSN.
    pub wal_report_time: Timestamp,
    /// `health`.
    pub health: Health,
    /// `healthchecktime`.
    pub health_check_time: Timestamp,
    /// `statechangetime`: last goal assignment or reported-state change.
    pub state_change_time: Timestamp,
    /// `reportedtli`.
    pub reported_tli: i32,
    /// `reportedlsn`.
    pub reported_lsn: Lsn,
    /// `candidatepriority` (0..100; ±101 while an election is steered).
    pub candidate_priority: i32,
    /// `replicationquorum`.
    pub replication_quorum: bool,
    /// `nodecluster` (Citus read-replica cluster name; `default` otherwise).
    pub node_cluster: String,
    /// The node's lease, when its keeper holds one (not a column: kept in the monitor's
    /// shared memory). `None`: handled the 2.0 way (see [`crate::lease`]).
    pub lease: Option<crate::lease::MonitorLease>,
}

impl Node {
    /// Whether the node reached its goal and the goal is `state` (`IsCurrentState` in 2.0).
    pub fn is_converged(&self, state: ReplicationState) -> bool {
        self.goal == self.reported && self.goal == state
    }

    /// `node 2 "node_2" (host:5432)`: how 2.0 names a node in messages.
    pub fn label(&self) -> String {
        format!(
            "node {} \"{}\" ({}:{})",
            self.id, self.name, self.host, self.port
        )
    }
}

/// `pgautofailover.formation.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormationKind {
    /// Plain Postgres: a single group 0.
    Pgsql,
    /// Citus: a coordinator group 0 and worker groups.
    Citus,
}

impl FormationKind {
    /// The stored value.
    pub const fn as_str(self) -> &'static str {
        match self {
            FormationKind::Pgsql => "pgsql",
            FormationKind::Citus => "citus",
        }
    }

    /// Parses a formation kind; 2.0 also accepts `''` and `unknown`, meaning pgsql.
    pub fn parse(kind: &str) -> Option<FormationKind> {
        match kind {
            "" | "unknown" | "pgsql" => Some(FormationKind::Pgsql),
            "citus" => Some(FormationKind::Citus),
            _ => None,
        }
    }
}

/// One row of `pgautofailover.formation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formation {
    /// `formationid`.
    pub id: String,
    /// `kind`.
    pub kind: FormationKind,
    /// `dbname`.
    pub dbname: String,
    /// `opt_secondary`: whether standbys may join.
    pub opt_secondary: bool,
    /// `number_sync_standbys`.
    pub number_sync_standbys: i32,
}

/// The monitor settings (GUCs) the rules read. Durations in milliseconds, thresholds in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `pgautofailover.node_considered_unhealthy_timeout`.
    pub node_considered_unhealthy_timeout_ms: i64,
    /// `pgautofailover.startup_grace_period`.
    pub startup_grace_period_ms: i64,
    /// `pgautofailover.primary_demote_timeout`.
    pub primary_demote_timeout_ms: i64,
    /// `pgautofailover.promote_wal_log_threshold`.
    pub promote_wal_log_threshold: u64,
    /// `pgautofailover.enable_sync_wal_log_threshold`.
    pub enable_sync_wal_log_threshold: u64,
    /// `pgautofailover.node_lease_margin`: how long after a lease ran out the monitor
    /// promotes in its place.
    pub lease_margin_ms: i64,
}

impl Default for Settings {
    /// The 2.0 defaults, and our lease margin.
    fn default() -> Self {
        Settings {
            node_considered_unhealthy_timeout_ms: 20_000,
            startup_grace_period_ms: 10_000,
            primary_demote_timeout_ms: 30_000,
            promote_wal_log_threshold: 16 * 1024 * 1024,
            enable_sync_wal_log_threshold: 16 * 1024 * 1024,
            lease_margin_ms: 500,
        }
    }
}

/// When the decision is taken, and when the monitor's Postgres started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// The time of the decision.
    pub now: Timestamp,
    /// When the monitor started: health verdicts older than that are ignored.
    pub monitor_start: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_parses_and_prints_like_pg_lsn() {
        let lsn: Lsn = "16/B374D848".parse().expect("valid");
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert_eq!(Lsn(0).to_string(), "0/0");
        assert!("16B374D848".parse::<Lsn>().is_err());
        assert!("G/0".parse::<Lsn>().is_err());
    }

    #[test]
    fn sync_state_accepts_the_2_0_values_only() {
        assert_eq!("".parse::<SyncState>(), Ok(SyncState::Unknown));
        assert_eq!("quorum".parse::<SyncState>(), Ok(SyncState::Quorum));
        let err = "SYNC".parse::<SyncState>().unwrap_err();
        assert!(err.to_string().contains("\"SYNC\""));
    }

    #[test]
    fn health_round_trips_through_its_column_value() {
        for health in [Health::Unknown, Health::Bad, Health::Good] {
            assert_eq!(Health::from_i32(health.as_i32()), health);
        }
    }

    #[test]
    fn exceeded_by_is_inclusive_like_postgres() {
        let t = Timestamp(1_000_000);
        assert!(t.exceeded_by(t.plus_ms(20), 20));
        assert!(!t.exceeded_by(t.plus_ms(19), 20));
    }
}
