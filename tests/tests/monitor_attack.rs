//! Random hostile strings in every text argument of every API function, against a real
//! monitor: newlines, quotes, `#`, `/`, `,`, unicode controls, NUL, 10 kB, empty. Each call is
//! accepted or refused with a client-side SQLSTATE (never an internal error, a type mismatch
//! or a lost connection), the server stays up, and whatever was accepted and stored is in the
//! vocabulary every keeper checks (`fsm::vocab`), so no accepted value can reach a node's files
//! as anything but a plain host or name. The schedule is reproducible (fixed seed;
//! `PROPTEST_RNG_SEED` explores others).

use std::cell::Cell;

use fsm::vocab::{ClusterName, FormationId, Host, NodeName, PgIdentifier};
use postgres::Client;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use tests::monitor::{Monitor, ScriptedKeeper, describe, settle};

/// Each API call with one text argument (`$1`) under attack, the others valid; `{port}` is a
/// fresh port so that accepted registrations do not collide.
const CALLS: &[&str] = &[
    "SELECT * FROM pgautofailover.create_formation($1, 'pgsql', 'db', true, 0)",
    "SELECT * FROM pgautofailover.create_formation('f{port}', $1, 'db', true, 0)",
    "SELECT * FROM pgautofailover.create_formation('f{port}', 'pgsql', $1::text::name, true, 0)",
    "SELECT pgautofailover.drop_formation($1)",
    "SELECT pgautofailover.enable_secondary($1)",
    "SELECT pgautofailover.disable_secondary($1)",
    "SELECT pgautofailover.set_formation_number_sync_standbys($1, 0)",
    "SELECT * FROM pgautofailover.register_node($1, '10.1.0.1', {port}, 'postgres', \
     sysidentifier => 6000000000000000001)",
    "SELECT * FROM pgautofailover.register_node('default', $1, {port}, 'postgres', \
     sysidentifier => 6000000000000000001, candidate_priority => 0, replication_quorum => false)",
    "SELECT * FROM pgautofailover.register_node('default', '10.1.0.1', {port}, $1::text::name, \
     sysidentifier => 6000000000000000001)",
    "SELECT * FROM pgautofailover.register_node('default', '10.1.0.1', {port}, 'postgres', $1, \
     6000000000000000001, candidate_priority => 0, replication_quorum => false)",
    "SELECT * FROM pgautofailover.register_node('default', '10.1.0.1', {port}, 'postgres', '', \
     6000000000000000001, node_kind => $1)",
    "SELECT * FROM pgautofailover.register_node('default', '10.1.0.1', {port}, 'postgres', '', \
     6000000000000000001, candidate_priority => 0, replication_quorum => false, \
     node_cluster => $1)",
    "SELECT * FROM pgautofailover.node_active($1, 1, 0, 'primary', true, 1, '0/3000000', '')",
    "SELECT * FROM pgautofailover.node_active('default', 2, 0, 'secondary', true, 1, \
     '0/3000000', $1)",
    "SELECT pgautofailover.update_node_metadata(2, $1, NULL, NULL)",
    "SELECT pgautofailover.update_node_metadata(2, NULL, $1, NULL)",
    "SELECT * FROM pgautofailover.get_nodes($1)",
    "SELECT * FROM pgautofailover.get_primary($1)",
    "SELECT * FROM pgautofailover.get_coordinator($1)",
    "SELECT * FROM pgautofailover.get_most_advanced_standby($1)",
    "SELECT pgautofailover.remove_node($1, 1, false)",
    "SELECT pgautofailover.perform_failover($1)",
    "SELECT pgautofailover.perform_promotion($1, 'node_2')",
    "SELECT pgautofailover.perform_promotion('default', $1)",
    "SELECT pgautofailover.set_node_candidate_priority($1, 'node_2', 50)",
    "SELECT pgautofailover.set_node_candidate_priority('default', $1, 50)",
    "SELECT pgautofailover.set_node_replication_quorum('default', $1, true)",
    "SELECT pgautofailover.synchronous_standby_names($1)",
    "SELECT * FROM pgautofailover.last_events($1, count => 3)",
    "SELECT * FROM pgautofailover.current_state($1)",
    "SELECT pgautofailover.formation_uri($1)",
    "SELECT pgautofailover.formation_uri('default', $1)",
    "SELECT pgautofailover.formation_uri('default', 'default', $1)",
    "SELECT pgautofailover.formation_uri('default', 'default', 'prefer', $1)",
    "SELECT pgautofailover.formation_uri('default', 'default', 'prefer', '', $1)",
    "SELECT * FROM pgautofailover.formation_settings($1)",
];

