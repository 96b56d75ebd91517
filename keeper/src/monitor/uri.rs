//! Postgres connection URIs (`postgres://user:password@host1:port1,host2:port2/db?k=v`):
//! parsing, checking, building a client configuration, and printing without the password.
//!
//! Parsed here rather than by the client library so that every parameter libpq users put in a
//! pg_auto_failover URI (`sslrootcert`, `sslcrl`, `verify-full`, several hosts) is understood
//! or refused with a clear message, and so that a password never reaches a log.

use std::fmt;
use std::time::Duration;

/// A parsed connection URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgUri {
    /// The user name, if given.
    pub user: Option<String>,
    /// The password, if given. Never printed.
    pub password: Option<String>,
    /// Hosts with their optional ports, in order.
    pub hosts: Vec<(String, Option<u16>)>,
    /// The database name, if given.
    pub dbname: Option<String>,
    /// Query parameters, decoded, in order.
    pub params: Vec<(String, String)>,
}

/// Why a URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Not a postgres:// or postgresql:// URI.
    #[error("\"{0}\" is not a postgres:// URI")]
    NotAUri(String),
    /// A port that is not a number from 1 to 65535.
    #[error("invalid port \"{port}\" for host \"{host}\"")]
    BadPort {
        /// The host.
        host: String,
        /// What was written.
        port: String,
    },
    /// A host list with an empty entry.
    #[error("the URI names no host")]
    NoHost,
    /// A `%` escape that is not two hexadecimal digits.
    #[error("invalid percent-encoding in \"{0}\"")]
    BadEscape(String),
    /// A parameter libpq does not have, or that we do not support.
    #[error("unknown connection parameter \"{0}\"")]
    UnknownParameter(String),
    /// A parameter with a value it does not accept.
    #[error("invalid value \"{value}\" for connection parameter \"{name}\"")]
    BadValue {
        /// The parameter.
        name: String,
        /// The value.
        value: String,
    },
}

/// Parameters accepted in a URI; others are refused so that a typo does not go unnoticed.
const KNOWN_PARAMS: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "sslcrl",
    "sslcert",
    "sslkey",
    "target_session_attrs",
    "connect_timeout",
    "application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "options",
    "password",
    "user",
    "dbname",
    "host",
    "port",
];

/// libpq's sslmode values (also the choices of the `ssl.sslmode` setting).
pub const SSL_MODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

