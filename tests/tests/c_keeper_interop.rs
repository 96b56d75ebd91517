//! pg_auto_failover 2.0's own keepers (Debian's `pg_autoctl` 2.0) register, heartbeat,
//! bootstrap a primary and a secondary with real Postgres nodes, and switch over, against our
//! monitor.

use std::time::Duration;

use tests::c_keeper::CKeeper;
use tests::monitor::Monitor;
use tests::server::{TempDir, free_port};
use tests::wait;

fn states(monitor: &mut Monitor) -> String {
    monitor
        .client
        .query_one(
            "SELECT coalesce(string_agg(current_group_state || '/' || assigned_group_state, ' ' \
                    ORDER BY node_id), '') FROM pgautofailover.current_state()",
            &[],
        )
        .map(|r| r.get(0))
        .unwrap_or_default()
}

fn wait_states(monitor: &mut Monitor, wanted: &str, keepers: &[&CKeeper]) {
    if let Err(e) = wait::until(
        wanted,
        Duration::from_secs(150),
        Duration::from_millis(250),
        || (states(monitor) == wanted).then_some(()),
    ) {
        let logs: Vec<String> = keepers.iter().map(|k| k.log()).collect();
        panic!(
            "{e}; states are {:?}\nevents: {:#?}\nkeeper logs:\n{}",
            states(monitor),
            monitor.events(),
            logs.join("\n----\n")
        );
    }
}

#[test]
fn keepers_of_pg_auto_failover_2_0_bootstrap_and_switch_over() {
    let mut monitor = Monitor::start_in(
        "interop",
        &[
            "pgautofailover.enable_health_checks = on",
            "pgautofailover.health_check_period = 1000",
        ],
        "pg_auto_failover",
    );
    let uri = format!(
        "postgres://autoctl_node@127.0.0.1:{}/pg_auto_failover?sslmode=disable",
        monitor.server.port
    );
    let dir = TempDir::new("interop-nodes");

    let a = CKeeper::start(dir.path(), "node_a", free_port(), &uri);
    wait_states(&mut monitor, "single/single", &[&a]);
    let b = CKeeper::start(dir.path(), "node_b", free_port(), &uri);
    wait_states(
        &mut monitor,
        "primary/primary secondary/secondary",
        &[&a, &b],
    );

    monitor
        .client
        .batch_execute("SELECT pgautofailover.perform_failover()")
        .expect("perform_failover");
    wait_states(
        &mut monitor,
        "secondary/secondary primary/primary",
        &[&a, &b],
    );

    // the new primary takes writes, and the old one follows it
    let mut primary = postgres::Client::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            b.port
        ),
        postgres::NoTls,
    )
    .expect("connect to the new primary");
    primary
        .batch_execute("CREATE TABLE interop(id int); INSERT INTO interop VALUES (1)")
        .expect("write on the new primary");
    let events = monitor.events();
    for expected in [
        "to prepare_promotion after a user-initiated failover",
        "to wait_primary and node 1",
        "to catchingup after it converged to demotion",
    ] {
        assert!(
            events.iter().any(|e| e.contains(expected)),
            "{expected}: {events:#?}"
        );
    }
}
