//! Reading and writing the monitor's tables through SPI.
//!
//! Every query is prepared once per backend and kept, so a heartbeat costs a few plan
//! executions and no parsing. Rows become [`fsm::Node`] / [`fsm::Formation`] values; decisions
//! come back as [`fsm::Effect`]s which [`apply_effects`] writes, each with its event row and its
//! `state` / `log` notifications.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use fsm::{
    Effect, Formation, FormationKind, Health, Lsn, Node, NodeId, ReplicationState, SyncState,
    Timestamp,
};
use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::pg_sys::{self, BuiltinOid, PgOid};
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient};

use crate::errors::{formation_not_found, spi_failed};

thread_local! {
    static PLANS: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>> =
        RefCell::new(HashMap::new());
}

/// A kept plan for `sql`, prepared on first use.
fn plan(
    client: &SpiClient<'_>,
    sql: &'static str,
    types: &[BuiltinOid],
) -> Rc<OwnedPreparedStatement> {
    if let Some(plan) = PLANS.with(|p| p.borrow().get(sql).cloned()) {
        return plan;
    }
    let oids: Vec<PgOid> = types.iter().map(|t| PgOid::BuiltIn(*t)).collect();
    let prepared = match client.prepare_mut(sql, &oids) {
        Ok(p) => Rc::new(p.keep()),
        Err(e) => spi_failed("prepare a monitor query", e),
    };
    PLANS.with(|p| p.borrow_mut().insert(sql, prepared.clone()));
    prepared
}

fn text(value: &str) -> DatumWithOid<'_> {
    value.into()
}

fn timestamptz(value: Timestamp) -> DatumWithOid<'static> {
    match TimestampWithTimeZone::try_from(value.0) {
        Ok(ts) => ts.into(),
        Err(_) => DatumWithOid::null::<TimestampWithTimeZone>(),
    }
}

fn lsn(value: Lsn) -> DatumWithOid<'static> {
    // SAFETY: pg_lsn is a by-value 64-bit integer, like int8
    unsafe { DatumWithOid::new(value.0 as i64, pg_sys::Oid::from(BuiltinOid::PG_LSNOID)) }
}

const T: BuiltinOid = BuiltinOid::TEXTOID;
const I4: BuiltinOid = BuiltinOid::INT4OID;
const I8: BuiltinOid = BuiltinOid::INT8OID;
const B: BuiltinOid = BuiltinOid::BOOLOID;
const TS: BuiltinOid = BuiltinOid::TIMESTAMPTZOID;
const LSN: BuiltinOid = BuiltinOid::PG_LSNOID;

/// The columns [`row_to_node`] reads, in order.
/// The table is aliased `n` in every query.
const NODE_COLUMNS: &str = "n.nodeid, n.nodename, n.nodehost, n.nodeport, n.groupid, \
     n.goalstate, n.reportedstate, coalesce(n.reportedpgisrunning, true), \
     coalesce(n.reportedrepstate, 'unknown'), n.reporttime, n.walreporttime, n.health, \
     n.healthchecktime, n.statechangetime, n.reportedtli, n.reportedlsn, n.candidatepriority, \
     n.replicationquorum, n.nodecluster, n.formationid";

/// One row of the last SPI result, read as raw datums (no copies, no text round trips).
struct RawRow {
    tuple: *mut pg_sys::HeapTupleData,
    tupdesc: pg_sys::TupleDesc,
}

/// How to read a column of a [`RawRow`].
#[derive(Clone, Copy)]
enum Kind {
    /// A by-value datum (int, bigint, bool, timestamptz, pg_lsn, an enum's OID).
    ByValue,
    /// `text`.
    Text,
    /// `name`.
    Name,
}

/// A column read from a [`RawRow`].
enum Column {
    Null,
    ByValue(pg_sys::Datum),
    Text(String),
}

