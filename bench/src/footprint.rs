//! What an idle keeper costs: its memory and CPU (every pg_autoctl process of a node, not
//! Postgres), and how many new connections it opens to the monitor.

use std::time::Duration;

use harness::autoctl::{Cluster, Flavor};
use serde::Serialize;

use crate::profiles::DEFAULTS;
use crate::scenarios::pair;
use harness::procfs;

/// An idle keeper's footprint.
#[derive(Debug, Clone, Serialize)]
pub struct Footprint {
    /// Resident memory of the node's pg_autoctl processes, in MiB.
    pub keeper_rss_mib: f64,
    /// How many pg_autoctl processes the node runs.
    pub keeper_processes: usize,
    /// Their CPU use, percent of one core.
    pub keeper_cpu_percent: f64,
    /// New connections to the monitor per keeper per second.
    pub monitor_connections_per_keeper_s: f64,
}

/// The pids of the pg_autoctl processes of the service whose top process is `root`.
fn keeper_processes(root: i32) -> Vec<i32> {
    procfs::tree(root)
        .into_iter()
        .filter(|pid| procfs::comm(*pid).starts_with("pg_autoctl"))
        .collect()
}

fn sessions(cluster: &Cluster) -> i64 {
    cluster
        .monitor_client()
        .and_then(|mut c| {
            c.query_one(
                "SELECT sessions FROM pg_stat_database WHERE datname = 'pg_auto_failover'",
                &[],
            )
        })
        .map(|r| r.get(0))
        .unwrap_or(0)
}

/// Measures a primary's keeper of `flavor`, idle for `seconds`.
pub fn idle_keeper(flavor: &Flavor, seconds: u64) -> Footprint {
    let (cluster, _) = pair("bench-idle", flavor, &DEFAULTS);
    // settled: let the first seconds of a fresh node pass
    std::thread::sleep(Duration::from_secs(3));
    let root = cluster.node("node_1").service.pid().expect("keeper pid");
    let sessions_before = sessions(&cluster);
    let ticks_before: u64 = keeper_processes(root)
        .iter()
        .map(|p| procfs::tree_ticks_own(*p))
        .sum();
    std::thread::sleep(Duration::from_secs(seconds));
    let pids = keeper_processes(root);
    let ticks_after: u64 = pids.iter().map(|p| procfs::tree_ticks_own(*p)).sum();
    // our own query above counts once
    let new_sessions = (sessions(&cluster) - sessions_before - 1).max(0);
    Footprint {
        keeper_rss_mib: pids.iter().map(|p| procfs::rss_kib(*p)).sum::<u64>() as f64 / 1024.0,
        keeper_processes: pids.len(),
        keeper_cpu_percent: 100.0 * ticks_after.saturating_sub(ticks_before) as f64
            / procfs::ticks_per_second()
            / seconds as f64,
        monitor_connections_per_keeper_s: new_sessions as f64 / 2.0 / seconds as f64,
    }
}
