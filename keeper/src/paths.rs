//! Where pg_autoctl keeps its files for one PGDATA, as pg_autoctl 2.0 does: the configuration
//! under `$XDG_CONFIG_HOME`, the state (and the password file) under `$XDG_DATA_HOME`, the pid
//! file under `$XDG_RUNTIME_DIR`, each in `pg_autoctl/<absolute PGDATA>/`.
//!
//! Without `XDG_RUNTIME_DIR`, the pid file goes under `/run/pg_autoctl` when that directory
//! exists and belongs to this user (the systemd unit of `pg_autoctl show systemd` makes it,
//! with `RuntimeDirectory=`), else under `/tmp/pg_autoctl` as in 2.0. Either way the directory
//! is checked before a pid file in it is trusted (`service::pidfile`): another local user who
//! created `/tmp/pg_autoctl` first cannot plant pid files there.

use std::path::{Component, Path, PathBuf};

use crate::exit::{CliError, CliResult};

/// The files of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePaths {
    /// The absolute PGDATA these files belong to.
    pub pgdata: PathBuf,
    /// `pg_autoctl.cfg`: the configuration (INI).
    pub config: PathBuf,
    /// `pg_autoctl.state`: the keeper's state.
    pub state: PathBuf,
    /// `pg_autoctl.init`: progress of an unfinished `create`.
    pub init: PathBuf,
    /// `pg_autoctl.pid`: the running service's pid.
    pub pid: PathBuf,
    /// `<runtime dir>/pg_autoctl`: the directory every pid file is under, which must be this
    /// user's and private (`service::pidfile`).
    pub runtime_base: PathBuf,
    /// `pgpass`: the passwords of the node's connections (`postgres::passfile`), mode 0600.
    pub passfile: PathBuf,
}

/// The runtime directory a systemd unit makes for the service (`RuntimeDirectory=pg_autoctl`).
const SYSTEMD_RUNTIME_DIR: &str = "/run/pg_autoctl";

impl NodePaths {
    /// The files for `pgdata`, with the environment read through `env`.
    pub fn new(pgdata: &Path, env: impl Fn(&str) -> Option<String>) -> CliResult<NodePaths> {
        let pgdata = absolute(pgdata)?;
        let home = env("HOME").filter(|h| !h.is_empty());
        let xdg = |var: &str, under_home: &str| -> CliResult<PathBuf> {
            match env(var).filter(|v| !v.is_empty()) {
                Some(dir) => Ok(PathBuf::from(dir)),
                None => home
                    .as_ref()
                    .map(|h| Path::new(h).join(under_home))
                    .ok_or_else(|| {
                        CliError::bad_config(format!("neither {var} nor HOME is set")).hint(
                            format!("Set {var} or HOME to where pg_autoctl may keep files."),
                        )
                    }),
            }
        };
        let config_home = xdg("XDG_CONFIG_HOME", ".config")?;
        let data_home = xdg("XDG_DATA_HOME", ".local/share")?;
        let runtime = env("XDG_RUNTIME_DIR")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        let under = |base: PathBuf| nest(&base.join("pg_autoctl"), &pgdata);
        Ok(NodePaths {
            config: under(config_home).join("pg_autoctl.cfg"),
            state: under(data_home.clone()).join("pg_autoctl.state"),
            init: under(data_home.clone()).join("pg_autoctl.init"),
            passfile: under(data_home).join("pgpass"),
            pid: under(runtime.clone()).join("pg_autoctl.pid"),
            runtime_base: runtime.join("pg_autoctl"),
            pgdata,
        })
    }