impl RawRow {
    /// Column `attnum` (1-based) read as `kind`, which the query declares it to be.
    fn column(&self, attnum: i32, kind: Kind) -> Column {
        let mut is_null = false;
        // SAFETY: tuple and tupdesc come from SPI_tuptable of the current SPI call (raw_rows),
        // and every query of this file selects text, name or by-value columns at the
        // positions its reader passes with the matching kind
        unsafe {
            let datum = pg_sys::heap_getattr(self.tuple, attnum, self.tupdesc, &mut is_null);
            if is_null {
                return Column::Null;
            }
            match kind {
                Kind::ByValue => Column::ByValue(datum),
                Kind::Text => String::from_datum(datum, false).map_or(Column::Null, Column::Text),
                Kind::Name => Column::Text(
                    std::ffi::CStr::from_ptr(datum.cast_mut_ptr::<std::ffi::c_char>())
                        .to_string_lossy()
                        .into_owned(),
                ),
            }
        }
    }

    /// Column `attnum` (1-based) as a by-value datum, or None when NULL.
    fn datum(&self, attnum: i32) -> Option<pg_sys::Datum> {
        match self.column(attnum, Kind::ByValue) {
            Column::ByValue(d) => Some(d),
            Column::Null | Column::Text(_) => None,
        }
    }

    fn i64(&self, attnum: i32) -> Option<i64> {
        self.datum(attnum).map(|d| d.value() as i64)
    }

    fn i32(&self, attnum: i32) -> Option<i32> {
        self.datum(attnum).map(|d| d.value() as i32)
    }

    fn bool(&self, attnum: i32) -> Option<bool> {
        self.datum(attnum).map(|d| d.value() != 0)
    }

    fn string(&self, attnum: i32, kind: Kind) -> Option<String> {
        match self.column(attnum, kind) {
            Column::Text(s) => Some(s),
            Column::Null | Column::ByValue(_) => None,
        }
    }

    fn text(&self, attnum: i32) -> Option<String> {
        self.string(attnum, Kind::Text)
    }

    fn name(&self, attnum: i32) -> Option<String> {
        self.string(attnum, Kind::Name)
    }

    fn timestamp(&self, attnum: i32) -> Timestamp {
        Timestamp(self.i64(attnum).unwrap_or(0))
    }

    fn state(&self, attnum: i32) -> ReplicationState {
        self.datum(attnum).map_or(ReplicationState::Unknown, |d| {
            crate::fmgr::state_of_enum_oid(pg_sys::Oid::from(d.value() as u32))
        })
    }
}

/// The rows of the last SPI result.
fn raw_rows() -> Vec<RawRow> {
    // SAFETY: SPI_tuptable is the result of the statement just executed in this SPI
    // connection; its vals array holds numvals tuples
    unsafe {
        let table = pg_sys::SPI_tuptable;
        if table.is_null() {
            return Vec::new();
        }
        let count = usize::try_from((*table).numvals).unwrap_or(0);
        (0..count)
            .map(|i| RawRow {
                tuple: *(*table).vals.add(i),
                tupdesc: (*table).tupdesc,
            })
            .collect()
    }
}

/// A node row read with [`NODE_COLUMNS`] starting at column `first`, and its formation id.
fn row_to_node(row: &RawRow, first: i32) -> (Node, String) {
    let c = |offset: i32| first + offset;
    let node = Node {
        id: row.i64(c(0)).unwrap_or(0),
        name: row.text(c(1)).unwrap_or_default(),
        host: row.text(c(2)).unwrap_or_default(),
        port: row.i32(c(3)).unwrap_or(0),
        group_id: row.i32(c(4)).unwrap_or(0),
        goal: row.state(c(5)),
        reported: row.state(c(6)),
        pg_is_running: row.bool(c(7)).unwrap_or(true),
        sync_state: row
            .text(c(8))
            .and_then(|s| s.parse().ok())
            .unwrap_or(SyncState::Unknown),
        report_time: row.timestamp(c(9)),
        wal_report_time: row.timestamp(c(10)),
        health: Health::from_i32(row.i32(c(11)).unwrap_or(-1)),
        health_check_time: row.timestamp(c(12)),
        state_change_time: row.timestamp(c(13)),
        reported_tli: row.i32(c(14)).unwrap_or(1),
        reported_lsn: Lsn(row.i64(c(15)).unwrap_or(0) as u64),
        candidate_priority: row.i32(c(16)).unwrap_or(0),
        replication_quorum: row.bool(c(17)).unwrap_or(true),
        node_cluster: row.text(c(18)).unwrap_or_else(|| "default".to_string()),
        // leases are not in the table: decisions attach them (crate::leases)
        lease: None,
    };
    (node, row.text(c(19)).unwrap_or_default())
}

