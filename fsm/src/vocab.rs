//! The vocabulary of values that cross a trust boundary: host names and addresses, node,
//! formation and cluster names, Postgres database and role names, ports, node ids, passwords.
//!
//! One definition of what is valid, used on both sides: the monitor refuses anything else at
//! its SQL API (so a bad value never reaches its tables), and the keeper checks again what the
//! monitor sends before it writes a file (the monitor may be older, or compromised). Each type
//! can only be built by its `parse`, so holding one is proof of validity; what a file needs on
//! top (quoting) is the writer's job, but no valid value needs more than quoting.
//!
//! The rules, and why:
//! - a **host** is an IPv4 or IPv6 literal, or a DNS name of RFC 1123 labels (letters, digits,
//!   hyphens, and underscores as container names use them) of at most 253 bytes. Never a
//!   CIDR, a `pg_hba.conf` keyword (`all`, `samehost`, `samenet`), a name starting with `.` or
//!   `-`, or a dotted number that the C library would read as an address (`127.1`, `0x7f`);
//! - **names** (nodes, formations, clusters) are printable: no control characters, no line or
//!   paragraph separators, no invisible or bidirectional formatting characters, no leading or
//!   trailing spaces, and bounded in bytes (node names 255 like 2.0's keeper buffers, formation
//!   and cluster names 63 like a Postgres identifier);
//! - **Postgres identifiers** (database and role names) are names of at most 63 bytes;
//! - **ports** are 1–65535; **node ids** are 1 to 2^31 − 1, because 2.0 keepers keep them in
//!   32 bits and a larger id would exhaust the id sequence;
//! - **passwords** hold no NUL and no line break (they could not be stored in a passfile),
//!   and at most 1,024 bytes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Longest host name (RFC 1123).
pub const MAX_HOST_BYTES: usize = 253;
/// Longest label of a host name (RFC 1123).
pub const MAX_LABEL_BYTES: usize = 63;
/// Longest node name (2.0's keeper keeps names in `_POSIX_HOST_NAME_MAX` bytes).
pub const MAX_NODE_NAME_BYTES: usize = 255;
/// Longest formation or cluster name, and longest Postgres identifier (NAMEDATALEN − 1).
pub const MAX_IDENTIFIER_BYTES: usize = 63;
/// Largest node id: 2.0 keepers store node ids as 32-bit integers.
pub const MAX_NODE_ID: i64 = i32::MAX as i64;
/// Longest password.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// How much of a refused value an error message shows.
const SHOWN_CHARS: usize = 64;

/// A value refused by the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {shown}: {reason}")]
pub struct VocabError {
    /// What the value was for (`node_host`, `--hostname`, ...).
    pub field: &'static str,
    /// The value as an error message may show it: quoted, escaped, truncated.
    pub shown: String,
    /// Why it is refused, and what is allowed.
    pub reason: String,
}

impl VocabError {
    fn new(field: &'static str, value: &str, reason: impl Into<String>) -> VocabError {
        VocabError {
            field,
            shown: shown(value),
            reason: reason.into(),
        }
    }

    fn number(field: &'static str, value: i64, reason: impl Into<String>) -> VocabError {
        VocabError {
            field,
            shown: value.to_string(),
            reason: reason.into(),
        }
    }

    /// The same refusal for another field name (the caller knows the value's role better).
    pub fn for_field(mut self, field: &'static str) -> VocabError {
        self.field = field;
        self
    }
}

impl From<VocabError> for crate::FsmError {
    fn from(e: VocabError) -> Self {
        crate::FsmError::invalid(e.to_string())
    }
}

