//! `create formation`, `drop formation`, `enable|disable secondary`.

use super::{connect_monitor, formation_of, print_json};
use crate::cli::{CreateFormationArgs, DropFormationArgs, FormationArgs};
use crate::exit::CliResult;
use crate::monitor::FormationRow;

/// `create formation`.
pub async fn create(a: CreateFormationArgs) -> CliResult<()> {
    let (monitor, _) = connect_monitor(&a.monitor).await?;
    let created = monitor
        .create_formation(&FormationRow {
            formation_id: a.formation.clone(),
            kind: a.kind.clone(),
            dbname: a.dbname.clone(),
            opt_secondary: !a.disable_secondary,
            number_sync_standbys: a.number_sync_standbys,
        })
        .await?;
    if a.json.json {
        print_json(&serde_json::to_value(&created).unwrap_or_default());
    } else {
        println!(
            "formation {} created: kind {}, dbname {}, secondaries {}, number_sync_standbys {}",
            created.formation_id,
            created.kind,
            created.dbname,
            if created.opt_secondary {
                "enabled"
            } else {
                "disabled"
            },
            created.number_sync_standbys
        );
    }
    Ok(())
}

/// `drop formation`.
pub async fn drop(a: DropFormationArgs) -> CliResult<()> {
    let (monitor, _) = connect_monitor(&a.monitor).await?;
    monitor.drop_formation(&a.formation).await?;
    println!("formation {} dropped", a.formation);
    Ok(())
}

/// `enable|disable secondary`.
pub async fn secondary(a: FormationArgs, enable: bool) -> CliResult<()> {
    let (monitor, config) = connect_monitor(&a.monitor).await?;
    let formation = formation_of(&a.formation, &config);
    monitor.set_secondary(&formation, enable).await?;
    println!(
        "secondaries {} in formation {formation}",
        if enable { "enabled" } else { "disabled" }
    );
    Ok(())
}
