//! The keeper's transition table, as data: for each (current, assigned) pair, the named action
//! the keeper runs to get from one state to the other, and what Postgres must be doing in each
//! state once reached.
//!
//! Every action is written to be idempotent and to converge on the assigned state whatever the
//! node's exact starting point: a keeper that crashed half-way through re-runs the same action.
//! That is why several pairs share one action (`any → demoted` always stops Postgres).
//!
//! A test proves the table has a row for every pair the monitor can produce
//! ([`crate::edges::MONITOR_EDGES`]); pg_auto_failover's keeper lacks some and stalls forever on
//! them (its issues #1025, #1168).

use crate::ReplicationState as S;
use crate::ReplicationState;

/// What the keeper does to move Postgres from one state to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeeperAction {
    /// The new state needs nothing done to Postgres: only the reported state changes.
    Nothing,
    /// Become the first node: initdb an empty PGDATA (or take over the existing database as it
    /// is), start Postgres, promote it if it is a standby, create the roles, database and HBA
    /// rules the formation needs.
    InitPrimary,
    /// Become `single`: run Postgres, promote it if it is a standby, no synchronous
    /// replication, writes allowed.
    BecomeSingle,
    /// A new standby copies the primary with `pg_basebackup` and starts streaming from it.
    InitStandby,
    /// A new node registered during an election copies the most advanced other node, then
    /// waits without an upstream.
    InitFromPeer,
    /// Stream from the current primary (rewrite `primary_conninfo`, restart or reload).
    FollowPrimary,
    /// A former primary (or a node back from maintenance) rejoins as a standby: `pg_rewind`
    /// onto the primary's timeline when it diverged, `pg_basebackup` when that fails.
    RewindOrInit,
    /// A standby is close enough to the primary to be promoted: replication slots for the
    /// other nodes are kept from now on.
    PrepareSecondary,
    /// Apply the monitor's `synchronous_standby_names` on the primary.
    EnableSyncRep,
    /// Drop synchronous replication on the primary, so that writes never wait on a standby
    /// that is gone.
    DisableSyncRep,
    /// Stop Postgres (fencing a primary that must not take writes any more).
    StopPostgres,
    /// Start Postgres again: the keeper fenced itself after losing the monitor and the
    /// standbys, and the monitor still wants it as the primary.
    StartPostgres,
    /// The promotion candidate makes new transactions read-only, then promotes.
    StopReplication,
    /// The promoted candidate opens for writes.
    OpenForWrites,
    /// Promote and open for writes in one step.
    PromoteAndOpen,
    /// Checkpoint, then stop the primary so that a standby can take over.
    StopPrimaryForMaintenance,
    /// The stopped former primary is set up as a standby of the new primary, still stopped.
    SetupStandbyForMaintenance,
    /// Leave Postgres to the operator.
    ReleaseForMaintenance,
    /// Election: stop streaming and report the last received LSN.
    ReportLsn,
    /// Election: stream the missing WAL from the most advanced standby up to its LSN.
    FastForward,
    /// Election: the fast-forwarded candidate stops streaming from its peer.
    StopFastForward,
    /// Election: a losing standby checkpoints and stops until the new primary is known.
    CheckpointAndStop,
    /// The node is removed: stop Postgres and forget the registration.
    Drop,
}

impl KeeperAction {
    /// Whether the service ends after this action (the node was dropped): it reports once
    /// more, so that the monitor removes the node, and stops.
    pub const fn ends_the_service(self) -> bool {
        matches!(self, KeeperAction::Drop)
    }

