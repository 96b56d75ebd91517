//! Probing many nodes at once on the worker's main thread: non-blocking sockets and `poll()`.
//!
//! The protocol and the retry schedule are decided by `fsm::probe`; this module only moves the
//! bytes. No thread is started: Postgres forbids calling into it from other threads, and
//! the probe needs no Postgres call while sockets are in flight.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsFd;
use std::time::Instant;

use fsm::probe::{self, ProbePolicy, ProbeStep, ProbeTracker, Reply};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use socket2::{Domain, Protocol, Socket, Type};

/// A node to probe.
#[derive(Debug, Clone)]
pub struct Target {
    /// Node id.
    pub node_id: i64,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: i32,
}

/// Where one node's probe stands.
enum Phase {
    /// Waiting to start an attempt.
    Idle,
    /// Connecting, or waiting for the reply.
    InFlight {
        socket: Socket,
        sent: bool,
        received: Vec<u8>,
    },
    /// Finished with this verdict.
    Done(bool),
}

struct Probe {
    addr: Option<SocketAddr>,
    /// None until the first attempt starts.
    tracker: Option<ProbeTracker>,
    phase: Phase,
}

/// At most this many connections in flight at once, to stay well within the process's file
/// descriptor limit however many nodes there are; the others wait for a free slot.
const MAX_IN_FLIGHT: usize = 256;

fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn resolve(target: &Target) -> Option<SocketAddr> {
    let port = u16::try_from(target.port).ok()?;
    (target.host.as_str(), port).to_socket_addrs().ok()?.next()
}

fn connect(addr: SocketAddr) -> Option<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).ok()?;
    socket.set_nonblocking(true).ok()?;
    match socket.connect(&addr.into()) {
        Ok(()) => Some(socket),
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EINPROGRESS as i32) => Some(socket),
        Err(_) => None,
    }
}

impl Probe {
    /// Starts an attempt now; a socket that cannot even be created fails the attempt.
    fn start_attempt(&mut self, now_ms: u64) {
        match self.addr.and_then(connect) {
            Some(socket) => {
                self.phase = Phase::InFlight {
                    socket,
                    sent: false,
                    received: Vec::new(),
                }
            }
            None => self.fail(now_ms),
        }
    }

    fn fail(&mut self, now_ms: u64) {
        let step = self.tracker.as_mut().map(|t| t.failed(now_ms));
        self.phase = match step {
            Some(ProbeStep::Done { healthy }) => Phase::Done(healthy),
            _ => Phase::Idle,
        };
    }

    /// The tracker's step, or `Attempt` due now for a probe not started yet.
    fn step(&self) -> Option<ProbeStep> {
        self.tracker.as_ref().map(ProbeTracker::step)
    }

    fn succeed(&mut self) {
        if let Phase::InFlight { socket, .. } = &mut self.phase {
            // say goodbye so that the server does not log an unexpected EOF
            let _ = socket.write(&probe::TERMINATE);
        }
        if let Some(t) = self.tracker.as_mut() {
            t.succeeded();
        }
        self.phase = Phase::Done(true);
    }

