//! One module per group of commands; [`dispatch`] routes the parsed command line. The helpers
//! here find the node's files and the monitor the way every command does.

mod config_cmd;
mod control;
mod create_monitor;
mod create_postgres;
mod drop;
mod formation;
mod maintenance;
mod node_settings;
mod perform;
mod show;
mod table;
mod undo;
mod wait;

use std::path::PathBuf;

use crate::cli::{self, Command, MonitorArgs, PgdataArg};
use crate::config::{Config, Role};
use crate::exit::{CliError, CliResult};
use crate::monitor::Monitor;
use crate::paths::NodePaths;

/// Runs the command `cli` asks for.
pub async fn dispatch(cli: cli::Cli) -> CliResult<()> {
    if cli.version {
        return control::version(false);
    }
    let Some(command) = cli.command else {
        return Err(CliError::bad_args("no command given").hint("See pg_autoctl --help."));
    };
    match command {
        Command::Create(c) => match c {
            cli::CreateCommand::Monitor(a) => create_monitor::run(a).await,
            cli::CreateCommand::Postgres(a) => create_postgres::run(*a).await,
            cli::CreateCommand::Formation(a) => formation::create(a).await,
        },
        Command::Drop(c) => match c {
            cli::DropCommand::Monitor(a) => drop::monitor(a).await,
            cli::DropCommand::Node(a) => drop::node(a).await,
            cli::DropCommand::Formation(a) => formation::drop(a).await,
        },
        Command::Config(c) => match c {
            cli::ConfigCommand::Check(a) => config_cmd::check(a).await,
            cli::ConfigCommand::Get(a) => config_cmd::get(a),
            cli::ConfigCommand::Set(a) => config_cmd::set(a).await,
        },
        Command::Show(c) => match c {
            cli::ShowCommand::Uri(a) => show::uri(a).await,
            cli::ShowCommand::Events(a) => show::events(a).await,
            cli::ShowCommand::State(a) => show::state(a).await,
            cli::ShowCommand::Settings(a) => node_settings::formation_settings(a).await,
            cli::ShowCommand::StandbyNames(a) => show::standby_names(a).await,
            cli::ShowCommand::File(a) => show::file(a),
            cli::ShowCommand::Systemd(a) => show::systemd(a),
        },
        Command::Enable(c) => feature(c, true).await,
        Command::Disable(c) => feature(c, false).await,
        Command::Get(c) => match c {
            cli::GetCommand::Node(cli::GetNodeCommand::CandidatePriority(a)) => {
                node_settings::get_candidate_priority(a).await
            }
            cli::GetCommand::Node(cli::GetNodeCommand::ReplicationQuorum(a)) => {
                node_settings::get_replication_quorum(a).await
            }
            cli::GetCommand::Formation(cli::GetFormationCommand::Settings(a)) => {
                node_settings::formation_settings(a).await
            }
            cli::GetCommand::Formation(cli::GetFormationCommand::NumberSyncStandbys(a)) => {
                node_settings::get_number_sync_standbys(a).await
            }
        },
        Command::Set(c) => match c {
            cli::SetCommand::Node(cli::SetNodeCommand::Metadata(a)) => {
                node_settings::set_metadata(a).await
            }
            cli::SetCommand::Node(cli::SetNodeCommand::CandidatePriority(a)) => {
                node_settings::set_candidate_priority(a).await
            }
            cli::SetCommand::Node(cli::SetNodeCommand::ReplicationQuorum(a)) => {
                node_settings::set_replication_quorum(a).await
            }
            cli::SetCommand::Formation(cli::SetFormationCommand::NumberSyncStandbys(a)) => {
                node_settings::set_number_sync_standbys(a).await
            }
        },
        Command::Perform(c) => match c {
            cli::PerformCommand::Failover(a) => perform::failover(a, false).await,
            cli::PerformCommand::Switchover(a) => perform::failover(a, true).await,
            cli::PerformCommand::Promotion(a) => perform::promotion(a).await,
        },
        Command::Run(a) => control::run(a).await,
        Command::Watch(a) => show::watch(a).await,
        Command::Stop(a) => control::stop(a).await,
        Command::Reload(a) => control::reload(a),
        Command::Status(a) => control::status(a),
        Command::Version(a) => control::version(a.json),
    }
}

