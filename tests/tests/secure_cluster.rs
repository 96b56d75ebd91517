//! A cluster run the way docs/security.md says to: `--auth scram-sha-256` everywhere, TLS with
//! certificates from a CA and `verify-full`, the keepers' monitor password in `~/.pgpass`, the
//! replication password given once. It bootstraps, replicates, switches over (pg_rewind and
//! all), every connection between the parts is encrypted and authenticated, and no `trust`
//! rule is written anywhere. And the monitor alone in the TCP-only mode test harnesses use
//! (`PG_REGRESS_SOCK_DIR=""`) with a password method.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tests::autoctl::{Autoctl, Service};
use tests::server::{TempDir, as_postgres, free_port, owned_dir, pg_command};
use tests::wait;

const SETTLE: Duration = Duration::from_secs(120);
const NODE_PASSWORD: &str = "node-Secret-7f3";
const REPLICATION_PASSWORD: &str = "repl-Secret-9c1";

/// A CA and a server certificate for 127.0.0.1 signed by it, owned by the Postgres user.
struct Certificates {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = as_postgres(Command::new("openssl").args(args).current_dir(dir))
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn certificates(dir: &Path) -> Certificates {
    owned_dir(dir);
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=pgaf-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
    );
    Certificates {
        ca: dir.join("ca.crt"),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    }
}

