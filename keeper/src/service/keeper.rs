//! The keeper's main loop on a Postgres node: observe Postgres, report to the monitor with
//! `node_active`, run the transition to the assigned state (from the table in
//! `fsm::keeper`), or else make sure Postgres is doing what the current state expects.
//! Between loops it waits up to a second on the monitor's notifications (a fifth of that while
//! a standby has lost its primary or a failover is under way).
//!
//! A writable node holds a lease from the monitor (`fsm::lease`): each successful heartbeat
//! renews it from the instant the heartbeat was sent, and when it runs out with no synchronous
//! standby streaming, the keeper fences Postgres (stops it at once) before the monitor can
//! promote anyone else. With a monitor that grants no leases (pg_auto_failover 2.0), the 2.0
//! rule applies instead: fence after `network_partition_timeout` without monitor or standby.

use std::time::{Duration, Instant};

use fsm::ReplicationState as S;
use fsm::keeper::{KeeperAction, PostgresExpectation, expected_postgres, transition};
use fsm::keeper_loop::{
    FenceReason, HEARTBEAT_TIMEOUT_MS, Limits, Memory, OPERATOR_STOP_GRACE_MS, Persisted, Seen,
    must_save, start_postgres_first, wake_after_ms,
};

use super::node::NodeContext;
use super::signals::{StopRequest, Stopper};
use crate::config::Config;
use crate::exit::{CliError, CliResult, Exit};
use crate::monitor::uri::PgUri;
use crate::monitor::{Heartbeat, Monitor, MonitorError, NodeAddress};
use crate::paths::NodePaths;
use crate::postgres::local::{Observation, standby_name};
use crate::postgres::server::StopMode;
use crate::state::{KeeperState, unix_now};

/// How long one call besides the heartbeat (listing the other nodes) may take.
const CALL_TIMEOUT: Duration = Duration::from_millis(HEARTBEAT_TIMEOUT_MS);

/// How often the list of other nodes (for HBA rules and replication slots) is refreshed
/// when no notification asks for it earlier.
const OTHERS_REFRESH: Duration = Duration::from_secs(5);

/// What one loop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reached a new state: loop again at once to report it.
    Transitioned,
    /// Nothing to do: wait.
    Idle,
    /// The node is dropped: the service ends.
    Dropped,
}

/// The keeper of one node.
pub struct Keeper {
    pub(super) node: NodeContext,
    pub(super) state: KeeperState,
    monitor_uri: PgUri,
    monitor: Option<Monitor>,
    pub(super) last_obs: Option<Observation>,
    pub(super) others: Vec<NodeAddress>,
    others_refreshed: Option<Instant>,
    sysid_reported: bool,
    state_saved: KeeperState,
    /// Set when the keeper decided to fence itself: the next stop is immediate.
    pub(super) fencing: bool,
    /// What the keeper's own decisions remember (`fsm::keeper_loop`): lease, contacts,
    /// restarts.
    memory: Memory,
    /// The origin of the millisecond clock of those decisions.
    epoch: Instant,
    /// Synchronous standbys streaming from this node at the last observation (0 when
    /// Postgres was down).
    sync_standbys_streaming: i64,
    /// A new node name or hostname read from the configuration at a reload, still to be sent
    /// to the monitor (`update_node_metadata`, as 2.0's keeper does).
    metadata_pending: Option<MetadataChange>,
}

/// A node name or hostname changed in the configuration while the service ran.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MetadataChange {
    name: Option<String>,
    hostname: Option<String>,
}

impl MetadataChange {
    /// What changed between two configurations, if anything the monitor keeps. The port is
    /// not sent: Postgres listens on the old one until restarted, as in 2.0.
    fn between(old: &Config, new: &Config) -> Option<MetadataChange> {
        let name = (old.name != new.name).then(|| new.name.clone());
        let hostname = (old.hostname != new.hostname).then(|| new.hostname.clone());
        (name.is_some() || hostname.is_some()).then_some(MetadataChange { name, hostname })
    }
}

