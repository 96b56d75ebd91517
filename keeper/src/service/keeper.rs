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
use fsm::keeper::KeeperAction;
use fsm::keeper_loop::{
    HEARTBEAT_TIMEOUT_MS, Limits, Memory, Slots, tells_monitor_when_stopping, wake_after_ms,
};

use super::signals::{StopRequest, Stopper};
use super::turn::{self, KeeperIo, Observed, Step};
use crate::config::Config;
use crate::exit::{CliError, CliResult, Exit};
use crate::monitor::uri::PgUri;
use crate::monitor::{Heartbeat, Monitor, MonitorError, NodeAddress};
use crate::node_setup::NodeContext;
use crate::paths::NodePaths;
use crate::postgres::local::{Observation, standby_name};
use crate::postgres::server::StopMode;
use crate::state::{KeeperState, unix_now};

/// How long listing the other nodes (and applying their HBA rules and slots) may take.
const LIST_OTHERS_TIMEOUT: Duration = Duration::from_millis(HEARTBEAT_TIMEOUT_MS);

/// The keeper of one node.
pub struct Keeper {
    pub(super) node: NodeContext,
    pub(super) state: KeeperState,
    monitor_uri: PgUri,
    monitor: Option<Monitor>,
    pub(super) last_obs: Option<Observation>,
    pub(super) others: Vec<NodeAddress>,
    sysid_reported: bool,
    state_saved: KeeperState,
    /// What the keeper's own decisions remember (`fsm::keeper_loop`): lease, contacts,
    /// restarts, fencing.
    pub(super) memory: Memory,
    /// The origin of the millisecond clock of those decisions.
    epoch: Instant,
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
            sysid_reported: false,
            memory,
            epoch: Instant::now(),
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
        let seen = turn::seen(self);
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
                    self.memory.others_changed();
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
        if tells_monitor_when_stopping(self.state.current_role) {
            let last = tokio::time::timeout(Duration::from_secs(2), self.heartbeat(false)).await;
            if !matches!(last, Ok(Ok(_))) {
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

    /// One turn of the loop (`turn::step`).
    pub async fn step(&mut self) -> CliResult<Step> {
        turn::step(self).await
    }

    /// Reports to the monitor; returns the assigned state (and records the group).
    async fn heartbeat(&mut self, pg_is_running: bool) -> Result<S, MonitorError> {
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
        let assignment = self.monitor().await?.node_active(&hb).await?;
        self.state.group_id = assignment.group_id;
        Ok(assignment.state)
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

    /// Re-reads the other nodes: HBA rules for them, and the replication `slots` they need.
    async fn refresh(&mut self, slots: Slots) -> CliResult<()> {
        let node_id = self.state.node_id;
        let others = self.monitor().await?.get_other_nodes(node_id).await?;
        let now_ms = self.now_ms();
        self.memory.others_listed(now_ms);
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
        let names: Vec<String> = self
            .others
            .iter()
            .map(|o| standby_name(o.node_id))
            .collect();
        match slots {
            Slots::Untouched => {}
            Slots::ForStandbys => self.node.local().await?.sync_slots(&names).await?,
            Slots::ForPeersAdvanced => {
                let targets: Vec<(String, fsm::Lsn)> = self
                    .others
                    .iter()
                    .map(|o| (standby_name(o.node_id), o.lsn))
                    .collect();
                let local = self.node.local().await?;
                local.sync_slots(&names).await?;
                local.advance_slots(&targets).await?;
            }
        }
        Ok(())
    }
}

/// Milliseconds from `epoch` to `at`.
fn ms_since(epoch: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX)
}

/// The keeper on a server: its state, its clock, its Postgres, its monitor.
impl KeeperIo for Keeper {
    fn state(&mut self) -> &mut KeeperState {
        &mut self.state
    }

    fn memory(&mut self) -> &mut Memory {
        &mut self.memory
    }

    fn limits(&self) -> Limits {
        let t = &self.node.config.timeout;
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Limits {
            network_partition_timeout_ms: ms(t.network_partition_timeout),
            restart_max_retries: u64::from(t.postgresql_restart_failure_max_retries),
            restart_timeout_ms: ms(t.postgresql_restart_failure_timeout),
        }
    }

    fn now_ms(&self) -> u64 {
        ms_since(self.epoch, Instant::now())
    }

    fn unix_now(&self) -> u64 {
        unix_now()
    }

    async fn observe(&mut self) -> Observed {
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
        let observed = Observed {
            running,
            streaming_standbys: obs.as_ref().map_or(0, |o| o.streaming_standbys),
            sync_standbys_streaming: obs.as_ref().map_or(0, |o| o.sync_standbys_streaming),
        };
        if obs.is_some() {
            self.last_obs = obs;
        }
        observed
    }

    fn postgres_running(&mut self) -> bool {
        self.node.server.is_running()
    }

    async fn stopped_cleanly_by_someone_else(&mut self) -> bool {
        self.node.server.stopped_behind_our_back()
            && match self.node.bin().controldata(self.node.pgdata()).await {
                Ok(data) => data.cluster_state.starts_with("shut down"),
                Err(_) => false,
            }
    }

    async fn start_postgres(&mut self) -> CliResult<()> {
        self.node.server.start().await
    }

    async fn stop_postgres(&mut self) -> CliResult<()> {
        self.node.drop_local();
        self.node
            .server
            .stop(StopMode::Fast, Duration::from_secs(60))
            .await
    }

    async fn run_action(&mut self, action: KeeperAction) -> CliResult<()> {
        Keeper::run_action(self, action).await
    }

    async fn follow_if_primary_changed(&mut self) -> CliResult<()> {
        Keeper::follow_if_primary_changed(self).await
    }

    async fn report(&mut self, pg_is_running: bool, timeout_ms: u64) -> Result<S, MonitorError> {
        let timeout = Duration::from_millis(timeout_ms);
        let answer = tokio::time::timeout(timeout, self.heartbeat(pg_is_running))
            .await
            .unwrap_or_else(|_| {
                Err(MonitorError::Lost(format!(
                    "no answer within {timeout_ms} ms"
                )))
            });
        if answer.as_ref().is_err_and(MonitorError::is_transient) {
            self.monitor = None;
        }
        answer
    }

    async fn refresh_others(&mut self, slots: Slots) -> CliResult<()> {
        match tokio::time::timeout(LIST_OTHERS_TIMEOUT, self.refresh(slots)).await {
            Ok(result) => result,
            Err(_) => {
                self.monitor = None;
                Err(CliError::new(
                    Exit::Monitor,
                    "the monitor did not list the other nodes in time",
                ))
            }
        }
    }

    fn saved_state(&self) -> &KeeperState {
        &self.state_saved
    }

    fn save_state(&mut self) -> CliResult<()> {
        self.state.save(&self.node.paths.state)?;
        self.state_saved = self.state.clone();
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
