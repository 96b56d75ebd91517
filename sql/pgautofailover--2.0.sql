-- pgautofailover 2.0: the monitor's schema and SQL API.
--
-- Objects, names, argument lists, defaults and result columns are those of pg_auto_failover
-- 2.0, so that its keepers and tools work unchanged. Functions marked LANGUAGE C are
-- implemented in Rust (monitor-ext/); the others are plain SQL.
--
-- Every function runs with a pinned search_path (pg_catalog, then pg_temp last) and names
-- its tables with their schema: a caller's search_path, or objects that the database owner
-- could create in another schema, never change what a function calls, whoever it runs as
-- (SECURITY DEFINER functions run as the superuser who created the extension).

\echo Use "CREATE EXTENSION pgautofailover" to load this file. \quit

DO $role$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'autoctl_node')
    THEN
        CREATE ROLE autoctl_node WITH LOGIN;
    END IF;
END
$role$;

CREATE SCHEMA pgautofailover;
GRANT USAGE ON SCHEMA pgautofailover TO autoctl_node;

CREATE TYPE pgautofailover.replication_state AS ENUM (
    'unknown',
    'init',
    'single',
    'wait_primary',
    'primary',
    'draining',
    'demote_timeout',
    'demoted',
    'catchingup',
    'secondary',
    'prepare_promotion',
    'stop_replication',
    'wait_standby',
    'maintenance',
    'join_primary',
    'apply_settings',
    'prepare_maintenance',
    'wait_maintenance',
    'report_lsn',
    'fast_forward',
    'join_secondary',
    'dropped'
);

CREATE TABLE pgautofailover.formation
 (
    formationid          text NOT NULL DEFAULT 'default',
    kind                 text NOT NULL DEFAULT 'pgsql',
    dbname               name NOT NULL DEFAULT 'postgres',
    opt_secondary        bool NOT NULL DEFAULT true,
    number_sync_standbys int  NOT NULL DEFAULT 0,
    PRIMARY KEY (formationid),
    CHECK (kind IN ('pgsql', 'citus'))
 );

INSERT INTO pgautofailover.formation (formationid) VALUES ('default');

-- Refuse to disable secondaries while a formation still has standbys.
CREATE FUNCTION pgautofailover.update_secondary_check()
  RETURNS trigger
  LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    standby bigint;
BEGIN
    IF NOT NEW.opt_secondary AND OLD.opt_secondary
    THEN
        SELECT node.nodeid INTO standby
          FROM pgautofailover.node
         WHERE node.formationid = NEW.formationid
           AND node.reportedstate <> 'single'
           AND node.goalstate <> 'dropped'
         LIMIT 1;

        IF standby IS NOT NULL
        THEN
            RAISE EXCEPTION USING
                ERRCODE = 'object_not_in_prerequisite_state',
                MESSAGE = 'formation has nodes that are not in SINGLE state',
                HINT = 'Remove the standby nodes of formation "' || NEW.formationid
                       || '" before disabling secondaries.';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER disable_secondary_check
    BEFORE UPDATE ON pgautofailover.formation
    FOR EACH ROW EXECUTE PROCEDURE pgautofailover.update_secondary_check();

