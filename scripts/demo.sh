#!/usr/bin/env bash
# Starts a local demo on 127.0.0.1: our monitor (the pgautofailover extension) and two
# Postgres nodes, a primary and a secondary, as the postgres OS user, under $DEMO_DIR.
#
# Until our own keeper lands, the nodes run pg_auto_failover 2.0's keeper from Debian
# (package pg-auto-failover-cli): the demo also shows that 2.0 keepers work with our monitor.
set -euo pipefail

DEMO_DIR=${DEMO_DIR:-/tmp/pgaf-demo}
PG_BIN=/usr/lib/postgresql/15/bin
KEEPER=${KEEPER:-/usr/bin/pg_autoctl}
RUN_AS=(runuser -u postgres --)
[ "$(id -u)" = 0 ] || RUN_AS=()

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# runs a command as the postgres user, with the demo's home and XDG directories
AS_POSTGRES=("${RUN_AS[@]}" env -u RUST_BACKTRACE HOME="$DEMO_DIR"
    XDG_CONFIG_HOME="$DEMO_DIR/config" XDG_DATA_HOME="$DEMO_DIR/share"
    XDG_RUNTIME_DIR="$DEMO_DIR/run" PG_REGRESS_SOCK_DIR="")
as_postgres() {
    "${AS_POSTGRES[@]}" "$@"
}

if [ -e "$DEMO_DIR/monitor.port" ]; then
    echo "A demo already runs in $DEMO_DIR: stop it with 'make demo-stop' first." >&2
    exit 1
fi
rm -rf "$DEMO_DIR"
# the keeper falls back to /tmp for XDG directories that do not exist
mkdir -p "$DEMO_DIR"/{config,share,run}
chmod 700 "$DEMO_DIR/run"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$DEMO_DIR"

monitor_port=$(free_port)
echo "$monitor_port" > "$DEMO_DIR/monitor.port"
echo "Starting the monitor on 127.0.0.1:$monitor_port"
as_postgres "$PG_BIN/initdb" -D "$DEMO_DIR/monitor" -A trust -U postgres -N >/dev/null
cat >> "$DEMO_DIR/monitor/postgresql.conf" <<EOF
port = $monitor_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DEMO_DIR'
shared_preload_libraries = 'pgautofailover'
pgautofailover.health_check_period = 1000
EOF
as_postgres "$PG_BIN/pg_ctl" -D "$DEMO_DIR/monitor" -l "$DEMO_DIR/monitor.log" -w start >/dev/null
psql -X -q -h 127.0.0.1 -p "$monitor_port" -U postgres -c "CREATE DATABASE pg_auto_failover" \
    -c "\\c pg_auto_failover" -c "CREATE EXTENSION pgautofailover CASCADE" >/dev/null
monitor_uri="postgres://autoctl_node@127.0.0.1:$monitor_port/pg_auto_failover?sslmode=disable"

start_node() {
    local name=$1 port
    port=$(free_port)
    echo "Starting node $name on 127.0.0.1:$port"
    # in its own session, so that demo-stop can stop the keeper and its Postgres together
    setsid "${AS_POSTGRES[@]}" "$KEEPER" create postgres --pgdata "$DEMO_DIR/$name" --pgport "$port" \
        --pghost 127.0.0.1 --pgctl "$PG_BIN/pg_ctl" --hostname 127.0.0.1 --name "$name" \
        --auth trust --no-ssl --monitor "$monitor_uri" --run \
        > "$DEMO_DIR/$name.log" 2>&1 &
    echo $! > "$DEMO_DIR/$name.pid"
}

state() {
    psql -X -At -h 127.0.0.1 -p "$monitor_port" -U postgres -d pg_auto_failover \
        -c "SELECT string_agg(current_group_state || '/' || assigned_group_state, ' ' ORDER BY node_id)
              FROM pgautofailover.current_state()"
}

wait_for() {
    local wanted=$1 deadline=$((SECONDS + 120))
    until [ "$(state)" = "$wanted" ]; do
        if [ $SECONDS -ge $deadline ]; then
            echo "timed out waiting for '$wanted', got '$(state)'; logs in $DEMO_DIR" >&2
            exit 1
        fi
        sleep 1
    done
}

start_node node_a
wait_for "single/single"
start_node node_b
wait_for "primary/primary secondary/secondary"

echo
as_postgres "$KEEPER" show state --monitor "$monitor_uri"
echo
app_uri=$(psql -X -At -h 127.0.0.1 -p "$monitor_port" -U postgres -d pg_auto_failover \
    -c "SELECT pgautofailover.formation_uri('default', 'default', 'disable')")
cat <<EOF
Connect to the primary (whichever node it is) with:
    psql '$app_uri'
Switch the primary over to the other node with:
    psql -h 127.0.0.1 -p $monitor_port -U postgres -d pg_auto_failover -c 'SELECT pgautofailover.perform_failover()'
Watch the states and events with:
    psql -h 127.0.0.1 -p $monitor_port -U postgres -d pg_auto_failover -c 'SELECT * FROM pgautofailover.current_state()'
Stop everything with:
    make demo-stop
EOF
