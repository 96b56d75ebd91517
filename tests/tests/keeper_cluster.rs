//! Our pg_autoctl end to end: a monitor and Postgres nodes created and run by it, on
//! loopback, as the Postgres user. Bootstrap with synchronous replication, switchover both
//! ways without losing a commit, a standby stopping and coming back, maintenance, dropping a
//! node, taking over an existing database, and the URI users connect with.

use std::time::Duration;

use tests::autoctl::{Cluster, Node};
use tests::server::pg_command;
use tests::wait;

const SETTLE: Duration = Duration::from_secs(90);

fn primary_and_secondary() -> Cluster {
    let mut cluster = Cluster::start("kc", &[]);
    cluster.add_node("node_1", &[]);
    cluster.wait_states("node_1:single/single", SETTLE);
    cluster.add_node("node_2", &[]);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);
    cluster
}

/// Runs `sql` on `node`, retrying the connection for a while.
fn execute(node: &Node, sql: &str) {
    let result = wait::until(
        sql,
        Duration::from_secs(30),
        Duration::from_millis(200),
        || node.connect().ok()?.batch_execute(sql).ok(),
    );
    if let Err(e) = result {
        panic!("{e} on {}", node.name);
    }
}

fn count_rows(node: &Node) -> i64 {
    wait::until(
        "count rows",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            node.connect()
                .ok()?
                .query_one("SELECT count(*) FROM commits", &[])
                .ok()
                .map(|r| r.get::<_, i64>(0))
        },
    )
    .unwrap_or_else(|e| panic!("{e} on {}", node.name))
}

fn sync_state(node: &Node) -> (String, String) {
    let mut client = node.connect().expect("connect to primary");
    let names: String = client
        .query_one("SHOW synchronous_standby_names", &[])
        .expect("show")
        .get(0);
    let state: String = client
        .query_one(
            "SELECT coalesce(string_agg(sync_state, ','), '') FROM pg_stat_replication",
            &[],
        )
        .expect("pg_stat_replication")
        .get(0);
    (names, state)
}

#[test]
fn bootstrap_with_sync_replication_then_switch_over_both_ways_without_losing_commits() {
    let cluster = primary_and_secondary();
    let (names, state) = sync_state(cluster.node("node_1"));
    assert_eq!(names, "ANY 1 (pgautofailover_standby_2)");
    assert_eq!(state, "quorum", "the standby replicates synchronously");
    // each keeper holds one connection to the monitor, for every call and for LISTEN
    let keepers: i64 = cluster
        .monitor_client()
        .expect("monitor")
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_autoctl'",
            &[],
        )
        .expect("pg_stat_activity")
        .get(0);
    assert_eq!(keepers, 2, "one monitor connection per keeper");
    let events = cluster.events();
    assert!(events.contains("node_2 catchingup/secondary"), "{events}");

    execute(
        cluster.node("node_1"),
        "CREATE TABLE commits (id int); INSERT INTO commits VALUES (1)",
    );
    let out = cluster.on_monitor(&["perform", "switchover"]);
    assert!(out.contains("node_2 is now the primary"), "{out}");
    cluster.wait_states("node_1:secondary/secondary node_2:primary/primary", SETTLE);
    execute(cluster.node("node_2"), "INSERT INTO commits VALUES (2)");
    let (names, state) = sync_state(cluster.node("node_2"));
    assert_eq!(names, "ANY 1 (pgautofailover_standby_1)");
    assert_eq!(state, "quorum");

    cluster.on_monitor(&["perform", "switchover"]);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);
    execute(cluster.node("node_1"), "INSERT INTO commits VALUES (3)");
    assert_eq!(
        count_rows(cluster.node("node_1")),
        3,
        "every acknowledged commit is there"
    );
    // the old primary was rewound, not copied again
    assert!(
        cluster.node("node_2").service.log().contains("pg_rewind"),
        "{}",
        cluster.logs()
    );
}

#[test]
fn a_stopped_standby_releases_the_primary_and_rejoins() {
    let mut cluster = primary_and_secondary();
    execute(cluster.node("node_1"), "CREATE TABLE commits (id int)");
    cluster.node_mut("node_2").service.stop_with(libc::SIGTERM);
    // with synchronous replication this insert waits until the monitor drops the standby
    execute(cluster.node("node_1"), "INSERT INTO commits VALUES (1)");
    cluster.wait_states(
        "node_1:wait_primary/wait_primary node_2:secondary/catchingup",
        SETTLE,
    );

    let pgdata = cluster.node("node_2").pgdata_arg();
    let service = cluster.autoctl.spawn(
        "node_2-again",
        &["run", "--pgdata", &pgdata],
        &cluster.node("node_2").pgdata,
    );
    cluster.node_mut("node_2").service = service;
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);
    assert_eq!(count_rows(cluster.node("node_2")), 1);
}

