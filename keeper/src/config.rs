//! The configuration file `pg_autoctl.cfg`: an INI file with pg_autoctl 2.0's sections and
//! keys, so that `pg_autoctl config get|set section.option` and existing files keep working.
//!
//! [`KEYS`] lists every key with its type and default; it drives validation for `config set`,
//! reading a file, and `config check`. [`Config`] is the typed view the program uses.
//!
//! The file is input like any other: every value is checked against its kind (host names,
//! node and formation names, identifiers and passwords against `fsm::vocab`, paths and free
//! text for control characters) when the file is read, so a value that would break out of
//! `pg_hba.conf`, `postgresql.conf` or a connection string never gets past loading. The
//! configuration must also belong to the data directory it was found for
//! ([`Config::load_for`]), and the keys that say what the file is for (`pg_autoctl.role`,
//! `postgresql.pgdata`) cannot be changed with `config set`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fsm::vocab::{self, ClusterName, FormationId, Host, NodeName, PgIdentifier};
use ini::Ini;

use crate::exit::{CliError, CliResult};
use crate::fsutil::write_atomically;
use crate::paths::NodePaths;

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
    /// Free text without control characters.
    Text,
    /// An integer in a range.
    Int(i64, i64),
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// A host name or IP address (`fsm::vocab::Host`).
    Host,
    /// A node name.
    NodeName,
    /// A formation name.
    Formation,
    /// A Citus cluster name.
    Cluster,
    /// A database or role name.
    Identifier,
    /// A file or directory path: no control characters, at most 4096 bytes.
    Path,
    /// The monitor's URI, or `PG_AUTOCTL_DISABLED`.
    MonitorUri,
    /// A password (`fsm::vocab::password`).
    Password,
    /// Postgres's `listen_addresses`: `*`, or host names and addresses separated by commas.
    ListenAddresses,
    /// An `--max-rate` of pg_basebackup: a number, optionally followed by `k` or `M`.
    Rate,
    /// An HBA method of `postgres::hba::METHODS`, or `skip`.
    AuthMethod,
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
    /// Whether the value is a secret, never printed in logs nor in listings.
    pub secret: bool,
    /// Whether the key says what the file is for: `config set` refuses to change it.
    pub fixed: bool,
}

const fn key(section: &'static str, option: &'static str, kind: Kind, applies: For) -> Key {
    Key {
        section,
        option,
        kind,
        default: None,
        applies,
        secret: false,
        fixed: false,
    }
}