CREATE TABLE pgautofailover.node
 (
    formationid          text NOT NULL DEFAULT 'default',
    nodeid               bigserial,
    groupid              int NOT NULL,
    nodename             text NOT NULL,
    nodehost             text NOT NULL,
    nodeport             int NOT NULL,
    sysidentifier        bigint,
    goalstate            pgautofailover.replication_state NOT NULL DEFAULT 'init',
    reportedstate        pgautofailover.replication_state NOT NULL,
    reportedpgisrunning  bool DEFAULT true,
    reportedrepstate     text DEFAULT 'async',
    reporttime           timestamptz NOT NULL DEFAULT now(),
    reportedtli          int NOT NULL DEFAULT 1 CHECK (reportedtli > 0),
    reportedlsn          pg_lsn NOT NULL DEFAULT '0/0',
    walreporttime        timestamptz NOT NULL DEFAULT now(),
    health               integer NOT NULL DEFAULT -1,
    healthchecktime      timestamptz NOT NULL DEFAULT now(),
    statechangetime      timestamptz NOT NULL DEFAULT now(),
    candidatepriority    int NOT NULL DEFAULT 100,
    replicationquorum    bool NOT NULL DEFAULT true,
    nodecluster          text NOT NULL DEFAULT 'default',

    -- the system identifier is only unknown until the node has its data
    CONSTRAINT system_identifier_is_null_at_init_only
         CHECK (
                 (
                       sysidentifier IS NULL
                   AND reportedstate IN ('init', 'wait_standby', 'catchingup', 'dropped')
                 )
                 OR sysidentifier IS NOT NULL
               ),

    -- every node of a group holds the same database
    CONSTRAINT same_system_identifier_within_group
       EXCLUDE USING gist (formationid WITH =, groupid WITH =, sysidentifier WITH <>)
       DEFERRABLE INITIALLY DEFERRED,

    PRIMARY KEY (nodeid),
    UNIQUE (nodehost, nodeport),
    UNIQUE (formationid, nodename),
    FOREIGN KEY (formationid) REFERENCES pgautofailover.formation(formationid)
 )
 -- heartbeats update each row about once a second: leave room for HOT updates
 WITH (fillfactor = 25);

CREATE TABLE pgautofailover.event
 (
    eventid           bigserial NOT NULL,
    eventtime         timestamptz NOT NULL DEFAULT now(),
    formationid       text NOT NULL,
    nodeid            bigint NOT NULL,
    groupid           int NOT NULL,
    nodename          text NOT NULL,
    nodehost          text NOT NULL,
    nodeport          int NOT NULL,
    reportedstate     pgautofailover.replication_state NOT NULL,
    goalstate         pgautofailover.replication_state NOT NULL,
    reportedrepstate  text,
    reportedtli       int NOT NULL DEFAULT 1 CHECK (reportedtli > 0),
    reportedlsn       pg_lsn NOT NULL DEFAULT '0/0',
    candidatepriority int,
    replicationquorum bool,
    description       text,
    PRIMARY KEY (eventid)
 );

GRANT SELECT ON ALL TABLES IN SCHEMA pgautofailover TO autoctl_node;

------------------------------------------------------------------------------------------------
-- Formations
------------------------------------------------------------------------------------------------

CREATE FUNCTION pgautofailover.create_formation
 (
    IN formation_id         text,
    IN kind                 text,
    IN dbname               name,
    IN opt_secondary        bool,
    IN number_sync_standbys int,
   OUT formation_id         text,
   OUT kind                 text,
   OUT dbname               name,
   OUT opt_secondary        bool,
   OUT number_sync_standbys int
 )
RETURNS record LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_create_formation';

CREATE FUNCTION pgautofailover.drop_formation
 (
    IN formation_id text
 )
RETURNS void LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_drop_formation';

CREATE FUNCTION pgautofailover.enable_secondary
 (
    IN formation_id text
 )
RETURNS bool LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_enable_secondary';

CREATE FUNCTION pgautofailover.disable_secondary
 (
    IN formation_id text
 )
RETURNS bool LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_disable_secondary';

CREATE FUNCTION pgautofailover.set_formation_number_sync_standbys
 (
    IN formation_id         text,
    IN number_sync_standbys int
 )
RETURNS bool LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_set_formation_number_sync_standbys';

------------------------------------------------------------------------------------------------
-- The node protocol: registration and heartbeat
------------------------------------------------------------------------------------------------

CREATE FUNCTION pgautofailover.register_node
 (
    IN formation_id         text,
    IN node_host            text,
    IN node_port            int,
    IN dbname               name,
    IN node_name            text DEFAULT '',
    IN sysidentifier        bigint DEFAULT 0,
    IN desired_node_id      bigint DEFAULT -1,
    IN desired_group_id     int DEFAULT -1,
    IN initial_group_role   pgautofailover.replication_state DEFAULT 'init',
    IN node_kind            text DEFAULT 'standalone',
    IN candidate_priority   int DEFAULT 100,
    IN replication_quorum   bool DEFAULT true,
    IN node_cluster         text DEFAULT 'default',
   OUT assigned_node_id     bigint,
   OUT assigned_group_id    int,
   OUT assigned_group_state pgautofailover.replication_state,
   OUT assigned_candidate_priority int,
   OUT assigned_replication_quorum bool,
   OUT assigned_node_name   text
 )
