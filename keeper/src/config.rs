//! The configuration file `pg_autoctl.cfg`: an INI file with pg_autoctl 2.0's sections and
//! keys, so that `pg_autoctl config get|set section.option` and existing files keep working.
//!
//! [`KEYS`] lists every key with its type and default; it drives validation for `config set`,
//! reading a file, and `config check`. [`Config`] is the typed view the program uses.

use std::path::{Path, PathBuf};

use ini::Ini;

use crate::exit::{CliError, CliResult};
use crate::fsutil::write_atomically;

/// The value `pg_autoctl.monitor` holds when the node runs without a monitor.
pub const MONITOR_DISABLED: &str = "PG_AUTOCTL_DISABLED";

/// Which kind of node a configuration belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A Postgres node with its keeper.
    Keeper,
    /// The monitor.
    Monitor,
}

impl Role {
    /// The `pg_autoctl.role` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Keeper => "keeper",
            Role::Monitor => "monitor",
        }
    }
}

/// What values a key accepts.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Any text.
    Text,
    /// An integer in a range.
    Int(i64, i64),
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
}

/// Which roles a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum For {
    /// Keeper and monitor.
    Both,
    /// Keeper only.
    Keeper,
}

/// One configuration key.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// INI section.
    pub section: &'static str,
    /// INI option.
    pub option: &'static str,
    /// Accepted values.
    pub kind: Kind,
    /// The value used when the file does not have the key.
    pub default: Option<&'static str>,
    /// The roles that have this key.
    pub applies: For,
    /// Whether the value is a secret, never printed in logs.
    pub secret: bool,
}

const fn key(section: &'static str, option: &'static str, kind: Kind, applies: For) -> Key {
    Key {
        section,
        option,
        kind,
        default: None,
        applies,
        secret: false,
    }
}

const fn with_default(mut k: Key, default: &'static str) -> Key {
    k.default = Some(default);
    k
}

const fn secret(mut k: Key) -> Key {
    k.secret = true;
    k
}

