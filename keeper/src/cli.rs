//! The command line: pg_autoctl 2.0's commands and flags (names, environment variables,
//! defaults), declared with clap. Handlers live in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// pg_auto_failover control tools and service.
#[derive(Debug, Parser)]
#[command(
    name = "pg_autoctl",
    about = "pg_auto_failover control tools and service",
    disable_version_flag = true,
    disable_help_subcommand = false,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Log more (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log errors only.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print the version.
    #[arg(short = 'V', long = "version")]
    pub version: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a pg_auto_failover node, or formation
    #[command(subcommand)]
    Create(CreateCommand),
    /// Drop a pg_auto_failover node, or formation
    #[command(subcommand)]
    Drop(DropCommand),
    /// Manages the pg_autoctl configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Show pg_auto_failover information
    #[command(subcommand)]
    Show(ShowCommand),
    /// Enable a feature on a formation
    #[command(subcommand)]
    Enable(FeatureCommand),
    /// Disable a feature on a formation
    #[command(subcommand)]
    Disable(FeatureCommand),
    /// Get a pg_auto_failover node, or formation setting
    #[command(subcommand)]
    Get(GetCommand),
    /// Set a pg_auto_failover node, or formation setting
    #[command(subcommand)]
    Set(SetCommand),
    /// Perform an action orchestrated by the monitor
    #[command(subcommand)]
    Perform(PerformCommand),
    /// Run the pg_autoctl service (monitor or keeper)
    Run(RunArgs),
    /// Display a dashboard to watch monitor's events and state
    Watch(WatchArgs),
    /// Signal the pg_autoctl service for it to stop
    Stop(StopArgs),
    /// Signal the pg_autoctl service for it to reload its configuration
    Reload(PgdataJson),
    /// Display the current status of the pg_autoctl service
    Status(PgdataJson),
    /// Print pg_autoctl version
    Version(JsonArg),
}

/// `--pgdata`, defaulting to $PGDATA.
#[derive(Debug, Clone, Args)]
pub struct PgdataArg {
    /// path to data directory
    #[arg(long, env = "PGDATA", value_name = "PGDATA")]
    pub pgdata: Option<PathBuf>,
}

/// `--json`.
#[derive(Debug, Clone, Args)]
pub struct JsonArg {
    /// output data in the JSON format
    #[arg(long, short = 'J')]
    pub json: bool,
}

/// `--pgdata --json`.
#[derive(Debug, Clone, Args)]
pub struct PgdataJson {
    #[command(flatten)]
    pub pgdata: PgdataArg,
    #[command(flatten)]
    pub json: JsonArg,
}

/// Where the monitor is: `--monitor`, else the configuration of `--pgdata`.
#[derive(Debug, Clone, Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub pgdata: PgdataArg,
    /// pg_auto_failover Monitor Postgres URL
    #[arg(long, env = "PG_AUTOCTL_MONITOR", value_name = "URI")]
    pub monitor: Option<String>,
}

/// The SSL flags of `create` and `enable ssl`.
#[derive(Debug, Clone, Default, Args)]
pub struct SslArgs {
    /// setup network encryption using self signed certificates (does NOT protect against MITM)
    #[arg(long, env = "PG_AUTOCTL_SSL_SELF_SIGNED")]
    pub ssl_self_signed: bool,
    /// don't enable network encryption (NOT recommended, prefer --ssl-self-signed)
    #[arg(long)]
    pub no_ssl: bool,
    /// use that sslmode in connection strings
    #[arg(long, value_parser = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"])]
    pub ssl_mode: Option<String>,
    /// set the Postgres ssl_ca_file to that file path
    #[arg(long)]
    pub ssl_ca_file: Option<PathBuf>,
    /// set the Postgres ssl_crl_file to that file path
    #[arg(long)]
    pub ssl_crl_file: Option<PathBuf>,
    /// set the Postgres ssl_key_file to that file path
    #[arg(long)]
    pub server_key: Option<PathBuf>,
    /// set the Postgres ssl_cert_file to that file path
    #[arg(long, alias = "server-crt")]
    pub server_cert: Option<PathBuf>,
}

