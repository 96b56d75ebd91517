//! Failover end to end, on real processes: a primary host lost, a primary Postgres crashing,
//! a standby lost, the monitor lost, switchover under load, `perform_failover()` from SQL,
//! candidate priorities and asynchronous standbys in elections.
//! A writer inserts numbered rows through the formation URI the whole time; every row it saw
//! acknowledged must be on the new primary. The monitor runs with short health-check
//! settings so that each scenario takes seconds. A failing scenario prints the monitor's
//! events and every log.

use std::time::{Duration, Instant};

use tests::autoctl::{Cluster, FAST_MONITOR, Node};
use tests::wait;
use tests::writer::{self, Writer};

const SETTLE: Duration = Duration::from_secs(90);

fn fast_pair(label: &str) -> Cluster {
    let mut cluster = Cluster::start(label, FAST_MONITOR);
    cluster.add_node("node_1", &[]);
    cluster.wait_states("node_1:single/single", SETTLE);
    cluster.add_node("node_2", &[]);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);
    for node in ["node_1", "node_2"] {
        cluster.configure_node(node, "timeout.network_partition_timeout", "3");
    }
    let mut primary = cluster
        .node("node_1")
        .connect()
        .expect("connect to the primary");
    writer::prepare(&mut primary);
    cluster
}

/// The URI applications use, as the `postgres` user.
fn app_uri(cluster: &Cluster) -> String {
    let uri = cluster.on_monitor(&["show", "uri", "--formation", "default"]);
    uri.trim()
        .replacen("postgres://", "postgres://postgres@", 1)
}

/// Waits until the writer has had `n` more acknowledgements than now (at most 60 s).
fn wait_for_writes(cluster: &Cluster, node: &Node, since: i64, n: i64) -> i64 {
    wait::until(
        "acknowledged writes",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || {
            let count: i64 = node
                .connect()
                .ok()?
                .query_one(&format!("SELECT count(*) FROM {}", writer::TABLE), &[])
                .ok()?
                .get(0);
            (count >= since + n).then_some(count)
        },
    )
    .unwrap_or_else(|e| panic!("{e} on {}\n{}", node.name, cluster.logs()))
}

/// [`fast_pair`] plus a third node, node_3, a secondary too, and `number_sync_standbys` set
/// back to 0 (the second quorum standby made it 1, as 2.0 does): commits need one of the two
/// standbys.
fn fast_trio(label: &str) -> Cluster {
    let mut cluster = fast_pair(label);
    cluster.add_node("node_3", &[]);
    cluster.wait_states(
        "node_1:primary/primary node_2:secondary/secondary node_3:secondary/secondary",
        SETTLE,
    );
    cluster.configure_node("node_3", "timeout.network_partition_timeout", "3");
    let m = cluster.monitor_pgdata.display().to_string();
    cluster.ok(&[
        "set",
        "formation",
        "number-sync-standbys",
        "--pgdata",
        &m,
        "0",
    ]);
    cluster
}

/// The name of the node of `old`'s formation in `primary` or `wait_primary` once exactly
/// one is, and it is not `old`. Nodes of one formation share the prefix of their names
/// (`node_`, `other_`).
fn new_primary(cluster: &Cluster, old: &str) -> String {
    let prefix = format!("{}_", old.rsplit_once('_').map_or(old, |(p, _)| p));
    wait::until("a new primary", SETTLE, Duration::from_millis(100), || {
        let states = cluster.states();
        let writable: Vec<&str> = states
            .split(' ')
            .filter(|s| s.starts_with(&prefix))
            .filter(|s| {
                s.ends_with(":primary/primary") || s.ends_with(":wait_primary/wait_primary")
            })
            .filter_map(|s| s.split(':').next())
            .collect();
        (writable.len() == 1 && writable[0] != old).then(|| writable[0].to_string())
    })
    .unwrap_or_else(|e| panic!("{e}: {}\n{}", cluster.states(), cluster.logs()))
}

