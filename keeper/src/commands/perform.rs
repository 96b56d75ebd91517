//! `perform failover|switchover|promotion`: ask the monitor, then follow the group's state
//! changes until it settles with a new primary, or the wait times out.

use std::time::Duration;

use super::wait::{follow_group, is_stable, writable};
use super::{connect_monitor, formation_of};
use crate::cli::{PerformArgs, PromotionArgs};
use crate::exit::{CliError, CliResult};

/// `perform failover` and `perform switchover` (the same call, as in 2.0).
pub async fn failover(a: PerformArgs, switchover: bool) -> CliResult<()> {
    let (mut monitor, config) = connect_monitor(&a.monitor).await?;
    let formation = formation_of(&a.formation, &config);
    let group = super::group_of(a.group, &config);
    let before = monitor.current_state(&formation, Some(group)).await?;
    let old_primary = writable(&before).map(|n| n.node_id);
    monitor.listen("state").await?;
    monitor.perform_failover(&formation, group).await?;
    let what = if switchover {
        "the switchover"
    } else {
        "the failover"
    };
    let nodes = follow_group(
        &mut monitor,
        &formation,
        Some(group),
        Duration::from_secs(a.wait),
        what,
        super::wait::Show::Stdout,
        |nodes| is_stable(nodes) && writable(nodes).is_some_and(|p| Some(p.node_id) != old_primary),
    )
    .await?;
    if let Some(p) = writable(&nodes) {
        println!(
            "{what} is done: {} is now the primary ({}:{})",
            p.nodename, p.nodehost, p.nodeport
        );
    }
    Ok(())
}

/// `perform promotion --name N`.
pub async fn promotion(a: PromotionArgs) -> CliResult<()> {
    let (mut monitor, config) = connect_monitor(&a.monitor).await?;
    let formation = formation_of(&a.formation, &config);
    let name = super::node_name_of(&a.name, &config).ok_or_else(|| {
        CliError::bad_args("--name is required").hint("Name the node to promote.")
    })?;
    let Some((_, group, _, _)) = monitor.node_by_name(&formation, &name).await? else {
        return Err(CliError::bad_args(format!(
            "no node named \"{name}\" in formation \"{formation}\""
        )));
    };
    monitor.listen("state").await?;
    let started = monitor.perform_promotion(&formation, &name).await?;
    if !started {
        println!("{name} is already the primary");
        return Ok(());
    }
    follow_group(
        &mut monitor,
        &formation,
        Some(group),
        Duration::from_secs(a.wait),
        "the promotion",
        super::wait::Show::Stdout,
        |nodes| is_stable(nodes) && writable(nodes).is_some_and(|p| p.nodename == name),
    )
    .await?;
    println!("the promotion is done: {name} is now the primary");
    Ok(())
}