impl PgUri {
    /// Parses and checks `text`.
    pub fn parse(text: &str) -> Result<PgUri, UriError> {
        let rest = text
            .strip_prefix("postgresql://")
            .or_else(|| text.strip_prefix("postgres://"))
            .ok_or_else(|| UriError::NotAUri(redact_text(text)))?;
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
        let (userinfo, hostlist) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (non_empty(decode(u)?), Some(decode(p)?)),
                None => (non_empty(decode(info)?), None),
            },
        };
        let mut hosts = Vec::new();
        if !hostlist.is_empty() {
            for entry in hostlist.split(',') {
                hosts.push(parse_host(entry)?);
            }
        }
        let mut uri = PgUri {
            user,
            password,
            hosts,
            dbname: non_empty(decode(path)?),
            params: Vec::new(),
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name)?;
            let value = decode(value)?;
            uri.check_param(&name, &value)?;
            match name.as_str() {
                "user" => uri.user = Some(value),
                "password" => uri.password = Some(value),
                "dbname" => uri.dbname = Some(value),
                "host" => uri.hosts = vec![(value, None)],
                "port" => {
                    let port = parse_port("", &value)?;
                    for host in &mut uri.hosts {
                        host.1 = Some(port);
                    }
                }
                _ => uri.params.push((name, value)),
            }
        }
        if uri.hosts.is_empty() {
            return Err(UriError::NoHost);
        }
        Ok(uri)
    }

    fn check_param(&self, name: &str, value: &str) -> Result<(), UriError> {
        if !KNOWN_PARAMS.contains(&name) {
            return Err(UriError::UnknownParameter(name.to_string()));
        }
        let bad = || UriError::BadValue {
            name: name.to_string(),
            value: value.to_string(),
        };
        match name {
            "sslmode" if !SSL_MODES.contains(&value) => Err(bad()),
            "target_session_attrs" if !matches!(value, "any" | "read-write") => Err(bad()),
            "connect_timeout"
            | "keepalives_idle"
            | "keepalives_interval"
            | "keepalives_count"
            | "tcp_user_timeout"
            | "keepalives"
                if value.parse::<u32>().is_err() =>
            {
                Err(bad())
            }
            _ => Ok(()),
        }
    }

    /// The value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets parameter `name`, replacing an earlier value.
    pub fn set_param(&mut self, name: &str, value: &str) {
        self.params.retain(|(n, _)| n != name);
        self.params.push((name.to_string(), value.to_string()));
    }

    /// A client configuration for this URI (the certificate checks of `verify-ca` and
    /// `verify-full` are the TLS connector's, see `monitor::tls`).
    pub fn client_config(
        &self,
        application_name: &str,
    ) -> Result<tokio_postgres::Config, UriError> {
        use tokio_postgres::config::{SslMode, TargetSessionAttrs};
        let mut config = tokio_postgres::Config::new();
        for (host, port) in &self.hosts {
            config.host(host);
            config.port(port.unwrap_or(5432));
        }
        if let Some(user) = &self.user {
            config.user(user);
        }
        if let Some(password) = &self.password {
            config.password(password);
        }
        if let Some(db) = &self.dbname {
            config.dbname(db);
        }
        config.application_name(application_name);
        config.connect_timeout(Duration::from_secs(2));
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(5));
        config.keepalives_interval(Duration::from_secs(2));
        config.keepalives_retries(3);
        config.tcp_user_timeout(Duration::from_secs(5));
        for (name, value) in &self.params {
            let secs = || Duration::from_secs(value.parse::<u64>().unwrap_or(0));
            match name.as_str() {
                "sslmode" => {
                    config.ssl_mode(match value.as_str() {
                        "disable" => SslMode::Disable,
                        "allow" | "prefer" => SslMode::Prefer,
                        _ => SslMode::Require,
                    });
                }
                "target_session_attrs" => {
                    config.target_session_attrs(if value == "read-write" {
                        TargetSessionAttrs::ReadWrite
                    } else {
                        TargetSessionAttrs::Any
                    });
                }
                "connect_timeout" => {
                    config.connect_timeout(secs());
                }
                "application_name" => {
                    config.application_name(value);
                }
                "keepalives" => {
                    config.keepalives(value != "0");
                }
                "keepalives_idle" => {
                    config.keepalives_idle(secs());
                }
                "keepalives_interval" => {
                    config.keepalives_interval(secs());
                }
                "keepalives_count" => {
                    config.keepalives_retries(value.parse().unwrap_or(3));
                }
                "tcp_user_timeout" => {
                    config.tcp_user_timeout(Duration::from_millis(value.parse().unwrap_or(0)));
                }
                "options" => {
                    config.options(value);
                }
                _ => {}
            }
        }
        // the session never follows a search_path the monitor database sets for its users
        let options = match config.get_options() {
            Some(o) if !o.is_empty() => format!("{o} -c search_path=pg_catalog"),
            _ => "-c search_path=pg_catalog".to_string(),
        };
        config.options(&options);
        if self.password.is_none()
            && let Some(password) = self.password_from_passfile()
        {
            config.password(password);
        }
        Ok(config)
    }

    /// The password libpq would take from the password file (`PGPASSFILE`, else
    /// `~/.pgpass`) for this URI's first host, when the file is private (mode 0600 or
    /// stricter, as libpq requires).
    fn password_from_passfile(&self) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::var_os("PGPASSFILE")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".pgpass"))
            })?;
        let mode = std::fs::metadata(&path).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "password file has group or world access: ignored");
            return None;
        }
        let entries = crate::postgres::passfile::read(&path).ok()?;
        let (host, port) = self.hosts.first()?;
        let user = self
            .user
            .clone()
            .unwrap_or_else(crate::os_user::current_user_name);
        let dbname = self.dbname.clone().unwrap_or_else(|| user.clone());
        crate::postgres::passfile::lookup(&entries, host, port.unwrap_or(5432), &dbname, &user)
    }

    /// The URI written back, with the password left out.
    pub fn redacted(&self) -> String {
        self.render(true)
    }

    /// The URI written back, password included.
    pub fn to_uri_string(&self) -> String {
        self.render(false)
    }

    fn render(&self, hide_password: bool) -> String {
        let mut out = String::from("postgres://");
        if let Some(user) = &self.user {
            out.push_str(&encode(user));
            if self.password.is_some() {
                out.push(':');
                out.push_str(if hide_password {
                    "****"
                } else {
                    self.password.as_deref().unwrap_or("")
                });
            }
            out.push('@');
        }
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|(h, p)| {
                let host = if h.contains(':') {
                    format!("[{h}]")
                } else {
                    h.clone()
                };
                match p {
                    Some(p) => format!("{host}:{p}"),
                    None => host,
                }
            })
            .collect();
        out.push_str(&hosts.join(","));
        out.push('/');
        if let Some(db) = &self.dbname {
            out.push_str(&encode(db));
        }
        if !self.params.is_empty() {
            let params: Vec<String> = self
                .params
                .iter()
                .map(|(n, v)| format!("{n}={}", encode(v)))
                .collect();
            out.push('?');
            out.push_str(&params.join("&"));
        }
        out
    }
}

