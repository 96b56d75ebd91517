//! What the keeper does at a turn once it has reported to the monitor (or failed to): the
//! transition toward the assigned state, or else keeping Postgres as the current state wants;
//! when to list the other nodes again and which replication slots to keep for them; how long
//! to wait before the next turn; when to write the state file; whether to tell the monitor on
//! the way out. Pure, like the rest of [`super`].

use super::Memory;
use super::{FAILOVER_HEARTBEAT_INTERVAL_MS, HEARTBEAT_INTERVAL_MS};
use crate::ReplicationState as S;
use crate::keeper::{KeeperAction, PostgresExpectation, expected_postgres, transition};

/// How often the other nodes (for HBA rules and replication slots) are listed again when no
/// notification asks for it earlier (ms).
pub const OTHERS_REFRESH_MS: u64 = 5_000;

/// What to do after reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run `action` to reach the assigned state; start Postgres first when asked.
    Transition {
        /// The step of the transition table.
        action: KeeperAction,
        /// Postgres is down and the action needs it running.
        start_postgres_first: bool,
    },
    /// The assigned state cannot be reached from the current one: an error, retried at the
    /// next turn.
    NoWay,
    /// The node is in the assigned state: keep Postgres as the state wants.
    Stay,
}

/// What to do after reporting, in `current` with `assigned` from the monitor.
pub fn next(current: S, assigned: S, pg_running: bool) -> Next {
    if current == assigned {
        return Next::Stay;
    }
    match transition(current, assigned) {
        Some(action) => Next::Transition {
            action,
            start_postgres_first: start_postgres_first(action, pg_running),
        },
        None => Next::NoWay,
    }
}

/// What to do to Postgres to keep it as the current state wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostgresStep {
    /// It is as it should be.
    AsIs,
    /// It is down and must run: start it.
    Start,
    /// It is down, shut down cleanly by someone else: leave it down for the grace period
    /// (`just_found`: first turn that sees it so, to say it once).
    LeaveDown {
        /// The first turn that found it down.
        just_found: bool,
    },
    /// It runs and must not: stop it.
    Stop,
}

/// Keeping Postgres as the current state wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    /// What to do to Postgres.
    pub postgres: PostgresStep,
    /// Then check that the standby follows the group's current primary.
    pub follow_primary: bool,
}

impl Memory {
    /// How to keep Postgres as `current` wants, found `running` or not at `now_ms`
    /// (`stopped_cleanly_by_someone_else`: down after a clean shutdown the keeper did not
    /// ask for).
    pub fn keep_postgres(
        &mut self,
        now_ms: u64,
        current: S,
        running: bool,
        stopped_cleanly_by_someone_else: bool,
    ) -> Keep {
        let postgres = match expected_postgres(current) {
            PostgresExpectation::RunningPrimary | PostgresExpectation::RunningStandby => {
                if running {
                    self.postgres_running();
                    PostgresStep::AsIs
                } else {
                    let just_found = self.first_seen_down();
                    if self.restart_due(now_ms, stopped_cleanly_by_someone_else) {
                        PostgresStep::Start
                    } else {
                        PostgresStep::LeaveDown { just_found }
                    }
                }
            }
            PostgresExpectation::Stopped if running => PostgresStep::Stop,
            PostgresExpectation::Stopped | PostgresExpectation::LeftAlone => PostgresStep::AsIs,
        };
        Keep {
            postgres,
            follow_primary: matches!(current, S::Catchingup | S::Secondary)
                && !matches!(postgres, PostgresStep::LeaveDown { .. }),
        }
    }

    /// Whether to list the other nodes again now.
    pub fn others_due(&self, now_ms: u64) -> bool {
        self.others_listed_ms
            .is_none_or(|at| now_ms.saturating_sub(at) > OTHERS_REFRESH_MS)
    }

    /// The other nodes were listed at `now_ms`.
    pub fn others_listed(&mut self, now_ms: u64) {
        self.others_listed_ms = Some(now_ms);
    }

    /// The monitor announced a change: list the other nodes at the next turn.
    pub fn others_changed(&mut self) {
        self.others_listed_ms = None;
    }
}

/// Which replication slots a node keeps for the other nodes of its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slots {
    /// None are touched.
    Untouched,
    /// One per other node, for its streaming (a primary).
    ForStandbys,
    /// One per other node, moved forward as it reports (as 2.0 does on a standby: the node
    /// holds the WAL the others need if it is promoted).
    ForPeersAdvanced,
}

/// The slots a node in `current` keeps.
pub fn slots(current: S) -> Slots {
    if expected_postgres(current) == PostgresExpectation::RunningPrimary {
        Slots::ForStandbys
    } else if matches!(current, S::Secondary | S::ReportLsn) {
        Slots::ForPeersAdvanced
    } else {
        Slots::Untouched
    }
}

