//! The keeper's loop on fakes: a clock moved by hand, a Postgres that runs or not, a monitor
//! that answers or not. Each test is a scenario the loop must survive, run turn by turn in
//! milliseconds.

use fsm::ReplicationState as S;
use fsm::keeper::{KeeperAction, PostgresExpectation, expected_postgres, transition};
use fsm::keeper_loop::{Limits, Memory, Slots};

use super::{KeeperIo, Observed, Step, step};
use crate::exit::{CliError, CliResult, Exit};
use crate::monitor::MonitorError;
use crate::state::KeeperState;

/// 2.0's defaults.
const LIMITS: Limits = Limits {
    network_partition_timeout_ms: 20_000,
    restart_max_retries: 3,
    restart_timeout_ms: 20_000,
};

/// The Unix time of the fake clock's zero.
const UNIX_BASE: u64 = 1_800_000_000;

/// A node whose clock, Postgres and monitor the test drives.
struct FakeNode {
    state: KeeperState,
    saved: KeeperState,
    saves: usize,
    memory: Memory,
    clock_ms: u64,
    /// Postgres runs.
    pg_running: bool,
    /// Starting Postgres works.
    pg_starts: bool,
    /// Postgres is down after a clean shutdown by someone else.
    pg_stopped_by_operator: bool,
    streaming: i64,
    sync_streaming: i64,
    /// The monitor answers.
    monitor_up: bool,
    /// What it assigns (`None`: the state it assigned last).
    assign: Option<S>,
    /// `pg_is_running` of every report that reached it.
    reports: Vec<bool>,
    /// What the loop did, in order.
    did: Vec<String>,
}

impl FakeNode {
    /// A node in `state`, assigned that state, in a group with other nodes, Postgres as the
    /// state wants it, the monitor up and granting no lease.
    fn new(state: S) -> FakeNode {
        let mut keeper_state = KeeperState::registered(1, 0, state);
        keeper_state.current_role = state;
        keeper_state.has_peers = true;
        keeper_state.last_monitor_contact = UNIX_BASE;
        FakeNode {
            saved: keeper_state.clone(),
            state: keeper_state,
            saves: 0,
            memory: Memory::starting(None),
            clock_ms: 0,
            pg_running: matches!(
                expected_postgres(state),
                PostgresExpectation::RunningPrimary | PostgresExpectation::RunningStandby
            ),
            pg_starts: true,
            pg_stopped_by_operator: false,
            streaming: 0,
            sync_streaming: 0,
            monitor_up: true,
            assign: None,
            reports: Vec::new(),
            did: Vec::new(),
        }
    }

    /// The same, holding leases of `lease_ms` from the monitor.
    fn with_lease(state: S, lease_ms: u64) -> FakeNode {
        let mut node = FakeNode::new(state);
        node.memory.lease_ms = Some(lease_ms);
        node
    }

    /// One turn at `at_ms`.
    async fn turn_at(&mut self, at_ms: u64) -> CliResult<Step> {
        self.clock_ms = at_ms;
        step(self).await
    }

    /// Turns every second from `from_ms` to `to_ms` included.
    async fn turns(&mut self, from_ms: u64, to_ms: u64) {
        for at in (from_ms..=to_ms).step_by(1_000) {
            let _ = self.turn_at(at).await;
        }
    }

    fn did(&self, what: &str) -> bool {
        self.did.iter().any(|d| d == what)
    }

    fn fenced(&self) -> bool {
        self.state.assigned_role == S::DemoteTimeout
    }
}

impl KeeperIo for FakeNode {
    fn state(&mut self) -> &mut KeeperState {
        &mut self.state
    }

    fn memory(&mut self) -> &mut Memory {
        &mut self.memory
    }

    fn limits(&self) -> Limits {
        LIMITS
    }

    fn now_ms(&self) -> u64 {
        self.clock_ms
    }