/// Every key pg_autoctl reads, as in 2.0.
pub const KEYS: &[Key] = &[
    key(
        "pg_autoctl",
        "role",
        Kind::Choice(&["keeper", "monitor"]),
        For::Both,
    ),
    key("pg_autoctl", "monitor", Kind::Text, For::Keeper),
    with_default(
        key("pg_autoctl", "formation", Kind::Text, For::Keeper),
        "default",
    ),
    with_default(
        key(
            "pg_autoctl",
            "group",
            Kind::Int(0, i32::MAX as i64),
            For::Keeper,
        ),
        "0",
    ),
    key("pg_autoctl", "name", Kind::Text, For::Keeper),
    key("pg_autoctl", "hostname", Kind::Text, For::Both),
    with_default(
        key(
            "pg_autoctl",
            "nodekind",
            Kind::Choice(&["standalone", "coordinator", "worker"]),
            For::Keeper,
        ),
        "standalone",
    ),
    key("postgresql", "pgdata", Kind::Text, For::Both),
    key("postgresql", "pg_ctl", Kind::Text, For::Both),
    key("postgresql", "username", Kind::Text, For::Both),
    with_default(
        key("postgresql", "dbname", Kind::Text, For::Both),
        "postgres",
    ),
    key("postgresql", "host", Kind::Text, For::Both),
    key("postgresql", "port", Kind::Int(1, 65535), For::Both),
    key("postgresql", "proxyport", Kind::Int(0, 65535), For::Keeper),
    with_default(
        key("postgresql", "listen_addresses", Kind::Text, For::Both),
        "*",
    ),
    with_default(
        key("postgresql", "auth_method", Kind::Text, For::Both),
        "trust",
    ),
    with_default(
        key(
            "postgresql",
            "hba_level",
            Kind::Choice(&["skip", "minimal", "app"]),
            For::Both,
        ),
        "minimal",
    ),
    with_default(key("ssl", "active", Kind::Int(0, 1), For::Both), "0"),
    with_default(
        key(
            "ssl",
            "sslmode",
            Kind::Choice(crate::monitor::uri::SSL_MODES),
            For::Both,
        ),
        "prefer",
    ),
    key("ssl", "ca_file", Kind::Text, For::Both),
    key("ssl", "crl_file", Kind::Text, For::Both),
    key("ssl", "cert_file", Kind::Text, For::Both),
    key("ssl", "key_file", Kind::Text, For::Both),
    secret(key("replication", "password", Kind::Text, For::Keeper)),
    with_default(
        key(
            "replication",
            "maximum_backup_rate",
            Kind::Text,
            For::Keeper,
        ),
        "100M",
    ),
    key("replication", "backup_directory", Kind::Text, For::Keeper),
    with_default(
        key(
            "timeout",
            "network_partition_timeout",
            Kind::Int(1, 86_400),
            For::Keeper,
        ),
        "20",
    ),
    with_default(
        key(
            "timeout",
            "prepare_promotion_catchup",
            Kind::Int(0, 86_400),
            For::Keeper,
        ),
        "30",
    ),
    with_default(
        key(
            "timeout",
            "prepare_promotion_walreceiver",
            Kind::Int(0, 86_400),
            For::Keeper,
        ),
        "5",
    ),
    with_default(
        key(
            "timeout",
            "postgresql_restart_failure_timeout",
            Kind::Int(0, 86_400),
            For::Keeper,
        ),
        "20",
    ),
    with_default(
        key(
            "timeout",
            "postgresql_restart_failure_max_retries",
            Kind::Int(0, 1000),
            For::Keeper,
        ),
        "3",
    ),
    with_default(
        key(
            "timeout",
            "listen_notifications_timeout",
            Kind::Int(1, 86_400),
            For::Keeper,
        ),
        "60",
    ),
    with_default(
        key(
            "timeout",
            "citus_master_update_node_lock_cooldown",
            Kind::Int(0, i32::MAX as i64),
            For::Keeper,
        ),
        "10000",
    ),
    with_default(
        key(
            "timeout",
            "citus_coordinator_wait_max_retries",
            Kind::Int(0, i32::MAX as i64),
            For::Keeper,
        ),
        "100",
    ),
    with_default(
        key(
            "timeout",
            "citus_coordinator_wait_timeout",
            Kind::Int(0, i32::MAX as i64),
            For::Keeper,
        ),
        "300",
    ),
    with_default(
        key(
            "citus",
            "role",
            Kind::Choice(&["primary", "secondary"]),
            For::Keeper,
        ),
        "primary",
    ),
    key("citus", "cluster_name", Kind::Text, For::Keeper),
];

/// The key named `section.option`, when it exists for `role`.
pub fn find_key(name: &str, role: Role) -> CliResult<&'static Key> {
    let (section, option) = name.split_once('.').ok_or_else(|| {
        CliError::bad_args(format!(
            "\"{name}\" is not a configuration key: keys are written section.option"
        ))
        .hint("For example: pg_autoctl config get pg_autoctl.monitor")
    })?;
    KEYS.iter()
        .find(|k| {
            k.section == section
                && k.option == option
                && (k.applies == For::Both || role == Role::Keeper)
        })
        .ok_or_else(|| {
            CliError::bad_args(format!(
                "unknown configuration key \"{name}\" for a {} node",
                role.as_str()
            ))
            .hint("pg_autoctl config get lists every key and its value.")
        })
}

/// Checks `value` against `key`'s type; returns it normalised.
pub fn validate(key: &Key, value: &str) -> CliResult<String> {
    let name = format!("{}.{}", key.section, key.option);
    match key.kind {
        Kind::Text => Ok(value.to_string()),
        Kind::Int(min, max) => match value.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n.to_string()),
            _ => Err(CliError::bad_args(format!(
                "invalid value \"{value}\" for {name}: expected an integer from {min} to {max}"
            ))),
        },
        Kind::Choice(words) => {
            if words.contains(&value) {
                Ok(value.to_string())
            } else {
                Err(CliError::bad_args(format!(
                    "invalid value \"{value}\" for {name}: expected one of {}",
                    words.join(", ")
                )))
            }
        }
    }
}

