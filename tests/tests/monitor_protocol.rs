//! The node protocol and the operations, through SQL, against a real monitor: scripted keepers
//! register and heartbeat, and the monitor walks them through bootstrap, failover,
//! maintenance and removal, recording events and notifications.

use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use tests::monitor::{Monitor, ScriptedKeeper, settle};
use tests::wait;

fn state(keeper: &ScriptedKeeper) -> (&str, &str) {
    (keeper.current.as_str(), keeper.assigned.as_str())
}

/// Registers two nodes and lets them settle into primary + secondary.
fn primary_and_secondary(monitor: &mut Monitor) -> (ScriptedKeeper, ScriptedKeeper) {
    let c = &mut monitor.client;
    let mut first = ScriptedKeeper::register(c, "default", 6001, 50);
    first.step(c);
    let mut second = ScriptedKeeper::register(c, "default", 6002, 50);
    settle(c, &mut [&mut first, &mut second], 20);
    (first, second)
}

#[test]
fn bootstrap_single_then_wait_standby_catchingup_secondary() {
    let mut monitor = Monitor::start("proto-bootstrap", &[]);
    let c = &mut monitor.client;

    let mut first = ScriptedKeeper::register(c, "default", 6001, 50);
    assert_eq!(first.assigned, "single");
    assert_eq!(first.step(c), "single");

    let mut second = ScriptedKeeper::register(c, "default", 6002, 50);
    assert_eq!(second.assigned, "wait_standby");
    assert_eq!(second.step(c), "wait_standby");

    // the primary lets the standby in
    assert_eq!(first.heartbeat(c), "wait_primary");
    assert_eq!(first.step(c), "wait_primary");
    // the standby starts streaming, then catches up
    assert_eq!(second.heartbeat(c), "catchingup");
    assert_eq!(second.step(c), "secondary");
    assert_eq!(second.step(c), "secondary");
    // and the primary enables synchronous replication
    assert_eq!(first.heartbeat(c), "primary");
    assert_eq!(first.step(c), "primary");

    let sync: String = c
        .query_one(
            "SELECT pgautofailover.synchronous_standby_names('default', 0)",
            &[],
        )
        .expect("synchronous_standby_names")
        .get(0);
    assert_eq!(
        sync,
        format!("ANY 1 (pgautofailover_standby_{})", second.node_id)
    );

    let events = monitor.events();
    for expected in [
        "Registering node 1",
        "to wait_primary after node 2",
        "to catchingup after node 1",
        "to secondary after it caught up",
        "to primary now that we have 1 healthy",
    ] {
        assert!(
            events.iter().any(|e| e.contains(expected)),
            "no event containing {expected:?} in {events:#?}"
        );
    }
    let uri: String = monitor
        .client
        .query_one("SELECT pgautofailover.formation_uri()", &[])
        .expect("formation_uri")
        .get(0);
    assert_eq!(
        uri,
        "postgres://127.0.0.1:6001,127.0.0.1:6002/postgres?target_session_attrs=read-write&sslmode=prefer"
    );
}

#[test]
fn perform_failover_walks_the_promotion_and_the_old_primary_rejoins() {
    let mut monitor = Monitor::start("proto-failover", &[]);
    let (mut first, mut second) = primary_and_secondary(&mut monitor);
    assert_eq!(state(&first), ("primary", "primary"));
    assert_eq!(state(&second), ("secondary", "secondary"));

    let c = &mut monitor.client;
    c.batch_execute("SELECT pgautofailover.perform_failover()")
        .expect("perform_failover");
    assert_eq!(first.heartbeat(c), "draining");
    assert_eq!(second.heartbeat(c), "prepare_promotion");

    // the candidate promotes, the old primary is told to stop
    assert_eq!(second.step(c), "stop_replication");
    assert_eq!(monitor.goal(first.node_id), "demote_timeout");
    let c = &mut monitor.client;
    assert_eq!(first.step(c), "demote_timeout");
    let second_report = first.step(c);
    assert_eq!(second_report, "demote_timeout", "{:#?}", monitor.events());
    let c = &mut monitor.client;
    // the old primary confirmed: the new one opens for writes
    assert_eq!(second.step(c), "wait_primary");
    assert_eq!(first.heartbeat(c), "demoted");
    assert_eq!(first.step(c), "demoted");
    // once the new primary reports wait_primary, the old one may follow it
    assert_eq!(second.step(c), "wait_primary");
    assert_eq!(first.step(c), "catchingup");
    settle(c, &mut [&mut first, &mut second], 20);
    assert_eq!(state(&first), ("secondary", "secondary"));
    assert_eq!(state(&second), ("primary", "primary"));

    let primary: i64 = c
        .query_one(
            "SELECT primary_node_id FROM pgautofailover.get_primary()",
            &[],
        )
        .expect("get_primary")
        .get(0);
    assert_eq!(primary, second.node_id);
}