RETURNS record LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_register_node';

CREATE FUNCTION pgautofailover.node_active
 (
    IN formation_id           text,
    IN node_id                bigint,
    IN group_id               int,
    IN current_group_role     pgautofailover.replication_state DEFAULT 'init',
    IN current_pg_is_running  bool DEFAULT true,
    IN current_tli            int DEFAULT 1,
    IN current_lsn            pg_lsn DEFAULT '0/0',
    IN current_rep_state      text DEFAULT '',
   OUT assigned_node_id       bigint,
   OUT assigned_group_id      int,
   OUT assigned_group_state   pgautofailover.replication_state,
   OUT assigned_candidate_priority int,
   OUT assigned_replication_quorum bool
 )
RETURNS record LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_node_active';

CREATE FUNCTION pgautofailover.update_node_metadata
 (
    IN node_id   bigint,
    IN node_name text,
    IN node_host text,
    IN node_port int
 )
RETURNS bool LANGUAGE C SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_update_node_metadata';

CREATE FUNCTION pgautofailover.set_node_system_identifier
 (
    IN node_id           bigint,
    IN node_sysidentifier bigint,
   OUT node_id           bigint,
   OUT node_name         text,
   OUT node_host         text,
   OUT node_port         int
 )
RETURNS record LANGUAGE SQL STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
      UPDATE pgautofailover.node
         SET sysidentifier = $2
       WHERE nodeid = $1
   RETURNING nodeid, nodename, nodehost, nodeport;
$$;

CREATE FUNCTION pgautofailover.set_group_system_identifier
 (
    IN group_id           bigint,
    IN node_sysidentifier bigint,
   OUT node_id            bigint,
   OUT node_name          text,
   OUT node_host          text,
   OUT node_port          int
 )
RETURNS SETOF record LANGUAGE SQL STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
      UPDATE pgautofailover.node
         SET sysidentifier = $2
       WHERE groupid = $1
         AND (sysidentifier IS NULL OR sysidentifier = 0)
   RETURNING nodeid, nodename, nodehost, nodeport;
$$;

------------------------------------------------------------------------------------------------
-- Reading the group
------------------------------------------------------------------------------------------------

CREATE FUNCTION pgautofailover.get_nodes
 (
    IN formation_id     text DEFAULT 'default',
    IN group_id         int DEFAULT NULL,
   OUT node_id          bigint,
   OUT node_name        text,
   OUT node_host        text,
   OUT node_port        int,
   OUT node_lsn         pg_lsn,
   OUT node_is_primary  bool
 )
RETURNS SETOF record LANGUAGE C
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_get_nodes';

CREATE FUNCTION pgautofailover.get_primary
 (
    IN formation_id      text DEFAULT 'default',
    IN group_id          int DEFAULT 0,
   OUT primary_node_id   bigint,
   OUT primary_name      text,
   OUT primary_host      text,
   OUT primary_port      int
 )
RETURNS record LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_get_primary';

CREATE FUNCTION pgautofailover.get_other_nodes
 (
    IN nodeid           bigint,
   OUT node_id          bigint,
   OUT node_name        text,
   OUT node_host        text,
   OUT node_port        int,
   OUT node_lsn         pg_lsn,
   OUT node_is_primary  bool
 )
RETURNS SETOF record LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_get_other_nodes';

CREATE FUNCTION pgautofailover.get_other_nodes
 (
    IN nodeid           bigint,
    IN current_state    pgautofailover.replication_state,
   OUT node_id          bigint,
   OUT node_name        text,
   OUT node_host        text,
   OUT node_port        int,
   OUT node_lsn         pg_lsn,
   OUT node_is_primary  bool
 )
RETURNS SETOF record LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_get_other_nodes';

CREATE FUNCTION pgautofailover.get_coordinator
 (
    IN formation_id  text DEFAULT 'default',
   OUT node_host     text,
   OUT node_port     int
 )