    /// The action's name as logged and shown by the keeper.
    pub const fn name(self) -> &'static str {
        match self {
            KeeperAction::Nothing => "nothing",
            KeeperAction::InitPrimary => "init_primary",
            KeeperAction::BecomeSingle => "become_single",
            KeeperAction::InitStandby => "init_standby",
            KeeperAction::InitFromPeer => "init_from_peer",
            KeeperAction::FollowPrimary => "follow_primary",
            KeeperAction::RewindOrInit => "rewind_or_init",
            KeeperAction::PrepareSecondary => "prepare_secondary",
            KeeperAction::EnableSyncRep => "enable_sync_rep",
            KeeperAction::DisableSyncRep => "disable_sync_rep",
            KeeperAction::StopPostgres => "stop_postgres",
            KeeperAction::StartPostgres => "start_postgres",
            KeeperAction::StopReplication => "stop_replication",
            KeeperAction::OpenForWrites => "open_for_writes",
            KeeperAction::PromoteAndOpen => "promote_and_open",
            KeeperAction::StopPrimaryForMaintenance => "stop_primary_for_maintenance",
            KeeperAction::SetupStandbyForMaintenance => "setup_standby_for_maintenance",
            KeeperAction::ReleaseForMaintenance => "release_for_maintenance",
            KeeperAction::ReportLsn => "report_lsn",
            KeeperAction::FastForward => "fast_forward",
            KeeperAction::StopFastForward => "stop_fast_forward",
            KeeperAction::CheckpointAndStop => "checkpoint_and_stop",
            KeeperAction::Drop => "drop",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state the keeper is in.
    pub current: ReplicationState,
    /// The state the monitor assigned.
    pub assigned: ReplicationState,
    /// What the keeper runs.
    pub action: KeeperAction,
}

/// What Postgres must be doing while the keeper stays in a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostgresExpectation {
    /// Running, and accepting writes once the state's action is done.
    RunningPrimary,
    /// Running as a standby (or a promotion candidate still read-only).
    RunningStandby,
    /// Stopped: the node is fenced or dropped.
    Stopped,
    /// The keeper does not touch Postgres (no data yet, or maintenance).
    LeftAlone,
}

/// What Postgres must be doing in `state` (checked on every loop where nothing changes).
pub const fn expected_postgres(state: ReplicationState) -> PostgresExpectation {
    use PostgresExpectation as P;
    match state {
        S::Single | S::WaitPrimary | S::Primary | S::JoinPrimary | S::ApplySettings => {
            P::RunningPrimary
        }
        S::Catchingup
        | S::Secondary
        | S::PreparePromotion
        | S::StopReplication
        | S::WaitMaintenance
        | S::ReportLsn
        | S::FastForward => P::RunningStandby,
        S::Draining | S::DemoteTimeout | S::Demoted | S::JoinSecondary | S::Dropped => P::Stopped,
        S::Unknown | S::Init | S::WaitStandby | S::Maintenance | S::PrepareMaintenance => {
            P::LeftAlone
        }
    }
}

/// Primary states that still accept writes.
const PRIMARY: [S; 5] = [
    S::Single,
    S::WaitPrimary,
    S::Primary,
    S::JoinPrimary,
    S::ApplySettings,
];

/// States where Postgres holds a standby's data and may run.
const STANDBY: [S; 8] = [
    S::Catchingup,
    S::Secondary,
    S::PreparePromotion,
    S::StopReplication,
    S::WaitMaintenance,
    S::ReportLsn,
    S::FastForward,
    S::JoinSecondary,
];

/// States of a primary that has been fenced, or is being.
const FENCED: [S; 3] = [S::Draining, S::DemoteTimeout, S::Demoted];

/// A group of rows: every state of `from` to `to` with one action.
struct Family {
    from: &'static [S],
    to: S,
    action: KeeperAction,
}

