//! `pg_autoctl create postgres`: register a Postgres node with the monitor and set it up as
//! the monitor says — a new primary (initdb), a standby (copied later by the service), or an
//! existing database taken over as it is.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use fsm::ReplicationState as S;

use super::undo::Undo;
use super::{pgdata_of, refuse_root};
use crate::cli::{AuthArgs, CreatePostgresArgs, SslArgs};
use crate::config::{AuthMethod, Config, HbaLevel, Postgres, Role, Ssl, Timeouts};
use crate::exit::{CliError, CliResult};
use crate::monitor::uri::PgUri;
use crate::monitor::{Monitor, MonitorError, Registration};
use crate::netinfo;
use crate::paths::NodePaths;
use crate::postgres::pgdata::{self, PgdataContents};
use crate::postgres::programs::PgBin;
use crate::service;
use crate::state::KeeperState;

/// How long registration is retried while the monitor asks to wait.
const REGISTER_RETRY: Duration = Duration::from_secs(60);

/// The HBA method and level from `--auth` / `--skip-pg-hba`; one of them is required, as in
/// 2.0.
pub fn auth_choice(a: &AuthArgs) -> CliResult<(AuthMethod, HbaLevel)> {
    match (&a.auth, a.skip_pg_hba) {
        (_, true) => Ok((AuthMethod::Skip, HbaLevel::Skip)),
        (Some(method), false) => match AuthMethod::parse(method) {
            Some(AuthMethod::Skip) => Ok((AuthMethod::Skip, HbaLevel::Skip)),
            Some(method) => Ok((method, HbaLevel::Minimal)),
            None => Err(CliError::bad_args(format!(
                "unknown authentication method \"{method}\" for --auth"
            ))
            .hint(format!(
                "Use one of: {}, or --skip-pg-hba.",
                crate::postgres::hba::METHODS.join(", ")
            ))),
        },
        (None, false) => Err(CliError::bad_args(
            "please use either --auth trust|md5|scram-sha-256|... or --skip-pg-hba",
        )
        .hint("--auth is the method of the pg_hba.conf rules pg_autoctl adds for the other nodes; with --skip-pg-hba you write them yourself.")),
    }
}

/// The SSL settings from the SSL flags; an explicit choice is required, as in 2.0.
pub fn ssl_choice(a: &SslArgs) -> CliResult<Ssl> {
    let own_certs = a.server_cert.is_some() || a.server_key.is_some();
    let chosen = [a.ssl_self_signed, a.no_ssl, own_certs]
        .iter()
        .filter(|c| **c)
        .count();
    if chosen == 0 {
        return Err(CliError::bad_args("explicit SSL choice is required")
            .hint("Use --ssl-self-signed, --no-ssl, or your own certificates with --server-cert and --server-key."));
    }
    if chosen > 1 {
        return Err(CliError::bad_args(
            "--ssl-self-signed, --no-ssl and --server-cert/--server-key exclude each other",
        ));
    }
    let path =
        |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
    if a.no_ssl {
        return Ok(Ssl {
            active: false,
            sslmode: a.ssl_mode.clone().unwrap_or_else(|| "prefer".to_string()),
            ..Ssl::default()
        });
    }
    if a.ssl_self_signed {
        let mode = a.ssl_mode.clone().unwrap_or_else(|| "require".to_string());
        if matches!(mode.as_str(), "verify-ca" | "verify-full") {
            return Err(CliError::bad_args(format!(
                "--ssl-mode {mode} needs certificates signed by a CA: self-signed ones allow require at most"
            )));
        }
        return Ok(Ssl {
            active: true,
            sslmode: mode,
            ..Ssl::default()
        });
    }
    let (Some(_), Some(_)) = (&a.server_cert, &a.server_key) else {
        return Err(CliError::bad_args(
            "--server-cert and --server-key go together",
        ));
    };
    let mode = a
        .ssl_mode
        .clone()
        .unwrap_or_else(|| "verify-full".to_string());
    if matches!(mode.as_str(), "verify-ca" | "verify-full") && a.ssl_ca_file.is_none() {
        return Err(CliError::bad_args(format!(
            "--ssl-mode {mode} needs --ssl-ca-file"
        )));
    }
    Ok(Ssl {
        active: true,
        sslmode: mode,
        ca_file: path(&a.ssl_ca_file),
        crl_file: path(&a.ssl_crl_file),
        cert_file: path(&a.server_cert),
        key_file: path(&a.server_key),
    })
}