#[test]
fn failover_on_an_unstable_group_is_refused_and_changes_nothing() {
    let mut monitor = Monitor::start("proto-failover-refused", &[]);
    let c = &mut monitor.client;
    let mut first = ScriptedKeeper::register(c, "default", 6001, 50);
    first.step(c);
    let err = c
        .batch_execute("SELECT pgautofailover.perform_failover()")
        .expect_err("one node cannot fail over");
    let db = err.as_db_error().expect("database error");
    assert_eq!(db.code().code(), "55000");
    assert!(
        db.message().contains("currently has 1 node"),
        "{}",
        db.message()
    );
    assert_eq!(monitor.goal(first.node_id), "single");
}

#[test]
fn maintenance_of_the_secondary_then_of_the_primary() {
    let mut monitor = Monitor::start("proto-maintenance", &[]);
    let (mut first, mut second) = primary_and_secondary(&mut monitor);
    let c = &mut monitor.client;

    let ok: bool = c
        .query_one(
            "SELECT pgautofailover.start_maintenance($1)",
            &[&second.node_id],
        )
        .expect("start_maintenance")
        .get(0);
    assert!(ok);
    // the last sync standby leaves: the primary drops sync replication first
    assert_eq!(first.heartbeat(c), "wait_primary");
    assert_eq!(second.heartbeat(c), "wait_maintenance");
    settle(c, &mut [&mut first, &mut second], 20);
    assert_eq!(state(&first), ("wait_primary", "wait_primary"));
    assert_eq!(state(&second), ("maintenance", "maintenance"));

    c.query_one(
        "SELECT pgautofailover.stop_maintenance($1)",
        &[&second.node_id],
    )
    .expect("stop_maintenance");
    settle(c, &mut [&mut first, &mut second], 20);
    assert_eq!(state(&first), ("primary", "primary"));
    assert_eq!(state(&second), ("secondary", "secondary"));

    // maintenance of the primary hands over to the standby
    c.query_one(
        "SELECT pgautofailover.start_maintenance($1)",
        &[&first.node_id],
    )
    .expect("start_maintenance on the primary");
    assert_eq!(first.heartbeat(c), "prepare_maintenance");
    assert_eq!(second.heartbeat(c), "prepare_promotion");
    settle(c, &mut [&mut first, &mut second], 20);
    assert_eq!(state(&first), ("maintenance", "maintenance"));
    assert_eq!(state(&second), ("wait_primary", "wait_primary"));

    c.query_one(
        "SELECT pgautofailover.stop_maintenance($1)",
        &[&first.node_id],
    )
    .expect("stop_maintenance of the old primary");
    settle(c, &mut [&mut first, &mut second], 20);
    assert_eq!(state(&first), ("secondary", "secondary"));
    assert_eq!(state(&second), ("primary", "primary"));
}

#[test]
fn remove_node_drops_a_standby_then_the_primary_is_single() {
    let mut monitor = Monitor::start("proto-remove", &[]);
    let (mut first, mut second) = primary_and_secondary(&mut monitor);
    let c = &mut monitor.client;

    let removed: bool = c
        .query_one(
            "SELECT pgautofailover.remove_node($1::bigint)",
            &[&second.node_id],
        )
        .expect("remove_node")
        .get(0);
    assert!(removed);
    assert_eq!(second.heartbeat(c), "dropped");
    // the keeper reports dropped: the row goes
    second.step(c);
    let left: i64 = c
        .query_one("SELECT count(*) FROM pgautofailover.node", &[])
        .expect("count")
        .get(0);
    assert_eq!(left, 1);
    settle(c, &mut [&mut first], 20);
    assert_eq!(state(&first), ("single", "single"));

    // removing by host and port, with force, deletes at once
    let mut third = ScriptedKeeper::register(c, "default", 6003, 50);
    third.step(c);
    c.query_one(
        "SELECT pgautofailover.remove_node('127.0.0.1', 6003, force => true)",
        &[],
    )
    .expect("remove_node by host");
    let left: i64 = c
        .query_one("SELECT count(*) FROM pgautofailover.node", &[])
        .expect("count")
        .get(0);
    assert_eq!(left, 1);
}