fn select_nodes(
    sql: &'static str,
    types: &[BuiltinOid],
    args: &[DatumWithOid<'_>],
) -> Vec<(Node, String)> {
    Spi::connect(|client| {
        let plan = plan(client, sql, types);
        if let Err(e) = client.select(&*plan, None, args) {
            spi_failed("read pgautofailover.node", e);
        }
        let (mut nodes, formations): (Vec<Node>, Vec<String>) =
            raw_rows().iter().map(|row| row_to_node(row, 1)).unzip();
        crate::beats::overlay(&mut nodes);
        nodes.into_iter().zip(formations).collect()
    })
}

/// A formation and every node of one of its groups (including those being dropped), in one
/// query: what each decision starts from. None when the formation does not exist.
pub fn formation_and_group(formation_id: &str, group_id: i32) -> Option<(Formation, Vec<Node>)> {
    Spi::connect(|client| {
        let plan = plan(
            client,
            const_format(
                "SELECT f.formationid, f.kind, f.dbname, f.opt_secondary, \
                        f.number_sync_standbys, {NODE_COLUMNS} \
                   FROM pgautofailover.formation AS f \
                   LEFT JOIN pgautofailover.node AS n \
                          ON n.formationid = f.formationid AND n.groupid = $2 \
                  WHERE f.formationid = $1",
            ),
            &[T, I4],
        );
        if let Err(e) = client.select(&*plan, None, &[text(formation_id), group_id.into()]) {
            spi_failed("read the formation and its group", e);
        }
        let rows = raw_rows();
        let formation = formation_of_row(rows.first()?);
        let mut nodes: Vec<Node> = rows
            .iter()
            .filter(|row| row.datum(6).is_some())
            .map(|row| row_to_node(row, 6).0)
            .collect();
        crate::beats::overlay(&mut nodes);
        Some((formation, nodes))
    })
}

/// Every node of a group, including those being dropped, in id order.
pub fn group_nodes(formation_id: &str, group_id: i32) -> Vec<Node> {
    select_nodes(
        const_format(
            "SELECT {NODE_COLUMNS} FROM pgautofailover.node AS n \
             WHERE formationid = $1 AND groupid = $2 ORDER BY nodeid",
        ),
        &[T, I4],
        &[text(formation_id), group_id.into()],
    )
    .into_iter()
    .map(|(node, _)| node)
    .collect()
}

/// Every node of a formation, in (group, id) order.
pub fn formation_nodes(formation_id: &str) -> Vec<Node> {
    select_nodes(
        const_format(
            "SELECT {NODE_COLUMNS} FROM pgautofailover.node AS n \
             WHERE formationid = $1 ORDER BY groupid, nodeid",
        ),
        &[T],
        &[text(formation_id)],
    )
    .into_iter()
    .map(|(node, _)| node)
    .collect()
}

/// A node by id, with its formation id.
pub fn node_by_id(node_id: NodeId) -> Option<(Node, String)> {
    select_nodes(
        const_format("SELECT {NODE_COLUMNS} FROM pgautofailover.node AS n WHERE nodeid = $1"),
        &[I8],
        &[node_id.into()],
    )
    .into_iter()
    .next()
}

/// A node by formation and name.
pub fn node_by_name(formation_id: &str, name: &str) -> Option<Node> {
    select_nodes(
        const_format(
            "SELECT {NODE_COLUMNS} FROM pgautofailover.node AS n \
             WHERE formationid = $1 AND nodename = $2",
        ),
        &[T, T],
        &[text(formation_id), text(name)],
    )
    .into_iter()
    .next()
    .map(|(node, _)| node)
}

/// A node by host and port, with its formation id.
pub fn node_by_host(host: &str, port: i32) -> Option<(Node, String)> {
    select_nodes(
        const_format(
            "SELECT {NODE_COLUMNS} FROM pgautofailover.node AS n \
             WHERE nodehost = $1 AND nodeport = $2",
        ),
        &[T, I4],
        &[text(host), port.into()],
    )
    .into_iter()
    .next()
}

/// Every node of every formation with its formation id (for the health checks).
pub fn all_nodes() -> Vec<(Node, String)> {
    select_nodes(
        const_format("SELECT {NODE_COLUMNS} FROM pgautofailover.node AS n ORDER BY nodeid"),
        &[],
        &[],
    )
}

/// `const_format("... {NODE_COLUMNS} ...")`: the query with the node columns spliced in,
/// leaked once per distinct query so that it can key the plan cache.
fn const_format(template: &'static str) -> &'static str {
    thread_local! {
        static QUERIES: RefCell<HashMap<&'static str, &'static str>> = RefCell::new(HashMap::new());
    }
    QUERIES.with(|q| {
        *q.borrow_mut().entry(template).or_insert_with(|| {
            Box::leak(
                template
                    .replace("{NODE_COLUMNS}", NODE_COLUMNS)
                    .into_boxed_str(),
            )
        })
    })
}

/// A formation by id.
pub fn formation(formation_id: &str) -> Option<Formation> {
    Spi::connect(|client| {
        let plan = plan(
            client,
            "SELECT formationid, kind, dbname, opt_secondary, number_sync_standbys \
               FROM pgautofailover.formation WHERE formationid = $1",
            &[T],
        );
        if let Err(e) = client.select(&*plan, Some(1), &[text(formation_id)]) {
            spi_failed("read pgautofailover.formation", e);
        }
        raw_rows().first().map(formation_of_row)
    })
}

/// A formation from columns 1 to 5 of a row.
fn formation_of_row(row: &RawRow) -> Formation {
    Formation {
        id: row.text(1).unwrap_or_default(),
        kind: row
            .text(2)
            .and_then(|k| FormationKind::parse(&k))
            .unwrap_or(FormationKind::Pgsql),
        dbname: row.name(3).unwrap_or_default(),
        opt_secondary: row.bool(4).unwrap_or(true),
        number_sync_standbys: row.i32(5).unwrap_or(0),
    }
}

/// A formation by id, or an error naming it.
pub fn formation_or_raise(formation_id: &str) -> Formation {
    formation(formation_id).unwrap_or_else(|| formation_not_found(formation_id))
}

/// Runs one write statement.
fn write(sql: &'static str, types: &[BuiltinOid], args: &[DatumWithOid<'_>], what: &str) -> usize {
    Spi::connect_mut(|client| {
        let plan = plan(client, sql, types);
        match client.update(&*plan, None, args) {
            Ok(result) => result.len(),
            Err(e) => spi_failed(what, e),
        }
    })
}

/// Stores a heartbeat: the report columns of `node` (already merged by [`fsm::report`]).
pub fn save_report(node: &Node) {
    crate::beats::written(node);
    write(
        "UPDATE pgautofailover.node \
            SET reportedstate = $2::text::pgautofailover.replication_state, \
                reporttime = $3, reportedpgisrunning = $4, reportedrepstate = $5, \
                reportedtli = $6, reportedlsn = $7, walreporttime = $8, statechangetime = $9 \
          WHERE nodeid = $1",
        &[I8, T, TS, B, T, I4, LSN, TS, TS],
        &[
            node.id.into(),
            text(node.reported.as_str()),
            timestamptz(node.report_time),
            node.pg_is_running.into(),
            text(node.sync_state.as_str()),
            node.reported_tli.into(),
            lsn(node.reported_lsn),
            timestamptz(node.wal_report_time),
            timestamptz(node.state_change_time),
        ],
        "store the node report",
    );
}

/// Stores a probe verdict.
pub fn save_health(node_id: NodeId, health: Health, at: Timestamp) {
    write(
        "UPDATE pgautofailover.node SET health = $2, healthchecktime = $3 WHERE nodeid = $1",
        &[I8, I4, TS],
        &[node_id.into(), health.as_i32().into(), timestamptz(at)],
        "store the node health",
    );
}

/// What a new node row holds.
pub struct NewNode<'a> {
    /// Formation.
    pub formation_id: &'a str,
    /// Requested id (checked by `fsm::register`), or None for the next free one.
    pub node_id: Option<NodeId>,
    /// Group.
    pub group_id: i32,
    /// Name, or None for `node_<id>`.
    pub name: Option<&'a str>,
    /// Host.
    pub host: &'a str,
    /// Port.
    pub port: i32,
    /// System identifier, or None while unknown.
    pub sysidentifier: Option<i64>,
    /// First goal.
    pub goal: ReplicationState,
    /// State the node says it is in.
    pub reported: ReplicationState,
    /// Candidate priority.
    pub candidate_priority: i32,
    /// Replication quorum.
    pub replication_quorum: bool,
    /// Cluster name.
    pub node_cluster: &'a str,
}