#[test]
fn primary_host_lost_standby_promoted_nothing_lost_old_primary_rejoins() {
    let mut cluster = fast_pair("fo-host");
    let writer = Writer::start("app", &app_uri(&cluster), None);
    let seen = wait_for_writes(&cluster, cluster.node("node_1"), 0, 20);

    let lost_at = Instant::now();
    cluster.node_mut("node_1").service.kill();
    assert_eq!(new_primary(&cluster, "node_1"), "node_2");
    wait_for_writes(&cluster, cluster.node("node_2"), seen, 20);
    let report = writer.finish();
    let first_on_new = report
        .acks
        .iter()
        .find(|a| {
            a.at > lost_at
                && a.server
                    .ends_with(&format!(":{}", cluster.node("node_2").port))
        })
        .map(|a| a.at.duration_since(lost_at));
    eprintln!(
        "host loss: writes back after {first_on_new:?} (longest gap {:?}, {} acknowledged)",
        report.max_gap(),
        report.acks.len()
    );
    cluster.assert_nothing_lost("node_2", &report);

    cluster.restart_node("node_1");
    cluster.wait_states("node_1:secondary/secondary node_2:primary/primary", SETTLE);
    let out = cluster.node("node_1").service.log();
    assert!(out.contains("pg_rewind"), "{}", cluster.logs());
}

