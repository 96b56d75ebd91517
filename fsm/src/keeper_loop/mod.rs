//! The keeper's own decisions at each turn of its loop, apart from the monitor's: what to
//! report as `pg_is_running`, when to fence (the lease rule and 2.0's partition rule), when a
//! heartbeat renews the lease, when to start again a Postgres that stopped, whether a
//! transition needs Postgres started first, how long to wait before the next turn, and when to
//! write the state file. Pure, on one clock: milliseconds since the keeper started
//! (monotonic). The keeper's service observes, calls these, and carries out their answers.

mod plan;

pub use plan::{
    Keep, Next, OTHERS_REFRESH_MS, Persisted, PostgresStep, Slots, must_save, next, slots,
    tells_monitor_when_stopping, wake_after_ms,
};

use crate::ReplicationState as S;
use crate::lease::{KeeperLeaseView, keeper_deadline, keeper_must_fence};

/// How long the keeper waits between two turns when nothing happens (ms).
pub const HEARTBEAT_INTERVAL_MS: u64 = 1_000;

/// The interval while a standby has lost its primary or takes part in a failover: the monitor
/// decides on leases running out, which no notification announces (ms).
pub const FAILOVER_HEARTBEAT_INTERVAL_MS: u64 = 200;

/// How long one heartbeat may take (ms). A monitor that does not answer within it counts as
/// unreachable for this turn: a connection to a host cut off the network would otherwise hang
/// until TCP gives up, and delay the primary's decision to fence itself.
pub const HEARTBEAT_TIMEOUT_MS: u64 = 2_000;

/// How long the keeper leaves down a Postgres that someone else shut down cleanly (an
/// operator's `pg_ctl stop`) before it starts it again (ms): long enough for `pg_ctl stop`,
/// which checks every 100 ms, to see it stopped and return, and for the next command of a
/// script to run; short enough that writes are back well before a failover (a primary keeps
/// reporting Postgres as running meanwhile, within the restart budget). A crash (or `pg_ctl
/// stop -m immediate`) leaves the control file "in production": restarted at once.
pub const OPERATOR_STOP_GRACE_MS: u64 = 5_000;

/// The keeper's settings these decisions use (from its configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// 2.0's `timeout.network_partition_timeout`, in ms.
    pub network_partition_timeout_ms: u64,
    /// 2.0's `timeout.postgresql_restart_failure_max_retries`.
    pub restart_max_retries: u64,
    /// 2.0's `timeout.postgresql_restart_failure_timeout`, in ms.
    pub restart_timeout_ms: u64,
}

/// Why a writable node stops taking writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceReason {
    /// Its lease from the monitor ran out and no synchronous standby streams from it.
    LeaseRanOut,
    /// Neither the monitor nor a standby reached for `network_partition_timeout` (2.0's rule,
    /// with a monitor that grants no leases, or before the first lease).
    Partitioned,
}

impl FenceReason {
    /// For the log.
    pub fn describe(self) -> &'static str {
        match self {
            FenceReason::LeaseRanOut => {
                "the lease from the monitor ran out and no synchronous standby streams"
            }
            FenceReason::Partitioned => "neither the monitor nor any standby reached",
        }
    }
}

/// What the keeper saw of its node at this turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// Now (ms since the keeper started).
    pub now_ms: u64,
    /// The state the node is in.
    pub current: S,
    /// Whether the group has other nodes (as last listed, or as saved before a restart).
    pub has_peers: bool,
    /// Standbys streaming from this node that count for synchronous replication.
    pub sync_standbys_streaming: i64,
}

/// What the keeper remembers between turns for its own decisions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Memory {
    /// The lease the monitor grants, in ms (`None`: it grants none).
    pub lease_ms: Option<u64>,
    /// When the lease runs out: send time of the last renewing heartbeat + lease.
    pub lease_deadline_ms: Option<u64>,
    /// Whether a heartbeat was attempted since the keeper started.
    pub tried_heartbeat: bool,
    /// The last successful heartbeat.
    pub last_monitor_contact_ms: Option<u64>,
    /// The last turn that saw a standby streaming from this node.
    pub last_secondary_contact_ms: Option<u64>,
    /// The first of the current run of failed Postgres starts (or finding it down).
    pub restart_first_failure_ms: Option<u64>,
    /// How many in that run.
    pub restart_failures: u64,
    /// When Postgres was first found down while it should run (`None` while it runs).
    pub down_since_ms: Option<u64>,
    /// Standbys that count for synchronous replication streaming from this node at the last
    /// observation (0 when Postgres was down).
    pub sync_standbys_streaming: i64,
    /// Whether the node is fencing itself (its Postgres is then stopped at once).
    pub fencing: bool,
    /// When the other nodes were last listed (`None`: list them at the next turn).
    pub others_listed_ms: Option<u64>,
}

