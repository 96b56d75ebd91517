//! One Postgres node as pg_autoctl manages it: its configuration, programs, server process and
//! a lazily opened SQL connection, with the set-up steps shared by `create` and the service
//! (initdb, our settings file, HBA rules).

use std::path::Path;

use crate::config::{Config, Role};
use crate::exit::{CliError, CliResult, Exit};
use crate::paths::NodePaths;
use crate::postgres::conf::{self, NodeSettings, SslFiles};
use crate::postgres::hba::{self, HbaRule};
use crate::postgres::local::LocalPg;
use crate::postgres::programs::PgBin;
use crate::postgres::server::PostgresServer;

/// A node's configuration and running parts.
pub struct NodeContext {
    /// Its files.
    pub paths: NodePaths,
    /// Its configuration.
    pub config: Config,
    /// Its Postgres server.
    pub server: PostgresServer,
    local: Option<LocalPg>,
}

impl NodeContext {
    /// The node described by `config`.
    pub fn new(paths: NodePaths, config: Config) -> CliResult<NodeContext> {
        let bin = PgBin::from_pg_ctl(&config.pg.pg_ctl)?;
        let server = PostgresServer::new(bin, &config.pg.pgdata);
        Ok(NodeContext {
            paths,
            config,
            server,
            local: None,
        })
    }

    /// PGDATA.
    pub fn pgdata(&self) -> &Path {
        &self.config.pg.pgdata
    }

    /// The programs.
    pub fn bin(&self) -> &PgBin {
        self.server.bin()
    }

    /// A SQL connection to the local Postgres (database `postgres`), opened when needed.
    pub async fn local(&mut self) -> CliResult<&LocalPg> {
        let fresh = match &self.local {
            Some(l) => l.is_closed(),
            None => true,
        };
        if fresh {
            self.local = None;
            let pg = &self.config.pg;
            let connection =
                LocalPg::connect(&pg.pgdata, &pg.host, pg.port, &pg.username, "postgres").await?;
            self.local = Some(connection);
        }
        self.local
            .as_ref()
            .ok_or_else(|| CliError::new(Exit::Internal, "no local connection"))
    }

    /// Forgets the SQL connection (after Postgres stopped).
    pub fn drop_local(&mut self) {
        self.local = None;
    }

    /// What goes in our settings file.
    pub fn settings(&self) -> NodeSettings {
        let ssl = &self.config.ssl;
        NodeSettings {
            port: self.config.pg.port,
            listen_addresses: self.config.pg.listen_addresses.clone(),
            monitor: self.config.role == Role::Monitor,
            socket_directories: std::env::var("PG_REGRESS_SOCK_DIR").ok(),
            ssl: match (ssl.active, &ssl.cert_file, &ssl.key_file) {
                (true, Some(cert), Some(key)) => Some(SslFiles {
                    cert_file: cert.clone(),
                    key_file: key.clone(),
                    ca_file: ssl.ca_file.clone(),
                    crl_file: ssl.crl_file.clone(),
                }),
                _ => None,
            },
        }
    }

    /// Writes our settings file into PGDATA and includes it from postgresql.conf; makes the
    /// self-signed certificate first when SSL needs it.
    pub async fn write_settings(&self) -> CliResult<()> {
        self.ensure_self_signed_certificate().await?;
        conf::write_settings(self.pgdata(), &self.settings()).map_err(|e| {
            CliError::new(
                Exit::Pgctl,
                format!(
                    "cannot write the Postgres settings in {}: {e}",
                    self.pgdata().display()
                ),
            )
        })
    }

    /// With `--ssl-self-signed` the configuration names `server.crt` and `server.key` in
    /// PGDATA (and no CA): make them with openssl when missing. Files the user named
    /// elsewhere are never made up.
    async fn ensure_self_signed_certificate(&self) -> CliResult<()> {
        let ssl = &self.config.ssl;
        let cert = self.pgdata().join("server.crt");
        let key = self.pgdata().join("server.key");
        let self_signed = ssl.active
            && ssl.ca_file.is_none()
            && ssl.cert_file.as_deref() == Some(&*cert.to_string_lossy())
            && ssl.key_file.as_deref() == Some(&*key.to_string_lossy());
        if !self_signed || (cert.exists() && key.exists()) {
            return Ok(());
        }
        let mut cmd = tokio::process::Command::new("openssl");
        cmd.args(["req", "-new", "-x509", "-days", "3650", "-nodes", "-out"])
            .arg(&cert)
            .arg("-keyout")
            .arg(&key)
            .arg("-subj")
            .arg(format!("/CN={}", self.config.hostname));
        crate::postgres::programs::run_command("openssl", cmd).await?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| CliError::new(Exit::Pgctl, format!("{}: {e}", key.display())))
    }

    /// Runs initdb on the empty PGDATA.
    pub async fn initdb(&self) -> CliResult<()> {
        let pg = &self.config.pg;
        let os_user = crate::commands::current_user_name();
        let local_auth = if pg.username.is_empty() || pg.username == os_user {
            "peer"
        } else {
            "trust"
        };
        let host_auth = match pg.auth_method.as_str() {
            "" | "skip" => "scram-sha-256",
            method => method,
        };
        let mut args = vec![
            "-D".to_string(),
            pg.pgdata.to_string_lossy().into_owned(),
            "--encoding=UTF8".to_string(),
            format!("--auth-local={local_auth}"),
            format!("--auth-host={host_auth}"),
            "--no-instructions".to_string(),
        ];
        if !pg.username.is_empty() {
            args.push(format!("--username={}", pg.username));
        }
        tracing::info!(pgdata = %pg.pgdata.display(), "initdb");
        self.bin().run("initdb", &args).await.map(|_| ())
    }

    /// Adds the missing `rules` to pg_hba.conf (unless HBA editing is skipped); returns
    /// whether the file changed (Postgres must then reload).
    pub fn ensure_hba(&self, rules: &[HbaRule]) -> CliResult<bool> {
        if self.config.pg.hba_level == "skip" || self.config.pg.auth_method == "skip" {
            return Ok(false);
        }
        let path = self.pgdata().join("pg_hba.conf");
        let current = std::fs::read_to_string(&path).map_err(|e| {
            CliError::new(Exit::Pgctl, format!("cannot read {}: {e}", path.display()))
        })?;
        match hba::with_rules(&current, rules) {
            None => Ok(false),
            Some(updated) => {
                crate::fsutil::write_atomically(&path, updated.as_bytes(), 0o600).map_err(|e| {
                    CliError::new(Exit::Pgctl, format!("cannot write {}: {e}", path.display()))
                })?;
                Ok(true)
            }
        }
    }

    /// An HBA rule with this node's SSL choice and method.
    pub fn hba_rule(&self, database: &str, user: &str, address: &str) -> HbaRule {
        HbaRule {
            ssl: self.config.ssl.active,
            database: database.to_string(),
            user: user.to_string(),
            address: address.to_string(),
            method: self.config.pg.auth_method.clone(),
        }
    }
}
