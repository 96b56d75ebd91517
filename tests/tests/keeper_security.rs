//! Our pg_autoctl attacked from outside, end to end: a monitor that lists hostile nodes, one
//! that never answers, secrets in the environment, a runtime directory another user made, a
//! `create` that fails half-way, a configuration that points at another node's data. Each is
//! refused or contained: no file Postgres reads is broken or widened, nothing is left behind.

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use tests::autoctl::{Autoctl, Cluster, Node};
use tests::server::{TempDir, free_port, owned_dir};
use tests::wait;

const SETTLE: Duration = Duration::from_secs(90);

fn postmaster_pid(pgdata: &Path) -> Option<i32> {
    std::fs::read_to_string(pgdata.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The environment of process `pid`, as `NAME=value` strings.
fn environ(pid: i32) -> Vec<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(format!("/proc/{pid}/environ"))
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .unwrap_or_else(|e| panic!("environ of {pid}: {e}"));
    bytes
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

/// Rows of `sql` (one text column) on `node`.
fn texts(node: &Node, sql: &str) -> Vec<String> {
    wait::until(
        sql,
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            node.connect()
                .ok()?
                .query(sql, &[])
                .ok()
                .map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect())
        },
    )
    .unwrap_or_else(|e| panic!("{e} on {}", node.name))
}

/// Hosts a keeper may be told about: from what the vocabulary accepts, mostly.
fn plausible_host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_-]{0,8}(\\.[a-z][a-z0-9-]{0,6}){0,3}",
        any::<[u16; 8]>().prop_map(|s| std::net::Ipv6Addr::from(s).to_string()),
        any::<[u8; 4]>().prop_map(|s| std::net::Ipv4Addr::from(s).to_string()),
        "[a-z0-9.:/_#,@ \n'\"-]{0,30}",
    ]
}

