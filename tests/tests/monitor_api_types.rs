//! Every function of the monitor's SQL API called once, and every column it returns decoded as
//! the type its SQL declaration gives: the extension's Rust side builds each datum by hand, so
//! a value of the wrong type (a `text` returned where the declaration says `name`) would
//! decode as garbage here, or crash the server. The list of calls is checked against
//! `pg_proc`, so a new function without a call here fails the test.

use std::collections::BTreeSet;

use postgres::Client;
use postgres::types::{FromSql, Kind, PgLsn, Type};
use tests::monitor::{Monitor, ScriptedKeeper, describe, settle};

/// An enum label (the replication state), decoded from its binary form.
struct Label(String);

impl<'a> FromSql<'a> for Label {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Label(std::str::from_utf8(raw)?.to_string()))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Enum(_))
    }
}

/// Every column of every row, decoded as its declared type and rendered as text.
fn decode(rows: &[postgres::Row], call: &str) -> Vec<Vec<String>> {
    rows.iter()
        .map(|row| {
            row.columns()
                .iter()
                .enumerate()
                .map(|(i, column)| {
                    let ty = column.type_();
                    let shown = |v: Option<String>| v.unwrap_or_else(|| "NULL".to_string());
                    let decoded = match *ty {
                        Type::INT4 => row
                            .try_get::<_, Option<i32>>(i)
                            .map(|v| shown(v.map(|v| v.to_string()))),
                        Type::INT8 => row
                            .try_get::<_, Option<i64>>(i)
                            .map(|v| shown(v.map(|v| v.to_string()))),
                        Type::BOOL => row
                            .try_get::<_, Option<bool>>(i)
                            .map(|v| shown(v.map(|v| v.to_string()))),
                        Type::TEXT | Type::NAME => row.try_get::<_, Option<String>>(i).map(shown),
                        Type::PG_LSN => row
                            .try_get::<_, Option<PgLsn>>(i)
                            .map(|v| shown(v.map(|v| v.to_string()))),
                        Type::TIMESTAMPTZ => row
                            .try_get::<_, Option<std::time::SystemTime>>(i)
                            .map(|v| shown(v.map(|_| "time".to_string()))),
                        Type::VOID => Ok("void".to_string()),
                        _ if matches!(ty.kind(), Kind::Enum(_)) => row
                            .try_get::<_, Option<Label>>(i)
                            .map(|v| shown(v.map(|l| l.0))),
                        _ => panic!(
                            "{call}: column {} has a type this test does not decode: {ty}",
                            column.name()
                        ),
                    };
                    let value = decoded.unwrap_or_else(|e| {
                        panic!(
                            "{call}: column {} ({ty}) does not decode: {e}",
                            column.name()
                        )
                    });
                    if *ty == Type::NAME || *ty == Type::TEXT {
                        assert!(
                            !value.contains('\0'),
                            "{call}: column {} holds a NUL: {value:?}",
                            column.name()
                        );
                    }
                    value
                })
                .collect()
        })
        .collect()
}

/// Runs `SELECT * FROM call` and decodes it.
fn call(c: &mut Client, sql: &str) -> Vec<Vec<String>> {
    let query = format!("SELECT * FROM {sql}");
    let rows = c
        .query(&query, &[])
        .unwrap_or_else(|e| panic!("{query}: {}", describe(&e)));
    decode(&rows, sql)
}