/// The rows written one by one.
const SINGLE_ROWS: &[(S, S, KeeperAction)] = {
    use KeeperAction as A;
    &[
        // registration
        (S::Init, S::Single, A::InitPrimary),
        (S::Dropped, S::Single, A::InitPrimary),
        (S::Init, S::WaitStandby, A::Nothing),
        (S::Dropped, S::WaitStandby, A::Nothing),
        (S::Init, S::ReportLsn, A::InitFromPeer),
        (S::Dropped, S::ReportLsn, A::InitFromPeer),
        // a standby joins and catches up
        (S::WaitStandby, S::Catchingup, A::InitStandby),
        (S::Catchingup, S::Secondary, A::PrepareSecondary),
        (S::Secondary, S::Catchingup, A::FollowPrimary),
        (S::Catchingup, S::Catchingup, A::FollowPrimary),
        // the primary's replication settings
        (S::Single, S::WaitPrimary, A::Nothing),
        (S::WaitPrimary, S::Primary, A::EnableSyncRep),
        (S::JoinPrimary, S::Primary, A::EnableSyncRep),
        (S::ApplySettings, S::Primary, A::EnableSyncRep),
        (S::Primary, S::WaitPrimary, A::DisableSyncRep),
        (S::JoinPrimary, S::WaitPrimary, A::DisableSyncRep),
        (S::ApplySettings, S::WaitPrimary, A::DisableSyncRep),
        (S::Primary, S::ApplySettings, A::Nothing),
        (S::WaitPrimary, S::ApplySettings, A::Nothing),
        (S::ApplySettings, S::ApplySettings, A::Nothing),
        (S::Primary, S::JoinPrimary, A::Nothing),
        (S::WaitPrimary, S::JoinPrimary, A::Nothing),
        (S::ApplySettings, S::JoinPrimary, A::Nothing),
        // failover: the candidate
        (S::Secondary, S::PreparePromotion, A::Nothing),
        (S::Catchingup, S::PreparePromotion, A::Nothing),
        (S::ReportLsn, S::PreparePromotion, A::Nothing),
        (S::PreparePromotion, S::StopReplication, A::StopReplication),
        (S::StopReplication, S::WaitPrimary, A::OpenForWrites),
        (S::PreparePromotion, S::WaitPrimary, A::PromoteAndOpen),
        // failover: the old primary
        (S::DemoteTimeout, S::Primary, A::StartPostgres),
        // a keeper fences itself (lease, partition) from any writable state; the monitor may
        // still want it there when it answers again
        (S::DemoteTimeout, S::WaitPrimary, A::StartPostgres),
        (S::DemoteTimeout, S::JoinPrimary, A::StartPostgres),
        (S::DemoteTimeout, S::ApplySettings, A::StartPostgres),
        (S::Demoted, S::Catchingup, A::RewindOrInit),
        // election among several standbys
        (S::ReportLsn, S::FastForward, A::FastForward),
        (S::FastForward, S::PreparePromotion, A::StopFastForward),
        (S::ReportLsn, S::JoinSecondary, A::CheckpointAndStop),
        (S::ReportLsn, S::Secondary, A::FollowPrimary),
        (S::JoinSecondary, S::Secondary, A::FollowPrimary),
        // maintenance
        (
            S::Primary,
            S::PrepareMaintenance,
            A::StopPrimaryForMaintenance,
        ),
        (S::Primary, S::Maintenance, A::StopPrimaryForMaintenance),
        (
            S::PrepareMaintenance,
            S::Maintenance,
            A::SetupStandbyForMaintenance,
        ),
        (S::Secondary, S::WaitMaintenance, A::Nothing),
        (S::Catchingup, S::WaitMaintenance, A::Nothing),
        (S::Secondary, S::Maintenance, A::ReleaseForMaintenance),
        (S::Catchingup, S::Maintenance, A::ReleaseForMaintenance),
        (S::WaitMaintenance, S::Maintenance, A::ReleaseForMaintenance),
        (S::Maintenance, S::Catchingup, A::RewindOrInit),
        (S::PrepareMaintenance, S::Catchingup, A::RewindOrInit),
        // registering again with a new monitor
        (S::Secondary, S::WaitStandby, A::Nothing),
    ]
};