impl Memory {
    /// The memory of a keeper starting now. A lease saved before a restart counts as already
    /// run out: the keeper holds none until a heartbeat succeeds, since the monitor may have
    /// promoted another node meanwhile.
    pub fn starting(inherited_lease_ms: Option<u64>) -> Memory {
        Memory {
            lease_ms: inherited_lease_ms,
            lease_deadline_ms: inherited_lease_ms.map(|_| 0),
            ..Memory::default()
        }
    }

    /// A standby was seen streaming from this node.
    pub fn saw_standby(&mut self, now_ms: u64) {
        self.last_secondary_contact_ms = Some(now_ms);
    }

    /// The node was observed at `now_ms` with so many standbys streaming from it, of which
    /// so many count for synchronous replication. Returns whether a standby was seen.
    pub fn observed(&mut self, now_ms: u64, streaming: i64, sync_streaming: i64) -> bool {
        self.sync_standbys_streaming = sync_streaming;
        let seen = streaming > 0;
        if seen {
            self.saw_standby(now_ms);
        }
        seen
    }

    /// Whether to report Postgres as running: when it runs, and, for a primary whose Postgres
    /// is being restarted, while still within the restart budget (2.0's rule: the monitor
    /// fails over only once restarting failed for good).
    pub fn report_pg_running(&self, seen: &Seen, running: bool, limits: &Limits) -> bool {
        running || (primary_runs_in(seen.current) && self.still_trying(seen.now_ms, limits))
    }

    /// Whether the restart budget is not spent: at most `restart_max_retries` failures, for
    /// less than `restart_timeout_ms`.
    fn still_trying(&self, now_ms: u64, limits: &Limits) -> bool {
        match self.restart_first_failure_ms {
            None => true,
            Some(first) => {
                self.restart_failures <= limits.restart_max_retries
                    && now_ms.saturating_sub(first) < limits.restart_timeout_ms
            }
        }
    }

    /// Whether this writable node must fence now because its lease ran out
    /// ([`keeper_must_fence`]).
    pub fn lease_ran_out(&self, seen: &Seen) -> bool {
        if !seen.current.can_take_writes() || self.lease_ms.is_none() {
            return false;
        }
        keeper_must_fence(&KeeperLeaseView {
            now_ms: seen.now_ms,
            deadline_ms: self.lease_deadline_ms,
            has_other_nodes: seen.has_peers,
            sync_standbys_streaming: seen.sync_standbys_streaming,
        })
    }

    /// Before a heartbeat: fence now (a lease inherited from before a restart waits for the
    /// first attempt), or send it with this timeout (never past the lease's end, so that a
    /// heartbeat in flight does not delay the fence).
    pub fn before_heartbeat(&self, seen: &Seen) -> Result<u64, FenceReason> {
        if self.tried_heartbeat && self.lease_ran_out(seen) {
            return Err(FenceReason::LeaseRanOut);
        }
        Ok(match self.pending_lease_deadline(seen) {
            Some(at) => HEARTBEAT_TIMEOUT_MS.min(at.saturating_sub(seen.now_ms)),
            None => HEARTBEAT_TIMEOUT_MS,
        })
    }

    /// A heartbeat sent at `sent_ms` was answered at `seen.now_ms` with `assigned`. The lease
    /// is renewed from the send time, and only by an answer that keeps the node as it is or
    /// makes it writable (an answer that demotes it is carried out instead).
    pub fn answered(&mut self, seen: &Seen, sent_ms: u64, assigned: S) {
        self.tried_heartbeat = true;
        self.fencing = false;
        self.last_monitor_contact_ms = Some(seen.now_ms);
        if let Some(lease) = self.lease_ms
            && (assigned == seen.current || assigned.can_take_writes())
        {
            self.lease_deadline_ms = Some(keeper_deadline(sent_ms, lease));
        }
    }

    /// A heartbeat failed (no answer, or an error): fence when the lease ran out, else by the
    /// partition rule.
    pub fn heartbeat_failed(&mut self, seen: &Seen, limits: &Limits) -> Option<FenceReason> {
        self.tried_heartbeat = true;
        if self.lease_ran_out(seen) {
            return Some(FenceReason::LeaseRanOut);
        }
        self.partitioned(seen, limits)
            .then_some(FenceReason::Partitioned)
    }

    /// 2.0's rule, for a writable node without a lease: neither the monitor nor a streaming
    /// standby reached for longer than `network_partition_timeout` (counted from the keeper's
    /// start at the latest, so that a fresh keeper does not fence at once).
    fn partitioned(&self, seen: &Seen, limits: &Limits) -> bool {
        if !seen.current.can_take_writes() || self.lease_deadline_ms.is_some() {
            return false;
        }
        let since = |t: Option<u64>| seen.now_ms.saturating_sub(t.unwrap_or(0));
        since(self.last_monitor_contact_ms) > limits.network_partition_timeout_ms
            && since(self.last_secondary_contact_ms) > limits.network_partition_timeout_ms
    }

