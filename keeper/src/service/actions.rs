//! The keeper's actions: what each named step of the transition table (`fsm::keeper`) does to
//! Postgres. Each one converges on its target whatever the exact starting point, so a keeper
//! that crashed half-way through one simply runs it again.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fsm::keeper::KeeperAction;

use super::keeper::Keeper;
use crate::exit::{CliError, CliResult, Exit};
use crate::monitor::NodeAddress;
use crate::postgres::conf::{self, Upstream};
use crate::postgres::local::{REPLICATION_ROLE, standby_name};
use crate::postgres::pgdata::{self, PgdataContents};
use crate::postgres::server::StopMode;
use crate::state::unix_now;

/// Settings a copy of another node's data brings along in postgresql.auto.conf that must not
/// apply here.
const FOREIGN_AUTO_SETTINGS: &[&str] =
    &["synchronous_standby_names", "default_transaction_read_only"];

/// How long a fast shutdown of a demoted node may take before it becomes an immediate one.
const DEMOTE_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a fast-forward may take to fetch the missing WAL.
const FAST_FORWARD_TIMEOUT: Duration = Duration::from_secs(60);

impl Keeper {
    /// Runs `action`.
    pub(super) async fn run_action(&mut self, action: KeeperAction) -> CliResult<()> {
        use KeeperAction as A;
        match action {
            A::Nothing | A::PrepareSecondary | A::ReleaseForMaintenance => Ok(()),
            A::InitPrimary => self.init_primary().await,
            A::BecomeSingle => self.become_single().await,
            A::InitStandby => self.init_standby().await,
            A::InitFromPeer => self.init_from_peer().await,
            A::FollowPrimary => self.follow_primary().await,
            A::RewindOrInit => self.rewind_or_init().await,
            A::EnableSyncRep => self.enable_sync_rep().await,
            A::DisableSyncRep => self.set_sync_standby_names("").await,
            A::StopPostgres | A::Drop => self.stop_postgres().await,
            A::StartPostgres => self.node.server.start().await,
            A::StopReplication => self.stop_replication().await,
            A::OpenForWrites => self.open_for_writes().await,
            A::PromoteAndOpen => {
                self.stop_replication().await?;
                self.open_for_writes().await
            }
            A::StopPrimaryForMaintenance => {
                if self.node.server.is_running() {
                    self.node.local().await?.checkpoint().await?;
                }
                self.stop_postgres().await
            }
            A::SetupStandbyForMaintenance => {
                self.stop_postgres().await?;
                // a manual start must not bring up a second primary
                self.write_standby(None).map(|_| ())
            }
            A::ReportLsn => self.report_lsn().await,
            A::FastForward => self.fast_forward().await,
            A::StopFastForward => {
                self.write_standby(None)?;
                self.node.local().await?.reload().await
            }
            A::CheckpointAndStop => {
                if self.node.server.is_running() {
                    self.node.local().await?.checkpoint().await?;
                }
                self.stop_postgres().await
            }
        }
    }

    /// Stops Postgres. When the keeper fences itself (no monitor, no standby) it stops at
    /// once (immediate): a fast shutdown would wait for standbys it cannot reach to confirm
    /// the shutdown checkpoint (up to `wal_sender_timeout`). Otherwise a fast shutdown, which
    /// lets the old primary be rewound without crash recovery, escalated to immediate when it
    /// takes longer than `DEMOTE_STOP_TIMEOUT`.
    async fn stop_postgres(&mut self) -> CliResult<()> {
        self.node.drop_local();
        let mode = if self.memory.stop_at_once() {
            StopMode::Immediate
        } else {
            StopMode::Fast
        };
        self.node.server.stop(mode, DEMOTE_STOP_TIMEOUT).await
    }

    /// init → single: a new primary from an empty PGDATA, or the existing database as it is.
    async fn init_primary(&mut self) -> CliResult<()> {
        let pgdata = self.node.pgdata().to_path_buf();
        match pgdata::inspect(&pgdata).map_err(|e| io_error(&pgdata, e))? {
            PgdataContents::Empty => self.node.initdb().await?,
            PgdataContents::NotACluster => {
                return Err(CliError::new(
                    Exit::Pgctl,
                    format!(
                        "{} is not empty and holds no Postgres database",
                        pgdata.display()
                    ),
                ));
            }
            PgdataContents::Stopped | PgdataContents::Running(_) => {}
        }
        self.node.write_settings().await?;
        self.ensure_own_hba()?;
        self.become_single().await?;
        let password = self.node.config.replication_password.clone();
        let dbname = self.node.config.pg.dbname.clone();
        let local = self.node.local().await?;
        local.ensure_roles(password.as_deref()).await?;
        local.ensure_database(&dbname).await?;
        Ok(())
    }