/// The raw INI file, as read from disk or about to be written.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    ini: Ini,
}

impl ConfigFile {
    /// Reads `path`.
    pub fn load(path: &Path) -> CliResult<ConfigFile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CliError::bad_config(format!(
                    "no pg_autoctl configuration file at \"{}\"",
                    path.display()
                ))
                .hint("Is --pgdata (or PGDATA) the data directory of a node made by pg_autoctl create? XDG_CONFIG_HOME and HOME must be the same as when it was created.")
            } else {
                CliError::bad_config(format!("cannot read \"{}\": {e}", path.display()))
            }
        })?;
        let ini = Ini::load_from_str(&text).map_err(|e| {
            CliError::bad_config(format!(
                "\"{}\" is not a valid INI file: {e}",
                path.display()
            ))
        })?;
        Ok(ConfigFile { ini })
    }

    /// The value of `key`, or its default.
    pub fn get(&self, key: &Key) -> Option<String> {
        self.ini
            .get_from(Some(key.section), key.option)
            .map(str::to_string)
            .or_else(|| {
                // 2.0 still reads the key `nodename`, the old name of `hostname`
                (key.section == "pg_autoctl" && key.option == "hostname")
                    .then(|| self.ini.get_from(Some("pg_autoctl"), "nodename"))
                    .flatten()
                    .map(str::to_string)
            })
            .or_else(|| key.default.map(str::to_string))
    }

    /// Sets `key` after validating `value`.
    pub fn set(&mut self, key: &Key, value: &str) -> CliResult<()> {
        let value = validate(key, value)?;
        self.ini
            .with_section(Some(key.section))
            .set(key.option, value);
        Ok(())
    }

    /// The role the file is for.
    pub fn role(&self) -> CliResult<Role> {
        match self.ini.get_from(Some("pg_autoctl"), "role") {
            Some("keeper") => Ok(Role::Keeper),
            Some("monitor") => Ok(Role::Monitor),
            other => Err(CliError::bad_config(format!(
                "pg_autoctl.role is {}, expected keeper or monitor",
                other.map_or("missing".to_string(), |r| format!("\"{r}\""))
            ))),
        }
    }

    /// Every key of `role` with its value (defaults filled in), in file order.
    pub fn entries(&self, role: Role) -> Vec<(String, String)> {
        KEYS.iter()
            .filter(|k| k.applies == For::Both || role == Role::Keeper)
            .filter_map(|k| {
                self.get(k)
                    .map(|v| (format!("{}.{}", k.section, k.option), v))
            })
            .collect()
    }

    /// Writes the file atomically (mode 0600: it may hold a password).
    pub fn save(&self, path: &Path) -> CliResult<()> {
        let mut out = Vec::new();
        self.ini
            .write_to(&mut out)
            .map_err(|e| CliError::bad_config(format!("cannot format the configuration: {e}")))?;
        write_atomically(path, &out, 0o600)
            .map_err(|e| CliError::bad_config(format!("cannot write \"{}\": {e}", path.display())))
    }
}

/// SSL settings of a node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ssl {
    /// Whether Postgres has `ssl = on`.
    pub active: bool,
    /// The sslmode of the connection strings pg_autoctl builds.
    pub sslmode: String,
    /// CA file (`sslrootcert` in connection strings, `ssl_ca_file` in Postgres).
    pub ca_file: Option<String>,
    /// CRL file.
    pub crl_file: Option<String>,
    /// Server certificate.
    pub cert_file: Option<String>,
    /// Server key.
    pub key_file: Option<String>,
}

/// The `[postgresql]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postgres {
    /// The data directory.
    pub pgdata: PathBuf,
    /// The `pg_ctl` program; the other Postgres programs are next to it.
    pub pg_ctl: PathBuf,
    /// The database superuser pg_autoctl connects as.
    pub username: String,
    /// The application database.
    pub dbname: String,
    /// Where to connect to the local Postgres (a socket directory or a host); empty: ask the
    /// running server.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Postgres's `listen_addresses`.
    pub listen_addresses: String,
    /// The HBA authentication method for the rules pg_autoctl writes.
    pub auth_method: String,
    /// skip, minimal or app.
    pub hba_level: String,
}

