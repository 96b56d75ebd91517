//! The monitor's SQL objects are those of pg_auto_failover 2.0: same functions, tables,
//! constraints, types, settings, role and grants, as `psql` describes them.

use std::process::Command;

use tests::monitor::Monitor;
use tests::server::PgServer;

/// Runs `psql -c <command>` against the monitor and returns its output.
fn psql(server: &PgServer, command: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-P",
            "pager=off",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-p", &server.port.to_string(), "-c", command])
        .env_remove("PGDATABASE")
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

fn expected(name: &str) -> String {
    let path = format!("{}/expected/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .trim_end()
        .to_string()
}

#[test]
fn functions_match_2_0_exactly() {
    let mut monitor = Monitor::start("schema-functions", &[]);
    let rows = monitor
        .client
        .query(
            "SELECT p.proname || '|' || pg_get_function_result(p.oid) || '|' \
                    || pg_get_function_arguments(p.oid) \
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
              WHERE n.nspname = 'pgautofailover'",
            &[],
        )
        .expect("list functions");
    let mut ours: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    ours.sort();
    let theirs: Vec<String> = expected("functions-2.0.txt")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ours.len(), 33, "2.0 has 33 functions");
    assert_eq!(ours, theirs);
}

#[test]
fn tables_indexes_constraints_and_types_match_2_0() {
    let monitor = Monitor::start("schema-tables", &[]);
    assert_eq!(
        psql(&monitor.server, "\\d pgautofailover.*"),
        expected("describe-2.0.txt")
    );
    assert_eq!(
        psql(&monitor.server, "\\dT+ pgautofailover.*"),
        expected("types-2.0.txt")
    );
}

#[test]
fn settings_match_2_0() {
    // back to the defaults the test monitors override
    let monitor = Monitor::start(
        "schema-gucs",
        &[
            "pgautofailover.enable_health_checks = on",
            "pgautofailover.startup_grace_period = 10000",
        ],
    );
    let listing = psql(
        &monitor.server,
        "select name, setting, unit, context, short_desc from pg_settings \
          where name like 'pgautofailover%' order by 1",
    );
    assert_eq!(listing, expected("gucs.txt"));

    // every 2.0 setting exists with its unit, context and description; only the defaults
    // documented in docs/state-machine.md differ (faster health checks), and three settings
    // are new (the lease, and the bound on group locks)
    let rows = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .skip(2)
            .filter(|l| l.contains('|'))
            .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
            .collect()
    };
    let ours = rows(&listing);
    let mut changed_defaults = Vec::new();
    for theirs in rows(&expected("gucs-2.0.txt")) {
        let mine = ours
            .iter()
            .find(|r| r[0] == theirs[0])
            .unwrap_or_else(|| panic!("{} is missing", theirs[0]));
        assert_eq!(mine[2..], theirs[2..], "{}", theirs[0]);
        if mine[1] != theirs[1] {
            changed_defaults.push(theirs[0].clone());
        }
    }
    assert_eq!(
        changed_defaults,
        [
            "pgautofailover.health_check_max_retries",
            "pgautofailover.health_check_period",
            "pgautofailover.health_check_retry_delay",
            "pgautofailover.health_check_timeout",
        ]
    );
    let new: Vec<&str> = ours
        .iter()
        .map(|r| r[0].as_str())
        .filter(|n| !expected("gucs-2.0.txt").contains(n))
        .collect();
    assert_eq!(
        new,
        [
            "pgautofailover.group_lock_timeout",
            "pgautofailover.node_lease_margin",
            "pgautofailover.node_lease_timeout"
        ]
    );
}

#[test]
fn default_formation_role_and_grants_exist() {
    let mut monitor = Monitor::start("schema-grants", &[]);
    let row = monitor
        .client
        .query_one(
            "SELECT formationid, kind, dbname::text, opt_secondary, number_sync_standbys \
               FROM pgautofailover.formation",
            &[],
        )
        .expect("default formation");
    assert_eq!(row.get::<_, String>(0), "default");
    assert_eq!(row.get::<_, String>(1), "pgsql");
    assert_eq!(row.get::<_, String>(2), "postgres");
    assert!(row.get::<_, bool>(3));
    assert_eq!(row.get::<_, i32>(4), 0);

    let login: bool = monitor
        .client
        .query_one(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'autoctl_node'",
            &[],
        )
        .expect("autoctl_node exists")
        .get(0);
    assert!(login);

    // autoctl_node may read the tables and call the node protocol and operations
    for (object, privilege) in [
        ("pgautofailover.node", "SELECT"),
        ("pgautofailover.event", "SELECT"),
        ("pgautofailover.formation", "SELECT"),
    ] {
        let ok: bool = monitor
            .client
            .query_one(
                "SELECT has_table_privilege('autoctl_node', $1, $2)",
                &[&object, &privilege],
            )
            .expect("privilege check")
            .get(0);
        assert!(ok, "autoctl_node lacks {privilege} on {object}");
    }
    let schema_usage: bool = monitor
        .client
        .query_one(
            "SELECT has_schema_privilege('autoctl_node', 'pgautofailover', 'USAGE')",
            &[],
        )
        .expect("schema privilege")
        .get(0);
    assert!(schema_usage);
    for function in [
        "pgautofailover.node_active(text,bigint,int,pgautofailover.replication_state,bool,int,pg_lsn,text)",
        "pgautofailover.perform_failover(text,int)",
        "pgautofailover.start_maintenance(bigint)",
    ] {
        let can: bool = monitor
            .client
            .query_one(
                "SELECT has_function_privilege('autoctl_node', $1, 'EXECUTE')",
                &[&function],
            )
            .expect("function privilege")
            .get(0);
        assert!(can, "autoctl_node cannot execute {function}");
    }
    // PUBLIC cannot change the cluster
    monitor
        .client
        .batch_execute("CREATE ROLE someone LOGIN")
        .expect("create role");
    let can: bool = monitor
        .client
        .query_one(
            "SELECT has_function_privilege('someone', 'pgautofailover.perform_failover(text,int)', 'EXECUTE')",
            &[],
        )
        .expect("function privilege")
        .get(0);
    assert!(!can, "PUBLIC must not run perform_failover");
}

#[test]
fn loading_outside_shared_preload_libraries_is_refused() {
    let server = PgServer::start("schema-nopreload", &[]);
    let mut client = server.connect();
    let err = client
        .batch_execute("CREATE EXTENSION pgautofailover CASCADE")
        .expect_err("must refuse");
    let db = err.as_db_error().expect("a database error");
    assert_eq!(
        db.message(),
        "pgautofailover can only be loaded via shared_preload_libraries"
    );
    assert!(
        db.hint()
            .unwrap_or_default()
            .contains("shared_preload_libraries")
    );
    let installed: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pgautofailover'",
            &[],
        )
        .expect("count")
        .get(0);
    assert_eq!(installed, 0);
}