/// Whether the keeper tells the monitor that Postgres stopped when the service stops: a
/// standby does, so that a primary waiting on it for synchronous replication is released now
/// rather than after the health checks notice; a primary does not (a keeper restart must not
/// cause a failover).
pub fn tells_monitor_when_stopping(current: S) -> bool {
    !current.can_take_writes()
}

/// How long to wait before the next turn when nothing wakes the keeper earlier (ms): a fifth
/// of the usual while a standby has lost its primary (`receiving` is false) or a failover is
/// under way.
pub fn wake_after_ms(current: S, receiving: bool) -> u64 {
    let lost_primary = matches!(current, S::Secondary | S::Catchingup) && !receiving;
    let in_failover = matches!(
        current,
        S::ReportLsn | S::PreparePromotion | S::StopReplication | S::FastForward | S::JoinSecondary
    );
    if lost_primary || in_failover {
        FAILOVER_HEARTBEAT_INTERVAL_MS
    } else {
        HEARTBEAT_INTERVAL_MS
    }
}

/// Whether `action` needs a running Postgres that is not: replication settings are applied to
/// a running Postgres, so one that crashed meanwhile is started first (the transition would
/// otherwise fail forever).
fn start_postgres_first(action: KeeperAction, pg_running: bool) -> bool {
    matches!(
        action,
        KeeperAction::EnableSyncRep | KeeperAction::DisableSyncRep
    ) && !pg_running
}

/// What of the keeper's state file matters for deciding when to write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Persisted {
    /// The node's state.
    pub current: S,
    /// The state the monitor assigned.
    pub assigned: S,
    /// The lease the monitor grants.
    pub lease_ms: Option<u64>,
    /// Whether the group has other nodes.
    pub has_peers: bool,
    /// The last successful heartbeat (Unix seconds).
    pub last_monitor_contact_s: u64,
}