    /// Progress after `poll()` reported `revents` on the socket.
    fn on_ready(&mut self, revents: PollFlags, startup: &[u8], now_ms: u64) {
        let Phase::InFlight {
            socket,
            sent,
            received,
        } = &mut self.phase
        else {
            return;
        };
        if revents.intersects(PollFlags::POLLERR | PollFlags::POLLNVAL) && !*sent {
            return self.fail(now_ms);
        }
        if !*sent {
            if !revents.contains(PollFlags::POLLOUT) {
                return;
            }
            match socket.take_error() {
                Ok(None) => {}
                _ => return self.fail(now_ms),
            }
            if socket.write_all(startup).is_err() {
                return self.fail(now_ms);
            }
            *sent = true;
            return;
        }
        if !revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            return;
        }
        let mut buf = [0u8; 1024];
        match socket.read(&mut buf) {
            Ok(0) => {
                // closed before saying anything useful
                match probe::classify(received) {
                    Reply::Up => self.succeed(),
                    _ => self.fail(now_ms),
                }
            }
            Ok(n) => {
                received.extend_from_slice(&buf[..n]);
                match probe::classify(received) {
                    Reply::Incomplete => {}
                    Reply::Up => self.succeed(),
                    Reply::NotReady | Reply::NotPostgres => self.fail(now_ms),
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => self.fail(now_ms),
        }
    }
}

/// Probes every target, all at once, within the policy's timeouts and retries. Returns each
/// node id with whether its Postgres answered. Stops early (returning no verdicts) when
/// `interrupted` says so; it is checked at least every 100 ms.
pub fn probe_all(
    targets: &[Target],
    policy: ProbePolicy,
    user: &str,
    mut interrupted: impl FnMut() -> bool,
) -> Vec<(i64, bool)> {
    let start = Instant::now();
    let startup =
        probe::startup_message(user, probe::PROBE_DATABASE, "pg_auto_failover health check");
    let mut probes: Vec<Probe> = targets
        .iter()
        .map(|t| Probe {
            addr: resolve(t),
            tracker: None,
            phase: Phase::Idle,
        })
        .collect();

    loop {
        let now = elapsed_ms(start);
        // time-based steps: attempts timed out, then new attempts and retries while slots last
        for p in &mut probes {
            if let (Some(ProbeStep::Attempt { deadline_ms }), Phase::InFlight { .. }) =
                (p.step(), &p.phase)
                && now >= deadline_ms
            {
                p.fail(now);
            }
        }
        let mut in_flight = probes
            .iter()
            .filter(|p| matches!(p.phase, Phase::InFlight { .. }))
            .count();
        for p in &mut probes {
            if in_flight >= MAX_IN_FLIGHT {
                break;
            }
            let due = match (p.step(), &p.phase) {
                (None, Phase::Idle) => {
                    p.tracker = Some(ProbeTracker::start(policy, now));
                    true
                }
                (Some(ProbeStep::RetryAt { at_ms }), Phase::Idle) if now >= at_ms => {
                    if let Some(t) = p.tracker.as_mut() {
                        t.retry(now);
                    }
                    true
                }
                _ => false,
            };
            if due {
                p.start_attempt(now);
                in_flight += usize::from(matches!(p.phase, Phase::InFlight { .. }));
            }
        }
        if probes.iter().all(|p| matches!(p.phase, Phase::Done(_))) {
            break;
        }
        if interrupted() {
            return Vec::new();
        }

        let mut fds: Vec<PollFd<'_>> = Vec::new();
        let mut owners: Vec<usize> = Vec::new();
        let mut next_event = now + 100;
        for (i, p) in probes.iter().enumerate() {
            match (&p.phase, p.step()) {
                (
                    Phase::InFlight { socket, sent, .. },
                    Some(ProbeStep::Attempt { deadline_ms }),
                ) => {
                    let events = if *sent {
                        PollFlags::POLLIN
                    } else {
                        PollFlags::POLLOUT
                    };
                    fds.push(PollFd::new(socket.as_fd(), events));
                    owners.push(i);
                    next_event = next_event.min(deadline_ms);
                }
                (Phase::Idle, Some(ProbeStep::RetryAt { at_ms })) => {
                    next_event = next_event.min(at_ms);
                }
                _ => {}
            }
        }
        let timeout = u16::try_from(next_event.saturating_sub(now).min(100)).unwrap_or(100);
        if !matches!(poll(&mut fds, PollTimeout::from(timeout)), Ok(ready) if ready > 0) {
            continue;
        }
        let ready: Vec<(usize, PollFlags)> = fds
            .iter()
            .zip(&owners)
            .filter_map(|(pfd, owner)| pfd.revents().filter(|r| !r.is_empty()).map(|r| (*owner, r)))
            .collect();
        drop(fds);
        let now = elapsed_ms(start);
        for (owner, revents) in ready {
            probes[owner].on_ready(revents, &startup, now);
        }
    }

    targets
        .iter()
        .zip(probes)
        .map(|(t, p)| (t.node_id, matches!(p.phase, Phase::Done(true))))
        .collect()
}