    fn unix_now(&self) -> u64 {
        UNIX_BASE + self.clock_ms / 1_000
    }

    async fn observe(&mut self) -> Observed {
        Observed {
            running: self.pg_running,
            streaming_standbys: if self.pg_running { self.streaming } else { 0 },
            sync_standbys_streaming: if self.pg_running {
                self.sync_streaming
            } else {
                0
            },
        }
    }

    fn postgres_running(&mut self) -> bool {
        self.pg_running
    }

    async fn stopped_cleanly_by_someone_else(&mut self) -> bool {
        self.pg_stopped_by_operator
    }

    async fn start_postgres(&mut self) -> CliResult<()> {
        self.did.push("start".to_string());
        if self.pg_starts {
            self.pg_running = true;
            self.pg_stopped_by_operator = false;
            Ok(())
        } else {
            Err(CliError::new(Exit::Pgctl, "could not start"))
        }
    }

    async fn stop_postgres(&mut self) -> CliResult<()> {
        self.did.push("stop".to_string());
        self.pg_running = false;
        Ok(())
    }

    async fn run_action(&mut self, action: KeeperAction) -> CliResult<()> {
        let at_once = if self.memory.stop_at_once() {
            " at once"
        } else {
            ""
        };
        self.did.push(format!("{}{at_once}", action.name()));
        match action {
            KeeperAction::StopPostgres | KeeperAction::Drop | KeeperAction::CheckpointAndStop => {
                self.pg_running = false;
            }
            KeeperAction::Nothing => {}
            _ => self.pg_running = true,
        }
        Ok(())
    }

    async fn follow_if_primary_changed(&mut self) -> CliResult<()> {
        self.did.push("follow".to_string());
        Ok(())
    }

    async fn report(&mut self, pg_is_running: bool, timeout_ms: u64) -> Result<S, MonitorError> {
        assert!(timeout_ms <= fsm::keeper_loop::HEARTBEAT_TIMEOUT_MS);
        if !self.monitor_up {
            return Err(MonitorError::Lost("cut off".to_string()));
        }
        self.reports.push(pg_is_running);
        Ok(self.assign.unwrap_or(self.state.assigned_role))
    }

    async fn refresh_others(&mut self, slots: Slots) -> CliResult<()> {
        self.did.push(format!("others {slots:?}"));
        if !self.monitor_up {
            return Err(CliError::new(Exit::Monitor, "cut off"));
        }
        let now_ms = self.clock_ms;
        self.memory.others_listed(now_ms);
        Ok(())
    }

    fn saved_state(&self) -> &KeeperState {
        &self.saved
    }

    fn save_state(&mut self) -> CliResult<()> {
        self.saves += 1;
        self.saved = self.state.clone();
        Ok(())
    }
}

#[tokio::test]
async fn a_primary_cut_off_from_the_monitor_fences_when_its_lease_runs_out() {
    let mut node = FakeNode::with_lease(S::Primary, 3_000);
    assert_eq!(node.turn_at(0).await.ok(), Some(Step::Idle));
    node.monitor_up = false;
    node.turns(1_000, 2_999).await;
    assert!(!node.fenced(), "{:?}", node.did);
    assert!(node.pg_running);

    // the lease (from the send time of the last answered heartbeat) ends at 3 s
    let at_end = node.turn_at(3_000).await;
    assert_eq!(at_end.ok(), Some(Step::Transitioned));
    assert_eq!(node.state.current_role, S::DemoteTimeout);
    assert!(!node.pg_running);
    assert!(node.did("stop_postgres at once"), "{:?}", node.did);
    assert_eq!(node.saves, 1, "the fenced state is written at once");
}