impl Keeper {
    /// The keeper of the node configured in `config`, with its state file.
    pub fn load(paths: NodePaths, config: Config) -> CliResult<Keeper> {
        let uri_text = config.monitor.clone().ok_or_else(|| {
            CliError::bad_config("this node has no monitor (pg_autoctl.monitor is PG_AUTOCTL_DISABLED)")
                .hint("Running without a monitor is not supported by this pg_autoctl: set one with pg_autoctl config set pg_autoctl.monitor URI.")
        })?;
        let monitor_uri = PgUri::parse(&uri_text)
            .map_err(|e| CliError::bad_config(format!("pg_autoctl.monitor: {e}")))?;
        let state = KeeperState::load(&paths.state)?;
        // a keeper that restarts knowing the monitor grants leases holds none until its first
        // heartbeat succeeds: its lease counts as run out from the start
        let memory = Memory::starting(state.lease_ms);
        Ok(Keeper {
            node: NodeContext::new(paths, config)?,
            state_saved: state.clone(),
            state,
            monitor_uri,
            monitor: None,
            last_obs: None,
            others: Vec::new(),
            others_refreshed: None,
            sysid_reported: false,
            fencing: false,
            memory,
            epoch: Instant::now(),
            sync_standbys_streaming: 0,
            metadata_pending: None,
        })
    }

    /// Runs until stopped or dropped. Postgres is stopped on the way out (it is the keeper's
    /// child), in the mode the stop request asks for.
    pub async fn run(mut self, stopper: &mut Stopper) -> CliResult<()> {
        let span = tracing::info_span!(
            "keeper",
            node = %self.node.config.name,
            formation = %self.node.config.formation,
        );
        let _guard = span.enter();
        tracing::info!(
            node_id = self.state.node_id,
            state = %self.state.current_role,
            "pg_autoctl service started"
        );
        loop {
            if let Some(request) = stopper.requested() {
                return self.shutdown(request).await;
            }
            if stopper.take_reload() {
                self.reload_config();
            }
            match self.step().await {
                Ok(Step::Transitioned) => continue,
                Ok(Step::Dropped) => {
                    tracing::info!("this node was dropped from the monitor: the service stops");
                    return Ok(());
                }
                Ok(Step::Idle) => {}
                Err(e) => {
                    tracing::error!(error = %e.message, hint = e.hint.as_deref().unwrap_or(""), "keeper loop")
                }
            }
            self.wait(stopper).await;
        }
    }