/// The `[timeout]` section, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A primary that reached neither the monitor nor a standby for this long stops Postgres.
    pub network_partition_timeout: u64,
    /// How long Postgres may fail to restart before the keeper reports it down.
    pub postgresql_restart_failure_timeout: u64,
    /// How many restarts may fail before the keeper reports Postgres down.
    pub postgresql_restart_failure_max_retries: u64,
    /// How long `perform` and `drop node` follow notifications by default.
    pub listen_notifications_timeout: u64,
}

/// A node's configuration, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Keeper or monitor.
    pub role: Role,
    /// The monitor URI (keepers); `None` for the monitor or a disabled monitor.
    pub monitor: Option<String>,
    /// The formation.
    pub formation: String,
    /// The group.
    pub group: i32,
    /// The node name.
    pub name: String,
    /// The host name other nodes use to reach this one.
    pub hostname: String,
    /// `[postgresql]`.
    pub pg: Postgres,
    /// `[ssl]`.
    pub ssl: Ssl,
    /// `replication.password`.
    pub replication_password: Option<String>,
    /// `replication.maximum_backup_rate`.
    pub maximum_backup_rate: String,
    /// `replication.backup_directory`.
    pub backup_directory: Option<PathBuf>,
    /// `[timeout]`.
    pub timeout: Timeouts,
}

impl Config {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> CliResult<Config> {
        Config::from_file(&ConfigFile::load(path)?)
            .map_err(|e| e.context(format!("in \"{}\"", path.display())))
    }

    /// The typed view of `file`, every value checked.
    pub fn from_file(file: &ConfigFile) -> CliResult<Config> {
        let role = file.role()?;
        let value = |name: &str| -> CliResult<Option<String>> {
            let key = find_key(name, role)?;
            match file.get(key) {
                Some(v) => validate(key, &v).map(Some),
                None => Ok(None),
            }
        };
        let required = |name: &str| -> CliResult<String> {
            value(name)?
                .filter(|v| !v.is_empty())
                .ok_or_else(|| CliError::bad_config(format!("{name} is missing")))
        };
        let optional = |name: &str| -> CliResult<Option<String>> {
            Ok(value(name)?.filter(|v| !v.is_empty()))
        };
        let number = |name: &str| -> CliResult<i64> {
            required(name)?
                .parse::<i64>()
                .map_err(|_| CliError::bad_config(format!("{name} is not a number")))
        };
        let keeper = role == Role::Keeper;
        let monitor = if keeper {
            optional("pg_autoctl.monitor")?.filter(|m| m != MONITOR_DISABLED)
        } else {
            None
        };
        let timeout = |name: &str, monitor_default: u64| -> CliResult<u64> {
            if keeper {
                Ok(number(name)?.unsigned_abs())
            } else {
                Ok(monitor_default)
            }
        };
        Ok(Config {
            role,
            monitor,
            formation: if keeper {
                required("pg_autoctl.formation")?
            } else {
                "monitor".to_string()
            },
            group: if keeper {
                i32::try_from(number("pg_autoctl.group")?).unwrap_or(0)
            } else {
                0
            },
            name: if keeper {
                optional("pg_autoctl.name")?.unwrap_or_default()
            } else {
                "monitor".to_string()
            },
            hostname: optional("pg_autoctl.hostname")?.unwrap_or_default(),
            pg: Postgres {
                pgdata: PathBuf::from(required("postgresql.pgdata")?),
                pg_ctl: PathBuf::from(required("postgresql.pg_ctl")?),
                username: optional("postgresql.username")?.unwrap_or_default(),
                dbname: required("postgresql.dbname")?,
                host: optional("postgresql.host")?.unwrap_or_default(),
                port: u16::try_from(number("postgresql.port")?).unwrap_or(5432),
                listen_addresses: required("postgresql.listen_addresses")?,
                auth_method: required("postgresql.auth_method")?,
                hba_level: required("postgresql.hba_level")?,
            },
            ssl: Ssl {
                active: number("ssl.active")? == 1,
                sslmode: required("ssl.sslmode")?,
                ca_file: optional("ssl.ca_file")?,
                crl_file: optional("ssl.crl_file")?,
                cert_file: optional("ssl.cert_file")?,
                key_file: optional("ssl.key_file")?,
            },
            replication_password: if keeper {
                optional("replication.password")?
            } else {
                None
            },
            maximum_backup_rate: if keeper {
                required("replication.maximum_backup_rate")?
            } else {
                "100M".to_string()
            },
            backup_directory: if keeper {
                optional("replication.backup_directory")?.map(PathBuf::from)
            } else {
                None
            },
            timeout: Timeouts {
                network_partition_timeout: timeout("timeout.network_partition_timeout", 20)?,
                postgresql_restart_failure_timeout: timeout(
                    "timeout.postgresql_restart_failure_timeout",
                    20,
                )?,
                postgresql_restart_failure_max_retries: timeout(
                    "timeout.postgresql_restart_failure_max_retries",
                    3,
                )?,
                listen_notifications_timeout: timeout("timeout.listen_notifications_timeout", 60)?,
            },
        })
    }