#[test]
fn three_nodes_elect_the_highest_priority_after_a_failover() {
    let mut monitor = Monitor::start("proto-three", &[]);
    let c = &mut monitor.client;
    let mut first = ScriptedKeeper::register(c, "default", 6001, 50);
    first.step(c);
    let mut second = ScriptedKeeper::register(c, "default", 6002, 50);
    settle(c, &mut [&mut first, &mut second], 20);
    let mut third = ScriptedKeeper::register(c, "default", 6003, 90);
    settle(c, &mut [&mut first, &mut second, &mut third], 30);
    assert_eq!(state(&third), ("secondary", "secondary"));
    // two quorum standbys: number_sync_standbys went from 0 to 1
    let nss: i32 = c
        .query_one(
            "SELECT number_sync_standbys FROM pgautofailover.formation WHERE formationid = 'default'",
            &[],
        )
        .expect("formation")
        .get(0);
    assert_eq!(nss, 1);

    c.batch_execute("SELECT pgautofailover.perform_failover()")
        .expect("perform_failover");
    // the old primary stops (its keeper reports Postgres down), standbys report their LSN
    first.pg_is_running = false;
    settle(c, &mut [&mut first, &mut second, &mut third], 40);
    first.pg_is_running = true;
    settle(c, &mut [&mut first, &mut second, &mut third], 40);
    assert_eq!(state(&third), ("primary", "primary"));
    assert_eq!(state(&second), ("secondary", "secondary"));
    assert_eq!(state(&first), ("secondary", "secondary"));
    let priorities: Vec<(i64, i32)> = c
        .query(
            "SELECT nodeid, candidatepriority FROM pgautofailover.node ORDER BY nodeid",
            &[],
        )
        .expect("priorities")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        priorities,
        [(1, 50), (2, 50), (3, 90)],
        "election restores priorities"
    );
}

