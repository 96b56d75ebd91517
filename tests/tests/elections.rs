//! Elections under repeated failures, on real processes: a group of a primary and three
//! standbys loses its primary, then an operator promotes one of the remaining standbys. The
//! standbys stop streaming for the election, so what they report (their timeline above all)
//! must be what they hold, not a stale value: every election ends with a writable node, the
//! one that holds the most WAL, and no acknowledged row is lost.

use std::time::Duration;

use tests::autoctl::{Cluster, FAST_MONITOR};
use tests::wait;

const SETTLE: Duration = Duration::from_secs(120);

/// A primary (node_1) and `standbys` secondaries, with short health checks.
fn fast_group(label: &str, standbys: usize) -> Cluster {
    let mut cluster = Cluster::start(label, FAST_MONITOR);
    cluster.add_node("node_1", &[]);
    cluster.wait_states("node_1:single/single", SETTLE);
    let mut wanted = vec!["node_1:primary/primary".to_string()];
    for i in 2..=standbys + 1 {
        let name = format!("node_{i}");
        cluster.add_node(&name, &[]);
        wanted.push(format!("{name}:secondary/secondary"));
        cluster.wait_states(&wanted.join(" "), SETTLE);
    }
    for node in &cluster.nodes {
        let _ = node.pg_autoctl(&["config", "set", "timeout.network_partition_timeout", "3"]);
    }
    cluster
}

/// The one node of the group in primary or wait_primary, when there is exactly one.
fn writable(cluster: &Cluster) -> Option<String> {
    let states = cluster.states();
    let found: Vec<String> = states
        .split(' ')
        .filter(|s| s.ends_with(":primary/primary") || s.ends_with(":wait_primary/wait_primary"))
        .filter_map(|s| s.split(':').next().map(str::to_string))
        .collect();
    (found.len() == 1).then(|| found[0].clone())
}

fn timelines(cluster: &Cluster) -> String {
    let Ok(mut client) = cluster.monitor_client() else {
        return String::new();
    };
    client
        .query_one(
            "SELECT string_agg(format('%s:%s@%s', nodename, reportedtli, reportedlsn), ' ' \
                               ORDER BY nodeid) FROM pgautofailover.node",
            &[],
        )
        .map(|r| r.get(0))
        .unwrap_or_default()
}

/// (name, reported state, reported timeline) of every node reporting `report_lsn`.
fn reporting_lsn(cluster: &Cluster) -> Vec<(String, i32)> {
    let Ok(mut client) = cluster.monitor_client() else {
        return Vec::new();
    };
    client
        .query(
            "SELECT nodename, reportedtli FROM pgautofailover.node \
              WHERE reportedstate = 'report_lsn'",
            &[],
        )
        .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        .unwrap_or_default()
}

fn count_rows(cluster: &Cluster, name: &str) -> i64 {
    wait::until(
        "count the rows",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            cluster
                .node(name)
                .connect()
                .ok()?
                .query_one("SELECT count(*) FROM commits", &[])
                .ok()
                .map(|r| r.get::<_, i64>(0))
        },
    )
    .unwrap_or_else(|e| panic!("{e} on {name}"))
}

#[test]
fn a_promotion_right_after_a_failover_ends_with_the_promoted_node_writable() {
    let mut cluster = fast_group("el-promote", 3);
    let mut primary = cluster.node("node_1").connect().expect("primary");
    primary
        .batch_execute(
            "CREATE TABLE commits (id int); \
             INSERT INTO commits SELECT generate_series(1, 1000)",
        )
        .expect("rows");
    drop(primary);

    // the primary's host is lost: one of the standbys is elected
    cluster.node_mut("node_1").service.kill();
    let first = wait::until("a new primary", SETTLE, Duration::from_millis(200), || {
        writable(&cluster).filter(|n| n != "node_1")
    })
    .unwrap_or_else(|e| panic!("{e}: {}\n{}", cluster.states(), cluster.logs()));
    let others: Vec<String> = ["node_2", "node_3", "node_4"]
        .iter()
        .filter(|n| **n != first)
        .map(|n| n.to_string())
        .collect();
    wait::until(
        "the others to follow",
        SETTLE,
        Duration::from_millis(200),
        || {
            let states = cluster.states();
            others
                .iter()
                .all(|n| states.contains(&format!("{n}:secondary/secondary")))
                .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {}\n{}", cluster.states(), cluster.logs()));

    // nothing was written on the new timeline yet, and no restartpoint happened there. The
    // operator promotes a standby whose keeper is slow to answer, so that the old primary
    // reports its LSN first: the chosen node must not look behind it.
    let chosen = others[0].clone();
    let keeper = cluster.node(&chosen).service.pid().expect("keeper pid");
    // SAFETY: pausing a keeper this test started; it is resumed below
    unsafe { libc::kill(keeper, libc::SIGSTOP) };
    let m = cluster.monitor_pgdata.display().to_string();
    let out = std::thread::scope(|scope| {
        let running = scope.spawn(|| {
            cluster.autoctl.run_for(
                &["perform", "promotion", "--pgdata", &m, "--name", &chosen],
                Duration::from_secs(150),
            )
        });
        let old_primary_reported = wait::until(
            "the old primary to report its LSN",
            Duration::from_secs(60),
            Duration::from_millis(100),
            || {
                cluster
                    .states()
                    .contains(&format!("{first}:report_lsn/"))
                    .then_some(())
            },
        );
        // SAFETY: resuming the keeper paused above
        unsafe { libc::kill(keeper, libc::SIGCONT) };
        old_primary_reported
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", cluster.states(), cluster.logs()));
        // every node that reports its LSN for the election is on timeline 2: the first
        // failover's, which all of them followed (and nothing else exists)
        let mut seen = Vec::new();
        while !running.is_finished() {
            seen.extend(reporting_lsn(&cluster));
            std::thread::sleep(Duration::from_millis(100));
        }
        let stale: Vec<&(String, i32)> = seen.iter().filter(|(_, tli)| *tli != 2).collect();
        assert!(
            !seen.is_empty() && stale.is_empty(),
            "timelines reported in report_lsn: {seen:?}\n{}",
            cluster.events()
        );
        running.join().expect("perform promotion")
    });
    let promoted = wait::until(
        "the promoted node to take writes",
        SETTLE,
        Duration::from_millis(200),
        || {
            eprintln!("{} | {}", cluster.states(), timelines(&cluster));
            (writable(&cluster).as_deref() == Some(chosen.as_str())).then_some(())
        },
    );
    if let Err(e) = promoted {
        panic!(
            "{e}: {}\ntimelines: {}\nperform promotion: {}\n{}\n{}",
            cluster.states(),
            timelines(&cluster),
            String::from_utf8_lossy(&out.stderr),
            cluster.events(),
            cluster.logs()
        );
    }
    assert_eq!(count_rows(&cluster, &chosen), 1000, "rows lost");
}
