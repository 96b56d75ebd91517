//! What a data directory holds: nothing, a stopped cluster, or a running one (read from
//! `postmaster.pid`), and whether it is a standby.

use std::path::Path;

/// The contents of `postmaster.pid` of a running (or crashed) server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostmasterPid {
    /// The postmaster's process id.
    pub pid: i32,
    /// Its port.
    pub port: u16,
    /// The first Unix socket directory ('' when none).
    pub socket_dir: String,
    /// The first listen address ('' when none).
    pub listen_address: String,
    /// `starting`, `ready`, `standby`, `stopping`, or '' for old servers.
    pub status: String,
}

impl PostmasterPid {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Option<PostmasterPid> {
        let lines: Vec<&str> = text.lines().collect();
        let pid = lines.first()?.trim().parse().ok()?;
        let port = lines.get(3)?.trim().parse().ok()?;
        Some(PostmasterPid {
            pid,
            port,
            socket_dir: lines.get(4).map_or("", |s| s.trim()).to_string(),
            listen_address: lines.get(5).map_or("", |s| s.trim()).to_string(),
            status: lines.get(7).map_or("", |s| s.trim()).to_string(),
        })
    }

    /// Reads `pgdata/postmaster.pid`; `None` when absent or unreadable.
    pub fn read(pgdata: &Path) -> Option<PostmasterPid> {
        std::fs::read_to_string(pgdata.join("postmaster.pid"))
            .ok()
            .and_then(|t| PostmasterPid::parse(&t))
    }

    /// Whether its process still exists.
    pub fn is_alive(&self) -> bool {
        process_exists(self.pid)
    }

    /// Whether the server accepts connections.
    pub fn is_ready(&self) -> bool {
        matches!(self.status.as_str(), "ready" | "standby")
    }

    /// Where a client on this host connects: the socket directory, else the listen address
    /// (`*` and `0.0.0.0` mean loopback).
    pub fn connect_host(&self) -> String {
        if !self.socket_dir.is_empty() {
            return self.socket_dir.clone();
        }
        match self.listen_address.as_str() {
            "" | "*" | "0.0.0.0" => "127.0.0.1".to_string(),
            "::" => "::1".to_string(),
            other => other.to_string(),
        }
    }
}

/// Whether a process with this id exists.
pub fn process_exists(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // no signal: only checks for existence and permission
    let exists = matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Ok(()) | Err(nix::errno::Errno::EPERM)
    );
    // a zombie has exited: only its parent has not collected it yet
    exists && !is_zombie(pid)
}

/// Whether `pid` is a zombie, from /proc (Linux).
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // "pid (comm) S ...": the state follows the last ')'
            let after = stat.rsplit_once(')')?.1;
            after.split_whitespace().next().map(|s| s == "Z")
        })
        .unwrap_or(false)
}

/// What PGDATA holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgdataContents {
    /// The directory does not exist or is empty.
    Empty,
    /// A directory with files but no database cluster.
    NotACluster,
    /// A database cluster, stopped.
    Stopped,
    /// A database cluster whose postmaster runs.
    Running(PostmasterPid),
}

/// Looks at `pgdata`.
pub fn inspect(pgdata: &Path) -> std::io::Result<PgdataContents> {
    let mut entries = match std::fs::read_dir(pgdata) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PgdataContents::Empty),
        Err(e) => return Err(e),
    };
    if entries.next().is_none() {
        return Ok(PgdataContents::Empty);
    }
    if !pgdata.join("PG_VERSION").exists() || !pgdata.join("global/pg_control").exists() {
        return Ok(PgdataContents::NotACluster);
    }
    match PostmasterPid::read(pgdata) {
        Some(pid) if pid.is_alive() => Ok(PgdataContents::Running(pid)),
        _ => Ok(PgdataContents::Stopped),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_postmaster_pid() {
        let text = "4242\n/data/node1\n1764000000\n5433\n/var/run/postgresql\n*\n  1234567     12345\nready   \n";
        let pid = PostmasterPid::parse(text).expect("parse");
        assert_eq!(pid.pid, 4242);
        assert_eq!(pid.port, 5433);
        assert_eq!(pid.connect_host(), "/var/run/postgresql");
        assert!(pid.is_ready());
        let tcp_only = "1\n/d\n0\n5432\n\n127.0.0.1\n0 0\nstarting\n";
        let pid = PostmasterPid::parse(tcp_only).expect("parse");
        assert_eq!(pid.connect_host(), "127.0.0.1");
        assert!(!pid.is_ready());
        assert!(PostmasterPid::parse("garbage").is_none());
    }

    #[test]
    fn inspects_empty_missing_and_foreign_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            inspect(&dir.path().join("missing")).expect("inspect"),
            PgdataContents::Empty
        );
        assert_eq!(inspect(dir.path()).expect("inspect"), PgdataContents::Empty);
        std::fs::write(dir.path().join("notes.txt"), "x").expect("write");
        assert_eq!(
            inspect(dir.path()).expect("inspect"),
            PgdataContents::NotACluster
        );
    }

    #[test]
    fn our_own_process_exists_and_an_exited_child_does_not() {
        assert!(process_exists(std::process::id() as i32));
        assert!(!process_exists(0));
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id() as i32;
        // not collected yet: a zombie once it exits
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !is_zombie(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!process_exists(pid), "a zombie counts as gone");
        child.wait().expect("reap");
    }
}
