//! Replication slots on standbys, as 2.0 keeps them: every standby holds a slot for each other
//! node, moved forward as the node reports its LSN, so that a standby promoted by a failover
//! already keeps the WAL its new standbys need. Here a standby is down while the primary writes
//! several segments that the other standby recycles, and during the failover that promotes
//! that other standby; when it comes back it streams what it missed from its slot there,
//! without a new base backup.

use std::time::Duration;

use tests::autoctl::{Cluster, FAST_MONITOR, Node};
use tests::wait;

const SETTLE: Duration = Duration::from_secs(120);

fn sql(node: &Node, query: &str) -> Vec<String> {
    wait::until(
        query,
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            node.connect()
                .ok()?
                .query(query, &[])
                .ok()
                .map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect())
        },
    )
    .unwrap_or_else(|e| panic!("{e} on {}", node.name))
}

fn execute(node: &Node, statements: &str) {
    wait::until(
        statements,
        Duration::from_secs(30),
        Duration::from_millis(200),
        || node.connect().ok()?.batch_execute(statements).ok(),
    )
    .unwrap_or_else(|e| panic!("{e} on {}", node.name));
}

#[test]
fn a_standby_promoted_by_a_failover_holds_the_wal_of_a_standby_that_returns_late() {
    let mut cluster = Cluster::start("slots", FAST_MONITOR);
    cluster.add_node("node_1", &[]);
    cluster.wait_states("node_1:single/single", SETTLE);
    cluster.add_node("node_2", &[]);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);
    // an asynchronous standby: the election does not wait for it while it is down
    cluster.add_node(
        "node_3",
        &["--candidate-priority", "0", "--replication-quorum", "false"],
    );
    cluster.wait_states(
        "node_1:primary/primary node_2:secondary/secondary node_3:secondary/secondary",
        SETTLE,
    );
    for node in &cluster.nodes {
        // keep only what slots hold: recycled WAL is gone for good
        execute(node, "ALTER SYSTEM SET wal_keep_size = 0");
        execute(node, "SELECT pg_reload_conf()");
    }
    // the standby keeps a slot for each other node
    let node_2 = cluster.node("node_2");
    wait::until(
        "node_2's slots for node_1 and node_3",
        SETTLE,
        Duration::from_millis(300),
        || {
            let slots = sql(
                node_2,
                "SELECT coalesce(string_agg(slot_name::text, ',' ORDER BY slot_name), '') \
                   FROM pg_replication_slots",
            );
            (slots.first().map(String::as_str)
                == Some("pgautofailover_standby_1,pgautofailover_standby_3"))
            .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));

    execute(
        cluster.node("node_1"),
        "CREATE TABLE commits (id int); INSERT INTO commits SELECT generate_series(1, 100)",
    );
    wait::until(
        "node_3 to have the rows",
        SETTLE,
        Duration::from_millis(200),
        || {
            let n = sql(cluster.node("node_3"), "SELECT count(*)::text FROM commits");
            (n.first().map(String::as_str) == Some("100")).then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));

    // node_3 goes down; the primary writes and switches several WAL segments, and node_2
    // (a standby) recycles what no slot of its own holds
    cluster.node_mut("node_3").service.kill();
    let node_1 = cluster.node("node_1");
    for i in 1..=6 {
        execute(
            node_1,
            &format!(
                "INSERT INTO commits SELECT generate_series(1, 100) + {i} * 100; \
                 SELECT pg_switch_wal();"
            ),
        );
    }
    execute(node_1, "CHECKPOINT");
    wait::until(
        "node_2 to replay it",
        SETTLE,
        Duration::from_millis(200),
        || {
            let n = sql(cluster.node("node_2"), "SELECT count(*)::text FROM commits");
            (n.first().map(String::as_str) == Some("700")).then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    execute(cluster.node("node_2"), "CHECKPOINT");

    // the primary's host is lost: node_2 is promoted
    cluster.node_mut("node_1").service.kill();
    wait::until(
        "node_2 to take writes",
        SETTLE,
        Duration::from_millis(200),
        || {
            let states = cluster.states();
            (states.contains("node_2:wait_primary/wait_primary")
                || states.contains("node_2:primary/primary"))
            .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {}\n{}", cluster.states(), cluster.logs()));
    execute(
        cluster.node("node_2"),
        "INSERT INTO commits SELECT generate_series(701, 800); CHECKPOINT;",
    );
    let retained = sql(
        cluster.node("node_2"),
        "SELECT coalesce(restart_lsn::text, 'none') FROM pg_replication_slots \
          WHERE slot_name = 'pgautofailover_standby_3'",
    );
    assert_eq!(retained.len(), 1, "no slot for node_3 on the new primary");

    // node_3 comes back: it streams what it missed from its slot, no new base backup
    cluster.restart_node("node_3");
    wait::until(
        "node_3 to stream again",
        SETTLE,
        Duration::from_millis(300),
        || {
            cluster
                .states()
                .contains("node_3:secondary/secondary")
                .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {}\n{}", cluster.states(), cluster.logs()));
    wait::until(
        "node_3 to have every row",
        SETTLE,
        Duration::from_millis(200),
        || {
            let n = sql(cluster.node("node_3"), "SELECT count(*)::text FROM commits");
            (n.first().map(String::as_str) == Some("800")).then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // the restarted service's log
    let log = cluster.node("node_3").service.log();
    assert!(
        log.contains("pg_autoctl service started") && !log.contains("pg_basebackup"),
        "node_3 needed a new base backup:\n{log}"
    );
}
