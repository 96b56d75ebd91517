//! The health check worker probes every node's Postgres and marks the silent ones bad within
//! `period + timeout * (retries + 1) + retries * retry_delay`.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use tests::monitor::Monitor;
use tests::server::free_port;
use tests::wait;

const PERIOD_MS: u64 = 500;
const TIMEOUT_MS: u64 = 500;
const RETRIES: u64 = 1;
const RETRY_DELAY_MS: u64 = 200;

fn health_monitor(label: &str) -> Monitor {
    Monitor::start(
        label,
        &[
            "pgautofailover.enable_health_checks = on",
            "pgautofailover.health_check_period = 500",
            "pgautofailover.health_check_timeout = 500",
            "pgautofailover.health_check_max_retries = 1",
            "pgautofailover.health_check_retry_delay = 200",
        ],
    )
}

/// The longest a probe may take to mark a silent node bad, from the moment it is registered.
fn bound() -> Duration {
    Duration::from_millis(PERIOD_MS + TIMEOUT_MS * (RETRIES + 1) + RETRIES * RETRY_DELAY_MS)
}

fn register(monitor: &mut Monitor, port: i32) -> i64 {
    monitor
        .client
        .query_one(
            "SELECT assigned_node_id FROM pgautofailover.register_node('default', '127.0.0.1', \
             $1, 'postgres', sysidentifier => 42)",
            &[&port],
        )
        .expect("register_node")
        .get(0)
}

fn health(monitor: &mut Monitor, node_id: i64) -> i32 {
    monitor
        .client
        .query_one(
            "SELECT health FROM pgautofailover.node WHERE nodeid = $1",
            &[&node_id],
        )
        .expect("health")
        .get(0)
}

fn wait_health(monitor: &mut Monitor, node_id: i64, wanted: i32, timeout: Duration) -> Duration {
    let start = Instant::now();
    wait::until(
        &format!("node {node_id} health {wanted}"),
        timeout,
        Duration::from_millis(50),
        || (health(monitor, node_id) == wanted).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", monitor.server.log()));
    start.elapsed()
}

#[test]
fn node_on_a_closed_port_is_marked_bad_and_a_live_one_good() {
    let mut monitor = health_monitor("health-closed");
    let own_port = i32::from(monitor.server.port);
    let live = register(&mut monitor, own_port);
    let closed = register(&mut monitor, i32::from(free_port()));
    // one extra second for the worker to start and the round in flight to finish
    let limit = bound() + Duration::from_secs(1);
    let took = wait_health(&mut monitor, closed, 0, limit + Duration::from_secs(5));
    eprintln!("closed port marked bad after {took:?} (bound {limit:?})");
    assert!(
        took <= limit,
        "marked bad after {took:?}, more than {limit:?}"
    );
    wait_health(&mut monitor, live, 1, limit + Duration::from_secs(5));

    let events = monitor.events();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with(&format!("{closed}:")) && e.contains("is marked as unhealthy")),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with(&format!("{live}:")) && e.contains("is marked as healthy")),
        "{events:#?}"
    );
}

#[test]
fn node_that_accepts_but_never_answers_times_out() {
    let mut monitor = health_monitor("health-silent");
    let black_hole = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = i32::from(black_hole.local_addr().expect("addr").port());
    let silent = register(&mut monitor, port);
    let limit = bound() + Duration::from_secs(1);
    let took = wait_health(&mut monitor, silent, 0, limit + Duration::from_secs(5));
    eprintln!("silent node marked bad after {took:?} (bound {limit:?})");
    assert!(
        took <= limit,
        "marked bad after {took:?}, more than {limit:?}"
    );
    drop(black_hole);
}

#[test]
fn node_coming_back_is_marked_good_again() {
    let mut monitor = health_monitor("health-back");
    let node = register(&mut monitor, i32::from(free_port()));
    wait_health(&mut monitor, node, 0, Duration::from_secs(10));
    // the node moves to where a Postgres answers (the monitor itself)
    let port = i32::from(monitor.server.port);
    monitor
        .client
        .execute(
            "SELECT pgautofailover.update_node_metadata($1, NULL, NULL, $2)",
            &[&node, &port],
        )
        .expect("update_node_metadata");
    wait_health(&mut monitor, node, 1, Duration::from_secs(10));
    let events = monitor.events();
    assert!(
        events.iter().any(|e| e.contains("Updating node metadata")),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| e.contains("is marked as healthy")),
        "{events:#?}"
    );
}

fn workers_in(monitor: &mut Monitor, database: &str) -> i64 {
    monitor
        .client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
              WHERE backend_type = 'pg_auto_failover health check' AND datname = $1",
            &[&database],
        )
        .expect("pg_stat_activity")
        .get(0)
}

#[test]
fn a_database_with_the_extension_can_still_be_dropped() {
    let mut monitor = health_monitor("health-dropdb");
    monitor
        .client
        .batch_execute("CREATE DATABASE scratch")
        .expect("create database");
    let mut scratch = monitor.server.connect_to("scratch");
    scratch
        .batch_execute("CREATE EXTENSION pgautofailover CASCADE")
        .expect("create extension");
    drop(scratch);
    wait::until(
        "a health check worker in scratch",
        Duration::from_secs(15),
        Duration::from_millis(100),
        || (workers_in(&mut monitor, "scratch") == 1).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", monitor.server.log()));
    monitor
        .client
        .batch_execute("DROP DATABASE scratch")
        .unwrap_or_else(|e| panic!("drop database: {e:?}\n{}", monitor.server.log()));
}

#[test]
fn a_database_without_the_extension_keeps_no_worker() {
    let mut monitor = health_monitor("health-noext");
    monitor
        .client
        .batch_execute("CREATE DATABASE other")
        .expect("create database");
    // the launcher scans every health_check_period (at least 1 s): watch a few scans
    let mut seen = 0;
    for _ in 0..30 {
        seen = seen.max(workers_in(&mut monitor, "other"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let lingering = workers_in(&mut monitor, "other");
    assert_eq!(
        lingering, 0,
        "a worker stays connected to a database without the extension"
    );
    // and dropping it works at any moment
    monitor
        .client
        .batch_execute("DROP DATABASE other")
        .unwrap_or_else(|e| panic!("drop database: {e:?}"));
    eprintln!("workers briefly seen in 'other': {seen}");
}
