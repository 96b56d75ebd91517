//! One Postgres server for a test: initdb, start, connect, stop, clean up.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where Debian's PostgreSQL 15 programs are.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The OS user Postgres runs as when the tests run as root.
const PG_USER: &str = "postgres";

/// A user to run Postgres programs as: `postgres` when we are root, ourselves otherwise.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

fn run_as() -> Option<RunAs> {
    // SAFETY: getuid has no preconditions
    if unsafe { libc::getuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new(PG_USER).ok()?;
    // SAFETY: getpwnam returns NULL or a pointer to a static passwd entry, read at once
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        panic!("running as root needs the '{PG_USER}' OS user to run Postgres");
    }
    // SAFETY: pw is non-null
    unsafe {
        Some(RunAs {
            uid: (*pw).pw_uid,
            gid: (*pw).pw_gid,
        })
    }
}

/// Makes `command` run as the Postgres user (when we are root), with a clean environment.
pub fn as_postgres(command: &mut Command) -> &mut Command {
    clean_env(command);
    if let Some(user) = run_as() {
        command.uid(user.uid).gid(user.gid);
    }
    command
}

/// Removes what the tests' environment could leak into a Postgres program or pg_autoctl.
pub fn clean_env(command: &mut Command) -> &mut Command {
    command
        .env_remove("RUST_BACKTRACE")
        .env_remove("PGDATA")
        .env_remove("PGHOST")
        .env_remove("PGPORT")
        .env("LC_ALL", "C.UTF-8")
}

/// A command for a Postgres program, run as the Postgres user, with a clean environment.
pub fn pg_command(program: &str) -> Command {
    let mut command = Command::new(Path::new(PG_BIN).join(program));
    as_postgres(&mut command);
    command
}

fn check(output: std::io::Result<Output>, what: &str) -> Output {
    match output {
        Ok(out) if out.status.success() => out,
        Ok(out) => panic!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("{what} could not start: {e}"),
    }
}

/// A directory under /tmp owned by the Postgres user, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new empty directory; the name says which test it is for.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = PathBuf::from(format!("/tmp/pgaf-{}-{}-{n}", label, std::process::id()));
        let _ = fs::remove_dir_all(&path);
        owned_dir(&path);
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Creates `path` (mode 0700) owned by the Postgres user.
pub fn owned_dir(path: &Path) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    if let Some(user) = run_as() {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // PGAF_KEEP_FAILED=1 keeps the directory of a failed test for a post-mortem
        if std::thread::panicking() && std::env::var_os("PGAF_KEEP_FAILED").is_some() {
            eprintln!("kept {} for inspection", self.path.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A running Postgres server.
#[derive(Debug)]
pub struct PgServer {
    dir: TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
    running: bool,
}

impl PgServer {
    /// initdb and start a server with these extra `postgresql.conf` lines.
    pub fn start(label: &str, settings: &[&str]) -> PgServer {
        let dir = TempDir::new(label);
        let data = dir.path().join("data");
        check(
            pg_command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
                .output(),
            "initdb",
        );
        let port = free_port();
        let mut conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nlog_min_messages = log\n",
            dir.path().display()
        );
        for line in settings {
            conf.push_str(line);
            conf.push('\n');
        }
        let conf_path = data.join("postgresql.conf");
        let mut content = fs::read_to_string(&conf_path).unwrap_or_default();
        content.push_str(&conf);
        fs::write(&conf_path, content).unwrap_or_else(|e| panic!("write postgresql.conf: {e}"));
        let mut server = PgServer {
            dir,
            port,
            running: false,
        };
        server.pg_ctl_start();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn pg_ctl_start(&mut self) {
        let out = pg_command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .output();
        match out {
            Ok(o) if o.status.success() => self.running = true,
            _ => panic!("pg_ctl start failed:\n{}", self.log()),
        }
    }

    /// Stops the server (fast), keeping its data.
    pub fn stop(&mut self) {
        if self.running {
            let _ = pg_command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-w", "-t", "60", "-m", "fast", "stop"])
                .output();
            self.running = false;
        }
    }

    /// Starts a stopped server again.
    pub fn restart(&mut self) {
        self.stop();
        self.pg_ctl_start();
    }

    /// A connection string for `dbname` as user `postgres`.
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={dbname} connect_timeout=10",
            self.port
        )
    }

    /// A new connection to `dbname`.
    pub fn connect_to(&self, dbname: &str) -> postgres::Client {
        postgres::Client::connect(&self.conninfo(dbname), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to {}: {e}\n{}", self.conninfo(dbname), self.log()))
    }

    /// A new connection to `dbname` as role `user`.
    pub fn connect_as(&self, dbname: &str, user: &str) -> postgres::Client {
        let conninfo = format!(
            "host=127.0.0.1 port={} user={user} dbname={dbname} connect_timeout=10",
            self.port
        );
        postgres::Client::connect(&conninfo, postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to {conninfo}: {e}\n{}", self.log()))
    }

    /// A new connection to database `postgres`.
    pub fn connect(&self) -> postgres::Client {
        self.connect_to("postgres")
    }

    /// Runs a program from the Postgres bin directory against this server.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        check(
            pg_command(program)
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .args(args)
                .output(),
            program,
        )
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let _ = pg_command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-w", "-t", "30", "-m", "immediate", "stop"])
                .output();
        }
    }
}