    /// The lease deadline still ahead of a writable node that would have to fence at it: the
    /// loop wakes up then.
    pub fn pending_lease_deadline(&self, seen: &Seen) -> Option<u64> {
        let deadline = self.lease_deadline_ms?;
        (seen.current.can_take_writes()
            && self.lease_ms.is_some()
            && seen.has_peers
            && deadline > seen.now_ms)
            .then_some(deadline)
    }

    /// The node fences itself, its assigned state being `assigned`: it is then
    /// assigned `demote_timeout`. Returns whether this is news (to say it once).
    pub fn fence(&mut self, assigned: S) -> bool {
        let news = !(self.fencing && assigned == S::DemoteTimeout);
        self.fencing = true;
        news
    }

    /// Whether Postgres, when it must stop, stops at once: while fencing (a fast shutdown
    /// would wait for standbys it cannot reach to confirm the shutdown checkpoint, up to
    /// `wal_sender_timeout`).
    pub fn stop_at_once(&self) -> bool {
        self.fencing
    }

    /// Postgres runs (again).
    pub fn postgres_running(&mut self) {
        self.restart_first_failure_ms = None;
        self.restart_failures = 0;
        self.down_since_ms = None;
    }

    /// Postgres failed to start at `now_ms`.
    pub fn postgres_start_failed(&mut self, now_ms: u64) {
        self.restart_first_failure_ms.get_or_insert(now_ms);
        self.restart_failures += 1;
    }

    /// Postgres is down while the current state wants it running: whether to start it now. At
    /// once after a crash; after [`OPERATOR_STOP_GRACE_MS`] when someone else shut it down
    /// cleanly (`shut_down_cleanly_by_someone_else`).
    pub fn restart_due(&mut self, now_ms: u64, shut_down_cleanly_by_someone_else: bool) -> bool {
        let since = *self.down_since_ms.get_or_insert(now_ms);
        !shut_down_cleanly_by_someone_else || now_ms.saturating_sub(since) >= OPERATOR_STOP_GRACE_MS
    }

    /// Whether Postgres was just found down (the first turn of a run of turns without it).
    pub fn first_seen_down(&self) -> bool {
        self.down_since_ms.is_none()
    }
}