#[test]
fn primary_postgres_that_cannot_restart_is_failed_over() {
    let cluster = fast_pair("fo-crash");
    cluster.configure_node("node_1", "timeout.postgresql_restart_failure_timeout", "3");
    let writer = Writer::start("app", &app_uri(&cluster), None);
    let seen = wait_for_writes(&cluster, cluster.node("node_1"), 0, 20);

    // the data directory becomes unreadable, then Postgres dies: its keeper cannot restart it
    let pgdata = cluster.node("node_1").pgdata.clone();
    let pid: i32 = std::fs::read_to_string(pgdata.join("postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
        .expect("postmaster pid");
    set_mode(&pgdata, 0o000);
    // SAFETY: killing the postmaster this test's cluster started
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(new_primary(&cluster, "node_1"), "node_2");
    wait_for_writes(&cluster, cluster.node("node_2"), seen, 20);
    let report = writer.finish();
    cluster.assert_nothing_lost("node_2", &report);
    assert!(
        cluster
            .node("node_1")
            .service
            .log()
            .contains("restarting Postgres"),
        "the keeper tried to restart Postgres first\n{}",
        cluster.logs()
    );

    // readable again: the old primary rejoins as a standby
    set_mode(&pgdata, 0o700);
    cluster.wait_states("node_1:secondary/secondary node_2:primary/primary", SETTLE);
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn standby_lost_primary_keeps_writing_then_the_standby_catches_up() {
    let mut cluster = fast_pair("fo-standby");
    let writer = Writer::start("app", &app_uri(&cluster), None);
    let seen = wait_for_writes(&cluster, cluster.node("node_1"), 0, 20);
    cluster.node_mut("node_2").service.kill();
    cluster.wait_states(
        "node_1:wait_primary/wait_primary node_2:secondary/catchingup",
        SETTLE,
    );
    let mut primary = cluster.node("node_1").connect().expect("connect");
    let names: String = primary
        .query_one("SHOW synchronous_standby_names", &[])
        .expect("show")
        .get(0);
    assert_eq!(
        names, "",
        "synchronous replication is off while the standby is away"
    );
    let seen = wait_for_writes(&cluster, cluster.node("node_1"), seen, 20);

    cluster.restart_node("node_2");
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);
    wait_for_writes(&cluster, cluster.node("node_1"), seen, 20);
    let report = writer.finish();
    cluster.assert_nothing_lost("node_1", &report);
    cluster.assert_nothing_lost("node_2", &report);
}

#[test]
fn monitor_lost_nodes_keep_serving_and_no_failover_happens_until_it_returns() {
    let mut cluster = fast_pair("fo-monitor");
    let writer = Writer::start("app", &app_uri(&cluster), None);
    let seen = wait_for_writes(&cluster, cluster.node("node_1"), 0, 20);

    cluster.monitor.stop_with(libc::SIGTERM);
    // writes go on, synchronously replicated
    let seen = wait_for_writes(&cluster, cluster.node("node_1"), seen, 50);
    let report = writer.finish();
    cluster.assert_nothing_lost("node_2", &report);

    // the primary dies too: without a monitor nobody is promoted
    cluster.node_mut("node_1").service.kill();
    std::thread::sleep(Duration::from_secs(8));
    let mut standby = cluster
        .node("node_2")
        .connect()
        .expect("connect to the standby");
    let in_recovery: bool = standby
        .query_one("SELECT pg_is_in_recovery()", &[])
        .expect("query")
        .get(0);
    assert!(in_recovery, "no promotion without the monitor");

    // the monitor returns: the group resumes, the standby takes over
    let pgdata = cluster.monitor_pgdata.display().to_string();
    cluster.monitor = cluster.autoctl.spawn(
        "monitor-restarted",
        &["run", "--pgdata", &pgdata],
        &cluster.monitor_pgdata.clone(),
    );
    assert_eq!(new_primary(&cluster, "node_1"), "node_2");
    let count: i64 = cluster
        .node("node_2")
        .connect()
        .expect("connect")
        .query_one(&format!("SELECT count(*) FROM {}", writer::TABLE), &[])
        .expect("count")
        .get(0);
    assert!(count >= seen);
}

#[test]
fn switchover_under_a_continuous_writer() {
    let cluster = fast_pair("fo-switch");
    let writer = Writer::start("app", &app_uri(&cluster), None);
    let seen = wait_for_writes(&cluster, cluster.node("node_1"), 0, 50);
    let started = Instant::now();
    cluster.on_monitor(&["perform", "switchover"]);
    let took = started.elapsed();
    wait_for_writes(&cluster, cluster.node("node_2"), seen, 50);
    let report = writer.finish();
    eprintln!(
        "switchover: perform switchover took {took:?}; longest write gap {:?} ({} acknowledged, {} failed attempts)",
        report.max_gap(),
        report.acks.len(),
        report.errors
    );
    cluster.assert_nothing_lost("node_2", &report);
    cluster.wait_states("node_1:secondary/secondary node_2:primary/primary", SETTLE);
}

#[test]
fn perform_failover_called_from_sql_on_the_monitor() {
    let cluster = fast_pair("fo-sql");
    cluster
        .monitor_client()
        .expect("monitor")
        .batch_execute("SELECT pgautofailover.perform_failover()")
        .expect("perform_failover()");
    cluster.wait_states("node_1:secondary/secondary node_2:primary/primary", SETTLE);
}

/// Kills the primary `old` and returns the new primary's name once exactly one other node
/// is writable.
fn lose_primary(cluster: &mut Cluster, old: &str) -> String {
    cluster.node_mut(old).service.kill();
    new_primary(cluster, old)
}

#[test]
fn three_nodes_priorities_quorum_and_sync_standbys() {
    // number_sync_standbys back to 0 so that one of the standbys may leave the quorum
    let mut cluster = fast_trio("fo-three");
    let m = cluster.monitor_pgdata.display().to_string();
    // node_2: highest priority, but asynchronous (outside the replication quorum)
    cluster.ok(&[
        "set",
        "node",
        "replication-quorum",
        "--pgdata",
        &m,
        "--name",
        "node_2",
        "false",
    ]);
    cluster.ok(&[
        "set",
        "node",
        "candidate-priority",
        "--pgdata",
        &m,
        "--name",
        "node_2",
        "--",
        "90",
    ]);
    let names = cluster.ok(&["show", "standby-names", "--pgdata", &m]);
    assert_eq!(
        names.trim(),
        "'ANY 1 (pgautofailover_standby_3)'",
        "only quorum standbys are synchronous"
    );
    let writer = Writer::start("app", &app_uri(&cluster), None);
    let seen = wait_for_writes(&cluster, cluster.node("node_1"), 0, 20);

    // As 2.0: the priority decides, the asynchronous node too, since the quorum standby
    // (node_3) reported where its WAL ends and every acknowledged commit is there: node_2
    // fetches what it lacks from node_3 before it is promoted.
    assert_eq!(lose_primary(&mut cluster, "node_1"), "node_2");
    wait_for_writes(&cluster, cluster.node("node_2"), seen, 20);
    let report = writer.finish();
    cluster.assert_nothing_lost("node_2", &report);
    cluster.restart_node("node_1");
    cluster.wait_states(
        "node_1:secondary/secondary node_2:primary/primary node_3:secondary/secondary",
        SETTLE,
    );

    // with both standbys in the quorum, the candidate priority decides
    cluster.ok(&[
        "set",
        "node",
        "replication-quorum",
        "--pgdata",
        &m,
        "--name",
        "node_2",
        "true",
    ]);
    cluster.ok(&[
        "set",
        "node",
        "candidate-priority",
        "--pgdata",
        &m,
        "--name",
        "node_3",
        "--",
        "80",
    ]);
    // two quorum standbys: one more copy can be required of each commit
    cluster.ok(&[
        "set",
        "formation",
        "number-sync-standbys",
        "--pgdata",
        &m,
        "1",
    ]);
    let names = cluster.ok(&["show", "standby-names", "--pgdata", &m]);
    let names = names.trim().trim_matches('\'');
    let applied: String = cluster
        .node("node_2")
        .connect()
        .expect("connect")
        .query_one("SHOW synchronous_standby_names", &[])
        .expect("show")
        .get(0);
    assert_eq!(applied, names, "the primary applied the monitor's setting");
    assert!(
        names.starts_with("ANY 1 (")
            && names.contains("pgautofailover_standby_1")
            && names.contains("pgautofailover_standby_3"),
        "{names}"
    );
    assert_eq!(lose_primary(&mut cluster, "node_2"), "node_3");
    cluster.restart_node("node_2");
    cluster.wait_states(
        "node_1:secondary/secondary node_2:secondary/secondary node_3:primary/primary",
        SETTLE,
    );
}

#[test]
fn failover_with_every_candidate_priority_zero_waits_for_an_operator() {
    let cluster = fast_trio("fo-prio0");
    let m = cluster.monitor_pgdata.display().to_string();
    for name in ["node_2", "node_3"] {
        cluster.ok(&[
            "set",
            "node",
            "candidate-priority",
            "--pgdata",
            &m,
            "--name",
            name,
            "--",
            "0",
        ]);
    }
    cluster.wait_states(
        "node_1:primary/primary node_2:secondary/secondary node_3:secondary/secondary",
        SETTLE,
    );
    // As 2.0: accepted, and the standbys wait in report_lsn with nobody to promote.
    cluster
        .monitor_client()
        .expect("monitor")
        .batch_execute("SELECT pgautofailover.perform_failover()")
        .expect("perform_failover() with every candidate priority at 0");
    cluster.wait_states(
        "node_1:report_lsn/report_lsn node_2:report_lsn/report_lsn node_3:report_lsn/report_lsn",
        SETTLE,
    );
    // the operator picks one
    cluster.ok(&[
        "set",
        "node",
        "candidate-priority",
        "--pgdata",
        &m,
        "--name",
        "node_3",
        "--",
        "100",
    ]);
    cluster.wait_states(
        "node_1:secondary/secondary node_2:secondary/secondary node_3:primary/primary",
        SETTLE,
    );
    let mut primary = cluster.node("node_3").connect().expect("connect");
    primary
        .batch_execute(&format!(
            "INSERT INTO {} (writer, id) VALUES ('op', 1)",
            writer::TABLE
        ))
        .expect("the new primary takes writes");
}

#[test]
fn an_asynchronous_standby_of_a_pair_is_never_promoted_since_the_primary_acknowledged_alone() {
    let mut cluster = fast_pair("fo-async-pair");
    let m = cluster.monitor_pgdata.display().to_string();
    cluster.ok(&[
        "set",
        "node",
        "replication-quorum",
        "--pgdata",
        &m,
        "--name",
        "node_2",
        "false",
    ]);
    // the primary waits for no standby ...
    let applied = || -> Option<String> {
        cluster
            .node("node_1")
            .connect()
            .ok()?
            .query_one("SHOW synchronous_standby_names", &[])
            .ok()
            .map(|r| r.get(0))
    };
    wait::until(
        "an empty synchronous_standby_names",
        SETTLE,
        Duration::from_millis(100),
        || applied().filter(|s| s.is_empty()),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);

    // ... so with the standby's WAL receiver frozen, commits are acknowledged all the same
    let receiver = wal_receiver_pid(cluster.node("node_2"));
    // SAFETY: freezing a WAL receiver of this test's own standby
    unsafe { libc::kill(receiver, libc::SIGSTOP) };
    let mut primary = cluster.node("node_1").connect().expect("connect");
    primary
        .batch_execute(&format!(
            "INSERT INTO {} (writer, id) SELECT 'alone', g FROM generate_series(1, 50) g",
            writer::TABLE
        ))
        .expect("acknowledged without the standby");
    drop(primary);

    // the primary is lost while the standby is a healthy secondary: promoting it would lose
    // those 50 rows
    cluster.node_mut("node_1").service.kill();
    wait::until(
        "node_1 seen unhealthy",
        SETTLE,
        Duration::from_millis(200),
        || {
            cluster
                .monitor_client()
                .ok()?
                .query_one(
                    "SELECT health FROM pgautofailover.node WHERE nodename = 'node_1'",
                    &[],
                )
                .ok()
                .filter(|r| r.get::<_, i32>(0) == 0)
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    // several heartbeats of the standby after that (it beats every 200 ms to 1 s)
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        cluster.states().contains("node_2:secondary/secondary"),
        "the asynchronous standby must not be promoted: {}\n{}",
        cluster.states(),
        cluster.events()
    );
    let rows_on_standby: i64 = cluster
        .node("node_2")
        .connect()
        .expect("standby")
        .query_one(
            &format!(
                "SELECT count(*) FROM {} WHERE writer = 'alone'",
                writer::TABLE
            ),
            &[],
        )
        .expect("count")
        .get(0);
    assert_eq!(
        rows_on_standby, 0,
        "the standby lacks what the primary acknowledged alone"
    );
    // SAFETY: as above
    unsafe { libc::kill(receiver, libc::SIGCONT) };

    // the old primary returns with every row (the monitor still has it primary/primary)
    cluster.restart_node("node_1");
    let rows = wait::until(
        "the old primary back",
        SETTLE,
        Duration::from_millis(200),
        || {
            cluster
                .node("node_1")
                .connect()
                .ok()?
                .query_one(
                    &format!(
                        "SELECT count(*) FROM {} WHERE writer = 'alone'",
                        writer::TABLE
                    ),
                    &[],
                )
                .ok()
                .map(|r| r.get::<_, i64>(0))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(rows, 50);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);
}

#[test]
fn two_formations_fail_over_independently() {
    let mut cluster = fast_pair("fo-formations");
    let m = cluster.monitor_pgdata.display().to_string();
    cluster.ok(&[
        "create",
        "formation",
        "--pgdata",
        &m,
        "--formation",
        "other",
        "--kind",
        "pgsql",
    ]);
    cluster.add_node("other_1", &["--formation", "other"]);
    cluster.wait_states(
        "node_1:primary/primary node_2:secondary/secondary other_1:single/single",
        SETTLE,
    );
    cluster.add_node("other_2", &["--formation", "other"]);
    let both = "node_1:primary/primary node_2:secondary/secondary other_1:primary/primary other_2:secondary/secondary";
    cluster.wait_states(both, SETTLE);
    for node in ["other_1", "other_2"] {
        cluster.configure_node(node, "timeout.network_partition_timeout", "3");
    }

    cluster.ok(&[
        "perform",
        "switchover",
        "--pgdata",
        &m,
        "--formation",
        "default",
    ]);
    cluster.wait_states(
        "node_1:secondary/secondary node_2:primary/primary other_1:primary/primary other_2:secondary/secondary",
        SETTLE,
    );
    assert_eq!(lose_primary(&mut cluster, "other_1"), "other_2");
    let states = cluster.states();
    assert!(
        states.contains("node_1:secondary/secondary") && states.contains("node_2:primary/primary"),
        "the default formation is untouched: {states}"
    );
}

/// The pid of the WAL receiver of `node`.
fn wal_receiver_pid(node: &Node) -> i32 {
    wait::until(
        "a WAL receiver",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            node.connect()
                .ok()?
                .query_opt("SELECT pid FROM pg_stat_wal_receiver", &[])
                .ok()?
                .map(|r| r.get::<_, i32>(0))
        },
    )
    .unwrap_or_else(|e| panic!("{e} on {}", node.name))
}

#[test]
fn the_chosen_standby_fast_forwards_from_the_most_advanced_one_before_promotion() {
    // commits need one of the two standbys; node_3 is preferred for promotion
    let mut cluster = fast_trio("fo-ff");
    let m = cluster.monitor_pgdata.display().to_string();
    cluster.ok(&[
        "set",
        "node",
        "candidate-priority",
        "--pgdata",
        &m,
        "--name",
        "node_3",
        "--",
        "90",
    ]);

    // node_3 stops receiving WAL while the primary writes more than a socket buffer holds
    let receiver = wal_receiver_pid(cluster.node("node_3"));
    // SAFETY: pausing a WAL receiver of this test's cluster
    unsafe { libc::kill(receiver, libc::SIGSTOP) };
    let writer = Writer::start("app", &app_uri(&cluster), None);
    wait_for_writes(&cluster, cluster.node("node_1"), 0, 20);
    let mut primary = cluster.node("node_1").connect().expect("connect");
    primary
        .batch_execute(
            "CREATE TABLE bulk AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 60000) g",
        )
        .expect("bulk write");
    let report = writer.finish();

    cluster.node_mut("node_1").service.kill();
    // SAFETY: as above
    unsafe { libc::kill(receiver, libc::SIGCONT) };
    assert_eq!(new_primary(&cluster, "node_1"), "node_3");
    let events = cluster.events();
    assert!(
        events.contains("fast_forward"),
        "node_3 fetched the WAL it missed first:\n{events}"
    );
    cluster.assert_nothing_lost("node_3", &report);
    let rows: i64 = cluster
        .node("node_3")
        .connect()
        .expect("connect")
        .query_one("SELECT count(*) FROM bulk", &[])
        .expect("count")
        .get(0);
    assert_eq!(rows, 60_000);
}