/// With --ssl-self-signed: the certificate and key live in PGDATA as `server.crt` and
/// `server.key`; the service makes them (`NodeContext::write_settings`) once PGDATA exists.
pub fn self_signed_files(ssl: &mut Ssl, a: &SslArgs, pgdata: &Path) {
    if a.ssl_self_signed {
        ssl.cert_file = Some(pgdata.join("server.crt").to_string_lossy().into_owned());
        ssl.key_file = Some(pgdata.join("server.key").to_string_lossy().into_owned());
    }
}

/// PGDATA (or its parent when missing) must belong to the user running pg_autoctl.
pub fn check_pgdata_owner(pgdata: &Path) -> CliResult<()> {
    let me = nix::unistd::geteuid().as_raw();
    let existing = pgdata.ancestors().find(|p| p.exists());
    let Some(dir) = existing else { return Ok(()) };
    let meta = std::fs::metadata(dir)
        .map_err(|e| CliError::bad_args(format!("cannot read {}: {e}", dir.display())))?;
    if dir == pgdata && meta.uid() != me {
        return Err(CliError::bad_args(format!(
            "{} belongs to another user (uid {}), not to the user running pg_autoctl (uid {me})",
            pgdata.display(),
            meta.uid()
        ))
        .hint("Run pg_autoctl as the owner of the data directory, or choose another --pgdata."));
    }
    if dir != pgdata {
        // the directory will be created: its parent must be writable
        if nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_err() {
            return Err(CliError::bad_args(format!(
                "cannot create {}: {} is not writable by this user",
                pgdata.display(),
                dir.display()
            )));
        }
    }
    Ok(())
}