#[tokio::test]
async fn a_primary_with_a_synchronous_standby_streaming_keeps_serving_without_the_monitor() {
    let mut node = FakeNode::with_lease(S::Primary, 3_000);
    node.streaming = 1;
    node.sync_streaming = 1;
    node.turns(0, 0).await;
    node.monitor_up = false;
    node.turns(1_000, 60_000).await;
    assert!(!node.fenced());
    assert!(node.pg_running);
    assert!(
        !node.did.iter().any(|d| d.contains("stop")),
        "{:?}",
        node.did
    );

    // the standby goes too: fence at once (the lease ran out long ago)
    node.sync_streaming = 0;
    node.streaming = 0;
    let _ = node.turn_at(61_000).await;
    assert!(node.did("stop_postgres at once"), "{:?}", node.did);
}

#[tokio::test]
async fn without_leases_a_primary_fences_after_network_partition_timeout() {
    let mut node = FakeNode::new(S::Primary);
    node.monitor_up = false;
    node.turns(0, 20_000).await;
    assert!(!node.fenced(), "not before network_partition_timeout");
    let _ = node.turn_at(21_000).await;
    assert!(node.fenced() || node.state.current_role == S::DemoteTimeout);
    assert!(node.did("stop_postgres at once"), "{:?}", node.did);

    // a standby streaming counts as contact (even an asynchronous one), the 2.0 rule
    let mut node = FakeNode::new(S::Primary);
    node.monitor_up = false;
    node.streaming = 1;
    node.turns(0, 60_000).await;
    assert!(!node.fenced());
    assert!(node.pg_running);
}

#[tokio::test]
async fn a_keeper_restarted_with_a_lease_fences_after_one_unanswered_heartbeat() {
    let mut node = FakeNode::new(S::Primary);
    node.memory = Memory::starting(Some(3_000));
    node.monitor_up = false;
    let step = node.turn_at(0).await;
    assert_eq!(step.ok(), Some(Step::Transitioned));
    assert!(node.did("stop_postgres at once"), "{:?}", node.did);

    // answered: it keeps its lease and serves
    let mut node = FakeNode::new(S::Primary);
    node.memory = Memory::starting(Some(3_000));
    node.turns(0, 10_000).await;
    assert!(!node.fenced());
    assert!(node.pg_running);
}

#[tokio::test]
async fn a_primary_whose_postgres_cannot_restart_reports_it_running_within_the_budget_only() {
    let mut node = FakeNode::new(S::Primary);
    node.pg_running = false;
    node.pg_starts = false;
    node.turns(0, 6_000).await;
    // 2.0's budget: 3 failed restarts, then the monitor is told (and fails over)
    assert_eq!(
        node.reports,
        [true, true, true, true, false, false, false],
        "{:?}",
        node.did
    );
    assert_eq!(node.did.iter().filter(|d| *d == "start").count(), 7);

    // a standby reports what is
    let mut node = FakeNode::new(S::Secondary);
    node.pg_running = false;
    node.pg_starts = false;
    node.turns(0, 0).await;
    assert_eq!(node.reports, [false]);
}

#[tokio::test]
async fn a_crash_in_any_state_is_repaired_as_the_state_wants() {
    for state in S::ALL {
        let expectation = expected_postgres(state);
        for running in [false, true] {
            let mut node = FakeNode::new(state);
            node.pg_running = running;
            let step = node.turn_at(0).await;
            assert_eq!(step.ok(), Some(Step::Idle), "{state}");
            let wants_running = matches!(
                expectation,
                PostgresExpectation::RunningPrimary | PostgresExpectation::RunningStandby
            );
            assert_eq!(node.did("start"), wants_running && !running, "{state}");
            assert_eq!(
                node.did("stop"),
                expectation == PostgresExpectation::Stopped && running,
                "{state}"
            );
            if expectation != PostgresExpectation::LeftAlone {
                assert_eq!(node.pg_running, wants_running, "{state}");
            } else {
                assert_eq!(node.pg_running, running, "{state}: left alone");
            }
            assert_eq!(
                node.did("follow"),
                matches!(state, S::Secondary | S::Catchingup),
                "{state}"
            );
            assert!(
                node.did
                    .iter()
                    .all(|d| ["start", "stop", "follow"].contains(&d.as_str())
                        || d.starts_with("others")),
                "{state}: no transition: {:?}",
                node.did
            );
        }
    }
}