    /// HBA rules for this node's own database user, and for the monitor's health checks.
    fn ensure_own_hba(&self) -> CliResult<()> {
        let config = &self.node.config;
        let lan = (config.pg.hba_level == crate::config::HbaLevel::App)
            .then(|| crate::netinfo::local_ip_towards(&config.hostname, config.pg.port))
            .flatten()
            .map(crate::netinfo::network_of);
        let rules = crate::node_setup::own_hba_rules(config, lan)?;
        self.node.ensure_hba(&rules).map(|_| ())
    }

    /// Runs Postgres as a writable primary without synchronous replication.
    async fn become_single(&mut self) -> CliResult<()> {
        self.promote_if_standby().await?;
        self.allow_writes().await
    }

    /// Starts Postgres, promotes it when it runs as a standby, and removes the standby
    /// settings so that it starts as a primary from now on.
    async fn promote_if_standby(&mut self) -> CliResult<()> {
        self.node.server.start().await?;
        let local = self.node.local().await?;
        if local.observe().await?.in_recovery {
            tracing::info!("promoting Postgres");
            local.promote().await?;
        }
        conf::clear_standby(self.node.pgdata()).map_err(|e| io_error(self.node.pgdata(), e))
    }

    /// No synchronous replication (no standby to wait for yet), writes allowed.
    async fn allow_writes(&mut self) -> CliResult<()> {
        let local = self.node.local().await?;
        local.set_system("synchronous_standby_names", "").await?;
        local
            .set_system("default_transaction_read_only", "off")
            .await
    }

    /// wait_standby → catchingup: copy the primary, then stream from it.
    async fn init_standby(&mut self) -> CliResult<()> {
        let primary = self.primary().await?;
        let pgdata = self.node.pgdata().to_path_buf();
        match pgdata::inspect(&pgdata).map_err(|e| io_error(&pgdata, e))? {
            PgdataContents::Empty => self.base_backup(&primary).await?,
            PgdataContents::NotACluster => {
                return Err(CliError::new(
                    Exit::Pgctl,
                    format!(
                        "{} is not empty and holds no Postgres database: pg_autoctl will not overwrite it",
                        pgdata.display()
                    ),
                ));
            }
            PgdataContents::Stopped | PgdataContents::Running(_) => {
                // a copy made before a crash of ours: keep it when it is of the same database
                let ours = self
                    .node
                    .bin()
                    .controldata(&pgdata)
                    .await?
                    .system_identifier;
                let theirs = self
                    .monitor()
                    .await?
                    .node_system_identifier(primary.node_id)
                    .await?;
                if theirs != Some(ours) {
                    return Err(CliError::new(
                        Exit::Pgctl,
                        format!(
                            "{} holds another database (system identifier {ours}) than the primary's: pg_autoctl will not overwrite it",
                            pgdata.display()
                        ),
                    )
                    .hint("Move that directory away, then the keeper makes a fresh copy."));
                }
            }
        }
        self.prepare_copied_data().await?;
        self.write_standby(Some(&primary))?;
        self.node.server.start().await
    }

    /// The most advanced other node of this group reporting its LSN, as the monitor ranks
    /// them; `missing` is the error when there is none.
    async fn most_advanced_standby(&mut self, missing: &str) -> CliResult<NodeAddress> {
        let formation = self.node.config.formation.clone();
        let group = self.state.group_id;
        let me = self.state.node_id;
        self.monitor()
            .await?
            .most_advanced_reporting(&formation, group, me)
            .await?
            .ok_or_else(|| CliError::new(Exit::Monitor, missing))
    }

    /// init → report_lsn during an election: copy the most advanced other node, then wait
    /// without an upstream.
    async fn init_from_peer(&mut self) -> CliResult<()> {
        let pgdata = self.node.pgdata().to_path_buf();
        if pgdata::inspect(&pgdata).map_err(|e| io_error(&pgdata, e))? == PgdataContents::Empty {
            let source = self
                .most_advanced_standby("no node to copy the data from")
                .await?;
            self.base_backup(&source).await?;
            self.prepare_copied_data().await?;
        }
        self.write_standby(None)?;
        self.node.server.start().await
    }