/// HBA flags.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// authentication method for connections from other nodes
    #[arg(long, env = "PG_AUTOCTL_AUTH_METHOD")]
    pub auth: Option<String>,
    /// skip editing pg_hba.conf rules
    #[arg(long)]
    pub skip_pg_hba: bool,
}

/// `create …`
#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Initialize a pg_auto_failover monitor node
    Monitor(CreateMonitorArgs),
    /// Initialize a pg_auto_failover standalone postgres node
    Postgres(Box<CreatePostgresArgs>),
    /// Create a new formation on the pg_auto_failover monitor
    Formation(CreateFormationArgs),
}

/// `create monitor`.
#[derive(Debug, Clone, Args)]
pub struct CreateMonitorArgs {
    #[command(flatten)]
    pub pgdata: PgdataArg,
    /// path to pg_ctl
    #[arg(long)]
    pub pgctl: Option<PathBuf>,
    /// PostgreSQL's hostname (where pg_autoctl connects to the local Postgres)
    #[arg(long)]
    pub pghost: Option<String>,
    /// PostgreSQL's port number
    #[arg(long, env = "PGPORT", default_value_t = 5432)]
    pub pgport: u16,
    /// hostname by which postgres is reachable
    #[arg(long, value_parser = host_arg)]
    pub hostname: Option<String>,
    /// PostgreSQL's listen_addresses
    #[arg(long, value_parser = listen_arg, default_value = "*")]
    pub listen: String,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub ssl: SslArgs,
    /// create node then run pg_autoctl service
    #[arg(long)]
    pub run: bool,
}

/// `create postgres`.
#[derive(Debug, Clone, Args)]
pub struct CreatePostgresArgs {
    #[command(flatten)]
    pub pgdata: PgdataArg,
    /// path to pg_ctl
    #[arg(long)]
    pub pgctl: Option<PathBuf>,
    /// PostgreSQL's hostname (where pg_autoctl connects to the local Postgres)
    #[arg(long)]
    pub pghost: Option<String>,
    /// PostgreSQL's port number
    #[arg(long, env = "PGPORT", default_value_t = 5432)]
    pub pgport: u16,
    /// PostgreSQL's listen_addresses
    #[arg(long, value_parser = listen_arg, default_value = "*")]
    pub listen: String,
    /// PostgreSQL's username
    #[arg(long, value_parser = identifier_arg)]
    pub username: Option<String>,
    /// PostgreSQL's database name
    #[arg(long, value_parser = identifier_arg, default_value = "postgres")]
    pub dbname: String,
    /// pg_auto_failover node name
    #[arg(long, value_parser = node_name_arg, env = "PG_AUTOCTL_NODE_NAME", alias = "nodename")]
    pub name: Option<String>,
    /// hostname used to connect from the other nodes
    #[arg(long, value_parser = host_arg)]
    pub hostname: Option<String>,
    /// pg_auto_failover formation
    #[arg(long, value_parser = formation_arg, default_value = "default")]
    pub formation: String,
    /// pg_auto_failover group Id
    #[arg(long)]
    pub group: Option<i32>,
    /// pg_auto_failover Monitor Postgres URL
    #[arg(long, env = "PG_AUTOCTL_MONITOR")]
    pub monitor: Option<String>,
    /// run without a monitor
    #[arg(long)]
    pub disable_monitor: bool,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// edit pg_hba.conf rules for --dbname in detected LAN
    #[arg(long, env = "PG_AUTOCTL_PG_HBA_LAN")]
    pub pg_hba_lan: bool,
    #[command(flatten)]
    pub ssl: SslArgs,
    /// priority of the node to be promoted to become primary
    #[arg(long, env = "PG_AUTOCTL_CANDIDATE_PRIORITY", default_value_t = 50,
          value_parser = clap::value_parser!(i32).range(0..=100))]
    pub candidate_priority: i32,
    /// true if node participates in write quorum
    #[arg(long, env = "PG_AUTOCTL_REPLICATION_QUORUM", default_value = "true",
          value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub replication_quorum: bool,
    /// maximum transfer rate of data transferred from the server during initial sync
    #[arg(long, default_value = "100M")]
    pub maximum_backup_rate: String,
    /// create node then run pg_autoctl service
    #[arg(long)]
    pub run: bool,
}