#[test]
fn every_function_returns_the_types_it_declares() {
    let mut monitor = Monitor::start("api-types", &[]);
    let c = &mut monitor.client;
    let mut first = ScriptedKeeper::register(c, "default", 6001, 50);
    first.step(c);
    let mut second = ScriptedKeeper::register(c, "default", 6002, 50);
    settle(c, &mut [&mut first, &mut second], 20);
    assert_eq!(first.current, "primary");

    let mut covered: BTreeSet<String> = BTreeSet::new();
    let mut cover = |signature: &str| {
        covered.insert(signature.to_string());
    };

    // a database name of 63 bytes, with multibyte characters: the `name` column must hold it
    let dbname = format!("db_{}", "é".repeat(30));
    assert_eq!(dbname.len(), 63);
    let created = call(
        c,
        &format!("pgautofailover.create_formation('typed', 'pgsql', '{dbname}', true, 0)"),
    );
    assert_eq!(
        created,
        vec![vec![
            "typed".to_string(),
            "pgsql".to_string(),
            dbname.clone(),
            "true".to_string(),
            "0".to_string()
        ]]
    );
    cover("pgautofailover.create_formation(text,text,name,boolean,integer)");
    assert_eq!(
        call(c, "pgautofailover.disable_secondary('typed')"),
        vec![vec!["true"]]
    );
    cover("pgautofailover.disable_secondary(text)");
    assert_eq!(
        call(c, "pgautofailover.enable_secondary('typed')"),
        vec![vec!["true"]]
    );
    cover("pgautofailover.enable_secondary(text)");
    cover("pgautofailover.update_secondary_check()");

    let registered = call(
        c,
        &format!(
            "pgautofailover.register_node('typed', '10.9.9.9', 7001, '{dbname}', 'typed_1', \
             1, 50, -1, 'init', 'standalone', 100, true, 'default')"
        ),
    );
    assert_eq!(
        registered,
        vec![vec!["50", "0", "single", "100", "true", "typed_1"]]
    );
    cover(
        "pgautofailover.register_node(text,text,integer,name,text,bigint,bigint,integer,pgautofailover.replication_state,text,integer,boolean,text)",
    );
    assert_eq!(
        call(
            c,
            "pgautofailover.node_active('typed', 50, 0, 'single', true, 1, '0/3000000', '')"
        ),
        vec![vec!["50", "0", "single", "100", "true"]]
    );
    cover(
        "pgautofailover.node_active(text,bigint,integer,pgautofailover.replication_state,boolean,integer,pg_lsn,text)",
    );
    assert_eq!(
        call(
            c,
            "pgautofailover.update_node_metadata(50, 'typed_one', NULL, NULL)"
        ),
        vec![vec!["true"]]
    );
    cover("pgautofailover.update_node_metadata(bigint,text,text,integer)");
    assert_eq!(
        call(c, "pgautofailover.set_node_system_identifier(50, 2)"),
        vec![vec!["50", "typed_one", "10.9.9.9", "7001"]]
    );
    cover("pgautofailover.set_node_system_identifier(bigint,bigint)");
    call(c, "pgautofailover.set_group_system_identifier(7, 3)");
    cover("pgautofailover.set_group_system_identifier(bigint,bigint)");

    let nodes = call(c, "pgautofailover.get_nodes('default')");
    assert_eq!(nodes.len(), 2);
    assert_eq!(
        nodes[0],
        vec!["1", "node_1", "127.0.0.1", "6001", "0/3000000", "true"]
    );
    cover("pgautofailover.get_nodes(text,integer)");
    assert_eq!(
        call(c, "pgautofailover.get_primary('default', 0)"),
        vec![vec!["1", "node_1", "127.0.0.1", "6001"]]
    );
    cover("pgautofailover.get_primary(text,integer)");
    assert_eq!(call(c, "pgautofailover.get_other_nodes(1)").len(), 1);
    cover("pgautofailover.get_other_nodes(bigint)");
    assert_eq!(
        call(c, "pgautofailover.get_other_nodes(1, 'secondary')").len(),
        1
    );
    cover("pgautofailover.get_other_nodes(bigint,pgautofailover.replication_state)");
    assert_eq!(
        call(c, "pgautofailover.get_coordinator('default')"),
        vec![vec!["127.0.0.1", "6001"]]
    );
    cover("pgautofailover.get_coordinator(text)");
    assert!(call(c, "pgautofailover.get_most_advanced_standby('default', 0)").is_empty());
    cover("pgautofailover.get_most_advanced_standby(text,integer)");
    assert_eq!(
        call(c, "pgautofailover.synchronous_standby_names('default', 0)"),
        vec![vec!["ANY 1 (pgautofailover_standby_2)"]]
    );
    cover("pgautofailover.synchronous_standby_names(text,integer)");
    for (sql, signature) in [
        (
            "pgautofailover.last_events(5)",
            "pgautofailover.last_events(integer)",
        ),
        (
            "pgautofailover.last_events('default', count => 5)",
            "pgautofailover.last_events(text,integer)",
        ),
        (
            "pgautofailover.last_events('default', 0, 5)",
            "pgautofailover.last_events(text,integer,integer)",
        ),
        (
            "pgautofailover.current_state('default')",
            "pgautofailover.current_state(text)",
        ),
        (
            "pgautofailover.current_state('default', 0)",
            "pgautofailover.current_state(text,integer)",
        ),
        (
            "pgautofailover.formation_settings('default')",
            "pgautofailover.formation_settings(text)",
        ),
    ] {
        assert!(!call(c, sql).is_empty(), "{sql} returned nothing");
        cover(signature);
    }
    assert_eq!(
        call(
            c,
            "pgautofailover.formation_uri('default', 'default', 'prefer', '', '')"
        ),
        vec![vec![
            "postgres://127.0.0.1:6001,127.0.0.1:6002/postgres?target_session_attrs=read-write&sslmode=prefer"
        ]]
    );
    cover("pgautofailover.formation_uri(text,text,text,text,text)");
    assert_eq!(
        call(
            c,
            "pgautofailover.set_formation_number_sync_standbys('default', 0)"
        ),
        vec![vec!["true"]]
    );
    cover("pgautofailover.set_formation_number_sync_standbys(text,integer)");
    assert_eq!(
        call(
            c,
            "pgautofailover.set_node_candidate_priority('default', 'node_2', 60)"
        ),
        vec![vec!["true"]]
    );
    cover("pgautofailover.set_node_candidate_priority(text,text,integer)");
    assert_eq!(
        call(
            c,
            "pgautofailover.set_node_replication_quorum('default', 'node_2', true)"
        ),
        vec![vec!["true"]]
    );
    cover("pgautofailover.set_node_replication_quorum(text,text,boolean)");
    settle(c, &mut [&mut first, &mut second], 20);

    assert_eq!(
        call(c, "pgautofailover.start_maintenance(2)"),
        vec![vec!["true"]]
    );
    cover("pgautofailover.start_maintenance(bigint)");
    settle(c, &mut [&mut first, &mut second], 20);
    assert_eq!(
        call(c, "pgautofailover.stop_maintenance(2)"),
        vec![vec!["true"]]
    );
    cover("pgautofailover.stop_maintenance(bigint)");
    settle(c, &mut [&mut first, &mut second], 20);
    assert_eq!(second.current, "secondary");

    assert_eq!(
        call(c, "pgautofailover.perform_failover('default', 0)"),
        vec![vec!["void"]]
    );
    cover("pgautofailover.perform_failover(text,integer)");
    settle(c, &mut [&mut first, &mut second], 30);
    assert_eq!(
        (first.current.as_str(), second.current.as_str()),
        ("secondary", "primary")
    );
    assert_eq!(
        call(c, "pgautofailover.perform_promotion('default', 'node_1')"),
        vec![vec!["true"]]
    );
    cover("pgautofailover.perform_promotion(text,text)");
    settle(c, &mut [&mut first, &mut second], 30);

    assert_eq!(
        call(c, "pgautofailover.remove_node(50, true)"),
        vec![vec!["true"]]
    );
    cover("pgautofailover.remove_node(bigint,boolean)");
    call(
        c,
        &format!(
            "pgautofailover.register_node('typed', '10.9.9.8', 7002, '{dbname}', \
             sysidentifier => 4)"
        ),
    );
    assert_eq!(
        call(c, "pgautofailover.remove_node('10.9.9.8', 7002, true)"),
        vec![vec!["true"]]
    );
    cover("pgautofailover.remove_node(text,integer,boolean)");
    assert_eq!(
        call(c, "pgautofailover.drop_formation('typed')"),
        vec![vec!["void"]]
    );
    cover("pgautofailover.drop_formation(text)");

    let declared: BTreeSet<String> = c
        .query(
            "SELECT oid::regprocedure::text FROM pg_proc \
              WHERE pronamespace = 'pgautofailover'::regnamespace",
            &[],
        )
        .expect("pg_proc")
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    let missing: Vec<&String> = declared.difference(&covered).collect();
    let unknown: Vec<&String> = covered.difference(&declared).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "functions without a call here: {missing:#?}\ncalls of no function: {unknown:#?}"
    );
    // the server is still up and answering
    assert_eq!(count_nodes(c), 2);
}