/// Whether Postgres runs as a primary in `state`.
fn primary_runs_in(state: S) -> bool {
    crate::keeper::expected_postgres(state) == crate::keeper::PostgresExpectation::RunningPrimary
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        network_partition_timeout_ms: 20_000,
        restart_max_retries: 3,
        restart_timeout_ms: 20_000,
    };

    fn seen(now_ms: u64, current: S) -> Seen {
        Seen {
            now_ms,
            current,
            has_peers: true,
            sync_standbys_streaming: 0,
        }
    }

    #[test]
    fn a_lease_renewed_by_an_answer_is_counted_from_the_send_time() {
        let mut m = Memory::starting(None);
        m.lease_ms = Some(3_000);
        m.answered(&seen(1_200, S::Primary), 1_000, S::Primary);
        assert_eq!(m.lease_deadline_ms, Some(4_000));
        assert!(!m.lease_ran_out(&seen(3_999, S::Primary)));
        assert!(m.lease_ran_out(&seen(4_000, S::Primary)));
        // a synchronous standby streaming, or no other node: no fence
        let mut s = seen(5_000, S::Primary);
        s.sync_standbys_streaming = 1;
        assert!(!m.lease_ran_out(&s));
        s.sync_standbys_streaming = 0;
        s.has_peers = false;
        assert!(!m.lease_ran_out(&s));
        // a standby holds no lease to lose
        assert!(!m.lease_ran_out(&seen(5_000, S::Secondary)));
    }

    #[test]
    fn an_answer_that_demotes_renews_nothing() {
        let mut m = Memory::starting(None);
        m.lease_ms = Some(3_000);
        m.answered(&seen(100, S::Primary), 0, S::Primary);
        m.answered(&seen(2_100, S::Primary), 2_000, S::Draining);
        assert_eq!(m.lease_deadline_ms, Some(3_000));
        // one that keeps it writable or makes it so does
        m.answered(&seen(2_600, S::Primary), 2_500, S::ApplySettings);
        assert_eq!(m.lease_deadline_ms, Some(5_500));
        m.answered(&seen(2_700, S::StopReplication), 2_600, S::WaitPrimary);
        assert_eq!(m.lease_deadline_ms, Some(5_600));
    }

    #[test]
    fn the_heartbeat_never_outlasts_the_lease() {
        let mut m = Memory::starting(None);
        m.lease_ms = Some(3_000);
        m.answered(&seen(10, S::Primary), 0, S::Primary);
        assert_eq!(m.before_heartbeat(&seen(500, S::Primary)), Ok(2_000));
        assert_eq!(m.before_heartbeat(&seen(2_200, S::Primary)), Ok(800));
        assert_eq!(
            m.before_heartbeat(&seen(3_000, S::Primary)),
            Err(FenceReason::LeaseRanOut)
        );
        assert_eq!(
            m.pending_lease_deadline(&seen(2_200, S::Primary)),
            Some(3_000)
        );
        assert_eq!(m.pending_lease_deadline(&seen(3_000, S::Primary)), None);
    }

    #[test]
    fn a_restarted_keeper_tries_one_heartbeat_before_fencing_on_an_inherited_lease() {
        let mut m = Memory::starting(Some(3_000));
        let s = seen(5, S::Primary);
        assert!(m.lease_ran_out(&s));
        assert_eq!(m.before_heartbeat(&s), Ok(HEARTBEAT_TIMEOUT_MS));
        assert_eq!(
            m.heartbeat_failed(&s, &LIMITS),
            Some(FenceReason::LeaseRanOut)
        );
        assert_eq!(m.before_heartbeat(&s), Err(FenceReason::LeaseRanOut));
        // an answer that keeps it writable gives it a lease again
        m.answered(&seen(60, S::Primary), 50, S::Primary);
        assert_eq!(m.before_heartbeat(&seen(100, S::Primary)), Ok(2_000));
    }

    #[test]
    fn without_a_lease_the_2_0_partition_rule_fences() {
        let mut m = Memory::starting(None);
        let t = LIMITS.network_partition_timeout_ms;
        // a fresh keeper counts from its start
        assert_eq!(m.heartbeat_failed(&seen(t, S::Primary), &LIMITS), None);
        assert_eq!(
            m.heartbeat_failed(&seen(t + 1, S::Primary), &LIMITS),
            Some(FenceReason::Partitioned)
        );
        // the monitor, or a standby, reached recently: no fence
        m.answered(&seen(90_000, S::Primary), 90_000, S::Primary);
        assert_eq!(
            m.heartbeat_failed(&seen(100_000, S::Primary), &LIMITS),
            None
        );
        m.saw_standby(105_000);
        assert_eq!(
            m.heartbeat_failed(&seen(115_000, S::Primary), &LIMITS),
            None
        );
        // exactly at the limit: not yet
        assert_eq!(
            m.heartbeat_failed(&seen(110_000, S::Primary), &LIMITS),
            None
        );
        assert_eq!(
            m.heartbeat_failed(&seen(125_001, S::Primary), &LIMITS),
            Some(FenceReason::Partitioned)
        );
        // a standby never fences
        assert_eq!(
            m.heartbeat_failed(&seen(500_000, S::Secondary), &LIMITS),
            None
        );
        // nor does a node holding a lease (the lease rule applies)
        m.lease_ms = Some(3_000);
        m.answered(&seen(200_000, S::Primary), 200_000, S::Primary);
        let mut s = seen(202_000, S::Primary);
        s.sync_standbys_streaming = 0;
        assert_eq!(m.heartbeat_failed(&s, &LIMITS), None);
    }

    #[test]
    fn restart_failures_are_hidden_within_the_budget_only() {
        let mut m = Memory::starting(None);
        let s = seen(0, S::Primary);
        assert!(m.report_pg_running(&s, false, &LIMITS));
        for _ in 0..3 {
            m.postgres_start_failed(0);
        }
        assert!(m.report_pg_running(&seen(5_000, S::Primary), false, &LIMITS));
        assert!(
            !m.report_pg_running(&seen(21_000, S::Primary), false, &LIMITS),
            "timed out"
        );
        m.postgres_start_failed(0);
        assert!(!m.report_pg_running(&s, false, &LIMITS), "too many retries");
        assert!(m.report_pg_running(&s, true, &LIMITS), "it runs");
        m.postgres_running();
        assert!(m.report_pg_running(&s, false, &LIMITS));
        // a standby reports what is
        assert!(!m.report_pg_running(&seen(0, S::Secondary), false, &LIMITS));
    }

    #[test]
    fn a_postgres_stopped_by_an_operator_is_left_down_for_the_grace_period() {
        let mut m = Memory::starting(None);
        assert!(m.first_seen_down());
        assert!(m.restart_due(1_000, false), "a crash is restarted at once");
        assert!(!m.first_seen_down());
        m.postgres_running();
        assert!(!m.restart_due(1_000, true));
        assert!(!m.restart_due(5_900, true));
        assert!(m.restart_due(6_000, true));
        m.postgres_running();
        assert!(m.first_seen_down());
    }
}
