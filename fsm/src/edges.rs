//! Every (current, assigned) state pair the monitor can produce, as data.
//!
//! "Current" is the state the node last reported when the monitor assigns it a new goal, which
//! is the state its keeper is in. The keeper must have a transition for every pair listed here
//! (pg_auto_failover's keeper stalls forever on a pair it lacks: its issues #1025, #1168).
//!
//! The list is grouped by the rule or API call producing each pair. The property tests in this
//! crate run random schedules of heartbeats, failures and API calls and fail on any pair the
//! rules produce that is missing here.

use crate::ReplicationState as S;
use crate::ReplicationState;

/// One (current, assigned) pair.
pub type Edge = (ReplicationState, ReplicationState);

/// States a node can be in when its group shrinks to itself and it becomes `single`, or
/// `report_lsn` when its candidate priority is 0 (rules: "alone in the group"); nodes without
/// data or waiting to follow are left alone.
const ALONE_FROM: [S; 16] = [
    S::Init,
    S::WaitPrimary,
    S::Primary,
    S::Draining,
    S::DemoteTimeout,
    S::Demoted,
    S::Catchingup,
    S::Secondary,
    S::PreparePromotion,
    S::StopReplication,
    S::JoinPrimary,
    S::ApplySettings,
    S::WaitMaintenance,
    S::ReportLsn,
    S::FastForward,
    S::Maintenance,
];

/// States a primary may report when the monitor tells it to stop taking writes (`draining`).
const PRIMARY_LIKE: [S; 5] = [
    S::Single,
    S::WaitPrimary,
    S::Primary,
    S::JoinPrimary,
    S::ApplySettings,
];

/// Standby states whose node takes part in an election (`report_lsn`), from the election
/// itself and from `remove_node()` of the primary.
const REPORT_LSN_FROM: [S; 11] = [
    S::Secondary,
    S::Catchingup,
    S::Maintenance,
    S::Draining,
    S::DemoteTimeout,
    S::Demoted,
    S::PreparePromotion,
    S::StopReplication,
    S::ReportLsn,
    S::FastForward,
    S::JoinSecondary,
];

/// The pairs produced by a single rule or API call each, listed explicitly.
const NAMED: &[Edge] = &[
    // register_node(): the first goal of a new node (or of one registering again after drop).
    (S::Init, S::Single),
    (S::Init, S::WaitStandby),
    (S::Init, S::ReportLsn),
    (S::Dropped, S::Single),
    (S::Dropped, S::WaitStandby),
    (S::Dropped, S::ReportLsn),
    // the primary's section
    (S::Single, S::WaitPrimary),
    (S::Secondary, S::Catchingup),
    (S::Catchingup, S::Catchingup),
    (S::Primary, S::WaitPrimary),
    (S::WaitPrimary, S::Primary),
    (S::ApplySettings, S::Primary),
    (S::ApplySettings, S::WaitPrimary),
    (S::JoinPrimary, S::Primary),
    // standby rules
    (S::Draining, S::DemoteTimeout),
    (S::ReportLsn, S::Secondary),
    (S::FastForward, S::PreparePromotion),
    (S::WaitStandby, S::Catchingup),
    (S::Catchingup, S::Secondary),
    (S::Secondary, S::PreparePromotion),
    (S::WaitMaintenance, S::Maintenance),
    (S::PreparePromotion, S::StopReplication),
    (S::PreparePromotion, S::WaitPrimary),
    (S::StopReplication, S::WaitPrimary),
    (S::PrepareMaintenance, S::Maintenance),
    (S::Demoted, S::Catchingup),
    (S::JoinSecondary, S::Secondary),
    // election
    (S::ReportLsn, S::PreparePromotion),
    (S::ReportLsn, S::FastForward),
    (S::ReportLsn, S::JoinSecondary),
    // apply_settings: a standby joins, a setting changes, a standby is removed
    (S::Primary, S::ApplySettings),
    (S::WaitPrimary, S::ApplySettings),
    (S::ApplySettings, S::ApplySettings),
    // perform_failover(), perform_promotion(), start_maintenance() on a primary
    (S::Secondary, S::PreparePromotion),
    (S::Primary, S::PrepareMaintenance),
    // start_maintenance() on a standby
    (S::Secondary, S::WaitMaintenance),
    (S::Secondary, S::Maintenance),
    (S::Catchingup, S::Maintenance),
    // stop_maintenance()
    (S::Maintenance, S::Catchingup),
    (S::Maintenance, S::ReportLsn),
    (S::PrepareMaintenance, S::Catchingup),
    (S::PrepareMaintenance, S::ReportLsn),
];

