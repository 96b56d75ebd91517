//! The health check worker of one database: every `health_check_period`, probe every node's
//! Postgres and store the verdict (when it flips, record an event and notify); every
//! `heartbeat_flush_interval`, write the heartbeats kept in shared memory to the table, and
//! terminate the sessions that hold a group lock for longer than `group_lock_timeout`. The
//! worker itself never waits on a lock a session holds: a group that is locked keeps its
//! verdict until the next round.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use fsm::{Health, Node, Timestamp};
use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;

use super::probe_io::{Target, probe_all};
use crate::locks;
use crate::{beats, settings, store};

/// The nodes to probe, or None when the extension is not created in this database.
fn load_nodes() -> Option<Vec<(Node, String)>> {
    let exists = Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pgautofailover')",
    )
    .ok()
    .flatten()
    .unwrap_or(false);
    exists.then(store::all_nodes)
}

fn now() -> Timestamp {
    crate::backend::now()
}

/// What a probe round knew about a node when it started.
struct Probed {
    health: Health,
    formation_id: String,
    group_id: i32,
    host: String,
    port: i32,
}

/// Stores the verdicts: flips one by one under their group lock, with an event each; the
/// check time of unchanged nodes in one statement. A node that changed host or port (or was
/// removed and its id reused) during the round keeps its row as it is.
fn record(verdicts: &[(i64, bool)], before: &HashMap<i64, Probed>) {
    let at = now();
    let mut unchanged: Vec<i64> = Vec::new();
    for &(node_id, up) in verdicts {
        let health = if up { Health::Good } else { Health::Bad };
        let Some(probed) = before.get(&node_id) else {
            continue;
        };
        let same_node = |node: &Node| node.host == probed.host && node.port == probed.port;
        if probed.health == health {
            unchanged.push(node_id);
            continue;
        }
        if !locks::try_lock_group(&probed.formation_id, probed.group_id) {
            // a session holds the group: the verdict is stored at the next round
            continue;
        }
        let Some((mut node, _)) = store::node_by_id(node_id).filter(|(n, _)| same_node(n)) else {
            continue;
        };
        store::save_health(node_id, health, at);
        node.health = health;
        node.health_check_time = at;
        let verdict = if up { "healthy" } else { "unhealthy" };
        store::record_event(
            &probed.formation_id,
            &node,
            &format!(
                "Node {} is marked as {verdict} by the monitor",
                node.label()
            ),
        );
    }
    if !unchanged.is_empty() {
        let _ = Spi::run_with_args(
            "UPDATE pgautofailover.node SET healthchecktime = $2 \
              WHERE nodeid = ANY($1)",
            &[
                unchanged.into(),
                pgrx::datum::TimestampWithTimeZone::try_from(at.0).map_or_else(
                    |_| pgrx::datum::DatumWithOid::null::<pgrx::datum::TimestampWithTimeZone>(),
                    Into::into,
                ),
            ],
        );
    }
}

/// Terminates the client sessions holding a formation or group lock in a transaction older
/// than `group_lock_timeout`: heartbeats of that group wait for the lock, so no failover could
/// happen while such a session stays open.
fn terminate_stuck_lock_holders() {
    let bound = settings::group_lock_timeout_ms();
    if bound == 0 {
        return;
    }
    let holders: Vec<(i32, String, String, i64)> = Spi::connect(|client| {
        let Ok(rows) = client.select(locks::HELD_LOCKS_QUERY, None, &[bound.into()]) else {
            return Vec::new();
        };
        rows.filter_map(|row| {
            Some((
                row.get::<i32>(1).ok().flatten()?,
                row.get::<String>(2).ok().flatten().unwrap_or_default(),
                row.get::<String>(3).ok().flatten().unwrap_or_default(),
                row.get::<i64>(4).ok().flatten().unwrap_or(0),
            ))
        })
        .collect()
    });
    for (pid, user, state, held_ms) in holders {
        let _ = Spi::get_one_with_args::<bool>(
            "SELECT pg_catalog.pg_terminate_backend($1)",
            &[pid.into()],
        );
        store::notify_log(&format!(
            "Terminated session {pid} of role {} ({}): it held a pgautofailover group lock in \
             a transaction open for {held_ms} ms, longer than group_lock_timeout ({bound} ms)",
            fsm::vocab::shown(&user),
            fsm::vocab::shown(&state),
        ));
    }
}

/// One probe round: probe every node, store the verdicts. Returns false when interrupted by
/// SIGTERM.
fn probe_round(nodes: Vec<(Node, String)>) -> bool {
    let targets: Vec<Target> = nodes
        .iter()
        .map(|(n, _)| Target {
            node_id: n.id,
            host: n.host.clone(),
            port: n.port,
        })
        .collect();
    let before: HashMap<i64, Probed> = nodes
        .into_iter()
        .map(|(n, formation_id)| {
            (
                n.id,
                Probed {
                    health: n.health,
                    formation_id,
                    group_id: n.group_id,
                    host: n.host,
                    port: n.port,
                },
            )
        })
        .collect();
    let stopped = Cell::new(false);
    let verdicts = probe_all(
        &targets,
        settings::probe_policy(),
        &settings::health_check_user(),
        || {
            let stop = BackgroundWorker::sigterm_received();
            stopped.set(stop);
            stop
        },
    );
    if stopped.get() {
        return false;
    }
    BackgroundWorker::transaction(|| record(&verdicts, &before));
    true
}

/// The health check worker's main loop; its argument is the database OID. Every
/// `heartbeat_flush_interval` it writes the kept heartbeats; every `health_check_period` it
/// probes the nodes.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pgaf_health_check_main(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let oid = pg_sys::Oid::from(arg.value() as u32);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(oid), None);

    let mut last_round: Option<Instant> = None;
    let mut last_flush = Instant::now();
    loop {
        if BackgroundWorker::sighup_received() {
            crate::backend::reload_configuration();
        }
        let Some(nodes) = BackgroundWorker::transaction(load_nodes) else {
            // no extension here: free the slot; the launcher checks again later
            return;
        };
        BackgroundWorker::transaction(terminate_stuck_lock_holders);
        let flush_every = Duration::from_millis(settings::heartbeat_flush_interval_ms());
        if last_flush.elapsed() >= flush_every {
            last_flush = Instant::now();
            BackgroundWorker::transaction(beats::flush);
        }

        let period = Duration::from_millis(settings::health_check_period_ms());
        let due = last_round.is_none_or(|at| at.elapsed() >= period);
        if settings::ENABLE_HEALTH_CHECKS.get() && due && !nodes.is_empty() {
            last_round = Some(Instant::now());
            if !probe_round(nodes) {
                BackgroundWorker::transaction(beats::flush);
                return;
            }
        }

        let until_flush = flush_every.saturating_sub(last_flush.elapsed());
        let until_round = last_round.map_or(period, |at| period.saturating_sub(at.elapsed()));
        let nap = until_flush.min(until_round).max(Duration::from_millis(10));
        if !BackgroundWorker::wait_latch(Some(nap)) {
            BackgroundWorker::transaction(beats::flush);
            return;
        }
    }
}
