//! Our pg_autoctl's command line against pg_autoctl 2.0's (Debian's `pg-auto-failover-cli`):
//! the same `show`/`get` output for the same monitor, the same exit codes for bad input, and
//! bad input changing nothing.

use std::path::Path;
use std::process::Command;

use tests::autoctl::{Autoctl, Cluster};
use tests::c_keeper::C_KEEPER;
use tests::server::{TempDir, as_postgres, free_port};

/// Runs Debian's pg_autoctl 2.0 with `args`; (exit code, stdout, stderr).
fn c_autoctl(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(C_KEEPER);
    as_postgres(&mut cmd);
    let out = cmd
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("share"))
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {C_KEEPER}: {e} (install pg-auto-failover-cli)"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ours(autoctl: &Autoctl, args: &[&str]) -> (i32, String, String) {
    let out = autoctl.run(args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn show_and_get_print_what_pg_autoctl_2_0_prints() {
    let mut cluster = Cluster::start("cli", &[]);
    cluster.add_node("node_1", &[]);
    cluster.wait_states("node_1:single/single", std::time::Duration::from_secs(90));
    cluster.add_node("node_2", &[]);
    cluster.wait_states(
        "node_1:primary/primary node_2:secondary/secondary",
        std::time::Duration::from_secs(90),
    );
    let uri = cluster.monitor_uri.clone();
    for command in [
        "show state",
        "show state --json",
        "show events --count 4",
        "show events --count 4 --json",
        "show uri",
        "show uri --json",
        "show uri --formation default",
        "show uri --formation monitor --json",
        "show settings",
        "show settings --json",
        "show standby-names",
        "show standby-names --json",
        "get formation settings",
        "get formation number-sync-standbys",
        "get formation number-sync-standbys --json",
        "get node candidate-priority --name node_2",
        "get node candidate-priority --name node_2 --json",
        "get node replication-quorum --name node_1 --json",
    ] {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.extend_from_slice(&["--monitor", &uri]);
        // the reported LSNs move now and then: compare outputs taken back to back, and
        // retry when 2.0's own output changed in between
        let mut attempts = 0;
        loop {
            let theirs = c_autoctl(cluster.dir.path(), &args);
            let mine = ours(&cluster.autoctl, &args);
            let theirs_again = c_autoctl(cluster.dir.path(), &args);
            assert_eq!(theirs.0, 0, "2.0 failed on {command}: {}", theirs.2);
            if theirs.1 != theirs_again.1 && attempts < 10 {
                attempts += 1;
                continue;
            }
            assert_eq!(
                mine.1, theirs.1,
                "pg_autoctl {command}: ours (left) differs from 2.0's (right); our stderr: {}",
                mine.2
            );
            assert_eq!(mine.0, 0);
            break;
        }
    }
}

#[test]
fn bad_input_is_refused_with_2_0_exit_codes_and_changes_nothing() {
    let dir = TempDir::new("cli-bad");
    let autoctl = Autoctl::new(dir.path());
    let pgdata = dir.path().join("node");
    let pgdata_text = pgdata.display().to_string();
    let port = free_port().to_string();
    let base = |extra: &[&'static str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "create",
            "postgres",
            "--pgdata",
            &pgdata_text,
            "--pgport",
            &port,
            "--auth",
            "trust",
            "--no-ssl",
            "--monitor",
            "postgres://autoctl_node@127.0.0.1:1/pg_auto_failover",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = |args: &[String]| -> (i32, String) {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = ours(&autoctl, &refs);
        (code, err)
    };
    let nothing_created = || {
        assert!(!pgdata.exists(), "PGDATA was created");
        let config = dir.path().join("config/pg_autoctl");
        assert!(!config.exists(), "a configuration file was written");
    };

    // unknown flag, bad value: exit 1, as 2.0
    let (code, err) = run(&base(&["--colour"]));
    assert_eq!(code, 1, "{err}");
    let (code, err) = run(&base(&["--candidate-priority", "101"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("101"), "{err}");
    nothing_created();

    // a monitor URI that is not one
    let mut args = base(&[]);
    let at = args.iter().position(|a| a == "--monitor").expect("flag") + 1;
    args[at] = "host=monitor port=5432".to_string();
    let (code, err) = run(&args);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("invalid --monitor URI"), "{err}");
    nothing_created();

    // a monitor nobody answers at: the monitor's exit code
    let (code, err) = run(&base(&["--pgctl", "/usr/lib/postgresql/15/bin/pg_ctl"]));
    assert_eq!(code, 6, "{err}");
    assert!(err.contains("cannot connect to the monitor"), "{err}");
    nothing_created();

    // no pg_ctl there: pg_ctl's exit code
    let (code, err) = run(&base(&["--pgctl", "/nonexistent/bin/pg_ctl"]));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("/nonexistent/bin/pg_ctl"), "{err}");
    nothing_created();

    // SSL and HBA choices are explicit, as in 2.0
    let mut args = base(&[]);
    args.retain(|a| a != "--no-ssl");
    let (code, err) = run(&args);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("SSL"), "{err}");
    nothing_created();

    // a PGDATA of another user (root's, when the tests run as root)
    // SAFETY: getuid has no preconditions
    if unsafe { libc::getuid() } == 0 {
        let foreign = dir.path().join("foreign");
        std::fs::create_dir(&foreign).expect("mkdir");
        std::fs::write(foreign.join("keep.txt"), "root's file").expect("write");
        let mut args = base(&["--pgctl", "/usr/lib/postgresql/15/bin/pg_ctl"]);
        let at = args.iter().position(|a| a == "--pgdata").expect("flag") + 1;
        args[at] = foreign.display().to_string();
        let (code, err) = run(&args);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("belongs to another user"), "{err}");
        assert_eq!(
            std::fs::read_to_string(foreign.join("keep.txt")).expect("still there"),
            "root's file"
        );
    }

    // as root: refused before anything is done
    // SAFETY: getuid has no preconditions
    if unsafe { libc::getuid() } == 0 {
        let refs: Vec<String> = base(&["--pgctl", "/usr/lib/postgresql/15/bin/pg_ctl"]);
        let out = Command::new(&autoctl.bin)
            .args(&refs)
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .output()
            .expect("run as root");
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("does not run as root"), "{err}");
        nothing_created();
    }

    // commands that need a node say so
    let (code, err) = ours(&autoctl, &["show", "state"]).into_code_and_err();
    assert_eq!(code, 1, "{err}");
    let (code, err) =
        ours(&autoctl, &["config", "get", "--pgdata", &pgdata_text]).into_code_and_err();
    assert_eq!(code, 2, "no configuration: exit 2, as 2.0: {err}");
    assert!(err.contains("pg_autoctl.cfg"), "{err}");
}

