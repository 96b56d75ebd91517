//! Finding and running the Postgres programs (`pg_ctl`, `initdb`, `postgres`,
//! `pg_controldata`, `pg_basebackup`, `pg_rewind`), all taken from the directory of `pg_ctl`.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use super::controldata::ControlData;
use crate::exit::{CliError, CliResult, Exit};

/// The directory holding one Postgres installation's programs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBin {
    dir: PathBuf,
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

impl PgBin {
    /// The installation `pg_ctl` belongs to; it must exist and be executable. A symlink
    /// (`/usr/local/bin/pg_ctl`) is followed: the other programs are next to its target.
    pub fn from_pg_ctl(pg_ctl: &Path) -> CliResult<PgBin> {
        let resolved = pg_ctl.canonicalize();
        let pg_ctl = resolved.as_deref().unwrap_or(pg_ctl);
        if !is_executable(pg_ctl) {
            return Err(CliError::new(
                Exit::Pgctl,
                format!("pg_ctl not found at \"{}\" (or not executable)", pg_ctl.display()),
            )
            .hint("Give the path of an installed pg_ctl with --pgctl, e.g. /usr/lib/postgresql/15/bin/pg_ctl."));
        }
        let dir = pg_ctl
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(PgBin { dir })
    }

    /// `explicit` when given; else `pg_ctl` on PATH; else the newest Debian installation
    /// under /usr/lib/postgresql.
    pub fn find(explicit: Option<&Path>) -> CliResult<PgBin> {
        if let Some(path) = explicit {
            return PgBin::from_pg_ctl(path);
        }
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                let candidate = dir.join("pg_ctl");
                if is_executable(&candidate) {
                    return PgBin::from_pg_ctl(&candidate);
                }
            }
        }
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                let pg_ctl = e.path().join("bin/pg_ctl");
                is_executable(&pg_ctl).then_some((version, pg_ctl))
            })
            .collect();
        versions.sort();
        match versions.pop() {
            Some((_, pg_ctl)) => PgBin::from_pg_ctl(&pg_ctl),
            None => Err(CliError::new(
                Exit::Pgctl,
                "pg_ctl not found on PATH nor in /usr/lib/postgresql",
            )
            .hint("Install the PostgreSQL server, or give the path of pg_ctl with --pgctl.")),
        }
    }

    /// The path of `program` in this installation.
    pub fn path(&self, program: &str) -> PathBuf {
        self.dir.join(program)
    }

    /// The path of pg_ctl.
    pub fn pg_ctl(&self) -> PathBuf {
        self.path("pg_ctl")
    }

    /// A command for `program` with the C locale (so outputs parse the same everywhere) and
    /// without the secrets of pg_autoctl's own environment (see [`secret_variables`]): the
    /// Postgres server, pg_basebackup and the others get passwords from the node's password
    /// file, never inherited.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.path(program));
        cmd.env("LC_ALL", "C").env("LANG", "C").kill_on_drop(true);
        for name in secret_variables(std::env::vars_os().map(|(k, _)| k)) {
            cmd.env_remove(name);
        }
        cmd
    }

    /// Runs `program` with `args` to completion; its stdout on success, an error with its
    /// stderr otherwise.
    pub async fn run<I, S>(&self, program: &str, args: I) -> CliResult<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(program);
        cmd.args(args);
        run_command(program, cmd).await
    }

    /// `pg_controldata` of `pgdata`.
    pub async fn controldata(&self, pgdata: &Path) -> CliResult<ControlData> {
        let out = self
            .run("pg_controldata", [OsStr::new("-D"), pgdata.as_os_str()])
            .await?;
        ControlData::parse(&out).map_err(|e| CliError::new(Exit::Pgctl, e))
    }

    /// The major version of this installation (15 for 15.4).
    pub async fn major_version(&self) -> CliResult<u32> {
        let out = self.run("postgres", ["--version"]).await?;
        // "postgres (PostgreSQL) 15.4 (Debian 15.4-1)"
        out.split_whitespace()
            .nth(2)
            .and_then(|v| v.split('.').next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                CliError::new(
                    Exit::Pgctl,
                    format!("cannot read the version in \"{}\"", out.trim()),
                )
            })
    }
}

/// The names among `names` of environment variables that may hold a secret: `PGPASSWORD`,
/// `PG_AUTOCTL_MONITOR` (a URI may hold a password), and anything named like a password.
pub fn secret_variables(
    names: impl Iterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    names
        .filter(|name| {
            let upper = name.to_string_lossy().to_ascii_uppercase();
            upper == "PG_AUTOCTL_MONITOR" || upper.contains("PASSWORD")
        })
        .collect()
}