    /// The files for `pgdata` with the process environment (and, without `XDG_RUNTIME_DIR`,
    /// the systemd runtime directory when this user owns one).
    pub fn from_env(pgdata: &Path) -> CliResult<NodePaths> {
        let systemd_runtime = std::env::var_os("XDG_RUNTIME_DIR").is_none_or(|v| v.is_empty())
            && owned_private_dir(Path::new(SYSTEMD_RUNTIME_DIR)).is_ok();
        NodePaths::new(pgdata, |var| match var {
            "XDG_RUNTIME_DIR" if systemd_runtime => Some("/run".to_string()),
            _ => std::env::var(var).ok(),
        })
    }
}

/// Checks that `dir` is a real directory (not a symlink) owned by this user that nobody else
/// may write to.
pub fn owned_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if meta.uid() != me {
        return Err(format!(
            "{} belongs to uid {}, not to this user (uid {me})",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} may be written by other users (mode {:o})",
            dir.display(),
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// `base` followed by every component of the absolute path `inner`.
fn nest(base: &Path, inner: &Path) -> PathBuf {
    let mut out = base.to_path_buf();
    for part in inner.components() {
        if let Component::Normal(name) = part {
            out.push(name);
        }
    }
    out
}

/// `path` made absolute: resolved through symlinks when it exists, else joined to the
/// current directory with `.` and `..` removed.
pub fn absolute(path: &Path) -> CliResult<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(CliError::bad_args("PGDATA is empty")
            .hint("Use --pgdata or set the PGDATA environment variable."));
    }
    if let Ok(real) = path.canonicalize() {
        return Ok(real);
    }
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| CliError::bad_args(format!("cannot read the current directory: {e}")))?
            .join(path)
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn files_follow_the_xdg_layout_of_2_0() {
        let paths = NodePaths::new(
            Path::new("/nonexistent/pg/node1"),
            env(&[("HOME", "/home/pg"), ("XDG_RUNTIME_DIR", "/run/user/1000")]),
        )
        .expect("paths");
        assert_eq!(
            paths.config,
            Path::new("/home/pg/.config/pg_autoctl/nonexistent/pg/node1/pg_autoctl.cfg")
        );
        assert_eq!(
            paths.state,
            Path::new("/home/pg/.local/share/pg_autoctl/nonexistent/pg/node1/pg_autoctl.state")
        );
        assert_eq!(
            paths.init,
            Path::new("/home/pg/.local/share/pg_autoctl/nonexistent/pg/node1/pg_autoctl.init")
        );
        assert_eq!(
            paths.pid,
            Path::new("/run/user/1000/pg_autoctl/nonexistent/pg/node1/pg_autoctl.pid")
        );
        assert_eq!(paths.runtime_base, Path::new("/run/user/1000/pg_autoctl"));
        assert_eq!(
            paths.passfile,
            Path::new("/home/pg/.local/share/pg_autoctl/nonexistent/pg/node1/pgpass")
        );
    }

    #[test]
    fn xdg_variables_override_home_and_runtime_defaults_to_tmp() {
        let paths = NodePaths::new(
            Path::new("/nonexistent/d/../data"),
            env(&[("XDG_CONFIG_HOME", "/c"), ("XDG_DATA_HOME", "/s")]),
        )
        .expect("paths");
        assert_eq!(paths.pgdata, Path::new("/nonexistent/data"));
        assert_eq!(
            paths.config,
            Path::new("/c/pg_autoctl/nonexistent/data/pg_autoctl.cfg")
        );
        assert_eq!(
            paths.state,
            Path::new("/s/pg_autoctl/nonexistent/data/pg_autoctl.state")
        );
        assert_eq!(
            paths.pid,
            Path::new("/tmp/pg_autoctl/nonexistent/data/pg_autoctl.pid")
        );
    }

    #[test]
    fn without_home_or_xdg_the_error_says_what_to_set() {
        let err = NodePaths::new(Path::new("/x"), env(&[])).expect_err("no home");
        assert!(err.message.contains("XDG_CONFIG_HOME"), "{}", err.message);
        assert!(NodePaths::new(Path::new(""), env(&[("HOME", "/h")])).is_err());
    }
}