/// Parses true/false as 2.0 does (also on/off, yes/no, 1/0).
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" | "t" => Ok(true),
        "false" | "off" | "no" | "0" | "f" => Ok(false),
        _ => Err(format!("\"{value}\" is not a boolean: use true or false")),
    }
}

/// `create formation`.
#[derive(Debug, Clone, Args)]
pub struct CreateFormationArgs {
    #[command(flatten)]
    pub monitor: MonitorArgs,
    /// name of the formation to create
    #[arg(long, value_parser = formation_arg)]
    pub formation: String,
    /// formation kind, either "pgsql" or "citus"
    #[arg(long, default_value = "pgsql", value_parser = ["pgsql", "citus"])]
    pub kind: String,
    /// name for postgres database to use in this formation
    #[arg(long, value_parser = identifier_arg, default_value = "postgres")]
    pub dbname: String,
    /// create a formation that has multiple nodes that can be used for fail over
    #[arg(long, alias = "with-secondary")]
    pub enable_secondary: bool,
    /// create a formation without nodes to fail over to
    #[arg(long, alias = "without-secondary", conflicts_with = "enable_secondary")]
    pub disable_secondary: bool,
    /// minimum number of standbys to confirm write
    #[arg(long, default_value_t = 0)]
    pub number_sync_standbys: i32,
    #[command(flatten)]
    pub json: JsonArg,
}

/// `drop …`
#[derive(Debug, Subcommand)]
pub enum DropCommand {
    /// Drop the pg_auto_failover monitor
    Monitor(DropMonitorArgs),
    /// Drop a node from the pg_auto_failover monitor
    Node(DropNodeArgs),
    /// Drop a formation on the pg_auto_failover monitor
    Formation(DropFormationArgs),
}

/// `drop monitor`.
#[derive(Debug, Clone, Args)]
pub struct DropMonitorArgs {
    #[command(flatten)]
    pub pgdata: PgdataArg,
    /// also destroy Postgres database
    #[arg(long)]
    pub destroy: bool,
}

/// `drop node`.
#[derive(Debug, Clone, Args)]
pub struct DropNodeArgs {
    #[command(flatten)]
    pub monitor: MonitorArgs,
    /// pg_auto_failover formation
    #[arg(long, value_parser = formation_arg)]
    pub formation: Option<String>,
    /// drop the node with the given node name
    #[arg(long, value_parser = node_name_arg)]
    pub name: Option<String>,
    /// drop the node with given hostname and pgport
    #[arg(long, value_parser = host_arg)]
    pub hostname: Option<String>,
    /// drop the node with given hostname and pgport
    #[arg(long)]
    pub pgport: Option<u16>,
    /// also destroy Postgres database
    #[arg(long)]
    pub destroy: bool,
    /// force dropping the node from the monitor
    #[arg(long)]
    pub force: bool,
    /// how many seconds to wait, default to 60
    #[arg(long, default_value_t = 60)]
    pub wait: u64,
    /// do not wait for the node to be dropped
    #[arg(long)]
    pub no_wait: bool,
}

/// `drop formation`.
#[derive(Debug, Clone, Args)]
pub struct DropFormationArgs {
    #[command(flatten)]
    pub monitor: MonitorArgs,
    /// name of the formation to drop
    #[arg(long, value_parser = formation_arg)]
    pub formation: String,
}