RETURNS SETOF record LANGUAGE SQL STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT nodehost, nodeport
      FROM pgautofailover.node
     WHERE formationid = $1
       AND groupid = 0
       AND goalstate IN ('single', 'wait_primary', 'primary')
       AND reportedstate IN ('single', 'wait_primary', 'primary');
$$;

CREATE FUNCTION pgautofailover.get_most_advanced_standby
 (
    IN formationid      text DEFAULT 'default',
    IN groupid          int DEFAULT 0,
   OUT node_id          bigint,
   OUT node_name        text,
   OUT node_host        text,
   OUT node_port        int,
   OUT node_lsn         pg_lsn,
   OUT node_is_primary  bool
 )
RETURNS SETOF record LANGUAGE SQL STRICT
SET search_path = pg_catalog, pg_temp
AS $$
   SELECT nodeid, nodename, nodehost, nodeport, reportedlsn, false
     FROM pgautofailover.node
    WHERE formationid = $1
      AND groupid = $2
      AND reportedstate = 'report_lsn'
 ORDER BY reportedlsn DESC, health DESC
    LIMIT 1;
$$;

------------------------------------------------------------------------------------------------
-- Operations
------------------------------------------------------------------------------------------------

CREATE FUNCTION pgautofailover.remove_node
 (
    IN node_id bigint,
    IN force   bool DEFAULT 'false'
 )
RETURNS bool LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_remove_node_by_nodeid';

CREATE FUNCTION pgautofailover.remove_node
 (
    IN node_host text,
    IN node_port int DEFAULT 5432,
    IN force     bool DEFAULT 'false'
 )
RETURNS bool LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_remove_node_by_host';

CREATE FUNCTION pgautofailover.perform_failover
 (
    IN formation_id text DEFAULT 'default',
    IN group_id     int  DEFAULT 0
 )
RETURNS void LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_perform_failover';

CREATE FUNCTION pgautofailover.perform_promotion
 (
    IN formation_id text,
    IN node_name    text
 )
RETURNS bool LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_perform_promotion';

CREATE FUNCTION pgautofailover.start_maintenance
 (
    IN node_id bigint
 )
RETURNS bool LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_start_maintenance';

CREATE FUNCTION pgautofailover.stop_maintenance
 (
    IN node_id bigint
 )
RETURNS bool LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_stop_maintenance';

CREATE FUNCTION pgautofailover.set_node_candidate_priority
 (
    IN formation_id       text,
    IN node_name          text,
    IN candidate_priority int
 )
RETURNS bool LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_set_node_candidate_priority';

CREATE FUNCTION pgautofailover.set_node_replication_quorum
 (
    IN formation_id       text,
    IN node_name          text,
    IN replication_quorum bool
 )
RETURNS bool LANGUAGE C STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_set_node_replication_quorum';

CREATE FUNCTION pgautofailover.synchronous_standby_names
 (
    IN formation_id text DEFAULT 'default',
    IN group_id     int  DEFAULT 0
 )
RETURNS text LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'pgaf_synchronous_standby_names';

------------------------------------------------------------------------------------------------
-- Watching
------------------------------------------------------------------------------------------------

CREATE FUNCTION pgautofailover.last_events
 (
    count int DEFAULT 10
 )
RETURNS SETOF pgautofailover.event LANGUAGE SQL STRICT
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT eventid, eventtime, formationid, nodeid, groupid, nodename, nodehost, nodeport,
         reportedstate, goalstate, reportedrepstate, reportedtli, reportedlsn,
         candidatepriority, replicationquorum, description
    FROM (
           SELECT *
             FROM pgautofailover.event
         ORDER BY eventid DESC
            LIMIT $1
         ) AS last_events
ORDER BY eventtime, eventid;
$$;

CREATE FUNCTION pgautofailover.last_events
 (
    formation_id text DEFAULT 'default',
    count        int  DEFAULT 10
 )
RETURNS SETOF pgautofailover.event LANGUAGE SQL STRICT
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT eventid, eventtime, formationid, nodeid, groupid, nodename, nodehost, nodeport,
         reportedstate, goalstate, reportedrepstate, reportedtli, reportedlsn,
         candidatepriority, replicationquorum, description
    FROM (
           SELECT *
             FROM pgautofailover.event
            WHERE formationid = $1
         ORDER BY eventid DESC
            LIMIT $2
         ) AS last_events