const fn fixed(mut k: Key) -> Key {
    k.fixed = true;
    k
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
    fixed(key(
        "pg_autoctl",
        "role",
        Kind::Choice(&["keeper", "monitor"]),
        For::Both,
    )),
    secret(key("pg_autoctl", "monitor", Kind::MonitorUri, For::Keeper)),
    with_default(
        key("pg_autoctl", "formation", Kind::Formation, For::Keeper),
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
    key("pg_autoctl", "name", Kind::NodeName, For::Keeper),
    key("pg_autoctl", "hostname", Kind::Host, For::Both),
    with_default(
        key(
            "pg_autoctl",
            "nodekind",
            Kind::Choice(&["standalone", "coordinator", "worker"]),
            For::Keeper,
        ),
        "standalone",
    ),
    fixed(key("postgresql", "pgdata", Kind::Path, For::Both)),
    key("postgresql", "pg_ctl", Kind::Path, For::Both),
    key("postgresql", "username", Kind::Identifier, For::Both),
    with_default(
        key("postgresql", "dbname", Kind::Identifier, For::Both),
        "postgres",
    ),
    key("postgresql", "host", Kind::Text, For::Both),
    key("postgresql", "port", Kind::Int(1, 65535), For::Both),
    key("postgresql", "proxyport", Kind::Int(0, 65535), For::Keeper),
    with_default(
        key(
            "postgresql",
            "listen_addresses",
            Kind::ListenAddresses,
            For::Both,
        ),
        "*",
    ),
    with_default(
        key("postgresql", "auth_method", Kind::AuthMethod, For::Both),
        "trust",
    ),
    with_default(
        key(
            "postgresql",
            "hba_level",
            Kind::Choice(HbaLevel::NAMES),
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
    key("ssl", "ca_file", Kind::Path, For::Both),
    key("ssl", "crl_file", Kind::Path, For::Both),
    key("ssl", "cert_file", Kind::Path, For::Both),
    key("ssl", "key_file", Kind::Path, For::Both),
    secret(key("replication", "password", Kind::Password, For::Keeper)),
    with_default(
        key(
            "replication",
            "maximum_backup_rate",
            Kind::Rate,
            For::Keeper,
        ),
        "100M",
    ),
    key("replication", "backup_directory", Kind::Path, For::Keeper),
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
    key("citus", "cluster_name", Kind::Cluster, For::Keeper),
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

/// Checks `value` against `key`'s type; returns it normalised. An empty value passes every
/// text kind (whether a key may be empty is checked when the file is read).
pub fn validate(key: &Key, value: &str) -> CliResult<String> {
    let name = format!("{}.{}", key.section, key.option);
    let shown = if key.secret {
        "(hidden)".to_string()
    } else {
        vocab::shown(value)
    };
    let refuse = |why: String| {
        Err(CliError::bad_args(format!(
            "invalid value {shown} for {name}: {why}"
        )))
    };
    let vocabulary = |result: Result<(), vocab::VocabError>| match result {
        Ok(()) => Ok(value.to_string()),
        Err(e) => refuse(e.reason),
    };
    let text_kind = !matches!(key.kind, Kind::Int(..) | Kind::Choice(_) | Kind::AuthMethod);
    if text_kind && value.is_empty() {
        return Ok(String::new());
    }
    match key.kind {
        Kind::Text => {
            if value.chars().any(vocab::is_unsafe_char) {
                return refuse("control or line-break characters are not allowed".to_string());
            }
            Ok(value.to_string())
        }
        Kind::Path => {
            if value.chars().any(vocab::is_unsafe_char) || value.len() > 4096 {
                return refuse(
                    "a path may not hold control or line-break characters, nor exceed 4096 bytes"
                        .to_string(),
                );
            }
            Ok(value.to_string())
        }
        Kind::Host => vocabulary(Host::parse(value).map(|_| ())),
        Kind::NodeName => vocabulary(NodeName::parse(value).map(|_| ())),
        Kind::Formation => vocabulary(FormationId::parse(value).map(|_| ())),
        Kind::Cluster => vocabulary(ClusterName::parse(value).map(|_| ())),
        Kind::Identifier => vocabulary(PgIdentifier::parse(value).map(|_| ())),
        Kind::Password => vocabulary(vocab::password("password", value)),
        Kind::MonitorUri => {
            if value == MONITOR_DISABLED {
                return Ok(value.to_string());
            }
            match crate::monitor::uri::PgUri::parse(value) {
                Ok(_) => Ok(value.to_string()),
                Err(e) => refuse(e.to_string()),
            }
        }
        Kind::ListenAddresses => {
            for part in value.split(',').map(str::trim) {
                if part != "*" && Host::parse(part).is_err() {
                    return refuse(format!(
                        "{} is neither * nor a host name or address",
                        vocab::shown(part)
                    ));
                }
            }
            Ok(value.to_string())
        }
        Kind::Rate => {
            let digits = value.trim_end_matches(['k', 'M']);
            let suffix = value.len() - digits.len();
            if digits.is_empty() || suffix > 1 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return refuse("expected a number of kB/s, optionally followed by k or M".into());
            }
            Ok(value.to_string())
        }
        Kind::AuthMethod => {
            if AuthMethod::parse(value).is_some() {
                Ok(value.to_string())
            } else {
                refuse(format!(
                    "expected skip or one of {}",
                    crate::postgres::hba::METHODS.join(", ")
                ))
            }
        }
        Kind::Int(min, max) => match value.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n.to_string()),
            _ => refuse(format!("expected an integer from {min} to {max}")),
        },
        Kind::Choice(words) => {
            if words.contains(&value) {
                Ok(value.to_string())
            } else {
                refuse(format!("expected one of {}", words.join(", ")))
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

    /// Every key of `role` with its value (defaults filled in), in file order; secrets are
    /// shown as `****` (a password in the monitor URI too): a listing is for reading, and
    /// `config get section.option` prints one value as it is.
    pub fn entries(&self, role: Role) -> Vec<(String, String)> {
        KEYS.iter()
            .filter(|k| k.applies == For::Both || role == Role::Keeper)
            .filter_map(|k| {
                self.get(k)
                    .map(|v| (format!("{}.{}", k.section, k.option), hide_secret(k, v)))
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

/// `value` of `key` as a listing shows it: a secret is `****`, a monitor URI loses its
/// password.
fn hide_secret(key: &Key, value: String) -> String {
    if !key.secret || value.is_empty() {
        return value;
    }
    if matches!(key.kind, Kind::MonitorUri) {
        return crate::monitor::uri::PgUri::parse(&value)
            .map(|u| u.redacted())
            .unwrap_or_else(|_| "****".to_string());
    }
    "****".to_string()
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
    pub auth_method: AuthMethod,
    /// How much of pg_hba.conf pg_autoctl writes.
    pub hba_level: HbaLevel,
}

/// How much of pg_hba.conf pg_autoctl writes (`postgresql.hba_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HbaLevel {
    /// Nothing: the operator writes every rule (`--skip-pg-hba`).
    Skip,
    /// Rules for the other nodes and the monitor.
    Minimal,
    /// Those, and one for the application on the node's network (`--pg-hba-lan`).
    App,
}

impl HbaLevel {
    /// The values of the setting, as 2.0 writes them.
    pub const NAMES: &'static [&'static str] = &["skip", "minimal", "app"];

    /// The level named `name`.
    pub fn parse(name: &str) -> Option<HbaLevel> {
        match name {
            "skip" => Some(HbaLevel::Skip),
            "minimal" => Some(HbaLevel::Minimal),
            "app" => Some(HbaLevel::App),
            _ => None,
        }
    }

    /// Its name in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            HbaLevel::Skip => "skip",
            HbaLevel::Minimal => "minimal",
            HbaLevel::App => "app",
        }
    }
}

/// The method of the HBA rules pg_autoctl writes (`postgresql.auth_method`): one of
/// `postgres::hba::METHODS`, or `skip` (none written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// No rules are written (`--skip-pg-hba`).
    Skip,
    /// Rules use this method.
    Method(crate::postgres::hba::Method),
}

impl AuthMethod {
    /// The method named `name`, or `skip`.
    pub fn parse(name: &str) -> Option<AuthMethod> {
        if name == "skip" {
            return Some(AuthMethod::Skip);
        }
        crate::postgres::hba::Method::parse(name).map(AuthMethod::Method)
    }

    /// Its name in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Skip => "skip",
            AuthMethod::Method(m) => m.as_str(),
        }
    }

    /// The method rules use, if rules are written.
    pub fn method(self) -> Option<crate::postgres::hba::Method> {
        match self {
            AuthMethod::Skip => None,
            AuthMethod::Method(m) => Some(m),
        }
    }
}

/// The `[timeout]` section (seconds in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A primary that reached neither the monitor nor a standby for this long stops Postgres.
    pub network_partition_timeout: Duration,
    /// How long Postgres may fail to restart before the keeper reports it down.
    pub postgresql_restart_failure_timeout: Duration,
    /// How many restarts may fail before the keeper reports Postgres down.
    pub postgresql_restart_failure_max_retries: u32,
    /// How long `perform` and `drop node` follow notifications by default.
    pub listen_notifications_timeout: Duration,
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

    /// Reads and checks the configuration of the node whose files are `paths`: it must be
    /// the configuration of that data directory. A file pointing at another node's data
    /// directory would have this node's keeper stop, rewind or overwrite that node.
    pub fn load_for(paths: &NodePaths) -> CliResult<Config> {
        let config = Config::load(&paths.config)?;
        let configured = crate::paths::absolute(&config.pg.pgdata)?;
        if configured != paths.pgdata {
            return Err(CliError::bad_config(format!(
                "{} says postgresql.pgdata is {}, but it is the configuration of {}",
                paths.config.display(),
                config.pg.pgdata.display(),
                paths.pgdata.display()
            ))
            .hint("A configuration belongs to the data directory it was created for: fix postgresql.pgdata, or use the --pgdata it names."));
        }
        Ok(config)
    }

    /// Checks every value of a configuration built in memory, as if read from its file.
    pub fn check(&self) -> CliResult<()> {
        Config::from_file(&self.to_file()).map(|_| ())
    }

    /// The typed view of `file`, every value checked.
    pub fn from_file(file: &ConfigFile) -> CliResult<Config> {
        let role = file.role()?;
        let value = |name: &str| -> CliResult<Option<String>> {
            let key = find_key(name, role)?;
            match file.get(key) {
                // a bad value in the file is a configuration error (exit 2), not a bad argument
                Some(v) => validate(key, &v)
                    .map(Some)
                    .map_err(|e| CliError::bad_config(e.message)),
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
        // a number within the key's range (checked by `validate`), as the type it is used as
        let typed = |name: &str| -> CliResult<u32> {
            u32::try_from(number(name)?)
                .map_err(|_| CliError::bad_config(format!("{name} is out of range")))
        };
        let seconds = |name: &str, monitor_default: Duration| -> CliResult<Duration> {
            if keeper {
                Ok(Duration::from_secs(u64::from(typed(name)?)))
            } else {
                Ok(monitor_default)
            }
        };
        let defaults = Timeouts::default();
        Ok(Config {
            role,
            monitor,
            formation: if keeper {
                required("pg_autoctl.formation")?
            } else {
                "monitor".to_string()
            },
            group: if keeper {
                i32::try_from(typed("pg_autoctl.group")?)
                    .map_err(|_| CliError::bad_config("pg_autoctl.group is out of range"))?
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
                port: u16::try_from(typed("postgresql.port")?)
                    .map_err(|_| CliError::bad_config("postgresql.port is out of range"))?,
                listen_addresses: required("postgresql.listen_addresses")?,
                auth_method: AuthMethod::parse(&required("postgresql.auth_method")?)
                    .ok_or_else(|| CliError::bad_config("postgresql.auth_method is invalid"))?,
                hba_level: HbaLevel::parse(&required("postgresql.hba_level")?)
                    .ok_or_else(|| CliError::bad_config("postgresql.hba_level is invalid"))?,
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
                network_partition_timeout: seconds(
                    "timeout.network_partition_timeout",
                    defaults.network_partition_timeout,
                )?,
                postgresql_restart_failure_timeout: seconds(
                    "timeout.postgresql_restart_failure_timeout",
                    defaults.postgresql_restart_failure_timeout,
                )?,
                postgresql_restart_failure_max_retries: if keeper {
                    typed("timeout.postgresql_restart_failure_max_retries")?
                } else {
                    defaults.postgresql_restart_failure_max_retries
                },
                listen_notifications_timeout: seconds(
                    "timeout.listen_notifications_timeout",
                    defaults.listen_notifications_timeout,
                )?,
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
        set("postgresql", "auth_method", self.pg.auth_method.as_str());
        set("postgresql", "hba_level", self.pg.hba_level.as_str());
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
                (
                    "network_partition_timeout",
                    t.network_partition_timeout.as_secs(),
                ),
                ("prepare_promotion_catchup", 30),
                ("prepare_promotion_walreceiver", 5),
                (
                    "postgresql_restart_failure_timeout",
                    t.postgresql_restart_failure_timeout.as_secs(),
                ),
                (
                    "postgresql_restart_failure_max_retries",
                    u64::from(t.postgresql_restart_failure_max_retries),
                ),
                (
                    "listen_notifications_timeout",
                    t.listen_notifications_timeout.as_secs(),
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
            network_partition_timeout: Duration::from_secs(20),
            postgresql_restart_failure_timeout: Duration::from_secs(20),
            postgresql_restart_failure_max_retries: 3,
            listen_notifications_timeout: Duration::from_secs(60),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Config {
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
                auth_method: AuthMethod::parse("trust").expect("a method"),
                hba_level: HbaLevel::Minimal,
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
        assert_eq!(config.pg.hba_level, HbaLevel::Minimal);
        assert_eq!(
            config.timeout.network_partition_timeout,
            Duration::from_secs(20)
        );
        assert!(!config.ssl.active);
    }

    #[test]
    fn values_are_typed_when_read_and_written_back_as_2_0_spells_them() {
        let mut file = sample().to_file();
        for (name, value) in [
            ("postgresql.auth_method", "scram-sha-256"),
            ("postgresql.hba_level", "app"),
            ("timeout.network_partition_timeout", "7"),
            ("timeout.postgresql_restart_failure_max_retries", "0"),
        ] {
            let key = find_key(name, Role::Keeper).expect("key");
            file.set(key, value).expect("valid");
        }
        let config = Config::from_file(&file).expect("typed");
        assert_eq!(config.pg.auth_method.as_str(), "scram-sha-256");
        assert!(config.pg.auth_method.method().is_some());
        assert_eq!(config.pg.hba_level, HbaLevel::App);
        assert_eq!(
            config.timeout.network_partition_timeout,
            Duration::from_secs(7)
        );
        assert_eq!(config.timeout.postgresql_restart_failure_max_retries, 0);
        let text = config.to_file();
        let key = find_key("postgresql.hba_level", Role::Keeper).expect("key");
        assert_eq!(text.get(key).as_deref(), Some("app"));

        // a value outside its type in the file is a configuration error (exit 2), not a
        // default
        for (name, value) in [
            ("postgresql.hba_level", "everything"),
            ("postgresql.auth_method", "magic"),
            ("timeout.network_partition_timeout", "-5"),
            ("postgresql.port", "70000"),
            ("pg_autoctl.group", "-1"),
        ] {
            let mut ini = sample().to_file().ini;
            let (section, option) = name.split_once('.').expect("section.option");
            ini.with_section(Some(section)).set(option, value);
            let err = Config::from_file(&ConfigFile { ini }).expect_err(name);
            assert_eq!(err.exit, crate::exit::Exit::BadConfig, "{name}");
        }
        assert_eq!(AuthMethod::parse("skip"), Some(AuthMethod::Skip));
        assert_eq!(AuthMethod::Skip.method(), None);
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
    fn hostile_values_in_the_file_are_refused_when_it_is_read() {
        for (name, value) in [
            (
                "pg_autoctl.hostname",
                "10.0.0.1 trust\nhost all all 0.0.0.0/0",
            ),
            ("pg_autoctl.hostname", "0.0.0.0/0"),
            ("pg_autoctl.name", "node\nfake"),
            ("pg_autoctl.formation", "f\rx"),
            ("postgresql.dbname", "db\n"),
            ("postgresql.username", "all\u{0}"),
            ("postgresql.listen_addresses", "*'\nssl = off"),
            ("postgresql.auth_method", "trust\nhost all all all trust"),
            ("ssl.cert_file", "/c\nssl_key_file = '/x'"),
            (
                "replication.maximum_backup_rate",
                "100M --write-recovery-conf",
            ),
            ("replication.password", "a\nb"),
            ("pg_autoctl.monitor", "not a uri"),
        ] {
            let mut file = sample().to_file();
            let key = find_key(name, Role::Keeper).expect("key");
            assert!(
                file.set(key, value).is_err(),
                "{name} = {value:?} accepted by set"
            );
            let (section, option) = name.split_once('.').expect("dot");
            file.ini.with_section(Some(section)).set(option, value);
            let err = Config::from_file(&file).expect_err(name);
            assert_eq!(err.exit, crate::exit::Exit::BadConfig, "{name}");
            if name == "replication.password" {
                assert!(!err.message.contains("a\nb"), "{}", err.message);
            }
        }
        // and the good ones still read
        let mut file = sample().to_file();
        for (name, value) in [
            ("pg_autoctl.hostname", "db-1.example.com"),
            ("postgresql.listen_addresses", "127.0.0.1, ::1"),
            ("replication.maximum_backup_rate", "512k"),
            ("pg_autoctl.name", "node a/1"),
        ] {
            file.set(find_key(name, Role::Keeper).expect("key"), value)
                .unwrap_or_else(|e| panic!("{name}: {}", e.message));
        }
        Config::from_file(&file).expect("valid");
    }

    #[test]
    fn a_listing_hides_secrets_and_identity_keys_are_fixed() {
        let mut config = sample();
        config.monitor =
            Some("postgres://autoctl_node:t0psecret@m:5432/pg_auto_failover".to_string());
        let file = config.to_file();
        let listing = file.entries(Role::Keeper);
        let value = |name: &str| {
            listing
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .expect("listed")
        };
        assert_eq!(value("replication.password"), "****");
        assert!(!value("pg_autoctl.monitor").contains("t0psecret"));
        assert!(value("pg_autoctl.monitor").contains("autoctl_node"));
        // one key asked for is the stored value
        let key = find_key("pg_autoctl.monitor", Role::Keeper).expect("key");
        assert!(file.get(key).expect("value").contains("t0psecret"));
        assert!(
            find_key("pg_autoctl.role", Role::Keeper)
                .expect("key")
                .fixed
        );
        assert!(
            find_key("postgresql.pgdata", Role::Keeper)
                .expect("key")
                .fixed
        );
        assert!(
            !find_key("pg_autoctl.hostname", Role::Keeper)
                .expect("key")
                .fixed
        );
    }

    #[test]
    fn a_configuration_belongs_to_its_data_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().to_path_buf();
        let env = |var: &str| (var == "HOME").then(|| home.to_string_lossy().into_owned());
        let mine = NodePaths::new(&dir.path().join("node_a"), env).expect("paths");
        let mut config = sample();
        config.pg.pgdata = dir.path().join("node_b");
        config.save(&mine.config).expect("save");
        let err = Config::load_for(&mine).expect_err("another node's pgdata");
        assert_eq!(err.exit, crate::exit::Exit::BadConfig);
        assert!(err.message.contains("node_b"), "{}", err.message);
        config.pg.pgdata = dir.path().join("node_a");
        config.save(&mine.config).expect("save");
        assert!(Config::load_for(&mine).is_ok());
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
