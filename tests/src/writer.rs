//! Continuous writers for failover tests.
//!
//! [`Writer`] inserts numbered rows through the formation's multi-host read-write URI, like an
//! application would, reconnecting after errors; it records every row whose COMMIT was
//! acknowledged (without the "canceled wait for synchronous replication" warning, which means
//! the row may not be on a standby). At the end every acknowledged row must be on the new
//! primary.
//!
//! [`Prober`]s are pinned to one node each (from inside its namespace) and record when that
//! node acknowledged a write: two nodes acknowledging writes in interleaved periods is a
//! split brain.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// An acknowledged write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The row's number.
    pub id: i64,
    /// When the INSERT was sent.
    pub sent: Instant,
    /// When the acknowledgement came.
    pub at: Instant,
    /// Which server acknowledged it (`inet_server_addr():inet_server_port()`, or the
    /// prober's node name).
    pub server: String,
}

/// What a writer saw.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every acknowledged write, in order.
    pub acks: Vec<Ack>,
    /// Failed attempts (connection or statement errors).
    pub errors: usize,
}

impl Report {
    /// The longest time between two acknowledged writes.
    pub fn max_gap(&self) -> Duration {
        self.acks
            .windows(2)
            .map(|w| w[1].at.duration_since(w[0].at))
            .max()
            .unwrap_or_default()
    }

    /// The ids acknowledged.
    pub fn ids(&self) -> Vec<i64> {
        self.acks.iter().map(|a| a.id).collect()
    }

    /// When the first write sent after `t` was acknowledged: a commit already in flight at
    /// `t` and acknowledged just after it (by a primary that dies a moment later) does not
    /// show that writes are back.
    pub fn first_ack_of_a_write_sent_after(&self, t: Instant) -> Option<Instant> {
        self.acks.iter().find(|a| a.sent > t).map(|a| a.at)
    }
}

/// The table the writers write into; created by [`prepare`].
pub const TABLE: &str = "acked_writes";

/// Creates the writers' table on the primary.
pub fn prepare(primary: &mut postgres::Client) {
    primary
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (id bigint, writer text, at timestamptz DEFAULT clock_timestamp())"
        ))
        .expect("create the writers' table");
}

/// A thread writing rows until stopped.
pub struct Writer {
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<Report>>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts writing through `conninfo` (a URI), from inside namespace `ns` when given. The
    /// rows are tagged with `name`.
    pub fn start(name: &str, conninfo: &str, ns: Option<String>) -> Writer {
        Writer::start_paced(name, conninfo, ns, Duration::ZERO)
    }

    /// Like [`Writer::start`], starting one insert every `every` (as fast as possible when
    /// zero), like an application with a steady trickle of writes.
    pub fn start_paced(name: &str, conninfo: &str, ns: Option<String>, every: Duration) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let report = Arc::new(Mutex::new(Report::default()));
        let (flag, shared) = (stop.clone(), report.clone());
        let conninfo = conninfo.to_string();
        let name = name.to_string();
        let handle = std::thread::spawn(move || {
            if let Some(ns) = &ns {
                crate::netns::enter(ns);
            }
            write_loop(&name, &conninfo, &flag, every, &shared)
        });
        Writer {
            stop,
            report,
            handle: Some(handle),
        }
    }

    /// When the first write acknowledged after `t` was acknowledged, so far.
    pub fn first_ack_after(&self, t: Instant) -> Option<Instant> {
        let report = self.report.lock().unwrap_or_else(|p| p.into_inner());
        report.acks.iter().map(|a| a.at).find(|at| *at > t)
    }

    /// [`Report::first_ack_of_a_write_sent_after`], so far.
    pub fn first_ack_of_a_write_sent_after(&self, t: Instant) -> Option<Instant> {
        let report = self.report.lock().unwrap_or_else(|p| p.into_inner());
        report.first_ack_of_a_write_sent_after(t)
    }

    /// How many writes were acknowledged so far.
    pub fn acknowledged(&self) -> usize {
        let report = self.report.lock().unwrap_or_else(|p| p.into_inner());
        report.acks.len()
    }

    /// Stops and returns what it saw.
    pub fn finish(mut self) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
        let report = self.report.lock().unwrap_or_else(|p| p.into_inner());
        report.clone()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn client_config(conninfo: &str, warned: Arc<AtomicBool>) -> Option<postgres::Config> {
    let mut config: postgres::Config = conninfo.parse().ok()?;
    config
        .connect_timeout(Duration::from_secs(2))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(1))
        .keepalives_interval(Duration::from_secs(1))
        .keepalives_retries(2)
        .tcp_user_timeout(Duration::from_secs(3))
        .notice_callback(move |notice| {
            if notice.message().contains("synchronous replication") {
                warned.store(true, Ordering::SeqCst);
            }
        });
    Some(config)
}

