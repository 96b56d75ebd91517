//! The primary's lease (`fsm::lease`): a primary frozen past its lease (SIGSTOP of its keeper,
//! its Postgres and every backend: a VM paused, a process stalled in swap) is failed over, and
//! once resumed it acknowledges no write after the new primary took one; nothing acknowledged
//! is lost, and the old primary rejoins as a standby. A primary's keeper restarted while the
//! monitor is away holds no lease: without a synchronous standby it stays fenced until the
//! monitor answers.

use std::time::{Duration, Instant};

use tests::autoctl::{Cluster, FAST_MONITOR};
use tests::procfs::signal_tree;
use tests::wait;
use tests::writer::{self, Prober, Writer, check_no_split_brain};

const SETTLE: Duration = Duration::from_secs(90);

/// [`FAST_MONITOR`] (a 2 s lease, bounded by node_considered_unhealthy_timeout), with a
/// primary_demote_timeout far longer than anything the lease needs: a promotion before it
/// shows the lease, not the 2.0 drain, decided. A later line of postgresql.conf wins.
fn lease_monitor() -> Vec<&'static str> {
    [
        FAST_MONITOR,
        &["pgautofailover.primary_demote_timeout = 60000"],
    ]
    .concat()
}

/// Every process of a node's "host": its service tree and its Postgres tree.
fn host_roots(cluster: &Cluster, name: &str) -> Vec<i32> {
    let node = cluster.node(name);
    let mut roots: Vec<i32> = node.service.pid().into_iter().collect();
    if let Some(pid) = std::fs::read_to_string(node.pgdata.join("postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
    {
        roots.push(pid);
    }
    roots
}

#[test]
fn a_primary_frozen_past_its_lease_takes_no_write_after_the_new_primary() {
    let mut cluster = Cluster::start("lease-freeze", &lease_monitor());
    cluster.add_node("node_1", &[]);
    cluster.wait_states("node_1:single/single", SETTLE);
    cluster.add_node("node_2", &[]);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);
    writer::prepare(&mut cluster.node("node_1").connect().expect("connect"));

    let uri = cluster.on_monitor(&["show", "uri", "--formation", "default"]);
    let uri = uri
        .trim()
        .replacen("postgres://", "postgres://postgres@", 1);
    let app = Writer::start("app", &uri, None);
    let probes: Vec<(String, Prober)> = cluster
        .nodes
        .iter()
        .map(|n| (n.name.clone(), Prober::start(&n.name, None, n.port)))
        .collect();
    std::thread::sleep(Duration::from_secs(2));

    let roots = host_roots(&cluster, "node_1");
    let frozen_at = Instant::now();
    for root in &roots {
        signal_tree(*root, libc::SIGSTOP);
    }
    let promoted = wait::until(
        "node_2 to take writes",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || {
            let states = cluster.states();
            (states.contains("node_2:wait_primary/wait_primary")
                || states.contains("node_2:primary/primary"))
            .then_some(())
        },
    );
    let promoted_after = frozen_at.elapsed();
    // resume the old primary well past its lease, while the new one takes writes
    std::thread::sleep(Duration::from_secs(2));
    for root in &roots {
        signal_tree(*root, libc::SIGCONT);
    }
    promoted.unwrap_or_else(|e| panic!("{e}: {}\n{}", cluster.states(), cluster.logs()));
    assert!(
        promoted_after < Duration::from_secs(20),
        "promoted after {promoted_after:?}: the lease, not primary_demote_timeout (60 s), decides"
    );

    cluster.wait_states("node_1:secondary/secondary node_2:primary/primary", SETTLE);
    let report = app.finish();
    let mut acks = Vec::new();
    for (name, probe) in probes {
        acks.extend(probe.finish(&name));
    }
    eprintln!(
        "freeze: node_2 took writes {promoted_after:?} after node_1 froze; application's \
         longest write gap {:?} ({} acknowledged)",
        report.max_gap(),
        report.acks.len()
    );
    // node_1's acknowledged probe rows all reached node_2: they committed before the
    // handover, even those whose answer came late, after the resume
    let old_acks: Vec<i64> = acks
        .iter()
        .filter(|a| a.server == "node_1")
        .map(|a| a.id)
        .collect();
    let order = check_no_split_brain(acks, 1).unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(order, ["node_1", "node_2"], "probe acknowledgements");
    let mut new_primary = cluster.node("node_2").connect().expect("connect");
    let probe_rows = writer::ids_written_by(&mut new_primary, "node_1").expect("rows");
    let diverged = writer::missing(&old_acks, &probe_rows);
    assert!(
        diverged.is_empty(),
        "rows node_1 acknowledged that node_2 never had: {diverged:?}\n{}",
        cluster.logs()
    );
    cluster.assert_nothing_lost("node_2", &report);
}

#[test]
fn a_keeper_restarted_without_the_monitor_holds_no_lease_until_it_answers() {
    let mut cluster = Cluster::start("lease-restart", &lease_monitor());
    cluster.add_node("node_1", &[]);
    cluster.wait_states("node_1:single/single", SETTLE);
    cluster.add_node("node_2", &[]);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);

    // the standby goes: the primary drops synchronous replication and writes alone
    cluster.node_mut("node_2").service.stop_with(libc::SIGTERM);
    cluster.wait_states(
        "node_1:wait_primary/wait_primary node_2:secondary/catchingup",
        SETTLE,
    );

    // the monitor goes too, then node_1's keeper restarts (a reboot)
    cluster.monitor.stop_with(libc::SIGTERM);
    cluster.node_mut("node_1").service.stop_with(libc::SIGTERM);
    let pid_file = cluster.node("node_1").pgdata.join("postmaster.pid");
    assert!(!pid_file.exists(), "the keeper stopped its Postgres");
    cluster.restart_node("node_1");
    // the monitor may have promoted node_2 meanwhile, for all node_1 knows: no writes
    let watch_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < watch_until {
        assert!(
            !pid_file.exists(),
            "node_1 started Postgres without a lease and without a synchronous standby\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // the monitor answers: node_1 is still its primary, and opens again
    let pgdata = cluster.monitor_pgdata.display().to_string();
    cluster.monitor = cluster.autoctl.spawn(
        "monitor-restarted",
        &["run", "--pgdata", &pgdata],
        &cluster.monitor_pgdata.clone(),
    );
    wait::until(
        "node_1 to take writes again",
        SETTLE,
        Duration::from_millis(200),
        || {
            let mut client = cluster.node("node_1").connect().ok()?;
            client
                .batch_execute("CREATE TABLE IF NOT EXISTS after_restart (id int); INSERT INTO after_restart VALUES (1)")
                .ok()
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {}\n{}", cluster.states(), cluster.logs()));
}
