//! Crash-safe file writes: a reader sees either the old contents or the new ones, never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `contents` to `path` atomically: write a sibling `.new` file, fsync it, rename it
/// over `path`, then fsync the directory so the rename itself is durable. Creates the parent
/// directories (mode 0700) when missing. The file gets `mode`.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no directory"))?;
    create_private_dir(dir)?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".new");
    let tmp = Path::new(&tmp_name);
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    fs::rename(tmp, path)?;
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing parents with mode 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/state");
        write_atomically(&path, b"one", 0o600).expect("first write");
        write_atomically(&path, b"two", 0o600).expect("second write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["state"]);
    }

    #[test]
    fn a_crash_before_the_rename_leaves_the_old_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state");
        write_atomically(&path, b"old", 0o600).expect("write");
        // what a crash after writing the temporary file leaves behind
        fs::write(dir.path().join("state.new"), b"half").expect("stray temporary");
        assert_eq!(fs::read(&path).expect("read"), b"old");
        write_atomically(&path, b"new", 0o600).expect("write over the stray file");
        assert_eq!(fs::read(&path).expect("read"), b"new");
    }
}