/// `psql -Atc sql` as the Postgres user through the unix socket in `sockets`.
fn psql(sockets: &Path, port: u16, dbname: &str, sql: &str) -> Result<String, String> {
    let out = pg_command("psql")
        .args(["-X", "-At", "-h"])
        .arg(sockets)
        .args(["-p", &port.to_string(), "-d", dbname, "-c", sql])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Every rule of `pg_hba.conf` in `pgdata`, without comments.
fn hba_rules(pgdata: &Path) -> Vec<String> {
    std::fs::read_to_string(pgdata.join("pg_hba.conf"))
        .expect("pg_hba.conf")
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn assert_no_trust(name: &str, pgdata: &Path) {
    for rule in hba_rules(pgdata) {
        assert!(
            !rule.split_whitespace().any(|w| w == "trust"),
            "{name}: a trust rule: {rule}"
        );
    }
}

struct SecureNode {
    pgdata: PathBuf,
    port: u16,
    service: Service,
}

#[test]
fn scram_and_verify_full_tls_everywhere_without_a_trust_rule() {
    let dir = TempDir::new("secure");
    let certs = certificates(&dir.path().join("certs"));
    let sockets = dir.path().join("sockets");
    owned_dir(&sockets);
    let sockets_text = sockets.display().to_string();
    let autoctl = Autoctl::new(dir.path()).with_env(&[("PG_REGRESS_SOCK_DIR", &sockets_text)]);
    let (ca, cert, key) = (
        certs.ca.display().to_string(),
        certs.cert.display().to_string(),
        certs.key.display().to_string(),
    );
    let tls: Vec<&str> = vec![
        "--auth",
        "scram-sha-256",
        "--ssl-ca-file",
        &ca,
        "--server-cert",
        &cert,
        "--server-key",
        &key,
        "--ssl-mode",
        "verify-full",
    ];

    // the monitor
    let monitor_pgdata = dir.path().join("monitor");
    let monitor_port = free_port();
    let (pgdata_text, port_text) = (
        monitor_pgdata.display().to_string(),
        monitor_port.to_string(),
    );
    let mut args = vec![
        "create",
        "monitor",
        "--pgdata",
        &pgdata_text,
        "--pgport",
        &port_text,
        "--hostname",
        "127.0.0.1",
    ];
    args.extend(&tls);
    autoctl.ok(&args);
    let mut monitor = autoctl.spawn(
        "monitor",
        &["run", "--pgdata", &pgdata_text],
        &monitor_pgdata,
    );
    wait::until(
        "the monitor",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || psql(&sockets, monitor_port, "pg_auto_failover", "SELECT 1").ok(),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", monitor.log()));
    // the operator gives the keepers' role a password, and the keepers a ~/.pgpass
    psql(
        &sockets,
        monitor_port,
        "pg_auto_failover",
        &format!("ALTER ROLE autoctl_node PASSWORD '{NODE_PASSWORD}'"),
    )
    .expect("autoctl_node password");
    let pgpass = dir.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:{monitor_port}:pg_auto_failover:autoctl_node:{NODE_PASSWORD}\n"),
    )
    .expect(".pgpass");
    std::fs::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let owner = std::fs::metadata(dir.path()).expect("dir");
    std::os::unix::fs::chown(
        &pgpass,
        Some(std::os::unix::fs::MetadataExt::uid(&owner)),
        Some(std::os::unix::fs::MetadataExt::gid(&owner)),
    )
    .expect("chown");
    let monitor_uri = format!(
        "postgres://autoctl_node@127.0.0.1:{monitor_port}/pg_auto_failover?sslmode=verify-full&sslrootcert={ca}"
    );

    // two nodes; the replication password comes from PGPASSWORD at create time, as in 2.0
    let node_autoctl = autoctl.with_env(&[("PGPASSWORD", REPLICATION_PASSWORD)]);
    let mut nodes: Vec<SecureNode> = Vec::new();
    for name in ["node_1", "node_2"] {
        let pgdata = dir.path().join(name);
        let port = free_port();
        let (pgdata_text, port_text) = (pgdata.display().to_string(), port.to_string());
        let mut args = vec![
            "create",
            "postgres",
            "--pgdata",
            &pgdata_text,
            "--pgport",
            &port_text,
            "--hostname",
            "127.0.0.1",
            "--name",
            name,
            "--monitor",
            &monitor_uri,
            "--run",
        ];
        args.extend(&tls);
        let service = node_autoctl.spawn(name, &args, &pgdata);
        nodes.push(SecureNode {
            pgdata,
            port,
            service,
        });
        let wanted = if name == "node_1" {
            "node_1:single/single".to_string()
        } else {
            "node_1:primary/primary node_2:secondary/secondary".to_string()
        };
        wait_states(&sockets, monitor_port, &wanted, &nodes, &monitor);
    }

    // writes replicate
    psql(
        &sockets,
        nodes[0].port,
        "postgres",
        "CREATE TABLE commits (id int); INSERT INTO commits VALUES (1)",
    )
    .expect("write");
    wait_rows(&sockets, nodes[1].port, "1");

    // every keeper talks to the monitor over TLS, as autoctl_node with its password
    let keepers = psql(
        &sockets,
        monitor_port,
        "pg_auto_failover",
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a \
           JOIN pg_stat_ssl s USING (pid) \
          WHERE a.application_name = 'pg_autoctl' AND a.usename = 'autoctl_node'",
    )
    .expect("keepers");
    assert_eq!(keepers, "2|2", "keeper connections (ssl|all)");
    // the standby streams over TLS with the replication role's password
    let streaming = psql(
        &sockets,
        nodes[0].port,
        "postgres",
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_replication r \
           JOIN pg_stat_ssl s USING (pid) WHERE r.usename = 'pgautofailover_replicator'",
    )
    .expect("replication");
    assert_eq!(streaming, "1|1", "replication connections (ssl|all)");
    let conninfo = std::fs::read_to_string(
        nodes[1]
            .pgdata
            .join("postgresql-auto-failover-standby.conf"),
    )
    .expect("standby settings");
    assert!(conninfo.contains("sslmode=''verify-full''"), "{conninfo}");
    assert!(conninfo.contains("passfile="), "{conninfo}");
    assert!(!conninfo.contains(REPLICATION_PASSWORD), "{conninfo}");

    // a switchover: promotion, then the old primary rewinds and follows, all with passwords
    let out = node_autoctl.run_for(
        &[
            "perform",
            "switchover",
            "--pgdata",
            &nodes[0].pgdata.display().to_string(),
        ],
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "switchover: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        nodes
            .iter()
            .map(|n| n.service.log())
            .collect::<Vec<_>>()
            .join("\n")
    );
    wait_states(
        &sockets,
        monitor_port,
        "node_1:secondary/secondary node_2:primary/primary",
        &nodes,
        &monitor,
    );
    psql(
        &sockets,
        nodes[1].port,
        "postgres",
        "INSERT INTO commits VALUES (2)",
    )
    .expect("write on the new primary");
    // on the old primary, now a standby
    wait_rows(&sockets, nodes[0].port, "2");

    // no trust rule anywhere, and no secret in any log
    assert_no_trust("monitor", &monitor_pgdata);
    for (i, node) in nodes.iter().enumerate() {
        assert_no_trust(&format!("node_{}", i + 1), &node.pgdata);
        let log = node.service.log();
        assert!(!log.contains(REPLICATION_PASSWORD) && !log.contains(NODE_PASSWORD));
    }
    assert!(!monitor.log().contains(NODE_PASSWORD));
    for node in &mut nodes {
        node.service.stop_with(libc::SIGTERM);
    }
    monitor.stop_with(libc::SIGTERM);
}

/// Waits until the node on `port` holds `count` rows in `commits`.
fn wait_rows(sockets: &Path, port: u16, count: &str) {
    wait::until(
        &format!("{count} rows on the node at port {port}"),
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            psql(sockets, port, "postgres", "SELECT count(*) FROM commits")
                .ok()
                .filter(|n| n == count)
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

fn wait_states(sockets: &Path, port: u16, wanted: &str, nodes: &[SecureNode], monitor: &Service) {
    let read = || {
        psql(
            sockets,
            port,
            "pg_auto_failover",
            "SELECT string_agg(format('%s:%s/%s', nodename, reportedstate, goalstate), ' ' \
                              ORDER BY nodeid) FROM pgautofailover.node",
        )
        .unwrap_or_default()
    };
    wait::until(wanted, SETTLE, Duration::from_millis(300), || {
        (read() == wanted).then_some(())
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}\n{}",
            read(),
            monitor.log(),
            nodes
                .iter()
                .map(|n| n.service.log())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
}

#[test]
fn a_tcp_only_monitor_with_scram_runs_and_writes_no_trust_rule() {
    let dir = TempDir::new("tcp-scram");
    // the harness runs pg_autoctl with PG_REGRESS_SOCK_DIR="": no unix socket at all
    let autoctl = Autoctl::new(dir.path());
    let pgdata = dir.path().join("monitor");
    let port = free_port();
    let pgdata_text = pgdata.display().to_string();
    for auth in ["scram-sha-256", "md5"] {
        let out = autoctl.create_monitor(&pgdata, port, &["--auth", auth, "--no-ssl"]);
        assert!(
            out.status.success(),
            "{auth}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !pgdata.join("postmaster.pid").exists(),
            "{auth}: create left Postgres running"
        );
        assert_no_trust(auth, &pgdata);
        // the service runs it, and the superuser's password is only in the node's passfile
        let mut service = autoctl.spawn("monitor", &["run", "--pgdata", &pgdata_text], &pgdata);
        let passfile = dir
            .path()
            .join("share/pg_autoctl")
            .join(pgdata.strip_prefix("/").expect("absolute").join("pgpass"));
        let mode = std::fs::metadata(&passfile).expect("passfile");
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        let password = std::fs::read_to_string(&passfile)
            .expect("read")
            .lines()
            .find(|l| l.contains(":postgres:"))
            .and_then(|l| l.rsplit(':').next())
            .map(str::to_string)
            .expect("the superuser's entry");
        let connect = |password: &str| {
            postgres::Client::connect(
                &format!(
                    "host=127.0.0.1 port={port} user=postgres password={password} \
                     dbname=pg_auto_failover connect_timeout=5"
                ),
                postgres::NoTls,
            )
        };
        let mut client = wait::until(
            "the monitor with the superuser's password",
            Duration::from_secs(60),
            Duration::from_millis(200),
            || connect(&password).ok(),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", service.log()));
        let version: String = client
            .query_one(
                "SELECT extversion FROM pg_extension WHERE extname = 'pgautofailover'",
                &[],
            )
            .expect("extension")
            .get(0);
        assert_eq!(version, "2.0");
        assert!(connect("wrong").is_err(), "{auth}: no password needed");
        // the database belongs to the superuser, not to a role anybody logs in as
        let owner: String = client
            .query_one(
                "SELECT datdba::regrole::text FROM pg_database WHERE datname = current_database()",
                &[],
            )
            .expect("owner")
            .get(0);
        assert_eq!(owner, "postgres");
        let autoctl_logs_in: bool = client
            .query_one(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'autoctl'",
                &[],
            )
            .expect("autoctl")
            .get(0);
        assert!(!autoctl_logs_in);
        drop(client);
        service.stop_with(libc::SIGTERM);
        let out = autoctl.run(&["drop", "monitor", "--pgdata", &pgdata_text, "--destroy"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&pgdata);
    }
}