/// `value` as an error message may show it: in double quotes, control and quote characters
/// escaped, at most [`SHOWN_CHARS`] characters.
pub fn shown(value: &str) -> String {
    let mut out = String::from("\"");
    for (i, c) in value.chars().enumerate() {
        if i == SHOWN_CHARS {
            out.push_str("...");
            break;
        }
        if is_unsafe_char(c) || c == '"' || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// `value` as a terminal or a log line may show it: the characters [`is_unsafe_char`]
/// refuses escaped (`\n`, `\u{202e}`), everything else as it is. For text that may come from
/// an older or compromised peer, which could otherwise forge lines.
pub fn printable(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.chars().any(is_unsafe_char) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if is_unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Characters no name may hold: controls (C0, C1, DEL), line and paragraph separators, and
/// invisible or bidirectional formatting characters that make a name display as another.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// Checks a printable, bounded name; `what` describes it in errors.
fn check_name(field: &'static str, value: &str, max_bytes: usize) -> Result<(), VocabError> {
    if value.is_empty() {
        return Err(VocabError::new(field, value, "must not be empty"));
    }
    if value.len() > max_bytes {
        return Err(VocabError::new(
            field,
            value,
            format!("{} bytes, at most {max_bytes} are allowed", value.len()),
        ));
    }
    if let Some(c) = value.chars().find(|c| is_unsafe_char(*c)) {
        return Err(VocabError::new(
            field,
            value,
            format!(
                "contains the character U+{:04X}: names may not hold control, line-break or \
                 invisible formatting characters",
                u32::from(c)
            ),
        ));
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Err(VocabError::new(field, value, "begins or ends with a space"));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Checks `value`.
            pub fn parse(value: &str) -> Result<$name, VocabError> {
                check_name($field, value, $max)?;
                Ok($name(value.to_string()))
            }

            /// The name.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = VocabError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }
    };
}

name_type!(
    /// A node's name (`pgautofailover.node.nodename`).
    NodeName,
    "node name",
    MAX_NODE_NAME_BYTES
);
name_type!(
    /// A formation's id (`pgautofailover.formation.formationid`).
    FormationId,
    "formation",
    MAX_IDENTIFIER_BYTES
);
name_type!(
    /// A node's cluster name (`pgautofailover.node.nodecluster`).
    ClusterName,
    "cluster name",
    MAX_IDENTIFIER_BYTES
);
name_type!(
    /// A Postgres database or role name, as the keeper writes it into `pg_hba.conf` and SQL.
    PgIdentifier,
    "identifier",
    MAX_IDENTIFIER_BYTES
);

/// A host other nodes and the monitor reach a node at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address.
    V6(Ipv6Addr),
    /// A DNS name.
    Name(String),
}

impl Host {
    /// Checks `value`: an IP literal or a DNS name (see the module's rules).
    pub fn parse(value: &str) -> Result<Host, VocabError> {
        const FIELD: &str = "host";
        if value.is_empty() {
            return Err(VocabError::new(FIELD, value, "must not be empty"));
        }
        if value.len() > MAX_HOST_BYTES {
            return Err(VocabError::new(
                FIELD,
                value,
                format!(
                    "{} bytes, a host name has at most {MAX_HOST_BYTES}",
                    value.len()
                ),
            ));
        }
        if let Ok(ip) = value.parse::<Ipv4Addr>() {
            return Ok(Host::V4(ip));
        }
        if let Ok(ip) = value.parse::<Ipv6Addr>() {
            return Ok(Host::V6(ip));
        }
        let refuse = |reason: &str| {
            Err(VocabError::new(
                FIELD,
                value,
                format!("{reason}: expected an IP address or a DNS host name"),
            ))
        };
        if value.contains('/') {
            return refuse("a network (CIDR) is not a host");
        }
        if ["all", "samehost", "samenet"]
            .iter()
            .any(|k| value.eq_ignore_ascii_case(k))
        {
            return refuse("a pg_hba.conf keyword is not a host");
        }
        let labels: Vec<&str> = value.split('.').collect();
        for label in &labels {
            if label.is_empty() {
                return refuse("empty label (a name may not start or end with '.', nor hold '..')");
            }
            if label.len() > MAX_LABEL_BYTES {
                return refuse("a label is longer than 63 bytes");
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return refuse("only letters, digits, '-', '_' and '.' may appear in a host name");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return refuse("a label may not start or end with '-'");
            }
        }
        // the C library reads "127.1", "10" or "0x7f.1" as addresses: such a name would mean
        // an address in pg_hba.conf and a connection string
        let last = labels.last().copied().unwrap_or_default();
        let hex = last
            .strip_prefix("0x")
            .or_else(|| last.strip_prefix("0X"))
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
        if last.bytes().all(|b| b.is_ascii_digit()) || hex {
            return refuse("a numeric last label reads as an address");
        }
        Ok(Host::Name(value.to_string()))
    }

    /// The IP address, when the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::V4(ip) => Some(IpAddr::V4(*ip)),
            Host::V6(ip) => Some(IpAddr::V6(*ip)),
            Host::Name(_) => None,
        }
    }

    /// The host as it goes in the authority part of a URI: IPv6 in brackets.
    pub fn uri_authority(&self) -> String {
        match self {
            Host::V6(ip) => format!("[{ip}]"),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::V4(ip) => write!(f, "{ip}"),
            Host::V6(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

impl FromStr for Host {
    type Err = VocabError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Host::parse(s)
    }
}

/// A network in CIDR notation (`10.0.0.0/24`), as `pg_hba.conf` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length: at most 32 for IPv4, 128 for IPv6.
    pub prefix: u8,
}

impl Cidr {
    /// Checks `value`: `address/prefix`, or a bare address (a single host).
    pub fn parse(value: &str) -> Result<Cidr, VocabError> {
        const FIELD: &str = "network";
        let (addr, prefix) = match value.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (value, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            VocabError::new(
                FIELD,
                value,
                "expected an IP address, optionally with /prefix",
            )
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => {
                    return Err(VocabError::new(
                        FIELD,
                        value,
                        format!("the prefix length must be a number from 0 to {max}"),
                    ));
                }
            },
        };
        Ok(Cidr { addr, prefix })
    }

    /// The network of a single address.
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr {
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Checks a TCP port given as any integer: 1 to 65535.
pub fn port(field: &'static str, value: i64) -> Result<u16, VocabError> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| VocabError::number(field, value, "expected a TCP port between 1 and 65535"))
}

/// Checks a node id: 1 to [`MAX_NODE_ID`].
pub fn node_id(field: &'static str, value: i64) -> Result<i64, VocabError> {
    if (1..=MAX_NODE_ID).contains(&value) {
        Ok(value)
    } else {
        Err(VocabError::number(
            field,
            value,
            format!("a node id is between 1 and {MAX_NODE_ID}"),
        ))
    }
}

/// Checks a password: no NUL, no line break, at most [`MAX_PASSWORD_BYTES`]. The error never
/// shows the value.
pub fn password(field: &'static str, value: &str) -> Result<(), VocabError> {
    let refuse = |reason: &str| {
        Err(VocabError {
            field,
            shown: "(hidden)".to_string(),
            reason: reason.to_string(),
        })
    };
    if value.len() > MAX_PASSWORD_BYTES {
        return refuse("longer than 1024 bytes");
    }
    if value.contains(['\0', '\n', '\r']) {
        return refuse("a password may not hold a NUL or line-break character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_addresses_or_dns_names() {
        assert_eq!(
            Host::parse("10.0.0.1"),
            Ok(Host::V4(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert_eq!(Host::parse("::1"), Ok(Host::V6(Ipv6Addr::LOCALHOST)));
        for ok in [
            "db1",
            "db-1.example.com",
            "localhost",
            "pg_node_1",
            "x1.y2",
            "a.b.c.d.e",
            "1db.example.com",
            "ip-10-0-0-1.eu-west-1.compute.internal",
        ] {
            assert_eq!(Host::parse(ok), Ok(Host::Name(ok.to_string())), "{ok}");
        }
        for bad in [
            "",
            "0.0.0.0/0",
            "10.0.0.0/8",
            "all",
            "SameNet",
            "samehost",
            ".example.com",
            "example.com.",
            "a..b",
            "-db",
            "db-",
            "db 1",
            "db\n1",
            "db1\nhost all all 0.0.0.0/0 trust",
            "127.1",
            "10",
            "0x7f",
            "1.2.3.0x10",
            "010.0.0.1",
            "fe80::1%eth0",
            "[::1]",
            "db'1",
            "db\"1",
            "db#1",
            "db,1",
            "éxample.com",
        ] {
            assert!(Host::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long_label = "a".repeat(64);
        assert!(Host::parse(&long_label).is_err());
        let long = vec!["a".repeat(63); 5].join(".");
        assert!(long.len() > MAX_HOST_BYTES);
        assert!(Host::parse(&long).is_err());
    }

    #[test]
    fn ipv6_hosts_are_bracketed_in_uris() {
        assert_eq!(
            Host::parse("fe80::1").expect("v6").uri_authority(),
            "[fe80::1]"
        );
        assert_eq!(Host::parse("db1").expect("name").uri_authority(), "db1");
    }

    #[test]
    fn names_are_printable_and_bounded() {
        for ok in [
            "node_1", "my node", "nœud-α", "a\"b", "a'b", "a#b", "a/b", "x",
        ] {
            assert!(NodeName::parse(ok).is_ok(), "{ok:?}");
            assert!(FormationId::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            "a\nb",
            "a\rb",
            "a\tb",
            "a\u{0}b",
            "a\u{7f}b",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{202e}b",
            "a\u{200b}b",
            " a",
            "a ",
        ] {
            assert!(NodeName::parse(bad).is_err(), "{bad:?} accepted");
            assert!(PgIdentifier::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(NodeName::parse(&"n".repeat(255)).is_ok());
        assert!(NodeName::parse(&"n".repeat(256)).is_err());
        assert!(FormationId::parse(&"f".repeat(63)).is_ok());
        assert!(FormationId::parse(&"f".repeat(64)).is_err());
        // bytes, not characters
        assert!(PgIdentifier::parse(&"é".repeat(32)).is_err());
    }

    #[test]
    fn errors_show_a_bounded_escaped_value() {
        let err = NodeName::parse("a\nb").expect_err("newline");
        assert_eq!(err.shown, "\"a\\nb\"");
        assert!(err.to_string().starts_with("invalid node name \"a\\nb\": "));
        let err = Host::parse(&"x".repeat(10_000)).expect_err("long");
        assert!(err.to_string().len() < 200, "{err}");
        let err = password("replication.password", "s3cret\n").expect_err("newline");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert_eq!(err.shown, "(hidden)");
    }

    #[test]
    fn printable_escapes_only_what_could_forge_a_line() {
        assert_eq!(printable("node_1 é"), "node_1 é");
        assert_eq!(printable("a\nb\u{202e}"), "a\\nb\\u{202e}");
    }

    #[test]
    fn ports_ids_and_networks_have_ranges() {
        assert_eq!(port("node_port", 5432), Ok(5432));
        assert!(port("node_port", 0).is_err());
        assert!(port("node_port", 65536).is_err());
        assert!(port("node_port", -1).is_err());
        assert_eq!(node_id("desired_node_id", 1), Ok(1));
        assert_eq!(node_id("desired_node_id", MAX_NODE_ID), Ok(MAX_NODE_ID));
        assert!(node_id("desired_node_id", MAX_NODE_ID + 1).is_err());
        assert!(node_id("desired_node_id", i64::MAX).is_err());
        assert!(node_id("desired_node_id", 0).is_err());
        assert_eq!(
            Cidr::parse("10.0.0.0/24").map(|c| c.to_string()),
            Ok("10.0.0.0/24".to_string())
        );
        assert_eq!(
            Cidr::parse("10.0.0.7").map(|c| c.to_string()),
            Ok("10.0.0.7/32".to_string())
        );
        assert_eq!(
            Cidr::parse("fe80::/64").map(|c| c.to_string()),
            Ok("fe80::/64".to_string())
        );
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "db1/24",
            "10.0.0.0/24\nx",
            "::/129",
            "10.0.0.0/+8",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_refuse_line_breaks_and_nul() {
        assert!(password("p", "s3cret 'with' \\ quotes: and #").is_ok());
        for bad in ["a\nb", "a\rb", "a\0b"] {
            assert!(password("p", bad).is_err());
        }
        assert!(password("p", &"x".repeat(1025)).is_err());
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// Strings built from the characters that mean something in the files values reach.
        fn hostile() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z0-9.:/_#,@+ \"'\\\\\n\r\t-]{0,40}",
                "[a\u{0}\u{85}\u{2028}\u{202e}\u{feff}é. ]{0,12}",
                any::<String>(),
            ]
        }

        proptest! {
            #![proptest_config(crate::proptests::config(2000))]

            #[test]
            fn an_accepted_host_is_a_plain_word(value in hostile()) {
                if let Ok(host) = Host::parse(&value) {
                    let text = host.to_string();
                    prop_assert_eq!(Host::parse(&text), Ok(host.clone()));
                    prop_assert!(!text.is_empty() && text.len() <= MAX_HOST_BYTES);
                    prop_assert!(text.bytes().all(|b| b.is_ascii_alphanumeric()
                        || matches!(b, b'.' | b'-' | b'_' | b':')), "{:?}", text);
                    prop_assert!(!text.starts_with(['-', '.']));
                }
            }

            #[test]
            fn an_accepted_name_holds_no_line_break_or_control(value in hostile()) {
                for accepted in [
                    NodeName::parse(&value).map(|n| n.to_string()),
                    FormationId::parse(&value).map(|n| n.to_string()),
                    PgIdentifier::parse(&value).map(|n| n.to_string()),
                ]
                .into_iter()
                .flatten()
                {
                    prop_assert!(!accepted.chars().any(is_unsafe_char));
                    prop_assert!(!accepted.contains(['\n', '\r', '\0']));
                    prop_assert!(accepted.len() <= MAX_NODE_NAME_BYTES);
                }
            }

            #[test]
            fn an_error_message_is_one_bounded_line(value in hostile()) {
                if let Err(e) = NodeName::parse(&value) {
                    let text = e.to_string();
                    prop_assert!(!text.chars().any(is_unsafe_char), "{:?}", text);
                    prop_assert!(text.len() < 600);
                }
            }
        }
    }
}
