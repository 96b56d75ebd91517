//! Our `pg_autoctl` run for real: a monitor and Postgres nodes created and run by it, as the
//! Postgres user, in a directory of the test's own. Services run in their own process groups;
//! dropping a [`Service`] stops it, its Postgres, and whatever it started.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::netns::{Host, Network, in_ns};
use crate::server::{PG_BIN, TempDir, as_postgres, clean_env, free_port, owned_dir, pg_command};
use crate::wait;

/// The pg_autoctl binary built next to this program (`cargo build -p keeper`): in the same
/// directory (a binary such as the bench) or its parent (a test binary in `deps/`).
pub fn built_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("program path");
    let dir = exe.parent().expect("program directory");
    let found = [dir, dir.parent().unwrap_or(dir)]
        .iter()
        .map(|d| d.join("pg_autoctl"))
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!(
            "pg_autoctl is missing next to {}: build it first with cargo build -p keeper",
            exe.display()
        )
    })
}

/// Monitor settings for fast tests: health checks every 0.5 s, a node unhealthy 2 s after its last report, the old primary
/// given 6 s to fence itself; keepers fence after 3 s alone (less than 2 + 6).
pub const FAST_MONITOR: &[&str] = &[
    "pgautofailover.health_check_period = 500",
    "pgautofailover.health_check_timeout = 500",
    "pgautofailover.health_check_max_retries = 1",
    "pgautofailover.health_check_retry_delay = 200",
    "pgautofailover.node_considered_unhealthy_timeout = 2000",
    "pgautofailover.primary_demote_timeout = 6000",
    "pgautofailover.startup_grace_period = 1000",
];

/// Which pg_autoctl a cluster runs: ours, or pg_auto_failover 2.0's (for benchmarks), each
/// with the Postgres installation it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flavor {
    /// A short name for reports.
    pub name: String,
    /// The pg_autoctl binary.
    pub bin: PathBuf,
    /// The pg_ctl given to `--pgctl` (its installation holds the monitor extension).
    pub pg_ctl: PathBuf,
}

impl Flavor {
    /// Our pg_autoctl (built next to the test binary) with the system's PostgreSQL 15.
    pub fn ours() -> Flavor {
        Flavor {
            name: "ours".to_string(),
            bin: built_binary(),
            pg_ctl: Path::new(PG_BIN).join("pg_ctl"),
        }
    }

    /// Debian's pg_autoctl 2.0 with the PostgreSQL tree whose pg_ctl is `pg_ctl` (a copy that
    /// holds 2.0's monitor extension).
    pub fn pgaf20(pg_ctl: &Path) -> Flavor {
        Flavor {
            name: "pg_auto_failover 2.0".to_string(),
            bin: PathBuf::from(crate::c_keeper::C_KEEPER),
            pg_ctl: pg_ctl.to_path_buf(),
        }
    }
}

/// Whether every user may execute `path` (it and all its directories allow others in).
fn runnable_by_anyone(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable =
        |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0);
    executable(path) && path.ancestors().skip(1).all(executable)
}

/// Runs `pg_autoctl` in one directory: its own HOME and XDG directories, TCP only.
#[derive(Debug, Clone)]
pub struct Autoctl {
    /// The directory (owned by the Postgres user).
    pub dir: PathBuf,
    /// The binary, copied into the directory so that the Postgres user can run it.
    pub bin: PathBuf,
    /// The network namespace commands run in (none: the test's own).
    pub ns: Option<String>,
    /// Environment variables set on every command, after the defaults.
    pub env: Vec<(String, String)>,
}

impl Autoctl {
    /// Sets up `dir` for our pg_autoctl.
    pub fn new(dir: &Path) -> Autoctl {
        Autoctl::with_binary(dir, &built_binary())
    }

    /// Sets up `dir` for the pg_autoctl at `built`. It is used in place when every user may
    /// run it, else copied into `dir`.
    pub fn with_binary(dir: &Path, built: &Path) -> Autoctl {
        for sub in ["config", "share", "run", "bin"] {
            owned_dir(&dir.join(sub));
        }
        let built = built.to_path_buf();
        let bin = if runnable_by_anyone(&built) {
            built
        } else {
            let copy = dir.join("bin/pg_autoctl");
            std::fs::copy(&built, &copy).expect("copy pg_autoctl");
            copy
        };
        Autoctl {
            dir: dir.to_path_buf(),
            bin,
            ns: None,
            env: Vec::new(),
        }
    }

    /// The same, with `vars` set on every command (after the defaults, which they override).
    pub fn with_env(&self, vars: &[(&str, &str)]) -> Autoctl {
        let mut env = self.env.clone();
        env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Autoctl {
            env,
            ..self.clone()
        }
    }