ORDER BY eventtime, eventid;
$$;

CREATE FUNCTION pgautofailover.last_events
 (
    formation_id text,
    group_id     int,
    count        int DEFAULT 10
 )
RETURNS SETOF pgautofailover.event LANGUAGE SQL STRICT
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT eventid, eventtime, formationid, nodeid, groupid, nodename, nodehost, nodeport,
         reportedstate, goalstate, reportedrepstate, reportedtli, reportedlsn,
         candidatepriority, replicationquorum, description
    FROM (
           SELECT *
             FROM pgautofailover.event
            WHERE formationid = $1
              AND groupid = $2
         ORDER BY eventid DESC
            LIMIT $3
         ) AS last_events
ORDER BY eventtime, eventid;
$$;

CREATE FUNCTION pgautofailover.current_state
 (
    IN formation_id          text DEFAULT 'default',
   OUT formation_kind        text,
   OUT nodename              text,
   OUT nodehost              text,
   OUT nodeport              int,
   OUT group_id              int,
   OUT node_id               bigint,
   OUT current_group_state   pgautofailover.replication_state,
   OUT assigned_group_state  pgautofailover.replication_state,
   OUT candidate_priority    int,
   OUT replication_quorum    bool,
   OUT reported_tli          int,
   OUT reported_lsn          pg_lsn,
   OUT health                integer,
   OUT nodecluster           text
 )
RETURNS SETOF record LANGUAGE SQL STRICT
SET search_path = pg_catalog, pg_temp
AS $$
   SELECT kind, nodename, nodehost, nodeport, groupid, nodeid,
          reportedstate, goalstate, candidatepriority, replicationquorum,
          reportedtli, reportedlsn, health, nodecluster
     FROM pgautofailover.node
     JOIN pgautofailover.formation USING (formationid)
    WHERE formationid = $1
 ORDER BY groupid, nodeid;
$$;

CREATE FUNCTION pgautofailover.current_state
 (
    IN formation_id          text,
    IN group_id              int,
   OUT formation_kind        text,
   OUT nodename              text,
   OUT nodehost              text,
   OUT nodeport              int,
   OUT group_id              int,
   OUT node_id               bigint,
   OUT current_group_state   pgautofailover.replication_state,
   OUT assigned_group_state  pgautofailover.replication_state,
   OUT candidate_priority    int,
   OUT replication_quorum    bool,
   OUT reported_tli          int,
   OUT reported_lsn          pg_lsn,
   OUT health                integer,
   OUT nodecluster           text
 )
RETURNS SETOF record LANGUAGE SQL STRICT
SET search_path = pg_catalog, pg_temp
AS $$
   SELECT kind, nodename, nodehost, nodeport, groupid, nodeid,
          reportedstate, goalstate, candidatepriority, replicationquorum,
          reportedtli, reportedlsn, health, nodecluster
     FROM pgautofailover.node
     JOIN pgautofailover.formation USING (formationid)
    WHERE formationid = $1
      AND groupid = $2
 ORDER BY groupid, nodeid;
$$;

CREATE FUNCTION pgautofailover.formation_uri
 (
    IN formation_id text DEFAULT 'default',
    IN cluster_name text DEFAULT 'default',
    IN sslmode      text DEFAULT 'prefer',
    IN sslrootcert  text DEFAULT '',
    IN sslcrl       text DEFAULT ''
 )
RETURNS text LANGUAGE SQL STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
           WHEN string_agg(format('%s:%s', nodehost, nodeport), ',') IS NOT NULL
           THEN format(
                  'postgres://%s/%s?%ssslmode=%s%s%s',
                  string_agg(format('%s:%s', nodehost, nodeport), ',' ORDER BY nodeid),
                  min(dbname),
                  CASE WHEN $2 = 'default' THEN 'target_session_attrs=read-write&' ELSE '' END,
                  $3,
                  CASE WHEN $4 = '' THEN '' ELSE '&sslrootcert=' || $4 END,
                  CASE WHEN $5 = '' THEN '' ELSE '&sslcrl=' || $5 END
                )
           END AS uri
      FROM pgautofailover.node AS node
      JOIN pgautofailover.formation USING (formationid)
     WHERE formationid = $1
       AND groupid = 0
       AND nodecluster = $2;