#[test]
fn maintenance_on_the_secondary_keeps_the_primary_writable() {
    let cluster = primary_and_secondary();
    let pgdata = cluster.node("node_2").pgdata_arg();
    cluster.ok(&["enable", "maintenance", "--pgdata", &pgdata]);
    cluster.wait_states(
        "node_1:wait_primary/wait_primary node_2:maintenance/maintenance",
        SETTLE,
    );
    execute(
        cluster.node("node_1"),
        "CREATE TABLE commits (id int); INSERT INTO commits VALUES (1)",
    );

    // the primary needs --allow-failover
    let primary = cluster.node("node_1").pgdata_arg();
    let refused = cluster
        .autoctl
        .run(&["enable", "maintenance", "--pgdata", &primary]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--allow-failover"));

    cluster.ok(&["disable", "maintenance", "--pgdata", &pgdata]);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);
    assert_eq!(count_rows(cluster.node("node_2")), 1);

    // with --allow-failover the primary goes to maintenance and the standby takes over
    cluster.ok(&[
        "enable",
        "maintenance",
        "--allow-failover",
        "--pgdata",
        &primary,
    ]);
    cluster.wait_states(
        "node_1:maintenance/maintenance node_2:wait_primary/wait_primary",
        SETTLE,
    );
    execute(cluster.node("node_2"), "INSERT INTO commits VALUES (2)");
    cluster.ok(&["disable", "maintenance", "--pgdata", &primary]);
    cluster.wait_states("node_1:secondary/secondary node_2:primary/primary", SETTLE);
    assert_eq!(count_rows(cluster.node("node_1")), 2);
}

#[test]
fn dropping_the_secondary_leaves_a_single_primary() {
    let mut cluster = primary_and_secondary();
    let pgdata = cluster.node("node_2").pgdata.clone();
    let out = cluster.ok(&[
        "drop",
        "node",
        "--destroy",
        "--pgdata",
        &pgdata.display().to_string(),
    ]);
    assert!(out.contains("dropped"), "{out}");
    assert!(
        cluster
            .node_mut("node_2")
            .service
            .wait_exit(Duration::from_secs(30)),
        "the service exits once its node is dropped"
    );
    assert!(!pgdata.exists(), "--destroy removes PGDATA");
    cluster.wait_states("node_1:single/single", SETTLE);
    execute(
        cluster.node("node_1"),
        "CREATE TABLE commits (id int); INSERT INTO commits VALUES (1)",
    );
}

#[test]
fn an_existing_running_database_is_taken_over_as_it_is() {
    let mut cluster = Cluster::start("kc-takeover", &[]);
    let pgdata = cluster.dir.path().join("existing");
    let port = tests::server::free_port();
    let out = pg_command("initdb")
        .arg("-D")
        .arg(&pgdata)
        .args(["-A", "trust", "-U", "postgres", "--no-sync"])
        .output()
        .expect("initdb");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = pg_command("pg_ctl")
        .arg("-D")
        .arg(&pgdata)
        .args([
            "-o",
            &format!("-p {port} -k '' -c listen_addresses=127.0.0.1"),
            "-w",
            "-l",
        ])
        .arg(cluster.dir.path().join("existing.log"))
        .arg("start")
        .output()
        .expect("pg_ctl start");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let control = |pgdata: &std::path::Path| -> String {
        let out = pg_command("pg_controldata")
            .arg("-D")
            .arg(pgdata)
            .output()
            .expect("controldata");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("Database system identifier"))
            .unwrap_or_default()
            .to_string()
    };
    let sysid = control(&pgdata);
    let mut before = postgres::Client::connect(
        &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
        postgres::NoTls,
    )
    .expect("connect to the existing database");
    before
        .batch_execute("CREATE TABLE precious (v text); INSERT INTO precious VALUES ('kept')")
        .expect("insert");
    drop(before);
    let existing = cluster.spawn_node("existing", &pgdata, port, &[]);
    cluster.nodes.push(existing);
    cluster.wait_states("existing:single/single", SETTLE);
    let mut client = cluster.node("existing").connect().expect("connect");
    let kept: String = client
        .query_one("SELECT v FROM precious", &[])
        .expect("row")
        .get(0);
    assert_eq!(kept, "kept");
    assert_eq!(control(&pgdata), sysid, "the same database, not a new one");
}

#[test]
fn the_formation_uri_connects_psql_to_the_primary() {
    let cluster = primary_and_secondary();
    let uri = cluster.on_monitor(&["show", "uri", "--formation", "default"]);
    let uri = uri.trim();
    assert!(uri.contains("target_session_attrs=read-write"), "{uri}");
    let out = pg_command("psql")
        .args([
            uri,
            "-At",
            "-c",
            "SELECT pg_is_in_recovery(), current_setting('port')",
        ])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let primary_port = cluster.node("node_1").port;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("f|{primary_port}")
    );
}

