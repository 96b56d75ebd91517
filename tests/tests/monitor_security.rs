//! The monitor attacked through its SQL API: values that would reach other nodes' configuration
//! files, ids that would exhaust the node id sequence, a database owner planting functions and
//! operators for the superuser to run, and a session that sits on a group's lock. Each is
//! refused or contained, and a refused call changes nothing.

use std::time::Duration;

use postgres::Client;
use tests::monitor::{Monitor, ScriptedKeeper, describe, settle};
use tests::wait;

fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)))
        .get(0)
}

/// The rows of the node and event tables and the id sequence: what a refused call must leave.
fn footprint(c: &mut Client) -> (i64, i64, String) {
    let seq: String = c
        .query_one(
            "SELECT format('%s/%s', last_value, is_called) FROM pgautofailover.node_nodeid_seq",
            &[],
        )
        .expect("sequence")
        .get(0);
    (
        count(c, "SELECT count(*) FROM pgautofailover.node"),
        count(c, "SELECT count(*) FROM pgautofailover.event"),
        seq,
    )
}

/// `register_node` with these values in the positions an attacker controls.
fn register(
    c: &mut Client,
    host: &str,
    port: i32,
    name: &str,
    desired_node_id: i64,
    cluster: &str,
) -> Result<i64, postgres::Error> {
    c.query_one(
        "SELECT assigned_node_id FROM pgautofailover.register_node('default', $1, $2, \
         'postgres', $3, 6000000000000000001, $4, -1, 'init', 'standalone', 100, true, $5)",
        &[&host, &port, &name, &desired_node_id, &cluster],
    )
    .map(|row| row.get(0))
}

fn expect_refused(result: Result<impl std::fmt::Debug, postgres::Error>, what: &str, word: &str) {
    let err = match result {
        Ok(v) => panic!("{what}: accepted ({v:?})"),
        Err(e) => e,
    };
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("{what}: not a server error: {err}"));
    assert_eq!(db.code().code(), "22023", "{what}: {}", describe(&err));
    assert!(
        db.message().contains(word),
        "{what}: {:?} does not name {word}",
        db.message()
    );
    assert!(
        !db.message().contains('\n'),
        "{what}: the message spans lines"
    );
}

#[test]
fn hostile_hosts_names_and_ids_are_refused_and_change_nothing() {
    let mut monitor = Monitor::start("sec-vocab", &[]);
    let c = &mut monitor.client;
    let before = footprint(c);
    for host in [
        "0.0.0.0/0",
        "db1\nhost all all 0.0.0.0/0 trust",
        "all",
        "samenet",
        ".example.com",
        "db 1",
        "127.1",
        "",
        "-oProxyCommand=x",
        &"a".repeat(300),
    ] {
        expect_refused(
            register(c, host, 6001, "", -1, "default"),
            &format!("host {host:?}"),
            "node_host",
        );
    }
    for name in [
        "node\n1",
        "node\r1",
        " node",
        "\u{202e}node",
        &"n".repeat(256),
    ] {
        expect_refused(
            register(c, "10.0.0.1", 6001, name, -1, "default"),
            &format!("name {name:?}"),
            "node_name",
        );
    }
    for id in [0, -2, i64::from(i32::MAX) + 1, i64::MAX] {
        expect_refused(
            register(c, "10.0.0.1", 6001, "", id, "default"),
            &format!("desired_node_id {id}"),
            "desired_node_id",
        );
    }
    expect_refused(
        register(c, "10.0.0.1", 6001, "", -1, "a\nb"),
        "cluster",
        "node_cluster",
    );
    expect_refused(
        register(c, "10.0.0.1", 0, "", -1, "default"),
        "port",
        "node_port",
    );
    expect_refused(
        c.query_one(
            "SELECT * FROM pgautofailover.create_formation($1, 'pgsql', 'db', false, 0)",
            &[&"f\nx"],
        ),
        "formation id",
        "formation_id",
    );
    expect_refused(
        c.query_one(
            "SELECT * FROM pgautofailover.create_formation('f', 'pgsql', $1::text::name, false, 0)",
            &[&"db\n"],
        ),
        "dbname",
        "dbname",
    );
    assert_eq!(footprint(c), before, "a refused call changed something");

    // a registered node cannot be renamed or moved to a hostile value either
    let node = register(c, "10.0.0.1", 6001, "node_a", -1, "default").expect("register");
    let before = footprint(c);
    let row = |c: &mut Client| -> (String, String, i32) {
        let r = c
            .query_one(
                "SELECT nodename, nodehost, nodeport FROM pgautofailover.node WHERE nodeid = $1",
                &[&node],
            )
            .expect("node row");
        (r.get(0), r.get(1), r.get(2))
    };
    let row_before = row(c);
    for (name, host, field) in [
        (Some("x\ny"), None, "node_name"),
        (None, Some("0.0.0.0/0"), "node_host"),
        (None, Some("10.0.0.2\nhost all all all trust"), "node_host"),
        (Some(""), None, "node_name"),
    ] {
        expect_refused(
            c.query_one(
                "SELECT pgautofailover.update_node_metadata($1, $2, $3, NULL)",
                &[&node, &name, &host],
            ),
            &format!("update_node_metadata {name:?} {host:?}"),
            field,
        );
    }
    assert_eq!(row(c), row_before);
    assert_eq!(footprint(c), before);
}