impl fmt::Display for PgUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// `text` with anything between `://user:` and `@` hidden, for messages about a URI that did
/// not parse.
pub fn redact_text(text: &str) -> String {
    if let Some((scheme, rest)) = text.split_once("://")
        && let Some((userinfo, tail)) = rest.split_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:****@{tail}");
    }
    text.to_string()
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn parse_host(entry: &str) -> Result<(String, Option<u16>), UriError> {
    if entry.is_empty() {
        return Err(UriError::NoHost);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(UriError::NoHost)?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(host, p)?),
            None => None,
        };
        return Ok((host.to_string(), port));
    }
    match entry.rsplit_once(':') {
        Some((host, port)) => Ok((decode(host)?, Some(parse_port(host, port)?))),
        None => Ok((decode(entry)?, None)),
    }
}

fn parse_port(host: &str, port: &str) -> Result<u16, UriError> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(UriError::BadPort {
            host: host.to_string(),
            port: port.to_string(),
        }),
    }
}

fn decode(s: &str) -> Result<String, UriError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| UriError::BadEscape(s.to_string()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UriError::BadEscape(s.to_string()))
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_multi_host_monitor_uri() {
        let uri = PgUri::parse(
            "postgres://autoctl_node:p%40ss@m1:5432,m2:6000/pg_auto_failover?target_session_attrs=read-write&sslmode=prefer",
        )
        .expect("valid");
        assert_eq!(uri.user.as_deref(), Some("autoctl_node"));
        assert_eq!(uri.password.as_deref(), Some("p@ss"));
        assert_eq!(
            uri.hosts,
            vec![
                ("m1".to_string(), Some(5432)),
                ("m2".to_string(), Some(6000))
            ]
        );
        assert_eq!(uri.dbname.as_deref(), Some("pg_auto_failover"));
        assert_eq!(uri.param("target_session_attrs"), Some("read-write"));
        let config = uri.client_config("pg_autoctl").expect("config");
        assert_eq!(config.get_hosts().len(), 2);
        assert_eq!(config.get_ports(), &[5432, 6000]);
    }

    #[test]
    fn the_password_never_shows_when_printed() {
        let uri = PgUri::parse("postgresql://u:secret@h/db").expect("valid");
        assert_eq!(uri.to_string(), "postgres://u:****@h/db");
        assert!(!format!("{uri}").contains("secret"));
        assert_eq!(
            redact_text("postgres://u:secret@h:x/db"),
            "postgres://u:****@h:x/db"
        );
        let err = PgUri::parse("postgres://u:secret@h:x/db").expect_err("bad port");
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn ipv6_hosts_and_defaults() {
        let uri = PgUri::parse("postgres://[::1]:5433,localhost/").expect("valid");
        assert_eq!(
            uri.hosts,
            vec![
                ("::1".to_string(), Some(5433)),
                ("localhost".to_string(), None)
            ]
        );
        assert_eq!(uri.dbname, None);
        assert_eq!(uri.redacted(), "postgres://[::1]:5433,localhost/");
    }

    #[test]
    fn bad_uris_say_what_is_wrong() {
        assert!(matches!(
            PgUri::parse("host=m1 port=5432"),
            Err(UriError::NotAUri(_))
        ));
        assert!(matches!(
            PgUri::parse("postgres://m1:99999/db"),
            Err(UriError::BadPort { .. })
        ));
        assert!(matches!(
            PgUri::parse("postgres:///db"),
            Err(UriError::NoHost)
        ));
        assert!(matches!(
            PgUri::parse("postgres://m1/db?sslmod=require"),
            Err(UriError::UnknownParameter(_))
        ));
        assert!(matches!(
            PgUri::parse("postgres://m1/db?sslmode=always"),
            Err(UriError::BadValue { .. })
        ));
        assert!(PgUri::parse("postgres://m1/d%zzb").is_err());
    }

    #[test]
    fn round_trips_through_its_string() {
        let text = "postgres://autoctl_node@127.0.0.1:5000/pg_auto_failover?sslmode=prefer";
        let uri = PgUri::parse(text).expect("valid");
        assert_eq!(uri.to_uri_string(), text);
        assert_eq!(PgUri::parse(&uri.to_uri_string()).expect("again"), uri);
    }
}