#[test]
fn self_signed_tls_between_keepers_monitor_and_nodes() {
    let mut cluster = Cluster::start_with("kc-tls", &[], &["--ssl-self-signed"]);
    assert!(
        cluster.monitor_uri.contains("sslmode=require"),
        "{}",
        cluster.monitor_uri
    );
    cluster.add_node("node_1", &[]);
    cluster.wait_states("node_1:single/single", SETTLE);
    cluster.add_node("node_2", &[]);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);
    // the standby streams over TLS, and the keepers reach the monitor over TLS
    let mut primary = cluster.node("node_1").connect().expect("connect");
    let ssl: bool = primary
        .query_one(
            "SELECT bool_and(s.ssl) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)",
            &[],
        )
        .expect("pg_stat_ssl")
        .get(0);
    assert!(ssl, "replication is encrypted");
    // the ciphers 2.0 sets on every node with SSL
    for node in ["node_1", "node_2"] {
        let ciphers: String = cluster
            .node(node)
            .connect()
            .expect("connect")
            .query_one("SHOW ssl_ciphers", &[])
            .expect("ssl_ciphers")
            .get(0);
        assert_eq!(
            ciphers,
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:\
             ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA256:\
             ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-SHA384",
            "{node}"
        );
    }
    let mut monitor = cluster.monitor_client().expect("monitor");
    let keepers: i64 = monitor
        .query_one(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.application_name = 'pg_autoctl' AND s.ssl",
            &[],
        )
        .expect("pg_stat_ssl")
        .get(0);
    assert!(
        keepers >= 2,
        "both keepers use TLS to the monitor ({keepers})"
    );
}

#[test]
fn a_monitor_uri_with_several_hosts_reaches_the_one_that_answers() {
    let mut cluster = Cluster::start("kc-multi", &[]);
    let dead = tests::server::free_port();
    cluster.monitor_uri =
        cluster
            .monitor_uri
            .replacen("@127.0.0.1:", &format!("@127.0.0.1:{dead},127.0.0.1:"), 1);
    cluster.add_node("node_1", &[]);
    cluster.wait_states("node_1:single/single", SETTLE);
    let pgdata = cluster.node("node_1").pgdata_arg();
    let configured = cluster.ok(&["config", "get", "pg_autoctl.monitor", "--pgdata", &pgdata]);
    assert!(
        configured.contains(&format!("127.0.0.1:{dead},")),
        "{configured}"
    );
}

/// The postmaster pid of a node, from its postmaster.pid.
fn postmaster_pid(node: &Node) -> i32 {
    let text = std::fs::read_to_string(node.pgdata.join("postmaster.pid")).expect("postmaster.pid");
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid in postmaster.pid")
}

#[test]
fn a_crashed_postgres_is_restarted_by_its_keeper_without_a_failover() {
    let cluster = primary_and_secondary();
    execute(
        cluster.node("node_1"),
        "CREATE TABLE commits (id int); INSERT INTO commits VALUES (1)",
    );
    for name in ["node_2", "node_1"] {
        let node = cluster.node(name);
        let before = postmaster_pid(node);
        // SAFETY: killing a postmaster this test started
        unsafe { libc::kill(before, libc::SIGKILL) };
        wait::until(
            "Postgres to be restarted",
            Duration::from_secs(60),
            Duration::from_millis(100),
            || {
                let now = std::fs::read_to_string(node.pgdata.join("postmaster.pid")).ok()?;
                let pid: i32 = now.lines().next()?.trim().parse().ok()?;
                let ready = now.contains("ready") || now.contains("standby");
                (pid != before && ready).then_some(())
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);
    }
    execute(cluster.node("node_1"), "INSERT INTO commits VALUES (2)");
    assert_eq!(count_rows(cluster.node("node_2")), 2);
}

#[test]
fn three_nodes_elect_a_new_primary_and_the_others_follow_it() {
    let mut cluster = primary_and_secondary();
    cluster.add_node("node_3", &[]);
    cluster.wait_states(
        "node_1:primary/primary node_2:secondary/secondary node_3:secondary/secondary",
        SETTLE,
    );
    execute(
        cluster.node("node_1"),
        "CREATE TABLE commits (id int); INSERT INTO commits VALUES (1)",
    );
    let out = cluster.on_monitor(&["perform", "failover"]);
    assert!(out.contains("is now the primary"), "{out}");
    let states = cluster.states();
    assert!(
        !states.contains("node_1:primary") && states.matches("/secondary").count() == 2,
        "{states}"
    );
    let primary = cluster
        .nodes
        .iter()
        .find(|n| states.contains(&format!("{}:primary/primary", n.name)))
        .unwrap_or_else(|| panic!("no primary in {states}"));
    execute(primary, "INSERT INTO commits VALUES (2)");
    for node in &cluster.nodes {
        wait::until(
            "the row on every node",
            Duration::from_secs(30),
            Duration::from_millis(100),
            || (count_rows(node) == 2).then_some(()),
        )
        .unwrap_or_else(|e| panic!("{e} on {}\n{}", node.name, cluster.logs()));
    }
}
