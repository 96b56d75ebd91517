//! `config get|set|check`.

use super::{load_node, pgdata_of, print_json};
use crate::cli::{ConfigGetArgs, ConfigSetArgs, PgdataJson};
use crate::config::{Config, ConfigFile, find_key};
use crate::exit::{CliError, CliResult};
use crate::paths::NodePaths;
use crate::postgres::pgdata::PostmasterPid;
use crate::postgres::programs::{PgBin, check_pg_ctl};

fn file_of(pgdata: &PgdataJson) -> CliResult<(NodePaths, ConfigFile)> {
    let paths = NodePaths::from_env(&pgdata_of(&pgdata.pgdata)?)?;
    let file = ConfigFile::load(&paths.config)?;
    Ok((paths, file))
}

/// `config get [section.option]`: one key's value as it is stored (scripts read it; the file
/// is the caller's own), or every key with secrets hidden.
pub fn get(a: ConfigGetArgs) -> CliResult<()> {
    let (_, file) = file_of(&a.pgdata)?;
    let role = file.role()?;
    match &a.key {
        Some(name) => {
            let key = find_key(name, role)?;
            let value = file.get(key).unwrap_or_default();
            if a.pgdata.json.json {
                print_json(&serde_json::json!({ name: value }));
            } else {
                println!("{value}");
            }
        }
        None => {
            let entries = file.entries(role);
            if a.pgdata.json.json {
                let map: serde_json::Map<String, serde_json::Value> = entries
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect();
                print_json(&serde_json::Value::Object(map));
            } else {
                for (k, v) in entries {
                    println!("{k} = {v}");
                }
            }
        }
    }
    Ok(())
}

/// `config set section.option value`: checked, then written atomically. The running
/// service picks it up on `pg_autoctl reload`. A new `postgresql.pg_ctl` must be a pg_ctl
/// (`check_pg_ctl`): a wrong one would make every later command fail, teardown included.
pub async fn set(a: ConfigSetArgs) -> CliResult<()> {
    let (paths, mut file) = file_of(&a.pgdata)?;
    let role = file.role()?;
    let key = find_key(&a.key, role)?;
    if key.fixed {
        return Err(CliError::bad_args(format!(
            "{} cannot be changed with config set: it says what this configuration is for",
            a.key
        ))
        .hint(
            "Create the node again (pg_autoctl drop node, then pg_autoctl create) to change it.",
        ));
    }
    file.set(key, &a.value)?;
    // the whole file must still make sense
    Config::from_file(&file)?;
    if (key.section, key.option) == ("postgresql", "pg_ctl") {
        check_pg_ctl(std::path::Path::new(&a.value)).await?;
    }
    file.save(&paths.config)?;
    let value = file.get(key).unwrap_or_default();
    if a.pgdata.json.json {
        print_json(&serde_json::json!({ a.key.clone(): value }));
    } else {
        println!("{value}");
    }
    Ok(())
}

/// `config check`: the configuration reads, pg_ctl exists, PGDATA holds a database.
pub async fn check(a: PgdataJson) -> CliResult<()> {
    let (_, config) = load_node(&a.pgdata)?;
    let bin = PgBin::from_pg_ctl(&config.pg.pg_ctl)?;
    let version = bin.major_version().await?;
    let control = bin.controldata(&config.pg.pgdata).await.ok();
    let running = PostmasterPid::read(&config.pg.pgdata).filter(PostmasterPid::is_alive);
    if a.json.json {
        print_json(&serde_json::json!({
            "role": config.role.as_str(),
            "pgdata": config.pg.pgdata,
            "pg_ctl": config.pg.pg_ctl,
            "pg_version": version,
            "system_identifier": control.as_ref().map(|c| c.system_identifier.to_string()),
            "postgres_running": running.is_some(),
            "port": config.pg.port,
        }));
    } else {
        println!("Role:              {}", config.role.as_str());
        println!("PGDATA:            {}", config.pg.pgdata.display());
        println!(
            "pg_ctl:            {} (PostgreSQL {version})",
            config.pg.pg_ctl.display()
        );
        match &control {
            Some(c) => println!("System identifier: {}", c.system_identifier),
            None => println!("System identifier: (no database yet)"),
        }
        println!(
            "Postgres:          {}",
            if running.is_some() {
                "running"
            } else {
                "not running"
            }
        );
    }
    Ok(())
}
