//! The heartbeat cache in shared memory (`fsm::beats`): kept by `node_active()` for heartbeats
//! that change nothing, read over the table by every decision, written to the table by each
//! database's health check worker once per `heartbeat_flush_interval`.

use fsm::Node;
use fsm::beats::{Beat, BeatTable};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{PGRXSharedMemory, PgLwLock, pg_shmem_init};

/// The cache, as stored in shared memory.
#[derive(Clone, Copy, Default)]
pub struct SharedBeats(BeatTable);

// SAFETY: plain data (no pointers), fixed size, Copy
unsafe impl PGRXSharedMemory for SharedBeats {}

static BEATS: PgLwLock<SharedBeats> = unsafe { PgLwLock::new(c"pgautofailover heartbeats") };

/// Reserves the shared memory (from `_PG_init`, while preloading).
pub fn init() {
    pg_shmem_init!(BEATS);
}

fn database() -> u32 {
    crate::backend::database_id()
}

/// Overlays the kept heartbeats of this database on rows read from the table.
pub fn overlay(nodes: &mut [Node]) {
    let database = database();
    let table = BEATS.share();
    for node in nodes {
        if let Some(beat) = table.0.get(database, node.id) {
            beat.overlay(node);
        }
    }
}

/// Keeps `node`'s report without writing its row. False: no room, write the row instead.
pub fn keep(node: &Node) -> bool {
    let beat = Beat::of(database(), node);
    BEATS.exclusive().0.record(beat)
}

/// Notes that `node`'s report was written to its row.
pub fn written(node: &Node) {
    let beat = Beat::of(database(), node);
    BEATS.exclusive().0.record_written(beat);
}

/// Writes this database's kept heartbeats to the table in one statement, without waiting for
/// the WAL flush. Rows another transaction has locked are skipped, never waited for (their
/// heartbeats stay in shared memory, which every read overlays, and are written at the next
/// flush). Returns how many kept heartbeats are now in the table.
pub fn flush() -> usize {
    let database = database();
    let dirty = BEATS.share().0.dirty(database);
    if dirty.is_empty() {
        return 0;
    }
    let ts = |t: fsm::Timestamp| TimestampWithTimeZone::try_from(t.0).ok();
    let ids: Vec<i64> = dirty.iter().map(|b| b.node_id).collect();
    let report_times: Vec<Option<TimestampWithTimeZone>> =
        dirty.iter().map(|b| ts(b.report_time)).collect();
    let wal_times: Vec<Option<TimestampWithTimeZone>> =
        dirty.iter().map(|b| ts(b.wal_report_time)).collect();
    let running: Vec<bool> = dirty.iter().map(|b| b.pg_is_running).collect();
    let tlis: Vec<i32> = dirty.iter().map(|b| b.tli).collect();
    let lsns: Vec<i64> = dirty.iter().map(|b| b.lsn.0 as i64).collect();
    let sync: Vec<String> = dirty
        .iter()
        .map(|b| b.sync_state.as_str().to_string())
        .collect();
    let written: Vec<i64> = Spi::connect_mut(|client| {
        let _ = client.update("SET LOCAL synchronous_commit TO off", None, &[]);
        client
            .update(
                "WITH free AS ( \
                    SELECT nodeid FROM pgautofailover.node \
                     WHERE nodeid = ANY($1::bigint[]) \
                       FOR UPDATE SKIP LOCKED), \
                 written AS ( \
                    UPDATE pgautofailover.node AS n \
                       SET reporttime = v.rt, walreporttime = v.wrt, \
                           reportedpgisrunning = v.run, reportedtli = v.tli, \
                           reportedlsn = '0/0'::pg_catalog.pg_lsn OPERATOR(pg_catalog.+) \
                                         v.lsn::pg_catalog.numeric, \
                           reportedrepstate = v.rep \
                      FROM unnest($1::bigint[], $2::timestamptz[], \
                                             $3::timestamptz[], $4::bool[], $5::int[], \
                                             $6::bigint[], $7::text[]) \
                           AS v(id, rt, wrt, run, tli, lsn, rep) \
                     WHERE n.nodeid = v.id AND n.reporttime < v.rt \
                       AND n.nodeid IN (SELECT nodeid FROM free) \
                 RETURNING n.nodeid) \
                 SELECT nodeid FROM free",
                None,
                &[
                    ids.into(),
                    report_times.into(),
                    wal_times.into(),
                    running.into(),
                    tlis.into(),
                    lsns.into(),
                    sync.into(),
                ],
            )
            .map(|rows| {
                rows.filter_map(|row| row.get::<i64>(1).ok().flatten())
                    .collect()
            })
            .unwrap_or_else(|e| {
                pgrx::warning!("could not write the kept heartbeats: {e}");
                Vec::new()
            })
    });
    let done: Vec<Beat> = dirty
        .into_iter()
        .filter(|b| written.contains(&b.node_id))
        .collect();
    BEATS.exclusive().0.mark_written(&done);
    done.len()
}