    /// The INI file for this configuration, every key written out.
    pub fn to_file(&self) -> ConfigFile {
        let mut ini = Ini::new();
        let mut set = |section: &str, option: &str, value: &str| {
            ini.with_section(Some(section)).set(option, value);
        };
        set("pg_autoctl", "role", self.role.as_str());
        if self.role == Role::Keeper {
            set(
                "pg_autoctl",
                "monitor",
                self.monitor.as_deref().unwrap_or(MONITOR_DISABLED),
            );
            set("pg_autoctl", "formation", &self.formation);
            set("pg_autoctl", "group", &self.group.to_string());
            set("pg_autoctl", "name", &self.name);
        }
        set("pg_autoctl", "hostname", &self.hostname);
        if self.role == Role::Keeper {
            set("pg_autoctl", "nodekind", "standalone");
        }
        set("postgresql", "pgdata", &self.pg.pgdata.to_string_lossy());
        set("postgresql", "pg_ctl", &self.pg.pg_ctl.to_string_lossy());
        set("postgresql", "username", &self.pg.username);
        set("postgresql", "dbname", &self.pg.dbname);
        set("postgresql", "host", &self.pg.host);
        set("postgresql", "port", &self.pg.port.to_string());
        set("postgresql", "listen_addresses", &self.pg.listen_addresses);
        set("postgresql", "auth_method", &self.pg.auth_method);
        set("postgresql", "hba_level", &self.pg.hba_level);
        set("ssl", "active", if self.ssl.active { "1" } else { "0" });
        set("ssl", "sslmode", &self.ssl.sslmode);
        for (option, value) in [
            ("ca_file", &self.ssl.ca_file),
            ("crl_file", &self.ssl.crl_file),
            ("cert_file", &self.ssl.cert_file),
            ("key_file", &self.ssl.key_file),
        ] {
            if let Some(value) = value {
                set("ssl", option, value);
            }
        }
        if self.role == Role::Keeper {
            if let Some(password) = &self.replication_password {
                set("replication", "password", password);
            }
            set(
                "replication",
                "maximum_backup_rate",
                &self.maximum_backup_rate,
            );
            if let Some(dir) = &self.backup_directory {
                set("replication", "backup_directory", &dir.to_string_lossy());
            }
            let t = &self.timeout;
            for (option, value) in [
                ("network_partition_timeout", t.network_partition_timeout),
                ("prepare_promotion_catchup", 30),
                ("prepare_promotion_walreceiver", 5),
                (
                    "postgresql_restart_failure_timeout",
                    t.postgresql_restart_failure_timeout,
                ),
                (
                    "postgresql_restart_failure_max_retries",
                    t.postgresql_restart_failure_max_retries,
                ),
                (
                    "listen_notifications_timeout",
                    t.listen_notifications_timeout,
                ),
            ] {
                set("timeout", option, &value.to_string());
            }
        }
        ConfigFile { ini }
    }