/// Checks that `pg_ctl` is PostgreSQL's `pg_ctl` before a configuration names it, as 2.0
/// does: the file is named `pg_ctl` once symbolic links are followed (the keeper runs the
/// other programs from its directory), and `pg_ctl --version` answers
/// `pg_ctl (PostgreSQL) …` within 10 s. Returns that line.
pub async fn check_pg_ctl(pg_ctl: &Path) -> CliResult<String> {
    let not_pg_ctl = |why: String| {
        CliError::bad_config(format!("\"{}\" is not a pg_ctl: {why}", pg_ctl.display()))
            .hint("Give the path of an installed pg_ctl, e.g. /usr/lib/postgresql/15/bin/pg_ctl.")
    };
    let real = pg_ctl
        .canonicalize()
        .map_err(|e| not_pg_ctl(e.to_string()))?;
    if !is_executable(&real) {
        return Err(not_pg_ctl("not an executable file".to_string()));
    }
    if real.file_name() != Some(OsStr::new("pg_ctl")) {
        return Err(not_pg_ctl(format!("it is {}", real.display())));
    }
    let mut cmd = Command::new(&real);
    cmd.arg("--version").kill_on_drop(true);
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        run_command("pg_ctl", cmd),
    )
    .await
    .map_err(|_| not_pg_ctl("pg_ctl --version did not answer within 10 s".to_string()))?
    .map_err(|e| not_pg_ctl(e.message))?;
    let line = out.lines().next().unwrap_or("").trim().to_string();
    if !line.starts_with("pg_ctl (PostgreSQL) ") {
        return Err(not_pg_ctl(format!(
            "pg_ctl --version answered \"{}\"",
            fsm::vocab::printable(&line)
        )));
    }
    Ok(line)
}

/// Runs `cmd` (named `what` in errors) and returns its stdout.
pub async fn run_command(what: &str, mut cmd: Command) -> CliResult<String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tracing::debug!(command = %describe(cmd.as_std()), "running");
    let output = cmd
        .output()
        .await
        .map_err(|e| CliError::new(Exit::Pgctl, format!("cannot run {what}: {e}")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let text = if stderr.trim().is_empty() {
            stdout.trim().to_string()
        } else {
            stderr.trim().to_string()
        };
        Err(CliError::new(
            Exit::Pgctl,
            format!("{what} failed ({}): {text}", output.status),
        ))
    }
}

/// The program and its arguments for a log line: no environment (it may hold PGPASSWORD),
/// and every `password=...` in an argument hidden.
pub fn describe(cmd: &std::process::Command) -> String {
    let mut out = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&hide_passwords(&arg.to_string_lossy()));
    }
    out
}

/// `text` with the value of every `password=` keyword replaced by `****`.
pub fn hide_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("password=") {
        out.push_str(&rest[..at + "password=".len()]);
        out.push_str("****");
        let value = &rest[at + "password=".len()..];
        // a quoted value ends at the closing quote, a bare one at a space
        let end = if let Some(quoted) = value.strip_prefix('\'') {
            let mut i = 0;
            let bytes = quoted.as_bytes();
            while i < bytes.len() && bytes[i] != b'\'' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            (i + 2).min(value.len())
        } else {
            value.find(' ').unwrap_or(value.len())
        };
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_the_environment_are_not_inherited() {
        let names = [
            "PATH",
            "PGPASSWORD",
            "PG_AUTOCTL_MONITOR",
            "MY_DB_PASSWORD",
            "PGPASSFILE",
        ]
        .map(std::ffi::OsString::from);
        let secret = secret_variables(names.into_iter());
        assert_eq!(
            secret,
            ["PGPASSWORD", "PG_AUTOCTL_MONITOR", "MY_DB_PASSWORD"]
        );
    }

    #[test]
    fn logged_commands_show_no_password() {
        let mut cmd = std::process::Command::new("/usr/bin/pg_rewind");
        cmd.env("PGPASSWORD", "s3cret")
            .arg("--source-server")
            .arg("host='h' password='it\\'s s3cret' user='u'")
            .arg("password=plain other");
        let line = describe(&cmd);
        assert!(!line.contains("s3cret"), "{line}");
        assert!(!line.contains("plain"), "{line}");
        assert!(line.contains("user='u'"), "{line}");
        assert!(line.contains("other"), "{line}");
    }

    #[test]
    fn a_missing_pg_ctl_is_a_clear_error() {
        let err = PgBin::from_pg_ctl(Path::new("/nonexistent/bin/pg_ctl")).expect_err("missing");
        assert_eq!(err.exit, Exit::Pgctl);
        assert!(err.message.contains("/nonexistent/bin/pg_ctl"));
        assert!(err.hint.is_some());
    }

    #[test]
    fn programs_come_from_the_directory_of_pg_ctl() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pg_ctl = dir.path().join("pg_ctl");
        std::fs::write(&pg_ctl, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&pg_ctl, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let bin = PgBin::from_pg_ctl(&pg_ctl).expect("found");
        assert_eq!(bin.path("initdb"), dir.path().join("initdb"));
    }

    #[test]
    fn a_symlinked_pg_ctl_leads_to_its_installation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let install = dir.path().join("pg/15/bin");
        std::fs::create_dir_all(&install).expect("dirs");
        let pg_ctl = install.join("pg_ctl");
        std::fs::write(&pg_ctl, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&pg_ctl, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let link = dir.path().join("pg_ctl");
        std::os::unix::fs::symlink(&pg_ctl, &link).expect("symlink");
        let bin = PgBin::from_pg_ctl(&link).expect("found");
        let real = install.canonicalize().expect("canonical");
        assert_eq!(bin.path("pg_controldata"), real.join("pg_controldata"));
    }
}
