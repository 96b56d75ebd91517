//! The monitor under heartbeats: `node_active()` throughput and latency with pgbench, and
//! the monitor's CPU while 100 nodes heartbeat once a second. The same scripts run against
//! both monitors; the nodes are registered through the SQL API (no Postgres behind them).

use std::path::Path;
use std::time::Duration;

use harness::autoctl::{Cluster, Flavor};
use harness::server::pg_command;
use serde::Serialize;

use harness::procfs;

/// One pgbench measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Transactions per second.
    pub tps: f64,
    /// Average latency in milliseconds.
    pub latency_ms: f64,
}

/// A bare monitor (no node) run by `flavor`.
pub fn monitor(flavor: &Flavor) -> Cluster {
    Cluster::start_flavor("bench-monitor", &[], flavor.clone())
}

/// Registers `count` nodes, one per formation (`default`, then `f2`, `f3`…), each reporting
/// `single` once so that later heartbeats change nothing. Node ids are 1..=count.
pub fn register_nodes(cluster: &Cluster, count: usize) {
    let mut client = cluster.monitor_client().expect("connect to the monitor");
    let sql = format!(
        "DO $$ BEGIN
           FOR i IN 1..{count} LOOP
             IF i > 1 THEN
               PERFORM pgautofailover.create_formation('f' || i, 'pgsql', 'postgres', true, 0);
             END IF;
             PERFORM pgautofailover.register_node(
               CASE WHEN i = 1 THEN 'default' ELSE 'f' || i END,
               '127.0.0.1', 30000 + i, 'postgres', 'n' || i, 1000 + i, -1, -1, 'init');
             PERFORM {heartbeat};
           END LOOP;
         END $$",
        heartbeat = heartbeat_call("CASE WHEN i = 1 THEN 'default' ELSE 'f' || i END", "i")
    );
    client.batch_execute(&sql).expect("register the nodes");
}

/// A `node_active()` call reporting a running `single` at 0/1000000, its arguments placed
/// where the catalogue (`fsm::protocol`) puts them: `formation` and `node_id` are SQL
/// expressions.
fn heartbeat_call(formation: &str, node_id: &str) -> String {
    use fsm::protocol::api::node_active as f;
    let args = f::Arguments {
        formation_id: formation,
        node_id,
        group_id: "0",
        current_group_role: "'single'",
        current_pg_is_running: "true",
        current_tli: "1",
        current_lsn: "'0/1000000'",
        current_rep_state: "''",
    }
    .in_order();
    format!("pgautofailover.{}({})", f::FUNCTION.name, args.join(", "))
}

/// The pgbench script heartbeating a random one of `count` registered nodes.
fn heartbeat_script(count: usize) -> String {
    format!(
        "\\set i random(1, {count})\nSELECT * FROM {};\n",
        heartbeat_call("CASE WHEN :i = 1 THEN 'default' ELSE 'f' || :i END", ":i")
    )
}

/// Runs pgbench against the monitor with `script` for `seconds`, `clients` connections,
/// and an optional total `rate` (transactions per second).
pub fn pgbench(
    cluster: &Cluster,
    script: &str,
    clients: usize,
    seconds: u64,
    rate: Option<u32>,
) -> Throughput {
    let file = cluster.dir.path().join(format!("bench-{clients}.sql"));
    std::fs::write(&file, script).expect("write the pgbench script");
    let mut cmd = pg_command("pgbench");
    cmd.args(["-n", "-M", "prepared", "-h", "127.0.0.1"])
        .args(["-p", &cluster.monitor_port.to_string(), "-U", "postgres"])
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
        ])
        .args(["-T", &seconds.to_string(), "-f"])
        .arg(&file);
    if let Some(rate) = rate {
        cmd.args(["-R", &rate.to_string()]);
    }
    cmd.arg("pg_auto_failover");
    let out = cmd.output().expect("run pgbench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_pgbench(&text).unwrap_or_else(|| panic!("cannot read pgbench's output:\n{text}"))
}

/// tps and average latency from pgbench's report.
pub fn parse_pgbench(text: &str) -> Option<Throughput> {
    let number_after = |prefix: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some(Throughput {
        tps: number_after("tps = ")?,
        latency_ms: number_after("latency average = ")?,
    })
}

/// `node_active()` with 1 and 4 clients over `nodes` registered nodes, plus `SELECT 1`.
pub struct HeartbeatFigures {
    /// (registered nodes, clients, measurement).
    pub node_active: Vec<(usize, usize, Throughput)>,
    /// `SELECT 1` with one client, the round trip floor.
    pub select_one: Throughput,
}

/// Measures heartbeat throughput on a fresh monitor of `flavor`.
pub fn heartbeat_throughput(flavor: &Flavor, seconds: u64) -> HeartbeatFigures {
    let mut node_active = Vec::new();
    let mut select_one = None;
    for nodes in [1usize, 1000] {
        let cluster = monitor(flavor);
        register_nodes(&cluster, nodes);
        let script = heartbeat_script(nodes);
        for clients in [1usize, 4] {
            node_active.push((
                nodes,
                clients,
                pgbench(&cluster, &script, clients, seconds, None),
            ));
        }
        if select_one.is_none() {
            select_one = Some(pgbench(&cluster, "SELECT 1;\n", 1, seconds, None));
        }
    }
    HeartbeatFigures {
        node_active,
        select_one: select_one.unwrap_or(Throughput {
            tps: 0.0,
            latency_ms: 0.0,
        }),
    }
}

/// The postmaster pid of the Postgres in `pgdata`.
pub fn postmaster(pgdata: &Path) -> i32 {
    std::fs::read_to_string(pgdata.join("postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
        .expect("postmaster.pid")
}

/// The monitor's CPU use (percent of one core) while 100 registered nodes heartbeat once a
/// second each for `seconds`.
pub fn monitor_cpu_with_100_nodes(flavor: &Flavor, seconds: u64) -> f64 {
    let cluster = monitor(flavor);
    register_nodes(&cluster, 100);
    let pid = postmaster(&cluster.monitor_pgdata);
    let script = heartbeat_script(100);
    // let the health checks of the new nodes settle first
    std::thread::sleep(Duration::from_secs(2));
    let before = procfs::tree_ticks(pid);
    // 100 heartbeats a second over 10 connections (2.0's monitor allows 100 connections)
    pgbench(&cluster, &script, 10, seconds, Some(100));
    let after = procfs::tree_ticks(pid);
    100.0 * (after.saturating_sub(before)) as f64 / procfs::ticks_per_second() / seconds as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pgbench_output() {
        let text = "transaction type: x.sql\nlatency average = 0.206 ms\ninitial connection time = 2.1 ms\ntps = 4849.123 (without initial connection time)\n";
        let t = parse_pgbench(text).expect("parse");
        assert_eq!(t.tps, 4849.123);
        assert_eq!(t.latency_ms, 0.206);
        assert!(parse_pgbench("nothing").is_none());
    }
}
