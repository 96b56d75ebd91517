//! Setting up one Postgres node, as `create` and the service both do: its configuration,
//! programs, server process and a lazily opened SQL connection, with the set-up steps (initdb,
//! our settings file, HBA rules, the password file) and, for the monitor, the URI keepers use
//! to reach it.

use std::path::Path;

use fsm::vocab::{Cidr, Host, PgIdentifier};

use crate::config::{AuthMethod, Config, HbaLevel, Role};
use crate::exit::{CliError, CliResult, Exit};
use crate::monitor::uri::PgUri;
use crate::paths::NodePaths;
use crate::postgres::conf::{self, NodeSettings, SslFiles};
use crate::postgres::hba::{self, Address, Database, HbaRule, Method};
use crate::postgres::local::{LocalPg, REPLICATION_ROLE};
use crate::postgres::passfile;
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
            let connection = LocalPg::connect(
                &pg.pgdata,
                &pg.host,
                pg.port,
                &pg.username,
                "postgres",
                Some(&self.paths.passfile),
            )
            .await?;
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

    /// Runs initdb on the empty PGDATA. No `trust` line is written unless `--auth trust`
    /// was asked for: local connections use `peer` (the superuser is the OS user), else a
    /// password. When the keeper needs a password to reach its own Postgres (over TCP without
    /// a unix socket, `PG_REGRESS_SOCK_DIR=""`, or as a database user other than the OS
    /// user), the superuser gets a random one, kept in the node's password file only.
    pub async fn initdb(&self) -> CliResult<()> {
        let pg = &self.config.pg;
        let os_user = crate::os_user::current_user_name();
        let local_auth = if pg.auth_method.as_str() == "trust" {
            "trust"
        } else if pg.username.is_empty() || pg.username == os_user {
            "peer"
        } else {
            "scram-sha-256"
        };
        let host_auth = match pg.auth_method {
            AuthMethod::Skip => "scram-sha-256",
            AuthMethod::Method(method) => method.as_str(),
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
        let tcp_only = std::env::var("PG_REGRESS_SOCK_DIR").is_ok_and(|v| v.is_empty());
        let needs_password = (tcp_only
            && matches!(host_auth, "md5" | "scram-sha-256" | "password"))
            || local_auth == "scram-sha-256";
        let pwfile = self.paths.passfile.with_file_name("initdb.pwfile");
        let password = if needs_password {
            let password = crate::postgres::scram::random_password().ok_or_else(|| {
                CliError::new(Exit::Internal, "no randomness for the superuser's password")
            })?;
            crate::fsutil::write_atomically(&pwfile, format!("{password}\n").as_bytes(), 0o600)
                .map_err(|e| CliError::new(Exit::Pgctl, format!("{}: {e}", pwfile.display())))?;
            args.push(format!("--pwfile={}", pwfile.display()));
            Some(password)
        } else {
            None
        };
        tracing::info!(pgdata = %pg.pgdata.display(), "initdb");
        let result = self.bin().run("initdb", &args).await.map(|_| ());
        if password.is_some() {
            let _ = std::fs::remove_file(&pwfile);
        }
        result?;
        if let Some(password) = password {
            let user = if pg.username.is_empty() {
                os_user
            } else {
                pg.username.clone()
            };
            passfile::add(
                &self.paths.passfile,
                passfile::Entry {
                    host: "*".to_string(),
                    port: pg.port.to_string(),
                    database: "*".to_string(),
                    user,
                    password,
                },
            )
            .map_err(|e| {
                CliError::new(
                    Exit::Pgctl,
                    format!("{}: {e}", self.paths.passfile.display()),
                )
            })?;
        }
        Ok(())
    }

    /// Adds the missing `rules` to pg_hba.conf (unless HBA editing is skipped); returns
    /// whether the file changed (Postgres must then reload).
    pub fn ensure_hba(&self, rules: &[HbaRule]) -> CliResult<bool> {
        if hba_method(&self.config).is_none() {
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

    /// The rules that let another node at `host` replicate from and rewind against this one.
    pub fn replication_rules(&self, host: &Host) -> CliResult<Vec<HbaRule>> {
        let Some(method) = hba_method(&self.config) else {
            return Ok(Vec::new());
        };
        let user = identifier("replication role", REPLICATION_ROLE)?;
        let dbname = identifier("postgresql.dbname", &self.config.pg.dbname)?;
        let rule = |database| HbaRule {
            ssl: self.config.ssl.active,
            database,
            user: user.clone(),
            address: Address::Host(host.clone()),
            method,
        };
        Ok(vec![
            rule(Database::Replication),
            rule(Database::Named(dbname)),
        ])
    }

    /// The monitor's rule for the keepers: `autoctl_node` on `pg_auto_failover` from
    /// `address` (the LAN).
    pub fn keeper_rules(&self, address: Address) -> CliResult<Vec<HbaRule>> {
        let Some(method) = hba_method(&self.config) else {
            return Ok(Vec::new());
        };
        Ok(vec![HbaRule {
            ssl: self.config.ssl.active,
            database: Database::Named(identifier("monitor database", "pg_auto_failover")?),
            user: identifier("keeper role", "autoctl_node")?,
            address,
            method,
        }])
    }

    /// Makes the password file hold the replication password of the configuration (or no
    /// entry for it when there is none); returns the file's path when it has one.
    pub fn ensure_passfile(&self) -> CliResult<Option<std::path::PathBuf>> {
        let path = &self.paths.passfile;
        passfile::set_password(
            path,
            REPLICATION_ROLE,
            self.config.replication_password.as_deref(),
        )
        .map_err(|e| CliError::new(Exit::Pgctl, format!("{}: {e}", path.display())))?;
        Ok(self
            .config
            .replication_password
            .is_some()
            .then(|| path.clone()))
    }
}

/// The method of the HBA rules pg_autoctl writes; None when it writes none (`--skip-pg-hba`).
fn hba_method(config: &Config) -> Option<Method> {
    if config.pg.hba_level == HbaLevel::Skip {
        return None;
    }
    config.pg.auth_method.method()
}

/// `value` as a Postgres identifier, or a configuration error naming `what`.
fn identifier(what: &str, value: &str) -> CliResult<PgIdentifier> {
    PgIdentifier::parse(value)
        .map_err(|e| CliError::bad_config(format!("{what}: {}", e.for_field("identifier"))))
}

/// The HBA rules a node needs for itself, as 2.0 writes them: its own database user from its
/// host name (and from the whole LAN `lan` with `--pg-hba-lan`), and the monitor's health
/// check role from each host of the monitor URI, for database `postgres` (the one the probe
/// asks for), with the node's own method: `trust` only when `--auth trust` was asked for. The
/// probe needs no login: any answer of Postgres, an authentication request included, proves
/// it is up (`fsm::probe`).
pub fn own_hba_rules(config: &Config, lan: Option<Cidr>) -> CliResult<Vec<HbaRule>> {
    let Some(method) = hba_method(config) else {
        return Ok(Vec::new());
    };
    let pg = &config.pg;
    let rule = |database, user, address| HbaRule {
        ssl: config.ssl.active,
        database,
        user,
        address,
        method,
    };
    let mut rules = Vec::new();
    if !pg.username.is_empty() {
        let dbname = identifier("postgresql.dbname", &pg.dbname)?;
        let user = identifier("postgresql.username", &pg.username)?;
        if !config.hostname.is_empty() {
            let host = Host::parse(&config.hostname)
                .map_err(|e| CliError::bad_config(format!("pg_autoctl.hostname: {e}")))?;
            rules.push(rule(
                Database::Named(dbname.clone()),
                user.clone(),
                Address::Host(host),
            ));
        }
        if let Some(lan) = lan {
            rules.push(rule(Database::Named(dbname), user, Address::Network(lan)));
        }
    }
    let monitor_hosts: Vec<Host> = config
        .monitor
        .as_deref()
        .and_then(|m| crate::monitor::uri::PgUri::parse(m).ok())
        .map(|u| {
            u.hosts
                .iter()
                .filter_map(|(h, _)| Host::parse(h).ok())
                .collect()
        })
        .unwrap_or_default();
    let probe_db = identifier("probe database", fsm::probe::PROBE_DATABASE)?;
    let probe_user = identifier("probe role", crate::postgres::local::MONITOR_ROLE)?;
    for host in monitor_hosts {
        rules.push(rule(
            Database::Named(probe_db.clone()),
            probe_user.clone(),
            Address::Host(host),
        ));
    }
    Ok(rules)
}

/// The URI keepers use to reach the monitor described by `config` (a monitor's own
/// configuration).
pub fn local_monitor_uri(config: &Config) -> PgUri {
    let host = if config.hostname.is_empty() {
        "localhost".to_string()
    } else {
        config.hostname.clone()
    };
    let mut params = vec![("sslmode".to_string(), config.ssl.sslmode.clone())];
    // as 2.0 does: the CA and CRL files go in every connection string pg_autoctl builds
    if let Some(ca) = &config.ssl.ca_file {
        params.push(("sslrootcert".to_string(), ca.clone()));
    }
    if let Some(crl) = &config.ssl.crl_file {
        params.push(("sslcrl".to_string(), crl.clone()));
    }
    PgUri {
        user: Some("autoctl_node".to_string()),
        password: None,
        hosts: vec![(host, Some(config.pg.port))],
        dbname: Some("pg_auto_failover".to_string()),
        params,
    }
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
                auth_method: AuthMethod::parse("scram-sha-256").expect("a method"),
                hba_level: HbaLevel::App,
            },
            ssl: Ssl::default(),
            replication_password: None,
            maximum_backup_rate: "100M".to_string(),
            backup_directory: None,
            timeout: Timeouts::default(),
        };
        let lan = Cidr::parse("10.0.0.0/24").expect("cidr");
        let lines: Vec<String> = own_hba_rules(&config, Some(lan))
            .expect("rules")
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
        // the probe's rule has the node's method: no trust unless --auth trust
        assert!(
            lines[2].starts_with("host postgres pgautofailover_monitor 10.0.0.9/32 scram-sha-256"),
            "{lines:?}"
        );
        assert_eq!(own_hba_rules(&config, None).expect("rules").len(), 2);
        let mut skip = config.clone();
        skip.pg.hba_level = HbaLevel::Skip;
        assert!(own_hba_rules(&skip, None).expect("rules").is_empty());
        // every host of a multi-host monitor URI may probe
        let mut two = config.clone();
        two.monitor =
            Some("postgres://autoctl_node@10.0.0.9:5000,10.0.0.10:5000/pg_auto_failover".into());
        let lines: Vec<String> = own_hba_rules(&two, None)
            .expect("rules")
            .iter()
            .map(HbaRule::line)
            .collect();
        assert!(
            lines.iter().any(|l| l.contains("10.0.0.10/32")),
            "{lines:?}"
        );
        // a hostile host in the configuration is refused, never written
        let mut bad = config.clone();
        bad.hostname = "10.0.0.1 trust\nhost all all 0.0.0.0/0".to_string();
        assert!(own_hba_rules(&bad, None).is_err());
    }
}