#[tokio::test]
async fn a_postgres_stopped_by_an_operator_is_left_down_5_s_then_started() {
    let mut node = FakeNode::new(S::Secondary);
    node.pg_running = false;
    node.pg_stopped_by_operator = true;
    node.turns(0, 4_000).await;
    assert!(!node.did("start"), "{:?}", node.did);
    assert!(!node.did("follow"));
    let _ = node.turn_at(5_000).await;
    assert!(node.did("start"));
    assert!(node.pg_running);
}

#[tokio::test]
async fn a_standby_without_its_monitor_keeps_streaming_and_never_fences() {
    let mut node = FakeNode::with_lease(S::Secondary, 3_000);
    node.monitor_up = false;
    node.turns(0, 120_000).await;
    assert_eq!(node.state.assigned_role, S::Secondary);
    assert!(node.pg_running);
    assert!(!node.did.iter().any(|d| d.contains("stop")));
}

#[tokio::test]
async fn an_assigned_state_is_reached_written_and_a_dropped_node_ends_the_service() {
    let mut node = FakeNode::new(S::Primary);
    node.assign = Some(S::Draining);
    let step = node.turn_at(0).await;
    assert_eq!(step.ok(), Some(Step::Transitioned));
    assert_eq!(node.state.current_role, S::Draining);
    assert_eq!(node.saved.current_role, S::Draining);
    let action = transition(S::Primary, S::Draining).map(KeeperAction::name);
    assert_eq!(node.did.first().map(String::as_str), action);
    assert!(!node.pg_running);

    node.assign = Some(S::Dropped);
    let step = node.turn_at(1_000).await;
    assert_eq!(step.ok(), Some(Step::Dropped));
    assert_eq!(node.state.current_role, S::Dropped);
    assert_eq!(
        node.reports.len(),
        3,
        "dropped is reported before the service ends"
    );
}

#[tokio::test]
async fn an_unreachable_assignment_is_an_error_and_changes_nothing() {
    let mut node = FakeNode::new(S::Init);
    node.assign = Some(S::Primary);
    let step = node.turn_at(0).await;
    assert!(step.is_err());
    assert_eq!(node.state.current_role, S::Init);
    assert!(node.did.is_empty(), "{:?}", node.did);
}

#[tokio::test]
async fn replication_settings_start_a_crashed_primary_first() {
    let mut node = FakeNode::new(S::Primary);
    node.pg_running = false;
    node.assign = Some(S::WaitPrimary);
    let step = node.turn_at(0).await;
    assert_eq!(step.ok(), Some(Step::Transitioned));
    assert_eq!(node.did, ["start", "disable_sync_rep"]);
}

#[tokio::test]
async fn the_state_file_and_the_other_nodes_are_not_rewritten_every_turn() {
    let mut node = FakeNode::new(S::Primary);
    node.turns(0, 9_000).await;
    assert_eq!(
        node.saves, 0,
        "only the contact time changed, less than 10 s ago"
    );
    node.turns(10_000, 10_000).await;
    assert_eq!(node.saves, 1);
    assert_eq!(node.saved.last_monitor_contact, UNIX_BASE + 10);
    // listed at 0 s and 6 s (every 5 s), with the slots a primary keeps
    let listed: Vec<&String> = node
        .did
        .iter()
        .filter(|d| d.starts_with("others"))
        .collect();
    assert_eq!(listed, ["others ForStandbys", "others ForStandbys"]);
    // a notification asks for a listing at the next turn
    node.memory.others_changed();
    node.turns(11_000, 11_000).await;
    assert_eq!(
        node.did.last().map(String::as_str),
        Some("others ForStandbys")
    );
}