#[test]
fn hostile_nodes_on_the_monitor_never_reach_the_files_postgres_reads() {
    let mut cluster = Cluster::start("sec-files", &[]);
    cluster.add_node("node_1", &[]);
    cluster.wait_states("node_1:single/single", SETTLE);
    let mut monitor = cluster.monitor_client().expect("monitor");

    // what any client of the API gets accepted: random hosts and names, registered as
    // standbys of node_1 (priority 0, outside the quorum, so they change no decision)
    let mut config = Config::with_cases(400);
    config.rng_seed = RngSeed::Fixed(0x00C0_FFEE);
    config.failure_persistence = None;
    let mut runner = TestRunner::new(config);
    let mut accepted: Vec<String> = Vec::new();
    let mut port = 20_000;
    while accepted.len() < 8 {
        let host = plausible_host()
            .new_tree(&mut runner)
            .expect("value")
            .current();
        port += 1;
        let registered = monitor.query_one(
            "SELECT assigned_node_id FROM pgautofailover.register_node('default', $1, $2, \
             'postgres', sysidentifier => 0, candidate_priority => 0, replication_quorum => false)",
            &[&host, &port],
        );
        if registered.is_ok() {
            accepted.push(host);
        }
    }
    // and what a compromised (or older) monitor could hold: rows written past the API
    monitor
        .batch_execute(
            "INSERT INTO pgautofailover.node (formationid, groupid, nodename, nodehost, \
               nodeport, goalstate, reportedstate, candidatepriority, replicationquorum) \
             VALUES ('default', 0, 'evil_1', E'10.9.9.9\\nhost all all 0.0.0.0/0 trust', 7001, \
                     'wait_standby', 'wait_standby', 0, false), \
                    ('default', 0, 'evil_2', '0.0.0.0/0', 7002, 'wait_standby', \
                     'wait_standby', 0, false), \
                    ('default', 0, 'evil_3', 'all', 7003, 'wait_standby', 'wait_standby', 0, \
                     false), \
                    ('default', 0, E'evil\\n4', '10.9.9.10', 7004, 'wait_standby', \
                     'wait_standby', 0, false)",
        )
        .expect("plant rows");

    let node = cluster.node("node_1");
    let hba = node.pgdata.join("pg_hba.conf");
    let written = wait::until(
        "the keeper to write the rules of the accepted nodes",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || {
            let text = std::fs::read_to_string(&hba).ok()?;
            let all = accepted.iter().all(|host| {
                let address = match host.parse::<std::net::IpAddr>() {
                    Ok(std::net::IpAddr::V4(ip)) => format!("{ip}/32"),
                    Ok(std::net::IpAddr::V6(ip)) => format!("{ip}/128"),
                    Err(_) => host.clone(),
                };
                text.contains(&format!(" {address} trust"))
            });
            all.then_some(text)
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{accepted:?}\n{}", cluster.logs()));
    for line in written.lines() {
        assert!(!line.contains("0.0.0.0/0"), "widened: {line}");
        assert!(!line.contains("10.9.9.9"), "hostile row written: {line}");
        assert!(
            !line.contains("10.9.9.10"),
            "row of a hostile name written: {line}"
        );
        assert!(
            !line.starts_with("host all all") || line.contains("127.0.0.1") || line.contains("::1"),
            "{line}"
        );
    }
    assert!(
        node.service
            .log()
            .contains("ignoring a node the monitor lists"),
        "the keeper does not say what it refused"
    );
    // a name with a line break cannot forge a row of show state
    let state = cluster.on_monitor(&["show", "state"]);
    assert!(state.contains("evil\\n4"), "{state}");
    assert!(
        !state.lines().any(|l| l.trim_start().starts_with("4 ")),
        "{state}"
    );
    // Postgres reads every line of every file pg_autoctl wrote
    node.connect()
        .expect("connect")
        .batch_execute("SELECT pg_reload_conf()")
        .expect("reload");
    let hba_errors = texts(
        node,
        "SELECT format('%s: %s', line_number, error) FROM pg_hba_file_rules \
          WHERE error IS NOT NULL",
    );
    assert!(hba_errors.is_empty(), "{hba_errors:?}\n{written}");
    let conf_errors = texts(
        node,
        "SELECT format('%s:%s %s', sourcefile, sourceline, error) FROM pg_file_settings \
          WHERE error IS NOT NULL",
    );
    assert!(conf_errors.is_empty(), "{conf_errors:?}");
    // and it starts with them: a crash, and the keeper starts it again
    let before = postmaster_pid(&node.pgdata).expect("postmaster");
    // SAFETY: killing a postmaster this test started
    unsafe { libc::kill(before, libc::SIGKILL) };
    wait::until(
        "Postgres to start again",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || {
            let pid = postmaster_pid(&node.pgdata)?;
            (pid != before && node.connect().is_ok()).then_some(())
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
}

#[test]
fn postgres_and_its_programs_never_inherit_the_keepers_secrets() {
    let mut cluster = Cluster::start("sec-env", &[]);
    let secret = "s3cret-repl-Zq9";
    let env = [
        ("PGPASSWORD", secret),
        ("MY_APP_PASSWORD", "s3cret-app-Zq9"),
    ];
    cluster.add_node_env("node_1", &[], &env);
    cluster.wait_states("node_1:single/single", SETTLE);
    cluster.add_node_env("node_2", &[], &env);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);

    for node in &cluster.nodes {
        // the configuration keeps the replication password (2.0 reads it from PGPASSWORD)
        let value = node.pg_autoctl(&["config", "get", "replication.password"]);
        assert_eq!(String::from_utf8_lossy(&value.stdout).trim(), secret);
        let pid = postmaster_pid(&node.pgdata).expect("postmaster");
        let env = environ(pid);
        assert!(
            !env.iter().any(|v| v.contains("s3cret")),
            "{}: Postgres inherited {:?}",
            node.name,
            env.iter()
                .filter(|v| v.contains("s3cret"))
                .collect::<Vec<_>>()
        );
        // the service's own log never shows it
        assert!(!node.service.log().contains(secret), "{}", node.name);
    }
    // the standby streams with the password from a private file, not from its settings
    let standby = cluster.node("node_2");
    let conf =
        std::fs::read_to_string(standby.pgdata.join("postgresql-auto-failover-standby.conf"))
            .expect("standby settings");
    assert!(!conf.contains(secret), "{conf}");
    assert!(!conf.contains("password="), "{conf}");
    // primary_conninfo = '... passfile=''/path'' ...' (the conninfo quotes doubled)
    let passfile = conf
        .split("passfile=''")
        .nth(1)
        .and_then(|rest| rest.split("''").next())
        .unwrap_or_else(|| panic!("no passfile in {conf}"));
    let meta = std::fs::metadata(passfile).expect("passfile");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(!passfile.starts_with(&*standby.pgdata.to_string_lossy()));
    assert!(
        std::fs::read_to_string(passfile)
            .expect("read")
            .contains(secret)
    );
    // and no process of any node shows it on its command line
    for entry in std::fs::read_dir("/proc").expect("proc").flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            assert!(
                !String::from_utf8_lossy(&cmdline).contains("s3cret"),
                "process {:?} shows a secret",
                entry.file_name()
            );
        }
    }
}

#[test]
fn a_monitor_that_accepts_and_never_answers_cannot_hold_a_command() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("addr").port();
    let held = std::thread::spawn(move || {
        // accept connections and keep them, answering nothing
        let mut kept = Vec::new();
        for stream in listener.incoming().take(8).flatten() {
            kept.push(stream);
        }
        kept.len()
    });
    let dir = TempDir::new("sec-blackhole");
    let autoctl = Autoctl::new(dir.path());
    for uri in [
        format!("postgres://autoctl_node@127.0.0.1:{port}/pg_auto_failover?connect_timeout=3"),
        format!("postgres://autoctl_node@127.0.0.1:{port}/pg_auto_failover"),
    ] {
        for args in [
            vec!["show", "state", "--monitor", uri.as_str()],
            vec!["show", "uri", "--monitor", uri.as_str()],
            vec!["perform", "switchover", "--monitor", uri.as_str()],
        ] {
            // bounded by the command itself: run_for fails the test if it hangs
            let out = autoctl.run_for(&args, Duration::from_secs(60));
            assert_eq!(
                out.status.code(),
                Some(6),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("no answer within"), "{stderr}");
        }
    }
    drop(held);
}

