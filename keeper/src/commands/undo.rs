//! Undoing a `create` that failed half-way: stop the Postgres it started, remove the data
//! directory it initialised and the files it wrote. Each step is recorded as it starts, and
//! only what this `create` made is ever removed: a data directory that held anything before
//! is never touched, nor a Postgres that was already running.

use std::path::PathBuf;
use std::time::Duration;

use crate::node_setup::NodeContext;
use crate::paths::NodePaths;
use crate::postgres::server::StopMode;

/// What a `create` made so far.
#[derive(Debug)]
pub struct Undo {
    pgdata: PathBuf,
    /// PGDATA was missing or empty before: this `create` may initialise it.
    pgdata_was_empty: bool,
    /// PGDATA did not exist at all before.
    pgdata_was_missing: bool,
    initdb: bool,
    postgres: bool,
    files: Vec<PathBuf>,
}

impl Undo {
    /// Starts recording for the node at `paths`; `pgdata_empty` tells whether its PGDATA is
    /// missing or empty now.
    pub fn new(paths: &NodePaths, pgdata_empty: bool) -> Undo {
        let files = [&paths.config, &paths.state, &paths.init, &paths.passfile]
            .into_iter()
            .filter(|f| !f.exists())
            .cloned()
            .collect();
        Undo {
            pgdata: paths.pgdata.clone(),
            pgdata_was_empty: pgdata_empty,
            pgdata_was_missing: !paths.pgdata.exists(),
            initdb: false,
            postgres: false,
            files,
        }
    }

    /// Whether this `create` initialises PGDATA (it was missing or empty).
    pub fn initialises_pgdata(&self) -> bool {
        self.pgdata_was_empty
    }

    /// initdb is about to run on the empty PGDATA.
    pub fn initdb_started(&mut self) {
        self.initdb = self.pgdata_was_empty;
    }

    /// Postgres is about to be started by this `create`.
    pub fn postgres_started(&mut self) {
        self.postgres = true;
    }

    /// Removes the files this `create` wrote (its configuration, state and password file),
    /// leaving any data directory and server alone.
    pub fn forget_files(self) {
        remove_files(&self.files);
    }

    /// Undoes everything recorded, logging each step; errors are logged, not returned (the
    /// caller reports the failure that led here).
    pub async fn rollback(self, node: &mut NodeContext) {
        if self.postgres {
            node.drop_local();
            if let Err(e) = node
                .server
                .stop(StopMode::Immediate, Duration::from_secs(30))
                .await
            {
                tracing::warn!(error = %e.message, "undo: cannot stop the Postgres this create started");
            }
        }
        if self.initdb {
            let result = if self.pgdata_was_missing {
                std::fs::remove_dir_all(&self.pgdata)
            } else {
                empty_dir(&self.pgdata)
            };
            match result {
                Ok(()) => {
                    tracing::info!(pgdata = %self.pgdata.display(), "undo: removed the data directory this create initialised")
                }
                Err(e) => {
                    tracing::warn!(pgdata = %self.pgdata.display(), error = %e, "undo: cannot remove the data directory")
                }
            }
        }
        remove_files(&self.files);
    }
}

fn remove_files(files: &[PathBuf]) {
    for file in files {
        match std::fs::remove_file(file) {
            Ok(()) => tracing::info!(file = %file.display(), "undo: removed"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %file.display(), error = %e, "undo: cannot remove"),
        }
    }
}

/// Removes everything inside `dir`, keeping `dir`.
fn empty_dir(dir: &std::path::Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_was_empty_before_is_initialised() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = |root: PathBuf| {
            move |var: &str| match var {
                "HOME" => Some(root.to_string_lossy().into_owned()),
                _ => None,
            }
        };
        let pgdata = dir.path().join("data");
        let paths = NodePaths::new(&pgdata, env(dir.path().to_path_buf())).expect("paths");
        let mut undo = Undo::new(&paths, true);
        assert!(undo.initialises_pgdata());
        undo.initdb_started();
        assert!(undo.initdb && undo.pgdata_was_missing);
        assert_eq!(undo.files.len(), 4);

        std::fs::create_dir_all(&pgdata).expect("pgdata");
        std::fs::write(pgdata.join("PG_VERSION"), "15").expect("file");
        let mut undo = Undo::new(&paths, false);
        undo.initdb_started();
        assert!(
            !undo.initdb,
            "a data directory that held something is never removed"
        );

        std::fs::create_dir_all(pgdata.join("base/1")).expect("dirs");
        empty_dir(&pgdata).expect("empty");
        assert!(pgdata.exists());
        assert_eq!(std::fs::read_dir(&pgdata).expect("read").count(), 0);
    }
}