/// Runs `create postgres`.
pub async fn run(a: CreatePostgresArgs) -> CliResult<()> {
    refuse_root()?;
    let pgdata = pgdata_of(&a.pgdata)?;
    let paths = NodePaths::from_env(&pgdata)?;
    if paths.state.exists() && paths.config.exists() {
        let config = Config::load_for(&paths)?;
        let state = KeeperState::load(&paths.state)?;
        eprintln!(
            "This node (id {}) was already created; its service continues from state {}.",
            state.node_id, state.current_role
        );
        return if a.run {
            service::run(paths, config).await
        } else {
            Ok(())
        };
    }
    if a.disable_monitor {
        return Err(CliError::bad_args(
            "--disable-monitor is not supported: this pg_autoctl needs a monitor",
        ));
    }
    let monitor_text = a.monitor.clone().ok_or_else(|| {
        CliError::bad_args("--monitor is required")
            .hint("Give the monitor's URI, as printed by pg_autoctl show uri on the monitor.")
    })?;
    let monitor_uri = PgUri::parse(&monitor_text).map_err(|e| {
        CliError::bad_args(format!("invalid --monitor URI: {e}"))
            .hint("Use the form postgres://autoctl_node@host:port/pg_auto_failover.")
    })?;
    let bin = PgBin::find(a.pgctl.as_deref())?;
    let (auth_method, mut hba_level) = auth_choice(&a.auth)?;
    if a.pg_hba_lan && hba_level != HbaLevel::Skip {
        // 2.0's "app" level: the application database is open to the whole LAN
        hba_level = HbaLevel::App;
    }
    let mut ssl = ssl_choice(&a.ssl)?;
    self_signed_files(&mut ssl, &a.ssl, &paths.pgdata);
    check_pgdata_owner(&paths.pgdata)?;
    let contents = pgdata::inspect(&paths.pgdata)
        .map_err(|e| CliError::bad_args(format!("cannot read {}: {e}", paths.pgdata.display())))?;
    let system_identifier = match &contents {
        PgdataContents::NotACluster => {
            return Err(CliError::bad_args(format!(
                "{} is not empty and holds no Postgres database",
                paths.pgdata.display()
            ))
            .hint("Use an empty or missing directory, or the data directory of an existing database to take over."));
        }
        PgdataContents::Running(pid) if pid.port != a.pgport => {
            return Err(CliError::bad_args(format!(
                "the Postgres running in {} listens on port {}, not on --pgport {}",
                paths.pgdata.display(),
                pid.port,
                a.pgport
            )));
        }
        PgdataContents::Empty => 0,
        _ => bin.controldata(&paths.pgdata).await?.system_identifier,
    };
    let first_host = monitor_uri
        .hosts
        .first()
        .map(|(h, p)| (h.clone(), p.unwrap_or(5432)));
    let hostname = a.hostname.clone().unwrap_or_else(|| {
        netinfo::default_node_hostname(first_host.as_ref().map(|(h, p)| (h.as_str(), *p)))
    });
    let username = a
        .username
        .clone()
        .or_else(|| std::env::var("PGUSER").ok())
        .unwrap_or_else(crate::os_user::current_user_name);
    let mut config = Config {
        role: Role::Keeper,
        monitor: Some(monitor_uri.to_uri_string()),
        formation: a.formation.clone(),
        group: a.group.unwrap_or(0),
        name: a.name.clone().unwrap_or_default(),
        hostname: hostname.clone(),
        pg: Postgres {
            pgdata: paths.pgdata.clone(),
            pg_ctl: bin.pg_ctl(),
            username,
            dbname: a.dbname.clone(),
            host: a.pghost.clone().unwrap_or_default(),
            port: a.pgport,
            listen_addresses: a.listen.clone(),
            auth_method,
            hba_level,
        },
        ssl,
        replication_password: std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()),
        maximum_backup_rate: a.maximum_backup_rate.clone(),
        backup_directory: None,
        timeout: Timeouts::default(),
    };
    // every value is checked before the monitor sees any of it
    config.check()?;

    let monitor = Monitor::connect(&monitor_uri, "pg_autoctl").await?;
    monitor.check_extension().await?;
    let registration = Registration {
        formation: &config.formation,
        host: &hostname,
        port: a.pgport,
        dbname: &a.dbname,
        name: &config.name,
        system_identifier,
        desired_group: a.group.unwrap_or(-1),
        candidate_priority: a.candidate_priority,
        replication_quorum: a.replication_quorum,
    };
    let registered = register(&monitor, &registration).await?;
    let assignment = &registered.assignment;
    let files = Undo::new(&paths, false);
    if let Err(e) = save_registration(&paths, &mut config, &registered, system_identifier) {
        // a node the monitor knows but that has no files here would wait forever
        let _ = monitor.remove_node(assignment.node_id, true).await;
        files.forget_files();
        return Err(e);
    }
    if system_identifier != 0 && assignment.state != S::Single {
        // A standby seeded from a copy of the primary's data directory (a snapshot, a
        // restored backup), as 2.0 accepts: the monitor checked that it holds the group's
        // database (same system identifier), and the keeper starts it as a standby of the
        // primary without a base backup. A copy that runs would stay a second primary.
        if matches!(contents, PgdataContents::Running(_)) {
            let _ = monitor.remove_node(assignment.node_id, true).await;
            files.forget_files();
            return Err(CliError::bad_args(format!(
                "{} holds a running copy of the database of formation \"{}\", which already has a primary",
                paths.pgdata.display(),
                config.formation
            ))
            .hint("Stop that Postgres first: a standby seeded from a copy starts from the stopped copy."));
        }
        eprintln!(
            "{} holds a copy of the group's database (system identifier {system_identifier}): it becomes a standby without a base backup.",
            paths.pgdata.display()
        );
    }
    tracing::info!(
        node = %config.name,
        formation = %config.formation,
        node_id = assignment.node_id,
        group = assignment.group_id,
        state = %assignment.state,
        "registered with the monitor"
    );
    eprintln!(
        "Node {} (id {}) registered in formation \"{}\", group {}: its first state is {}.",
        config.name, assignment.node_id, config.formation, assignment.group_id, assignment.state
    );
    // the service opens its own connection: one per keeper
    drop(monitor);
    if a.run {
        return service::run(paths, config).await;
    }
    eprintln!(
        "Run pg_autoctl run --pgdata {} to start its service.",
        paths.pgdata.display()
    );
    Ok(())
}