/// Whether the monitor can assign `assigned` to a node that reported `current`.
pub fn is_monitor_edge(current: ReplicationState, assigned: ReplicationState) -> bool {
    MONITOR_EDGES.contains(&(current, assigned))
}

/// Room for every possible pair.
const CAPACITY: usize = ReplicationState::ALL.len() * ReplicationState::ALL.len();

/// Builds the full list at compile time: the named pairs plus the families above. Returns the
/// pairs and how many there are.
const fn build() -> ([Edge; CAPACITY], usize) {
    let mut out = [(S::Unknown, S::Unknown); CAPACITY];
    let mut n = 0;
    let mut i = 0;
    while i < NAMED.len() {
        n = push(&mut out, n, NAMED[i]);
        i += 1;
    }
    // Alone: single, or report_lsn with candidate priority 0.
    i = 0;
    while i < ALONE_FROM.len() {
        n = push(&mut out, n, (ALONE_FROM[i], S::Single));
        n = push(&mut out, n, (ALONE_FROM[i], S::ReportLsn));
        i += 1;
    }
    i = 0;
    while i < PRIMARY_LIKE.len() {
        n = push(&mut out, n, (PRIMARY_LIKE[i], S::Draining));
        i += 1;
    }
    // The node the monitor takes for the (old) primary is fenced with demote_timeout, then
    // demoted. That node holds a writable goal or reported a primary state, but it may not
    // have reached it: a candidate still being promoted, a node that just became single. So
    // these come from any state; the keeper's answer is always to stop Postgres.
    i = 0;
    while i < ReplicationState::ALL.len() {
        let state = ReplicationState::ALL[i];
        if !matches!(state, S::Unknown | S::Dropped) {
            if !matches!(state, S::DemoteTimeout) {
                n = push(&mut out, n, (state, S::DemoteTimeout));
            }
            if !matches!(state, S::Demoted) {
                n = push(&mut out, n, (state, S::Demoted));
            }
        }
        i += 1;
    }
    i = 0;
    while i < REPORT_LSN_FROM.len() {
        n = push(&mut out, n, (REPORT_LSN_FROM[i], S::ReportLsn));
        i += 1;
    }
    // remove_node(): any node can be dropped.
    i = 0;
    while i < ReplicationState::ALL.len() {
        let state = ReplicationState::ALL[i];
        if !matches!(state, S::Unknown | S::Dropped) {
            n = push(&mut out, n, (state, S::Dropped));
        }
        i += 1;
    }
    (out, n)
}

/// Appends `edge` unless already present; returns the new length.
const fn push(out: &mut [Edge; CAPACITY], len: usize, edge: Edge) -> usize {
    let mut i = 0;
    while i < len {
        if out[i].0 as u8 == edge.0 as u8 && out[i].1 as u8 == edge.1 as u8 {
            return len;
        }
        i += 1;
    }
    out[len] = edge;
    len + 1
}

const BUILT: ([Edge; CAPACITY], usize) = build();

/// Every (current, assigned) pair the monitor can produce, without duplicates.
pub const MONITOR_EDGES: &[Edge] = BUILT.0.split_at(BUILT.1).0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_are_distinct_and_never_unknown() {
        for (i, a) in MONITOR_EDGES.iter().enumerate() {
            assert_ne!(a.0, S::Unknown);
            assert_ne!(a.1, S::Unknown);
            assert!(!MONITOR_EDGES[i + 1..].contains(a), "duplicate {a:?}");
        }
    }

    #[test]
    fn every_state_but_unknown_and_dropped_can_be_dropped() {
        for state in ReplicationState::ALL {
            if !matches!(state, S::Unknown | S::Dropped) {
                assert!(is_monitor_edge(state, S::Dropped), "{state} -> dropped");
            }
        }
    }

    #[test]
    fn the_happy_path_is_listed() {
        for (from, to) in [
            (S::Init, S::Single),
            (S::Single, S::WaitPrimary),
            (S::Init, S::WaitStandby),
            (S::WaitStandby, S::Catchingup),
            (S::Catchingup, S::Secondary),
            (S::WaitPrimary, S::Primary),
            (S::Primary, S::Draining),
            (S::Secondary, S::PreparePromotion),
            (S::PreparePromotion, S::StopReplication),
            (S::Primary, S::DemoteTimeout),
            (S::StopReplication, S::WaitPrimary),
            (S::DemoteTimeout, S::Demoted),
            (S::Demoted, S::Catchingup),
        ] {
            assert!(is_monitor_edge(from, to), "{from} -> {to}");
        }
    }
}
