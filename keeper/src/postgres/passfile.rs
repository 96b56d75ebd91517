//! The node's password file, in libpq's `.pgpass` format, mode 0600, kept beside the state
//! file (never in PGDATA, so `pg_basebackup` and backups do not copy it).
//!
//! Secrets reach the programs and servers that need them only through this file: the
//! standby's `primary_conninfo` names it with `passfile=`, `pg_basebackup` and `pg_rewind` get
//! it as `PGPASSFILE`, and the keeper reads its own local connection's password from it. So no
//! password is ever in a command line, a child's environment, a log line, or a file other
//! users can read.
//!
//! Each line is `host:port:database:user:password`; `*` matches anything, and `:` or `\` in a
//! field are escaped with `\`.

use std::io;
use std::path::Path;

use crate::fsutil::write_atomically;

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Host, or `*`.
    pub host: String,
    /// Port, or `*`.
    pub port: String,
    /// Database, or `*`.
    pub database: String,
    /// User, or `*`.
    pub user: String,
    /// The password.
    pub password: String,
}

impl Entry {
    /// The entry for `user` on every host, port and database.
    pub fn any_host(user: &str, password: &str) -> Entry {
        Entry {
            host: "*".to_string(),
            port: "*".to_string(),
            database: "*".to_string(),
            user: user.to_string(),
            password: password.to_string(),
        }
    }

    fn line(&self) -> String {
        [
            &self.host,
            &self.port,
            &self.database,
            &self.user,
            &self.password,
        ]
        .iter()
        .map(|f| escape(f))
        .collect::<Vec<_>>()
        .join(":")
    }

    fn matches(&self, host: &str, port: u16, database: &str, user: &str) -> bool {
        let field = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        field(&self.host, host)
            && field(&self.port, &port.to_string())
            && field(&self.database, database)
            && field(&self.user, user)
    }
}

/// A field with `\` and `:` escaped. A field never holds a line break: passwords are checked
/// by `fsm::vocab::password` and the other fields are names and hosts from the vocabulary.
fn escape(field: &str) -> String {
    field.replace('\\', "\\\\").replace(':', "\\:")
}

/// The fields of one line, unescaped; None for comments, blank or malformed lines.
fn parse_line(line: &str) -> Option<Entry> {
    if line.trim_start().starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), fields.last_mut()) {
                    last.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(last) = fields.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    let [host, port, database, user, password]: [String; 5] = fields.try_into().ok()?;
    Some(Entry {
        host,
        port,
        database,
        user,
        password,
    })
}

/// Every entry of `text`.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines().filter_map(parse_line).collect()
}

/// The text of a file holding `entries`.
pub fn render(entries: &[Entry]) -> String {
    let mut out = String::from("# Passwords of pg_autoctl's connections (libpq .pgpass format).\n");
    for entry in entries {
        out.push_str(&entry.line());
        out.push('\n');
    }
    out
}

/// The password of the first entry matching the connection, as libpq picks it.
pub fn lookup(
    entries: &[Entry],
    host: &str,
    port: u16,
    database: &str,
    user: &str,
) -> Option<String> {
    entries
        .iter()
        .find(|e| e.matches(host, port, database, user))
        .map(|e| e.password.clone())
}

/// The entries of the file at `path` (none when it does not exist).
pub fn read(path: &Path) -> io::Result<Vec<Entry>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse(&text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Makes the file at `path` hold `user`'s `password` (one entry for every host), or no entry
/// for `user` when `password` is None; other users' entries are kept. Returns whether the file
/// changed. Written atomically with mode 0600, as libpq requires.
pub fn set_password(path: &Path, user: &str, password: Option<&str>) -> io::Result<bool> {
    let current = read(path)?;
    let mut entries: Vec<Entry> = current.iter().filter(|e| e.user != user).cloned().collect();
    if let Some(password) = password {
        entries.insert(0, Entry::any_host(user, password));
    }
    if entries == current && path.exists() {
        return Ok(false);
    }
    write_atomically(path, render(&entries).as_bytes(), 0o600)?;
    Ok(true)
}

/// Adds (or replaces) `entry` for its host, port and user.
pub fn add(path: &Path, entry: Entry) -> io::Result<()> {
    let mut entries: Vec<Entry> = read(path)?
        .into_iter()
        .filter(|e| !(e.host == entry.host && e.port == entry.port && e.user == entry.user))
        .collect();
    entries.push(entry);
    write_atomically(path, render(&entries).as_bytes(), 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn fields_with_colons_and_backslashes_read_back() {
        let entry = Entry {
            host: "::1".to_string(),
            port: "5432".to_string(),
            database: "*".to_string(),
            user: "postgres".to_string(),
            password: "a:b\\c d'e\"f#".to_string(),
        };
        let text = render(std::slice::from_ref(&entry));
        assert_eq!(text.lines().count(), 2, "{text}");
        assert_eq!(parse(&text), vec![entry]);
        assert_eq!(
            lookup(&parse(&text), "::1", 5432, "postgres", "postgres").as_deref(),
            Some("a:b\\c d'e\"f#")
        );
        assert_eq!(lookup(&parse(&text), "::1", 5433, "x", "postgres"), None);
    }

    #[test]
    fn the_file_is_private_and_keeps_other_users() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/pgpass");
        add(
            &path,
            Entry {
                host: "localhost".to_string(),
                port: "5432".to_string(),
                database: "*".to_string(),
                user: "postgres".to_string(),
                password: "local".to_string(),
            },
        )
        .expect("add");
        assert!(set_password(&path, "repl", Some("s3cret")).expect("set"));
        assert!(!set_password(&path, "repl", Some("s3cret")).expect("same"));
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let entries = read(&path).expect("read");
        assert_eq!(
            lookup(&entries, "10.0.0.2", 6000, "replication", "repl").as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            lookup(&entries, "localhost", 5432, "postgres", "postgres").as_deref(),
            Some("local")
        );
        assert!(set_password(&path, "repl", None).expect("remove"));
        let entries = read(&path).expect("read");
        assert_eq!(lookup(&entries, "h", 1, "d", "repl"), None);
        assert_eq!(entries.len(), 1);
    }
}