fn write_loop(
    name: &str,
    conninfo: &str,
    stop: &AtomicBool,
    every: Duration,
    shared: &Mutex<Report>,
) {
    let warned = Arc::new(AtomicBool::new(false));
    let record = |f: &mut dyn FnMut(&mut Report)| {
        let mut report = shared.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut report);
    };
    let Some(config) = client_config(conninfo, warned.clone()) else {
        record(&mut |r| r.errors += 1);
        return;
    };
    let mut client: Option<postgres::Client> = None;
    let mut next_id = 1i64;
    let mut next_start = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if !every.is_zero() {
            let now = Instant::now();
            if next_start > now {
                std::thread::sleep(next_start - now);
            }
            next_start = next_start.max(now) + every;
        }
        if client.is_none() {
            match config.connect(postgres::NoTls) {
                Ok(c) => client = Some(c),
                Err(_) => {
                    record(&mut |r| r.errors += 1);
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else { continue };
        let id = next_id;
        // a new number each time: a row whose outcome is unknown is never retried
        next_id += 1;
        warned.store(false, Ordering::SeqCst);
        let sent = Instant::now();
        let result = c.query_one(
            &format!(
                "INSERT INTO {TABLE} (id, writer) VALUES ($1, $2) \
                 RETURNING host(inet_server_addr()) || ':' || inet_server_port()"
            ),
            &[&id, &name],
        );
        match result {
            Ok(row) if !warned.load(Ordering::SeqCst) => {
                let ack = Ack {
                    id,
                    sent,
                    at: Instant::now(),
                    server: row.get(0),
                };
                record(&mut |r| r.acks.push(ack.clone()));
            }
            Ok(_) => record(&mut |r| r.errors += 1),
            Err(_) => {
                record(&mut |r| r.errors += 1);
                client = None;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// A thread writing into one node only, recording its acknowledgements in a shared log.
pub struct Prober {
    writer: Writer,
}

impl Prober {
    /// Starts probing the node listening on 127.0.0.1:`port` in namespace `ns`.
    pub fn start(node: &str, ns: Option<String>, port: u16) -> Prober {
        let conninfo = format!("postgres://postgres@127.0.0.1:{port}/postgres?connect_timeout=2");
        Prober {
            writer: Writer::start(node, &conninfo, ns),
        }
    }

    /// Stops and returns the node's acknowledgements, labelled with `node`.
    pub fn finish(self, node: &str) -> Vec<Ack> {
        self.writer
            .finish()
            .acks
            .into_iter()
            .map(|a| Ack {
                server: node.to_string(),
                ..a
            })
            .collect()
    }
}

/// The ids of the rows `writer_name` wrote that the server behind `client` holds.
pub fn ids_written_by(
    client: &mut postgres::Client,
    writer_name: &str,
) -> Result<Vec<i64>, postgres::Error> {
    let rows = client.query(
        &format!("SELECT id FROM {TABLE} WHERE writer = $1"),
        &[&writer_name],
    )?;
    Ok(rows.iter().map(|r| r.get::<_, i64>(0)).collect())
}

/// The acknowledged ids missing from `present`.
pub fn missing(acknowledged: &[i64], present: &[i64]) -> Vec<i64> {
    let present: std::collections::HashSet<i64> = present.iter().copied().collect();
    acknowledged
        .iter()
        .copied()
        .filter(|id| !present.contains(id))
        .collect()
}

/// Checks that the writes of several nodes never interleave. Nodes are ordered by their
/// first acknowledgement (at most `handovers` + 1 of them); a node must not acknowledge a
/// write *sent* after a later node acknowledged one. (A write sent before, whose answer
/// arrives late — a frozen server resumed — committed before the handover.) Returns the order
/// of the nodes.
pub fn check_no_split_brain(mut acks: Vec<Ack>, handovers: usize) -> Result<Vec<String>, String> {
    acks.sort_by_key(|a| a.at);
    let mut order: Vec<String> = Vec::new();
    for ack in &acks {
        if !order.contains(&ack.server) {
            order.push(ack.server.clone());
        }
    }
    if order.len() > handovers + 1 {
        return Err(format!(
            "writes were acknowledged by {order:?}: more than {handovers} handover(s)"
        ));
    }
    for (i, earlier) in order.iter().enumerate() {
        for later in &order[i + 1..] {
            let Some(later_first) = acks.iter().find(|a| &a.server == later).map(|a| a.at) else {
                continue;
            };
            if let Some(late) = acks
                .iter()
                .find(|a| &a.server == earlier && a.sent > later_first)
            {
                return Err(format!(
                    "{earlier} acknowledged write {} sent {:?} after {later} had acknowledged \
                     its first write: two primaries took writes",
                    late.id,
                    late.sent.duration_since(later_first)
                ));
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(server: &str, ms: u64, base: Instant) -> Ack {
        Ack {
            id: 0,
            sent: base + Duration::from_millis(ms),
            at: base + Duration::from_millis(ms),
            server: server.to_string(),
        }
    }

    #[test]
    fn interleaved_acknowledgements_are_a_split_brain() {
        let t = Instant::now();
        let clean = vec![
            ack("a", 1, t),
            ack("a", 2, t),
            ack("b", 5, t),
            ack("b", 6, t),
        ];
        assert_eq!(
            check_no_split_brain(clean, 1).expect("one handover"),
            ["a", "b"]
        );
        let split = vec![ack("a", 1, t), ack("b", 2, t), ack("a", 3, t)];
        assert!(check_no_split_brain(split, 1).is_err());
        let three = vec![ack("a", 1, t), ack("b", 2, t), ack("c", 3, t)];
        assert!(check_no_split_brain(three, 1).is_err());
    }

    #[test]
    fn writes_are_back_with_the_first_write_sent_after_the_fault() {
        let t = Instant::now();
        let fault = t + Duration::from_millis(10);
        // in flight at the fault, acknowledged 2 ms after it
        let mut in_flight = ack("a", 12, t);
        in_flight.sent = t + Duration::from_millis(8);
        let report = Report {
            acks: vec![ack("a", 5, t), in_flight, ack("b", 2_000, t)],
            errors: 0,
        };
        assert_eq!(
            report.first_ack_of_a_write_sent_after(fault),
            Some(t + Duration::from_millis(2_000))
        );
        assert_eq!(
            report.first_ack_of_a_write_sent_after(t + Duration::from_secs(3)),
            None
        );
    }

    #[test]
    fn a_late_answer_to_a_write_sent_before_the_handover_is_no_split_brain() {
        let t = Instant::now();
        let mut late = ack("a", 9, t);
        late.sent = t + Duration::from_millis(1);
        let acks = vec![ack("a", 0, t), ack("b", 5, t), late];
        assert_eq!(
            check_no_split_brain(acks, 1).expect("no overlap"),
            ["a", "b"]
        );
    }

    #[test]
    fn missing_lists_acknowledged_ids_not_present() {
        assert_eq!(missing(&[1, 2, 3, 4], &[4, 2]), [1, 3]);
        assert!(missing(&[], &[1]).is_empty());
    }

    #[test]
    fn the_largest_gap_between_acknowledgements_is_measured() {
        let t = Instant::now();
        let report = Report {
            acks: vec![ack("a", 0, t), ack("a", 10, t), ack("b", 310, t)],
            errors: 3,
        };
        assert_eq!(report.max_gap(), Duration::from_millis(300));
    }
}