/// The rows written as families.
const FAMILIES: &[Family] = {
    use KeeperAction as A;
    &[
        // alone in the group: whatever the node holds becomes a writable single
        Family {
            from: &PRIMARY,
            to: S::Single,
            action: A::BecomeSingle,
        },
        Family {
            from: &STANDBY,
            to: S::Single,
            action: A::BecomeSingle,
        },
        Family {
            from: &FENCED,
            to: S::Single,
            action: A::BecomeSingle,
        },
        Family {
            from: &[S::Maintenance, S::PrepareMaintenance],
            to: S::Single,
            action: A::BecomeSingle,
        },
        // the primary stops taking writes
        Family {
            from: &PRIMARY,
            to: S::Draining,
            action: A::StopPostgres,
        },
        // elections: every node holding data reports its LSN
        Family {
            from: &STANDBY,
            to: S::ReportLsn,
            action: A::ReportLsn,
        },
        Family {
            from: &FENCED,
            to: S::ReportLsn,
            action: A::ReportLsn,
        },
        Family {
            from: &PRIMARY,
            to: S::ReportLsn,
            action: A::ReportLsn,
        },
        Family {
            from: &[S::Maintenance, S::PrepareMaintenance],
            to: S::ReportLsn,
            action: A::ReportLsn,
        },
    ]
};

/// Room for every possible pair.
const CAPACITY: usize = ReplicationState::ALL.len() * ReplicationState::ALL.len();

/// Builds the whole table at compile time. Rows written one by one win over families, and the
/// first family listing a pair wins over later ones. Every state may be fenced (`demoted`,
/// `demote_timeout`) or dropped: the monitor fences whichever node it takes for the old
/// primary, and removes any node.
const fn build() -> ([Transition; CAPACITY], usize) {
    let filler = Transition {
        current: S::Unknown,
        assigned: S::Unknown,
        action: KeeperAction::Nothing,
    };
    let mut out = [filler; CAPACITY];
    let mut n = 0;
    let mut i = 0;
    while i < SINGLE_ROWS.len() {
        let (current, assigned, action) = SINGLE_ROWS[i];
        n = push(&mut out, n, current, assigned, action);
        i += 1;
    }
    i = 0;
    while i < FAMILIES.len() {
        let family = &FAMILIES[i];
        let mut j = 0;
        while j < family.from.len() {
            n = push(&mut out, n, family.from[j], family.to, family.action);
            j += 1;
        }
        i += 1;
    }
    i = 0;
    while i < ReplicationState::ALL.len() {
        let state = ReplicationState::ALL[i];
        if !matches!(state, S::Unknown | S::Dropped) {
            n = push(
                &mut out,
                n,
                state,
                S::DemoteTimeout,
                KeeperAction::StopPostgres,
            );
            n = push(&mut out, n, state, S::Demoted, KeeperAction::StopPostgres);
            n = push(&mut out, n, state, S::Dropped, KeeperAction::Drop);
        }
        i += 1;
    }
    (out, n)
}

/// Appends a row unless its pair is already present, or is not a change of state (except the
/// few self-pairs written explicitly); returns the new length.
const fn push(
    out: &mut [Transition; CAPACITY],
    len: usize,
    current: S,
    assigned: S,
    action: KeeperAction,
) -> usize {
    let mut i = 0;
    while i < len {
        if out[i].current as u8 == current as u8 && out[i].assigned as u8 == assigned as u8 {
            return len;
        }
        i += 1;
    }
    out[len] = Transition {
        current,
        assigned,
        action,
    };
    len + 1
}

const BUILT: ([Transition; CAPACITY], usize) = build();

/// Every transition the keeper knows, one row per (current, assigned) pair.
pub const KEEPER_TRANSITIONS: &[Transition] = BUILT.0.split_at(BUILT.1).0;