async fn feature(command: cli::FeatureCommand, enable: bool) -> CliResult<()> {
    match command {
        cli::FeatureCommand::Secondary(a) => formation::secondary(a, enable).await,
        cli::FeatureCommand::Maintenance(a) => maintenance::run(a, enable).await,
    }
}

use crate::os_user::refuse_root;

/// `--pgdata`, or $PGDATA (clap fills it in), or an error saying so.
pub fn pgdata_of(arg: &PgdataArg) -> CliResult<PathBuf> {
    arg.pgdata.clone().ok_or_else(|| {
        CliError::bad_args("no data directory given")
            .hint("Use --pgdata or set the PGDATA environment variable.")
    })
}

/// The files and configuration of the node at `--pgdata`.
pub fn load_node(arg: &PgdataArg) -> CliResult<(NodePaths, Config)> {
    let pgdata = pgdata_of(arg)?;
    let paths = NodePaths::from_env(&pgdata)?;
    let config = Config::load_for(&paths)?;
    Ok((paths, config))
}

/// A connection to the monitor: `--monitor` when given, else the one configured for the
/// node at `--pgdata` (on the monitor node itself, its local URI). Returns the node's
/// configuration when it was read.
pub async fn connect_monitor(args: &MonitorArgs) -> CliResult<(Monitor, Option<Config>)> {
    let config = match (&args.monitor, &args.pgdata.pgdata) {
        (Some(_), None) => None,
        (Some(_), Some(_)) => load_node(&args.pgdata).ok().map(|(_, c)| c),
        (None, _) => Some(load_node(&args.pgdata).map_err(|e| {
            if args.pgdata.pgdata.is_none() {
                CliError::bad_args("no monitor given")
                    .hint("Use --monitor URI, or --pgdata (or PGDATA) of a node made by pg_autoctl.")
            } else {
                e
            }
        })?
        .1),
    };
    let uri = match (&args.monitor, &config) {
        (Some(uri), _) => uri.clone(),
        (None, Some(c)) if c.role == Role::Monitor => {
            crate::node_setup::local_monitor_uri(c).to_uri_string()
        }
        (None, Some(c)) => c.monitor.clone().ok_or_else(|| {
            CliError::bad_config("this node has no monitor configured").hint("Use --monitor URI.")
        })?,
        (None, None) => return Err(CliError::bad_args("no monitor given")),
    };
    let monitor = Monitor::connect_str(&uri, "pg_autoctl").await?;
    monitor.check_extension().await?;
    Ok((monitor, config))
}

/// The node named by `--name`, else the node whose `--pgdata` was given.
pub fn node_name_of(flag: &Option<String>, config: &Option<Config>) -> Option<String> {
    flag.clone().or_else(|| {
        config
            .as_ref()
            .filter(|c| c.role == Role::Keeper)
            .map(|c| c.name.clone())
    })
}

/// The formation a command is about: `--formation`, else the node's, else "default".
pub fn formation_of(flag: &Option<String>, config: &Option<Config>) -> String {
    flag.clone()
        .or_else(|| {
            config
                .as_ref()
                .filter(|c| c.role == Role::Keeper)
                .map(|c| c.formation.clone())
        })
        .unwrap_or_else(|| "default".to_string())
}

/// The group a command is about: `--group`, else the node's, else 0.
pub fn group_of(flag: Option<i32>, config: &Option<Config>) -> i32 {
    flag.or_else(|| {
        config
            .as_ref()
            .filter(|c| c.role == Role::Keeper)
            .map(|c| c.group)
    })
    .unwrap_or(0)
}

/// Prints `value` as JSON indented by four spaces, as 2.0 does.
pub fn print_json(value: &serde_json::Value) {
    println!("{}", json_text(value));
}

/// Prints `value` like [`print_json`] with every '/' escaped, as 2.0 does for the objects its
/// JSON library builds (rather than those Postgres builds).
pub fn print_json_escaped(value: &serde_json::Value) {
    // '/' only ever appears inside strings
    println!("{}", json_text(value).replace('/', "\\/"));
}

fn json_text(value: &serde_json::Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    match value.serialize(&mut serializer) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => value.to_string(),
    }
}