#[test]
fn bad_input_gets_a_clear_error_with_sqlstate_and_changes_nothing() {
    let mut monitor = Monitor::start("proto-errors", &[]);
    let (first, _second) = primary_and_secondary(&mut monitor);
    let c = &mut monitor.client;
    let count_events = |c: &mut postgres::Client| -> i64 {
        c.query_one("SELECT count(*) FROM pgautofailover.event", &[])
            .expect("count events")
            .get(0)
    };
    let before = count_events(c);
    let cases: &[(&str, &str, &str)] = &[
        (
            "SELECT * FROM pgautofailover.node_active('nope', 1, 0)",
            "42P17",
            "formation \"nope\" does not exist",
        ),
        (
            "SELECT * FROM pgautofailover.node_active('default', 42, 0)",
            "42704",
            "couldn't find node with nodeid 42",
        ),
        (
            "SELECT * FROM pgautofailover.node_active('default', 1, 0, 'primary', true, 1, '0/1', 'SYNC')",
            "22023",
            "unknown pg_stat_replication.sync_state \"SYNC\"",
        ),
        (
            "SELECT * FROM pgautofailover.node_active('default', 1, 0, 'prime')",
            "22P02",
            "invalid input value for enum",
        ),
        (
            "SELECT * FROM pgautofailover.register_node('nope', 'h', 5432, 'postgres')",
            "42P17",
            "formation \"nope\" does not exist",
        ),
        (
            "SELECT * FROM pgautofailover.register_node('default', '127.0.0.1', 7000, 'postgres', candidate_priority => -1)",
            "22023",
            "invalid value for candidate_priority",
        ),
        (
            "SELECT * FROM pgautofailover.register_node('default', '127.0.0.1', 70000, 'postgres')",
            "22023",
            "invalid node_port 70000",
        ),
        (
            "SELECT * FROM pgautofailover.register_node('default', '127.0.0.1', 6001, 'postgres')",
            "23505",
            "is already registered",
        ),
        (
            "SELECT * FROM pgautofailover.register_node('default', '127.0.0.1', 7001, 'otherdb')",
            "55000",
            "which expects dbname \"postgres\"",
        ),
        (
            "SELECT pgautofailover.set_node_candidate_priority('default', 'node_2', 101)",
            "22023",
            "expected an integer value between 0 and 100",
        ),
        (
            "SELECT pgautofailover.set_node_candidate_priority('default', 'node_9', 10)",
            "42704",
            "node \"node_9\" is not registered",
        ),
        (
            "SELECT pgautofailover.set_formation_number_sync_standbys('default', -1)",
            "22023",
            "invalid value for number_sync_standbys",
        ),
        (
            "SELECT pgautofailover.set_formation_number_sync_standbys('default', 1)",
            "22023",
            "at least 2 standby nodes are required",
        ),
        (
            "SELECT pgautofailover.perform_promotion('default', 'node_1')",
            "",
            "",
        ),
        (
            "SELECT pgautofailover.start_maintenance(999)",
            "42704",
            "couldn't find node with nodeid 999",
        ),
        (
            "SELECT pgautofailover.stop_maintenance(1)",
            "55000",
            "cannot stop maintenance",
        ),
        (
            "SELECT pgautofailover.create_formation('default', 'pgsql', 'postgres', true, 0)",
            "42710",
            "formation \"default\" already exists",
        ),
        (
            "SELECT pgautofailover.create_formation('f2', 'mongo', 'postgres', true, 0)",
            "22023",
            "unknown formation kind \"mongo\"",
        ),
        (
            "SELECT pgautofailover.drop_formation('default')",
            "55000",
            "still has 2 node(s)",
        ),
        (
            "SELECT pgautofailover.disable_secondary('default')",
            "55000",
            "formation has nodes that are not in SINGLE state",
        ),
        (
            "SELECT pgautofailover.synchronous_standby_names('nope', 0)",
            "42P17",
            "formation \"nope\" does not exist",
        ),
        (
            "SELECT pgautofailover.remove_node('nohost', 1)",
            "42704",
            "couldn't find node with hostname \"nohost\" and port 1",
        ),
    ];
    for (sql, code, message) in cases {
        match c.batch_execute(sql) {
            Ok(()) if code.is_empty() => {}
            Ok(()) => panic!("{sql} succeeded, expected {code}"),
            Err(err) => {
                let db = err
                    .as_db_error()
                    .unwrap_or_else(|| panic!("{sql}: not a database error: {err}"));
                assert_eq!(db.code().code(), *code, "{sql}: {}", db.message());
                assert!(
                    db.message().contains(message),
                    "{sql}: message {:?} does not contain {message:?}",
                    db.message()
                );
                // no Rust panic text, no backtrace in what the user sees
                assert!(
                    !db.message().contains("panicked"),
                    "{sql}: {}",
                    db.message()
                );
                assert!(db.detail().is_none_or(|d| !d.contains("rust_begin_unwind")));
            }
        }
    }
    assert_eq!(
        count_events(c),
        before,
        "refused calls must not record events"
    );
    assert_eq!(monitor.goal(first.node_id), "primary");
    let nodes: i64 = monitor
        .client
        .query_one("SELECT count(*) FROM pgautofailover.node", &[])
        .expect("count")
        .get(0);
    assert_eq!(nodes, 2);
}