/// Writes the configuration and state of a node the monitor just registered.
fn save_registration(
    paths: &NodePaths,
    config: &mut Config,
    registered: &crate::monitor::Registered,
    system_identifier: u64,
) -> CliResult<()> {
    let assignment = &registered.assignment;
    config.name = registered
        .name
        .as_ref()
        .map_or(config.name.clone(), ToString::to_string);
    config.group = assignment.group_id;
    config.save(&paths.config)?;
    let mut state =
        KeeperState::registered(assignment.node_id, assignment.group_id, assignment.state);
    state.system_identifier = system_identifier;
    state.save(&paths.state)
}

/// `register_node`, retried while the monitor asks to wait (another node registering, the
/// primary not ready yet).
async fn register(
    monitor: &Monitor,
    registration: &Registration<'_>,
) -> CliResult<crate::monitor::Registered> {
    let deadline = Instant::now() + REGISTER_RETRY;
    loop {
        match monitor.register_node(registration).await {
            Ok(a) => return Ok(a),
            Err(e @ MonitorError::Refused { .. })
                if e.is_transient() && Instant::now() < deadline =>
            {
                tracing::info!(error = %e, "the monitor asks to retry registering");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssl(f: impl FnOnce(&mut SslArgs)) -> SslArgs {
        let mut a = SslArgs::default();
        f(&mut a);
        a
    }

    #[test]
    fn an_explicit_ssl_choice_is_required() {
        let err = ssl_choice(&SslArgs::default()).expect_err("no choice");
        assert!(err.message.contains("explicit SSL choice"));
        let none = ssl_choice(&ssl(|a| a.no_ssl = true)).expect("no ssl");
        assert!(!none.active);
        assert_eq!(none.sslmode, "prefer");
        let own = ssl(|a| {
            a.server_cert = Some("c".into());
            a.server_key = Some("k".into());
        });
        assert!(ssl_choice(&own).is_err(), "verify-full needs a CA file");
        let selfsigned = ssl_choice(&ssl(|a| a.ssl_self_signed = true)).expect("self signed");
        assert_eq!(selfsigned.sslmode, "require");
        assert!(
            ssl_choice(&ssl(|a| {
                a.ssl_self_signed = true;
                a.ssl_mode = Some("verify-full".into());
            }))
            .is_err()
        );
    }

    #[test]
    fn auth_or_skip_is_required() {
        let none = AuthArgs {
            auth: None,
            skip_pg_hba: false,
        };
        assert!(auth_choice(&none).is_err());
        let skip = AuthArgs {
            auth: None,
            skip_pg_hba: true,
        };
        assert_eq!(
            auth_choice(&skip).expect("skip"),
            (AuthMethod::Skip, HbaLevel::Skip)
        );
        let md5 = AuthArgs {
            auth: Some("md5".into()),
            skip_pg_hba: false,
        };
        let (method, level) = auth_choice(&md5).expect("md5");
        assert_eq!((method.as_str(), level), ("md5", HbaLevel::Minimal));
        let bad = AuthArgs {
            auth: Some("magic".into()),
            skip_pg_hba: false,
        };
        assert!(auth_choice(&bad).is_err());
    }

    #[test]
    fn a_pgdata_of_another_user_is_refused() {
        if nix::unistd::geteuid().is_root() {
            // root owns everything it creates; / is owned by root too: nothing to test
            return;
        }
        let err = check_pgdata_owner(Path::new("/")).expect_err("root's directory");
        assert!(err.message.contains("another user"));
    }
}
