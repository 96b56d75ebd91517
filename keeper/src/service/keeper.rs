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
use fsm::lease::{KeeperLeaseView, keeper_deadline, keeper_must_fence};

use super::fencing::{OPERATOR_STOP_GRACE, RestartTracker, primary_is_partitioned, restart_is_due};
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

/// How long the keeper waits between two heartbeats when nothing happens.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// The interval while a standby has lost its primary or takes part in a failover: the monitor
/// decides on leases running out, which no notification announces.
const FAILOVER_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(200);

/// How long one heartbeat may take. A monitor that does not answer within it counts as
/// unreachable for this loop: a connection to a host cut off the network would otherwise hang
/// until TCP gives up, and delay the primary's decision to fence itself.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2);

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
    restarts: RestartTracker,
    started: u64,
    pub(super) others: Vec<NodeAddress>,
    others_refreshed: Option<Instant>,
    sysid_reported: bool,
    state_saved: KeeperState,
    /// Set when the keeper decided to fence itself: the next stop is immediate.
    pub(super) fencing: bool,
    /// The lease the monitor grants, in ms (None: it grants none).
    lease_ms: Option<u64>,
    /// When this node's lease runs out: send time of the last successful heartbeat + lease.
    lease_deadline: Option<Instant>,
    /// Whether a heartbeat was attempted since the keeper started (it is, before fencing on
    /// a lease inherited from before the restart).
    tried_heartbeat: bool,
    /// The origin of the millisecond clock handed to `fsm::lease`.
    epoch: Instant,
    /// Synchronous standbys streaming from this node at the last observation (0 when
    /// Postgres was down).
    sync_standbys_streaming: i64,
    /// A new node name or hostname read from the configuration at a reload, still to be sent
    /// to the monitor (`update_node_metadata`, as 2.0's keeper does).
    metadata_pending: Option<MetadataChange>,
    /// When Postgres was first found down while it should run (None while it runs).
    down_since: Option<Instant>,
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
        let inherited_lease = state.lease_ms;
        let restarts = RestartTracker::new(
            config.timeout.postgresql_restart_failure_max_retries,
            Duration::from_secs(config.timeout.postgresql_restart_failure_timeout),
        );
        Ok(Keeper {
            node: NodeContext::new(paths, config)?,
            state_saved: state.clone(),
            state,
            monitor_uri,
            monitor: None,
            last_obs: None,
            restarts,
            started: unix_now(),
            others: Vec::new(),
            others_refreshed: None,
            sysid_reported: false,
            fencing: false,
            // a keeper that restarts knowing the monitor grants leases holds none until its
            // first heartbeat succeeds: its lease counts as run out from the start
            lease_ms: inherited_lease,
            lease_deadline: inherited_lease.map(|_| Instant::now()),
            tried_heartbeat: false,
            epoch: Instant::now(),
            sync_standbys_streaming: 0,
            metadata_pending: None,
            down_since: None,
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
        let interval = self.heartbeat_interval();
        let lease_end = self.pending_lease_deadline();
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
                self.restarts = RestartTracker::new(
                    config.timeout.postgresql_restart_failure_max_retries,
                    Duration::from_secs(config.timeout.postgresql_restart_failure_timeout),
                );
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
            if lease != self.lease_ms {
                tracing::info!(lease_ms = lease.unwrap_or(0), "monitor lease");
            }
            self.lease_ms = lease;
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
            }
            self.last_obs = Some(o.clone());
        }
        let current = self.state.current_role;
        let pg_is_running = running
            || (expected_postgres(current) == PostgresExpectation::RunningPrimary
                && self.restarts.still_trying(Instant::now()));

        if self.tried_heartbeat && self.lease_ran_out(Instant::now()) {
            self.fence("the lease from the monitor ran out and no synchronous standby streams");
        } else {
            self.tried_heartbeat = true;
            // a heartbeat still in flight when the lease runs out must not delay the fence
            let timeout = match self.pending_lease_deadline() {
                Some(at) => HEARTBEAT_TIMEOUT.min(at.saturating_duration_since(Instant::now())),
                None => HEARTBEAT_TIMEOUT,
            };
            let heartbeat = tokio::time::timeout(timeout, self.heartbeat(pg_is_running))
                .await
                .unwrap_or_else(|_| {
                    Err(MonitorError::Lost(format!(
                        "no answer within {} ms",
                        timeout.as_millis()
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
                    if self.lease_ran_out(Instant::now()) {
                        self.fence(
                            "the lease from the monitor ran out and no synchronous standby streams",
                        );
                    } else {
                        self.check_partition(now);
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
            if matches!(
                action,
                KeeperAction::EnableSyncRep | KeeperAction::DisableSyncRep
            ) && !self.node.server.is_running()
            {
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
            match tokio::time::timeout(HEARTBEAT_TIMEOUT, self.refresh_others()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e.message, "cannot refresh the other nodes"),
                Err(_) => {
                    tracing::warn!("the monitor did not list the other nodes in time");
                    self.monitor = None;
                }
            }
        }
        if self.state != self.state_saved
            && (self.state.current_role != self.state_saved.current_role
                || self.state.assigned_role != self.state_saved.assigned_role
                || self.state.lease_ms != self.state_saved.lease_ms
                || self.state.has_peers != self.state_saved.has_peers
                || now.saturating_sub(self.state_saved.last_monitor_contact) >= 10)
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
        let current = self.state.current_role;
        let monitor = self.monitor().await?;
        let sent = Instant::now();
        let assignment = monitor.node_active(&hb).await?;
        // renewed from the send time, and only by an answer that keeps this node as it is or
        // makes it writable (an answer that demotes it is acted upon instead)
        if let Some(lease_ms) = self.lease_ms
            && (assignment.state == current || assignment.state.can_take_writes())
        {
            let deadline = keeper_deadline(self.ms_since_epoch(sent), lease_ms);
            self.lease_deadline = Some(self.epoch + Duration::from_millis(deadline));
        }
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

    fn ms_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether this writable node must fence now: its lease ran out, another node could be
    /// promoted, and no synchronous standby streams (`fsm::lease::keeper_must_fence`).
    fn lease_ran_out(&self, now: Instant) -> bool {
        if !self.state.current_role.can_take_writes() || self.lease_ms.is_none() {
            return false;
        }
        let view = KeeperLeaseView {
            now_ms: self.ms_since_epoch(now),
            deadline_ms: self.lease_deadline.map(|d| self.ms_since_epoch(d)),
            has_other_nodes: self.has_peers(),
            sync_standbys_streaming: self.sync_standbys_streaming,
        };
        keeper_must_fence(&view)
    }

    /// The lease deadline still ahead of a writable node that would have to fence at it.
    fn pending_lease_deadline(&self) -> Option<Instant> {
        let deadline = self.lease_deadline?;
        (self.state.current_role.can_take_writes()
            && self.lease_ms.is_some()
            && self.has_peers()
            && deadline > Instant::now())
        .then_some(deadline)
    }

    /// Whether the group has other nodes: as last listed, or as saved before a restart.
    fn has_peers(&self) -> bool {
        match self.others_refreshed {
            Some(_) => !self.others.is_empty(),
            None => self.state.has_peers,
        }
    }

    /// How long to wait between two heartbeats.
    fn heartbeat_interval(&self) -> Duration {
        let current = self.state.current_role;
        let lost_primary = matches!(current, S::Secondary | S::Catchingup)
            && self.last_obs.as_ref().is_none_or(|o| !o.receiving);
        let in_failover = matches!(
            current,
            S::ReportLsn
                | S::PreparePromotion
                | S::StopReplication
                | S::FastForward
                | S::JoinSecondary
        );
        if lost_primary || in_failover {
            FAILOVER_HEARTBEAT_INTERVAL
        } else {
            HEARTBEAT_INTERVAL
        }
    }

    /// Stops taking writes: Postgres is stopped at once (demote_timeout).
    fn fence(&mut self, why: &str) {
        if self.fencing && self.state.assigned_role == S::DemoteTimeout {
            return;
        }
        tracing::warn!(state = %self.state.current_role, "{why}: fencing this primary (demote_timeout)");
        self.state.assigned_role = S::DemoteTimeout;
        self.fencing = true;
    }

    /// A primary that reaches neither the monitor nor a standby stops taking writes (the 2.0
    /// rule, for a monitor that grants no leases, or before the first lease).
    fn check_partition(&mut self, now: u64) {
        if !self.state.current_role.can_take_writes() || self.lease_deadline.is_some() {
            return;
        }
        let timeout = Duration::from_secs(self.node.config.timeout.network_partition_timeout);
        if primary_is_partitioned(
            now,
            self.started,
            self.state.last_monitor_contact,
            self.state.last_secondary_contact,
            timeout,
        ) {
            tracing::warn!(
                timeout_s = timeout.as_secs(),
                "neither the monitor nor any standby reached: fencing this primary (demote_timeout)"
            );
            self.state.assigned_role = S::DemoteTimeout;
            self.fencing = true;
        }
    }

    /// Makes Postgres do what the current state expects.
    async fn ensure_current_state(&mut self) -> CliResult<()> {
        let current = self.state.current_role;
        match expected_postgres(current) {
            PostgresExpectation::RunningPrimary | PostgresExpectation::RunningStandby => {
                if self.node.server.is_running() {
                    self.restarts.recovered();
                    self.down_since = None;
                } else if !self.restart_is_due().await {
                    return Ok(());
                } else {
                    tracing::warn!(state = %current, "Postgres is not running: starting it");
                    match self.node.server.start().await {
                        Ok(()) => {
                            self.restarts.recovered();
                            self.down_since = None;
                        }
                        Err(e) => {
                            self.restarts.failed(Instant::now());
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

    /// Whether to start Postgres, found down, now ([`restart_is_due`]): a Postgres someone
    /// else shut down cleanly is left down for [`OPERATOR_STOP_GRACE`] first.
    async fn restart_is_due(&mut self) -> bool {
        let now = Instant::now();
        let first_seen = self.down_since.is_none();
        let down_since = *self.down_since.get_or_insert(now);
        if !self.node.server.stopped_behind_our_back() {
            return true;
        }
        let clean = match self.node.bin().controldata(self.node.pgdata()).await {
            Ok(data) => data.cluster_state.starts_with("shut down"),
            Err(_) => false,
        };
        if clean && first_seen {
            tracing::warn!(
                state = %self.state.current_role,
                grace_s = OPERATOR_STOP_GRACE.as_secs(),
                "Postgres was shut down by someone else: starting it again after the grace period \
                 (to keep it stopped, use pg_autoctl stop or maintenance)"
            );
        }
        restart_is_due(clean, down_since, now)
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