#[test]
fn a_runtime_directory_made_by_another_user_is_not_trusted() {
    let dir = TempDir::new("sec-runtime");
    let autoctl = Autoctl::new(dir.path());
    let pgdata = dir.path().join("monitor");
    let pgdata_text = pgdata.display().to_string();
    let created = autoctl.create_monitor(&pgdata, free_port(), &["--auth", "trust", "--no-ssl"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    // another user (root here) made the runtime directory first and planted a pid file
    let runtime = dir.path().join("shared-tmp");
    owned_dir(&runtime);
    let base = runtime.join("pg_autoctl");
    let planted = base.join(pgdata.strip_prefix("/").expect("absolute"));
    std::fs::create_dir_all(&planted).expect("dirs");
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    // a process of the Postgres user, which pg_autoctl could signal
    let decoy = tests::server::as_postgres(std::process::Command::new("sleep").arg("60"))
        .spawn()
        .expect("decoy");
    std::fs::write(planted.join("pg_autoctl.pid"), format!("{}\n", decoy.id())).expect("pid file");
    assert_ne!(
        std::fs::metadata(&base).expect("base").uid(),
        std::fs::metadata(&pgdata).expect("pgdata").uid()
    );
    let runtime_text = runtime.display().to_string();
    let elsewhere = autoctl.with_env(&[("XDG_RUNTIME_DIR", &runtime_text)]);
    let run = elsewhere.run_for(&["run", "--pgdata", &pgdata_text], Duration::from_secs(60));
    assert_eq!(
        run.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("not safe"));
    let stop = elsewhere.run(&["stop", "--pgdata", &pgdata_text]);
    assert!(!stop.status.success());
    let status = elsewhere.run(&["status", "--pgdata", &pgdata_text]);
    assert!(!status.status.success());
    let mut decoy = decoy;
    assert!(
        matches!(decoy.try_wait(), Ok(None)),
        "pg_autoctl signalled a process it read from a planted pid file"
    );
    let _ = decoy.kill();
    let _ = decoy.wait();
}

#[test]
fn a_create_monitor_that_fails_leaves_nothing_behind() {
    let dir = TempDir::new("sec-undo");
    let autoctl = Autoctl::new(dir.path());
    let busy = TcpListener::bind("127.0.0.1:0").expect("busy port");
    let port = busy.local_addr().expect("addr").port();
    let pgdata = dir.path().join("monitor");
    let flags = ["--listen", "127.0.0.1", "--auth", "trust", "--no-ssl"];
    let out = autoctl.create_monitor(&pgdata, port, &flags);
    assert!(!out.status.success(), "created on a busy port");
    assert!(
        !pgdata.exists(),
        "the data directory it initialised is left"
    );
    let config = dir.path().join("config/pg_autoctl").join(
        pgdata
            .strip_prefix("/")
            .expect("absolute")
            .join("pg_autoctl.cfg"),
    );
    assert!(!config.exists(), "its configuration is left");
    // a directory that already held files is never removed
    std::fs::create_dir_all(&pgdata).expect("pgdata");
    std::fs::write(pgdata.join("keep.txt"), "mine").expect("file");
    owned_dir(&pgdata);
    let again = autoctl.create_monitor(&pgdata, port, &flags);
    assert!(!again.status.success());
    assert_eq!(
        std::fs::read_to_string(pgdata.join("keep.txt")).expect("kept"),
        "mine"
    );
    drop(busy);
}

#[test]
fn a_configuration_pointing_at_another_nodes_data_is_refused() {
    let mut cluster = Cluster::start("sec-pgdata", &[]);
    cluster.add_node("node_1", &[]);
    cluster.wait_states("node_1:single/single", SETTLE);
    cluster.add_node("node_2", &[]);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", SETTLE);
    let node_1 = cluster.node("node_1").pgdata.display().to_string();
    let node_2 = cluster.node("node_2");
    let config = cluster.autoctl.dir.join("config/pg_autoctl").join(
        node_2
            .pgdata
            .strip_prefix("/")
            .expect("absolute")
            .join("pg_autoctl.cfg"),
    );
    let before = std::fs::read_to_string(&config).expect("config");

    // config set refuses the keys that say what the file is for
    for (key, value) in [
        ("pg_autoctl.role", "monitor"),
        ("postgresql.pgdata", node_1.as_str()),
    ] {
        let out = node_2.pg_autoctl(&["config", "set", key, value]);
        assert_eq!(out.status.code(), Some(1), "config set {key}");
    }
    assert_eq!(std::fs::read_to_string(&config).expect("config"), before);

    // an edited file pointing at node_1's data directory is refused by every command
    let edited = before.replace(
        &format!("pgdata={}", node_2.pgdata.display()),
        &format!("pgdata={node_1}"),
    );
    assert_ne!(edited, before);
    std::fs::write(&config, edited).expect("edit");
    for args in [vec!["stop"], vec!["run"], vec!["show", "state"]] {
        let out = node_2.pg_autoctl(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        cluster.node("node_1").connect().is_ok(),
        "node_1 was touched"
    );
    std::fs::write(&config, before).expect("restore");
}

#[test]
fn show_hides_the_monitor_password_and_config_get_of_the_key_prints_it() {
    let mut cluster = Cluster::start("sec-show", &[]);
    cluster.add_node("node_1", &[]);
    cluster.wait_states("node_1:single/single", SETTLE);
    let node = cluster.node("node_1");
    let uri = format!(
        "postgres://autoctl_node:Pa55-w0rd-Kq@127.0.0.1:{}/pg_auto_failover?sslmode=prefer",
        cluster.monitor_port
    );
    let set = node.pg_autoctl(&["config", "set", "pg_autoctl.monitor", &uri]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let stdout = |args: &[&str]| {
        let out = node.pg_autoctl(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for args in [
        vec!["show", "uri"],
        vec!["show", "uri", "--json"],
        vec!["show", "uri", "--formation", "monitor"],
        vec!["config", "get"],
        vec!["config", "get", "--json"],
    ] {
        let out = stdout(&args);
        assert!(
            !out.contains("Pa55-w0rd-Kq"),
            "{args:?} prints the password:\n{out}"
        );
        assert!(out.contains("autoctl_node"), "{args:?}:\n{out}");
    }
    assert_eq!(
        stdout(&["config", "get", "pg_autoctl.monitor"]).trim(),
        uri,
        "one key asked for is printed as stored"
    );
}
