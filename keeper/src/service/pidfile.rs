//! The service's pid file: at most one `pg_autoctl run` per PGDATA, and how `stop`, `reload`
//! and `status` find it.
//!
//! The directories holding it, from its own up to `pg_autoctl`, must belong to this user and
//! be writable by nobody else, both to write it and to trust what it says: otherwise another
//! local user could have created them (`/tmp/pg_autoctl` is world-creatable) and made `stop`
//! signal a process of their choosing, or kept the service from starting with a fake pid.

use std::path::{Path, PathBuf};

use crate::exit::{CliError, CliResult, Exit};
use crate::fsutil::{create_private_dir, write_atomically};
use crate::paths::owned_private_dir;
use crate::postgres::pgdata::process_exists;

/// A pid file held by this process; removed when dropped.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

/// Checks the directories of the pid file at `path`, from its own up to `base` (the
/// `pg_autoctl` runtime directory it is under) included.
fn check_directories(path: &Path, base: &Path) -> CliResult<()> {
    let unsafe_dir = |why: String| {
        CliError::new(
            Exit::Keeper,
            format!("the pid file directory is not safe: {why}"),
        )
        .hint("Remove it, or set XDG_RUNTIME_DIR to a directory only this user can write (the unit of pg_autoctl show systemd makes /run/pg_autoctl).")
    };
    if !path.starts_with(base) {
        return Err(unsafe_dir(format!(
            "{} is not under {}",
            path.display(),
            base.display()
        )));
    }
    let mut dir = path.parent();
    while let Some(d) = dir.filter(|d| d.starts_with(base)) {
        owned_private_dir(d).map_err(unsafe_dir)?;
        dir = d.parent();
    }
    Ok(())
}

/// The pid in the file at `path` (under the runtime directory `base`), when the file exists
/// and its process runs; an error when the file is in a directory another user controls.
pub fn running_service(path: &Path, base: &Path) -> CliResult<Option<i32>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    check_directories(path, base)?;
    let pid = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
        .filter(|p| *p > 0);
    Ok(pid.filter(|p| process_exists(*p)))
}

impl PidFile {
    /// Writes this process's pid to `path` (under the runtime directory `base`), refusing
    /// when another live service holds it.
    pub fn acquire(path: &Path, base: &Path) -> CliResult<PidFile> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir).map_err(|e| {
                CliError::new(
                    Exit::Keeper,
                    format!("cannot create {}: {e}", dir.display()),
                )
            })?;
        }
        check_directories(path, base)?;
        if let Some(pid) = running_service(path, base)?
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
        let base = dir.path().join("pg_autoctl");
        let path = base.join("run/pg_autoctl.pid");
        {
            let _held = PidFile::acquire(&path, &base).expect("first");
            assert_eq!(
                running_service(&path, &base).expect("trusted"),
                Some(std::process::id() as i32)
            );
            // our own pid: acquiring again is allowed (restart within the process)
            let _again = PidFile::acquire(&path, &base).expect("same process");
        }
        assert_eq!(running_service(&path, &base).expect("trusted"), None);
        std::fs::create_dir_all(base.join("run")).expect("dir");
        std::fs::write(&path, "1\n").expect("write");
        // pid 1 is alive and is not us
        assert!(PidFile::acquire(&path, &base).is_err());
        std::fs::write(&path, "999999999\n").expect("write");
        assert!(
            PidFile::acquire(&path, &base).is_ok(),
            "a stale pid file is taken over"
        );
    }

    #[test]
    fn a_directory_others_may_write_is_not_trusted() {
        use std::os::unix::fs::PermissionsExt;
        let chmod = |dir: &Path, mode: u32| {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).expect("chmod");
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("pg_autoctl");
        // a data directory whose own path holds a pg_autoctl component
        let path = base.join("var/pg_autoctl/node/pg_autoctl.pid");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        chmod(&base, 0o777);
        std::fs::write(&path, "1\n").expect("planted pid file");
        let err = PidFile::acquire(&path, &base).expect_err("world-writable base");
        assert!(err.message.contains("not safe"), "{}", err.message);
        assert!(
            running_service(&path, &base).is_err(),
            "a planted pid is not trusted"
        );
        chmod(&base, 0o700);
        // every directory up to the base is checked, not only up to the first pg_autoctl
        let var = base.join("var");
        chmod(&var, 0o777);
        assert!(running_service(&path, &base).is_err());
        chmod(&var, 0o700);
        assert_eq!(running_service(&path, &base).expect("trusted"), Some(1));
        if nix::unistd::geteuid().is_root() {
            // a base that belongs to another user (root can make one)
            std::os::unix::fs::chown(&base, Some(65534), None).expect("chown");
            assert!(running_service(&path, &base).is_err());
        }
    }
}