/// Strings built from what means something in the files and protocols values reach.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9.:/_#,@+* \"'\\\\\n\r\t=-]{0,40}",
        2 => "(all|samenet|samehost|replication|0\\.0\\.0\\.0/0|::/0|node_[0-9]|default|postgres)",
        2 => "[a\u{0}\u{85}\u{2028}\u{202e}\u{feff}é ]{0,12}",
        1 => any::<String>(),
        1 => Just("x".repeat(10_000)),
        1 => Just(String::new()),
        1 => "10\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(\n.*)?",
    ]
}

fn is_client_error(code: &str) -> bool {
    // data exceptions, integrity violations, undefined objects, wrong state, not supported;
    // never 42804 (a type mismatch between the SQL and the library: a bug) nor XX (internal)
    (code.starts_with("22")
        || code.starts_with("23")
        || code.starts_with("42")
        || code.starts_with("55")
        || code.starts_with("0A"))
        && code != "42804"
}

#[test]
fn random_strings_in_every_text_argument_are_refused_or_stored_in_the_vocabulary() {
    let mut monitor = Monitor::start("attack", &[]);
    let c = &mut monitor.client;
    let mut first = ScriptedKeeper::register(c, "default", 6001, 50);
    first.step(c);
    let mut second = ScriptedKeeper::register(c, "default", 6002, 50);
    settle(c, &mut [&mut first, &mut second], 20);

    let mut config = Config::with_cases(1500);
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x00C0_FFEE);
    }
    config.failure_persistence = None;
    let mut runner = TestRunner::new(config);
    let port = Cell::new(10_000);
    let accepted = Cell::new(0usize);
    let client = std::cell::RefCell::new(&mut monitor.client);
    let result = runner.run(&(0..CALLS.len(), hostile()), |(call, value)| {
        port.set(port.get() + 1);
        let sql = CALLS[call].replace("{port}", &port.get().to_string());
        let mut c = client.borrow_mut();
        match c.query(sql.as_str(), &[&value]) {
            Ok(_) => {
                accepted.set(accepted.get() + 1);
                Ok(())
            }
            Err(e) => match e.as_db_error() {
                Some(db) if is_client_error(db.code().code()) => {
                    prop_assert!(
                        !db.message().contains("panicked"),
                        "{sql} with {value:?}: {}",
                        db.message()
                    );
                    Ok(())
                }
                _ => Err(TestCaseError::fail(format!(
                    "{sql} with {value:?}: {}",
                    describe(&e)
                ))),
            },
        }
    });
    if let Err(e) = result {
        panic!("{e}\n{}", monitor.server.log());
    }
    let c = &mut monitor.client;
    c.batch_execute("SELECT 1").expect("the server is up");
    assert!(accepted.get() > 0, "nothing was ever accepted");
    check_stored_values(c);
}

/// Every stored host, name, formation and cluster is in the vocabulary.
fn check_stored_values(c: &mut Client) {
    for row in c
        .query(
            "SELECT nodehost, nodename, formationid, nodecluster, nodeport FROM pgautofailover.node",
            &[],
        )
        .expect("nodes")
    {
        let (host, name, formation, cluster, port): (String, String, String, String, i32) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        assert!(Host::parse(&host).is_ok(), "stored host {host:?}");
        assert!(NodeName::parse(&name).is_ok(), "stored name {name:?}");
        assert!(FormationId::parse(&formation).is_ok(), "stored {formation:?}");
        assert!(ClusterName::parse(&cluster).is_ok(), "stored {cluster:?}");
        assert!((1..=65535).contains(&port));
    }
    for row in c
        .query(
            "SELECT formationid, dbname::text FROM pgautofailover.formation",
            &[],
        )
        .expect("formations")
    {
        let (formation, dbname): (String, String) = (row.get(0), row.get(1));
        assert!(
            FormationId::parse(&formation).is_ok(),
            "stored {formation:?}"
        );
        assert!(
            PgIdentifier::parse(&dbname).is_ok(),
            "stored dbname {dbname:?}"
        );
    }
}
