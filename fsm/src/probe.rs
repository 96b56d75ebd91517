//! The monitor's health probe, without the sockets: what to send, how to read the answer, and
//! when to retry or give up.
//!
//! A probe opens a TCP connection to the node's Postgres and sends a startup packet for user
//! `pgautofailover_monitor`, database `postgres`. Postgres answering at all proves it is up: an
//! authentication request, or any error except `57P03` (cannot_connect_now: starting up or
//! shutting down). A node failing `max_retries + 1` attempts in a row, `retry_delay` apart, is
//! marked bad; a single success marks it good.

/// The role the probe presents (2.0 adds a `trust` HBA rule for it on every node).
pub const PROBE_USER: &str = "pgautofailover_monitor";

/// The database the probe asks for.
pub const PROBE_DATABASE: &str = "postgres";

/// The SQLSTATE Postgres sends while it cannot accept connections yet.
pub const CANNOT_CONNECT_NOW: &str = "57P03";

/// The frontend Terminate message, sent before closing so the server logs no error.
pub const TERMINATE: [u8; 5] = [b'X', 0, 0, 0, 4];

/// A protocol 3.0 startup packet for `user` and `database`.
pub fn startup_message(user: &str, database: &str, application_name: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
    for (key, value) in [
        ("user", user),
        ("database", database),
        ("application_name", application_name),
    ] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let len = u32::try_from(body.len() + 4).unwrap_or(u32::MAX);
    let mut packet = len.to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

/// What the first message a server sent says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// More bytes are needed to decide.
    Incomplete,
    /// Postgres answered and accepts connections (auth request, or an error other than 57P03).
    Up,
    /// Postgres answered but cannot accept connections now (57P03).
    NotReady,
    /// Something answered that is not Postgres.
    NotPostgres,
}

/// Classifies the bytes received so far after the startup packet.
pub fn classify(received: &[u8]) -> Reply {
    let Some(&kind) = received.first() else {
        return Reply::Incomplete;
    };
    match kind {
        // Authentication request (or AuthenticationOk), NegotiateProtocolVersion.
        b'R' | b'v' => Reply::Up,
        b'E' => {
            let Some(len) = received.get(1..5) else {
                return Reply::Incomplete;
            };
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if !(4..=65_536).contains(&len) {
                return Reply::NotPostgres;
            }
            let Some(body) = received.get(5..1 + len) else {
                return Reply::Incomplete;
            };
            match error_code(body) {
                Some(code) if code == CANNOT_CONNECT_NOW => Reply::NotReady,
                _ => Reply::Up,
            }
        }
        _ => Reply::NotPostgres,
    }
}

/// The SQLSTATE (`C` field) of an ErrorResponse body.
fn error_code(body: &[u8]) -> Option<String> {
    let mut rest = body;
    while let Some((&field, tail)) = rest.split_first() {
        if field == 0 {
            break;
        }
        let end = tail.iter().position(|b| *b == 0)?;
        if field == b'C' {
            return Some(String::from_utf8_lossy(&tail[..end]).into_owned());
        }
        rest = &tail[end + 1..];
    }
    None
}

/// Timing of a probe round, from the `health_check_*` settings (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbePolicy {
    /// `health_check_timeout`: how long one attempt may take.
    pub timeout_ms: u64,
    /// `health_check_max_retries`: attempts after the first failed one.
    pub max_retries: u32,
    /// `health_check_retry_delay`: pause between attempts.
    pub retry_delay_ms: u64,
}

impl ProbePolicy {
    /// The longest a round can take for one node that never answers.
    pub fn worst_case_ms(&self) -> u64 {
        let attempts = u64::from(self.max_retries) + 1;
        attempts * self.timeout_ms + u64::from(self.max_retries) * self.retry_delay_ms
    }
}

/// Where one node's probe stands within a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeStep {
    /// Start an attempt now; it fails if not answered by `deadline_ms`.
    Attempt {
        /// When this attempt times out.
        deadline_ms: u64,
    },
    /// Wait, then start the next attempt at `at_ms`.
    RetryAt {
        /// When to try again.
        at_ms: u64,
    },
    /// The round is over for this node.
    Done {
        /// Whether Postgres answered.
        healthy: bool,
    },
}

/// Counts one node's attempts within a round and decides what comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTracker {
    policy: ProbePolicy,
    failures: u32,
    step: ProbeStep,
}

impl ProbeTracker {
    /// A round starting at `now_ms` with a first attempt.
    pub fn start(policy: ProbePolicy, now_ms: u64) -> Self {
        ProbeTracker {
            policy,
            failures: 0,
            step: ProbeStep::Attempt {
                deadline_ms: now_ms + policy.timeout_ms,
            },
        }
    }

    /// The current step.
    pub fn step(&self) -> ProbeStep {
        self.step
    }