/// The next node id of the sequence that no node holds (ids chosen by callers are skipped,
/// never jumped over: the sequence is not moved by them, so a large chosen id cannot exhaust
/// it). Refused past [`fsm::vocab::MAX_NODE_ID`], which 2.0 keepers cannot hold.
fn next_free_node_id() -> NodeId {
    for _ in 0..100_000 {
        let (id, taken): (Option<i64>, Option<bool>) = Spi::connect_mut(|client| {
            let plan = plan(
                client,
                "SELECT s.id, EXISTS (SELECT 1 FROM pgautofailover.node WHERE nodeid = s.id) \
                   FROM (SELECT pg_catalog.nextval('pgautofailover.node_nodeid_seq') AS id) AS s",
                &[],
            );
            match client.update(&*plan, None, &[]) {
                Ok(rows) => rows.first().get_two::<i64, bool>().unwrap_or((None, None)),
                Err(e) => spi_failed("draw a node id", e),
            }
        });
        let Some(id) = id else { break };
        if id > fsm::vocab::MAX_NODE_ID {
            crate::errors::raise(crate::errors::sql_error(
                PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "node ids are exhausted: the next one would be {id}, more than {}",
                    fsm::vocab::MAX_NODE_ID
                ),
                Some("Register the node with desired_node_id set to a free id.".to_string()),
            ));
        }
        if taken == Some(false) {
            return id;
        }
    }
    crate::errors::raise(crate::errors::sql_error(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        "could not find a free node id".to_string(),
        None,
    ))
}

