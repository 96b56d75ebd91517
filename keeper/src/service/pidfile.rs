//! The service's pid file: at most one `pg_autoctl run` per PGDATA, and how `stop`, `reload`
//! and `status` find it.

use std::path::{Path, PathBuf};

use crate::exit::{CliError, CliResult, Exit};
use crate::fsutil::write_atomically;
use crate::postgres::pgdata::process_exists;

/// A pid file held by this process; removed when dropped.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

/// The pid in the file at `path`, when the file exists and its process runs.
pub fn running_service(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    process_exists(pid).then_some(pid)
}

impl PidFile {
    /// Writes this process's pid to `path`, refusing when another live service holds it.
    pub fn acquire(path: &Path) -> CliResult<PidFile> {
        if let Some(pid) = running_service(path)
            && pid != std::process::id() as i32
        {
            return Err(CliError::new(
                Exit::Keeper,
                format!(
                    "pg_autoctl is already running with pid {pid} (pid file {})",
                    path.display()
                ),
            )
            .hint("Stop it with pg_autoctl stop first."));
        }
        write_atomically(path, format!("{}\n", std::process::id()).as_bytes(), 0o644).map_err(
            |e| {
                CliError::new(
                    Exit::Keeper,
                    format!("cannot write the pid file {}: {e}", path.display()),
                )
            },
        )?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_service_per_pid_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run/pg_autoctl.pid");
        {
            let _held = PidFile::acquire(&path).expect("first");
            assert_eq!(running_service(&path), Some(std::process::id() as i32));
            // our own pid: acquiring again is allowed (restart within the process)
            let _again = PidFile::acquire(&path).expect("same process");
        }
        assert_eq!(running_service(&path), None);
        std::fs::create_dir_all(dir.path().join("run")).expect("dir");
        std::fs::write(&path, "1\n").expect("write");
        // pid 1 is alive and is not us
        assert!(PidFile::acquire(&path).is_err());
        std::fs::write(&path, "999999999\n").expect("write");
        assert!(
            PidFile::acquire(&path).is_ok(),
            "a stale pid file is taken over"
        );
    }
}
