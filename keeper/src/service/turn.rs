//! One turn of the keeper's loop: observe the local Postgres, report to the monitor, decide,
//! carry the decision out. Every decision is `fsm::keeper_loop`'s (and `fsm::keeper`'s
//! transition table); this file only puts them in order. It is written against [`KeeperIo`] —
//! the node's state, its clock, what the loop does to Postgres and asks of the monitor — so
//! that the same loop runs on a server ([`super::keeper::Keeper`]) and, in its unit tests, on
//! fakes.

use fsm::ReplicationState as S;
use fsm::keeper::KeeperAction;
use fsm::keeper_loop::{
    FenceReason, Limits, Memory, Next, OPERATOR_STOP_GRACE_MS, Persisted, PostgresStep, Seen,
    Slots, must_save, next, slots,
};

use crate::exit::{CliError, CliResult, Exit};
use crate::monitor::MonitorError;
use crate::state::KeeperState;

/// What one turn did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reached a new state: loop again at once to report it.
    Transitioned,
    /// Nothing to do: wait.
    Idle,
    /// The node is dropped: the service ends.
    Dropped,
}

/// What the local Postgres looked like at the start of a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observed {
    /// Postgres runs.
    pub running: bool,
    /// Standbys streaming from it (that replied recently).
    pub streaming_standbys: i64,
    /// Of those, the ones that count for synchronous replication.
    pub sync_standbys_streaming: i64,
}

/// The node as the loop sees it: its state, its clock, its Postgres, its monitor.
pub(crate) trait KeeperIo {
    /// The keeper's state (what the state file holds).
    fn state(&mut self) -> &mut KeeperState;
    /// What the keeper's decisions remember between turns.
    fn memory(&mut self) -> &mut Memory;
    /// The configured limits of those decisions.
    fn limits(&self) -> Limits;
    /// Now, in ms since the keeper started (monotonic).
    fn now_ms(&self) -> u64;
    /// Now, in Unix seconds (for the state file).
    fn unix_now(&self) -> u64;

    /// Looks at the local Postgres.
    async fn observe(&mut self) -> Observed;
    /// Whether Postgres runs now.
    fn postgres_running(&mut self) -> bool;
    /// Whether a Postgres found down was shut down cleanly by someone else.
    async fn stopped_cleanly_by_someone_else(&mut self) -> bool;
    /// Starts Postgres.
    async fn start_postgres(&mut self) -> CliResult<()>;
    /// Stops Postgres (fast).
    async fn stop_postgres(&mut self) -> CliResult<()>;
    /// Runs a step of the transition table.
    async fn run_action(&mut self, action: KeeperAction) -> CliResult<()>;
    /// Makes a standby follow the group's current primary if it changed.
    async fn follow_if_primary_changed(&mut self) -> CliResult<()>;

    /// Reports to the monitor (`node_active`), waiting at most `timeout_ms`; returns the
    /// assigned state.
    async fn report(&mut self, pg_is_running: bool, timeout_ms: u64) -> Result<S, MonitorError>;
    /// Lists the other nodes again: HBA rules for them, and the replication `slots`.
    async fn refresh_others(&mut self, slots: Slots) -> CliResult<()>;
    /// The state as last written to the state file.
    fn saved_state(&self) -> &KeeperState;
    /// Writes the state file.
    fn save_state(&mut self) -> CliResult<()>;
}

/// What the decisions need to know of the node now.
pub(crate) fn seen<N: KeeperIo>(n: &mut N) -> Seen {
    let now_ms = n.now_ms();
    let state = n.state();
    let (current, has_peers) = (state.current_role, state.has_peers);
    Seen {
        now_ms,
        current,
        has_peers,
        sync_standbys_streaming: n.memory().sync_standbys_streaming,
    }
}

/// One turn.
pub(crate) async fn step<N: KeeperIo>(n: &mut N) -> CliResult<Step> {
    let unix_now = n.unix_now();
    let observed = n.observe().await;
    let now_ms = n.now_ms();
    if n.memory().observed(
        now_ms,
        observed.streaming_standbys,
        observed.sync_standbys_streaming,
    ) {
        n.state().last_secondary_contact = unix_now;
    }
    report(n, observed.running, unix_now).await;

    let current = n.state().current_role;
    let assigned = n.state().assigned_role;
    match next(current, assigned, n.postgres_running()) {
        Next::Stay => {}
        Next::NoWay => {
            return Err(CliError::new(
                Exit::Keeper,
                format!("pg_autoctl does not know how to reach state {assigned} from {current}"),
            ));
        }
        Next::Transition {
            action,
            start_postgres_first,
        } => {
            if start_postgres_first {
                keep_postgres(n).await?;
            }
            return transition(n, current, assigned, action).await;
        }
    }

    keep_postgres(n).await?;
    let now_ms = n.now_ms();
    if n.memory().others_due(now_ms)
        && let Err(e) = n.refresh_others(slots(current)).await
    {
        tracing::warn!(error = %e.message, "cannot refresh the other nodes");
    }
    let now = persisted(n.state());
    if must_save(&persisted(n.saved_state()), &now, unix_now) {
        n.save_state()?;
    }
    Ok(Step::Idle)
}