/// Whether to write the state file at the end of an idle turn: something a restarted keeper
/// needs changed, or the last contact written is 10 s old or more (the file is not rewritten
/// every second for it).
pub fn must_save(saved: &Persisted, now: &Persisted, now_s: u64) -> bool {
    saved != now
        && (saved.current != now.current
            || saved.assigned != now.assigned
            || saved.lease_ms != now.lease_ms
            || saved.has_peers != now.has_peers
            || now_s.saturating_sub(saved.last_monitor_contact_s) >= 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failovers_and_lost_primaries_are_followed_five_times_as_often() {
        assert_eq!(wake_after_ms(S::Primary, false), HEARTBEAT_INTERVAL_MS);
        assert_eq!(wake_after_ms(S::Secondary, true), HEARTBEAT_INTERVAL_MS);
        assert_eq!(
            wake_after_ms(S::Secondary, false),
            FAILOVER_HEARTBEAT_INTERVAL_MS
        );
        assert_eq!(
            wake_after_ms(S::Catchingup, false),
            FAILOVER_HEARTBEAT_INTERVAL_MS
        );
        for s in [
            S::ReportLsn,
            S::PreparePromotion,
            S::StopReplication,
            S::FastForward,
            S::JoinSecondary,
        ] {
            assert_eq!(
                wake_after_ms(s, true),
                FAILOVER_HEARTBEAT_INTERVAL_MS,
                "{s}"
            );
        }
    }

    #[test]
    fn replication_settings_need_postgres_running_first() {
        assert!(start_postgres_first(KeeperAction::EnableSyncRep, false));
        assert!(start_postgres_first(KeeperAction::DisableSyncRep, false));
        assert!(!start_postgres_first(KeeperAction::EnableSyncRep, true));
        assert!(!start_postgres_first(KeeperAction::PromoteAndOpen, false));
    }

    #[test]
    fn the_state_file_is_written_when_a_restart_would_need_it() {
        let saved = Persisted {
            current: S::Primary,
            assigned: S::Primary,
            lease_ms: Some(3_000),
            has_peers: true,
            last_monitor_contact_s: 1_000,
        };
        assert!(!must_save(&saved, &saved, 1_005));
        let mut now = saved;
        now.last_monitor_contact_s = 1_005;
        assert!(
            !must_save(&saved, &now, 1_005),
            "contact alone: not every second"
        );
        assert!(must_save(&saved, &now, 1_010), "contact 10 s old");
        for change in [
            Persisted {
                assigned: S::Draining,
                ..saved
            },
            Persisted {
                current: S::Draining,
                ..saved
            },
            Persisted {
                lease_ms: None,
                ..saved
            },
            Persisted {
                has_peers: false,
                ..saved
            },
        ] {
            assert!(must_save(&saved, &change, 1_001), "{change:?}");
        }
    }

    #[test]
    fn a_node_in_its_assigned_state_stays_else_runs_the_table() {
        assert_eq!(next(S::Primary, S::Primary, true), Next::Stay);
        assert_eq!(
            next(S::Primary, S::Draining, true),
            Next::Transition {
                action: transition(S::Primary, S::Draining).expect("in the table"),
                start_postgres_first: false
            }
        );
        assert_eq!(
            next(S::Primary, S::WaitPrimary, false),
            Next::Transition {
                action: KeeperAction::DisableSyncRep,
                start_postgres_first: true
            }
        );
        assert_eq!(next(S::Init, S::Primary, true), Next::NoWay);
    }

    #[test]
    fn postgres_is_started_stopped_or_left_as_the_state_wants() {
        let mut m = Memory::default();
        let run = |m: &mut Memory, now, s, running, clean| m.keep_postgres(now, s, running, clean);
        assert_eq!(
            run(&mut m, 0, S::Primary, true, false),
            Keep {
                postgres: PostgresStep::AsIs,
                follow_primary: false
            }
        );
        assert_eq!(
            run(&mut m, 0, S::Secondary, true, false),
            Keep {
                postgres: PostgresStep::AsIs,
                follow_primary: true
            }
        );
        assert_eq!(
            run(&mut m, 0, S::Catchingup, false, false),
            Keep {
                postgres: PostgresStep::Start,
                follow_primary: true
            }
        );
        m.postgres_running();
        // stopped by an operator: left down 5 s, said once, then started
        assert_eq!(
            run(&mut m, 1_000, S::Secondary, false, true),
            Keep {
                postgres: PostgresStep::LeaveDown { just_found: true },
                follow_primary: false
            }
        );
        assert_eq!(
            run(&mut m, 2_000, S::Secondary, false, true).postgres,
            PostgresStep::LeaveDown { just_found: false }
        );
        assert_eq!(
            run(&mut m, 6_000, S::Secondary, false, true).postgres,
            PostgresStep::Start
        );
        // states that want it stopped, or leave it alone
        assert_eq!(
            run(&mut m, 0, S::DemoteTimeout, true, false).postgres,
            PostgresStep::Stop
        );
        assert_eq!(
            run(&mut m, 0, S::Demoted, false, false).postgres,
            PostgresStep::AsIs
        );
        assert_eq!(
            run(&mut m, 0, S::Maintenance, true, false).postgres,
            PostgresStep::AsIs
        );
        assert_eq!(
            run(&mut m, 0, S::Maintenance, false, false).postgres,
            PostgresStep::AsIs
        );
    }

    #[test]
    fn every_state_that_wants_postgres_running_restarts_it_after_a_crash() {
        for state in S::ALL {
            let mut m = Memory::default();
            let keep = m.keep_postgres(0, state, false, false);
            let wants_it = matches!(
                expected_postgres(state),
                PostgresExpectation::RunningPrimary | PostgresExpectation::RunningStandby
            );
            assert_eq!(keep.postgres == PostgresStep::Start, wants_it, "{state}");
        }
    }

    #[test]
    fn the_other_nodes_are_listed_every_5_s_or_when_the_monitor_says() {
        let mut m = Memory::default();
        assert!(m.others_due(0));
        m.others_listed(1_000);
        assert!(!m.others_due(6_000));
        assert!(m.others_due(6_001));
        m.others_changed();
        assert!(m.others_due(1_001));
    }

    #[test]
    fn primaries_keep_slots_for_standbys_standbys_for_their_peers() {
        assert_eq!(slots(S::Primary), Slots::ForStandbys);
        assert_eq!(slots(S::WaitPrimary), Slots::ForStandbys);
        assert_eq!(slots(S::Secondary), Slots::ForPeersAdvanced);
        assert_eq!(slots(S::ReportLsn), Slots::ForPeersAdvanced);
        assert_eq!(slots(S::Catchingup), Slots::Untouched);
        assert_eq!(slots(S::Demoted), Slots::Untouched);
        assert!(tells_monitor_when_stopping(S::Secondary));
        assert!(!tells_monitor_when_stopping(S::Primary));
    }

    #[test]
    fn a_fence_is_said_once_and_lifted_by_an_answer() {
        let mut m = Memory::default();
        assert!(m.fence(S::Primary));
        assert!(m.stop_at_once());
        assert!(!m.fence(S::DemoteTimeout));
        let seen = super::super::Seen {
            now_ms: 0,
            current: S::Primary,
            has_peers: true,
            sync_standbys_streaming: 0,
        };
        m.answered(&seen, 0, S::DemoteTimeout);
        assert!(!m.stop_at_once());
    }
}
