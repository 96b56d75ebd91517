//! pg_auto_failover 2.0's own keeper (Debian package `pg-auto-failover-cli`), run against our
//! monitor to prove the two interoperate. Each keeper runs in its own process group as the
//! Postgres user; dropping a [`CKeeper`] stops it, its Postgres, and everything it started.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::{PG_BIN, as_postgres, owned_dir, pg_command};

/// Where Debian installs the 2.0 keeper.
pub const C_KEEPER: &str = "/usr/bin/pg_autoctl";

/// A running 2.0 keeper and its Postgres node.
pub struct CKeeper {
    child: Child,
    /// Its PGDATA.
    pub pgdata: PathBuf,
    /// Its Postgres port.
    pub port: u16,
    log: PathBuf,
}

impl CKeeper {
    /// Runs `pg_autoctl create postgres ... --run` for a new node under `dir`.
    pub fn start(dir: &Path, name: &str, port: u16, monitor_uri: &str) -> CKeeper {
        let pgdata = dir.join(name);
        let log = dir.join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).expect("create keeper log");
        // the keeper falls back to /tmp for directories that do not exist
        for sub in ["config", "share", "run"] {
            owned_dir(&dir.join(sub));
        }
        let mut keeper = Command::new(C_KEEPER);
        as_postgres(&mut keeper);
        keeper
            .env("HOME", dir)
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_DATA_HOME", dir.join("share"))
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .env("PG_REGRESS_SOCK_DIR", "")
            .args(["create", "postgres", "--pgdata"])
            .arg(&pgdata)
            .args(["--pgport", &port.to_string(), "--pghost", "127.0.0.1"])
            .args(["--pgctl", &format!("{PG_BIN}/pg_ctl")])
            .args([
                "--hostname",
                "127.0.0.1",
                "--name",
                name,
                "--auth",
                "trust",
                "--no-ssl",
            ])
            .args(["--monitor", monitor_uri, "--run"])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file);
        let child = keeper
            .spawn()
            .unwrap_or_else(|e| panic!("start {C_KEEPER}: {e} (install pg-auto-failover-cli)"));
        CKeeper {
            child,
            pgdata,
            port,
            log,
        }
    }

    /// The keeper's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for CKeeper {
    fn drop(&mut self) {
        let group = -(self.child.id() as i32);
        // SAFETY: signalling our own child's process group
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: as above
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = pg_command("pg_ctl")
            .arg("-D")
            .arg(&self.pgdata)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}