/// `config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check pg_autoctl configuration
    Check(PgdataJson),
    /// Get the value of a given pg_autoctl configuration variable
    Get(ConfigGetArgs),
    /// Set the value of a given pg_autoctl configuration variable
    Set(ConfigSetArgs),
}

/// `config get`.
#[derive(Debug, Clone, Args)]
pub struct ConfigGetArgs {
    #[command(flatten)]
    pub pgdata: PgdataJson,
    /// section.option
    pub key: Option<String>,
}

/// `config set`.
#[derive(Debug, Clone, Args)]
pub struct ConfigSetArgs {
    #[command(flatten)]
    pub pgdata: PgdataJson,
    /// section.option
    pub key: String,
    /// the new value
    pub value: String,
}

/// `--formation --group` with monitor access and `--json`.
#[derive(Debug, Clone, Args)]
pub struct FormationGroupArgs {
    #[command(flatten)]
    pub monitor: MonitorArgs,
    /// formation to query, defaults to 'default'
    #[arg(long, value_parser = formation_arg)]
    pub formation: Option<String>,
    /// group to query formation, defaults to all
    #[arg(long)]
    pub group: Option<i32>,
    #[command(flatten)]
    pub json: JsonArg,
}

/// `show …`
#[derive(Debug, Subcommand)]
pub enum ShowCommand {
    /// Show the postgres uri to use to connect to pg_auto_failover nodes
    Uri(ShowUriArgs),
    /// Prints monitor's events of nodes in a given formation and group
    Events(ShowEventsArgs),
    /// Prints monitor's state of nodes in a given formation and group
    State(ShowStateArgs),
    /// Print replication settings for a formation from the monitor
    Settings(FormationArgs),
    /// Prints synchronous_standby_names for a given group
    StandbyNames(FormationGroupArgs),
    /// List pg_autoctl internal files (config, state, pid)
    File(ShowFileArgs),
    /// Print systemd service file for this node
    Systemd(PgdataArg),
}

/// `show uri`.
#[derive(Debug, Clone, Args)]
pub struct ShowUriArgs {
    #[command(flatten)]
    pub monitor: MonitorArgs,
    /// show the uri of given formation ("monitor" for the monitor's)
    #[arg(long, value_parser = formation_arg)]
    pub formation: Option<String>,
    #[command(flatten)]
    pub json: JsonArg,
}

/// `show events`.
#[derive(Debug, Clone, Args)]
pub struct ShowEventsArgs {
    #[command(flatten)]
    pub target: FormationGroupArgs,
    /// how many events to fetch, defaults to 10
    #[arg(long, default_value_t = 10)]
    pub count: i32,
    /// display an auto-updating dashboard
    #[arg(long)]
    pub watch: bool,
}

/// `show state`.
#[derive(Debug, Clone, Args)]
pub struct ShowStateArgs {
    #[command(flatten)]
    pub target: FormationGroupArgs,
    /// show local data, do not connect to the monitor
    #[arg(long)]
    pub local: bool,
    /// display an auto-updating dashboard
    #[arg(long)]
    pub watch: bool,
}

/// `--formation` with monitor access and `--json`.
#[derive(Debug, Clone, Args)]
pub struct FormationArgs {
    #[command(flatten)]
    pub monitor: MonitorArgs,
    /// pg_auto_failover formation
    #[arg(long, value_parser = formation_arg)]
    pub formation: Option<String>,
    #[command(flatten)]
    pub json: JsonArg,
}

/// `show file`.
#[derive(Debug, Clone, Args)]
pub struct ShowFileArgs {
    #[command(flatten)]
    pub pgdata: PgdataArg,
    /// show all pg_autoctl files
    #[arg(long)]
    pub all: bool,
    /// show pg_autoctl configuration file
    #[arg(long)]
    pub config: bool,
    /// show pg_autoctl state file
    #[arg(long)]
    pub state: bool,
    /// show pg_autoctl initialisation state file
    #[arg(long)]
    pub init: bool,
    /// show pg_autoctl PID file
    #[arg(long)]
    pub pid: bool,
    /// show selected file contents
    #[arg(long)]
    pub contents: bool,
    #[command(flatten)]
    pub json: JsonArg,
}

