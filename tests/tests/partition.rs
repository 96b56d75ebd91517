//! A primary cut off from the network, with every host in a network namespace of its own:
//! it fences itself (stops Postgres) before the monitor lets the standby take writes; two
//! nodes never acknowledge writes in interleaved periods; no acknowledged row is lost; once
//! the network is back the old primary rejoins as a standby.

use std::time::{Duration, Instant};

use tests::autoctl::{Cluster, FAST_MONITOR};
use tests::wait;
use tests::writer::{self, Prober, Writer, check_no_split_brain};

const SETTLE: Duration = Duration::from_secs(90);

#[test]
fn a_primary_cut_off_fences_itself_and_the_standby_takes_over() {
    let mut cluster = Cluster::start_networked("part", FAST_MONITOR);
    // the application connects from the monitor's host: open the database to the LAN
    cluster.add_node("node_1", &["--pg-hba-lan"]);
    cluster.wait_states("node_1:single/single", SETTLE);
    cluster.add_node("node_2", &["--pg-hba-lan"]);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);
    for node in ["node_1", "node_2"] {
        cluster.configure_node(node, "timeout.network_partition_timeout", "3");
    }
    writer::prepare(&mut cluster.node("node_1").connect().expect("connect"));

    let uri = cluster.on_monitor(&["show", "uri", "--formation", "default"]);
    let uri = uri
        .trim()
        .replacen("postgres://", "postgres://postgres@", 1);
    let monitor_ns = cluster.monitor_host.as_ref().map(|h| h.ns.clone());
    let app = Writer::start("app", &uri, monitor_ns);
    let probes: Vec<(String, Prober)> = cluster
        .nodes
        .iter()
        .map(|n| {
            let ns = n.host.as_ref().map(|h| h.ns.clone());
            (n.name.clone(), Prober::start(&n.name, ns, n.port))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));

    let cut_at = Instant::now();
    cluster.network.as_ref().expect("networked").cut("node_1");
    let old_pgdata = cluster.node("node_1").pgdata.clone();
    wait::until(
        "node_1 to fence itself",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || (!old_pgdata.join("postmaster.pid").exists()).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    let fenced_after = cut_at.elapsed();
    wait::until(
        "node_2 to take writes",
        SETTLE,
        Duration::from_millis(100),
        || {
            let states = cluster.states();
            (states.contains("node_2:wait_primary/wait_primary")
                || states.contains("node_2:primary/primary"))
            .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {}\n{}", cluster.states(), cluster.logs()));
    let promoted_after = cut_at.elapsed();
    std::thread::sleep(Duration::from_secs(2));

    cluster
        .network
        .as_ref()
        .expect("networked")
        .restore("node_1");
    cluster.wait_states("node_1:secondary/secondary node_2:primary/primary", SETTLE);
    let report = app.finish();
    let mut acks = Vec::new();
    for (name, probe) in probes {
        acks.extend(probe.finish(&name));
    }
    eprintln!(
        "partition: node_1 fenced after {fenced_after:?}, node_2 promoted after {promoted_after:?}; \
         application's longest write gap {:?} ({} acknowledged)",
        report.max_gap(),
        report.acks.len()
    );
    assert!(
        fenced_after < promoted_after,
        "the old primary stopped before the new one opened"
    );
    let order = check_no_split_brain(acks, 1).unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(order, ["node_1", "node_2"], "probe acknowledgements");
    cluster.assert_nothing_lost("node_2", &report);
    assert!(!report.acks.is_empty());
}
