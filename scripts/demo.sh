#!/usr/bin/env bash
# Starts a local demo on 127.0.0.1 with our pg_autoctl: a monitor and two Postgres nodes, a
# primary and a secondary, each run by `pg_autoctl ... --run` as the postgres OS user, under
# $DEMO_DIR. Stop it with scripts/demo-stop.sh (make demo-stop).
set -euo pipefail

DEMO_DIR=${DEMO_DIR:-/tmp/pgaf-demo}
PROFILE=${PROFILE:-release}
PG_BIN=/usr/lib/postgresql/15/bin
BUILT=${BUILT:-target/$PROFILE/pg_autoctl}
RUN_AS=(runuser -u postgres --)
[ "$(id -u)" = 0 ] || RUN_AS=()

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [ -e "$DEMO_DIR/monitor.port" ]; then
    echo "A demo already runs in $DEMO_DIR: stop it with 'make demo-stop' first." >&2
    exit 1
fi
[ -x "$BUILT" ] || { echo "$BUILT is missing: run make build first" >&2; exit 1; }
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"/{config,share,run,bin}
chmod 700 "$DEMO_DIR/run"
# a copy the postgres user can run wherever the source tree is
cp "$BUILT" "$DEMO_DIR/bin/pg_autoctl"
chmod 755 "$DEMO_DIR" "$DEMO_DIR/bin" "$DEMO_DIR/bin/pg_autoctl"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$DEMO_DIR"
KEEPER="$DEMO_DIR/bin/pg_autoctl"

# runs a command as the postgres user, with the demo's home and XDG directories
AS_POSTGRES=("${RUN_AS[@]}" env -u RUST_BACKTRACE HOME="$DEMO_DIR"
    XDG_CONFIG_HOME="$DEMO_DIR/config" XDG_DATA_HOME="$DEMO_DIR/share"
    XDG_RUNTIME_DIR="$DEMO_DIR/run" PG_REGRESS_SOCK_DIR="")

# starts `pg_autoctl <args>` in the background, in its own session, logging to $1.log
service() {
    local name=$1
    shift
    setsid "${AS_POSTGRES[@]}" "$KEEPER" "$@" > "$DEMO_DIR/$name.log" 2>&1 &
    echo $! > "$DEMO_DIR/$name.pid"
}

monitor_port=$(free_port)
echo "$monitor_port" > "$DEMO_DIR/monitor.port"
echo "Creating the monitor on 127.0.0.1:$monitor_port"
monitor_uri=$("${AS_POSTGRES[@]}" "$KEEPER" create monitor --pgdata "$DEMO_DIR/monitor" \
    --pgport "$monitor_port" --hostname 127.0.0.1 --auth trust --no-ssl \
    --pgctl "$PG_BIN/pg_ctl" 2> "$DEMO_DIR/monitor-create.log")
service monitor run --pgdata "$DEMO_DIR/monitor"

state() {
    "${AS_POSTGRES[@]}" "$KEEPER" show state --monitor "$monitor_uri" --json 2>/dev/null \
        | python3 -c 'import json,sys; print(" ".join(n["current_group_state"] + "/" + n["assigned_group_state"] for n in json.load(sys.stdin)))' \
        2>/dev/null || true
}

wait_for() {
    local wanted=$1 deadline=$((SECONDS + 120))
    until [ "$(state)" = "$wanted" ]; do
        if [ $SECONDS -ge $deadline ]; then
            echo "timed out waiting for '$wanted', got '$(state)'; logs in $DEMO_DIR" >&2
            exit 1
        fi
        sleep 0.5
    done
}

start_node() {
    local name=$1 port
    port=$(free_port)
    echo "Creating node $name on 127.0.0.1:$port"
    service "$name" create postgres --pgdata "$DEMO_DIR/$name" --pgport "$port" \
        --pghost 127.0.0.1 --pgctl "$PG_BIN/pg_ctl" --hostname 127.0.0.1 --name "$name" \
        --auth trust --no-ssl --monitor "$monitor_uri" --run
}

start_node node_a
wait_for "single/single"
start_node node_b
wait_for "primary/primary secondary/secondary"

echo
"${AS_POSTGRES[@]}" "$KEEPER" show state --monitor "$monitor_uri"
app_uri=$("${AS_POSTGRES[@]}" "$KEEPER" show uri --monitor "$monitor_uri" --formation default)
cat <<EOF
Connect to the primary (whichever node it is) with:
    psql '$app_uri'
Switch the primary over to the other node, and watch it happen:
    $KEEPER perform switchover --monitor '$monitor_uri'
See the states and the events:
    $KEEPER show state --monitor '$monitor_uri'
    $KEEPER show events --monitor '$monitor_uri'
Logs are in $DEMO_DIR/*.log. Stop everything with:
    make demo-stop
EOF