/// Reports to the monitor and records its answer, or fences when the decisions say so.
async fn report<N: KeeperIo>(n: &mut N, running: bool, unix_now: u64) {
    let limits = n.limits();
    let seen_now = seen(n);
    let pg_is_running = n.memory().report_pg_running(&seen_now, running, &limits);
    let timeout_ms = match n.memory().before_heartbeat(&seen_now) {
        Ok(timeout_ms) => timeout_ms,
        Err(reason) => return fence(n, reason),
    };
    let sent_ms = n.now_ms();
    match n.report(pg_is_running, timeout_ms).await {
        Ok(assigned) => {
            let seen_now = seen(n);
            n.memory().answered(&seen_now, sent_ms, assigned);
            let state = n.state();
            state.last_monitor_contact = unix_now;
            if assigned != state.assigned_role {
                tracing::info!(
                    current = %state.current_role,
                    assigned = %assigned,
                    "monitor assigned a new state"
                );
            }
            state.assigned_role = assigned;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot report to the monitor");
            let seen_now = seen(n);
            if let Some(reason) = n.memory().heartbeat_failed(&seen_now, &limits) {
                fence(n, reason);
            }
        }
    }
}

/// Stops taking writes: the node is assigned `demote_timeout`, and its Postgres is stopped at
/// once.
fn fence<N: KeeperIo>(n: &mut N, reason: FenceReason) {
    let (current, assigned) = (n.state().current_role, n.state().assigned_role);
    if n.memory().fence(assigned) {
        tracing::warn!(
            state = %current,
            partition_timeout_ms = n.limits().network_partition_timeout_ms,
            "{}: fencing this primary (demote_timeout)",
            reason.describe()
        );
    }
    n.state().assigned_role = S::DemoteTimeout;
}

/// Runs the step of the transition table from `current` to `assigned`.
async fn transition<N: KeeperIo>(
    n: &mut N,
    current: S,
    assigned: S,
    action: KeeperAction,
) -> CliResult<Step> {
    tracing::info!(from = %current, to = %assigned, action = action.name(), "transition");
    let started_ms = n.now_ms();
    n.run_action(action).await.map_err(|e| {
        e.context(format!(
            "transition from {current} to {assigned} ({})",
            action.name()
        ))
    })?;
    n.state().current_role = assigned;
    n.save_state()?;
    tracing::info!(
        state = %assigned,
        elapsed_ms = n.now_ms().saturating_sub(started_ms),
        "reached state"
    );
    if action.ends_the_service() {
        // report `dropped` so that the monitor removes the node
        let timeout_ms = fsm::keeper_loop::HEARTBEAT_TIMEOUT_MS;
        if let Err(e) = n.report(false, timeout_ms).await {
            tracing::debug!(error = %e, "last heartbeat");
        }
        return Ok(Step::Dropped);
    }
    Ok(Step::Transitioned)
}

/// Makes Postgres do what the current state expects.
async fn keep_postgres<N: KeeperIo>(n: &mut N) -> CliResult<()> {
    let running = n.postgres_running();
    let clean = !running && n.stopped_cleanly_by_someone_else().await;
    let current = n.state().current_role;
    let now_ms = n.now_ms();
    let keep = n.memory().keep_postgres(now_ms, current, running, clean);
    match keep.postgres {
        PostgresStep::AsIs => {}
        PostgresStep::LeaveDown { just_found } => {
            if just_found {
                tracing::warn!(
                    state = %current,
                    grace_ms = OPERATOR_STOP_GRACE_MS,
                    "Postgres was shut down by someone else: starting it again after the grace \
                     period (to keep it stopped, use pg_autoctl stop or maintenance)"
                );
            }
        }
        PostgresStep::Start => {
            tracing::warn!(state = %current, "Postgres is not running: starting it");
            match n.start_postgres().await {
                Ok(()) => n.memory().postgres_running(),
                Err(e) => {
                    n.memory().postgres_start_failed(now_ms);
                    return Err(e.context("restarting Postgres"));
                }
            }
        }
        PostgresStep::Stop => {
            tracing::warn!(state = %current, "Postgres runs but must be stopped: stopping it");
            n.stop_postgres().await?;
        }
    }
    if keep.follow_primary {
        n.follow_if_primary_changed().await?;
    }
    Ok(())
}

/// What of the state file decides when to write it.
fn persisted(state: &KeeperState) -> Persisted {
    Persisted {
        current: state.current_role,
        assigned: state.assigned_role,
        lease_ms: state.lease_ms,
        has_peers: state.has_peers,
        last_monitor_contact_s: state.last_monitor_contact,
    }
}

#[cfg(test)]
#[path = "turn_tests.rs"]
mod tests;