    /// Writes the configuration file atomically.
    pub fn save(&self, path: &Path) -> CliResult<()> {
        self.to_file().save(path)
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            network_partition_timeout: 20,
            postgresql_restart_failure_timeout: 20,
            postgresql_restart_failure_max_retries: 3,
            listen_notifications_timeout: 60,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        Config {
            role: Role::Keeper,
            monitor: Some("postgres://autoctl_node@m:5432/pg_auto_failover".to_string()),
            formation: "default".to_string(),
            group: 0,
            name: "node_1".to_string(),
            hostname: "10.0.0.1".to_string(),
            pg: Postgres {
                pgdata: PathBuf::from("/data/node1"),
                pg_ctl: PathBuf::from("/usr/lib/postgresql/15/bin/pg_ctl"),
                username: "postgres".to_string(),
                dbname: "appdb".to_string(),
                host: String::new(),
                port: 5433,
                listen_addresses: "*".to_string(),
                auth_method: "trust".to_string(),
                hba_level: "minimal".to_string(),
            },
            ssl: Ssl {
                sslmode: "prefer".to_string(),
                ..Ssl::default()
            },
            replication_password: Some("s3cret".to_string()),
            maximum_backup_rate: "100M".to_string(),
            backup_directory: None,
            timeout: Timeouts::default(),
        }
    }

    #[test]
    fn a_written_configuration_reads_back_the_same() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pg_autoctl.cfg");
        sample().save(&path).expect("save");
        assert_eq!(Config::load(&path).expect("load"), sample());
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("[pg_autoctl]"), "{text}");
        assert!(text.contains("network_partition_timeout=20"), "{text}");
    }

    #[test]
    fn a_2_0_file_with_only_some_keys_gets_the_defaults() {
        let file = r"
[pg_autoctl]
role = keeper
monitor = postgres://autoctl_node@m/pg_auto_failover
formation = default
group = 0
name = node_1
nodename = 10.0.0.1

[postgresql]
pgdata = /data/node1
pg_ctl = /usr/bin/pg_ctl
port = 5432
";
        let parsed = Ini::load_from_str(file).expect("ini");
        let config = Config::from_file(&ConfigFile { ini: parsed }).expect("config");
        assert_eq!(config.hostname, "10.0.0.1");
        assert_eq!(config.pg.dbname, "postgres");
        assert_eq!(config.pg.hba_level, "minimal");
        assert_eq!(config.timeout.network_partition_timeout, 20);
        assert!(!config.ssl.active);
    }

    #[test]
    fn set_checks_the_key_and_the_value() {
        let mut file = sample().to_file();
        let key = find_key("timeout.network_partition_timeout", Role::Keeper).expect("key");
        file.set(key, "5").expect("valid");
        assert_eq!(file.get(key).as_deref(), Some("5"));
        let err = file.set(key, "soon").expect_err("not a number");
        assert!(
            err.message.contains("expected an integer"),
            "{}",
            err.message
        );
        let sslmode = find_key("ssl.sslmode", Role::Keeper).expect("key");
        assert!(file.set(sslmode, "sometimes").is_err());
        assert!(find_key("pg_autoctl.nosuch", Role::Keeper).is_err());
        assert!(find_key("nodot", Role::Keeper).is_err());
        // keeper-only keys do not exist on a monitor
        assert!(find_key("pg_autoctl.monitor", Role::Monitor).is_err());
    }

    #[test]
    fn a_disabled_monitor_reads_as_none() {
        let mut config = sample();
        config.monitor = None;
        let file = config.to_file();
        let key = find_key("pg_autoctl.monitor", Role::Keeper).expect("key");
        assert_eq!(file.get(key).as_deref(), Some(MONITOR_DISABLED));
        assert_eq!(Config::from_file(&file).expect("config").monitor, None);
    }

    #[test]
    fn a_missing_file_says_where_it_looked() {
        let err = Config::load(Path::new("/nonexistent/pg_autoctl.cfg")).expect_err("missing");
        assert!(err.message.contains("/nonexistent/pg_autoctl.cfg"));
        assert!(err.hint.is_some());
    }
}