/// Inserts a node; returns its id.
pub fn insert_node(new: &NewNode<'_>) -> NodeId {
    let id = new.node_id.unwrap_or_else(next_free_node_id);
    let inserted: Option<i64> = Spi::connect_mut(|client| {
        let plan = plan(
            client,
            "INSERT INTO pgautofailover.node \
                    (formationid, nodeid, groupid, nodename, nodehost, nodeport, sysidentifier, \
                     goalstate, reportedstate, candidatepriority, replicationquorum, nodecluster) \
             VALUES ($1, $2, $3, coalesce($4, 'node_' OPERATOR(pg_catalog.||) $2), \
                     $5, $6, $7, $8::text::pgautofailover.replication_state, \
                     $9::text::pgautofailover.replication_state, $10, $11, $12) \
             RETURNING nodeid",
            &[T, I8, I4, T, T, I4, I8, T, T, I4, B, T],
        );
        let args = [
            text(new.formation_id),
            id.into(),
            new.group_id.into(),
            new.name.into(),
            text(new.host),
            new.port.into(),
            new.sysidentifier.into(),
            text(new.goal.as_str()),
            text(new.reported.as_str()),
            new.candidate_priority.into(),
            new.replication_quorum.into(),
            text(new.node_cluster),
        ];
        match client.update(&*plan, None, &args) {
            Ok(rows) => rows.first().get_one::<i64>().ok().flatten(),
            Err(e) => spi_failed("insert into pgautofailover.node", e),
        }
    });
    inserted.unwrap_or(id)
}