    /// Streams from the current primary (rewinding first when this node was a primary).
    async fn follow_primary(&mut self) -> CliResult<()> {
        if self.node.server.is_running() && !self.node.local().await?.observe().await?.in_recovery {
            return self.rewind_or_init().await;
        }
        let primary = self.primary().await?;
        let changed = self.write_standby(Some(&primary))?;
        if self.node.server.is_running() {
            if changed {
                self.node.local().await?.reload().await?;
            }
            Ok(())
        } else {
            self.node.server.start().await
        }
    }

    /// In catchingup or secondary: follow the new primary when it changed.
    pub(super) async fn follow_if_primary_changed(&mut self) -> CliResult<()> {
        let Some(primary) = self.others.iter().find(|o| o.is_primary).cloned() else {
            return Ok(());
        };
        let wanted = conf::conninfo(&self.upstream(&primary, true)?);
        if conf::current_conninfo(self.node.pgdata()).as_deref() != Some(wanted.as_str()) {
            tracing::info!(primary = %primary.name, "following the new primary");
            self.follow_primary().await?;
        }
        Ok(())
    }

    /// A former primary (or a node back from maintenance) rejoins as a standby.
    async fn rewind_or_init(&mut self) -> CliResult<()> {
        let primary = self.primary().await?;
        if self.node.server.is_running() && self.node.local().await?.observe().await?.in_recovery {
            // already a standby: only the upstream may change
            let changed = self.write_standby(Some(&primary))?;
            if changed {
                self.node.local().await?.reload().await?;
            }
            return Ok(());
        }
        self.stop_postgres().await?;
        let pgdata = self.node.pgdata().to_path_buf();
        let rewound = match pgdata::inspect(&pgdata).map_err(|e| io_error(&pgdata, e))? {
            PgdataContents::Stopped => match self.rewind(&primary).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e.message, "pg_rewind failed: copying the primary instead");
                    false
                }
            },
            _ => false,
        };
        if !rewound {
            self.move_aside(&pgdata)?;
            self.base_backup(&primary).await?;
        }
        self.prepare_copied_data().await?;
        self.write_standby(Some(&primary))?;
        self.node.server.start().await
    }

    async fn rewind(&mut self, primary: &NodeAddress) -> CliResult<()> {
        let upstream = self.upstream(primary, false)?;
        let source = format!(
            "{} dbname={}",
            conf::conninfo(&upstream),
            conf::conninfo_value(&self.node.config.pg.dbname)
        );
        // A just-promoted primary writes its new timeline to pg_control only at its next
        // checkpoint; before that pg_rewind sees both on the same timeline and rewinds nothing.
        self.checkpoint_source(primary).await?;
        tracing::info!(primary = %primary.name, "pg_rewind");
        let mut cmd = self.node.bin().command("pg_rewind");
        cmd.arg("--target-pgdata")
            .arg(self.node.pgdata())
            .arg("--source-server")
            .arg(&source);
        crate::postgres::programs::run_command("pg_rewind", cmd)
            .await
            .map(|_| ())
    }

    /// Runs CHECKPOINT on `node` as the replication user (a superuser).
    async fn checkpoint_source(&self, node: &NodeAddress) -> CliResult<()> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(node.host.to_string())
            .port(node.port)
            .user(REPLICATION_ROLE)
            .dbname(&self.node.config.pg.dbname)
            .application_name("pg_autoctl")
            .options("-c search_path=pg_catalog")
            .connect_timeout(Duration::from_secs(10));
        if let Some(password) = &self.node.config.replication_password {
            // in memory only: never on a command line nor in an environment
            config.password(password);
        }
        let failed = |message: String| {
            CliError::new(
                Exit::Pgsql,
                format!("CHECKPOINT on {} before pg_rewind: {message}", node.name),
            )
        };
        let (client, _) = crate::db::connect(&config)
            .await
            .map_err(|e| failed(e.report().message))?;
        client
            .batch_execute("CHECKPOINT")
            .await
            .map_err(|e| failed(crate::db::report(&e).message))
    }

    /// Moves a data directory that is about to be replaced next to the backups, so that no
    /// data is ever deleted by the keeper.
    fn move_aside(&self, pgdata: &Path) -> CliResult<()> {
        if pgdata::inspect(pgdata).map_err(|e| io_error(pgdata, e))? == PgdataContents::Empty {
            return Ok(());
        }
        let target = self.backup_dir().join(format!(
            "node_{}.replaced.{}",
            self.state.node_id,
            unix_now()
        ));
        if let Some(parent) = target.parent() {
            crate::fsutil::create_private_dir(parent).map_err(|e| io_error(parent, e))?;
        }
        tracing::warn!(from = %pgdata.display(), to = %target.display(), "keeping the replaced data directory");
        std::fs::rename(pgdata, &target).map_err(|e| io_error(pgdata, e))
    }

    /// Where copies are made before they replace PGDATA: 2.0's `PGDATA/../backup`.
    fn backup_dir(&self) -> PathBuf {
        self.node
            .config
            .backup_directory
            .clone()
            .unwrap_or_else(|| {
                self.node
                    .pgdata()
                    .parent()
                    .unwrap_or_else(|| Path::new("/"))
                    .join("backup")
            })
    }

    /// Copies `source` with pg_basebackup into a temporary directory, then puts it in place
    /// of the (empty or missing) PGDATA.
    async fn base_backup(&mut self, source: &NodeAddress) -> CliResult<()> {
        let pgdata = self.node.pgdata().to_path_buf();
        let tmp = self
            .backup_dir()
            .join(format!("node_{}.copy", self.state.node_id));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io_error(&tmp, e))?;
        }
        if let Some(parent) = tmp.parent() {
            crate::fsutil::create_private_dir(parent).map_err(|e| io_error(parent, e))?;
        }
        tracing::info!(source = %source.name, host = %source.host, port = source.port, "pg_basebackup");
        let started = Instant::now();
        let passfile = self.node.ensure_passfile()?;
        let mut cmd = self.node.bin().command("pg_basebackup");
        cmd.arg("--pgdata")
            .arg(&tmp)
            .arg(format!("--host={}", source.host))
            .arg(format!("--port={}", source.port))
            .arg(format!("--username={REPLICATION_ROLE}"))
            .args(["--wal-method=stream", "--checkpoint=fast", "--no-password"])
            .arg(format!(
                "--max-rate={}",
                self.node.config.maximum_backup_rate
            ))
            .env("PGAPPNAME", standby_name(self.state.node_id))
            .env("PGSSLMODE", &self.node.config.ssl.sslmode)
            .env("PGCONNECT_TIMEOUT", "10");
        if let Some(ca) = &self.node.config.ssl.ca_file {
            cmd.env("PGSSLROOTCERT", ca);
        }
        if let Some(crl) = &self.node.config.ssl.crl_file {
            cmd.env("PGSSLCRL", crl);
        }
        if let Some(path) = passfile {
            cmd.env("PGPASSFILE", path);
        }
        crate::postgres::programs::run_command("pg_basebackup", cmd).await?;
        if pgdata.exists() {
            // empty (checked by the callers): replace it, keeping nothing
            std::fs::remove_dir(&pgdata).map_err(|e| io_error(&pgdata, e))?;
        }
        std::fs::rename(&tmp, &pgdata).map_err(|e| io_error(&pgdata, e))?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "copy done"
        );
        Ok(())
    }

    /// After copying or rewinding from another node: our own settings (port...), none of
    /// the source's synchronous replication or read-only settings, no leftover pid file.
    async fn prepare_copied_data(&mut self) -> CliResult<()> {
        let pgdata = self.node.pgdata().to_path_buf();
        self.node.write_settings().await?;
        let auto = pgdata.join("postgresql.auto.conf");
        if let Ok(text) = std::fs::read_to_string(&auto) {
            let kept: Vec<&str> = text
                .lines()
                .filter(|line| {
                    let name = line.split('=').next().unwrap_or("").trim();
                    !FOREIGN_AUTO_SETTINGS.contains(&name)
                })
                .collect();
            let mut out = kept.join("\n");
            out.push('\n');
            crate::fsutil::write_atomically(&auto, out.as_bytes(), 0o600)
                .map_err(|e| io_error(&auto, e))?;
        }
        self.state.system_identifier = 0;
        Ok(())
    }

    /// Writes the standby file for `upstream` (or none); returns whether it changed.
    fn write_standby(&self, upstream: Option<&NodeAddress>) -> CliResult<bool> {
        let up = upstream.map(|u| self.upstream(u, true)).transpose()?;
        conf::write_standby(self.node.pgdata(), up.as_ref())
            .map_err(|e| io_error(self.node.pgdata(), e))
    }

    /// How this node streams from `node`: its password, if any, through the password file.
    pub(super) fn upstream(&self, node: &NodeAddress, with_slot: bool) -> CliResult<Upstream> {
        let config = &self.node.config;
        Ok(Upstream {
            host: node.host.clone(),
            port: node.port,
            user: REPLICATION_ROLE.to_string(),
            passfile: self.node.ensure_passfile()?,
            application_name: standby_name(self.state.node_id),
            slot_name: with_slot.then(|| standby_name(self.state.node_id)),
            sslmode: config.ssl.sslmode.clone(),
            ssl_ca_file: config.ssl.ca_file.clone(),
            ssl_crl_file: config.ssl.crl_file.clone(),
        })
    }

    /// The group's primary, from the monitor.
    async fn primary(&mut self) -> CliResult<NodeAddress> {
        let formation = self.node.config.formation.clone();
        let group = self.state.group_id;
        self.monitor()
            .await?
            .get_primary(&formation, group)
            .await?
            .ok_or_else(|| {
                CliError::new(
                    Exit::Monitor,
                    format!("the monitor knows no primary in group {group} of formation \"{formation}\" yet"),
                )
            })
    }

    /// → primary: apply the monitor's synchronous_standby_names.
    async fn enable_sync_rep(&mut self) -> CliResult<()> {
        let formation = self.node.config.formation.clone();
        let group = self.state.group_id;
        let names = self
            .monitor()
            .await?
            .synchronous_standby_names(&formation, group)
            .await?;
        self.set_sync_standby_names(&names).await
    }

    async fn set_sync_standby_names(&mut self, names: &str) -> CliResult<()> {
        tracing::info!(synchronous_standby_names = names, "replication settings");
        self.node
            .local()
            .await?
            .set_system("synchronous_standby_names", names)
            .await
    }

    /// prepare_promotion → stop_replication: new transactions read-only, then promote.
    async fn stop_replication(&mut self) -> CliResult<()> {
        self.node.server.start().await?;
        self.node
            .local()
            .await?
            .set_system("default_transaction_read_only", "on")
            .await?;
        self.promote_if_standby().await
    }

    /// stop_replication → wait_primary: slots for the other nodes, no synchronous
    /// replication yet, writes allowed.
    async fn open_for_writes(&mut self) -> CliResult<()> {
        let node_id = self.state.node_id;
        let others = self.monitor().await?.get_other_nodes(node_id).await?;
        let slots: Vec<String> = others.iter().map(|o| standby_name(o.node_id)).collect();
        self.others = others;
        self.promote_if_standby().await?;
        self.node.local().await?.sync_slots(&slots).await?;
        self.allow_writes().await
    }

    /// → report_lsn: Postgres runs as a standby that streams from nobody, so that its last
    /// received LSN is final.
    async fn report_lsn(&mut self) -> CliResult<()> {
        let running = self.node.server.is_running();
        let primary_running = running && !self.node.local().await?.observe().await?.in_recovery;
        if primary_running {
            self.stop_postgres().await?;
        }
        let changed = self.write_standby(None)?;
        if self.node.server.is_running() {
            if changed {
                self.node.local().await?.reload().await?;
            }
        } else {
            self.node.server.start().await?;
        }
        Ok(())
    }

    /// report_lsn → fast_forward: stream the missing WAL from the most advanced standby.
    async fn fast_forward(&mut self) -> CliResult<()> {
        let source = self
            .most_advanced_standby("no standby to fast-forward from")
            .await?;
        let upstream = self.upstream(&source, false)?;
        conf::write_standby(self.node.pgdata(), Some(&upstream))
            .map_err(|e| io_error(self.node.pgdata(), e))?;
        self.node.server.start().await?;
        self.node.local().await?.reload().await?;
        let deadline = Instant::now() + FAST_FORWARD_TIMEOUT;
        loop {
            if self
                .node
                .local()
                .await?
                .replayed_up_to(&source.lsn.to_string())
                .await?
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(CliError::new(
                    Exit::Keeper,
                    format!(
                        "did not receive WAL up to {} from {} in time",
                        source.lsn, source.name
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn io_error(path: &Path, e: std::io::Error) -> CliError {
    CliError::new(Exit::Pgctl, format!("{}: {e}", path.display())).caused_by(e)
}