#[test]
fn a_chosen_node_id_never_moves_the_sequence() {
    let mut monitor = Monitor::start("sec-ids", &[]);
    let c = &mut monitor.client;
    let highest = i64::from(i32::MAX);
    assert_eq!(
        register(c, "10.0.0.1", 6001, "", highest, "default").expect("largest id"),
        highest
    );
    c.batch_execute(
        "SELECT pgautofailover.create_formation('other', 'pgsql', 'postgres', true, 0)",
    )
    .expect("formation");
    let next = c
        .query_one(
            "SELECT assigned_node_id FROM pgautofailover.register_node('other', '10.0.0.2', 6002, \
             'postgres', sysidentifier => 6000000000000000002)",
            &[],
        )
        .expect("register in another formation")
        .get::<_, i64>(0);
    assert_eq!(next, 1, "the sequence moved to the chosen id");
    // a chosen id the sequence reaches later is skipped, not reused
    let chosen = register(c, "10.0.0.3", 6003, "", 2, "default");
    assert!(
        chosen.is_ok(),
        "{}",
        chosen.as_ref().err().map(describe).unwrap_or_default()
    );
    let after = c
        .query_one(
            "SELECT assigned_node_id FROM pgautofailover.register_node('other', '10.0.0.4', 6004, \
             'postgres', sysidentifier => 6000000000000000002)",
            &[],
        )
        .expect("register after a chosen id")
        .get::<_, i64>(0);
    assert_eq!(after, 3);
}

#[test]
fn planted_functions_and_operators_never_run_inside_the_api() {
    let mut monitor = Monitor::start_in("sec-path", &[], "pg_auto_failover");
    // 2.0's layout: the monitor database belongs to a login role
    monitor
        .client
        .batch_execute(
            "CREATE ROLE intruder LOGIN; \
             ALTER DATABASE pg_auto_failover OWNER TO intruder;",
        )
        .expect("intruder");
    let mut intruder = monitor.server.connect_as("pg_auto_failover", "intruder");
    intruder
        .batch_execute(
            "CREATE SCHEMA evil; \
             GRANT USAGE ON SCHEMA evil TO PUBLIC; \
             CREATE TABLE evil.calls (who name, what text); \
             GRANT INSERT ON evil.calls TO PUBLIC; \
             CREATE FUNCTION evil.pg_notify(text, text) RETURNS void LANGUAGE sql AS \
               $$ INSERT INTO evil.calls VALUES (current_user, 'pg_notify') $$; \
             CREATE FUNCTION evil.nextval(regclass) RETURNS bigint LANGUAGE sql AS \
               $$ INSERT INTO evil.calls VALUES (current_user, 'nextval'); \
                  SELECT pg_catalog.nextval($1) $$; \
             CREATE FUNCTION evil.int8eq(bigint, bigint) RETURNS bool LANGUAGE sql AS \
               $$ INSERT INTO evil.calls VALUES (current_user, 'int8eq'); \
                  SELECT $1 OPERATOR(pg_catalog.=) $2 $$; \
             CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, \
                                     FUNCTION = evil.int8eq); \
             CREATE FUNCTION evil.texteq(text, text) RETURNS bool LANGUAGE sql AS \
               $$ INSERT INTO evil.calls VALUES (current_user, 'texteq'); \
                  SELECT $1 OPERATOR(pg_catalog.=) $2 $$; \
             CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq); \
             ALTER DATABASE pg_auto_failover SET search_path = evil, pg_catalog, public;",
        )
        .expect("plant");

    // a keeper logs in: its session gets the planted search_path
    let mut keeper_session = monitor
        .server
        .connect_as("pg_auto_failover", "autoctl_node");
    let path: String = keeper_session
        .query_one("SHOW search_path", &[])
        .expect("search_path")
        .get(0);
    assert!(path.starts_with("evil"), "{path}");
    let c = &mut keeper_session;
    let mut first = ScriptedKeeper::register(c, "default", 6001, 50);
    first.step(c);
    let mut second = ScriptedKeeper::register(c, "default", 6002, 50);
    settle(c, &mut [&mut first, &mut second], 20);
    for sql in [
        "SELECT pgautofailover.set_node_candidate_priority('default', 'node_2', 40)",
        "SELECT * FROM pgautofailover.get_other_nodes(1)",
        "SELECT * FROM pgautofailover.get_nodes('default')",
        "SELECT pgautofailover.synchronous_standby_names('default', 0)",
        "SELECT * FROM pgautofailover.create_formation('f2', 'pgsql', 'db', true, 0)",
        "SELECT * FROM pgautofailover.register_node('f2', '10.0.0.9', 7000, 'db', \
         sysidentifier => 1, desired_node_id => 77)",
        "SELECT * FROM pgautofailover.set_node_system_identifier(77, 2)",
    ] {
        c.batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {}", describe(&e)));
    }
    let mut admin = monitor.server.connect_to("pg_auto_failover");
    let calls: Vec<String> = admin
        .query("SELECT format('%s %s', who, what) FROM evil.calls", &[])
        .expect("calls")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        calls.is_empty(),
        "planted objects ran inside the API: {calls:?}"
    );
    let superuser: bool = admin
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = 'intruder'",
            &[],
        )
        .expect("role")
        .get(0);
    assert!(!superuser);
    let unpinned: Vec<String> = admin
        .query(
            "SELECT p.oid::regprocedure::text FROM pg_proc p \
              WHERE p.pronamespace = 'pgautofailover'::regnamespace \
                AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)",
            &[],
        )
        .expect("functions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        unpinned.is_empty(),
        "functions without a pinned search_path: {unpinned:?}"
    );
}

