//! The failover scenarios, run the same way for each system: a monitor and two nodes on
//! loopback, a client inserting every 50 ms through the formation's multi-host read-write URI.

use std::time::{Duration, Instant};

use harness::autoctl::{Cluster, Flavor};
use harness::wait;
use harness::writer::{self, Report, Writer};
use serde::Serialize;

use crate::profiles::Profile;

/// The client's pace.
pub const WRITE_EVERY: Duration = Duration::from_millis(50);

/// How long a system may take to bring writes back before the run counts as failed.
const WRITES_BACK_TIMEOUT: Duration = Duration::from_secs(150);

/// What one failover run measured.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverRun {
    /// Seconds from the fault until the client's first acknowledged insert.
    pub writes_back_s: f64,
    /// Acknowledged rows missing on the new primary afterwards.
    pub lost_rows: usize,
    /// Rows the client saw acknowledged.
    pub acknowledged: usize,
}

/// What one switchover run measured.
#[derive(Debug, Clone, Serialize)]
pub struct SwitchoverRun {
    /// The client's longest time between two acknowledged inserts, in seconds.
    pub write_gap_s: f64,
    /// Wall time of `pg_autoctl perform switchover`, in seconds.
    pub command_s: f64,
    /// Acknowledged rows missing afterwards.
    pub lost_rows: usize,
}

/// How long a monitor runs before a fault is injected: past both monitors'
/// `startup_grace_period` (10 s), during which neither fails a node over. A monitor in
/// production has been up for long; a fault in its first seconds is not what users meet.
const MONITOR_WARM_UP: Duration = Duration::from_secs(12);

/// A monitor and two nodes (primary, secondary) run by `flavor` with `profile`, with the
/// instant the monitor was created.
pub fn pair(label: &str, flavor: &Flavor, profile: &Profile) -> (Cluster, Instant) {
    let born = Instant::now();
    let mut cluster = Cluster::start_flavor(label, profile.monitor, flavor.clone());
    let settle = Duration::from_secs(180);
    cluster.add_node("node_1", &[]);
    cluster.wait_states("node_1:single/single", settle);
    cluster.add_node("node_2", &[]);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", settle);
    if let Some(timeout) = profile.partition_timeout {
        for node in ["node_1", "node_2"] {
            cluster.configure_node(node, "timeout.network_partition_timeout", timeout);
        }
    }
    let mut primary = cluster
        .node("node_1")
        .connect()
        .expect("connect to the primary");
    writer::prepare(&mut primary);
    (cluster, born)
}

/// Sleeps until the monitor created at `born` is past its warm-up.
fn past_warm_up(born: Instant) {
    let ready = born + MONITOR_WARM_UP;
    let now = Instant::now();
    if ready > now {
        std::thread::sleep(ready - now);
    }
}

/// The URI an application uses, as the `postgres` user.
fn app_uri(cluster: &Cluster) -> String {
    let uri = cluster.on_monitor(&["show", "uri", "--formation", "default"]);
    uri.trim()
        .replacen("postgres://", "postgres://postgres@", 1)
}

/// Waits until the writer has `n` acknowledgements (at most 30 s).
fn warm_up(writer: &Writer, n: usize) {
    let _ = wait::until(
        "the client to write",
        Duration::from_secs(30),
        Duration::from_millis(20),
        || (writer.acknowledged() >= n).then_some(()),
    );
}

/// Acknowledged rows of `report` missing on whichever node is writable now.
fn lost_rows(cluster: &Cluster, report: &Report) -> usize {
    let uri = app_uri(cluster);
    let present: Vec<i64> = wait::until(
        "the primary to answer",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || {
            let mut client = postgres::Client::connect(&uri, postgres::NoTls).ok()?;
            writer::ids_written_by(&mut client, "app").ok()
        },
    )
    .unwrap_or_default();
    writer::missing(&report.ids(), &present).len()
}

/// Runs `fault` on a settled pair under the client and measures how long writes are gone.
fn failover_run(
    (mut cluster, born): (Cluster, Instant),
    fault: impl FnOnce(&mut Cluster),
) -> FailoverRun {
    let cluster = &mut cluster;
    let writer = Writer::start_paced("app", &app_uri(cluster), None, WRITE_EVERY);
    warm_up(&writer, 20);
    past_warm_up(born);
    let fault_at = Instant::now();
    fault(cluster);
    let back = wait::until(
        "writes to come back",
        WRITES_BACK_TIMEOUT,
        Duration::from_millis(10),
        || writer.first_ack_of_a_write_sent_after(fault_at),
    );
    // a few more writes after the recovery, then stop
    std::thread::sleep(Duration::from_millis(500));
    let report = writer.finish();
    if std::env::var_os("PGAF_BENCH_EVENTS").is_some() {
        eprintln!("fault at {fault_at:?}:\n{}", cluster.logs());
    }
    let writes_back_s = match back {
        Ok(at) => at.duration_since(fault_at).as_secs_f64(),
        Err(e) => panic!("{e}\n{}", cluster.logs()),
    };
    FailoverRun {
        writes_back_s,
        lost_rows: lost_rows(cluster, &report),
        acknowledged: report.acks.len(),
    }
}

/// Host loss: the primary's keeper and Postgres killed with SIGKILL.
pub fn host_loss(flavor: &Flavor, profile: &Profile) -> FailoverRun {
    failover_run(pair("bench-host", flavor, profile), |c| {
        c.node_mut("node_1").service.kill()
    })
}

/// Postgres on the primary killed with SIGKILL; its keeper lives.
pub fn postgres_crash(flavor: &Flavor, profile: &Profile) -> FailoverRun {
    failover_run(pair("bench-crash", flavor, profile), |c| {
        let pgdata = c.node("node_1").pgdata.clone();
        let pid: i32 = std::fs::read_to_string(pgdata.join("postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
            .expect("postmaster pid");
        // SAFETY: killing the postmaster this benchmark started
        unsafe { libc::kill(pid, libc::SIGKILL) };
    })
}

/// A planned switchover under the client.
pub fn switchover(flavor: &Flavor, profile: &Profile) -> SwitchoverRun {
    let (cluster, born) = pair("bench-switch", flavor, profile);
    let writer = Writer::start_paced("app", &app_uri(&cluster), None, WRITE_EVERY);
    warm_up(&writer, 20);
    past_warm_up(born);
    let started = Instant::now();
    cluster.on_monitor(&["perform", "switchover"]);
    let command_s = started.elapsed().as_secs_f64();
    let after = Instant::now();
    let _ = wait::until(
        "writes after the switchover",
        WRITES_BACK_TIMEOUT,
        Duration::from_millis(10),
        || writer.first_ack_after(after),
    );
    std::thread::sleep(Duration::from_millis(500));
    let report = writer.finish();
    SwitchoverRun {
        write_gap_s: report.max_gap().as_secs_f64(),
        command_s,
        lost_rows: lost_rows(&cluster, &report),
    }
}