/// Changes a formation's kind and dbname (the first node of an empty formation decides).
pub fn update_formation(formation: &Formation) {
    write(
        "UPDATE pgautofailover.formation \
            SET kind = $2, dbname = $3::name, number_sync_standbys = $4 \
          WHERE formationid = $1",
        &[T, T, T, I4],
        &[
            text(&formation.id),
            text(formation.kind.as_str()),
            text(&formation.dbname),
            formation.number_sync_standbys.into(),
        ],
        "update pgautofailover.formation",
    );
}

/// Sends `payload` on the `log` channel and to the server log.
pub fn notify_log(message: &str) {
    pgrx::log!("{message}");
    write(
        "SELECT pg_catalog.pg_notify('log', $1)",
        &[T],
        &[text(message)],
        "notify the log channel",
    );
}

/// Records an event for `node` as it is now, and notifies it on `state` and `log`.
pub fn record_event(formation_id: &str, node: &Node, description: &str) {
    pgrx::log!("{description}");
    let payload = state_payload(formation_id, node);
    write(
        "WITH ev AS ( \
            INSERT INTO pgautofailover.event \
                   (formationid, nodeid, groupid, nodename, nodehost, nodeport, reportedstate, \
                    goalstate, reportedrepstate, reportedtli, reportedlsn, candidatepriority, \
                    replicationquorum, description) \
            VALUES ($1, $2, $3, $4, $5, $6, $7::text::pgautofailover.replication_state, \
                    $8::text::pgautofailover.replication_state, $9, $10, $11, $12, $13, $14) \
         RETURNING eventid) \
         SELECT pg_catalog.pg_notify('log', $14), pg_catalog.pg_notify('state', $15) FROM ev",
        &[T, I8, I4, T, T, I4, T, T, T, I4, LSN, I4, B, T, T],
        &[
            text(formation_id),
            node.id.into(),
            node.group_id.into(),
            text(&node.name),
            text(&node.host),
            node.port.into(),
            text(node.reported.as_str()),
            text(node.goal.as_str()),
            text(node.sync_state.as_str()),
            node.reported_tli.max(1).into(),
            lsn(node.reported_lsn),
            node.candidate_priority.into(),
            node.replication_quorum.into(),
            text(description),
            text(&payload),
        ],
        "record an event",
    );
}

/// The JSON payload of a `state` notification, as 2.0 keepers parse it.
pub fn state_payload(formation_id: &str, node: &Node) -> String {
    format!(
        "{{\"type\": \"state\", \"formation\": {}, \"groupId\": {}, \"nodeId\": {}, \
         \"name\": {}, \"host\": {}, \"port\": {}, \"reportedState\": \"{}\", \
         \"goalState\": \"{}\", \"health\": \"{}\"}}",
        json_string(formation_id),
        node.group_id,
        node.id,
        json_string(&node.name),
        json_string(&node.host),
        node.port,
        node.reported,
        node.goal,
        node.health.as_str()
    )
}