$$;

CREATE FUNCTION pgautofailover.formation_settings
 (
    IN formation_id text DEFAULT 'default',
   OUT context      text,
   OUT group_id     int,
   OUT node_id      bigint,
   OUT nodename     text,
   OUT setting      text,
   OUT value        text
 )
RETURNS SETOF record LANGUAGE SQL STRICT
SET search_path = pg_catalog, pg_temp
AS $$
  (
    SELECT 'formation', NULL::int, NULL::bigint, formationid,
           'number_sync_standbys', number_sync_standbys::text
      FROM pgautofailover.formation
     WHERE formationid = $1
  )
  UNION ALL
  (
    SELECT 'primary', groupid, nodeid, nodename,
           'synchronous_standby_names',
           format('''%s''', pgautofailover.synchronous_standby_names($1, groupid))
      FROM pgautofailover.node
     WHERE formationid = $1
       AND goalstate IN ('single', 'wait_primary', 'primary', 'join_primary', 'apply_settings')
  ORDER BY groupid, nodeid
  )
  UNION ALL
  (
    SELECT 'node', groupid, nodeid, nodename, 'replication quorum', replicationquorum::text
      FROM pgautofailover.node
     WHERE formationid = $1
  ORDER BY groupid, nodeid
  )
  UNION ALL
  (
    SELECT 'node', groupid, nodeid, nodename, 'candidate priority', candidatepriority::text
      FROM pgautofailover.node
     WHERE formationid = $1
  ORDER BY groupid, nodeid
  );
$$;

------------------------------------------------------------------------------------------------
-- Privileges: keepers connect as autoctl_node and may call the node protocol and operations.
------------------------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION
    pgautofailover.create_formation(text, text, name, bool, int),
    pgautofailover.drop_formation(text),
    pgautofailover.enable_secondary(text),
    pgautofailover.disable_secondary(text),
    pgautofailover.set_formation_number_sync_standbys(text, int),
    pgautofailover.register_node(text, text, int, name, text, bigint, bigint, int,
                                 pgautofailover.replication_state, text, int, bool, text),
    pgautofailover.node_active(text, bigint, int, pgautofailover.replication_state, bool, int,
                               pg_lsn, text),
    pgautofailover.update_node_metadata(bigint, text, text, int),
    pgautofailover.set_node_system_identifier(bigint, bigint),
    pgautofailover.set_group_system_identifier(bigint, bigint),
    pgautofailover.get_primary(text, int),
    pgautofailover.remove_node(bigint, bool),
    pgautofailover.remove_node(text, int, bool),
    pgautofailover.perform_failover(text, int),
    pgautofailover.perform_promotion(text, text),
    pgautofailover.start_maintenance(bigint),
    pgautofailover.stop_maintenance(bigint),
    pgautofailover.set_node_candidate_priority(text, text, int),
    pgautofailover.set_node_replication_quorum(text, text, bool)
  FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    pgautofailover.create_formation(text, text, name, bool, int),
    pgautofailover.drop_formation(text),
    pgautofailover.set_formation_number_sync_standbys(text, int),
    pgautofailover.register_node(text, text, int, name, text, bigint, bigint, int,
                                 pgautofailover.replication_state, text, int, bool, text),
    pgautofailover.node_active(text, bigint, int, pgautofailover.replication_state, bool, int,
                               pg_lsn, text),
    pgautofailover.update_node_metadata(bigint, text, text, int),
    pgautofailover.set_node_system_identifier(bigint, bigint),
    pgautofailover.set_group_system_identifier(bigint, bigint),
    pgautofailover.get_primary(text, int),
    pgautofailover.remove_node(bigint, bool),
    pgautofailover.remove_node(text, int, bool),
    pgautofailover.perform_failover(text, int),
    pgautofailover.perform_promotion(text, text),
    pgautofailover.start_maintenance(bigint),
    pgautofailover.stop_maintenance(bigint),
    pgautofailover.set_node_candidate_priority(text, text, int),
    pgautofailover.set_node_replication_quorum(text, text, bool)
  TO autoctl_node;