    /// Failed attempts so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The attempt succeeded.
    pub fn succeeded(&mut self) -> ProbeStep {
        self.step = ProbeStep::Done { healthy: true };
        self.step
    }

    /// The attempt failed (refused, timed out, not ready): retry later or give up.
    pub fn failed(&mut self, now_ms: u64) -> ProbeStep {
        self.failures += 1;
        self.step = if self.failures > self.policy.max_retries {
            ProbeStep::Done { healthy: false }
        } else {
            ProbeStep::RetryAt {
                at_ms: now_ms + self.policy.retry_delay_ms,
            }
        };
        self.step
    }

    /// The retry delay is over: start the next attempt.
    pub fn retry(&mut self, now_ms: u64) -> ProbeStep {
        if let ProbeStep::RetryAt { .. } = self.step {
            self.step = ProbeStep::Attempt {
                deadline_ms: now_ms + self.policy.timeout_ms,
            };
        }
        self.step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_response(code: &str) -> Vec<u8> {
        let mut body = Vec::new();
        body.push(b'S');
        body.extend_from_slice(b"FATAL\0");
        body.push(b'C');
        body.extend_from_slice(code.as_bytes());
        body.push(0);
        body.push(b'M');
        body.extend_from_slice(b"the database system is starting up\0");
        body.push(0);
        let mut msg = vec![b'E'];
        msg.extend_from_slice(&u32::try_from(body.len() + 4).unwrap_or(0).to_be_bytes());
        msg.extend_from_slice(&body);
        msg
    }

    #[test]
    fn startup_message_has_its_length_and_protocol() {
        let msg = startup_message("u", "d", "a");
        let len = u32::from_be_bytes([msg[0], msg[1], msg[2], msg[3]]) as usize;
        assert_eq!(len, msg.len());
        assert_eq!(&msg[4..8], &[0, 3, 0, 0]);
        assert!(msg.ends_with(b"application_name\0a\0\0"));
    }

    #[test]
    fn auth_request_means_up() {
        assert_eq!(classify(&[b'R', 0, 0, 0, 8, 0, 0, 0, 5]), Reply::Up);
        assert_eq!(classify(b"R"), Reply::Up);
    }

    #[test]
    fn starting_up_is_not_ready_other_errors_are_up() {
        assert_eq!(classify(&error_response("57P03")), Reply::NotReady);
        // no pg_hba.conf entry: Postgres runs, it just refuses us
        assert_eq!(classify(&error_response("28000")), Reply::Up);
        // too many connections: still up
        assert_eq!(classify(&error_response("53300")), Reply::Up);
    }

    #[test]
    fn partial_error_waits_for_more_bytes() {
        let full = error_response("57P03");
        assert_eq!(classify(&full[..3]), Reply::Incomplete);
        assert_eq!(classify(&full[..full.len() - 1]), Reply::Incomplete);
        assert_eq!(classify(&[]), Reply::Incomplete);
    }

    #[test]
    fn garbage_is_not_postgres() {
        assert_eq!(classify(b"HTTP/1.1 400"), Reply::NotPostgres);
        assert_eq!(
            classify(&[b'E', 0xff, 0xff, 0xff, 0xff]),
            Reply::NotPostgres
        );
    }

    #[test]
    fn gives_up_after_max_retries_plus_one_failures() {
        let policy = ProbePolicy {
            timeout_ms: 5_000,
            max_retries: 2,
            retry_delay_ms: 2_000,
        };
        let mut t = ProbeTracker::start(policy, 0);
        assert_eq!(t.step(), ProbeStep::Attempt { deadline_ms: 5_000 });
        assert_eq!(t.failed(5_000), ProbeStep::RetryAt { at_ms: 7_000 });
        assert_eq!(
            t.retry(7_000),
            ProbeStep::Attempt {
                deadline_ms: 12_000
            }
        );
        assert_eq!(t.failed(12_000), ProbeStep::RetryAt { at_ms: 14_000 });
        assert_eq!(
            t.retry(14_000),
            ProbeStep::Attempt {
                deadline_ms: 19_000
            }
        );
        assert_eq!(t.failed(19_000), ProbeStep::Done { healthy: false });
        assert_eq!(t.failures(), 3);
        // the worst case matches: 3 timeouts and 2 delays
        assert_eq!(policy.worst_case_ms(), 19_000);
    }

    #[test]
    fn one_success_is_enough() {
        let policy = ProbePolicy {
            timeout_ms: 1_000,
            max_retries: 1,
            retry_delay_ms: 500,
        };
        let mut t = ProbeTracker::start(policy, 0);
        t.failed(10);
        t.retry(510);
        assert_eq!(t.succeeded(), ProbeStep::Done { healthy: true });
    }
}