/// `enable|disable …`
#[derive(Debug, Subcommand)]
pub enum FeatureCommand {
    /// Enable or disable secondary nodes on a formation
    Secondary(FormationArgs),
    /// Enable or disable Postgres maintenance mode on this node
    Maintenance(MaintenanceArgs),
}

/// `enable|disable maintenance`.
#[derive(Debug, Clone, Args)]
pub struct MaintenanceArgs {
    #[command(flatten)]
    pub pgdata: PgdataArg,
    /// allow putting the primary in maintenance (a standby takes over)
    #[arg(long)]
    pub allow_failover: bool,
    /// how many seconds to wait, default to 60
    #[arg(long, default_value_t = 60)]
    pub wait: u64,
}

/// `get …`
#[derive(Debug, Subcommand)]
pub enum GetCommand {
    /// get a node property from the pg_auto_failover monitor
    #[command(subcommand)]
    Node(GetNodeCommand),
    /// get a formation property from the pg_auto_failover monitor
    #[command(subcommand)]
    Formation(GetFormationCommand),
}

/// `get node …`
#[derive(Debug, Subcommand)]
pub enum GetNodeCommand {
    /// get replication-quorum property from the monitor
    ReplicationQuorum(NodeTargetArgs),
    /// get candidate property from the monitor
    CandidatePriority(NodeTargetArgs),
}

/// `--formation --name` of a node, with monitor access and `--json`.
#[derive(Debug, Clone, Args)]
pub struct NodeTargetArgs {
    #[command(flatten)]
    pub monitor: MonitorArgs,
    /// pg_auto_failover formation
    #[arg(long, value_parser = formation_arg)]
    pub formation: Option<String>,
    /// pg_auto_failover node name
    #[arg(long, value_parser = node_name_arg)]
    pub name: Option<String>,
    #[command(flatten)]
    pub json: JsonArg,
}

/// `get formation …`
#[derive(Debug, Subcommand)]
pub enum GetFormationCommand {
    /// get replication settings for a formation from the monitor
    Settings(FormationArgs),
    /// get number_sync_standbys for a formation from the monitor
    NumberSyncStandbys(FormationArgs),
}

/// `set …`
#[derive(Debug, Subcommand)]
pub enum SetCommand {
    /// set a node property on the monitor
    #[command(subcommand)]
    Node(SetNodeCommand),
    /// set a formation property on the monitor
    #[command(subcommand)]
    Formation(SetFormationCommand),
}

/// `set node …`
#[derive(Debug, Subcommand)]
pub enum SetNodeCommand {
    /// set metadata on the monitor
    Metadata(SetMetadataArgs),
    /// set replication-quorum property on the monitor
    ReplicationQuorum(SetQuorumArgs),
    /// set candidate property on the monitor
    CandidatePriority(SetPriorityArgs),
}

/// `set node metadata`.
#[derive(Debug, Clone, Args)]
pub struct SetMetadataArgs {
    #[command(flatten)]
    pub pgdata: PgdataArg,
    /// pg_auto_failover node name
    #[arg(long, value_parser = node_name_arg)]
    pub name: Option<String>,
    /// hostname used to connect from other nodes
    #[arg(long, value_parser = host_arg)]
    pub hostname: Option<String>,
    /// PostgreSQL's port number
    #[arg(long)]
    pub pgport: Option<u16>,
    #[command(flatten)]
    pub json: JsonArg,
}

/// `set node replication-quorum`.
#[derive(Debug, Clone, Args)]
pub struct SetQuorumArgs {
    #[command(flatten)]
    pub target: NodeTargetArgs,
    /// true or false
    #[arg(value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub value: bool,
}