#[test]
fn a_session_sitting_on_a_group_lock_is_bounded_and_then_terminated() {
    let mut monitor = Monitor::start("sec-lock", &["pgautofailover.group_lock_timeout = 1000"]);
    let c = &mut monitor.client;
    let mut first = ScriptedKeeper::register(c, "default", 6001, 50);
    first.step(c);
    let mut second = ScriptedKeeper::register(c, "default", 6002, 50);
    settle(c, &mut [&mut first, &mut second], 20);

    // an operator opens a transaction, calls the API, and walks away
    let mut careless = monitor.server.connect();
    careless
        .batch_execute(
            "BEGIN; SELECT pgautofailover.set_node_candidate_priority('default', 'node_2', 40);",
        )
        .expect("careless transaction");

    // a heartbeat of that group waits at most group_lock_timeout, then says "retry"
    let mut keeper = monitor.server.connect();
    keeper
        .batch_execute("SET statement_timeout = '20s'")
        .expect("statement_timeout");
    let mut blocked = second.clone();
    let waited = std::time::Instant::now();
    match blocked.try_heartbeat(&mut keeper) {
        Err(e) => {
            let code = e.as_db_error().map(|d| d.code().code().to_string());
            assert_eq!(code.as_deref(), Some("55P03"), "{}", describe(&e));
        }
        // the worker may already have terminated the holder
        Ok(_) => assert!(waited.elapsed() >= Duration::from_millis(500)),
    }

    // the worker terminates the holder; heartbeats and operations of the group go on
    wait::until(
        "the careless session to be terminated",
        Duration::from_secs(15),
        Duration::from_millis(200),
        || {
            careless
                .is_valid(Duration::from_secs(2))
                .is_err()
                .then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{:#?}", monitor.events()));
    let c = &mut monitor.client;
    assert_eq!(
        (first.current.as_str(), second.current.as_str()),
        ("primary", "secondary")
    );
    wait::until(
        "a heartbeat of the group to go through",
        Duration::from_secs(15),
        Duration::from_millis(200),
        || second.try_heartbeat(c).ok(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let priority: i32 = c
        .query_one(
            "SELECT candidatepriority FROM pgautofailover.node WHERE nodename = 'node_2'",
            &[],
        )
        .expect("priority")
        .get(0);
    assert_eq!(priority, 50, "the terminated transaction was rolled back");
    c.batch_execute("SELECT pgautofailover.perform_failover()")
        .expect("a failover can be started again");
    assert!(
        monitor
            .server
            .log()
            .contains("held a pgautofailover group lock"),
        "the termination is not logged"
    );
}