fn count_nodes(c: &mut Client) -> i64 {
    c.query_one("SELECT count(*) FROM pgautofailover.node", &[])
        .expect("count")
        .get(0)
}

#[test]
fn a_declaration_that_does_not_match_the_library_is_an_error_not_a_crash() {
    let mut monitor = Monitor::start("api-mismatch", &[]);
    let c = &mut monitor.client;
    // the library's create_formation, declared with text where it reads and returns a name
    c.batch_execute(
        "CREATE FUNCTION public.wrong_arguments(text, text, text, bool, int, \
           OUT formation_id text, OUT kind text, OUT dbname name, OUT opt_secondary bool, \
           OUT number_sync_standbys int) \
         RETURNS record LANGUAGE C STRICT AS 'pgautofailover', 'pgaf_create_formation'; \
         CREATE FUNCTION public.wrong_result(text, text, name, bool, int, \
           OUT formation_id text, OUT kind text, OUT dbname text, OUT opt_secondary bool, \
           OUT number_sync_standbys int) \
         RETURNS record LANGUAGE C STRICT AS 'pgautofailover', 'pgaf_create_formation'; \
         CREATE FUNCTION public.wrong_return(text) RETURNS int \
         LANGUAGE C STRICT AS 'pgautofailover', 'pgaf_enable_secondary';",
    )
    .expect("declarations");
    for (sql, says) in [
        (
            "SELECT * FROM public.wrong_arguments('w1', 'pgsql', 'db', true, 0)",
            "argument 3 of pgautofailover.create_formation is declared text, the library uses name",
        ),
        (
            "SELECT * FROM public.wrong_result('w2', 'pgsql', 'db', true, 0)",
            "result column 3 of pgautofailover.create_formation is declared text, the library uses name",
        ),
        (
            "SELECT public.wrong_return('default')",
            "the result of pgautofailover.enable_secondary is declared integer, the library uses boolean",
        ),
    ] {
        let err = c.query(sql, &[]).expect_err(sql);
        let db = err.as_db_error().unwrap_or_else(|| panic!("{sql}: {err}"));
        assert_eq!(db.code().code(), "42804", "{sql}: {}", describe(&err));
        assert!(db.message().contains(says), "{sql}: {}", db.message());
    }
    // nothing was created, and the server is fine
    assert_eq!(
        c.query_one("SELECT count(*) FROM pgautofailover.formation", &[])
            .expect("count")
            .get::<_, i64>(0),
        1
    );
}