/// `set node candidate-priority`.
#[derive(Debug, Clone, Args)]
pub struct SetPriorityArgs {
    #[command(flatten)]
    pub target: NodeTargetArgs,
    /// priority: 0..100
    #[arg(value_parser = clap::value_parser!(i32).range(0..=100), allow_negative_numbers = true)]
    pub value: i32,
}

/// `set formation …`
#[derive(Debug, Subcommand)]
pub enum SetFormationCommand {
    /// set number-sync-standbys for a formation on the monitor
    NumberSyncStandbys(SetSyncStandbysArgs),
}

/// `set formation number-sync-standbys`.
#[derive(Debug, Clone, Args)]
pub struct SetSyncStandbysArgs {
    #[command(flatten)]
    pub target: FormationArgs,
    /// number_sync_standbys
    #[arg(allow_negative_numbers = true)]
    pub value: i32,
}

/// `perform …`
#[derive(Debug, Subcommand)]
pub enum PerformCommand {
    /// Perform a failover for given formation and group
    Failover(PerformArgs),
    /// Perform a switchover for given formation and group
    Switchover(PerformArgs),
    /// Perform a failover that promotes a target node
    Promotion(PromotionArgs),
}

/// `perform failover|switchover`.
#[derive(Debug, Clone, Args)]
pub struct PerformArgs {
    #[command(flatten)]
    pub monitor: MonitorArgs,
    /// formation to target, defaults to 'default'
    #[arg(long, value_parser = formation_arg)]
    pub formation: Option<String>,
    /// group to target, defaults to 0
    #[arg(long)]
    pub group: Option<i32>,
    /// how many seconds to wait, default to 60
    #[arg(long, default_value_t = 60)]
    pub wait: u64,
}

/// `perform promotion`.
#[derive(Debug, Clone, Args)]
pub struct PromotionArgs {
    #[command(flatten)]
    pub monitor: MonitorArgs,
    /// formation to target, defaults to 'default'
    #[arg(long, value_parser = formation_arg)]
    pub formation: Option<String>,
    /// node name to target, defaults to current node
    #[arg(long, value_parser = node_name_arg)]
    pub name: Option<String>,
    /// how many seconds to wait, default to 60
    #[arg(long, default_value_t = 60)]
    pub wait: u64,
}

/// `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub pgdata: PgdataArg,
    /// pg_auto_failover node name
    #[arg(long, value_parser = node_name_arg, alias = "nodename")]
    pub name: Option<String>,
    /// hostname used to connect from other nodes
    #[arg(long, value_parser = host_arg)]
    pub hostname: Option<String>,
    /// PostgreSQL's port number
    #[arg(long)]
    pub pgport: Option<u16>,
}

/// `watch`.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub target: FormationGroupArgs,
}

/// `stop`.
#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub pgdata: PgdataArg,
    /// fast shutdown mode for the keeper
    #[arg(long)]
    pub fast: bool,
    /// immediate shutdown mode for the keeper
    #[arg(long, conflicts_with = "fast")]
    pub immediate: bool,
    /// kill the service with SIGKILL (Postgres is left running)
    #[arg(long, hide = true)]
    pub sigkill: bool,
}

/// `value` when `check` accepts it (the reason otherwise, for clap's message).
fn checked<T>(
    value: &str,
    check: fn(&str) -> Result<T, fsm::vocab::VocabError>,
) -> Result<String, String> {
    check(value)
        .map(|_| value.to_string())
        .map_err(|e| e.reason)
}

/// `--hostname`: an IP address or a DNS host name (`fsm::vocab::Host`).
fn host_arg(value: &str) -> Result<String, String> {
    checked(value, fsm::vocab::Host::parse)
}

/// `--name`: a printable node name of at most 255 bytes.
fn node_name_arg(value: &str) -> Result<String, String> {
    checked(value, fsm::vocab::NodeName::parse)
}