trait CodeAndErr {
    fn into_code_and_err(self) -> (i32, String);
}

impl CodeAndErr for (i32, String, String) {
    fn into_code_and_err(self) -> (i32, String) {
        (self.0, self.2)
    }
}

#[test]
fn every_command_has_help() {
    let dir = TempDir::new("cli-help");
    let autoctl = Autoctl::new(dir.path());
    let commands = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/expected/pg_autoctl-commands.txt"
    ))
    .expect("command list");
    for command in commands.lines().filter(|l| !l.trim().is_empty()) {
        let mut args: Vec<&str> = command.split_whitespace().collect();
        args.push("--help");
        let (code, out, err) = ours(&autoctl, &args);
        assert_eq!(code, 0, "pg_autoctl {command} --help: {err}");
        assert!(
            out.contains("Usage"),
            "pg_autoctl {command} --help printed {out}"
        );
    }
}

#[test]
fn settings_promotion_formations_and_service_control_through_the_command_line() {
    use std::time::Duration;
    let settle = Duration::from_secs(90);
    let mut cluster = Cluster::start("cli-ops", &[]);
    cluster.add_node("node_1", &[]);
    cluster.wait_states("node_1:single/single", settle);
    cluster.add_node("node_2", &[]);
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", settle);
    let n1 = cluster.node("node_1").pgdata_arg();
    let n2 = cluster.node("node_2").pgdata_arg();

    // node settings: `set` returns once the primary applied them, `get` reads them back
    assert_eq!(
        cluster
            .ok(&[
                "set",
                "node",
                "candidate-priority",
                "--pgdata",
                &n2,
                "--",
                "80"
            ])
            .trim(),
        "80"
    );
    assert_eq!(
        cluster
            .ok(&["get", "node", "candidate-priority", "--pgdata", &n2])
            .trim(),
        "80"
    );
    cluster.wait_states("node_1:primary/primary node_2:secondary/secondary", settle);
    // a refused setting exits 1, as 2.0 (one standby cannot make two copies)
    let refused = cluster.autoctl.run(&[
        "set",
        "formation",
        "number-sync-standbys",
        "--pgdata",
        &n1,
        "1",
    ]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("at least 2 standby nodes"));
    assert_eq!(
        cluster
            .ok(&[
                "set",
                "formation",
                "number-sync-standbys",
                "--pgdata",
                &n1,
                "0"
            ])
            .trim(),
        "0"
    );
    assert_eq!(
        cluster
            .ok(&["get", "formation", "number-sync-standbys", "--pgdata", &n1])
            .trim(),
        "0"
    );
    let settings = cluster.ok(&["show", "settings", "--pgdata", &n1]);
    assert!(settings.contains("candidate priority | 80"), "{settings}");

    // promotion of a named node
    let out = cluster.ok(&["perform", "promotion", "--pgdata", &n1, "--name", "node_2"]);
    assert!(out.contains("node_2 is now the primary"), "{out}");
    cluster.wait_states("node_1:secondary/secondary node_2:primary/primary", settle);

    // formations
    let created = cluster.ok(&[
        "create",
        "formation",
        "--pgdata",
        &n1,
        "--formation",
        "other",
        "--json",
    ]);
    assert!(created.contains("\"formation_id\": \"other\""), "{created}");
    cluster.ok(&["drop", "formation", "--pgdata", &n1, "--formation", "other"]);

    // configuration and service control
    assert_eq!(
        cluster
            .ok(&[
                "config",
                "set",
                "--pgdata",
                &n1,
                "timeout.network_partition_timeout",
                "15"
            ])
            .trim(),
        "15"
    );
    assert_eq!(
        cluster
            .ok(&[
                "config",
                "get",
                "--pgdata",
                &n1,
                "timeout.network_partition_timeout"
            ])
            .trim(),
        "15"
    );
    cluster.ok(&["reload", "--pgdata", &n1]);
    let status = cluster.ok(&["status", "--pgdata", &n1]);
    assert!(status.contains("pg_autoctl is running"), "{status}");
    let state: serde_json::Value = serde_json::from_str(&cluster.ok(&[
        "show",
        "file",
        "--state",
        "--contents",
        "--pgdata",
        &n1,
    ]))
    .expect("the state file is JSON");
    assert_eq!(state["current_role"], "secondary");
    let unit = cluster.ok(&["show", "systemd", "--pgdata", &n1]);
    assert!(unit.contains(&format!("PGDATA={n1}")), "{unit}");

    cluster.ok(&["stop", "--pgdata", &n1]);
    assert!(
        cluster
            .node_mut("node_1")
            .service
            .wait_exit(Duration::from_secs(30))
    );
    let stopped = cluster.autoctl.run(&["status", "--pgdata", &n1]);
    assert_eq!(stopped.status.code(), Some(3));
    assert!(
        !cluster
            .node("node_1")
            .pgdata
            .join("postmaster.pid")
            .exists(),
        "Postgres stopped with its service"
    );
}