    /// The same, with commands run in network namespace `ns`.
    pub fn in_ns(&self, ns: &str) -> Autoctl {
        Autoctl {
            ns: Some(ns.to_string()),
            ..self.clone()
        }
    }

    /// Spawns `cmd`, retrying while another thread's fork still holds the binary open for
    /// writing (ETXTBSY right after a copy).
    fn spawn_retrying(cmd: &mut Command) -> Child {
        let mut tries = 0;
        loop {
            match cmd.spawn() {
                Ok(child) => return child,
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("spawn pg_autoctl: {e}"),
            }
        }
    }

    /// A `pg_autoctl` command with this directory's environment, as the Postgres user.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = match &self.ns {
            None => {
                let mut cmd = Command::new(&self.bin);
                as_postgres(&mut cmd);
                cmd
            }
            Some(ns) => {
                // enter the namespace as root, then become the Postgres user
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, "setpriv", "--reuid=postgres"])
                    .args(["--regid=postgres", "--init-groups", "--"])
                    .arg(&self.bin);
                clean_env(&mut cmd);
                cmd
            }
        };
        cmd.env("HOME", &self.dir)
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("XDG_DATA_HOME", self.dir.join("share"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("PG_REGRESS_SOCK_DIR", "")
            // without Unix sockets 2.0's create monitor needs to be told where Postgres is
            .env("PGHOST", "127.0.0.1")
            .env_remove("PG_AUTOCTL_MONITOR")
            .env_remove("PGPASSWORD")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a command to completion (at most `timeout`).
    pub fn run_for(&self, args: &[&str], timeout: Duration) -> Output {
        let mut child = Self::spawn_retrying(
            self.command(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0),
        );
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() > deadline => {
                    // SAFETY: killing the process group of our own child
                    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                    let out = child.wait_with_output().expect("output");
                    panic!(
                        "pg_autoctl {} did not finish within {timeout:?}:\n{}\n{}",
                        args.join(" "),
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        child.wait_with_output().expect("output")
    }

    /// Runs a command (at most 2 minutes).
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_for(args, Duration::from_secs(120))
    }

    /// `create monitor` of `pgdata` on `port` for host 127.0.0.1, with `extra` flags (`--auth`,
    /// SSL...); its output, success or not.
    pub fn create_monitor(&self, pgdata: &Path, port: u16, extra: &[&str]) -> Output {
        let (pgdata, port) = (pgdata.display().to_string(), port.to_string());
        let mut args = vec![
            "create",
            "monitor",
            "--pgdata",
            &pgdata,
            "--pgport",
            &port,
            "--hostname",
            "127.0.0.1",
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "pg_autoctl {} failed ({}):\n{}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a long-running command (a service) in its own process group, logging to
    /// `<dir>/<name>.log`; `pgdata` is stopped (immediate) when the service is dropped.
    pub fn spawn(&self, name: &str, args: &[&str], pgdata: &Path) -> Service {
        let log = self.dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let child = Self::spawn_retrying(
            self.command(args)
                .arg("-v")
                .stdout(file.try_clone().expect("log"))
                .stderr(file)
                .process_group(0),
        );
        Service {
            child: Some(child),
            log,
            pgdata: pgdata.to_path_buf(),
        }
    }
}

/// A running `pg_autoctl run` (or `create … --run`).
#[derive(Debug)]
pub struct Service {
    child: Option<Child>,
    /// Its log file.
    pub log: PathBuf,
    /// The PGDATA it manages.
    pub pgdata: PathBuf,
}

impl Service {
    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The pid of its top process, while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stops it with `signal` and waits (at most 60 s).
    pub fn stop_with(&mut self, signal: i32) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: signalling our own child
        unsafe { libc::kill(child.id() as i32, signal) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: killing our own child's process group
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
    }

    /// Kills it and every process of its group (Postgres included) with SIGKILL: the host
    /// is lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: killing our own child's process group
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
        // Postgres may not be in the group (started before the service, e.g. taken over)
        if let Ok(text) = std::fs::read_to_string(self.pgdata.join("postmaster.pid"))
            && let Some(pid) = text
                .lines()
                .next()
                .and_then(|l| l.trim().parse::<i32>().ok())
        {
            // SAFETY: the postmaster of the PGDATA this service managed
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// Waits until it exits by itself (at most `timeout`); whether it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let Some(child) = self.child.as_mut() else {
            return true;
        };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let group = -(child.id() as i32);
            // SAFETY: signalling our own child's process group
            unsafe { libc::kill(group, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // SAFETY: as above
            unsafe { libc::kill(group, libc::SIGKILL) };
            let _ = child.wait();
        }
        if self.pgdata.join("postmaster.pid").exists() {
            let _ = pg_command("pg_ctl")
                .arg("-D")
                .arg(&self.pgdata)
                .args(["-m", "immediate", "-w", "-t", "30", "stop"])
                .output();
        }
    }
}

/// A Postgres node of a [`Cluster`].
#[derive(Debug)]
pub struct Node {
    /// Its name on the monitor.
    pub name: String,
    /// Its network namespace and address, in a networked cluster.
    pub host: Option<Host>,
    /// pg_autoctl for commands about this node (in its namespace).
    pub autoctl: Autoctl,
    /// Its PGDATA.
    pub pgdata: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its service.
    pub service: Service,
}

impl Node {
    /// `--pgdata <pgdata>` for commands about this node.
    pub fn pgdata_arg(&self) -> String {
        self.pgdata.display().to_string()
    }

    /// A connection to its Postgres as the `postgres` user (from inside its namespace).
    pub fn connect(&self) -> Result<postgres::Client, postgres::Error> {
        let conninfo = format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres connect_timeout=5",
            self.port
        );
        match &self.host {
            None => postgres::Client::connect(&conninfo, postgres::NoTls),
            Some(h) => in_ns(&h.ns, || {
                postgres::Client::connect(&conninfo, postgres::NoTls)
            }),
        }
    }

    /// `pg_autoctl <args> --pgdata <this node>`, run in its namespace.
    pub fn pg_autoctl(&self, args: &[&str]) -> Output {
        let pgdata = self.pgdata_arg();
        let mut all = args.to_vec();
        all.extend_from_slice(&["--pgdata", &pgdata]);
        self.autoctl.run(&all)
    }
}

/// A monitor and its nodes, all run by our pg_autoctl.
#[derive(Debug)]
pub struct Cluster {
    /// The nodes, in creation order (dropped first).
    pub nodes: Vec<Node>,
    /// The monitor's service.
    pub monitor: Service,
    /// The monitor's PGDATA.
    pub monitor_pgdata: PathBuf,
    /// The monitor's port.
    pub monitor_port: u16,
    /// The monitor's URI.
    pub monitor_uri: String,
    /// How to run pg_autoctl here.
    pub autoctl: Autoctl,
    /// The SSL flags every create gets.
    pub ssl_flags: Vec<String>,
    /// The monitor's namespace and address, in a networked cluster.
    pub monitor_host: Option<Host>,
    /// Which pg_autoctl runs the cluster.
    pub flavor: Flavor,
    /// The test network (dropped after every process).
    pub network: Option<Network>,
    /// The directory (removed last).
    pub dir: TempDir,
}

impl Cluster {
    /// Creates and runs a monitor (without SSL); `settings` go into its postgresql.conf.
    pub fn start(label: &str, settings: &[&str]) -> Cluster {
        Cluster::start_with(label, settings, &["--no-ssl"])
    }

    /// Creates and runs a monitor with the SSL flags `ssl`, which the nodes get too.
    pub fn start_with(label: &str, settings: &[&str], ssl: &[&str]) -> Cluster {
        Cluster::create(label, settings, ssl, None, Flavor::ours())
    }

    /// Creates and runs a monitor (without SSL) with the pg_autoctl of `flavor`.
    pub fn start_flavor(label: &str, settings: &[&str], flavor: Flavor) -> Cluster {
        Cluster::create(label, settings, &["--no-ssl"], None, flavor)
    }

    /// Creates and runs a monitor in a test network, where every node gets a namespace of
    /// its own (so that it can be cut off).
    pub fn start_networked(label: &str, settings: &[&str]) -> Cluster {
        let mut network = Network::new();
        let host = network.add_host("monitor");
        Cluster::create(
            label,
            settings,
            &["--no-ssl"],
            Some((network, host)),
            Flavor::ours(),
        )
    }

    fn create(
        label: &str,
        settings: &[&str],
        ssl: &[&str],
        network: Option<(Network, Host)>,
        flavor: Flavor,
    ) -> Cluster {
        let dir = TempDir::new(label);
        let (network, monitor_host) = match network {
            Some((n, h)) => (Some(n), Some(h)),
            None => (None, None),
        };
        let base = Autoctl::with_binary(dir.path(), &flavor.bin);
        let autoctl = match &monitor_host {
            Some(h) => base.in_ns(&h.ns),
            None => base,
        };
        let hostname = monitor_host
            .as_ref()
            .map_or("127.0.0.1".to_string(), |h| h.ip.clone());
        let monitor_pgdata = dir.path().join("monitor");
        let port = free_port();
        let pgdata = monitor_pgdata.display().to_string();
        let port_text = port.to_string();
        let pg_ctl = flavor.pg_ctl.display().to_string();
        let mut args = vec![
            "create",
            "monitor",
            "--pgdata",
            &pgdata,
            "--pgport",
            &port_text,
            "--hostname",
            &hostname,
            "--auth",
            "trust",
            "--pgctl",
            &pg_ctl,
        ];
        args.extend_from_slice(ssl);
        autoctl.ok(&args);
        if !settings.is_empty() {
            let conf = monitor_pgdata.join("postgresql.conf");
            let mut text = std::fs::read_to_string(&conf).expect("monitor postgresql.conf");
            for s in settings {
                text.push_str(s);
                text.push('\n');
            }
            std::fs::write(&conf, text).expect("write postgresql.conf");
        }
        let monitor = autoctl.spawn("monitor", &["run", "--pgdata", &pgdata], &monitor_pgdata);
        let mut cluster = Cluster {
            nodes: Vec::new(),
            monitor,
            monitor_pgdata,
            monitor_port: port,
            monitor_uri: String::new(),
            autoctl,
            ssl_flags: ssl.iter().map(|s| s.to_string()).collect(),
            monitor_host,
            flavor,
            network,
            dir,
        };
        wait::until(
            "the monitor to accept connections",
            Duration::from_secs(60),
            Duration::from_millis(100),
            || cluster.monitor_client().ok(),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.monitor.log()));
        cluster.monitor_uri = cluster
            .on_monitor(&["show", "uri", "--formation", "monitor"])
            .trim()
            .to_string();
        cluster
    }

    /// A connection to the monitor's database as the `postgres` superuser.
    pub fn monitor_client(&self) -> Result<postgres::Client, postgres::Error> {
        let conninfo = format!(
            "host=127.0.0.1 port={} user=postgres dbname=pg_auto_failover connect_timeout=5",
            self.monitor_port
        );
        match &self.monitor_host {
            None => postgres::Client::connect(&conninfo, postgres::NoTls),
            Some(h) => in_ns(&h.ns, || {
                postgres::Client::connect(&conninfo, postgres::NoTls)
            }),
        }
    }

    /// `create postgres --run` of a new node named `name`, with `extra` flags; in a networked
    /// cluster, in a namespace of its own.
    pub fn add_node(&mut self, name: &str, extra: &[&str]) -> &Node {
        self.add_node_env(name, extra, &[])
    }

    /// Like [`Cluster::add_node`], with environment variables `env` for its pg_autoctl.
    pub fn add_node_env(&mut self, name: &str, extra: &[&str], env: &[(&str, &str)]) -> &Node {
        let pgdata = self.dir.path().join(name);
        let port = free_port();
        let host = self.network.as_mut().map(|n| n.add_host(name));
        let node = self.spawn_node_on(name, &pgdata, port, extra, host, env);
        self.nodes.push(node);
        self.nodes.last().expect("just pushed")
    }

    /// Runs `create postgres --run` for `pgdata` (which may hold a database already).
    pub fn spawn_node(&self, name: &str, pgdata: &Path, port: u16, extra: &[&str]) -> Node {
        self.spawn_node_on(name, pgdata, port, extra, None, &[])
    }

    fn spawn_node_on(
        &self,
        name: &str,
        pgdata: &Path,
        port: u16,
        extra: &[&str],
        host: Option<Host>,
        env: &[(&str, &str)],
    ) -> Node {
        let autoctl = match &host {
            Some(h) => self.autoctl.in_ns(&h.ns),
            None => Autoctl {
                ns: None,
                ..self.autoctl.clone()
            },
        }
        .with_env(env);
        let hostname = host
            .as_ref()
            .map_or("127.0.0.1".to_string(), |h| h.ip.clone());
        let pgdata_text = pgdata.display().to_string();
        let port_text = port.to_string();
        let pg_ctl = self.flavor.pg_ctl.display().to_string();
        let mut args: Vec<&str> = vec![
            "create",
            "postgres",
            "--pgdata",
            &pgdata_text,
            "--pgport",
            &port_text,
            "--pghost",
            "127.0.0.1",
            "--hostname",
            &hostname,
            "--name",
            name,
            "--auth",
            "trust",
            "--pgctl",
            &pg_ctl,
            "--monitor",
            &self.monitor_uri,
            "--run",
        ];
        args.extend(self.ssl_flags.iter().map(String::as_str));
        args.extend_from_slice(extra);
        let service = autoctl.spawn(name, &args, pgdata);
        Node {
            name: name.to_string(),
            host,
            autoctl,
            pgdata: pgdata.to_path_buf(),
            port,
            service,
        }
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Runs the service of node `name` again (`pg_autoctl run`), after it was stopped or
    /// killed.
    pub fn restart_node(&mut self, name: &str) {
        let node = self.node(name);
        let pgdata = node.pgdata_arg();
        let service = node.autoctl.spawn(
            &format!("{name}-restarted"),
            &["run", "--pgdata", &pgdata],
            &node.pgdata,
        );
        self.node_mut(name).service = service;
    }

    /// Asserts that node `name` holds every row the application writer `report` saw
    /// acknowledged (waiting up to 30 s for it to answer).
    pub fn assert_nothing_lost(&self, name: &str, report: &crate::writer::Report) {
        let node = self.node(name);
        let present = wait::until(
            "the node to answer",
            Duration::from_secs(30),
            Duration::from_millis(100),
            || crate::writer::ids_written_by(&mut node.connect().ok()?, "app").ok(),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        let lost = crate::writer::missing(&report.ids(), &present);
        assert!(
            lost.is_empty(),
            "acknowledged rows lost on {name}: {lost:?} ({} acknowledged)\n{}",
            report.acks.len(),
            self.logs()
        );
    }

    /// Sets `key` to `value` in the configuration of node `name` and reloads its service.
    pub fn configure_node(&self, name: &str, key: &str, value: &str) {
        let node = self.node(name);
        for args in [vec!["config", "set", key, value], vec!["reload"]] {
            let out = node.pg_autoctl(&args);
            assert!(
                out.status.success(),
                "pg_autoctl {} on {name}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// The node named `name`, mutable.
    pub fn node_mut(&mut self, name: &str) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// "name:reported/assigned ..." for every node of every formation, by node id.
    pub fn states(&self) -> String {
        let Ok(mut client) = self.monitor_client() else {
            return "(monitor unreachable)".to_string();
        };
        client
            .query_one(
                "SELECT coalesce(string_agg(nodename || ':' || reportedstate || '/' || \
                 goalstate, ' ' ORDER BY nodeid), '') FROM pgautofailover.node",
                &[],
            )
            .map(|r| r.get(0))
            .unwrap_or_default()
    }

    /// Waits until [`Cluster::states`] is `wanted`; panics with every log otherwise.
    pub fn wait_states(&self, wanted: &str, timeout: Duration) {
        if let Err(e) = wait::until(wanted, timeout, Duration::from_millis(100), || {
            (self.states() == wanted).then_some(())
        }) {
            panic!("{e}; states are \"{}\"\n{}", self.states(), self.logs());
        }
    }

    /// The monitor's last events, oldest first, one per line.
    pub fn events(&self) -> String {
        let Ok(mut client) = self.monitor_client() else {
            return "(monitor unreachable)".to_string();
        };
        client
            .query(
                "SELECT to_char(eventtime, 'HH24:MI:SS.MS') || ' ' || nodename || ' ' || \
                 reportedstate || '/' || goalstate || ' ' || coalesce(description, '') \
                 FROM (SELECT * FROM pgautofailover.event ORDER BY eventid DESC LIMIT 60) e \
                 ORDER BY eventid",
                &[],
            )
            .map(|rows| {
                rows.iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_else(|e| format!("(cannot read the events: {e})"))
    }

    /// Every log, and the monitor's events, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = format!("--- events ---\n{}\n", self.events());
        out.push_str(&format!(
            "--- monitor ---\n{}",
            tail(&self.monitor.log(), 60)
        ));
        for node in &self.nodes {
            out.push_str(&format!(
                "\n--- {} ---\n{}",
                node.name,
                tail(&node.service.log(), 80)
            ));
        }
        out
    }

    /// `pg_autoctl <args> --pgdata <monitor>` that must succeed; its stdout.
    pub fn on_monitor(&self, args: &[&str]) -> String {
        let pgdata = self.monitor_pgdata.display().to_string();
        let mut all = args.to_vec();
        all.extend_from_slice(&["--pgdata", &pgdata]);
        self.ok(&all)
    }

    /// `pg_autoctl <args>` that must succeed; its stdout. On failure, panics with every log.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.autoctl.run(args);
        assert!(
            out.status.success(),
            "pg_autoctl {} failed ({}):\n{}\n{}\nstates: {}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.states(),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // nodes first, while the monitor still answers
        self.nodes.clear();
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
