//! `pg_autoctl create monitor`: a Postgres server with the pgautofailover extension, its
//! database `pg_auto_failover`, roles and HBA rules for the keepers.
//!
//! The database belongs to the superuser running the monitor, not to a role anybody logs in
//! as; 2.0's role `autoctl` is kept for compatibility, without login and owning nothing. A
//! `create` that fails undoes what it made ([`super::undo`]).

use std::time::Duration;

use fsm::vocab::Host;

use super::create_postgres::{auth_choice, check_pgdata_owner, self_signed_files, ssl_choice};
use super::undo::Undo;
use super::{pgdata_of, refuse_root};
use crate::cli::CreateMonitorArgs;
use crate::config::{Config, Postgres, Role, Timeouts};
use crate::exit::{CliError, CliResult, Exit};
use crate::netinfo;
use crate::node_setup::NodeContext;
use crate::paths::NodePaths;
use crate::postgres::hba::Address;
use crate::postgres::local::LocalPg;
use crate::postgres::pgdata::{self, PgdataContents};
use crate::postgres::programs::PgBin;
use crate::postgres::server::StopMode;
use crate::service;

/// Runs `create monitor`.
pub async fn run(a: CreateMonitorArgs) -> CliResult<()> {
    refuse_root()?;
    let pgdata = pgdata_of(&a.pgdata)?;
    let paths = NodePaths::from_env(&pgdata)?;
    if paths.config.exists() {
        let config = Config::load_for(&paths)?;
        if config.role != Role::Monitor {
            return Err(CliError::bad_args(format!(
                "{} already belongs to a pg_autoctl {} node",
                paths.pgdata.display(),
                config.role.as_str()
            )));
        }
        eprintln!(
            "The monitor at {} was already created.",
            paths.pgdata.display()
        );
        return if a.run {
            service::run(paths, config).await
        } else {
            Ok(())
        };
    }
    let bin = PgBin::find(a.pgctl.as_deref())?;
    let (auth_method, hba_level) = auth_choice(&a.auth)?;
    let mut ssl = ssl_choice(&a.ssl)?;
    self_signed_files(&mut ssl, &a.ssl, &paths.pgdata);
    check_pgdata_owner(&paths.pgdata)?;
    let contents = pgdata::inspect(&paths.pgdata)
        .map_err(|e| CliError::bad_args(format!("cannot read {}: {e}", paths.pgdata.display())))?;
    if contents == PgdataContents::NotACluster {
        return Err(CliError::bad_args(format!(
            "{} is not empty and holds no Postgres database",
            paths.pgdata.display()
        ))
        .hint("Use an empty or missing directory for --pgdata."));
    }
    let hostname = a.hostname.clone().unwrap_or_else(|| {
        netinfo::local_ip_towards("192.0.2.1", 5432)
            .map(|ip| ip.to_string())
            .unwrap_or_else(netinfo::hostname)
    });
    let host = Host::parse(&hostname)
        .map_err(|e| CliError::bad_args(e.for_field("--hostname").to_string()))?;
    let config = Config {
        role: Role::Monitor,
        monitor: None,
        formation: "monitor".to_string(),
        group: 0,
        name: "monitor".to_string(),
        hostname: hostname.clone(),
        pg: Postgres {
            pgdata: paths.pgdata.clone(),
            pg_ctl: bin.pg_ctl(),
            username: crate::os_user::current_user_name(),
            dbname: "pg_auto_failover".to_string(),
            host: a.pghost.clone().unwrap_or_default(),
            port: a.pgport,
            listen_addresses: a.listen.clone(),
            auth_method,
            hba_level,
        },
        ssl,
        replication_password: None,
        maximum_backup_rate: "100M".to_string(),
        backup_directory: None,
        timeout: Timeouts::default(),
    };
    config.check()?;
    let mut node = NodeContext::new(paths.clone(), config.clone())?;
    let was_running = matches!(contents, PgdataContents::Running(_));
    let mut undo = Undo::new(&paths, contents == PgdataContents::Empty);
    let made = make_monitor(&mut node, &mut undo, &host, was_running).await;
    if let Err(e) = made {
        undo.rollback(&mut node).await;
        return Err(e);
    }
    println!(
        "{}",
        crate::node_setup::local_monitor_uri(&node.config).to_uri_string()
    );
    if a.run {
        node.drop_local();
        return service::run(paths, node.config).await;
    }
    node.drop_local();
    if !was_running {
        node.server
            .stop(StopMode::Fast, Duration::from_secs(60))
            .await?;
    }
    Ok(())
}

/// The steps of `create monitor` that may fail, each noted in `undo` once done.
async fn make_monitor(
    node: &mut NodeContext,
    undo: &mut Undo,
    host: &Host,
    was_running: bool,
) -> CliResult<()> {
    if undo.initialises_pgdata() {
        undo.initdb_started();
        node.initdb().await?;
    }
    node.write_settings().await?;
    let address = match host.ip() {
        Some(ip) => Address::Network(netinfo::network_of(ip)),
        None => match netinfo::local_ip_towards(&host.to_string(), node.config.pg.port) {
            Some(ip) => Address::Network(netinfo::network_of(ip)),
            None => Address::Host(host.clone()),
        },
    };
    node.ensure_hba(&node.keeper_rules(address)?)?;
    if was_running {
        node.server.restart().await?;
    } else {
        undo.postgres_started();
        node.server.start().await?;
    }
    install_extension(node).await?;
    node.config.save(&node.paths.config)
}

/// Creates the role `autoctl` (2.0's, kept without login), the database `pg_auto_failover`
/// (owned by the superuser running the monitor) and the extension in it.
async fn install_extension(node: &mut NodeContext) -> CliResult<()> {
    let local = node.local().await?;
    local
        .execute(
            "DO $$ BEGIN \
               IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'autoctl') THEN \
                 CREATE ROLE autoctl WITH NOLOGIN; \
               END IF; END $$",
        )
        .await?;
    local.ensure_database("pg_auto_failover").await?;
    let pg = &node.config.pg;
    let db = LocalPg::connect(
        &pg.pgdata,
        &pg.host,
        pg.port,
        &pg.username,
        "pg_auto_failover",
        Some(&node.paths.passfile),
    )
    .await?;
    db.execute("CREATE EXTENSION IF NOT EXISTS pgautofailover CASCADE")
        .await
        .map_err(|e| {
            CliError::new(Exit::ExtensionMissing, e.message).hint(
                "Install the pgautofailover extension into this Postgres (make install) first.",
            )
        })
}