/// `--formation`: a printable formation name of at most 63 bytes.
fn formation_arg(value: &str) -> Result<String, String> {
    checked(value, fsm::vocab::FormationId::parse)
}

/// `--dbname`, `--username`: a Postgres identifier of at most 63 bytes.
fn identifier_arg(value: &str) -> Result<String, String> {
    checked(value, fsm::vocab::PgIdentifier::parse)
}

/// `--listen`: `*`, or host names and addresses separated by commas.
fn listen_arg(value: &str) -> Result<String, String> {
    for part in value.split(',').map(str::trim) {
        if part != "*" {
            fsm::vocab::Host::parse(part).map_err(|e| e.to_string())?;
        }
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_2_0_invocations_scripts_use_parse() {
        for line in [
            "pg_autoctl create postgres --pgdata /d --pghost 127.0.0.1 --pgport 5433 --pgctl /usr/bin/pg_ctl --auth trust --monitor postgres://m/pg_auto_failover --dbname app --name n1 --hostname h --candidate-priority 50 --replication-quorum true --run -vv",
            "pg_autoctl create monitor --pgdata /m --pgport 5000 --auth trust --hostname h --no-ssl --run",
            "pg_autoctl create monitor --pgdata /m --pghost 127.0.0.1 --pgport 5000 --auth trust --no-ssl",
            "pg_autoctl set node candidate-priority --pgdata /d -- 20",
            "pg_autoctl set node replication-quorum --pgdata /d false",
            "pg_autoctl set formation number-sync-standbys --pgdata /d 1",
            "pg_autoctl show state --formation default --json",
            "pg_autoctl show uri --formation monitor --json",
            "pg_autoctl enable maintenance --allow-failover --pgdata /d",
            "pg_autoctl drop node --destroy --force --pgdata /d",
            "pg_autoctl drop node --monitor postgres://m/pg_auto_failover --formation default --name n2",
            "pg_autoctl perform promotion --name node_2",
            "pg_autoctl config set timeout.network_partition_timeout 10 --pgdata /d",
            "pg_autoctl stop --fast --pgdata /d",
            "pg_autoctl run --pgdata /d -v",
        ] {
            let args: Vec<&str> = line.split_whitespace().collect();
            if let Err(e) = Cli::try_parse_from(&args) {
                panic!("{line}: {e}");
            }
        }
    }

    #[test]
    fn hostile_names_and_hosts_are_refused_on_the_command_line() {
        for args in [
            vec!["--hostname", "0.0.0.0/0"],
            vec!["--hostname", "db1\nhost all all 0.0.0.0/0 trust"],
            vec!["--hostname", "all"],
            vec!["--name", "node\n1"],
            vec!["--formation", "f\u{202e}"],
            vec!["--dbname", "app\r"],
            vec!["--username", &"u".repeat(64)],
            vec!["--listen", "*'\nssl=off"],
        ] {
            let mut line = vec![
                "pg_autoctl",
                "create",
                "postgres",
                "--pgdata",
                "/d",
                "--auth",
                "trust",
                "--no-ssl",
            ];
            line.extend(args.iter().copied());
            assert!(Cli::try_parse_from(&line).is_err(), "{args:?} accepted");
        }
        assert!(
            Cli::try_parse_from([
                "pg_autoctl",
                "set",
                "node",
                "metadata",
                "--hostname",
                "10.0.0.0/8"
            ])
            .is_err()
        );
    }

    #[test]
    fn out_of_range_and_unknown_flags_are_refused() {
        for line in [
            "pg_autoctl create postgres --candidate-priority 101",
            "pg_autoctl create postgres --replication-quorum maybe",
            "pg_autoctl create monitor --pgport 70000",
            "pg_autoctl show state --colour",
            "pg_autoctl set node candidate-priority -- -1",
        ] {
            let args: Vec<&str> = line.split_whitespace().collect();
            assert!(Cli::try_parse_from(&args).is_err(), "{line} parsed");
        }
    }
}
