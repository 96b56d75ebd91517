//! What operators and their scripts do to running nodes, as pg_auto_failover 2.0 lets them:
//! `set` commands with standbys down, renaming a running node, `pg_ctl stop` behind the
//! keeper's back, a standby seeded from a copy of the primary's data directory, and
//! `config set postgresql.pg_ctl`. Real processes on 127.0.0.1; every wait bounded.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::autoctl::{Cluster, FAST_MONITOR};
use tests::server::{as_postgres, free_port};
use tests::wait;

const SETTLE: Duration = Duration::from_secs(90);

fn single(label: &str) -> Cluster {
    let mut cluster = Cluster::start(label, FAST_MONITOR);
    cluster.add_node("node_1", &[]);
    cluster.wait_states("node_1:single/single", SETTLE);
    cluster
}

/// The programs directory of the cluster's Postgres.
fn pg_bin(cluster: &Cluster) -> &Path {
    cluster
        .flavor
        .pg_ctl
        .parent()
        .expect("pg_ctl has a directory")
}

/// Runs a Postgres program as the `postgres` user; its exit status and output.
fn run_pg(program: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(program);
    as_postgres(&mut cmd).args(args);
    cmd.output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

fn monitor_names(cluster: &Cluster) -> Vec<String> {
    cluster
        .monitor_client()
        .and_then(|mut c| {
            c.query(
                "SELECT nodename FROM pgautofailover.node ORDER BY nodeid",
                &[],
            )
        })
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default()
}

#[test]
fn set_commands_wait_for_the_primary_only() {
    let mut cluster = single("ops-set");
    cluster.add_node("node_2", &[]);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);
    cluster.add_node("node_3", &[]);
    cluster.wait_states(
        "node_1:primary/primary node_2:secondary/secondary node_3:secondary/secondary",
        SETTLE,
    );
    let m = cluster.monitor_pgdata.display().to_string();
    cluster.ok(&[
        "set",
        "formation",
        "number-sync-standbys",
        "--pgdata",
        &m,
        "0",
    ]);
    // both standbys are lost
    cluster.node_mut("node_2").service.kill();
    cluster.node_mut("node_3").service.kill();
    cluster.wait_states(
        // (a dead keeper reports nothing more: its last state stays)
        "node_1:wait_primary/wait_primary node_2:secondary/catchingup \
         node_3:secondary/catchingup",
        SETTLE,
    );
    // the primary applies each setting at once: the commands return, exit 0, and do not wait
    // for the standbys that will never come back
    let out = cluster.autoctl.run_for(
        &[
            "set",
            "formation",
            "number-sync-standbys",
            "--pgdata",
            &m,
            "0",
        ],
        Duration::from_secs(50),
    );
    assert!(
        out.status.success(),
        "set formation number-sync-standbys: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        cluster.logs()
    );
    let out = cluster.autoctl.run_for(
        &[
            "set",
            "node",
            "candidate-priority",
            "--pgdata",
            &m,
            "--name",
            "node_2",
            "--",
            "70",
        ],
        Duration::from_secs(50),
    );
    assert!(
        out.status.success(),
        "set node candidate-priority: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        cluster.logs()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "70");
    let priority: i32 = cluster
        .monitor_client()
        .expect("monitor")
        .query_one(
            "SELECT candidatepriority FROM pgautofailover.node WHERE nodename = 'node_2'",
            &[],
        )
        .expect("priority")
        .get(0);
    assert_eq!(priority, 70);
}

#[test]
fn a_running_node_renamed_in_its_configuration_is_renamed_on_the_monitor() {
    let cluster = single("ops-rename");
    let node = cluster.node("node_1");
    for args in [
        vec!["config", "set", "pg_autoctl.name", "east_1"],
        vec!["reload"],
    ] {
        let out = node.pg_autoctl(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    wait::until(
        "the monitor to know east_1",
        SETTLE,
        Duration::from_millis(200),
        || (monitor_names(&cluster) == ["east_1"]).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", monitor_names(&cluster), cluster.logs()));

    // `set node metadata` renames it on the monitor and in the configuration
    let out = node.pg_autoctl(&["set", "node", "metadata", "--name", "east_2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(monitor_names(&cluster), ["east_2"]);
    let out = node.pg_autoctl(&["config", "get", "pg_autoctl.name"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "east_2");
}

#[test]
fn pg_ctl_stop_behind_the_keepers_back_completes_and_postgres_comes_back() {
    let cluster = single("ops-pgctl-stop");
    let node = cluster.node("node_1");
    let pgdata = node.pgdata_arg();
    let out = run_pg(
        &cluster.flavor.pg_ctl,
        &["stop", "-D", &pgdata, "-m", "fast", "-w", "-t", "30"],
    );
    assert!(
        out.status.success(),
        "pg_ctl stop must complete (the keeper leaves a grace period): {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        node.service.log()
    );
    // down for the grace period, then started again by the keeper
    assert!(
        node.connect().is_err(),
        "Postgres is stopped right after pg_ctl stop"
    );
    wait::until("Postgres back", SETTLE, Duration::from_millis(200), || {
        node.connect().ok()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", node.service.log()));
    assert!(
        node.service.log().contains("shut down by someone else"),
        "{}",
        node.service.log()
    );
}

#[test]
fn config_set_postgresql_pg_ctl_takes_only_a_pg_ctl() {
    let cluster = single("ops-pgctl-path");
    let node = cluster.node("node_1");
    let before = node.pg_autoctl(&["config", "get", "postgresql.pg_ctl"]);
    for wrong in ["/bin/true", "/nonexistent/pg_ctl", "/etc/passwd"] {
        let out = node.pg_autoctl(&["config", "set", "postgresql.pg_ctl", wrong]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{wrong}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("is not a pg_ctl"));
    }
    let after = node.pg_autoctl(&["config", "get", "postgresql.pg_ctl"]);
    assert_eq!(
        after.stdout, before.stdout,
        "the configuration is unchanged"
    );
    let real = cluster.flavor.pg_ctl.display().to_string();
    let out = node.pg_autoctl(&["config", "set", "postgresql.pg_ctl", &real]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // teardown works with it (the cluster drops its nodes with pg_ctl)
    let out = node.pg_autoctl(&["config", "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_standby_seeded_from_a_copy_of_the_primary_needs_no_base_backup() {
    let mut cluster = single("ops-seed");
    let mut primary = cluster.node("node_1").connect().expect("primary");
    primary
        .batch_execute("CREATE TABLE seeded AS SELECT g AS id FROM generate_series(1, 100) g")
        .expect("rows before the copy");
    drop(primary);

    // a cold copy of the primary's data directory, as a restored backup or snapshot is
    cluster.node_mut("node_1").service.stop_with(libc::SIGTERM);
    let source = cluster.node("node_1").pgdata.clone();
    let copy = cluster.dir.path().join("node_2");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&source)
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(status.success());
    // a file of our own in the copy: a base backup would replace the directory
    std::fs::write(copy.join("seeded-by-test"), "kept").expect("marker");
    cluster.restart_node("node_1");
    cluster.wait_states("node_1:single/single", SETTLE);
    wait::until(
        "the primary back",
        SETTLE,
        Duration::from_millis(200),
        || cluster.node("node_1").connect().ok(),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    // a database of another system is refused by the monitor, and left as it was
    let other = cluster.dir.path().join("other");
    let initdb = pg_bin(&cluster).join("initdb");
    std::fs::create_dir_all(&other).expect("mkdir");
    let status = Command::new("chown")
        .arg("postgres:postgres")
        .arg(&other)
        .status()
        .expect("chown");
    assert!(status.success());
    let out = run_pg(
        &initdb,
        &["-D", &other.display().to_string(), "-A", "trust"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other_port = free_port().to_string();
    let other_text = other.display().to_string();
    let out = cluster.autoctl.run(&[
        "create",
        "postgres",
        "--pgdata",
        &other_text,
        "--pgport",
        &other_port,
        "--pghost",
        "127.0.0.1",
        "--hostname",
        "127.0.0.1",
        "--name",
        "stranger",
        "--auth",
        "trust",
        "--pgctl",
        &cluster.flavor.pg_ctl.display().to_string(),
        "--monitor",
        &cluster.monitor_uri,
        "--no-ssl",
    ]);
    assert!(!out.status.success(), "another database joins no group");
    assert!(other.join("PG_VERSION").exists(), "and is not touched");
    assert_eq!(monitor_names(&cluster), ["node_1"]);

    // the copy joins as a standby, as it is
    let port = free_port();
    let node = cluster.spawn_node("node_2", &copy, port, &[]);
    cluster.nodes.push(node);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);
    assert!(
        copy.join("seeded-by-test").exists(),
        "no base backup replaced the copy"
    );
    let log = cluster.node("node_2").service.log();
    assert!(!log.contains("pg_basebackup"), "{log}");
    let mut primary = cluster.node("node_1").connect().expect("primary");
    primary
        .batch_execute("INSERT INTO seeded SELECT g FROM generate_series(101, 150) g")
        .expect("rows after the copy");
    wait::until(
        "rows streamed to the seeded standby",
        SETTLE,
        Duration::from_millis(200),
        || {
            let n: i64 = cluster
                .node("node_2")
                .connect()
                .ok()?
                .query_one("SELECT count(*) FROM seeded", &[])
                .ok()?
                .get(0);
            (n == 150).then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}