    /// Waits for a notification, a stop request, Postgres exiting, the lease running out, or
    /// the heartbeat interval.
    async fn wait(&mut self, stopper: &mut Stopper) {
        let receiving = self.last_obs.as_ref().is_some_and(|o| o.receiving);
        let interval = Duration::from_millis(wake_after_ms(self.state.current_role, receiving));
        let seen = self.seen();
        let lease_end = self
            .memory
            .pending_lease_deadline(&seen)
            .map(|ms| self.epoch + Duration::from_millis(ms));
        let lease_timer = async move {
            match lease_end {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        let server = &mut self.node.server;
        let Some(monitor) = self.monitor.as_mut() else {
            tokio::select! {
                () = stopper.sleep(interval) => {}
                () = server.exited() => {}
                () = lease_timer => {}
            }
            return;
        };
        tokio::select! {
            // Postgres died: restart it (or report it) now, not at the next heartbeat
            () = server.exited() => {}
            // the lease runs out: fence now, not at the next heartbeat
            () = lease_timer => {}
            n = monitor.next_notification(interval) => match n {
                Ok(Some(notification)) => {
                    tracing::debug!(
                        channel = %fsm::vocab::printable(&notification.channel),
                        payload = %fsm::vocab::printable(&notification.payload),
                        "notification"
                    );
                    // other nodes changed: refresh them on this loop
                    self.others_refreshed = None;
                }
                Ok(None) => {}
                Err(_) => self.monitor = None,
            },
            () = stopper.wait() => {}
        }
    }

    async fn shutdown(&mut self, request: StopRequest) -> CliResult<()> {
        let mode = match request {
            StopRequest::Fast | StopRequest::Smart => StopMode::Fast,
            StopRequest::Immediate => StopMode::Immediate,
        };
        tracing::info!(?mode, "stopping");
        self.save_state()?;
        self.node.drop_local();
        self.node.server.stop(mode, Duration::from_secs(60)).await?;
        if !self.state.current_role.can_take_writes() {
            // A standby going away tells the monitor at once, so that a primary waiting on
            // it for synchronous replication is released now rather than after the health
            // checks notice. A primary does not: a keeper restart must not cause a failover.
            let last = tokio::time::timeout(Duration::from_secs(2), self.heartbeat(false)).await;
            if !matches!(last, Ok(Ok(()))) {
                tracing::debug!("could not tell the monitor that Postgres stopped");
            }
        }
        Ok(())
    }

    fn reload_config(&mut self) {
        match Config::load_for(&self.node.paths) {
            Ok(config) => {
                if let Some(Ok(uri)) = config.monitor.as_deref().map(PgUri::parse)
                    && uri != self.monitor_uri
                {
                    self.monitor_uri = uri;
                    self.monitor = None;
                }
                if let Some(change) = MetadataChange::between(&self.node.config, &config) {
                    // merged with a change not sent yet
                    let pending = self.metadata_pending.take();
                    self.metadata_pending = Some(MetadataChange {
                        name: change
                            .name
                            .or(pending.as_ref().and_then(|p| p.name.clone())),
                        hostname: change.hostname.or(pending.and_then(|p| p.hostname)),
                    });
                }
                self.node.config = config;
                tracing::info!("configuration reloaded");
            }
            Err(e) => tracing::error!(error = %e.message, "cannot reload the configuration"),
        }
    }

    /// The monitor connection, opened (LISTENing, holding a lease) when needed.
    pub(super) async fn monitor(&mut self) -> Result<&mut Monitor, MonitorError> {
        if self.monitor.as_ref().is_none_or(Monitor::is_closed) {
            self.monitor = None;
            let mut m = Monitor::connect(&self.monitor_uri, "pg_autoctl").await?;
            m.listen("state").await?;
            let lease = m.take_lease().await?;
            if lease != self.memory.lease_ms {
                tracing::info!(lease_ms = lease.unwrap_or(0), "monitor lease");
            }
            self.memory.lease_ms = lease;
            self.state.lease_ms = lease;
            self.monitor = Some(m);
        }
        self.monitor
            .as_mut()
            .ok_or_else(|| MonitorError::Lost("no connection".to_string()))
    }

    /// One loop.
    pub async fn step(&mut self) -> CliResult<Step> {
        let now = unix_now();
        let running = self.node.server.is_running();
        let obs = if running {
            match self.node.local().await {
                Ok(local) => local.observe().await.ok(),
                Err(_) => None,
            }
        } else {
            self.node.drop_local();
            None
        };
        self.sync_standbys_streaming = obs.as_ref().map_or(0, |o| o.sync_standbys_streaming);
        if let Some(o) = &obs {
            if o.streaming_standbys > 0 {
                self.state.last_secondary_contact = now;
                self.memory.saw_standby(self.now_ms());
            }
            self.last_obs = Some(o.clone());
        }
        let current = self.state.current_role;
        let pg_is_running = self
            .memory
            .report_pg_running(&self.seen(), running, &self.limits());

        match self.memory.before_heartbeat(&self.seen()) {
            Err(reason) => self.fence(reason),
            Ok(timeout_ms) => {
                let timeout = Duration::from_millis(timeout_ms);
                let heartbeat = tokio::time::timeout(timeout, self.heartbeat(pg_is_running))
                    .await
                    .unwrap_or_else(|_| {
                        Err(MonitorError::Lost(format!(
                            "no answer within {timeout_ms} ms"
                        )))
                    });
                match heartbeat {
                    Ok(()) => {
                        self.state.last_monitor_contact = now;
                        self.fencing = false;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot report to the monitor");
                        if e.is_transient() {
                            self.monitor = None;
                        }
                        let seen = self.seen();
                        if let Some(reason) = self.memory.heartbeat_failed(&seen, &self.limits()) {
                            self.fence(reason);
                        }
                    }
                }
            }
        }

        let assigned = self.state.assigned_role;
        if assigned != current {
            let action = transition(current, assigned).ok_or_else(|| {
                CliError::new(
                    Exit::Keeper,
                    format!(
                        "pg_autoctl does not know how to reach state {assigned} from {current}"
                    ),
                )
            })?;
            // replication settings are applied to a running Postgres: one that crashed
            // meanwhile is restarted first (the transition would otherwise fail forever)
            if start_postgres_first(action, self.node.server.is_running()) {
                self.ensure_current_state().await?;
            }
            tracing::info!(from = %current, to = %assigned, action = action.name(), "transition");
            let started = Instant::now();
            self.run_action(action).await.map_err(|e| {
                e.context(format!(
                    "transition from {current} to {assigned} ({})",
                    action.name()
                ))
            })?;
            self.state.current_role = assigned;
            self.save_state()?;
            tracing::info!(
                state = %assigned,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "reached state"
            );
            if action == KeeperAction::Drop {
                // report `dropped` so that the monitor removes the node
                if let Err(e) = self.heartbeat(false).await {
                    tracing::debug!(error = %e, "last heartbeat");
                }
                return Ok(Step::Dropped);
            }
            return Ok(Step::Transitioned);
        }

        self.ensure_current_state().await?;
        if self
            .others_refreshed
            .is_none_or(|t| t.elapsed() > OTHERS_REFRESH)
        {
            match tokio::time::timeout(CALL_TIMEOUT, self.refresh_others()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e.message, "cannot refresh the other nodes"),
                Err(_) => {
                    tracing::warn!("the monitor did not list the other nodes in time");
                    self.monitor = None;
                }
            }
        }
        if self.state != self.state_saved
            && must_save(&persisted(&self.state_saved), &persisted(&self.state), now)
        {
            self.save_state()?;
        }
        Ok(Step::Idle)
    }

    pub(super) fn save_state(&mut self) -> CliResult<()> {
        self.state.save(&self.node.paths.state)?;
        self.state_saved = self.state.clone();
        Ok(())
    }

    /// Reports to the monitor and records the assigned state.
    async fn heartbeat(&mut self, pg_is_running: bool) -> Result<(), MonitorError> {
        self.report_system_identifier().await?;
        self.report_metadata().await?;
        let (lsn, tli, sync_state) = match &self.last_obs {
            Some(o) => (o.lsn.clone(), o.timeline, o.sync_state.clone()),
            None => ("0/0".to_string(), 1, String::new()),
        };
        let formation = self.node.config.formation.clone();
        let hb = Heartbeat {
            formation: &formation,
            node_id: self.state.node_id,
            group_id: self.state.group_id,
            state: self.state.current_role,
            pg_is_running,
            tli,
            lsn: &lsn,
            sync_state: if pg_is_running { &sync_state } else { "" },
        };
        let epoch = self.epoch;
        let monitor = self.monitor().await?;
        let sent_ms = ms_since(epoch, Instant::now());
        let assignment = monitor.node_active(&hb).await?;
        let seen = self.seen();
        self.memory.answered(&seen, sent_ms, assignment.state);
        if assignment.state != self.state.assigned_role {
            tracing::info!(
                current = %self.state.current_role,
                assigned = %assignment.state,
                "monitor assigned a new state"
            );
        }
        self.state.assigned_role = assignment.state;
        self.state.group_id = assignment.group_id;
        Ok(())
    }

    /// Records Postgres's system identifier on the monitor once, before any state that
    /// requires it is reported.
    async fn report_system_identifier(&mut self) -> Result<(), MonitorError> {
        if self.sysid_reported {
            return Ok(());
        }
        if self.state.system_identifier == 0 {
            match self.node.bin().controldata(self.node.pgdata()).await {
                Ok(data) => self.state.system_identifier = data.system_identifier,
                Err(_) => return Ok(()), // no cluster yet
            }
        }
        let node_id = self.state.node_id;
        let sysid = self.state.system_identifier;
        self.monitor()
            .await?
            .set_node_system_identifier(node_id, sysid)
            .await?;
        self.sysid_reported = true;
        Ok(())
    }

    /// Sends a name or hostname changed at a reload to the monitor. A refusal (the name is
    /// taken, the value is invalid) is logged and not retried: the monitor keeps the old
    /// value until the configuration changes again.
    async fn report_metadata(&mut self) -> Result<(), MonitorError> {
        let Some(change) = self.metadata_pending.clone() else {
            return Ok(());
        };
        let node_id = self.state.node_id;
        let result = self
            .monitor()
            .await?
            .update_node_metadata(
                node_id,
                change.name.as_deref(),
                change.hostname.as_deref(),
                None,
            )
            .await;
        match result {
            Ok(_) => {
                tracing::info!(
                    node_id,
                    name = change.name.as_deref().unwrap_or(""),
                    hostname = change.hostname.as_deref().unwrap_or(""),
                    "node metadata updated on the monitor"
                );
                self.metadata_pending = None;
                Ok(())
            }
            Err(MonitorError::Refused { message, .. }) => {
                tracing::error!(node_id, %message, "the monitor refused the new node metadata");
                self.metadata_pending = None;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the group has other nodes: as last listed, or as saved before a restart.
    fn has_peers(&self) -> bool {
        match self.others_refreshed {
            Some(_) => !self.others.is_empty(),
            None => self.state.has_peers,
        }
    }

    /// Now, on the clock of the keeper's decisions (ms since the keeper started).
    fn now_ms(&self) -> u64 {
        ms_since(self.epoch, Instant::now())
    }

    /// What the keeper's decisions need to know of the node now.
    fn seen(&self) -> Seen {
        Seen {
            now_ms: self.now_ms(),
            current: self.state.current_role,
            has_peers: self.has_peers(),
            sync_standbys_streaming: self.sync_standbys_streaming,
        }
    }

    /// The configured limits of the keeper's decisions.
    fn limits(&self) -> Limits {
        let t = &self.node.config.timeout;
        Limits {
            network_partition_timeout_ms: t.network_partition_timeout.saturating_mul(1_000),
            restart_max_retries: t.postgresql_restart_failure_max_retries,
            restart_timeout_ms: t.postgresql_restart_failure_timeout.saturating_mul(1_000),
        }
    }

    /// Stops taking writes: Postgres is stopped at once (demote_timeout).
    fn fence(&mut self, reason: FenceReason) {
        if self.fencing && self.state.assigned_role == S::DemoteTimeout {
            return;
        }
        tracing::warn!(
            state = %self.state.current_role,
            partition_timeout_s = self.node.config.timeout.network_partition_timeout,
            "{}: fencing this primary (demote_timeout)",
            reason.describe()
        );
        self.state.assigned_role = S::DemoteTimeout;
        self.fencing = true;
    }

    /// Makes Postgres do what the current state expects.
    async fn ensure_current_state(&mut self) -> CliResult<()> {
        let current = self.state.current_role;
        match expected_postgres(current) {
            PostgresExpectation::RunningPrimary | PostgresExpectation::RunningStandby => {
                if self.node.server.is_running() {
                    self.memory.postgres_running();
                } else if !self.restart_is_due().await {
                    return Ok(());
                } else {
                    tracing::warn!(state = %current, "Postgres is not running: starting it");
                    match self.node.server.start().await {
                        Ok(()) => self.memory.postgres_running(),
                        Err(e) => {
                            let now_ms = self.now_ms();
                            self.memory.postgres_start_failed(now_ms);
                            return Err(e.context("restarting Postgres"));
                        }
                    }
                }
                if matches!(current, S::Catchingup | S::Secondary) {
                    self.follow_if_primary_changed().await?;
                }
            }
            PostgresExpectation::Stopped => {
                if self.node.server.is_running() {
                    tracing::warn!(state = %current, "Postgres runs but must be stopped: stopping it");
                    self.node.drop_local();
                    self.node
                        .server
                        .stop(StopMode::Fast, Duration::from_secs(60))
                        .await?;
                }
            }
            PostgresExpectation::LeftAlone => {}
        }
        Ok(())
    }

    /// Whether to start Postgres, found down, now (`Memory::restart_due`): a Postgres
    /// someone else shut down cleanly is left down for a grace period first.
    async fn restart_is_due(&mut self) -> bool {
        let now_ms = self.now_ms();
        let first_seen = self.memory.first_seen_down();
        let clean = self.node.server.stopped_behind_our_back()
            && match self.node.bin().controldata(self.node.pgdata()).await {
                Ok(data) => data.cluster_state.starts_with("shut down"),
                Err(_) => false,
            };
        if clean && first_seen {
            tracing::warn!(
                state = %self.state.current_role,
                grace_ms = OPERATOR_STOP_GRACE_MS,
                "Postgres was shut down by someone else: starting it again after the grace period \
                 (to keep it stopped, use pg_autoctl stop or maintenance)"
            );
        }
        self.memory.restart_due(now_ms, clean)
    }

    /// Re-reads the other nodes: HBA rules for them, and their replication slots (on a primary,
    /// and on a standby that streams or reports its LSN).
    async fn refresh_others(&mut self) -> CliResult<()> {
        let node_id = self.state.node_id;
        let others = self.monitor().await?.get_other_nodes(node_id).await?;
        self.others_refreshed = Some(Instant::now());
        self.state.has_peers = !others.is_empty();
        if !self.node.pgdata().join("pg_hba.conf").exists() {
            // no database yet (a standby before its copy)
            self.others = others;
            return Ok(());
        }
        let mut rules = Vec::new();
        for other in &others {
            rules.extend(self.node.replication_rules(&other.host)?);
        }
        let hba_changed = self.node.ensure_hba(&rules)?;
        self.others = others;
        if !self.node.server.is_running() {
            return Ok(());
        }
        if hba_changed {
            self.node.local().await?.reload().await?;
        }
        let current = self.state.current_role;
        if expected_postgres(current) == PostgresExpectation::RunningPrimary {
            let slots: Vec<String> = self
                .others
                .iter()
                .map(|o| standby_name(o.node_id))
                .collect();
            self.node.local().await?.sync_slots(&slots).await?;
        } else if matches!(current, S::Secondary | S::ReportLsn) {
            // as 2.0 does: a slot for every other node, moved forward as it reports, so that
            // this node holds the WAL the others need if it is promoted
            let targets: Vec<(String, fsm::Lsn)> = self
                .others
                .iter()
                .map(|o| (standby_name(o.node_id), o.lsn))
                .collect();
            let names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
            let local = self.node.local().await?;
            local.sync_slots(&names).await?;
            local.advance_slots(&targets).await?;
        }
        Ok(())
    }
}

/// Milliseconds from `epoch` to `at`.
fn ms_since(epoch: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX)
}

/// What of the state file decides when to write it (`fsm::keeper_loop::must_save`).
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
mod tests {
    use super::*;

    #[test]
    fn a_new_name_or_hostname_is_sent_to_the_monitor_a_new_port_is_not() {
        let old = crate::config::tests::sample();
        assert_eq!(MetadataChange::between(&old, &old), None);

        let mut renamed = old.clone();
        renamed.name = "east_1".to_string();
        assert_eq!(
            MetadataChange::between(&old, &renamed),
            Some(MetadataChange {
                name: Some("east_1".to_string()),
                hostname: None
            })
        );

        let mut moved = old.clone();
        moved.hostname = "10.0.0.9".to_string();
        moved.pg.port += 1;
        assert_eq!(
            MetadataChange::between(&old, &moved),
            Some(MetadataChange {
                name: None,
                hostname: Some("10.0.0.9".to_string())
            })
        );

        let mut port_only = old.clone();
        port_only.pg.port += 1;
        assert_eq!(MetadataChange::between(&old, &port_only), None);
    }
}
