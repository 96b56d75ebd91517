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
        hba_rule(&self.config, database, user, address)
    }
}

/// An HBA rule with the SSL choice and method of `config`.
fn hba_rule(config: &Config, database: &str, user: &str, address: &str) -> HbaRule {
    HbaRule {
        ssl: config.ssl.active,
        database: database.to_string(),
        user: user.to_string(),
        address: address.to_string(),
        method: config.pg.auth_method.clone(),
    }
}

/// The HBA rules a node needs for itself, as 2.0 writes them: its own database user from its
/// host name (and from the whole LAN `lan` with `--pg-hba-lan`), and the monitor's health
/// check role from the monitor's host, always `trust` (no secret is sent).
pub fn own_hba_rules(config: &Config, lan: Option<&str>) -> Vec<HbaRule> {
    let pg = &config.pg;
    let mut rules = Vec::new();
    if !config.hostname.is_empty() {
        rules.push(hba_rule(config, &pg.dbname, &pg.username, &config.hostname));
    }
    if let Some(lan) = lan {
        rules.push(hba_rule(config, &pg.dbname, &pg.username, lan));
    }
    let monitor_host = config
        .monitor
        .as_deref()
        .and_then(|m| crate::monitor::uri::PgUri::parse(m).ok())
        .and_then(|u| u.hosts.first().map(|h| h.0.clone()));
    if let Some(host) = monitor_host {
        let mut rule = hba_rule(config, "all", crate::postgres::local::MONITOR_ROLE, &host);
        rule.method = "trust".to_string();
        rules.push(rule);
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Postgres, Ssl, Timeouts};
    use std::path::PathBuf;

    #[test]
    fn own_rules_cover_the_app_user_the_lan_and_the_monitor_probe() {
        let config = Config {
            role: Role::Keeper,
            monitor: Some("postgres://autoctl_node@10.0.0.9:5000/pg_auto_failover".to_string()),
            formation: "default".to_string(),
            group: 0,
            name: "node_1".to_string(),
            hostname: "10.0.0.1".to_string(),
            pg: Postgres {
                pgdata: PathBuf::from("/d"),
                pg_ctl: PathBuf::from("/usr/bin/pg_ctl"),
                username: "app".to_string(),
                dbname: "appdb".to_string(),
                host: String::new(),
                port: 5432,
                listen_addresses: "*".to_string(),
                auth_method: "scram-sha-256".to_string(),
                hba_level: "app".to_string(),
            },
            ssl: Ssl::default(),
            replication_password: None,
            maximum_backup_rate: "100M".to_string(),
            backup_directory: None,
            timeout: Timeouts::default(),
        };
        let lines: Vec<String> = own_hba_rules(&config, Some("10.0.0.0/24"))
            .iter()
            .map(HbaRule::line)
            .collect();
        assert!(
            lines[0].starts_with("host appdb app 10.0.0.1/32 scram-sha-256"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("host appdb app 10.0.0.0/24 scram-sha-256"),
            "{lines:?}"
        );
        assert!(
            lines[2].starts_with("host all pgautofailover_monitor 10.0.0.9/32 trust"),
            "{lines:?}"
        );
        assert_eq!(own_hba_rules(&config, None).len(), 2);
    }
}