#[test]
fn state_changes_are_notified_on_the_state_and_log_channels() {
    let mut monitor = Monitor::start("proto-notify", &[]);
    let mut listener = monitor.server.connect();
    listener
        .batch_execute("LISTEN state; LISTEN log")
        .expect("listen");
    let c = &mut monitor.client;
    let mut first = ScriptedKeeper::register(c, "default", 6001, 50);
    first.step(c);

    let mut notes = Vec::new();
    let mut notifications = listener.notifications();
    let mut iter = notifications.timeout_iter(Duration::from_secs(5));
    while let Ok(Some(n)) = iter.next() {
        notes.push((n.channel().to_string(), n.payload().to_string()));
        if notes.len() >= 4 {
            break;
        }
    }
    let state = notes
        .iter()
        .find(|(channel, _)| channel == "state")
        .map(|(_, payload)| payload.clone())
        .unwrap_or_else(|| panic!("no state notification in {notes:?}"));
    for field in [
        "\"type\": \"state\"",
        "\"formation\": \"default\"",
        "\"groupId\": 0",
        "\"nodeId\": 1",
        "\"name\": \"node_1\"",
        "\"host\": \"127.0.0.1\"",
        "\"port\": 6001",
        "\"reportedState\": \"init\"",
        "\"goalState\": \"single\"",
        "\"health\": \"unknown\"",
    ] {
        assert!(state.contains(field), "{field} missing from {state}");
    }
    assert!(
        notes
            .iter()
            .any(|(channel, payload)| channel == "log" && payload.contains("Registering node 1")),
        "no log notification in {notes:?}"
    );
}

#[test]
fn unchanged_heartbeats_write_no_event_and_reach_the_table_within_the_flush_interval() {
    let mut monitor = Monitor::start("proto-heartbeat", &[]);
    let (mut first, _second) = primary_and_secondary(&mut monitor);
    let c = &mut monitor.client;
    let events_before: i64 = c
        .query_one("SELECT count(*) FROM pgautofailover.event", &[])
        .expect("count")
        .get(0);
    let time_before: String = c
        .query_one(
            "SELECT reporttime::text FROM pgautofailover.node WHERE nodeid = 1",
            &[],
        )
        .expect("reporttime")
        .get(0);
    first.lsn = "0/3000100".to_string();
    for _ in 0..20 {
        assert_eq!(first.heartbeat(c), "primary");
    }
    // kept in shared memory, written by the worker within a second (heartbeat_flush_interval)
    let stored = wait::until(
        "the heartbeat in pgautofailover.node",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            let row = c
                .query_one(
                    "SELECT reporttime::text, reportedlsn::text FROM pgautofailover.node \
                      WHERE nodeid = 1",
                    &[],
                )
                .ok()?;
            let (time, lsn): (String, String) = (row.get(0), row.get(1));
            (time != time_before && lsn == "0/3000100").then_some(lsn)
        },
    );
    assert!(stored.is_ok(), "{stored:?}");
    let events_after: i64 = c
        .query_one("SELECT count(*) FROM pgautofailover.event", &[])
        .expect("count")
        .get(0);
    assert_eq!(
        events_after, events_before,
        "no event for unchanged heartbeats"
    );
}

#[test]
fn decisions_see_heartbeats_not_yet_written_to_the_table() {
    // heartbeats stay in shared memory for a minute; a primary reporting every 100 ms must
    // not look silent, even though its row is older than the unhealthy timeout and its probe
    // fails (nothing listens on its port)
    let mut monitor = Monitor::start(
        "proto-overlay",
        &[
            "pgautofailover.heartbeat_flush_interval = 60000",
            "pgautofailover.node_considered_unhealthy_timeout = 1000",
            "pgautofailover.enable_health_checks = on",
            "pgautofailover.health_check_period = 200",
            "pgautofailover.health_check_timeout = 200",
            "pgautofailover.health_check_max_retries = 1",
            "pgautofailover.health_check_retry_delay = 100",
        ],
    );
    let (mut first, mut second) = primary_and_secondary(&mut monitor);
    assert_eq!(state(&first), ("primary", "primary"));
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        let goal = first.heartbeat(&mut monitor.client);
        assert_eq!(goal, "primary", "{:#?}", monitor.events());
        let goal = second.heartbeat(&mut monitor.client);
        assert_eq!(goal, "secondary", "{:#?}", monitor.events());
        std::thread::sleep(Duration::from_millis(100));
    }
    let c = &mut monitor.client;
    let (age, health): (f64, i32) = c
        .query_one(
            "SELECT extract(epoch FROM now() - reporttime)::float8, health \
               FROM pgautofailover.node WHERE nodeid = $1",
            &[&first.node_id],
        )
        .map(|r| (r.get(0), r.get(1)))
        .expect("row");
    assert!(
        age > 1.5,
        "the row was not written by heartbeats (age {age})"
    );
    assert_eq!(
        health, 0,
        "the probe fails: nothing listens on the node's port"
    );
}