/// The action for a pair, or `None` when the keeper does not know how to make that move.
pub fn transition(current: ReplicationState, assigned: ReplicationState) -> Option<KeeperAction> {
    KEEPER_TRANSITIONS
        .iter()
        .find(|t| t.current == current && t.assigned == assigned)
        .map(|t| t.action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edges::MONITOR_EDGES;

    #[test]
    fn every_pair_the_monitor_can_produce_has_a_transition() {
        let missing: Vec<String> = MONITOR_EDGES
            .iter()
            .filter(|(from, to)| transition(*from, *to).is_none())
            .map(|(from, to)| format!("{from} -> {to}"))
            .collect();
        assert!(missing.is_empty(), "no keeper transition for {missing:?}");
    }

    #[test]
    fn rows_are_distinct_and_never_unknown() {
        for (i, row) in KEEPER_TRANSITIONS.iter().enumerate() {
            assert_ne!(row.current, S::Unknown);
            assert_ne!(row.assigned, S::Unknown);
            assert!(
                !KEEPER_TRANSITIONS[i + 1..]
                    .iter()
                    .any(|r| r.current == row.current && r.assigned == row.assigned),
                "duplicate {row:?}"
            );
        }
    }

    #[test]
    fn fencing_and_dropping_always_stop_postgres() {
        for state in ReplicationState::ALL {
            if matches!(state, S::Unknown | S::Dropped) {
                continue;
            }
            if state != S::Demoted {
                assert_eq!(
                    transition(state, S::Demoted),
                    Some(KeeperAction::StopPostgres),
                    "{state}"
                );
            }
            assert_eq!(transition(state, S::Dropped), Some(KeeperAction::Drop));
        }
    }

    #[test]
    fn the_failover_path_runs_the_expected_actions() {
        use KeeperAction as A;
        let path = [
            (S::Primary, S::Draining, A::StopPostgres),
            (S::Secondary, S::PreparePromotion, A::Nothing),
            (S::PreparePromotion, S::StopReplication, A::StopReplication),
            (S::Draining, S::DemoteTimeout, A::StopPostgres),
            (S::StopReplication, S::WaitPrimary, A::OpenForWrites),
            (S::DemoteTimeout, S::Demoted, A::StopPostgres),
            (S::Demoted, S::Catchingup, A::RewindOrInit),
            (S::Catchingup, S::Secondary, A::PrepareSecondary),
            (S::WaitPrimary, S::Primary, A::EnableSyncRep),
        ];
        for (from, to, action) in path {
            assert_eq!(transition(from, to), Some(action), "{from} -> {to}");
        }
    }

    #[test]
    fn a_standby_left_alone_becomes_a_writable_single() {
        for from in STANDBY {
            assert_eq!(
                transition(from, S::Single),
                Some(KeeperAction::BecomeSingle)
            );
        }
        assert_eq!(
            transition(S::Init, S::Single),
            Some(KeeperAction::InitPrimary)
        );
    }

    #[test]
    fn states_that_fence_expect_postgres_stopped() {
        for state in FENCED {
            assert_eq!(expected_postgres(state), PostgresExpectation::Stopped);
        }
        for state in PRIMARY {
            assert_eq!(
                expected_postgres(state),
                PostgresExpectation::RunningPrimary
            );
        }
        assert_eq!(
            expected_postgres(S::Maintenance),
            PostgresExpectation::LeftAlone
        );
    }

    #[test]
    fn the_documentation_lists_every_action() {
        let doc = include_str!("../../docs/state-machine.md");
        for row in KEEPER_TRANSITIONS {
            let name = row.action.name();
            assert!(
                doc.contains(&format!("| `{name}` |")),
                "docs/state-machine.md has no row for the keeper action {name}"
            );
        }
    }

    #[test]
    fn a_self_fenced_node_resumes_whichever_writable_goal_the_monitor_still_holds() {
        for goal in PRIMARY {
            let action = transition(S::DemoteTimeout, goal);
            assert!(
                action.is_some(),
                "demote_timeout -> {goal}: no transition after a self-fence"
            );
        }
        assert_eq!(
            transition(S::DemoteTimeout, S::WaitPrimary),
            Some(KeeperAction::StartPostgres)
        );
    }

    #[test]
    fn unknown_pairs_have_no_transition() {
        assert_eq!(transition(S::WaitStandby, S::Primary), None);
        assert_eq!(transition(S::Init, S::Secondary), None);
    }
}