fn json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes the effects of a decision, in order: each node change with its `event` row (the
/// node right after the change, as `fsm` recorded it) and its notifications.
pub fn apply_effects(formation_id: &str, effects: &[Effect], now: Timestamp) {
    for effect in effects {
        match effect {
            Effect::AssignGoal {
                node_id,
                goal,
                description,
                event,
            } => {
                write(
                    "UPDATE pgautofailover.node \
                        SET goalstate = $2::text::pgautofailover.replication_state, \
                            statechangetime = $3 \
                      WHERE nodeid = $1",
                    &[I8, T, TS],
                    &[(*node_id).into(), text(goal.as_str()), timestamptz(now)],
                    "assign a goal state",
                );
                record_event(formation_id, event, description);
            }
            Effect::SetCandidatePriority {
                node_id,
                priority,
                description,
                event,
            } => {
                write(
                    "UPDATE pgautofailover.node SET candidatepriority = $2 WHERE nodeid = $1",
                    &[I8, I4],
                    &[(*node_id).into(), (*priority).into()],
                    "set a candidate priority",
                );
                record_event(formation_id, event, description);
            }
            Effect::SetReplicationQuorum {
                node_id,
                replication_quorum,
                description,
                event,
            } => {
                write(
                    "UPDATE pgautofailover.node SET replicationquorum = $2 WHERE nodeid = $1",
                    &[I8, B],
                    &[(*node_id).into(), (*replication_quorum).into()],
                    "set a replication quorum",
                );
                record_event(formation_id, event, description);
            }
            Effect::SetNumberSyncStandbys { value, description } => {
                write(
                    "UPDATE pgautofailover.formation SET number_sync_standbys = $2 \
                      WHERE formationid = $1",
                    &[T, I4],
                    &[text(formation_id), (*value).into()],
                    "set number_sync_standbys",
                );
                notify_log(description);
            }
            Effect::DeleteNode {
                node_id,
                description,
                event,
            } => {
                record_event(formation_id, event, description);
                write(
                    "DELETE FROM pgautofailover.node WHERE nodeid = $1",
                    &[I8],
                    &[(*node_id).into()],
                    "delete a node",
                );
            }
            Effect::Log(message) => notify_log(message),
            Effect::Notice(message) => pgrx::notice!("{message}"),
            Effect::Warning(message) => pgrx::warning!("{message}"),
        }
    }
}

/// Updates name, host and port of a node.
pub fn update_metadata(node_id: NodeId, name: &str, host: &str, port: i32) {
    write(
        "UPDATE pgautofailover.node SET nodename = $2, nodehost = $3, nodeport = $4 \
          WHERE nodeid = $1",
        &[I8, T, T, I4],
        &[node_id.into(), text(name), text(host), port.into()],
        "update the node metadata",
    );
}

/// Sets `opt_secondary`; the formation trigger refuses to disable it while standbys exist.
/// Returns whether the formation exists.
pub fn set_opt_secondary(formation_id: &str, enabled: bool) -> bool {
    write(
        "UPDATE pgautofailover.formation SET opt_secondary = $2 WHERE formationid = $1",
        &[T, B],
        &[text(formation_id), enabled.into()],
        "update pgautofailover.formation",
    ) > 0
}

/// Inserts a formation.
pub fn insert_formation(formation: &Formation) {
    write(
        "INSERT INTO pgautofailover.formation \
                (formationid, kind, dbname, opt_secondary, number_sync_standbys) \
         VALUES ($1, $2, $3::name, $4, $5)",
        &[T, T, T, B, I4],
        &[
            text(&formation.id),
            text(formation.kind.as_str()),
            text(&formation.dbname),
            formation.opt_secondary.into(),
            formation.number_sync_standbys.into(),
        ],
        "insert into pgautofailover.formation",
    );
}

/// Deletes a formation; returns how many rows went.
pub fn delete_formation(formation_id: &str) -> usize {
    write(
        "DELETE FROM pgautofailover.formation WHERE formationid = $1",
        &[T],
        &[text(formation_id)],
        "delete from pgautofailover.formation",
    )
}
